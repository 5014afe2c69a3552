"""Declared gaps (``precision = not_observed``) in ``forecast alert``: no observation, no alert.

A day of a declared gap is neither a zero nor an observation: the daily detector takes no
step on it (run lengths, ``warmup`` and ``within_last`` count observations), no alert is dated
on it, window totals are unaffected, and a gap declared later over days processed as zeros is
a revision.  Every file is made in the test.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sqlite3
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from forecast.alerts.bocpd import DetectorConfig, DetectorState, update
from forecast.cli_alert import add_alert_parser, run_alert_command
from forecast.jobs.alert import (
    EXIT_OK,
    AlertRequest,
    load_daily_series,
    replay_alerts,
    run_alert_job,
)
from forecast.jobs.alert_state import AlertStore

START = date(2024, 1, 1)
DAYS = 150
GAP = (60, 89)  # north not observed on days 60..89 (30 days)


def day(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


def steady(t: int) -> int:
    """North's steady counts: 5, 6, 7, 5, 6, 7, ..."""
    return 5 + t % 3


def write_events(
    path: Path,
    *,
    gap: str = "declared",
    north=steady,
    gap_days: tuple[int, int] = GAP,
    days: int = DAYS,
) -> Path:
    """North (steady unless ``north`` says otherwise) and south (steady, 8 or 9 a day).

    ``gap``: ``declared`` (a ``not_observed`` row over ``gap_days``, no counts there), ``zeros``
    (the same days as explicit zeros, no declaration) or ``none`` (north's counts go on).
    """
    first, last = gap_days
    lines = ["date,end_date,front,count,precision"]
    for t in range(days):
        lines.append(f"{day(t)},,south,{8 + t % 2},")
        if first <= t <= last and gap != "none":
            if gap == "zeros":
                lines.append(f"{day(t)},,north,0,")
            continue
        lines.append(f"{day(t)},,north,{north(t)},")
    if gap == "declared":
        lines.append(f"{day(first)},{day(last)},north,,not_observed")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_job(state: Path, events: Path, as_of: int, since: int | None = None):
    out = io.StringIO()
    request = AlertRequest(
        state=state,
        events=(events,),
        notify=("stdout",),
        as_of=date.fromisoformat(day(as_of)),
        since=None if since is None else date.fromisoformat(day(since)),
        lock_timeout=20.0,
    )
    result = run_alert_job(request, stdout=out)
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


def replay(events: Path, first: int, last: int, rules: Path | None = None) -> list[dict]:
    request = AlertRequest(events=(events,), rules=rules)
    return replay_alerts(request, date.fromisoformat(day(first)), date.fromisoformat(day(last))).alerts


def cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="forecast")
    add_alert_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = run_alert_command(parser.parse_args(["alert", *argv]), stdout=out)
    return code, out.getvalue()


