"""The data jobs behind ``forecast data check`` and ``forecast data panel``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.events import PRECISION_NOT_OBSERVED, EventTable
from forecast.data.interventions import InterventionTable, read_interventions_csv
from forecast.data.options import SelectOptions
from forecast.data.panel import Panel, build_panel
from forecast.data.readers import read_events
from forecast.data.shipped import default_event_files, default_interventions_file
from forecast.errors import DataValidationError, Issue, IssueRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataRequest:
    """What the user asked to load; empty ``events`` means the shipped example data."""

    events: tuple[Path, ...] = ()
    interventions: Path | None = None
    format: str = n.FORMAT_AUTO
    options: SelectOptions = field(default_factory=SelectOptions)
    freq: str = n.FREQ_DAY
    as_of: pd.Timestamp | None = None
    start: pd.Timestamp | None = None
    period_tables: str = "auto"
    uncertain_dates: str = "middle"

    def panel_options(self) -> dict[str, str]:
        """How :func:`~forecast.data.panel.build_panel` reads period tables and uncertain dates."""
        return {"period_tables": self.period_tables, "uncertain_dates": self.uncertain_dates}

    def event_files(self) -> list[Path]:
        return list(self.events) if self.events else default_event_files()

    def interventions_file(self) -> Path | None:
        if self.interventions is not None:
            return self.interventions
        return None if self.events else default_interventions_file()


@dataclass(frozen=True)
class LoadedData:
    events: EventTable
    panel: Panel
    interventions: InterventionTable | None

    @property
    def as_of(self) -> pd.Timestamp:
        """The ``as_of`` every job uses, resolved once: the request's, or the data's last day.

        It is the panel's end (:func:`forecast.data.panel.build_panel`): ``--as-of`` when given,
        else the last day the data cover (for a period table, its last period's last day).
        """
        return self.panel.end


def load_data(request: DataRequest) -> LoadedData:
    """Read, validate and aggregate; raises :class:`DataValidationError` listing every problem.

    The two halves, :func:`read_data` and :func:`aggregate_data`, are there for a job that
    selects rows in between (``forecast alert`` leaves out rows per front).
    """
    return aggregate_data(request, read_data(request))


def read_data(request: DataRequest) -> EventTable:
    """Read and validate the event files of ``request`` with its selection options."""
    files = request.event_files()
    log.info("reading %d event file(s): %s", len(files), ", ".join(str(f) for f in files))
    return read_events(files, format=request.format, options=request.options)


def aggregate_data(request: DataRequest, events: EventTable) -> LoadedData:
    """Aggregate ``events`` (from :func:`read_data`) to the panel of ``request``, with its interventions."""
    panel = build_panel(events, freq=request.freq, as_of=request.as_of, start=request.start, **request.panel_options())
    interventions = None
    path = request.interventions_file()
    if path is not None:
        log.info("reading interventions: %s", path)
        interventions = read_interventions_csv(path)
        interventions.check_fronts(panel.fronts)
    return LoadedData(events=events, panel=panel, interventions=interventions)


class FrontRecord(TypedDict):
    """One front in :func:`check_data`'s result."""

    front: str
    first_date: str
    last_date: str
    total: int
    rows: int


class GapRecord(TypedDict):
    """One declared gap in :func:`check_data`'s result (ISO dates, inclusive)."""

    start: str
    end: str
    days: int


class DataCheckResult(TypedDict, total=False):
    """What :func:`check_data` returns; the keys after ``errors`` only when the data are valid."""

    files: list[str]
    interventions_file: str | None
    format: str
    freq: str
    as_of: str | None
    fronts: list[FrontRecord]
    warnings: list[IssueRecord]
    errors: list[IssueRecord]
    start: str
    end: str
    periods: int
    windows: int
    period_tables: list[str]
    gaps: dict[str, list[GapRecord]]
    interventions: int
    data_hash: str


def front_summary(loaded: LoadedData) -> list[FrontRecord]:
    """Per front: first and last day, total count (an exact integer) and number of input rows used.

    One grouping over the rows (never one pass per front).  The total is the panel's (what the
    models see: uncertain dates dropped by ``--uncertain-dates drop`` are not in it; the
    warnings count them).
    """
    panel = loaded.panel
    frame = loaded.events.frame
    frame = frame[frame[n.PRECISION] != PRECISION_NOT_OBSERVED]  # declared gaps are listed apart
    last = frame[n.END_DATE].fillna(frame[n.DATE])
    used = ((frame[n.DATE] >= panel.start) & (last <= panel.end)).to_numpy()
    rows = pd.DataFrame(
        {n.FRONT: frame[n.FRONT].to_numpy()[used], "first": frame[n.DATE].to_numpy()[used], "last": last[used]}
    )
    grouped = rows.groupby(n.FRONT, sort=False)
    first = grouped["first"].min()
    last_day = grouped["last"].max()
    size = grouped.size()
    observations = panel.observations
    totals = _exact_totals(observations[n.FRONT].to_numpy(), observations[n.COUNT].to_numpy(dtype=np.int64))
    out: list[FrontRecord] = []
    for front in panel.fronts:
        if front not in size.index:
            continue
        out.append(
            {
                "front": front,
                "first_date": first[front].date().isoformat(),
                "last_date": last_day[front].date().isoformat(),
                "total": totals.get(front, 0),
                "rows": int(size[front]),
            }
        )
    return out


def _exact_totals(fronts: np.ndarray, counts: np.ndarray) -> dict[str, int]:
    """Sum of ``counts`` per front as Python integers (int64 sums would wrap past 2**63)."""
    codes, names = pd.factorize(fronts, sort=False)
    small = np.bincount(codes, weights=counts.astype(float), minlength=len(names)) < 2.0**62
    sums = np.zeros(len(names), dtype=np.int64)
    np.add.at(sums, codes, counts)
    totals = {str(name): int(total) for name, total in zip(names, sums.tolist(), strict=True)}
    for i in np.flatnonzero(~small).tolist():
        totals[str(names[i])] = sum(int(c) for c in counts[codes == i].tolist())
    return totals


def check_data(request: DataRequest) -> DataCheckResult:
    """Everything ``data check`` reports, as one JSON-ready dictionary.

    ``errors`` is non-empty when the input is invalid; nothing is raised for data problems.
    """
    files = [str(f) for f in request.event_files()]
    result: DataCheckResult = {
        "files": files,
        "interventions_file": str(request.interventions_file()) if request.interventions_file() else None,
        "format": request.format,
        "freq": request.freq,
        "as_of": request.as_of.date().isoformat() if request.as_of is not None else None,
        "fronts": [],
        "warnings": [],
        "errors": [],
    }
    try:
        loaded = load_data(request)
    except DataValidationError as error:
        result["errors"] = [issue.to_dict() for issue in error.issues]
        return result
    panel = loaded.panel
    result.update(
        {
            "start": panel.start.date().isoformat(),
            "end": panel.end.date().isoformat(),
            "periods": panel.n_periods,
            "fronts": front_summary(loaded),
            "windows": int(len(panel.window_obs)),
            "period_tables": list(panel.period_table_fronts),
            "gaps": {
                front: [
                    {"start": a.date().isoformat(), "end": b.date().isoformat(), "days": (b - a).days + 1}
                    for a, b in panel.gap_ranges(front)
                ]
                for front in panel.fronts
                if panel.gap_ranges(front)
            },
            "interventions": len(loaded.interventions) if loaded.interventions is not None else 0,
            "warnings": [issue.to_dict() for issue in panel.warnings],
            "data_hash": panel.data_hash(),
        }
    )
    return result


def format_check(result: DataCheckResult) -> str:
    """Human-readable form of :func:`check_data`'s result."""
    lines = [f"files: {', '.join(result['files'])}"]
    if result.get("interventions_file"):
        lines.append(f"interventions: {result['interventions_file']} ({result.get('interventions', 0)} rows)")
    errors = result["errors"]
    if errors:
        lines.append(f"ERRORS ({len(errors)}):")
        lines += [f"  - {Issue(**e)}" for e in errors]
        return "\n".join(lines)
    lines.append(
        f"span: {result['start']} .. {result['end']}  frequency: {result['freq']} ({result['periods']} periods)"
        f"  window totals: {result['windows']}"
    )
    tables = result.get("period_tables") or []
    if tables:
        lines.append(
            f"read as {result['freq']} tables (each row the total of its whole {result['freq']}; --period-tables no "
            f"reads them as one-day events): {', '.join(tables)}"
        )
    gaps = result.get("gaps") or {}
    lines.append("declared gaps (not observed):" if gaps else "declared gaps: none")
    for front, ranges in gaps.items():
        shown = ", ".join(f"{g['start']}..{g['end']} ({g['days']} days)" for g in ranges)
        lines.append(f"  {front}: {shown}")
    fronts = pd.DataFrame(result["fronts"])
    lines.append(fronts.to_string(index=False))
    totals = [int(front["total"]) for front in result["fronts"]]
    lines.append(f"total events: {sum(totals)}")
    warnings = result["warnings"]
    lines.append(f"warnings ({len(warnings)}):" if warnings else "warnings: none")
    lines += [f"  - {Issue(**w)}" for w in warnings]
    return "\n".join(lines)


def write_panel(request: DataRequest, out: Path) -> Panel:
    """Aggregate and write the panel CSV (``date,front,count,end_date,precision``)."""
    loaded = load_data(request)
    out.parent.mkdir(parents=True, exist_ok=True)
    loaded.panel.to_frame().to_csv(out, index=False, lineterminator="\n")
    log.info("wrote %d observations for %d fronts to %s", len(loaded.panel.observations), len(loaded.panel.fronts), out)
    return loaded.panel
