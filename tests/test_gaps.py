"""Declared gaps ("not observed from D1 to D2"): neither zero nor a window, anywhere downstream."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast import names as n
from forecast.data.events import read_events_csv
from forecast.data.panel import build_panel
from forecast.errors import DataValidationError
from forecast.evaluation.baselines import period_baselines
from forecast.jobs import backtest as bt
from forecast.jobs.data import DataRequest, check_data, format_check
from forecast.models.design import ModelOptions, build_design

START = pd.Timestamp("2024-01-01")
DAYS = 84
GAP = (pd.Timestamp("2024-02-05"), pd.Timestamp("2024-02-18"))  # two whole weeks, Monday..Sunday


def write_events(path, *, gap: bool = True, level: int = 40):
    """Daily counts of two fronts; front `a`'s source is dark during GAP (no rows, or a declared gap)."""
    rng = np.random.default_rng(0)
    lines = ["date,front,count,end_date,precision"]
    for day in pd.date_range(START, periods=DAYS, freq="D"):
        for front in ("a", "b"):
            if front == "a" and GAP[0] <= day <= GAP[1]:
                continue
            lines.append(f"{day.date()},{front},{rng.poisson(level)},,")
    if gap:
        lines.append(f"{GAP[0].date()},a,,{GAP[1].date()},not_observed")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_gap_is_neither_zero_nor_a_window(tmp_path):
    events = read_events_csv(write_events(tmp_path / "e.csv"))
    panel = build_panel(events)
    a = panel.period_obs[panel.period_obs[n.FRONT] == "a"]
    assert len(a) == DAYS - 14 and not a[n.DATE].between(*GAP).any()
    assert panel.window_obs.empty
    counts, exposure = panel.counts_matrix()
    in_gap = panel.periods.to_series().between(*GAP).to_numpy()
    assert np.isnan(counts[0, in_gap]).all() and (exposure[0, in_gap] == 0).all()
    assert not np.isnan(counts[1]).any()  # front b is not affected
    assert panel.gap_ranges("a") == [GAP] and panel.gap_ranges("b") == []
    mask = panel.gap_mask()
    assert mask.shape == (2, DAYS) and mask[0].sum() == 14 and not mask[1].any()
    # without the declaration the dark weeks are read as zeros: the lull that never happened
    silent = build_panel(read_events_csv(write_events(tmp_path / "s.csv", gap=False)))
    zeros = silent.period_obs[(silent.period_obs[n.FRONT] == "a") & silent.period_obs[n.DATE].between(*GAP)]
    assert len(zeros) == 14 and (zeros[n.COUNT] == 0).all()


def test_a_gap_on_a_coarser_grid_leaves_the_observed_days_as_exposure(tmp_path):
    path = write_events(tmp_path / "e.csv")
    # declare only the first dark week: the second (no rows of `a`, undeclared) is read as zeros
    path.write_text(path.read_text().replace(f"{GAP[0].date()},a,,{GAP[1].date()}", f"{GAP[0].date()},a,,2024-02-11"))
    panel = build_panel(read_events_csv(path), freq=n.FREQ_WEEK)
    weeks = panel.period_obs[panel.period_obs[n.FRONT] == "a"].set_index(n.DATE)
    assert pd.Timestamp("2024-02-05") not in weeks.index  # the whole week is a gap: no observation
    assert weeks.loc[pd.Timestamp("2024-02-12"), n.EXPOSURE_DAYS] == 7


def test_an_event_inside_its_fronts_gap_is_an_error_and_the_panel_csv_reads_back(tmp_path):
    path = write_events(tmp_path / "e.csv")
    path.write_text(path.read_text() + "2024-02-10,a,3,,\n")
    with pytest.raises(DataValidationError, match="inside its declared gap 2024-02-05..2024-02-18"):
        build_panel(read_events_csv(path))
    panel = build_panel(read_events_csv(write_events(tmp_path / "ok.csv")))
    written = tmp_path / "panel.csv"
    panel.to_frame().to_csv(written, index=False)
    again = build_panel(read_events_csv(written))
    assert again.gap_ranges("a") == [GAP] and again.data_hash() == panel.data_hash()


