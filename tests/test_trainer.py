"""Masking, loss, LR schedule, Trainer (fit / validate / resume) and checkpoints."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from maze_mdlm.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.masking import cosine_mask_ratio, curriculum_mask_ratio, mask_tokens
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.tokens import END, MASK, NUM_ACTIONS
from maze_mdlm.trainer import Trainer, TrainConfig, lr_at, masked_loss

HORIZON = 8
TINY = ModelConfig(hidden_dim=32, num_layers=2, num_heads=2, max_seq_len=HORIZON)


class FakeWindows:
    """In-memory BatchSource of random states and action windows ending in END."""

    def __init__(self, num_samples: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.num_samples = num_samples
        self.grid = torch.stack(
            [
                torch.randint(0, 11, (num_samples, 19, 19), generator=g),
                torch.randint(0, 6, (num_samples, 19, 19), generator=g),
                torch.randint(0, 4, (num_samples, 19, 19), generator=g),
            ],
            dim=1,
        )
        self.direction = torch.randint(0, 4, (num_samples,), generator=g)
        self.length = torch.randint(1, HORIZON + 1, (num_samples,), generator=g)
        actions = torch.randint(0, 3, (num_samples, HORIZON), generator=g)
        after_end = torch.arange(HORIZON).unsqueeze(0) >= self.length.unsqueeze(1)
        self.actions = actions.masked_fill(after_end, END)
        self.requested: list[torch.Tensor] = []

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        self.requested.append(indices.clone())
        return {
            "grid": self.grid[indices],
            "direction": self.direction[indices],
            "actions": self.actions[indices],
            "length": self.length[indices],
        }


def make_trainer(steps: int = 6, seed: int = 0, cond_drop_prob: float = 0.1, **overrides) -> Trainer:
    torch.manual_seed(seed)
    cfg = TrainConfig(steps=steps, batch_size=8, horizon=HORIZON, warmup_steps=2, seed=seed,
                      log_every=2, val_every=3, val_max_samples=20, curriculum_warmup_steps=4,
                      **overrides)
    return Trainer(MDLMPolicy(replace(TINY, cond_drop_prob=cond_drop_prob)), cfg)


# ---- masking -----------------------------------------------------------------------------

def test_cosine_ratio_and_curriculum() -> None:
    t = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(cosine_mask_ratio(t), torch.tensor([0.0, math.sqrt(0.5), 1.0]))
    grid_t = torch.linspace(0, 1, 101)
    early = curriculum_mask_ratio(grid_t, progress=0.0)
    late = curriculum_mask_ratio(grid_t, progress=1.0)
    torch.testing.assert_close(early, (0.3 * cosine_mask_ratio(grid_t) + 0.07).clamp(0.05, 0.95))
    torch.testing.assert_close(late, 0.3 * cosine_mask_ratio(grid_t) + 0.525)
    assert late.mean() > early.mean()
    off = curriculum_mask_ratio(grid_t, 0.3, blend=0.0)
    assert off.min() == pytest.approx(0.05) and off.max() == pytest.approx(0.95)
    with pytest.raises(ValueError):
        curriculum_mask_ratio(grid_t, 0.0, schedule="bogus")


def test_mask_tokens_ratio_min_one_and_determinism() -> None:
    g = torch.Generator().manual_seed(0)
    actions = torch.randint(0, NUM_ACTIONS, (4000, 32), generator=g)
    ratio = torch.full((4000,), 0.3)
    ratio[:1000] = 0.0  # these rows must still get exactly one forced mask
    tokens, mask, actual = mask_tokens(actions, ratio, torch.Generator().manual_seed(1))
    assert torch.all(mask.sum(dim=1) >= 1)
    assert torch.all(mask[:1000].sum(dim=1) == 1)
    assert actual[1000:].mean().item() == pytest.approx(0.3, abs=0.01)
    torch.testing.assert_close(actual, mask.float().mean(dim=1))
    assert torch.all(tokens[mask] == MASK) and torch.equal(tokens[~mask], actions[~mask])
    again = mask_tokens(actions, ratio, torch.Generator().manual_seed(1))
    other = mask_tokens(actions, ratio, torch.Generator().manual_seed(2))
    assert torch.equal(again[1], mask) and not torch.equal(other[1], mask)
    # the forced position is uniform over the row, not always the same index
    assert mask[:1000].float().mean(dim=0).min() > 0.0


# ---- loss and LR -------------------------------------------------------------------------

def test_masked_loss_ignores_unmasked_and_elbo_weighting() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, NUM_ACTIONS, generator=g)
    targets = torch.randint(0, NUM_ACTIONS, (3, 5), generator=g)
    mask = torch.rand(3, 5, generator=g) < 0.5
    mask[:, 0] = True
    loss, acc = masked_loss(logits, targets, mask)
    scrambled = torch.where(mask.unsqueeze(-1), logits, torch.randn(3, 5, NUM_ACTIONS, generator=g))
    loss2, acc2 = masked_loss(scrambled, targets, mask)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(acc, acc2)
    ce = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
    torch.testing.assert_close(loss, ce)
    weights = torch.tensor([1.0, 2.0, 0.5])
    weighted, _ = masked_loss(logits, targets, mask, weights)
    per_row = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(weighted, ((per_row * mask).sum(1) * weights).mean())


def test_lr_schedule() -> None:
    assert lr_at(0, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_at(9, 1.0, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_at(60, 1.0, 10, 110, 0.1) == pytest.approx(0.55)
    assert lr_at(110, 1.0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_at(500, 1.0, 10, 110, 0.1) == pytest.approx(0.1)


# ---- trainer -----------------------------------------------------------------------------

def test_train_step_metrics_and_cond_drop() -> None:
    trainer = make_trainer(cond_drop_prob=0.5)
    seen: list[torch.Tensor] = []
    original = trainer.model.encode_state

    def spy(grid, direction, drop_state=None, carrying=None, task=None):
        seen.append(drop_state)
        return original(grid, direction, drop_state, carrying, task)

    trainer.model.encode_state = spy  # type: ignore[method-assign]
    data = FakeWindows(64, seed=1)
    metrics = trainer.train_step(data.get_batch(torch.arange(64)))
    assert set(metrics) >= {"loss", "accuracy", "mask_ratio", "lr", "grad_norm"}
    # zero-init head: uniform over the 7 actions and END (MASK is never an output)
    assert metrics["loss"] == pytest.approx(math.log(NUM_ACTIONS + 1), rel=1e-4)
    assert trainer.step == 1
    assert seen[0] is not None and 10 < int(seen[0].sum()) < 54


def test_next_indices_cover_each_epoch() -> None:
    trainer = make_trainer()
    indices = torch.cat([trainer.next_indices(20) for _ in range(5)])  # 40 = two epochs
    assert torch.equal(indices[:20].sort().values, torch.arange(20))
    assert torch.equal(indices[20:].sort().values, torch.arange(20))


def test_fit_events_hooks_and_stop() -> None:
    trainer = make_trainer(steps=6, eval_every=4)
    events: list[tuple[str, int]] = []
    evals: list[bool] = []

    def eval_fn(model: MDLMPolicy) -> dict[str, float]:
        evals.append(model.training)
        return {"success_rate": 0.25}

    def callback(event: str, step: int, metrics: dict[str, float]) -> None:
        events.append((event, step))
        assert all(isinstance(v, float) for v in metrics.values())

    last = trainer.fit(FakeWindows(30, seed=1), FakeWindows(20, seed=2), callback, eval_fn)
    assert events == [("train", 2), ("val", 3), ("train", 4), ("eval", 4),
                      ("train", 6), ("val", 6), ("eval", 6)]
    assert evals == [False, False]
    assert last["eval"] == {"success_rate": 0.25}
    assert set(last["val"]) >= {"loss", "accuracy", "plan_accuracy", "end_accuracy"}

    stopper = make_trainer(steps=10)
    stopper.fit(FakeWindows(30, seed=1), callback=lambda event, step, m: step >= 4)
    assert stopper.step == 4


def test_validate_is_repeatable_and_side_effect_free() -> None:
    trainer = make_trainer()
    data = FakeWindows(30, seed=1)
    for _ in range(3):
        trainer.train_step(data.get_batch(torch.arange(8)))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    rng = trainer.mask_generator.get_state()
    trainer.model.train()
    first, second = trainer.validate(data), trainer.validate(data)
    assert first == second
    assert first["num_tokens"] == pytest.approx(0.5 * 20 * HORIZON, rel=0.3)
    assert trainer.model.training
    assert torch.equal(trainer.mask_generator.get_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_resume_through_checkpoint_is_exact(tmp_path: Path) -> None:
    data = FakeWindows(30, seed=1)
    straight = make_trainer(steps=6)
    straight.fit(data)

    first = make_trainer(steps=6)
    first.config.steps = 3
    first.fit(data)
    first.config.steps = 6
    path = save_checkpoint(tmp_path / "ckpt.pt", first.model, TINY, first.optimizer.state_dict(),
                           first.step, first.config, {"num_samples": 30},
                           extra={"rng": first.rng_state()})
    resumed = make_trainer(steps=6, seed=99)  # different init and seeds: all must be restored
    _, ckpt = load_checkpoint(path)
    resumed.load_state_dict(ckpt)
    resumed.fit(data)

    assert resumed.step == straight.step == 6
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


# ---- checkpoints -------------------------------------------------------------------------

def test_checkpoint_round_trip_identical_logits(tmp_path: Path) -> None:
    trainer = make_trainer()
    data = FakeWindows(16, seed=3)
    for _ in range(3):
        trainer.train_step(data.get_batch(torch.arange(8)))
    path = save_checkpoint(tmp_path / "sub" / "model.pt", trainer.model, TINY,
                           trainer.optimizer.state_dict(), trainer.step, trainer.config,
                           {"env": "MiniGrid-Test", "num_samples": np.int64(16), "seeds": np.arange(3)},
                           extra={"note": "x"})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind
    model, ckpt = load_checkpoint(path)
    assert ckpt["format"] == "maze-mdlm-checkpoint" and ckpt["version"] == 1
    assert ckpt["step"] == 3 and ckpt["dataset"] == {"env": "MiniGrid-Test", "num_samples": 16, "seeds": [0, 1, 2]}
    assert TrainConfig.from_dict(ckpt["train_config"]) == trainer.config
    assert ModelConfig.from_dict(ckpt["model_config"]) == TINY
    assert not model.training
    batch = data.get_batch(torch.arange(4))
    ratio = torch.full((4,), 0.5)
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model(batch["actions"], batch["grid"], batch["direction"], ratio)
        got = model(batch["actions"], batch["grid"], batch["direction"], ratio)
    assert torch.equal(expected, got)


def test_checkpoint_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a maze-mdlm checkpoint"):
        load_checkpoint(text)
    other = tmp_path / "other.pt"
    torch.save({"model": {}, "step": 1}, other)
    with pytest.raises(ValueError, match="not a maze-mdlm checkpoint"):
        read_checkpoint(other)


def test_checkpoint_refuses_unplain_metadata(tmp_path: Path) -> None:
    model = MDLMPolicy(TINY)
    with pytest.raises(TypeError, match="dataset"):
        save_checkpoint(tmp_path / "bad.pt", model, TINY, None, 0, TrainConfig(), {"obj": object()})
    assert not any(tmp_path.iterdir())


def test_curriculum_fades_into_the_full_schedule() -> None:
    """Early ratios sit near the easy target; after the ramp, all-MASK-like ratios appear."""
    config = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=8)
    trainer = Trainer(MDLMPolicy(config), TrainConfig(steps=100, horizon=8, curriculum_warmup_steps=10))
    early = trainer.sample_mask_ratio(4096)
    assert early.max() < 0.45
    trainer.step = 10
    assert trainer.curriculum_blend() == 0.0
    late = trainer.sample_mask_ratio(4096)
    assert late.max() >= 0.95 - 1e-6 and late.min() <= 0.06
    fixed = Trainer(MDLMPolicy(config), TrainConfig(steps=100, horizon=8, curriculum_warmup_steps=10, curriculum_fade=False))
    fixed.step = 10
    assert fixed.sample_mask_ratio(4096).max() < 0.85
