"""Sharding feature extraction over the processes of a ``torchrun`` group.

Every helper is a no-op in a single process (no ``torch.distributed`` group initialised), so
the feature cache runs the same code with or without torchrun. Work is split by whole batches
(batch ``b`` on rank ``b % world``), so each batch sees the same inputs as in one process and
the gathered result is bit-identical to the single-process one.
"""
import os

import torch
import torch.distributed as dist


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main():
    """Rank 0, the process that writes shared files and prints."""
    return rank() == 0


def barrier():
    if is_distributed():
        dist.barrier()


def init_from_env():
    """Join the process group torchrun describes in the environment (gloo on CPU; nccl with one
    GPU per LOCAL_RANK on CUDA). Returns whether a group was started here (False outside torchrun)."""
    if "LOCAL_RANK" not in os.environ or dist.is_initialized():
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def num_batches(num_items, batch_size):
    return -(-num_items // batch_size)


def my_batches(num_items, batch_size):
    """The index ranges of the batches of ``range(num_items)`` this rank computes: batch ``b``
    (items ``b * batch_size`` on) belongs to rank ``b % world``."""
    return [range(b * batch_size, min((b + 1) * batch_size, num_items))
            for b in range(rank(), num_batches(num_items, batch_size), world_size())]


def any_rank(flags):
    """Element-wise OR of a list of booleans over all ranks (so that all ranks take one branch)."""
    if not is_distributed():
        return list(flags)
    t = torch.tensor(flags, dtype=torch.uint8, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def gather_batches(chunks, num_items, batch_size, dim=0):
    """The full result on every rank, in the single-process order: ``chunks`` are this rank's
    per-batch results (``my_batches`` order), items along ``dim``. Shards are padded to one size
    for ``all_gather`` (gloo needs equal shapes) and go through CPU tensors with gloo."""
    if not is_distributed():
        return torch.cat(chunks, dim)
    meta = [(chunks[0].movedim(dim, 0).shape[1:], chunks[0].dtype) if chunks else None]
    dist.broadcast_object_list(meta, src=0, device=_comm_device())  # rank 0 always holds batch 0
    rest, dtype = meta[0]
    longest = num_batches(num_batches(num_items, batch_size), world_size()) * batch_size
    shard = torch.zeros(longest, *rest, dtype=dtype, device=_comm_device())
    if chunks:
        local = torch.cat([c.movedim(dim, 0) for c in chunks])
        shard[:len(local)] = local
    shards = [torch.empty_like(shard) for _ in range(world_size())]
    dist.all_gather(shards, shard)
    return interleave([s.cpu() for s in shards], num_items, batch_size).movedim(0, dim)


def interleave(shards, num_items, batch_size):
    """Reassemble ``[N, ...]`` from one (padded) shard per rank, items along dim 0: batch ``b`` is
    the ``b // world``-th batch of rank ``b % world``'s shard."""
    world = len(shards)
    parts = []
    for b in range(num_batches(num_items, batch_size)):
        start = (b // world) * batch_size
        parts.append(shards[b % world][start:start + min(batch_size, num_items - b * batch_size)])
    return torch.cat(parts)


def _comm_device():
    """Where collectives run: the current GPU with nccl, the CPU with gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
