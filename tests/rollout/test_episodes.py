"""Multi-turn episodes through the rollout scheduler on a scripted policy: sampled tokens kept verbatim, the
environment's tokens appended as template deltas with mask 0 and log-prob 0.0, every limit enforced, tool
failures shown to the model and counted, and episodes in flight surviving a checkpoint."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from reasonrl.agents import StepResult, ToolEnvironment, ToolLimits
from reasonrl.agents.calculator import CalculatorEnvironment, call_text
from reasonrl.config.schema import PromptFormat
from reasonrl.data import Prompt, PromptSampler
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.models.tokenizer import CHAT_TEMPLATE, byte_tokenizer
from reasonrl.rewards.pool import computed
from reasonrl.rollout.collect import generate_episodes
from reasonrl.rollout.episodes import EpisodeDriver, EpisodeLimits, TemplateDeltas, TemplateError
from reasonrl.rollout.samples import Sample
from reasonrl.rollout.scheduler import RolloutScheduler, SchedulerSettings, _Counters

TOKENIZER = byte_tokenizer(tools=True)
EOS = TOKENIZER.eos_token_id
LOGPROB = -0.5
PROMPTS = [Prompt(id=f"m{i}", answer=str(12 * (i + 2)), task="exact", text=f"12*{i + 2}=") for i in range(64)]
Policy = Callable[[str, int], str]  # (episode text so far, turn index) -> next turn's text


class PolicyEngine:
    """Samples scripted turns: `policy` sees the prompt and the response so far (decoded with special tokens)
    and says the next turn; a turn ending in `</tool_call>` stops there (a stop token, as in rollouts), any other
    ends with the EOS. Every sampled token's log-prob is LOGPROB; a budget cuts a turn as `length`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.version = 0
        self.calls = 0

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingSettings,
        *,
        on_finish: Callable[[int, Generation], bool] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        self.calls += 1
        out = []
        for index, request in enumerate(requests):
            context = TOKENIZER.decode(request.prompt_ids + request.response_prefix_ids, skip_special_tokens=False)
            text = self.policy(context, context.count("<|im_start|>assistant"))
            ids = TOKENIZER(text, add_special_tokens=False)["input_ids"]
            stop = ids and ids[-1] in sampling.stop_token_ids
            ids = ids if stop else [*ids, EOS]
            budget = request.max_new_tokens if request.max_new_tokens is not None else sampling.max_new_tokens
            reason = "stop" if len(ids) <= budget else "length"
            ids = ids[:budget]
            generation = Generation(ids, [LOGPROB] * len(ids), reason, TOKENIZER.decode(ids))
            out.append(generation)
            if on_finish is not None:
                on_finish(index, generation)
        return out

    def text(self, tokens: Sequence[int], sampling: SamplingSettings) -> str:
        return str(TOKENIZER.decode(tokens, skip_special_tokens=True))


def driver(environment: Callable[[], Any] = CalculatorEnvironment, **limits: Any) -> EpisodeDriver:
    settings = {"max_response_tokens": 400, "max_turns": 4} | limits
    return EpisodeDriver(environment, TemplateDeltas(TOKENIZER, PromptFormat()), EpisodeLimits(**settings))


def calculator_policy(context: str, turn: int) -> str:
    """Call the calculator on the question, then answer with the result."""
    question = context.split("user\n", 1)[1].split("=", 1)[0]
    if turn == 1:
        return call_text("calculator", {"expression": question})
    return context.rsplit("<tool_response>", 1)[1].split("</tool_response>", 1)[0]


def schedule(
    episodes: EpisodeDriver, policy: Policy, *, group_size: int = 2, prompts_per_batch: int = 2
) -> tuple[RolloutScheduler, PolicyEngine]:
    engine = PolicyEngine(policy)
    sampler = PromptSampler(PROMPTS, shuffle=False)
    scheduler = RolloutScheduler(
        engine,  # type: ignore[arg-type]
        lambda prompt: pytest.fail("episodes render their own prompts"),  # type: ignore[arg-type,return-value]
        SamplingSettings(max_new_tokens=400, stop_token_ids=episodes.stop_token_ids),
        SchedulerSettings(prompts_per_batch=prompts_per_batch, group_size=group_size, max_staleness=0),
        score=lambda samples: computed(exact_answers, samples),
        draw=sampler.next_batch,
        discard=lambda prompt: None,
        lock=threading.Condition(),
        episodes=episodes,
    )
    return scheduler, engine


