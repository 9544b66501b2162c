"""Monte Carlo Tree Diffusion (MCTD, Yoon et al. ICML 2025) with parallel rounds (Fast-MCTD).

* :mod:`agents.mctd.tree`: the search tree (pure data structure, UCT, max backup).
* :mod:`agents.mctd.planner`: batched expansion / jumpy simulation / evaluation
  (:class:`MCTDConfig`, :class:`MCTDPlanner`).
* :mod:`agents.mctd.rollout`: the greedy-policy continuation of plans that end before the goal.
* :mod:`agents.mctd.agent`: :class:`MCTDAgent`, the closed-loop gymnasium agent.

Defaults (:class:`MCTDConfig`) and why (figures from ``benchmarks/results`` with the shipped
checkpoints, one thread of the 2-core dev CPU):

* ``horizon``: the model's training window (``MCTDAgent.from_checkpoint`` reads it: 16 for the
  maze, 8 for FourRooms; 32 when a config is built by hand), ``num_subplans=4``: four tree levels.
* ``meta_actions="cfg"``: guidance scales ``w in (1, 2, 0.5)``, every expansion sampling at
  temperature 1. Before plans were continued by the policy, this family gave about twice the
  successes per expansion of temperatures ``T in (0, 0.7, 1.5)`` on the maze (success 0.55 vs
  0.25, 20 episodes, an older checkpoint); with the continuation both solve every episode (300
  per env, budget 24), cfg with slightly more successes per expansion (maze 57.0 vs 54.7 per
  1000, FourRooms 89.9 vs 86.8) and shorter FourRooms paths (1.032 vs 1.040), so cfg stays.
* ``expand_steps=2, sim_steps=1``: two unmasking steps per sub-plan (one was clearly worse:
  0.30 vs 0.55 in the same older comparison), one greedy step for the jumpy simulation.
* ``max_expansions=24, parallel=8, min_expansions=11``: the root's 3 meta-actions, then one full
  round of 8 below them before an early stop; that second round is what keeps FourRooms paths
  short (path ratio 1.028, against 1.053 with 4 expansions). Median search: 47 ms on the maze,
  21-23 ms on FourRooms. Rounds of K=8 are about 3x the expansions/s of K=1 at equal expansions.
* ``rollout_windows=24, rollout_execute=4, rollout_steps=1, rollout_merge=True``: plans are
  continued by the greedy policy for up to 96 actions, 4 per decoded window, one forward per
  window (two gave the same success and paths at twice the cost), following earlier
  goal-reaching continuations where they meet and decoding one window ahead where the
  policy's own tokens predict it (:mod:`agents.mctd.rollout`).
* ``exploration=sqrt(2)``, ``early_stop=True``: UCT's standard weight; a search stops after
  the first round that found a goal-reaching plan once ``min_expansions`` are done.
"""

from __future__ import annotations

from agents.mctd.agent import MCTDAgent
from agents.mctd.planner import MCTDConfig, MCTDPlanner

__all__ = ["MCTDAgent", "MCTDConfig", "MCTDPlanner"]
