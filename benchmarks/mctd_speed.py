"""MCTD benchmarks: parallel speed-up and meta-action families.

1. **Parallel speed-up** (:func:`parallel_speed`): expansions per second of one search at
   K = 1, 8, 32 leaves per batched round, every K doing the same number of expansions
   (early stop off), from the start states of a few maze seeds. Ratio vs K=1.
2. **Meta-action families** (:func:`meta_action_success`): closed-loop episodes on the maze
   and on FourRooms with temperature meta-actions vs classifier-free-guidance meta-actions at
   the same expansion budget; reports success rate, successes per 1000 expansions and the
   path ratio (steps over BFS-optimal steps, measured after the fact).

    python -m benchmarks.mctd_speed [--checkpoint PATH] [--threads N] [--expansions N]
                                    [--meta-episodes N] [--meta-envs ID ...] [--out-dir DIR]

Without ``--checkpoint`` each env uses its shipped checkpoint if present, else an untrained
tiny model (and says so in its output). Results go to ``DIR/mctd_speed.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from agents.base import parse_observation
from agents.mctd.agent import MCTDAgent
from agents.mctd.planner import MCTDConfig, MCTDPlanner
from envs import FOURROOMS_ID, MAZE_ID
from envs.collect import make_env
from envs.expert import solve
from envs.observation import FullGridObsWrapper, env_pose, layout_of
from envs.seeds import EVAL_SEED_START
from maze_mdlm.checkpoint import load_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy

TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2)


def load_model(checkpoint: str | Path | None, env_id: str = MAZE_ID) -> tuple[MDLMPolicy, str, int]:
    """``(model, description, horizon)``: ``checkpoint``, else the checkpoint shipped for
    ``env_id``, else an untrained tiny model (seeded, so runs are comparable)."""
    if checkpoint is None:
        from maze_mdlm.shipped import default_checkpoint

        try:
            checkpoint = default_checkpoint(env_id)
        except ValueError:
            torch.manual_seed(0)
            return MDLMPolicy(TINY).eval(), f"UNTRAINED tiny model (no shipped checkpoint for {env_id})", 32
    model, ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["model_config"]
    desc = (f"checkpoint {checkpoint} (step {ckpt['step']}, hidden_dim {cfg['hidden_dim']}, "
            f"{cfg['num_layers']} layers)")
    return model, desc, int(ckpt.get("train_config", {}).get("horizon", 32))


def start_observations(env_id: str, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Full-grid observations at reset for each seed."""
    env = FullGridObsWrapper(make_env(env_id))
    out = [env.reset(seed=int(s))[0] for s in seeds]
    env.close()
    return out


