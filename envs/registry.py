"""The one registry of supported tasks: every env id maze-mdlm runs, with its size, task and limit.

Supported are MiniGrid's static, fully observable tasks (the world changes only through the
agent's own actions) and our mazes. Every other MiniGrid id is refused with the reason given in
:data:`EXCLUDED`. Tests are driven by this table (dynamics match MiniGrid, the expert solves,
determinism), as in MiniGrid's own suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envs.tasks import FETCH, GOAL, GOTO, KINDS, OPEN, OPEN_SEQ, PICKUP, PUTNEAR


@dataclass(frozen=True)
class EnvSpec:
    """A supported env: gymnasium id, grid ``width × height``, task kind and MiniGrid's step limit."""

    env_id: str
    width: int
    height: int
    kind: int
    max_steps: int

    @property
    def size(self) -> int:
        """The side of the smallest square canvas the world fits on."""
        return max(self.width, self.height)

    @property
    def task_name(self) -> str:
        return KINDS[self.kind]


class UnsupportedEnvError(ValueError):
    """Raised for an env id the registry excludes or does not know."""


_TABLE: tuple[tuple[str, int, int, int, int], ...] = (
    # id, width, height, task kind, max_steps
    ("MazeMDLM/Maze-19x19-v0", 19, 19, GOAL, 722),
    ("MazeMDLM/BraidMaze-19x19-v0", 19, 19, GOAL, 722),
    ("MazeMDLM/LavaMaze-19x19-v0", 19, 19, GOAL, 722),
    ("MazeMDLM/Maze-25x25-v0", 25, 25, GOAL, 1250),
    ("MazeMDLM/BraidMaze-25x25-v0", 25, 25, GOAL, 1250),
    ("MazeMDLM/LavaMaze-25x25-v0", 25, 25, GOAL, 1250),
    ("MiniGrid-FourRooms-v0", 19, 19, GOAL, 100),
    ("MiniGrid-Empty-5x5-v0", 5, 5, GOAL, 100),
    ("MiniGrid-Empty-Random-5x5-v0", 5, 5, GOAL, 100),
    ("MiniGrid-Empty-6x6-v0", 6, 6, GOAL, 144),
    ("MiniGrid-Empty-Random-6x6-v0", 6, 6, GOAL, 144),
    ("MiniGrid-Empty-8x8-v0", 8, 8, GOAL, 256),
    ("MiniGrid-Empty-16x16-v0", 16, 16, GOAL, 1024),
    ("MiniGrid-LavaGapS5-v0", 5, 5, GOAL, 100),
    ("MiniGrid-LavaGapS6-v0", 6, 6, GOAL, 144),
    ("MiniGrid-LavaGapS7-v0", 7, 7, GOAL, 196),
    ("MiniGrid-LavaCrossingS9N1-v0", 9, 9, GOAL, 324),
    ("MiniGrid-LavaCrossingS9N2-v0", 9, 9, GOAL, 324),
    ("MiniGrid-LavaCrossingS9N3-v0", 9, 9, GOAL, 324),
    ("MiniGrid-LavaCrossingS11N5-v0", 11, 11, GOAL, 484),
    ("MiniGrid-SimpleCrossingS9N1-v0", 9, 9, GOAL, 324),
    ("MiniGrid-SimpleCrossingS9N2-v0", 9, 9, GOAL, 324),
    ("MiniGrid-SimpleCrossingS9N3-v0", 9, 9, GOAL, 324),
    ("MiniGrid-SimpleCrossingS11N5-v0", 11, 11, GOAL, 484),
    ("MiniGrid-DistShift1-v0", 9, 7, GOAL, 252),
    ("MiniGrid-DistShift2-v0", 9, 7, GOAL, 252),
    ("MiniGrid-DoorKey-5x5-v0", 5, 5, GOAL, 250),
    ("MiniGrid-DoorKey-6x6-v0", 6, 6, GOAL, 360),
    ("MiniGrid-DoorKey-8x8-v0", 8, 8, GOAL, 640),
    ("MiniGrid-DoorKey-16x16-v0", 16, 16, GOAL, 2560),
    ("MiniGrid-MultiRoom-N2-S4-v0", 25, 25, GOAL, 40),
    ("MiniGrid-MultiRoom-N4-S5-v0", 25, 25, GOAL, 120),
    ("MiniGrid-MultiRoom-N4-S5-v1", 25, 25, GOAL, 80),
    ("MiniGrid-MultiRoom-N6-v0", 25, 25, GOAL, 120),
    ("MiniGrid-LockedRoom-v0", 19, 19, GOAL, 190),
    ("MiniGrid-Unlock-v0", 11, 6, OPEN, 288),
    ("MiniGrid-UnlockPickup-v0", 11, 6, PICKUP, 288),
    ("MiniGrid-BlockedUnlockPickup-v0", 11, 6, PICKUP, 576),
    ("MiniGrid-KeyCorridorS3R1-v0", 7, 3, PICKUP, 270),
    ("MiniGrid-KeyCorridorS3R2-v0", 7, 5, PICKUP, 270),
    ("MiniGrid-KeyCorridorS3R3-v0", 7, 7, PICKUP, 270),
    ("MiniGrid-KeyCorridorS4R3-v0", 10, 10, PICKUP, 480),
    ("MiniGrid-KeyCorridorS5R3-v0", 13, 13, PICKUP, 750),
    ("MiniGrid-KeyCorridorS6R3-v0", 16, 16, PICKUP, 1080),
    ("MiniGrid-ObstructedMaze-1Dl-v0", 11, 6, PICKUP, 288),
    ("MiniGrid-ObstructedMaze-1Dlh-v0", 11, 6, PICKUP, 288),
    ("MiniGrid-ObstructedMaze-1Dlhb-v0", 11, 6, PICKUP, 288),
    ("MiniGrid-ObstructedMaze-2Dl-v0", 16, 16, PICKUP, 576),
    ("MiniGrid-ObstructedMaze-2Dlh-v0", 16, 16, PICKUP, 576),
    ("MiniGrid-ObstructedMaze-2Dlhb-v0", 16, 16, PICKUP, 576),
    ("MiniGrid-ObstructedMaze-2Dlhb-v1", 16, 16, PICKUP, 576),
    ("MiniGrid-ObstructedMaze-1Q-v0", 16, 16, PICKUP, 720),
    ("MiniGrid-ObstructedMaze-1Q-v1", 16, 16, PICKUP, 720),
    ("MiniGrid-ObstructedMaze-2Q-v0", 16, 16, PICKUP, 1584),
    ("MiniGrid-ObstructedMaze-2Q-v1", 16, 16, PICKUP, 1584),
    ("MiniGrid-ObstructedMaze-Full-v0", 16, 16, PICKUP, 3600),
    ("MiniGrid-ObstructedMaze-Full-v1", 16, 16, PICKUP, 3600),
    ("MiniGrid-Fetch-5x5-N2-v0", 5, 5, FETCH, 125),
    ("MiniGrid-Fetch-6x6-N2-v0", 6, 6, FETCH, 180),
    ("MiniGrid-Fetch-8x8-N3-v0", 8, 8, FETCH, 320),
    ("MiniGrid-GoToDoor-5x5-v0", 5, 5, GOTO, 100),
    ("MiniGrid-GoToDoor-6x6-v0", 6, 6, GOTO, 144),
    ("MiniGrid-GoToDoor-8x8-v0", 8, 8, GOTO, 256),
    ("MiniGrid-GoToObject-6x6-N2-v0", 6, 6, GOTO, 180),
    ("MiniGrid-GoToObject-8x8-N2-v0", 8, 8, GOTO, 320),
    ("MiniGrid-PutNear-6x6-N2-v0", 6, 6, PUTNEAR, 30),
    ("MiniGrid-PutNear-8x8-N3-v0", 8, 8, PUTNEAR, 40),
    ("MiniGrid-RedBlueDoors-6x6-v0", 12, 6, OPEN_SEQ, 720),
    ("MiniGrid-RedBlueDoors-8x8-v0", 16, 8, OPEN_SEQ, 1280),
)

