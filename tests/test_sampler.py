"""Iterative-unmasking sampler: schedule, validity, fixed positions, determinism, CFG."""

from __future__ import annotations

import pytest
import torch

from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import (
    draw_candidates,
    filter_logits,
    gumbel_noise,
    masked_after_step,
    sample,
    select_commits,
)
from maze_mdlm.tokens import END, MASK, NUM_ACTIONS
from tests.models import perturbed_policy

HORIZON = 16
TINY = ModelConfig(hidden_dim=32, num_layers=2, num_heads=2, max_seq_len=HORIZON)


def random_states(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random valid encoded grids [B, 3, 19, 19] and directions [B]."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.stack(
        [
            torch.randint(0, 11, (batch, 19, 19), generator=g),
            torch.randint(0, 6, (batch, 19, 19), generator=g),
            torch.randint(0, 4, (batch, 19, 19), generator=g),
        ],
        dim=1,
    )
    return grid, torch.randint(0, 4, (batch,), generator=g)


@pytest.fixture(scope="module")
def model() -> MDLMPolicy:
    """Tiny model with every parameter perturbed (:func:`tests.models.perturbed_policy`)."""
    return perturbed_policy(TINY, seed=0)


class CallRecorder:
    """Wraps a model, counting encode_state calls and recording each forward's input."""

    def __init__(self, net: MDLMPolicy) -> None:
        self.net = net
        self.mask_token_id = net.mask_token_id
        self.config = net.config
        self.training = False
        self.encode_calls = 0
        self.inputs: list[torch.Tensor] = []

    def eval(self) -> CallRecorder:
        return self

    def train(self, mode: bool = True) -> CallRecorder:
        return self

    def encode_state(self, grid, direction, drop_state=None, carrying=None, task=None):
        self.encode_calls += 1
        return self.net.encode_state(grid, direction, drop_state, carrying, task)

    def null_state_embedding(self, batch_size: int) -> torch.Tensor:
        return self.net.null_state_embedding(batch_size)

    def forward_tokens(self, tokens, state_emb, mask_ratio):
        self.inputs.append(tokens.clone())
        return self.net.forward_tokens(tokens, state_emb, mask_ratio)


def test_schedule_cosine_values_and_end() -> None:
    got = masked_after_step(torch.tensor(32), 8, "cosine").tolist()
    # ceil(32 cos(pi/2 k/8)) = 32, 30, 27, 23, 18, 13, 7, 0; step 0 is lowered to commit one
    assert got == [31, 30, 27, 23, 18, 13, 7, 0]
    assert masked_after_step(torch.tensor(8), 4, "linear").tolist() == [6, 4, 2, 0]
    assert masked_after_step(torch.tensor(3), 3, "linear").tolist() == [2, 1, 0]  # no float round-up
    assert masked_after_step(torch.tensor(0), 5).tolist() == [0] * 5


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("steps", [1, 2, 5, 8, 40])
def test_schedule_commits_everything_monotonically(schedule: str, steps: int) -> None:
    n = torch.arange(0, 65)
    rem = masked_after_step(n, steps, schedule)  # [65, S]
    assert rem.shape == (65, steps)
    assert torch.all(rem[:, -1] == 0)
    before = torch.cat([n.unsqueeze(1), rem[:, :-1]], dim=1)
    assert torch.all(rem <= before)
    assert torch.all((before - rem >= 1) | (before == 0))  # progress while anything is left
    with pytest.raises(ValueError):
        masked_after_step(n, 0, schedule)


def test_select_commits_picks_most_confident_masked() -> None:
    conf = torch.tensor([[0.9, 0.1, 0.5, 0.7], [0.2, 0.3, 0.4, 0.1]], dtype=torch.float64)
    masked = torch.tensor([[False, True, True, True], [True, True, True, True]])
    commit = select_commits(conf, masked, torch.tensor([1, 3]))
    assert commit.tolist() == [[False, False, True, True], [False, False, True, False]]


def test_filter_logits_top_k_and_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64))
    kept_k = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept_k.tolist() == [[True, True, False, False]]
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.7))
    assert kept_p.tolist() == [[True, True, False, False]]
    kept_small = torch.isfinite(filter_logits(logits, top_p=0.1))
    assert kept_small.tolist() == [[True, False, False, False]]


