"""Time the rolling-origin backtest on the shipped data: NUTS against fast inference.

Runs ``forecast backtest`` twice on the same origins (NUTS, then ``--inference fast``) with
local processes and writes a JSON and a Markdown table: wall time, mean fit time per origin,
CRPS, log score, coverage and one-week skill of each, and what fast inference costs.

    python benchmarks/bench_backtest.py --origins 20 --workers 2 --out benchmarks/results/backtest
    python benchmarks/bench_backtest.py --origins 2 --draws 100 --tune 100 --fast-draws 200   # smoke run
    python benchmarks/bench_backtest.py --out DIR -- --self-excitation   # model options after --

The Markdown also says how many origins compiled the NUTS sampler and how many reused one
compiled by the same worker for an earlier origin of the same structure.

``--baselines-only`` scores the baselines and the VIEWS benchmarks alone (``--inference none``,
no model fit) on the shipped data (daily, 20 weekly origins, horizon 28 days) and on the
45-series monthly ACLED panel in ``../shared/data/`` (12 monthly origins, horizon 3 months),
the same panel without its ``end_date`` column (a month table dated on the 1st, read as month
totals), and writes ``baselines.md`` (pooled and per-front skill) and ``baselines.json`` (per method;
per front in each run's ``summary.json``); ``--tables-only`` re-writes them from those files:

    python benchmarks/bench_backtest.py --baselines-only --out benchmarks/results/backtest/baselines
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(label: str, args: list[str], out: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "forecast", "-q", "backtest", *args, "--out", str(out / label)]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / label / "summary.json").read_text())
    fits = [o.get("fit_s", 0.0) for o in summary["origins"]]
    week = summary.get("first_week") or {}
    timings = [o.get("timings_s") or {} for o in summary["origins"]]
    return {
        "command": " ".join(command[3:]),
        "compiled": sum(1 for o in summary["origins"] if o.get("compiled_model_reused") is False),
        "reused": sum(1 for o in summary["origins"] if o.get("compiled_model_reused") is True),
        "compile_s": round(sum(t.get("compile_s", 0.0) for t in timings), 1),
        "sample_s": round(sum(t.get("sample_s", 0.0) for t in timings), 1),
        "label": label,
        "wall_s": round(wall, 1),
        "mean_fit_s": round(sum(fits) / max(1, len(fits)), 1),
        "origins": len(fits),
        "model": summary["model"],
        "crps_skill_vs_no_change": summary["skill"].get("no_change", {}).get("crps"),
        "first_week": week,
    }


MONTHLY_PANEL = Path(__file__).resolve().parents[2] / "shared" / "data"
MONTHLY_FILE = "acled_monthly_political_violence_15_countries_2021_2024.csv"
BASELINE_RUNS = {
    "shipped": ["--origins", "20"],
    "acled_monthly": ["--freq", "month", "--origins", "12", "--horizon", "3"],
    "acled_monthly_table": ["--freq", "month", "--origins", "12", "--horizon", "3"],
}
REFERENCES = ("no_change", "last", "conflictology")


def run_baselines(out: Path, workers: int, monthly: Path, *, tables_only: bool = False) -> int:
    """Score the baselines alone on the shipped data and the monthly panel; write the tables."""
    results = {}
    # The same panel as a period table: one row per month dated on the 1st, without end_date
    # (the layout of most published statistics); read as month totals (--period-tables auto).
    table = out / "acled_monthly_table.csv"
    out.mkdir(parents=True, exist_ok=True)
    with monthly.open(newline="") as source, table.open("w", newline="") as target:
        rows = csv.DictReader(source)
        fields = [f for f in rows.fieldnames or [] if f != "end_date"]
        writer = csv.DictWriter(target, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    files = {"acled_monthly": os.path.relpath(monthly), "acled_monthly_table": os.path.relpath(table)}
    for label, extra in BASELINE_RUNS.items():
        data = ["--events", files[label]] if label in files else []
        command = [sys.executable, "-m", "forecast", "-q", "backtest", *data, *extra, "--inference", "none"]
        command += ["--workers", str(workers), "--out", str(out / label)]
        print("$", " ".join(command), flush=True)
        if not tables_only:
            subprocess.run(command, check=True)
        summary = json.loads((out / label / "summary.json").read_text())
        results[label] = {"command": " ".join(command[3:]), "summary": summary}
    lines = []
    for label, result in results.items():
        summary = result["summary"]
        n_origins = len(summary["origins"])
        lines += [
            f"### {label}: {n_origins} origins, horizon {summary['horizon']} {summary['freq']}(s)",
            "",
            f"`python -m forecast {result['command']}`",
            "",
            "| method | CRPS | MAE | MAE of last value | 90% coverage | "
            + " | ".join(f"pooled skill vs {r} [90% interval] (fronts better)" for r in REFERENCES)
            + " |",
            "|---|---|---|---|---|" + "---|" * len(REFERENCES),
        ]
        for method, row in summary["baselines"].items():
            pooled = summary["pooled_skill"].get(method, {})
            cells = [
                ""
                if r not in pooled
                else f"{_pct(pooled[r]['value'])} [{_interval(pooled[r].get('interval'))}] "
                f"({pooled[r]['fronts_better']}/{pooled[r]['n_fronts']})"
                for r in REFERENCES
            ]
            lines.append(
                f"| {method} | {_num(row['crps'])} | {_num(row['mae'])} | {_num(row['mae_last_value'])} | "
                f"{_num(row['coverage_90'])} | " + " | ".join(cells) + " |"
            )
        methods = list(summary["baselines"])
        lines += [
            "",
            "CRPS skill per front against no_change (1 - CRPS / CRPS of no_change); last column: MAE of the last value",
            "",
            "| front | " + " | ".join(m for m in methods if m != "no_change") + " | no_change CRPS | MAE last value |",
            "|---|" + "---|" * (len(methods) + 1),
        ]
        for front, row in summary["by_front"].items():
            cells = [
                _pct(summary["skill_by_front"].get(m, {}).get("no_change", {}).get(front))
                for m in methods
                if m != "no_change"
            ]
            base = row.get("no_change", {})
            lines.append(
                f"| {front} | "
                + " | ".join(cells)
                + f" | {_num(base.get('crps'))} | {_num(base.get('mae_last_value'))} |"
            )
        lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    tables = {label: {k: r["summary"][k] for k in ("baselines", "pooled_skill")} for label, r in results.items()}
    for label, r in results.items():
        tables[label]["command"] = r["command"]
    (out / "baselines.json").write_text(json.dumps(tables, indent=2) + "\n", encoding="utf-8")
    (out / "baselines.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _interval(bounds: list[float | None] | None) -> str:
    return "n/a" if not bounds else f"{_pct(bounds[0])}, {_pct(bounds[1])}".replace("%", "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--origins", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sampler", default="nutpie")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--fast-draws", type=int, default=1000)
    parser.add_argument("--skip-nuts", action="store_true")
    parser.add_argument("--baselines-only", action="store_true", help="score the baselines alone (see above)")
    parser.add_argument("--tables-only", action="store_true", help="with --baselines-only: re-write the tables only")
    parser.add_argument("--monthly", type=Path, default=MONTHLY_PANEL / MONTHLY_FILE, help="the monthly panel")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backtest"))
    parser.add_argument("model_args", nargs="*", help="model options for forecast backtest, after --")
    args = parser.parse_args()
    if args.baselines_only:
        return run_baselines(args.out, args.workers, args.monthly, tables_only=args.tables_only)
    common = ["--origins", str(args.origins), "--workers", str(args.workers), *args.model_args]
    results = []
    if not args.skip_nuts:
        nuts = ["--inference", "nuts", "--sampler", args.sampler, "--draws", str(args.draws), "--tune", str(args.tune)]
        results.append(run("nuts", common + nuts, args.out))
    results.append(run("fast", common + ["--inference", "fast", "--fast-draws", str(args.fast_draws)], args.out))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_backtest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        "| inference | origins | wall s | mean fit s | CRPS | log score | cov 50 | cov 90 "
        "| 1-week CRPS skill vs no-change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["model"] or {}
        skill = (r["first_week"] or {}).get("crps_skill_vs_no_change", {})
        lines.append(
            f"| {r['label']} | {r['origins']} | {r['wall_s']} | {r['mean_fit_s']} | {m.get('crps')} | "
            f"{m.get('log_score')} | {m.get('coverage_50')} | {m.get('coverage_90')} | {skill.get('value')} "
            f"{skill.get('interval')} |"
        )
    lines.append("")
    for r in results:
        if r["compiled"] or r["reused"]:
            lines.append(
                f"{r['label']}: the sampler was compiled for {r['compiled']} origin(s) and reused for {r['reused']} "
                f"(compile {r['compile_s']} s and sampling {r['sample_s']} s in all, summed over workers)"
            )
    lines.extend(f"- `python -m forecast {r['command']}`" for r in results)
    if len(results) == 2:
        nuts_r, fast_r = results
        lines.append("")
        lines.append(
            f"fast inference: {nuts_r['wall_s'] / max(fast_r['wall_s'], 1e-9):.2f}x faster in wall time; CRPS "
            f"{fast_r['model']['crps']} vs {nuts_r['model']['crps']} with NUTS on the same origins"
        )
    (args.out / "bench_backtest.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
