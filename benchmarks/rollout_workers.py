"""Rollout wall time with ``--workers K`` worker processes against K=1 (this process).

What ``maze-mdlm rollout --agent mctd --workers K`` runs (:func:`maze_mdlm.parallel.evaluate_parallel`,
worker start-up, model loading and gathering included), on the same seeds for every K, in
interleaved repeats (K=1, K=2, K=1, K=2, ...); the speedup is the ratio of median wall times. CPU
seconds (this process and the workers, start-up included) show the work that parallelism adds,
whatever else the machine is running. The per-episode results must be identical for every K, else
the benchmark fails.

    python -m benchmarks.rollout_workers [--agent mctd] [--env ID] [--episodes 1000] [--workers 1 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from agents.registry import make_agent
from benchmarks.common import RESULTS, write_results
from envs import FOURROOMS_ID
from envs.seeds import EVAL_SEED_START
from maze_mdlm.parallel import evaluate_parallel


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(agent: str, env_id: str, episodes: int, seed: int, workers: int, checkpoint: str | None) -> dict[str, Any]:
    """One rollout with ``workers`` processes: wall seconds (agent loading in this process
    excluded, as in the CLI's ``seconds``), CPU seconds of this process and of the workers it
    spawned (their start-up included), and the metrics."""
    factory = functools.partial(make_agent, agent, env_id=env_id, checkpoint=checkpoint, seed=seed)
    host = factory()
    cpu, children, start = time.process_time(), _children_cpu(), time.perf_counter()
    metrics = evaluate_parallel(factory, env_id, episodes, seed, workers=workers, agent=host)
    wall = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu + _children_cpu() - children
    return {"workers": workers, "seconds": wall, "cpu_seconds": cpu_seconds, "metrics": metrics}


def run(agent: str = "mctd", env_id: str = FOURROOMS_ID, episodes: int = 1000, workers: Sequence[int] = (1, 2),
        repeats: int = 2, seed: int = EVAL_SEED_START, checkpoint: str | None = None) -> dict[str, Any]:
    """Median wall time per worker count and the speedup over the first; raises if any run's
    per-episode results differ from the first run's."""
    load_before = os.getloadavg()[0]
    times: dict[int, list[float]] = {k: [] for k in workers}
    cpu: dict[int, list[float]] = {k: [] for k in workers}
    reference, last = None, {}
    for _ in range(repeats):
        for k in workers:
            r = timed(agent, env_id, episodes, seed, k, checkpoint)
            times[k].append(r["seconds"])
            cpu[k].append(r["cpu_seconds"])
            last[k] = r["metrics"]
            if reference is None:
                reference = r["metrics"]["per_episode"]
            elif r["metrics"]["per_episode"] != reference:
                differ = [a["seed"] for a, b in zip(reference, r["metrics"]["per_episode"]) if a != b]
                raise AssertionError(f"--workers {k} changed the episodes of seeds {differ[:10]}")
    base = statistics.median(times[workers[0]])
    rows = []
    for k in workers:
        median = statistics.median(times[k])
        m = last[k]
        rows.append({"workers": k, "seconds": times[k], "median_seconds": median, "speedup": base / median,
                     "cpu_seconds": cpu[k], "median_cpu_seconds": statistics.median(cpu[k]),
                     "episodes_per_s": episodes / median, "success_rate": m["success_rate"],
                     "path_ratio": m["path_ratio"], "mean_plan_ms": m.get("mean_plan_ms"),
                     "decisions": m.get("decisions")})
    return {"agent": agent, "env": env_id, "episodes": episodes, "seed": seed, "repeats": repeats,
            "identical_per_episode": True, "load_average_1min": [load_before, os.getloadavg()[0]],
            "cpu_count": os.cpu_count(), "rows": rows}


def to_markdown(r: dict[str, Any]) -> str:
    lines = [f"`{r['agent']}` on {r['env']}, {r['episodes']} episodes from seed {r['seed']}, {r['repeats']} "
             "interleaved repeats; wall time of the rollout (worker start-up, model loading in the workers and "
             "gathering included). Per-episode results identical for every worker count. Machine load "
             f"(1-minute average, before / after): {r['load_average_1min'][0]:.1f} / "
             f"{r['load_average_1min'][1]:.1f} on {r['cpu_count']} cores: other jobs share the CPU when "
             "it is above 0.", "",
             "| workers | median s | runs (s) | episodes/s | speedup vs first | CPU s (all processes) | success "
             "| path ratio | mean plan ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        plan_ms = "-" if row["mean_plan_ms"] is None else f"{row['mean_plan_ms']:.1f}"
        ratio = "-" if row["path_ratio"] is None else f"{row['path_ratio']:.3f}"
        lines.append(f"| {row['workers']} | {row['median_seconds']:.1f} | "
                     f"{', '.join(f'{s:.1f}' for s in row['seconds'])} | {row['episodes_per_s']:.1f} | "
                     f"{row['speedup']:.2f}x | {row['median_cpu_seconds']:.1f} | {row['success_rate']:.3f} | {ratio} "
                     f"| {plan_ms} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="mctd", choices=("random", "bfs", "ar", "mdlm", "mctd"))
    parser.add_argument("--env", default=FOURROOMS_ID)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts, the first is the base")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats per worker count")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START)
    parser.add_argument("--checkpoint", default=None, help="default: the one shipped for --env")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results files go")
    args = parser.parse_args(argv)
    r = run(args.agent, args.env, args.episodes, args.workers, args.repeats, args.seed, args.checkpoint)
    md = to_markdown(r)
    print(md)
    write_results("rollout_workers", r, md, out_dir=args.out_dir)


if __name__ == "__main__":
    main()
