"""``forecast alert`` in real processes: a run killed midway, two runs at once, a lock held too long."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from forecast.jobs.alert import EXIT_ERROR
from tests.test_alert_job import REPO, day, write_events


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return write_events(tmp_path / "events.csv")


def table(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


# --------------------------------------------------------------------------------------------
# Crashes and concurrent runs (real processes)

PATCHED_RUN = """
import os, sys, time
import forecast.jobs.alert_state as state
stage = os.environ["PAUSE_AT"]
marker = os.environ["PAUSE_MARKER"]
pause = float(os.environ.get("PAUSE_SECONDS", "60"))

def pause_here():
    if os.path.exists(marker):  # pause once
        return
    open(marker, "w").close()
    time.sleep(pause)

if stage == "before_commit":
    original = state.AlertStore.commit
    def commit(self):
        if self.connection.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]:
            pause_here()
        original(self)
    state.AlertStore.commit = commit
elif stage == "before_delivery":
    import forecast.jobs.alert as job
    original = job._deliver
    def deliver(*args, **kwargs):
        pause_here()
        original(*args, **kwargs)
    job._deliver = deliver
elif stage == "after_send":
    original = state.AlertStore.mark_delivered
    def mark_delivered(self, *args):
        pause_here()
        original(self, *args)
    state.AlertStore.mark_delivered = mark_delivered
from forecast.cli_alert import main
raise SystemExit(main(sys.argv[1:]))
"""


def start_run(tmp_path: Path, args: list[str], *, stage: str = "none", pause: float = 60.0) -> subprocess.Popen:
    env = {
        **os.environ,
        "PAUSE_AT": stage,
        "PAUSE_MARKER": str(tmp_path / f"paused-{stage}"),
        "PAUSE_SECONDS": str(pause),
    }
    return subprocess.Popen(
        [sys.executable, "-c", PATCHED_RUN, "-q", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str, str]:
    """Wait for a run; its exit code, standard output and standard error."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {finish(process)}")
        if time.monotonic() > deadline:
            process.kill()
            finish(process)
            raise AssertionError("the run never reached the pause")
        time.sleep(0.02)


def job_args(tmp_path: Path, events: Path, as_of: date) -> list[str]:
    return [
        "--events",
        str(events),
        "--state",
        str(tmp_path / "s.sqlite"),
        "--as-of",
        as_of.isoformat(),
        "--since",
        day(50).isoformat(),
        "--notify",
        f"file:{tmp_path / 'alerts.jsonl'}",
        "--lock-timeout",
        "30",
    ]


def delivered_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.mark.parametrize("stage", ["before_commit", "before_delivery", "after_send"])
def test_a_run_killed_midway_loses_and_duplicates_nothing(tmp_path, events, stage):
    args = job_args(tmp_path, events, day(75))
    victim = start_run(tmp_path, args, stage=stage)
    wait_for(tmp_path / f"paused-{stage}", victim)
    victim.send_signal(signal.SIGKILL)
    assert finish(victim, 10)[0] == -signal.SIGKILL
    if stage == "before_commit":  # the transaction never committed: the state is as before (empty)
        tables = table(tmp_path / "s.sqlite", "SELECT name FROM sqlite_master WHERE name = 'runs'")
        assert tables == [] or table(tmp_path / "s.sqlite", "SELECT COUNT(*) FROM runs") == [(0,)]
        assert delivered_lines(tmp_path) == []
    code, _, err = finish(start_run(tmp_path, args))
    assert code == 0, err
    lines = delivered_lines(tmp_path)
    ids = [line["id"] for line in lines]
    assert ids and len(ids) == len(set(ids))
    issued = {row[0] for row in table(tmp_path / "s.sqlite", "SELECT id FROM alerts WHERE status = 'issued'")}
    assert set(ids) == issued
    assert table(tmp_path / "s.sqlite", "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL") == [(0,)]
    assert table(tmp_path / "s.sqlite", "PRAGMA integrity_check") == [("ok",)]
    # and one more run changes nothing
    assert finish(start_run(tmp_path, args))[0] == 0
    assert [line["id"] for line in delivered_lines(tmp_path)] == ids


def test_two_runs_at_once_are_serialised(tmp_path, events):
    args = job_args(tmp_path, events, day(75))
    first = start_run(tmp_path, args, stage="before_commit", pause=3)
    wait_for(tmp_path / "paused-before_commit", first)
    second = start_run(tmp_path, args)  # waits for the first run's lock
    code, _, err = finish(first)
    assert code == 0, err
    code, _, err = finish(second)
    assert code == 0, err
    ids = [line["id"] for line in delivered_lines(tmp_path)]
    assert ids and len(ids) == len(set(ids))
    runs = table(tmp_path / "s.sqlite", "SELECT new_observations, alerts_issued FROM runs ORDER BY id")
    assert len(runs) == 2 and runs[1] == (0, 0)
    assert table(tmp_path / "s.sqlite", "PRAGMA integrity_check") == [("ok",)]


def test_a_run_that_cannot_get_the_lock_fails_cleanly(tmp_path, events):
    args = job_args(tmp_path, events, day(75))
    holder = start_run(tmp_path, args, stage="before_commit", pause=2.5)
    wait_for(tmp_path / "paused-before_commit", holder)
    impatient = start_run(tmp_path, [*args[:-2], "--lock-timeout", "0.2"])
    code, _, err = finish(impatient, 30)
    assert code == EXIT_ERROR
    assert "locked by another run" in err
    assert finish(holder)[0] == 0
