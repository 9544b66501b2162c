"""Full-grid observations on a fixed canvas (19×19 by default, up to 25×25).

Every MiniGrid world is seen as its full grid (``Grid.encode()``, indexed ``[x, y]``, channels
object / color / state) with the agent drawn on its cell (object ``agent``, color red, state =
direction), exactly as MiniGrid's ``FullyObsWrapper`` does, then padded with walls onto a
``G × G`` canvas (``G`` = :data:`GRID_SIZE` = 19 unless configured, at most :data:`MAX_GRID_SIZE`)
so one model serves every env. Beside the grid, an observation carries what the agent holds
(``carrying``, an encoded cell) and the task parsed from the mission (``task``, see
:mod:`envs.tasks`).

Tensors the model consumes (see :func:`to_model_input`):

* ``grid``: int64 ``[B, 3, G, G]``, channels (object, color, state), indexed ``[c, x, y]``.
* ``direction``: int64 ``[B]`` in ``0..3`` (0 right, 1 down, 2 left, 3 up).
* ``carrying``: int64 ``[B, 3]`` (``(1, 0, 0)``, the empty cell, for an empty hand).
* ``task``: int64 ``[B, 5]`` ``(kind, type, color, type2, color2)``.
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from envs.registry import is_static
from envs.tasks import GOAL_TASK, TASK_DIM, parse_mission
from envs.world import encode_cell, state_from_env

GRID_SIZE = 19  # the default canvas
MAX_GRID_SIZE = 25  # the largest canvas (MultiRoom-N6)
WALL = OBJECT_TO_IDX["wall"]
EMPTY = OBJECT_TO_IDX["empty"]
GOAL = OBJECT_TO_IDX["goal"]
LAVA = OBJECT_TO_IDX["lava"]
AGENT = OBJECT_TO_IDX["agent"]
WALL_CELL = np.array([WALL, COLOR_TO_IDX["grey"], 0], dtype=np.uint8)
EMPTY_CELL = np.array([EMPTY, 0, 0], dtype=np.uint8)


class GridTooLargeError(ValueError):
    """Raised for a world whose grid does not fit on the configured canvas."""


class ObservationError(ValueError):
    """Raised for an observation that is not a full-grid view."""


def check_fits(width: int, height: int, env_id: str = "this env", size: int = GRID_SIZE) -> None:
    """Raise :class:`GridTooLargeError` unless a ``width × height`` grid fits a ``size`` canvas."""
    if width > size or height > size:
        hint = (f" (pass a grid size up to {MAX_GRID_SIZE} for larger worlds)"
                if size < MAX_GRID_SIZE and max(width, height) <= MAX_GRID_SIZE else "")
        raise GridTooLargeError(
            f"{env_id} has a {width}x{height} grid, larger than the {size}x{size} canvas{hint}"
        )


def canvas_size(width: int, height: int) -> int:
    """The canvas a ``width × height`` world gets by default: 19, or its own size up to 25."""
    side = max(GRID_SIZE, width, height)
    if side > MAX_GRID_SIZE:
        raise GridTooLargeError(f"a {width}x{height} grid is larger than the largest canvas, "
                                f"{MAX_GRID_SIZE}x{MAX_GRID_SIZE}")
    return side


def pad_grid(image: np.ndarray, size: int = GRID_SIZE) -> np.ndarray:
    """Pad a full-grid encoding ``[W, H, 3]`` with walls to ``[size, size, 3]`` (uint8).

    The world keeps its coordinates: cell (x, y) stays at (x, y).
    """
    width, height = image.shape[:2]
    check_fits(width, height, size=size)
    if (width, height) == (size, size):
        return np.ascontiguousarray(image, dtype=np.uint8)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = WALL_CELL
    canvas[:width, :height] = image
    return canvas


def encode_env(env: gym.Env, layout: np.ndarray | None = None, size: int = GRID_SIZE) -> dict[str, Any]:
    """Encode a (reset) MiniGrid env as ``{"image": uint8 [G,G,3], "direction": int}``.

    ``layout`` (:func:`encode_layout` of the same grid) skips re-encoding the grid."""
    base = env.unwrapped
    image = encode_layout(env, size) if layout is None else layout.copy()
    x, y = base.agent_pos
    image[x, y] = (AGENT, COLOR_TO_IDX["red"], base.agent_dir)
    return {"image": image, "direction": int(base.agent_dir)}


def encode_layout(env: gym.Env, size: int = GRID_SIZE) -> np.ndarray:
    """The env's grid without the agent, padded to the canvas: uint8 ``[G, G, 3]``."""
    base = env.unwrapped
    check_fits(base.width, base.height, env_name(env), size)
    return pad_grid(base.grid.encode(), size)


