"""``forecast alert``: scheduled alerting on rate shifts, idempotent and safe to re-run.

Each run reads the events (the shipped data by default), aggregates them to daily counts,
and, inside one transaction on the state file (:mod:`forecast.jobs.alert_state`):

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
on every day from START to END and prints the alert lines the scheduled runs would print.

Fronts observed only through window totals (no daily counts, such as ``iraq_syria``) are run
through the window form of the detector (:func:`forecast.alerts.bocpd.update_windows`: each
window total is scored with its exposure in days), in the order of the windows' end dates;
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

Exit codes (:func:`run_alert_command`): 0 the run completed, with or without alerts; 1 an
error (bad input, locked state...; nothing was changed); 3 with ``--fail-on-alert``, when an
alert fired; 4 the run completed but a notification could not be delivered (it stays in the
outbox and is retried by the next run).  argparse exits 2 on a usage error.

The alert path imports the data layer, numpy, pandas, PyYAML and the standard library: never PyMC.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import hashlib
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from forecast import names as n
from forecast.alerts.bocpd import (
    DetectorConfig,
    DetectorState,
    WindowState,
    load_detector_config,
    update,
    update_windows,
)
from forecast.alerts.evaluation import KnownChange, ReplayEvaluation, evaluate_replay
from forecast.alerts.rules import Alert, AlertRules, FrontRuleState, Signal, evaluate_front, load_rules
from forecast.alerts.surprise import PredictiveDraws
from forecast.errors import DataValidationError, ForecastError, Issue
from forecast.jobs.alert_state import (
    KIND_MONTH,
    KIND_RUN,
    STATUS_HISTORY,
    STATUS_ISSUED,
    STATUS_WITHDRAWN,
    AlertStore,
    SavedFrontState,
    delivery_lock,
    read_known_starts,
)
from forecast.jobs.notify import Notifier, alert_line, parse_notify_spec

log = logging.getLogger(__name__)

__all__ = [
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
    "add_alert_parser",
    "load_daily_series",
    "load_known_changes",
    "load_predictive_draws",
    "main",
    "replay_alerts",
    "run_alert_command",
    "run_alert_job",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_ALERT = 3
EXIT_NOT_DELIVERED = 4

#: The posterior predictive draws ``forecast fit`` saves beside ``fit.nc``.
DRAWS_FILE = "forecast_draws.npz"
DEFAULT_STATE_FILE = "forecast-alert-state.sqlite"
MODE_SCHEDULED = "scheduled"


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


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

    def event_files(self) -> list[Path]:
        if self.events:
            return list(self.events)
        from forecast.data.shipped import default_event_files

        return default_event_files()


@dataclass(frozen=True)
class WindowSeries:
    """Window totals of a front observed only through windows, ordered by end date.

    Attributes
    ----------
    front : str
    starts, ends : tuple of str
        First and last day of each window (ISO, inclusive).
    counts, days : numpy.ndarray of int64
        Each window's total and its length in days.
    """

    front: str
    starts: tuple[str, ...]
    ends: tuple[str, ...]
    counts: np.ndarray
    days: np.ndarray

    def observed(self) -> dict[str, int]:
        """``{end date: total}``: what the state file records as processed."""
        return {end: int(count) for end, count in zip(self.ends, self.counts.tolist(), strict=True)}


@dataclass(frozen=True)
class DailySeries:
    """Daily counts of the fronts observed day by day.

    Attributes
    ----------
    fronts : tuple of str
    dates : tuple of str
        Every day of the span, ISO.
    counts : numpy.ndarray, shape (front, day)
        NaN where the front was not observed that day (a window total covers it, or the day is
        before the front's first row); float, for the detector.
    skipped : tuple of str
        Fronts with neither daily counts nor window totals up to the end.
    data_hash : str
        SHA-256 of the fronts, days, counts and window totals the detector sees.
    windows : tuple of WindowSeries
        The fronts observed only through window totals (window totals of fronts that also
        have daily counts are not used by the detector).
    exact : numpy.ndarray of int64, shape (front, day)
        The same counts as exact integers (0 where not observed): what is stored and reported.
    gaps : numpy.ndarray of bool, shape (front, day)
        True on the days of a declared gap (``precision = not_observed``): not observed
        (NaN in ``counts``), so the detector skips them; they are counted apart from the other
        unobserved days only to say how many a run skipped.
    """

    fronts: tuple[str, ...]
    dates: tuple[str, ...]
    counts: np.ndarray
    skipped: tuple[str, ...]
    data_hash: str
    windows: tuple[WindowSeries, ...] = ()
    exact: np.ndarray | None = None
    gaps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.exact is None:
            object.__setattr__(self, "exact", np.nan_to_num(self.counts).astype(np.int64))
        if self.gaps is None:
            object.__setattr__(self, "gaps", np.zeros(np.shape(self.counts), dtype=bool))

    def count(self, front: int, day: int) -> int:
        """The exact count of front ``front`` on day ``day`` (0 where not observed)."""
        return int(self.exact[front, day])  # type: ignore[index]

    @property
    def window_fronts(self) -> tuple[str, ...]:
        return tuple(w.front for w in self.windows)

    @property
    def end(self) -> str:
        return self.dates[-1]


def load_daily_series(
    files: Sequence[Path],
    *,
    format: str = n.FORMAT_AUTO,
    as_of: Date | None = None,
    known_starts: Mapping[str, str] | None = None,
) -> DailySeries:
    """Read event files and aggregate them to daily counts up to ``as_of``.

    Rows are excluded **per front**, each reported at WARNING with its file and lines:

    * a row dated after ``as_of`` (or a window ending after it), such as a year mistyped
      2033 for 2023;
    * a row (or a window) ending before the front's known history (``known_starts``: the first
      day the state file holds for the front), such as a year mistyped 2013 for 2023.

    A declared gap (``precision = not_observed``, see :mod:`forecast.data.panel`) is no row of
    counts: its days are not observed (NaN in ``counts``, True in ``gaps``), never zeros.  A gap
    that runs past ``as_of`` is cut at ``as_of`` (its days up to then are known to be
    unobserved; leaving it out would make them zeros up to the end of the other fronts' data);
    a gap that starts after ``as_of`` or ends before the front's known history is left out
    without a warning (there is nothing of it to process).

    An excluded row extends no front: the span ends on the last day of the rows that are kept
    (never later; days after the last input row are not filled with zeros), and each front's
    daily series starts on its own first row (the days before it are not observed, rather
    than zeros borrowed from another front's longer history).

    Parameters
    ----------
    files : sequence of Path
    format : str
        See :func:`forecast.data.readers.read_events`.
    as_of : date, optional
        The run's date.
    known_starts : mapping of str to str, optional
        Front -> first processed day (ISO) from the state file.

    Raises
    ------
    DataValidationError
        For invalid input, or when nothing is left up to ``as_of``.
    """
    import pandas as pd

    from forecast.data.events import PRECISION_NOT_OBSERVED, EventTable
    from forecast.data.panel import build_panel
    from forecast.data.readers import read_events

    events = read_events(list(files), format=format)
    frame = events.frame
    is_gap = (frame[n.PRECISION] == PRECISION_NOT_OBSERVED).to_numpy()
    last_day = frame[n.END_DATE].fillna(frame[n.DATE])
    excluded = np.zeros(len(frame), dtype=bool)
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        late = (last_day > cut).to_numpy()
        straddling = is_gap & late & (frame[n.DATE] <= cut).to_numpy()
        if straddling.any():  # known up to as_of: cut there (a copy: the reader's frame is left alone)
            frame = frame.copy()
            frame.loc[straddling, n.END_DATE] = cut
            last_day = frame[n.END_DATE].fillna(frame[n.DATE])
            late &= ~straddling
            events = EventTable(frame=frame, warnings=events.warnings, files=events.files)
        if (late | is_gap).all():
            raise DataValidationError(
                Issue(", ".join(events.files), None, n.DATE, f"no events on or before as_of {as_of.isoformat()}")
            )
        _warn_excluded(frame[late & ~is_gap], f"dated after as_of {as_of.isoformat()}", "")
        excluded |= late
    if known_starts:
        starts = pd.to_datetime(frame[n.FRONT].map(known_starts))
        # A row's last day (a window's end: a window front's state is keyed by end dates).
        early = (last_day < starts).to_numpy() & ~excluded
        _warn_excluded(
            frame[early & ~is_gap],
            "dated before the front's history in the state file",
            " (to add earlier history, start a new --state)",
        )
        excluded |= early
    if excluded.any():
        frame = frame[~excluded]
        if frame.empty:
            raise DataValidationError(Issue(", ".join(events.files), None, n.DATE, "no events left to process"))
        events = EventTable(frame=frame, warnings=events.warnings, files=events.files)
    end = frame[n.END_DATE].fillna(frame[n.DATE]).max()
    first = frame.groupby(n.FRONT, sort=False)[n.DATE].min()
    del frame
    panel = build_panel(events, freq=n.FREQ_DAY, as_of=end)
    del events
    for issue in panel.warnings:
        log.debug("%s", issue)
    periods = panel.periods
    table = panel.observations
    period_rows = (table[n.OBS_KIND] == n.OBS_PERIOD).to_numpy()
    row_of = pd.Index(panel.fronts).get_indexer(table[n.FRONT].to_numpy()[period_rows])
    exact = np.zeros((len(panel.fronts), len(periods)), dtype=np.int64)
    seen = np.zeros(exact.shape, dtype=bool)
    start = periods[0].to_datetime64() if len(periods) else np.datetime64("1970-01-01")
    columns = ((table[n.DATE].to_numpy()[period_rows] - start) // np.timedelta64(1, "D")).astype(np.int64)
    exact[row_of, columns] = table[n.COUNT].to_numpy(dtype=np.int64)[period_rows]
    seen[row_of, columns] = True
    # Each front starts on its own first row: the days before it are not observed.
    first_column = periods.get_indexer(first.reindex(list(panel.fronts)))
    seen &= np.arange(len(periods))[None, :] >= first_column[:, None]
    exact[~seen] = 0
    gaps = _daily_gap_mask(panel, len(periods))
    daily = np.flatnonzero(seen.any(axis=1))
    counts = np.where(seen, exact.astype(float), np.nan)
    windows = []
    skipped = []
    table = table[~period_rows]
    daily_set = set(daily.tolist())
    by_front = dict(tuple(table.groupby(n.FRONT, sort=False))) if len(table) else {}
    for i, front in enumerate(panel.fronts):
        if i in daily_set:
            continue
        rows = by_front.get(front)
        if rows is None or rows.empty:
            skipped.append(front)
            continue
        rows = rows.sort_values([n.END_DATE, n.DATE], kind="stable")
        windows.append(
            WindowSeries(
                front=front,
                starts=tuple(day.date().isoformat() for day in rows[n.DATE]),
                ends=tuple(day.date().isoformat() for day in rows[n.END_DATE]),
                counts=rows[n.COUNT].to_numpy(dtype=np.int64),
                days=rows[n.EXPOSURE_DAYS].to_numpy(dtype=np.int64),
            )
        )
    fronts = tuple(panel.fronts[i] for i in daily)
    dates = tuple(periods.strftime("%Y-%m-%d"))
    return DailySeries(
        fronts=fronts,
        dates=dates,
        counts=counts[daily],
        skipped=tuple(skipped),
        data_hash=_series_hash(fronts, dates, exact[daily], seen[daily], windows, gaps[daily]),
        windows=tuple(windows),
        exact=exact[daily],
        gaps=gaps[daily],
    )


def _daily_gap_mask(panel: Any, n_days: int) -> np.ndarray:
    """The panel's declared gaps as ``(front, day)`` booleans over its daily periods."""
    if panel.gaps.empty:
        return np.zeros((len(panel.fronts), n_days), dtype=bool)
    mask = panel.gap_mask()
    if mask.shape[1] != n_days:  # a daily panel's periods are its days
        raise AssertionError(f"gap mask over {mask.shape[1]} days, daily periods {n_days}")
    return mask


def _warn_excluded(rows: Any, why: str, hint: str) -> None:
    """One WARNING per file and front for rows a run leaves out, with their lines."""
    if rows.empty:
        return
    for (file, front), group in rows.groupby([n.ORIGIN_FILE, n.FRONT], sort=True):
        lines = group[n.ORIGIN_LINE].tolist()
        shown = ", ".join(str(x) for x in lines[:10]) + (" ..." if len(lines) > 10 else "")
        dates = group[n.DATE]
        span = (
            f"{dates.min().date()}" if dates.min() == dates.max() else f"{dates.min().date()} .. {dates.max().date()}"
        )
        log.warning(
            "%s: %d row(s) of front %r %s are excluded (%s), line(s) %s%s; no other front is affected",
            file,
            len(lines),
            front,
            why,
            span,
            shown,
            hint,
        )


def _series_hash(
    fronts: Sequence[str],
    dates: Sequence[str],
    exact: np.ndarray,
    seen: np.ndarray,
    windows: Sequence[WindowSeries],
    gaps: np.ndarray,
) -> str:
    """SHA-256 of what the detector sees (fronts, days, counts, observed days, window totals, gaps).

    Data without gaps hash as they did before gaps existed.
    """
    digest = hashlib.sha256()
    digest.update("\n".join(fronts).encode())
    digest.update(f"|{dates[0] if dates else ''}|{dates[-1] if dates else ''}|".encode())
    digest.update(np.ascontiguousarray(exact, dtype="<i8").tobytes())
    digest.update(np.packbits(seen).tobytes())
    for w in windows:
        digest.update(f"{w.front}|{','.join(w.starts)}|{','.join(w.ends)}|{w.counts.tolist()}".encode())
    if gaps.any():
        digest.update(b"|gaps|" + np.packbits(gaps).tobytes())
    return digest.hexdigest()


def load_predictive_draws(fit_dir: Path | None) -> PredictiveDraws | None:
    """The posterior predictive draws saved by ``forecast fit`` in ``fit_dir``, or None.

    A folder without ``forecast_draws.npz`` leaves the surprise rule off (logged).

    Raises
    ------
    ForecastError
        When the file is there but is not the expected layout.
    """
    if fit_dir is None:
        return None
    path = Path(fit_dir) / DRAWS_FILE
    if not path.is_file():
        log.warning("no %s in %s: the surprise rule is off for this run", DRAWS_FILE, fit_dir)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("fronts", "dates", "draws", "as_of") if key not in data]
            if missing:
                raise ForecastError(f"{path}: missing arrays {missing}; expected fronts, dates, draws and as_of")
            draws = PredictiveDraws(
                fronts=tuple(str(x) for x in data["fronts"].tolist()),
                dates=tuple(str(x)[:10] for x in data["dates"].tolist()),
                draws=np.asarray(data["draws"]),
                as_of=str(data["as_of"].item())[:10],
                source=str(path),
            )
    except (OSError, ValueError) as error:
        raise ForecastError(f"{path}: cannot read the predictive draws: {error}") from error
    log.info(
        "surprise rule: %d draws for %d front(s), %s .. %s (fit as of %s)",
        draws.draws.shape[0],
        len(draws.fronts),
        draws.dates[0] if draws.dates else "-",
        draws.dates[-1] if draws.dates else "-",
        draws.as_of,
    )
    return draws


def load_known_changes(path: Path) -> list[KnownChange]:
    """Read a known-changes CSV: ``date,front,label,source`` and optionally ``direction``.

    Raises
    ------
    DataValidationError
        Listing every bad row.
    """
    import csv

    issues: list[Issue] = []
    changes: list[KnownChange] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in (n.DATE, n.FRONT):
            if needed not in columns:
                raise DataValidationError(Issue(str(path), 1, needed, f"missing column; columns are {columns}"))
        for line, row in enumerate(reader, start=2):
            try:
                day = Date.fromisoformat(row[n.DATE].strip()).isoformat()
            except ValueError:
                issues.append(Issue(str(path), line, n.DATE, f"not a YYYY-MM-DD date: {row[n.DATE]!r}"))
                continue
            direction = (row.get("direction") or "").strip() or None
            if direction not in (None, "up", "down"):
                issues.append(Issue(str(path), line, "direction", f"must be up, down or empty, got {direction!r}"))
                continue
            changes.append(
                KnownChange(
                    date=day,
                    front=row[n.FRONT].strip(),
                    label=(row.get(n.LABEL) or "").strip(),
                    source=(row.get(n.SOURCE) or "").strip(),
                    direction=direction,
                )
            )
    if issues:
        raise DataValidationError(issues)
    return changes


def _config_hash(config: DetectorConfig, rules: AlertRules) -> str:
    return hashlib.sha256(f"{config.hash()}|{rules.hash()}".encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# The detector and the rules over a span of days
# --------------------------------------------------------------------------------------------


class _Engine:
    """Runs the detector and the rules for a set of fronts over spans of days (no I/O).

    A day of a declared gap is no observation: its count is NaN, so the detector leaves the
    front's state as it is (no run-length step, no hazard), the rules get no signal for it (no
    alert is dated on it, the surprise rule skips it), and ``warmup`` and ``within_last``,
    which count observations, do not count it.  :attr:`gap_days` counts the gap days each
    front skipped in the spans processed.
    """

    def __init__(self, config: DetectorConfig, rules: AlertRules, series: DailySeries, draws: PredictiveDraws | None):
        self.config = config
        self.rules = rules
        self.series = series
        self.draws = draws
        self.outside_horizon = 0
        self.gap_days: dict[str, int] = {}
        observed = ~np.isnan(series.counts)
        self.observed_days = [np.flatnonzero(row) for row in observed]
        self.rank = np.cumsum(observed, axis=1) - 1  # position of a day among the front's observed days

    def advance(
        self,
        fronts: Sequence[int],
        state: DetectorState,
        rule_states: Sequence[FrontRuleState],
        lo: int,
        hi: int,
        first: Sequence[int],
    ) -> list[list[Alert]]:
        """Process days ``lo .. hi - 1``; front ``i`` only from day ``first[i]`` on.

        ``state`` and ``rule_states`` (one per front, in ``fronts`` order) are advanced.
        Returns the alerts of each front, in date order.
        """
        series = self.series
        counts = series.counts[list(fronts), lo:hi].copy()
        for i, start in enumerate(first):
            if start > lo:
                counts[i, : max(0, min(hi, start) - lo)] = np.nan
        gaps = series.gaps
        assert gaps is not None
        for f, start in zip(fronts, first, strict=True):
            skipped = int(gaps[f, max(lo, start) : hi].sum())
            if skipped:
                self.gap_days[series.fronts[f]] = self.gap_days.get(series.fronts[f], 0) + skipped
        per_front = [self.rules.for_front(series.fronts[f]) for f in fronts]
        output = update(
            self.config,
            state,
            counts,
            within_last=[r.changepoint.within_last for r in per_front],
            baseline=[r.changepoint.baseline for r in per_front],
            report_above=[r.changepoint.threshold if r.changepoint.enabled else np.inf for r in per_front],
        )
        alerts: list[list[Alert]] = []
        for i, f in enumerate(fronts):
            front = series.fronts[f]
            signals = []
            for j in np.flatnonzero(output.observed[i]):
                day = lo + int(j)
                date = series.dates[day]
                count = series.count(f, day)
                run = int(output.run_length[i, j])
                regime_start = None
                if run > 0:
                    position = int(self.rank[f, day]) - run + 1
                    regime_start = series.dates[int(self.observed_days[f][max(0, position)])]
                tails = None
                median = None
                if self.draws is not None and front in self.draws.fronts:
                    tails = self.draws.tails(front, date, count)
                    if tails is None:
                        self.outside_horizon += 1
                    else:
                        median = self.draws.median(front, date)
                rate_before = float(output.rate_before[i, j])
                signals.append(
                    Signal(
                        date=date,
                        count=count,
                        n_obs=int(output.n_obs[i, j]),
                        changepoint_prob=float(output.changepoint_prob[i, j]),
                        regime_start=regime_start,
                        rate_after=float(output.rate_after[i, j]) if run > 0 else None,
                        rate_before=rate_before if run > 0 and np.isfinite(rate_before) else None,
                        p_up=None if tails is None else tails[0],
                        p_down=None if tails is None else tails[1],
                        predictive_median=median,
                        fit_as_of=None if tails is None or self.draws is None else self.draws.as_of,
                    )
                )
            alerts.append(evaluate_front(front, per_front[i], rule_states[i], signals))
        return alerts

    def window_alerts(self, windows: WindowSeries) -> tuple[list[Alert], WindowState, FrontRuleState]:
        """Run the window detector and the rules over a window series from its first window.

        Returns the alerts (dated on window end dates, in order), the detector state and the
        rule state after the last window.  The surprise rule does not apply (the fit's draws
        are daily).
        """
        rules = self.rules.for_front(windows.front)
        state = WindowState.initial(self.config)
        output = update_windows(
            self.config,
            state,
            windows.counts,
            windows.days,
            within_last=rules.changepoint.within_last,
            baseline=rules.changepoint.baseline,
            report_above=rules.changepoint.threshold if rules.changepoint.enabled else np.inf,
        )
        signals = []
        for j, end in enumerate(windows.ends):
            run = int(output.run_length[0, j])
            rate_before = float(output.rate_before[0, j])
            signals.append(
                Signal(
                    date=end,
                    count=int(windows.counts[j]),
                    n_obs=int(output.n_obs[0, j]),
                    changepoint_prob=float(output.changepoint_prob[0, j]),
                    regime_start=windows.starts[j - run + 1] if run > 0 else None,
                    rate_after=float(output.rate_after[0, j]) if run > 0 else None,
                    rate_before=rate_before if run > 0 and np.isfinite(rate_before) else None,
                    window_start=windows.starts[j],
                )
            )
        rule_state = FrontRuleState()
        alerts = evaluate_front(windows.front, rules, rule_state, signals)
        return alerts, state, rule_state

    def log_gaps(self) -> None:
        """One INFO line per front that had declared gap days in the spans processed."""
        for front, skipped in sorted(self.gap_days.items()):
            log.info(
                "front %r: %d declared gap day(s) (not_observed) skipped: no detector step, no alert, not counted "
                "in warmup or within_last",
                front,
                skipped,
            )

    def log_horizon(self) -> None:
        if self.draws is not None and self.outside_horizon:
            log.info(
                "surprise rule skipped for %d observation(s) outside the fit's horizon %s .. %s",
                self.outside_horizon,
                self.draws.dates[0] if self.draws.dates else "-",
                self.draws.dates[-1] if self.draws.dates else "-",
            )


def _month_end_cuts(dates: Sequence[str], lo: int, hi: int) -> list[int]:
    """Cut points in ``lo .. hi`` after each last day of a month (and ``hi``)."""
    cuts = []
    for t in range(lo, hi):
        day = Date.fromisoformat(dates[t])
        if day.day == calendar.monthrange(day.year, day.month)[1] and t + 1 < hi:
            cuts.append(t + 1)
    return [*cuts, hi]


# --------------------------------------------------------------------------------------------
# The scheduled run
# --------------------------------------------------------------------------------------------


@dataclass
class AlertRunResult:
    """What a scheduled run did."""

    run_id: int
    as_of: str
    new_observations: int = 0
    issued: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    skipped_fronts: tuple[str, ...] = ()
    gap_days: dict[str, int] = field(default_factory=dict)  # declared gap days skipped, per front
    delivered: int = 0
    failed_destinations: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)

    def exit_code(self, *, fail_on_alert: bool = False) -> int:
        if self.failed_destinations:
            return EXIT_NOT_DELIVERED
        if fail_on_alert and self.issued:
            return EXIT_ALERT
        return EXIT_OK


@dataclass
class _FrontPlan:
    index: int
    front: str
    restore: SavedFrontState | None
    changed: list[str]
    first_run: bool
    history_until: str | None  # alerts dated on or before this are recorded as history (after a reset)
    last_done: str | None
    previous: dict[str, int] = field(default_factory=dict)  # the stored counts of the changed days
    now_gaps: int = 0  # changed days that the data now declare not observed

    @property
    def resume_date(self) -> str | None:
        return None if self.restore is None else self.restore.date


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
        request.event_files(), format=request.format, as_of=request.as_of, known_starts=known_starts
    )
    draws = load_predictive_draws(request.fit)
    as_of = (request.as_of or Date.fromisoformat(series.end)).isoformat()
    _log_fronts(series)
    with AlertStore(request.state, lock_timeout=request.lock_timeout) as store:
        with store.transaction():
            result = _update_state(store, request, config, rules, series, draws, as_of, notifiers)
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


