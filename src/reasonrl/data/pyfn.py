"""`pyfn`: write a one-line Python function from examples, scored by running it on hidden inputs.

The code task a ~1M-parameter character model can learn on a laptop CPU. The prompt shows a few input/output
pairs and ends where the function body starts; the response is the body's expression:

    f(1)=4 f(2)=7 f(5)=16
    def f(x): return            ->  x*3+1

The reference holds assert lines on inputs the prompt does not show, and the code verifier's `prefix` turns
the response into the program `def f(x): return x*3+1`. The functions come from a few families of
expressions (`x+b`, `x*a+b`, `x%m`, ...); the examples are redrawn until no other function of the enabled
families fits them, so the shown pairs always determine the answer.

With random examples the model must do arithmetic (`b` is f(5) - 5), which a 0.8M-parameter model learns
slowly, by supervision and by RL alike. `anchors` are inputs always shown: with `anchors=[0,1]` the constant
of `x+b`, `x-b`, `x*x+b` and the factor of `x*a` are read off f(0) and f(1), the model has to tell the
families apart from the other examples, and GRPO lifts a short warm-up's accuracy within minutes (the
`code-pyfn` recipe).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reasonrl.data.code_problem import CodeProblem
from reasonrl.data.errors import DataError

PREFIX = "def f(x): return "
"""What the verifier puts before the response to make it a program; the prompt ends with it too."""

TEST_INPUTS = range(20)
"""Hidden test inputs are drawn from here; two functions that agree on all of them count as the same."""

MAX_EXAMPLE_DRAWS = 2000
"""Example sets drawn per problem before concluding the options cannot determine the function."""


@dataclass(frozen=True)
class Family:
    """Expressions `template.format(p)` for each parameter `p`, and the function each one computes."""

    template: str
    parameters: tuple[int, ...]
    function: Callable[[int, int], int]


FAMILIES: dict[str, Family] = {
    "add": Family("x+{}", tuple(range(1, 10)), lambda x, b: x + b),
    "sub": Family("x-{}", tuple(range(1, 10)), lambda x, b: x - b),
    "mul": Family("x*{}", tuple(range(2, 10)), lambda x, a: x * a),
    "affine": Family("x*{}+{}", tuple((a, b) for a in range(2, 6) for b in range(1, 10)), lambda x, p: x * p[0] + p[1]),
    "mod": Family("x%{}", tuple(range(2, 10)), lambda x, m: x % m),
    "div": Family("x//{}", tuple(range(2, 10)), lambda x, d: x // d),
    "square": Family("x*x+{}", tuple(range(0, 10)), lambda x, b: x * x + b),
}
"""The expression families by name; `pyfn?families=[add,mul]` picks some."""


@dataclass(frozen=True)
class Candidate:
    """One function the task can ask for: its expression and its values on `TEST_INPUTS`."""

    family: str
    expression: str
    values: tuple[int, ...]


def _expression(family: Family, parameter: Any) -> str:
    return family.template.format(*parameter) if isinstance(parameter, tuple) else family.template.format(parameter)


def candidates(families: list[str]) -> list[Candidate]:
    """Every function of `families`, in table order."""
    return [
        Candidate(name, _expression(FAMILIES[name], p), tuple(FAMILIES[name].function(x, p) for x in TEST_INPUTS))
        for name in families
        for p in FAMILIES[name].parameters
    ]


def _check_options(families: list[str], examples: int, tests: int, max_input: int, anchors: list[int]) -> None:
    unknown = [name for name in families if name not in FAMILIES]
    if not families or unknown or len(set(families)) < len(families):
        problem = f"unknown families {unknown}" if unknown else f"families is {families}"
        raise DataError(f"task 'pyfn': {problem}; choose distinct names from {list(FAMILIES)}")
    if not 1 <= max_input < len(TEST_INPUTS):
        raise DataError(f"task 'pyfn': max_input is {max_input}; it must be between 1 and {len(TEST_INPUTS) - 1}")
    if not 1 <= examples <= max_input + 1:
        raise DataError(
            f"task 'pyfn': examples is {examples}; it must be between 1 and max_input + 1 = {max_input + 1}"
        )
    if not 1 <= tests <= len(TEST_INPUTS) - examples:
        raise DataError(
            f"task 'pyfn': tests is {tests}; it must be between 1 and {len(TEST_INPUTS) - examples} "
            f"(inputs 0-{len(TEST_INPUTS) - 1} not shown as examples)"
        )
    outside = [a for a in anchors if not (isinstance(a, int) and 0 <= a <= max_input)]
    if outside or len(set(anchors)) < len(anchors) or len(anchors) > examples:
        raise DataError(
            f"task 'pyfn': anchors is {anchors}; it must list at most `examples` = {examples} distinct inputs "
            f"between 0 and max_input = {max_input}"
        )


def pyfn_problems(
    seed: str,
    *,
    families: list[str] = list(FAMILIES),  # noqa: B006 - never mutated; the default is what `reasonrl tasks` shows
    examples: int = 3,
    tests: int = 5,
    max_input: int = 9,
    anchors: list[int] = [],  # noqa: B006 - never mutated
) -> Iterator[CodeProblem]:
    """An endless stream of problems, problem i drawn from its own `Random(f"{seed}/{i}")`.

    Problem i does not depend on how many are asked for, so a larger `size` extends a smaller one. `examples`
    inputs are drawn from 0..`max_input`, always including the `anchors`; `tests` hidden inputs from the rest
    of 0..19.
    """
    _check_options(families, examples, tests, max_input, anchors)
    free = [x for x in range(max_input + 1) if x not in anchors]
    pool = candidates(families)
    by_family = {name: [c for c in pool if c.family == name] for name in families}
    index = 0
    while True:
        rng = random.Random(f"{seed}/{index}")
        # Family first, then its parameter: otherwise `affine`, with 36 functions, would be 40% of problems.
        target = rng.choice(by_family[rng.choice(families)])
        for _ in range(MAX_EXAMPLE_DRAWS):
            shown = sorted([*anchors, *rng.sample(free, examples - len(anchors))])
            fitting = {c.values for c in pool if all(c.values[x] == target.values[x] for x in shown)}
            if len(fitting) == 1:
                break
        else:
            raise DataError(
                f"task 'pyfn': examples={examples} drawn from inputs 0-{max_input} cannot tell {target.expression!r} "
                f"from the other functions of {families}; raise `examples` or `max_input`, or change `anchors`"
            )
        hidden = sorted(rng.sample([x for x in TEST_INPUTS if x not in shown], tests))
        question = " ".join(f"f({x})={target.values[x]}" for x in shown) + "\n" + PREFIX
        test = "".join(f"assert f({x}) == {target.values[x]}\n" for x in hidden)
        reference = {"test": test, "entry_point": "f", "prefix": PREFIX}
        yield CodeProblem(question, reference, target.expression, {"family": target.family})
        index += 1
