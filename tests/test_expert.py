"""The BFS expert: optimal, never enters lava, and its plans work in the real env."""

from __future__ import annotations

import heapq
import itertools

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

import envs  # noqa: F401  (registers the maze)
from envs import FOURROOMS_ID, MAZE_ID
from envs.expert import UNSOLVABLE, ExpertPlan, solve, solve_networkx
from envs.observation import encode_env, layout_of
from envs.world import FORWARD, PICKUP_ACTION, TOGGLE

LEFT, RIGHT, FORWARD = 0, 1, 2
# direction -> (dx, dy), MiniGrid's convention: 0 east, 1 south, 2 west, 3 north
HEADING = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}
TILES = {
    "#": (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0),
    ".": (OBJECT_TO_IDX["empty"], 0, 0),
    "G": (OBJECT_TO_IDX["goal"], COLOR_TO_IDX["green"], 0),
    "L": (OBJECT_TO_IDX["lava"], COLOR_TO_IDX["red"], 0),
    "o": (OBJECT_TO_IDX["door"], COLOR_TO_IDX["blue"], STATE_TO_IDX["open"]),
    "c": (OBJECT_TO_IDX["door"], COLOR_TO_IDX["blue"], STATE_TO_IDX["closed"]),
    "k": (OBJECT_TO_IDX["key"], COLOR_TO_IDX["yellow"], 0),
}


def grid(*rows: str) -> np.ndarray:
    """A layout ``[W, H, 3]`` from text rows (row = y, column = x)."""
    layout = np.zeros((len(rows[0]), len(rows), 3), dtype=np.uint8)
    for y, row in enumerate(rows):
        assert len(row) == len(rows[0])
        for x, ch in enumerate(row):
            layout[x, y] = TILES[ch]
    return layout


def _enterable(layout: np.ndarray, x: int, y: int) -> bool:
    """Independent rule: the expert may stand on empty, floor, goal and open doors (never lava)."""
    if not (0 <= x < layout.shape[0] and 0 <= y < layout.shape[1]):
        return False
    obj, _, state = (int(v) for v in layout[x, y])
    names = {v: k for k, v in OBJECT_TO_IDX.items()}
    name = names[obj]
    return name in ("empty", "floor", "goal") or (name == "door" and state == STATE_TO_IDX["open"])


def _apply(layout: np.ndarray, pose: tuple[int, int, int], action: int) -> tuple[int, int, int]:
    x, y, d = pose
    if action == LEFT:
        return x, y, (d + 3) % 4
    if action == RIGHT:
        return x, y, (d + 1) % 4
    dx, dy = HEADING[d]
    return (x + dx, y + dy, d) if _enterable(layout, x + dx, y + dy) else pose


def _is_goal(layout: np.ndarray, pose) -> bool:
    return int(layout[pose[0], pose[1], 0]) == OBJECT_TO_IDX["goal"]


def reference_distance(layout: np.ndarray, pose: tuple[int, int, int]) -> int | None:
    """Dijkstra (unit costs, heap-ordered) over (x, y, d); ``None`` when no goal is reachable."""
    start = tuple(int(v) for v in pose)
    best = {start: 0}
    heap = [(0, start)]
    while heap:
        cost, state = heapq.heappop(heap)
        if cost > best[state]:
            continue
        if _is_goal(layout, state):
            return cost
        for action in (RIGHT, FORWARD, LEFT):
            nxt = _apply(layout, state, action)
            if cost + 1 < best.get(nxt, 1 << 30):
                best[nxt] = cost + 1
                heapq.heappush(heap, (cost + 1, nxt))
    return None


def brute_force_distance(layout: np.ndarray, pose, max_len: int) -> int | None:
    """Try every action sequence of length 0, 1, 2, ... (tiny grids only)."""
    for length in range(max_len + 1):
        for seq in itertools.product((LEFT, RIGHT, FORWARD), repeat=length):
            p = tuple(pose)
            for a in seq:
                p = _apply(layout, p, a)
            if _is_goal(layout, p):
                return length
    return None


def execute(layout: np.ndarray, pose, actions) -> tuple[int, int, int]:
    """Run a plan with the independent rule; asserts it never stalls, never enters lava."""
    p = tuple(pose)
    for a in actions:
        assert a in (LEFT, RIGHT, FORWARD)
        nxt = _apply(layout, p, a)
        if a == FORWARD:
            assert nxt != p, "the plan bumps into something"
        assert int(layout[nxt[0], nxt[1], 0]) != OBJECT_TO_IDX["lava"]
        p = nxt
    return p


