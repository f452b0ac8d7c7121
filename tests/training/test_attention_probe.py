"""The attention probe pass: the probe layers' weights equal eager attention's, the model's own attention
setup is left as it was, and credit weights reach the advantages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from reasonrl.config.schema import AlgorithmConfig, AttentionCreditConfig
from reasonrl.training.attention_probe import probe_attention, probe_layers
from reasonrl.training.batch import Batch
from reasonrl.training.objective import attention_credit, compute_advantages


def test_default_probe_layers_are_the_middle_third() -> None:
    assert probe_layers(4, []) == [1, 2]
    assert probe_layers(28, []) == [9, 11, 14, 16, 18]
    assert probe_layers(1, []) == [0]
    assert probe_layers(4, [3, 0, 3]) == [0, 3]
    with pytest.raises(ValueError, match="the model has 4 layers"):
        probe_layers(4, [4])


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_probe_weights_match_eager_attention_and_leave_the_model_alone(
    tiny_model_dir: Path, implementation: str
) -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=implementation)
    batch = Batch.from_ids([[5, 6, 7, 8], [9, 10, 11]], [[12, 13, 14], [15, 16]])  # row 1 is padded
    ids = torch.tensor([[5, 6, 7, 8, 12, 13, 14]])
    before = model(input_ids=ids).logits
    maps = probe_attention(model, batch, pad_id=0, layers=[], token_budget=10_000)
    assert [tuple(m.shape) for m in maps] == [(4, 7, 7), (4, 5, 5)]  # 2 probe layers x 2 heads each
    eager = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager")
    for row, sequence in enumerate([ids, torch.tensor([[9, 10, 11, 15, 16]])]):
        attentions = eager(input_ids=sequence, output_attentions=True).attentions
        torch.testing.assert_close(maps[row], torch.cat([attentions[1][0], attentions[2][0]]), atol=1e-6, rtol=0)
    assert model.config._attn_implementation == implementation
    assert all(layer.self_attn.config is model.config for layer in model.model.layers)
    torch.testing.assert_close(model(input_ids=ids).logits, before)


def test_credit_weights_scale_the_advantages() -> None:
    batch = Batch.from_ids([[1, 2], [1, 2]], [[3, 4, 5], [6]])
    attention = [torch.eye(5).expand(2, 5, 5), torch.eye(3).expand(2, 3, 3)]
    config = AttentionCreditConfig(enabled=True, strategy="preplan", top_share=0.5, future_near=1, future_far=2)
    weights, metrics = attention_credit(config, batch, attention)
    # identity attention: WAAD 0 everywhere, so the jumps tie and the first token of the first row wins
    torch.testing.assert_close(weights, torch.tensor([[1.5, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    assert metrics == {"credit/weight_mean": 4.5 / 4, "credit/amplified_share": 0.25}
    batch.credit_weights = weights
    advantages, _ = compute_advantages(AlgorithmConfig(), [1.0, 0.0], batch, group_size=2)
    plain = 1 / 2**0.5  # (1 - 0.5) / std([1, 0]) with Bessel's correction
    torch.testing.assert_close(advantages, torch.tensor([[1.5 * plain, plain, plain], [-plain, 0.0, 0.0]]))
