"""Registry-driven tests: every supported env gets the same checks, as in MiniGrid's own suite.

For each id in :data:`envs.registry.SUPPORTED`: the registry's facts match the env, the symbolic
dynamics match MiniGrid's ``step`` on random action sequences (state, reward, termination), the
batched simulator matches the one-step rules, the expert's plan solves the env and is
deterministic. Small worlds also check the expert's optimality against an unpruned brute-force
BFS over the full state.
"""

from __future__ import annotations

import re
from collections import deque

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers our envs)
from envs.dynamics import simulate_world, straighten_plan
from envs.expert import solve_state
from envs.observation import FullGridObsWrapper
from envs.registry import EXCLUDED, SUPPORTED, UnsupportedEnvError, lookup
from envs.rules import useful_actions
from envs.tasks import MissionError, parse_mission
from envs.world import FAILURE, RUNNING, SUCCESS, encode_cell, state_from_env, world_step

ALL = sorted(SUPPORTED)
# seeds whose expert search is quick (the ObstructedMaze family has seeds that take seconds)
EXPERT_SEEDS = {env_id: (2,) if "Full" in env_id else (0, 2) if "ObstructedMaze" in env_id else (0, 1)
                for env_id in ALL}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MiniGrid's v0 ids warn


def _make(env_id: str):
    return gym.make(env_id, disable_env_checker=True)


def _start(env, seed: int):
    env.reset(seed=seed)
    state = state_from_env(env)
    return state, parse_mission(env.unwrapped.mission).bind(state.layout)


@pytest.mark.parametrize("env_id", ALL)
def test_registry_entry_matches_the_env(env_id):
    spec = lookup(env_id)
    env = _make(env_id)
    obs, info = FullGridObsWrapper(env).reset(seed=0)
    base = env.unwrapped
    assert (base.width, base.height, base.max_steps) == (spec.width, spec.height, spec.max_steps)
    assert parse_mission(base.mission).kind == spec.kind
    assert obs["image"].shape[0] == max(19, spec.size) and obs["task"][0] == spec.kind
    assert tuple(obs["carrying"]) == (1, 0, 0) and isinstance(info["boxes"], list)


@pytest.mark.parametrize("env_id", ALL)
def test_dynamics_match_minigrid_step(env_id):
    """Random sequences (half of the actions among those that change the state, so pickups,
    drops and toggles happen) stepped in MiniGrid and in :func:`world_step` side by side."""
    env = _make(env_id)
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        state, task = _start(env, seed)
        start, actions = state, []
        for _ in range(80):
            useful = [a for a, _ in useful_actions(state, task)]
            action = int(rng.choice(useful)) if useful and rng.random() < 0.5 else int(rng.integers(0, 7))
            actions.append(action)
            _, reward, terminated, truncated, _ = env.step(action)
            state, status = world_step(state, action, task)
            base = env.unwrapped
            assert np.array_equal(state.layout, base.grid.encode()), (seed, actions)
            assert state.pose == (int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir))
            assert state.carrying == encode_cell(base.carrying)
            assert (reward > 0) == (status == SUCCESS) and terminated == (status != RUNNING), (seed, actions)
            if terminated or truncated:
                break
        batched = simulate_world(start, np.array([actions, actions]), task)
        assert batched.status.tolist() == [status, status]
        assert tuple(batched.poses[0, batched.steps[0]]) == state.pose
        assert tuple(batched.carrying[0, batched.steps[0]]) == state.carrying
        assert np.array_equal(batched.layouts[1], state.layout)
    env.close()


@pytest.mark.parametrize("env_id", ALL)
def test_expert_solves_and_is_deterministic(env_id):
    env = _make(env_id)
    for seed in EXPERT_SEEDS[env_id]:
        state, task = _start(env, seed)
        plan = solve_state(state, task)
        assert plan.solvable and plan == solve_state(state, task)
        rewarded = False
        for t, action in enumerate(plan.actions):
            _, reward, terminated, truncated, _ = env.step(action)
            state, status = world_step(state, action, task)
            if terminated or truncated:
                rewarded = terminated and reward > 0 and t == len(plan) - 1
                break
        assert rewarded and status == SUCCESS, (seed, plan.actions)
    env.close()


def _brute_force_length(state, task, limit: int = 400_000) -> int | None:
    """Unpruned BFS over the full state with every action (an independent check of the expert)."""
    seen, queue = {state.key()}, deque([(state, 0)])
    while queue:
        current, g = queue.popleft()
        for action in range(7):
            nxt, status = world_step(current, action, task)
            if status == SUCCESS:
                return g + 1
            if status == FAILURE or nxt.key() in seen:
                continue
            seen.add(nxt.key())
            assert len(seen) < limit, "brute force too large for a test"
            queue.append((nxt, g + 1))
    return None


SMALL = ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-Fetch-5x5-N2-v0", "MiniGrid-GoToDoor-5x5-v0",
         "MiniGrid-GoToObject-6x6-N2-v0", "MiniGrid-PutNear-6x6-N2-v0", "MiniGrid-KeyCorridorS3R1-v0",
         "MiniGrid-LavaGapS5-v0", "MiniGrid-Unlock-v0", "MiniGrid-RedBlueDoors-6x6-v0",
         "MiniGrid-MultiRoom-N2-S4-v0", "MiniGrid-Empty-Random-5x5-v0"]


@pytest.mark.parametrize("env_id", SMALL)
def test_expert_is_optimal_against_brute_force(env_id):
    env = _make(env_id)
    for seed in range(3):
        state, task = _start(env, seed)
        assert len(solve_state(state, task)) == _brute_force_length(state, task), seed
    env.close()


