"""Benchmark the escalation model's samplers: compile time, sampling time, ESS per second.

Not a test: run it by hand on a quiet machine (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/bench_models.py                       # everything, 1000 + 1000
    .venv/bin/python benchmarks/bench_models.py --sizes 4x120 --samplers nutpie,discrete-metropolis \\
        --draws 100 --tune 100 --no-cli-fit                           # a smoke run

Every (data set, sampler) configuration runs in its own Python process, killed (with its whole
process group) when it exceeds ``--timeout-per-run``; the table then says so.  The parent
process imports neither PyMC nor the package, so its own timings are not disturbed.

Samplers
--------
``pymc``                 PyMC's NUTS, ``pm.sample(nuts_sampler="pymc")``, marginalised model.
``nutpie``               ``nutpie.compile_pymc_model`` then ``nutpie.sample`` with the project's
                         ``SAMPLER_KWARGS["changepoint"]["nutpie"]``, marginalised model.
``numpyro``              ``pm.sample(nuts_sampler="numpyro")``, marginalised model (only when
                         numpyro and jax are installed).
``discrete-metropolis``  :func:`tools.discrete_changepoint.build_discrete_changepoint_model`,
                         ``pm.sample`` with PyMC's automatic compound step (NUTS for the continuous
                         parameters, Metropolis for the changepoint positions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIZES = ("shipped", "4x120", "20x260", "100x520")
SAMPLERS = ("pymc", "nutpie", "numpyro", "discrete-metropolis")
#: Seed of the simulated panels (the sampler seed is ``--seed``).
DEFAULT_DATA_SEED = 2024
#: The end-to-end ``forecast fit`` on the shipped data must take less than this.
CLI_FIT_TARGET_S = 60.0
NUMPYRO_MISSING = "numpyro: not installed (pip install -e '.[numpyro]')"
TARGET_ACCEPT = 0.95  # the project's default (SamplerSettings.target_accept; kept literal to keep imports light)
RESULT_NAME = "bench_models"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _csv(allowed: tuple[str, ...] | None):
    def parse(text: str) -> list[str]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise argparse.ArgumentTypeError("give at least one value")
        for item in items:
            if allowed is None:
                continue
            if item not in allowed and not (allowed is SIZES and _parse_size(item) is not None):
                raise argparse.ArgumentTypeError(f"unknown value {item!r}; allowed: {', '.join(allowed)}")
        return items

    return parse


def _int_csv(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of integers: {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated: {text!r}")
    return seeds


def _parse_size(text: str) -> tuple[int, int] | None:
    """``"20x260"`` -> ``(20, 260)`` (fronts, days); None for anything else."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    fronts, days = int(parts[0]), int(parts[1])
    return (fronts, days) if fronts >= 1 and days >= 30 else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_models.py",
        description="Time the escalation model's samplers (setup, sampling, ESS/s) and `forecast fit`.",
    )
    parser.add_argument(
        "--sizes",
        type=_csv(SIZES),
        default=list(SIZES),
        help="data sets: 'shipped' and/or FRONTSxDAYS simulated panels (default: {})".format(",".join(SIZES)),
    )
    parser.add_argument(
        "--samplers",
        type=_csv(SAMPLERS),
        default=list(SAMPLERS),
        help="comma list of {} (default: all)".format(", ".join(SAMPLERS)),
    )
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, default=2, help="chains (default 2); cores = min(chains, 2)")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed (default 1)")
    parser.add_argument(
        "--seeds",
        type=_int_csv,
        help="comma list of sampler seeds: every configuration runs once per seed, and the ratios "
        "compare medians over seeds (overrides --seed)",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=DEFAULT_DATA_SEED,
        help=f"seed of the simulated panels (default {DEFAULT_DATA_SEED})",
    )
    parser.add_argument(
        "--timeout-per-run",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="kill and skip a configuration (or the CLI fit) that runs longer (default 1800)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results",
        help="folder for bench_models.json, bench_models.md and logs/ (default benchmarks/results)",
    )
    parser.add_argument("--no-cli-fit", action="store_true", help="do not time `forecast fit` on the shipped data")
    parser.add_argument(
        "--cli-fit-args",
        default="",
        help="extra arguments for the timed `forecast fit`, as one string, e.g. "
        "--cli-fit-args='--draws 100' (default: none, i.e. the CLI's defaults)",
    )
    parser.add_argument(
        "--cold-pytensor-cache",
        action="store_true",
        help="give every run an empty PyTensor compile directory (measures cold compiles)",
    )
    # Internal: one configuration inside a child process.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-size", help=argparse.SUPPRESS)
    parser.add_argument("--worker-sampler", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    return parser


# --------------------------------------------------------------------------------------------
# Worker: one configuration, in its own process
# --------------------------------------------------------------------------------------------


def load_dataset(size: str, data_seed: int, scratch: Path):
    """``(panel, interventions)`` of the shipped data or of a simulated FRONTSxDAYS panel.

    Simulated panels have one changepoint per front and two interventions shared by every
    front: a decaying pulse (30% into the span) and a window (60% into the span).
    """
    from forecast import names as n
    from forecast.data.interventions import read_interventions_csv
    from forecast.jobs.data import DataRequest, load_data
    from forecast.testing.simulate import SimulatedIntervention, interventions_frame, simulate_panel

    if size == "shipped":
        loaded = load_data(DataRequest())
        return loaded.panel, loaded.interventions
    fronts, days = _parse_size(size)  # type: ignore[misc]
    window_start = int(0.6 * days)
    interventions = [
        SimulatedIntervention(
            start=int(0.3 * days), shape=n.SHAPE_PULSE, effect=0.7, half_life=5.0, kind="strike", label="shared pulse"
        ),
        SimulatedIntervention(
            start=window_start,
            end=window_start + max(5, days // 12),
            shape=n.SHAPE_WINDOW,
            effect=-0.8,
            kind="truce",
            label="shared window",
        ),
    ]
    panel, truth, _ = simulate_panel(
        fronts=fronts, days=days, n_changepoints=1, interventions=interventions, random_seed=data_seed
    )
    path = scratch / f"interventions_{size}.csv"
    interventions_frame(truth).to_csv(path, index=False)
    return panel, read_interventions_csv(path)


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _extreme(dataset, names: list[str], function, worst: str) -> tuple[float | None, str | None]:
    """Min (or max) of an ArviZ diagnostic over every element of ``names``, and where it is."""
    import numpy as np

    if not names:
        return None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        values = function(dataset[names])
    best_value, best_where = None, None
    for name in names:
        array = values[name]
        data = np.asarray(array.to_numpy(), dtype=float)
        if not np.isfinite(data).any():
            continue
        flat = np.nanargmin(data) if worst == "min" else np.nanargmax(data)
        value = float(data.flat[flat])
        if best_value is None or (value < best_value if worst == "min" else value > best_value):
            index = np.unravel_index(flat, data.shape) if data.ndim else ()
            labels = [str(array[dim].values[i]) for dim, i in zip(array.dims, index, strict=True)]
            best_value, best_where = value, f"{name}[{', '.join(labels)}]" if labels else name
    return best_value, best_where


def run_worker(args: argparse.Namespace) -> dict[str, object]:
    """Fit one configuration and return its measurements."""
    size, sampler = args.worker_size, args.worker_sampler
    cores = min(args.chains, 2)
    result: dict[str, object] = {"data": size, "sampler": sampler}
    start = time.perf_counter()
    import arviz as az
    import numpy as np
    import pymc as pm

    from forecast.models.escalation import POST_HOC_VARIABLES
    from forecast.models.model import SAMPLER_KWARGS, EscalationModel, prepare_numpyro
    from tools.discrete_changepoint import POSITION_VARIABLE, build_discrete_changepoint_model

    result["import_s"] = time.perf_counter() - start
    if sampler == "numpyro":
        prepare_numpyro(args.chains)  # one XLA CPU device per chain, as `forecast fit` asks (JAX not yet imported)

    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        panel, interventions = load_dataset(size, args.data_seed, Path(scratch))
        escalation = EscalationModel(panel, interventions)
        design = escalation.design
        result["data_s"] = time.perf_counter() - start
    result.update(
        fronts=len(design.fronts),
        days=len(design.days),
        obs=int(design.n_obs),
        centered=bool(design.centered),
    )

    start = time.perf_counter()
    if sampler == "discrete-metropolis":
        model = build_discrete_changepoint_model(design, escalation.priors.priors)
    else:
        model = escalation.model
    stored = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    stored = [name for name in stored if name not in POST_HOC_VARIABLES]
    result["build_s"] = time.perf_counter() - start

    if sampler == "nutpie":
        import nutpie

        from forecast.models.numba_digamma import register_cacheable_digamma
        from forecast.models.nutpie_compile import compile_nutpie_model

        register_cacheable_digamma()  # as EscalationModel.fit does before nutpie compiles
        start = time.perf_counter()
        compiled = compile_nutpie_model(model, var_names=stored)  # the project's compile path
        compile_s = time.perf_counter() - start
        result["compile_cache_hit"] = bool(compiled.compiled_logp_func.cache_hits)
        start = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            cores=cores,
            seed=args.seed,
            target_accept=TARGET_ACCEPT,
            progress_bar=False,
            **SAMPLER_KWARGS["changepoint"]["nutpie"],
        )
        result["sampling_s"] = time.perf_counter() - start
        result["setup_s"] = result["build_s"] + compile_s
        result["timing_note"] = (
            "setup = build + forecast.models.nutpie_compile.compile_nutpie_model "
            "(nutpie's compile with its Numba wrappers cached on disk)"
        )
    else:
        start = time.perf_counter()
        idata = pm.sample(
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            cores=cores,
            target_accept=TARGET_ACCEPT,
            random_seed=args.seed,
            nuts_sampler="numpyro" if sampler == "numpyro" else "pymc",
            var_names=stored,
            progressbar=False,
            compute_convergence_checks=False,
            model=model,
            nuts_sampler_kwargs=SAMPLER_KWARGS["changepoint"].get(sampler, {}),
        )
        call_s = time.perf_counter() - start
        sampling_s = idata.posterior.attrs.get("sampling_time")
        if sampling_s is None:
            result["sampling_s"] = call_s
            result["setup_s"] = result["build_s"]
            result["timing_note"] = "no sampling_time attribute: pm.sample counted as sampling"
        else:
            result["sampling_s"] = float(sampling_s)
            result["setup_s"] = result["build_s"] + call_s - float(sampling_s)
            result["timing_note"] = "setup = build + pm.sample wall - posterior.attrs['sampling_time']"
            if sampler == "numpyro":
                result["timing_note"] += " (XLA compile falls inside sampling_time)"
    result["total_s"] = result["setup_s"] + result["sampling_s"]

    posterior = idata.posterior
    continuous = [v.name for v in model.free_RVs if v.name != POSITION_VARIABLE]
    ess, ess_where = _extreme(posterior, continuous, lambda d: az.ess(d, method="bulk"), "min")
    rhat, rhat_where = _extreme(posterior, continuous, lambda d: az.rhat(d, method="rank"), "max")
    result.update(ess_bulk_min=ess, ess_bulk_worst=ess_where, rhat_max=rhat, rhat_worst=rhat_where)
    if POSITION_VARIABLE in posterior:
        position_ess, position_where = _extreme(
            posterior, [POSITION_VARIABLE], lambda d: az.ess(d, method="bulk"), "min"
        )
        position_rhat, _ = _extreme(posterior, [POSITION_VARIABLE], lambda d: az.rhat(d, method="rank"), "max")
        values = posterior[POSITION_VARIABLE].to_numpy()
        moved = float(np.mean(values[:, 1:] != values[:, :-1])) if values.shape[1] > 1 else None
        result.update(
            position_ess_bulk_min=position_ess,
            position_ess_worst=position_where,
            position_rhat_max=position_rhat,
            position_move_rate=moved,
        )
    stats = idata.sample_stats
    result["divergences"] = int(np.count_nonzero(stats["diverging"].to_numpy())) if "diverging" in stats else None
    result["ess_per_sampling_s"] = ess / result["sampling_s"] if ess is not None and result["sampling_s"] else None
    result["ess_per_total_s"] = ess / result["total_s"] if ess is not None and result["total_s"] else None
    if "position_ess_bulk_min" in result and result["position_ess_bulk_min"] is not None:
        result["position_ess_per_sampling_s"] = result["position_ess_bulk_min"] / result["sampling_s"]
    result["status"] = "ok"
    return {key: (_finite(value) if isinstance(value, float) else value) for key, value in result.items()}


# --------------------------------------------------------------------------------------------
# Parent: plan, run children with a timeout, report
# --------------------------------------------------------------------------------------------


def _numpyro_available() -> bool:
    return importlib.util.find_spec("numpyro") is not None and importlib.util.find_spec("jax") is not None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in ("pymc", "pytensor", "nutpie", "arviz", "numpy", "numba", "numpyro", "jax"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _run_child(
    command: list[str], log_path: Path, timeout: float, env: dict[str, str]
) -> tuple[str, int | None, float]:
    """Run ``command`` in its own process group; ``("ok" | "error" | "timeout", returncode, wall)``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The child leads its own session: kill it and everything it started (PyMC workers).
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            return "timeout", None, time.perf_counter() - start
    return ("ok" if code == 0 else "error"), code, time.perf_counter() - start


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _child_env(args: argparse.Namespace, scratch: Path, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if args.cold_pytensor_cache:
        compiledir = scratch / f"pytensor-{name}"
        compiledir.mkdir(parents=True, exist_ok=True)
        flags = env.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={compiledir}"]))
    return env


def _elapsed(since: float) -> str:
    seconds = int(time.perf_counter() - since)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def run_configurations(args: argparse.Namespace, started: float, scratch: Path) -> list[dict[str, object]]:
    plan = [(size, sampler, seed) for size in args.sizes for seed in args.seeds for sampler in args.samplers]
    runs: list[dict[str, object]] = []
    timed_out: dict[str, int] = {}  # sampler -> fronts*days of the smallest simulated size that timed out
    numpyro_ok = _numpyro_available()
    for i, (size, sampler, seed) in enumerate(plan, start=1):
        head = f"[{i}/{len(plan)}] {size:>8} {sampler:<20}" + (f" seed {seed}" if len(args.seeds) > 1 else "")
        row: dict[str, object] = {"data": size, "sampler": sampler, "seed": seed}
        parsed = _parse_size(size)
        if sampler == "numpyro" and not numpyro_ok:
            row["status"] = "not installed"
            row["note"] = NUMPYRO_MISSING
            print(f"{head} {NUMPYRO_MISSING}", flush=True)
            runs.append(row)
            continue
        if parsed and sampler in timed_out and parsed[0] * parsed[1] >= timed_out[sampler]:
            row["status"] = "skipped"
            row["note"] = f"skipped: a smaller panel already exceeded --timeout-per-run {args.timeout_per_run:g} s"
            print(f"{head} {row['note']}", flush=True)
            runs.append(row)
            continue
        print(f"{head} running... (elapsed {_elapsed(started)})", flush=True)
        name = f"{size}-{sampler}" + (f"-seed{seed}" if len(args.seeds) > 1 else "")
        result_file = scratch / f"{name}.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--worker-size",
            size,
            "--worker-sampler",
            sampler,
            "--result-file",
            str(result_file),
            "--draws",
            str(args.draws),
            "--tune",
            str(args.tune),
            "--chains",
            str(args.chains),
            "--seed",
            str(seed),
            "--data-seed",
            str(args.data_seed),
        ]
        log_path = args.out / "logs" / f"{name}.log"
        status, code, wall = _run_child(command, log_path, args.timeout_per_run, _child_env(args, scratch, name))
        if status == "ok" and result_file.exists():
            row.update(json.loads(result_file.read_text(encoding="utf-8")))
        elif status == "timeout":
            row["status"] = "timeout"
            row["note"] = f"killed after --timeout-per-run {args.timeout_per_run:g} s (skipped)"
            if parsed:
                timed_out[sampler] = min(timed_out.get(sampler, parsed[0] * parsed[1]), parsed[0] * parsed[1])
        else:
            row["status"] = "error"
            row["note"] = f"exit code {code}: {_log_tail(log_path)}"
        row["process_s"] = wall
        row["log"] = os.path.relpath(log_path, REPO)
        print(f"{head} {_progress_summary(row)} in {wall:.1f} s (elapsed {_elapsed(started)})", flush=True)
        runs.append(row)
    return runs


def _progress_summary(row: dict[str, object]) -> str:
    if row.get("status") != "ok":
        return f"{row.get('status')}: {row.get('note', '')}"
    return (
        f"ok: setup {_fmt(row.get('setup_s'))} s, sampling {_fmt(row.get('sampling_s'))} s, "
        f"min ESS {_fmt(row.get('ess_bulk_min'), 0)}, ESS/s {_fmt(row.get('ess_per_sampling_s'), 2)}, "
        f"divergences {row.get('divergences')}, R-hat {_fmt(row.get('rhat_max'), 3)}"
    )


def run_cli_fit(args: argparse.Namespace, started: float, scratch: Path) -> dict[str, object]:
    """Time ``forecast fit`` on the shipped data end to end, in a subprocess."""
    extra = shlex.split(args.cli_fit_args)
    out_dir = scratch / "cli-fit"
    command = [sys.executable, "-m", "forecast", "-q", "fit", "--out", str(out_dir), *extra]
    shown = "forecast -q fit --out TMP" + (f" {shlex.join(extra)}" if extra else "")
    print(f"[cli] {shown} running... (elapsed {_elapsed(started)})", flush=True)
    log_path = args.out / "logs" / "cli-fit.log"
    status, code, wall = _run_child(command, log_path, args.timeout_per_run, _child_env(args, scratch, "cli"))
    row: dict[str, object] = {
        "command": shown,
        "status": status,
        "exit_code": code,
        "wall_s": wall,
        "target_s": CLI_FIT_TARGET_S,
        "log": os.path.relpath(log_path, REPO),
    }
    summary = out_dir / "summary.json"
    if summary.exists():
        document = json.loads(summary.read_text(encoding="utf-8"))
        row["headline"] = document.get("headline")
        row["timings_s"] = document.get("timings_s")
    if status == "timeout":
        row["note"] = f"killed after --timeout-per-run {args.timeout_per_run:g} s"
    elif status == "error":
        row["note"] = f"exit code {code}: {_log_tail(log_path)}"
    row["passed"] = bool(status == "ok" and wall < CLI_FIT_TARGET_S)
    if extra:
        row["caveat"] = "run with non-default arguments: the < 60 s target is about the CLI's defaults"
    verdict = "PASS" if row["passed"] else "FAIL"
    print(f"[cli] {status} in {wall:.1f} s (target < {CLI_FIT_TARGET_S:g} s: {verdict})", flush=True)
    return row


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def shipped_ratios(runs: list[dict[str, object]]) -> dict[str, float | None]:
    """nutpie's min-ESS/s over pymc's and over discrete-metropolis's, on the shipped data.

    With several seeds, each sampler's ESS/s is the median over its seeds that finished, so one
    lucky or unlucky chain does not decide the ratio (see :func:`seed_ratios` for the spread).
    """
    out: dict[str, float | None] = {}
    for other in ("pymc", "discrete-metropolis"):
        for per in ("sampling", "total"):
            key = f"ess_per_{per}_s"
            mine = _median(_shipped_values(runs, "nutpie", key))
            theirs = _median(_shipped_values(runs, other, key))
            out[f"nutpie/{other} per {per} s"] = mine / theirs if mine is not None and theirs else None
    return out


def seed_ratios(runs: list[dict[str, object]]) -> dict[str, list[float]]:
    """Per seed that both finished: nutpie's min-ESS/s over pymc's, on the shipped data."""
    out: dict[str, list[float]] = {}
    for per in ("sampling", "total"):
        key = f"ess_per_{per}_s"
        mine = _shipped_by_seed(runs, "nutpie", key)
        theirs = _shipped_by_seed(runs, "pymc", key)
        out[f"nutpie/pymc per {per} s"] = [mine[seed] / theirs[seed] for seed in sorted(mine) if theirs.get(seed)]
    return out


def _shipped_by_seed(runs: list[dict[str, object]], sampler: str, key: str) -> dict[int, float]:
    return {
        int(row["seed"]): float(row[key])  # type: ignore[arg-type]
        for row in runs
        if row["data"] == "shipped"
        and row["sampler"] == sampler
        and row.get("status") == "ok"
        and row.get(key) is not None
    }


def _shipped_values(runs: list[dict[str, object]], sampler: str, key: str) -> list[float]:
    return list(_shipped_by_seed(runs, sampler, key).values())


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


COLUMNS = (
    "data",
    "obs",
    "sampler",
    "seed",
    "status",
    "setup s",
    "sampling s",
    "total s",
    "min ESS",
    "ESS/s sampling",
    "ESS/s total",
    "position ESS",
    "divergences",
    "max R-hat",
)


def table_rows(runs: list[dict[str, object]]) -> list[list[str]]:
    rows = []
    for run in runs:
        data = run["data"]
        if run.get("fronts") is not None:
            data = f"{data} ({run['fronts']}x{run['days']})" if data == "shipped" else data
        status = "ok" if run.get("status") == "ok" else str(run.get("note") or run.get("status"))
        position = "-"
        if run.get("position_ess_bulk_min") is not None:
            position = f"{_fmt(run['position_ess_bulk_min'], 0)} (R-hat {_fmt(run.get('position_rhat_max'), 2)})"
        rows.append(
            [
                str(data),
                _fmt(run.get("obs"), 0),
                str(run["sampler"]) + (" (compile from disk cache)" if run.get("compile_cache_hit") else ""),
                _fmt(run.get("seed"), 0),
                status,
                _fmt(run.get("setup_s")),
                _fmt(run.get("sampling_s")),
                _fmt(run.get("total_s")),
                _fmt(run.get("ess_bulk_min"), 0),
                _fmt(run.get("ess_per_sampling_s"), 2),
                _fmt(run.get("ess_per_total_s"), 2),
                position,
                _fmt(run.get("divergences"), 0),
                _fmt(run.get("rhat_max"), 3),
            ]
        )
    return rows


def markdown_report(document: dict[str, object]) -> str:
    settings = document["settings"]
    lines = [
        f"# Sampler benchmark ({document['finished']})",
        "",
        "```",
        str(document["command"]),
        "```",
        "",
        f"{settings['chains']} chains x ({settings['tune']} tune + {settings['draws']} draws), "
        f"seed{'s' if len(settings['seeds']) > 1 else ''} {', '.join(str(seed) for seed in settings['seeds'])}, "
        f"simulated panels seed {settings['data_seed']}; machine: {document['machine']['cpus']} CPUs, "
        f"{document['machine']['platform']}, Python {document['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in document["versions"].items() if v),
        "",
        "Compile caches: "
        + (
            "every run started with an empty PyTensor compile directory (cold)."
            if settings.get("cold_pytensor_cache")
            else "the user's PyTensor compile directory, as found (a nutpie row says when its compile was a hit)."
        ),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table_rows(document["runs"])]
    ratios = document.get("ratios") or {}
    if any(value is not None for value in ratios.values()):
        several = len(settings["seeds"]) > 1
        lines += ["", "Shipped data, min-ESS/s ratios" + (" (of the medians over seeds):" if several else ":"), ""]
        lines += [f"- {key}: {_fmt(value, 2)}" for key, value in ratios.items()]
        for key, values in (document.get("seed_ratios") or {}).items():
            if several and values:
                shown = ", ".join(_fmt(value, 2) for value in values)
                lines.append(f"- {key}, seed by seed: {shown} (median {_fmt(_median(values), 2)})")
    cli = document.get("cli_fit")
    if cli:
        verdict = "PASS" if cli.get("passed") else "FAIL"
        lines += [
            "",
            f"End-to-end `{cli['command']}` on the shipped data: {_fmt(cli.get('wall_s'))} s "
            f"(target < {CLI_FIT_TARGET_S:g} s: **{verdict}**; status {cli.get('status')})",
        ]
        if cli.get("headline"):
            lines.append(f"  - {cli['headline']}")
        if cli.get("timings_s"):
            lines.append(f"  - timings inside the fit: {cli['timings_s']}")
        for key in ("note", "caveat"):
            if cli.get(key):
                lines.append(f"  - {cli[key]}")
    notes = {str(run["sampler"]): str(run["timing_note"]) for run in document["runs"] if run.get("timing_note")}
    if notes:
        lines += ["", "Timing definitions used:", ""] + [f"- {sampler}: {note}" for sampler, note in notes.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("draws", "tune", "chains"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.seeds is None:
        args.seeds = [args.seed]
    if args.chains < 2:
        print("note: R-hat needs at least 2 chains; it will be reported as '-'", flush=True)

    if args.worker:
        result = run_worker(args)
        args.result_file.write_text(json.dumps(result, indent=2), encoding="utf-8")
        return 0

    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    start_stamp = dt.datetime.now().isoformat(timespec="seconds")
    print(command, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        scratch = Path(tmp)
        runs = run_configurations(args, started, scratch)
        cli_fit = None if args.no_cli_fit else run_cli_fit(args, started, scratch)
    document = {
        "command": command,
        "started": start_stamp,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - started,
        "settings": {
            "sizes": args.sizes,
            "samplers": args.samplers,
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
            "cores": min(args.chains, 2),
            "target_accept": TARGET_ACCEPT,
            "seeds": args.seeds,
            "data_seed": args.data_seed,
            "timeout_per_run_s": args.timeout_per_run,
            "cold_pytensor_cache": args.cold_pytensor_cache,
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": _versions(),
        "runs": runs,
        "ratios": shipped_ratios(runs),
        "seed_ratios": seed_ratios(runs),
        "cli_fit": cli_fit,
    }
    json_path = args.out / f"{RESULT_NAME}.json"
    md_path = args.out / f"{RESULT_NAME}.md"
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    report = markdown_report(document)
    md_path.write_text(report, encoding="utf-8")

    print()
    print(report)
    if "shipped" in args.sizes:
        print("Shipped-data ratios (nutpie min-ESS/s divided by the other's):")
        for key, value in document["ratios"].items():
            print(f"  {key}: {_fmt(value, 2)}")
        for key, values in document["seed_ratios"].items():
            if len(args.seeds) > 1 and values:
                print(f"  {key}, seed by seed: {', '.join(_fmt(value, 2) for value in values)}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
