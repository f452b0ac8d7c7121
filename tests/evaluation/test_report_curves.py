"""report.md / report.json: every curve with its interval, BoM's k visible, generating strategies' token cost."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reasonrl.evaluation import parse_strategy
from reasonrl.evaluation.report import REPORT_JSON, REPORT_MD, EvalReport, load_report, write_report
from reasonrl.evaluation.scaling import Curve, CurvePoint, IntervalSettings, oracle_curve, strategy_curves

from .synthetic import synthetic_problems


def make_report() -> EvalReport:
    problems = synthetic_problems(30, 8, [(0, 0.4), (1, 0.3), (2, 0.3)], seed=2)
    settings = IntervalSettings(subsets=4, resamples=100, seed=0)
    specs = [
        parse_strategy(s) for s in ("majority", "best_of_majority?scorer=noisy", "best_of_majority?scorer=noisy&k=4")
    ]
    curves = [oracle_curve(problems, settings), *strategy_curves(problems, specs, settings)]
    generating = Curve("particle_filter", [CurvePoint(n, 0.5, 0.4, 0.6) for n in (1, 2, 4, 8)], 812.25)
    return EvalReport("m", "d", len(problems), 8, 0.4, [*curves, generating])


def test_report_shows_every_curve_with_intervals_k_and_extra_tokens(tmp_path: Path) -> None:
    report = make_report()
    write_report(report, tmp_path)
    markdown = (tmp_path / REPORT_MD).read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "N=1" not in line]
    for curve in report.curves:
        (row,) = [r for r in rows if r.startswith(f"| {curve.label} | ") and "[" in r]
        cells = row.strip("|").split("|")[1:]
        assert len(cells) == len(curve.points)
        assert all(re.fullmatch(r" \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] ", cell) for cell in cells), row
    assert "best_of_majority(scorer=noisy, k=1)" in markdown and "best_of_majority(scorer=noisy, k=4)" in markdown
    assert "pass@K" in markdown
    assert "## Extra generated tokens" in markdown and "| particle_filter | 812.2 |" in markdown

    data = json.loads((tmp_path / REPORT_JSON).read_text())
    tokens = {c["label"]: c["extra_tokens_per_problem"] for c in data["curves"]}
    assert tokens["particle_filter"] == 812.25 and tokens["majority"] is None
    assert "best_of_majority(scorer=noisy, k=4)@8" in data["metrics"]
    assert load_report(tmp_path).curves == report.curves  # the token figure survives the round trip


def test_report_without_generating_strategies_has_no_token_section(tmp_path: Path) -> None:
    report = make_report()
    report.curves = [c for c in report.curves if c.extra_tokens_per_problem is None]
    write_report(report, tmp_path)
    assert "Extra generated tokens" not in (tmp_path / REPORT_MD).read_text()
    old = json.loads((tmp_path / REPORT_JSON).read_text())
    for curve in old["curves"]:  # a report written before the field existed still loads
        del curve["extra_tokens_per_problem"]
    assert all(c.extra_tokens_per_problem is None for c in EvalReport.from_json(old).curves)