def _update_state(
    store: AlertStore,
    request: AlertRequest,
    config: DetectorConfig,
    rules: AlertRules,
    series: DailySeries,
    draws: PredictiveDraws | None,
    as_of: str,
    notifiers: Sequence[Notifier],
) -> AlertRunResult:
    run_id = store.start_run(as_of, MODE_SCHEDULED, series.data_hash)
    result = AlertRunResult(run_id=run_id, as_of=as_of, skipped_fronts=series.skipped)
    config_hash = _config_hash(config, rules)
    stored_hash = store.get_meta("config_hash")
    reset = stored_hash is not None and stored_hash != config_hash
    if reset:
        log.warning(
            "the detector or rules changed since the last run: recomputing every front from the start of its data; "
            "alerts this finds for days already processed are recorded as history, not notified"
        )
    store.set_meta("config_hash", config_hash)
    since = request.since.isoformat() if request.since else series.end

    in_data = set(series.fronts) | set(series.window_fronts)
    for front in store.fronts_with_state():
        if front not in in_data:
            log.warning("front %r has saved state but no observations in this input: left as it is", front)

    plans: list[_FrontPlan] = []
    observed_now: list[_Observed] = []
    all_stored = store.all_observations()
    latest_states = store.latest_states()
    dates_array = np.asarray(series.dates)
    behind: list[str] = []
    contradicted: list[str] = []
    n_daily = len(series.fronts)
    for f, front in enumerate((*series.fronts, *series.window_fronts)):
        latest = latest_states.get(front)
        last_done = latest.date if latest is not None else None
        if last_done is not None and last_done > series.end and not reset:
            if request.as_of is not None and request.as_of.isoformat() < last_done:
                behind.append(f"{front} (state at {last_done})")
                continue
            # The data end before the state although the run is not for an earlier date: the
            # days processed after series.end are gone from the input (a mistyped date that
            # extended the front was fixed).  A revision, never a frozen front.
            contradicted.append(f"{front} (state at {last_done})")
        if f < n_daily:
            days = np.flatnonzero(~np.isnan(series.counts[f]))
            observed = _Observed(dates_array[days], series.exact[f][days])  # type: ignore[index]
        else:
            window_totals = series.windows[f - n_daily].observed()
            observed = _Observed(np.asarray(list(window_totals), dtype=str), np.asarray(list(window_totals.values())))
        observed_now.append(observed)
        stored = all_stored.get(front, _Observed.empty())
        changed: list[str] = []
        previous: dict[str, int] = {}
        if last_done is not None:
            changed, previous = observed.changes_from(stored, last_done)
        now_gaps = 0
        if changed and f < n_daily:
            # A gap declared over days processed as counts is a revision like any other.
            gap_dates = set(dates_array[series.gaps[f]].tolist())  # type: ignore[index]
            now_gaps = sum(1 for d in changed if d in gap_dates)
        if reset:
            if changed:
                log.warning(
                    "front %r: %d processed day(s) also changed (first %s); the recomputation uses the new data",
                    front,
                    len(changed),
                    changed[0],
                )
            store.delete_states_from(front, None)
            plans.append(_FrontPlan(f, front, None, changed, False, last_done, last_done, previous, now_gaps))
        elif changed:
            restore = store.state_before(front, changed[0])
            store.delete_states_from(front, changed[0])
            plans.append(_FrontPlan(f, front, restore, changed, False, None, last_done, previous, now_gaps))
        else:
            plans.append(_FrontPlan(f, front, latest, [], latest is None, None, last_done))

    if behind:
        log.warning(
            "the data of this run end on %s, before the saved state of: %s; those fronts are left as they are "
            "(a run never goes back in time; to recompute, use a new --state)",
            series.end,
            ", ".join(behind),
        )
    if contradicted:
        log.warning(
            "the data of this run end on %s, before the saved state of: %s, although the run is as of %s; the "
            "processed days after %s are no longer in the data and are handled as a revision",
            series.end,
            ", ".join(contradicted),
            as_of,
            series.end,
        )
    engine = _Engine(config, rules, series, draws)
    dates = series.dates
    first = [0 if p.resume_date is None else _first_day_after(dates, p.resume_date) for p in plans]
    window_plans = [i for i, p in enumerate(plans) if p.index >= n_daily]
    active = [i for i, p in enumerate(plans) if first[i] < len(dates) and p.index < n_daily]
    alerts_by_front: dict[int, list[Alert]] = {i: [] for i in active}
    if active:
        fronts = [plans[i].index for i in active]
        states = [plans[i].restore for i in active]
        detector = _stack_states(config, states)
        rule_states = [FrontRuleState.from_json(s.rules) if s is not None else FrontRuleState() for s in states]
        lo = min(first[i] for i in active)
        start = lo
        for cut in _month_end_cuts(dates, lo, len(dates)):
            found = engine.advance(fronts, detector, rule_states, start, cut, [first[i] for i in active])
            for i, alerts in zip(active, found, strict=True):
                alerts_by_front[i].extend(alerts)
            kind = KIND_RUN if cut == len(dates) else KIND_MONTH
            for position, i in enumerate(active):
                if first[i] < cut:
                    store.save_state(
                        SavedFrontState(
                            front=plans[i].front,
                            date=dates[cut - 1],
                            kind=kind,
                            n_obs=int(detector.n_obs[position]),
                            detector=detector.front_bytes(position),
                            rules=rule_states[position].to_json(),
                        )
                    )
            start = cut
        engine.log_gaps()
        engine.log_horizon()
        result.gap_days = dict(sorted(engine.gap_days.items()))
    for i in window_plans:
        # Window series are recomputed from their first window; what lies after the resume date is new.
        plan = plans[i]
        windows = series.windows[plan.index - n_daily]
        resume = plan.resume_date
        if not plan.changed and resume is not None and windows.ends[-1] <= resume:
            continue  # nothing new
        found, window_state, rule_state = engine.window_alerts(windows)
        alerts_by_front[i] = [a for a in found if resume is None or a.date > resume]
        store.save_state(
            SavedFrontState(
                front=plan.front,
                date=windows.ends[-1],
                kind=KIND_RUN,
                n_obs=window_state.n_obs,
                detector=window_state.to_bytes(),
                rules=rule_state.to_json(),
            )
        )

    for i, plan in enumerate(plans):
        if i not in alerts_by_front:
            continue
        _record_front(store, plan, observed_now[i], alerts_by_front[i], since, as_of, notifiers, result)
    store.prune_all_states()
    store.finish_run(
        run_id,
        new_observations=result.new_observations,
        alerts_issued=len(result.issued),
        revisions=len(result.revisions),
    )
    return result