@pytest.mark.parametrize("pattern,reason", EXCLUDED)
def test_excluded_ids_are_refused_with_their_reason(pattern, reason):
    examples = {
        r"MiniGrid-Dynamic-Obstacles-.*": "MiniGrid-Dynamic-Obstacles-8x8-v0",
        r"MiniGrid-Memory.*": "MiniGrid-MemoryS7-v0",
        r"MiniGrid-Playground-v0": "MiniGrid-Playground-v0",
        r"MiniGrid-WFC-.*": "MiniGrid-WFC-MazeSimple-v0",
        r"BabyAI-.*": "BabyAI-GoToRedBall-v0",
    }
    with pytest.raises(UnsupportedEnvError, match=re.escape("is not supported: " + reason)):
        lookup(examples[pattern])


def test_every_minigrid_id_is_supported_or_excluded():
    from gymnasium.envs.registration import registry

    for env_id in registry:
        if env_id.startswith(("MiniGrid-", "BabyAI-")) and env_id not in SUPPORTED:
            with pytest.raises(UnsupportedEnvError, match="is not supported"):
                lookup(env_id)


def test_dynamic_obstacles_never_reuse_a_stale_grid():
    env = FullGridObsWrapper(_make("MiniGrid-Dynamic-Obstacles-8x8-v0"))  # the wrapper itself still works
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(0)  # turning: the obstacles move all the same
        assert np.array_equal(obs["image"][:8, :8, 0] == 6, env.unwrapped.grid.encode()[:, :, 0] == 6)


@pytest.mark.parametrize("mission,kind,objs", [
    ("get to the green goal square", "goal", (None, None)),
    ("pick up the purple box", "pickup", ((7, 3), None)),
    ("you must fetch a yellow key", "fetch", ((5, 4), None)),
    ("go to the red door", "goto", ((4, 0), None)),
    ("open the door", "open", (None, None)),
    ("open the red door then the blue door", "open_seq", ((4, 0), (4, 2))),
    ("put the blue key near the purple box", "putnear", ((5, 2), (7, 3))),
])
def test_missions_parse(mission, kind, objs):
    task = parse_mission(mission)
    assert task.name == kind and (task.obj, task.obj2) == objs
    assert parse_mission(mission) == type(task).from_vector(task.vector())


def test_unknown_mission_is_an_error():
    with pytest.raises(MissionError, match="is not a supported task"):
        parse_mission("dance on the table")


@pytest.mark.parametrize("env_id", ALL)
def test_batched_simulation_equals_world_step_row_for_row(env_id):
    """simulate_world on rows that differ (one navigates only, the others use object actions at
    different steps, so some steps have no object action in any row and take the navigation-only
    path, 0.24) equals world_step on each row alone, step for step."""
    env = _make(env_id)
    state, task = _start(env, 3)
    env.close()
    rng = np.random.default_rng(1)
    horizon = 30
    rows = [rng.integers(0, 3, horizon)]  # navigation only
    for p_object in (0.1, 0.3, 0.6):
        row = rng.integers(0, 3, horizon)
        objects = rng.random(horizon) < p_object
        row[objects] = rng.integers(3, 7, objects.sum())
        rows.append(row)
    plans = np.stack(rows)
    out = simulate_world(state, plans, task)
    for b, plan in enumerate(plans.tolist()):
        s, status, steps = state, RUNNING, horizon
        for t, action in enumerate(plan):
            assert tuple(out.poses[b, t]) == s.pose and tuple(out.carrying[b, t]) == s.carrying, (b, t)
            s, status = world_step(s, action, task)
            if status != RUNNING:
                steps = t + 1
                break
        assert (out.status[b], out.steps[b]) == (status, steps), b
        assert tuple(out.poses[b, steps]) == s.pose and np.array_equal(out.layouts[b], s.layout), b


@pytest.mark.parametrize("env_id", ALL)
def test_straightened_plan_ends_in_the_same_state(env_id):
    """straighten_plan on the executed actions of random plans (walks and object actions mixed)
    from the env's start gives a plan no longer than them that world_step takes to the same state
    (layout, pose, carried object; the cell only where the walk ended the episode) with the same
    verdict, never ending it early; over the rows some plan gets shorter."""
    env = _make(env_id)
    state, task = _start(env, 4)
    env.close()
    rng = np.random.default_rng(2)
    shorter = 0
    for p_object in (0.0, 0.0, 0.1, 0.2):
        row = rng.choice([0, 1, 2, 2, 2], 60)
        objects = rng.random(60) < p_object
        row[objects] = rng.integers(3, 6, objects.sum())
        s, status, actions, poses = state, RUNNING, [], [state.pose]
        for action in row.tolist():  # keep the actions that did something, as a search's plans do
            after, status = world_step(s, action, task)
            if status != RUNNING or after.pose != s.pose or after.carrying != s.carrying \
                    or not np.array_equal(after.layout, s.layout):
                actions.append(action)
                poses.append(after.pose)
            s = after
            if status != RUNNING:
                break
        out = straighten_plan(state.layout, np.array(poses), actions)
        assert len(out) <= len(actions)
        again, verdict = state, RUNNING
        for action in out:
            assert verdict == RUNNING
            again, verdict = world_step(again, action, task)
        entered = status != RUNNING and actions[-1] == 2  # ended by walking into the goal or lava
        assert verdict == status and again.carrying == s.carrying
        assert again.pose[: 2 if entered else 3] == s.pose[: 2 if entered else 3]  # heading no matter there
        assert np.array_equal(again.layout, s.layout)
        shorter += len(out) < len(actions)
    if all(dim > 5 for dim in state.layout.shape[:2]) and "Maze" not in env_id:
        assert shorter  # rooms this big give random walks detours to straighten
