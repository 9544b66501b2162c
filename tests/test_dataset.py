"""Expert datasets: collection, the file format, and the training windows."""

from __future__ import annotations

import json
import struct

import gymnasium as gym
import numpy as np
import pytest

import envs.collect as collect_module
from envs import FOURROOMS_ID, MAZE_ID, FullGridObsWrapper
from envs.collect import collect
from envs.dataset import (
    END_TOKEN,
    MAGIC,
    VERSION,
    DatasetFormatError,
    Episodes,
    PlanDataset,
    load_episodes,
    replay_poses,
    save_episodes,
)
from envs.expert import solve
from envs.observation import layout_of

ENV_IDS = [FOURROOMS_ID, MAZE_ID]
EPISODES = 30


@pytest.fixture(scope="module")
def episodes() -> Episodes:
    progress = []
    result = collect(ENV_IDS, EPISODES, seed=0, workers=1, on_progress=progress.append)
    assert sum(progress) == EPISODES * len(ENV_IDS)
    return result


@pytest.fixture(scope="module")
def episodes_two_workers() -> Episodes:
    # small chunks, so the work is really spread over both workers and reassembled
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(collect_module, "CHUNK", 7)
        return collect(ENV_IDS, EPISODES, seed=0, workers=2)


def _assert_episodes_equal(a: Episodes, b: Episodes) -> None:
    for name in Episodes.ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.meta == b.meta


def test_collect_contents(episodes):
    assert len(episodes) == EPISODES * len(ENV_IDS)  # FourRooms and the maze are always solvable
    assert episodes.seeds.tolist() == list(range(EPISODES)) * 2
    assert episodes.env_index.tolist() == [0] * EPISODES + [1] * EPISODES
    assert episodes.layouts.shape == (60, 19, 19, 3) and episodes.layouts.dtype == np.uint8
    assert episodes.start_pose.shape == (60, 3)
    assert episodes.offsets[0] == 0 and episodes.offsets[-1] == len(episodes.actions)
    assert (episodes.lengths > 0).all()
    assert set(np.unique(episodes.actions).tolist()) <= {0, 1, 2}
    meta = episodes.meta
    assert meta["envs"] == ENV_IDS
    assert meta["seed_range"] == [0, EPISODES]
    assert meta["episodes_per_env"] == EPISODES
    assert meta["grid_size"] == 19 and "unsolvable_skipped" not in meta  # unsolvable seeds now stop collect
    assert meta["dataset_version"] == 2 == episodes.format_version  # no start holds an object: version 2


def test_collect_matches_the_expert_in_the_real_env(episodes):
    for i in (0, 17, 30, 59):
        env = gym.make(ENV_IDS[episodes.env_index[i]])
        obs, _ = FullGridObsWrapper(env).reset(seed=int(episodes.seeds[i]))
        base = env.unwrapped
        pose = (int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir))
        assert tuple(episodes.start_pose[i]) == pose
        np.testing.assert_array_equal(episodes.layouts[i], layout_of(obs["image"]))
        acts = episodes.actions[episodes.offsets[i] : episodes.offsets[i + 1]]
        assert tuple(acts.tolist()) == solve(episodes.layouts[i], pose).actions
        env.close()


def test_save_load_round_trip(episodes, tmp_path):
    path = tmp_path / "data.anything"
    save_episodes(path, episodes)
    assert path.read_bytes().startswith(MAGIC)
    loaded = load_episodes(path)
    _assert_episodes_equal(loaded, episodes)
    # saving what was loaded gives the same bytes again
    save_episodes(tmp_path / "again", loaded)
    assert (tmp_path / "again").read_bytes() == path.read_bytes()
    # exactly the named file, no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "data.anything"]


def test_workers_do_not_change_the_result(episodes, episodes_two_workers, tmp_path):
    _assert_episodes_equal(episodes, episodes_two_workers)
    save_episodes(tmp_path / "one", episodes)
    save_episodes(tmp_path / "two", episodes_two_workers)
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes()


def test_collection_is_deterministic(episodes, tmp_path):
    again = collect(ENV_IDS, EPISODES, seed=0, workers=1)
    save_episodes(tmp_path / "a", episodes)
    save_episodes(tmp_path / "b", again)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    # episode i uses reset seed `seed + i`: a window of seeds reproduces the same episodes
    part = collect(ENV_IDS[1:], 5, seed=10, workers=1)
    assert part.seeds.tolist() == list(range(10, 15))
    np.testing.assert_array_equal(part.layouts, episodes.layouts[40:45])
    np.testing.assert_array_equal(part.start_pose, episodes.start_pose[40:45])
    np.testing.assert_array_equal(part.actions, episodes.actions[episodes.offsets[40] : episodes.offsets[45]])


