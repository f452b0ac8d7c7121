"""A slow scripted engine for `EngineProcess` tests: every decode step takes `step_seconds`, every request
runs `steps` steps, and `should_abort` is polled after each step as the real engines do. Importable by
name from a spawned child (the test directory is on its `sys.path`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings


class SlowEngine:
    def __init__(self, steps: int, step_seconds: float) -> None:
        self.steps = steps
        self.step_seconds = step_seconds

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """A request finishes after as many steps as its first prompt id (capped at `steps`); the rest abort
        when asked."""
        done: list[Generation | None] = [None] * len(requests)
        for step in range(self.steps):
            time.sleep(self.step_seconds)
            aborted = False
            for i in range(len(requests)):
                if done[i] is None and (requests[i].prompt_ids[0] == step + 1 or step + 1 == self.steps):
                    done[i] = Generation([1] * (step + 1), [-0.1] * (step + 1), "stop", "x")
                    if on_finish is not None:
                        aborted = bool(on_finish(i, done[i])) or aborted
            if all(d is not None for d in done):
                break
            if aborted or (should_abort is not None and should_abort()):
                break
        return [d if d is not None else Generation([1], [-0.1], "abort", "x") for d in done]

    def rng_state(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        pass
