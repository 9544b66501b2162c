"""``maze-mdlm train``, ``plot`` and ``export-minari``: data in, ``DIR/checkpoint.pt`` and metrics out.

A command-line module, the one place on the training side that imports ``agents``: the in-training
success check builds its agent here and hands the trainer a plain ``eval_fn`` (the core never
imports ``agents``). Every check of the arguments runs before anything is written.

One process, or N under ``torchrun --nproc_per_node N -m maze_mdlm.cli train ...`` (see
:mod:`maze_mdlm.distributed`): same command, same global ``--batch-size``, rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from envs.dataset import ENV_WEIGHTINGS, Episodes, PlanDataset, concat_episodes, env_factors, load_episodes
from envs.seeds import VAL_SEED_START
from maze_mdlm import distributed
from maze_mdlm.checkpoint import MODEL_TYPES, read_checkpoint, save_checkpoint
from maze_mdlm.cli_common import UsageError, check_env_id, check_writable, file_digest, nonnegative_int, positive_int
from maze_mdlm.config import ModelConfig
from maze_mdlm.trainer import PRECISIONS, ARTrainer, Trainer, TrainConfig

TRAINERS = {"mdlm": Trainer, "ar": ARTrainer}  # --model -> trainer (the objective)
MINARI_PREFIX = "minari:"  # --data minari:ID reads a local Minari dataset

_DEFAULTS = TrainConfig()

# the in-training success check's agent: (model, horizon, seed) -> agent with reset/act
AgentFactory = Callable[[torch.nn.Module, int, int], Any]


def policy_agent_factory(model_type: str) -> AgentFactory:
    """The closed-loop agent of a ``--model`` (``MDLMAgent`` or ``ARAgent``)."""
    from agents.ar_agent import ARAgent
    from agents.mdlm_agent import MDLMAgent

    cls = {"mdlm": MDLMAgent, "ar": ARAgent}[model_type]
    return lambda model, horizon, seed: cls(model, horizon=horizon, seed=seed)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` flags; defaults come from :class:`TrainConfig`."""
    p.add_argument("--data", action="append", required=True, metavar="FILE",
                   help=f"dataset from collect-data, or {MINARI_PREFIX}ID for a local Minari dataset (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoint.pt and metrics.jsonl")
    p.add_argument("--steps", type=positive_int, default=_DEFAULTS.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=positive_int, default=_DEFAULTS.batch_size,
                   help="windows per step, over all processes (torchrun: split evenly across them)")
    p.add_argument("--lr", type=float, default=_DEFAULTS.lr, help="peak learning rate (AdamW)")
    p.add_argument("--horizon", type=positive_int, default=_DEFAULTS.horizon, help="plan window length H")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto picks CUDA when present")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seeds numpy, torch and the in-training eval")
    p.add_argument("--resume", action="store_true", help="continue DIR/checkpoint.pt up to --steps")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="fine-tune: start from the weights of CHECKPOINT (a train or export output of the same "
                        "--model, whose model config is kept) with a new optimizer, LR warmup and schedule, from "
                        "step 0 and without the mask-ratio curriculum (the weights have been through it)")
    p.add_argument("--val-every", type=nonnegative_int, default=_DEFAULTS.val_every, help="validation period (steps)")
    p.add_argument("--log-every", type=positive_int, default=_DEFAULTS.log_every,
                   help="period (steps) of the averaged train records in metrics.jsonl")
    p.add_argument("--eval-every", type=nonnegative_int, default=0,
                   help=f"in-env success check period (steps, 0 = only at the end); seeds from {VAL_SEED_START}")
    p.add_argument("--eval-episodes", type=nonnegative_int, default=50,
                   help="episodes per env in each in-env check, on every env of the data (0 = none)")
    p.add_argument("--env-weighting", choices=ENV_WEIGHTINGS, default="windows",
                   help="how a mixture of envs is sampled: windows (every training window equally often, "
                        "so an env weighs by its episodes x plan length) or envs (every env equally often)")
    p.add_argument("--env-weight", action="append", default=[], metavar="PATTERN=FACTOR",
                   help="multiply the draw weight of the envs whose id matches PATTERN (fnmatch, e.g. "
                        "'MazeMDLM/*=3') by FACTOR > 0, on top of --env-weighting; repeatable")
    p.add_argument("--model", choices=tuple(MODEL_TYPES), default="mdlm",
                   help="mdlm: masked diffusion (default); ar: the autoregressive baseline, same network made causal")
    p.add_argument("--hidden-dim", type=positive_int, default=None,
                   help=f"model width (divisible by the {ModelConfig.num_heads} attention heads; "
                        f"default {ModelConfig.hidden_dim}, or the --init / --resume checkpoint's)")
    p.add_argument("--num-layers", type=positive_int, default=None,
                   help=f"DiT blocks (default {ModelConfig.num_layers}, or the --init / --resume checkpoint's)")
    p.add_argument("--precision", choices=PRECISIONS, default=_DEFAULTS.precision,
                   help="fp32, or bf16 autocast of the forward passes (weights and optimizer stay fp32)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training forward pass (needs a working C++ compiler on CPU, triton on GPU)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard events into DIR (needs the tensorboard extra)")


