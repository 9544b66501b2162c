"""Monte Carlo Tree Diffusion (MCTD, Yoon et al. ICML 2025) with parallel rounds (Fast-MCTD).

* :mod:`agents.mctd.tree`: the search tree (pure data structure, UCT, max backup).
* :mod:`agents.mctd.planner`: batched expansion / jumpy simulation / evaluation
  (:class:`MCTDConfig`, :class:`MCTDPlanner`).
* :mod:`agents.mctd.world`: what a search knows (start state, task, the model's END) and how plans
  are simulated and scored: the task's own success predicate under all seven MiniGrid actions
  (:func:`envs.dynamics.simulate_world`), with the navigation fast path where nothing but the
  pose can change.
* :mod:`agents.mctd.rollout`: the greedy-policy continuation of plans that end before the goal
  (memoised by pose, or by full world state where objects can change; since 0.11 the agent keeps
  the memo for the whole episode, :class:`agents.mctd.rollout.ContinuationMemo`: median search
  0.37–0.69× on the long worlds with many searches per episode, ``benchmarks.continuation_memo``).
* :mod:`agents.mctd.agent`: :class:`MCTDAgent`, the closed-loop gymnasium agent (``reset`` /
  ``act`` and ``new_episode`` / ``act_batch``).

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
* ``max_expansions=24, parallel=8, min_expansions=11``: the root's 3 meta-actions, then one full
  round of 8 below them before an early stop; that second round is what keeps FourRooms paths
  short (path ratio 1.028, against 1.053 with 4 expansions). Rounds of K=8 are about 3x the
  expansions/s of K=1 at equal expansions.
* ``rollout_windows=24, rollout_execute=4``: plans are continued by the greedy policy for up to
  96 actions, 4 per decoded window, one forward per window, following earlier goal-reaching
  continuations where they meet and decoding one window ahead where the policy's own tokens
  predict it (:mod:`agents.mctd.rollout`).
* ``shortcut=True``: loops are cut out of goal-reaching plans (:func:`envs.dynamics.shortcut`);
  under the full rules the pickups, drops and toggles a plan does not need go too (0.15).
* ``straighten=True`` (0.25): the goal-reaching plan a search returns has its walks between
  object actions straightened (:func:`envs.dynamics.straighten_plan`: straight or one-corner
  walks through cells no object action faces, where shorter). At 500 episodes per env success
  is unchanged on all 69 envs and the path ratio lower on 43 (BraidMaze-25x25 1.135 -> 1.089,
  LockedRoom 1.043 -> 1.004), for 0.6-1.7 ms per search (README Results).
* ``MCTDAgent(goal_execute="auto")`` (0.29; ``k`` opt-in since 0.28): where objects can change, a
  goal-reaching plan is executed k = 2 actions at a time (4 in 0.29-0.30), each later search keeping the rest of it
  (the incumbent) unless it finds a strictly shorter goal-reaching plan: one search chooses only
  among its plans' first sub-plans, each continued by the same greedy policy, and searching again
  re-chooses the next ones. Where only the agent moves it is executed whole, as is every plan
  with ``goal_execute=0`` (before 0.29). On ObstructedMaze-Full-v0
  and BraidMaze-25x25 (100 episodes each, path ratio, whole plan / k = 8 / 4 / 2 / 1): 1.257 /
  1.271 / 1.194 / 1.195 / 1.166 and 1.149 / - / 1.091 / 1.061 / -, at ~1.5-2x the wall time per
  episode for k = 4 and ~4x for k = 1 on Full-v0 (``benchmarks.suite --episodes 100
  --mctd-goal-execute K``); the 200-episode ablation of k = 4 and the 500-episode pages of every
  suite row are in README Results. Since 0.31 a search made while the incumbent is kept gets
  ``research_expansions=3`` expansions instead of the full budget: with k = 2 that halves the
  search median at about the same wall time and path ratio (README Results, "Cheaper searches
  with an incumbent").
* ``partial_score="novelty"`` with the agent's ``fallback="plan"`` (0.4): a search that finds no
  goal-reaching plan is not thrown away; the agent executes the first sub-plan of the plan that
  ends alive after entering the most cells the episode has not been in. On the braid maze this
  takes tree-only MCTD from the MDLM's behaviour to fewer failures and far shorter paths, and
  makes the tree's budget matter (``benchmarks.ablation``; README).
* ``cut_partial=True`` (0.20): where only the agent moves, a plan still running after its
  continuation has its loops cut as well, before it is scored and stored, unless its loop-free
  path shows no cell the episode has not been in. Its novelty is then the new ground it ends on,
  not a dead end the continuation walked into and back out of, and the partial-plan fallback
  executes its loop-free prefix. With ``MCTDAgent(commit=True)`` (0.20) the agent follows the
  partial plan it chose, a sub-plan per decision, while the rest of it still leads to new cells,
  so it no longer switches back and forth between two directions for good. Measured on the
  generalist's mazes (``benchmarks.suite --mctd-no-cut-partial / --mctd-no-commit``;
  docs/suite_history.md, "Partial plans"). Under the full rules the fallback is a policy step, and cutting the
  running plans there changed no success at 50 episodes, so both apply to navigation worlds only.
* ``fallback="auto"`` (0.6): that partial-plan fallback only where nothing but the agent can
  change (the worlds above); where doors, keys, balls or boxes are in play, a search without a
  goal-reaching plan hands the step to the greedy MDLM policy: on 12 long object worlds (0.8, 20
  episodes each), success 0.987 against the partial plan's 0.854, path ratio 1.29 instead of 1.45
  (``benchmarks.suite --mctd-fallback plan``; docs/suite_history.md).
* ``rollout_escape=0.0`` (0.9; a retry since 0.10): continuations caught in a cycle of the greedy
  policy replay it. At 1.0, a search that finds no goal that way grows a second tree in which
  they sample their remaining windows instead. At 50 episodes, Maze-25x25 success goes 0.64 →
  0.74 and Maze-19x19 0.96 → 1.00 (0.11); searches that succeed greedily are unchanged, but
  failing ones pay for the second tree (p95 3.5–7.8× on the mazes), and at 20 episodes it lost
  the braid mazes an episode each, so it stays off (``benchmarks.suite --mctd-escape``;
  docs/suite_history.md).
* ``guess_boxes=True`` (0.13): MiniGrid's encoding hides what a closed box holds, so the search
  assumes that each closed box holds a key of a locked door whose key is nowhere in sight
  (:func:`envs.box_guess.guess_box_contents`: since 0.14 a door of the box's own room, the one
  nearest the task's target; 0.13 took the door nearest the box); 0.12 simulated an opened box
  as empty, so no plan could reach the goal in ObstructedMaze before the key was in hand. On the 11
  ObstructedMaze ids that hide keys in boxes (50 episodes each), success rose on 9 and fell on
  none (Full-v0 0.84 → 0.96, 1Q-v1 0.94 → 1.00), the path ratios of the 9 above 1.10 fell from
  1.56–1.95 to 1.35–1.61, and searches got cheaper; every other env is unchanged episode for
  episode, because nothing is guessed where each locked door's key is in sight
  (``benchmarks.suite --mctd-no-guess-boxes``; docs/suite_history.md).
* ``widen_on_failure=True`` (0.33): under the full rules, a search whose tree found no goal-reaching
  plan (and whose agent holds none) grows a second tree of the same budget whose plans must start
  with a useful action no plan of the first tree started with, kept if it reaches the goal. The
  model can be so sure of one first move (picking up the key a box revealed when the guess was
  wrong) that every expansion simulates the same plan. On the six hidden-key ObstructedMaze ids
  (100 episodes) path ratio falls on all six (2Q-v1 1.147 -> 1.135, Full-v0 1.209 -> 1.195, Full-v1
  1.189 -> 1.177), search times unchanged; on the other object worlds 0-2.5% of searches widen
  and path ratios move by -0.020 to +0.006, success 1.000 either way (``benchmarks.suite
  --mctd-no-widen``; README Results, "Boxes keep their guess").
* ``time_budget_ms=None``: no wall-clock limit by default, so a search does not depend on the
  machine's speed; set it (``rollout --time-budget-ms``) for an anytime search.
* Fixed since 0.4 (fields until 0.3, never varied by a benchmark, test or flag; module constants
  of :mod:`agents.mctd.planner` with the same values): two unmasking steps per sub-plan (one was
  clearly worse: 0.30 vs 0.55 in an older comparison), one greedy step for the jumpy simulation,
  one per continuation window (two gave the same results at twice the cost), expansion
  temperature 1 for the cfg family and guidance 1 for the temperature family, no nucleus filter,
  UCT weight sqrt(2), END (``model.config.end_token``) scored as the no-op it is when executed,
  merged continuations.
"""

from __future__ import annotations

from agents.mctd.agent import MCTDAgent
from agents.mctd.planner import MCTDConfig, MCTDPlanner

__all__ = ["MCTDAgent", "MCTDConfig", "MCTDPlanner"]
