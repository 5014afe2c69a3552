"""The job behind ``forecast check``: re-examine a saved fit against its own data.

The fit's data are read again from the files it records; a fit whose data, priors or options
no longer match is refused (:class:`forecast.errors.FitMismatchError`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from forecast.artefacts import CHECKS_FOLDER, FIT_FILE
from forecast.checks.compare import loo_table
from forecast.checks.diagnostics import check_convergence
from forecast.checks.predictive import randomized_pit
from forecast.data.options import SelectOptions
from forecast.fits import FitProvenance, check_provenance, load_fit, log_likelihood, posterior_predictive
from forecast.jobs.data import DataRequest, load_data
from forecast.jobs.fit import OBSERVED_NAME, FitRequest, check_predictions, run_fit
from forecast.models.design import Design, ModelOptions
from forecast.models.escalation import OBS
from forecast.models.model import EscalationModel, SamplerSettings
from forecast.plots.checks import plot_pit_histogram, plot_predictive_bands, plot_rootogram
from forecast.priors import priors_from_dict

log = logging.getLogger(__name__)


def request_from_provenance(provenance: FitProvenance) -> FitRequest:
    """The fit request that produced a saved fit (same files, span, options and sampler)."""
    recorded = dict(provenance.model_options)
    data = recorded.pop("data")
    options = ModelOptions(**recorded)
    request = DataRequest(
        events=tuple(Path(p) for p in data["events"]),
        interventions=Path(data["interventions"]) if data["interventions"] else None,
        format=data["format"],
        options=SelectOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["options"].items()}),  # type: ignore[arg-type]
        freq=data["freq"],
        as_of=pd.Timestamp(data["end"]),
        start=pd.Timestamp(data["start"]),
        # Fits saved before these options existed read every row as a one-day event ("no");
        # their uncertain UCDP dates were windows, which no option reproduces (the data hash
        # check then refuses the fit).
        period_tables=data.get("period_tables", "no"),
        uncertain_dates=data.get("uncertain_dates", "middle"),
    )
    return FitRequest(data=request, options=options, settings=SamplerSettings.from_dict(provenance.sampler))


class CheckReport(TypedDict, total=False):
    """What :func:`check_saved_fit` returns (JSON-ready); ``loo_table`` only with a LOO comparison."""

    fit: str
    headline: str
    diagnostics: dict[str, object]
    predictive_checks: dict[str, object]
    flagged: list[str]
    plots: dict[str, str]
    loo: dict[str, object] | None
    loo_table: str


def check_saved_fit(fit_dir: Path, *, compare_variants: bool = False) -> CheckReport:
    """Diagnostics, predictive checks (numbers and plots) and optionally a LOO comparison."""
    path = Path(fit_dir) / FIT_FILE
    idata, provenance = load_fit(path)
    request = request_from_provenance(provenance)
    loaded = load_data(request.data)
    priors = priors_from_dict(provenance.priors, source=f"{path} (recorded priors)", model=request.options.family)
    check_provenance(
        provenance, {"data_hash": loaded.panel.data_hash(), "priors_hash": priors.hash()}, source=str(path)
    )
    model = EscalationModel(loaded.panel, loaded.interventions, priors=priors, options=request.options)

    diagnostics = check_convergence(idata)
    design = model.design
    replicated = posterior_predictive(idata)[OBSERVED_NAME].transpose("chain", "draw", OBS).to_numpy()
    predictive = check_predictions(design, replicated)
    plots = _write_plots(Path(fit_dir) / CHECKS_FOLDER, design, replicated, request.settings.random_seed)

    report: CheckReport = {
        "fit": str(path),
        "headline": diagnostics.headline(),
        "diagnostics": diagnostics.to_dict(),
        "predictive_checks": predictive.to_dict(),
        "flagged": predictive.flagged(),
        "plots": {name: str(p) for name, p in plots.items()},
        "loo": None,
    }
    if compare_variants:
        pointwise = {_variant_name(request.options): log_likelihood(idata)[OBSERVED_NAME].to_numpy()}
        for name, options in variants(request.options).items():
            log.info("fitting variant %s for the LOO comparison", name)
            outcome = run_fit(replace(request, options=options, priors=None))
            pointwise[name] = log_likelihood(outcome.idata)[OBSERVED_NAME].to_numpy()
        comparison = loo_table(pointwise, design.y)
        report["loo"] = comparison.to_dict()
        report["loo_table"] = comparison.format()
    return report


def _variant_name(options: ModelOptions) -> str:
    if options.family == "dynamic":
        return ", ".join(["dynamic", "interventions" if options.interventions else "no interventions"])
    parts = [f"K={options.changepoints}", "interventions" if options.interventions else "no interventions"]
    if options.self_excitation:
        parts.append("self-excitation")
    if options.seasonality:
        parts.append("seasonality")
    return ", ".join(parts)


def variants(options: ModelOptions) -> dict[str, ModelOptions]:
    """The model variants compared with a fit: fewer/more changepoints, interventions, excitation.

    A dynamic fit is compared with itself without (or with) interventions and with the changepoint
    model (one changepoint per front), whose options it cannot take.
    """
    if options.family == "dynamic":
        candidates = [
            replace(options, interventions=not options.interventions),
            replace(options, family="changepoint", changepoints=1),
        ]
        return {_variant_name(c): c for c in candidates}
    candidates = [
        replace(options, changepoints=0),
        replace(options, changepoints=options.changepoints + 1),
        replace(options, interventions=not options.interventions),
        replace(options, self_excitation=not options.self_excitation),
    ]
    return {_variant_name(c): c for c in candidates if c != options}


def _write_plots(folder: Path, design: Design, replicated: np.ndarray, seed: int) -> dict[str, Path]:
    """Predictive bands per front, PIT histogram and rootogram as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = [design.fronts[f] for f in design.obs_front]
    window = np.zeros(design.n_obs, dtype=bool)
    window[design.window_obs] = True
    figures = {
        "predictive_bands": plot_predictive_bands(design.obs_date, design.y, replicated, groups, window=window),
        "pit_histogram": plot_pit_histogram(randomized_pit(design.y, replicated, seed)),
        "rootogram": plot_rootogram(design.y[~window], replicated[..., ~window]),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = folder / f"{name}.png"
        figure.savefig(paths[name], dpi=110, bbox_inches="tight")
    return paths


def format_check_report(report: CheckReport) -> str:
    """Text form of :func:`check_saved_fit`'s report."""
    lines = [str(report["headline"]), ""]
    diagnostics = report["diagnostics"]
    lines.append(
        "R-hat max {rhat_max}  bulk ESS min {ess_bulk_min}  tail ESS min {ess_tail_min}  divergences {divergences}"
        "  BFMI min {bfmi_min}".format(**diagnostics)
    )
    lines.append("")
    lines.append("Posterior predictive checks (Bayesian p-values; flagged below 0.025 or above 0.975):")
    flagged = report["flagged"]
    lines += [f"  ! {item}" for item in flagged] or ["  nothing flagged"]
    lines.append("")
    lines.append("plots: " + ", ".join(report["plots"].values()))
    if report.get("loo_table"):
        lines += ["", "PSIS-LOO comparison:", str(report["loo_table"])]
    return "\n".join(lines)
