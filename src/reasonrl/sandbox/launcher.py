"""Running one program against its tests in one sandbox: `run_program`.

Launch hygiene, each point measured to matter (see docs/code.md): no `preexec_fn` (the uid is set by
Popen's C code); the sandbox's output goes to files, not pipes, since an orphan holding a pipe would hang the
reader; the sandbox gets its own session and is killed as a group on the outer timeout, and bubblewrap's
`--die-with-parent` plus its PID namespace take everything inside with it; and this process is a child
subreaper that reaps the `bwrap` processes bubblewrap leaves orphaned on every run (unreaped, they pile up
and exhaust the uid's process limit).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

from reasonrl.rewards.excluded import RewardUnavailable
from reasonrl.sandbox.isolation import Isolation, as_uid, isolation, seccomp_fd
from reasonrl.sandbox.jobs import Limits, Test, TestOutcome

START_SECONDS = 10.0
"""Allowance for the sandbox to start, on top of the tests' own limits (it takes ~30 ms when the machine is
idle, seconds when it is saturated)."""
SCRATCH = "/sandbox"
PR_SET_CHILD_SUBREAPER = 36


class SandboxError(RewardUnavailable):
    """The sandbox itself failed for one solution (it did not start): not the program's fault, so the sample
    is excluded rather than scored 0."""


def sandbox_command(found: Isolation, fd: int | None, arguments: Sequence[str]) -> list[str]:
    """The bubblewrap command line running the sandbox's interpreter with `arguments`."""
    command = [
        found.binary or "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = f"/{name}"
        if os.path.islink(target):
            command += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            command += ["--ro-bind", target, target]
    prefix = os.path.dirname(os.path.dirname(found.python))
    if not prefix.startswith("/usr"):
        command += ["--ro-bind", prefix, prefix]
    scratch_bytes = str(Limits().scratch_mb << 20)
    # bubblewrap's root and /dev are tmpfs mounts without a size limit (half the host's memory) and writable by
    # the sandbox's uid: both go read-only once set up, and /dev/shm (multiprocessing's semaphores) gets a
    # bounded tmpfs of its own, or one program could fill the host's memory with files.
    command += ["--proc", "/proc", "--dev", "/dev", "--size", scratch_bytes, "--tmpfs", "/dev/shm"]
    command += ["--size", scratch_bytes, "--tmpfs", SCRATCH, "--symlink", SCRATCH, "/tmp"]
    command += ["--ro-bind", os.path.join(found.workdir, "runner.py"), "/judge/runner.py", "--chdir", SCRATCH]
    command += ["--remount-ro", "/dev", "--remount-ro", "/"]
    command += ["--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    command += ["--setenv", "HOME", SCRATCH]
    if fd is not None:
        command += ["--seccomp", str(fd)]
    return [*command, "--", found.python, "-I", "-S", "-B", *arguments]


def run_program(
    program: str,
    tests: Sequence[Test],
    limits: Limits | None = None,
    *,
    setup: str = "",
    entry_point: str = "",
    python: str | None = None,
    allow_unsafe: bool = False,
) -> list[TestOutcome]:
    """Run `setup` then `program` once per test, each test in its own forked process, all in one sandbox;
    one `TestOutcome` per test. Raises `SandboxUnavailable` when no isolation works (and `allow_unsafe` is
    false) and `SandboxError` when this sandbox failed to start."""
    limits = limits or Limits()
    found = isolation(python, allow_unsafe=allow_unsafe)
    _become_subreaper()
    processes = limits.processes if found.uid is not None or found.backend == "bwrap" else None
    scratch = SCRATCH if found.safe else tempfile.mkdtemp(prefix="reasonrl-scratch-")
    job = {
        "program": program,
        "setup": setup,
        "entry_point": entry_point,
        "tests": [test.to_json() for test in tests],
        "limits": limits.for_runner(processes if found.uid is not None else None),
        "scratch": scratch,
        "pid_namespace": found.safe,
    }
    timeout = START_SECONDS + len(tests) * (limits.time_seconds + 0.5)
    try:
        if not found.safe and found.uid is not None:
            os.chown(scratch, found.uid, found.uid)
        events, stderr, timed_out = _launch(found, job, timeout, scratch)
    finally:
        if not found.safe:
            shutil.rmtree(scratch, ignore_errors=True)
        _reap_orphans()
    return _outcomes(events, stderr, timed_out, len(tests))


def _launch(found: Isolation, job: dict[str, Any], timeout: float, scratch: str) -> tuple[list[dict], str, bool]:
    with (
        tempfile.TemporaryFile() as job_file,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        seccomp_fd(found) as fd,
    ):
        job_file.write(json.dumps(job).encode())
        job_file.seek(0)
        if found.safe:
            command = sandbox_command(found, fd, ["/judge/runner.py"])
        else:
            command = [found.python, "-I", "-S", "-B", os.path.join(found.workdir, "runner.py")]
        process = subprocess.Popen(
            command,
            stdin=job_file,
            stdout=out,
            stderr=err,
            cwd=None if found.safe else scratch,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
            pass_fds=() if fd is None else (fd,),
            **as_uid(found.uid),
        )
        timed_out = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # on the timeout, and on a reward deadline or Ctrl-C interrupting the wait
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        out.seek(0)
        err.seek(0)
        cap = 64 * 1024 + len(job["tests"]) * (2 * job["limits"]["output_bytes"] * 6 + 4096)
        lines = out.read(cap).decode("utf-8", "replace").splitlines()
        stderr = err.read(4000).decode("utf-8", "replace")
    events = []
    for line in lines:
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events, stderr, timed_out


def _outcomes(events: list[dict], stderr: str, timed_out: bool, count: int) -> list[TestOutcome]:
    if not events or not events[0].get("ready"):
        raise SandboxError(
            "the sandbox did not start"
            + (" before its time ran out" if timed_out else "")
            + (f": {stderr.strip()[-500:]}" if stderr.strip() else "")
        )
    outcomes: list[TestOutcome | None] = [None] * count
    for event in events[1:]:
        index = event.get("i")
        if isinstance(index, int) and 0 <= index < count and outcomes[index] is None:
            outcomes[index] = TestOutcome(
                status=event.get("status", "rte"),
                output=str(event.get("output", "")),
                value=str(event.get("value", "")),
                seconds=float(event.get("seconds", 0.0)),
                detail=str(event.get("detail", "")),
            )
    # The judge started but stopped reporting: the program killed it, or the whole sandbox ran out of time.
    missing = TestOutcome(
        "tle" if timed_out else "rte",
        detail="the sandbox ran out of time" if timed_out else "the program killed the judge before it reported",
    )
    return [outcome or missing for outcome in outcomes]


_subreaper_lock = threading.Lock()
_subreaper_pids: set[int] = set()


def _become_subreaper() -> None:
    """Once per process (a forked child does not inherit the attribute)."""
    with _subreaper_lock:
        if os.getpid() not in _subreaper_pids:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            _subreaper_pids.add(os.getpid())


def _reap_orphans() -> None:
    """Reap the `bwrap` processes re-parented to us; never another child (its owner waits for it).

    They are bubblewrap's init of a sandbox's PID namespace, whose outer `bwrap` has exited: the init dies of
    `--die-with-parent`'s signal a few milliseconds later, so one still running is killed and waited for here,
    or it would stay behind as a zombie until the next launch."""
    me = str(os.getpid())
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        comm_end = stat.rfind(")")
        comm = stat[stat.find("(") + 1 : comm_end]
        state, parent = stat[comm_end + 2 :].split(" ", 2)[:2]
        if parent != me or comm != "bwrap":
            continue
        if state != "Z" and not _namespace_init(name):
            continue  # the outer `bwrap` of a launch on another thread
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            if state != "Z":
                os.kill(int(name), signal.SIGKILL)
            os.waitpid(int(name), 0)


def _namespace_init(pid: str) -> bool:
    """Whether the process has a pid in a nested PID namespace too: bubblewrap's init, never an outer `bwrap`."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            return any(line.startswith(b"NSpid:") and len(line.split()) > 2 for line in handle)
    except OSError:
        return False
