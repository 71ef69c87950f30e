"""``add_items``: new items get the vector of the model's cold-item rule, and bad requests are refused."""

from __future__ import annotations

import numpy as np
import pytest

from new_item_folders import GENRES, WARM_ITEMS, items_ready_folder, write_items_ready_export
from sigerec.serving.cold_items import CannotAddItemsError
from sigerec.serving.model_folder import ModelFolder, save_model_folder
from sigerec.serving.new_items import EncoderPaths, ExistingItemError, InvalidItemsError, add_items, items_table

FIELDS = ["movie", "genres", "title"]


def table(*items: dict):
    return items_table(list(items), FIELDS)


def test_a_new_item_with_a_warm_items_content_gets_that_items_vector():
    folder = items_ready_folder(k=1)
    new = add_items(folder, table({"movie": "new1", "genres": GENRES[2], "title": "Brand new"}))
    np.testing.assert_array_equal(new.item_vectors[-1], folder.item_vectors[2])
    assert list(new.item_ids[-1:]) == ["new1"] and new.titles[-1] == "Brand new"
    np.testing.assert_array_equal(new.item_features["genre"][-1], folder.item_features["genre"][2])


def test_a_new_items_vector_averages_its_k_nearest_warm_items():
    folder = items_ready_folder(k=3)
    # "action" alone is equally close (cosine 0.71) to the four warm items m0..m3 that carry it;
    # ties go to the lower index, so m0, m1 and m2.
    new = add_items(folder, table({"movie": "new1", "genres": "action", "title": ""}))
    np.testing.assert_allclose(new.item_vectors[-1], folder.item_vectors[:3].mean(axis=0), rtol=1e-6)


def test_with_norm_neighbours_the_mean_takes_its_neighbours_mean_length():
    folder = items_ready_folder(k=3, norm="neighbours")
    new = add_items(folder, table({"movie": "new1", "genres": "action", "title": ""}))
    mean = folder.item_vectors[:3].mean(axis=0)
    lengths = np.linalg.norm(folder.item_vectors[:3], axis=1).mean()
    np.testing.assert_allclose(new.item_vectors[-1], mean / np.linalg.norm(mean) * lengths, rtol=1e-5)


def test_added_items_are_appended_cold_and_the_old_folder_is_untouched():
    folder = items_ready_folder()
    before = folder.item_vectors.copy()
    items = [{"movie": f"n{i}", "genres": GENRES[i], "title": ""} for i in range(3)]
    new = add_items(folder, table(*items))
    n = len(GENRES)
    assert new.item_vectors.shape == (n + 3, before.shape[1]) and new.seen.shape == (folder.seen.shape[0], n + 3)
    assert new.seen[:, n:].nnz == 0 and new.manifest["n_items"] == n + 3 and new.manifest["items_added"] == 3
    assert list(new.titles[n:]) == ["", "", ""]
    assert len(folder.item_ids) == n and "items_added" not in folder.manifest
    np.testing.assert_array_equal(folder.item_vectors, before)


def test_labels_the_model_never_saw_are_ignored_and_other_modalities_still_count():
    folder = items_ready_folder()
    new = add_items(folder, table({"movie": "n", "genres": "western|drama|horror", "title": ""}))
    np.testing.assert_array_equal(new.item_vectors[-1], folder.item_vectors[7])  # m7 is drama|horror


def test_a_saved_folder_loads_with_its_new_items(tmp_path):
    out = write_items_ready_export(tmp_path / "model")
    folder = ModelFolder.load(out)
    new = add_items(folder, table({"movie": "n", "genres": GENRES[1], "title": "T"}))
    saved = save_model_folder(new, out)
    loaded = ModelFolder.load(out)
    assert list(loaded.item_ids) == list(new.item_ids) and loaded.manifest == saved.manifest
    np.testing.assert_array_equal(loaded.item_features["genre"], new.item_features["genre"])
    assert (out / "config.yaml").read_text() == "model: sige\n"  # the run's files are carried over


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"can_score": False}, "cannot represent an item without interactions"),
        ({"rule": "none"}, "retrain with --set cold_item_rule=warm_neighbours"),
        ({"rule": None}, "its own way"),  # contentknn: no cold_item_rule setting
    ],
)
def test_models_that_cannot_take_new_items_are_refused(record, message):
    with pytest.raises(CannotAddItemsError, match=message):
        add_items(items_ready_folder(**record), table({"movie": "n", "genres": "action", "title": ""}))