def exact_answers(samples: list[Sample]) -> None:
    for sample in samples:
        sample.reward = float(sample.judged_text == sample.prompt.answer)


def check_invariants(sample: Sample) -> None:
    """Mask, log-prob and turn-span invariants of one finished episode."""
    mask, ids, logprobs = sample.response_mask, sample.response_ids, sample.behaviour_logprobs
    assert mask is not None and sample.episode is not None
    assert len(mask) == len(ids) == len(logprobs) == len(sample.policy_version)
    for token, logprob in zip(mask, logprobs, strict=True):
        assert logprob == (LOGPROB if token else 0.0)
    spans = sample.episode["turn_spans"]
    inside = {position for start, end in spans for position in range(start, end)}
    assert all(mask[p] == 1 for p in inside) and sum(mask) == len(inside)
    assert sample.episode["turns"] == len(spans) == len(sample.episode["turn_texts"])
    assert mask[-1] == 1  # an episode never ends on environment tokens


def test_the_delta_is_the_templates_own_tokens_after_the_turn() -> None:
    deltas = TemplateDeltas(TOKENIZER, PromptFormat())
    tool = [{"role": "tool", "content": "408"}]
    user, turn = {"role": "user", "content": "12*34="}, call_text("calculator", {"expression": "12*34"})
    whole = TOKENIZER.apply_chat_template([user, {"role": "assistant", "content": turn}, *tool], tokenize=False)
    whole += "<|im_start|>assistant\n"
    sampled = TOKENIZER(turn, add_special_tokens=False)["input_ids"]
    built = deltas.prompt_ids([user]) + sampled + deltas.delta_ids(tool, ended_with_eos=False)
    assert built == TOKENIZER(whole, add_special_tokens=False)["input_ids"]
    # A turn that sampled the EOS itself gets only what the template puts after it.
    assert deltas.delta_ids(tool, ended_with_eos=True) == deltas.delta_ids(tool, ended_with_eos=False)[1:]
    for token in ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"):
        assert len(TOKENIZER(token, add_special_tokens=False)["input_ids"]) == 1


def test_templates_that_cannot_frame_turns_token_exactly_are_refused_at_start_up() -> None:
    with pytest.raises(TemplateError, match=r"data\.format\.template: chat"):
        TemplateDeltas(TOKENIZER, PromptFormat(template="plain"))
    rewriting = byte_tokenizer()
    # Marks the last message only: adding a tool turn re-renders the assistant turn before it.
    rewriting.chat_template = CHAT_TEMPLATE.replace(
        "message['content']", "message['content'] + ('!' if loop.last else '')"
    )
    with pytest.raises(TemplateError, match="prefix property"):
        TemplateDeltas(rewriting, PromptFormat())


def test_episodes_keep_sampled_tokens_verbatim_and_mask_the_environment() -> None:
    scheduler, engine = schedule(driver(), calculator_policy)
    batch = scheduler.produce(0)
    assert len(batch.samples) == 4 and engine.calls == 2  # one generate call per turn
    for sample in batch.samples:
        check_invariants(sample)
        episode = sample.episode
        assert episode is not None
        assert (episode["turns"], episode["tool_calls"], episode["tool_errors"]) == (2, 1, 0)
        assert episode["stop_reason"] == "answer" and sample.reward == 1.0 and sample.finish_reason == "stop"
        (first, _), (second, end) = episode["turn_spans"]
        turns = [sample.response_ids[first:_], sample.response_ids[second:end]]
        assert TOKENIZER.decode(turns[0], skip_special_tokens=False) == episode["turn_texts"][0]
        assert turns[1][-1] == EOS and sample.judged_text == sample.prompt.answer
        environment = TOKENIZER.decode(sample.response_ids[_:second], skip_special_tokens=False)
        assert environment == (
            f"<|im_end|>\n<|im_start|>tool\n<tool_response>{sample.prompt.answer}</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n"
        )


