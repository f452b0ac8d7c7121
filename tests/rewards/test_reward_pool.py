"""RewardPool: rewards that raise, hang or kill their worker cost one sample, never the batch or the run."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import pytest

from reasonrl.config.schema import RewardConfig, RewardTerm
from reasonrl.data.records import Prompt
from reasonrl.rewards import RewardPool, RewardResult

HERE = Path(__file__).parent
UNRULY = f"{HERE / 'reward_plugins.py'}:unruly"  # 1.0 if response == answer; misbehaves on request
CRASH_ON_START = f"{HERE / 'crash_on_start.py'}:reward"


def unruly_batch(responses: list[str]) -> tuple[list[Prompt], list[str]]:
    """Prompt i expects answer str(i); response i is correct unless it names a misbehaviour."""
    prompts = [Prompt(id=f"p{i}", answer=str(i), task=UNRULY, text=f"say {i}") for i in range(len(responses))]
    return prompts, responses


def assert_others_correct(results: list[RewardResult], responses: list[str], bad: set[int]) -> None:
    assert len(results) == len(responses)
    for index, (result, response) in enumerate(zip(results, responses, strict=True)):
        if index in bad:
            assert result.reward == 0.0 and result.components == {} and result.error
        else:
            expected = 1.0 if response == str(index) else 0.0
            assert (result.reward, result.components, result.error) == (expected, {"unruly": expected}, None)


def wait_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pool():
    with RewardPool(workers=2, timeout_seconds=0.5) as reward_pool:
        yield reward_pool


def test_scores_in_order(pool: RewardPool) -> None:
    responses = [str(i) if i % 3 else "wrong" for i in range(100)]
    results = pool.score(*unruly_batch(responses))
    assert_others_correct(results, responses, bad=set())
    assert pool.score([], []) == []


def test_a_reward_that_raises(pool: RewardPool) -> None:
    responses = ["0", "raise", "2", "3", "raise", "wrong"]
    results = pool.score(*unruly_batch(responses))
    assert_others_correct(results, responses, bad={1, 4})
    assert results[1].error == "reward 'unruly' failed: ValueError: boom from the reward"


def test_a_reward_that_hangs(pool: RewardPool) -> None:
    responses = ["0", "1", "hang", "3", "4", "5"]
    start = time.perf_counter()
    results = pool.score(*unruly_batch(responses))
    assert time.perf_counter() - start < 20
    assert_others_correct(results, responses, bad={2})
    assert results[2].error.startswith("timeout: scoring took longer than 0.5 s")
    again = ["0", "x", "2"]
    assert_others_correct(pool.score(*unruly_batch(again)), again, bad=set())


def test_a_hang_no_signal_can_stop_is_killed(pool: RewardPool) -> None:
    responses = ["0", "block", "2", "3"]
    before = set(pool.worker_pids)
    results = pool.score(*unruly_batch(responses))
    assert_others_correct(results, responses, bad={1})
    assert "the reward worker was killed and replaced" in results[1].error
    assert len(set(pool.worker_pids) - before) == 1
    assert_others_correct(pool.score(*unruly_batch(["0", "1"])), ["0", "1"], bad=set())


@pytest.mark.parametrize(("misbehaviour", "how"), [("crash", "killed by SIGKILL"), ("exit", "exit code 3")])
def test_a_reward_that_kills_its_worker(pool: RewardPool, misbehaviour: str, how: str) -> None:
    responses = [str(i) for i in range(40)]
    responses[5] = responses[23] = misbehaviour
    before = pool.worker_pids
    results = pool.score(*unruly_batch(responses))
    assert_others_correct(results, responses, bad={5, 23})
    assert results[5].error == f"reward worker crashed while scoring this sample ({how}); it was replaced"
    assert len(pool.worker_pids) == 2 and pool.worker_pids != before
    assert wait_gone([pid for pid in before if pid not in pool.worker_pids])
    later = [str(i) for i in range(10)]
    assert_others_correct(pool.score(*unruly_batch(later)), later, bad=set())


def test_every_kind_of_trouble_in_one_batch(pool: RewardPool) -> None:
    responses = [str(i) for i in range(30)]
    trouble = {3: "raise", 7: "hang", 11: "crash", 17: "exit", 19: "nan", 25: "block"}
    for index, what in trouble.items():
        responses[index] = what
    results = pool.score(*unruly_batch(responses))
    assert_others_correct(results, responses, bad=set(trouble))


def test_no_processes_outlive_the_pool() -> None:
    with RewardPool(workers=2, timeout_seconds=1) as pool:
        pool.score(*unruly_batch(["0", "crash", "2"]))
        pids = pool.worker_pids
    assert len(pids) == 2 and wait_gone(pids)
    with pytest.raises(RuntimeError, match="the pool is closed"):
        pool.score(*unruly_batch(["0"]))

    forgotten = RewardPool(workers=1)
    pids = forgotten.worker_pids
    del forgotten
    gc.collect()
    assert wait_gone(pids)


def test_task_verifiers_and_their_options() -> None:
    prompts = [
        Prompt(id="a", answer="0.5", task="math", text="?"),
        Prompt(id="b", answer="Paris", task="exact", text="?"),
        Prompt(id="c", answer="Paris", task="exact", text="?", meta={"verifier_options": {"ignore_case": False}}),
        Prompt(id="d", answer={"target": 6, "numbers": [2, 3]}, task="countdown", text="?"),
    ]
    with RewardPool(workers=1, timeout_seconds=5) as pool:
        results = pool.score(prompts, [r"\boxed{\frac12}", "paris", "paris", "<answer>2*3</answer>"])
    assert [(r.reward, r.components, r.error) for r in results] == [
        (1.0, {"math": 1.0}, None),
        (1.0, {"exact": 1.0}, None),
        (0.0, {"exact": 0.0}, None),
        (1.0, {"countdown": 1.0}, None),
    ]


def test_weighted_terms_from_config() -> None:
    config = RewardConfig(
        functions=[
            RewardTerm(name="math"),
            RewardTerm(name="format", weight=0.5, options={"tags": ["answer"]}),
            RewardTerm(name="overlong", weight=1.0, options={"max_length": 40, "buffer": 20}),
        ],
        workers=1,
        timeout_seconds=5,
    )
    prompt = Prompt(id="q", answer="4", task="exact", text="2+2?")
    with RewardPool.from_config(config) as pool:
        results = pool.score([prompt, prompt], ["<answer>4</answer>", "x" * 30 + " 5"])
    assert results[0].components == {"math": 1.0, "format": 1.0, "overlong": 0.0}
    assert results[0].reward == 1.5
    assert results[1].components == {"math": 0.0, "format": 0.0, "overlong": pytest.approx(-0.6)}
    assert results[1].reward == pytest.approx(-0.6)


def test_config_errors_are_raised_up_front() -> None:
    with pytest.raises(ValueError, match="has no option 'tolerence'"):
        RewardPool([RewardTerm(name="numeric", options={"tolerence": 1})], workers=0)
    with RewardPool(workers=0) as pool:
        with pytest.raises(ValueError, match=r"prompt 'z' \(task 'mathh'\): unknown verifier 'mathh'"):
            pool.score([Prompt(id="z", answer="1", task="mathh", text="?")], ["1"])
        with pytest.raises(ValueError, match="2 prompts but 1 responses"):
            pool.score([Prompt(id="z", answer="1", task="math", text="?")] * 2, ["1"])
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        RewardPool(workers=-1)


def test_unpicklable_meta_costs_only_its_sample(pool: RewardPool) -> None:
    prompts, responses = unruly_batch(["0", "1", "2"])
    prompts[1].meta["callback"] = lambda: None
    results = pool.score(prompts, responses)
    assert_others_correct(results, responses, bad={1})
    assert results[1].error.startswith("cannot send this sample to a reward worker")


def test_workers_that_die_at_start_up_stop_the_pool() -> None:
    pool = RewardPool(workers=1, timeout_seconds=1)
    prompts = [Prompt(id="s", answer="1", task=CRASH_ON_START, text="?")]
    expected = r"died 3 times in a row while starting \(last: reward worker crashed while starting \(exit code 7\)"
    with pytest.raises(RuntimeError, match=expected):
        pool.score(prompts, ["1"])
    assert pool.worker_pids == []  # it closed itself


def test_in_process_scoring_keeps_the_limit() -> None:
    responses = ["0", "raise", "hang", "3"]
    with RewardPool(workers=0, timeout_seconds=0.5) as pool:
        assert pool.worker_pids == []
        results = pool.score(*unruly_batch(responses))
        assert_others_correct(results, responses, bad={1, 2})
        assert results[2].error.startswith("timeout")

        from_thread: list[list[RewardResult]] = []
        thread = threading.Thread(target=lambda: from_thread.append(pool.score(*unruly_batch(responses))))
        thread.start()
        thread.join(60)
        assert_others_correct(from_thread[0], responses, bad={1, 2})
        assert from_thread[0][2].error.startswith("timeout")


def test_submit_returns_at_once_and_keeps_order_and_limits(pool: RewardPool) -> None:
    """Three batches in flight, the first with a hang: `submit` does not wait for any of them, each future
    holds exactly what `score` would, and the hang is still cut at its limit."""
    batches = [["0", "hang", "2"], ["0", "1"], ["wrong", "1", "raise"]]
    start = time.perf_counter()
    futures = [pool.submit(*unruly_batch(responses)) for responses in batches]
    assert time.perf_counter() - start < 0.2 and not futures[0].done()
    for future, responses, bad in zip(futures, batches, [{1}, set(), {2}], strict=True):
        assert_others_correct(future.result(timeout=30), responses, bad=bad)
    assert futures[0].result()[1].error.startswith("timeout: scoring took longer than 0.5 s")
    assert_others_correct(pool.score(*unruly_batch(["0"])), ["0"], bad=set())  # the dispatcher starts again


def test_closing_fails_the_batches_in_flight_at_once() -> None:
    pool = RewardPool(workers=1, timeout_seconds=30)
    running = pool.submit(*unruly_batch(["hang"]))
    waiting = pool.submit(*unruly_batch(["0"]))
    time.sleep(0.5)
    pids = pool.worker_pids
    start = time.perf_counter()
    pool.close()
    assert time.perf_counter() - start < 5  # no wait for the hang's 30 s limit
    for future in (running, waiting):
        with pytest.raises(RuntimeError, match="the pool is closed"):
            future.result(timeout=5)
    assert len(pids) == 1 and wait_gone(pids)


def test_in_process_submit_is_done_on_return() -> None:
    with RewardPool(workers=0, timeout_seconds=5) as pool:
        future = pool.submit(*unruly_batch(["0", "wrong"]))
        assert future.done()
        assert_others_correct(future.result(), ["0", "wrong"], bad=set())
        unknown = pool.submit([Prompt(id="z", answer="1", task="mathh", text="?")], ["1"])
        with pytest.raises(ValueError, match="unknown verifier 'mathh'"):
            unknown.result()
