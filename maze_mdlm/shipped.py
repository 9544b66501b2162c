"""The checkpoints shipped as package data: per supported env, an MDLM and the AR baseline."""

from __future__ import annotations

from pathlib import Path

from envs import BRAID_MAZE_ID, FOURROOMS_ID, LAVA_MAZE_ID, MAZE_ID

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED = {
    ("mdlm", FOURROOMS_ID): "fourrooms.pt",
    ("mdlm", MAZE_ID): "maze.pt",
    ("ar", FOURROOMS_ID): "fourrooms_ar.pt",
    ("ar", MAZE_ID): "maze_ar.pt",
    # the braid and lava mazes have no model of their own: the maze's, zero-shot (README, Results)
    ("mdlm", BRAID_MAZE_ID): "maze.pt",
    ("mdlm", LAVA_MAZE_ID): "maze.pt",
    ("ar", BRAID_MAZE_ID): "maze_ar.pt",
    ("ar", LAVA_MAZE_ID): "maze_ar.pt",
}


def default_checkpoint(env_id: str, model_type: str = "mdlm") -> Path:
    """Path of the shipped ``model_type`` ("mdlm" or "ar") checkpoint for ``env_id``.

    Raises:
        ValueError: if none ships for that env or the file is missing from the install.
    """
    if (model_type, env_id) not in SHIPPED:
        envs = sorted({env for kind, env in SHIPPED if kind == model_type})
        raise ValueError(f"no {model_type} checkpoint ships for {env_id}; pass --checkpoint PATH "
                         f"(shipped: {', '.join(envs)})")
    path = CHECKPOINT_DIR / SHIPPED[(model_type, env_id)]
    if not path.is_file():
        raise ValueError(f"the shipped checkpoint {path} is missing from this install; pass --checkpoint PATH")
    return path
