"""The `search` environment: two-hop questions answered by searching a small corpus (Search-R1, QAgent).

The tool is BM25 (the `bm25s` library) over the passages shipped in `reasonrl/agents/data` (see
`search_data`): searching the question's words finds the first hop only, and the answer's passage comes back
only for a rewritten query, the bridge entity's name. Two reward modes:

- `self_answer` (Search-R1, QAgent's first stage): the agent's last turn is the answer the task's verifier
  judges, so retrieving and answering are learnt together.
- `frozen_reader` (QAgent's second stage): a fixed reader answers from the passages the agent retrieved, so
  the reward measures retrieval alone; what the agent writes in its last turn is not judged. (An episode cut
  off by a turn or length limit never ends here: the rollout judges its last turn, as for every environment.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import bm25s

from reasonrl.agents.calculator import call_text
from reasonrl.agents.protocol import Message, StepResult
from reasonrl.agents.search_data import parse_passage, parse_question, read_corpus
from reasonrl.agents.tool_env import ToolEnvironment
from reasonrl.agents.tools import ToolLimits
from reasonrl.data import Prompt

NO_RESULTS = "no results"
STOPWORDS = "en"


@dataclass(frozen=True)
class PassageIndex:
    """A BM25 index of passages; `search` returns the best `k` that share at least one word with the query
    (BM25 scores a passage without any of the query's words 0, and such a passage is no hit)."""

    retriever: bm25s.BM25
    passages: tuple[str, ...]

    def search(self, query: str, k: int) -> list[str]:
        words = bm25s.tokenize(query, stopwords=STOPWORDS, return_ids=False, show_progress=False)[0]
        known = [word for word in words if word in self.retriever.vocab_dict]
        if not known:  # bm25s refuses a query without an indexed word
            return []
        found, scores = self.retriever.retrieve([known], k=min(k, len(self.passages)), show_progress=False)
        return [self.passages[index] for index, score in zip(found[0], scores[0], strict=True) if score > 0]


@lru_cache(maxsize=1)
def passage_index() -> PassageIndex:
    """The index of the shipped corpus, built once per process (an environment is made per episode)."""
    passages = tuple(read_corpus())
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(passages), stopwords=STOPWORDS, show_progress=False), show_progress=False)
    return PassageIndex(retriever, passages)


def frozen_reader(question: str, passages: Iterable[str]) -> str:
    """QAgent's frozen reader, a fixed rule instead of a model: it parses the question into its subject and
    chain (`Founder of X's town?`: X's `was born in` passage, then the `was founded by` passage of the town it
    names) and follows the chain through the facts of `passages` only, returning the name at its end. The
    gold answer is never read: a chain broken because a passage was not retrieved (or a question that is not
    a `search_qa` one) gives the empty answer, which scores 0."""
    parsed = parse_question(question)
    if parsed is None:
        return ""
    chain, entity = parsed
    facts = {(template, subject): obj for template, subject, obj in filter(None, map(parse_passage, passages))}
    for template in (chain.first, chain.second):
        if (template, entity) not in facts:
            return ""
        entity = facts[template, entity]
    return entity


class SearchEnvironment(ToolEnvironment):
    """Answer a two-hop question with a `search` tool over the corpus; `reward_mode` picks who answers (the
    agent, or the frozen reader from what the agent retrieved); `top_k` passages come back per search."""

    def __init__(
        self,
        *,
        reward_mode: Literal["self_answer", "frozen_reader"] = "self_answer",
        top_k: int = 2,
        tool_limits: ToolLimits | None = None,
    ) -> None:
        super().__init__(tool_limits=tool_limits)
        if reward_mode not in ("self_answer", "frozen_reader"):
            raise ValueError(f"search: reward_mode must be 'self_answer' or 'frozen_reader', got {reward_mode!r}")
        if top_k < 1:
            raise ValueError(f"search: top_k must be at least 1, got {top_k}")
        self.reward_mode = reward_mode
        self.top_k = top_k
        # Built here, not in the tool's first call: that runs under the tool timeout, and importing and
        # indexing may take longer.
        self.index = passage_index()
        self.retrieved: list[str] = []

    def reset(self, task: Prompt, seed: int) -> list[Message]:
        self.retrieved = []
        return super().reset(task, seed)

    def tools(self) -> dict[str, Callable[..., Any]]:
        return {"search": self.search}

    def search(self, query: str) -> str:
        """Search the corpus.

        Args:
            query: words to look for, e.g. a name
        """
        passages = self.index.search(query, self.top_k)
        self.retrieved += passages
        return "\n".join(passages) or NO_RESULTS

    def step(self, assistant_text: str) -> StepResult:
        result = super().step(assistant_text)
        if result.done and self.reward_mode == "frozen_reader" and self.task is not None:
            result.info["answer"] = frozen_reader(self.task.question, self.retrieved)
        return result

    def demonstration(self, task: Prompt) -> list[str]:
        """Search the subject (the first hop, which the question's words would find too), then the bridge it
        names (the rewritten query that finds the answer's passage), then answer; none for a task without
        that metadata (not a `search_qa` one)."""
        subject, bridge = task.meta.get("subject"), task.meta.get("bridge")
        if not subject or not bridge:
            return []
        return [call_text("search", {"query": subject}), call_text("search", {"query": bridge}), str(task.answer)]
