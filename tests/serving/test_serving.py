"""Export, model folders, retrieval (exact and FAISS) and the recommendation service."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.errors import SigerecError
from sigerec.serving.model_folder import FORMAT_VERSION, ModelFolder, export_run
from sigerec.serving.retrieval import ExactIndex, FaissIndex, build_index
from sigerec.serving.service import RecommendationService, UnknownIdError
from sigerec.training import runner

cli = CliRunner()


@pytest.fixture
def trained_run(tiny_dataset_dir, tmp_path):
    config = runner.resolve_config("lightgcn", str(tiny_dataset_dir), overrides={"epochs": 2, "train_batch_size": 8})
    run, _ = runner.train(config, tmp_path / "runs")
    return run.path


@pytest.fixture
def items_file(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item,name\n0,Zero &amp; one\n2,Two\n5,Five\n")
    return path


def test_export_writes_a_folder_that_loads_without_the_data(trained_run, items_file, tmp_path, tiny_dataset_dir):
    out = export_run(trained_run, tmp_path / "model", items_file, "item", "name")
    model, dataset, _ = runner.load_trained_model(trained_run)
    users, items = model.embeddings()
    for path in tiny_dataset_dir.iterdir():
        path.unlink()  # the folder must not need the training data
    folder = ModelFolder.load(out)
    np.testing.assert_array_equal(folder.user_vectors, users.detach().numpy())
    np.testing.assert_array_equal(folder.item_vectors, items.detach().numpy())
    assert list(folder.user_ids) == ["0", "1", "2", "3"] and len(folder.item_ids) == 6
    assert (folder.seen != dataset.train).nnz == 0
    assert list(folder.titles) == ["Zero & one", "", "Two", "", "", "Five"]
    manifest = folder.manifest
    assert manifest["format_version"] == FORMAT_VERSION and manifest["model"] == "lightgcn"
    assert {"user_vectors.npy", "seen.npz", "item_titles.json", "summary.json"} <= set(manifest["files"])
    assert "recall@20" in manifest["metrics"]["test"]


def test_broken_folders_are_refused_with_the_file_named(trained_run, tmp_path):
    out = export_run(trained_run, tmp_path / "model")
    with pytest.raises(SigerecError, match="not empty"):
        export_run(trained_run, out)
    export_run(trained_run, out, force=True)
    (out / "seen.npz").write_bytes((out / "seen.npz").read_bytes()[:-3] + b"xyz")
    with pytest.raises(SigerecError, match="seen.npz: checksum mismatch"):
        ModelFolder.load(out)
    export_run(trained_run, out, force=True)
    (out / "item_ids.txt").unlink()
    with pytest.raises(SigerecError, match="item_ids.txt: missing"):
        ModelFolder.load(out)
    export_run(trained_run, out, force=True)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(SigerecError, match="format version 99"):
        ModelFolder.load(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(SigerecError, match="not valid JSON"):
        ModelFolder.load(out)
    with pytest.raises(SigerecError, match="no such model folder"):
        ModelFolder.load(tmp_path / "nothing")
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SigerecError, match="only replaces"):
        export_run(trained_run, other, force=True)
    assert (other / "notes.txt").exists()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SigerecError, match="is a file"):
        export_run(trained_run, tmp_path / "a-file")


def _vectors(n=500, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_exact_and_faiss_retrieval_agree_and_respect_exclusions():
    items = _vectors()
    exact, faiss_flat = ExactIndex(items), FaissIndex(items, "flat")
    rng = np.random.default_rng(1)
    for _ in range(20):
        query = rng.standard_normal(16).astype(np.float32)
        exclude = rng.choice(500, size=30, replace=False)
        exact_items, exact_scores = exact.search(query, 10, exclude)
        faiss_items, faiss_scores = faiss_flat.search(query, 10, exclude)
        np.testing.assert_array_equal(exact_items, faiss_items)
        np.testing.assert_allclose(exact_scores, faiss_scores, rtol=1e-5)
        assert not set(exact_items) & set(exclude.tolist())
        brute = np.argsort(-(items @ query), kind="stable")
        assert list(exact_items) == [i for i in brute if i not in set(exclude.tolist())][:10]


def test_ivf_index_finds_nearly_all_true_neighbours():
    items = _vectors(3000, 16)
    exact, ivf = ExactIndex(items), FaissIndex(items, "ivf")
    queries = np.random.default_rng(2).standard_normal((30, 16)).astype(np.float32)
    overlap = np.mean([len(set(exact.search(q, 10)[0]) & set(ivf.search(q, 10)[0])) / 10 for q in queries])
    assert overlap >= 0.9


def test_k_beyond_the_available_items_returns_what_is_left():
    index = build_index(_vectors(5, 4), "exact")
    assert len(index.search(np.ones(4, np.float32), 10, np.array([0, 1]))[0]) == 3
    assert len(FaissIndex(_vectors(5, 4)).search(np.ones(4, np.float32), 10, np.array([0, 1]))[0]) == 3


def _service(index="exact"):
    users, items = _vectors(4, 8, 3), _vectors(6, 8, 4)
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0] * 6, [1] * 5 + [0]], dtype=np.float32))
    folder = ModelFolder(
        users,
        items,
        np.array(["u0", "u1", "u2", "u3"]),
        np.array(list("abcdef")),
        np.array(["A", "", "C", "", "", "F"], dtype=object),
        seen,
        {"model": "hand", "format_version": 1},
    )
    return RecommendationService(folder, index), users, items


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_service_answers_by_raw_ids(index):
    service, users, items = _service(index)
    results = service.for_user("u0", 3)
    expected = [i for i in np.argsort(-(items @ users[0]), kind="stable") if i not in (0, 1)][:3]
    assert [r.item_id for r in results] == [list("abcdef")[i] for i in expected]
    assert all(r.title == {"c": "C", "f": "F"}.get(r.item_id) for r in results)
    assert [r.item_id for r in service.for_user("u3", 5)] == ["f"]  # only one unseen item
    folded = service.for_items(["a", "c"], 6)
    query = items[[0, 2]].mean(axis=0)
    assert [r.item_id for r in folded] == [list("abcdef")[i] for i in np.argsort(-(items @ query)) if i not in (0, 2)]
    similar = service.similar_items("b", 5)
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    assert [r.item_id for r in similar] == [list("abcdef")[i] for i in np.argsort(-(unit @ unit[1])) if i != 1]
    assert similar[0].score == pytest.approx(float(np.sort(unit @ unit[1])[-2]), rel=1e-5)


def test_service_rejects_unknown_ids_and_bad_k():
    service, _, _ = _service()
    with pytest.raises(UnknownIdError, match="unknown user id 'u9'"):
        service.for_user("u9")
    with pytest.raises(UnknownIdError, match="unknown item id 'z'"):
        service.for_items(["a", "z"])
    with pytest.raises(ValueError, match="k must be between 1 and 1000"):
        service.similar_items("a", 0)
    with pytest.raises(ValueError, match="at least one"):
        service.for_items([])
    assert service.metadata()["n_items"] == 6 and service.metadata()["index"] == "exact"


def test_cli_export_recommend_similar(trained_run, items_file, tmp_path):
    out = tmp_path / "model"
    result = cli.invoke(
        app,
        [
            "export",
            str(trained_run),
            "--out",
            str(out),
            "--items",
            str(items_file),
            "--id-col",
            "item",
            "--title-col",
            "name",
        ],
    )
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["recommend", str(out), "--user", "1", "-k", "2"])
    assert result.exit_code == 0 and "top 2 for user 1" in result.output
    result = cli.invoke(app, ["recommend", str(out), "--items", "0,2", "-k", "3", "--index", "faiss"])
    assert result.exit_code == 0 and "Zero" not in result.output and "Two" not in result.output  # liked: excluded
    result = cli.invoke(app, ["similar", str(out), "--item", "5", "-k", "2"])
    assert result.exit_code == 0 and "similar to 5" in result.output
    for args, message in [
        (["recommend", str(out), "--user", "77"], "unknown user id '77'"),
        (["recommend", str(out)], "exactly one of --user"),
        (["recommend", str(out), "--user", "1", "-k", "0"], "k must be between"),
        (["similar", str(tmp_path / "nope"), "--item", "1"], "no such model folder"),
    ]:
        result = cli.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_every_model_exports_dot_product_vectors(tiny_dataset_dir, tmp_path):
    """The scorer used in evaluation is the dot product of the exported vectors."""
    config = runner.resolve_config("bpr", str(tiny_dataset_dir), overrides={"epochs": 1, "train_batch_size": 8})
    run, _ = runner.train(config, tmp_path / "runs")
    model, _, _ = runner.load_trained_model(run.path)
    folder = ModelFolder.load(export_run(run.path, tmp_path / "model"))
    scores = model.scorer()(torch.arange(4)).numpy()
    np.testing.assert_allclose(scores, folder.user_vectors @ folder.item_vectors.T, rtol=1e-5, atol=1e-6)
