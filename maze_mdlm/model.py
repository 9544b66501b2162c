"""MDLM policy: a DiT (adaLN-Zero) over action tokens, conditioned on a CNN state encoding.

Shapes: B batch, L action-window length (<= max_seq_len), D hidden_dim, V output classes
(``config.num_outputs``: 9, or 7 for legacy checkpoints), G grid side (19 or 25). Grids are
MiniGrid ``grid.encode()`` arrays indexed [channel, x, y]; carrying [B, 3] is the carried
object's encoded cell, task [B, 5] the task vector ``(kind, type, color, type2, color2)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from envs.tasks import GOAL as GOAL_KIND
from envs.tasks import KINDS, OPEN as OPEN_KIND
from envs.tasks import TASK_DIM
from maze_mdlm.config import ModelConfig
from maze_mdlm.egocentric import egocentric_view

NUM_OBJECTS = 11  # MiniGrid OBJECT_TO_IDX: unseen .. agent (10)
NUM_COLORS = 6  # MiniGrid COLOR_TO_IDX
NUM_STATES = 4  # door states 0..2, and the agent cell stores its direction 0..3
NUM_DIRECTIONS = 4
MLP_RATIO = 4  # width of the DiT MLP relative to D
RATIO_FREQ_DIM = 64  # sinusoidal features of the mask ratio
CELL_EMBED = (8, 4, 4)  # embedding sizes of object / color / state indices
NEVER_LOGIT = -1e4  # the logit of MASK in the head: probability exp(-1e4), nil in fp32 and bf16
NUM_MARKERS = 2  # task-marker channels: cells holding the task's object, and its second object
GOAL_OBJECT, DOOR_OBJECT = 8, 4  # MiniGrid OBJECT_TO_IDX["goal"], ["door"]


def task_markers(grid: Tensor, task: Tensor) -> Tensor:
    """Cells the task names. grid [B, 3, G, G] long, task [B, 5] long -> [B, 2, G, G] long 0/1.

    Channel 0: cells holding the task's object (type and colour), every goal cell for a goal
    task, every door for "open the door"; channel 1: cells holding its second object (PutNear's
    anchor, the second door of open_seq). This only reads the observation: which cells match.
    """
    kind, t1, c1, t2, c2 = (v.view(-1, 1, 1) for v in task.unbind(-1))
    obj, col = grid[:, 0], grid[:, 1]
    first = (obj == t1) & (col == c1) & (t1 > 0)
    first |= (obj == GOAL_OBJECT) & (kind == GOAL_KIND)
    first |= (obj == DOOR_OBJECT) & (kind == OPEN_KIND)
    second = (obj == t2) & (col == c2) & (t2 > 0)
    return torch.stack([first, second], dim=1).long()


def conv_out_size(size: int, stride: int) -> int:
    """Side of a 3x3, padding-1 conv output for an input of side ``size``."""
    return (size + 2 - 3) // stride + 1


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation. x [B, L, D], shift/scale [B, D] -> [B, L, D]."""
    return x * (1.0 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sinusoidal_features(value: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sin/cos features of a scalar per row. value [B] float -> [B, dim].

    ``value`` (a mask ratio in [0, 1]) is multiplied by ``scale`` so that it spans the same
    range as diffusion timesteps, then encoded at geometric frequencies 1 .. 1/10000.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=value.device, dtype=torch.float32) / half
    )
    args = value.float().unsqueeze(-1) * scale * freqs  # [B, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class StateEncoder(nn.Module):
    """MiniGrid grid + direction (+ task and carried object) -> state vector.

    With ``config.task_inputs`` two task-marker channels (:func:`task_markers`) join the grid.
    With ``config.egocentric`` the grid is then re-centred on the agent and rotated to its
    heading (:func:`maze_mdlm.egocentric.egocentric_view`, 19x19 -> 37x37). Each cell's
    (object, color, state) indices are embedded and concatenated into channels (plus the
    markers), two stride-2 convs shrink the map 4x (cheap on CPU), and the map is flattened (not
    pooled: position matters) and projected to D. Direction, task (kind, objects) and carried
    object (type, colour) embeddings are added and the result layer-normalised so it sits at the
    same scale as the token embeddings.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        e_obj, e_col, e_state = CELL_EMBED
        self.object_embed = nn.Embedding(NUM_OBJECTS, e_obj)
        self.color_embed = nn.Embedding(NUM_COLORS, e_col)
        self.state_embed = nn.Embedding(NUM_STATES, e_state)
        c1, c2, c3 = config.cnn_channels
        self.egocentric = config.egocentric
        self.task_inputs = config.task_inputs
        markers = NUM_MARKERS if config.task_inputs else 0
        side = 2 * config.grid_size - 1 if config.egocentric else config.grid_size
        strides = (2, 2, 1)  # 37 -> 19 -> 10 -> 10 (egocentric), or 19 -> 10 -> 5 -> 5
        self.convs = nn.Sequential(
            nn.Conv2d(e_obj + e_col + e_state + markers, c1, 3, stride=strides[0], padding=1),
            nn.GELU(),
            nn.Conv2d(c1, c2, 3, stride=strides[1], padding=1),
            nn.GELU(),
            nn.Conv2d(c2, c3, 3, stride=strides[2], padding=1),
            nn.GELU(),
        )
        for stride in strides:
            side = conv_out_size(side, stride)
        self.proj = nn.Linear(c3 * side * side, config.hidden_dim)
        self.direction_embed = nn.Embedding(NUM_DIRECTIONS, config.hidden_dim)
        if config.task_inputs:
            d = config.hidden_dim
            self.kind_embed = nn.Embedding(len(KINDS), d)
            self.task_object_embed = nn.ModuleList(nn.Embedding(NUM_OBJECTS, d) for _ in range(2))
            self.task_color_embed = nn.ModuleList(nn.Embedding(NUM_COLORS, d) for _ in range(2))
            self.carry_object_embed = nn.Embedding(NUM_OBJECTS, d)
            self.carry_color_embed = nn.Embedding(NUM_COLORS, d)
        self.norm = nn.LayerNorm(config.hidden_dim)
        self.grid_size = config.grid_size

    def forward(self, grid: Tensor, direction: Tensor, carrying: Tensor | None = None,
                task: Tensor | None = None) -> Tensor:
        """grid [B, 3, G, G] long, direction [B] long, carrying [B, 3] long (None: empty hand),
        task [B, 5] long (None: reach the goal) -> [B, D]. A model without task inputs ignores
        carrying and task."""
        if grid.dim() != 4 or grid.shape[1:] != (3, self.grid_size, self.grid_size):
            raise ValueError(
                f"grid must be [B, 3, {self.grid_size}, {self.grid_size}], got {tuple(grid.shape)}"
            )
        b = grid.shape[0]
        if self.task_inputs:
            if task is None:
                task = torch.zeros(b, TASK_DIM, dtype=torch.long, device=grid.device)
            if carrying is None:
                carrying = torch.zeros(b, 3, dtype=torch.long, device=grid.device)
                carrying[:, 0] = 1  # MiniGrid "empty"
            task, carrying = task.to(grid.device, torch.long), carrying.to(grid.device, torch.long)
            grid = torch.cat([grid, task_markers(grid, task)], dim=1)  # [B, 5, G, G]
        if self.egocentric:
            grid = egocentric_view(grid, direction)  # [B, C, 2G-1, 2G-1]
        parts = [self.object_embed(grid[:, 0]), self.color_embed(grid[:, 1]), self.state_embed(grid[:, 2])]
        if self.task_inputs:
            parts.append(grid[:, 3:].permute(0, 2, 3, 1).to(parts[0].dtype))  # markers
        cells = torch.cat(parts, dim=-1)  # [B, G, G, E]
        h = self.convs(cells.permute(0, 3, 1, 2))  # [B, C, S, S]
        h = self.proj(h.flatten(1)) + self.direction_embed(direction)  # [B, D]
        if self.task_inputs:
            h = h + self.kind_embed(task[:, 0]) + self.carry_object_embed(carrying[:, 0]) \
                + self.carry_color_embed(carrying[:, 1])
            for k in range(2):
                h = h + self.task_object_embed[k](task[:, 1 + 2 * k]) + self.task_color_embed[k](task[:, 2 + 2 * k])
        return self.norm(h)


class RatioEmbedder(nn.Module):
    """Mask ratio [B] in [0, 1] -> [B, D] (sinusoidal features + MLP)."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(RATIO_FREQ_DIM, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
        )

    def forward(self, ratio: Tensor) -> Tensor:
        """ratio [B] -> [B, D]."""
        return self.mlp(sinusoidal_features(ratio, RATIO_FREQ_DIM))


