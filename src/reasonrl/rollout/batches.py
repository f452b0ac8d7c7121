"""The sync pipeline's batches: the async producer's `RolloutScheduler`, driven in line at staleness 0.

One sampling path for both pipelines: dynamic sampling (DAPO, filtered per group), selective rollouts (GRESO)
and their refill rules are the scheduler's, whichever pipeline runs. Here nothing runs ahead: batch k is
produced when the learner is at version k, on the run's engine (already holding version k's weights), so no
response is ever continued under newer weights and partial rollouts have nothing to do (the config refuses
them under `pipeline: sync`).

Without dynamic sampling or GRESO a batch is exactly the old synchronous one: the next `batch_size /
group_size` prompts of the sampler, one generate call over all their responses, one reward call over all
of them, in draw order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import Engine, SamplingSettings, StreamingEngine
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import ProducedBatch, RolloutScheduler, SchedulerSettings, Scores
from reasonrl.rollout.speculative import SpeculativeRollouts
from reasonrl.rollout.tree import TreeRollouts


class SyncRollouts:
    """Batches for a learner that waits for them: `next_batch(version)` is the batch trained at `version`.

    The sampler is the scheduler's prompt stream; a prompt filtered out or skipped is simply spent (there is
    no outstanding list to keep: a checkpoint is taken between steps, when only groups the scheduler keeps
    for a later batch are in its pool, and `state_dict` holds those)."""

    def __init__(
        self,
        engine: Engine,
        encode: PromptEncoder,
        sampling: SamplingSettings,
        sampler: PromptSampler,
        settings: SchedulerSettings,
        *,
        score: Callable[[list[Sample]], Scores],
        selective: SelectiveRollouts | None = None,
        speculative: SpeculativeRollouts | None = None,
        tree: TreeRollouts | None = None,
        episodes: EpisodeDriver | None = None,
        engine_turn: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        """`score(samples)` starts scoring (the scheduler waits for it at once here); `engine_turn()` is held
        around each generate call (the pipeline times generation with it). Any `Engine` will do: nothing cuts a
        synchronous call short, so the scheduler makes the plain `generate(requests, sampling)` call and keeps
        the text it returns."""
        if settings.max_staleness != 0 or settings.partial_rollouts:
            raise ValueError("synchronous rollouts are generated at staleness 0, without partial rollouts")
        self.scheduler = RolloutScheduler(
            cast(StreamingEngine, engine),  # only its plain Engine calls are made (no partial rollouts, no aborts)
            encode,
            sampling,
            settings,
            score=score,
            draw=sampler.next_batch,
            discard=_spent,
            lock=threading.Condition(),
            selective=selective,
            speculative=speculative,
            tree=tree,
            episodes=episodes,
            engine_turn=engine_turn,
        )

    def next_batch(self, version: int) -> ProducedBatch:
        """The batch trained at `version` (the engine's current weights)."""
        return self.scheduler.produce(version)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: groups waiting in the pool, the keep rate and the GRESO history."""
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any], prompts_by_id: dict[str, Prompt]) -> None:
        self.scheduler.load_state_dict(state, prompts_by_id)


def _spent(prompt: Prompt) -> None:
    """A prompt filtered out or skipped: the sampler already moved past it, nothing to retire."""
