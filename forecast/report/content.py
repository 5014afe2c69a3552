r"""What a weekly report says, as plain data: headline, tables and changes since the last report.

Everything here is a pure function of the indicators document (``indicators.json``), the fit
summary (``summary.json``'s content), the provenance and the previous report's indicators;
nothing reads a file, the clock or a model.

Changes since the previous report, per front present in both:

* level: ``previous -> current`` when it differs;
* exceedance: :math:`\Delta p = p_{\text{now}}(Y_{7d} \ge c) - p_{\text{before}}(Y_{7d} \ge c)`
  for each threshold :math:`c` and horizon present in both;
* rate ratio: the posterior mean of the recent-to-earlier rate ratio, before and now.

Scenario rows compare horizon totals: :math:`T = \sum_{d \le H} y_d` (counts, for intervals)
and :math:`\Lambda = \sum_{d \le H} \lambda_d` (expected counts), with
:math:`P(\Lambda_{\text{scenario}} < \Lambda_{\text{baseline}})` computed draw by draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

#: The report's sections, in order; each rendered report has one heading per entry.
SECTIONS = (
    ("headline", "Headline"),
    ("indicators", "Indicators"),
    ("forecasts", "Forecasts"),
    ("scenarios", "Scenarios"),
    ("changepoints", "Changepoints"),
    ("interventions", "Intervention effects"),
    ("checks", "Posterior predictive checks"),
    ("diagnostics", "Sampler diagnostics"),
    ("provenance", "Provenance"),
)
FIT_FAILED_PREFIX = "FIT FAILED ITS CHECKS"


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: PNG bytes and where they belong.

    ``name`` is the file stem (``figures/<name>.png`` beside ``report.md``); ``section`` is one
    of :data:`SECTIONS`' keys.
    """

    name: str
    section: str
    title: str
    caption: str
    png: bytes

    def __post_init__(self) -> None:
        if self.section not in dict(SECTIONS):
            raise ValueError(f"unknown report section {self.section!r}; allowed: {[k for k, _ in SECTIONS]}")
        if not self.png:
            raise ValueError(f"figure {self.name!r} has no image")

    @property
    def filename(self) -> str:
        return f"{self.name}.png"


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows; the renderers turn it into HTML and Markdown.

    Attributes
    ----------
    indicators : mapping
        The indicators document (the content of ``indicators.json``).
    summary : mapping
        The fit summary: ``headline``, ``diagnostics``, ``predictive_checks``, ``fronts``
        (changepoints and interventions per front), ``close_interventions``.
    provenance : mapping
        Label -> value pairs shown in the provenance block (data hash, package version,
        priors hash, sampler settings...); values are shown as given.
    figures : tuple of ReportFigure
    previous : mapping, optional
        The previous report's indicators document, when there is one.
    previous_source : str, optional
        Where the previous report was found (shown in the headline).
    scenarios : tuple of mapping
        ``{"description": str, "rows": [...]}`` from :func:`scenario_rows`.
    title : str
    """

    indicators: Mapping[str, Any]
    summary: Mapping[str, Any]
    provenance: Mapping[str, Any]
    figures: tuple[ReportFigure, ...] = ()
    previous: Mapping[str, Any] | None = None
    previous_source: str | None = None
    scenarios: tuple[Mapping[str, Any], ...] = ()
    title: str = "Escalation forecast"

    def figures_in(self, section: str) -> list[ReportFigure]:
        return [figure for figure in self.figures if figure.section == section]


# ------------------------------------------------------------------------------ formatting


def fmt_prob(value: float | None) -> str:
    """A probability with two decimals (``"<0.01"`` and ``">0.99"`` at the ends)."""
    if value is None:
        return "n/a"
    if 0 < value < 0.005:
        return "<0.01"
    if 0.995 < value < 1:
        return ">0.99"
    return f"{value:.2f}"


def fmt_num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def fmt_interval(values: Mapping[str, float] | None, digits: int = 2) -> str:
    """``mean [low, high]``."""
    if not values:
        return "n/a"
    return f"{fmt_num(values['mean'], digits)} [{fmt_num(values['low'], digits)}, {fmt_num(values['high'], digits)}]"


def fmt_threshold(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


def fmt_delta(value: float) -> str:
    return f"{value:+.2f}"


def exceed_label(item: Mapping[str, Any]) -> str:
    return f"P(≥{fmt_threshold(item['threshold'])} in {item['horizon_days']} d)"


# ------------------------------------------------------------------------------ headline and changes


def fit_failed(indicators: Mapping[str, Any]) -> bool:
    return not bool(indicators["diagnostics"]["ok"])


def _fronts(doc: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {} if doc is None else {front["front"]: front for front in doc["fronts"]}


def _exceed(front: Mapping[str, Any]) -> dict[tuple[float, int], float]:
    return {(float(e["threshold"]), int(e["horizon_days"])): float(e["probability"]) for e in front["p_exceed"]}


def front_changes(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Per front of ``current``: what changed since ``previous`` (empty list: nothing notable).

    A front missing from the previous report gets ``["new front"]``; with no previous report
    every list is empty.
    """
    before = _fronts(previous)
    out: dict[str, list[str]] = {}
    for name, front in _fronts(current).items():
        if previous is None:
            out[name] = []
            continue
        if name not in before:
            out[name] = ["new front"]
            continue
        old = before[name]
        changes = []
        if old["level"] != front["level"]:
            changes.append(f"level {old['level']} → {front['level']}")
        old_exceed = _exceed(old)
        for key, probability in _exceed(front).items():
            if key in old_exceed:
                delta = probability - old_exceed[key]
                label = exceed_label({"threshold": key[0], "horizon_days": key[1]})
                changes.append(f"{label} {fmt_prob(old_exceed[key])} → {fmt_prob(probability)} ({fmt_delta(delta)})")
        changes.append(f"rate ratio {fmt_num(old['rate_ratio']['mean'])} → {fmt_num(front['rate_ratio']['mean'])}")
        out[name] = changes
    return out


