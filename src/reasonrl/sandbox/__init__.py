"""Running model-written programs in a sandbox that holds: see `run_program` and docs/code.md."""

from reasonrl.sandbox.isolation import Isolation, SandboxUnavailable, isolation
from reasonrl.sandbox.jobs import Limits, Test, TestOutcome
from reasonrl.sandbox.launcher import SandboxError, run_program

__all__ = [
    "Isolation",
    "Limits",
    "SandboxError",
    "SandboxUnavailable",
    "Test",
    "TestOutcome",
    "isolation",
    "run_program",
]
