"""MDLMAgent / ARAgent on the whole MiniGrid suite: world-state prediction, carried object and task
as model inputs, the model's END token, first-action rules, the canvas, shipped defaults."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from minigrid.wrappers import FullyObsWrapper

import envs
from agents import MDLMAgent
from agents.ar_agent import ARAgent
from agents.mdlm_agent import first_position_mask, plan_actions
from envs.expert import solve_env
from envs.registry import SUPPORTED
from envs.world import DONE, FORWARD, KEY, NOTHING, PICKUP_ACTION, TOGGLE, WorldState
from maze_mdlm.ar import ARPolicy
from maze_mdlm.checkpoint import save_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.shipped import CHECKPOINT_DIR, LONG_WORLD_IDS, OBSTRUCTED_IDS, SUITE
from tests.models import perturbed_policy

SEED = 1_000_000
TINY = dict(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=16, cnn_channels=(4, 4, 4))
LEGACY = dict(end_token=6, vocab_size=8, task_inputs=False)  # a checkpoint made before 0.5 (done = END)


class Recording(MDLMAgent):
    """Records the inputs of every model call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[dict[str, torch.Tensor]] = []

    def sample_plans(self, grid, direction, forbid, carrying=None, task=None):
        self.calls.append({"grid": grid.clone(), "carrying": carrying.clone(), "task": task.clone()})
        return super().sample_plans(grid, direction, forbid, carrying=carrying, task=task)


def _agent(cls=Recording, grid_size: int = 19, legacy: bool = False, **kwargs) -> MDLMAgent:
    config = ModelConfig(grid_size=grid_size, **TINY, **(LEGACY if legacy else {}))
    return cls(perturbed_policy(config, seed=0), **{"horizon": 8, "num_steps": 2, **kwargs})


def _follow(agent: MDLMAgent, env: gym.Env, seed: int):
    """Queue the expert's whole plan in the agent (as if it had sampled it) and play it through
    act_batch; returns (actions sent, episode state, observations, total reward)."""
    obs, info = env.reset(seed=seed)
    plan = list(solve_env(env).actions)
    state = agent.new_episode(obs, info)
    (_, layout, pose), _ = agent.observe(state, obs)
    state.expected = WorldState(layout, pose, state.carrying)  # the start, as predicted
    state.world, state.last = None, None
    state.visited.clear()
    state.plan, state.queue = list(plan), list(plan)
    sent, total = [], 0.0
    while True:
        action = agent.act_batch([state], [obs])[0]
        sent.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated:
            return sent, plan, state, total


@pytest.mark.parametrize("wrap", [envs.FullGridObsWrapper, FullyObsWrapper])
def test_a_queued_plan_through_pickups_and_doors_is_kept_when_the_world_is_as_predicted(wrap):
    """world_step predicts the layout and the carried object, so the expert's plan (pickup of the
    key, toggle of the locked door) runs with no replanning and solves the task, with either
    wrapper (FullyObsWrapper: carrying tracked from the agent's own actions)."""
    agent = _agent()
    sent, plan, state, total = _follow(agent, wrap(gym.make("MiniGrid-DoorKey-5x5-v0")), SEED)
    assert sent == plan and PICKUP_ACTION in plan and TOGGLE in plan
    assert agent.calls == [] and total > 0
    assert state.carrying[0] == KEY


def test_a_world_that_differs_from_the_prediction_drops_the_queue():
    """Same pose as predicted but another layout (a cell changed) or another carried object:
    the queue is dropped and the episode replans (a pose-only check would keep it)."""
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"))
    obs, info = env.reset(seed=SEED)
    agent = _agent(execute=4)
    state = agent.new_episode(obs, info)
    first = agent.act_batch([state], [obs])[0]
    assert len(agent.calls) == 1 and state.queue  # 3 more queued actions
    obs, *_ = env.step(first)
    changed = {**obs, "image": obs["image"].copy()}
    key = np.argwhere(changed["image"][:, :, 0] == KEY)[0]
    changed["image"][key[0], key[1]] = (1, 0, 0)  # the key vanished
    agent.act_batch([state], [changed])
    assert len(agent.calls) == 2

    obs, info = env.reset(seed=SEED)
    state = agent.new_episode(obs, info)
    first = agent.act_batch([state], [obs])[0]
    obs, *_ = env.step(first)
    agent.act_batch([state], [{**obs, "carrying": np.array([KEY, 4, 0], dtype=np.uint8)}])  # a key in hand
    assert len(agent.calls) == 4

    obs, info = env.reset(seed=SEED)
    state = agent.new_episode(obs, info)
    first = agent.act_batch([state], [obs])[0]
    obs, *_ = env.step(first)
    agent.act_batch([state], [obs])  # as predicted: the queue is kept
    assert len(agent.calls) == 5


