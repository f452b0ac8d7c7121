"""Test-time selection strategies: which of N sampled responses to answer with.

Each strategy is a pure function of the responses' answer classes (`rewards.equivalence`: equal answers
share a class, `NO_ANSWER` never votes) and, for the scored ones, one score per response; it returns the
index of the chosen response, whose verifier score is then the strategy's accuracy on that problem, or a
list of indices: the responses it submits together, scored as pass@k (right if any of them is right; a
strategy with a `k` option submits at most k, `best_of_majority?k=4`). Ties go to the response seen first,
except in `majority`, whose ties are random by default (its curve is the exact expectation over them).
Formulas and sources: ../shared/reference/algorithms.md, section A.

Strategies are registered in `STRATEGIES` (a `reasonrl.plugins.Registry`, so `path/to/file.py:name` selects
your own): a selection strategy is `fn(classes, scores, *, <options>) -> index`, and one that ranks by scores
declares `scorer: str` among its options, which names the scores the evaluation computes and passes in.
`particle_filter` and `synthesize` generate their own responses; the entry of each is its options model
(`generates_responses`).

On the command line a strategy is one string, `NAME[?key=value&...]`, e.g. `best_of_n?scorer=rm:runs/rm` or
`best_of_majority?alpha=0.3`; the keys are its options.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral
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
    call="fn(classes: list[int], scores: list[float], *, <options>) -> index of the chosen response, or a "
    "list of the indices it submits (scored as pass@k: right if any is right)",
)

SCORER_HELP = (
    "logprob (the response's mean token log-prob, as exp(mean) in (0, 1]), reward:NAME (a reward function: "
    "a verifier name or module:function) or rm:PATH (a Hugging Face sequence-classification reward model)"
)


@STRATEGIES.register("majority")
def majority_vote(
    classes: Sequence[int], scores: Sequence[float] | None = None, *, ties: Literal["random", "first"] = "random"
) -> int:
    """Self-consistency (Wang et al. 2022, arXiv 2203.11171): a response of the most frequent answer.

    `ties`: `random` (default) picks uniformly among the responses of the most frequent answers (every
    response when none has an answer), so a tie between t answers goes to each with chance 1/t; the draw is
    seeded by the classes, so a call is reproducible. Curves never use one draw: they report its exact
    expectation (`majority_candidates`, `metrics.majority_accuracy`), which does not depend on the order of
    the responses: `[right, wrong]` scores maj@2 = 0.5. `first`: the answer seen first wins a tie, and the
    first response of it answers (the order-dependent rule of earlier versions: `[right, wrong]` scores 1).
    """
    if ties == "first":
        winner = majority_class(classes)
        return classes.index(winner) if winner != NO_ANSWER else 0
    candidates = majority_candidates(classes)
    return candidates[random.Random(repr(tuple(classes))).randrange(len(candidates))]


def majority_candidates(classes: Sequence[int]) -> list[int]:
    """The responses majority voting may answer with: those of the most frequent answers, all when none
    has an answer."""
    counts: dict[int, int] = {}
    for label in classes:
        if label != NO_ANSWER:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return list(range(len(classes)))
    top = max(counts.values())
    return [i for i, label in enumerate(classes) if label != NO_ANSWER and counts[label] == top]


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
    k: Annotated[int, Field(ge=1)] = 1,
    scorer: str = "logprob",
) -> list[int]:
    """Best-of-Majority (Di et al. 2025, arXiv 2510.03199, Algorithm 3): with p(y) = count(y) / N over the
    answer classes, the candidates are C = {y : p(y) >= alpha}; it submits the top `k` answers of C by score,
    each answer as its best-scored response, so at most k responses (fewer when C is smaller), scored as
    pass@k. Returns their indices, best first.

    Filtering by frequency first is what keeps a noisy scorer from picking a rare answer it happens to over-
    rate, so accuracy does not fall as N grows (best-of-N's failure). The paper's theory sets alpha =
    3 / (4 C*), C* = 1 / pi(right answer); an alpha below 1/N keeps every answer, i.e. best-of-N. Where the
    default 0.2 and the paper's experimental values come from: docs/evaluation.md. When no answer reaches
    `alpha`, the most frequent answers are the candidates; when no response has an answer, best-of-N.
    """
    counts: dict[int, int] = {}
    for label in classes:
        if label != NO_ANSWER:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return [best_of_n(classes, scores)]
    # Shares compared as fractions of the decimal alpha as written: in floats 7 >= 0.28 * 25 is false.
    threshold = Fraction(repr(alpha)) * len(classes)
    frequent = {label for label, count in counts.items() if count >= threshold}
    most = max(counts.values())
    candidates = frequent or {label for label, count in counts.items() if count == most}
    # Each candidate answer by its best response; answers ranked by that score (ties: the one seen first).
    best = {label: _best_in(classes, scores, {label}) for label in candidates}
    ranked = sorted(best.values(), key=lambda i: (-scores[i], i))
    return ranked[:k]


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


class SynthesizeOptions(Section):
    """`synthesize`: CoT-based Synthesizer (Zhang et al. 2025, arXiv 2501.01668). A model reads up to `m` of
    the N candidates in one prompt (`rollout/synthesis.py`) and writes a final solution, which is scored."""

    generates_responses: ClassVar[bool] = True

    m: int = Field(8, ge=1, description="Most candidates shown in one synthesis prompt (the first m of the N).")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Token budget of the synthesized solution (None = the evaluation's --max-new-tokens)."
    )
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of the synthesis (0 = greedy).")
    model: str | None = Field(
        None, min_length=1, description="Model folder that synthesizes (None = the evaluated policy)."
    )
    subsets: int = Field(1, ge=1, description="Subsets of the N responses synthesized per problem and N.")


STRATEGIES.register("synthesize")(SynthesizeOptions)

_TEXT_KEYS = ("scorer", "delimiter", "model")

DEFAULT_STRATEGIES: tuple[str, ...] = (
    "majority",
    "best_of_n",
    "weighted_majority",
    "best_of_majority",
    "best_of_majority?k=4",
)


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
        """How reports name it: the name and the options that differ from their defaults, and always `k`
        where it declares one (how many answers it submits: pass@1 and pass@k curves must be told apart),
        `best_of_majority(alpha=0.3, k=1)`."""
        declared = STRATEGIES.options(self.name)
        defaults = {key: p.default for key, p in declared.items()}
        changed = {key: value for key, value in self.options.items() if key != "k" and value != defaults.get(key)}
        if "k" in declared:
            changed["k"] = self.options.get("k", defaults["k"])
        inner = ", ".join(
            f"{key}={value!r}" if key == "delimiter" else f"{key}={value}" for key, value in changed.items()
        )
        return f"{self.name}({inner})" if inner else self.name

    @property
    def scorer(self) -> str | None:
        """The scorer whose scores it ranks by, when it declares one."""
        declared = STRATEGIES.options(self.name).get("scorer")
        return None if declared is None else self.options.get("scorer", declared.default)

    def submit(self, classes: Sequence[int], scores: Sequence[float]) -> list[int]:
        """The indices of the responses it submits (one, or up to k for a pass@k strategy), best first; only
        for selection strategies (not the ones that generate)."""
        if generates_responses(self.name):
            raise ValueError(f"{self.name} generates its own responses; it does not select among stored ones")
        chosen = STRATEGIES.get(self.name)(classes, scores, **self.options)
        indices = [int(chosen)] if isinstance(chosen, Integral) else [int(i) for i in chosen]
        if not indices or not all(0 <= i < len(classes) for i in indices):
            raise ValueError(f"strategy {self.label} returned {chosen!r}: need response indices in [0, {len(classes)})")
        return indices

    def select(self, classes: Sequence[int], scores: Sequence[float]) -> int:
        """The index of its first (best) submitted response."""
        return self.submit(classes, scores)[0]

    def particle_options(self) -> ParticleFilterOptions:
        """The particle filter's settings (only for `particle_filter`)."""
        return ParticleFilterOptions(**self.options)

    def synthesize_options(self) -> SynthesizeOptions:
        """The synthesizer's settings (only for `synthesize`)."""
        return SynthesizeOptions(**self.options)


def parse_strategy(text: str) -> StrategySpec:
    """`NAME[?key=value&...]` as a `StrategySpec`; a ValueError naming the valid names or keys otherwise."""
    name, _, query = text.strip().partition("?")
    STRATEGIES.known(name)
    # Scorers and delimiters are text as typed (a delimiter may be a lone newline, `%0A`); the rest is YAML.
    values = {key: raw if key in _TEXT_KEYS else yaml.safe_load(raw) for key, raw in parse_qsl(query)}
    options = STRATEGIES.check(name, values, where=f"strategy {text!r}")
    if generates_responses(name):
        model = STRATEGIES.get(name)
        try:
            model(**options)
        except ValidationError as exc:
            raise config_error(model, exc, f"strategy {text!r}") from None
    return StrategySpec(name, options)
