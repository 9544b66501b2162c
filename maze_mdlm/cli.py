"""The ``maze-mdlm`` command line: ``collect-data``, ``train``, ``rollout``, ``export``, ``plot``, ``export-minari``.

Bad input exits with code 2 and a one-line message on stderr, before any file is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import envs
from envs.dataset import DatasetFormatError
from envs.files import atomic_write
from envs.observation import GridTooLargeError
from envs.seeds import EVAL_SEED_START, TRAIN_SEED_END, TRAIN_SEED_START
from maze_mdlm import cli_train
from maze_mdlm.cli_common import (  # noqa: F401  (also the public names of this module)
    UsageError,
    _Parser,
    check_env_id,
    check_writable,
    nonnegative_int,
    positive_float,
    positive_int,
    write_json_atomic,
)

AGENTS = ("random", "bfs", "ar", "mdlm", "mctd")


# ----------------------------------------------------------------------------- commands
def cmd_collect_data(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from envs.collect import ExpertFailure, collect, grid_size_for
    from envs.dataset import save_episodes

    for env_id in args.env:
        check_env_id(env_id, args.grid_size)
    grid_size = grid_size_for(args.env, args.grid_size)
    if args.seed < TRAIN_SEED_START or args.seed + args.episodes > TRAIN_SEED_END:
        raise UsageError(
            f"training seeds must lie in [{TRAIN_SEED_START}, {TRAIN_SEED_END}); seeds from "
            f"{EVAL_SEED_START} on are held out for evaluation"
        )
    out = check_writable(args.out, "--out")
    total = args.episodes * len(args.env)
    columns = (TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("collect", total=total)
        try:
            episodes = collect(
                args.env,
                args.episodes,
                args.seed,
                workers=args.workers,
                on_progress=lambda n: progress.advance(task, n),
                command=" ".join(  # what determines the content (not --workers or --out)
                    ["maze-mdlm collect-data", *(f"--env {e}" for e in args.env),
                     f"--episodes {args.episodes}", f"--seed {args.seed}", f"--grid-size {grid_size}"]
                ),
                grid_size=grid_size,
            )
        except ExpertFailure as err:
            raise UsageError(f"nothing written: {err}") from None
    save_episodes(out, episodes)
    print(
        f"wrote {out}: {len(episodes)} episodes, {int(episodes.lengths.sum())} expert steps, "
        f"{out.stat().st_size / 1e6:.2f} MB"
    )
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from agents.registry import make_agent
    from maze_mdlm.evaluation import evaluate

    check_env_id(args.env)
    json_path = check_writable(args.json, "--json") if args.json else None
    gif_path = check_writable(args.render, "--render") if args.render else None
    if gif_path is not None:
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise UsageError("--render needs Pillow: pip install 'maze-mdlm[render]'") from None
    options = {}
    if args.time_budget_ms is not None:
        if args.agent != "mctd":
            raise UsageError("--time-budget-ms applies to --agent mctd only")
        options["time_budget_ms"] = args.time_budget_ms
    try:
        agent = make_agent(args.agent, env_id=args.env, checkpoint=args.checkpoint, seed=args.seed, **options)
    except ValueError as err:  # missing or foreign checkpoint
        raise UsageError(f"--checkpoint: {err}") from None
    frames: list | None = [] if gif_path else None
    columns = (TextColumn(f"{args.agent} on {args.env}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("rollout", total=args.episodes)
        metrics = evaluate(
            agent, args.env, args.episodes, args.seed,
            batch_envs=args.batch_envs, render_frames=frames, on_episode=lambda _: progress.advance(task),
        )
    metrics["agent"] = args.agent
    table = Table(title=f"{args.agent} on {args.env}, seeds {args.seed}..{args.seed + args.episodes - 1}")
    for column in ("success rate", "mean steps", "optimal steps", "path ratio", "mean return", "seconds"):
        table.add_column(column, justify="right")
    ratio = metrics["path_ratio"]
    table.add_row(
        f"{metrics['success_rate']:.3f}", f"{metrics['mean_steps']:.1f}", f"{metrics['mean_optimal_steps']:.1f}",
        "-" if ratio is None else f"{ratio:.3f}", f"{metrics['mean_return']:.3f}", f"{metrics['seconds']:.1f}",
    )
    Console().print(table)
    if json_path:
        write_json_atomic(json_path, metrics)
    if gif_path and frames:
        save_gif(gif_path, frames)
    return 0


def save_gif(path: Path, frames: list) -> None:
    """Write ``rgb_array`` frames as an animated GIF, atomically."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                duration=150, loop=0))


