"""The full MiniGrid world as data: state, all seven actions, and the task's success rules.

A :class:`WorldState` is the layout (``[W, H, 3]`` ``Grid.encode()`` array without the agent), the
agent's pose, the carried object (an encoded cell, :data:`NOTHING` for an empty hand) and what
closed boxes hold (hidden in MiniGrid's encoding: :attr:`WorldState.boxes`). :func:`world_step` is
side-effect free and follows MiniGrid's ``MiniGridEnv.step`` and the tasks' own ``step`` overrides
exactly (verified step for step against MiniGrid in the tests):

* ``left`` / ``right`` turn; ``forward`` enters empty cells, floors, goals, lava and open doors.
* ``pickup`` takes a key, ball or box ahead into an empty hand.
* ``drop`` puts the carried object on the empty cell ahead.
* ``toggle`` opens and closes a door; a locked door opens (and unlocks) only for a carried key
  of its colour; a box is replaced by its contents.
* ``done`` does nothing, except in GoTo tasks where it ends the episode.

Statuses: RUNNING, SUCCESS (the task's reward is positive) or FAILURE (the episode ended with no
reward: lava, a wrong pickup, ...). Step limits are the env's (:mod:`envs.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX, STATE_TO_IDX

from envs.tasks import FETCH, GOTO, OPEN, OPEN_SEQ, PICKUP, PUTNEAR, BoundTask

LEFT, RIGHT, FORWARD, PICKUP_ACTION, DROP, TOGGLE, DONE = range(7)
OBJECT_ACTIONS = (PICKUP_ACTION, DROP, TOGGLE)
RUNNING, SUCCESS, FAILURE = 0, 1, 2
DIR_DX = np.array([1, 0, -1, 0], dtype=np.int64)
DIR_DY = np.array([0, 1, 0, -1], dtype=np.int64)

EMPTY_IDX, WALL_IDX, DOOR, KEY, BALL, BOX, GOAL_IDX, LAVA = (
    OBJECT_TO_IDX[n] for n in ("empty", "wall", "door", "key", "ball", "box", "goal", "lava")
)
OPEN_STATE, CLOSED_STATE, LOCKED_STATE = (STATE_TO_IDX[n] for n in ("open", "closed", "locked"))
NOTHING = (EMPTY_IDX, 0, 0)  # the encoded empty cell: an empty hand, or a box with nothing inside
PICKABLE = (KEY, BALL, BOX)
OVERLAPPABLE = tuple(OBJECT_TO_IDX[n] for n in ("empty", "floor", "goal", "lava"))  # enterable (and open doors)

Cell = tuple[int, int, int]
Pose = tuple[int, int, int]


def passable(layout: np.ndarray) -> np.ndarray:
    """Boolean ``[W, H]``: cells the agent may enter (as MiniGrid's ``can_overlap``)."""
    obj, state = layout[:, :, 0], layout[:, :, 2]
    return np.isin(obj, OVERLAPPABLE) | ((obj == DOOR) & (state == OPEN_STATE))


def flood_fill(blocked: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Boolean ``[W, H]``: the cells reachable from ``start`` (included) in 4-neighbour steps that
    never enter a ``blocked [W, H]`` cell."""
    width, height = blocked.shape
    reach = np.zeros((width, height), dtype=bool)
    x0, y0 = int(start[0]), int(start[1])
    reach[x0, y0], todo = True, [(x0, y0)]
    while todo:
        x, y = todo.pop()
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < width and 0 <= ny < height and not reach[nx, ny] and not blocked[nx, ny]:
                reach[nx, ny] = True
                todo.append((nx, ny))
    return reach


def enterable(cell: Cell) -> bool:
    """Whether the agent may enter one encoded cell ``(object, colour, state)``: :func:`passable`
    for a single cell, without the array work (the per-step paths of the dynamics)."""
    return cell[0] in OVERLAPPABLE or (cell[0] == DOOR and cell[2] == OPEN_STATE)


@dataclass(frozen=True)
class WorldState:
    """One MiniGrid state. ``boxes`` maps a closed box's cell (or ``"carried"``) to its contents."""

    layout: np.ndarray  # uint8 [W, H, 3], no agent
    pose: Pose
    carrying: Cell = NOTHING
    boxes: tuple[tuple[Any, Cell], ...] = field(default=())

    def key(self) -> tuple:
        """A hashable identity of the state (for searches)."""
        return (self.pose, self.carrying, self.layout.tobytes(), self.boxes)

    def front(self) -> tuple[int, int]:
        x, y, d = self.pose
        return x + int(DIR_DX[d]), y + int(DIR_DY[d])


def encode_cell(obj: Any) -> Cell:
    """MiniGrid's encoding of one object (:data:`NOTHING`, the empty cell, for None)."""
    return NOTHING if obj is None else tuple(int(v) for v in obj.encode())


def state_from_env(env) -> WorldState:
    """The full state of a (reset) MiniGrid env, box contents included (read from the env)."""
    base = env.unwrapped
    layout = base.grid.encode()
    boxes = []
    for x in range(base.width):
        for y in range(base.height):
            obj = base.grid.get(x, y)
            if obj is not None and obj.type == "box":
                boxes.append(((x, y), encode_cell(obj.contains)))
    carrying = encode_cell(base.carrying)
    if base.carrying is not None and base.carrying.type == "box":
        boxes.append(("carried", encode_cell(base.carrying.contains)))
    pose = (int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir))
    return WorldState(layout, pose, carrying, tuple(sorted(boxes, key=str)))


def world_step(state: WorldState, action: int, task: BoundTask | None = None) -> tuple[WorldState, int]:
    """One MiniGrid step from ``state``: returns ``(next_state, status)``; ``state`` is not changed.

    ``task`` (default: reach a goal) decides success and failure beyond lava and goal cells.
    """
    x, y, d = state.pose
    fx, fy = state.front()
    layout, carrying, boxes = state.layout, state.carrying, dict(state.boxes)
    front = tuple(int(v) for v in layout[fx, fy])
    status = RUNNING
    pose = state.pose
    changed = False  # the layout array is copied only when a cell changes

    if action == LEFT:
        pose = (x, y, (d - 1) % 4)
    elif action == RIGHT:
        pose = (x, y, (d + 1) % 4)
    elif action == FORWARD:
        if enterable(front):
            pose = (fx, fy, d)
        if front[0] == GOAL_IDX:
            status = SUCCESS
        elif front[0] == LAVA:
            status = FAILURE
    elif action == PICKUP_ACTION:
        if front[0] in PICKABLE and carrying == NOTHING:
            carrying, layout, changed = front, layout.copy(), True
            layout[fx, fy] = NOTHING
            if front[0] == BOX:
                boxes["carried"] = boxes.pop((fx, fy), NOTHING)
    elif action == DROP:
        if front[0] == EMPTY_IDX and carrying != NOTHING:
            layout, changed = layout.copy(), True
            layout[fx, fy] = carrying
            if carrying[0] == BOX:
                boxes[(fx, fy)] = boxes.pop("carried", NOTHING)
            carrying = NOTHING
    elif action == TOGGLE:
        if front[0] == DOOR:
            t, c, s = front
            new = s
            if s == LOCKED_STATE:
                if carrying[0] == KEY and carrying[1] == c:
                    new = OPEN_STATE
            else:
                new = CLOSED_STATE if s == OPEN_STATE else OPEN_STATE
            if new != s:
                layout, changed = layout.copy(), True
                layout[fx, fy] = (t, c, new)
        elif front[0] == BOX:
            layout, changed = layout.copy(), True
            layout[fx, fy] = boxes.pop((fx, fy), NOTHING)

    new_state = WorldState(layout, pose, carrying, tuple(sorted(boxes.items(), key=str))) if changed or \
        carrying != state.carrying or pose != state.pose else state
    if status == RUNNING and task is not None:
        status = task_status(task, state, action, new_state)
    return new_state, status


def task_status(task: BoundTask, before: WorldState, action: int, after: WorldState) -> int:
    """The task's verdict on one step (``before --action--> after``): RUNNING, SUCCESS or FAILURE.

    Goal and lava cells are handled by the step itself; this adds each task kind's own rules.
    """
    kind, target = task.task.kind, task.task.obj
    picked = action == PICKUP_ACTION and before.carrying == NOTHING and after.carrying != NOTHING
    if kind in (PICKUP, FETCH) and picked:
        if after.carrying[:2] == target:
            return SUCCESS
        return FAILURE if kind == FETCH else RUNNING
    if kind == GOTO:
        if action == TOGGLE:
            return FAILURE
        if action == DONE:
            (tx, ty), (ax, ay) = task.positions[0], before.pose[:2]
            return SUCCESS if abs(ax - tx) + abs(ay - ty) == 1 else FAILURE
    if kind == PUTNEAR:
        if picked and after.carrying[:2] != target:
            return FAILURE
        if action == DROP and before.carrying != NOTHING:
            fx, fy = before.front()
            (tx, ty) = task.positions[0]
            dropped = after.carrying == NOTHING
            return SUCCESS if dropped and abs(fx - tx) <= 1 and abs(fy - ty) <= 1 else FAILURE
    if kind == OPEN and action == TOGGLE:
        (dx, dy) = task.positions[0]
        return SUCCESS if after.layout[dx, dy, 2] == OPEN_STATE and after.layout[dx, dy, 0] == DOOR else RUNNING
    if kind == OPEN_SEQ:
        (ax, ay), (bx, by) = task.positions
        first_before = before.layout[ax, ay, 2] == OPEN_STATE
        second_after = after.layout[bx, by, 2] == OPEN_STATE
        if second_after:
            return SUCCESS if first_before else FAILURE
        if after.layout[ax, ay, 2] == OPEN_STATE and before.layout[bx, by, 2] == OPEN_STATE:
            return FAILURE
    return RUNNING
