"""Priors are data: the shipped files, the code defaults, and the checks on prior files."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pymc as pm
import pytest
import yaml

from forecast.errors import PriorConfigError
from forecast.priors import (
    DEFAULT_DYNAMIC_PRIORS,
    DEFAULT_PRIORS,
    DEFAULTS_SOURCE,
    EXPECTED_DIMS,
    MODEL_PRIOR_DIMS,
    PRIOR_NAMES,
    PriorSet,
    load_priors,
    write_priors,
)

PRIORS_FOLDER = Path(__file__).resolve().parents[1] / "priors"
SHIPPED_FILES = sorted(PRIORS_FOLDER.glob("*.yaml"))

MODEL_COORDS = {
    "front": ["north", "south", "east"],
    "changepoint": [0],
    "kind": ["strike"],
    "season": list(range(7)),
}


def default_dict() -> dict:
    return load_priors().to_dict()


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_prior_names_are_the_documented_ones():
    assert PRIOR_NAMES == (
        "baseline",
        "jump",
        "effect_mean",
        "effect_sd",
        "half_life_log_mean",
        "half_life_log_sd",
        "dispersion",
        "seasonality",
        "self_excitation",
        "trend",
    )
    assert set(DEFAULT_PRIORS) == set(PRIOR_NAMES)


def test_shipped_files_include_default_and_wide():
    assert {path.name for path in SHIPPED_FILES} >= {"default.yaml", "wide.yaml"}


def test_default_file_equals_code_defaults():
    from_file = load_priors(PRIORS_FOLDER / "default.yaml")
    assert from_file.to_dict() == PriorSet(DEFAULT_PRIORS).to_dict()
    assert from_file.hash() == PriorSet(DEFAULT_PRIORS).hash()


def test_dynamic_file_equals_code_defaults():
    from_file = load_priors(PRIORS_FOLDER / "dynamic.yaml", model="dynamic")
    assert from_file.to_dict() == PriorSet(DEFAULT_DYNAMIC_PRIORS, model="dynamic").to_dict()
    assert from_file.names == tuple(MODEL_PRIOR_DIMS["dynamic"])


def test_a_prior_file_of_the_other_model_is_refused_with_the_allowed_names():
    with pytest.raises(
        PriorConfigError, match="(?s)unknown prior names: baseline, jump.*allowed names are: initial_level"
    ):
        load_priors(PRIORS_FOLDER / "default.yaml", model="dynamic")


def test_loading_the_defaults_gives_the_hash_of_default_priors():
    defaults = load_priors()
    assert defaults.source == DEFAULTS_SOURCE
    assert defaults.hash() == PriorSet(DEFAULT_PRIORS).hash()
    assert len(defaults.hash()) == 64


def test_default_values_are_the_documented_ones():
    defaults = load_priors()
    assert defaults["half_life_log_mean"]["mu"] == pytest.approx(math.log(7.0), abs=1e-15)
    assert defaults["dispersion"]["alpha"] == 2.0 and defaults["dispersion"]["beta"] == 0.5
    assert defaults["baseline"]["sigma"]["sigma"] == 1.5


def test_wide_file_doubles_every_scale_and_keeps_locations():
    default = default_dict()
    wide = load_priors(PRIORS_FOLDER / "wide.yaml").to_dict()
    assert wide["baseline"]["kwargs"]["mu"]["kwargs"] == {"mu": 0.0, "sigma": 4.0}
    assert wide["baseline"]["kwargs"]["sigma"]["kwargs"] == {"sigma": 3.0}
    assert wide["dispersion"]["kwargs"] == {"alpha": 2.0, "beta": 0.25}
    assert wide["seasonality"]["kwargs"] == {"sigma": 0.6}
    assert wide["trend"]["kwargs"]["sigma"]["kwargs"] == {"sigma": 1.0}
    assert wide["trend"]["centered"] is False
    assert wide["half_life_log_mean"]["kwargs"]["mu"] == default["half_life_log_mean"]["kwargs"]["mu"]
    assert load_priors(PRIORS_FOLDER / "wide.yaml").hash() != load_priors().hash()


def test_integer_and_float_spellings_hash_alike(tmp_path):
    data = default_dict()
    data["effect_mean"]["kwargs"] = {"mu": 0, "sigma": 1}
    assert load_priors(write_yaml(tmp_path / "ints.yaml", data)).hash() == load_priors().hash()


def test_hash_changes_when_one_number_changes(tmp_path):
    data = default_dict()
    data["jump"]["kwargs"]["sigma"]["kwargs"]["sigma"] = 1.01
    changed = load_priors(write_yaml(tmp_path / "changed.yaml", data))
    assert changed.hash() != load_priors().hash()


def test_write_then_load_round_trips(tmp_path):
    wide = load_priors(PRIORS_FOLDER / "wide.yaml")
    path = write_priors(wide, tmp_path / "nested" / "copy.yaml", header="a test copy\nsecond line")
    reloaded = load_priors(path)
    assert reloaded.to_dict() == wide.to_dict()
    assert reloaded.hash() == wide.hash()
    assert reloaded.source == str(path)
    assert path.read_text(encoding="utf-8").startswith("# a test copy\n# second line\n")


def test_unknown_name_is_rejected_with_the_allowed_names(tmp_path):
    data = default_dict()
    data["baseline_rate"] = data["baseline"]
    with pytest.raises(PriorConfigError) as caught:
        load_priors(write_yaml(tmp_path / "unknown.yaml", data))
    message = str(caught.value)
    assert "unknown prior names: baseline_rate" in message
    assert "unknown.yaml" in message
    assert all(name in message for name in PRIOR_NAMES)


def test_missing_names_are_listed(tmp_path):
    data = default_dict()
    del data["dispersion"], data["seasonality"]
    with pytest.raises(PriorConfigError) as caught:
        load_priors(write_yaml(tmp_path / "missing.yaml", data))
    message = str(caught.value)
    assert "missing prior names: dispersion, seasonality" in message
    assert "the allowed names are: " + ", ".join(PRIOR_NAMES) in message


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("effect_sd", {"dist": "NoSuchDistribution", "kwargs": {"sigma": 0.5}}, "not a PyMC distribution"),
        ("effect_sd", {"dist": "HalfNormal", "kwargs": {"scale": 0.5}}, "cannot build the prior"),
        ("self_excitation", {"dist": "Normal", "kwargs": {"mu": "zero", "sigma": 0.5}}, "expected a number"),
        ("self_excitation", {"dist": "Normal", "kwargs": {"mu": 0, "sigma": "1e-3"}}, "write 1.0e-3"),
        ("effect_sd", {"kwargs": {"sigma": 0.5}}, "missing 'dist'"),
        ("effect_sd", {"dist": "sample", "kwargs": {}}, "not a PyMC distribution"),
        ("effect_sd", 0.5, "expected a prior"),
        ("self_excitation", {"dist": "Normal", "kwargs": {"mu": math.inf}}, "finite"),
    ],
)
def test_bad_prior_names_the_file_the_prior_and_the_reason(tmp_path, name, value, reason):
    data = default_dict()
    data[name] = value
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(PriorConfigError) as caught:
        load_priors(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"prior '{name}'" in message
    assert reason in message


def test_every_bad_prior_is_reported_at_once(tmp_path):
    data = default_dict()
    data["effect_sd"] = {"dist": "HalfNormal", "kwargs": {"scale": 0.5}}
    data["baseline"]["kwargs"]["sigma"]["kwargs"]["sigma"] = "wide"
    with pytest.raises(PriorConfigError) as caught:
        load_priors(write_yaml(tmp_path / "two.yaml", data))
    message = str(caught.value)
    assert "2 prior problems" in message
    assert "prior 'baseline', at kwargs.sigma.kwargs.sigma" in message
    assert "prior 'effect_sd'" in message


@pytest.mark.parametrize("dist", ["pymc.Normal", "os.system", "pymc_extras.prior.Prior"])
def test_a_dist_with_an_import_path_is_rejected(tmp_path, dist):
    data = default_dict()
    data["effect_sd"] = {"dist": dist, "kwargs": {"sigma": 0.5}}
    with pytest.raises(PriorConfigError, match="no Python class, import path or code"):
        load_priors(write_yaml(tmp_path / "dotted.yaml", data))


@pytest.mark.parametrize("key", ["class", "module", "__reduce__"])
def test_keys_outside_the_prior_format_are_rejected(tmp_path, key):
    data = default_dict()
    data["effect_sd"][key] = "builtins.eval"
    with pytest.raises(PriorConfigError, match=r"prior 'effect_sd': unknown keys .*may only have the keys"):
        load_priors(write_yaml(tmp_path / "extra_key.yaml", data))


def test_python_yaml_tags_are_refused(tmp_path):
    path = tmp_path / "tagged.yaml"
    text = (PRIORS_FOLDER / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("effect_sd:\n", "effect_sd: !!python/object/apply:os.system ['true']\nunused:\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PriorConfigError, match="tags such as !!python/object are refused") as caught:
        load_priors(path)
    assert str(path) in str(caught.value)


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "duplicate.yaml"
    text = (PRIORS_FOLDER / "default.yaml").read_text(encoding="utf-8")
    path.write_text(text + "\neffect_sd:\n  dist: HalfNormal\n  kwargs: {sigma: 9.0}\n", encoding="utf-8")
    with pytest.raises(PriorConfigError, match="found the key 'effect_sd' twice"):
        load_priors(path)


@pytest.mark.parametrize(
    ("name", "dims"),
    [("baseline", ["changepoint"]), ("jump", ["front"]), ("effect_sd", ["kind"]), ("dispersion", None)],
)
def test_wrong_dims_are_rejected(tmp_path, name, dims):
    data = default_dict()
    data[name].pop("dims", None)
    if dims is not None:
        data[name]["dims"] = dims
    with pytest.raises(PriorConfigError) as caught:
        load_priors(write_yaml(tmp_path / "dims.yaml", data))
    assert f"prior '{name}', at dims: must be {list(EXPECTED_DIMS[name])}" in str(caught.value)


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- baseline\n- jump\n", encoding="utf-8")
    with pytest.raises(PriorConfigError, match="expected a mapping from prior name to prior"):
        load_priors(path)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="prior file not found"):
        load_priors(tmp_path / "absent.yaml")


def test_prior_sets_built_in_code_are_checked_too():
    priors = copy.deepcopy(DEFAULT_PRIORS)
    del priors["jump"]
    with pytest.raises(PriorConfigError, match="missing prior names: jump"):
        PriorSet(priors)


def test_with_centered_flips_centered_and_changes_the_hash(tmp_path):
    defaults = load_priors()
    non_centred = defaults.with_centered(["baseline", "jump"], centered=False)
    assert not non_centred["baseline"].centered and not non_centred["jump"].centered
    assert defaults["baseline"].centered  # the original is unchanged
    assert non_centred.to_dict()["baseline"]["centered"] is False
    assert non_centred.hash() != defaults.hash()
    assert non_centred.with_centered("baseline", centered=True).with_centered("jump", True).hash() == defaults.hash()
    reloaded = load_priors(write_priors(non_centred, tmp_path / "non_centred.yaml"))
    assert reloaded.hash() == non_centred.hash()


def test_with_centered_refuses_priors_that_are_not_hierarchical():
    with pytest.raises(PriorConfigError, match="the hierarchical priors are: baseline, jump"):
        load_priors().with_centered(["dispersion"], centered=False)


def test_unknown_name_lookup_lists_the_allowed_names():
    with pytest.raises(KeyError, match="the allowed names are"):
        load_priors()["rate"]


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("centered", [True, False])
def test_every_shipped_prior_creates_a_variable_in_a_model(path, centered):
    family = "dynamic" if path.name.startswith("dynamic") else "changepoint"
    expected_dims = MODEL_PRIOR_DIMS[family]
    prior_set = load_priors(path, model=family)
    prior_set = prior_set.with_centered(prior_set.hierarchical_names(), centered=centered)
    with pm.Model(coords=MODEL_COORDS) as model:
        for name in prior_set.names:
            variable = prior_set[name].create_variable(name)
            assert model.named_vars_to_dims.get(name, ()) == expected_dims[name]
            expected_shape = tuple(len(MODEL_COORDS[dim]) for dim in expected_dims[name])
            assert variable.eval().shape == expected_shape


def test_prior_median_daily_rate_is_plausible():
    """exp(baseline) under the defaults: 500 draws must give a median daily rate in [0.01, 100].

    The baseline is Normal(Normal(0, 2), HalfNormal(1.5)) on the log daily rate, so the median
    should sit near exp(0) = 1 event a day; 0.01 and 100 a day bound what a conflict front
    can plausibly produce.
    """
    with pm.Model(coords=MODEL_COORDS):
        load_priors()["baseline"].create_variable("baseline")
        draws = pm.sample_prior_predictive(draws=500, var_names=["baseline"], random_seed=20240516)
    daily_rate = np.exp(draws.prior["baseline"].to_numpy())
    assert daily_rate.size == 500 * len(MODEL_COORDS["front"])
    assert 0.01 < np.median(daily_rate) < 100
