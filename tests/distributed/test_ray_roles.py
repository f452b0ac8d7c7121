"""The Ray roles on their own: preflight, engine replicas (sharding, streaming, aborts, weights, restarts)
and reward workers (the reward pool's guarantees inside each actor, and an actor's death)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.rewards.reward_plugins import UNRULY
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.config import load_config
from reasonrl.config.schema import RewardTerm
from reasonrl.data.records import Prompt
from reasonrl.distributed import EngineSite, backend_for
from reasonrl.distributed.errors import PlacementError
from reasonrl.distributed.ray_backend import RayBackend
from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.engines.factory import LearnerWeights
from reasonrl.engines.hf import HFEngine

from .conftest import RAY_SETS

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180), pytest.mark.usefixtures("ray_instance")]

SAMPLING = SamplingSettings(max_new_tokens=6, temperature=1.0)


def ray_backend(*sets: str) -> RayBackend:
    backend = backend_for(load_config(None, [*RAY_SETS, *sets]))
    assert isinstance(backend, RayBackend)
    return backend


def wait_until_idle() -> None:
    """Ray frees a killed actor's resources a moment after `ray.kill` returns: wait for the whole instance,
    so the shortfall in the message is exact."""
    import ray

    deadline = time.monotonic() + 20
    while ray.available_resources().get("CPU", 0.0) < 2.0 and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ["distributed.engine.gpus=1"],
            "distributed.engine: one replica needs {CPU: 0.5, GPU: 1}, but no node has GPU 1",
        ),
        (["distributed.engine.replicas=8"], "short of {CPU: 2.25}, mostly for the engine role"),
        (["distributed.reward.resources={tpu_host: 1}"], "distributed.reward: one replica needs"),
        (["distributed.colocate=false", "distributed.learner.cpus=2"], "mostly for the learner role"),
        (["distributed.colocate=false", "distributed.learner.cpus=3"], "distributed.learner: one replica needs"),
        (  # the async pipeline with learner ranks: two engines (rollouts, held-out) and two reward pools
            ["pipeline=async", "distributed.learner.replicas=2", "distributed.learner.cpus=0.5"],
            "engine 2 x {CPU: 0.5}; reward 2 x {CPU: 0.25}; learner 2 x {CPU: 0.5}",
        ),
    ],
)
def test_an_impossible_placement_fails_within_seconds_naming_the_role(sets: list[str], expected: str) -> None:
    wait_until_idle()
    started = time.monotonic()
    with pytest.raises(PlacementError) as caught:
        ray_backend(*sets)
    assert time.monotonic() - started < 10
    assert expected in str(caught.value)
    assert "Lower distributed.<role>.replicas, cpus or gpus" in str(caught.value)


@pytest.fixture(scope="module")
def policy(tiny_model_dir: Path) -> tuple[Any, Any]:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def learner_side(model: Any, tokenizer: Any) -> LearnerWeights:
    return LearnerWeights(model, model, tokenizer, lambda: model.state_dict().items(), torch.device("cpu"))


@pytest.fixture(scope="module")
def two_engines(policy: tuple[Any, Any]) -> Iterator[Any]:
    """Two engine replicas of the tiny policy (one Ray backend for the module's tests)."""
    model, tokenizer = policy
    backend = ray_backend("distributed.engine.replicas=2", "distributed.engine.cpus=0.25")
    site = EngineSite("hf", "auto", learner_side(model, tokenizer), "sync", Path("."), 3, "auto", 128)
    engines = backend.engine(site)
    yield engines
    backend.close()


def seeded_requests(tokenizer: Any, count: int = 10) -> list[GenerationRequest]:
    prompts = [tokenizer(f"{i}+{i}=", add_special_tokens=False)["input_ids"] for i in range(count)]
    return [GenerationRequest(p, seed=1000 + i) for i, p in enumerate(prompts)]


def test_two_replicas_generate_what_one_local_engine_does(two_engines: Any, policy: tuple[Any, Any]) -> None:
    model, tokenizer = policy
    requests = seeded_requests(tokenizer)
    local = HFEngine(model, tokenizer, seed=3).generate(requests, SAMPLING)
    finished: list[int] = []
    remote = two_engines.generate(requests, SAMPLING, on_finish=lambda i, g: finished.append(i) and False)
    assert sorted(finished) == list(range(len(requests)))  # each response reported once, as it ended
    assert [g.response_ids for g in remote] == [g.response_ids for g in local]
    for mine, theirs in zip(remote, local, strict=True):  # each replica's batch holds half the rows
        assert mine.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)
        assert (mine.finish_reason, mine.text) == (theirs.finish_reason, theirs.text)
    scored = two_engines.score(
        [GenerationRequest(r.prompt_ids, g.response_ids) for r, g in zip(requests, local, strict=True)]
    )
    for mine, theirs in zip(scored, local, strict=True):
        assert mine.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)


