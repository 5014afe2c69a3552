"""The escalation model's lifecycle: build the graph, fit it, recompute derived quantities.

:class:`EscalationModel` owns configuration (data, priors, options) and does nothing heavy
in ``__init__``; :meth:`EscalationModel.build` makes the PyMC model once, and
:meth:`EscalationModel.fit` samples it with the chosen NUTS implementation.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pymc.backends.arviz import apply_function_over_dataset, coords_and_dims_for_inferencedata
from pytensor.graph.traversal import ancestors

from forecast import names as n
from forecast.data.interventions import InterventionTable
from forecast.data.panel import PERIOD_OFFSET, Panel
from forecast.errors import ForecastError, OptionError
from forecast.models import dynamic
from forecast.models.design import Design, ModelOptions, build_design
from forecast.models.escalation import MODEL_NAME, POST_HOC_VARIABLES, build_escalation_model
from forecast.models.numba_digamma import register_cacheable_digamma
from forecast.models.nutpie_compile import CompiledModels, compile_nutpie_model
from forecast.models.sampling_progress import logged_progress, wants_logged_progress
from forecast.priors import PriorSet, load_priors

log = logging.getLogger(__name__)

#: NUTS implementations that can be chosen; the default was chosen by benchmarks/bench_models.py.
SAMPLERS = ("nutpie", "pymc", "numpyro")
DEFAULT_SAMPLER = "nutpie"
#: Draws per chain by model family when none are asked for.  The dynamic model stores hundreds of
#: latent elements (its level, the level's steps and the coordinates they are sampled in), and
#: NUTS keeps each one's magnitude from draw to draw (it flips a near-normal coordinate's sign:
#: lag-1 autocorrelation of x -0.26 to -0.47, of |x - median| +0.33 to +0.49), so the largest of
#: their rank-normalised R-hats sits at the 1.01 limit by noise with 2 x 1000 draws (Ethiopia's
#: monthly battles, six fits: 1.009-1.015, bulk ESS above 1,100 everywhere; 10 of 12 six-front
#: backtest fits "failed" at 1.010-1.013) and well below it with 2 x 2000 (six fronts: 1.004-1.007).
#: ``benchmarks/bench_latent_rhat.py`` measures it.  3000 since the dynamic model samples with a
#: diagonal mass matrix (``SAMPLER_KWARGS``): a draw is cheaper but mixes the sparsest fronts'
#: dispersion a little worse, and 2 x 3000 diagonal draws take less time than 2 x 2000 low-rank
#: ones and pass as often (45-series ACLED backtest: 11/12 fits, mean fit 68.3 s against 89.1 s;
#: 9/12 at 2 x 2000 diagonal draws, 48.1 s; benchmarks/results/sampler_settings/after_centres/).
#: 4000 since the one failure left at 3000 (R-hat 1.011 on the sparsest front's dispersion) was
#: the same noise: at 2 x 4000 both seeds of that backtest pass 12/12, largest R-hat 1.003-1.010
#: and 1.003-1.005 (benchmarks/results/sampler_settings/after_centres/backtest-diagonal-4000/).
DEFAULT_DRAWS = {"changepoint": 1000, "dynamic": 4000}
#: Tuning iterations per chain by model family when none are asked for.  nutpie's adaptation of
#: the dynamic model has settled well before 500: the same 31 gradient evaluations a draw after 500
#: tuning iterations as after 1000, on the shipped data, with diagnostics no worse (three seeds
#: each at 2 x 1000 draws: largest R-hat 1.011-1.012 against 1.011-1.02), and the sampling a
#: quarter shorter (``benchmarks/results/dynamic/tune/``).
DEFAULT_TUNE = {"changepoint": 1000, "dynamic": 500}
#: Options per model family and sampler.  For the changepoint model nutpie's low-rank mass matrix
#: adapts to the posterior correlation between a front's baseline and its jumps (ESS with it:
#: benchmarks/results/bench_models.md).  The dynamic model samples its pooled hyperparameters as
#: centres and zero-sum spreads, so the correlation the low-rank correction learned there (a
#: population mean against the sum of its offsets) is gone, and a diagonal matrix samples it
#: faster with no more gradients a draw (benchmarks/results/sampler_settings/after_centres/).
SAMPLER_KWARGS: dict[str, dict[str, dict[str, object]]] = {
    "changepoint": {"nutpie": {"low_rank_modified_mass_matrix": True}},
    "dynamic": {"nutpie": {"low_rank_modified_mass_matrix": False}},
}
#: Hierarchical priors whose parameterisation follows ``ModelOptions.parameterization``.
HIERARCHICAL_PRIORS = ("baseline", "jump")
#: Periods whose multiple a reusable dynamic model's latent paths are padded to (see
#: :class:`EscalationModel`, ``reusable``): four weeks of days, a month of weeks, a quarter of
#: months.  A table that grows by a period keeps its graph until it crosses the next multiple;
#: the padded periods cost sampling time (up to 27 days on the shipped data's 195).
LATENT_BLOCK = {"day": 28, "week": 4, "month": 3, "year": 1}


@dataclass(frozen=True)
class SamplerSettings:
    """How to run NUTS; every fit records these."""

    sampler: str = DEFAULT_SAMPLER
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    target_accept: float = 0.95
    random_seed: int = 1
    progressbar: bool = True

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise OptionError(f"unknown sampler {self.sampler!r}; allowed: {list(SAMPLERS)}")
        for name in ("draws", "tune", "chains"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1")
        if not 0.5 <= self.target_accept < 1:
            raise OptionError("target_accept must be in [0.5, 1)")

    def to_dict(self) -> dict[str, object]:
        """As recorded in a fit's provenance (``name`` is the sampler)."""
        return {
            "name": self.sampler,
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "target_accept": self.target_accept,
            "random_seed": self.random_seed,
        }

    @classmethod
    def from_dict(cls, recorded: dict[str, object], *, progressbar: bool = False) -> SamplerSettings:
        """Inverse of :meth:`to_dict`."""
        values = {k: v for k, v in recorded.items() if k != "name"}
        return cls(sampler=str(recorded["name"]), progressbar=progressbar, **values)  # type: ignore[arg-type]


