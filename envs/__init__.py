"""Environments for maze-mdlm: full-grid observations, our maze, dynamics, expert, datasets.

Importing this package registers our six maze envs with gymnasium: ``MazeMDLM/Maze-19x19-v0``,
``MazeMDLM/BraidMaze-19x19-v0`` and ``MazeMDLM/LavaMaze-19x19-v0``, and the same three at 25x25
(``MazeMDLM/Maze-25x25-v0``, ...).
"""

from __future__ import annotations

from gymnasium.envs.registration import register
from gymnasium.envs.registration import registry as gym_registry

from envs.observation import (
    GRID_SIZE,
    FullGridObsWrapper,
    GridTooLargeError,
    ObservationError,
    encode_env,
    observation_grid,
    to_model_input,
)

MAZE_ID = "MazeMDLM/Maze-19x19-v0"
FOURROOMS_ID = "MiniGrid-FourRooms-v0"
BRAID_MAZE_ID = "MazeMDLM/BraidMaze-19x19-v0"
LAVA_MAZE_ID = "MazeMDLM/LavaMaze-19x19-v0"
MAZE_25_IDS = ("MazeMDLM/Maze-25x25-v0", "MazeMDLM/BraidMaze-25x25-v0", "MazeMDLM/LavaMaze-25x25-v0")

for _id, _entry, _kwargs in (
    (MAZE_ID, "envs.maze:MazeEnv", {"cells": 9}),
    (BRAID_MAZE_ID, "envs.maze:BraidMazeEnv", {"cells": 9, "braid": 0.5}),
    (LAVA_MAZE_ID, "envs.maze:LavaMazeEnv", {"cells": 9, "lava": 0.25}),
    (MAZE_25_IDS[0], "envs.maze:MazeEnv", {"cells": 12}),
    (MAZE_25_IDS[1], "envs.maze:BraidMazeEnv", {"cells": 12, "braid": 0.5}),
    (MAZE_25_IDS[2], "envs.maze:LavaMazeEnv", {"cells": 12, "lava": 0.25}),
):
    if _id not in gym_registry:
        register(id=_id, entry_point=_entry, kwargs=_kwargs)
del _id, _entry, _kwargs

__all__ = [
    "GRID_SIZE",
    "MAZE_ID",
    "BRAID_MAZE_ID",
    "LAVA_MAZE_ID",
    "MAZE_25_IDS",
    "FOURROOMS_ID",
    "FullGridObsWrapper",
    "GridTooLargeError",
    "ObservationError",
    "encode_env",
    "observation_grid",
    "to_model_input",
]