class SelfAttention(nn.Module):
    """Multi-head self-attention, bidirectional or ``causal``. x [B, L, D] -> [B, L, D]."""

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float, causal: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.proj = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, L, D] -> [B, L, D]."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads).permute(
            2, 0, 3, 1, 4
        )  # each [B, H, L, hd]
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal
        )  # [B, H, L, hd]
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning. x [B, L, D], c [B, D] -> [B, L, D]."""

    def __init__(self, hidden_dim: int, num_heads: int, dropout: float, causal: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(hidden_dim, num_heads, dropout, causal)
        self.norm2 = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_dim, MLP_RATIO * hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(MLP_RATIO * hidden_dim, hidden_dim),
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 6 * hidden_dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x [B, L, D], c [B, D] -> [B, L, D]."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(c).chunk(6, dim=-1)
        x = x + gate_a.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        x = x + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated norm + linear head. x [B, L, D], c [B, D] -> logits [B, L, V].

    ``never``: an output class whose logit is fixed at ``NEVER_LOGIT`` (MASK, when the head covers
    the whole vocabulary), so it is never predicted nor sampled. Finite, not -inf, so that
    guidance (cond - uncond) and logit differences stay finite.
    """

    def __init__(self, hidden_dim: int, num_outputs: int, never: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 2 * hidden_dim))
        self.head = nn.Linear(hidden_dim, num_outputs)
        self.never = never

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x [B, L, D], c [B, D] -> [B, L, V]."""
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        logits = self.head(modulate(self.norm(x), shift, scale))
        if self.never is not None:
            never = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            never[self.never] = True
            logits = logits.masked_fill(never, NEVER_LOGIT)
        return logits


def final_layer(config: ModelConfig) -> FinalLayer:
    """The head of a policy: ``config.num_outputs`` classes, MASK's fixed at ``NEVER_LOGIT`` when it is one."""
    never = config.mask_token_id if config.num_outputs > config.mask_token_id else None
    return FinalLayer(config.hidden_dim, config.num_outputs, never)


