"""The `search` environment and its `search_qa` task: the shipped files are the generator's, every question needs
the rewritten query, the tool answers one passage a line, both reward modes judge what they should, and the
demonstrations solve every task."""

from __future__ import annotations

import logging

import pytest

from reasonrl.agents.calculator import call_text
from reasonrl.agents.protocol import StepResult
from reasonrl.agents.registry import ENVIRONMENTS
from reasonrl.agents.search import NO_RESULTS, SearchEnvironment, frozen_reader, passage_index
from reasonrl.agents.search_data import CHAINS, file_texts, generate, read_corpus
from reasonrl.agents.tools import tool_schema
from reasonrl.data import DataError, Prompt, heldout_prompts, list_tasks, load_prompts, load_source
from reasonrl.rewards.registry import get_verifier

# The town question about the first subject of the question file.
SUBJECT, BRIDGE, GOLD = "Zikeli", "Rafabe", "Bekiz"
FIRST_HOP, ANSWER_HOP, DISTRACTOR = "Zikeli was born in Rafabe.", "Rafabe was founded by Bekiz.", "Zikeli rides Tira."


@pytest.fixture(scope="module")
def tasks() -> list[Prompt]:
    return load_prompts("search_qa")


@pytest.fixture(scope="module")
def town_task(tasks: list[Prompt]) -> Prompt:
    return next(task for task in tasks if task.question == "Founder of Zikeli's town?")


def run(environment: SearchEnvironment, task: Prompt, turns: list[str]) -> list[StepResult]:
    """`turns` played through an episode, which must end with the last of them."""
    environment.reset(task, seed=0)
    results = [environment.step(turn) for turn in turns]
    assert [result.done for result in results] == [False] * (len(turns) - 1) + [True]
    return results


def test_the_shipped_files_are_what_the_generator_makes() -> None:
    for path, text in file_texts().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: python -m reasonrl.agents.search_data"


def test_names_passages_and_questions_are_short_for_a_character_level_model() -> None:
    passages, questions = generate()
    assert (len(passages), len(set(passages)), len(questions)) == (600, 600, 300)
    assert passages == read_corpus()
    assert max(map(len, passages)) < 40 and max(len(row["question"]) for row in questions) < 30
    subjects = {row["meta"]["subject"] for row in questions}
    others = [name for row in questions for name in (row["meta"]["bridge"], row["answer"])]
    assert len(subjects) == 150 and len(set(others)) == len(others) == 600 and not subjects & set(others)
    assert all(4 <= len(name) <= 6 and name.isalpha() and name.istitle() for name in subjects | set(others))
    kinds = {row["question"].split()[0] for row in questions}
    assert kinds == {chain.question.split()[0] for chain in CHAINS}


def test_only_the_rewritten_query_finds_the_answer_passage_for_every_question(tasks: list[Prompt]) -> None:
    index = passage_index()
    assert len(tasks) == 300
    for task in tasks:
        first, answer_passage = task.meta["evidence"]
        by_question = index.search(task.question, 2)
        assert len(by_question) == 2 and first in by_question, task.question  # and a distractor
        assert answer_passage not in by_question and task.answer not in "\n".join(by_question), task.question
        assert first in index.search(task.meta["subject"], 2), task.question
        assert answer_passage in index.search(task.meta["bridge"], 2), task.question


def test_the_search_tool_answers_the_top_k_passages_one_per_line() -> None:
    environment = SearchEnvironment()
    schema = tool_schema(environment.tools()["search"])["function"]
    assert (schema["name"], schema["parameters"]["required"]) == ("search", ["query"])
    assert schema["parameters"]["properties"]["query"]["type"] == "string"
    assert sorted(environment.search(SUBJECT).split("\n")) == sorted([FIRST_HOP, DISTRACTOR])
    assert sorted(environment.search(BRIDGE).split("\n")) == sorted([FIRST_HOP, ANSWER_HOP])
    assert environment.search(f"{BRIDGE} founded").split("\n")[0] == ANSWER_HOP  # two shared words rank first
    assert len(SearchEnvironment(top_k=1).search(SUBJECT).split("\n")) == 1
    # A passage sharing no word with the query is no hit, however large top_k is.
    assert len(SearchEnvironment(top_k=5).search(SUBJECT).split("\n")) == 2
    assert environment.search("the of") == environment.search("") == environment.search("Qqqq") == NO_RESULTS


def test_self_answer_judges_the_agents_last_turn(town_task: Prompt) -> None:
    searches = [call_text("search", {"query": SUBJECT}), call_text("search", {"query": BRIDGE})]
    results = run(SearchEnvironment(), town_task, [*searches, "Tira"])
    assert results[0].info == {"tool_calls": 1, "tool_errors": 0}
    assert [message["role"] for message in results[0].messages] == ["tool"]
    assert sorted(results[0].messages[0]["content"].split("\n")) == sorted([FIRST_HOP, DISTRACTOR])
    assert ANSWER_HOP in results[1].messages[0]["content"]
    assert results[-1].info["answer"] == "Tira"
    assert run(SearchEnvironment(), town_task, [*searches, GOLD])[-1].info["answer"] == GOLD


