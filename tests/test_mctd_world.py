"""MCTD under the full MiniGrid rules: plans are scored with the task's own predicate, object
actions reach the env, the shortcut keeps excursions that changed the world, the navigation fast
path equals the full rules, and act_batch plays exactly as act."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from agents.mctd import MCTDAgent, MCTDConfig, MCTDPlanner
from agents.mctd.agent import GOAL_EXECUTE, RESEARCH_EXPANSIONS, reaches_goal
from agents.mctd.planner import shortcut_successes, untried_first_actions
from agents.mctd.scoring import member
from agents.base import first_position_mask
from agents.mctd.world import NOOP, SearchWorld, guess_box_contents
from envs.dynamics import (
    DONE, DROP, FAILURE, FORWARD, LEFT, PICKUP_ACTION, RIGHT, RUNNING, SUCCESS, TOGGLE, WorldState, simulate_world,
    world_step,
)
from envs.tasks import FETCH, GOTO, PICKUP, BoundTask, Task
from envs.world import LOCKED_STATE, NOTHING
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from tests.models import SEARCH_TINY, forward_policy, perturbed_policy
from tests.worlds import make_layout, observe

TINY = SEARCH_TINY
F, L, R = FORWARD, LEFT, RIGHT
KEY, BALL, DOOR, BOX = (OBJECT_TO_IDX[name] for name in ("key", "ball", "door", "box"))
YELLOW, BLUE, RED = COLOR_TO_IDX["yellow"], COLOR_TO_IDX["blue"], COLOR_TO_IDX["red"]


def locked_corridor() -> np.ndarray:
    """Corridor y=1 from x=1..4, a locked yellow door at (5, 1), the goal at (6, 1), the yellow
    key in a niche at (3, 2)."""
    layout = make_layout([(x, 1) for x in range(1, 5)], goal=(6, 1))
    layout[5, 1] = (DOOR, YELLOW, LOCKED_STATE)
    layout[3, 2] = (KEY, YELLOW, 0)
    return layout


# from (1, 1) facing right: overshoot to (4, 1), come back to (3, 1), pick the key up below,
# walk to the door, unlock it, walk to the goal (13 actions, one loop before the pickup)
KEY_DOOR_PLAN = [F, F, F, R, R, F, L, PICKUP_ACTION, L, F, TOGGLE, F, F]


# ----------------------------------------------------------------------------- env layer
def test_simulate_world_reports_the_steps_that_changed_the_world():
    plans = np.array([KEY_DOOR_PLAN, [F, F, PICKUP_ACTION] + [F] * 10])
    out = simulate_world(WorldState(locked_corridor(), (1, 1, 0)), plans)
    assert out.status.tolist() == [SUCCESS, RUNNING]
    assert np.nonzero(out.effects[0])[0].tolist() == [7, 10]  # the pickup and the unlock
    assert not out.effects[1].any()  # a pickup with nothing ahead changes nothing
    # a token outside 0..6 is a no-op that counts as a step
    noop = simulate_world(WorldState(locked_corridor(), (1, 1, 0)), np.array([[NOOP, F, NOOP]]))
    assert noop.steps[0] == 3 and tuple(noop.poses[0, -1]) == (2, 1, 0)


def _world_step_rows(state: WorldState, plans: np.ndarray) -> list[tuple[int, int, tuple, tuple]]:
    """(status, steps, final pose, final carrying) of each plan by :func:`world_step` alone."""
    out = []
    for plan in plans.tolist():
        s, status, steps = state, RUNNING, len(plan)
        for t, action in enumerate(plan):
            s, status = world_step(s, action)
            if status != RUNNING:
                steps = t + 1
                break
        out.append((status, steps, s.pose, s.carrying))
    return out


def test_simulate_world_keeps_each_plans_layout_changes_to_that_plan():
    """The navigation of a plan that changed its layout follows the change (an opened door, a key
    picked up), and no other plan's does; a start on the goal is left like any cell."""
    state = WorldState(locked_corridor(), (1, 1, 0), (KEY, YELLOW, 0))
    plans = np.array([
        [F, F, F, TOGGLE, F, F, L],  # unlocks the door and walks through it to the goal
        [F, F, F, L, R, F, F],  # walks into the same door, still locked for it
        [F, DROP, R, R, L, L, F],  # drops the key ahead: the corridor is blocked for it only
        [R, R, L, L, F, F, F],  # walks through the cell the row above dropped the key on
    ])
    out = simulate_world(state, plans)
    got = [(s, n, tuple(p), tuple(c)) for s, n, p, c in zip(out.status.tolist(), out.steps.tolist(),
                                                            out.poses[:, -1].tolist(), out.carrying[:, -1].tolist())]
    assert got == _world_step_rows(state, plans)
    assert [g[:3] for g in got] == [(SUCCESS, 6, (6, 1, 0)), (RUNNING, 7, (4, 1, 0)), (RUNNING, 7, (2, 1, 0)),
                                    (RUNNING, 7, (4, 1, 0))]
    opened = locked_corridor()
    opened[5, 1, 2] = 0  # the door open
    on_goal = WorldState(opened, (6, 1, 2))
    plans = np.array([[F, R, R, F, F], [R, R, L, L, R]])
    out = simulate_world(on_goal, plans)
    assert out.status.tolist() == [SUCCESS, RUNNING] and out.steps.tolist() == [4, 5]
    assert [tuple(p) for p in out.poses[:, -1].tolist()] == [(6, 1, 0), (6, 1, 3)]


def boxed_corridor() -> np.ndarray:
    """:func:`locked_corridor` with the yellow key hidden: a closed (empty-looking) box at (3, 2)."""
    layout = locked_corridor()
    layout[3, 2] = (BOX, RED, 0)
    return layout


