"""GRESO's bookkeeping: seeded skip draws, per-step metrics and adaptation, and resuming from a JSON state.

(Named for the class rather than `test_greso.py`: tests/algorithms/test_greso.py already holds that basename,
and without __init__.py files pytest cannot collect two test modules of the same name.)
"""

from __future__ import annotations

import json
import random

import pytest

from reasonrl.rollout.greso import SelectiveRollouts

ALL_RIGHT = [1.0] * 4
ALL_WRONG = [0.0] * 4
MIXED = [1.0, 0.0, 1.0, 0.0]


def test_unseen_and_mixed_prompts_are_never_skipped() -> None:
    greso = SelectiveRollouts(seed=3)
    greso.record("mixed", MIXED)
    assert not any(greso.should_skip(p) for p in ["new", "mixed"] * 500)
    assert greso.skip_probability("new") == greso.skip_probability("mixed") == 0.0


@pytest.mark.parametrize(
    ("rewards", "epochs", "expected"),
    [
        (ALL_RIGHT, 2, 0.75),  # keep 0.5 ** 2
        (ALL_WRONG, 1, 0.5),
        (ALL_WRONG, 8, 0.99),  # 0.5 ** 8 < 0.01: the keep floor
    ],
)
def test_skip_frequency_matches_the_skip_probability(rewards: list[float], epochs: int, expected: float) -> None:
    greso = SelectiveRollouts(seed=11)
    for _ in range(epochs):
        greso.record("p", rewards)
    assert greso.skip_probability("p") == pytest.approx(expected, abs=1e-15)
    draws = 20_000
    skipped = sum(greso.should_skip("p") for _ in range(draws))
    # binomial std <= sqrt(0.25 / 20000) ~ 0.0035; 0.015 is over four of them
    assert skipped / draws == pytest.approx(expected, abs=0.015)


def test_decisions_are_one_seeded_draw_per_call() -> None:
    greso = SelectiveRollouts(seed=5)
    greso.record("easy", ALL_RIGHT)  # P_skip 0.5
    reference = random.Random(5)
    expected = []
    for prompt in ["easy", "new"] * 50:
        draw = reference.random()
        expected.append(prompt == "easy" and draw < 0.5)
    assert [greso.should_skip(p) for p in ["easy", "new"] * 50] == expected


def test_end_step_reports_exact_shares_and_adapts_down_when_too_many_get_through() -> None:
    greso = SelectiveRollouts(seed=0)
    for prompt, rewards in [("a", ALL_RIGHT), ("b", ALL_WRONG), ("c", MIXED), ("d", [0.5, 0.5, 0.75, 0.25])]:
        assert not greso.should_skip(prompt)  # nothing recorded yet: P_skip 0
        greso.record(prompt, rewards)
    # easy 1/4 >= 0.25/3 and hard 1/4 >= 0.25*2/3: both skip more
    assert greso.end_step() == {
        "greso/p_easy": 0.49,
        "greso/p_hard": 0.49,
        "greso/skipped_prompts": 0.0,
        "greso/skipped_share": 0.0,
        "greso/easy_share": 0.25,
        "greso/hard_share": 0.25,
    }
    assert greso.traces == {"a": [1.0], "b": [0.0], "c": [0.5], "d": [0.5]}


def test_adaptation_goes_up_below_the_targets_and_each_rate_moves_on_its_own() -> None:
    greso = SelectiveRollouts(target_zero_variance=0.25)
    # 10 groups: one easy (0.1 >= 1/12: p_easy down), one hard (0.1 < 1/6: p_hard up)
    for i, rewards in enumerate([ALL_RIGHT, ALL_WRONG] + [MIXED] * 8):
        greso.record(f"p{i}", rewards)
    metrics = greso.end_step()
    assert (metrics["greso/p_easy"], metrics["greso/p_hard"]) == (0.49, 0.51)
    assert (metrics["greso/easy_share"], metrics["greso/hard_share"]) == (0.1, 0.1)
    # no zero-variance groups at all: both rise
    for i in range(4):
        greso.record(f"q{i}", MIXED)
    metrics = greso.end_step()
    assert metrics["greso/p_easy"] == pytest.approx(0.50, abs=1e-12)
    assert metrics["greso/p_hard"] == pytest.approx(0.52, abs=1e-12)


