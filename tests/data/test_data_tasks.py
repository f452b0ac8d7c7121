"""Built-in tasks: presets (exact, deterministic, correct), reasoning-gym tasks with options, spec strings,
errors that suggest, held-out sets disjoint from training, and the task list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reasonrl.config import DataSource
from reasonrl.data import PRESETS, DataError, heldout_prompts, list_tasks, load_prompts, load_source
from reasonrl.data.loading import to_spec

SUM_SEED0 = [("0+3=", "3"), ("1+1+4=", "6"), ("0-8=", "-8"), ("0-9=", "-9"), ("2+3=", "5")]
ADD2_SEED0 = [("6+27=", "33"), ("84+15=", "99"), ("94+96=", "190"), ("4+88=", "92"), ("83+23=", "106")]


def evaluate(expression: str) -> int:
    """Left-to-right + and - of integers: the ground truth a preset answer must equal."""
    tokens = re.findall(r"[+-]|\d+", expression.rstrip("="))
    total = int(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2], strict=True):
        total = total + int(number) if op == "+" else total - int(number)
    return total


@pytest.mark.parametrize(("name", "expected"), [("sum", SUM_SEED0), ("add2", ADD2_SEED0)])
def test_presets_give_exact_prompts_for_seed_0(name: str, expected: list[tuple[str, str]]) -> None:
    prompts = load_prompts(f"{name}?size=5")
    assert [(p.text, p.answer) for p in prompts] == expected
    first = prompts[0]
    assert first.task == "exact" and first.id == f"{name}/train-0/0"
    assert first.meta["preset"] == name and first.meta["gym_task"] == PRESETS[name].gym_task
    assert first.meta["gym_entry"]["answer"] == first.answer


def test_preset_answers_are_correct_and_shapes_match_the_options() -> None:
    prompts = load_prompts("sum?size=300")
    assert all(int(p.answer) == evaluate(p.text) for p in prompts)
    assert {len(re.findall(r"\d+", p.text)) for p in prompts} == {2, 3}
    assert all(re.fullmatch(r"\d([+-]\d){1,2}=", p.text) for p in prompts)
    harder = load_prompts("sum?size=100&min_terms=4&max_terms=4&min_digits=2&max_digits=2")
    assert all(re.fullmatch(r"\d\d([+-]\d\d){3}=", p.text) for p in harder)
    assert all(int(p.answer) == evaluate(p.text) for p in harder)
    additions = load_prompts("add2?size=200")
    assert all("-" not in p.text and int(p.answer) == evaluate(p.text) for p in additions)


def test_bits_preset_counts_ones_of_12_bit_numbers() -> None:
    prompts = load_prompts("bits?size=300")
    assert [(p.text, p.answer) for p in prompts[:2]] == [("101011110100=", "7"), ("111100011011=", "8")]
    assert all(re.fullmatch(r"1[01]{11}=", p.text) and int(p.answer) == p.text.count("1") for p in prompts)
    # 2048 distinct numbers: enough that the demo's held-out set (200) is disjoint from its 2000 draws.
    assert len(heldout_prompts("bits?size=2000", size=200)) == 200


def test_caesar_preset_decrypts_book_words_whose_lengths_have_a_long_tail() -> None:
    prompts = load_prompts("caesar?size=2000")
    assert [(p.text, p.answer) for p in prompts[:3]] == [
        ("IURP-3=", "FROM"),
        ("LV-3=", "IS"),
        ("VHSDUDWHG-3=", "SEPARATED"),
    ]
    shift_back = {chr(65 + i): chr(65 + (i - 3) % 26) for i in range(26)}
    for prompt in prompts:
        assert re.fullmatch(r"[A-Z]+-3=", prompt.text)
        assert "".join(shift_back[c] for c in prompt.text[:-3]) == prompt.answer == prompt.meta["gym_entry"]["answer"]
    # Words drawn as they occur in the text: mostly short, a few long (the point of the `longtail` recipe).
    lengths = sorted(len(p.answer) for p in prompts)
    median, p90 = lengths[len(lengths) // 2], lengths[int(0.9 * len(lengths))]
    assert median <= 5 and p90 >= 2 * median and lengths[-1] >= 3 * median
    assert len(heldout_prompts("caesar?size=2000", size=200, train_prompts=prompts)) == 200
    harder = load_prompts("caesar?size=50&min_rotation=1&max_rotation=25")
    assert len({p.meta["gym_entry"]["metadata"]["rotation"] for p in harder}) > 5


def test_tasks_are_deterministic_per_seed_and_differ_across_seeds() -> None:
    assert load_prompts("sum?size=50") == load_prompts(DataSource(source="sum", size=50))
    seed0 = [p.text for p in load_prompts("chain_sum?size=50")]
    seed1 = [p.text for p in load_prompts("chain_sum?size=50&seed=1")]
    # reasoning-gym builds entry i from seed + i; seeds must not just shift the same sequence by one.
    assert seed0[1:] != seed1[:-1] and len(set(seed0) & set(seed1)) < 5


def test_gym_task_by_name_with_options() -> None:
    prompts = load_prompts(
        DataSource(source="chain_sum", kind="task", size=20, options={"min_terms": 4, "max_terms": 4})
    )
    assert len(prompts) == 20
    for prompt in prompts:
        entry = prompt.meta["gym_entry"]
        assert prompt.task == "gym" and prompt.text == entry["question"] and prompt.answer == entry["answer"]
        assert entry["metadata"]["num_terms"] == 4
        assert int(prompt.answer) == eval(entry["metadata"]["expression"])
    assert load_prompts("task:chain_sum?min_terms=4&max_terms=4&size=20") == prompts


def test_reward_overrides_the_task_verifier() -> None:
    assert {p.task for p in load_prompts("chain_sum?size=3&reward=numeric")} == {"numeric"}
    assert {p.task for p in load_prompts("sum?size=3&reward=gym")} == {"gym"}


@pytest.mark.parametrize(
    "source",
    [
        DataSource(),
        DataSource(source="chain_sum", kind="task", size=50, seed=3, options={"min_terms": 3, "operators": ["+"]}),
        DataSource(source="sum", options={"label": "3", "note": "a&b c+d=%"}, reward="gym"),
        DataSource(source="data/my set.jsonl", kind="gsm8k", split="test", skip_invalid=True, fields={"answer": "a"}),
    ],
)
def test_spec_string_round_trip(source: DataSource) -> None:
    spec = to_spec(source)
    assert DataSource.model_validate(spec) == source
    assert isinstance(spec, str) and "\n" not in spec


def test_spec_string_fields() -> None:
    source = DataSource.model_validate("task:chain_sum?num_terms=3&size=50&seed=2&skip_invalid=true")
    assert (source.kind, source.source, source.size, source.seed) == ("task", "chain_sum", 50, 2)
    assert source.options == {"num_terms": 3} and source.skip_invalid is True
    assert to_spec(source) == "task:chain_sum?size=50&seed=2&skip_invalid=true&num_terms=3"


def test_unknown_task_suggests_close_names() -> None:
    with pytest.raises(DataError, match=r"unknown task 'chain_sun'\. Did you mean 'chain_sum'") as info:
        load_prompts("chain_sun")
    assert "reasonrl tasks" in str(info.value)
    with pytest.raises(DataError, match=r"unknown task 'sums'\. Did you mean 'sum'"):
        load_prompts("sums")


def test_unknown_or_invalid_option_is_explained() -> None:
    with pytest.raises(DataError, match=r"task 'chain_sum' has no option 'num_terms' \(did you mean 'min_terms'\?\)"):
        load_prompts("chain_sum?num_terms=3")
    with pytest.raises(DataError, match=r"use data\.train\.seed"):
        load_prompts(DataSource(source="sum", options={"seed": 3}))
    with pytest.raises(DataError, match=r"max_terms must be >= min_terms.*data\.train\.options"):
        load_prompts("sum?min_terms=5&max_terms=2")


def test_task_rejects_file_settings() -> None:
    with pytest.raises(DataError, match="apply to dataset files"):
        load_prompts(DataSource(source="sum", split="train"))


def test_load_source_reports_the_spec() -> None:
    prompts, report = load_source("sum?size=7")
    assert len(prompts) == 7
    assert report.summary() == "sum?size=7 (task, preset): 7 prompts"


def test_heldout_is_disjoint_from_training_and_deterministic() -> None:
    train = load_prompts("sum?size=1000")
    heldout = heldout_prompts("sum?size=1000", size=200, train_prompts=train)
    assert len(heldout) == 200
    questions = [p.question for p in heldout]
    assert len(set(questions)) == 200
    assert not set(questions) & {p.question for p in train}
    assert all(int(p.answer) == evaluate(p.text) for p in heldout)
    assert all(p.id.startswith("sum/heldout-0/") for p in heldout)
    assert heldout_prompts("sum?size=1000", size=200) == heldout


def test_heldout_keeps_options_and_needs_new_problems() -> None:
    heldout = heldout_prompts("sum?max_terms=4&min_terms=4&size=100", size=20)
    assert all(len(re.findall(r"\d", p.text)) == 4 for p in heldout)
    # Two one-digit terms have only 200 distinct problems; 2000 training prompts cover them all.
    with pytest.raises(DataError, match="no problem outside the"):
        heldout_prompts("sum?max_terms=2&size=2000", size=10)


def test_heldout_for_a_file_asks_for_data_eval(fixtures: Path) -> None:
    with pytest.raises(DataError, match=r"Set data\.eval"):
        heldout_prompts(str(fixtures / "gsm8k_tiny.jsonl"))


def test_list_tasks_without_examples_names_presets_and_gym_tasks() -> None:
    infos = list_tasks(examples=False)
    names = [info.name for info in infos]
    assert names[:2] == ["sum", "add2"] and "chain_sum" in names and len(names) > 100
    assert len(set(names)) == len(names)
    assert all(info.description and "\n" not in info.description for info in infos)
    chain = infos[names.index("chain_sum")]
    assert chain.kind == "gym" and chain.category == "arithmetic" and chain.options["max_terms"] == "6"
    assert infos[0].options["max_terms"] == "3"


@pytest.mark.slow
def test_list_tasks_examples_are_cached(tmp_path: Path) -> None:
    infos = list_tasks(cache=tmp_path)
    by_name = {info.name: info for info in infos}
    assert (by_name["sum"].example, by_name["sum"].answer) == SUM_SEED0[0]
    assert by_name["chain_sum"].example == load_prompts("chain_sum?size=1")[0].question
    assert by_name["composite"].example is None  # needs its `datasets` option
    assert sum(info.example is not None for info in infos) > 100
    assert list(tmp_path.glob("gym-tasks-*.json"))
    assert list_tasks(cache=tmp_path) == infos
