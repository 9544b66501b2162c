"""Throughput of every stage, each as a ratio measured in the same run.

| figure | measured | against |
|---|---|---|
| env | MiniGrid ``env.step`` steps/s | ``envs.dynamics.step`` on the same actions |
| expert | hand BFS episodes/s | the same search on networkx (``expert_speed``) |
| train | trainer-loop samples/s | bare forward+backward (``train_throughput``) |
| sampler | sampler plans/s at each batch | ``num_steps`` forward passes (``model_speed``) |
| mctd | MCTD expansions/s at each K | K=1 (``mctd_speed``) |
| rollout | rollout episodes/s at ``--batch-envs 1`` | the default (``rollout_speed``, if present) |

    python -m benchmarks.throughput [--quick] [--sections env expert ...] [--threads N] [--SIZE N ...]

Every size in :class:`Sizes` is a flag (``--env-episodes 50``); ``--quick`` starts from
:data:`QUICK` instead of the full sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from benchmarks import expert_speed, mctd_speed, train_throughput
from benchmarks.common import write_results
from benchmarks.model_speed import perturb, sampler_speed
from envs import FOURROOMS_ID, MAZE_ID
from envs.collect import make_env
from envs.dynamics import simulate_plans, step
from envs.observation import encode_env, env_pose, layout_of
from envs.seeds import EVAL_SEED_START
from maze_mdlm.config import ModelConfig
from maze_mdlm.model import MDLMPolicy

ENV_IDS = (FOURROOMS_ID, MAZE_ID)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each figure measures (the defaults are the full run)."""

    env_episodes: int = 50  # start states per env for env.step against the dynamics
    env_length: int = 200  # random navigation actions per episode, cut where the episode ends
    expert_episodes: int = 200  # start states per env for the BFS expert
    train_episodes: int = 2000  # FourRooms episodes in the training dataset
    train_batch: int = 256  # training batch
    horizon: int = 16  # plan window of training and sampling (the shipped checkpoints')
    sample_batches: tuple[int, ...] = (1, 64)  # sampler batch sizes
    num_steps: int = 8  # sampler unmasking steps
    ks: tuple[int, ...] = (1, 8, 32)  # MCTD leaves per batched round
    expansions: int = 64  # expansions per MCTD search (early stop off)
    mctd_seeds: int = 3  # maze start states searched per K
    rollout_episodes: int = 20  # episodes per rollout setting
    iters: int = 10  # timed repetitions (median) of the model figures
    warmup: int = 2  # untimed repetitions before them


QUICK = Sizes(env_episodes=5, env_length=50, expert_episodes=20, train_episodes=100, train_batch=32,
              expansions=16, mctd_seeds=1, rollout_episodes=2, iters=3, warmup=1)


# ----------------------------------------------------------------------------- env steps
def action_episodes(env_id: str, episodes: int, length: int, seed: int = EVAL_SEED_START) -> list[tuple]:
    """``(seed, layout, pose, actions)`` per episode: random left/right/forward actions, cut
    where the symbolic dynamics end the episode (goal or lava) or at the env's step limit."""
    env, rng, out = make_env(env_id), np.random.default_rng(0), []
    for s in range(seed, seed + episodes):
        env.reset(seed=s)
        layout, pose = layout_of(encode_env(env)["image"]), env_pose(env)
        actions = rng.integers(0, 3, size=(1, min(length, env.unwrapped.max_steps)))
        end = int(simulate_plans(layout, pose, actions).steps[0])
        out.append((s, layout, pose, actions[0, :end].tolist()))
    env.close()
    return out


def time_env_steps(env_id: str, episodes: list[tuple]) -> tuple[float, list[tuple[int, int, int]]]:
    """Seconds spent in MiniGrid ``env.step`` (resets untimed) and each episode's final pose."""
    env, seconds, finals = make_env(env_id), 0.0, []
    for s, _, _, actions in episodes:
        env.reset(seed=s)
        start = time.perf_counter()
        for a in actions:
            env.step(a)
        seconds += time.perf_counter() - start
        finals.append(env_pose(env))
    env.close()
    return seconds, finals


def time_dynamics_steps(episodes: list[tuple]) -> tuple[float, list[tuple[int, int, int]]]:
    """Seconds of ``envs.dynamics.step`` on the same actions and each episode's final pose."""
    finals = []
    start = time.perf_counter()
    for _, layout, pose, actions in episodes:
        for a in actions:
            pose, _ = step(layout, pose, a)
        finals.append(pose)
    return time.perf_counter() - start, finals


