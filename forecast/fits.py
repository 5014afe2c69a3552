"""Saved fits with their provenance, and the only module that touches ``InferenceData``.

A fit is saved to NetCDF with a :class:`FitProvenance` in its attributes (the file's root
attributes and the posterior group's), and :func:`load_fit` refuses a fit whose provenance
differs from what the caller expects.  Every ArviZ-0.x specific call (``to_netcdf``,
``from_netcdf``, group access, attributes, ``extend``) lives here, so that a move to ArviZ 1's
``DataTree`` changes this one file; other modules use the small accessors at the bottom.

Provenance attributes are stored under the prefix ``forecast_`` (``forecast_data_hash``, ...)
so that they never collide with ArviZ's own attributes (``created_at``, ``arviz_version``).
Text fields are stored as they are; dicts and lists as canonical JSON (sorted keys); an
``as_of`` of None as the empty string.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import arviz as az
import numpy as np
import xarray as xr

from forecast.errors import FitFileError, FitMismatchError

__all__ = [
    "ATTRIBUTE_PREFIX",
    "FitProvenance",
    "check_provenance",
    "extend",
    "group_names",
    "has_group",
    "load_fit",
    "log_likelihood",
    "observed_data",
    "posterior",
    "posterior_predictive",
    "sample_stats",
    "save_fit",
    "with_observations",
]

ATTRIBUTE_PREFIX = "forecast_"

# Fields stored as JSON rather than as plain text.
_JSON_FIELDS = ("model_options", "priors", "sampler", "created_from")
_SAMPLER_KEYS = ("name", "draws", "tune", "chains", "target_accept", "random_seed")


def _json_default(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in a fit's provenance: {value!r}")


def _as_json_value(value: object) -> Any:
    """Return ``value`` as it reads back from JSON (tuples become lists, dates ISO text)."""
    return json.loads(json.dumps(value, default=_json_default, allow_nan=False))


def _canonical_json(value: object) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, sort_keys=True, separators=(",", ":"))


def _normalise_field(name: str, value: object) -> Any:
    if name == "as_of":
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError as error:
                raise FitFileError(f"as_of must be an ISO date (YYYY-MM-DD) or None, got {value!r}") from error
        raise FitFileError(f"as_of must be an ISO date (YYYY-MM-DD) or None, got {value!r}")
    if name in _JSON_FIELDS:
        return _as_json_value(value)
    if not isinstance(value, str):
        raise FitFileError(f"{name} must be text, got {value!r}")
    return value


@dataclass(frozen=True)
class FitProvenance:
    """Where a fit came from: enough to refuse using it with other data, priors or options.

    Values are normalised on creation to what they read back as from a file (tuples become
    lists, dates ISO text), so a provenance equals its own reloaded copy.

    Parameters
    ----------
    package_version : str
        Version of this toolkit that made the fit.
    model_name : str
        Name of the model that was fitted.
    model_options : dict
        The model's options, JSON-safe.
    priors : dict
        The priors used, in ``pymc_extras.prior.Prior`` dict format (``PriorSet.to_dict()``).
    priors_hash : str
        ``PriorSet.hash()`` of those priors.
    data_hash : str
        Hash of the input data the model saw.
    as_of : str or None
        The ``as_of`` date of the fit, ISO ``YYYY-MM-DD``; a ``datetime.date`` is accepted.
    sampler : dict
        ``name``, ``draws``, ``tune``, ``chains``, ``target_accept`` and ``random_seed``.
    created_from : list of str
        Names of the input files.
    """

    package_version: str
    model_name: str
    model_options: dict[str, Any]
    priors: dict[str, Any]
    priors_hash: str
    data_hash: str
    as_of: str | None
    sampler: dict[str, Any]
    created_from: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, _normalise_field(item.name, getattr(self, item.name)))
        for name in ("model_options", "priors", "sampler"):
            if not isinstance(getattr(self, name), dict):
                raise FitFileError(f"{name} must be a dict, got {getattr(self, name)!r}")
        missing_sampler_keys = [key for key in _SAMPLER_KEYS if key not in self.sampler]
        if missing_sampler_keys:
            raise FitFileError(f"sampler lacks {missing_sampler_keys}; it needs {list(_SAMPLER_KEYS)}")
        if not isinstance(self.created_from, list) or not all(isinstance(name, str) for name in self.created_from):
            raise FitFileError(f"created_from must be a list of file names, got {self.created_from!r}")

    @staticmethod
    def field_names() -> tuple[str, ...]:
        """Return the names of the provenance fields, in declaration order."""
        return tuple(item.name for item in fields(FitProvenance))

    def to_attrs(self) -> dict[str, str]:
        """Return the provenance as NetCDF attributes: prefixed names, text values.

        Returns
        -------
        dict of str to str
            ``forecast_<field>`` -> text (dicts and lists as canonical JSON, None as "").
        """
        attrs = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name in _JSON_FIELDS:
                text = _canonical_json(value)
            elif value is None:
                text = ""
            else:
                text = value
            attrs[ATTRIBUTE_PREFIX + name] = text
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, object], *, source: str = "<memory>") -> FitProvenance:
        """Read a provenance back from NetCDF attributes written by :meth:`to_attrs`.

        Parameters
        ----------
        attrs : mapping
            The attributes; keys other than ``forecast_<field>`` are ignored.
        source : str
            The file the attributes come from, for messages.

        Raises
        ------
        FitMismatchError
            When keys are missing (the file is not a fit written by this toolkit) or a value
            cannot be read.
        """
        keys = [ATTRIBUTE_PREFIX + name for name in cls.field_names()]
        missing = [key for key in keys if key not in attrs]
        if missing:
            raise FitMismatchError(
                f"{source} is not a fit written by this toolkit: its attributes lack {', '.join(missing)}"
            )
        values: dict[str, Any] = {}
        for name in cls.field_names():
            raw = attrs[ATTRIBUTE_PREFIX + name]
            if hasattr(raw, "item") and not isinstance(raw, str):
                raw = raw.item()  # NetCDF readers may return numpy scalars
            if name in _JSON_FIELDS:
                try:
                    values[name] = json.loads(str(raw))
                except json.JSONDecodeError as error:
                    raise FitMismatchError(
                        f"{source}: attribute {ATTRIBUTE_PREFIX + name} is not valid JSON: {error}"
                    ) from error
            else:
                values[name] = None if name == "as_of" and raw == "" else str(raw)
        try:
            return cls(**values)
        except ValueError as error:
            raise FitMismatchError(f"{source}: unreadable provenance: {error}") from error


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


def _with_provenance(idata: az.InferenceData, provenance: FitProvenance) -> az.InferenceData:
    """Return a new InferenceData sharing the arrays of ``idata``, with provenance attributes."""
    attrs = provenance.to_attrs()
    groups = {}
    for name in idata.groups():
        dataset = idata[name].copy(deep=False)  # new attrs dict; the arrays are shared, not copied
        if name == "posterior":
            dataset.attrs = {**dataset.attrs, **attrs}
        groups[name] = dataset
    if "posterior" not in groups:
        raise ValueError("a fit to save must have a posterior group")
    return az.InferenceData(attrs={**idata.attrs, **attrs}, **groups)


def save_fit(idata: az.InferenceData, path: str | Path, provenance: FitProvenance) -> Path:
    """Save a fit to NetCDF with its provenance, atomically.

    The file is written to a temporary file in the target folder and then moved over
    ``path``, so a reader never sees a half-written fit.  ``idata`` is not changed.

    Parameters
    ----------
    idata : InferenceData
        The fit; it must have a posterior group.
    path : str or Path
        The NetCDF file to write; its folder is created when missing.
    provenance : FitProvenance
        Stored in the file's root attributes and the posterior group's attributes.

    Returns
    -------
    Path
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    to_write = _with_provenance(idata, provenance)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        _write_netcdf(to_write, temporary_name)
        os.replace(temporary_name, target)
    except BaseException:
        Path(temporary_name).unlink(missing_ok=True)
        raise
    return target