def _device(name: str) -> torch.device:
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


def load_sources(sources: list[str]) -> tuple[Episodes, list[dict[str, Any]]]:
    """Read every ``--data`` (files and ``minari:ID``) -> (episodes, their metadata for the checkpoint)."""
    parts, described = [], []
    for source in sources:
        if source.startswith(MINARI_PREFIX):
            from maze_mdlm.minari_data import MinariFormatError, load_minari_episodes

            dataset_id = source[len(MINARI_PREFIX):]
            try:
                parts.append(load_minari_episodes(dataset_id))
            except ImportError as err:
                raise UsageError(f"--data {source}: {err}") from None
            except MinariFormatError as err:
                raise UsageError(f"--data {err}") from None
            described.append({"name": source, "minari_id": dataset_id})
        else:
            path = Path(source)
            if not path.is_file():
                raise UsageError(f"--data {path}: no such file")
            parts.append(load_episodes(path))
            described.append({"name": path.name, "sha256_16": file_digest(path)})
    return concat_episodes(parts), described


@dataclass
class TrainSetup:
    """A validated ``train`` invocation (nothing written yet)."""

    out: Path
    checkpoint: Path
    metrics: Path
    device: torch.device
    dist: distributed.DistInfo
    episodes: Episodes
    sources: list[dict[str, Any]]
    config: TrainConfig
    model_config: ModelConfig
    eval_envs: list[str]  # the in-env check's envs (every env of the data; empty: no check)
    resume_from: dict[str, Any] | None
    init_from: dict[str, Any] | None  # --init: the checkpoint whose weights start the run
    env_boost: dict[str, float] = dataclasses.field(default_factory=dict)  # --env-weight PATTERN=FACTOR


