"""Greedy-policy continuation of MCTD plans, memoised by pose.

A simulated plan that neither reaches the goal nor dies within its H actions is continued by
the greedy MDLM policy, window by window: from the pose the dynamics reached, decode a window
of H tokens (``steps`` unmasking steps, first token restricted to pose-changing moves as in
:class:`agents.mdlm_agent.MDLMAgent`), execute its first ``execute`` actions, repeat, for at
most ``max_windows`` windows.

Within one search the layout is fixed, decoding is greedy (no noise) and the first-action
rule depends only on the pose, so the window decoded from a pose is a function of that pose.
:class:`GreedyContinuation` therefore decodes each pose once per search and replays it for
every row (of this round or a later one) that reaches it at a window start; and a row that
comes back to a pose it already started a window from is in a cycle it can never leave, so
the cycle is replayed to the window limit without the model. The actions returned are exactly
those of the plain window-by-window loop; only the model calls are saved (tested against that
loop in ``tests/test_mctd.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agents.mdlm_agent import forbidden_first_actions
from envs.dynamics import RUNNING, simulate_plans
from envs.observation import place_agent, to_model_input
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import END

NOOP = 3  # `pickup`: a no-op for the dynamics, stands in for END and for rows that are done

Pose = tuple[int, int, int]


@dataclass(frozen=True)
class Window:
    """One decoded window: the ``[E]`` actions executed from a pose, the pose they lead to and
    the dynamics' status there (RUNNING, SUCCESS or FAILURE)."""

    actions: np.ndarray
    end: Pose
    status: int


class GreedyContinuation:
    """Continues plans in one layout with the greedy policy; one instance per search.

    Args:
        model: an ``MDLMPolicy`` in eval mode.
        layout: ``[W, H, 3]`` the grid without the agent.
        horizon: window length H the model decodes.
        steps: unmasking steps per window.
        execute: actions E of each window that are executed (at most H).
        max_windows: windows W per plan at most.
        generator: passed to the sampler (greedy decoding draws no noise from it).
    """

    def __init__(self, model: torch.nn.Module, layout: np.ndarray, horizon: int, steps: int, execute: int,
                 max_windows: int, generator: torch.Generator | None = None):
        self.model, self.layout, self.horizon, self.steps = model, layout, horizon, steps
        self.execute, self.max_windows, self.generator = min(execute, horizon), max_windows, generator
        self.device = next(model.parameters()).device
        self.windows: dict[Pose, Window] = {}
        self.model_calls = 0  # batched decodes run (sequential model calls)
        self.decoded = 0  # poses decoded (rows over all calls)

    def extend(self, poses: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Continue the rows of ``poses [K, 3]`` where ``live [K]`` is True.

        Returns ``[K, n * E]`` actions, ``n`` the most windows any row used (NOOP once a row
        reached the goal or lava, and for rows that were not live).
        """
        k, width, execute = len(poses), self.max_windows, self.execute
        out = np.full((k, width, execute), NOOP, dtype=np.int64)
        used = np.zeros(k, dtype=np.int64)
        pose: list[Pose] = [(int(x), int(y), int(d)) for x, y, d in np.asarray(poses).reshape(-1, 3)]
        started: list[dict[Pose, int]] = [{} for _ in range(k)]  # row -> {window start pose: window index}
        active = [r for r in range(k) if live[r]]
        while active:
            waiting = [r for r in active if self._advance(r, pose, started[r], out[r], used)]
            if not waiting:
                break
            self._decode(list(dict.fromkeys(pose[r] for r in waiting)))
            active = waiting
        return out[:, : int(used.max(initial=0))].reshape(k, -1)

    def _advance(self, row: int, pose: list[Pose], started: dict[Pose, int], out: np.ndarray,
                 used: np.ndarray) -> bool:
        """Replay known windows for ``row`` (``out [W, E]``); True if it waits for a decode."""
        while used[row] < self.max_windows:
            here = pose[row]
            if here in started:  # back at a window start: the same windows repeat forever
                first = started[here]
                period = used[row] - first
                for j in range(used[row], self.max_windows):
                    out[j] = out[first + (j - first) % period]
                used[row] = self.max_windows
                return False
            window = self.windows.get(here)
            if window is None:
                return True
            started[here] = int(used[row])
            out[used[row]] = window.actions
            used[row] += 1
            pose[row] = window.end
            if window.status != RUNNING:
                return False
        return False

    def _decode(self, poses: list[Pose]) -> None:
        """One batched greedy decode of a window from each of ``poses`` (distinct, new)."""
        arr = np.array(poses, dtype=np.int64)  # [R, 3]
        inputs = to_model_input(place_agent(self.layout, arr), arr[:, 2])
        forbid = torch.zeros(len(arr), self.horizon, int(self.model.config.num_actions), dtype=torch.bool)
        forbid[:, 0] = torch.from_numpy(np.stack([forbidden_first_actions(self.layout, p) for p in poses]))
        tokens = sample(self.model, inputs["grid"].to(self.device), inputs["direction"].to(self.device),
                        self.horizon, self.steps, forbid=forbid.to(self.device), generator=self.generator,
                        stop_after=self.execute)
        actions = tokens[:, : self.execute].cpu().numpy()
        actions = np.where(actions == END, NOOP, actions)  # [R, E]
        outcome = simulate_plans(self.layout, arr, actions)
        for i, p in enumerate(poses):
            end = outcome.final_pose[i]
            self.windows[p] = Window(actions[i], (int(end[0]), int(end[1]), int(end[2])), int(outcome.status[i]))
        self.model_calls += 1
        self.decoded += len(poses)
