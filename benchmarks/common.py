"""Shared plumbing of the benchmarks: machine info and result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from envs.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """CPU, threads, torch version, device and git commit of this run."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip() or None
    except OSError:
        commit = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "git_commit": commit,
    }


def command_line(module: str) -> str:
    """The command that reproduces this run of ``benchmarks.<module>``, for the results file."""
    return " ".join(["python -m", f"benchmarks.{module}", shlex.join(sys.argv[1:])]).rstrip()


def write_results(name: str, results: dict[str, Any], markdown: str, out_dir: Path | None = None,
                  module: str | None = None) -> Path:
    """Write ``<name>.json`` and ``<name>.md`` (with machine info and the command) to ``out_dir``,
    each atomically (:func:`envs.files.atomic_write`).

    ``module`` is the benchmark module that ran (default ``name``; they differ when a run is
    saved under another name, as ``benchmarks.success --name``)."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    payload = {"benchmark": name, "command": command_line(module or name), "machine": info, "results": results}
    text = json.dumps(payload, indent=2) + "\n"
    atomic_write(out_dir / f"{name}.json", lambda f: f.write(text.encode()))
    lines = [f"# {name}", "", f"Command: `{payload['command']}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "", markdown.rstrip(), ""]
    atomic_write(out_dir / f"{name}.md", lambda f: f.write("\n".join(lines).encode()))
    return out_dir / f"{name}.md"