def assert_optimal(layout: np.ndarray, pose, expected: int | None = None, brute: bool = False) -> ExpertPlan:
    plan = solve(layout, pose)
    ref = reference_distance(layout, pose)
    if expected is not None or ref is None:
        assert ref == expected
    if ref is None:
        assert plan == UNSOLVABLE and plan.actions == () and len(plan) == 0
        assert solve_networkx(layout, pose) == UNSOLVABLE
        return plan
    assert plan.solvable and len(plan) == ref
    assert _is_goal(layout, execute(layout, pose, plan.actions))
    # and no earlier prefix already stood on the goal
    p = tuple(pose)
    for a in plan.actions[:-1]:
        p = _apply(layout, p, a)
        assert not _is_goal(layout, p)
    other = solve_networkx(layout, pose)
    assert other.solvable and len(other) == ref
    assert _is_goal(layout, execute(layout, pose, other.actions))
    if brute:
        assert brute_force_distance(layout, pose, ref) == ref
    return plan


# --------------------------------------------------------------------------- hand-made grids
CORRIDOR = grid(
    "##########",
    "#G.......#",
    "##########",
)


@pytest.mark.parametrize(
    "direction, expected",
    [(2, 7), (1, 8), (3, 8), (0, 9)],  # facing the goal / sideways / away: turns matter
)
def test_corridor(direction, expected):
    plan = assert_optimal(CORRIDOR, (8, 1, direction), expected)
    assert plan.actions.count(FORWARD) == 7


def test_tiny_grids_against_brute_force():
    room = grid(
        "#####",
        "#...#",
        "#.#G#",
        "#...#",
        "#####",
    )
    for d in range(4):
        assert_optimal(room, (1, 1, d), brute=True)
        assert_optimal(room, (1, 3, d), brute=True)
    hook = grid(
        "######",
        "#....#",
        "#.##.#",
        "#G##.#",
        "######",
    )
    assert_optimal(hook, (4, 3, 3), expected=9, brute=True)
    for d in range(4):
        assert_optimal(hook, (4, 3, d))


def test_turns_are_counted_not_just_cells():
    """In an open room, the L-shaped route (one turn) beats any staircase."""
    room = grid(
        "######",
        "#....#",
        "#....#",
        "#....#",
        "#...G#",
        "######",
    )
    plan = assert_optimal(room, (1, 1, 0), expected=7)
    assert plan.actions.count(FORWARD) == 6 and len(plan) == 7
    # two routes around a block, with different numbers of cells and turns
    detour = grid(
        "#######",
        "#.....#",
        "#.###.#",
        "#.#G..#",
        "#######",
    )
    assert_optimal(detour, (1, 1, 0))
    assert_optimal(detour, (1, 1, 1))


def test_ties_are_broken_left_first_and_deterministically():
    room = grid(
        "#####",
        "#...#",
        "#G..#",
        "#...#",
        "#####",
    )
    # goal directly behind: left-left-forward and right-right-forward tie; left wins
    assert solve(room, (2, 2, 0)).actions == (LEFT, LEFT, FORWARD)
    assert solve(room, (2, 2, 0)) == solve(room, (2, 2, 0))


def test_adjacent_goal_and_nearest_of_several_goals():
    assert solve(CORRIDOR, (2, 1, 2)).actions == (FORWARD,)
    two_goals = grid(
        "##########",
        "#G......G#",
        "##########",
    )
    assert assert_optimal(two_goals, (6, 1, 0), expected=2).actions == (FORWARD, FORWARD)
    assert_optimal(two_goals, (3, 1, 0), expected=4)  # turning back to x = 1 beats 5 steps ahead


def test_unreachable_goal_is_unsolvable():
    walled = grid(
        "#######",
        "#...#G#",
        "#...###",
        "#######",
    )
    plan = assert_optimal(walled, (1, 1, 0), expected=None)
    assert plan.solvable is False and plan.actions == ()
    no_goal = grid(
        "#####",
        "#...#",
        "#####",
    )
    assert solve(no_goal, (1, 1, 0)) == UNSOLVABLE


def test_lava_on_the_only_path_makes_it_unsolvable():
    blocked = grid(
        "#######",
        "#..L.G#",
        "#######",
    )
    assert assert_optimal(blocked, (1, 1, 0), expected=None).solvable is False
    # with a safe (longer) detour, the expert takes it
    detour = grid(
        "#######",
        "#..L.G#",
        "#.....#",
        "#######",
    )
    plan = assert_optimal(detour, (1, 1, 0), expected=9)
    assert (3, 1) not in _cells_visited(detour, (1, 1, 0), plan.actions)


