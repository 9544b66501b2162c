"""Data-parallel training across processes (torchrun), nanoGPT style.

``torchrun --nproc_per_node N -m maze_mdlm.cli train ...`` starts N copies of the same command with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Each process
trains on its own rows of every global batch (:func:`shard_rows`), gradients are averaged by
``DistributedDataParallel``, and the main process (rank 0) alone writes files. Without ``RANK``
nothing here is used and training is the plain single-process loop.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a data-parallel run (``world_size`` 1: no run at all)."""

    rank: int = 0  # global rank, 0 .. world_size - 1
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (picks the GPU)

    @property
    def is_main(self) -> bool:
        """True for the one process that writes checkpoints, metrics and logs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when gradients must be averaged across processes."""
        return self.world_size > 1


def from_environment(environ: dict[str, str] | None = None) -> DistInfo:
    """Read torchrun's variables; without ``RANK`` this is a single-process run.

    Raises:
        ValueError: for malformed or inconsistent values.
    """
    env = os.environ if environ is None else environ
    if "RANK" not in env:
        return DistInfo()
    try:
        rank, world = int(env["RANK"]), int(env.get("WORLD_SIZE", "1"))
        local = int(env.get("LOCAL_RANK", env["RANK"]))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} does not lie in [0, WORLD_SIZE={world})")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def shard_rows(batch_size: int, info: DistInfo) -> slice:
    """The rows of a global batch of ``batch_size`` that process ``info.rank`` trains on.

    Raises:
        ValueError: if ``batch_size`` is not a multiple of the number of processes.
    """
    if batch_size % info.world_size:
        raise ValueError(f"--batch-size {batch_size} is not divisible by the {info.world_size} processes")
    per_rank = batch_size // info.world_size
    return slice(info.rank * per_rank, (info.rank + 1) * per_rank)


def init_process_group(info: DistInfo, device: torch.device, timeout_minutes: float = 60.0) -> None:
    """Join the process group: NCCL on CUDA devices, gloo on the CPU. No-op for one process.

    The long timeout covers rank 0's in-training evaluation, during which the others wait.
    """
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size,
                            timeout=datetime.timedelta(minutes=timeout_minutes))


def barrier(info: DistInfo) -> None:
    """Wait until every process gets here (no-op for one process). Called once training is done
    on every rank, so that no rank tears the group down while another still uses it (gloo then
    aborts the early one: "terminate called without an active exception")."""
    if info.enabled and dist.is_initialized():
        dist.barrier()


def destroy_process_group() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: Tensor, info: DistInfo) -> Tensor:
    """Sum ``values`` over all processes, in place; returns it (unchanged for one process)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    """One GPU per process on a CUDA machine (``cuda:LOCAL_RANK``); the CPU is shared."""
    if info.enabled and device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device
