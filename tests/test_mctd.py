"""MCTD: tree invariants, batched denoising, scoring, search with an untrained denoiser,
closed-loop behaviour, reproducibility, and the benchmark (tiny call)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents.mctd.agent as agent_module
import envs.expert
from agents.mctd import MCTDAgent, MCTDConfig, MCTDPlanner
from agents.mctd.planner import choose_actions
from agents.mctd.scoring import plan_scores
from maze_mdlm.sampler import guided_logits, unmask
from agents.mctd.tree import (
    MASK,
    add_placeholder,
    backup,
    check_invariants,
    new_root,
    select_expansion,
    subplan_bounds,
    uct_score,
)
from envs.dynamics import FAILURE, RUNNING, SUCCESS, step
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import END
from tests.models import perturbed_policy
from tests.worlds import CORRIDOR, CORRIDOR_START, make_layout, observe

TINY = ModelConfig(hidden_dim=32, num_layers=1, num_heads=2)


@pytest.fixture(scope="module")
def untrained() -> MDLMPolicy:
    """A freshly initialised tiny denoiser: adaLN-Zero makes its logits all zero, so it knows
    nothing about mazes (sampling is uniform, greedy always says `left`)."""
    torch.manual_seed(0)
    return MDLMPolicy(TINY).eval()


@pytest.fixture(scope="module")
def perturbed() -> MDLMPolicy:
    """Tiny model with every parameter perturbed (:func:`tests.models.perturbed_policy`)."""
    return perturbed_policy(TINY, seed=1)


def run_episode(agent: MCTDAgent, layout: np.ndarray, pose: tuple[int, int, int], max_steps: int = 60):
    """Closed loop against the symbolic dynamics. Returns (reached goal, actions sent)."""
    agent.reset(observe(layout, pose))
    actions = []
    for _ in range(max_steps):
        action = agent.act(observe(layout, pose))
        actions.append(action)
        pose, status = step(layout, pose, action)
        if status != RUNNING:
            return status == SUCCESS, actions
    return False, actions


# ----------------------------------------------------------------------------- tree
def test_tree_mask_token_is_the_models():
    from maze_mdlm.tokens import MASK as MODEL_MASK

    assert MASK == MODEL_MASK


def test_subplan_bounds_partition_the_horizon():
    assert [subplan_bounds(32, 4, i) for i in range(4)] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert [subplan_bounds(10, 4, i) for i in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    with pytest.raises(ValueError):
        subplan_bounds(8, 9, 0)
    with pytest.raises(ValueError):
        subplan_bounds(8, 4, 4)


def fake_expand(root, node, meta, value, num_subplans=2, horizon=4):
    """Expand ``node``'s slot ``meta`` by hand with a given score."""
    child = add_placeholder(node, meta)
    stop = subplan_bounds(horizon, num_subplans, node.depth)[1]
    tokens = node.tokens.copy()
    tokens[:stop] = 2
    backup(child, tokens, np.full(horizon, 2), (RUNNING, horizon), value, num_subplans)
    return child


def test_selection_expands_every_meta_action_before_descending():
    root = new_root(horizon=4, num_meta=3)
    picked = [select_expansion(root, 2) for _ in range(3)]
    assert all(node is root for node, _ in picked) and [m for _, m in picked] == [0, 0, 0]
    children = [fake_expand(root, root, m, v) for m, v in enumerate([0.2, 0.9, 0.5])]
    node, meta = select_expansion(root, 2, exploration=0.0)  # pure exploitation: best child
    assert node is children[1] and meta == 0
    # with a huge exploration weight the tie in visits leaves value to decide as well
    assert uct_score(children[1], root) > uct_score(children[0], root)


def test_virtual_visits_spread_a_round_and_vanish_after_backup():
    root = new_root(horizon=4, num_meta=2)
    for m in range(2):
        fake_expand(root, root, m, 0.5)
    round_ = []
    for _ in range(4):
        picked = select_expansion(root, 2)
        round_.append(picked)
        add_placeholder(*picked)
    assert len({(id(n), m) for n, m in round_}) == 4, "a round must not select duplicates"
    assert {id(n) for n, _ in round_} == {id(c) for c in root.children.values()}
    assert select_expansion(root, 2) is None  # everything below is pending
    assert root.virtual == 4
    for node, meta in round_:
        child = node.children[meta]
        backup(child, np.array([2, 2, 2, 2]), np.array([2, 2, 2, 2]), (RUNNING, 4), 0.3, 2)
    check_invariants(root, 2)
    assert root.visits == 6 and root.value == 0.5
    assert root.exhausted and select_expansion(root, 2) is None  # depth-2 nodes are terminal