# KEY_DOOR_PLAN with the box opened before the pickup (14 actions)
BOX_DOOR_PLAN = KEY_DOOR_PLAN[:7] + [TOGGLE] + KEY_DOOR_PLAN[7:]


def test_guess_box_contents_is_the_missing_key_of_the_nearest_locked_door():
    assert guess_box_contents(boxed_corridor()) == (((3, 2), (KEY, YELLOW, 0)),)
    assert guess_box_contents(locked_corridor()) == ()  # no box
    assert guess_box_contents(boxed_corridor(), carrying=(KEY, YELLOW, 0)) == ()  # the key is in hand
    in_sight = boxed_corridor()
    in_sight[1, 2] = (KEY, YELLOW, 0)
    assert guess_box_contents(in_sight) == ()  # the key lies in the grid
    two = boxed_corridor()  # a locked blue door at (1, 5) near a second box at (1, 4)
    two[1, 5], two[1, 4] = (DOOR, BLUE, LOCKED_STATE), (BOX, RED, 0)
    assert guess_box_contents(two) == (((1, 4), (KEY, BLUE, 0)), ((3, 2), (KEY, YELLOW, 0)))
    assert guess_box_contents(two, carrying=(KEY, BLUE, 0)) == (((1, 4), (KEY, YELLOW, 0)), ((3, 2), (KEY, YELLOW, 0)))


def three_rooms() -> np.ndarray:
    """A middle room (x 5..9, y 5..9) with a locked yellow door (4, 6) to a left room (x 1..3) and a
    locked blue door (10, 6) to a right room (x 11..13); a closed box in the middle room at (6, 6),
    nearer the yellow door, and one in the left room at (2, 8); a red ball at (12, 8) on the right."""
    rooms = [(x, y) for y in range(5, 10) for x in (*range(1, 4), *range(5, 10), *range(11, 14))]
    layout = make_layout(rooms, goal=(13, 9))
    layout[4, 6], layout[10, 6] = (DOOR, YELLOW, LOCKED_STATE), (DOOR, BLUE, LOCKED_STATE)
    layout[6, 6], layout[2, 8], layout[12, 8] = (BOX, RED, 0), (BOX, RED, 0), (BALL, RED, 0)
    return layout


def test_a_box_is_guessed_to_open_the_door_of_its_own_room_nearest_the_target():
    layout = three_rooms()
    # no target: each box holds the key of its room's nearest door (the middle box's is yellow)
    assert guess_box_contents(layout) == (((2, 8), (KEY, YELLOW, 0)), ((6, 6), (KEY, YELLOW, 0)))
    # the ball on the right: the middle box holds the key of the door towards it; the left room's
    # only door is yellow, so its box still holds a yellow key
    assert guess_box_contents(layout, targets=np.array([[12, 8]])) == (
        ((2, 8), (KEY, YELLOW, 0)), ((6, 6), (KEY, BLUE, 0)))
    # the search takes the target from the task
    world = SearchWorld(layout, (7, 7, 0), task=BoundTask(Task(PICKUP, (BALL, RED))))
    assert world.boxes == (((2, 8), (KEY, YELLOW, 0)), ((6, 6), (KEY, BLUE, 0)))
    assert world.target_cells(layout, NOTHING).tolist() == [[2, 8], [6, 6]]  # the boxes, while no key is in sight
    assert world.goal_cells(layout, NOTHING).tolist() == [[12, 8]]


def test_the_search_reaches_the_goal_through_a_box_guessed_to_hold_the_key():
    guessing, blind = SearchWorld(boxed_corridor(), (1, 1, 0)), SearchWorld(boxed_corridor(), (1, 1, 0), guess_boxes=False)
    plans = np.array([BOX_DOOR_PLAN, BOX_DOOR_PLAN[:7] + [R] * 7])
    scores, sim = guessing.score(plans, max_steps=100)
    assert sim.status.tolist() == [SUCCESS, RUNNING] and scores[0] == pytest.approx(1 - 0.9 * 14 / 100)
    assert blind.score(plans, max_steps=100)[1].status.tolist() == [RUNNING, RUNNING]  # 0.12: the box was empty
    # the box is the target while no key is in sight; the unopened box keeps its guess for a continuation
    assert guessing.target_cells(boxed_corridor(), NOTHING).tolist() == [[3, 2]]
    assert blind.target_cells(boxed_corridor(), NOTHING).tolist() == [[6, 1]]
    opened = BOX_DOOR_PLAN[:8] + [R] * 6
    states = guessing.final_states(guessing.simulate(np.array([opened, plans[1]])), np.array([True, True]))
    assert states[0].boxes == () and tuple(states[0].layout[3, 2]) == (KEY, YELLOW, 0)
    assert states[1].boxes == guessing.boxes


