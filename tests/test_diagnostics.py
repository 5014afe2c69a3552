"""Sampler diagnostics on small fake posteriors made with ``az.from_dict`` (no sampling)."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pytest

from forecast.checks.diagnostics import ConvergenceThresholds, Diagnostics, bfmi, check_convergence

FRONTS = ["iraq", "syria"]
CHAINS, DRAWS = 4, 500


def fake_fit(posterior: dict[str, np.ndarray], **sample_stats: np.ndarray) -> az.InferenceData:
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats or None,
        coords={"front": FRONTS, "changepoint": [0, 1]},
        dims={"jump": ["front", "changepoint"], "effect": ["front"]},
    )


def well_mixed(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "baseline": rng.normal(size=(CHAINS, DRAWS)),
        "jump": rng.normal(size=(CHAINS, DRAWS, 2, 2)),
    }


def good_stats(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"diverging": np.zeros((CHAINS, DRAWS), dtype=bool), "energy": rng.normal(size=(CHAINS, DRAWS))}


def ar1(rho: float, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(CHAINS, DRAWS))
    series = np.zeros((CHAINS, DRAWS))
    series[:, 0] = noise[:, 0] / np.sqrt(1 - rho**2)
    for t in range(1, DRAWS):
        series[:, t] = rho * series[:, t - 1] + noise[:, t]
    return series


def test_well_mixed_iid_draws_pass():
    result = check_convergence(fake_fit(well_mixed(), **good_stats()))
    assert result.ok, result.failures
    assert result.failures == ()
    assert result.chains == CHAINS and result.draws == DRAWS
    assert result.rhat_max is not None and result.rhat_max < 1.01
    assert result.ess_bulk_min is not None and result.ess_bulk_min > 400
    assert result.ess_tail_min is not None and result.ess_tail_min > 400
    assert result.divergences == 0
    assert result.bfmi_min is not None and result.bfmi_min > 0.3


def test_shifted_chain_means_fail_rhat_and_name_the_element():
    posterior = well_mixed()
    posterior["jump"][:, :, 0, 1] += np.arange(CHAINS)[:, None]  # jump[iraq, 1] differs between chains
    result = check_convergence(fake_fit(posterior, **good_stats()))
    assert not result.ok
    assert result.rhat_worst == "jump[iraq, 1]"
    rhat_failures = [text for text in result.failures if text.startswith("R-hat")]
    assert len(rhat_failures) == 1
    assert "> 1.01" in rhat_failures[0] and "jump[iraq, 1]" in rhat_failures[0]


def test_divergences_fail_and_are_counted():
    stats = good_stats()
    stats["diverging"][1, [3, 40, 200]] = True
    result = check_convergence(fake_fit(well_mixed(), **stats))
    assert not result.ok
    assert result.divergences == 3
    assert any("3 divergences" in text for text in result.failures)


def test_divergences_within_a_looser_threshold_pass():
    stats = good_stats()
    stats["diverging"][1, [3, 40, 200]] = True
    result = check_convergence(fake_fit(well_mixed(), **stats), thresholds=ConvergenceThresholds(divergences_max=5))
    assert result.ok and result.divergences == 3


def test_strongly_autocorrelated_chains_fail_ess():
    posterior = well_mixed()
    posterior["baseline"] = ar1(0.99)
    result = check_convergence(fake_fit(posterior, **good_stats()))
    assert not result.ok
    assert result.ess_bulk_min is not None and result.ess_bulk_min < 400
    assert result.ess_bulk_worst == "baseline"
    assert any(text.startswith("bulk ESS") and "baseline" in text for text in result.failures)


def test_low_bfmi_fails():
    stats = good_stats()
    stats["energy"] = ar1(0.99, seed=5)  # energy that barely moves between draws
    result = check_convergence(fake_fit(well_mixed(), **stats))
    assert not result.ok
    assert result.bfmi_min is not None and result.bfmi_min < 0.3
    assert any(text.startswith("BFMI") for text in result.failures)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.99])
def test_bfmi_is_arviz_definition(rho):
    energy = ar1(rho, seed=7)
    np.testing.assert_allclose(bfmi(energy), az.bfmi(energy), rtol=1e-12)


def test_constant_variable_is_ignored_but_noted():
    posterior = well_mixed()
    posterior["effect"] = np.zeros((CHAINS, DRAWS, 2))  # e.g. an effect fixed at 0 on both fronts
    result = check_convergence(fake_fit(posterior, **good_stats()))
    assert result.ok, result.failures
    assert any("effect[iraq]" in note and "effect[syria]" in note for note in result.notes)


def test_constant_within_chains_but_different_between_chains_fails():
    posterior = well_mixed()
    posterior["stuck"] = np.repeat(np.arange(CHAINS, dtype=float)[:, None], DRAWS, axis=1)
    result = check_convergence(fake_fit(posterior, **good_stats()))
    assert not result.ok
    assert any("stuck" in text for text in result.failures)


def test_non_finite_draws_fail():
    posterior = well_mixed()
    posterior["baseline"][2, 17] = np.nan
    result = check_convergence(fake_fit(posterior, **good_stats()))
    assert not result.ok
    assert any("non-finite" in text and "baseline" in text for text in result.failures)


def test_everything_constant_fails():
    result = check_convergence(fake_fit({"effect": np.zeros((CHAINS, DRAWS, 2))}, **good_stats()))
    assert not result.ok
    assert any("did not move" in text for text in result.failures)


def test_single_chain_reports_rhat_none_and_fails():
    rng = np.random.default_rng(3)
    result = check_convergence(az.from_dict(posterior={"baseline": rng.normal(size=(1, 2000))}))
    assert result.rhat_max is None and result.rhat_worst is None
    assert not result.ok
    assert "R-hat needs at least 2 chains" in result.failures
    assert result.ess_bulk_min is not None  # ESS is still computed


def test_var_names_restricts_the_check_and_rejects_unknown_names():
    posterior = well_mixed()
    posterior["baseline"] = ar1(0.99)
    result = check_convergence(fake_fit(posterior, **good_stats()), var_names=["jump"])
    assert result.ok, result.failures
    with pytest.raises(ValueError, match="no variables"):
        check_convergence(fake_fit(posterior), var_names=["nope"])


def test_missing_sampler_statistics_are_noted_not_failed():
    result = check_convergence(fake_fit(well_mixed()))
    assert result.ok
    assert result.bfmi_min is None
    assert any("diverging" in note for note in result.notes)
    assert any("energy" in note for note in result.notes)


def test_headline_wording():
    passed = check_convergence(fake_fit(well_mixed(), **good_stats()))
    assert passed.headline().startswith("Sampler diagnostics passed: ")
    assert "4 chains x 500 draws" in passed.headline()

    stats = good_stats()
    stats["diverging"][0, 0] = True
    failed = check_convergence(fake_fit(well_mixed(), **stats))
    assert failed.headline().startswith("FIT FAILED ITS CHECKS: ")
    assert "1 divergence" in failed.headline()


def test_failure_text_distinguishes_value_from_threshold():
    result = Diagnostics(
        ok=False,
        rhat_max=1.04,
        ess_bulk_min=900.0,
        ess_tail_min=800.0,
        divergences=0,
        bfmi_min=0.9,
        chains=4,
        draws=500,
        failures=("R-hat 1.04 > 1.01 (worst: jump[iraq, 0])",),
    )
    assert result.headline() == "FIT FAILED ITS CHECKS: R-hat 1.04 > 1.01 (worst: jump[iraq, 0])"
    # An R-hat just above the limit must not print as "1.01 > 1.01".
    fit = fake_fit(well_mixed())
    actual = check_convergence(fit).rhat_max
    assert actual is not None
    limit = actual - 2e-4
    near = check_convergence(fit, thresholds=ConvergenceThresholds(rhat_max=limit))
    rhat_failures = [text for text in near.failures if text.startswith("R-hat")]
    assert len(rhat_failures) == 1
    shown_value, shown_limit = rhat_failures[0].split()[1], rhat_failures[0].split()[3]
    assert float(shown_value) > float(shown_limit), rhat_failures[0]


def test_to_dict_is_json_safe_with_plain_types():
    posterior = well_mixed()
    posterior["jump"][:, :, 0, 1] += np.arange(CHAINS)[:, None]
    values = check_convergence(fake_fit(posterior, **good_stats())).to_dict()
    text = json.dumps(values, allow_nan=False)
    assert json.loads(text) == values
    for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "bfmi_min"):
        assert type(values[key]) is float
    assert type(values["divergences"]) is int and type(values["ok"]) is bool
    assert values["rhat_worst"] == "jump[iraq, 1]"
    assert values["ess_bulk_worst"] and values["ess_tail_worst"]
    assert values["thresholds"]["rhat_max"] == 1.01
    assert values["headline"].startswith("FIT FAILED ITS CHECKS")


def test_thresholds_reject_nonsense():
    with pytest.raises(ValueError):
        ConvergenceThresholds(rhat_max=0.9)
    with pytest.raises(ValueError):
        ConvergenceThresholds(divergences_max=-1)


# --------------------------------------------------------------------------------------------
# The vectorised rank diagnostics equal ArviZ's, element by element
# --------------------------------------------------------------------------------------------


def _ar1_elements(chains: int, draws: int, elements: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros((chains, draws, elements))
    x[:, 0] = rng.normal(size=(chains, elements))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=(chains, elements))
    return x


@pytest.mark.parametrize("chains", [1, 2, 3, 4])
@pytest.mark.parametrize("draws", [4, 5, 7, 50, 101, 400])
def test_rank_diagnostics_equal_arviz_element_by_element(chains, draws):
    from forecast.checks.rank_diagnostics import rank_diagnostics

    rng = np.random.default_rng(chains * 1000 + draws)
    x = np.concatenate(
        [
            _ar1_elements(chains, draws, 3, 0.0, rng),
            _ar1_elements(chains, draws, 3, 0.9, rng),  # slow mixing
            _ar1_elements(chains, draws, 2, -0.5, rng),  # anticorrelated: Geyer's sequence stops early
            np.round(_ar1_elements(chains, draws, 2, 0.5, rng), 1),  # ties: average ranks
            _ar1_elements(chains, draws, 2, 0.99, rng) + np.arange(chains)[:, None, None],  # chains apart
            np.full((chains, draws, 1), 3.0),  # constant: R-hat undefined, ESS = draws
        ],
        axis=2,
    )
    x[0, 0, 1] = np.nan  # a non-finite draw: every figure undefined
    dataset = az.convert_to_dataset({"v": x})
    with np.errstate(invalid="ignore", divide="ignore"):  # ArviZ's 0/0 on the constant element
        expected = [
            az.rhat(dataset, method="rank")["v"].to_numpy(),
            az.ess(dataset, method="bulk", relative=False)["v"].to_numpy(),
            az.ess(dataset, method="tail", relative=False)["v"].to_numpy(),
        ]
    for got, want in zip(rank_diagnostics(x), expected, strict=True):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_rank_diagnostics_keep_the_element_shape_and_reject_a_flat_array():
    from forecast.checks.rank_diagnostics import rank_diagnostics

    rhat, bulk, tail = rank_diagnostics(np.random.default_rng(3).normal(size=(2, 40, 3, 5)))
    assert rhat.shape == bulk.shape == tail.shape == (3, 5)
    with pytest.raises(ValueError, match="chain, draw"):
        rank_diagnostics(np.zeros(10))


def test_rank_diagnostics_in_parallel_chunks_equal_one_chunk_at_a_time(monkeypatch):
    """Chunks run on several threads write every element, each exactly as one thread would."""
    from forecast.checks import rank_diagnostics as module

    rng = np.random.default_rng(11)
    x = np.concatenate([_ar1_elements(2, 60, 20, 0.7, rng), np.round(_ar1_elements(2, 60, 5, 0.3, rng), 1)], axis=2)
    x[1, 7, 4] = np.nan
    monkeypatch.setattr(module, "MAX_THREADS", 1)
    alone = module.rank_diagnostics(x)
    monkeypatch.setattr(module, "CHUNK", 3)  # 9 chunks
    monkeypatch.setattr(module, "_threads", lambda: 4)  # whatever the machine's cores
    threads = []
    pool = module.ThreadPoolExecutor

    def counting_pool(workers):
        threads.append(workers)
        return pool(workers)

    monkeypatch.setattr(module, "ThreadPoolExecutor", counting_pool)
    parallel = module.rank_diagnostics(x)
    assert threads == [4]
    for got, want in zip(parallel, alone, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.isnan(parallel[0][4]) and np.all(np.isfinite(parallel[1][np.arange(25) != 4]))
