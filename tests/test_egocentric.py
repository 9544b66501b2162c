"""The egocentric view puts the agent at the centre, heading +x, and keeps the whole world."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import envs
from envs.dynamics import DIR_DX, DIR_DY
from envs.observation import agent_pose
from maze_mdlm.egocentric import egocentric_view


def _views(env_id: str, seeds: range):
    env = envs.FullGridObsWrapper(gym.make(env_id))
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        grid = torch.from_numpy(obs["image"]).permute(2, 0, 1)[None].long()
        yield obs["image"], obs["direction"], egocentric_view(grid, torch.tensor([obs["direction"]]))[0]


def test_every_world_cell_appears_at_its_rotated_offset():
    for image, d, view in _views(envs.MAZE_ID, range(10)):
        x, y, _ = agent_pose(image)
        assert view.shape == (3, 37, 37)
        assert int(view[0, 18, 18]) == 10  # the agent, at the centre
        fwd = np.array([DIR_DX[d], DIR_DY[d]])
        side = np.array([DIR_DX[(d + 1) % 4], DIR_DY[(d + 1) % 4]])
        for u in range(-18, 19, 3):
            for v in range(-18, 19, 5):
                wx, wy = np.array([x, y]) + u * fwd + v * side
                expected = image[wx, wy] if 0 <= wx < 19 and 0 <= wy < 19 else np.array([2, 5, 0])
                assert (view[:, 18 + u, 18 + v].numpy() == expected).all()


def test_view_does_not_depend_on_absolute_position():
    """The same local scene at two places in an empty room gives the same view near the agent."""
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-Empty-16x16-v0"))
    obs, _ = env.reset(seed=0)
    grid = torch.from_numpy(obs["image"]).permute(2, 0, 1).long()
    grid[0][grid[0] == 10] = 1
    views = []
    for x in (5, 8):
        g = grid.clone()
        g[:, x, 7] = torch.tensor([10, 0, 0])
        views.append(egocentric_view(g[None], torch.tensor([0]))[0])
    assert torch.equal(views[0][:, 16:21, 16:21], views[1][:, 16:21, 16:21])
    assert not torch.equal(views[0], views[1])  # the far walls are at different offsets
