"""``forecast alert``: idempotent scheduled runs, revisions, replay, exit codes, crashes, locks."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from forecast.cli_alert import add_alert_parser, run_alert_command
from forecast.jobs.alert import (
    DRAWS_FILE,
    EXIT_ALERT,
    EXIT_ERROR,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    AlertRequest,
    load_known_changes,
    load_predictive_draws,
    replay_alerts,
    run_alert_job,
)

REPO = Path(__file__).resolve().parents[1]
START = date(2024, 1, 1)
DAYS = 100


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def write_events(path: Path, *, changes: dict[tuple[str, int], int] | None = None) -> Path:
    """Two daily fronts with known shifts and one front observed through window totals only.

    ``north``: about 4 a day, 20 a day from day 60.  ``south``: about 6 a day, a lull (zeros)
    from day 80.  ``east``: window totals.  ``changes`` overrides (front, day) counts.
    """
    rng = np.random.default_rng(7)
    north = np.r_[rng.poisson(4, 60), rng.poisson(20, DAYS - 60)]
    south = np.r_[rng.poisson(6, 80), np.zeros(DAYS - 80, dtype=int)]
    lines = ["date,end_date,front,count"]
    for t in range(DAYS):
        counts = {"north": int(north[t]), "south": int(south[t])}
        for (front, when), value in (changes or {}).items():
            if when == t:
                counts[front] = value
        for front, count in counts.items():
            lines.append(f"{day(t).isoformat()},,{front},{count}")
    for t in range(0, DAYS - 9, 10):
        lines.append(f"{day(t).isoformat()},{day(t + 9).isoformat()},east,{int(rng.poisson(30))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return write_events(tmp_path / "events.csv")


def request(tmp_path: Path, events: Path, **changes) -> AlertRequest:
    base = {"state": tmp_path / "state.sqlite", "events": (events,), "notify": ("stdout",), "lock_timeout": 20.0}
    base.update(changes)
    return AlertRequest(**base)


def run_job(tmp_path: Path, events: Path, **changes) -> tuple[object, list[dict]]:
    out = io.StringIO()
    result = run_alert_job(request(tmp_path, events, **changes), stdout=out)
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


def cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="forecast")
    add_alert_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["alert", *argv])
    out = io.StringIO()
    code = run_alert_command(args, stdout=out)
    return code, out.getvalue()


def table(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


# --------------------------------------------------------------------------------------------


def test_importing_the_alert_job_keeps_pymc_out():
    code = (
        "import sys, forecast.jobs.alert, forecast.data.readers, forecast.data.panel; "
        "heavy = [m for m in ('pymc', 'arviz', 'pytensor') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_first_run_notifies_only_from_since_and_records_history(tmp_path, events):
    result, lines = run_job(tmp_path, events, as_of=day(85))
    assert result.skipped_fronts == ()  # east (window totals) runs through the window detector
    statuses = dict(
        table(tmp_path / "state.sqlite", "SELECT front || ' ' || date || ' ' || direction, status FROM alerts")
    )
    assert any(k.startswith("north 2024-03-0") and k.endswith("up") for k in statuses), statuses
    assert set(statuses.values()) == {"history"}  # all found alerts lie before the last day (since)
    assert lines == []
    # With --since, the north shift (day 60 = 2024-03-01) is notified.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result, lines = run_job(fresh, events, as_of=day(85), since=day(55))
    shift = [a for a in lines if a["front"] == "north"]
    assert shift and shift[0]["direction"] == "up" and day(60).isoformat() <= shift[0]["date"] <= day(64).isoformat()
    assert {"id", "front", "date", "direction", "rule", "probability", "as_of"} <= set(shift[0])
    assert all(a["as_of"] == day(85).isoformat() for a in lines)
    assert result.new_observations == 2 * 86 + 8  # and east's 8 windows ending by day 85


def test_rerunning_on_the_same_data_issues_nothing_twice(tmp_path, events):
    first, lines = run_job(tmp_path, events, as_of=day(99), since=day(50))
    assert lines and len(lines) == len(first.issued)
    before = table(tmp_path / "state.sqlite", "SELECT id, status, as_of FROM alerts ORDER BY id")
    again, lines_again = run_job(tmp_path, events, as_of=day(99), since=day(50))
    assert lines_again == [] and again.issued == [] and again.new_observations == 0
    later, lines_later = run_job(tmp_path, events, as_of=day(110))  # a later date, no new data
    assert lines_later == [] and later.new_observations == 0
    assert table(tmp_path / "state.sqlite", "SELECT id, status, as_of FROM alerts ORDER BY id") == before
    outbox = table(tmp_path / "state.sqlite", "SELECT COUNT(*), COUNT(delivered_at) FROM outbox")
    assert outbox == [(len(lines), len(lines))]


def test_a_run_for_an_earlier_date_leaves_the_state_alone(tmp_path, events, caplog):
    run_job(tmp_path, events, as_of=day(90), since=day(50))
    before = table(tmp_path / "state.sqlite", "SELECT id, status FROM alerts ORDER BY id")
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run_job(tmp_path, events, as_of=day(70))
    assert result.revisions == [] and result.withdrawn == [] and lines == []
    assert "never goes back in time" in caplog.text
    assert table(tmp_path / "state.sqlite", "SELECT id, status FROM alerts ORDER BY id") == before
    assert table(tmp_path / "state.sqlite", "SELECT MAX(date) FROM observations") == [(day(90).isoformat(),)]


def test_scheduled_daily_runs_print_exactly_the_replay_lines(tmp_path, events):
    first_day, last_day = day(55), day(92)
    scheduled: list[str] = []
    current = first_day
    while current <= last_day:
        code, out = cli("--events", str(events), "--state", str(tmp_path / "s.sqlite"), "--as-of", current.isoformat())
        assert code == EXIT_OK
        scheduled += out.splitlines()
        current += timedelta(days=1)
    code, replayed = cli("--events", str(events), "--replay", first_day.isoformat(), last_day.isoformat())
    assert code == EXIT_OK
    assert replayed.splitlines() == scheduled
    fronts = {json.loads(line)["front"] for line in scheduled}
    assert fronts == {"north", "south"}


def test_a_revision_is_recomputed_from_the_first_changed_day_and_reported(tmp_path, events, caplog):
    run_job(tmp_path, events, as_of=day(99), since=day(50))
    south_lull = table(
        tmp_path / "state.sqlite",
        "SELECT id FROM alerts WHERE front = 'south' AND direction = 'down' AND status = 'issued'",
    )
    assert south_lull
    # Corrected counts: south had no lull after all (days 80..99 revised upwards).
    revised = write_events(tmp_path / "revised.csv", changes={("south", t): 6 for t in range(80, DAYS)})
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run_job(tmp_path, revised, as_of=day(99))
    assert [r["front"] for r in result.revisions] == ["south"]
    assert result.revisions[0]["first_changed"] == day(80).isoformat()
    assert result.revisions[0]["rows_changed"] == 20
    assert set(result.withdrawn) >= {row[0] for row in south_lull}
    assert "data revision on front 'south'" in caplog.text and "withdrawn" in caplog.text
    rows = table(tmp_path / "state.sqlite", "SELECT front, first_changed, rows_changed FROM revisions")
    assert rows == [("south", day(80).isoformat(), 20)]
    statuses = dict(table(tmp_path / "state.sqlite", "SELECT id, status FROM alerts"))
    assert all(statuses[row[0]] == "withdrawn" for row in south_lull)
    # The stored data are the revised ones; a second run sees nothing new.
    stored = table(
        tmp_path / "state.sqlite",
        f"SELECT count FROM observations WHERE front = 'south' AND date = '{day(90).isoformat()}'",
    )
    assert stored == [(6,)]
    again, lines = run_job(tmp_path, revised, as_of=day(99))
    assert again.revisions == [] and lines == []


def test_a_revision_that_adds_a_shift_issues_the_new_alert(tmp_path, events):
    run_job(tmp_path, events, as_of=day(50))
    spike = {("south", t): 40 for t in range(40, 48)}
    result, lines = run_job(tmp_path, write_events(tmp_path / "spiked.csv", changes=spike), as_of=day(50))
    assert result.revisions and result.revisions[0]["first_changed"] == day(40).isoformat()
    assert any(a["front"] == "south" and a["direction"] == "up" for a in lines)


def test_exit_codes(tmp_path, events):
    state = str(tmp_path / "s.sqlite")
    code, out = cli(
        "--events",
        str(events),
        "--state",
        state,
        "--as-of",
        day(70).isoformat(),
        "--since",
        day(50).isoformat(),
        "--fail-on-alert",
    )
    assert code == EXIT_ALERT and out
    code, out = cli("--events", str(events), "--state", state, "--as-of", day(70).isoformat(), "--fail-on-alert")
    assert code == EXIT_OK and out == ""
    code, _ = cli("--events", str(tmp_path / "missing.csv"), "--state", state)
    assert code == EXIT_ERROR
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("treshold: 0.5\n", encoding="utf-8")
    code, _ = cli("--events", str(events), "--state", state, "--rules", str(bad_rules))
    assert code == EXIT_ERROR
    code, _ = cli("--events", str(events), "--state", state, "--notify", "pigeon:coop")
    assert code == EXIT_ERROR
    with pytest.raises(SystemExit) as usage:
        cli("--as-of", "yesterday")
    assert usage.value.code == 2
    code, out = cli("--events", str(events), "--replay", day(55).isoformat(), day(70).isoformat(), "--fail-on-alert")
    assert code == EXIT_ALERT and out


def test_an_undeliverable_notification_gives_exit_4_and_stays_queued(tmp_path, events):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where a folder is expected", encoding="utf-8")
    state = str(tmp_path / "s.sqlite")
    target = f"file:{blocked / 'alerts.jsonl'}"
    code, _ = cli(
        "--events",
        str(events),
        "--state",
        state,
        "--as-of",
        day(70).isoformat(),
        "--since",
        day(50).isoformat(),
        "--notify",
        target,
    )
    assert code == EXIT_NOT_DELIVERED
    pending = table(tmp_path / "s.sqlite", "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")[0][0]
    assert pending > 0
    blocked.unlink()
    code, _ = cli("--events", str(events), "--state", state, "--as-of", day(70).isoformat(), "--notify", target)
    assert code == EXIT_OK
    written = (blocked / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(written) == pending == len({json.loads(line)["id"] for line in written})


def test_fronts_with_window_totals_only_run_through_the_window_detector(tmp_path, events, caplog):
    caplog.set_level(logging.INFO, logger="forecast")
    result, _ = run_job(tmp_path, events, as_of=day(30))
    assert result.skipped_fronts == ()
    assert "window totals" in caplog.text and "east" in caplog.text
    assert table(tmp_path / "state.sqlite", "SELECT DISTINCT front FROM observations ORDER BY front") == [
        ("east",),
        ("north",),
        ("south",),
    ]
    # east's windows are stored by end date; a re-run finds nothing new.
    assert table(tmp_path / "state.sqlite", "SELECT date FROM observations WHERE front = 'east' ORDER BY date") == [
        (day(9).isoformat(),),
        (day(19).isoformat(),),
        (day(29).isoformat(),),
    ]
    again, lines = run_job(tmp_path, events, as_of=day(30))
    assert again.new_observations == 0 and lines == []


def test_a_lull_in_window_totals_alerts_on_the_window_end_in_runs_and_replay(tmp_path):
    # east: ~3 a day in windows of 10 days, then nothing from day 60 on.
    lines = ["date,end_date,front,count"]
    for t in range(0, DAYS - 9, 10):
        total = int(np.random.default_rng(t).poisson(30)) if t < 60 else 0
        lines.append(f"{day(t).isoformat()},{day(t + 9).isoformat()},east,{total}")
    for t in range(DAYS):
        lines.append(f"{day(t).isoformat()},,north,4")
    path = tmp_path / "windows.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scheduled = []
    for t in range(55, 92):
        code, out = cli("--events", str(path), "--state", str(tmp_path / "s.sqlite"), "--as-of", day(t).isoformat())
        assert code == EXIT_OK
        scheduled += out.splitlines()
    code, replayed = cli("--events", str(path), "--replay", day(55).isoformat(), day(91).isoformat())
    assert replayed.splitlines() == scheduled
    east = [json.loads(line) for line in scheduled if json.loads(line)["front"] == "east"]
    assert east and east[0]["direction"] == "down"
    assert east[0]["date"] in (day(69).isoformat(), day(79).isoformat())
    assert date.fromisoformat(east[0]["date"]) - date.fromisoformat(east[0]["window_start"]) == timedelta(days=9)


def test_changing_the_rules_recomputes_and_says_so(tmp_path, events, caplog):
    run_job(tmp_path, events, as_of=day(70), since=day(50))
    rules = tmp_path / "rules.yaml"
    rules.write_text("changepoint: {threshold: 0.3}\n", encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run_job(tmp_path, events, as_of=day(70), rules=rules)
    assert "recomputing every front" in caplog.text
    assert lines == [] and result.issued == []  # what the new rules find in processed days is history
    assert table(tmp_path / "state.sqlite", "SELECT value FROM meta WHERE key = 'config_hash'")


def test_the_surprise_rule_uses_the_fit_draws(tmp_path, events, caplog):
    fit = tmp_path / "fit"
    fit.mkdir()
    dates = [day(t).isoformat() for t in range(70, 75)]
    draws = np.random.default_rng(0).poisson(4, size=(400, 2, len(dates))).astype(np.int64)  # north ~4/day: too low
    np.savez(
        fit / DRAWS_FILE,
        fronts=np.array(["north", "south"]),
        dates=np.array(dates),
        draws=draws,
        as_of=np.array(day(69).isoformat()),
    )
    caplog.set_level(logging.INFO, logger="forecast")
    result, lines = run_job(tmp_path, events, as_of=day(80), since=day(70), fit=fit)
    surprise = [a for a in lines if a["rule"] == "surprise"]
    assert surprise and all(a["front"] == "north" and a["direction"] == "up" for a in surprise)
    assert all(dates[0] <= a["date"] <= dates[-1] for a in surprise)
    assert surprise[0]["fit_as_of"] == day(69).isoformat() and surprise[0]["probability"] <= 0.01
    assert "outside the fit's horizon" in caplog.text


def test_the_alert_job_reads_the_draws_that_forecast_fit_writes(tmp_path):
    # forecast.jobs.alert cannot import forecast.jobs.fit (PyMC); this keeps the two in step.
    from types import SimpleNamespace

    import pandas as pd
    import xarray as xr

    from forecast.jobs.fit import FORECAST_DRAWS_FILE, write_forecast_draws

    assert DRAWS_FILE == FORECAST_DRAWS_FILE
    counts = np.arange(2 * 3 * 2 * 4).reshape(2, 3, 2, 4)  # chain, draw, front, date
    dates = pd.date_range("2024-05-17", periods=4)
    outcome = SimpleNamespace(
        forecast=xr.Dataset({"counts": (("chain", "draw", "front", "date"), counts)}, coords={"date": dates}),
        model=SimpleNamespace(
            design=SimpleNamespace(fronts=["north", "south"]), panel=SimpleNamespace(end=pd.Timestamp("2024-05-16"))
        ),
    )
    write_forecast_draws(outcome, tmp_path / DRAWS_FILE)
    draws = load_predictive_draws(tmp_path)
    assert draws is not None
    assert draws.fronts == ("north", "south") and draws.as_of == "2024-05-16"
    assert draws.dates == tuple(d.date().isoformat() for d in dates)
    assert draws.draws.shape == (6, 2, 4)
    assert draws.median("south", "2024-05-20") == float(np.median(counts[:, :, 1, 3]))


def test_replay_with_known_changes_reports_delays(tmp_path, events, capsys):
    known = tmp_path / "known.csv"
    known.write_text(
        "date,front,label,source,direction\n"
        f"{day(60).isoformat()},north,surge,test,up\n"
        f"{day(80).isoformat()},south,lull,test,down\n"
        f"{day(70).isoformat()},east,window front,test,\n"
        f"{day(70).isoformat()},west,no such front,test,\n",
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    code, out = cli(
        "--events",
        str(events),
        "--replay",
        day(40).isoformat(),
        day(99).isoformat(),
        "--known-changes",
        str(known),
        "--report",
        str(report),
    )
    assert code == EXIT_OK
    err = capsys.readouterr().err
    assert "detected" in err and "false alarms" in err and "not evaluable" in err
    evaluation = json.loads(report.read_text(encoding="utf-8"))["evaluation"]
    delays = {d["front"]: d["delay_days"] for d in evaluation["detections"]}
    assert 0 <= delays["north"] <= 5 and 0 <= delays["south"] <= 7
    assert [d["front"] for d in evaluation["not_evaluable"]] == ["west"]
    assert "east" in evaluation["false_alarms"]  # window fronts are evaluated too


def test_replay_over_the_shipped_data_finds_the_truce_and_the_lull():
    known = load_known_changes(REPO / "data" / "known_changes.csv")
    result = replay_alerts(AlertRequest(), date(2023, 10, 7), date(2024, 5, 16), known_changes=known)
    assert result.evaluation is not None
    detected = {(d["front"], d["date"]): d for d in result.evaluation.detections}
    truce_start = detected[("gaza", "2023-11-24")]
    assert truce_start["detected"] and truce_start["delay_days"] <= 3
    assert detected[("lebanon_rockets", "2023-11-24")]["delay_days"] <= 4
    truce_end = detected[("gaza", "2023-12-01")]
    assert truce_end["detected"] and truce_end["delay_days"] <= 1
    # The February 2024 lull of attacks on US forces is on iraq_syria, observed through window
    # totals only: the window 2024-02-05..2024-02-20 (no attack) raises it, known on its last day.
    lull = detected[("iraq_syria", "2024-02-05")]
    assert lull["detected"] and lull["alert_date"] == "2024-02-20" and lull["delay_days"] == 15
    assert result.evaluation.not_evaluable == ()
    # The daily fronts show a lull on the Gaza front then.
    feb = [a for a in result.alerts if "2024-01-28" <= a["date"] <= "2024-02-10" and a["direction"] == "down"]
    assert feb, "a lull on a daily front around the start of February 2024"
    assert result.evaluation.false_alarms_per_90_days["all"] < 5
