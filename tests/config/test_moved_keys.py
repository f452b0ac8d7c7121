"""A key that moved or was removed is refused with a message naming its new place, or why it went."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.config import ConfigError, load_config
from reasonrl.config import errors as config_errors
from reasonrl.config.errors import MOVED_KEYS, REMOVED_KEYS


def message_of(path: Path | None, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides or [])
    return str(caught.value)


def test_a_renamed_section_in_yaml_names_the_new_key(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  warmup:\n    steps: 5\n")
    message = message_of(config)
    assert "run.yaml" in message
    assert "key 'train.warmup' was renamed to 'train.sft'; write train.sft" in message
    assert "unknown key" not in message


def test_a_renamed_key_in_an_override_names_the_new_key() -> None:
    message = message_of(None, ["train.warmup.steps=5"])
    assert "key 'train.warmup' was renamed to 'train.sft'; write train.sft" in message
    message = message_of(None, ["algorithm.advantage=gae", "algorithm.critic.warmup_steps=2"])
    assert (
        "key 'algorithm.critic.warmup_steps' was renamed to 'algorithm.critic.critic_only_steps'; "
        "write algorithm.critic.critic_only_steps"
    ) in message


def test_the_new_keys_load() -> None:
    config = load_config(None, ["train.sft.steps=5", "algorithm.advantage=gae", "algorithm.critic.critic_only_steps=2"])
    assert config.train.sft.steps == 5
    assert config.algorithm.critic.critic_only_steps == 2


@pytest.mark.parametrize("key", ["backend.kind=ray", "backend.ray_address=localhost:6379"])
def test_a_removed_key_says_it_was_removed_and_why(key: str) -> None:
    path = key.partition("=")[0]
    message = message_of(None, [key])
    assert f"key {path!r} was removed: it was validated but did nothing" in message


def test_a_key_under_a_moved_section_maps_onto_the_new_section(monkeypatch: pytest.MonkeyPatch) -> None:
    # A moved section whose old name is still a mapping: the rest of the path carries over.
    monkeypatch.setitem(config_errors.MOVED_KEYS, "rollout.old_section", "rollout.new_section")
    message = message_of(None, ["rollout.old_section.x=1"])
    assert "key 'rollout.old_section' was renamed to 'rollout.new_section'" in message
    assert config_errors._retired("rollout.old_section.x") == (
        "key 'rollout.old_section.x' was renamed to 'rollout.new_section.x'; write rollout.new_section.x"
    )


def test_old_keys_do_not_shadow_valid_keys() -> None:
    """Every old key must be gone from the schema, or the table would never be consulted for it."""
    from reasonrl.config import RunConfig

    for old in [*MOVED_KEYS, *REMOVED_KEYS]:
        *sections, last = old.split(".")
        parent = config_errors._model_at(RunConfig, sections)
        assert parent is None or last not in parent.model_fields, old
