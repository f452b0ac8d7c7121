"""The `reasonrl` command. Thin: each command parses arguments and calls one library function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from reasonrl.config import ConfigError, dump_config, load_config

app = typer.Typer(
    help="RL post-training of language models on reasoning tasks with verifiable rewards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the run configuration.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect prompts and data sources.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigPath = Annotated[Path | None, typer.Argument(help="YAML config file (default: built-in defaults).")]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a field: dotted.key=value (repeatable), e.g. rollout.group_size=4."),
]


def user_errors(command: F) -> F:
    """Show a user's mistake (bad config, bad data, missing file, a reward that always fails, a placement the
    Ray cluster cannot hold) or a run that had to stop (after its checkpoint) as one clear message, exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reasonrl.data import DataError
        from reasonrl.distributed.errors import DistributedError
        from reasonrl.pipelines.step import TrainingStopped
        from reasonrl.rewards.failures import RewardsFailing

        try:
            return command(*args, **kwargs)
        except (
            ConfigError,
            DataError,
            FileNotFoundError,
            ValueError,
            RewardsFailing,
            DistributedError,
            TrainingStopped,
        ) as exc:
            errors.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def tasks(
    gym: Annotated[bool, typer.Option(help="Also list every reasoning-gym generator.")] = True,
) -> None:
    """List the built-in tasks, one line each with an example prompt and its answer."""
    from reasonrl.data import list_tasks

    console.print("[bold]Built-in tasks[/] (a name works as data.train.source or as a data spec):")
    for info in list_tasks():
        if gym or info.kind != "gym":
            prefix = f"{info.name:<26} {info.kind:<6} "
            if info.example is None:
                line = prefix + "(needs options: see its reasoning-gym docs)"
            else:
                answer = _one_line(str(info.answer), 20)
                room = max(10, console.width - len(prefix) - len(answer) - 5)
                line = f"{prefix}{_one_line(info.example, room)}  ->  {answer}"
            console.print(line, markup=False, highlight=False, overflow="ellipsis", no_wrap=True)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@config_app.command("show")
@user_errors
def config_show(config: ConfigPath = None, overrides: Overrides = None) -> None:
    """Print the fully resolved config (defaults + file + overrides) as YAML."""
    sys.stdout.write(dump_config(load_config(config, overrides or [])))


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of the config (for editors and validators)."""
    from reasonrl.config.docs import config_json_schema

    sys.stdout.write(config_json_schema())


@config_app.command("docs")
def config_docs(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the markdown configuration reference (docs/config.md is this output)."""
    from reasonrl.config.docs import config_markdown

    text = config_markdown()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@app.command("init-model")
@user_errors
def init_model_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the model into.")],
    preset: Annotated[str, typer.Option(help="Model shape: tiny (byte-level tokenizer) or small (BPE).")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the random initial weights.")] = 0,
    corpus: Annotated[
        list[str] | None,
        typer.Option(help="Data spec whose text trains the BPE tokenizer (small preset; repeatable)."),
    ] = None,
) -> None:
    """Build a tokenizer and a Qwen2-architecture model from scratch as a Hugging Face folder."""
    from reasonrl.models import PRESETS, init_model, parameter_count
    from reasonrl.models.resolve import DEFAULT_CORPUS, task_corpus

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    text = task_corpus(tuple(corpus) if corpus else DEFAULT_CORPUS) if PRESETS[preset].tokenizer == "bpe" else None
    folder = init_model(out_dir, preset=preset, seed=seed, corpus=text)
    from transformers import AutoModelForCausalLM

    count = parameter_count(AutoModelForCausalLM.from_pretrained(folder))
    console.print(f"wrote {folder}: preset {preset} ({PRESETS[preset].description}), {count:,} parameters")


DEMO_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def run_config(config: Path | None, overrides: list[str] | None, run_dir: Path | None, resume: Path | None):  # type: ignore[no-untyped-def]
    """The config a training command runs: the demo recipe when no file is given; with --resume, the
    resolved config saved in that run directory (overrides still apply, e.g. to extend train.steps)."""
    if resume is not None:
        saved = resume / "config.yaml"
        if not saved.is_file():
            raise ValueError(f"--resume {resume}: no config.yaml there; give the run directory of an earlier run")
        return load_config(saved, [*(overrides or []), f"logging.run_dir={resume}"])
    extra = [f"logging.run_dir={run_dir}"] if run_dir is not None else []
    return load_config(config if config is not None else DEMO_RECIPE, [*(overrides or []), *extra])


RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Run directory (default: runs/<date>-<time>).")]
Resume = Annotated[
    Path | None,
    typer.Option("--resume", help="Continue the run in this directory from its newest checkpoint."),
]


@app.command()
@user_errors
def train(
    config: ConfigPath = None, overrides: Overrides = None, run_dir: RunDir = None, resume: Resume = None
) -> None:
    """Train with RL (GRPO family); with no CONFIG, run the built-in demo on a tiny model."""
    from reasonrl.pipelines import async_rl, sync
    from reasonrl.tracking import summary_table

    settings = run_config(config, overrides, run_dir, resume)
    run_training = async_rl.train if settings.pipeline == "async" else sync.train
    if config is None and resume is None:
        console.print(f"[bold]reasonrl demo[/]: {DEMO_RECIPE.name} (a tiny model learns to count bits on the CPU)")
    summary = run_training(settings, resume=resume is not None, console=console, on_sft_step=_sft_printer(settings))
    console.print(summary_table(summary))
    console.print(f"run directory: [bold]{summary['run_dir']}[/]")


