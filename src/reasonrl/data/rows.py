"""One file row -> one `Prompt`: find the question and answer columns, check types, extract final answers.

Three row shapes are understood:
- plain: a question column and an answer column, used as they are;
- gsm8k: `question` and `answer`, the answer a worked solution ending in `#### 42`;
- math: `problem` and `solution` (MATH), the answer an explicit `answer` column when present, else the
  content of the solution's last `\\boxed{...}`.
A row that does not fit raises `RowError` with the reason; the caller adds the file and line.

The verifier (`Prompt.task`) is `DataSource.reward` when set; else `math` for gsm8k and math rows; else, for
plain rows, `math` when the answer looks like a number or LaTeX and `exact` for other text, since a math
verifier cannot parse free text and exact match cannot see that `0.5` equals `\\frac{1}{2}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from reasonrl.config.data_source import FieldMap
from reasonrl.data.answers import gsm8k_final_answer, last_boxed, looks_mathematical
from reasonrl.data.readers import RawRow
from reasonrl.data.records import Prompt

Shape = Literal["plain", "gsm8k", "math"]

# Usual column names, in order of preference; matched case-insensitively (SVAMP writes `Question`).
AUTO_COLUMNS: dict[str, tuple[str, ...]] = {
    "prompt": ("question", "problem", "prompt", "input", "query"),
    "answer": ("answer", "solution", "target", "output"),
    "id": ("id", "unique_id"),
    "messages": ("messages",),
}


class RowError(ValueError):
    """Why a row cannot become a prompt, without the location (the caller knows the file and line)."""


def _column(row: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The row's first column among `names`, compared case-insensitively."""
    lowered = {str(key).lower(): key for key in row}
    return next((lowered[name] for name in names if name in lowered), None)


def as_row(value: Any) -> Mapping[str, Any]:
    """`value` if it is a row with named fields; a JSON line holding a list or a number is not."""
    if not isinstance(value, Mapping):
        raise RowError(f"expected an object with named fields, got {type(value).__name__} {value!r:.60}")
    return value


def detect_shape(row: Mapping[str, Any], fields: FieldMap) -> Shape:
    """The shape of a file, judged from its first row; a configured answer column means plain."""
    if fields.answer is not None:
        return "plain"
    if _column(row, ("solution",)) and _column(row, ("problem", "question")):
        return "math"
    answer = _column(row, ("answer",))
    if answer is not None and isinstance(row[answer], str) and "####" in row[answer]:
        return "gsm8k"
    return "plain"


class RowReader:
    """Turns the rows of one source into prompts, with messages that tell the user which setting to fix."""

    def __init__(self, shape: Shape, fields: FieldMap, reward: str | None, id_prefix: str, config_key: str):
        self.shape, self.fields, self.reward = shape, fields, reward
        self.id_prefix, self.config_key = id_prefix, config_key

    def prompt(self, raw: RawRow) -> Prompt:
        """The prompt for one readable row; `RowError` if the row does not fit."""
        row = as_row(raw.value)
        answer, solution, answer_column = self._answer(row)
        text, messages, question_column = self._question(row)
        id_column = _column(row, AUTO_COLUMNS["id"]) if self.fields.id is None else self._locate(row, "id")
        row_id = row.get(id_column) if id_column is not None else None
        used = {answer_column, question_column, id_column, _column(row, ("solution",))}
        meta: dict[str, Any] = {
            "source": self.id_prefix,
            "location": raw.location,
            "extra": {key: value for key, value in row.items() if key not in used},
        }
        if solution is not None:
            meta["solution"] = solution
        if self.reward is not None:
            task = self.reward
        else:
            task = "math" if self.shape != "plain" or looks_mathematical(answer) else "exact"
        return Prompt(
            id=str(row_id) if row_id is not None else f"{self.id_prefix}:{raw.index}",
            answer=answer,
            task=task,
            text=text,
            messages=messages,
            meta=meta,
        )

    def _locate(self, row: Mapping[str, Any], role: str) -> str:
        """The column for `role`: the configured one (which must exist), else the first usual name present."""
        explicit = getattr(self.fields, role)
        if explicit is None:
            found = _column(row, AUTO_COLUMNS[role])
            tried = f"tried {', '.join(AUTO_COLUMNS[role])}; "
        else:
            found = explicit if explicit in row else None
            tried = ""
        if found is not None:
            return found
        present = ", ".join(map(str, row)) or "none"
        raise RowError(
            f"missing field {explicit or role!r} ({tried}fields present: {present}); set "
            f"{self.config_key}.fields.{role} to the right column or {self.config_key}.skip_invalid: true"
        )

    def _answer(self, row: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        """(final answer, worked solution or None, column the answer came from)."""
        if self.shape == "math":
            solution_column = _column(row, ("solution",))
            explicit = self.fields.answer is not None
            answer_column = self._locate(row, "answer") if explicit else _column(row, ("answer",))
            if answer_column is not None and row[answer_column] is not None:
                answer = _answer_text(row[answer_column], answer_column)
                solution = _text(row[solution_column], solution_column) if solution_column else None
                return last_boxed(answer) or answer, solution, answer_column
            if solution_column is None:
                present = ", ".join(map(str, row))
                raise RowError(f"no 'answer' or 'solution' field (fields present: {present})")
            solution = _text(row[solution_column], solution_column)
            boxed = last_boxed(solution)
            if boxed is None:
                raise RowError(f"field {solution_column!r} has no \\boxed{{...}} answer and there is no 'answer' field")
            return boxed, solution, solution_column
        column = self._locate(row, "answer")
        if self.shape == "gsm8k":
            solution = _text(row[column], column)
            answer = gsm8k_final_answer(solution)
            if answer is None:
                raise RowError(f"field {column!r} has no final '#### <answer>' line (GSM8K format)")
            return answer, solution, column
        return _answer_text(row[column], column), None, column

    def _question(self, row: Mapping[str, Any]) -> tuple[str | None, list[dict[str, str]] | None, str]:
        """(text, None, column), or (None, chat, column) when a chat is configured or is all there is."""
        only_chat = self.fields.prompt is None and _column(row, AUTO_COLUMNS["prompt"]) is None
        if self.fields.messages is not None or (only_chat and _column(row, AUTO_COLUMNS["messages"])):
            column = self._locate(row, "messages")
            return None, _messages(row[column], column), column
        column = self._locate(row, "prompt")
        return _text(row[column], column), None, column


def _text(value: Any, column: str) -> str:
    if not isinstance(value, str):
        raise RowError(f"field {column!r} must be text, got {type(value).__name__} {value!r:.60}")
    if not value.strip():
        raise RowError(f"field {column!r} is empty")
    return value


def _answer_text(value: Any, column: str) -> str:
    """Answers are kept as text: a number becomes its decimal form; lists, objects and null are errors."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(f"field {column!r} must be text or a number, got {type(value).__name__} {value!r:.60}")
    return _text(str(value), column).strip()


def _messages(value: Any, column: str) -> list[dict[str, str]]:
    def is_message(m: Any) -> bool:
        return isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)

    if not isinstance(value, list) or not value or not all(map(is_message, value)):
        raise RowError(f"field {column!r} must be a non-empty list of {{role, content}} messages with text")
    return [{"role": m["role"], "content": m["content"]} for m in value]
