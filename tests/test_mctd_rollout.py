"""MCTD's plan continuation and shortcuts: the memoised greedy rollout reproduces the plain
window-by-window loop, cycles are replayed, goals beyond the horizon are found, and
goal-reaching paths are shortcut without growing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.mctd import MCTDConfig, MCTDPlanner
from agents.mctd.planner import choose_actions
from agents.mctd.rollout import NOOP, ContinuationMemo, GreedyContinuation
from envs.rules import forbidden_first_actions
from envs.dynamics import FAILURE, LEFT, RUNNING, SUCCESS, simulate_plans
from envs.observation import place_agent, to_model_input
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import DONE, END
from tests.models import SEARCH_TINY, forward_policy, perturbed_policy
from tests.worlds import CORRIDOR, CORRIDOR_START, make_layout, observe

TINY = SEARCH_TINY


def test_place_agent_is_the_inverse_of_layout_of():
    from envs.observation import layout_of, place_agent

    images = place_agent(CORRIDOR, np.array([[1, 1, 0], [4, 2, 1]]))
    assert images.shape == (2, 19, 19, 3)
    assert np.array_equal(images[0], observe(CORRIDOR, (1, 1, 0))["image"])
    assert np.array_equal(images[1], observe(CORRIDOR, (4, 2, 1))["image"])
    assert all(np.array_equal(layout_of(image), CORRIDOR) for image in images)


def test_shortcut_cuts_a_dead_end_excursion_into_turns():
    from envs.dynamics import FORWARD, LEFT, RIGHT, shortcut, simulate_plans

    # a T: corridor y=1 from x=1..5 with a branch down at x=3; goal at (3, 4)
    free = [(x, 1) for x in range(1, 6)] + [(3, 2), (3, 3)]
    layout = make_layout(free, goal=(3, 4))
    start = (1, 1, 0)  # facing +x
    wander = [FORWARD, FORWARD, FORWARD, FORWARD,  # overshoot to the dead end at (5, 1)
              RIGHT, RIGHT, FORWARD, FORWARD,  # turn around, back to (3, 1) facing -x
              LEFT, FORWARD, FORWARD, FORWARD]  # face +y, down to the goal
    out = simulate_plans(layout, start, np.array([wander]))
    assert out.status[0] == SUCCESS
    short = shortcut(out.poses[0, : out.steps[0] + 1])
    assert short == [FORWARD, FORWARD, RIGHT, FORWARD, FORWARD, FORWARD]
    again = simulate_plans(layout, start, np.array([short]))
    assert again.status[0] == SUCCESS and again.steps[0] == len(short)


def test_shortcut_keeps_the_end_pose_and_never_grows_a_path():
    from envs.dynamics import shortcut, simulate_plans

    layout = make_layout([(x, y) for x in range(1, 8) for y in range(1, 8)], goal=(7, 7))
    rng = np.random.default_rng(0)
    plans = rng.choice([0, 1, 2, 2, 3], size=(64, 30))
    out = simulate_plans(layout, (1, 1, 0), plans)
    for row in range(64):
        poses = out.poses[row, : out.steps[row] + 1]
        short = shortcut(poses)
        redo = simulate_plans(layout, (1, 1, 0), np.array([short + [3]]))
        assert tuple(redo.poses[0, len(short)]) == tuple(poses[-1])
        assert len(short) <= int(np.isin(plans[row, : out.steps[row]], (0, 1, 2)).sum())


def room(size: int = 6, goal: tuple[int, int] = (17, 17)) -> np.ndarray:
    """An open ``size`` x ``size`` room of cells (1..size, 1..size), the goal outside it."""
    return make_layout([(x, y) for x in range(1, size + 1) for y in range(1, size + 1)], goal=goal)


def test_straighten_replaces_a_u_detour_by_the_direct_walk():
    from envs.dynamics import FORWARD, LEFT, RIGHT, shortcut, simulate_plans, straighten, walkable

    layout = room()
    start = (2, 2, 3)  # facing up
    # right, 3 cells east, right, 3 cells south, right, 3 cells west: a U that revisits no cell
    u_turn = [RIGHT] + [FORWARD] * 3 + [RIGHT] + [FORWARD] * 3 + [RIGHT] + [FORWARD] * 3
    out = simulate_plans(layout, start, np.array([u_turn]))
    assert shortcut(out.poses[0]) == u_turn  # the loop cut sees nothing to cut
    short = straighten(start, u_turn, walkable(layout))
    assert short == [RIGHT, RIGHT] + [FORWARD] * 3 + [RIGHT]  # turn round, 3 cells south, face west
    again = simulate_plans(layout, start, np.array([short]))
    assert tuple(again.poses[0, -1]) == tuple(out.poses[0, -1]) == (2, 5, 2)
    assert straighten(start, short, walkable(layout)) == short  # nothing left to straighten


def test_straighten_keeps_a_detour_that_the_walls_force():
    from envs.dynamics import FORWARD, LEFT, RIGHT, straighten, walkable

    layout = room()
    layout[2:6, 3] = layout[0, 0]  # a wall from x=2 to x=5 on row 3; the way round is at x=1 or x=6
    start = (3, 2, 1)  # facing down, above the wall
    around = [RIGHT, FORWARD, FORWARD, LEFT, FORWARD, FORWARD, LEFT, FORWARD, FORWARD]  # west, down, east
    assert straighten(start, around, walkable(layout)) == around
    layout[3, 3] = layout[2, 2]  # a gap right below the start: straight down is shorter
    assert straighten(start, around, walkable(layout)) == [FORWARD, FORWARD, LEFT]


def test_straighten_never_grows_a_walk_keeps_its_end_pose_and_walks_only_free_cells():
    from envs.dynamics import FORWARD, shortcut, simulate_plans, straighten, walkable

    rng = np.random.default_rng(0)
    shorter = 0
    for _ in range(200):
        layout = room(8)
        cells = [(x, y) for x in range(1, 9) for y in range(1, 9)]
        for k in rng.choice(len(cells), size=12, replace=False):
            layout[cells[k]] = layout[0, 0]  # walls scattered in the room
        free_cells = [c for c in cells if walkable(layout)[c]]
        x, y = free_cells[rng.integers(len(free_cells))]
        start = (int(x), int(y), int(rng.integers(4)))
        out = simulate_plans(layout, start, rng.choice([0, 1, 2, 2, 2], size=(1, 40)))
        walk = shortcut(out.poses[0])
        short = straighten(start, walk, walkable(layout))
        again = simulate_plans(layout, start, np.array([short + [3]]))
        assert len(short) <= len(walk)
        assert tuple(again.poses[0, len(short)]) == tuple(out.poses[0, -1])
        moved = again.poses[0, 1 : len(short) + 1] != again.poses[0, : len(short)]
        assert moved[np.array(short) == FORWARD].any(axis=1).all()  # every forward moves: no wall in the way
        shorter += len(short) < len(walk)
    assert shorter >= 20  # random walks in a room have detours to straighten


def reference_windows(model, layout, poses, live, horizon, steps, execute, max_windows):
    """The plain loop GreedyContinuation must reproduce: every live row decodes a window at
    every step until it reaches the goal or lava, or runs out of windows. -> ([K, n*E], rows decoded)."""
    pose, live, windows, decoded = np.array(poses), np.array(live), [], 0
    for _ in range(max_windows):
        rows = np.nonzero(live)[0]
        if not len(rows):
            break
        inputs = to_model_input(place_agent(layout, pose[rows]), pose[rows, 2])
        forbid = torch.zeros(len(rows), horizon, model.config.num_outputs, dtype=torch.bool)
        forbid[:, 0, :7] = torch.from_numpy(np.stack([forbidden_first_actions(layout, tuple(p)) for p in pose[rows]]))
        forbid[:, 0, 7:] = True  # MASK and END: a window never ends before its first action
        tokens = sample(model, inputs["grid"], inputs["direction"], horizon, steps, forbid=forbid)
        window = np.full((len(pose), execute), NOOP)
        # END and the object actions (no-ops in a navigation world) are executed as no-ops
        window[rows] = np.where(np.isin(tokens[:, :execute].numpy(), (3, 4, 5, DONE, END)), NOOP,
                                tokens[:, :execute].numpy())
        windows.append(window)
        decoded += len(rows)
        out = simulate_plans(layout, pose, window)
        pose, live = out.final_pose.copy(), live & (out.status == RUNNING)
    return (np.concatenate(windows, axis=1) if windows else np.zeros((len(pose), 0), np.int64)), decoded


LAVA_CELLS = ((3, 3), (4, 2), (2, 5), (5, 4))
OPEN_ROOM = make_layout([(x, y) for x in range(1, 7) for y in range(1, 7)], goal=(6, 6), lava=LAVA_CELLS)


def room_rows() -> tuple[np.ndarray, np.ndarray]:
    """16 start poses in OPEN_ROOM (the last 4 repeat the first 4) and which are live."""
    rng = np.random.default_rng(0)
    cells = [(x, y) for x in range(1, 7) for y in range(1, 7) if (x, y) not in LAVA_CELLS + ((6, 6),)]
    poses = np.array([(*cells[i], rng.integers(4)) for i in rng.choice(len(cells), 12)])
    poses = np.concatenate([poses, poses[:4]])  # duplicate rows share their windows
    live = np.ones(len(poses), dtype=bool)
    live[[2, 7]] = False
    return poses, live


def room_continuation(model, layout=OPEN_ROOM, execute=2, **kwargs) -> GreedyContinuation:
    """A continuation in OPEN_ROOM's tests: H=6 windows, 2 unmasking steps, at most 8 windows."""
    return GreedyContinuation(model, layout, horizon=6, steps=2, execute=execute, max_windows=8, **kwargs)


