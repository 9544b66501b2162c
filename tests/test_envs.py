"""Envs: registration, the gymnasium contract, our maze, and the 19×19 full-grid observation."""

from __future__ import annotations

import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.envs import EmptyEnv
from minigrid.wrappers import FullyObsWrapper

import envs
from envs import (
    FOURROOMS_ID,
    GRID_SIZE,
    MAZE_ID,
    FullGridObsWrapper,
    GridTooLargeError,
    ObservationError,
    encode_env,
    observation_grid,
    to_model_input,
)
from envs.maze import MazeEnv
from envs.observation import AGENT, WALL, agent_pose, layout_of

WALL_CELL = (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0)


def _check_env_quietly(env: gym.Env, **kwargs) -> None:
    """Run ``check_env`` and fail on any warning except the expected 'wrapped env' notice."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    unexpected = [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)]
    assert unexpected == []


def test_importing_envs_registers_the_maze():
    assert MAZE_ID in gym.registry
    assert gym.registry[MAZE_ID].entry_point == "envs.maze:MazeEnv"
    env = gym.make(MAZE_ID)
    assert isinstance(env.unwrapped, MazeEnv)
    assert (env.unwrapped.width, env.unwrapped.height) == (GRID_SIZE, GRID_SIZE)
    assert env.unwrapped.max_steps == 2 * GRID_SIZE * GRID_SIZE
    env.close()


def test_check_env_on_the_unwrapped_maze():
    env = gym.make(MAZE_ID)
    # Render modes are checked separately (rgb_array only): "human" would open a window.
    _check_env_quietly(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", [MAZE_ID, FOURROOMS_ID, "MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-6x6-v0",
                                    "MiniGrid-ObstructedMaze-1Dlh-v0", "MiniGrid-MultiRoom-N6-v0"])
def test_check_env_on_the_full_grid_wrapper(env_id):
    env = FullGridObsWrapper(gym.make(env_id))
    # The close check re-creates the env from its spec, which drops any wrapper applied after
    # gym.make (MiniGrid's own FullyObsWrapper needs the same skip).
    _check_env_quietly(env, skip_render_check=True, skip_close_check=True)
    env.close()


@pytest.mark.parametrize("env_id", [MAZE_ID, FOURROOMS_ID, "MiniGrid-LavaCrossingS9N1-v0"])
def test_same_seed_and_actions_give_the_same_rollout(env_id):
    rng = np.random.default_rng(0)
    actions = rng.choice([0, 1, 2], size=150, p=[0.2, 0.2, 0.6])
    runs = []
    for _ in range(2):
        env = FullGridObsWrapper(gym.make(env_id))
        obs, _ = env.reset(seed=123)
        trace = [(obs["image"].copy(), obs["direction"], 0.0, False, False)]
        reset_seed = 1000
        for a in actions:
            obs, reward, terminated, truncated, _ = env.step(int(a))
            trace.append((obs["image"].copy(), obs["direction"], reward, terminated, truncated))
            if terminated or truncated:
                obs, _ = env.reset(seed=reset_seed)
                reset_seed += 1
                trace.append((obs["image"].copy(), obs["direction"], 0.0, False, False))
        runs.append(trace)
        env.close()
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    # the rollout really moved the agent around
    assert len({agent_pose(step[0])[:2] for step in runs[0]}) > 3


def _free_cells(grid_image: np.ndarray) -> np.ndarray:
    return grid_image[:, :, 0] != WALL


@pytest.mark.parametrize("seed", range(12))
def test_maze_is_a_perfect_maze(seed):
    env = gym.make(MAZE_ID)
    env.reset(seed=seed)
    base = env.unwrapped
    image = base.grid.encode()
    free = _free_cells(image)
    # border is wall, every odd/odd tile is a cell, even/even tiles are pillars
    assert not free[0, :].any() and not free[-1, :].any() and not free[:, 0].any() and not free[:, -1].any()
    assert free[1::2, 1::2].all()
    assert not free[::2, ::2].any()
    n_free = int(free.sum())
    n_pairs = int((free[1:, :] & free[:-1, :]).sum() + (free[:, 1:] & free[:, :-1]).sum())
    assert n_free == 81 + 80  # 9×9 cells and the 80 knocked-down walls of a spanning tree
    assert n_pairs == n_free - 1
    # connected: a flood fill from one free tile reaches them all
    start = tuple(int(v) for v in np.argwhere(free)[0])
    seen, queue = {start}, deque([start])
    while queue:
        x, y = queue.popleft()
        for nx_, ny_ in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if free[nx_, ny_] and (nx_, ny_) not in seen:
                seen.add((nx_, ny_))
                queue.append((nx_, ny_))
    assert len(seen) == n_free
    # exactly one goal, the agent on a different free tile
    goals = np.argwhere(image[:, :, 0] == OBJECT_TO_IDX["goal"])
    assert len(goals) == 1
    ax, ay = base.agent_pos
    assert free[ax, ay] and (ax, ay) != tuple(goals[0])
    env.close()


def test_different_seeds_give_different_mazes_and_the_same_seed_the_same():
    env = gym.make(MAZE_ID)
    layouts = []
    for seed in range(10):
        env.reset(seed=seed)
        layouts.append(_free_cells(env.unwrapped.grid.encode()).tobytes())
    assert len(set(layouts)) == 10
    env.reset(seed=3)
    assert _free_cells(env.unwrapped.grid.encode()).tobytes() == layouts[3]
    env.close()


def test_maze_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        MazeEnv(cells=13)  # 27x27: larger than the 25x25 canvas
    small = MazeEnv(cells=3)
    small.reset(seed=0)
    assert (small.width, small.height) == (7, 7)


def test_rgb_array_render_gives_an_image():
    env = gym.make(MAZE_ID, render_mode="rgb_array")
    env.reset(seed=0)
    env_render_passive_checker(env)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] == frame.shape[1] >= GRID_SIZE * 8
    assert frame.std() > 0  # not a blank canvas
    env.close()


@pytest.mark.parametrize(
    "env_id", [MAZE_ID, FOURROOMS_ID, "MiniGrid-Empty-5x5-v0", "MiniGrid-LavaCrossingS9N1-v0"]
)
def test_observation_space_contains_the_observations(env_id):
    env = FullGridObsWrapper(gym.make(env_id))
    obs, _ = env.reset(seed=7)
    assert obs["image"].shape == (GRID_SIZE, GRID_SIZE, 3)
    assert env.observation_space.contains(obs)
    for a in (2, 1, 2, 0, 2):
        obs, *_ = env.step(a)
        assert env.observation_space.contains(obs)
    env.close()


@pytest.mark.parametrize("env_id", [FOURROOMS_ID, "MiniGrid-Empty-5x5-v0", "MiniGrid-SimpleCrossingS9N1-v0"])
def test_wrapper_matches_minigrid_fully_obs_and_pads_with_walls(env_id):
    ours = FullGridObsWrapper(gym.make(env_id))
    theirs = FullyObsWrapper(gym.make(env_id))
    for seed in (0, 1):
        a, _ = ours.reset(seed=seed)
        b, _ = theirs.reset(seed=seed)
        for action in (None, 2, 1, 2):
            if action is not None:
                a, *_ = ours.step(action)
                b, *_ = theirs.step(action)
            w, h = b["image"].shape[:2]
            assert a["image"].shape == (GRID_SIZE, GRID_SIZE, 3) and a["image"].dtype == np.uint8
            # the world keeps its coordinates ...
            np.testing.assert_array_equal(a["image"][:w, :h], b["image"])
            # ... and everything outside it is wall
            outside = np.ones((GRID_SIZE, GRID_SIZE), dtype=bool)
            outside[:w, :h] = False
            assert (a["image"][outside] == WALL_CELL).all()
            assert a["direction"] == b["direction"] == ours.unwrapped.agent_dir
            x, y, d = agent_pose(a["image"])
            assert (x, y) == tuple(ours.unwrapped.agent_pos) and d == a["direction"]
            assert a["mission"] == b["mission"]
    ours.close()
    theirs.close()


def test_small_env_is_padded_and_the_agent_keeps_its_coordinates():
    env = FullGridObsWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    obs, _ = env.reset(seed=0)
    image = obs["image"]
    assert (image[5:, :] == WALL_CELL).all() and (image[:, 5:] == WALL_CELL).all()
    assert agent_pose(image)[:2] == (1, 1)  # Empty places the agent at (1, 1)
    assert image[3, 3, 0] == OBJECT_TO_IDX["goal"]  # and the goal at (size-2, size-2)
    env.close()


def test_grid_sizes_up_to_25_and_refusals():
    big = EmptyEnv(size=25)
    assert FullGridObsWrapper(big).grid_size == 25  # the default canvas grows to the world
    with pytest.raises(GridTooLargeError, match="25x25"):
        FullGridObsWrapper(big, grid_size=19)
    big.reset(seed=0)
    with pytest.raises(GridTooLargeError, match="19x19"):
        encode_env(big)
    too_big = EmptyEnv(size=27)
    with pytest.raises(GridTooLargeError, match="27x27"):
        FullGridObsWrapper(too_big)
    full_obs, _ = FullyObsWrapper(too_big).reset(seed=0)
    with pytest.raises(GridTooLargeError):
        observation_grid(full_obs)
    assert issubclass(GridTooLargeError, ValueError)
    # exactly 19×19 is fine
    FullGridObsWrapper(EmptyEnv(size=GRID_SIZE))


def test_partial_view_raises_observation_error_that_says_how_to_wrap():
    env = gym.make(FOURROOMS_ID)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (7, 7, 3)
    with pytest.raises(ObservationError, match="FullyObsWrapper"):
        observation_grid(obs)
    with pytest.raises(ObservationError):
        observation_grid(obs["image"])  # not a dict
    with pytest.raises(ObservationError):
        observation_grid({"image": np.zeros((19, 19), dtype=np.uint8)})
    assert issubclass(ObservationError, ValueError)
    env.close()


def test_observation_grid_reads_both_full_grid_formats():
    ours = FullGridObsWrapper(gym.make("MiniGrid-Empty-8x8-v0"))
    theirs = FullyObsWrapper(gym.make("MiniGrid-Empty-8x8-v0"))
    a, _ = ours.reset(seed=4)
    b, _ = theirs.reset(seed=4)
    a, *_ = ours.step(1)
    b, *_ = theirs.step(1)
    image_a, dir_a = observation_grid(a)
    image_b, dir_b = observation_grid(b)
    np.testing.assert_array_equal(image_a, image_b)
    assert image_a.shape == (GRID_SIZE, GRID_SIZE, 3)
    assert dir_a == dir_b == 1
    # without a "direction" key the direction is read off the agent cell
    image_c, dir_c = observation_grid({"image": b["image"]})
    np.testing.assert_array_equal(image_c, image_a)
    assert dir_c == 1


def test_encode_env_and_layout_of():
    env = gym.make(FOURROOMS_ID)
    env.reset(seed=5)
    enc = encode_env(env)
    image = enc["image"]
    base = env.unwrapped
    assert enc["direction"] == base.agent_dir
    assert int((image[:, :, 0] == AGENT).sum()) == 1
    x, y = base.agent_pos
    assert tuple(image[x, y]) == (AGENT, COLOR_TO_IDX["red"], base.agent_dir)
    layout = layout_of(image)
    assert int((layout[:, :, 0] == AGENT).sum()) == 0
    assert tuple(layout[x, y]) == (OBJECT_TO_IDX["empty"], 0, 0)
    np.testing.assert_array_equal(layout, base.grid.encode())
    env.close()


def test_to_model_input_shapes_and_indexing():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 11, size=(4, GRID_SIZE, GRID_SIZE, 3), dtype=np.uint8)
    directions = np.array([0, 1, 2, 3])
    batch = to_model_input(images, directions)
    assert tuple(batch["grid"].shape) == (4, 3, GRID_SIZE, GRID_SIZE)
    assert str(batch["grid"].dtype) == "torch.int64" and str(batch["direction"].dtype) == "torch.int64"
    assert batch["grid"][2, 1, 5, 7].item() == images[2, 5, 7, 1]
    np.testing.assert_array_equal(batch["grid"].numpy(), images.transpose(0, 3, 1, 2))
    assert batch["direction"].tolist() == [0, 1, 2, 3]


def test_package_exports():
    for name in envs.__all__:
        assert hasattr(envs, name)
    assert envs.FOURROOMS_ID == "MiniGrid-FourRooms-v0"


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "MazeMDLM/Maze-19x19-v0"])
def test_wrapper_reuses_the_grid_only_while_it_cannot_change(env_id):
    # pickup / drop / toggle change the grid (key picked up, door opened): the cached encoding
    # must be dropped after them, and every observation must equal a fresh encoding
    env = FullGridObsWrapper(gym.make(env_id))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    changed = False
    for _ in range(300):
        action = int(rng.choice([0, 1, 2, 2, 3, 5]))
        before = env.unwrapped.grid.encode()
        obs, _, terminated, truncated, _ = env.step(action)
        changed |= not np.array_equal(before, env.unwrapped.grid.encode())
        assert np.array_equal(obs["image"], encode_env(env)["image"])
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(1000)))
            assert np.array_equal(obs["image"], encode_env(env)["image"])
    assert changed or env_id.startswith("MazeMDLM")  # DoorKey's grid did change at least once
