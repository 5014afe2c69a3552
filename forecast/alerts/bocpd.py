r"""Bayesian online changepoint detection (Adams and MacKay 2007) on daily counts, over fronts.

The generative model, per front: the counts fall into regimes; at every observation a new
regime starts with probability :math:`H` (the hazard, ``1 / expected_run_length``); within a
regime the counts are independent given the regime's parameter, drawn afresh from the prior:

* ``poisson``: :math:`y_t \sim \mathrm{Poisson}(\lambda)`, :math:`\lambda \sim
  \mathrm{Gamma}(\alpha_0, \beta_0)` (shape, rate).  After a run of :math:`r` counts summing
  to :math:`S` the predictive is negative binomial:
  :math:`p(y) = \frac{\Gamma(\alpha+y)}{\Gamma(\alpha)\,y!}
  \left(\frac{\beta}{\beta+1}\right)^{\alpha}\left(\frac{1}{\beta+1}\right)^{y}` with
  :math:`\alpha = \alpha_0 + S`, :math:`\beta = \beta_0 + r`.
* ``negative_binomial``: :math:`y_t \sim \mathrm{NB}(\phi, p)` (``phi`` failures, mean
  :math:`\phi(1-p)/p`) with a known whole-number dispersion :math:`\phi` and
  :math:`p \sim \mathrm{Beta}(a_0, b_0)`.  The predictive is beta-negative-binomial:
  :math:`p(y) = \frac{\Gamma(y+\phi)}{\Gamma(\phi)\,y!} \frac{B(a+\phi,\, b+y)}{B(a, b)}` with
  :math:`a = a_0 + \phi r`, :math:`b = b_0 + S`.  Use it for bursty counts: the variance is
  :math:`\mu + \mu^2/\phi`.

The run length :math:`r_t` is the number of observations in the current regime, counting
:math:`y_t`.  The recursion (after observing :math:`y_t`) is

.. math::

    P(r_t = r + 1, y_{1:t}) &\propto (1 - H)\, \pi_r(y_t)\, P(r_{t-1} = r \mid y_{1:t-1}) \\
    P(r_t = 1, y_{1:t})     &\propto H\, \pi_0(y_t)

where :math:`\pi_r` is the predictive after the last :math:`r` counts and :math:`\pi_0` the
prior predictive.  (The 2007 paper scores the new regime's first count under the *old* run's
predictive, which makes :math:`P(r_t = 0) \equiv H`; here the count that opens a regime
belongs to it, so short run lengths carry the evidence of the change.)

Truncation, so that each observation costs O(1)
-----------------------------------------------
* **Maximum run length** ``R`` (``max_run_length``): the last slot means "``R`` or more"; its
  predictive uses the last ``R`` counts (a sliding window) and the mass growing out of slot
  ``R - 1`` merges into it.  Exact when no run exceeds ``R`` observations; after that a long
  regime is summarised by its last ``R`` observations.  Every update is ``O(R)`` whatever the
  length of the series, and the state has a fixed size.
* **Pruning**: after each update, run lengths whose probability is below ``prune_below`` are
  set to zero (this keeps denormal numbers out of the arithmetic; the mass dropped is at most
  ``(R + 1) * prune_below`` per step).  ``prune_below = 0`` keeps everything.

Both are exact for the tests that compare with a brute-force, unpruned implementation
(:func:`brute_force_run_length_posterior` in the tests).

The state of a front is its run-length distribution (``R + 1`` probabilities) and the sums of
its last ``r`` counts for every ``r`` (``R + 1`` integers), plus the number of observations
seen: :meth:`DetectorState.front_bytes` serialises it exactly (float64), so a run that resumes
from saved state computes the same numbers as one that never stopped.

Speed: the predictive probabilities of a batch of observations depend on the data only, so
they are computed for the whole batch at once (log-gamma values come from a table indexed by
whole numbers, since counts are whole); the sequential part is a few vector operations per
step, vectorised over fronts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.alerts.yamlfile import Problems, check_keys, integer, number, shown
from forecast.data.yamlio import read_yaml_file
from forecast.errors import PriorConfigError

log = logging.getLogger(__name__)

__all__ = [
    "DETECTOR_KEYS",
    "LIKELIHOODS",
    "DetectorConfig",
    "DetectorOutput",
    "DetectorState",
    "detector_config_from_dict",
    "WindowState",
    "load_detector_config",
    "update",
    "update_windows",
    "window_hazard",
    "window_log_predictive",
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
        Truncation ``R`` of the run-length distribution (see the module docstring).
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


def _check_config_values(data: dict[str, object], problems: Problems) -> dict[str, object]:
    """Check the file format; return the DetectorConfig keyword arguments that passed."""
    out: dict[str, object] = {}
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
    return DetectorConfig(**values, source=source)  # type: ignore[arg-type]


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


# --------------------------------------------------------------------------------------------
# Log-gamma at (offset + whole number), from a table
# --------------------------------------------------------------------------------------------

_TABLE_LIMIT = 1 << 22  # entries (32 MiB); larger arguments use Stirling's series
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


class _LogGammaTable:
    """``lgamma(offset + m)`` for whole ``m >= 0``, from a lazily grown table."""

    def __init__(self, offset: float):
        self.offset = float(offset)
        self.values = np.empty(0)

    def _grow(self, size: int) -> None:
        size = min(_TABLE_LIMIT, max(1024, 1 << int(size - 1).bit_length()))
        start = len(self.values)
        if size <= start:
            return
        extra = np.fromiter(
            (math.lgamma(self.offset + m) for m in range(start, size)), dtype=np.float64, count=size - start
        )
        self.values = np.concatenate([self.values, extra])

    def __call__(self, m: np.ndarray, top: int) -> np.ndarray:
        """Values at ``m`` (whole numbers in ``0 .. top``)."""
        if top >= len(self.values):
            self._grow(top + 1)
        if top < len(self.values):
            return np.take(self.values, m)
        small = m < len(self.values)
        out = np.empty(m.shape)
        out[small] = self.values[m[small]]
        out[~small] = _stirling_lgamma(self.offset + m[~small].astype(np.float64))
        return out


def _stirling_lgamma(x: np.ndarray) -> np.ndarray:
    """``lgamma(x)`` for large ``x`` (here ``x >= 4e6``, where the series is exact to rounding)."""
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
    return (x - 0.5) * np.log(x) - x + _HALF_LOG_TWO_PI + series


# --------------------------------------------------------------------------------------------
# State and outputs
# --------------------------------------------------------------------------------------------

_MAGIC = b"BOCPD\x01"  # float64 and int64 bytes as they are (still read)
_MAGIC_COMPACT = b"BOCPD\x02"  # byte-shuffled and deflated (written)
_HEADER = struct.Struct("<6sqq")


@dataclass
class DetectorState:
    """Run-length distributions of several fronts (mutable: :func:`update` advances it in place).

    Attributes
    ----------
    probs : numpy.ndarray, shape (front, R + 1)
        ``probs[f, r]``: probability that the current regime holds the last ``r`` observations
        (slot ``R``: ``R`` or more).  Slot 0 is used only before the first observation.
    sums : numpy.ndarray of int64, shape (front, R + 1)
        ``sums[f, r]``: sum of the last ``r`` counts.
    n_obs : numpy.ndarray of int64, shape (front,)
        Observations processed.
    """

    probs: np.ndarray
    sums: np.ndarray
    n_obs: np.ndarray

    @classmethod
    def initial(cls, n_fronts: int, config: DetectorConfig) -> DetectorState:
        """Before any observation: all mass on run length 0."""
        size = config.max_run_length + 1
        probs = np.zeros((n_fronts, size))
        probs[:, 0] = 1.0
        return cls(
            probs=probs, sums=np.zeros((n_fronts, size), dtype=np.int64), n_obs=np.zeros(n_fronts, dtype=np.int64)
        )

    @property
    def n_fronts(self) -> int:
        return int(self.probs.shape[0])

    @property
    def max_run_length(self) -> int:
        return int(self.probs.shape[1] - 1)

    def front_bytes(self, index: int) -> bytes:
        """One front's state, exactly, compressed (about a third of the 16 bytes a slot).

        The probabilities (float64) and the differences of the window sums (int64: the counts
        themselves, small numbers) are byte-shuffled (the k-th bytes of all values together)
        and deflated; :meth:`from_front_bytes` restores them bit for bit.
        """
        header = _HEADER.pack(_MAGIC_COMPACT, self.max_run_length, int(self.n_obs[index]))
        probs = np.ascontiguousarray(self.probs[index], dtype="<f8")
        steps = np.diff(np.ascontiguousarray(self.sums[index], dtype="<i8"), prepend=np.int64(0)).astype("<i8")
        body = np.concatenate([probs.view("<i8"), steps])
        return header + zlib.compress(np.ascontiguousarray(body.view(np.uint8).reshape(-1, 8).T).tobytes(), 1)

    @classmethod
    def from_front_bytes(cls, blobs: Sequence[bytes], config: DetectorConfig) -> DetectorState:
        """Stack the states of several fronts, as written by :meth:`front_bytes`.

        Raises
        ------
        ValueError
            When a blob is not a detector state of this configuration's size.
        """
        size = config.max_run_length + 1
        probs = np.zeros((len(blobs), size))
        sums = np.zeros((len(blobs), size), dtype=np.int64)
        n_obs = np.zeros(len(blobs), dtype=np.int64)
        for i, blob in enumerate(blobs):
            if len(blob) < _HEADER.size:
                raise ValueError(f"detector state of {len(blob)} bytes is too short")
            magic, stored_r, count = _HEADER.unpack_from(blob)
            if magic not in (_MAGIC, _MAGIC_COMPACT):
                raise ValueError("not a detector state")
            if stored_r != size - 1:
                raise ValueError(f"detector state of max_run_length {stored_r} does not fit max_run_length {size - 1}")
            body = blob[_HEADER.size :]
            if magic == _MAGIC_COMPACT:
                try:
                    shuffled = zlib.decompress(body)
                except zlib.error as error:
                    raise ValueError(f"damaged detector state: {error}") from error
                if len(shuffled) != 16 * size:
                    raise ValueError(f"detector state of {len(shuffled)} bytes does not fit max_run_length {size - 1}")
                values = np.frombuffer(shuffled, dtype=np.uint8).reshape(8, -1).T.copy().view("<i8").ravel()
                probs[i] = values[:size].view("<f8")
                sums[i] = np.cumsum(values[size:])
            else:
                if len(body) != 16 * size:
                    raise ValueError(f"detector state of {len(blob)} bytes does not fit max_run_length {size - 1}")
                probs[i] = np.frombuffer(body[: 8 * size], dtype="<f8")
                sums[i] = np.frombuffer(body[8 * size :], dtype="<i8")
            n_obs[i] = count
        return cls(probs=probs, sums=sums, n_obs=n_obs)


@dataclass(frozen=True)
class DetectorOutput:
    """What :func:`update` reports for each front and step (``shape (front, step)``).

    Attributes
    ----------
    observed : bool
        False where the count was missing (the state did not move).
    changepoint_prob : float
        ``P(r_t <= k)``: probability that a regime started within the last ``k`` observations
        (``k = within_last``); NaN where not observed.
    run_length : int
        Where ``changepoint_prob >= report_above``: the most probable run length ``r* <= k``
        (the regime started ``r* - 1`` observations before this one); 0 elsewhere.
    rate_after, rate_before : float
        Where ``run_length > 0``: mean count of the last ``r*`` observations, and of the up to
        ``baseline`` observations before them (NaN when there are none); NaN elsewhere.
    n_obs : int
        Observations processed by the end of the step.
    """

    observed: np.ndarray
    changepoint_prob: np.ndarray
    run_length: np.ndarray
    rate_after: np.ndarray
    rate_before: np.ndarray
    n_obs: np.ndarray


# --------------------------------------------------------------------------------------------
# The update
# --------------------------------------------------------------------------------------------

#: Predictive weights (steps x fronts x run lengths) held at once: 16 MiB.
_CHUNK_CELLS = 1 << 21
#: Fewest and most steps per batch.
_CHUNK_STEPS = (16, 256)
#: Cells of one piece of the predictive computation (small pieces stay in the CPU cache).
_BULK_CELLS = 1 << 17


class _Predictive:
    """Log predictive probabilities of a configuration, up to terms common to every run length.

    With ``M[t, r]`` the sum of the last ``r`` counts before step ``t`` (and ``M[t + 1, r + 1]``
    that sum plus ``y_t``), both likelihoods need log-gamma only at ``offset + M`` (whole
    numbers), so each cell of ``M`` is looked up once and used for two steps.
    """

    def __init__(self, config: DetectorConfig):
        self.config = config
        size = config.max_run_length + 1
        r = np.arange(size, dtype=np.float64)
        if config.likelihood == LIKELIHOOD_POISSON:
            beta = config.rate_beta + r
            self.log_ratio = np.log(beta / (beta + 1.0))
            self.log_beta1 = np.log(beta + 1.0)
            self.constant = config.rate_alpha * self.log_ratio
            self.alpha_table = _LogGammaTable(config.rate_alpha)
        else:
            phi = config.dispersion
            a0 = config.p_alpha
            self.constant = np.array([math.lgamma(a0 + phi * (k + 1)) - math.lgamma(a0 + phi * k) for k in range(size)])
            self.phi_r = (phi * np.arange(size + 1)).astype(np.int64)
            self.b_table = _LogGammaTable(config.p_beta)
            self.ab_table = _LogGammaTable(config.p_alpha + config.p_beta)

    def log_pred(self, sums: np.ndarray, counts: np.ndarray, top: int) -> np.ndarray:
        """``log pi_r(y_t)`` from ``sums`` (..., T + 1, R + 2) and ``counts`` (..., T).

        ``sums[..., t, r]`` is the sum of the last ``r`` counts before step ``t``; row ``T`` is
        after the last step; ``top`` bounds ``sums``.  Returns (..., T, R + 1).
        """
        before = sums[..., :-1, :-1]
        if self.config.likelihood == LIKELIHOOD_POISSON:
            looked_up = self.alpha_table(sums, top)
            out = looked_up[..., 1:, 1:] - looked_up[..., :-1, :-1]
            out += before * self.log_ratio
            out += self.constant
            out -= counts[..., None] * self.log_beta1
            return out
        looked_up = self.b_table(sums, top)
        mixed = self.ab_table(sums + self.phi_r, top + int(self.phi_r[-1]))
        out = looked_up[..., 1:, 1:] - looked_up[..., :-1, :-1]
        out += mixed[..., :-1, :-1]
        out -= mixed[..., 1:, 1:]
        out += self.constant
        return out


_PREDICTIVES: dict[str, _Predictive] = {}


def _predictive(config: DetectorConfig) -> _Predictive:
    key = config.hash()
    if key not in _PREDICTIVES:
        _PREDICTIVES[key] = _Predictive(config)
    return _PREDICTIVES[key]


def _window_sums(history: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Sums of the last r counts before each step, for ``r = 0 .. R + 1``.

    Parameters
    ----------
    history : array (..., R + 1)
        Sums of the last ``r`` counts before the batch.
    counts : array of int (..., T)

    Returns
    -------
    sums : array of int64 (..., T + 1, R + 2)
        Row ``t``: the sums before count ``t`` (row ``T``: after the batch).  Column ``R + 1``
        of row 0 is a placeholder (never used: the predictive needs it only from row 1).
    top : int
        An upper bound of ``sums``.
    """
    max_r = history.shape[-1] - 1
    n_steps = counts.shape[-1]
    lead = history.shape[:-1]
    cumulative = np.empty((*lead, max_r + 2 + n_steps), dtype=np.int64)
    cumulative[..., 1 : max_r + 1] = -history[..., :0:-1]  # P[-j] = -history[j], j = R..1
    cumulative[..., 0] = cumulative[..., 1]
    cumulative[..., max_r + 1] = 0
    np.cumsum(counts, axis=-1, out=cumulative[..., max_r + 2 :])
    windows = np.lib.stride_tricks.sliding_window_view(cumulative, max_r + 2, axis=-1)[..., ::-1]
    top = int(cumulative.max() - cumulative.min()) if cumulative.size else 0
    return cumulative[..., max_r + 1 :, None] - windows, top


