"""What the next batch is generated from, and when it is ready: partial rollouts, group-wise dynamic sampling
and selective rollouts. The one sampling path of both pipelines: the async producer drives it on its
thread, the sync pipeline in line at staleness 0 (`rollout/batches.py`).

A batch is `prompts_per_batch` finished, scored groups. The scheduler keeps a pool of groups in flight and
drives the engine until enough are done:

- **As each group finishes** it is scored (on the producer's own reward pool, so scoring overlaps training)
  and, with `dynamic_sampling`, dropped at once if its rewards are all equal (DAPO); the pool is refilled
  from the prompt stream, so a batch never waits for a whole wasted generate call. In a streamed call a
  finished group is submitted to the reward pool's workers and decoding goes on (a slow reward, such as
  running code, costs only what decoding cannot hide: `rollout/reward_seconds` is the wait that is left);
  groups are settled in the order they finished, so the results are those of scoring in line. A reward
  that hangs is still cut at the pool's limit and scored 0.
- **Excluded groups**: a group with a sample no reward could judge (`RewardUnavailable`: the code sandbox
  could not start) is set aside, never trained on and counted (`reward/excluded_*`); its prompt is retired
  and the batch refilled. A run where nothing can be judged stops (`RewardsFailing`) instead of drawing
  prompts forever.
- **Partial rollouts** (APRIL, arXiv 2509.18521): `overprovision` x the batch's prompts are in flight;
  generation is aborted the moment the batch is full, and unfinished responses stay in the pool to be
  continued by the next batch under newer weights. Each token records the version that sampled it; the
  decoupled objective then weights every token by its own behaviour log-prob.
- **The staleness bound**: batch k is trained at version k, so before it is generated every response
  begun before version k - max_staleness is restarted from scratch (its tokens are dropped and counted):
  a continued response can never carry its age past the bound, and nothing younger is restarted. With
  partial rollouts and max_staleness >= 2 the producer keeps one version of `headroom` (it starts batch k
  from weights >= k - max_staleness + 1), so what batch k leaves unfinished can still be trained in
  batch k + 1; at the bound itself every leftover would be one version too old (41% of the generated
  tokens were dropped that way on the long-tail recipe). Once batch k is full, what batch k + 1 would
  have to restart and batch k has room for is finished instead (`_finish_expiring`), and ready groups are
  emitted oldest start first.
- **Selective rollouts** (GRESO, `SelectiveRollouts`): prompts whose reward history predicts a
  zero-variance group are skipped before any token is generated.
- **Speculative rollouts** (SPEC-RL, `SpeculativeRollouts`): a fresh response to a prompt seen before starts
  as its cached last response, verified by the engine in the same turn as the generate call and kept up to
  its first rejected token; a group whose drafts are all kept whole is scored without generating.
- **Multi-turn episodes** (`rollout.environment`, `EpisodeDriver`): a response is an episode; when a generate
  call ends a member's turn the environment reacts, and unless the episode is over its template delta is
  appended (mask 0) and the member goes on in the next call, so a group is complete when all its episodes
  are. Aborted turns are continued like any partial response, and checkpoints keep episodes in flight.
- **Tree rollouts** (TreePO, `TreeRollouts`): the fresh groups of a generate turn are grown as trees, one engine
  call per segment round, their leaves the groups' members (with their tree paths). A tree call is never cut
  short: a pause or a stop waits for it.

The pool is mutated under the producer's lock, which is also what `state_dict` takes, so a checkpoint
always sees whole tokens lists: in-flight responses are saved and continued after `--resume`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from reasonrl.algorithms.group_filter import informative_groups
from reasonrl.config.schema import RunConfig
from reasonrl.data import Prompt
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings, StreamingEngine, mix_seed
from reasonrl.rewards.failures import RewardsFailing
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.rollout.episodes import EpisodeDriver
from reasonrl.rollout.greso import SelectiveRollouts
from reasonrl.rollout.responses import Rollout
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.speculative import SpeculativeRollouts
from reasonrl.rollout.tree import TreeRollouts

logger = logging.getLogger(__name__)

# Dynamic-sampling refills draw missing / keep rate x this margin; GRESO uses 1.25 for its sampling batch.
REFILL_MARGIN = 1.25
# Floor of the keep-rate estimate: a run of fully filtered batches must not make a refill unbounded.
MIN_KEEP_RATE = 0.05
# Excluded groups in a row (none judged between) that stop the run: at least this, or twice the batch.
MIN_EXCLUDED_IN_A_ROW = 8


class Scores(Protocol):
    """Rewards on their way (`collect.PendingScores`, or any `Future`): `result()` waits for them and leaves
    them in the samples that were submitted; `done()` says whether it would return at once."""

    def done(self) -> bool: ...

    def result(self) -> object: ...


class GenerationStopped(Exception):
    """Raised out of `produce` when the producer is stopping: the batch is left unfinished in the pool."""


@dataclass(eq=False)  # groups are compared by identity: two draws of one prompt are different groups
class GroupRollout:
    """The responses to one prompt; `order` is its draw position (batches list groups in draw order) and
    `samples` its scored samples once every member finished and was scored."""

    prompt: Prompt
    order: int
    members: list[Rollout]
    samples: list[Sample] | None = None

    @property
    def complete(self) -> bool:
        return all(m.finish_reason is not None for m in self.members)


@dataclass(frozen=True)
class SchedulerSettings:
    """How the producer fills a batch (the `async_training` and dynamic-sampling config, resolved)."""

    prompts_per_batch: int
    group_size: int
    max_staleness: int
    partial_rollouts: bool = False
    overprovision: float = 1.0
    dynamic_sampling: bool = False
    max_extra_prompts: int = 0
    request_seed: int | None = None  # rollout.seed_per_request: the run seed every response's own seed mixes in

    @classmethod
    def of(cls, config: RunConfig) -> SchedulerSettings:
        """The settings of `config`'s pipeline: async reads `async_training`; sync is staleness 0 (partial
        rollouts, which need newer weights mid-response, are refused for it by the config)."""
        rollout, asynchronous, algorithm = config.rollout, config.async_training, config.algorithm
        return cls(
            prompts_per_batch=rollout.batch_size // rollout.group_size,
            group_size=rollout.group_size,
            max_staleness=asynchronous.max_staleness if config.pipeline == "async" else 0,
            partial_rollouts=asynchronous.partial_rollouts,
            overprovision=asynchronous.overprovision,
            dynamic_sampling=algorithm.dynamic_sampling,
            max_extra_prompts=algorithm.dynamic_sampling_max_extra_prompts,
            request_seed=config.train.seed if rollout.seed_per_request else None,
        )

    def selective(self, config: RunConfig) -> SelectiveRollouts | None:
        """GRESO's skip rule when `rollout.selective_rollouts` asks for it (seeded by the run)."""
        rollout = config.rollout
        if not rollout.selective_rollouts:
            return None
        return SelectiveRollouts(target_zero_variance=rollout.target_zero_variance, seed=config.train.seed)

    @property
    def headroom(self) -> int:
        """Versions the producer stays short of the staleness bound: one with partial rollouts (when
        max_staleness >= 2 leaves room for it), so that leftovers of a batch can be continued in the next."""
        return 1 if self.partial_rollouts and self.max_staleness >= 2 else 0

    @property
    def in_flight(self) -> int:
        """Groups kept in flight: the batch, times the over-provisioning factor with partial rollouts."""
        factor = self.overprovision if self.partial_rollouts else 1.0
        return max(self.prompts_per_batch, math.ceil(self.prompts_per_batch * factor))


