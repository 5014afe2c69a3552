"""Numeric inputs of the escalation model, computed once from a panel and interventions.

Nothing here samples or builds a graph: :func:`build_design` turns a :class:`Panel` and an
:class:`InterventionTable` into plain arrays (observation indices, window weights, shapes of
interventions on the day grid, seasonal indices, self-excitation covariates) that
:mod:`forecast.models.escalation` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pandas as pd
from scipy.special import gammaln

from forecast import names as n
from forecast.data.interventions import InterventionTable
from forecast.data.panel import Panel, period_start
from forecast.errors import ForecastError, OptionError

LIKELIHOODS = ("negative_binomial", "poisson")
#: Model families: ``changepoint`` (flat regimes between K changepoints) and ``dynamic``
#: (a moving level with heavy-tailed steps and reverting bursts, forecast.models.dynamic).
FAMILIES = ("changepoint", "dynamic")
PARAMETERIZATIONS = ("auto", "centered", "non_centered")
#: ``auto`` centres the hierarchies when fronts have at least this many observations on
#: average: data-rich fronts pin their own baselines down and mix far better centred, while
#: sparse ones need the non-centred form (benchmarks/bench_models.py records which form each run used).
AUTO_CENTERED_MIN_OBS_PER_FRONT = 100


@dataclass(frozen=True)
class ModelOptions:
    """Structure of the escalation model.

    Attributes
    ----------
    family : {"changepoint", "dynamic"}
        The model family.  The dynamic model has no changepoints (its level moves instead),
        negative binomial counts only, and neither trend nor self-excitation.
    changepoints : int
        Changepoints per front (K >= 0); their dates are marginalised exactly.
    interventions : bool
        Include intervention effects.
    likelihood : {"negative_binomial", "poisson"}
    seasonality : bool
        Day-of-week effects on a daily grid, month-of-year on weekly and monthly grids.
    self_excitation : bool
        Add ``gamma * log1p(recent counts)`` to the log rate (recent counts decayed with
        ``excitation_half_life`` days); fronts observed only through windows get no term.
    excitation_half_life : float
        Half-life in days of the self-excitation kernel (fixed, not estimated).
    trend : bool
        Add a log-linear trend per front, ``trend[f] * (day - middle day) / 30``: the log rate
        drifts by ``trend[f]`` every 30 days, across regimes (a series that declines or grows
        steadily, such as the Gaza alerts, is not a sequence of flat regimes).  Forecasts
        carry it forward.
    parameterization : {"auto", "centered", "non_centered"}
        Of the hierarchical baseline and jump priors.
    min_regime_days : int
        A changepoint leaves at least this many observed days of the front before the first
        and after the last changepoint; this keeps a changepoint from being spent on one odd
        day at either end of the series (the first day of the shipped alerts is one).
    """

    changepoints: int = 1
    interventions: bool = True
    family: str = "changepoint"
    likelihood: str = "negative_binomial"
    seasonality: bool = False
    self_excitation: bool = False
    excitation_half_life: float = 7.0
    trend: bool = False
    parameterization: str = "auto"
    min_regime_days: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.changepoints, int) or self.changepoints < 0:
            raise OptionError(f"changepoints must be an integer >= 0, got {self.changepoints!r}")
        if self.likelihood not in LIKELIHOODS:
            raise OptionError(f"unknown likelihood {self.likelihood!r}; allowed: {list(LIKELIHOODS)}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise OptionError(f"unknown parameterization {self.parameterization!r}; allowed: {list(PARAMETERIZATIONS)}")
        if not isinstance(self.min_regime_days, int) or self.min_regime_days < 1:
            raise OptionError(f"min_regime_days must be an integer >= 1, got {self.min_regime_days!r}")
        if not self.excitation_half_life > 0:
            raise OptionError("excitation_half_life must be > 0")
        if self.family not in FAMILIES:
            raise OptionError(f"unknown model family {self.family!r}; allowed: {list(FAMILIES)}")
        if self.family == "dynamic":
            unsupported = [
                name
                for name, value in (
                    ("changepoints", self.changepoints),
                    ("trend", self.trend),
                    ("self_excitation", self.self_excitation),
                    ("likelihood poisson", self.likelihood == "poisson"),
                )
                if value
            ]
            if unsupported:
                raise OptionError(
                    f"the dynamic model has no {', '.join(unsupported)}: its level moves by itself "
                    "(use changepoints=0, no trend, no self-excitation, the negative binomial)"
                )

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def centered_for(self, n_fronts: int, n_obs: int) -> bool:
        """Whether the hierarchical priors are centred for a panel of this size."""
        if self.parameterization == "auto":
            return n_obs >= AUTO_CENTERED_MIN_OBS_PER_FRONT * n_fronts
        return self.parameterization == "centered"


@dataclass(frozen=True)
class Design:
    """Arrays the model graph reads; every array is indexed as its docstring line says.

    Observations are in the panel's order (sorted by front, then date).
    """

    fronts: tuple[str, ...]
    periods: pd.DatetimeIndex
    days: pd.DatetimeIndex
    y: np.ndarray  # (obs,) observed counts
    obs_front: np.ndarray  # (obs,) front index
    obs_date: pd.DatetimeIndex  # (obs,) first day of each observation
    obs_end: pd.DatetimeIndex  # (obs,) last day of each observation
    censored: np.ndarray  # (obs,) True where the count is a lower bound (at_least)
    period_obs: np.ndarray  # indices into obs of period observations
    period_index: np.ndarray  # (period_obs,) period of each
    period_exposure: np.ndarray  # (period_obs,) observed days
    window_obs: np.ndarray  # indices into obs of window observations
    window_weights: np.ndarray  # (window_obs, period) days of overlap
    position: np.ndarray  # (front, max_obs) index into obs of each front's k-th observation, 0 padded
    position_mask: np.ndarray  # (front, max_obs) True where position is real
    changepoint_valid: np.ndarray  # (front, max_obs) True where a changepoint may fall
    n_obs_front: np.ndarray  # (front,)
    log_n_configurations: np.ndarray  # (front,) log binom(valid positions, K)
    day_to_period: np.ndarray | None  # (period, day) averaging matrix (rows sum to 1), None for daily grids
    interventions: pd.DataFrame  # the interventions used, in file order
    kinds: tuple[str, ...]
    intervention_kind: np.ndarray  # (intervention,) kind index
    pulse_index: np.ndarray  # interventions that are pulses
    intervention_start_day: np.ndarray  # (intervention,) day index (may be negative)
    fixed_shapes_day: np.ndarray  # (intervention, day) window and step shapes; pulses left 0
    applies: np.ndarray  # (intervention, front) bool
    intervention_known: np.ndarray  # (intervention,) False for placeholders (start after the panel's last day)
    pair_front: np.ndarray  # (pair,) front of each (front, intervention) pair
    pair_intervention: np.ndarray  # (pair,) intervention of each pair
    season_index: np.ndarray | None  # (period,) season of each period, or None
    season_labels: tuple[str, ...]
    excitation: np.ndarray  # (front, period) log1p of decayed recent counts (0 where unknown)
    trend_time: np.ndarray  # (period,) (middle day of the period - TREND centre day) / TREND_DAYS
    period_days: np.ndarray  # (period,) observed days of each period (partial edge periods count less)
    obs_days: np.ndarray  # (obs,) days each observation covers (exposure of a period, length of a window)
    options: ModelOptions = field(default_factory=ModelOptions)

    @property
    def centered(self) -> bool:
        return self.options.centered_for(len(self.fronts), self.n_obs)

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def labels(self) -> list[str]:
        return self.interventions[n.LABEL].tolist()

    def intervention_rows(self) -> Iterator[tuple[int, pd.Series]]:
        """``(position, row)`` of each intervention, in the order of the intervention arrays."""
        for position, (_, row) in enumerate(self.interventions.iterrows()):
            yield position, row


def build_design(
    panel: Panel,
    interventions: InterventionTable | None,
    options: ModelOptions,
    *,
    placeholders_until: pd.Timestamp | None = None,
) -> Design:
    """Compute the model's numeric inputs.

    Interventions that start after the panel's last day are left out: they cannot be known at
    ``as_of`` and the data carry no information about them.  With ``placeholders_until``, those
    starting up to that date are kept as *placeholders* instead: their shapes are zero on every
    day of the data, so their effects and half-lives stay at their priors (in the non-centred
    form nothing else learns from them), and ``intervention_known`` marks them so that
    forecasts leave them out.  The backtest uses this so that the models of successive origins
    have one structure and share one compiled sampler.

    Raises
    ------
    ForecastError
        When a front has too few observations for the requested number of changepoints.
    """
    obs = panel.observations
    fronts = panel.fronts
    front_index = pd.Index(fronts)
    obs_front = front_index.get_indexer(pd.Index(obs[n.FRONT]))
    y = obs[n.COUNT].to_numpy(dtype=np.int64)
    is_window = (obs[n.OBS_KIND] == n.OBS_WINDOW).to_numpy()
    period_obs = np.flatnonzero(~is_window)
    window_obs = np.flatnonzero(is_window)
    obs_date = pd.DatetimeIndex(obs[n.DATE])
    period_ends = panel.period_ends()
    period_index = panel.periods.get_indexer(obs_date[period_obs])
    obs_end = obs_date.to_numpy(copy=True)
    obs_end[period_obs] = np.minimum(period_ends[period_index].to_numpy(), panel.end.to_datetime64())
    obs_end[window_obs] = obs[n.END_DATE].to_numpy()[window_obs]

    counts = np.bincount(obs_front, minlength=len(fronts))
    exposure_days = obs[n.EXPOSURE_DAYS].to_numpy(dtype=np.int64)
    max_obs = int(counts.max())
    position = np.zeros((len(fronts), max_obs), dtype=np.int64)
    position_mask = np.zeros((len(fronts), max_obs), dtype=bool)
    valid = np.zeros((len(fronts), max_obs), dtype=bool)
    for f in range(len(fronts)):
        members = np.flatnonzero(obs_front == f)  # already date-sorted within the front
        position[f, : len(members)] = members
        position_mask[f, : len(members)] = True
        valid[f, : len(members)] = changepoint_positions(exposure_days[members], options.min_regime_days)
    k = options.changepoints
    n_valid = valid.sum(axis=1)
    too_few = [f"{front} ({v} candidate positions)" for front, v in zip(fronts, n_valid, strict=True) if v < k]
    if too_few:
        raise ForecastError(
            f"{k} changepoint(s) per front, each leaving at least {options.min_regime_days} observed days at both "
            f"ends, do not fit in: {', '.join(too_few)}. Use fewer changepoints or a smaller min_regime_days."
        )
    log_configs = log_binomial(n_valid, k)

    days = pd.date_range(panel.start, panel.end, freq="D")
    day_to_period = None
    if panel.freq != n.FREQ_DAY:
        period_of_day = panel.periods.get_indexer(period_start(days, panel.freq))
        day_to_period = np.zeros((panel.n_periods, len(days)))
        day_to_period[period_of_day, np.arange(len(days))] = 1.0
        day_to_period /= day_to_period.sum(axis=1, keepdims=True)

    until = panel.end if placeholders_until is None else max(panel.end, pd.Timestamp(placeholders_until))
    table = _interventions_in_span(interventions, panel, until) if options.interventions else None
    design_interventions = _intervention_arrays(table, fronts, days, panel.start)
    intervention_known = design_interventions["intervention_start_day"] <= len(days) - 1
    season_index, season_labels = _seasons(panel) if options.seasonality else (None, ())
    excitation = _excitation(panel, options.excitation_half_life)
    # Middle day of each period's part inside the data (edge periods may be partial).
    first_day = np.maximum(((panel.periods - panel.start) / pd.Timedelta(days=1)).to_numpy(), 0.0)
    period_middle = first_day + (np.asarray(panel.period_days(), dtype=float) - 1.0) / 2.0

    return Design(
        fronts=fronts,
        periods=panel.periods,
        days=days,
        y=y,
        obs_front=obs_front,
        obs_date=obs_date,
        obs_end=pd.DatetimeIndex(obs_end),
        censored=(obs[n.PRECISION] == n.PRECISION_AT_LEAST).to_numpy(),
        period_obs=period_obs,
        period_index=period_index,
        period_exposure=obs[n.EXPOSURE_DAYS].to_numpy(dtype=float)[period_obs],
        window_obs=window_obs,
        window_weights=panel.window_weights().astype(float),
        position=position,
        position_mask=position_mask,
        changepoint_valid=valid,
        n_obs_front=counts,
        log_n_configurations=np.asarray(log_configs, dtype=float),
        day_to_period=day_to_period,
        season_index=season_index,
        season_labels=season_labels,
        excitation=excitation,
        trend_time=trend_time(period_middle, len(days)),
        period_days=np.asarray(panel.period_days(), dtype=np.int64),
        obs_days=_observation_days(obs_date, pd.DatetimeIndex(obs_end), exposure_days, period_obs),
        options=options,
        intervention_known=intervention_known,
        **design_interventions,
    )


def changepoint_positions(exposure_days: np.ndarray, min_regime_days: int) -> np.ndarray:
    """Where a changepoint may fall among one front's observations (in date order).

    A changepoint at position :math:`s` starts the next regime at observation :math:`s`; it
    may fall there when at least ``min_regime_days`` observed days lie before it and from it
    on, and never at position 0.

    Parameters
    ----------
    exposure_days : numpy.ndarray
        Observed days of each of the front's observations, in date order.
    min_regime_days : int
        ``ModelOptions.min_regime_days``.

    Returns
    -------
    numpy.ndarray
        Boolean, one entry per observation: True where a changepoint may fall.
    """
    exposure_days = np.asarray(exposure_days)
    if exposure_days.size == 0:
        return np.zeros(0, dtype=bool)
    days_before = np.concatenate([[0], np.cumsum(exposure_days)[:-1]])
    days_after = exposure_days.sum() - days_before
    valid = (days_before >= min_regime_days) & (days_after >= min_regime_days)
    valid[0] = False
    return valid


def changepoint_candidates(panel: Panel, options: ModelOptions) -> dict[str, int]:
    """How many positions a changepoint may fall at, per front (the rule of :func:`build_design`)."""
    obs = panel.observations
    out = {}
    for front in panel.fronts:
        exposure_days = obs.loc[obs[n.FRONT] == front, n.EXPOSURE_DAYS].to_numpy()
        out[front] = int(changepoint_positions(exposure_days, options.min_regime_days).sum())
    return out


def _observation_days(
    obs_date: pd.DatetimeIndex, obs_end: pd.DatetimeIndex, exposure_days: np.ndarray, period_obs: np.ndarray
) -> np.ndarray:
    """Days each observation covers: a period's observed days, a window's length."""
    days = ((obs_end - obs_date) / pd.Timedelta(days=1)).to_numpy().astype(np.int64) + 1
    days[period_obs] = exposure_days[period_obs]
    return days


def _interventions_in_span(
    interventions: InterventionTable | None, panel: Panel, until: pd.Timestamp
) -> pd.DataFrame | None:
    if interventions is None or len(interventions) == 0:
        return None
    interventions.check_fronts(panel.fronts)
    frame = interventions.before(until).frame
    if frame.empty:
        return None
    return frame.reset_index(drop=True)


class _InterventionArrays(TypedDict):
    """The intervention fields of :class:`Design` (all but ``intervention_known``)."""

    interventions: pd.DataFrame
    kinds: tuple[str, ...]
    intervention_kind: np.ndarray
    pulse_index: np.ndarray
    intervention_start_day: np.ndarray
    fixed_shapes_day: np.ndarray
    applies: np.ndarray
    pair_front: np.ndarray
    pair_intervention: np.ndarray


def _intervention_arrays(
    frame: pd.DataFrame | None, fronts: tuple[str, ...], days: pd.DatetimeIndex, start: pd.Timestamp
) -> _InterventionArrays:
    if frame is None:
        empty_int = np.zeros(0, dtype=np.int64)
        return {
            "interventions": pd.DataFrame(columns=[n.DATE, n.END_DATE, n.KIND, n.SHAPE, n.FRONT, n.LABEL]),
            "kinds": (),
            "intervention_kind": empty_int,
            "pulse_index": empty_int,
            "intervention_start_day": empty_int,
            "fixed_shapes_day": np.zeros((0, len(days))),
            "applies": np.zeros((0, len(fronts)), dtype=bool),
            "pair_front": empty_int,
            "pair_intervention": empty_int,
        }
    kinds = tuple(sorted(frame[n.KIND].unique()))
    start_day = ((frame[n.DATE] - start) / pd.Timedelta(days=1)).to_numpy().astype(np.int64)
    day_index = np.arange(len(days))
    fixed = np.zeros((len(frame), len(days)))
    for j, (_, row) in enumerate(frame.iterrows()):  # the frame has a RangeIndex
        if row[n.SHAPE] == n.SHAPE_STEP:
            fixed[j] = day_index >= start_day[j]
        elif row[n.SHAPE] == n.SHAPE_WINDOW:
            end_day = (row[n.END_DATE] - start).days
            fixed[j] = (day_index >= start_day[j]) & (day_index <= end_day)
    applies = np.zeros((len(frame), len(fronts)), dtype=bool)
    for j, targets in enumerate(frame[n.FRONT]):
        applies[j] = True if not targets else [front in targets for front in fronts]
    pair_intervention, pair_front = np.nonzero(applies)
    return {
        "interventions": frame,
        "kinds": kinds,
        "intervention_kind": pd.Index(kinds).get_indexer(pd.Index(frame[n.KIND])),
        "pulse_index": np.flatnonzero((frame[n.SHAPE] == n.SHAPE_PULSE).to_numpy()),
        "intervention_start_day": start_day,
        "fixed_shapes_day": fixed,
        "applies": applies,
        "pair_front": pair_front,
        "pair_intervention": pair_intervention,
    }


def _seasons(panel: Panel) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if panel.freq == n.FREQ_DAY:
        return panel.periods.dayofweek.to_numpy(), ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    if panel.freq in (n.FREQ_WEEK, n.FREQ_MONTH):
        labels = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
        return panel.periods.month.to_numpy() - 1, labels
    raise ForecastError("seasonality needs a day, week or month grid; a yearly grid has no season")


#: Unit of the trend's time axis in days: ``trend`` is the change of the log rate per 30 days.
TREND_DAYS = 30.0


def trend_time(day_index: np.ndarray, n_days: int) -> np.ndarray:
    """The trend's time axis at ``day_index`` (days since the panel's first day).

    Centred on the middle day of the data, which keeps the trend nearly uncorrelated with the
    baseline; forecasts use the same centre (``n_days`` is the number of days of the data).
    """
    return (np.asarray(day_index, dtype=float) - (n_days - 1) / 2.0) / TREND_DAYS


def _excitation(panel: Panel, half_life_days: float) -> np.ndarray:
    """log1p of exponentially decayed counts of earlier periods, per front and period."""
    counts, _ = panel.counts_matrix()
    known = np.nan_to_num(counts, nan=0.0)
    period_days = float(np.median(panel.period_days())) if panel.n_periods else 1.0
    decay = 2.0 ** (-period_days / half_life_days)
    out = np.zeros_like(known)
    running = np.zeros(known.shape[0])
    for t in range(known.shape[1]):
        out[:, t] = running
        running = decay * (running + known[:, t])
    return np.log1p(out)


def log_binomial(n_items: np.ndarray, k: int) -> np.ndarray:
    """log of binomial(n_items, k), elementwise."""
    return gammaln(n_items + 1) - gammaln(k + 1) - gammaln(n_items - k + 1)
