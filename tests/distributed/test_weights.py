"""Weights travel as numpy arrays (bf16 as its bit patterns) and come back bit for bit."""

from __future__ import annotations

import torch

from reasonrl.distributed.weights import pack, unpack


def test_every_dtype_comes_back_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(0)
    named = [
        ("a.weight", torch.randn(3, 4, generator=generator)),
        ("b.weight", torch.randn(5, generator=generator).to(torch.bfloat16)),
        ("c.weight", torch.randn(2, 2, generator=generator).to(torch.float16)),
        ("d.bias", torch.randn(4, 3, generator=generator).t()),  # not contiguous
    ]
    packed = pack(named)
    assert [(name, dtype) for name, _, dtype in packed] == [
        ("a.weight", "float32"),
        ("b.weight", "bfloat16"),
        ("c.weight", "float16"),
        ("d.bias", "float32"),
    ]
    for array in (a for _, a, _ in packed):
        array.setflags(write=False)  # as the object store hands them over
    back = unpack(packed)
    for (name, tensor), (name_back, tensor_back) in zip(named, back, strict=True):
        assert name == name_back and tensor_back.dtype == tensor.dtype
        assert torch.equal(tensor_back, tensor)
