r"""The backtest's summary (``summary.json``): mean scores, skills and coverage per method.

Per method and per front: the CRPS beside the MAE of the target's last value (the point
forecast "next = last observed value"), the log score, the 50% and 90% interval coverage, the
90% PIT coverage (:func:`~forecast.evaluation.scores.pit_coverage`, the calibration measure
that stays fair on counts with many zeros) and the Brier score of the exceedance
probabilities.  Skills: of the model against every baseline
(:func:`~forecast.evaluation.scores.skill`), and of every method against each of
:data:`SKILL_REFERENCES` per front, with its scale-free pooled form (the mean of per-front CRPS
ratios).  ``first_week`` checks the one-week targets against the pass marks of
:mod:`forecast.evaluation.pass_marks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from forecast.evaluation.backtest_scores import METHODS, MODEL
from forecast.evaluation.pass_marks import FIRST_WEEK_STEPS, coverage_met, skill_met
from forecast.evaluation.reliability import RELIABILITY_COLUMNS, brier_score, reliability_table
from forecast.evaluation.scores import pit_coverage, pooled_front_skill, skill
from forecast.evaluation.targets import PERIOD

#: References of the per-front and pooled skills (every method against each of them).
SKILL_REFERENCES = ("no_change", "last", "conflictology")
#: The command prints per-front skills up to this many fronts (all are in summary.json).
MAX_FRONTS_PRINTED = 12
#: The keys of a target: scores of two methods are compared on the targets both scored.
KEYS = ["origin", "front", "kind", "horizon", "target_start", "target_end"]


@dataclass(frozen=True)
class BacktestSummary:
    """The backtest's summary; :meth:`to_dict` is the content of ``summary.json``.

    The fields are in the order of the file's keys.  Below the top level the values are the
    plain dicts and lists written to the file (per method, per front, per horizon...).
    """

    inference: str
    freq: str
    horizon: int
    #: What each origin's fit recorded (its date, fit time, diagnostics...).
    origins: list[dict[str, Any]]
    wall_s: float
    #: Mean scores of the model (None when it was not fitted) and of each baseline.
    model: dict[str, Any] | None
    baselines: dict[str, dict[str, Any]]
    #: Skill of the model against each baseline, per score.
    skill: dict[str, Any]
    by_front: dict[str, dict[str, Any]]
    skill_by_front: dict[str, dict[str, Any]]
    pooled_skill: dict[str, dict[str, Any]]
    by_horizon: dict[str, dict[str, float]]
    by_horizon_mae_last_value: dict[str, dict[str, float | None]]
    #: The one-week targets and whether the pass marks are met (empty when not scorable).
    first_week: dict[str, Any]
    #: Targets left out, counted by reason.
    not_scored: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The content of ``summary.json``, keys in field order."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BacktestSummary:
        """Read back what :meth:`to_dict` gave (``summary.json`` as loaded by :func:`json.loads`).

        Raises
        ------
        ValueError
            When a key is missing or unknown; the message lists them.
        """
        names = [item.name for item in fields(cls)]
        missing = [name for name in names if name not in data]
        unknown = [key for key in data if key not in names]
        if missing or unknown:
            raise ValueError(f"not a backtest summary: missing keys {missing}, unknown keys {unknown}")
        return cls(**{name: data[name] for name in names})


def backtest_summary(
    scores: pd.DataFrame,
    exceedance: pd.DataFrame,
    *,
    inference: str,
    freq: str,
    horizon: int,
    origins: list[dict[str, Any]],
    not_scored: dict[str, int],
    wall_s: float,
) -> BacktestSummary:
    """Mean scores per method and per front, skills and the one-week targets.

    Parameters
    ----------
    scores, exceedance : pandas.DataFrame
        Score rows (``SCORE_COLUMNS``) and exceedance rows (``EXCEEDANCE_COLUMNS``) of every origin.
    inference, freq, horizon
        How the backtest ran, copied into the summary.
    origins : list of dict
        What each origin's fit recorded (its date, fit time, diagnostics...).
    not_scored : dict
        Targets left out, counted by reason.
    wall_s : float
        The backtest's wall time.
    """
    methods = [m for m in METHODS if m in set(scores["method"])]
    per_method = {
        m: _method_summary(scores[scores["method"] == m], exceedance[exceedance["method"] == m]) for m in methods
    }
    skill_by_front, pooled_skill = _front_skills(scores, methods)
    return BacktestSummary(
        inference=inference,
        freq=freq,
        horizon=horizon,
        origins=origins,
        wall_s=round(wall_s, 1),
        model=per_method.get(MODEL),
        baselines={m: per_method[m] for m in methods if m != MODEL},
        skill=_skills(scores, methods),
        by_front=_by_front(scores, methods),
        skill_by_front=skill_by_front,
        pooled_skill=pooled_skill,
        by_horizon={
            m: {
                str(h): round(float(v), 6)
                for h, v in scores[scores["method"] == m].groupby("horizon")["crps"].mean().items()
            }
            for m in methods
        },
        by_horizon_mae_last_value={
            m: {str(h): _clean(_mae_last_value(rows)) for h, rows in scores[scores["method"] == m].groupby("horizon")}
            for m in methods
        },
        first_week=_first_week(scores, freq),
        not_scored=not_scored,
    )


def _clean(value: float) -> float | None:
    return round(float(value), 6) if value is not None and np.isfinite(value) else None


def _method_summary(rows: pd.DataFrame, exceedance: pd.DataFrame) -> dict[str, object]:
    brier = (
        brier_score(exceedance["p_exceed"].to_numpy(), exceedance["exceeded"].to_numpy()) if len(exceedance) else np.nan
    )
    observed = rows["observed"].to_numpy(dtype=float)
    return {
        "crps": _clean(rows["crps"].mean()),
        "mae": _clean(np.mean(np.abs(observed - rows["mean"].to_numpy(dtype=float))) if len(rows) else np.nan),
        "mae_last_value": _clean(_mae_last_value(rows)),
        "log_score": _clean(rows["log_score"].mean()),
        "coverage_50": _clean(rows["in_50"].astype(float).mean()),
        "coverage_90": _clean(rows["in_90"].astype(float).mean()),
        "pit_coverage_90": _clean(_pit_coverage_90(rows)),
        "brier": _clean(brier),
        "n_targets": int(len(rows)),
        "n_exceedance": int(len(exceedance)),
    }


def _pit_coverage_90(rows: pd.DataFrame) -> float:
    return pit_coverage(rows["pit"].to_numpy(dtype=float), 0.9) if len(rows) else np.nan


def _mae_last_value(rows: pd.DataFrame) -> float:
    """Mean absolute error of the point forecast "next = last value" on these rows' targets."""
    error = np.abs(rows["observed"].to_numpy(dtype=float) - rows["last_value"].to_numpy(dtype=float))
    error = error[np.isfinite(error)]
    return float(error.mean()) if error.size else np.nan


