"""Data parallelism inside the learner: which rows a rank computes, and the collectives that make N ranks
compute what one rank would.

Every rank receives the whole batch (token ids and per-token tensors are small next to the model), so every
batch-wide quantity (the loss normalisers, group statistics, advantages, whitening) is computed from the
whole batch on every rank, identically, with no communication; only the forward and backward passes are
split. Rows go to ranks balanced by tokens (longest first, each to the least loaded rank), and each rank cuts
its rows into the same length-bucketed micro-batches a single learner would. The ranks run the same number of
passes (DDP's gradient sync and FSDP2's all-gathers are collectives): a rank with fewer micro-batches runs
padding passes whose loss is multiplied by zero. Per-row results (log-probs, values) come back by a summing
all-reduce of zero-filled [B, T] tensors, exact because every row has one owner. Gradients are summed: DDP and
FSDP2 average over ranks, so each rank scales its loss by the world size (a power of two for the usual 2, 4,
8 ranks, so the scaling is exact in binary floating point).

`SINGLE` is the one-rank view the local learner uses: no process group, every method the identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn

from reasonrl.training.batch import Batch, micro_batches
from reasonrl.training.stepping import add_metrics

Strategy = Literal["ddp", "fsdp2"]


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the learner's ranks (`rank` of `world`) and how the model is split."""

    rank: int = 0
    world: int = 1
    strategy: Strategy = "ddp"

    @property
    def sharded(self) -> bool:
        """Whether the models are FSDP2 modules (DTensor parameters): `fsdp2` in a process group, of one rank
        too (a one-GPU machine's smoke test of the sharded path)."""
        return self.strategy == "fsdp2" and (self.world > 1 or dist.is_initialized())

    @property
    def leader(self) -> bool:
        """Rank 0: the one that writes files and publishes weights."""
        return self.rank == 0

    # ---- rows ----------------------------------------------------------------------------------------------
    def micro_plan(self, batch: Batch, token_budget: int) -> list[list[int] | None]:
        """This rank's micro-batches as row indices of `batch`, padded with None (a padding pass) to the count of
        the busiest rank, so that every rank runs the same number of passes. One rank: `micro_batches`."""
        if self.world == 1:
            return list(micro_batches(batch, token_budget))
        lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids, strict=True)]
        plans = [
            [[own[i] for i in group] for group in micro_batches(batch.select(own), token_budget)] if own else []
            for own in balanced_rows(lengths, self.world)
        ]
        longest = max(max(len(plan) for plan in plans), 1)
        mine: list[list[int] | None] = list(plans[self.rank])
        return mine + [None] * (longest - len(mine))

    # ---- collectives ---------------------------------------------------------------------------------------
    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """A zero-filled per-row tensor, each rank having written its own rows, summed into the whole (exact:
        every row has one owner and adds zeros elsewhere)."""
        if self.world == 1:
            return tensor
        device = collective_device()
        summed = tensor.to(device)
        dist.all_reduce(summed)
        return summed.to(tensor.device)

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order (small Python objects: metrics, per-row lists)."""
        if self.world == 1:
            return [value]
        found: list[Any] = [None] * self.world
        dist.all_gather_object(found, value)
        return found

    def combine_metrics(self, totals: dict[str, float]) -> dict[str, float]:
        """Per-rank micro-batch metric totals, combined as one rank's micro-batches would have been: means
        arrive weighted by their share of the batch's tokens, so they add up; extremes take max / min."""
        if self.world == 1:
            return totals
        combined: dict[str, float] = {}
        for part in self.gather_objects(totals):
            add_metrics(combined, part)
        return combined

    # ---- models ---------------------------------------------------------------------------------------------
    @property
    def loss_scale(self) -> float:
        """What each rank multiplies its loss by so that the ranks' averaged gradient is the batch's sum."""
        return float(self.world)

    def wrap(self, model: nn.Module, *, trainable: bool) -> nn.Module:
        """The module the forward passes run through: the model itself on one rank; under DDP the trained model
        in `DistributedDataParallel` (frozen ones stay plain replicas); under FSDP2 every model sharded in
        place by decoder layer, then at the root (`fully_shard`)."""
        if self.world == 1 and not self.sharded:
            return model
        if self.strategy == "ddp":
            if not trainable:
                return model
            from torch.nn.parallel import DistributedDataParallel

            device = next(model.parameters()).device
            return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        from torch.distributed.fsdp import fully_shard

        for block in decoder_layers(model):
            fully_shard(block)
        fully_shard(model)
        return model

    @contextmanager
    def gradient_sync(self, module: nn.Module, *, last: bool) -> Iterator[None]:
        """Accumulate gradients locally for every micro-batch but a step's last, whose backward reduces them
        across ranks once (DDP's `no_sync`, FSDP2's `set_requires_gradient_sync`)."""
        if self.world == 1 or last:
            if self.sharded:
                module.set_requires_gradient_sync(True)  # type: ignore[operator]
            yield
            return
        if self.strategy == "ddp":
            context = module.no_sync() if hasattr(module, "no_sync") else nullcontext()
            with context:  # type: ignore[attr-defined]
                yield
            return
        module.set_requires_gradient_sync(False)  # type: ignore[operator]
        yield

    def full_tensors(
        self, model: nn.Module, include: Callable[[str], bool] = lambda name: True
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """`model`'s state dict (the names `include` accepts) as whole tensors, one at a time: under FSDP2 each
        shard is all-gathered when its turn comes (every rank must iterate, in the same order) and only the
        leader receives it; other ranks yield nothing. A tied weight (embeddings shared with the LM head) is
        gathered once and yielded under both names as one tensor, as an unsharded state dict shares it.
        Replicated models pass through on the leader."""
        aliases = tied_names(model)
        shared = {first for name, first in aliases.items() if name != first}
        kept: dict[str, torch.Tensor] = {}
        for name, tensor in model.state_dict().items():
            if not include(name):
                continue
            first = aliases.get(name, name)
            full = kept.get(first)
            if full is None:
                full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
                if first in shared:
                    kept[first] = full
            if self.leader:
                yield name, full
            del full


SINGLE = DataParallel()


def balanced_rows(lengths: list[int], world: int) -> list[list[int]]:
    """Row indices per rank, balanced by tokens: longest rows first, each to the rank with the fewest tokens so
    far (ties to the lower rank), each rank's rows ascending. Deterministic, so every rank computes the same."""
    load = [0] * world
    owned: list[list[int]] = [[] for _ in range(world)]
    for row in sorted(range(len(lengths)), key=lambda r: (-lengths[r], r)):
        rank = min(range(world), key=lambda k: (load[k], k))
        owned[rank].append(row)
        load[rank] += lengths[row]
    return [sorted(rows) for rows in owned]


def tied_names(model: nn.Module) -> dict[str, str]:
    """Each parameter name -> the first name of the same parameter (itself unless tied), the same on every rank."""
    first: dict[int, str] = {}
    return {name: first.setdefault(id(p), name) for name, p in model.named_parameters(remove_duplicate=False)}


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks FSDP2 shards one by one: the modules whose class a Hugging Face model names in
    `_no_split_modules` (its decoder layer), found through peft and value-model wrappers."""
    names: set[str] = set()
    for module in model.modules():
        names |= set(getattr(module, "_no_split_modules", None) or [])
    return [module for module in model.modules() if type(module).__name__ in names]


def collective_device() -> torch.device:
    """Where tensors must be for the process group's backend: the GPU for nccl, the CPU for gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def padding_part(batch: Batch) -> Batch:
    """What a padding pass runs on: the batch's first row (its loss is multiplied by zero)."""
    return batch.select([0])
