"""Full-grid observations on a fixed 19×19 canvas.

Every MiniGrid world is seen as its full grid (``Grid.encode()``, indexed ``[x, y]``, channels
object / color / state) with the agent drawn on its cell (object ``agent``, color red, state =
direction), exactly as MiniGrid's ``FullyObsWrapper`` does, then padded with walls onto a
``GRID_SIZE × GRID_SIZE`` canvas so one model serves every env.

Tensors the model consumes (see :func:`to_model_input`):

* ``grid``: int64 ``[B, 3, 19, 19]``, channels (object, color, state), indexed ``[c, x, y]``.
* ``direction``: int64 ``[B]`` in ``0..3`` (0 right, 1 down, 2 left, 3 up).
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

GRID_SIZE = 19
WALL = OBJECT_TO_IDX["wall"]
EMPTY = OBJECT_TO_IDX["empty"]
GOAL = OBJECT_TO_IDX["goal"]
LAVA = OBJECT_TO_IDX["lava"]
AGENT = OBJECT_TO_IDX["agent"]
WALL_CELL = np.array([WALL, COLOR_TO_IDX["grey"], 0], dtype=np.uint8)
EMPTY_CELL = np.array([EMPTY, 0, 0], dtype=np.uint8)


class GridTooLargeError(ValueError):
    """Raised for a world whose grid does not fit on the 19×19 canvas."""


class ObservationError(ValueError):
    """Raised for an observation that is not a full-grid view."""


def check_fits(width: int, height: int, env_id: str = "this env") -> None:
    """Raise :class:`GridTooLargeError` unless a ``width × height`` grid fits the canvas."""
    if width > GRID_SIZE or height > GRID_SIZE:
        raise GridTooLargeError(
            f"{env_id} has a {width}x{height} grid; maze-mdlm supports grids up to "
            f"{GRID_SIZE}x{GRID_SIZE}"
        )


def pad_grid(image: np.ndarray) -> np.ndarray:
    """Pad a full-grid encoding ``[W, H, 3]`` with walls to ``[19, 19, 3]`` (uint8).

    The world keeps its coordinates: cell (x, y) stays at (x, y).
    """
    width, height = image.shape[:2]
    check_fits(width, height)
    if (width, height) == (GRID_SIZE, GRID_SIZE):
        return np.ascontiguousarray(image, dtype=np.uint8)
    canvas = np.empty((GRID_SIZE, GRID_SIZE, 3), dtype=np.uint8)
    canvas[:] = WALL_CELL
    canvas[:width, :height] = image
    return canvas


def encode_env(env: gym.Env, layout: np.ndarray | None = None) -> dict[str, Any]:
    """Encode a (reset) MiniGrid env as ``{"image": uint8 [19,19,3], "direction": int}``.

    ``layout`` (:func:`encode_layout` of the same grid) skips re-encoding the grid."""
    base = env.unwrapped
    image = encode_layout(env) if layout is None else layout.copy()
    x, y = base.agent_pos
    image[x, y] = (AGENT, COLOR_TO_IDX["red"], base.agent_dir)
    return {"image": image, "direction": int(base.agent_dir)}


def encode_layout(env: gym.Env) -> np.ndarray:
    """The env's grid without the agent, padded to the canvas: uint8 ``[19, 19, 3]``."""
    base = env.unwrapped
    check_fits(base.width, base.height, getattr(base.spec, "id", None) or type(base).__name__)
    return pad_grid(base.grid.encode())


def env_pose(env: gym.Env) -> tuple[int, int, int]:
    """The agent's ``(x, y, direction)`` in a (reset) MiniGrid env."""
    base = env.unwrapped
    return int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir)