def test_doors_and_objects():
    doors = grid(
        "#######",
        "#..o.G#",
        "#..c..#",
        "#######",
    )
    assert_optimal(doors, (1, 1, 0), expected=4)
    closed = grid(
        "#######",
        "#..c.G#",
        "#..k..#",
        "#######",
    )
    # under MiniGrid's full rules the closed door is toggled open (the key is not needed):
    # forward, toggle, forward x3 into the goal
    plan = solve(closed, (1, 1, 0))
    assert plan.actions == (FORWARD, TOGGLE, FORWARD, FORWARD, FORWARD)


def _cells_visited(layout, pose, actions):
    p, cells = tuple(pose), {tuple(pose[:2])}
    for a in actions:
        p = _apply(layout, p, a)
        cells.add(p[:2])
    return cells


# --------------------------------------------------------------------------- real env layouts
def _pose(env) -> tuple[int, int, int]:
    base = env.unwrapped
    return int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir)


@pytest.mark.parametrize(
    "env_id",
    [FOURROOMS_ID, MAZE_ID, "MiniGrid-LavaCrossingS9N1-v0", "MiniGrid-SimpleCrossingS9N1-v0",
     "MiniGrid-Empty-8x8-v0"],
)
def test_expert_is_optimal_and_works_in_the_real_env(env_id):
    env = gym.make(env_id)
    for seed in range(5):
        env.reset(seed=seed)
        layout, pose = layout_of(encode_env(env)["image"]), _pose(env)
        plan = assert_optimal(layout, pose)
        assert plan.solvable
        for t, a in enumerate(plan.actions):
            _, reward, terminated, truncated, _ = env.step(a)
            last = t == len(plan) - 1
            assert terminated == last, f"seed {seed}: terminated at step {t + 1} of {len(plan)}"
            assert not truncated
        assert reward > 0 and tuple(env.unwrapped.agent_pos) == tuple(np.argwhere(layout[:, :, 0] == OBJECT_TO_IDX["goal"])[0])
    env.close()


def test_locked_door_env_is_solved_with_key_and_door():
    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    layout = layout_of(encode_env(env)["image"])
    plan = solve(layout, _pose(env))
    assert plan.solvable and PICKUP_ACTION in plan.actions and TOGGLE in plan.actions
    assert reference_distance(layout, _pose(env)) is None
    env.close()


def test_expert_plan_type():
    plan = solve(CORRIDOR, (8, 1, 2))
    assert isinstance(plan, ExpertPlan) and isinstance(plan.actions, tuple)
    assert all(isinstance(a, int) for a in plan.actions)
    with pytest.raises(AttributeError):
        plan.solvable = False  # frozen


# --------------------------------------------------------------------------- provably unsolvable
def _locked_corridor(key_cell=None, box_cell=None):
    """Corridor y=1, x=1..6: the start at (1, 1) facing east, a locked yellow door at (4, 1), the
    goal at (6, 1); optionally a yellow key lying at ``key_cell`` or closed in a box at ``box_cell``."""
    from envs.world import BOX, DOOR, KEY, LOCKED_STATE, NOTHING, WorldState

    layout = grid("########", "#......#", "########")
    yellow = COLOR_TO_IDX["yellow"]
    layout[4, 1] = (DOOR, yellow, LOCKED_STATE)
    layout[6, 1] = TILES["G"]
    boxes = ()
    if key_cell is not None:
        layout[key_cell] = (KEY, yellow, 0)
    if box_cell is not None:
        layout[box_cell] = (BOX, COLOR_TO_IDX["red"], 0)
        boxes = ((box_cell, (KEY, yellow, 0)),)
    return WorldState(layout, (1, 1, 0), NOTHING, boxes)


def test_a_locked_door_whose_key_exists_nowhere_is_proved_unsolvable_at_once():
    from envs.expert import provably_unsolvable, solve_state

    no_key = _locked_corridor()
    assert provably_unsolvable(no_key)
    assert solve_state(no_key) == UNSOLVABLE and solve_state(no_key).expansions == 0
    behind = _locked_corridor(key_cell=(5, 1))  # the key lies behind the door it opens
    assert provably_unsolvable(behind) and not solve_state(behind).solvable
    for reachable in (_locked_corridor(key_cell=(2, 1)), _locked_corridor(box_cell=(2, 1))):
        assert not provably_unsolvable(reachable)
        plan = solve_state(reachable)
        assert plan.solvable and TOGGLE in plan.actions
    from envs.world import BOX, KEY, WorldState

    yellow_key = (KEY, COLOR_TO_IDX["yellow"], 0)
    held = WorldState(no_key.layout, no_key.pose, yellow_key)
    in_carried_box = WorldState(no_key.layout, no_key.pose, (BOX, COLOR_TO_IDX["red"], 0), (("carried", yellow_key),))
    assert not provably_unsolvable(held) and solve_state(held).solvable
    assert not provably_unsolvable(in_carried_box) and solve_state(in_carried_box).solvable


