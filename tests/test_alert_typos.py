"""A mistyped date on one front: excluded per front, reported with its line, never freezing the job."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from forecast.jobs.alert import AlertRequest, run_alert_job

START = date(2024, 1, 1)


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def write(path: Path, last: int, extra: list[str] = ()) -> Path:
    """``north`` about 4 a day then 20 a day from day 60; ``south`` about 6 a day; days 0..last."""
    rng = np.random.default_rng(3)
    north = np.r_[rng.poisson(4, 60), rng.poisson(20, 40)]
    south = rng.poisson(6, 100)
    lines = ["date,front,count"]
    for t in range(last + 1):
        lines += [f"{day(t)},north,{north[t]}", f"{day(t)},south,{south[t]}"]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def run(state: Path, events: Path, as_of: date, since: date | None = None):
    out = io.StringIO()
    since = day(50) if since is None else since
    request = AlertRequest(state=state, events=(events,), as_of=as_of, since=since, notify=("stdout",))
    result = run_alert_job(request, stdout=out)
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


def rows(state: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(state)) as connection:
        return connection.execute(sql).fetchall()


def test_a_row_dated_after_as_of_is_excluded_on_its_front_only(tmp_path, caplog):
    clean = write(tmp_path / "clean.csv", 79)
    typo = write(tmp_path / "typo.csv", 79, ["2033-03-05,north,4"])  # line 162: 2033 for 2024
    _, expected = run(tmp_path / "clean.sqlite", clean, day(85))
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run(tmp_path / "typo.sqlite", typo, day(85))
    assert lines == expected
    assert rows(tmp_path / "typo.sqlite", "SELECT front, MAX(date) FROM observations GROUP BY front") == [
        ("north", day(79).isoformat()),
        ("south", day(79).isoformat()),
    ]
    (warning,) = [r.getMessage() for r in caplog.records if "excluded" in r.getMessage()]
    assert f"{typo}: 1 row(s) of front 'north' dated after as_of {day(85)}" in warning
    assert "line(s) 162" in warning
    assert all(r.levelno == logging.WARNING for r in caplog.records if "excluded" in r.getMessage())


def test_a_row_dated_before_a_fronts_history_is_excluded_and_alerts_nothing(tmp_path, caplog):
    clean = write(tmp_path / "clean.csv", 70)
    run(tmp_path / "clean.sqlite", clean, day(70))
    run(tmp_path / "typo.sqlite", clean, day(70))
    _, expected = run(tmp_path / "clean.sqlite", write(tmp_path / "clean2.csv", 71), day(71))
    typo = write(tmp_path / "typo2.csv", 71, ["2023-01-04,south,5"])  # 2023 for 2024, line 146
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run(tmp_path / "typo.sqlite", typo, day(71))
    assert lines == expected and result.revisions == []
    assert "line(s) 146" in caplog.text and "before the front's history" in caplog.text
    assert rows(tmp_path / "typo.sqlite", "SELECT MIN(date) FROM observations") == [(day(0).isoformat(),)]


def test_a_fixed_typo_is_a_revision_and_the_real_new_days_are_processed(tmp_path, caplog):
    # Day 75 typed for day 59 on north: the first run zero-fills both fronts up to day 75.
    typo = write(tmp_path / "typo.csv", 58, ["2024-03-16,north,4"])
    run(tmp_path / "typo.sqlite", typo, day(75))
    assert rows(tmp_path / "typo.sqlite", "SELECT MAX(date) FROM observations") == [(day(75).isoformat(),)]
    # The next day the row is fixed and the real days up to 68 (north's surge from day 60) arrive.
    fixed = write(tmp_path / "fixed.csv", 68)
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run(tmp_path / "typo.sqlite", fixed, day(76))
    assert {r["front"] for r in result.revisions} == {"north", "south"}
    assert "handled as a revision" in caplog.text and "never goes back" not in caplog.text
    assert rows(tmp_path / "typo.sqlite", "SELECT MAX(date) FROM observations") == [(day(68).isoformat(),)]
    # The state now equals a state that never saw the typo, and the surge on north raised its alert.
    run(tmp_path / "clean.sqlite", write(tmp_path / "clean.csv", 58), day(75))
    run(tmp_path / "clean.sqlite", fixed, day(76))
    live = "SELECT id, front, date, direction FROM alerts WHERE status != 'withdrawn' ORDER BY id"
    assert rows(tmp_path / "typo.sqlite", live) == rows(tmp_path / "clean.sqlite", live)
    assert any(a["front"] == "north" and a["direction"] == "up" for a in lines)


def test_pruning_keeps_the_newest_month_checkpoints_and_run_states(tmp_path):
    from forecast.jobs.alert_state import KIND_MONTH, KIND_RUN, AlertStore, SavedFrontState

    with AlertStore(tmp_path / "s.sqlite") as store, store.transaction():
        for front in ("north", "south"):
            for month in range(1, 16):  # 15 month ends of 2023-2024, then 9 run ends
                day = date(2023 + (month - 1) // 12, 1 + (month - 1) % 12, 28).isoformat()
                store.save_state(SavedFrontState(front, day, KIND_MONTH, 1, b"x", "{}"))
            for run in range(9):
                store.save_state(SavedFrontState(front, f"2024-04-{10 + run:02d}", KIND_RUN, 1, b"x", "{}"))
        store.prune_all_states(keep=7, keep_months=12)
    kept = rows(tmp_path / "s.sqlite", "SELECT front, kind, COUNT(*), MIN(date) FROM front_state GROUP BY front, kind")
    assert kept == [
        ("north", "month", 12, "2023-04-28"),
        ("north", "run", 7, "2024-04-12"),
        ("south", "month", 12, "2023-04-28"),
        ("south", "run", 7, "2024-04-12"),
    ]


def test_a_window_total_ending_before_its_fronts_history_is_excluded(tmp_path, caplog):
    from tests.test_alert_job import write_events

    events = write_events(tmp_path / "events.csv")
    run(tmp_path / "s.sqlite", events, day(90))
    typo = tmp_path / "typo.csv"
    typo.write_text(events.read_text() + "2023-01-01,2023-01-10,east,30\n", encoding="utf-8")  # 2023 for 2024
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run(tmp_path / "s.sqlite", typo, day(90))
    assert result.revisions == [] and lines == []
    assert "front 'east' dated before the front's history" in caplog.text
