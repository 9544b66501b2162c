"""A tiny call of each benchmark, so they do not rot (sizes are far too small to mean anything)."""

from __future__ import annotations

import argparse
import json

import pytest

from benchmarks import (continuation_memo, expert_speed, model_speed, rollout_speed, search_budget, success,
                        throughput, train_throughput)
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
    # a run saved under another name (benchmarks.success --name X) records the module that ran
    write_results("success_fourrooms", {"rows": rows}, md, out_dir=tmp_path, module="success")
    named = json.loads((tmp_path / "success_fourrooms.json").read_text())
    assert named["command"].split()[:3] == ["python", "-m", "benchmarks.success"]


def test_throughput_figures_tiny(tmp_path):
    sizes = throughput.Sizes(env_episodes=2, env_length=20, expert_episodes=2, train_episodes=20, train_batch=4,
                             horizon=4, sample_batches=(1, 2), num_steps=2, ks=(1, 2), expansions=2, mctd_seeds=1,
                             iters=1, warmup=0)
    r = throughput.run(sizes, ["env", "expert", "train", "sampler", "mctd"], config=TINY)
    assert [row["env"] for row in r["env"]] == ["MiniGrid-FourRooms-v0", "MazeMDLM/Maze-19x19-v0"]
    assert all(row["steps"] > 0 and row["dynamics_over_minigrid"] > 0 for row in r["env"])
    assert r["train"]["trainer_over_bare"] > 0
    assert [row["batch"] for row in r["sampler"]] == [1, 2] and r["sampler"][0]["plans_per_s_vs_first_batch"] == 1.0
    assert [row["k"] for row in r["mctd"]["rows"]] == [1, 2] and r["mctd"]["rows"][0]["ratio_vs_k1"] == 1.0
    md = throughput.to_markdown(r) + throughput.rollout_md({"skipped": throughput.ROLLOUT_MISSING})
    for title in ("## Env steps", "## BFS expert", "## Training", "## Sampler", "## MCTD", "## Rollout"):
        assert title in md
    write_results("throughput", r, md, out_dir=tmp_path)
    assert json.loads((tmp_path / "throughput.json").read_text())["results"]["sizes"]["ks"] == [1, 2]


def test_throughput_quick_flag_and_overrides():
    fields = {f: None for f in throughput.Sizes.__dataclass_fields__}
    args = argparse.Namespace(quick=True, **{**fields, "ks": [1, 4], "iters": 2})
    sizes = throughput.sizes_from_args(args)
    assert sizes.ks == (1, 4) and sizes.iters == 2 and sizes.env_episodes == throughput.QUICK.env_episodes


def test_search_budget_tiny(tmp_path):
    r = search_budget.run((1, 2), episodes=1, env_id="MiniGrid-FourRooms-v0")
    assert [row["budget"] for row in r["rows"]] == [1, 2]
    assert all(row["seed"] == 1_000_000 and 0 < row["mean_expansions"] <= row["budget"] for row in r["rows"])
    md = search_budget.to_markdown(r, plotted=False)
    assert "| 1 |" in md and "Plot skipped" in md
    write_results("search_budget", r, md, out_dir=tmp_path)
    assert (tmp_path / "search_budget.md").exists()


def test_search_budget_plot(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"budget": b, "success_rate": s, "median_plan_ms": ms, "mean_plan_ms": ms * 1.1}
            for b, s, ms in ((1, 0.2, 5.0), (16, 0.6, 40.0), (256, 0.9, 600.0))]
    path = search_budget.plot(rows, tmp_path / search_budget.PLOT)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![" in search_budget.to_markdown({"env": "e", "episodes": 1, "seed": 0, "checkpoint": "c",
                                               "rows": [dict(r, mean_expansions=1.0, decisions=1) for r in rows]},
                                              plotted=True)


def test_rollout_speed_runs_and_compares_equal_episodes(tmp_path):
    rollout_speed.main(["--episodes", "3", "--batch-envs", "2", "--out-dir", str(tmp_path)])
    r = json.loads((tmp_path / "rollout_speed.json").read_text())["results"]
    assert r["batch_envs"] == 2 and r["episodes_per_s_1"] > 0 and r["speedup"] > 0


