"""Architecture config of the MDLM policy (plain types only, checkpoint friendly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from maze_mdlm.tokens import END, LEGACY_END, LEGACY_VOCAB_SIZE, MASK, NUM_ACTIONS, VOCAB_SIZE

# what a checkpoint made before 0.5 (no end_token / task_inputs stored) was trained with
LEGACY_MODEL_FIELDS = {"end_token": LEGACY_END, "task_inputs": False}


class PlainConfig:
    """Mixin for dataclass configs stored in checkpoints as plain dicts."""

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of the fields (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
        return cls(**data)


@dataclass
class ModelConfig(PlainConfig):
    """Hyper-parameters of :class:`maze_mdlm.model.MDLMPolicy`."""

    num_actions: int = NUM_ACTIONS  # MiniGrid actions 0..6
    vocab_size: int = VOCAB_SIZE  # tokens: actions + MASK (7) + END (8); legacy: actions + MASK
    end_token: int = END  # end-of-plan token: END (8), or `done` (6) in legacy checkpoints
    task_inputs: bool = True  # condition on the task vector, task markers and the carried object
    hidden_dim: int = 128  # transformer width D
    num_layers: int = 4  # number of DiT blocks
    num_heads: int = 4  # attention heads (hidden_dim must be divisible by it)
    max_seq_len: int = 64  # longest action window (size of the positional table)
    dropout: float = 0.0  # dropout in attention and MLP (0 = off)
    grid_size: int = 19  # side of the encoded MiniGrid grid [3, grid_size, grid_size]
    cond_drop_prob: float = 0.1  # train-time prob. of replacing the state by a learned null (CFG)
    egocentric: bool = True  # re-centre the grid on the agent, heading +x, before the CNN
    cnn_channels: tuple[int, int, int] = (16, 32, 32)  # widths of the three state-encoder convs

    def __post_init__(self) -> None:
        if self.num_actions != NUM_ACTIONS:
            raise ValueError(f"num_actions must be {NUM_ACTIONS} (MiniGrid's actions), got {self.num_actions}")
        allowed = {END: VOCAB_SIZE, LEGACY_END: LEGACY_VOCAB_SIZE}
        if self.end_token not in allowed:
            raise ValueError(f"end_token must be {END} (or {LEGACY_END} for legacy checkpoints), got {self.end_token}")
        if self.vocab_size != allowed[self.end_token]:
            raise ValueError(
                f"vocab_size must be {allowed[self.end_token]} with end_token={self.end_token}, got {self.vocab_size}"
            )
        if self.hidden_dim % self.num_heads != 0:
            raise ValueError(
                f"hidden_dim={self.hidden_dim} is not divisible by num_heads={self.num_heads}"
            )
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)  # lists come back from JSON
        if len(self.cnn_channels) != 3 or min(self.cnn_channels) < 1:
            raise ValueError(f"cnn_channels must be three positive widths, got {self.cnn_channels}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob must be in [0, 1), got {self.cond_drop_prob}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; a config stored before 0.5 loads with its legacy
        vocabulary (END = ``done``, no task inputs)."""
        return super().from_dict({**LEGACY_MODEL_FIELDS, **data})

    @property
    def mask_token_id(self) -> int:
        """Index of the [MASK] input token (7)."""
        return MASK

    @property
    def num_outputs(self) -> int:
        """Output classes V of the head: every token (MASK's logit fixed very low), or the 7
        actions in legacy checkpoints."""
        return self.vocab_size if self.end_token == END else self.num_actions
