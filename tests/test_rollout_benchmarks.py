"""Tiny calls of benchmarks.rollout_workers, and the search-budget plot's axes."""

from __future__ import annotations

import json

import pytest

from benchmarks import rollout_workers, search_budget
from benchmarks.common import RESULTS


def test_rollout_workers_tiny():
    r = rollout_workers.run("random", "MiniGrid-Empty-5x5-v0", episodes=4, workers=(1, 2), repeats=1)
    assert [row["workers"] for row in r["rows"]] == [1, 2] and r["identical_per_episode"]
    assert r["rows"][0]["speedup"] == 1.0 and all(row["median_seconds"] > 0 for row in r["rows"])
    assert "| 2 |" in rollout_workers.to_markdown(r)


def test_search_budget_plot_labels_both_axes(tmp_path, monkeypatch):
    """Redrawn from the stored results: the right axis (planning ms) shows labelled ticks."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect it
    rows = json.loads((RESULTS / "search_budget.json").read_text())["results"]["rows"]
    assert search_budget.plot(rows, tmp_path / "p.png") == tmp_path / "p.png"
    left, right = figures[0].axes
    low, high = right.get_ylim()
    shown = [t.get_text() for t in right.get_yticklabels() if low <= t.get_position()[1] <= high and t.get_text()]
    assert len(shown) >= 3, shown
    assert high >= max(r["mean_plan_ms"] for r in rows)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
