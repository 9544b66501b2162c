"""What closed boxes hold, guessed from what the observation shows.

MiniGrid encodes a closed box, not its contents, so an agent cannot see which box holds a key.
:func:`guess_box_contents` is the guess MCTD's search makes (since 0.13; here since 0.16 so that the
data collector can use it too): while some locked door's key is nowhere in sight (not in the
grid, not in hand), each closed box is assumed to hold a key for such a door on the wall of the
box's own room (any such door if the room has none), the one nearest the task's target.

This module reads only what an observation shows and never imports the expert, so agents may use
it; :mod:`envs.guessing_expert` is the expert that plans with the guess.
"""

from __future__ import annotations

import numpy as np

from envs.observation import WALL
from envs.tasks import FETCH, GOAL, OPEN_SEQ, PICKUP, PUTNEAR, BoundTask
from envs.world import BOX, DOOR, GOAL_IDX, KEY, LOCKED_STATE, NOTHING, OPEN_STATE, WorldState, flood_fill

Cell = tuple[int, int, int]


def room_cells(layout: np.ndarray, start: tuple[int, int]) -> set[tuple[int, int]]:
    """The cells of ``layout [W, H, 3]`` reachable from ``start`` in 4-steps without entering a
    wall or a door (objects, lava and the goal do not split a room)."""
    reach = flood_fill(np.isin(layout[:, :, 0], (WALL, DOOR)), start)
    return {(int(x), int(y)) for x, y in np.argwhere(reach)}


def task_targets(layout: np.ndarray, carrying: Cell, task: BoundTask | None) -> np.ndarray:
    """``[N, 2]`` cells the task itself is after in ``layout [W, H, 3]`` (no keys, doors or boxes on
    the way): the goal, the object to pick up, the GoTo / Open target or the PutNear anchor once the
    object is held."""
    kind = GOAL if task is None else task.task.kind
    if kind == GOAL:
        return np.argwhere(layout[:, :, 0] == GOAL_IDX)
    if kind in (PICKUP, FETCH) or (kind == PUTNEAR and tuple(carrying[:2]) != task.task.obj):
        return np.argwhere((layout[:, :, 0] == task.task.obj[0]) & (layout[:, :, 1] == task.task.obj[1]))
    positions = task.positions
    if kind == OPEN_SEQ and layout[positions[0][0], positions[0][1], 2] == OPEN_STATE:
        return np.array([positions[1]])
    return np.array(positions[:1]).reshape(-1, 2)


def guess_box_contents(layout: np.ndarray, carrying: Cell = NOTHING, targets: np.ndarray | None = None,
                       holder: tuple[int, int] | None = None) -> tuple[tuple[tuple[int, int] | str, Cell], ...]:
    """What the closed boxes of ``layout [W, H, 3]`` are assumed to hold, as
    :attr:`envs.world.WorldState.boxes` (sorted the same way): while some locked door's colour has
    no key in sight (none in the grid, none in hand), each closed box holds a key for one such door;
    otherwise nothing is assumed (``()``).

    Which door (0.14): one on the wall of the box's own room (the cells reachable from the box
    without crossing a wall or a door; any such door if the room has none), the one nearest
    (Manhattan) to the task's ``targets [N, 2]`` (the cells the task is after) so that the box
    nearest the agent is assumed to hold the key the way to the target needs; with no targets, or
    on a tie, the one nearest the box. 0.13 took the door nearest the box.

    A carried box (``carrying`` a box, ``holder`` the agent's cell) is guessed the same way, as a
    box standing on ``holder``, under the key ``"carried"`` (0.33; before, a box was assumed to
    hold a key on the floor and nothing once picked up, so a search made while carrying it planned
    to open an empty box and was surprised by the key)."""
    doors = np.argwhere((layout[:, :, 0] == DOOR) & (layout[:, :, 2] == LOCKED_STATE))
    seen = set(layout[:, :, 1][layout[:, :, 0] == KEY].tolist()) | ({int(carrying[1])} if carrying[0] == KEY else set())
    missing = np.array([(x, y) for x, y in doors.tolist() if int(layout[x, y, 1]) not in seen]).reshape(-1, 2)
    # (the key in WorldState.boxes, the cell the box stands on)
    boxes: list = [((x, y), (x, y)) for x, y in np.argwhere(layout[:, :, 0] == BOX).tolist()]
    if carrying[0] == BOX and holder is not None:
        boxes.append(("carried", tuple(int(v) for v in holder)))
    if not len(missing) or not boxes:
        return ()
    targets = np.zeros((0, 2), dtype=np.int64) if targets is None else np.asarray(targets).reshape(-1, 2)
    guesses = []
    for where, (x, y) in boxes:
        room = room_cells(layout, (x, y))
        beside = np.array([any((dx, dy) in room for dx, dy in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)))
                           for a, b in missing.tolist()])
        candidates = missing[beside] if beside.any() else missing
        to_box = np.abs(candidates - (x, y)).sum(axis=1)
        to_target = (np.abs(candidates[:, None, :] - targets[None]).sum(axis=2).min(axis=1) if len(targets)
                     else np.zeros(len(candidates), dtype=np.int64))
        door = candidates[np.lexsort((to_box, to_target))[0]]
        guesses.append((where, (KEY, int(layout[door[0], door[1], 1]), 0)))
    return tuple(sorted(guesses, key=str))


def guessed_state(state: WorldState, task: BoundTask | None) -> WorldState:
    """``state`` with its box contents replaced by the guess (what an agent that sees ``state``
    can know, a carried box guessed as one standing on the agent's cell)."""
    targets = task_targets(state.layout, state.carrying, task)
    boxes = guess_box_contents(state.layout, state.carrying, targets, holder=state.pose[:2])
    return WorldState(state.layout, state.pose, state.carrying, boxes)
