"""Pictures: plans drawn on frames, the MCTD search tree, the plan attributes agents expose."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import BFSAgent
from agents.mctd import MCTDAgent
from agents.mdlm_agent import MDLMAgent
from envs import FOURROOMS_ID, MAZE_ID
from envs.collect import make_env
from envs.dynamics import FORWARD, LEFT, RIGHT, step
from envs.observation import EMPTY_CELL, WALL_CELL, FullGridObsWrapper, agent_pose, layout_of
from maze_mdlm.cli import main
from maze_mdlm.evaluation import evaluate, plan_view
from maze_mdlm.pictures import CANDIDATE_COLOR, PLAN_COLOR, plan_cells

SEED = 1_000_002  # a FourRooms seed whose first MCTD search keeps several distinct candidates


def _open_room(size: int = 7) -> np.ndarray:
    layout = np.empty((19, 19, 3), dtype=np.uint8)
    layout[:] = WALL_CELL
    layout[1 : size - 1, 1 : size - 1] = EMPTY_CELL
    return layout


def _amber(image: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels close to the plan colour."""
    return (np.abs(image.astype(int) - np.array(PLAN_COLOR[:3])) < 40).all(axis=-1)


def test_plan_cells_follow_the_dynamics():
    layout = _open_room()
    # facing right (0) from (1, 1): forward, forward, right (now down), forward, then into nothing
    paths = plan_cells(layout, (1, 1, 0), [[FORWARD, FORWARD, RIGHT, FORWARD], [LEFT, LEFT, FORWARD], []])
    assert paths[0] == [(1, 1), (2, 1), (3, 1), (3, 2)]
    assert paths[1] == [(1, 1)]  # turned around and bumped into the wall at (0, 1)
    assert paths[2] == [(1, 1)]


def test_draw_plans_draws_only_along_the_path():
    from maze_mdlm.pictures import draw_plans

    frame = np.zeros((19 * 8, 19 * 8, 3), dtype=np.uint8)
    view = {"plan": [FORWARD, FORWARD, FORWARD], "candidates": [[RIGHT, FORWARD, FORWARD]], "candidates_pose": None}
    out = draw_plans(frame, _open_room(), (1, 1, 0), view, tile=8)
    assert out.shape == frame.shape and out.dtype == np.uint8
    amber = _amber(out)
    assert amber[1 * 8 + 4, 2 * 8 + 4] and amber[1 * 8 + 4, 3 * 8 + 4]  # cells (2, 1), (3, 1): [row y, column x]
    assert not amber[10 * 8 + 4, 10 * 8 + 4]  # far away
    blue = (out[..., 2] > 60) & (out[..., 0] < out[..., 2])  # the faded candidate, going down from (1, 1)
    assert blue[3 * 8 + 4, 1 * 8 + 4] and not blue[10 * 8 + 4, 10 * 8 + 4]
    assert CANDIDATE_COLOR[3] < PLAN_COLOR[3]  # candidates are fainter than the chosen plan


def test_agents_expose_the_plan_they_act_on():
    env = FullGridObsWrapper(make_env(FOURROOMS_ID))
    obs, info = env.reset(seed=SEED)
    image = obs["image"]
    layout, pose = layout_of(image), (*agent_pose(image)[:2], int(obs["direction"]))

    bfs = BFSAgent()
    bfs.reset(obs, info)
    action = bfs.act(obs)
    assert bfs.last_plan[0] == action and plan_cells(layout, pose, [bfs.last_plan])[0][-1] == tuple(
        np.argwhere(layout[:, :, 0] == 8)[0])  # the whole optimal plan, ending on the goal

    mdlm = MDLMAgent.from_checkpoint(full_plans=True)
    mdlm.reset(obs, info)
    action = mdlm.act(obs)
    assert mdlm.last_plan[0] == action and len(mdlm.last_plan) > 1  # a whole plan, not just the executed action

    mctd = MCTDAgent.from_checkpoint(seed=5)
    mctd.seed_episode(SEED)
    mctd.reset(obs, info)
    action = mctd.act(obs)
    assert mctd.last_plan[0] == action and mctd.last_search_pose == pose
    assert len(mctd.last_candidates) >= 1 and mctd.last_plan not in mctd.last_candidates
    view = plan_view(mctd)
    assert view["plan"] == mctd.last_plan and view["candidates_pose"] == pose
    # the queued plan is followed: after one step, last_plan is the rest of it
    queued = list(mctd.last_plan)
    obs, *_ = env.step(action)
    assert mctd.act(obs) == queued[1] and mctd.last_plan == queued[1:]
    env.close()


