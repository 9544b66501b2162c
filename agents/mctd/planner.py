"""Monte Carlo Tree Diffusion (Yoon et al., ICML 2025) with Fast-MCTD's parallel rounds.

One search plans ``H`` actions from the current observation. The plan is split into ``S``
sub-plans (default S=4 of 8 tokens for H=32: four levels of tree depth give the search room
to branch while each sub-plan is long enough to leave a room or a corridor; see
:class:`MCTDConfig`). A round of search:

1. **Selection** (:func:`agents.mctd.tree.select_expansion`): K ``(node, meta-action)``
   pairs, made distinct by pending placeholders and spread out by virtual visits.
2. **Expansion**: denoise sub-plan ``depth`` of each selected node under its meta-action
   (a sampling temperature, or a classifier-free guidance scale), keeping the node's
   denoised tokens fixed and the later sub-plans masked. All K rows are ONE batched
   denoising call, whatever their meta-actions.
3. **Simulation** (jumpy denoising): fill every remaining MASK of each child with
   ``SIM_STEPS`` (1) greedy unmasking step, again one batched call.
4. **Evaluation**: execute each completed plan with the symbolic dynamics from the current
   state and score it with the task's own success predicate (:class:`agents.mctd.world.SearchWorld`:
   :func:`envs.dynamics.simulate_world` under all seven actions, or the navigation fast path
   :func:`envs.dynamics.simulate_plans` / :func:`plan_scores` where no object can change). The BFS
   expert is never used.
5. **Backpropagation**: max backup of the scores (:func:`agents.mctd.tree.backup`).

The search stops after ``max_expansions`` expansions, when nothing is left to expand, or
(``early_stop``) after the first round that found a goal-reaching plan once ``min_expansions``
are done. With ``rollout_escape=T > 0``, a search that found no goal-reaching plan while some
greedy continuation went round a cycle grows a second tree of the same budget in which the
continuations caught in a cycle sample their remaining windows at temperature ``T``; it is kept
only if it reaches the goal, so searches that succeed greedily cost and return the same.

Two additions to the paper's loop make plans longer than H useful (both use only the model and
the symbolic dynamics, never the expert): a simulated plan that is still running at its end is
**continued by the greedy policy** (``rollout_windows`` windows, ``rollout_execute`` actions of
each; :mod:`agents.mctd.rollout`, which decodes each pose once per search and lets a
continuation that meets an earlier goal-reaching one follow it) so that goals beyond the horizon
are found, and a goal-reaching plan is **shortcut** (:func:`envs.dynamics.shortcut`: excursions
that come back to a visited cell are cut; under the full rules also the pickups, drops and
toggles it turns out not to need, :meth:`agents.mctd.world.SearchWorld.shortcut`). In a perfect maze (a tree) the shortcut of any
goal-reaching path is the unique simple path, i.e. the shortest one up to turns. The plan a search
returns is then **straightened** (0.25, :func:`straighten_node`): detours that revisit no cell, such
as a U round an empty room, become straight or one-corner walks where the grid allows.

Batched denoising is the sampler's own unmasking loop (:func:`maze_mdlm.sampler.unmask`),
with what one batched call over mixed meta-actions needs: a temperature and a guidance scale
per row, a ``target`` mask of which MASK positions to fill (the others stay MASK), and a state
embedding computed once per search. Rows with equal tokens (the meta-actions of one node, at
their first unmasking step) share their conditional and unconditional forward rows
(``shared_state``), which is where a round of K leaves saves work that K rounds of one cannot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Collection

import numpy as np
import torch
from torch import Tensor

from agents.mctd.tree import (
    Node,
    add_placeholder,
    backup,
    best_node,
    new_root,
    node_value,
    select_expansion,
    subplan_bounds,
    tree_stats,
)
from agents.mctd.rollout import ContinuationMemo, GreedyContinuation, WorldContinuation
from agents.mctd.scoring import novel_cells, success_score
from agents.mctd.world import NOOP, SearchWorld, task_vector
from envs.dynamics import FAILURE, FORWARD, LEFT, RIGHT, RUNNING, SUCCESS, shortcut
from envs.observation import to_model_input
from envs.rules import useful_actions
from envs.tasks import BoundTask
from envs.world import NOTHING
from maze_mdlm.config import PlainConfig
from maze_mdlm.sampler import unmask

META_FAMILIES = ("cfg", "temperature")
# Fixed settings (MCTDConfig fields until 0.3; no benchmark, test or flag ever changed them):
CFG_TEMPERATURE = 1.0  # CFG family: sampling temperature of every expansion
TEMPERATURE_GUIDANCE = 1.0  # temperature family: guidance scale of every expansion
EXPAND_STEPS = 2  # unmasking steps that denoise one sub-plan (one was clearly worse)
SIM_STEPS = 1  # jumpy simulation: greedy unmasking steps that fill the rest of a plan
ROLLOUT_STEPS = 1  # unmasking steps per continuation window (2 gave the same results at twice the cost)
# and: UCT weight tree.DEFAULT_EXPLORATION (sqrt 2), no nucleus filter, END scored as the no-op it is
# when executed (plan_scores' skip_end=True), merged continuations (GreedyContinuation's merge_goals)
PARTIAL_SCORES = ("manhattan", "novelty")
PHASES = ("denoise", "continue", "score", "straighten")  # SearchResult.phase_seconds' keys
NAVIGATION = (LEFT, RIGHT, FORWARD)


@dataclass
class MCTDConfig(PlainConfig):
    """Hyper-parameters of one MCTD search (plain types only)."""

    horizon: int = 32  # plan length H (the model's training horizon)
    num_subplans: int = 4  # S sub-plans = tree depth; H=32 -> 8 tokens each
    meta_actions: str = "cfg"  # meta-action family: "cfg" (guidance scales) or "temperature"
    guidance_scales: tuple[float, ...] = (1.0, 2.0, 0.5)  # CFG family: w per meta-action
    temperatures: tuple[float, ...] = (0.0, 0.7, 1.5)  # temperature family: T per meta-action
    max_expansions: int = 24  # budget per decision (children created and simulated)
    parallel: int = 8  # K: leaves selected, expanded and simulated per batched round
    early_stop: bool = True  # stop after the round that first reaches the goal ...
    min_expansions: int = 11  # ... once at least this many expansions are done (11 = the root's
    # 3 meta-actions + one full round of K=8 below them: more candidate paths to pick the shortest)
    rollout_windows: int = 24  # a simulated plan that neither reaches the goal nor dies is continued
    # by the greedy policy for up to this many more H-action windows (0 = off), each decoded with
    # ROLLOUT_STEPS unmasking step from the pose the dynamics reached
    rollout_execute: int = 4  # actions of each rollout window executed before resampling
    rollout_escape: float = 0.0  # a continuation back at one of its own window starts is in a greedy
    # cycle, which it replays. With a temperature T > 0, a search that found no goal-reaching plan
    # while some continuation cycled grows a second tree in which such rows sample their remaining
    # windows at T instead (GreedyContinuation's escape); searches that find the goal are unchanged
    widen_on_failure: bool = True  # (0.33) full rules: a search whose tree found no goal-reaching
    # plan grows a second tree of the same budget whose plans must start with a useful action
    # (envs.rules.useful_actions) that no plan of the first tree started with, and keeps it if it
    # reaches the goal: the model's favourite first move (e.g. picking up a key a box revealed
    # instead of the guessed one) no longer takes every expansion. Navigation-only worlds: off
    shortcut: bool = True  # cut the excursions out of goal-reaching plans (envs.dynamics.shortcut), and
    # under the full rules the object actions they do not need (SearchWorld.shortcut, 0.15)
    straighten: bool = True  # (0.25) the goal-reaching plan a search returns has each walk between two
    # object actions replaced by a straight or one-corner walk where the grid allows a shorter one
    # (SearchWorld.straighten, envs.dynamics.straighten): detours the loop cut cannot see (no cell
    # visited twice), e.g. a U around an empty room. Only the returned plan: the tree ranks plans as before
    cut_partial: bool = True  # where only the agent moves (0.20): a plan still running after its
    # continuation has its loops cut too before it is scored and stored (cut_partial_plans), so its
    # novelty counts the new cells it ends on, not a dead end it walked into and back out of, and
    # the "plan" fallback executes the loop-free prefix; a plan whose loop-free path shows no new
    # cell keeps its loops (docs/suite_history.md, "Partial plans")
    partial_score: str = "novelty"  # how plans that neither reach the goal nor die rank (plan_scores):
    # "novelty" (cells the episode has not been in, which the agent passes; Manhattan nearness to the
    # goal breaks ties) or "manhattan" (0.3: the final cell's nearness to the goal only)
    guess_boxes: bool = True  # full rules: the search assumes closed boxes hold the keys of locked doors
    # whose key is nowhere in sight (envs.box_guess.guess_box_contents; 0.13); False: an opened box
    # is empty in simulation, as in 0.12
    time_budget_ms: float | None = None  # wall-clock budget per search (anytime: the best plan found
    # when time is up; no new round starts and continuations stop decoding once it has passed; at
    # least one round always runs). None (default): only max_expansions bounds a search, so plans
    # do not depend on the machine's speed

    def __post_init__(self) -> None:
        if self.meta_actions not in META_FAMILIES:
            raise ValueError(f"meta_actions must be one of {META_FAMILIES}, got {self.meta_actions!r}")
        self.guidance_scales = tuple(float(w) for w in self.guidance_scales)
        self.temperatures = tuple(float(t) for t in self.temperatures)
        if not 1 <= self.num_subplans <= self.horizon:
            raise ValueError(f"num_subplans must be in [1, {self.horizon}], got {self.num_subplans}")
        if self.partial_score not in PARTIAL_SCORES:
            raise ValueError(f"partial_score must be one of {PARTIAL_SCORES}, got {self.partial_score!r}")
        if self.time_budget_ms is not None and self.time_budget_ms <= 0:
            raise ValueError(f"time_budget_ms must be > 0 or None, got {self.time_budget_ms}")
        if self.rollout_escape < 0:
            raise ValueError(f"rollout_escape must be >= 0, got {self.rollout_escape}")
        if self.rollout_windows < 0:
            raise ValueError(f"rollout_windows must be >= 0, got {self.rollout_windows}")
        for name in ("max_expansions", "parallel", "rollout_execute"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(t < 0 for t in self.temperatures):
            raise ValueError("temperatures must be >= 0")
        if len(self.meta_table()) < 1:
            raise ValueError("at least one meta-action is needed")

    def meta_table(self) -> list[tuple[float, float]]:
        """``(temperature, guidance_scale)`` of each meta-action; guidance 1.0 = plain conditional."""
        if self.meta_actions == "cfg":
            return [(CFG_TEMPERATURE, w) for w in self.guidance_scales]
        return [(t, TEMPERATURE_GUIDANCE) for t in self.temperatures]


# ----------------------------------------------------------------------------- evaluation
def shortcut_successes(plans: np.ndarray, outcome: Any) -> np.ndarray:
    """``plans`` ``[B, L]`` with each goal-reaching row replaced by its loop-free shortcut
    (:func:`envs.dynamics.shortcut` of its simulated poses), padded with NOOP."""
    return _shortcut_rows(plans, outcome, outcome.status == SUCCESS)


def shortcut_running(plans: np.ndarray, outcome: Any) -> np.ndarray:
    """``plans`` ``[B, L]`` with each row still running at its end (neither at the goal nor dead)
    replaced by its loop-free version, padded with NOOP: it ends in the same cell, and its path
    holds only the cells it did not come back out of."""
    return _shortcut_rows(plans, outcome, outcome.status == RUNNING)


def cut_partial_plans(plans: np.ndarray, outcome: Any, world: SearchWorld, max_steps: int,
                      visited: Collection[tuple[int, int]] | None) -> np.ndarray:
    """``plans`` ``[B, L]`` with the loops of each row still running cut
    (:func:`shortcut_running`) where its loop-free path still enters a cell not in ``visited``
    (with ``visited`` None: every running row). A row whose loop-free path stays on known
    cells (a continuation that explored a dead end and came back) keeps its loops: they are
    the only new ground it shows, and with every such row cut the search would show none."""
    cut = shortcut_running(plans, outcome)
    keep = outcome.status == RUNNING
    if visited is not None and keep.any():
        _, again = world.score(cut, max_steps, visited, partial=False)
        keep &= novel_cells(again.poses, again.steps, visited) > 0
    return np.where(keep[:, None], cut, plans)


def _shortcut_rows(plans: np.ndarray, outcome: Any, rows: np.ndarray) -> np.ndarray:
    plans = plans.copy()
    for row in np.nonzero(rows)[0]:
        actions = shortcut(outcome.poses[row, : outcome.steps[row] + 1])
        plans[row] = NOOP
        plans[row, : len(actions)] = actions
    return plans


# ----------------------------------------------------------------------------- search
@dataclass
class SearchResult:
    """What one search returns.

    Attributes:
        root: the tree.
        best: the node whose simulated plan scored highest (None if nothing was expanded).
        expansions: children created and simulated.
        rounds: batched rounds run.
        seconds: wall time of the search.
        found_goal: whether some plan reached the goal.
        stats: ``nodes`` and ``max_depth`` of the tree (:func:`agents.mctd.tree.tree_stats`),
            ``rollout_calls``: the batched policy decodes the continuations ran,
            ``rollout_decoded``: the windows (rows) they decoded (windows replayed from the
            episode's :class:`agents.mctd.rollout.ContinuationMemo` are not decoded),
            ``rollout_cycles``: continued rows that met a greedy cycle, ``escape_retry``: 1 if a
            second tree was grown with ``rollout_escape`` (then ``expansions`` and ``rounds``
            count both trees, and ``root`` is the second one only if it found the goal),
            ``rollout_escapes``: rows that sampled their way out of a cycle, and ``widened``: 1 if
            a second tree was grown with ``widen_on_failure`` (0.33; counted and kept the same way).
        phase_seconds: wall time per phase (:data:`PHASES`): ``denoise`` (expansion and jumpy
            simulation), ``continue`` (policy continuation), ``score`` (dynamics, shortcut,
            backup), ``straighten`` (the returned plan's, ``MCTDConfig.straighten``; 0.26).
        navigation_only: the search's world had nothing but the agent that can change (a goal
            task, empty hand, no door or object: :attr:`agents.mctd.world.SearchWorld.navigation_only`).
        boxes: what the search assumed the closed boxes hold (its box guess,
            :attr:`agents.mctd.world.SearchWorld.boxes`, as :attr:`envs.world.WorldState.boxes`; 0.32).
    """

    root: Node
    best: Node | None
    expansions: int
    rounds: int
    seconds: float
    found_goal: bool
    stats: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    navigation_only: bool = False
    boxes: tuple = ()


class MCTDPlanner:
    """Runs MCTD searches with a denoiser; holds no per-episode state.

    Args:
        model: an ``MDLMPolicy`` (trained or not).
        config: search hyper-parameters.
        generator: the only source of randomness (seed it for reproducible plans).
    """

    def __init__(self, model: torch.nn.Module, config: MCTDConfig | None = None,
                 generator: torch.Generator | None = None):
        self.model = model.eval()
        self.config = config or MCTDConfig()
        self.device = next(model.parameters()).device
        self.end_token = int(model.config.end_token)
        self.generator = generator if generator is not None else torch.Generator(device=self.device).manual_seed(0)
        table = self.config.meta_table()
        self._meta_temperature = torch.tensor([t for t, _ in table], dtype=torch.float64)
        self._meta_guidance = torch.tensor([w for _, w in table], dtype=torch.float32)
        h, s = self.config.horizon, self.config.num_subplans
        self._subplan_mask = torch.zeros(s, h, dtype=torch.bool)  # [S, H] positions of each sub-plan
        for i in range(s):
            start, stop = subplan_bounds(h, s, i)
            self._subplan_mask[i, start:stop] = True

    @torch.inference_mode()
    def search(self, image: np.ndarray, layout: np.ndarray, pose: tuple[int, int, int],
               max_steps: int, max_expansions: int | None = None,
               visited: Collection[tuple[int, int]] | None = None, carrying: tuple[int, int, int] = NOTHING,
               task: BoundTask | None = None, memo: ContinuationMemo | None = None,
               widen: bool = True) -> SearchResult:
        """Search for a plan from a full-grid ``image [19,19,3]`` with the agent at ``pose``.

        ``layout`` is the image without the agent (:func:`envs.observation.layout_of`);
        ``max_steps`` scales the success score; ``max_expansions`` overrides the config;
        ``visited``: the (x, y) cells the episode has been in, used by ``partial_score="novelty"``
        (ignored with "manhattan"); ``carrying``: the encoded object in hand; ``task``: the
        episode's task bound to its start grid (None: reach a goal); ``memo``: greedy continuation
        windows shared with earlier searches of the same episode and model (None: this search's own);
        ``widen``: allow ``widen_on_failure``'s second tree (an agent that holds a goal-reaching
        plan passes False: it needs no new first move when this search finds no goal).
        """
        cfg = self.config
        start_time = time.perf_counter()
        deadline = None if cfg.time_budget_ms is None else start_time + cfg.time_budget_ms / 1000.0
        budget = cfg.max_expansions if max_expansions is None else max_expansions
        world = SearchWorld(layout, pose, tuple(carrying), task, self.end_token, cfg.guess_boxes)
        inputs = to_model_input(image[None], np.array([pose[2]]), np.array([world.carrying]), task_vector(task)[None])
        extra = ({} if world.navigation_only else
                 {"carrying": inputs["carrying"].to(self.device), "task": inputs["task"].to(self.device)})
        state = self.model.encode_state(inputs["grid"].to(self.device), inputs["direction"].to(self.device),
                                        **extra)  # [1, D]
        null = self.model.null_state_embedding(1).to(state.dtype)  # [1, D]
        if world.navigation_only:
            continuation = GreedyContinuation(self.model, layout, cfg.horizon, ROLLOUT_STEPS, cfg.rollout_execute,
                                              cfg.rollout_windows, self.generator, deadline=deadline, memo=memo)
        else:
            continuation = WorldContinuation(self.model, world, cfg.horizon, ROLLOUT_STEPS, cfg.rollout_execute,
                                             cfg.rollout_windows, self.generator, deadline=deadline, memo=memo)
        clock = dict.fromkeys(PHASES, 0.0)
        seen = frozenset(visited or ()) if cfg.partial_score == "novelty" else None
        grow = (state, null, world, max_steps, continuation, clock, seen, budget, deadline)
        root, expansions, rounds, found = self._grow(*grow)
        retried = False
        if (not found and cfg.rollout_escape > 0 and continuation.cycles
                and (deadline is None or time.perf_counter() < deadline)):
            # the greedy continuations cycled and no plan reached the goal: search once more with
            # the cycled rows sampling on (the greedy windows stay memoised); keep the first tree
            # unless the second finds the goal
            retried = True
            continuation.escape = cfg.rollout_escape
            again, more, more_rounds, found = self._grow(*grow)
            expansions, rounds = expansions + more, rounds + more_rounds
            if found:
                root = again
        widened = False
        if (not found and widen and cfg.widen_on_failure and not world.navigation_only
                and (deadline is None or time.perf_counter() < deadline)):
            fresh = untried_first_actions(root, world)
            if fresh:
                widened = True
                again, more, more_rounds, found = self._grow(*grow, first=fresh)
                expansions, rounds = expansions + more, rounds + more_rounds
                if found:
                    root = again
        best = best_node(root)
        if cfg.straighten and best is not None and best.outcome is not None and best.outcome[0] == SUCCESS:
            tic = time.perf_counter()
            straighten_node(best, world, max_steps)
            _lap(clock, "straighten", tic)
        return SearchResult(root=root, best=best, expansions=expansions, rounds=rounds,
                            seconds=time.perf_counter() - start_time, found_goal=found,
                            stats={**tree_stats(root), "rollout_calls": continuation.model_calls,
                                   "rollout_decoded": continuation.decoded,
                                   "rollout_cycles": continuation.cycles, "escape_retry": int(retried),
                                   "widened": int(widened),
                                   "rollout_escapes": continuation.escapes},
                            phase_seconds=clock, navigation_only=world.navigation_only, boxes=world.boxes)

    def _grow(self, state: Tensor, null: Tensor, world: SearchWorld, max_steps: int,
              continuation: GreedyContinuation, clock: dict[str, float], seen: frozenset | None, budget: int,
              deadline: float | None, first: list[int] | None = None) -> tuple[Node, int, int, bool]:
        """Grow one tree of at most ``budget`` expansions in batched rounds. Returns (root,
        expansions, rounds, whether a plan reached the goal). ``first``: the only tokens the
        root's children may start with (None: any)."""
        cfg = self.config
        root = new_root(cfg.horizon, len(self._meta_guidance))
        expansions = rounds = 0
        found = False
        while expansions < budget and not (found and cfg.early_stop and expansions >= cfg.min_expansions):
            if rounds and deadline is not None and time.perf_counter() >= deadline:
                break  # anytime: keep the best plan found so far
            batch: list[tuple[Node, int, Node]] = []
            for _ in range(min(cfg.parallel, budget - expansions)):
                picked = select_expansion(root, cfg.num_subplans)
                if picked is None:
                    break
                node, meta = picked
                batch.append((node, meta, add_placeholder(node, meta)))
            if not batch:
                break
            found |= self._expand_and_simulate(batch, state, null, world, max_steps, continuation, clock, seen, first)
            expansions += len(batch)
            rounds += 1
        return root, expansions, rounds, found

    def _expand_and_simulate(self, batch: list[tuple[Node, int, Node]], state: Tensor, null: Tensor,
                             world: SearchWorld, max_steps: int,
                             continuation: GreedyContinuation, clock: dict[str, float],
                             visited: frozenset | None = None, first: list[int] | None = None) -> bool:
        """One batched round: expansion, jumpy simulation, scoring, backup. True if a plan
        reached the goal. Adds each phase's wall time to ``clock``. ``first``: the only tokens a
        child of the root may start with (None: any)."""
        cfg = self.config
        tic = time.perf_counter()
        k = len(batch)
        parents = torch.from_numpy(np.stack([node.tokens for node, _, _ in batch])).to(self.device)  # [K, H]
        depth = torch.tensor([node.depth for node, _, _ in batch])
        meta = torch.tensor([m for _, m, _ in batch])
        states, nulls = state.expand(k, -1), null.expand(k, -1)
        forbid = None
        if first is not None:  # [K, H, V]: the root's children start with one of `first`
            forbid = torch.zeros(k, parents.shape[1], self.model.config.num_outputs, dtype=torch.bool)
            forbid[:, 0] = depth[:, None] == 0
            forbid[:, 0, first] = False
            forbid = forbid.to(self.device)
        children = unmask(
            self.model, states, parents, EXPAND_STEPS, target=self._subplan_mask[depth].to(self.device),
            temperature=self._meta_temperature[meta], guidance=self._meta_guidance[meta],
            generator=self.generator, null_emb=nulls, shared_state=True, forbid=forbid,
        )  # [K, H]: sub-plan `depth` denoised, later sub-plans still MASK
        plans = unmask(
            self.model, states, children, SIM_STEPS, generator=self.generator, null_emb=nulls, shared_state=True,
        )  # [K, H] complete (greedy jumpy denoising)
        plans_np, children_np = plans.cpu().numpy(), children.cpu().numpy()
        tic = _lap(clock, "denoise", tic)
        # plans still running are continued and rescored: their heuristic is computed only then
        scores, outcome = world.score(plans_np, max_steps, visited, partial=not cfg.rollout_windows)
        if cfg.rollout_windows and (outcome.status == RUNNING).any():
            tic = _lap(clock, "score", tic)
            running = outcome.status == RUNNING
            starts = outcome.final_pose if world.navigation_only else world.final_states(outcome, running)
            more = continuation.extend(starts, running)  # [K, n]
            tic = _lap(clock, "continue", tic)
            plans_np = np.concatenate([plans_np, more], axis=1)
            scores, outcome = world.score(plans_np, max_steps, visited)
        if cfg.cut_partial and world.navigation_only and (outcome.status == RUNNING).any():
            plans_np = cut_partial_plans(plans_np, outcome, world, max_steps, visited)
            scores, outcome = world.score(plans_np, max_steps, visited)
        if cfg.shortcut and (outcome.status == SUCCESS).any():
            if world.navigation_only:
                plans_np = shortcut_successes(plans_np, outcome)
            else:
                plans_np = world.shortcut(plans_np, outcome)
            scores, outcome = world.score(plans_np, max_steps, visited)
        executed = np.where(outcome.executed, world.executable(plans_np), NOOP)  # what the agent would send
        for i, (_, _, child) in enumerate(batch):
            backup(child, children_np[i], executed[i], (outcome.status[i], outcome.steps[i]),
                   float(scores[i]), cfg.num_subplans)
        _lap(clock, "score", tic)
        return bool((outcome.status == SUCCESS).any())


def untried_first_actions(root: Node, world: SearchWorld) -> list[int]:
    """The useful first actions from the search's start (:func:`envs.rules.useful_actions`:
    they change the state and do not fail) that no simulated plan of the tree under ``root``
    starts with, in action order."""
    tried = {next((int(a) for a in node.plan if a != NOOP), None)  # each simulated plan's first action
             for node in root.iter_nodes() if node.plan is not None}
    return [a for a, _ in useful_actions(world.state(), world.task) if a not in tried]


def straighten_node(node: Node, world: SearchWorld, max_steps: int) -> bool:
    """Replace the goal-reaching plan of ``node`` by its straightened version
    (:meth:`SearchWorld.straighten`: the same object actions from the same poses, fewer actions
    in between); the node's outcome and value follow, and its ancestors' values are refreshed.
    True if it was replaced."""
    shorter = world.straighten(node.plan)
    if shorter is None:
        return False
    node.plan = np.full(len(node.plan), NOOP, dtype=np.int64)
    node.plan[: len(shorter)] = shorter
    node.outcome = (SUCCESS, len(shorter))
    node.own_value = float(success_score(len(shorter), max_steps))
    walk: Node | None = node
    while walk is not None:
        walk.value = node_value(walk)
        walk = walk.parent
    return True


def _lap(clock: dict[str, float], phase: str, tic: float) -> float:
    """Add the time since ``tic`` to ``clock[phase]``; returns now."""
    now = time.perf_counter()
    clock[phase] += now - tic
    return now


def executable_prefix(node: Node, first_subplan: int) -> list[int]:
    """Actions of ``node``'s simulated plan worth sending to the env.

    A goal-reaching plan is executed up to the goal; any other plan only its first
    ``first_subplan`` tokens, cut where its simulation ended and, for a plan that fails (lava,
    a wrong pickup, ...), before the fatal step. The search stores each node's plan with the
    tokens that do nothing (END, object actions with nothing to act on) as NOOP (-1); those are
    dropped, so the predicted path is unchanged.
    """
    if node.plan is None or node.outcome is None:
        return []
    status, steps = node.outcome
    if status == SUCCESS:
        actions = node.plan[:steps]
    elif status == FAILURE:
        actions = node.plan[: min(steps - 1, first_subplan)]
    else:
        actions = node.plan[: min(steps, first_subplan)]
    return [int(a) for a in actions if 0 <= int(a) < 7]


def choose_actions(result: SearchResult, horizon: int, num_subplans: int) -> list[int]:
    """The actions to queue after a search: the best plan's executable prefix, else the
    executable prefix of the best-scoring node that has one, else ``[forward]``."""
    first = subplan_bounds(horizon, num_subplans, 0)[1]
    nodes = sorted((n for n in result.root.iter_nodes() if n.own_value is not None),
                   key=lambda n: -n.own_value)  # stable: first found wins ties
    if result.best is not None:
        nodes.insert(0, result.best)
    for node in nodes:
        actions = executable_prefix(node, first)
        if actions:
            return actions
    return [FORWARD]


def _alive_best_first(result: SearchResult) -> list[Node]:
    """The nodes whose plan ends alive without reaching the goal (RUNNING), highest score first
    (stable: the first found wins ties)."""
    return sorted((n for n in result.root.iter_nodes()
                   if n.own_value is not None and n.outcome is not None and n.outcome[0] == RUNNING),
                  key=lambda n: -n.own_value)


def partial_plan_whole(result: SearchResult) -> list[int] | None:
    """All executable actions of the best plan that ends alive without reaching the goal (RUNNING,
    highest score, something to execute), or None when there is none."""
    for node in _alive_best_first(result):
        actions = executable_prefix(node, len(node.plan))
        if actions:
            return actions
    return None


def partial_plan_actions(result: SearchResult, horizon: int, num_subplans: int) -> list[int] | None:
    """The first sub-plan of the best plan that ends alive without reaching the goal (RUNNING,
    highest score, a non-empty executable prefix), or None when no such plan exists (every plan
    died or has nothing to execute)."""
    first = subplan_bounds(horizon, num_subplans, 0)[1]
    for node in _alive_best_first(result):
        actions = executable_prefix(node, first)
        if actions:
            return actions
    return None