def headline_lines(
    indicators: Mapping[str, Any],
    summary: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    previous_source: str | None = None,
) -> list[str]:
    """The headline, first line first.

    When the fit failed its diagnostics the first line says so (``FIT FAILED ITS CHECKS: ...``)
    and the level is marked unreliable.
    """
    lines = []
    failed = fit_failed(indicators)
    if failed:
        warning = indicators.get("headline_warning") or summary.get("headline") or FIT_FAILED_PREFIX
        if not str(warning).startswith(FIT_FAILED_PREFIX):
            warning = f"{FIT_FAILED_PREFIX}: {warning}"
        lines.append(str(warning))
    level = str(indicators["level"]).upper()
    if failed:
        lines.append(f"Level: {level}, UNRELIABLE (the fit failed its sampler checks; do not act on these numbers).")
    else:
        lines.append(f"Level: {level}.")
        if indicators.get("headline_warning"):
            lines.append(str(indicators["headline_warning"]))
    horizon = indicators["horizon"]
    lines.append(
        f"As of {indicators['as_of']}; forecasts for the next {horizon['steps']} {horizon['freq']}(s)"
        f" ({horizon['days']} days). P(two or more fronts rising) = {fmt_prob(indicators['p_two_or_more_rising'])}."
    )
    if previous is None:
        lines.append("First report: no earlier report was found in this output root.")
    else:
        source = f" ({previous_source})" if previous_source else ""
        old_level = str(previous["level"]).upper()
        change = "unchanged" if old_level == level else f"was {old_level}"
        lines.append(f"Since the previous report as of {previous['as_of']}{source}: level {change}.")
        before = _fronts(previous)
        moved = [
            f"{name} {before[name]['level']} → {front['level']}"
            for name, front in _fronts(indicators).items()
            if name in before and before[name]["level"] != front["level"]
        ]
        new = [name for name in _fronts(indicators) if name not in before]
        gone = [name for name in before if name not in _fronts(indicators)]
        lines.append("Fronts that changed level: " + (", ".join(moved) if moved else "none") + ".")
        if new:
            lines.append("New fronts: " + ", ".join(new) + ".")
        if gone:
            lines.append("Fronts no longer reported: " + ", ".join(gone) + ".")
    return lines