def _first_day_after(dates: Sequence[str], day: str) -> int:
    """Index of the first date after ``day`` (dates are ISO strings in order)."""
    return bisect.bisect_right(dates, day)


def _stack_states(config: DetectorConfig, saved: Sequence[SavedFrontState | None]) -> DetectorState:
    fresh = DetectorState.initial(len(saved), config)
    blobs = [s.detector for s in saved if s is not None]
    if not blobs:
        return fresh
    try:
        restored = DetectorState.from_front_bytes(blobs, config)
    except ValueError as error:
        raise ForecastError(f"the saved detector state does not fit the detector configuration: {error}") from error
    position = 0
    for i, s in enumerate(saved):
        if s is not None:
            fresh.probs[i] = restored.probs[position]
            fresh.sums[i] = restored.sums[position]
            fresh.n_obs[i] = restored.n_obs[position]
            position += 1
    return fresh


class _Observed:
    """A front's observations, ISO dates in order with their exact counts (numpy arrays)."""

    def __init__(self, dates: np.ndarray, counts: np.ndarray):
        self.dates = np.asarray(dates, dtype="U10")
        self.counts = np.asarray(counts, dtype=np.int64)
        self._lookup: dict[str, int] | None = None

    @classmethod
    def empty(cls) -> _Observed:
        return cls(np.zeros(0, dtype="U10"), np.zeros(0, dtype=np.int64))

    def get(self, day: str) -> int | None:
        if self._lookup is None:
            self._lookup = dict(zip(self.dates.tolist(), self.counts.tolist(), strict=True))
        return self._lookup.get(day)

    def after(self, day: str | None) -> list[tuple[str, int]]:
        """``(date, count)`` of the days after ``day`` (all when None), in order."""
        start = 0 if day is None else int(np.searchsorted(self.dates, day, side="right"))
        return list(zip(self.dates[start:].tolist(), self.counts[start:].tolist(), strict=True))

    def changes_from(self, stored: Any, last_done: str) -> tuple[list[str], dict[str, int]]:
        """Days up to ``last_done`` whose count differs from ``stored`` (added, dropped or changed).

        Returns the changed days in order and the stored counts of those that were stored.  The
        usual case, nothing changed, is two array comparisons.
        """
        upto = int(np.searchsorted(self.dates, last_done, side="right"))
        dates, counts = self.dates[:upto], self.counts[:upto]
        if np.array_equal(dates, stored.dates) and np.array_equal(counts, stored.counts):
            return [], {}
        before = dict(zip(stored.dates.tolist(), stored.counts.tolist(), strict=True))
        now = dict(zip(dates.tolist(), counts.tolist(), strict=True))
        changed = sorted(d for d in set(before) | set(now) if before.get(d) != now.get(d))
        return changed, {d: before[d] for d in changed if d in before}


