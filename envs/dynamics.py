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
from functools import lru_cache

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from envs.tasks import FETCH, GOTO, OPEN, OPEN_SEQ, PICKUP, PUTNEAR
from envs.world import (  # noqa: F401  (world_step re-exported: the dynamics' public names)
    BOX, CLOSED_STATE, DIR_DX, DIR_DY, DONE, DOOR, DROP, EMPTY_IDX, FAILURE, FORWARD, GOAL_IDX, KEY, LAVA,
    LEFT, LOCKED_STATE, NOTHING, OPEN_STATE, PICKABLE, PICKUP_ACTION, RIGHT, RUNNING, SUCCESS, TOGGLE,
    WorldState, enterable, passable, world_step,
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
        boxes: per plan, what the closed boxes hold when it ended, as :attr:`WorldState.boxes`
            (a box carried or moved keeps its contents; 0.33).
    """

    status: np.ndarray
    steps: np.ndarray
    poses: np.ndarray
    carrying: np.ndarray
    layouts: np.ndarray
    effects: np.ndarray | None = None
    boxes: list[tuple] | None = None


_NOOP_CODE = 3  # navigation-table column of any token that neither turns nor moves (LEFT, RIGHT, FORWARD: 0, 1, 2)


def _enterable(cell: tuple[int, int, int]) -> tuple[bool, bool]:
    """``(passable, ends the episode)`` for one encoded cell (:func:`envs.world.enterable`)."""
    return enterable(cell), cell[0] in (GOAL_IDX, LAVA)


@lru_cache(maxsize=8)
def _table_frame(rows: int, cols: int) -> tuple[np.ndarray, ...]:
    """The layout-free part of :func:`_navigation_table` on a padded ``rows x cols`` grid (cached,
    read-only): the table with every forward move blocked, and per live state its front cell (0
    off the grid), whether that is on the grid, and the entries of staying and of moving there."""
    cells = rows * cols
    s = np.arange(8 * cells).reshape(2, cells, 4)  # [ended, cell, d]
    d = np.arange(4)
    table = np.empty((2, cells, 4, 4), dtype=np.int64)  # [ended, cell, d, code]
    table[:] = s[..., None]  # no-ops; and every action once ended
    table[0, ..., LEFT] = s[0] - d + (d - 1) % 4
    table[0, ..., RIGHT] = s[0] - d + (d + 1) % 4
    front = np.arange(cells)[:, None] + DIR_DX * cols + DIR_DY  # [cells, 4]
    inside = (front >= 0) & (front < cells)  # only the (wall) border's own cells look outside
    front = np.where(inside, front, 0)
    table = (4 * table).astype(np.int16 if 32 * cells <= 2**15 else np.int32)  # the smallest that holds it
    out = table, front, inside, 4 * s[0], 4 * (front * 4 + d)
    for array in out:
        array.flags.writeable = False
    return out


def _navigation_table(grid: np.ndarray) -> np.ndarray:
    """Left / right / forward / no-op transitions on a padded grid ``[W + 2, H + 2, 3]``, flat.

    States are ``s = cell * 4 + d`` (``cell = x * (H + 2) + y`` in padded coordinates), and
    ``s + 4 * cells`` once the episode has ended by entering a goal or lava (absorbing: every
    action leaves it as it is). Entry ``4 * s + code`` (code: left, right, forward, or
    :data:`_NOOP_CODE`) holds ``4 * next state``, so a step is one ``take`` at ``entry + code``.
    """
    rows, cols = grid.shape[:2]
    frame, front, inside, stay, move = _table_frame(rows, cols)
    obj = grid[..., 0].reshape(-1)
    ends = (obj == GOAL_IDX) | (obj == LAVA)
    ok = passable(grid).reshape(-1)
    table = frame.copy()
    ended = 16 * rows * cols  # 4 * (4 * cells): from a move into a goal or lava on, the state has ended
    table[0, ..., FORWARD] = np.where(inside & ok[front], move + ended * ends[front], stay)
    return table.reshape(-1)


def _reroute(table: np.ndarray, cell: int, value: tuple[int, int, int], ahead: list[int], cells: int) -> None:
    """Update one plan's own navigation table after ``cell`` changed to ``value``: the forward
    moves into it from its four neighbours."""
    ok, ends = _enterable(value)
    for d in range(4):
        src = (cell - ahead[d]) * 4 + d
        table[4 * src + FORWARD] = 4 * (cell * 4 + d + 4 * cells * ends if ok else src)


def simulate_world(state: WorldState, plans: np.ndarray, task=None, end_token: int | None = None) -> WorldOutcome:
    """Execute ``B`` plans ``[B, H]`` from one :class:`WorldState` under all seven actions.

    Vectorised over plans (one layout copy per plan), side-effect free, and equal step for step
    to :func:`envs.world.world_step` (tested). A plan stops when the episode ends (goal, lava or
    the ``task``'s own verdict) or at its first ``end_token`` (e.g. the models' END). A token
    outside 0..6 (e.g. -1) is executed as a no-op: it counts in ``steps`` and changes nothing.

    Navigation is a table walk (:func:`_navigation_table`): each time step is one ``take`` for
    all plans. Pickups, drops, toggles (and GoTo's ``done``) are handled one by one, in Python;
    a plan whose layout changes gets its own copy of the table, updated at the changed cell.
    """
    plans = np.asarray(plans, dtype=np.int64)
    n, horizon = plans.shape
    width, height = state.layout.shape[:2]
    cols, cells = height + 2, (width + 2) * (height + 2)  # padded cells, flat: (x + 1) * cols + y + 1
    padded = np.zeros((width + 2, height + 2, 3), dtype=np.int64)
    padded[..., 0] = OBJECT_TO_IDX["wall"]  # a wall border: no bounds checks
    padded[1:-1, 1:-1] = state.layout
    grid = np.repeat(padded.reshape(1, cells, 3), n, axis=0)  # [B, cells, 3]: one layout per plan
    ahead = (DIR_DX * cols + DIR_DY).tolist()  # flat offset of the cell in front, per direction
    table = _navigation_table(padded)
    ended = 16 * cells  # walk values from here on are ended states (4 * (s + 4 * cells))
    # what closed boxes hold (per plan, per flat cell), and what the carried box holds
    boxes = {(w[0] + 1) * cols + w[1] + 1: tuple(map(int, c)) for w, c in state.boxes if w != "carried"}
    contents = [dict(boxes) for _ in range(n)]
    hand0 = tuple(int(v) for v in state.carrying)
    carry = [hand0] * n
    carry_contents = [tuple(int(v) for v in dict(state.boxes).get("carried", NOTHING))] * n
    kind = task.task.kind if task is not None else -1
    target = tuple(int(v) for v in task.task.obj) if task is not None and task.task.obj else (-1, -1)
    spots = [(px + 1) * cols + py + 1 for px, py in task.positions] if task is not None else []

    # tokens: navigation codes [H, B] (no-op from a plan's first end token on), object actions
    live = np.ones((n, horizon), dtype=bool)  # before the plan's first end token
    if end_token is not None:
        live = np.logical_and.accumulate(plans != end_token, axis=1)
    length = live.sum(axis=1, dtype=np.int64)
    codes = np.where(live & (plans >= LEFT) & (plans <= FORWARD), plans, _NOOP_CODE).T.copy()  # 0, 1, 2 as is
    # object actions [H, B]: pickup, drop, toggle (3, 4, 5), and done (6) where it counts (GoTo)
    acting = (plans.T >= PICKUP_ACTION) & (plans.T <= (DONE if kind == GOTO else TOGGLE)) & live.T
    ev_t, ev_r = (v.tolist() for v in np.nonzero(acting))  # in time order
    ev_a = plans.T[acting].tolist()
    # per plan navigation tables: [0] is shared, a plan gets its own at its first change to the layout
    tables = np.empty((1 + int(acting.any(axis=0).sum()), table.size), dtype=table.dtype)
    tables[0] = table
    flat = tables.reshape(-1)
    slot, used = [0] * n, 0

    walk = np.empty((horizon + 1, n), dtype=table.dtype)  # [H + 1, B]: 4 * state before each action
    x, y, d = state.pose
    walk[0] = 4 * (((x + 1) * cols + y + 1) * 4 + d)
    verdict = np.zeros(n, dtype=np.int64)  # the task's verdict, where it ended a plan
    carried = np.empty((n, horizon + 1, 3), dtype=np.int64)
    carried[:] = hand0
    effects = np.zeros((n, horizon), dtype=bool)
    entry = np.empty(n, dtype=np.int64)
    last = int(length.max()) if n else 0  # no action runs after this step
    k = 0  # the next object action
    for t in range(last):
        np.add(walk[t], codes[t], out=entry)
        np.take(flat, entry, out=walk[t + 1], mode="clip")  # (always in range; "clip" skips a buffer)
        while k < len(ev_t) and ev_t[k] == t:  # the object actions of step t
            r, a = ev_r[k], ev_a[k]
            k += 1
            e = int(walk[t, r])
            if e >= ended:  # the episode has ended for this plan
                continue
            cell, d = e >> 4, (e >> 2) & 3
            f = cell + ahead[d]
            front = tuple(grid[r, f].tolist())
            hand = carry[r]
            empty_hand = hand[0] == EMPTY_IDX
            pick = a == PICKUP_ACTION and empty_hand and front[0] in PICKABLE
            drop = a == DROP and not empty_hand and front[0] == EMPTY_IDX
            door = a == TOGGLE and front[0] == DOOR
            unlock = door and front[2] == LOCKED_STATE and hand[0] == KEY and hand[1] == front[1]
            flip = door and front[2] != LOCKED_STATE
            box = a == TOGGLE and front[0] == BOX
            if pick or drop or unlock or flip or box:  # each changes the cell ahead (at most one)
                if pick:
                    value, carry[r], carry_contents[r] = NOTHING, front, contents[r].pop(f, NOTHING)
                elif drop:
                    value, contents[r][f] = hand, carry_contents[r]
                    carry[r] = carry_contents[r] = NOTHING
                elif box:
                    value = contents[r].pop(f, NOTHING)
                else:
                    value = (front[0], front[1], OPEN_STATE if unlock or front[2] == CLOSED_STATE else CLOSED_STATE)
                grid[r, f] = value
                effects[r, t] = True
                if pick or drop:
                    carried[r, t + 1 :] = carry[r]
                if not slot[r]:  # its own table from now on
                    used += 1
                    slot[r] = used
                    tables[used] = tables[0]
                    codes[t + 1 :, r] += slot[r] * table.size
                _reroute(tables[slot[r]], f, value, ahead, cells)
            # the task's verdict
            new = RUNNING
            if kind in (PICKUP, FETCH) and pick:
                new = SUCCESS if front[:2] == target else FAILURE if kind == FETCH else RUNNING
            elif kind == GOTO and a in (TOGGLE, DONE):
                near = abs(cell // cols - spots[0] // cols) + abs(cell % cols - spots[0] % cols) == 1
                new = SUCCESS if a == DONE and near else FAILURE
            elif kind == PUTNEAR:
                near = abs(f // cols - spots[0] // cols) <= 1 and abs(f % cols - spots[0] % cols) <= 1
                if pick and front[:2] != target:
                    new = FAILURE
                elif a == DROP and not empty_hand:
                    new = SUCCESS if drop and near else FAILURE
            elif kind == OPEN and a == TOGGLE:
                if grid[r, spots[0], 0] == DOOR and grid[r, spots[0], 2] == OPEN_STATE:
                    new = SUCCESS
            elif kind == OPEN_SEQ and (unlock or flip) and f == spots[1] and grid[r, spots[1], 2] == OPEN_STATE:
                new = SUCCESS if grid[r, spots[0], 2] == OPEN_STATE else FAILURE
            if new != RUNNING:
                verdict[r] = new
                walk[t + 1, r] += ended
        if t % 16 == 15 and ((walk[t + 1] >= ended) | (length <= t + 1)).all():  # every plan has ended
            last = t + 1
            break
    walk[last + 1 :] = walk[last]

    walk = walk.T.astype(np.int64)  # [B, H + 1]
    s, cell = walk >> 2, (walk >> 4) % cells
    poses = np.stack([cell // cols - 1, cell % cols - 1, s & 3], axis=-1)
    died = walk[:, -1] >= ended  # ended states are absorbing
    steps = np.where(died, horizon + 1 - (walk[:, 1:] >= ended).sum(axis=1), length)
    at = grid[np.arange(n), cell[:, -1], 0]  # where a plan ended in a goal or lava
    status = np.where(died, np.where(verdict != RUNNING, verdict, np.where(at == GOAL_IDX, SUCCESS, FAILURE)), RUNNING)
    final_boxes = []  # as WorldState.boxes: closed boxes by cell, and the carried one
    for r in range(n):
        held = [((f // cols - 1, f % cols - 1), c) for f, c in contents[r].items() if grid[r, f, 0] == BOX]
        if carry[r][0] == BOX:
            held.append(("carried", carry_contents[r]))
        final_boxes.append(tuple(sorted(held, key=str)))
    return WorldOutcome(status=status, steps=steps, poses=poses, carrying=carried,
                        layouts=grid.reshape(n, width + 2, height + 2, 3)[:, 1:-1, 1:-1].astype(np.uint8),
                        effects=effects, boxes=final_boxes)