def test_check_invariants_catches_broken_statistics():
    root = new_root(horizon=4, num_meta=2)
    child = fake_expand(root, root, 0, 0.4)
    check_invariants(root, 2)
    child.value = 0.1  # no longer max(own, children)
    with pytest.raises(AssertionError):
        check_invariants(root, 2)
    child.value, root.visits = 0.4, 5
    with pytest.raises(AssertionError):
        check_invariants(root, 2)


# ----------------------------------------------------------------------------- denoising
def random_grid(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    grid = torch.stack([torch.randint(0, 11, (3, 19, 19), generator=g),
                        torch.randint(0, 6, (3, 19, 19), generator=g),
                        torch.randint(0, 4, (3, 19, 19), generator=g)], dim=1)
    return grid, torch.randint(0, 4, (3,), generator=g)


@pytest.mark.parametrize("temperature,guidance", [(0.0, None), (1.0, None), (0.7, 2.0)])
def test_denoise_reproduces_the_sampler(perturbed, temperature, guidance):
    """Uniform meta-action, every MASK targeted: token for token what sample() gives."""
    grid, direction = random_grid(0)
    init = torch.full((3, 32), MASK)
    init[:, :8] = torch.randint(0, 7, (3, 8), generator=torch.Generator().manual_seed(3))
    expected = sample(perturbed, grid, direction, 32, 4, temperature=temperature, init_tokens=init,
                      guidance_scale=guidance, generator=torch.Generator().manual_seed(5))
    state = perturbed.encode_state(grid, direction)
    got = unmask(perturbed, state, init, 4, target=torch.ones(3, 32, dtype=torch.bool),
                 temperature=torch.full((3,), temperature), guidance=torch.full((3,), guidance or 1.0),
                 generator=torch.Generator().manual_seed(5))
    assert torch.equal(got, expected)


def test_denoise_fills_only_the_target_and_keeps_fixed_tokens(perturbed):
    grid, direction = random_grid(1)
    init = torch.full((3, 32), MASK)
    init[:, :8] = 2
    target = torch.zeros(3, 32, dtype=torch.bool)
    target[:, 8:16] = True
    out = unmask(perturbed, perturbed.encode_state(grid, direction), init, 2, target=target,
                 temperature=torch.tensor([0.0, 0.7, 1.5]), guidance=torch.tensor([1.0, 2.0, 0.5]),
                 generator=torch.Generator().manual_seed(0))
    assert (out[:, :8] == 2).all()
    assert ((out[:, 8:16] >= 0) & (out[:, 8:16] < 7)).all()
    assert (out[:, 16:] == MASK).all()


def test_guided_logits_apply_each_rows_own_scale(perturbed):
    grid, direction = random_grid(2)
    tokens = torch.full((3, 32), MASK)
    state = perturbed.encode_state(grid, direction)
    null = perturbed.null_state_embedding(3)
    ratio = torch.ones(3)
    w = torch.tensor([1.0, 2.0, 0.5])
    got = guided_logits(perturbed, tokens, state, null, ratio, w)
    with torch.no_grad():
        cond = perturbed.forward_tokens(tokens, state, ratio)
        uncond = perturbed.forward_tokens(tokens, null, ratio)
    expected = uncond + w.view(-1, 1, 1) * (cond - uncond)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)  # batch composition


