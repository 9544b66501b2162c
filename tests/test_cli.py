"""The ``maze-mdlm`` command line: collect-data and rollout, good and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import envs  # noqa: F401  (registers the maze)
from envs import FOURROOMS_ID, MAZE_ID
from envs.dataset import load_episodes
from envs.seeds import EVAL_SEED_START, TRAIN_SEED_END
from maze_mdlm.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_KEYS = {
    "agent", "env", "episodes", "seed", "success_rate", "mean_steps", "mean_optimal_steps", "path_ratio",
    "mean_return", "seconds",
}


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "maze_mdlm.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def _listing(folder: Path) -> list[str]:
    """Every entry under ``folder``, hidden temp files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- happy paths
def test_collect_data_then_rollout_in_process(tmp_path, capsys):
    data = tmp_path / "data.weird-extension"
    rc = main(["collect-data", "--env", FOURROOMS_ID, "--env", MAZE_ID, "--episodes", "6", "--seed", "10",
               "--out", str(data)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"wrote {data}" in out.out and "12 episodes" in out.out
    episodes = load_episodes(data)  # exactly the named file, whatever its extension
    assert len(episodes) == 12
    assert episodes.seeds.tolist() == list(range(10, 16)) * 2
    assert episodes.meta["envs"] == [FOURROOMS_ID, MAZE_ID]

    report = tmp_path / "r.json"
    rc = main(["rollout", "--agent", "bfs", "--json", str(report), "--episodes", "5"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    metrics = json.loads(report.read_text())
    assert CONTRACT_KEYS <= metrics.keys()
    assert metrics["agent"] == "bfs"
    assert metrics["env"] == FOURROOMS_ID  # the default
    assert metrics["episodes"] == 5 and metrics["seed"] == EVAL_SEED_START
    assert metrics["success_rate"] == 1.0 and metrics["path_ratio"] == 1.0
    assert metrics["mean_steps"] == metrics["mean_optimal_steps"]
    assert "success rate" in out.out  # the summary table
    assert _listing(tmp_path) == ["data.weird-extension", "r.json"]  # no temp files left


def test_rollout_random_on_the_maze_with_a_seed(tmp_path, capsys):
    report = tmp_path / "random.json"
    rc = main(["rollout", "--agent", "random", "--env", MAZE_ID, "--episodes", "2", "--seed", "1000100",
               "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads(report.read_text())
    assert metrics["agent"] == "random" and metrics["env"] == MAZE_ID
    assert metrics["seed"] == 1000100 and metrics["episodes"] == 2
    assert [r["seed"] for r in metrics["per_episode"]] == [1000100, 1000101]


def test_rollout_render_writes_a_gif(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    gif, report = tmp_path / "x.gif", tmp_path / "r.json"
    rc = main(["rollout", "--agent", "bfs", "--env", MAZE_ID, "--episodes", "2",
               "--render", str(gif), "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    assert gif.read_bytes()[:4] == b"GIF8"
    first = json.loads(report.read_text())["per_episode"][0]
    with pil.open(gif) as image:
        assert image.n_frames == first["steps"] + 1  # the first episode: reset frame + one per step
        assert image.size[0] == image.size[1] > 19
    assert _listing(tmp_path) == ["r.json", "x.gif"]


def test_collect_data_records_the_command_and_is_independent_of_workers(tmp_path, capsys):
    """The metadata names what determines the content; the file is the same for any --workers."""
    files = []
    for workers in ("1", "2"):
        data = tmp_path / f"d{workers}.bin"
        argv = ["collect-data", "--env", "MiniGrid-Empty-5x5-v0", "--episodes", "3", "--seed", "7",
                "--workers", workers, "--out", str(data)]
        assert main(argv) == 0, capsys.readouterr().err
        files.append(data.read_bytes())
    meta = load_episodes(tmp_path / "d1.bin").meta
    assert meta["command"] == "maze-mdlm collect-data --env MiniGrid-Empty-5x5-v0 --episodes 3 --seed 7 --grid-size 19"
    assert files[0] == files[1]


def test_collect_data_box_guess_writes_the_guessing_experts_episodes(tmp_path, capsys):
    env = "MiniGrid-ObstructedMaze-1Q-v1"  # seeds 2000-2007: the guessed box is wrong in some
    for flag in ([], ["--box-guess"]):
        argv = ["collect-data", "--env", env, "--episodes", "8", "--seed", "2000", *flag,
                "--out", str(tmp_path / f"d{len(flag)}.bin")]
        assert main(argv) == 0, capsys.readouterr().err
    plain, guessing = load_episodes(tmp_path / "d0.bin"), load_episodes(tmp_path / "d1.bin")
    assert guessing.meta["expert"] == "astar-box-guess" and guessing.meta["command"].endswith("--box-guess")
    assert plain.meta["expert"] == "astar"
    assert guessing.lengths.sum() > plain.lengths.sum()


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("collect-data", "train", "rollout"):
        assert command in out


# --------------------------------------------------------------------------- bad input
BAD_INPUTS = {
    "unknown-env": ["collect-data", "--env", "NoSuchEnv-v0", "--episodes", "2", "--out", "d.bin"],
    "unknown-env-namespace": ["collect-data", "--env", "Nope/NoSuchEnv-v0", "--episodes", "2", "--out", "d.bin"],
    "not-minigrid": ["collect-data", "--env", "CartPole-v1", "--episodes", "2", "--out", "d.bin"],
    "episodes-zero": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "0", "--out", "d.bin"],
    "episodes-not-a-number": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "many", "--out", "d.bin"],
    "negative-seed": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "2", "--seed", "-1", "--out", "d.bin"],
    "workers-zero": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "2", "--workers", "0", "--out", "d.bin"],
    "out-in-missing-folder": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "2", "--out", "no/such/d.bin"],
    "out-is-a-folder": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "2", "--out", "."],
    "seed-overlaps-eval": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "10",
                           "--seed", str(TRAIN_SEED_END - 5), "--out", "d.bin"],
    "seed-in-eval-range": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1",
                           "--seed", str(EVAL_SEED_START), "--out", "d.bin"],
    "no-command": [],
    "unknown-command": ["dance"],
    "missing-out": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "2"],
    "rollout-unknown-env": ["rollout", "--agent", "bfs", "--env", "NoSuchEnv-v0", "--json", "r.json"],
    "rollout-unknown-agent": ["rollout", "--agent", "genius", "--json", "r.json"],
    "rollout-episodes-zero": ["rollout", "--agent", "bfs", "--episodes", "0", "--json", "r.json"],
    "rollout-json-in-missing-folder": ["rollout", "--agent", "bfs", "--episodes", "1", "--json", "no/r.json"],
    "rollout-render-in-missing-folder": ["rollout", "--agent", "bfs", "--episodes", "1", "--render", "no/x.gif"],
    "rollout-module-env-id": ["rollout", "--agent", "bfs", "--env", "no_such_module:Env-v0", "--json", "r.json"],
    # the three silent failures: each is a clean refusal now
    "dynamic-obstacles-collect": ["collect-data", "--env", "MiniGrid-Dynamic-Obstacles-8x8-v0", "--episodes", "2",
                                  "--out", "d.bin"],
    "dynamic-obstacles-rollout": ["rollout", "--agent", "bfs", "--env", "MiniGrid-Dynamic-Obstacles-8x8-v0",
                                  "--json", "r.json"],
    "excluded-memory": ["rollout", "--agent", "random", "--env", "MiniGrid-MemoryS7-v0", "--json", "r.json"],
    "on-policy-every-alone": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--on-policy-every", "3",
                              "--out", "d.bin"],
    "on-policy-holding-alone": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--on-policy-holding",
                                "--out", "d.bin"],
    "on-policy-missing-checkpoint": ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1",
                                     "--on-policy", "no-such.pt", "--out", "d.bin"],
    "grid-size-too-small": ["collect-data", "--env", "MiniGrid-MultiRoom-N6-v0", "--grid-size", "19",
                            "--episodes", "1", "--out", "d.bin"],
    "only-unsolvable-seeds": ["collect-data", "--env", "MiniGrid-ObstructedMaze-2Dlhb-v0", "--episodes", "1",
                              "--seed", "7", "--out", "d.bin"],  # MiniGrid's v0 generator lost that seed's key
}


