"""MDLMPolicy: shapes, config round trip, and the fix guide's four sanity checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maze_mdlm.config import ModelConfig
from maze_mdlm.masking import mask_tokens
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.model import NEVER_LOGIT
from maze_mdlm.tokens import END, MASK, NUM_ACTIONS, VOCAB_SIZE
from maze_mdlm.trainer import Trainer, TrainConfig, masked_loss

HORIZON = 16
TINY = ModelConfig(hidden_dim=32, num_layers=2, num_heads=2, max_seq_len=HORIZON, cond_drop_prob=0.0)


def maze_batch(num_states: int, horizon: int, seed: int) -> dict[str, torch.Tensor]:
    """One maze layout with the agent at ``num_states`` different cells / directions and a
    random action window per state. Grids differ only in the agent cell."""
    g = torch.Generator().manual_seed(seed)
    base = torch.zeros(3, 19, 19, dtype=torch.long)
    base[0] = torch.where(torch.rand(19, 19, generator=g) < 0.3, 2, 1)  # wall / empty
    base[1] = torch.where(base[0] == 2, 5, 0)  # walls are grey
    grid = base.repeat(num_states, 1, 1, 1)
    cell = torch.randperm(19 * 19, generator=g)[:num_states]
    direction = torch.randint(0, 4, (num_states,), generator=g)
    rows = torch.arange(num_states)
    grid[rows, 0, cell // 19, cell % 19] = 10
    grid[rows, 1, cell // 19, cell % 19] = 0
    grid[rows, 2, cell // 19, cell % 19] = direction
    actions = torch.randint(0, NUM_ACTIONS, (num_states, horizon), generator=g)
    return {
        "grid": grid,
        "direction": direction,
        "actions": actions,
        "length": torch.full((num_states,), horizon),
    }


@pytest.fixture(scope="module")
def overfit() -> tuple[MDLMPolicy, dict[str, torch.Tensor]]:
    """Tiny model trained 200 steps on one batch (8 states x 4 copies, fresh masks each step)."""
    torch.manual_seed(0)
    model = MDLMPolicy(TINY)
    small = maze_batch(8, HORIZON, seed=0)
    batch = {k: torch.cat([v] * 4) for k, v in small.items()}
    cfg = TrainConfig(steps=200, lr=3e-3, warmup_steps=10, min_lr_ratio=1.0, weight_decay=0.0,
                      horizon=HORIZON, use_curriculum=False, seed=0)
    trainer = Trainer(model, cfg)
    for _ in range(cfg.steps):
        trainer.train_step(batch)
    model.eval()
    return model, small


def test_config_round_trip_and_validation() -> None:
    cfg = ModelConfig(hidden_dim=48, num_heads=3)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig().mask_token_id == MASK and ModelConfig().vocab_size == VOCAB_SIZE
    with pytest.raises(ValueError):
        ModelConfig(vocab_size=7)
    with pytest.raises(ValueError):
        ModelConfig(hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_shapes_and_forward_split() -> None:
    torch.manual_seed(0)
    model = MDLMPolicy(TINY).eval()
    batch = maze_batch(3, HORIZON, seed=1)
    with torch.no_grad():
        for p in model.parameters():  # leave the adaLN-Zero init so outputs are non-trivial
            p.add_(0.1 * torch.randn_like(p))
        ratio = torch.tensor([0.2, 0.5, 1.0])
        logits = model(batch["actions"], batch["grid"], batch["direction"], ratio)
        state = model.encode_state(batch["grid"], batch["direction"])
        split = model.forward_tokens(batch["actions"], state, ratio)
    assert logits.shape == (3, HORIZON, TINY.num_outputs) == (3, HORIZON, VOCAB_SIZE)
    assert state.shape == (3, TINY.hidden_dim)
    torch.testing.assert_close(logits, split)
    with pytest.raises(ValueError):
        model.forward_tokens(torch.zeros(1, HORIZON + 1, dtype=torch.long), state[:1], ratio[:1])
    with pytest.raises(ValueError):
        model.encode_state(batch["grid"][:, :, :18], batch["direction"])


def test_drop_state_uses_null_embedding() -> None:
    torch.manual_seed(0)
    model = MDLMPolicy(TINY)
    batch = maze_batch(4, HORIZON, seed=2)
    drop = torch.tensor([True, False, True, False])
    with torch.no_grad():
        state = model.encode_state(batch["grid"], batch["direction"], drop_state=drop)
        plain = model.encode_state(batch["grid"], batch["direction"])
    null = model.null_state_embedding(4)
    torch.testing.assert_close(state[drop], null[drop])
    torch.testing.assert_close(state[~drop], plain[~drop])
    assert not torch.allclose(plain[0], null[0])


def test_fresh_model_outputs_zero_logits() -> None:
    """adaLN-Zero + zero head: before training every position and state gives zero logits,
    which is why the position / state checks below run on a trained model."""
    torch.manual_seed(0)
    model = MDLMPolicy(TINY)
    batch = maze_batch(2, HORIZON, seed=3)
    tokens = torch.full((2, HORIZON), MASK)
    with torch.no_grad():
        logits = model(tokens, batch["grid"], batch["direction"], torch.ones(2))
    assert torch.count_nonzero(logits[..., :NUM_ACTIONS]) == 0 and torch.count_nonzero(logits[..., END]) == 0
    assert (logits[..., MASK] == NEVER_LOGIT).all()  # MASK is never an output


def test_sanity_1_single_batch_overfit(overfit: tuple[MDLMPolicy, dict[str, torch.Tensor]]) -> None:
    model, batch = overfit
    gen = torch.Generator().manual_seed(123)
    for ratio in (0.5, 1.0):  # 1.0 = all MASK: the actions must come from the state alone
        tokens, mask, actual = mask_tokens(batch["actions"], torch.full((8,), ratio), gen)
        with torch.no_grad():
            logits = model(tokens, batch["grid"], batch["direction"], actual)
        loss, accuracy = masked_loss(logits, batch["actions"], mask)
        assert loss.item() < 0.1, (ratio, loss.item())
        assert accuracy.item() > 0.95, (ratio, accuracy.item())


def test_sanity_2_mask_embedding_distinct(overfit: tuple[MDLMPolicy, dict[str, torch.Tensor]]) -> None:
    torch.manual_seed(0)
    fresh = MDLMPolicy(ModelConfig())
    trained, _ = overfit
    for model in (fresh, trained):
        weight = model.token_embed.weight.detach()
        sims = F.cosine_similarity(weight[:NUM_ACTIONS], weight[MASK].unsqueeze(0), dim=-1)
        assert sims.abs().max().item() < 0.5, sims


def test_sanity_3_positions_differ_for_all_mask(overfit: tuple[MDLMPolicy, dict[str, torch.Tensor]]) -> None:
    model, batch = overfit
    tokens = torch.full((8, HORIZON), MASK)
    with torch.no_grad():
        logits = model(tokens, batch["grid"], batch["direction"], torch.ones(8))
    position_variance = logits.var(dim=1).mean().item()  # variance over positions
    assert position_variance > 1.0, position_variance
    distinct_rows = torch.unique(logits.argmax(-1)[0]).numel()
    assert distinct_rows >= 4  # a random 16-step target uses several different actions


def test_sanity_4_states_change_output(overfit: tuple[MDLMPolicy, dict[str, torch.Tensor]]) -> None:
    """Two states of the same maze that differ only in the agent cell give different logits."""
    model, batch = overfit
    tokens = torch.full((2, HORIZON), MASK)
    with torch.no_grad():
        logits = model(tokens, batch["grid"][:2], batch["direction"][:2], torch.ones(2))
    diff = (logits[0] - logits[1]).abs().mean().item()
    assert diff > 0.1, diff
    assert not torch.equal(logits[0].argmax(-1), logits[1].argmax(-1))


def test_benchmark_runs_tiny() -> None:
    from benchmarks.model_speed import run_benchmark

    results = run_benchmark(TINY, train_batch=4, sample_batch=2, horizon=8, num_steps=2, iters=1, warmup=0)
    assert results["train_step_s"] > 0 and results["sample_s"] > 0
    assert results["sample_over_forwards"] > 0
