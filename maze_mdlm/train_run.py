"""``maze-mdlm train``: data files in, ``DIR/checkpoint.pt`` and ``DIR/metrics.jsonl`` out."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.dataset import PlanDataset, concat_episodes, load_episodes
from envs.seeds import VAL_SEED_START
from maze_mdlm.checkpoint import MODEL_TYPES, read_checkpoint, save_checkpoint
from maze_mdlm.config import ModelConfig
from maze_mdlm.trainer import ARTrainer, Trainer, TrainConfig

TRAINERS = {"mdlm": Trainer, "ar": ARTrainer}  # --model -> trainer (the objective)

_DEFAULTS = TrainConfig()


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` flags; defaults come from :class:`TrainConfig`."""
    from maze_mdlm.cli import nonnegative_int, positive_int

    p.add_argument("--data", action="append", required=True, metavar="FILE", help="dataset from collect-data (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoint.pt and metrics.jsonl")
    p.add_argument("--steps", type=positive_int, default=_DEFAULTS.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=positive_int, default=_DEFAULTS.batch_size, help="windows per step")
    p.add_argument("--lr", type=float, default=_DEFAULTS.lr, help="peak learning rate (AdamW)")
    p.add_argument("--horizon", type=positive_int, default=_DEFAULTS.horizon, help="plan window length H")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto picks CUDA when present")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds numpy, torch and the in-training eval")
    p.add_argument("--resume", action="store_true", help="continue DIR/checkpoint.pt up to --steps")
    p.add_argument("--val-every", type=nonnegative_int, default=_DEFAULTS.val_every, help="validation period (steps)")
    p.add_argument("--eval-every", type=nonnegative_int, default=0,
                   help=f"in-env success check period (steps, 0 = only at the end); seeds from {VAL_SEED_START}")
    p.add_argument("--eval-episodes", type=nonnegative_int, default=50, help="episodes per in-env check (0 = none)")
    p.add_argument("--model", choices=tuple(MODEL_TYPES), default="mdlm",
                   help="mdlm: masked diffusion (default); ar: the autoregressive baseline, same network made causal")
    p.add_argument("--hidden-dim", type=positive_int, default=ModelConfig.hidden_dim, help="model width")
    p.add_argument("--num-layers", type=positive_int, default=ModelConfig.num_layers, help="DiT blocks")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _device(name: str) -> torch.device:
    from maze_mdlm.cli import UsageError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch from one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_training(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from maze_mdlm.cli import UsageError, check_env_id

    out = Path(args.out)
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.jsonl"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, expected a folder")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if args.resume and not ckpt_path.is_file():
        raise UsageError(f"--resume: there is no {ckpt_path} to continue")
    if not args.resume and ckpt_path.exists():
        raise UsageError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    if args.batch_size < 2:
        raise UsageError("--batch-size must be at least 2")
    if not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    device = _device(args.device)
    paths = [Path(p) for p in args.data]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"--data {path}: no such file")
    episodes = concat_episodes([load_episodes(p) for p in paths])
    if len(episodes) == 0 or len(episodes.actions) == 0:
        raise UsageError(f"--data {' '.join(map(str, paths))}: the dataset holds no expert steps")
    eval_env = episodes.meta["envs"][0]
    check_env_id(eval_env)

    seed_everything(args.seed)
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, horizon=args.horizon, seed=args.seed,
        val_every=args.val_every, eval_every=args.eval_every,
        warmup_steps=min(_DEFAULTS.warmup_steps, max(args.steps // 10, 1)),
        curriculum_warmup_steps=min(_DEFAULTS.curriculum_warmup_steps, max(args.steps // 4, 1)),
    )
    model_config = ModelConfig(hidden_dim=args.hidden_dim, num_layers=args.num_layers, grid_size=episodes.grid_size,
                               max_seq_len=max(ModelConfig.max_seq_len, args.horizon),
                               cond_drop_prob=ModelConfig.cond_drop_prob if args.model == "mdlm" else 0.0)
    data = PlanDataset(episodes, config.horizon)
    train_data, val_data = data.split(0.02)
    dataset_meta = {
        "files": [{"name": p.name, "sha256_16": _file_digest(p)} for p in paths],
        "envs": episodes.meta["envs"],
        "episodes": len(episodes),
        "seeds": [int(episodes.seeds.min()), int(episodes.seeds.max())],
        "train_samples": train_data.num_samples,
        "val_samples": val_data.num_samples,
        "meta": episodes.meta,
    }
    model = MODEL_TYPES[args.model](model_config)
    trainer = TRAINERS[args.model](model, config, device=device)
    if args.resume:
        ckpt = read_checkpoint(ckpt_path, map_location=device)
        if ckpt["model_type"] != args.model:
            raise UsageError(f"--resume: {ckpt_path} holds a {ckpt['model_type']!r} model, not --model {args.model}")
        if ckpt["model_config"] != model_config.to_dict():
            raise UsageError(f"--resume: {ckpt_path} was trained with another model config")
        trainer.load_state_dict(ckpt)
    out.mkdir(exist_ok=True)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        from agents.ar_agent import ARAgent
        from agents.mdlm_agent import MDLMAgent
        from maze_mdlm.evaluation import evaluate

        agent = {"mdlm": MDLMAgent, "ar": ARAgent}[args.model](m, horizon=config.horizon, seed=args.seed)
        result = evaluate(agent, eval_env, args.eval_episodes, VAL_SEED_START)
        return {k: result[k] for k in ("success_rate", "path_ratio", "mean_steps")}

    def save() -> None:
        save_checkpoint(ckpt_path, model, model_config, trainer.optimizer.state_dict(), trainer.step, config,
                        dataset_meta, extra={"rng": trainer.rng_state()})

    status: dict[str, Any] = {"loss": float("nan"), "accuracy": float("nan"), "sps": 0.0}
    columns = (
        TextColumn("step {task.completed}/{task.total}"), BarColumn(),
        TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[accuracy]:.3f} {task.fields[sps]:.0f} samples/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress, metrics_path.open("a") as log:
        task = progress.add_task("train", total=config.steps, completed=trainer.step, **status)

        def callback(event: str, step: int, metrics: dict[str, float]) -> bool:
            log.write(json.dumps({"event": event, "step": step, **metrics}) + "\n")
            log.flush()
            if event == "train":
                status.update(loss=metrics["loss"], accuracy=metrics["accuracy"],
                              sps=metrics["steps_per_s"] * config.batch_size)
                progress.update(task, completed=step, **status)
            elif event == "val":
                progress.console.log(f"step {step}: val loss {metrics['loss']:.4f} acc {metrics['accuracy']:.4f}")
                save()
            elif event == "eval":
                progress.console.log(f"step {step}: {eval_env} success {metrics['success_rate']:.3f} on held-out seeds")
            return False

        trainer.fit(train_data, val_data, callback=callback, eval_fn=eval_fn if args.eval_every else None)
        save()
        if args.eval_episodes and not args.eval_every:
            callback("eval", trainer.step, eval_fn(model.eval()))
    print(f"wrote {ckpt_path} (step {trainer.step})")
    return 0
