"""Knowledge-graph item features: one-hop multi-hot of linked entities, reduced by SVD."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from sigerec.data.importer import ImportOptions, import_interactions
from sigerec.errors import SigerecError
from sigerec.features import knowledge_graph as kg_module
from sigerec.features.knowledge_graph import encode_knowledge_graph, knowledge_graph_features

KG_HEADER = "head_id:token\trelation_id:token\ttail_id:token"
LINK_HEADER = "item_id:token\tentity_id:token"

# tiny_dataset_dir has items 0..5 and no id map, so raw ids are "0".."5".
# Items 0, 1 share actor a1 and genre g1 (stored in both directions, as RecBole's KG does);
# items 2, 3 share actor a2 and genre g2; all four speak English; 0, 1, 2 won award w1.
# Item 4 has only its own actor (a feature of one item), item 5 has no link; the sequel
# edge 2 -> 3 gives each of them a feature only it holds.
TRIPLES = [
    ("e0", "film.film.actor", "a1"),
    ("e1", "film.film.actor", "a1"),
    ("e0", "film.film.genre", "g1"),
    ("e1", "film.film.genre", "g1"),
    ("g1", "film.film_genre.films_in_this_genre", "e0"),
    ("g1", "film.film_genre.films_in_this_genre", "e1"),
    ("e2", "film.film.actor", "a2"),
    ("e3", "film.film.actor", "a2"),
    ("e2", "film.film.genre", "g2"),
    ("e3", "film.film.genre", "g2"),
    ("e0", "film.film.language", "en"),
    ("e1", "film.film.language", "en"),
    ("e2", "film.film.language", "en"),
    ("e3", "film.film.language", "en"),
    ("e0", "film.film.award_won", "w1"),
    ("e1", "film.film.award_won", "w1"),
    ("e2", "film.film.award_won", "w1"),
    ("e2", "film.film.sequel", "e3"),
    ("e4", "film.film.actor", "a9"),
    ("x7", "film.film.actor", "a1"),  # an entity no dataset item links to
]
LINKS = [("0", "e0"), ("1", "e1"), ("2", "e2"), ("3", "e3"), ("4", "e4"), ("99", "e99")]


def write_rows(path: Path, header: str, rows: list[tuple]) -> Path:
    path.write_text("\n".join([header] + ["\t".join(row) for row in rows]) + "\n")
    return path


@pytest.fixture
def kg_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_rows(tmp_path / "tiny.kg", KG_HEADER, TRIPLES), write_rows(tmp_path / "tiny.link", LINK_HEADER, LINKS)


def cosine(vectors: np.ndarray, items: np.ndarray, a: int, b: int) -> float:
    row = {int(item): i for i, item in enumerate(items)}
    return float(vectors[row[a]] @ vectors[row[b]])


def test_items_with_shared_relations_get_normalised_vectors(kg_files, tiny_dataset_dir):
    items, vectors, info = knowledge_graph_features(*kg_files, tiny_dataset_dir, dim=8)
    assert items.tolist() == [0, 1, 2, 3]  # 4: only an unshared feature; 5: no link
    assert vectors.dtype == np.float32
    assert vectors.shape == (4, 4)  # the rank bound: 4 items
    assert info["dim"] == 4 and info["dim_requested"] == 8
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert info["items_linked"] == 5 and info["items_not_linked"] == 1
    assert info["link_rows_not_in_dataset"] == 1
    # a1, g1 (twice: both directions), a2, g2, en, w1 are shared; the g1 pair is merged into one column
    assert info["features_shared"] == 7
    assert info["features_kept"] == 6


def test_items_sharing_entities_are_more_similar(kg_files, tiny_dataset_dir):
    items, vectors, _ = knowledge_graph_features(*kg_files, tiny_dataset_dir, dim=8)
    assert cosine(vectors, items, 0, 1) > cosine(vectors, items, 0, 3)
    assert cosine(vectors, items, 2, 3) > cosine(vectors, items, 1, 3)
    assert cosine(vectors, items, 0, 1) > 0.99  # identical one-hop neighbourhoods


def test_deterministic_and_sparse_path_matches_exact(kg_files, tiny_dataset_dir, monkeypatch):
    first = knowledge_graph_features(*kg_files, tiny_dataset_dir, dim=2)
    second = knowledge_graph_features(*kg_files, tiny_dataset_dir, dim=2)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert first[2]["reduction"].startswith("numpy")
    monkeypatch.setattr(kg_module, "DENSE_SVD_MAX_CELLS", 0)
    sparse = knowledge_graph_features(*kg_files, tiny_dataset_dir, dim=2)
    assert sparse[2]["reduction"].startswith("scipy")
    # the sign convention makes ARPACK and LAPACK agree, not just up to a sign
    np.testing.assert_allclose(sparse[1], first[1], atol=1e-5)


def test_min_entity_items_filters_features(kg_files, tiny_dataset_dir):
    items, vectors, info = knowledge_graph_features(*kg_files, tiny_dataset_dir, min_entity_items=4)
    assert items.tolist() == [0, 1, 2, 3] and info["features_kept"] == 1  # only "English"
    assert vectors.shape == (4, 1)
    items, _, info = knowledge_graph_features(*kg_files, tiny_dataset_dir, min_entity_items=1)
    assert items.tolist() == [0, 1, 2, 3, 4]  # item 4's own actor now counts
    assert info["features_kept"] > 6
    items, vectors, info = knowledge_graph_features(*kg_files, tiny_dataset_dir, min_entity_items=5)
    assert len(items) == 0 and info["features_kept"] == 0


def test_encode_mean_fills_unlinked_items(kg_files, tiny_dataset_dir):
    report = encode_knowledge_graph(*kg_files, tiny_dataset_dir, modality="kg", dim=3)
    assert report["encoded"] == 4 and report["mean_filled"] == 2 and report["dim"] == 3
    assert report["coverage"] == pytest.approx(4 / 6)
    matrix = np.load(tiny_dataset_dir / "kg_feat.npy")
    assert matrix.shape == (6, 3)
    np.testing.assert_allclose(matrix[4], matrix[:4].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(matrix[5], matrix[:4].mean(axis=0), atol=1e-6)
    missing = (tiny_dataset_dir / "kg_feat.missing.tsv").read_text().splitlines()
    assert missing == ["itemID\traw_id", "4\t4", "5\t5"]
    written = json.loads((tiny_dataset_dir / "kg_feat.json").read_text())
    assert written["source"]["kg_file"] == str(kg_files[0].resolve())
    assert len(written["source"]["link_sha256"]) == 64
    assert written["features_kept"] == 6


def test_errors_are_clear(kg_files, tiny_dataset_dir, tmp_path):
    kg_file, link_file = kg_files
    with pytest.raises(SigerecError, match="no such knowledge-graph file"):
        knowledge_graph_features(tmp_path / "absent.kg", link_file, tiny_dataset_dir)
    with pytest.raises(SigerecError, match="no such link file"):
        encode_knowledge_graph(kg_file, tmp_path / "absent.link", tiny_dataset_dir)
    bad_link = write_rows(tmp_path / "bad.link", "item\tentity_id", LINKS)
    with pytest.raises(SigerecError, match="no column 'item_id'"):
        knowledge_graph_features(kg_file, bad_link, tiny_dataset_dir)
    bad_kg = write_rows(tmp_path / "bad.kg", "head_id\trelation\ttail_id", TRIPLES)
    with pytest.raises(SigerecError, match="no column 'relation_id'"):
        knowledge_graph_features(bad_kg, link_file, tiny_dataset_dir)
    foreign = write_rows(tmp_path / "foreign.link", LINK_HEADER, [("m1", "e0"), ("m2", "e1")])
    with pytest.raises(SigerecError, match="no item of .* is linked"):
        encode_knowledge_graph(kg_file, foreign, tiny_dataset_dir)
    with pytest.raises(SigerecError, match="shared by at least 5 items"):
        encode_knowledge_graph(kg_file, link_file, tiny_dataset_dir, min_entity_items=5)
    assert not (tiny_dataset_dir / "kg_feat.npy").exists()


def test_movielens_freebase_graph(shared_data, tmp_path):
    source = shared_data / "ml-100k"
    import_interactions(
        source / "ml-100k.inter",
        tmp_path / "ml",
        ImportOptions("user_id", "item_id", rating_col="rating", min_rating=4, seed=999),
    )
    started = time.perf_counter()
    report = encode_knowledge_graph(source / "ml-100k.kg", source / "ml-100k.link", tmp_path / "ml", dim=64)
    elapsed = time.perf_counter() - started
    print(f"ML-100k KG: {report['encoded']}/{report['n_items']} items encoded in {elapsed:.1f}s")
    assert report["n_items"] == 1447 and report["kg_triples"] == 91631
    assert report["encoded"] == report["items_with_features"] - report["items_zero_after_reduction"]
    assert report["coverage"] == pytest.approx(report["encoded"] / 1447)
    assert report["coverage"] > 0.8
    matrix = np.load(tmp_path / "ml" / "kg_feat.npy")
    assert matrix.shape == (1447, 64) and np.isfinite(matrix).all()


def test_encode_kg_command_writes_the_features_and_reports_coverage(kg_files, tiny_dataset_dir):
    from typer.testing import CliRunner

    from sigerec.cli.main import app

    kg_file, link_file = kg_files
    result = CliRunner().invoke(
        app, ["encode", "kg", str(kg_file), "--link", str(link_file), "--data", str(tiny_dataset_dir), "--dim", "3"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # Rich wraps long lines
    assert "wrote kg_feat.npy: 6 items x 3 dims" in output
    assert "encoded 4 (66.7% coverage), mean-filled 2" in output
    assert np.load(tiny_dataset_dir / "kg_feat.npy").shape == (6, 3)
    stats = CliRunner().invoke(app, ["data", "stats", str(tiny_dataset_dir)], env={"COLUMNS": "300"})
    assert stats.exit_code == 0, stats.output
    assert f"coverage 66.7%, from {kg_file.resolve()} + {link_file.resolve()}" in stats.output


def test_encode_kg_command_errors_name_the_file_and_exit_2(kg_files, tiny_dataset_dir, tmp_path):
    from typer.testing import CliRunner

    from sigerec.cli.main import app

    kg_file, _ = kg_files
    absent = tmp_path / "absent.link"
    result = CliRunner().invoke(
        app, ["encode", "kg", str(kg_file), "--link", str(absent), "--data", str(tiny_dataset_dir)]
    )
    assert result.exit_code == 2 and "error:" in result.output and "no such link file" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(
        app, ["encode", "kg", str(kg_file), "--link", str(kg_files[1]), "--data", str(tiny_dataset_dir), "--dim", "0"]
    )
    assert result.exit_code == 2 and "dim must be at least 1, got 0" in " ".join(result.output.split())
