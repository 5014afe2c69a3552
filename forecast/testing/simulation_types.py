"""What :func:`forecast.testing.simulate.simulate_panel` takes and returns.

Interventions and self-excitation to simulate, and the truth a simulation drew (the values
that parameter-recovery and coverage tests compare a fit with).  Days are integer indices
(days since the first simulated day) or dates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TypeGuard

import numpy as np
import pandas as pd

from forecast import names as n
from forecast.data.interventions import FRONT_SEPARATOR

#: A day given either as an integer index (days since the first simulated day) or as a date.
DayOrDate = int | str | date | pd.Timestamp | np.datetime64


@dataclass(frozen=True)
class SelfExcitation:
    """Self-excitation: each event adds ``strength * exp(-lag / decay)`` to later daily rates.

    Parameters
    ----------
    strength : float
        :math:`\\alpha \\ge 0`, the rate added the day after one event, before decay.
    decay : float
        :math:`\\kappa > 0`, the e-folding time of the added rate, in days.

    Raises
    ------
    ValueError
        For a negative strength, a non-positive decay, or a branching ratio of 1 or more
        (the process would explode).
    """

    strength: float
    decay: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"self-excitation strength must be >= 0; got {self.strength!r}")
        if not (math.isfinite(self.decay) and self.decay > 0):
            raise ValueError(f"self-excitation decay must be a positive number of days; got {self.decay!r}")
        if self.branching_ratio >= 1:
            raise ValueError(
                f"self-excitation with strength {self.strength} and decay {self.decay} has branching ratio "
                f"{self.branching_ratio:.3g} >= 1: the simulated counts would grow without bound"
            )

    @property
    def branching_ratio(self) -> float:
        """Expected number of later events triggered by one event: ``sum_{lag>=1} strength * exp(-lag/decay)``."""
        carried = math.exp(-1.0 / self.decay)
        return self.strength * carried / (1.0 - carried)


@dataclass(frozen=True)
class SimulatedIntervention:
    """An intervention whose effect on the simulated log rate is known.

    Parameters
    ----------
    start : int or date-like
        First day: an integer day index (0 is the first simulated day) or a date.
    shape : {"pulse", "window", "step"}
        See :mod:`forecast.data.shapes`.
    effect : float or sequence of float
        Log rate-ratio at full strength (shape value 1).  A scalar applies to every front the
        intervention touches; a sequence gives one value per front, in the order of
        ``fronts`` (or of the simulated fronts, as named to :func:`simulate_panel`, when
        ``fronts`` is None).
    end : int or date-like, optional
        Last day, inclusive; required for ``window`` and not allowed for the other shapes.
    half_life : float, optional
        Days; required for ``pulse`` and not allowed for the other shapes.
    fronts : sequence of str, optional
        Fronts the intervention touches; None means every front.
    kind : str
        Free text written to the ``kind`` column (``strike``, ``ceasefire``...).
    label : str
        Free text written to the ``label`` column; by default built from kind, shape and
        start.

    Raises
    ------
    ValueError
        For an unknown shape, a missing or superfluous ``end`` / ``half_life``, a
        non-finite effect, or empty or malformed front names.
    """

    start: DayOrDate
    shape: str
    effect: float | tuple[float, ...]
    end: DayOrDate | None = None
    half_life: float | None = None
    fronts: tuple[str, ...] | None = None
    kind: str = "strike"
    label: str = ""

    def __post_init__(self) -> None:
        if self.shape not in n.SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; allowed: {list(n.SHAPES)}")
        _check_day_or_date(self.start, "start")
        if self.shape == n.SHAPE_WINDOW:
            if self.end is None:
                raise ValueError("a window intervention needs end (its last day, inclusive)")
            _check_day_or_date(self.end, "end")
        elif self.end is not None:
            raise ValueError(f"end is only used by window interventions, not by a {self.shape}")
        if self.shape == n.SHAPE_PULSE:
            if self.half_life is None or not (math.isfinite(self.half_life) and self.half_life > 0):
                raise ValueError(f"a pulse intervention needs half_life > 0 (days); got {self.half_life!r}")
        elif self.half_life is not None:
            raise ValueError(f"half_life is only used by pulse interventions, not by a {self.shape}")

        effect = np.asarray(self.effect, dtype=float)
        if effect.ndim > 1 or effect.size == 0 or not np.all(np.isfinite(effect)):
            raise ValueError(f"effect must be a finite number or a non-empty sequence of them; got {self.effect!r}")
        object.__setattr__(self, "effect", float(effect) if effect.ndim == 0 else tuple(effect.tolist()))

        if self.fronts is not None:
            fronts = (self.fronts,) if isinstance(self.fronts, str) else tuple(self.fronts)
            if not fronts:
                raise ValueError("fronts must name at least one front, or be None for every front")
            for front in fronts:
                if not isinstance(front, str) or not front.strip() or FRONT_SEPARATOR in front:
                    raise ValueError(f"front names must be non-empty text without {FRONT_SEPARATOR!r}; got {front!r}")
            if len(set(fronts)) != len(fronts):
                raise ValueError(f"fronts are named twice: {list(fronts)}")
            object.__setattr__(self, "fronts", fronts)
            if isinstance(self.effect, tuple) and len(self.effect) != len(fronts):
                raise ValueError(f"effect gives {len(self.effect)} values for {len(fronts)} fronts {list(fronts)}")
        if not self.label:
            object.__setattr__(self, "label", f"{self.kind} {self.shape} from {_describe_day(self.start)}")


@dataclass(frozen=True, eq=False)
class SimulationTruth:
    """Everything a simulated panel was generated from.

    Per-front arrays follow :attr:`fronts`, which is sorted and equal to the panel's
    ``fronts``.  Days are indices into :attr:`dates` (day 0 is the first simulated day).

    Attributes
    ----------
    fronts : tuple of str
        Front names, sorted.
    dates : pandas.DatetimeIndex
        The simulated days.
    baseline : numpy.ndarray, shape (front,)
        Baseline log daily rates :math:`b_f`.
    changepoint_days : numpy.ndarray of int, shape (front, changepoint)
        :math:`\\tau_{f,k}`, sorted and distinct within each front; the jump applies from
        that day on.
    changepoint_jumps : numpy.ndarray, shape (front, changepoint)
        Log jumps :math:`\\delta_{f,k}`.
    interventions : tuple of SimulatedIntervention
        As given.
    intervention_start_days : numpy.ndarray of int, shape (intervention,)
        First day of each intervention as a day index.
    intervention_end_days : numpy.ndarray of float, shape (intervention,)
        Last day of each window intervention (NaN for the other shapes).
    intervention_shapes : numpy.ndarray, shape (intervention, day)
        :math:`s_j(t)`.
    intervention_effects : numpy.ndarray, shape (front, intervention)
        :math:`\\beta_{f,j}`, 0 where the intervention does not touch the front.
    dispersion : numpy.ndarray of shape (front,), or None
        Negative binomial dispersion :math:`\\phi_f`; None for Poisson counts.
    self_excitation : SelfExcitation or None
        Strength and decay, when used.
    background_log_rate : numpy.ndarray, shape (front, day)
        :math:`\\eta_{f,t}`: baseline, changepoints and interventions.
    log_rate : numpy.ndarray, shape (front, day)
        :math:`\\log \\lambda_{f,t}`, the log of the daily mean the counts were drawn from
        (equal to ``background_log_rate`` without self-excitation).
    daily_counts : numpy.ndarray of int, shape (front, day)
        The simulated counts, before any window totals were formed.
    window_fronts : tuple of str
        Fronts reported as window totals.
    window_every : int
        Length of those windows in days (the last one may be shorter).
    random_seed : int
        The seed everything was drawn from.
    """

    fronts: tuple[str, ...]
    dates: pd.DatetimeIndex
    baseline: np.ndarray
    changepoint_days: np.ndarray
    changepoint_jumps: np.ndarray
    interventions: tuple[SimulatedIntervention, ...]
    intervention_start_days: np.ndarray
    intervention_end_days: np.ndarray
    intervention_shapes: np.ndarray
    intervention_effects: np.ndarray
    dispersion: np.ndarray | None
    self_excitation: SelfExcitation | None
    background_log_rate: np.ndarray
    log_rate: np.ndarray
    daily_counts: np.ndarray
    window_fronts: tuple[str, ...]
    window_every: int
    random_seed: int

    @property
    def n_fronts(self) -> int:
        return len(self.fronts)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def n_changepoints(self) -> int:
        return int(self.changepoint_days.shape[1])

    @property
    def start(self) -> pd.Timestamp:
        """The first simulated day."""
        return self.dates[0]

    @property
    def daily_rate(self) -> np.ndarray:
        """:math:`\\lambda_{f,t}`, shape (front, day)."""
        return np.exp(self.log_rate)

    @property
    def changepoint_dates(self) -> np.ndarray:
        """Changepoint days as ``datetime64[ns]``, shape (front, changepoint)."""
        return self.dates.to_numpy()[self.changepoint_days]


def _is_day_index(value: object) -> TypeGuard[int | np.integer]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_day_or_date(value: object, what: str) -> None:
    if _is_day_index(value):
        return
    if isinstance(value, (bool, np.bool_, float, np.floating)):
        raise ValueError(f"{what} must be an integer day index or a date; got {value!r}")
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]  # pandas-stubs: any input is tried here
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be an integer day index or a date; got {value!r}") from exc
    if pd.isna(stamp):
        raise ValueError(f"{what} must be an integer day index or a date; got {value!r}")


def day_of(value: DayOrDate, first_day: pd.Timestamp) -> int:
    if _is_day_index(value):
        return int(value)
    return int((pd.Timestamp(value).normalize() - first_day).days)


def date_text(value: DayOrDate, first_day: pd.Timestamp | None) -> str:
    if _is_day_index(value):
        if first_day is None:
            raise ValueError(f"day index {value} cannot be dated: pass start= (the first simulated day)")
        stamp = first_day + pd.Timedelta(days=int(value))
    else:
        stamp = pd.Timestamp(value).normalize()
    return stamp.strftime("%Y-%m-%d")


def _describe_day(value: DayOrDate) -> str:
    if _is_day_index(value):
        return f"day {int(value)}"
    return pd.Timestamp(value).strftime("%Y-%m-%d")
