"""Speculative rollouts (SPEC-RL, arXiv 2509.23232): a prompt seen before starts from its last responses.

Each finished response is cached under (prompt id, sample index) with the log-probs of the policy that sampled
it. When the prompt is drawn again, each new response begins as that draft: one teacher-forced pass of the
current engine (`Engine.score`) scores every drafted token, the acceptance rule (`algorithms/speculative.py`)
keeps the draft up to its first rejected token, and the engine continues from there with what is left of the
token budget; a draft accepted whole needs no generation at all.

- **lenient** (SPEC-RL): accept with u <= min(1, l p/q), l = e^0.5 by default; the kept tokens keep the draft's
  behaviour log-probs and versions, so the off-policy corrections (TIS, IcePop, decoupled) weigh them as
  samples of the older policy they are.
- **exact** (ours): l = 1 and the token at the cut is drawn from the residual norm(max(0, p - q)), so every
  response follows the current policy exactly; its tokens carry the current policy's log-probs and version.
  The residual needs q's whole distribution at the cut, so exact mode caches each drafted token's next-token
  distribution (one more scoring pass per response, 4 bytes x vocabulary per token): it suits small
  vocabularies; lenient mode caches 12 bytes per token.

Unlike SPEC-RL's code, drafts are keyed by prompt id, not decoded text, so any batch order works (a miss is
a fresh response); the uniforms come from a generator seeded by the run and checkpointed, not a fixed seed;
and the cache, bounded in bytes (least recently used first out), is saved with the scheduler's state.
"""

from __future__ import annotations

import base64
import math
import time
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from reasonrl.algorithms.speculative import first_rejections
from reasonrl.config.schema import RunConfig
from reasonrl.engines.base import Engine, FinishReason, GenerationRequest

if TYPE_CHECKING:
    from reasonrl.rollout.responses import Rollout

# SPEC-RL's lenience for GRPO (its Table 3 ablation: e^0.5 gave the best average score at a 2.29x speed-up).
DEFAULT_LENIENCE = math.exp(0.5)


@dataclass
class Draft:
    """A finished response kept to start the next one to the same prompt and sample index.

    `logprobs` are the log-probs of the policy that sampled each token (what the acceptance rule divides by);
    `distributions` (exact mode) that policy's whole next-token distribution at each token, [tokens, vocab]."""

    response_ids: torch.Tensor  # int32 [tokens]
    logprobs: torch.Tensor  # float32 [tokens]: engines report float32 log-probs, so nothing is rounded
    versions: torch.Tensor  # int32 [tokens]
    finish_reason: FinishReason
    distributions: torch.Tensor | None = None  # float32 [tokens, vocab]

    @classmethod
    def of(cls, rollout: Rollout, logprobs: list[float], distributions: torch.Tensor | None = None) -> Draft:
        """A finished response as a draft, judged later against `logprobs` (and `distributions`)."""
        return cls(
            torch.tensor(rollout.response_ids, dtype=torch.int32),
            torch.tensor(logprobs, dtype=torch.float32),
            torch.tensor(rollout.versions, dtype=torch.int32),
            rollout.finish_reason or "length",
            distributions,
        )

    @property
    def nbytes(self) -> int:
        tensors = (self.response_ids, self.logprobs, self.versions, self.distributions)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "response_ids": encode_tensor(self.response_ids),
            "logprobs": encode_tensor(self.logprobs),
            "versions": encode_tensor(self.versions),
            "finish_reason": self.finish_reason,
            "distributions": None if self.distributions is None else encode_tensor(self.distributions),
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Draft:
        distributions = saved.get("distributions")
        return cls(
            decode_tensor(saved["response_ids"]),
            decode_tensor(saved["logprobs"]),
            decode_tensor(saved["versions"]),
            saved["finish_reason"],
            None if distributions is None else decode_tensor(distributions),
        )


def encode_tensor(tensor: torch.Tensor) -> dict[str, Any]:
    """A CPU tensor as JSON (the scheduler's state is JSON): base64 of its bytes, with dtype and shape; exact."""
    data = base64.b64encode(tensor.contiguous().numpy().tobytes()).decode()
    return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape), "b64": data}


def decode_tensor(saved: dict[str, Any]) -> torch.Tensor:
    dtype = getattr(torch, saved["dtype"])
    raw = bytearray(base64.b64decode(saved["b64"]))
    if not raw:  # frombuffer refuses an empty buffer
        return torch.zeros(saved["shape"], dtype=dtype)
    return torch.frombuffer(raw, dtype=dtype).reshape(saved["shape"]).clone()


