"""Rollout speed: episodes/s of ``evaluate`` with one env against ``--batch-envs`` envs in lockstep.

The shipped MDLM checkpoint (greedy), the same seeds, in the same run; the per-episode results
must be equal (greedy plans do not depend on the batch), else the benchmark fails.

    python -m benchmarks.rollout_speed [--episodes 512] [--batch-envs 128] [--env ID] [--threads N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.mdlm_agent import MDLMAgent
from benchmarks.common import RESULTS, write_results
from envs import FOURROOMS_ID
from envs.seeds import EVAL_SEED_START
from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS, evaluate


THREADS_DEFAULT = "the agent's default (1 thread; before 0.24, all cores from 16 rows up)"


def timed_run(env_id: str, episodes: int, seed: int, batch_envs: int, threads: int | None,
              checkpoint: str | None) -> dict[str, Any]:
    """One ``evaluate`` of a fresh greedy MDLMAgent; its metrics plus episodes/s and steps/s.
    ``threads`` None keeps the agent's defaults (1 thread, 0.24; before, all cores from 16 rows up)."""
    fixed = {} if threads is None else {"num_threads": threads, "batch_threads": threads}
    agent = MDLMAgent.from_checkpoint(checkpoint, env_id=env_id, **fixed)
    m = evaluate(agent, env_id, episodes, seed, batch_envs=batch_envs)
    steps = sum(r["steps"] for r in m["per_episode"])
    m.update(episodes_per_s=episodes / m["seconds"], steps_per_s=steps / m["seconds"])
    return m


def run(episodes: int = 512, batch_envs: int = DEFAULT_BATCH_ENVS, env_id: str = FOURROOMS_ID,
        seed: int = EVAL_SEED_START, threads: int | None = None, checkpoint: str | None = None) -> dict[str, Any]:
    """Episodes/s at batch_envs=1 and at ``batch_envs``; raises if their episodes differ."""
    one = timed_run(env_id, episodes, seed, 1, threads, checkpoint)
    many = timed_run(env_id, episodes, seed, batch_envs, threads, checkpoint)
    if one["per_episode"] != many["per_episode"]:
        differ = [a["seed"] for a, b in zip(one["per_episode"], many["per_episode"]) if a != b]
        raise AssertionError(f"batch_envs={batch_envs} changed the episodes of seeds {differ[:10]}")
    return {
        "env": env_id, "episodes": episodes, "seed": seed, "batch_envs": many["batch_envs"], "threads": threads,
        "success_rate": many["success_rate"], "path_ratio": many["path_ratio"],
        "episodes_per_s_1": one["episodes_per_s"], "episodes_per_s_batched": many["episodes_per_s"],
        "steps_per_s_1": one["steps_per_s"], "steps_per_s_batched": many["steps_per_s"],
        "seconds_1": one["seconds"], "seconds_batched": many["seconds"],
        "speedup": many["episodes_per_s"] / one["episodes_per_s"],
    }


def to_markdown(r: dict[str, Any]) -> str:
    return (
        "| batch_envs | episodes/s | env steps/s | seconds |\n|---|---|---|---|\n"
        f"| 1 | {r['episodes_per_s_1']:.2f} | {r['steps_per_s_1']:.0f} | {r['seconds_1']:.1f} |\n"
        f"| {r['batch_envs']} | {r['episodes_per_s_batched']:.2f} | {r['steps_per_s_batched']:.0f} | "
        f"{r['seconds_batched']:.1f} |\n\n"
        f"Speedup {r['speedup']:.2f}x; {r['episodes']} episodes of {r['env']} from seed {r['seed']}, "
        f"greedy MDLM (shipped checkpoint), torch threads: {r['threads'] or THREADS_DEFAULT}; "
        f"identical per-episode results "
        f"(success {r['success_rate']:.3f})."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--batch-envs", type=int, default=DEFAULT_BATCH_ENVS, help="compared against 1")
    parser.add_argument("--env", default=FOURROOMS_ID)
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads while sampling, both runs (default: the agent's own choice)")
    parser.add_argument("--checkpoint", default=None, help="default: the one shipped for --env")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results files go")
    args = parser.parse_args(argv)
    r = run(args.episodes, args.batch_envs, args.env, args.seed, args.threads, args.checkpoint)
    md = to_markdown(r)
    print(md)
    write_results("rollout_speed", r, md, out_dir=args.out_dir)


if __name__ == "__main__":
    main()
