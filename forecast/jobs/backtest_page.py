"""``backtest.html``: a small self-contained page with the backtest's tables and figures."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from forecast.artefacts import BACKTEST_PAGE_FILE
from forecast.checks.diagnostics import FAILED_HEADLINE
from forecast.evaluation.backtest_scores import MODEL
from forecast.evaluation.backtest_summary import SKILL_REFERENCES
from forecast.evaluation.pass_marks import coverage_mark_text, skill_mark_text
from forecast.plots.backtest import plot_crps_by_horizon, plot_pit_histograms, plot_reliability_diagram

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from forecast.jobs.backtest import BacktestOutcome


PAGE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Backtest</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc; padding: .25rem .6rem; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.headline { font-size: 1.1rem; padding: .6rem; background: #f6f8fa; border-left: 4px solid #888; }
.failed { border-left-color: #c00; }
</style></head><body>
<h1>Rolling-origin backtest</h1>
<p class="headline {{ 'failed' if not met else '' }}">{{ headline }}</p>
<p>{{ origins|length }} origin(s) from {{ origins[0] }} to {{ origins[-1] }}; horizon {{ summary.horizon }}
{{ summary.freq }}(s); inference: {{ summary.inference }}; wall time {{ summary.wall_s }} s.</p>
<h2>Scores (lower is better, coverage should match 0.5 and 0.9)</h2>
<table><tr><th>method</th>{% for k in keys %}<th>{{ k }}</th>{% endfor %}</tr>
{% for name, row in methods %}<tr><td>{{ name }}</td>
{% for k in keys %}<td class="num">{{ fmt(row[k]) }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p>MAE: absolute error of the method's mean; MAE last: of the point forecast "next = last value" on the
same targets. <code>zero</code>, <code>last</code> and <code>conflictology</code> are the VIEWS
prediction challenge's benchmarks.</p>
<h2>Skill per front, pooled without scale (1 - mean over fronts of CRPS / reference CRPS; 90% bootstrap
interval over origins; fronts better)</h2>
<table><tr><th>method</th>{% for r in references %}<th>vs {{ r }} (fronts better)</th>{% endfor %}</tr>
{% for name, _ in methods %}<tr><td>{{ name }}</td>
{% for r in references %}{% set e = summary.pooled_skill.get(name, {}).get(r) %}
<td class="num">{% if e %}{{ fmt(e.value) }} [{{ fmt(e.interval[0]) }}, {{ fmt(e.interval[1]) }}]
({{ e.fronts_better }}/{{ e.n_fronts }}){% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>
<h3>CRPS per front (MAE of the last value in brackets)</h3>
<table><tr><th>front</th>{% for name, _ in methods %}<th>{{ name }}</th>{% endfor %}</tr>
{% for front, row in summary.by_front.items() %}<tr><td>{{ front }}</td>
{% for name, _ in methods %}{% set e = row.get(name) %}
<td class="num">{% if e %}{{ fmt(e.crps) }} [{{ fmt(e.mae_last_value) }}]{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Skill of the model (1 - score / baseline score, 90% bootstrap interval over origins)</h2>
<table><tr><th>baseline</th><th>CRPS skill</th><th>log-score skill</th></tr>
{% for name, row in summary.skill.items() %}<tr><td>{{ name }}</td>
<td class="num">{{ fmt(row.crps.value) }} [{{ fmt(row.crps.interval[0]) }}, {{ fmt(row.crps.interval[1]) }}]</td>
<td class="num">{{ fmt(row.log_score.value) }}
 [{{ fmt(row.log_score.interval[0]) }}, {{ fmt(row.log_score.interval[1]) }}]</td></tr>
{% endfor %}</table>
<h2>Not scored</h2>
{% if summary.not_scored %}<ul>{% for k, v in summary.not_scored.items() %}<li>{{ k }}: {{ v }}</li>{% endfor %}</ul>
{% else %}<p>Everything in the horizons was scored.</p>{% endif %}
<h2>Figures</h2>
{% for title, data in figures %}<h3>{{ title }}</h3><img alt="{{ title }}" src="data:image/png;base64,{{ data }}">
{% endfor %}
<h2>Origins</h2>
<table><tr><th>origin</th><th>fit s</th><th>diagnostics</th></tr>
{% for o in summary.origins %}<tr><td>{{ o.origin }}</td><td class="num">{{ o.fit_s }}</td>
<td>{{ o.diagnostics or '' }}</td></tr>
{% endfor %}</table>
</body></html>
""",
    autoescape=True,
)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def failed_fits(summary: dict) -> list[str]:
    """Origins whose NUTS fit failed its convergence checks."""
    return [
        str(o["origin"])
        for o in summary.get("origins", [])
        if str(o.get("diagnostics", "")).startswith(FAILED_HEADLINE)
    ]