def test_a_carried_box_keeps_its_guess_through_pickup_and_drop():
    """0.33: a box in hand is guessed like one on the agent's cell, and the rules carry each box's
    contents along when it is picked up, moved and dropped (before, the search assumed a box it
    had picked up, or one a plan had moved, empty)."""
    emptied = boxed_corridor()
    emptied[3, 2] = (OBJECT_TO_IDX["empty"], 0, 0)
    red_box = (BOX, RED, 0)
    assert guess_box_contents(emptied, red_box, holder=(3, 1)) == (("carried", (KEY, YELLOW, 0)),)
    assert guess_box_contents(emptied, red_box) == ()  # no holder: the carried box is not guessed
    assert SearchWorld(emptied, (3, 1, 1), red_box).boxes == (("carried", (KEY, YELLOW, 0)),)
    # from (3, 1) facing the box at (3, 2): pick it up, turn to (2, 1), drop it there, and open it
    world = SearchWorld(boxed_corridor(), (3, 1, 1))
    plans = np.array([[PICKUP_ACTION, R, DROP, TOGGLE], [PICKUP_ACTION, R, DROP, L], [PICKUP_ACTION, L, L, L]])
    out = simulate_world(world.state(), plans)
    by_steps = []
    for plan in plans.tolist():
        state = world.state()
        for action in plan:
            state, _ = world_step(state, action)
        by_steps.append(state.boxes)
    assert out.boxes == by_steps == [(), (((2, 1), (KEY, YELLOW, 0)),), (("carried", (KEY, YELLOW, 0)),)]
    assert tuple(out.layouts[0, 2, 1]) == (KEY, YELLOW, 0)  # the moved box opens on the guessed key
    states = world.final_states(world.simulate(plans), np.array([True, True, True]))
    assert [s.boxes for s in states] == by_steps


def test_an_incumbent_is_kept_only_while_the_box_guess_says_it_reaches_the_goal():
    """0.33: the rest of a goal-reaching plan (the incumbent) is checked against the latest
    search's box guess; a plan through a box that is now guessed to hold nothing is dropped."""
    guess = SearchWorld(boxed_corridor(), (1, 1, 0)).boxes
    assert reaches_goal(BOX_DOOR_PLAN, WorldState(boxed_corridor(), (1, 1, 0), NOTHING, guess), None)
    assert not reaches_goal(BOX_DOOR_PLAN, WorldState(boxed_corridor(), (1, 1, 0)), None)  # an empty box
    assert not reaches_goal(BOX_DOOR_PLAN[:-1], WorldState(boxed_corridor(), (1, 1, 0), NOTHING, guess), None)
    in_sight = boxed_corridor()  # the yellow key lies in a niche at (2, 2): the box is guessed empty
    in_sight[2, 2] = (KEY, YELLOW, 0)
    torch.manual_seed(0)
    agent = MCTDAgent(perturbed_policy(TINY, seed=0), seed=0, max_expansions=4, goal_execute=2)
    episode = agent.new_episode(observe(in_sight, (1, 1, 0)))
    episode.goal_rest = list(BOX_DOOR_PLAN)
    agent.act_batch([episode], [observe(in_sight, (1, 1, 0))])
    assert episode.last_search.boxes == ()
    assert episode.goal_rest != BOX_DOOR_PLAN[2:]  # the old incumbent is not followed
    kept = agent.new_episode(observe(boxed_corridor(), (1, 1, 0)))  # the same incumbent, still valid
    kept.goal_rest = list(BOX_DOOR_PLAN)
    agent.act_batch([kept], [observe(boxed_corridor(), (1, 1, 0))])
    assert kept.queue + kept.goal_rest == BOX_DOOR_PLAN[1:]  # its first action taken, the rest kept


def _play_queued(boxes: tuple, inside: tuple) -> tuple[int, bool]:
    """MCTDAgent with BOX_DOOR_PLAN queued on boxed_corridor, as if its search had chosen it under
    box guess ``boxes``; the real box holds ``inside``. Returns (searches run, goal reached)."""
    torch.manual_seed(0)
    agent = MCTDAgent(perturbed_policy(TINY, seed=0), seed=0, max_expansions=4)
    state = WorldState(boxed_corridor(), (1, 1, 0), NOTHING, (((3, 2), inside),))
    episode = agent.new_episode(observe(state.layout, state.pose))
    episode.queue, episode.boxes = list(BOX_DOOR_PLAN), boxes
    for _ in BOX_DOOR_PLAN:
        action = agent.act_batch([episode], [observe(state.layout, state.pose)])[0]
        state, status = world_step(state, action, None)
        if status == SUCCESS:
            return len(agent.records), True
    return len(agent.records), False


def test_a_box_that_holds_what_the_search_guessed_does_not_drop_the_plan():
    """0.32: the agent predicts each step with the search's box guess, so opening a box that holds
    the guessed key keeps the plan (before, every opened box was a surprise and a new search)."""
    guess = SearchWorld(boxed_corridor(), (1, 1, 0)).boxes
    assert guess == (((3, 2), (KEY, YELLOW, 0)),)
    assert _play_queued(guess, (KEY, YELLOW, 0)) == (0, True)  # the plan runs through, no search
    assert _play_queued((), (KEY, YELLOW, 0))[0] >= 1  # without the guess: surprised at the box
    assert _play_queued(guess, (KEY, BLUE, 0))[0] >= 1  # a box holding something else still surprises


# ----------------------------------------------------------------------------- scores
def test_key_and_door_plan_outranks_plans_that_do_not_get_the_key():
    world = SearchWorld(locked_corridor(), (1, 1, 0))
    assert not world.navigation_only
    no_key = [F, F, F, TOGGLE, F, F] + [RIGHT] * 7  # the door stays locked
    key_only = KEY_DOOR_PLAN[:8] + [L] * 5  # the key, not the door yet
    turn_instead = KEY_DOOR_PLAN[:7] + [R] + [L] * 5  # the same walk without the pickup
    scores, sim = world.score(np.array([KEY_DOOR_PLAN, no_key, key_only, turn_instead]), max_steps=100)
    assert sim.status.tolist() == [SUCCESS, RUNNING, RUNNING, RUNNING]
    assert scores[0] == pytest.approx(1 - 0.9 * 13 / 100)
    assert scores[0] > 0.1 > scores[2] > scores[3] > 0.0  # picking the key up is progress
    assert scores[2] > scores[1]


