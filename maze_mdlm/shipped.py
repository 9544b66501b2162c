"""The checkpoints shipped as package data, one per supported env."""

from __future__ import annotations

from pathlib import Path

from envs import FOURROOMS_ID, MAZE_ID

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED = {FOURROOMS_ID: "fourrooms.pt", MAZE_ID: "maze.pt"}


def default_checkpoint(env_id: str) -> Path:
    """Path of the shipped checkpoint for ``env_id``.

    Raises:
        ValueError: if none ships for that env or the file is missing from the install.
    """
    if env_id not in SHIPPED:
        raise ValueError(f"no checkpoint ships for {env_id}; pass --checkpoint PATH (shipped: {', '.join(SHIPPED)})")
    path = CHECKPOINT_DIR / SHIPPED[env_id]
    if not path.is_file():
        raise ValueError(f"the shipped checkpoint {path} is missing from this install; pass --checkpoint PATH")
    return path