def test_object_episodes_replay_carrying_and_opened_doors(tmp_path):
    eps = collect(["MiniGrid-DoorKey-5x5-v0", FOURROOMS_ID], 3, seed=0, workers=1)
    assert len(eps) == 6 and eps.env_index.tolist() == [0, 0, 0, 1, 1, 1]
    save_episodes(tmp_path / "dk", eps)
    loaded = load_episodes(tmp_path / "dk")
    _assert_episodes_equal(loaded, eps)
    states = loaded.states
    for ep in range(3):  # DoorKey: the key is carried after its pickup, the door is open after the toggle
        start, stop = loaded.offsets[ep], loaded.offsets[ep + 1]
        acts = loaded.actions[start:stop].tolist()
        t_pick, t_toggle = acts.index(3), acts.index(5)
        assert tuple(states.carrying[start + t_pick]) == (1, 0, 0)
        assert states.carrying[start + t_pick + 1, 0] == 5  # a key
        door = states.layouts[states.layout_id[start + t_toggle + 1]]
        assert (door[:, :, 0] == 4).sum() == 1 and door[door[:, :, 0] == 4][0, 2] == 0  # open
    batch = PlanDataset(loaded, horizon=4).get_batch(np.arange(4))
    assert batch["carrying"].shape == (4, 3) and batch["task"].shape == (4, 5)


def test_collection_with_no_solvable_start_stops(monkeypatch):
    import envs.collect as collect_module
    from envs.expert import UNSOLVABLE

    monkeypatch.setattr(collect_module, "solve_state", lambda state, task: UNSOLVABLE)
    with pytest.raises(collect_module.ExpertFailure, match="no solvable start: the expert proved all 2 seeds"):
        collect(["MiniGrid-DoorKey-5x5-v0"], 2, seed=0, workers=1)


def test_proved_unsolvable_starts_are_left_out_and_listed(tmp_path):
    """ObstructedMaze-2Dlhb-v0 seed 7 lost its key to MiniGrid's v0 generator (0.34: proved
    unsolvable); the seeds around it are kept, in order, and the file says which one is missing."""
    env = "MiniGrid-ObstructedMaze-2Dlhb-v0"
    eps = collect([env], 4, seed=5, workers=1)
    assert eps.seeds.tolist() == [5, 6, 8] and len(eps) == 3
    assert eps.meta["unsolvable_seeds"] == [[env, 7]] and eps.meta["episodes_per_env"] == 4
    save_episodes(tmp_path / "d", eps)
    loaded = load_episodes(tmp_path / "d")
    _assert_episodes_equal(loaded, eps)
    assert "unsolvable_seeds" not in collect(["MiniGrid-DoorKey-5x5-v0"], 2, seed=0, workers=1).meta


def test_plan_dataset_states_and_targets_match_the_real_env(episodes, tmp_path):
    save_episodes(tmp_path / "d", episodes)
    loaded = load_episodes(tmp_path / "d")
    horizon = 16
    ds = PlanDataset(loaded, horizon=horizon)
    assert len(ds) == ds.num_samples == int(loaded.lengths.sum())
    for e in (0, 5, 29, 30, 44, 59):
        length = int(loaded.lengths[e])
        idx = np.nonzero(ds.sample_episode == e)[0]
        assert len(idx) == length
        batch = ds.get_batch(idx)
        assert tuple(batch["grid"].shape) == (length, 3, 19, 19)
        assert tuple(batch["actions"].shape) == (length, horizon)
        acts = loaded.actions[loaded.offsets[e] : loaded.offsets[e + 1]].astype(np.int64)
        env = FullGridObsWrapper(gym.make(ENV_IDS[loaded.env_index[e]]))
        obs, _ = env.reset(seed=int(loaded.seeds[e]))
        for t in range(length):
            np.testing.assert_array_equal(batch["grid"][t].permute(1, 2, 0).numpy(), obs["image"])
            assert batch["direction"][t].item() == obs["direction"]
            target = np.full(horizon, END_TOKEN)
            tail = acts[t : t + horizon]
            target[: len(tail)] = tail
            assert batch["actions"][t].tolist() == target.tolist()
            assert batch["length"][t].item() == min(horizon, length - t)
            obs, reward, terminated, truncated, _ = env.step(int(acts[t]))
            assert terminated == (t == length - 1)
        assert reward > 0
        env.close()


