"""The box guess in the env layer and the expert that plans with it (``envs.guessing_expert``,
``collect-data --box-guess``): it opens the box an agent would guess first, plans again after a
wrong one, matches the true expert where the guess is right or there are no boxes, and never
fails silently."""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from envs import guessing_expert
from envs.box_guess import guessed_state
from envs.collect import collect
from envs.expert import ExpertBudgetError, solve_state
from envs.guessing_expert import GuessFailure, solve_with_guess
from envs.world import LOCKED_STATE, NOTHING, RUNNING, SUCCESS, TOGGLE, WorldState, world_step
from tests.worlds import make_layout

KEY, DOOR, BOX = (OBJECT_TO_IDX[name] for name in ("key", "door", "box"))
YELLOW, RED = COLOR_TO_IDX["yellow"], COLOR_TO_IDX["red"]
NEAR, FAR = (3, 2), (1, 2)  # two closed boxes below the corridor
START = (4, 1, 2)  # at the corridor's east end, facing west


def two_boxes() -> np.ndarray:
    """Corridor y=1, x=1..4; a locked yellow door at (5, 1), the goal at (6, 1); closed boxes in
    niches at (3, 2) (nearer the start) and (1, 2)."""
    layout = make_layout([(x, 1) for x in range(1, 5)], goal=(6, 1))
    layout[5, 1] = (DOOR, YELLOW, LOCKED_STATE)
    layout[NEAR], layout[FAR] = (BOX, RED, 0), (BOX, RED, 0)
    return layout


def world(key_in: tuple[int, int], layout: np.ndarray | None = None) -> WorldState:
    """The real world: the yellow key in the box at ``key_in``, the other box empty."""
    other = FAR if key_in == NEAR else NEAR
    return WorldState(two_boxes() if layout is None else layout, START, NOTHING,
                      tuple(sorted(((key_in, (KEY, YELLOW, 0)), (other, NOTHING)), key=str)))


def replay(state: WorldState, actions: list[int]) -> tuple[int, list[tuple[int, int]]]:
    """Final status and the cells of the boxes the actions opened, in order."""
    opened = []
    for action in actions:
        if action == TOGGLE and state.layout[state.front()][0] == BOX:
            opened.append(state.front())
        state, status = world_step(state, action)
        if status != RUNNING:
            return status, opened
    return RUNNING, opened


def test_the_guessing_expert_opens_the_nearer_box_and_plans_again_when_it_was_wrong():
    truth = world(key_in=FAR)
    # an agent sees two identical boxes and guesses both hold the yellow key
    assert dict(guessed_state(truth, None).boxes) == {NEAR: (KEY, YELLOW, 0), FAR: (KEY, YELLOW, 0)}
    optimal = solve_state(truth).actions
    assert replay(truth, optimal) == (SUCCESS, [FAR])  # the true expert knows where the key is
    actions, fallbacks = solve_with_guess(truth, None, max_steps=100)
    assert fallbacks == 0
    assert replay(truth, actions) == (SUCCESS, [NEAR, FAR])  # wrong box first, then the right one
    assert len(actions) > len(optimal)


def test_the_guessing_expert_is_the_true_expert_where_the_guess_is_right():
    truth = world(key_in=NEAR)
    actions, fallbacks = solve_with_guess(truth, None, max_steps=100)
    assert fallbacks == 0 and replay(truth, actions) == (SUCCESS, [NEAR])
    assert len(actions) == len(solve_state(truth).actions)


def test_a_guess_without_a_solution_plans_with_the_true_contents_and_is_counted():
    # a yellow key in sight behind the door: the guess assumes the boxes hold nothing, which leaves
    # no way through; the expert then plans once with what the boxes really hold
    layout = make_layout([(x, 1) for x in range(1, 5)] + [(7, 1)], goal=(6, 1))
    layout[5, 1], layout[7, 1] = (DOOR, YELLOW, LOCKED_STATE), (KEY, YELLOW, 0)
    layout[NEAR], layout[FAR] = (BOX, RED, 0), (BOX, RED, 0)
    truth = world(key_in=FAR, layout=layout)
    assert guessed_state(truth, None).boxes == ()
    actions, fallbacks = solve_with_guess(truth, None, max_steps=100)
    assert fallbacks == 1
    assert replay(truth, actions) == (SUCCESS, [FAR]) and len(actions) == len(solve_state(truth).actions)


def test_a_guess_past_the_experts_budget_also_plans_with_the_true_contents(monkeypatch):
    truth = world(key_in=FAR)
    real_solve = guessing_expert.solve_state

    def solve(state, task=None):  # a guess without a solution can exhaust the budget first
        if state.boxes != truth.boxes:
            raise ExpertBudgetError("over budget")
        return real_solve(state, task)

    monkeypatch.setattr(guessing_expert, "solve_state", solve)
    actions, fallbacks = solve_with_guess(truth, None, max_steps=100)
    assert fallbacks == 1 and replay(truth, actions) == (SUCCESS, [FAR])


def test_collect_keeps_the_true_episode_where_the_guessing_expert_passes_the_budget(monkeypatch):
    import envs.collect as collect_module

    def over_budget(state, task, max_steps):
        raise ExpertBudgetError("over budget")

    monkeypatch.setattr(collect_module, "solve_with_guess", over_budget)
    env = "MiniGrid-ObstructedMaze-1Q-v1"
    plain, guessing = collect([env], 3, 2000), collect([env], 3, 2000, box_guess=True)
    assert np.array_equal(plain.actions, guessing.actions)  # the true expert's episodes, listed
    assert guessing.meta["true_expert_seeds"] == [[env, 2000], [env, 2001], [env, 2002]]


def test_the_guessing_expert_fails_loudly_past_its_step_limit_or_without_a_solution():
    with pytest.raises(GuessFailure, match="within 5 actions"):
        solve_with_guess(world(key_in=FAR), None, max_steps=5)
    lava = two_boxes()
    lava[2, 1] = (OBJECT_TO_IDX["lava"], RED, 0)  # the far box (the key) is behind lava: no way, guessed or true
    with pytest.raises(GuessFailure, match="no solution"):
        solve_with_guess(WorldState(lava, (3, 1, 2), NOTHING, world(key_in=FAR).boxes), None, max_steps=100)


def test_collect_with_the_box_guess_records_it_and_changes_only_episodes_with_a_wrong_box():
    plain = collect(["MiniGrid-DoorKey-5x5-v0"], 3, 0)
    guessing = collect(["MiniGrid-DoorKey-5x5-v0"], 3, 0, box_guess=True)  # no boxes: the same episodes
    assert np.array_equal(plain.actions, guessing.actions)
    assert plain.meta["expert"] == "astar" and "guess_fallbacks" not in plain.meta
    assert guessing.meta["expert"] == "astar-box-guess" and guessing.meta["guess_fallbacks"] == 0
    assert guessing.meta["true_expert_seeds"] == []
    env = "MiniGrid-ObstructedMaze-1Q-v1"  # two boxes by the start door; seeds 2000.. (train range)
    plain, guessing = collect([env], 8, 2000), collect([env], 8, 2000, box_guess=True)
    assert np.array_equal(plain.layouts, guessing.layouts) and np.array_equal(plain.boxes, guessing.boxes)
    longer = guessing.lengths > plain.lengths
    assert longer.any() and (guessing.lengths >= plain.lengths).all()
