"""On-policy (DAgger) data: ``collect(..., on_policy=...)`` labels the states an agent reached, and
``collect-data --on-policy CKPT`` plays a checkpoint's greedy MDLM policy to get them."""

from __future__ import annotations

import numpy as np
import pytest

from envs.collect import ExpertFailure, collect, make_env
from envs.dataset import load_episodes, save_episodes
from envs.expert import solve_state
from envs.tasks import parse_mission
from envs.world import LEFT, NOTHING, RUNNING, SUCCESS, WorldState, state_from_env, world_step
from maze_mdlm.checkpoint import save_checkpoint
from maze_mdlm.cli import main
from tests.models import SEARCH_TINY, forward_policy

DOORKEY = "MiniGrid-DoorKey-5x5-v0"
SEED = 3


def expert_plan(env_id: str, seed: int) -> list[int]:
    env = make_env(env_id)
    env.reset(seed=seed)
    state = state_from_env(env)
    return list(solve_state(state, parse_mission(env.unwrapped.mission).bind(state.layout)).actions)


def states_after(env_id: str, seed: int, prefix: list[int]) -> list[WorldState]:
    """The env's state after each action of ``prefix`` (index t-1: after t actions)."""
    env = make_env(env_id)
    env.reset(seed=seed)
    out = []
    for action in prefix:
        env.step(action)
        out.append(state_from_env(env))
    return out


def test_on_policy_starts_are_the_agents_states_with_an_empty_hand_labelled_optimally():
    plan = expert_plan(DOORKEY, SEED)  # an agent that follows the expert: it picks the key up on the way
    episodes = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [plan]}, every=1)
    visited = states_after(DOORKEY, SEED, plan)
    empty = [t for t in range(1, len(plan)) if visited[t - 1].carrying == NOTHING]
    assert 0 < len(empty) < len(plan) - 1  # the states with the key in hand are not labelled
    assert len(episodes) == len(empty) and set(episodes.seeds.tolist()) == {SEED}
    for i, t in enumerate(empty):
        state = visited[t - 1]
        assert tuple(episodes.start_pose[i]) == state.pose
        assert np.array_equal(episodes.layouts[i][: state.layout.shape[0], : state.layout.shape[1]], state.layout)
        assert episodes.lengths[i] == len(plan) - t  # the rest of an optimal path is optimal
    assert episodes.meta["on_policy"] == {"every": 1, "max_steps": 128,
                                          "skipped": {"no_solution": 0, "budget": 0, "step_limit": 0}}


def test_a_state_met_again_is_labelled_once_and_the_stride_is_kept():
    spin = [LEFT] * 16  # back at the start pose every 4 actions
    once = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [spin]}, every=2)
    directions = sorted(int(d) for d in once.start_pose[:, 2])
    assert len(once) == 2 and len(set(directions)) == 2  # t = 2, 4 only: 6, 8, ... repeat them
    short = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [spin[:3]]}, every=2)
    assert len(short) == 1  # t = 2 only


def test_each_labelled_episode_solves_its_start():
    spin = [LEFT, LEFT, LEFT]
    episodes = collect([DOORKEY], 2, SEED, on_policy={DOORKEY: [spin, spin]}, every=1)
    assert sorted(set(episodes.seeds.tolist())) == [SEED, SEED + 1]
    env = make_env(DOORKEY)
    for i in range(len(episodes)):
        env.reset(seed=int(episodes.seeds[i]))
        truth = state_from_env(env)
        state = WorldState(truth.layout, tuple(int(v) for v in episodes.start_pose[i]), NOTHING, truth.boxes)
        task = parse_mission(env.unwrapped.mission).bind(truth.layout)
        status = RUNNING
        for action in episodes.actions[episodes.offsets[i]: episodes.offsets[i + 1]].tolist():
            assert status == RUNNING
            state, status = world_step(state, action, task)
        assert status == SUCCESS


def test_on_policy_input_is_checked():
    with pytest.raises(ValueError, match="actions of 2 episodes"):
        collect([DOORKEY], 2, SEED, on_policy={DOORKEY: [[LEFT]]})
    with pytest.raises(ValueError, match="every"):
        collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [[LEFT]]}, every=0)
    with pytest.raises(ExpertFailure, match="no on-policy start to label"):
        collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [[LEFT]]}, every=2)  # one action: no state at t = 2


