"""MDLMAgent: the MDLM policy as a closed-loop, receding-horizon gymnasium agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from agents.base import parse_observation, torch_threads
from envs.dynamics import FAILURE, FORWARD, LEFT, RIGHT, step
from envs.observation import to_model_input
from maze_mdlm.checkpoint import load_checkpoint
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import END, NUM_ACTIONS

NAVIGATION = (LEFT, RIGHT, FORWARD)


class MDLMAgent:
    """Sample a plan of ``horizon`` actions, execute its first ``execute`` ones, replan.

    It also replans early when an observation differs from the pose the symbolic dynamics
    predicted, or when the plan reaches END (6) before the goal.

    With ``safe_first_action`` (default) the first action of every plan is drawn among the
    navigation actions that the symbolic dynamics says change the state and do not enter lava:
    a deterministic policy that bumps into a wall would otherwise repeat the same no-op forever.
    With ``avoid_revisits`` (default) it also avoids a first action that leads back to a pose
    already visited in this episode, when another useful action exists: a shortest path never
    revisits a pose, and a deterministic policy that does (e.g. left, right, left, ...) is stuck in
    that loop for good. Both rules use only the rules of the world (as MCTD does), never the expert;
    turn them off to measure the raw policy.

    Args:
        model: a trained :class:`MDLMPolicy`.
        horizon: plan window length H (the training horizon).
        execute: actions executed per plan before replanning (k, default 1: replan every step).
        num_steps: unmasking steps per plan (model forwards).
        temperature: 0 = greedy (deterministic); > 0 samples.
        seed: seeds the agent's sampling generator.
        safe_first_action: forbid a first action that is a no-op or steps into lava.
        avoid_revisits: also forbid first actions that lead to an already visited pose (unless
            that leaves nothing allowed).
        num_threads: torch intra-op threads while sampling, restored afterwards (None: leave
            torch's setting alone). Default 1: batch-1 plans are small, and torch's 2 threads on a
            2-core CPU shared with another job made each plan several times slower.
    """

    name = "mdlm"

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
    ):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.horizon, self.execute, self.num_steps, self.temperature = horizon, execute, num_steps, temperature
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.safe_first_action, self.avoid_revisits = safe_first_action, avoid_revisits
        self._visited: set[tuple[int, int, int]] = set()
        self.num_threads = num_threads
        self._queue: list[int] = []
        self._expected: tuple[int, int, int] | None = None
        self.plans = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, env_id: str | None = None, **kwargs: Any) -> "MDLMAgent":
        """Load ``path``, or the checkpoint shipped for ``env_id`` (default FourRooms)."""
        from envs import FOURROOMS_ID
        from maze_mdlm.shipped import default_checkpoint

        model, ckpt = load_checkpoint(path if path is not None else default_checkpoint(env_id or FOURROOMS_ID))
        kwargs.setdefault("horizon", int(ckpt.get("train_config", {}).get("horizon", 32)))
        return cls(model, **kwargs)

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None:
        parse_observation(obs)
        self._queue, self._expected, self._visited = [], None, set()

    def first_action_forbidden(self, layout: np.ndarray, pose: tuple[int, int, int]) -> torch.Tensor:
        """[1, H, V] bool: at position 0, every token but the useful navigation actions."""
        useful, fresh = [], []
        for action in NAVIGATION:
            new_pose, status = step(layout, pose, action)
            if new_pose != pose and status != FAILURE:
                useful.append(action)
                if new_pose not in self._visited:
                    fresh.append(action)
        allowed = (fresh if self.avoid_revisits and fresh else useful) or [LEFT, RIGHT]
        forbid = torch.ones(1, self.horizon, NUM_ACTIONS, dtype=torch.bool, device=self.device)
        forbid[0, 1:] = False
        forbid[0, 0, allowed] = False
        return forbid

    @torch.no_grad()
    def plan(self, image: np.ndarray, layout: np.ndarray, pose: tuple[int, int, int]) -> list[int]:
        """Sample one plan from a full-grid image ``[19,19,3]``; returns the actions before END."""
        inputs = to_model_input(image[None], np.array([pose[2]]))
        grid, dirs = inputs["grid"].to(self.device), inputs["direction"].to(self.device)
        forbid = self.first_action_forbidden(layout, pose) if self.safe_first_action else None
        with torch_threads(self.num_threads):
            tokens = sample(self.model, grid, dirs, self.horizon, self.num_steps, temperature=self.temperature,
                            generator=self.generator, forbid=forbid)[0].tolist()
        self.plans += 1
        actions = tokens[: tokens.index(END)] if END in tokens else tokens
        return actions or [FORWARD]  # END first (only possible without safe_first_action)

    def act(self, obs: Mapping[str, Any]) -> int:
        image, layout, pose = parse_observation(obs)
        self._visited.add(pose)
        if not self._queue or pose != self._expected:
            self._queue = self.plan(image, layout, pose)[: self.execute]
        action = self._queue.pop(0)
        self._expected, _ = step(layout, pose, action)
        return action

    def stats(self) -> dict[str, float]:
        """Plans sampled so far."""
        return {"plans_sampled": self.plans}
