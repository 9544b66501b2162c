"""MaskGIT-style iterative unmasking for :class:`maze_mdlm.model.MDLMPolicy`.

Shapes: B batch, L horizon, V = the model's output classes (``config.num_outputs``), S = num_steps. Every step runs the model once
(twice batched as one forward under classifier-free guidance), draws a candidate action at
each position, and commits the most confident still-masked positions so that the number
left masked follows the schedule. Fixed (non-MASK) positions of ``init_tokens`` are never
changed and MASK is never emitted (the head fixes its logit at -inf, or has no MASK class in
legacy checkpoints). Plans hold actions 0..6 and the model's ``config.end_token``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from maze_mdlm.tokens import MASK

SAMPLER_SCHEDULES = ("cosine", "linear")


def masked_after_step(num_masked: Tensor, num_steps: int, schedule: str = "cosine") -> Tensor:
    """Positions still masked after each step. num_masked [...] long -> [..., S] long.

    cosine: ``ceil(n * cos(pi/2 * (s+1)/S))``; linear: ``ceil(n * (1 - (s+1)/S))``.
    Two adjustments: while positions remain, every step commits at least one (so no forward
    is wasted, e.g. n=32, S=8 would otherwise commit nothing at step 0), and the last step
    leaves nothing masked.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if schedule not in SAMPLER_SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SAMPLER_SCHEDULES}")
    n = torch.as_tensor(num_masked).to(torch.float64).unsqueeze(-1)  # [..., 1]
    done = torch.arange(1, num_steps + 1, dtype=torch.float64, device=n.device)  # [S]
    frac = done / num_steps
    keep = torch.cos(0.5 * math.pi * frac) if schedule == "cosine" else 1.0 - frac
    remaining = torch.ceil(n * keep - 1e-9)  # tolerance: 3 * (1 - 1/3) must not round up to 3
    remaining = torch.minimum(remaining, (n - done).clamp(min=0.0))
    remaining[..., -1] = 0.0
    return remaining.clamp(min=0.0).long()


def pad_classes(forbid: Tensor, num_classes: int) -> Tensor:
    """Widen a ``forbid`` mask [..., V'] over the first V' classes (e.g. the 7 env actions) to
    [..., num_classes]; the added classes (END) stay allowed."""
    missing = num_classes - forbid.shape[-1]
    if missing < 0:
        raise ValueError(f"forbid has {forbid.shape[-1]} classes, the model {num_classes}")
    if missing == 0:
        return forbid
    return torch.cat([forbid, forbid.new_zeros(*forbid.shape[:-1], missing)], dim=-1)


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set logits outside the top-k / nucleus (top-p) set to -inf. [..., V] -> [..., V].

    top-p keeps the smallest prefix of the sorted distribution whose mass reaches ``top_p``
    (always at least the most likely token).
    """
    out = logits
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(top_k, out.shape[-1])
        kth = torch.topk(out, k, dim=-1).values[..., -1:]  # [..., 1]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly better tokens
        drop_sorted = mass_before >= top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def gumbel_noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None,
                 device: torch.device) -> Tensor:
    """Standard Gumbel noise in float64 (float32 noise lowers the effective temperature)."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float64).to(device)
    u = u.clamp(min=torch.finfo(torch.float64).tiny)
    return -torch.log(-torch.log(u))


