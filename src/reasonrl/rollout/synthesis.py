"""Synthesis: a model reads several sampled solutions to one problem and writes one final solution.

One mechanism serves two features:

- the `synthesize` test-time strategy (CoT-based Synthesizer, Zhang et al. 2025, arXiv 2501.01668): the
  policy, or another model, reads up to `m` of the N candidates and writes the answer that is scored;
- CaT rewards (Compute as Teacher, `algorithm.reward.labels: cat`): the frozen initial policy reads a group's
  G rollouts and writes a reference whose answer every rollout is rewarded for matching.

The prompt lists the question and the candidates, numbered, and asks for one reconciled solution in the same
format. It goes through the tokenizer's chat template when the tokenizer has one (one user turn), else it is
plain text ending in `Final solution:\n`. Generation is one `Engine.generate` call for all problems; each
result keeps its text and how many tokens it cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonrl.data import Prompt
from reasonrl.data.rendering import has_chat_template
from reasonrl.engines.base import Engine, GenerationRequest, SamplingSettings

SYNTHESIS_TEMPLATE = (
    "{question}\n\n"
    "Here are {count} candidate solutions to this problem. Some may be wrong or incomplete.\n\n"
    "{candidates}\n\n"
    "Compare them, resolve their disagreements and mistakes, and write one final, correct solution. "
    "End with the final answer in the same format as the candidates."
)
CANDIDATE_TEMPLATE = "Solution {index}:\n{response}"
PLAIN_SUFFIX = "\n\nFinal solution:\n"


def synthesis_message(prompt: Prompt, responses: Sequence[str], *, max_candidates: int) -> str:
    """The synthesis request for `prompt` showing its first `max_candidates` `responses` (as a user message)."""
    if max_candidates < 1:
        raise ValueError(f"max_candidates must be at least 1, got {max_candidates}")
    shown = list(responses[:max_candidates])
    candidates = "\n\n".join(
        CANDIDATE_TEMPLATE.format(index=i, response=text.strip()) for i, text in enumerate(shown, start=1)
    )
    return SYNTHESIS_TEMPLATE.format(question=prompt.question.strip(), count=len(shown), candidates=candidates)


def render_synthesis(prompt: Prompt, responses: Sequence[str], tokenizer: Any, *, max_candidates: int) -> str:
    """The string the synthesizing model sees: the message in its chat template, or plain text."""
    message = synthesis_message(prompt, responses, max_candidates=max_candidates)
    if has_chat_template(tokenizer):
        return str(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
            )
        )
    return message + PLAIN_SUFFIX


@dataclass(frozen=True)
class Synthesis:
    """One synthesized solution: its text, the tokens it generated, and the prompt's length in tokens."""

    text: str
    tokens: int
    prompt_tokens: int


@dataclass
class Synthesizer:
    """Synthesizes one solution per (problem, candidates) with `engine` (any `reasonrl.engines.base.Engine`)."""

    engine: Engine
    tokenizer: Any
    max_candidates: int = 8
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    def __call__(self, prompts: Sequence[Prompt], candidates: Sequence[Sequence[str]]) -> list[Synthesis]:
        if len(prompts) != len(candidates):
            raise ValueError(f"synthesize: {len(prompts)} prompts but {len(candidates)} candidate lists")
        if not prompts:
            return []
        requests = [
            GenerationRequest(
                prompt_ids=self.tokenizer(
                    render_synthesis(p, c, self.tokenizer, max_candidates=self.max_candidates),
                    add_special_tokens=False,
                )["input_ids"]
            )
            for p, c in zip(prompts, candidates, strict=True)
        ]
        sampling = SamplingSettings(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p if self.temperature > 0 else 1.0,
            stop=self.stop,
        )
        generations = self.engine.generate(requests, sampling)
        return [
            Synthesis(
                text=g.text or self.tokenizer.decode(g.response_ids, skip_special_tokens=True),
                tokens=len(g.response_ids),
                prompt_tokens=len(r.prompt_ids),
            )
            for r, g in zip(requests, generations, strict=True)
        ]