def test_the_turn_limit_ends_an_episode_as_length() -> None:
    always_calls: Policy = lambda context, turn: call_text("calculator", {"expression": "1+1"})  # noqa: E731
    scheduler, _ = schedule(driver(max_turns=3), always_calls)
    for sample in scheduler.produce(0).samples:
        check_invariants(sample)
        assert sample.episode is not None and sample.episode["stop_reason"] == "max_turns"
        assert sample.episode["turns"] == 3 and sample.episode["tool_calls"] == 3
        assert sample.finish_reason == "length"


def test_a_delta_that_would_overflow_the_response_is_never_appended() -> None:
    calls_then_answers: Policy = lambda context, turn: call_text("calculator", {"expression": "1+1"})  # noqa: E731
    limit = 70  # the call (56 tokens) fits; its delta (24 tokens) would not
    scheduler, _ = schedule(driver(max_response_tokens=limit), calls_then_answers)
    for sample in scheduler.produce(0).samples:
        check_invariants(sample)
        assert sample.episode is not None and sample.episode["stop_reason"] == "length"
        assert sample.finish_reason == "length" and len(sample.response_ids) < limit
        assert sample.response_mask is not None and 0 not in sample.response_mask


def test_turn_tokens_and_tool_output_are_capped() -> None:
    class Loud(ToolEnvironment):
        def tools(self) -> dict[str, Callable[..., Any]]:
            def shout(text: str) -> str:
                """Repeat.

                Args:
                    text: what
                """
                return "A" * 20 + text * 50 + "Z" * 20

            return {"shout": shout}

    def policy(context: str, turn: int) -> str:
        return call_text("shout", {"text": "x"}) if turn == 1 else "done" + " and on" * 20

    scheduler, _ = schedule(driver(Loud, max_tool_response_tokens=16, max_turn_tokens=60), policy)
    for sample in scheduler.produce(0).samples:
        check_invariants(sample)
        text = TOKENIZER.decode(sample.response_ids, skip_special_tokens=False)
        assert "<tool_response>AAAAAAA...ZZZZZZ</tool_response>" in text  # 16 tokens, cut in the middle
        spans = sample.episode["turn_spans"]  # type: ignore[index]
        assert [end - start for start, end in spans] == [43, 60] and sample.finish_reason == "length"


@pytest.mark.parametrize(
    ("turn", "error"),
    [
        ('<tool_call>{"name": "calculator", "arguments": {"expression": "1/0"}}</tool_call>', "division by zero"),
        ('<tool_call>{"name": "abacus", "arguments": {}}</tool_call>', "unknown tool 'abacus'"),
        ("<tool_call>{calculator: 1+1}</tool_call>", "malformed tool call JSON"),
        ('<tool_call>{"name": "calculator", "arguments": {"x": 1}}</tool_call>', "bad arguments for calculator"),
    ],
)
def test_tool_failures_are_shown_to_the_model_and_counted(turn: str, error: str) -> None:
    policy: Policy = lambda context, index: turn if index == 1 else "0"  # noqa: E731
    scheduler, _ = schedule(driver(), policy)
    for sample in scheduler.produce(0).samples:
        check_invariants(sample)
        assert sample.episode is not None and sample.episode["tool_errors"] == 1
        assert "<tool_response>error: " in sample.response_text and error in sample.response_text


def test_an_environment_that_raises_ends_its_episode_not_the_run() -> None:
    class Broken(ToolEnvironment):
        def step(self, assistant_text: str) -> StepResult:
            raise KeyError("bug in user code")

    scheduler, _ = schedule(driver(Broken), lambda context, turn: "7")
    for sample in scheduler.produce(0).samples:
        assert sample.episode is not None and sample.episode["stop_reason"] == "error"
        assert sample.episode["error"] == "KeyError: 'bug in user code'"


