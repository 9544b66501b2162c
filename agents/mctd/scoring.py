"""How MCTD scores plans in a world where only the agent moves (the navigation fast path).

:func:`plan_scores` executes ``[B, H]`` plans with :func:`envs.dynamics.simulate_plans` and scores
them from the task's success (reaching a goal), failure (lava) and, for plans still running, what
the observation shows (novelty of the path, Manhattan nearness to a goal). Used by the planner
and by :class:`agents.mctd.world.SearchWorld` (its own module, so neither imports the other).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Collection

import numpy as np

from envs.dynamics import DONE, FAILURE, FORWARD, LEFT, RIGHT, SUCCESS, simulate_plans
from envs.observation import GOAL
from maze_mdlm.tokens import END

NOOP = -1  # a no-op for both dynamics: END, `done` where it does nothing, padding after the end
NAVIGATION = (LEFT, RIGHT, FORWARD)
_TABLE_SIZE = 32  # token lookup tables: model tokens and NOOP; index -1 (NOOP) reads the last entry


@lru_cache(maxsize=None)
def _table(members: tuple[int, ...]) -> np.ndarray:
    if any(not 0 <= m < _TABLE_SIZE - 1 for m in members):
        raise ValueError(f"tokens must be in [0, {_TABLE_SIZE - 2}], got {members}")
    table = np.zeros(_TABLE_SIZE, dtype=bool)
    table[list(members)] = True
    return table


def member(tokens: np.ndarray, members: tuple[int, ...]) -> np.ndarray:
    """``np.isin(tokens, members)`` for tokens in ``[NOOP, 30]``, by table lookup (about 20x
    faster on a search's small arrays). ``tokens`` any shape of ints -> bool, same shape."""
    return _table(tuple(members))[tokens]


def success_score(t: np.ndarray | int, max_steps: int) -> np.ndarray:
    """The score of a plan that completes the task after ``t`` actions: ``max(1 - 0.9 t / max_steps,
    0.1)`` (MiniGrid's reward, floored above every plan that has not succeeded)."""
    return np.maximum(1.0 - 0.9 * np.asarray(t) / float(max_steps), 0.1)


def goal_cells(layout: np.ndarray) -> np.ndarray:
    """``[G, 2]`` (x, y) of the goal squares in a layout ``[W, H, 3]``."""
    return np.argwhere(layout[:, :, 0] == GOAL)


def plan_scores(layout: np.ndarray, pose: tuple[int, int, int], plans: np.ndarray,
                max_steps: int, skip_end: bool = True,
                visited: Collection[tuple[int, int]] | None = None, end_token: int = END) -> tuple[np.ndarray, Any]:
    """Score ``B`` complete plans ``[B, H]`` by executing them with the symbolic dynamics.

    The navigation fast path of :class:`agents.mctd.world.SearchWorld` (a world where no
    object action changes anything). With ``skip_end`` (default) ``end_token`` (default END,
    8; the search passes plans with the model's END already mapped to NOOP) is executed as a
    no-op instead of ending the plan: the agent never sends END and drops it (with the other
    non-navigation tokens) from what it executes, so this scores exactly the action sequence
    the env would receive. Then ``t`` counts navigation actions (left, right, forward) until
    the goal:

    * reaches the goal after ``t`` actions: ``max(1 - 0.9 * t / max_steps, 0.1)`` (the
      env's own reward shape, floored at 0.1);
    * lava: 0;
    * otherwise ``0.1 * (1 - manhattan(final cell, nearest goal) / (W + H - 2))``, strictly
      below 0.1 (the final cell is never the goal), so every success outranks every
      non-success, and among failures ending nearer the goal is better;
    * with ``visited`` (the cells the episode has been in), a plan that neither reaches the goal
      nor dies scores ``0.1 * (0.8 * novelty + 0.2 * nearness)`` instead, ``novelty`` the
      number of cells of its path that are not in ``visited``, over the plan length + 1: plans
      that end alive after going where the episode has not been rank first, and the Manhattan
      nearness only breaks ties. Still strictly below 0.1 and above lava's 0 (nearness > 0 for
      any cell but the goal).

    Returns:
        (scores [B] float64 in [0, 1], the :class:`envs.dynamics.PlanOutcome` of the
        executed plans; its ``steps`` are plan positions, END included when skipped).
    """
    plans = np.asarray(plans, dtype=np.int64)
    executed = np.where(plans == end_token, NOOP if skip_end else DONE, plans)  # DONE: simulate_plans stops
    outcome = simulate_plans(layout, pose, executed)
    goals = goal_cells(layout)
    final = outcome.final_pose[:, :2]  # [B, 2]
    if len(goals):
        dist = np.abs(final[:, None, :] - goals[None, :, :]).sum(-1).min(axis=1)  # [B]
        near = 1.0 - dist / float(layout.shape[0] + layout.shape[1] - 2)
    else:
        near = np.zeros(len(plans))
    nav_count = np.concatenate([np.zeros((len(plans), 1), np.int64),
                                np.cumsum(member(plans, NAVIGATION), axis=1)], axis=1)  # [B, H + 1]
    t = nav_count[np.arange(len(plans)), outcome.steps]  # navigation actions executed
    scores = 0.1 * np.clip(near, 0.0, 1.0)
    if visited is not None:
        novelty = novel_cells(outcome.poses, outcome.steps, visited).astype(np.float64) / (plans.shape[1] + 1)
        scores = 0.1 * (0.8 * np.clip(novelty, 0.0, 1.0) + 0.2 * np.clip(near, 0.0, 1.0)) * (1 - 1e-9)
    success = success_score(t, max_steps)
    scores = np.where(outcome.status == SUCCESS, success, scores)
    scores = np.where(outcome.status == FAILURE, 0.0, scores)
    return scores.astype(np.float64), outcome


def novel_cells(poses: np.ndarray, steps: np.ndarray, visited: Collection[tuple[int, int]]) -> np.ndarray:
    """``[B]`` int: distinct cells of each path ``poses[b, :steps[b] + 1]`` (``[B, T + 1, 3]``) not in
    ``visited`` ((x, y) cells)."""
    n, length = poses.shape[:2]
    side = int(max(poses[..., :2].max(initial=0), max((max(c) for c in visited), default=0))) + 1
    codes = poses[..., 0] * side + poses[..., 1]  # [B, T + 1]
    seen = np.array([x * side + y for x, y in visited], dtype=np.int64)
    fresh = ~np.isin(codes, seen) & (np.arange(length)[None] <= np.asarray(steps)[:, None])
    codes = np.where(fresh, codes, -1)
    ordered = np.sort(codes, axis=1)
    distinct = (ordered[:, 1:] != ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    return distinct.sum(axis=1) + (ordered[:, 0] >= 0)