def _record_front(
    store: AlertStore,
    plan: _FrontPlan,
    observed: _Observed,
    alerts: list[Alert],
    since: str,
    as_of: str,
    notifiers: Sequence[Notifier],
    result: AlertRunResult,
) -> None:
    """Store the front's processed observations and alerts; withdraw what a revision undid."""
    resume = plan.resume_date
    rows = observed.after(resume)
    store.replace_observations_after(plan.front, resume, rows, result.run_id)
    result.new_observations += sum(1 for d, _ in rows if plan.last_done is None or d > plan.last_done)

    existing = store.alerts_of(plan.front, None if resume is None else _next_day(resume))
    found_ids = set()
    added = 0
    for alert in alerts:
        found_ids.add(alert.id)
        status = STATUS_ISSUED
        if plan.first_run and alert.date < since:
            status = STATUS_HISTORY
        if plan.history_until is not None and alert.date <= plan.history_until:
            status = STATUS_HISTORY
        previous = existing.get(alert.id)
        if previous is None:
            payload = alert.to_json(as_of)
            store.insert_alert(payload, status, result.run_id)
        elif previous == STATUS_WITHDRAWN and status == STATUS_ISSUED:
            store.reinstate_alert(alert.id)
            payload = store.alert_payload(alert.id)
        else:
            continue
        if status == STATUS_ISSUED:
            added += 1
            result.issued.append(payload)
            for notifier in notifiers:
                store.enqueue(alert.id, notifier.key, result.run_id)

    if plan.changed and plan.history_until is None:
        first_changed = plan.changed[0]
        gone = sorted(
            alert_id
            for alert_id, status in store.alerts_of(plan.front, first_changed).items()
            if status != STATUS_WITHDRAWN and alert_id not in found_ids
        )
        store.withdraw_alerts(gone, result.run_id)
        result.withdrawn.extend(gone)
        examples = [{"date": d, "before": plan.previous.get(d), "after": observed.get(d)} for d in plan.changed[:20]]
        detail = {"changed": examples, "restarted_after": resume, "withdrawn": gone, "now_not_observed": plan.now_gaps}
        store.record_revision(result.run_id, plan.front, first_changed, len(plan.changed), len(gone), added, detail)
        result.revisions.append(
            {
                "front": plan.front,
                "first_changed": first_changed,
                "rows_changed": len(plan.changed),
                "alerts_withdrawn": len(gone),
                "alerts_added": added,
            }
        )
        shown = ", ".join(
            f"{e['date']}: {_shown_count(e['before'])} -> {_shown_count(e['after'])}" for e in examples[:3]
        )
        log.warning(
            "data revision on front %r: %d processed day(s) changed (%s%s)%s; recomputed from %s; %d alert(s) "
            "withdrawn, %d new",
            plan.front,
            len(plan.changed),
            shown,
            ", ..." if len(plan.changed) > 3 else "",
            f", {plan.now_gaps} of them now in a declared gap" if plan.now_gaps else "",
            first_changed,
            len(gone),
            added,
        )
        for alert_id in gone:
            log.warning("alert %s on %r is withdrawn: the revised data no longer support it", alert_id[:12], plan.front)