def env_speed(episodes: int, length: int, env_ids: Sequence[str] = ENV_IDS) -> list[dict[str, Any]]:
    """Steps/s of MiniGrid and of our dynamics per env; checks they end in the same poses."""
    rows = []
    for env_id in env_ids:
        eps = action_episodes(env_id, episodes, length)
        steps = sum(len(e[3]) for e in eps)
        env_s, env_finals = time_env_steps(env_id, eps)
        dyn_s, dyn_finals = time_dynamics_steps(eps)
        assert env_finals == dyn_finals, f"dynamics disagree with MiniGrid on {env_id}"
        rows.append({"env": env_id, "episodes": episodes, "steps": steps, "minigrid_steps_per_s": steps / env_s,
                     "dynamics_steps_per_s": steps / dyn_s, "dynamics_over_minigrid": env_s / dyn_s})
    return rows


# ----------------------------------------------------------------------------- sampler
def sampler_rows(sizes: Sizes, config: ModelConfig | None = None) -> list[dict[str, Any]]:
    """Greedy-sampler plans/s at each batch against ``num_steps`` forwards of that batch."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = perturb(MDLMPolicy(config or ModelConfig()), gen)
    rows = []
    for batch in sizes.sample_batches:
        r = sampler_speed(model, batch, sizes.horizon, sizes.num_steps, sizes.iters, sizes.warmup, gen,
                          kinds=("sample",))
        rows.append({"batch": batch, "num_steps": sizes.num_steps, "horizon": sizes.horizon,
                     "plans_per_s": batch / r["sample_s"],
                     "forwards_plans_per_s": batch / (sizes.num_steps * r["forward_s"]),
                     "sampler_over_forwards": r["sample_over_forwards"]})
    for row in rows:
        row["plans_per_s_vs_first_batch"] = row["plans_per_s"] / rows[0]["plans_per_s"]
    return rows


# ----------------------------------------------------------------------------- rollout hook
ROLLOUT_MISSING = ("skipped: benchmarks/rollout_speed.py is not in this tree yet (another change adds it "
                   "with evaluate(..., batch_envs=B)); rerun once it is")


def rollout_figure(sizes: Sizes) -> dict[str, Any]:
    """``benchmarks.rollout_speed.run`` (episodes/s at ``--batch-envs 1`` against the default),
    or ``{"skipped": ...}`` while that module does not exist."""
    try:
        rollout_speed = importlib.import_module("benchmarks.rollout_speed")
    except ModuleNotFoundError as err:
        if err.name != "benchmarks.rollout_speed":
            raise
        return {"skipped": ROLLOUT_MISSING}
    return rollout_speed.run(episodes=sizes.rollout_episodes)


# ----------------------------------------------------------------------------- all figures
def mctd_figure(sizes: Sizes, checkpoint: str | Path | None) -> dict[str, Any]:
    """``mctd_speed.parallel_speed`` with the maze checkpoint (shipped unless given)."""
    model, desc, horizon = mctd_speed.load_model(checkpoint)
    seeds = tuple(range(EVAL_SEED_START, EVAL_SEED_START + sizes.mctd_seeds))
    return {"model": desc, **mctd_speed.parallel_speed(model, sizes.ks, sizes.expansions, seeds, MAZE_ID, horizon)}


FIGURES: dict[str, Callable[[Sizes, ModelConfig | None, Any], Any]] = {
    "env": lambda s, config, ckpt: env_speed(s.env_episodes, s.env_length),
    "expert": lambda s, config, ckpt: expert_speed.run(s.expert_episodes),
    "train": lambda s, config, ckpt: train_throughput.run(s.train_episodes, s.train_batch, s.horizon, s.iters,
                                                          s.warmup, config=config),
    "sampler": lambda s, config, ckpt: sampler_rows(s, config),
    "mctd": lambda s, config, ckpt: mctd_figure(s, ckpt),
    "rollout": lambda s, config, ckpt: rollout_figure(s),
}


def run(sizes: Sizes = Sizes(), sections: Sequence[str] = tuple(FIGURES), config: ModelConfig | None = None,
        checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Each figure in ``sections`` (keys of :data:`FIGURES`); ``config`` is the model of the
    train and sampler figures (default ``ModelConfig()``), ``checkpoint`` MCTD's model."""
    results: dict[str, Any] = {"sizes": dataclasses.asdict(sizes), "threads": torch.get_num_threads()}
    for name in sections:
        results[name] = FIGURES[name](sizes, config, checkpoint)
    return results


# ----------------------------------------------------------------------------- markdown
def table(head: Sequence[str], rows: list[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]) + "\n"


