"""What the episode's continuation memo saves: MCTD with and without it, episode by episode.

An :class:`agents.mctd.MCTDAgent` keeps the greedy continuation windows its searches decode in
the episode's :class:`agents.mctd.rollout.ContinuationMemo`, so later searches replay them
instead of decoding them again. This benchmark plays the same episodes (same seeds, same agent
seed) with the memo and without it (every search decodes its own windows, as before 0.11), the
two arms interleaved episode by episode so that machine noise hits both alike, on one thread.

Per env it reports success, how many episodes sent exactly the same actions in both arms, the
search time (p50 / p95 over the decisions that searched) and the policy decodes per search
(batched calls and decoded windows).

    python -m benchmarks.continuation_memo [--envs ID ...] [--episodes 5] [--max-steps 128]
                                           [--checkpoint PATH] [--name NAME] [--out-dir DIR]

Each env uses its shipped checkpoint unless ``--checkpoint`` is given. Evaluation seeds start at
``envs.seeds.EVAL_SEED_START``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from agents.mctd.agent import MCTDAgent, MCTDEpisode
from benchmarks.common import write_results
from envs.collect import make_env
from envs.observation import FullGridObsWrapper
from envs.registry import SUPPORTED
from envs.seeds import EVAL_SEED_START

DEFAULT_ENVS = (
    "MazeMDLM/Maze-25x25-v0", "MazeMDLM/BraidMaze-25x25-v0", "MiniGrid-FourRooms-v0", "MiniGrid-MultiRoom-N6-v0",
    "MiniGrid-LockedRoom-v0", "MiniGrid-KeyCorridorS5R3-v0", "MiniGrid-KeyCorridorS6R3-v0",
    "MiniGrid-ObstructedMaze-2Dlh-v0", "MiniGrid-ObstructedMaze-Full-v1",
)
ARMS = ("memo", "no_memo")


class WithoutMemo(MCTDAgent):
    """The MCTD agent with every search decoding its own windows (the episode keeps no memo)."""

    def new_episode(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> MCTDEpisode:
        episode = super().new_episode(obs, info)
        episode.memo = None
        return episode


def play(agent: MCTDAgent, env: Any, seed: int, max_steps: int) -> dict[str, Any]:
    """One episode from reset seed ``seed``: its actions, success and per-search records."""
    searches: list[dict[str, float]] = []
    search = agent.planner.search

    def recorded(*args: Any, **kwargs: Any) -> Any:
        result = search(*args, **kwargs)
        searches.append({"ms": 1000.0 * result.seconds, "calls": result.stats["rollout_calls"],
                         "decoded": result.stats["rollout_decoded"]})
        return result

    agent.planner.search = recorded
    try:
        agent.seed_episode(seed)
        obs, info = env.reset(seed=seed)
        agent.reset(obs, info)
        actions, success = [], False
        for _ in range(max_steps):
            action = agent.act(obs)
            actions.append(int(action))
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                success = bool(terminated and reward > 0)
                break
    finally:
        agent.planner.search = search
    return {"actions": actions, "success": success, "searches": searches}


def run_env(env_id: str, episodes: int, seed: int, max_steps: int, checkpoint: str | None) -> dict[str, Any]:
    """Both arms on ``episodes`` episodes of ``env_id`` -> one results row."""
    agents = {arm: cls.from_checkpoint(checkpoint, env_id=env_id, seed=0)
              for arm, cls in zip(ARMS, (MCTDAgent, WithoutMemo))}
    env = FullGridObsWrapper(make_env(env_id), agents["memo"].grid_size)
    played: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for i in range(episodes):
        for arm in ARMS:
            played[arm].append(play(agents[arm], env, seed + i, max_steps))
    env.close()
    row: dict[str, Any] = {"env": env_id, "episodes": episodes,
                           "same_actions": sum(a["actions"] == b["actions"] for a, b in zip(*played.values()))}
    for arm, eps in played.items():
        searches = [s for ep in eps for s in ep["searches"]]
        ms = np.array([s["ms"] for s in searches]) if searches else np.zeros(1)
        row[arm] = {
            "success_rate": float(np.mean([ep["success"] for ep in eps])),
            "searches": len(searches),
            "search_ms_p50": float(np.percentile(ms, 50)),
            "search_ms_p95": float(np.percentile(ms, 95)),
            "calls_per_search": float(np.mean([s["calls"] for s in searches])) if searches else 0.0,
            "decoded_per_search": float(np.mean([s["decoded"] for s in searches])) if searches else 0.0,
        }
    return row


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The results table."""
    lines = [
        "Both arms play the same episodes (same seeds and agent seed), interleaved, on one thread. "
        "same actions: episodes whose action sequences are identical in both arms. search ms: the "
        "decisions that searched. calls / decoded: batched policy decodes and windows decoded by "
        "the continuations, per search.", "",
        "| env | episodes | success memo / none | same actions | search ms p50 memo / none | "
        "p95 memo / none | p50 ratio | calls per search memo / none | decoded per search memo / none |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        on, off = r["memo"], r["no_memo"]
        lines.append(
            f"| {r['env']} | {r['episodes']} | {on['success_rate']:.2f} / {off['success_rate']:.2f} | "
            f"{r['same_actions']}/{r['episodes']} | {on['search_ms_p50']:.0f} / {off['search_ms_p50']:.0f} | "
            f"{on['search_ms_p95']:.0f} / {off['search_ms_p95']:.0f} | "
            f"{on['search_ms_p50'] / max(off['search_ms_p50'], 1e-9):.2f} | "
            f"{on['calls_per_search']:.1f} / {off['calls_per_search']:.1f} | "
            f"{on['decoded_per_search']:.1f} / {off['decoded_per_search']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per env and arm (default 5)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_START, help="first evaluation seed")
    parser.add_argument("--max-steps", type=int, default=128, help="steps per episode at most (default 128)")
    parser.add_argument("--checkpoint", default=None, help="MDLM checkpoint (default: each env's shipped one)")
    parser.add_argument("--name", default="continuation_memo", help="results file name")
    parser.add_argument("--out-dir", type=Path, default=None, help="results directory (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.max_steps < 1:
        parser.error("--episodes and --max-steps must be >= 1")
    unknown = [e for e in args.envs if e not in SUPPORTED]
    if unknown:
        parser.error(f"unsupported env {unknown[0]!r} (see README, Supported envs)")
    torch.set_num_threads(1)
    rows = []
    for env_id in args.envs:
        rows.append(run_env(env_id, args.episodes, args.seed, args.max_steps, args.checkpoint))
        r = rows[-1]
        print(f"{env_id}: same actions {r['same_actions']}/{r['episodes']}, search p50 "
              f"{r['memo']['search_ms_p50']:.0f} vs {r['no_memo']['search_ms_p50']:.0f} ms", file=sys.stderr)
    path = write_results(args.name, {"rows": rows}, to_markdown(rows), args.out_dir, module="continuation_memo")
    print(path)


if __name__ == "__main__":
    main()
