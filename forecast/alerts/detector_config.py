"""Configuration of the changepoint detector: prior, hazard and truncation, read from a file.

The file format is ``priors/alerts/detector.yaml`` (the priors in the dict format of
``pymc_extras.prior.Prior``); the defaults in code equal that file (a test keeps them equal).
The detector itself is :mod:`forecast.alerts.bocpd` (daily counts) and
:mod:`forecast.alerts.bocpd_windows` (window totals).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from forecast.alerts.yamlfile import check_keys, integer, number, shown
from forecast.data.yamlio import read_yaml_file
from forecast.errors import PriorConfigError, Problems

__all__ = [
    "DEFAULTS_SOURCE",
    "DETECTOR_KEYS",
    "LIKELIHOODS",
    "LIKELIHOOD_NEGATIVE_BINOMIAL",
    "LIKELIHOOD_POISSON",
    "DetectorConfig",
    "detector_config_from_dict",
    "load_detector_config",
]

LIKELIHOOD_POISSON = "poisson"
LIKELIHOOD_NEGATIVE_BINOMIAL = "negative_binomial"
LIKELIHOODS = (LIKELIHOOD_POISSON, LIKELIHOOD_NEGATIVE_BINOMIAL)

#: Keys of a detector file, all required, in the order they are documented and written.
DETECTOR_KEYS = (
    "likelihood",
    "expected_run_length",
    "rate",
    "success_probability",
    "dispersion",
    "max_run_length",
    "prune_below",
)
_PRIOR_KEYS = ("dist", "kwargs")
_GAMMA_KWARGS = ("alpha", "beta")
_BETA_KWARGS = ("alpha", "beta")

DEFAULTS_SOURCE = "<defaults>"


@dataclass(frozen=True)
class DetectorConfig:
    """Prior, hazard and truncation of the changepoint detector.

    Parameters
    ----------
    likelihood : {"negative_binomial", "poisson"}
        The count model within a regime.
    expected_run_length : float
        Prior mean length of a regime, in observations (days); the hazard is its inverse.
    rate_alpha, rate_beta : float
        Gamma(shape, rate) prior on the daily rate (``poisson``).
    p_alpha, p_beta : float
        Beta prior on the success probability (``negative_binomial``).
    dispersion : int
        The negative binomial's ``phi`` (whole number >= 1; larger is closer to Poisson).
    max_run_length : int
        Truncation ``R`` of the run-length distribution (see :mod:`forecast.alerts.bocpd`).
    prune_below : float
        Run-length probabilities below this are set to zero after each update.
    source : str
        ``"<defaults>"`` or the file read.
    """

    likelihood: str = LIKELIHOOD_NEGATIVE_BINOMIAL
    expected_run_length: float = 100.0
    rate_alpha: float = 1.0
    rate_beta: float = 0.1
    p_alpha: float = 1.0
    p_beta: float = 1.0
    dispersion: int = 2
    max_run_length: int = 365
    prune_below: float = 1.0e-12
    source: str = field(default=DEFAULTS_SOURCE, compare=False)

    def __post_init__(self) -> None:
        problems = Problems()
        _check_config_values(self.to_dict(), problems)
        problems.raise_if_any(self.source, "detector", PriorConfigError)

    @property
    def hazard(self) -> float:
        return 1.0 / self.expected_run_length

    def to_dict(self) -> dict[str, object]:
        """The file format (see ``priors/alerts/detector.yaml``), numbers as floats."""
        return {
            "likelihood": self.likelihood,
            "expected_run_length": float(self.expected_run_length),
            "rate": {"dist": "Gamma", "kwargs": {"alpha": float(self.rate_alpha), "beta": float(self.rate_beta)}},
            "success_probability": {
                "dist": "Beta",
                "kwargs": {"alpha": float(self.p_alpha), "beta": float(self.p_beta)},
            },
            "dispersion": int(self.dispersion),
            "max_run_length": int(self.max_run_length),
            "prune_below": float(self.prune_below),
        }

    def hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_prior(data: object, where: str, dist: str, kwargs: Sequence[str], problems: Problems) -> dict[str, float]:
    """A conjugate prior in the dict format of ``pymc_extras.prior.Prior`` (``{dist, kwargs}``)."""
    found: dict[str, float] = {}
    mapping = check_keys(data, _PRIOR_KEYS, where, problems, required=_PRIOR_KEYS)
    if mapping is None:
        return found
    if "dist" in mapping and mapping["dist"] != dist:
        problems.add(
            f"{where}.dist",
            f"must be {dist!r} (the conjugate prior the detector needs), got {shown(mapping['dist'])}",
        )
    args = check_keys(mapping.get("kwargs", {}), kwargs, f"{where}.kwargs", problems, required=kwargs)
    if args is not None:
        for key in kwargs:
            if key in args:
                value = number(args[key], f"{where}.kwargs.{key}", problems, low=0.0, low_open=True)
                if value is not None:
                    found[key] = value
    return found


class _DetectorValues(TypedDict, total=False):
    """The :class:`DetectorConfig` keyword arguments read from a file (those that passed)."""

    likelihood: str
    expected_run_length: float
    rate_alpha: float
    rate_beta: float
    p_alpha: float
    p_beta: float
    dispersion: int
    max_run_length: int
    prune_below: float


def _check_config_values(data: dict[str, object], problems: Problems) -> _DetectorValues:
    """Check the file format; return the DetectorConfig keyword arguments that passed."""
    out: _DetectorValues = {}
    likelihood = data.get("likelihood")
    if likelihood not in LIKELIHOODS:
        problems.add("likelihood", f"must be one of {list(LIKELIHOODS)}, got {shown(likelihood)}")
    else:
        out["likelihood"] = likelihood
    if "expected_run_length" in data:
        value = number(data["expected_run_length"], "expected_run_length", problems, low=1.0, low_open=True)
        if value is not None:
            out["expected_run_length"] = value
    if "rate" in data:
        rate = _check_prior(data["rate"], "rate", "Gamma", _GAMMA_KWARGS, problems)
        if len(rate) == 2:
            out["rate_alpha"], out["rate_beta"] = rate["alpha"], rate["beta"]
    if "success_probability" in data:
        prob = _check_prior(data["success_probability"], "success_probability", "Beta", _BETA_KWARGS, problems)
        if len(prob) == 2:
            out["p_alpha"], out["p_beta"] = prob["alpha"], prob["beta"]
    if "dispersion" in data:
        value_int = integer(data["dispersion"], "dispersion", problems, low=1, high=1000)
        if value_int is not None:
            out["dispersion"] = value_int
    if "max_run_length" in data:
        value_int = integer(data["max_run_length"], "max_run_length", problems, low=2, high=100_000)
        if value_int is not None:
            out["max_run_length"] = value_int
    if "prune_below" in data:
        value = number(data["prune_below"], "prune_below", problems, low=0.0, high=1.0e-3)
        if value is not None:
            out["prune_below"] = value
    return out


def detector_config_from_dict(raw: object, *, source: str = "<memory>") -> DetectorConfig:
    """Build a :class:`DetectorConfig` from the file format.

    Raises
    ------
    PriorConfigError
        Naming ``source`` and listing every problem; unknown and missing keys are refused
        with the list of allowed keys.
    """
    problems = Problems()
    mapping = check_keys(raw, DETECTOR_KEYS, "", problems, required=DETECTOR_KEYS)
    if mapping is None:
        problems.raise_if_any(source, "detector", PriorConfigError)
        raise AssertionError("unreachable")
    values = _check_config_values(dict(mapping), problems)
    problems.raise_if_any(source, "detector", PriorConfigError)
    return DetectorConfig(**values, source=source)


def load_detector_config(path: str | Path | None = None) -> DetectorConfig:
    """Read a detector file (prior, hazard, truncation), or return the code defaults.

    The shipped ``priors/alerts/detector.yaml`` equals the defaults (a test keeps them equal).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    PriorConfigError
        When the file is not plain YAML, has unknown or missing keys, or a bad value.
    """
    if path is None:
        return DetectorConfig()
    raw = read_yaml_file(path, "detector file", PriorConfigError)
    return detector_config_from_dict(raw, source=str(path))