def test_continuation_memo_benchmark_plays_both_arms_and_writes_its_page(tmp_path):
    # the shipped FourRooms checkpoint, one short episode per arm: the memo changes no action here
    continuation_memo.main(["--envs", "MiniGrid-FourRooms-v0", "--episodes", "1", "--max-steps", "6",
                            "--out-dir", str(tmp_path)])
    row = json.loads((tmp_path / "continuation_memo.json").read_text())["results"]["rows"][0]
    assert row["env"] == "MiniGrid-FourRooms-v0" and row["same_actions"] == 1
    assert row["memo"]["searches"] == row["no_memo"]["searches"] >= 1
    assert row["memo"]["decoded_per_search"] <= row["no_memo"]["decoded_per_search"]
    assert "| MiniGrid-FourRooms-v0 | 1 |" in (tmp_path / "continuation_memo.md").read_text()
    with pytest.raises(SystemExit) as err:
        continuation_memo.main(["--envs", "MiniGrid-NoSuchEnv-v0"])
    assert err.value.code == 2


def test_world_rules_benchmark_runs():
    from benchmarks import world_rules

    envs_ = ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-PutNear-6x6-N2-v0"]
    results = world_rules.run(episodes=2, env_ids=envs_, collect_episodes=2, big_episodes=4, dyn_episodes=2,
                              dyn_length=10, batch=4, effort_episodes=2)
    assert [r["success_rate"] for r in results["oracle"]] == [1.0, 1.0]
    assert [r["path_ratio"] for r in results["oracle"]] == [1.0, 1.0]
    assert results["collect"]["big"]["episodes"] == 4 and results["dynamics"][0]["steps"] > 0
    md = world_rules.to_markdown(results)
    assert "| MiniGrid-DoorKey-5x5-v0 | 5x5 | goal | 250 | 2 | 1.000 | 1.000 |" in md


def test_ddp_benchmark_single_process_tiny():
    from benchmarks import ddp

    r = ddp.run(episodes=10, batch_size=8, steps=2, horizon=4, hidden_dim=16, num_layers=1, layouts=((1, 1),))
    assert r["rows"][0]["steps"] == 2 and r["rows"][0]["max_rel_loss_diff"] == 0.0
    assert r["rows"][0]["samples_per_s"] > 0 and "| 1 x 1 |" in ddp.to_markdown(r)


def test_precision_sweep_tiny_on_cpu_and_skip_page():
    r = train_throughput.precision_sweep(episodes=10, horizon=4, batch_sizes=(8,), modes=("fp32 eager", "bf16"),
                                         iters=1, warmup=0, device="cpu", config=TINY)
    assert [row["mode"] for row in r["rows"]] == ["fp32 eager", "bf16"]
    assert all(row["samples_per_s"] > 0 for row in r["rows"]) and "| 8 |" in train_throughput.sweep_markdown(r)
    assert train_throughput.sweep_markdown({"skipped": "no GPU"}).startswith("Skipped: no GPU")


def test_checkpoint_val_compares_checkpoints_on_the_same_windows(tmp_path):
    from benchmarks import checkpoint_val
    from envs.collect import collect
    from envs.dataset import save_episodes
    from maze_mdlm.checkpoint import save_checkpoint
    from tests.models import perturbed_policy

    data = tmp_path / "empty.mdd"  # seeds 47..50 of two envs: 49 is the validation seed of each
    save_episodes(data, collect(["MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-6x6-v0"], 4, 47, grid_size=19))
    config = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=8, cnn_channels=(4, 4, 4))
    paths = [str(tmp_path / f"m{seed}.pt") for seed in (0, 1)]
    for seed, path in enumerate(paths):
        save_checkpoint(path, perturbed_policy(config, seed=seed), config, None, seed, {"horizon": 4}, None)
    checkpoint_val.main(["--data", str(data), "--checkpoint", paths[0], "--checkpoint", paths[1],
                         "--checkpoint", paths[0], "--out-dir", str(tmp_path)])
    payload = json.loads((tmp_path / "checkpoint_val.json").read_text())
    first, second, again = payload["results"]["rows"]
    assert payload["results"]["horizon"] == 4 and first["samples"] > 0
    assert first == again  # the same windows and masks for every checkpoint
    assert second["accuracy"] != first["accuracy"] or second["loss"] != first["loss"]
    assert set(first["envs"]) == {"MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-6x6-v0"}
    assert "| MiniGrid-Empty-6x6-v0 |" in (tmp_path / "checkpoint_val.md").read_text()
    for bad in (["--data", str(tmp_path / "none.mdd"), "--checkpoint", paths[0]],
                ["--data", str(data), "--checkpoint", str(tmp_path / "none.pt")]):
        with pytest.raises(SystemExit) as err:
            checkpoint_val.main(bad + ["--out-dir", str(tmp_path / "bad")])
        assert err.value.code == 2
    assert not (tmp_path / "bad").exists()


