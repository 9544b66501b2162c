"""Issue 11's targets, checked on ``benchmarks.suite`` pages: their rows merged, one table per agent.

    python -m benchmarks.suite_targets benchmarks/results/suite_mctd500_nav.json \\
        benchmarks/results/suite_mctd500_doors.json ... --name suite500_targets

At the issue's 500 episodes per env the suite runs in parts on two cores (``benchmarks.suite
--envs ...``, one page each). This reads their JSON files, merges the rows of each agent (an env
may appear once per agent: a second row is an error, not a silent pick, unless ``--override``,
where a later page's row replaces the earlier one and the page lists every replacement, as for
the envs whose shipped default is a per-env model rather than the generalist) and checks every
row against the targets:

* mctd: success >= 0.99 and path ratio <= 1.10 on every trained env, success >= 0.90 on every
  zero-shot env, search time (the decisions that searched) median <= 100 ms and p95 <= 250 ms;
* mdlm: success >= 0.95 on every trained env;
* ar and bfs are reported beside them, with no target.

The page lists, per target, how many rows meet it and every row that does not, with its value;
rows of skipped envs (no checkpoint) count as misses. Then (0.27) every agent side by side, one
row per env (success and path ratio of each), under a summary per agent (mean success and how many
rows reach 0.99 / 0.95, trained and zero-shot envs apart, and the mean path ratio): the table the
README's Results section shows. It names each source page with its command and git commit, so every
number stays traceable to the run that made it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from benchmarks.common import write_results
from benchmarks.suite import number_cell, success_cell, zero_shot_cell


class Target(NamedTuple):
    """One target: the rows it applies to, the value it reads and the bound that value must meet."""

    agent: str
    label: str
    applies: Callable[[dict[str, Any]], bool]  # row -> is the target about this row?
    value: Callable[[dict[str, Any]], float | None]  # row -> the value checked (None: missing)
    ok: Callable[[float], bool]


def _trained(row: dict[str, Any]) -> bool:
    return row.get("zero_shot") is not True


def _zero_shot(row: dict[str, Any]) -> bool:
    return row.get("zero_shot") is True


TARGETS = (
    Target("mctd", "success >= 0.99 (trained)", _trained, lambda r: r.get("success_rate"), lambda v: v >= 0.99),
    Target("mctd", "path ratio <= 1.10 (trained)", _trained, lambda r: r.get("path_ratio"), lambda v: v <= 1.10),
    Target("mctd", "success >= 0.90 (zero-shot)", _zero_shot, lambda r: r.get("success_rate"), lambda v: v >= 0.90),
    Target("mctd", "search ms median <= 100", lambda r: True, lambda r: r.get("plan_ms_p50"), lambda v: v <= 100),
    Target("mctd", "search ms p95 <= 250", lambda r: True, lambda r: r.get("plan_ms_p95"), lambda v: v <= 250),
    Target("mdlm", "success >= 0.95 (trained)", _trained, lambda r: r.get("success_rate"), lambda v: v >= 0.95),
)


class PageError(ValueError):
    """A source page that cannot be read, or rows that cannot be merged."""


def load_pages(paths: Sequence[str | Path], override: bool = False
               ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], list[str]]:
    """Read suite JSON pages and merge their tables.

    With ``override`` a later page's row for an agent and env replaces the earlier one in place.

    Returns:
        (tables: agent -> rows in page order, each row with ``page`` (its page's name) added;
        sources: one ``{"page", "command", "git_commit"}`` per page;
        replaced: one ``"agent env: old page -> new page"`` per replacement).

    Raises:
        PageError: a missing or malformed file, a page with no suite tables, or (without
            ``override``) one env twice for one agent.
    """
    tables: dict[str, dict[str, dict[str, Any]]] = {}  # agent -> env -> row (insertion order kept)
    sources, replaced = [], []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            page_tables = payload["results"]["tables"]
            name = payload.get("benchmark", Path(path).stem)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PageError(f"{path}: not a benchmarks.suite JSON page ({type(exc).__name__}: {exc})") from None
        if not isinstance(page_tables, dict) or not page_tables:
            raise PageError(f"{path}: the page has no suite tables")
        sources.append({"page": name, "command": payload.get("command"),
                        "git_commit": (payload.get("machine") or {}).get("git_commit")})
        for agent, rows in page_tables.items():
            rows_of = tables.setdefault(agent, {})
            for row in rows:
                earlier = rows_of.get(row["env"])
                if earlier is not None and not override:
                    raise PageError(f"{agent} {row['env']} is in both {earlier['page']} and {name} "
                                    "(--override: the later wins)")
                if earlier is not None:
                    replaced.append(f"{agent} {row['env']}: {earlier['page']} -> {name}")
                rows_of[row["env"]] = {**row, "page": name}  # a replaced row keeps its place
    return {agent: list(rows.values()) for agent, rows in tables.items()}, sources, replaced


def check(tables: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Check every target whose agent has a table.

    Returns one ``{"agent", "target", "rows", "met", "missed": [(env, value or None)]}`` per target;
    a skipped row or a row without the value (a path ratio with no success) is a miss.
    """
    out = []
    for target in TARGETS:
        rows = [r for r in tables.get(target.agent, []) if target.applies(r)]
        missed = []
        for r in rows:
            value = None if "skipped" in r else target.value(r)
            if value is None or not target.ok(value):
                missed.append((r["env"], value))
        if rows:
            out.append({"agent": target.agent, "target": target.label, "rows": len(rows),
                        "met": len(rows) - len(missed), "missed": missed})
    return out


AGENT_ORDER = ("bfs", "ar", "mdlm", "mctd")  # side-by-side column order; other agents follow


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One agent's rows summed up: ``{"trained", "zero_shot"}``, each ``{"rows", "mean_success",
    "at_0.99", "at_0.95", "mean_path_ratio"}`` (a mean is None where there is no row, or no path
    ratio). Skipped rows count in ``rows`` with success 0 and no path ratio."""
    out: dict[str, Any] = {}
    for part, applies in (("trained", _trained), ("zero_shot", _zero_shot)):
        chosen = [r for r in rows if applies(r)]
        success = [0.0 if "skipped" in r else float(r["success_rate"]) for r in chosen]
        paths = [float(r["path_ratio"]) for r in chosen if "skipped" not in r and r.get("path_ratio") is not None]
        out[part] = {"rows": len(chosen),
                     "mean_success": sum(success) / len(success) if success else None,
                     "at_0.99": sum(v >= 0.99 for v in success), "at_0.95": sum(v >= 0.95 for v in success),
                     "mean_path_ratio": sum(paths) / len(paths) if paths else None}
    return out


def side_by_side(tables: Mapping[str, list[dict[str, Any]]], summaries: Mapping[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: each agent's :func:`summary` (``summaries``), then one row per env (in the
    order the envs first appear in the pages) with each agent's success and path ratio ("-" where
    the agent has no row); an agent that plays an env zero-shot has its cell marked with *."""
    agents = [a for a in AGENT_ORDER if a in tables] + [a for a in tables if a not in AGENT_ORDER]
    out = ["## Side by side", "", "| agent | trained envs | mean success | at >= 0.99 | at >= 0.95 | "
           "mean path ratio | zero-shot envs | zero-shot mean success |", "|---|---|---|---|---|---|---|---|"]
    for agent in agents:
        t, z = summaries[agent]["trained"], summaries[agent]["zero_shot"]
        out.append(f"| {agent} | {t['rows']} | {number_cell(t['mean_success'], 3)} | {t['at_0.99']} | "
                   f"{t['at_0.95']} | {number_cell(t['mean_path_ratio'], 3)} | {z['rows']} | "
                   f"{number_cell(z['mean_success'], 3)} |")
    envs: dict[str, None] = {}
    for rows in tables.values():  # page order: the first page's agent gives the env order
        envs.update((r["env"], None) for r in rows)
    by_agent = {agent: {r["env"]: r for r in tables[agent]} for agent in agents}
    out += ["", "Success / path ratio per env (* zero-shot for that agent's checkpoint):", "",
            "| env | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
    for env in envs:
        cells = []
        for agent in agents:
            r = by_agent[agent].get(env)
            if r is None:
                cells.append("-")
            elif "skipped" in r:
                cells.append("skipped")
            else:
                mark = "*" if r.get("zero_shot") is True else ""
                cells.append(f"{r['success_rate']:.3f}{mark} / {number_cell(r.get('path_ratio'), 3)}")
        out.append(f"| {env} | " + " | ".join(cells) + " |")
    return out


def to_markdown(tables: Mapping[str, list[dict[str, Any]]], checks: Sequence[dict[str, Any]],
                sources: Sequence[dict[str, Any]], replaced: Sequence[str] = (),
                summaries: Mapping[str, dict[str, Any]] | None = None) -> str:
    """Targets first (met / rows, then each miss), then the merged tables, then every agent side by
    side (:func:`side_by_side`; ``summaries`` as :func:`summary` gives them, computed if None), then
    the source pages and the rows a later page replaced."""
    out = ["## Targets", "", "| agent | target | met | missed (value) |", "|---|---|---|---|"]
    for c in checks:
        missed = ", ".join(f"{env} ({number_cell(v, 3)})" for env, v in c["missed"]) or "none"
        out.append(f"| {c['agent']} | {c['target']} | {c['met']} of {c['rows']} | {missed} |")
    if not checks:
        out.append("| - | no mctd or mdlm rows | | |")
    for agent, rows in tables.items():
        out += ["", f"## {agent}", "",
                "| env | zero-shot | checkpoint | episodes | success | path ratio | capped "
                "| search ms p50 / p95 | page |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            mark = zero_shot_cell(r.get("zero_shot"))
            if "skipped" in r:
                out.append(f"| {r['env']} | {mark} | | | skipped: {r['skipped']} | | | | {r['page']} |")
                continue
            out.append(f"| {r['env']} | {mark} | {r.get('checkpoint', '-')} | {r['episodes']} | "
                       f"{success_cell(r, count_solvable=True)} | {number_cell(r['path_ratio'], 3)} | "
                       f"{r.get('capped', 0)} | "
                       f"{number_cell(r.get('plan_ms_p50'), 0)} / {number_cell(r.get('plan_ms_p95'), 0)} | "
                       f"{r['page']} |")
    if summaries is None:
        summaries = {agent: summary(rows) for agent, rows in tables.items()}
    out += ["", *side_by_side(tables, summaries)]
    out += ["", "## Source pages", ""]
    out += [f"- `{s['page']}` (commit {s['git_commit']}): `{s['command']}`" for s in sources]
    if replaced:
        out += ["", "Rows replaced by a later page (`--override`): " + "; ".join(replaced) + "."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="+", help="benchmarks.suite JSON pages to merge")
    parser.add_argument("--override", action="store_true",
                        help="a later page's row for the same agent and env replaces the earlier one (listed on "
                             "the page); without it a repeated env is an error")
    parser.add_argument("--name", default="suite_targets", help="results file name")
    parser.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    try:
        tables, sources, replaced = load_pages(args.pages, args.override)
    except PageError as exc:
        print(f"suite_targets: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    checks = check(tables)
    summaries = {agent: summary(rows) for agent, rows in tables.items()}
    md = to_markdown(tables, checks, sources, replaced, summaries)
    print(md)
    write_results(args.name, {"tables": tables, "targets": checks, "summaries": summaries, "sources": sources,
                              "replaced": replaced}, md,
                  out_dir=args.out_dir, module="suite_targets")


if __name__ == "__main__":
    main()
