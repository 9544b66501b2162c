"""Collect expert episodes, in parallel worker processes, into an :class:`Episodes` record.

Episode ``i`` of env ``k`` uses reset seed ``seed + i``. Work is cut into fixed chunks of
consecutive seeds; the chunks are solved by any number of workers and put back in seed order, so
the result (and the file) is the same for every worker count. Every expert plan is replayed in
the env itself before it is kept: a seed whose plan the env does not reward, or that the expert
cannot solve within its budget, stops the collection with :class:`ExpertFailure` (nothing is
skipped silently). A start the expert proves unsolvable (0.34; MiniGrid's ObstructedMaze v0
generator makes some, :func:`envs.expert.provably_unsolvable`) is left out and listed in the file's
``meta["unsolvable_seeds"]``.

With ``box_guess`` the expert plans with the agent's information about closed boxes
(:func:`envs.guessing_expert.solve_with_guess`): the same start states, episodes that open the
guessed box first and plan again after a wrong one.

With ``on_policy`` (DAgger's data aggregation, 0.17) the start states are not the resets but the
states an agent reached: for each seed, the actions an agent took from its reset are replayed and
every ``every``-th state with an empty hand (within the first :data:`ON_POLICY_STEPS` steps) becomes
an episode's start, labelled by the expert (or the guessing expert) from there. The agent is played
elsewhere (``maze-mdlm collect-data --on-policy CKPT`` plays the checkpoint's greedy MDLM policy);
this module only replays its actions, so the env layer imports no agent. With ``holding`` (0.18) the
states with an object in hand are labelled too; the file then stores each start's object in hand
(and a carried box's contents), dataset version 3.
"""

from __future__ import annotations

import multiprocessing as mp
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers our envs in worker processes)
from envs.dataset import CARRIED_BOX, Episodes
from envs.expert import ExpertBudgetError, solve_state
from envs.guessing_expert import GuessFailure, NoSolution, solve_with_guess
from envs.observation import EMPTY_CELL, canvas_size, check_fits, pad_grid
from envs.registry import lookup
from envs.tasks import parse_mission
from envs.world import BOX, NOTHING, WorldState, state_from_env

CHUNK = 250
ON_POLICY_STEPS = 128  # on-policy starts come from an agent episode's first 128 steps (the suite benchmark's cap)
ON_POLICY_EVERY = 8  # default stride of on-policy starts
SKIP_REASONS = ("no_solution", "budget", "step_limit")  # why an on-policy start was not labelled (counted)


class ExpertFailure(RuntimeError):
    """The expert could not solve a seed (no solution, search budget, or a plan the env rejects)."""