def parallel_speed(model: MDLMPolicy, ks: Sequence[int] = (1, 8, 32), expansions: int = 64,
                   seeds: Sequence[int] = tuple(range(EVAL_SEED_START, EVAL_SEED_START + 3)),
                   env_id: str = MAZE_ID, horizon: int = 32, max_steps: int = 722, repeats: int = 3,
                   **config: Any) -> dict[str, Any]:
    """Expansions per second of a search at each K, all at ``expansions`` expansions.

    One untimed warm-up search per K, then ``repeats`` passes, each timing one search per seed
    for every K in turn (interleaved, so a slow spell of a shared machine hits every K); a K's
    time is the median pass. Returns ``{"rows": [{k, expansions, rounds, seconds,
    expansions_per_s, ms_per_search, phase_ms (per search: denoise / continue / score),
    rollout_calls (per search), ratio_vs_k1}]}``; ratios are against the first K given.
    """
    observations = [parse_observation(obs) for obs in start_observations(env_id, seeds)]
    planners = {}
    for k in ks:
        cfg = MCTDConfig(horizon=horizon, parallel=k, max_expansions=expansions, early_stop=False, **config)
        planners[k] = MCTDPlanner(model, cfg, torch.Generator().manual_seed(0))
        image, layout, pose = observations[0]
        planners[k].search(image, layout, pose, max_steps)  # warm-up
    passes: dict[int, list[list[Any]]] = {k: [] for k in ks}
    for _ in range(repeats):
        for k in ks:
            passes[k].append([planners[k].search(image, layout, pose, max_steps) for image, layout, pose in observations])
    rows = []
    n = len(observations)
    for k in ks:
        results = sorted(passes[k], key=lambda run: sum(r.seconds for r in run))[(repeats - 1) // 2]  # median pass
        seconds = sum(r.seconds for r in results)
        done = sum(r.expansions for r in results)
        rows.append({"k": k, "expansions": done, "rounds": sum(r.rounds for r in results), "seconds": seconds,
                     "expansions_per_s": done / seconds, "ms_per_search": 1000 * seconds / n,
                     "phase_ms": {p: 1000 * sum(r.phase_seconds[p] for r in results) / n
                                  for p in ("denoise", "continue", "score")},
                     "rollout_calls": sum(r.stats["rollout_calls"] for r in results) / n})
    for row in rows:
        row["ratio_vs_k1"] = row["expansions_per_s"] / rows[0]["expansions_per_s"]
        row["phase_ratio_vs_k1"] = {p: rows[0]["phase_ms"][p] / max(row["phase_ms"][p], 1e-9) for p in row["phase_ms"]}
    return {"expansions_per_search": expansions, "seeds": list(seeds), "repeats": repeats, "rows": rows}


def run_episode(agent: MCTDAgent, env: Any, seed: int, step_cap: int | None = None) -> dict[str, Any]:
    """One closed-loop episode; ``step_cap`` stops it early (counted as a failure). Records the
    BFS-optimal length of the episode (for the path ratio; the agent never sees it)."""
    obs, info = env.reset(seed=seed)
    optimal = solve(layout_of(obs["image"]), env_pose(env.unwrapped))
    agent.reset(obs, info)
    before = len(agent.records)
    steps, success, done = 0, False, False
    while not done and (step_cap is None or steps < step_cap):
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        steps += 1
        done = terminated or truncated
        success = bool(terminated and reward > 0)
    recs = agent.records[before:]
    return {"seed": seed, "success": success, "steps": steps,
            "optimal_steps": len(optimal) if optimal.solvable else None, "decisions": len(recs),
            "expansions": int(sum(r["expansions"] for r in recs)),
            "plan_ms": [r["plan_ms"] for r in recs], "found_goal": [r["found_goal"] for r in recs]}


def meta_action_success(model: MDLMPolicy, families: Sequence[str] = ("temperature", "cfg"),
                        seeds: Sequence[int] = tuple(range(EVAL_SEED_START, EVAL_SEED_START + 5)),
                        env_id: str = MAZE_ID, max_expansions: int = 32, horizon: int = 32,
                        step_cap: int | None = None, **config: Any) -> dict[str, Any]:
    """Closed-loop success per meta-action family at the same expansion budget.

    Per family: ``success_rate``, ``successes_per_1k_expansions`` (successes divided by all
    expansions spent in all episodes), ``mean_expansions_per_episode``,
    ``goal_found_rate`` (searches that found a goal-reaching plan), ``mean_steps``,
    ``path_ratio`` (mean over successful episodes of steps / BFS-optimal steps) and
    ``median_plan_ms``. Each family gets a fresh agent with seed 0.
    """
    env = FullGridObsWrapper(make_env(env_id))
    out: dict[str, Any] = {"max_expansions": max_expansions, "seeds": list(seeds), "step_cap": step_cap,
                           "families": {}}
    for family in families:
        agent = MCTDAgent(model, max_steps=env.unwrapped.max_steps, seed=0, horizon=horizon,
                          meta_actions=family, max_expansions=max_expansions, **config)
        episodes = [run_episode(agent, env, int(s), step_cap) for s in seeds]
        expansions = sum(e["expansions"] for e in episodes)
        successes = sum(e["success"] for e in episodes)
        plan_ms = [ms for e in episodes for ms in e["plan_ms"]]
        found = [f for e in episodes for f in e["found_goal"]]
        ratios = [e["steps"] / e["optimal_steps"] for e in episodes if e["success"] and e["optimal_steps"]]
        out["families"][family] = {
            "meta_table": agent.config.meta_table(),
            "success_rate": successes / len(episodes),
            "successes_per_1k_expansions": 1000.0 * successes / max(expansions, 1),
            "mean_expansions_per_episode": expansions / len(episodes),
            "mean_steps": float(np.mean([e["steps"] for e in episodes])),
            "path_ratio": float(np.mean(ratios)) if ratios else None,
            "goal_found_rate": float(np.mean(found)) if found else 0.0,
            "median_plan_ms": float(np.median(plan_ms)) if plan_ms else 0.0,
            "per_episode": [{k: e[k] for k in ("seed", "success", "steps", "optimal_steps", "decisions", "expansions")}
                            for e in episodes],
        }
    env.close()
    return out


def run_benchmark(checkpoint: str | Path | None = None, ks: Sequence[int] = (1, 8, 32), expansions: int = 64,
                  speed_seeds: int = 3, meta_episodes: int = 5, budget: int | None = None,
                  step_cap: int | None = None, env_id: str = MAZE_ID, repeats: int = 3,
                  meta_envs: Sequence[str] = (MAZE_ID, FOURROOMS_ID)) -> dict[str, Any]:
    """Both benchmarks; returns a JSON-ready dict (with torch version and threads).

    The speed test runs on ``env_id``; the meta-action comparison on each of ``meta_envs``,
    with ``checkpoint`` or else the checkpoint shipped for that env."""
    model, desc, horizon = load_model(checkpoint)
    budget = budget if budget is not None else MCTDConfig().max_expansions
    meta = {}
    for meta_env in meta_envs:
        meta_model, meta_desc, meta_horizon = (model, desc, horizon) if checkpoint is not None or meta_env == env_id \
            else load_model(None, meta_env)
        seeds = tuple(range(EVAL_SEED_START, EVAL_SEED_START + meta_episodes))
        meta[meta_env] = {"model": meta_desc, **meta_action_success(
            meta_model, seeds=seeds, env_id=meta_env, max_expansions=budget, horizon=meta_horizon, step_cap=step_cap)}
    return {
        "model": desc,
        "env": env_id,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "defaults": MCTDConfig().to_dict(),
        "parallel": parallel_speed(model, ks, expansions,
                                   tuple(range(EVAL_SEED_START, EVAL_SEED_START + speed_seeds)), env_id, horizon,
                                   repeats=repeats),
        "meta_actions": meta,
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown report."""
    par, meta = results["parallel"], results["meta_actions"]  # meta: env id -> comparison
    lines = [
        "# MCTD benchmark",
        "",
        f"- command: `{results.get('command', '')}`",
        f"- model: {results['model']}",
        *([f"- note: {results['note']}"] if results.get("note") else []),
        f"- env: {results['env']}; torch {results['torch']}, {results['threads']} threads, {results['processor']}",
        "",
        f"## Parallel rounds: {par['expansions_per_search']} expansions per search, early stop off, "
        f"{len(par['seeds'])} start states, median of {par.get('repeats', 1)} interleaved passes",
        "",
        "Phases (ms per search, and K=1's time over this K's): denoise = expansion + jumpy simulation "
        "(batched over the K rows), continue = greedy policy continuation (rollout decodes are "
        "sequential along each plan and memoised by pose in both), score = dynamics, shortcut, backup.",
        "",
        "| K | expansions | rounds | ms / search | expansions/s | vs K=1 | denoise | continue | score "
        "| rollout decodes / search |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in par["rows"]:
        ph, pr = r["phase_ms"], r["phase_ratio_vs_k1"]
        phases = " | ".join(f"{ph[p]:.0f} ({pr[p]:.1f}x)" for p in ("denoise", "continue", "score"))
        lines.append(f"| {r['k']} | {r['expansions']} | {r['rounds']} | {r['ms_per_search']:.1f} | "
                     f"{r['expansions_per_s']:.0f} | {r['ratio_vs_k1']:.2f}x | {phases} | {r['rollout_calls']:.1f} |")
    for env_id, m in meta.items():
        lines += [
            "",
            f"## Meta-action families on {env_id}: closed loop, {len(m['seeds'])} episodes from seed "
            f"{m['seeds'][0]}, budget {m['max_expansions']} expansions per decision"
            + (f", step cap {m['step_cap']}" if m["step_cap"] else ""),
            "",
            f"Model: {m.get('model', results['model'])}",
            "",
            "| family | (temperature, w) per meta-action | success | successes / 1k expansions | "
            "expansions / episode | searches that found the goal | mean steps | path ratio | median plan ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, f in m["families"].items():
            table = ", ".join(f"({t:g}, {w:g})" for t, w in f["meta_table"])
            ratio = "-" if f["path_ratio"] is None else f"{f['path_ratio']:.3f}"
            lines.append(f"| {name} | {table} | {f['success_rate']:.3f} | {f['successes_per_1k_expansions']:.2f} | "
                         f"{f['mean_expansions_per_episode']:.1f} | {f['goal_found_rate']:.2f} | "
                         f"{f['mean_steps']:.1f} | {ratio} | {f['median_plan_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``mctd_speed.json`` and ``mctd_speed.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "mctd_speed.json", out / "mctd_speed.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(to_markdown(results))
    return json_path, md_path


def main(argv: list[str] | None = None) -> None:
    """CLI entry: run both benchmarks, print the Markdown report, write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None,
                        help="model checkpoint (default: shipped maze checkpoint, else an untrained tiny model)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1, as MCTDAgent plans; 0 = torch's own)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32], help="leaves per round to compare")
    parser.add_argument("--expansions", type=int, default=64, help="expansions per search in the speed test")
    parser.add_argument("--speed-seeds", type=int, default=3, help="start states in the speed test")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing passes in the speed test (median)")
    parser.add_argument("--meta-episodes", type=int, default=5, help="episodes per meta-action family and env")
    parser.add_argument("--meta-envs", nargs="+", default=[MAZE_ID, FOURROOMS_ID],
                        help="envs of the meta-action comparison")
    parser.add_argument("--budget", type=int, default=None, help="expansions per decision (default: MCTDConfig's)")
    parser.add_argument("--step-cap", type=int, default=None, help="stop an episode after N steps (default: env's)")
    parser.add_argument("--out-dir", default="benchmarks/results", help="where to write mctd_speed.{md,json}")
    parser.add_argument("--note", default="",
                        help="free text recorded in the report (e.g. how the checkpoint was made)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = run_benchmark(args.checkpoint, tuple(args.ks), args.expansions, args.speed_seeds,
                            args.meta_episodes, args.budget, args.step_cap, repeats=args.repeats,
                            meta_envs=tuple(args.meta_envs))
    results["command"] = " ".join(["python -m benchmarks.mctd_speed", *(sys.argv[1:] if argv is None else argv)])
    results["seconds"] = time.perf_counter() - start
    if args.note:
        results["note"] = args.note
    paths = write_results(results, args.out_dir)
    print(to_markdown(results))
    print("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