def test_gumbel_noise_is_float64_from_the_generator() -> None:
    noise = gumbel_noise((4, 5), torch.Generator().manual_seed(3), torch.device("cpu"))
    u = torch.rand((4, 5), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert noise.dtype == torch.float64
    torch.testing.assert_close(noise, -torch.log(-torch.log(u)), rtol=0, atol=0)


def test_sampling_frequencies_match_tempered_softmax() -> None:
    base = torch.tensor([1.0, 0.0, -1.0, 0.5])
    logits = base.expand(1, 40_000, 4)
    gen = torch.Generator().manual_seed(0)
    for temperature in (1.0, 0.5):
        tokens, conf = draw_candidates(logits, temperature=temperature, generator=gen)
        freq = torch.bincount(tokens.flatten(), minlength=4).double() / tokens.numel()
        expected = torch.softmax(base.double() / temperature, dim=0)
        torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)
        torch.testing.assert_close(conf, torch.softmax(base.double(), 0)[tokens])


@pytest.mark.parametrize("kwargs", [
    {},
    {"temperature": 1.0},
    {"temperature": 1.5, "top_k": 3},
    {"temperature": 1.0, "top_p": 0.9, "schedule": "linear"},
    {"guidance_scale": 2.0},
])
def test_outputs_are_actions(model: MDLMPolicy, kwargs: dict) -> None:
    grid, direction = random_states(6, seed=1)
    out = sample(model, grid, direction, HORIZON, 5, generator=torch.Generator().manual_seed(0), **kwargs)
    assert out.shape == (6, HORIZON) and out.dtype == torch.long
    assert int(out.min()) >= 0 and int(out.max()) <= END and not bool((out == MASK).any())


def test_fixed_positions_are_kept(model: MDLMPolicy) -> None:
    grid, direction = random_states(8, seed=2)
    g = torch.Generator().manual_seed(3)
    init = torch.randint(0, NUM_ACTIONS, (8, HORIZON), generator=g)
    free = torch.rand(8, HORIZON, generator=g) < 0.5
    free[0] = True  # one row fully free
    free[1] = False  # one row fully fixed
    init = init.masked_fill(free, MASK)
    for temperature in (0.0, 1.0):
        out = sample(model, grid, direction, HORIZON, 4, temperature=temperature,
                     generator=torch.Generator().manual_seed(0), init_tokens=init)
        assert torch.equal(out[~free], init[~free])
        assert int(out.max()) <= END and not bool((out == MASK).any())


