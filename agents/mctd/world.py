"""What one MCTD search knows about the world, and how it simulates and scores plans.

A :class:`SearchWorld` is the search's start (layout ``[W, H, 3]`` without the agent, pose,
carried object), the episode's task (:class:`envs.tasks.BoundTask`, bound to the start grid) and
the model's end-of-plan token. Plans ``[B, L]`` are model tokens; before they are simulated the
end token becomes :data:`NOOP` (-1, a no-op for both dynamics), and so does MiniGrid's ``done`` (6)
outside GoTo tasks, where it does nothing. An old checkpoint's END is ``done`` (6): it is always
END there, executed as a no-op and never sent (such a model cannot finish a GoTo task).

Two ways to simulate, with identical results where both apply:

* **navigation fast path** (:attr:`SearchWorld.navigation_only`: a goal task, an empty hand and no
  door, key, ball or box in the layout, so no object action can change anything):
  :func:`envs.dynamics.simulate_plans` and :func:`agents.mctd.scoring.plan_scores`, the 0.4
  scores bit for bit;
* **full rules**: :func:`envs.dynamics.simulate_world` with the task's own success and failure
  predicate (lava, a wrong pickup, ``done`` away from the GoTo target, ...).

Scores (:meth:`SearchWorld.score`): success ``max(1 - 0.9 t / max_steps, 0.1)`` with ``t`` the
actions the agent would send until the task is done; failure 0; a plan still running scores
below 0.1 from what the observation shows only (never the expert, never BFS distances): progress
events (a key of a locked door's colour picked up, doors opened; a drop that loses them counts
against), cells the episode has not been in, and the Manhattan nearness of the final cell to the
task's target as seen in the grid (a key that opens a locked door first, while one lies in the
grid and the hand holds none; else a closed box the search guesses holds one).

What a closed box holds is hidden in the observation (MiniGrid encodes a box, not its contents), so
the search guesses (:func:`envs.box_guess.guess_box_contents`, 0.13; in ``agents`` until 0.15):
while a locked door's key is nowhere in sight (not in the grid, not in hand), each closed box is
assumed to hold a key for such a door on the wall of the box's own room, the one nearest the
task's target (0.14; 0.13 took the door nearest the box). The guess uses only what the
observation shows; when the real box opens, the agent sees what it held, and the next search
starts from that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Sequence

import numpy as np

from agents.mctd.scoring import NOOP, member, novel_cells, plan_scores, success_score
from envs.box_guess import guess_box_contents, room_cells, task_targets  # noqa: F401  (re-exported)
from envs.dynamics import (
    BOX, CLOSED_STATE, DONE, DOOR, KEY, LOCKED_STATE, OPEN_STATE, PICKABLE, RUNNING, SUCCESS,
    WorldState, shortcut, simulate_plans, simulate_world, straighten_plan, world_step,
)
from envs.tasks import GOAL, GOTO, PUTNEAR, BoundTask
from envs.world import NOTHING

NAVIGATION = (0, 1, 2)
OBJECT_TOKENS = (3, 4, 5, 6)  # pickup, drop, toggle, done
DROPPABLE = (3, 4, 5)  # the object actions a goal-reaching plan may turn out not to need
OLD_END = DONE  # the end-of-plan token of checkpoints without ``config.end_token``
Cell = tuple[int, int, int]
Pose = tuple[int, int, int]


@dataclass
class Simulation:
    """``B`` simulated plans ``[B, L]`` (leading dim ``B``).

    Attributes:
        status: RUNNING, SUCCESS or FAILURE.
        steps: tokens executed until the episode ended, or L.
        poses: ``[B, L + 1, 3]`` pose before each token (frozen after the end).
        executed: ``[B, L]`` bool, the tokens the agent would send to the env (navigation tokens,
            and object actions that change something or end the episode), before the end.
        carrying: ``[B, L + 1, 3]`` carried object before each token (full rules only).
        layouts: ``[B, W, H, 3]`` layout at the end (full rules only).
        boxes: per plan, the guessed box contents at the end as :attr:`WorldState.boxes` (full
            rules only; a box carried or moved keeps its guess).
    """

    status: np.ndarray
    steps: np.ndarray
    poses: np.ndarray
    executed: np.ndarray
    carrying: np.ndarray | None = None
    layouts: np.ndarray | None = None
    boxes: list[tuple] | None = None

    @property
    def final_pose(self) -> np.ndarray:
        """``[B, 3]`` pose when the plan (or the episode) ended."""
        return self.poses[:, -1]


@dataclass
class SearchWorld:
    """The start of one search, the task and the model's END; simulates and scores plans."""

    layout: np.ndarray  # uint8 [W, H, 3], no agent
    pose: Pose
    carrying: Cell = NOTHING
    task: BoundTask | None = None
    end_token: int = OLD_END
    guess_boxes: bool = True  # assume closed boxes hold the missing keys (guess_box_contents)
    _start_potential: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.pose = tuple(int(v) for v in self.pose)
        self.carrying = tuple(int(v) for v in self.carrying)
        kind = GOAL if self.task is None else self.task.task.kind
        objects = np.isin(self.layout[:, :, 0], (DOOR, *PICKABLE)).any()
        self.navigation_only = kind == GOAL and self.carrying == NOTHING and not bool(objects)
        self.kind = kind
        doors = self.layout[:, :, 0] == DOOR
        self._locked0 = doors & (self.layout[:, :, 2] == LOCKED_STATE)
        self._closed0 = doors & (self.layout[:, :, 2] == CLOSED_STATE)
        self._locked_colors = set(self.layout[:, :, 1][self._locked0].tolist())
        self.boxes = (guess_box_contents(self.layout, self.carrying, self.goal_cells(self.layout, self.carrying),
                                         holder=self.pose[:2]) if self.guess_boxes else ())
        self._start_potential = self.potential(self.layout, self.carrying)

    # ------------------------------------------------------------------ tokens
    @property
    def done_is_real(self) -> bool:
        """Whether MiniGrid's ``done`` can end the episode (a GoTo task). A model whose END is
        ``done`` (old checkpoints) never sends it: its 6 is always END, executed as a no-op."""
        return self.kind == GOTO and self.end_token != DONE

    def noop_tokens(self) -> tuple[int, ...]:
        """Tokens simulated (and executed) as no-ops: END, and ``done`` outside GoTo tasks (where
        MiniGrid's ``done`` does nothing)."""
        return (self.end_token,) if self.done_is_real else tuple(sorted({self.end_token, DONE}))

    def executable(self, plans: np.ndarray) -> np.ndarray:
        """Model tokens ``[B, L]`` -> actions ``[B, L]`` with :meth:`noop_tokens` as :data:`NOOP`."""
        plans = np.asarray(plans, dtype=np.int64)
        return np.where(member(plans, self.noop_tokens()), NOOP, plans)

    def state(self) -> WorldState:
        """The search's start, with the guessed box contents."""
        return WorldState(self.layout, self.pose, self.carrying, self.boxes)

    def boxes_in(self, layout: np.ndarray) -> tuple[tuple[Any, Cell], ...]:
        """The guessed contents of the boxes still closed where they were at the start in ``layout``
        (not a carried one)."""
        return tuple((cell, held) for cell, held in self.boxes
                     if cell != "carried" and layout[cell[0], cell[1], 0] == BOX)

    # ------------------------------------------------------------------ simulation
    def simulate(self, plans: np.ndarray) -> Simulation:
        """Run model tokens ``[B, L]`` from the start (fast path or full rules)."""
        actions = self.executable(plans)
        if self.navigation_only:
            out = simulate_plans(self.layout, self.pose, actions)
            within = np.arange(actions.shape[1])[None] < out.steps[:, None]
            return Simulation(out.status, out.steps, out.poses, within & member(actions, NAVIGATION))
        return self._simulate_full(actions)

    def _simulate_full(self, actions: np.ndarray) -> Simulation:
        """The full rules for ``actions [B, L]`` (no-ops as NOOP). Rows without an object action
        run on the navigation dynamics (exact for them: only pickup, drop, toggle and GoTo's
        ``done`` differ), the others on :func:`envs.dynamics.simulate_world`, cut after the last
        token that is not NOOP (nothing changes after it)."""
        n, length = actions.shape
        objects = member(actions, OBJECT_TOKENS)
        full = objects.any(axis=1)  # [B]
        status, steps = np.zeros(n, np.int64), np.zeros(n, np.int64)
        poses = np.empty((n, length + 1, 3), np.int64)
        carrying = np.empty((n, length + 1, 3), np.int64)
        carrying[:] = self.carrying
        layouts = np.broadcast_to(self.layout, (n, *self.layout.shape)).copy()
        effects = np.zeros((n, length), dtype=bool)
        boxes = [self.boxes] * n
        for group in (~full, full):
            if not group.any():
                continue
            rows = np.nonzero(group)[0]
            real = actions[rows] != NOOP
            stop = int(np.max(np.where(real.any(axis=1), length - np.argmax(real[:, ::-1], axis=1), 0)))
            if group is full:
                out = simulate_world(self.state(), actions[rows, :stop], self.task)
                carrying[rows, : stop + 1], carrying[rows, stop + 1 :] = out.carrying, out.carrying[:, -1:]
                layouts[rows], effects[rows, :stop] = out.layouts, out.effects
                for row, held in zip(rows.tolist(), out.boxes):
                    boxes[row] = held
            else:
                out = simulate_plans(self.layout, self.pose, actions[rows, :stop])
            running = out.status == RUNNING
            status[rows], steps[rows] = out.status, np.where(running, length, out.steps)  # NOOPs to the end
            poses[rows, : stop + 1], poses[rows, stop + 1 :] = out.poses, out.poses[:, -1:]
        pos = np.arange(length)[None]
        within = pos < steps[:, None]
        terminal = (pos == steps[:, None] - 1) & (status != RUNNING)[:, None]
        executed = within & (member(actions, NAVIGATION) | effects | terminal) & (actions >= 0)
        return Simulation(status, steps, poses, executed, carrying, layouts, boxes)

    def final_states(self, sim: Simulation, rows: np.ndarray) -> list[WorldState | None]:
        """The world state where each plan ended, for the rows where ``rows`` ``[B]`` is True."""
        out: list[WorldState | None] = []
        for b, keep in enumerate(rows):
            if not keep:
                out.append(None)
                continue
            pose = tuple(int(v) for v in sim.poses[b, -1])
            if sim.layouts is None:
                out.append(WorldState(self.layout, pose, self.carrying))
            else:
                out.append(WorldState(sim.layouts[b], pose, tuple(int(v) for v in sim.carrying[b, -1]), sim.boxes[b]))
        return out

    # ------------------------------------------------------------------ scores
    def score(self, plans: np.ndarray, max_steps: int, visited: Collection[tuple[int, int]] | None = None,
              partial: bool = True) -> tuple[np.ndarray, Simulation]:
        """Scores ``[B]`` in [0, 1] of model-token plans ``[B, L]`` (module docstring) and their
        :class:`Simulation`. On the navigation fast path these are :func:`plan_scores`' exactly.
        ``partial=False`` skips the heuristic of plans still running (they get 1e-9; for a caller
        that continues and rescores them)."""
        if self.navigation_only:
            actions = self.executable(plans)
            scores, out = plan_scores(self.layout, self.pose, actions, max_steps, visited=visited if partial else None)
            within = np.arange(actions.shape[1])[None] < out.steps[:, None]
            return scores, Simulation(out.status, out.steps, out.poses, within & member(actions, NAVIGATION))
        sim = self.simulate(plans)
        n, length = sim.executed.shape
        t = sim.executed.sum(axis=1)
        success = success_score(t, max_steps)
        novel = None if visited is None or not partial else novel_cells(sim.poses, sim.steps, visited)
        running = np.zeros(n)
        span = float(self.layout.shape[0] + self.layout.shape[1] - 2)
        for b in range(n):
            if sim.status[b] != RUNNING or not partial:
                continue
            layout, carrying = sim.layouts[b], tuple(int(v) for v in sim.carrying[b, -1])
            x, y = int(sim.poses[b, -1, 0]), int(sim.poses[b, -1, 1])
            cells = self.target_cells(layout, carrying)
            near = 1.0 - np.abs(cells - (x, y)).sum(axis=1).min() / span if len(cells) else 0.0
            gain = self.potential(layout, carrying) - self._start_potential
            progress = 0.5 + 0.5 * gain / (1.0 + abs(gain))  # in (0, 1); 0.5 without change
            rest = near if novel is None else 0.8 * novel[b] / (length + 1) + 0.2 * near
            running[b] = 0.1 * (1 - 1e-9) * (0.5 * progress + 0.5 * float(np.clip(rest, 0.0, 1.0)))
        scores = np.where(sim.status == SUCCESS, success,
                          np.where(sim.status == RUNNING, np.maximum(running, 1e-9), 0.0))
        return scores.astype(np.float64), sim

    def potential(self, layout: np.ndarray, carrying: Cell) -> float:
        """Progress the observation can show: 2 per door locked at the start and open now, 1 per
        door closed at the start and open now, 1 for holding a key of a door locked at the start,
        1 for holding the PutNear object."""
        open_now = (layout[:, :, 0] == DOOR) & (layout[:, :, 2] == OPEN_STATE)
        phi = 2.0 * float((open_now & self._locked0).sum()) + float((open_now & self._closed0).sum())
        if carrying[0] == KEY and carrying[1] in self._locked_colors:
            phi += 1.0
        if self.kind == PUTNEAR and tuple(carrying[:2]) == self.task.task.obj:
            phi += 1.0
        return phi

    def target_cells(self, layout: np.ndarray, carrying: Cell) -> np.ndarray:
        """``[N, 2]`` cells the task is after, as seen in ``layout``: first a key that opens a
        locked door (none in hand), or the locked door of the key in hand; else the goal, the
        object to pick up, the GoTo / Open target or the PutNear anchor once the object is held."""
        locked = (layout[:, :, 0] == DOOR) & (layout[:, :, 2] == LOCKED_STATE)
        if locked.any():
            colors = set(layout[:, :, 1][locked].tolist())
            if carrying[0] == KEY and carrying[1] in colors:
                return np.argwhere(locked & (layout[:, :, 1] == carrying[1]))
            if carrying == NOTHING:
                keys = np.argwhere((layout[:, :, 0] == KEY) & np.isin(layout[:, :, 1], list(colors)))
                if len(keys):
                    return keys
                guessed = [cell for cell, _ in self.boxes_in(layout)]
                if guessed:
                    return np.array(guessed)
        return self.goal_cells(layout, carrying)

    def goal_cells(self, layout: np.ndarray, carrying: Cell) -> np.ndarray:
        """``[N, 2]`` cells the task itself is after in ``layout`` (no keys, doors or boxes on the
        way): the goal, the object to pick up, the GoTo / Open target or the PutNear anchor once
        the object is held."""
        return task_targets(layout, carrying, self.task)

    # ------------------------------------------------------------------ shortcut
    def shortcut(self, plans: np.ndarray, sim: Simulation) -> np.ndarray:
        """``plans`` ``[B, L]`` (``sim``: their :class:`Simulation`) with each goal-reaching row
        made shorter, padded with :data:`NOOP`, and still reaching the goal:

        1. loops are cut (:meth:`cut_loops`): the navigation between two executed object actions,
           which are kept where they were;
        2. needless object actions are dropped (:meth:`drop_needless`, 0.15): a pickup, drop or
           toggle whose removal leaves a plan that still reaches the goal (simulated from the
           search's start), with the loops cut again; e.g. a door opened and never gone through,
           and the steps to it. An object action the plan needs is never dropped.
        """
        plans = self.cut_loops(plans, sim)
        return self.drop_needless(plans, np.nonzero(sim.status == SUCCESS)[0])

    def cut_loops(self, plans: np.ndarray, sim: Simulation) -> np.ndarray:
        """``plans`` ``[B, L]`` with each goal-reaching row replaced by its loop-free version,
        padded with :data:`NOOP`: the navigation between two object actions that were executed
        (a pickup, drop, toggle, the final ``done``) is shortcut (:func:`envs.dynamics.shortcut`),
        the object actions are kept where they were, so no excursion that changed the carried
        object or the layout is ever cut. Every action of a cut row is executed."""
        actions = self.executable(plans)
        plans = plans.copy()
        for b in np.nonzero(sim.status == SUCCESS)[0]:
            steps = int(sim.steps[b])
            keep = np.nonzero(sim.executed[b, :steps] & ~member(actions[b, :steps], NAVIGATION))[0]
            out: list[int] = []
            start = 0
            for t in keep.tolist():
                out += shortcut(sim.poses[b, start : t + 1])
                out.append(int(actions[b, t]))
                start = t + 1
            out += shortcut(sim.poses[b, start : steps + 1])
            plans[b] = NOOP
            plans[b, : len(out)] = out
        return plans

    def drop_needless(self, plans: np.ndarray, rows: np.ndarray, passes: int = 4) -> np.ndarray:
        """``plans`` ``[B, L]`` whose ``rows`` reach the goal and are loop-free (:meth:`cut_loops`),
        with needless pickups, drops and toggles taken out of those rows. Each pass simulates, in
        one batch, every row once per object action with that action made a no-op; a row takes
        its shortest variant that still reaches the goal (loops cut again) if it is shorter than
        the row. Up to ``passes`` passes, while some row got shorter."""
        plans = plans.copy()
        rows = np.asarray(rows, dtype=np.int64)
        for _ in range(passes):
            variants, owners = [], []
            for b in rows.tolist():
                for t in np.nonzero(member(self.executable(plans[b : b + 1])[0], DROPPABLE))[0].tolist():
                    variant = plans[b].copy()
                    variant[t] = NOOP
                    variants.append(variant)
                    owners.append(b)
            if not variants:
                break
            variants, owners = np.stack(variants), np.array(owners)  # [V, L], [V] the row each varies
            sim = self.simulate(variants)
            ok = sim.status == SUCCESS
            if not ok.any():
                break
            shorter = self.cut_loops(variants, sim)
            lengths = np.where(ok, (shorter != NOOP).sum(axis=1), np.iinfo(np.int64).max)
            improved = []
            for b in rows.tolist():
                mine = np.nonzero(owners == b)[0]
                if not len(mine):
                    continue
                best = mine[np.argmin(lengths[mine])]
                if lengths[best] < (plans[b] != NOOP).sum():
                    plans[b] = shorter[best]
                    improved.append(b)
            if not improved:
                break
            rows = np.array(improved, dtype=np.int64)
        return plans

    def straighten(self, plan: np.ndarray) -> list[int] | None:
        """The goal-reaching ``plan`` ``[L]`` (actions, NOOP where nothing is executed) with each
        walk between two object actions straightened (:func:`envs.dynamics.straighten_plan`:
        straight or one-corner walks through cells no object action faces, so the same object
        actions happen from the same poses and the plan still reaches the goal), if that makes it
        shorter; else None. A plan with a token that does nothing is left alone (None)."""
        sim = self.simulate(np.asarray(plan, dtype=np.int64)[None])
        steps = int(sim.steps[0])
        if sim.status[0] != SUCCESS or not sim.executed[0, :steps].all():
            return None
        actions = self.executable(np.asarray(plan)[None])[0, :steps].tolist()
        out = straighten_plan(self.layout, sim.poses[0], actions)
        return out if len(out) < steps else None

    # ------------------------------------------------------------------ continuation
    def first_forbidden(self, state: WorldState) -> np.ndarray:
        """``[7]`` bool first actions a continuation window may not take: the useful-action rule
        (:func:`envs.rules.forbidden_first_actions`), except that ``done`` next to the GoTo
        target is allowed (it finishes the task)."""
        from envs.rules import forbidden_first_actions

        forbid = forbidden_first_actions(state.layout, state.pose, carrying=state.carrying, task=self.task)
        if self.done_is_real:
            _, status = world_step(state, DONE, self.task)
            forbid[DONE] = status != SUCCESS
        return forbid


def task_vector(task: BoundTask | None) -> np.ndarray:
    """int64 ``[5]`` of a bound task (zeros: reach the goal)."""
    return np.zeros(5, dtype=np.int64) if task is None else task.task.vector()


def world_inputs(states: Sequence[WorldState], task: BoundTask | None) -> dict[str, Any]:
    """Model tensors for the agent at each of ``states`` (:func:`envs.observation.to_model_input`)."""
    from envs.observation import place_agent, to_model_input

    images = np.stack([place_agent(s.layout, np.array([s.pose]))[0] for s in states])
    return to_model_input(images, np.array([s.pose[2] for s in states]),
                          carrying=np.array([s.carrying for s in states], dtype=np.int64),
                          tasks=np.tile(task_vector(task), (len(states), 1)))
