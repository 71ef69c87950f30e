"""The ``<modality>_feat.npy`` files: names, reading with checks, writing with provenance."""

import numpy as np
import pytest

from sigerec.data.feature_files import (
    feature_file,
    feature_files,
    missing_items_file,
    provenance_file,
    read_feature_file,
    read_features,
    read_provenance,
    source_files,
    write_feature_file,
)
from sigerec.errors import SigerecError


def test_file_names_map_to_modalities_and_back(tmp_path):
    assert feature_file(tmp_path, "image") == tmp_path / "image_feat.npy"
    assert provenance_file(tmp_path, "image") == tmp_path / "image_feat.json"
    assert missing_items_file(tmp_path, "image") == tmp_path / "image_feat.missing.tsv"
    for name in ("text_feat.npy", "image_feat.npy", "text_feat.json", "notes.npy"):
        (tmp_path / name).write_bytes(b"")
    assert feature_files(tmp_path) == {"image": tmp_path / "image_feat.npy", "text": tmp_path / "text_feat.npy"}


def test_written_features_read_back_with_their_provenance_and_mean_filled_items(tmp_path):
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    provenance = {"modality": "text", "source": "items.csv", "coverage": 2 / 3}
    write_feature_file(tmp_path, "text", features, provenance, {np.int64(1): "B0001"})
    np.testing.assert_array_equal(read_features(tmp_path, 3)["text"], features)
    assert read_provenance(tmp_path, "text") == provenance
    assert missing_items_file(tmp_path, "text").read_text() == "itemID\traw_id\n1\tB0001\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "text_feat.json",
        "text_feat.missing.tsv",
        "text_feat.npy",
    ]


def test_a_modality_that_cannot_name_a_file_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(SigerecError, match="modality name 'a/b' must be letters, digits"):
        write_feature_file(tmp_path, "a/b", np.ones((3, 2), dtype=np.float32), {}, {})
    assert list(tmp_path.iterdir()) == []


def test_features_of_another_dtype_are_read_as_float32(tmp_path):
    np.save(feature_file(tmp_path, "genre"), np.eye(3, dtype=np.int64))
    features = read_feature_file(feature_file(tmp_path, "genre"), 3)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, np.eye(3))


def test_missing_or_unreadable_provenance_is_unknown(tmp_path):
    assert read_provenance(tmp_path, "text") is None
    provenance_file(tmp_path, "text").write_text("{cut off")
    assert read_provenance(tmp_path, "text") is None


def test_source_files_of_an_item_file_and_of_a_knowledge_graph():
    assert source_files({"source": "/data/items.csv"}) == ["/data/items.csv"]
    knowledge_graph = {"source": {"kg_file": "a.kg", "kg_sha256": "00", "link_file": "a.link", "link_sha256": "11"}}
    assert source_files(knowledge_graph) == ["a.kg", "a.link"]
    assert source_files({}) == []