def table(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


def saved_state(path: Path, front: str) -> DetectorState:
    """The detector state the job saved for ``front`` after its last processed day."""
    with AlertStore(path, lock_timeout=5.0) as store, store.transaction(write=False):
        saved = store.latest_states()[front]
    return DetectorState.from_front_bytes([saved.detector], DetectorConfig())


def summary(alerts: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(a["front"], a["date"], a["direction"], a["rule"]) for a in alerts]


# --------------------------------------------------------------------------------------------


def test_a_declared_gap_raises_nothing_where_the_same_days_as_zeros_raise_a_lull(tmp_path, caplog):
    declared = write_events(tmp_path / "declared.csv", gap="declared")
    zeros = write_events(tmp_path / "zeros.csv", gap="zeros")
    series = load_daily_series([declared])
    north = series.fronts.index("north")
    assert np.isnan(series.counts[north, GAP[0] : GAP[1] + 1]).all()  # not zeros, not observed
    assert int(series.gaps[north].sum()) == 30 and not series.gaps[series.fronts.index("south")].any()
    # The same counts read as zeros: a lull on the third zero, and the resumption.
    assert summary(replay(zeros, 0, DAYS - 1)) == [
        ("north", day(62), "down", "changepoint"),
        ("north", day(90), "up", "changepoint"),
    ]
    assert replay(declared, 0, DAYS - 1) == []
    # A scheduled first run notifying from the start says the same, and logs the skipped days.
    caplog.set_level(logging.INFO, logger="forecast")
    result, lines = run_job(tmp_path / "declared.sqlite", declared, DAYS - 1, since=0)
    assert lines == [] and result.issued == []
    assert result.gap_days == {"north": 30}
    assert "front 'north': 30 declared gap day(s) (not_observed) skipped" in caplog.text
    _, lines = run_job(tmp_path / "zeros.sqlite", zeros, DAYS - 1, since=0)
    assert [(a["date"], a["direction"]) for a in lines] == [(day(62), "down"), (day(90), "up")]
    # Gap days are not stored as observations; south is untouched.
    stored = dict(table(tmp_path / "declared.sqlite", "SELECT front, COUNT(*) FROM observations GROUP BY front"))
    assert stored == {"north": DAYS - 30, "south": DAYS}


def test_the_run_length_after_a_gap_is_the_one_before_plus_the_observed_days(tmp_path):
    declared = write_events(tmp_path / "declared.csv")
    before, during, after = tmp_path / "before.sqlite", tmp_path / "during.sqlite", tmp_path / "after.sqlite"
    run_job(before, declared, GAP[0] - 1)  # up to the last day before the gap
    run_job(during, declared, GAP[1])  # up to the gap's last day
    run_job(after, declared, DAYS - 1)
    at_start, at_end, last = (saved_state(path, "north") for path in (before, during, after))
    assert at_start.n_obs[0] == 60 and int(np.argmax(at_start.probs[0])) == 60
    # Thirty gap days advance nothing: the state is the one before the gap, bit for bit.
    np.testing.assert_array_equal(at_end.probs, at_start.probs)
    np.testing.assert_array_equal(at_end.sums, at_start.sums)
    assert at_end.n_obs[0] == 60
    # After the 60 observed days that follow: 60 + 60, not 60 + 30 + 60.
    assert last.n_obs[0] == 120 and int(np.argmax(last.probs[0])) == 120
    # Exactly the state of the observed counts run back to back, the gap cut out.
    observed = np.array([steady(t) for t in range(DAYS) if not GAP[0] <= t <= GAP[1]], dtype=float)
    config = DetectorConfig()
    direct = DetectorState.initial(1, config)
    update(config, direct, observed[None, :])
    np.testing.assert_array_equal(last.probs, direct.probs)
    np.testing.assert_array_equal(last.sums, direct.sums)
    # South, observed every day, took 150 steps.
    assert saved_state(after, "south").n_obs[0] == DAYS


def test_warmup_counts_observations_not_the_days_of_a_gap(tmp_path):
    # 10 observed days, a 40-day gap, 10 more, then a surge to 30 a day from day 60 (the 21st
    # observation).  Counted in days the front would be past its warmup (28) when the surge is
    # found; in observations it is not, and by its 29th observation the surge is more than
    # within_last (7) observations old.
    def surge(t: int) -> int:
        return 30 if t >= 60 else steady(t)

    declared = write_events(tmp_path / "declared.csv", north=surge, gap_days=(10, 49), days=100)
    observed = write_events(tmp_path / "observed.csv", north=surge, gap="none", days=100)
    assert replay(declared, 0, 99) == []
    assert summary(replay(observed, 0, 99)) == [("north", day(61), "up", "changepoint")]
    # With the gap the surge is found on day 62, the 23rd observation: a warmup of 22 lets it
    # through there, and each more observation of warmup delays the alert by one observed day.
    rules = tmp_path / "rules.yaml"
    rules.write_text("changepoint: {warmup: 22}\n", encoding="utf-8")
    assert summary(replay(declared, 0, 99, rules)) == [("north", day(62), "up", "changepoint")]
    rules.write_text("changepoint: {warmup: 23}\n", encoding="utf-8")
    assert summary(replay(declared, 0, 99, rules)) == [("north", day(63), "up", "changepoint")]


def test_an_alert_after_a_gap_is_dated_on_an_observation_and_replay_equals_scheduled_runs(tmp_path):
    # North resumes after its gap at 20 a day: the new regime starts on the first observed day.
    def resumes_higher(t: int) -> int:
        return 20 if t > GAP[1] else steady(t)

    events = write_events(tmp_path / "events.csv", north=resumes_higher, days=110)
    state = tmp_path / "s.sqlite"
    scheduled: list[str] = []
    for t in range(55, 101):  # daily runs through the gap (as_of inside it cuts it there)
        code, out = cli("--events", str(events), "--state", str(state), "--as-of", day(t))
        assert code == EXIT_OK
        scheduled += out.splitlines()
    code, replayed = cli("--events", str(events), "--replay", day(55), day(100))
    assert code == EXIT_OK and replayed.splitlines() == scheduled
    alerts = [json.loads(line) for line in scheduled]
    assert summary(alerts) == [("north", day(94), "up", "changepoint")]
    # The regime starts on the first observed day after the gap, and its baseline is the 28
    # observations before it (days 32..59), not 28 days of which 30 were gap days.
    assert alerts[0]["regime_start"] == day(90) and alerts[0]["rate_after"] == 20.0
    assert alerts[0]["rate_before"] == round(sum(steady(t) for t in range(32, 60)) / 28, 3)
    # No run saw a revision, and the gap days were never stored.
    assert table(state, "SELECT COUNT(*) FROM revisions") == [(0,)]
    stored = table(state, f"SELECT COUNT(*) FROM observations WHERE front = 'north' AND date >= '{day(GAP[0])}'")
    assert stored == [(101 - 90,)]
    # Re-running the last day changes nothing.
    code, out = cli("--events", str(events), "--state", str(state), "--as-of", day(100))
    assert code == EXIT_OK and out == ""


def test_a_gap_running_past_as_of_is_cut_there_and_never_read_as_zeros(tmp_path, caplog):
    declared = write_events(tmp_path / "declared.csv")
    caplog.set_level(logging.INFO, logger="forecast")
    series = load_daily_series([declared], as_of=date.fromisoformat(day(75)))
    north = series.fronts.index("north")
    assert series.end == day(75)  # south's data reach as_of
    assert np.isnan(series.counts[north, GAP[0] :]).all() and series.gaps[north, GAP[0] :].all()
    # The gap row is no mistyped date: only the event rows after as_of are reported (from day 90).
    assert "excluded" in caplog.text and day(GAP[0]) not in caplog.text
    result, lines = run_job(tmp_path / "s.sqlite", declared, 75, since=0)
    assert lines == [] and result.gap_days == {"north": 16}
    # The next run (the gap known to its end) sees no revision: days 60..75 were never observations.
    result, lines = run_job(tmp_path / "s.sqlite", declared, DAYS - 1)
    assert result.revisions == [] and lines == [] and result.gap_days == {"north": 14}


def test_a_gap_declared_later_over_days_processed_as_zeros_is_a_revision(tmp_path, caplog):
    state = tmp_path / "s.sqlite"
    zeros = write_events(tmp_path / "zeros.csv", gap="zeros")
    declared = write_events(tmp_path / "declared.csv", gap="declared")
    _, lines = run_job(state, zeros, DAYS - 1, since=0)
    lull = [a["id"] for a in lines]
    assert len(lull) == 2  # the lull and the resumption
    caplog.set_level(logging.WARNING, logger="forecast")
    result, lines = run_job(state, declared, DAYS - 1)
    assert lines == [] and result.issued == []
    assert result.revisions == [
        {
            "front": "north",
            "first_changed": day(GAP[0]),
            "rows_changed": 30,
            "alerts_withdrawn": 2,
            "alerts_added": 0,
        }
    ]
    assert sorted(result.withdrawn) == sorted(lull)
    assert "30 of them now in a declared gap" in caplog.text and "0 -> not observed" in caplog.text
    assert table(state, "SELECT DISTINCT status FROM alerts") == [("withdrawn",)]
    # The revised state equals a fresh run's on the declared data, and a re-run does nothing.
    fresh = tmp_path / "fresh.sqlite"
    run_job(fresh, declared, DAYS - 1)
    np.testing.assert_array_equal(saved_state(state, "north").probs, saved_state(fresh, "north").probs)
    again, lines = run_job(state, declared, DAYS - 1)
    assert again.revisions == [] and again.new_observations == 0 and lines == []


def test_window_totals_are_unaffected_by_a_declared_gap(tmp_path):
    # east is observed through 10-day totals only; a gap between two of its windows changes nothing.
    rows = ["date,end_date,front,count,precision"]
    rows += [f"{day(t)},,north,{steady(t)}," for t in range(100)]
    totals = [30, 28, 33, 0, 0, 31, 29, 30, 0, 0]
    for w, total in enumerate(totals):
        if w not in (3, 4):  # days 30..49 not reported
            rows.append(f"{day(10 * w)},{day(10 * w + 9)},east,{total},")
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(rows) + "\n", encoding="utf-8")
    declared = tmp_path / "declared.csv"
    declared.write_text("\n".join([*rows, f"{day(30)},{day(49)},east,,not_observed"]) + "\n", encoding="utf-8")
    with_gap, without = load_daily_series([declared]), load_daily_series([plain])
    assert with_gap.window_fronts == without.window_fronts == ("east",)
    (a,), (b,) = with_gap.windows, without.windows
    assert (a.starts, a.ends, a.counts.tolist(), a.days.tolist()) == (
        b.starts,
        b.ends,
        b.counts.tolist(),
        b.days.tolist(),
    )
    assert replay(declared, 0, 99) == replay(plain, 0, 99)
    assert summary(replay(plain, 0, 99)) == [("east", day(89), "down", "changepoint")]


