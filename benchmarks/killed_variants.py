"""Write two variants of the ``killed`` benchmark table, each testing one explanation of the Gaza loss.

On 360info's daily deaths (``bench_dynamic_backtest.py --data killed``) the dynamic model's one-day
forecast of Gaza loses to the 7-day moving average.  Each variant changes the table in one way
and is backtested as the original was (``benchmarks/results/backtest/daily_gaza/README.md``):

* ``--start-later DAYS``: the same windows from ``DAYS`` days later.  On a daily grid the level
  steps once a week, counted from the data's first day, so this moves where in its week each
  origin falls (the original's origins fall on a week's first day, whose level then rests on
  that one day's count).
* ``--merge-no-report FRONT``: a day with no death on ``FRONT`` after more than 10 the day
  before is read as a day without a report.  It merges with the next day into one two-day window
  holding the next day's count (the running total did not move, then caught up).  Nothing is
  dropped: the counts add up to the same total.

The output goes to ``--out`` (a CSV in the format ``forecast backtest --events`` reads)::

    .venv/bin/python benchmarks/killed_variants.py --start-later 3 --out /tmp/killed-start3.csv
    .venv/bin/python benchmarks/killed_variants.py --merge-no-report gaza_killed --out /tmp/killed-merged.csv
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from bench_dynamic_backtest import killed_windows

#: A day with no death after more than this many the day before reads as a day without a report.
NO_REPORT_AFTER = 10


def start_later(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    """The windows that start ``days`` or more days after the table's first day."""
    first = pd.to_datetime(frame["date"]).min()
    return frame[pd.to_datetime(frame["date"]) >= first + pd.Timedelta(days=days)]


def merge_no_report(frame: pd.DataFrame, front: str) -> pd.DataFrame:
    """``front``'s one-day windows with no death after more than :data:`NO_REPORT_AFTER`, merged with the next."""
    if front not in set(frame["front"]):
        raise SystemExit(f"no front {front!r}: {sorted(set(frame['front']))}")
    rows = frame[frame["front"] == front].reset_index(drop=True)
    kept, skip = [], False
    for i, row in rows.iterrows():
        if skip:
            skip = False
            continue
        row = row.copy()
        no_report = (
            row["count"] == 0
            and row["date"] == row["end_date"]
            and 0 < i < len(rows) - 1
            and rows.at[i - 1, "count"] > NO_REPORT_AFTER
        )
        if no_report:
            row["end_date"] = rows.at[i + 1, "end_date"]
            row["count"] = rows.at[i + 1, "count"]
            skip = True
        kept.append(row)
    parts = [frame[frame["front"] != front], pd.DataFrame(kept)]
    merged = pd.concat(parts, ignore_index=True)
    if merged["count"].sum() != frame["count"].sum():
        raise AssertionError("merging changed the total")
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    change = parser.add_mutually_exclusive_group(required=True)
    change.add_argument("--start-later", type=int, metavar="DAYS")
    change.add_argument("--merge-no-report", metavar="FRONT")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.start_later is not None and args.start_later < 1:
        parser.error("--start-later takes a positive number of days")
    with tempfile.TemporaryDirectory() as folder:
        frame = pd.read_csv(killed_windows(Path(folder)))
    variant = start_later(frame, args.start_later) if args.start_later else merge_no_report(frame, args.merge_no_report)
    variant.to_csv(args.out, index=False)
    changed = len(frame) - len(variant)
    print(f"{args.out}: {len(variant)} windows ({changed} fewer than the {len(frame)} of the original)")


if __name__ == "__main__":
    main()