def test_continuation_reproduces_the_plain_window_loop_with_fewer_decodes():
    model = perturbed_policy(TINY, seed=6)  # its rollouts from these poses loop, reach the goal, or die
    poses, live = room_rows()
    continuation = room_continuation(model, merge_goals=False)
    expected, decoded = reference_windows(model, OPEN_ROOM, poses, live, 6, 2, 2, 8)
    got = continuation.extend(poses, live)
    assert np.array_equal(got, expected)
    assert (got[~live] == NOOP).all()
    status = simulate_plans(OPEN_ROOM, poses, got).status
    assert {RUNNING, SUCCESS, FAILURE} <= set(status[live].tolist())
    assert continuation.decoded < decoded and continuation.model_calls <= expected.shape[1] // 2
    # a later round from the same poses reuses every window: no new decode
    calls = continuation.model_calls
    assert np.array_equal(continuation.extend(poses, live), expected)
    assert continuation.model_calls == calls


def test_merged_rows_only_gain_goals():
    # the same rows with merging: a row differs from the plain loop only if it met a goal-reaching
    # continuation, and then it reaches the goal; plain successes stay successes
    model = perturbed_policy(TINY, seed=6)
    poses, live = room_rows()
    expected, _ = reference_windows(model, OPEN_ROOM, poses, live, 6, 2, 2, 8)
    plain = simulate_plans(OPEN_ROOM, poses, expected)
    continuation = room_continuation(model)
    got = continuation.extend(poses, live)
    merged = simulate_plans(OPEN_ROOM, poses, got)
    assert got.shape[1] <= 16
    assert (merged.status[plain.status == SUCCESS] == SUCCESS).all()
    changed = [r for r in range(len(poses))
               if not np.array_equal(got[r, : plain.steps[r]], expected[r, : plain.steps[r]])
               or merged.status[r] != plain.status[r]]
    assert all(merged.status[r] == SUCCESS for r in changed)
    assert continuation.to_goal  # goal-reaching poses were recorded