def _by_front(scores: pd.DataFrame, methods: list[str]) -> dict[str, dict[str, object]]:
    """CRPS, MAE and the last value's MAE of every method, per front."""
    out: dict[str, dict[str, object]] = {}
    for front, rows in scores.groupby("front", sort=True):
        out[str(front)] = {}
        for method in methods:
            mine = rows[rows["method"] == method]
            if len(mine):
                observed = mine["observed"].to_numpy(dtype=float)
                out[str(front)][method] = {
                    "crps": _clean(mine["crps"].mean()),
                    "mae": _clean(np.mean(np.abs(observed - mine["mean"].to_numpy(dtype=float)))),
                    "mae_last_value": _clean(_mae_last_value(mine)),
                    "coverage_90": _clean(mine["in_90"].astype(float).mean()),
                    "pit_coverage_90": _clean(_pit_coverage_90(mine)),
                    "n_targets": int(len(mine)),
                }
    return out


def _front_skills(
    scores: pd.DataFrame, methods: list[str]
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, object]]]:
    r"""CRPS skill of every method against each of :data:`SKILL_REFERENCES`, per front and pooled.

    Per front: :math:`1 - \sum \text{CRPS} / \sum \text{CRPS}_\text{ref}` on the targets both
    scored.  Pooled, scale-free: :math:`1 - \frac1F \sum_f \text{ratio}_f`, the mean of the
    per-front ratios over the fronts whose reference CRPS is positive, so that every front
    counts once whatever its scale (the CRPS pooled over targets is decided by the largest),
    with a 90% bootstrap interval over origins (:func:`~forecast.evaluation.scores.pooled_front_skill`).
    """
    by_front: dict[str, dict[str, object]] = {}
    pooled: dict[str, dict[str, object]] = {}
    for method in methods:
        by_front[method] = {}
        pooled[method] = {}
        for reference in SKILL_REFERENCES:
            if reference not in methods or reference == method:
                continue
            matched = _matched(scores, method, reference)
            sums = matched.groupby("front", sort=True)[["crps", "crps_ref"]].sum()
            sums = sums[sums["crps_ref"] > 0]
            ratios = sums["crps"] / sums["crps_ref"]
            by_front[method][reference] = {str(f): _clean(1.0 - r) for f, r in ratios.items()}
            estimate = pooled_front_skill(
                matched["crps"].to_numpy(),
                matched["crps_ref"].to_numpy(),
                matched["front"].to_numpy(),
                matched["origin"].to_numpy(),
            )
            pooled[method][reference] = {
                **estimate.to_dict(),
                "fronts_better": int((ratios < 1).sum()),
                "n_fronts": int(len(ratios)),
            }
    return by_front, pooled


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The command's table: CRPS beside the MAE of "last value", and the pooled skills, per method."""
    rows = ([(MODEL, summary["model"])] if summary.get("model") else []) + list(summary["baselines"].items())
    references = [r for r in SKILL_REFERENCES if r in summary["baselines"]]
    head = f"{'method':<16}{'CRPS':>10}{'MAE':>10}{'MAE last':>10}{'cover90':>9}{'PIT90':>8}"
    head += "".join(f"{'vs ' + r:>18}" for r in references)
    lines = [head + "   (skill: mean over fronts of 1 - CRPS/CRPS_ref)"]
    for name, row in rows:
        pooled = summary["pooled_skill"].get(name, {})
        text = f"{name:<16}{_fmt(row['crps']):>10}{_fmt(row['mae']):>10}{_fmt(row['mae_last_value']):>10}"
        text += f"{_fmt(row['coverage_90']):>9}{_fmt(row.get('pit_coverage_90')):>8}"
        for reference in references:
            entry = pooled.get(reference)
            cell = "" if entry is None else f"{_fmt(entry['value'])} {entry['fronts_better']}/{entry['n_fronts']}"
            text += f"{cell:>18}"
        lines.append(text)
    by_front = summary.get("skill_by_front", {})
    fronts = sorted({f for per_method in by_front.values() for f in per_method.get("no_change", {})})
    if fronts and len(fronts) <= MAX_FRONTS_PRINTED:
        lines.append("CRPS skill per front against no_change (1 - CRPS/CRPS_no_change):")
        names = [name for name, _ in rows if name != "no_change"]
        lines.append(f"{'front':<20}" + "".join(f"{name[:14]:>15}" for name in names))
        for front in fronts:
            cells = [_fmt(by_front.get(name, {}).get("no_change", {}).get(front)) for name in names]
            lines.append(f"{front[:19]:<20}" + "".join(f"{cell:>15}" for cell in cells))
    elif fronts:
        lines.append(f"CRPS skill per front ({len(fronts)} fronts): skill_by_front in summary.json and backtest.html")
    return lines


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _matched(scores: pd.DataFrame, method: str, reference: str) -> pd.DataFrame:
    a = scores[scores["method"] == method][[*KEYS, "crps", "log_score"]]
    b = scores[scores["method"] == reference][[*KEYS, "crps", "log_score"]]
    return a.merge(b, on=KEYS, suffixes=("", "_ref"))


