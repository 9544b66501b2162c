"""The ``maze-mdlm`` command line: ``collect-data``, ``train``, ``rollout``, ``export``, ``plot``, ``export-minari``.

Bad input exits with code 2 and a one-line message on stderr, before any file is written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Sequence

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
    file_digest,
    nonnegative_int,
    positive_float,
    positive_int,
    write_json_atomic,
)

AGENTS = ("random", "bfs", "ar", "mdlm", "mctd")


# ----------------------------------------------------------------------------- commands
def cmd_collect_data(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from envs.collect import ON_POLICY_EVERY, ExpertFailure, collect, grid_size_for
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
    check_ray(args.ray, args.workers)
    on_policy = None
    if args.on_policy_every is not None and args.on_policy is None:
        raise UsageError("--on-policy-every applies with --on-policy only")
    if args.on_policy_holding and args.on_policy is None:
        raise UsageError("--on-policy-holding applies with --on-policy only")
    if args.on_policy is not None:
        from maze_mdlm.cli_on_policy import on_policy_actions

        try:
            on_policy = on_policy_actions(args.on_policy, args.env, args.seed, args.episodes)
        except (OSError, ValueError) as err:
            raise UsageError(f"--on-policy {args.on_policy}: {err}") from None
    every = args.on_policy_every or ON_POLICY_EVERY
    total = args.episodes * len(args.env)
    columns = (TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress, _ray_or_nothing(args.ray) as map_chunks:
        task = progress.add_task("collect", total=total)
        try:
            episodes = collect(
                args.env,
                args.episodes,
                args.seed,
                workers=args.workers,
                on_progress=lambda n: progress.advance(task, n),
                command=" ".join(  # what determines the content (not --workers, --ray or --out)
                    ["maze-mdlm collect-data", *(f"--env {e}" for e in args.env),
                     f"--episodes {args.episodes}", f"--seed {args.seed}", f"--grid-size {grid_size}",
                     *(["--box-guess"] if args.box_guess else []),
                     *([f"--on-policy {args.on_policy}", f"--on-policy-every {every}"] if on_policy else []),
                     *(["--on-policy-holding"] if args.on_policy_holding else [])]
                ),
                grid_size=grid_size,
                map_chunks=map_chunks,
                box_guess=args.box_guess,
                on_policy=on_policy,
                every=every,
                holding=args.on_policy_holding,
            )
        except ExpertFailure as err:
            raise UsageError(f"nothing written: {err}") from None
    save_episodes(out, episodes)
    print(
        f"wrote {out}: {len(episodes)} episodes, {int(episodes.lengths.sum())} expert steps, "
        f"{out.stat().st_size / 1e6:.2f} MB"
    )
    return 0


def checkpoint_record(checkpoint: str | None, env_id: str, agent: str) -> dict[str, str]:
    """``checkpoint`` (the path given, else the one shipped for ``env_id`` and the ``agent``) and its
    ``checkpoint_sha256_16``: which weights a rollout's numbers come from."""
    from maze_mdlm.shipped import default_checkpoint

    path = Path(checkpoint) if checkpoint else default_checkpoint(env_id, "ar" if agent == "ar" else "mdlm")
    return {"checkpoint": str(path), "checkpoint_sha256_16": file_digest(path)}


