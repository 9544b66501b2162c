"""Minari round trip: export-minari, train --data minari:ID, and datasets recorded by Minari's DataCollector."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")
pytest.importorskip("h5py")

from envs.collect import collect  # noqa: E402
from envs.dataset import load_episodes  # noqa: E402
from envs.expert import solve  # noqa: E402
from envs.observation import encode_layout, env_pose  # noqa: E402
from maze_mdlm.checkpoint import read_checkpoint  # noqa: E402
from maze_mdlm.cli import main  # noqa: E402
from maze_mdlm.minari_data import MinariFormatError, load_minari_episodes, observation_space  # noqa: E402

TINY = ["--steps", "2", "--batch-size", "8", "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1",
        "--val-every", "0", "--eval-episodes", "0"]


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_export_load_train_round_trip(tmp_path, capsys):
    data = tmp_path / "fr.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "6", "--out", str(data)]) == 0
    assert main(["export-minari", "--data", str(data), "--dataset-id", "mazemdlm/fourrooms-test-v0"]) == 0
    assert main(["export-minari", "--data", str(data), "--dataset-id", "mazemdlm/fourrooms-test-v0"]) == 2
    assert "exists" in capsys.readouterr().err
    for bad in ("no-version", "bad id-v0"):
        assert main(["export-minari", "--data", str(data), "--dataset-id", bad]) == 2
        assert "is not a Minari id" in capsys.readouterr().err

    ours = load_episodes(data)
    dataset = minari.load_dataset("mazemdlm/fourrooms-test-v0")
    assert dataset.total_episodes == 6 and dataset.total_steps == int(ours.lengths.sum())
    episode = dataset[0]
    assert episode.observations["image"].shape == (len(episode) + 1, 19, 19, 3)
    assert episode.observations["mission"][0] == "reach the goal"
    env = gym.make("MiniGrid-FourRooms-v0")  # MiniGrid's own reward and termination for the same actions
    env.reset(seed=int(ours.seeds[0]))
    for action in episode.actions:
        _, reward, terminated, _, _ = env.step(int(action))
    assert terminated and episode.terminations[-1] and episode.rewards[-1] == pytest.approx(reward)
    assert dataset.spec.env_spec.additional_wrappers[0].name == "FullyObsWrapper"

    back = load_minari_episodes("mazemdlm/fourrooms-test-v0")
    for name in ("seeds", "layouts", "start_pose", "offsets", "actions"):
        assert np.array_equal(getattr(back, name), getattr(ours, name)), name

    run = tmp_path / "run"
    assert main(["train", "--data", "minari:mazemdlm/fourrooms-test-v0", "--out", str(run), *TINY]) == 0
    ckpt = read_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 2 and ckpt["dataset"]["files"] == [
        {"name": "minari:mazemdlm/fourrooms-test-v0", "minari_id": "mazemdlm/fourrooms-test-v0"}]


def _record(dataset_id: str, env: gym.Env, seeds, actions_of) -> None:
    """Record episodes with Minari's own DataCollector (the mission space as Text)."""
    pytest.importorskip("jax")  # DataCollector's step buffers need minari[create]
    base = env.unwrapped
    collector = minari.DataCollector(env, observation_space=observation_space(base.width, base.height))
    for seed in seeds:
        collector.reset(seed=seed)
        for action in actions_of(collector):
            _, _, terminated, truncated, _ = collector.step(int(action))
            if terminated or truncated:
                break
    collector.create_dataset(dataset_id, algorithm_name="test")


def test_datacollector_fullobs_dataset_trains(tmp_path):
    from minigrid.wrappers import FullyObsWrapper

    env = FullyObsWrapper(gym.make("MiniGrid-Empty-8x8-v0"))  # 8x8: padded onto the 19x19 canvas
    _record("test/empty-bfs-v0", env, [5, 6, 7], lambda e: solve(encode_layout(e), env_pose(e)).actions)
    episodes = load_minari_episodes("test/empty-bfs-v0")
    assert list(episodes.seeds) == [5, 6, 7] and episodes.layouts.shape == (3, 19, 19, 3)
    expert = collect(["MiniGrid-Empty-8x8-v0"], 3, seed=5)  # what our collector makes of the same seeds
    assert np.array_equal(episodes.actions, expert.actions) and np.array_equal(episodes.start_pose, expert.start_pose)
    run = tmp_path / "run"
    assert main(["train", "--data", "minari:test/empty-bfs-v0", "--out", str(run), *TINY,
                 "--eval-episodes", "1"]) == 0  # the dataset records its env, so the in-env check runs
    assert read_checkpoint(run / "checkpoint.pt")["dataset"]["envs"] == ["MiniGrid-Empty-8x8-v0"]


def test_partial_view_dataset_is_refused_with_a_reason(tmp_path, capsys):
    env = gym.make("MiniGrid-Empty-5x5-v0")  # MiniGrid's default 7x7 agent view, no FullyObsWrapper
    pytest.importorskip("jax")
    space = observation_space(7, 7)  # the 7x7 agent view of a 5x5 world
    collector = minari.DataCollector(env, observation_space=space)
    collector.reset(seed=0)
    collector.step(2)
    collector.create_dataset("test/partial-v0", algorithm_name="test")
    with pytest.raises(MinariFormatError, match="FullyObsWrapper"):
        load_minari_episodes("test/partial-v0")
    capsys.readouterr()  # (Minari's warnings while creating)
    assert main(["train", "--data", "minari:test/partial-v0", "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "agent cells" in err
    assert not (tmp_path / "run").exists()


def test_bumping_into_walls_is_refused(tmp_path):
    from minigrid.wrappers import FullyObsWrapper

    env = FullyObsWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    _record("test/bumps-v0", env, [0], lambda e: [2, 2, 2, 2])  # forward into the east wall
    with pytest.raises(MinariFormatError, match="does not follow the actions"):
        load_minari_episodes("test/bumps-v0")


def test_two_env_export_has_no_env_and_trains_without_the_check(tmp_path, capsys):
    data = tmp_path / "two.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--env", "MiniGrid-Empty-8x8-v0",
                 "--episodes", "3", "--out", str(data)]) == 0
    assert main(["export-minari", "--data", str(data), "--dataset-id", "test/two-v0"]) == 0
    ours, back = load_episodes(data), load_minari_episodes("test/two-v0")
    for name in ("layouts", "start_pose", "offsets", "actions", "seeds"):
        assert np.array_equal(getattr(back, name), getattr(ours, name)), name
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["train", "--data", "minari:test/two-v0", "--out", str(run), *TINY[:-1], "3"]) == 2
    assert "--eval-episodes 0" in capsys.readouterr().err and not run.exists()
    assert main(["train", "--data", "minari:test/two-v0", "--out", str(run), *TINY]) == 0
