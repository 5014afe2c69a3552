"""The dynamic model's layout: which fronts are centred and have a burst, and its time steps.

Decided from the data alone (no PyMC here), shared by the graph
(:func:`forecast.models.dynamic.build_dynamic_model`), its numpy twin and the forecasts; see
:mod:`forecast.models.dynamic` for the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from forecast.models.design import Design

#: Periods per level step on a daily grid: the level moves once a week, the burst every day.
DAILY_LEVEL_PERIODS = 7
#: The burst's largest persistence per day, ``r < 0.5 ** (2 / DAILY_LEVEL_PERIODS)`` (0.82): its
#: half-life is at most half the level's step, so that a week after a spike at most a quarter of it
#: is left.  A burst that lasts as long as a level step is a level step: with ``r`` free up to 1 the
#: two took turns explaining the same weeks (shipped backtest: R-hat 1.014-1.02 and tail ESS 60-198
#: on the persistence of Gaza and the Lebanon rockets and on Gaza's level near the data's end).
BURST_PERSISTENCE_MAX = 0.5 ** (2 / DAILY_LEVEL_PERIODS)
#: Days of data that fix a front's level centre (:func:`level_centre`).
CENTRE_DAYS = 28


@dataclass(frozen=True)
class DynamicLayout:
    """Which fronts are centred and have a burst, and the per-period step lengths the graph and the twin share."""

    centred: np.ndarray  # (front,) bool
    step_days: np.ndarray  # (period,) observed days of each period (the step into it)
    persistence_days: float  # median period length: rho = r ** persistence_days
    #: ``(front,)`` whether a front has the burst: on a daily grid, where the front is observed
    #: day by day and most days have an event (:func:`burst_fronts`).  A burst that reverts
    #: within days is averaged into a weekly, monthly or multi-day window total: it is then
    #: indistinguishable from the negative binomial's own overdispersion and its scale cannot be
    #: identified (measured: a single monthly ACLED front failed its checks on ``log_burst_sd``
    #: with it, R-hat 1.04, bulk ESS 81, 6 divergences).
    burst: np.ndarray
    #: ``(extra,)`` days of latent periods after the data's last period (none by default).  The
    #: backtest pads every origin's paths to its last origin, so that all origins share one
    #: graph and one compiled sampler: the padded periods have no observation, so they change
    #: nothing before them, and they are dropped after sampling (:meth:`EscalationModel.fit`).
    pad_days: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    #: Periods per level step: :data:`DAILY_LEVEL_PERIODS` on a daily grid, 1 otherwise.
    level_periods: int = 1
    #: ``(front, period)`` where each front's level knots start over the data's periods
    #: (:func:`level_knot_start`); the padded periods step every :attr:`level_periods`.
    data_knot_start: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), dtype=bool))

    @property
    def any_burst(self) -> bool:
        return bool(self.burst.any())

    @property
    def knot_of_period(self) -> np.ndarray:
        """``(n_latent,)`` the level step (knot) each latent period belongs to."""
        return np.arange(self.n_latent) // self.level_periods

    @property
    def n_knots(self) -> int:
        return int(self.knot_of_period[-1]) + 1

    @property
    def knot_days(self) -> np.ndarray:
        """``(n_knots,)`` days of each knot (the step into it moves ``sqrt`` of that far).

        A period's observed days when the level steps every period; a full week on a daily grid
        (also for the last, partly observed week, whose remaining days the forecast fills).
        """
        if self.level_periods == 1:
            return self.latent_step_days
        return np.full(self.n_knots, float(self.level_periods))

    def future_level_step_days(self, step_days: np.ndarray) -> np.ndarray:
        """``(horizon,)`` days of the level step into each period after the latent ones (0: no step).

        ``step_days`` are the future periods' days.  On a daily grid the level steps on the
        first day of each new week (counted from the first day of the data), by a week's scale.
        """
        step_days = np.asarray(step_days, dtype=float)
        if self.level_periods == 1:
            return step_days
        index = self.n_latent + np.arange(len(step_days))
        return np.where(index % self.level_periods == 0, float(self.level_periods), 0.0)

    @property
    def windowed(self) -> np.ndarray:
        """``(front,)`` fronts whose level steps once per observation window (:func:`window_fronts`)."""
        return ~self.centred

    @property
    def window_knot_capacity(self) -> int:
        """Knots held for each windowed front: as many as its knots can ever be, whatever the data.

        The count depends on the model's structure alone (the latent periods), so that a
        backtest's origins, whose windows differ, share one graph: a knot starts at a step
        boundary outside the windows or at the first period of a window at least a step long,
        at most ``2 ceil(n / level_periods)`` of them (every period on coarser grids).  The
        knots a front does not use have no observation and touch nothing.
        """
        if self.level_periods == 1:
            return self.n_latent
        return min(self.n_latent, 2 * -(-self.n_latent // self.level_periods))

    @property
    def knot_start(self) -> np.ndarray:
        """``(front, n_latent)`` bool: where each front's level knots start (period 0 always)."""
        padded = np.arange(len(self.step_days), self.n_latent) % self.level_periods == 0
        return np.concatenate([self.data_knot_start, np.broadcast_to(padded, (len(self.centred), len(padded)))], axis=1)

    @property
    def window_knot_of_period(self) -> np.ndarray:
        """``(windowed front, n_latent)`` the knot each period belongs to, per windowed front."""
        return np.cumsum(self.knot_start[self.windowed], axis=1) - 1

    @property
    def window_knot_days(self) -> np.ndarray:
        """``(windowed front, capacity)`` days of each knot of the windowed fronts (0 for unused knots).

        A knot's days run from its first period to the next knot's; the last runs on to the
        next step boundary after the latent periods, as a knot of the other fronts does (the
        forecast's first level step comes there, :meth:`future_level_step_days`).
        """
        index = self.window_knot_of_period
        out = np.zeros((len(index), self.window_knot_capacity))
        for row, knots in enumerate(index):
            np.add.at(out[row], knots, self.latent_step_days)
            out[row, knots[-1]] += -self.n_latent % self.level_periods
        return out

    @property
    def n_latent(self) -> int:
        """Periods of the latent paths: the data's and the padding."""
        return len(self.step_days) + len(self.pad_days)

    @property
    def latent_step_days(self) -> np.ndarray:
        """``(n_latent,)`` days of each latent period (the step into it)."""
        return np.concatenate([self.step_days, self.pad_days])


