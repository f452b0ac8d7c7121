"""The judge inside the sandbox: compile the program once, then run each test in a forked child.

This file runs under the sandbox's own interpreter with `-I -S` (no site, no user paths), so it uses the
standard library only and must not import reasonrl. The host passes the job as JSON on fd 0 and reads one JSON
line per event from fd 1: `{"ready": true}` once the judge is set up (anything failing before it is the
sandbox's fault, anything after it the program's), one line per test, then `{"done": true}`.

Why a fork per test rather than a fresh interpreter: the interpreter's start-up is most of a short test's
cost, and a forked child still gets its own file descriptors, so `sys.stdin.buffer`, `open(0)` and
`os.write(1, ...)` behave as under a real judge (an `exec` in this process would not). Each child gets fresh
globals, its own stdin/stdout files in the sandbox's tmpfs, and its own CPU and memory limits; after each test
every other process in the sandbox is killed and the scratch directory emptied, so nothing a test leaves
behind reaches the next one.

Expected outputs never come here: a stdin test's output and a call test's value (its `repr`, only for plain
built-in values) go back to the host, which compares.

The value channel is sealed against the program that shares the test's process: the child marshals the value
(C code that refuses anything but exact built-in types) behind a random per-test seal, with `marshal.dumps`,
`os.write` and the seal held in its own frame's locals from before the program ran; this judge, which the
program cannot reach (not dumpable, another process), checks the seal and rebuilds the `repr`. So writing to
the channel, exiting early, or patching this module, `marshal` or `builtins` forges nothing. What is left is
a program that reads the judge's frame from inside (`sys._getframe`, `ctypes`) to learn the seal: it would
still have to produce the expected values, which never enter the sandbox.
"""

import builtins
import contextlib
import ctypes
import json
import marshal
import os
import resource
import select
import shutil
import signal
import sys
import time

PLAIN_SCALARS = (int, float, complex, bool, str, bytes, type(None))
PLAIN_CONTAINERS = (list, tuple, set, frozenset, dict)
MAX_DEPTH = 64
VALUE_FD = 3


def main() -> None:
    job = json.loads(_read_fd(0))
    limits = job["limits"]
    _quiet_stdin()
    _limit(resource.RLIMIT_NOFILE, limits["open_files"])
    _limit(resource.RLIMIT_FSIZE, limits["file_size_bytes"])
    _limit(resource.RLIMIT_CORE, 0)
    if limits.get("processes"):
        _limit(resource.RLIMIT_NPROC, limits["processes"])
    # Not dumpable: a test's process, same uid, cannot open this judge's /proc/PID/mem or fds.
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    _emit({"ready": True})
    try:
        setup = compile(job.get("setup", ""), "setup.py", "exec")
        program = compile(job["program"], "solution.py", "exec")
        checks = [_compile_test(test) for test in job["tests"]]
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        detail = f"{type(exc).__name__}: {exc}"[:500]
        for index in range(len(job["tests"])):
            _emit({"i": index, "status": "ce", "detail": detail})
        _emit({"done": True})
        return
    stopped = False
    for index, (test, check) in enumerate(zip(job["tests"], checks, strict=True)):
        if stopped:
            _emit({"i": index, "status": "skipped", "detail": "an earlier test ran out of time"})
            continue
        result = _run_test(job, setup, program, test, check, limits)
        result["i"] = index
        _emit(result)
        stopped = result["status"] == "tle"
    _emit({"done": True})


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _quiet_stdin() -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _limit(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def _emit(event: dict) -> None:
    os.write(1, (json.dumps(event) + "\n").encode())


def _compile_test(test: dict):
    if test["kind"] == "call":
        return compile(test["expression"], "test.py", "eval")
    if test["kind"] == "assert":
        return compile(test["code"], "test.py", "exec")
    return None


def _run_test(job: dict, setup, program, test: dict, check, limits: dict) -> dict:
    stdin_path, out_path, err_path, value_path = (f"{job['scratch']}/{name}" for name in ("in", "out", "err", "value"))
    with open(stdin_path, "wb") as handle:
        handle.write(test.get("stdin", "").encode())
    for path in (out_path, err_path, value_path):
        open(path, "wb").close()
    seal = os.urandom(16)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the test's process: never returns
        _child(job, setup, program, test, check, limits, (stdin_path, out_path, err_path, value_path), seal)
    timed_out = not _wait_for(pid, limits["time_seconds"])
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    _kill_others(job["pid_namespace"], pid)
    _clear_scratch(job["scratch"], {os.path.basename(p) for p in (stdin_path, out_path, err_path, value_path)})
    seconds = time.monotonic() - start
    output, truncated = _read(out_path, limits["output_bytes"])
    errors, _ = _read(err_path, 2000)
    result = {"seconds": round(seconds, 4), "output": output, "detail": errors[-500:]}
    if test["kind"] != "stdin":
        result["value"] = _unseal(value_path, seal, test["kind"], limits["output_bytes"])
    if timed_out or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU):
        result["status"] = "tle"
    elif truncated:
        result["status"] = "ole"
    elif os.WIFSIGNALED(status):
        result["status"] = "rte"
        result["detail"] = f"killed by signal {os.WTERMSIG(status)}"
    elif os.WEXITSTATUS(status) != 0:
        result["status"] = "mle" if "MemoryError" in errors else "rte"
    else:
        result["status"] = "ok"
    return result


