"""Policy weights as numpy arrays for Ray's object store.

Ray pickles a torch tensor with a copy, byte by byte; a numpy array travels as a pickle-5 out-of-band buffer
and arrives as a zero-copy view in shared memory: 8-15x faster for the same bytes (`../shared/reference/
ray.md` §2.3, 512 MiB in 0.22-0.55 s against 4.2 s). numpy has no bfloat16, so bf16 tensors travel as their
int16 bit patterns and are viewed back on arrival.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import ray
import torch

PackedWeights = list[tuple[str, np.ndarray, str]]  # (Hugging Face name, array, torch dtype name)


def pack(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> PackedWeights:
    """Each tensor as a numpy view of its CPU memory (copied to the CPU first when it lives on a GPU). The
    views share the learner's live parameters: put them in the object store (which copies) before the next
    update."""
    packed = []
    for name, tensor in named_tensors:
        cpu = tensor.detach().to("cpu").contiguous()
        dtype = str(cpu.dtype).removeprefix("torch.")
        array = cpu.view(torch.int16).numpy() if cpu.dtype == torch.bfloat16 else cpu.numpy()
        packed.append((name, array, dtype))
    return packed


def unpack(packed: PackedWeights, device: str | torch.device = "cpu") -> list[tuple[str, torch.Tensor]]:
    """Tensors over the received arrays (read-only object-store memory: `load_state_dict` copies out of them,
    so torch's warning about non-writable arrays does not apply)."""
    tensors = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for name, array, dtype in packed:
            tensor = torch.from_numpy(array)
            if dtype == "bfloat16":
                tensor = tensor.view(torch.bfloat16)
            tensors.append((name, tensor.to(device)))
    return tensors


class WeightTransport(Protocol):
    """How a policy version reaches the engine replicas: the seam for GPU transports.

    `publish` runs in the driver once per version; what it returns is what every replica's `load` receives,
    and what a restarted replica reloads from, so it must stay valid until the next version. `receive` runs
    in the engine actor and gives the named tensors on its device. `ObjectStoreWeights` (numpy through Ray's
    object store) is what ships and works on CPUs and GPUs alike. A NCCL broadcast (learner and engines on
    different GPUs) fits the same two calls: `publish` starts a bucketed broadcast from the learner and
    returns the version's metadata, `receive` joins the group and copies the buckets in place; CUDA IPC
    (learner and engine sharing a GPU) exports handles in `publish` and opens them in `receive`. See
    docs/distributed.md.
    """

    def publish(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> Any: ...

    def receive(self, payload: Any, device: str | torch.device) -> list[tuple[str, torch.Tensor]]: ...


BUCKET_BYTES = 128 * 2**20  # one object-store put per bucket: what a sender holds beyond its own weights


class ObjectStoreWeights:
    """Weights put in the object store in buckets of about `bucket_bytes` (one object per bucket, each loaded by
    every replica, one copy per node). Buckets bound what the sender materialises at once: a sharded learner
    gathers one parameter at a time into the current bucket, puts it, and lets it go."""

    def __init__(self, bucket_bytes: int = BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes
        self.peak_bucket_bytes = 0  # the largest bucket of the last publish: what its sender held at once
        self.published_bytes = 0  # all the bytes of the last publish

    def publish(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> Any:
        del version  # the objects are immutable; the caller tags them
        if isinstance(named_tensors, Published):  # a learner rank put them there already
            return named_tensors.payload
        refs, bucket, size = [], [], 0
        self.peak_bucket_bytes = self.published_bytes = 0
        for name, tensor in named_tensors:
            bucket.append((name, tensor))
            size += tensor.numel() * tensor.element_size()
            if size >= self.bucket_bytes:
                refs.append(self._put(bucket, size))
                bucket, size = [], 0
        if bucket or not refs:
            refs.append(self._put(bucket, size))
        return refs

    def _put(self, bucket: list[tuple[str, torch.Tensor]], size: int) -> Any:
        self.peak_bucket_bytes = max(self.peak_bucket_bytes, size)
        self.published_bytes += size
        return ray.put(pack(bucket))

    def receive(self, payload: Any, device: str | torch.device) -> list[tuple[str, torch.Tensor]]:
        tensors = []
        for ref in payload:
            tensors.extend(unpack(ray.get(ref), device))
        return tensors


class Published:
    """Weights some other process already published with `ObjectStoreWeights` (a learner rank): the payload
    passes through `publish` untouched. Iterating it fetches the tensors, for a consumer in this process."""

    is_snapshot = True  # object-store objects are immutable: no copy is needed to keep this version

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def items(self) -> Published:
        """Itself: a snapshot's named tensors (`rollout.producer.weight_snapshot`'s interface)."""
        return self

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for ref in self.payload:
            yield from unpack(ray.get(ref))