def test_collect_data_on_policy_plays_the_checkpoints_greedy_policy(tmp_path, capsys):
    from agents import MDLMAgent
    from maze_mdlm.cli_on_policy import agent_actions

    model = forward_policy(SEARCH_TINY)  # greedy: forward until the wall, then (no-op rule) a turn
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model, model.config, None, 0, {"horizon": 8}, None)
    played = agent_actions(MDLMAgent.from_checkpoint(ckpt), DOORKEY, [SEED, SEED + 1], max_steps=12)
    assert played == agent_actions(MDLMAgent.from_checkpoint(ckpt), DOORKEY, [SEED, SEED + 1], max_steps=12)
    assert all(len(p) == 12 for p in played)  # never solves DoorKey: capped
    out = tmp_path / "d.mdd"
    argv = ["collect-data", "--env", DOORKEY, "--episodes", "2", "--seed", str(SEED), "--on-policy", str(ckpt),
            "--on-policy-every", "3", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    data = load_episodes(out)
    expected = collect([DOORKEY], 2, SEED, every=3, on_policy={
        DOORKEY: agent_actions(MDLMAgent.from_checkpoint(ckpt), DOORKEY, [SEED, SEED + 1])})
    assert np.array_equal(data.start_pose, expected.start_pose) and np.array_equal(data.actions, expected.actions)
    assert data.meta["command"].endswith(f"--on-policy {ckpt} --on-policy-every 3")
    assert main([*argv, "--on-policy-holding"]) == 0, capsys.readouterr().err
    held = load_episodes(out)
    assert held.meta["on_policy"]["holding"] is True and held.meta["command"].endswith("--on-policy-holding")


def test_starts_the_expert_cannot_label_are_counted_not_hidden(monkeypatch):
    from envs import collect as collect_module
    from envs.expert import ExpertBudgetError
    from envs.guessing_expert import GuessFailure, NoSolution

    label = collect_module._label
    failures = iter([ExpertBudgetError("budget"), NoSolution("none"), GuessFailure("too long")])

    def flaky(*args):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return label(*args)

    monkeypatch.setattr(collect_module, "_label", flaky)
    episodes = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [[LEFT] * 4]}, every=1)
    assert len(episodes) == 1 and int(episodes.start_pose[0, 2]) == states_after(DOORKEY, SEED, [LEFT] * 4)[-1].pose[2]
    assert episodes.meta["on_policy"]["skipped"] == {"budget": 1, "no_solution": 1, "step_limit": 1}


def test_holding_starts_are_labelled_and_stored_in_a_version_3_file(tmp_path):
    plan = expert_plan(DOORKEY, SEED)
    episodes = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [plan]}, every=1, holding=True)
    visited = states_after(DOORKEY, SEED, plan)
    assert len(episodes) == len(plan) - 1  # every state before the last step, the key-in-hand ones too
    held = [i for i in range(len(episodes)) if visited[i].carrying != NOTHING]
    assert held and all(tuple(episodes.carrying[i]) == visited[i].carrying for i in range(len(episodes)))
    assert [int(n) for n in episodes.lengths] == [len(plan) - t for t in range(1, len(plan))]
    assert episodes.meta["on_policy"]["holding"] is True and episodes.meta["dataset_version"] == 3
    save_episodes(tmp_path / "held.mdd", episodes)
    assert b'"version": 3' in (tmp_path / "held.mdd").read_bytes()[:8192]
    loaded = load_episodes(tmp_path / "held.mdd")
    np.testing.assert_array_equal(loaded.carrying, episodes.carrying)
    firsts = loaded.offsets[:-1]
    np.testing.assert_array_equal(loaded.states.carrying[firsts], episodes.carrying)  # training sees the key
    env = make_env(DOORKEY)
    env.reset(seed=SEED)
    task = parse_mission(env.unwrapped.mission).bind(state_from_env(env).layout)
    for i in held:  # each label, replayed from its stored start (key in hand), solves the task
        size = visited[i].layout.shape[0]
        state = WorldState(loaded.layouts[i][:size, :size].copy(), tuple(int(v) for v in loaded.start_pose[i]),
                           tuple(int(v) for v in loaded.carrying[i]))
        for action in loaded.actions[loaded.offsets[i]: loaded.offsets[i + 1]].tolist():
            state, status = world_step(state, action, task)
        assert status == SUCCESS
    plain = collect([DOORKEY], 1, SEED, on_policy={DOORKEY: [plan]}, every=1)
    assert plain.format_version == 2 and "holding" not in plain.meta["on_policy"]  # 0.17's files, unchanged
    with pytest.raises(ValueError, match="on-policy starts only"):
        collect([DOORKEY], 1, SEED, holding=True)


def test_a_box_in_hand_is_stored_and_replayed_with_its_contents(tmp_path):
    from envs.collect import _box_rows
    from envs.dataset import CARRIED_BOX, Episodes
    from envs.world import BOX, DROP, EMPTY_IDX, KEY, TOGGLE, WALL_IDX

    layout = np.zeros((19, 19, 3), dtype=np.uint8)
    layout[..., 0] = WALL_IDX
    layout[1:4, 1:4, 0] = EMPTY_IDX
    box, key = (BOX, 2, 0), (KEY, 1, 0)
    assert _box_rows(0, WorldState(layout, (1, 2, 0), box, (("carried", key),))) == [(0, CARRIED_BOX, CARRIED_BOX, *key)]
    episodes = Episodes(seeds=np.array([5]), env_index=np.array([0], dtype=np.uint8), layouts=layout[None],
                        start_pose=np.array([[1, 2, 0]], dtype=np.int16), offsets=np.array([0, 3]),
                        actions=np.array([DROP, TOGGLE, LEFT], dtype=np.uint8), meta={"envs": [DOORKEY]},
                        boxes=np.array([[0, CARRIED_BOX, CARRIED_BOX, *key]], dtype=np.int16),
                        carrying=np.array([box], dtype=np.uint8))
    save_episodes(tmp_path / "box.mdd", episodes)
    states = load_episodes(tmp_path / "box.mdd").states
    assert [tuple(c) for c in states.carrying] == [box, NOTHING, NOTHING]
    assert tuple(states.layouts[states.layout_id[1]][2, 2]) == box  # dropped in front of the agent ...
    assert tuple(states.layouts[states.layout_id[2]][2, 2]) == key  # ... and opened: what it held
