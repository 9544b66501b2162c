"""Side-effect-free symbolic dynamics on an encoded grid, batched over plans.

:func:`simulate_plans` is the navigation fast path (MCTD's inner loop on worlds without object
actions): exact for ``left``, ``right`` and ``forward`` (verified step for step against MiniGrid's
own ``step`` in the tests): walls, closed doors and objects block, lava ends the episode as a
failure, the goal ends it as a success. Other actions leave the pose unchanged; MiniGrid's
``done`` action (6) marks the end of a plan. :func:`simulate_world` runs ``[B, H]`` plans under
all seven actions and a task (:mod:`envs.world` holds the rules and the one-step reference).
:func:`shortcut` cuts the loops out of a walk, and :func:`straighten_plan` (0.25) replaces the
walks of a plan by straight or one-corner ones where the grid allows shorter, never through a
cell an object action of the plan faces (MCTD's post-processing of goal-reaching plans).

Poses are ``(x, y, direction)`` with MiniGrid's direction convention (0 right, 1 down, 2 left,
3 up). Layouts are ``[W, H, 3]`` uint8 encodings without the agent (see
:func:`envs.observation.layout_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from envs.tasks import FETCH, GOTO, OPEN, OPEN_SEQ, PICKUP, PUTNEAR
from envs.world import (  # noqa: F401  (world_step re-exported: the dynamics' public names)
    BOX, CLOSED_STATE, DIR_DX, DIR_DY, DONE, DOOR, DROP, EMPTY_IDX, FAILURE, FORWARD, GOAL_IDX, KEY, LAVA,
    LEFT, LOCKED_STATE, OPEN_STATE, PICKABLE, PICKUP_ACTION, RIGHT, RUNNING, SUCCESS, TOGGLE, WorldState,
    passable, world_step,
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


_TURNS = {0: [], 1: [RIGHT], 2: [RIGHT, RIGHT], 3: [LEFT]}  # (to - from) % 4 -> in-place turns
_WALK = (LEFT, RIGHT, FORWARD)  # the actions of a walk


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
        for action in _TURNS[turn]:
            nd = (path[-1][2] + (1 if action == RIGHT else -1)) % 4
            actions.append(action)
            path.append((x, y, nd))
    return actions


def walkable(layout: np.ndarray) -> np.ndarray:
    """Boolean ``[W, H]``: cells a walk may pass through and stay in the episode (passable, and
    neither the goal nor lava: empty, floor, open doors)."""
    obj = layout[:, :, 0]
    return passable(layout) & (obj != GOAL_IDX) & (obj != LAVA)


def _turn_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """In-place turns from heading ``a`` to ``b`` (elementwise, 0..2)."""
    k = (b - a) % 4
    return np.minimum(k, 4 - k)


def _strictly_between(cum: np.ndarray, line: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Blocked cells strictly between ``a`` and ``b`` on each ``line`` (``cum[line, k]``: blocked
    cells before ``k`` along the line). Arrays broadcast; 0 where ``|a - b| < 2``."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.where(hi - lo >= 2, cum[line, hi] - cum[line, np.minimum(lo + 1, hi)], 0)


def straighten(pose: tuple[int, int, int], actions: list[int] | np.ndarray, free: np.ndarray) -> list[int]:
    """A walk made shorter where a straight or one-corner walk does the same.

    ``actions`` are left / right / forward from ``pose``, each one executed (no blocked forward,
    e.g. :func:`shortcut`'s output); ``free`` ``[W, H]`` bool are the cells a walk may pass
    through (:func:`walkable`). Greedily from the start, the stretch between pose ``i`` and
    the farthest later pose ``j`` that a direct walk (one straight leg, or two legs with one
    corner, through ``free`` cells only; the end cell is the walk's own) reaches in fewer actions
    than the stretch took is replaced by that direct walk, which ends in ``j``'s cell with ``j``'s
    direction. Returns the new actions: never more than ``actions``, same end pose. Uses only
    the grid, no search: any detour that the grid between its ends allows to skip in a straight
    line or an L is skipped, and no other.
    """
    actions = [int(a) for a in actions]
    n = len(actions)
    if n < 3:
        return actions
    poses = np.empty((n + 1, 3), dtype=np.int64)
    poses[0] = pose
    for t, a in enumerate(actions):
        x, y, d = poses[t]
        if a == FORWARD:
            x, y = x + DIR_DX[d], y + DIR_DY[d]
        else:
            d = (d + (1 if a == RIGHT else -1)) % 4
        poses[t + 1] = x, y, d
    blocked = ~free
    across = np.zeros((blocked.shape[1], blocked.shape[0] + 1), dtype=np.int64)  # [y, x]: before x in row y
    across[:, 1:] = np.cumsum(blocked.T, axis=1)
    down = np.zeros((blocked.shape[0], blocked.shape[1] + 1), dtype=np.int64)  # [x, y]: before y in column x
    down[:, 1:] = np.cumsum(blocked, axis=1)
    xs, ys, ds = poses[:, 0], poses[:, 1], poses[:, 2]
    i, j = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]  # [T, T]: the stretch from pose i to pose j
    dx, dy = xs[None] - xs[:, None], ys[None] - ys[:, None]
    horizontal, vertical = np.where(dx > 0, 0, 2), np.where(dy > 0, 1, 3)
    corner = (dx != 0) & (dy != 0)
    di, dj = np.broadcast_to(ds[:, None], dx.shape), np.broadcast_to(ds[None], dx.shape)
    xi, xj = np.broadcast_to(xs[:, None], dx.shape), np.broadcast_to(xs[None], dx.shape)
    yi, yj = np.broadcast_to(ys[:, None], dx.shape), np.broadcast_to(ys[None], dx.shape)
    options = []  # per leg order: (ok [T, T], first heading, second heading, first leg, second leg)
    for x_first in (True, False):
        if x_first:
            h1 = np.where(dx != 0, horizontal, di)
            h2 = np.where(dy != 0, vertical, h1)
            cx, cy = xj, yi
            legs = _strictly_between(across, cy, xi, xj) + _strictly_between(down, cx, cy, yj)
            lengths = (np.abs(dx), np.abs(dy))
        else:
            h1 = np.where(dy != 0, vertical, di)
            h2 = np.where(dx != 0, horizontal, h1)
            cx, cy = xi, yj
            legs = _strictly_between(down, cx, yi, yj) + _strictly_between(across, cy, xi, xj)
            lengths = (np.abs(dy), np.abs(dx))
        legs = legs + (corner & blocked[cx, cy])
        cost = _turn_count(di, h1) + np.abs(dx) + _turn_count(h1, h2) + np.abs(dy) + _turn_count(h2, dj)
        ok = (j >= i + 2) & (legs == 0) & (cost < j - i)
        options.append((ok, h1, h2, *lengths))
    farthest = [np.where(ok.any(axis=1), n - np.argmax(ok[:, ::-1], axis=1), -1) for ok, *_ in options]  # [T]
    out: list[int] = []
    at = 0
    while at < n:
        end = max(int(farthest[0][at]), int(farthest[1][at]))
        if end < 0:
            out.append(actions[at])
            at += 1
            continue
        _, h1, h2, first, second = options[0 if farthest[0][at] == end else 1]
        a1, a2 = int(h1[at, end]), int(h2[at, end])
        out += _TURNS[(a1 - int(ds[at])) % 4] + [FORWARD] * int(first[at, end])
        out += _TURNS[(a2 - a1) % 4] + [FORWARD] * int(second[at, end]) + _TURNS[(int(ds[end]) - a2) % 4]
        at = end
    return out


def straighten_plan(layout: np.ndarray, poses: np.ndarray, actions: list[int]) -> list[int]:
    """``actions`` (every one executed, from the poses ``[T + 1, 3]`` before each) with each walk
    between two object actions straightened (:func:`straighten`) through cells that are walkable
    in ``layout`` (the world at the plan's start) and that no object action of the plan faces:
    only those cells can change during the plan, so the new plan does the same object actions
    from the same poses, in the same order, and ends in the same state (a plan that ends by
    entering the goal or lava ends there too, with no turn after it)."""
    free = walkable(layout)
    for t, action in enumerate(actions):
        if action not in _WALK:  # the cell it faces may change: no walk passes through it
            x, y, d = (int(v) for v in poses[t])
            fx, fy = x + int(DIR_DX[d]), y + int(DIR_DY[d])
            if 0 <= fx < free.shape[0] and 0 <= fy < free.shape[1]:
                free[fx, fy] = False
    out: list[int] = []
    start = 0
    for t in range(len(actions) + 1):
        if t < len(actions) and actions[t] in _WALK:
            continue
        out += straighten(tuple(int(v) for v in poses[start]), actions[start:t], free)
        if t < len(actions):
            out.append(actions[t])
        start = t + 1
    x, y = int(poses[-1][0]), int(poses[-1][1])
    if actions and actions[-1] == FORWARD and layout[x, y, 0] in (GOAL_IDX, LAVA):
        while out[-1] != FORWARD:  # the episode ends on entering that cell: no turn after it runs
            out.pop()
    return out


@dataclass
class WorldOutcome:
    """Result of :func:`simulate_world` for ``B`` plans (leading dim ``B``).

    Attributes:
        status: RUNNING (the plan ended, the episode did not), SUCCESS or FAILURE.
        steps: actions executed until the episode or the plan ended.
        poses: ``[B, H + 1, 3]`` pose before each action (frozen once ended).
        carrying: ``[B, H + 1, 3]`` the carried object before each action.
        layouts: ``[B, W, H, 3]`` the layout when the plan ended.
        effects: ``[B, H]`` bool, the actions that changed the carried object or a cell (a
            pickup, a drop, a door opened / closed / unlocked, a box opened); False after the end.
    """

    status: np.ndarray
    steps: np.ndarray
    poses: np.ndarray
    carrying: np.ndarray
    layouts: np.ndarray
    effects: np.ndarray | None = None


def simulate_world(state: WorldState, plans: np.ndarray, task=None, end_token: int | None = None) -> WorldOutcome:
    """Execute ``B`` plans ``[B, H]`` from one :class:`WorldState` under all seven actions.

    Vectorised over plans (one layout copy per plan), side-effect free, and equal step for step
    to :func:`envs.world.world_step` (tested). A plan stops when the episode ends (goal, lava or
    the ``task``'s own verdict) or at its first ``end_token`` (e.g. the models' END). A token
    outside 0..6 (e.g. -1) is executed as a no-op: it counts in ``steps`` and changes nothing.
    """
    plans = np.asarray(plans, dtype=np.int64)
    n, horizon = plans.shape
    width, height = state.layout.shape[:2]
    grid = np.zeros((n, width + 2, height + 2, 3), dtype=np.int64)
    grid[..., 0] = OBJECT_TO_IDX["wall"]
    grid[:, 1:-1, 1:-1] = state.layout
    contents = np.zeros_like(grid)  # what a closed box at a cell holds
    contents[..., 0] = EMPTY_IDX
    for where, cell in state.boxes:
        if where != "carried":
            contents[:, where[0] + 1, where[1] + 1] = cell
    carry = np.tile(np.asarray(state.carrying, dtype=np.int64), (n, 1))
    carry_contents = np.tile(np.asarray(dict(state.boxes).get("carried", (EMPTY_IDX, 0, 0)), dtype=np.int64), (n, 1))
    x = np.full(n, state.pose[0] + 1)
    y = np.full(n, state.pose[1] + 1)
    d = np.full(n, state.pose[2])
    kind = task.task.kind if task is not None else -1
    target = np.asarray(task.task.obj if task is not None and task.task.obj else (-1, -1))
    spots = [(px + 1, py + 1) for px, py in task.positions] if task is not None else []
    rows = np.arange(n)
    status = np.zeros(n, dtype=np.int64)
    steps = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    poses = np.empty((n, horizon + 1, 3), dtype=np.int64)
    carried = np.empty((n, horizon + 1, 3), dtype=np.int64)
    effects = np.zeros((n, horizon), dtype=bool)
    overlap = np.isin(np.arange(16), [OBJECT_TO_IDX[k] for k in ("empty", "floor", "goal", "lava")])
    pickable = np.isin(np.arange(16), PICKABLE)  # lookup tables: object index -> bool
    # steps at which some plan has a pickup, drop, toggle or done: only they can change the grid or
    # the carried object, or get the task's verdict; the others are pure navigation steps
    object_step = np.isin(plans, (PICKUP_ACTION, DROP, TOGGLE, DONE)).any(axis=0)  # [H]
    for t in range(horizon + 1):
        poses[:, t, 0], poses[:, t, 1], poses[:, t, 2] = x - 1, y - 1, d
        carried[:, t] = carry
        if t == horizon:
            break
        a = plans[:, t]
        if end_token is not None:
            active &= a != end_token
        if not active.any():
            poses[:, t + 1:] = poses[:, t:t + 1]
            carried[:, t + 1:] = carried[:, t:t + 1]
            break
        steps += active
        fx, fy = x + DIR_DX[d], y + DIR_DY[d]
        front = grid[rows, fx, fy]  # [B, 3]
        d = np.where(active & (a == LEFT), (d - 1) % 4, np.where(active & (a == RIGHT), (d + 1) % 4, d))
        move = active & (a == FORWARD) & (overlap[front[:, 0]] | ((front[:, 0] == DOOR) & (front[:, 2] == OPEN_STATE)))
        x, y = np.where(move, fx, x), np.where(move, fy, y)
        new = np.where(move & (front[:, 0] == GOAL_IDX), SUCCESS, np.where(move & (front[:, 0] == LAVA), FAILURE, RUNNING))
        if not object_step[t]:
            status = np.where(active, new, status)
            active &= status == RUNNING
            continue
        empty_hand = carry[:, 0] == EMPTY_IDX
        pick = active & (a == PICKUP_ACTION) & empty_hand & pickable[front[:, 0]]
        drop = active & (a == DROP) & ~empty_hand & (front[:, 0] == EMPTY_IDX)
        dropping = active & (a == DROP) & ~empty_hand
        door = active & (a == TOGGLE) & (front[:, 0] == DOOR)
        unlock = door & (front[:, 2] == LOCKED_STATE) & (carry[:, 0] == KEY) & (carry[:, 1] == front[:, 1])
        flip = door & (front[:, 2] != LOCKED_STATE)
        box = active & (a == TOGGLE) & (front[:, 0] == BOX)
        effects[:, t] = pick | drop | unlock | flip | box
        # apply the changes (each row at most one of them)
        picked_cell = front.copy()
        if pick.any():
            r = rows[pick]
            carry[r], carry_contents[r] = front[r], contents[r, fx[r], fy[r]]
            grid[r, fx[r], fy[r]] = (EMPTY_IDX, 0, 0)
            contents[r, fx[r], fy[r]] = (EMPTY_IDX, 0, 0)
        if drop.any():
            r = rows[drop]
            grid[r, fx[r], fy[r]], contents[r, fx[r], fy[r]] = carry[r], carry_contents[r]
            carry[r], carry_contents[r] = (EMPTY_IDX, 0, 0), (EMPTY_IDX, 0, 0)
        if (unlock | flip).any():
            r = rows[unlock | flip]
            grid[r, fx[r], fy[r], 2] = np.where(unlock[r] | (front[r, 2] == CLOSED_STATE), OPEN_STATE, CLOSED_STATE)
        if box.any():
            r = rows[box]
            grid[r, fx[r], fy[r]] = contents[r, fx[r], fy[r]]
            contents[r, fx[r], fy[r]] = (EMPTY_IDX, 0, 0)
        # the task's verdict
        matches = (picked_cell[:, 0] == target[0]) & (picked_cell[:, 1] == target[1])
        if kind in (PICKUP, FETCH):
            new = np.where(pick & matches, SUCCESS, np.where(pick & ~matches & (kind == FETCH), FAILURE, new))
        elif kind == GOTO:
            (tx, ty) = spots[0]
            near = np.abs(x - tx) + np.abs(y - ty) == 1
            new = np.where(active & (a == TOGGLE), FAILURE, new)
            new = np.where(active & (a == DONE), np.where(near, SUCCESS, FAILURE), new)
        elif kind == PUTNEAR:
            (tx, ty) = spots[0]
            near = (np.abs(fx - tx) <= 1) & (np.abs(fy - ty) <= 1)
            new = np.where(pick & ~matches, FAILURE, new)
            new = np.where(dropping, np.where(drop & near, SUCCESS, FAILURE), new)
        elif kind == OPEN:
            (tx, ty) = spots[0]
            opened = (grid[:, tx, ty, 0] == DOOR) & (grid[:, tx, ty, 2] == OPEN_STATE)
            new = np.where(active & (a == TOGGLE) & opened & (new == RUNNING), SUCCESS, new)
        elif kind == OPEN_SEQ:
            (ax, ay), (bx, by) = spots
            toggled = unlock | flip
            second = toggled & (fx == bx) & (fy == by) & (grid[:, bx, by, 2] == OPEN_STATE)
            first_open = grid[:, ax, ay, 2] == OPEN_STATE
            new = np.where(second, np.where(first_open, SUCCESS, FAILURE), new)
        status = np.where(active, new, status)
        active &= status == RUNNING
    return WorldOutcome(status=status, steps=steps, poses=poses, carrying=carried,
                        layouts=grid[:, 1:-1, 1:-1].astype(np.uint8), effects=effects)
