"""Policy weights as numpy arrays for Ray's object store.

Ray pickles a torch tensor with a copy, byte by byte; a numpy array travels as a pickle-5 out-of-band buffer
and arrives as a zero-copy view in shared memory: 8-15x faster for the same bytes (`../shared/reference/
ray.md` §2.3, 512 MiB in 0.22-0.55 s against 4.2 s). numpy has no bfloat16, so bf16 tensors travel as their
int16 bit patterns and are viewed back on arrival.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
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


class ObjectStoreWeights:
    """One `ray.put` of numpy arrays per version; every replica loads the same object (one copy per node)."""

    def publish(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> Any:
        del version  # the object is immutable; the caller tags it
        return ray.put(pack(named_tensors))

    def receive(self, payload: Any, device: str | torch.device) -> list[tuple[str, torch.Tensor]]:
        return unpack(payload, device)
