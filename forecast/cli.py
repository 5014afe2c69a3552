"""The ``forecast`` command line: a thin shell over :mod:`forecast.jobs`.

Exit codes: 0 success, 1 an error in the input or the run, 2 a usage error, 70 an unexpected
error (a bug: the traceback is printed).

Only the toolkit's own errors (:class:`~forecast.errors.ForecastError`) and a missing file are
reported as the user's error; any other exception is a bug and is never dressed up as one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pandas as pd

from forecast import __version__
from forecast import names as n
from forecast.artefacts import (
    BACKTEST_PAGE_FILE,
    FIGURES_FOLDER,
    FIT_FILE,
    INDICATORS_FILE,
    REPORT_HTML_FILE,
    REPORT_MARKDOWN_FILE,
    SCORES_FILE,
    SUMMARY_FILE,
)
from forecast.errors import ForecastError, OptionError

if TYPE_CHECKING:  # the jobs are imported when a command runs, keeping --help fast
    from forecast.jobs.data import DataRequest
    from forecast.jobs.fit import FitRequest

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
#: An unexpected exception: a bug, not the user's error (``EX_SOFTWARE`` of sysexits.h).
EXIT_INTERNAL = 70

log = logging.getLogger("forecast")


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d"))
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from exc


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _reader_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading events")
    group.add_argument("files", nargs="*", type=Path, metavar="FILE", help="event files (default: the shipped data)")
    group.add_argument("--interventions", type=Path, help="interventions CSV (default: shipped, with shipped events)")
    group.add_argument("--format", choices=n.FORMATS, default=n.FORMAT_AUTO, help="input layout (default: auto)")
    group.add_argument(
        "--by",
        help="column that defines the front (ACLED: country, admin1, actor1, event_type; "
        "UCDP: country, adm_1, side_a, side_b, dyad_name, conflict_name, type_of_violence)",
    )
    group.add_argument("--country", type=_list, action="extend", default=[], help="keep these countries (comma list)")
    group.add_argument("--event-type", type=_list, action="extend", default=[], help="keep these event types")
    group.add_argument("--sub-event-type", type=_list, action="extend", default=[], help="keep these sub-event types")
    group.add_argument(
        "--actor",
        type=_list,
        action="extend",
        default=[],
        help="keep rows whose actor columns contain one of these (case-insensitive)",
    )
    group.add_argument("--measure", choices=["events", "deaths"], default="events", help="count events or deaths")
    group.add_argument("--freq", choices=n.FREQS, default=n.FREQ_DAY, help="grid frequency (default: day)")
    group.add_argument("--as-of", type=_date, help="last date used, YYYY-MM-DD (default: the latest date in the data)")
    group.add_argument("--start", type=_date, help="first date used (default: the earliest date in the data)")
    _panel_reading_options(group)


def _panel_reading_options(group: argparse._ArgumentGroup) -> None:
    """How rows become a panel: period tables, uncertain dates, empty fronts (forecast/data/panel.py)."""
    group.add_argument(
        "--period-tables",
        choices=["auto", "yes", "no"],
        default="auto",
        help="read a front whose rows all fall on --freq period starts (no end_date) as period totals: auto "
        "(default), yes (every front without end dates), no (one-day events)",
    )
    group.add_argument(
        "--uncertain-dates",
        choices=["start", "middle", "drop"],
        default="middle",
        help="an event whose uncertain date span (UCDP date_start..date_end, ACLED time_precision 2/3) crosses "
        "a period boundary goes on its span's start or middle (default), or is dropped and counted",
    )
    group.add_argument(
        "--strict-fronts", action="store_true", help="an empty --by value is an error (default: front 'unknown')"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecast",
        description="Bayesian forecasts and escalation indicators from attack and strike counts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = commands.add_parser("data", help="check and aggregate event data")
    data_commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    check = data_commands.add_parser("check", help="validate event files and summarise them")
    _reader_options(check)
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    panel = data_commands.add_parser("panel", help="aggregate event files to a panel CSV")
    _reader_options(panel)
    panel.add_argument(
        "--out", type=Path, required=True, help="output CSV (columns date,front,count,end_date,precision)"
    )

    fit = commands.add_parser("fit", help="fit the model (dynamic by default, or --model changepoint) and save it")
    _fit_options(fit)
    fit.add_argument("--out", type=Path, required=True, help=f"folder for {FIT_FILE} and {SUMMARY_FILE}")

    check = commands.add_parser("check", help="diagnostics, predictive checks and LOO for a saved fit")
    check.add_argument("fit_dir", type=Path, metavar="DIR", help="a folder written by 'forecast fit'")
    check.add_argument(
        "--compare-variants",
        action="store_true",
        help="also fit variants (no changepoint, K+1 changepoints, no interventions, self-excitation) "
        "with the same settings and compare them by PSIS-LOO",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    report = commands.add_parser(
        "report",
        help=f"fit, forecast and write the weekly report (HTML, Markdown, {INDICATORS_FILE}, {FIT_FILE})",
        description=f"Fit the model to the data, forecast the horizon and write {REPORT_HTML_FILE}, "
        f"{REPORT_MARKDOWN_FILE} (with {FIGURES_FOLDER}/), {INDICATORS_FILE} and {FIT_FILE} into DIR. "
        "--as-of defaults to the last date in the data (not today): the report describes the data it was given.",
    )
    _fit_options(report)
    report.add_argument(
        "--out", type=Path, help="output folder (default: reports/<as_of>; earlier reports are looked up beside it)"
    )
    report.add_argument(
        "--horizon",
        type=int,
        metavar="N",
        help="forecast steps of the grid: days, 7-day blocks for --freq week, calendar months or years for "
        "--freq month or year (default: 28 days, 4 weeks, 1 month or 1 year)",
    )
    report.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="SPEC",
        help="a hypothetical intervention forecast beside the baseline: KIND@DATE (pulse), KIND@START..END "
        "(window), optionally :FRONT1,FRONT2 (e.g. strike@2024-05-20, truce@2024-05-20..2024-05-27:gaza); "
        "repeatable, all together form one scenario; KIND must be a kind estimated in the fit",
    )
    report.add_argument(
        "--previous",
        type=Path,
        metavar="PATH",
        help="the previous report to compare with (its folder or indicators.json; default: the latest earlier "
        "YYYY-MM-DD folder beside the output folder)",
    )

    backtest = commands.add_parser(
        "backtest",
        help="rolling-origin backtest of the model against baselines (CRPS, log score, PIT, coverage, Brier)",
    )
    _fit_options(backtest)
    _backtest_options(backtest)

    from forecast.cli_alert import add_alert_parser  # light: the alert path imports no PyMC

    add_alert_parser(commands)
    return parser


def _fit_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that fits the model."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--events",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="event file (repeatable; default: the shipped data)",
    )
    group.add_argument("--interventions", type=Path, help="interventions CSV (default: shipped, with shipped events)")
    group.add_argument("--format", choices=n.FORMATS, default=n.FORMAT_AUTO, help="input layout (default: auto)")
    group.add_argument("--by", help="column that defines the front (ACLED/UCDP)")
    group.add_argument("--country", type=_list, action="extend", default=[], help="keep these countries")
    group.add_argument("--event-type", type=_list, action="extend", default=[], help="keep these event types")
    group.add_argument("--sub-event-type", type=_list, action="extend", default=[], help="keep these sub-event types")
    group.add_argument("--actor", type=_list, action="extend", default=[], help="keep rows whose actors match")
    group.add_argument("--measure", choices=["events", "deaths"], default="events", help="count events or deaths")
    group.add_argument("--freq", choices=n.FREQS, default=n.FREQ_DAY, help="grid frequency (default: day)")
    group.add_argument("--as-of", type=_date, help="last date used (default: the latest date in the data)")
    group.add_argument("--start", type=_date, help="first date used (default: the earliest date in the data)")
    _panel_reading_options(group)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        choices=["changepoint", "dynamic"],
        default=None,
        help=(
            "model family (default dynamic: a moving level with heavy-tailed steps and reverting bursts; "
            "changepoint: flat regimes between K changepoints, see README)"
        ),
    )
    model.add_argument(
        "--priors",
        type=Path,
        help="prior file (default: the code defaults, priors/dynamic.yaml; changepoint: priors/default.yaml)",
    )
    model.add_argument(
        "--changepoints",
        type=int,
        default=None,
        metavar="K",
        help="changepoints per front, with --model changepoint (default 1; the dynamic model has none)",
    )
    model.add_argument("--no-interventions", action="store_true", help="leave intervention effects out")
    model.add_argument("--likelihood", choices=["negative_binomial", "poisson"], default="negative_binomial")
    model.add_argument("--seasonality", action="store_true", help="day-of-week (daily) or month-of-year effects")
    model.add_argument(
        "--self-excitation", action="store_true", help="recent counts raise the rate (--model changepoint)"
    )
    model.add_argument(
        "--excitation-half-life",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="half-life of the self-excitation kernel in days (default 7)",
    )
    model.add_argument(
        "--trend",
        action="store_true",
        help="a log-linear trend per front, carried into forecasts (--model changepoint)",
    )
    model.add_argument("--parameterization", choices=["auto", "centered", "non_centered"], default="auto")
    model.add_argument("--min-regime-days", type=int, default=7, help="days kept before/after changepoints (default 7)")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--sampler", choices=["nutpie", "pymc", "numpyro"], default="nutpie")
    sampling.add_argument(
        "--draws",
        type=int,
        default=None,
        help="draws per chain (default 1000 for the changepoint model, 4000 for the dynamic)",
    )
    sampling.add_argument(
        "--tune",
        type=int,
        default=None,
        help="tuning iterations per chain (default 1000 for the changepoint model, 500 for the dynamic)",
    )
    sampling.add_argument("--chains", type=int, default=2)
    sampling.add_argument("--target-accept", type=float, default=0.95)
    sampling.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def _request(args: argparse.Namespace, files: list[Path] | None = None) -> DataRequest:
    from forecast.data.options import SelectOptions
    from forecast.jobs.data import DataRequest

    options = SelectOptions(
        by=args.by,
        countries=tuple(args.country),
        event_types=tuple(args.event_type),
        sub_event_types=tuple(args.sub_event_type),
        actors=tuple(args.actor),
        measure=args.measure,
        strict_fronts=getattr(args, "strict_fronts", False),
    )
    return DataRequest(
        events=tuple(args.files if files is None else files),
        interventions=args.interventions,
        format=args.format,
        options=options,
        freq=args.freq,
        as_of=args.as_of,
        start=args.start,
        period_tables=getattr(args, "period_tables", "auto"),
        uncertain_dates=getattr(args, "uncertain_dates", "middle"),
    )


def _data_check(args: argparse.Namespace) -> int:
    from forecast.jobs.data import check_data, format_check

    result = check_data(_request(args))
    print(json.dumps(result, indent=2) if args.json else format_check(result))
    return EXIT_ERROR if result["errors"] else EXIT_OK


def _data_panel(args: argparse.Namespace) -> int:
    from forecast.jobs.data import write_panel

    panel = write_panel(_request(args), args.out)
    for issue in panel.warnings:
        log.warning("%s", issue)
    print(f"wrote {args.out} ({len(panel.observations)} rows, {len(panel.fronts)} fronts, freq {panel.freq})")
    return EXIT_OK


#: The default model family (``--model``), and the options that belong to the changepoint model only.
DEFAULT_MODEL = "dynamic"
CHANGEPOINT_ONLY = {
    "changepoints": "--changepoints",
    "trend": "--trend",
    "self_excitation": "--self-excitation",
    "likelihood": "--likelihood poisson",
}


def _model_family(args: argparse.Namespace) -> str:
    """``--model``, or the default; a changepoint model's option without ``--model`` is an error.

    The default became the dynamic model (issue #14's benchmarks, README).  A command line written
    for the changepoint model (``--changepoints 2``, ``--trend``) is not silently refitted with
    another model, nor silently switched to the changepoint model: it is told to say which.
    """
    if args.model is not None:
        return str(args.model)
    given = [
        flag
        for name, flag in CHANGEPOINT_ONLY.items()
        if getattr(args, name, None) not in (None, False, "negative_binomial")
    ]
    if given:
        raise OptionError(
            f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to the changepoint model: "
            f"add --model changepoint (the default model is {DEFAULT_MODEL}, which has none of them)"
        )
    return DEFAULT_MODEL


def _fit_request(args: argparse.Namespace) -> FitRequest:
    from forecast.jobs.fit import FitRequest
    from forecast.models.design import ModelOptions
    from forecast.models.model import DEFAULT_DRAWS, DEFAULT_TUNE, SamplerSettings

    family = _model_family(args)
    default_changepoints = 0 if family == "dynamic" else 1
    options = ModelOptions(
        family=family,
        changepoints=default_changepoints if args.changepoints is None else args.changepoints,
        interventions=not args.no_interventions,
        likelihood=args.likelihood,
        seasonality=args.seasonality,
        self_excitation=args.self_excitation,
        excitation_half_life=args.excitation_half_life,
        trend=args.trend,
        parameterization=args.parameterization,
        min_regime_days=args.min_regime_days,
    )
    settings = SamplerSettings(
        sampler=args.sampler,
        draws=DEFAULT_DRAWS[family] if args.draws is None else args.draws,
        tune=DEFAULT_TUNE[family] if args.tune is None else args.tune,
        chains=args.chains,
        target_accept=args.target_accept,
        random_seed=args.seed,
        progressbar=not args.quiet,
    )
    return FitRequest(data=_request(args, files=args.events), priors=args.priors, options=options, settings=settings)


def _fit(args: argparse.Namespace) -> int:
    from forecast.jobs.fit import run_fit, write_fit

    outcome = run_fit(_fit_request(args))
    paths = write_fit(outcome, args.out)
    print(outcome.diagnostics.headline())
    print(f"wrote {paths['fit']} and {paths['summary']}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from forecast.jobs.check import check_saved_fit, format_check_report

    report = check_saved_fit(args.fit_dir, compare_variants=args.compare_variants)
    print(json.dumps(report, indent=2) if args.json else format_check_report(report))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from forecast.jobs.report import ReportRequest, parse_scenario, run_report

    request = ReportRequest(
        fit=_fit_request(args),
        out=args.out,
        horizon=args.horizon,
        scenarios=tuple(parse_scenario(text) for text in args.scenario),
        previous=args.previous,
    )
    outcome = run_report(request)
    print(outcome.headline[0])
    print(f"report written to {outcome.paths['html']}")
    print(
        f"  also {outcome.paths['markdown']} (figures in {outcome.out / FIGURES_FOLDER}), {outcome.paths['indicators']}"
    )
    print(f"  and the fit: {outcome.paths['fit']}")
    return EXIT_OK


def _backtest_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backtest")
    group.add_argument("--horizon", type=int, help="periods forecast from each origin (default 28 days / 4 weeks)")
    origins = group.add_mutually_exclusive_group()
    origins.add_argument("--origins", type=int, help="number of weekly origins (default: as many as fit, up to 20)")
    origins.add_argument(
        "--origin-dates", type=lambda text: [_date(d) for d in _list(text)], help="origins D1,D2,... (period ends)"
    )
    group.add_argument("--min-train", type=int, help="training periods before the first origin (default 8 weeks)")
    group.add_argument(
        "--inference",
        choices=["nuts", "fast", "none"],
        default="nuts",
        help="nuts (the --sampler options), fast (ADVI, see forecast/models/fast.py) or none (baselines only)",
    )
    group.add_argument("--fast-method", choices=["advi", "pathfinder"], default="advi", help="with --inference fast")
    group.add_argument("--fast-draws", type=int, default=1000, help="draws kept with --inference fast")
    group.add_argument("--scheduler", metavar="ADDRESS", help="run origins on the Dask cluster at ADDRESS")
    group.add_argument("--workers", type=int, help="local worker processes (default 2)")
    group.add_argument(
        "--out", type=Path, required=True, help=f"folder for {SCORES_FILE}, {SUMMARY_FILE}, {BACKTEST_PAGE_FILE}"
    )


def _backtest(args: argparse.Namespace) -> int:
    from forecast.jobs.backtest import BacktestRequest, run_backtest, write_backtest
    from forecast.jobs.executors import make_executor

    fit = _fit_request(args)
    request = BacktestRequest(
        data=fit.data,
        priors=fit.priors,
        options=fit.options,
        settings=fit.settings,
        inference=args.inference,
        fast_method=args.fast_method,
        fast_draws=args.fast_draws,
        horizon=args.horizon,
        origins=args.origins,
        origin_dates=tuple(args.origin_dates or ()),
        min_train=args.min_train,
    )
    outcome = run_backtest(request, make_executor(args.scheduler, max_workers=args.workers))
    paths = write_backtest(outcome, args.out)
    from forecast.jobs.backtest_page import headline

    print(headline(outcome.summary.to_dict())[0])
    from forecast.evaluation.backtest_summary import summary_lines

    print("\n".join(summary_lines(outcome.summary.to_dict())))
    print(f"wrote {paths['scores']}, {paths['summary']} and {paths['page']}")
    return EXIT_OK


def _alert(args: argparse.Namespace) -> int:
    from forecast.cli_alert import run_alert_command

    # The command line is the only place that reads the clock: --as-of defaults to today.
    return run_alert_command(args, today=datetime.date.today())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    handlers = {
        ("data", "check"): _data_check,
        ("data", "panel"): _data_panel,
        ("fit", None): _fit,
        ("check", None): _check,
        ("alert", None): _alert,
        ("report", None): _report,
        ("backtest", None): _backtest,
    }
    handler = handlers.get((args.command, getattr(args, "data_command", None)))
    if handler is None:
        parser.print_help()
        return EXIT_USAGE if args.command else EXIT_OK
    try:
        return handler(args)
    except (ForecastError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    # Anything else is a bug: it propagates, with its traceback.


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The process entry (the ``forecast`` script, ``python -m forecast``): exit with :func:`main`'s code.

    An exception that :func:`main` lets through is a bug: its traceback is printed and the exit
    code is :data:`EXIT_INTERNAL`, so that a script or scheduler can tell it from bad input.
    """
    try:
        code = main(argv)
    except Exception:
        traceback.print_exc()
        print("internal error: the traceback above is a bug in forecast, not a problem with the input", file=sys.stderr)
        code = EXIT_INTERNAL
    sys.exit(code)


if __name__ == "__main__":
    run()