def test_a_replica_killed_while_streaming_is_replayed_and_nothing_reported_twice(
    two_engines: Any, policy: tuple[Any, Any]
) -> None:
    model, tokenizer = policy
    requests = seeded_requests(tokenizer, 8)
    expected = HFEngine(model, tokenizer, seed=3).generate(requests, SAMPLING)
    victim = two_engines.replicas[1]
    restarts = victim.restarts
    reported: list[int] = []

    def on_finish(index: int, generation: Generation) -> bool:
        if not reported:
            os.kill(victim.pid, signal.SIGKILL)
        reported.append(index)
        return False

    out = two_engines.generate(requests, SAMPLING, on_finish=on_finish)
    assert sorted(reported) == list(range(len(requests)))  # each once, the replayed ones included
    assert victim.restarts == restarts + 1
    assert [g.response_ids for g in out] == [g.response_ids for g in expected]


def test_an_abort_cuts_every_replica_short(two_engines: Any, policy: tuple[Any, Any]) -> None:
    _, tokenizer = policy
    requests = [GenerationRequest(r.prompt_ids, seed=r.seed, max_new_tokens=64) for r in seeded_requests(tokenizer)]
    long = SamplingSettings(max_new_tokens=64, temperature=1.0)
    reported: list[Generation] = []
    out = two_engines.generate(requests, long, on_finish=lambda i, g: reported.append(g) or True)
    assert len(out) == len(requests) and reported  # the first response to end aborted the rest
    assert any(g.finish_reason == "abort" for g in out)
    for generation in out:
        assert generation.finish_reason in ("stop", "length", "abort")
    again = two_engines.generate(requests[:2], SAMPLING, should_abort=lambda: True)
    assert [g.finish_reason for g in again].count("abort") >= 1


def test_weights_are_published_once_per_version_and_a_restarted_replica_loads_them(
    two_engines: Any, policy: tuple[Any, Any]
) -> None:
    model, tokenizer = policy
    changed = {name: tensor + 0.01 for name, tensor in model.state_dict().items()}
    two_engines.update_weights(changed.items(), version=7)
    assert two_engines.version == 7
    victim = two_engines.replicas[1]
    old_pid, restarts = victim.pid, victim.restarts
    os.kill(old_pid, signal.SIGKILL)
    requests = seeded_requests(tokenizer, 6)
    out = two_engines.generate(requests, SAMPLING)  # replica 1 dies on this call's shard, comes back, replays
    assert victim.restarts == restarts + 1
    shifted = AutoModelForCausalLM.from_config(model.config)
    shifted.load_state_dict(changed)
    local = HFEngine(shifted.eval(), tokenizer, seed=3).generate(requests, SAMPLING)
    assert [g.response_ids for g in out] == [g.response_ids for g in local]  # the restarted one serves v7
    metrics = two_engines.metrics()
    assert metrics["distributed/engine1/restarts"] == restarts + 1
    assert metrics["distributed/engine1/weight_version"] == 7
    assert metrics["distributed/engine1/pid"] not in (0.0, float(old_pid))


def unruly_batch(responses: list[str]) -> tuple[list[Prompt], list[str]]:
    prompts = [Prompt(id=f"p{i}", answer=str(i), task=UNRULY, text=f"say {i}") for i in range(len(responses))]
    return prompts, responses


def test_reward_workers_keep_the_pools_guarantees_and_survive_an_actor_death() -> None:
    backend = ray_backend("distributed.reward.replicas=2")
    try:
        pool = backend.reward_pool(None, 1, 1.0)
        responses = ["0", "raise", "2", "hang", "4", "5"]
        results = pool.score(*unruly_batch(responses))
        assert [r.reward for r in results] == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
        assert "boom from the reward" in (results[1].error or "")
        assert "limit" in (results[3].error or "") or "seconds" in (results[3].error or "")
        os.kill(pool.worker_pids[0], signal.SIGKILL)  # the actor, not one of its scoring processes
        later = pool.submit(*unruly_batch(["0", "1", "x", "3"]))
        assert [r.reward for r in later.result(timeout=60)] == [1.0, 1.0, 0.0, 1.0]
        assert backend.metrics()["distributed/pool0/reward0/restarts"] == 1.0
    finally:
        backend.close()


def test_reward_terms_reach_the_actors() -> None:
    backend = ray_backend()
    try:
        pool = backend.reward_pool([RewardTerm(name="exact", weight=2.0)], 0, 5.0)
        prompts = [
            Prompt(id="a", answer="7", task=UNRULY, text="3+4="),
            Prompt(id="b", answer="8", task=UNRULY, text="4+4="),
        ]
        assert [r.reward for r in pool.score(prompts, ["7", "9"])] == [2.0, 0.0]
    finally:
        backend.close()
