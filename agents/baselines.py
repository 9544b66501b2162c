"""Reference agents: the expert oracle and a uniformly random policy."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from agents.base import against_prediction, parse_observation
from envs.expert import UNSOLVABLE, ExpertBudgetError, solve_state
from envs.observation import observation_carrying, observation_task
from envs.tasks import Task
from envs.world import DONE, NOTHING, WorldState, world_step


class BFSAgent:
    """The oracle: follows the expert's optimal plan (:mod:`envs.expert`, A* over the full state),
    and replans whenever an observation differs from the state its plan predicted, so it is
    optimal from any state.

    It is the one agent that reads privileged state: what closed boxes hold, from
    ``info["boxes"]`` (given by :class:`envs.FullGridObsWrapper` at reset; without it boxes count
    as empty). What it carries comes from the observation's ``carrying``, or is tracked from its
    own actions for MiniGrid's ``FullyObsWrapper``. With no solution it sends ``done``.
    """

    name = "bfs"

    def __init__(self) -> None:
        self.last_plan: list[int] = []  # the optimal plan from the latest act()'s observation

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        image, layout, pose = parse_observation(obs)  # fails early on a partial view
        self._boxes = tuple(sorted(((tuple(w), tuple(c)) for w, c in (info or {}).get("boxes", ())), key=str))
        self._task = Task.from_vector(observation_task(obs)).bind(layout)
        self._carrying = tuple(int(v) for v in obs.get("carrying", NOTHING))
        self._plan: list[int] = []
        self._gave_up = False
        self._expected: WorldState | None = None
        self._last: tuple | None = None  # (image, pose, action) of the previous step
        self.last_plan = []

    def act(self, obs: Mapping[str, Any]) -> int:
        if not hasattr(self, "_task"):  # used without reset: start from this observation
            self.reset(obs)
        image, layout, pose = parse_observation(obs)
        self._carrying = observation_carrying(obs, self._carrying, self._last, image)
        layout, as_expected = against_prediction(self._expected, layout, pose, self._carrying)
        if as_expected and (self._plan or self._gave_up):
            state = self._expected  # on plan, or the state the expert already gave up on
        else:
            state = WorldState(layout, pose, self._carrying, self.boxes_for(layout, pose, self._carrying))
            try:
                plan = solve_state(state, self._task)
            except ExpertBudgetError:  # beyond the expert's budget: counted as a failure, not hidden
                plan = UNSOLVABLE
            self._plan = list(plan.actions) if plan.solvable else []
            self._gave_up = not plan.solvable  # no retry until the world changes
        self.last_plan = list(self._plan)
        action = self._plan.pop(0) if self._plan else DONE
        self._expected, _ = world_step(state, action, self._task)
        self._last = (image, pose, action)
        return action

    def boxes_for(self, layout: np.ndarray, pose: tuple[int, int, int], carrying: tuple[int, int, int]) -> tuple:
        """What the closed boxes hold when the expert plans from ``layout`` (as
        :attr:`envs.world.WorldState.boxes`): the env's own contents, read at reset."""
        return self._boxes


class RandomAgent:
    """Uniformly random MiniGrid actions (all seven), seeded for reproducibility."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def seed_episode(self, episode_seed: int) -> None:
        """Restart the generator from ``(seed, episode_seed)``, so that an episode does not depend
        on the ones before it (:func:`maze_mdlm.evaluation.evaluate` calls it per episode)."""
        self.rng = np.random.default_rng([self.seed, int(episode_seed)])

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        parse_observation(obs)

    def act(self, obs: Mapping[str, Any]) -> int:
        return int(self.rng.integers(0, 7))