def test_the_frozen_reader_answers_from_what_the_agent_retrieved(town_task: Prompt) -> None:
    reader = SearchEnvironment(reward_mode="frozen_reader")
    searches = [call_text("search", {"query": SUBJECT}), call_text("search", {"query": BRIDGE})]
    assert run(reader, town_task, [*searches, "whatever it writes"])[-1].info["answer"] == GOLD
    # The question's own words retrieve the first hop only: the chain breaks, whatever the agent answers.
    by_question = call_text("search", {"query": town_task.question})
    assert run(reader, town_task, [by_question, GOLD])[-1].info["answer"] == ""
    assert run(reader, town_task, [GOLD])[-1].info["answer"] == ""  # reset forgot the earlier episode


def test_the_frozen_reader_follows_the_questions_chain_and_nothing_else() -> None:
    question = "Founder of Zikeli's town?"
    assert frozen_reader(question, ["noise", ANSWER_HOP, DISTRACTOR, FIRST_HOP]) == GOLD
    assert frozen_reader("Breeder of Zikeli's horse?", [ANSWER_HOP, DISTRACTOR, FIRST_HOP]) == ""  # Tira's breeder
    assert frozen_reader(question, ["Zikeli rides Rafabe.", ANSWER_HOP]) == ""  # the wrong relation into Rafabe
    assert frozen_reader("Who founded Rafabe?", [FIRST_HOP, ANSWER_HOP]) == ""


def test_the_demonstration_solves_every_task_in_both_modes(tasks: list[Prompt]) -> None:
    exact = get_verifier("exact")
    turns = SearchEnvironment().demonstration(tasks[0])
    subject, bridge = tasks[0].meta["subject"], tasks[0].meta["bridge"]
    assert turns[0] == f'<tool_call>{{"name":"search","arguments":{{"query":"{subject}"}}}}</tool_call>'
    assert turns == [call_text("search", {"query": subject}), call_text("search", {"query": bridge}), tasks[0].answer]
    for mode in ("self_answer", "frozen_reader"):
        for task in tasks:
            environment = SearchEnvironment(reward_mode=mode)
            results = run(environment, task, environment.demonstration(task))
            assert results[-1].info["answer"] == task.answer, (mode, task.question)
            assert exact(results[-1].info["answer"], task.answer, task.meta) == 1.0
    assert SearchEnvironment().demonstration(Prompt(id="x", answer="4", task="exact", text="2+2=")) == []


def test_options_are_checked_by_the_registry() -> None:
    assert ENVIRONMENTS.check("search", {"reward_mode": "frozen_reader", "top_k": 3}) == {
        "reward_mode": "frozen_reader",
        "top_k": 3,
    }
    with pytest.raises(ValueError, match="no option 'bogus'"):
        ENVIRONMENTS.check("search", {"bogus": 1})
    with pytest.raises(ValueError, match="reward_mode"):
        ENVIRONMENTS.check("search", {"reward_mode": "oracle"})
    with pytest.raises(ValueError, match="top_k"):
        SearchEnvironment(top_k=0)


def test_search_qa_is_a_built_in_task_judged_by_exact_match(tasks: list[Prompt]) -> None:
    train, report = load_source("search_qa?size=200")
    assert (len(train), report.shape, len({task.id for task in train})) == (200, "agent", 200)
    assert all(task.task == "exact" and isinstance(task.answer, str) for task in train)
    assert [task.id for task in load_prompts("search_qa?size=200")] == [task.id for task in train]
    assert [task.id for task in load_prompts("search_qa?size=200&seed=1")] != [task.id for task in train]
    assert {task.id for task in tasks} == {f"search_qa/{index}" for index in range(300)}
    assert load_prompts("search_qa?size=5&reward=numeric")[0].task == "numeric"
    with pytest.raises(DataError, match="has no options"):
        load_prompts("search_qa?hops=3")
    info = next(info for info in list_tasks(examples=False) if info.name == "search_qa")
    assert (info.kind, info.options) == ("agent", {})


def test_the_held_out_split_is_the_questions_training_did_not_draw(caplog: pytest.LogCaptureFixture) -> None:
    train = load_prompts("search_qa?size=200")
    heldout = heldout_prompts("search_qa?size=200", size=50, train_prompts=train)
    assert len(heldout) == 50 and not {task.question for task in heldout} & {task.question for task in train}
    with caplog.at_level(logging.WARNING):
        assert len(heldout_prompts("search_qa?size=200", size=200, train_prompts=train)) == 100
    assert "100 prompts instead of 200" in caplog.text
