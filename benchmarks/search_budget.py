"""MCTD success rate and planning time against the search budget (max expansions per decision).

Closed-loop episodes on the maze with the shipped maze checkpoint, the same held-out seeds
(from 1_000_000) for every budget. Per budget: success rate, median and mean ms per planning
decision (the search only), mean expansions per decision.

    python -m benchmarks.search_budget [--budgets 1 4 16 64 256] [--episodes 100] [--checkpoint PATH]
    python -m benchmarks.search_budget --plot-only   # redraw the PNG from search_budget.json

Writes ``search_budget.{md,json}`` and, when matplotlib is installed (``pip install
maze-mdlm[bench]``), the plot ``search_budget.png`` that the md embeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from agents.mctd.agent import MCTDAgent
from benchmarks.common import RESULTS, write_results
from envs import MAZE_ID
from envs.seeds import EVAL_SEED_START
from maze_mdlm.evaluation import evaluate

BUDGETS = (1, 4, 16, 64, 256)
PLOT = "search_budget.png"


def budget_row(budget: int, episodes: int, seed: int, env_id: str, checkpoint: str | None) -> dict[str, Any]:
    """One budget's rollout metrics (a fresh agent with seed 0)."""
    agent = MCTDAgent.from_checkpoint(checkpoint, env_id=env_id, seed=0, max_expansions=budget)
    m = evaluate(agent, env_id, episodes, seed)
    m.pop("per_episode")
    return {"budget": budget, **m}


def run(budgets: Sequence[int] = BUDGETS, episodes: int = 100, seed: int = EVAL_SEED_START, env_id: str = MAZE_ID,
        checkpoint: str | None = None) -> dict[str, Any]:
    """Rows of success rate, ``median_plan_ms``, ``mean_plan_ms``, ``mean_expansions`` per budget."""
    return {"env": env_id, "episodes": episodes, "seed": seed, "checkpoint": checkpoint or "shipped",
            "rows": [budget_row(b, episodes, seed, env_id, checkpoint) for b in budgets]}


def plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Success and planning ms against budget (log x) in ``path``; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, NullLocator

    budgets = [r["budget"] for r in rows]
    fig, left = plt.subplots(figsize=(6, 4))
    left.plot(budgets, [r["success_rate"] for r in rows], "o-", color="tab:blue", label="success rate")
    left.set(xscale="log", xlabel="budget (max expansions per decision)", ylabel="success rate", ylim=(0, 1.05))
    left.xaxis.set_minor_locator(NullLocator())
    left.set_xticks(budgets, [str(b) for b in budgets])
    right = left.twinx()
    right.plot(budgets, [r["median_plan_ms"] for r in rows], "s--", color="tab:red", label="median ms / decision")
    right.plot(budgets, [r["mean_plan_ms"] for r in rows], "^:", color="tab:orange", label="mean ms / decision")
    # linear from 0: the times span less than a decade, where a log axis shows no labelled tick
    top = max(max(r["median_plan_ms"], r["mean_plan_ms"]) for r in rows)
    right.set(ylabel="planning ms per decision", ylim=(0, 1.1 * top))
    right.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    fig.legend(loc="lower right", bbox_to_anchor=(0.86, 0.16), fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def to_markdown(results: dict[str, Any], plotted: bool) -> str:
    """The table, and the plot (or a note that it was skipped)."""
    lines = [f"MCTD on {results['env']}, {results['episodes']} episodes from seed {results['seed']} "
             f"(the same for every budget), checkpoint {results['checkpoint']}. Planning ms is the search "
             "of a decision that planned.", "",
             "| budget | success | path ratio | median ms / decision | mean ms / decision | mean expansions "
             f"| ms / expansion | median ms vs budget {results['rows'][0]['budget']} | decisions |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = results["rows"][0]["median_plan_ms"]
    for r in results["rows"]:
        per_expansion = r["mean_plan_ms"] / r["mean_expansions"] if r["mean_expansions"] else 0.0
        ratio = f"{r['median_plan_ms'] / base:.1f}x" if base else "-"
        path = "-" if r.get("path_ratio") is None else f"{r['path_ratio']:.3f}"
        lines.append(f"| {r['budget']} | {r['success_rate']:.3f} | {path} | {r['median_plan_ms']:.1f} | {r['mean_plan_ms']:.1f} "
                     f"| {r['mean_expansions']:.1f} | {per_expansion:.2f} | {ratio} | {r['decisions']} |")
    lines += ["", f"![success and planning time against budget]({PLOT})" if plotted
              else "Plot skipped: matplotlib is not installed (`pip install maze-mdlm[bench]`)."]
    return "\n".join(lines) + "\n"


def rebuild_markdown(out_dir: Path = RESULTS) -> Path:
    """Rewrite ``search_budget.md`` from ``search_budget.json`` without running anything (same
    command, machine and numbers; the table as :func:`to_markdown` now writes it)."""
    payload = json.loads((out_dir / "search_budget.json").read_text())
    md = to_markdown(payload["results"], plotted=(out_dir / PLOT).is_file())
    info = payload["machine"]
    lines = ["# search_budget", "", f"Command: `{payload['command']}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "", md.rstrip(), ""]
    (out_dir / "search_budget.md").write_text("\n".join(lines))
    return out_dir / "search_budget.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="max expansions per decision")
    parser.add_argument("--episodes", type=int, default=100, help="maze episodes per budget")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START, help="first reset seed (held-out range)")
    parser.add_argument("--checkpoint", default=None, help="model (default: the shipped maze checkpoint)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="results folder (default benchmarks/results)")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw search_budget.png from the existing search_budget.json (no benchmark run)")
    parser.add_argument("--rebuild-md", action="store_true",
                        help="only rewrite search_budget.md from the existing search_budget.json")
    args = parser.parse_args(argv)
    if args.plot_only:
        rows = json.loads((args.out_dir / "search_budget.json").read_text())["results"]["rows"]
        print(plot(rows, args.out_dir / PLOT) or "matplotlib is not installed (pip install maze-mdlm[bench])")
        return
    if args.rebuild_md:
        print(rebuild_markdown(args.out_dir).read_text())
        return
    results = run(args.budgets, args.episodes, args.seed, checkpoint=args.checkpoint)
    plotted = plot(results["rows"], args.out_dir / PLOT) is not None
    md = to_markdown(results, plotted)
    print(md)
    write_results("search_budget", results, md, args.out_dir)


if __name__ == "__main__":
    main()
