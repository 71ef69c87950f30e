"""``sigerec add-items``: new items into an exported model folder, written atomically; and what
``sigerec export`` records so that a trained content model can take them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from new_item_folders import GENRES, ITEM_IDS, write_items_ready_export
from sigerec.cli.main import app
from sigerec.safe_write import KILL_STEP_VARIABLE, STEP_LOG_VARIABLE
from sigerec.serving.model_folder import ModelFolder, item_features_file

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_add_items_appends_the_files_items_and_says_how_many(tmp_path):
    model = write_items_ready_export(tmp_path / "model")
    items = tmp_path / "new.csv"
    items.write_text(f"id,genres,title\nn1,{GENRES[4]},New one\nn2,{GENRES[0]},New two\n")
    result = invoke("add-items", model, items, "--id-col", "id")
    assert result.exit_code == 0, result.output
    assert f"added 2 items to {model}: {len(ITEM_IDS) + 2} items now" in " ".join(result.output.split())
    folder = ModelFolder.load(model)
    assert list(folder.item_ids[-2:]) == ["n1", "n2"] and list(folder.titles[-2:]) == ["New one", "New two"]
    np.testing.assert_array_equal(folder.item_vectors[-2:], folder.item_vectors[[4, 0]])


def test_add_items_refuses_columns_the_model_was_not_encoded_from_and_existing_ids(tmp_path):
    model = write_items_ready_export(tmp_path / "model")
    items = tmp_path / "new.csv"
    items.write_text(f"movie,genres\nm2,{GENRES[1]}\n")
    result = invoke("add-items", model, items, "--text-cols", "title")
    assert result.exit_code != 0 and "text features were encoded from none" in " ".join(result.output.split())
    result = invoke("add-items", model, items)
    assert result.exit_code != 0 and "item 'm2' is already in the model" in " ".join(result.output.split())
    assert len(ModelFolder.load(model).item_ids) == len(ITEM_IDS)


def test_a_killed_add_items_leaves_the_old_folder_and_a_rerun_finishes(tmp_path, monkeypatch):
    model = write_items_ready_export(tmp_path / "model")
    items = tmp_path / "new.csv"
    items.write_text(f"movie,genres\nn1,{GENRES[8]}\n")
    clean = shutil.copytree(model, tmp_path / "clean" / "model")
    monkeypatch.setenv(STEP_LOG_VARIABLE, str(tmp_path / "steps.log"))
    assert invoke("add-items", clean, items).exit_code == 0
    monkeypatch.delenv(STEP_LOG_VARIABLE)
    steps = (tmp_path / "steps.log").read_text().splitlines()
    for step in range(1, len(steps)):  # every write step before the folder is swapped in
        target = shutil.copytree(model, tmp_path / f"kill-{step}" / "model")
        command = [sys.executable, "-m", "sigerec.cli.main", "add-items", str(target), str(items)]
        killed = subprocess.run(
            command, check=False, env={**os.environ, KILL_STEP_VARIABLE: str(step)}, capture_output=True
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        ids = list(ModelFolder.load(target).item_ids)  # loads: checksums and shapes hold
        assert ids in (ITEM_IDS, [*ITEM_IDS, "n1"])
        if ids == ITEM_IDS:
            assert invoke("add-items", target, items).exit_code == 0
        assert list(ModelFolder.load(target).item_ids) == [*ITEM_IDS, "n1"]


def test_export_of_a_warm_neighbours_model_records_what_new_items_need(tmp_path):
    """A SIGE run on a cold-items split with genre labels (k=3, norm=neighbours): the export keeps
    the features and the encoder, and a copy of a cold item of the split, added as a new item,
    gets the vector the model gave that cold item (serving and evaluation apply one rule)."""
    ratings = tmp_path / "ratings.csv"
    # Each user misses two items: a user with every training item has no negative to train on.
    pairs = [(u, i) for u in range(12) for i in range(10) if (u + i) % 5]
    ratings.write_text("user,movie\n" + "".join(f"u{u},m{i}\n" for u, i in pairs))
    data = tmp_path / "genres"
    split = ["--split", "cold-items", "--cold-fraction", "0.2", "--seed", "1"]
    imported = invoke("data", "import", ratings, "--user-col", "user", "--item-col", "movie", *split, "--out", data)
    assert imported.exit_code == 0
    catalogue = tmp_path / "movies.csv"
    catalogue.write_text("movie,genres\n" + "".join(f"m{i},{g}\n" for i, g in enumerate(GENRES)))
    encode = ["encode", "categories", catalogue, "--data", data, "--id-col", "movie", "--category-col", "genres"]
    assert invoke(*encode, "--separator", "|", "--modality", "genre", "-q").exit_code == 0
    train = ["train", "--data", data, "--model", "sige", "--epochs", "1", "--out", tmp_path / "runs", "-q"]
    settings = ["--set", "cold_item_k=3", "--set", "cold_item_norm=neighbours", "--set", "embedding_size=8"]
    result = invoke(*train, *settings)
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    assert invoke("export", run, "--out", tmp_path / "model").exit_code == 0

    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    record = manifest["cold_items"]
    assert (record["rule"], record["k"], record["norm"]) == ("warm_neighbours", 3, "neighbours")
    assert (record["modalities"], record["id_col"], record["fields"]) == (["genre"], "movie", ["movie", "genres"])
    assert record["encoders"]["genre"]["kind"] == "categories" and item_features_file("genre") in manifest["files"]

    folder = ModelFolder.load(tmp_path / "model")
    cold = np.flatnonzero(np.diff(folder.seen.tocsc().indptr) == 0)
    assert len(cold) == 2
    rows = "".join(f"copy{c},{GENRES[ITEM_IDS.index(folder.item_ids[c])]}\n" for c in cold)
    (tmp_path / "new.csv").write_text("movie,genres\n" + rows)
    assert invoke("add-items", tmp_path / "model", tmp_path / "new.csv").exit_code == 0
    added = ModelFolder.load(tmp_path / "model")
    np.testing.assert_allclose(added.item_vectors[-2:], folder.item_vectors[cold], rtol=1e-5, atol=1e-7)