def test_an_export_without_a_cold_item_record_is_refused():
    folder = items_ready_folder()
    del folder.manifest["cold_items"]
    with pytest.raises(CannotAddItemsError, match="export the run again"):
        add_items(folder, table({"movie": "n", "genres": "action", "title": ""}))


def test_an_existing_or_repeated_item_id_is_refused():
    folder = items_ready_folder()
    with pytest.raises(ExistingItemError, match="item 'm3' is already in the model"):
        add_items(folder, table({"movie": "m3", "genres": "action", "title": ""}))
    with pytest.raises(ExistingItemError, match="item 'n' is given twice"):
        add_items(folder, table(*[{"movie": "n", "genres": "action", "title": ""}] * 2))


def test_missing_fields_no_content_and_empty_lists_are_refused():
    folder = items_ready_folder()
    with pytest.raises(InvalidItemsError, match="item 1 lacks the field 'genres'"):
        table({"movie": "a", "genres": "action", "title": ""}, {"movie": "b", "title": ""})
    with pytest.raises(InvalidItemsError, match="item 0, field 'genres' must be a string or a number"):
        table({"movie": "a", "genres": None, "title": ""})
    with pytest.raises(InvalidItemsError, match="no items"):
        items_table([], FIELDS)
    with pytest.raises(InvalidItemsError, match="item 'b' has no content in any modality"):
        add_items(
            folder,
            table({"movie": "a", "genres": "drama", "title": ""}, {"movie": "b", "genres": "western", "title": ""}),
        )
    with pytest.raises(InvalidItemsError, match="the item id is empty"):
        add_items(folder, table({"movie": " ", "genres": "drama", "title": ""}))


def test_a_text_encoder_missing_on_this_machine_names_the_option_to_pass(tmp_path):
    folder = items_ready_folder()
    record = folder.manifest["cold_items"]
    record["encoders"]["genre"] = {"kind": "text", "model": str(tmp_path / "gone"), "columns": ["genres"]}
    with pytest.raises(CannotAddItemsError, match="does not exist on this machine; pass --text-model PATH"):
        add_items(folder, table({"movie": "n", "genres": "action", "title": ""}))
    with pytest.raises(CannotAddItemsError, match=r"--text-model .*elsewhere: not found"):
        add_items(
            folder, table({"movie": "n", "genres": "a", "title": ""}), EncoderPaths(text_model=tmp_path / "elsewhere")
        )


def test_text_items_are_encoded_by_the_recorded_sentence_model():
    """The bundled all-MiniLM-L6-v2: a new item with a warm item's exact text gets its vector."""
    pytest.importorskip("sentence_transformers")
    from sigerec.features.text import TextEncoder, default_text_model_path

    model = default_text_model_path()
    texts = ["red wooden toy train", "organic baby shampoo", "stainless steel bottle", "cotton sleeping bag"]
    encoder = TextEncoder(["name"], model)
    folder = items_ready_folder()
    folder = ModelFolder(**{**folder.__dict__, "item_features": {"genre": np.zeros((len(GENRES), 384), np.float32)}})
    folder.item_features["genre"][: len(texts)] = encoder.encode(texts)
    folder.manifest["cold_items"]["encoders"]["genre"] = {**encoder.identity(), "model": str(model)}
    folder.manifest["cold_items"]["fields"] = ["movie", "name"]
    new = add_items(folder, items_table([{"movie": "n", "name": texts[3]}], ["movie", "name"]))
    np.testing.assert_array_equal(new.item_vectors[-1], folder.item_vectors[3])
    assert WARM_ITEMS > len(texts)
