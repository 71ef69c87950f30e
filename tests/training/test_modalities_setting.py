"""The ``modalities`` setting: a run uses the content modalities it names, and only those,
in training, resume, evaluation and export alike."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from model_checks import write_tiny_features
from sigerec.cli.main import app
from sigerec.errors import SigerecError
from sigerec.serving.model_folder import export_run
from sigerec.training import runner


@pytest.fixture
def two_modality_dir(tiny_dataset_dir):
    write_tiny_features(tiny_dataset_dir)  # image_feat.npy and text_feat.npy
    return tiny_dataset_dir


def test_empty_modalities_means_every_modality_of_the_folder(two_modality_dir):
    config = runner.resolve_config("mgcn", str(two_modality_dir))
    assert config.training.modalities == ()
    assert sorted(runner.load_run_dataset(config).features) == ["image", "text"]


def test_a_run_with_one_modality_builds_and_saves_a_one_modality_model(two_modality_dir, tmp_path):
    config = runner.resolve_config("sige", str(two_modality_dir), overrides={"modalities": "text", "epochs": 1})
    run, summary = runner.train(config, tmp_path / "runs")
    assert run.read_config()["training"]["modalities"] == ["text"]
    assert summary["modalities"] == ["text"]

    model, dataset, _ = runner.load_trained_model(run.path)
    assert list(dataset.features) == ["text"]
    assert model.modalities == ["text"]
    assert not any("image" in name for name in model.state_dict())
    assert runner.evaluate_run(run.path)["test"] == summary["test"]
    export_run(run.path, tmp_path / "model")  # export rebuilds the same one-modality model


def test_modalities_from_the_command_line_accept_a_comma_list(two_modality_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(two_modality_dir), "--model", "freedom", "--epochs", "1", "--quiet",
         "--set", "modalities=text,image", "--out", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = runner.load_run_config(runner.RunDirectory.existing(run_dir))
    assert config.training.modalities == ("text", "image")
    assert runner.load_run_dataset(config).features.keys() == {"text", "image"}


def test_an_unknown_modality_names_the_folder_and_the_modalities_it_has(two_modality_dir):
    config = runner.resolve_config("mgcn", str(two_modality_dir), overrides={"modalities": ["text", "audio"]})
    with pytest.raises(SigerecError) as caught:
        runner.load_run_dataset(config)
    message = str(caught.value)
    assert "'modalities' asks for audio" in message
    assert str(two_modality_dir) in message
    assert "it has: image, text" in message


def test_an_unknown_modality_on_the_command_line_is_a_usage_error(two_modality_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(two_modality_dir),
            "--model",
            "mgcn",
            "--set",
            "modalities=kg",
            "--out",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "asks for kg" in result.output
    assert "Traceback" not in result.output