@dataclass
class ProducedBatch:
    """One batch's scored samples (groups adjacent, in draw order) and what producing it cost. `scored`: every
    sample scored while producing it, groups adjacent: the batch's, and those dynamic sampling dropped or
    that wait in the pool for a later batch (the rollout statistics of everything generated)."""

    samples: list[Sample]
    metrics: dict[str, float]
    scored: list[Sample] = field(default_factory=list)


@dataclass
class _Counters:
    reward_seconds: float = 0.0  # waited for rewards: scoring that decoding did not hide
    excluded_groups: int = 0
    excluded_samples: int = 0
    generate_calls: int = 0
    generated_tokens: int = 0
    aborted: int = 0
    restarted: int = 0
    dropped_tokens: int = 0
    dropped_groups: int = 0
    extra_prompts: int = 0
    generated_groups: int = 0
    interrupted: int = 0
    scored: list[Sample] = field(default_factory=list)


class RolloutScheduler:
    """Produces batches for the producer thread. `draw(n)` hands out the next n prompts (requeued first) and
    `discard(prompt)` retires one that will never be trained on (filtered out or skipped); both belong to
    the producer, which tracks outstanding prompts under `lock`. `score(samples)` starts scoring and
    returns at once (`collect.submit_scores`); the rewards are in the samples once its `result()` returns."""

    def __init__(
        self,
        engine: StreamingEngine,
        encode: PromptEncoder,
        sampling: SamplingSettings,
        settings: SchedulerSettings,
        *,
        score: Callable[[list[Sample]], Scores],
        draw: Callable[[int], list[Prompt]],
        discard: Callable[[Prompt], None],
        lock: threading.Condition,
        selective: SelectiveRollouts | None = None,
        speculative: SpeculativeRollouts | None = None,
        tree: TreeRollouts | None = None,
        episodes: EpisodeDriver | None = None,
        engine_turn: Callable[[], AbstractContextManager[None]] = nullcontext,
        should_abort: Callable[[], bool] | None = None,
    ) -> None:
        """`engine_turn()`: held around each generate call (the producer's engine lock, waiting out pauses;
        raises `GenerationStopped` when stopping); `should_abort()`: polled by the engine after every decode
        step, True to cut the call short (the responses are continued by the next call)."""
        self.engine = engine
        self.encode = encode
        self.sampling = sampling
        self.settings = settings
        self.score = score
        self.draw = draw
        self.discard = discard
        self.lock = lock
        self.selective = selective
        self.speculative = speculative
        self.tree = tree
        self.episodes = episodes
        self.engine_turn = engine_turn
        self.should_abort = should_abort
        self.groups: list[GroupRollout] = []
        self._next_order = 0
        self._keep_rate = 1.0  # share of finished groups dynamic sampling kept, smoothed over batches
        self._tokens = {"generated": 0, "dropped": 0}  # over the run, for the dropped-token share
        self._excluded_in_a_row = 0  # groups set aside since the last one a reward could judge
        self._first_exclusion: str | None = None  # the reason of the first of them

    # ---- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every group in flight with its tokens so far (JSON-able), and the selective-rollout history."""
        with self.lock:
            return {
                "groups": [
                    {"prompt": g.prompt.id, "order": g.order, "members": [m.to_json() for m in g.members]}
                    for g in self.groups
                ],
                "next_order": self._next_order,
                "keep_rate": self._keep_rate,
                "tokens": dict(self._tokens),
                "selective": self.selective.state_dict() if self.selective is not None else None,
                "speculative": self.speculative.state_dict() if self.speculative is not None else None,
                "tree": self.tree.state_dict() if self.tree is not None else None,
            }

    def load_state_dict(self, state: dict[str, Any], prompts_by_id: dict[str, Prompt]) -> list[Prompt]:
        """Restore the groups in flight (scored again when produced); returns their prompts."""
        self.groups = []
        for saved in state.get("groups", []):
            prompt = prompts_by_id[saved["prompt"]]
            members = [self._restored_member(prompt, member) for member in saved["members"]]
            self.groups.append(GroupRollout(prompt, saved["order"], members))
        self._next_order = state.get("next_order", len(self.groups))
        self._keep_rate = state.get("keep_rate", 1.0)
        self._tokens = {"generated": 0, "dropped": 0} | state.get("tokens", {})
        if self.selective is not None and state.get("selective") is not None:
            self.selective.load_state_dict(state["selective"])
        if self.speculative is not None and state.get("speculative") is not None:
            self.speculative.load_state_dict(state["speculative"])
        if self.tree is not None and state.get("tree") is not None:
            self.tree.load_state_dict(state["tree"])
        return [g.prompt for g in self.groups]

    def _restored_member(self, prompt: Prompt, saved: dict[str, Any]) -> Rollout:
        if saved.get("episode") is not None and self.episodes is not None:
            ids, episode = self.episodes.restore(prompt, saved["episode"])
            return Rollout.from_json(ids, saved, episode)
        return Rollout.from_json(self.encode(prompt), saved)

    def _new_members(self, prompt: Prompt, order: int) -> list[Rollout]:
        """A group's fresh responses; with an environment, fresh episodes (seeded by run seed, draw order and
        member, so a resumed run restarts an episode exactly)."""
        if self.episodes is None:
            ids = self.encode(prompt)
            return [Rollout(prompt_ids=ids) for _ in range(self.settings.group_size)]
        members = []
        for index in range(self.settings.group_size):
            ids, episode = self.episodes.start(prompt, seed=order * self.settings.group_size + index)
            members.append(Rollout(prompt_ids=ids, episode=episode))
        return members

    def _end_turn(self, member: Rollout, version: int) -> None:
        """After a generate call extended `member`: a finished turn of an episode goes to its environment."""
        if self.episodes is not None and member.episode is not None and member.finish_reason is not None:
            self.episodes.end_turn(member, version)

    # ---- producing a batch --------------------------------------------------------------------------
    def produce(self, index: int) -> ProducedBatch:
        """The batch for learner step `index` (trained at version `index`): nothing in it began before
        version index - max_staleness."""
        settings, counters = self.settings, _Counters()
        with self.lock:
            self._restart_stale(index - settings.max_staleness, counters)
        fallback: list[GroupRollout] = []  # groups filtered out, trained on unfiltered if nothing else is left
        restored = [g for g in self.groups if g.complete and g.samples is None]  # from a checkpoint
        if restored:
            self._score_and_settle(restored, counters, fallback)
        first_round, resuming = True, False
        # A call cut short by a pause is always continued; without partial rollouts it is continued within
        # this batch even when enough groups are ready, so a checkpoint never changes what is trained.
        while len(self._ready()) < settings.prompts_per_batch or (resuming and not settings.partial_rollouts):
            if not resuming:  # a call cut short by a pause is continued as it was, not refilled
                self._top_up(counters, first_round)
            running = [g for g in self.groups if not g.complete]
            if not running:
                break  # out of extra prompts: train on what is ready
            interrupted = self._generate(running, counters, fallback)
            first_round = first_round and interrupted
            # Episodes with turns to go are continued before anything is refilled, like a call cut short.
            resuming = interrupted or any(_mid_episode(m) for g in running for m in g.members)
        if settings.partial_rollouts and settings.headroom:
            self._finish_expiring(index + 1 - settings.max_staleness, counters, fallback)
        return self._emit(index, counters, fallback)

    def _finish_expiring(self, next_oldest_allowed: int, counters: _Counters, fallback: list[GroupRollout]) -> None:
        """Finish now the unfinished groups the next batch would restart (begun before its bound) and this
        batch has room for, rather than throw their tokens away then: only those rows keep decoding, and
        they go into this batch ahead of younger ready groups, which wait for the next one within the bound.
        Expiring groups beyond the batch's slots are left to restart: finishing them would be wasted.
        Without headroom (max_staleness 1 at the bound) every unfinished group would be expiring, so the
        producer never calls this then."""
        while True:
            old = [g for g in self.groups if _begun_before(g, next_oldest_allowed)]
            slots = sorted(old, key=lambda g: (_started(g), g.order))[: self.settings.prompts_per_batch]
            expiring = [g for g in slots if not g.complete]
            if not expiring:
                return
            self._generate(expiring, counters, fallback, stop_when_full=False)

    def _ready(self) -> list[GroupRollout]:
        return [g for g in self.groups if g.samples is not None]

    def _restart_stale(self, oldest_allowed: int, counters: _Counters) -> None:
        for group in self.groups:
            stale = [m for m in group.members if 0 <= m.start_version < oldest_allowed]
            for member in stale:
                dropped = member.restart()
                if member.episode is not None and self.episodes is not None:
                    member.episode = self.episodes.restart(member.episode)
                counters.dropped_tokens += dropped
                self._tokens["dropped"] += dropped
            if stale:
                counters.restarted += len(stale)
                group.samples = None

    def _top_up(self, counters: _Counters, first_round: bool) -> None:
        """Draw prompts until `in_flight` groups are in the pool. A dynamic-sampling refill (any later round)
        draws for the groups still missing divided by the expected keep rate, plus a margin (GRESO's adaptive
        sampling batch), so a low keep rate costs a few large generate calls rather than many small ones;
        refills count against `max_extra_prompts`, raised by one for each excluded group."""
        settings = self.settings
        want = settings.in_flight - len(self.groups)
        if not first_round:
            missing = settings.prompts_per_batch - len(self._ready())
            running = sum(not g.complete for g in self.groups)
            expected = math.ceil(REFILL_MARGIN * missing / self._keep_rate) - running
            # Each excluded group is replaced on top of dynamic sampling's budget: it is no one's choice.
            budget = settings.max_extra_prompts + counters.excluded_groups - counters.extra_prompts
            want = min(max(want, expected), budget)
        drawn = 0
        while drawn < want:
            (prompt,) = self.draw(1)
            with self.lock:
                skip = self.selective is not None and self.selective.should_skip(prompt.id)
            if skip:
                self.discard(prompt)
                continue
            group = GroupRollout(prompt, self._next_order, self._new_members(prompt, self._next_order))
            with self.lock:
                self.groups.append(group)
                self._next_order += 1
            drawn += 1
        if not first_round:
            counters.extra_prompts += drawn

    def _generate(
        self,
        running: list[GroupRollout],
        counters: _Counters,
        fallback: list[GroupRollout],
        *,
        stop_when_full: bool = True,
    ) -> bool:
        """One generate call over every unfinished response of `running`; each group is settled the step it
        finishes, and with partial rollouts (and `stop_when_full`) the call ends once the batch is full.
        Returns whether `should_abort` cut the call short (a pause or a stop, not a full batch).

        With speculative rollouts, fresh responses start from their drafts first, in the same engine turn (so
        under the weights that continue them), and the responses that finished are cached after the call."""
        with self.engine_turn():
            if self.tree is not None:
                self._grow_trees(self.tree, running, counters, fallback)
                return False
            if self.speculative is None:
                return self._generate_now(running, counters, fallback, stop_when_full)
            running = self._begin_from_drafts(self.speculative, running, counters, fallback)
            interrupted = bool(running) and self._generate_now(running, counters, fallback, stop_when_full)
            self.speculative.flush(self.engine)
            return interrupted

    def _grow_trees(
        self, tree: TreeRollouts, running: list[GroupRollout], counters: _Counters, fallback: list[GroupRollout]
    ) -> None:
        """Grow every running group as a tree (all are fresh: a tree call is never cut short) and settle them."""
        version = self.engine.version
        before = tree.counters.rounds, tree.counters.generated_tokens
        leaves = tree.grow(
            [g.members[0].prompt_ids for g in running], self.settings.group_size, self.engine, self.sampling
        )
        with self.lock:
            for group, group_leaves in zip(running, leaves, strict=True):
                for member, leaf in zip(group.members, group_leaves, strict=True):
                    member.response_ids, member.logprobs = leaf.response_ids, leaf.logprobs
                    member.versions = [version] * len(leaf.response_ids)
                    member.start_version, member.finish_reason, member.path = version, leaf.finish_reason, leaf.path_id
        calls, generated = tree.counters.rounds - before[0], tree.counters.generated_tokens - before[1]
        counters.generate_calls += calls
        counters.generated_tokens += generated
        self._tokens["generated"] += generated
        self._score_and_settle(running, counters, fallback)

    def _begin_from_drafts(
        self,
        speculative: SpeculativeRollouts,
        running: list[GroupRollout],
        counters: _Counters,
        fallback: list[GroupRollout],
    ) -> list[GroupRollout]:
        """Start the fresh responses of `running` from their drafts; settle the groups that thereby finished
        and return those still to generate."""
        fresh = [
            (group.prompt.id, index, member)
            for group in running
            for index, member in enumerate(group.members)
            if member.start_version < 0 and not member.response_ids and member.finish_reason is None
        ]
        if fresh:
            speculative.begin(fresh, self.engine, self.lock)
        done = [group for group in running if group.complete]
        if done:
            self._score_and_settle(done, counters, fallback)
        return [group for group in running if not group.complete]

    def _generate_now(
        self, running: list[GroupRollout], counters: _Counters, fallback: list[GroupRollout], stop_when_full: bool
    ) -> bool:
        version = self.engine.version
        owners = [(g, m) for g in running for m in g.members if m.finish_reason is None]
        requests = self._requests(owners, version)
        # Streamed only when something can end the call early (a full batch with partial rollouts, a pause or a
        # stop); otherwise the call runs to its end and its groups are settled after it, in draw order, with one
        # reward call (the sync pipeline: engines keep their plain generate path and text, reward workers and
        # majority labels see the whole batch).
        if self.settings.partial_rollouts or self.should_abort is not None:
            return self._stream(owners, requests, counters, fallback, stop_when_full)
        # The plain `Engine` call: any engine can serve a batch that is never cut short.
        generations = self.engine.generate(requests, self.sampling)
        self._count_generated(generations, counters)
        with self.lock:
            for (_, member), generation in zip(owners, generations, strict=True):
                whole = not member.response_ids
                member.extend(generation, version)
                member.text = generation.text if whole else None
                self._end_turn(member, version)
        # Nothing aborts a call that cannot be cut short: every response finished.
        self._score_and_settle([g for g in running if g.complete], counters, fallback)
        return False

    def _score_and_settle(self, groups: list[GroupRollout], counters: _Counters, fallback: list[GroupRollout]) -> None:
        """Score finished groups and wait (one reward call, so workers and majority labels see them together)."""
        scored = self._samples(groups)
        self._wait(self.score([sample for samples in scored for sample in samples]), counters)
        self._settle(groups, scored, counters, fallback)

    def _stream(
        self,
        owners: list[tuple[GroupRollout, Rollout]],
        requests: list[GenerationRequest],
        counters: _Counters,
        fallback: list[GroupRollout],
        stop_when_full: bool,
    ) -> bool:
        """The streamed call: each group is submitted for scoring the step it finishes and settled once its
        rewards are in (looked at after every finished response, never waited for), in finishing order, while
        decoding goes on; the call ends by waiting for the rest, so every group is settled on return."""
        settings, version = self.settings, self.engine.version
        batch_full = False
        scoring: list[tuple[GroupRollout, list[Sample], Scores]] = []

        def on_finish(index: int, generation: Generation) -> bool:
            nonlocal batch_full
            group, member = owners[index]
            with self.lock:
                member.extend(generation, version)
                self._end_turn(member, version)
            if group.complete:
                samples = self._samples([group])[0]
                scoring.append((group, samples, self.score(samples)))
            self._settle_scored(scoring, counters, fallback, wait=False)
            # Groups still being scored count as ready: if a reward then drops some, `produce` generates again.
            ready = len(self._ready()) + len(scoring)
            batch_full = stop_when_full and settings.partial_rollouts and ready >= settings.prompts_per_batch
            return batch_full

        generations = self.engine.generate(requests, self.sampling, on_finish=on_finish, should_abort=self.should_abort)
        self._settle_scored(scoring, counters, fallback, wait=True)
        self._count_generated(generations, counters)
        cut = 0
        with self.lock:
            for (_, member), generation in zip(owners, generations, strict=True):
                if generation.finish_reason == "abort":
                    member.extend(generation, version)
                    cut += 1
        interrupted = cut > 0 and not batch_full
        if interrupted:
            counters.interrupted += 1
        else:
            counters.aborted += cut
        return interrupted

    def _settle_scored(
        self,
        scoring: list[tuple[GroupRollout, list[Sample], Scores]],
        counters: _Counters,
        fallback: list[GroupRollout],
        *,
        wait: bool,
    ) -> None:
        """Settle the groups at the head of `scoring` whose rewards are in (all of them, waiting, with `wait`)
        and remove them from it: in submission order, so the results are those of scoring each in line."""
        while scoring and (wait or scoring[0][2].done()):
            group, samples, pending = scoring.pop(0)
            self._wait(pending, counters)
            self._settle([group], [samples], counters, fallback)

    @staticmethod
    def _wait(pending: Scores, counters: _Counters) -> None:
        """Wait for rewards (a reward that raised re-raises here); the wait is what scoring cost the batch."""
        started = time.perf_counter()
        pending.result()
        counters.reward_seconds += time.perf_counter() - started

    def _requests(self, owners: list[tuple[GroupRollout, Rollout]], version: int) -> list[GenerationRequest]:
        requests = []
        for group, member in owners:
            if member.start_version < 0:
                member.start_version = version
            budget = self.sampling.max_new_tokens - len(member.response_ids)
            if member.episode is not None and self.episodes is not None:
                budget = self.episodes.budget(member.episode, len(member.response_ids))
            requests.append(
                GenerationRequest(
                    member.prompt_ids,
                    list(member.response_ids),
                    max_new_tokens=budget,
                    residual_of=member.residual,
                    seed=self._request_seed(group, member),
                )
            )
        return requests

    def _request_seed(self, group: GroupRollout, member: Rollout) -> int | None:
        """A response's own seed (`rollout.seed_per_request`): run seed, the group's draw order and the member's
        place in it, all saved in checkpoints, so a response regenerated anywhere (another replica, after a
        crash or a resume) draws the same tokens."""
        base = self.settings.request_seed
        if base is None:
            return None
        index = next(i for i, m in enumerate(group.members) if m is member)
        return mix_seed(base, group.order, index)

    def _count_generated(self, generations: list[Generation], counters: _Counters) -> None:
        generated = sum(len(g.response_ids) for g in generations)
        counters.generate_calls += 1
        counters.generated_tokens += generated
        self._tokens["generated"] += generated

    def _samples(self, groups: list[GroupRollout]) -> list[list[Sample]]:
        """The unscored samples of finished groups, one list per group."""
        return [[m.to_sample(group.prompt, self._text(m)) for m in group.members] for group in groups]

    def _text(self, member: Rollout) -> str:
        """The response's text: an episode's with its special tokens (tool calls, turn markers) kept."""
        if member.episode is not None and self.episodes is not None:
            return self.episodes.deltas.display_text(member.response_ids)
        return member.text if member.text is not None else self.engine.text(member.response_ids, self.sampling)

    def _settle(
        self, groups: list[GroupRollout], scored: list[list[Sample]], counters: _Counters, fallback: list[GroupRollout]
    ) -> None:
        """Take scored groups in: set aside those with a sample no reward could judge, and drop each at once if
        dynamic sampling finds its rewards all equal. An excluded group says nothing about the prompt or the
        keep rate: it never reaches GRESO's history or `generated_groups`."""
        for group, samples in zip(groups, scored, strict=True):
            if self.speculative is not None:
                self.speculative.remember(group.prompt.id, group.members)
            excluded = [s for s in samples if s.excluded]
            if excluded:
                self._exclude(group, excluded, counters)
                continue
            self._excluded_in_a_row, self._first_exclusion = 0, None
            counters.generated_groups += 1
            counters.scored += samples
            rewards = [s.reward for s in samples]
            informative = bool(informative_groups(torch.tensor(rewards, dtype=torch.float64), len(rewards)).all())
            with self.lock:
                if self.selective is not None:  # GRESO's history is about easy/hard: correctness, not shaped reward
                    self.selective.record(group.prompt.id, [float(s.correct) for s in samples])
                group.samples = samples
                if self.settings.dynamic_sampling and not informative:
                    self.groups.remove(group)
                    fallback.append(group)
                    counters.dropped_groups += 1

    def _exclude(self, group: GroupRollout, excluded: list[Sample], counters: _Counters) -> None:
        """Set aside a group with responses no reward could judge: a group missing members would bias its
        baseline, and scoring them 0 would punish the model for the sandbox. Stops the run when nothing has
        been judged for `max(MIN_EXCLUDED_IN_A_ROW, 2 x batch)` groups: the reward is broken, not unlucky."""
        with self.lock:
            self.groups.remove(group)
        self.discard(group.prompt)
        counters.excluded_groups += 1
        counters.excluded_samples += len(excluded)
        self._excluded_in_a_row += 1
        if self._first_exclusion is None:
            self._first_exclusion = str(excluded[0].reward_info.get("error"))
        limit = max(MIN_EXCLUDED_IN_A_ROW, 2 * self.settings.prompts_per_batch)
        if self._excluded_in_a_row >= limit:
            raise RewardsFailing(
                f"the reward could not judge any response of the last {self._excluded_in_a_row} groups, so the run "
                f"stopped; first reason: {self._first_exclusion}. For the code reward the sandbox fails to start: "
                "check sandbox.json in the run directory, run reasonrl on a machine where bubblewrap works (not "
                "inside Docker's default seccomp profile, see docs/code.md), or, knowing the risk, set the code "
                "verifier's allow_unsafe_code: true"
            )

    def _emit(self, index: int, counters: _Counters, fallback: list[GroupRollout]) -> ProducedBatch:
        """The oldest ready groups, renumbered; filtered-out groups are retired here, not when dropped, so
        they can still be the batch when nothing else is left (then the first filtered, in settling order)."""
        settings = self.settings
        with self.lock:
            # Oldest start first: a leftover that waits one more batch may cross the staleness bound.
            chosen = sorted(self._ready(), key=lambda g: (_started(g), g.order))[: settings.prompts_per_batch]
            chosen.sort(key=lambda g: g.order)
            for group in chosen:
                self.groups.remove(group)
            in_flight = len(self.groups)
        kept = len(chosen)
        if not chosen:
            chosen = fallback[: settings.prompts_per_batch]
        for group in fallback:
            if group not in chosen:
                self.discard(group.prompt)
        samples = []
        for position, group in enumerate(chosen):
            for sample in group.samples or []:
                sample.group_index = position
                samples.append(sample)
        metrics = {
            "rollout/generate_calls": float(counters.generate_calls),
            "rollout/generated_tokens": float(counters.generated_tokens),
            "rollout/reward_seconds": counters.reward_seconds,
            "reward/excluded_groups": float(counters.excluded_groups),
            "reward/excluded_samples": float(counters.excluded_samples),
            "rollout/interrupted_calls": float(counters.interrupted),
        }
        if settings.partial_rollouts:
            metrics |= {
                "partial/aborted_requests": float(counters.aborted),
                "partial/continued_samples": float(sum(len(set(s.policy_version)) > 1 for s in samples)),
                "partial/restarted_samples": float(counters.restarted),
                "partial/dropped_tokens": float(counters.dropped_tokens),
                # Over the run: generated tokens thrown away by restarts (the staleness bound's price).
                "partial/dropped_token_share": self._tokens["dropped"] / max(1, self._tokens["generated"]),
                "partial/in_flight_groups": float(in_flight),
            }
        if settings.dynamic_sampling:
            if kept < settings.prompts_per_batch:
                logger.warning(
                    "step %d: dynamic sampling kept %d of %d groups after %d extra prompts "
                    "(algorithm.dynamic_sampling_max_extra_prompts); %s",
                    index + 1,  # batch `index` is trained at version `index`, by learner step index + 1
                    kept,
                    settings.prompts_per_batch,
                    counters.extra_prompts,
                    "training on the groups it kept" if kept else "training on filtered groups unfiltered",
                )
            if counters.generated_groups:
                observed = 1 - counters.dropped_groups / counters.generated_groups
                self._keep_rate = max(MIN_KEEP_RATE, (self._keep_rate + observed) / 2)
            metrics |= {
                "dynamic_sampling/keep_rate": self._keep_rate,
                "dynamic_sampling/dropped_groups": float(counters.dropped_groups),
                "dynamic_sampling/extra_prompts": float(counters.extra_prompts),
                "dynamic_sampling/kept_groups": float(kept),
                "dynamic_sampling/rounds": float(counters.generate_calls),
                "dynamic_sampling/gave_up": float(kept < settings.prompts_per_batch),
            }
        if self.selective is not None:
            with self.lock:
                greso = self.selective.end_step()
            metrics |= greso
        if self.speculative is not None:
            metrics |= self.speculative.metrics(counters.generated_tokens)
        if self.tree is not None:
            metrics |= self.tree.metrics()
        return ProducedBatch(samples, metrics, counters.scored)


def _mid_episode(member: Rollout) -> bool:
    """An episode between turns: its environment answered and its next turn is to be generated."""
    return member.episode is not None and member.finish_reason is None and bool(member.response_ids)


def _started(group: GroupRollout) -> int:
    """The version the group's oldest started response began at (restored groups may mix versions)."""
    return min((m.start_version for m in group.members if m.start_version >= 0), default=-1)


def _begun_before(group: GroupRollout, version: int) -> bool:
    """Whether any response of the group began before `version` (and so cannot be trained at its bound)."""
    return any(0 <= m.start_version < version for m in group.members)
