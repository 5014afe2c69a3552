"""Period tables (rows = whole-period totals) and events with uncertain dates (one event in a span)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame, read_events_csv
from forecast.data.options import SelectOptions
from forecast.data.panel import UNCERTAIN_END, build_panel, period_start
from forecast.data.ucdp import read_ucdp_csv
from forecast.errors import DataValidationError
from forecast.jobs.data import DataRequest, check_data, format_check

FIXTURES = Path(__file__).parent / "fixtures"
MONTHS = pd.date_range("2022-01-01", periods=30, freq="MS")


def write_monthly_table(path: Path, *, level: int = 300) -> Path:
    rng = np.random.default_rng(0)
    rows = ["date,front,count"] + [f"{m.date()},attacks,{rng.poisson(level)}" for m in MONTHS]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_monthly_table_keeps_full_exposure_in_its_last_month(tmp_path):
    events = read_events_csv(write_monthly_table(tmp_path / "monthly.csv"))
    panel = build_panel(events, freq=n.FREQ_MONTH)
    assert panel.period_table_fronts == ("attacks",)
    assert panel.end == pd.Timestamp("2024-06-30")  # the end of the last period, not its first day
    obs = panel.period_obs
    assert obs[n.EXPOSURE_DAYS].tolist()[-1] == 30
    assert (obs[n.EXPOSURE_DAYS].to_numpy() == MONTHS.days_in_month.to_numpy()).all()
    assert int(obs[n.COUNT].sum()) == int(events.frame[n.COUNT].sum())
    assert not any("outlier" in str(w) or "partial" in str(w) for w in panel.warnings)
    # read as one-day events (the old reading), the last month has one day and is an outlier
    as_events = build_panel(events, freq=n.FREQ_MONTH, period_tables="no")
    assert as_events.period_table_fronts == ()
    assert as_events.period_obs[n.EXPOSURE_DAYS].tolist()[-1] == 1
    assert any("extreme outlier" in str(w) for w in as_events.warnings)
    assert any("last month starting 2024-06-01 is partial: 1 of 30" in str(w) for w in as_events.warnings)


def test_a_period_total_is_unknown_until_its_period_ends(tmp_path):
    events = read_events_csv(write_monthly_table(tmp_path / "monthly.csv"))
    cut = build_panel(events, freq=n.FREQ_MONTH, as_of="2024-06-15")
    # June's total is not known on the 15th: June is neither zero nor 15 days of it
    assert cut.period_obs[n.DATE].max() == pd.Timestamp("2024-05-01")
    assert cut.period_obs[n.EXPOSURE_DAYS].tolist()[-1] == 31
    assert any("after as_of" in str(w) for w in cut.warnings)
    at_month_end = build_panel(events, freq=n.FREQ_MONTH, as_of="2024-05-31")
    assert at_month_end.period_obs[n.DATE].max() == pd.Timestamp("2024-05-01")


def test_period_table_detection_and_the_flag(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("date,front,count\n2024-01-01,a,10\n2024-02-01,a,12\n2024-01-01,b,3\n2024-01-15,b,4\n")
    events = read_events_csv(path)
    assert build_panel(events, freq=n.FREQ_MONTH).period_table_fronts == ("a",)
    assert build_panel(events, freq=n.FREQ_DAY).period_table_fronts == ()  # a day row is a day total anyway
    with pytest.raises(DataValidationError, match="is not the first day of a month"):
        build_panel(events, freq=n.FREQ_MONTH, period_tables="yes")
    result = check_data(DataRequest(events=(write_monthly_table(tmp_path / "m.csv"),), freq=n.FREQ_MONTH))
    assert result["period_tables"] == ["attacks"] and result["end"] == "2024-06-30"
    assert "read as month tables" in format_check(result)


# --------------------------------------------------------------------------------------------
# Uncertain dates: a GED-layout file with overlapping uncertain and precise dates
# --------------------------------------------------------------------------------------------

#: (date_start, date_end, country, adm_1, best): uncertain spans overlap precise events of the same
#: country, cross month and week boundaries, and one adm_1 is empty.
GED_ROWS = [
    ("2024-01-28", "2024-01-28", "Syria", "Homs", 3),
    ("2024-01-25", "2024-02-03", "Syria", "Homs", 7),  # crosses a month, holds the two precise ones
    ("2024-01-30", "2024-01-30", "Syria", "Homs", 1),
    ("2024-02-01", "2024-02-01", "Syria", "Aleppo", 4),
    ("2024-02-05", "2024-02-09", "Syria", "", 2),  # within one month, within one week; empty adm_1
    ("2024-01-01", "2024-03-31", "Syria", "Aleppo", 11),  # a quarter
    ("2024-02-10", "2024-02-10", "Iraq", "Anbar", 5),
    ("2024-02-08", "2024-02-12", "Iraq", "Anbar", 6),  # crosses a week boundary only
    ("2024-03-30", "2024-04-02", "Iraq", "Kirkuk", 9),
]


def write_ged(path: Path) -> Path:
    with (FIXTURES / "ucdp_ged_49.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        template = next(reader)
        header = reader.fieldnames
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for i, (start, end, country, adm_1, best) in enumerate(GED_ROWS):
            row = dict(template)
            row.update(id=str(1000 + i), date_start=start, date_end=end, country=country, adm_1=adm_1, best=str(best))
            row["date_prec"] = "1" if start == end else "4"
            writer.writerow(row)
    return path


def totals(rows, key):
    out: dict[str, int] = {}
    for _, _, country, adm_1, best in rows:
        front = {"country": country, "adm_1": adm_1 or "unknown"}[key]
        out[front] = out.get(front, 0) + (best if key else 1)
    return out


@pytest.mark.parametrize("freq", [n.FREQ_DAY, n.FREQ_WEEK, n.FREQ_MONTH])
@pytest.mark.parametrize("policy", ["start", "middle"])
@pytest.mark.parametrize("by", ["country", "adm_1"])
def test_a_ged_file_with_overlapping_uncertain_and_precise_dates_conserves_its_counts(tmp_path, freq, policy, by):
    path = write_ged(tmp_path / "ged.csv")
    for measure in ("events", "deaths"):
        events = read_ucdp_csv(path, SelectOptions(by=by, measure=measure))
        panel = build_panel(events, freq=freq, uncertain_dates=policy)  # no "counted twice" error
        assert panel.window_obs.empty
        got = panel.period_obs.groupby(n.FRONT)[n.COUNT].sum().to_dict()
        expected = {}
        for _, _, country, adm_1, best in GED_ROWS:
            front = country if by == "country" else (adm_1 or "unknown")
            expected[front] = expected.get(front, 0) + (best if measure == "deaths" else 1)
        assert got == expected


def test_uncertain_dates_are_placed_in_the_period_holding_their_span_else_by_the_policy(tmp_path):
    events = read_ucdp_csv(write_ged(tmp_path / "ged.csv"), SelectOptions(measure="deaths"))
    month = build_panel(events, freq=n.FREQ_MONTH, uncertain_dates="start")
    syria = month.period_obs[month.period_obs[n.FRONT] == "Syria"].set_index(n.DATE)[n.COUNT]
    # January: 3 + 7 (starts 01-25) + 1 + 11 (the quarter, at its start); February: 4 + 2
    assert syria[pd.Timestamp("2024-01-01")] == 22 and syria[pd.Timestamp("2024-02-01")] == 6
    middle = build_panel(events, freq=n.FREQ_MONTH, uncertain_dates="middle")
    syria = middle.period_obs[middle.period_obs[n.FRONT] == "Syria"].set_index(n.DATE)[n.COUNT]
    # the 01-25..02-03 event's middle is 01-29; the quarter's is 2024-02-15
    assert syria[pd.Timestamp("2024-01-01")] == 11 and syria[pd.Timestamp("2024-02-01")] == 17
    dropped = build_panel(events, freq=n.FREQ_MONTH, uncertain_dates="drop")
    assert int(dropped.period_obs[n.COUNT].sum()) == sum(r[4] for r in GED_ROWS) - (7 + 11 + 9)
    assert any("3 event row(s) (count 27)" in str(w) and "dropped" in str(w) for w in dropped.warnings)
    assert any("lie within one month each" in str(w) for w in dropped.warnings)


def test_acled_rows_dated_to_a_month_count_in_that_month(tmp_path):
    from forecast.data.acled import read_acled_csv

    events = read_acled_csv(FIXTURES / "acled_api.csv")
    panel = build_panel(events, freq=n.FREQ_MONTH, uncertain_dates="drop")
    # SYR90002 (2024-01-28, precision 3) lies in January; SYR90001 (02-02 +- 3 days) crosses a month
    assert int(panel.period_obs[n.COUNT].sum()) == len(events) - 1
    syria = panel.period_obs[panel.period_obs[n.FRONT] == "Syria"].set_index(n.DATE)[n.COUNT]
    assert syria[pd.Timestamp("2024-01-01")] == 1


@settings(max_examples=60, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 120), st.integers(0, 60), st.sampled_from(["a", "b"]), st.integers(0, 9)),
        min_size=1,
        max_size=30,
    ),
    freq=st.sampled_from([n.FREQ_DAY, n.FREQ_WEEK, n.FREQ_MONTH]),
    policy=st.sampled_from(["start", "middle", "drop"]),
)
def test_placing_uncertain_dates_conserves_counts_or_counts_what_it_drops(spans, freq, policy):
    start = pd.Timestamp("2024-01-01")
    first = [start + pd.Timedelta(days=a) for a, _, _, _ in spans]
    frame = make_event_frame(
        dates=pd.Series(first),
        end_dates=pd.Series([pd.NaT] * len(spans), dtype="datetime64[ns]"),
        fronts=pd.Series([f for _, _, f, _ in spans]),
        counts=pd.Series([c for *_, c in spans], dtype="int64"),
        precision=pd.Series(["exact"] * len(spans)),
        source=pd.Series([""] * len(spans)),
        file="<test>",
        lines=np.arange(2, len(spans) + 2),
    )
    frame[UNCERTAIN_END] = [
        d + pd.Timedelta(days=w) if w else pd.NaT for d, (_, w, _, _) in zip(first, spans, strict=True)
    ]
    events = EventTable(frame=frame, files=("<test>",))
    as_of = start + pd.Timedelta(days=200)
    crossing = [
        w
        and (
            period_start(pd.DatetimeIndex([d]), freq)
            != period_start(pd.DatetimeIndex([d + pd.Timedelta(days=w)]), freq)
        )[0]
        for d, (_, w, _, _) in zip(first, spans, strict=True)
    ]
    if policy == "drop" and all(crossing):
        with pytest.raises(DataValidationError, match="no events left to aggregate"):
            build_panel(events, freq=freq, uncertain_dates=policy, as_of=as_of)
        return
    panel = build_panel(events, freq=freq, uncertain_dates=policy, as_of=as_of)
    total = int(panel.period_obs[n.COUNT].sum())
    if policy == "drop":
        dropped = [w for w in panel.warnings if "were dropped" in str(w)]
        lost = int(re.search(r"\(count (\d+)\)", str(dropped[0])).group(1)) if dropped else 0
        assert total + lost == sum(c for *_, c in spans)
    else:
        assert total == sum(c for *_, c in spans)
