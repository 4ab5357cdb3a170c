"""torch.distributed for training: one process per GPU (NCCL), or CPU processes over gloo.

Two ways in:

- ``torchrun --nproc-per-node N -m model_export.training.launch …`` (or any launcher that sets
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): :func:`from_env`.
- ``facerec train run --nproc N``: :func:`spawn` starts N local processes itself, on a free
  TCP port of 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import spawn as mp_spawn

__all__ = ["Rank", "all_reduce_mean", "free_port", "from_env", "spawn"]


@dataclass(frozen=True)
class Rank:
    """Where this process stands: its rank, the world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _device(local_rank: int, want: str) -> torch.device:
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {want!r} asked for, but CUDA is not available")
    if want.startswith("cuda:"):
        return torch.device(want)
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _join(rank: int, world_size: int, local_rank: int, want: str, init_method: str) -> Rank:
    device = _device(local_rank, want)
    if world_size > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method=init_method,
            rank=rank,
            world_size=world_size,
        )
    return Rank(rank, world_size, local_rank, device)


def from_env(device: str = "auto") -> Rank:
    """This process's rank from torchrun's variables; a single process when they are absent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    return _join(rank, world_size, local_rank, device, "env://")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    local_rank: int,
    nproc: int,
    port: int,
    device: str,
    fn: Callable[[Rank], None],
) -> None:
    rank = _join(local_rank, nproc, local_rank, device, f"tcp://127.0.0.1:{port}")
    if rank.device.type == "cpu":  # share the cores between the ranks, as torchrun does
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        fn(rank)
    finally:
        if rank.distributed:
            dist.destroy_process_group()


def spawn(fn: Callable[[Rank], None], nproc: int, device: str = "auto") -> None:
    """Run ``fn(rank)`` in ``nproc`` fresh local processes joined by a process group.

    ``fn`` must be picklable (a module-level function or a ``functools.partial`` of one).
    An exception in any rank is raised here.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    if nproc == 1:
        fn(_join(0, 1, 0, device, ""))
        return
    args = (nproc, free_port(), device, fn)
    mp_spawn(_worker, args=args, nprocs=nproc, join=True)  # type: ignore[no-untyped-call]


def all_reduce_mean(value: torch.Tensor, rank: Rank) -> torch.Tensor:
    """The mean of ``value`` over all ranks (itself when not distributed)."""
    if not rank.distributed:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / rank.world_size
