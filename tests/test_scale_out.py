"""Scaling out rollouts and collection: per-episode seeding, --workers, --ray, --device, MCTD flags."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest
import torch

from agents.baselines import RandomAgent
from agents.mctd import MCTDAgent
from agents.registry import make_agent
from envs import FOURROOMS_ID, MAZE_ID
from maze_mdlm.cli import main
from maze_mdlm.devices import DeviceUnavailableError, resolve_device
from maze_mdlm.evaluation import evaluate
from maze_mdlm.parallel import evaluate_parallel, seed_chunks, spread

SEED = 1_000_000
NO_CUDA = not torch.cuda.is_available()


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _usage_error(rc: int, err: str) -> str:
    lines = err.strip("\n").split("\n")
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("maze-mdlm: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _rollout(tmp_path: Path, name: str, argv: list[str], capsys) -> dict:
    report = tmp_path / f"{name}.json"
    rc = main(["rollout", *argv, "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    return json.loads(report.read_text())


# --------------------------------------------------------------------------- seeds and chunks
@pytest.mark.parametrize("episodes, chunks", [(10, 4), (3, 8), (1, 1), (17, 5)])
def test_seed_chunks_cover_the_episodes_once_in_order(episodes, chunks):
    plan = seed_chunks(episodes, chunks)
    covered = [offset + i for offset, count in plan for i in range(count)]
    assert covered == list(range(episodes))
    assert len(plan) == min(episodes, chunks)
    assert max(c for _, c in plan) - min(c for _, c in plan) <= 1


def test_an_episode_depends_only_on_its_seed():
    """evaluate reseeds random and mctd per episode: the last 2 of 4 seeds equal a run of those 2."""
    for agent_fn in (lambda: RandomAgent(7), lambda: MCTDAgent.from_checkpoint(seed=7)):
        four = evaluate(agent_fn(), FOURROOMS_ID, 4, SEED)["per_episode"]
        two = evaluate(agent_fn(), FOURROOMS_ID, 2, SEED + 2)["per_episode"]
        assert four[2:] == two


def test_random_agent_reseeds_from_both_seeds():
    """The per-episode reseed mixes the agent's seed and the episode's (a constant reseed would
    pass the test above)."""
    obs = {"image": None}

    def actions(agent_seed: int, episode_seed: int) -> list[int]:
        agent = RandomAgent(agent_seed)
        agent.seed_episode(episode_seed)
        return [agent.act(obs) for _ in range(20)]

    assert actions(0, SEED) == actions(0, SEED)
    assert actions(0, SEED) != actions(0, SEED + 1)
    assert actions(0, SEED) != actions(1, SEED)


# --------------------------------------------------------------------------- --workers (no Ray)
def test_workers_give_the_same_episodes_and_statistics(tmp_path, capsys):
    """rollout --workers 2 vs --workers 1 (mctd): same per-episode records, same search count."""
    argv = ["--agent", "mctd", "--episodes", "5", "--seed", str(SEED + 10)]
    one = _rollout(tmp_path, "one", [*argv, "--workers", "1"], capsys)
    two = _rollout(tmp_path, "two", [*argv, "--workers", "2"], capsys)
    assert one["per_episode"] == two["per_episode"]
    assert [r["seed"] for r in two["per_episode"]] == list(range(SEED + 10, SEED + 15))
    assert (one["workers"], two["workers"], two["ray"]) == (1, 2, None)
    assert one["decisions"] == two["decisions"] > 0 and one["mean_expansions"] == two["mean_expansions"]
    assert _listing(tmp_path) == ["one.json", "two.json"]


def test_spawned_workers_alone_match_in_process():
    """Every chunk in spawned processes (share_main=False): the same records and statistics
    (mctd: reseeded per episode, statistics gathered from the workers)."""
    factory = functools.partial(make_agent, "mctd", env_id=MAZE_ID, seed=3)
    local = evaluate(factory(), MAZE_ID, 4, SEED)
    spawned = evaluate_parallel(factory, MAZE_ID, 4, SEED, workers=2, chunks=3, share_main=False)
    assert spawned["per_episode"] == local["per_episode"]
    assert spawned["success_rate"] == local["success_rate"] and spawned["agent"] == "mctd"
    assert spawned["decisions"] == local["decisions"] and spawned["mean_rounds"] == local["mean_rounds"]


def test_spread_starts_in_this_process():
    """With a host agent, this process runs chunks from the start (spawned ones join once booted);
    every chunk comes back once, with its own seeds."""
    import os

    factory = functools.partial(make_agent, "bfs", env_id=FOURROOMS_ID)
    jobs = [(factory, FOURROOMS_ID, SEED, i, 1, 1, 1, None) for i in range(6)]
    pids = {}
    for index, result in spread(jobs, 2, factory()):
        pids[index] = result["pid"]
        assert [r["seed"] for r in result["per_episode"]] == [SEED + index]
    assert sorted(pids) == list(range(6)) and pids[0] == os.getpid()


# --------------------------------------------------------------------------- --device
def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_auto_picks_cuda_when_torch_sees_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")


@pytest.mark.parametrize("name", ["mdlm", "ar", "mctd"])
def test_from_checkpoint_device(name):
    agent = make_agent(name, FOURROOMS_ID, device="cpu")
    assert agent.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in agent.model.parameters())
    if NO_CUDA:
        with pytest.raises(DeviceUnavailableError, match="no CUDA device"):
            make_agent(name, FOURROOMS_ID, device="cuda")


def test_rollout_device_cpu_is_recorded(tmp_path, capsys):
    metrics = _rollout(tmp_path, "r", ["--agent", "mdlm", "--episodes", "2", "--device", "cpu"], capsys)
    assert metrics["device"] == "cpu" and metrics["success_rate"] == 1.0


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is present")
def test_rollout_device_cuda_without_cuda_exits_2(tmp_path, capsys):
    rc = main(["rollout", "--agent", "mdlm", "--episodes", "1", "--device", "cuda", "--json", str(tmp_path / "r.json")])
    assert "--device cuda" in _usage_error(rc, capsys.readouterr().err)
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- MCTD flags
def test_mctd_budget_and_parallel_flags_reach_the_search(tmp_path, capsys):
    metrics = _rollout(tmp_path, "r", ["--agent", "mctd", "--episodes", "2", "--max-expansions", "3",
                                       "--parallel", "2"], capsys)
    assert metrics["mean_expansions"] == 3.0  # early stop needs 11 expansions, so every search uses 3
    assert metrics["mean_rounds"] == 2.0  # 3 expansions in rounds of at most 2
    default = _rollout(tmp_path, "d", ["--agent", "mctd", "--episodes", "2"], capsys)
    assert default["mean_expansions"] >= 11.0 and default["mean_rounds"] >= 2.0


def test_goal_execute_flag_reaches_the_agent(tmp_path, capsys):
    whole = _rollout(tmp_path, "w", ["--agent", "mctd", "--episodes", "2", "--goal-execute", "0"], capsys)
    default = _rollout(tmp_path, "d", ["--agent", "mctd", "--episodes", "2"], capsys)
    step = _rollout(tmp_path, "s", ["--agent", "mctd", "--episodes", "2", "--goal-execute", "1"], capsys)
    assert whole["success_rate"] == default["success_rate"] == step["success_rate"] == 1.0
    same = ("decisions", "mean_steps", "path_ratio")  # FourRooms: only the agent moves, so "auto" executes whole plans
    assert [default[key] for key in same] == [whole[key] for key in same]
    assert step["decisions"] > whole["decisions"]  # a search before every action of a goal-reaching plan
    assert step["mean_steps"] <= whole["mean_steps"]  # never a longer path than the first plan


def test_research_expansions_flag_reaches_the_agent(tmp_path, capsys):
    """DoorKey-5x5 (objects can change: 2 actions per search): the searches that hold an incumbent
    use 1 expansion, the default 3, and 0 gives them the full budget (0.30's default)."""
    env = ["--agent", "mctd", "--env", "MiniGrid-DoorKey-5x5-v0", "--episodes", "2"]
    default = _rollout(tmp_path, "d", env, capsys)
    cheap = _rollout(tmp_path, "c", [*env, "--research-expansions", "1"], capsys)
    full = _rollout(tmp_path, "f", [*env, "--research-expansions", "0"], capsys)
    assert default["success_rate"] == cheap["success_rate"] == full["success_rate"] == 1.0
    assert cheap["mean_expansions"] < default["mean_expansions"] < full["mean_expansions"]


def test_help_shows_the_mctd_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["rollout", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--max-expansions N", "(default 24)", "--parallel K", "(default 8)", "--device {auto,cpu,cuda}",
                 "--workers K", "--ray [ADDRESS]", "--render-tree FILE.png"):
        assert text in out, text


BAD = {
    "budget-for-bfs": (["rollout", "--agent", "bfs", "--max-expansions", "4"], "--max-expansions"),
    "parallel-for-mdlm": (["rollout", "--agent", "mdlm", "--parallel", "4"], "--parallel"),
    "budget-zero": (["rollout", "--agent", "mctd", "--max-expansions", "0"], "positive"),
    "parallel-not-a-number": (["rollout", "--agent", "mctd", "--parallel", "many"], "positive"),
    "workers-zero": (["rollout", "--agent", "bfs", "--workers", "0"], "positive"),
    "tree-for-bfs": (["rollout", "--agent", "bfs", "--render-tree", "t.png"], "--render-tree"),
    "unknown-device": (["rollout", "--agent", "bfs", "--device", "tpu"], "--device"),
    "goal-execute-for-mdlm": (["rollout", "--agent", "mdlm", "--goal-execute", "2"], "--goal-execute"),
    "goal-execute-negative": (["rollout", "--agent", "mctd", "--goal-execute", "-1"], "non-negative"),
    "research-for-ar": (["rollout", "--agent", "ar", "--research-expansions", "3"], "--research-expansions"),
    "research-negative": (["rollout", "--agent", "mctd", "--research-expansions", "-1"], "non-negative"),
}


@pytest.mark.parametrize("argv, needle", list(BAD.values()), ids=list(BAD))
def test_bad_rollout_flags_exit_2(tmp_path, capsys, argv, needle):
    rc = main([*argv, "--episodes", "1", "--json", str(tmp_path / "r.json")])
    assert needle in _usage_error(rc, capsys.readouterr().err)
    assert _listing(tmp_path) == []


def test_ray_missing_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for argv in (["rollout", "--agent", "bfs", "--episodes", "1", "--ray", "--json", str(tmp_path / "r.json")],
                 ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--ray", "--out", str(tmp_path / "d")]):
        assert "maze-mdlm[ray]" in _usage_error(main(argv), capsys.readouterr().err)
    assert _listing(tmp_path) == []


def test_ray_and_workers_exclude_each_other(tmp_path, capsys):
    pytest.importorskip("ray")
    for argv in (["rollout", "--agent", "bfs", "--episodes", "1", "--json", str(tmp_path / "r.json")],
                 ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--out", str(tmp_path / "d")]):
        rc = main([*argv, "--ray", "--workers", "2"])
        assert "--workers" in _usage_error(rc, capsys.readouterr().err)
    assert _listing(tmp_path) == []


def test_ray_unreachable_address_exits_2_quickly(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    import socket

    assert not ray.is_initialized()  # (runs before the module's Ray session starts)

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for argv in (["rollout", "--agent", "bfs", "--episodes", "1", "--json", str(tmp_path / "r.json")],
                 ["collect-data", "--env", FOURROOMS_ID, "--episodes", "1", "--out", str(tmp_path / "d")]):
        rc = main([*argv, "--ray", f"127.0.0.1:{port}"])
        assert "nothing answers" in _usage_error(rc, capsys.readouterr().err)
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs for this module's Ray tests (skipped without Ray)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_collect_is_byte_identical(tmp_path, capsys, local_ray):
    files = []
    for extra in ([], ["--ray"]):
        out = tmp_path / f"d{len(extra)}.bin"
        rc = main(["collect-data", "--env", MAZE_ID, "--env", FOURROOMS_ID, "--episodes", "3", "--seed", "40",
                   *extra, "--out", str(out)])
        assert rc == 0, capsys.readouterr().err
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert local_ray.is_initialized()  # a session the caller started is left running


def test_ray_rollout_is_identical_per_seed(tmp_path, capsys, local_ray):
    for agent in ("mctd", "random"):
        argv = ["--agent", agent, "--episodes", "4", "--seed", str(SEED + 20)]
        local = _rollout(tmp_path, f"{agent}-local", argv, capsys)
        spread = _rollout(tmp_path, f"{agent}-ray", [*argv, "--ray"], capsys)
        assert spread["per_episode"] == local["per_episode"], agent
        assert spread["ray"] == "local" and spread["workers"] == 2
        if agent == "mctd":
            assert spread["decisions"] == local["decisions"]

