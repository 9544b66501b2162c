"""MDLMAgent: the MDLM policy as a closed-loop, receding-horizon gymnasium agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from agents.base import parse_observation
from envs.dynamics import FORWARD, LEFT, RIGHT, step
from envs.observation import to_model_input
from maze_mdlm.checkpoint import load_checkpoint
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import END, MASK

NAVIGATION = (LEFT, RIGHT, FORWARD)


class MDLMAgent:
    """Sample a plan of ``horizon`` actions, execute its first ``execute`` ones, replan.

    It also replans early when an observation differs from the pose the symbolic dynamics
    predicted, or when the plan reaches END (6) before the goal.

    Args:
        model: a trained :class:`MDLMPolicy`.
        horizon: plan window length H (the training horizon).
        execute: actions executed per plan before replanning (k, default 1: replan every step).
        num_steps: unmasking steps per plan (model forwards).
        temperature: 0 = greedy (deterministic); > 0 samples.
        seed: seeds the agent's sampling generator.
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
    ):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.horizon, self.execute, self.num_steps, self.temperature = horizon, execute, num_steps, temperature
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
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
        self._queue, self._expected = [], None

    @torch.no_grad()
    def plan(self, image: np.ndarray, direction: int) -> list[int]:
        """Sample one plan from a full-grid image ``[19,19,3]``; returns actions before END."""
        inputs = to_model_input(image[None], np.array([direction]))
        grid, dirs = inputs["grid"].to(self.device), inputs["direction"].to(self.device)
        tokens = sample(self.model, grid, dirs, self.horizon, self.num_steps,
                        temperature=self.temperature, generator=self.generator)[0].tolist()
        self.plans += 1
        actions = tokens[: tokens.index(END)] if END in tokens else tokens
        if not actions:  # END first although the goal is not reached: best navigation action
            first = torch.full((1, self.horizon), MASK, dtype=torch.long, device=self.device)
            logits = self.model(first, grid, dirs, torch.ones(1, device=self.device))[0, 0]
            actions = [NAVIGATION[int(logits[list(NAVIGATION)].argmax())]]
        return actions

    def act(self, obs: Mapping[str, Any]) -> int:
        image, layout, pose = parse_observation(obs)
        if not self._queue or pose != self._expected:
            self._queue = self.plan(image, pose[2])[: self.execute]
        action = self._queue.pop(0)
        self._expected, _ = step(layout, pose, action)
        return action

    def stats(self) -> dict[str, float]:
        """Plans sampled so far."""
        return {"plans_sampled": self.plans}
