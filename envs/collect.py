"""Collect BFS-expert episodes, in parallel worker processes, into an :class:`Episodes` record.

Episode ``i`` of env ``k`` uses reset seed ``seed + i``. Work is cut into fixed chunks of
consecutive seeds; the chunks are solved by any number of workers and put back in seed order, so
the result (and the file) is the same for every worker count.
"""

from __future__ import annotations

import multiprocessing as mp
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Sequence

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers our envs in worker processes)
from envs.dataset import VERSION, Episodes
from envs.expert import solve
from envs.observation import encode_env, env_pose, layout_of

CHUNK = 250


def make_env(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` with maze-mdlm's envs registered; raises ``gym.error.Error`` if unknown."""
    return gym.make(env_id, **kwargs)


def _solve_chunk(job: tuple[str, int, int]) -> tuple[np.ndarray, ...]:
    """Solve the episodes with seeds ``[start, stop)`` of one env."""
    env_id, start, stop = job
    env = make_env(env_id)
    n = stop - start
    layouts = np.empty((n, 19, 19, 3), dtype=np.uint8)
    poses = np.empty((n, 3), dtype=np.int16)
    solvable = np.zeros(n, dtype=bool)
    plans = []
    for i, seed in enumerate(range(start, stop)):
        env.reset(seed=seed)
        pose = env_pose(env)
        layouts[i], poses[i] = layout_of(encode_env(env)["image"]), pose
        plan = solve(layouts[i], pose)
        solvable[i] = plan.solvable
        plans.append(np.asarray(plan.actions, dtype=np.uint8))
    env.close()
    return layouts, poses, solvable, plans


def collect(
    env_ids: Sequence[str],
    episodes: int,
    seed: int,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    command: str = "",
    map_chunks: Callable[[Callable[[Any], Any], list], Iterable[Any]] | None = None,
) -> Episodes:
    """Run the BFS expert on ``episodes`` seeds of each env. Unsolvable seeds are skipped.

    Args:
        env_ids: gymnasium ids (each must fit on the 19×19 canvas).
        episodes: episodes per env; env k's episode i uses reset seed ``seed + i``.
        seed: first reset seed.
        workers: worker processes (1 = in-process).
        on_progress: called with the number of episodes just finished.
        command: the command line, recorded in the file's metadata.
        map_chunks: ``map_chunks(func, jobs)`` yields ``func(job)`` for each job in order, e.g.
            :func:`maze_mdlm.ray_tools.ray_map` (Ray tasks); replaces the worker pool.
    """
    jobs = [
        (env_id, start, min(start + CHUNK, seed + episodes))
        for env_id in env_ids
        for start in range(seed, seed + episodes, CHUNK)
    ]
    results = []
    local_pool = workers > 1 and map_chunks is None
    with mp.get_context("spawn").Pool(workers) if local_pool else nullcontext() as pool:
        mapper = map_chunks or (pool.imap if pool else map)
        for result in mapper(_solve_chunk, jobs):
            results.append(result)
            if on_progress:
                on_progress(len(result[1]))

    seeds, env_index, layouts, poses, plans = [], [], [], [], []
    unsolvable = 0
    for (env_id, start, stop), (lay, pose, ok, chunk_plans) in zip(jobs, results):
        keep = np.nonzero(ok)[0]
        unsolvable += int((~ok).sum())
        seeds.append(np.arange(start, stop, dtype=np.int64)[keep])
        env_index.append(np.full(len(keep), list(env_ids).index(env_id), dtype=np.uint8))
        layouts.append(lay[keep])
        poses.append(pose[keep])
        plans.extend(chunk_plans[i] for i in keep)
    lengths = np.array([len(p) for p in plans], dtype=np.int64)
    meta = {
        "envs": list(env_ids),
        "episodes_per_env": int(episodes),
        "seed": int(seed),
        "seed_range": [int(seed), int(seed + episodes)],
        "unsolvable_skipped": unsolvable,
        "expert": "bfs",
        "dataset_version": VERSION,
        "command": command,
    }
    return Episodes(
        seeds=np.concatenate(seeds),
        env_index=np.concatenate(env_index),
        layouts=np.concatenate(layouts),
        start_pose=np.concatenate(poses),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        actions=np.concatenate(plans) if plans else np.zeros(0, dtype=np.uint8),
        meta=meta,
    )
