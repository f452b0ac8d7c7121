"""The hf engine: behaviour log-probs equal the learner's, stops, budgets, continuation, seeds, weight updates."""

from __future__ import annotations

import sys

import pytest
import torch

from reasonrl.engines import hf
from reasonrl.engines.base import GenerationRequest, SamplingSettings
from reasonrl.engines.hf import HFEngine, token_budgets
from reasonrl.training.batch import Batch
from reasonrl.training.forward import score_responses

SAMPLE = SamplingSettings(max_new_tokens=12, temperature=1.0)


def requests(prompt_ids: list[list[int]], copies: int = 1) -> list[GenerationRequest]:
    return [GenerationRequest(prompt_ids=ids) for ids in prompt_ids for _ in range(copies)]


def test_behaviour_logprobs_equal_the_learners(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer, seed=0)
    generations = engine.generate(requests(prompt_ids, 4), SAMPLE)
    batch = Batch.from_ids([r.prompt_ids for r in requests(prompt_ids, 4)], [g.response_ids for g in generations])
    learner_logprobs, _ = score_responses(model, batch, tokenizer.pad_token_id, token_budget=10_000)
    engine_logprobs = batch.padded([g.logprobs for g in generations])
    # Same weights, same float32 math; only the batch shape (left vs right padding, KV cache) differs.
    torch.testing.assert_close(engine_logprobs, learner_logprobs, atol=1e-5, rtol=0)


def test_score_gives_the_learners_logprobs_and_whole_distributions(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer, seed=0)
    generations = engine.generate(requests(prompt_ids, 3), SAMPLE)
    pairs = zip(requests(prompt_ids, 3), generations, strict=True)
    drafts = [GenerationRequest(r.prompt_ids, g.response_ids) for r, g in pairs]
    scores = engine.score(drafts, distributions=True)
    batch = Batch.from_ids([d.prompt_ids for d in drafts], [d.response_prefix_ids for d in drafts])
    learner_logprobs, _ = score_responses(model, batch, tokenizer.pad_token_id, token_budget=10_000)
    torch.testing.assert_close(batch.padded([s.logprobs for s in scores]), learner_logprobs, atol=1e-5, rtol=0)
    for draft, score in zip(drafts, scores, strict=True):
        assert score.distributions is not None
        assert score.distributions.shape == (len(draft.response_prefix_ids), model.config.vocab_size)
        picked = score.distributions.gather(-1, torch.tensor(draft.response_prefix_ids)[:, None])[:, 0].log()
        torch.testing.assert_close(picked, torch.tensor(score.logprobs), atol=1e-5, rtol=0)
    assert engine.score(drafts[:1])[0].distributions is None  # only when asked for


def test_a_residual_first_token_is_drawn_from_the_positive_part_of_p_minus_q(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer, seed=0)
    ids = prompt_ids[0]
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
    target = 7
    q = p.clone()
    q[target] = 0.0
    q /= q.sum()  # q > p everywhere but at `target`: the residual max(0, p - q) is all on `target`
    one = SamplingSettings(max_new_tokens=1)
    away = engine.generate([GenerationRequest(ids, residual_of=q) for _ in range(100)], one)
    assert all(g.response_ids == [target] for g in away)
    # Its log-prob is still the token's under p (the engine's one definition), not under the residual.
    assert away[0].logprobs[0] == pytest.approx(float(p[target].log()), abs=1e-5)
    plain = engine.generate([GenerationRequest(ids) for _ in range(100)], one)
    assert len({tuple(g.response_ids) for g in plain}) > 10  # without a residual: p's spread


def test_logprobs_are_raw_temperature_one_even_when_sampling_hotter(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer, seed=1)
    hot = engine.generate(requests(prompt_ids), SamplingSettings(max_new_tokens=6, temperature=2.0, top_k=20))
    batch = Batch.from_ids(prompt_ids, [g.response_ids for g in hot])
    learner_logprobs, _ = score_responses(model, batch, tokenizer.pad_token_id, token_budget=10_000)
    torch.testing.assert_close(batch.padded([g.logprobs for g in hot]), learner_logprobs, atol=1e-5, rtol=0)


