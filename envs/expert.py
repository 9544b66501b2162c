"""The expert: shortest solutions over MiniGrid's full state, by A* with an admissible heuristic.

The search state is everything an action can change: the agent's pose, what it carries, and every
door, key, ball and box (so opened doors, moved objects and opened boxes are part of it); box
contents are known to the expert (it reads them from the env, :func:`envs.world.state_from_env`).
Every action costs one MiniGrid step, and a plan is optimal in env steps.

Why A*: the state space grows with every object the agent may carry and drop anywhere, so a
plain BFS over it is too slow on the object worlds. The heuristic is the number of steps to the
task's last action in a relaxed world where doors and objects are no obstacle (walls and lava
still are): a backward BFS over ``(x, y, direction)`` computed once per start. It never
overestimates and depends on the pose alone, so it is consistent and A* returns optimal plans.

Two prunings keep the search small without losing optimality (both checked against an unpruned
brute-force BFS in the tests): an open door is never closed (a closed door only blocks), and
actions that change nothing (a pickup with a full hand, a drop onto an occupied cell, ``done``
outside GoTo tasks) are not expanded. Moves into lava and actions that end the episode with
failure are never taken.

Ties are broken the same way every time (lowest f, then lowest h, then the order in which states
were generated, with successors in action order left, right, forward, pickup, drop, toggle, done),
so the expert is a deterministic function of the state and the task.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from envs.tasks import FETCH, GOAL, GOTO, OPEN, OPEN_SEQ, PICKUP, PUTNEAR, BoundTask, GOAL_TASK
from envs.world import (
    BOX, CLOSED_STATE, DIR_DX, DIR_DY, DONE, DOOR, DROP, EMPTY_IDX, FORWARD, GOAL_IDX, KEY, LAVA,
    LEFT, LOCKED_STATE, NOTHING, OPEN_STATE, PICKABLE, PICKUP_ACTION, RIGHT, TOGGLE, WALL_IDX,
    WorldState, flood_fill, passable,
)

_NAV_ORDER = (FORWARD, LEFT, RIGHT)
MAX_EXPANSIONS = 3_000_000


@dataclass(frozen=True)
class ExpertPlan:
    """An expert answer: ``solvable`` is False when the task cannot be done (``actions`` empty)."""

    solvable: bool
    actions: tuple[int, ...] = field(default=())
    expansions: int = field(default=0, compare=False)

    def __len__(self) -> int:
        return len(self.actions)


UNSOLVABLE = ExpertPlan(solvable=False)


class ExpertBudgetError(RuntimeError):
    """Raised when a search expands more than its budget of states without finishing."""


class _Codes:
    """Cells as one byte each: code 0 is the empty cell, every box gets a code of its own (boxes
    differ by what they hold); per-code lookup tables for the successor function."""

    def __init__(self, state: WorldState):
        self.cells: list[tuple[int, int, int]] = [NOTHING]
        self.index: dict[tuple[int, int, int], int] = {NOTHING: 0}
        self.box_contents: dict[int, int] = {}
        flat = state.layout.reshape(-1, 3)
        boxes = dict(state.boxes)
        for color in range(6):  # every door state of every colour, so toggles find their codes
            for s in (OPEN_STATE, CLOSED_STATE, LOCKED_STATE):
                self.code((DOOR, color, s))
        codes = bytearray(len(flat))
        height = state.layout.shape[1]
        for i, cell in enumerate(map(tuple, flat.tolist())):
            if cell[0] == BOX:
                codes[i] = self.box(cell, boxes.get((i // height, i % height), NOTHING))
            else:
                codes[i] = self.code(cell)
        self.grid = bytes(codes)
        carrying = tuple(state.carrying)
        self.carry = self.box(carrying, boxes.get("carried", NOTHING)) if carrying[0] == BOX else self.code(carrying)
        n = len(self.cells)
        types = np.array([c[0] for c in self.cells])
        states = np.array([c[2] for c in self.cells])
        self.passable = ((np.isin(types, (EMPTY_IDX, 3, GOAL_IDX))) | ((types == DOOR) & (states == OPEN_STATE))).tolist()
        self.goal = (types == GOAL_IDX).tolist()
        self.pickable = np.isin(types, PICKABLE).tolist()
        self.opened = [self.index.get((DOOR, c[1], OPEN_STATE), -1) for c in self.cells]
        self.is_key = (types == KEY).tolist()
        self.color = [c[1] for c in self.cells]
        self.type_color = [c[:2] for c in self.cells]
        assert len(self.cells) == n

    def code(self, cell: tuple[int, int, int]) -> int:
        if cell not in self.index:
            self.index[cell] = len(self.cells)
            self.cells.append(cell)
        return self.index[cell]

    def box(self, cell: tuple[int, int, int], contents: tuple[int, int, int]) -> int:
        code = len(self.cells)
        self.cells.append(tuple(cell))
        self.box_contents[code] = self.code(tuple(contents)) if tuple(contents) != NOTHING else 0
        return code


def _relaxed_distance(state: WorldState, task: BoundTask, triggers) -> np.ndarray:
    """Steps from each pose ``[W * H * 4]`` to a pose where the task's last action applies, in the
    relaxed world (walls and lava block, nothing else). ``triggers``: ``(cell, direction)`` list."""
    width, height = state.layout.shape[:2]
    open_cell = (state.layout[:, :, 0] != WALL_IDX) & (state.layout[:, :, 0] != LAVA)
    dist = np.full(width * height * 4, -1, dtype=np.int64)
    queue = deque()
    for (x, y), d in triggers:
        s = (x * height + y) * 4 + d
        if dist[s] < 0:
            dist[s] = 0
            queue.append((x, y, d))
    while queue:
        x, y, d = queue.popleft()
        base = dist[(x * height + y) * 4 + d] + 1
        preds = [(x, y, (d + 1) % 4), (x, y, (d - 1) % 4)]
        px, py = x - int(DIR_DX[d]), y - int(DIR_DY[d])
        if 0 <= px < width and 0 <= py < height and open_cell[px, py] and open_cell[x, y]:
            preds.append((px, py, d))
        for p in preds:
            s = (p[0] * height + p[1]) * 4 + p[2]
            if dist[s] < 0:
                dist[s] = base
                queue.append(p)
    return dist


def _triggers(state: WorldState, task: BoundTask):
    """Poses ``((x, y), d)`` from which one action can finish the task."""
    layout = state.layout
    width, height = layout.shape[:2]
    kind = task.task.kind
    if kind == GOAL:
        targets = [tuple(c) for c in np.argwhere(layout[:, :, 0] == GOAL_IDX)]
    elif kind in (PICKUP, FETCH):
        t, c = task.task.obj
        targets = [tuple(p) for p in np.argwhere((layout[:, :, 0] == t) & (layout[:, :, 1] == c))]
        if not targets:  # hidden in a box or carried: no guidance
            return None
    elif kind in (OPEN, OPEN_SEQ):
        targets = [task.positions[-1]]
    elif kind == GOTO:
        tx, ty = task.positions[0]
        return [((tx + dx, ty + dy), d) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                for d in range(4) if 0 <= tx + dx < width and 0 <= ty + dy < height]
    else:  # PUTNEAR: the drop cell is next to the anchor
        tx, ty = task.positions[0]
        targets = [(tx + dx, ty + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]
    out = []
    for tx, ty in targets:
        for d in range(4):
            x, y = int(tx) - int(DIR_DX[d]), int(ty) - int(DIR_DY[d])
            if 0 <= x < width and 0 <= y < height:
                out.append(((x, y), d))
    return out


def provably_unsolvable(state: WorldState, task: BoundTask | None = None) -> bool:
    """True when no action sequence can complete ``task`` (default: reach a goal) from ``state``,
    shown in a relaxed world; False proves nothing.

    The relaxation: only walls, lava and locked doors block, objects do not; every key lying in
    reach, inside a closed box in reach (``state.boxes``) or in hand (or in a carried box) is held
    at once; a locked door opens while a key of its colour is held. Reach grows until no new key
    colour comes in. Every real plan is also a plan of this world, so a goal cell (or the object a
    Pickup / Fetch task asks for) out of reach there is out of reach for good. MiniGrid's
    ObstructedMaze v0 generator can lose a key this way: a blocking ball overwrites the box that
    held it. Other task kinds are never proved unsolvable here (False)."""
    kind = GOAL if task is None else task.task.kind
    if kind not in (GOAL, PICKUP, FETCH):
        return False
    layout = state.layout
    contents = {where: tuple(int(v) for v in cell) for where, cell in state.boxes}
    inside = {tuple(int(v) for v in where): cell for where, cell in contents.items() if where != "carried"}
    hand = [tuple(int(v) for v in state.carrying), contents.get("carried", NOTHING)]
    if kind != GOAL and any(cell[:2] == tuple(task.task.obj) for cell in hand):
        return False
    keys = {cell[1] for cell in hand if cell[0] == KEY}
    blocked = (layout[:, :, 0] == WALL_IDX) | (layout[:, :, 0] == LAVA)
    locked = (layout[:, :, 0] == DOOR) & (layout[:, :, 2] == LOCKED_STATE)
    while True:
        reach = flood_fill(blocked | (locked & ~np.isin(layout[:, :, 1], list(keys))), state.pose[:2])
        cells = [tuple(int(v) for v in layout[x, y]) for x, y in np.argwhere(reach)]
        cells += [cell for (x, y), cell in inside.items() if reach[x, y]]
        found = {cell[1] for cell in cells if cell[0] == KEY} - keys
        if not found:
            break
        keys |= found
    if kind == GOAL:
        return not any(cell[0] == GOAL_IDX for cell in cells)
    return not any(cell[:2] == tuple(task.task.obj) for cell in cells)


def solve_state(state: WorldState, task: BoundTask | None = None, max_expansions: int = MAX_EXPANSIONS) -> ExpertPlan:
    """Shortest action sequence that completes ``task`` (default: reach a goal) from ``state``.

    A start that :func:`provably_unsolvable` rules out returns at once (``solvable`` False, 0
    expansions) instead of exhausting the search (0.34).

    Raises:
        ExpertBudgetError: if the search expands more than ``max_expansions`` states.
    """
    task = task if task is not None else BoundTask(GOAL_TASK)
    if provably_unsolvable(state, task):
        return UNSOLVABLE
    kind, target = task.task.kind, task.task.obj
    codes = _Codes(state)
    width, height = state.layout.shape[:2]
    step = (height, 1, -height, -1)  # index offset of the cell ahead, per direction
    triggers = _triggers(state, task)
    dist = _relaxed_distance(state, task, triggers) if triggers else None
    if dist is not None:
        dist = np.where(dist < 0, 10**9, dist + 1).tolist()
    anchor = task.positions[0] if kind in (GOTO, PUTNEAR) else None
    doors = [(x * height + y) for x, y in task.positions] if kind in (OPEN, OPEN_SEQ) else []
    passable_, goal, pickable = codes.passable, codes.goal, codes.pickable
    opened, is_key, color, type_color, cells = codes.opened, codes.is_key, codes.color, codes.type_color, codes.cells
    box_contents = codes.box_contents

    def h(p: int, d: int) -> int:
        return dist[p * 4 + d] if dist is not None else 0

    x0, y0, d0 = (int(v) for v in state.pose)
    start = (x0 * height + y0, d0, codes.carry, codes.grid)
    parent: dict[tuple, tuple | None] = {start: None}
    g_of = {start: 0}
    counter = 0
    heap = [(h(start[0], d0), h(start[0], d0), 0, start)]
    expansions = 0
    while heap:
        f, _, _, s = heapq.heappop(heap)
        g = g_of[s]
        if f - h(s[0], s[1]) > g:  # stale entry
            continue
        expansions += 1
        if expansions > max_expansions:
            raise ExpertBudgetError(f"the expert expanded more than {max_expansions} states without a solution")
        p, d, carry, grid = s
        fp = p + step[d]
        fc = grid[fp]
        successors = [(LEFT, (p, (d - 1) % 4, carry, grid)), (RIGHT, (p, (d + 1) % 4, carry, grid))]
        done = None  # the action that ends the episode with success, if any
        if passable_[fc] or goal[fc]:
            if goal[fc]:
                done = FORWARD
            else:
                successors.insert(2, (FORWARD, (fp, d, carry, grid)))
        if carry == 0 and pickable[fc]:
            tc = type_color[fc]
            if kind in (PICKUP, FETCH) and tc == target:
                done = done if done is not None else PICKUP_ACTION
            elif not (kind in (FETCH, PUTNEAR) and tc != target):
                successors.append((PICKUP_ACTION, (p, d, fc, grid[:fp] + b"\0" + grid[fp + 1:])))
        if carry != 0:
            if kind == PUTNEAR:
                fx, fy = divmod(fp, height)
                if fc == 0 and abs(fx - anchor[0]) <= 1 and abs(fy - anchor[1]) <= 1:
                    done = done if done is not None else DROP
            elif fc == 0:
                successors.append((DROP, (p, d, 0, grid[:fp] + bytes((carry,)) + grid[fp + 1:])))
        if kind != GOTO:
            new = -1
            cell = cells[fc]
            if cell[0] == DOOR:
                if cell[2] == CLOSED_STATE or (cell[2] == LOCKED_STATE and is_key[carry] and color[carry] == cell[1]):
                    new = opened[fc]
            elif cell[0] == BOX:
                new = box_contents.get(fc, 0)
            if new >= 0:
                if kind == OPEN_SEQ and cell[0] == DOOR:
                    if fp == doors[1]:
                        if cells[grid[doors[0]]][2] == OPEN_STATE:
                            done = done if done is not None else TOGGLE
                        new = -1  # the second door first ends the episode in failure
                if kind == OPEN and fp == doors[0] and cell[0] == DOOR:
                    done = done if done is not None else TOGGLE
                elif new >= 0:
                    successors.append((TOGGLE, (p, d, carry, grid[:fp] + bytes((new,)) + grid[fp + 1:])))
        else:
            px, py = divmod(p, height)
            if abs(px - anchor[0]) + abs(py - anchor[1]) == 1:
                done = done if done is not None else DONE
        if done is not None:
            actions = [done]
            while parent[s] is not None:
                s, action = parent[s]
                actions.append(action)
            return ExpertPlan(True, tuple(reversed(actions)), expansions)
        for action, nxt in successors:
            ng = g + 1
            old = g_of.get(nxt)
            if old is not None and old <= ng:
                continue
            g_of[nxt] = ng
            parent[nxt] = (s, action)
            counter += 1
            hn = h(nxt[0], nxt[1])
            heapq.heappush(heap, (ng + hn, hn, counter, nxt))
    return ExpertPlan(False, (), expansions)


def solve(layout: np.ndarray, pose: tuple[int, int, int], task: BoundTask | None = None,
          carrying: tuple[int, int, int] = NOTHING) -> ExpertPlan:
    """Shortest plan from ``pose`` in ``layout`` ``[W, H, 3]`` (no agent drawn) for ``task``
    (default: reach any goal cell). Closed boxes are taken to be empty (their contents are not in
    the layout; :func:`solve_state` takes a full state)."""
    return solve_state(WorldState(np.asarray(layout), tuple(int(v) for v in pose), tuple(carrying)), task)


def solve_env(env, task: BoundTask | None = None) -> ExpertPlan:
    """Shortest plan for a (reset) MiniGrid env from its full state and its mission."""
    from envs.tasks import parse_mission
    from envs.world import state_from_env

    state = state_from_env(env)
    if task is None:
        task = parse_mission(env.unwrapped.mission).bind(state.layout)
    return solve_state(state, task)


def _successors(ok: np.ndarray, x: int, y: int, d: int):
    """Yield ``(action, (x, y, d))`` for each navigation action from a pose."""
    width, height = ok.shape
    for action in _NAV_ORDER:
        if action == FORWARD:
            fx, fy = x + int(DIR_DX[d]), y + int(DIR_DY[d])
            if 0 <= fx < width and 0 <= fy < height and ok[fx, fy]:
                yield action, (fx, fy, d)
        elif action == LEFT:
            yield action, (x, y, (d - 1) % 4)
        else:
            yield action, (x, y, (d + 1) % 4)


def solve_networkx(layout: np.ndarray, pose: tuple[int, int, int]) -> ExpertPlan:
    """A navigation-only BFS on a networkx state graph (the comparison in ``benchmarks/expert_speed.py``)."""
    ok = passable(layout) & (layout[:, :, 0] != LAVA)
    graph = nx.DiGraph()
    for x, y in zip(*np.nonzero(ok)):
        for d in range(4):
            for action, nxt in _successors(ok, int(x), int(y), d):
                graph.add_edge((int(x), int(y), d), nxt, action=action)
    start = tuple(int(v) for v in pose)
    graph.add_node(start)
    for x, y in zip(*np.nonzero(layout[:, :, 0] == GOAL_IDX)):
        for d in range(4):
            graph.add_edge((int(x), int(y), d), "goal")
    try:
        path = nx.shortest_path(graph, start, "goal")
    except nx.NetworkXNoPath:
        return UNSOLVABLE
    states = path[:-1]
    return ExpertPlan(True, tuple(graph.edges[a, b]["action"] for a, b in zip(states, states[1:])))
