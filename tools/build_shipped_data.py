"""How the example data shipped in the repository's ``data/`` folder are built (not part of the package).

The raw inputs are kept byte for byte in ``data/raw/`` (copied from the project's compiled,
sourced files; ``data/raw/SOURCES.md`` says where each comes from), so the derived files can be
rebuilt offline, from the repository root, with::

    python -m tools.build_shipped_data            # data/raw -> data/
    python -m tools.build_shipped_data --raw DIR --out DIR

Where the derived files are (what a ``forecast`` command reads) is
:mod:`forecast.data.shipped`.

Derived files, all in the canonical events format of :mod:`forecast.data.events` (columns
``date,end_date,front,count,precision,source``) except the interventions table:

``events_israel_alerts.csv``
    Daily Home Front Command alert events per front (``gaza``, ``lebanon_rockets``,
    ``lebanon_drones``), zero days included.
``events_us_forces_iraq_syria.csv``
    Window totals of attacks on US forces (``iraq``, ``syria``, then ``iraq_syria`` after the
    last statement that gave the split), from the Pentagon's running count.
``events_red_sea_shipping.csv``
    Window totals of Houthi attacks on shipping (``red_sea_shipping``), from CENTCOM's
    running count.
``interventions.csv``
    ``date,end_date,kind,shape,front,label,source``; several fronts in one row are separated
    by ``;``.

``data/README.md`` documents every column and conversion rule.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.csvio import RawTable, read_raw_csv, require_columns
from forecast.data.cumulative import WINDOW_COLUMNS, cumulative_to_windows
from forecast.data.interventions import FRONT_SEPARATOR, INTERVENTION_CSV_COLUMNS
from forecast.data.parse import parse_counts, parse_dates
from forecast.data.shipped import (
    ALERTS_FILE,
    INTERVENTIONS_FILE,
    RED_SEA_FILE,
    US_FORCES_FILE,
    shipped_data_dir,
)
from forecast.errors import DataValidationError, Issue

logger = logging.getLogger(__name__)

# Raw inputs (names as in data/raw/).
RAW_ALERTS = "israel_alerts_daily_by_origin_2023_2024_harpaz.csv"
RAW_US_FORCES_COUNTS = "compiled_us_forces_iraq_syria_attack_counts_2023_2024.csv"
RAW_US_STRIKES = "compiled_us_strikes_iraq_syria_2023_2024.csv"
RAW_KEY_EVENTS = "compiled_key_attack_events_2023_2024.csv"
RAW_SHIPPING_ANCHORS = "compiled_houthi_shipping_anchors_2023_2024.csv"
RAW_KILLED_360INFO = "lebanon_israel_gaza_daily_killed_cumulative_360info.csv"
RAW_SOURCES = "SOURCES.md"
RAW_FILES = (
    RAW_ALERTS,
    RAW_US_FORCES_COUNTS,
    RAW_US_STRIKES,
    RAW_KEY_EVENTS,
    RAW_SHIPPING_ANCHORS,
    RAW_KILLED_360INFO,
    RAW_SOURCES,
)

# Fronts of the shipped data.
FRONT_GAZA = "gaza"
FRONT_LEBANON_ROCKETS = "lebanon_rockets"
FRONT_LEBANON_DRONES = "lebanon_drones"
FRONT_IRAQ = "iraq"
FRONT_SYRIA = "syria"
FRONT_IRAQ_SYRIA = "iraq_syria"
FRONT_RED_SEA_SHIPPING = "red_sea_shipping"
ALERT_FRONTS = (FRONT_GAZA, FRONT_LEBANON_ROCKETS, FRONT_LEBANON_DRONES)
US_FORCES_FRONTS = (FRONT_IRAQ, FRONT_SYRIA, FRONT_IRAQ_SYRIA)


# Harpaz alerts: the five Gaza distance bands (km from Gaza) and the two Lebanon columns.
ALERT_GAZA_BANDS = ("0-7", "7-15", "15-30", "30-50", "50+")
ALERT_LEBANON_ROCKETS = "Lebanon"
ALERT_LEBANON_DRONES = "Lebanon_drone"
ALERTS_SOURCE = (
    "https://github.com/yuval-harpaz/alarms/blob/0004c82d1c72bcafae3162a815983db00dfc7e87/"
    "data/alarms_by_date_and_distance.csv"
)

# Pentagon running count of attacks on US forces in Iraq and Syria.
US_FORCES_COUNT_START = "2023-10-17"
US_FORCES_PRECISION = {
    "exact": n.PRECISION_EXACT,
    "reported": n.PRECISION_EXACT,
    "no_new_attacks": n.PRECISION_EXACT,
    "at_least": n.PRECISION_AT_LEAST,
    "approx": n.PRECISION_APPROX,
    "approx_date": n.PRECISION_APPROX_DATE,
}
NO_NEW_ATTACKS = "no_new_attacks"

# CENTCOM running count of Houthi attacks on shipping.
RED_SEA_COUNT_START = "2023-11-19"
RED_SEA_TOTAL_COLUMN = "cumulative_attacks_on_shipping_since_2023_11_19"
#: Anchors whose total is approximate ("more than 60 vessels" on 2024-03-31).
RED_SEA_APPROXIMATE_DATES = ("2024-03-31",)

# Interventions.
KIND_STRIKE = "strike"
KIND_TRUCE = "truce"
KIND_ANNOUNCEMENT = "announcement"
GAZA_TRUCE_END = "2023-11-30"
#: The truce concerns every front that the Gaza war drives, not the Red Sea (see data/README.md).
GAZA_TRUCE_FRONTS = (*ALERT_FRONTS, *US_FORCES_FRONTS)
GAZA_TRUCE_EVENT = "Gaza truce begins"
SUSPENSION_EVENT = "Kataib Hezbollah announces suspension"
SUSPENSION_FRONTS = US_FORCES_FRONTS
HOUTHI_STRIKES_EVENT = "US-UK strikes"
STRIKE_COUNTRY_FRONTS = {"Iraq": (FRONT_IRAQ,), "Syria": (FRONT_SYRIA,), "Iraq and Syria": (FRONT_IRAQ, FRONT_SYRIA)}


# --------------------------------------------------------------------------------------------
# Building


def build_all(raw_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Build every derived file from the raw inputs.

    Parameters
    ----------
    raw_dir : str or pathlib.Path
        Folder holding the raw files named in :data:`RAW_FILES` (normally ``data/raw``).
    out_dir : str or pathlib.Path
        Folder to write the derived files to; created if missing.  Existing derived files are
        overwritten; nothing else in it is touched.

    Returns
    -------
    dict of str to pathlib.Path
        File name to written path, for each file in :data:`forecast.data.shipped.EVENT_FILES` and the interventions
        table.

    Raises
    ------
    DataValidationError
        If a raw file is missing, malformed or inconsistent (each problem located by file,
        line and column).
    """
    raw = Path(raw_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        ALERTS_FILE: build_alert_events(raw / RAW_ALERTS),
        US_FORCES_FILE: build_us_forces_events(raw / RAW_US_FORCES_COUNTS),
        RED_SEA_FILE: build_red_sea_events(raw / RAW_SHIPPING_ANCHORS),
        INTERVENTIONS_FILE: build_interventions(
            strikes_path=raw / RAW_US_STRIKES,
            key_events_path=raw / RAW_KEY_EVENTS,
            shipping_anchors_path=raw / RAW_SHIPPING_ANCHORS,
            us_forces_counts_path=raw / RAW_US_FORCES_COUNTS,
        ),
    }
    written: dict[str, Path] = {}
    for name, table in tables.items():
        path = out / name
        write_table_csv(table, path)
        logger.info("wrote %s (%d rows)", path, len(table))
        written[name] = path
    return written