def test_rows_with_equal_tokens_share_their_forward_rows(perturbed):
    grid, direction = random_grid(5)
    state = perturbed.encode_state(grid[:1], direction[:1]).expand(6, -1)  # one search: one state
    null = perturbed.null_state_embedding(6)
    tokens = torch.full((6, 32), MASK)
    tokens[3:, :8] = torch.randint(0, 7, (1, 8))  # two distinct rows, three copies each
    ratio = (tokens == MASK).float().mean(dim=1)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 2.0, 2.0])
    rows = []
    hook = perturbed.blocks[0].register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
    try:
        shared = guided_logits(perturbed, tokens, state, null, ratio, w, shared_state=True)
        plain = guided_logits(perturbed, tokens, state, null, ratio, w)
        assert rows == [2 + 2, 6 + 4]  # 2 distinct rows + their 2 unconditional copies, vs every row
        rows.clear()
        plain_tokens = unmask(perturbed, state, tokens, 2, guidance=w, null_emb=null)
        rows.clear()
        shared_tokens = unmask(perturbed, state, tokens, 2, guidance=w, null_emb=null, shared_state=True)
    finally:
        hook.remove()
    torch.testing.assert_close(shared, plain, atol=1e-4, rtol=1e-4)
    assert torch.equal(shared_tokens, plain_tokens)
    assert rows[0] == 4  # first step deduplicated; later steps only where rows still agree


# ----------------------------------------------------------------------------- evaluation
def test_plan_scores_rank_success_above_failure_and_lava_at_zero():
    room = [(x, y) for x in range(1, 6) for y in range(1, 6)]
    layout = make_layout(room, goal=(5, 1), lava=((1, 3),))
    pose = (1, 1, 0)  # facing the goal, 4 cells to the right
    F, R, E = 2, 1, END
    plans = np.array([
        [F, F, F, F, E, E],  # success after 4 actions
        [R, F, F, E, E, E],  # lava after 3 actions
        [F, F, E, E, E, E],  # stops 2 cells from the goal
        [E, E, E, E, E, E],  # stays 4 cells away
    ])
    scores, outcome = plan_scores(layout, pose, plans, max_steps=100)
    assert list(outcome.status) == [SUCCESS, FAILURE, RUNNING, RUNNING]
    assert scores[0] == pytest.approx(1 - 0.9 * 4 / 100)
    assert scores[1] == 0.0
    assert 0.1 > scores[2] > scores[3] > 0.0
    # a very slow success still outranks every failure
    slow, _ = plan_scores(layout, pose, plans[:1], max_steps=2)
    assert slow[0] >= 0.1 > scores[2]
    # END is skipped as the agent skips it (t counts navigation actions only), unless asked
    late = np.array([[E, F, 3, F, F, F]])
    skipped, outcome = plan_scores(layout, pose, late, max_steps=100)
    assert outcome.status[0] == SUCCESS and skipped[0] == pytest.approx(1 - 0.9 * 4 / 100)
    stopped, outcome = plan_scores(layout, pose, late, max_steps=100, skip_end=False)
    assert outcome.status[0] == RUNNING and stopped[0] < 0.1


# ----------------------------------------------------------------------------- search
@pytest.mark.parametrize("family", ["cfg", "temperature"])
def test_untrained_denoiser_finds_the_goal_by_search(untrained, family):
    """The untrained model knows nothing (uniform samples); the tree search alone must find
    the 5-action route (forward x2, right, forward x2) in a single search."""
    layout = make_layout([(1, 1), (2, 1), (3, 1), (3, 2)], goal=(3, 3))
    cfg = MCTDConfig(max_expansions=120, meta_actions=family)  # 120 = the whole S=4, M=3 tree
    found = 0
    for seed in range(8):
        planner = MCTDPlanner(untrained, cfg, torch.Generator().manual_seed(seed))
        result = planner.search(observe(layout, (1, 1, 0))["image"], layout, (1, 1, 0), 100)
        check_invariants(result.root, cfg.num_subplans)
        found += result.found_goal
        if result.found_goal:
            assert result.best.outcome[0] == SUCCESS and result.root.value == result.best.own_value >= 0.1
            assert result.expansions < 120  # early stop
    assert found >= 3


