"""An engine in a process of its own (`EngineProcess`): the same answers as in process, weights pushed
across the pipe, RNG state round trips, and a failing or closed engine says so."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.engines.hf import HFEngine, hf_engine_from_folder
from reasonrl.engines.remote import EngineProcess, EngineStartError

GREEDY = SamplingSettings(max_new_tokens=8, temperature=0.0)
SAMPLE = SamplingSettings(max_new_tokens=8, temperature=1.0)


def _requests(prompt_ids: list[list[int]]) -> list[GenerationRequest]:
    return [GenerationRequest(prompt_ids=ids) for ids in prompt_ids]


def test_an_engine_process_answers_like_the_engine_in_process(tiny_model_dir: Path, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    local = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer, seed=3)
    remote = EngineProcess(hf_engine_from_folder, {"model_dir": str(tiny_model_dir), "seed": 3}, tokenizer)
    try:
        heard: list[int] = []
        generations = remote.generate(_requests(prompt_ids), SAMPLE, on_finish=lambda i, g: bool(heard.append(i)))
        assert [g.response_ids for g in generations] == [
            g.response_ids for g in local.generate(_requests(prompt_ids), SAMPLE)
        ]
        assert sorted(heard) == list(range(len(prompt_ids)))  # streamed as each one ended
        assert remote.text(generations[0].response_ids, SAMPLE) == generations[0].text

        state = remote.rng_state()
        again = remote.generate(_requests(prompt_ids), SAMPLE)
        remote.set_rng_state(state)
        assert [g.response_ids for g in remote.generate(_requests(prompt_ids), SAMPLE)] == [
            g.response_ids for g in again
        ]

        changed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        for parameter in changed.parameters():
            parameter.data.mul_(-1.0)
        before = remote.generate(_requests(prompt_ids), GREEDY)
        remote.update_weights(changed.named_parameters(), version=4)
        after = remote.generate(_requests(prompt_ids), GREEDY)
        assert remote.version == 4 and [g.response_ids for g in after] != [g.response_ids for g in before]
        expected = HFEngine(changed.eval(), tokenizer).generate(_requests(prompt_ids), GREEDY)
        assert [g.response_ids for g in after] == [g.response_ids for g in expected]
        assert all(isinstance(g, Generation) for g in after)
    finally:
        remote.close()
        remote.close()  # twice is fine
    with pytest.raises(RuntimeError, match="the engine process is closed"):
        remote.generate(_requests(prompt_ids), GREEDY)


def test_an_engine_that_fails_to_build_reports_its_traceback(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineStartError, match=r"failed in 'ready'[\s\S]*hf_engine_from_folder[\s\S]*OSError"):
        EngineProcess(hf_engine_from_folder, {"model_dir": str(tmp_path / "missing")}, tokenizer)


def test_a_streaming_generate_aborts_the_rest_across_the_pipe(tiny_model_dir: Path, tokenizer, prompt_ids) -> None:  # type: ignore[no-untyped-def]
    budgets = [2, 5, 9, 12, 12, 12]
    batch = [GenerationRequest(prompt_ids=ids, max_new_tokens=b) for ids, b in zip(prompt_ids, budgets, strict=True)]
    full = HFEngine(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer).generate(batch, GREEDY)
    remote = EngineProcess(hf_engine_from_folder, {"model_dir": str(tiny_model_dir)}, tokenizer)
    try:
        heard: list[int] = []

        def stop_after_two(index: int, generation: Generation) -> bool:
            assert generation.response_ids == full[index].response_ids
            heard.append(index)
            return len(heard) >= 2

        cut = remote.generate(batch, GREEDY, on_finish=stop_after_two)
        aborted = [i for i, g in enumerate(cut) if g.finish_reason == "abort"]
        assert len(heard) >= 2 and aborted and set(aborted).isdisjoint(heard)
        for i in aborted:  # cut off a few steps after the abort at most: a strict prefix of the full response
            assert full[i].response_ids[: len(cut[i].response_ids)] == cut[i].response_ids
            assert len(cut[i].response_ids) < len(full[i].response_ids)
        # The process serves the next call normally (a late abort message is ignored).
        assert [g.response_ids for g in remote.generate(batch, GREEDY)] == [g.response_ids for g in full]
    finally:
        remote.close()


def _slow_process(tokenizer, steps: int = 3000, step_seconds: float = 0.01) -> EngineProcess:  # type: ignore[no-untyped-def]
    from slow_engine import SlowEngine  # the child imports it by this name, from the test directory

    return EngineProcess(SlowEngine, {"steps": steps, "step_seconds": step_seconds}, tokenizer)


def test_an_on_finish_that_raises_aborts_the_call_and_close_is_prompt(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # Before: the child's abort poll swallowed the later "close", so close() waited out its 60 s join.
    import time

    remote = _slow_process(tokenizer)
    try:

        def explode(index: int, generation: Generation) -> bool:
            raise ValueError("on_finish failed")

        started = time.perf_counter()
        with pytest.raises(ValueError, match="on_finish failed"):
            remote.generate(_requests([[1], [2], [3000]]), GREEDY, on_finish=explode)  # 30 s if not aborted
        assert time.perf_counter() - started < 10
        # The pipe is still in step: the next streaming call answers normally.
        generations = remote.generate(_requests([[1]]), GREEDY, on_finish=lambda i, g: False)
        assert [g.finish_reason for g in generations] == ["stop"]
    finally:
        started = time.perf_counter()
        remote.close()
        assert time.perf_counter() - started < 10


def test_should_abort_cuts_a_streaming_call_short_across_the_pipe(tokenizer) -> None:  # type: ignore[no-untyped-def]
    import time

    remote = _slow_process(tokenizer)
    try:
        deadline = time.perf_counter() + 0.5
        generations = remote.generate(
            _requests([[1], [2], [3000]]),
            GREEDY,
            on_finish=lambda i, g: False,
            should_abort=lambda: time.perf_counter() > deadline,
        )
        assert time.perf_counter() - deadline < 5  # the whole call would take 30 s
        assert [g.finish_reason for g in generations] == ["stop", "stop", "abort"]
    finally:
        remote.close()


def test_close_during_a_streaming_call_ends_the_child_promptly(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # As after Ctrl-C on the learner: the parent left a streaming call unread and closes the engine.
    import threading
    import time

    remote = _slow_process(tokenizer)

    def call() -> None:
        with contextlib.suppress(EngineStartError):  # the child is gone before it answers
            remote.generate(_requests([[1], [2], [3000]]), GREEDY, on_finish=lambda i, g: False)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(0.5)
    started = time.perf_counter()
    remote._conn.send(("close", ()))  # what close() sends; the caller thread still holds the call lock
    remote._process.join(timeout=10)
    assert not remote._process.is_alive() and time.perf_counter() - started < 10
    remote._closed = True


def test_should_abort_is_asked_even_while_responses_stream_in_faster_than_the_poll(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # One response ends every 2 ms decode step. Before, should_abort was asked only after 10 ms without a
    # message, so a stream like this one ran to its end whatever the producer asked.
    import time

    remote = _slow_process(tokenizer, steps=400, step_seconds=0.002)
    try:
        deadline = time.perf_counter() + 0.2
        generations = remote.generate(
            _requests([[i + 1] for i in range(400)]),
            GREEDY,
            on_finish=lambda i, g: False,
            should_abort=lambda: time.perf_counter() > deadline,
        )
        reasons = [g.finish_reason for g in generations]
        assert reasons[0] == "stop" and reasons[-1] == "abort"
    finally:
        remote.close()