def build_alert_events(path: str | Path) -> pd.DataFrame:
    """Daily alert events per front from the Harpaz alerts file.

    ``gaza`` is the sum of the five distance bands, ``lebanon_rockets`` the ``Lebanon``
    column, ``lebanon_drones`` the ``Lebanon_drone`` column.  Every day of the file gives one
    row per front, zero days included, so the observed span is explicit.  Days missing from the
    file are not invented (the file has none missing; see data/README.md).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`forecast.data.cumulative.WINDOW_COLUMNS`, ``end_date`` NaT, sorted by
        date then front (in :data:`ALERT_FRONTS` order).
    """
    table = read_raw_csv(path)
    value_columns = [*ALERT_GAZA_BANDS, ALERT_LEBANON_ROCKETS, ALERT_LEBANON_DRONES]
    require_columns(table, [n.DATE, *value_columns], "the Harpaz alerts file")
    issues: list[Issue] = []
    dates, found = parse_dates(table.frame[n.DATE], file=table.file, lines=table.lines, column=n.DATE)
    issues += found
    counts: dict[str, pd.Series] = {}
    for column in value_columns:
        counts[column], found = parse_counts(table.frame[column], file=table.file, lines=table.lines, column=column)
        issues += found
    issues += _strictly_increasing_dates(dates, table, n.DATE)
    if issues:
        raise DataValidationError(issues)
    per_front = {
        FRONT_GAZA: sum(counts[band] for band in ALERT_GAZA_BANDS),
        FRONT_LEBANON_ROCKETS: counts[ALERT_LEBANON_ROCKETS],
        FRONT_LEBANON_DRONES: counts[ALERT_LEBANON_DRONES],
    }
    day_count = len(dates)
    frame = pd.DataFrame(
        {
            n.DATE: np.repeat(dates.to_numpy(dtype="datetime64[ns]"), len(ALERT_FRONTS)),
            n.END_DATE: np.full(day_count * len(ALERT_FRONTS), np.datetime64("NaT"), dtype="datetime64[ns]"),
            n.FRONT: np.tile(np.array(ALERT_FRONTS, dtype=object), day_count),
            n.COUNT: np.column_stack([per_front[f].to_numpy(dtype=np.int64) for f in ALERT_FRONTS]).ravel(),
            n.PRECISION: n.PRECISION_EXACT,
            n.SOURCE: ALERTS_SOURCE,
        },
        columns=WINDOW_COLUMNS,
    )
    return frame