def prepare(args: argparse.Namespace) -> TrainSetup:
    """Check every argument (and the data) of ``train`` without writing anything.

    Raises:
        UsageError: with a one-line reason.
    """
    out = Path(args.out)
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.jsonl"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, expected a folder")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if args.resume and args.init:
        raise UsageError("--init starts a new run from a checkpoint's weights, --resume continues DIR/checkpoint.pt; "
                         "pass one of them")
    if args.resume and not ckpt_path.is_file():
        raise UsageError(f"--resume: there is no {ckpt_path} to continue")
    if not args.resume and ckpt_path.exists():
        raise UsageError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    if args.batch_size < 2:
        raise UsageError("--batch-size must be at least 2")
    if not 0 < args.lr < float("inf"):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    try:
        dist = distributed.from_environment()
        distributed.shard_rows(args.batch_size, dist)
    except ValueError as err:
        raise UsageError(str(err)) from None
    device = distributed.device_for(dist, _device(args.device))
    if args.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use fp32")
    if args.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise UsageError("--tensorboard needs the tensorboard package: pip install 'maze-mdlm[tensorboard]'") from None
    source = _source_checkpoint(args, ckpt_path, device)  # --init / --resume: read before any config
    try:
        if source is not None:
            model_config = _source_model_config(args, source)
        else:
            model_config = ModelConfig(hidden_dim=args.hidden_dim or ModelConfig.hidden_dim,
                                       num_layers=args.num_layers or ModelConfig.num_layers,
                                       max_seq_len=max(ModelConfig.max_seq_len, args.horizon),
                                       cond_drop_prob=ModelConfig.cond_drop_prob if args.model == "mdlm" else 0.0)
        config = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, horizon=args.horizon, seed=args.seed,
            val_every=args.val_every, eval_every=args.eval_every, log_every=args.log_every,
            warmup_steps=min(_DEFAULTS.warmup_steps, max(args.steps // 10, 1)),
            curriculum_warmup_steps=min(_DEFAULTS.curriculum_warmup_steps, max(args.steps // 4, 1)),
            precision=args.precision, compile=args.compile, use_curriculum=_uses_curriculum(args, source),
        )
    except ValueError as err:  # a combination the model rejects, e.g. --hidden-dim 30 with 4 heads
        raise UsageError(f"model config: {err}") from None
    episodes, sources = load_sources(args.data)
    if len(episodes) == 0 or len(episodes.actions) == 0:
        raise UsageError(f"--data {' '.join(args.data)}: the dataset holds no expert steps")
    if source is None:
        model_config = dataclasses.replace(model_config, grid_size=episodes.grid_size)  # the data's canvas
    elif model_config.grid_size != episodes.grid_size:
        raise UsageError(f"--data is on a {episodes.grid_size}x{episodes.grid_size} grid, the checkpoint's model on "
                         f"{model_config.grid_size}x{model_config.grid_size}; collect with --grid-size "
                         f"{model_config.grid_size}")
    if args.val_every and len(episodes) < 2:
        raise UsageError(f"validation needs at least 2 episodes, the data has {len(episodes)}; "
                         "collect more or pass --val-every 0")
    eval_envs: list[str] = []
    if args.eval_episodes:
        eval_envs = list(episodes.meta["envs"])
        minari_meta = episodes.meta.get("minari") or {}
        if minari_meta and not minari_meta.get("has_env"):
            raise UsageError(f"--data minari:{minari_meta['dataset_id']} records no env for the in-env check; "
                             "pass --eval-episodes 0")
        for env_id in eval_envs:
            check_env_id(env_id)
    env_boost = parse_env_weights(args.env_weight, episodes.meta["envs"])
    return TrainSetup(out, ckpt_path, metrics_path, device, dist, episodes, sources, config, model_config,
                      eval_envs, source if args.resume else None, source if args.init else None, env_boost)


def parse_env_weights(given: list[str], env_names: list[str]) -> dict[str, float]:
    """``--env-weight PATTERN=FACTOR`` values -> ``{pattern: factor}``, checked against the data's envs.

    Raises:
        UsageError: a value without ``=``, a factor that is not a number > 0, or a pattern that
            matches none of ``env_names``.
    """
    boost: dict[str, float] = {}
    for value in given:
        pattern, sep, factor = value.rpartition("=")
        try:
            number = float(factor)
        except ValueError:
            number = float("nan")
        if not sep or not pattern or not number > 0 or number == float("inf"):
            raise UsageError(f"--env-weight {value}: expected PATTERN=FACTOR with a factor > 0, e.g. 'MazeMDLM/*=3'")
        boost[pattern] = boost.get(pattern, 1.0) * number
    try:
        env_factors(env_names, boost)
    except ValueError as err:
        raise UsageError(f"--env-weight {err}") from None
    return boost


def _source_checkpoint(args: argparse.Namespace, ckpt_path: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint of ``--resume`` (DIR/checkpoint.pt) or ``--init``, checked against ``--model``."""
    if not (args.resume or args.init):
        return None
    flag, path = ("--resume", ckpt_path) if args.resume else ("--init", Path(args.init))
    try:
        ckpt = read_checkpoint(path, map_location=device)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None
    if ckpt["model_type"] != args.model:
        raise UsageError(f"{flag}: {path} holds a {ckpt['model_type']!r} model, not --model {args.model}")
    return ckpt


def _source_model_config(args: argparse.Namespace, source: dict[str, Any]) -> ModelConfig:
    """The source checkpoint's model config; ``--hidden-dim`` / ``--num-layers`` may only repeat it."""
    config = ModelConfig.from_dict(source["model_config"])
    flag = "--resume" if args.resume else "--init"
    for name, given in (("hidden-dim", args.hidden_dim), ("num-layers", args.num_layers)):
        have = getattr(config, name.replace("-", "_"))
        if given is not None and given != have:
            raise UsageError(f"--{name} {given}: the {flag} checkpoint's model has {have}")
    if args.horizon > config.max_seq_len:
        raise UsageError(f"--horizon {args.horizon}: the {flag} checkpoint's model takes at most {config.max_seq_len}")
    return config


def _uses_curriculum(args: argparse.Namespace, source: dict[str, Any] | None) -> bool:
    """The mask-ratio curriculum runs on new weights only: not after ``--init``, and on ``--resume``
    as the run began."""
    if args.init:
        return False
    if args.resume and source is not None:
        return bool((source.get("train_config") or {}).get("use_curriculum", _DEFAULTS.use_curriculum))
    return _DEFAULTS.use_curriculum


def check_compiles(trainer: Trainer) -> None:
    """With ``--compile``: compile and run one forward/backward on a dummy batch of the training shape,
    so a machine without a working compiler fails here, in one line, before anything is written."""
    if not trainer.config.compile:
        return
    c, per_rank = trainer.config, trainer.config.batch_size // trainer.dist.world_size
    size = trainer.model.config.grid_size
    state = {"grid": torch.zeros(per_rank, 3, size, size, dtype=torch.long, device=trainer.device),
             "direction": torch.zeros(per_rank, dtype=torch.long, device=trainer.device)}
    actions = torch.zeros(per_rank, c.horizon, dtype=torch.long, device=trainer.device)
    ratio = torch.full((c.batch_size,), 0.5)
    try:
        logits, _, _ = trainer.predict(state, actions, ratio, torch.Generator().manual_seed(0), True,
                                       rows=trainer.shard)
        logits.float().sum().backward()
    except Exception as err:  # noqa: BLE001 - any compiler failure is reported as bad input
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise UsageError(f"--compile failed on this machine ({type(err).__name__}: {first}); "
                         "train without --compile") from None
    finally:
        trainer.optimizer.zero_grad(set_to_none=True)


def run_training(args: argparse.Namespace, make_agent: AgentFactory | None = None) -> int:
    """Run ``train``; ``make_agent`` builds the in-training check's agent (default: the ``--model``'s)."""
    setup = prepare(args)
    dist, config = setup.dist, setup.config
    make_agent = make_agent or policy_agent_factory(args.model)
    seed_everything(args.seed)
    data = PlanDataset(setup.episodes, config.horizon, end_token=setup.model_config.end_token)
    train_data, val_data = data.split_by_seed()
    train_data.weighted(args.env_weighting, setup.env_boost)
    dataset_meta = {
        "files": setup.sources,
        "envs": setup.episodes.meta["envs"],
        "episodes": len(setup.episodes),
        "seeds": [int(setup.episodes.seeds.min()), int(setup.episodes.seeds.max())],
        "train_samples": train_data.num_samples,
        "val_samples": val_data.num_samples,
        "env_weighting": args.env_weighting,
        "env_weight": dict(setup.env_boost),
        "env_shares": {name: round(share, 5) for name, share in train_data.env_shares().items()},
        "train_windows_per_env": train_data.env_counts(),
        "meta": setup.episodes.meta,
    }
    if setup.init_from is not None:  # the run's lineage: which weights it started from
        before = setup.init_from.get("dataset") or {}
        dataset_meta["init"] = {"checkpoint": Path(args.init).name, "step": int(setup.init_from["step"]),
                                "envs": list(before.get("envs") or []), "files": before.get("files") or []}
    distributed.init_process_group(dist, setup.device)
    try:
        model = MODEL_TYPES[args.model](setup.model_config)
        trainer = TRAINERS[args.model](model, config, device=setup.device, dist=dist)
        if setup.resume_from is not None:
            trainer.load_state_dict(setup.resume_from)
        elif setup.init_from is not None:
            model.load_state_dict(setup.init_from["model"])
        check_compiles(trainer)
        if dist.is_main:
            _train_main(args, setup, trainer, train_data, val_data, dataset_meta, make_agent)
        else:  # the other ranks only compute their shards of each batch
            trainer.fit(train_data)
        distributed.barrier(dist)  # leave together (not on an error: the others would wait it out)
    finally:
        distributed.destroy_process_group()
    return 0


def _train_main(args: argparse.Namespace, setup: TrainSetup, trainer: Trainer, train_data: PlanDataset,
                val_data: PlanDataset, dataset_meta: dict[str, Any], make_agent: AgentFactory) -> None:
    """Rank 0 (or the only process): train, log, save, evaluate."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from maze_mdlm.run_log import RunLog

    config, model, eval_envs = setup.config, trainer.model, setup.eval_envs
    setup.out.mkdir(exist_ok=True)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        """Success on every env of the data (``env/<ENV>/...``), and their means."""
        from maze_mdlm.evaluation import evaluate

        out: dict[str, float] = {}
        for env_id in eval_envs:
            result = evaluate(make_agent(m, config.horizon, args.seed), env_id, args.eval_episodes, VAL_SEED_START)
            for key in ("success_rate", "path_ratio", "mean_steps"):
                out[f"env/{env_id}/{key}"] = result[key]
        for key in ("success_rate", "path_ratio", "mean_steps"):
            values = [v for v in (out[f"env/{e}/{key}"] for e in eval_envs) if v is not None and v == v]
            out[key] = float(np.mean(values)) if values else None  # no success anywhere: no path ratio
        out["min_success_rate"] = min(out[f"env/{e}/success_rate"] for e in eval_envs)
        return out

    def save() -> None:
        save_checkpoint(setup.checkpoint, model, setup.model_config, trainer.optimizer.state_dict(), trainer.step,
                        config, dataset_meta, extra={"rng": trainer.rng_state(), "world_size": setup.dist.world_size})

    status: dict[str, Any] = {"loss": float("nan"), "accuracy": float("nan"), "sps": 0.0}
    columns = (
        TextColumn("step {task.completed}/{task.total}"), BarColumn(),
        TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[accuracy]:.3f} {task.fields[sps]:.0f} samples/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress, RunLog(setup.out, tensorboard=args.tensorboard) as log:
        task = progress.add_task("train", total=config.steps, completed=trainer.step, **status)

        def callback(event: str, step: int, metrics: dict[str, float]) -> bool:
            if event == "train":
                metrics = {**metrics, "samples_per_s": metrics["steps_per_s"] * config.batch_size}
            log.write(event, step, metrics)
            if event == "train":
                status.update(loss=metrics["loss"], accuracy=metrics["accuracy"], sps=metrics["samples_per_s"])
                progress.update(task, completed=step, **status)
            elif event == "val":
                progress.console.log(f"step {step}: val loss {metrics['loss']:.4f} acc {metrics['accuracy']:.4f}")
                save()
            elif event == "eval":
                progress.console.log(f"step {step}: success {metrics['success_rate']:.3f} (mean over {len(eval_envs)} "
                                     f"envs, lowest {metrics['min_success_rate']:.3f}) on held-out seeds")
            return False

        trainer.fit(train_data, val_data, callback=callback, eval_fn=eval_fn if args.eval_every and eval_envs else None)
        save()
        if eval_envs and not args.eval_every:
            callback("eval", trainer.step, eval_fn(model.eval()))
    print(f"wrote {setup.checkpoint} (step {trainer.step})")


def cmd_train(args: argparse.Namespace) -> int:
    return run_training(args)


# ----------------------------------------------------------------------------- plot, export-minari
def add_plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a train --out folder (reads its metrics.jsonl)")
    p.add_argument("--out", metavar="FILE.png", help="image to write (default RUN_DIR/metrics.png)")


def cmd_plot(args: argparse.Namespace) -> int:
    from maze_mdlm.plot import plot_run, read_metrics

    metrics = Path(args.run) / "metrics.jsonl"
    if not metrics.is_file():
        raise UsageError(f"{args.run}: no metrics.jsonl (expected a train --out folder)")
    out = check_writable(args.out or Path(args.run) / "metrics.png", "--out")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("plot needs matplotlib: pip install 'maze-mdlm[plot]'") from None
    events = read_metrics(metrics)
    if not any(e.get("event") == "train" for e in events):
        raise UsageError(f"{metrics} has no training records yet")
    plot_run(events, out, title=str(args.run))
    print(f"wrote {out}")
    return 0


def add_export_minari_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="dataset from collect-data")
    p.add_argument("--dataset-id", required=True, metavar="ID",
                   help="Minari id, e.g. mazemdlm/fourrooms-expert-v0; written under MINARI_DATASETS_PATH")


def cmd_export_minari(args: argparse.Namespace) -> int:
    try:
        from maze_mdlm.minari_data import export_minari, require_minari

        require_minari()
    except ImportError as err:
        raise UsageError(str(err)) from None
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage import get_dataset_path

    path = Path(args.data)
    if not path.is_file():
        raise UsageError(f"--data {path}: no such file")
    try:
        version = parse_dataset_id(args.dataset_id)[2]
    except Exception:  # noqa: BLE001 - Minari's own id check
        version = None
    if version is None:
        raise UsageError(f"--dataset-id {args.dataset_id!r} is not a Minari id: (namespace/)name-vN, "
                         "e.g. mazemdlm/fourrooms-expert-v0")
    if (Path(get_dataset_path(args.dataset_id)) / "data").exists():
        raise UsageError(f"--dataset-id {args.dataset_id} exists already at {get_dataset_path(args.dataset_id)}")
    episodes = load_episodes(path)
    import warnings

    with warnings.catch_warnings():  # Minari's advice on author e-mail and code links
        warnings.simplefilter("ignore", UserWarning)
        dataset = export_minari(episodes, args.dataset_id, description=f"exported from {path.name}")
    print(f"wrote Minari dataset {args.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps")
    return 0
