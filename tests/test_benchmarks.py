"""A tiny call of each benchmark, so they do not rot (sizes are far too small to mean anything)."""

from __future__ import annotations

import json

from benchmarks import expert_speed, model_speed, success, train_throughput
from benchmarks.common import write_results
from maze_mdlm.config import ModelConfig

TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=8)


def test_expert_speed_solvers_agree():
    rows = expert_speed.run(episodes=3)
    assert [r["env"] for r in rows] == ["MiniGrid-FourRooms-v0", "MazeMDLM/Maze-19x19-v0"]
    assert all(r["hand_bfs_eps"] > 0 and r["networkx_eps"] > 0 for r in rows)


def test_train_throughput_runs():
    r = train_throughput.run(episodes=20, batch_size=8, horizon=4, iters=1, warmup=0, config=TINY)
    assert r["trainer_samples_per_s"] > 0 and r["bare_samples_per_s"] > 0 and r["trainer_over_bare"] > 0


def test_model_speed_runs():
    r = model_speed.run_benchmark(config=TINY, train_batch=4, sample_batch=2, horizon=8, num_steps=2, iters=1, warmup=0)
    assert r["sample_over_forwards"] > 0 and r["train_step_s"] > 0


def test_success_table_and_results_files(tmp_path):
    rows = success.run(["bfs", "random"], ["MiniGrid-FourRooms-v0"], episodes=2)
    assert rows[0]["agent"] == "bfs" and rows[0]["success_rate"] == 1.0 and rows[0]["path_ratio"] == 1.0
    md = success.to_markdown(rows)
    assert "| bfs | MiniGrid-FourRooms-v0 | 2 | 1.000 |" in md
    path = write_results("tiny", {"rows": rows}, md, out_dir=tmp_path)
    payload = json.loads((tmp_path / "tiny.json").read_text())
    assert payload["command"].startswith("python -m benchmarks.tiny")
    assert {"cpu", "torch", "git_commit"} <= set(payload["machine"])
    assert "Machine:" in path.read_text()
