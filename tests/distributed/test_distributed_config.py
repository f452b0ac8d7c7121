"""The `distributed` section: Ray options need `backend: ray`, and a Ray run builds the engines it can."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reasonrl.config import ConfigError, load_config


def message_of(sets: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(None, sets)
    return str(caught.value)


def test_ray_options_without_the_ray_backend_are_errors() -> None:
    message = message_of(["distributed.engine.replicas=2", "distributed.max_restarts=5"])
    assert "distributed.engine, distributed.max_restarts act only with distributed.backend: ray" in message


def test_the_ray_backend_takes_no_local_placement() -> None:
    message = message_of(["distributed.backend=ray", "rollout.placement=thread"])
    assert "rollout.placement 'thread' places the engine in or beside this process" in message
    assert "Leave rollout.placement: auto" in message


def test_unknown_keys_and_values_are_errors() -> None:
    assert "engin" in message_of(["distributed.backend=ray", "distributed.engin.replicas=2"])
    assert "distributed.backend" in message_of(["distributed.backend=slurm"])
    assert "replicas" in message_of(["distributed.backend=ray", "distributed.engine.replicas=0"])


def test_a_ray_config_loads_with_its_roles() -> None:
    config = load_config(
        None,
        [
            "distributed.backend=ray",
            "distributed.engine.replicas=2",
            "distributed.engine.gpus=0.5",
            "distributed.reward.replicas=3",
            "distributed.address=auto",
        ],
    )
    assert (config.distributed.engine.replicas, config.distributed.engine.gpus) == (2, 0.5)
    assert config.distributed.reward.replicas == 3 and config.distributed.address == "auto"


def test_the_local_backend_never_imports_ray() -> None:
    """Ray stays optional: the pipelines, the CLI and a local run's backend import nothing of it."""
    code = (
        "import sys\n"
        "import reasonrl.cli.app, reasonrl.pipelines.sync, reasonrl.pipelines.async_rl\n"
        "from reasonrl.config import load_config\n"
        "from reasonrl.distributed import backend_for\n"
        "backend_for(load_config(None, []))\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_without_ray_installed_the_error_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if it were not installed\n"
        "from reasonrl.config import load_config\n"
        "from reasonrl.distributed import backend_for\n"
        "try:\n"
        "    backend_for(load_config(None, ['distributed.backend=ray']))\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert "distributed.backend: ray needs the `ray` package" in done.stdout, done.stderr[-2000:]
    assert "pip install -e .[ray]" in done.stdout and "distributed.backend: local" in done.stdout
