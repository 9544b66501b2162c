"""How much of ObstructedMaze's path ratio is the hidden box contents: a reference that plans
perfectly but, like the agents, cannot see into boxes.

    python -m benchmarks.guess_reference [--episodes 50] [--max-steps 128] [--compare suite_mctd50]

MiniGrid encodes a closed box as a box, not its contents, so in the ObstructedMaze ids with hidden
keys an agent must guess which box to open; the oracle (:class:`agents.BFSAgent`) reads the
contents from the env and its plan is the path ratio's denominator. Two agents per env, on the
same held-out seeds (from 1,000,000) and step cap as the suite pages:

* ``oracle``: :class:`agents.BFSAgent`, the expert with the true box contents;
* ``guessing oracle``: the same expert, replanning on every mismatch, but planning with MCTD's
  guess of the contents (:func:`envs.box_guess.guessed_state`, what
  :attr:`agents.mctd.world.SearchWorld.boxes` assumes) instead of the true ones. Its path ratio is
  what a perfect planner pays with MCTD's information and guess rule; an MCTD row above it is the
  search and the model, the part up to it is the guess (the information).

``--compare PAGE`` adds the mctd rows of a suite results page (``benchmarks/results/PAGE.json``).
This is a reference, not an agent: it consults the expert.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

import numpy as np

import envs  # noqa: F401  (registers our envs)
from agents.baselines import BFSAgent
from benchmarks.common import RESULTS, write_results
from envs.box_guess import guessed_state
from envs.seeds import EVAL_SEED_START
from envs.world import WorldState
from maze_mdlm.cli_common import positive_int
from maze_mdlm.evaluation import evaluate

HIDDEN_KEY_ENVS = tuple(f"MiniGrid-ObstructedMaze-{name}" for name in (
    "1Dlh-v0", "1Dlhb-v0", "2Dlh-v0", "2Dlhb-v0", "2Dlhb-v1", "1Q-v0", "1Q-v1", "2Q-v0", "2Q-v1", "Full-v0",
    "Full-v1"))


class GuessingOracle(BFSAgent):
    """:class:`agents.BFSAgent` that plans with MCTD's guess of what the closed boxes hold (from
    the observed layout and carried object and the task) instead of the env's contents."""

    name = "guessing oracle"

    def boxes_for(self, layout: np.ndarray, pose: tuple[int, int, int], carrying: tuple[int, int, int]) -> tuple:
        return guessed_state(WorldState(layout, pose, carrying), self._task).boxes


def run(env_ids: Sequence[str], episodes: int, max_steps: int | None) -> list[dict[str, Any]]:
    """One row per env and agent: success, path ratio, mean steps, mean optimal steps, capped."""
    rows = []
    for env_id in env_ids:
        for agent in (BFSAgent(), GuessingOracle()):
            m = evaluate(agent, env_id, episodes, EVAL_SEED_START, max_steps=max_steps)
            rows.append({"env": env_id, "agent": agent.name if agent.name != "bfs" else "oracle",
                         "episodes": episodes, "success_rate": m["success_rate"], "path_ratio": m["path_ratio"],
                         "mean_steps": m["mean_steps"], "mean_optimal_steps": m["mean_optimal_steps"],
                         "capped": sum(1 for e in m["per_episode"] if e.get("capped"))})
    return rows


def compare_rows(page: str) -> tuple[dict[str, dict[str, Any]], str]:
    """The mctd rows of a suite results page by env, and the page's git commit."""
    data = json.loads((RESULTS / f"{page}.json").read_text())
    return ({row["env"]: row for row in data["results"]["tables"].get("mctd", [])},
            data["machine"].get("git_commit", "?"))


def to_markdown(rows: list[dict[str, Any]], compare: tuple[dict[str, dict[str, Any]], str] | None,
                page: str | None) -> str:
    head = "| env | agent | episodes | success | path ratio | mean steps | mean optimal | capped |"
    out = ["Path ratio: steps over the oracle's optimum from the start (true box contents), successful "
           "episodes. guessing oracle: the expert planning with MCTD's box guess, replanning on each "
           "mismatch.", "", head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['env']} | {r['agent']} | {r['episodes']} | {r['success_rate']:.3f} | "
                   f"{r['path_ratio']:.3f} | {r['mean_steps']:.1f} | {r['mean_optimal_steps']:.1f} | {r['capped']} |")
        mctd = compare[0].get(r["env"]) if compare and r["agent"] != "oracle" else None
        if mctd:
            out.append(f"| {r['env']} | mctd ({page} @ {compare[1]}) | {mctd['episodes']} | "
                       f"{mctd['success_rate']:.3f} | {mctd['path_ratio']:.3f} | {mctd['mean_steps']:.1f} | | "
                       f"{mctd['capped']} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(HIDDEN_KEY_ENVS), help="env ids")
    parser.add_argument("--episodes", type=positive_int, default=50, help="episodes per env and agent")
    parser.add_argument("--max-steps", type=positive_int, default=128, help="step cap (the suite pages': 128)")
    parser.add_argument("--compare", default=None, metavar="PAGE",
                        help="a suite results page whose mctd rows are shown beside (e.g. suite_mctd50)")
    parser.add_argument("--name", default="guess_reference", help="results file name")
    args = parser.parse_args(argv)
    if args.compare and not (RESULTS / f"{args.compare}.json").is_file():
        parser.error(f"--compare: no results page {RESULTS / args.compare}.json")
    compare = compare_rows(args.compare) if args.compare else None
    rows = run(args.envs, args.episodes, args.max_steps)
    md = to_markdown(rows, compare, args.compare)
    print(md)
    write_results(args.name, {"rows": rows, "compare": args.compare}, md, module="guess_reference")


if __name__ == "__main__":
    main()
