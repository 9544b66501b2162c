"""Ablation of MCTD, one table per env: which part of the search makes which part of the result.

    python -m benchmarks.ablation [--envs ID ...] [--episodes 60] [--blocks 3] [--rows NAME ...]

Every row plays the same held-out episodes (reset seeds from 1,000,000), one episode at a time,
with a fresh agent. Rows (each switches components off and keeps everything else fixed):

* ``bfs``: the oracle (shortest path).
* ``ar``: the autoregressive baseline, with its first-action rules.
* ``mdlm raw``: the MDLM closed loop with ``safe_first_action=False, avoid_revisits=False``.
* ``mdlm``: the MDLM closed loop as shipped (first-action rules on).
* ``mctd tree only @B``: MCTD without policy continuation, shortcut or straightening
  (``rollout_windows=0, shortcut=False, cut_partial=False, straighten=False``) at budget B expansions
  per search (B=1: ``parallel=1``).
* ``mctd tree only @24, 0.3 fallback``: the same with 0.3's handling of a search that finds no
  goal-reaching plan (``fallback="policy", partial_score="manhattan"``: one MDLM step instead).
* ``mctd + continuation``: tree and continuation, no shortcut (of goal-reaching or of partial plans)
  and no straightening.
* ``mctd + shortcut``: tree and shortcut (the loop cut, as before 0.25: no straightening), no continuation.
* ``mctd full, no straighten``: every part but ``straighten`` (0.25: the returned goal-reaching
  plan keeps the detours that revisit no cell).
* ``mctd full, no partial cut``: every part but ``cut_partial`` (0.20: plans that end alive
  keep their loops when scored and executed).
* ``mctd full, no commit``: every part but the agent's ``commit`` (0.20: each search that finds
  no goal-reaching plan executes its own best partial plan).
* ``mctd full @1``: every part, budget 1 (``max_expansions=1, parallel=1``).
* ``mctd full``: every part, default budget.
* ``mctd full, T ms``: every part, default budget and ``time_budget_ms=T`` (machine-dependent).

Columns: success and path ratio as mean ± std over ``blocks`` disjoint blocks of consecutive
seeds (one training seed per model: the spread is over evaluation episodes, not over training
runs), median / p95 ms per decision (wall time of one ``act`` call, i.e. one env step: over
all steps of all episodes, except for ar and mdlm, which play their episodes in lockstep and
are timed one at a time on the first ``TIMING_EPISODES``), and for MCTD the median / p95 ms
of a search and the mean expansions per search. Envs without a shipped checkpoint of their own (the braid and lava
mazes) use the maze's checkpoints zero-shot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from agents.ar_agent import ARAgent
from agents.baselines import BFSAgent
from agents.mctd import MCTDAgent
from agents.mdlm_agent import MDLMAgent
from benchmarks.common import RESULTS, command_line, write_results
from envs import BRAID_MAZE_ID, FOURROOMS_ID, LAVA_MAZE_ID, MAZE_ID
from envs.seeds import EVAL_SEED_START
from maze_mdlm.evaluation import evaluate, summarize
from maze_mdlm.shipped import default_checkpoint

ENVS = (MAZE_ID, FOURROOMS_ID, BRAID_MAZE_ID, LAVA_MAZE_ID)
TIME_BUDGET_MS = 100.0
TIMING_EPISODES = 5  # one-at-a-time episodes that time ar and mdlm (their success comes from lockstep)


@dataclasses.dataclass(frozen=True)
class Row:
    """One ablation row: its name and how to build its agent (``kind`` plus keyword options)."""

    name: str
    kind: str  # bfs, ar, mdlm or mctd
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


TREE_ONLY = {"rollout_windows": 0, "shortcut": False, "cut_partial": False, "straighten": False}
BUDGET_1 = {"max_expansions": 1, "parallel": 1}
OLD_FALLBACK = {"fallback": "policy", "partial_score": "manhattan"}  # 0.3: a search without a goal is thrown away
ROWS = (
    Row("bfs", "bfs"),
    Row("ar", "ar"),
    Row("mdlm raw", "mdlm", {"safe_first_action": False, "avoid_revisits": False}),
    Row("mdlm", "mdlm"),
    Row("mctd tree only @1", "mctd", {**TREE_ONLY, **BUDGET_1}),
    Row("mctd tree only @24", "mctd", TREE_ONLY),
    Row("mctd tree only @96", "mctd", {**TREE_ONLY, "max_expansions": 96}),
    Row("mctd tree only @24, 0.3 fallback", "mctd", {**TREE_ONLY, **OLD_FALLBACK}),
    Row("mctd + continuation", "mctd", {"shortcut": False, "cut_partial": False, "straighten": False}),
    Row("mctd + shortcut", "mctd", {"rollout_windows": 0, "straighten": False}),
    Row("mctd full, no partial cut", "mctd", {"cut_partial": False}),
    Row("mctd full, no straighten", "mctd", {"straighten": False}),
    Row("mctd full, no commit", "mctd", {"commit": False}),
    Row("mctd full @1", "mctd", BUDGET_1),
    Row("mctd full", "mctd"),
    Row(f"mctd full, {TIME_BUDGET_MS:.0f} ms", "mctd", {"time_budget_ms": TIME_BUDGET_MS}),
)


def checkpoint_for(env_id: str, model_type: str) -> str:
    """The checkpoint shipped for ``env_id`` (:mod:`maze_mdlm.shipped`: the maze's for the 19x19 braid
    and lava mazes, zero-shot; 0.20 sent every maze id without its own entry there, the 25x25 ones too,
    whose 25x25 grids the 19x19 model cannot read)."""
    return str(default_checkpoint(env_id, model_type))


def make_row_agent(row: Row, env_id: str, seed: int = 0) -> Any:
    """A fresh agent for ``row`` on ``env_id``."""
    if row.kind == "bfs":
        return BFSAgent()
    if row.kind == "ar":
        return ARAgent.from_checkpoint(checkpoint_for(env_id, "ar"), env_id=env_id, seed=seed, **row.options)
    if row.kind == "mdlm":
        return MDLMAgent.from_checkpoint(checkpoint_for(env_id, "mdlm"), env_id=env_id, seed=seed, **row.options)
    if row.kind == "mctd":
        return MCTDAgent.from_checkpoint(checkpoint_for(env_id, "mdlm"), env_id=env_id, seed=seed, **row.options)
    raise ValueError(f"unknown row kind {row.kind!r}")


class TimedAgent:
    """Wraps a one-episode agent and records the wall time of every ``act`` call (ms)."""

    def __init__(self, agent: Any):
        self.agent, self.name, self.ms = agent, getattr(agent, "name", type(agent).__name__), []

    def reset(self, obs: Any, info: Any = None) -> None:
        self.agent.reset(obs, info)

    def act(self, obs: Any) -> int:
        tic = time.perf_counter()
        action = self.agent.act(obs)
        self.ms.append(1000.0 * (time.perf_counter() - tic))
        return action

    def stats(self) -> dict[str, Any]:
        return self.agent.stats() if hasattr(self.agent, "stats") else {}


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and (population) std of the values that are not None."""
    vals = [v for v in values if v is not None]
    return (float(np.mean(vals)), float(np.std(vals))) if vals else (None, None)