def test_doorkey_5x5_expert_route_outranks_a_plan_without_the_key():
    import gymnasium as gym

    import envs  # noqa: F401  (registers the envs)
    from envs.expert import solve_env
    from envs.observation import FullGridObsWrapper, observation_task
    from envs.world import state_from_env

    env = FullGridObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"))
    obs, _ = env.reset(seed=3)
    state = state_from_env(env)
    route = list(solve_env(env).actions)
    env.close()
    layout = np.asarray(obs["image"]).copy()
    layout[state.pose[0], state.pose[1]] = (OBJECT_TO_IDX["empty"], 0, 0)
    task = Task.from_vector(observation_task(obs)).bind(layout)
    world = SearchWorld(layout, state.pose, NOTHING, task)
    length = len(route) + 4
    plans = np.full((2, length), NOOP)
    plans[0, : len(route)] = route
    plans[1, : len(route)] = [a if a in (L, R, F) else R for a in route]  # never picks up or toggles
    scores, sim = world.score(plans, max_steps=250)
    assert sim.status.tolist() == [SUCCESS, RUNNING]
    assert scores[0] > 0.1 > scores[1]


def test_lava_and_a_wrong_fetch_pickup_score_as_failures():
    layout = make_layout([(x, y) for x in range(1, 6) for y in range(1, 4)], goal=(17, 17), lava=((3, 1),))
    layout[1, 3] = (BALL, RED, 0)
    layout[4, 3] = (KEY, BLUE, 0)
    task = BoundTask(Task(FETCH, (KEY, BLUE)))
    world = SearchWorld(layout, (1, 2, 0), NOTHING, task)
    plans = np.array([
        [R, PICKUP_ACTION, F, F, F],  # picks up the red ball: the wrong object
        [L, F, R, F, F],  # steps into the lava at (3, 1)
        [F, F, F, R, PICKUP_ACTION],  # the blue key at (4, 3): success
        [F, F, L, L, F],  # wanders
    ])
    scores, sim = world.score(plans, max_steps=100)
    assert sim.status.tolist() == [FAILURE, FAILURE, SUCCESS, RUNNING]
    assert scores[0] == scores[1] == 0.0 and scores[2] > 0.1 > scores[3] > 0.0


def test_done_next_to_the_goto_target_is_a_success_and_elsewhere_a_failure():
    layout = make_layout([(x, 1) for x in range(1, 6)], goal=(17, 17))
    layout[4, 1] = (BALL, RED, 0)
    task = BoundTask(Task(GOTO, (BALL, RED)), ((4, 1),))
    world = SearchWorld(layout, (1, 1, 0), NOTHING, task, end_token=8)
    scores, sim = world.score(np.array([[F, F, DONE, 8], [F, DONE, 8, 8], [F, F, 8, 8]]), max_steps=100)
    assert sim.status.tolist() == [SUCCESS, FAILURE, RUNNING]
    assert scores[0] == pytest.approx(1 - 0.9 * 3 / 100)  # the done counts: the env gets it
    # an old checkpoint's END is `done` (6): always END, a no-op that is never sent
    old = SearchWorld(layout, (1, 1, 0), NOTHING, task, end_token=DONE)
    legacy = old.simulate(np.array([[F, F, DONE, DONE]]))
    assert legacy.status[0] == RUNNING and legacy.executed[0].tolist() == [True, True, False, False]


