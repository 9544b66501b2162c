"""The metrics of one training run: ``metrics.jsonl`` always, TensorBoard events on request.

CleanRL style: one ``SummaryWriter`` per run folder, scalars under stable names (:data:`SCALARS`,
``losses/...`` and ``charts/...``), and the same numbers in a plain file, so a run reads without
TensorBoard. TensorBoard is the optional ``tensorboard`` extra.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# (event, metrics key) -> TensorBoard tag; other numeric keys go to "<event>/<key>"
SCALARS = {
    ("train", "loss"): "losses/train",
    ("val", "loss"): "losses/val",
    ("train", "accuracy"): "charts/train_accuracy",
    ("val", "accuracy"): "charts/val_accuracy",
    ("val", "plan_accuracy"): "charts/val_plan_accuracy",
    ("val", "end_accuracy"): "charts/val_end_accuracy",
    ("eval", "success_rate"): "charts/success",
    ("eval", "path_ratio"): "charts/path_ratio",
    ("eval", "mean_steps"): "charts/eval_mean_steps",
    ("train", "lr"): "charts/learning_rate",
    ("train", "grad_norm"): "charts/grad_norm",
    ("train", "mask_ratio"): "charts/mask_ratio",
    ("train", "samples_per_s"): "charts/samples_per_s",
}


def scalar_name(event: str, key: str) -> str:
    """The TensorBoard tag of ``key`` in an ``event`` record (stable across versions)."""
    return SCALARS.get((event, key), f"{event}/{key}")


class RunLog:
    """Appends ``{"event", "step", **metrics}`` lines to ``run_dir/metrics.jsonl`` and, with
    ``tensorboard=True``, the numeric metrics to TensorBoard events in ``run_dir``.

    Raises:
        ImportError: ``tensorboard=True`` without the tensorboard package.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run_dir))
        self._file = (self.run_dir / "metrics.jsonl").open("a")

    def write(self, event: str, step: int, metrics: dict[str, Any]) -> None:
        """Record one event (``train``, ``val``, ``eval``) at optimizer step ``step``."""
        self._file.write(json.dumps({"event": event, "step": step, **metrics}) + "\n")
        self._file.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self.writer.add_scalar(scalar_name(event, key), value, step)
            self.writer.flush()

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
