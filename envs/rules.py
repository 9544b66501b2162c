"""Which actions are worth taking: the world's rules that agents use to filter a plan's first action.

Only the dynamics (:func:`envs.world.world_step`), never the expert. An action is *useful* when it
changes the state (pose, carried object, or a cell) and does not end the episode in failure:
turning always is; ``forward`` is not into a wall, a closed door, an object or lava; ``pickup``
needs an empty hand and a key, ball or box ahead; ``drop`` a full hand and an empty cell ahead;
``toggle`` a door it can open or close, or a box ahead. ``done`` (MiniGrid's 6) is never a useful
first action here. As a *first action*, closing an open door is forbidden too
(:func:`forbidden_first_actions`): no supported task needs it (the expert never does it), and a
policy that toggles an open door closes and reopens it for ever. So is an object action that
leads back to a world state the episode has been in (:func:`state_key`): dropping what was just
picked up where it lay, and picking it up again, is the same kind of loop.
"""

from __future__ import annotations

import hashlib
from typing import Collection, Hashable

import numpy as np

from envs.tasks import BoundTask
from envs.world import (
    DONE, DOOR, EMPTY_IDX, FAILURE, FORWARD, LEFT, NOTHING, OBJECT_ACTIONS, OPEN_STATE, PICKABLE, RIGHT, TOGGLE, WorldState,
    world_step,
)


NAVIGATION = (LEFT, RIGHT, FORWARD)
ACTIONS = 7
Pose = tuple[int, int, int]


def useful_actions(state: WorldState, task: BoundTask | None = None) -> list[tuple[int, WorldState]]:
    """``(action, next_state)`` for every action except ``done`` that changes ``state`` without
    failing the episode, in action order."""
    out = []
    fx, fy = state.front()
    ahead = int(state.layout[fx, fy, 0])
    interacts = ahead in (DOOR, *PICKABLE) or (state.carrying != NOTHING and ahead == EMPTY_IDX)
    for action in range(ACTIONS):
        if action == DONE or (action in OBJECT_ACTIONS and not interacts):  # no-ops: nothing to act on
            continue
        nxt, status = world_step(state, action, task)
        if status == FAILURE:
            continue
        if nxt is not state and (nxt.pose != state.pose or nxt.carrying != state.carrying or nxt.layout is not state.layout):
            out.append((action, nxt))
    return out


def state_key(layout: np.ndarray, pose: Pose, carrying: tuple[int, int, int]) -> Hashable:
    """A hashable key of a whole world state: a digest of ``layout`` [G,G,3], the pose and the
    carried object."""
    digest = hashlib.blake2b(np.ascontiguousarray(layout).tobytes(), digest_size=16).digest()
    return digest, tuple(int(v) for v in pose), tuple(int(v) for v in carrying)


def forbidden_first_actions(layout: np.ndarray, pose: Pose, visited: Collection[Pose] = (),
                            carrying: tuple[int, int, int] = NOTHING, task: BoundTask | None = None,
                            seen: Collection[Hashable] = ()) -> np.ndarray:
    """[7] bool: every action but the useful ones, toggling an open door (closing it), the object
    actions that lead to a world state in ``seen`` (:func:`state_key` keys), and, when
    some move leads to a pose not in ``visited``, every move into a visited pose too (object
    actions stay allowed). When every useful move leads to a visited pose and ``visited`` is a
    dict in visit order (most recent last, as the agents keep it), only the moves to the least
    recently visited of those poses stay allowed, so a policy cannot cycle between two poses.
    No useful move at all: left and right stay allowed."""
    state = WorldState(layout, tuple(int(v) for v in pose), tuple(carrying))
    fx, fy = state.front()
    closes = int(layout[fx, fy, 0]) == DOOR and int(layout[fx, fy, 2]) == OPEN_STATE
    useful = [(a, nxt) for a, nxt in useful_actions(state, task) if not (a == TOGGLE and closes)]
    moves = [a for a, nxt in useful if a in NAVIGATION]
    fresh = [a for a, nxt in useful if a in NAVIGATION and nxt.pose not in visited]
    objects = [a for a, nxt in useful if a not in NAVIGATION
               and not (seen and state_key(nxt.layout, nxt.pose, nxt.carrying) in seen)]
    if not fresh and moves and isinstance(visited, dict):  # boxed in: the least recently visited pose
        order = {p: i for i, p in enumerate(visited)}
        age = {a: order[nxt.pose] for a, nxt in useful if a in NAVIGATION}  # every target is visited
        moves = [a for a in moves if age[a] == min(age.values())]
    forbidden = np.ones(ACTIONS, dtype=bool)
    forbidden[(fresh or moves or [LEFT, RIGHT]) + objects] = False
    return forbidden