def test_data_check_lists_gaps_per_front(tmp_path):
    result = check_data(DataRequest(events=(write_events(tmp_path / "e.csv"),)))
    assert result["gaps"] == {"a": [{"start": "2024-02-05", "end": "2024-02-18", "days": 14}]}
    assert "a: 2024-02-05..2024-02-18 (14 days)" in format_check(result)


def test_a_gap_has_no_likelihood_term(tmp_path):
    panel = build_panel(read_events_csv(write_events(tmp_path / "e.csv")))
    design = build_design(panel, None, ModelOptions(changepoints=0, interventions=False))
    of_a = design.obs_front[design.period_obs] == panel.fronts.index("a")
    days = design.obs_date[design.period_obs][of_a]
    assert of_a.sum() == DAYS - 14 and not ((days >= GAP[0]) & (days <= GAP[1])).any()
    assert design.period_exposure[of_a].sum() == DAYS - 14


def test_baselines_skip_a_gap_and_the_backtest_does_not_score_it(tmp_path):
    counts = np.r_[np.full(20, 40.0), np.full(6, np.nan)]
    exposure = np.r_[np.ones(20), np.zeros(6)]
    out = period_baselines(counts, exposure, steps=np.array([1]), target_days=np.array([1.0]), window=7, season=None)
    assert out["no_change"].mean[0] == pytest.approx(40.0)  # the last observed value, not a zero
    assert out["moving_average"].mean[0] == pytest.approx(40.0)
    request = bt.BacktestRequest(
        data=DataRequest(events=(write_events(tmp_path / "e.csv"),)),
        options=ModelOptions(changepoints=0, interventions=False),
        inference="none",
        horizon=14,
        origin_dates=(pd.Timestamp("2024-02-01"),),
        min_train=28,
    )
    result = bt.score_origin(bt.plan_backtest(request)[0])
    scored = result.scores[result.scores["front"] == "a"]
    assert len(scored) and not scored["target_start"].between(*GAP).any()
    assert {"front": "a", "reason": "declared_gap", "detail": "2024-02-05..2024-02-15"} in result.not_scored
    # the origin right after the gap forecasts from the last observed days, not from zeros
    after = bt.BacktestRequest(**{**request.__dict__, "origin_dates": (pd.Timestamp("2024-02-19"),)})
    late = bt.score_origin(bt.plan_backtest(after)[0]).scores
    no_change = late[(late["front"] == "a") & (late["method"] == "no_change")]
    assert (no_change["mean"] > 10).all()


def test_the_fan_chart_shades_gaps():
    from forecast.plots.report import plot_fan_chart

    dates = pd.date_range(START, periods=30, freq="D")
    figure = plot_fan_chart(
        "a",
        observed_dates=dates,
        observed_values=np.ones(30),
        forecast_dates=pd.date_range(dates[-1] + pd.Timedelta(days=1), periods=5, freq="D"),
        forecast_draws=np.ones((10, 5)),
        gaps=[(dates[5], dates[9])],
    )
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert "not observed (declared gap)" in labels


def test_predictive_autocorrelations_skip_the_gap(tmp_path):
    from forecast.jobs.fit import check_predictions

    panel = build_panel(read_events_csv(write_events(tmp_path / "e.csv")))
    design = build_design(panel, None, ModelOptions(changepoints=0, interventions=False))
    replicated = np.broadcast_to(design.y, (1, 4, design.n_obs))
    result = check_predictions(design, replicated)
    a = design.obs_front == design.fronts.index("a")
    steps = dict(
        zip(design.period_index[a[design.period_obs]], design.y[design.period_obs][a[design.period_obs]], strict=True)
    )
    mean = np.mean(list(steps.values()))
    numerator = sum((steps[t] - mean) * (steps[t + 1] - mean) for t in steps if t + 1 in steps)  # not across the gap
    expected = numerator / sum((v - mean) ** 2 for v in steps.values())
    assert len(steps) == DAYS - 14 and sum(1 for t in steps if t + 1 in steps) == DAYS - 14 - 2
    assert result.check("a", "lag1_autocorrelation").observed == pytest.approx(expected)