# ----------------------------------------------------------------------------- navigation fast path
def test_navigation_fast_path_equals_the_full_rules():
    room = [(x, y) for x in range(1, 5) for y in range(1, 5)]
    layout = make_layout(room, goal=(4, 4), lava=((2, 3),))
    rng = np.random.default_rng(0)
    plans = rng.choice([0, 1, 2, 2, 2, 3, 4, 5, 6], size=(256, 32))
    for end_token in (DONE, 8):
        plans_e = np.where(rng.random(plans.shape) < 0.05, end_token, plans)
        fast = SearchWorld(layout, (1, 1, 0), end_token=end_token)
        full = SearchWorld(layout, (1, 1, 0), end_token=end_token)
        assert fast.navigation_only
        full.navigation_only = False
        a, b = fast.simulate(plans_e), full.simulate(plans_e)
        for name in ("status", "steps", "poses", "executed"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert {SUCCESS, FAILURE, RUNNING} <= set(a.status.tolist())
        sa, _ = fast.score(plans_e, 100)
        sb, _ = full.score(plans_e, 100)
        decided = a.status != RUNNING
        assert np.array_equal(sa[decided], sb[decided])


def test_navigation_world_plans_are_scored_as_before():
    from agents.mctd.scoring import plan_scores

    layout = make_layout([(x, y) for x in range(1, 6) for y in range(1, 6)], goal=(5, 1), lava=((1, 3),))
    plans = np.array([[F, F, F, F, 6, 6], [R, F, F, 6, 6, 6], [F, 3, F, 6, 6, 6], [6, 4, 5, 6, 6, 6]])
    visited = {(1, 1), (2, 2)}
    expected, _ = plan_scores(layout, (1, 1, 0), plans, 100, visited=visited)
    got, _ = SearchWorld(layout, (1, 1, 0)).score(plans, 100, visited)
    assert np.array_equal(got, expected)


# ----------------------------------------------------------------------------- shortcut
def test_shortcut_keeps_an_excursion_that_picked_something_up():
    world = SearchWorld(locked_corridor(), (1, 1, 0))
    plans = np.array([KEY_DOOR_PLAN + [NOOP] * 3])
    _, sim = world.score(plans, 100)
    short = world.shortcut(plans, sim)
    actions = [int(a) for a in short[0] if a != NOOP]
    assert actions == [F, F, R, PICKUP_ACTION, L, F, TOGGLE, F, F]  # the navigation loop is cut, the pickup kept
    scores, again = world.score(short, 100)
    assert again.status[0] == SUCCESS and scores[0] > 1 - 0.9 * 13 / 100
    # cutting at revisited cells regardless of the world (the navigation shortcut) loses the key
    naive = shortcut_successes(plans, sim)
    assert world.simulate(naive).status[0] != SUCCESS


def test_shortcut_drops_object_actions_the_plan_does_not_need():
    layout = locked_corridor()
    layout[2, 2] = (DOOR, RED, 0)  # a closed side door nobody has to go through
    layout[1, 2] = (OBJECT_TO_IDX["ball"], BLUE, 0)  # a ball nobody has to carry
    world = SearchWorld(layout, (1, 1, 0))
    needed = [F, F, R, PICKUP_ACTION, L, F, TOGGLE, F, F]  # the key and the locked door
    detours = [
        [F, R, TOGGLE, L, F, R, PICKUP_ACTION, L, F, TOGGLE, F, F],  # opens the side door on the way
        [R, PICKUP_ACTION, DROP, L] + needed,  # picks the ball up and puts it back
        [R, PICKUP_ACTION, DROP, L, F, R, TOGGLE, L] + needed[1:],  # both
    ]
    plans = np.array([row + [NOOP] * (16 - len(row)) for row in detours + [needed]])
    _, sim = world.score(plans, 100)
    assert (sim.status == SUCCESS).all()
    short = world.shortcut(plans, sim)
    for row in short:
        assert [int(a) for a in row if a != NOOP] == needed
    # the loop cut alone keeps every executed object action
    cut = world.cut_loops(plans, sim)
    assert TOGGLE in cut[0, :3].tolist() and DROP in cut[1].tolist()
    scores, again = world.score(short, 100)
    assert (again.status == SUCCESS).all() and np.allclose(scores, 1 - 0.9 * len(needed) / 100)


def test_search_shortcuts_a_goal_reaching_plan_without_losing_its_object_actions(perturbed):
    layout = locked_corridor()
    planner = MCTDPlanner(perturbed, MCTDConfig(horizon=16, num_subplans=2, max_expansions=6, parallel=3),
                          torch.Generator().manual_seed(0))
    result = planner.search(observe(layout, (1, 1, 0))["image"], layout, (1, 1, 0), 100)
    for node in result.root.iter_nodes():
        if node.plan is not None and node.outcome[0] == SUCCESS:
            actions = [int(a) for a in node.plan[: node.outcome[1]] if a != NOOP]
            assert PICKUP_ACTION in actions and TOGGLE in actions


# ----------------------------------------------------------------------------- straightening
def open_room(goal: tuple[int, int] = (6, 3)) -> np.ndarray:
    """A 5 x 5 room of cells (1..5, 1..5) and the goal at ``goal`` (in the room or in its east wall)."""
    return make_layout([(x, y) for x in range(1, 6) for y in range(1, 6)], goal=goal)


def test_straighten_walks_round_the_cell_an_object_action_faces():
    # holding a ball at (1, 3) facing east: drop it at (2, 3), then go round by the top row to the
    # goal in the east wall. The straight walk along row 3 would run into the dropped ball.
    world = SearchWorld(open_room(), (1, 3, 0), carrying=(BALL, BLUE, 0))
    plan = [DROP, L, F, F, R, F, F, F, R, F, F, L, F, F]
    sim = world.simulate(np.array([plan]))
    assert sim.status[0] == SUCCESS and sim.steps[0] == len(plan)
    short = world.straighten(np.array(plan))
    assert short is not None and len(short) < len(plan) and short[0] == DROP
    again = world.simulate(np.array([short]))
    assert again.status[0] == SUCCESS and again.steps[0] == len(short)
    cells = {tuple(p[:2]) for p in again.poses[0, : len(short) + 1].tolist()}
    assert (2, 3) not in cells  # never through the ball's cell


def test_straighten_drops_the_turns_after_entering_the_goal():
    world = SearchWorld(open_room(goal=(3, 3)), (1, 3, 3))  # facing up, the goal two cells east
    plan = [F, F, R, F, F, R, F, F]  # up, east along the top, down into the goal: 8 actions
    assert world.simulate(np.array([plan])).status[0] == SUCCESS
    short = world.straighten(np.array(plan))
    assert short == [R, F, F]  # the direct walk enters from the west; its final turn south never runs
    again = world.simulate(np.array([short]))
    assert again.status[0] == SUCCESS and again.steps[0] == 3
    assert world.straighten(np.array(short)) is None  # nothing left to straighten


def test_straighten_node_gives_the_node_the_shorter_plan_and_its_value():
    from agents.mctd.planner import straighten_node
    from agents.mctd.scoring import success_score
    from agents.mctd.tree import add_placeholder, backup, new_root

    world = SearchWorld(open_room(goal=(3, 3)), (1, 3, 3))
    plan = np.array([F, F, R, F, F, R, F, F])
    root = new_root(8, 1)
    child = add_placeholder(root, 0)
    backup(child, plan, plan, (SUCCESS, 8), float(success_score(8, 100)), 1)
    assert straighten_node(child, world, 100)
    assert child.outcome == (SUCCESS, 3) and child.plan[:3].tolist() == [R, F, F] and (child.plan[3:] == NOOP).all()
    assert child.own_value == pytest.approx(float(success_score(3, 100)))
    assert root.value == pytest.approx(child.own_value)  # the ancestors follow
    assert not straighten_node(child, world, 100)


class ScriptedPolicy(MDLMPolicy):
    """A policy whose greedy plan is ``script`` then END, whatever the state (logits 10 on the
    scripted token at each position, 0 elsewhere)."""

    def __init__(self, config: ModelConfig, script: list[int]) -> None:
        super().__init__(config)
        self.script = script

    def forward_tokens(self, tokens: torch.Tensor, state_emb: torch.Tensor, mask_ratio: torch.Tensor) -> torch.Tensor:
        b, n = tokens.shape
        logits = torch.zeros(b, n, self.config.num_outputs)
        for pos in range(n):
            logits[:, pos, self.script[pos] if pos < len(self.script) else self.config.end_token] = 10.0
        return logits


def test_search_returns_the_straightened_plan_only_with_straighten_on():
    layout = open_room(goal=(3, 3))
    u_turn = [F, F, R, F, F, R, F, F]  # up, east along the top, down into the goal
    model = ScriptedPolicy(TINY, u_turn).eval()
    image = observe(layout, (1, 3, 3))["image"]
    best = {}
    for on in (False, True):
        config = MCTDConfig(horizon=16, num_subplans=2, max_expansions=6, parallel=3, straighten=on)
        result = MCTDPlanner(model, config, torch.Generator().manual_seed(0)).search(image, layout, (1, 3, 3), 100)
        assert result.best.outcome[0] == SUCCESS
        best[on] = [int(a) for a in result.best.plan[: result.best.outcome[1]]]
    assert best[False] == u_turn
    assert best[True] == [R, F, F]


def test_a_search_without_a_goal_widens_to_first_actions_its_tree_did_not_try():
    """0.33 (widen_on_failure): on the open door one step west of the goal, a model that only turns
    left and right never reaches it; the second tree's plans must start with a useful action the
    first did not try (right or forward), and forward is the goal."""
    layout = locked_corridor()
    layout[5, 1] = (DOOR, YELLOW, 0)  # the door open; the agent stands in it, facing the goal
    model = ScriptedPolicy(TINY, [L, R] * 4).eval()
    image = observe(layout, (5, 1, 0))["image"]
    results = {}
    for on in (False, True):
        config = MCTDConfig(horizon=8, num_subplans=2, max_expansions=6, parallel=3, widen_on_failure=on)
        results[on] = MCTDPlanner(model, config, torch.Generator().manual_seed(0)).search(image, layout, (5, 1, 0), 100)
    assert not results[False].found_goal and results[False].stats["widened"] == 0
    assert untried_first_actions(results[False].root, SearchWorld(layout, (5, 1, 0))) == [R, F]  # left was tried
    assert results[True].found_goal and results[True].stats["widened"] == 1
    assert results[True].expansions > results[False].expansions  # a second tree
    best = results[True].best
    assert [int(a) for a in best.plan[: best.outcome[1]]] == [F]
    again = MCTDPlanner(model, MCTDConfig(horizon=8, num_subplans=2, max_expansions=6, parallel=3),
                        torch.Generator().manual_seed(0)).search(image, layout, (5, 1, 0), 100, widen=False)
    assert not again.found_goal and again.stats["widened"] == 0  # an agent holding a plan passes widen=False


# ----------------------------------------------------------------------------- the agent
def play(agent: MCTDAgent, layout: np.ndarray, pose, task: BoundTask | None = None, steps: int = 40):
    """Closed loop against world_step; observations carry ``carrying`` and ``task``."""
    state = WorldState(layout, pose)
    vector = (task.task if task else Task(0)).vector()

    def obs():
        return {**observe(state.layout, state.pose), "carrying": np.array(state.carrying), "task": vector}

    agent.reset(obs())
    sent = []
    for _ in range(steps):
        action = agent.act(obs())
        sent.append(action)
        state, status = world_step(state, action, task)
        if status != RUNNING:
            return status, sent
    return RUNNING, sent


def test_agent_sends_done_next_to_the_goto_target(untrained):
    layout = make_layout([(x, 1) for x in range(1, 6)], goal=(17, 17))
    layout[3, 1] = (BALL, RED, 0)
    task = BoundTask(Task(GOTO, (BALL, RED)), ((3, 1),))
    agent = MCTDAgent(untrained, seed=0, horizon=8, num_subplans=2, max_expansions=12, parallel=4)
    status, sent = play(agent, layout, (2, 1, 1), task)
    assert status == SUCCESS and sent[-1] == DONE


def test_agent_picks_up_the_key_and_opens_the_door(untrained):
    # a key right ahead, the locked door beyond it, the goal behind the door
    layout = make_layout([(1, 1), (2, 1), (3, 1)], goal=(5, 1))
    layout[2, 1] = (KEY, YELLOW, 0)
    layout[4, 1] = (DOOR, YELLOW, LOCKED_STATE)
    # the search and its progress scores alone (an untrained policy is no fallback to trust)
    agent = MCTDAgent(untrained, seed=0, horizon=8, num_subplans=2, max_expansions=48, parallel=8, fallback="plan")
    status, sent = play(agent, layout, (1, 1, 0), steps=60)
    assert status == SUCCESS
    assert PICKUP_ACTION in sent and TOGGLE in sent and DROP not in sent[: sent.index(PICKUP_ACTION)]


def test_act_batch_plays_exactly_as_act_one_at_a_time(perturbed):
    from maze_mdlm.evaluation import evaluate

    def agent():
        return MCTDAgent(perturbed, seed=5, max_steps=100, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                         rollout_windows=2)

    one = evaluate(agent(), "MiniGrid-GoToDoor-5x5-v0", 3, 7, batch_envs=1)
    lockstep = evaluate(agent(), "MiniGrid-GoToDoor-5x5-v0", 3, 7, batch_envs=3)
    assert lockstep["batch_envs"] == 3
    assert one["per_episode"] == lockstep["per_episode"]
    assert one["decisions"] == lockstep["decisions"]


def test_the_episode_memo_changes_no_action_and_saves_decodes(perturbed):
    # the same episode with and without the memo of greedy continuation windows: every action is
    # the same, and the searches after the first decode fewer windows with it
    from benchmarks.continuation_memo import WithoutMemo

    played = {}
    for cls in (MCTDAgent, WithoutMemo):
        agent = cls(perturbed, seed=0, max_steps=100, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                    rollout_windows=6, fallback="plan")
        calls, search = [], agent.planner.search

        def counted(*args, search=search, calls=calls, **kwargs):
            result = search(*args, **kwargs)
            calls.append(result.stats["rollout_calls"])
            return result

        agent.planner.search = counted
        status, sent = play(agent, locked_corridor(), (1, 1, 0), steps=30)
        played[cls] = (status, sent, calls, agent._state.memo)
    (status, sent, calls, memo), (status_off, sent_off, calls_off, no_memo) = played.values()
    assert (status, sent) == (status_off, sent_off) and len(calls) == len(calls_off) >= 2
    assert no_memo is None and memo.windows > 0
    assert calls[0] == calls_off[0] and sum(calls) < sum(calls_off)


LEGACY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, end_token=DONE, vocab_size=8, task_inputs=False)