def _shown_count(count: object) -> str:
    """A day's count in a revision message; None: the day is not (or was not) observed."""
    return "not observed" if count is None else str(count)


def _next_day(day: str) -> str:
    return Date.fromordinal(Date.fromisoformat(day).toordinal() + 1).isoformat()


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


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """Alerts a daily schedule would have issued from ``start`` to ``end``."""

    start: str
    end: str
    alerts: list[dict[str, Any]]
    fronts: tuple[str, ...]
    skipped_fronts: tuple[str, ...]
    evaluation: ReplayEvaluation | None = None
    gap_days: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "fronts": list(self.fronts),
            "skipped_fronts": list(self.skipped_fronts),
            "gap_days_skipped": dict(self.gap_days),
            "alerts": len(self.alerts),
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
        }


def replay_alerts(
    request: AlertRequest,
    start: Date,
    end: Date,
    *,
    known_changes: Sequence[KnownChange] | None = None,
    match_days: int = 14,
) -> ReplayResult:
    """Run the detector and rules over history as if scheduled on every day ``start .. end``.

    Nothing is read from or written to the state file.  The days before ``start`` are
    processed first (their alerts are history, as in a first scheduled run with
    ``--since START``), then each day is processed as a run with ``as_of`` that day would
    process it, so the alert objects equal those of daily scheduled runs on the same data.

    Raises
    ------
    ForecastError
        For invalid input, or a span outside the data.
    """
    if start > end:
        raise ForecastError(f"--replay: START {start.isoformat()} is after END {end.isoformat()}")
    config = load_detector_config(request.detector)
    rules = load_rules(request.rules)
    series = load_daily_series(request.event_files(), format=request.format, as_of=end)
    draws = load_predictive_draws(request.fit)
    _log_fronts(series)
    first_day = _first_day_after(series.dates, Date.fromordinal(start.toordinal() - 1).isoformat())
    if first_day >= len(series.dates):
        raise ForecastError(f"--replay: the data end on {series.end}, before START {start.isoformat()}")
    engine = _Engine(config, rules, series, draws)
    fronts = list(range(len(series.fronts)))
    detector = DetectorState.initial(len(fronts), config)
    rule_states = [FrontRuleState() for _ in fronts]
    first = [0] * len(fronts)
    # Window series: an alert on a window depends only on the windows ending on or before it, so
    # running each series once gives the alerts of the daily schedule; they are printed on the
    # day of their window's end, after the daily fronts' alerts (as a scheduled run prints them).
    from_windows: dict[str, list[dict[str, Any]]] = {}
    for windows in series.windows:
        for alert in engine.window_alerts(windows)[0]:
            from_windows.setdefault(alert.date, []).append(alert.to_json(alert.date))
    alerts: list[dict[str, Any]] = []
    if fronts and first_day > 0:
        engine.advance(fronts, detector, rule_states, 0, first_day, first)
    for day in range(first_day, len(series.dates)):
        if fronts:
            for found in engine.advance(fronts, detector, rule_states, day, day + 1, first):
                alerts.extend(alert.to_json(series.dates[day]) for alert in found)
        alerts.extend(from_windows.get(series.dates[day], []))
    engine.log_gaps()
    engine.log_horizon()
    last = min(end.isoformat(), series.end)
    evaluation = None
    if known_changes is not None:
        evaluation = evaluate_replay(
            alerts,
            known_changes,
            evaluable_fronts=(*series.fronts, *series.window_fronts),
            start=series.dates[first_day],
            end=last,
            match_days=match_days,
        )
    return ReplayResult(
        start=series.dates[first_day],
        end=last,
        alerts=alerts,
        fronts=(*series.fronts, *series.window_fronts),
        skipped_fronts=series.skipped,
        evaluation=evaluation,
        gap_days=dict(sorted(engine.gap_days.items())),
    )


