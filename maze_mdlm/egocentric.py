"""Egocentric re-centring of a full grid: the agent at the centre, facing +x.

The whole grid is kept (nothing is cropped): a G×G world becomes a (2G-1)×(2G-1) view in which
every world cell sits at its offset from the agent, rotated so that the agent's heading points
along the view's +x axis. Cells that fall outside the world read as walls. Navigation rules are
translation- and rotation-invariant, so this lets the CNN read "the goal is two cells ahead"
directly instead of learning it for every absolute (agent, goal) pair.
"""

from __future__ import annotations

import torch
from torch import Tensor

AGENT = 10  # MiniGrid OBJECT_TO_IDX["agent"]
WALL_CELL = (2, 5, 0)  # (wall, grey, 0): what lies outside the world
# world vectors of the view's +x (the heading) and +y (the agent's right-hand side, where a MiniGrid
# "right" turn would face) for directions 0..3 (right, down, left, up)
_FORWARD = torch.tensor([[1, 0], [0, 1], [-1, 0], [0, -1]])
_SIDE = torch.tensor([[0, 1], [-1, 0], [0, -1], [1, 0]])


def agent_cells(grid: Tensor) -> tuple[Tensor, Tensor]:
    """(x [B], y [B]) of the agent cell in ``grid`` [B, 3, G, G] (the first one if several)."""
    side = grid.shape[-1]
    flat = (grid[:, 0] == AGENT).flatten(1).to(torch.uint8).argmax(dim=1)  # [B]
    return flat // side, flat % side


def egocentric_view(grid: Tensor, direction: Tensor) -> Tensor:
    """Re-centre ``grid`` [B, C, G, G] (indexed [c, x, y]) on the agent, heading along +x.

    Args:
        grid: long [B, C, G, G]: MiniGrid encodings (C >= 3) with the agent drawn on its cell;
            channels after the third (task markers) read 0 outside the world.
        direction: long [B] agent directions 0..3.

    Returns:
        long [B, C, 2G-1, 2G-1]; view cell (G-1+u, G-1+v) shows world cell
        ``agent + u * forward + v * side``.
    """
    b, channels, side, _ = grid.shape
    r = 2 * side - 1
    device = grid.device
    offsets = torch.arange(r, device=device) - (side - 1)
    u, v = torch.meshgrid(offsets, offsets, indexing="ij")  # [R, R]
    fwd, lat = _FORWARD.to(device)[direction], _SIDE.to(device)[direction]  # [B, 2]
    ax, ay = agent_cells(grid)
    sx = ax[:, None, None] + u * fwd[:, 0, None, None] + v * lat[:, 0, None, None]  # [B, R, R]
    sy = ay[:, None, None] + u * fwd[:, 1, None, None] + v * lat[:, 1, None, None]
    inside = (sx >= 0) & (sx < side) & (sy >= 0) & (sy < side)
    index = (sx.clamp(0, side - 1) * side + sy.clamp(0, side - 1)).flatten(1)  # [B, R*R]
    cells = torch.gather(grid.flatten(2), 2, index.unsqueeze(1).expand(b, channels, -1)).view(b, channels, r, r)
    outside = WALL_CELL + (0,) * (channels - 3)
    wall = torch.tensor(outside, device=device, dtype=grid.dtype).view(1, channels, 1, 1)
    return torch.where(inside.unsqueeze(1), cells, wall)
