"""Environments for maze-mdlm: full-grid observations, our maze, dynamics, expert, datasets.

Importing this package registers ``MazeMDLM/Maze-19x19-v0`` with gymnasium.
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

if MAZE_ID not in gym_registry:
    register(id=MAZE_ID, entry_point="envs.maze:MazeEnv", kwargs={"cells": 9})

__all__ = [
    "GRID_SIZE",
    "MAZE_ID",
    "FOURROOMS_ID",
    "FullGridObsWrapper",
    "GridTooLargeError",
    "ObservationError",
    "encode_env",
    "observation_grid",
    "to_model_input",
]
