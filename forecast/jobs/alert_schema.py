"""The files behind the state of ``forecast alert``: the SQLite schema, its creation, the delivery lock.

Schema (``PRAGMA user_version = 1``)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        config_hash: sha256 of the detector and rules in force when the state was written.
    runs(id, as_of, mode, started_at, finished_at, data_hash, new_observations,
         alerts_issued, revisions)
        One row per run that committed.
    observations(front, date, count, run_id)            PRIMARY KEY (front, date)
        Every daily count the detector has processed: the version of the data that the saved
        detector state stands for.  A later input whose count differs on a stored (front, date),
        or that adds or drops a day already processed, is a revision.
    front_state(front, date, kind, n_obs, detector BLOB, rules TEXT)   PRIMARY KEY (front, date)
        Detector state (run-length distribution and window sums, float64/int64 bytes, exact)
        and rule state (JSON) after processing every observation up to ``date``.  ``kind`` is
        ``month`` (the last day of a month; the newest 12 are kept) or ``run`` (the end of a
        run; the newest few are kept).  The detector state is stored byte-shuffled and
        deflated (:meth:`forecast.alerts.bocpd.DetectorState.front_bytes`); a new file uses
        32 KiB pages so that each state is stored inline.  The newest row is the current
        state; older rows are the checkpoints a revision restarts from.
    alerts(id PRIMARY KEY, front, date, rule, direction, probability, as_of, payload,
           status, run_id, withdrawn_run_id)
        ``id`` is sha256 of ``front|rule|date|direction``, so re-running never duplicates an
        alert.  ``status``: ``issued`` (notified), ``history`` (found in the history processed
        by a first run, before ``--since``; recorded, not notified) or ``withdrawn`` (no longer
        supported after a data revision).
    outbox(id, alert_id, destination, run_id, attempts, last_error, delivered_at,
           delivered_run_id)                              UNIQUE (alert_id, destination)
        One row per alert and destination; ``delivered_at`` stays NULL until the destination
        accepted it.  Failed rows are retried on the next run that names the destination.
    revisions(id, run_id, front, first_changed, rows_changed, alerts_withdrawn,
              alerts_added, detail)
        What each data revision changed.

The store that reads and changes it is :class:`forecast.jobs.alert_state.AlertStore`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "KIND_MONTH",
    "KIND_RUN",
    "NOW",
    "PAGE_SIZE",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "STATUS_HISTORY",
    "STATUS_ISSUED",
    "STATUS_WITHDRAWN",
    "create_private",
    "delivery_lock",
]

SCHEMA_VERSION = 1
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
#: Page size of a new state file.
PAGE_SIZE = 32768

STATUS_ISSUED = "issued"
STATUS_HISTORY = "history"
STATUS_WITHDRAWN = "withdrawn"
KIND_MONTH = "month"
KIND_RUN = "run"

SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    as_of TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT ({NOW}),
    finished_at TEXT,
    data_hash TEXT,
    new_observations INTEGER NOT NULL DEFAULT 0,
    alerts_issued INTEGER NOT NULL DEFAULT 0,
    revisions INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS observations (
    front TEXT NOT NULL,
    date TEXT NOT NULL,
    count INTEGER NOT NULL CHECK (count >= 0),
    run_id INTEGER NOT NULL,
    PRIMARY KEY (front, date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS front_state (
    front TEXT NOT NULL,
    date TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('{KIND_MONTH}', '{KIND_RUN}')),
    n_obs INTEGER NOT NULL,
    detector BLOB NOT NULL,
    rules TEXT NOT NULL,
    PRIMARY KEY (front, date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    front TEXT NOT NULL,
    date TEXT NOT NULL,
    rule TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
    probability REAL NOT NULL,
    as_of TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('{STATUS_ISSUED}', '{STATUS_HISTORY}', '{STATUS_WITHDRAWN}')),
    run_id INTEGER NOT NULL,
    withdrawn_run_id INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_by_front_date ON alerts (front, date);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    destination TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    delivered_run_id INTEGER,
    UNIQUE (alert_id, destination)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, delivered_at, id);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    front TEXT NOT NULL,
    first_changed TEXT NOT NULL,
    rows_changed INTEGER NOT NULL,
    alerts_withdrawn INTEGER NOT NULL,
    alerts_added INTEGER NOT NULL,
    detail TEXT NOT NULL
);
"""


def create_private(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only (0600) unless it exists.

    The state holds webhook URLs with their tokens; SQLite gives its journal the same mode.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


@contextmanager
def delivery_lock(state: str | Path, timeout: float) -> Iterator[bool]:
    """Hold the delivery lock of a state file (``<state>.deliver.lock``) while sending.

    Yields True when the lock was taken within ``timeout`` seconds, False otherwise.  The lock
    is an OS file lock: a run killed while sending releases it, so the next run sends what it
    left (at least once).  Where ``fcntl`` is missing (Windows), runs are not serialised.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield True
        return
    path = Path(f"{state}.deliver.lock")
    create_private(path)
    with open(path, "r+b") as handle:
        waited_until = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= waited_until:
                    yield False
                    return
                time.sleep(0.05)
                continue
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return
