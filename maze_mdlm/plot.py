"""Training curves from ``metrics.jsonl``: loss, accuracy and in-env success against the step.

Needs matplotlib (the ``plot`` extra); ``maze-mdlm plot RUN_DIR`` calls :func:`plot_run`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from envs.files import atomic_write


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line, from a killed run, is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def series(records: Sequence[dict[str, Any]], event: str, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` in the ``event`` records, in file order; None values are skipped.
    A resumed run appends to the file; a step written twice keeps its last value."""
    points: dict[int, float] = {}
    for record in records:
        if record.get("event") == event and record.get(key) is not None:
            points[int(record["step"])] = float(record[key])
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def plot_run(records: Sequence[dict[str, Any]], out: str | os.PathLike, title: str | None = None) -> Path:
    """Draw three panels (loss, accuracy, in-env success; train and validation curves) and write
    them to ``out`` as PNG, atomically. Every panel has its own labelled, ticked axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    panels = (("loss", "cross-entropy on predicted tokens (nats)"), ("accuracy", "accuracy on predicted tokens"))
    for ax, (key, ylabel) in zip(axes[:2], panels):
        for event, label, style in (("train", "train (window mean)", "-"), ("val", "validation (50% mask)", "o-")):
            steps, values = series(records, event, key)
            if steps:
                ax.plot(steps, values, style, label=label, markersize=4)
        ax.set_title(key.capitalize())
        ax.set_ylabel(ylabel)
    axes[1].set_ylim(-0.02, 1.02)
    ax = axes[2]
    steps, values = series(records, "eval", "success_rate")
    if steps:
        ax.plot(steps, values, "s-", color="tab:green", label="success rate (held-out seeds)", markersize=5)
    else:
        ax.text(0.5, 0.5, "no in-env checks in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("In-env success")
    ax.set_ylabel("success rate")
    last = max((int(r.get("step", 0)) for r in records), default=1)
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.set_xlim(0, max(last, 1) * 1.03)
        ax.tick_params(labelbottom=True, labelleft=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9)
    if title:
        fig.suptitle(title)

    def write(handle) -> None:
        fig.savefig(handle, format="png", dpi=110)

    try:
        return atomic_write(out, write)
    finally:
        plt.close(fig)
