"""The `search` environment's corpus and the `search_qa` questions, generated from a fixed seed.

Everything is sized for a ~1M-parameter character-level model: made-up names of 4-6 letters, one short
sentence per passage, short questions. Each question takes two hops, as in Search-R1 and QAgent:

    Founder of Zikeli's town?      first hop:  Zikeli was born in Rafabe.    (found by searching the question)
                                   second hop: Rafabe was founded by Bekiz.  (found only by searching Rafabe)

A subject has exactly two passages (two chains of different kinds) and a bridge exactly two (the hop into it
and the hop out of it), and the questions' words (founder, town, ...) occur in no passage. So BM25 on the
question's words finds the subject's two passages, the first hop and a distractor naming another bridge, and
never the answer's passage, which only the rewritten query, the bridge's name, finds.

The data ship as JSON lines written by `python -m reasonrl.agents.search_data`, and what runs reads the files:
`random.Random`'s `choice` and `sample` are not promised to draw the same across Python versions, the files
are; a test checks that they still equal what the generator makes.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
CORPUS_FILE = DATA / "search_corpus.jsonl"
QUESTIONS_FILE = DATA / "search_questions.jsonl"
SEED = 20240611
SUBJECTS = 150
"""Each subject has two questions, so 300 questions over 600 passages."""

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
NAME = r"([A-Z][a-z]+)"


@dataclass(frozen=True)
class Chain:
    """One kind of two-hop question: `question` about a subject, whose `first` passage names the bridge and
    the bridge's `second` passage the answer ({0}: the passage's subject, {1}: its object)."""

    question: str
    first: str
    second: str


CHAINS = (
    Chain("Founder of {0}'s town?", "{0} was born in {1}.", "{0} was founded by {1}."),
    Chain("Breeder of {0}'s horse?", "{0} rides {1}.", "{0} was bred by {1}."),
    Chain("Builder of {0}'s ship?", "{0} sails {1}.", "{0} was built by {1}."),
)
TEMPLATE_WORDS = frozenset(
    word.lower() for chain in CHAINS for template in vars(chain).values() for word in re.findall(r"[A-Za-z]+", template)
)
"""Words a name must not be, or a name would match a relation's word in a search."""


def pattern(template: str) -> re.Pattern[str]:
    """`{0} was born in {1}.` as a regular expression capturing the names in its places."""
    return re.compile(NAME.join(re.escape(part) for part in re.split(r"\{[01]\}", template)))


def parse_passage(text: str) -> tuple[str, str, str] | None:
    """(relation template, subject, object) of a corpus passage; None for any other text."""
    for chain in CHAINS:
        for template in (chain.first, chain.second):
            match = pattern(template).fullmatch(text.strip())
            if match:
                return template, match.group(1), match.group(2)
    return None


def parse_question(text: str) -> tuple[Chain, str] | None:
    """The chain and the subject of a `search_qa` question; None for any other text."""
    for chain in CHAINS:
        match = pattern(chain.question).fullmatch(text.strip())
        if match:
            return chain, match.group(1)
    return None


def made_up_name(rng: random.Random) -> str:
    """4-6 letters, consonants and vowels in turn (`Zikeli`): easy to spell one character at a time."""
    length = rng.randint(4, 6)
    return "".join(rng.choice(VOWELS if index % 2 else CONSONANTS) for index in range(length)).capitalize()


def fresh_name(rng: random.Random, used: set[str]) -> str:
    """A made-up name not in `used` (and then added to it) and not a word of any template."""
    while True:
        name = made_up_name(rng)
        if name not in used and name.lower() not in TEMPLATE_WORDS:
            used.add(name)
            return name


def generate(seed: int = SEED, subjects: int = SUBJECTS) -> tuple[list[str], list[dict[str, Any]]]:
    """The passages (shuffled) and the question rows ({question, answer, meta}) the data files hold. The meta
    is what a demonstration needs (`subject`, `bridge`) and the two passages that answer it (`evidence`)."""
    rng = random.Random(seed)
    used: set[str] = set()
    passages: list[str] = []
    questions: list[dict[str, Any]] = []
    for _ in range(subjects):
        subject = fresh_name(rng, used)
        for chain in rng.sample(CHAINS, 2):
            bridge, answer = fresh_name(rng, used), fresh_name(rng, used)
            evidence = [chain.first.format(subject, bridge), chain.second.format(bridge, answer)]
            passages += evidence
            meta = {"subject": subject, "bridge": bridge, "evidence": evidence}
            questions.append({"question": chain.question.format(subject), "answer": answer, "meta": meta})
    rng.shuffle(passages)
    return passages, questions


def jsonl(rows: list[Any]) -> str:
    """Rows as JSON lines, the files' exact text."""
    return "".join(json.dumps(row) + "\n" for row in rows)


def file_texts() -> dict[Path, str]:
    """What each data file must hold: the corpus as {"text": passage} rows, then the question rows."""
    passages, questions = generate()
    return {CORPUS_FILE: jsonl([{"text": text} for text in passages]), QUESTIONS_FILE: jsonl(questions)}


def read_corpus() -> list[str]:
    """The shipped passages, in file order."""
    return [json.loads(line)["text"] for line in CORPUS_FILE.read_text(encoding="utf-8").splitlines()]


if __name__ == "__main__":
    for path, text in file_texts().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