def _write_netcdf(idata: az.InferenceData, path: str) -> None:
    """Write ``idata`` as ArviZ's ``to_netcdf`` lays it out, compressing only what compresses cheaply.

    ArviZ compresses every numeric variable with zlib.  Posterior draws are varying floats that
    zlib barely shrinks, and compressing them took most of the time to save a fit (a scratch
    comparison on one 45-series ACLED fit: 4.2 s against 0.8-1.0 s, for a file of 138.2 MB
    against 146.7 MB).  Integers (counts, replicated data) and
    variables that never vary (a burst that no front has) still get zlib, where it shrinks them
    many times over.  The values written are the same either way; ``az.from_netcdf`` reads both.
    """
    mode: Literal["w", "a"] = "w"
    if idata.attrs:
        xr.Dataset(attrs=idata.attrs).to_netcdf(path, mode=mode, engine="h5netcdf", group="/")
        mode = "a"
    for group in idata.groups():
        data = idata[group]
        encoding = {name: {"zlib": True} for name, values in data.variables.items() if _compresses(values)}
        data.to_netcdf(path, mode=mode, group=group, engine="h5netcdf", encoding=encoding)
        mode = "a"


def _compresses(values: xr.Variable) -> bool:
    """Whether zlib is worth its time on ``values``: integers, booleans, or an array that never varies."""
    if values.ndim == 0 or values.dtype.kind not in "biuf":
        return False
    if values.dtype.kind in "biu":
        return True
    data = np.asarray(values.values)
    first = data.flat[0]
    return bool(np.all((data == first) | (np.isnan(data) & np.isnan(first))))