def test_a_shared_memo_replays_an_earlier_searchs_windows_and_keeps_contexts_apart():
    # one continuation per search: with the episode's memo the second search decodes nothing that
    # the first one did and returns the plain loop's actions; another layout or window setting
    # decodes anew (without goal merging, whose timing the memo may change: next test)
    model = perturbed_policy(TINY, seed=6)
    poses, live = room_rows()
    memo = ContinuationMemo()

    def run(layout=OPEN_ROOM, execute=2, shared=memo):
        continuation = room_continuation(model, layout, execute, merge_goals=False, memo=shared)
        return continuation.extend(poses, live), continuation

    first, searched = run()
    assert searched.model_calls > 0 and memo.windows == len(searched.windows) > 0
    again, replayed = run()
    assert replayed.model_calls == 0 and np.array_equal(again, first)
    assert np.array_equal(first, reference_windows(model, OPEN_ROOM, poses, live, 6, 2, 2, 8)[0])
    moved = OPEN_ROOM.copy()
    moved[6, 6], moved[1, 6] = moved[1, 6], moved[6, 6]  # the goal elsewhere: the windows differ
    other, elsewhere = run(layout=moved)
    assert elsewhere.model_calls > 0 and np.array_equal(other, run(layout=moved, shared=None)[0])
    assert run(execute=3)[1].model_calls > 0
    assert memo.windows > len(searched.windows)


