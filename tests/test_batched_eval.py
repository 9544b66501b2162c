"""Batched evaluation: environments in lockstep give the same episodes as one at a time."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents import BFSAgent, MDLMAgent
from agents.base import parse_observation
from maze_mdlm.cli import main
from maze_mdlm.config import ModelConfig
from maze_mdlm.evaluation import evaluate
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample

SEED = 1_000_000


def _model(seed: int = 0) -> MDLMPolicy:
    """A tiny random model whose outputs depend on the state (the zero-initialised layers perturbed)."""
    torch.manual_seed(seed)
    model = MDLMPolicy(ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, cnn_channels=(4, 4, 4)))
    zero_init = [block.modulation[-1] for block in model.blocks] + [model.final.modulation[-1], model.final.head]
    with torch.no_grad():
        for layer in zero_init:
            layer.weight.normal_(std=0.5)
            layer.bias.normal_(std=0.5)
    return model.eval()


def _agent(**kwargs) -> MDLMAgent:
    kwargs = {"horizon": 8, "num_steps": 3, **kwargs}
    return MDLMAgent(_model(), **kwargs)


class CountingAgent(MDLMAgent):
    """Records the batch of every model call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.world: list[tuple[torch.Tensor, torch.Tensor]] = []  # (carrying [B, 3], task [B, 5]) per call

    def sample_plans(self, grid, direction, forbid, carrying=None, task=None):
        self.calls.append((grid.clone(), direction.clone()))
        self.world.append((carrying.clone(), task.clone()))
        return super().sample_plans(grid, direction, forbid, carrying=carrying, task=task)


class LockstepBFS(BFSAgent):
    """BFS through the batched interface: episodes of uneven lengths in lockstep."""

    def new_episode(self, obs, info=None):
        self.reset(obs, info)

    def act_batch(self, states, observations):
        return [self.act(obs) for obs in observations]


# --------------------------------------------------------------------------- same episodes for any width
@pytest.mark.parametrize("env_id", [envs.FOURROOMS_ID, envs.MAZE_ID])
def test_bfs_episodes_do_not_depend_on_batch_envs(env_id):
    one = evaluate(BFSAgent(), env_id, 9, SEED, batch_envs=1)
    four = evaluate(BFSAgent(), env_id, 9, SEED, batch_envs=4)
    assert one["per_episode"] == four["per_episode"]
    assert four["batch_envs"] == 1  # BFS plays one episode at a time
    lockstep = evaluate(LockstepBFS(), env_id, 9, SEED, batch_envs=4)
    assert lockstep["batch_envs"] == 4
    assert lockstep["per_episode"] == one["per_episode"]
    assert [r["seed"] for r in lockstep["per_episode"]] == list(range(SEED, SEED + 9))
    assert len({r["steps"] for r in one["per_episode"]}) > 3  # uneven: envs take new seeds at different steps


@pytest.mark.parametrize("env_id,execute", [
    (envs.FOURROOMS_ID, 1), (envs.MAZE_ID, 4), ("MiniGrid-Empty-Random-6x6-v0", 1),
])
def test_greedy_mdlm_episodes_do_not_depend_on_batch_envs(env_id, execute):
    """6 episodes on 4 envs: slots are reused (on Empty-Random, after episodes of uneven lengths)."""
    runs = {b: evaluate(_agent(execute=execute), env_id, 6, SEED, batch_envs=b) for b in (1, 4)}
    assert runs[1]["per_episode"] == runs[4]["per_episode"]
    assert [r["seed"] for r in runs[4]["per_episode"]] == list(range(SEED, SEED + 6))
    assert (runs[1]["batch_envs"], runs[4]["batch_envs"]) == (1, 4)
    assert runs[1]["plans_sampled"] == runs[4]["plans_sampled"] > 0


def test_batch_envs_is_capped_by_episodes_and_must_be_positive():
    assert evaluate(_agent(), "MiniGrid-Empty-5x5-v0", 2, SEED, batch_envs=8)["batch_envs"] == 2
    with pytest.raises(ValueError, match="batch_envs"):
        evaluate(_agent(), "MiniGrid-Empty-5x5-v0", 2, SEED, batch_envs=0)


def test_render_and_progress_cover_the_first_episode_and_every_episode():
    frames, seen = [], []
    m = evaluate(_agent(), "MiniGrid-Empty-5x5-v0", 3, SEED, batch_envs=2, render_frames=frames,
                 on_episode=seen.append)
    assert len(frames) == m["per_episode"][0]["steps"] + 1  # reset frame + one per step of episode 0
    assert sorted(r["seed"] for r in seen) == [SEED, SEED + 1, SEED + 2]


def test_greedy_sampler_rows_are_independent():
    """A row's greedy plan is the same alone or in a batch."""
    env = envs.FullGridObsWrapper(gym.make(envs.MAZE_ID))
    observations = [env.reset(seed=SEED + i)[0] for i in range(5)]
    grid = torch.stack([torch.from_numpy(o["image"]).permute(2, 0, 1).long() for o in observations])
    direction = torch.tensor([o["direction"] for o in observations])
    model = _model()
    together = sample(model, grid, direction, 8, 3)
    alone = torch.cat([sample(model, grid[i : i + 1], direction[i : i + 1], 8, 3) for i in range(5)])
    assert torch.equal(together, alone)


