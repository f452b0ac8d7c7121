"""Tree rollouts: exact tree shapes, budget hand-over and fallback on a scripted engine; on the tiny model every
group gets exactly group_size leaves whose shared paths share their tokens, each token a sample of the policy
with its own log-prob."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.engines.base import Generation, GenerationRequest, SamplingSettings
from reasonrl.engines.hf import HFEngine
from reasonrl.rollout.tree import TreeRollouts


class ScriptedEngine:
    """Every response is `length` tokens of 1 (the last one a stop), generated as far as each request's budget."""

    version = 0

    def __init__(self, length: int) -> None:
        self.length = length
        self.calls: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[Generation]:
        self.calls.append(len(requests))
        out = []
        for request in requests:
            left = self.length - len(request.response_prefix_ids)
            budget = request.max_new_tokens if request.max_new_tokens is not None else sampling.max_new_tokens
            count = min(left, budget)
            out.append(Generation([1] * count, [-0.5] * count, "stop" if count == left else "length"))
        return out


def test_forks_hand_over_the_budget_and_fallbacks_regrow_from_a_segment_boundary() -> None:
    engine = ScriptedEngine(length=3)
    tree = TreeRollouts(segment_tokens=2, branching=2, fallback=True, seed=0)
    (leaves,) = tree.grow([[5, 6]], 8, engine, SamplingSettings(max_new_tokens=16))  # type: ignore[arg-type]
    # Round 1: two roots write 2 tokens each and fork (budget 8: 2 children each). Round 2: the four children
    # finish at 3 tokens. No live branch, 4 leaves missing: a fallback cuts a leaf back to its first segment and
    # regrows 2 children (round 3), then once more (round 4).
    assert engine.calls == [2, 4, 2, 2]
    assert len(leaves) == 8 and all(leaf.response_ids == [1, 1, 1] for leaf in leaves)
    paths = [leaf.path_id for leaf in leaves]
    assert len(set(paths)) == 8
    assert sorted(p for p in paths if "f" not in p) == ["0/0", "0/1", "1/0", "1/1"]
    assert sum(p.split("/")[1].startswith("f") for p in paths) == 4  # 2 fallbacks x 2 children, under a root
    metrics = tree.metrics()
    assert metrics["tree/rounds"] == 4 and metrics["tree/fallbacks"] == 2
    assert metrics["tree/generated_tokens"] == 4 + 4 + 2 + 2
    assert metrics["tree/token_saving"] == pytest.approx(1 - 12 / 24)
    assert tree.metrics()["tree/rounds"] == 0  # per batch


def test_without_fallback_new_roots_fill_the_group_and_uneven_budgets_split_evenly() -> None:
    engine = ScriptedEngine(length=3)
    tree = TreeRollouts(segment_tokens=2, branching=3, fallback=False, seed=0)
    (leaves,) = tree.grow([[5]], 5, engine, SamplingSettings(max_new_tokens=16))  # type: ignore[arg-type]
    # Three roots; budget 5 for 3 live branches: 2 extra children go to the first two (2, 2, 1 children).
    assert engine.calls == [3, 5]
    assert sorted(leaf.path_id for leaf in leaves) == ["0/0", "0/1", "1/0", "1/1", "2/0"]
    assert tree.metrics()["tree/fallbacks"] == 0


def test_the_response_budget_ends_branches_and_the_random_state_round_trips() -> None:
    engine = ScriptedEngine(length=100)
    tree = TreeRollouts(segment_tokens=3, branching=2, fallback=True, seed=4)
    (leaves,) = tree.grow([[5]], 4, engine, SamplingSettings(max_new_tokens=7))  # type: ignore[arg-type]
    assert all(len(leaf.response_ids) == 7 and leaf.finish_reason == "length" for leaf in leaves)
    saved = tree.state_dict()
    first = tree.random.random()
    tree.load_state_dict(saved)
    assert tree.random.random() == first


def test_tiny_model_trees_share_prefixes_and_report_the_policys_logprobs(tiny_model_dir: Path) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = HFEngine(model, tokenizer, seed=0)
    prompts = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in ("12+7=", "3-4=", "101=")]
    tree = TreeRollouts(segment_tokens=3, branching=2, fallback=True, seed=0)
    sampling = SamplingSettings(max_new_tokens=12, temperature=1.0)
    groups = tree.grow(prompts, 8, engine, sampling)
    assert [len(g) for g in groups] == [8, 8, 8]
    for prompt_ids, leaves in zip(prompts, groups, strict=True):
        assert len({leaf.path_id for leaf in leaves}) == 8
        for a in leaves:
            for b in leaves:
                shared = 0
                while shared < min(len(a.path), len(b.path)) and a.path[shared] == b.path[shared]:
                    shared += 1
                tokens = min(shared * 3, len(a.response_ids), len(b.response_ids))
                if shared and not a.path[shared - 1].startswith("f"):
                    assert a.response_ids[:tokens] == b.response_ids[:tokens]
        scores = engine.score([GenerationRequest(prompt_ids, leaf.response_ids) for leaf in leaves])
        for leaf, score in zip(leaves, scores, strict=True):
            torch.testing.assert_close(torch.tensor(leaf.logprobs), torch.tensor(score.logprobs), atol=1e-5, rtol=0)
    assert tree.metrics()["tree/token_saving"] > 0.2
