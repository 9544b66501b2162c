"""MDLMAgent in a plain gymnasium loop: observation formats, receding horizon, determinism."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from minigrid.wrappers import FullyObsWrapper

import envs
from agents import MDLMAgent
from envs.observation import ObservationError
from maze_mdlm.checkpoint import save_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.tokens import END


def _model(seed: int = 0) -> MDLMPolicy:
    torch.manual_seed(seed)
    model = MDLMPolicy(ModelConfig(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=16))
    with torch.no_grad():  # leave the adaLN-Zero start: random but deterministic outputs
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape))
    return model.eval()


def _run(agent, env, seed, steps=12):
    obs, info = env.reset(seed=seed)
    agent.reset(obs, info)
    actions = []
    for _ in range(steps):
        a = agent.act(obs)
        actions.append(a)
        obs, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            break
    return actions


def test_plays_with_either_full_grid_wrapper_and_same_actions():
    ours = envs.FullGridObsWrapper(gym.make("MiniGrid-FourRooms-v0"))
    theirs = FullyObsWrapper(gym.make("MiniGrid-FourRooms-v0"))
    a = _run(MDLMAgent(_model(), horizon=8, num_steps=4), ours, seed=1_000_000)
    b = _run(MDLMAgent(_model(), horizon=8, num_steps=4), theirs, seed=1_000_000)
    assert a == b
    assert all(0 <= x < END for x in a)  # END (done) is never sent to the env


def test_partial_view_is_refused_with_a_hint():
    env = gym.make("MiniGrid-FourRooms-v0")
    obs, info = env.reset(seed=0)
    with pytest.raises(ObservationError, match="FullyObsWrapper"):
        MDLMAgent(_model(), horizon=8).reset(obs, info)


def test_sampling_agent_is_reproducible_per_seed():
    from agents.base import parse_observation

    env = envs.FullGridObsWrapper(gym.make(envs.MAZE_ID))
    obs, _ = env.reset(seed=1_000_003)
    image, layout, pose = parse_observation(obs)

    def plans(seed):
        agent = MDLMAgent(_model(), horizon=16, temperature=1.0, seed=seed, safe_first_action=False)
        return [agent.plan(image, layout, pose) for _ in range(3)]

    assert plans(5) == plans(5)
    assert plans(5) != plans(6)


def test_executes_k_actions_per_plan_then_replans():
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-Empty-8x8-v0"))
    agent = MDLMAgent(_model(), horizon=8, execute=4, num_steps=2)
    steps = len(_run(agent, env, seed=0, steps=8))
    assert agent.plans < steps  # fewer plans than steps: several actions per plan
    every = MDLMAgent(_model(), horizon=8, execute=1, num_steps=2)
    assert len(_run(every, env, seed=0, steps=8)) == every.plans  # k=1: one plan per step


def test_from_checkpoint_uses_the_training_horizon(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "c.pt", model, model.config, None, 3, {"horizon": 12}, {})
    agent = MDLMAgent.from_checkpoint(path)
    assert agent.horizon == 12
    with pytest.raises(ValueError, match="not found"):
        MDLMAgent.from_checkpoint(tmp_path / "missing.pt")


def test_rollout_with_a_bad_checkpoint_is_a_usage_error(tmp_path, capsys):
    from maze_mdlm.cli import main

    bogus = tmp_path / "bogus.pt"
    bogus.write_text("nope")
    assert main(["rollout", "--agent", "mdlm", "--checkpoint", str(bogus), "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a maze-mdlm checkpoint" in err


def test_rollout_without_the_shipped_generalist_file_is_a_one_line_usage_error(tmp_path, capsys, monkeypatch):
    """Every supported env defaults to a shipped checkpoint (the generalist suite.pt for most);
    an install without the file gets the one-line error, whether or not this checkout has it."""
    from maze_mdlm import shipped
    from maze_mdlm.cli import main

    monkeypatch.setattr(shipped, "CHECKPOINT_DIR", tmp_path)
    for agent in ("mdlm", "ar", "mctd"):
        assert main(["rollout", "--agent", agent, "--env", "MiniGrid-DoorKey-5x5-v0", "--episodes", "1"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert "suite" in err and "is missing from this install" in err


def test_safe_first_action_never_bumps_into_walls():
    from envs.dynamics import step as dyn_step
    from agents.base import parse_observation

    env = envs.FullGridObsWrapper(gym.make(envs.MAZE_ID))
    for seed in range(3):
        agent = MDLMAgent(_model(seed), horizon=8, num_steps=2)
        obs, info = env.reset(seed=seed)
        agent.reset(obs, info)
        for _ in range(25):
            _, layout, pose = parse_observation(obs)
            action = agent.act(obs)
            assert dyn_step(layout, pose, action)[0] != pose  # every action changes the state
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break


def test_avoid_revisits_breaks_deterministic_loops():
    """A random deterministic policy loops; with avoid_revisits it only revisits when boxed in."""
    from agents.base import parse_observation
    from envs.dynamics import step as dyn_step

    env = envs.FullGridObsWrapper(gym.make("MiniGrid-FourRooms-v0"))
    for seed in range(3):
        agent = MDLMAgent(_model(seed), horizon=8, num_steps=2)
        obs, info = env.reset(seed=seed)
        agent.reset(obs, info)
        visited = set()
        for _ in range(40):
            _, layout, pose = parse_observation(obs)
            visited.add(pose)
            fresh = [a for a in (0, 1, 2) if dyn_step(layout, pose, a)[0] not in visited
                     and dyn_step(layout, pose, a)[0] != pose and dyn_step(layout, pose, a)[1] != 2]
            action = agent.act(obs)
            if fresh:
                assert action in fresh
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break


@pytest.mark.parametrize("batch_threads, expected", [(1, 1), (None, 2)])  # 1: the default (0.24)
def test_big_batches_plan_on_batch_threads_and_restore_torch(monkeypatch, batch_threads, expected):
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-FourRooms-v0"))
    obs, info = env.reset(seed=1_000_000)
    kwargs = {} if batch_threads == 1 else {"batch_threads": batch_threads}
    agent = MDLMAgent(_model(), horizon=8, num_steps=2, **kwargs)
    seen = []
    plan = agent.sample_plans
    monkeypatch.setattr(agent, "sample_plans", lambda *a, **k: seen.append(torch.get_num_threads()) or plan(*a, **k))
    episodes = [agent.new_episode(obs, info) for _ in range(MDLMAgent.BIG_BATCH)]
    torch.set_num_threads(2)
    try:
        agent.act_batch(episodes, [obs] * len(episodes))
        agent.act_batch(episodes[:1], [obs])  # a small batch: num_threads (1)
        assert seen == [expected, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
