"""Test-time selection strategies: which of N sampled responses to answer with.

Each strategy is a pure function of the responses' answer classes (`rewards.equivalence`: equal answers
share a class, `NO_ANSWER` never votes) and, for the scored ones, one score per response; it returns the
index of the chosen response, whose verifier score is then the strategy's accuracy on that problem. Ties
go to the response seen first. Formulas and sources: ../shared/reference/algorithms.md, section A.

Strategies are registered in `STRATEGIES` (a `reasonrl.plugins.Registry`, so `path/to/file.py:name` selects
your own): a selection strategy is `fn(classes, scores, *, <options>) -> index`, and one that ranks by scores
declares `scorer: str` among its options, which names the scores the evaluation computes and passes in.
`particle_filter` generates its own responses; its entry is its options model (`generates_responses`).

On the command line a strategy is one string, `NAME[?key=value&...]`, e.g. `best_of_n?scorer=rm:runs/rm` or
`best_of_majority?alpha=0.3`; the keys are its options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl

import yaml
from pydantic import Field, ValidationError

from reasonrl.config.base import Section
from reasonrl.config.errors import config_error
from reasonrl.plugins import Registry
from reasonrl.rewards.equivalence import NO_ANSWER, majority_class

STRATEGIES: Registry[Callable[..., Any]] = Registry(
    "test-time strategy",
    call="fn(classes: list[int], scores: list[float], *, <options>) -> index of the chosen response",
)

SCORER_HELP = (
    "logprob (the response's mean token log-prob, as exp(mean) in (0, 1]), reward:NAME (a reward function: "
    "a verifier name or module:function) or rm:PATH (a Hugging Face sequence-classification reward model)"
)


@STRATEGIES.register("majority")
def majority_vote(classes: Sequence[int], scores: Sequence[float] | None = None) -> int:
    """Self-consistency (Wang et al. 2022, arXiv 2203.11171): a response of the most frequent answer."""
    winner = majority_class(classes)
    return classes.index(winner) if winner != NO_ANSWER else 0


@STRATEGIES.register("best_of_n")
def best_of_n(classes: Sequence[int], scores: Sequence[float], *, scorer: str = "logprob") -> int:
    """Best-of-N: the response the scorer likes best, whatever its answer (`scorer`: see SCORER_HELP)."""
    return max(range(len(scores)), key=scores.__getitem__)


@STRATEGIES.register("weighted_majority")
def weighted_majority(classes: Sequence[int], scores: Sequence[float], *, scorer: str = "logprob") -> int:
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


@STRATEGIES.register("best_of_majority")
def best_of_majority(
    classes: Sequence[int],
    scores: Sequence[float],
    *,
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.2,
    scorer: str = "logprob",
) -> int:
    """Best-of-Majority (Di et al. 2025, arXiv 2510.03199): keep the answers whose share of the N responses is
    at least `alpha`, then the best-scored response among them. The paper ties alpha to 1/C*, the inverse
    coverage; its experimental value is not published, so tune it.

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
    # Shares compared as fractions of the decimal alpha as written: in floats 7 >= 0.28 * 25 is false.
    threshold = Fraction(repr(alpha)) * len(classes)
    frequent = {label for label, count in counts.items() if count >= threshold}
    return _best_in(classes, scores, frequent or {k for k, v in counts.items() if v == max(counts.values())})


def _best_in(classes: Sequence[int], scores: Sequence[float], allowed: set[int]) -> int:
    members = [i for i, label in enumerate(classes) if label in allowed]
    return max(members, key=scores.__getitem__)


class ParticleFilterOptions(Section):
    """`particle_filter`: step-wise particle filtering (Puri et al. 2025, arXiv 2502.01618)."""

    generates_responses: ClassVar[bool] = True

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


STRATEGIES.register("particle_filter")(ParticleFilterOptions)

_TEXT_KEYS = ("scorer", "delimiter")

DEFAULT_STRATEGIES: tuple[str, ...] = ("majority", "best_of_n", "weighted_majority", "best_of_majority")


def generates_responses(name: str) -> bool:
    """Whether strategy `name` generates its own responses (particle filtering) rather than selecting."""
    return bool(getattr(STRATEGIES.get(name), "generates_responses", False))


@dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy string: its name and its checked options."""

    name: str
    options: dict[str, Any]

    @property
    def label(self) -> str:
        """How reports name it: the name and the options that differ from their defaults,
        `best_of_majority(alpha=0.3)`."""
        defaults = {key: p.default for key, p in STRATEGIES.options(self.name).items()}
        changed = {key: value for key, value in self.options.items() if value != defaults.get(key)}
        inner = ", ".join(
            f"{key}={value!r}" if key == "delimiter" else f"{key}={value}" for key, value in changed.items()
        )
        return f"{self.name}({inner})" if inner else self.name

    @property
    def scorer(self) -> str | None:
        """The scorer whose scores it ranks by, when it declares one."""
        declared = STRATEGIES.options(self.name).get("scorer")
        return None if declared is None else self.options.get("scorer", declared.default)

    def select(self, classes: Sequence[int], scores: Sequence[float]) -> int:
        """The chosen response's index; only for selection strategies (not particle_filter)."""
        if generates_responses(self.name):
            raise ValueError(f"{self.name} generates its own responses; it does not select among stored ones")
        return int(STRATEGIES.get(self.name)(classes, scores, **self.options))

    def particle_options(self) -> ParticleFilterOptions:
        """The particle filter's settings (only for `particle_filter`)."""
        return ParticleFilterOptions(**self.options)


def parse_strategy(text: str) -> StrategySpec:
    """`NAME[?key=value&...]` as a `StrategySpec`; a ValueError naming the valid names or keys otherwise."""
    name, _, query = text.strip().partition("?")
    STRATEGIES.known(name)
    # Scorers and delimiters are text as typed (a delimiter may be a lone newline, `%0A`); the rest is YAML.
    values = {key: raw if key in _TEXT_KEYS else yaml.safe_load(raw) for key, raw in parse_qsl(query)}
    options = STRATEGIES.check(name, values, where=f"strategy {text!r}")
    if generates_responses(name):
        try:
            ParticleFilterOptions(**options)
        except ValidationError as exc:
            raise config_error(ParticleFilterOptions, exc, f"strategy {text!r}") from None
    return StrategySpec(name, options)
