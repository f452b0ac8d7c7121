"""Training throughput of reasonrl against TRL's `GRPOTrainer` on the same workload, and engine overhead.

Both systems train the built-in tiny model (`builtin:tiny`, a ~0.8M-parameter Qwen2 with a byte-level
tokenizer) on the same plain-text prompts (`sum?size=512`, e.g. `4-1-7=`), with the same reward (reasonrl's
`exact` verifier, the `sum` preset's own), on CPU in fp32, with the same batch shape: 8 prompts x 8 samples =
64 completions per step, temperature 1, one optimizer step per batch, no KL (beta = 0, no reference model),
the same learning rate and gradient clip. Two shapes: at most 16 new tokens ("short") and at most 64 ("long").
Generation stops at EOS in both systems exactly as in training (the mean completion length each produced is
reported; they must be comparable).

What is timed is steady-state training: the wall time of each RL step (generation + reward + log-probs +
update + weight sync), the first step skipped as warm-up; start-up, reasonrl's held-out evaluations and its
final checkpoint are outside the timed steps. reasonrl's step times come from its own `metrics.jsonl`
(`time/step`); TRL's from a `TrainerCallback` that stamps `on_step_end`. Both systems run with one torch thread
and with torch's default thread count (one per core); the ratio is reported at equal threads and between each
system's faster setting.
The systems alternate (`--rounds`, reasonrl then TRL, twice by default) so that a change in the load of a
shared machine hits both; samples/s pool every measured step of every round (total samples / total seconds),
and a ratio of median step times is reported beside it as a check against load spikes.

The engine overhead compares `HFEngine.generate` with a raw `model.generate` call on the same 64-row
left-padded batch, both forced to the full length (the engine with its EOS set emptied, `generate` with
`min_new_tokens == max_new_tokens`): median of 5 runs each after a warm-up.

    python benchmarks/bench_trl.py [--shape short|long|both] [--steps 6] [--rounds 2]

Prints a table and writes benchmarks/results/trl_comparison.json. Needs `pip install -e .[bench]` (trl).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore", message=".*TRL currently supports vLLM.*")

import torch  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()  # before anything (reasonrl included) changes it

from rich.console import Console  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from reasonrl.config import load_config  # noqa: E402
from reasonrl.config.schema import PromptFormat  # noqa: E402
from reasonrl.data import load_prompts, render_prompt  # noqa: E402
from reasonrl.engines.base import GenerationRequest, SamplingSettings  # noqa: E402
from reasonrl.engines.hf import HFEngine  # noqa: E402
from reasonrl.models.resolve import resolve_model_path  # noqa: E402
from reasonrl.pipelines.sync import train  # noqa: E402
from reasonrl.rewards.registry import get_verifier  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "trl_comparison.json"
MODEL = "builtin:tiny"
DATA = "sum?size=512"
SHAPES = {"short": 16, "long": 64}  # max new tokens
PROMPTS_PER_STEP = 8
GROUP_SIZE = 8
BATCH = PROMPTS_PER_STEP * GROUP_SIZE
LR = 1e-5
GRAD_CLIP = 1.0
SEED = 0
ENGINE_RUNS = 5


# ---- reasonrl -----------------------------------------------------------------------------------------------
def run_reasonrl(max_new_tokens: int, steps: int, threads: int) -> dict[str, Any]:
    """Train `steps + 1` RL steps through the library API; steady-state numbers from `metrics.jsonl`."""
    with tempfile.TemporaryDirectory(prefix="bench-trl-reasonrl-") as tmp:
        run_dir = Path(tmp) / "run"
        config = load_config(
            None,
            [
                f"model.path={MODEL}",
                f"data.train={DATA}",
                "data.format.template=plain",
                "rollout.engine=hf",
                f"rollout.group_size={GROUP_SIZE}",
                f"rollout.batch_size={BATCH}",
                f"rollout.max_new_tokens={max_new_tokens}",
                "rollout.temperature=1.0",
                "rollout.stop=[]",
                "algorithm.kl_coef=0",
                "algorithm.reward.workers=0",
                f"train.steps={steps + 1}",
                f"train.lr={LR}",
                f"train.grad_clip={GRAD_CLIP}",
                f"train.seed={SEED}",
                f"train.num_threads={threads}",
                "train.sft.steps=0",
                "eval.max_prompts=8",
                f"logging.run_dir={run_dir}",
                "logging.progress=false",
                "logging.tensorboard=false",
                "logging.plots=false",
                "logging.rollout_dump_every=0",
            ],
        )
        started = time.perf_counter()
        train(config, console=Console(file=io.StringIO()))  # the per-step lines go nowhere
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps_rows = [row for row in rows if "time/step" in row]
    measured = steps_rows[1:]
    seconds = [row["time/step"] for row in measured]
    phases = sorted({key for row in measured for key in row if key.startswith("time/") and key != "time/step"})
    return {
        "threads": threads,
        "samples_per_second": BATCH * len(seconds) / sum(seconds),
        "steps_measured": len(seconds),
        "step_seconds": seconds,
        "warmup_step_seconds": steps_rows[0]["time/step"],
        "mean_completion_tokens": statistics.fmean(row["response_length/mean"] for row in measured),
        "phase_seconds": {key.removeprefix("time/"): statistics.fmean(row[key] for row in measured) for key in phases},
        "process_wall_seconds": wall,
    }


# ---- TRL ----------------------------------------------------------------------------------------------------
def run_trl(max_new_tokens: int, steps: int, threads: int) -> dict[str, Any]:
    """Train `steps + 1` steps with `GRPOTrainer`; step times from `on_step_end` stamps, first one skipped."""
    import datasets
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    folder = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    fmt = PromptFormat(template="plain")
    dataset = datasets.Dataset.from_list(
        [{"prompt": render_prompt(p, tokenizer, fmt), "answer": str(p.answer)} for p in load_prompts(DATA)]
    )
    exact = get_verifier("exact")
    lengths: list[list[int]] = []  # completion lengths in tokens, one list per step (reward calls once a step)

    def exact_reward(completions: list[str], answer: list[str], completion_ids: list[list[int]], **_: Any) -> list:
        lengths.append([len(ids) for ids in completion_ids])
        return [exact(text, gold) for text, gold in zip(completions, answer, strict=True)]

    stamps: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="bench-trl-trl-") as tmp:
        args = GRPOConfig(
            output_dir=tmp,
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,  # TRL's default is True; reasonrl's learner does not checkpoint
            per_device_train_batch_size=BATCH,  # counted in completions
            gradient_accumulation_steps=1,
            steps_per_generation=1,
            num_iterations=1,
            num_generations=GROUP_SIZE,
            max_completion_length=max_new_tokens,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            learning_rate=LR,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=GRAD_CLIP,
            max_steps=steps + 1,
            use_vllm=False,
            logging_steps=10**6,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=SEED,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=exact_reward,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[StepClock()],
        )
        trainer.remove_callback(PrinterCallback)
        started = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - started
    seconds = [b - a for a, b in itertools.pairwise(stamps)]
    measured_lengths = [n for step in lengths[1:] for n in step]
    return {
        "threads": threads,
        "samples_per_second": BATCH * len(seconds) / sum(seconds),
        "steps_measured": len(seconds),
        "step_seconds": seconds,
        "warmup_step_seconds": None,  # the first step's start is not stamped; it is only skipped
        "mean_completion_tokens": statistics.fmean(measured_lengths),
        "train_wall_seconds": wall,
    }


# ---- engine overhead ----------------------------------------------------------------------------------------
def engine_overhead(max_new_tokens: int, threads: int) -> dict[str, Any]:
    """Median seconds of `HFEngine.generate` and raw `model.generate` on the same full-length 64-row batch."""
    torch.set_num_threads(threads)
    folder = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    fmt = PromptFormat(template="plain")
    prompts = load_prompts(DATA)[:PROMPTS_PER_STEP]
    ids = [tokenizer(render_prompt(p, tokenizer, fmt), add_special_tokens=False)["input_ids"] for p in prompts]
    ids = [row for row in ids for _ in range(GROUP_SIZE)]
    requests = [GenerationRequest(prompt_ids=row) for row in ids]
    sampling = SamplingSettings(max_new_tokens=max_new_tokens, temperature=1.0)

    engine = HFEngine(model, tokenizer, seed=SEED)
    eos_ids = sorted(engine.eos_ids)
    engine.eos_ids = frozenset()  # no early stop: every row runs to max_new_tokens, as raw generate is forced to

    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), engine.pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, width - len(seq) :] = torch.tensor(seq)
        attention[row, width - len(seq) :] = 1

    def run_engine() -> int:
        out = engine.generate(requests, sampling)
        return min(len(g.response_ids) for g in out)

    @torch.inference_mode()
    def run_raw() -> int:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            pad_token_id=engine.pad_id,
            eos_token_id=eos_ids,
            output_scores=False,
            return_dict_in_generate=False,
        )
        return out.shape[1] - width

    timings: dict[str, list[float]] = {"engine": [], "raw": []}
    produced = {"engine": run_engine(), "raw": run_raw()}  # warm-up
    for _ in range(ENGINE_RUNS):  # interleaved, so a load spike hits both
        for name, fn in (("engine", run_engine), ("raw", run_raw)):
            start = time.perf_counter()
            produced[name] = min(produced[name], fn())
            timings[name].append(time.perf_counter() - start)
    engine_s, raw_s = statistics.median(timings["engine"]), statistics.median(timings["raw"])
    return {
        "max_new_tokens": max_new_tokens,
        "rows": len(requests),
        "threads": threads,
        "engine_seconds_median": engine_s,
        "raw_generate_seconds_median": raw_s,
        "engine_seconds": timings["engine"],
        "raw_generate_seconds": timings["raw"],
        "min_tokens_per_row": produced,
        "ratio_engine_over_raw": engine_s / raw_s,
    }


# ---- report -------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model_name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model_name,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_default_threads": DEFAULT_THREADS,
    }


def versions() -> dict[str, str]:
    names = ("torch", "transformers", "trl", "accelerate", "datasets", "reasonrl")
    return {name: version(name) for name in names}


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's rounds as one measurement: all measured steps together, and each round kept."""
    seconds = [t for run in runs for t in run["step_seconds"]]
    return {
        "threads": runs[0]["threads"],
        "samples_per_second": BATCH * len(seconds) / sum(seconds),
        "samples_per_second_median_step": BATCH / statistics.median(seconds),
        "steps_measured": len(seconds),
        "mean_completion_tokens": statistics.fmean(run["mean_completion_tokens"] for run in runs),
        "rounds": runs,
    }


