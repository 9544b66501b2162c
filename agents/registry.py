"""Build an agent by its CLI name."""

from __future__ import annotations

from typing import Any

AGENT_NAMES = ("random", "bfs", "ar", "mdlm", "mctd")
MODEL_AGENTS = ("ar", "mdlm", "mctd")  # the ones that load a checkpoint (and take ``device``)



def make_agent(name: str, env_id: str, checkpoint: str | None = None, seed: int = 0, device: str = "cpu",
               **options: Any) -> Any:
    """Return a fresh agent: ``random``, ``bfs``, ``ar``, ``mdlm`` or ``mctd``.

    Model agents load ``checkpoint``, or the checkpoint shipped for ``env_id`` when it is None, onto
    ``device`` ("cpu", "cuda" or "auto"). ``options`` go to ``MCTDAgent.from_checkpoint`` (e.g.
    ``time_budget_ms``, or :class:`agents.mctd.MCTDConfig` fields such as ``max_expansions`` and
    ``parallel``); other agents take none. A module-level function, so
    ``functools.partial(make_agent, ...)`` is a picklable recipe for worker processes.
    """
    if options and name != "mctd":
        raise ValueError(f"agent {name!r} takes no options, got {sorted(options)}")
    if name == "bfs":
        from agents.baselines import BFSAgent

        return BFSAgent(**options)
    if name == "random":
        from agents.baselines import RandomAgent

        return RandomAgent(seed, **options)
    if name == "mdlm":
        from agents.mdlm_agent import MDLMAgent

        return MDLMAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed, device=device, **options)
    if name == "ar":
        from agents.ar_agent import ARAgent

        return ARAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed, device=device, **options)
    if name == "mctd":
        from agents.mctd import MCTDAgent

        return MCTDAgent.from_checkpoint(checkpoint, env_id=env_id, seed=seed, device=device, **options)
    raise ValueError(f"unknown agent {name!r}")