def test_a_memo_over_its_limit_starts_over_at_the_next_search():
    model = perturbed_policy(TINY, seed=6)
    poses, live = room_rows()
    memo = ContinuationMemo(limit=5)

    def search():
        continuation = room_continuation(model, merge_goals=False, memo=memo)
        return continuation.extend(poses, live), continuation

    first, searched = search()
    assert memo.windows == len(searched.windows) > 5  # a search itself is never cut short
    again, fresh = search()
    assert np.array_equal(again, first) and fresh.model_calls == searched.model_calls  # decoded anew
    with pytest.raises(ValueError, match="limit"):
        ContinuationMemo(limit=0)


def test_with_a_memo_merged_rows_still_only_gain_goals():
    # replayed windows let rows run ahead, so a row may meet a goal-reaching continuation that it
    # met later (or not at all) without the memo: every row that differs reaches the goal
    model = perturbed_policy(TINY, seed=6)
    poses, live = room_rows()
    memo = ContinuationMemo()
    room_continuation(model, memo=memo).extend(poses, live)
    plain = room_continuation(model).extend(poses, live)
    replayed = room_continuation(model, memo=memo)
    got = replayed.extend(poses, live)
    assert replayed.model_calls == 0
    before, after = simulate_plans(OPEN_ROOM, poses, plain), simulate_plans(OPEN_ROOM, poses, got)
    assert (after.status[before.status == SUCCESS] == SUCCESS).all()
    changed = [r for r in range(len(poses)) if not np.array_equal(got[r], plain[r])]
    assert changed and all(after.status[r] == SUCCESS for r in changed)  # here one row takes another route


def test_a_row_that_meets_a_goal_reaching_continuation_follows_it_without_the_model():
    net = forward_policy(TINY)  # greedy: always forward
    layout = make_layout([(x, 1) for x in range(1, 11)], goal=(11, 1))
    continuation = GreedyContinuation(net, layout, horizon=4, steps=1, execute=2, max_windows=8)
    first = continuation.extend(np.array([[1, 1, 0]]), np.array([True]))
    assert simulate_plans(layout, (1, 1, 0), first).status[0] == SUCCESS
    calls = continuation.model_calls
    # (4, 1) is inside the first continuation's second window, (5, 1) mid-window of the third
    later = continuation.extend(np.array([[4, 1, 0], [6, 1, 0]]), np.array([True, True]))
    assert continuation.model_calls == calls
    out = simulate_plans(layout, np.array([[4, 1, 0], [6, 1, 0]]), later)
    assert (out.status == SUCCESS).all() and out.steps.tolist() == [7, 5]


def test_speculation_saves_model_calls_and_changes_no_action():
    from envs.dynamics import FORWARD

    torch.manual_seed(0)
    net = MDLMPolicy(TINY).eval()
    with torch.no_grad():
        net.final.head.bias[FORWARD] = 5.0  # greedy: always forward, so every guess comes true
    layout = make_layout([(x, 1) for x in range(1, 18)], goal=(18, 1))
    got = {}
    for speculate in (False, True):
        continuation = GreedyContinuation(net, layout, horizon=4, steps=1, execute=2, max_windows=10,
                                          merge_goals=False, speculate=speculate)
        got[speculate] = (continuation.extend(np.array([[1, 1, 0]]), np.array([True])), continuation.model_calls)
    assert np.array_equal(got[True][0], got[False][0])
    assert simulate_plans(layout, (1, 1, 0), got[True][0]).status[0] == SUCCESS
    assert got[False][1] == 9 and got[True][1] == 5  # 17 forwards, 2 per window: one call per 2 windows


def test_continuation_replays_a_cycle_without_the_model(untrained):
    # the untrained model's greedy token is `left` everywhere: two lefts per window turn the agent
    # around, so window starts alternate between two poses forever
    continuation = GreedyContinuation(untrained, OPEN_ROOM, horizon=4, steps=1, execute=2, max_windows=7)
    got = continuation.extend(np.array([[1, 1, 0]]), np.array([True]))
    assert got.shape == (1, 14) and (got == LEFT).all()
    assert continuation.model_calls == 2  # (1, 1, 0) and (1, 1, 2), then the cycle is replayed
    expected, _ = reference_windows(untrained, OPEN_ROOM, np.array([[1, 1, 0]]), [True], 4, 1, 2, 7)
    assert np.array_equal(got, expected)


