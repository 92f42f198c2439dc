"""Training under torchrun: joining the process group and the few collective steps the
Trainer needs (model.train). join and barrier do nothing in a plain single-process run (and the
Trainer calls agree_to_stop only with several ranks), so the one training code path serves both."""

from __future__ import annotations

import os

import torch


def join(device: torch.device) -> tuple[int, int]:
    """(rank, world size) under torchrun (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT set);
    (0, 1) otherwise. Joins the process group: NCCL on CUDA, gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def group_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def agree_to_stop(out_of_time: bool, asked: bool) -> tuple[bool, bool]:
    """Any rank's reason to stop, on every rank (rank 0's clock and stop flag may differ)."""
    import torch.distributed as dist

    flags = torch.tensor([float(out_of_time), float(asked)])
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0]), bool(flags[1])
