"""Aggregation to a panel: properties (hypothesis) and the window and as_of rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame, read_events_csv
from forecast.data.panel import build_panel, period_start
from forecast.errors import DataValidationError

START = pd.Timestamp("2024-01-01")


def table_from(rows: list[tuple[int, str, int]], windows: list[tuple[int, int, str, int]] = ()) -> EventTable:
    """Events from (day offset, front, count) rows and (start, end, front, count) windows."""
    records = [(START + pd.Timedelta(days=d), pd.NaT, f, c) for d, f, c in rows]
    records += [(START + pd.Timedelta(days=a), START + pd.Timedelta(days=b), f, c) for a, b, f, c in windows]
    frame = pd.DataFrame(records, columns=[n.DATE, n.END_DATE, n.FRONT, n.COUNT])
    size = len(frame)
    events = make_event_frame(
        dates=frame[n.DATE],
        end_dates=frame[n.END_DATE],
        fronts=frame[n.FRONT],
        counts=frame[n.COUNT].astype("int64"),
        precision=pd.Series(["exact"] * size),
        source=pd.Series([""] * size),
        file="<test>",
        lines=np.arange(2, size + 2),
    )
    return EventTable(frame=events, files=("<test>",))


event_rows = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["iraq", "syria", "gaza"]), st.integers(0, 50)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows=event_rows, freq=st.sampled_from(n.FREQS))
def test_totals_are_conserved_and_never_negative(rows, freq):
    panel = build_panel(table_from(rows), freq=freq)
    obs = panel.observations
    assert (obs[n.COUNT] >= 0).all()
    expected = pd.DataFrame(rows, columns=["day", "front", "count"]).groupby("front")["count"].sum()
    got = obs.groupby(n.FRONT)[n.COUNT].sum()
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)


@settings(max_examples=40, deadline=None)
@given(rows=event_rows, freq=st.sampled_from(n.FREQS), seed=st.integers(0, 2**16))
def test_row_order_is_irrelevant(rows, freq, seed):
    shuffled = list(np.random.default_rng(seed).permutation(len(rows)))
    a = build_panel(table_from(rows), freq=freq).to_frame()
    b = build_panel(table_from([rows[i] for i in shuffled]), freq=freq).to_frame()
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(rows=event_rows, freq=st.sampled_from(n.FREQS))
def test_every_period_of_every_front_is_present_and_exposures_cover_the_span(rows, freq):
    panel = build_panel(table_from(rows), freq=freq, period_tables="no")
    counts, exposure = panel.counts_matrix()
    assert not np.isnan(counts).any(), "missing periods must be explicit zeros"
    span_days = (panel.end - panel.start).days + 1
    assert (exposure.sum(axis=1) == span_days).all()
    assert (exposure == panel.period_days()).all()


@settings(max_examples=40, deadline=None)
@given(rows=event_rows, freq=st.sampled_from(n.FREQS))
def test_only_a_period_tables_cut_edge_periods_are_unknown(rows, freq):
    """Read as period tables where they look like them, fronts lose only the edge periods the span cuts.

    A period table's row is the total of its whole period: a period cut by the span's end (the
    other fronts' data end mid-period) has no known total, so it is unknown, never a zero.
    """
    panel = build_panel(table_from(rows), freq=freq)
    counts, _ = panel.counts_matrix()
    days = panel.period_days()
    full = (panel.period_ends() - panel.periods).days.to_numpy() + 1
    for f, front in enumerate(panel.fronts):
        missing = np.isnan(counts[f])
        if front in panel.period_table_fronts:
            edge = np.zeros(len(days), dtype=bool)
            edge[[0, -1]] = True
            assert not (missing & ~(edge & (days < full))).any()
        else:
            assert not missing.any(), "missing periods must be explicit zeros"


def test_days_without_events_are_zeros():
    panel = build_panel(table_from([(0, "iraq", 2), (3, "iraq", 1), (1, "syria", 4)]))
    frame = panel.to_frame()
    assert frame[frame.front == "iraq"]["count"].tolist() == [2, 0, 0, 1]
    assert frame[frame.front == "syria"]["count"].tolist() == [0, 4, 0, 0]


def test_weeks_start_on_monday_and_edge_periods_are_partial():
    # 2024-01-03 is a Wednesday; the span is Wed 3 Jan .. Tue 16 Jan.
    panel = build_panel(table_from([(2, "iraq", 1), (15, "iraq", 1)]), freq="week")
    assert panel.periods.tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-08"),
        pd.Timestamp("2024-01-15"),
    ]
    assert panel.period_days().tolist() == [5, 7, 2]
    assert period_start(pd.DatetimeIndex(["2024-02-29"]), "month")[0] == pd.Timestamp("2024-02-01")


def test_rows_after_as_of_are_excluded_and_reported():
    panel = build_panel(table_from([(0, "iraq", 2), (5, "iraq", 3), (9, "iraq", 7)]), as_of="2024-01-06")
    assert panel.end == pd.Timestamp("2024-01-06")
    assert panel.observations[n.COUNT].sum() == 5
    (warning,) = panel.warnings
    assert "after as_of 2024-01-06" in str(warning) and "7 events" in str(warning) and "lines 4" in str(warning)


def test_windows_stay_windows_and_their_weights_count_days_per_period():
    panel = build_panel(table_from([], windows=[(0, 9, "iraq", 12), (10, 20, "iraq", 3)]), freq="week")
    windows = panel.window_obs
    assert windows[n.COUNT].tolist() == [12, 3]
    assert windows[n.EXPOSURE_DAYS].tolist() == [10, 11]
    assert panel.period_obs.empty, "a window-only front has no invented period values"
    weights = panel.window_weights()
    assert weights.tolist() == [[7, 3, 0], [0, 4, 7]]
    frame = panel.to_frame()
    assert frame["end_date"].tolist() == ["2024-01-10", "2024-01-21"]


def test_a_front_reported_only_in_windows_gets_no_invented_zeros(write_csv):
    path = write_csv(
        "date,end_date,front,count\n2024-01-01,2024-01-01,iraq,2\n2024-01-02,2024-01-05,iraq,3\n"
        "2024-01-01,,gaza,1\n2024-01-20,,gaza,1\n"
    )
    panel = build_panel(read_events_csv(path))
    assert set(panel.period_obs[n.FRONT]) == {"gaza"}
    assert panel.window_obs[n.EXPOSURE_DAYS].tolist() == [1, 4]


def test_window_ending_after_as_of_is_excluded_not_truncated():
    panel = build_panel(table_from([(0, "gaza", 1)], windows=[(0, 9, "iraq", 12)]), as_of="2024-01-05")
    assert "iraq" not in panel.fronts
    assert any("12 events" in str(w) for w in panel.warnings)


def test_overlapping_windows_of_one_front_are_an_error_naming_both_lines():
    with pytest.raises(DataValidationError) as info:
        build_panel(table_from([], windows=[(0, 9, "iraq", 12), (5, 12, "iraq", 3), (5, 12, "syria", 3)]))
    (issue,) = info.value.issues
    assert issue.line == 3 and "overlaps" in issue.message and "line 2" in issue.message


def test_single_day_rows_inside_a_window_of_the_same_front_are_an_error():
    with pytest.raises(DataValidationError, match="counted twice"):
        build_panel(table_from([(3, "iraq", 1)], windows=[(0, 9, "iraq", 12)]))


@settings(max_examples=200, deadline=None)
@given(
    windows=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 20)), max_size=8),
    days=st.lists(st.integers(0, 90), max_size=8),
)
def test_the_screen_for_rows_inside_windows_agrees_with_a_search_of_every_pair(windows, days):
    """The vectorised screen that spares valid tables the row-by-row search misses no row inside a window,
    on the first and last day of a window, inside an earlier, longer window, or with overlaps."""
    from forecast.data.panel import _any_point_inside

    starts = [START + pd.Timedelta(days=a) for a, _ in windows]
    ends = [START + pd.Timedelta(days=a + length) for a, length in windows]
    ordered = pd.DataFrame({n.DATE: starts, n.END_DATE: ends}).sort_values([n.DATE, n.END_DATE], kind="mergesort")
    points = pd.DataFrame({n.DATE: pd.to_datetime([START + pd.Timedelta(days=d) for d in days])})
    expected = any(
        (w[n.DATE] <= p) and (p <= w[n.END_DATE]) for w in ordered.to_dict("records") for p in points[n.DATE]
    )
    assert _any_point_inside(ordered, points) == expected


def test_point_front_days_covered_by_its_windows_are_not_zero_filled():
    panel = build_panel(table_from([(12, "iraq", 1)], windows=[(0, 9, "iraq", 12)]))
    days = panel.period_obs[n.DATE]
    assert days.min() == pd.Timestamp("2024-01-11")


def test_extreme_outliers_are_warned_and_kept(write_csv):
    rows = "".join(
        f"2024-01-{d:02d},gaza,{c}\n" for d, c in zip(range(1, 32), [900] + [5, 6, 4, 7, 5, 8] * 5, strict=True)
    )
    panel = build_panel(read_events_csv(write_csv("date,front,count\n" + rows)))
    assert any("extreme outlier" in str(w) and "900" in str(w) for w in panel.warnings)
    assert panel.observations[n.COUNT].iloc[0] == 900


def test_data_hash_changes_with_the_data_and_not_with_row_order():
    a = build_panel(table_from([(0, "iraq", 2), (1, "syria", 1)]))
    b = build_panel(table_from([(1, "syria", 1), (0, "iraq", 2)]))
    c = build_panel(table_from([(0, "iraq", 3), (1, "syria", 1)]))
    assert a.data_hash() == b.data_hash() != c.data_hash()


def test_unknown_frequency_is_rejected():
    with pytest.raises(ValueError, match="allowed"):
        build_panel(table_from([(0, "iraq", 1)]), freq="fortnight")