def test_untrained_denoiser_reaches_the_goal_in_closed_loop(untrained, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the planner must never call the BFS expert")

    monkeypatch.setattr(envs.expert, "solve", forbidden)
    monkeypatch.setattr(envs.expert, "solve_networkx", forbidden)
    agent = MCTDAgent(untrained, max_steps=100, seed=0, max_expansions=64)
    reached, actions = run_episode(agent, CORRIDOR, CORRIDOR_START)
    assert reached
    assert set(actions) <= {0, 1, 2}, "END and other non-navigation tokens must never reach the env"
    stats = agent.stats()
    assert stats["decisions"] >= 1 and 0 < stats["mean_expansions"] <= 64
    assert stats["mean_plan_ms"] > 0 and 1 <= stats["max_depth"] <= 4 and stats["mean_nodes"] > 0
    phases = stats["mean_phase_ms"]  # each phase's mean ms per search, within the search's own time
    assert set(phases) == {"denoise", "continue", "score", "straighten"} and phases["denoise"] > 0
    assert sum(phases.values()) <= stats["mean_plan_ms"]


def test_search_invariants_hold_after_every_round(untrained):
    room = [(x, y) for x in range(1, 8) for y in range(1, 8)]
    layout = make_layout(room, goal=(7, 7), lava=((3, 3), (4, 3)))
    cfg = MCTDConfig(max_expansions=40, parallel=8, early_stop=False, meta_actions="temperature")
    planner = MCTDPlanner(untrained, cfg, torch.Generator().manual_seed(0))
    result = planner.search(observe(layout, (1, 1, 0))["image"], layout, (1, 1, 0), 100)
    check_invariants(result.root, cfg.num_subplans)
    assert result.expansions == 40 and result.root.visits == 40
    assert result.root.value == max(n.own_value for n in result.root.iter_nodes() if n.own_value is not None)


def test_search_stops_when_the_tree_is_exhausted(untrained):
    cfg = MCTDConfig(num_subplans=1, max_expansions=32, early_stop=False)
    planner = MCTDPlanner(untrained, cfg, torch.Generator().manual_seed(0))
    result = planner.search(observe(CORRIDOR, CORRIDOR_START)["image"], CORRIDOR, CORRIDOR_START, 100)
    assert result.expansions == 3 and result.root.exhausted  # one terminal child per meta-action


def test_early_stop_saves_budget(untrained):
    layout = make_layout([(1, 1), (2, 1)], goal=(3, 1))  # goal two steps ahead
    obs = observe(layout, (1, 1, 0))
    stats = {}
    for early in (True, False):
        planner = MCTDPlanner(untrained, MCTDConfig(max_expansions=48, early_stop=early),
                              torch.Generator().manual_seed(0))
        stats[early] = planner.search(obs["image"], layout, (1, 1, 0), 100)
    assert stats[True].found_goal and stats[True].expansions < 48
    assert stats[False].expansions == 48


def test_goal_reaching_plan_is_executed_whole(untrained):
    layout = make_layout([(1, 1), (2, 1)], goal=(3, 1))
    agent = MCTDAgent(untrained, seed=0, max_expansions=48)
    reached, actions = run_episode(agent, layout, (1, 1, 0))
    assert reached and agent.stats()["decisions"] == 1
    assert agent.last_search.best.outcome[0] == SUCCESS


GOAL_EXECUTE_WORLD = make_layout([(1, 1), (2, 1), (3, 1), (3, 2)], goal=(3, 3))  # 5 actions to the goal


def run_goal_execute(model, seed: int):
    """One closed-loop episode of ``MCTDAgent(goal_execute=2)`` on GOAL_EXECUTE_WORLD, or None when
    its first search finds no goal-reaching plan. Returns (status, actions sent, the first plan,
    the actions to the goal left after each action, the number of searches)."""
    agent = MCTDAgent(model, seed=seed, max_expansions=120, goal_execute=2)
    pose = (1, 1, 0)
    agent.reset(observe(GOAL_EXECUTE_WORLD, pose))
    sent, left = [], []
    for _ in range(30):
        sent.append(agent.act(observe(GOAL_EXECUTE_WORLD, pose)))
        if len(sent) == 1:
            if not agent.last_search.found_goal:
                return None
            first = list(agent.last_plan)
        state = agent._state
        assert len(state.queue) <= 1  # at most goal_execute = 2 actions queued by any search
        left.append(len(state.queue) + len(state.goal_rest))
        pose, status = step(GOAL_EXECUTE_WORLD, pose, sent[-1])
        if status != RUNNING:
            break
    return status, sent, first, left, agent.stats()["decisions"]


def test_goal_execute_searches_again_and_never_lengthens_the_plan(untrained):
    episodes = [e for e in (run_goal_execute(untrained, seed) for seed in range(8)) if e is not None]
    assert episodes  # some first search of the untrained model finds the 5-action route
    for status, sent, first, left, decisions in episodes:
        assert status == SUCCESS and decisions >= 3  # 5 actions, 2 per search
        assert len(sent) <= len(first)  # a later search only ever replaced the rest by a shorter plan
        assert all(b <= a - 1 for a, b in zip(left, left[1:])) and left[-1] == 0


def test_goal_execute_keeps_the_incumbent_over_a_longer_plan(untrained, monkeypatch):
    real, calls = agent_module.choose_actions, []

    def longer_later(result, *args):  # every search after an episode's first returns a far longer plan
        calls.append(result)
        plan = real(result, *args)
        return plan if len(calls) == 1 else [0, 1] * 100 + plan

    monkeypatch.setattr(agent_module, "choose_actions", longer_later)
    kept = 0
    for seed in range(8):
        calls.clear()
        episode = run_goal_execute(untrained, seed)
        if episode is not None:
            status, sent, first, _, decisions = episode
            assert status == SUCCESS and decisions >= 3 and sent == first  # 2 actions at a time
            kept += 1
    assert kept
    with pytest.raises(ValueError, match="goal_execute"):
        MCTDAgent(untrained, goal_execute=-1)


def test_same_seed_same_plan(perturbed):
    room = [(x, y) for x in range(1, 8) for y in range(1, 8)]
    layout = make_layout(room, goal=(7, 7))
    obs = observe(layout, (1, 1, 0))
    plans = [MCTDAgent(perturbed, seed=s, max_expansions=24).plan(obs) for s in (7, 7, 8)]
    trees = []
    for s in (7, 7):
        agent = MCTDAgent(perturbed, seed=s, max_expansions=24)
        agent.plan(obs)
        trees.append([n.plan.tolist() for n in agent.last_search.root.iter_nodes() if n.plan is not None])
    assert plans[0] == plans[1]
    assert trees[0] == trees[1]
    other = MCTDAgent(perturbed, seed=8, max_expansions=24)
    other.plan(obs)
    assert [n.plan.tolist() for n in other.last_search.root.iter_nodes() if n.plan is not None] != trees[0]


def test_end_only_model_falls_back_to_forward():
    torch.manual_seed(0)
    model = MDLMPolicy(TINY).eval()
    with torch.no_grad():
        model.final.head.bias[END] = 50.0  # every token is END, even when sampling
    layout = make_layout([(x, 1) for x in range(1, 6)], goal=(6, 1))
    agent = MCTDAgent(model, seed=0, max_expansions=8, fallback="heuristic")
    agent.reset(observe(layout, (1, 1, 0)))
    assert agent.act(observe(layout, (1, 1, 0))) == 2
    # the policy fallback asks the MDLM policy, whose first action is always a useful move
    agent = MCTDAgent(model, seed=0, max_expansions=8, fallback="policy")
    agent.reset(observe(layout, (1, 1, 0)))
    assert agent.act(observe(layout, (1, 1, 0))) in (0, 1, 2)
    assert agent.last_search is not None and not agent.last_search.found_goal


def test_replans_when_the_observation_deviates(untrained):
    room = [(x, y) for x in range(1, 8) for y in range(1, 8)]
    layout = make_layout(room, goal=(7, 7))
    agent = MCTDAgent(untrained, seed=0, max_expansions=8)
    agent.reset(observe(layout, (1, 1, 0)))
    action = agent.act(observe(layout, (1, 1, 0)))
    predicted, _ = step(layout, (1, 1, 0), action)
    if agent._state.queue:  # following the prediction does not replan while actions are queued
        agent.act(observe(layout, predicted))
        assert agent.stats()["decisions"] == 1
    before = agent.stats()["decisions"]
    agent.act(observe(layout, (5, 5, 2)))  # somewhere the dynamics did not predict
    assert agent.stats()["decisions"] == before + 1


def test_choose_actions_cuts_a_lava_plan_before_the_fatal_step(untrained):
    layout = make_layout([(1, 1), (2, 1), (3, 1), (4, 1)], goal=(4, 3), lava=((3, 1),))
    result = MCTDPlanner(untrained, MCTDConfig(max_expansions=3), torch.Generator().manual_seed(0)).search(
        observe(layout, (1, 1, 0))["image"], layout, (1, 1, 0), 100)
    node = result.best
    node.plan = np.array([2, 2, 2, 2] + [6] * 28)
    node.outcome, node.own_value = (FAILURE, 2), 1.0
    assert choose_actions(result, 32, 4) == [2]


# ----------------------------------------------------------------------------- gymnasium loop
def test_plain_gymnasium_loop_with_fullyobswrapper(untrained):
    from minigrid.wrappers import FullyObsWrapper

    from envs.collect import make_env

    env = FullyObsWrapper(make_env("MiniGrid-Empty-5x5-v0"))
    agent = MCTDAgent(untrained, max_steps=env.unwrapped.max_steps, seed=0, max_expansions=64)
    obs, info = env.reset(seed=0)
    agent.reset(obs, info)
    done, terminated = False, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        done = terminated or truncated
    assert terminated and reward > 0


def test_planning_thread_setting_is_scoped(untrained):
    layout = make_layout([(1, 1), (2, 1)], goal=(3, 1))
    torch.set_num_threads(2)
    try:
        agent = MCTDAgent(untrained, seed=0, max_expansions=4, num_threads=1)
        agent.reset(observe(layout, (1, 1, 0)))
        agent.act(observe(layout, (1, 1, 0)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_partial_view_is_refused(untrained):
    from envs import ObservationError
    from envs.collect import make_env

    env = make_env("MiniGrid-Empty-5x5-v0")
    obs, info = env.reset(seed=0)
    with pytest.raises(ObservationError, match="FullyObsWrapper"):
        MCTDAgent(untrained).reset(obs, info)


def test_from_checkpoint_reads_horizon_and_env_limit(untrained, tmp_path):
    from envs import MAZE_ID
    from maze_mdlm.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "tiny.pt", untrained, TINY, None, 0, {"horizon": 16}, None)
    agent = MCTDAgent.from_checkpoint(path, env_id=MAZE_ID, seed=3, max_expansions=4)
    assert agent.name == "mctd" and agent.config.horizon == 16 and agent.max_steps == 722
    assert agent.config.max_expansions == 4 and agent.seed == 3
    assert MCTDAgent.from_checkpoint(path, max_steps=50).max_steps == 50


@pytest.mark.parametrize("env_id, episodes", [("MiniGrid-FourRooms-v0", 20), ("MazeMDLM/Maze-19x19-v0", 3)])
def test_shipped_checkpoint_beats_or_matches_mdlm(env_id, episodes):
    from maze_mdlm.shipped import CHECKPOINT_DIR, SHIPPED

    path = CHECKPOINT_DIR / SHIPPED[("mdlm", env_id)]
    if not path.is_file():
        pytest.skip(f"no shipped checkpoint for {env_id}")
    from agents.mdlm_agent import MDLMAgent
    from maze_mdlm.evaluation import evaluate

    mctd = evaluate(MCTDAgent.from_checkpoint(env_id=env_id), env_id, episodes, 1_000_000)
    mdlm = evaluate(MDLMAgent.from_checkpoint(env_id=env_id), env_id, episodes, 1_000_000)
    assert mctd["success_rate"] >= mdlm["success_rate"]
    assert mctd["mean_expansions"] > 0 and mctd["mean_plan_ms"] > 0


# ----------------------------------------------------------------------------- benchmark
def test_benchmark_runs_tiny(untrained, tmp_path):
    from benchmarks.mctd_speed import meta_action_success, parallel_speed, to_markdown, write_results

    speed = parallel_speed(untrained, ks=(1, 4), expansions=8, seeds=(1_000_000,), repeats=1)
    assert [r["expansions"] for r in speed["rows"]] == [8, 8] and speed["rows"][0]["ratio_vs_k1"] == 1.0
    meta = meta_action_success(untrained, seeds=(1_000_000,), max_expansions=4, step_cap=3)
    assert set(meta["families"]) == {"temperature", "cfg"}
    assert all(f["per_episode"][0]["optimal_steps"] > 0 for f in meta["families"].values())
    results = {"model": "tiny", "env": "maze", "torch": torch.__version__, "threads": 1, "processor": "cpu",
               "parallel": speed, "meta_actions": {"maze": meta}, "command": "test"}
    json_path, md_path = write_results(results, tmp_path)
    assert json_path.is_file() and "| 4 |" in md_path.read_text() and to_markdown(results).startswith("# MCTD")
    assert "Meta-action families on maze" in md_path.read_text()
