"""Evaluation reports: `report.json` (everything, machine-readable), `report.md` (the tables a person reads)
and `accuracy_vs_n.png` (one line per strategy with its confidence band); and two reports side by side.

Plots draw on a bare matplotlib `Figure` with the Agg canvas, never pyplot, as `tracking/plots.py` does:
no display needed, and a caller's pyplot state is left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrl.evaluation.scaling import Curve, CurvePoint

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT_PNG = "accuracy_vs_n.png"


@dataclass
class EvalReport:
    """What one evaluation measured, and how (model, data, sampling, timings)."""

    model: str
    data: str
    problems: int
    samples_per_problem: int
    mean_accuracy: float
    curves: list[Curve]
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    excluded_samples: int = 0  # samples the verifier could not judge (counted as not correct)

    def curve(self, prefix: str) -> Curve | None:
        return next((c for c in self.curves if c.label.startswith(prefix)), None)

    def headline(self) -> dict[str, float]:
        """The metrics at N_max: mean accuracy, pass@N, maj@N and every other curve's end point."""
        n = self.samples_per_problem
        values = {"mean_accuracy": self.mean_accuracy}
        for curve in self.curves:
            end = curve.at(n)
            if end is not None:
                values[_metric_name(curve.label, n)] = end.accuracy
        return values

    def to_json(self) -> dict[str, Any]:
        n = self.samples_per_problem
        table: dict[str, dict[str, float]] = {}
        for name, label in (("pass", "oracle"), ("maj", "majority")):
            curve = self.curve(label)
            if curve is not None:
                table[f"{name}@k"] = {str(p.n): p.accuracy for p in curve.points}
        return {
            "model": self.model,
            "data": self.data,
            "problems": self.problems,
            "samples_per_problem": n,
            "mean_accuracy": self.mean_accuracy,
            "excluded_samples": self.excluded_samples,
            "metrics": self.headline() | table,
            "curves": [c.to_json() for c in self.curves],
            "settings": self.settings,
            "timings": self.timings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalReport:
        curves = [
            Curve(c["label"], [CurvePoint(**p) for p in c["points"]], c.get("extra_tokens_per_problem"))
            for c in data["curves"]
        ]
        return cls(
            model=data["model"],
            data=data["data"],
            problems=data["problems"],
            samples_per_problem=data["samples_per_problem"],
            mean_accuracy=data["mean_accuracy"],
            curves=curves,
            settings=data.get("settings", {}),
            timings=data.get("timings", {}),
            excluded_samples=int(data.get("excluded_samples", 0)),
        )


def _metric_name(label: str, n: int) -> str:
    if label.startswith("oracle"):
        return f"pass@{n}"
    if label == "majority":
        return f"maj@{n}"
    return f"{label}@{n}"


def load_report(path: Path) -> EvalReport:
    """The report in `path`: a `report.json`, or an evaluation directory holding one."""
    file = path / REPORT_JSON if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"--compare {path}: no {REPORT_JSON} there; give an output directory of `reasonrl eval` (its --out)"
        )
    try:
        return EvalReport.from_json(json.loads(file.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{file}: not an evaluation report ({type(exc).__name__}: {exc})") from None


def write_report(report: EvalReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    (out_dir / REPORT_MD).write_text(report_markdown(report), encoding="utf-8")
    plot_curves([(report.model, report)], out_dir / PLOT_PNG, title=f"{report.data}: accuracy against N")
    return [out_dir / REPORT_JSON, out_dir / REPORT_MD, out_dir / PLOT_PNG]


def _cell(point: CurvePoint | None) -> str:
    if point is None:
        return ""
    cell = f"{point.accuracy:.3f} [{point.low:.3f}, {point.high:.3f}]"
    return cell + (f" ±{point.mc_stderr:.4f}" if point.mc_stderr > 0 else "")


def _curve_table(curves: Sequence[Curve], schedule: Sequence[int]) -> list[str]:
    lines = ["| strategy | " + " | ".join(f"N={n}" for n in schedule) + " |", "|---" * (len(schedule) + 1) + "|"]
    lines += [f"| {c.label} | " + " | ".join(_cell(c.at(n)) for n in schedule) + " |" for c in curves]
    return lines


def _excluded_note(report: EvalReport) -> list[str]:
    if not report.excluded_samples:
        return []
    return [
        f"**{report.excluded_samples} samples could not be judged** (the verifier raised `RewardUnavailable` twice, "
        "e.g. the code sandbox did not start); they count as not correct. See docs/code.md.",
        "",
    ]


def _pass_at_k_note(curves: Sequence[Curve]) -> list[str]:
    """A line saying how `(..., k=K)` curves are scored, when one submits more than one answer."""
    if not any(int(k) > 1 for c in curves for k in re.findall(r"\bk=(\d+)", c.label)):
        return []
    return [
        "A strategy labelled `k=K` submits up to K answers per problem (best_of_majority: the top K frequent "
        "answers by score) and counts as right when any of them is right (pass@K); `k=1` submits one.",
        "",
    ]


def _token_table(curves: Sequence[Curve]) -> list[str]:
    """Extra generated tokens of the strategies that report them (those that generate: particle filtering,
    a synthesizer), so a strategy's accuracy can be weighed against its compute; nothing when none does."""
    costly = [c for c in curves if c.extra_tokens_per_problem is not None]
    if not costly:
        return []
    return [
        "## Extra generated tokens",
        "",
        "Mean tokens per problem a strategy generated beyond the stored samples, at its largest N (the other "
        "strategies only select among the stored samples: 0).",
        "",
        "| strategy | extra tokens per problem |",
        "|---|---|",
        *(f"| {c.label} | {c.extra_tokens_per_problem:.1f} |" for c in costly),
        "",
    ]


def report_markdown(report: EvalReport) -> str:
    n = report.samples_per_problem
    schedule = sorted({p.n for c in report.curves for p in c.points})
    lines = [
        f"# Evaluation of `{report.model}`",
        "",
        f"Data `{report.data}`: {report.problems} problems x {n} samples. "
        + ", ".join(f"{k} {v}" for k, v in report.settings.items() if k in ("temperature", "top_p", "max_new_tokens"))
        + ".",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in report.headline().items()),
        "",
        *_excluded_note(report),
        f"## Accuracy against N (mean over problems, {report.settings.get('confidence', 0.95):.0%} bootstrap "
        "interval over problems; ±: Monte Carlo standard error where a point averages random subsets, none "
        "where it is exact)",
        "",
        *_curve_table(report.curves, schedule),
        "",
        *_pass_at_k_note(report.curves),
        f"![accuracy against N]({PLOT_PNG})",
        "",
        *_token_table(report.curves),
        "## Timings",
        "",
        "| phase | value |",
        "|---|---|",
        *(f"| {name} | {value:.2f} |" for name, value in report.timings.items()),
        "",
    ]
    return "\n".join(lines)


def compare_markdown(a: EvalReport, b: EvalReport) -> str:
    """Both reports' metrics at their N_max, side by side with the difference."""
    ha, hb = a.headline(), b.headline()
    lines = [
        "# Comparison",
        "",
        f"- A: `{a.model}` on `{a.data}` ({a.problems} problems x {a.samples_per_problem} samples)",
        f"- B: `{b.model}` on `{b.data}` ({b.problems} problems x {b.samples_per_problem} samples)",
        "",
        "| metric | A | B | B - A |",
        "|---|---|---|---|",
    ]
    for name in [*ha, *(k for k in hb if k not in ha)]:
        va, vb = ha.get(name), hb.get(name)
        delta = f"{vb - va:+.4f}" if va is not None and vb is not None else ""
        lines.append(f"| {name} | {_number(va)} | {_number(vb)} | {delta} |")
    if a.data != b.data:
        lines += ["", "Note: the two evaluations used different data; the numbers are not directly comparable."]
    lines += ["", f"![accuracy against N]({PLOT_PNG})", ""]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_comparison(a: EvalReport, b: EvalReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.md").write_text(compare_markdown(a, b), encoding="utf-8")
    (out_dir / "compare.json").write_text(json.dumps({"a": a.to_json(), "b": b.to_json()}, indent=2) + "\n")
    plot_curves([(f"A {a.model}", a), (f"B {b.model}", b)], out_dir / PLOT_PNG, title="Accuracy against N")
    return [out_dir / "compare.md", out_dir / "compare.json", out_dir / PLOT_PNG]


def plot_curves(reports: Sequence[tuple[str, EvalReport]], path: Path, *, title: str) -> Path:
    """Accuracy against N (log2 axis) for every curve of every report, with its interval as a band."""
    # Imported here: matplotlib takes about a second to import, which every `reasonrl` command would pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    styles = ["-", "--", ":", "-."]
    for number, (name, report) in enumerate(reports):
        prefix = f"{name}: " if len(reports) > 1 else ""
        for index, curve in enumerate(report.curves):
            ns = [p.n for p in curve.points]
            color = f"C{index % 10}"
            axes.plot(
                ns,
                [p.accuracy for p in curve.points],
                styles[number % len(styles)],
                color=color,
                marker="o",
                markersize=3,
                label=prefix + curve.label,
            )
            axes.fill_between(
                ns, [p.low for p in curve.points], [p.high for p in curve.points], color=color, alpha=0.12
            )
        axes.axhline(report.mean_accuracy, color="grey", linestyle=styles[number % len(styles)], linewidth=0.8)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("N (samples per problem)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title + " (grey: mean accuracy)", fontsize="medium")
    axes.grid(alpha=0.3)
    # Below the axes: strategy labels can be long, and a legend beside the plot would squeeze it.
    figure.legend(fontsize="x-small", loc="outside lower center", ncols=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
