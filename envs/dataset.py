"""Expert datasets: a compact, versioned file format and a torch ``Dataset`` of plan windows.

File layout (all little-endian, no pickle, no timestamps, so equal inputs give equal bytes)::

    b"MAZEMDLM-DATA\\n"  | uint32 header length | JSON header | zlib blobs, one per array

The JSON header names the format and version, the envs, the seed range, how the file was made,
and each array's dtype, shape, offset and compressed size. One record per episode, keyed by its
reset seed: the start layout (the ``G×G×3`` grid without the agent; ``meta["grid_size"]``), the
start pose, the task vector, what closed boxes hold, and the expert actions; since version 3 also
the object in hand at the start (on-policy starts can hold one). The per-step states are not
stored; they are rebuilt from the start state and the actions with the world's rules
(:func:`replay_states`). A file is written in the oldest version that holds it (version 2 unless
some start holds an object), so files without such starts are byte-identical to 0.17's. Version 1
files (navigation only, 19×19, no tasks or boxes) still load.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from envs.files import atomic_write
from envs.dynamics import DIR_DX, DIR_DY, FORWARD, LEFT, RIGHT
from envs.observation import AGENT, EMPTY_CELL, GRID_SIZE
from envs.world import OBJECT_ACTIONS, WorldState, world_step

MAGIC = b"MAZEMDLM-DATA\n"
FORMAT = "maze-mdlm-dataset"
VERSION = 3  # the newest version (files are written in the oldest one that holds them)
READABLE_VERSIONS = (1, 2, 3)
END_TOKEN = 8  # the end-of-plan target of window positions after the plan has ended
LEGACY_END_TOKEN = 6  # ... for models made before 0.5 (MiniGrid's `done`)
VAL_SEED_MODULUS = 50  # validation episodes: reset seed % 50 == 49 (2%, the same in every env)
ENV_WEIGHTINGS = ("windows", "envs")  # how a mixture is sampled (PlanDataset.weighted)
CARRIED_BOX = -1  # the x and y of a box row that gives the contents of the box in hand


class DatasetFormatError(ValueError):
    """Raised for a file that is not a maze-mdlm dataset, or of an unknown version."""


@dataclass
class Episodes:
    """``N`` expert episodes (arrays have leading dim ``N`` unless noted).

    Attributes:
        seeds: int64 reset seeds.
        env_index: uint8 index into ``meta["envs"]``.
        layouts: uint8 ``[N, G, G, 3]`` start layouts (no agent).
        start_pose: int16 ``[N, 3]`` start ``(x, y, direction)``.
        offsets: int64 ``[N + 1]``; episode i's actions are ``actions[offsets[i]:offsets[i+1]]``.
        actions: uint8 ``[sum of lengths]`` expert actions.
        meta: the JSON header's free-form part (envs, seeds, grid_size, command, ...).
        tasks: uint8 ``[N, 5]`` task vectors (:mod:`envs.tasks`); zeros (reach the goal) if absent.
        boxes: int16 ``[M, 6]`` ``(episode, x, y, type, color, state)``: what each closed box holds
            (``x = y =`` :data:`CARRIED_BOX`: the box in hand at the start).
        carrying: uint8 ``[N, 3]`` the object in hand at the start (the empty cell: none; version 3).
    """

    seeds: np.ndarray
    env_index: np.ndarray
    layouts: np.ndarray
    start_pose: np.ndarray
    offsets: np.ndarray
    actions: np.ndarray
    meta: dict[str, Any]
    tasks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    carrying: np.ndarray | None = None

    ARRAYS = ("seeds", "env_index", "layouts", "start_pose", "offsets", "actions", "tasks", "boxes", "carrying")
    ARRAYS_OF_VERSION = {1: ARRAYS[:6], 2: ARRAYS[:8], 3: ARRAYS}

    def __post_init__(self) -> None:
        if self.tasks is None:
            self.tasks = np.zeros((len(self.seeds), 5), dtype=np.uint8)
        if self.boxes is None:
            self.boxes = np.zeros((0, 6), dtype=np.int16)
        if self.carrying is None:
            self.carrying = np.tile(EMPTY_CELL, (len(self.seeds), 1))

    @property
    def holding(self) -> np.ndarray:
        """bool ``[N]``: the episodes that start with an object in hand."""
        return (self.carrying != EMPTY_CELL).any(axis=1)

    @property
    def format_version(self) -> int:
        """The file version :func:`save_episodes` writes: 3 if some start holds an object, else 2."""
        return 3 if self.holding.any() else 2

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def grid_size(self) -> int:
        """The canvas side ``G`` of the layouts."""
        return int(self.layouts.shape[1]) if self.layouts.ndim == 4 else int(self.meta.get("grid_size", GRID_SIZE))

    @cached_property
    def states(self) -> "StepStates":
        """The state before every expert action (see :func:`replay_states`)."""
        return replay_states(self)

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[N]`` optimal plan lengths."""
        return np.diff(self.offsets)

    @cached_property
    def poses(self) -> np.ndarray:
        """int16 ``[sum of lengths, 3]`` pose before each action (see :func:`replay_poses`)."""
        return replay_poses(self)


