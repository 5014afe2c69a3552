"""Slow statistical tests of the dynamic model (:mod:`forecast.models.dynamic`): real NUTS sampling.

1. **Simulation-based calibration** (Talts et al. 2018, see ``tests/sbc.py``): parameters and
   counts drawn from the model's own prior (``pm.draw`` on its graph, counts from the negative
   binomial of the graph's ``obs_log_mean`` and ``dispersion``), fitted with nutpie; the ranks
   of ``sigma_level``, ``tail_weight``, ``dispersion``, one intervention's effect and the next
   week's total (a forecast from :func:`forecast.forecasting.counts.forecast_counts` against
   the simulated truth, continued by :func:`forecast.models.dynamic.simulate_future`) must be
   uniform.  ``SBC_REPLICATES`` (environment) sets the number of replicates (default 100).
2. **Recovery** on scenarios made by the model itself (its graph with chosen parameters and
   innovations fixed by ``pm.do``): a step, a steady decline, a burst that reverts, a truce
   lull, and a front reported in windows whose data stopped early.

Every test is marked ``slow``; run them with ``pytest -m slow tests/test_dynamic_slow.py`` (or
``make test-slow``, which runs every slow test).  Each prints its figures (visible with ``-s``,
and in the assertion message when it fails).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from forecast import names as n
from forecast.checks.diagnostics import check_convergence
from forecast.data.events import EventTable, make_event_frame
from forecast.data.interventions import InterventionTable
from forecast.data.panel import Panel, build_panel
from forecast.fits import posterior
from forecast.forecasting.counts import forecast_counts
from forecast.models import dynamic
from forecast.models.design import ModelOptions
from forecast.models.model import EscalationModel, SamplerSettings
from forecast.models.nutpie_compile import CompiledModels
from forecast.models.summary import dynamic_front_summary, intervention_summary
from forecast.models.tails import sinh_arcsinh, sinh_arcsinh_inverse
from tests.sbc import rank_of, uniformity_p_value

DYNAMIC = ModelOptions(family="dynamic", changepoints=0)
#: A Monday: the weekly grid's periods start on it.
START = pd.Timestamp("2024-01-01")
WEEK = 7
#: Equal-tailed credible intervals checked by the recovery tests.
INTERVAL_PROBABILITY = 0.9


# --------------------------------------------------------------------------------------------
# Panels, interventions and simulation through the model's own graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One reported count before its value is simulated: a day, a period table row or a window."""

    front: str
    first: pd.Timestamp
    last: pd.Timestamp | None = None  # the last day of a window; None for a day or a period-table row
    precision: str = n.PRECISION_EXACT


def make_panel(reports: Sequence[Report], counts: np.ndarray, *, freq: str, as_of: pd.Timestamp) -> Panel:
    """The panel of ``reports`` with ``counts`` (given in the reports' order)."""
    rows = len(reports)
    frame = make_event_frame(
        dates=pd.Series(pd.DatetimeIndex([r.first for r in reports])),
        end_dates=pd.Series(pd.DatetimeIndex([r.last if r.last is not None else pd.NaT for r in reports])),
        fronts=pd.Series([r.front for r in reports], dtype=object),
        counts=pd.Series(np.asarray(counts, dtype=np.int64)),
        precision=pd.Series([r.precision for r in reports], dtype=object),
        source=pd.Series("simulated", index=range(rows), dtype=object),
        file="<simulated>",
        lines=np.arange(2, rows + 2),
    )
    return build_panel(EventTable(frame=frame, files=("<simulated>",)), freq=freq, start=START, as_of=as_of)


def weeks(count: int, first: int = 0) -> list[pd.Timestamp]:
    return [START + pd.Timedelta(weeks=w) for w in range(first, first + count)]


def window_intervention(label: str, kind: str, first: pd.Timestamp, last: pd.Timestamp) -> InterventionTable:
    """One window intervention on every front."""
    frame = pd.DataFrame(
        {
            n.DATE: [first],
            n.END_DATE: [last],
            n.KIND: [kind],
            n.SHAPE: [n.SHAPE_WINDOW],
            n.FRONT: [()],
            n.LABEL: [label],
            n.SOURCE: ["simulated"],
            n.ORIGIN_FILE: ["<simulated>"],
            n.ORIGIN_LINE: [2],
        }
    )
    return InterventionTable(frame, ("<simulated>",))


