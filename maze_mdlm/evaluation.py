"""The evaluation runner: any agent, any supported env, one metrics dict.

The CLI, the benchmarks and the tests all call :func:`evaluate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from envs.collect import make_env
from envs.expert import UNSOLVABLE, ExpertBudgetError, solve_env
from envs.observation import FullGridObsWrapper, agent_pose, layout_of, observation_grid

DEFAULT_BATCH_ENVS = 128  # envs in lockstep; 1.07x the episodes/s of 64 (README, "Throughput")


def evaluate(
    agent: Any,
    env_id: str,
    episodes: int,
    seed: int,
    *,
    batch_envs: int = DEFAULT_BATCH_ENVS,
    render_frames: list | None = None,
    on_episode: Callable[[dict], None] | None = None,
    draw_plans: bool = False,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Run ``agent`` for ``episodes`` episodes; episode i uses reset seed ``seed + i``.

    Before each episode starts, an agent with ``seed_episode(reset_seed)`` (random, mctd) reseeds
    its generator from its own seed and the episode's reset seed, so an episode depends only on
    its seed, not on which episodes ran before it: the same ``per_episode`` records come out of
    one process, of seed chunks in worker processes (:mod:`maze_mdlm.parallel`) and of Ray tasks.

    Agents with ``new_episode(obs, info) -> state`` and ``act_batch(states, observations) -> actions``
    (:class:`agents.MDLMAgent`; :class:`agents.MCTDAgent`, one search per episode that needs a plan)
    play ``batch_envs`` environments in lockstep, one ``act_batch`` call per step; when an episode
    ends, its environment starts the next unassigned seed. Other agents (BFS, random) play one
    episode at a time. A deterministic agent gives the same ``per_episode`` records for every
    ``batch_envs``.

    Args:
        agent: anything with ``reset(obs, info)`` and ``act(obs) -> int``, or the batched pair above.
        env_id: gymnasium id of a MiniGrid world that fits on the agent's canvas (its
            ``grid_size`` attribute if it has one, else 19 or the world's own side up to 25).
        batch_envs: environments in lockstep (>= 1) for agents that batch.
        render_frames: if a list is given, the first episode's ``rgb_array`` frames are appended.
        on_episode: called with each episode's record as it ends (for progress displays).
        draw_plans: draw on each rendered frame the plan the agent holds there (its ``last_plan``
            or its episode state's, and MCTD's ``last_candidates`` faded;
            :func:`maze_mdlm.pictures.draw_plans`). Needs Pillow.
        max_steps: stop an episode that has run this many steps without ending (below the env's own
            step limit) and record it as a failure with ``capped: True`` (None: the env's limit).

    Returns:
        ``agent, env, episodes, seed, batch_envs, success_rate, mean_steps, mean_optimal_steps,
        path_ratio, mean_return, unsolvable, success_rate_solvable, seconds`` and ``per_episode``
        (seed, success, steps, optimal_steps, return; ``capped`` / ``unsolvable`` where true), ordered
        by seed. ``unsolvable`` counts the episodes the expert proved that no plan solves (an expert
        out of budget proves nothing); ``success_rate_solvable`` is the success rate without them.
        ``batch_envs`` is the number of environments that actually ran in lockstep (1 for agents
        that do not batch, at most ``episodes``). ``path_ratio`` is the mean
        over successful episodes of steps / expert-optimal steps (env steps). Agents with a ``stats()`` method add
        what it returns (e.g. MCTD's ``mean_expansions``).
    """
    if batch_envs < 1:
        raise ValueError(f"batch_envs must be >= 1, got {batch_envs}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    batched = hasattr(agent, "act_batch") and hasattr(agent, "new_episode")
    width = max(1, min(batch_envs, episodes)) if batched else 1
    start = time.perf_counter()
    runner = _Lockstep(agent if batched else _OneAtATime(agent), env_id, seed, width, render_frames, on_episode,
                       source=agent, draw_plans=draw_plans, max_steps=max_steps)
    records = runner.run(episodes)
    return run_metrics(agent, records, env_id, episodes, seed, width, time.perf_counter() - start)


def run_metrics(agent: Any, records: list[dict], env_id: str, episodes: int, seed: int, batch_envs: int,
                seconds: float, **extra: Any) -> dict[str, Any]:
    """The metrics dict of a run (:func:`evaluate`'s Returns): :func:`summarize` of ``records``
    (ordered by seed), the run's identity and ``extra`` keys, the agent's ``stats()``, and
    ``per_episode`` last."""
    metrics = summarize(records)
    metrics.update(agent=getattr(agent, "name", type(agent).__name__), env=env_id, episodes=episodes, seed=seed,
                   batch_envs=batch_envs, seconds=seconds, **extra)
    if hasattr(agent, "stats"):
        metrics.update(agent.stats())
    metrics["per_episode"] = records
    return metrics


class _OneAtATime:
    """The batched interface over a one-episode agent (``reset`` / ``act``); one env only."""

    def __init__(self, agent: Any):
        self.agent = agent

    def new_episode(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        self.agent.reset(obs, info)

    def act_batch(self, states: Sequence[None], observations: Sequence[Mapping[str, Any]]) -> list[int]:
        return [self.agent.act(obs) for obs in observations]


@dataclass
class _Episode:
    """One running episode: its env slot, the agent's state for it and its running totals."""

    slot: int
    index: int  # episode i, reset seed seed + i
    obs: Mapping[str, Any]
    state: Any
    optimal: int | None
    unsolvable: bool = False  # the expert proved that no plan reaches the task
    steps: int = 0
    total: float = 0.0


class _Lockstep:
    """Steps ``width`` envs in lockstep; one ``act_batch`` call per step for all running episodes."""

    def __init__(self, agent: Any, env_id: str, seed: int, width: int, render_frames: list | None,
                 on_episode: Callable[[dict], None] | None, source: Any = None, draw_plans: bool = False,
                 max_steps: int | None = None):
        self.agent, self.seed, self.frames, self.on_episode = agent, seed, render_frames, on_episode
        self.max_steps = max_steps
        self.source = agent if source is None else source  # the agent itself (``agent`` may wrap it)
        self.draw_plans = draw_plans and render_frames is not None
        self._pending: tuple | None = None  # (frame, layout, pose, tile, carrying/task) awaiting its plan
        render = "rgb_array" if render_frames is not None else None
        size = getattr(getattr(agent, "agent", agent), "grid_size", None)
        self.envs = [FullGridObsWrapper(make_env(env_id, render_mode=render if k == 0 else None), size)
                     for k in range(width)]

    def run(self, episodes: int) -> list[dict]:
        """Play episodes ``0 .. episodes-1``; returns their records ordered by seed."""
        running = [self._start(slot, slot) for slot in range(min(len(self.envs), episodes))]
        next_index, records = len(running), []
        try:
            while running:
                actions = self.agent.act_batch([e.state for e in running], [e.obs for e in running])
                if self._pending is not None:
                    self._flush_frame(next((e for e in running if e.index == 0), None))
                still = []
                for episode, action in zip(running, actions):
                    record = self._step(episode, int(action))
                    if record is None:
                        still.append(episode)
                        continue
                    records.append(record)
                    if next_index < episodes:
                        still.append(self._start(episode.slot, next_index))
                        next_index += 1
                running = still
        finally:
            for env in self.envs:
                env.close()
        return sorted(records, key=lambda r: r["seed"])

    def _start(self, slot: int, index: int) -> _Episode:
        """Reset env ``slot`` with seed ``seed + index`` and start the agent's episode there."""
        env = self.envs[slot]
        if hasattr(self.source, "seed_episode"):
            self.source.seed_episode(self.seed + index)
        obs, info = env.reset(seed=self.seed + index)
        unsolvable = False
        try:
            optimal = solve_env(env)
            unsolvable = not optimal.solvable  # proved: no action sequence reaches the task
        except ExpertBudgetError:  # counted as unknown, never as a made-up length
            optimal = UNSOLVABLE
        episode = _Episode(slot, index, obs, None, len(optimal) if optimal.solvable else None, unsolvable)
        episode.state = self.agent.new_episode(obs, info)
        self._render(episode)
        return episode

    def _step(self, episode: _Episode, action: int) -> dict | None:
        """Apply ``action``; returns the episode's record once it has ended, else None."""
        obs, reward, terminated, truncated, _ = self.envs[episode.slot].step(action)
        episode.obs, episode.steps, episode.total = obs, episode.steps + 1, episode.total + float(reward)
        capped = not (terminated or truncated) and self.max_steps is not None and episode.steps >= self.max_steps
        self._render(episode, final=terminated or truncated or capped)
        if not (terminated or truncated or capped):
            return None
        record = {
            "seed": self.seed + episode.index,
            "success": bool(terminated and episode.total > 0),
            "steps": episode.steps,
            "optimal_steps": episode.optimal,
            "return": episode.total,
        }
        if capped:
            record["capped"] = True
        if episode.unsolvable:
            record["unsolvable"] = True
        if self.on_episode:
            self.on_episode(record)
        return record

    def _render(self, episode: _Episode, final: bool = False) -> None:
        """Append a frame of the first episode (env 0) when frames are wanted. With ``draw_plans``
        a frame waits for the agent's next action, and the plan it then holds is drawn on it; the
        ``final`` frame of the episode has no plan."""
        if self.frames is None or episode.index != 0:
            return
        frame = self.envs[episode.slot].render()
        if not self.draw_plans or final:
            self.frames.append(frame)
            return
        image, direction = observation_grid(episode.obs)
        tile = max(1, frame.shape[1] // self.envs[episode.slot].unwrapped.width)  # pixels per cell
        world = {key: episode.obs[key] for key in ("carrying", "task") if key in episode.obs}
        self._pending = (frame, layout_of(image), (*agent_pose(image)[:2], int(direction)), tile, world)

    def _flush_frame(self, episode: _Episode | None) -> None:
        """Draw the plan the agent now holds for episode 0 on its pending frame and append it."""
        from maze_mdlm.pictures import draw_plans

        frame, layout, pose, tile, world = self._pending
        self._pending = None
        holder = episode.state if episode is not None and episode.state is not None else self.source
        view = plan_view(holder)
        self.frames.append(draw_plans(frame, layout, pose, {**view, **world}, tile) if view else frame)


def plan_view(holder: Any) -> dict[str, Any] | None:
    """What to draw of an agent's (or an episode state's) current plan, or None.

    Reads the optional attributes ``last_plan`` (action ids from the current pose, the action
    just chosen first), ``last_candidates`` (other plans of the latest search, action ids) and
    ``last_search_pose`` (the pose they start from).
    """
    plan = getattr(holder, "last_plan", None)
    candidates = getattr(holder, "last_candidates", None) or []
    if not plan and not candidates:
        return None
    return {"plan": list(plan or []), "candidates": [list(c) for c in candidates],
            "candidates_pose": getattr(holder, "last_search_pose", None)}


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
        "unsolvable": sum(bool(r.get("unsolvable")) for r in records),
        "success_rate_solvable": solvable_success(records),
    }


def solvable_success(records: list[dict]) -> float | None:
    """Success rate over the episodes the expert did not prove unsolvable (None if there are none).
    MiniGrid's ObstructedMaze v0 generator makes a few worlds no agent can solve (a blocking ball
    on a box); the plain success rate counts them as failures, this one leaves them out."""
    solvable = [r["success"] for r in records if not r.get("unsolvable")]
    return float(np.mean(solvable)) if solvable else None
