"""The agent interface every policy and planner implements."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from envs.observation import agent_pose, layout_of, observation_grid


@runtime_checkable
class Agent(Protocol):
    """A policy for one episode at a time in a plain gymnasium loop.

    Observations are full-grid dicts: MiniGrid's ``FullyObsWrapper`` ``{"image", "direction"}`` or
    :class:`envs.FullGridObsWrapper`'s. ``act`` returns a MiniGrid action id.
    """

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None: ...

    def act(self, obs: Mapping[str, Any]) -> int: ...


def parse_observation(obs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """``(image [19,19,3], layout [19,19,3], pose (x, y, d))`` from a full-grid observation.

    Raises:
        envs.ObservationError: for a partial (egocentric) view, with a hint on how to wrap the env.
    """
    image, direction = observation_grid(obs)
    x, y, _ = agent_pose(image)
    return image, layout_of(image), (x, y, direction)