def save_episodes(path: str | os.PathLike, episodes: Episodes) -> None:
    """Write ``episodes`` to ``path`` atomically (temp file in the same folder, then rename)."""
    blobs, table, offset = [], {}, 0
    version = episodes.format_version
    for name in Episodes.ARRAYS_OF_VERSION[version]:
        array = np.ascontiguousarray(getattr(episodes, name))
        blob = zlib.compress(array.tobytes(), 6)
        table[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset, "nbytes": len(blob)}
        blobs.append(blob)
        offset += len(blob)
    header = {"format": FORMAT, "version": version, "meta": episodes.meta, "arrays": table}
    header_bytes = json.dumps(header, sort_keys=True).encode()
    chunks = [MAGIC, struct.pack("<I", len(header_bytes)), header_bytes, *blobs]
    atomic_write(path, lambda f: f.writelines(chunks))


def load_episodes(path: str | os.PathLike) -> Episodes:
    """Read a dataset file written by :func:`save_episodes`.

    Raises:
        DatasetFormatError: if the file is not a maze-mdlm dataset or has another version.
        FileNotFoundError: if it does not exist.
    """
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise DatasetFormatError(f"{path} is not a maze-mdlm dataset (made by `maze-mdlm collect-data`)")
    try:
        (size,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(data[start : start + size])
        if not isinstance(header, dict):
            raise DatasetFormatError(f"{path} is a damaged maze-mdlm dataset: header is not a JSON object")
        body = start + size
        if header.get("format") != FORMAT or header.get("version") not in READABLE_VERSIONS:
            raise DatasetFormatError(
                f"{path}: dataset version {header.get('version')} is not supported (expected one of "
                f"{READABLE_VERSIONS})"
            )
        arrays = {}
        for name in Episodes.ARRAYS_OF_VERSION[header["version"]]:
            spec = header["arrays"][name]
            raw = zlib.decompress(data[body + spec["offset"] : body + spec["offset"] + spec["nbytes"]])
            arrays[name] = np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
        return Episodes(meta=header["meta"], **arrays)
    except DatasetFormatError:
        raise
    except (struct.error, json.JSONDecodeError, zlib.error, KeyError, TypeError, ValueError) as err:
        raise DatasetFormatError(f"{path} is a damaged maze-mdlm dataset: {err}") from err


def replay_poses(episodes: Episodes) -> np.ndarray:
    """Rebuild the pose before every expert action, vectorised across episodes.

    Returns:
        int16 ``[sum of lengths, 3]`` poses, aligned with ``episodes.actions``.
    """
    lengths = episodes.lengths
    pose = episodes.start_pose.astype(np.int64)
    out = np.empty((int(lengths.sum()), 3), dtype=np.int16)
    x, y, d = pose[:, 0].copy(), pose[:, 1].copy(), pose[:, 2].copy()
    for t in range(int(lengths.max(initial=0))):
        live = np.nonzero(lengths > t)[0]
        where = episodes.offsets[live] + t
        out[where, 0], out[where, 1], out[where, 2] = x[live], y[live], d[live]
        a = episodes.actions[where]
        d[live] = np.where(a == LEFT, (d[live] - 1) % 4, np.where(a == RIGHT, (d[live] + 1) % 4, d[live]))
        fwd = live[a == FORWARD]  # expert moves never bump into walls
        x[fwd] += DIR_DX[d[fwd]]
        y[fwd] += DIR_DY[d[fwd]]
    return out


@dataclass
class StepStates:
    """The state before each expert action, aligned with ``episodes.actions`` (``S`` steps).

    Attributes:
        poses: int16 ``[S, 3]``.
        carrying: uint8 ``[S, 3]`` the carried object (the empty cell for an empty hand).
        layout_id: int32 ``[S]`` row of :attr:`layouts` that holds the step's layout.
        layouts: uint8 ``[K, G, G, 3]``: the episodes' start layouts (rows ``0..N-1``), then every
            layout an object action made.
    """

    poses: np.ndarray
    carrying: np.ndarray
    layout_id: np.ndarray
    layouts: np.ndarray


def replay_states(episodes: Episodes) -> StepStates:
    """Rebuild every step's state: poses vectorised (the expert's moves never bump), then the
    object actions of each episode with :func:`envs.world.world_step` (boxes open as recorded)."""
    poses = replay_poses(episodes)
    total = len(episodes.actions)
    carrying = np.empty((total, 3), dtype=np.uint8)
    carrying[:] = EMPTY_CELL
    layout_id = np.repeat(np.arange(len(episodes), dtype=np.int32), episodes.lengths)
    extra: list[np.ndarray] = []
    has_object = np.isin(episodes.actions, OBJECT_ACTIONS)
    episode_of = np.repeat(np.arange(len(episodes)), episodes.lengths)
    box_rows: dict[int, list] = {}
    for row in episodes.boxes.tolist():
        where = "carried" if row[1] == CARRIED_BOX else (row[1], row[2])  # envs.world.WorldState.boxes
        box_rows.setdefault(row[0], []).append((where, tuple(row[3:])))
    for ep in np.union1d(episode_of[has_object], np.nonzero(episodes.holding)[0]).tolist():
        start, stop = int(episodes.offsets[ep]), int(episodes.offsets[ep + 1])
        state = WorldState(episodes.layouts[ep], tuple(int(v) for v in poses[start]),
                           tuple(int(v) for v in episodes.carrying[ep]),
                           boxes=tuple(sorted(box_rows.get(ep, []), key=str)))
        current = ep
        for t in range(start, stop):
            state = WorldState(state.layout, tuple(int(v) for v in poses[t]), state.carrying, state.boxes)
            layout_id[t], carrying[t] = current, state.carrying
            action = int(episodes.actions[t])
            if action in OBJECT_ACTIONS:
                before = state.layout
                state, _ = world_step(state, action)
                if state.layout is not before:
                    extra.append(state.layout)
                    current = len(episodes) + len(extra) - 1
    layouts = np.concatenate([episodes.layouts, np.stack(extra)]) if extra else episodes.layouts
    return StepStates(poses=poses, carrying=carrying, layout_id=layout_id, layouts=layouts)


class PlanDataset:
    """Training samples: the state at step t of an expert episode and its next ``horizon`` actions.

    Holds only the episode arrays, one pose per step and 12 bytes per sample; states are
    assembled on demand. :meth:`get_batch` assembles a whole batch with vectorised indexing, which
    is what the trainer uses; ``__getitem__``/``__len__`` make it a map-style torch ``Dataset``.

    Args:
        episodes: loaded :class:`Episodes`.
        horizon: number of action targets per sample; after the plan ends the target is
            ``end_token``.
        episode_ids: optional subset of episode indices (e.g. a train/validation split).
        end_token: END (8), or 6 (``done``) for a legacy model.

    Attributes:
        sample_weights: None (every window equally likely: the trainer walks random
            permutations), or float64 ``[num_samples]`` draw weights (:meth:`weighted`).
        env_names: the env id of each ``env`` index in batches.
    """

    def __init__(self, episodes: Episodes, horizon: int, episode_ids: np.ndarray | None = None,
                 end_token: int = END_TOKEN):
        self.episodes = episodes
        self.horizon = int(horizon)
        self.end_token = int(end_token)
        self.sample_weights = None
        self.env_names = list(episodes.meta.get("envs", []))
        ids = np.arange(len(episodes)) if episode_ids is None else np.asarray(episode_ids)
        lengths = episodes.lengths[ids]
        self.sample_episode = np.repeat(ids, lengths).astype(np.int32)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.sample_flat = (episodes.offsets[self.sample_episode] + within).astype(np.int64)

    @property
    def num_samples(self) -> int:
        return len(self.sample_episode)

    def __len__(self) -> int:
        return self.num_samples

    def get_batch(self, indices) -> dict[str, Any]:
        """Assemble samples ``indices`` (``[B]``) into tensors.

        Returns:
            ``grid`` int64 ``[B, 3, G, G]``, ``direction`` int64 ``[B]``, ``carrying`` int64
            ``[B, 3]``, ``task`` int64 ``[B, 5]``, ``actions`` int64 ``[B, horizon]`` (END after
            the plan ends), ``length`` int64 ``[B]`` (real actions), ``env`` int64 ``[B]``.
        """
        import torch

        idx = np.asarray(indices, dtype=np.int64)
        ep, flat = self.sample_episode[idx], self.sample_flat[idx]
        states = self.episodes.states
        pose = states.poses[flat].astype(np.int64)
        grid = states.layouts[states.layout_id[flat]].copy()
        rows = np.arange(len(idx))
        grid[rows, pose[:, 0], pose[:, 1]] = np.stack(
            [np.full(len(idx), AGENT), np.zeros(len(idx), dtype=np.int64), pose[:, 2]], axis=1
        )
        end = self.episodes.offsets[ep + 1]
        pos = flat[:, None] + np.arange(self.horizon)
        valid = pos < end[:, None]
        acts = np.where(valid, self.episodes.actions[np.minimum(pos, len(self.episodes.actions) - 1)],
                        self.end_token)
        return {
            "grid": torch.from_numpy(grid).permute(0, 3, 1, 2).long(),
            "direction": torch.from_numpy(pose[:, 2]),
            "carrying": torch.from_numpy(states.carrying[flat].astype(np.int64)),
            "task": torch.from_numpy(self.episodes.tasks[ep].astype(np.int64)),
            "actions": torch.from_numpy(acts.astype(np.int64)),
            "length": torch.from_numpy(valid.sum(1).astype(np.int64)),
            "env": torch.from_numpy(self.episodes.env_index[ep].astype(np.int64)),
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[0] for k, v in self.get_batch([i]).items()}

    def split(self, val_fraction: float) -> tuple["PlanDataset", "PlanDataset"]:
        """Split by episode: the last ``val_fraction`` of episodes (by position) is validation."""
        ids = np.unique(self.sample_episode)
        n_val = max(1, int(round(len(ids) * val_fraction))) if len(ids) > 1 else 0
        return self._subset(ids[: len(ids) - n_val]), self._subset(ids[len(ids) - n_val :])

    def split_by_seed(self, modulus: int = VAL_SEED_MODULUS) -> tuple["PlanDataset", "PlanDataset"]:
        """Split by reset seed, per env: an episode whose seed % ``modulus`` == ``modulus - 1`` is
        validation (2% of each env's seeds by default, whatever order the files list them in). An
        env with no such seed gives its largest-seed episode to validation if it has two or more.
        """
        ids = np.unique(self.sample_episode)
        seeds = self.episodes.seeds[ids]
        val = (seeds % modulus) == modulus - 1
        envs = self.episodes.env_index[ids]
        for env in np.unique(envs):
            mine = np.nonzero(envs == env)[0]
            if not val[mine].any() and len(mine) > 1:
                val[mine[np.argmax(seeds[mine])]] = True
        return self._subset(ids[~val]), self._subset(ids[val])

    def weighted(self, weighting: str, boost: Mapping[str, float] | None = None) -> "PlanDataset":
        """Set how a mixture is sampled (returns self): ``windows`` draws every window equally
        often (so an env weighs by its episodes x plan length), ``envs`` draws every env equally
        often (its windows uniformly within it). ``boost`` maps an env-id pattern
        (:func:`fnmatch.fnmatchcase`, e.g. ``"MazeMDLM/*"``) to a factor > 0 that multiplies the
        draw weight of every env it matches (factors of overlapping patterns multiply).

        Raises:
            ValueError: an unknown weighting, a factor <= 0, or a pattern that matches no env.
        """
        if weighting not in ENV_WEIGHTINGS:
            raise ValueError(f"weighting must be one of {ENV_WEIGHTINGS}, got {weighting!r}")
        factors = env_factors(self.env_names, boost or {})
        if weighting == "windows" and not boost:
            self.sample_weights = None
            return self
        import torch

        env = self.episodes.env_index[self.sample_episode]
        counts = np.bincount(env, minlength=len(self.env_names))
        per_window = np.ones(len(env)) if weighting == "windows" else 1.0 / counts[env].astype(np.float64)
        self.sample_weights = torch.from_numpy(per_window * factors[env])
        return self

    def env_shares(self) -> dict[str, float]:
        """The fraction of training draws that go to each env (under :meth:`weighted`)."""
        env = self.episodes.env_index[self.sample_episode]
        weights = np.ones(len(env)) if self.sample_weights is None else self.sample_weights.numpy()
        mass = np.bincount(env, weights=weights, minlength=len(self.env_names))
        return {name: float(m / mass.sum()) for name, m in zip(self.env_names, mass)}

    def env_counts(self) -> dict[str, int]:
        """Windows per env."""
        counts = np.bincount(self.episodes.env_index[self.sample_episode], minlength=len(self.env_names))
        return {name: int(c) for name, c in zip(self.env_names, counts)}

    def _subset(self, ids: np.ndarray) -> "PlanDataset":
        return PlanDataset(self.episodes, self.horizon, ids, self.end_token)



def env_factors(env_names: Sequence[str], boost: Mapping[str, float]) -> np.ndarray:
    """``[E]`` draw-weight factors of ``env_names`` from ``{pattern: factor}`` (see
    :meth:`PlanDataset.weighted`); 1 for an env no pattern matches."""
    from fnmatch import fnmatchcase

    factors = np.ones(len(env_names))
    for pattern, factor in boost.items():
        if not factor > 0:
            raise ValueError(f"{pattern}={factor}: the factor must be > 0")
        hits = [i for i, name in enumerate(env_names) if fnmatchcase(name, pattern)]
        if not hits:
            raise ValueError(f"{pattern} matches none of the data's envs")
        factors[hits] *= factor
    return factors


def concat_episodes(parts: list[Episodes]) -> Episodes:
    """Concatenate datasets (e.g. several ``--data`` files); env indices are remapped."""
    if len(parts) == 1:
        return parts[0]
    sizes = {p.grid_size for p in parts}
    if len(sizes) > 1:
        raise DatasetFormatError(f"datasets with different grid sizes {sorted(sizes)} cannot be mixed")
    env_ids: list[str] = []
    for part in parts:
        env_ids += [e for e in part.meta["envs"] if e not in env_ids]
    remapped = [
        np.asarray([env_ids.index(part.meta["envs"][i]) for i in part.env_index], dtype=np.uint8) for part in parts
    ]
    lengths = np.concatenate([part.lengths for part in parts])
    return Episodes(
        seeds=np.concatenate([p.seeds for p in parts]),
        env_index=np.concatenate(remapped),
        layouts=np.concatenate([p.layouts for p in parts]),
        start_pose=np.concatenate([p.start_pose for p in parts]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        actions=np.concatenate([p.actions for p in parts]),
        tasks=np.concatenate([p.tasks for p in parts]),
        carrying=np.concatenate([p.carrying for p in parts]),
        boxes=np.concatenate([_shift_boxes(p.boxes, n) for p, n in zip(parts, np.cumsum([0] + [len(p) for p in parts]))]),
        meta={"envs": env_ids, "parts": [p.meta for p in parts], "grid_size": sizes.pop()},
    )



def _shift_boxes(boxes: np.ndarray, offset: int) -> np.ndarray:
    out = boxes.astype(np.int64).copy()
    out[:, 0] += offset
    return out.astype(np.int16)
