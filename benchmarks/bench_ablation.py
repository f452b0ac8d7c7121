"""Ablation of every algorithm on the built-in demo task, all from one warm-up checkpoint.

The demo's supervised warm-up (src/reasonrl/recipes/demo.yaml) runs once; every algorithm then starts RL
from that `sft_model` folder (`model.path`, `train.sft.steps=0`) for the same steps and seeds, so
the curves differ only by the algorithm. Every run uses `train.mini_batches=2`: with one optimizer step per
batch the importance ratio is exactly 1 and every clipped loss (PPO, dual clip, GPPO, CISPO, GSPO) would be
the same plain policy gradient; two steps per batch make the second one off-policy, where they differ.
Held-out accuracy is the demo's avg@4 at temperature 1 on 200 prompts; wall time is the sum of the RL
steps' time (evaluations excluded).

    python benchmarks/bench_ablation.py [--steps 150] [--eval-every 50] [--seeds 0 1 2] [--jobs 1]
        [--algorithms grpo rloo ...] [--out benchmarks/results/ablation]

Writes OUT.json (every curve), OUT.md (the table) and OUT.png (accuracy against step and against wall
time), and checks that no run produced a NaN and that none ends below its warm-up accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reasonrl.config import load_config
from reasonrl.pipelines.sync import train
from reasonrl.tracking import read_metrics
from warmup import DEMO, build_warmup  # the warm-up checkpoint bench_async.py shares

OUT = Path(__file__).parent / "results" / "ablation"
WORK = Path(__file__).parents[1] / "runs" / "ablation"  # git-ignored: checkpoints and metrics of every run

# name -> overrides on top of the demo recipe (which already sets GRPO with clip-higher 0.28).
ALGORITHMS: dict[str, list[str]] = {
    "grpo": [],
    "dr_grpo": ["algorithm.advantage=dr_grpo", "algorithm.loss_aggregation=seq-mean-token-sum-norm"],
    "rloo": ["algorithm.advantage=rloo"],
    "reinforce_pp": ["algorithm.advantage=reinforce_pp"],
    "reinforce_pp_baseline": ["algorithm.advantage=reinforce_pp_baseline"],
    "gspo": [
        "algorithm.policy_loss=gspo",
        "algorithm.clip_low=0.0003",
        "algorithm.clip_high=0.0004",
        "algorithm.loss_aggregation=seq-mean-token-mean",
    ],
    # GPPO and CISPO keep a gradient on clipped tokens, so their off-policy second mini-batch moves further
    # than PPO's; at the demo's 5e-4 one seed in three collapsed to ~0 within 50 steps, at 2e-4 none did.
    "gppo": ["algorithm.policy_loss=gppo", "algorithm.dual_clip=3.0", "train.lr=0.0002"],
    "cispo": ["algorithm.policy_loss=cispo", "train.lr=0.0002"],
    "ppo_clip_higher_dual_clip": ["algorithm.dual_clip=3.0"],
    "ppo_gae_critic": ["algorithm.advantage=gae", "algorithm.critic.lr=0.0005"],
    "asyppo": ["algorithm.advantage=gae", "algorithm.critic.lr=0.0005", "algorithm.critic.count=2"],
    "dynamic_sampling": ["algorithm.dynamic_sampling=true"],
    # The demo's answers are 1-4 tokens: only a short FAI window leaves any token an anchor.
    "attention_credit": [
        "algorithm.attention_credit.enabled=true",
        "algorithm.attention_credit.future_near=1",
        "algorithm.attention_credit.future_far=4",
    ],
}


def run_one(name: str, seed: int, warmup: Path, steps: int, eval_every: int, work: Path) -> dict[str, Any]:
    """One RL run; its held-out accuracy curve against step and RL wall time, and whether anything was NaN."""
    run_dir = work / f"{name}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a rerun starts fresh; only the warm-up is reused
    overrides = [
        f"model.path={warmup}",
        "train.sft.steps=0",
        f"train.steps={steps}",
        f"train.seed={seed}",
        "train.mini_batches=2",
        f"eval.every_steps={eval_every}",
        f"logging.run_dir={run_dir}",
        "logging.progress=false",
        "logging.rollout_dump_every=0",
        *ALGORITHMS[name],
    ]
    started = time.perf_counter()
    summary = train(load_config(DEMO, overrides))
    rows = read_metrics(run_dir / "metrics.jsonl")
    wall, curve, nonfinite, amplified = 0.0, [], False, []
    for row in rows:
        wall += row.get("time/step") or 0.0
        numbers = [v for k, v in row.items() if k != "step" and isinstance(v, float)]
        nonfinite |= any(not math.isfinite(v) for v in numbers) or any(v is None for v in row.values())
        if "accuracy/eval" in row:
            if curve and curve[-1]["step"] == row["step"]:
                curve.pop()  # the final evaluation after the last step replaces a periodic one at that step
            curve.append({"step": row["step"], "wall_seconds": round(wall, 2), "accuracy": row["accuracy/eval"]})
        if "credit/amplified_share" in row:
            amplified.append(row["credit/amplified_share"])
    result = {
        "algorithm": name,
        "seed": seed,
        "warmup_accuracy": summary["accuracy_before"],
        "final_accuracy": summary["accuracy_after"],
        "curve": curve,
        "rl_wall_seconds": round(wall, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "nonfinite": nonfinite,
        "overrides": ALGORITHMS[name],
    }
    if amplified:
        result["credit_amplified_share"] = round(statistics.fmean(amplified), 4)
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per algorithm: mean ± std over seeds of warm-up and final accuracy, RL wall time, and the checks."""
    rows = []
    for name in dict.fromkeys(r["algorithm"] for r in runs):
        mine = [r for r in runs if r["algorithm"] == name]
        final, final_std = _mean_std([r["final_accuracy"] for r in mine])
        warm, _ = _mean_std([r["warmup_accuracy"] for r in mine])
        wall, _ = _mean_std([r["rl_wall_seconds"] for r in mine])
        rows.append(
            {
                "algorithm": name,
                "seeds": len(mine),
                "warmup_accuracy": round(warm, 4),
                "final_accuracy": round(final, 4),
                "final_accuracy_std": round(final_std, 4),
                "rl_wall_seconds": round(wall, 1),
                "no_nan": not any(r["nonfinite"] for r in mine),
                "never_below_warmup": all(r["final_accuracy"] >= r["warmup_accuracy"] for r in mine),
            }
        )
    return rows


