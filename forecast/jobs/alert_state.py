"""The state of ``forecast alert``: one SQLite file (standard library), changed in transactions.

The schema, and how the file is created, are :mod:`forecast.jobs.alert_schema`.

Concurrency and crashes
-----------------------
Every run does its work in one ``BEGIN IMMEDIATE`` transaction: the first writer takes
SQLite's reserved lock, a second run waits for it (up to ``lock_timeout`` seconds, then fails
with :class:`~forecast.errors.StateLockedError`), and a run killed at any point leaves the file as it was
before the transaction or after its commit (SQLite's journal).  Each notification is sent
**outside** the state's write lock: under the delivery lock (an OS file lock on
``<state>.deliver.lock``, so deliveries of two runs never overlap and a killed run releases
it), the run claims the undelivered rows in one short transaction, sends each (bounded by
its whole-send deadline), and marks it delivered or failed in another short transaction; a
slow receiver never keeps another run from updating the state.  A run killed between a send
and that commit sends the row again next time (at least once): the alert ``id`` is the
idempotency key (webhook ``Idempotency-Key`` header, e-mail ``Message-ID``; the file notifier
skips an id it already wrote).

Timestamps (``started_at``, ``delivered_at``) come from SQLite's ``strftime('now')`` in UTC:
they are for the record and never enter a computation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import ForecastError, StateLockedError
from forecast.jobs.alert_schema import (
    KIND_MONTH,
    KIND_RUN,
    NOW,
    PAGE_SIZE,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    STATUS_HISTORY,
    STATUS_ISSUED,
    STATUS_WITHDRAWN,
    create_private,
    delivery_lock,
)

__all__ = [
    "KIND_MONTH",
    "KIND_RUN",
    "STATUS_HISTORY",
    "STATUS_ISSUED",
    "STATUS_WITHDRAWN",
    "AlertStore",
    "OutboxRow",
    "SavedFrontState",
    "SCHEMA_VERSION",
    "create_private",
    "delivery_lock",
    "read_known_starts",
]

#: How many end-of-run states to keep per front, besides the month-end checkpoints.
KEEP_RUN_STATES = 7
#: How many month-end checkpoints to keep per front; a revision older than the oldest one
#: recomputes the front from its first day (exact, only slower).
KEEP_MONTH_STATES = 12


@dataclass(frozen=True)
class SavedFrontState:
    """One row of ``front_state``."""

    front: str
    date: str
    kind: str
    n_obs: int
    detector: bytes
    rules: str


class ObservationArrays:
    """A front's stored observations: ISO dates in order and their counts."""

    def __init__(self, dates: np.ndarray, counts: np.ndarray):
        self.dates = dates
        self.counts = counts


@dataclass(frozen=True)
class OutboxRow:
    """An undelivered notification."""

    id: int
    alert_id: str
    destination: str
    attempts: int
    payload: dict[str, Any]


def _int_list(text: str, size: int) -> np.ndarray:
    """``"3,0,12"`` -> int64 array, exactly (numpy's C parser; Python's when it disagrees)."""
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: not deprecated, exact for int64
    if len(values) != size:
        values = np.fromiter(map(int, text.split(",")), dtype=np.int64, count=size)
    return values


def read_known_starts(path: str | Path, *, lock_timeout: float = 60.0) -> dict[str, str]:
    """Front -> first processed day of an existing state file (empty when there is none yet)."""
    if not Path(path).is_file():
        return {}
    with AlertStore(path, lock_timeout=lock_timeout) as store:
        with store.transaction(write=False):
            if store.connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                return {}  # a file no run has committed to yet
            return store.first_observation_dates()


