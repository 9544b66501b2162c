"""The harder maze families (braid, lava): registration, gymnasium contract, determinism, and
what each construction promises (loops in the braid maze, lava never on the only path)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.constants import OBJECT_TO_IDX

from envs import BRAID_MAZE_ID, GRID_SIZE, LAVA_MAZE_ID, MAZE_ID, FullGridObsWrapper
from envs.expert import solve
from envs.maze import BraidMazeEnv, LavaMazeEnv, MazeEnv
from envs.observation import env_pose, layout_of
from envs.seeds import EVAL_SEED_START

FAMILIES = {MAZE_ID: MazeEnv, BRAID_MAZE_ID: BraidMazeEnv, LAVA_MAZE_ID: LavaMazeEnv}
LAVA = OBJECT_TO_IDX["lava"]
WALL = OBJECT_TO_IDX["wall"]


@pytest.mark.parametrize("env_id", sorted(FAMILIES))
def test_registered_with_the_19x19_canvas(env_id):
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, FAMILIES[env_id])
    assert (env.unwrapped.width, env.unwrapped.height) == (GRID_SIZE, GRID_SIZE)
    assert env.unwrapped.max_steps == 2 * GRID_SIZE * GRID_SIZE
    env.close()


@pytest.mark.parametrize("env_id", [BRAID_MAZE_ID, LAVA_MAZE_ID])
def test_check_env(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    env.close()


@pytest.mark.parametrize("env_id", [BRAID_MAZE_ID, LAVA_MAZE_ID])
def test_same_seed_and_actions_give_the_same_rollout_and_seeds_differ(env_id):
    actions = np.random.default_rng(0).choice([0, 1, 2], size=120, p=[0.2, 0.2, 0.6])
    runs = []
    for _ in range(2):
        env = FullGridObsWrapper(gym.make(env_id))
        obs, _ = env.reset(seed=7)
        trace = [obs["image"].copy()]
        for a in actions:
            obs, reward, terminated, truncated, _ = env.step(int(a))
            trace.append((obs["image"].copy(), reward, terminated, truncated))
            if terminated or truncated:
                break
        runs.append(trace)
        other, _ = env.reset(seed=8)
        env.close()
    assert len(runs[0]) == len(runs[1])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    assert not np.array_equal(other["image"], runs[0][0])


def _free_graph(image: np.ndarray) -> nx.Graph:
    """Cells of the maze that are neither wall nor lava, 4-connected."""
    ok = (image[:, :, 0] != WALL) & (image[:, :, 0] != LAVA)
    graph = nx.grid_2d_graph(*ok.shape)
    graph.remove_nodes_from([tuple(p) for p in np.argwhere(~ok)])
    return graph


def test_braid_maze_has_loops_and_fewer_dead_ends_than_the_perfect_maze():
    perfect, braid = gym.make(MAZE_ID), gym.make(BRAID_MAZE_ID)
    dead = {"perfect": 0, "braid": 0}
    for seed in range(EVAL_SEED_START, EVAL_SEED_START + 20):
        for name, env in (("perfect", perfect), ("braid", braid)):
            env.reset(seed=seed)
            graph = _free_graph(env.unwrapped.grid.encode())
            assert nx.is_connected(graph)
            loops = graph.number_of_edges() - graph.number_of_nodes() + 1  # cycle rank
            assert (loops == 0) == (name == "perfect")
            dead[name] += sum(1 for n in graph.nodes if graph.degree(n) == 1)
    assert dead["braid"] < 0.7 * dead["perfect"]  # braid=0.5 opens about half the dead ends


def test_braid_zero_is_the_perfect_maze():
    a, b = MazeEnv(cells=5), BraidMazeEnv(cells=5, braid=0.0)
    a.reset(seed=3), b.reset(seed=3)
    np.testing.assert_array_equal(a.grid.encode(), b.grid.encode())


@pytest.mark.parametrize("seed", range(EVAL_SEED_START, EVAL_SEED_START + 30))
def test_lava_maze_is_solvable_and_lava_is_off_the_path(seed):
    env = FullGridObsWrapper(gym.make(LAVA_MAZE_ID))
    obs, _ = env.reset(seed=seed)
    image = obs["image"]
    lava = int((image[:, :, 0] == LAVA).sum())
    assert lava > 0
    plan = solve(layout_of(image), env_pose(env))
    assert plan.solvable
    for action in plan.actions:
        obs, reward, terminated, truncated, _ = env.step(action)
    assert terminated and reward > 0
    env.close()


def test_same_seed_gives_the_same_maze_under_the_lava():
    plain, lava = gym.make(MAZE_ID), gym.make(LAVA_MAZE_ID)
    plain.reset(seed=11), lava.reset(seed=11)
    a, b = plain.unwrapped.grid.encode(), lava.unwrapped.grid.encode()
    same = b[:, :, 0] != LAVA
    np.testing.assert_array_equal(a[same], b[same])
    assert (a[~same][:, 0] != WALL).all()  # lava only replaces free tiles
    assert tuple(plain.unwrapped.agent_pos) == tuple(lava.unwrapped.agent_pos)


def test_family_parameters_are_checked_and_sizes_are_parametric():
    with pytest.raises(ValueError):
        BraidMazeEnv(braid=1.5)
    with pytest.raises(ValueError):
        LavaMazeEnv(lava=-0.1)
    with pytest.raises(ValueError):  # larger than the 25×25 canvas
        LavaMazeEnv(cells=13)
    big = BraidMazeEnv(cells=12)  # MazeMDLM/BraidMaze-25x25-v0's size
    big.reset(seed=0)
    assert (big.width, big.height) == (25, 25)
    small = LavaMazeEnv(cells=5)
    small.reset(seed=0)
    assert (small.width, small.height) == (11, 11)
