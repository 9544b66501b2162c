"""Data-parallel training on the CPU: 2 torchrun (gloo) processes against 1, same global batch.

Each layout runs the real command (``python -m maze_mdlm.cli train``, under ``torch.distributed.run``
for several processes) from scratch on the same data and seed, logging every step. It reports the
largest relative difference of the per-step training loss against the first layout, and the
samples/s of each (median over the steps after the first, from the run's own ``steps_per_s``).

    python -m benchmarks.ddp [--episodes 1000] [--batch-size 256] [--steps 20] [--horizon 16]

The samples/s are only as good as the machine is quiet: the page records the load average before
and after the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import write_results
from envs.collect import collect
from envs.dataset import save_episodes

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (processes, torch threads per process)


def train_once(data: Path, out: Path, processes: int, threads: int, steps: int, batch_size: int, horizon: int,
               hidden_dim: int, num_layers: int) -> list[dict]:
    """Run ``train`` on ``processes`` processes of ``threads`` threads; returns its train records."""
    launcher = [sys.executable, "-m", "maze_mdlm.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes), "-m", "maze_mdlm.cli"]
    command = [*launcher, "train", "--data", str(data), "--out", str(out), "--steps", str(steps),
               "--batch-size", str(batch_size), "--horizon", str(horizon), "--hidden-dim", str(hidden_dim),
               "--num-layers", str(num_layers), "--val-every", "0", "--eval-episodes", "0", "--log-every", "1",
               "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == "train"]


def run(episodes: int = 1000, batch_size: int = 256, steps: int = 20, horizon: int = 16, hidden_dim: int = 128,
        num_layers: int = 4, layouts: tuple[tuple[int, int], ...] = LAYOUTS) -> dict:
    """Train once per (processes, threads) layout; losses are compared with the first layout."""
    rows, load_before = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "fr.data"
        save_episodes(data, collect(["MiniGrid-FourRooms-v0"], episodes, seed=0))
        reference = None
        for processes, threads in layouts:
            out = Path(tmp) / f"run_{processes}x{threads}"
            records = train_once(data, out, processes, threads, steps, batch_size, horizon, hidden_dim, num_layers)
            losses = [r["loss"] for r in records]
            reference = reference or losses
            rel = max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
            rates = [r["samples_per_s"] for r in records[1:]] or [records[0]["samples_per_s"]]
            rows.append({"processes": processes, "threads": threads, "steps": len(losses),
                         "final_loss": losses[-1], "max_rel_loss_diff": rel,
                         "samples_per_s": statistics.median(rates)})
    first = rows[0]["samples_per_s"]
    for row in rows:
        row["speedup"] = row["samples_per_s"] / first
    return {"episodes": episodes, "batch_size": batch_size, "steps": steps, "horizon": horizon,
            "hidden_dim": hidden_dim, "num_layers": num_layers, "rows": rows,
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def to_markdown(r: dict) -> str:
    lines = [f"Global batch {r['batch_size']}, H={r['horizon']}, {r['steps']} steps from scratch, model "
             f"{r['hidden_dim']}x{r['num_layers']}; loss difference against the first row, every step.", "",
             "| processes x threads | final loss | max rel. loss diff | samples/s (median) | vs first |",
             "|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['processes']} x {row['threads']} | {row['final_loss']:.6f} | "
                     f"{row['max_rel_loss_diff']:.1e} | {row['samples_per_s']:.0f} | {row['speedup']:.2f}x |")
    before, after = r["load_average_1min"]
    lines += ["", f"1-minute load average {before} before, {after} after, on {os.cpu_count()} cores "
              "(above the core count, other jobs shared the CPU and the samples/s are noisy)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000, help="FourRooms episodes in the dataset")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    parser.add_argument("--horizon", type=int, default=16, help="plan window")
    args = parser.parse_args(argv)
    r = run(args.episodes, args.batch_size, args.steps, args.horizon)
    md = to_markdown(r)
    print(md)
    write_results("ddp", r, md)


if __name__ == "__main__":
    main()
