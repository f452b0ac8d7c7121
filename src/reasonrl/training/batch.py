"""Tensors for the learner, built from token-id sequences, and their split into micro-batches.

Responses are left-aligned in [B, T] tensors (T = longest response), which is what every algorithm
function takes. Forward passes use length-bucketed micro-batches: sequences sorted by length and packed
up to a token budget, each padded only to its own longest member, so short answers do not pay for long ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """Prompt + response sequences and per-response-token tensors, aligned row by row.

    Every loss input is a field of its own: None where its feature is off. [B, T] tensors are aligned with
    `response_mask` (zero past each response's end), [B] tensors hold one value per row; `select` slices
    every tensor field. `Learner.prepare` fills them in the order of the comments below.
    """

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    response_mask: Tensor  # [B, T] float, 1 on real response tokens the policy sampled
    behaviour_logprobs: Tensor | None = None  # [B, T] log π_behaviour: the engine's, of each sampled token
    old_logprobs: Tensor | None = None  # [B, T] π_old, only when the learner needs a separate pre-update pass
    ref_logprobs: Tensor | None = None  # [B, T] the frozen reference policy's, only when a KL term is on
    values: Tensor | None = None  # [B, T] the critic ensemble's mean value (GAE's V_t), only with a critic
    critic_shard: Tensor | None = None  # [B] long: which critic of the ensemble trains on each row
    shard_values: Tensor | None = None  # [B, T] that critic's own value before the update (its value-clip anchor)
    value_std: Tensor | None = None  # [B, T] disagreement across critics, only with an AsyPPO ensemble (count >= 2)
    advantage_keep: Tensor | None = None  # [B, T] 0/1 AsyPPO's advantage mask I^A, only with an ensemble
    entropy_weights: Tensor | None = None  # [B, T] 0/1 AsyPPO's entropy-bonus mask I^H, only with an ensemble
    credit_weights: Tensor | None = None  # [B, T] attention-guided credit, only with algorithm.attention_credit
    advantages: Tensor | None = None  # [B, T] token-level advantages (always set before an update)
    returns: Tensor | None = None  # [B, T] the critic's λ-return targets, only with a critic
    tree_paths: tuple[str, ...] | None = None  # each row's path in its group's tree, only with tree rollouts

    @classmethod
    def from_ids(
        cls,
        prompt_ids: Sequence[list[int]],
        response_ids: Sequence[list[int]],
        sampled: Sequence[Sequence[int] | None] | None = None,
    ) -> Batch:
        """`sampled`: per row, 1 on tokens the policy sampled and 0 on an episode's environment tokens (None: all
        sampled). The mask then has holes, and every loss, aggregation, advantage and KL counts only the
        sampled tokens: environment tokens are context, never actions."""
        width = max((len(r) for r in response_ids), default=0)
        mask = torch.zeros(len(response_ids), max(width, 1))
        for row, ids in enumerate(response_ids):
            row_mask = sampled[row] if sampled is not None else None
            if row_mask is None:
                mask[row, : len(ids)] = 1.0
            else:
                if len(row_mask) != len(ids):
                    raise ValueError(f"row {row}: a response mask of {len(row_mask)} for {len(ids)} tokens")
                mask[row, : len(ids)] = torch.tensor(row_mask, dtype=mask.dtype)
        return cls(list(prompt_ids), list(response_ids), mask)

    def __len__(self) -> int:
        return len(self.response_ids)

    @property
    def num_tokens(self) -> int:
        return int(self.response_mask.sum().item())

    def padded(self, values: Sequence[Sequence[float]], fill: float = 0.0) -> torch.Tensor:
        """Per-token values (e.g. behaviour log-probs) as a [B, T] tensor aligned with `response_mask`."""
        out = torch.full_like(self.response_mask, fill)
        for row, row_values in enumerate(values):
            out[row, : len(row_values)] = torch.tensor(row_values, dtype=out.dtype)
        return out

    def tensors(self) -> dict[str, Tensor]:
        """The tensor fields that are set (`response_mask` included), by field name."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in found.items() if isinstance(value, Tensor)}

    def fill(self, **tensors: Tensor) -> None:
        """Set tensor fields by name (e.g. what `Critic.evaluate` returns); an unknown name is an error."""
        known = {f.name for f in fields(self)} - {"prompt_ids", "response_ids"}
        unknown = sorted(set(tensors) - known)
        if unknown:
            raise AttributeError(f"Batch has no tensor field {unknown}; its tensor fields are {sorted(known)}")
        for name, value in tensors.items():
            setattr(self, name, value)

    def select(self, rows: Sequence[int]) -> Batch:
        """The sub-batch of `rows`, trimmed to its own longest response: every [B, T] tensor field sliced by
        rows and cut to that width, every [B] one by rows."""
        index = torch.tensor(list(rows), dtype=torch.long)
        responses = [self.response_ids[r] for r in rows]
        width = max(max((len(r) for r in responses), default=0), 1)
        tensors = {
            name: value.index_select(0, index)[:, :width] if value.dim() == 2 else value.index_select(0, index)
            for name, value in self.tensors().items()
        }
        return replace(self, prompt_ids=[self.prompt_ids[r] for r in rows], response_ids=responses, **tensors)


