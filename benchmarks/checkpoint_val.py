"""Held-out validation loss and accuracy of checkpoints on the same windows, overall and per env.

Reads the ``--data`` files as ``maze-mdlm train`` does, splits them by seed as training does
(validation: the episodes whose seed % 50 == 49, per env) and runs ``Trainer.validate`` (the
AR baseline: ``ARTrainer.validate``) for every ``--checkpoint`` with the same settings: the
same evenly spaced validation windows, the same masks (a fixed mask ratio, 0.5, from a fixed
generator). So two checkpoints of one model family are compared on exactly the same
predictions, which the ``val`` lines of two training runs on different data are not.

    python -m benchmarks.checkpoint_val --data A.mdd [--data B.mdd ...] --checkpoint X.pt
                                        [--checkpoint Y.pt ...] [--horizon H] [--max-samples 16384]
                                        [--name checkpoint_val] [--out-dir DIR]

``--horizon`` defaults to the first checkpoint's training horizon. Bad input (a missing file, a
checkpoint on another grid size than the data) exits 2 with a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_results
from envs.dataset import DatasetFormatError, Episodes, PlanDataset
from maze_mdlm.checkpoint import load_checkpoint, read_checkpoint
from maze_mdlm.cli_common import UsageError
from maze_mdlm.cli_train import load_sources
from maze_mdlm.trainer import ARTrainer, Trainer, TrainConfig


def validate(path: str, episodes: Episodes, horizon: int, max_samples: int) -> dict[str, Any]:
    """Validation metrics of the checkpoint at ``path`` on the seed split of ``episodes``:
    ``{"checkpoint", "model_type", "step", "samples", "loss", "accuracy", "envs": {env: {"loss",
    "accuracy"}}}`` (``samples``: the validation windows used, at most ``max_samples``)."""
    model, ckpt = load_checkpoint(path, map_location="cpu")
    if model.config.grid_size != episodes.grid_size:
        raise ValueError(f"{path}: a {model.config.grid_size}x{model.config.grid_size} model, the data is on a "
                         f"{episodes.grid_size}x{episodes.grid_size} grid")
    _, val = PlanDataset(episodes, horizon, end_token=model.config.end_token).split_by_seed()
    if val.num_samples == 0:
        raise ValueError("the data holds no validation episode (seed % 50 == 49)")
    config = TrainConfig(horizon=horizon, val_max_samples=max_samples)
    trainer = (ARTrainer if ckpt["model_type"] == "ar" else Trainer)(model, config, device="cpu")
    metrics = trainer.validate(val)
    per_env = {key[len("env/"):-len("/accuracy")]: {"loss": metrics[key[:-len("accuracy")] + "loss"],
                                                      "accuracy": metrics[key]}
               for key in metrics if key.startswith("env/") and key.endswith("/accuracy")}
    return {"checkpoint": path, "model_type": ckpt["model_type"], "step": int(ckpt["step"]),
            "samples": min(val.num_samples, max_samples), "loss": metrics["loss"],
            "accuracy": metrics["accuracy"], "envs": per_env}


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """One accuracy column per checkpoint: the whole validation set, then each env."""
    head = "| env | " + " | ".join(f"`{Path(r['checkpoint']).name}` ({r['model_type']})" for r in rows) + " |"
    lines = [f"Validation windows: {rows[0]['samples']} (the same for every checkpoint), mask ratio "
             "0.5, seed split (seed % 50 == 49). Accuracy of the masked positions (the AR "
             "baseline: every position, next-action objective).", "", head,
             "|---|" + "---|" * len(rows),
             "| all (loss) | " + " | ".join(f"{r['loss']:.4f}" for r in rows) + " |",
             "| all (accuracy) | " + " | ".join(f"{r['accuracy']:.4f}" for r in rows) + " |"]
    for env in rows[0]["envs"]:
        lines.append(f"| {env} | " + " | ".join(f"{r['envs'][env]['accuracy']:.3f}" if env in r["envs"] else "-"
                                                for r in rows) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="dataset file (repeatable)")
    parser.add_argument("--checkpoint", action="append", required=True, help="checkpoint (repeatable)")
    parser.add_argument("--horizon", type=int, default=None, help="window length (default: the first checkpoint's)")
    parser.add_argument("--max-samples", type=int, default=16384, help="validation windows at most (default 16384)")
    parser.add_argument("--name", default="checkpoint_val", help="results file name")
    parser.add_argument("--out-dir", type=Path, default=None, help="results directory (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.max_samples < 1 or (args.horizon is not None and args.horizon < 1):
        parser.error("--max-samples and --horizon must be >= 1")
    torch.set_num_threads(1)
    try:
        episodes, _ = load_sources(args.data)
        horizon = args.horizon
        if horizon is None:
            horizon = int(read_checkpoint(args.checkpoint[0]).get("train_config", {}).get("horizon", 12))
        rows = [validate(path, episodes, horizon, args.max_samples) for path in args.checkpoint]
    except (UsageError, ValueError, DatasetFormatError) as err:
        parser.error(str(err))
    for r in rows:
        print(f"{r['checkpoint']}: accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f}", file=sys.stderr)
    print(write_results(args.name, {"horizon": horizon, "rows": rows}, to_markdown(rows), args.out_dir,
                        module="checkpoint_val"))


if __name__ == "__main__":
    main()