def draw_candidates(
    logits: Tensor,
    temperature: float | Tensor = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    with_confidence: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Candidate token and its confidence at every position.

    logits [B, L, V], temperature a float or [B] per row -> (tokens [B, L] long, confidence
    [B, L] float64, or None without ``with_confidence``). Greedy where the temperature is 0;
    elsewhere Gumbel-max sampling from softmax(logits / temperature) restricted by top-k /
    top-p (noise is drawn for the whole batch once any row samples). Confidence is the model's
    own probability softmax(logits) of the chosen token, so top_k=1 reproduces greedy decoding
    exactly.
    """
    logits64 = logits.to(torch.float64)
    temp = torch.as_tensor(temperature, dtype=torch.float64, device=logits.device).expand(logits.shape[0])
    if bool((temp < 0).any()):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    tokens = logits64.argmax(dim=-1)
    sampling = temp > 0  # [B]
    if bool(sampling.any()):
        safe = torch.where(sampling, temp, torch.ones_like(temp)).view(-1, 1, 1)
        scores = filter_logits(logits64 / safe, top_k, top_p)
        drawn = (scores + gumbel_noise(scores.shape, generator, scores.device)).argmax(dim=-1)
        tokens = torch.where(sampling.unsqueeze(1), drawn, tokens)
    if not with_confidence:
        return tokens, None
    confidence = torch.softmax(logits64, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return tokens, confidence


def select_commits(confidence: Tensor, masked: Tensor, num_remaining: Tensor) -> Tensor:
    """Which masked positions to commit so that ``num_remaining`` stay masked per row.

    confidence [B, L], masked [B, L] bool, num_remaining [B] long -> commit [B, L] bool.
    The most confident masked positions are committed; ties go to the earlier position.
    """
    b, n = masked.shape
    num_commit = (masked.sum(dim=1) - num_remaining).clamp(min=0)  # [B]
    score = confidence.masked_fill(~masked, float("-inf"))
    order = torch.argsort(score, dim=1, descending=True, stable=True)  # [B, L]
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(n, device=order.device).expand(b, n)
    )  # rank[b, i] = position of i in the confidence order
    return masked & (rank < num_commit.unsqueeze(1))


def guided_logits(model: torch.nn.Module, tokens: Tensor, state_emb: Tensor, null_emb: Tensor | None,
                  mask_ratio: Tensor, guidance: Tensor, shared_state: bool = False) -> Tensor:
    """Logits [B, L, V] with a classifier-free guidance scale per row, in one forward.

    tokens [B, L], state_emb [B, D], null_emb [B, D], mask_ratio [B], guidance [B] float32.
    Rows with ``guidance == 1`` are plain conditional; the others add an unconditional copy
    to the same batch and get ``uncond + w * (cond - uncond)``. With ``shared_state`` (every
    row has the same state and null embedding, and ``mask_ratio`` is a function of the tokens,
    as in one MCTD search) rows with equal tokens share one conditional and one unconditional
    row of the forward.
    """
    b = tokens.shape[0]
    guided = (guidance != 1.0) & (null_emb is not None)  # [B] rows that need an unconditional pass
    rows, inverse, ratio = tokens, None, mask_ratio  # the forward's conditional rows
    if shared_state and b > 1:
        unique, where = torch.unique(tokens, dim=0, return_inverse=True)  # [U, L], [B]
        if len(unique) < b:
            rows, inverse = unique, where
            ratio = torch.zeros(len(unique), dtype=mask_ratio.dtype, device=mask_ratio.device)
            ratio = ratio.index_copy(0, inverse, mask_ratio)  # equal tokens, equal ratios
    n = rows.shape[0]
    needs_null = torch.zeros(n, dtype=torch.bool, device=tokens.device)
    needs_null[guided if inverse is None else inverse[guided]] = True
    idx = needs_null.nonzero().squeeze(1)  # conditional rows that also run unconditioned
    if not len(idx):
        cond = model.forward_tokens(rows, state_emb[:n], ratio).float()
        return cond if inverse is None else cond[inverse]
    out = model.forward_tokens(torch.cat([rows, rows[idx]]), torch.cat([state_emb[:n], null_emb[idx]]),
                               torch.cat([ratio, ratio[idx]])).float()
    cond, uncond = out[:n], torch.zeros_like(out[:n]).index_copy(0, idx, out[n:])
    if inverse is not None:
        cond, uncond = cond[inverse], uncond[inverse]  # [B, L, V]
    w = guidance.view(-1, 1, 1)
    return torch.where(guided.view(-1, 1, 1), uncond + w * (cond - uncond), cond)


@torch.inference_mode()
def unmask(
    model: torch.nn.Module,
    state_emb: Tensor,
    tokens: Tensor,
    num_steps: int,
    *,
    target: Tensor | None = None,
    temperature: float | Tensor = 0.0,
    guidance: float | Tensor | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    schedule: str = "cosine",
    generator: torch.Generator | None = None,
    null_emb: Tensor | None = None,
    forbid: Tensor | None = None,
    stop_after: int | None = None,
    shared_state: bool = False,
) -> Tensor:
    """The unmasking loop on encoded states; :func:`sample` and the MCTD planner both run it.

    Args:
        model: an ``MDLMPolicy`` in eval mode.
        state_emb: [B, D] state embeddings (``model.encode_state``), reused at every step.
        tokens: [B, L] long; non-MASK entries are kept.
        num_steps: unmasking steps S (model forwards).
        target: [B, L] bool; the MASK positions to fill (default: all). Others stay MASK and
            the model still sees them as MASK.
        temperature: float or [B] per row (0 = greedy).
        guidance: classifier-free guidance scale, float or [B] per row (None / 1 = conditional).
        top_k, top_p, schedule, generator, forbid: as in :func:`sample`.
        null_emb: [B, D] unconditional embeddings (default ``model.null_state_embedding``).
        stop_after: as in :func:`sample`.
        shared_state: every row has the same state (and null) embedding: rows with equal
            tokens share their forward rows (:func:`guided_logits`).

    Returns:
        [B, L] long tokens.
    """
    b = tokens.shape[0]
    masked = tokens == MASK if target is None else (tokens == MASK) & target  # [B, L]
    remaining_after = masked_after_step(masked.sum(dim=1), num_steps, schedule)  # [B, S]
    scales = torch.as_tensor(1.0 if guidance is None else guidance, dtype=torch.float32,
                             device=tokens.device).expand(b)
    if null_emb is None and bool((scales != 1.0).any()):
        null_emb = model.null_state_embedding(b).to(state_emb.dtype)
    temps = torch.as_tensor(temperature, dtype=torch.float64, device=tokens.device).expand(b)
    for step in range(num_steps):
        live = masked.any(dim=1) if stop_after is None else masked[:, :stop_after].any(dim=1)  # [B]
        if not bool(live.any()):
            break
        rows = None if bool(live.all()) else live.nonzero().squeeze(1)  # done rows leave the batch

        def pick(x: Tensor | None) -> Tensor | None:
            return x if x is None or rows is None else x[rows]

        sub_tokens, sub_masked = pick(tokens), pick(masked)
        mask_ratio = (sub_tokens == MASK).float().mean(dim=1)
        logits = guided_logits(model, sub_tokens, pick(state_emb), pick(null_emb), mask_ratio, pick(scales),
                               shared_state)
        if forbid is not None:
            logits = logits.masked_fill(pad_classes(pick(forbid), logits.shape[-1]), float("-inf"))
        last = step == num_steps - 1  # the last step fills every remaining position: no ranking
        candidates, confidence = draw_candidates(logits, pick(temps), top_k, top_p, generator, with_confidence=not last)
        commit = sub_masked if last else select_commits(confidence, sub_masked, pick(remaining_after)[:, step])
        sub_tokens = torch.where(commit, candidates, sub_tokens)
        if rows is None:
            tokens, masked = sub_tokens, sub_masked & ~commit
        else:
            tokens, masked = tokens.index_copy(0, rows, sub_tokens), masked.index_copy(0, rows, sub_masked & ~commit)
    return tokens


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    grid: Tensor,
    direction: Tensor,
    horizon: int,
    num_steps: int = 8,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    schedule: str = "cosine",
    generator: torch.Generator | None = None,
    init_tokens: Tensor | None = None,
    guidance_scale: float | None = None,
    forbid: Tensor | None = None,
    stop_after: int | None = None,
    carrying: Tensor | None = None,
    task: Tensor | None = None,
) -> Tensor:
    """Generate action windows by iterative unmasking.

    Args:
        model: an ``MDLMPolicy`` (any module with encode_state / forward_tokens /
            null_state_embedding / mask_token_id).
        grid: [B, 3, G, G] long encoded grids; direction: [B] long.
        horizon: window length L (<= model max_seq_len).
        num_steps: unmasking steps S (model forwards).
        temperature: 0 = greedy; > 0 samples from softmax(logits / temperature).
        top_k, top_p: optional filters applied when sampling.
        schedule: "cosine" or "linear" count of positions left masked after each step.
        generator: source of all sampling noise (deterministic when seeded).
        init_tokens: [B, L] long; non-MASK entries are fixed, MASK entries are generated.
        guidance_scale: classifier-free guidance weight w (None = plain conditional).
        forbid: [B, L, V'] bool over the first V' <= V classes; True entries are never drawn
            (e.g. actions the dynamics says are no-ops). Each position must leave at least one
            token allowed.
        stop_after: stop as soon as the first ``stop_after`` positions of every row are
            committed (a closed-loop agent that executes k actions per plan needs no more).
            Those positions are exactly what the full run would give; later ones may be MASK.
        carrying: [B, 3] long carried objects; task: [B, 5] long task vectors (None: an empty
            hand, reach the goal; ignored by models without task inputs).

    Returns:
        [B, L] long tokens: actions and the model's END (MASK allowed after ``stop_after``).
    """
    b = grid.shape[0]
    device = grid.device
    if init_tokens is None:
        tokens = torch.full((b, horizon), MASK, dtype=torch.long, device=device)
    else:
        if init_tokens.shape != (b, horizon):
            raise ValueError(f"init_tokens must be [{b}, {horizon}], got {tuple(init_tokens.shape)}")
        if bool(((init_tokens < 0) | (init_tokens >= model.config.vocab_size)).any()):
            raise ValueError("init_tokens must hold actions, MASK or END")
        tokens = init_tokens.to(device=device, dtype=torch.long).clone()
    was_training = model.training
    if was_training:  # eval()/train() walk every module: skip them for a model already in eval mode
        model.eval()
    try:
        state_emb = model.encode_state(grid, direction, carrying=carrying, task=task)  # [B, D], reused
        tokens = unmask(model, state_emb, tokens, num_steps, temperature=temperature, guidance=guidance_scale,
                        top_k=top_k, top_p=top_p, schedule=schedule, generator=generator, forbid=forbid,
                        stop_after=stop_after)
    finally:
        if was_training:
            model.train()
    return tokens
