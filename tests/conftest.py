"""Shared fixtures: a built-in tiny model folder, built once per session in a temporary cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built-in models are cached under $REASONRL_CACHE; tests never touch the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("REASONRL_CACHE", str(tmp_path_factory.mktemp("reasonrl-cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_model_dir(_isolated_cache: None) -> Path:
    from reasonrl.models.resolve import resolve_model_path

    return resolve_model_path("builtin:tiny")
