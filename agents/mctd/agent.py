"""MCTDAgent: Monte Carlo Tree Diffusion as a closed-loop gymnasium agent."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from agents.base import parse_observation, torch_threads
from agents.mdlm_agent import MDLMAgent
from agents.mctd.planner import MCTDConfig, MCTDPlanner, SearchResult, choose_actions, partial_plan_actions
from agents.mctd.tree import Node
from envs.dynamics import FAILURE, FORWARD, LEFT, RIGHT, SUCCESS, step
from maze_mdlm.checkpoint import load_checkpoint
from maze_mdlm.model import MDLMPolicy

FOURROOMS_MAX_STEPS = 100  # MiniGrid FourRooms' own max_steps
MAZE_MAX_STEPS = 2 * 19 * 19  # envs.maze.MazeEnv's default max_steps


def env_max_steps(env_id: str) -> int:
    """The episode limit of a registered MiniGrid env (``max_steps`` of a fresh instance)."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        return int(getattr(env.unwrapped, "max_steps", FOURROOMS_MAX_STEPS))
    finally:
        env.close()


FALLBACKS = ("plan", "policy", "heuristic")


class MCTDAgent:
    """Plan with MCTD, execute, replan.

    Each decision that plans runs one search (:class:`agents.mctd.planner.MCTDPlanner`) from
    the current observation and queues the best plan found (the highest-scoring completed
    plan): all of it up to the goal if it reaches the goal, otherwise its first sub-plan. It
    replans when the queue is used up or when an observation differs from the pose the
    symbolic dynamics predicted. END (6) and the other non-navigation tokens are never sent
    to the env; if the best plan has nothing executable, the best-scoring plan that has is
    used, else ``forward``.

    When a search finds no goal-reaching plan (the goal is beyond what the plans reach), the
    default ``fallback="plan"`` executes the first sub-plan of the best partial plan: with the
    default ``partial_score="novelty"`` that is the plan that ends alive after entering the most
    cells this episode has not been in (the agent keeps the episode's cells and passes them to
    the search). ``fallback="policy"`` (the 0.3 default) throws the search away and takes one
    step of the closed-loop MDLM policy (:class:`MDLMAgent`, greedy, with its no-op / revisit
    rules); ``"plan"`` does the same when every plan of the search died (lava) or has nothing
    to execute. ``"heuristic"`` is 0.3's unchanged: the best-scoring executable prefix of any
    plan, else ``forward`` (with ``partial_score="manhattan"`` it ranks partial plans by the
    Manhattan heuristic, which misleads around walls; its last resort can step into lava).

    Args:
        model: an :class:`MDLMPolicy` (a trained one plans well; an untrained one still
            finds nearby goals by search alone).
        max_steps: the env's episode limit; scales the success score ``1 - 0.9 t / max_steps``
            (MiniGrid's reward). Default 100 (FourRooms).
        seed: seeds the agent's ``torch.Generator``, the only source of randomness: same seed
            and same observations give the same plans.
        config: search hyper-parameters; any :class:`MCTDConfig` field may also be passed as
            a keyword and overrides it.
        fallback: "plan" (default), "policy" or "heuristic" (0.3's): what to execute when no
            plan reaches the goal.
        num_threads: torch intra-op threads while planning, restored afterwards (None: leave
            torch's setting alone). Default 1: the batches are small (at most 2K rows of H
            tokens), and with torch's default of 2 threads on a 2-core CPU shared with other
            jobs every op waited for the busy core (a search took ~3 s instead of ~25 ms).
    """

    name = "mctd"

    def __init__(self, model: MDLMPolicy, max_steps: int = FOURROOMS_MAX_STEPS, seed: int = 0,
                 config: MCTDConfig | None = None, num_threads: int | None = 1, fallback: str = "plan",
                 **overrides: Any):
        config = dataclasses.replace(config or MCTDConfig(), **overrides)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.grid_size = model.config.grid_size  # the canvas the model sees
        self.config, self.max_steps, self.seed, self.num_threads = config, int(max_steps), seed, num_threads
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.planner = MCTDPlanner(self.model, config, self.generator)
        self.fallback = fallback
        self.policy = MDLMAgent(self.model, horizon=config.horizon, seed=seed, num_threads=num_threads)
        self._queue: list[int] = []
        self._expected: tuple[int, int, int] | None = None
        self._visited: set[tuple[int, int]] = set()  # cells of the episode so far
        self.last_search: SearchResult | None = None  # the latest search's tree and result
        self.last_search_pose: tuple[int, int, int] | None = None  # the pose it searched from
        self.last_plan: list[int] = []  # the actions held at the latest act(), the returned one first
        self._fell_back = False  # the latest plan is the policy's step (no goal-reaching plan found)
        self._chosen: tuple[int, ...] = ()  # the actions the latest search queued
        self.records: list[dict[str, float]] = []  # one dict per decision that planned

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, env_id: str | None = None, seed: int = 0,
                        device: str | torch.device = "cpu", **kwargs: Any) -> "MCTDAgent":
        """Load ``path``, or the checkpoint shipped for ``env_id`` (default FourRooms), onto
        ``device`` ("cpu" (default), "cuda", "auto": CUDA when torch sees one).

        ``kwargs`` go to the constructor (``max_steps``, ``config`` or :class:`MCTDConfig`
        fields). ``horizon`` defaults to the checkpoint's training horizon and ``max_steps``
        to the env's own ``max_steps`` (722 for our 19×19 mazes, 100 for FourRooms).

        Raises:
            maze_mdlm.devices.DeviceUnavailableError: ``device="cuda"`` without a CUDA device.
            ValueError: a missing or foreign checkpoint.
        """
        from envs import FOURROOMS_ID
        from maze_mdlm.devices import resolve_device
        from maze_mdlm.shipped import default_checkpoint

        env_id = env_id or FOURROOMS_ID
        target = resolve_device(device)
        model, ckpt = load_checkpoint(path if path is not None else default_checkpoint(env_id),
                                      map_location=target, model_type="mdlm")
        if "config" not in kwargs:
            kwargs.setdefault("horizon", int(ckpt.get("train_config", {}).get("horizon", 32)))
        if "max_steps" not in kwargs:
            kwargs["max_steps"] = env_max_steps(env_id)
        return cls(model, seed=seed, **kwargs)

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        """Start an episode (validates the observation; the generator is not reseeded, see
        :meth:`seed_episode`)."""
        parse_observation(obs)
        self._queue, self._expected = [], None
        self._visited: set[tuple[int, int]] = set()
        self.last_search, self.last_search_pose, self.last_plan = None, None, []
        self.policy.reset(obs, info)

    @property
    def full_plans(self) -> bool:
        """Whether the fallback policy step decodes (and :attr:`last_plan` shows) a whole plan."""
        return self.policy.full_plans

    @full_plans.setter
    def full_plans(self, value: bool) -> None:
        self.policy.full_plans = bool(value)

    def seed_episode(self, episode_seed: int) -> None:
        """Reseed the generator from the agent's ``seed`` and ``episode_seed`` (the env's reset
        seed), so that the episode does not depend on the episodes played before it.
        :func:`maze_mdlm.evaluation.evaluate` calls it before each episode."""
        self.generator.manual_seed(episode_generator_seed(self.seed, episode_seed))

    @property
    def last_candidates(self) -> list[list[int]]:
        """The other plans of the latest search (action ids from :attr:`last_search_pose`, best
        score first, each once, the chosen one left out): each simulated node's plan up to where
        its simulation ended. Computed on demand from :attr:`last_search`."""
        if self.last_search is None:
            return []
        nodes = sorted((n for n in self.last_search.root.iter_nodes() if n.own_value is not None),
                       key=lambda n: -n.own_value)
        seen, out = {self._chosen}, []
        for node in nodes:
            actions = tuple(simulated_actions(node))
            if actions and actions not in seen:
                seen.add(actions)
                out.append(list(actions))
        return out

    def plan(self, obs: Mapping[str, Any]) -> list[int]:
        """Search from ``obs`` and return the actions it would queue (no env interaction)."""
        image, layout, pose = parse_observation(obs)
        return self._plan(image, layout, pose, obs)

    def _plan(self, image: np.ndarray, layout: np.ndarray, pose: tuple[int, int, int],
              obs: Mapping[str, Any]) -> list[int]:
        with torch_threads(self.num_threads):
            result = self.planner.search(image, layout, pose, self.max_steps, visited=self._visited)
        self.last_search, self.last_search_pose = result, pose
        self.records.append({
            "expansions": result.expansions,
            "plan_ms": 1000.0 * result.seconds,
            "rounds": result.rounds,
            "nodes": result.stats["nodes"],
            "max_depth": result.stats["max_depth"],
            "found_goal": float(result.found_goal),
        })
        planned = None
        if not result.found_goal and self.fallback == "plan":
            planned = partial_plan_actions(result, self.config.horizon, self.config.num_subplans)
        elif result.found_goal or self.fallback != "policy":
            planned = choose_actions(result, self.config.horizon, self.config.num_subplans)
        self._fell_back = not planned  # "policy", or every plan died: one safe policy step
        actions = list(planned) if planned else [self.policy.act(obs)]
        self._chosen = tuple(actions)
        return actions

    def act(self, obs: Mapping[str, Any]) -> int:
        """The next action (0 left, 1 right, 2 forward); plans when needed."""
        image, layout, pose = parse_observation(obs)
        self._visited.add(pose[:2])
        if not self._queue or pose != self._expected:
            self._queue = self._plan(image, layout, pose, obs)
        self.last_plan = list(self.policy.last_plan) if self._fell_back else list(self._queue)
        action = self._queue.pop(0)
        self._expected, _ = step(layout, pose, action)
        return action

    def stats_state(self) -> list[dict[str, float]]:
        """What :meth:`stats` is computed from: the per-decision records (picklable)."""
        return list(self.records)

    def load_stats_state(self, states: Sequence[list[dict[str, float]]]) -> None:
        """Make :meth:`stats` cover the runs whose :meth:`stats_state` are given, in order
        (``[]`` clears)."""
        self.records = [record for state in states for record in state]

    def stats(self) -> dict[str, float]:
        """Search statistics over every decision that planned so far.

        ``decisions``, ``mean_expansions``, ``mean_plan_ms``, ``median_plan_ms``,
        ``plan_ms_p50``, ``plan_ms_p95``, ``plan_ms_p99`` (percentiles of the search time of a
        decision that planned), ``mean_rounds``, ``mean_nodes``, ``max_depth`` (deepest node of
        any tree) and ``goal_found_rate`` (fraction of searches that found a goal-reaching plan).
        """
        recs = self.records
        if not recs:
            return {"decisions": 0, "mean_expansions": 0.0, "mean_plan_ms": 0.0, "median_plan_ms": 0.0,
                    "plan_ms_p50": 0.0, "plan_ms_p95": 0.0, "plan_ms_p99": 0.0,
                    "mean_rounds": 0.0, "mean_nodes": 0.0, "max_depth": 0, "goal_found_rate": 0.0}
        plan_ms = np.array([r["plan_ms"] for r in recs])

        def mean(key: str) -> float:
            return float(np.mean([r[key] for r in recs]))

        return {
            "decisions": len(recs),
            "mean_expansions": mean("expansions"),
            "mean_plan_ms": mean("plan_ms"),
            "median_plan_ms": float(np.median(plan_ms)),
            "plan_ms_p50": float(np.percentile(plan_ms, 50)),
            "plan_ms_p95": float(np.percentile(plan_ms, 95)),
            "plan_ms_p99": float(np.percentile(plan_ms, 99)),
            "mean_rounds": mean("rounds"),
            "mean_nodes": mean("nodes"),
            "max_depth": int(max(r["max_depth"] for r in recs)),
            "goal_found_rate": mean("found_goal"),
        }


def episode_generator_seed(agent_seed: int, episode_seed: int) -> int:
    """A 63-bit generator seed mixed from an agent's seed and an episode's reset seed
    (:class:`numpy.random.SeedSequence`: nearby pairs give unrelated streams)."""
    return int(np.random.SeedSequence([int(agent_seed), int(episode_seed)]).generate_state(1, np.uint64)[0] >> 1)


def simulated_actions(node: Node) -> list[int]:
    """The navigation actions of ``node``'s simulated plan up to where its simulation ended (the
    goal, the step before lava, or the plan's end)."""
    if node.plan is None or node.outcome is None:
        return []
    status, steps = node.outcome
    stop = steps if status == SUCCESS else steps - 1 if status == FAILURE else len(node.plan)
    return [int(a) for a in node.plan[:stop] if int(a) in (LEFT, RIGHT, FORWARD)]
