"""Fit the whole 45-series ACLED panel once (2 x 1000 draws); write each front's posterior medians.

Usage (from the repository root): .venv/bin/python benchmarks/results/backtest/jump_mixture/fit_full_panel.py OUT.csv
Made the two full-panel-posterior-*.csv files here: the default model and prototype A.
"""

import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, "benchmarks")
from bench_dynamic import request_for  # noqa: E402

from forecast.checks.diagnostics import check_convergence  # noqa: E402
from forecast.jobs.data import load_data  # noqa: E402
from forecast.models.design import ModelOptions  # noqa: E402
from forecast.models.model import EscalationModel, SamplerSettings  # noqa: E402

with tempfile.TemporaryDirectory() as folder:
    loaded = load_data(request_for("acled", Path(folder)))
model = EscalationModel(loaded.panel, loaded.interventions, options=ModelOptions(family="dynamic", changepoints=0))
result = model.fit(SamplerSettings(draws=1000, tune=1000, progressbar=False))
print(result.timings)
print(check_convergence(result.idata).headline())
posterior = result.idata.posterior
for name in ("log_sigma_level_mu", "logit_tail_weight_mu", "log_dispersion_mu"):
    if name in posterior:
        print(name, float(posterior[name].median()))
table = pd.DataFrame(
    {v: posterior[v].median(("chain", "draw")).to_pandas() for v in ("sigma_level", "tail_weight", "dispersion")}
)
table.to_csv(sys.argv[1])
print(table.round(3).to_string())