def _run_in(folder: Path, argv: list[str]) -> list[str]:
    """Resolve relative paths in ``argv`` against ``folder`` (no chdir)."""
    out = list(argv)
    for flag in ("--out", "--json", "--render"):
        if flag in out:
            i = out.index(flag) + 1
            out[i] = str(folder / out[i])
    return out


def _assert_usage_error(rc: int, err: str, folder: Path, before: list[str]) -> None:
    assert rc == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("maze-mdlm: error: ")
    assert "Traceback" not in err
    assert _listing(folder) == before  # nothing written, not even a temp file


@pytest.mark.parametrize("argv", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv):
    before = _listing(tmp_path)
    rc = main(_run_in(tmp_path, argv))
    _assert_usage_error(rc, capsys.readouterr().err, tmp_path, before)


def test_env_larger_than_the_canvas_is_refused(tmp_path, capsys):
    from maze_mdlm.shipped import default_checkpoint

    big = "MiniGrid-MultiRoom-N6-v0"  # 25x25
    for argv in (
        ["collect-data", "--env", big, "--grid-size", "19", "--episodes", "1", "--out", str(tmp_path / "d.bin")],
        ["rollout", "--agent", "mdlm", "--env", big, "--checkpoint", str(default_checkpoint(FOURROOMS_ID, "mdlm")),
         "--episodes", "1", "--json", str(tmp_path / "r.json")],
    ):
        rc = main(argv)
        err = capsys.readouterr().err
        _assert_usage_error(rc, err, tmp_path, [])
        assert "25x25" in err and "19x19" in err