def test_the_carried_object_and_the_task_go_into_the_batched_model_call():
    env_ids = ("MiniGrid-Fetch-5x5-N2-v0", "MiniGrid-DoorKey-5x5-v0", "MiniGrid-GoToDoor-5x5-v0")
    observations, states = [], []
    agent = _agent()
    for env_id in env_ids:
        obs, info = envs.FullGridObsWrapper(gym.make(env_id)).reset(seed=SEED)
        observations.append(obs)
        states.append(agent.new_episode(obs, info))
    observations[1] = {**observations[1], "carrying": np.array([KEY, 4, 0], dtype=np.uint8)}
    agent.act_batch(states, observations)
    (call,) = agent.calls
    assert torch.equal(call["task"], torch.as_tensor(np.stack([o["task"] for o in observations])))
    assert call["task"][:, 0].tolist() == [2, 0, 3]  # fetch, goal, goto
    assert call["carrying"].tolist() == [list(NOTHING), [KEY, 4, 0], list(NOTHING)]


def test_ar_agent_passes_the_same_inputs(monkeypatch):
    import agents.ar_agent

    seen = {}

    def generate(model, grid, direction, length, temperature=0.0, generator=None, forbid=None, carrying=None,
                 task=None):  # the AR decoder with the carried object and task (maze_mdlm.ar.generate)
        seen.update(carrying=carrying, task=task, forbid=forbid)
        return torch.full((grid.shape[0], length), FORWARD)

    monkeypatch.setattr(agents.ar_agent, "generate", generate)
    agent = ARAgent(ARPolicy(ModelConfig(**TINY)).eval(), horizon=8)
    obs, info = envs.FullGridObsWrapper(gym.make("MiniGrid-Fetch-5x5-N2-v0")).reset(seed=SEED)
    assert agent.act_batch([agent.new_episode(obs, info)], [obs]) == [FORWARD]
    assert seen["task"].tolist() == [obs["task"].tolist()] and seen["carrying"].tolist() == [list(NOTHING)]
    assert seen["forbid"].shape == (1, 8, 9) and seen["forbid"][0, 0, 7:].all()  # END never first


def test_a_model_sees_its_own_canvas_whatever_the_wrapper():
    """A 25x25 model gets 25x25 grids from a 19x19 FullyObsWrapper image and a small world."""
    agent = _agent(grid_size=25)
    for env in (FullyObsWrapper(gym.make(envs.FOURROOMS_ID)), FullyObsWrapper(gym.make("MiniGrid-Empty-5x5-v0"))):
        obs, info = env.reset(seed=SEED)
        agent.reset(obs, info)
        agent.act(obs)
    assert [tuple(c["grid"].shape) for c in agent.calls] == [(1, 3, 25, 25)] * 2


def test_plans_stop_at_the_models_end_token():
    assert plan_actions([2, 6, 2, 8, 2], end_token=8) == [2, 6, 2]  # done is an action, END = 8
    assert plan_actions([2, 6, 2, 8, 2], end_token=6) == [2]  # old checkpoints: done ends the plan
    assert plan_actions([0, 1, 7, 7], end_token=8) == [0, 1]  # MASK: left unsampled
    assert plan_actions([8, 2], end_token=8) == [FORWARD]
    assert _agent(legacy=True).end_token == 6 and not _agent(legacy=True).done_is_action  # the shipped 19x19 ones
    assert _agent().end_token == 8 and _agent().done_is_action