def alert_date_gaps(path: str | Path) -> list[pd.Timestamp]:
    """Days between the first and last date of the alerts file that the file does not list."""
    table = read_raw_csv(path)
    dates, issues = parse_dates(table.frame[n.DATE], file=table.file, lines=table.lines, column=n.DATE)
    if issues:
        raise DataValidationError(issues)
    every_day = pd.date_range(dates.min(), dates.max(), freq="D")
    return list(every_day.difference(pd.DatetimeIndex(dates)))


def build_us_forces_events(path: str | Path) -> pd.DataFrame:
    """Window totals of attacks on US forces from the Pentagon running count.

    Rules (data/README.md explains them):

    * a statement's window closes on its ``as_of_date`` (the day the count refers to), or on
      its ``statement_date`` where ``as_of_date`` is empty;
    * ``iraq`` and ``syria`` come from the statements that give the split, plus the
      ``no_new_attacks`` statements inside the split period, whose split is the previous one
      (an unchanged total with non-decreasing parts leaves each part unchanged);
    * ``iraq_syria`` (the total) covers only the time after the last split statement, so that
      no attack is counted on two fronts;
    * ``count_precision`` maps to canonical flags by :data:`US_FORCES_PRECISION`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`forecast.data.cumulative.WINDOW_COLUMNS`, fronts in
        :data:`US_FORCES_FRONTS` order, each in date order.

    Raises
    ------
    DataValidationError
        On malformed cells, an unknown precision flag, a split that does not add up to the
        total, or a running total that decreases (on any front).
    """
    table = read_raw_csv(path)
    require_columns(
        table,
        ["as_of_date", "statement_date", "cumulative_total", "iraq", "syria", "count_precision", "source_url"],
        "the Pentagon attack counts file",
    )
    raw, file, lines = table.frame, table.file, table.lines
    issues: list[Issue] = []
    closing_date = raw["as_of_date"].where(raw["as_of_date"] != "", raw["statement_date"])
    unknown = ~raw["count_precision"].isin(list(US_FORCES_PRECISION))
    for i in np.flatnonzero(unknown.to_numpy()):
        issues.append(
            Issue(
                file,
                int(lines[i]),
                "count_precision",
                f"unknown flag {raw['count_precision'].iloc[i]!r}; allowed: {list(US_FORCES_PRECISION)}",
            )
        )
    if issues:
        raise DataValidationError(issues)
    statements = pd.DataFrame(
        {
            "as_of_date": closing_date,
            "cumulative_total": raw["cumulative_total"],
            "iraq": raw["iraq"],
            "syria": raw["syria"],
            "count_precision": raw["count_precision"],
            "precision": raw["count_precision"].map(US_FORCES_PRECISION),
            "source_url": raw["source_url"],
            "line": lines,
        }
    )
    # The total series, all statements: validates every statement and gives iraq_syria.
    total_windows = cumulative_to_windows(
        statements,
        date_col="as_of_date",
        total_col="cumulative_total",
        front=FRONT_IRAQ_SYRIA,
        start=US_FORCES_COUNT_START,
        precision_col="precision",
        source_col="source_url",
        file=file,
        lines=lines,
    )
    has_split = (statements["iraq"] != "") & (statements["syria"] != "")
    half_split = (statements["iraq"] != "") != (statements["syria"] != "")
    for i in np.flatnonzero(half_split.to_numpy()):
        issues.append(Issue(file, int(lines[i]), "iraq, syria", "give both parts of the split or neither"))
    issues += _split_adds_up(statements, has_split, file, lines)
    if issues:
        raise DataValidationError(issues)

    split_positions = np.flatnonzero(has_split.to_numpy())
    if len(split_positions) == 0:
        raise DataValidationError(Issue(file, None, "iraq, syria", "no statement gives the Iraq/Syria split"))
    last_split = int(split_positions[-1])
    split_rows = _split_statements(statements, has_split, last_split)
    split_windows = [
        cumulative_to_windows(
            split_rows,
            date_col="as_of_date",
            total_col=front,
            front=front,
            start=US_FORCES_COUNT_START,
            precision_col="precision",
            source_col="source_url",
            file=file,
            lines=split_rows["line"].to_numpy(),
        )
        for front in (FRONT_IRAQ, FRONT_SYRIA)
    ]
    after_split = total_windows.iloc[last_split + 1 :]
    frame = pd.concat([*split_windows, after_split], ignore_index=True)
    return frame[WINDOW_COLUMNS]