def test_escape_samples_out_of_a_greedy_cycle_and_reaches_a_goal_the_replay_never_does(untrained):
    # greedy `left` turns in place forever; with escape the rows caught in that cycle sample their
    # remaining windows (temperature 1), so some walk the 5-cell corridor to the goal
    layout = make_layout([(x, 1) for x in range(1, 6)], goal=(6, 1))
    starts, live = np.tile([[1, 1, 0]], (8, 1)), np.ones(8, dtype=bool)

    def run(escape: float, seed: int = 0):
        continuation = GreedyContinuation(untrained, layout, horizon=4, steps=1, execute=2, max_windows=20,
                                          generator=torch.Generator().manual_seed(seed), escape=escape)
        got = continuation.extend(starts, live)
        return got, simulate_plans(layout, starts, got), continuation

    replay, replay_out, off = run(0.0)
    assert (replay == LEFT).all() and (replay_out.status == RUNNING).all() and off.escapes == 0
    assert off.cycles == 8  # every row met its own window start once and replayed from there
    got, out, on = run(1.0)
    assert on.escapes == on.cycles == 8  # every row met its own window start once, then never replays
    assert (got[:, :4] == LEFT).all()  # the two greedy windows before the cycle are unchanged
    assert (out.status == SUCCESS).any() and not np.array_equal(got[:, 4:], replay[:, 4:])
    assert on.model_calls > off.model_calls  # sampled windows are decoded, never memoised
    again, _, _ = run(1.0)
    assert np.array_equal(again, got)  # the search's generator drives the sampling: reproducible
    assert not np.array_equal(run(1.0, seed=1)[0], got)


def test_escape_must_not_be_negative(untrained):
    with pytest.raises(ValueError, match="escape"):
        GreedyContinuation(untrained, OPEN_ROOM, horizon=4, steps=1, execute=2, max_windows=2, escape=-1.0)
    with pytest.raises(ValueError, match="rollout_escape"):
        MCTDConfig(rollout_escape=-0.5)


def test_continuation_stops_rows_at_the_goal_with_noops_after(perturbed):
    continuation = GreedyContinuation(perturbed, CORRIDOR, horizon=4, steps=2, execute=2, max_windows=3)
    plans = np.array([[2, 2, 2, 3], [3, 3, 3, 3]])  # the first reaches (4, 1): still running; the second idles
    out = simulate_plans(CORRIDOR, CORRIDOR_START, plans)
    live = np.array([True, False])  # pretend the second is done: it must not be continued
    extra = continuation.extend(out.final_pose, live)
    assert extra.shape[0] == 2 and extra.shape[1] % 2 == 0 and extra.shape[1] <= 6
    assert (extra[1] == NOOP).all()
    assert set(extra[0].tolist()) <= {0, 1, 2, NOOP}
    done = simulate_plans(CORRIDOR, tuple(out.final_pose[0]), extra[:1])
    if done.status[0] != RUNNING:  # nothing but NOOPs after the episode ended
        assert (extra[0, done.steps[0]:] == NOOP).all()


def forward_corridor():
    """A straight corridor whose goal is 10 forwards from ``start``, and a denoiser that says
    `forward` greedily: (net, layout, start, image)."""
    layout = make_layout([(x, 1) for x in range(1, 11)], goal=(11, 1))
    start = (1, 1, 0)
    return forward_policy(TINY), layout, start, observe(layout, start)["image"]


def test_mctd_with_rollouts_finds_a_goal_beyond_the_horizon():
    # the goal is 10 forwards away, the plans are 4 long; a denoiser that prefers `forward` only
    # gets there by continuing its plans with the policy
    from envs.dynamics import FORWARD, simulate_plans

    net, layout, start, image = forward_corridor()
    config = dict(horizon=4, num_subplans=2, max_expansions=8)
    off = MCTDPlanner(net, MCTDConfig(rollout_windows=0, **config), torch.Generator().manual_seed(0))
    without = off.search(image, layout, start, 60)
    assert not without.found_goal and without.stats["rollout_calls"] == 0
    on = MCTDPlanner(net, MCTDConfig(rollout_windows=4, rollout_execute=2, **config), torch.Generator().manual_seed(0))
    result = on.search(image, layout, start, 60)
    assert result.found_goal and result.stats["rollout_calls"] >= 1
    assert set(result.phase_seconds) == {"denoise", "continue", "score", "straighten"}
    assert result.phase_seconds["continue"] > 0 and without.phase_seconds["continue"] == 0
    # the returned goal-reaching plan is straightened, and timed; a search without a goal has none
    assert result.phase_seconds["straighten"] > 0 and without.phase_seconds["straighten"] == 0
    assert sum(result.phase_seconds.values()) <= result.seconds
    unstraightened = MCTDPlanner(net, MCTDConfig(rollout_windows=4, rollout_execute=2, straighten=False, **config),
                                 torch.Generator().manual_seed(0)).search(image, layout, start, 60)
    assert unstraightened.found_goal and unstraightened.phase_seconds["straighten"] == 0
    best = choose_actions(result, 4, 2)
    assert best == [FORWARD] * 10
    assert simulate_plans(layout, start, np.array([best])).status[0] == SUCCESS