def test_first_position_mask_forbids_the_tokens_past_the_actions():
    first = np.zeros((2, 7), dtype=bool)
    first[1, 3] = True
    forbid = first_position_mask(first, 4, vocab=9)
    assert forbid.shape == (2, 4, 9) and forbid[:, 0, 7:].all() and not forbid[:, 1:].any()
    assert forbid[1, 0, 3] and not forbid[0, 0, :7].any()


def test_done_is_a_first_action_only_where_it_completes_a_goto_task_and_only_for_new_models():
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-GoToDoor-5x5-v0"))
    obs, info = env.reset(seed=SEED)
    plan = list(solve_env(env).actions)
    assert plan[-1] == DONE
    old, new = _agent(legacy=True), _agent()
    state = new.new_episode(obs, info)
    _, layout, pose = new.observe(state, obs)[0]
    assert new.first_action_forbidden(layout, pose, (), NOTHING, state.task)[DONE]  # far from the door
    for action in plan[:-1]:
        obs, *_ = env.step(action)
    _, layout, pose = new.observe(state, obs)[0]
    assert not new.first_action_forbidden(layout, pose, (), NOTHING, state.task)[DONE]
    assert old.first_action_forbidden(layout, pose, (), NOTHING, state.task)[DONE]  # done = END: never first


def test_every_supported_env_has_a_shipped_default(tmp_path, monkeypatch):
    """suite.pt / suite_ar.pt unless a per-env checkpoint ships; from_checkpoint(env_id=E) loads it
    and the rollout wraps E to the checkpoint's 25x25 canvas."""
    from maze_mdlm import shipped
    from maze_mdlm.cli import main

    for env_id in SUPPORTED:
        for kind in ("mdlm", "ar"):
            name = shipped.shipped_name(env_id, kind)
            assert name == shipped.SHIPPED.get((kind, env_id), shipped.SUITE[kind])
    assert shipped.shipped_name("MiniGrid-DoorKey-16x16-v0") == "suite.pt"
    with pytest.raises(ValueError, match="not in envs.registry.SUPPORTED"):
        shipped.shipped_name("MiniGrid-Nope-v0")

    config = ModelConfig(grid_size=25, **TINY)
    for kind, model in (("mdlm", perturbed_policy(config, seed=1)), ("ar", ARPolicy(config))):
        save_checkpoint(tmp_path / shipped.SUITE[kind], model, config, None, 0, {"horizon": 8},
                        {"envs": ["MiniGrid-DoorKey-5x5-v0"]})
    monkeypatch.setattr(shipped, "CHECKPOINT_DIR", tmp_path)
    agent = MDLMAgent.from_checkpoint(env_id="MiniGrid-KeyCorridorS3R1-v0")
    assert agent.grid_size == 25 and agent.horizon == 8
    assert ARAgent.from_checkpoint(env_id="MiniGrid-KeyCorridorS3R1-v0").grid_size == 25
    report = tmp_path / "r.json"
    for name in ("mdlm", "ar"):
        assert main(["rollout", "--agent", name, "--env", "MiniGrid-Empty-5x5-v0", "--episodes", "1",
                     "--json", str(report)]) == 0


@pytest.mark.skipif(not (CHECKPOINT_DIR / SUITE["mdlm"]).is_file() or not (CHECKPOINT_DIR / SUITE["ar"]).is_file(),
                    reason="the generalist checkpoints suite.pt / suite_ar.pt are not in this checkout yet")
@pytest.mark.parametrize("kind", [MDLMAgent, ARAgent])
def test_the_shipped_generalist_plays_a_small_suite_env(kind):
    agent = kind.from_checkpoint(env_id="MiniGrid-Empty-5x5-v0")
    assert agent.grid_size == 25
    from maze_mdlm.evaluation import evaluate

    metrics = evaluate(agent, "MiniGrid-Empty-5x5-v0", 2, SEED)
    assert metrics["episodes"] == 2 and len(metrics["per_episode"]) == 2