def test_a_pickup_target_behind_a_door_without_its_key_is_proved_unsolvable():
    from envs.expert import provably_unsolvable
    from envs.tasks import PICKUP, Task
    from envs.world import BALL, WorldState

    world = _locked_corridor()
    layout = world.layout.copy()
    layout[6, 1] = (BALL, COLOR_TO_IDX["blue"], 0)  # the goal square becomes the ball to pick up
    task = Task(PICKUP, (BALL, COLOR_TO_IDX["blue"])).bind(layout)
    assert provably_unsolvable(WorldState(layout, world.pose), task)
    layout[2, 1] = (BALL, COLOR_TO_IDX["blue"], 0)  # a second one in reach
    assert not provably_unsolvable(WorldState(layout, world.pose), task)


def test_provably_unsolvable_never_rules_out_a_world_the_full_search_solves(monkeypatch):
    """Random small worlds of locked doors, keys, boxes and balls: whenever the relaxation says
    unsolvable, the full search (the check switched off) finds no plan either."""
    import envs.expert as expert
    from envs.world import BALL, BOX, DOOR, KEY, LOCKED_STATE, NOTHING, WorldState

    rng = np.random.default_rng(0)
    colors = [COLOR_TO_IDX[c] for c in ("yellow", "red")]
    proved = 0
    for _ in range(60):
        layout = grid("#########", "#.......#", "#.......#", "#########")
        layout[4, 1], layout[4, 2] = TILES["#"], (DOOR, int(rng.choice(colors)), LOCKED_STATE)
        layout[7, 1] = TILES["G"]
        boxes = []
        for cell in map(tuple, rng.permutation([(2, 1), (3, 2), (5, 1), (6, 2), (1, 2)])[: rng.integers(0, 3)]):
            kind = rng.integers(3)
            if kind == 0:
                layout[cell] = (KEY, int(rng.choice(colors)), 0)
            elif kind == 1:
                layout[cell] = (BOX, COLOR_TO_IDX["grey"], 0)
                boxes.append((cell, (KEY, int(rng.choice(colors)), 0) if rng.random() < 0.7 else NOTHING))
            else:
                layout[cell] = (BALL, COLOR_TO_IDX["green"], 0)
        state = WorldState(layout, (1, 1, 0), NOTHING, tuple(sorted(boxes, key=str)))
        if expert.provably_unsolvable(state):
            proved += 1
            monkeypatch.setattr(expert, "provably_unsolvable", lambda *a: False)
            assert not expert.solve_state(state).solvable
            monkeypatch.undo()
    assert 5 <= proved <= 55  # both answers occur


@pytest.mark.parametrize("env_id", ["MiniGrid-ObstructedMaze-2Dlhb-v0", "MiniGrid-ObstructedMaze-1Q-v0",
                                    "MiniGrid-ObstructedMaze-2Q-v0"])
def test_obstructedmaze_v0_seeds_that_lost_a_key_are_proved_unsolvable(env_id):
    """MiniGrid's v0 generator can drop a blocking ball onto the box that held a key; seed
    1,000,011 (held out) is such a start on all three ids, 1,000,000 is not."""
    from envs.collect import make_env
    from envs.expert import provably_unsolvable
    from envs.tasks import parse_mission
    from envs.world import DOOR, KEY, LOCKED_STATE, state_from_env

    env = make_env(env_id)
    for seed, lost in ((1_000_011, True), (1_000_000, False)):
        env.reset(seed=seed)
        state = state_from_env(env)
        task = parse_mission(env.unwrapped.mission).bind(state.layout)
        locked = set(state.layout[:, :, 1][(state.layout[:, :, 0] == DOOR) & (state.layout[:, :, 2] == LOCKED_STATE)].tolist())
        keys = set(state.layout[:, :, 1][state.layout[:, :, 0] == KEY].tolist()) | {c[1] for _, c in state.boxes if c[0] == KEY}
        assert (not locked <= keys) == lost  # independent: some locked door's colour has no key anywhere
        assert provably_unsolvable(state, task) == lost
    env.close()
