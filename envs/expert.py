"""BFS expert: shortest action sequences on the (x, y, direction) state graph.

Only ``left``, ``right`` and ``forward`` are used, lava is never entered, and the plan is optimal
in the number of actions (each action costs one MiniGrid step). Ties are broken the same way every
time (forward, then left, then right), so the expert is a deterministic function of the layout
and the start pose.

The hand-written BFS here is the one in use; :func:`solve_networkx` is the same search with
networkx, kept for the comparison in ``benchmarks/expert_speed.py``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX

from envs.dynamics import DIR_DX, DIR_DY, FORWARD, LEFT, RIGHT, passable

_ACTION_ORDER = (FORWARD, LEFT, RIGHT)


@dataclass(frozen=True)
class ExpertPlan:
    """An expert answer: ``solvable`` is False when no goal can be reached (``actions`` empty)."""

    solvable: bool
    actions: tuple[int, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.actions)


UNSOLVABLE = ExpertPlan(solvable=False)


def _successors(ok: np.ndarray, x: int, y: int, d: int):
    """Yield ``(action, (x, y, d))`` for each navigation action from a pose."""
    width, height = ok.shape
    for action in _ACTION_ORDER:
        if action == FORWARD:
            fx, fy = x + int(DIR_DX[d]), y + int(DIR_DY[d])
            if 0 <= fx < width and 0 <= fy < height and ok[fx, fy]:
                yield action, (fx, fy, d)
        elif action == LEFT:
            yield action, (x, y, (d - 1) % 4)
        else:
            yield action, (x, y, (d + 1) % 4)


def _safe_cells(layout: np.ndarray) -> np.ndarray:
    """Passable cells the expert may enter: everything passable except lava."""
    return passable(layout) & (layout[:, :, 0] != OBJECT_TO_IDX["lava"])


def solve(layout: np.ndarray, pose: tuple[int, int, int]) -> ExpertPlan:
    """Shortest action sequence from ``pose`` to any goal cell of ``layout`` ``[W, H, 3]``."""
    ok = _safe_cells(layout)
    is_goal = layout[:, :, 0] == OBJECT_TO_IDX["goal"]
    start = tuple(int(v) for v in pose)
    parent: dict[tuple[int, int, int], tuple[tuple[int, int, int], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if is_goal[state[0], state[1]]:
            actions = []
            while parent[state] is not None:
                state, action = parent[state]
                actions.append(action)
            return ExpertPlan(solvable=True, actions=tuple(reversed(actions)))
        for action, nxt in _successors(ok, *state):
            if nxt not in parent:
                parent[nxt] = (state, action)
                queue.append(nxt)
    return UNSOLVABLE


def solve_networkx(layout: np.ndarray, pose: tuple[int, int, int]) -> ExpertPlan:
    """The same search as :func:`solve`, on a networkx state graph (for benchmarking)."""
    ok = _safe_cells(layout)
    graph = nx.DiGraph()
    for x, y in zip(*np.nonzero(ok)):
        for d in range(4):
            for action, nxt in _successors(ok, int(x), int(y), d):
                graph.add_edge((int(x), int(y), d), nxt, action=action)
    start = tuple(int(v) for v in pose)
    graph.add_node(start)
    for x, y in zip(*np.nonzero(layout[:, :, 0] == OBJECT_TO_IDX["goal"])):
        for d in range(4):
            graph.add_edge((int(x), int(y), d), "goal")
    try:
        path = nx.shortest_path(graph, start, "goal")
    except nx.NetworkXNoPath:
        return UNSOLVABLE
    states = path[:-1]
    return ExpertPlan(True, tuple(graph.edges[a, b]["action"] for a, b in zip(states, states[1:])))