# per-family fine-tunes of the generalist (file -> the envs it is the mdlm / mctd default of); the
# test checks each file's recorded training envs against these constants
FINE_TUNED = {"maze25.pt": envs.MAZE_25_IDS, "long_worlds.pt": LONG_WORLD_IDS, "obstructed.pt": OBSTRUCTED_IDS}


@pytest.mark.parametrize("name, env_ids", list(FINE_TUNED.items()))
def test_fine_tuned_families_default_to_their_own_checkpoint(name, env_ids):
    """maze25.pt (0.21), long_worlds.pt (0.22) and obstructed.pt (0.23): the generalist's
    architecture and 25x25 canvas, trained on exactly their envs, the mdlm / mctd default there;
    their ar stays the generalist's, and the other suite envs keep suite.pt (the zero-shot
    ObstructedMaze v0 ids among them)."""
    path = CHECKPOINT_DIR / name
    if not path.is_file():
        pytest.skip(f"{name} is not in this checkout")
    from agents.mctd.agent import MCTDAgent, env_max_steps
    from maze_mdlm import shipped
    from maze_mdlm.checkpoint import load_checkpoint, read_checkpoint

    assert all(shipped.shipped_name(e) == name and shipped.shipped_name(e, "ar") == SUITE["ar"] for e in env_ids)
    assert shipped.shipped_name("MiniGrid-KeyCorridorS3R3-v0") == SUITE["mdlm"]  # the short ones: the generalist
    assert all(shipped.shipped_name(f"MiniGrid-ObstructedMaze-{v}-v0") == SUITE["mdlm"] for v in ("2Dlhb", "1Q", "2Q"))
    assert path.stat().st_size <= 25 * 2**20
    ckpt = read_checkpoint(path)
    assert sorted(ckpt["dataset"]["envs"]) == sorted(env_ids)
    assert ckpt["model_config"]["grid_size"] == 25 and ckpt["model_config"]["task_inputs"]
    assert MDLMAgent.from_checkpoint(env_id=env_ids[0]).grid_size == 25
    model, _ = load_checkpoint(path)
    for env_id in env_ids:  # mctd loads exactly those weights, with the env's own step limit
        agent = MCTDAgent.from_checkpoint(env_id=env_id)
        assert agent.max_steps == env_max_steps(env_id)
        assert all(torch.equal(a, b) for a, b in zip(agent.model.state_dict().values(), model.state_dict().values()))


def test_visited_poses_are_forgotten_when_the_world_changes():
    """A shortest path never revisits a state; after a pickup the same pose is a new state, so
    the revisit rule must not forbid going back (e.g. out of a dead end with the key)."""
    env = envs.FullGridObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"))
    obs, info = env.reset(seed=SEED)
    agent = _agent()
    state = agent.new_episode(obs, info)
    agent.observe(state, obs)
    obs2, *_ = env.step(0)  # turn left: same world
    agent.observe(state, obs2)
    assert len(state.visited) == 2
    agent.observe(state, {**obs2, "carrying": np.array([KEY, 4, 0], dtype=np.uint8)})
    assert len(state.visited) == 1
    assert len(state.seen) == 3  # the world states are kept for the whole episode


@pytest.mark.skipif(not (CHECKPOINT_DIR / SUITE["mdlm"]).is_file(),
                    reason="the generalist checkpoint suite.pt is not in this checkout")
def test_the_shipped_generalist_solves_doorkey_in_a_plain_gymnasium_loop():
    """The issue's check: MiniGrid's own FullyObsWrapper (the env's own 8x8 image, no task or
    carrying entries: the agent parses the mission and tracks what it holds) and
    ``MDLMAgent.from_checkpoint(env_id=...)``, greedy, on three held-out seeds."""
    from minigrid.wrappers import FullyObsWrapper

    agent = MDLMAgent.from_checkpoint(env_id="MiniGrid-DoorKey-8x8-v0")
    for seed in (1_000_000, 1_000_001, 1_000_002):
        env = FullyObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))
        obs, info = env.reset(seed=seed)
        agent.reset(obs, info)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
            done, total = terminated or truncated, total + reward
        assert terminated and total > 0, seed
