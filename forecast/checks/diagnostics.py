"""Sampler diagnostics of a fit: R-hat, bulk and tail ESS, divergences and BFMI.

:func:`check_convergence` compares a fit's diagnostics with :class:`ConvergenceThresholds`
and returns a :class:`Diagnostics`.  A fit that fails is *marked* failed (``ok`` is False and
``failures`` says why, in words); it is never raised on.

Definitions (ArviZ's, computed for all of a variable's elements at once by
:func:`forecast.checks.rank_diagnostics.rank_diagnostics`, which a test holds equal to ArviZ):

* R-hat: rank-normalised split :math:`\\hat R` (Vehtari et al. 2021), ``az.rhat(...,
  method="rank")``, the maximum over every element of every checked variable.  It needs at
  least 2 chains; with one chain it is reported as None and the fit fails.
* ESS: bulk and tail effective sample sizes, ``az.ess(..., method="bulk" | "tail",
  relative=False)``, the minimum over elements.
* Divergences: :math:`\\sum_{c,d} \\mathrm{diverging}_{c,d}` from the sampler statistics.
* BFMI: per chain, :math:`\\mathrm{BFMI} = \\sum_d (E_d - E_{d-1})^2 / \\sum_d (E_d - \\bar E)^2`
  of the energy :math:`E`, ``az.bfmi``'s definition (:func:`bfmi`); the minimum over chains.

The rule for undefined values
-----------------------------
An element whose draws are all equal, across every chain and draw (an effect fixed at 0 for
a front an intervention does not touch, a structural zero), has an undefined R-hat (0/0).
Such *constant elements are ignored* by R-hat and ESS, and listed in ``notes`` so that they
stay visible.  Nothing else is ignored:

* draws that are not finite (NaN or inf) fail the fit;
* a NaN R-hat or ESS for an element whose draws vary (e.g. constant within each chain but
  different between chains) fails the fit;
* if every element of every checked variable is constant, the fit fails: that is what a
  sampler that never moved looks like.

Missing sampler statistics (no ``diverging`` or no ``energy``, e.g. a sampler that does not
record them) are not failures: the check is skipped and a note says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np
import xarray as xr

from forecast.checks.rank_diagnostics import MIN_DRAWS, rank_diagnostics
from forecast.fits import has_group, posterior, sample_stats
from forecast.names import SAMPLE_DIMS

__all__ = ["DEFAULT_THRESHOLDS", "ConvergenceThresholds", "Diagnostics", "bfmi", "check_convergence"]

logger = logging.getLogger(__name__)

# How many ignored (constant) elements a note names before summarising.
_NAMED_IN_NOTES = 5

#: How the headline of a fit that missed a limit starts.
FAILED_HEADLINE = "FIT FAILED ITS CHECKS: "


#: Bulk and tail ESS required per chain when no absolute limit is given.
ESS_PER_CHAIN = 100.0


@dataclass(frozen=True)
class ConvergenceThresholds:
    """Limits a fit must respect to pass :func:`check_convergence`.

    Parameters
    ----------
    rhat_max : float, default 1.01
        Largest acceptable R-hat (fails when ``rhat > rhat_max``).
    ess_bulk_min : float or None, default None
        Smallest acceptable bulk ESS (fails when ``ess < ess_bulk_min``).  None means
        :data:`ESS_PER_CHAIN` per chain, the rule of Vehtari et al. (2021, "Rank-normalization,
        folding, and localization: an improved R-hat"), which recommends bulk and tail ESS above
        100 per chain: 200 for the default 2 chains, 400 for 4.
    ess_tail_min : float or None, default None
        Smallest acceptable tail ESS; None means :data:`ESS_PER_CHAIN` per chain.
    divergences_max : int, default 0
        Largest acceptable number of divergent transitions.
    bfmi_min : float, default 0.3
        Smallest acceptable BFMI of any chain.
    """

    rhat_max: float = 1.01
    ess_bulk_min: float | None = None
    ess_tail_min: float | None = None
    divergences_max: int = 0
    bfmi_min: float = 0.3

    def __post_init__(self) -> None:
        if not self.rhat_max >= 1.0:
            raise ValueError(f"rhat_max must be at least 1, got {self.rhat_max}")
        for name in ("ess_bulk_min", "ess_tail_min", "bfmi_min"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.divergences_max < 0:
            raise ValueError(f"divergences_max must be non-negative, got {self.divergences_max}")

    def ess_limits(self, chains: int) -> tuple[float, float]:
        """Bulk and tail ESS limits for a fit with ``chains`` chains."""
        bulk = ESS_PER_CHAIN * chains if self.ess_bulk_min is None else self.ess_bulk_min
        tail = ESS_PER_CHAIN * chains if self.ess_tail_min is None else self.ess_tail_min
        return float(bulk), float(tail)

    def to_dict(self) -> dict[str, float | int | None]:
        """Return the thresholds as plain Python numbers (None: per-chain rule)."""
        return {
            "rhat_max": float(self.rhat_max),
            "ess_bulk_min": None if self.ess_bulk_min is None else float(self.ess_bulk_min),
            "ess_tail_min": None if self.ess_tail_min is None else float(self.ess_tail_min),
            "divergences_max": int(self.divergences_max),
            "bfmi_min": float(self.bfmi_min),
        }


@dataclass(frozen=True)
class Diagnostics:
    """The sampler diagnostics of one fit and whether they pass their thresholds.

    Attributes
    ----------
    ok : bool
        True when no check failed.
    rhat_max : float or None
        Largest R-hat over the checked (non-constant) elements; None with one chain or when
        no element varies.
    ess_bulk_min, ess_tail_min : float or None
        Smallest bulk and tail ESS over the checked elements; None when no element varies.
    divergences : int
        Number of divergent transitions (0 when the sampler did not record them; see notes).
    bfmi_min : float or None
        Smallest BFMI over chains; None when the energy was not recorded.
    chains, draws : int
        Number of chains and of draws per chain.
    failures : tuple of str
        Why the fit failed, one human-readable line per failed check.
    thresholds : ConvergenceThresholds
        The limits used.
    rhat_worst, ess_bulk_worst, ess_tail_worst : str or None
        The element where the worst value was found, as ``"jump[iraq, 0]"``.
    notes : tuple of str
        Remarks that are not failures (ignored constant elements, skipped checks).
    """

    ok: bool
    rhat_max: float | None
    ess_bulk_min: float | None
    ess_tail_min: float | None
    divergences: int
    bfmi_min: float | None
    chains: int
    draws: int
    failures: tuple[str, ...]
    thresholds: ConvergenceThresholds = field(default_factory=ConvergenceThresholds)
    rhat_worst: str | None = None
    ess_bulk_worst: str | None = None
    ess_tail_worst: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Return the diagnostics as JSON-safe values (plain floats and ints, None, lists)."""
        values = asdict(self)
        values["ok"] = bool(self.ok)
        for name in ("rhat_max", "ess_bulk_min", "ess_tail_min", "bfmi_min"):
            values[name] = _plain_float(getattr(self, name))
        values["divergences"] = int(self.divergences)
        values["chains"] = int(self.chains)
        values["draws"] = int(self.draws)
        values["failures"] = list(self.failures)
        values["notes"] = list(self.notes)
        values["thresholds"] = self.thresholds.to_dict()
        values["headline"] = self.headline()
        return values

    def headline(self) -> str:
        """Return one line: ``"FIT FAILED ITS CHECKS: ..."`` or ``"Sampler diagnostics passed: ..."``."""
        if not self.ok:
            return FAILED_HEADLINE + "; ".join(self.failures)
        parts = []
        if self.rhat_max is not None:
            parts.append(f"R-hat max {self.rhat_max:.3f}")
        if self.ess_bulk_min is not None:
            parts.append(f"ESS bulk min {self.ess_bulk_min:.0f}")
        if self.ess_tail_min is not None:
            parts.append(f"ESS tail min {self.ess_tail_min:.0f}")
        noun = "divergence" if self.divergences == 1 else "divergences"
        parts.append(f"{self.divergences} {noun}")
        if self.bfmi_min is not None:
            parts.append(f"BFMI min {self.bfmi_min:.2f}")
        return f"Sampler diagnostics passed: {', '.join(parts)} ({self.chains} chains x {self.draws} draws)"


DEFAULT_THRESHOLDS = ConvergenceThresholds()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _plain_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _fmt_against(value: float, limit: float, *, smallest_digits: int = 2) -> str:
    """Format ``value`` with the fewest decimals (from ``smallest_digits``) that tell it from ``limit``."""
    for digits in range(smallest_digits, 7):
        if round(value, digits) != round(limit, digits):
            return f"{value:.{digits}f}"
    return repr(float(value))


def _element_label(name: str, array: xr.DataArray, index: tuple[int, ...]) -> str:
    """Name one element of a variable as ``name[coord, coord]`` (``name`` for a scalar)."""
    if not array.dims:
        return name
    labels = []
    for dim, position in zip(array.dims, index, strict=True):
        if dim in array.coords:
            coordinate = array.coords[dim].values[position]
            labels.append(str(coordinate.item() if hasattr(coordinate, "item") else coordinate))
        else:
            labels.append(str(position))
    return f"{name}[{', '.join(labels)}]"


def _labels(name: str, array: xr.DataArray, mask: np.ndarray) -> list[str]:
    return [_element_label(name, array, tuple(int(i) for i in index)) for index in np.argwhere(mask)]


def _summarise(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:_NAMED_IN_NOTES])
    more = len(labels) - _NAMED_IN_NOTES
    return shown + (f" and {more} more" if more > 0 else "")