def layout_of(design: Design, pad_days: np.ndarray | None = None) -> DynamicLayout:
    step_days = np.asarray(design.period_days, dtype=float)
    level_periods = level_periods_of(design)
    return DynamicLayout(
        centred=centred_fronts(design),
        step_days=step_days,
        persistence_days=float(np.median(step_days)),
        burst=burst_fronts(design),
        pad_days=np.zeros(0) if pad_days is None else np.asarray(pad_days, dtype=float),
        level_periods=level_periods,
        data_knot_start=level_knot_start(design) > 0,
    )


def level_periods_of(design: Design) -> int:
    """Periods per level step: a week of days on a daily grid, one period otherwise.

    On a daily grid the level is the slow part of the rate (it steps once a week, counted from
    the first day) and the burst the fast part (it moves every day and reverts).  Stepping the
    level every day as well made the two compete for each day's excursion, and let a jump on a
    sparse front sit on any of several neighbouring days, each a separate mode (measured on the
    shipped data: 22 divergences at the Lebanon drone alerts' first rise, bulk ESS 81 on Gaza's
    burst persistence).
    """
    return DAILY_LEVEL_PERIODS if len(design.periods) == len(design.days) else 1


def burst_fronts(design: Design) -> np.ndarray:
    """``(front,)`` True where the front has a burst (see :attr:`DynamicLayout.burst`).

    A front has one on a daily grid when it is counted day by day (single-day counts for at
    least half of the days) and events are the rule rather than the exception (a positive count
    on at least half of those days).  On a front where most days have no event, a day's count
    says next to nothing about that day's own excursion from the level, so the burst's scale is
    identified by its prior alone (measured on the shipped Lebanon drone alerts, median 0 a
    day: R-hat 1.03 and bulk ESS 58 on ``log_burst_sd``).
    """
    out = np.zeros(len(design.fronts), dtype=bool)
    if len(design.periods) != len(design.days) or len(design.periods) < 2:
        return out
    for f in range(len(design.fronts)):
        single = (design.obs_front == f) & (design.obs_days == 1) & ~design.censored
        counted = np.count_nonzero(single) >= 0.5 * len(design.periods)
        out[f] = counted and np.count_nonzero(design.y[single] > 0) >= 0.5 * np.count_nonzero(single)
    return out


def window_fronts(design: Design) -> np.ndarray:
    """``(front,)`` True where the front's level steps once per observation window, not every step.

    Fronts reported mostly in windows longer than a period (not centred, :func:`centred_fronts`;
    a front with a burst is counted day by day, so it is centred): a window's total says how
    much happened over all its days, nothing about when, so a level that stepped inside it was
    identified by its prior alone, and the sampler had to explore every such path.  Measured on
    the shipped data, whose Red Sea and Iraq-Syria fronts are reported in windows of up to 80
    days: the divergences of the 7-front backtest fits sat at the far tail of the Red Sea front's
    level scale, and the fit at 2 x 1000 draws failed on R-hat 1.02 of a level inside a 30-day
    window without attacks.
    """
    return ~centred_fronts(design)


