"""Hand-made worlds shared by the MCTD tests: layouts and FullyObsWrapper-style observations."""

from __future__ import annotations

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX

from envs.observation import AGENT, EMPTY_CELL, GOAL, LAVA, WALL_CELL


def make_layout(free: list[tuple[int, int]], goal: tuple[int, int],
                lava: tuple[tuple[int, int], ...] = ()) -> np.ndarray:
    """[19, 19, 3] layout: walls everywhere except the ``free`` cells, a goal, optional lava."""
    layout = np.empty((19, 19, 3), dtype=np.uint8)
    layout[:] = WALL_CELL
    for x, y in free:
        layout[x, y] = EMPTY_CELL
    layout[goal] = (GOAL, COLOR_TO_IDX["green"], 0)
    for cell in lava:
        layout[cell] = (LAVA, COLOR_TO_IDX["red"], 0)
    return layout


def observe(layout: np.ndarray, pose: tuple[int, int, int]) -> dict:
    """A FullyObsWrapper-style observation of ``layout`` with the agent at ``pose``."""
    image = layout.copy()
    x, y, d = pose
    image[x, y] = (AGENT, COLOR_TO_IDX["red"], d)
    return {"image": image, "direction": d}


# An L-shaped corridor: from (1, 1) facing right, the goal at (4, 4) is 7 actions away
# (forward x3, right, forward x3); every other cell is wall.
CORRIDOR_FREE = [(x, 1) for x in range(1, 5)] + [(4, y) for y in range(1, 4)]
CORRIDOR = make_layout(CORRIDOR_FREE, goal=(4, 4))
CORRIDOR_START = (1, 1, 0)
