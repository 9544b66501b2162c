"""Forward (masking) process of MDLM: mask-ratio schedules, the curriculum, and masking.

All functions are pure and batched; randomness only comes from an explicit generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from maze_mdlm.tokens import MASK


def cosine_mask_ratio(t: Tensor) -> Tensor:
    """Cosine schedule ``cos(pi/2 * (1 - t))``. t [B] in [0, 1] -> ratio [B] in [0, 1].

    t=0 gives ratio 0 (clean) and t=1 gives ratio 1 (all masked). For t ~ U[0, 1] the ratio
    has density skewed towards high values (mean 2/pi ~ 0.64).
    """
    return torch.cos(0.5 * math.pi * (1.0 - t))


def linear_mask_ratio(t: Tensor) -> Tensor:
    """Linear schedule, ratio = t. t [B] -> [B]."""
    return t.clone()


SCHEDULES = {"cosine": cosine_mask_ratio, "linear": linear_mask_ratio}


def curriculum_target(
    progress: float, min_mask_ratio: float = 0.1, max_mask_ratio: float = 0.75
) -> float:
    """Target ratio that ramps linearly from min to max as progress goes 0 -> 1 (clamped)."""
    p = min(max(float(progress), 0.0), 1.0)
    return min_mask_ratio + (max_mask_ratio - min_mask_ratio) * p


def curriculum_mask_ratio(
    t: Tensor,
    progress: float = 1.0,
    *,
    schedule: str = "cosine",
    min_mask_ratio: float = 0.1,
    max_mask_ratio: float = 0.75,
    blend: float = 0.7,
    clamp_min: float = 0.05,
    clamp_max: float = 0.95,
) -> Tensor:
    """Training mask ratio with the curriculum. t [B] in [0, 1] -> ratio [B].

    ``ratio = (1 - blend) * schedule(t) + blend * target(progress)``, clamped to
    [clamp_min, clamp_max]; ``progress`` in [0, 1] is the fraction of the curriculum warmup
    done. ``blend=0`` turns the curriculum off (plain schedule, still clamped).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown mask schedule {schedule!r}; expected one of {sorted(SCHEDULES)}")
    base = SCHEDULES[schedule](t)
    target = curriculum_target(progress, min_mask_ratio, max_mask_ratio)
    ratio = (1.0 - blend) * base + blend * target
    return ratio.clamp(clamp_min, clamp_max)


def mask_tokens(
    actions: Tensor, ratio: Tensor, generator: torch.Generator | None = None, rows: slice | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Replace each token by MASK independently with probability ``ratio`` of its row.

    actions [B, L] long, ratio [B] float -> (masked_tokens [B, L] long, mask [B, L] bool,
    actual_ratio [B] float = fraction masked per row). Every row gets at least one masked
    position: a row that drew none has one uniformly chosen position forced to MASK. The
    random draws are made on the generator's device, always with the same shapes, so the
    stream does not depend on the data.

    ``rows`` (a data-parallel shard): ``ratio`` [B] covers a whole batch of which ``actions``
    [b, L] holds rows ``rows``; the draws are made for all B rows, so the shard is masked
    exactly as those rows of the whole batch would be.
    """
    n = actions.shape[1]
    b = ratio.shape[0] if rows is not None else actions.shape[0]
    gen_device = generator.device if generator is not None else actions.device
    u = torch.rand(b, n, generator=generator, device=gen_device).to(actions.device)
    forced_pos = torch.randint(n, (b,), generator=generator, device=gen_device).to(actions.device)
    if rows is not None:
        u, forced_pos, ratio = u[rows], forced_pos[rows], ratio[rows]
    mask = u < ratio.to(actions.device, torch.float32).unsqueeze(1)  # [B, L]
    empty = ~mask.any(dim=1)  # [B]
    forced = torch.arange(n, device=actions.device).unsqueeze(0) == forced_pos.unsqueeze(1)
    mask = mask | (forced & empty.unsqueeze(1))
    masked_tokens = actions.masked_fill(mask, MASK)
    return masked_tokens, mask, mask.float().mean(dim=1)
