"""MDLM training: masked cross-entropy, AdamW with warmup + cosine decay, validation, resume.

The trainer only orchestrates; the math lives in small pure functions (``lr_at``,
``masked_loss``) and in :mod:`maze_mdlm.masking`. It writes no files and prints nothing:
the CLI drives :meth:`Trainer.fit` through its callback and saves checkpoints itself.

Data-parallel runs (:mod:`maze_mdlm.distributed`) keep the single-process math: every process
draws the same global batch indices and masking noise from identically seeded generators, trains on
its own rows of that batch, and normalises its loss by the global count, so the averaged gradient
is the one-process gradient of the whole batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from maze_mdlm.config import PlainConfig
from maze_mdlm.distributed import DistInfo, all_reduce_sum, shard_rows
from maze_mdlm.masking import curriculum_mask_ratio, mask_tokens
from maze_mdlm.model import MDLMPolicy


class BatchSource(Protocol):
    """What the trainer needs from a dataset."""

    num_samples: int

    def get_batch(self, indices: Tensor) -> dict[str, Tensor]:
        """indices [B] long -> dict(grid [B,3,G,G], direction [B], actions [B,H], length [B], and
        optionally carrying [B,3], task [B,5], env [B] (index into ``env_names``))."""
        ...


@dataclass
class TrainConfig(PlainConfig):
    """One training run (plain types only, stored in checkpoints)."""

    steps: int = 20_000  # total optimizer steps
    batch_size: int = 256  # windows per step
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.01  # AdamW decay on weight matrices (not biases/norms/null state)
    warmup_steps: int = 500  # linear LR warmup from 0
    min_lr_ratio: float = 0.1  # cosine decay floor, as a fraction of lr
    grad_clip: float = 1.0  # max global grad norm (<= 0 disables)
    horizon: int = 32  # action-window length H fed to the model
    val_every: int = 500  # validate every N steps (0 = never)
    val_max_samples: int = 4096  # cap on validation windows per validation
    val_mask_ratio: float = 0.5  # fixed mask ratio used by validate()
    eval_every: int = 0  # call the in-env eval_fn every N steps (0 = never)
    log_every: int = 50  # emit averaged train metrics every N steps
    mask_schedule: str = "cosine"  # base ratio schedule of t ~ U[0,1]: cosine | linear
    use_curriculum: bool = True  # blend the ratio towards a ramping target (see masking.py)
    min_mask_ratio: float = 0.1  # curriculum target at the start
    max_mask_ratio: float = 0.75  # curriculum target after curriculum_warmup_steps
    curriculum_warmup_steps: int = 2000  # steps over which the target ramps min -> max
    curriculum_blend: float = 0.7  # weight of the curriculum target in the blend
    curriculum_fade: bool = True  # blend weight decays to 0 over the ramp: late training sees the
    # plain schedule, i.e. every ratio the sampler visits, all-MASK included (the spec's fixed blend
    # never shows ratios above ~0.83, while sampling starts from all-MASK)
    seed: int = 0  # seeds the batch-index and masking generators
    mdlm_elbo_weighting: bool = False  # weight each row's masked CE by 1/ratio (MDLM ELBO)
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward passes; weights stay fp32)
    compile: bool = False  # torch.compile the training forward pass

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


PRECISIONS = ("fp32", "bf16")
STATE_KEYS = ("grid", "direction", "carrying", "task")  # the model's state inputs in a batch


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup to ``base_lr`` over ``warmup_steps`` then cosine decay to
    ``base_lr * min_lr_ratio`` at ``total_steps``. ``step`` counts from 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    floor = base_lr * min_lr_ratio
    return floor + 0.5 * (base_lr - floor) * (1.0 + math.cos(math.pi * progress))


def masked_loss_terms(
    logits: Tensor, targets: Tensor, mask: Tensor, row_weight: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The sums behind :func:`masked_loss`, which add up across the shards of a batch.

    logits [B, L, V], targets [B, L] long, mask [B, L] bool -> (numerator [] with grad,
    denominator [], correct [], masked []): loss = numerator / denominator, accuracy =
    correct / masked. The denominator is the number of masked tokens, or of rows with
    ``row_weight`` [B].
    """
    ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # [B, L]
    maskf = mask.to(ce.dtype)
    if row_weight is None:
        numerator, denominator = (ce * maskf).sum(), maskf.sum()
    else:
        numerator = ((ce * maskf).sum(dim=1) * row_weight).sum()
        denominator = torch.tensor(float(mask.shape[0]), device=ce.device)
    with torch.no_grad():
        correct = ((logits.argmax(dim=-1) == targets) & mask).sum().float()
    return numerator, denominator, correct, maskf.sum().detach()