#: Predictive weights below exp(-600) relative to the best run length are raised to it: they
#: carry less than 1e-250 of the mass, and exp() of smaller numbers is slow (it underflows).
_LOWEST_RELATIVE_LOG_WEIGHT = -600.0


def _relative_log_pred(
    predictive: _Predictive, window: np.ndarray, y: np.ndarray, top: int, log_keep: float
) -> np.ndarray:
    """``log((1 - H) pi_r(y_t))`` less its maximum over ``r`` (so at most ``log(1 - H)``)."""
    log_pred = predictive.log_pred(window, y, top)
    log_pred -= log_pred.max(axis=-1, keepdims=True)
    np.maximum(log_pred, _LOWEST_RELATIVE_LOG_WEIGHT, out=log_pred)
    log_pred += log_keep
    return log_pred


class _Stepper:
    """The sequential part of the update for steps where every front is observed.

    Holds two buffers for the run-length distribution (swapped at each step) and views into
    them made once, so that a step is a handful of numpy calls whatever the number of fronts.
    """

    def __init__(self, n_fronts: int, size: int, kmax: int, prune: float):
        self.prune = prune
        self.buffers = [np.zeros((n_fronts, size)), np.zeros((n_fronts, size))]
        self.q = np.empty((n_fronts, size))
        self.mask = np.empty((n_fronts, size), dtype=bool)
        self.total = np.empty((n_fronts, 1))
        q = self.q
        self.q_views = (q[:, 1:-1], q[:, -1], q[:, 0])
        self.views = [(b[:, 2:], b[:, -1], b[:, 1], b[:, : kmax + 1]) for b in self.buffers]
        # One front: the same operations on 1-d views (numpy calls on 1-d arrays cost less).
        self.single = n_fronts == 1
        self.q_flat = (q[0], q[0, 1:-1], q[0, -1:], q[0, :1])
        self.flat = [(b[0], b[0, 2:], b[0, -1:], b[0, 1:2], b[0, : kmax + 1]) for b in self.buffers]
        self.mask_flat = self.mask[0]
        self.current = 0
        self.fresh = False

    @property
    def probs(self) -> np.ndarray:
        return self.buffers[self.current]

    def start(self, probs: np.ndarray, fresh: bool) -> None:
        np.copyto(self.buffers[self.current], probs)
        self.fresh = fresh

    def finish(self) -> np.ndarray:
        return self.buffers[self.current].copy()

    def step(self, weights: np.ndarray, cp_weight: np.ndarray, recent: np.ndarray) -> None:
        if self.single and not self.fresh:
            self._step_single(weights[0], cp_weight, recent[0])
            return
        probs = self.buffers[self.current]
        other = 1 - self.current
        new = self.buffers[other]
        shifted, last, first, head = self.views[other]
        q_middle, q_last, q_first = self.q_views
        np.multiply(probs, weights, out=self.q)
        np.copyto(shifted, q_middle)  # a run of r observations grows to r + 1 ...
        np.add(last, q_last, out=last)  # ... and the last slot ("R or more") keeps its own mass
        np.add(q_first, cp_weight, out=first)  # a new regime opens with this observation
        if self.fresh:  # slot 0 (no observation yet) empties after the first step
            new[:, 0] = 0.0
            probs[:, 0] = 0.0
            self.fresh = False
        np.add.reduce(new, axis=1, keepdims=True, out=self.total)
        np.divide(new, self.total, out=new)
        if self.prune > 0.0:
            np.less(new, self.prune, out=self.mask)
            np.putmask(new, self.mask, 0.0)
        np.copyto(recent, head)
        self.current = other

    def _step_single(self, weights: np.ndarray, cp_weight: np.ndarray, recent: np.ndarray) -> None:
        probs = self.flat[self.current][0]
        other = 1 - self.current
        new, shifted, last, first, head = self.flat[other]
        q, q_middle, q_last, q_first = self.q_flat
        np.multiply(probs, weights, out=q)
        np.copyto(shifted, q_middle)
        np.add(last, q_last, out=last)
        np.add(q_first, cp_weight, out=first)
        np.divide(new, np.add.reduce(new), out=new)
        if self.prune > 0.0:
            np.less(new, self.prune, out=self.mask_flat)
            np.putmask(new, self.mask_flat, 0.0)
        np.copyto(recent, head)
        self.current = other


