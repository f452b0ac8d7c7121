"""The run directory: one folder per run holding everything a run writes, at fixed, documented paths.

```
runs/20250101-120000/
  config.yaml            the resolved config the run started with
  metrics.jsonl          one JSON object per step: {"step": 3, "reward/mean": 0.5, ...}
  rollouts/step_000010.jsonl
  plots/*.png
  tensorboard/           TensorBoard event files
  checkpoints/
  summary.json
```

Fixed paths let a later command (`plot_run`, a resume, a report) find a run's files from the folder
alone, without the config that produced it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_ROLLOUT_FILE = re.compile(r"step_(\d+)\.jsonl")


class RunDirectoryError(FileExistsError):
    """The chosen run directory cannot be used as asked (it already holds another run)."""


@dataclass(frozen=True)
class RunDirectory:
    """Paths of one run's files; `create` makes the folder, the constructor only names it."""

    root: Path

    @classmethod
    def create(
        cls,
        path: str | Path | None = None,
        *,
        config_text: str | None = None,
        resume: bool = False,
        parent: str | Path = "runs",
    ) -> RunDirectory:
        """Make the run folder and write `config.yaml`.

        path: the folder (None = `<parent>/<YYYYmmdd-HHMMSS>`, with `-1`, `-2`, ... appended when two runs
        start in the same second). resume: the folder is expected to hold the run being continued;
        without it, a folder that already has metrics is refused, so a new run never mixes its steps into
        an old run's files. config_text: the resolved config as YAML; on resume it replaces the old file,
        since the continued run follows the new one.
        """
        root = Path(path) if path is not None else _new_timestamped_folder(Path(parent))
        run = cls(root)
        if run.metrics_path.exists() and not resume:
            raise RunDirectoryError(
                f"run directory {root} already holds a run (it has {run.metrics_path.name}); "
                "continue it with --resume, or choose a new folder with --set logging.run_dir=<path> "
                "(or leave logging.run_dir unset for a fresh runs/<date>-<time> folder)"
            )
        root.mkdir(parents=True, exist_ok=True)
        if config_text is not None:
            run.config_path.write_text(config_text, encoding="utf-8")
        return run

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def rollouts_dir(self) -> Path:
        return self.root / "rollouts"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def rollout_path(self, step: int) -> Path:
        """`rollouts/step_000010.jsonl`: zero-padded so a plain `ls` lists the dumps in step order."""
        return self.rollouts_dir / f"step_{step:06d}.jsonl"

    def rollout_steps(self) -> list[int]:
        """Steps that have a rollout dump, ascending."""
        if not self.rollouts_dir.is_dir():
            return []
        found = (_ROLLOUT_FILE.fullmatch(p.name) for p in self.rollouts_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)


def _new_timestamped_folder(parent: Path) -> Path:
    """Create a fresh `<parent>/<stamp>[-n]`; mkdir claims the name, so two runs never share a folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while True:
        candidate = parent / (stamp if suffix == 0 else f"{stamp}-{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            suffix += 1
            continue
        return candidate