@dataclass
class _Extreme:
    """The worst value of one diagnostic over elements, and the elements where it is undefined."""

    value: float | None = None
    where: str | None = None
    undefined: list[str] = field(default_factory=list)

    def update(self, name: str, values: xr.DataArray, checked: np.ndarray, *, worst: str) -> None:
        data = np.asarray(values.to_numpy(), dtype=float)
        self.undefined += _labels(name, values, checked & ~np.isfinite(data))
        usable = checked & np.isfinite(data)
        if not usable.any():
            return
        masked = np.where(usable, data, -np.inf if worst == "max" else np.inf)
        flat = int(np.argmax(masked) if worst == "max" else np.argmin(masked))
        index = np.unravel_index(flat, data.shape) if data.shape else ()
        candidate = float(data[index]) if data.shape else float(data)
        better = self.value is None or (candidate > self.value if worst == "max" else candidate < self.value)
        if better:
            self.value = candidate
            self.where = _element_label(name, values, tuple(int(i) for i in index))


def _draws_of(idata: az.InferenceData, var_names: Sequence[str] | None) -> xr.Dataset:
    draws = posterior(idata)
    available = list(draws.data_vars)
    if var_names is None:
        chosen = available
    else:
        chosen = list(var_names)
        unknown = [name for name in chosen if name not in available]
        if unknown:
            raise ValueError(f"the posterior has no variables {unknown}; it has {available}")
    return draws[chosen].transpose(*SAMPLE_DIMS, ...)