def print_table(report: dict[str, Any], thread_counts: list[int]) -> None:
    load = report["machine"]
    print(
        f"\nmachine: {load['nproc']} CPUs, load average {load['load_average_before'][0]:.2f} -> "
        f"{load['load_average_after'][0]:.2f}; " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    )
    header = f"{'shape':<16}" + "".join(f"{'ours t=' + str(t):>10}{'TRL t=' + str(t):>10}" for t in thread_counts)
    print(header + f"{'best/best':>10}{'median':>8}{'mean len rr/TRL':>17}   (samples/s, steady state)")
    for shape, r in report["shapes"].items():
        best = r["trl_by_threads"][str(r["trl_best_threads"])]
        line = f"{shape + ' (' + str(r['max_new_tokens']) + ' tok)':<16}"
        line += "".join(
            f"{r['reasonrl_by_threads'][str(t)]['samples_per_second']:>10.1f}"
            f"{r['trl_by_threads'][str(t)]['samples_per_second']:>10.1f}"
            for t in thread_counts
        )
        lengths = f"{r['reasonrl']['mean_completion_tokens']:.1f}/{best['mean_completion_tokens']:.1f}"
        ratios = f"{r['ratio_reasonrl_over_trl']:>9.2f}x{r['ratio_reasonrl_over_trl_median_step']:>7.2f}x"
        print(line + ratios + f"{lengths:>17}")
    print("best/best: each system at its faster thread count (pooled samples/s; median: 64 / median step time)")
    for o in report["engine_overhead"].values():
        engine_s, raw_s = o["engine_seconds_median"], o["raw_generate_seconds_median"]
        where = f"{o['max_new_tokens']} tok, {o['rows']} rows"
        ratio = o["ratio_engine_over_raw"]
        print(f"engine overhead ({where}): HFEngine {engine_s:.3f} s vs raw generate {raw_s:.3f} s = {ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["short", "long", "both"], default="both")
    parser.add_argument("--steps", type=int, default=6, help="measured steps per system (one more runs as warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the systems; steps pool over them")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")

    load_before = os.getloadavg()
    started = time.perf_counter()
    shapes = list(SHAPES) if args.shape == "both" else [args.shape]
    thread_counts = sorted({1, DEFAULT_THREADS})
    results: dict[str, Any] = {}
    for shape in shapes:
        tokens = SHAPES[shape]
        ours_rounds: dict[str, list[dict[str, Any]]] = {str(t): [] for t in thread_counts}
        trl_rounds: dict[str, list[dict[str, Any]]] = {str(t): [] for t in thread_counts}
        for round_index in range(args.rounds):  # A B A B ...: a load change between systems hits both
            tag = f"[{shape} {round_index + 1}/{args.rounds}]"
            for threads in thread_counts:
                print(f"{tag} reasonrl, max_new_tokens={tokens}, threads={threads}", file=sys.stderr, flush=True)
                ours_rounds[str(threads)].append(run_reasonrl(tokens, args.steps, threads))
                print(f"{tag} TRL GRPOTrainer, threads={threads}", file=sys.stderr, flush=True)
                trl_rounds[str(threads)].append(run_trl(tokens, args.steps, threads))
        ours_runs = {key: pooled(runs) for key, runs in ours_rounds.items()}
        trl_runs = {key: pooled(runs) for key, runs in trl_rounds.items()}
        ours = max(ours_runs.values(), key=lambda r: r["samples_per_second"])
        best = max(trl_runs.values(), key=lambda r: r["samples_per_second"])
        results[shape] = {
            "max_new_tokens": tokens,
            "prompts_per_step": PROMPTS_PER_STEP,
            "samples_per_prompt": GROUP_SIZE,
            "reasonrl": ours,
            "reasonrl_by_threads": ours_runs,
            "trl_by_threads": trl_runs,
            "trl_best_threads": best["threads"],
            "ratio_reasonrl_over_trl": ours["samples_per_second"] / best["samples_per_second"],
            "ratio_reasonrl_over_trl_median_step": ours["samples_per_second_median_step"]
            / best["samples_per_second_median_step"],
            "ratio_at_equal_threads": {
                key: ours_runs[key]["samples_per_second"] / run["samples_per_second"] for key, run in trl_runs.items()
            },
        }
    overhead = {}
    for shape in shapes:
        print(f"[{shape}] engine overhead", file=sys.stderr, flush=True)
        overhead[shape] = engine_overhead(SHAPES[shape], threads=1)
    load_after = os.getloadavg()

    report = {
        "benchmark": "reasonrl vs TRL GRPOTrainer, steady-state training samples/s on CPU",
        "command": "python benchmarks/bench_trl.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine() | {"load_average_before": load_before, "load_average_after": load_after},
        "versions": versions(),
        "workload": {
            "model": MODEL,
            "data": DATA,
            "prompt_format": "plain",
            "reward": "exact (reasonrl verifier, both systems)",
            "batch": f"{PROMPTS_PER_STEP} prompts x {GROUP_SIZE} samples",
            "temperature": 1.0,
            "kl_beta": 0.0,
            "learning_rate": LR,
            "grad_clip": GRAD_CLIP,
            "optimizer_steps_per_batch": 1,
            "dtype": "float32",
            "steps_measured_per_system_and_round": args.steps,
            "rounds": args.rounds,
            "warmup_steps_skipped": 1,
        },
        "shapes": results,
        "engine_overhead": overhead,
        "targets": {
            "short_ratio_at_least": 10.0,
            "short_ratio_met": results.get("short", {}).get("ratio_reasonrl_over_trl", 0.0) >= 10.0,
            "engine_overhead_at_most": 1.2,
            "engine_overhead_met": all(o["ratio_engine_over_raw"] <= 1.2 for o in overhead.values()),
        },
        "total_seconds": time.perf_counter() - started,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    print_table(report, thread_counts)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
