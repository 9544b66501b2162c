"""The generalist's inputs and data: task / carried-object conditioning, the END token, legacy
checkpoints, and training on a mixture of envs (per-env seed split, weights, per-env metrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from envs.collect import collect
from envs.dataset import PlanDataset, concat_episodes, save_episodes
from envs.tasks import GOAL, GOTO, OPEN, PUTNEAR
from maze_mdlm.checkpoint import load_checkpoint, read_checkpoint
from maze_mdlm.cli import main
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy, task_markers
from maze_mdlm.tokens import DONE, END, LEGACY_END, MASK
from maze_mdlm.trainer import Trainer, TrainConfig
from maze_mdlm.shipped import CHECKPOINT_DIR

KEY, BALL, DOOR, GOAL_OBJ = 5, 6, 4, 8
RED, BLUE = 0, 2
TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=8, grid_size=8)


@pytest.fixture(scope="module")
def mixture():
    """GoToDoor (ends with a real `done`) and DoorKey (keys, doors), 60 episodes each."""
    a = collect(["MiniGrid-GoToDoor-5x5-v0"], 60, seed=0, workers=1, grid_size=8)
    b = collect(["MiniGrid-DoorKey-5x5-v0"], 60, seed=0, workers=1, grid_size=8)
    return concat_episodes([a, b])


def test_task_markers_read_the_named_cells() -> None:
    grid = torch.ones(1, 3, 5, 5, dtype=torch.long)  # empty cells
    grid[0, :2, 1, 1] = torch.tensor([KEY, RED])
    grid[0, :2, 2, 2] = torch.tensor([BALL, BLUE])
    grid[0, :2, 3, 3] = torch.tensor([DOOR, BLUE])
    grid[0, :2, 4, 4] = torch.tensor([GOAL_OBJ, 1])
    task = torch.tensor([[PUTNEAR, KEY, RED, BALL, BLUE]])
    marks = task_markers(grid, task)[0]
    assert marks[0].nonzero().tolist() == [[1, 1]] and marks[1].nonzero().tolist() == [[2, 2]]
    goal = task_markers(grid, torch.tensor([[GOAL, 0, 0, 0, 0]]))[0]
    assert goal[0].nonzero().tolist() == [[4, 4]] and goal[1].sum() == 0
    door = task_markers(grid, torch.tensor([[OPEN, 0, 0, 0, 0]]))[0]
    assert door[0].nonzero().tolist() == [[3, 3]]
    wrong_colour = task_markers(grid, torch.tensor([[GOTO, KEY, BLUE, 0, 0]]))[0]
    assert wrong_colour.sum() == 0


def test_task_and_carried_object_change_the_state_vector() -> None:
    torch.manual_seed(0)
    model = MDLMPolicy(TINY).eval()
    grid = torch.ones(2, 3, 8, 8, dtype=torch.long)
    grid[:, 0, 3, 3] = 10  # the agent
    grid[:, :2, 5, 5] = torch.tensor([KEY, RED])
    direction = torch.zeros(2, dtype=torch.long)
    base = model.encode_state(grid, direction)
    task = torch.tensor([[GOTO, KEY, RED, 0, 0]] * 2)
    carrying = torch.tensor([[KEY, BLUE, 0]] * 2)
    assert not torch.allclose(base, model.encode_state(grid, direction, task=task))
    assert not torch.allclose(base, model.encode_state(grid, direction, carrying=carrying))
    default = model.encode_state(grid, direction, task=torch.zeros(2, 5, dtype=torch.long),
                                 carrying=torch.tensor([[1, 0, 0]] * 2))
    torch.testing.assert_close(base, default)  # None means: reach the goal, empty hand


def test_end_is_its_own_token_and_done_is_a_real_target(mixture) -> None:
    data = PlanDataset(mixture, horizon=8)
    batch = data.get_batch(torch.arange(data.num_samples))
    goto = batch["env"] == 0
    real = torch.arange(8).unsqueeze(0) < batch["length"].unsqueeze(1)
    assert (batch["actions"][~real] == END).all()
    # every GoToDoor plan ends with a real `done` (6), a target the model must produce
    last = batch["actions"][goto, 0][batch["length"][goto] == 1]
    assert len(last) > 0 and (last == DONE).all()
    assert not (batch["actions"][real] == END).any() and not (batch["actions"] == MASK).any()
    legacy = PlanDataset(mixture, horizon=8, end_token=LEGACY_END).get_batch(torch.arange(50))
    assert (legacy["actions"][legacy["actions"] >= 7] == 0).all()


def test_split_by_seed_is_per_env_and_disjoint(mixture) -> None:
    train, val = PlanDataset(mixture, horizon=8).split_by_seed(modulus=20)
    t_eps, v_eps = set(train.sample_episode.tolist()), set(val.sample_episode.tolist())
    assert not t_eps & v_eps and t_eps | v_eps == set(range(len(mixture)))
    assert all(mixture.seeds[e] % 20 == 19 for e in v_eps)
    assert set(mixture.env_index[list(v_eps)].tolist()) == {0, 1}  # both envs validate


def test_env_weighting_draws_envs_equally(mixture) -> None:
    data = PlanDataset(mixture, horizon=8).weighted("envs")
    counts = data.env_counts()
    assert counts["MiniGrid-DoorKey-5x5-v0"] > 2 * counts["MiniGrid-GoToDoor-5x5-v0"]  # longer plans
    draws = torch.multinomial(data.sample_weights, 20_000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = (data.episodes.env_index[data.sample_episode[draws.numpy()]] == 0).mean()
    assert abs(share - 0.5) < 0.02
    assert PlanDataset(mixture, horizon=8).weighted("windows").sample_weights is None
    with pytest.raises(ValueError, match="weighting"):
        data.weighted("sqrt")


def test_env_weight_boosts_the_matching_envs(mixture) -> None:
    data = PlanDataset(mixture, horizon=8).weighted("envs", {"MiniGrid-GoToDoor-*": 3.0})
    shares = data.env_shares()
    assert shares["MiniGrid-GoToDoor-5x5-v0"] == pytest.approx(0.75)
    draws = torch.multinomial(data.sample_weights, 20_000, replacement=True, generator=torch.Generator().manual_seed(0))
    goto = data.env_names.index("MiniGrid-GoToDoor-5x5-v0")
    share = (data.episodes.env_index[data.sample_episode[draws.numpy()]] == goto).mean()
    assert abs(share - 0.75) < 0.02
    windows = PlanDataset(mixture, horizon=8).weighted("windows", {"MiniGrid-DoorKey-5x5-v0": 2.0})
    counts = windows.env_counts()
    door, goto = counts["MiniGrid-DoorKey-5x5-v0"], counts["MiniGrid-GoToDoor-5x5-v0"]
    assert windows.env_shares()["MiniGrid-DoorKey-5x5-v0"] == pytest.approx(2 * door / (2 * door + goto))
    with pytest.raises(ValueError, match="matches none"):
        data.weighted("envs", {"MazeMDLM/*": 2.0})
    with pytest.raises(ValueError, match="> 0"):
        data.weighted("envs", {"MiniGrid-*": 0.0})


def test_validation_reports_every_env(mixture) -> None:
    torch.manual_seed(0)
    train, val = PlanDataset(mixture, horizon=8).split_by_seed(modulus=20)
    trainer = Trainer(MDLMPolicy(TINY), TrainConfig(steps=2, batch_size=16, horizon=8, val_max_samples=64))
    metrics = trainer.validate(val)
    for env in ("MiniGrid-GoToDoor-5x5-v0", "MiniGrid-DoorKey-5x5-v0"):
        assert metrics[f"env/{env}/loss"] > 0 and 0 <= metrics[f"env/{env}/accuracy"] <= 1


def test_train_on_two_files_records_per_env_metrics(mixture, tmp_path, capsys) -> None:
    a, b = tmp_path / "a.data", tmp_path / "b.data"
    save_episodes(a, collect(["MiniGrid-GoToDoor-5x5-v0"], 40, seed=0, workers=1, grid_size=8))
    save_episodes(b, collect(["MiniGrid-DoorKey-5x5-v0"], 40, seed=0, workers=1, grid_size=8))
    run = tmp_path / "run"
    assert main(["train", "--data", str(a), "--data", str(b), "--out", str(run), "--steps", "4", "--batch-size", "8",
                 "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1", "--val-every", "2",
                 "--eval-episodes", "1", "--env-weighting", "envs", "--env-weight", "MiniGrid-GoToDoor-*=3"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["event"] == "val"][-1]
    evals = [r for r in records if r["event"] == "eval"][-1]
    for env in ("MiniGrid-GoToDoor-5x5-v0", "MiniGrid-DoorKey-5x5-v0"):
        assert f"env/{env}/accuracy" in val and f"env/{env}/success_rate" in evals
    ckpt = read_checkpoint(run / "checkpoint.pt")
    assert ckpt["dataset"]["env_weighting"] == "envs"
    assert ckpt["dataset"]["env_weight"] == {"MiniGrid-GoToDoor-*": 3.0}
    assert ckpt["dataset"]["env_shares"]["MiniGrid-GoToDoor-5x5-v0"] == pytest.approx(0.75)
    for bad, says in (("MazeMDLM/*=2", "matches none"), ("MiniGrid-*=-1", "factor > 0"), ("MiniGrid-*", "PATTERN=FACTOR")):
        assert main(["train", "--data", str(a), "--out", str(tmp_path / "bad"), "--steps", "1",
                     "--env-weight", bad]) == 2
        assert says in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()  # nothing half-written
    assert set(ckpt["dataset"]["train_windows_per_env"]) == {"MiniGrid-GoToDoor-5x5-v0", "MiniGrid-DoorKey-5x5-v0"}
    assert ckpt["model_config"]["end_token"] == END and ckpt["model_config"]["task_inputs"] is True


def test_legacy_checkpoints_load_with_their_vocabulary() -> None:
    model, ckpt = load_checkpoint(CHECKPOINT_DIR / "fourrooms.pt")
    assert "end_token" not in ckpt["model_config"]  # made before 0.5
    assert model.config.end_token == LEGACY_END and not model.config.task_inputs
    assert model.config.num_outputs == 7 and model.final.head.out_features == 7
    with pytest.raises(ValueError, match="vocab_size"):
        ModelConfig(end_token=LEGACY_END)  # the legacy END needs the legacy vocabulary


def test_closing_an_open_door_is_never_a_first_action() -> None:
    from envs.rules import forbidden_first_actions
    from envs.world import TOGGLE

    layout = np.ones((5, 5, 3), dtype=np.uint8)
    layout[:, :, 1:] = 0
    layout[3, 2] = (DOOR, 4, 0)  # an open door ahead of an agent at (2, 2) facing +x
    assert forbidden_first_actions(layout, (2, 2, 0))[TOGGLE]
    layout[3, 2, 2] = 1  # closed: opening it is useful
    assert not forbidden_first_actions(layout, (2, 2, 0))[TOGGLE]


def test_boxed_in_allows_only_the_move_to_the_least_recently_visited_pose():
    """Every move leads to a visited pose: with the visit order known, only the oldest one stays
    allowed, so left / right cannot alternate in place for ever (KeyCorridorS6R3 seed 1000012)."""
    from envs.dynamics import LEFT, RIGHT
    from envs.rules import forbidden_first_actions
    from tests.worlds import make_layout

    layout = make_layout([(1, 1)], goal=(5, 5))  # a single free cell: only turns are useful
    here = (1, 1, 0)
    # visited order: right-turn target (1, 1, 1) oldest, then left-turn target (1, 1, 3), then here
    order = {(1, 1, 1): None, (1, 1, 3): None, (1, 1, 2): None, here: None}
    forbidden = forbidden_first_actions(layout, here, order)
    assert not forbidden[RIGHT] and forbidden[LEFT]
    order = {(1, 1, 3): None, (1, 1, 1): None, (1, 1, 2): None, here: None}
    forbidden = forbidden_first_actions(layout, here, order)
    assert not forbidden[LEFT] and forbidden[RIGHT]
    assert not forbidden_first_actions(layout, here, set(order))[[LEFT, RIGHT]].any()  # no order: both


def test_no_object_action_leads_back_to_a_seen_world_state():
    """Picking up a box and dropping it back where it lay returns to a state the episode has been
    in; with that state in ``seen`` the drop is forbidden (ObstructedMaze-2Dlh seed 1000001 looped
    pickup / drop until the step limit), and without it the drop is allowed."""
    from envs.rules import forbidden_first_actions, state_key
    from envs.world import DROP, NOTHING, PICKUP_ACTION, WorldState, world_step
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
    from tests.worlds import make_layout

    layout = make_layout([(1, 1), (2, 1), (3, 1)], goal=(5, 5))
    layout[2, 1] = (OBJECT_TO_IDX["box"], COLOR_TO_IDX["green"], 0)  # ahead of (1, 1) facing +x
    start = WorldState(layout, (1, 1, 0), NOTHING)
    held, _ = world_step(start, PICKUP_ACTION)
    assert held.carrying[0] == OBJECT_TO_IDX["box"]
    seen = {state_key(start.layout, start.pose, start.carrying), state_key(held.layout, held.pose, held.carrying)}
    assert not forbidden_first_actions(held.layout, held.pose, carrying=held.carrying)[DROP]
    assert forbidden_first_actions(held.layout, held.pose, carrying=held.carrying, seen=seen)[DROP]
    assert forbidden_first_actions(layout, start.pose, seen=seen)[PICKUP_ACTION]  # picking it up again
    only_start = {state_key(start.layout, start.pose, start.carrying)}
    assert not forbidden_first_actions(layout, start.pose, seen=only_start)[PICKUP_ACTION]
