"""Every agent on the whole MiniGrid suite: one table per agent, one row per supported env.

    python -m benchmarks.suite [--agents bfs ar mdlm mctd] [--envs ID ...] [--episodes 20] [--workers 2]

Model agents use the checkpoint shipped for each env (the generalist ``suite.pt`` / ``suite_ar.pt``
for most, :mod:`maze_mdlm.shipped`) unless ``--checkpoint`` (mdlm, mctd) / ``--ar-checkpoint`` (ar)
is given. Each row: success rate, path ratio (agent steps / expert-optimal steps over successful
episodes), mean steps, median and p95 ms per decision, episodes. Rows of envs the checkpoint was
not trained on (zero-shot: not among the training datasets' envs recorded in the checkpoint, or
listed with ``--held-out`` when the checkpoint records none) are marked.

ms per decision is measured around each ``act`` call; ar, mdlm and mctd play ``--batch-envs``
episodes in lockstep, and one ``act_batch`` call's time is divided by the episodes in it (mctd rows
also give the time of the decisions that searched, ``plan_ms_p50`` / ``plan_ms_p95``).
``--workers N`` splits each row's seeds between N processes; the episodes, and so every
success, path ratio and step count, are the same for any N. Times are not: on a 2-core machine
two workers share the cores, and one worker took 7-8% off the search p95 and 2-4% off the median
of three ObstructedMaze rows (``suite_mctd500_om_1worker_030`` against 0.29's two-worker pages).
Evaluation seeds start at ``envs.seeds.EVAL_SEED_START``; episode i uses seed + i.

Measured on the 2-core dev machine, every supported env, ``--max-steps 128 --workers 2``, each
run alone (wall): mctd 20 episodes 5.3-8 min (0.15 on a fast hour, 0.14 on a slow one; 0.12:
15 min), 50 episodes 15 min (0.14; 0.12: 40 min); mdlm 20 episodes 7 min, 50 episodes 10 min
(0.14); ar 20 episodes 3-4.5 min, 50 episodes 3.7-5.3 min; bfs 5 episodes 4 min (0.5).
Failed episodes run to ``--max-steps`` (or the env's own limit, up to 3600 steps, without
it), so the time depends mostly on how often the agents fail; ``--envs`` / ``--agents`` split the run.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from agents.mctd.agent import FALLBACKS, GOAL_EXECUTE, RESEARCH_EXPANSIONS
from agents.registry import MODEL_AGENTS, make_agent
from benchmarks.common import write_results
from envs.registry import SUPPORTED, lookup
from envs.seeds import EVAL_SEED_START
from maze_mdlm.cli_common import file_digest, nonnegative_int, positive_float, positive_int
from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS
from maze_mdlm.parallel import evaluate_parallel

AGENTS = ("bfs", "ar", "mdlm", "mctd")
DEFAULT_EPISODES = 20


class TimedAgent:
    """An agent (``reset`` / ``act``) whose decisions are timed; everything else is the agent's.

    ``stats()`` adds ``median_ms_per_decision``, ``p95_ms_per_decision`` and ``decisions`` to the
    agent's own statistics; ``stats_state`` / ``load_stats_state`` carry the timings across
    worker processes (:mod:`maze_mdlm.parallel`).
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self.ms: list[float] = []  # one entry per decision

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        self.inner.reset(obs, info)

    def act(self, obs: Mapping[str, Any]) -> int:
        start = time.perf_counter()
        action = self.inner.act(obs)
        self.ms.append(1000 * (time.perf_counter() - start))
        return action

    def stats(self) -> dict[str, float]:
        out = dict(self.inner.stats()) if hasattr(self.inner, "stats") else {}
        ms = np.asarray(self.ms, dtype=float)
        out.update(decisions=len(ms),
                   median_ms_per_decision=float(np.median(ms)) if len(ms) else None,
                   p95_ms_per_decision=float(np.percentile(ms, 95)) if len(ms) else None)
        return out

    def stats_state(self) -> tuple[Any, list[float]]:
        inner = self.inner.stats_state() if hasattr(self.inner, "stats_state") else None
        return inner, list(self.ms)

    def load_stats_state(self, states: Sequence[tuple[Any, list[float]]]) -> None:
        if hasattr(self.inner, "load_stats_state"):
            self.inner.load_stats_state([inner for inner, _ in states])
        self.ms = [ms for _, times in states for ms in times]


