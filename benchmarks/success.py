"""Success of agents × envs on held-out seeds, through the one evaluation runner.

    python -m benchmarks.success [--agents random bfs ar mdlm mctd] [--envs ID ...] [--episodes 500]

Model agents use the checkpoint shipped for each env. Reports success rate, path ratio, mean
return, ms per decision (wall time / env steps; amortised over the lockstep batch for ar and
mdlm), episodes/s and, for mctd, the median ms of one search.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from agents.registry import make_agent
from benchmarks.common import write_results
from envs import FOURROOMS_ID, MAZE_ID
from envs.seeds import EVAL_SEED_START
from maze_mdlm.evaluation import evaluate


def run(agents: Sequence[str], env_ids: Sequence[str], episodes: int, seed: int = EVAL_SEED_START,
        checkpoint: str | None = None) -> list[dict[str, Any]]:
    """One row per (agent, env): the runner's metrics plus ms/decision and episodes/s."""
    rows = []
    for env_id in env_ids:
        for name in agents:
            agent = make_agent(name, env_id=env_id, checkpoint=checkpoint, seed=seed)
            m = evaluate(agent, env_id, episodes, seed)
            decisions = sum(r["steps"] for r in m.pop("per_episode"))
            m.update(agent=name, ms_per_decision=1000 * m["seconds"] / max(decisions, 1),
                     episodes_per_s=episodes / m["seconds"])
            rows.append(m)
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| agent | env | episodes | success | path ratio | mean return | ms/decision | episodes/s "
            "| ms/search (median) |\n")
    head += "|---|---|---|---|---|---|---|---|---|\n"
    for r in rows:
        ratio = "-" if r["path_ratio"] is None else f"{r['path_ratio']:.3f}"
        search = f"{r['median_plan_ms']:.0f}" if "median_plan_ms" in r else "-"
        head += (f"| {r['agent']} | {r['env']} | {r['episodes']} | {r['success_rate']:.3f} | {ratio} | "
                 f"{r['mean_return']:.3f} | {r['ms_per_decision']:.2f} | {r['episodes_per_s']:.1f} | {search} |\n")
    return head


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["random", "bfs", "ar", "mdlm", "mctd"])
    parser.add_argument("--envs", nargs="+", default=[FOURROOMS_ID, MAZE_ID])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START)
    parser.add_argument("--checkpoint", default=None, help="one checkpoint for every env (default: shipped)")
    parser.add_argument("--name", default="success", help="results file name")
    args = parser.parse_args(argv)
    rows = run(args.agents, args.envs, args.episodes, args.seed, args.checkpoint)
    md = to_markdown(rows)
    print(md)
    write_results(args.name, {"rows": rows}, md, module="success")


if __name__ == "__main__":
    main()
