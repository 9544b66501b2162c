"""The expert with the agent's information about closed boxes (``maze-mdlm collect-data --box-guess``).

:func:`solve_with_guess` plans optimally (A*, :func:`envs.expert.solve_state`) as if the closed
boxes held what :func:`envs.box_guess.guess_box_contents` guesses, follows the plan in the real
world, and plans again whenever an opened box turns out to hold something else. Its episodes are
longer than the true expert's where the guess is wrong, and they contain the states an agent meets
after a wrong box. Agents never import this module (it uses the expert).
"""

from __future__ import annotations

import numpy as np

from envs.box_guess import guessed_state
from envs.expert import ExpertBudgetError, solve_state
from envs.tasks import BoundTask
from envs.world import RUNNING, SUCCESS, WorldState, world_step


class GuessFailure(RuntimeError):
    """The real world ended the episode without success, or the guessing expert ran past its step limit."""


class NoSolution(GuessFailure):
    """The guessing expert reached a state (or started from one) from which the task has no solution."""


def solve_with_guess(state: WorldState, task: BoundTask | None, max_steps: int) -> tuple[list[int], int]:
    """The guessing expert's episode from the real ``state`` (true box contents): its actions and
    how many times it planned with the true contents because the guess had no solution.

    Plans with :func:`guessed_state`, executes in the real world, and plans again when the real
    state after an action differs from the planned one (an opened box held something else); where
    the guess leaves no solution, or none within the expert's budget, it plans once with the true
    contents (counted, not hidden).

    Raises:
        envs.expert.ExpertBudgetError: a plan with the true contents past the expert's budget.
        NoSolution: a state without a solution (a :class:`GuessFailure`).
        GuessFailure: the real episode fails, or runs past ``max_steps`` actions.
    """
    actions: list[int] = []
    plan: list[int] = []
    fallbacks = 0
    while len(actions) < max_steps:
        if not plan:
            expected = guessed_state(state, task)
            try:
                solved = solve_state(expected, task)
            except ExpertBudgetError:  # a guess without a solution can exhaust the budget first
                solved = None
            if solved is None or not solved.solvable:
                fallbacks += 1
                expected, solved = state, solve_state(state, task)
            if not solved.solvable:
                raise NoSolution("no solution from a state the guessing expert reached")
            plan = list(solved.actions)
        action = plan.pop(0)
        expected, _ = world_step(expected, action, task)
        state, status = world_step(state, action, task)
        actions.append(action)
        if status == SUCCESS:
            return actions, fallbacks
        if status != RUNNING:
            raise GuessFailure(f"the episode failed after {len(actions)} actions")
        if (expected.pose != state.pose or expected.carrying != state.carrying
                or not np.array_equal(expected.layout, state.layout)):
            plan = []  # a surprise: plan again from what is now in sight
    raise GuessFailure(f"no success within {max_steps} actions")
