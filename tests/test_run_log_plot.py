"""train --tensorboard (events beside metrics.jsonl, stable scalar names) and maze-mdlm plot."""

from __future__ import annotations

import json

import pytest

from maze_mdlm.cli import main
from maze_mdlm.run_log import RunLog, scalar_name

TINY = ["--steps", "6", "--batch-size", "16", "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1",
        "--val-every", "3", "--eval-every", "6", "--eval-episodes", "2", "--log-every", "2"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "fr.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "30", "--out", str(path)]) == 0
    return path


def test_scalar_names_are_stable():
    assert scalar_name("train", "loss") == "losses/train"
    assert scalar_name("val", "loss") == "losses/val"
    assert scalar_name("eval", "success_rate") == "charts/success"
    assert scalar_name("train", "something_new") == "train/something_new"


def test_tensorboard_events_beside_metrics(tmp_path, data_file):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(["train", "--data", str(data_file), "--out", str(run), *TINY, "--tensorboard"]) == 0
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # one writer per run folder
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"losses/train", "losses/val", "charts/success", "charts/train_accuracy", "charts/learning_rate"} <= tags
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    scalars = events.Scalars("losses/train")
    assert [s.step for s in scalars] == [r["step"] for r in train] == [2, 4, 6]
    assert [s.value for s in scalars] == pytest.approx([r["loss"] for r in train], rel=1e-6)


def test_runlog_without_tensorboard_writes_only_jsonl(tmp_path):
    with RunLog(tmp_path) as log:
        log.write("train", 1, {"loss": 1.5, "accuracy": 0.5})
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_plot_draws_three_labelled_panels(tmp_path, data_file, capsys):
    pytest.importorskip("matplotlib")
    from PIL import Image

    run = tmp_path / "run"
    assert main(["train", "--data", str(data_file), "--out", str(run), *TINY]) == 0
    assert main(["plot", str(run)]) == 0
    png = run / "metrics.png"
    width, height = Image.open(png).size
    assert width > 1000 and height > 300

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maze_mdlm.plot import plot_run, read_metrics

    captured = []
    original = plt.close
    plt.close = lambda fig=None: captured.append(fig)  # keep the figure to inspect it
    try:
        plot_run(read_metrics(run / "metrics.jsonl"), tmp_path / "again.png")
    finally:
        plt.close = original
    axes = captured[0].axes
    assert [a.get_title() for a in axes] == ["Loss", "Accuracy", "In-env success"]
    for ax in axes:
        assert ax.get_xlabel() == "optimizer step" and ax.get_ylabel()
        captured[0].canvas.draw()
        assert any(t.get_text() for t in ax.get_xticklabels()) and any(t.get_text() for t in ax.get_yticklabels())
    assert len(axes[0].get_lines()) == 2 and len(axes[2].get_lines()) == 1  # train + val loss; success


def test_plot_bad_input(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_missing_extras_exit_2_before_writing(tmp_path, data_file, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    assert main(["train", "--data", str(data_file), "--out", str(tmp_path / "run"), *TINY, "--tensorboard"]) == 2
    assert "maze-mdlm[tensorboard]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text('{"event": "train", "step": 1, "loss": 1.0}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(tmp_path / "r")]) == 2
    assert "maze-mdlm[plot]" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.png").exists()
    monkeypatch.setitem(sys.modules, "minari", None)
    assert main(["export-minari", "--data", str(data_file), "--dataset-id", "x/y-v0"]) == 2
    assert "maze-mdlm[minari]" in capsys.readouterr().err