def markdown(summary: list[dict[str, Any]], command: str, steps: int) -> str:
    lines = [
        f"# Algorithm ablation on the demo task ({steps} RL steps from one warm-up checkpoint)",
        "",
        f"Made by `{command}`; curves in `ablation.json`, plot in `ablation.png`.",
        "",
        "| algorithm | seeds | warm-up acc | final acc (mean ± std) | RL wall s | no NaN | final >= warm-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        lines.append(
            f"| {row['algorithm']} | {row['seeds']} | {row['warmup_accuracy']:.3f} | {row['final_accuracy']:.3f} ± "
            f"{row['final_accuracy_std']:.3f} | {row['rl_wall_seconds']:.0f} | {'yes' if row['no_nan'] else 'NO'} | "
            f"{'yes' if row['never_below_warmup'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Mean accuracy over seeds against step and against mean RL wall time, one line per algorithm."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5))
    FigureCanvasAgg(figure)
    by_step, by_wall = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    names = list(dict.fromkeys(r["algorithm"] for r in runs))
    colours = colormaps["tab20"].colors  # 13 lines: the default 10-colour cycle would repeat
    for index, name in enumerate(names):
        style = {"marker": "os^D"[index % 4], "color": colours[index % len(colours)], "label": name}
        curves = [r["curve"] for r in runs if r["algorithm"] == name]
        points = min(len(c) for c in curves)
        steps = [curves[0][i]["step"] for i in range(points)]
        accuracy = [statistics.fmean(c[i]["accuracy"] for c in curves) for i in range(points)]
        wall = [statistics.fmean(c[i]["wall_seconds"] for c in curves) for i in range(points)]
        by_step.plot(steps, accuracy, **style)
        by_wall.plot(wall, accuracy, **style)
    by_step.set(xlabel="RL step", ylabel="held-out accuracy (avg@4, T=1)", title="Accuracy vs step")
    by_wall.set(xlabel="RL wall time (s, evaluations excluded)", title="Accuracy vs wall time")
    by_wall.legend(fontsize=7, loc="lower right")
    for axes in (by_step, by_wall):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algorithms", nargs="+", choices=sorted(ALGORITHMS), default=list(ALGORITHMS))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (each uses one torch thread)")
    parser.add_argument("--out", type=Path, default=OUT, help="prefix of the .json, .md and .png written")
    parser.add_argument("--work", type=Path, default=WORK, help="run directories (the warm-up is reused)")
    args = parser.parse_args()

    command = " ".join(["python", *sys.argv])
    load_before = os.getloadavg()[0]
    warmup = build_warmup(args.work)
    jobs = [(name, seed) for name in args.algorithms for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, name, seed, warmup, args.steps, args.eval_every, args.work) for name, seed in jobs
        ]
        runs = []
        for (name, seed), future in zip(jobs, futures, strict=True):
            runs.append(future.result())
            print(f"{name} seed {seed}: {runs[-1]['warmup_accuracy']:.3f} -> {runs[-1]['final_accuracy']:.3f}")
    summary = summarise(runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "algorithm ablation on the demo task (builtin:tiny, bits), one shared warm-up checkpoint",
        "command": command,
        "steps": args.steps,
        "eval_every": args.eval_every,
        "seeds": args.seeds,
        "jobs": args.jobs,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": load_before},
        "summary": summary,
        "runs": runs,
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary, command, args.steps))
    plot(runs, args.out.with_suffix(".png"))
    print(markdown(summary, command, args.steps))
    failed = [r["algorithm"] for r in summary if not (r["no_nan"] and r["never_below_warmup"])]
    print("checks: " + ("all runs finite and none below warm-up" if not failed else f"FAILED for {failed}"))


if __name__ == "__main__":
    main()
