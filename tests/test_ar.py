"""The autoregressive baseline: causal model, teacher forcing, decoding, trainer, checkpoint, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from maze_mdlm.ar import ARPolicy, generate
from maze_mdlm.checkpoint import load_checkpoint, save_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.tokens import END, MASK, NUM_ACTIONS
from maze_mdlm.trainer import ARTrainer, TrainConfig
from tests.test_trainer import HORIZON, FakeWindows

TINY = ModelConfig(hidden_dim=32, num_layers=2, num_heads=2, max_seq_len=HORIZON, cond_drop_prob=0.0,
                   cnn_channels=(4, 8, 8))


def tiny_model(seed: int = 0) -> ARPolicy:
    """A tiny ARPolicy whose zero-initialised head and modulations are perturbed (non-trivial output)."""
    torch.manual_seed(seed)
    model = ARPolicy(TINY)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 1 and not p.any():
                p.normal_(0.0, 0.3)
    return model.eval()


def test_teacher_inputs_shift_actions_behind_start():
    model = tiny_model()
    actions = torch.tensor([[2, 0, 1, END], [1, 1, 2, 2]])
    assert model.teacher_inputs(actions).tolist() == [[MASK, 2, 0, 1], [MASK, 1, 1, 2]]
    assert model.start_token_id == MASK


def test_attention_is_causal():
    model = tiny_model()
    batch = FakeWindows(3, seed=1).get_batch(torch.arange(3))
    tokens = model.teacher_inputs(batch["actions"])
    base = model(tokens, batch["grid"], batch["direction"])
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % NUM_ACTIONS
    out = model(changed, batch["grid"], batch["direction"])
    assert base.shape == (3, HORIZON, TINY.num_outputs)
    torch.testing.assert_close(out[:, :5], base[:, :5])  # the past never sees the future
    assert not torch.allclose(out[:, 5:], base[:, 5:])


def test_generate_is_greedy_argmax_of_the_forward_pass_and_respects_forbid():
    model = tiny_model()
    batch = FakeWindows(4, seed=2).get_batch(torch.arange(4))
    plan = generate(model, batch["grid"], batch["direction"], HORIZON)
    logits = model(model.teacher_inputs(plan), batch["grid"], batch["direction"])
    assert torch.equal(logits.argmax(-1), plan)  # every token is the greedy choice given its prefix
    forbid = torch.zeros(4, HORIZON, NUM_ACTIONS, dtype=torch.bool)
    forbid[:, 0] = True
    forbid[:, 0, 1] = False
    assert (generate(model, batch["grid"], batch["direction"], 3, forbid=forbid)[:, 0] == 1).all()


def test_generate_with_temperature_is_seeded():
    model = tiny_model()
    batch = FakeWindows(16, seed=3).get_batch(torch.arange(16))

    def draw(seed):
        return generate(model, batch["grid"], batch["direction"], HORIZON, temperature=1.0,
                        generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))
    with pytest.raises(ValueError, match="length"):
        generate(model, batch["grid"], batch["direction"], HORIZON + 1)


def test_ar_trainer_overfits_one_batch_with_loss_on_every_position():
    torch.manual_seed(0)
    config = TrainConfig(steps=150, batch_size=16, horizon=HORIZON, lr=3e-3, warmup_steps=5, seed=0)
    trainer = ARTrainer(ARPolicy(TINY), config)
    batch = FakeWindows(16, seed=4).get_batch(torch.arange(16))
    first = trainer.train_step(batch)
    for _ in range(149):
        last = trainer.train_step(batch)
    assert first["mask_ratio"] == 1.0  # every position is a target
    assert last["loss"] < 0.1 and last["accuracy"] > 0.95 and last["loss"] < first["loss"]
    val = trainer.validate(FakeWindows(16, seed=4))
    assert val["accuracy"] > 0.95 and val["num_tokens"] == 16 * HORIZON


def test_checkpoint_records_and_checks_the_model_type(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "ar.pt", model, TINY, None, 3, {"horizon": HORIZON}, None)
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["model_type"] == "ar" and isinstance(loaded, ARPolicy)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="'ar' model, expected 'mdlm'"):
        load_checkpoint(path, model_type="mdlm")
    mdlm = save_checkpoint(tmp_path / "m.pt", MDLMPolicy(TINY), TINY, None, 0, {}, None)
    assert load_checkpoint(mdlm, model_type="mdlm")[1]["model_type"] == "mdlm"


def test_train_model_ar_then_rollout_agent_ar(tmp_path):
    from maze_mdlm.cli import main

    data, run = tmp_path / "fr.data", tmp_path / "run"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "20", "--out", str(data)]) == 0
    assert main(["train", "--model", "ar", "--data", str(data), "--out", str(run), "--steps", "10",
                 "--batch-size", "16", "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1",
                 "--val-every", "5", "--eval-episodes", "2"]) == 0
    loaded, ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["model_type"] == "ar" and isinstance(loaded, ARPolicy)
    assert ckpt["model_config"]["cond_drop_prob"] == 0.0  # nothing to guide without CFG
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "val", "eval"} <= {e["event"] for e in events}
    out = tmp_path / "r.json"
    assert main(["rollout", "--agent", "ar", "--checkpoint", str(run / "checkpoint.pt"), "--episodes", "3",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["agent"] == "ar" and len(result["per_episode"]) == 3
    # an AR checkpoint is refused by the MDLM agent (and --resume as another model)
    assert main(["rollout", "--agent", "mdlm", "--checkpoint", str(run / "checkpoint.pt"), "--episodes", "1"]) == 2
    assert main(["train", "--model", "mdlm", "--resume", "--data", str(data), "--out", str(run), "--steps", "12",
                 "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1"]) == 2


def test_ar_agent_decodes_only_the_executed_prefix_and_keeps_the_loop_rules():
    from agents.ar_agent import ARAgent
    from maze_mdlm.evaluation import evaluate

    agent = ARAgent(tiny_model(), horizon=HORIZON, execute=2)
    batch = FakeWindows(3, seed=5).get_batch(torch.arange(3))
    assert agent.sample_plans(batch["grid"], batch["direction"], None).shape == (3, 2)
    one = evaluate(ARAgent(tiny_model(), horizon=HORIZON), "MiniGrid-FourRooms-v0", 4, 1_000_000, batch_envs=1)
    many = evaluate(ARAgent(tiny_model(), horizon=HORIZON), "MiniGrid-FourRooms-v0", 4, 1_000_000, batch_envs=4)
    assert one["per_episode"] == many["per_episode"]  # batching never changes a greedy agent's results


def test_checkpoints_from_before_model_type_and_cnn_channels_still_load(tmp_path):
    from dataclasses import replace

    from maze_mdlm.checkpoint import read_checkpoint, write_atomic

    old = replace(TINY, cnn_channels=(32, 64, 64), cond_drop_prob=0.1)
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "old.pt", MDLMPolicy(old), old, None, 0, {}, None)
    ckpt = read_checkpoint(path)
    del ckpt["model_type"], ckpt["model_config"]["cnn_channels"]  # as version 0.1 wrote them
    write_atomic(ckpt, path)
    model, loaded = load_checkpoint(path)
    assert isinstance(model, MDLMPolicy) and loaded["model_type"] == "mdlm"
    assert model.config.cnn_channels == (32, 64, 64)
