"""Minari datasets in and out (the optional ``minari`` extra: ``pip install 'maze-mdlm[minari]'``).

Our datasets store each episode as layout + start pose + actions (:mod:`envs.dataset`). A Minari
dataset stores every step. The format both sides use is that of Minari's optimal-fullobs BabyAI
datasets, i.e. what ``minari.DataCollector`` records on a ``minigrid.wrappers.FullyObsWrapper``
env, with the mission space replaced by ``gymnasium.spaces.Text``::

    observations: {"image": uint8 [T+1, W, H, 3] full grid ([x, y], object / color / state),
                   "direction": int [T+1], "mission": T+1 strings}
    actions: int [T]; rewards: float [T]; terminations, truncations: bool [T]

:func:`export_minari` writes one from our file (states replayed, MiniGrid's rewards);
:func:`load_minari_episodes` turns one into our :class:`~envs.dataset.Episodes`. Only what our
format can hold is accepted: a full-grid view with one agent, a grid that does not change during an
episode, and moves that follow the actions; anything else raises :class:`MinariFormatError` with
the reason. Datasets live under ``MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``); nothing
is downloaded.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np

from envs.dataset import Episodes
from envs.dynamics import DIR_DX, DIR_DY, FORWARD, LEFT, RIGHT
from envs.observation import AGENT, GRID_SIZE, GridTooLargeError, layout_of, pad_grid, place_agent

NUM_ACTIONS = 7  # MiniGrid's actions; our tokens 0..6
MISSION_CHARSET = string.ascii_letters + string.digits + string.punctuation + " "
MISSION_MAX_LENGTH = 512


class MinariFormatError(ValueError):
    """A Minari dataset that cannot be turned into maze-mdlm episodes (the message says why)."""


def require_minari() -> Any:
    """Import ``minari``, or raise ``ImportError`` with the install hint."""
    try:
        import minari
    except ImportError:
        raise ImportError("Minari support needs the minari package: pip install 'maze-mdlm[minari]'") from None
    return minari


def observation_space(width: int, height: int) -> gym.spaces.Dict:
    """The full-grid observation space of a ``width × height`` world (mission as ``Text``)."""
    return gym.spaces.Dict({
        "direction": gym.spaces.Discrete(4),
        "image": gym.spaces.Box(0, 255, (width, height, 3), dtype=np.uint8),
        "mission": gym.spaces.Text(MISSION_MAX_LENGTH, charset=MISSION_CHARSET),
    })


def next_pose(pose: np.ndarray, action: int) -> np.ndarray:
    """The pose ``(x, y, dir)`` after ``action`` (expert moves never bump into walls)."""
    x, y, d = (int(v) for v in pose)
    if action == LEFT:
        d = (d - 1) % 4
    elif action == RIGHT:
        d = (d + 1) % 4
    elif action == FORWARD:
        x, y = x + int(DIR_DX[d]), y + int(DIR_DY[d])
    return np.array([x, y, d], dtype=np.int64)


def export_minari(episodes: Episodes, dataset_id: str, description: str | None = None) -> Any:
    """Write ``episodes`` as the local Minari dataset ``dataset_id``; returns the ``MinariDataset``.

    Each episode is replayed from its layout: T+1 full-grid observations cropped to the env's own
    ``W × H`` (as ``FullyObsWrapper`` shows it), the mission of its reset seed, MiniGrid's reward
    ``1 - 0.9 * T / max_steps`` on the last step (0 before), ``terminations`` True on the last step.
    The dataset records the env as ``FullyObsWrapper(gym.make(env_id))`` when all episodes share
    one env, and the episode seeds.

    Raises:
        ImportError: without the minari package.
        ValueError: for an id that exists already or is malformed (from Minari).
    """
    minari = require_minari()
    from minari.data_collector import EpisodeBuffer
    from minigrid.wrappers import FullyObsWrapper

    env_ids = list(episodes.meta["envs"])
    bases, sizes = [], set()
    for env_id in env_ids:
        base = gym.make(env_id).unwrapped
        bases.append(base)
        sizes.add((base.width, base.height))
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    if len(sizes) > 1:  # several envs of different sizes: all on the common (padded) canvas
        width = height = GRID_SIZE
    buffers = []
    for i in range(len(episodes)):
        base = bases[int(episodes.env_index[i])]
        lo, hi = int(episodes.offsets[i]), int(episodes.offsets[i + 1])
        actions = episodes.actions[lo:hi].astype(np.int64)
        poses = np.concatenate([episodes.poses[lo:hi], next_pose(episodes.poses[hi - 1], actions[-1])[None]]
                               ) if hi > lo else episodes.start_pose[i : i + 1]
        images = place_agent(episodes.layouts[i][:width, :height], poses)  # [T+1, W, H, 3]
        base.reset(seed=int(episodes.seeds[i]))
        steps = len(actions)
        rewards = np.zeros(steps, dtype=np.float64)
        if steps:
            rewards[-1] = 1.0 - 0.9 * (steps / base.max_steps)
        buffers.append(EpisodeBuffer(
            id=i, seed=int(episodes.seeds[i]),
            observations={"direction": poses[:, 2].astype(np.int64), "image": images,
                          "mission": [str(base.mission)] * (steps + 1)},
            actions=actions, rewards=rewards,
            terminations=np.arange(steps) == steps - 1, truncations=np.zeros(steps, dtype=bool),
        ))
    env = FullyObsWrapper(gym.make(env_ids[0])) if len(env_ids) == 1 else None
    return minari.create_dataset_from_buffers(
        dataset_id, buffers, env=env,
        observation_space=observation_space(width, height), action_space=gym.spaces.Discrete(NUM_ACTIONS),
        algorithm_name="maze-mdlm BFS expert (envs.expert.solve)", author="maze-mdlm",
        description=description or f"maze-mdlm expert episodes of {', '.join(env_ids)}",
        jpeg_encoding=False,
    )


def _episode_poses(image: np.ndarray, where: str) -> np.ndarray:
    """image uint8 [T+1, W, H, 3] -> agent poses int64 [T+1, 3]; exactly one agent per frame."""
    agent = image[..., 0] == AGENT  # [T+1, W, H]
    counts = agent.sum(axis=(1, 2))
    if (counts != 1).any():
        t = int(np.nonzero(counts != 1)[0][0])
        raise MinariFormatError(
            f"{where}, step {t}: {int(counts[t])} agent cells in the image; maze-mdlm needs a full-grid view "
            "with one agent (record with minigrid.wrappers.FullyObsWrapper, not the 7x7 partial view)"
        )
    _, xs, ys = np.nonzero(agent)
    frames = np.arange(len(image))
    return np.stack([xs, ys, image[frames, xs, ys, 2]], axis=1).astype(np.int64)


def load_minari_episodes(dataset_id: str) -> Episodes:
    """Read the local Minari dataset ``dataset_id`` as maze-mdlm :class:`Episodes`.

    Raises:
        ImportError: without the minari package.
        MinariFormatError: if the dataset is missing, or its observations cannot be our input
            (not a full-grid image dict, a grid over 19×19, a grid that changes, moves that do not
            follow the actions, actions outside MiniGrid's 0..6).
    """
    minari = require_minari()
    try:
        dataset = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as err:  # never downloads
        raise MinariFormatError(f"minari:{dataset_id}: {err}") from None
    where = f"minari:{dataset_id}"
    space = dataset.observation_space
    image_space = space.spaces.get("image") if isinstance(space, gym.spaces.Dict) else None
    if not isinstance(image_space, gym.spaces.Box) or len(image_space.shape) != 3 or image_space.shape[2] != 3:
        raise MinariFormatError(
            f"{where}: observations are {space}, not a dict with a full-grid 'image' [W, H, 3] "
            "(record with minigrid.wrappers.FullyObsWrapper)"
        )
    width, height = image_space.shape[:2]
    if width > GRID_SIZE or height > GRID_SIZE:
        raise GridTooLargeError(f"{where} has {width}x{height} grids; maze-mdlm supports grids up to "
                                f"{GRID_SIZE}x{GRID_SIZE}")
    if not isinstance(dataset.action_space, gym.spaces.Discrete) or dataset.action_space.n > NUM_ACTIONS:
        raise MinariFormatError(f"{where}: actions are {dataset.action_space}, not MiniGrid's Discrete(7)")
    env_spec = dataset.spec.env_spec
    metadata = {int(m["id"]): m for m in dataset.storage.get_episode_metadata(dataset.episode_indices)}

    ids, seeds, layouts, starts, actions, recorded = [], [], [], [], [], []
    for episode in dataset.iterate_episodes():
        here = f"{where} episode {episode.id}"
        steps = len(episode.actions)
        if steps == 0:
            continue
        image = np.asarray(episode.observations["image"], dtype=np.uint8)  # [T+1, W, H, 3]
        poses = _episode_poses(image, here)
        layout = layout_of(image[0])
        differs = (image != layout[None]).any(axis=3)  # [T+1, W, H]
        differs[np.arange(len(image)), poses[:, 0], poses[:, 1]] = False  # the agent hides its cell (a goal)
        changed = np.nonzero(differs.any(axis=(1, 2)))[0]
        if len(changed):
            raise MinariFormatError(f"{here}: the grid changes at step {int(changed[0])} (a door, key or box "
                                    "moved); maze-mdlm trains on static worlds")
        acts = np.asarray(episode.actions, dtype=np.int64).reshape(-1)
        if acts.min() < 0 or acts.max() >= NUM_ACTIONS:
            raise MinariFormatError(f"{here}: actions outside MiniGrid's 0..6")
        seed = metadata.get(int(episode.id), {}).get("seed")
        ids.append(int(episode.id))
        seeds.append(int(seed) if seed is not None else int(episode.id))
        layouts.append(pad_grid(layout))
        starts.append(poses[0])
        actions.append(acts)
        recorded.append(poses[:steps])
    if not actions:
        raise MinariFormatError(f"{where} holds no steps")
    lengths = np.array([len(a) for a in actions])
    episodes = Episodes(
        seeds=np.asarray(seeds, dtype=np.int64),
        env_index=np.zeros(len(actions), dtype=np.uint8),
        layouts=np.stack(layouts),
        start_pose=np.stack(starts).astype(np.int16),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        actions=np.concatenate(actions).astype(np.uint8),
        meta={"envs": [env_spec.id if env_spec is not None else dataset_id],
              "minari": {"dataset_id": dataset_id, "minari_version": str(dataset.minari_version),
                         "has_env": env_spec is not None}},
    )
    mismatch = np.nonzero((episodes.poses != np.concatenate(recorded)).any(axis=1))[0]
    if len(mismatch):
        flat = int(mismatch[0])
        i = int(np.searchsorted(episodes.offsets, flat, side="right") - 1)
        raise MinariFormatError(
            f"{where} episode {ids[i]}, step {flat - int(episodes.offsets[i])}: the agent's pose does not follow "
            "the actions (a move into a wall or an object); maze-mdlm replays poses from the actions"
        )
    return episodes
