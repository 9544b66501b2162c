"""Reference agents: the BFS oracle and a uniformly random policy."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from agents.base import parse_observation
from envs.dynamics import DONE, FORWARD, LEFT, RIGHT
from envs.expert import solve


class BFSAgent:
    """The oracle: the first action of the BFS-optimal plan from the current observation.

    It replans at every step (a BFS on the 19×19×4 state graph takes well under a millisecond), so it
    is optimal from any state. With no reachable goal it sends MiniGrid's no-op ``done``.
    """

    name = "bfs"

    def __init__(self) -> None:
        self.last_plan: list[int] = []  # the optimal plan from the latest act()'s observation

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        parse_observation(obs)  # fail early on a partial view
        self.last_plan = []

    def act(self, obs: Mapping[str, Any]) -> int:
        _, layout, pose = parse_observation(obs)
        plan = solve(layout, pose)
        self.last_plan = [int(a) for a in plan.actions] if plan.solvable else []
        return plan.actions[0] if plan.solvable and len(plan) else DONE


class RandomAgent:
    """Uniformly random navigation actions (left, right, forward), seeded for reproducibility."""

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
        return int(self.rng.choice((LEFT, RIGHT, FORWARD)))
