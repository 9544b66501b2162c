"""Where an agent's extra steps go: walks that a shorter walk between the same poses would do,
or a different choice of where and in what order to act on objects.

    python -m benchmarks.walk_excess [--envs ID ...] [--episodes 30] [--max-steps 128] [--name walk_excess]

Each episode's executed actions are cut at its object actions (pickup, drop, toggle, done) into
walks (left / right / forward). For every walk the shortest walk between the same two poses
(position and heading) through the cells that were walkable when it started
(:func:`envs.dynamics.walkable`, plus its own two ends) is found by breadth-first search; the
difference is the walk's **excess**, what a perfect straightening of the agent's own route would
save (MCTD straightens only to straight or one-corner walks: ``MCTDConfig.straighten``). The rest of
an agent's gap to a reference is in where it acts from and in what order: which side of a box it
opens, which ball it moves, where it drops it.

Agents per env, on the same held-out seeds (from 1,000,000) and step cap as the suite pages:
``mctd`` (the env's shipped default, :meth:`agents.MCTDAgent.from_checkpoint`) and the
``guessing oracle`` (:class:`benchmarks.guess_reference.GuessingOracle`: the expert planning with
MCTD's guess of the closed boxes' contents). Per episode means over all episodes (successful or
not): steps, walk actions, object actions, walk excess. This is a measurement, not an agent: the
breadth-first search never reaches the agents.
"""

from __future__ import annotations

import argparse
from collections import deque
from typing import Any, Sequence

import numpy as np

import envs  # noqa: F401  (registers our envs)
from agents.base import parse_observation
from benchmarks.common import write_results
from benchmarks.guess_reference import GuessingOracle
from envs.collect import make_env
from envs.dynamics import DIR_DX, DIR_DY, FORWARD, LEFT, RIGHT, walkable
from envs.observation import FullGridObsWrapper
from envs.registry import UnsupportedEnvError, lookup
from envs.seeds import EVAL_SEED_START
from maze_mdlm.cli_common import positive_int

DEFAULT_ENVS = ("MiniGrid-ObstructedMaze-1Q-v1", "MiniGrid-ObstructedMaze-Full-v0")
Pose = tuple[int, int, int]


def shortest_walk(free: np.ndarray, start: Pose, end: Pose) -> int | None:
    """Fewest left / right / forward actions from pose ``start`` to pose ``end`` through ``free``
    ``[W, H]`` cells (None: unreachable)."""
    if start == end:
        return 0
    dist = {start: 0}
    queue = deque([start])
    while queue:
        pose = queue.popleft()
        x, y, d = pose
        fx, fy = x + int(DIR_DX[d]), y + int(DIR_DY[d])
        nexts = [(x, y, (d - 1) % 4), (x, y, (d + 1) % 4)]
        if 0 <= fx < free.shape[0] and 0 <= fy < free.shape[1] and free[fx, fy]:
            nexts.append((fx, fy, d))
        for nxt in nexts:
            if nxt not in dist:
                dist[nxt] = dist[pose] + 1
                if nxt == end:
                    return dist[nxt]
                queue.append(nxt)
    return None


class _Walk:
    """The walk in progress: its start pose, the layout then, and its actions so far."""

    def __init__(self, pose: Pose, layout: np.ndarray):
        self.start, self.layout, self.actions = pose, layout.copy(), 0

    def excess(self, end: Pose) -> int:
        """Actions over the shortest walk from ``start`` to ``end`` (0 if none is found, which
        cannot happen for a walk the env executed)."""
        free = walkable(self.layout)
        free[self.start[0], self.start[1]] = free[end[0], end[1]] = True
        best = shortest_walk(free, self.start, end)
        return self.actions - best if best is not None else 0


def play(agent: Any, env_id: str, episodes: int, seed: int, max_steps: int) -> dict[str, Any]:
    """Episodes ``seed .. seed + episodes - 1`` of ``agent`` one at a time: per episode means of
    steps, walk actions, object actions and walk excess, and the success rate."""
    env = FullGridObsWrapper(make_env(env_id), getattr(agent, "grid_size", None))
    totals = dict(steps=0, walk=0, objects=0, excess=0, successes=0)
    try:
        for i in range(episodes):
            if hasattr(agent, "seed_episode"):
                agent.seed_episode(seed + i)
            obs, info = env.reset(seed=seed + i)
            agent.reset(obs, info)
            walk, ret = None, 0.0
            for _ in range(max_steps):
                _, layout, pose = parse_observation(obs, env.grid_size)
                action = int(agent.act(obs))
                if walk is None:
                    walk = _Walk(pose, layout)
                if action in (LEFT, RIGHT, FORWARD):
                    walk.actions += 1
                else:
                    totals["excess"] += walk.excess(pose)
                    totals["walk"] += walk.actions
                    totals["objects"] += 1
                    walk = None
                obs, reward, terminated, truncated, _ = env.step(action)
                totals["steps"] += 1
                ret += float(reward)
                if terminated or truncated:
                    break
            if walk is not None:
                totals["excess"] += walk.excess(parse_observation(obs, env.grid_size)[2])
                totals["walk"] += walk.actions
            totals["successes"] += int(ret > 0)
    finally:
        env.close()
    return {"success_rate": totals["successes"] / episodes,
            **{f"mean_{k}": totals[k] / episodes for k in ("steps", "walk", "objects", "excess")}}


def run(env_ids: Sequence[str], episodes: int, max_steps: int) -> list[dict[str, Any]]:
    """One row per env and agent (mctd, guessing oracle)."""
    from agents import MCTDAgent

    rows = []
    for env_id in env_ids:
        mctd, oracle = MCTDAgent.from_checkpoint(env_id=env_id, max_steps=max_steps), GuessingOracle()
        oracle.grid_size = mctd.grid_size  # the same canvas
        for name, agent in (("mctd", mctd), ("guessing oracle", oracle)):
            rows.append({"env": env_id, "agent": name, "episodes": episodes,
                         **play(agent, env_id, episodes, EVAL_SEED_START, max_steps)})
    return rows


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    out = ["Per episode means over all episodes. walk: left / right / forward actions; objects: pickup, "
           "drop, toggle, done; excess: walk actions over the shortest walks between the same poses.", "",
           "| env | agent | episodes | success | steps | walk | objects | walk excess |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['env']} | {r['agent']} | {r['episodes']} | {r['success_rate']:.3f} | {r['mean_steps']:.2f} | "
                   f"{r['mean_walk']:.2f} | {r['mean_objects']:.2f} | {r['mean_excess']:.2f} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids")
    parser.add_argument("--episodes", type=positive_int, default=30, help="episodes per env and agent")
    parser.add_argument("--max-steps", type=positive_int, default=128, help="step cap (the suite pages': 128)")
    parser.add_argument("--name", default="walk_excess", help="results file name")
    args = parser.parse_args(argv)
    for env_id in args.envs:
        try:
            lookup(env_id)
        except UnsupportedEnvError as error:
            parser.error(f"--envs: {error}")
    rows = run(args.envs, args.episodes, args.max_steps)
    md = to_markdown(rows)
    print(md)
    write_results(args.name, {"rows": rows}, md, module="walk_excess")


if __name__ == "__main__":
    main()
