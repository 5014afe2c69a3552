"""PSIS-LOO comparison of fitted variants from their pointwise log-likelihoods.

For each variant :math:`m` with pointwise log-likelihood draws
:math:`\\ell^{(m)}_{s,i} = \\log p(y_i \\mid \\theta^{(m)}_s)`, PSIS-LOO estimates the expected
log pointwise predictive density

.. math:: \\widehat{\\mathrm{elpd}}_{\\mathrm{loo}} = \\sum_i \\log
          \\frac{\\sum_s w_{s,i}\\, p(y_i \\mid \\theta_s)}{\\sum_s w_{s,i}},

with Pareto-smoothed importance weights :math:`w_{s,i} \\propto 1/p(y_i \\mid \\theta_s)`
(``az.loo``, log scale: higher is better).  ``p_loo`` is the effective number of parameters,
``elpd_diff`` and ``dse`` the difference to the best variant and its standard error, ``weight``
the stacking weight (``az.compare(..., ic="loo", method="stacking", scale="log")``).

Reliability.  The estimated Pareto shape :math:`\\hat k_i` of each observation's weights says
whether the estimate can be trusted: above 0.7 it cannot.  For every variant, the number and
share of observations with :math:`\\hat k_i > 0.7` become a warning in
:attr:`LooComparison.warnings`; ArviZ's own warnings (it uses the stricter,
sample-size dependent threshold :math:`\\min(1 - 1/\\log_{10} S, 0.7)`) are caught and copied
there as well, so none vanishes.

Relative efficiency.  Only log-likelihoods are given (no posterior parameters), so the
relative efficiency of the draws, which PSIS needs for its tail fit, is estimated as R's
``loo::relative_eff`` does: the mean over observations of
:math:`\\mathrm{ESS}(p(y_i \\mid \\theta_\\cdot)) / S`, with the ESS over chains and draws.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["PARETO_K_THRESHOLD", "TABLE_COLUMNS", "LooComparison", "loo_table"]

logger = logging.getLogger(__name__)

PARETO_K_THRESHOLD = 0.7
TABLE_COLUMNS = ("rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight", "pareto_k_high", "warning")
_LOG_LIKELIHOOD_NAME = "y"


@dataclass(frozen=True, eq=False)
class LooComparison:
    """PSIS-LOO comparison of fitted variants.

    Attributes
    ----------
    table : DataFrame
        One row per variant (index ``variant``), best first, with columns
        :data:`TABLE_COLUMNS`: ``rank`` (0 is best), ``elpd_loo``, ``p_loo``, ``elpd_diff``,
        ``se``, ``dse``, ``weight`` (stacking), ``pareto_k_high`` (observations with
        :math:`\\hat k > 0.7`) and ``warning`` (ArviZ's flag).  Treat it as read-only.
    warnings : tuple of str
        Reliability warnings, ours (``"Pareto k > 0.7 for 12 of 964 observations (1.2%) of
        'k2': LOO may be unreliable"``) and ArviZ's, prefixed with the variant.
    pareto_k : dict of str to array (obs,)
        Pareto shape estimate of every observation, per variant.
    n_obs : int
        Observations compared.
    k_threshold : float
        The Pareto k above which an observation is counted as unreliable.
    """

    table: pd.DataFrame
    warnings: tuple[str, ...]
    pareto_k: Mapping[str, np.ndarray] = field(repr=False)
    n_obs: int
    k_threshold: float = PARETO_K_THRESHOLD

    @property
    def best(self) -> str:
        """The variant ranked first."""
        return str(self.table.index[0])

    @property
    def ranking(self) -> list[str]:
        """The variants, best first."""
        return [str(name) for name in self.table.index]

    def format(self) -> str:
        """Return a fixed-width text table, then the warnings."""
        width = max([len("variant")] + [len(name) for name in self.ranking])
        header = (
            f"{'variant':<{width}}  {'rank':>4}  {'elpd_loo':>10}  {'p_loo':>8}  {'elpd_diff':>9}  "
            f"{'se':>8}  {'dse':>8}  {'weight':>6}  {'k>' + format(self.k_threshold, 'g'):>6}"
        )
        lines = [f"PSIS-LOO comparison of {len(self.ranking)} variant(s) on {self.n_obs} observations", "", header]
        for name, row in self.table.iterrows():
            lines.append(
                f"{str(name):<{width}}  {int(row['rank']):>4d}  {row['elpd_loo']:>10.1f}  {row['p_loo']:>8.1f}  "
                f"{row['elpd_diff']:>9.1f}  {row['se']:>8.1f}  {row['dse']:>8.1f}  {row['weight']:>6.3f}  "
                f"{int(row['pareto_k_high']):>6d}"
            )
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {text}" for text in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """Return the comparison as JSON-safe values."""
        variants = []
        for name, row in self.table.iterrows():
            variants.append(
                {
                    "variant": str(name),
                    "rank": int(row["rank"]),
                    "elpd_loo": float(row["elpd_loo"]),
                    "p_loo": float(row["p_loo"]),
                    "elpd_diff": float(row["elpd_diff"]),
                    "se": float(row["se"]),
                    "dse": float(row["dse"]),
                    "weight": float(row["weight"]),
                    "pareto_k_high": int(row["pareto_k_high"]),
                    "warning": bool(row["warning"]),
                }
            )
        return {
            "best": self.best,
            "n_obs": int(self.n_obs),
            "k_threshold": float(self.k_threshold),
            "scale": "log",
            "method": "stacking",
            "variants": variants,
            "warnings": list(self.warnings),
        }


def _validate(pointwise: Mapping[str, np.ndarray], observed: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if not pointwise:
        raise ValueError("loo_table needs at least one variant")
    y = np.asarray(observed)
    if y.ndim != 1:
        raise ValueError(f"observed must be one-dimensional (obs,), got shape {y.shape}")
    arrays = {str(name): np.asarray(values, dtype=float) for name, values in pointwise.items()}
    wrong_rank = {name: array.shape for name, array in arrays.items() if array.ndim != 3}
    if wrong_rank:
        raise ValueError(f"pointwise log-likelihoods must have shape (chain, draw, obs); got {wrong_rank}")
    lengths = {name: array.shape[-1] for name, array in arrays.items()}
    if len(set(lengths.values())) > 1 or next(iter(lengths.values())) != y.shape[0]:
        listed = ", ".join(f"'{name}' has {length}" for name, length in lengths.items())
        raise ValueError(
            f"variants must be compared on the same observations: {listed} observations, and observed has {y.shape[0]}"
        )
    not_finite = [name for name, array in arrays.items() if not np.all(np.isfinite(array))]
    if not_finite:
        raise ValueError(f"non-finite pointwise log-likelihood (NaN or inf) in variants {not_finite}")
    too_few = {name: array.shape[:2] for name, array in arrays.items() if array.shape[0] * array.shape[1] < 4}
    if too_few:
        raise ValueError(f"PSIS-LOO needs draws; variants with (chain, draw) {too_few} have too few")
    return arrays, y


def _relative_efficiency(loglik: np.ndarray) -> float:
    """Mean over observations of ESS(likelihood) / S (R's ``loo::relative_eff``)."""
    scaled = np.exp(loglik - loglik.max(axis=(0, 1), keepdims=True))
    likelihood = xr.Dataset({"likelihood": (("chain", "draw", "obs"), scaled)})
    with np.errstate(invalid="ignore", divide="ignore"):  # constant likelihoods: 0/0 inside ArviZ
        ess = az.ess(likelihood, method="mean", relative=True)["likelihood"].to_numpy()
    ess = np.where(np.isfinite(ess), ess, 1.0)
    return float(np.mean(ess))


def _caught(prefix: str, caught: list[warnings.WarningMessage]) -> list[str]:
    texts = []
    for item in caught:
        text = f"{prefix}: {item.category.__name__}: {item.message}"
        if text not in texts:
            texts.append(text)
    return texts


def loo_table(
    pointwise: Mapping[str, np.ndarray],
    observed: np.ndarray,
    *,
    k_threshold: float = PARETO_K_THRESHOLD,
) -> LooComparison:
    """Compare fitted variants by PSIS-LOO.

    Parameters
    ----------
    pointwise : mapping of str to array (chain, draw, obs)
        Pointwise log-likelihood draws of each variant (the same observations for all;
        chains and draws may differ).
    observed : array (obs,)
        The observations, stored with each variant's ``InferenceData``.
    k_threshold : float, default 0.7
        Pareto k above which an observation's LOO estimate is counted as unreliable.

    Returns
    -------
    LooComparison

    Raises
    ------
    ValueError
        When there is no variant, when variants (or ``observed``) differ in the number of
        observations (the message names each variant with its length), or on non-finite
        log-likelihoods.
    """
    arrays, y = _validate(pointwise, observed)
    n_obs = int(y.shape[0])
    found: list[str] = []
    elpds: dict[str, az.ELPDData] = {}
    pareto_k: dict[str, np.ndarray] = {}
    high: dict[str, int] = {}
    for name, loglik in arrays.items():
        idata = az.from_dict(log_likelihood={_LOG_LIKELIHOOD_NAME: loglik}, observed_data={_LOG_LIKELIHOOD_NAME: y})
        reff = _relative_efficiency(loglik)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            elpds[name] = az.loo(idata, pointwise=True, reff=reff, scale="log", var_name=_LOG_LIKELIHOOD_NAME)
        k_values = np.asarray(elpds[name].pareto_k, dtype=float)
        pareto_k[name] = k_values
        high[name] = int(np.count_nonzero(k_values > k_threshold))
        if high[name]:
            found.append(
                f"Pareto k > {k_threshold:g} for {high[name]} of {n_obs} observations "
                f"({high[name] / n_obs:.1%}) of '{name}': LOO may be unreliable"
            )
        found += _caught(f"ArviZ on '{name}'", caught)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compared = az.compare(elpds, ic="loo", method="stacking", scale="log")
    found += _caught("ArviZ comparing variants", caught)

    table = compared.copy()
    table["pareto_k_high"] = [high[str(name)] for name in table.index]
    table["rank"] = table["rank"].astype(int)
    table["warning"] = table["warning"].astype(bool)
    table = table.loc[:, list(TABLE_COLUMNS)].sort_values("rank")
    table.index = pd.Index([str(name) for name in table.index], name="variant")

    for text in found:
        logger.warning(text)
    return LooComparison(
        table=table, warnings=tuple(found), pareto_k=pareto_k, n_obs=n_obs, k_threshold=float(k_threshold)
    )