def _split_statements(statements: pd.DataFrame, has_split: pd.Series, last_split: int) -> pd.DataFrame:
    """Statements that fix the Iraq/Syria split, up to the last one that gives it.

    A ``no_new_attacks`` statement inside the split period carries the previous split
    forward.  Other total-only statements there are left out (data/README.md lists them).
    """
    carried = statements.iloc[: last_split + 1].copy()
    iraq_text = carried["iraq"].where(has_split.iloc[: last_split + 1]).ffill()
    syria_text = carried["syria"].where(has_split.iloc[: last_split + 1]).ffill()
    keep = has_split.iloc[: last_split + 1] | (
        (carried["count_precision"] == NO_NEW_ATTACKS) & iraq_text.notna() & syria_text.notna()
    )
    carried["iraq"] = iraq_text
    carried["syria"] = syria_text
    return carried[keep.to_numpy()]


def _split_adds_up(statements: pd.DataFrame, has_split: pd.Series, file: str, lines: np.ndarray) -> list[Issue]:
    """Issues for split statements whose ``iraq + syria`` is not ``cumulative_total``."""
    rows = statements[has_split.to_numpy()]
    row_lines = lines[has_split.to_numpy()]
    parsed: dict[str, pd.Series] = {}
    issues: list[Issue] = []
    for column in ("iraq", "syria", "cumulative_total"):
        parsed[column], found = parse_counts(rows[column], file=file, lines=row_lines, column=column)
        issues += found
    if issues:
        return issues
    for i in np.flatnonzero((parsed["iraq"] + parsed["syria"] != parsed["cumulative_total"]).to_numpy()):
        iraq, syria, total = (int(parsed[c].iloc[i]) for c in ("iraq", "syria", "cumulative_total"))
        issues.append(
            Issue(
                file,
                int(row_lines[i]),
                "iraq, syria",
                f"iraq {iraq} + syria {syria} = {iraq + syria}, not the cumulative_total {total}",
            )
        )
    return issues


