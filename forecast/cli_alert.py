"""The ``alert`` command of the command line: its options and the exit code of a run.

``forecast alert`` (:mod:`forecast.cli`) and ``python -m forecast.jobs.alert`` (:func:`main`,
the command on its own) share these options; the work is :mod:`forecast.jobs.alert`'s.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from datetime import date as Date
from pathlib import Path
from typing import Any, TextIO

from forecast import names as n
from forecast.errors import ForecastError
from forecast.jobs.alert import (
    DEFAULT_STATE_FILE,
    DRAWS_FILE,
    EXIT_ALERT,
    EXIT_ERROR,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    AlertRequest,
    load_known_changes,
    replay_alerts,
    run_alert_job,
)
from forecast.jobs.notify import alert_line

log = logging.getLogger(__name__)

__all__ = ["add_alert_parser", "main", "run_alert_command"]

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