def make_env(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make`` with maze-mdlm's envs registered; raises ``gym.error.Error`` if unknown."""
    return gym.make(env_id, **kwargs)


def grid_size_for(env_ids: Sequence[str], grid_size: int | None = None) -> int:
    """The canvas for a set of envs: ``grid_size`` if given (each env must fit), else 19 or the
    largest world's side (up to 25). Raises ``GridTooLargeError`` / ``UnsupportedEnvError``."""
    specs = [lookup(e) for e in env_ids]
    size = grid_size if grid_size is not None else max(canvas_size(s.width, s.height) for s in specs)
    for spec in specs:
        check_fits(spec.width, spec.height, spec.env_id, size)
    return size


def _solve_chunk(job: tuple[str, int, int, int, bool]) -> tuple:
    """Solve the episodes with seeds ``[start, stop)`` of one env on a ``size`` canvas (with the
    box guess if ``box_guess``); then the plans made with the true contents because the guess had
    no solution (a count), the seeds kept as the true expert's episode, nothing skipped per
    on-policy reason (``{}``), and the seeds left out as proved unsolvable."""
    env_id, start, stop, size, box_guess = job
    env = make_env(env_id)
    seeds, layouts, poses, tasks = [], [], [], []
    plans, boxes, fallbacks, true_seeds, unsolvable = [], [], 0, [], []
    for seed in range(start, stop):
        env.reset(seed=seed)
        state = state_from_env(env)
        task = parse_mission(env.unwrapped.mission).bind(state.layout)
        try:
            plan = solve_state(state, task)
            actions = plan.actions
            if plan.solvable and box_guess:
                try:
                    actions, used_truth = solve_with_guess(state, task, env.unwrapped.max_steps)
                    fallbacks += used_truth
                except ExpertBudgetError:  # a state after a wrong box beyond the budget: the true episode
                    true_seeds.append(seed)
        except ExpertBudgetError as err:
            raise ExpertFailure(f"{env_id} seed {seed}: {err}") from None
        except GuessFailure as err:
            raise ExpertFailure(f"{env_id} seed {seed}: the guessing expert: {err}") from None
        if not plan.solvable:  # proved: no action sequence completes the task (listed, never silent)
            unsolvable.append(seed)
            continue
        _check_plan(env, actions, env_id, seed)
        boxes += _box_rows(len(seeds), state)
        seeds.append(seed)
        layouts.append(pad_grid(state.layout, size))
        poses.append(state.pose)
        tasks.append(task.task.vector())
        plans.append(np.asarray(actions, dtype=np.uint8))
    env.close()
    carrying = np.tile(EMPTY_CELL, (len(seeds), 1))
    return _chunk_result(seeds, layouts, poses, tasks, carrying, plans, boxes, size) + (fallbacks, true_seeds, {},
                                                                                         unsolvable)


def _chunk_result(seeds: list, layouts: list, poses: list, tasks: list, carrying: Any, plans: list, boxes: list,
                  size: int) -> tuple:
    """A chunk's kept episodes as arrays: seeds ``[n]``, layouts ``[n, size, size, 3]``, poses
    ``[n, 3]``, tasks ``[n, 5]``, carrying ``[n, 3]``, the plans and box rows ``[B, 6]``."""
    n = len(seeds)
    return (np.asarray(seeds, dtype=np.int64), np.asarray(layouts, dtype=np.uint8).reshape(n, size, size, 3),
            np.asarray(poses, dtype=np.int16).reshape(n, 3), np.asarray(tasks, dtype=np.uint8).reshape(n, 5),
            np.asarray(carrying, dtype=np.uint8).reshape(n, 3), plans, np.asarray(boxes, dtype=np.int64).reshape(-1, 6))


def _box_rows(episode: int, state: WorldState) -> list[tuple]:
    """The dataset's box rows ``(episode, x, y, type, color, state)`` of ``state``'s closed boxes in
    the grid, and of the box in hand (``x = y =`` :data:`envs.dataset.CARRIED_BOX`)."""
    rows = []
    for where, contents in state.boxes:
        if where == "carried":
            rows.append((episode, CARRIED_BOX, CARRIED_BOX, *contents))
        elif state.layout[where[0], where[1], 0] == BOX:
            rows.append((episode, *where, *contents))
    return rows


def _label(state: WorldState, task: Any, box_guess: bool, max_steps: int) -> tuple[list[int], int]:
    """The expert's actions from ``state`` (the guessing expert's with ``box_guess``) and how many
    plans used the true contents. Raises ``ExpertBudgetError``, ``NoSolution`` or ``GuessFailure``
    (past ``max_steps``)."""
    if not box_guess:
        plan = solve_state(state, task)
        if not plan.solvable:
            raise NoSolution("no solution")
        if len(plan.actions) > max_steps:
            raise GuessFailure("past the step limit")
        return list(plan.actions), 0
    return solve_with_guess(state, task, max_steps)


def _relabel_chunk(job: tuple[str, int, list, int, int, bool, bool]) -> tuple:
    """On-policy starts of the seeds ``[start, start + len(prefixes))``: replay each agent's
    ``prefixes[i]`` from its reset and label every ``every``-th state with an empty hand (with
    ``holding``: every ``every``-th state; module docstring; a state met again in the same episode
    is labelled once). Returns what :func:`_solve_chunk` does, with one seed per kept start, the
    starts skipped per reason (:data:`SKIP_REASONS`; an unsolvable start is ``no_solution``) and no
    seed listed as unsolvable."""
    env_id, start, prefixes, every, size, box_guess, holding = job
    env, checker = make_env(env_id), make_env(env_id)  # the agent's episode, and one to replay each label in
    seeds, layouts, poses, tasks, carrying, plans, boxes = [], [], [], [], [], [], []
    fallbacks, skipped = 0, dict.fromkeys(SKIP_REASONS, 0)
    for seed, prefix in zip(range(start, start + len(prefixes)), prefixes):
        env.reset(seed=seed)
        limit, labelled = env.unwrapped.max_steps, set()
        for t, action in enumerate(list(prefix)[:ON_POLICY_STEPS], start=1):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                break
            state = state_from_env(env)
            if t % every or (state.carrying != NOTHING and not holding) or state.key() in labelled:
                continue  # (an agent caught in a loop meets the same state again: labelled once)
            labelled.add(state.key())
            task = parse_mission(env.unwrapped.mission).bind(state.layout)
            try:
                actions, used_truth = _label(state, task, box_guess, limit - t)
            except ExpertBudgetError:
                skipped["budget"] += 1
                continue
            except NoSolution:  # an agent can make a task unsolvable (a key dropped where it blocks)
                skipped["no_solution"] += 1
                continue
            except GuessFailure:
                skipped["step_limit"] += 1
                continue
            _check_plan(checker, [*map(int, prefix[:t]), *actions], env_id, seed, labelled_from=t)
            fallbacks += used_truth
            i = len(seeds)
            seeds.append(seed)
            layouts.append(pad_grid(state.layout, size))
            poses.append(state.pose)
            tasks.append(task.task.vector())
            carrying.append(state.carrying)
            boxes += _box_rows(i, state)
            plans.append(np.asarray(actions, dtype=np.uint8))
    env.close()
    checker.close()
    return _chunk_result(seeds, layouts, poses, tasks, carrying, plans, boxes, size) + (fallbacks, [], skipped, [])


def _check_plan(env: gym.Env, actions: Sequence[int], env_id: str, seed: int, labelled_from: int = 0) -> None:
    """Replay an expert plan in the env (reset to ``seed``); it must end the episode rewarded.
    ``labelled_from``: the plan starts with that many agent actions (on-policy starts)."""
    env.reset(seed=seed)
    for t, action in enumerate(actions):
        _, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            if terminated and reward > 0 and t == len(actions) - 1:
                return
            break
    where = f" (labelled from step {labelled_from})" if labelled_from else ""
    raise ExpertFailure(f"{env_id} seed {seed}: the expert's plan does not solve the env{where}")


def collect(
    env_ids: Sequence[str],
    episodes: int,
    seed: int,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    command: str = "",
    grid_size: int | None = None,
    map_chunks: Callable[[Callable[[Any], Any], list], Iterable[Any]] | None = None,
    box_guess: bool = False,
    on_policy: Mapping[str, Sequence[Sequence[int]]] | None = None,
    every: int = ON_POLICY_EVERY,
    holding: bool = False,
) -> Episodes:
    """Run the expert on ``episodes`` seeds of each env.

    Args:
        env_ids: gymnasium ids from :mod:`envs.registry`.
        episodes: episodes per env; env k's episode i uses reset seed ``seed + i``.
        seed: first reset seed.
        workers: worker processes (1 = in-process).
        on_progress: called with the number of episodes just finished.
        command: the command line, recorded in the file's metadata.
        grid_size: the canvas side (default: :func:`grid_size_for`).
        map_chunks: ``map_chunks(func, jobs)`` yields ``func(job)`` for each job in order, e.g.
            :func:`maze_mdlm.ray_tools.ray_map` (Ray tasks); replaces the worker pool.
        box_guess: the expert plans with the box guess instead of the true contents
            (:func:`envs.guessing_expert.solve_with_guess`); the file's ``meta["expert"]`` is
            "astar-box-guess", ``meta["guess_fallbacks"]`` counts plans made with the true
            contents because the guess had no solution, and ``meta["true_expert_seeds"]`` lists
            ``[env_id, seed]`` of the episodes kept as the true expert's because the guessing
            expert reached a state past the expert's budget. Same as the plain expert without boxes.
        on_policy: ``{env_id: [actions of seed, actions of seed + 1, ...]}``, the actions an agent
            took from each reset (``episodes`` lists per env): the episodes start at every
            ``every``-th state of those with an empty hand (module docstring), so a seed gives 0 to
            ``ON_POLICY_STEPS // every`` episodes, each recorded under its reset seed (validation
            stays split by seed). ``meta["on_policy"]`` records ``every``, ``max_steps``
            (:data:`ON_POLICY_STEPS`) and ``skipped``: the starts not labelled, per reason (no
            solution, past the expert's budget, past the env's step limit); the caller's
            ``command`` names the agent.
        every: the stride of on-policy starts (>= 1).
        holding: on-policy starts may hold an object (stored in the file's ``carrying``, format
            version 3; ``meta["on_policy"]["holding"]`` is then true); without it only states with
            an empty hand are labelled, as in 0.17.

    Raises:
        ExpertFailure: if the expert cannot solve some seed within its budget, or a plan fails in
            the env (the message names the seed), or no start is left to keep. Seeds the expert
            proves unsolvable are left out and listed as ``[env_id, seed]`` in
            ``meta["unsolvable_seeds"]`` (0.34; absent when there are none).
        envs.registry.UnsupportedEnvError, envs.observation.GridTooLargeError: for bad env ids.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if holding and on_policy is None:
        raise ValueError("holding applies to on-policy starts only")
    size = grid_size_for(env_ids, grid_size)
    starts = [(env_id, start, min(start + CHUNK, seed + episodes)) for env_id in env_ids
              for start in range(seed, seed + episodes, CHUNK)]
    if on_policy is None:
        work, jobs = _solve_chunk, [(env_id, a, b, size, bool(box_guess)) for env_id, a, b in starts]
    else:
        for env_id in env_ids:
            if len(on_policy.get(env_id, ())) != episodes:
                raise ValueError(f"on_policy needs the actions of {episodes} episodes of {env_id}")
        work = _relabel_chunk
        jobs = [(env_id, a, [list(map(int, p)) for p in on_policy[env_id][a - seed: b - seed]], every, size,
                 bool(box_guess), bool(holding)) for env_id, a, b in starts]
    results = []
    local_pool = workers > 1 and map_chunks is None
    with mp.get_context("spawn").Pool(workers) if local_pool else nullcontext() as pool:
        mapper = map_chunks or (pool.imap if pool else map)
        for (_, a, b), result in zip(starts, mapper(work, jobs)):
            results.append(result)
            if on_progress:
                on_progress(b - a)

    seeds, env_index, layouts, poses, tasks, carrying, plans, boxes = [], [], [], [], [], [], [], []
    count = fallbacks = 0
    true_seeds, unsolvable = [], []
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for (env_id, _, _), result in zip(starts, results):
        (chunk_seeds, lay, pose, task, held, chunk_plans, chunk_boxes, chunk_fallbacks, chunk_true, chunk_skipped,
         chunk_unsolvable) = result
        fallbacks += chunk_fallbacks
        true_seeds += [[env_id, int(s)] for s in chunk_true]
        unsolvable += [[env_id, int(s)] for s in chunk_unsolvable]
        for reason, n in chunk_skipped.items():
            skipped[reason] += n
        seeds.append(np.asarray(chunk_seeds, dtype=np.int64))
        env_index.append(np.full(len(chunk_seeds), list(env_ids).index(env_id), dtype=np.uint8))
        layouts.append(lay)
        poses.append(pose)
        tasks.append(task)
        carrying.append(held)
        plans.extend(chunk_plans)
        chunk_boxes = chunk_boxes.copy()  # results may be read-only (Ray returns zero-copy arrays)
        chunk_boxes[:, 0] += count
        boxes.append(chunk_boxes)
        count += len(chunk_seeds)
    if not count and on_policy is None:
        which = "the seed" if len(unsolvable) == 1 else f"all {len(unsolvable)} seeds"
        raise ExpertFailure(f"no solvable start: the expert proved {which} unsolvable")
    if not count:
        hand = "was reached" if holding else "had an empty hand (or none was reached)"
        raise ExpertFailure(f"no on-policy start to label: no state every {every} steps into the agent's episodes {hand}")
    lengths = np.array([len(p) for p in plans], dtype=np.int64)
    meta = {
        "envs": list(env_ids),
        "episodes_per_env": int(episodes),
        "seed": int(seed),
        "seed_range": [int(seed), int(seed + episodes)],
        "grid_size": int(size),
        "expert": "astar-box-guess" if box_guess else "astar",
        "command": command,
    }
    if unsolvable:  # (absent otherwise, so files without such seeds come out as before 0.34)
        meta["unsolvable_seeds"] = unsolvable
    if box_guess:
        meta["guess_fallbacks"] = int(fallbacks)
        meta["true_expert_seeds"] = true_seeds
    if on_policy is not None:
        meta["on_policy"] = {"every": int(every), "max_steps": ON_POLICY_STEPS, "skipped": skipped}
        if holding:  # (absent otherwise, so 0.17's files come out byte-identical)
            meta["on_policy"]["holding"] = True
    collected = Episodes(
        seeds=np.concatenate(seeds),
        env_index=np.concatenate(env_index),
        layouts=np.concatenate(layouts),
        start_pose=np.concatenate(poses),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        actions=np.concatenate(plans) if plans else np.zeros(0, dtype=np.uint8),
        tasks=np.concatenate(tasks),
        carrying=np.concatenate(carrying),
        boxes=np.concatenate(boxes).astype(np.int16),
        meta=meta,
    )
    meta["dataset_version"] = collected.format_version  # 2, or 3 where some start holds an object
    return collected