def draw_counts(design, log_mean: np.ndarray, dispersion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts of every observation: NB with mean ``exp(log_mean)`` and dispersion ``alpha_f x D_i``.

    The likelihood's own distribution (:func:`forecast.models.escalation.total_dispersion`).
    """
    alpha = np.asarray(dispersion)[..., design.obs_front] * design.obs_days
    mean = np.exp(log_mean)
    return rng.negative_binomial(alpha, alpha / (alpha + mean)).astype(np.int64)


@dataclass(frozen=True)
class Scenario:
    """A simulated panel and the truth it was drawn from (the graph's own ``level``, ``burst``...)."""

    panel: Panel
    interventions: InterventionTable | None
    truth: dict[str, np.ndarray]


def simulate_scenario(
    reports: Sequence[Report],
    *,
    freq: str,
    as_of: pd.Timestamp,
    fixed: Mapping[str, np.ndarray],
    interventions: InterventionTable | None = None,
    random_seed: int,
) -> Scenario:
    """Counts drawn from the dynamic model's graph with ``fixed`` variables set by ``pm.do``.

    The graph is built on the reports with placeholder counts (a constant rate of 10 a day); its
    level is then the centre those counts give plus ``initial_level``, so a scenario fixes
    ``initial_level`` from :func:`initial_level_for`.  ``level_innovation`` gives the standard
    normals ``z`` of every front's level steps (:func:`graph_level_variables`).  Variables not
    fixed are drawn from the prior.
    """
    template = EscalationModel(
        make_panel(reports, placeholder_counts(reports), freq=freq, as_of=as_of), interventions, options=DYNAMIC
    )
    graph = pm.do(template.model, graph_level_variables(template, fixed))
    names = ["obs_log_mean", "dispersion", "level", "burst", "sigma_level", "tail_weight"]
    names += ["effect"] if interventions is not None else []
    values = dict(zip(names, pm.draw([graph[name] for name in names], random_seed=random_seed), strict=True))
    rng = np.random.default_rng(random_seed)
    counts = draw_counts(template.design, values["obs_log_mean"], values["dispersion"], rng)
    panel = make_panel(reports, counts, freq=freq, as_of=as_of)
    np.testing.assert_array_equal(EscalationModel(panel, options=DYNAMIC).design.y, counts)
    return Scenario(panel=panel, interventions=interventions, truth=values)


def graph_level_variables(template: EscalationModel, fixed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``fixed`` with ``level_innovation`` (``(front, step)`` standard normals) as the graph stores the level.

    The graph keeps the steps ``sigma sqrt(days) g_t(z)``, their density scored in whitened
    coordinates: ``level_window_step`` for the fronts that step once per window (the k-th knot
    takes the k-th ``z``) and ``level_step`` for the others (a knot per level step): a scenario
    states its walk once, whichever way each front is sampled.  ``sigma_level`` and
    ``tail_weight`` must be in ``fixed``.
    """
    out = dict(fixed)
    if "level_innovation" not in out:
        return out
    z = np.asarray(out.pop("level_innovation"))
    layout = dynamic.layout_of(template.design)
    assert z.shape == (len(template.design.fronts), layout.n_knots - 1), z.shape
    sigma = np.asarray(fixed["sigma_level"])[:, None]
    tail = np.asarray(fixed["tail_weight"])[:, None]
    if np.any(layout.windowed):  # a windowed front's k-th knot steps by its k-th z; unused knots get 0
        window_z = np.zeros((int(layout.windowed.sum()), layout.window_knot_capacity - 1))
        columns = min(z.shape[1], window_z.shape[1])
        window_z[:, :columns] = z[layout.windowed][:, :columns]
        scale = sigma[layout.windowed] * np.sqrt(layout.window_knot_days[:, 1:])
        out["level_window_step"] = scale * sinh_arcsinh(window_z, tail[layout.windowed])
    if np.any(layout.centred):
        scale = sigma[layout.centred] * np.sqrt(layout.knot_days[1:])
        out["level_step"] = scale * sinh_arcsinh(z[layout.centred], tail[layout.centred])
    return out


def placeholder_counts(reports: Sequence[Report]) -> np.ndarray:
    """10 a day over each report's days."""
    days = [((r.last - r.first).days + 1) if r.last is not None else 1 for r in reports]
    return 10 * np.asarray(days)


def initial_level_for(reports: Sequence[Report], *, freq: str, as_of: pd.Timestamp, log_rate: np.ndarray) -> np.ndarray:
    """``initial_level`` that starts each front's level at ``log_rate`` (the placeholders' centre removed)."""
    panel = make_panel(reports, placeholder_counts(reports), freq=freq, as_of=as_of)
    return np.asarray(log_rate) - dynamic.level_centre(EscalationModel(panel, options=DYNAMIC).design)


def period_table(front: str, starts: Sequence[pd.Timestamp]) -> list[Report]:
    """One row per period, dated on its first day (read as a period table)."""
    return [Report(front, start) for start in starts]


# --------------------------------------------------------------------------------------------
# 1. Simulation-based calibration
# --------------------------------------------------------------------------------------------

#: Replicates; ``SBC_REPLICATES=20 pytest -m slow tests/test_dynamic_slow.py -k calibration`` for a
#: quick end-to-end run.
SBC_REPLICATES = int(os.environ.get("SBC_REPLICATES", "100"))
SBC_FRONTS = ("north", "south")
SBC_WEEKS = 30
#: Each front opens with a 28-day total reported as "at least SBC_AT_LEAST".  The level's centre
#: (:func:`forecast.models.dynamic.level_centre`) is the log mean daily rate of a front's first 28
#: days, read from the data: a prior that moves with the data cannot be calibrated by drawing
#: from it once, and it is a constant of the graph, so each replicate would compile afresh.  An
#: "at least" total fixes the centre at log((SBC_AT_LEAST + 0.5) / 28) in every replicate and
#: contributes P(total >= SBC_AT_LEAST) to the likelihood.  Replicates are drawn from the prior
#: and kept when their simulated opening totals are at least SBC_AT_LEAST: selecting on the
#: data leaves the posterior given the data unchanged, so the ranks stay uniform.
SBC_AT_LEAST = 100
SBC_OPENING_DAYS = 28
#: A truce (window) over weeks 12-17 on both fronts: its effect on the first front is ranked.
SBC_TRUCE = ("simulated truce", 12, 17)
#: Target acceptance 0.99: at 0.95 the recovery fits below had divergent transitions.
#: 2 x 2000 draws: at 2 x 500 every replicate "failed" on the largest R-hat over its latent
#: elements (1.012-1.03, no divergence, hyperparameters mixed), the noise of that maximum at few
#: draws that made 2000 the dynamic model's default (3000, then 4000, since its diagonal mass matrix, whose
#: draws are cheaper; these two-front replicates pass at 2000 with it, see the README).
SBC_SAMPLER = {"sampler": "nutpie", "chains": 2, "tune": 1000, "draws": 2000, "target_accept": 0.99}
#: Posterior draws ranked per replicate (every 40th of 2 x 2000): thinned so that they are
#: nearly independent; autocorrelated draws pile ranks up at both ends even for a correct fit.
SBC_KEPT_DRAWS = 100
SBC_RANKED = ("sigma_level", "tail_weight", "dispersion", "truce effect", "next-week total")
#: Family-wise level of the uniformity tests, Bonferroni-split over the ranked quantities.
SBC_FAMILY_LEVEL = 0.01
#: Share of replicates whose fit may fail its convergence checks (they are ranked all the same).
SBC_MAX_FAILED_SHARE = 0.2


def sbc_reports() -> list[Report]:
    reports = []
    for front in SBC_FRONTS:
        end = START + pd.Timedelta(days=SBC_OPENING_DAYS - 1)
        reports.append(Report(front, START, end, n.PRECISION_AT_LEAST))
        first_week = SBC_OPENING_DAYS // WEEK
        reports += [
            Report(front, start, start + pd.Timedelta(days=WEEK - 1))
            for start in weeks(SBC_WEEKS - first_week, first_week)
        ]
    return reports


def sbc_as_of() -> pd.Timestamp:
    return START + pd.Timedelta(weeks=SBC_WEEKS) - pd.Timedelta(days=1)


def sbc_interventions() -> InterventionTable:
    label, first, last = SBC_TRUCE
    return window_intervention(label, "truce", weeks(1, first)[0], weeks(1, last)[0] + pd.Timedelta(days=WEEK - 1))


@dataclass(frozen=True)
class SbcTruth:
    counts: np.ndarray  # (obs,) the replicate's data, the opening totals replaced by SBC_AT_LEAST
    values: dict[str, float]  # the ranked quantities' true values


def draw_sbc_truths(template: EscalationModel, replicates: int, *, random_seed: int) -> tuple[list[SbcTruth], int]:
    """``replicates`` truths from the template's prior, and how many prior draws it took."""
    design = template.design
    graph = template.model
    opening = np.flatnonzero(design.censored)
    assert len(opening) == len(SBC_FRONTS) and np.all(design.obs_days[opening] == SBC_OPENING_DAYS)
    truce = design.labels.index(SBC_TRUCE[0])
    names = ["sigma_level", "tail_weight", "dispersion", "effect", "level", "obs_log_mean"]
    rng = np.random.default_rng(random_seed)
    truths: list[SbcTruth] = []
    drawn = 0
    while len(truths) < replicates:
        batch = pm.draw([graph[name] for name in names], draws=4 * replicates, random_seed=rng.integers(2**31))
        values = dict(zip(names, batch, strict=True))
        drawn += len(values["level"])
        for d in range(len(values["level"])):
            counts = draw_counts(design, values["obs_log_mean"][d], values["dispersion"][d], rng)
            if np.any(counts[opening] < SBC_AT_LEAST):
                continue
            counts[opening] = SBC_AT_LEAST
            truths.append(SbcTruth(counts=counts, values=_true_values(values, d, truce, rng)))
            if len(truths) == replicates:
                break
    return truths, drawn


def _true_values(values: dict[str, np.ndarray], d: int, truce: int, rng: np.random.Generator) -> dict[str, float]:
    """The ranked quantities of prior draw ``d``; the next week continues the draw's level."""
    fronts = len(SBC_FRONTS)
    next_level, _ = dynamic.simulate_future(
        level=values["level"][d, :, -1],
        burst=np.zeros(fronts),
        sigma_level=values["sigma_level"][d],
        tail_weight=values["tail_weight"][d],
        burst_sd=None,
        burst_persistence=None,
        has_burst=np.zeros(fronts, dtype=bool),
        step_days=np.array([float(WEEK)]),
        persistence_days=float(WEEK),
        rng=rng,
    )
    # The truce is over by then; a week's total is NB(7 lambda, 7 alpha), the sum of its days.
    mean = WEEK * np.exp(next_level[:, 0])
    alpha = WEEK * values["dispersion"][d]
    total = rng.negative_binomial(alpha, alpha / (alpha + mean)).sum()
    return {
        "sigma_level": float(values["sigma_level"][d, 0]),
        "tail_weight": float(values["tail_weight"][d, 0]),
        "dispersion": float(values["dispersion"][d, 0]),
        "truce effect": float(values["effect"][d, 0, truce]),
        "next-week total": float(total),
    }


def thinned(fit_posterior: xr.Dataset, keep: int, chains: int, draws: int) -> xr.Dataset:
    """Every ``chains x draws / keep``-th draw of each chain, ``keep`` in all."""
    step = chains * draws // keep
    if step < 1 or keep % chains:
        raise ValueError(f"cannot keep {keep} draws of {chains} chains x {draws}")
    return fit_posterior.isel(draw=slice(step - 1, None, step)).isel(draw=slice(0, keep // chains))


@pytest.mark.slow
def test_simulation_based_calibration_of_the_dynamic_model():
    """Ranks of true values drawn from the prior are uniform among posterior draws.

    Two fronts of weekly totals over 30 weeks, one truce; the compiled sampler is kept in a
    :class:`CompiledModels` and reused: only the first replicate compiles.
    """
    started = time.perf_counter()
    settings = SamplerSettings(**SBC_SAMPLER, progressbar=False)
    reports = sbc_reports()
    interventions = sbc_interventions()
    template_counts = np.where([r.precision == n.PRECISION_AT_LEAST for r in reports], SBC_AT_LEAST, 50)
    template_panel = make_panel(reports, template_counts, freq=n.FREQ_WEEK, as_of=sbc_as_of())
    template = EscalationModel(template_panel, interventions, options=DYNAMIC, shared_data=True)
    layout = dynamic.layout_of(template.design)
    # Weekly counts beside one opening window: every front's level whitened, in every replicate
    # (the layout follows the reports, not their counts), so one compiled sampler serves them all.
    assert not layout.any_burst and layout.centred.all()
    truths, drawn = draw_sbc_truths(template, SBC_REPLICATES, random_seed=2024)
    compiled = CompiledModels()
    rng = np.random.default_rng(7)
    ranks: dict[str, list[int]] = {name: [] for name in SBC_RANKED}
    failed: list[str] = []
    divergences: list[int] = []
    sampling_s = 0.0
    for i, truth in enumerate(truths):
        panel = make_panel(reports, truth.counts, freq=n.FREQ_WEEK, as_of=sbc_as_of())
        model = EscalationModel(panel, interventions, options=DYNAMIC, shared_data=True, compiled_models=compiled)
        np.testing.assert_array_equal(model.design.y, truth.counts)
        fit = model.fit(SamplerSettings(**SBC_SAMPLER, random_seed=i, progressbar=False))
        sampling_s += fit.timings["sample_s"]
        diagnostics = check_convergence(fit.idata)
        divergences.append(diagnostics.divergences)
        if not diagnostics.ok:
            failed.append(f"replicate {i}: {diagnostics.headline()}")
        kept = thinned(posterior(fit.idata), SBC_KEPT_DRAWS, settings.chains, settings.draws)
        forecast = forecast_counts(model, kept, horizon_days=WEEK, random_seed=i)
        first = {n.FRONT: SBC_FRONTS[0]}
        draws = {
            "sigma_level": kept["sigma_level"].sel(first),
            "tail_weight": kept["tail_weight"].sel(first),
            "dispersion": kept["dispersion"].sel(first),
            "truce effect": kept["effect"].sel({**first, n.INTERVENTION: SBC_TRUCE[0]}),
            "next-week total": forecast["counts"].sum(dim=(n.FRONT, "date")),
        }
        for name in SBC_RANKED:
            ranks[name].append(rank_of(truth.values[name], draws[name].to_numpy().ravel(), rng))
    bins = min(10, max(4, len(truths) // 20))
    threshold = SBC_FAMILY_LEVEL / len(SBC_RANKED)
    lines = []
    p_values = {}
    for name in SBC_RANKED:
        p_values[name] = uniformity_p_value(np.array(ranks[name]), SBC_KEPT_DRAWS, bins, rng)
        histogram, _ = np.histogram(ranks[name], bins=bins, range=(0, SBC_KEPT_DRAWS + 1))
        lines.append(f"{name}: chi-square p = {p_values[name]:.3f}; ranks per {bins}-quantile {histogram.tolist()}")
    lines.append(
        f"{len(truths)} replicates (from {drawn} prior draws) x {settings.chains} chains x {settings.draws} draws, "
        f"kept {SBC_KEPT_DRAWS}; compiled {compiled.misses}, reused {compiled.hits}; "
        f"{len(failed)} failed their convergence checks; divergences per replicate: median "
        f"{np.median(divergences):.0f}, max {max(divergences)}, total {sum(divergences)}; "
        f"{time.perf_counter() - started:.0f} s in all, {sampling_s:.0f} s of it sampling"
    )
    text = "\n".join(lines + failed)
    print("\n" + text)
    assert compiled.misses == 1, f"the compiled sampler was not reused\n{text}"
    assert len(failed) <= SBC_MAX_FAILED_SHARE * len(truths), f"too many failed fits\n{text}"
    bad = {name: p for name, p in p_values.items() if p <= threshold}
    assert not bad, f"ranks not uniform (p <= {threshold:.4f}) for {bad}\n{text}"


# --------------------------------------------------------------------------------------------
# 2. Recovery on scenarios made by the model
# --------------------------------------------------------------------------------------------

#: nutpie, 2 chains x (1000 tune + 3000 draws), target acceptance 0.99 (as tests/test_models_slow.py).
#: Measured with 1000 draws: at target 0.95 every scenario's fit had divergent transitions (step 1,
#: decline 3, lull 4, early-stopping windows 5, burst 46 of 2,000 draws; the burst also R-hat 1.03
#: and bulk ESS 76 on initial_level); at 0.99, three of five still failed their checks on the
#: hyperparameters that one front barely identifies (R-hat 1.02 log_sigma_level_mu on the step,
#: 1.03 log_dispersion_mu on the burst, bulk ESS 159 effect_sd on the lull).
RECOVERY_SAMPLER = {"sampler": "nutpie", "chains": 2, "tune": 1000, "draws": 3000, "target_accept": 0.99}
#: A front's ordinary level moves: sd 0.02 a day, 0.053 a week (the prior's median is 0.05 a day).
SIGMA_DAY = 0.02
TAIL_WEIGHT = 0.2
DISPERSION = 10.0
RATE = 10.0  # events a day


def fit_scenario(scenario: Scenario, *, random_seed: int):
    model = EscalationModel(scenario.panel, scenario.interventions, options=DYNAMIC)
    fit = model.fit(SamplerSettings(**RECOVERY_SAMPLER, random_seed=random_seed, progressbar=False))
    return model, posterior(fit.idata), check_convergence(fit.idata)


def quiet_level_steps(n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """``(1, n_steps)`` level innovations ``z`` of a quiet walk: standard normals, as the model's prior draws them."""
    return rng.standard_normal((1, n_steps))


def per_front(value: float, fronts: int = 1) -> np.ndarray:
    return np.full(fronts, value)


def quiet_fixed(fronts: int = 1) -> dict[str, np.ndarray]:
    return {
        "sigma_level": per_front(SIGMA_DAY, fronts),
        "tail_weight": per_front(TAIL_WEIGHT, fronts),
        "dispersion": per_front(DISPERSION, fronts),
    }


def interval_of(draws: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - INTERVAL_PROBABILITY) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def level_draws(fit_posterior: xr.Dataset, front: str) -> np.ndarray:
    """``(time, sample)`` of one front's level."""
    return (
        fit_posterior["level"]
        .sel({n.FRONT: front})
        .stack(sample=("chain", "draw"))
        .transpose(n.TIME, "sample")
        .to_numpy()
    )


STEP_WEEKS = 40
STEP_PERIOD = 20
STEP_LOG_RATIO = float(np.log(3.0))
#: Share of the weekly levels that must lie inside their 90% intervals.  One week's level is
#: informed by one week's count (NB noise of about 13% at 250 a week), so a single week is missed
#: 10% of the time by chance: on the first run, the level in the week of the step (truth 3.589)
#: fell just above its interval [3.238, 3.582] because that week's count was 0.16 (log) below its
#: mean.  A model that smoothed the step over weeks, or lagged it, misses every week around it and
#: the weeks after: the share is the check, as in tests/test_models_slow.py (MIN_COVERAGE).
MIN_LEVEL_COVERAGE = 0.7


@pytest.mark.slow
def test_recovers_a_step_in_the_level_and_dates_it():
    """(a) The level jumps by log 3 in week 20 (one large step of the heavy-tailed walk)."""
    reports = period_table("front", weeks(STEP_WEEKS))
    as_of = START + pd.Timedelta(weeks=STEP_WEEKS) - pd.Timedelta(days=1)
    rng = np.random.default_rng(11)
    z = quiet_level_steps(STEP_WEEKS - 1, rng)
    scale = SIGMA_DAY * np.sqrt(WEEK)
    z[0, STEP_PERIOD - 1] = sinh_arcsinh_inverse(STEP_LOG_RATIO / scale, TAIL_WEIGHT)  # the step into week 20
    fixed = quiet_fixed() | {
        "initial_level": initial_level_for(reports, freq=n.FREQ_WEEK, as_of=as_of, log_rate=[np.log(RATE)]),
        "level_innovation": z,
    }
    scenario = simulate_scenario(reports, freq=n.FREQ_WEEK, as_of=as_of, fixed=fixed, random_seed=11)
    truth = scenario.truth["level"][0]
    assert np.diff(truth)[STEP_PERIOD - 1] == pytest.approx(STEP_LOG_RATIO)
    model, fit_posterior, diagnostics = fit_scenario(scenario, random_seed=1)
    level = level_draws(fit_posterior, "front")
    (summary,) = dynamic_front_summary(model, fit_posterior, INTERVAL_PROBABILITY)
    step_date = model.design.periods[STEP_PERIOD]
    lines = [diagnostics.headline(), f"true step {step_date.date()}, rate ratio 3"]
    failures = [] if diagnostics.ok else [diagnostics.headline()]
    covered = []
    for t in range(STEP_WEEKS):
        low, high = interval_of(level[t])
        covered.append(low <= truth[t] <= high)
        if t in (STEP_PERIOD - 1, STEP_PERIOD, STEP_WEEKS - 1) or not covered[-1]:
            lines.append(f"level in week {t}: truth {truth[t]:.3f}, 90% interval [{low:.3f}, {high:.3f}]")
    coverage = float(np.mean(covered))
    lines.append(f"weekly levels inside their 90% intervals: {sum(covered)}/{STEP_WEEKS} = {coverage:.0%}")
    if coverage < MIN_LEVEL_COVERAGE:
        failures.append(f"level coverage {coverage:.0%} < {MIN_LEVEL_COVERAGE:.0%}")
    shifts = summary["level_shifts"]
    lines += [f"shift: {shift}" for shift in shifts]
    near = [s for s in shifts if abs((pd.Timestamp(s["mode_date"]) - step_date).days) <= 2 * WEEK]
    if len(near) != 1:
        failures.append(f"{len(near)} level shifts dated within 2 weeks of {step_date.date()}, not 1")
    else:
        (shift,) = near
        first, last = (model.design.periods.get_loc(pd.Timestamp(d)) for d in shift["interval_dates"])
        true_ratio = float(np.exp(truth[last] - truth[first - 1]))
        ratio = shift["rate_ratio"]
        lines.append(f"shift's true rate ratio {true_ratio:.3f}")
        if not ratio["low"] <= true_ratio <= ratio["high"] or shift["p_increase"] < 0.95:
            failures.append(f"shift rate ratio {ratio} (P(increase) {shift['p_increase']:.3f}), truth {true_ratio:.3f}")
    text = "\n".join(lines)
    print("\n" + text)
    assert not failures, "\n".join(failures) + "\n" + text


DECLINE_WEEKS = 36
#: From 20 to 5 a day over 35 weekly steps.
DECLINE_FROM, DECLINE_TO = 20.0, 5.0


@pytest.mark.slow
def test_recovers_a_steady_decline():
    """(b) Every weekly step of the walk is a little negative: a rate falling fourfold."""
    reports = period_table("front", weeks(DECLINE_WEEKS))
    as_of = START + pd.Timedelta(weeks=DECLINE_WEEKS) - pd.Timedelta(days=1)
    rng = np.random.default_rng(12)
    scale = SIGMA_DAY * np.sqrt(WEEK)
    drift = np.log(DECLINE_TO / DECLINE_FROM) / (DECLINE_WEEKS - 1)
    steps = drift + 0.5 * scale * rng.standard_normal(DECLINE_WEEKS - 1)
    fixed = quiet_fixed() | {
        "initial_level": initial_level_for(reports, freq=n.FREQ_WEEK, as_of=as_of, log_rate=[np.log(DECLINE_FROM)]),
        "level_innovation": sinh_arcsinh_inverse(steps / scale, TAIL_WEIGHT)[None, :],
    }
    scenario = simulate_scenario(reports, freq=n.FREQ_WEEK, as_of=as_of, fixed=fixed, random_seed=12)
    truth = scenario.truth["level"][0]
    model, fit_posterior, diagnostics = fit_scenario(scenario, random_seed=2)
    level = level_draws(fit_posterior, "front")
    log_ratio = level[-1] - level[0]
    true_ratio = float(np.exp(truth[-1] - truth[0]))
    low, high = (float(np.exp(x)) for x in interval_of(log_ratio))
    p_decline = float(np.mean(log_ratio < 0))
    text = (
        f"{diagnostics.headline()}\nrate ratio last/first week: truth {true_ratio:.3f}, 90% interval "
        f"[{low:.3f}, {high:.3f}], P(ratio < 1) = {p_decline:.4f}"
    )
    print("\n" + text)
    assert diagnostics.ok, text
    assert p_decline >= 0.99, text
    assert low <= true_ratio <= high, text


BURST_DAYS = 84
BURST_DAY = 55
#: The shock into the peak, in standard normals of the burst's innovations: a large draw that the
#: model itself makes (over 84 days, one at least this large in about one series of five).
BURST_SHOCK = 3.0
BURST_SD = 0.5
BURST_PERSISTENCE = 0.5  # per day: the excursion halves every day


@pytest.mark.slow
def test_a_burst_that_reverts_is_not_taken_for_a_level_shift():
    """(c) A daily front; on day 55 the burst takes a 3-sigma shock (to 6.5 times the level) and then reverts.

    Measured with Tukey's h tails and the burst's standard normals sampled: every statistical
    check passed, but the fit failed its convergence checks (5 divergences of 6,000 draws with
    RECOVERY_SAMPLER).  With the sinh-arcsinh tail and the whitened burst (5 December 2026), on
    the scenario as it was then (a hand-set jump to log 4 with a burst scale of 0.3): the fit
    passed its checks, no level shift, P(burst > 0) = 0.969, but the peak's 90% interval
    [0.05, 1.14] missed the truth 1.39.  That jump was 5.3 innovation scales, a 4.1-sigma normal
    draw at tail weight 0.2: not a scenario made by the model, whose posterior rightly shrinks so
    rare a shock.  The peak is now a 3-sigma shock of the model's own innovations.  Measured on it
    (5 December 2026): checks pass (R-hat 1.003, bulk ESS 1,948), no level shift, P(burst > 0) =
    0.962, and the peak's interval [0.03, 1.38] still misses the truth 1.87 (counts days 53-59:
    23, 9, 50, 22, 52, 15, 8).  A burst that halves every day is close to independent day-to-day
    noise, which the negative binomial's dispersion also explains: the two are confounded, and
    the posterior gives the spike partly to a lower dispersion.  Left failing: it is a limit of
    the model, not of the test.
    """
    days = pd.date_range(START, periods=BURST_DAYS, freq="D")
    reports = [Report("front", day) for day in days]
    as_of = days[-1]
    rng = np.random.default_rng(13)
    u = rng.standard_normal((1, BURST_DAYS))
    rho = BURST_PERSISTENCE
    # b_t = rho b_{t-1} + v_t, v_t = kappa sqrt(1 - rho^2) g_t(u_t) (v_0 = kappa g_t(u_0)): the burst's
    # innovations, fixed as the graph's burst_step; the one into the peak is set below.
    scale = np.full((1, BURST_DAYS), BURST_SD * np.sqrt(1.0 - rho**2))
    scale[0, 0] = BURST_SD
    steps = scale * sinh_arcsinh(u, TAIL_WEIGHT)
    steps[0, BURST_DAY] = scale[0, BURST_DAY] * sinh_arcsinh(BURST_SHOCK, TAIL_WEIGHT)
    fixed = quiet_fixed() | {
        "initial_level": initial_level_for(reports, freq=n.FREQ_DAY, as_of=as_of, log_rate=[np.log(RATE)]),
        # the level steps once a week on a daily grid
        "level_innovation": rng.standard_normal((1, -(-BURST_DAYS // dynamic.DAILY_LEVEL_PERIODS) - 1)),
        "burst_sd": per_front(BURST_SD),
        "burst_persistence": per_front(BURST_PERSISTENCE),
    }
    scenario = simulate_scenario(
        reports, freq=n.FREQ_DAY, as_of=as_of, fixed=fixed | {"burst_step": steps}, random_seed=13
    )
    burst_truth = scenario.truth["burst"][0]
    level_truth = scenario.truth["level"][0]
    assert burst_truth[BURST_DAY] > np.log(4.0)  # a spike to over 4 times the level
    model, fit_posterior, diagnostics = fit_scenario(scenario, random_seed=3)
    assert dynamic.layout_of(model.design).burst.all()
    (summary,) = dynamic_front_summary(model, fit_posterior, INTERVAL_PROBABILITY)
    burst = fit_posterior["burst"].sel({n.FRONT: "front"}).stack(sample=("chain", "draw")).to_numpy()
    level = level_draws(fit_posterior, "front")
    peak_low, peak_high = interval_of(burst[BURST_DAY])
    p_burst = float(np.mean(burst[BURST_DAY] > 0))
    level_jump = level[BURST_DAY + 7] - level[BURST_DAY - 1]  # across the burst and its reversion
    jump_low, jump_high = interval_of(level_jump)
    counts = model.design.y
    lines = [
        diagnostics.headline(),
        f"counts days {BURST_DAY - 2}..{BURST_DAY + 4}: {counts[BURST_DAY - 2 : BURST_DAY + 5].tolist()}",
        f"burst on day {BURST_DAY}: truth {burst_truth[BURST_DAY]:.3f}, 90% interval [{peak_low:.3f}, "
        f"{peak_high:.3f}], P(> 0) = {p_burst:.3f}",
        f"level change days {BURST_DAY - 1} -> {BURST_DAY + 7}: truth "
        f"{level_truth[BURST_DAY + 7] - level_truth[BURST_DAY - 1]:.3f}, "
        f"90% interval [{jump_low:.3f}, {jump_high:.3f}]",
        f"level shifts: {summary['level_shifts']}",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    failures = [] if diagnostics.ok else [diagnostics.headline()]
    if summary["level_shifts"]:
        failures.append("the burst became a level shift")
    if not p_burst >= 0.95:
        failures.append(f"P(burst on day {BURST_DAY} > 0) = {p_burst:.3f} < 0.95")
    if not peak_low <= burst_truth[BURST_DAY] <= peak_high:
        failures.append("the burst's peak is outside its 90% interval")
    if not jump_low <= 0.0 <= jump_high:
        failures.append("the level before and after the burst differ")
    assert not failures, "\n".join(failures) + "\n" + text


LULL_WEEKS = 40
LULL = ("simulated truce", 18, 23)  # label, first and last week
LULL_EFFECT = -0.8


@pytest.mark.slow
def test_recovers_the_effect_of_a_truce_lull():
    """(d) A window intervention over weeks 18-23 with effect -0.8 (rate ratio 0.45)."""
    reports = period_table("front", weeks(LULL_WEEKS))
    as_of = START + pd.Timedelta(weeks=LULL_WEEKS) - pd.Timedelta(days=1)
    label, first, last = LULL
    interventions = window_intervention(
        label, "truce", weeks(1, first)[0], weeks(1, last)[0] + pd.Timedelta(days=WEEK - 1)
    )
    rng = np.random.default_rng(14)
    fixed = quiet_fixed() | {
        "initial_level": initial_level_for(reports, freq=n.FREQ_WEEK, as_of=as_of, log_rate=[np.log(RATE)]),
        "level_innovation": quiet_level_steps(LULL_WEEKS - 1, rng),
        "effect": np.array([[LULL_EFFECT]]),
    }
    scenario = simulate_scenario(
        reports, freq=n.FREQ_WEEK, as_of=as_of, fixed=fixed, interventions=interventions, random_seed=14
    )
    model, fit_posterior, diagnostics = fit_scenario(scenario, random_seed=4)
    (item,) = intervention_summary(model, fit_posterior, INTERVAL_PROBABILITY)["front"]
    effect = fit_posterior["effect"].sel({n.FRONT: "front", n.INTERVENTION: label}).to_numpy().ravel()
    low, high = interval_of(effect)
    text = (
        f"{diagnostics.headline()}\ntruce effect: truth {LULL_EFFECT}, 90% interval [{low:.3f}, {high:.3f}], "
        f"P(effect < 0) = {item['p_effect_below_1']:.4f}; rate ratio {item['rate_ratio']}"
    )
    print("\n" + text)
    assert diagnostics.ok, text
    assert high < 0.0, text
    assert low <= LULL_EFFECT <= high, text


GAP_WEEKS = 40
GAP_WINDOW_WEEKS = 4
GAP_LAST_WINDOW_WEEK = 28  # the window front's data stop at the end of week 27, 12 weeks early
GAP_HORIZON_DAYS = 28


@pytest.mark.slow
def test_a_window_front_whose_data_stopped_early_has_wider_forecasts():
    """(e) Two fronts alike, one counted every week to the end, one in 4-week totals that stop early."""
    as_of = START + pd.Timedelta(weeks=GAP_WEEKS) - pd.Timedelta(days=1)
    windows = [
        Report("windows", start, start + pd.Timedelta(weeks=GAP_WINDOW_WEEKS) - pd.Timedelta(days=1))
        for start in weeks(GAP_LAST_WINDOW_WEEK)[::GAP_WINDOW_WEEKS]
    ]
    reports = period_table("counted", weeks(GAP_WEEKS)) + windows
    rng = np.random.default_rng(15)
    fixed = quiet_fixed(2) | {
        "initial_level": initial_level_for(reports, freq=n.FREQ_WEEK, as_of=as_of, log_rate=np.log([RATE, RATE])),
        "level_innovation": rng.standard_normal((2, GAP_WEEKS - 1)),
    }
    scenario = simulate_scenario(reports, freq=n.FREQ_WEEK, as_of=as_of, fixed=fixed, random_seed=15)
    model, fit_posterior, diagnostics = fit_scenario(scenario, random_seed=5)
    assert list(model.design.fronts) == ["counted", "windows"]
    forecast = forecast_counts(model, fit_posterior, horizon_days=GAP_HORIZON_DAYS, random_seed=5)
    log_rate = np.log(forecast["rate"].mean(dim="date")).stack(sample=("chain", "draw"))
    widths = {}
    lines = [diagnostics.headline()]
    for front in model.design.fronts:
        low, high = interval_of(log_rate.sel({n.FRONT: front}).to_numpy())
        widths[front] = high - low
        lines.append(
            f"{front}: 90% interval of the log mean daily rate over the next {GAP_HORIZON_DAYS} days "
            f"[{low:.3f}, {high:.3f}], width {high - low:.3f}; true level at as_of "
            f"{scenario.truth['level'][list(model.design.fronts).index(front), -1]:.3f}"
        )
    text = "\n".join(lines)
    print("\n" + text)
    assert diagnostics.ok, text
    assert widths["windows"] > widths["counted"], text
