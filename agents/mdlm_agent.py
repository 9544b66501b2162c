"""MDLMAgent: the MDLM policy as a closed-loop, receding-horizon gymnasium agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Hashable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from agents.base import against_prediction, first_position_mask, parse_observation, torch_threads  # noqa: F401  (re-exported)
from envs.observation import observation_carrying, observation_task, to_model_input
from envs.rules import ACTIONS, forbidden_first_actions, state_key
from envs.tasks import GOTO, BoundTask, Task
from envs.world import DONE, FORWARD, NOTHING, SUCCESS, WorldState, world_step
from maze_mdlm.checkpoint import load_checkpoint
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample

Pose = tuple[int, int, int]
Parsed = tuple[np.ndarray, np.ndarray, Pose]  # (image [G,G,3], layout [G,G,3], pose), see parse_observation


@dataclass
class EpisodeState:
    """What :class:`MDLMAgent` remembers about one running episode.

    Attributes:
        queue: planned actions not executed yet.
        expected: the world state (layout, pose, carried object) that :func:`envs.world.world_step`
            predicts after the last action (None at the start); a different observation drops
            the queue.
        visited: every pose seen since the world (layout or carried object) last changed, in the
            order of their latest visit (a dict, most recent last).
        seen: every world state of the episode (:func:`envs.rules.state_key` keys); no object
            action may lead back to one.
        plan: the latest sampled plan's actions (before END; only its first ``execute`` ones unless
            the agent decodes ``full_plans``).
        last_plan: the part of ``plan`` from the pose of the latest decision, the action chosen
            there first (what pictures draw; :func:`maze_mdlm.evaluation.plan_view`).
        task: the episode's task, bound to its start grid (from the observation's ``task`` or
            ``mission``); the first-action rules use it.
        carrying: what the agent holds (the observation's ``carrying``, or tracked from its own
            actions for MiniGrid's ``FullyObsWrapper``).
        last: ``(image, pose, action)`` of the previous step (for that tracking).
        world: ``(layout [G,G,3], carrying)`` seen at the previous step (a change clears ``visited``).
    """

    queue: list[int] = field(default_factory=list)
    expected: WorldState | None = None
    visited: dict[Pose, None] = field(default_factory=dict)  # in visit order, most recent last
    seen: set[Hashable] = field(default_factory=set)  # envs.rules.state_key keys
    plan: list[int] = field(default_factory=list)
    task: BoundTask | None = None
    carrying: tuple[int, int, int] = NOTHING
    last: tuple | None = None
    last_plan: list[int] = field(default_factory=list)
    world: tuple[np.ndarray, tuple[int, int, int]] | None = None
    _plan_pos: int = 0  # index in ``plan`` of the next queued action


class MDLMAgent:
    """Sample a plan of ``horizon`` actions, execute its first ``execute`` ones, replan.

    It also replans early when an observation differs from the world state (layout, pose, carried
    object) that :func:`envs.world.world_step` predicted, or when the plan reaches the model's END
    before the task is done. END is ``model.config.end_token``: 8 for suite models, where a
    planned ``done`` (6) is a real action sent to the env (GoTo tasks); 6 (``done``) for older
    checkpoints, where it only ends the plan and is never sent.

    Each plan is conditioned on what the agent carries and on the episode's task (the
    observation's ``carrying`` and ``task``, or tracked / parsed from the mission).

    With ``safe_first_action`` (default) the first action of every plan is drawn among the
    useful actions of :func:`envs.rules.forbidden_first_actions`: ones that change the state
    without failing the episode (no bumping into walls, no no-op pickups, toggles or drops, never
    into lava); plus ``done`` when it completes a GoTo task, for models where ``done`` is an
    action. A deterministic policy that repeats a no-op would otherwise do so forever.
    With ``avoid_revisits`` (default) it also avoids a first move that leads back to a pose
    already visited since the world last changed, when another useful move exists: a shortest
    path never revisits a state, and a deterministic policy that does (e.g. left, right, left,
    ...) is stuck in that loop for good. Boxed in (every useful move leads to a visited pose), only
    the move to the least recently visited pose is allowed (0.6; before, any move was, and a
    greedy policy could turn left and right in place until the step limit). No object action may
    lead back to a world state of the episode (0.7: a greedy policy could pick up a box and drop it
    back until the step limit, ObstructedMaze-2Dlh seed 1000001). These rules use only
    the rules of the world (as MCTD does), never the expert; turn them off to measure the raw
    policy.

    Two ways to drive it: ``reset`` / ``act`` for one episode in a plain gymnasium loop, or
    ``new_episode`` / ``act_batch`` for many episodes in lockstep, where the episodes that need a
    new plan share one model call (:meth:`sample_plans`, the one method a subclass overrides to
    plan with another model). Greedy plans (``temperature=0``) do not depend on which other rows
    share the call (the sampler treats rows independently; on CPU, calls of fewer than 4 rows run
    other float kernels, logits within ~3e-5, which changed none of 2,765 shipped-model plans
    checked). Sampled plans do (the noise is drawn for the whole batch).

    Args:
        model: a trained :class:`MDLMPolicy`.
        horizon: plan window length H (the training horizon).
        execute: actions executed per plan before replanning (k, default 1: replan every step).
        num_steps: unmasking steps per plan (model forwards).
        temperature: 0 = greedy (deterministic); > 0 samples.
        seed: seeds the agent's sampling generator.
        safe_first_action: forbid a first action that is a no-op or steps into lava.
        avoid_revisits: also forbid first moves that lead to an already visited pose (unless
            that leaves nothing allowed) and object actions that lead back to a world state.
        full_plans: decode whole plans even though only the first ``execute`` actions are
            executed (for pictures of the plan; greedy actions are the same, at several times the
            sampling cost). Default False: decode only what is executed.
        num_threads: torch intra-op threads while sampling, restored afterwards (None: leave
            torch's setting alone). Default 1: batch-1 plans are small, and torch's 2 threads on a
            2-core CPU shared with another job made each plan several times slower.
        batch_threads: threads instead of ``num_threads`` when at least ``BIG_BATCH`` rows are
            planned in one call (batched evaluation); None leaves torch's setting (every core).
            Default 1 (0.24; None before): the README's 300-episode rollout takes 9.4-10.0 s on
            one thread and 7.3-7.6 s on torch's two on the quiet 2-core CPU, but with another job
            on the machine torch's spinning threads made it 10x slower (138 s vs 13.5 s on one).
    """

    BIG_BATCH = 16

    name = "mdlm"
    model_type = "mdlm"  # the checkpoint kind from_checkpoint accepts

    def __init__(
        self,
        model: MDLMPolicy,
        horizon: int = 32,
        execute: int = 1,
        num_steps: int = 8,
        temperature: float = 0.0,
        seed: int = 0,
        safe_first_action: bool = True,
        avoid_revisits: bool = True,
        num_threads: int | None = 1,
        batch_threads: int | None = 1,
        full_plans: bool = False,
    ):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.grid_size = model.config.grid_size  # the canvas the model sees (evaluation wraps envs to it)
        self.end_token = int(model.config.end_token)  # 8, or 6 (`done`) in checkpoints made before 0.5
        self.done_is_action = self.end_token != DONE  # suite models: done (6) is sent to the env
        self.horizon, self.execute, self.num_steps, self.temperature = horizon, execute, num_steps, temperature
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.safe_first_action, self.avoid_revisits = safe_first_action, avoid_revisits
        self.num_threads, self.batch_threads = num_threads, batch_threads
        self.full_plans = full_plans
        self._state = EpisodeState()  # the episode that reset / act play
        self.plans = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, env_id: str | None = None,
                        device: str | torch.device = "cpu", **kwargs: Any) -> "MDLMAgent":
        """Load ``path``, or the checkpoint shipped for ``env_id`` (default FourRooms; the generalist
        ``suite.pt`` for most supported envs, :mod:`maze_mdlm.shipped`), onto
        ``device`` ("cpu" (default), "cuda", "auto": CUDA when torch sees one).

        The checkpoint must hold this agent's ``model_type`` ("mdlm"; "ar" for ARAgent).

        Raises:
            maze_mdlm.devices.DeviceUnavailableError: ``device="cuda"`` without a CUDA device.
            ValueError: a missing or foreign checkpoint.
        """
        from envs import FOURROOMS_ID
        from maze_mdlm.devices import resolve_device
        from maze_mdlm.shipped import default_checkpoint

        target = resolve_device(device)
        if path is None:
            path = default_checkpoint(env_id or FOURROOMS_ID, cls.model_type)
        model, ckpt = load_checkpoint(path, map_location=target, model_type=cls.model_type)
        kwargs.setdefault("horizon", int(ckpt.get("train_config", {}).get("horizon", 32)))
        return cls(model, **kwargs)

    # ------------------------------------------------------------------ one episode (gymnasium loop)
    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        self._state = self.new_episode(obs, info)

    def act(self, obs: Mapping[str, Any]) -> int:
        return self.act_batch([self._state], [obs])[0]

    @property
    def last_plan(self) -> list[int]:
        """The plan behind the latest ``act``: action ids from that observation's pose, the returned
        action first (a whole sampled plan only with ``full_plans``)."""
        return self._state.last_plan

    def plan(self, image: np.ndarray, layout: np.ndarray, pose: Pose) -> list[int]:
        """Sample one plan from a full-grid image ``[G,G,3]`` (in the episode of ``reset``)."""
        return self.plan_batch([(image, layout, pose)], [self._state.visited], [self._state])[0]

    # ------------------------------------------------------------------ many episodes in lockstep
    def new_episode(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> EpisodeState:
        """A fresh state for an episode that starts at ``obs`` (validates the observation and the task)."""
        _, layout, _ = parse_observation(obs, self.grid_size)
        return EpisodeState(task=Task.from_vector(observation_task(obs)).bind(layout))

    def act_batch(self, states: Sequence[EpisodeState], observations: Sequence[Mapping[str, Any]]) -> list[int]:
        """The next action of each episode; the episodes that need a new plan share one model call."""
        rows, surprised = [], []
        for state, obs in zip(states, observations):
            row, as_predicted = self.observe(state, obs)
            rows.append(row)
            surprised.append(not as_predicted)
        replan = [i for i, state in enumerate(states)
                  if not state.queue or surprised[i]]  # plan done, or the world surprised us
        if replan:
            plans = self.plan_batch([rows[i] for i in replan], [states[i].visited for i in replan],
                                    [states[i] for i in replan])
            for i, plan in zip(replan, plans):
                states[i].plan, states[i].queue, states[i]._plan_pos = plan, plan[: self.execute], 0
        actions = [self._pop_action(state, layout, pose) for state, (_, layout, pose) in zip(states, rows)]
        for state, (image, _, pose), action in zip(states, rows, actions):
            state.last = (image, pose, action)
        return actions

    def observe(self, state: EpisodeState, obs: Mapping[str, Any]) -> tuple[Parsed, bool]:
        """Update ``state`` with an observation: ``((image, layout, pose), as_predicted)``.

        The image hides the cell under the agent (an open door, say); no action changes that
        cell, so it is taken from the prediction. ``as_predicted``: the layout, pose and carried
        object are the ones :attr:`EpisodeState.expected` predicted (False at the start).
        """
        image, layout, pose = parse_observation(obs, self.grid_size)
        state.carrying = observation_carrying(obs, state.carrying, state.last, image)
        layout, as_predicted = against_prediction(state.expected, layout, pose, state.carrying)
        if state.world is not None and (state.world[1] != state.carrying or not np.array_equal(state.world[0], layout)):
            state.visited.clear()  # a new world: poses seen before are new states
        state.world = (layout, state.carrying)
        state.visited.pop(pose, None)
        state.visited[pose] = None
        state.seen.add(state_key(layout, pose, state.carrying))
        return (image, layout, pose), as_predicted

    def plan_batch(self, rows: Sequence[Parsed], visited: Sequence[Collection[Pose]],
                   episodes: Sequence[EpisodeState] | None = None) -> list[list[int]]:
        """Sample one plan per parsed observation, in one model call; each plan stops before END.
        ``episodes`` (optional) give each row's task and carried object to the first-action rules."""
        episodes = episodes or [EpisodeState() for _ in rows]
        images = np.stack([image for image, _, _ in rows])  # [B, G, G, 3]
        tasks = np.stack([(ep.task.task if ep.task is not None else Task(0)).vector() for ep in episodes])
        inputs = to_model_input(images, np.array([pose[2] for _, _, pose in rows]),
                                np.array([ep.carrying for ep in episodes]), tasks)
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        forbid = None
        if self.safe_first_action:
            first = np.stack([self.first_action_forbidden(layout, pose, poses, ep.carrying, ep.task, ep.seen)
                              for (_, layout, pose), poses, ep in zip(rows, visited, episodes)])
            forbid = self.forbid_tensor(first)
        with torch_threads(self.batch_threads if len(rows) >= self.BIG_BATCH else self.num_threads):
            tokens = self.sample_plans(inputs["grid"], inputs["direction"], forbid,
                                       carrying=inputs["carrying"], task=inputs["task"])
        self.plans += len(rows)
        return [plan_actions(plan, self.end_token) for plan in tokens.tolist()]

    @torch.inference_mode()
    def sample_plans(self, grid: Tensor, direction: Tensor, forbid: Tensor | None,
                     carrying: Tensor | None = None, task: Tensor | None = None) -> Tensor:
        """The model call. grid [B,3,G,G] long, direction [B] long, forbid [B,H,V] bool, carrying
        [B,3] long, task [B,5] long (None: empty hands / goal tasks) -> [B,H] long.

        Only the first ``execute`` columns are used; an override may return just those.
        """
        return sample(self.model, grid, direction, self.horizon, self.num_steps, temperature=self.temperature,
                      generator=self.generator, forbid=forbid, stop_after=None if self.full_plans else self.execute,
                      carrying=carrying, task=task)

    # ------------------------------------------------------------------ rules of the world
    def first_action_forbidden(self, layout: np.ndarray, pose: Pose, visited: Collection[Pose] = (),
                               carrying: tuple[int, int, int] = NOTHING, task: BoundTask | None = None,
                               seen: Collection[Hashable] = ()) -> np.ndarray:
        """[7] bool: the MiniGrid actions forbidden as a plan's first action (all but the useful
        ones: :func:`envs.rules.forbidden_first_actions`). For models where ``done`` is an action,
        ``done`` is allowed where it completes the task (next to a GoTo target)."""
        revisits = self.avoid_revisits
        forbidden = forbidden_first_actions(layout, pose, visited if revisits else (), carrying, task,
                                            seen if revisits else ())
        if self.done_is_action and task is not None and task.task.kind == GOTO:
            _, status = world_step(WorldState(layout, tuple(pose), tuple(carrying)), DONE, task)
            forbidden[DONE] = status != SUCCESS
        return forbidden

    def forbid_tensor(self, first: np.ndarray) -> Tensor:
        """[B, 7] forbidden first actions -> the sampler's [B, H, V] mask (V the model's output
        classes, ``config.num_outputs``: the tokens past the 7 actions, END included, are forbidden
        first; later positions free)."""
        return first_position_mask(first, self.horizon, self.model.config.num_outputs).to(self.device)

    @staticmethod
    def _pop_action(state: EpisodeState, layout: np.ndarray, pose: Pose) -> int:
        """Take the next queued action and predict the world state it leads to
        (:func:`envs.world.world_step`: pose, layout and carried object)."""
        state.last_plan = state.plan[state._plan_pos:]
        state._plan_pos += 1
        action = state.queue.pop(0)
        state.expected, _ = world_step(WorldState(layout, pose, state.carrying), action, state.task)
        return action

    def stats(self) -> dict[str, float]:
        """Plans sampled so far."""
        return {"plans_sampled": self.plans}

    def stats_state(self) -> int:
        """What :meth:`stats` is computed from (picklable; :mod:`maze_mdlm.parallel` gathers it)."""
        return self.plans

    def load_stats_state(self, states: Sequence[int]) -> None:
        """Make :meth:`stats` cover the runs whose :meth:`stats_state` are given (``[]`` clears)."""
        self.plans = int(sum(states))


def plan_actions(tokens: list[int], end_token: int) -> list[int]:
    """The MiniGrid actions of a sampled plan before its first ``end_token`` or other non-action
    token (MASK: the part left unsampled by ``stop_after``); ``[FORWARD]`` if it starts with one."""
    stop = next((i for i, t in enumerate(tokens) if t == end_token or not 0 <= t < ACTIONS), len(tokens))
    return tokens[:stop] or [FORWARD]  # END first (only possible without safe_first_action)

