"""Autoregressive behaviour-cloning baseline: the MDLM's network made causal.

:class:`ARPolicy` is the side-by-side answer to "does masked diffusion beat plain next-action
imitation?". It shares everything with :class:`maze_mdlm.model.MDLMPolicy` that is not the
objective: the same state encoder, token/position embeddings, adaLN-Zero blocks (with causal
attention), head, config and sizes. The condition is the state vector alone (no mask ratio).
Input position i holds the previous action (START at i = 0, which reuses the vocabulary slot
that is MASK for the MDLM) and predicts action i.

Shapes: B batch, L window length, D hidden_dim, V = ``config.num_outputs``, G grid side (19 or 25);
carrying [B, 3] and task [B, 5] as in :mod:`maze_mdlm.model`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from maze_mdlm.config import ModelConfig
from maze_mdlm.model import DiTBlock, StateEncoder, final_layer, init_dit_weights
from maze_mdlm.sampler import draw_candidates, pad_classes


class ARPolicy(nn.Module):
    """Causal transformer over action windows, conditioned on a CNN state encoding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.start_token_id = config.mask_token_id  # the extra vocabulary entry
        d = config.hidden_dim
        self.state_encoder = StateEncoder(config)
        self.token_embed = nn.Embedding(config.vocab_size, d)
        self.pos_embed = nn.Parameter(torch.empty(config.max_seq_len, d))
        self.blocks = nn.ModuleList(
            DiTBlock(d, config.num_heads, config.dropout, causal=True) for _ in range(config.num_layers)
        )
        self.final = final_layer(config)
        init_dit_weights(self)

    def teacher_inputs(self, actions: Tensor) -> Tensor:
        """Teacher forcing: actions [B, L] -> inputs [B, L] = (START, a_0 .. a_{L-2})."""
        start = torch.full_like(actions[:, :1], self.start_token_id)
        return torch.cat([start, actions[:, :-1]], dim=1)

    def forward(self, tokens: Tensor, grid: Tensor, direction: Tensor, carrying: Tensor | None = None,
                task: Tensor | None = None) -> Tensor:
        """tokens [B, L] (START + previous actions), grid [B, 3, G, G], direction [B], carrying [B, 3],
        task [B, 5] -> [B, L, V]."""
        return self.forward_tokens(tokens, self.state_encoder(grid, direction, carrying, task))

    def forward_tokens(self, tokens: Tensor, state_emb: Tensor) -> Tensor:
        """tokens [B, L] long, state_emb [B, D] -> logits [B, L, V] (position i sees tokens <= i)."""
        length = tokens.shape[1]
        if length > self.config.max_seq_len:
            raise ValueError(f"window length {length} > max_seq_len {self.config.max_seq_len}")
        x = self.token_embed(tokens) + self.pos_embed[:length] + state_emb.unsqueeze(1)
        for block in self.blocks:
            x = block(x, state_emb)
        return self.final(x, state_emb)


@torch.inference_mode()
def generate(
    model: ARPolicy,
    grid: Tensor,
    direction: Tensor,
    length: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    forbid: Tensor | None = None,
    carrying: Tensor | None = None,
    task: Tensor | None = None,
) -> Tensor:
    """Decode ``length`` actions left to right. grid [B, 3, G, G], direction [B], carrying [B, 3],
    task [B, 5] -> [B, length].

    ``forbid`` [B, >= length, V'] bool removes tokens at each position (as in
    :func:`maze_mdlm.sampler.sample`; V' <= V, classes past V' stay allowed). Greedy at
    temperature 0, else float64 Gumbel sampling. The state is encoded once; each step runs the
    blocks over the prefix (length <= 64).
    """
    if length < 1 or length > model.config.max_seq_len:
        raise ValueError(f"length must be in [1, {model.config.max_seq_len}], got {length}")
    state = model.state_encoder(grid, direction, carrying, task)  # [B, D]
    tokens = torch.full((grid.shape[0], 1), model.start_token_id, dtype=torch.long, device=grid.device)
    for i in range(length):
        logits = model.forward_tokens(tokens, state)[:, -1:]  # [B, 1, V]
        if forbid is not None:
            logits = logits.masked_fill(pad_classes(forbid[:, i : i + 1], logits.shape[-1]), float("-inf"))
        action, _ = draw_candidates(logits, temperature, generator=generator, with_confidence=False)  # [B, 1]
        tokens = torch.cat([tokens, action], dim=1)
    return tokens[:, 1:]
