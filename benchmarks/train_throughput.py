"""Training throughput: the real trainer loop (dataset batches) against bare forward+backward.

Both use the same model, batch size and horizon, in the same run: "bare" repeats one synthetic,
pre-masked batch (no data pipeline, no masking), "trainer" is what ``maze-mdlm train`` does
per step (index draw, ``PlanDataset.get_batch``, masking, forward, backward, clip, AdamW).

    python -m benchmarks.train_throughput [--episodes 2000] [--batch-size 256] [--horizon 16]

``--precision-sweep`` measures the trainer loop instead in fp32 (eager), bf16 autocast and bf16 +
``torch.compile`` at batch 256, 1024 and 4096 on a CUDA GPU, and writes ``train_precision.md``;
without a GPU it writes a page that says the sweep was skipped (the CPU numbers would say nothing
about the GPU settings these flags are for).

    python -m benchmarks.train_throughput --precision-sweep [--episodes 2000] [--horizon 16]
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


SWEEP_MODES = {"fp32 eager": ("fp32", False), "bf16": ("bf16", False), "bf16+compile": ("bf16", True)}
SWEEP_BATCHES = (256, 1024, 4096)


def precision_sweep(episodes: int = 2000, horizon: int = 16, batch_sizes: tuple[int, ...] = SWEEP_BATCHES,
                    modes: tuple[str, ...] = tuple(SWEEP_MODES), iters: int = 10, warmup: int = 3,
                    device: str | None = None, env_id: str = "MiniGrid-FourRooms-v0",
                    config: ModelConfig | None = None) -> dict:
    """Trainer-loop samples/s for each mode of :data:`SWEEP_MODES` and batch size.

    ``device=None`` means the CUDA GPU, and returns ``{"skipped": reason}`` when there is none;
    pass ``device="cpu"`` to run it on the CPU anyway. Returns ``{"device", "rows": [{mode,
    batch_size, samples_per_s, speedup_vs_first}]}``; a mode that fails (no compiler) gets ``error``.
    """
    if device is None:
        if not torch.cuda.is_available():
            return {"skipped": "no CUDA GPU on this machine: the fp32 / bf16 / bf16+compile sweep is for GPUs"}
        device = "cuda"
    config = config or ModelConfig()
    data = PlanDataset(collect([env_id], episodes, seed=0), horizon)
    rows = []
    for batch_size in batch_sizes:
        base = None
        for mode in modes:
            precision, compiled = SWEEP_MODES[mode]
            torch.manual_seed(0)
            trainer = Trainer(MDLMPolicy(config), TrainConfig(batch_size=batch_size, horizon=horizon, steps=10**6,
                                                              precision=precision, compile=compiled), device=device)

            def step() -> None:
                trainer.train_step(data.get_batch(trainer.next_indices(data.num_samples)))

            row = {"mode": mode, "batch_size": batch_size}
            try:
                seconds = time_call(step, iters, warmup)
            except Exception as err:  # noqa: BLE001 - e.g. no working compiler: report, go on
                row["error"] = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
            else:
                row["samples_per_s"] = batch_size / seconds
                base = base or (row["samples_per_s"] if mode == modes[0] else None)
                row["speedup_vs_first"] = row["samples_per_s"] / base if base else None
            rows.append(row)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    return {"device": name, "horizon": horizon, "modes": list(modes), "rows": rows}


def sweep_markdown(r: dict) -> str:
    """The results page of :func:`precision_sweep`."""
    if "skipped" in r:
        return f"Skipped: {r['skipped']}. Run it on a machine with a GPU to fill this page."
    lines = [f"Trainer loop samples/s on {r['device']}, H={r['horizon']} (speed-up against {r['modes'][0]}).", "",
             "| batch | " + " | ".join(r["modes"]) + " |", "|---|" + "---|" * len(r["modes"])]
    for batch in sorted({row["batch_size"] for row in r["rows"]}):
        cells = []
        for row in (x for x in r["rows"] if x["batch_size"] == batch):
            if "error" in row:
                cells.append(f"failed ({row['error']})")
            else:
                ratio = row.get("speedup_vs_first")
                cells.append(f"{row['samples_per_s']:.0f}" + (f" ({ratio:.2f}x)" if ratio else ""))
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=2000, help="FourRooms episodes in the dataset")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch")
    parser.add_argument("--horizon", type=int, default=16, help="plan window (the shipped checkpoint's)")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--precision-sweep", action="store_true",
                        help="fp32 / bf16 / bf16+compile at batch 256, 1024, 4096 on the GPU (skipped without one)")
    args = parser.parse_args(argv)
    if args.precision_sweep:
        sweep = precision_sweep(args.episodes, args.horizon, iters=args.iters)
        md = sweep_markdown(sweep)
        print(md)
        write_results("train_precision", sweep, md, module="train_throughput")
        return
    r = run(args.episodes, args.batch_size, args.horizon, args.iters)
    md = (f"| trainer loop | bare fwd+bwd | ratio | get_batch |\n|---|---|---|---|\n"
          f"| {r['trainer_samples_per_s']:.0f} samples/s | {r['bare_samples_per_s']:.0f} samples/s | "
          f"{r['trainer_over_bare']:.3f} | {r['get_batch_ms']:.2f} ms |\n\n"
          f"B={r['batch_size']}, H={r['horizon']}, {r['threads']} torch threads.")
    print(md)
    write_results("train_throughput", r, md)


if __name__ == "__main__":
    main()