# ------------------------------------------------------------------------------ tables


def indicator_rows(indicators: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per front: level, exceedance probabilities, rate ratio, probabilities, changes."""
    changes = front_changes(indicators, previous)
    failed = fit_failed(indicators)
    rows = []
    for front in indicators["fronts"]:
        unreliable = failed or bool(front["unreliable"])
        rows.append(
            {
                "front": front["front"],
                "level": front["level"] + (" (unreliable)" if unreliable else ""),
                "level_class": "unreliable" if unreliable else front["level"],
                "p_exceed": [f"{exceed_label(e)} = {fmt_prob(e['probability'])}" for e in front["p_exceed"]]
                or ["no threshold (see the notes)"],
                "rate_ratio": fmt_interval(front["rate_ratio"]),
                "p_rate_increase": fmt_prob(front["p_rate_increase"]),
                "p_changepoint_recent": fmt_prob(front["p_changepoint_recent"]),
                "changes": changes[front["front"]] if previous is not None else ["first report"],
                "reasons": list(front.get("level_reasons", [])),
                "notes": list(front.get("notes", [])),
                "thresholds_source": front.get("thresholds_source", ""),
            }
        )
    return rows


def lull_rows(indicators: Mapping[str, Any]) -> list[dict[str, str]]:
    """Lulls the indicators track: depth at the peak, rate ratio now, P(lull holding), half-life."""
    rows = []
    for front in indicators["fronts"]:
        for lull in front.get("lulls", []):
            rows.append(
                {
                    "front": front["front"],
                    "label": lull["label"],
                    "kind": lull["kind"],
                    "date": lull["date"],
                    "peak_rate_ratio": fmt_interval(lull.get("peak_rate_ratio")),
                    "rate_ratio_now": fmt_interval(lull["rate_ratio_now"]),
                    "p_lull_holding": fmt_prob(lull["p_lull_holding"]),
                    "half_life_days": fmt_interval(lull.get("half_life_days"), 1),
                }
            )
    return rows


def changepoint_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for front in summary.get("fronts", []):
        for item in front.get("changepoints", []):
            rows.append(
                {
                    "front": front["front"],
                    "index": str(int(item["index"]) + 1),
                    "mode_date": item["mode_date"],
                    "mode_probability": fmt_prob(item["mode_probability"]),
                    "interval": f"{item['interval_dates'][0]} .. {item['interval_dates'][1]}",
                    "jump": fmt_interval(item["jump_rate_ratio"]),
                    "p_increase": fmt_prob(item["p_increase"]),
                }
            )
    return rows


#: The title of the ``changepoints`` section for a dynamic fit, whose level moves instead.
LEVEL_SHIFTS_TITLE = "Level shifts"


def is_dynamic(summary: Mapping[str, Any]) -> bool:
    """Whether the fit is the dynamic model's (its level moves; it has no changepoints)."""
    return summary.get("model") == "dynamic"


def level_shift_note(summary: Mapping[str, Any]) -> str:
    """The fit's definition of a level shift, from ``summary.json``'s ``level_shift_rule``."""
    rule = summary.get("level_shift_rule")
    if not rule:  # a summary written before the rule was recorded
        return ""
    note = (
        f"A shift is a run of level steps that moved the level by more than a factor {rule['rate_ratio']:g}, "
        f"up or down, with probability at least {rule['probability']:g}"
    )
    if "window_days" in rule:  # since 7 December 2026
        note += f": one large step, or small steps that add up to it within {rule['window_days']:g} days"
    return note + "."


def level_shift_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """The dynamic model's dated level shifts per front (``summary.json``'s ``level_shifts``)."""
    rows = []
    for front in summary.get("fronts", []):
        for item in front.get("level_shifts", []):
            first, last = item["interval_dates"]
            rows.append(
                {
                    "front": front["front"],
                    "mode_date": item["mode_date"],
                    "interval": first if first == last else f"{first} .. {last}",
                    "probability": fmt_prob(item["probability"]),
                    "rate_ratio": fmt_interval(item["rate_ratio"]),
                    "p_increase": fmt_prob(item["p_increase"]),
                }
            )
    return rows


def intervention_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for front in summary.get("fronts", []):
        for item in front.get("interventions", []):
            span = item["date"] if not item.get("end_date") else f"{item['date']} .. {item['end_date']}"
            rows.append(
                {
                    "front": front["front"],
                    "label": item["label"],
                    "kind": item["kind"],
                    "shape": item["shape"],
                    "dates": span,
                    "rate_ratio": fmt_interval(item["rate_ratio"]),
                    "p_below_1": fmt_prob(item["p_effect_below_1"]),
                    "half_life_days": fmt_interval(item.get("half_life_days"), 1),
                }
            )
    return rows


def close_pair_lines(summary: Mapping[str, Any]) -> list[str]:
    """One sentence per pair of close interventions the data cannot tell apart."""
    lines = []
    for pair in summary.get("close_interventions", []):
        if pair.get("separable"):
            continue
        correlation = pair.get("correlation")
        corr = "n/a" if correlation is None or correlation != correlation else f"{correlation:+.2f}"
        lines.append(
            f"{pair['front']}: '{pair['first']}' and '{pair['second']}' ({pair['days_apart']} days apart) cannot be "
            f"separated by these data (correlation of effects {corr}); their combined rate ratio is "
            f"{fmt_interval(pair['combined_rate_ratio'])}, P(combined effect < 1) = "
            f"{fmt_prob(pair['p_combined_below_1'])}."
        )
    return lines


def coverage_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    checks = summary.get("predictive_checks") or {}
    return [
        {
            "group": row["group"],
            "n_obs": str(row["n_obs"]),
            "coverage_50": fmt_prob(row["coverage_50"]),
            "coverage_90": fmt_prob(row["coverage_90"]),
        }
        for row in checks.get("coverage", [])
    ]


def diagnostic_rows(summary: Mapping[str, Any], indicators: Mapping[str, Any]) -> list[tuple[str, str]]:
    diagnostics = summary.get("diagnostics") or indicators["diagnostics"]
    rows = [("passed", "yes" if diagnostics["ok"] else "NO")]
    names = [
        ("rhat_max", "max R-hat", 3),
        ("ess_bulk_min", "min bulk ESS", 0),
        ("ess_tail_min", "min tail ESS", 0),
        ("bfmi_min", "min BFMI", 2),
    ]
    for key, label, digits in names:
        if key in diagnostics:
            value = diagnostics[key]
            rows.append((label, "n/a" if value is None else f"{value:.{digits}f}"))
    rows.append(("divergences", str(diagnostics["divergences"])))
    if "chains" in diagnostics:
        rows.append(("chains x draws", f"{diagnostics['chains']} x {diagnostics['draws']}"))
    for failure in diagnostics.get("failures", []):
        rows.append(("failure", failure))
    for note in diagnostics.get("notes", []):
        rows.append(("note", note))
    return rows


# ------------------------------------------------------------------------------ scenarios


def scenario_rows(baseline: xr.Dataset, scenario: xr.Dataset, *, prob: float = 0.9) -> list[dict[str, str]]:
    """Per front: horizon totals under the baseline and the scenario forecast.

    Parameters
    ----------
    baseline, scenario : xarray.Dataset
        ``counts`` and ``rate`` with dims (chain, draw, front, date), as returned by
        :func:`forecast.forecasting.counts.forecast_counts`, over the same dates.
    """
    if list(baseline["date"].to_numpy()) != list(scenario["date"].to_numpy()):
        raise ValueError("the baseline and scenario forecasts must cover the same dates")
    tail = (1.0 - prob) / 2.0
    rows = []
    for front in baseline["front"].to_numpy().tolist():

        def totals(data: xr.Dataset, name: str, front: str = front) -> np.ndarray:
            return data[name].sel(front=front).sum("date").to_numpy().ravel()

        base_counts, scen_counts = totals(baseline, "counts"), totals(scenario, "counts")
        base_rate, scen_rate = totals(baseline, "rate"), totals(scenario, "rate")

        def describe(values: np.ndarray) -> str:
            low, high = np.quantile(values, [tail, 1.0 - tail])
            return fmt_interval({"mean": float(values.mean()), "low": float(low), "high": float(high)}, 1)

        rows.append(
            {
                "front": str(front),
                "baseline_total": describe(base_counts),
                "scenario_total": describe(scen_counts),
                "p_lower": fmt_prob(float(np.mean(scen_rate < base_rate))),
            }
        )
    return rows


# ------------------------------------------------------------------------------ the whole context


@dataclass(frozen=True)
class ReportView:
    """The content prepared for a template: strings and lists of strings only."""

    title: str
    as_of: str
    failed: bool
    level: str
    headline: list[str]
    indicator_rows: list[dict[str, Any]]
    lull_rows: list[dict[str, str]]
    changepoint_rows: list[dict[str, str]]
    level_shift_rows: list[dict[str, str]] | None  # None: the changepoint model's report
    level_shift_note: str
    intervention_rows: list[dict[str, str]]
    close_pairs: list[str]
    coverage_rows: list[dict[str, str]]
    flagged: list[str]
    diagnostic_rows: list[tuple[str, str]]
    provenance_rows: list[tuple[str, str]]
    scenarios: list[Mapping[str, Any]]
    sections: list[tuple[str, str]]
    figures: dict[str, list[ReportFigure]] = field(default_factory=dict)
    settings_rows: list[tuple[str, str]] = field(default_factory=list)


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) if value else "none"
    if value is None:
        return "none"
    return str(value)


