"""Two Ray nodes on one machine: engines go where the placement says and survive losing their node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(300)]


def test_an_engine_is_placed_on_the_second_node_and_survives_removing_it(tiny_model_dir: Path) -> None:
    script = Path(__file__).with_name("two_nodes.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "placed_on_rollout_node": True,
        "moved_to_second_node": True,
        "restarts": 1,
        "same_tokens": True,
        "version": 3,
    }
