"""Speculative rollouts through the scheduler on the tiny model: drafts are reused token for token up to the cut,
a policy that has not changed keeps them whole, exact mode draws from the current policy (chi-squared), and the
cache survives a checkpoint and its memory bound."""

from __future__ import annotations

import copy
import json
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from tests.stats import chi2_pvalue
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, PromptSampler, load_prompts
from reasonrl.engines.base import GenerationRequest, SamplingSettings
from reasonrl.engines.hf import HFEngine
from reasonrl.rewards.pool import computed
from reasonrl.rollout.batches import SyncRollouts
from reasonrl.rollout.collect import PromptEncoder
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import ProducedBatch, Rollout, SchedulerSettings
from reasonrl.rollout.speculative import Draft, DraftCache, SpeculativeRollouts

SAMPLING = SamplingSettings(max_new_tokens=8, temperature=1.0)


def score(samples: list[Sample]) -> Future[None]:
    def fill(batch: list[Sample]) -> None:
        for sample in batch:
            sample.reward = float(len(sample.response_text) % 2)

    return computed(fill, samples)


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    """A learner update stand-in: nudge every weight (in place, so an engine sharing the module sees it)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


def rollouts_on(
    model: torch.nn.Module, tokenizer: object, prompts: list[Prompt], *, mode: str = "lenient", seed: int = 0
) -> tuple[SyncRollouts, HFEngine, PromptSampler]:
    engine = HFEngine(model, tokenizer, seed=3, shares_learner_module=True)  # type: ignore[arg-type]
    sampler = PromptSampler(prompts, seed=1)
    speculative = SpeculativeRollouts(
        exact=mode == "exact", lenience=1.6487, max_bytes=1 << 24, max_new_tokens=SAMPLING.max_new_tokens, seed=seed
    )
    rollouts = SyncRollouts(
        engine,
        PromptEncoder(tokenizer, PromptFormat(template="plain")),
        SAMPLING,
        sampler,
        SchedulerSettings(prompts_per_batch=len(prompts), group_size=4, max_staleness=0),
        score=score,
        speculative=speculative,
    )
    return rollouts, engine, sampler


def by_key(batch: ProducedBatch) -> dict[tuple[str, int], Sample]:
    """The batch's samples by (prompt id, sample index): the draft cache's key."""
    seen: dict[str, int] = {}
    keyed = {}
    for sample in batch.samples:
        index = seen.get(sample.prompt.id, 0)
        seen[sample.prompt.id] = index + 1
        keyed[(sample.prompt.id, index)] = sample
    return keyed


@pytest.fixture
def tiny(tiny_model_dir: Path) -> tuple[torch.nn.Module, object]:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize("mode", ["lenient", "exact"])
def test_an_unchanged_policy_keeps_every_draft_whole_and_generates_nothing(tiny, mode: str) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    rollouts, _, _ = rollouts_on(model, tokenizer, load_prompts("sum?size=3"), mode=mode)
    first = rollouts.next_batch(0)
    assert first.metrics["speculative/drafts"] == 0.0
    second = rollouts.next_batch(1)  # a new epoch of the same three prompts, same weights: p / q = 1 everywhere
    assert second.metrics["speculative/drafts"] == 12.0
    assert second.metrics["speculative/fully_reused_share"] == 1.0
    assert second.metrics["rollout/generated_tokens"] == 0.0
    assert second.metrics["rollout/generate_calls"] == 0.0
    assert second.metrics["speculative/reused_token_share"] == 1.0
    old, new = by_key(first), by_key(second)
    assert old.keys() == new.keys()
    for key, sample in new.items():
        assert sample.response_ids == old[key].response_ids
        assert sample.finish_reason == old[key].finish_reason
        assert sample.response_text == old[key].response_text


def test_after_an_update_each_response_keeps_its_draft_up_to_the_cut_with_the_drafts_logprobs(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    rollouts, engine, _ = rollouts_on(model, tokenizer, load_prompts("sum?size=3"))
    first = by_key(rollouts.next_batch(0))
    perturb(model, seed=1)
    engine.version = 1
    batch = rollouts.next_batch(1)
    cuts = []
    for key, sample in by_key(batch).items():
        draft = first[key]
        cut = next(
            (i for i, (a, b) in enumerate(zip(sample.response_ids, draft.response_ids, strict=False)) if a != b),
            min(len(sample.response_ids), len(draft.response_ids)),
        )
        versions = sample.policy_version
        # Lenient mode: the kept tokens are the drafting policy's samples, with its log-probs and version 0.
        kept = versions.count(0)
        assert kept <= cut
        assert sample.response_ids[:kept] == draft.response_ids[:kept]
        assert sample.behaviour_logprobs[:kept] == draft.behaviour_logprobs[:kept]
        assert versions == [0] * kept + [1] * (len(versions) - kept)
        assert sample.start_version == 1
        cuts.append(kept)
    metrics = batch.metrics
    assert metrics["speculative/drafts"] == 12.0
    assert metrics["speculative/reused_tokens"] == sum(cuts)
    assert metrics["speculative/mean_cut"] == pytest.approx(sum(cuts) / 12)
    generated = sum(len(s.response_ids) for s in batch.samples) - sum(cuts)
    assert metrics["rollout/generated_tokens"] == generated
    assert 0 < sum(cuts) < sum(len(s.response_ids) for s in first.values())  # some kept, some regenerated


@pytest.mark.parametrize("mode", ["lenient", "exact"])
def test_the_draft_cache_and_uniforms_survive_a_checkpoint_bit_for_bit(tiny, mode: str) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    prompts = load_prompts("sum?size=3")
    rollouts, engine, sampler = rollouts_on(model, tokenizer, prompts, mode=mode)
    rollouts.next_batch(0)
    perturb(model, seed=1)
    engine.version = 1
    saved = json.loads(json.dumps({"rollouts": rollouts.state_dict(), "sampler": sampler.state_dict()}))
    rng = engine.rng_state()
    straight = rollouts.next_batch(1)
    assert straight.metrics["speculative/drafts"] == 12.0

    # A fresh process: the uniforms' generator (seeded 99 here) and the cache come back from the saved state.
    resumed, resumed_engine, resumed_sampler = rollouts_on(model, tokenizer, prompts, mode=mode, seed=99)
    resumed_engine.version = 1
    resumed_engine.set_rng_state(rng)
    resumed_sampler.load_state_dict(saved["sampler"])
    resumed.load_state_dict(saved["rollouts"], {p.id: p for p in prompts})
    again = resumed.next_batch(1)
    assert [record(s) for s in again.samples] == [record(s) for s in straight.samples]
    assert again.metrics["speculative/reused_tokens"] == straight.metrics["speculative/reused_tokens"]


def record(sample: Sample) -> tuple:  # type: ignore[type-arg]
    return (sample.prompt.id, sample.response_ids, sample.behaviour_logprobs, sample.policy_version, sample.reward)


def test_the_cache_drops_least_recently_used_drafts_beyond_its_bound() -> None:
    def draft(tokens: int) -> Draft:
        return Draft(
            torch.arange(tokens, dtype=torch.int32), torch.zeros(tokens), torch.zeros(tokens, dtype=torch.int32), "stop"
        )

    cache = DraftCache(max_bytes=12 * 10)  # 12 bytes a token: room for 10 tokens
    cache.put(("a", 0), draft(4))
    cache.put(("b", 0), draft(4))
    assert cache.get(("a", 0)) is not None  # a is now the most recently used
    cache.put(("c", 0), draft(4))  # 12 tokens > 10: b goes
    assert cache.get(("b", 0)) is None and cache.get(("a", 0)) is not None and cache.get(("c", 0)) is not None
    assert cache.nbytes == 12 * 8
    cache.put(("d", 0), draft(11))  # larger than the whole bound: not kept, nothing evicted for it
    assert cache.get(("d", 0)) is None and len(cache) == 2
    restored = DraftCache(max_bytes=12 * 10)
    restored.load_state_dict(json.loads(json.dumps(cache.state_dict())))
    assert [k for k, _ in restored._drafts.items()] == [k for k, _ in cache._drafts.items()]
    assert torch.equal(restored.get(("a", 0)).response_ids, torch.arange(4, dtype=torch.int32))  # type: ignore[union-attr]


def _speculate(
    old: HFEngine, new: HFEngine, prompt_ids: list[int], n: int, *, exact: bool, tokens: int = 2
) -> list[list[int]]:
    """n responses of `tokens` tokens drafted by `old` and speculated under `new`."""
    speculative = SpeculativeRollouts(exact=exact, lenience=1.6487, max_bytes=1 << 30, max_new_tokens=tokens, seed=5)
    sampling = SamplingSettings(max_new_tokens=tokens, temperature=1.0)
    drafts = old.generate([GenerationRequest(prompt_ids) for _ in range(n)], sampling)
    members = [
        Rollout(prompt_ids, g.response_ids, g.logprobs, [0] * len(g.response_ids), 0, g.finish_reason) for g in drafts
    ]
    for index, member in enumerate(members):
        speculative.remember(str(index), [member])
    speculative.flush(old)
    fresh = [Rollout(prompt_ids) for _ in range(n)]
    speculative.begin([(str(i), 0, r) for i, r in enumerate(fresh)], new)
    todo = [r for r in fresh if r.finish_reason is None]
    requests = [
        GenerationRequest(
            r.prompt_ids, r.response_ids, max_new_tokens=tokens - len(r.response_ids), residual_of=r.residual
        )
        for r in todo
    ]
    for rollout, generation in zip(todo, new.generate(requests, sampling), strict=True):
        rollout.extend(generation, new.version)
    return [r.response_ids for r in fresh]


def _first_token_pvalue(responses: list[list[int]], model: torch.nn.Module, prompt_ids: list[int]) -> float:
    """Chi-squared p-value of the responses' first tokens against `model`'s next-token distribution (tokens
    expected fewer than 5 times pooled into one bin)."""
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor([prompt_ids])).logits[0, -1].double(), dim=-1)
    counts = torch.bincount(torch.tensor([r[0] for r in responses]), minlength=len(p)).double()
    expected = p * len(responses)
    big = expected >= 5
    return chi2_pvalue(
        torch.cat([counts[big], counts[~big].sum()[None]]), torch.cat([expected[big], expected[~big].sum()[None]])
    )


def test_exact_mode_samples_follow_the_current_policy_and_lenient_ones_do_not(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = tiny
    drafting = copy.deepcopy(model)
    perturb(model, seed=7, scale=0.25)  # the current policy: far enough from the drafting one to reject often
    old = HFEngine(drafting, tokenizer, seed=11)
    new = HFEngine(model, tokenizer, seed=12)
    new.version = 1
    prompt_ids = tokenizer("12+7=", add_special_tokens=False)["input_ids"]
    n = 6000
    exact = _speculate(old, new, prompt_ids, n, exact=True)
    assert _first_token_pvalue(exact, model, prompt_ids) > 1e-3
    lenient = _speculate(old, new, prompt_ids, n, exact=False)
    assert _first_token_pvalue(lenient, model, prompt_ids) < 1e-6
