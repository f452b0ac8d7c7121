"""The gym verifier with reasoning-gym's own scorers on real generated entries."""

from __future__ import annotations

import pytest

from reasonrl.rewards import get_verifier


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    import reasoning_gym

    return list(reasoning_gym.create_dataset("chain_sum", size=3, seed=1))


def test_scores_with_the_entry_from_meta(entries: list[dict]) -> None:
    verifier = get_verifier("gym")
    for entry in entries:
        meta = {"gym_entry": entry}
        assert verifier(entry["answer"], entry["answer"], meta) == 1.0
        assert verifier(f"<think>easy</think><answer>{entry['answer']}</answer>", entry["answer"], meta) == 1.0
        assert verifier(rf"so \boxed{{{entry['answer']}}}", entry["answer"], meta) == 1.0
        assert verifier("999999", entry["answer"], meta) == 0.0


def test_dataset_option_without_an_entry() -> None:
    verifier = get_verifier("gym", dataset="chain_sum")
    assert verifier("6", "6") == 1.0
    assert verifier("7", "6") == 0.0


def test_no_dataset_scores_zero() -> None:
    assert get_verifier("gym")("6", "6") == 0.0
    assert get_verifier("gym")("6", "6", {"gym_entry": "not an entry"}) == 0.0


def test_unknown_dataset_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown reasoning-gym dataset 'chain_summ'"):
        get_verifier("gym", dataset="chain_summ")