SUPPORTED: dict[str, EnvSpec] = {row[0]: EnvSpec(*row) for row in _TABLE}

# Ids (as regular expressions) that are refused, with the reason given to the user
EXCLUDED: tuple[tuple[str, str], ...] = (
    (r"MiniGrid-Dynamic-Obstacles-.*", "its obstacles move on their own every step; maze-mdlm plans in "
     "static worlds (a planner on stale observations would be wrong)"),
    (r"MiniGrid-Memory.*", "a memory task by design: the cue is seen once and must be remembered, "
     "which a full-grid observation gives away"),
    (r"MiniGrid-Playground-v0", "it has no task (empty mission, no reward)"),
    (r"MiniGrid-WFC-.*", "the minigrid 3.2 wheel ships without the WFC pattern images "
     "(minigrid/envs/wfc/patterns/*.png), so these envs cannot reset even with minigrid[wfc]"),
    (r"BabyAI-.*", "BabyAI levels use compositional language missions (sequences, 'after you', "
     "locations) beyond the task forms of envs.tasks"),
)


def lookup(env_id: str) -> EnvSpec:
    """The registry entry of ``env_id``.

    Raises:
        UnsupportedEnvError: for an excluded id (with its reason) or one the registry lacks.
    """
    spec = SUPPORTED.get(env_id)
    if spec is not None:
        return spec
    for pattern, reason in EXCLUDED:
        if re.fullmatch(pattern, env_id):
            raise UnsupportedEnvError(f"{env_id} is not supported: {reason}")
    raise UnsupportedEnvError(f"{env_id} is not in maze-mdlm's registry of supported envs (envs.registry)")


def is_static(env_id: str | None) -> bool:
    """Whether ``env_id`` is a registered static world (its grid changes only by the agent)."""
    return env_id in SUPPORTED