def test_same_seed_same_samples_and_rng_state_round_trip(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    first = HFEngine(model, tokenizer, seed=7)
    second = HFEngine(model, tokenizer, seed=7)
    assert [g.response_ids for g in first.generate(requests(prompt_ids), SAMPLE)] == [
        g.response_ids for g in second.generate(requests(prompt_ids), SAMPLE)
    ]
    state = first.rng_state()
    expected = [g.response_ids for g in first.generate(requests(prompt_ids), SAMPLE)]
    first.set_rng_state(state)
    assert [g.response_ids for g in first.generate(requests(prompt_ids), SAMPLE)] == expected


def test_greedy_budget_eos_and_continuation(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer)
    greedy = SamplingSettings(max_new_tokens=10, temperature=0.0)
    full = engine.generate(requests(prompt_ids), greedy)
    for ids, generation in zip(prompt_ids, full, strict=True):
        reference = model.generate(
            torch.tensor([ids]),
            max_new_tokens=10,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=0,
        )[0, len(ids) :].tolist()
        assert generation.response_ids == reference
        assert generation.finish_reason == (
            "stop" if generation.response_ids[-1] == tokenizer.eos_token_id else "length"
        )
    # Continuing from the first 4 tokens with the remaining budget gives the same greedy tail.
    partial = [
        GenerationRequest(
            prompt_ids=ids, response_prefix_ids=g.response_ids[:4], max_new_tokens=len(g.response_ids) - 4
        )
        for ids, g in zip(prompt_ids, full, strict=True)
        if len(g.response_ids) > 4
    ]
    tails = engine.generate(partial, greedy)
    expected = [g.response_ids[4:] for g in full if len(g.response_ids) > 4]
    assert [t.response_ids for t in tails] == expected
    # Per-request budgets are honoured.
    short = engine.generate([GenerationRequest(prompt_ids=prompt_ids[0], max_new_tokens=2)], greedy)
    assert len(short[0].response_ids) <= 2


def test_stop_strings_end_the_response_and_are_cut_from_the_text(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    engine = HFEngine(model, tokenizer, seed=3)
    free = engine.generate(requests(prompt_ids), SamplingSettings(max_new_tokens=12, temperature=0.0))
    text = free[0].text
    stop = text[3:5]  # a stop string the greedy response is known to contain
    stopped = engine.generate(
        requests(prompt_ids[:1]), SamplingSettings(max_new_tokens=12, temperature=0.0, stop=(stop,))
    )[0]
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text and text.startswith(stopped.text)
    assert len(stopped.response_ids) < len(free[0].response_ids) or free[0].finish_reason == "stop"


def test_stop_tokens_end_the_response_and_stay_in_it(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    """An episode's turn ends on `</tool_call>`, a special token no stop string can match: kept, like the EOS."""
    engine = HFEngine(model, tokenizer, seed=3)
    requests = [GenerationRequest(ids) for ids in prompt_ids for _ in range(4)]
    first = engine.generate(requests, SamplingSettings(max_new_tokens=12))
    stops = tuple(sorted(set(first[0].response_ids[:3])))
    stopped = engine.generate(requests, SamplingSettings(max_new_tokens=12, stop_token_ids=stops))
    hits = 0
    for generation in stopped:
        ids = generation.response_ids
        assert not set(stops) & set(ids[:-1])
        if ids[-1] in stops:
            hits += 1
            assert generation.finish_reason == "stop" and len(generation.logprobs) == len(ids)
    assert hits > 0


def test_weight_updates_change_the_outputs(model, tokenizer, prompt_ids, tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM

    separate = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    engine = HFEngine(separate, tokenizer, shares_learner_module=False)
    greedy = SamplingSettings(max_new_tokens=8, temperature=0.0)
    before = engine.generate(requests(prompt_ids), greedy)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    engine.update_weights(model.named_parameters(), version=1)
    after = engine.generate(requests(prompt_ids), greedy)
    assert engine.version == 1
    assert [g.response_ids for g in before] != [g.response_ids for g in after]
    batch = Batch.from_ids(prompt_ids, [g.response_ids for g in after])
    learner_logprobs, _ = score_responses(model, batch, tokenizer.pad_token_id, token_budget=10_000)
    # The 0.5-sigma noise makes logits ~10x larger, and float32 rounding differences grow with them.
    torch.testing.assert_close(batch.padded([g.logprobs for g in after]), learner_logprobs, atol=1e-4, rtol=0)


def test_on_finish_hears_each_response_as_it_ends_and_can_abort_the_rest(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    budgets = [2, 5, 9, 12, 12, 12]  # greedy, so finishing order follows the budgets (or an earlier EOS)
    greedy = SamplingSettings(max_new_tokens=12, temperature=0.0)
    batch = [GenerationRequest(prompt_ids=ids, max_new_tokens=b) for ids, b in zip(prompt_ids, budgets, strict=True)]
    full = HFEngine(model, tokenizer).generate(batch, greedy)
    heard: list[int] = []

    def stop_after_two(index: int, generation) -> bool:  # type: ignore[no-untyped-def]
        assert generation.response_ids == full[index].response_ids and generation.finish_reason != "abort"
        heard.append(index)
        return len(heard) >= 2

    cut = HFEngine(model, tokenizer, max_batch_size=4).generate(batch, greedy, on_finish=stop_after_two)
    assert len(heard) >= 2 and all(cut[i].response_ids == full[i].response_ids for i in heard)
    aborted = [i for i, g in enumerate(cut) if g.finish_reason == "abort"]
    assert aborted and set(aborted).isdisjoint(heard)
    for i in aborted:  # an aborted response holds the tokens it had: a prefix of the uninterrupted one
        assert full[i].response_ids[: len(cut[i].response_ids)] == cut[i].response_ids
        assert len(cut[i].response_ids) < len(full[i].response_ids)
    assert cut[4].response_ids == cut[5].response_ids == []  # the second batch of 4 never started
    # Continuing each aborted response with its prefix and the rest of its budget finishes it exactly.
    rest = [
        GenerationRequest(prompt_ids[i], cut[i].response_ids, max_new_tokens=budgets[i] - len(cut[i].response_ids))
        for i in aborted
    ]
    for i, tail in zip(aborted, HFEngine(model, tokenizer).generate(rest, greedy), strict=True):
        assert cut[i].response_ids + tail.response_ids == full[i].response_ids


def test_should_abort_is_checked_after_every_decode_step(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    greedy = SamplingSettings(max_new_tokens=12, temperature=0.0)
    full = HFEngine(model, tokenizer).generate(requests(prompt_ids), greedy)
    steps = iter(range(100))
    cut = HFEngine(model, tokenizer).generate(requests(prompt_ids), greedy, should_abort=lambda: next(steps) >= 2)
    for whole, part in zip(full, cut, strict=True):  # three decode steps ran: longer responses stop at 3 tokens
        if len(whole.response_ids) > 3:
            assert (part.response_ids, part.finish_reason) == (whole.response_ids[:3], "abort")
        else:
            assert part.response_ids == whole.response_ids and part.finish_reason != "abort"


def test_decode_loop_keeps_budgets_on_the_host_and_indexes_no_tensor_per_row(  # type: ignore[no-untyped-def]
    model, tokenizer, prompt_ids, monkeypatch
) -> None:
    """Budgets are a host list, so the per-row budget check of every decode step touches no tensor: indexing a
    tensor per row cost 0.57 ms a step at 256 rows on a CPU, and a device sync per row on a GPU."""
    sampling = SamplingSettings(max_new_tokens=5, temperature=1.0)
    budgets = [1, 2, 3, None, 5, 4]
    batch = [GenerationRequest(prompt_ids=ids, max_new_tokens=b) for ids, b in zip(prompt_ids, budgets, strict=True)]
    assert token_budgets(batch, sampling) == [1, 2, 3, 5, 5, 4]
    assert all(type(b) is int for b in token_budgets(batch, sampling))
    scalar_reads: list[object] = []
    original = torch.Tensor.__getitem__

    def spy(self: torch.Tensor, key: object) -> torch.Tensor:
        if isinstance(key, int) and sys._getframe(1).f_code.co_filename == hf.__file__:
            scalar_reads.append(key)  # a per-row read such as budgets[row] inside the engine's loop
        return original(self, key)

    monkeypatch.setattr(torch.Tensor, "__getitem__", spy)
    engine = HFEngine(model, tokenizer, seed=5)
    engine.eos_ids = frozenset()  # no early stop: every row runs exactly its budget
    generations = engine.generate(batch, sampling)
    assert scalar_reads == []
    assert [len(g.response_ids) for g in generations] == [1, 2, 3, 5, 5, 4]
    assert [g.finish_reason for g in generations] == ["length"] * 6


def test_a_stop_string_in_the_continued_prefix_does_not_end_the_new_tokens(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    # A particle's previous step ended at the delimiter: continuing it must not stop at once on that old one.
    prefix = tokenizer("12\n\n", add_special_tokens=False)["input_ids"]
    engine = HFEngine(model, tokenizer, seed=0)
    request = GenerationRequest(prompt_ids=prompt_ids[0], response_prefix_ids=prefix)
    out = engine.generate([request], SamplingSettings(max_new_tokens=6, temperature=0.0, stop=("\n\n",)))[0]
    new_text = tokenizer.decode(out.response_ids)
    if out.finish_reason == "stop":  # only a new (or spanning) delimiter may stop it
        assert "\n\n" in tokenizer.decode(prefix[-1:] + out.response_ids) or out.response_ids[-1] in engine.eos_ids
    assert len(out.response_ids) > 1 or "\n" in new_text or out.response_ids[-1] in engine.eos_ids


def test_stop_checker_counts_only_stops_that_end_in_the_new_tokens(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from reasonrl.engines.stops import StopChecker

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    checker = StopChecker(tokenizer, ["\n\n"])
    old, spanning = ids("ab\n\n"), ids("ab\n")
    assert not checker.hit(old + ids("c"), new=len(ids("c")))  # the stop is all in the prefix
    assert checker.hit(spanning + ids("\n"), new=len(ids("\n")))  # it ends in the new token
    assert checker.hit(old + ids("c\n\n"), new=len(ids("c\n\n")))  # a new one
    assert checker.hit(old + ids("c"))  # without `new`, anywhere counts


def test_seeded_requests_do_not_depend_on_their_batch(model, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    """With a seed per request, a response is the same whichever requests share its call (a replica's shard,
    a crashed engine's requests sent again) and whatever the engine's own generator did before."""
    seeded = [GenerationRequest(ids, seed=100 + i) for i, ids in enumerate(prompt_ids)]
    together = HFEngine(model, tokenizer, seed=0).generate(seeded, SAMPLE)
    alone = HFEngine(model, tokenizer, seed=7)
    apart = [alone.generate([r], SAMPLE)[0] for r in reversed(seeded)][::-1]
    halves = alone.generate(seeded[3:], SAMPLE)
    assert [g.response_ids for g in apart] == [g.response_ids for g in together]
    assert [g.response_ids for g in halves] == [g.response_ids for g in together[3:]]
    assert len({tuple(g.response_ids) for g in together}) > 1
    # The log-probs agree to float32 rounding only: a batch's padding width changes the summation order.
    for one, other in zip(apart, together, strict=True):
        torch.testing.assert_close(torch.tensor(one.logprobs), torch.tensor(other.logprobs), atol=1e-5, rtol=0)
    # The same call again (a crashed replica's shard resent whole) is the same bit for bit.
    assert [g.logprobs for g in alone.generate(seeded, SAMPLE)] == [g.logprobs for g in together]
    with pytest.raises(ValueError, match="all or none"):
        alone.generate([seeded[0], GenerationRequest(prompt_ids[1])], SAMPLE)
