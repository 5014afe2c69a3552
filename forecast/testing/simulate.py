r"""Count panels simulated from known parameters, for tests, parameter recovery and benchmarks.

Generative model
----------------
For fronts :math:`f = 1..F` and days :math:`t = 0..T-1` (day 0 is ``start``):

.. math::

    \eta_{f,t} &= b_f
        + \sum_{k=1}^{K} \delta_{f,k}\, \mathbb{1}[t \ge \tau_{f,k}]
        + \sum_{j=1}^{J} \beta_{f,j}\, s_j(t) \\
    \lambda_{f,t} &= e^{\eta_{f,t}}
        + \alpha \sum_{s < t} y_{f,s}\, e^{-(t - s)/\kappa}
        \qquad (\text{the sum only with self-excitation}) \\
    y_{f,t} &\sim \operatorname{NegBinomial}(\text{mean } \lambda_{f,t},\ \text{dispersion } \phi_f),
    \qquad \operatorname{Var} y_{f,t} = \lambda_{f,t} + \lambda_{f,t}^2 / \phi_f \\
    & \quad\text{or } y_{f,t} \sim \operatorname{Poisson}(\lambda_{f,t})
    \text{ when the dispersion is None.}

* :math:`b_f` is the baseline log daily rate.  By default
  :math:`b_f = \log 3 + \epsilon_f`, :math:`\epsilon_f \sim \mathcal N(0, 0.5^2)`: rates drawn
  from a lognormal with median 3 events a day.
* :math:`\tau_{f,1} < \dots < \tau_{f,K}` are changepoint days drawn uniformly without
  replacement among the days at least 10% of the span from each end
  (:math:`m \le \tau \le T - m`, :math:`m = \lceil 0.1\,T \rceil`, so both sides of every
  changepoint have at least :math:`m` days).  :math:`K` may be 0.
* :math:`\delta_{f,k}` are log jumps drawn from :math:`\mathcal N(0, \sigma_\delta^2)`
  conditioned on :math:`|\delta| \ge 0.3` (a rate change of at least 35%), so that every
  simulated changepoint is large enough to be detected.
* :math:`s_j` is the shape of intervention :math:`j` (see :mod:`forecast.data.shapes`) and
  :math:`\beta_{f,j}` its log rate-ratio at full strength on front :math:`f` (0 on fronts it
  does not touch).
* :math:`\alpha \ge 0` (strength) and :math:`\kappa > 0` (decay, days) define optional
  self-excitation: each event raises the following days' rate (not log rate).  The process
  is stationary only when the branching ratio
  :math:`\alpha\, e^{-1/\kappa} / (1 - e^{-1/\kappa})` is below 1, which is required.

The daily counts become a canonical events table (one row per front per day, zeros
included); fronts listed in ``window_fronts`` instead report totals over consecutive blocks
of ``window_every`` days, so that the window path of the panel is exercised too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from statistics import NormalDist

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from forecast import names as n
from forecast.data.events import EventTable, make_event_frame
from forecast.data.interventions import FRONT_SEPARATOR, INTERVENTION_CSV_COLUMNS
from forecast.data.panel import Panel, build_panel
from forecast.data.shapes import shape_values
from forecast.testing.simulation_types import SelfExcitation, SimulatedIntervention, SimulationTruth, date_text, day_of

#: Median of the default baseline daily rates.
DEFAULT_BASELINE_RATE = 3.0
#: Standard deviation of the default baseline log rates around ``log(DEFAULT_BASELINE_RATE)``.
DEFAULT_BASELINE_LOG_SD = 0.5
#: Smallest absolute log jump at a simulated changepoint.
MIN_ABS_JUMP = 0.3
#: Changepoints lie at least this fraction of the span away from either end.
CHANGEPOINT_EDGE_FRACTION = 0.1

#: ``origin_file`` of simulated event rows.
SIMULATED_FILE = "<simulated>"
#: ``source`` of simulated event rows and interventions.
SIMULATED_SOURCE = "simulated"


def simulate_panel(
    *,
    fronts: int | Sequence[str] = 4,
    days: int = 120,
    start: str | date | pd.Timestamp = "2024-01-01",
    baseline: ArrayLike | None = None,
    n_changepoints: int = 1,
    jump_sd: float = 0.7,
    interventions: Sequence[SimulatedIntervention] = (),
    dispersion: ArrayLike | None = 10.0,
    self_excitation: SelfExcitation | tuple[float, float] | None = None,
    freq: str = n.FREQ_DAY,
    window_fronts: Sequence[str] = (),
    window_every: int = 7,
    random_seed: int,
) -> tuple[Panel, SimulationTruth, EventTable]:
    """Simulate daily counts from known parameters and aggregate them to a panel.

    The generative model is stated in maths in the module docstring.

    Parameters
    ----------
    fronts : int or sequence of str
        A number of fronts (named ``front_0``, ``front_1``..., zero-padded from ten fronts on
        so that names sort in numeric order) or their names.
    days : int
        Number of simulated days (>= 1).
    start : date-like
        First simulated day.
    baseline : float or array_like, optional
        Baseline log daily rates, one per front in the order of ``fronts`` (or one for
        all).  Default: drawn, ``log(3) + Normal(0, 0.5)``.
    n_changepoints : int
        Changepoints per front (>= 0).
    jump_sd : float
        Standard deviation of the log jumps before conditioning on ``|jump| >= 0.3``.
    interventions : sequence of SimulatedIntervention
        Interventions with known effects.
    dispersion : float or array_like or None
        Negative binomial dispersion ``phi`` (> 0; variance ``mu + mu**2 / phi``), one for all
        fronts or one per front in the order of ``fronts``; None for Poisson counts.
    self_excitation : SelfExcitation or (strength, decay), optional
        Adds ``strength * sum_{s<t} y[s] * exp(-(t - s) / decay)`` to the daily rate.
    freq : {"day", "week", "month", "year"}
        Grid of the returned panel.
    window_fronts : sequence of str
        Fronts whose daily rows are replaced by totals over consecutive blocks of
        ``window_every`` days from the first day (the last block may be shorter; a last block
        of a single day is, as in any events table, a plain daily row).
    window_every : int
        Window length in days (>= 2).
    random_seed : int
        Seed of every random draw; the same seed gives identical outputs.

    Returns
    -------
    panel : Panel
        ``build_panel(events, freq=freq)``.
    truth : SimulationTruth
        The parameters and the daily log rates the counts were drawn from.
    events : EventTable
        The canonical events table: one row per front per day (zeros included) or per
        window, ordered by front then date, file ``"<simulated>"``, lines ``1..N``.

    Raises
    ------
    ValueError
        For invalid arguments (the message says which and why).
    """
    seed = _check_seed(random_seed)
    given_names = _front_names(fronts)
    n_fronts = len(given_names)
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ValueError(f"days must be a positive integer; got {days!r}")
    days = int(days)
    first_day = pd.Timestamp(start).normalize()
    dates = pd.date_range(first_day, periods=days, freq="D")
    day_index = np.arange(days, dtype=float)
    excitation = _self_excitation(self_excitation)
    window_names = _window_fronts(window_fronts, given_names, window_every)
    intervention_list = tuple(interventions)
    for item in intervention_list:
        if not isinstance(item, SimulatedIntervention):
            raise ValueError(f"interventions must be SimulatedIntervention objects; got {item!r}")

    baseline_rng, changepoint_rng, count_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(3)
    )

    if baseline is None:
        base = np.log(DEFAULT_BASELINE_RATE) + baseline_rng.normal(0.0, DEFAULT_BASELINE_LOG_SD, size=n_fronts)
    else:
        base = _per_front(baseline, n_fronts, "baseline")
    phi = None if dispersion is None else _per_front(dispersion, n_fronts, "dispersion")
    if phi is not None and not np.all(phi > 0):
        raise ValueError(f"dispersion must be > 0 (or None for Poisson counts); got {dispersion!r}")

    tau, jumps = _draw_changepoints(changepoint_rng, n_fronts, days, n_changepoints, jump_sd)

    start_days = np.array([day_of(item.start, first_day) for item in intervention_list], dtype=np.int64)
    end_days = np.array(
        [np.nan if item.end is None else day_of(item.end, first_day) for item in intervention_list], dtype=float
    )
    shapes = np.zeros((len(intervention_list), days))
    effects = np.zeros((n_fronts, len(intervention_list)))
    for j, item in enumerate(intervention_list):
        end_day = None if np.isnan(end_days[j]) else float(end_days[j])
        shapes[j] = shape_values(item.shape, day_index, float(start_days[j]), end=end_day, half_life=item.half_life)
        effects[_front_positions(item, given_names), j] = item.effect

    # Every per-front quantity follows the sorted names from here on (the panel's order).
    order = np.argsort(np.asarray(given_names, dtype=object), kind="stable")
    names = tuple(given_names[i] for i in order)
    base, tau, jumps, effects = base[order], tau[order], jumps[order], effects[order]
    phi = None if phi is None else phi[order]

    after_changepoint = day_index[None, None, :] >= tau[:, :, None]
    background = base[:, None] + np.sum(jumps[:, :, None] * after_changepoint, axis=1) + effects @ shapes
    counts, log_rate = _draw_counts(count_rng, background, phi, excitation)

    events = _events_table(counts, names, dates, window_names, window_every)
    panel = build_panel(events, freq=freq)
    truth = SimulationTruth(
        fronts=names,
        dates=dates,
        baseline=base,
        changepoint_days=tau,
        changepoint_jumps=jumps,
        interventions=intervention_list,
        intervention_start_days=start_days,
        intervention_end_days=end_days,
        intervention_shapes=shapes,
        intervention_effects=effects,
        dispersion=phi,
        self_excitation=excitation,
        background_log_rate=background,
        log_rate=log_rate,
        daily_counts=counts,
        window_fronts=tuple(sorted(window_names)),
        window_every=int(window_every),
        random_seed=seed,
    )
    return panel, truth, events


def interventions_frame(
    interventions: SimulationTruth | Sequence[SimulatedIntervention],
    *,
    start: str | date | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Interventions in the layout of the interventions CSV, ready to be written to disk.

    Parameters
    ----------
    interventions : SimulationTruth or sequence of SimulatedIntervention
        A truth (its interventions, dated from its first day) or interventions.
    start : date-like, optional
        The first simulated day, needed to date interventions given by day index when a
        plain sequence is passed; ignored for a truth.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INTERVENTION_CSV_COLUMNS` as text: ``date`` and ``end_date`` as
        ``YYYY-MM-DD`` (``end_date`` empty except for windows), ``front`` the names joined
        with ``";"`` (empty: every front), ``source`` ``"simulated"``.  Effects and
        half-lives have no column: they are what the models estimate, and stay in the truth.

    Raises
    ------
    ValueError
        If an intervention is given by day index and no start date is known.
    """
    if isinstance(interventions, SimulationTruth):
        items = interventions.interventions
        first_day: pd.Timestamp | None = interventions.start
    else:
        items = tuple(interventions)
        first_day = None if start is None else pd.Timestamp(start).normalize()
    rows = []
    for item in items:
        rows.append(
            {
                n.DATE: date_text(item.start, first_day),
                n.END_DATE: "" if item.end is None else date_text(item.end, first_day),
                n.KIND: item.kind,
                n.SHAPE: item.shape,
                n.FRONT: "" if item.fronts is None else FRONT_SEPARATOR.join(item.fronts),
                n.LABEL: item.label,
                n.SOURCE: SIMULATED_SOURCE,
            }
        )
    return pd.DataFrame(rows, columns=INTERVENTION_CSV_COLUMNS, dtype=object)


