"""Search spaces: every model's declared space is valid for its settings, and ``--space`` files are read.

The model checks name no model: a newly registered model gets them by declaring
``search_space`` (or by being listed in ``DOCUMENTED_EMPTY`` with its reason).
"""

from __future__ import annotations

import dataclasses

import pytest

from sigerec.config import TrainingConfig
from sigerec.errors import SigerecError
from sigerec.models import get_model_class, model_names
from sigerec.search_space import Dimension, dimension_from_mapping, read_space_file
from sigerec.training import runner

# Models whose empty space is deliberate (name -> why).
DOCUMENTED_EMPTY: dict[str, str] = {
    "pop": "computed from training counts; no hyperparameters",
    "contentknn": "cosine to the centroid of the user's items; no hyperparameters",
}


def searched_values(dimension: Dimension) -> list:
    """The values a search can reach at its edges: every choice, or a range's low and high."""
    return list(dimension.choices) if dimension.choices is not None else [dimension.low, dimension.high]


def resolved_setting(model: str, key: str, overrides: dict | None = None):
    config = runner.resolve_config(model, "x", overrides=overrides)
    group = config.training if key in {f.name for f in dataclasses.fields(TrainingConfig)} else config.model_params
    return getattr(group, key)


@pytest.fixture(params=model_names())
def model_name(request) -> str:
    return request.param


def test_every_model_declares_a_space(model_name):
    space = get_model_class(model_name).search_space
    assert space or model_name in DOCUMENTED_EMPTY, f"{model_name} has no search_space and no documented reason"


def test_every_name_is_a_setting_of_the_model_or_of_training(model_name):
    model_class = get_model_class(model_name)
    known = {f.name for f in dataclasses.fields(model_class.config_class)} | {
        f.name for f in dataclasses.fields(TrainingConfig)
    }
    unknown = set(model_class.search_space) - known
    assert not unknown, f"{model_name}: {sorted(unknown)} are not settings"


def test_every_dimension_is_well_formed_and_has_a_source(model_name):
    for key, dimension in get_model_class(model_name).search_space.items():
        assert isinstance(dimension, Dimension), key
        assert dimension.source.strip(), f"{model_name}.{key} has no source"
        if dimension.choices is not None:
            assert dimension.choices and len(set(dimension.choices)) == len(dimension.choices), key
        else:
            assert dimension.low is not None and dimension.high is not None and dimension.low <= dimension.high, key
            assert not dimension.log or dimension.low > 0, key


def test_every_choice_and_bound_is_accepted_by_the_config(model_name):
    for key, dimension in get_model_class(model_name).search_space.items():
        for value in searched_values(dimension):
            assert resolved_setting(model_name, key, {key: value}) == value, f"{model_name}.{key}={value!r}"


def test_the_defaults_lie_in_the_space(model_name):
    """A search can always find the model's defaults again (they are where the grids start)."""
    for key, dimension in get_model_class(model_name).search_space.items():
        default = resolved_setting(model_name, key)
        if dimension.choices is not None:
            assert default in dimension.choices, f"{model_name}.{key}: default {default!r} not among the choices"
        else:
            assert dimension.low <= default <= dimension.high, f"{model_name}.{key}: default {default!r} out of range"


def test_read_space_file_reads_choices_and_ranges(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "n_layers: {choices: [1, 2, 3], source: MMRec grid}\n"
        "reg_weight: {low: 1.0e-6, high: 1.0e-2, log: true}\n"
        "dropout: {low: 0.1, high: 0.9, step: 0.1}\n"
        "fuser: [attention, mean]\n"
        "n_ii_layers: {low: 1, high: 3}\n"
    )
    space = read_space_file(path)
    assert list(space) == ["n_layers", "reg_weight", "dropout", "fuser", "n_ii_layers"]
    assert space["n_layers"] == Dimension(choices=(1, 2, 3), source="MMRec grid")
    assert space["reg_weight"] == Dimension(low=1e-6, high=1e-2, log=True)
    assert space["dropout"].step == 0.1 and not space["dropout"].is_integer
    assert space["fuser"].choices == ("attention", "mean")
    assert space["n_ii_layers"].is_integer and space["n_ii_layers"].describe() == "[1, 3]"


def test_dimension_from_mapping_accepts_a_list_or_a_mapping():
    assert dimension_from_mapping("tau", [0.1, 0.2], "f.yaml") == Dimension(choices=(0.1, 0.2))
    assert dimension_from_mapping("tau", {"low": 0.1, "high": 0.5, "source": "x"}, "f.yaml").source == "x"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"low": 1e-4, "hihg": 1e-2}, r"f\.yaml: 'reg_weight' has unknown key\(s\) \['hihg'\]"),
        ({"low": 0.0, "high": 1e-2, "log": True}, r"f\.yaml: 'reg_weight': a log-scale range needs low > 0"),
        ({"low": 1e-2, "high": 1e-4}, r"low <= high, got 0\.01, 0\.0001"),
        ({"choices": []}, r"choices must be a non-empty list"),
        ({"low": 0.1, "high": 0.5, "log": True, "step": 0.1}, r"step must be a positive number and cannot go with log"),
        ("0.1", r"must be a list of choices or a mapping"),
    ],
)
def test_dimension_from_mapping_names_the_file_and_setting_of_a_bad_spec(spec, message):
    with pytest.raises(SigerecError, match=message):
        dimension_from_mapping("reg_weight", spec, "f.yaml")


def test_read_space_file_rejects_a_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("- n_layers\n- reg_weight\n")
    with pytest.raises(SigerecError, match="expected a mapping of setting name -> choices or range"):
        read_space_file(path)


def test_read_space_file_reports_a_bad_dimension_with_the_file_name(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("n_layers: {low: 1}\n")
    with pytest.raises(SigerecError, match=r"space\.yaml: 'n_layers' needs choices, or both low and high"):
        read_space_file(path)


def test_read_space_file_reports_a_missing_file(tmp_path):
    with pytest.raises(SigerecError, match="cannot read the search-space file"):
        read_space_file(tmp_path / "missing.yaml")
