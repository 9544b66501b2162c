"""The switches the ablation turns do what they say, the time budget and the partial-plan
fallback work, and no agent can reach the expert through its imports."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import agents.mctd.agent as agent_module
import agents.mctd.planner as planner_module
from agents.mctd import MCTDAgent, MCTDConfig, MCTDPlanner
from agents.mctd.agent import leads_somewhere_new
from agents.mctd.world import SearchWorld
from agents.mctd.scoring import plan_scores
from envs.dynamics import FORWARD, RUNNING, SUCCESS, simulate_plans, step
from envs.observation import layout_of
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from tests.models import perturbed_policy
from tests.worlds import make_layout, observe

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2)
ROOM = [(x, y) for x in range(1, 8) for y in range(1, 8)]


@pytest.fixture(scope="module")
def perturbed() -> MDLMPolicy:
    return perturbed_policy(TINY, seed=1)


def _search(model, layout, pose, **config):
    cfg = MCTDConfig(horizon=8, num_subplans=2, max_expansions=12, parallel=4, early_stop=False, **config)
    return MCTDPlanner(model, cfg, torch.Generator().manual_seed(0)).search(
        observe(layout, pose)["image"], layout, pose, max_steps=100)


# ----------------------------------------------------------------------------- ablation switches
def test_continuation_off_means_no_rollout_calls(perturbed):
    layout = make_layout(ROOM, goal=(7, 7))
    on = _search(perturbed, layout, (1, 1, 0), rollout_windows=4)
    off = _search(perturbed, layout, (1, 1, 0), rollout_windows=0)
    assert on.stats["rollout_calls"] > 0
    assert off.stats["rollout_calls"] == 0
    for node in off.root.iter_nodes():  # every plan is exactly the horizon: nothing was appended
        assert node.plan is None or len(node.plan) == 8


def test_shortcut_off_never_shortens(monkeypatch):
    perturbed = perturbed_policy(TINY, seed=4)  # one whose search reaches this goal with and without shortcut
    layout = make_layout(ROOM, goal=(2, 2))
    calls = []
    real = planner_module.shortcut_successes
    monkeypatch.setattr(planner_module, "shortcut_successes", lambda *a: calls.append(1) or real(*a))
    on = _search(perturbed, layout, (1, 1, 0), rollout_windows=4)
    assert on.found_goal and calls
    calls.clear()
    off = _search(perturbed, layout, (1, 1, 0), rollout_windows=4, shortcut=False)
    assert off.found_goal and not calls


def test_shortcut_running_cuts_the_loops_of_plans_that_end_alive():
    layout = make_layout(ROOM, goal=(7, 7))
    pose = (1, 1, 0)
    R, L, F = 1, 0, FORWARD
    plans = np.array([[F, F, R, R, F, F, L, L, F, R],  # out two cells and back, then one step: a loop
                      [R, F, F, F, F, F, L, F, F, F]])  # no loop
    outcome = simulate_plans(layout, pose, plans)
    assert (outcome.status == RUNNING).all()
    cut = planner_module.shortcut_running(plans, outcome)
    again = simulate_plans(layout, pose, cut)
    assert np.array_equal(again.final_pose[:, :2], outcome.final_pose[:, :2])  # same end cell
    first = [int(a) for a in cut[0] if a != planner_module.NOOP]
    assert first.count(FORWARD) == 1  # only the step that stayed, not the excursion
    assert np.array_equal(cut[1], plans[1])  # a loop-free plan is kept as it was
    goal = simulate_plans(make_layout(ROOM, goal=(3, 1)), pose, plans[:1])
    assert goal.status[0] == SUCCESS
    assert np.array_equal(planner_module.shortcut_running(plans[:1], goal), plans[:1])  # only running rows


def _cells_repeat(layout, pose, plan) -> bool:
    """Whether the path of ``plan`` (stored tokens, NOOP = -1) comes back to a cell it left."""
    actions = np.array([[int(a) for a in plan if 0 <= int(a) < 3]])
    out = simulate_plans(layout, pose, actions)
    cells = [tuple(p[:2]) for p in out.poses[0, : out.steps[0] + 1].tolist()]
    moves = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
    return len(set(moves)) < len(moves)


def test_cut_partial_stores_loop_free_partial_plans():
    perturbed = perturbed_policy(TINY, seed=6)  # one whose continuations walk back and forth here
    corridor = [(x, 1) for x in range(1, 10)] + [(5, y) for y in range(2, 6)]  # a T: no goal in reach
    layout = make_layout(corridor, goal=(17, 17))
    pose = (5, 1, 0)
    on = _search(perturbed, layout, pose, rollout_windows=4)
    off = _search(perturbed, layout, pose, rollout_windows=4, cut_partial=False)
    assert not on.found_goal and not off.found_goal
    plans = lambda result: [n.plan for n in result.root.iter_nodes()
                            if n.plan is not None and n.outcome[0] == RUNNING]
    assert any(_cells_repeat(layout, pose, p) for p in plans(off))  # the policy walks back and forth
    assert plans(on) and not any(_cells_repeat(layout, pose, p) for p in plans(on))


def test_cut_partial_keeps_the_loops_of_plans_that_show_nothing_new_without_them():
    layout = make_layout(ROOM, goal=(7, 7))
    pose = (1, 1, 0)
    R, L, F = 1, 0, FORWARD
    plans = np.array([[F, F, R, R, F, F, R, R, F, F]])  # out two cells, back, and out again: ends at (3, 1)
    world = SearchWorld(layout, pose)
    _, outcome = world.score(plans, 100, frozenset())
    cut = planner_module.cut_partial_plans(plans, outcome, world, 100, frozenset())
    assert [int(a) for a in cut[0] if a != planner_module.NOOP] == [F, F]  # new ground at its end: cut
    known = frozenset({(1, 1), (2, 1), (3, 1)})  # the loop-free path is all known ground: kept whole
    _, outcome = world.score(plans, 100, known)
    assert np.array_equal(planner_module.cut_partial_plans(plans, outcome, world, 100, known), plans)
    everything = planner_module.cut_partial_plans(plans, outcome, world, 100, None)  # no episode cells
    assert np.array_equal(everything, cut)


def test_leads_somewhere_new():
    corridor = [(x, 1) for x in range(1, 10)]
    layout = make_layout(corridor, goal=(17, 17))
    visited = {(x, 1) for x in range(1, 6)}
    assert leads_somewhere_new([FORWARD, FORWARD], layout, (4, 1, 0), visited)  # into (6, 1)
    assert not leads_somewhere_new([FORWARD], layout, (4, 1, 0), visited)  # (5, 1) is known
    assert not leads_somewhere_new([1, 1, FORWARD], layout, (4, 1, 0), visited)  # back west
    assert not leads_somewhere_new([], layout, (4, 1, 0), visited)


def test_commit_follows_the_chosen_partial_plan(monkeypatch):
    perturbed = perturbed_policy(TINY, seed=6)  # one whose partial plans run on past their first sub-plan
    corridor = [(x, 1) for x in range(1, 18)]
    layout = make_layout(corridor, goal=(17, 17))  # unreachable: every search falls back
    chosen = []
    real = agent_module.partial_plan_whole
    monkeypatch.setattr(agent_module, "partial_plan_whole", lambda *a: chosen.append(1) or real(*a))
    for commit in (True, False):
        agent = MCTDAgent(perturbed, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                          rollout_windows=4, fallback="plan", commit=commit)
        pose = (1, 1, 0)
        agent.reset(observe(layout, pose))
        chosen.clear()
        searches, followed = 0, 0
        for _ in range(30):
            before = list(agent._state.committed)
            obs = observe(layout, pose)
            planning = not agent._state.queue
            action = agent.act(obs)
            if planning:
                searches += 1
                if commit and before and leads_somewhere_new(before, layout, pose, agent._state.visited):
                    assert [action] + agent._state.queue == before[: len(agent._state.queue) + 1]
                    followed += 1
            pose = step(layout, pose, action)[0]
        assert not agent._state.last_search.found_goal
        if commit:
            assert followed >= 1 and len(chosen) < searches  # some searches kept the earlier plan
        else:
            assert not chosen and not agent._state.committed


def test_novelty_ranks_plans_into_new_cells_first():
    corridor = [(x, 1) for x in range(1, 10)]
    layout = make_layout(corridor, goal=(17, 17))  # unreachable: only partial plans
    pose = (5, 1, 0)
    east = np.array([[FORWARD] * 3])  # into cells 6..8
    west = np.array([[1, 1, FORWARD]])  # turn around, one step west into cell 4
    visited = {(x, 1) for x in range(1, 6)}  # the episode came from the west
    score_east, _ = plan_scores(layout, pose, east, 100, visited=visited)
    score_west, _ = plan_scores(layout, pose, west, 100, visited=visited)
    assert 0 < score_west[0] < score_east[0] < 0.1
    lava = make_layout(corridor, goal=(17, 17), lava=((6, 1),))
    dead, outcome = plan_scores(lava, pose, east, 100, visited=visited)
    assert dead[0] == 0.0


def test_partial_plan_fallback_executes_the_best_partial_plan(perturbed):
    corridor = [(x, 1) for x in range(1, 18)]
    layout = make_layout(corridor, goal=(17, 1))
    agent = MCTDAgent(perturbed, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3,
                      rollout_windows=0, fallback="plan", partial_score="novelty")
    obs = observe(layout, (1, 1, 0))
    agent.reset(obs)
    actions = agent.plan(obs)
    assert not agent.last_search.found_goal
    assert 1 <= len(actions) <= 4  # the first sub-plan of the best partial plan, not one policy step


# ----------------------------------------------------------------------------- time budget
def test_time_budget_stops_the_search_and_keeps_a_plan(perturbed):
    layout = make_layout(ROOM, goal=(7, 7))
    pose = (1, 1, 0)
    unlimited = _search(perturbed, layout, pose, rollout_windows=4)
    tic = time.perf_counter()
    cfg = MCTDConfig(horizon=8, num_subplans=2, max_expansions=10_000, parallel=4, early_stop=False,
                     rollout_windows=4, time_budget_ms=30.0)
    result = MCTDPlanner(perturbed, cfg, torch.Generator().manual_seed(0)).search(
        observe(layout, pose)["image"], layout, pose, max_steps=100)
    assert time.perf_counter() - tic < 2.0  # far below what 10,000 expansions take
    assert result.rounds >= 1 and result.best is not None
    assert result.expansions < 10_000 and unlimited.expansions == 12


def test_time_budget_must_be_positive():
    with pytest.raises(ValueError):
        MCTDConfig(time_budget_ms=0)
    with pytest.raises(ValueError):
        MCTDConfig(partial_score="bfs")


def test_stats_report_plan_ms_percentiles(perturbed):
    layout = make_layout(ROOM, goal=(7, 7))
    agent = MCTDAgent(perturbed, seed=0, horizon=8, num_subplans=2, max_expansions=4, parallel=2)
    pose = (1, 1, 0)
    agent.reset(observe(layout, pose))
    for _ in range(5):
        pose, status = step(layout, pose, agent.act(observe(layout, pose)))
        if status != RUNNING:
            break
    stats = agent.stats()
    assert 0 < stats["plan_ms_p50"] <= stats["plan_ms_p95"] <= stats["plan_ms_p99"]


# ----------------------------------------------------------------------------- no expert in agents
ORACLE = {"agents.baselines", "agents.registry"}  # the BFS oracle, and the factory that builds it
FORBIDDEN = {"envs.expert", "envs.collect"}
PROJECT = ("agents", "envs", "maze_mdlm")


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (function-level imports included),
    with the parent packages that importing them runs (``agents/__init__`` itself excluded: it
    is the public index that also exports the oracle)."""
    path = _module_file(name)
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PROJECT or _module_file(target) is None:
                continue
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    found.discard("agents")
    return found