SIX_CELL_CORRIDOR = make_layout([(x, 1) for x in range(1, 7)], goal=(7, 1))  # goal 6 forwards from (1, 1, 0)


def test_mctd_with_escape_finds_the_goal_past_a_greedy_cycle(untrained):
    # the untrained denoiser's greedy continuation turns in place; with rollout_escape the
    # continuations caught in that cycle sample on and some reach the goal 6 cells away (seeds
    # 0-9 all find it; 10 cells away, a 60-action random walk rarely does)
    layout = SIX_CELL_CORRIDOR
    start = (1, 1, 0)
    image = observe(layout, start)["image"]
    config = dict(horizon=4, num_subplans=2, max_expansions=8, rollout_windows=30, rollout_execute=2)
    results = {}
    for escape in (0.0, 1.0):
        planner = MCTDPlanner(untrained, MCTDConfig(rollout_escape=escape, **config), torch.Generator().manual_seed(0))
        results[escape] = planner.search(image, layout, start, 200)
    off, on = results[0.0], results[1.0]
    assert not off.found_goal and off.stats["rollout_cycles"] > 0
    assert off.stats["escape_retry"] == 0 and off.stats["rollout_escapes"] == 0
    # the greedy tree failed with cycled continuations, so a second tree sampled out of them
    assert on.found_goal and on.stats["escape_retry"] == 1 and on.stats["rollout_escapes"] > 0
    assert on.expansions > off.expansions == 8  # both trees count; the first one used its budget
    best = choose_actions(on, 4, 2)
    assert simulate_plans(layout, start, np.array([best])).status[0] == SUCCESS  # the kept tree is the second


def test_agent_stats_report_how_often_a_search_retried_with_escape(untrained):
    # the corridor's goal is 6 forwards away: no 4-token plan reaches it, and the untrained greedy
    # continuation turns in place, so every greedy search fails with cycled continuations
    from agents.mctd import MCTDAgent

    layout = SIX_CELL_CORRIDOR
    rates = {}
    for escape in (0.0, 1.0):
        agent = MCTDAgent(untrained, seed=0, max_steps=200, horizon=4, num_subplans=2, max_expansions=8,
                          rollout_windows=30, rollout_execute=2, rollout_escape=escape)
        agent.reset(observe(layout, (1, 1, 0)))
        agent.act(observe(layout, (1, 1, 0)))
        stats = agent.stats()
        rates[escape] = (stats["decisions"], stats["escape_retry_rate"])
    assert rates == {0.0: (1, 0.0), 1.0: (1, 1.0)}


def test_escape_leaves_a_search_that_finds_the_goal_greedily_unchanged():
    # a denoiser that prefers `forward` reaches the corridor's goal greedily: with rollout_escape the
    # search is the same search (no second tree, same plans, same generator draws)
    net, layout, start, image = forward_corridor()
    config = dict(horizon=4, num_subplans=2, max_expansions=8, rollout_windows=4, rollout_execute=2)
    runs = []
    for escape in (0.0, 1.0):
        generator = torch.Generator().manual_seed(0)
        result = MCTDPlanner(net, MCTDConfig(rollout_escape=escape, **config), generator).search(image, layout, start, 60)
        runs.append((result, generator.get_state()))
    (off, off_rng), (on, on_rng) = runs
    assert off.found_goal and on.found_goal and on.stats["escape_retry"] == 0
    assert on.expansions == off.expansions and choose_actions(on, 4, 2) == choose_actions(off, 4, 2)
    assert torch.equal(on_rng, off_rng)