def env_md(rows: list[dict]) -> str:
    return "## Env steps: MiniGrid env.step against envs.dynamics.step, same random actions\n\n" + table(
        ["env", "steps", "MiniGrid steps/s", "dynamics steps/s", "dynamics / MiniGrid"],
        [[r["env"], r["steps"], f"{r['minigrid_steps_per_s']:.0f}", f"{r['dynamics_steps_per_s']:.0f}",
          f"{r['dynamics_over_minigrid']:.1f}x"] for r in rows])


def expert_md(rows: list[dict]) -> str:
    return "## BFS expert: hand BFS against networkx, same start states\n\n" + table(
        ["env", "episodes", "hand BFS episodes/s", "networkx episodes/s", "hand / networkx"],
        [[r["env"], r["episodes"], f"{r['hand_bfs_eps']:.0f}", f"{r['networkx_eps']:.0f}", f"{r['speedup']:.1f}x"]
         for r in rows])


def train_md(r: dict) -> str:
    return (f"## Training: trainer loop against bare forward+backward (B={r['batch_size']}, H={r['horizon']})\n\n"
            + table(["trainer samples/s", "bare fwd+bwd samples/s", "trainer / bare", "get_batch ms"],
                    [[f"{r['trainer_samples_per_s']:.0f}", f"{r['bare_samples_per_s']:.0f}",
                      f"{r['trainer_over_bare']:.3f}", f"{r['get_batch_ms']:.2f}"]]))


def sampler_md(rows: list[dict]) -> str:
    r0 = rows[0]
    return (f"## Sampler: greedy plans/s against {r0['num_steps']} forward passes (H={r0['horizon']})\n\n"
            + table(["batch", "plans/s", f"{r0['num_steps']} forwards plans/s", "sampler time / forwards time",
                     f"plans/s vs B={r0['batch']}"],
                    [[r["batch"], f"{r['plans_per_s']:.1f}", f"{r['forwards_plans_per_s']:.1f}",
                      f"{r['sampler_over_forwards']:.2f}x", f"{r['plans_per_s_vs_first_batch']:.1f}x"]
                     for r in rows])
            + "\nThe forwards are full forwards (grid encoder included); the sampler encodes the grid once, "
              "so its time can be below them.\n")


def mctd_md(r: dict) -> str:
    return (f"## MCTD: expansions/s per K, {r['expansions_per_search']} expansions per search, early stop off, "
            f"{len(r['seeds'])} maze start states\n\nModel: {r['model']}\n\n"
            + table(["K", "expansions", "rounds", "ms / search", "expansions/s", f"vs K={r['rows'][0]['k']}"],
                    [[x["k"], x["expansions"], x["rounds"], f"{x['ms_per_search']:.1f}",
                      f"{x['expansions_per_s']:.0f}", f"{x['ratio_vs_k1']:.2f}x"] for x in r["rows"]]))


def rollout_md(r: dict) -> str:
    head = "## Rollout: episodes/s at --batch-envs 1 against the default\n\n"
    if "skipped" in r:
        return head + f"**{r['skipped']}**\n"
    return head + table(["key", "value"], [[k, v] for k, v in r.items() if not isinstance(v, (list, dict))])


MARKDOWN: dict[str, Callable[[Any], str]] = {"env": env_md, "expert": expert_md, "train": train_md,
                                             "sampler": sampler_md, "mctd": mctd_md, "rollout": rollout_md}


def to_markdown(results: dict[str, Any]) -> str:
    """One small table per figure that ``results`` holds."""
    parts = [f"{results['threads']} torch threads."]
    parts += [MARKDOWN[name](results[name]) for name in FIGURES if name in results]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- CLI
def sizes_from_args(args: argparse.Namespace) -> Sizes:
    """:data:`QUICK` with ``--quick``, else the full :class:`Sizes`, overridden by given flags."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes) if getattr(args, f.name) is not None}
    return dataclasses.replace(QUICK if args.quick else Sizes(), **{k: tuple(v) if isinstance(v, list) else v
                                                                    for k, v in given.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not a measurement)")
    parser.add_argument("--sections", nargs="+", choices=list(FIGURES), default=list(FIGURES))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--checkpoint", default=None, help="MCTD model (default: the shipped maze checkpoint)")
    parser.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    for f in dataclasses.fields(Sizes):
        many = isinstance(f.default, tuple)
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, nargs="+" if many else None, default=None,
                            help=f"default {f.default} (quick {getattr(QUICK, f.name)})")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results = run(sizes_from_args(args), args.sections, checkpoint=args.checkpoint)
    md = to_markdown(results)
    print(md)
    write_results("throughput", results, md, args.out_dir)


if __name__ == "__main__":
    main()
