"""The full-rules env layer: the oracle on every supported env, expert and collection speed, and
the object dynamics against MiniGrid's ``step``.

    python -m benchmarks.world_rules [--episodes 500] [--collect-episodes 20000] [--batch 64] [--sections ...]

Sections:

* ``oracle``: ``BFSAgent`` (the expert, replanning on mismatch) on every env of
  :data:`envs.registry.SUPPORTED`, held-out seeds from 1,000,000: success, path ratio, mean
  optimal length, step limit, and the expert's states expanded per episode.
* ``collect``: expert episodes/s per env (one process, ``collect`` itself, plans replayed in the
  env), and the wall time of ``collect`` on DoorKey-8x8 with 2 workers.
* ``dynamics``: :func:`envs.world.world_step` and the batched :func:`envs.dynamics.simulate_world`
  against MiniGrid's ``env.step`` on the same action sequences (half of them object actions),
  checked to end in the same states.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers our envs)
from agents.baselines import BFSAgent
from benchmarks.common import write_results
from envs.collect import collect
from envs.dynamics import simulate_world
from envs.expert import MAX_EXPANSIONS, ExpertBudgetError, solve_state
from envs.registry import SUPPORTED, lookup
from envs.rules import useful_actions
from envs.seeds import EVAL_SEED_START
from envs.tasks import parse_mission
from envs.world import RUNNING, state_from_env, world_step
from maze_mdlm.evaluation import evaluate

OBJECT_WORLDS = ("MiniGrid-DoorKey-8x8-v0", "MiniGrid-KeyCorridorS6R3-v0", "MiniGrid-ObstructedMaze-2Dlhb-v0",
                 "MiniGrid-BlockedUnlockPickup-v0", "MiniGrid-PutNear-8x8-N3-v0", "MiniGrid-MultiRoom-N6-v0")


def oracle(episodes: int, env_ids: Sequence[str], heavy_episodes: int | None = None) -> list[dict[str, Any]]:
    """The oracle on each env: success, path ratio, optimal length, step limit (``heavy_episodes``
    for the ObstructedMaze family, whose expert takes up to seconds per start)."""
    rows = []
    for env_id in env_ids:
        spec = lookup(env_id)
        n = heavy_episodes if heavy_episodes is not None and "ObstructedMaze" in env_id else episodes
        metrics = evaluate(BFSAgent(), env_id, n, EVAL_SEED_START)
        rows.append({"env": env_id, "size": f"{spec.width}x{spec.height}", "task": spec.task_name,
                     "max_steps": spec.max_steps, "episodes": n, "success_rate": metrics["success_rate"],
                     "path_ratio": metrics["path_ratio"], "mean_optimal_steps": metrics["mean_optimal_steps"],
                     "seconds": metrics["seconds"]})
    return rows


def collect_speed(episodes: int, env_ids: Sequence[str], big_env: str, big_episodes: int,
                  heavy_episodes: int | None = None) -> dict[str, Any]:
    """Expert episodes/s per env (1 process) and one timed 2-worker collection of ``big_env``."""
    rows = []
    for env_id in env_ids:
        n = heavy_episodes if heavy_episodes is not None and "ObstructedMaze" in env_id else episodes
        start = time.perf_counter()
        data = collect([env_id], n, seed=0, workers=1)
        seconds = time.perf_counter() - start
        rows.append({"env": env_id, "episodes": n, "episodes_per_s": n / seconds,
                     "mean_length": float(data.lengths.mean())})
    start = time.perf_counter()
    collect([big_env], big_episodes, seed=0, workers=2)
    return {"rows": rows, "big": {"env": big_env, "episodes": big_episodes, "workers": 2,
                                  "seconds": time.perf_counter() - start}}


def _action_sequences(env_id: str, episodes: int, length: int) -> list[tuple]:
    """Start states and action sequences: half random, half among the actions that change the state."""
    env = gym.make(env_id, disable_env_checker=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(episodes):
        env.reset(seed=EVAL_SEED_START + i)
        state = state_from_env(env)
        task = parse_mission(env.unwrapped.mission).bind(state.layout)
        start, actions = state, []
        for _ in range(length):
            useful = [a for a, _ in useful_actions(state, task)]
            action = int(rng.choice(useful)) if useful and rng.random() < 0.5 else int(rng.integers(0, 7))
            state, status = world_step(state, action, task)
            actions.append(action)
            if status != RUNNING:
                break
        out.append((EVAL_SEED_START + i, start, task, actions))
    env.close()
    return out


def dynamics_speed(env_ids: Sequence[str], episodes: int, length: int, batch: int) -> list[dict[str, Any]]:
    """Steps/s of MiniGrid, of ``world_step`` and of ``simulate_world`` (``batch`` plans at once)."""
    rows = []
    for env_id in env_ids:
        seqs = _action_sequences(env_id, episodes, length)
        steps = sum(len(a) for *_, a in seqs)
        env = gym.make(env_id, disable_env_checker=True)
        start = time.perf_counter()
        finals = []
        for seed, _, _, actions in seqs:
            env.reset(seed=seed)
            for action in actions:
                env.step(action)
            base = env.unwrapped
            finals.append((int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir)))
        minigrid_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = []
        for _, state, task, actions in seqs:
            for action in actions:
                state, _ = world_step(state, action, task)
            ours.append(state.pose)
        step_s = time.perf_counter() - start
        assert ours == finals, f"world_step disagrees with MiniGrid on {env_id}"
        start = time.perf_counter()
        for _, state, task, actions in seqs:
            plans = np.tile(np.asarray(actions, dtype=np.int64), (batch, 1))
            simulate_world(state, plans, task)
        batch_s = time.perf_counter() - start
        rows.append({"env": env_id, "steps": steps, "minigrid_steps_per_s": steps / minigrid_s,
                     "world_step_per_s": steps / step_s, "batched_steps_per_s": batch * steps / batch_s,
                     "batch": batch})
    env.close()
    return rows


def expert_effort(env_ids: Sequence[str], episodes: int) -> list[dict[str, Any]]:  # noqa: C901
    """States the expert expands and its ms per start, mean and max over seeds (what bounds it)."""
    rows = []
    for env_id in env_ids:
        env = gym.make(env_id, disable_env_checker=True)
        expansions, times, over = [], [], 0
        for i in range(episodes):
            env.reset(seed=EVAL_SEED_START + i)
            state = state_from_env(env)
            task = parse_mission(env.unwrapped.mission).bind(state.layout)
            start = time.perf_counter()
            try:
                expansions.append(solve_state(state, task).expansions)
            except ExpertBudgetError:  # counted, and the budget is its expansion count
                over += 1
                expansions.append(MAX_EXPANSIONS)
            times.append(time.perf_counter() - start)
        rows.append({"env": env_id, "episodes": episodes, "over_budget": over,
                     "mean_expansions": float(np.mean(expansions)),
                     "max_expansions": int(np.max(expansions)), "mean_ms": 1000 * float(np.mean(times)),
                     "max_ms": 1000 * float(np.max(times))})
        env.close()
    return rows


def to_markdown(results: dict[str, Any]) -> str:
    md = []
    if "oracle" in results:
        md.append("## Oracle (BFSAgent = the expert) on every supported env\n")
        md.append("| env | grid | task | step limit | episodes | success | path ratio | mean optimal steps | seconds |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        md += [f"| {r['env']} | {r['size']} | {r['task']} | {r['max_steps']} | {r['episodes']} | "
               f"{r['success_rate']:.3f} | {r['path_ratio']:.3f} | {r['mean_optimal_steps']:.1f} | {r['seconds']:.1f} |"
               for r in results["oracle"]]
    if "effort" in results:
        md.append("\n## Expert effort per start (A*, states expanded)\n")
        md.append("| env | starts | over budget | mean expansions | max expansions | mean ms | max ms |")
        md.append("|---|---|---|---|---|---|---|")
        md += [f"| {r['env']} | {r['episodes']} | {r['over_budget']} | {r['mean_expansions']:.0f} | "
               f"{r['max_expansions']} | {r['mean_ms']:.1f} | {r['max_ms']:.0f} |" for r in results["effort"]]
    if "collect" in results:
        c = results["collect"]
        md.append("\n## Collection speed (`collect`, 1 process, plans replayed in the env)\n")
        md.append("| env | episodes | episodes/s | mean plan length |\n|---|---|---|---|")
        md += [f"| {r['env']} | {r['episodes']} | {r['episodes_per_s']:.0f} | {r['mean_length']:.1f} |" for r in c["rows"]]
        b = c["big"]
        md.append(f"\n`collect` of {b['episodes']} {b['env']} episodes with {b['workers']} workers: "
                  f"{b['seconds']:.1f} s.")
    if "dynamics" in results:
        md.append("\n## Object dynamics against MiniGrid's `step`, same actions (same run)\n")
        md.append("| env | steps | MiniGrid steps/s | world_step steps/s | ratio | simulate_world steps/s (B) | ratio |")
        md.append("|---|---|---|---|---|---|---|")
        md += [f"| {r['env']} | {r['steps']} | {r['minigrid_steps_per_s']:.0f} | {r['world_step_per_s']:.0f} | "
               f"{r['world_step_per_s'] / r['minigrid_steps_per_s']:.2f}x | {r['batched_steps_per_s']:.0f} ({r['batch']}) | "
               f"{r['batched_steps_per_s'] / r['minigrid_steps_per_s']:.1f}x |" for r in results["dynamics"]]
    return "\n".join(md) + "\n"


def run(episodes: int = 500, env_ids: Sequence[str] | None = None, sections: Sequence[str] = ("oracle", "effort", "collect", "dynamics"),
        collect_episodes: int = 200, big_episodes: int = 20000, dyn_episodes: int = 50, dyn_length: int = 60,
        batch: int = 64, effort_episodes: int = 100, heavy_episodes: int | None = None) -> dict[str, Any]:
    env_ids = list(env_ids or SUPPORTED)
    results: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if "oracle" in sections:
            results["oracle"] = oracle(episodes, env_ids, heavy_episodes)
        if "effort" in sections:
            results["effort"] = expert_effort(env_ids, effort_episodes)
        if "collect" in sections:
            results["collect"] = collect_speed(collect_episodes, env_ids, "MiniGrid-DoorKey-8x8-v0", big_episodes,
                                               heavy_episodes and max(1, heavy_episodes // 5))
        if "dynamics" in sections:
            objects = [e for e in OBJECT_WORLDS if e in env_ids] or env_ids[:1]
            results["dynamics"] = dynamics_speed(objects, dyn_episodes, dyn_length, batch)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=500, help="oracle episodes per env")
    parser.add_argument("--heavy-episodes", type=int, default=None,
                        help="oracle episodes for the ObstructedMaze family (default: --episodes)")
    parser.add_argument("--envs", nargs="+", default=None, help="env ids (default: the whole registry)")
    parser.add_argument("--sections", nargs="+", default=["oracle", "effort", "collect", "dynamics"])
    parser.add_argument("--collect-episodes", type=int, default=200, help="episodes per env for collect speed")
    parser.add_argument("--big-episodes", type=int, default=20000, help="DoorKey-8x8 episodes, 2 workers")
    parser.add_argument("--effort-episodes", type=int, default=100, help="starts per env for the expert effort")
    parser.add_argument("--batch", type=int, default=64, help="plans per simulate_world call in the dynamics section")
    parser.add_argument("--name", default="world_rules", help="results file name")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    results = run(args.episodes, args.envs, args.sections, args.collect_episodes, args.big_episodes,
                  batch=args.batch, effort_episodes=args.effort_episodes, heavy_episodes=args.heavy_episodes)
    md = to_markdown(results)
    print(md)
    write_results(args.name, results, md, module="world_rules")


if __name__ == "__main__":
    main()
