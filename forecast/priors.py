"""Priors as data: the allowed prior names, their code defaults, and prior files.

A prior file is YAML in the dict format of :class:`pymc_extras.prior.Prior`, one entry per
allowed name, nested for hierarchies::

    baseline:
      dist: Normal
      kwargs:
        mu: {dist: Normal, kwargs: {mu: 0.0, sigma: 2.0}}
        sigma: {dist: HalfNormal, kwargs: {sigma: 1.5}}
      dims: [front]

Every quantity is on the log daily rate scale unless its name says otherwise.  A prior file
names no Python class, import path or code: it is read with ``yaml.safe_load`` rules, ``dist``
must be the bare name of a PyMC distribution, and only the keys of the dict format are
accepted.  Unknown and missing names are rejected with a message that lists the allowed ones,
and each prior's dims must be the dims the model gives that name.

The hash of a :class:`PriorSet` is the sha256 of the canonical JSON of :meth:`PriorSet.to_dict`
(numbers written as floats, keys sorted), so ``mu: 0`` and ``mu: 0.0`` hash alike.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm
import yaml
from pymc_extras.prior import Prior

from forecast.data.yamlio import read_yaml_file
from forecast.errors import PriorConfigError, Problems
from forecast.prior_defaults import (
    DEFAULT_DYNAMIC_PRIORS,
    DEFAULT_PRIORS,
    EXPECTED_DIMS,
    KIND_DIM,
    MODEL_DEFAULT_PRIORS,
    MODEL_PRIOR_DIMS,
    PRIOR_NAMES,
    SEASON_DIM,
)

__all__ = [
    "DEFAULT_DYNAMIC_PRIORS",
    "DEFAULT_PRIORS",
    "DEFAULTS_SOURCE",
    "EXPECTED_DIMS",
    "KIND_DIM",
    "MODEL_PRIOR_DIMS",
    "PRIOR_NAMES",
    "SEASON_DIM",
    "PriorSet",
    "load_priors",
    "write_priors",
]


DEFAULTS_SOURCE = "<defaults>"


# The keys of pymc_extras' Prior dict format that a prior file may use.
_PRIOR_KEYS = ("dist", "kwargs", "dims", "centered", "transform")
_BARE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _PriorProblem(Exception):
    """One problem in one prior, raised while checking and gathered in :class:`~forecast.errors.Problems`.

    ``where`` locates the problem inside the prior (``"kwargs.mu"``; empty for the prior itself).
    """

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)

    def describe(self, name: str) -> str:
        at = f", at {self.where}" if self.where else ""
        return f"prior '{name}'{at}: {self.reason}"


def _inside(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --------------------------------------------------------------------------------------------
# Checking and canonicalising the dict format
# --------------------------------------------------------------------------------------------


def _check_distribution_name(dist: object, where: str) -> str:
    if not isinstance(dist, str):
        raise _PriorProblem(where, f"'dist' must be the name of a PyMC distribution, got {dist!r}")
    if not _BARE_NAME.match(dist):
        raise _PriorProblem(
            where,
            f"'dist' must be the bare name of a PyMC distribution such as 'Normal', got "
            f"{dist!r}; prior files name no Python class, import path or code",
        )
    candidate = getattr(pm, dist, None)
    if not (isinstance(candidate, type) and issubclass(candidate, pm.Distribution)):
        raise _PriorProblem(where, f"{dist!r} is not a PyMC distribution")
    return dist


def _canonical_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value.strip()):
            hint = " (YAML reads a number like 1e-3 as text; write 1.0e-3)"
        raise _PriorProblem(where, f"expected a number or a nested prior, got {value!r}{hint}")
    number = float(value)
    if not math.isfinite(number):
        raise _PriorProblem(where, f"expected a finite number, got {value!r}")
    return number


def _canonical_parameter(value: object, where: str) -> object:
    if isinstance(value, Mapping):
        return _canonical_prior_dict(value, where)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_canonical_parameter(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return _canonical_number(value, where)


def _canonical_dims(dims: object, where: str) -> list[str]:
    if dims is None:
        return []
    if isinstance(dims, str):
        dims = [dims]
    if not isinstance(dims, list | tuple) or not all(isinstance(dim, str) for dim in dims):
        raise _PriorProblem(where, f"'dims' must be a list of dimension names, got {dims!r}")
    return list(dims)


def _canonical_prior_dict(data: object, where: str) -> dict[str, Any]:
    """Check one prior in the dict format and return its canonical, JSON-safe form.

    The canonical form writes every number as a float, every sequence as a list, leaves out
    empty dims and ``centered: true`` (the default), and keeps only the keys of the format.
    """
    if not isinstance(data, Mapping):
        raise _PriorProblem(
            where, f"expected a prior such as {{dist: Normal, kwargs: {{mu: 0, sigma: 1}}}}, got {data!r}"
        )
    unknown_keys = [key for key in data if key not in _PRIOR_KEYS]
    if unknown_keys:
        raise _PriorProblem(
            where,
            f"unknown keys {sorted(map(str, unknown_keys))}; a prior may only have the keys "
            f"{list(_PRIOR_KEYS)} (prior files name no Python class, module or code)",
        )
    if "dist" not in data:
        raise _PriorProblem(where, "missing 'dist', the name of a PyMC distribution")
    canonical: dict[str, Any] = {"dist": _check_distribution_name(data["dist"], where)}

    kwargs = data.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise _PriorProblem(where, f"'kwargs' must be a mapping of parameter names to values, got {kwargs!r}")
    if kwargs:
        canonical["kwargs"] = {
            str(parameter): _canonical_parameter(value, _inside(where, f"kwargs.{parameter}"))
            for parameter, value in kwargs.items()
        }

    centered = data.get("centered", True)
    if not isinstance(centered, bool):
        raise _PriorProblem(where, f"'centered' must be true or false, got {centered!r}")
    if not centered:
        canonical["centered"] = False

    dims = _canonical_dims(data.get("dims"), where)
    if dims:
        canonical["dims"] = dims

    transform = data.get("transform")
    if transform is not None:
        if not isinstance(transform, str) or not _BARE_NAME.match(transform):
            raise _PriorProblem(where, f"'transform' must be the bare name of a transform, got {transform!r}")
        canonical["transform"] = transform
    return canonical


def _prior_from_canonical(data: dict[str, Any]) -> Prior:
    try:
        return Prior.from_dict(data)
    except Exception as error:  # pymc_extras raises ValueError, pydantic and its own errors
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _PriorProblem("", f"cannot build the prior: {reason}") from error


def _check_dims(name: str, prior: Prior, model: str = "changepoint") -> None:
    given = tuple(prior.dims or ())
    expected = MODEL_PRIOR_DIMS[model][name]
    if given != expected:
        raise _PriorProblem("dims", f"must be {list(expected)}, got {list(given)}")


def _check_names(source: str, names: Iterable[str], model: str = "changepoint") -> None:
    expected = MODEL_PRIOR_DIMS[model]
    given = list(names)
    unknown = [name for name in given if name not in expected]
    missing = [name for name in expected if name not in given]
    problems = []
    if unknown:
        problems.append(f"unknown prior names: {', '.join(map(str, unknown))}")
    if missing:
        problems.append(f"missing prior names: {', '.join(missing)}")
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise PriorConfigError(f"{source}:\n{listed}\nthe allowed names are: {', '.join(expected)}")


# --------------------------------------------------------------------------------------------
# The set of priors a model uses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorSet:
    """The complete set of priors one model uses, with where it came from.

    Parameters
    ----------
    priors : dict of str to Prior
        One prior per name in :data:`PRIOR_NAMES`, each with the dims in :data:`EXPECTED_DIMS`.
    source : str
        ``"<defaults>"`` or the path of the prior file read.  Sets derived with
        :meth:`with_centered` keep the source they were derived from.

    Raises
    ------
    PriorConfigError
        When a name is unknown or missing, a value is not a Prior, or dims are wrong.
    """

    priors: dict[str, Prior]
    source: str = DEFAULTS_SOURCE
    model: str = "changepoint"

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRIOR_DIMS:
            raise PriorConfigError(f"unknown model {self.model!r}; allowed: {', '.join(MODEL_PRIOR_DIMS)}")
        _check_names(self.source, self.priors, self.model)
        problems = Problems()
        for name in self.names:
            prior = self.priors[name]
            try:
                if not isinstance(prior, Prior):
                    raise _PriorProblem("", f"expected a pymc_extras Prior, got {type(prior).__name__}")
                _canonical_prior_dict(prior.to_dict(), "")
                _check_dims(name, prior, self.model)
            except _PriorProblem as problem:
                problems.add("", problem.describe(name))
        problems.raise_if_any(self.source, "prior", PriorConfigError)
        # Own a copy in the documented order, so that later changes to the caller's dict
        # cannot change this set.
        object.__setattr__(self, "priors", {name: self.priors[name] for name in self.names})

    @property
    def names(self) -> tuple[str, ...]:
        """The prior names of this set's model, in their documented order."""
        return tuple(MODEL_PRIOR_DIMS[self.model])

    def __getitem__(self, name: str) -> Prior:
        """Return the prior called ``name``."""
        try:
            return self.priors[name]
        except KeyError:
            raise KeyError(f"no prior named {name!r}; the allowed names are: {', '.join(self.names)}") from None

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the priors in Prior's dict format, canonical and JSON-safe.

        Returns
        -------
        dict
            Name -> prior dict (``dist``, ``kwargs``, optional ``dims`` and ``centered``),
            in the order of :data:`PRIOR_NAMES`, with every number as a float.
        """
        return {name: _canonical_prior_dict(self.priors[name].to_dict(), "") for name in self.names}

    def hash(self) -> str:
        """Return the sha256 hex digest of the canonical JSON of :meth:`to_dict`."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def hierarchical_names(self) -> tuple[str, ...]:
        """Return the names of the priors that have at least one prior as a parameter."""
        return tuple(
            name
            for name in self.names
            if any(isinstance(value, Prior) for value in self.priors[name].parameters.values())
        )

    def with_centered(self, names: str | Iterable[str], centered: bool) -> PriorSet:
        """Return a copy in which the named hierarchical priors are (non-)centred.

        ``pymc_extras`` stores the choice in ``Prior.centered`` and writes ``centered: false``
        in the dict format only for non-centred priors.

        Parameters
        ----------
        names : str or iterable of str
            Names of hierarchical priors (see :meth:`hierarchical_names`).
        centered : bool
            True for the centred parameterisation, False for the non-centred one.

        Returns
        -------
        PriorSet
            A new set; this one is unchanged.

        Raises
        ------
        PriorConfigError
            When a name is not a hierarchical prior of this set, or its distribution has no
            non-centred form in pymc_extras.
        """
        chosen = [names] if isinstance(names, str) else list(names)
        hierarchical = self.hierarchical_names()
        not_hierarchical = [name for name in chosen if name not in hierarchical]
        if not_hierarchical:
            raise PriorConfigError(
                f"cannot set 'centered' on {', '.join(map(str, not_hierarchical))}: only hierarchical priors "
                f"have a (non-)centred form; the hierarchical priors are: {', '.join(hierarchical)}"
            )
        priors = dict(self.priors)
        for name in chosen:
            data = self.priors[name].to_dict()
            data["centered"] = bool(centered)
            try:
                priors[name] = Prior.from_dict(data)
            except Exception as error:
                raise PriorConfigError(
                    f"{self.source}: prior '{name}': cannot set centered={centered}: {error}"
                ) from error
        return PriorSet(priors=priors, source=self.source, model=self.model)