def build_red_sea_events(path: str | Path) -> pd.DataFrame:
    """Window totals of Houthi attacks on shipping from CENTCOM's running count.

    Counting starts on 2023-11-19; the anchors with a total close the windows, and rows
    without a total (dated events in the same file) are skipped.  The total on the dates in
    :data:`RED_SEA_APPROXIMATE_DATES` is approximate.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`forecast.data.cumulative.WINDOW_COLUMNS`, front ``red_sea_shipping``.
    """
    table = read_raw_csv(path)
    require_columns(table, [n.DATE, RED_SEA_TOTAL_COLUMN, "source_url"], "the Houthi shipping anchors file")
    with_total = (table.frame[RED_SEA_TOTAL_COLUMN] != "").to_numpy()
    anchors = table.frame[with_total].copy()
    anchors["precision"] = np.where(
        anchors[n.DATE].isin(RED_SEA_APPROXIMATE_DATES), n.PRECISION_APPROX, n.PRECISION_EXACT
    )
    return cumulative_to_windows(
        anchors,
        date_col=n.DATE,
        total_col=RED_SEA_TOTAL_COLUMN,
        front=FRONT_RED_SEA_SHIPPING,
        start=RED_SEA_COUNT_START,
        precision_col="precision",
        source_col="source_url",
        file=table.file,
        lines=table.lines[with_total],
    )


def build_interventions(
    *,
    strikes_path: str | Path,
    key_events_path: str | Path,
    shipping_anchors_path: str | Path,
    us_forces_counts_path: str | Path,
) -> pd.DataFrame:
    """The interventions table: US strikes, the Gaza truce, the Kataib Hezbollah suspension and
    the US-UK strikes on Houthi targets.

    A US strike names the country fronts it hit (``iraq``, ``syria``); a strike dated after the
    last Pentagon statement with an Iraq/Syria split also names ``iraq_syria``, the only front
    observed then.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INTERVENTION_CSV_COLUMNS` (dates as datetime64, ``end_date`` NaT except for
        windows; ``front`` joined by ``;``), sorted by date then kind.
    """
    rows: list[dict[str, object]] = []
    last_split = _last_split_date(us_forces_counts_path)

    strikes = read_raw_csv(strikes_path)
    require_columns(strikes, ["date_local", "country", "location", "target", "source_url"], "the US strikes file")
    dates, issues = parse_dates(
        strikes.frame["date_local"], file=strikes.file, lines=strikes.lines, column="date_local"
    )
    for i in range(len(strikes.frame)):
        record = strikes.frame.iloc[i]
        fronts = STRIKE_COUNTRY_FRONTS.get(record["country"])
        if fronts is None:
            issues.append(
                Issue(
                    strikes.file,
                    int(strikes.lines[i]),
                    "country",
                    f"unknown country {record['country']!r}; allowed: {list(STRIKE_COUNTRY_FRONTS)}",
                )
            )
            continue
        if pd.notna(dates.iloc[i]) and dates.iloc[i] > last_split:
            fronts = (*fronts, FRONT_IRAQ_SYRIA)
        rows.append(
            _intervention(
                date=dates.iloc[i],
                kind=KIND_STRIKE,
                shape=n.SHAPE_PULSE,
                fronts=fronts,
                label=f"US strike in {record['country']}, {record['location']}: {record['target']}",
                source=record["source_url"],
            )
        )
    if issues:
        raise DataValidationError(issues)

    key_events = read_raw_csv(key_events_path)
    require_columns(key_events, ["date_local", "event", "source_url"], "the key attack events file")
    key_dates = _parsed_dates(key_events, "date_local")
    truce = _single_row_position(key_events, "event", GAZA_TRUCE_EVENT)
    rows.append(
        _intervention(
            date=key_dates.iloc[truce],
            end_date=pd.Timestamp(GAZA_TRUCE_END),
            kind=KIND_TRUCE,
            shape=n.SHAPE_WINDOW,
            fronts=GAZA_TRUCE_FRONTS,
            label="Gaza truce (Israel-Hamas pause)",
            source=key_events.frame["source_url"].iloc[truce],
        )
    )
    suspension = _single_row_position(key_events, "event", SUSPENSION_EVENT)
    rows.append(
        _intervention(
            date=key_dates.iloc[suspension],
            kind=KIND_ANNOUNCEMENT,
            shape=n.SHAPE_STEP,
            fronts=SUSPENSION_FRONTS,
            label="Kataib Hezbollah announces suspension of operations against US forces",
            source=key_events.frame["source_url"].iloc[suspension],
        )
    )

    anchors = read_raw_csv(shipping_anchors_path)
    require_columns(anchors, [n.DATE, "event", "source_url"], "the Houthi shipping anchors file")
    anchor_dates = _parsed_dates(anchors, n.DATE)
    houthi_strikes = np.flatnonzero(anchors.frame["event"].str.startswith(HOUTHI_STRIKES_EVENT).to_numpy())
    if len(houthi_strikes) == 0:
        raise DataValidationError(
            Issue(anchors.file, None, "event", f"no row whose event starts with {HOUTHI_STRIKES_EVENT!r}")
        )
    for position in houthi_strikes:
        rows.append(
            _intervention(
                date=anchor_dates.iloc[position],
                kind=KIND_STRIKE,
                shape=n.SHAPE_PULSE,
                fronts=(FRONT_RED_SEA_SHIPPING,),
                label=anchors.frame["event"].iloc[position],
                source=anchors.frame["source_url"].iloc[position],
            )
        )

    frame = pd.DataFrame(rows, columns=INTERVENTION_CSV_COLUMNS)
    frame[n.DATE] = pd.to_datetime(frame[n.DATE])
    frame[n.END_DATE] = pd.to_datetime(frame[n.END_DATE])
    return frame.sort_values([n.DATE, n.KIND], kind="stable", ignore_index=True)