# --------------------------------------------------------------------------- act_batch
def test_act_batch_sends_only_the_rows_that_need_a_plan():
    env_a, env_b = (envs.FullGridObsWrapper(gym.make(envs.FOURROOMS_ID)) for _ in range(2))
    obs_a, _ = env_a.reset(seed=SEED)
    obs_b, _ = env_b.reset(seed=SEED + 1)
    agent = CountingAgent(_model(), horizon=8, num_steps=2, execute=3, avoid_revisits=False)
    state_a = agent.new_episode(obs_a)
    (action,) = agent.act_batch([state_a], [obs_a])  # a plans alone
    obs_a, *_ = env_a.step(action)
    state_b = agent.new_episode(obs_b)
    agent.act_batch([state_a, state_b], [obs_a, obs_b])  # a follows its plan; only b plans
    assert [grid.shape[0] for grid, _ in agent.calls] == [1, 1]
    grid, direction = agent.calls[1]
    assert torch.equal(grid[0], torch.from_numpy(obs_b["image"]).permute(2, 0, 1).long())
    assert direction.tolist() == [obs_b["direction"]]
    assert agent.stats() == {"plans_sampled": 2}


def test_act_batch_plans_every_row_that_needs_it_in_one_call():
    env = envs.FullGridObsWrapper(gym.make(envs.MAZE_ID))
    observations = [env.reset(seed=SEED + i)[0] for i in range(3)]
    agent = CountingAgent(_model(), horizon=8, num_steps=2)
    states = [agent.new_episode(obs) for obs in observations]
    actions = agent.act_batch(states, observations)
    assert [grid.shape[0] for grid, _ in agent.calls] == [3]
    single = [MDLMAgent(_model(), horizon=8, num_steps=2) for _ in observations]
    for one, obs in zip(single, observations):
        one.reset(obs)
    assert actions == [one.act(obs) for one, obs in zip(single, observations)]


def test_first_action_forbidden_is_per_row():
    env = envs.FullGridObsWrapper(gym.make(envs.FOURROOMS_ID))
    obs, _ = env.reset(seed=SEED)
    _, layout, pose = parse_observation(obs)
    agent = _agent()
    free = agent.first_action_forbidden(layout, pose)
    assert free.shape == (7,) and free.dtype == np.bool_ and free[3:].all()
    forbid = agent.forbid_tensor(np.stack([free, free]))
    assert forbid.shape == (2, 8, 9) and not forbid[:, 1:].any()  # over the model's 9 output classes
    assert torch.equal(forbid[1, 0, :7], torch.from_numpy(free)) and forbid[:, 0, 7:].all()  # END never first


def test_mdlm_agent_tracks_what_it_carries_and_may_open_the_locked_door():
    """With MiniGrid's FullyObsWrapper (no ``carrying`` key) the agent tracks its pickup from the
    next observation; the first-action rules then allow toggling the locked door with the key."""
    from minigrid.wrappers import FullyObsWrapper

    from envs.expert import solve_env
    from envs.world import KEY, PICKUP_ACTION, TOGGLE

    env = FullyObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"))
    obs, info = env.reset(seed=0)
    plan = solve_env(env).actions
    agent = _agent()
    state = agent.new_episode(obs, info)
    pick, toggle = plan.index(PICKUP_ACTION), plan.index(TOGGLE)
    for action in plan[:pick]:
        obs, *_ = env.step(action)
    image, _, pose = parse_observation(obs)
    state.last = (image, pose, PICKUP_ACTION)
    obs, *_ = env.step(PICKUP_ACTION)
    agent.act_batch([state], [obs])
    assert state.carrying[0] == KEY
    for action in plan[pick + 1: toggle]:
        obs, *_ = env.step(action)
    _, layout, pose = parse_observation(obs)
    assert not agent.first_action_forbidden(layout, pose, (), state.carrying, state.task)[TOGGLE]
    assert agent.first_action_forbidden(layout, pose, (), (1, 0, 0), state.task)[TOGGLE]  # no key: a no-op


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_rollout_batch_envs_must_be_a_positive_int(value, capsys):
    assert main(["rollout", "--agent", "bfs", "--episodes", "1", "--batch-envs", value]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--batch-envs" in err


def test_rollout_records_batch_envs(tmp_path, capsys):
    report = tmp_path / "r.json"
    rc = main(["rollout", "--agent", "mdlm", "--episodes", "3", "--batch-envs", "2", "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads(report.read_text())
    assert metrics["batch_envs"] == 2 and len(metrics["per_episode"]) == 3


def test_rollout_records_which_checkpoint_it_used(tmp_path, capsys):
    from maze_mdlm.cli_common import file_digest
    from maze_mdlm.shipped import default_checkpoint

    shipped, given = tmp_path / "shipped.json", tmp_path / "given.json"
    assert main(["rollout", "--agent", "mdlm", "--episodes", "1", "--json", str(shipped)]) == 0
    metrics = json.loads(shipped.read_text())
    assert metrics["checkpoint"] == str(default_checkpoint(envs.FOURROOMS_ID))  # no --checkpoint: the shipped one
    assert metrics["checkpoint_sha256_16"] == file_digest(default_checkpoint(envs.FOURROOMS_ID))
    suite = default_checkpoint("MiniGrid-DoorKey-5x5-v0")
    assert main(["rollout", "--agent", "mdlm", "--episodes", "1", "--checkpoint", str(suite), "--json", str(given)]) == 0
    metrics = json.loads(given.read_text())
    assert metrics["checkpoint"] == str(suite) and metrics["checkpoint_sha256_16"] == file_digest(suite)
    assert "checkpoint" in capsys.readouterr().out  # named under the table too
