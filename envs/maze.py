"""Our registered worlds: a perfect maze on the 19×19 canvas, and two harder maze families.

* :class:`MazeEnv` (``MazeMDLM/Maze-19x19-v0``): a perfect maze, exactly one path between two cells.
* :class:`BraidMazeEnv` (``MazeMDLM/BraidMaze-19x19-v0``): the same maze with a fraction of its dead
  ends opened into loops, so many paths exist and cutting the loops out of a path no longer gives
  the shortest one.
* :class:`LavaMazeEnv` (``MazeMDLM/LavaMaze-19x19-v0``): the same maze with lava on a fraction of the
  tiles that are off the (unique) path from the agent to the goal, so one wrong step ends the episode
  and every episode stays solvable by construction.

All three are parametric in ``cells`` (a maze of ``cells × cells`` cells is a ``(2 cells + 1)``-square
grid); only sizes that fit the 19×19 canvas (``cells <= 9``) work today, so only the 19×19 ids are
registered. Held-out evaluation uses reset seeds from 1,000,000 as for every env (``envs.seeds``).
"""

from __future__ import annotations

import networkx as nx
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Lava, Wall
from minigrid.minigrid_env import MiniGridEnv

from envs.observation import MAX_GRID_SIZE


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

    - `MazeMDLM/Maze-19x19-v0` (``cells=9``)
    - `MazeMDLM/Maze-25x25-v0` (``cells=12``, the 25×25 canvas)
    """

    def __init__(self, cells: int = 9, max_steps: int | None = None, **kwargs):
        self.cells = cells
        size = 2 * cells + 1
        if size > MAX_GRID_SIZE:
            raise ValueError(f"a maze of {cells}x{cells} cells does not fit on the largest canvas, "
                             f"{MAX_GRID_SIZE}x{MAX_GRID_SIZE}")
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

    def _cell_graph(self) -> nx.Graph:
        """The cell graph whose edges are knocked-down walls (a spanning tree here)."""
        return self._spanning_tree()

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
        for (ax, ay), (bx, by) in self._cell_graph().edges():
            self.grid.set(ax + bx + 1, ay + by + 1, None)  # the wall tile between two cells
        self.place_obj(Goal())
        self.place_agent()


class BraidMazeEnv(MazeEnv):
    """
    ## Description

    A braid maze: :class:`MazeEnv`'s perfect maze of ``cells × cells`` cells, then a fraction
    ``braid`` (default 0.5) of its dead ends removed. The dead ends (cells with one open side) are
    visited in a random order; each one that is still a dead end is, with probability ``braid``,
    joined to one more neighbouring cell (a neighbouring dead end when there is one, else any
    neighbour it is not yet joined to) by knocking down the wall between them. Each removal closes a
    loop, so many paths join two cells, and cutting the loops out of a path (``envs.dynamics.shortcut``)
    no longer gives the shortest one. ``braid=0`` is :class:`MazeEnv`'s maze, ``braid=1`` removes every
    dead end. Agent (random direction) and goal are placed on distinct random free tiles, as in
    :class:`MazeEnv`. All randomness comes from ``self.np_random``.

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
    2. Timeout (see `max_steps`, default 2 × size², 722 at 19×19).

    ## Registered Configurations

    - `MazeMDLM/BraidMaze-19x19-v0` (``cells=9, braid=0.5``)
    - `MazeMDLM/BraidMaze-25x25-v0` (``cells=12, braid=0.5``)

    Held-out evaluation seeds: from 1,000,000 (``envs.seeds.EVAL_SEED_START``), as for every env.
    """

    def __init__(self, cells: int = 9, braid: float = 0.5, max_steps: int | None = None, **kwargs):
        if not 0.0 <= braid <= 1.0:
            raise ValueError(f"braid must be in [0, 1], got {braid}")
        self.braid = float(braid)
        super().__init__(cells=cells, max_steps=max_steps, **kwargs)

    def _cell_graph(self) -> nx.Graph:
        """The spanning tree plus one edge per removed dead end."""
        graph = self._spanning_tree()
        if self.braid == 0.0:
            return graph  # exactly MazeEnv's draws
        lattice = nx.grid_2d_graph(self.cells, self.cells)
        dead_ends = sorted(n for n in graph.nodes if graph.degree(n) == 1)
        for i in self.np_random.permutation(len(dead_ends)):
            cell = dead_ends[int(i)]
            draw = self.np_random.random()
            if graph.degree(cell) != 1 or draw >= self.braid:
                continue
            options = sorted(n for n in lattice.neighbors(cell) if not graph.has_edge(cell, n))
            if not options:
                continue
            ends = [n for n in options if graph.degree(n) == 1]
            pool = ends or options
            graph.add_edge(cell, pool[int(self.np_random.integers(len(pool)))])
        return graph


class LavaMazeEnv(MazeEnv):
    """
    ## Description

    A lava maze: :class:`MazeEnv`'s perfect maze of ``cells × cells`` cells with agent (random
    direction) and goal placed as in :class:`MazeEnv`, then lava on a fraction ``lava`` (default
    0.25, rounded down) of the free tiles that are *off* the path from the agent to the goal, drawn
    uniformly without replacement. In a perfect maze that path is unique, so it never holds lava and
    every episode is solvable by construction; a lava tile in a side branch cuts off the rest of that
    branch. Entering lava ends the episode (one wrong step at a junction can do it). All randomness
    comes from ``self.np_random``.

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
    2. The agent enters lava.
    3. Timeout (see `max_steps`, default 2 × size², 722 at 19×19).

    ## Registered Configurations

    - `MazeMDLM/LavaMaze-19x19-v0` (``cells=9, lava=0.25``)
    - `MazeMDLM/LavaMaze-25x25-v0` (``cells=12, lava=0.25``)

    Held-out evaluation seeds: from 1,000,000 (``envs.seeds.EVAL_SEED_START``), as for every env.
    """

    def __init__(self, cells: int = 9, lava: float = 0.25, max_steps: int | None = None, **kwargs):
        if not 0.0 <= lava <= 1.0:
            raise ValueError(f"lava must be in [0, 1], got {lava}")
        self.lava = float(lava)
        super().__init__(cells=cells, max_steps=max_steps, **kwargs)

    def _free_tiles(self) -> nx.Graph:
        """The graph of free (non-wall) tiles, 4-connected."""
        free = nx.Graph()
        for x in range(self.width):
            for y in range(self.height):
                if self.grid.get(x, y) is None or self.grid.get(x, y).type == "goal":
                    free.add_node((x, y))
        for x, y in list(free.nodes):
            for nxt in ((x + 1, y), (x, y + 1)):
                if nxt in free:
                    free.add_edge((x, y), nxt)
        return free

    def _gen_grid(self, width: int, height: int) -> None:
        super()._gen_grid(width, height)
        free = self._free_tiles()
        goal = next(p for p in free.nodes if self.grid.get(*p) is not None)
        path = set(nx.shortest_path(free, tuple(int(v) for v in self.agent_pos), goal))  # unique in a tree
        off_path = sorted(p for p in free.nodes if p not in path)
        count = int(self.lava * len(off_path))
        for i in self.np_random.choice(len(off_path), size=count, replace=False) if count else []:
            self.grid.set(*off_path[int(i)], Lava())