class TimedBatchAgent(TimedAgent):
    """:class:`TimedAgent` for agents that play episodes in lockstep (``new_episode`` /
    ``act_batch``): a call's time is divided by the episodes in it, one entry per episode."""

    def new_episode(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> Any:
        return self.inner.new_episode(obs, info)

    def act_batch(self, states: Sequence[Any], observations: Sequence[Mapping[str, Any]]) -> list[int]:
        start = time.perf_counter()
        actions = self.inner.act_batch(states, observations)
        share = 1000 * (time.perf_counter() - start) / max(len(observations), 1)
        self.ms.extend([share] * len(observations))
        return actions


def timed(agent: Any) -> TimedAgent:
    """Wrap ``agent`` in the timer that matches its interface."""
    batched = hasattr(agent, "act_batch") and hasattr(agent, "new_episode")
    return (TimedBatchAgent if batched else TimedAgent)(agent)


def build_timed(name: str, env_id: str, checkpoint: str | None, seed: int, **options: Any) -> TimedAgent:
    """A fresh timed agent (module level, so ``functools.partial`` of it is picklable for workers);
    ``options`` go to :func:`agents.registry.make_agent` (mctd only)."""
    return timed(make_agent(name, env_id=env_id, checkpoint=checkpoint, seed=seed, **options))


# ----------------------------------------------------------------------------- zero-shot marks
def checkpoint_for(name: str, env_id: str, checkpoint: str | None, ar_checkpoint: str | None) -> str | None:
    """The checkpoint agent ``name`` uses on ``env_id`` (None for bfs / random)."""
    if name not in MODEL_AGENTS:
        return None
    given = ar_checkpoint if name == "ar" else checkpoint
    if given is not None:
        return str(Path(given).resolve())
    from maze_mdlm.shipped import default_checkpoint

    return str(default_checkpoint(env_id, "ar" if name == "ar" else "mdlm"))


@functools.lru_cache(maxsize=None)
def trained_envs(path: str) -> tuple[str, ...] | None:
    """The env ids of the datasets the checkpoint at ``path`` was trained on (None if unrecorded)."""
    from maze_mdlm.checkpoint import read_checkpoint

    envs = (read_checkpoint(path).get("dataset") or {}).get("envs")
    return tuple(envs) if envs else None


def zero_shot(path: str | None, env_id: str, held_out: Sequence[str] | None) -> bool | None:
    """Whether ``env_id`` was held out of the training of checkpoint ``path``: from the
    checkpoint's dataset metadata, else ``held_out``; None when neither says (or no model)."""
    if path is None:
        return None
    envs = trained_envs(path)
    if envs is not None:
        return env_id not in envs
    return None if held_out is None else env_id in held_out


# ----------------------------------------------------------------------------- the run
def mctd_options(fallback: str | None, escape: float | None, guess_boxes: bool = True,
                 min_expansions: int | None = None, cut_partial: bool = True,
                 commit: bool = True, straighten: bool = True,
                 goal_execute: int | None = None, research_expansions: int | None = None,
                 widen: bool = True) -> dict[str, Any] | None:
    """The mctd agent's keywords from ``--mctd-fallback`` / ``--mctd-escape`` /
    ``--mctd-no-guess-boxes`` / ``--mctd-min-expansions`` / ``--mctd-no-cut-partial`` /
    ``--mctd-no-commit`` / ``--mctd-no-straighten`` / ``--mctd-goal-execute`` /
    ``--mctd-research-expansions`` / ``--mctd-no-widen`` (None: the defaults)."""
    options = {key: value for key, value in (("fallback", fallback), ("rollout_escape", escape),
                                             ("min_expansions", min_expansions),
                                             ("goal_execute", goal_execute),
                                             ("research_expansions", research_expansions)) if value is not None}
    if not guess_boxes:
        options["guess_boxes"] = False
    if not cut_partial:
        options["cut_partial"] = False
    if not commit:
        options["commit"] = False
    if not straighten:
        options["straighten"] = False
    if not widen:
        options["widen_on_failure"] = False
    return options or None


def run(agents: Sequence[str], env_ids: Sequence[str], episodes: int, seed: int = EVAL_SEED_START, *,
        workers: int = 1, checkpoint: str | None = None, ar_checkpoint: str | None = None,
        held_out: Sequence[str] | None = None, batch_envs: int = DEFAULT_BATCH_ENVS,
        on_row: Callable[[str, dict], None] | None = None, max_steps: int | None = None,
        episodes_of: Mapping[str, int] | None = None,
        mctd_options: Mapping[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{agent: [row per env]}`` through the project's evaluation runner
    (:func:`maze_mdlm.parallel.evaluate_parallel`, i.e. :func:`maze_mdlm.evaluation.evaluate`).

    A row holds ``env, task, zero_shot, episodes, success_rate, path_ratio, mean_steps,
    median_ms_per_decision, p95_ms_per_decision, decisions, seconds, checkpoint, capped, unsolvable,
    success_rate_solvable, failed_seeds``
    (the reset seeds of the failed episodes; and for
    mctd ``plan_ms_p50``, ``plan_ms_p95``: the time of the decisions that searched, and
    ``goal_found_rate``, ``widened_rate``: the fractions of searches that found a goal-reaching plan
    and that grew ``widen_on_failure``'s second tree, 0.33); a model
    agent whose checkpoint cannot be loaded (e.g. not shipped yet) gets ``skipped`` (the reason)
    instead. ``max_steps``: episodes still running after that many steps stop as failures
    (``capped`` counts them; None: the envs' own limits). ``episodes_of``: per-agent episode
    counts that replace ``episodes``. ``mctd_options``: keywords of the mctd agent (e.g.
    ``fallback``).
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in agents:
        rows = tables.setdefault(name, [])
        for env_id in env_ids:
            spec = lookup(env_id)
            row: dict[str, Any] = {"env": env_id, "task": spec.task_name}
            try:
                path = checkpoint_for(name, env_id, checkpoint, ar_checkpoint)
                options = dict(mctd_options or {}) if name == "mctd" else {}
                factory = functools.partial(build_timed, name, env_id=env_id, checkpoint=path, seed=seed, **options)
                agent = factory()
            except ValueError as err:  # a missing or foreign checkpoint
                row["skipped"] = " ".join(str(err).split())
                rows.append(row)
                continue
            count = (episodes_of or {}).get(name, episodes)
            m = evaluate_parallel(factory, env_id, count, seed, workers=workers, batch_envs=batch_envs,
                                  agent=agent, max_steps=max_steps)
            row.update(
                zero_shot=zero_shot(path, env_id, held_out),
                checkpoint=None if path is None else Path(path).name,
                checkpoint_sha256_16=None if path is None else file_digest(Path(path)),
                **{key: m.get(key) for key in ("episodes", "success_rate", "path_ratio", "mean_steps",
                                               "mean_optimal_steps", "median_ms_per_decision",
                                               "p95_ms_per_decision", "decisions", "seconds", "batch_envs",
                                               "plan_ms_p50", "plan_ms_p95", "mean_phase_ms", "unsolvable",
                                               "success_rate_solvable", "goal_found_rate", "widened_rate")},
                capped=sum(bool(r.get("capped")) for r in m["per_episode"]),
                failed_seeds=[r["seed"] for r in m["per_episode"] if not r["success"]],
            )
            rows.append(row)
            if on_row is not None:
                on_row(name, row)
    return tables


def number_cell(value: float | None, digits: int) -> str:
    """A table cell: ``value`` with ``digits`` decimals, "-" for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def success_cell(row: Mapping[str, Any], count_solvable: bool = False) -> str:
    """A table cell for a row's success rate; where the expert proved episodes unsolvable (pages
    since 0.32), the rate over the others follows in brackets (``count_solvable``: with their count)."""
    cell = f"{row['success_rate']:.3f}"
    if row.get("unsolvable"):
        solvable = f" of {row['episodes'] - row['unsolvable']} solvable" if count_solvable else ""
        cell += f" ({row['success_rate_solvable']:.3f}{solvable})"
    return cell


def zero_shot_cell(zero_shot: bool | None) -> str:
    """A table cell for a row's zero-shot flag (None: the agent has no checkpoint)."""
    return {True: "**yes**", False: "no", None: "-"}[zero_shot]


def to_markdown(tables: Mapping[str, list[dict[str, Any]]]) -> str:
    """One table per agent; zero-shot rows marked, a summary line under each table."""
    out = ["ms/decision: wall time of each `act` call; agents that play episodes in lockstep (ar, mdlm, mctd) "
           "have a batched `act_batch` call's time divided by the episodes in it. Zero-shot: the env is not among "
           "the checkpoint's training envs (**yes** rows). capped: episodes stopped at `--max-steps` (failures). "
           "unsolvable: episodes the expert proved no plan solves (MiniGrid's ObstructedMaze v0 generator makes "
           "some; failures in success, left out of the success over solvable episodes, in brackets when any). "
           "search ms (mctd): the decisions that ran a search (the others pop a queued action, which is why "
           "mctd's ms/decision is small).",
           ""]
    digests = sorted({(r["checkpoint"], r["checkpoint_sha256_16"]) for rows in tables.values() for r in rows
                      if r.get("checkpoint_sha256_16")})
    if digests:
        out += ["Checkpoints (first 16 hex digits of the file's SHA-256): "
                + ", ".join(f"{name} {digest}" for name, digest in digests) + ".", ""]
    for name, rows in tables.items():
        out += [f"## {name}", "",
                "| env | task | zero-shot | episodes | success | path ratio | mean steps | ms/decision median "
                "| ms/decision p95 | capped | unsolvable | search ms p50 / p95 |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if "skipped" in r:
                out.append(f"| {r['env']} | {r['task']} | | | skipped: {r['skipped']} | | | | | | | |")
                continue
            mark = zero_shot_cell(r["zero_shot"])
            out.append(f"| {r['env']} | {r['task']} | {mark} | {r['episodes']} | {success_cell(r)} | "
                       f"{number_cell(r['path_ratio'], 3)} | {r['mean_steps']:.1f} | "
                       f"{number_cell(r['median_ms_per_decision'], 2)} | "
                       f"{number_cell(r['p95_ms_per_decision'], 2)} | {r.get('capped', 0)} | "
                       f"{r.get('unsolvable', '-')} | "
                       f"{number_cell(r.get('plan_ms_p50'), 0)} / {number_cell(r.get('plan_ms_p95'), 0)} |")
        out += ["", summary_line(rows), ""]
        out += phase_table(rows)
        out += failed_seed_lines(rows)
    return "\n".join(out)


def phase_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines: the mean ms per search of each search phase, for the rows that have them
    (mctd since 0.26; :attr:`agents.mctd.planner.SearchResult.phase_seconds`), else none."""
    timed = [r for r in rows if r.get("mean_phase_ms")]
    if not timed:
        return []
    phases = list(timed[0]["mean_phase_ms"])
    rates = any(r.get("goal_found_rate") is not None for r in timed)  # since 0.33
    extra = " searches with a goal-reaching plan | widened |" if rates else ""
    out = ["Search phases, mean ms per search (the rest of a search: tree selection, model inputs, bookkeeping)"
           + (", and the fractions of searches that found a goal-reaching plan and that grew a second tree with "
              "new first actions (`widen_on_failure`)" if rates else "") + ":", "",
           "| env | " + " | ".join(phases) + " |" + extra, "|---|" + "---|" * (len(phases) + 2 * rates)]
    for r in timed:
        cells = " | ".join(number_cell(r["mean_phase_ms"][p], 1) for p in phases)
        if rates:
            cells += f" | {number_cell(r.get('goal_found_rate'), 3)} | {number_cell(r.get('widened_rate'), 3)}"
        out.append(f"| {r['env']} | {cells} |")
    return out + [""]


def failed_seed_lines(rows: Sequence[dict[str, Any]], limit: int = 20) -> list[str]:
    """Markdown lines: the reset seeds of each row's failed episodes (the first ``limit``), for the
    rows that failed any. To replay episode S exactly, the agent needs the run's seed too (mctd draws
    from it): ``evaluate(make_agent(name, env_id=E, seed=<the run's --seed>), E, 1, S)``."""
    failed = [r for r in rows if r.get("failed_seeds")]
    if not failed:
        return []
    out = ["Failed episodes' reset seeds (replay: `maze_mdlm.evaluation.evaluate(agents.registry.make_agent("
           "name, env_id=E, seed=<the run's --seed>), E, 1, S)`):", ""]
    for r in failed:
        seeds = r["failed_seeds"]
        more = f" (+{len(seeds) - limit} more)" if len(seeds) > limit else ""
        out.append(f"- {r['env']}: " + ", ".join(map(str, seeds[:limit])) + more)
    return out + [""]


def summary_line(rows: Sequence[dict[str, Any]]) -> str:
    """Mean success over all envs that ran, over trained envs and over zero-shot envs."""
    ran = [r for r in rows if "skipped" not in r]
    parts = []
    for label, group in (("all envs", ran), ("trained envs", [r for r in ran if r["zero_shot"] is False]),
                         ("zero-shot envs", [r for r in ran if r["zero_shot"] is True])):
        if group:
            parts.append(f"{label} {np.mean([r['success_rate'] for r in group]):.3f} ({len(group)})")
    skipped = len(rows) - len(ran)
    line = "Mean success: " + (", ".join(parts) if parts else "-")
    return line + (f"; {skipped} envs skipped" if skipped else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), help="agents, one table each")
    parser.add_argument("--envs", nargs="+", default=list(SUPPORTED), help="env ids (default: every supported env)")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                        help=f"episodes per agent and env (default {DEFAULT_EPISODES}; the module docstring "
                             "gives measured run times)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START, help="first evaluation seed")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per rollout")
    parser.add_argument("--batch-envs", type=int, default=DEFAULT_BATCH_ENVS, help="lockstep width of ar / mdlm")
    parser.add_argument("--checkpoint", default=None, help="mdlm and mctd checkpoint for every env (default: shipped)")
    parser.add_argument("--ar-checkpoint", default=None, help="ar checkpoint for every env (default: shipped)")
    parser.add_argument("--held-out", nargs="+", default=None, metavar="ID",
                        help="zero-shot envs, for checkpoints that do not record their training envs")
    parser.add_argument("--mctd-episodes", type=int, default=None,
                        help="episodes per env for mctd (default: --episodes); its searches make it the slowest")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop episodes still running after this many steps, as failures (counted in the "
                             "'capped' column; default: each env's own step limit, up to 3600)")
    parser.add_argument("--mctd-fallback", choices=FALLBACKS, default=None,
                        help="what mctd executes when a search finds no goal-reaching plan (default: the agent's, auto)")
    parser.add_argument("--mctd-escape", type=positive_float, default=None, metavar="T",
                        help="mctd's rollout_escape: a search with no goal-reaching plan and cycled greedy "
                             "continuations is retried with those sampling at temperature T > 0 (default: the "
                             "agent's, off)")
    parser.add_argument("--mctd-no-guess-boxes", action="store_true",
                        help="mctd's guess_boxes off: its searches simulate an opened box as empty, as 0.12 did "
                             "(default on: a closed box holds the key of a locked door of its room whose key is not in sight)")
    parser.add_argument("--mctd-min-expansions", type=positive_int, default=None, metavar="N",
                        help="mctd's min_expansions: a search that reached the goal stops only once N expansions "
                             "are done, so more goal-reaching plans compete and the shortest wins (default: the "
                             "agent's, 11; its max_expansions, 24, still bounds a search)")
    parser.add_argument("--mctd-no-cut-partial", action="store_true",
                        help="mctd's cut_partial off: plans still running after their continuation keep their "
                             "loops when scored and executed, as before 0.20 (default on, where only the agent moves)")
    parser.add_argument("--mctd-no-commit", action="store_true",
                        help="mctd's commit off: a search without a goal-reaching plan executes its own best partial "
                             "plan, as before 0.20 (default on: the partial plan chosen earlier is followed while it "
                             "still leads to cells the episode has not been in)")
    parser.add_argument("--mctd-no-straighten", action="store_true",
                        help="mctd's straighten off: the goal-reaching plan a search returns keeps the detours "
                             "that revisit no cell, as before 0.25 (default on: straight or one-corner walks "
                             "replace them where the grid allows)")
    parser.add_argument("--mctd-goal-execute", type=nonnegative_int, default=None, metavar="K",
                        help="mctd's goal_execute: the first K actions of a goal-reaching plan are executed "
                             "before the next search, which replaces the rest only by a shorter goal-reaching "
                             f"plan; 0: the whole plan, as before 0.29 (default: the agent's, {GOAL_EXECUTE} where "
                             "objects can change (4 in 0.29-0.30), the whole plan where only the agent moves)")
    parser.add_argument("--mctd-research-expansions", type=nonnegative_int, default=None, metavar="N",
                        help="mctd's research_expansions: the expansion budget of a search made while the rest "
                             "of a goal-reaching plan is kept; 0: the usual budget, as in 0.30 (default: the "
                             f"agent's, {RESEARCH_EXPANSIONS} since 0.31)")
    parser.add_argument("--mctd-no-widen", action="store_true",
                        help="mctd's widen_on_failure off: a search whose tree found no goal-reaching plan "
                             "stops there, as before 0.33 (default on where objects can change: it grows a "
                             "second tree whose plans start with a useful action the first tree did not try)")
    parser.add_argument("--name", default="suite", help="results file name")
    parser.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    tables = run(args.agents, args.envs, args.episodes, args.seed, workers=args.workers,
                 checkpoint=args.checkpoint, ar_checkpoint=args.ar_checkpoint, held_out=args.held_out,
                 batch_envs=args.batch_envs, max_steps=args.max_steps,
                 episodes_of=None if args.mctd_episodes is None else {"mctd": args.mctd_episodes},
                 mctd_options=mctd_options(args.mctd_fallback, args.mctd_escape, not args.mctd_no_guess_boxes,
                                           args.mctd_min_expansions, not args.mctd_no_cut_partial,
                                           not args.mctd_no_commit, not args.mctd_no_straighten,
                                           args.mctd_goal_execute, args.mctd_research_expansions,
                                           not args.mctd_no_widen),
                 on_row=lambda name, row: print(f"{name} {row['env']}: success {row['success_rate']:.3f}",
                                                flush=True))
    md = to_markdown(tables)
    print(md)
    write_results(args.name, {"tables": tables}, md, out_dir=args.out_dir, module="suite")


if __name__ == "__main__":
    main()
