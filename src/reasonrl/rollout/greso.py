"""GRESO selective rollouts: the bookkeeping around `reasonrl.algorithms.greso`.

Per prompt it keeps the trace of mean group rewards (one entry per epoch the prompt was rolled out),
draws the pre-rollout skip decision, counts what got through, and adapts p_easy / p_hard once per training
step. Skipped prompts add nothing to their trace, so their skip probability stays as it was until they are
rolled out again. The whole state, the random generator included, round-trips through JSON, so a resumed
run makes the same skip decisions as one that never stopped.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from reasonrl.algorithms.greso import (
    EASY_MEAN_REWARD,
    HARD_MEAN_REWARD,
    adapt_probability,
    skip_probability,
)


class SelectiveRollouts:
    """Decides which prompts to skip before rollout and adapts how eagerly it skips.

    target_zero_variance: the share of rolled-out groups allowed to be zero-variance; a third of it is the
    target for easy (all-correct) groups and two thirds for hard (all-wrong) ones, as in GRESO.
    p_easy, p_hard: the initial per-epoch keep bases (see `algorithms.greso.skip_probability`).
    seed: seeds the generator of the skip draws, so decisions are reproducible.
    """

    def __init__(
        self, *, target_zero_variance: float = 0.25, p_easy: float = 0.5, p_hard: float = 0.5, seed: int = 0
    ) -> None:
        if not 0.0 < target_zero_variance < 1.0:
            raise ValueError(
                f"target_zero_variance must be in (0, 1) (a share of rolled-out groups), got {target_zero_variance}; "
                "GRESO uses 0.25"
            )
        for name, p in (("p_easy", p_easy), ("p_hard", p_hard)):
            if not 0.0 < p < 1.0:
                raise ValueError(f"{name} must be in (0, 1) (a per-epoch keep probability), got {p}; GRESO uses 0.5")
        self.target_easy = target_zero_variance / 3
        self.target_hard = target_zero_variance * 2 / 3
        self.p_easy = p_easy
        self.p_hard = p_hard
        self.traces: dict[str, list[float]] = {}
        self._rng = random.Random(seed)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.considered = 0
        self.skipped = 0
        self.recorded = 0
        self.easy = 0
        self.hard = 0

    def skip_probability(self, prompt_id: str) -> float:
        """This prompt's P_skip under the current p_easy / p_hard (0 for a prompt never rolled out)."""
        return skip_probability(self.traces.get(prompt_id, ()), self.p_easy, self.p_hard)

    def should_skip(self, prompt_id: str) -> bool:
        """Draw whether to skip this prompt's rollout now (True = do not generate for it).

        Every call takes exactly one draw from the generator, whatever the probability, so the sequence of
        decisions depends only on the seed and the order of calls.
        """
        skip = self._rng.random() < self.skip_probability(prompt_id)
        self.considered += 1
        self.skipped += int(skip)
        return skip

    def record(self, prompt_id: str, rewards: Sequence[float]) -> None:
        """Append the mean of this rolled-out group's rewards (each in [0, 1]) to the prompt's trace."""
        if not rewards:
            raise ValueError(f"prompt {prompt_id!r}: record needs the group's rewards, got none")
        if not all(0.0 <= r <= 1.0 for r in rewards):  # also rejects NaN
            raise ValueError(
                f"prompt {prompt_id!r}: GRESO assumes rewards in [0, 1] (1 = correct), got {list(rewards)}; "
                "rescale the rewards or turn selective rollouts off"
            )
        mean = math.fsum(rewards) / len(rewards)
        self.traces.setdefault(prompt_id, []).append(mean)
        self.recorded += 1
        self.easy += int(mean >= EASY_MEAN_REWARD)
        self.hard += int(mean <= HARD_MEAN_REWARD)

    def end_step(self) -> dict[str, float]:
        """Adapt p_easy / p_hard from the groups recorded since the last call, reset the counts, report.

        With no group recorded there is nothing to adapt from, so the rates stay. The shares are of the
        recorded groups; skipped_share is of the prompts considered (0 when none were).
        """
        easy_share = self.easy / self.recorded if self.recorded else 0.0
        hard_share = self.hard / self.recorded if self.recorded else 0.0
        if self.recorded:
            self.p_easy = adapt_probability(self.p_easy, easy_share, self.target_easy)
            self.p_hard = adapt_probability(self.p_hard, hard_share, self.target_hard)
        metrics = {
            "greso/p_easy": self.p_easy,
            "greso/p_hard": self.p_hard,
            "greso/skipped_prompts": float(self.skipped),
            "greso/skipped_share": self.skipped / self.considered if self.considered else 0.0,
            "greso/easy_share": easy_share,
            "greso/hard_share": hard_share,
        }
        self._reset_counters()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain JSON types (the generator's state as lists)."""
        version, internal, gauss_next = self._rng.getstate()
        return {
            "p_easy": self.p_easy,
            "p_hard": self.p_hard,
            "traces": {prompt_id: list(trace) for prompt_id, trace in self.traces.items()},
            "counters": {
                "considered": self.considered,
                "skipped": self.skipped,
                "recorded": self.recorded,
                "easy": self.easy,
                "hard": self.hard,
            },
            "rng_state": [version, list(internal), gauss_next],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (also after a trip through JSON). The targets stay as constructed."""
        missing = {"p_easy", "p_hard", "traces", "counters", "rng_state"} - state.keys()
        if missing:
            raise ValueError(
                f"GRESO state is missing {sorted(missing)}; pass what SelectiveRollouts.state_dict returned"
            )
        version, internal, gauss_next = state["rng_state"]
        self._rng.setstate((version, tuple(internal), gauss_next))
        self.p_easy = float(state["p_easy"])
        self.p_hard = float(state["p_hard"])
        self.traces = {prompt_id: [float(m) for m in trace] for prompt_id, trace in state["traces"].items()}
        counters = state["counters"]
        self.considered = int(counters["considered"])
        self.skipped = int(counters["skipped"])
        self.recorded = int(counters["recorded"])
        self.easy = int(counters["easy"])
        self.hard = int(counters["hard"])
