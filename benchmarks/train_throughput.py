"""Training throughput: the real trainer loop (dataset batches) against bare forward+backward.

Both use the same model, batch size and horizon, in the same run: "bare" repeats one synthetic,
pre-masked batch (no data pipeline, no masking), "trainer" is what ``maze-mdlm train`` does
per step (index draw, ``PlanDataset.get_batch``, masking, forward, backward, clip, AdamW).

    python -m benchmarks.train_throughput [--episodes 2000] [--batch-size 256] [--horizon 16]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import write_results
from benchmarks.model_speed import synthetic_batch, time_call
from envs.collect import collect
from envs.dataset import PlanDataset
from maze_mdlm.config import ModelConfig
from maze_mdlm.masking import mask_tokens
from maze_mdlm.model import MDLMPolicy
from maze_mdlm.trainer import Trainer, TrainConfig, masked_loss


def run(episodes: int = 2000, batch_size: int = 256, horizon: int = 16, iters: int = 10, warmup: int = 3,
        env_id: str = "MiniGrid-FourRooms-v0", config: ModelConfig | None = None) -> dict[str, float]:
    """Samples/s of the trainer loop and of bare forward+backward; returns both and their ratio."""
    torch.manual_seed(0)
    config = config or ModelConfig()
    data = PlanDataset(collect([env_id], episodes, seed=0), horizon)
    model = MDLMPolicy(config)
    trainer = Trainer(model, TrainConfig(batch_size=batch_size, horizon=horizon, steps=10**6))

    def trainer_step() -> None:
        trainer.train_step(data.get_batch(trainer.next_indices(data.num_samples)))

    gen = torch.Generator().manual_seed(0)
    batch = synthetic_batch(batch_size, horizon, config.grid_size, gen)
    tokens, mask, ratio = mask_tokens(batch["actions"], torch.full((batch_size,), 0.5), gen)

    def bare_step() -> None:
        logits = model(tokens, batch["grid"], batch["direction"], ratio)
        loss, _ = masked_loss(logits, batch["actions"], mask)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    def batch_only() -> None:
        data.get_batch(trainer.next_indices(data.num_samples))

    # interleave the measurements so machine noise hits both alike
    trainer_s, bare_s, batch_s = [], [], []
    for _ in range(3):
        trainer_s.append(time_call(trainer_step, iters, warmup))
        bare_s.append(time_call(bare_step, iters, warmup))
        batch_s.append(time_call(batch_only, iters, warmup))
    t, b, d = min(trainer_s), min(bare_s), min(batch_s)
    return {
        "batch_size": batch_size, "horizon": horizon, "threads": torch.get_num_threads(),
        "trainer_samples_per_s": batch_size / t, "bare_samples_per_s": batch_size / b,
        "trainer_over_bare": b / t, "get_batch_ms": 1000 * d, "train_step_ms": 1000 * t,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=2000, help="FourRooms episodes in the dataset")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch")
    parser.add_argument("--horizon", type=int, default=16, help="plan window (the shipped checkpoint's)")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per measurement")
    args = parser.parse_args(argv)
    r = run(args.episodes, args.batch_size, args.horizon, args.iters)
    md = (f"| trainer loop | bare fwd+bwd | ratio | get_batch |\n|---|---|---|---|\n"
          f"| {r['trainer_samples_per_s']:.0f} samples/s | {r['bare_samples_per_s']:.0f} samples/s | "
          f"{r['trainer_over_bare']:.3f} | {r['get_batch_ms']:.2f} ms |\n\n"
          f"B={r['batch_size']}, H={r['horizon']}, {r['threads']} torch threads.")
    print(md)
    write_results("train_throughput", r, md)


if __name__ == "__main__":
    main()
