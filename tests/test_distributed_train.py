"""Data-parallel training (torchrun, 2 gloo processes on the CPU), precision, compile and the train checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maze_mdlm import distributed
from maze_mdlm.checkpoint import load_checkpoint, read_checkpoint
from maze_mdlm.cli import main
from maze_mdlm.masking import mask_tokens

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--batch-size", "16", "--horizon", "8", "--hidden-dim", "32", "--num-layers", "1", "--val-every", "4",
        "--eval-episodes", "0", "--log-every", "1"]
LOSS_RTOL = 1e-4  # DDP vs one process at the same global batch (README, "Scaling out")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "fr.data"
    assert main(["collect-data", "--env", "MiniGrid-FourRooms-v0", "--episodes", "40", "--out", str(path)]) == 0
    return path


def _train(data_file, out, steps, *extra):
    return main(["train", "--data", str(data_file), "--out", str(out), "--steps", str(steps), *TINY, *extra])


def _torchrun(data_file, out, steps, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "maze_mdlm.cli", "train", "--data", str(data_file), "--out", str(out), "--steps", str(steps),
               *TINY, *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def _losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["event"] == "train"}


def test_two_processes_match_one_and_checkpoints_cross_over(tmp_path, data_file):
    """1 process to step 4, then 2 processes (--resume) to 8, then 1 process to 12: the same losses and
    weights as 1 process all along, within LOSS_RTOL (the checkpoint moves 1 -> 2 -> 1 processes)."""
    single, mixed = tmp_path / "single", tmp_path / "mixed"
    assert _train(data_file, single, 4) == 0
    shutil.copytree(single, mixed)
    assert _train(data_file, single, 8, "--resume") == 0
    assert _train(data_file, single, 12, "--resume") == 0

    done = _torchrun(data_file, mixed, 8, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_checkpoint(mixed / "checkpoint.pt")["extra"]["world_size"] == 2
    assert _train(data_file, mixed, 12, "--resume") == 0

    a, b = _losses(single), _losses(mixed)
    assert sorted(b) == list(range(1, 13))  # rank 0 alone wrote one record per step
    for step in range(1, 13):
        assert b[step] == pytest.approx(a[step], rel=LOSS_RTOL), step
    assert b[8] != a[4]  # (the curve moves)
    wa, wb = read_checkpoint(single / "checkpoint.pt")["model"], read_checkpoint(mixed / "checkpoint.pt")["model"]
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-3, atol=1e-5) for k in wa)
    model, ckpt = load_checkpoint(mixed / "checkpoint.pt")  # plain keys, no "module." prefix
    assert ckpt["step"] == 12 and not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])


def test_shard_draws_are_the_global_batch_rows():
    """Each process masks its rows exactly as the whole batch would be masked."""
    actions = torch.randint(0, 6, (8, 5))
    ratio = torch.rand(8)
    whole = mask_tokens(actions, ratio, torch.Generator().manual_seed(3))
    for rank in range(2):
        rows = distributed.shard_rows(8, distributed.DistInfo(rank=rank, world_size=2))
        part = mask_tokens(actions[rows], ratio, torch.Generator().manual_seed(3), rows=rows)
        for x, y in zip(whole, part):
            assert torch.equal(x[rows], y)


def test_environment_and_shards():
    assert distributed.from_environment({}) == distributed.DistInfo()
    info = distributed.from_environment({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (info.rank, info.world_size, info.is_main, info.enabled) == (1, 4, False, True)
    assert distributed.shard_rows(16, info) == slice(4, 8)
    with pytest.raises(ValueError, match="not divisible"):
        distributed.shard_rows(10, info)
    with pytest.raises(ValueError):
        distributed.from_environment({"RANK": "4", "WORLD_SIZE": "4"})


def test_bf16_autocast_trains_and_differs_from_fp32(tmp_path, data_file):
    assert _train(data_file, tmp_path / "fp32", 3) == 0
    assert _train(data_file, tmp_path / "bf16", 3, "--precision", "bf16") == 0
    ckpt = read_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    assert ckpt["train_config"]["precision"] == "bf16"
    a, b = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(v)) for v in b.values())
    assert b[3] == pytest.approx(a[3], rel=2e-2) and b[3] != a[3]  # autocast was on, and close
    w32, w16 = read_checkpoint(tmp_path / "fp32" / "checkpoint.pt")["model"], ckpt["model"]
    assert all(v.dtype == torch.float32 for v in w16.values() if v.is_floating_point())


def test_compile_traces_the_training_forward(tmp_path, data_file, monkeypatch):
    """--compile goes through torch.compile (dynamo; the eager backend here, to skip the C++ build) and
    trains the same losses; the checkpoint holds the bare module's keys."""
    compiled = []
    real = torch.compile

    def eager_compile(model, *args, **kwargs):
        compiled.append(model)
        return real(model, *args, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    assert _train(data_file, tmp_path / "plain", 3) == 0
    from torch._dynamo.utils import counters

    counters.clear()
    assert _train(data_file, tmp_path / "compiled", 3, "--compile") == 0
    assert len(compiled) == 1 and counters["stats"]["unique_graphs"] >= 1  # the forward was traced
    a, b = _losses(tmp_path / "plain"), _losses(tmp_path / "compiled")
    assert all(b[s] == pytest.approx(a[s], rel=1e-5) for s in a)
    ckpt = read_checkpoint(tmp_path / "compiled" / "checkpoint.pt")
    assert ckpt["train_config"]["compile"] is True and not any(k.startswith("_orig_mod.") for k in ckpt["model"])


def test_compile_failure_is_one_line_and_writes_nothing(tmp_path, data_file, capsys, monkeypatch):
    def broken(model, *args, **kwargs):
        def run(*a, **k):
            raise RuntimeError("InductorError: no working C++ compiler\nlong traceback ...")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    assert _train(data_file, tmp_path / "run", 2, "--compile") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--compile failed" in err and "C++ compiler" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, env, message",
    [
        (["--hidden-dim", "30"], {}, "not divisible by num_heads"),
        (["--batch-size", "15"], {"RANK": "0", "WORLD_SIZE": "2"}, "not divisible by the 2 processes"),
        (["--precision", "fp16"], {}, "--precision"),
        (["--log-every", "0"], {}, "--log-every"),
        (["--lr", "inf"], {}, "--lr"),
        (["--data", "minari:nobody/nothing-v0"], {"MINARI_DATASETS_PATH": "{tmp}"}, "minari"),
    ],
)
def test_rejected_configs_exit_2_before_writing(tmp_path, data_file, capsys, monkeypatch, extra, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    code = main(["train", "--data", str(data_file), "--out", str(tmp_path / "run"), "--steps", "2", *extra])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_other_ranks_print_no_error(tmp_path, data_file, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--data", str(data_file), "--out", str(tmp_path / "run"), "--hidden-dim", "30"]) == 2
    assert capsys.readouterr().err == ""


def test_core_does_not_import_agents_and_has_no_import_circle():
    """The rule of /work/shared/hooks/layering.py, checked on the source: no core module of maze_mdlm
    imports agents (the CLI modules may), and no import circle among envs, maze_mdlm and agents."""
    import ast

    graph: dict[str, set[str]] = {}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for pkg in ("envs", "maze_mdlm", "agents") for p in (ROOT / pkg).rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {d for d in map(owner, names) if d and d != name}
        graph[name] = deps
    core = [n for n in graph if n.startswith("maze_mdlm") and not n.startswith("maze_mdlm.cli")]
    assert not [(n, d) for n in core for d in graph[n] if d.startswith("agents")]

    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, f"import circle: {' -> '.join(path + [dep])}"
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