def cmd_export(args: argparse.Namespace) -> int:
    from maze_mdlm.checkpoint import export_checkpoint

    out = check_writable(args.out, "--out")
    try:
        size = export_checkpoint(args.checkpoint, out)
    except ValueError as err:
        raise UsageError(f"--checkpoint: {err}") from None
    print(f"wrote {out} ({size / 1e6:.2f} MB): model weights, config, step and dataset metadata")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="maze-mdlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("collect-data", help="run the expert and write a dataset file")
    p.add_argument("--env", action="append", required=True, metavar="ID", help="gymnasium env id (repeatable)")
    p.add_argument("--episodes", type=positive_int, required=True, help="episodes per env")
    p.add_argument("--seed", type=nonnegative_int, default=TRAIN_SEED_START,
                   help=f"first reset seed; episode i uses seed+i (training range [0, {TRAIN_SEED_END}))")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    p.add_argument("--grid-size", type=positive_int, default=None, metavar="G",
                   help="canvas side the layouts are padded to (default: 19, or the largest world's "
                        "side up to 25); a larger world is refused")
    p.add_argument("--out", required=True, metavar="FILE", help="dataset file to write (atomically)")
    p.set_defaults(func=cmd_collect_data)

    p = sub.add_parser("train", help="train an MDLM policy on collected data (torchrun: on N processes)")
    cli_train.add_train_arguments(p)
    p.set_defaults(func=cli_train.cmd_train)

    p = sub.add_parser("plot", help="draw loss, accuracy and success curves of a training run")
    cli_train.add_plot_arguments(p)
    p.set_defaults(func=cli_train.cmd_plot)

    p = sub.add_parser("export-minari", help="write a dataset file as a local Minari dataset")
    cli_train.add_export_minari_arguments(p)
    p.set_defaults(func=cli_train.cmd_export_minari)

    p = sub.add_parser("export", help="strip a training checkpoint (optimizer, RNG) for release")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="DIR/checkpoint.pt from train")
    p.add_argument("--out", required=True, metavar="FILE", help="release checkpoint to write (atomically)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("rollout", help="evaluate an agent by success rate")
    p.add_argument("--agent", choices=AGENTS, required=True, help="which agent to run")
    p.add_argument("--env", default=envs.FOURROOMS_ID, metavar="ID", help="gymnasium env id")
    p.add_argument("--episodes", type=positive_int, default=200, help="number of episodes")
    p.add_argument("--seed", type=nonnegative_int, default=EVAL_SEED_START,
                   help=f"first reset seed; episode i uses seed+i (held-out range starts at {EVAL_SEED_START})")
    p.add_argument("--checkpoint", metavar="PATH", help="model checkpoint (default: the shipped one for --env)")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--render", metavar="FILE.gif", help="write an animated GIF of the first episode")
    from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS

    p.add_argument("--batch-envs", type=positive_int, default=DEFAULT_BATCH_ENVS, metavar="B",
                   help=f"environments stepped in lockstep, one batched model call per step (default "
                        f"{DEFAULT_BATCH_ENVS}); random, bfs and mctd play one episode at a time")
    p.add_argument("--time-budget-ms", type=positive_float, default=None, metavar="MS",
                   help="mctd only: wall-clock budget of one search in ms (anytime; results then depend on "
                        "the machine's speed). Default: none, only the expansion budget")
    p.set_defaults(func=cmd_rollout)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, GridTooLargeError, DatasetFormatError, FileNotFoundError) as err:
        message = " ".join(str(err).split())
        if _is_main_process():  # under torchrun every rank fails alike; one line is enough
            print(f"maze-mdlm: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maze-mdlm: interrupted", file=sys.stderr)
        return 130


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


if __name__ == "__main__":
    sys.exit(main())
