"""Where the learner, engines and rewards run: in this process (`LocalBackend`) or as Ray actors (`RayBackend`).

The pipelines build their learner, engine and reward pools through a `Backend` and never import Ray; only the
modules of this package do, and only when `distributed.backend: ray` asks for them. See
docs/distributed.md.
"""

from reasonrl.distributed.backend import Backend, EngineSite, LearnerSite, LocalBackend, backend_for

__all__ = ["Backend", "EngineSite", "LearnerSite", "LocalBackend", "backend_for"]