def run_row(row: Row, env_id: str, episodes: int, blocks: int, seed: int = EVAL_SEED_START,
            timing_episodes: int = TIMING_EPISODES) -> dict[str, Any]:
    """Play ``episodes`` episodes of one row; success and path ratio per block of seeds.

    ``ar`` and ``mdlm`` (greedy, so their episodes are the same in lockstep as one at a time) play
    all episodes in lockstep, and their ms per decision come from a separate one-at-a-time run of
    the first ``timing_episodes`` episodes; every other row is timed on all its episodes.
    """
    timed = TimedAgent(make_row_agent(row, env_id))
    if row.kind in ("ar", "mdlm"):
        m = evaluate(make_row_agent(row, env_id), env_id, episodes, seed, batch_envs=episodes)
        evaluate(timed, env_id, min(timing_episodes, episodes), seed, batch_envs=1)
    else:
        m = evaluate(timed, env_id, episodes, seed, batch_envs=1)
    records = m.pop("per_episode")
    parts = [summarize(list(part)) for part in np.array_split(np.array(records, dtype=object), blocks)]
    success, success_std = mean_std([p["success_rate"] for p in parts])
    ratio, ratio_std = mean_std([p["path_ratio"] for p in parts])
    ms = np.array(timed.ms)
    out = {
        "row": row.name, "env": env_id, "episodes": episodes, "seed": seed, "blocks": blocks,
        "options": dict(row.options), "success": success, "success_std": success_std,
        "path_ratio": ratio, "path_ratio_std": ratio_std,
        "success_blocks": [p["success_rate"] for p in parts], "path_ratio_blocks": [p["path_ratio"] for p in parts],
        "success_rate_all": m["success_rate"], "path_ratio_all": m["path_ratio"],
        "decision_ms_p50": float(np.percentile(ms, 50)), "decision_ms_p95": float(np.percentile(ms, 95)),
        "decision_ms_p99": float(np.percentile(ms, 99)), "decisions": int(len(ms)), "seconds": m["seconds"],
    }
    for key in ("plan_ms_p50", "plan_ms_p95", "plan_ms_p99", "mean_expansions", "goal_found_rate"):
        if key in m:
            out[key] = m[key]
    if "decisions" in m:
        out["searches"] = m["decisions"]
    return out


