"""The agent interface every policy and planner implements."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from envs.observation import agent_pose, layout_of, observation_grid
from envs.world import WorldState


@runtime_checkable
class Agent(Protocol):
    """A policy for one episode at a time in a plain gymnasium loop.

    Observations are full-grid dicts: MiniGrid's ``FullyObsWrapper`` ``{"image", "direction"}`` or
    :class:`envs.FullGridObsWrapper`'s. ``act`` returns a MiniGrid action id.
    """

    def reset(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> None: ...

    def act(self, obs: Mapping[str, Any]) -> int: ...


def parse_observation(obs: Mapping[str, Any], size: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """``(image [G,G,3], layout [G,G,3], pose (x, y, d))`` from a full-grid observation.

    ``size``: the canvas side G the image is padded to with walls (a model's ``grid_size``;
    default: 19, or the image's own side up to 25).

    Raises:
        envs.ObservationError: for a partial (egocentric) view, with a hint on how to wrap the env.
        envs.GridTooLargeError: for an image larger than ``size``.
    """
    image, direction = observation_grid(obs, size)
    x, y, _ = agent_pose(image)
    return image, layout_of(image), (x, y, direction)


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch intra-op threads, then restore the setting."""
    import torch

    previous = torch.get_num_threads()
    if num_threads is not None and num_threads != previous:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def first_position_mask(first: np.ndarray, horizon: int, vocab: int | None = None) -> Tensor:
    """``[B, A]`` bool tokens forbidden at position 0 -> the sampler's ``forbid`` ``[B, H, V]``
    (later positions free). ``vocab`` V (default A) >= A: tokens ``A..V-1`` are forbidden first."""
    vocab = first.shape[1] if vocab is None else vocab
    forbid = torch.zeros(first.shape[0], horizon, vocab, dtype=torch.bool)
    forbid[:, 0, first.shape[1]:] = True
    forbid[:, 0, : first.shape[1]] = torch.from_numpy(first)
    return forbid


def against_prediction(expected: WorldState | None, layout: np.ndarray, pose: tuple[int, int, int],
                       carrying: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """Compare an observed state with the one the rules predicted after the last action.

    The image hides the cell under the agent (an open door, say); no action changes that cell, so
    it is taken from the prediction. Returns ``(layout [G,G,3]`` with that cell restored (a copy),
    ``as_predicted``: pose, carried object and layout are the predicted ones; False without a
    prediction).
    """
    if expected is None:
        return layout, False
    layout = layout.copy()
    layout[pose[0], pose[1]] = expected.layout[pose[0], pose[1]]
    same = expected.pose == pose and expected.carrying == carrying and np.array_equal(expected.layout, layout)
    return layout, same