# --------------------------------------------------------------------------------------------
# Prior files
# --------------------------------------------------------------------------------------------


def load_priors(path: str | Path | None = None, *, model: str = "changepoint") -> PriorSet:
    """Read a prior file, or return the code defaults.

    Parameters
    ----------
    path : str, Path or None
        A YAML prior file (see the module docstring).  None returns the model's code defaults
        (:data:`DEFAULT_PRIORS`, :data:`DEFAULT_DYNAMIC_PRIORS`).
    model : {"changepoint", "dynamic"}
        Whose prior names the file must hold.

    Returns
    -------
    PriorSet
        The priors, with ``source`` set to ``"<defaults>"`` or ``str(path)``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    PriorConfigError
        When the file is not safe YAML, names an unknown prior or misses one, or a prior
        cannot be read; the message names the file, each prior concerned and the reason.
    """
    if model not in MODEL_DEFAULT_PRIORS:
        raise PriorConfigError(f"unknown model {model!r}; allowed: {', '.join(MODEL_DEFAULT_PRIORS)}")
    if path is None:
        return PriorSet(priors=copy.deepcopy(MODEL_DEFAULT_PRIORS[model]), source=DEFAULTS_SOURCE, model=model)
    source = str(path)
    raw = read_yaml_file(path, "prior file", PriorConfigError)
    return priors_from_dict(raw, source=source, model=model)


