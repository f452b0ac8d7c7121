"""The learner: exact micro-batch accumulation, policy improvement, non-finite steps skipped, LoRA, KL."""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.config import load_config
from reasonrl.training.batch import Batch, micro_batches
from reasonrl.training.learner import Learner
from reasonrl.training.objective import compute_advantages

GROUP = 4


def make_learner(folder: Path, *overrides: str) -> Learner:
    config = load_config(None, ["rollout.group_size=4", "rollout.batch_size=8", "train.lr=0.01", *overrides])
    torch.manual_seed(0)
    return Learner(folder, config.model, config.train, config.algorithm, torch.device("cpu"), max_new_tokens=8)


def scored_batch(learner: Learner) -> Batch:
    """Two prompts x 4 responses of different lengths; in each group one response is rewarded."""
    tok = learner.tokenizer
    prompts = [tok("3+4=")["input_ids"], tok("9-2=")["input_ids"]]
    responses = [tok(t)["input_ids"] + [tok.eos_token_id] for t in ("7", "8", "12", "6", "7", "11", "1", "70")]
    batch = Batch.from_ids([prompts[i // GROUP] for i in range(8)], responses)
    batch.old_logprobs = learner.policy_logprobs(batch)
    batch.behaviour_logprobs = batch.old_logprobs.clone()
    rewards = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    batch.advantages, _ = compute_advantages(learner.algorithm, rewards, batch, GROUP)
    return batch


def test_micro_batches_respect_the_token_budget_and_keep_every_row(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir)
    batch = scored_batch(learner)
    groups = micro_batches(batch, token_budget=12)
    assert sorted(r for g in groups for r in g) == list(range(8))
    lengths = [len(p) + len(r) for p, r in zip(batch.prompt_ids, batch.response_ids, strict=True)]
    assert all(len(g) * max(lengths[r] for r in g) <= 12 or len(g) == 1 for g in groups)


def test_accumulated_micro_batches_give_the_full_batch_update(tiny_model_dir: Path) -> None:
    whole = make_learner(tiny_model_dir, "train.micro_batch_tokens=100000")
    split = make_learner(tiny_model_dir, "train.micro_batch_tokens=8")
    batch = scored_batch(whole)
    metrics_whole = whole.update(batch, GROUP)
    metrics_split = split.update(batch, GROUP)
    # Compare gradients (left in .grad after the step): Adam's first step divides g by |g| + eps, which
    # amplifies float rounding on near-zero gradients, so parameters are a poor witness of equality.
    for a, b in zip(whole.model.parameters(), split.model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-7, rtol=1e-4)
    assert metrics_whole["loss/policy"] == pytest.approx(metrics_split["loss/policy"], abs=1e-6)
    assert metrics_whole["policy/ratio_max"] == pytest.approx(1.0, abs=1e-6)


def test_an_update_ascends_the_policy_gradient_objective(tiny_model_dir: Path) -> None:
    """A small step along the gradient must raise sum_t A_t log pi(y_t) (first order), and one rewarded
    response must gain probability relative to its group."""
    learner = make_learner(tiny_model_dir, "train.lr=0.0005")
    batch = scored_batch(learner)
    advantages, mask = batch.advantages, batch.response_mask
    assert advantages is not None

    def objective(logprobs: torch.Tensor) -> float:
        return float((advantages * logprobs * mask).sum())

    before = batch.old_logprobs
    learner.update(batch, GROUP)
    after = learner.policy_logprobs(batch)
    assert objective(after) > objective(before)
    gain = ((after - before) * mask).sum(-1)
    assert gain[0] > gain[1:4].max() and gain[4] > gain[5:8].max()


def test_nonfinite_loss_skips_the_step_and_counts(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir)
    batch = scored_batch(learner)
    assert batch.advantages is not None
    batch.advantages[0, 0] = float("nan")
    weights = copy.deepcopy(learner.model.state_dict())
    metrics = learner.update(batch, GROUP)
    assert metrics["train/skipped_nonfinite"] == 1.0 and learner.nonfinite_in_a_row == 1
    assert all(torch.equal(weights[k], v) for k, v in learner.model.state_dict().items())


def test_reference_model_only_when_a_kl_term_needs_it(tiny_model_dir: Path) -> None:
    assert make_learner(tiny_model_dir).reference is None
    learner = make_learner(tiny_model_dir, "algorithm.kl_coef=0.1")
    assert learner.reference is not None
    batch = scored_batch(learner)
    batch.ref_logprobs = learner.reference_logprobs(batch)
    torch.testing.assert_close(batch.ref_logprobs, batch.old_logprobs)
    metrics = learner.update(batch, GROUP)
    assert metrics["loss/kl"] == pytest.approx(0.0, abs=1e-7)  # policy == reference before the step


def test_lora_trains_only_adapters_and_exports_plain_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    learner = make_learner(tiny_model_dir, "model.lora.enabled=true", "model.lora.r=4", "algorithm.kl_coef=0.05")
    assert learner.reference is None  # the base model with adapters disabled is the reference
    trainable = [n for n, p in learner.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = scored_batch(learner)
    batch.ref_logprobs = learner.reference_logprobs(batch)
    for _ in range(2):
        learner.update(batch, GROUP)
    exported = dict(learner.engine_weights())
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert set(exported) == set(base.state_dict())
    learner.save_model(tmp_path / "model")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    merged_logprobs = learner.policy_logprobs(batch)
    with torch.no_grad():
        reloaded_logits = reloaded(torch.tensor([batch.prompt_ids[0] + batch.response_ids[0]])).logits
    start = len(batch.prompt_ids[0]) - 1
    token = batch.response_ids[0][0]
    assert torch.log_softmax(reloaded_logits[0, start], -1)[token].item() == pytest.approx(
        merged_logprobs[0, 0].item(), abs=1e-5
    )
    assert (tmp_path / "model" / "adapter" / "adapter_model.safetensors").is_file()


def test_epochs_and_mini_batches_each_take_an_optimizer_step(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "train.ppo_epochs=2", "train.mini_batches=2", "train.steps=10")
    batch = scored_batch(learner)
    learner.update(batch, GROUP)
    assert learner.scheduler.last_epoch == 4  # 2 epochs x 2 mini-batches (each a whole group)
    state = learner.optimizer.state[learner.trainable[0]]
    assert int(state["step"]) == 4


def test_bfloat16_policy_trains(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "model.dtype=bfloat16")
    assert next(learner.model.parameters()).dtype == torch.bfloat16
    batch = scored_batch(learner)
    metrics = learner.update(batch, GROUP)
    assert metrics["train/skipped_nonfinite"] == 0.0 and metrics["train/grad_norm"] > 0


def test_single_update_needs_no_separate_old_logprob_pass(tiny_model_dir: Path) -> None:
    """One optimizer step per batch: the update's own detached log-probs are the old ones, exactly."""
    assert not make_learner(tiny_model_dir).needs_old_logprobs
    assert make_learner(tiny_model_dir, "train.ppo_epochs=2").needs_old_logprobs
    with_pass, without_pass = make_learner(tiny_model_dir), make_learner(tiny_model_dir)
    batch = scored_batch(with_pass)
    lean = replace(batch, old_logprobs=None)
    first, second = with_pass.update(batch, GROUP), without_pass.update(lean, GROUP)
    assert second["policy/ratio_max"] == 1.0 and second["policy/clip_frac_high"] == 0.0
    assert first["loss/policy"] == pytest.approx(second["loss/policy"], abs=1e-6)
    for a, b in zip(with_pass.model.parameters(), without_pass.model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-7, rtol=1e-4)


def test_decoupled_cap_reaches_the_loss(tiny_model_dir: Path) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.correction=decoupled", "algorithm.decoupled_cap=2.0")
    batch = scored_batch(learner)
    # The sampler gave row 0's tokens a third of the learner's probability: w = 3 > 2 there, 1 elsewhere.
    assert batch.behaviour_logprobs is not None
    batch.behaviour_logprobs[0] -= math.log(3)
    metrics = learner.update(batch, GROUP)
    mask = batch.response_mask
    assert metrics["policy/behaviour_capped_frac"] == pytest.approx(float(mask[0].sum() / mask.sum()), abs=1e-6)
    assert metrics["policy/behaviour_ratio_max"] == pytest.approx(3.0, rel=1e-5)


def perturb_adapters(learner: Learner) -> None:
    """Adapters as after training: peft starts lora_B at zero, which would make every merge a no-op."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in learner.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


def test_lora_export_leaves_the_bf16_base_bitwise_unchanged_and_equals_peft_merge(tiny_model_dir: Path) -> None:
    """peft's merge/unmerge round trip drifted the bf16 base (28 of 50 tensors after 100 exports, by up to
    0.049); the out-of-place merge writes nothing, and exports what the first merge would have given."""
    learner = make_learner(tiny_model_dir, "model.lora.enabled=true", "model.lora.r=4", "model.dtype=bfloat16")
    perturb_adapters(learner)
    policy = learner.model.get_base_model()
    base = {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_" not in n}
    reference = copy.deepcopy(learner.model)
    reference.merge_adapter()
    expected = {
        n.replace(".base_layer.", "."): t
        for n, t in reference.get_base_model().state_dict().items()
        if "lora_" not in n
    }
    for _ in range(100):
        exported = dict(learner.engine_weights())
    after = dict(policy.named_parameters())
    assert [n for n in base if not torch.equal(base[n], after[n])] == []
    assert exported.keys() == expected.keys()
    assert [n for n in expected if not torch.equal(exported[n], expected[n])] == []
    assert all(t.dtype == torch.bfloat16 for t in exported.values())
    merged_in = [n for n in base if not torch.equal(base[n], exported[n.replace(".base_layer.", ".")])]
    assert len(merged_in) == 28  # every adapted linear layer's weight carries its delta


@pytest.mark.parametrize("variant", [{"use_dora": True}, {"lora_bias": True}])
def test_lora_export_refuses_adapters_it_cannot_merge_out_of_place(
    tiny_model_dir: Path, variant: dict[str, bool]
) -> None:
    from peft import LoraConfig, get_peft_model

    from reasonrl.training.lora import merged_weights

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM", **variant),
    )
    with pytest.raises(ValueError, match=r"cannot merge the LoRA layer .*q_proj.* out of place: .*Export needs plain"):
        next(merged_weights(model.get_base_model()))


def test_prepare_fills_only_the_fields_the_config_needs(tiny_model_dir: Path) -> None:
    rewards = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    timed: list[str] = []

    def timer(name: str) -> contextlib.AbstractContextManager[None]:
        timed.append(name)
        return contextlib.nullcontext()

    plain = make_learner(tiny_model_dir)
    manual = scored_batch(plain)
    assert manual.behaviour_logprobs is not None
    rows = zip(manual.behaviour_logprobs, manual.response_ids, strict=True)
    behaviour = [row[: len(ids)].tolist() for row, ids in rows]
    batch, metrics = plain.prepare(manual.prompt_ids, manual.response_ids, behaviour, rewards, GROUP, timer)
    # One optimizer step and no KL: no pre-update pass, no reference, no critic, no attention credit.
    assert set(batch.tensors()) == {"response_mask", "behaviour_logprobs", "advantages"}
    assert batch.advantages is not None and manual.advantages is not None
    assert torch.equal(batch.advantages, manual.advantages) and "advantage/mean" in metrics
    assert timed == ["logprobs"]
    full = make_learner(tiny_model_dir, "train.ppo_epochs=2", "algorithm.kl_coef=0.1")
    batch, _ = full.prepare(manual.prompt_ids, manual.response_ids, behaviour, rewards, GROUP)
    assert set(batch.tensors()) == {"response_mask", "behaviour_logprobs", "old_logprobs", "ref_logprobs", "advantages"}


def test_select_slices_every_tensor_field_and_fill_refuses_unknown_names(tiny_model_dir: Path) -> None:
    batch = scored_batch(make_learner(tiny_model_dir))
    batch.fill(critic_shard=torch.arange(len(batch)))
    part = batch.select([6, 2])
    width = max(len(batch.response_ids[6]), len(batch.response_ids[2]))
    for name, value in batch.tensors().items():
        sliced = part.tensors()[name]
        expected = value[[6, 2], :width] if value.dim() == 2 else value[[6, 2]]
        assert torch.equal(sliced, expected), name
    with pytest.raises(AttributeError, match="no tensor field"):
        batch.fill(old_logprob=batch.response_mask)


def test_a_checkpoint_without_optimizer_restores_weights_and_restarts_adam(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    learner = make_learner(tiny_model_dir, "algorithm.advantage=gae")
    tok = learner.tokenizer
    prompts = [tok("3+4=")["input_ids"]] * GROUP
    answers = [tok(t)["input_ids"] for t in ("7", "8", "12", "6")]
    batch, _ = learner.prepare(prompts, answers, [[-1.0] * len(a) for a in answers], [1.0, 0.0, 0.0, 0.0], GROUP)
    learner.update(batch, GROUP)
    full, lean = learner.save(tmp_path / "full"), learner.save(tmp_path / "lean", optimizer=False)
    assert "optimizer" in full and "optimizer" in full["critic"]
    assert "optimizer" not in lean and "optimizer" not in lean["critic"]
    resumed = make_learner(tiny_model_dir, "algorithm.advantage=gae")
    resumed.restore(tmp_path / "lean", lean)
    assert not resumed.optimizer.state and not resumed.critic.optimizer.state
    assert resumed.scheduler.state_dict() == learner.scheduler.state_dict()
