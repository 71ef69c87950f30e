import dataclasses

import pytest

from sigerec.config import TrainingConfig, parse_set_options, read_config_file
from sigerec.errors import SigerecError
from sigerec.training.runner import resolve_config


def test_defaults_follow_mmrec_overall_settings():
    config = resolve_config("lightgcn", "baby")
    assert config.training == TrainingConfig()
    assert (config.training.learning_rate, config.training.train_batch_size) == (1e-3, 2048)
    assert config.training.stopping_step == 20 and config.training.seed == 999
    assert config.model_params.embedding_size == 64


def test_layers_apply_in_order_file_then_set_then_flags(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("n_layers: 3\nlearning_rate: 0.01\nseed: 5\n")
    config = resolve_config("lightgcn", "baby", path, parse_set_options(["n_layers=1"]), {"seed": 7})
    assert config.model_params.n_layers == 1
    assert config.training.learning_rate == 0.01
    assert config.training.seed == 7


def test_unknown_key_suggests_the_closest_known_key():
    with pytest.raises(SigerecError, match="Did you mean 'n_layers'"):
        resolve_config("lightgcn", "baby", overrides={"n_layer": 2})


def test_wrong_type_names_the_key_and_the_expected_type():
    with pytest.raises(SigerecError, match="'n_layers' must be an integer"):
        resolve_config("lightgcn", "baby", overrides={"n_layers": "two"})


def test_valid_metric_must_be_one_of_the_computed_metrics():
    with pytest.raises(SigerecError, match="valid_metric"):
        resolve_config("bpr", "baby", overrides={"valid_metric": "recall@30"})


def test_set_values_parse_as_yaml_scalars_and_lists():
    parsed = parse_set_options(["reg_weight=1e-3", "topk=[10,20]", "mask_valid_in_test=true"])
    config = resolve_config("bpr", "baby", overrides=parsed)
    assert config.model_params.reg_weight == 1e-3
    assert config.training.topk == (10, 20)
    assert config.training.mask_valid_in_test is True


def test_saved_run_config_reads_back_to_the_same_config(tmp_path):
    config = resolve_config("lightgcn", "baby", overrides={"n_layers": 3, "seed": 1})
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert read_config_file(path)["n_layers"] == 3
    assert resolve_config("lightgcn", "baby", path) == config


def test_malformed_set_option_is_explained():
    with pytest.raises(SigerecError, match="key=value"):
        parse_set_options(["n_layers"])


def test_device_without_a_gpu_is_explained(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SigerecError, match="no CUDA GPU"):
        resolve_config("bpr", "baby", flags={"device": "cuda"})


def test_existing_data_folder_is_stored_as_an_absolute_path(tiny_dataset_dir, monkeypatch):
    monkeypatch.chdir(tiny_dataset_dir.parent)
    config = resolve_config("bpr", "tiny")
    assert config.data == str(tiny_dataset_dir.resolve())


def _typed_fields(config_class):
    import typing

    from sigerec.config import _field_types

    return {name: (typing.get_origin(hint), typing.get_args(hint)) for name, hint in _field_types(config_class).items()}


def _bad_values(config_class):
    """(key, out-of-range or unknown value) for every field whose type declares a choice or range."""
    import typing

    from sigerec.config import Range

    for name, (origin, args) in _typed_fields(config_class).items():
        if origin is typing.Literal:
            yield name, "not-a-choice", "must be one of " + ", ".join(args)
        elif origin is typing.Annotated:
            (bounds,) = [extra for extra in args[1:] if isinstance(extra, Range)]
            value = bounds.low - 1 if bounds.low is not None else bounds.high + 1
            yield name, value, f"must be {bounds.describe()}"


def _every_settings_class():
    from sigerec.models import get_model_class, model_names

    return [("training", TrainingConfig)] + [(name, get_model_class(name).config_class) for name in model_names()]


@pytest.mark.parametrize(("owner", "config_class"), _every_settings_class())
def test_every_declared_choice_and_range_is_checked_with_the_same_message(owner, config_class):
    model = owner if owner != "training" else "bpr"
    checked = 0
    for key, value, message in _bad_values(config_class):
        with pytest.raises(SigerecError) as error:
            resolve_config(model, "baby", overrides={key: value})
        assert str(error.value).startswith(f"--set: setting '{key}' {message}, got "), str(error.value)
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize(("owner", "config_class"), _every_settings_class())
def test_text_settings_are_typed_choices(owner, config_class):
    """A setting with a fixed set of values says so in its type, so it is checked like the others."""
    free_text = {"valid_metric", "device", "language_modality"}  # checked where they are used
    for field in dataclasses.fields(config_class):
        if field.type in ("str", str):
            assert field.name in free_text, f"{owner}: '{field.name}' is a plain str; declare its choices with Literal"


def test_a_config_built_in_code_is_checked_too():
    from sigerec.models.sige import SIGEConfig

    with pytest.raises(SigerecError, match="setting 'perturbation' must be one of modulus, relative"):
        SIGEConfig(perturbation="gaussian")
    with pytest.raises(SigerecError, match=r"setting 'infusion_alpha' must be in \[0, 1\], got 1.5"):
        SIGEConfig(infusion_alpha=1.5)


def test_range_descriptions():
    from sigerec.config import Range

    assert Range(0, 1).describe() == "in [0, 1]"
    assert Range(0, 1, low_inclusive=False).describe() == "in (0, 1]"
    assert Range(low=0).describe() == ">= 0" and Range(low=0, low_inclusive=False).describe() == "> 0"
    assert Range(0, 1, high_inclusive=False).contains(0.0) and not Range(0, 1, high_inclusive=False).contains(1.0)


def test_settings_are_checked_once_on_the_result_of_every_layer(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("dropout: 1.5\n")
    config = resolve_config("freedom", "baby", path, {"dropout": 0.5})  # --set replaces the bad value
    assert config.model_params.dropout == 0.5
    with pytest.raises(SigerecError, match=rf"^{path}: setting 'dropout' must be in \[0, 1\), got 1.5"):
        resolve_config("freedom", "baby", path)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"learning_rate": float("nan")}, "'learning_rate' must be a finite number"),
        ({"learning_rate_scheduler": [0.9, 50, 3]}, "'learning_rate_scheduler' must be a list of 2 values"),
        ({"learning_rate_scheduler": [0.9, 0]}, "'learning_rate_scheduler' must be a list of values each > 0"),
        ({"topk": []}, "'topk' must list at least one cut-off"),
    ],
)
def test_values_no_type_allows_are_refused(setting, message):
    with pytest.raises(SigerecError, match=message):
        resolve_config("bpr", "baby", overrides=setting)


def test_a_saved_run_with_a_value_now_refused_says_which_file_to_edit(tiny_dataset_dir, tmp_path):
    import yaml

    from sigerec.training import runner

    run, _ = runner.train(resolve_config("bpr", str(tiny_dataset_dir), overrides={"epochs": 1}), tmp_path / "runs")
    saved = yaml.safe_load(run.file("config.yaml").read_text())
    saved["model_params"]["reg_weight"] = -0.001  # accepted by versions before settings had ranges
    run.file("config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(SigerecError, match=r"'reg_weight' must be >= 0.*edit 'reg_weight' in .*config.yaml"):
        runner.evaluate_run(run.path)
