"""``forecast alert``: scheduled alerting on rate shifts, idempotent and safe to re-run (orchestration).

Each run reads the events (the shipped data by default) and aggregates them to daily counts
(:mod:`forecast.jobs.alert_inputs`, :mod:`forecast.alerts.series`), and, inside one
transaction on the state file (:mod:`forecast.jobs.alert_state`, :mod:`forecast.jobs.alert_run`):

1. compares the counts with the ones already processed; a changed, added or dropped day is a
   **revision**: the detector restarts from the newest checkpoint before the first changed
   day, alerts that no longer hold are withdrawn, new ones are issued, and the run says so;
2. runs the changepoint detector (:mod:`forecast.alerts.bocpd`) over the new days only,
   resuming from the saved state, and, when ``--fit DIR`` holds ``forecast_draws.npz``, scores
   the new counts against the fit's posterior predictive (:mod:`forecast.alerts.surprise`);
3. applies the rules (:mod:`forecast.alerts.rules`) and records each alert under its stable
   id, with one outbox row per destination.

After the commit, the outbox is delivered outside the write lock (:mod:`forecast.jobs.notify`,
each destination isolated from the others, each send bounded by a whole-send deadline); what fails stays
there for the next run.  ``--replay START END`` runs the same steps in memory as if scheduled
on every day from START to END (:mod:`forecast.alerts.replay`) and prints the alert lines the
scheduled runs would print.  The detector and rules over spans of days are
:mod:`forecast.alerts.engine` (no I/O); the command line is :mod:`forecast.cli_alert`.

Fronts observed only through window totals (no daily counts, such as ``iraq_syria``) are run
through the window form of the detector (:func:`forecast.alerts.bocpd_windows.update_windows`:
each window total is scored with its exposure in days), in the order of the windows' end dates;
an alert on a window is dated on its end date, the first day the total is known.  Window
series are short (a few dozen totals), so each run recomputes them from their first window
and records what is new; the observations it stores are keyed by end date.

Declared gaps (``precision = not_observed`` rows: "front not observed from ``date`` to
``end_date``") are neither zeros nor observations: their days are NaN in the daily series, so
the detector takes no step on them (no run-length growth, no hazard), the rules get no signal
(no alert is dated on a gap day, the surprise rule skips it, and ``warmup`` and
``within_last`` count observations only), they are not stored as processed observations, and
the run logs how many gap days each front skipped.  A gap that runs past ``as_of`` is cut
there.  A gap declared later over days already processed as counts removes those days from
the observations: a revision like any other.  Window totals are unaffected.

The first run on a front processes its whole history but notifies only alerts dated on or
after ``--since`` (default: the last day of the data); earlier ones are recorded with status
``history``.

Exit codes (:func:`forecast.cli_alert.run_alert_command`): 0 the run completed, with or
without alerts; 1 an error (bad input, locked state...; nothing was changed); 3 with
``--fail-on-alert``, when an alert fired; 4 the run completed but a notification could not
be delivered (it stays in the outbox and is retried by the next run).  argparse exits 2 on a usage error.

The alert path imports the data layer, numpy, pandas, PyYAML and the standard library: never PyMC.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import TextIO

from forecast import names as n
from forecast.alerts.detector_config import load_detector_config
from forecast.alerts.evaluation import KnownChange
from forecast.alerts.replay import ReplayResult, replay_series
from forecast.alerts.rules import load_rules
from forecast.alerts.series import DailySeries, WindowSeries
from forecast.data.options import SelectOptions
from forecast.errors import ForecastError
from forecast.jobs.alert_inputs import DRAWS_FILE, load_daily_series, load_known_changes, load_predictive_draws
from forecast.jobs.alert_run import (
    EXIT_ALERT,
    EXIT_ERROR,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    AlertRunResult,
    update_state,
)
from forecast.jobs.alert_state import AlertStore, delivery_lock, read_known_starts
from forecast.jobs.notify import Notifier
from forecast.jobs.notify_spec import parse_notify_spec

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_STATE_FILE",
    "DRAWS_FILE",
    "EXIT_ALERT",
    "EXIT_ERROR",
    "EXIT_NOT_DELIVERED",
    "EXIT_OK",
    "AlertRequest",
    "AlertRunResult",
    "DailySeries",
    "WindowSeries",
    "ReplayResult",
    "load_daily_series",
    "load_known_changes",
    "load_predictive_draws",
    "replay_alerts",
    "run_alert_job",
]

DEFAULT_STATE_FILE = "forecast-alert-state.sqlite"


@dataclass(frozen=True)
class AlertRequest:
    """What one ``forecast alert`` run is asked to do.

    Attributes
    ----------
    state : Path
        The SQLite state file.
    events : tuple of Path
        Event files; empty means the shipped data.
    format : str
        Their layout (see :func:`forecast.data.readers.read_events`).
    detector, rules : Path or None
        Detector prior/hazard file and rules file; None uses the code defaults (equal to
        ``priors/alerts/detector.yaml`` and ``priors/alerts/rules.yaml``).
    fit : Path or None
        A folder written by ``forecast fit``; its ``forecast_draws.npz`` enables the surprise rule.
    as_of : date or None
        The run's date: data after it are ignored, and it is each alert's ``as_of``.  None: the
        last day of the data.  (Library code never reads the clock; the command line may pass
        today.)
    since : date or None
        First run on a front: notify alerts dated on or after this day only (default: the last
        day of the data).
    notify : tuple of str
        Destination SPECs (see :mod:`forecast.jobs.notify`).
    lock_timeout, notify_timeout : float
        Seconds to wait for another run's lock (or its delivery), and the deadline of each whole
        send to a webhook or mail server.
    options : SelectOptions
        The reader's row selection and front definition (ACLED and UCDP files).
    """

    state: Path = Path(DEFAULT_STATE_FILE)
    events: tuple[Path, ...] = ()
    format: str = n.FORMAT_AUTO
    detector: Path | None = None
    rules: Path | None = None
    fit: Path | None = None
    as_of: Date | None = None
    since: Date | None = None
    notify: tuple[str, ...] = ("stdout",)
    lock_timeout: float = 60.0
    notify_timeout: float = 10.0
    options: SelectOptions = SelectOptions()

    def event_files(self) -> list[Path]:
        if self.events:
            return list(self.events)
        from forecast.data.shipped import default_event_files

        return default_event_files()


def run_alert_job(request: AlertRequest, *, stdout: TextIO | None = None) -> AlertRunResult:
    """One scheduled run: update the state in one transaction, then deliver the outbox.

    Parameters
    ----------
    request : AlertRequest
    stdout : text stream, optional
        Where the ``stdout`` notifier writes (default ``sys.stdout``).

    Raises
    ------
    ForecastError
        For invalid input or configuration, or a state file locked too long; the state is
        then unchanged.
    """
    notifiers = _notifiers(request.notify, stdout, request.notify_timeout)
    config = load_detector_config(request.detector)
    rules = load_rules(request.rules)
    known_starts = read_known_starts(request.state, lock_timeout=request.lock_timeout)
    series = load_daily_series(
        request.event_files(),
        format=request.format,
        as_of=request.as_of,
        known_starts=known_starts,
        options=request.options,
    )
    draws = load_predictive_draws(request.fit)
    as_of = (request.as_of or Date.fromisoformat(series.end)).isoformat()
    _log_fronts(series)
    with AlertStore(request.state, lock_timeout=request.lock_timeout) as store:
        with store.transaction():
            result = update_state(
                store,
                config,
                rules,
                series,
                draws,
                as_of,
                notifiers,
                requested_as_of=request.as_of,
                since=request.since,
            )
        _deliver(store, notifiers, result, request.lock_timeout)
    log.info(
        "alert run %d as of %s: %d new observation(s), %d alert(s) issued, %d revision(s), %d notification(s) "
        "delivered%s",
        result.run_id,
        as_of,
        result.new_observations,
        len(result.issued),
        len(result.revisions),
        result.delivered,
        f", undelivered: {result.pending}" if result.pending else "",
    )
    return result


def _log_fronts(series: DailySeries) -> None:
    if series.windows:
        log.info(
            "front(s) observed only through window totals, run through the window detector (alerts dated on "
            "window end dates): %s",
            ", ".join(series.window_fronts),
        )
    if series.skipped:
        log.info("front(s) without observations up to the end of the data, skipped: %s", ", ".join(series.skipped))


def _notifiers(specs: Sequence[str], stdout: TextIO | None, timeout: float) -> list[Notifier]:
    notifiers: list[Notifier] = []
    for spec in specs:
        notifier = parse_notify_spec(spec, stdout=stdout, timeout=timeout)
        if notifier.key not in {existing.key for existing in notifiers}:
            notifiers.append(notifier)
    return notifiers


def _deliver(
    store: AlertStore, notifiers: Sequence[Notifier], result: AlertRunResult, lock_timeout: float = 60.0
) -> None:
    """Send what the outbox holds for these destinations, oldest first, outside the write lock.

    Under the delivery lock (:func:`forecast.jobs.alert_state.delivery_lock`), each destination's
    undelivered rows are claimed in one short transaction, sent one by one, and each is marked
    delivered or failed in its own short transaction.  Destinations are isolated: anything a
    destination raises (a refused connection, a deadline, or an unexpected error) becomes that
    destination's undelivered rows (exit 4), logged without traceback or secret, and the
    others are still delivered.  A destination that fails is not tried again in this run (its
    later rows stay queued too, in order).
    """
    with delivery_lock(store.path, lock_timeout) as held:
        if not held:
            log.error(
                "another run has been delivering for over %g s: this run's notifications stay queued for the next run",
                lock_timeout,
            )
            result.failed_destinations.extend(notifier.describe() for notifier in notifiers)
        else:
            for notifier in notifiers:
                with store.transaction():
                    claimed = store.pending(notifier.key)
                for row in claimed:
                    try:
                        notifier.send(row.payload)
                    except Exception as error:  # noqa: BLE001 - isolate each destination; logged, kept queued
                        message = notifier.failure(error)
                        with store.transaction():
                            store.mark_failed(row.id, message)
                        log.error(
                            "notification %s to %s failed (attempt %d, kept for the next run): %s",
                            row.alert_id[:12],
                            notifier.describe(),
                            row.attempts + 1,
                            message,
                        )
                        result.failed_destinations.append(notifier.describe())
                        break
                    with store.transaction():
                        store.mark_delivered(row.id, result.run_id)
                    result.delivered += 1
    with store.transaction(write=False):
        pending = store.pending_counts()
    named = {notifier.key: notifier.describe() for notifier in notifiers}
    result.pending = {named.get(key, "other"): count for key, count in pending.items() if key in named}
    others = sum(count for key, count in pending.items() if key not in named)
    if others:
        log.warning("%d undelivered notification(s) for destinations not named in this run stay in the outbox", others)


def replay_alerts(
    request: AlertRequest,
    start: Date,
    end: Date,
    *,
    known_changes: Sequence[KnownChange] | None = None,
    match_days: int = 14,
) -> ReplayResult:
    """Run the detector and rules over history as if scheduled on every day ``start .. end``.

    Nothing is read from or written to the state file: the inputs are read here and the
    replay itself is :func:`forecast.alerts.replay.replay_series`.

    Raises
    ------
    ForecastError
        For invalid input, or a span outside the data.
    """
    if start > end:
        raise ForecastError(f"--replay: START {start.isoformat()} is after END {end.isoformat()}")
    config = load_detector_config(request.detector)
    rules = load_rules(request.rules)
    series = load_daily_series(request.event_files(), format=request.format, as_of=end, options=request.options)
    draws = load_predictive_draws(request.fit)
    _log_fronts(series)
    return replay_series(config, rules, series, draws, start, end, known_changes=known_changes, match_days=match_days)


if __name__ == "__main__":  # ``python -m forecast.jobs.alert``: the alert command on its own
    from forecast.cli_alert import main

    raise SystemExit(main())
