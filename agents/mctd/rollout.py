"""Greedy-policy continuation of MCTD plans, memoised by pose.

A simulated plan that neither reaches the goal nor dies within its H actions is continued by
the greedy MDLM policy, window by window: from the pose the dynamics reached, decode a window
of H tokens (``steps`` unmasking steps, first token restricted to pose-changing moves as in
:class:`agents.mdlm_agent.MDLMAgent`), execute its first ``execute`` actions, repeat, for at
most ``max_windows`` windows.

Within one search the layout is fixed, decoding is greedy (no noise) and the first-action
rule depends only on the pose, so the window decoded from a pose is a function of that pose.
:class:`GreedyContinuation` therefore decodes each pose once per search and replays it for
every row (of this round or a later one) that reaches it at a window start; and a row that
comes back to a pose it already started a window from is in a cycle it can never leave, so
the cycle is replayed to the window limit without the model. With ``merge_goals=False`` the
actions returned are exactly those of the plain window-by-window loop (tested against that
loop in ``tests/test_mctd_rollout.py``); only model calls are saved.

Decodes are sequential along a plan (a window starts where the previous one ended), so with
``speculate`` each batched call also decodes, for every waiting row, the start its window's
next tokens predict one window further on; a row whose guess comes true advances two windows
per call (on the maze: 35% fewer calls for 12% more decoded rows).

Rows that come back to one of their own window starts are counted in ``cycles``. With
``escape=T > 0`` such a row, which the greedy policy would cycle through forever, samples each
of its remaining windows at temperature ``T`` from the search's generator instead (not memoised:
every sampled window is a decode, batched with the greedy ones of the same call). Only rows
caught in a cycle change, and those could never reach the goal: in the 25×25 perfect maze they
are the continuations that took a wrong branch at a junction and shuttle between two dead ends.
It costs one decoded row per window of every such row. The planner switches it on
(:class:`agents.mctd.MCTDConfig`'s ``rollout_escape``; off by default) only for a second tree,
after a greedy search found no goal while some of its rows cycled (docs/suite_history.md: the
escape ablation).

``merge_goals=True`` (the planner's default) adds one shortcut: every pose on a continuation
that reached the goal is remembered with the actions that took it there, and a row that
passes through such a pose (at a window start or inside a window) follows those actions to
the goal instead of decoding on. Only rows that would have gone on are changed, and each
changed row reaches the goal: a merge never turns a success into a failure. The planner then
cuts the loops out of goal-reaching plans (:func:`envs.dynamics.shortcut`), so which of two
routes through a pose was taken matters less than finding one.

:class:`WorldContinuation` is the same under all seven actions: a window is decoded from a full
world state (pose, carried object, layout; the model also sees the carried object and the task),
executed with :func:`envs.world.world_step` and the task's verdict, and memoised by that state, so
an excursion that picked something up, dropped or toggled never meets its own start again.

A :class:`ContinuationMemo` keeps the greedy windows beyond one search: the agent holds one per
episode and passes it to every search, so a window decoded from a state in one search is replayed
in the later searches that reach that state (on the suite's long worlds the continuations decode
1.8–7x fewer windows per search: ``benchmarks.continuation_memo``, docs/suite_history.md). The memo's
tables are keyed by everything a greedy window depends on besides its start (the layout or task,
the window length, unmasking steps, executed actions and END token), so a memo is safe to share
between searches of one model; sampled (escape) windows are never kept. A replayed window is the
one decoding would give, but rows that replay run ahead of rows that wait for a decode, so with
``merge_goals`` a row may meet a goal-reaching continuation earlier (or another one) than it
would have without the memo; as with every merge, it then reaches the goal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.base import first_position_mask
from agents.mctd.scoring import member
from agents.mctd.world import (
    NOOP, SearchWorld, world_inputs,
)
from envs.dynamics import DONE, RUNNING, SUCCESS, WorldState, simulate_plans, world_step
from envs.observation import place_agent, to_model_input
from envs.rules import forbidden_first_actions
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import MASK

Pose = tuple[int, int, int]


@dataclass(frozen=True)
class Window:
    """One decoded window: the ``[E]`` actions executed from a pose, the ``E + 1`` poses before
    and after each of them (frozen once the window ended), the dynamics' status at its end
    (RUNNING, SUCCESS or FAILURE), ``steps``, the actions executed until then, and ``ahead``:
    where the window's next E tokens would lead from its end (None if it ended, or they end
    the episode, or were not decoded), the guess for the window start after the next."""

    actions: np.ndarray
    poses: tuple[Pose, ...]
    status: int
    steps: int
    ahead: Pose | None = None

    @property
    def end(self) -> Pose:
        """The pose the window leads to."""
        return self.poses[-1]


@dataclass
class _Row:
    """One plan being continued: ``out [max_actions]`` its actions (a view into the result),
    ``used`` how many are written, ``pose`` where it is, ``started`` its window starts (pose ->
    action index), ``path`` the pose before each written action, ``last`` its latest window."""

    out: np.ndarray
    pose: Pose
    used: int = 0
    started: dict[Pose, int] = field(default_factory=dict)
    path: list[Pose] = field(default_factory=list)
    last: Window | None = None
    escaping: bool = False  # stuck in a greedy cycle once: its windows are sampled from now on
    sampled: Window | None = None  # the sampled window decoded for it at ``pose``, not yet executed


class ContinuationMemo:
    """Greedy windows kept across searches (one per episode; see the module docstring).

    ``table(context)`` is the dict of one context (a hashable description of what the windows
    depend on besides their start), made empty on first use; ``windows`` counts the windows
    held in all tables. A long episode in a world with objects keeps meeting new states (about
    1.7 KB each with their world states: 3458 windows after 137 searches of one
    ObstructedMaze-Full episode), so once more than ``limit`` windows are held the memo starts
    over, at the next ``table`` call (a search's start, never during one).
    """

    def __init__(self, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._tables: dict[Any, dict] = {}

    def table(self, context: Any) -> dict:
        """The shared dict of ``context`` (created empty the first time, and after the memo
        held more than ``limit`` windows)."""
        if self.windows > self.limit:
            self._tables.clear()
        return self._tables.setdefault(context, {})

    @property
    def windows(self) -> int:
        """Greedy windows held."""
        return sum(len(t.get("windows", ())) for t in self._tables.values())


class GreedyContinuation:
    """Continues plans in one layout with the greedy policy; one instance per search.

    Args:
        model: an ``MDLMPolicy`` in eval mode.
        layout: ``[W, H, 3]`` the grid without the agent.
        horizon: window length H the model decodes.
        steps: unmasking steps per window.
        execute: actions E of each window that are executed (at most H).
        max_windows: windows W per plan at most (``W * E`` actions).
        generator: passed to the sampler (greedy decoding draws no noise from it).
        merge_goals: follow known goal-reaching continuations (module docstring).
        speculate: with each batch of window starts that rows wait for, also decode the start
            each of those rows is expected to reach one window later (:attr:`Window.ahead`), so
            that a row whose guess comes true advances two windows per model call. A window
            is always the greedy decode at its own pose, so this changes only which calls
            decode it, never what it is.
        deadline: a ``time.perf_counter()`` value after which no more windows are decoded (the
            rows still waiting keep what they have, padded with NOOP); None: no limit.
        escape: sampling temperature for rows caught in a greedy cycle (module docstring);
            0 (default): such a row replays its cycle to the end of its budget.
        memo: a :class:`ContinuationMemo` whose greedy windows this continuation reads and adds
            to (the episode's, kept across its searches); None: windows are kept for this
            continuation only.
    """

    def __init__(self, model: torch.nn.Module, layout: np.ndarray, horizon: int, steps: int, execute: int,
                 max_windows: int, generator: torch.Generator | None = None, merge_goals: bool = True,
                 speculate: bool = True, deadline: float | None = None, escape: float = 0.0,
                 memo: ContinuationMemo | None = None):
        if escape < 0:
            raise ValueError(f"escape must be >= 0, got {escape}")
        self.model, self.layout, self.horizon, self.steps = model, layout, horizon, steps
        self.execute, self.max_windows, self.generator = min(execute, horizon), max_windows, generator
        self.merge_goals, self.speculate, self.deadline, self.escape = merge_goals, speculate, deadline, escape
        self.device = next(model.parameters()).device
        self.end_token, self.num_actions = int(model.config.end_token), int(model.config.num_outputs)
        self.noop_tokens = (3, 4, 5, DONE, self.end_token)  # object actions do nothing in a navigation world
        self.windows: dict[Any, Window] = self._memo_table(memo, ("pose", layout.tobytes(), layout.shape)).setdefault(
            "windows", {})
        self.to_goal: dict[Pose, tuple[np.ndarray, int]] = {}  # pose -> (goal-reaching actions, its index)
        self.model_calls = 0  # batched decodes run (sequential model calls)
        self.decoded = 0  # poses decoded (rows over all calls)
        self.cycles = 0  # rows that came back to one of their own window starts (a greedy cycle)
        self.escapes = 0  # rows that left a greedy cycle by sampling

    def _memo_table(self, memo: ContinuationMemo | None, context: tuple) -> dict:
        """``memo``'s table for ``context`` and this continuation's decoding settings (window
        length, unmasking steps, executed actions, END token); a fresh dict without a memo."""
        if memo is None:
            return {}
        return memo.table((*context, self.horizon, self.steps, self.execute, self.end_token))

    @property
    def max_actions(self) -> int:
        """Actions per continued plan at most."""
        return self.max_windows * self.execute

    def start_keys(self, starts: Any) -> list[Any]:
        """The memo keys of the rows' starts: poses ``[K, 3]`` -> ``(x, y, d)`` tuples."""
        return [(int(x), int(y), int(d)) for x, y, d in np.asarray(starts).reshape(-1, 3)]

    def extend(self, poses: Any, live: np.ndarray) -> np.ndarray:
        """Continue the rows of ``poses [K, 3]`` where ``live [K]`` is True.

        Returns ``[K, n]`` actions, ``n`` the most any row used (NOOP once a row reached the
        goal or lava, and for rows that were not live).
        """
        keys = self.start_keys(poses)
        out = np.full((len(keys), self.max_actions), NOOP, dtype=np.int64)
        rows = [_Row(out[i], key) for i, key in enumerate(keys)]
        active = [row for row, alive in zip(rows, live) if alive]
        while active:
            waiting = [row for row in active if self._advance(row)]
            if not waiting or (self.deadline is not None and time.perf_counter() >= self.deadline):
                break
            greedy = [row for row in waiting if not row.escaping]
            needed = list(dict.fromkeys(row.pose for row in greedy))
            guesses = [row.last.ahead for row in greedy if self.speculate and row.last is not None]
            extra = [g for g in dict.fromkeys(guesses) if g is not None and g not in self.windows and g not in needed]
            escaping = [row for row in waiting if row.escaping]
            keys = needed + extra  # greedy windows, memoised; then one sampled window per escaping row
            temperature = (torch.tensor([0.0] * len(keys) + [self.escape] * len(escaping), dtype=torch.float64)
                           if escaping else 0.0)
            windows = self._windows(keys + [row.pose for row in escaping], temperature)
            self.windows.update(zip(keys, windows))
            for row, window in zip(escaping, windows[len(keys):]):
                row.sampled = window
            active = waiting
        return out[:, : max((row.used for row in rows), default=0)]

    def _advance(self, row: _Row) -> bool:
        """Replay known windows for ``row``; True if it waits for a decode at ``row.pose``."""
        execute, limit = self.execute, self.max_actions
        while row.used + execute <= limit:
            here, at = row.pose, row.used
            if self._merge(row, here, [], []):
                return False
            if here in row.started and not row.escaping:  # back at a window start: a greedy cycle
                self.cycles += 1
                if self.escape > 0:  # sample the remaining windows instead of replaying it
                    row.escaping = True
                    self.escapes += 1
                    continue
                first = row.started[here]
                row.out[at:] = np.resize(row.out[first:at], limit - at)
                row.used = limit
                return False
            if row.escaping:
                window, row.sampled = row.sampled, None
            else:
                window = self.windows.get(here)
            if window is None:
                return True
            for j in range(1, window.steps):  # a goal-reaching route through the window's inside
                if self._merge(row, window.poses[j], window.actions[:j].tolist(), list(window.poses[:j])):
                    return False
            row.started[here] = at
            row.last = window
            row.out[at : at + execute] = window.actions
            row.path.extend(window.poses[:execute])
            row.used += execute
            row.pose = window.end
            if window.status == SUCCESS:
                self._remember(row.out[: at + window.steps], row.path[: at + window.steps])
            if window.status != RUNNING:
                return False
        return False

    def _merge(self, row: _Row, at_pose: Pose, actions: list[int], poses: list[Pose]) -> bool:
        """If ``at_pose`` (reached after ``actions`` through ``poses`` from ``row.pose``) is on a
        known goal-reaching continuation that fits the row's budget, write the row's way to the
        goal and return True."""
        if not self.merge_goals or at_pose not in self.to_goal:
            return False
        known, index = self.to_goal[at_pose]
        tail = known[index:]
        start = row.used
        end = start + len(actions) + len(tail)
        if end > self.max_actions:
            return False
        row.out[start : start + len(actions)] = actions
        row.out[start + len(actions) : end] = tail
        row.path.extend(poses)
        row.used = end
        self._remember(row.out[: start + len(actions)], row.path, tail_of=(known, index))
        return True

    def _remember(self, actions: np.ndarray, poses: list[Pose],
                  tail_of: tuple[np.ndarray, int] | None = None) -> None:
        """Record the poses of a goal-reaching continuation: ``actions [n]`` taken at ``poses [n]``,
        followed (after a merge) by the known route ``tail_of``."""
        if tail_of is not None:
            known, index = tail_of
            actions = np.concatenate([actions, known[index:]])
        actions = np.array(actions, dtype=np.int64)
        for i, p in enumerate(poses):
            self.to_goal.setdefault(p, (actions, i))

    def _windows(self, poses: list[Pose], temperature: float | torch.Tensor) -> list[Window]:
        """One batched decode of a window from each of ``poses`` at ``temperature`` (a float or
        ``[R]`` per row; 0: greedy)."""
        arr = np.array(poses, dtype=np.int64)  # [R, 3]
        inputs = to_model_input(place_agent(self.layout, arr), arr[:, 2])
        first = np.stack([forbidden_first_actions(self.layout, p) for p in poses])
        forbid = first_position_mask(first, self.horizon, self.num_actions)
        tokens = sample(self.model, inputs["grid"].to(self.device), inputs["direction"].to(self.device),
                        self.horizon, self.steps, forbid=forbid.to(self.device), generator=self.generator,
                        stop_after=self.execute, temperature=temperature)
        tokens = tokens.cpu().numpy()
        executed = tokens[:, : self.execute]
        actions = np.where(member(executed, self.noop_tokens), NOOP, executed)  # [R, E]
        outcome = simulate_plans(self.layout, arr, actions)
        following = tokens[:, self.execute : 2 * self.execute]  # [R, <=E] the tokens after the executed ones
        following_actions = np.where(member(following, self.noop_tokens), NOOP, following)
        guess = simulate_plans(self.layout, outcome.final_pose, following_actions)
        windows = []
        for i in range(len(poses)):
            visited = tuple((int(x), int(y), int(d)) for x, y, d in outcome.poses[i])
            decoded = following.shape[1] == self.execute and not (following[i] == MASK).any()
            ahead = (tuple(int(v) for v in guess.final_pose[i])
                     if decoded and outcome.status[i] == RUNNING and guess.status[i] == RUNNING else None)
            windows.append(Window(actions[i], visited, int(outcome.status[i]), int(outcome.steps[i]), ahead))
        self.model_calls += 1
        self.decoded += len(poses)
        return windows


class WorldContinuation(GreedyContinuation):
    """:class:`GreedyContinuation` under all seven actions and a task (module docstring).

    Memo keys are full world states ``(x, y, d, carried cell, layout id)``; ``extend`` takes the
    rows' start :class:`envs.world.WorldState` (None for rows that are not live) instead of poses.

    Args:
        world: the search's :class:`agents.mctd.world.SearchWorld` (task, END, first-action rule).
        The others as :class:`GreedyContinuation`.
    """

    def __init__(self, model: torch.nn.Module, world: SearchWorld, horizon: int, steps: int, execute: int,
                 max_windows: int, generator: torch.Generator | None = None, merge_goals: bool = True,
                 speculate: bool = True, deadline: float | None = None, escape: float = 0.0,
                 memo: ContinuationMemo | None = None):
        super().__init__(model, world.layout, horizon, steps, execute, max_windows, generator, merge_goals,
                         speculate, deadline, escape)
        self.world = world
        self.noop_tokens = world.noop_tokens()
        # keys name layouts by number, so the memo shares the numbering and the states with the windows
        shared = self._memo_table(memo, ("world", world.task))
        self.windows = shared.setdefault("windows", {})
        self.states: dict[Any, WorldState] = shared.setdefault("states", {})
        self._layout_ids: dict[tuple, int] = shared.setdefault("layout_ids", {})

    def key(self, state: WorldState) -> Any:
        """The memo key of ``state`` (registered for decoding)."""
        raw = np.ascontiguousarray(state.layout, dtype=np.uint8).tobytes()
        lid = self._layout_ids.setdefault((raw, state.boxes), len(self._layout_ids))  # boxes: the guessed contents
        key = (*state.pose, *state.carrying, lid)
        self.states.setdefault(key, state)
        return key

    def start_keys(self, starts: Any) -> list[Any]:
        fallback = WorldState(self.layout, (0, 0, 0))
        return [self.key(s if s is not None else fallback) for s in starts]

    def _run(self, state: WorldState, actions: np.ndarray) -> tuple[list[Any], int, int]:
        """``actions`` from ``state`` under the rules -> (keys before and after each, frozen after the
        end, status, steps)."""
        keys, status, steps = [self.key(state)], RUNNING, len(actions)
        for i, a in enumerate(actions.tolist()):
            if status == RUNNING:
                state, status = world_step(state, int(a), self.world.task)
                if status != RUNNING:
                    steps = i + 1
            keys.append(self.key(state))
        return keys, status, steps

    def _windows(self, keys: list[Any], temperature: float | torch.Tensor) -> list[Window]:
        """One batched decode of a window from each of ``keys`` at ``temperature`` (a float or
        ``[R]`` per row; 0: greedy)."""
        states = [self.states[k] for k in keys]
        inputs = world_inputs(states, self.world.task)
        first = np.stack([self.world.first_forbidden(s) for s in states])
        forbid = first_position_mask(first, self.horizon, self.num_actions)
        dev = self.device
        tokens = sample(self.model, inputs["grid"].to(dev), inputs["direction"].to(dev), self.horizon, self.steps,
                        carrying=inputs["carrying"].to(dev), task=inputs["task"].to(dev), forbid=forbid.to(dev),
                        generator=self.generator, stop_after=self.execute, temperature=temperature)
        tokens = tokens.cpu().numpy()
        actions = np.where(member(tokens[:, : self.execute], self.noop_tokens), NOOP, tokens[:, : self.execute])
        following = tokens[:, self.execute : 2 * self.execute]
        windows = []
        for i, state in enumerate(states):
            visited, status, steps = self._run(state, actions[i])
            ahead = None
            decoded = following.shape[1] == self.execute and not (following[i] == MASK).any()
            if decoded and status == RUNNING:
                nxt = np.where(member(following[i], self.noop_tokens), NOOP, following[i])
                guess, guess_status, _ = self._run(self.states[visited[-1]], nxt)
                ahead = guess[-1] if guess_status == RUNNING else None
            windows.append(Window(actions[i], tuple(visited), int(status), int(steps), ahead))
        self.model_calls += 1
        self.decoded += len(keys)
        return windows