class DraftCache:
    """The last finished response of each (prompt id, sample index), at most `max_bytes` in all: the least
    recently used drafts are dropped first, and a draft larger than the whole bound is not kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._drafts: OrderedDict[tuple[str, int], Draft] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._drafts)

    def get(self, key: tuple[str, int]) -> Draft | None:
        draft = self._drafts.get(key)
        if draft is not None:
            self._drafts.move_to_end(key)
        return draft

    def put(self, key: tuple[str, int], draft: Draft) -> None:
        old = self._drafts.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        if draft.nbytes > self.max_bytes:
            return
        self._drafts[key] = draft
        self.nbytes += draft.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._drafts.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def state_dict(self) -> list[dict[str, Any]]:
        """Least recently used first, so a restored cache evicts in the same order."""
        return [{"prompt": p, "index": i, **d.to_json()} for (p, i), d in self._drafts.items()]

    def load_state_dict(self, saved: list[dict[str, Any]]) -> None:
        self._drafts.clear()
        self.nbytes = 0
        for entry in saved:
            self.put((entry["prompt"], entry["index"]), Draft.from_json(entry))


@dataclass
class _Counters:
    begun: int = 0  # responses begun (verified from a draft or not)
    drafts: int = 0  # of them, begun from a draft
    fully_reused: int = 0
    reused_tokens: int = 0
    verify_seconds: float = 0.0
    cache_seconds: float = 0.0


class SpeculativeRollouts:
    """The draft cache and the acceptance step between the scheduler and its engine."""

    def __init__(self, *, exact: bool, lenience: float, max_bytes: int, max_new_tokens: int, seed: int) -> None:
        self.exact = exact
        self.lenience = 1.0 if exact else lenience
        self.max_new_tokens = max_new_tokens
        self.cache = DraftCache(max_bytes)
        self.generator = torch.Generator().manual_seed(seed)
        self._unscored: list[tuple[tuple[str, int], Rollout]] = []  # exact mode: finished, waiting for distributions
        self._counters = _Counters()

    @classmethod
    def of(cls, config: RunConfig) -> SpeculativeRollouts | None:
        spec = config.rollout.speculative
        if not spec.enabled:
            return None
        return cls(
            exact=spec.mode == "exact",
            lenience=spec.lenience if spec.lenience is not None else DEFAULT_LENIENCE,
            max_bytes=int(spec.cache_mb * 2**20),
            max_new_tokens=config.rollout.max_new_tokens,
            seed=config.train.seed,
        )

    # ---- starting responses from drafts -------------------------------------------------------------
    def begin(
        self, fresh: list[tuple[str, int, Rollout]], engine: Engine, lock: AbstractContextManager[Any] | None = None
    ) -> None:
        """Start each fresh response (no tokens yet) from its cached draft, if there is one: score the draft under
        the engine's current weights, keep it up to the first rejected token and, for a draft kept whole, finish
        the response there. Called inside the engine's turn, before the generate call; the responses change
        under `lock` (the scheduler's pool lock), the scoring pass runs outside it."""
        self._counters.begun += len(fresh)
        found = [(rollout, draft) for prompt_id, index, rollout in fresh if (draft := self._draft(prompt_id, index))]
        if not found:
            return
        started = time.perf_counter()
        requests = [GenerationRequest(r.prompt_ids, d.response_ids.tolist()) for r, d in found]
        scores = engine.score(requests)
        width = max(len(d.response_ids) for _, d in found)
        new = torch.zeros(len(found), width, dtype=torch.float64)
        old = torch.zeros_like(new)
        mask = torch.zeros(len(found), width, dtype=torch.bool)
        for row, ((_, draft), score) in enumerate(zip(found, scores, strict=True)):
            length = len(draft.response_ids)
            new[row, :length] = torch.tensor(score.logprobs, dtype=torch.float64)
            old[row, :length] = draft.logprobs.double()
            mask[row, :length] = True
        uniforms = torch.rand(len(found), width, generator=self.generator, dtype=torch.float64)
        cuts = first_rejections(new, old, mask, uniforms, lenience=self.lenience).tolist()
        version = engine.version
        with lock if lock is not None else nullcontext():
            for (rollout, draft), score, cut in zip(found, scores, cuts, strict=True):
                self._keep(rollout, draft, score.logprobs, cut, version)
        self._counters.drafts += len(found)
        self._counters.verify_seconds += time.perf_counter() - started

    def _draft(self, prompt_id: str, index: int) -> Draft | None:
        """The usable draft of a response, cut to the token budget (the budget may have shrunk since)."""
        draft = self.cache.get((prompt_id, index))
        if draft is None or (self.exact and draft.distributions is None) or len(draft.response_ids) == 0:
            return None
        if len(draft.response_ids) > self.max_new_tokens:
            keep = self.max_new_tokens
            cut = draft.distributions[:keep] if draft.distributions is not None else None
            draft = Draft(draft.response_ids[:keep], draft.logprobs[:keep], draft.versions[:keep], "length", cut)
        return draft

    def _keep(self, rollout: Rollout, draft: Draft, new_logprobs: list[float], cut: int, version: int) -> None:
        """Make `rollout` the draft's first `cut` tokens; finish it when the whole draft was kept."""
        rollout.response_ids = draft.response_ids[:cut].tolist()
        if self.exact:  # the kept tokens are the current policy's samples (speculative sampling's guarantee)
            rollout.logprobs = list(new_logprobs[:cut])
            rollout.versions = [version] * cut
        else:  # samples of the drafting policy: the corrections see its log-probs and versions
            rollout.logprobs = draft.logprobs[:cut].tolist()
            rollout.versions = draft.versions[:cut].tolist()
        rollout.start_version = version  # begun (verified) now: the staleness bound counts from here
        whole = cut == len(draft.response_ids)
        finished = whole and (draft.finish_reason == "stop" or cut >= self.max_new_tokens)
        rollout.finish_reason = draft.finish_reason if finished else None
        rollout.residual = None
        if self.exact and not whole:
            assert draft.distributions is not None
            rollout.residual = draft.distributions[cut]
        self._counters.reused_tokens += cut
        self._counters.fully_reused += int(finished)

    # ---- caching finished responses ----------------------------------------------------------------
    def remember(self, prompt_id: str, members: list[Rollout]) -> None:
        """Cache a finished group's responses as the next drafts of its prompt (exact mode: once `flush` has
        scored their distributions)."""
        for index, rollout in enumerate(members):
            key = (prompt_id, index)
            if self.exact:
                self._unscored.append((key, rollout))
                continue
            self.cache.put(key, Draft.of(rollout, rollout.logprobs))

    def flush(self, engine: Engine) -> None:
        """Exact mode: score the distributions of the responses remembered since the last flush and cache them.
        Inside the engine's turn, right after the call that sampled them: a response with a token sampled under
        other weights than the engine's now (continued across a weight update) has no one policy to be exact
        about and is not cached."""
        pending, self._unscored = self._unscored, []
        usable = [(k, r) for k, r in pending if r.response_ids and set(r.versions) == {engine.version}]
        if not usable:
            return
        started = time.perf_counter()
        scores = engine.score([GenerationRequest(r.prompt_ids, list(r.response_ids)) for _, r in usable], True)
        for (key, rollout), score in zip(usable, scores, strict=True):
            assert score.distributions is not None
            self.cache.put(key, Draft.of(rollout, score.logprobs, score.distributions.float()))
        self._counters.cache_seconds += time.perf_counter() - started

    # ---- metrics and checkpoints -------------------------------------------------------------------
    def metrics(self, generated_tokens: int) -> dict[str, float]:
        """This batch's reuse: `reused_token_share` is kept draft tokens over all tokens the batch's calls
        produced (kept + generated); `fully_reused_share` and `draft_share` are over responses begun."""
        c, self._counters = self._counters, _Counters()
        return {
            "speculative/drafts": float(c.drafts),
            "speculative/draft_share": c.drafts / max(1, c.begun),
            "speculative/fully_reused_share": c.fully_reused / max(1, c.begun),
            "speculative/reused_tokens": float(c.reused_tokens),
            "speculative/reused_token_share": c.reused_tokens / max(1, c.reused_tokens + generated_tokens),
            "speculative/mean_cut": c.reused_tokens / max(1, c.drafts),
            "speculative/verify_seconds": c.verify_seconds,
            "speculative/cache_seconds": c.cache_seconds,
            "speculative/cache_entries": float(len(self.cache)),
            "speculative/cache_mb": self.cache.nbytes / 2**20,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"cache": self.cache.state_dict(), "generator": encode_tensor(self.generator.get_state())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cache.load_state_dict(state["cache"])
        self.generator.set_state(decode_tensor(state["generator"]))
