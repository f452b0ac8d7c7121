"""TTRL's reward: each group's majority answer is its label, so RL runs on prompts without ground truth.

Test-time RL (Zuo et al. 2025, arXiv 2504.16084): sample a group of responses per prompt, take the majority
answer (answers grouped by equivalence, see `equivalence.py`) as a pseudo-label, and score every response
of the group against it with the task's ordinary verifier: `reward_i = verifier(response_i, majority)`.
Shaped terms (format, overlong) still apply, since they receive the relabelled prompt like any other.

`MajorityLabelPool` wraps a `RewardPool` and relabels each call's prompts before scoring; a group is every
response to the same prompt id in one `score` call (the training step's batch). Each result's `info` holds
the pseudo-label, its vote share (`majority_share`, TTRL's "majority ratio") and, where the prompt still has
a reference answer, whether the pseudo-label matches it (`label_correct`, TTRL's "label accuracy").

A response the verifier could not judge (`RewardUnavailable`, `excluded.py`) excludes its whole group: its
answer voted for the label every other response was scored against, and a vote nobody could check must
not decide a reward. A label whose own check could not be judged leaves `label_correct` out.

Limits: the reward can only reinforce what the model already answers most often. It needs groups of
several responses (with one, every answer is its own majority); it rewards confident wrong answers as
readily as right ones, so a model that starts mostly wrong drifts further; and tasks whose many correct
responses differ by design (countdown expressions) have no majority to vote on and are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from reasonrl.data.records import Prompt
from reasonrl.rewards.equivalence import NO_ANSWER, answer_key, group_answers, majority_class
from reasonrl.rewards.excluded import EXCLUDED_PREFIX
from reasonrl.rewards.pool import RewardPool, computed
from reasonrl.rewards.single_response import RewardResult

NewPool = Callable[[Any, int, float], RewardPool]
"""Builds a scoring pool from (terms or None, workers, timeout_seconds): `RewardPool`, or a backend's."""

if TYPE_CHECKING:
    from reasonrl.config.schema import RewardConfig

# Verifiers whose correct answers are not one answer written in different ways.
_NO_MAJORITY = ("countdown",)


@dataclasses.dataclass(frozen=True)
class GroupLabel:
    """The majority answer of one group and its share of the group's responses (None: nothing voted)."""

    label: str | None
    share: float


def majority_label(prompt: Prompt, responses: Sequence[str]) -> GroupLabel:
    """The pseudo-label of `prompt` from its group's `responses`."""
    if prompt.task in _NO_MAJORITY:
        raise ValueError(
            f"prompt {prompt.id!r}: majority labels (algorithm.reward.labels: majority) need answers that vote, "
            f"but task {prompt.task!r} accepts many different correct responses; use labels: answer"
        )
    options = prompt.meta.get("verifier_options", {})
    key = answer_key(prompt.task, options if isinstance(options, Mapping) else {})
    answers = [key.extract(response) for response in responses]
    classes = group_answers(answers, key)
    winner = majority_class(classes)
    if winner == NO_ANSWER:
        return GroupLabel(None, 0.0)
    first = classes.index(winner)
    return GroupLabel(answers[first], classes.count(winner) / len(classes))


def relabelled(prompt: Prompt, label: str) -> Prompt:
    """`prompt` with `label` as its answer, also inside a reasoning-gym entry (the gym scorer reads that)."""
    meta = dict(prompt.meta)
    entry = meta.get("gym_entry")
    if isinstance(entry, Mapping):
        meta["gym_entry"] = {**entry, "answer": label}
    return dataclasses.replace(prompt, answer=label, meta=meta)


