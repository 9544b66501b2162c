"""The evaluation runner: any agent, any supported env, one metrics dict.

The CLI, the benchmarks and the tests all call :func:`evaluate`.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from envs.collect import make_env
from envs.expert import solve
from envs.observation import FullGridObsWrapper, env_pose, layout_of


def evaluate(
    agent: Any,
    env_id: str,
    episodes: int,
    seed: int,
    *,
    render_frames: list | None = None,
    on_episode: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Run ``agent`` for ``episodes`` episodes; episode i uses reset seed ``seed + i``.

    Args:
        agent: anything with ``reset(obs, info)`` and ``act(obs) -> int``.
        env_id: gymnasium id of a MiniGrid world that fits on the 19×19 canvas.
        render_frames: if a list is given, the first episode's ``rgb_array`` frames are appended.
        on_episode: called with each episode's record (for progress displays).

    Returns:
        ``agent, env, episodes, seed, success_rate, mean_steps, mean_optimal_steps, path_ratio,
        mean_return, seconds`` and ``per_episode`` (seed, success, steps, optimal_steps, return).
        ``path_ratio`` is the mean over successful episodes of steps / BFS-optimal steps. Agents
        with a ``stats()`` method add what it returns (e.g. MCTD's ``mean_expansions``).
    """
    env = FullGridObsWrapper(make_env(env_id, render_mode="rgb_array" if render_frames is not None else None))
    records = []
    start = time.perf_counter()
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        optimal = solve(layout_of(obs["image"]), env_pose(env))
        agent.reset(obs, info)
        if render_frames is not None and i == 0:
            render_frames.append(env.render())
        steps, total, done, terminated = 0, 0.0, False, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(agent.act(obs)))
            steps += 1
            total += float(reward)
            done = terminated or truncated
            if render_frames is not None and i == 0:
                render_frames.append(env.render())
        record = {
            "seed": seed + i,
            "success": bool(terminated and total > 0),
            "steps": steps,
            "optimal_steps": len(optimal) if optimal.solvable else None,
            "return": total,
        }
        records.append(record)
        if on_episode:
            on_episode(record)
    env.close()
    metrics = summarize(records)
    metrics.update(
        agent=getattr(agent, "name", type(agent).__name__),
        env=env_id,
        episodes=episodes,
        seed=seed,
        seconds=time.perf_counter() - start,
    )
    if hasattr(agent, "stats"):
        metrics.update(agent.stats())
    metrics["per_episode"] = records
    return metrics


def summarize(records: list[dict]) -> dict[str, float]:
    """Aggregate per-episode records into the rollout metrics (see :func:`evaluate`)."""
    success = np.array([r["success"] for r in records], dtype=bool)
    steps = np.array([r["steps"] for r in records], dtype=float)
    optimal = np.array([np.nan if r["optimal_steps"] is None else r["optimal_steps"] for r in records], dtype=float)
    ratios = steps[success] / np.maximum(optimal[success], 1)
    return {
        "success_rate": float(success.mean()) if len(records) else 0.0,
        "mean_steps": float(steps.mean()) if len(records) else 0.0,
        "mean_optimal_steps": float(np.nanmean(optimal)) if np.isfinite(optimal).any() else 0.0,
        "path_ratio": float(ratios.mean()) if len(ratios) else None,
        "mean_return": float(np.mean([r["return"] for r in records])) if len(records) else 0.0,
    }