def headline(summary: dict) -> tuple[str, bool]:
    """One sentence on the one-week targets and whether they are met.

    The targets are the pass marks of :mod:`forecast.evaluation.pass_marks` (a minimum CRPS
    skill against no-change and a range of 90% interval coverage), as judged in the
    summary's ``first_week``.

    When any origin's fit failed its convergence checks, the sentence starts by saying so.
    """
    failed = failed_fits(summary)
    warning = (
        f"{len(failed)} OF {len(summary['origins'])} FITS FAILED THEIR CONVERGENCE CHECKS (see each origin's "
        "diagnostics); "
        if failed
        else ""
    )
    week = summary.get("first_week") or {}
    if not week:
        return warning + "The model was not scored at the one-week horizon.", False
    value = week["crps_skill_vs_no_change"]["value"]
    met = week["target_skill_met"] and week["target_coverage_met"]
    verdict = "targets met" if met else "TARGETS NOT MET"
    return (
        f"{warning}{verdict}: one-week CRPS skill against no-change {_fmt(value)} (target {skill_mark_text()}), "
        f"90% PIT coverage {_fmt(week.get('pit_coverage_90'))} (target {coverage_mark_text()}; "
        f"the interval's own coverage {_fmt(week['coverage_90'])}, biased upwards on small counts).",
        met and not failed,
    )


def write_page(outcome: BacktestOutcome, out: Path) -> dict[str, Path]:
    """Write the three figures as PNG and ``backtest.html`` embedding them."""
    summary = outcome.summary
    rows = [(MODEL, summary.model)] if summary.model else []
    rows += list(summary.baselines.items())
    methods = [name for name, _ in rows]
    figures = {
        "pit_histograms.png": ("PIT histograms", plot_pit_histograms(outcome.scores, methods)),
        "reliability.png": (
            "Reliability of P(7-day total >= threshold)",
            plot_reliability_diagram(outcome.reliability),
        ),
        "crps_by_horizon.png": ("CRPS by horizon", plot_crps_by_horizon(outcome.scores, methods)),
    }
    paths: dict[str, Path] = {}
    encoded = []
    for name, (title, fig) in figures.items():
        png = _png(fig)
        paths[name] = out / name
        paths[name].write_bytes(png)
        encoded.append((title, base64.b64encode(png).decode("ascii")))
    text, met = headline(summary.to_dict())
    html = PAGE.render(
        summary=summary,
        origins=[o.date().isoformat() for o in outcome.origins],
        methods=rows,
        keys=[
            "crps",
            "mae",
            "mae_last_value",
            "log_score",
            "coverage_50",
            "coverage_90",
            "pit_coverage_90",
            "brier",
            "n_targets",
        ],
        references=[r for r in SKILL_REFERENCES if r in summary.baselines],
        figures=encoded,
        headline=text,
        met=met,
        fmt=_fmt,
    )
    page = out / BACKTEST_PAGE_FILE
    page.write_text(html, encoding="utf-8")
    paths["page"] = page
    return paths
