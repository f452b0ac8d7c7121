"""A scripted engine for scheduler and producer tests: decodes in lock-step like `HFEngine`, with each
response's length fixed by its prompt, so long tails, aborts and continuations are exact and instant."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import torch

from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings

TOKEN = 7
EOS = 0


class StepEngine:
    """Request i's full response is `length_of(prompt_ids)` tokens (the last one EOS); every decode step adds
    one token to every running request; `on_finish` and aborts behave as in `HFEngine.generate`."""

    def __init__(self, length_of: Callable[[list[int]], int], step_seconds: float = 0.0) -> None:
        """`step_seconds`: wall time of each decode step (a slow engine, for interruption tests)."""
        self.length_of = length_of
        self.step_seconds = step_seconds
        self.version = 0
        self.calls: list[tuple[int, int]] = []  # (version, requests) of each generate call
        self.loaded: list[dict[str, torch.Tensor]] = []
        self.steps = 0  # decode steps over all calls: the cost a long tail drives up

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        self.calls.append((self.version, len(requests)))
        tokens: list[list[int]] = [[] for _ in requests]
        finish = ["abort"] * len(requests)
        running = list(range(len(requests)))
        aborted = False
        while running and not aborted:
            self.steps += 1
            time.sleep(self.step_seconds)
            still = []
            for i in running:
                request = requests[i]
                done = len(request.response_prefix_ids) + len(tokens[i])
                full = self.length_of(request.prompt_ids)
                tokens[i].append(EOS if done + 1 >= full else TOKEN)
                budget = request.max_new_tokens if request.max_new_tokens is not None else sampling.max_new_tokens
                if tokens[i][-1] == EOS or len(tokens[i]) >= budget:
                    finish[i] = "stop" if tokens[i][-1] == EOS else "length"
                    if on_finish is not None:
                        aborted = bool(on_finish(i, self._generation(tokens[i], finish[i]))) or aborted
                else:
                    still.append(i)
            running = still
            aborted = aborted or (should_abort is not None and bool(still) and should_abort())
        return [self._generation(t, f) for t, f in zip(tokens, finish, strict=True)]

    @staticmethod
    def _generation(tokens: list[int], finish: str) -> Generation:
        return Generation(list(tokens), [-0.5] * len(tokens), finish, str(len(tokens)))  # type: ignore[arg-type]

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return str(len(tokens))

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int) -> None:
        self.loaded.append(dict(named_tensors))
        self.version = version

    def rng_state(self) -> dict[str, object]:
        return {}

    def set_rng_state(self, state: dict[str, object]) -> None:
        pass

    def close(self) -> None:
        pass
