"""Slow backtest tests: real fits, and the Dask executor against local processes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.jobs import backtest as bt
from forecast.jobs.data import DataRequest
from forecast.jobs.executors import DaskExecutor, LocalProcessExecutor
from forecast.models.design import ModelOptions
from forecast.models.model import SamplerSettings

pytestmark = pytest.mark.slow

SETTINGS = SamplerSettings(sampler="pymc", draws=150, tune=150, chains=1, progressbar=False)


def simulated_events(path, *, seed=0):
    """Two fronts whose rate drops by a factor 4 on day 60 of 120, then holds (the model's structure)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    rows = []
    for front, rate in (("north", 12.0), ("south", 6.0)):
        mean = np.where(np.arange(120) < 60, rate, rate / 4)
        counts = rng.poisson(rng.gamma(10.0, mean / 10.0))
        rows += [
            {"date": d.date().isoformat(), "front": front, "count": int(c)} for d, c in zip(days, counts, strict=True)
        ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def request_for(path, **kwargs):
    values = {
        "data": DataRequest(events=(path,)),
        "options": ModelOptions(changepoints=1, interventions=False),
        "settings": SETTINGS,
        "horizon": 14,
        "min_train": 56,
    }
    values.update(kwargs)
    return bt.BacktestRequest(**values)


def test_the_true_model_beats_no_change_on_a_simulated_panel(tmp_path):
    request = request_for(
        simulated_events(tmp_path / "sim.csv"),
        origin_dates=(pd.Timestamp("2024-03-31"), pd.Timestamp("2024-04-07"), pd.Timestamp("2024-04-14")),
    )
    outcome = bt.run_backtest(request, LocalProcessExecutor(max_workers=2))
    crps = outcome.summary.skill["no_change"]["crps"]
    assert crps["value"] > 0.0, crps


def test_dask_gives_the_same_scores_as_local_processes(tmp_path):
    from distributed import Client, LocalCluster

    request = request_for(simulated_events(tmp_path / "sim.csv"), origins=2)
    local = bt.run_backtest(request, LocalProcessExecutor(max_workers=2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1") as cluster:
        with Client(cluster):
            dask = bt.run_backtest(request, DaskExecutor(cluster.scheduler_address))
    pd.testing.assert_frame_equal(local.scores, dask.scores)
    pd.testing.assert_frame_equal(local.exceedance, dask.exceedance)


def test_a_reused_compiled_sampler_gives_the_scores_of_a_fresh_compile(tmp_path, monkeypatch):
    """Serially, later origins refit the first origin's compiled nutpie sampler; one process per
    origin compiles each afresh. The scores must be identical."""
    from forecast.jobs.executors import SerialExecutor
    from forecast.models.nutpie_compile import CompiledModels

    settings = SamplerSettings(sampler="nutpie", draws=100, tune=100, chains=2, progressbar=False)
    request = request_for(simulated_events(tmp_path / "sim.csv"), origins=3, settings=settings)
    monkeypatch.setattr(bt, "COMPILED_MODELS", CompiledModels(max_entries=3))  # this process starts empty
    serial = bt.run_backtest(request, SerialExecutor())
    reused = [o["compiled_model_reused"] for o in serial.summary.origins]
    # the second origin refits the first's sampler (a later one may change the parameterisation)
    assert reused[:2] == [False, True]
    fresh = bt.run_backtest(request, LocalProcessExecutor(max_workers=3))
    assert not any(o["compiled_model_reused"] for o in fresh.summary.origins)
    pd.testing.assert_frame_equal(serial.scores, fresh.scores)
