"""MCTDAgent: Monte Carlo Tree Diffusion as a closed-loop gymnasium agent."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from agents.base import parse_observation, torch_threads
from agents.mdlm_agent import EpisodeState, MDLMAgent
from agents.mctd.planner import (
    PHASES,
    MCTDConfig,
    MCTDPlanner,
    SearchResult,
    choose_actions,
    partial_plan_actions,
    partial_plan_whole,
)
from agents.mctd.rollout import ContinuationMemo
from agents.mctd.scoring import novel_cells
from agents.mctd.tree import Node, subplan_bounds
from envs.dynamics import FAILURE, RUNNING, SUCCESS, WorldState, simulate_plans, world_step
from envs.observation import observation_carrying, observation_task
from envs.tasks import BoundTask, Task
from envs.world import NOTHING
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


FALLBACKS = ("auto", "plan", "policy", "heuristic")
GOAL_EXECUTE = 2  # goal_execute="auto" (the default since 0.29; 4 until 0.30): actions of a goal-reaching
# plan per search where objects can change
RESEARCH_EXPANSIONS = 3  # research_expansions' default (0.31; None, the full budget, in 0.30): the root's
# meta-actions, one round
Pose = tuple[int, int, int]


@dataclass
class MCTDEpisode:
    """What :class:`MCTDAgent` remembers about one running episode.

    Attributes:
        task: the episode's task bound to its start grid (the observation's ``task`` or
            ``mission``); the search scores plans with its success predicate.
        carrying: what the agent holds (the observation's ``carrying``, else tracked).
        queue: planned actions not executed yet.
        expected: ``(pose, carrying, layout)`` the rules predict after the last action.
        visited: the cells the episode has been in since the carried object or the layout last
            changed (the search's novelty).
        generator: this episode's own generator (:meth:`MCTDAgent.seed_episode`), None: the agent's.
        policy: the fallback MDLM policy's state for this episode.
        last_search, last_search_pose, last_plan: the latest search, the pose it searched
            from, and the actions held at the latest decision (the returned one first).
        memo: the greedy continuation windows decoded by this episode's searches, replayed by
            the later ones (:class:`agents.mctd.rollout.ContinuationMemo`); None: every search
            decodes its own.
        committed: what is left of the partial plan the "plan" fallback is following
            (``MCTDAgent(commit=True)``), navigation actions from the pose after the queue.
        goal_rest: with ``MCTDAgent(goal_execute=k)`` (0.28; by default since 0.29 where objects
            can change), what is left of the shortest goal-reaching plan found so far after the
            queue (the incumbent); emptied when an observation surprises the agent.
        boxes: what the latest search assumed the closed boxes hold (:attr:`SearchResult.boxes`),
            carried along by the rules' predictions, so that a box that opens on what the plan
            assumed is no surprise (0.32; before, every opened box dropped the plan).
    """

    task: BoundTask | None = None
    carrying: tuple[int, int, int] = NOTHING
    queue: list[int] = field(default_factory=list)
    expected: tuple | None = None
    visited: set[tuple[int, int]] = field(default_factory=set)
    generator: torch.Generator | None = None
    policy: EpisodeState = field(default_factory=EpisodeState)
    last_search: SearchResult | None = None
    last_search_pose: Pose | None = None
    last_plan: list[int] = field(default_factory=list)
    last: tuple | None = None  # (image, pose, action) of the previous step (carrying tracking)
    world: tuple | None = None  # (layout, pose, carrying) at the previous step
    fell_back: bool = False  # the latest plan is the policy's step
    chosen: tuple[int, ...] = ()  # the plan the latest search chose (its queue and incumbent)
    memo: ContinuationMemo | None = field(default_factory=ContinuationMemo)
    committed: list[int] = field(default_factory=list)
    goal_rest: list[int] = field(default_factory=list)  # the incumbent (goal_execute): what is left of
    # the goal-reaching plan after the queue, from the pose after it
    boxes: tuple = ()  # the latest search's box guess, updated by each predicted step

    @property
    def last_candidates(self) -> list[list[int]]:
        """The other plans of the latest search (action ids from :attr:`last_search_pose`, best
        score first, each once, the chosen one left out)."""
        return search_candidates(self.last_search, self.chosen)


class MCTDAgent:
    """Plan with MCTD, execute, replan.

    Each decision that plans runs one search (:class:`agents.mctd.planner.MCTDPlanner`) from
    the current observation (layout, pose, carried object, and the episode's task bound to its
    start grid) and queues the best plan found (the highest-scoring completed plan): if it gets
    to the end of the task, all of it where only the agent moves, and its first 2 actions (4 in
    0.29-0.30) where objects can change, keeping the rest as the incumbent of the next, smaller
    search (``goal_execute``, ``research_expansions``; before 0.29 always all of it), otherwise
    its first sub-plan. Plans use all
    seven MiniGrid actions (pickup, drop, toggle, and ``done``, which finishes a GoTo task); the
    model's end-of-plan token (``model.config.end_token``, 6 for old checkpoints) and actions
    that the rules say do nothing are never sent to the env. It replans when the queue is used
    up or when an observation differs from the state (pose, carried object, layout) the rules
    predicted. If the best plan has nothing executable, the best-scoring plan that has is used,
    else ``forward``.

    Two ways to drive it, as :class:`agents.MDLMAgent`: ``reset`` / ``act`` for one episode in
    a gymnasium loop, or ``new_episode`` / ``act_batch`` for many episodes in lockstep (one
    search per episode that needs a plan; each episode has its own generator after
    :meth:`seed_episode`, so lockstep play gives the same episodes as one at a time).

    When a search finds no goal-reaching plan (the goal is beyond what the plans reach),
    ``fallback="plan"`` executes the first sub-plan of the best partial plan: with the default
    ``partial_score="novelty"`` that is the plan that ends alive after entering the most cells
    this episode has not been in (the agent keeps the episode's cells and passes them to the
    search). ``fallback="policy"`` (the 0.3 default) throws the search away and takes one step of
    the closed-loop MDLM policy (:class:`MDLMAgent`, greedy, with its no-op / revisit rules);
    ``"plan"`` does the same when every plan of the search died (lava) or has nothing to execute.
    The default ``"auto"`` (0.6) is ``"plan"`` in worlds where only the agent moves (mazes,
    FourRooms, crossings: the 0.4 behaviour, same episodes) and ``"policy"`` where doors, keys,
    balls or boxes can change: there the observation heuristic cannot tell progress from a
    detour, and on 12 long object worlds of the suite benchmark (docs/suite_history.md, 0.8) the policy
    step gave more success (0.987 vs 0.854) with shorter paths (path ratio 1.29 vs 1.45), at
    more searches per episode. ``"heuristic"`` is 0.3's unchanged: the best-scoring
    executable prefix of any plan, else ``forward`` (with ``partial_score="manhattan"`` it ranks
    partial plans by the Manhattan heuristic, which misleads around walls; its last resort can
    step into lava).

    Args:
        model: an :class:`MDLMPolicy` (a trained one plans well; an untrained one still
            finds nearby goals by search alone).
        max_steps: the env's episode limit; scales the success score ``1 - 0.9 t / max_steps``
            (MiniGrid's reward). Default 100 (FourRooms).
        seed: seeds the agent's ``torch.Generator``, the only source of randomness: same seed
            and same observations give the same plans.
        config: search hyper-parameters; any :class:`MCTDConfig` field may also be passed as
            a keyword and overrides it.
        fallback: "auto" (default), "plan", "policy" or "heuristic" (0.3's): what to execute
            when no plan reaches the goal.
        commit: with the "plan" fallback (0.20), keep executing the partial plan chosen by an
            earlier search, a sub-plan per decision, while what is left of it still enters a
            cell the episode has not been in; a search that reaches the goal always takes over,
            and a new partial plan is chosen only once the old one leads nowhere new. False:
            each search's own best partial plan (0.4–0.19), which can switch back and forth
            between two directions for good.
        goal_execute: k (0.28): only the first k actions of a goal-reaching plan are executed;
            the next decision searches again from there, and the rest of the plan (the
            incumbent) is kept unless that search finds a strictly shorter goal-reaching plan, so
            the path executed is never longer than the first plan found (an observation that
            surprises the agent, e.g. a box that held something else, drops the incumbent, and
            so does a search whose box guess says it no longer reaches the goal, 0.33). Each
            later search re-chooses the next actions, where one search chooses only among its
            plans' first sub-plans, each continued by the same greedy policy: shorter paths for
            more searches (README Results, "Searching again on the way to the goal"). 0 or None:
            the plan is executed whole, one search per goal-reaching plan (before 0.29). "auto"
            (default, 0.29): k = :data:`GOAL_EXECUTE` (2 since 0.31, 4 before) where doors, keys,
            balls or boxes can change, whole plans where only the agent moves (mazes, FourRooms,
            crossings: there the shortcut and straightening leave little to re-choose, e.g.
            FourRooms 1.006 -> 1.004 for 2x the time per episode; BraidMaze-25x25 gains more,
            1.106 -> 1.060 for 3x, and takes ``goal_execute=4`` by hand; 0.29's measurements).
        research_expansions: (0.30) the expansion budget of a search made while an incumbent
            is kept (``goal_execute``); 0 or None: ``config.max_expansions``, the first search's
            (0.30's default). Such a search only has to beat a plan the agent already holds, and a small
            one is cheaper. Default :data:`RESEARCH_EXPANSIONS` (3, the root's meta-actions, one
            round; 0.31): with ``goal_execute`` 2 instead of 4 it searches twice as often at a
            third of the cost, which halves the search median at the same wall time and path
            ratio (README Results, "Cheaper searches with an incumbent").
        num_threads: torch intra-op threads while planning, restored afterwards (None: leave
            torch's setting alone). Default 1: the batches are small (at most 2K rows of H
            tokens), and with torch's default of 2 threads on a 2-core CPU shared with other
            jobs every op waited for the busy core (a search took ~3 s instead of ~25 ms).
    """

    name = "mctd"

    def __init__(self, model: MDLMPolicy, max_steps: int = FOURROOMS_MAX_STEPS, seed: int = 0,
                 config: MCTDConfig | None = None, num_threads: int | None = 1, fallback: str = "auto",
                 commit: bool = True, goal_execute: int | str | None = "auto",
                 research_expansions: int | None = RESEARCH_EXPANSIONS, **overrides: Any):
        config = dataclasses.replace(config or MCTDConfig(), **overrides)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        if not (goal_execute in (None, "auto") or (isinstance(goal_execute, int) and goal_execute >= 0)):
            raise ValueError(f"goal_execute must be 'auto', an int >= 0 or None, got {goal_execute!r}")
        if research_expansions is not None and not (isinstance(research_expansions, int) and research_expansions >= 0):
            raise ValueError(f"research_expansions must be an int >= 0 or None, got {research_expansions!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.grid_size = model.config.grid_size  # the canvas the model sees
        self.config, self.max_steps, self.seed, self.num_threads = config, int(max_steps), seed, num_threads
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.planner = MCTDPlanner(self.model, config, self.generator)
        self.fallback, self.commit = fallback, commit
        self.goal_execute = goal_execute or None  # None: whole plans; "auto": goal_execute_for
        self.research_expansions = research_expansions or None  # budget of a search made while an incumbent
        # is kept; None: the config's
        self.policy = MDLMAgent(self.model, horizon=config.horizon, seed=seed, num_threads=num_threads)
        self._state = MCTDEpisode()  # the episode that reset / act play
        self._episode_seed: int | None = None  # set by seed_episode, used by the next new_episode
        self.records: list[dict[str, Any]] = []  # one dict per decision that planned

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
        """Start an episode (validates the observation and its task)."""
        self._state = self.new_episode(obs, info)

    def new_episode(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> MCTDEpisode:
        """A fresh state for an episode that starts at ``obs``; after :meth:`seed_episode` it has
        its own generator (so episodes played in lockstep do not share random streams)."""
        _, layout, _ = parse_observation(obs, self.grid_size)
        episode = MCTDEpisode(task=Task.from_vector(observation_task(obs)).bind(layout),
                              policy=self.policy.new_episode(obs, info))
        if self._episode_seed is not None:
            episode.generator = torch.Generator(device=self.device).manual_seed(self._episode_seed)
            self._episode_seed = None
        return episode

    @property
    def full_plans(self) -> bool:
        """Whether the fallback policy step decodes (and :attr:`last_plan` shows) a whole plan."""
        return self.policy.full_plans

    @full_plans.setter
    def full_plans(self, value: bool) -> None:
        self.policy.full_plans = bool(value)

    def seed_episode(self, episode_seed: int) -> None:
        """Seed the next episode from the agent's ``seed`` and ``episode_seed`` (the env's reset
        seed), so that it does not depend on the episodes played before or beside it.
        :func:`maze_mdlm.evaluation.evaluate` calls it before each episode starts; the next
        :meth:`new_episode` / :meth:`reset` takes it."""
        self._episode_seed = episode_generator_seed(self.seed, episode_seed)
        self.generator.manual_seed(self._episode_seed)

    # the latest decision of the episode that reset / act play
    @property
    def last_search(self) -> SearchResult | None:
        return self._state.last_search

    @property
    def last_search_pose(self) -> Pose | None:
        return self._state.last_search_pose

    @property
    def last_plan(self) -> list[int]:
        return self._state.last_plan

    @property
    def last_candidates(self) -> list[list[int]]:
        """The other plans of the latest search (see :attr:`MCTDEpisode.last_candidates`)."""
        return self._state.last_candidates

    def plan(self, obs: Mapping[str, Any]) -> list[int]:
        """Search from ``obs`` and return the actions it would queue (no env interaction)."""
        image, layout, pose = parse_observation(obs, self.grid_size)
        episode = self._state
        if episode.task is None:
            episode.task = Task.from_vector(observation_task(obs)).bind(layout)
        carrying = observation_carrying(obs, episode.carrying, None, image)
        return self._plan(episode, image, layout, pose, carrying, obs)

    def _plan(self, episode: MCTDEpisode, image: np.ndarray, layout: np.ndarray, pose: Pose,
              carrying: tuple[int, int, int], obs: Mapping[str, Any]) -> list[int]:
        if episode.generator is not None:
            self.planner.generator = episode.generator
        try:
            with torch_threads(self.num_threads):
                budget = self.research_expansions if episode.goal_rest else None  # None: the config's
                result = self.planner.search(image, layout, pose, self.max_steps, budget, visited=episode.visited,
                                             carrying=carrying, task=episode.task, memo=episode.memo,
                                             widen=not episode.goal_rest)
        finally:
            self.planner.generator = self.generator
        episode.last_search, episode.last_search_pose, episode.boxes = result, pose, result.boxes
        self.records.append({
            "expansions": result.expansions,
            "plan_ms": 1000.0 * result.seconds,
            "rounds": result.rounds,
            "nodes": result.stats["nodes"],
            "max_depth": result.stats["max_depth"],
            "found_goal": float(result.found_goal),
            "escape_retry": float(result.stats["escape_retry"]),
            "widened": float(result.stats["widened"]),
            "phase_ms": {phase: 1000.0 * seconds for phase, seconds in result.phase_seconds.items()},
        })
        planned = None
        fallback = self.fallback_for(result)
        if not result.found_goal and fallback == "plan":
            planned = self._partial(episode, result, layout, pose)
        elif result.found_goal or fallback != "policy":
            planned = choose_actions(result, self.config.horizon, self.config.num_subplans)
        if result.found_goal or not planned:
            episode.committed = []
        execute = self.goal_execute_for(result)
        if execute is None:
            episode.goal_rest = []
        elif result.found_goal or episode.goal_rest:
            start = WorldState(layout, pose, carrying, result.boxes)
            rest = episode.goal_rest if reaches_goal(episode.goal_rest, start, episode.task) else []
            if rest and (not result.found_goal or len(rest) <= len(planned)):
                planned, episode.committed = rest, []  # the incumbent is no longer than the new plan
            if result.found_goal or rest:
                planned, episode.goal_rest = planned[:execute], planned[execute:]
            else:  # no goal-reaching plan left
                episode.goal_rest = []
        episode.fell_back = not planned  # "policy", or every plan died: one safe policy step
        if not planned:
            episode.policy.carrying, episode.policy.last = carrying, None  # what this agent tracked
        actions = list(planned) if planned else [self.policy.act_batch([episode.policy], [obs])[0]]
        episode.chosen = tuple(actions + episode.goal_rest)  # the whole plan chosen
        return actions

    def _partial(self, episode: MCTDEpisode, result: SearchResult, layout: np.ndarray, pose: Pose) -> list[int] | None:
        """The "plan" fallback's actions: the first sub-plan of the best partial plan, or with
        ``commit`` the next sub-plan of the partial plan chosen earlier while what is left of it
        still enters a cell the episode has not been in (None: nothing to execute)."""
        if not self.commit or not result.navigation_only:
            return partial_plan_actions(result, self.config.horizon, self.config.num_subplans)
        if not leads_somewhere_new(episode.committed, layout, pose, episode.visited):
            episode.committed = partial_plan_whole(result) or []
        first = subplan_bounds(self.config.horizon, self.config.num_subplans, 0)[1]
        planned, episode.committed = episode.committed[:first], episode.committed[first:]
        return planned or None

    def fallback_for(self, result: SearchResult) -> str:
        """The fallback that applies after ``result``: ``self.fallback``, with "auto" resolved
        ("plan" where only the agent moves, else "policy")."""
        if self.fallback != "auto":
            return self.fallback
        return "plan" if result.navigation_only else "policy"

    def goal_execute_for(self, result: SearchResult) -> int | None:
        """The actions of a goal-reaching plan executed before the next search after ``result``
        (None: all of it): ``self.goal_execute``, with "auto" resolved (None where only the agent
        moves, :data:`GOAL_EXECUTE` where objects can change)."""
        if self.goal_execute != "auto":
            return self.goal_execute
        return None if result.navigation_only else GOAL_EXECUTE

    def act(self, obs: Mapping[str, Any]) -> int:
        """The next MiniGrid action (0..6) of the episode started by :meth:`reset`; plans when needed."""
        return self.act_batch([self._state], [obs])[0]

    def act_batch(self, states: Sequence[MCTDEpisode], observations: Sequence[Mapping[str, Any]]) -> list[int]:
        """The next action of each episode (one search per episode that needs a plan)."""
        return [self._act(state, obs) for state, obs in zip(states, observations)]

    def _act(self, episode: MCTDEpisode, obs: Mapping[str, Any]) -> int:
        image, layout, pose = parse_observation(obs, self.grid_size)
        if episode.expected is not None:  # the image hides the cell under the agent (an open door, say)
            layout[pose[0], pose[1]] = episode.expected[2][pose[0], pose[1]]  # no action changes it
        carrying = observation_carrying(obs, episode.carrying, episode.last, image)
        if episode.world is not None and world_changed(episode.world, (layout, pose, carrying)):
            episode.visited = set()  # a new carried object or layout: every cell is new again
        episode.carrying, episode.world = carrying, (layout, pose, carrying)
        episode.visited.add(pose[:2])
        surprised = episode.expected is not None and not matches(episode.expected, layout, pose, carrying)
        if surprised:
            episode.goal_rest = []
        if not episode.queue or surprised:
            if episode.queue:  # surprised: what is left of a committed partial plan is stale too
                episode.committed = []
            episode.queue = self._plan(episode, image, layout, pose, carrying, obs)
        episode.last_plan = list(episode.policy.last_plan) if episode.fell_back else episode.queue + episode.goal_rest
        action = episode.queue.pop(0)
        after, _ = world_step(WorldState(layout, pose, carrying, episode.boxes), action, episode.task)
        episode.expected, episode.boxes = (after.pose, after.carrying, after.layout, pose), after.boxes
        episode.last = (image, pose, action)
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
        any tree), ``goal_found_rate`` (fraction of searches that found a goal-reaching plan),
        ``escape_retry_rate`` (fraction of searches that grew a second tree, ``rollout_escape``),
        ``widened_rate`` (0.33: fraction of searches that grew a second tree with new first actions,
        ``MCTDConfig.widen_on_failure``) and
        ``mean_phase_ms`` (0.26: the mean ms per search of each phase of
        :attr:`agents.mctd.planner.SearchResult.phase_seconds`).
        """
        recs = self.records
        if not recs:
            return {"decisions": 0, "mean_expansions": 0.0, "mean_plan_ms": 0.0, "median_plan_ms": 0.0,
                    "plan_ms_p50": 0.0, "plan_ms_p95": 0.0, "plan_ms_p99": 0.0,
                    "mean_rounds": 0.0, "mean_nodes": 0.0, "max_depth": 0, "goal_found_rate": 0.0,
                    "escape_retry_rate": 0.0, "widened_rate": 0.0, "mean_phase_ms": dict.fromkeys(PHASES, 0.0)}
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
            "escape_retry_rate": mean("escape_retry"),
            "widened_rate": mean("widened"),
            "mean_phase_ms": {phase: float(np.mean([r["phase_ms"][phase] for r in recs])) for phase in PHASES},
        }


def episode_generator_seed(agent_seed: int, episode_seed: int) -> int:
    """A 63-bit generator seed mixed from an agent's seed and an episode's reset seed
    (:class:`numpy.random.SeedSequence`: nearby pairs give unrelated streams)."""
    return int(np.random.SeedSequence([int(agent_seed), int(episode_seed)]).generate_state(1, np.uint64)[0] >> 1)


def simulated_actions(node: Node) -> list[int]:
    """The actions of ``node``'s simulated plan up to where its simulation ended (the task done,
    the step before a failure, or the plan's end), without the ones that do nothing."""
    if node.plan is None or node.outcome is None:
        return []
    status, steps = node.outcome
    stop = steps if status == SUCCESS else steps - 1 if status == FAILURE else len(node.plan)
    return [int(a) for a in node.plan[:stop] if 0 <= int(a) < 7]


def reaches_goal(actions: Sequence[int], state: WorldState, task: BoundTask | None) -> bool:
    """Whether the rules say ``actions`` (0..6) from ``state`` finish ``task`` (an incumbent plan
    stays valid only while this holds under the latest search's box guess)."""
    for action in actions:
        state, status = world_step(state, int(action), task)
        if status != RUNNING:
            return status == SUCCESS
    return False


def search_candidates(result: SearchResult | None, chosen: tuple[int, ...] = ()) -> list[list[int]]:
    """Each simulated node's plan (:func:`simulated_actions`) of a search, best score first, each
    once, ``chosen`` left out."""
    if result is None:
        return []
    nodes = sorted((n for n in result.root.iter_nodes() if n.own_value is not None), key=lambda n: -n.own_value)
    seen, out = {tuple(chosen)}, []
    for node in nodes:
        actions = tuple(simulated_actions(node))
        if actions and actions not in seen:
            seen.add(actions)
            out.append(list(actions))
    return out


def matches(expected: tuple | None, layout: np.ndarray, pose: Pose, carrying: tuple[int, int, int]) -> bool:
    """Whether an observation (``layout``, ``pose``, ``carrying``) is the state the rules predicted:
    ``expected = (pose, carrying, layout, pose before)``. The cells under the agent before and
    after are not compared (the image hides what the agent stands on, e.g. an open door)."""
    if expected is None:
        return False
    want_pose, want_carrying, want_layout, before = expected
    if tuple(pose) != tuple(want_pose) or tuple(carrying) != tuple(want_carrying):
        return False
    return not world_changed((want_layout, before, carrying), (layout, pose, carrying))


def world_changed(previous: tuple, current: tuple) -> bool:
    """Whether the carried object or a cell changed between two ``(layout, pose, carrying)``
    (the cells the agent stands on in either are not compared)."""
    (old, old_pose, old_carrying), (new, new_pose, new_carrying) = previous, current
    if tuple(old_carrying) != tuple(new_carrying):
        return True
    differ = (old != new).any(axis=2)
    differ[old_pose[0], old_pose[1]] = differ[new_pose[0], new_pose[1]] = False
    return bool(differ.any())


def leads_somewhere_new(actions: Sequence[int], layout: np.ndarray, pose: Pose,
                        visited: set[tuple[int, int]]) -> bool:
    """Whether navigation ``actions`` (left / right / forward) from ``pose`` enter a cell not in
    ``visited``."""
    if not actions:
        return False
    out = simulate_plans(layout, pose, np.asarray([actions], dtype=np.int64))
    return bool(novel_cells(out.poses, out.steps, visited)[0] > 0)