def test_end_token_is_read_from_the_model_config(untrained):
    assert untrained.config.end_token == 8 and untrained.config.num_outputs == 9
    torch.manual_seed(0)
    legacy = MDLMPolicy(LEGACY).eval()
    assert legacy.config.end_token == DONE and legacy.config.num_outputs == 7  # `done` doubles as END
    forbid = first_position_mask(np.zeros((2, 7), dtype=bool), horizon=4, vocab=9)
    assert forbid.shape == (2, 4, 9) and forbid[:, 0, 7:].all() and not forbid[:, 1:].any()


@pytest.mark.parametrize("config", [TINY, LEGACY], ids=["end8", "legacy"])
def test_both_vocabularies_plan_in_a_key_world_and_a_corridor(config):
    torch.manual_seed(0)
    model = MDLMPolicy(config).eval()
    agent = MCTDAgent(model, seed=0, horizon=8, num_subplans=2, max_expansions=24, parallel=8)
    status, sent = play(agent, make_layout([(x, 1) for x in range(1, 4)], goal=(4, 1)), (1, 1, 0))
    assert status == SUCCESS and set(sent) <= {L, R, F}
    layout = locked_corridor()
    agent = MCTDAgent(model, seed=0, horizon=8, num_subplans=2, max_expansions=24, parallel=8)
    status, sent = play(agent, layout, (1, 1, 0), steps=20)
    assert status != FAILURE and all(0 <= a <= 6 for a in sent)