@app.command()
@user_errors
def sft(config: ConfigPath = None, overrides: Overrides = None, run_dir: RunDir = None) -> None:
    """Run only supervised fine-tuning (train.sft) and save the model in RUN_DIR/sft_model."""
    from reasonrl.pipelines.sft import run_sft

    settings = run_config(config, overrides, run_dir, None)
    folder = run_sft(settings, on_step=_sft_printer(settings))
    console.print(f"sft model: [bold]{folder}[/]")


def _sft_printer(settings: Any) -> Any:
    every = max(1, settings.train.sft.steps // 10)

    def show(step: int, metrics: dict[str, float]) -> None:
        if step % every == 0 or step == settings.train.sft.steps:
            console.print(f"sft {step}/{settings.train.sft.steps}  loss {metrics['sft/loss']:.4f}")

    return show


@app.command("eval")
@user_errors
def eval_command(
    model: Annotated[
        str | None, typer.Argument(help="Model folder (HF, a run's checkpoint model), .gguf or builtin:NAME.")
    ] = None,
    data: Annotated[str | None, typer.Option(help="Data spec of the problems, e.g. gsm8k:test.jsonl?size=200.")] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Samples per problem (N_max; particles of particle_filter).")] = 8,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            help="Strategy NAME[?key=value&...] (repeatable): majority, best_of_n, weighted_majority, "
            "best_of_majority, particle_filter, synthesize. Default: all but particle_filter and synthesize, "
            "scored by logprob.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default evals/<date>-<time>).")] = None,
    samples: Annotated[
        Path | None, typer.Option(help="Re-score this stored samples.jsonl instead of generating.")
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Put two evaluations (their --out directories) side by side; nothing is generated."),
    ] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.8,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(help="Longest response in tokens.")] = 512,
    engine: Annotated[str, typer.Option(help="Rollout engine: auto, hf or vllm.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of sampling, subsets, bootstrap and resampling.")] = 0,
    template: Annotated[str, typer.Option(help="Prompt rendering: auto, chat or plain.")] = "auto",
    system_prompt: Annotated[str | None, typer.Option(help="System message before every problem.")] = None,
    instruction: Annotated[
        str | None, typer.Option(help="Instruction after every question, e.g. 'Put the answer in \\boxed{}.'")
    ] = None,
    reward_workers: Annotated[int, typer.Option(help="Reward worker processes (0 = in this process).")] = 0,
    subsets: Annotated[int, typer.Option(help="Size-N subsets per problem for points below N_max.")] = 16,
) -> None:
    """Evaluate a model with test-time scaling: pass@k, maj@k, best-of-N, Best-of-Majority, particle filtering."""
    from reasonrl.evaluation.report import load_report, write_comparison
    from reasonrl.evaluation.settings import EvalSettings
    from reasonrl.pipelines.evaluation import run_evaluation

    if compare is not None:
        target = out or Path("evals") / "compare"
        files = write_comparison(load_report(compare[0]), load_report(compare[1]), target)
        console.print((target / "compare.md").read_text(), markup=False, highlight=False, soft_wrap=True)
        console.print("wrote " + ", ".join(map(str, files)))
        return
    values: dict[str, Any] = {
        "model": model,
        "data": data,
        "samples": str(samples) if samples is not None else None,
        "out": str(out) if out is not None else None,
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "engine": engine,
        "seed": seed,
        "format": {"template": template, "system_prompt": system_prompt, "instruction": instruction},
        "reward_workers": reward_workers,
        "subsets": subsets,
    }
    if strategy:
        values["strategies"] = strategy
    settings = validated(EvalSettings, values, "reasonrl eval options")
    _, directory = run_evaluation(settings, console=console)
    console.print((directory / "report.md").read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"evaluation directory: [bold]{directory}[/]")


def validated(model: Any, values: dict[str, Any], origin: str) -> Any:
    """`model` built from `values`, or a ConfigError that names the bad option and what is allowed."""
    from pydantic import ValidationError

    from reasonrl.config.errors import config_error

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise config_error(model, exc, origin) from None


@data_app.command("preview")
@user_errors
def data_preview(
    spec: Annotated[str, typer.Argument(help="Data spec, e.g. sum, chain_sum?num_terms=3, gsm8k:test.jsonl.")],
    n: Annotated[int, typer.Option("-n", help="Prompts to show.")] = 5,
    config: Annotated[Path | None, typer.Option(help="Config whose model and data.format render the prompts.")] = None,
    overrides: Overrides = None,
) -> None:
    """Show prompts exactly as the model will see them (through its chat template), with their answers."""
    from transformers import AutoTokenizer

    from reasonrl.data import load_prompts, render_prompt
    from reasonrl.models.resolve import resolve_model_path

    run = load_config(config, overrides or [])
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(run.model.path))
    prompts = load_prompts(spec)
    for prompt in prompts[:n]:
        console.rule(f"[bold]{prompt.id}[/]  task={prompt.task}  answer={prompt.answer!r}")
        console.print(render_prompt(prompt, tokenizer, run.data.format), markup=False, highlight=False)
    console.print(f"[dim]{min(n, len(prompts))} of {len(prompts)} prompts; model {run.model.path}[/]")


def main() -> None:
    app()