def cmd_rollout(args: argparse.Namespace) -> int:
    import functools

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from agents.registry import MODEL_AGENTS, make_agent
    from maze_mdlm.parallel import evaluate_parallel
    from maze_mdlm.ray_tools import RayUnavailableError

    check_env_id(args.env)
    mctd_options = {name: getattr(args, name) for name in MCTD_FLAGS if getattr(args, name) is not None}
    if args.agent != "mctd":
        for flag in [f"--{name.replace('_', '-')}" for name in mctd_options] + (["--render-tree"] if args.render_tree else []):
            raise UsageError(f"{flag} applies to --agent mctd only")
    json_path = check_writable(args.json, "--json") if args.json else None
    gif_path = check_writable(args.render, "--render") if args.render else None
    tree_path = check_writable(args.render_tree, "--render-tree") if args.render_tree else None
    for path, flag in ((gif_path, "--render"), (tree_path, "--render-tree")):
        if path is not None:
            try:
                import PIL  # noqa: F401
            except ImportError:
                raise UsageError(f"{flag} needs Pillow: pip install 'maze-mdlm[render]'") from None
    device = check_device(args.device)
    check_ray(args.ray, args.workers)
    checkpoint = str(Path(args.checkpoint).resolve()) if args.checkpoint else None  # workers may run elsewhere
    factory = functools.partial(make_agent, args.agent, env_id=args.env, checkpoint=checkpoint, seed=args.seed,
                                device=str(device), **mctd_options)
    try:
        agent = factory()
    except ValueError as err:  # missing or foreign checkpoint, or a bad MCTD setting
        raise UsageError(f"--checkpoint: {err}") from None
    columns = (TextColumn(f"{args.agent} on {args.env}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("rollout", total=args.episodes)
        try:
            metrics = evaluate_parallel(
                factory, args.env, args.episodes, args.seed, workers=args.workers, ray_address=args.ray,
                batch_envs=args.batch_envs, on_episode=lambda _: progress.advance(task), agent=agent,
            )
        except RayUnavailableError as err:
            raise UsageError(f"--ray: {err}") from None
    metrics["agent"], metrics["device"] = args.agent, str(device)
    if args.agent in MODEL_AGENTS:  # which weights made these numbers
        metrics.update(checkpoint_record(checkpoint, args.env, args.agent))
    table = Table(title=f"{args.agent} on {args.env}, seeds {args.seed}..{args.seed + args.episodes - 1}",
                  caption=f"checkpoint {metrics['checkpoint']}" if "checkpoint" in metrics else None)
    for column in ("success rate", "mean steps", "optimal steps", "path ratio", "mean return", "seconds"):
        table.add_column(column, justify="right")
    ratio = metrics["path_ratio"]
    table.add_row(
        f"{metrics['success_rate']:.3f}", f"{metrics['mean_steps']:.1f}", f"{metrics['mean_optimal_steps']:.1f}",
        "-" if ratio is None else f"{ratio:.3f}", f"{metrics['mean_return']:.3f}", f"{metrics['seconds']:.1f}",
    )
    if metrics["unsolvable"]:
        table.caption = "; ".join(filter(None, [
            table.caption, f"{metrics['unsolvable']} episodes unsolvable (proved by the expert); success rate "
                           f"over the others {metrics['success_rate_solvable']:.3f}"]))
    Console().print(table)
    gif = render_first_episode(agent, args.env, args.seed) if gif_path else None
    tree = render_first_search(factory, args.env, args.seed) if tree_path else None
    if json_path:
        write_json_atomic(json_path, metrics)
    if gif:
        save_gif(gif_path, gif)
    if tree is not None:
        atomic_write(tree_path, lambda f: tree.save(f, format="PNG"))
    return 0


def save_gif(path: Path, frames: list) -> None:
    """Write ``rgb_array`` frames as an animated GIF, atomically."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                duration=150, loop=0))


# rollout flags for MCTDAgent options of the same name
MCTD_FLAGS = ("max_expansions", "parallel", "time_budget_ms", "rollout_escape", "goal_execute",
              "research_expansions")


def check_device(name: str):
    """``--device`` -> a ``torch.device``; exit 2 when CUDA is asked for and absent."""
    from maze_mdlm.devices import resolve_device

    try:
        return resolve_device(name)
    except ValueError as err:
        raise UsageError(f"--device {name}: {err}") from None


def check_ray(address: str | None, workers: int) -> None:
    """``--ray``: Ray must be installed, and ``--workers`` left at 1 (Ray schedules the work)."""
    if address is None:
        return
    if workers != 1:
        raise UsageError("--ray and --workers exclude each other: Ray places the tasks on the cluster's CPUs")
    from maze_mdlm.ray_tools import RayUnavailableError, import_ray

    try:
        import_ray()
    except RayUnavailableError as err:
        raise UsageError(f"--ray: {err}") from None


@contextlib.contextmanager
def _ray_or_nothing(address: str | None):
    """Yield :func:`maze_mdlm.ray_tools.ray_map` inside a Ray session, or None without ``--ray``."""
    if address is None:
        yield None
        return
    from maze_mdlm.ray_tools import RayUnavailableError, ray_map, ray_session

    try:
        with ray_session(address):
            yield ray_map
    except RayUnavailableError as err:
        raise UsageError(f"--ray: {err}") from None


def render_first_episode(agent: Any, env_id: str, seed: int) -> list:
    """The first episode (reset seed ``seed``) replayed in this process, as frames with the agent's
    plan drawn on each (agents decode whole plans for it; an episode depends only on its seed)."""
    from maze_mdlm.evaluation import evaluate

    if hasattr(agent, "full_plans"):
        agent.full_plans = True
    frames: list = []
    evaluate(agent, env_id, 1, seed, batch_envs=1, render_frames=frames, draw_plans=True)
    return frames


def render_first_search(factory: Any, env_id: str, seed: int):
    """A picture of the search tree of the first decision of the first episode (a fresh MCTD
    agent, reseeded as in the rollout), with the first frame and its plans on the left."""
    from envs.collect import make_env
    from envs.observation import FullGridObsWrapper, agent_pose, layout_of
    from maze_mdlm.evaluation import plan_view
    from maze_mdlm.pictures import draw_plans, draw_search_tree

    agent = factory()
    agent.seed_episode(seed)
    env = FullGridObsWrapper(make_env(env_id, render_mode="rgb_array"), getattr(agent, "grid_size", None))
    try:
        obs, info = env.reset(seed=seed)
        agent.reset(obs, info)
        agent.act(obs)
        frame = env.render()
        tile = max(1, frame.shape[1] // env.unwrapped.width)
    finally:
        env.close()
    image = obs["image"]
    pose = (*agent_pose(image)[:2], int(obs["direction"]))
    world = {key: obs[key] for key in ("carrying", "task") if key in obs}
    frame = draw_plans(frame, layout_of(image), pose, {**plan_view(agent), **world}, tile)
    cfg = agent.config
    labels = [f"w={w:g}" if cfg.meta_actions == "cfg" else f"T={t:g}" for t, w in cfg.meta_table()]
    title = (f"MCTD search tree: first decision on {env_id}, reset seed {seed} "
             f"(amber: the chosen plan, blue: the other candidates)")
    return draw_search_tree(agent.last_search, labels, title, frame)


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
def add_ray_argument(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: fan the seed chunks out as Ray tasks (the ``ray`` extra)."""
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the seed chunks as Ray tasks: on a local Ray instance, or on the cluster at "
                        "ADDRESS (auto, ray://host:port); same results as without; needs maze-mdlm[ray]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="maze-mdlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("collect-data", help="run the expert and write a dataset file")
    p.add_argument("--env", action="append", required=True, metavar="ID", help="gymnasium env id (repeatable)")
    p.add_argument("--episodes", type=positive_int, required=True, help="episodes per env")
    p.add_argument("--seed", type=nonnegative_int, default=TRAIN_SEED_START,
                   help=f"first reset seed; episode i uses seed+i (training range [0, {TRAIN_SEED_END}))")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    add_ray_argument(p)
    p.add_argument("--grid-size", type=positive_int, default=None, metavar="G",
                   help="canvas side the layouts are padded to (default: 19, or the largest world's "
                        "side up to 25); a larger world is refused")
    p.add_argument("--box-guess", action="store_true",
                   help="the expert plans with the agent's guess of what closed boxes hold (MCTD's) instead "
                        "of their contents, and plans again after a wrong box (envs.guessing_expert)")
    p.add_argument("--on-policy", metavar="CKPT", default=None,
                   help="DAgger: start the episodes at the states CKPT's greedy MDLM policy reaches from each "
                        "seed's reset (every K-th with an empty hand, first 128 steps), labelled by the expert")
    p.add_argument("--on-policy-every", type=positive_int, default=None, metavar="K",
                   help="with --on-policy: the stride K of the start states (default 8)")
    p.add_argument("--on-policy-holding", action="store_true",
                   help="with --on-policy: label the states with an object in hand too (dataset version 3)")
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
    p.add_argument("--render", metavar="FILE.gif",
                   help="write an animated GIF of the first episode, with the agent's current plan drawn on "
                        "each frame (mctd: the other candidates faded); needs Pillow")
    p.add_argument("--render-tree", metavar="FILE.png",
                   help="mctd: write a picture of the search tree of the first decision; needs Pillow")
    from maze_mdlm.devices import DEVICES
    from maze_mdlm.evaluation import DEFAULT_BATCH_ENVS

    p.add_argument("--batch-envs", type=positive_int, default=DEFAULT_BATCH_ENVS, metavar="B",
                   help=f"environments stepped in lockstep, one batched model call per step (default "
                        f"{DEFAULT_BATCH_ENVS}); random and bfs play one episode at a time, mctd searches once "
                        f"per episode that needs a plan")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the model runs (default cpu; auto: CUDA when torch sees a GPU)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="K",
                   help="worker processes, each playing chunks of seeds; same per-episode results for any K "
                        "(default 1: this process)")
    add_ray_argument(p)
    from agents.mctd.agent import GOAL_EXECUTE, RESEARCH_EXPANSIONS
    from agents.mctd.planner import MCTDConfig

    p.add_argument("--max-expansions", type=positive_int, default=None, metavar="N",
                   help=f"mctd: search budget, expansions per decision (default {MCTDConfig.max_expansions})")
    p.add_argument("--parallel", type=positive_int, default=None, metavar="K",
                   help=f"mctd: leaves expanded per batched search round (default {MCTDConfig.parallel})")
    p.add_argument("--time-budget-ms", type=positive_float, default=None, metavar="MS",
                   help="mctd only: wall-clock budget of one search in ms (anytime; results then depend on "
                        "the machine's speed). Default: none, only the expansion budget")
    p.add_argument("--rollout-escape", type=positive_float, default=None, metavar="T",
                   help="mctd only: a search that finds no goal-reaching plan while some plan continuation "
                        "went round a cycle of the greedy policy grows a second tree in which such "
                        "continuations sample their remaining windows at temperature T (slower failing "
                        "searches; docs/suite_history.md). Default: off")
    p.add_argument("--goal-execute", type=nonnegative_int, default=None, metavar="K",
                   help="mctd only: execute a goal-reaching plan K actions at a time, searching again after "
                        "each K and keeping the rest unless that search finds a shorter goal-reaching plan "
                        "(shorter paths, more searches); 0: the whole plan, one search (before 0.29). "
                        f"Default: {GOAL_EXECUTE} where doors, keys, balls or boxes can change, the whole "
                        "plan where only the agent moves")
    p.add_argument("--research-expansions", type=nonnegative_int, default=None, metavar="N",
                   help="mctd only: expansion budget of a search made while the rest of a goal-reaching plan "
                        "is kept (--goal-execute); a cheaper search that only has to beat that plan; 0: the "
                        f"search's usual budget (0.30's default). Default: {RESEARCH_EXPANSIONS}")
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