# --- helpers ------------------------------------------------------------------------------


def _check_seed(random_seed: object) -> int:
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) or random_seed < 0:
        raise ValueError(f"random_seed must be a non-negative integer; got {random_seed!r}")
    return int(random_seed)


def _front_names(fronts: int | Sequence[str]) -> tuple[str, ...]:
    if isinstance(fronts, (int, np.integer)) and not isinstance(fronts, bool):
        if fronts < 1:
            raise ValueError(f"fronts must be at least 1; got {fronts}")
        width = len(str(int(fronts) - 1))
        return tuple(f"front_{i:0{width}d}" for i in range(int(fronts)))
    if isinstance(fronts, str):
        raise ValueError(f"fronts must be a number or a sequence of names, not the single name {fronts!r}")
    if isinstance(fronts, bool):  # tuple() would refuse it too, with a less helpful message
        raise TypeError(f"fronts must be a number or a sequence of names, not {fronts!r}")
    names = tuple(fronts)
    if not names:
        raise ValueError("fronts must name at least one front")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip() or FRONT_SEPARATOR in name:
            raise ValueError(
                f"front names must be non-empty text without surrounding spaces or {FRONT_SEPARATOR!r}; got {name!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"fronts are named twice: {list(names)}")
    return names


def _per_front(value: ArrayLike, n_fronts: int, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(n_fronts, float(array))
    elif array.shape != (n_fronts,):
        raise ValueError(f"{what} must be one number or one per front ({n_fronts}); got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite; got {value!r}")
    return array.copy()


def _self_excitation(value: SelfExcitation | tuple[float, float] | None) -> SelfExcitation | None:
    if value is None or isinstance(value, SelfExcitation):
        return value
    try:
        strength, decay = value
    except (TypeError, ValueError) as exc:
        raise ValueError(f"self_excitation must be a SelfExcitation or (strength, decay); got {value!r}") from exc
    return SelfExcitation(strength=float(strength), decay=float(decay))


def _window_fronts(window_fronts: Sequence[str], names: tuple[str, ...], window_every: int) -> frozenset[str]:
    chosen = (window_fronts,) if isinstance(window_fronts, str) else tuple(window_fronts)
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise ValueError(f"window_fronts {unknown} are not simulated fronts; allowed: {list(names)}")
    if isinstance(window_every, bool) or not isinstance(window_every, (int, np.integer)) or window_every < 2:
        raise ValueError(f"window_every must be an integer number of days >= 2; got {window_every!r}")
    return frozenset(chosen)


def _draw_changepoints(
    rng: np.random.Generator, n_fronts: int, days: int, n_changepoints: int, jump_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Changepoint days ``(front, K)`` (sorted, distinct, away from the edges) and log jumps."""
    if isinstance(n_changepoints, bool) or not isinstance(n_changepoints, (int, np.integer)) or n_changepoints < 0:
        raise ValueError(f"n_changepoints must be an integer >= 0; got {n_changepoints!r}")
    if n_changepoints == 0:
        return np.zeros((n_fronts, 0), dtype=np.int64), np.zeros((n_fronts, 0))
    if not (math.isfinite(jump_sd) and jump_sd > 0):
        raise ValueError(f"jump_sd must be > 0; got {jump_sd!r}")
    margin = math.ceil(CHANGEPOINT_EDGE_FRACTION * days)
    candidates = np.arange(margin, days - margin + 1)
    if n_changepoints > len(candidates):
        raise ValueError(
            f"{n_changepoints} changepoints do not fit in {days} days: they must be distinct days at least "
            f"{margin} days from either end ({len(candidates)} such days)"
        )
    tau = np.stack([np.sort(rng.choice(candidates, size=n_changepoints, replace=False)) for _ in range(n_fronts)])
    return tau.astype(np.int64), _draw_jumps(rng, (n_fronts, n_changepoints), jump_sd)


def _draw_jumps(rng: np.random.Generator, size: tuple[int, int], jump_sd: float) -> np.ndarray:
    """Normal(0, jump_sd) draws conditioned on ``|jump| >= MIN_ABS_JUMP`` (inverse CDF of the tail)."""
    standard = NormalDist()
    tail_mass = standard.cdf(-MIN_ABS_JUMP / jump_sd)
    # uniform on (0, tail_mass]; 1 - random() lies in (0, 1]
    tail_probability = tail_mass * (1.0 - rng.random(size))
    magnitude = np.array(
        [-jump_sd * standard.inv_cdf(p) if p > 0 else MIN_ABS_JUMP for p in tail_probability.ravel()]
    ).reshape(size)
    sign = rng.choice(np.array([-1.0, 1.0]), size=size)
    return sign * np.maximum(magnitude, MIN_ABS_JUMP)


def _draw_counts(
    rng: np.random.Generator,
    background_log_rate: np.ndarray,
    dispersion: np.ndarray | None,
    excitation: SelfExcitation | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily counts ``(front, day)`` and the log of the daily means they were drawn from."""
    background_rate = np.exp(background_log_rate)
    if excitation is None:
        phi = None if dispersion is None else dispersion[:, None]
        return _draw_from_mean(rng, background_rate, phi), background_log_rate.copy()
    n_fronts, days = background_rate.shape
    counts = np.zeros((n_fronts, days), dtype=np.int64)
    rate = np.zeros((n_fronts, days))
    carried = np.zeros(n_fronts)  # sum_{s<t} y[s] * exp(-(t - s) / decay)
    carry_factor = math.exp(-1.0 / excitation.decay)
    for day in range(days):
        rate[:, day] = background_rate[:, day] + excitation.strength * carried
        counts[:, day] = _draw_from_mean(rng, rate[:, day], dispersion)
        carried = carry_factor * (carried + counts[:, day])
    return counts, np.log(rate)


def _draw_from_mean(rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray | None) -> np.ndarray:
    """Poisson(mean), or negative binomial with that mean and variance ``mean + mean**2 / dispersion``."""
    if dispersion is None:
        return rng.poisson(mean).astype(np.int64)
    return rng.negative_binomial(dispersion, dispersion / (dispersion + mean)).astype(np.int64)


def _events_table(
    counts: np.ndarray,
    fronts: tuple[str, ...],
    dates: pd.DatetimeIndex,
    window_fronts: frozenset[str],
    window_every: int,
) -> EventTable:
    """One row per front per day, or per window for ``window_fronts``, ordered by front then date."""
    days = len(dates)
    day_values = dates.to_numpy()
    block_starts = np.arange(0, days, window_every)
    block_ends = np.minimum(block_starts + window_every - 1, days - 1)
    start_parts, end_parts, front_parts, count_parts = [], [], [], []
    for row, front in enumerate(fronts):
        if front in window_fronts:
            start_parts.append(day_values[block_starts])
            end_parts.append(day_values[block_ends])
            count_parts.append(np.add.reduceat(counts[row], block_starts))
        else:
            start_parts.append(day_values)
            end_parts.append(np.full(days, np.datetime64("NaT"), dtype="datetime64[ns]"))
            count_parts.append(counts[row])
        front_parts.append(np.full(len(count_parts[-1]), front, dtype=object))
    n_rows = sum(len(part) for part in count_parts)
    frame = make_event_frame(
        dates=pd.Series(np.concatenate(start_parts)),
        end_dates=pd.Series(np.concatenate(end_parts)),
        fronts=pd.Series(np.concatenate(front_parts)),
        counts=pd.Series(np.concatenate(count_parts).astype(np.int64)),
        precision=pd.Series(np.full(n_rows, n.PRECISION_EXACT, dtype=object)),
        source=pd.Series(np.full(n_rows, SIMULATED_SOURCE, dtype=object)),
        file=SIMULATED_FILE,
        lines=np.arange(1, n_rows + 1, dtype=np.int64),
    )
    return EventTable(frame=frame, warnings=(), files=(SIMULATED_FILE,))


def _front_positions(item: SimulatedIntervention, names: tuple[str, ...]) -> list[int]:
    """Rows (in the order ``names`` were given) of the fronts an intervention touches."""
    if item.fronts is None:
        if isinstance(item.effect, tuple) and len(item.effect) != len(names):
            raise ValueError(
                f"intervention {item.label!r} gives {len(item.effect)} effects for {len(names)} fronts {list(names)}"
            )
        return list(range(len(names)))
    unknown = [front for front in item.fronts if front not in names]
    if unknown:
        raise ValueError(f"intervention {item.label!r} names unknown fronts {unknown}; allowed: {list(names)}")
    return [names.index(front) for front in item.fronts]
