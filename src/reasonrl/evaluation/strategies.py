"""Test-time selection strategies: which of N sampled responses to answer with.

Each strategy is a pure function of the responses' answer classes (`rewards.equivalence`: equal answers
share a class, `NO_ANSWER` never votes) and, for the scored ones, one score per response; it returns the
index of the chosen response, whose verifier score is then the strategy's accuracy on that problem. Ties
go to the response seen first. Formulas and sources: ../shared/reference/algorithms.md, section A.

On the command line a strategy is one string, `NAME[?key=value&...]`, e.g. `best_of_n?scorer=rm:runs/rm` or
`best_of_majority?alpha=0.3`; the keys are the fields of its options model below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import yaml
from pydantic import Field, ValidationError

from reasonrl.config.base import Section
from reasonrl.config.errors import config_error, suggest
from reasonrl.rewards.equivalence import NO_ANSWER, majority_class

SCORER_HELP = (
    "logprob (the response's mean token log-prob, as exp(mean) in (0, 1]), reward:NAME (a reward function: "
    "a verifier name or module:function) or rm:PATH (a Hugging Face sequence-classification reward model)"
)


def majority_vote(classes: Sequence[int], scores: Sequence[float] | None = None) -> int:
    """Self-consistency (Wang et al. 2022, arXiv 2203.11171): a response of the most frequent answer."""
    winner = majority_class(classes)
    return classes.index(winner) if winner != NO_ANSWER else 0


def best_of_n(classes: Sequence[int], scores: Sequence[float]) -> int:
    """Best-of-N: the response the scorer likes best, whatever its answer."""
    return max(range(len(scores)), key=scores.__getitem__)


def weighted_majority(classes: Sequence[int], scores: Sequence[float]) -> int:
    """Weighted majority: the answer with the largest sum of scores (negative scores count as 0), answered
    by its best-scored response."""
    totals: dict[int, float] = {}
    for label, score in zip(classes, scores, strict=True):
        if label != NO_ANSWER:
            totals[label] = totals.get(label, 0.0) + max(score, 0.0)
    if not totals:
        return best_of_n(classes, scores)
    winner = max(totals, key=totals.__getitem__)
    return _best_in(classes, scores, {winner})


def best_of_majority(classes: Sequence[int], scores: Sequence[float], alpha: float) -> int:
    """Best-of-Majority (Di et al. 2025, arXiv 2510.03199): keep the answers whose share of the N responses is
    at least `alpha`, then the best-scored response among them.

    Filtering by frequency first is what keeps a noisy scorer from picking a rare answer it happens to over-
    rate, so accuracy does not fall as N grows (best-of-N's failure). When no answer reaches `alpha`, the
    most frequent answers are the candidates.
    """
    counts: dict[int, int] = {}
    for label in classes:
        if label != NO_ANSWER:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return best_of_n(classes, scores)
    frequent = {label for label, count in counts.items() if count >= alpha * len(classes)}
    return _best_in(classes, scores, frequent or {k for k, v in counts.items() if v == max(counts.values())})


def _best_in(classes: Sequence[int], scores: Sequence[float], allowed: set[int]) -> int:
    members = [i for i, label in enumerate(classes) if label in allowed]
    return max(members, key=scores.__getitem__)


class MajorityOptions(Section):
    """`majority`: self-consistency; no options (its accuracy at N is maj@N)."""


class ScoredOptions(Section):
    """`best_of_n`, `weighted_majority`: select by a scorer."""

    scorer: str = Field("logprob", min_length=1, description=f"Scorer: {SCORER_HELP}.")


class BestOfMajorityOptions(ScoredOptions):
    """`best_of_majority`: frequency filter, then the scorer."""

    alpha: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Keep answers whose share of the N responses is at least alpha (the paper ties it to "
        "1/C*, the inverse coverage; its experimental value is not published, so tune it).",
    )


class ParticleFilterOptions(Section):
    """`particle_filter`: step-wise particle filtering (Puri et al. 2025, arXiv 2502.01618)."""

    scorer: str = Field(
        "logprob",
        min_length=1,
        description="Step scorer of partial responses, in (0, 1): logprob (the policy's per-token likelihood "
        "so far) or rm:PATH (a reward model); reward:NAME also works but judges partial answers.",
    )
    tau: float = Field(1.0, gt=0, description="Softmax temperature of the weights softmax(logit(score) / tau).")
    delimiter: str = Field("\n\n", min_length=1, description="String that ends a step (default: a blank line).")
    max_steps: int = Field(40, ge=1, description="Steps after which every particle stops.")
    step_tokens: int = Field(
        256, ge=1, description="Longest step in tokens; a longer one ends there and the next step continues it."
    )
    answer: Literal["best", "vote"] = Field(
        "best",
        description="best = the final particle with the highest score; vote = the answer with the largest "
        "total weight over the final particles.",
    )


@dataclass(frozen=True)
class StrategyKind:
    """A strategy's options model and, for selection strategies, its selection function."""

    options: type[Section]
    select: Callable[..., int] | None


STRATEGIES: dict[str, StrategyKind] = {
    "majority": StrategyKind(MajorityOptions, majority_vote),
    "best_of_n": StrategyKind(ScoredOptions, best_of_n),
    "weighted_majority": StrategyKind(ScoredOptions, weighted_majority),
    "best_of_majority": StrategyKind(BestOfMajorityOptions, best_of_majority),
    "particle_filter": StrategyKind(ParticleFilterOptions, None),
}

_TEXT_KEYS = ("scorer", "delimiter")

DEFAULT_STRATEGIES: tuple[str, ...] = ("majority", "best_of_n", "weighted_majority", "best_of_majority")


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy string: its name and validated options."""

    name: str
    options: Any

    @property
    def label(self) -> str:
        """How reports name it: the name and the options that differ from their defaults,
        `best_of_majority(alpha=0.3)`."""
        changed = self.options.model_dump(exclude_defaults=True)
        inner = ", ".join(
            f"{key}={value!r}" if key == "delimiter" else f"{key}={value}" for key, value in changed.items()
        )
        return f"{self.name}({inner})" if inner else self.name

    @property
    def scorer(self) -> str | None:
        return getattr(self.options, "scorer", None)

    def select(self, classes: Sequence[int], scores: Sequence[float]) -> int:
        """The chosen response's index; only for selection strategies (not particle_filter)."""
        function = STRATEGIES[self.name].select
        if function is None:
            raise ValueError(f"{self.name} generates its own responses; it does not select among stored ones")
        extra = {"alpha": self.options.alpha} if self.name == "best_of_majority" else {}
        return function(classes, scores, **extra)


def parse_strategy(text: str) -> StrategySpec:
    """`NAME[?key=value&...]` as a `StrategySpec`; a ValueError naming the valid names or keys otherwise."""
    name, _, query = text.strip().partition("?")
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}{suggest(name, STRATEGIES)}; choose one of {list(STRATEGIES)}")
    # Scorers and delimiters are text as typed (a delimiter may be a lone newline, `%0A`); the rest is YAML.
    values = {key: raw if key in _TEXT_KEYS else yaml.safe_load(raw) for key, raw in parse_qsl(query)}
    model = STRATEGIES[name].options
    try:
        return StrategySpec(name, model.model_validate(values))
    except ValidationError as exc:
        raise config_error(model, exc, f"strategy {text!r}") from None
