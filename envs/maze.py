"""Our registered world: a perfect maze on the 19×19 canvas."""

from __future__ import annotations

import networkx as nx
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Wall
from minigrid.minigrid_env import MiniGridEnv

from envs.observation import GRID_SIZE


class MazeEnv(MiniGridEnv):
    """
    ## Description

    A perfect maze (exactly one path between any two cells) of 9×9 cells on a 19×19 grid. Cells sit
    at odd coordinates; the walls between neighbouring cells are knocked down along a random
    spanning tree of the cell graph (networkx's minimum spanning tree under random edge weights
    drawn from ``self.np_random``). The agent (random direction) and the green goal square are
    placed on distinct random free tiles, so the shortest route can be long and winding.

    ## Mission Space

    "reach the goal"

    ## Action Space

    | Num | Name         | Action       |
    |-----|--------------|--------------|
    | 0   | left         | Turn left    |
    | 1   | right        | Turn right   |
    | 2   | forward      | Move forward |
    | 3   | pickup       | Unused       |
    | 4   | drop         | Unused       |
    | 5   | toggle       | Unused       |
    | 6   | done         | Unused       |

    ## Observation Encoding

    - MiniGrid's default egocentric view; wrap with ``envs.FullGridObsWrapper`` (or MiniGrid's
      ``FullyObsWrapper``) for the full grid that maze-mdlm's agents take.
    - Each tile is encoded as a 3 dimensional tuple: `(OBJECT_IDX, COLOR_IDX, STATE)`.

    ## Rewards

    A reward of '1 - 0.9 * (step_count / max_steps)' is given for success, and '0' for failure.

    ## Termination

    The episode ends if any one of the following conditions is met:

    1. The agent reaches the goal.
    2. Timeout (see `max_steps`, default 2 × 19² = 722, more than twice the longest possible
       shortest path).

    ## Registered Configurations

    - `MazeMDLM/Maze-19x19-v0`
    """

    def __init__(self, cells: int = 9, max_steps: int | None = None, **kwargs):
        self.cells = cells
        size = 2 * cells + 1
        if size > GRID_SIZE:
            raise ValueError(f"a maze of {cells}x{cells} cells does not fit on the {GRID_SIZE}x{GRID_SIZE} canvas")
        super().__init__(
            mission_space=MissionSpace(mission_func=self._gen_mission),
            width=size,
            height=size,
            max_steps=max_steps if max_steps is not None else 2 * size * size,
            see_through_walls=True,
            **kwargs,
        )

    @staticmethod
    def _gen_mission() -> str:
        return "reach the goal"

    def _spanning_tree(self) -> nx.Graph:
        """A random spanning tree of the ``cells × cells`` lattice."""
        lattice = nx.grid_2d_graph(self.cells, self.cells)
        weights = self.np_random.random(lattice.number_of_edges())
        for (u, v), w in zip(sorted(lattice.edges()), weights):
            lattice.edges[u, v]["weight"] = float(w)
        return nx.minimum_spanning_tree(lattice, algorithm="kruskal")

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        for x in range(width):
            for y in range(height):
                if x % 2 == 0 or y % 2 == 0:
                    self.grid.set(x, y, Wall())
        for (ax, ay), (bx, by) in self._spanning_tree().edges():
            self.grid.set(ax + bx + 1, ay + by + 1, None)  # the wall tile between two cells
        self.place_obj(Goal())
        self.place_agent()