def test_environment_rewards_add_to_the_verifiers() -> None:
    class Paying(CalculatorEnvironment):
        def step(self, assistant_text: str) -> StepResult:
            result = super().step(assistant_text)
            result.reward = 0.25
            return result

    scheduler, _ = schedule(
        EpisodeDriver(Paying, TemplateDeltas(TOKENIZER, PromptFormat()), EpisodeLimits(400), reward_weight=2.0),
        calculator_policy,
    )
    for sample in scheduler.produce(0).samples:
        assert sample.episode is not None and sample.episode["reward"] == 1.0  # 2 steps x 0.25 x weight 2
        assert sample.reward == 1.0  # `exact_answers` overwrote it here; the pool path adds (test_collect)


def test_noisy_policies_keep_every_invariant() -> None:
    """A seeded policy mixing valid, invalid and malformed calls with answers and long rambles."""
    rng = random.Random(0)
    pieces = [
        call_text("calculator", {"expression": "2*3"}),
        call_text("calculator", {"expression": "2**999999"}),
        '<tool_call>{"name": "calc"}</tool_call>',
        "<tool_call>{oops</tool_call>",
        "42",
        "x" * 70,
    ]

    def policy(context: str, turn: int) -> str:
        return rng.choice(pieces) + (rng.choice(pieces) if rng.random() < 0.2 else "")

    episodes = driver(max_turns=3, max_response_tokens=240, max_turn_tokens=80, max_tool_response_tokens=24)
    scheduler, _ = schedule(episodes, policy, group_size=4, prompts_per_batch=8)
    reasons = set()
    for index in range(10):
        for sample in scheduler.produce(index).samples:
            check_invariants(sample)
            assert sample.episode is not None and sample.episode["turns"] <= 3
            assert len(sample.response_ids) <= 240
            reasons.add(sample.episode["stop_reason"])
    assert reasons == {"answer", "max_turns", "length"}


def test_episodes_in_flight_survive_a_checkpoint() -> None:
    """Saved between turns, restored into a fresh scheduler (environments rebuilt by replay), the episodes end
    exactly as an uninterrupted run ends them."""
    whole, _ = schedule(driver(), calculator_policy)
    expected = [s.to_record() for s in whole.produce(0).samples]

    first, _ = schedule(driver(), calculator_policy)
    first._top_up(_Counters(), first_round=True)  # the first turn only: a batch cut between its turns
    first._generate([g for g in first.groups if not g.complete], _Counters(), [])
    saved = json.loads(json.dumps(first.state_dict()))
    assert all(m["episode"]["turns"] == 1 for g in saved["groups"] for m in g["members"])

    second, _ = schedule(driver(), calculator_policy)
    second.load_state_dict(saved, {p.id: p for p in PROMPTS})
    assert [s.to_record() for s in second.produce(0).samples] == expected


def test_held_out_episodes_run_to_their_end() -> None:
    samples = generate_episodes(
        PROMPTS[:3],
        2,
        PolicyEngine(calculator_policy),
        driver(),
        SamplingSettings(400, stop_token_ids=driver().stop_token_ids),
    )  # type: ignore[arg-type]
    assert [s.group_index for s in samples] == [0, 0, 1, 1, 2, 2]
    for sample in samples:
        check_invariants(sample)
        assert sample.judged_text == sample.prompt.answer


def test_without_a_single_stop_token_the_call_end_is_a_stop_string() -> None:
    plain = EpisodeDriver(CalculatorEnvironment, TemplateDeltas(byte_tokenizer(), PromptFormat()), EpisodeLimits(100))
    assert plain.stop_token_ids == () and plain.stop_strings == ("</tool_call>",)
    assert driver().stop_token_ids == (TOKENIZER.convert_tokens_to_ids("</tool_call>"),)
    assert driver().stop_strings == ()


def test_tool_limits_reach_the_environment() -> None:
    from reasonrl.agents.registry import ENVIRONMENTS

    make = ENVIRONMENTS.bind("calculator", {}, tool_limits=ToolLimits(3, 0.5))
    assert make().tool_limits == ToolLimits(3, 0.5)