def _closure(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_imports(module) - seen)
    return seen


def _agent_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "agents").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [n for n in names if n not in ORACLE and n != "agents"]


def test_the_import_graph_check_sees_the_oracle():
    assert "envs.expert" in _closure("agents.baselines")  # the check would catch a real import
    assert "envs.expert" in _closure("maze_mdlm.evaluation")


@pytest.mark.parametrize("module", _agent_modules())
def test_no_agent_module_imports_the_expert(module):
    reached = _closure(module)
    assert not reached & FORBIDDEN, f"{module} reaches {sorted(reached & FORBIDDEN)}"
    assert not reached & ORACLE, f"{module} reaches the oracle {sorted(reached & ORACLE)}"


# ----------------------------------------------------------------------------- CLI and benchmark
def test_rollout_mctd_time_budget_reports_percentiles(tmp_path, capsys):
    import json

    from maze_mdlm.cli import main

    report = tmp_path / "r.json"
    rc = main(["rollout", "--agent", "mctd", "--env", "MazeMDLM/Maze-19x19-v0", "--episodes", "1",
               "--time-budget-ms", "50", "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads(report.read_text())
    assert metrics["success_rate"] == 1.0
    assert 0 < metrics["plan_ms_p50"] <= metrics["plan_ms_p95"] <= metrics["plan_ms_p99"]
    for bad in (["--agent", "mdlm", "--time-budget-ms", "50"], ["--agent", "mctd", "--time-budget-ms", "0"]):
        assert main(["rollout", "--episodes", "1", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("maze-mdlm: error") or "usage:" in err or "error" in err


def test_rollout_mctd_escape_flag_reaches_the_planner(tmp_path, capsys):
    import json

    from maze_mdlm.cli import main

    report = tmp_path / "r.json"
    rc = main(["rollout", "--agent", "mctd", "--env", "MazeMDLM/Maze-19x19-v0", "--episodes", "1",
               "--rollout-escape", "1.0", "--json", str(report)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(report.read_text())["success_rate"] == 1.0
    for bad in (["--agent", "mdlm", "--rollout-escape", "1"], ["--agent", "mctd", "--rollout-escape", "0"],
                ["--agent", "mctd", "--rollout-escape", "-1"]):
        assert main(["rollout", "--episodes", "1", "--json", str(tmp_path / "bad.json"), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) >= 1 and "rollout-escape" in err
        assert not (tmp_path / "bad.json").exists()


def test_suite_benchmark_passes_the_escape_to_mctd():
    from benchmarks.suite import mctd_options

    assert mctd_options(None, None) is None
    assert mctd_options("plan", 0.5) == {"fallback": "plan", "rollout_escape": 0.5}
    assert mctd_options(None, 1.0) == {"rollout_escape": 1.0}


def test_ablation_tiny(tmp_path):
    from benchmarks import ablation

    rows = ablation.run(["MazeMDLM/LavaMaze-19x19-v0"], episodes=2, blocks=2,
                        rows=["bfs", "mctd tree only @1", "mctd full @1"])
    assert [r["row"] for r in rows] == ["bfs", "mctd tree only @1", "mctd full @1"]
    assert rows[0]["success"] == 1.0 and rows[0]["path_ratio"] == 1.0
    assert rows[1]["options"] == {"rollout_windows": 0, "shortcut": False, "cut_partial": False, "straighten": False,
                                  "max_expansions": 1, "parallel": 1}
    assert rows[2]["mean_expansions"] == 1.0 and rows[2]["decision_ms_p95"] >= rows[2]["decision_ms_p50"]
    md = ablation.to_markdown(rows)
    assert "## MazeMDLM/LavaMaze-19x19-v0" in md and "| bfs | 1.000 ± 0.000 | 1.000 ± 0.000 |" in md


def test_partial_plan_fallback_never_walks_into_lava_when_every_plan_dies():
    net = perturbed_policy(TINY, seed=2)
    with torch.no_grad():
        net.final.head.bias[FORWARD] = 50.0  # every plan is forward, forward, ...
    room = [(x, y) for x in range(1, 4) for y in range(1, 4)]
    layout = make_layout(room, goal=(3, 3), lava=((2, 1),))
    obs = observe(layout, (1, 1, 0))  # facing the lava
    agent = MCTDAgent(net, seed=0, horizon=8, num_subplans=2, max_expansions=6, parallel=3, rollout_windows=0)
    agent.reset(obs)
    action = agent.act(obs)
    assert not agent.last_search.found_goal
    assert step(layout, (1, 1, 0), action)[1] == RUNNING  # a safe policy step, not forward into lava