def init_dit_weights(model: nn.Module) -> None:
    """DiT-style init of a policy with ``token_embed``, ``pos_embed``, ``blocks`` and ``final``.

    Uses the global torch RNG (seed it at the entry point). Linear layers: Xavier-uniform,
    zero bias. Token embeddings: orthonormal rows scaled to unit RMS, so MASK (or START) starts
    orthogonal to every action. Positions are N(0, 1), matching the LayerNorm-ed state vector.
    All adaLN modulations and the output head are zero (adaLN-Zero): every block starts as the
    identity and a fresh model outputs all-zero logits.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    with torch.no_grad():
        nn.init.orthogonal_(model.token_embed.weight)
        model.token_embed.weight.mul_(math.sqrt(model.token_embed.embedding_dim))
    nn.init.normal_(model.pos_embed, std=1.0)
    for layer in [block.modulation[-1] for block in model.blocks] + [model.final.modulation[-1], model.final.head]:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


class MDLMPolicy(nn.Module):
    """Masked-diffusion policy over action windows.

    Input tokens are actions 0..6, MASK (7) or END (8); the output is logits over the
    ``config.num_outputs`` classes at every position (MASK's is ``NEVER_LOGIT``). The state vector
    (grid, direction, task, carried object) is added to every token and, together with the
    mask-ratio embedding, forms the adaLN condition ``c``. Because of adaLN-Zero and the
    zero-initialised head, a freshly built model outputs all-zero logits (``NEVER_LOGIT`` for MASK).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_token_id = config.mask_token_id
        d = config.hidden_dim
        self.state_encoder = StateEncoder(config)
        self.null_state = nn.Parameter(torch.empty(d))  # learned "no state" for CFG
        self.token_embed = nn.Embedding(config.vocab_size, d)
        self.pos_embed = nn.Parameter(torch.empty(config.max_seq_len, d))
        self.ratio_embed = RatioEmbedder(d)
        self.blocks = nn.ModuleList(
            DiTBlock(d, config.num_heads, config.dropout) for _ in range(config.num_layers)
        )
        self.final = final_layer(config)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT-style init (:func:`init_dit_weights`; uses the global torch RNG)."""
        init_dit_weights(self)
        nn.init.normal_(self.null_state, std=1.0)

    def null_state_embedding(self, batch_size: int) -> Tensor:
        """Learned unconditional state vector, expanded to [batch_size, D]."""
        return self.null_state.unsqueeze(0).expand(batch_size, -1)

    def encode_state(
        self, grid: Tensor, direction: Tensor, drop_state: Tensor | None = None,
        carrying: Tensor | None = None, task: Tensor | None = None,
    ) -> Tensor:
        """grid [B, 3, G, G] long, direction [B] long, drop_state [B] bool, carrying [B, 3],
        task [B, 5] -> [B, D].

        Rows where ``drop_state`` is True get the null state embedding instead.
        """
        state = self.state_encoder(grid, direction, carrying, task)
        if drop_state is not None:
            null = self.null_state_embedding(state.shape[0]).to(state.dtype)
            state = torch.where(drop_state.unsqueeze(-1), null, state)
        return state

    def forward_tokens(self, tokens: Tensor, state_emb: Tensor, mask_ratio: Tensor) -> Tensor:
        """tokens [B, L] long (0..7), state_emb [B, D], mask_ratio [B] -> logits [B, L, V]."""
        length = tokens.shape[1]
        if length > self.config.max_seq_len:
            raise ValueError(f"window length {length} > max_seq_len {self.config.max_seq_len}")
        x = self.token_embed(tokens) + self.pos_embed[:length] + state_emb.unsqueeze(1)
        c = state_emb + self.ratio_embed(mask_ratio)  # [B, D]
        for block in self.blocks:
            x = block(x, c)
        return self.final(x, c)

    def forward(
        self,
        tokens: Tensor,
        grid: Tensor,
        direction: Tensor,
        mask_ratio: Tensor,
        drop_state: Tensor | None = None,
        carrying: Tensor | None = None,
        task: Tensor | None = None,
    ) -> Tensor:
        """tokens [B, L], grid [B, 3, G, G], direction [B], mask_ratio [B], carrying [B, 3],
        task [B, 5] -> [B, L, V]."""
        state = self.encode_state(grid, direction, drop_state, carrying, task)
        return self.forward_tokens(tokens, state, mask_ratio)
