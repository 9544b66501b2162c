"""Tiny models shared by the tests."""

from __future__ import annotations

import torch

from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy


def perturbed_policy(config: ModelConfig, seed: int, scale: float = 0.3) -> MDLMPolicy:
    """An MDLMPolicy (seeded init) with ``scale`` * N(0, 1) added to every parameter, in eval mode:
    a fresh adaLN-Zero model outputs constant zeros, this one's logits depend on tokens, positions,
    state and ratio."""
    torch.manual_seed(seed)
    net = MDLMPolicy(config)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net.eval()


SEARCH_TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2)  # the MCTD tests' tiny model


def untrained_policy(config: ModelConfig) -> MDLMPolicy:
    """A fresh MDLMPolicy (seed 0) in eval mode: adaLN-Zero makes every action logit 0, so greedy
    decoding says `left`."""
    torch.manual_seed(0)
    return MDLMPolicy(config).eval()


def forward_policy(config: ModelConfig) -> MDLMPolicy:
    """:func:`untrained_policy` with a head bias that makes greedy decoding say `forward` (2) everywhere."""
    net = untrained_policy(config)
    with torch.no_grad():
        net.final.head.bias[2] = 5.0
    return net