# --------------------------------------------------------------------------------------------
# Command line (wired into ``forecast`` by forecast.cli)
# --------------------------------------------------------------------------------------------

_DESCRIPTION = """\
Scheduled alerting on rate shifts.  Run it from cron or a systemd timer: each run processes
only the days new since the last one (state in --state), issues each alert once, and delivers
it to every --notify destination exactly once (a failed delivery is retried by the next run).
"""

_EPILOG = f"""\
notify SPECs (repeatable; default stdout):
  stdout                  one JSON object per line on standard output
  file:PATH               append JSON lines to PATH
  webhook:URL             HTTP POST of the alert object as JSON
  slack:URL               HTTP POST of {{"text": ...}} (Slack-compatible)
  smtp://HOST[:PORT]?to=ADDR[,ADDR]&from=ADDR[&starttls=1][&cafile=PATH][&subject=TEXT]
  smtps://HOST[:PORT]?... one e-mail per alert; login with $FORECAST_SMTP_USER and
                          $FORECAST_SMTP_PASSWORD when both are set (never logged)

exit codes:
  {EXIT_OK}  the run completed (with or without alerts)
  {EXIT_ERROR}  error (bad input or configuration, state locked too long); the state is unchanged
  2  usage error
  {EXIT_ALERT}  with --fail-on-alert: an alert fired (was issued by this run, or printed by --replay)
  {EXIT_NOT_DELIVERED}  the run completed but a notification could not be delivered; it stays queued
"""