def priors_from_dict(raw: object, *, source: str = "<memory>", model: str = "changepoint") -> PriorSet:
    """Build a :class:`PriorSet` from the dict format (as in a prior file or a saved fit).

    Raises
    ------
    PriorConfigError
        As :func:`load_priors`, naming ``source``.
    """
    if not isinstance(raw, Mapping):
        raise PriorConfigError(
            f"{source}: expected a mapping from prior name to prior, got {type(raw).__name__}; "
            f"the allowed names are: {', '.join(MODEL_PRIOR_DIMS[model])}"
        )
    _check_names(source, raw, model)

    priors: dict[str, Prior] = {}
    problems = Problems()
    for name in MODEL_PRIOR_DIMS[model]:
        try:
            prior = _prior_from_canonical(_canonical_prior_dict(raw[name], ""))
            _check_dims(name, prior, model)
        except _PriorProblem as problem:
            problems.add("", problem.describe(name))
            continue
        priors[name] = prior
    problems.raise_if_any(source, "prior", PriorConfigError)
    return PriorSet(priors=priors, source=source, model=model)


def write_priors(prior_set: PriorSet, path: str | Path, *, header: str | None = None) -> Path:
    """Write a prior file that :func:`load_priors` reads back to an equal set.

    Parameters
    ----------
    prior_set : PriorSet
        The priors to write, in canonical form and the order of :data:`PRIOR_NAMES`.
    path : str or Path
        The file to write; its folder is created when missing.
    header : str, optional
        Text written first as YAML comments, one ``#`` per line.

    Returns
    -------
    Path
        The path written.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    blocks = []
    if header:
        blocks.append("\n".join(f"# {line}".rstrip() for line in header.strip("\n").splitlines()) + "\n")
    for name, data in prior_set.to_dict().items():
        blocks.append(yaml.safe_dump({name: data}, sort_keys=False, default_flow_style=None, width=120))
    file.write_text("\n".join(blocks), encoding="utf-8")
    return file
