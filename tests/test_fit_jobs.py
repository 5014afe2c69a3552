"""The fit and check jobs end to end on a fake posterior (prior draws): no MCMC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forecast.cli import main
from forecast.jobs.check import check_saved_fit, format_check_report, variants
from forecast.jobs.data import DataRequest, load_data
from forecast.jobs.fit import FitRequest, complete_fit, summary_document, write_fit
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel, SamplerSettings
from tests.fakes import prior_fit_result


@pytest.fixture(scope="module")
def fake_fit_dir(tmp_path_factory):
    request = FitRequest(settings=SamplerSettings(draws=40, tune=1, chains=2, progressbar=False))
    loaded = load_data(DataRequest())
    model = EscalationModel(loaded.panel, loaded.interventions)
    result = prior_fit_result(model, request.settings)
    outcome = complete_fit(request, loaded, model, result)
    folder = tmp_path_factory.mktemp("fit")
    write_fit(outcome, folder)
    return folder, outcome


def test_summary_json_has_the_documented_fields(fake_fit_dir):
    folder, _ = fake_fit_dir
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["diagnostics"]) >= {"ok", "rhat_max", "ess_bulk_min", "divergences"}
    assert summary["headline"].startswith("FIT FAILED ITS CHECKS"), "prior draws are not a converged posterior"
    fronts = {f["front"]: f for f in summary["fronts"]}
    change = fronts["iraq_syria"]["changepoints"][0]
    assert set(change) >= {"mode_date", "interval_dates", "jump_rate_ratio"}
    assert set(change["jump_rate_ratio"]) == {"mean", "low", "high"}
    truce = next(i for i in fronts["gaza"]["interventions"] if i["kind"] == "truce")
    assert set(truce) >= {"rate_ratio", "half_life_days", "p_effect_below_1"}
    strike = next(i for i in fronts["iraq"]["interventions"] if i["shape"] == "pulse")
    assert set(strike["half_life_days"]) == {"mean", "low", "high"}
    pairs = summary["close_interventions"]
    assert any("suspension" in p["first"] and "7 facilities" in p["second"] for p in pairs), (
        "the Kataib Hezbollah suspension and the 2 February strikes must be reported jointly"
    )


def test_check_reloads_the_fit_and_writes_plots(fake_fit_dir):
    folder, outcome = fake_fit_dir
    report = check_saved_fit(folder)
    assert report["headline"] == outcome.diagnostics.headline()
    assert set(report["plots"]) == {"predictive_bands", "pit_histogram", "rootogram"}
    for path in map(Path, report["plots"].values()):
        assert path.parent == folder / "checks" and path.suffix == ".png"
        assert path.read_bytes().startswith(b"\x89PNG"), f"{path} is not a PNG image"
    text = format_check_report(report)
    assert "Posterior predictive checks" in text


def test_check_refuses_a_fit_whose_data_changed(fake_fit_dir, tmp_path, monkeypatch):
    folder, _ = fake_fit_dir
    from forecast.errors import FitMismatchError
    from forecast.jobs import check as check_job

    real = check_job.load_data

    def shifted(request):  # the same files read with one day less
        return real(
            DataRequest(**{**request.__dict__, "as_of": request.as_of - __import__("pandas").Timedelta(days=1)})
        )

    monkeypatch.setattr(check_job, "load_data", shifted)
    with pytest.raises(FitMismatchError, match="data_hash"):
        check_saved_fit(folder)


def test_variants_for_loo_differ_from_the_fit():
    base = ModelOptions()
    found = variants(base)
    assert base not in found.values()
    assert {"K=0, interventions", "K=2, interventions", "K=1, no interventions"} <= set(found)


def test_variants_of_a_dynamic_fit_are_models_it_can_be_compared_with():
    base = ModelOptions(family="dynamic", changepoints=0)
    found = variants(base)
    assert found == {
        "dynamic, no interventions": ModelOptions(family="dynamic", changepoints=0, interventions=False),
        "K=1, interventions": ModelOptions(family="changepoint", changepoints=1),
    }


def test_summary_document_is_json_safe(fake_fit_dir):
    _, outcome = fake_fit_dir
    json.dumps(summary_document(outcome), allow_nan=False)


def test_fit_command_line_offers_the_documented_options(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--events",
        "--interventions",
        "--freq",
        "--as-of",
        "--priors",
        "--changepoints",
        "--draws",
        "--tune",
        "--chains",
        "--seed",
        "--sampler",
        "--out",
    ):
        assert option in out


def test_forecast_draws_are_saved_for_the_alert_job(fake_fit_dir):
    import numpy as np

    folder, outcome = fake_fit_dir
    saved = np.load(folder / "forecast_draws.npz")
    assert list(saved["fronts"]) == list(outcome.model.design.fronts)
    assert saved["dates"][0] == "2024-05-17" and len(saved["dates"]) == 28
    assert saved["draws"].shape == (80, len(saved["fronts"]), 28)
    assert str(saved["as_of"]) == "2024-05-16"
    assert (saved["draws"] >= 0).all()


def test_two_close_interventions_count_as_separable_only_when_each_effect_is_decisive():
    import numpy as np

    from forecast.models.summary import _separable

    rng = np.random.default_rng(0)
    clear_a, clear_b = rng.normal(-1.0, 0.2, 4000), rng.normal(0.8, 0.2, 4000)
    vague_a, vague_b = rng.normal(-0.3, 1.0, 4000), rng.normal(0.0, 1.0, 4000)
    assert _separable(float(np.corrcoef(clear_a, clear_b)[0, 1]), clear_a, clear_b)
    assert not _separable(float(np.corrcoef(vague_a, vague_b)[0, 1]), vague_a, vague_b)
    traded = rng.normal(-0.8, 0.3, 4000)
    assert not _separable(-0.9, traded, -traded - 1.6)


def test_a_fit_without_as_of_records_the_as_of_it_used(fake_fit_dir):
    """``as_of`` is resolved once (the data's last day here) and always recorded in fit.nc."""
    import pandas as pd

    from forecast.fits import load_fit

    folder, outcome = fake_fit_dir
    assert outcome.loaded.as_of == outcome.model.panel.end == pd.Timestamp("2024-05-16")
    assert outcome.provenance.as_of == "2024-05-16"
    assert load_fit(folder / "fit.nc")[1].as_of == "2024-05-16"
