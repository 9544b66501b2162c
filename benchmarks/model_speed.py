"""Speed of the MDLM policy on synthetic batches (no dataset or env needed).

Measures (1) one training update (forward + backward + AdamW step) at the training batch
size and (2) the sampler at a smaller batch against ``num_steps`` plain batched forwards,
so the sampler's own overhead shows up as a ratio.

    python -m benchmarks.model_speed [--threads N] [--iters N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Sequence

import torch

from maze_mdlm.config import ModelConfig
from maze_mdlm.masking import mask_tokens
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.sampler import sample
from maze_mdlm.tokens import MASK, NUM_ACTIONS
from maze_mdlm.trainer import TrainConfig, build_optimizer, masked_loss


def synthetic_batch(batch_size: int, horizon: int, grid_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random valid grids [B, 3, G, G], directions [B] and action windows [B, H]."""
    shape = (batch_size, grid_size, grid_size)
    grid = torch.stack(
        [
            torch.randint(0, 11, shape, generator=generator),
            torch.randint(0, 6, shape, generator=generator),
            torch.randint(0, 4, shape, generator=generator),
        ],
        dim=1,
    )
    return {
        "grid": grid,
        "direction": torch.randint(0, 4, (batch_size,), generator=generator),
        "actions": torch.randint(0, NUM_ACTIONS, (batch_size, horizon), generator=generator),
    }


def time_call(fn: Callable[[], Any], iters: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``iters`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_benchmark(
    config: ModelConfig | None = None,
    train_batch: int = 256,
    sample_batch: int = 64,
    horizon: int = 32,
    num_steps: int = 8,
    iters: int = 5,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, float]:
    """Time a training update and the sampler. Returns seconds and ratios."""
    config = config or ModelConfig()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MDLMPolicy(config)
    optimizer = build_optimizer(model, TrainConfig())
    train = synthetic_batch(train_batch, horizon, config.grid_size, gen)
    tokens, mask, ratio = mask_tokens(train["actions"], torch.full((train_batch,), 0.5), gen)

    def train_step() -> None:
        model.train()
        logits = model(tokens, train["grid"], train["direction"], ratio)
        loss, _ = masked_loss(logits, train["actions"], mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    train_s = time_call(train_step, iters, warmup)
    perturb(model, gen)

    def train_forward() -> None:
        with torch.no_grad():
            model(tokens, train["grid"], train["direction"], ratio)

    train_forward_s = time_call(train_forward, iters, warmup)
    return {
        "threads": float(torch.get_num_threads()),
        "params": float(sum(p.numel() for p in model.parameters())),
        "train_step_s": train_s,
        "train_forward_s": train_forward_s,
        "train_samples_per_s": train_batch / train_s,
        "train_step_over_forward": train_s / train_forward_s,
        **sampler_speed(model, sample_batch, horizon, num_steps, iters, warmup, gen),
    }


def perturb(model: MDLMPolicy, generator: torch.Generator, scale: float = 0.02) -> MDLMPolicy:
    """Add noise to every weight and switch to eval: a trained-looking model (adaLN-Zero would
    give constant logits)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return model.eval()


SAMPLERS: dict[str, Callable[[], dict[str, Any]]] = {  # sampler keyword arguments per kind
    "sample": dict,  # greedy
    "sample_topp": lambda: {"temperature": 1.0, "top_p": 0.9, "generator": torch.Generator().manual_seed(0)},
    "sample_cfg": lambda: {"guidance_scale": 2.0},
}


def sampler_speed(model: MDLMPolicy, batch_size: int, horizon: int, num_steps: int, iters: int, warmup: int,
                  generator: torch.Generator, kinds: Sequence[str] = tuple(SAMPLERS)) -> dict[str, float]:
    """Seconds of one all-MASK forward (``forward_s``) and of each sampler in ``kinds``
    (``<kind>_s``, see :data:`SAMPLERS`) at ``batch_size``, and ``<kind>_over_forwards``:
    the sampler against ``num_steps`` forwards."""
    small = synthetic_batch(batch_size, horizon, model.config.grid_size, generator)
    all_mask = torch.full((batch_size, horizon), MASK)
    ones = torch.ones(batch_size)

    def one_forward() -> None:
        with torch.no_grad():
            model(all_mask, small["grid"], small["direction"], ones)

    out = {"forward_s": time_call(one_forward, iters, warmup)}
    for kind in kinds:
        seconds = time_call(
            lambda: sample(model, small["grid"], small["direction"], horizon, num_steps, **SAMPLERS[kind]()),
            iters, warmup)
        out[f"{kind}_s"] = seconds
        out[f"{kind}_over_forwards"] = seconds / (num_steps * out["forward_s"])
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI entry: run the default-config benchmark and print seconds and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--iters", type=int, default=5, help="timed repetitions (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up repetitions")
    parser.add_argument("--train-batch", type=int, default=256, help="batch of the training update")
    parser.add_argument("--sample-batch", type=int, default=64, help="batch of the sampler")
    parser.add_argument("--horizon", type=int, default=32, help="action-window length")
    parser.add_argument("--num-steps", type=int, default=8, help="sampler unmasking steps")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    r = run_benchmark(train_batch=args.train_batch, sample_batch=args.sample_batch, horizon=args.horizon,
                      num_steps=args.num_steps, iters=args.iters, warmup=args.warmup)
    print(f"threads={r['threads']:.0f} params={r['params']:.0f}")
    print(f"train step   B={args.train_batch} H={args.horizon}: {1000 * r['train_step_s']:.1f} ms "
          f"({r['train_samples_per_s']:.0f} windows/s; {r['train_step_over_forward']:.2f}x a no-grad forward)")
    print(f"forward      B={args.sample_batch}: {1000 * r['forward_s']:.2f} ms")
    for key, label in (("sample", "greedy"), ("sample_topp", "T=1 top-p"), ("sample_cfg", "greedy+CFG")):
        print(f"sample {label:<11} B={args.sample_batch} S={args.num_steps}: {1000 * r[f'{key}_s']:.1f} ms "
              f"= {r[f'{key}_over_forwards']:.2f}x {args.num_steps} forwards")


if __name__ == "__main__":
    main()