def observation_grid(obs: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """Return ``(image [19,19,3] uint8, direction)`` from a full-grid observation.

    Accepts MiniGrid's ``FullyObsWrapper`` dict or :class:`FullGridObsWrapper`'s.

    Raises:
        ObservationError: for MiniGrid's default egocentric partial view (no agent cell).
    """
    if not isinstance(obs, Mapping) or "image" not in obs:
        raise ObservationError("expected a MiniGrid observation dict with an 'image' key")
    image = np.asarray(obs["image"])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ObservationError(f"expected an image of shape [W, H, 3], got {image.shape}")
    if int((image[:, :, 0] == AGENT).sum()) != 1:
        raise ObservationError(
            "this looks like MiniGrid's partial agent view (no agent cell in the image); "
            "wrap the env with minigrid.wrappers.FullyObsWrapper or envs.FullGridObsWrapper"
        )
    image = pad_grid(image)
    direction = int(obs["direction"]) if "direction" in obs else int(agent_pose(image)[2])
    return image, direction


def agent_pose(image: np.ndarray) -> tuple[int, int, int]:
    """``(x, y, direction)`` of the agent drawn in a full-grid image ``[W, H, 3]``."""
    xs, ys = np.nonzero(image[:, :, 0] == AGENT)
    if len(xs) != 1:
        raise ObservationError(f"expected exactly one agent cell, found {len(xs)}")
    x, y = int(xs[0]), int(ys[0])
    return x, y, int(image[x, y, 2])


def layout_of(image: np.ndarray) -> np.ndarray:
    """The static layout: the image with the agent's cell replaced by an empty cell."""
    layout = image.copy()
    layout[layout[:, :, 0] == AGENT] = EMPTY_CELL
    return layout


def place_agent(layout: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Full-grid images of the agent at each of ``poses`` ``[B, 3]`` in ``layout`` ``[W, H, 3]``
    (as :func:`encode_env` draws it) -> uint8 ``[B, W, H, 3]``. The inverse of :func:`layout_of`."""
    poses = np.asarray(poses, dtype=np.int64).reshape(-1, 3)
    images = np.repeat(np.asarray(layout, dtype=np.uint8)[None], len(poses), axis=0)
    cells = np.stack([np.full(len(poses), AGENT), np.full(len(poses), COLOR_TO_IDX["red"]), poses[:, 2]], axis=1)
    images[np.arange(len(poses)), poses[:, 0], poses[:, 1]] = cells
    return images


def to_model_input(images: np.ndarray, directions: np.ndarray) -> dict[str, "Any"]:
    """Batch numpy observations into the model's tensors.

    Args:
        images: uint8 ``[B, 19, 19, 3]``.
        directions: int ``[B]``.

    Returns:
        ``{"grid": int64 [B, 3, 19, 19], "direction": int64 [B]}``.
    """
    import torch

    grid = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).long()
    direction = torch.as_tensor(np.asarray(directions), dtype=torch.long)
    return {"grid": grid, "direction": direction}


class FullGridObsWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observe any MiniGrid env as its full grid on the 19×19 canvas.

    The observation is ``{"image": Box(0, 255, (19, 19, 3), uint8), "direction": Discrete(4),
    "mission": MissionSpace}``, the same keys as MiniGrid's ``FullyObsWrapper``.

    Raises:
        GridTooLargeError: if the env's grid is larger than 19×19.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        base = env.unwrapped
        check_fits(base.width, base.height, getattr(base.spec, "id", None) or type(base).__name__)
        image_space = spaces.Box(0, 255, (GRID_SIZE, GRID_SIZE, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {**env.observation_space.spaces, "image": image_space}
        )

    # MiniGrid's left / right / forward never change the grid: after them the encoded grid of the
    # previous observation is reused (encoding it was half the cost of a step)
    GRID_PRESERVING = (0, 1, 2)

    def reset(self, **kwargs: Any):
        self._layout = None
        return super().reset(**kwargs)

    def step(self, action: Any):
        if int(action) not in self.GRID_PRESERVING:
            self._layout = None
        return super().step(action)

    def observation(self, obs: dict) -> dict:
        if getattr(self, "_layout", None) is None:
            self._layout = encode_layout(self.env)
        encoded = encode_env(self.env, self._layout)
        return {**obs, "image": encoded["image"], "direction": encoded["direction"]}
