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
from typing import Any, Callable, Iterator

from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS, evaluate, run_metrics

CHUNKS_PER_WORKER = 16  # per-episode agents: small chunks balance the load (episodes vary in length;
# with 4 per worker, the last chunk left one of 2 workers idle for about 1/8 of the run)
BATCHED_CHUNKS_PER_WORKER = 4  # agents that batch: big chunks keep their lockstep batches full
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


def run_chunk(job: tuple, agent: Any = None) -> dict[str, Any]:
    """Evaluate one seed chunk in this process: ``job = (factory, env_id, seed, offset, count,
    batch_envs, threads, max_steps)``, with ``agent`` or the one ``factory`` builds (once per process).
    Returns its ``per_episode`` records, the agent's ``stats_state`` and the lockstep width."""
    import torch

    factory, env_id, seed, offset, count, batch_envs, threads, max_steps = job
    agent = _worker_agent(factory) if agent is None else agent
    if hasattr(agent, "load_stats_state"):
        agent.load_stats_state([])  # this chunk's statistics only
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        metrics = evaluate(agent, env_id, count, seed + offset, batch_envs=batch_envs, max_steps=max_steps)
    finally:
        torch.set_num_threads(previous)
    return {
        "per_episode": metrics["per_episode"],
        "stats_state": agent.stats_state() if hasattr(agent, "stats_state") else None,
        "batch_envs": metrics["batch_envs"],
        "pid": os.getpid(),
    }


def _warm_up(factory: Callable[[], Any]) -> int:
    """Build this worker's agent (imports, model loading) before it gets chunks; its pid."""
    _worker_agent(factory)
    return os.getpid()


def spread(jobs: list[tuple], workers: int, host: Any = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run :func:`run_chunk` on every job in ``workers`` processes; yields ``(job index, result)``
    as chunks finish.

    With ``host`` (the agent, already loaded here), this process is one of the workers: it starts
    on the chunks at once while ``workers - 1`` spawned ones boot, a spawned process gets chunks
    (up to 2 queued) only once it has built its agent, so a short run is not held up by their
    start-up, and this process takes the next chunk whenever it is free. Without ``host``,
    ``workers`` spawned processes run every chunk."""
    factory = jobs[0][0]
    spawned = max(1, min(workers - 1 if host is not None else workers, len(jobs)))
    with mp.get_context("spawn").Pool(spawned) as pool:
        warm = [pool.apply_async(_warm_up, (factory,)) for _ in range(spawned)]
        pending: dict[int, Any] = {}
        next_job = 0
        while next_job < len(jobs) or pending:
            up = spawned if host is None or all(w.ready() for w in warm) else len(
                {w.get() for w in warm if w.ready()})
            ahead = 2 * up  # 2 chunks queued per spawned process that has built its agent
            while next_job < len(jobs) and len(pending) < ahead:
                pending[next_job] = pool.apply_async(run_chunk, (jobs[next_job],))
                next_job += 1
            for index in [i for i, r in pending.items() if r.ready()]:
                yield index, pending.pop(index).get()
            if host is not None and next_job < len(jobs):
                next_job += 1
                yield next_job - 1, run_chunk(jobs[next_job - 1], host)
            elif pending:
                pending[min(pending)].wait(0.05)


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
    share_main: bool = True,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """:func:`maze_mdlm.evaluation.evaluate` over seed chunks in ``workers`` processes (this one
    and ``workers - 1`` spawned ones, :func:`spread`), or as Ray tasks (``ray_address``: "local",
    "auto", "ray://host:port"; needs the ``ray`` extra).

    Args:
        factory: a picklable callable that builds the agent in each worker, e.g.
            ``functools.partial(agents.registry.make_agent, "mctd", env_id=..., seed=...)``.
        workers: processes (1 and no Ray: the plain in-process :func:`evaluate`).
        chunks: seed chunks (default per worker, or per CPU of the Ray cluster: 4 for agents that
            batch, 16 for the others). Results do not depend on it.
        agent: the agent ``factory`` builds, if the caller has it already (it runs this
            process's chunks, names the agent and merges the workers' statistics; built here
            otherwise). Its statistics are replaced by those of the whole run.
        max_steps: as in :func:`maze_mdlm.evaluation.evaluate`.
        share_main: this process is one of the ``workers`` and runs chunks with ``agent`` while
            the others start (default); False: ``workers`` spawned processes do all the work.

    Returns:
        The :func:`evaluate` metrics dict (``per_episode`` in seed order, agent statistics over all
        chunks), plus ``workers`` (processes, or the Ray cluster's CPUs) and ``ray`` (the address, or None).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    host = agent if agent is not None else factory()
    if ray_address is None and workers == 1:
        metrics = evaluate(host, env_id, episodes, seed, batch_envs=batch_envs, on_episode=on_episode,
                           max_steps=max_steps)
        return {**metrics, "workers": 1, "ray": None}
    batched = hasattr(host, "act_batch") and hasattr(host, "new_episode")
    start = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}  # chunk index -> result

    def gather(stream: Iterator[tuple[int, dict[str, Any]]]) -> None:
        for index, result in stream:
            results[index] = result
            for record in result["per_episode"]:
                if on_episode:
                    on_episode(record)

    if ray_address is not None:
        from maze_mdlm.ray_tools import cluster_cpus, ray_map, ray_session

        with ray_session(ray_address):
            slots = cluster_cpus()
            per_slot = BATCHED_CHUNKS_PER_WORKER if batched else CHUNKS_PER_WORKER
            plan = seed_chunks(episodes, chunks or per_slot * slots)
            jobs = [(factory, env_id, seed, offset, count, batch_envs, 1, max_steps) for offset, count in plan]
            gather(enumerate(ray_map(run_chunk, jobs)))
        width = slots
    else:
        per_worker = BATCHED_CHUNKS_PER_WORKER if batched else CHUNKS_PER_WORKER
        plan = seed_chunks(episodes, chunks or per_worker * workers)
        threads = max(1, (os.cpu_count() or 1) // workers)
        jobs = [(factory, env_id, seed, offset, count, batch_envs, threads, max_steps) for offset, count in plan]
        gather(spread(jobs, workers, host if share_main else None))
        width = workers
    ordered = [results[i] for i in sorted(results)]
    records = sorted((r for result in ordered for r in result["per_episode"]), key=lambda r: r["seed"])
    if hasattr(host, "load_stats_state"):
        host.load_stats_state([result["stats_state"] for result in ordered])
    return run_metrics(host, records, env_id, episodes, seed, max(result["batch_envs"] for result in ordered),
                       time.perf_counter() - start, workers=width, ray=ray_address)
