"""Symbolic dynamics against MiniGrid's own ``step``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.world_object import Ball, Box, Door, Floor, Key, Lava, Wall

import envs  # noqa: F401  (registers the maze)
from envs import FOURROOMS_ID, MAZE_ID
from envs.dynamics import (
    DONE,
    FAILURE,
    FORWARD,
    LEFT,
    RIGHT,
    RUNNING,
    SUCCESS,
    passable,
    simulate_plans,
    step,
)
from envs.expert import solve
from envs.observation import GOAL, LAVA, encode_env, layout_of

ENV_IDS = [
    FOURROOMS_ID,
    MAZE_ID,
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-DoorKey-5x5-v0",  # a locked door and a key: both block
]


def _pose(env) -> tuple[int, int, int]:
    base = env.unwrapped
    return int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir)


def _layout(env) -> np.ndarray:
    return layout_of(encode_env(env)["image"])


def _status(terminated: bool, reward: float) -> int:
    if not terminated:
        return RUNNING
    return SUCCESS if reward > 0 else FAILURE


def _run_real(env, actions) -> tuple[list, list, int]:
    """Step the real env; returns (poses before each action + final, statuses, executed count)."""
    poses, statuses = [_pose(env)], []
    for a in actions:
        _, reward, terminated, truncated, _ = env.step(int(a))
        poses.append(_pose(env))
        statuses.append(_status(terminated, reward))
        if terminated or truncated:
            break
    return poses, statuses, len(statuses)


def _check_against_real(env, layout, actions) -> tuple[list, int]:
    """Compare ``step`` and ``simulate_plans`` with the real env on one action sequence."""
    start = _pose(env)
    real_poses, real_status, n = _run_real(env, actions)
    # step-by-step
    pose = start
    for t in range(n):
        pose, status = step(layout, pose, int(actions[t]))
        assert pose == real_poses[t + 1], f"t={t} action={actions[t]}"
        assert status == real_status[t], f"t={t} action={actions[t]}"
    # vectorised: the executed prefix, and the whole sequence (it must stop where the env stopped)
    final = real_status[-1] if n else RUNNING
    for plan in (np.asarray(actions[:n]), np.asarray(actions)):
        out = simulate_plans(layout, start, plan[None, :])
        np.testing.assert_array_equal(out.poses[0, : n + 1], np.array(real_poses))
        assert out.status[0] == final
        if final != RUNNING:
            assert out.steps[0] == n
            assert (out.poses[0, n:] == real_poses[-1]).all()  # frozen once the episode ended
        else:
            assert out.steps[0] == len(plan)
        np.testing.assert_array_equal(out.final_pose[0], out.poses[0, -1])
    return real_poses, n


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_dynamics_equal_minigrid_step_on_random_actions(env_id):
    rng = np.random.default_rng(sum(map(ord, env_id)))
    env = gym.make(env_id)
    total, bumps, moves = 0, 0, 0
    for seed in range(4):
        env.reset(seed=seed)
        layout = _layout(env)
        actions = rng.choice([LEFT, RIGHT, FORWARD], size=60, p=[0.25, 0.25, 0.5])
        poses, n = _check_against_real(env, layout, actions)
        total += n
        for t in range(n):
            if actions[t] == FORWARD:
                if poses[t] == poses[t + 1]:
                    bumps += 1
                else:
                    moves += 1
    env.close()
    assert total >= 40
    assert moves > 0 and bumps > 0  # both kinds of forward step were exercised


def test_goal_is_success_and_lava_is_failure_like_the_real_env():
    """Walk into the goal (expert plan) and into lava (expert plan to a lava tile) in LavaCrossing."""
    env = gym.make("MiniGrid-LavaCrossingS9N1-v0")
    for seed in range(3):
        env.reset(seed=seed)
        layout = _layout(env)
        plan = solve(layout, _pose(env)).actions
        _, n = _check_against_real(env, layout, np.array(plan + (FORWARD,)))
        assert n == len(plan)

        env.reset(seed=seed)
        # make a lava tile the only "goal" so the expert walks straight into it
        lava = np.argwhere(layout[:, :, 0] == LAVA)[0]
        probe = layout.copy()
        probe[probe[:, :, 0] == GOAL] = (2, 5, 0)  # goal -> wall
        probe[lava[0], lava[1]] = (GOAL, 1, 0)
        into_lava = solve(probe, _pose(env))
        assert into_lava.solvable
        start = _pose(env)
        real_poses, real_status, n = _run_real(env, into_lava.actions)
        assert n == len(into_lava) and real_status[-1] == FAILURE
        pose, status = start, RUNNING
        for a in into_lava.actions:
            pose, status = step(layout, pose, a)
        assert status == FAILURE and pose == real_poses[-1]
        out = simulate_plans(layout, start, np.array([into_lava.actions + (FORWARD, FORWARD)]))
        assert out.status[0] == FAILURE and out.steps[0] == len(into_lava)
        assert tuple(out.final_pose[0]) == real_poses[-1]
    env.close()


def test_dynamics_with_doors_objects_floor_and_lava():
    """Clutter an empty room with every kind of tile and compare with the real env."""
    rng = np.random.default_rng(0)
    env = gym.make("MiniGrid-Empty-8x8-v0")
    kinds = [
        lambda: Door("red", is_open=True),
        lambda: Door("blue", is_open=False),
        lambda: Door("green", is_open=False, is_locked=True),
        lambda: Key("yellow"),
        lambda: Ball("purple"),
        lambda: Box("grey"),
        lambda: Floor("blue"),
        lambda: Wall(),
        lambda: Lava(),
    ]
    checked = 0
    for seed in range(12):
        env.reset(seed=seed)
        base = env.unwrapped
        free = [(x, y) for x in range(1, 7) for y in range(1, 7)
                if base.grid.get(x, y) is None and (x, y) != tuple(base.agent_pos)]
        for i in rng.choice(len(free), size=10, replace=False):
            base.grid.set(*free[i], kinds[int(rng.integers(len(kinds)))]())
        layout = _layout(env)
        actions = rng.choice([LEFT, RIGHT, FORWARD], size=40, p=[0.25, 0.25, 0.5])
        _, n = _check_against_real(env, layout, actions)
        checked += n
    env.close()
    assert checked >= 100


def test_passable_matches_can_overlap():
    env = gym.make("MiniGrid-Empty-8x8-v0")
    env.reset(seed=0)
    base = env.unwrapped
    objects = [Door("red", is_open=True), Door("red"), Door("red", is_locked=True), Key(), Ball(), Box("red"),
               Floor(), Wall(), Lava()]
    for i, obj in enumerate(objects):
        base.grid.set(1 + i % 6, 2 + i // 6, obj)
    ok = passable(base.grid.encode())
    for x in range(8):
        for y in range(8):
            cell = base.grid.get(x, y)
            assert ok[x, y] == (cell is None or cell.can_overlap()), (x, y, cell)
    env.close()


def test_non_navigation_actions_leave_the_pose_unchanged():
    env = gym.make("MiniGrid-Empty-8x8-v0")
    env.reset(seed=0)
    layout, pose = _layout(env), _pose(env)
    for a in (3, 4, 5, DONE):
        assert step(layout, pose, a) == (pose, RUNNING)
        env.step(a)
        assert _pose(env) == pose
    env.close()


def _empty_room() -> np.ndarray:
    env = gym.make("MiniGrid-Empty-8x8-v0")
    env.reset(seed=0)
    layout = _layout(env)
    env.close()
    return layout  # goal at (6, 6); walls on the border


def test_simulate_plans_stops_at_end():
    layout = _empty_room()
    start = (1, 1, 0)
    plans = np.array(
        [
            [FORWARD, FORWARD, DONE, FORWARD, FORWARD],
            [DONE, FORWARD, FORWARD, FORWARD, FORWARD],
            [FORWARD, FORWARD, FORWARD, FORWARD, FORWARD],
            [RIGHT, DONE, LEFT, LEFT, LEFT],
        ]
    )
    out = simulate_plans(layout, start, plans)
    assert out.steps.tolist() == [2, 0, 5, 1]
    assert out.status.tolist() == [RUNNING] * 4
    assert out.poses.shape == (4, 6, 3)
    assert out.final_pose.tolist() == [[3, 1, 0], [1, 1, 0], [6, 1, 0], [1, 1, 1]]
    # the pose is frozen from END on
    assert (out.poses[0, 2:] == [3, 1, 0]).all()
    assert (out.poses[1] == [1, 1, 0]).all()
    # last row: bumped into the east wall at x = 6
    assert out.poses[2, :, 0].tolist() == [1, 2, 3, 4, 5, 6]


def test_simulate_plans_stops_at_the_goal():
    layout = _empty_room()
    plan = [FORWARD] * 5 + [RIGHT] + [FORWARD] * 5 + [LEFT, FORWARD]
    out = simulate_plans(layout, (1, 1, 0), np.array([plan]))
    assert out.status[0] == SUCCESS
    assert out.steps[0] == 11
    assert out.final_pose[0].tolist() == [6, 6, 1]


def test_simulate_plans_batch_equals_step_loop_and_does_not_mutate_inputs():
    rng = np.random.default_rng(1)
    env = gym.make(FOURROOMS_ID)
    env.reset(seed=3)
    layout = _layout(env)
    env.close()
    free = np.argwhere(passable(layout) & (layout[:, :, 0] != GOAL))
    n, horizon = 32, 24
    starts = np.concatenate([free[rng.choice(len(free), n)], rng.integers(0, 4, (n, 1))], axis=1).astype(np.int64)
    plans = rng.choice([LEFT, RIGHT, FORWARD, DONE], size=(n, horizon), p=[0.2, 0.2, 0.55, 0.05]).astype(np.int64)
    copies = layout.copy(), starts.copy(), plans.copy()
    for array in (layout, starts, plans):
        array.flags.writeable = False  # any in-place write would raise
    out = simulate_plans(layout, starts, plans)
    np.testing.assert_array_equal(layout, copies[0])
    np.testing.assert_array_equal(starts, copies[1])
    np.testing.assert_array_equal(plans, copies[2])
    for i in range(n):
        pose, status, steps = tuple(int(v) for v in starts[i]), RUNNING, 0
        expected = [pose]
        for a in plans[i]:
            if a == DONE or status != RUNNING:
                break
            pose, status = step(layout, pose, int(a))
            steps += 1
            expected.append(pose)
        assert out.status[i] == status and out.steps[i] == steps
        np.testing.assert_array_equal(out.poses[i, : len(expected)], np.array(expected))
        assert (out.poses[i, len(expected):] == expected[-1]).all()
    # a single shared pose given as a tuple is broadcast to every plan
    shared = simulate_plans(layout, tuple(starts[0]), plans[:3])
    assert (shared.poses[:, 0] == starts[0]).all()
