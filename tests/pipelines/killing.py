"""Kill a real `reasonrl train` process with SIGKILL once it has written a given checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_after_checkpoint(recipe: Path, run_dir: Path, step: int = 3, timeout: float = 300.0) -> None:
    """Start `reasonrl train RECIPE --run-dir RUN_DIR`, SIGKILL it as soon as checkpoint `step` exists, and
    check it died before finishing (no summary): what a resume test then has to recover from."""
    command = [sys.executable, "-m", "reasonrl", "train", str(recipe), "--run-dir", str(run_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + timeout
    while not (run_dir / "checkpoints" / f"step_{step:06d}").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"no checkpoint at step {step} within {timeout} s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "summary.json").exists()
