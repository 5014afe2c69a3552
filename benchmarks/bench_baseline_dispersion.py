"""Ablation: the baselines with the old dispersion fit against the robust, local one (issue 15).

Before issue 15 each baseline's negative binomial dispersion was fitted by plain maximum
likelihood over the whole training window.  This script scores the baselines both ways on
the same origins as ``bench_backtest.py --baselines-only`` (shipped data: 20 daily-grid
origins, horizon 28 days; the 45-series ACLED monthly panel: 12 origins, horizon 3), by
substituting the old fit (``fit_dispersion`` for ``fit_dispersion_robust``, and no ``recent``
limit) in this process only.  The means of the forecasts are the same both ways; only the
spread differs.

    python benchmarks/bench_baseline_dispersion.py --out benchmarks/results/backtest/baselines
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from forecast.evaluation import backtest_scores, baselines
from forecast.jobs import backtest as bt
from forecast.jobs.data import DataRequest
from forecast.jobs.executors import SerialExecutor

MONTHLY = Path(__file__).resolve().parents[2] / "shared" / "data"
MONTHLY_FILE = "acled_monthly_political_violence_15_countries_2021_2024.csv"
METHODS = ("no_change", "moving_average", "seasonal_naive", "constant_rate")
KEYS = ("crps", "log_score", "coverage_50", "coverage_90")


def score(data: DataRequest, **kwargs: int) -> dict[str, dict[str, float]]:
    outcome = bt.run_backtest(bt.BacktestRequest(data=data, inference="none", **kwargs), SerialExecutor())
    rows = outcome.summary.baselines
    return {m: {k: rows[m][k] for k in KEYS} for m in METHODS if m in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--monthly", type=Path, default=MONTHLY / MONTHLY_FILE)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backtest/baselines"))
    args = parser.parse_args()
    runs = {
        "shipped": (DataRequest(), {"origins": 20}),
        "acled_monthly": (DataRequest(events=(args.monthly,), freq="month"), {"origins": 12, "horizon": 3}),
    }
    robust = {label: score(data, **kw) for label, (data, kw) in runs.items()}
    baselines.fit_dispersion_robust = baselines.fit_dispersion  # the fit before issue 15 ...
    backtest_scores.RECENT_PERIODS = dict.fromkeys(backtest_scores.RECENT_PERIODS)  # ... over the whole training window
    plain = {label: score(data, **kw) for label, (data, kw) in runs.items()}
    result = {label: {"robust_local": robust[label], "whole_window_ml": plain[label]} for label in runs}
    lines = [
        "| data | baseline | CRPS ML -> robust | log score ML -> robust | 90% coverage ML -> robust |",
        "|---|---|---|---|---|",
    ]
    for label in runs:
        for method, new in robust[label].items():
            old = plain[label][method]
            lines.append(
                f"| {label} | {method} | {old['crps']:.3f} -> {new['crps']:.3f} | "
                f"{old['log_score']:.3f} -> {new['log_score']:.3f} | "
                f"{old['coverage_90']:.3f} -> {new['coverage_90']:.3f} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dispersion_ablation.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "dispersion_ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
