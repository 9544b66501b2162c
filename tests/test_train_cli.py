"""End to end: collect-data -> train -> rollout --agent mdlm, and the train command's checks."""

from __future__ import annotations

import json

import pytest
import torch

from maze_mdlm.checkpoint import read_checkpoint
from maze_mdlm.cli import main


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "fr.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "50", "--out", str(path)]) == 0
    return path


def _train(data_file, out, *extra):
    return main(["train", "--data", str(data_file), "--out", str(out), "--steps", "30", "--batch-size", "32",
                 "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1", "--val-every", "10",
                 "--eval-episodes", "2", *extra])


def test_collect_train_rollout_end_to_end(tmp_path, data_file, capsys):
    run = tmp_path / "run"
    assert _train(data_file, run) == 0
    ckpt = read_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 30
    assert ckpt["train_config"]["horizon"] == 8
    assert ckpt["dataset"]["envs"] == ["MiniGrid-FourRooms-v0"]
    assert ckpt["dataset"]["seeds"] == [0, 49]
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"train", "val", "eval"} <= kinds
    assert [e["step"] for e in events if e["event"] == "val"] == [10, 20, 30]

    out = tmp_path / "r.json"
    assert main(["rollout", "--agent", "mdlm", "--checkpoint", str(run / "checkpoint.pt"),
                 "--episodes", "3", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["agent"] == "mdlm" and metrics["episodes"] == 3
    assert len(metrics["per_episode"]) == 3
    assert 0.0 <= metrics["success_rate"] <= 1.0


def test_resume_continues_to_more_steps(tmp_path, data_file):
    run = tmp_path / "run"
    assert _train(data_file, run) == 0
    assert main(["train", "--data", str(data_file), "--out", str(run), "--steps", "40", "--batch-size", "32",
                 "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1", "--val-every", "10",
                 "--eval-episodes", "0", "--resume"]) == 0
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 40


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, data_file, monkeypatch):
    from maze_mdlm.trainer import Trainer

    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--steps", "10", "--batch-size", "16", "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1",
            "--val-every", "5", "--eval-episodes", "0"]
    assert main(["train", "--data", str(data_file), "--out", str(a), *args]) == 0

    original = Trainer.train_step

    def interrupted(self, batch):
        if self.step == 7:  # killed after the step-5 checkpoint
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    assert main(["train", "--data", str(data_file), "--out", str(b), *args]) == 130
    assert read_checkpoint(b / "checkpoint.pt")["step"] == 5
    monkeypatch.setattr(Trainer, "train_step", original)
    assert main(["train", "--data", str(data_file), "--out", str(b), "--resume", *args]) == 0
    wa, wb = read_checkpoint(a / "checkpoint.pt")["model"], read_checkpoint(b / "checkpoint.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resume"], "no"),
        (["--lr", "-1"], "--lr"),
    ],
)
def test_train_bad_input(tmp_path, data_file, capsys, extra, message):
    code = main(["train", "--data", str(data_file), "--out", str(tmp_path / "run"), "--steps", "5", *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_non_dataset_and_an_existing_run(tmp_path, data_file, capsys):
    bogus = tmp_path / "bogus.data"
    bogus.write_bytes(b"not a dataset")
    assert main(["train", "--data", str(bogus), "--out", str(tmp_path / "run")]) == 2
    assert "not a maze-mdlm dataset" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    run = tmp_path / "run2"
    assert _train(data_file, run) == 0
    assert _train(data_file, run) == 2
    assert "--resume" in capsys.readouterr().err


def test_export_strips_optimizer_and_keeps_the_model(tmp_path, data_file, capsys):
    run = tmp_path / "run"
    assert _train(data_file, run) == 0
    shipped = tmp_path / "release.pt"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(shipped)]) == 0
    full, slim = read_checkpoint(run / "checkpoint.pt"), read_checkpoint(shipped)
    assert slim["optimizer"] is None and "rng" not in slim["extra"]
    assert shipped.stat().st_size < (run / "checkpoint.pt").stat().st_size
    assert all(torch.equal(full["model"][k], slim["model"][k]) for k in full["model"])
    assert slim["dataset"] == full["dataset"] and slim["step"] == full["step"]
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_train_refuses_validation_on_a_single_episode(tmp_path, capsys):
    one = tmp_path / "one.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "1", "--out", str(one)]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(one), "--out", str(tmp_path / "run"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--val-every 0" in err
    assert not (tmp_path / "run").exists()


def test_init_fine_tunes_from_exported_weights(tmp_path, data_file, monkeypatch):
    """--init starts step 0 from the weights of an exported checkpoint, keeps its model config (no
    --hidden-dim needed), skips the curriculum and records the lineage."""
    from maze_mdlm.trainer import Trainer

    run = tmp_path / "run"
    assert _train(data_file, run) == 0
    shipped = tmp_path / "release.pt"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(shipped)]) == 0
    before = read_checkpoint(shipped)["model"]
    first_weights = {}
    original = Trainer.train_step

    def spy(self, batch):
        if not first_weights:
            first_weights.update({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", spy)
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(data_file), "--out", str(tuned), "--steps", "5", "--batch-size", "16",
                 "--horizon", "8", "--val-every", "0", "--eval-episodes", "0", "--init", str(shipped)]) == 0
    assert all(torch.equal(first_weights[k], before[k]) for k in before)  # step 0 = the exported weights
    ckpt = read_checkpoint(tuned / "checkpoint.pt")
    assert ckpt["step"] == 5 and ckpt["model_config"] == read_checkpoint(shipped)["model_config"]
    assert ckpt["train_config"]["use_curriculum"] is False
    assert ckpt["dataset"]["init"]["checkpoint"] == "release.pt" and ckpt["dataset"]["init"]["step"] == 30
    assert any(not torch.equal(ckpt["model"][k], before[k]) for k in before)  # it trained


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--init", "{ckpt}", "--hidden-dim", "64"], "--hidden-dim 64"),
        (["--init", "{ckpt}", "--model", "ar"], "not --model ar"),
        (["--init", "{ckpt}", "--horizon", "100"], "at most"),
        (["--init", "{missing}"], "not found"),
        (["--init", "{ckpt}", "--resume"], "one of them"),
    ],
)
def test_init_bad_input(tmp_path, data_file, capsys, extra, message):
    run = tmp_path / "run"
    assert _train(data_file, run) == 0
    capsys.readouterr()
    extra = [e.format(ckpt=run / "checkpoint.pt", missing=tmp_path / "nope.pt") for e in extra]
    code = main(["train", "--data", str(data_file), "--out", str(tmp_path / "tuned"), "--steps", "5", *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "tuned").exists()