def test_full_plans_leave_greedy_episodes_unchanged():
    plain = evaluate(MDLMAgent.from_checkpoint(env_id=MAZE_ID), MAZE_ID, 3, 1_000_000, batch_envs=3)
    full = evaluate(MDLMAgent.from_checkpoint(env_id=MAZE_ID, full_plans=True), MAZE_ID, 3, 1_000_000, batch_envs=3)
    assert plain["per_episode"] == full["per_episode"]


def test_rollout_render_draws_the_plan_and_the_tree(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    gif, tree = tmp_path / "m.gif", tmp_path / "t.png"
    rc = main(["rollout", "--agent", "mctd", "--episodes", "1", "--seed", str(SEED), "--render", str(gif),
               "--render-tree", str(tree)])
    assert rc == 0, capsys.readouterr().err
    with pil.open(gif) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    assert _amber(frames[0]).sum() > 500  # the chosen plan, start to goal
    assert _amber(frames[-2]).sum() < _amber(frames[0]).sum()  # less of it left near the end
    assert _amber(frames[-1]).sum() == 0  # the final frame has no plan
    with pil.open(tree) as image:
        assert image.format == "PNG" and image.size[0] > 1000
        pixels = np.asarray(image.convert("RGB"))
    green = (pixels == (0, 150, 60)).all(axis=-1)  # the winning path
    assert green.sum() > 200 and _amber(pixels).sum() > 500  # and the first frame with the chosen plan
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gif", "t.png"]


def test_draw_search_tree_marks_the_winner():
    pytest.importorskip("PIL")
    from maze_mdlm.pictures import draw_search_tree

    env = FullGridObsWrapper(make_env(FOURROOMS_ID))
    obs, _ = env.reset(seed=SEED)
    env.close()
    agent = MCTDAgent.from_checkpoint(seed=0, max_expansions=6, parallel=3)
    agent.plan(obs)
    result = agent.last_search
    image = draw_search_tree(result, ["w=1", "w=2", "w=0.5"], "title")
    pixels = np.asarray(image)
    assert (pixels == (0, 150, 60)).all(axis=-1).sum() > 100
    nodes = sum(1 for n in result.root.iter_nodes())
    assert nodes == 7 and image.size[1] > 200  # root + 6 expansions


def test_step_is_what_plan_cells_uses():
    """plan_cells and the single-step dynamics agree on a random walk."""
    layout = _open_room(9)
    rng = np.random.default_rng(0)
    plan = [int(a) for a in rng.choice([LEFT, RIGHT, FORWARD], size=30)]
    pose, cells = (3, 3, 1), [(3, 3)]
    for action in plan:
        pose, _ = step(layout, pose, action)
        if pose[:2] != cells[-1]:
            cells.append(pose[:2])
    assert plan_cells(layout, (3, 3, 1), [plan])[0] == cells


def test_plans_with_keys_and_doors_follow_the_full_rules():
    """On DoorKey the expert's plan picks up the key and opens the door: drawn with the
    observation's carrying and task, it reaches the goal; the navigation fast path stops early."""
    env = FullGridObsWrapper(make_env("MiniGrid-DoorKey-5x5-v0"))
    obs, info = env.reset(seed=SEED)
    env.close()
    bfs = BFSAgent()
    bfs.reset(obs, info)
    bfs.act(obs)
    image = obs["image"]
    layout, pose = layout_of(image), (*agent_pose(image)[:2], int(obs["direction"]))
    goal = tuple(int(v) for v in np.argwhere(layout[:, :, 0] == 8)[0])
    full = plan_cells(layout, pose, [bfs.last_plan], carrying=obs["carrying"], task=obs["task"])[0]
    fast = plan_cells(layout, pose, [bfs.last_plan])[0]
    assert full[-1] == goal and fast[-1] != goal