def _wait_for(pid: int, seconds: float) -> bool:
    """Whether the child exited within `seconds` of wall time (a pidfd: no signals, no polling loop)."""
    fd = os.pidfd_open(pid)
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def _kill_others(pid_namespace: bool, child: int) -> None:
    """Kill every process the test left: in our own PID namespace that is everything but us and its init;
    without one (the unsafe tier) only the test's process group can be reached safely."""
    if pid_namespace:
        me = os.getpid()
        for _ in range(50):  # a fork bomb may fork between two kills: repeat until only init and we are left
            if not any(name.isdigit() and int(name) not in (1, me) for name in os.listdir("/proc")):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            while True:  # the test's own process is reaped already; orphans went to the namespace's init
                try:
                    if os.waitpid(-1, os.WNOHANG) == (0, 0):
                        break
                except ChildProcessError:
                    break
            time.sleep(0.001)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)


def _unseal(path: str, seal: bytes, kind: str, limit: int) -> str:
    """The value the judge's code in the child wrote: a call test's `repr` (or a not-plain marker), "passed"
    for an assert test; empty when the program wrote the channel itself or nothing was written."""
    with open(path, "rb") as handle:
        data = handle.read(limit + len(seal) + 1)
    if not data.startswith(seal) or len(data) > limit + len(seal):
        return ""
    body = data[len(seal) :]
    if body == b"\0":
        return "<not a plain value>"
    try:
        value = marshal.loads(body)
        if kind == "assert":
            return "passed" if value is True else ""
        return _plain_repr(value)
    except (ValueError, EOFError, TypeError, RecursionError, MemoryError):
        return "<not a plain value>"


def _clear_scratch(scratch: str, keep: set[str]) -> None:
    """Remove what the test wrote to the scratch directory: files left behind must not reach the next test,
    nor fill the tmpfs that the judge's own files live in."""
    for entry in os.scandir(scratch):
        if entry.name in keep:
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def _read(path: str, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _child(job: dict, setup, program, test: dict, check, limits: dict, paths: tuple, seal: bytes) -> None:
    code = 1
    # Held as locals from before the program runs: patching `marshal`, `os` or this module cannot reach them.
    dumps, write, kind = marshal.dumps, os.write, test["kind"]
    try:
        os.setpgid(0, 0)
        for fd, (path, flags) in enumerate(
            ((paths[0], os.O_RDONLY), (paths[1], os.O_WRONLY), (paths[2], os.O_WRONLY), (paths[3], os.O_WRONLY))
        ):
            opened = os.open(path, flags)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
        os.closerange(VALUE_FD + 1, limits["open_files"])
        cpu = int(limits["time_seconds"]) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        memory = limits["memory_bytes"]
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        # Replaced for the rest of the process's short life, never closed: the streams of the test's program.
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        builtins.exit = builtins.quit = sys.exit  # `-S` leaves them out; programs call them
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        # The test's own code runs with the builtins as they were before the program: a program that empties
        # `range` or makes `all` always true must not turn a loop of asserts into a pass.
        pristine = dict(builtins.__dict__)
        try:
            exec(setup, namespace)
            exec(program, namespace)
            if kind != "stdin":
                namespace["candidate"] = namespace.get(job.get("entry_point") or "")
                namespace = {**namespace, "__builtins__": pristine}
            if kind == "call":
                value = eval(check, namespace)
                try:
                    # marshal refuses subclasses and objects; their `__eq__` or `__repr__` must never count.
                    write(VALUE_FD, seal + dumps(value))
                except ValueError:
                    write(VALUE_FD, seal + b"\0")
            elif kind == "assert":
                exec(check, namespace)
                write(VALUE_FD, seal + dumps(True))
            code = 0
        except SystemExit as exc:
            # A call or assert test that exits has produced no value: the host scores it as failed.
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:
            sys.stderr.write(f"{type(exc).__name__}: {exc}"[:1000])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code & 0xFF)


def _plain_repr(value, depth: int = 0) -> str:
    """`repr(value)` when it is built from plain built-in types only (exact types: a subclass may redefine
    `__eq__` or `__repr__`); otherwise a marker the host cannot mistake for a value."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return repr(value)
    if kind in PLAIN_CONTAINERS:
        items = value.items() if kind is dict else ((item, None) for item in value)
        for key, item in items:
            _plain_repr(key, depth + 1)
            if kind is dict:
                _plain_repr(item, depth + 1)
        return repr(value)
    return f"<not a plain value: {kind.__name__}>"


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