def test_full_rules_simulation_equals_simulate_world_row_for_row():
    # rows without object actions take the navigation dynamics and NOOP tails are cut: same results
    layout = locked_corridor()
    layout[2, 2] = (BALL, RED, 0)
    rng = np.random.default_rng(1)
    actions = rng.choice([0, 1, 2, 2, 2, 3, 4, 5], size=(96, 20))
    actions[::3] = rng.choice([0, 1, 2], size=actions[::3].shape)  # some rows navigate only
    actions[:, 14:] = np.where(rng.random((96, 6)) < 0.7, NOOP, actions[:, 14:])
    actions[::4, 12:] = NOOP
    actions[1] = KEY_DOOR_PLAN + [NOOP] * 7  # a success (with or without the key in hand)
    actions[2] = [F, F, F, TOGGLE, F, F] + [L] * 14  # a success only with the key in hand
    for carrying in (NOTHING, (KEY, YELLOW, 0)):
        world = SearchWorld(layout, (1, 1, 0), carrying)
        got = world.simulate(actions)
        ref = simulate_world(WorldState(layout, (1, 1, 0), carrying), actions)
        assert np.array_equal(got.status, ref.status) and np.array_equal(got.steps, ref.steps)
        assert np.array_equal(got.poses, ref.poses) and np.array_equal(got.carrying, ref.carrying)
        assert np.array_equal(got.layouts, ref.layouts)
        assert {SUCCESS, RUNNING} <= set(got.status.tolist())


@pytest.fixture(scope="module")
def tiny_models() -> dict[int, MDLMPolicy]:
    """Perturbed tiny models for the 19x19 and the 25x25 canvas."""
    return {size: perturbed_policy(ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, grid_size=size), seed=2)
            for size in (19, 25)}


def _registry_ids() -> list[str]:
    from envs.registry import SUPPORTED

    return sorted(SUPPORTED)