def level_knot_start(design: Design) -> np.ndarray:
    """``(front, period)`` 1 where a level knot starts, 0 elsewhere (as floats, the graph's data).

    Every :func:`level_periods_of` periods from the first (every period on coarser grids); for
    the fronts of :func:`window_fronts`, also at the first period of each of their windows at
    least a step long, and never strictly inside one, so that such a window's total depends on
    one level.  Shorter windows straddle knots as on the other fronts.  A windowed front's level
    does not step before its first observation: nothing there could tell the first level from
    the steps before it, and they formed a ridge with ``initial_level`` (shipped backtest: R-hat
    1.0102-1.014 on the initial level of the Red Sea and Iraq-Syria fronts, whose reports begin
    6 and 15 weeks after the data's first day, with one or two divergences).
    """
    level_periods = level_periods_of(design)
    start = np.zeros((len(design.fronts), len(design.periods)))
    start[:, ::level_periods] = 1.0
    windowed = window_fronts(design)
    long_windows = []
    for row, obs in enumerate(design.window_obs):
        covered = np.flatnonzero(design.window_weights[row])
        if windowed[design.obs_front[obs]] and len(covered) >= max(level_periods, 2):
            long_windows.append((design.obs_front[obs], covered))
    for front, covered in long_windows:
        start[front, covered[1:]] = 0.0
    for front, covered in long_windows:
        start[front, covered[0]] = 1.0
    first = first_observed_period(design)
    for front in np.flatnonzero(windowed):
        start[front, : first[front] + 1] = 0.0
    start[:, 0] = 1.0
    return start


def first_observed_period(design: Design) -> np.ndarray:
    """``(front,)`` the first period that any of the front's observations covers."""
    out = np.full(len(design.fronts), len(design.periods), dtype=np.int64)
    np.minimum.at(out, design.obs_front[design.period_obs], design.period_index)
    for row, obs in enumerate(design.window_obs):
        covered = np.flatnonzero(design.window_weights[row])
        if len(covered):
            out[design.obs_front[obs]] = min(out[design.obs_front[obs]], int(covered[0]))
    return out


def level_centre(design: Design) -> np.ndarray:
    """``(front,)`` log of each front's mean daily rate over its first :data:`CENTRE_DAYS` observed days.

    Half an event is added so that a front that starts with zeros has a finite centre.
    """
    out = np.zeros(len(design.fronts))
    days = design.obs_days
    for f in range(len(design.fronts)):
        members = np.flatnonzero(design.obs_front == f)
        covered = np.cumsum(days[members])
        first = members[: int(np.searchsorted(covered, CENTRE_DAYS)) + 1]
        out[f] = np.log((design.y[first].sum() + 0.5) / days[first].sum())
    return out


def centred_fronts(design: Design) -> np.ndarray:
    """``(front,)`` True where the front's level steps every level step, whitened by its periods' counts ("centred").

    A front qualifies when it is observed period by period (an observation no longer than a
    period for at least half of the periods; longer windows are allowed beside them, but a window
    total informs many periods at once, never one, and gives no pseudo-observation), with a
    burst or without one.  The whitened coordinates adapt to how much the data say
    (:mod:`forecast.models.whitened`): near a centred form where the counts pin the level down,
    near a non-centred one where they barely inform it.
    The other fronts step once per window (:func:`window_fronts`), their knots whitened by the windows in them.

    Fronts used to be chosen by comparing their Fisher information with the random walk's
    precision: then the 45-series ACLED panel left 8 sparse monthly fronts non-centred, and the
    fit failed on one of them (bulk ESS 110 on ``log_dispersion[dr_congo_remote_violence]``,
    R-hat 1.02 on a level innovation); with all 45 whitened it passed (bulk ESS 563, R-hat 1.006).

    Until 5 December 2026 a single window longer than a period disqualified a front: a table that
    opens with "at least N since ..." and goes on week by week kept a non-centred level, and the
    simulation-based calibration, whose fronts open so, had every fit fail its checks.

    Until 5 December 2026 a front with a burst was sampled non-centred too, because the level's
    approximation left the burst out (on the shipped Gaza alerts, whose 7 October spike is a
    burst, a whitened level gave a divergence).  The approximation now counts the burst's
    variance as noise (:func:`forecast.models.dynamic._level_dispersion`); on the shipped
    backtest's two origins whose fits had failed on Gaza's level scale (R-hat 1.012, tail ESS
    187), both fits then passed (bulk ESS 873 and 1,026).
    """
    out = np.zeros(len(design.fronts), dtype=bool)
    longest_period = float(np.max(design.period_days))
    for f in range(len(design.fronts)):
        mine = np.flatnonzero((design.obs_front == f) & (design.obs_days <= longest_period))
        out[f] = len(mine) >= 0.5 * len(design.periods)
    return out
