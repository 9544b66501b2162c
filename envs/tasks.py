"""Tasks from MiniGrid missions: what an episode asks, as data, and where its targets are.

A mission string is parsed into a :class:`Task` (its kind, an object and, for some kinds, a second
object). :meth:`Task.bind` then finds the task's targets in the start grid, as the env itself fixes
them at reset (a GoTo target or a PutNear anchor keeps its start position even if moved later).
The success and failure rules that use a bound task live in :mod:`envs.dynamics`.

Kinds:

========== ================================================= ===================================
kind        missions                                          ends with success when
========== ================================================= ===================================
goal        "get to the green goal square", "reach the goal"  the agent steps onto a goal
pickup      "pick up the {color} {type}"                      it picks up that object
fetch       "{get a | fetch a | ...} {color} {type}"          it picks up that object (any
                                                              other pickup fails)
goto        "go to the {color} {type|door}"                   ``done`` next to it (``done``
                                                              elsewhere or ``toggle`` fails)
open        "open the door"                                   a ``toggle`` opens the door
open_seq    "open the red door then the blue door"            the second door opens after the
                                                              first (the other order fails)
putnear     "put the {c} {t} near the {c2} {t2}"              dropping the first next to (8-
                                                              neighbourhood) the second's start
                                                              cell (a wrong pickup or any other
                                                              drop fails)
========== ================================================= ===================================

As a vector (the ``task`` entry of observations and model inputs) a task is int64 ``[5]``:
``(kind, type, color, type2, color2)``, with MiniGrid's object / colour indices and 0 where unused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

KINDS = ("goal", "pickup", "fetch", "goto", "open", "open_seq", "putnear")
GOAL, PICKUP, FETCH, GOTO, OPEN, OPEN_SEQ, PUTNEAR = range(len(KINDS))
TASK_DIM = 5

_COLOR = "(" + "|".join(COLOR_TO_IDX) + ")"
_TYPE = "(key|ball|box|door)"
_PATTERNS: tuple[tuple[str, int], ...] = (
    (r"(get to the green goal square|reach the goal|traverse the rooms to get to the goal"
     r"|avoid the lava and get to the green goal square|find the opening and get to the green goal square"
     r"|use the key to open the door and then get to the goal"
     r"|get the \w+ key from the \w+ room, unlock the \w+ door and go to the goal)", GOAL),
    (rf"pick up the {_COLOR} {_TYPE}", PICKUP),
    (rf"(?:get a|go get a|fetch a|go fetch a|you must fetch a) {_COLOR} {_TYPE}", FETCH),
    (rf"go to the {_COLOR} {_TYPE}", GOTO),
    (r"open the door", OPEN),
    (rf"open the {_COLOR} door then the {_COLOR} door", OPEN_SEQ),
    (rf"put the {_COLOR} {_TYPE} near the {_COLOR} {_TYPE}", PUTNEAR),
)


class MissionError(ValueError):
    """Raised for a mission string that is not one of the supported task forms."""


@dataclass(frozen=True)
class Task:
    """A parsed mission. ``obj`` / ``obj2`` are ``(type_idx, color_idx)`` or None."""

    kind: int
    obj: tuple[int, int] | None = None
    obj2: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return KINDS[self.kind]

    def vector(self) -> np.ndarray:
        """int64 ``[5]``: ``(kind, type, color, type2, color2)``."""
        a, b = self.obj or (0, 0), self.obj2 or (0, 0)
        return np.array([self.kind, a[0], a[1], b[0], b[1]], dtype=np.int64)

    @classmethod
    def from_vector(cls, vector) -> "Task":
        """The inverse of :meth:`vector`."""
        k, t, c, t2, c2 = (int(v) for v in vector)
        if not 0 <= k < len(KINDS):
            raise MissionError(f"task vector has an unknown kind {k}")
        obj = (t, c) if t else None
        obj2 = (t2, c2) if t2 else None
        return cls(k, obj, obj2)

    def bind(self, grid: np.ndarray) -> "BoundTask":
        """Find this task's targets in a start grid ``[W, H, 3]`` (the agent may be drawn on it)."""
        positions: list[tuple[int, int]] = []
        if self.kind in (GOTO, PUTNEAR, OPEN, OPEN_SEQ):
            wanted = {
                GOTO: [self.obj], PUTNEAR: [self.obj2], OPEN: [None], OPEN_SEQ: [self.obj, self.obj2],
            }[self.kind]
            for target in wanted:
                if target is None:  # "open the door": the one door of the world
                    cells = np.argwhere(grid[:, :, 0] == OBJECT_TO_IDX["door"])
                else:
                    cells = np.argwhere((grid[:, :, 0] == target[0]) & (grid[:, :, 1] == target[1]))
                if len(cells) != 1:
                    raise MissionError(f"task {self.describe()}: expected one target in the grid, found {len(cells)}")
                positions.append((int(cells[0][0]), int(cells[0][1])))
        return BoundTask(self, tuple(positions))

    def describe(self) -> str:
        """E.g. ``"pickup blue ball"``."""
        names = {v: k for k, v in OBJECT_TO_IDX.items()}
        colors = {v: k for k, v in COLOR_TO_IDX.items()}
        objects = [f"{colors[o[1]]} {names[o[0]]}" for o in (self.obj, self.obj2) if o is not None]
        return " ".join([self.name, *objects])


@dataclass(frozen=True)
class BoundTask:
    """A task with its target cells in one episode (``positions``: GoTo target, PutNear anchor,
    the door of ``open``, or the first / second door of ``open_seq``)."""

    task: Task
    positions: tuple[tuple[int, int], ...] = ()


def parse_mission(mission: str) -> Task:
    """Parse a MiniGrid mission string into a :class:`Task`.

    Raises:
        MissionError: if the mission is not one of the supported forms (message names it).
    """
    text = str(mission).strip()
    for pattern, kind in _PATTERNS:
        match = re.fullmatch(pattern, text)
        if match is None:
            continue
        words = [g for g in match.groups() if g is not None and " " not in g]
        if kind == OPEN_SEQ:
            objs = [(OBJECT_TO_IDX["door"], COLOR_TO_IDX[c]) for c in words]
        else:
            objs = [(OBJECT_TO_IDX[t], COLOR_TO_IDX[c]) for c, t in zip(words[0::2], words[1::2])]
        return Task(kind, *objs)
    raise MissionError(f"mission {text!r} is not a supported task")


GOAL_TASK = Task(GOAL)
