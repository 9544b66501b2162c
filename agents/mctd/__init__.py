"""Monte Carlo Tree Diffusion (MCTD, Yoon et al. ICML 2025) with parallel rounds (Fast-MCTD).

* :mod:`agents.mctd.tree`: the search tree (pure data structure, UCT, max backup).
* :mod:`agents.mctd.planner`: batched expansion / jumpy simulation / evaluation.
* :mod:`agents.mctd.agent`: :class:`MCTDAgent`, the closed-loop gymnasium agent.

Defaults (:class:`MCTDConfig`) and why:

* ``horizon=32, num_subplans=4``: the model's training window split into four sub-plans of
  8 tokens, so the tree has four levels and each level commits a chunk long enough to cross
  a corridor or a room.
* ``meta_actions="cfg"``: three guidance scales ``w in (1, 2, 0.5)``, every expansion
  sampling at temperature 1. On the maze (``benchmarks/mctd_speed.py``, 20 episodes, the same
  budget) it gave about twice the successes per expansion of the temperature family
  ``T in (0, 0.7, 1.5)`` (success 0.55 vs 0.25). An ablation with ``w = 1`` everywhere did as
  well as CFG, so most of the gain comes from sampling every expansion at T=1 rather than
  from the guidance scale itself; the greedy child of the temperature family repeats the
  plain policy's plan, which is exactly what the search is there to improve on.
* ``expand_steps=2, sim_steps=1``: two unmasking steps per 8-token sub-plan (one step was
  clearly worse: 0.30 vs 0.55 success), and one greedy step for the jumpy simulation.
* ``max_expansions=24, parallel=8``: with the default 128-wide, 4-layer model on one thread of
  this 2-core CPU a full 24-expansion search takes a median of about 80 ms (32 expansions:
  about 105 ms), inside the 100 ms planning budget. Rounds of K=8 run one batched denoising
  call each: about 1.9x the expansions/s of K=1 at equal expansions with that model (the CPU
  is compute-bound; 3.4x with a 64-wide, 2-layer one). K=32 adds little because the first
  rounds cannot be wider than the tree (3 children at the root, 9 below).
* ``exploration=sqrt(2)``, ``early_stop=True``: UCT's standard weight; a search stops after
  the first round that found a goal-reaching plan.
"""

from __future__ import annotations

from agents.mctd.agent import MCTDAgent
from agents.mctd.planner import MCTDConfig, MCTDPlanner

__all__ = ["MCTDAgent", "MCTDConfig", "MCTDPlanner"]
