"""get_verifier: names, options, user functions, pickling, odd input, and an import-light registry."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.rewards import VERIFIERS, Verifier, get_verifier

PLUGINS = Path(__file__).with_name("reward_plugins.py")

# Options for verifiers that need some, and a limit that keeps the math verifier quick on a megabyte.
OPTIONS = {"overlong": {"max_length": 100, "buffer": 10}, "math": {"timeout_seconds": 1.0}}


def test_names() -> None:
    assert set(VERIFIERS.names()) == {"math", "exact", "numeric", "countdown", "format", "overlong", "gym", "code"}


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"unknown verifier 'maths' \(did you mean 'math'\?\); choose one of: math, exact"
    ):
        get_verifier("maths")


def test_unknown_option_lists_the_options() -> None:
    with pytest.raises(ValueError, match=r"has no option 'tolerence' \(did you mean 'tolerance'\?\).*'extract'"):
        get_verifier("numeric", tolerence=0.1)


def test_user_function_by_file_path_with_options() -> None:
    verifier = get_verifier(f"{PLUGINS}:weighted", scale=0.5)
    assert verifier("abcd", None) == 2.0
    assert verifier.name == f"{PLUGINS.resolve()}:weighted"


def test_user_function_by_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS.parent))
    assert get_verifier("reward_plugins:unruly")("7", "7") == 1.0


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        (f"{PLUGINS}:missing", "has no function 'missing'"),
        ("/no/such/file.py:f", "cannot import"),
        (":f", "write it as"),
    ],
)
def test_user_function_errors(reference: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_verifier(reference)


def test_user_function_must_return_a_number() -> None:
    with pytest.raises(TypeError, match="returned nan; a reward must be a finite number"):
        get_verifier(f"{PLUGINS}:unruly")("nan", None)


def test_verifiers_pickle_as_their_recipe() -> None:
    verifier = get_verifier("numeric", tolerance=0.5)
    clone = pickle.loads(pickle.dumps(verifier))
    assert isinstance(clone, Verifier)
    assert (clone.name, dict(clone.options)) == ("numeric", {"tolerance": 0.5})
    assert clone("10.4", "10") == 1.0


ODD_INPUTS = [
    None,
    0,
    42,
    -1.5,
    float("nan"),
    b"\xff\xfe\x00garbage",
    bytearray(b"12"),
    object(),
    ["a"],
    {"b": 1},
]
MEGABYTE = ("<answer>x</answer> \\boxed{1+ {{ 12,3 #### } The answer is " * 20_000)[:1_000_000]


# `code` raises ValueError on a malformed reference instead: a data error the run must report, not a wrong
# answer (tests/rewards/test_code_verifier.py::test_malformed_references_name_the_problem).
@pytest.mark.parametrize("name", [name for name in VERIFIERS.names() if name != "code"])
def test_builtins_never_raise_on_odd_input(name: str) -> None:
    verifier = get_verifier(name, **OPTIONS.get(name, {}))
    low, high = (-1.0, 0.0) if name == "overlong" else (0.0, 1.0)
    calls = [
        (response, answer, meta)
        for response in [*ODD_INPUTS, ""]
        for answer in [*ODD_INPUTS, "1"]
        for meta in (None, {}, {"gym_entry": response}, "not a mapping")
    ]
    calls += [
        (MEGABYTE, "1", None),
        ("1", MEGABYTE, None),
        (MEGABYTE, MEGABYTE, {"gym_entry": {"metadata": {}}}),
    ]
    for response, answer, meta in calls:
        score = verifier(response, answer, meta)
        assert isinstance(score, float) and math.isfinite(score) and low <= score <= high


def test_registry_import_is_light() -> None:
    heavy = ("sympy", "math_verify", "reasoning_gym", "torch", "transformers")
    code = f"import sys, reasonrl.rewards; found = set({heavy}) & set(sys.modules); assert not found, found"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("def reward(response, answer, **kw):\n    return 1.0\n", "too many positional arguments"),
        ("def reward(response):\n    return 1.0\n", "too many positional arguments"),
        ("def reward(response, answer, meta, extra):\n    return 1.0\n", "missing a required argument: 'extra'"),
        ("def reward(response, answer, meta, *, scale):\n    return scale\n", "missing a required argument: 'scale'"),
    ],
)
def test_a_user_function_with_the_wrong_signature_fails_at_load(tmp_path: Path, source: str, detail: str) -> None:
    plugin = tmp_path / "bad_reward.py"
    plugin.write_text(source)
    with pytest.raises(ValueError) as caught:
        get_verifier(f"{plugin}:reward")
    message = str(caught.value)
    assert f"reward function '{plugin.resolve()}:reward' has the signature (" in message
    assert "three positional arguments: (response: str, answer: Any, meta: dict) -> float" in message
    assert detail in message
    assert "def reward(response, answer, meta=None, **options):" in message


def test_a_user_function_with_options_it_does_not_take_fails_at_load() -> None:
    with pytest.raises(ValueError, match=r"and options \['sclae'\].*unexpected keyword argument 'sclae'"):
        get_verifier(f"{PLUGINS}:weighted", sclae=2.0)


@pytest.mark.parametrize(
    "source",
    [
        "def reward(*args):\n    return 1.0\n",
        "def reward(*args, **options):\n    return 1.0\n",
        "def reward(response, answer, meta):\n    return 1.0\n",
        "def reward(response, *rest, scale=1.0):\n    return scale\n",
        "class Reward:\n"
        "    def __call__(self, response, answer, meta=None):\n        return 1.0\n\n\nreward = Reward()\n",
    ],
)
def test_user_functions_that_take_three_positional_arguments_load(tmp_path: Path, source: str) -> None:
    plugin = tmp_path / "good_reward.py"
    plugin.write_text(source)
    assert get_verifier(f"{plugin}:reward")("7", "7", {}) == 1.0


def test_the_reward_pool_refuses_a_wrong_signature_before_scoring(tmp_path: Path) -> None:
    from reasonrl.rewards import RewardPool

    plugin = tmp_path / "two_args.py"
    plugin.write_text("def reward(response, answer, **kw):\n    return 1.0\n")
    term = type("Term", (), {"name": f"{plugin}:reward", "weight": 1.0, "options": {}})()
    with pytest.raises(ValueError, match="has the signature \\(response, answer, \\*\\*kw\\)"):
        RewardPool([term], workers=0)