def run(env_ids: Sequence[str] = ENVS, episodes: int = 60, blocks: int = 3, seed: int = EVAL_SEED_START,
        rows: Sequence[str] | None = None, on_row: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    """Every selected row on every env (rows by name; None: all)."""
    chosen = [r for r in ROWS if rows is None or r.name in rows]
    out = []
    for env_id in env_ids:
        for row in chosen:
            result = run_row(row, env_id, episodes, blocks, seed)
            out.append(result)
            if on_row:
                on_row(result)
    return out


def _pm(mean: float | None, std: float | None, digits: int) -> str:
    return "-" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(results: list[dict[str, Any]]) -> str:
    """One table per env."""
    lines = []
    for env_id in dict.fromkeys(r["env"] for r in results):
        rows = [r for r in results if r["env"] == env_id]
        first = rows[0]
        lines += [f"## {env_id}", "",
                  f"{first['episodes']} episodes from seed {first['seed']}, mean ± std over {first['blocks']} blocks "
                  "of consecutive seeds.", "",
                  "| row | success | path ratio | ms/decision p50 | p95 | ms/search p50 | p95 | expansions/search "
                  "| searches |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            search = (f"{r['plan_ms_p50']:.0f} | {r['plan_ms_p95']:.0f} | {r['mean_expansions']:.1f} | {r['searches']}"
                      if "plan_ms_p50" in r else "- | - | - | -")
            lines.append(f"| {r['row']} | {_pm(r['success'], r['success_std'], 3)} | "
                         f"{_pm(r['path_ratio'], r['path_ratio_std'], 3)} | {r['decision_ms_p50']:.1f} | "
                         f"{r['decision_ms_p95']:.1f} | {search} |")
        lines.append("")
    return "\n".join(lines)


def merge(names: Sequence[str], name: str) -> None:
    """Join the rows of results files ``names`` (e.g. one run per env, run side by side) into
    ``name``; a row of a later file replaces the same env's row of the same name in an earlier
    one (a re-run of some rows). The merged file records each part's command and machine."""
    parts = [json.loads((RESULTS / f"{part}.json").read_text()) for part in names]
    keyed: dict[tuple[str, str], dict] = {}
    for part in parts:  # a later part's row replaces an earlier one of the same env and name
        for row in part["results"]["rows"]:
            keyed[(row["env"], row["row"])] = row
    rows = list(keyed.values())
    md = to_markdown(rows)
    md = "Parts (later parts replace the rows they re-ran):\n\n" + "\n".join(
        f"- `{p['command']}` (git {p['machine']['git_commit']})" for p in parts) + "\n\n" + md
    write_results(name, {"rows": rows, "parts": [{"command": p["command"], "machine": p["machine"]} for p in parts]},
                  md, module="ablation")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="gymnasium env ids (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=60, help="episodes per row and env")
    parser.add_argument("--blocks", type=int, default=3, help="disjoint seed blocks for mean ± std")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START, help="first reset seed (held-out range)")
    parser.add_argument("--rows", nargs="+", default=None, help="row names to run (default: all)")
    parser.add_argument("--name", default="ablation", help="results file name")
    parser.add_argument("--merge", nargs="+", default=None, metavar="NAME",
                        help="instead of running: join the results files NAME.json (runs split by env) into --name")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.name)
        return

    def show(r: dict) -> None:
        print(f"{r['env']} | {r['row']} | success {r['success_rate_all']:.3f} | path {r['path_ratio_all']} | "
              f"p50 {r['decision_ms_p50']:.1f} ms | p95 {r['decision_ms_p95']:.1f} ms | {r['seconds']:.0f} s", flush=True)

    done: list[dict] = []
    partial = RESULTS / f"{args.name}.partial.json"

    def keep(r: dict) -> None:  # rows so far, in case a long run is stopped
        show(r)
        done.append(r)
        partial.write_text(json.dumps({"command": command_line("ablation"), "rows": done}, indent=2) + "\n")

    results = run(args.envs, args.episodes, args.blocks, args.seed, args.rows, on_row=keep)
    partial.unlink(missing_ok=True)
    md = to_markdown(results)
    print(md)
    write_results(args.name, {"rows": results}, md, module="ablation")


if __name__ == "__main__":
    main()
