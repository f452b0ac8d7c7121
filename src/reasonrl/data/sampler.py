"""A deterministic, resumable stream of training prompts: epochs of seeded shuffles and a saveable cursor.

Resume must be lossless: after `load_state_dict(state_dict())` the sampler yields exactly the batches an
uninterrupted run would have. That holds because an epoch's order is a pure function of (seed, epoch),
so the state is just the cursor, plus a fingerprint of the prompts that catches resuming on other data.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from reasonrl.data.errors import DataError
from reasonrl.data.records import Prompt


def _fingerprint(prompts: Sequence[Prompt]) -> str:
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(prompt.id.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class PromptSampler:
    """Hands out training prompts in batches, epoch after epoch, reshuffled per epoch when `shuffle` is set.

    A batch may span an epoch boundary: the first prompts come from the end of one epoch and the rest from
    the next, so every prompt is used once per epoch and batch sizes can change from call to call (the
    rollout scheduler over-provisions some steps).
    """

    def __init__(self, prompts: Sequence[Prompt], *, shuffle: bool = True, seed: int = 0):
        if not prompts:
            raise DataError("no training prompts to sample from; check data.train")
        self.prompts = list(prompts)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._fingerprint = _fingerprint(self.prompts)
        self._order = self._epoch_order(0)

    def __len__(self) -> int:
        return len(self.prompts)

    def _epoch_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.prompts)))
        if self.shuffle:
            # A string seed hashes the same in every process (unlike hash()), and allows negative seeds.
            random.Random(f"reasonrl-sampler:{self.seed}:{epoch}").shuffle(order)
        return order

    def next_batch(self, size: int) -> list[Prompt]:
        """The next `size` prompts, moving to the next epoch (and its shuffle) when this one is used up."""
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        batch: list[Prompt] = []
        while len(batch) < size:
            if self.position == len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order(self.epoch)
            take = min(size - len(batch), len(self._order) - self.position)
            batch.extend(self.prompts[i] for i in self._order[self.position : self.position + take])
            self.position += take
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The cursor and what it is valid for; plain values, safe to put in JSON or torch checkpoints."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_prompts": len(self.prompts),
            "fingerprint": self._fingerprint,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved cursor; a state saved for other prompts or settings is a `DataError`."""
        saved = (state["num_prompts"], state["fingerprint"], state["seed"], state["shuffle"])
        current = (len(self.prompts), self._fingerprint, self.seed, self.shuffle)
        if saved != current:
            raise DataError(
                f"cannot resume the prompt sampler: it was saved for {state['num_prompts']} prompts "
                f"(fingerprint {state['fingerprint']}, seed {state['seed']}, shuffle {state['shuffle']}) but "
                f"this run has {len(self.prompts)} prompts (fingerprint {self._fingerprint}, seed "
                f"{self.seed}, shuffle {self.shuffle}). Resume with the data section of the original config"
            )
        if not 0 <= state["position"] <= len(self.prompts) or state["epoch"] < 0:
            raise DataError(f"corrupt sampler state: epoch {state['epoch']}, position {state['position']}")
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._epoch_order(self.epoch)
