"""CaT's reward: the frozen initial policy synthesizes each group's reference answer from its rollouts.

Compute as Teacher (arXiv 2509.14234, verifiable mode): for every group of G rollouts of one prompt, a frozen
anchor (the initial policy pi_0) reads the rollouts (`rollout/synthesis.py`) and writes one synthesized
solution; its final answer, read with the task's `answer_key`, is the group's label, and every rollout is
scored against it with the task's verifier, so `reward_i = 1` when its answer is equivalent to the
synthesized one (shaped terms still apply, as with TTRL's majority labels). Unlike a vote, the synthesis can
disagree with the majority, and be right when every rollout is wrong.

`SynthesisLabelPool` wraps a `RewardPool` like `MajorityLabelPool`; a group is every response to the same
prompt id in one `score` call. The synthesis is any callable `(prompts, candidate lists) -> results with
.text and .tokens` (a `reasonrl.rollout.synthesis.Synthesizer` on the anchor engine in training). Each
result's `info` holds the label (`cat_label`), the synthesis's token count, whether it agrees with the
group's majority answer, and, where the prompt has a reference answer, whether the synthesized label and the
majority label match it (`cat_label_correct`, `cat_majority_correct`; a group whose label has no answer
counts as wrong), so CaT's label accuracy and TTRL's are measured on the same groups. As with majority
labels, a response the verifier could not judge excludes its whole group (the synthesis read it), and a
label check that could not be judged is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from reasonrl.data.records import Prompt
from reasonrl.rewards.equivalence import answer_key
from reasonrl.rewards.majority_labels import exclude_whole_groups, has_reference, majority_label, relabelled
from reasonrl.rewards.pool import RewardPool, computed
from reasonrl.rewards.single_response import RewardResult

# Verifiers whose correct answers are not one answer written in different ways (as for majority labels).
_NO_SINGLE_ANSWER = ("countdown",)


class SynthesisResult(Protocol):
    text: str
    tokens: int


Synthesize = Callable[[Sequence[Prompt], Sequence[Sequence[str]]], Sequence[SynthesisResult]]


class SynthesisLabelPool:
    """A `RewardPool` whose prompts are relabelled with the answer the anchor synthesizes from their group."""

    def __init__(
        self, pool: RewardPool, synthesize: Synthesize, *, close_synthesizer: Callable[[], None] | None = None
    ) -> None:
        self.pool = pool
        self.synthesize = synthesize
        self._close_synthesizer = close_synthesizer

    def __enter__(self) -> SynthesisLabelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()
        if self._close_synthesizer is not None:
            self._close_synthesizer()
            self._close_synthesizer = None

    def submit(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> Future[list[RewardResult]]:
        """`score`, computed before returning (a done future): the synthesis runs on the anchor engine and
        must see whole groups, so this pool does not overlap decoding yet; `RewardPool.submit` does."""
        return computed(self.score, prompts, responses)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        if len(prompts) != len(responses):
            raise ValueError(f"score: {len(prompts)} prompts but {len(responses)} responses; pass one each")
        groups: dict[str, list[int]] = {}
        for index, prompt in enumerate(prompts):
            if prompt.task in _NO_SINGLE_ANSWER:
                raise ValueError(
                    f"prompt {prompt.id!r}: CaT labels (algorithm.reward.labels: cat) need one answer to match, "
                    f"but task {prompt.task!r} accepts many different correct responses; use labels: answer"
                )
            groups.setdefault(prompt.id, []).append(index)
        firsts = {pid: prompts[rows[0]] for pid, rows in groups.items()}
        syntheses = self.synthesize(list(firsts.values()), [[responses[i] for i in rows] for rows in groups.values()])
        labels: dict[str, str | None] = {}
        majorities: dict[str, str | None] = {}
        agrees: dict[str, bool] = {}
        for (pid, rows), synthesis in zip(groups.items(), syntheses, strict=True):
            prompt = firsts[pid]
            options = prompt.meta.get("verifier_options", {})
            key = answer_key(prompt.task, options if isinstance(options, Mapping) else {})
            labels[pid] = key.extract(synthesis.text)
            majorities[pid] = majority_label(prompt, [responses[i] for i in rows]).label
            label, majority = labels[pid], majorities[pid]
            agrees[pid] = label is not None and majority is not None and key.same(majority, label)
        # One pool call: the responses against their labels, then each label (CaT's, TTRL's) against the reference.
        jobs = [i for i, p in enumerate(prompts) if labels[p.id] is not None]
        checks = [
            (pid, which, label)
            for pid, prompt in firsts.items()
            if has_reference(prompt)
            for which, label in (("cat", labels[pid]), ("majority", majorities[pid]))
            if label is not None
        ]
        scored = self.pool.score(
            [relabelled(prompts[i], labels[prompts[i].id] or "") for i in jobs] + [firsts[pid] for pid, _, _ in checks],
            [responses[i] for i in jobs] + [label for _, _, label in checks],
        )
        verdicts = {
            (pid, which): r.reward >= 1.0
            for (pid, which, _), r in zip(checks, scored[len(jobs) :], strict=True)
            if not r.excluded
        }
        unjudged = {pid for (pid, _, _), r in zip(checks, scored[len(jobs) :], strict=True) if r.excluded}
        results = [RewardResult(0.0) for _ in prompts]
        for i, result in zip(jobs, scored[: len(jobs)], strict=True):
            results[i] = result
        exclude_whole_groups(results, groups.values())
        for pid, synthesis in zip(groups, syntheses, strict=True):
            info: dict[str, Any] = {
                "cat_label": labels[pid],
                "cat_tokens": synthesis.tokens,
                "cat_agrees_with_majority": agrees[pid],
            }
            if has_reference(firsts[pid]) and pid not in unjudged:
                info["cat_label_correct"] = verdicts.get((pid, "cat"), False)
                info["cat_majority_correct"] = verdicts.get((pid, "majority"), False)
            for i in groups[pid]:
                results[i].info = {**results[i].info, **info}  # keeps `excluded`, tracebacks
        return results
