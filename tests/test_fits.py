"""Saved fits carry their provenance, and loading refuses a mismatch."""

from __future__ import annotations

import datetime as dt
import json

import arviz as az
import numpy as np
import pytest
import xarray as xr

from forecast.errors import FitMismatchError
from forecast.fits import (
    ATTRIBUTE_PREFIX,
    FitProvenance,
    extend,
    group_names,
    has_group,
    load_fit,
    observed_data,
    posterior,
    posterior_predictive,
    sample_stats,
    save_fit,
)
from forecast.priors import load_priors

FRONTS = ["north", "south", "east"]


def fake_fit(seed: int = 0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    return az.from_dict(
        posterior={
            "baseline": rng.normal(size=(2, 50, len(FRONTS))),
            "effect_sd": rng.gamma(2.0, size=(2, 50)),
        },
        sample_stats={"diverging": np.zeros((2, 50), dtype=bool)},
        observed_data={"count": np.array([3, 0, 7, 12, 1, 4])},
        coords={"front": FRONTS, "time": np.arange(6)},
        dims={"baseline": ["front"], "count": ["time"]},
    )


def fake_provenance(**changes: object) -> FitProvenance:
    priors = load_priors()
    values: dict[str, object] = {
        "package_version": "0.1.0",
        "model_name": "changepoint_count",
        "model_options": {"changepoints": 2, "seasonality": "weekly", "fronts": ["north", "south"]},
        "priors": priors.to_dict(),
        "priors_hash": priors.hash(),
        "data_hash": "d" * 64,
        "as_of": "2024-05-16",
        "sampler": {
            "name": "nutpie",
            "draws": 50,
            "tune": 100,
            "chains": 2,
            "target_accept": 0.9,
            "random_seed": 20240516,
        },
        "created_from": ["events.csv", "interventions.csv"],
    }
    values.update(changes)
    return FitProvenance(**values)  # type: ignore[arg-type]


def test_save_then_load_preserves_values_and_provenance(tmp_path):
    idata = fake_fit()
    provenance = fake_provenance()
    path = save_fit(idata, tmp_path / "fits" / "fit.nc", provenance)
    assert path == tmp_path / "fits" / "fit.nc" and path.is_file()

    loaded, loaded_provenance = load_fit(path)
    assert loaded_provenance == provenance
    assert loaded_provenance.priors == load_priors().to_dict()
    xr.testing.assert_identical(posterior(loaded)["baseline"], posterior(idata)["baseline"])
    np.testing.assert_array_equal(posterior(loaded)["effect_sd"].to_numpy(), posterior(idata)["effect_sd"].to_numpy())
    np.testing.assert_array_equal(observed_data(loaded)["count"].to_numpy(), [3, 0, 7, 12, 1, 4])
    assert list(posterior(loaded)["front"].to_numpy()) == FRONTS
    assert set(group_names(loaded)) == {"posterior", "sample_stats", "observed_data"}


def test_only_integers_and_variables_that_never_vary_are_compressed_and_every_value_survives(tmp_path):
    """zlib on varying float draws cost most of a fit's saving time for 6% of its size; where it pays, it stays."""
    import h5py

    idata = fake_fit()
    idata.posterior["burst"] = xr.zeros_like(idata.posterior["baseline"])  # a burst no front has
    idata.posterior["nan_everywhere"] = xr.full_like(idata.posterior["effect_sd"], np.nan)
    path = save_fit(idata, tmp_path / "fit.nc", fake_provenance())
    with h5py.File(path) as handle:
        compressed = {
            f"{group}/{name}": handle[group][name].compression
            for group in ("posterior", "sample_stats", "observed_data")
            for name in ("baseline", "effect_sd", "burst", "nan_everywhere", "diverging", "count")
            if name in handle[group]
        }
    assert compressed == {
        "posterior/baseline": None,
        "posterior/effect_sd": None,
        "posterior/burst": "gzip",
        "posterior/nan_everywhere": "gzip",
        "sample_stats/diverging": "gzip",
        "observed_data/count": "gzip",
    }
    loaded, _ = load_fit(path)
    for group in ("posterior", "sample_stats", "observed_data"):
        xr.testing.assert_identical(loaded[group].drop_attrs(), idata[group].drop_attrs())


def test_provenance_is_in_the_root_and_posterior_attributes(tmp_path):
    provenance = fake_provenance()
    loaded, _ = load_fit(save_fit(fake_fit(), tmp_path / "fit.nc", provenance))
    expected = provenance.to_attrs()
    assert {key: loaded.attrs[key] for key in expected} == expected
    assert {key: posterior(loaded).attrs[key] for key in expected} == expected
    assert json.loads(expected[ATTRIBUTE_PREFIX + "model_options"])["changepoints"] == 2


def test_attributes_are_text_and_round_trip():
    provenance = fake_provenance(as_of=None, created_from=("a.csv",))
    attrs = provenance.to_attrs()
    assert all(isinstance(value, str) for value in attrs.values())
    assert attrs[ATTRIBUTE_PREFIX + "as_of"] == ""
    assert FitProvenance.from_attrs(attrs) == provenance
    assert FitProvenance.from_attrs(attrs).created_from == ["a.csv"]


def test_as_of_accepts_a_date_and_stores_iso_text():
    assert fake_provenance(as_of=dt.date(2024, 5, 16)).as_of == "2024-05-16"
    with pytest.raises(ValueError, match="ISO date"):
        fake_provenance(as_of="16/05/2024")


def test_load_with_matching_expectations_passes(tmp_path):
    provenance = fake_provenance()
    path = save_fit(fake_fit(), tmp_path / "fit.nc", provenance)
    expect = {
        "data_hash": provenance.data_hash,
        "priors_hash": load_priors().hash(),
        "model_options": {"fronts": ("north", "south"), "seasonality": "weekly", "changepoints": 2},
        "as_of": dt.date(2024, 5, 16),
        "package_version": "0.1.0",
        "model_name": "changepoint_count",
    }
    _, loaded_provenance = load_fit(path, expect=expect)
    assert loaded_provenance == provenance


@pytest.mark.parametrize(
    ("field", "expected", "saved_text", "expected_text"),
    [
        ("data_hash", "e" * 64, repr("d" * 64), repr("e" * 64)),
        ("priors_hash", "0" * 64, repr(load_priors().hash()), repr("0" * 64)),
        (
            "model_options",
            {"changepoints": 3, "seasonality": "weekly", "fronts": ["north", "south"]},
            '"changepoints":2',
            '"changepoints":3',
        ),
        ("as_of", "2024-05-17", "'2024-05-16'", "'2024-05-17'"),
    ],
)
def test_a_mismatch_names_the_field_and_both_values(tmp_path, field, expected, saved_text, expected_text):
    path = save_fit(fake_fit(), tmp_path / "fit.nc", fake_provenance())
    with pytest.raises(FitMismatchError) as caught:
        load_fit(path, expect={field: expected})
    message = str(caught.value)
    assert str(path) in message
    line = next(line for line in message.splitlines() if line.strip().startswith(f"- {field}: saved "))
    saved_part, expected_part = line.split(", expected ", 1)
    assert saved_text in saved_part
    assert expected_text in expected_part


def test_every_differing_field_is_listed(tmp_path):
    path = save_fit(fake_fit(), tmp_path / "fit.nc", fake_provenance())
    with pytest.raises(FitMismatchError) as caught:
        load_fit(path, expect={"data_hash": "x", "as_of": None, "model_name": "changepoint_count"})
    message = str(caught.value)
    assert "- data_hash: saved" in message
    assert "- as_of: saved '2024-05-16', expected None" in message
    assert "model_name" not in message


def test_expecting_an_unknown_field_is_a_programming_error(tmp_path):
    path = save_fit(fake_fit(), tmp_path / "fit.nc", fake_provenance())
    with pytest.raises(ValueError, match="unknown provenance fields"):
        load_fit(path, expect={"data_sha": "x"})


def test_a_netcdf_without_provenance_is_refused_with_the_missing_keys(tmp_path):
    path = tmp_path / "plain.nc"
    fake_fit().to_netcdf(str(path))
    with pytest.raises(FitMismatchError) as caught:
        load_fit(path)
    message = str(caught.value)
    assert "is not a fit written by this toolkit" in message
    for name in FitProvenance.field_names():
        assert ATTRIBUTE_PREFIX + name in message


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved fit not found"):
        load_fit(tmp_path / "absent.nc")


def test_save_does_not_change_the_callers_fit(tmp_path):
    idata = fake_fit()
    attrs_before = dict(idata.attrs)
    posterior_attrs_before = dict(idata.posterior.attrs)
    groups_before = list(idata.groups())
    values_before = idata.posterior["baseline"].to_numpy().copy()
    save_fit(idata, tmp_path / "fit.nc", fake_provenance())
    assert dict(idata.attrs) == attrs_before
    assert dict(idata.posterior.attrs) == posterior_attrs_before
    assert list(idata.groups()) == groups_before
    np.testing.assert_array_equal(idata.posterior["baseline"].to_numpy(), values_before)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "fit.nc"
    save_fit(fake_fit(seed=1), path, fake_provenance(data_hash="first"))
    save_fit(fake_fit(seed=2), path, fake_provenance(data_hash="second"))
    assert sorted(item.name for item in tmp_path.iterdir()) == ["fit.nc"]
    loaded, provenance = load_fit(path)
    assert provenance.data_hash == "second"
    np.testing.assert_array_equal(
        posterior(loaded)["baseline"].to_numpy(), posterior(fake_fit(seed=2))["baseline"].to_numpy()
    )


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "fit.nc"
    save_fit(fake_fit(seed=1), path, fake_provenance(data_hash="first"))
    broken = fake_fit()
    broken.posterior.attrs["unstorable"] = {"nested": "dicts cannot be NetCDF attributes"}
    with pytest.raises(TypeError):
        save_fit(broken, path, fake_provenance(data_hash="second"))
    assert sorted(item.name for item in tmp_path.iterdir()) == ["fit.nc"]
    assert load_fit(path)[1].data_hash == "first"


def test_accessors_and_extend():
    idata = fake_fit()
    predictions = az.from_dict(posterior_predictive={"count": np.ones((2, 50, 6))}, dims={"count": ["time"]})
    assert has_group(idata, "posterior") and not has_group(idata, "posterior_predictive")
    assert sample_stats(idata)["diverging"].shape == (2, 50)
    with pytest.raises(KeyError, match="no 'posterior_predictive' group"):
        posterior_predictive(idata)

    extended = extend(idata, predictions)
    assert has_group(extended, "posterior_predictive")
    assert not has_group(idata, "posterior_predictive")  # the caller's fit is unchanged
    assert posterior_predictive(extended)["count"].shape == (2, 50, 6)
    xr.testing.assert_identical(posterior(extended), posterior(idata))

    replacement = az.from_dict(observed_data={"count": np.zeros(6, dtype=int)}, dims={"count": ["time"]})
    assert observed_data(extend(idata, replacement))["count"].to_numpy()[0] == 3
    assert observed_data(extend(idata, replacement, replace_existing=True))["count"].to_numpy()[0] == 0


def test_extended_fit_saves_and_loads(tmp_path):
    predictions = az.from_dict(posterior_predictive={"count": np.ones((2, 50, 6))}, dims={"count": ["time"]})
    loaded, _ = load_fit(save_fit(extend(fake_fit(), predictions), tmp_path / "fit.nc", fake_provenance()))
    assert has_group(loaded, "posterior_predictive")
