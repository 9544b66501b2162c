"""Rollouts fanned out over worker processes or Ray tasks: seed chunks, gathered in seed order.

Episode i still uses reset seed ``seed + i``, and :func:`maze_mdlm.evaluation.evaluate` reseeds
agents that draw random numbers per episode (``seed_episode``), so a chunk of seeds run anywhere
gives the same episodes as the same seeds in one process: ``per_episode`` is identical for any
number of workers, with or without Ray, for every agent whose episodes are reproducible in one
process (bfs, random, mctd, greedy mdlm / ar: the batched agents' plans do not depend on the batch
up to float rounding, README "Batched evaluation").
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import time
from typing import Any, Callable

from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS, evaluate, summarize

CHUNKS_PER_WORKER = 4  # per-episode agents: smaller chunks balance the load (episodes vary in length)
_AGENT_CACHE: dict[bytes, Any] = {}  # one agent per worker process, built on its first chunk


def seed_chunks(episodes: int, chunks: int) -> list[tuple[int, int]]:
    """``(offset, count)`` of ``chunks`` consecutive, near-equal runs of episodes (empty ones
    dropped): ``seed_chunks(10, 4) == [(0, 3), (3, 3), (6, 2), (8, 2)]``."""
    chunks = max(1, min(chunks, episodes))
    base, extra = divmod(episodes, chunks)
    out, offset = [], 0
    for i in range(chunks):
        count = base + (1 if i < extra else 0)
        if count:
            out.append((offset, count))
            offset += count
    return out


def _worker_agent(factory: Callable[[], Any]) -> Any:
    """The agent ``factory`` builds, built once per process and reused by its later chunks."""
    key = pickle.dumps(factory)
    if key not in _AGENT_CACHE:
        _AGENT_CACHE.clear()
        _AGENT_CACHE[key] = factory()
    return _AGENT_CACHE[key]


def run_chunk(job: tuple) -> dict[str, Any]:
    """Evaluate one seed chunk in this process: ``job = (factory, env_id, seed, offset, count,
    batch_envs, threads)``. Returns its ``per_episode`` records, the agent's ``stats_state`` and
    the lockstep width."""
    factory, env_id, seed, offset, count, batch_envs, threads = job
    if threads:
        import torch

        torch.set_num_threads(threads)
    agent = _worker_agent(factory)
    if hasattr(agent, "load_stats_state"):
        agent.load_stats_state([])  # this chunk's statistics only
    metrics = evaluate(agent, env_id, count, seed + offset, batch_envs=batch_envs)
    return {
        "per_episode": metrics["per_episode"],
        "stats_state": agent.stats_state() if hasattr(agent, "stats_state") else None,
        "batch_envs": metrics["batch_envs"],
    }


def evaluate_parallel(
    factory: Callable[[], Any],
    env_id: str,
    episodes: int,
    seed: int,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    batch_envs: int = DEFAULT_BATCH_ENVS,
    chunks: int | None = None,
    on_episode: Callable[[dict], None] | None = None,
    agent: Any = None,
) -> dict[str, Any]:
    """:func:`maze_mdlm.evaluation.evaluate` over seed chunks in ``workers`` spawned processes, or
    as Ray tasks (``ray_address``: "local", "auto", "ray://host:port"; needs the ``ray`` extra).

    Args:
        factory: a picklable callable that builds the agent in each worker, e.g.
            ``functools.partial(agents.registry.make_agent, "mctd", env_id=..., seed=...)``.
        workers: processes (1 and no Ray: the plain in-process :func:`evaluate`).
        chunks: seed chunks (default: ``workers`` for agents that batch, else 4 per worker; with
            Ray, per CPU of the cluster). Results do not depend on it.
        agent: the agent ``factory`` builds, if the caller has it already (used for its name and
            to merge the workers' statistics; built here otherwise).

    Returns:
        The :func:`evaluate` metrics dict (``per_episode`` in seed order, agent statistics over all
        chunks), plus ``workers`` (processes, or the Ray cluster's CPUs) and ``ray`` (the address, or None).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    host = agent if agent is not None else factory()
    if ray_address is None and workers == 1:
        metrics = evaluate(host, env_id, episodes, seed, batch_envs=batch_envs, on_episode=on_episode)
        return {**metrics, "workers": 1, "ray": None}
    batched = hasattr(host, "act_batch") and hasattr(host, "new_episode")
    start = time.perf_counter()
    results = []

    def gather(stream) -> None:
        for result in stream:
            results.append(result)
            for record in result["per_episode"]:
                if on_episode:
                    on_episode(record)

    if ray_address is not None:
        from maze_mdlm.ray_tools import cluster_cpus, ray_map, ray_session

        with ray_session(ray_address):
            slots = cluster_cpus()
            plan = seed_chunks(episodes, chunks or (slots if batched else CHUNKS_PER_WORKER * slots))
            jobs = [(factory, env_id, seed, offset, count, batch_envs, 1) for offset, count in plan]
            gather(ray_map(run_chunk, jobs))
        width = slots
    else:
        plan = seed_chunks(episodes, chunks or (workers if batched else CHUNKS_PER_WORKER * workers))
        threads = max(1, (os.cpu_count() or 1) // workers)
        jobs = [(factory, env_id, seed, offset, count, batch_envs, threads) for offset, count in plan]
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            gather(pool.imap(run_chunk, jobs))
        width = workers
    records = sorted((r for result in results for r in result["per_episode"]), key=lambda r: r["seed"])
    metrics = summarize(records)
    metrics.update(
        agent=getattr(host, "name", type(host).__name__),
        env=env_id,
        episodes=episodes,
        seed=seed,
        batch_envs=max(result["batch_envs"] for result in results),
        seconds=time.perf_counter() - start,
        workers=width,
        ray=ray_address,
    )
    if hasattr(host, "load_stats_state"):
        host.load_stats_state([result["stats_state"] for result in results])
    if hasattr(host, "stats"):
        metrics.update(host.stats())
    metrics["per_episode"] = records
    return metrics