@dataclass
class FitResult:
    """A sampled model: the posterior and what is needed to interpret it."""

    idata: az.InferenceData
    design: Design
    model: pm.Model
    settings: SamplerSettings
    timings: dict[str, float] = field(default_factory=dict)


class EscalationModel:
    """The hierarchical changepoint and intervention model for a panel.

    Parameters
    ----------
    panel : Panel
    interventions : InterventionTable, optional
    priors : PriorSet, optional
        Defaults to ``priors/default.yaml``'s values (the code defaults).
    options : ModelOptions, optional
    shared_data : bool
        Build the graph with its data as shared variables (see
        :class:`forecast.models.escalation.DesignData`): the compiled nutpie sampler can then be
        reused for other data of the same structure through ``compiled_models`` within one
        process, and found on disk by a later one when the shapes agree (``reusable``).  Off by
        default; the backtest turns it on, and ``reusable`` implies it.
    compiled_models : CompiledModels, optional
        Where nutpie fits look for, and keep, a compiled model of the same graph.
    placeholders_until : Timestamp, optional
        Keep interventions starting after the data, up to this date, as placeholders
        (:func:`forecast.models.design.build_design`).
    reusable : bool
        Build the dynamic model so that a later fit of a longer table (next week's) finds this
        fit's compiled sampler on disk instead of compiling for 100 s: its data as shared
        variables and its latent paths padded to a multiple of :data:`LATENT_BLOCK` periods
        (:attr:`pad_days`), so that the graph, and the shapes nutpie compiles in, stay the same
        until the table crosses that multiple.  The padded periods carry no observation and are
        dropped from the result.  No effect on the changepoint model.  The command line's fits
        and reports turn it on for nutpie.
    """

    @property
    def name(self) -> str:
        """``escalation`` (the changepoint family, as fits have always recorded it) or ``dynamic``."""
        return dynamic.MODEL_NAME if self.options.family == "dynamic" else MODEL_NAME

    def __init__(
        self,
        panel: Panel,
        interventions: InterventionTable | None = None,
        *,
        priors: PriorSet | None = None,
        options: ModelOptions | None = None,
        shared_data: bool = False,
        compiled_models: CompiledModels | None = None,
        placeholders_until: pd.Timestamp | None = None,
        reusable: bool = False,
    ) -> None:
        self.panel = panel
        self.interventions = interventions
        self.options = options or ModelOptions()
        self._priors = priors or load_priors(model=self.options.family)
        if self._priors.model != self.options.family:
            raise ForecastError(
                f"the priors ({self._priors.source}) are for the {self._priors.model} model, "
                f"not the {self.options.family} model"
            )
        self.reusable = reusable and self.options.family == "dynamic"
        self.shared_data = shared_data or self.reusable
        self.compiled_models = compiled_models
        self.placeholders_until = placeholders_until

    @cached_property
    def design(self) -> Design:
        return build_design(self.panel, self.interventions, self.options, placeholders_until=self.placeholders_until)

    @cached_property
    def priors(self) -> PriorSet:
        """The priors as used: hierarchies centred or not as the options decide.

        The dynamic model's hyperpriors are always non-centred (its latent paths are centred
        per front instead, :func:`forecast.models.dynamic.centred_fronts`).
        """
        if self.options.family == "dynamic":
            return self._priors
        return self._priors.with_centered(HIERARCHICAL_PRIORS, self.design.centered)

    @cached_property
    def model(self) -> pm.Model:
        return self.build()

    def build(self) -> pm.Model:
        """Build the PyMC model (no sampling)."""
        if self.options.family == "dynamic":
            return dynamic.build_dynamic_model(
                self.design, self.priors.priors, shared_data=self.shared_data, pad_days=self.pad_days
            )
        return build_escalation_model(self.design, self.priors.priors, shared_data=self.shared_data)

    @cached_property
    def pad_days(self) -> np.ndarray:
        """Days of the dynamic model's latent periods after the data, through ``placeholders_until``.

        With placeholders (the backtest), every origin's latent paths run to the same last
        period, so that the origins share one graph and one compiled sampler
        (:attr:`forecast.models.dynamic.DynamicLayout.pad_days`).  A reusable model's run on to
        the next multiple of :data:`LATENT_BLOCK` periods.  None otherwise.
        """
        if self.options.family != "dynamic":
            return np.zeros(0)
        step = PERIOD_OFFSET[self.panel.freq]
        until = None if self.placeholders_until is None else pd.Timestamp(self.placeholders_until)
        block = -len(self.panel.periods) % LATENT_BLOCK[self.panel.freq] if self.reusable else 0
        days: list[int] = []
        start = self.panel.periods[-1] + step
        while start <= until if until is not None else len(days) < block:
            days.append(((start + step) - start).days)
            start = start + step
        return np.asarray(days, dtype=float)

    def stored_variables(self) -> list[str]:
        """Variables kept draw by draw (the heavy derived ones are recomputed on demand)."""
        names = [v.name for v in self.model.free_RVs] + [v.name for v in self.model.deterministics]
        post_hoc = dynamic.POST_HOC_VARIABLES if self.options.family == "dynamic" else POST_HOC_VARIABLES
        return [name for name in names if name not in post_hoc]

    def fit(self, settings: SamplerSettings | None = None) -> FitResult:
        """Sample the posterior with NUTS; diagnostics are checked by the caller.

        Parameters
        ----------
        settings : SamplerSettings, optional
            Sampler, draws, tune, chains, target_accept and random_seed.
        """
        family = self.options.family
        settings = settings or SamplerSettings(draws=DEFAULT_DRAWS[family], tune=DEFAULT_TUNE[family])
        if settings.sampler == "numpyro":
            prepare_numpyro(settings.chains)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        model = self.model
        timings["build_s"] = time.perf_counter() - start
        log.info(
            "sampling %s with %s: %d chains x (%d tune + %d draws), %d fronts, %d observations",
            self.name,
            settings.sampler,
            settings.chains,
            settings.tune,
            settings.draws,
            len(self.design.fronts),
            self.design.n_obs,
        )
        if settings.sampler == "nutpie":
            idata = self._sample_nutpie(model, settings, timings)
        else:
            start = time.perf_counter()
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=min(settings.chains, 2),
                target_accept=settings.target_accept,
                random_seed=settings.random_seed,
                nuts_sampler=settings.sampler,
                var_names=self.stored_variables(),
                progressbar=settings.progressbar,
                compute_convergence_checks=False,
                model=model,
                nuts_sampler_kwargs=SAMPLER_KWARGS[family].get(settings.sampler, {}),
            )
            timings["sample_s"] = time.perf_counter() - start
        idata.posterior = self.without_padding(idata.posterior)
        return FitResult(idata=idata, design=self.design, model=model, settings=settings, timings=timings)

    def _sample_nutpie(self, model: pm.Model, settings: SamplerSettings, timings: dict[str, float]) -> az.InferenceData:
        """Compile (from the disk cache when this graph was compiled before) and sample with nutpie."""
        import nutpie

        # A cacheable digamma gives the graph a PyTensor cache key (forecast.models.numba_digamma);
        # the key names the cached compiled sampler functions (forecast.models.nutpie_compile).
        register_cacheable_digamma()
        start = time.perf_counter()
        if self.compiled_models is None:
            compiled, reused = compile_nutpie_model(model, var_names=self.stored_variables()), False
        else:
            compiled, reused = self.compiled_models.compile(model, self.stored_variables())
        timings["compile_s"] = time.perf_counter() - start
        log.info(
            "nutpie model %s in %.1f s",
            "reused from an earlier fit of the same graph" if reused else "compiled",
            timings["compile_s"],
        )
        options = SAMPLER_KWARGS[self.options.family]["nutpie"]
        start = time.perf_counter()
        cores = min(settings.chains, os.cpu_count() or 1)
        # Without a terminal (a scheduled job's log) nutpie's bar hides itself: log the progress.
        progress = logged_progress(cores) if wants_logged_progress(settings.progressbar) else contextlib.nullcontext()
        with progress:
            idata = nutpie.sample(
                compiled,
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=cores,
                target_accept=settings.target_accept,
                seed=settings.random_seed,
                progress_bar=settings.progressbar,
                **options,
            )
        timings["sample_s"] = time.perf_counter() - start
        # The tuning draws are not posterior draws and nothing reads them; they were a third of
        # fit.nc (benchmarks/results/dynamic/saved_fit: writing the ACLED fit 5.9 s, 7.7 s with
        # them).  Their sampler statistics (step sizes, tree depths) are small and kept.
        if "warmup_posterior" in idata.groups():
            del idata.warmup_posterior
        idata.posterior.attrs.update(
            sampling_time=timings["sample_s"],
            tuning_steps=settings.tune,
            inference_library="nutpie",
            compiled_model_reused=int(reused),
            mass_matrix="low-rank modified" if options.get("low_rank_modified_mass_matrix") else "diagonal",
        )
        return idata

    def derived(
        self,
        posterior: xr.Dataset,
        var_names: list[str],
        *,
        mode: str | None = None,
        given: Sequence[str] = (),
    ) -> xr.Dataset:
        """Recompute derived variables (``regime_loglik``, ``changepoint_probability``...) per draw.

        ``mode`` is PyTensor's compile mode (default: PyTensor's, the C backend).  ``given`` names
        stored variables (deterministics or free variables in ``posterior``) to compute them from:
        the graph is cut at those, so only the part between them and ``var_names`` is compiled.
        Without it, everything is computed from the free variables.  A cut that leaves a random
        variable of the model upstream of ``var_names`` is refused (compiled, it would draw that
        variable afresh instead of reading the posterior).
        """
        available = {v.name for v in self.model.deterministics}
        missing = [name for name in var_names if name not in available]
        if missing:
            raise KeyError(f"not in this model: {missing}; available: {sorted(available)}")
        posterior = self._padded_posterior(posterior)
        if not given:
            return pm.compute_deterministics(
                posterior,
                var_names=var_names,
                model=self.model,
                progressbar=False,
                compile_kwargs=None if mode is None else {"mode": mode},
            )
        absent = [name for name in given if name not in posterior or name not in self.model.named_vars]
        if absent:
            raise KeyError(f"cannot compute from {absent}: not both stored and in this model")
        inputs = [self.model[name] for name in given]
        outputs = [self.model[name] for name in var_names]
        upstream = set(ancestors(outputs, blockers=inputs)) - set(inputs)
        leaked = [rv.name for rv in self.model.basic_RVs if rv in upstream]
        if leaked:
            raise ValueError(f"{var_names} computed from {list(given)} still depend on {leaked}: give those too")
        function = self.model.compile_fn(
            inputs=inputs,
            outs=outputs,
            on_unused_input="ignore",
            **({} if mode is None else {"mode": mode}),
        )
        coords, dims = coords_and_dims_for_inferencedata(self.model)
        return apply_function_over_dataset(
            function,
            posterior[list(given)],
            output_var_names=var_names,
            dims=dims,
            coords=coords,
            sample_dims=list(n.SAMPLE_DIMS),
            progressbar=False,
        )

    def without_padding(self, posterior: xr.Dataset) -> xr.Dataset:
        """``posterior`` over the data's periods only: the padded ones (:attr:`pad_days`) are not part of a result."""
        if not len(self.pad_days) or n.TIME not in posterior.dims:
            return posterior
        posterior = posterior.isel({n.TIME: slice(0, len(self.design.periods))})
        posterior.attrs["padded_periods"] = len(self.pad_days)
        return posterior

    def _padded_posterior(self, posterior: xr.Dataset) -> xr.Dataset:
        """``posterior`` with its paths run on over the padded periods, as the graph reads them.

        :meth:`fit` drops the padded periods (:attr:`pad_days`) from the result, but the graph
        still has them.  They carry no observation, so what they hold changes no derived value of
        the data's periods: each path repeats its last period's value there.
        """
        extra = len(self.pad_days)
        if not extra:
            return posterior
        posterior = posterior.drop_vars(n.TIME, errors="ignore")
        variables = {
            name: variable.pad({n.TIME: (0, extra)}, mode="edge") if n.TIME in variable.dims else variable
            for name, variable in posterior.data_vars.items()
        }
        return xr.Dataset(variables, attrs=posterior.attrs)