def _iso_date(text: str) -> Date:
    try:
        return Date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from error


def _alert_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--events",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="event files (repeatable; default: the shipped data)",
    )
    data.add_argument("--format", choices=n.FORMATS, default=n.FORMAT_AUTO, help="input layout (default: auto)")
    data.add_argument(
        "--as-of",
        type=_iso_date,
        metavar="DATE",
        help="the run's date: later data are ignored (default: today from `forecast alert`, the last "
        "day of the data from python -m)",
    )
    data.add_argument(
        "--since",
        type=_iso_date,
        metavar="DATE",
        help="first run on a front: notify alerts dated from DATE only (default: the last day of the "
        "data); earlier ones are recorded as history",
    )
    data.add_argument(
        "--fit",
        type=Path,
        metavar="DIR",
        help=f"a folder from `forecast fit`; its {DRAWS_FILE} enables the surprise rule",
    )
    config = parser.add_argument_group("detector and rules")
    config.add_argument(
        "--detector",
        type=Path,
        metavar="FILE",
        help="detector prior and hazard (default: the code defaults = priors/alerts/detector.yaml)",
    )
    config.add_argument(
        "--rules", type=Path, metavar="FILE", help="alert rules (default: the code defaults = priors/alerts/rules.yaml)"
    )
    state = parser.add_argument_group("state and delivery")
    state.add_argument(
        "--state",
        type=Path,
        default=Path(DEFAULT_STATE_FILE),
        metavar="FILE",
        help=f"SQLite state file (default: ./{DEFAULT_STATE_FILE})",
    )
    state.add_argument(
        "--notify",
        action="append",
        default=None,
        metavar="SPEC",
        help="destination (repeatable; default: stdout); see below",
    )
    state.add_argument("--fail-on-alert", action="store_true", help=f"exit {EXIT_ALERT} when an alert fired")
    state.add_argument(
        "--lock-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another run holding the state (default 60)",
    )
    state.add_argument(
        "--notify-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each whole send to a webhook or mail server, however slowly it answers (default 10)",
    )
    state.add_argument("--report", type=Path, metavar="FILE", help="also write a JSON summary of the run to FILE")
    replay = parser.add_argument_group("replay")
    replay.add_argument(
        "--replay",
        type=_iso_date,
        nargs=2,
        metavar=("START", "END"),
        help="run over history as if scheduled on each day START..END and print every alert line; "
        "touches no state and sends nothing",
    )
    replay.add_argument(
        "--known-changes",
        type=Path,
        metavar="FILE",
        help="with --replay: CSV of known change dates (date,front,label,source[,direction]); "
        "reports detection delays and false alarms per 90 days",
    )
    replay.add_argument(
        "--match-days",
        type=int,
        default=14,
        metavar="N",
        help="with --known-changes: largest delay that counts as a detection (default 14)",
    )


