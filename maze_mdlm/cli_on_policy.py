"""``collect-data --on-policy CKPT``: the actions a checkpoint's greedy MDLM policy takes (DAgger).

The env layer labels the states an agent reached (:func:`envs.collect.collect`'s ``on_policy``)
but never imports an agent; this CLI module plays :class:`agents.MDLMAgent` and hands its actions
over. Greedy decoding draws no noise, so the actions depend only on the checkpoint and the seeds.
"""

from __future__ import annotations

from typing import Any, Sequence

from envs.collect import ON_POLICY_STEPS, make_env
from envs.observation import FullGridObsWrapper

BATCH = 128  # episodes played in lockstep (one act_batch call per step)


def agent_actions(agent: Any, env_id: str, seeds: Sequence[int], max_steps: int = ON_POLICY_STEPS,
                  batch: int = BATCH) -> list[list[int]]:
    """The actions ``agent`` (``new_episode`` / ``act_batch``, e.g. :class:`agents.MDLMAgent`)
    takes from the reset of each seed of ``env_id``, until its episode ends or ``max_steps``
    actions; one list per seed, in order."""
    out: list[list[int]] = [[] for _ in seeds]
    for lo in range(0, len(seeds), batch):
        chunk = range(lo, min(lo + batch, len(seeds)))
        worlds = [FullGridObsWrapper(make_env(env_id), agent.grid_size) for _ in chunk]
        running = []
        for env, i in zip(worlds, chunk):
            obs, info = env.reset(seed=int(seeds[i]))
            running.append((i, env, agent.new_episode(obs, info), obs))
        while running:
            actions = agent.act_batch([state for _, _, state, _ in running], [obs for *_, obs in running])
            still = []
            for (i, env, state, _), action in zip(running, actions):
                out[i].append(int(action))
                obs, _, terminated, truncated, _ = env.step(int(action))
                if not (terminated or truncated or len(out[i]) >= max_steps):
                    still.append((i, env, state, obs))
            running = still
        for env in worlds:
            env.close()
    return out


def on_policy_actions(checkpoint: str, env_ids: Sequence[str], seed: int, episodes: int) -> dict[str, list[list[int]]]:
    """``{env_id: actions per seed}`` of ``checkpoint``'s greedy MDLM policy on seeds
    ``seed .. seed + episodes - 1`` of each env (on the CPU, one torch thread: the agent's default)."""
    from agents import MDLMAgent

    result = {}
    for env_id in env_ids:
        agent = MDLMAgent.from_checkpoint(checkpoint, env_id=env_id)
        result[env_id] = agent_actions(agent, env_id, range(seed, seed + episodes))
    return result