@pytest.mark.parametrize("env_id", _registry_ids())
def test_mctd_acts_on_every_registered_env(env_id, tiny_models):
    """A few closed-loop steps on every supported world (all task kinds, boxes, both canvases):
    searches run under the task's rules and every action is a MiniGrid action."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the envs)
    from envs.observation import FullGridObsWrapper, canvas_size
    from envs.registry import SUPPORTED

    spec = SUPPORTED[env_id]
    model = tiny_models[canvas_size(spec.width, spec.height)]
    env = FullGridObsWrapper(gym.make(env_id), model.config.grid_size)
    agent = MCTDAgent(model, max_steps=spec.max_steps, seed=0, horizon=8, num_subplans=2, max_expansions=3,
                      parallel=3, rollout_windows=1)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    for _ in range(3):
        action = agent.act(obs)
        assert 0 <= action <= 6
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    env.close()
    assert agent.stats()["decisions"] >= 1


def test_a_25_canvas_model_plays_from_fullyobswrapper_observations(tiny_models):
    import gymnasium as gym
    from minigrid.wrappers import FullyObsWrapper

    import envs  # noqa: F401  (registers the envs)

    env = FullyObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"))
    agent = MCTDAgent(tiny_models[25], max_steps=250, seed=0, horizon=8, num_subplans=2, max_expansions=3,
                      parallel=3, rollout_windows=1)
    obs, info = env.reset(seed=0)  # a 5x5 image: padded to the model's 25x25 canvas
    agent.reset(obs, info)
    assert 0 <= agent.act(obs) <= 6 and agent.last_search.root is not None
    env.close()


def test_walking_through_an_open_door_does_not_replan():
    """The image hides the open door under the agent: the plan through it is still as predicted."""
    from envs.world import OPEN_STATE

    net = forward_policy(TINY)  # greedy: always forward
    layout = make_layout([(x, 1) for x in range(1, 6)], goal=(6, 1))
    layout[3, 1] = (DOOR, BLUE, OPEN_STATE)
    for goal_execute, searches in ((0, 1), (None, 1), (4, 2), (2, 3), ("auto", 3)):  # whole plan; k actions a search
        agent = MCTDAgent(net, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                          goal_execute=goal_execute)
        status, sent = play(agent, layout, (1, 1, 0))
        assert status == SUCCESS and sent == [F] * 5
        assert agent.stats()["decisions"] == searches


def test_auto_goal_execute_searches_again_only_where_objects_can_change():
    """The default ("auto"): the plan down an empty corridor is executed whole; with a door on the
    way (an object world) GOAL_EXECUTE (2) actions at a time: 9 actions, 5 searches."""
    from envs.world import OPEN_STATE

    net = forward_policy(TINY)
    corridor = make_layout([(x, 1) for x in range(1, 10)], goal=(10, 1))
    with_door = corridor.copy()
    with_door[3, 1] = (DOOR, BLUE, OPEN_STATE)
    assert MCTDAgent(net).goal_execute == "auto" and GOAL_EXECUTE == 2
    for layout, searches in ((corridor, 1), (with_door, 5)):
        agent = MCTDAgent(net, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3)
        status, sent = play(agent, layout, (1, 1, 0))
        assert status == SUCCESS, layout[3, 1]
        assert agent.stats()["decisions"] == searches, (sent, agent.stats())


def test_research_expansions_caps_only_the_searches_made_while_an_incumbent_is_kept():
    """With a door on the way (k = 4 actions per search), the searches after the first hold the
    rest of a goal-reaching plan: ``research_expansions`` is their budget, the first keeps the
    config's."""
    from envs.world import OPEN_STATE

    net = forward_policy(TINY)
    layout = make_layout([(x, 1) for x in range(1, 10)], goal=(10, 1))
    layout[3, 1] = (DOOR, BLUE, OPEN_STATE)
    budgets = {}
    for cap in (None, 2):
        agent = MCTDAgent(net, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                          goal_execute=4, research_expansions=cap)
        status, _ = play(agent, layout, (1, 1, 0))
        assert status == SUCCESS
        budgets[cap] = [record["expansions"] for record in agent.records]
    assert budgets[None] == [6, 6, 6]
    assert budgets[2][0] == 6 and len(budgets[2]) >= 2 and all(e <= 2 for e in budgets[2][1:])
    assert MCTDAgent(net).research_expansions == RESEARCH_EXPANSIONS == 3  # the default since 0.31
    assert MCTDAgent(net, research_expansions=0).research_expansions is None  # 0: the config's budget
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="research_expansions"):
            MCTDAgent(net, research_expansions=bad)


def test_auto_fallback_is_the_partial_plan_where_only_the_agent_moves_and_the_policy_elsewhere(perturbed):
    """No plan reaches the far goal: "auto" executes the best partial plan's first sub-plan in a
    plain corridor, and one policy step once a ball lies in a niche (an object world)."""
    corridor = make_layout([(x, 1) for x in range(1, 18)], goal=(17, 1))
    with_ball = corridor.copy()
    with_ball[3, 2] = (BALL, RED, 0)
    settings = dict(seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3, rollout_windows=0)
    for layout, fallback, policy_step in ((corridor, "plan", False), (with_ball, "policy", True)):
        agent = MCTDAgent(perturbed, **settings)
        obs = observe(layout, (1, 1, 0))
        agent.reset(obs)
        actions = agent.plan(obs)
        assert not agent.last_search.found_goal
        assert agent.last_search.navigation_only == (fallback == "plan")
        assert agent.fallback_for(agent.last_search) == fallback
        assert agent._state.fell_back == policy_step
        assert len(actions) == 1 if policy_step else 1 <= len(actions) <= 4
    explicit = MCTDAgent(perturbed, fallback="plan", **settings)  # the 0.4 default, still available
    obs = observe(with_ball, (1, 1, 0))
    explicit.reset(obs)
    explicit.plan(obs)
    assert explicit.fallback_for(explicit.last_search) == "plan" and not explicit._state.fell_back


def test_member_is_isin_by_table_lookup():
    tokens = np.arange(NOOP, 31).reshape(4, 8)  # every token the table covers, NOOP included
    for members in [(0, 1, 2), (3, 4, 5, 6), (6, 8), (7,), ()]:
        assert (member(tokens, members) == np.isin(tokens, members)).all()
    with pytest.raises(ValueError, match="tokens must be in"):
        member(tokens, (31,))