def env_name(env: gym.Env) -> str:
    """The env's gymnasium id, or its class name."""
    base = env.unwrapped
    return getattr(base.spec, "id", None) or type(base).__name__


def env_pose(env: gym.Env) -> tuple[int, int, int]:
    """The agent's ``(x, y, direction)`` in a (reset) MiniGrid env."""
    base = env.unwrapped
    return int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir)


def observation_grid(obs: Mapping[str, Any], size: int | None = None) -> tuple[np.ndarray, int]:
    """Return ``(image [G,G,3] uint8, direction)`` from a full-grid observation.

    Accepts MiniGrid's ``FullyObsWrapper`` dict or :class:`FullGridObsWrapper`'s. ``size``: the
    canvas (default: 19, or the image's own side up to 25).

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
    image = pad_grid(image, size if size is not None else canvas_size(*image.shape[:2]))
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


def to_model_input(images: np.ndarray, directions: np.ndarray, carrying: np.ndarray | None = None,
                   tasks: np.ndarray | None = None) -> dict[str, "Any"]:
    """Batch numpy observations into the model's tensors.

    Args:
        images: uint8 ``[B, G, G, 3]``.
        directions: int ``[B]``.
        carrying: int ``[B, 3]`` encoded carried objects (default: empty hands).
        tasks: int ``[B, 5]`` task vectors (default: reach the goal).

    Returns:
        ``{"grid": int64 [B, 3, G, G], "direction": int64 [B], "carrying": int64 [B, 3],
        "task": int64 [B, 5]}``.
    """
    import torch

    grid = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).long()
    direction = torch.as_tensor(np.asarray(directions), dtype=torch.long)
    n = grid.shape[0]
    if carrying is None:
        carrying = np.tile(np.asarray(EMPTY_CELL, dtype=np.int64), (n, 1))
    if tasks is None:
        tasks = np.zeros((n, TASK_DIM), dtype=np.int64)
    return {
        "grid": grid,
        "direction": direction,
        "carrying": torch.as_tensor(np.asarray(carrying, dtype=np.int64).reshape(n, 3)),
        "task": torch.as_tensor(np.asarray(tasks, dtype=np.int64).reshape(n, TASK_DIM)),
    }


def observation_task(obs: Mapping[str, Any]) -> np.ndarray:
    """The task vector ``[5]`` of an observation: its ``task`` entry, else parsed from ``mission``.

    Raises:
        envs.tasks.MissionError: for a mission that is not a supported task.
    """
    if "task" in obs:
        return np.asarray(obs["task"], dtype=np.int64)
    if "mission" in obs:
        return parse_mission(obs["mission"]).vector()
    return GOAL_TASK.vector()


def track_carrying(carrying: tuple[int, int, int], before: np.ndarray, pose: tuple[int, int, int],
                   action: int, after: np.ndarray) -> tuple[int, int, int]:
    """What the agent holds after ``action``, from the images before and after it ``[W, H, 3]``.

    For observations that do not say it (MiniGrid's ``FullyObsWrapper``): a ``pickup`` whose
    front cell emptied took that object; a ``drop`` that filled it emptied the hand.
    """
    x, y, d = pose
    fx, fy = x + (1, 0, -1, 0)[d], y + (0, 1, 0, -1)[d]
    was, now = tuple(int(v) for v in before[fx, fy]), tuple(int(v) for v in after[fx, fy])
    if action == 3 and carrying == tuple(EMPTY_CELL) and was[0] != EMPTY and now[0] == EMPTY:
        return was
    if action == 4 and carrying != tuple(EMPTY_CELL) and was[0] == EMPTY and now[0] != EMPTY:
        return tuple(int(v) for v in EMPTY_CELL)
    return carrying


def observation_carrying(obs: Mapping[str, Any], carrying: tuple[int, int, int], last: tuple | None,
                         image: np.ndarray) -> tuple[int, int, int]:
    """What the agent holds at ``obs``: its ``carrying`` entry, else ``carrying`` updated by
    :func:`track_carrying` from the previous step ``last = (image, pose, action)`` (None at the start)."""
    if "carrying" in obs:
        return tuple(int(v) for v in obs["carrying"])
    if last is None:
        return carrying
    return track_carrying(carrying, last[0], last[1], last[2], image)


class FullGridObsWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observe any MiniGrid env as its full grid on a ``G × G`` canvas.

    The observation is ``{"image": Box(0, 255, (G, G, 3), uint8), "direction": Discrete(4),
    "mission": MissionSpace, "carrying": Box(0, 255, (3,), uint8), "task": Box(0, 255, (5,),
    int64)}``: MiniGrid's ``FullyObsWrapper`` keys plus what the agent holds and the parsed task.

    Args:
        env: a MiniGrid env.
        grid_size: the canvas side ``G`` (default: 19, or the world's own side up to 25).

    Raises:
        GridTooLargeError: if the env's grid is larger than the canvas.
        envs.tasks.MissionError: (at reset) if the mission is not a supported task.
    """

    def __init__(self, env: gym.Env, grid_size: int | None = None):
        gym.utils.RecordConstructorArgs.__init__(self, grid_size=grid_size)
        super().__init__(env)
        base = env.unwrapped
        self.grid_size = canvas_size(base.width, base.height) if grid_size is None else int(grid_size)
        check_fits(base.width, base.height, env_name(env), self.grid_size)
        image_space = spaces.Box(0, 255, (self.grid_size, self.grid_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {
                **env.observation_space.spaces,
                "image": image_space,
                "carrying": spaces.Box(0, 255, (3,), dtype=np.uint8),
                "task": spaces.Box(0, 255, (TASK_DIM,), dtype=np.int64),
            }
        )
        # Only the registry's static worlds may reuse the grid after a move (moving obstacles would
        # make a cached grid stale)
        self._cache_grid = is_static(env_name(env))

    # MiniGrid's left / right / forward never change the grid of a static world: after them the
    # encoded grid of the previous observation is reused (encoding it was half the cost of a step)
    GRID_PRESERVING = (0, 1, 2)

    def reset(self, **kwargs: Any):
        """``(obs, info)``; ``info["boxes"]`` lists ``((x, y), contents)`` of every closed box:
        privileged (not in MiniGrid's observation), read only by the oracle ``BFSAgent``."""
        self._layout, self._task = None, None
        obs, info = super().reset(**kwargs)
        return obs, {**info, "boxes": [b for b in state_from_env(self.env).boxes if b[0] != "carried"]}

    def step(self, action: Any):
        if not self._cache_grid or int(action) not in self.GRID_PRESERVING:
            self._layout = None
        return super().step(action)

    def observation(self, obs: dict) -> dict:
        if getattr(self, "_layout", None) is None:
            self._layout = encode_layout(self.env, self.grid_size)
        if getattr(self, "_task", None) is None:
            self._task = parse_mission(self.env.unwrapped.mission).vector()
        encoded = encode_env(self.env, self._layout)
        return {
            **obs,
            "image": encoded["image"],
            "direction": encoded["direction"],
            "carrying": np.asarray(encode_cell(self.env.unwrapped.carrying), dtype=np.uint8),
            "task": self._task.copy(),
        }
