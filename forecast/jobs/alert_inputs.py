"""The inputs of ``forecast alert`` read from files: the daily series, the fit's draws, known changes.

The events are read and aggregated by the project's one reader (:func:`forecast.jobs.data.read_data`
and :func:`~forecast.jobs.data.aggregate_data`, the two halves of
:func:`~forecast.jobs.data.load_data`), with the alert run's per-front row selection
(:func:`forecast.alerts.series.select_rows`) in between.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date as Date
from pathlib import Path

import numpy as np

from forecast import names as n
from forecast.alerts.evaluation import KnownChange
from forecast.alerts.series import DailySeries, daily_series, select_rows
from forecast.alerts.surprise import PredictiveDraws
from forecast.artefacts import FORECAST_DRAWS_FILE
from forecast.data.options import SelectOptions
from forecast.errors import DataValidationError, ForecastError, Issue
from forecast.jobs.data import DataRequest, aggregate_data, read_data

log = logging.getLogger(__name__)

__all__ = ["DRAWS_FILE", "load_daily_series", "load_known_changes", "load_predictive_draws"]

#: The posterior predictive draws ``forecast fit`` saves beside its fit (the name is kept for importers).
DRAWS_FILE = FORECAST_DRAWS_FILE


def load_daily_series(
    files: Sequence[Path],
    *,
    format: str = n.FORMAT_AUTO,
    as_of: Date | None = None,
    known_starts: Mapping[str, str] | None = None,
    options: SelectOptions | None = None,
) -> DailySeries:
    """Read event files and aggregate them to daily counts up to ``as_of``.

    The rows after ``as_of``, and those before a front's history in the state file, are left
    out per front (:func:`forecast.alerts.series.select_rows` says how); the rest become the
    daily panel (:func:`forecast.jobs.data.aggregate_data`) and its series
    (:func:`forecast.alerts.series.daily_series`).

    Parameters
    ----------
    files : sequence of Path
    format : str
        See :func:`forecast.data.readers.read_events`.
    as_of : date, optional
        The run's date.
    known_starts : mapping of str to str, optional
        Front -> first processed day (ISO) from the state file.
    options : SelectOptions, optional
        The reader's row selection and front definition (ACLED and UCDP files).

    Raises
    ------
    DataValidationError
        For invalid input, or when nothing is left up to ``as_of``.
    """
    if not files:  # an empty request would mean the shipped data to the reader
        raise DataValidationError(Issue("<none>", None, None, "no event files were given"))
    request = DataRequest(events=tuple(files), format=format, options=options or SelectOptions(), freq=n.FREQ_DAY)
    selected, end = select_rows(read_data(request), as_of=as_of, known_starts=known_starts)
    loaded = aggregate_data(replace(request, as_of=end), selected)
    return daily_series(loaded.panel, loaded.events)


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