def _skills(scores: pd.DataFrame, methods: list[str]) -> dict[str, object]:
    """Skill of the model against each baseline on the targets both scored (see ``scores.skill``)."""
    if MODEL not in methods:
        return {}
    out: dict[str, object] = {}
    for baseline in methods:
        if baseline == MODEL:
            continue
        matched = _matched(scores, MODEL, baseline)
        origins = matched["origin"].to_numpy()
        out[baseline] = {
            score: skill(matched[score].to_numpy(), matched[f"{score}_ref"].to_numpy(), origins).to_dict()
            for score in ("crps", "log_score")
        }
    return out


def _first_week(scores: pd.DataFrame, freq: str) -> dict[str, object]:
    """The issue's targets at the one-week horizon: CRPS skill against no-change and 90% coverage."""
    steps = FIRST_WEEK_STEPS.get(freq)
    if steps is None or MODEL not in set(scores["method"]):
        return {}
    week = scores[(scores["horizon"] <= steps) & (scores["kind"] == PERIOD)]
    matched = _matched(week, MODEL, "no_change")
    estimate = skill(matched["crps"].to_numpy(), matched["crps_ref"].to_numpy(), matched["origin"].to_numpy())
    mine = week[week["method"] == MODEL]
    coverage = _pit_coverage_90(mine)
    return {
        "horizon_steps": steps,
        "crps_skill_vs_no_change": estimate.to_dict(),
        # The target is judged on the PIT coverage: the interval's is biased upwards on small counts.
        "pit_coverage_90": _clean(coverage),
        "coverage_90": _clean(mine["in_90"].astype(float).mean()),
        "target_skill_met": skill_met(estimate.value),
        "target_coverage_met": coverage_met(coverage),
    }


def reliability_by_method(exceedance: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for method, rows in exceedance.groupby("method", sort=False):
        table = reliability_table(rows["p_exceed"].to_numpy(), rows["exceeded"].to_numpy())
        table.insert(0, "method", method)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", *RELIABILITY_COLUMNS])
