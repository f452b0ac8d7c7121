"""Dataset files: jsonl with field mapping, parquet, GSM8K, MATH, saved HF datasets, and the errors a user
can hit (malformed rows named by file and line, skipping with counts, missing files)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasonrl.data import DataError, gsm8k_final_answer, last_boxed, load_prompts, load_source
from reasonrl.data.answers import looks_mathematical


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_jsonl_with_field_mapping(fixtures: Path) -> None:
    path = str(fixtures / "qa_columns.jsonl")
    prompts = load_prompts({"source": path, "fields": {"prompt": "q", "answer": "a", "id": "uid"}})
    assert [(p.id, p.text, p.answer, p.task) for p in prompts] == [
        ("geo-1", "What is the capital of France?", "Paris", "exact"),
        ("geo-2", "Which ocean lies west of Portugal?", "Atlantic", "exact"),
    ]
    assert prompts[0].meta == {
        "source": "qa_columns.jsonl",
        "location": "line 1",
        "extra": {"topic": "geography"},
    }
    assert load_prompts(f"jsonl:{path}?fields.prompt=q&fields.answer=a&fields.id=uid") == prompts


def test_jsonl_auto_columns_numeric_answers_and_size(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "plain.jsonl", [{"Question": f"{i}+1=", "Answer": i + 1} for i in range(5)])
    prompts = load_prompts(f"{path}?size=3")
    assert [(p.id, p.text, p.answer, p.task) for p in prompts] == [
        ("plain.jsonl:1", "0+1=", "1", "math"),
        ("plain.jsonl:2", "1+1=", "2", "math"),
        ("plain.jsonl:3", "2+1=", "3", "math"),
    ]
    assert {p.task for p in load_prompts(f"{path}?reward=numeric")} == {"numeric"}


def test_chat_rows_keep_their_messages(fixtures: Path) -> None:
    (prompt,) = load_prompts(str(fixtures / "chat.jsonl"))
    assert prompt.text is None and prompt.question == "2+5=" and prompt.answer == "7"
    assert prompt.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+5="},
    ]


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps([{"prompt": "a?", "target": "b"}, {"prompt": "c?", "target": "d"}]))
    prompts = load_prompts(str(path))
    assert [(p.text, p.answer, p.meta["location"]) for p in prompts] == [
        ("a?", "b", "item 0"),
        ("c?", "d", "item 1"),
    ]


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    table = pa.table({"problem": ["1+2=", "5-7="], "target": ["3", "-2"], "id": ["p1", "p2"]})
    pq.write_table(table, path)
    prompts = load_prompts(str(path))
    assert [(p.id, p.text, p.answer, p.task, p.meta["location"]) for p in prompts] == [
        ("p1", "1+2=", "3", "math", "row 0"),
        ("p2", "5-7=", "-2", "math", "row 1"),
    ]
    assert load_prompts({"source": str(path), "kind": "parquet", "size": 1}) == prompts[:1]


def test_gsm8k_fixture(fixtures: Path) -> None:
    path = str(fixtures / "gsm8k_tiny.jsonl")
    prompts, report = load_source(path)
    assert (report.kind, report.shape, report.prompts, report.skipped) == ("jsonl", "gsm8k", 3, 0)
    assert [p.answer for p in prompts] == ["12", "32", "2000"]
    assert {p.task for p in prompts} == {"math"}
    assert prompts[0].text.startswith("Tom packs 3 boxes")
    assert prompts[0].meta["solution"].endswith("12 apples.\n#### 12")
    assert load_prompts(f"gsm8k:{path}") == prompts


def test_math_fixture_with_nested_boxed(fixtures: Path) -> None:
    path = str(fixtures / "math_tiny.jsonl")
    prompts, report = load_source(path)
    assert report.shape == "math"
    assert [p.answer for p in prompts] == ["\\frac{1}{2}", "\\sqrt{4}", "9"]
    assert [p.id for p in prompts] == ["math_tiny.jsonl:1", "math_tiny.jsonl:2", "test/algebra/1.json"]
    assert {p.task for p in prompts} == {"math"}
    assert prompts[0].meta["solution"].endswith("\\boxed{\\frac{1}{2}}$.")
    assert prompts[0].meta["extra"] == {"level": "Level 1", "type": "Prealgebra"}
    assert load_prompts(f"math:{path}") == prompts


def test_explicit_kind_beats_detection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "work\n#### 7"}])
    assert load_prompts(f"gsm8k:{path}")[0].answer == "7"
    with pytest.raises(DataError, match=r"line 1: field 'answer' has no final '#### <answer>' line"):
        load_prompts(f"gsm8k:{write_jsonl(tmp_path / 'y.jsonl', [{'question': 'q', 'answer': '7'}])}")


def test_answer_extraction() -> None:
    assert last_boxed(r"so \boxed{\frac{a}{\sqrt{b}}} and $\boxed{x^{2}}$.") == "x^{2}"
    assert last_boxed(r"\fbox{5}") == "5" and last_boxed(r"answer \boxed 7.") == "7"
    assert last_boxed(r"\boxed{unclosed") is None and last_boxed("none") is None
    assert gsm8k_final_answer("a\n#### 1,234 ") == "1234" and gsm8k_final_answer("no marker") is None
    numbers = ["42", "-3.5", "1/2", "15%", "1,200", "2.5e-06"]
    assert all(map(looks_mathematical, [*numbers, "\\frac{1}{2}", "x^2"]))
    assert not any(map(looks_mathematical, ["Paris", "yes", "B"]))


def test_hf_dataset_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{"question": "1+1=", "answer": "2"}, {"question": "2+2=", "answer": "4"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    prompts, report = load_source(str(tmp_path / "single"))
    assert report.kind == "hf" and [(p.text, p.answer) for p in prompts] == [("1+1=", "2"), ("2+2=", "4")]
    assert prompts[1].meta["location"] == "row 1"

    both = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows),
            "test": datasets.Dataset.from_list([{"question": "3+3=", "answer": "6"}]),
        }
    )
    both.save_to_disk(str(tmp_path / "splits"))
    test = load_prompts({"source": str(tmp_path / "splits"), "split": "test"})
    assert [(p.text, p.answer, p.meta["location"]) for p in test] == [("3+3=", "6", "test row 0")]
    assert load_prompts(f"hf:{tmp_path / 'splits'}?split=train")[0].text == "1+1="
    with pytest.raises(DataError, match=r"holds the splits \['train', 'test'\]; choose one with `split`"):
        load_prompts(str(tmp_path / "splits"))
    with pytest.raises(DataError, match=r"has no split 'dev'; its splits are"):
        load_prompts({"source": str(tmp_path / "splits"), "split": "dev"})


def test_malformed_row_names_file_and_line(fixtures: Path) -> None:
    path = str(fixtures / "malformed.jsonl")
    with pytest.raises(DataError) as info:
        load_prompts(path)
    assert str(info.value).startswith(f"{path} line 3: invalid JSON (Expecting ',' delimiter")
    assert "data.train.skip_invalid: true" in str(info.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"question": "3+3?", "id": "q5"},
            "line 2: missing field 'answer' (tried answer, solution, target, output; fields present: "
            "question, id); set data.eval.fields.answer to the right column or data.eval.skip_invalid: true",
        ),
        ([1, 2], "line 2: expected an object with named fields, got list [1, 2]"),
        ({"question": 7, "answer": "7"}, "line 2: field 'question' must be text, got int 7"),
        (
            {"question": "q", "answer": ["a", "b"]},
            "line 2: field 'answer' must be text or a number, got list",
        ),
        ({"question": "q", "answer": None}, "line 2: field 'answer' must be text or a number, got NoneType"),
        ({"question": " ", "answer": "1"}, "line 2: field 'question' is empty"),
    ],
)
def test_each_kind_of_bad_row_is_explained(tmp_path: Path, row: object, message: str) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"question": "ok", "answer": "1"}, row])
    with pytest.raises(DataError) as info:
        load_prompts(str(path), config_key="data.eval")
    assert str(info.value).startswith(f"{path} {message}")


def test_explicit_field_missing_names_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"q": "x", "a": "1"}])
    with pytest.raises(
        DataError, match=r"line 1: missing field 'answer_text' \(fields present: q, a\); set data.train"
    ):
        load_prompts({"source": str(path), "fields": {"prompt": "q", "answer": "answer_text"}})


def test_skip_invalid_counts_and_reports(fixtures: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = str(fixtures / "malformed.jsonl")
    with caplog.at_level(logging.WARNING, logger="reasonrl.data"):
        prompts, report = load_source({"source": path, "skip_invalid": True})
    assert [(p.id, p.answer) for p in prompts] == [("ok-1", "2"), ("malformed.jsonl:7", "8")]
    assert (report.prompts, report.skipped) == (2, 4)
    assert [m.split(":")[0] for m in report.skipped_examples] == [f"{path} line {n}" for n in (3, 4, 5, 6)]
    assert report.summary() == f"{path} (jsonl, plain): 2 prompts, 4 malformed rows skipped"
    assert "4 malformed rows skipped" in caplog.text and "line 3" in caplog.text


def test_all_rows_bad_or_empty_file(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [[1], [2]])
    with pytest.raises(DataError, match="all 2 rows are malformed"):
        load_prompts({"source": str(bad), "skip_invalid": True})
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="has no rows"):
        load_prompts(str(empty))


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "train.jsonl"
    with pytest.raises(DataError, match=rf"{missing}: no such file or directory"):
        load_prompts(str(missing))
    with pytest.raises(DataError, match=r"no such file or directory"):
        load_prompts("data/absent.csv")
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"cannot tell the format from the extension '\.csv'.*kind"):
        load_prompts(str(tmp_path / "rows.csv"))
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_prompts(f"parquet:{write_jsonl(tmp_path / 'fake.parquet', [{'a': 1}])}")


def test_file_rejects_task_options(fixtures: Path) -> None:
    with pytest.raises(DataError, match=r"data.train.options apply to built-in tasks only"):
        load_prompts(f"{fixtures / 'gsm8k_tiny.jsonl'}?num_terms=3")
    with pytest.raises(DataError, match="`split` applies to HF dataset folders only"):
        load_prompts(f"{fixtures / 'gsm8k_tiny.jsonl'}?split=train")


def test_math_rows_need_a_final_answer(tmp_path: Path) -> None:
    no_box = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "no box here"}])
    with pytest.raises(DataError, match=r"line 1: field 'solution' has no \\boxed\{\.\.\.\} answer"):
        load_prompts(str(no_box))
    mapped = write_jsonl(tmp_path / "m2.jsonl", [{"problem": "p", "solution": r"so \boxed{3}", "final": "3"}])
    (prompt,) = load_prompts(f"math:{mapped}?fields.answer=final")
    assert (prompt.answer, prompt.task, prompt.meta["solution"]) == ("3", "math", r"so \boxed{3}")
