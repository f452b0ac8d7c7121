"""`rollout.speculative` is refused where it would do nothing or could not keep its promise."""

from __future__ import annotations

import pytest

from reasonrl.config import ConfigError, load_config
from reasonrl.rollout.speculative import DEFAULT_LENIENCE, SpeculativeRollouts


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rollout.speculative.mode=exact"], r"enabled is false, so they would do nothing"),
        (["rollout.speculative.cache_mb=64"], r"enabled is false"),
        (
            ["rollout.speculative.enabled=true", "rollout.speculative.mode=exact", "rollout.speculative.lenience=2"],
            r"lenience 2.0 with mode: exact: exactness needs the plain rule",
        ),
        (
            [
                "rollout.speculative.enabled=true",
                "rollout.speculative.mode=exact",
                "rollout.engine=hf",
                "rollout.top_k=20",
            ],
            r"needs temperature 1, top_p 1 and top_k 0 \(got 1.0, 1.0, 20\)",
        ),
        (
            ["rollout.speculative.enabled=true", "rollout.speculative.mode=exact"],
            r"only the hf engine can do \(rollout.engine is 'auto'; auto takes vllm on a GPU\)",
        ),
        (["rollout.speculative.enabled=true", "rollout.speculative.lenience=0"], r"greater than 0"),
        (["rollout.speculative.enabled=true", "rollout.speculative.lenince=2"], r"did you mean 'lenience'"),
    ],
)
def test_bad_speculative_settings_name_the_problem(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_lenience_defaults_to_spec_rls_and_exact_mode_uses_the_plain_rule() -> None:
    assert SpeculativeRollouts.of(load_config(None, [])) is None
    lenient = SpeculativeRollouts.of(load_config(None, ["rollout.speculative.enabled=true"]))
    assert lenient is not None and lenient.lenience == DEFAULT_LENIENCE and not lenient.exact
    exact = SpeculativeRollouts.of(
        load_config(None, ["rollout.speculative.enabled=true", "rollout.speculative.mode=exact", "rollout.engine=hf"])
    )
    assert exact is not None and exact.lenience == 1.0 and exact.exact
    sized = SpeculativeRollouts.of(
        load_config(None, ["rollout.speculative.enabled=true", "rollout.speculative.cache_mb=0.5"])
    )
    assert sized is not None and sized.cache.max_bytes == 2**19