def test_the_surprise_rule_skips_gap_days(tmp_path):
    # Draws that put north near 6 a day over the gap and the days after it: a zero is a surprise.
    from forecast.jobs.alert import DRAWS_FILE

    fit = tmp_path / "fit"
    fit.mkdir()
    dates = [day(t) for t in range(GAP[0], GAP[1] + 11)]
    draws = np.random.default_rng(1).poisson(6, size=(400, 1, len(dates))).astype(np.int64)
    np.savez(fit / DRAWS_FILE, fronts=np.array(["north"]), dates=np.array(dates), draws=draws, as_of=np.array(day(59)))
    changepoint_off = tmp_path / "rules.yaml"
    changepoint_off.write_text("changepoint: {enabled: false}\ncooldown_days: 0\n", encoding="utf-8")
    results = {}
    for gap in ("declared", "zeros"):
        events = write_events(tmp_path / f"{gap}.csv", gap=gap)
        out = io.StringIO()
        request = AlertRequest(
            state=tmp_path / f"{gap}.sqlite",
            events=(events,),
            as_of=date.fromisoformat(day(DAYS - 1)),
            since=START,
            fit=fit,
            rules=changepoint_off,
        )
        run_alert_job(request, stdout=out)
        results[gap] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert results["declared"] == []
    # Read as zeros, every gap day is a surprise lull (P(Y <= 0) under ~6 a day is tiny).
    assert [(a["date"], a["direction"], a["rule"]) for a in results["zeros"]] == [
        (day(t), "down", "surprise") for t in range(GAP[0], GAP[1] + 1)
    ]