def _sampler_statistic(idata: az.InferenceData, name: str) -> np.ndarray | None:
    if not has_group(idata, "sample_stats"):
        return None
    stats = sample_stats(idata)
    if name not in stats.data_vars:
        return None
    return stats[name].transpose(*SAMPLE_DIMS, ...).to_numpy()


def bfmi(energy: np.ndarray) -> np.ndarray:
    """Per chain, the mean squared change of the energy over its variance (``az.bfmi``'s definition).

    Written out in numpy: ArviZ computes the variance with a Numba function that it compiles
    afresh in every process (0.4 s of a warm fit's checks).
    """
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------


def check_convergence(
    idata: az.InferenceData,
    *,
    var_names: Sequence[str] | None = None,
    thresholds: ConvergenceThresholds = DEFAULT_THRESHOLDS,
) -> Diagnostics:
    """Check a fit's sampler diagnostics against thresholds.

    Parameters
    ----------
    idata : InferenceData
        The fit; it needs a posterior group.  Divergences are read from
        ``sample_stats["diverging"]`` and BFMI from ``sample_stats["energy"]`` when present.
    var_names : sequence of str, optional
        Posterior variables to check; all of them by default.
    thresholds : ConvergenceThresholds
        The limits.

    Returns
    -------
    Diagnostics
        ``ok`` is False when any check fails; ``failures`` says which, naming the worst
        element (e.g. ``"R-hat 1.04 > 1.01 (worst: jump[iraq, 0])"``).  See the module
        docstring for how constant elements and undefined values are treated.

    Raises
    ------
    ValueError
        When ``var_names`` names a variable the posterior does not have (a caller's mistake,
        not a failed fit).
    KeyError
        When the fit has no posterior group.
    """
    draws = _draws_of(idata, var_names)
    chains = int(draws.sizes["chain"])
    n_draws = int(draws.sizes["draw"])
    failures: list[str] = []
    notes: list[str] = []

    # Which elements are checked: finite and varying.  Constant ones are ignored (see module doc).
    checked: dict[str, np.ndarray] = {}
    constant_labels: list[str] = []
    nonfinite_labels: list[str] = []
    for name, array in draws.data_vars.items():
        values = np.asarray(array.to_numpy(), dtype=float)
        element_template = array.isel(chain=0, draw=0, drop=True)
        finite = np.all(np.isfinite(values), axis=(0, 1))
        if values.size:
            constant = np.all(values == values[:1, :1], axis=(0, 1))
        else:
            constant = np.zeros(values.shape[2:], dtype=bool)
        nonfinite_labels += _labels(str(name), element_template, ~finite)
        constant_labels += _labels(str(name), element_template, constant & finite)
        checked[str(name)] = finite & ~constant

    if not checked:
        failures.append("no posterior variables to check")
    if nonfinite_labels:
        failures.append(f"non-finite draws (NaN or inf) in {_summarise(nonfinite_labels)}")
    if constant_labels:
        notes.append(f"ignored {len(constant_labels)} constant element(s): {_summarise(constant_labels)}")
    any_checked = any(mask.any() for mask in checked.values())
    if checked and not any_checked and not nonfinite_labels:
        failures.append("every draw of every checked variable is constant: the sampler did not move")
    if n_draws < MIN_DRAWS:
        failures.append(f"only {n_draws} draws per chain; R-hat and ESS need at least {MIN_DRAWS}")

    rhat = _Extreme()
    ess_bulk = _Extreme()
    ess_tail = _Extreme()
    can_compute = any_checked and n_draws >= MIN_DRAWS
    if chains < 2:
        failures.append("R-hat needs at least 2 chains")
    if can_compute:
        # Constant elements get an undefined R-hat (0/0); `checked` leaves them out.
        for name, array in draws.data_vars.items():
            template = array.isel(chain=0, draw=0, drop=True)
            rhat_values, bulk_values, tail_values = rank_diagnostics(array.to_numpy())
            if chains >= 2:
                rhat.update(str(name), template.copy(data=rhat_values), checked[str(name)], worst="max")
            ess_bulk.update(str(name), template.copy(data=bulk_values), checked[str(name)], worst="min")
            ess_tail.update(str(name), template.copy(data=tail_values), checked[str(name)], worst="min")

    limits = thresholds
    if rhat.value is not None and rhat.value > limits.rhat_max:
        failures.append(
            f"R-hat {_fmt_against(rhat.value, limits.rhat_max)} > {limits.rhat_max:g} (worst: {rhat.where})"
        )
    if rhat.undefined:
        failures.append(f"R-hat undefined for varying elements: {_summarise(rhat.undefined)}")
    bulk_limit, tail_limit = limits.ess_limits(chains)
    if ess_bulk.value is not None and ess_bulk.value < bulk_limit:
        failures.append(f"bulk ESS {ess_bulk.value:.0f} < {bulk_limit:g} (worst: {ess_bulk.where})")
    if ess_bulk.undefined:
        failures.append(f"bulk ESS undefined for varying elements: {_summarise(ess_bulk.undefined)}")
    if ess_tail.value is not None and ess_tail.value < tail_limit:
        failures.append(f"tail ESS {ess_tail.value:.0f} < {tail_limit:g} (worst: {ess_tail.where})")
    if ess_tail.undefined:
        failures.append(f"tail ESS undefined for varying elements: {_summarise(ess_tail.undefined)}")

    diverging = _sampler_statistic(idata, "diverging")
    if diverging is None:
        divergences = 0
        notes.append("no 'diverging' sampler statistic: divergences not checked")
    else:
        divergences = int(np.count_nonzero(diverging))
        if divergences > limits.divergences_max:
            noun = "divergence" if divergences == 1 else "divergences"
            total = diverging.size
            failures.append(
                f"{divergences} {noun} ({divergences / total:.1%} of {total} draws); "
                f"at most {limits.divergences_max} allowed"
            )

    energy = _sampler_statistic(idata, "energy")
    bfmi_min: float | None = None
    if energy is None:
        notes.append("no 'energy' sampler statistic: BFMI not checked")
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_chain = bfmi(energy)
        if not np.all(np.isfinite(per_chain)):
            failures.append("BFMI undefined for at least one chain (constant or non-finite energy)")
        finite_bfmi = per_chain[np.isfinite(per_chain)]
        if finite_bfmi.size:
            bfmi_min = float(finite_bfmi.min())
            if bfmi_min < limits.bfmi_min:
                worst_chain = int(np.nanargmin(np.where(np.isfinite(per_chain), per_chain, np.inf)))
                failures.append(
                    f"BFMI {_fmt_against(bfmi_min, limits.bfmi_min)} < {limits.bfmi_min:g} (worst: chain {worst_chain})"
                )

    result = Diagnostics(
        ok=not failures,
        rhat_max=rhat.value,
        ess_bulk_min=ess_bulk.value,
        ess_tail_min=ess_tail.value,
        divergences=divergences,
        bfmi_min=bfmi_min,
        chains=chains,
        draws=n_draws,
        failures=tuple(failures),
        thresholds=thresholds,
        rhat_worst=rhat.where,
        ess_bulk_worst=ess_bulk.where,
        ess_tail_worst=ess_tail.where,
        notes=tuple(notes),
    )
    if result.ok:
        logger.info(result.headline())
    else:
        logger.warning(result.headline())
    return result
