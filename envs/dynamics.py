"""Side-effect-free symbolic dynamics on an encoded grid, batched over plans.

:func:`simulate_plans` is the navigation fast path (MCTD's inner loop on worlds without object
actions): exact for ``left``, ``right`` and ``forward`` (verified step for step against MiniGrid's
own ``step`` in the tests): walls, closed doors and objects block, lava ends the episode as a
failure, the goal ends it as a success. Other actions leave the pose unchanged; MiniGrid's
``done`` action (6) marks the end of a plan. :func:`simulate_world` runs ``[B, H]`` plans under
all seven actions and a task (:mod:`envs.world` holds the rules and the one-step reference).

Poses are ``(x, y, direction)`` with MiniGrid's direction convention (0 right, 1 down, 2 left,
3 up). Layouts are ``[W, H, 3]`` uint8 encodings without the agent (see
:func:`envs.observation.layout_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from envs.world import (  # noqa: F401  (re-exported: the dynamics' public names)
    DIR_DX, DIR_DY, DONE, DROP, FAILURE, FORWARD, LEFT, PICKUP_ACTION, RIGHT, RUNNING, SUCCESS,
    TOGGLE, WorldState, passable, world_step,
)


def step(layout: np.ndarray, pose: tuple[int, int, int], action: int) -> tuple[tuple[int, int, int], int]:
    """One transition. Returns ``(new_pose, status)`` with status RUNNING, SUCCESS or FAILURE."""
    x, y, d = pose
    if action == LEFT:
        return (x, y, (d - 1) % 4), RUNNING
    if action == RIGHT:
        return (x, y, (d + 1) % 4), RUNNING
    if action != FORWARD:
        return (x, y, d), RUNNING
    fx, fy = x + int(DIR_DX[d]), y + int(DIR_DY[d])
    if not (0 <= fx < layout.shape[0] and 0 <= fy < layout.shape[1]):
        return (x, y, d), RUNNING
    obj = int(layout[fx, fy, 0])
    if not passable(layout[fx : fx + 1, fy : fy + 1])[0, 0]:
        return (x, y, d), RUNNING
    status = SUCCESS if obj == OBJECT_TO_IDX["goal"] else FAILURE if obj == OBJECT_TO_IDX["lava"] else RUNNING
    return (fx, fy, d), status


@dataclass
class PlanOutcome:
    """Result of :func:`simulate_plans` for ``B`` plans (all arrays have leading dim ``B``).

    Attributes:
        status: RUNNING (plan ended without reaching the goal), SUCCESS or FAILURE (lava).
        steps: actions executed until the episode ended, or until the plan ended (END or its
            last token) if it did not.
        poses: ``[B, H + 1, 3]`` pose before each action (frozen once the plan has ended).
    """

    status: np.ndarray
    steps: np.ndarray
    poses: np.ndarray

    @property
    def final_pose(self) -> np.ndarray:
        """``[B, 3]`` pose when the plan (or the episode) ended."""
        return self.poses[:, -1]


def simulate_plans(layout: np.ndarray, pose: tuple[int, int, int] | np.ndarray, plans: np.ndarray) -> PlanOutcome:
    """Execute ``B`` action plans ``[B, H]`` from the same layout, vectorised over plans.

    ``pose`` is one ``(x, y, d)`` shared by all plans, or ``[B, 3]``. Execution of a plan stops
    at the goal, in lava, or at its first ``done`` (END) token.
    """
    plans = np.asarray(plans, dtype=np.int64)
    n, horizon = plans.shape
    width, height = layout.shape[:2]
    ok = np.zeros((width + 2, height + 2), dtype=bool)  # padded with a blocked border: no bounds checks
    ok[1:-1, 1:-1] = passable(layout)
    entered = np.full((width + 2, height + 2), RUNNING, dtype=np.int64)  # status after moving into a cell
    entered[1:-1, 1:-1][layout[:, :, 0] == OBJECT_TO_IDX["goal"]] = SUCCESS
    entered[1:-1, 1:-1][layout[:, :, 0] == OBJECT_TO_IDX["lava"]] = FAILURE
    pose = np.broadcast_to(np.asarray(pose, dtype=np.int64), (n, 3))
    x, y, d = pose[:, 0] + 1, pose[:, 1] + 1, pose[:, 2].copy()  # x, y in padded coordinates
    turn = (plans == RIGHT).astype(np.int64) - (plans == LEFT)  # [B, H]
    forward = plans == FORWARD
    before_done = np.cumprod(plans != DONE, axis=1).astype(bool)  # [B, H]: positions before the first END
    status = np.zeros(n, dtype=np.int64)
    steps = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    poses = np.empty((n, horizon + 1, 3), dtype=np.int64)
    poses[:, 0] = pose
    for t in range(horizon):
        active &= before_done[:, t]
        if not active.any():  # every plan has ended: poses stay frozen
            poses[:, t + 1 :] = poses[:, t : t + 1]
            break
        d = (d + turn[:, t] * active) % 4
        fx, fy = x + DIR_DX[d], y + DIR_DY[d]
        move = active & forward[:, t] & ok[fx, fy]
        x, y = np.where(move, fx, x), np.where(move, fy, y)
        steps += active
        status = np.where(move, entered[x, y], status)
        active &= status == RUNNING
        poses[:, t + 1, 0], poses[:, t + 1, 1], poses[:, t + 1, 2] = x - 1, y - 1, d
    return PlanOutcome(status=status, steps=steps, poses=poses)


def shortcut(poses: np.ndarray) -> list[int]:
    """A loop-free action sequence along a path of poses ``[T + 1, 3]``.

    ``poses`` are the poses a plan visited (e.g. a row of :attr:`PlanOutcome.poses`). Whenever
    the path comes back to a cell it already visited, the excursion in between is cut and
    replaced by the in-place turns from the direction it had there to the one it has now. The
    result uses only moves the path itself made, so it is valid wherever the path was, and it
    ends at the same cell with the same direction. Returns actions (left / right / forward).
    """
    path: list[tuple[int, int, int]] = [tuple(int(v) for v in poses[0])]
    actions: list[int] = []
    first_at: dict[tuple[int, int], int] = {path[0][:2]: 0}
    for x, y, d in np.asarray(poses[1:], dtype=np.int64).tolist():
        px, py, pd = path[-1]
        if (x, y, d) == (px, py, pd):
            continue  # a no-op step
        j = first_at.get((x, y))
        if j is None:  # a move into a new cell
            actions.append(FORWARD)
            path.append((x, y, d))
            first_at[(x, y)] = len(path) - 1
            continue
        for cell in {p[:2] for p in path[j + 1 :]}:  # back in a known cell: drop the excursion
            if first_at.get(cell, -1) > j:
                del first_at[cell]
        del path[j + 1 :], actions[j:]
        turn = (d - path[j][2]) % 4
        for action in {0: [], 1: [RIGHT], 2: [RIGHT, RIGHT], 3: [LEFT]}[turn]:
            nd = (path[-1][2] + (1 if action == RIGHT else -1)) % 4
            actions.append(action)
            path.append((x, y, nd))
    return actions
