"""PSIS-LOO comparison of variants from pointwise log-likelihoods (no sampling)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats

from forecast.checks.compare import TABLE_COLUMNS, LooComparison, loo_table

N_OBS = 200
CHAINS, DRAWS = 4, 250


def observed_counts(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(5.0, N_OBS)


def poisson_loglik(observed: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Pointwise log-likelihood (chain, draw, obs) of a Poisson model whose rate posterior is near ``rate``."""
    rates = np.random.default_rng(seed).normal(rate, 0.15, size=(CHAINS, DRAWS, 1))
    return stats.poisson.logpmf(observed, rates)


def test_the_clearly_better_variant_ranks_first():
    observed = observed_counts()
    result = loo_table(
        {"too_high": poisson_loglik(observed, 8.0, seed=1), "right": poisson_loglik(observed, 5.0, seed=2)},
        observed,
    )
    assert isinstance(result, LooComparison)
    assert result.best == "right"
    assert result.ranking == ["right", "too_high"]
    assert list(result.table.columns) == list(TABLE_COLUMNS)
    assert result.table.index.name == "variant"
    assert result.table.loc["right", "rank"] == 0 and result.table.loc["right", "elpd_diff"] == 0.0
    assert result.table.loc["too_high", "elpd_diff"] > 4 * result.table.loc["too_high", "dse"]
    assert result.table["weight"].sum() == pytest.approx(1.0)
    assert result.warnings == ()


def test_mismatched_lengths_raise_naming_the_variants():
    observed = observed_counts()
    short = poisson_loglik(observed, 5.0, seed=2)[..., :150]
    with pytest.raises(ValueError, match=r"'full' has 200.*'short' has 150"):
        loo_table({"full": poisson_loglik(observed, 5.0, seed=1), "short": short}, observed)


def test_observed_of_another_length_raises():
    observed = observed_counts()
    with pytest.raises(ValueError, match="observed has 199"):
        loo_table({"a": poisson_loglik(observed, 5.0, seed=1)}, observed[:-1])


def test_non_finite_log_likelihood_raises():
    observed = observed_counts()
    broken = poisson_loglik(observed, 5.0, seed=1)
    broken[0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match="'?broken'?"):
        loo_table({"broken": broken}, observed)


def test_extreme_log_likelihoods_produce_a_pareto_k_warning_in_our_list():
    observed = observed_counts()
    spiky = poisson_loglik(observed, 5.0, seed=3)
    spiky[0, :3, :4] = -80.0  # four observations that a few draws find nearly impossible
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape as a Python warning
        result = loo_table({"k2": spiky, "plain": poisson_loglik(observed, 5.0, seed=4)}, observed)
    ours = [text for text in result.warnings if text.startswith("Pareto k > 0.7")]
    assert ours == [f"Pareto k > 0.7 for 4 of {N_OBS} observations (2.0%) of 'k2': LOO may be unreliable"]
    assert any(text.startswith("ArviZ on 'k2'") and "Pareto" in text for text in result.warnings)
    assert result.table.loc["k2", "pareto_k_high"] == 4
    assert result.table.loc["plain", "pareto_k_high"] == 0
    assert result.pareto_k["k2"].shape == (N_OBS,)


def test_format_and_to_dict():
    observed = observed_counts()
    spiky = poisson_loglik(observed, 5.0, seed=3)
    spiky[0, :3, :4] = -80.0
    result = loo_table({"k2": spiky, "k1": poisson_loglik(observed, 5.0, seed=4)}, observed)
    text = result.format()
    assert "elpd_loo" in text and "k1" in text and "k2" in text and "Warnings:" in text
    values = result.to_dict()
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    assert values["best"] == result.best
    assert [row["variant"] for row in values["variants"]] == result.ranking
    assert values["warnings"] == list(result.warnings)