class AlertStore:
    """The SQLite state file of ``forecast alert``.

    Parameters
    ----------
    path : path-like
        The file; created (with its folder) when missing.
    lock_timeout : float
        Seconds to wait for another run's transaction before :class:`StateLockedError`.
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = 60.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)
        self.connection = sqlite3.connect(str(self.path), timeout=lock_timeout, isolation_level=None)
        if self.path.stat().st_size == 0:
            # A new file: pages large enough to hold a detector state inline (with 4 KiB pages each
            # state spills into overflow pages and the file is three times larger).
            self.connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self.connection.execute("PRAGMA foreign_keys = ON")
        self.connection.execute("PRAGMA synchronous = FULL")
        self._in_transaction = False

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------
    # Transactions

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[AlertStore]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

        ``write=False`` begins a deferred transaction instead, for reading only: it does not
        wait for another run's write transaction, only for its commit.

        Raises
        ------
        StateLockedError
            When another run holds the lock for more than ``lock_timeout`` seconds.
        """
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        try:
            self.connection.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise StateLockedError(
                    f"the alert state {self.path} is locked by another run (waited {self.lock_timeout:g} s)"
                ) from error
            raise
        self._in_transaction = True
        try:
            if write:
                self._ensure_schema()
            yield self
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        else:
            self.commit()
        finally:
            self._in_transaction = False

    def commit(self) -> None:
        """Commit the open transaction (a separate method so that tests can stop a run here)."""
        self.connection.execute("COMMIT")

    def _ensure_schema(self) -> None:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version not in (0, SCHEMA_VERSION):
            raise ForecastError(
                f"{self.path}: alert state schema {version} is not supported (expected {SCHEMA_VERSION})"
            )
        for statement in SCHEMA_SQL.split(";"):
            if statement.strip():
                self.connection.execute(statement)
        self.connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        self._check_in_transaction()
        return self.connection.execute(sql, parameters)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._check_in_transaction()
        self.connection.executemany(sql, rows)

    def _check_in_transaction(self) -> None:
        if not self._in_transaction:
            raise RuntimeError("the alert state is changed and read only inside a transaction")

    # ---------------------------------------------------------------------------------------
    # Meta and runs

    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def start_run(self, as_of: str, mode: str, data_hash: str | None) -> int:
        cursor = self._execute("INSERT INTO runs (as_of, mode, data_hash) VALUES (?, ?, ?)", (as_of, mode, data_hash))
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, *, new_observations: int, alerts_issued: int, revisions: int) -> None:
        self._execute(
            f"UPDATE runs SET finished_at = {NOW}, new_observations = ?, alerts_issued = ?, revisions = ? WHERE id = ?",
            (new_observations, alerts_issued, revisions, run_id),
        )

    # ---------------------------------------------------------------------------------------
    # Observations and front state

    def observations(self, front: str) -> dict[str, int]:
        rows = self._execute("SELECT date, count FROM observations WHERE front = ?", (front,))
        return {str(date): int(count) for date, count in rows}

    def replace_observations_after(
        self, front: str, after: str | None, rows: Sequence[tuple[str, int]], run_id: int
    ) -> None:
        """Drop the stored observations of ``front`` after ``after`` (all when None) and store ``rows``."""
        if after is None:
            self._execute("DELETE FROM observations WHERE front = ?", (front,))
        else:
            self._execute("DELETE FROM observations WHERE front = ? AND date > ?", (front, after))
        self._execute_many(
            "INSERT INTO observations (front, date, count, run_id) VALUES (?, ?, ?, ?)",
            [(front, date, int(count), run_id) for date, count in rows],
        )

    def all_observations(self) -> dict[str, ObservationArrays]:
        """Front -> its processed observations as arrays (:class:`ObservationArrays`), dates in order.

        One query for every front, one text row per front (far fewer Python objects than one
        row per observation: a thousand fronts of two years are 730,000 observations).
        """
        rows = self._execute(
            "SELECT front, group_concat(date, ','), group_concat(count, ',') FROM observations GROUP BY front"
        ).fetchall()
        out: dict[str, ObservationArrays] = {}
        for front, dates_text, counts_text in rows:
            dates = np.asarray(dates_text.split(","), dtype="U10")
            counts = _int_list(counts_text, len(dates))
            if len(dates) > 1 and not bool(np.all(dates[1:] > dates[:-1])):
                order = np.argsort(dates, kind="stable")
                dates, counts = dates[order], counts[order]
            out[str(front)] = ObservationArrays(dates, counts)
        return out

    def first_observation_dates(self) -> dict[str, str]:
        """Front -> the first day (ISO) of its processed observations."""
        rows = self._execute("SELECT front, MIN(date) FROM observations GROUP BY front")
        return {str(front): str(day) for front, day in rows}

    def fronts_with_state(self) -> list[str]:
        return [str(row[0]) for row in self._execute("SELECT DISTINCT front FROM front_state ORDER BY front")]

    def latest_state(self, front: str) -> SavedFrontState | None:
        row = self._execute(
            "SELECT front, date, kind, n_obs, detector, rules FROM front_state WHERE front = ? "
            "ORDER BY date DESC LIMIT 1",
            (front,),
        ).fetchone()
        return None if row is None else SavedFrontState(*row)

    def latest_states(self) -> dict[str, SavedFrontState]:
        """Front -> its newest saved state, for every front, in one query."""
        rows = self._execute(
            "SELECT s.front, s.date, s.kind, s.n_obs, s.detector, s.rules FROM front_state AS s "
            "JOIN (SELECT front, MAX(date) AS date FROM front_state GROUP BY front) AS newest "
            "ON s.front = newest.front AND s.date = newest.date"
        )
        return {str(row[0]): SavedFrontState(*row) for row in rows}

    def state_before(self, front: str, date: str) -> SavedFrontState | None:
        """The newest saved state of ``front`` dated before ``date``."""
        row = self._execute(
            "SELECT front, date, kind, n_obs, detector, rules FROM front_state WHERE front = ? AND date < ? "
            "ORDER BY date DESC LIMIT 1",
            (front, date),
        ).fetchone()
        return None if row is None else SavedFrontState(*row)

    def delete_states_from(self, front: str, date: str | None) -> None:
        """Forget the states of ``front`` dated on or after ``date`` (all when None)."""
        if date is None:
            self._execute("DELETE FROM front_state WHERE front = ?", (front,))
        else:
            self._execute("DELETE FROM front_state WHERE front = ? AND date >= ?", (front, date))

    def save_state(self, state: SavedFrontState) -> None:
        self._execute(
            "INSERT INTO front_state (front, date, kind, n_obs, detector, rules) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (front, date) DO UPDATE SET kind = CASE WHEN front_state.kind = 'month' THEN 'month' "
            "ELSE excluded.kind END, n_obs = excluded.n_obs, detector = excluded.detector, rules = excluded.rules",
            (state.front, state.date, state.kind, state.n_obs, sqlite3.Binary(state.detector), state.rules),
        )

    def prune_all_states(self, keep: int = KEEP_RUN_STATES, keep_months: int = KEEP_MONTH_STATES) -> None:
        """:meth:`prune_states` for every front, in two statements."""
        self._execute(
            "DELETE FROM front_state WHERE (front, date) IN (SELECT front, date FROM (SELECT front, date, kind, "
            "ROW_NUMBER() OVER (PARTITION BY front ORDER BY date DESC) AS newest FROM front_state) "
            f"WHERE kind = '{KIND_RUN}' AND newest > ?)",
            (keep,),
        )
        self._execute(
            "DELETE FROM front_state WHERE (front, date) IN (SELECT front, date FROM (SELECT front, date, "
            "ROW_NUMBER() OVER (PARTITION BY front ORDER BY date DESC) AS newest FROM front_state "
            f"WHERE kind = '{KIND_MONTH}') WHERE newest > ?)",
            (keep_months,),
        )

    def prune_states(self, front: str, keep: int = KEEP_RUN_STATES, keep_months: int = KEEP_MONTH_STATES) -> None:
        """Keep the newest ``keep_months`` month-end checkpoints and the newest ``keep`` end-of-run states."""
        self._execute(
            f"DELETE FROM front_state WHERE front = ? AND kind = '{KIND_RUN}' AND date NOT IN "
            f"(SELECT date FROM front_state WHERE front = ? ORDER BY date DESC LIMIT ?)",
            (front, front, keep),
        )
        self._execute(
            f"DELETE FROM front_state WHERE front = ? AND kind = '{KIND_MONTH}' AND date NOT IN "
            f"(SELECT date FROM front_state WHERE front = ? AND kind = '{KIND_MONTH}' ORDER BY date DESC LIMIT ?)",
            (front, front, keep_months),
        )

    # ---------------------------------------------------------------------------------------
    # Alerts and the outbox

    def alerts_of(self, front: str, from_date: str | None = None) -> dict[str, str]:
        """Id -> status of the alerts of ``front`` dated on or after ``from_date``."""
        if from_date is None:
            rows = self._execute("SELECT id, status FROM alerts WHERE front = ?", (front,))
        else:
            rows = self._execute("SELECT id, status FROM alerts WHERE front = ? AND date >= ?", (front, from_date))
        return {str(i): str(s) for i, s in rows}

    def insert_alert(self, payload: dict[str, Any], status: str, run_id: int) -> None:
        self._execute(
            "INSERT INTO alerts (id, front, date, rule, direction, probability, as_of, payload, status, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                payload["id"],
                payload["front"],
                payload["date"],
                payload["rule"],
                payload["direction"],
                payload["probability"],
                payload["as_of"],
                json.dumps(payload, separators=(", ", ": ")),
                status,
                run_id,
            ),
        )

    def reinstate_alert(self, alert_id: str) -> None:
        self._execute(
            f"UPDATE alerts SET status = '{STATUS_ISSUED}', withdrawn_run_id = NULL WHERE id = ?", (alert_id,)
        )

    def withdraw_alerts(self, ids: Sequence[str], run_id: int) -> None:
        self._execute_many(
            f"UPDATE alerts SET status = '{STATUS_WITHDRAWN}', withdrawn_run_id = ? WHERE id = ?",
            [(run_id, alert_id) for alert_id in ids],
        )

    def alert_payload(self, alert_id: str) -> dict[str, Any]:
        row = self._execute("SELECT payload FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return dict(json.loads(row[0]))

    def enqueue(self, alert_id: str, destination: str, run_id: int) -> None:
        self._execute(
            "INSERT OR IGNORE INTO outbox (alert_id, destination, run_id) VALUES (?, ?, ?)",
            (alert_id, destination, run_id),
        )

    def pending(self, destination: str) -> list[OutboxRow]:
        """Every undelivered notification for ``destination``, oldest first (the claim of a delivery)."""
        rows = self._execute(
            "SELECT outbox.id, alert_id, destination, attempts, alerts.payload FROM outbox "
            "JOIN alerts ON alerts.id = outbox.alert_id "
            "WHERE destination = ? AND delivered_at IS NULL ORDER BY outbox.id",
            (destination,),
        ).fetchall()
        return [
            OutboxRow(
                id=int(r[0]), alert_id=str(r[1]), destination=str(r[2]), attempts=int(r[3]), payload=json.loads(r[4])
            )
            for r in rows
        ]

    def is_delivered(self, outbox_id: int) -> bool:
        row = self._execute("SELECT delivered_at FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
        return row is None or row[0] is not None

    def next_pending(self, destination: str) -> OutboxRow | None:
        """The oldest undelivered notification for ``destination``."""
        row = self._execute(
            "SELECT outbox.id, alert_id, destination, attempts, alerts.payload FROM outbox "
            "JOIN alerts ON alerts.id = outbox.alert_id "
            "WHERE destination = ? AND delivered_at IS NULL ORDER BY outbox.id LIMIT 1",
            (destination,),
        ).fetchone()
        if row is None:
            return None
        return OutboxRow(
            id=int(row[0]),
            alert_id=str(row[1]),
            destination=str(row[2]),
            attempts=int(row[3]),
            payload=dict(json.loads(row[4])),
        )

    def mark_delivered(self, outbox_id: int, run_id: int) -> None:
        self._execute(
            f"UPDATE outbox SET delivered_at = {NOW}, delivered_run_id = ?, attempts = attempts + 1, last_error = NULL "
            "WHERE id = ?",
            (run_id, outbox_id),
        )

    def mark_failed(self, outbox_id: int, error: str) -> None:
        self._execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error[:500], outbox_id)
        )

    def pending_counts(self) -> dict[str, int]:
        rows = self._execute("SELECT destination, COUNT(*) FROM outbox WHERE delivered_at IS NULL GROUP BY destination")
        return {str(d): int(c) for d, c in rows}

    def record_revision(
        self,
        run_id: int,
        front: str,
        first_changed: str,
        rows_changed: int,
        withdrawn: int,
        added: int,
        detail: dict[str, Any],
    ) -> None:
        self._execute(
            "INSERT INTO revisions (run_id, front, first_changed, rows_changed, alerts_withdrawn, alerts_added, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, front, first_changed, rows_changed, withdrawn, added, json.dumps(detail)),
        )
