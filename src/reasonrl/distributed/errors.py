"""What the Ray backend raises: one exception type per way a run cannot go on, each message naming the role,
the method and where Ray's logs are, so no failure is a silent hang."""

from __future__ import annotations


class DistributedError(RuntimeError):
    """A Ray role could not be placed, started or reached in time."""


class PlacementError(DistributedError):
    """The cluster lacks the resources the `distributed` section asks for (raised before creating actors)."""


class RestartsExhausted(DistributedError):
    """A role kept dying or hanging: more than `distributed.max_restarts` restarts within the window."""


class LearnerLost(DistributedError):
    """A learner rank died or hung: the process group cannot go on, and nothing since the last checkpoint can
    be saved (the lost rank held its part of the state)."""
