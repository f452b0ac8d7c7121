"""Hostile programs against the code sandbox: each is contained, the host is untouched, the verdict is the
expected one, and each row's `stopped_by` names the layer that stops it (the table in docs/code.md, "Hostile
programs: what stops each", says the same).

Every program runs on two stdin tests: "attack" runs the attack, "calm" prints `alive`, so each row also shows
that the sandbox still judges the next test after the attack (or skips it after a timeout, as it should).
Attacks print the errno their attempt failed with, so a row shows which layer refused it. After each row the
host is checked: no process left behind (of the sandbox's uid, or a child of this process), no file at the
canary path outside the scratch directory, the secrets (a 0600 file, a fake run directory, an environment
variable) in no output, no connection on the host's listeners, and a bystander process running as the
sandbox's own uid outside the sandbox still alive.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest

from reasonrl.rewards.registry import get_verifier
from reasonrl.sandbox import Limits, SandboxUnavailable, isolation, run_program
from reasonrl.sandbox import Test as SandboxTest
from reasonrl.sandbox import TestOutcome as Outcome
from reasonrl.sandbox.isolation import as_uid
from reasonrl.sandbox.jobs import Status

try:
    SANDBOX = isolation()
except SandboxUnavailable as exc:  # a machine without user namespaces: nothing here can run
    pytest.skip(f"no sandbox on this machine: {exc}", allow_module_level=True)

LIMITS = Limits(time_seconds=1.0, memory_mb=256)  # the memory rows fill it in well under the time limit
ATTACK_THEN_CALM = [SandboxTest("stdin", stdin="attack\n"), SandboxTest("stdin", stdin="calm\n")]
PRELUDE = '''\
import ctypes, errno, os, signal, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def attempt(action):
    """The errno name `action` failed with, or "done"."""
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return "done"
def libc_errno(result):
    """The errno name of a libc call that returned -1, or "done"."""
    return errno.errorcode[ctypes.get_errno()] if result == -1 else "done"
'''
# What `ls /` shows inside: the sandbox's own mounts, and the host's /lib, /bin, ... links into /usr.
SANDBOX_ROOT = sorted(
    ["dev", "judge", "proc", "sandbox", "tmp", "usr"]
    + [name for name in ("bin", "lib", "lib64", "sbin") if os.path.lexists(f"/{name}")]
)


@dataclass(frozen=True)
class Hostile:
    """One attack. `program` runs on the "attack" test; `$name`s in it are the host's paths and pids
    (`Host.names`). `output` is the attack test's exact stdout (None: not compared); `after` is the calm test's
    status (ok: it printed `alive`)."""

    id: str
    category: str
    program: str
    status: Status
    output: str | None
    stopped_by: str
    after: Status = "ok"
    detail: str | None = None  # the attack test's exact detail, where it says what happened


ESCAPES = [
    # ---- resources -------------------------------------------------------------------------------------------
    Hostile(
        "fork_bomb",
        "resources",
        "while True:\n    os.fork()",
        "rte",
        "",
        "RLIMIT_NPROC (64 processes for the leased uid); the judge then kills all in the PID namespace",
    ),
    Hostile("memory_bomb", "resources", "bytearray(4 << 30)", "mle", "", "RLIMIT_AS (memory_mb)"),
    Hostile(
        "memory_creep",
        "resources",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))",
        "mle",
        "",
        "RLIMIT_AS (memory_mb)",
    ),
    Hostile(
        "busy_loop",
        "resources",
        "while True:\n    pass",
        "tle",
        "",
        "wall-time kill (SIGKILL at time_seconds; RLIMIT_CPU one second later is the backstop); later tests skipped",
        after="skipped",
    ),
    Hostile(
        "sleep",
        "resources",
        "time.sleep(3600)",
        "tle",
        "",
        "wall-time kill (sleeping uses no CPU, so RLIMIT_CPU never fires)",
        after="skipped",
    ),
    Hostile(
        "huge_output",
        "resources",
        "while True:\n    print('x' * 1000)",
        "ole",
        None,
        "output limit (64 KiB read back: ole); RLIMIT_FSIZE stops the output file at 16 MiB",
    ),
    Hostile(
        "disk_fill_one_file",
        "resources",
        "with open('big', 'wb') as handle:\n"
        "    print(attempt(lambda: [handle.write(b'0' * (1 << 20)) for _ in range(64)]))",
        "ok",
        "EFBIG\n",
        "RLIMIT_FSIZE (16 MiB per file)",
    ),
    Hostile(
        "disk_fill_scratch",
        "resources",
        "names = []\n"
        "try:\n"
        "    while True:\n"
        "        names.append(f'fill{len(names)}')\n"
        "        with open(names[-1], 'wb') as handle:\n"
        "            handle.write(b'0' * (8 << 20))\n"
        "except OSError as exc:\n"
        "    os.remove(names[0])  # room to print\n"
        "    print(errno.errorcode[exc.errno])",
        "ok",
        "ENOSPC\n",
        "tmpfs size (64 MiB scratch, in memory, gone with the sandbox); emptied before the next test",
    ),
    Hostile(
        "fill_root_and_dev",
        "resources",
        "print(attempt(lambda: open('/fill', 'wb')), attempt(lambda: open('/dev/fill', 'wb')))",
        "ok",
        "EROFS EROFS\n",
        "read-only remount of bubblewrap's root and /dev (tmpfs mounts as big as half the host's memory)",
    ),
    Hostile(
        "fill_dev_shm",
        "resources",
        "try:\n"
        "    for i in range(1000):\n"
        "        with open(f'/dev/shm/fill{i}', 'wb') as handle:\n"
        "            handle.write(b'0' * (8 << 20))\n"
        "except OSError as exc:\n"
        "    print(errno.errorcode[exc.errno])",
        "ok",
        "ENOSPC\n",
        "tmpfs size (/dev/shm is its own 64 MiB tmpfs)",
    ),
    # ---- host secrets ----------------------------------------------------------------------------------------
    Hostile(
        "read_secret_file",
        "host secrets",
        "print(attempt(lambda: print(open('$secret_file').read())))",
        "ok",
        "ENOENT\n",
        "mount namespace: only /usr, the judge and the scratch tmpfs are mounted",
    ),
    Hostile(
        "read_run_directory",
        "host secrets",
        "print(attempt(lambda: os.listdir('$run_dir')), attempt(lambda: open('$run_dir/config.yaml').read()))",
        "ok",
        "ENOENT ENOENT\n",
        "mount namespace",
    ),
    Hostile(
        "read_other_users_files",
        "host secrets",
        "print(attempt(lambda: open('/etc/shadow').read()), attempt(lambda: os.listdir('/root')),"
        " attempt(lambda: os.listdir('/home')))",
        "ok",
        "ENOENT ENOENT ENOENT\n",
        "mount namespace",
    ),
    Hostile(
        "list_the_root",
        "host secrets",
        "print(sorted(os.listdir('/')))",
        "ok",
        f"{SANDBOX_ROOT}\n",
        "mount namespace: the root holds the sandbox's mounts only",
    ),
    Hostile(
        "environment_variables",
        "host secrets",
        "print(sorted(os.environ), open('/proc/1/environ').read().split(chr(0)))",
        "ok",
        "['HOME', 'LANG', 'PATH', 'PWD'] ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8', '']\n",
        "cleared environment (bwrap --clearenv; the launcher passes bubblewrap PATH and LANG only)",
    ),
    Hostile(
        "host_process_environ",
        "host secrets",
        "print(attempt(lambda: open('/proc/$host_pid/environ').read()))",
        "ok",
        "ENOENT\n",
        "PID namespace: host processes have no /proc entry inside",
    ),
    Hostile(
        "judge_memory_and_fds",
        "host secrets",
        "judge = os.getppid()\n"
        "print(attempt(lambda: open(f'/proc/{judge}/mem', 'rb')), attempt(lambda: os.listdir(f'/proc/{judge}/fd')),"
        " attempt(lambda: open(f'/proc/{judge}/environ').read()))",
        "ok",
        "EACCES EACCES EACCES\n",
        "the judge is not dumpable (PR_SET_DUMPABLE 0)",
    ),
    # ---- writing outside the scratch directory ---------------------------------------------------------------
    Hostile(
        "write_host_path",
        "writing outside scratch",
        "os.makedirs(os.path.dirname('$canary'), exist_ok=True)\n"
        "open('$canary', 'w').write('escaped')\n"
        "print(os.path.realpath('$canary').startswith('/sandbox/'))",
        "ok",
        "True\n",
        "mount namespace: the sandbox's /tmp is its own tmpfs, so the write lands there, not on the host",
    ),
    Hostile(
        "write_usr",
        "writing outside scratch",
        "print(attempt(lambda: open('/usr/lib/reasonrl-canary', 'w')))",
        "ok",
        "EROFS\n",
        "read-only bind of /usr",
    ),
    Hostile(
        "overwrite_the_judge",
        "writing outside scratch",
        "print(attempt(lambda: open('/judge/runner.py', 'w')))",
        "ok",
        "EROFS\n",
        "read-only bind of the judge",
    ),
    Hostile(
        "write_proc_sys",
        "writing outside scratch",
        "print(attempt(lambda: open('/proc/sys/kernel/hostname', 'w').write('pwned')),"
        " attempt(lambda: open('/proc/sys/vm/drop_caches', 'w').write('3')))",
        "ok",
        "EACCES EACCES\n",
        "uid drop: /proc/sys belongs to the host's root",
    ),
    # ---- network ---------------------------------------------------------------------------------------------
    Hostile(
        "tcp_to_host_loopback",
        "network",
        "print(attempt(lambda: socket.create_connection(('127.0.0.1', $port), timeout=1)))",
        "ok",
        "EPERM\n",
        "seccomp filter (socket() of any family but AF_UNIX); the network namespace has only its own loopback",
    ),
    Hostile(
        "tcp_to_the_internet",
        "network",
        "print(attempt(lambda: socket.create_connection(('1.1.1.1', 443), timeout=1)))",
        "ok",
        "EPERM\n",
        "seccomp filter; network namespace (no interface but lo)",
    ),
    Hostile(
        "other_socket_families",
        "network",
        "kinds = [(socket.AF_INET6, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM),\n"
        "         (socket.AF_INET, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW),\n"
        "         (socket.AF_NETLINK, socket.SOCK_RAW)]\n"
        "print([attempt(lambda k=k: socket.socket(*k)) for k in kinds])",
        "ok",
        "['EPERM', 'EPERM', 'EPERM', 'EPERM', 'EPERM']\n",
        "seccomp filter",
    ),
    Hostile(
        "abstract_unix_socket_to_host",
        "network",
        "peer = socket.socket(socket.AF_UNIX)\nprint(attempt(lambda: peer.connect('\\0$abstract')))",
        "ok",
        "ECONNREFUSED\n",
        "network namespace (abstract AF_UNIX names are per namespace; AF_UNIX itself is allowed)",
    ),
    Hostile(
        "unix_socket_file_on_host",
        "network",
        "peer = socket.socket(socket.AF_UNIX)\nprint(attempt(lambda: peer.connect('$unix_path')))",
        "ok",
        "ENOENT\n",
        "mount namespace (the socket's file is not mounted)",
    ),
    # ---- the parent and other processes ----------------------------------------------------------------------
    Hostile(
        "kill_the_host",
        "parent and processes",
        "print(attempt(lambda: os.kill($host_pid, signal.SIGKILL)), attempt(lambda: os.kill($bystander_pid, 9)))",
        "ok",
        "ESRCH ESRCH\n",
        "PID namespace: no host process (not even one of the sandbox's uid) can be named",
    ),
    Hostile(
        "kill_everything",
        "parent and processes",
        "os.kill(-1, signal.SIGKILL)",
        "rte",
        "",
        "PID namespace: kill(-1) reaches the sandbox only; the dead judge fails the rest",
        after="rte",
    ),
    Hostile(
        "kill_the_judge",
        "parent and processes",
        "os.kill(os.getppid(), signal.SIGKILL)",
        "rte",
        "",
        "PID namespace: the parent is the in-sandbox judge; the host fails the tests it never reported",
        after="rte",
    ),
    Hostile(
        "stop_the_judge",
        "parent and processes",
        "os.kill(os.getppid(), signal.SIGSTOP)\ntime.sleep(3600)",
        "tle",
        "",
        "outer wall-time kill: the host kills the sandbox's process group; --die-with-parent and the PID namespace",
        after="tle",
    ),
    Hostile(
        "trace_the_judge",
        "parent and processes",
        "print(libc_errno(libc.ptrace(16, os.getppid(), 0, 0)))",  # PTRACE_ATTACH
        "ok",
        "EPERM\n",
        "seccomp filter (ptrace)",
    ),
    Hostile(
        "read_the_judge_with_process_vm",
        "parent and processes",
        "print(libc_errno(libc.process_vm_readv(os.getppid(), None, 0, None, 0, 0)))",
        "ok",
        "EPERM\n",
        "seccomp filter (process_vm_readv)",
    ),
    # ---- /proc tricks ----------------------------------------------------------------------------------------
    Hostile(
        "proc_lists_processes",
        "/proc tricks",
        "print(sorted(int(name) for name in os.listdir('/proc') if name.isdigit()))",
        "ok",
        "[1, 2, 3]\n",
        "PID namespace with its own /proc: bubblewrap's init, the judge, the test",
    ),
    Hostile(
        "proc_root_links",
        "/proc tricks",
        "print(sorted(os.listdir('/proc/1/root')) == sorted(os.listdir('/')),"
        " attempt(lambda: os.listdir('/proc/2/root')))",
        "ok",
        "True EACCES\n",
        "mount namespace (init's root is the sandbox's root); the judge is not dumpable",
    ),
    Hostile(
        "forge_judge_events_through_init",
        "/proc tricks",
        "print(attempt(lambda: open('/proc/1/fd/1', 'w')), attempt(lambda: open('/proc/1/fd/0').read()))",
        "ok",
        "EACCES EACCES\n",
        "bubblewrap's init is not dumpable: its descriptors (the host's result file, the job) are closed",
    ),
    # ---- orphans ---------------------------------------------------------------------------------------------
    Hostile(
        "double_fork_daemon",
        "orphans",
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.2)\n"
        "        while True:\n"
        "            os.write(1, b'LEAKED\\n')\n"
        "            time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "print('parent gone')",
        "ok",
        "parent gone\n",
        "the judge kills every other process in the PID namespace after each test, so none writes into the next",
    ),
    Hostile(
        "orphan_ignoring_signals",
        "orphans",
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
        "        signal.signal(number, signal.SIG_IGN)\n"
        "    time.sleep(3600)\n"
        "print('left one behind')",
        "ok",
        "left one behind\n",
        "SIGKILL of everything in the PID namespace; bubblewrap's init takes the rest with it",
    ),
    # ---- threads ---------------------------------------------------------------------------------------------
    Hostile(
        "thread_bomb",
        "threads",
        "threads = []\n"
        "try:\n"
        "    while True:\n"
        "        threads.append(threading.Thread(target=time.sleep, args=(3600,), daemon=True))\n"
        "        threads[-1].start()\n"
        "except RuntimeError as exc:\n"
        "    print(type(exc).__name__)",
        "ok",
        "RuntimeError\n",
        "RLIMIT_AS (each thread reserves a stack and a malloc arena), then RLIMIT_NPROC",
    ),
    Hostile(
        "thread_outlives_main",
        "threads",
        "threading.Thread(target=lambda: [None for _ in iter(int, 1)]).start()\nprint('main done')",
        "ok",
        "main done\n",
        "the test's process ends with os._exit, which ends its threads",
    ),
    # ---- signals ---------------------------------------------------------------------------------------------
    Hostile(
        "stop_itself",
        "signals",
        "os.kill(os.getpid(), signal.SIGSTOP)",
        "tle",
        "",
        "wall-time kill (SIGKILL ends a stopped process)",
        after="skipped",
    ),
    Hostile(
        "ignore_signals_and_spin",
        "signals",
        "for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU):\n"
        "    signal.signal(number, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass",
        "tle",
        "",
        "wall-time SIGKILL, which no handler catches",
        after="skipped",
    ),
    Hostile(
        "segfault",
        "signals",
        "ctypes.string_at(0)",
        "rte",
        "",
        "its own process: a crash is the test's rte (killed by signal 11), the judge goes on",
        detail=f"killed by signal {signal.SIGSEGV.value}",
    ),
    # ---- ctypes ----------------------------------------------------------------------------------------------
    Hostile(
        "ctypes_fork_and_hold",
        "ctypes",
        "while True:\n"
        "    pid = libc.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(3600)\n"
        "        os._exit(0)\n"
        "    if pid == -1:\n"
        "        break\n"
        "print(libc_errno(pid))",
        "ok",
        "EAGAIN\n",
        "RLIMIT_NPROC (the kernel counts the uid's processes, however they were forked)",
    ),
    Hostile(
        "ctypes_execve_shell",
        "ctypes",
        "argv = (ctypes.c_char_p * 4)(b'sh', b'-c', b'id -u; cat $secret_file', None)\n"
        "libc.execve(b'/bin/sh', argv, None)",
        "rte",
        "$uid\n",
        "execve works, but the shell inherits the sandbox: the leased uid, no host files (cat fails)",
    ),
    Hostile(
        "ctypes_socket",
        "ctypes",
        "print(libc_errno(libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)))",
        "ok",
        "EPERM\n",
        "seccomp filter (it filters the system call, not Python's socket module)",
    ),
    Hostile(
        "ctypes_unshare",
        "ctypes",
        "print(libc_errno(libc.unshare(0x10000000)), libc_errno(libc.unshare(0x40000000)))",  # NEWUSER, NEWNET
        "ok",
        "EPERM EPERM\n",
        "seccomp filter (unshare)",
    ),
    Hostile(
        "ctypes_mount",
        "ctypes",
        "os.mkdir('mnt')\nprint(libc_errno(libc.mount(b'none', b'mnt', b'tmpfs', 0, None)))",
        "ok",
        "EPERM\n",
        "seccomp filter (mount)",
    ),
    # ---- privileges ------------------------------------------------------------------------------------------
    Hostile(
        "become_root",
        "privileges",
        "print(attempt(lambda: os.setuid(0)), attempt(lambda: os.chroot('/sandbox')), os.getuid())",
        "ok",
        "EINVAL EPERM $uid\n",
        "uid drop: only the leased uid is mapped in the user namespace, with no capabilities",
    ),
    Hostile(
        "raise_own_limits",
        "privileges",
        "import resource\n"
        "kinds = (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE)\n"
        "refused = []\n"
        "for kind in kinds:\n"
        "    try:\n"
        "        resource.setrlimit(kind, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    except ValueError as exc:  # Python's word for EPERM here\n"
        "        refused.append(str(exc))\n"
        "print(refused)",
        "ok",
        "['not allowed to raise maximum limit', 'not allowed to raise maximum limit',"
        " 'not allowed to raise maximum limit', 'not allowed to raise maximum limit']\n",
        "hard rlimits: soft = hard, and no CAP_SYS_RESOURCE to raise them",
    ),
]


@dataclass(frozen=True)
class Hack:
    """A response that tries to score without solving: scored by the `code` verifier, it must get 0."""

    id: str
    program: str
    reference: dict
    stopped_by: str


SUM = {"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]}
ADD = {"test": "assert add(2, 3) == 5\nassert add(4, 5) == 9", "entry_point": "add"}
OPAQUE = {
    "test": "def check(candidate):\n    for a in range(3):\n        assert candidate(a, a) == 2 * a\n",
    "entry_point": "add",
}
HONEST = {"stdin": "a, b = map(int, input().split())\nprint(a + b)", "add": "def add(a, b):\n    return a + b"}

CHECKER_HACKS = [
    Hack("exit_before_output", "import sys\nsys.exit(0)", SUM, "host-side comparison: no output, no pass"),
    Hack(
        "print_fake_judge_events",
        "import json\nfor i in range(2):\n    print(json.dumps({'i': i, 'status': 'ok', 'output': '3'}))",
        SUM,
        "results go on the judge's own descriptor; the program's stdout is only its output",
    ),
    Hack(
        "patch_the_judge_module",
        "import __main__, json, os\n"
        "__main__._emit = lambda event: None\n"
        "json.dumps = lambda *a, **k: '{}'\n"
        "os._exit(0)",
        SUM,
        "the judge is another process: patching the test's forked copy changes nothing",
    ),
    Hack(
        "search_memory_for_expected_outputs",
        "import gc\nfound = [o for o in gc.get_objects() if isinstance(o, dict) and 'stdin' in o]\n"
        "print(*sorted({key for test in found for key in test}))",
        SUM,
        "expected outputs never enter the sandbox; the host compares",
    ),
    Hack(
        "forge_the_value_channel",
        "import marshal, os\nos.write(3, marshal.dumps(5))\nos._exit(0)",
        ADD,
        "per-test seal on the value channel, checked by the judge; the host compares the value",
    ),
    Hack(
        "forge_the_pass_marker",
        "import marshal, os\nos.write(3, marshal.dumps(True))\nos._exit(0)",
        OPAQUE,
        "per-test seal on the value channel",
    ),
    Hack(
        "always_equal_object",
        "class Anything:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Anything()",
        ADD,
        "only exact built-in values leave the sandbox (marshal); the host compares",
    ),
    Hack(
        "int_subclass_equal_to_everything",
        "class Int(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Int(0)",
        ADD,
        "marshal refuses subclasses, so their `__eq__` never runs on the host",
    ),
    Hack(
        "patch_marshal_in_the_child",
        "import marshal\nreal = marshal.dumps\nmarshal.dumps = lambda value: real(5)\ndef add(a, b):\n    return 0",
        ADD,
        "the child holds `marshal.dumps` from before the program ran",
    ),
    Hack(
        "empty_range_under_the_check",
        "import builtins\nbuiltins.range = lambda *args: []\ndef add(a, b):\n    return 0",
        OPAQUE,
        "the test's code runs with the builtins as they were before the program",
    ),
]


@dataclass
class Host:
    """What the attacks aim at, and the checks that it is untouched."""

    uid: int
    secret: str
    secret_file: Path
    run_dir: Path
    canary: Path
    unix_path: Path
    abstract: str
    listeners: list[socket.socket]
    bystander: subprocess.Popen

    def names(self) -> dict[str, object]:
        return {
            "secret_file": self.secret_file,
            "run_dir": self.run_dir,
            "canary": self.canary,
            "unix_path": self.unix_path,
            "abstract": self.abstract,
            "port": self.listeners[0].getsockname()[1],
            "host_pid": os.getpid(),
            "bystander_pid": self.bystander.pid,
            "uid": self.uid,
        }

    def processes(self) -> set[tuple[int, str]]:
        """(pid, name) of the processes of the sandbox's uid and of this process's children, but the bystander."""
        found = set()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == self.bystander.pid:
                continue
            try:
                status = dict(
                    line.split(":", 1) for line in Path(f"/proc/{name}/status").read_text().splitlines() if ":" in line
                )
            except (OSError, ValueError):
                continue  # gone meanwhile
            uid, parent = int(status["Uid"].split()[0]), int(status["PPid"])
            if (uid == self.uid and SANDBOX.uid is not None) or parent == os.getpid():
                found.add((int(name), status["Name"].strip()))
        return found

    def assert_untouched(self, before: set[tuple[int, str]], outcomes: Sequence[Outcome]) -> None:
        deadline = time.monotonic() + 5.0
        while (left := self.processes() - before) and time.monotonic() < deadline:
            time.sleep(0.05)  # a killed process takes a moment to be reaped
        assert not left, f"processes outlived the sandbox: {sorted(left)}"
        assert self.bystander.poll() is None, "the bystander process of the sandbox's uid was killed"
        assert not self.canary.exists(), "a file was written outside the scratch directory"
        assert self.secret_file.read_text() == self.secret
        for listener in self.listeners:
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing connected
        for outcome in outcomes:
            for text in (outcome.output, outcome.detail, outcome.value):
                assert self.secret not in text


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    secret = f"reasonrl-secret-{uuid.uuid4().hex}"
    home = tmp_path_factory.mktemp("host")
    secret_file = home / "secret.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    run_dir = home / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(f"api_key: {secret}\n")
    # A fixed directory under /tmp, which inside the sandbox is the scratch tmpfs: the write must stay there.
    shared = Path(tempfile.mkdtemp(prefix="reasonrl-hostile-", dir="/tmp"))
    tcp = socket.create_server(("127.0.0.1", 0))
    abstract = f"reasonrl-hostile-{uuid.uuid4().hex}"
    unix_abstract = socket.socket(socket.AF_UNIX)
    unix_abstract.bind("\0" + abstract)
    unix_file = socket.socket(socket.AF_UNIX)
    unix_file.bind(str(shared / "sock"))
    listeners = [tcp, unix_abstract, unix_file]
    for listener in listeners:
        listener.listen()
        listener.setblocking(False)
    uid = SANDBOX.uid if SANDBOX.uid is not None else os.getuid()
    bystander = subprocess.Popen(["sleep", "600"], **as_uid(SANDBOX.uid))
    patch = pytest.MonkeyPatch()
    patch.setenv("REASONRL_HOSTILE_SECRET", secret)  # the sandbox must not see this process's environment
    yield Host(uid, secret, secret_file, run_dir, shared / "canary", shared / "sock", abstract, listeners, bystander)
    patch.undo()
    bystander.kill()
    bystander.wait()
    for listener in listeners:
        listener.close()
    shutil.rmtree(shared, ignore_errors=True)


def program_for(row: Hostile, host: Host) -> str:
    attack = Template(row.program).substitute(host.names())
    return PRELUDE + "if input() == 'attack':\n" + textwrap.indent(attack, "    ") + "\nelse:\n    print('alive')\n"


def test_the_table_covers_every_category_with_at_least_30_programs():
    assert len(ESCAPES) + len(CHECKER_HACKS) >= 30
    assert len({row.id for row in ESCAPES} | {hack.id for hack in CHECKER_HACKS}) == len(ESCAPES) + len(CHECKER_HACKS)
    assert {row.category for row in ESCAPES} == {
        "resources",
        "host secrets",
        "writing outside scratch",
        "network",
        "parent and processes",
        "/proc tricks",
        "orphans",
        "threads",
        "signals",
        "ctypes",
        "privileges",
    }


@pytest.mark.parametrize("row", ESCAPES, ids=lambda row: row.id)
def test_hostile_program_is_contained(row: Hostile, host: Host):
    before = host.processes()
    outcomes = run_program(program_for(row, host), ATTACK_THEN_CALM, LIMITS)
    assert [outcome.status for outcome in outcomes] == [row.status, row.after], outcomes
    if row.output is not None:
        assert outcomes[0].output == Template(row.output).substitute(host.names())
    if row.detail is not None:
        assert outcomes[0].detail == row.detail
    if row.status == "ole":  # cut at the limit
        assert len(outcomes[0].output) == LIMITS.output_kb << 10
    if row.after == "ok":
        assert outcomes[1].output == "alive\n"
    host.assert_untouched(before, outcomes)


@pytest.fixture(scope="module")
def code():
    return get_verifier("code", timeout_seconds=1.0)


def test_the_hacked_references_pass_an_honest_solution(code):
    assert code(HONEST["stdin"], SUM) == 1.0
    assert code(HONEST["add"], ADD) == 1.0
    assert code(HONEST["add"], OPAQUE) == 1.0


@pytest.mark.parametrize("hack", CHECKER_HACKS, ids=lambda hack: hack.id)
def test_checker_hack_scores_nothing(hack: Hack, host: Host, code):
    before = host.processes()
    assert code(f"```python\n{hack.program}\n```", hack.reference) == 0.0
    host.assert_untouched(before, [])