def _differences(saved: FitProvenance, expect: Mapping[str, object]) -> list[str]:
    known = FitProvenance.field_names()
    unknown = [name for name in expect if name not in known]
    if unknown:
        raise ValueError(f"cannot expect unknown provenance fields {unknown}; the fields are {list(known)}")
    differences = []
    for name, expected_value in expect.items():
        expected = _normalise_field(name, expected_value)
        actual = getattr(saved, name)
        if expected != actual:
            if name in _JSON_FIELDS:
                differences.append(f"{name}: saved {_canonical_json(actual)}, expected {_canonical_json(expected)}")
            else:
                differences.append(f"{name}: saved {actual!r}, expected {expected!r}")
    return differences


def load_fit(path: str | Path, *, expect: Mapping[str, object] | None = None) -> tuple[az.InferenceData, FitProvenance]:
    """Load a fit saved by :func:`save_fit` and check its provenance.

    The data are read into memory and the file is closed.

    Parameters
    ----------
    path : str or Path
        The NetCDF file.
    expect : mapping, optional
        Provenance field name -> the value the caller needs (any subset of
        :meth:`FitProvenance.field_names`, e.g. ``{"data_hash": ..., "priors_hash": ...,
        "model_options": {...}, "as_of": "2024-05-16"}``).

    Returns
    -------
    tuple of (InferenceData, FitProvenance)

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    FitMismatchError
        When the file carries no provenance, or any expected field differs; the message lists
        every differing field with its saved and expected value.
    ValueError
        When ``expect`` names a field that provenance does not have.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"saved fit not found: {source}")
    with az.rc_context({"data.load": "eager"}):
        idata = az.from_netcdf(str(source), engine="h5netcdf")
    prefixed = ATTRIBUTE_PREFIX
    attrs: dict[str, object] = {}
    if "posterior" in idata.groups():
        attrs.update({key: value for key, value in idata.posterior.attrs.items() if key.startswith(prefixed)})
    attrs.update({key: value for key, value in idata.attrs.items() if key.startswith(prefixed)})
    provenance = FitProvenance.from_attrs(attrs, source=str(source))
    if expect:
        check_provenance(provenance, expect, source=str(source))
    return idata, provenance


def check_provenance(provenance: FitProvenance, expect: Mapping[str, object], *, source: str) -> None:
    """Refuse a fit whose provenance differs from ``expect`` (as ``load_fit(..., expect=...)`` does).

    For a caller that needs the loaded provenance to know what to expect, so that the file is
    read once.

    Raises
    ------
    FitMismatchError
        Listing every differing field with its saved and expected value; ``source`` names the fit.
    ValueError
        When ``expect`` names a field that provenance does not have.
    """
    differences = _differences(provenance, expect)
    if differences:
        listed = "\n".join(f"  - {difference}" for difference in differences)
        raise FitMismatchError(f"{source} does not match what it is used with:\n{listed}")


# --------------------------------------------------------------------------------------------
# Accessors: the rest of the package reads fits only through these
# --------------------------------------------------------------------------------------------


def group_names(idata: az.InferenceData) -> tuple[str, ...]:
    """Return the names of the groups in a fit."""
    return tuple(idata.groups())


def has_group(idata: az.InferenceData, name: str) -> bool:
    """Return whether the fit has the group ``name`` (e.g. ``"posterior_predictive"``)."""
    return name in idata.groups()


def _group(idata: az.InferenceData, name: str) -> xr.Dataset:
    if not has_group(idata, name):
        raise KeyError(f"the fit has no {name!r} group; it has {list(idata.groups())}")
    return idata[name]


def posterior(idata: az.InferenceData) -> xr.Dataset:
    """Return the posterior draws (dims ``chain``, ``draw``, ...)."""
    return _group(idata, "posterior")


def posterior_predictive(idata: az.InferenceData) -> xr.Dataset:
    """Return the posterior predictive draws."""
    return _group(idata, "posterior_predictive")


def observed_data(idata: az.InferenceData) -> xr.Dataset:
    """Return the observed data the fit was conditioned on."""
    return _group(idata, "observed_data")


def sample_stats(idata: az.InferenceData) -> xr.Dataset:
    """Return the sampler statistics (divergences, tree depth, ...)."""
    return _group(idata, "sample_stats")


def extend(idata: az.InferenceData, other: az.InferenceData, *, replace_existing: bool = False) -> az.InferenceData:
    """Return a new fit with the groups of ``idata`` and those of ``other``.

    Neither argument is changed; the arrays are shared, not copied.

    Parameters
    ----------
    idata, other : InferenceData
        The fit and the groups to add (e.g. a posterior predictive).
    replace_existing : bool, default False
        When a group is in both, keep the one of ``other`` (True) or of ``idata`` (False).

    Returns
    -------
    InferenceData
    """
    combined = az.InferenceData(attrs=dict(idata.attrs), **{name: idata[name] for name in idata.groups()})
    combined.extend(other, join="right" if replace_existing else "left")
    return combined


def log_likelihood(idata: az.InferenceData) -> xr.Dataset:
    """The ``log_likelihood`` group (pointwise log-likelihood per draw)."""
    return _group(idata, "log_likelihood")


def with_observations(
    idata: az.InferenceData,
    *,
    name: str,
    observed: np.ndarray,
    replicated: np.ndarray,
    pointwise_loglik: np.ndarray,
    dim: str,
) -> az.InferenceData:
    """A new fit with ``observed_data``, ``posterior_predictive`` and ``log_likelihood`` groups.

    Parameters
    ----------
    name : str
        The observed variable's name in the three groups.
    observed : (obs,) array
    replicated, pointwise_loglik : (chain, draw, obs) arrays
    dim : str
        Name of the observation dimension.
    """
    coords = {dim: np.arange(len(observed))}
    groups = az.from_dict(
        posterior_predictive={name: replicated},
        log_likelihood={name: pointwise_loglik},
        observed_data={name: observed},
        coords=coords,
        dims={name: [dim]},
    )
    return extend(idata, groups, replace_existing=True)
