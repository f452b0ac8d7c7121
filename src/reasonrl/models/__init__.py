"""Models built from scratch (tokenizer + Qwen2 config) for tests, the demo and quick experiments."""

from reasonrl.models.builder import PRESETS, ModelPreset, init_model, parameter_count

__all__ = ["PRESETS", "ModelPreset", "init_model", "parameter_count"]