class MajorityLabelPool:
    """A `RewardPool` whose prompts are relabelled with their group's majority answer before scoring."""

    def __init__(self, pool: RewardPool) -> None:
        self.pool = pool

    def __enter__(self) -> MajorityLabelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    def submit(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> Future[list[RewardResult]]:
        """`score`, computed before returning (a done future): relabelling chains two steps, the vote and the
        scoring against it, so this pool does not overlap decoding yet; `RewardPool.submit` does."""
        return computed(self.score, prompts, responses)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[RewardResult]:
        if len(prompts) != len(responses):
            raise ValueError(f"score: {len(prompts)} prompts but {len(responses)} responses; pass one each")
        groups: dict[str, list[int]] = {}
        for index, prompt in enumerate(prompts):
            groups.setdefault(prompt.id, []).append(index)
        labels = {pid: majority_label(prompts[rows[0]], [responses[i] for i in rows]) for pid, rows in groups.items()}
        # One pool call scores the responses against their labels and each label against the reference.
        jobs = [i for i, p in enumerate(prompts) if labels[p.id].label is not None]
        checked = [
            pid for pid, rows in groups.items() if labels[pid].label is not None and has_reference(prompts[rows[0]])
        ]
        scored = self.pool.score(
            [relabelled(prompts[i], labels[prompts[i].id].label or "") for i in jobs]
            + [prompts[groups[pid][0]] for pid in checked],
            [responses[i] for i in jobs] + [labels[pid].label or "" for pid in checked],
        )
        label_correct = {
            pid: result.reward >= 1.0
            for pid, result in zip(checked, scored[len(jobs) :], strict=True)
            if not result.excluded
        }
        results = [RewardResult(0.0) for _ in prompts]
        for i, result in zip(jobs, scored[: len(jobs)], strict=True):
            results[i] = result
        exclude_whole_groups(results, groups.values())
        for index, prompt in enumerate(prompts):
            group = labels[prompt.id]
            info: dict[str, Any] = {"pseudo_label": group.label, "majority_share": group.share}
            if prompt.id in label_correct:
                info["label_correct"] = label_correct[prompt.id]
            results[index].info = {**results[index].info, **info}  # keeps `excluded`, tracebacks
        return results


def exclude_whole_groups(results: list[RewardResult], groups: Iterable[Sequence[int]]) -> None:
    """Mark every result of a group with an excluded one excluded too, in place: the group's label rests on
    that response's answer (see the module's docstring)."""
    for rows in groups:
        unjudged = next((results[i] for i in rows if results[i].excluded), None)
        if unjudged is None:
            continue
        reason = f"{EXCLUDED_PREFIX}label: a response of its group could not be judged ({unjudged.error})"
        for i in rows:
            if not results[i].excluded:
                result = results[i]
                results[i] = RewardResult(0.0, {}, reason, result.seconds, {**result.info, "excluded": True})


def has_reference(prompt: Prompt) -> bool:
    """Whether the prompt carries a reference answer a verifier can check against."""
    return prompt.answer is not None and str(prompt.answer).strip() != ""


def verifier_pool(config: RewardConfig, new_pool: NewPool = RewardPool) -> RewardPool | None:
    """The task's own verifier, when the training reward differs from it (shaped terms, majority or CaT labels):
    correctness and held-out accuracy are always the verifier's verdict. None when the reward is the verifier.
    `new_pool(terms, workers, timeout_seconds)` builds it (a `Backend.reward_pool`: here or as Ray actors)."""
    if not config.functions and config.labels == "answer":
        return None
    return new_pool(None, config.workers, config.timeout_seconds)


def training_reward_pool(config: RewardConfig, synthesize: Any = None, new_pool: NewPool = RewardPool) -> Any:
    """The pool that scores training responses as the `reward` config section says (`labels` included);
    `labels: cat` needs `synthesize`, the anchor's synthesis (`rewards.cat_labels.Synthesize`); `new_pool`
    builds the scoring pool, as in `verifier_pool`."""
    pool = new_pool(config.functions or None, config.workers, config.timeout_seconds)
    if config.labels == "cat":
        from reasonrl.rewards.cat_labels import SynthesisLabelPool

        if synthesize is None:
            pool.close()
            raise ValueError("algorithm.reward.labels: cat needs the anchor's synthesis; build it with the run")
        return SynthesisLabelPool(pool, synthesize)
    return MajorityLabelPool(pool) if config.labels == "majority" else pool