def test_seed_error_message_mentions_the_evaluation_range(tmp_path, capsys):
    rc = main(["collect-data", "--env", FOURROOMS_ID, "--episodes", "10", "--seed", str(TRAIN_SEED_END - 5),
               "--out", str(tmp_path / "d.bin")])
    assert rc == 2
    assert str(EVAL_SEED_START) in capsys.readouterr().err


def test_last_training_seed_is_allowed(tmp_path, capsys):
    rc = main(["collect-data", "--env", "MiniGrid-Empty-5x5-v0", "--episodes", "1",
               "--seed", str(TRAIN_SEED_END - 1), "--out", str(tmp_path / "d.bin")])
    assert rc == 0, capsys.readouterr().err
    assert load_episodes(tmp_path / "d.bin").seeds.tolist() == [TRAIN_SEED_END - 1]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for argv in (
            ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--out", str(locked / "d.bin")],
            ["rollout", "--agent", "bfs", "--episodes", "1", "--json", str(locked / "r.json")],
        ):
            rc = main(argv)
            _assert_usage_error(rc, capsys.readouterr().err, tmp_path, ["locked"])
    finally:
        locked.chmod(0o700)


# --------------------------------------------------------------------------- as a real process
def test_subprocess_collect_data(tmp_path):
    args = ["collect-data", "--env", MAZE_ID, "--env", FOURROOMS_ID, "--episodes", "3", "--workers", "2",
            "--out", "d.bin"]
    result = _subprocess(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "wrote d.bin: 6 episodes" in result.stdout
    episodes = load_episodes(tmp_path / "d.bin")
    assert len(episodes) == 6 and episodes.meta["envs"] == [MAZE_ID, FOURROOMS_ID]
    assert episodes.meta["command"] == f"maze-mdlm collect-data --env {MAZE_ID} --env {FOURROOMS_ID} --episodes 3 --seed 0 --grid-size 19"
    assert _listing(tmp_path) == ["d.bin"]


def test_subprocess_bad_input(tmp_path):
    result = _subprocess(["rollout", "--agent", "bfs", "--env", "NoSuchEnv-v0", "--json", "r.json"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and "NoSuchEnv-v0" in lines[0], result.stderr
    assert _listing(tmp_path) == []