def _intervention(
    *,
    date: pd.Timestamp,
    kind: str,
    shape: str,
    fronts: Sequence[str],
    label: str,
    source: str,
    end_date: pd.Timestamp | None = None,
) -> dict[str, object]:
    return {
        n.DATE: date,
        n.END_DATE: pd.NaT if end_date is None else end_date,
        n.KIND: kind,
        n.SHAPE: shape,
        n.FRONT: FRONT_SEPARATOR.join(fronts),
        n.LABEL: label,
        n.SOURCE: source,
    }


def _single_row_position(table: RawTable, column: str, prefix: str) -> int:
    """Position of the one row whose ``column`` starts with ``prefix``."""
    matches = np.flatnonzero(table.frame[column].str.startswith(prefix).to_numpy())
    if len(matches) != 1:
        raise DataValidationError(
            Issue(
                table.file,
                None,
                column,
                f"expected one row whose {column} starts with {prefix!r}, found {len(matches)}",
            )
        )
    return int(matches[0])


def _parsed_dates(table: RawTable, column: str) -> pd.Series:
    dates, issues = parse_dates(table.frame[column], file=table.file, lines=table.lines, column=column)
    if issues:
        raise DataValidationError(issues)
    return dates


def _last_split_date(us_forces_counts_path: str | Path) -> pd.Timestamp:
    """End of the last Iraq/Syria split window: after it only ``iraq_syria`` is observed."""
    windows = build_us_forces_events(us_forces_counts_path)
    return pd.Timestamp(windows.loc[windows[n.FRONT] == FRONT_IRAQ, n.END_DATE].max())


def _strictly_increasing_dates(dates: pd.Series, table: RawTable, column: str) -> list[Issue]:
    issues = []
    values = dates.to_numpy(dtype="datetime64[ns]")
    for i in range(1, len(values)):
        if not values[i] > values[i - 1]:
            issues.append(
                Issue(
                    table.file,
                    int(table.lines[i]),
                    column,
                    f"dates must increase strictly: {str(values[i])[:10]} is not after {str(values[i - 1])[:10]}",
                )
            )
    return issues


# --------------------------------------------------------------------------------------------
# Writing


def write_table_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a table with ISO dates, empty cells for missing dates and ``\\n`` line endings.

    The output depends only on the frame, so rebuilding gives the same bytes.
    """
    text = frame.copy()
    for column in (n.DATE, n.END_DATE):
        if column in text:
            text[column] = text[column].dt.strftime("%Y-%m-%d").fillna("")
    text.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Command line: python -m tools.build_shipped_data


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the derived shipped files; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.build_shipped_data",
        description="Rebuild the derived example data (events and interventions) from the raw files.",
    )
    parser.add_argument("--raw", type=Path, default=None, help="folder of raw inputs (default: <data dir>/raw)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the derived files (default: <data dir>)")
    args = parser.parse_args(argv)
    out_dir = args.out if args.out is not None else shipped_data_dir()
    raw_dir = args.raw if args.raw is not None else shipped_data_dir() / "raw"
    try:
        written = build_all(raw_dir, out_dir)
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written.values():
        rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
        print(f"wrote {path} ({rows} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