def test_guessing_oracle_plans_with_the_box_guess_and_not_the_contents():
    import numpy as np
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    from agents.baselines import BFSAgent
    from benchmarks.guess_reference import GuessingOracle, run
    from envs.dynamics import DONE, PICKUP_ACTION, TOGGLE
    from envs.tasks import Task
    from envs.world import LOCKED_STATE, NOTHING
    from tests.worlds import make_layout, observe

    key = (OBJECT_TO_IDX["key"], COLOR_TO_IDX["yellow"], 0)
    layout = make_layout([(x, 1) for x in range(1, 5)], goal=(6, 1))  # locked yellow door, closed box
    layout[5, 1] = (OBJECT_TO_IDX["door"], COLOR_TO_IDX["yellow"], LOCKED_STATE)
    layout[3, 2] = (OBJECT_TO_IDX["box"], COLOR_TO_IDX["red"], 0)
    obs = {**observe(layout, (1, 1, 0)), "carrying": np.array(NOTHING), "task": Task(0).vector()}
    oracle, guessing = BFSAgent(), GuessingOracle()
    for agent in (oracle, guessing):
        agent.reset(obs, {"boxes": ()})  # the env says the box is empty
    assert guessing.boxes_for(layout, (1, 1, 0), NOTHING) == (((3, 2), key),)
    assert oracle.act(obs) == DONE  # with the true (empty) box there is no way through
    guessing.act(obs)
    assert TOGGLE in guessing.last_plan and PICKUP_ACTION in guessing.last_plan  # it opens the box for the key
    rows = run(["MiniGrid-ObstructedMaze-1Dlh-v0"], 2, 128)
    assert [r["agent"] for r in rows] == ["oracle", "guessing oracle"]
    assert rows[0]["path_ratio"] == 1.0 and all(r["success_rate"] == 1.0 for r in rows)
    assert rows[1]["path_ratio"] >= 1.0


def test_guess_reference_rejects_a_missing_compare_page(capsys):
    from benchmarks import guess_reference

    with pytest.raises(SystemExit) as err:
        guess_reference.main(["--compare", "no_such_page", "--episodes", "1"])
    assert err.value.code == 2 and "no_such_page" in capsys.readouterr().err


def test_shortest_walk_counts_turns_and_walls():
    import numpy as np

    from benchmarks.walk_excess import shortest_walk

    free = np.zeros((5, 3), dtype=bool)
    free[1:4, 1] = True  # a corridor x = 1..3 at y = 1
    assert shortest_walk(free, (1, 1, 0), (3, 1, 0)) == 2
    assert shortest_walk(free, (1, 1, 0), (1, 1, 2)) == 2  # a U-turn in place
    assert shortest_walk(free, (3, 1, 0), (1, 1, 0)) == 6  # turn round, walk back, turn round
    free[2, 1] = False
    assert shortest_walk(free, (1, 1, 0), (3, 1, 0)) is None


def test_walk_excess_counts_a_detour_and_object_actions():
    from agents.baselines import BFSAgent
    from benchmarks.walk_excess import play
    from envs.dynamics import LEFT, RIGHT

    class Wiggle(BFSAgent):
        """The expert, after a left and a right turn that undo each other (a walk 2 actions too long)."""

        def reset(self, obs, info=None):
            super().reset(obs, info)
            self.wiggle = [LEFT, RIGHT]

        def act(self, obs):
            return self.wiggle.pop(0) if self.wiggle else super().act(obs)

    exact = play(BFSAgent(), "MiniGrid-Empty-5x5-v0", 2, 1_000_000, 128)
    assert exact["success_rate"] == 1.0 and exact["mean_excess"] == 0 and exact["mean_objects"] == 0
    assert exact["mean_walk"] == exact["mean_steps"] > 0
    wiggle = play(Wiggle(), "MiniGrid-Empty-5x5-v0", 2, 1_000_000, 128)
    assert wiggle["mean_excess"] == 2 and wiggle["mean_steps"] == exact["mean_steps"] + 2
    doors = play(BFSAgent(), "MiniGrid-DoorKey-5x5-v0", 2, 1_000_000, 128)
    assert doors["success_rate"] == 1.0 and doors["mean_objects"] >= 2 and doors["mean_excess"] == 0
    assert doors["mean_walk"] + doors["mean_objects"] == doors["mean_steps"]


def test_walk_excess_rejects_an_unknown_env(capsys):
    from benchmarks import walk_excess

    with pytest.raises(SystemExit) as err:
        walk_excess.main(["--envs", "MiniGrid-NoSuchWorld-v0", "--episodes", "1"])
    assert err.value.code == 2 and "NoSuchWorld" in capsys.readouterr().err
