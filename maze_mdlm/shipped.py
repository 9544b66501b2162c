"""The checkpoints shipped as package data: the default MDLM and AR baseline of every supported env.

The generalist (``suite.pt``, ``suite_ar.pt``: one model trained on the MiniGrid suite, grid size
25) is the default for every env in :data:`envs.registry.SUPPORTED`. The per-env FourRooms and
maze checkpoints (grid size 19) stay the default of their own envs, ``maze25.pt`` (the
generalist fine-tuned on the three 25x25 mazes, 0.21) is the MDLM of those three,
``long_worlds.pt`` (the generalist fine-tuned on :data:`LONG_WORLD_IDS`, 0.22) the MDLM of those
four, and ``obstructed.pt`` (fine-tuned on :data:`OBSTRUCTED_IDS`, 0.23, a second DAgger round in
0.24) the MDLM of those six (:data:`SHIPPED`).
"""

from __future__ import annotations

from pathlib import Path

from envs import BRAID_MAZE_ID, FOURROOMS_ID, LAVA_MAZE_ID, MAZE_25_IDS, MAZE_ID
from envs.registry import SUPPORTED

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SUITE = {"mdlm": "suite.pt", "ar": "suite_ar.pt"}  # the generalist: every supported env
# the suite's longest key and room worlds, where the generalist's own policy was weakest (0.22)
LONG_WORLD_IDS = ("MiniGrid-MultiRoom-N6-v0", "MiniGrid-KeyCorridorS4R3-v0", "MiniGrid-KeyCorridorS5R3-v0",
                  "MiniGrid-KeyCorridorS6R3-v0")
# the trained ObstructedMaze ids with hidden keys where the generalist missed a target (0.23); the
# zero-shot v0 ids (2Dlhb, 1Q, 2Q) stay out of its data and on suite.pt
OBSTRUCTED_IDS = ("MiniGrid-ObstructedMaze-2Dlh-v0", "MiniGrid-ObstructedMaze-2Dlhb-v1",
                  "MiniGrid-ObstructedMaze-1Q-v1", "MiniGrid-ObstructedMaze-2Q-v1",
                  "MiniGrid-ObstructedMaze-Full-v0", "MiniGrid-ObstructedMaze-Full-v1")
SHIPPED = {  # per-env checkpoints that take precedence over the generalist for their env
    ("mdlm", FOURROOMS_ID): "fourrooms.pt",
    ("mdlm", MAZE_ID): "maze.pt",
    ("ar", FOURROOMS_ID): "fourrooms_ar.pt",
    ("ar", MAZE_ID): "maze_ar.pt",
    # the braid and lava mazes have no model of their own: the maze's, zero-shot (README, Results)
    ("mdlm", BRAID_MAZE_ID): "maze.pt",
    ("mdlm", LAVA_MAZE_ID): "maze.pt",
    ("ar", BRAID_MAZE_ID): "maze_ar.pt",
    ("ar", LAVA_MAZE_ID): "maze_ar.pt",
    # the 25x25 mazes: the generalist fine-tuned on them (mdlm and mctd; their ar stays suite_ar.pt)
    **{("mdlm", env_id): "maze25.pt" for env_id in MAZE_25_IDS},
    # the long key and room worlds: the generalist fine-tuned on them (mdlm and mctd; ar: suite_ar.pt)
    **{("mdlm", env_id): "long_worlds.pt" for env_id in LONG_WORLD_IDS},
    # the hidden-key ObstructedMaze ids: the generalist fine-tuned on them (mdlm and mctd; ar: suite_ar.pt)
    **{("mdlm", env_id): "obstructed.pt" for env_id in OBSTRUCTED_IDS},
}


def shipped_name(env_id: str, model_type: str = "mdlm") -> str:
    """File name (in :data:`CHECKPOINT_DIR`) of the ``model_type`` checkpoint shipped for ``env_id``.

    Raises:
        ValueError: for an unknown ``model_type``, or an env the registry does not support.
    """
    if model_type not in SUITE:
        raise ValueError(f"unknown model type {model_type!r} (known: {', '.join(SUITE)})")
    if (model_type, env_id) in SHIPPED:
        return SHIPPED[(model_type, env_id)]
    if env_id not in SUPPORTED:
        raise ValueError(f"no {model_type} checkpoint ships for {env_id} (not in envs.registry.SUPPORTED); "
                         "pass --checkpoint PATH")
    return SUITE[model_type]


def default_checkpoint(env_id: str, model_type: str = "mdlm") -> Path:
    """Path of the shipped ``model_type`` ("mdlm" or "ar") checkpoint for ``env_id``.

    Raises:
        ValueError: if none ships for that env or the file is missing from the install.
    """
    path = CHECKPOINT_DIR / shipped_name(env_id, model_type)
    if not path.is_file():
        raise ValueError(f"the shipped checkpoint {path} is missing from this install; pass --checkpoint PATH")
    return path