def add_alert_parser(subcommands: Any) -> argparse.ArgumentParser:
    """Add the ``alert`` command to an argparse sub-command group and return its parser."""
    parser = subcommands.add_parser(
        "alert",
        help="scheduled alerting on rate shifts (cron-safe, idempotent)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _alert_arguments(parser)
    return parser


def _request_from(args: argparse.Namespace, today: Date | None) -> AlertRequest:
    return AlertRequest(
        state=args.state,
        events=tuple(args.events),
        format=args.format,
        detector=args.detector,
        rules=args.rules,
        fit=args.fit,
        as_of=args.as_of if args.as_of is not None else today,
        since=args.since,
        notify=tuple(args.notify) if args.notify else ("stdout",),
        lock_timeout=args.lock_timeout,
        notify_timeout=args.notify_timeout,
    )


def run_alert_command(args: argparse.Namespace, *, today: Date | None = None, stdout: TextIO | None = None) -> int:
    """Run ``forecast alert`` from parsed arguments; returns the exit code.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser made with :func:`add_alert_parser`.
    today : date, optional
        The default ``--as-of``.  The command line passes today's date; None means the last
        day of the data (the library never reads the clock).
    stdout : text stream, optional
        Where alert lines go (default ``sys.stdout``).
    """
    import json
    import sqlite3

    out = stdout if stdout is not None else sys.stdout
    try:
        request = _request_from(args, today)
        if args.replay:
            if args.notify:
                log.warning("--replay prints alert lines on standard output and sends nothing: --notify is ignored")
            known = load_known_changes(args.known_changes) if args.known_changes else None
            replayed = replay_alerts(
                request, args.replay[0], args.replay[1], known_changes=known, match_days=args.match_days
            )
            for alert in replayed.alerts:
                out.write(alert_line(alert) + "\n")
            out.flush()
            if replayed.evaluation is not None:
                print("\n".join(replayed.evaluation.lines()), file=sys.stderr)
            if args.report:
                args.report.write_text(json.dumps(replayed.to_dict(), indent=2) + "\n", encoding="utf-8")
            return EXIT_ALERT if args.fail_on_alert and replayed.alerts else EXIT_OK
        if args.known_changes:
            log.warning("--known-changes is used with --replay only; ignored")
        result = run_alert_job(request, stdout=out)
        if args.report:
            summary = {
                "run_id": result.run_id,
                "as_of": result.as_of,
                "new_observations": result.new_observations,
                "issued": [alert["id"] for alert in result.issued],
                "revisions": result.revisions,
                "withdrawn": result.withdrawn,
                "skipped_fronts": list(result.skipped_fronts),
                "gap_days_skipped": result.gap_days,
                "delivered": result.delivered,
                "failed_destinations": result.failed_destinations,
                "pending": result.pending,
            }
            args.report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return result.exit_code(fail_on_alert=args.fail_on_alert)
    except (ForecastError, FileNotFoundError, sqlite3.Error, OSError) as error:
        log.error("%s", error)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m forecast.jobs.alert``: the ``alert`` command on its own."""
    parser = argparse.ArgumentParser(
        prog="forecast alert",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    _alert_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    return run_alert_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
