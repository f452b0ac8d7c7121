"""What a sandboxed run is asked to do and what it reports: limits, tests and per-test outcomes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

TestKind = Literal["stdin", "call", "assert"]
Status = Literal["ok", "wa", "rte", "tle", "mle", "ole", "ce", "skipped"]
"""ok: ran to the end (whether its output is right is the host's call); rte: raised, exited non-zero or was
killed; tle: wall or CPU time ran out (later tests are skipped: one slow program costs one timeout); mle:
MemoryError; ole: printed more than the output limit; ce: the program does not compile; skipped: not run."""


@dataclass(frozen=True)
class Limits:
    """Per-solution limits. `time_seconds` is each test's wall-clock limit (its CPU limit is one second more);
    the others bound every process of the sandbox (memory per process, files per file, processes per uid)."""

    time_seconds: float = 2.0
    memory_mb: int = 1024
    file_size_mb: int = 16
    scratch_mb: int = 64
    processes: int = 64
    open_files: int = 256
    output_kb: int = 64

    def for_runner(self, processes: int | None) -> dict[str, Any]:
        """The limits as the in-sandbox runner reads them (bytes; `processes` None = not enforced)."""
        return {
            "time_seconds": self.time_seconds,
            "memory_bytes": self.memory_mb << 20,
            "file_size_bytes": self.file_size_mb << 20,
            "open_files": self.open_files,
            "output_bytes": self.output_kb << 10,
            "processes": processes,
        }


@dataclass(frozen=True)
class Test:
    """One test of a program. stdin: run the program with `stdin`, its stdout is the output. call: run the
    program, then evaluate `expression` (which may name the function as `candidate`); its `repr` comes back
    when it is a plain built-in value. assert: run the program, then `code` (trusted test code with its own
    asserts); passing is only the absence of an error, so the host marks it a weak check."""

    kind: TestKind
    stdin: str = ""
    expression: str = ""
    code: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TestOutcome:
    """What one test did. `output`: its stdout (up to the output limit); `value`: for call tests the `repr`
    of the result, or a `<not a plain value ...>` marker, or empty when the program produced none."""

    status: Status
    output: str = ""
    value: str = ""
    seconds: float = 0.0
    detail: str = ""
