"""The critic: values aligned with response tokens, exact accumulation, learning, critic-only steps, state
round trip."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.training.batch import Batch
from reasonrl.training.learner import Learner
from reasonrl.training.models import load_tokenizer
from reasonrl.training.objective import compute_advantages, compute_returns

GROUP = 4
REWARDS = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]


def make_learner(folder: Path, *overrides: str, critic_folder: Path | None = None) -> Learner:
    config = load_config(
        None,
        [
            "rollout.group_size=4",
            "rollout.batch_size=8",
            "train.lr=0.001",
            "algorithm.advantage=gae",
            "algorithm.critic.lr=0.01",
            *overrides,
        ],
    )
    torch.manual_seed(0)
    return Learner(
        folder,
        config.model,
        config.train,
        config.algorithm,
        torch.device("cpu"),
        max_new_tokens=8,
        critic_folder=critic_folder,
    )


def scored_batch(learner: Learner) -> Batch:
    """Two prompts x 4 responses of different lengths, with the critic's values, GAE advantages and returns."""
    tok = learner.tokenizer
    prompts = [tok("3+4=")["input_ids"], tok("19-2=")["input_ids"]]
    responses = [tok(t)["input_ids"] + [tok.eos_token_id] for t in ("7", "8", "12", "6", "17", "11", "1", "170")]
    batch = Batch.from_ids([prompts[i // GROUP] for i in range(8)], responses)
    batch.behaviour_logprobs = learner.policy_logprobs(batch)
    assert learner.critic is not None
    batch.fill(**learner.critic.evaluate(batch, GROUP))
    batch.advantages, _ = compute_advantages(learner.algorithm, REWARDS, batch, GROUP)
    batch.returns = compute_returns(learner.algorithm, REWARDS, batch, GROUP)
    return batch


def test_a_gae_learner_has_a_critic_whose_values_start_at_zero(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.gae_lambda=1.0")
    assert learner.critic is not None
    assert make_learner(tiny_model_dir, "algorithm.advantage=grpo", "algorithm.critic.lr=1e-5").critic is None
    batch = scored_batch(learner)
    assert batch.values is not None and torch.equal(batch.values, torch.zeros_like(batch.response_mask))
    # gamma = lambda = 1 and V = 0: every real token's return is the outcome reward
    torch.testing.assert_close(batch.returns, torch.tensor(REWARDS)[:, None] * batch.response_mask)


def test_values_line_up_with_the_tokens_they_precede(tiny_model_dir: Path) -> None:
    """A response's value at token t depends on the prompt and y_<t only, whatever else is in the batch."""
    learner = make_learner(tiny_model_dir)
    assert learner.critic is not None
    torch.nn.init.normal_(learner.critic.models[0].head.weight)  # non-zero values
    batch = scored_batch(learner)
    values = learner.critic.evaluate(batch, GROUP)["values"]
    alone = learner.critic.evaluate(batch.select([7]), 1)["values"]
    torch.testing.assert_close(values[7, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)
    shorter = Batch.from_ids([batch.prompt_ids[7]], [batch.response_ids[7][:1]])
    torch.testing.assert_close(learner.critic.evaluate(shorter, 1)["values"][0, 0], values[7, 0], atol=1e-5, rtol=1e-5)


def test_critic_micro_batches_accumulate_to_the_full_batch_gradient(tiny_model_dir: Path) -> None:
    whole = make_learner(tiny_model_dir, "train.micro_batch_tokens=100000")
    split = make_learner(tiny_model_dir, "train.micro_batch_tokens=8")
    assert whole.critic is not None and split.critic is not None
    for learner in (whole, split):
        torch.nn.init.constant_(learner.critic.models[0].head.weight, 0.01)
    batch = scored_batch(whole)
    first, second = whole.critic.update(batch, GROUP), split.critic.update(batch, GROUP)
    assert first["critic/value_loss"] == pytest.approx(second["critic/value_loss"], abs=1e-7)
    for a, b in zip(whole.critic.models[0].parameters(), split.critic.models[0].parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-7, rtol=1e-4)


def test_the_critic_fits_the_returns(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.critic.value_clip=null", "algorithm.critic.lr=0.002")
    assert learner.critic is not None
    batch = scored_batch(learner)
    losses = [learner.critic.update(batch, GROUP)["critic/value_loss"] for _ in range(20)]
    assert max(losses[-3:]) < 0.5 * losses[0]
    batch.fill(**learner.critic.evaluate(batch, GROUP))
    assert learner.critic.update(batch, GROUP)["critic/explained_variance"] > 0.3


def test_critic_only_steps_train_only_the_critic(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.critic.critic_only_steps=1", "train.steps=5")
    assert learner.critic is not None
    batch = scored_batch(learner)
    policy_before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    head_before = learner.critic.models[0].head.weight.clone()
    metrics = learner.update(batch, GROUP)
    assert metrics["critic/critic_only"] == 1.0 and "loss/policy" not in metrics
    assert all(torch.equal(policy_before[k], v) for k, v in learner.model.state_dict().items())
    assert not torch.equal(head_before, learner.critic.models[0].head.weight)
    metrics = learner.update(batch, GROUP)
    assert metrics["critic/critic_only"] == 0.0 and "loss/policy" in metrics
    assert not all(torch.equal(policy_before[k], v) for k, v in learner.model.state_dict().items())


def test_the_critic_round_trips_through_the_learner_state(tiny_model_dir: Path) -> None:
    trained = make_learner(tiny_model_dir)
    batch = scored_batch(trained)
    trained.update(batch, GROUP)
    buffer = io.BytesIO()  # as a checkpoint does: the restored learner must share no tensor with the first
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)
    assert set(state["critic"]) == {"models", "optimizer", "scheduler", "steps_done"}
    restored = make_learner(tiny_model_dir)
    restored.model.load_state_dict(trained.model.state_dict())
    restored.load_state_dict(state)
    assert trained.critic is not None and restored.critic is not None
    for name, tensor in trained.critic.models[0].state_dict().items():
        assert torch.equal(tensor, restored.critic.models[0].state_dict()[name]), name
    assert restored.critic.steps_done == 1
    # the next update is the same on both
    first, second = trained.update(batch, GROUP), restored.update(batch, GROUP)
    assert first["critic/value_loss"] == second["critic/value_loss"]
    pairs = zip(trained.critic.models[0].parameters(), restored.critic.models[0].parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_a_checkpoint_without_a_critic_cannot_resume_a_critic_run(tiny_model_dir: Path) -> None:
    plain = make_learner(tiny_model_dir, "algorithm.advantage=grpo", "algorithm.critic.lr=1e-5")
    with pytest.raises(ValueError, match="the checkpoint holds none"):
        make_learner(tiny_model_dir).load_state_dict(plain.state_dict())


def test_a_separate_critic_folder_must_share_the_tokenizer(tiny_model_dir: Path, tmp_path: Path) -> None:
    same = tmp_path / "same"
    shutil.copytree(tiny_model_dir, same)
    assert make_learner(tiny_model_dir, critic_folder=same).critic is not None
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    tokenizer = load_tokenizer(other)
    tokenizer.add_tokens(["<not-in-the-policy>"])
    tokenizer.save_pretrained(other)
    with pytest.raises(ValueError, match="has another tokenizer than the policy"):
        make_learner(tiny_model_dir, critic_folder=other)


def test_asyppo_critics_each_learn_only_from_their_own_responses(tiny_model_dir: Path) -> None:
    """Changing the returns of critic 1's responses leaves critic 0's update unchanged (grad_clip off: a
    joint clip would couple them)."""
    overrides = ("algorithm.critic.count=2", "train.grad_clip=0")
    first, second = make_learner(tiny_model_dir, *overrides), make_learner(tiny_model_dir, *overrides)
    assert first.critic is not None and second.critic is not None and len(first.critic.models) == 2
    batch = scored_batch(first)
    assert batch.critic_shard is not None and batch.returns is not None
    assert batch.critic_shard.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    other = replace(batch, **{name: value.clone() for name, value in batch.tensors().items()})
    assert other.returns is not None
    other.returns[1::2] += 3.0
    first.critic.update(batch, GROUP)
    second.critic.update(other, GROUP)
    same = zip(first.critic.models[0].parameters(), second.critic.models[0].parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in same)
    assert not torch.equal(first.critic.models[1].head.bias, second.critic.models[1].head.bias)


def test_asyppo_masks_advantages_and_the_entropy_bonus_by_disagreement(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.critic.count=2", "algorithm.entropy_coef=0.01")
    assert learner.critic is not None
    torch.nn.init.normal_(learner.critic.models[1].head.weight)  # the critics disagree
    batch = scored_batch(learner)
    mask = batch.response_mask.bool()
    tokens = int(mask.sum())
    keep, entropy_weights, advantages, spread = (
        batch.advantage_keep,
        batch.entropy_weights,
        batch.advantages,
        batch.value_std,
    )
    assert keep is not None and entropy_weights is not None and advantages is not None and spread is not None
    assert int((keep[mask] == 0).sum()) == int(0.2 * tokens)
    assert int((entropy_weights[mask] == 0).sum()) == int(0.2 * tokens)
    masked = (keep == 0) & mask
    assert torch.all(advantages[masked] == 0)
    lowest = spread[masked].max()
    assert torch.all(spread[mask & ~masked] >= lowest)
    metrics = learner.update(batch, GROUP)
    assert metrics["critic/advantage_masked_frac"] == pytest.approx(int(0.2 * tokens) / tokens)
    assert metrics["critic/value_std_mean"] > 0
    with_bonus = metrics["loss/entropy"]
    batch.entropy_weights = torch.zeros_like(batch.response_mask)
    assert learner.update(batch, GROUP)["loss/entropy"] == 0.0 and with_bonus < 0
