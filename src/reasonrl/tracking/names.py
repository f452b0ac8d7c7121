"""Metric names that the progress display and the plots look for.

Names are namespaced with `/` and kept exactly as logged. Sinks take any name; only the display and the
plots need to know which name holds the reward or the accuracy, and they find them here, so a pipeline
that logs these names gets a useful terminal line and plots without further wiring:

- `reward/mean` (and any other `reward/*`: std, per-component rewards)
- `accuracy/train`, `accuracy/eval` (the accuracy plot takes every name with a segment starting
  with `accuracy`, so `eval/accuracy` or `accuracy/eval_maj` are plotted too)
- `response_length/mean`, `response_length/max` (in tokens)
- `kl/mean`, `entropy/mean`
- `time/<phase>` seconds per phase of the step, and `time/step` for the whole step (see `Stopwatch`)
"""

from __future__ import annotations

REWARD = "reward/mean"
TRAIN_ACCURACY = "accuracy/train"
EVAL_ACCURACY = "accuracy/eval"
RESPONSE_LENGTH = "response_length/mean"
RESPONSE_LENGTH_MAX = "response_length/max"
KL = "kl/mean"
ENTROPY = "entropy/mean"
TIME_PREFIX = "time/"
STEP_TIME = "time/step"