def build_view(content: ReportContent) -> ReportView:
    """Everything the templates show, computed once, identical for HTML and Markdown."""
    indicators = content.indicators
    failed = fit_failed(indicators)
    checks = content.summary.get("predictive_checks") or {}
    dynamic = is_dynamic(content.summary)
    titles = dict(SECTIONS) | ({"changepoints": LEVEL_SHIFTS_TITLE} if dynamic else {})
    return ReportView(
        title=content.title,
        as_of=str(indicators["as_of"]),
        failed=failed,
        level=str(indicators["level"]),
        headline=headline_lines(indicators, content.summary, content.previous, content.previous_source),
        indicator_rows=indicator_rows(indicators, content.previous),
        lull_rows=lull_rows(indicators),
        changepoint_rows=changepoint_rows(content.summary),
        level_shift_rows=level_shift_rows(content.summary) if dynamic else None,
        level_shift_note=level_shift_note(content.summary),
        intervention_rows=intervention_rows(content.summary),
        close_pairs=close_pair_lines(content.summary),
        coverage_rows=coverage_rows(content.summary),
        flagged=list(checks.get("flagged", [])),
        diagnostic_rows=diagnostic_rows(content.summary, indicators),
        provenance_rows=[(str(k), _plain(v)) for k, v in content.provenance.items()],
        scenarios=list(content.scenarios),
        sections=[(key, titles[key]) for key, _ in SECTIONS if key != "scenarios" or content.scenarios],
        figures={key: content.figures_in(key) for key, _ in SECTIONS},
        settings_rows=[(str(k), _plain(v)) for k, v in (indicators.get("settings") or {}).items()],
    )


def figure_names(figures: Sequence[ReportFigure]) -> list[str]:
    """File names of the figures, checked to be unique."""
    names = [figure.filename for figure in figures]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"figure names must be unique; repeated: {duplicates}")
    return names
