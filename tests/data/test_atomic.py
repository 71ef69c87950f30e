"""``load_dataset``: what an MMRec folder loads into, and the message every bad input gets.

Every error names the file, the line (the header is line 1) or the column/field, and says
what to do, so that users fix their data without reading the loader.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from conftest import write_inter
from sigerec.data.atomic import load_dataset
from sigerec.errors import SigerecError

HEADER = "userID\titemID\tx_label"
# Two users x three items, every user in train, valid and test.
SIX_ROWS = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 1, 0), (1, 2, 1), (1, 0, 2)]


def load_error(folder: Path) -> str:
    """The message of the SigerecError that loading ``folder`` raises."""
    with pytest.raises(SigerecError) as caught:
        load_dataset(folder, warn=lambda message: None)
    return str(caught.value)


def write_raw(folder: Path, content: bytes, name: str = "shop.inter") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def split_pairs(dataset, split: str) -> set[tuple[int, int]]:
    matrix = dataset.split(split).tocoo()
    return set(zip(matrix.row.tolist(), matrix.col.tolist()))


# --- what a valid folder loads into ----------------------------------------------------


def test_rows_go_to_the_split_named_by_x_label(tmp_path):
    write_inter(tmp_path / "shop", SIX_ROWS, name="shop")
    dataset = load_dataset(tmp_path / "shop")
    assert split_pairs(dataset, "train") == {(0, 0), (1, 1)}
    assert split_pairs(dataset, "valid") == {(0, 1), (1, 2)}
    assert split_pairs(dataset, "test") == {(0, 2), (1, 0)}


def test_dataset_is_named_after_the_interaction_file(tmp_path):
    write_inter(tmp_path / "folder", SIX_ROWS, name="shop")
    assert load_dataset(tmp_path / "folder").name == "shop"


def test_sizes_are_the_largest_id_plus_one(tmp_path):
    # Ids 0..6 for users and 0..9 for items, with gaps: MMRec sizes by the largest id.
    rows = [(0, 0, 0), (6, 9, 0), (6, 3, 1), (6, 4, 2), (0, 5, 1), (0, 1, 2)]
    write_inter(tmp_path / "shop", rows, name="shop")
    dataset = load_dataset(tmp_path / "shop")
    assert (dataset.n_users, dataset.n_items) == (7, 10)
    assert dataset.train.shape == dataset.valid.shape == dataset.test.shape == (7, 10)


def test_items_seen_only_in_dropped_rows_still_count_towards_the_size(tmp_path):
    # Item 5 occurs only in a test row of user 2, who has no training rows; MMRec still
    # sizes the item table over the whole file, so a feature file with 6 rows matches.
    rows = [*SIX_ROWS, (2, 5, 2)]
    folder = tmp_path / "shop"
    write_inter(folder, rows, name="shop")
    np.save(folder / "image_feat.npy", np.ones((6, 2)))
    dataset = load_dataset(folder, warn=lambda message: None)
    assert (dataset.n_users, dataset.n_items) == (3, 6)
    assert dataset.features["image"].shape == (6, 2)


def test_rating_and_timestamp_columns_are_accepted_and_ignored(tmp_path):
    rows = [(u, i, 5, 1_600_000_000 + n, label) for n, (u, i, label) in enumerate(SIX_ROWS)]
    write_inter(tmp_path / "shop", rows, name="shop", header="userID\titemID\trating\ttimestamp\tx_label")
    dataset = load_dataset(tmp_path / "shop")
    assert split_pairs(dataset, "train") == {(0, 0), (1, 1)}


def test_crlf_file_loads_exactly_like_the_lf_file(tmp_path):
    lf = write_inter(tmp_path / "lf", SIX_ROWS, name="shop")
    write_raw(tmp_path / "crlf", lf.read_bytes().replace(b"\n", b"\r\n"))
    from_lf, from_crlf = load_dataset(tmp_path / "lf"), load_dataset(tmp_path / "crlf")
    for split in ("train", "valid", "test"):
        assert split_pairs(from_crlf, split) == split_pairs(from_lf, split)


def test_real_crlf_tiktok_file_loads_exactly_like_its_lf_copy(shared_data, tmp_path):
    crlf_file = shared_data / "tiktok" / "tiktok.inter"
    assert b"\r\n" in crlf_file.read_bytes()[:100]
    write_raw(tmp_path / "tiktok", crlf_file.read_bytes().replace(b"\r\n", b"\n"), name="tiktok.inter")
    from_crlf = load_dataset(crlf_file.parent, warn=lambda message: None)
    from_lf = load_dataset(tmp_path / "tiktok", warn=lambda message: None)
    assert (from_crlf.n_users, from_crlf.n_items) == (from_lf.n_users, from_lf.n_items) == (9308, 6710)
    for split in ("train", "valid", "test"):
        assert (from_crlf.split(split) != from_lf.split(split)).nnz == 0


def test_gzipped_interaction_file_loads_like_the_plain_one(tmp_path):
    plain = write_inter(tmp_path / "plain", SIX_ROWS, name="shop")
    (tmp_path / "zipped").mkdir()
    with gzip.open(tmp_path / "zipped" / "shop.inter.gz", "wb") as handle:
        handle.write(plain.read_bytes())
    from_gz = load_dataset(tmp_path / "zipped")
    assert from_gz.name == "shop"
    for split in ("train", "valid", "test"):
        assert split_pairs(from_gz, split) == split_pairs(load_dataset(tmp_path / "plain"), split)


def test_duplicate_pairs_keep_the_first_row_and_are_counted_in_a_warning(tmp_path):
    # (0, 0) appears as train, then again as test: the train row wins.
    write_inter(tmp_path / "shop", [*SIX_ROWS, (0, 0, 2), (1, 1, 0)], name="shop")
    warnings: list[str] = []
    dataset = load_dataset(tmp_path / "shop", warn=warnings.append)
    assert (0, 0) in split_pairs(dataset, "train") and (0, 0) not in split_pairs(dataset, "test")
    assert len(warnings) == 1
    assert "dropped 2 duplicate" in warnings[0] and "shop.inter" in warnings[0]


def test_held_out_rows_of_users_without_train_rows_are_dropped_and_counted(tmp_path):
    write_inter(tmp_path / "shop", [*SIX_ROWS, (2, 0, 1), (2, 1, 2)], name="shop")
    warnings: list[str] = []
    dataset = load_dataset(tmp_path / "shop", warn=warnings.append)
    assert dataset.valid[2].nnz == 0 and dataset.test[2].nnz == 0
    assert len(warnings) == 1
    assert "dropped 2 valid/test rows of users with no training rows" in warnings[0]


def test_nothing_but_the_counted_drops_is_lost(tmp_path):
    # 6 clean rows + 2 duplicates + 3 held-out rows of user 2 (no train) = 11 rows, 5 dropped.
    rows = [*SIX_ROWS, (0, 1, 0), (1, 2, 2), (2, 0, 1), (2, 1, 2), (2, 2, 2)]
    write_inter(tmp_path / "shop", rows, name="shop")
    warnings: list[str] = []
    dataset = load_dataset(tmp_path / "shop", warn=warnings.append)
    dropped = 2 + 3
    assert "dropped 2 duplicate" in warnings[0] and "dropped 3 valid/test" in warnings[1]
    assert dataset.train.nnz + dataset.valid.nnz + dataset.test.nnz == len(rows) - dropped


def test_a_clean_file_gives_no_warning(tmp_path):
    write_inter(tmp_path / "shop", SIX_ROWS, name="shop")
    warnings: list[str] = []
    load_dataset(tmp_path / "shop", warn=warnings.append)
    assert warnings == []


def test_features_load_as_float32_keyed_by_modality(tmp_path):
    folder = tmp_path / "shop"
    write_inter(folder, SIX_ROWS, name="shop")
    image = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.save(folder / "image_feat.npy", image)
    np.save(folder / "text_feat.npy", np.ones((3, 2), dtype=np.float16))
    features = load_dataset(folder).features
    assert sorted(features) == ["image", "text"]
    assert features["image"].dtype == features["text"].dtype == np.float32
    np.testing.assert_array_equal(features["image"], image)
    assert features["text"].shape == (3, 2)


def test_a_folder_without_feature_files_has_no_features(tmp_path):
    write_inter(tmp_path / "shop", SIX_ROWS, name="shop")
    assert load_dataset(tmp_path / "shop").features == {}


# --- the real data sets ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "users", "items", "train", "valid", "test"),
    [
        ("baby", 19_445, 7_050, 119_674, 20_559, 20_559),
        ("clothing", 39_387, 23_033, 197_338, 41_189, 40_150),
        ("sports", 35_598, 18_357, 218_409, 40_029, 37_899),
    ],
)
def test_real_amazon_data_loads_with_the_documented_counts(shared_data, name, users, items, train, valid, test):
    warnings: list[str] = []
    dataset = load_dataset(shared_data / name, warn=warnings.append)
    assert (dataset.n_users, dataset.n_items) == (users, items)
    assert (dataset.train.nnz, dataset.valid.nnz, dataset.test.nnz) == (train, valid, test)
    assert warnings == []


# --- the folder ------------------------------------------------------------------------


def test_missing_folder_is_named_and_import_is_suggested(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message
    assert "no such dataset folder" in message and "sigerec data import" in message


def test_folder_without_an_interaction_file_says_what_it_needs(tmp_path):
    (tmp_path / "shop").mkdir()
    message = load_error(tmp_path / "shop")
    assert str(tmp_path / "shop") in message
    assert "no <name>.inter file" in message and "userID itemID x_label" in message


def test_folder_with_two_interaction_files_names_both_and_asks_to_keep_one(tmp_path):
    write_inter(tmp_path / "shop", SIX_ROWS, name="a")
    write_inter(tmp_path / "shop", SIX_ROWS, name="b")
    message = load_error(tmp_path / "shop")
    assert str(tmp_path / "shop") in message
    assert "a.inter, b.inter" in message and "keep exactly one" in message


# --- the header ------------------------------------------------------------------------


def test_misspelt_column_is_reported_on_line_1_with_the_right_name(tmp_path):
    path = write_inter(tmp_path / "shop", SIX_ROWS, name="shop", header="userId\titemID\tx_label")
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 1" in message
    assert "missing column(s) 'userID' (found 'userId': rename it)" in message


def test_missing_column_is_not_matched_to_a_column_that_is_already_required(tmp_path):
    # 'userID' is close to 'itemID' but is needed itself: renaming it would break the file.
    path = write_inter(tmp_path / "shop", [(0, 0), (0, 1)], name="shop", header="userID\tx_label")
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 1: missing column(s) 'itemID'." in message
    assert "rename" not in message


def test_space_separated_header_is_reported_as_not_tab_separated(tmp_path):
    path = write_raw(tmp_path / "shop", b"userID itemID x_label\n0 0 0\n0 1 1\n0 2 2\n")
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 1" in message
    assert "not tab separated" in message and "Separate the columns with tabs" in message


# --- the rows --------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["3.5", "abc", "-1", "", "99999999999999999999"])
def test_bad_user_id_is_reported_with_its_line_and_column(tmp_path, bad_id):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n0\t0\t0\n{bad_id}\t1\t0\n0\t1\t1\n0\t2\t2\n".encode())
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 3, column 'userID': {bad_id!r} is not a non-negative integer id" in message
    assert "fix or remove them" in message


def test_negative_item_id_is_reported_with_its_line_and_column(tmp_path):
    path = write_inter(tmp_path / "shop", [*SIX_ROWS, (1, -4, 0)], name="shop")
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 8, column 'itemID': '-4' is not a non-negative integer id" in message


def test_bad_rows_are_counted_and_the_first_is_shown(tmp_path):
    write_inter(tmp_path / "shop", [*SIX_ROWS, (0, "x", 0), (1, "y", 0)], name="shop")
    message = load_error(tmp_path / "shop")
    assert "line 8, column 'itemID': 'x'" in message and "2 row(s) have this problem" in message


@pytest.mark.parametrize("label", ["3", "-1", "train", "1.5"])
def test_x_label_outside_0_1_2_is_reported_with_its_line(tmp_path, label):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n0\t0\t0\n0\t1\t{label}\n".encode())
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 3, column 'x_label': {label!r} is not one of 0/1/2 (train/valid/test)" in message
    assert "fix or remove them" in message


def test_row_with_too_many_fields_is_reported_with_its_line(tmp_path):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n0\t0\t0\n0\t1\t1\t9\n0\t2\t2\n".encode())
    message = load_error(tmp_path / "shop")
    assert str(path) in message and "line 3" in message
    assert "one tab-separated value per header column" in message


# --- empty files and empty splits ------------------------------------------------------


def test_empty_file_asks_for_a_header_and_rows(tmp_path):
    path = write_raw(tmp_path / "shop", b"")
    message = load_error(tmp_path / "shop")
    assert f"{path}: the file is empty" in message and "header 'userID itemID x_label'" in message


def test_header_only_file_asks_for_rows_after_line_1(tmp_path):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n".encode())
    message = load_error(tmp_path / "shop")
    assert f"{path}: the file has a header but no interaction rows" in message
    assert "after line 1" in message


@pytest.mark.parametrize(("split", "label"), [("valid", 1), ("test", 2)])
def test_empty_held_out_split_names_its_x_label_and_how_to_resplit(tmp_path, split, label):
    rows = [row for row in SIX_ROWS if row[2] != label]
    path = write_inter(tmp_path / "shop", rows, name="shop")
    message = load_error(tmp_path / "shop")
    assert f"{path}: the {split} split is empty (no rows with x_label={label})" in message
    assert "sigerec data import --split mmrec" in message


def test_file_whose_users_all_lack_train_rows_reports_the_empty_train_split(tmp_path):
    path = write_inter(tmp_path / "shop", [(0, 0, 1), (0, 1, 2)], name="shop")
    message = load_error(tmp_path / "shop")
    assert f"{path}: the train split is empty (no rows with x_label=0)" in message


# --- unreadable interaction files ------------------------------------------------------


def test_binary_garbage_is_reported_as_not_utf8_text(tmp_path):
    path = write_raw(tmp_path / "shop", b"PAR1\x15\x04\x15\x80\x01\x00\xff\xfe" * 20)
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 1: byte 0x80 is not UTF-8 text" in message
    assert "Save it as UTF-8 text" in message and "sigerec data import" in message


def test_invalid_utf8_is_reported_on_its_line(tmp_path):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n0\t0\t0\n".encode() + b"\xe9\t1\t1\n")
    message = load_error(tmp_path / "shop")
    assert f"{path}, line 3: byte 0xe9 is not UTF-8 text" in message


def test_gz_file_that_is_not_gzip_is_reported(tmp_path):
    path = write_raw(tmp_path / "shop", f"{HEADER}\n0\t0\t0\n".encode(), name="shop.inter.gz")
    message = load_error(tmp_path / "shop")
    assert f"{path}: cannot be read" in message and "a .gz name needs gzip content" in message


# --- feature files ---------------------------------------------------------------------


@pytest.fixture
def shop_with_three_items(tmp_path) -> Path:
    folder = tmp_path / "shop"
    write_inter(folder, SIX_ROWS, name="shop")
    return folder


def test_feature_file_with_wrong_row_count_names_both_counts(shop_with_three_items):
    path = shop_with_three_items / "image_feat.npy"
    np.save(path, np.ones((5, 2)))
    message = load_error(shop_with_three_items)
    assert f"{path}: 5 rows but the dataset has 3 items" in message
    assert "row i must be item i" in message and "Re-encode" in message


@pytest.mark.parametrize(("bad_value", "bad_row"), [(np.nan, 1), (np.inf, 2), (-np.inf, 0)])
def test_nan_or_inf_in_features_names_the_first_bad_row(shop_with_three_items, bad_value, bad_row):
    path = shop_with_three_items / "text_feat.npy"
    features = np.ones((3, 2))
    features[bad_row, 1] = bad_value
    np.save(path, features)
    message = load_error(shop_with_three_items)
    assert f"{path}, row {bad_row} (item {bad_row}): contains NaN or inf" in message
    assert "Replace them" in message


def test_feature_file_that_is_not_npy_says_how_to_save_one(shop_with_three_items):
    path = shop_with_three_items / "image_feat.npy"
    path.write_bytes(b"item,f1\n0,0.5\n")
    message = load_error(shop_with_three_items)
    assert f"{path}: cannot be read as a NumPy .npy array" in message
    assert "numpy.save" in message


def test_feature_file_of_objects_is_refused_without_unpickling(shop_with_three_items):
    path = shop_with_three_items / "image_feat.npy"
    np.save(path, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    message = load_error(shop_with_three_items)
    assert f"{path}: cannot be read as a NumPy .npy array" in message


def test_one_dimensional_feature_file_asks_for_items_by_dim(shop_with_three_items):
    path = shop_with_three_items / "image_feat.npy"
    np.save(path, np.ones(3))
    message = load_error(shop_with_three_items)
    assert f"{path}: expected a 2-d array [items, dim], found shape (3,)" in message
    assert "numpy.save" in message


def test_feature_file_of_strings_is_refused(shop_with_three_items):
    path = shop_with_three_items / "image_feat.npy"
    np.save(path, np.array([["a"], ["b"], ["c"]]))
    message = load_error(shop_with_three_items)
    assert f"{path}: dtype <U1 is not numeric" in message
    assert "numpy.save" in message


def test_clean_files_take_the_fast_path_with_the_careful_paths_result(tmp_path):
    from sigerec.data import atomic

    path = tmp_path / "x.inter"
    path.write_text("userID\titemID\tx_label\n0\t3\t0\n2\t1\t2\n1\t0\t1\n")
    fast = atomic._read_clean_integers(path)
    assert fast is not None
    frame = atomic._read_table(path)
    careful = [atomic.parse_id_column(frame[c], path, c) for c in atomic.REQUIRED_COLUMNS]
    for got, expected in zip(fast, careful):
        np.testing.assert_array_equal(got, expected)
    path.write_text("userID\titemID\tx_label\n0\t3\t0\n2\t1\t7\n")  # a bad label: the careful path explains it
    assert atomic._read_clean_integers(path) is None