def test_plan_dataset_item_and_dtypes(episodes):
    ds = PlanDataset(episodes, horizon=8)
    batch = ds.get_batch([0, 3, len(ds) - 1])
    for key in ("grid", "direction", "actions", "length"):
        assert str(batch[key].dtype) == "torch.int64", key
    item = ds[3]
    for key, value in item.items():
        assert value.tolist() == batch[key][1].tolist()
    # the last sample of the last episode: one action, then END
    last = batch["actions"][2].tolist()
    assert last[0] == int(episodes.actions[-1]) and last[1:] == [END_TOKEN] * 7
    assert batch["length"][2].item() == 1


def test_replay_poses_follow_the_actions(episodes):
    poses = replay_poses(episodes)
    assert poses.shape == (len(episodes.actions), 3)
    np.testing.assert_array_equal(poses[episodes.offsets[:-1]], episodes.start_pose)
    np.testing.assert_array_equal(episodes.poses, poses)


def test_split_is_by_episode_and_disjoint(episodes):
    ds = PlanDataset(episodes, horizon=8)
    train, val = ds.split(0.2)
    train_ids, val_ids = set(train.sample_episode.tolist()), set(val.sample_episode.tolist())
    assert train_ids.isdisjoint(val_ids)
    assert train_ids | val_ids == set(range(len(episodes)))
    assert len(val_ids) == 12 and val_ids == set(range(48, 60))
    assert len(train) + len(val) == len(ds)
    # every window of a validation episode is in validation
    for e in val_ids:
        assert int((val.sample_episode == e).sum()) == int(episodes.lengths[e])
    # the subsets serve the same windows as the full set
    full = ds.get_batch(np.nonzero(ds.sample_episode == 50)[0])
    sub = val.get_batch(np.nonzero(val.sample_episode == 50)[0])
    for key in full:
        assert full[key].tolist() == sub[key].tolist()


# --------------------------------------------------------------------------- bad files
def _with_header(header) -> bytes:
    body = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, world\n",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        MAGIC,
        MAGIC + struct.pack("<I", 1000) + b"{",
        MAGIC + struct.pack("<I", 2) + b"\xff\xfe",
        _with_header({"format": "something-else", "version": VERSION, "meta": {}, "arrays": {}}),
        _with_header({"format": "maze-mdlm-dataset", "version": VERSION + 1, "meta": {}, "arrays": {}}),
    ],
    ids=["empty", "text", "png", "magic-only", "short-header", "bad-utf8", "other-format", "newer-version"],
)
def test_non_dataset_files_raise_dataset_format_error(tmp_path, content):
    path = tmp_path / "not-a-dataset"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError):
        load_episodes(path)


def test_newer_version_message_names_the_version(tmp_path):
    path = tmp_path / "future"
    path.write_bytes(_with_header({"format": "maze-mdlm-dataset", "version": VERSION + 1, "meta": {}, "arrays": {}}))
    with pytest.raises(DatasetFormatError, match=f"version {VERSION + 1}"):
        load_episodes(path)


def test_truncated_dataset_raises_dataset_format_error(episodes, tmp_path):
    path = tmp_path / "d"
    save_episodes(path, episodes)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError):
        load_episodes(path)


@pytest.mark.parametrize(
    "header",
    [
        [],  # JSON, but not an object
        {"format": "maze-mdlm-dataset", "version": VERSION, "meta": {}, "arrays": {}},  # arrays missing
    ],
    ids=["header-not-an-object", "arrays-missing"],
)
def test_damaged_header_raises_dataset_format_error(tmp_path, header):
    path = tmp_path / "damaged"
    path.write_bytes(_with_header(header))
    with pytest.raises(DatasetFormatError):
        load_episodes(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_episodes(tmp_path / "nope")


def test_written_files_get_normal_permissions(tmp_path):
    """Atomic writes go through mkstemp (0600); the final file must be readable as usual."""
    import os

    from envs.files import atomic_write

    mask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "x.bin", lambda f: f.write(b"abc"))
    finally:
        os.umask(mask)
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["x.bin"]


def test_version_1_files_still_load(tmp_path, episodes, monkeypatch):
    """A file as 0.3 wrote it (navigation only: no tasks, no boxes, version 1) loads as reach-the-goal."""
    import envs.dataset as dataset

    with monkeypatch.context() as patch:
        patch.setattr(dataset.Episodes, "format_version", property(lambda self: 1))
        save_episodes(tmp_path / "v1", episodes)
    loaded = load_episodes(tmp_path / "v1")
    assert b'"version": 1' in (tmp_path / "v1").read_bytes()[:4096]
    assert loaded.grid_size == 19 and (loaded.tasks == 0).all() and loaded.boxes.shape == (0, 6)
    np.testing.assert_array_equal(loaded.states.poses, episodes.states.poses)