def micro_batches(batch: Batch, token_budget: int) -> list[list[int]]:
    """Row groups whose padded size (rows x longest sequence) stays within `token_budget`.

    Rows are sorted by total length so each micro-batch holds similar lengths; a single sequence longer than
    the budget still forms a micro-batch of its own.
    """
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids, strict=True)]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for row in order:
        if current and (len(current) + 1) * lengths[row] > token_budget:
            groups.append(current)
            current = []
        current.append(row)
    if current:
        groups.append(current)
    return groups


@dataclass
class ModelInputs:
    """Right-padded prompt+response sequences and where each response sits inside them.

    Only the last `logits_to_keep` positions can predict a response token (no response starts before the
    shortest prompt ends), so the model is asked for those logits alone: the output layer over the rest of
    the prompts is wasted work, large for big vocabularies. `response_positions` index into the kept logits.
    """

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    response_positions: torch.Tensor  # [B, T]: index in the kept logits of the one predicting response token t
    logits_to_keep: int

    def to(self, device: torch.device) -> ModelInputs:
        return ModelInputs(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.response_positions.to(device),
            self.logits_to_keep,
        )


def model_inputs(batch: Batch, pad_id: int) -> ModelInputs:
    sequences = [p + r for p, r in zip(batch.prompt_ids, batch.response_ids, strict=True)]
    width = max(map(len, sequences))
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    steps = torch.arange(batch.response_mask.shape[1])
    starts = torch.tensor([len(p) - 1 for p in batch.prompt_ids])
    first = int(starts.min())
    positions = (starts[:, None] + steps[None, :]).clamp(max=width - 1) - first
    return ModelInputs(input_ids, attention, positions, logits_to_keep=width - first)


def response_logits(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[B, L, V] logits -> [B, T, V]: the logits that predict each response token."""
    return logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))


def group_slices(rows: int, group_size: int, parts: int) -> list[list[int]]:
    """Row indices of up to `parts` mini-batches made of whole, contiguous groups, as even as possible.

    Group-relative advantages need whole groups, so a mini-batch never splits one. When the groups do not
    divide evenly (dynamic sampling kept fewer than a full batch) the first mini-batches take one group
    more; when there are fewer groups than `parts`, each group is a mini-batch of its own.
    """
    groups = rows // group_size
    count = min(parts, groups)
    slices: list[list[int]] = []
    start = 0
    for part in range(count):
        size = groups // count + (part < groups % count)
        slices.append(list(range(start * group_size, (start + size) * group_size)))
        start += size
    return slices
