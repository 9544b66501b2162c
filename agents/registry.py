"""Build an agent by its CLI name."""

from __future__ import annotations

from typing import Any


def make_agent(name: str, env_id: str, checkpoint: str | None = None, seed: int = 0, **options: Any) -> Any:
    """Return a fresh agent: ``random``, ``bfs``, ``ar``, ``mdlm`` or ``mctd``.

    Model agents load ``checkpoint``, or the checkpoint shipped for ``env_id`` when it is None.
    ``options`` go to ``MCTDAgent.from_checkpoint`` (e.g. ``time_budget_ms``); other agents take none.
    """
    if options and name != "mctd":
        raise ValueError(f"agent {name!r} takes no options, got {sorted(options)}")
    if name == "bfs":
        from agents.baselines import BFSAgent

        return BFSAgent()
    if name == "random":
        from agents.baselines import RandomAgent

        return RandomAgent(seed)
    if name == "mdlm":
        from agents.mdlm_agent import MDLMAgent

        return MDLMAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed)
    if name == "ar":
        from agents.ar_agent import ARAgent

        return ARAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed)
    if name == "mctd":
        from agents.mctd import MCTDAgent

        return MCTDAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed, **options)
    raise ValueError(f"unknown agent {name!r}")