#: Batches of one front at least this long run their sequential part in compiled code
#: (:mod:`forecast.alerts.bocpd_kernel`, numba; bit-identical to the numpy path).  Shorter
#: batches (a scheduled run's new days) stay in numpy and never import numba.
KERNEL_MIN_STEPS = 1024


def _single_front_kernel() -> Any:
    """:mod:`forecast.alerts.bocpd_kernel`, or None without numba (then numpy does the steps)."""
    try:
        from forecast.alerts import bocpd_kernel
    except ImportError:  # pragma: no cover - numba comes with nutpie here
        log.info("numba is not available: the detector runs its numpy path")
        return None
    return bocpd_kernel


def update(
    config: DetectorConfig,
    state: DetectorState,
    counts: np.ndarray,
    *,
    within_last: int | Sequence[int] | np.ndarray = 7,
    baseline: int | Sequence[int] | np.ndarray = 28,
    report_above: float | Sequence[float] | np.ndarray = 0.0,
) -> DetectorOutput:
    """Advance ``state`` (in place) over a batch of observations.

    Parameters
    ----------
    config : DetectorConfig
        Must be the configuration the state was made with.
    state : DetectorState
        Advanced in place (its arrays may be replaced).
    counts : array, shape (front, step)
        Whole counts >= 0; NaN where a front was not observed on a step (a day under a window
        total, or in a declared gap): its state is left as it is (no run-length growth, no
        hazard step), and its run lengths count observations, not days.
    within_last : int or array of int (front,)
        ``k`` in ``P(r_t <= k)``, per front or for all.
    baseline : int or array of int (front,)
        Observations before the detected regime whose mean is ``rate_before``.
    report_above : float or array (front,)
        Compute the run length and rates where ``changepoint_prob`` is at least this
        (0 computes them on every step, at some cost).

    Returns
    -------
    DetectorOutput

    Notes
    -----
    Feeding a series in one batch or in several gives the same numbers, bit for bit.
    """
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != state.n_fronts:
        raise ValueError(f"counts must have shape (front={state.n_fronts}, step), got {values.shape}")
    if state.max_run_length != config.max_run_length:
        raise ValueError("the state was made with another max_run_length")
    observed = ~np.isnan(values)
    seen = values[observed]
    if np.any(seen < 0) or np.any(seen != np.floor(seen)):
        raise ValueError("counts must be whole numbers >= 0")
    whole = np.where(observed, values, 0.0).astype(np.int64)
    n_fronts, n_steps = values.shape
    size = config.max_run_length + 1
    k = np.broadcast_to(np.asarray(within_last, dtype=np.int64), (n_fronts,)).copy()
    if np.any(k < 1) or np.any(k >= size - 1):
        raise ValueError(f"within_last must be between 1 and max_run_length - 1 ({size - 2})")
    threshold = np.broadcast_to(np.asarray(report_above, dtype=np.float64), (n_fronts,))
    baselines = np.broadcast_to(np.asarray(baseline, dtype=np.int64), (n_fronts,))

    cp_prob = np.full((n_fronts, n_steps), np.nan)
    run_length = np.zeros((n_fronts, n_steps), dtype=np.int64)
    rate_after = np.full((n_fronts, n_steps), np.nan)
    rate_before = np.full((n_fronts, n_steps), np.nan)
    n_obs_out = np.zeros((n_fronts, n_steps), dtype=np.int64)
    if n_fronts == 0 or n_steps == 0:
        return DetectorOutput(observed, cp_prob, run_length, rate_after, rate_before, n_obs_out)

    predictive = _predictive(config)
    log_keep = math.log1p(-config.hazard)
    hazard_ratio = config.hazard / (1.0 - config.hazard)
    kmax = int(k.max())
    prune = config.prune_below
    chunk = int(np.clip(_CHUNK_CELLS // (size * n_fronts), *_CHUNK_STEPS))
    stepper = _Stepper(n_fronts, size, kmax, prune)
    kernel = _single_front_kernel() if n_fronts == 1 and n_steps >= KERNEL_MIN_STEPS else None

    for lo in range(0, n_steps, chunk):
        hi = min(n_steps, lo + chunk)
        block_obs = observed[:, lo:hi]
        full_fronts = block_obs.all(axis=1)
        # weights[t, f, r] = (1 - H) pi_r(y_t), up to a factor common to the row.
        weights = np.empty((hi - lo, n_fronts, size))
        sums: list[np.ndarray | None] = [None] * n_fronts
        rows_of: list[np.ndarray | None] = [None] * n_fronts
        full_group = np.flatnonzero(full_fronts)
        per_group = max(1, _BULK_CELLS // ((hi - lo + 1) * (size + 1)))
        for start in range(0, len(full_group), per_group):
            group = full_group[start : start + per_group]
            y = whole[group, lo:hi]
            window, top = _window_sums(state.sums[group], y)
            log_pred = _relative_log_pred(predictive, window, y, top, log_keep)
            if group[-1] - group[0] == len(group) - 1:  # a contiguous block: write in place
                np.exp(log_pred.transpose(1, 0, 2), out=weights[:, group[0] : group[-1] + 1])
            else:
                weights[:, group] = np.exp(log_pred).transpose(1, 0, 2)
            state.sums[group] = window[:, -1, :-1]
            for i, front in enumerate(group):
                sums[front] = window[i]
        for front in np.flatnonzero(~full_fronts):
            steps = np.flatnonzero(block_obs[front])
            if len(steps) == 0:
                continue
            y = whole[front, lo + steps]
            window, top = _window_sums(state.sums[front], y)
            log_pred = _relative_log_pred(predictive, window, y, top, log_keep)
            weights[steps, front] = np.exp(log_pred)
            state.sums[front] = window[-1, :-1]
            sums[front] = window
            rows = np.full(hi - lo, -1)
            rows[steps] = np.arange(len(steps))
            rows_of[front] = rows
        cp_weight = hazard_ratio * weights[:, :, 0]

        all_observed = block_obs.all(axis=0).tolist()
        counted = state.n_obs[:, None] + np.cumsum(block_obs, axis=1)
        n_obs_out[:, lo:hi] = counted
        # The first kmax + 1 run-length probabilities after each step, for the outputs.
        recent = np.zeros((hi - lo, n_fronts, kmax + 1))
        stepper.start(state.probs, bool(np.any(state.n_obs == 0)))
        for j in range(hi - lo):
            if kernel is not None and not stepper.fresh:
                # One front, past its first observation: the rest of the block in compiled code.
                stepper.current = kernel.single_front_steps(
                    [b[0] for b in stepper.buffers],
                    stepper.current,
                    stepper.q[0],
                    weights[j:, 0],
                    cp_weight[j:, 0],
                    block_obs[0, j:],
                    recent[j:, 0],
                    prune,
                )
                break
            if all_observed[j]:
                stepper.step(weights[j], cp_weight[j], recent[j])
                continue
            front_idx = np.flatnonzero(block_obs[:, j])
            if len(front_idx) == 0:
                continue
            probs = stepper.probs
            q = probs[front_idx] * weights[j, front_idx]
            new = np.zeros_like(q)
            new[:, 2:] = q[:, 1:-1]
            new[:, -1] += q[:, -1]
            new[:, 1] = q[:, 0] + cp_weight[j, front_idx]
            new /= new.sum(axis=1, keepdims=True)
            if prune > 0.0:
                new[new < prune] = 0.0
            probs[front_idx] = new
            recent[j, front_idx] = new[:, : kmax + 1]
            stepper.fresh = True
        state.probs = stepper.finish()
        state.n_obs = counted[:, -1].copy()

        # Outputs: P(r <= k), and where it is high, the most probable recent run length.
        cumulative_k = np.cumsum(recent, axis=2)  # (step, front, r)
        cp = np.take_along_axis(cumulative_k, np.broadcast_to(k[None, :, None], (hi - lo, n_fronts, 1)), axis=2)[..., 0]
        cp = cp.T  # (front, step)
        cp[~block_obs] = np.nan
        cp_prob[:, lo:hi] = cp
        for front, j in zip(*np.nonzero(cp >= threshold[:, None]), strict=True):
            window = sums[front]
            assert window is not None
            rows = rows_of[front]
            row = j if rows is None else int(rows[j])
            _describe_regime(
                recent[j, front],
                window[row + 1, :-1],
                int(counted[front, j]),
                int(k[front]),
                int(baselines[front]),
                int(front),
                lo + int(j),
                run_length,
                rate_after,
                rate_before,
            )
    return DetectorOutput(
        observed=observed,
        changepoint_prob=cp_prob,
        run_length=run_length,
        rate_after=rate_after,
        rate_before=rate_before,
        n_obs=n_obs_out,
    )


def _describe_regime(
    probs: np.ndarray,
    sums: np.ndarray,
    n_obs: int,
    k: int,
    baseline: int,
    front: int,
    step: int,
    run_length: np.ndarray,
    rate_after: np.ndarray,
    rate_before: np.ndarray,
) -> None:
    """Most probable recent run length and the mean counts after and before its start.

    ``probs`` holds (at least) the first ``k + 1`` run-length probabilities; ``sums`` the
    ``R + 1`` sums of the last ``r`` counts.
    """
    max_r = len(sums) - 1
    r_star = 1 + int(np.argmax(probs[1 : k + 1]))
    run_length[front, step] = r_star
    rate_after[front, step] = sums[r_star] / r_star
    span = min(baseline, n_obs - r_star, max_r - r_star)
    if span > 0:
        rate_before[front, step] = (sums[r_star + span] - sums[r_star]) / span


# --------------------------------------------------------------------------------------------
# Window totals: observations with an exposure
# --------------------------------------------------------------------------------------------

_WINDOW_MAGIC = b"BOCPDW"
_WINDOW_HEADER = struct.Struct("<6sqqq")


def window_log_predictive(
    config: DetectorConfig, total: np.ndarray, days: np.ndarray, count: int, window_days: int
) -> np.ndarray:
    r"""Log predictive probability of a window total, given a regime's counts and exposure so far.

    A regime that has seen ``total`` events over ``days`` days of exposure predicts the total
    :math:`y` of a window of :math:`w` days (``count``, ``window_days``):

    * ``poisson``: the daily rate has posterior :math:`\mathrm{Gamma}(a, b)` with
      :math:`a = \alpha_0 + \mathrm{total}`, :math:`b = \beta_0 + \mathrm{days}`; the window total
      is Poisson with mean :math:`\lambda w`, so its predictive is negative binomial with
      :math:`r = a` and :math:`p = b / (b + w)`:
      :math:`p(y) = \frac{\Gamma(a+y)}{\Gamma(a)\,y!} \left(\frac{b}{b+w}\right)^{a}
      \left(\frac{w}{b+w}\right)^{y}`.  Afterwards :math:`a \mathrel{+}= y`,
      :math:`b \mathrel{+}= w`.
    * ``negative_binomial``: the sum of :math:`w` independent :math:`\mathrm{NB}(\phi, p)` counts
      with the same :math:`p` is :math:`\mathrm{NB}(w\phi, p)`, so the window total is exactly
      a negative binomial with :math:`w\phi` in place of :math:`\phi`, and the predictive is
      beta-negative-binomial: :math:`p(y) = \frac{\Gamma(y + w\phi)}{\Gamma(w\phi)\,y!}
      \frac{B(a + w\phi,\, b + y)}{B(a, b)}` with :math:`a = a_0 + \phi\,\mathrm{days}`,
      :math:`b = b_0 + \mathrm{total}`.  Afterwards :math:`a \mathrel{+}= w\phi`,
      :math:`b \mathrel{+}= y`.

    Both are the exact predictives of the daily model summed over the window: a window of
    :math:`w` days updates the posterior exactly as :math:`w` daily counts with the same total
    would (the total is a sufficient statistic), and :math:`w = 1` gives the daily predictive.

    Parameters
    ----------
    config : DetectorConfig
    total, days : array of int
        Events and days of exposure of the regime so far (one entry per run length).
    count, window_days : int
        The window's total and its length in days (>= 1).
    """
    total = np.asarray(total, dtype=np.float64)
    days = np.asarray(days, dtype=np.float64)
    y = float(count)
    w = float(window_days)
    if config.likelihood == LIKELIHOOD_POISSON:
        a = config.rate_alpha + total
        b = config.rate_beta + days
        return _lgamma(a + y) - _lgamma(a) - math.lgamma(y + 1.0) + a * np.log(b / (b + w)) + y * np.log(w / (b + w))
    m = config.dispersion * w
    a = config.p_alpha + config.dispersion * days
    b = config.p_beta + total
    return math.lgamma(y + m) - math.lgamma(m) - math.lgamma(y + 1.0) + _log_beta(a + m, b + y) - _log_beta(a, b)


def _lgamma(x: np.ndarray) -> np.ndarray:
    """``lgamma`` elementwise (window series are short: a Python loop over R + 1 values is enough)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    return np.fromiter((math.lgamma(v) for v in flat), dtype=np.float64, count=flat.size).reshape(np.shape(x))


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _lgamma(a) + _lgamma(b) - _lgamma(a + b)


def window_hazard(config: DetectorConfig, window_days: int) -> float:
    r"""Probability that a new regime starts during a window of ``window_days`` days.

    A change can happen on each day with probability :math:`H`, so over :math:`w` days
    :math:`H_w = 1 - (1 - H)^w`.  A regime that starts inside a window is taken to start with
    the window (the window's total is scored as a whole under the new regime): the detector
    cannot place a change inside a window, only between windows.
    """
    return -math.expm1(window_days * math.log1p(-config.hazard))


@dataclass
class WindowState:
    """Run-length distribution of one series of window totals (mutable: advanced in place).

    Attributes
    ----------
    probs : numpy.ndarray, shape (R + 1,)
        ``probs[r]``: probability that the current regime holds the last ``r`` windows (slot
        ``R``: ``R`` or more; slot 0 only before the first window).
    sums, days : numpy.ndarray of int64, shape (R + 1,)
        Events and days of exposure of the last ``r`` windows.
    n_obs : int
        Windows processed.
    n_days : int
        Days covered by the windows processed.
    """

    probs: np.ndarray
    sums: np.ndarray
    days: np.ndarray
    n_obs: int = 0
    n_days: int = 0

    @classmethod
    def initial(cls, config: DetectorConfig) -> WindowState:
        size = config.max_run_length + 1
        probs = np.zeros(size)
        probs[0] = 1.0
        return cls(probs=probs, sums=np.zeros(size, dtype=np.int64), days=np.zeros(size, dtype=np.int64))

    @property
    def max_run_length(self) -> int:
        return int(self.probs.shape[0] - 1)

    def to_bytes(self) -> bytes:
        """The state, exactly (float64 and int64 little-endian)."""
        return (
            _WINDOW_HEADER.pack(_WINDOW_MAGIC, self.max_run_length, int(self.n_obs), int(self.n_days))
            + np.ascontiguousarray(self.probs, dtype="<f8").tobytes()
            + np.ascontiguousarray(self.sums, dtype="<i8").tobytes()
            + np.ascontiguousarray(self.days, dtype="<i8").tobytes()
        )

    @classmethod
    def from_bytes(cls, blob: bytes, config: DetectorConfig) -> WindowState:
        """Read :meth:`to_bytes`.

        Raises
        ------
        ValueError
            When the blob is not a window state of this configuration's size.
        """
        size = config.max_run_length + 1
        if len(blob) != _WINDOW_HEADER.size + 24 * size:
            raise ValueError(f"window state of {len(blob)} bytes does not fit max_run_length {size - 1}")
        magic, stored_r, n_obs, n_days = _WINDOW_HEADER.unpack_from(blob)
        if magic != _WINDOW_MAGIC or stored_r != size - 1:
            raise ValueError("not a window detector state of this configuration")
        body = blob[_WINDOW_HEADER.size :]
        return cls(
            probs=np.frombuffer(body[: 8 * size], dtype="<f8").copy(),
            sums=np.frombuffer(body[8 * size : 16 * size], dtype="<i8").copy(),
            days=np.frombuffer(body[16 * size :], dtype="<i8").copy(),
            n_obs=int(n_obs),
            n_days=int(n_days),
        )


def update_windows(
    config: DetectorConfig,
    state: WindowState,
    counts: Sequence[int] | np.ndarray,
    window_days: Sequence[int] | np.ndarray,
    *,
    within_last: int = 7,
    baseline: int = 28,
    report_above: float = 0.0,
) -> DetectorOutput:
    r"""Advance ``state`` (in place) over window totals of one series, in the order of their end dates.

    The recursion is the daily one (see the module docstring) with two changes for a window of
    :math:`w_t` days: the predictive is the window predictive of
    :func:`window_log_predictive`, and the hazard is :math:`H_{w_t} = 1 - (1 - H)^{w_t}`
    (:func:`window_hazard`), since a window of :math:`w` days covers :math:`w` days on which a
    regime could have started.  Run lengths count windows; truncation and pruning are as for
    daily counts.  Windows of one day give the daily detector's numbers.

    Parameters
    ----------
    config : DetectorConfig
    state : WindowState
        Advanced in place.
    counts, window_days : arrays of int (step,)
        Window totals (>= 0) and lengths in days (>= 1), ordered by end date.
    within_last : int
        ``k`` in days: the changepoint probability is :math:`P(r_t \le j_t)` where :math:`j_t`
        is the number of latest windows that together cover at most ``k`` days, and at least
        1 (the window just observed).  For daily counts :math:`j_t = k`.
    baseline : int
        Days of exposure before the detected regime whose mean daily rate is ``rate_before``
        (whole windows, at least one).
    report_above : float
        Compute the run length and rates where ``changepoint_prob`` is at least this.

    Returns
    -------
    DetectorOutput
        With one front (shape ``(1, step)``).  ``n_obs`` is the number of **days** covered by
        the windows so far (what the rules' ``warmup`` compares with); ``run_length`` counts
        windows; ``rate_after`` and ``rate_before`` are mean counts **per day**.
    """
    y_all = np.asarray(counts, dtype=np.int64).ravel()
    w_all = np.asarray(window_days, dtype=np.int64).ravel()
    if y_all.shape != w_all.shape:
        raise ValueError(f"counts and window_days differ in length: {y_all.shape} and {w_all.shape}")
    if np.any(y_all < 0):
        raise ValueError("window totals must be whole numbers >= 0")
    if np.any(w_all < 1):
        raise ValueError("window lengths must be at least 1 day")
    if state.max_run_length != config.max_run_length:
        raise ValueError("the state was made with another max_run_length")
    if within_last < 1:
        raise ValueError("within_last must be at least 1")
    n_steps = len(y_all)
    size = config.max_run_length + 1
    cp_prob = np.full((1, n_steps), np.nan)
    run_length = np.zeros((1, n_steps), dtype=np.int64)
    rate_after = np.full((1, n_steps), np.nan)
    rate_before = np.full((1, n_steps), np.nan)
    n_obs_out = np.zeros((1, n_steps), dtype=np.int64)
    prune = config.prune_below
    for t in range(n_steps):
        y, w = int(y_all[t]), int(w_all[t])
        hazard = window_hazard(config, w)
        log_pred = window_log_predictive(config, state.sums, state.days, y, w)
        log_pred -= log_pred.max()
        np.maximum(log_pred, _LOWEST_RELATIVE_LOG_WEIGHT, out=log_pred)
        pred = np.exp(log_pred)
        q = state.probs * pred * (1.0 - hazard)
        new = np.zeros(size)
        new[2:] = q[1:-1]  # a run of r windows grows to r + 1 ...
        new[-1] += q[-1]  # ... and the last slot ("R or more") keeps its own mass
        new[1] = q[0] + hazard * pred[0]  # a new regime opens with this window (probs sum to 1)
        new /= new.sum()
        if prune > 0.0:
            new[new < prune] = 0.0
        sums = np.empty_like(state.sums)
        days = np.empty_like(state.days)
        sums[0], days[0] = 0, 0
        sums[1:] = state.sums[:-1] + y
        days[1:] = state.days[:-1] + w
        state.probs, state.sums, state.days = new, sums, days
        state.n_obs += 1
        state.n_days += w
        n_obs_out[0, t] = state.n_days
        recent = max(1, int(np.searchsorted(days[1:], within_last, side="right")))
        recent = min(recent, size - 1)
        cp_prob[0, t] = float(new[1 : recent + 1].sum())
        if cp_prob[0, t] >= report_above:
            r_star = 1 + int(np.argmax(new[1 : recent + 1]))
            run_length[0, t] = r_star
            rate_after[0, t] = sums[r_star] / days[r_star]
            available = min(state.n_obs, size - 1)
            if r_star < available:
                # whole windows before the regime, up to `baseline` days (at least one window)
                span = int(np.searchsorted(days[r_star + 1 : available + 1] - days[r_star], baseline, side="right"))
                end = r_star + max(1, span)
                rate_before[0, t] = (sums[end] - sums[r_star]) / (days[end] - days[r_star])
    return DetectorOutput(
        observed=np.ones((1, n_steps), dtype=bool),
        changepoint_prob=cp_prob,
        run_length=run_length,
        rate_after=rate_after,
        rate_before=rate_before,
        n_obs=n_obs_out,
    )