XLA_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def prepare_numpyro(chains: int) -> None:
    """Check that NumPyro is installed and let its chains run in parallel on the CPU.

    JAX sees one CPU device unless told otherwise before it is first imported, and NumPyro then
    runs the chains one after another.  When JAX is not imported yet and ``XLA_FLAGS`` does not
    set a device count, one device per chain (at most one per core) is asked for.
    """
    if importlib.util.find_spec("numpyro") is None or importlib.util.find_spec("jax") is None:
        raise ForecastError(
            "the numpyro sampler needs the optional dependencies: pip install 'escalation-forecast[numpyro]'"
        )
    if "jax" in sys.modules:
        log.info("JAX was imported before the fit: NumPyro uses the CPU devices JAX already has")
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if XLA_DEVICES_FLAG not in flags:
        devices = max(1, min(chains, os.cpu_count() or 1))
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_DEVICES_FLAG}={devices}".strip()
        log.info("XLA_FLAGS: %d CPU devices for NumPyro's parallel chains", devices)


def changepoint_dates_posterior(model: EscalationModel, posterior: xr.Dataset) -> np.ndarray:
    """Draw-averaged ``p(tau_k = position)`` as ``(changepoint, front, position)``."""
    probabilities = model.derived(posterior, ["changepoint_probability"])["changepoint_probability"]
    return probabilities.mean(dim=("chain", "draw")).to_numpy()