def test_seeded_sampling_is_reproducible(model: MDLMPolicy) -> None:
    grid, direction = random_states(16, seed=4)

    def draw(seed: int) -> torch.Tensor:
        return sample(model, grid, direction, HORIZON, 6, temperature=1.0,
                      generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_greedy_is_deterministic_and_equals_top_k_1(model: MDLMPolicy) -> None:
    grid, direction = random_states(16, seed=5)
    greedy = sample(model, grid, direction, HORIZON, 6)
    again = sample(model, grid, direction, HORIZON, 6, generator=torch.Generator().manual_seed(9))
    top1 = sample(model, grid, direction, HORIZON, 6, temperature=1.0, top_k=1,
                  generator=torch.Generator().manual_seed(7))
    assert torch.equal(greedy, again)
    assert torch.equal(greedy, top1)


def test_state_encoded_once_and_schedule_followed(model: MDLMPolicy) -> None:
    grid, direction = random_states(3, seed=6)
    recorder = CallRecorder(model)
    sample(recorder, grid, direction, HORIZON, 5)
    assert recorder.encode_calls == 1
    masked_in = [int((x == MASK).sum(dim=1)[0]) for x in recorder.inputs]
    expected = [HORIZON] + masked_after_step(torch.tensor(HORIZON), 5).tolist()[:-1]
    assert masked_in == expected
    assert all(torch.equal((x == MASK).sum(1), (x[:1] == MASK).sum(1).expand(3)) for x in recorder.inputs)


def test_stop_after_keeps_the_first_k_tokens_and_saves_forwards(model: MDLMPolicy) -> None:
    grid, direction = random_states(8, seed=11)
    full = sample(model, grid, direction, HORIZON, 8)
    for k in (1, 3):
        recorder = CallRecorder(model)
        early = sample(recorder, grid, direction, HORIZON, 8, stop_after=k)
        assert torch.equal(early[:, :k], full[:, :k])  # exactly what the full run commits there
        assert not (early[:, :k] == MASK).any()
        assert len(recorder.inputs) <= 8
        # it stopped at the first step after which no row had a masked position among the first k
        done = [not bool((x[:, :k] == MASK).any()) for x in recorder.inputs[1:]] + [True]
        assert done.index(True) == len(recorder.inputs) - 1
        # rows whose first k positions are committed leave the batch: no row is sent once done
        sizes = [x.shape[0] for x in recorder.inputs]
        assert sizes == sorted(sizes, reverse=True)
        assert all(bool((x[:, :k] == MASK).any(dim=1).all()) for x in recorder.inputs)
    forbid = torch.zeros(8, HORIZON, NUM_ACTIONS, dtype=torch.bool)
    forbid[:, 0, 1:] = True  # one allowed action: probability 1, committed at the first step
    recorder = CallRecorder(model)
    early = sample(recorder, grid, direction, HORIZON, 8, stop_after=1, forbid=forbid)
    assert len(recorder.inputs) == 1 and (early[:, 0] == 0).all()


def test_guidance_batches_one_forward_per_step(model: MDLMPolicy) -> None:
    grid, direction = random_states(3, seed=7)
    recorder = CallRecorder(model)
    sample(recorder, grid, direction, HORIZON, 4, guidance_scale=3.0)
    assert [x.shape[0] for x in recorder.inputs] == [6, 6, 6, 6]


def test_guidance_zero_ignores_state(model: MDLMPolicy) -> None:
    grid, direction = random_states(2, seed=8)
    swapped_grid, swapped_dir = grid.flip(0), direction.flip(0)
    cond = sample(model, grid, direction, HORIZON, 4)
    uncond = sample(model, grid, direction, HORIZON, 4, guidance_scale=0.0)
    uncond_swapped = sample(model, swapped_grid, swapped_dir, HORIZON, 4, guidance_scale=0.0)
    assert torch.equal(uncond, uncond_swapped)  # the state no longer matters
    assert not torch.equal(cond[0], cond[1])  # ...while it does without guidance


def test_sampler_restores_training_mode(model: MDLMPolicy) -> None:
    grid, direction = random_states(1, seed=9)
    model.train()
    try:
        sample(model, grid, direction, HORIZON, 2)
        assert model.training
    finally:
        model.eval()


def test_forbidden_tokens_are_never_drawn() -> None:
    from maze_mdlm.config import ModelConfig as _Config
    from maze_mdlm.model import MDLMPolicy as _Policy

    torch.manual_seed(0)
    model = _Policy(_Config(hidden_dim=32, num_layers=1, num_heads=2, max_seq_len=8)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape))
    b = 16
    grid = torch.stack([torch.randint(0, high, (b, 19, 19)) for high in (11, 6, 4)], dim=1)
    direction = torch.randint(0, 4, (b,))
    free = sample(model, grid, direction, 8, 4)
    forbid = torch.zeros(b, 8, 7, dtype=torch.bool)
    forbid[torch.arange(b), 0, free[:, 0].clamp(max=6)] = True  # forbid what it chose at position 0
    forbid[:, 1, :6] = True  # position 1 may only be action 6 or END (the mask covers the 7 actions)
    for temperature in (0.0, 1.0):
        out = sample(model, grid, direction, 8, 4, temperature=temperature, forbid=forbid,
                     generator=torch.Generator().manual_seed(1))
        assert ((out[:, 0] != free[:, 0]) | (free[:, 0] == END)).all()
        assert ((out[:, 1] == 6) | (out[:, 1] == END)).all()
        wide = torch.cat([forbid, torch.ones(b, 8, 2, dtype=torch.bool)], dim=-1)  # END forbidden too
        out = sample(model, grid, direction, 8, 4, temperature=temperature, forbid=wide,
                     generator=torch.Generator().manual_seed(1))
        assert (out[:, 1] == 6).all()
