"""`reasonrl eval`: generate N samples per problem once, store them, score them, and report every strategy.

The order: load (or read stored samples) -> generate with the rollout engine -> score (verifier, answer
classes, scorers) -> store samples.jsonl -> curves for every strategy from the stored samples -> particle
filtering (which generates its own, step by step) -> report.json / report.md / accuracy_vs_n.png.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from reasonrl.data import Prompt, load_prompts
from reasonrl.engines.base import Engine, SamplingSettings
from reasonrl.evaluation.annotate import score_stored
from reasonrl.evaluation.metrics import n_schedule, sample_subsets
from reasonrl.evaluation.particles import ParticleFilter
from reasonrl.evaluation.records import EvalSample, Problem, group_problems, read_samples, write_samples
from reasonrl.evaluation.report import EvalReport, write_report
from reasonrl.evaluation.scaling import (
    Curve,
    IntervalSettings,
    oracle_curve,
    point,
    samples_per_problem,
    strategy_curves,
)
from reasonrl.evaluation.scorers import Scorer, build_scorer, check_scorer
from reasonrl.evaluation.settings import EvalSettings
from reasonrl.evaluation.strategies import StrategySpec, generates_responses, parse_strategy
from reasonrl.rewards import RewardPool
from reasonrl.rewards.code import record_sandbox
from reasonrl.rollout.collect import PromptEncoder, generate_samples
from reasonrl.rollout.synthesis import Synthesizer
from reasonrl.tracking.progress import WorkProgress

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
PARTICLES_FILE = "particles.jsonl"
SYNTHESES_FILE = "syntheses.jsonl"
# Prompts per engine call: enough to fill the hf engine's batch, few enough for a lively progress bar.
_RESPONSES_PER_CALL = 256
# Off a terminal, generation prints a line each time this share of the problems is done (at chunk ends).
_PROGRESS_PERCENT = 10.0


@dataclass
class ModelSession:
    """A loaded policy behind a rollout engine, and the encoder of its prompts."""

    engine: Engine
    tokenizer: Any
    encode: PromptEncoder
    device: str

    def close(self) -> None:
        self.engine.close()


def open_model(settings: EvalSettings, model: str | None = None) -> ModelSession:
    """The engine `settings.engine` asks for, on the model folder `model` (default `settings.model`) resolves
    to."""
    from transformers import AutoModelForCausalLM

    from reasonrl.engines.factory import choose_engine
    from reasonrl.engines.hf import HFEngine
    from reasonrl.engines.vllm import VLLMEngine, vllm_available
    from reasonrl.models.resolve import resolve_model_path
    from reasonrl.training.models import DTYPES, configure_threads, load_tokenizer, pick_device

    configure_threads(0)
    folder = resolve_model_path(model or settings.model or "")
    tokenizer = load_tokenizer(folder)
    device = pick_device("auto")
    kind = choose_engine(settings.engine)
    if kind == "vllm":
        if not vllm_available():
            raise ValueError("--engine vllm but vLLM is not installed; `pip install -e .[vllm]`, or use --engine hf")
        engine: Engine = VLLMEngine(folder, seed=settings.seed, dtype=settings.dtype, max_model_len=4096)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES[settings.dtype]).to(device)
        engine = HFEngine(model.eval(), tokenizer, seed=settings.seed)
    return ModelSession(engine, tokenizer, PromptEncoder(tokenizer, settings.format), str(device))


def generate(
    prompts: Sequence[Prompt], n: int, session: ModelSession, sampling: SamplingSettings, console: Console
) -> list[EvalSample]:
    """`n` samples per prompt through the rollout engine, in chunks under a progress bar (on a terminal) or
    with a line every `_PROGRESS_PERCENT`% of the problems and an ETA (in a log, which cannot show a bar)."""
    chunk = max(1, _RESPONSES_PER_CALL // n)
    samples: list[EvalSample] = []
    with WorkProgress("generating", len(prompts), "problems", console=console, percent=_PROGRESS_PERCENT) as progress:
        for start in range(0, len(prompts), chunk):
            part = prompts[start : start + chunk]
            for i, s in enumerate(generate_samples(part, n, session.engine, session.encode, sampling)):
                samples.append(
                    EvalSample(
                        prompt=s.prompt,
                        index=i % n,
                        prompt_ids=s.prompt_ids,
                        response=s.response_text,
                        response_ids=s.response_ids,
                        logprobs=s.behaviour_logprobs,
                        finish_reason=s.finish_reason,
                    )
                )
            progress.advance(len(part))
    return samples


def particle_curve(
    spec: StrategySpec,
    problems: Sequence[Problem],
    session: ModelSession,
    scorer: Scorer,
    verifier: RewardPool,
    settings: EvalSettings,
    interval: IntervalSettings,
) -> tuple[Curve, list[dict[str, Any]]]:
    """Particle filtering with 1, 2, 4, ... `settings.n` particles on every problem, and its records."""
    prompts = [p.prompt for p in problems]
    ids = [session.encode(p) for p in prompts]
    pf = ParticleFilter(
        engine=session.engine,
        tokenizer=session.tokenizer,
        scorer=scorer,
        options=spec.particle_options(),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
    )
    points, records = [], []
    extra_tokens = 0.0  # all of its tokens are its own: it does not use the stored samples
    for n in n_schedule(settings.n):
        outcomes = pf.run(prompts, ids, n)
        extra_tokens = statistics.fmean(o.generated_tokens for o in outcomes)  # the last one is at the largest N
        verdicts = verifier.score(prompts, [o.response for o in outcomes])
        values = [1.0 if v.reward >= 1.0 else 0.0 for v in verdicts]
        points.append(point(n, values, interval))
        records += [
            {
                "problem_id": o.prompt.id,
                "particles": n,
                "steps": o.steps,
                "generated_tokens": o.generated_tokens,
                "response": o.response,
                "correct": value,
                "scores": [p.score for p in o.particles],
                "weights": o.weights,
            }
            for o, value in zip(outcomes, values, strict=True)
        ]
    return Curve(spec.label, points, extra_tokens_per_problem=extra_tokens), records


def synthesis_curve(
    spec: StrategySpec,
    problems: Sequence[Problem],
    session: ModelSession,
    verifier: RewardPool,
    settings: EvalSettings,
    interval: IntervalSettings,
) -> tuple[Curve, list[dict[str, Any]]]:
    """CoT-based Synthesizer at N = 1, 2, 4, ... N_max: for `subsets` size-N subsets of each problem's stored
    responses, the synthesizing model (the policy, or `model`) reads up to `m` of them and writes a solution
    that the verifier scores. Returns the curve, whose `extra_tokens_per_problem` is the synthesis's mean
    generated tokens per problem at N_max (beyond the N samples), and one record per synthesis."""
    options = spec.synthesize_options()
    own = open_model(settings, options.model) if options.model is not None else None
    try:
        target = own or session
        synthesize = Synthesizer(
            target.engine,
            target.tokenizer,
            max_candidates=options.m,
            max_new_tokens=options.max_new_tokens or settings.max_new_tokens,
            temperature=options.temperature,
            top_p=settings.top_p,
        )
        n_max = samples_per_problem(problems)
        rng = np.random.default_rng(settings.seed)
        points, records, extra_tokens = [], [], 0.0
        for n in n_schedule(n_max):
            jobs = [(p, subset) for p in problems for subset in sample_subsets(n_max, n, options.subsets, rng)]
            results = synthesize([p.prompt for p, _ in jobs], [[p.samples[i].response for i in s] for p, s in jobs])
            verdicts = verifier.score([p.prompt for p, _ in jobs], [r.text for r in results])
            correct: dict[str, list[float]] = {}
            spent: dict[str, list[int]] = {}
            for (problem, subset), result, verdict in zip(jobs, results, verdicts, strict=True):
                value = 1.0 if verdict.reward >= 1.0 else 0.0
                correct.setdefault(problem.prompt.id, []).append(value)
                spent.setdefault(problem.prompt.id, []).append(result.tokens)
                records.append(
                    {
                        "problem_id": problem.prompt.id,
                        "n": n,
                        "candidates": list(subset[: options.m]),
                        "response": result.text,
                        "tokens": result.tokens,
                        "prompt_tokens": result.prompt_tokens,
                        "correct": value,
                    }
                )
            points.append(point(n, [statistics.fmean(v) for v in correct.values()], interval))
            # Per problem: its mean over subsets; the last N's is the curve's (its largest N).
            extra_tokens = statistics.fmean(statistics.fmean(v) for v in spent.values())
    finally:
        if own is not None:
            own.close()
    return Curve(spec.label, points, extra_tokens_per_problem=extra_tokens), records


def run_evaluation(settings: EvalSettings, console: Console | None = None) -> tuple[EvalReport, Path]:
    """Evaluate as `settings` say; returns the report and the directory it was written to."""
    console = console or Console()
    started = time.perf_counter()
    out = Path(settings.out or f"evals/{datetime.now():%Y%m%d-%H%M%S}")
    strategies = [parse_strategy(s) for s in settings.strategies]
    if not any(s.name == "majority" for s in strategies):  # maj@k is a headline metric of every report
        strategies.insert(0, parse_strategy("majority"))
    selection = [s for s in strategies if not generates_responses(s.name)]
    particle = [s for s in strategies if generates_responses(s.name)]
    scorer_names = list(dict.fromkeys(check_scorer(s.scorer) for s in strategies if s.scorer is not None))
    interval = IntervalSettings(settings.subsets, settings.bootstrap, settings.confidence, settings.seed)
    sampling = SamplingSettings(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p if settings.temperature > 0 else 1.0,
    )
    timings: dict[str, float] = {}
    session = open_model(settings) if settings.samples is None or particle else None
    verifier = RewardPool(None, workers=settings.reward_workers, timeout_seconds=settings.reward_timeout)
    scorers = {
        name: build_scorer(
            name,
            device=session.device if session else "cpu",
            reward_workers=settings.reward_workers,
            reward_timeout=settings.reward_timeout,
        )
        for name in scorer_names
    }
    try:
        if settings.samples is not None:
            samples = read_samples(Path(settings.samples))
            record_sandbox([], [s.prompt for s in samples], out)
        else:
            assert session is not None and settings.data is not None
            prompts = load_prompts(settings.data, config_key="--data")
            record_sandbox([], prompts, out)
            tick = time.perf_counter()
            samples = generate(prompts, settings.n, session, sampling, console)
            timings["generate_seconds"] = time.perf_counter() - tick
            timings["samples_per_second"] = len(samples) / max(timings["generate_seconds"], 1e-9)
        tick = time.perf_counter()
        score_stored(samples, verifier, scorers)
        write_samples(out / SAMPLES_FILE, samples)
        timings["score_seconds"] = time.perf_counter() - tick
        problems = group_problems(samples)
        tick = time.perf_counter()
        curves = [oracle_curve(problems, interval), *strategy_curves(problems, selection, interval)]
        timings["strategies_seconds"] = time.perf_counter() - tick
        if particle:
            assert session is not None
            tick = time.perf_counter()
            records: list[dict[str, Any]] = []
            syntheses: list[dict[str, Any]] = []
            for spec in particle:
                if spec.name == "synthesize":
                    curve, found = synthesis_curve(spec, problems, session, verifier, settings, interval)
                    curves.append(curve)
                    syntheses += found
                    continue
                curve, found = particle_curve(
                    spec, problems, session, scorers[spec.scorer], verifier, settings, interval
                )
                curves.append(curve)
                records += found
            if records:
                write_particle_records(out / PARTICLES_FILE, records)
            if syntheses:
                write_particle_records(out / SYNTHESES_FILE, syntheses)
            timings["generating_strategies_seconds"] = time.perf_counter() - tick
    finally:
        verifier.close()
        for scorer in scorers.values():
            scorer.close()
        if session is not None:
            session.close()
    timings["total_seconds"] = time.perf_counter() - started
    report = EvalReport(
        model=settings.model or f"(stored samples {settings.samples})",
        data=settings.data or f"samples:{settings.samples}",
        problems=len(problems),
        samples_per_problem=samples_per_problem(problems),
        mean_accuracy=statistics.fmean(s.correct for s in samples),
        curves=curves,
        settings=settings.model_dump(mode="json", exclude={"model", "data"}),
        timings=timings,
        excluded_samples=sum(s.excluded for s in samples),
    )
    if report.excluded_samples:
        logger.warning(
            "%d of %d samples could not be judged (the verifier raised RewardUnavailable twice); they count as not "
            "correct: see docs/code.md",
            report.excluded_samples,
            len(samples),
        )
    write_report(report, out)
    return report, out


def write_particle_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """One JSON line per problem and particle count: the chosen response, its verdict, the final weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