def test_rates_stay_inside_the_bounds_after_many_steps() -> None:
    greso = SelectiveRollouts()
    for step in range(100):
        greso.record(f"s{step}", ALL_RIGHT)  # always easy (share 1), never hard (share 0)
        greso.end_step()
    assert greso.p_easy == pytest.approx(0.05, abs=1e-12)
    assert greso.p_hard == pytest.approx(0.95, abs=1e-12)


def test_a_step_without_recorded_groups_does_not_adapt_and_counts_skips() -> None:
    greso = SelectiveRollouts(seed=2)
    for _ in range(8):
        greso.record("hard", ALL_WRONG)
    greso.end_step()  # hard share 1: p_hard 0.49; easy share 0: p_easy 0.51
    reference = random.Random(2)
    draws = [reference.random() for _ in range(40)]
    expected_skips = sum(d < 0.99 for d in draws[::2])  # "hard" is at the floor; "new" is never skipped
    for _ in range(20):
        greso.should_skip("hard")
        greso.should_skip("new")
    assert greso.end_step() == {
        "greso/p_easy": 0.51,
        "greso/p_hard": 0.49,
        "greso/skipped_prompts": float(expected_skips),
        "greso/skipped_share": expected_skips / 40,
        "greso/easy_share": 0.0,
        "greso/hard_share": 0.0,
    }
    # counters were reset
    assert greso.end_step()["greso/skipped_prompts"] == 0.0


def _scripted_run(greso: SelectiveRollouts, steps: range) -> list[bool]:
    """A few prompts with different histories, rolled out when not skipped, one end_step per step."""
    rewards = {"easy": ALL_RIGHT, "hard": ALL_WRONG, "mixed": MIXED, "flip": ALL_RIGHT}
    decisions = []
    for step in steps:
        for prompt, group in rewards.items():
            skip = greso.should_skip(prompt)
            decisions.append(skip)
            if not skip:
                greso.record(prompt, ALL_WRONG if prompt == "flip" and step % 3 == 0 else group)
        greso.end_step()
    return decisions


def test_state_dict_round_trips_through_json_and_resumes_the_same_decisions() -> None:
    uninterrupted = SelectiveRollouts(seed=7)
    full = _scripted_run(uninterrupted, range(30))

    first = SelectiveRollouts(seed=7)
    before = _scripted_run(first, range(12))
    first.should_skip("easy")  # mid-step state: counters and a consumed draw must survive too
    state = json.loads(json.dumps(first.state_dict()))

    resumed = SelectiveRollouts(seed=999)  # the seed is overwritten by the loaded generator state
    resumed.load_state_dict(state)
    assert resumed.state_dict() == first.state_dict()
    after = _scripted_run(resumed, range(12, 30))
    _scripted_run(first, range(12, 30))
    assert resumed.state_dict() == first.state_dict()

    replay = SelectiveRollouts(seed=7)
    assert _scripted_run(replay, range(12)) == before
    replay.should_skip("easy")
    assert _scripted_run(replay, range(12, 30)) == after
    assert full[: len(before)] == before and any(full) and not all(full)


def test_load_state_dict_names_missing_keys() -> None:
    state = SelectiveRollouts().state_dict()
    del state["traces"], state["rng_state"]
    with pytest.raises(ValueError, match=r"missing \['rng_state', 'traces'\]"):
        SelectiveRollouts().load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_zero_variance": 0.0}, "target_zero_variance must be in"),
        ({"target_zero_variance": 1.0}, "target_zero_variance must be in"),
        ({"p_easy": 0.0}, "p_easy must be in"),
        ({"p_easy": 1.0}, "p_easy must be in"),
        ({"p_hard": -0.5}, "p_hard must be in"),
        ({"p_hard": 2.0}, "p_hard must be in"),
    ],
)
def test_constructor_rejects_values_outside_the_open_unit_interval(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectiveRollouts(**kwargs)


@pytest.mark.parametrize("rewards", [[], [1.0, 2.0], [-1.0, 0.0], [float("nan"), 1.0]])
def test_record_rejects_empty_groups_and_rewards_outside_the_unit_interval(rewards: list[float]) -> None:
    greso = SelectiveRollouts()
    with pytest.raises(ValueError, match="prompt 'p'"):
        greso.record("p", rewards)
    assert greso.traces == {} and greso.recorded == 0