def masked_loss(
    logits: Tensor, targets: Tensor, mask: Tensor, row_weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Cross-entropy and accuracy on masked positions only.

    logits [B, L, V], targets [B, L] long, mask [B, L] bool -> (loss [], accuracy []).
    Without ``row_weight``: mean CE over all masked tokens of the batch. With
    ``row_weight`` [B] (MDLM ELBO, weight 1/(L * ratio)): mean over rows of the weighted
    sum of that row's masked CE.
    """
    numerator, denominator, correct, masked = masked_loss_terms(logits, targets, mask, row_weight)
    return numerator / denominator.clamp(min=1.0), correct / masked.clamp(min=1.0)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on >= 2-D weights only (biases, norms, null state excluded)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


Callback = Callable[[str, int, dict[str, float]], "bool | None"]
EvalFn = Callable[[MDLMPolicy], dict[str, float]]


class Trainer:
    """Trains an :class:`MDLMPolicy`; :class:`ARTrainer` swaps in the next-action objective.

    Owns the optimizer, the step counter and the two generators (batch indices, masking).

    ``train_step`` does one update on a given batch; ``fit`` draws batches from a
    ``BatchSource`` (epoch-wise permutations) and reports through a callback.

    ``dist`` (a joined process group of ``world_size`` > 1) makes this process train on its
    :func:`~maze_mdlm.distributed.shard_rows` of each global batch of ``config.batch_size`` under
    ``DistributedDataParallel``. ``self.model`` is always the bare module (checkpoints, validation,
    evaluation); ``self.net`` is what the training forward pass calls (compiled, DDP-wrapped).
    """

    VAL_SEED_OFFSET = 1_000_003

    def __init__(self, model: MDLMPolicy, config: TrainConfig, device: torch.device | str | None = None,
                 dist: DistInfo | None = None) -> None:
        if config.horizon > model.config.max_seq_len:
            raise ValueError(f"horizon {config.horizon} > model max_seq_len {model.config.max_seq_len}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.config = config
        self.dist = dist or DistInfo()
        self.shard = shard_rows(config.batch_size, self.dist) if self.dist.enabled else None
        self.net: torch.nn.Module = torch.compile(self.model) if config.compile else self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = build_optimizer(self.model, config)
        self.step = 0
        self.data_generator = torch.Generator().manual_seed(config.seed)
        self.mask_generator = torch.Generator().manual_seed(config.seed + 1)
        self._perm = torch.empty(0, dtype=torch.long)
        self._cursor = 0

    # ---- pieces ---------------------------------------------------------------------------
    def current_lr(self) -> float:
        """Learning rate used by the next step."""
        c = self.config
        return lr_at(self.step, c.lr, c.warmup_steps, c.steps, c.min_lr_ratio)

    def curriculum_progress(self) -> float:
        """Fraction of the curriculum ramp done, in [0, 1]."""
        warm = self.config.curriculum_warmup_steps
        return 1.0 if warm <= 0 else min(self.step / warm, 1.0)

    def curriculum_blend(self) -> float:
        """Weight of the curriculum target now: fixed, or fading to 0 with ``curriculum_fade``."""
        c = self.config
        if not c.use_curriculum:
            return 0.0
        return c.curriculum_blend * ((1.0 - self.curriculum_progress()) if c.curriculum_fade else 1.0)

    def sample_mask_ratio(self, batch_size: int) -> Tensor:
        """Per-row training mask ratio [B] drawn from the mask generator."""
        c = self.config
        t = torch.rand(batch_size, generator=self.mask_generator)
        return curriculum_mask_ratio(
            t,
            self.curriculum_progress(),
            schedule=c.mask_schedule,
            min_mask_ratio=c.min_mask_ratio,
            max_mask_ratio=c.max_mask_ratio,
            blend=self.curriculum_blend(),
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' precision context: bf16 autocast, or nothing for fp32."""
        if self.config.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def next_indices(self, num_samples: int) -> Tensor:
        """Next ``batch_size`` dataset indices [B] from epoch-wise random permutations."""
        if num_samples < 1:
            raise ValueError("the training data is empty")
        chunks, need = [], self.config.batch_size
        while need > 0:
            if self._cursor >= self._perm.numel() or self._perm.numel() != num_samples:
                self._perm = torch.randperm(num_samples, generator=self.data_generator)
                self._cursor = 0
            take = self._perm[self._cursor : self._cursor + need]
            self._cursor += take.numel()
            need -= take.numel()
            chunks.append(take)
        return torch.cat(chunks)

    def _unpack(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """batch -> (state inputs: grid [B,3,G,G], direction [B], and carrying [B,3] / task [B,5]
        where the batch has them; actions [B,H]), on the device."""
        actions = batch["actions"]
        horizon = self.config.horizon
        if actions.shape[1] < horizon:
            raise ValueError(f"batch actions have {actions.shape[1]} steps < horizon {horizon}")
        state = {k: batch[k].to(self.device, torch.long) for k in STATE_KEYS if k in batch}
        return state, actions[:, :horizon].to(self.device, torch.long)

    def predict(
        self, state: dict[str, Tensor], actions: Tensor, ratio: Tensor, generator: torch.Generator,
        train: bool, rows: slice | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The objective's forward pass: corrupt ``actions`` [b, H] with MASK at ``ratio`` [B] and
        predict them from ``state`` (grid, direction, carrying, task; see :meth:`_unpack`).
        Returns (logits [b, H, V], loss positions [b, H] bool, actual ratio [b]).
        In training, rows lose their state condition with prob. ``cond_drop_prob`` (for CFG), and
        the forward pass goes through ``self.net``. ``rows``: which rows of the global batch of
        ``len(ratio)`` these ``b`` are (a data-parallel shard); the noise is drawn for all of them."""
        tokens, mask, actual = mask_tokens(actions, ratio, generator, rows=rows)
        drop = None
        if train:
            drop = torch.rand(ratio.shape[0], generator=generator) < self.model.config.cond_drop_prob
            drop = (drop if rows is None else drop[rows]).to(self.device)
        net = self.net if train else self.model
        with self.autocast():
            return net(tokens, mask_ratio=actual, drop_state=drop, **state), mask, actual

    # ---- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One optimizer step on ``batch``. Returns loss, accuracy, mask_ratio, lr, grad_norm.

        In a data-parallel run ``batch`` holds this process's shard (``self.shard``) of the global
        batch, and the returned metrics are those of the whole global batch."""
        self.model.train()
        state, actions = self._unpack(batch)
        b, horizon = actions.shape
        world = self.dist.world_size
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        ratio = self.sample_mask_ratio(b * world)  # [B] for the global batch
        logits, mask, actual_ratio = self.predict(state, actions, ratio, self.mask_generator, True, rows=self.shard)
        row_weight = None
        if self.config.mdlm_elbo_weighting:
            mine = ratio if self.shard is None else ratio[self.shard]
            row_weight = 1.0 / (horizon * mine.to(self.device).clamp(min=1.0 / horizon))
        numerator, denominator, correct, masked = masked_loss_terms(logits, actions, mask, row_weight)
        # global sums: [numerator, denominator, correct, masked, sum of actual ratios]
        totals = torch.stack([numerator.detach(), denominator, correct, masked, actual_ratio.sum()]).double()
        totals = all_reduce_sum(totals, self.dist).tolist()
        # DDP averages the ranks' gradients, hence the denominator / world: the mean of the ranks'
        # gradients is then the gradient of global numerator / global denominator
        loss = numerator / (max(totals[1], 1.0) / world)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.step += 1
        return {
            "loss": totals[0] / max(totals[1], 1.0),
            "accuracy": totals[2] / max(totals[3], 1.0),
            "mask_ratio": totals[4] / (b * world),
            "lr": lr,
            "grad_norm": float(grad_norm),
        }

    @torch.no_grad()
    def validate(self, batch_source: BatchSource, max_samples: int | None = None) -> dict[str, float]:
        """Masked CE / accuracy over at most ``max_samples`` windows, evenly spaced over the
        validation data (so every env of a mixture is in), at a fixed mask ratio
        (:meth:`predict`'s loss positions: all of them for the AR baseline).

        Uses a freshly seeded generator, so repeated calls see identical masks. Also reports
        ``plan_accuracy`` (masked positions whose target is not the model's END), ``end_accuracy``
        and, when the batches name their env (``env`` + the source's ``env_names``), the loss and
        accuracy of each env as ``env/<ENV>/loss`` and ``env/<ENV>/accuracy``.
        """
        c = self.config
        limit = c.val_max_samples if max_samples is None else max_samples
        n = min(batch_source.num_samples, limit)
        if n < 1:
            raise ValueError("the validation data is empty")
        order = torch.linspace(0, batch_source.num_samples - 1, n).round().long()  # [n], evenly spaced
        end_token = self.model.config.end_token
        generator = torch.Generator().manual_seed(c.seed + self.VAL_SEED_OFFSET)
        was_training = self.model.training
        self.model.eval()
        ce_sum = torch.zeros((), dtype=torch.float64)
        counts = torch.zeros(5, dtype=torch.float64)  # masked, correct, plan, plan ok, end ok
        names = getattr(batch_source, "env_names", None)
        per_env = torch.zeros(len(names) if names else 0, 3, dtype=torch.float64)  # masked, ce, correct
        try:
            for start in range(0, n, c.batch_size):
                idx = order[start : start + c.batch_size]
                batch = batch_source.get_batch(idx)
                state, actions = self._unpack(batch)
                ratio = torch.full((idx.numel(),), c.val_mask_ratio)
                logits, mask, _ = self.predict(state, actions, ratio, generator, False)
                ce = F.cross_entropy(logits.float().transpose(1, 2), actions, reduction="none")
                ok = logits.argmax(dim=-1) == actions
                plan = mask & (actions != end_token)
                end = mask & (actions == end_token)
                ce_sum += (ce * mask).sum().double().cpu()
                counts += torch.stack(
                    [mask.sum(), (ok & mask).sum(), plan.sum(), (ok & plan).sum(), (ok & end).sum()]
                ).double().cpu()
                if names and "env" in batch:
                    rows = torch.stack([mask.sum(1), (ce * mask).sum(1), (ok & mask).sum(1)], dim=1)
                    per_env.index_add_(0, batch["env"].long(), rows.double().cpu())
        finally:
            self.model.train(was_training)
        masked, correct, plan, plan_ok, end_ok = counts.tolist()
        metrics = {
            "loss": float(ce_sum) / max(masked, 1.0),
            "accuracy": correct / max(masked, 1.0),
            "plan_accuracy": plan_ok / max(plan, 1.0),
            "end_accuracy": end_ok / max(masked - plan, 1.0),
            "num_tokens": masked,
        }
        for name, (tokens, ce_env, ok_env) in zip(names or (), per_env.tolist()):
            if tokens:
                metrics[f"env/{name}/loss"] = ce_env / tokens
                metrics[f"env/{name}/accuracy"] = ok_env / tokens
        return metrics

    def fit(
        self,
        train_data: BatchSource,
        val_data: BatchSource | None = None,
        callback: Callback | None = None,
        eval_fn: EvalFn | None = None,
    ) -> dict[str, dict[str, float]]:
        """Train from the current step up to ``config.steps``.

        ``callback(event, step, metrics)`` is called with event "train" every ``log_every``
        steps (metrics averaged over the window, plus ``steps_per_s``), "val" every
        ``val_every`` steps, and "eval" every ``eval_every`` steps with ``eval_fn(model)``'s
        dict (model in eval mode). All periodic events also fire at the final step. If the
        callback returns True, training stops after that step. Returns the last metrics of
        each event kind.
        """
        c = self.config
        last: dict[str, dict[str, float]] = {}
        window: dict[str, float] = {}
        window_steps, t0 = 0, time.perf_counter()

        def due(every: int) -> bool:
            return every > 0 and (self.step % every == 0 or self.step == c.steps)

        def emit(event: str, metrics: dict[str, float]) -> bool:
            last[event] = metrics
            return bool(callback(event, self.step, metrics)) if callback is not None else False

        while self.step < c.steps:
            weights = getattr(train_data, "sample_weights", None)
            if weights is None:
                indices = self.next_indices(train_data.num_samples)  # [B], the same in every process
            else:  # a weighted mixture: draws with replacement, from the same generator
                indices = torch.multinomial(weights, c.batch_size, replacement=True, generator=self.data_generator)
            batch = train_data.get_batch(indices if self.shard is None else indices[self.shard])
            metrics = self.train_step(batch)
            for key, value in metrics.items():
                window[key] = window.get(key, 0.0) + value
            window_steps += 1
            stop = False
            if due(c.log_every) or self.step == c.steps:
                elapsed = time.perf_counter() - t0
                averaged = {k: v / window_steps for k, v in window.items()}
                averaged["lr"] = metrics["lr"]
                averaged["steps_per_s"] = window_steps / max(elapsed, 1e-9)
                stop |= emit("train", averaged)
                window, window_steps, t0 = {}, 0, time.perf_counter()
            if val_data is not None and due(c.val_every):
                stop |= emit("val", self.validate(val_data))
            if eval_fn is not None and due(c.eval_every):
                was_training = self.model.training
                self.model.eval()
                try:
                    results = dict(eval_fn(self.model))
                finally:
                    self.model.train(was_training)
                stop |= emit("eval", results)
            if stop:
                break
        return last

    # ---- resume ---------------------------------------------------------------------------
    def rng_state(self) -> dict[str, Any]:
        """Generator states and the data-permutation cursor (tensors / ints only)."""
        return {
            "data": self.data_generator.get_state(),
            "mask": self.mask_generator.get_state(),
            "perm": self._perm.clone(),
            "cursor": self._cursor,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-for-bit: model, optimizer, step, RNG state."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "rng": self.rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`, or from a checkpoint dict whose ``extra`` holds
        ``{"rng": trainer.rng_state()}`` (without RNG state the generators are kept)."""
        self.model.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        rng = state.get("rng") or (state.get("extra") or {}).get("rng")
        if rng is not None:
            self.data_generator.set_state(rng["data"].cpu())
            self.mask_generator.set_state(rng["mask"].cpu())
            self._perm = rng["perm"].cpu().long()
            self._cursor = int(rng["cursor"])


class ARTrainer(Trainer):
    """Trainer of the autoregressive baseline (:class:`maze_mdlm.ar.ARPolicy`): teacher-forced
    next-action cross-entropy on every window position, END targets included. Everything else
    (data order, optimizer, LR schedule, clipping, validation, resume) is the MDLM trainer's."""

    def predict(
        self, state: dict[str, Tensor], actions: Tensor, ratio: Tensor, generator: torch.Generator,
        train: bool, rows: slice | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> (logits [b, H, V], all-True loss positions [b, H], ones [b]); ``ratio`` and ``rows``
        are unused (no noise)."""
        net = self.net if train else self.model
        with self.autocast():
            logits = net(self.model.teacher_inputs(actions), **state)
        ones = torch.ones(actions.shape[0], device=actions.device)
        return logits, torch.ones_like(actions, dtype=torch.bool), ones
