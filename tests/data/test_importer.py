"""``import_interactions``: reading, filtering, renumbering, writing and the errors users see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigerec.data.atomic import load_dataset
from sigerec.data.id_maps import read_id_mapping
from sigerec.data.importer import ImportOptions, import_interactions
from sigerec.data.kcore import kcore_filter
from sigerec.data.splitting import SplitMethod
from sigerec.errors import SigerecError

# Three users with 3 interactions each: every user gets exactly 1 train, 1 valid, 1 test row.
THREE_BY_THREE = "user,item\n" + "".join(f"u{u},i{(u + k) % 4}\n" for u in range(3) for k in range(3))


def write_source(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def options(**overrides) -> ImportOptions:
    return ImportOptions(**{"user_col": "user", "item_col": "item", **overrides})


def read_output(folder: Path) -> pd.DataFrame:
    return pd.read_csv(next(folder.glob("*.inter")), sep="\t")


# --- reading ---------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_delimiter_is_sniffed_from_the_header(tmp_path, delimiter):
    source = write_source(tmp_path, THREE_BY_THREE.replace(",", delimiter))
    summary = import_interactions(source, tmp_path / "out", options())
    assert (summary.rows_read, summary.n_users, summary.n_items) == (9, 3, 4)


def test_sep_forces_the_delimiter(tmp_path):
    # Pipes are not sniffed (and the rows hold commas), so only --sep reads this file right.
    source = write_source(tmp_path, "user|item|note\n" + "u1|i1|a,b,c\nu1|i2|x\nu1|i3|y\n")
    summary = import_interactions(source, tmp_path / "out", options(sep="|"))
    assert summary.n_items == 3


def test_parquet_is_read_with_ids_as_strings(tmp_path):
    frame = pd.DataFrame({"user": [1, 1, 1], "item": ["007", "008", "009"]})
    frame.to_parquet(tmp_path / "ratings.parquet")
    import_interactions(tmp_path / "ratings.parquet", tmp_path / "out", options())
    assert list(read_id_mapping(tmp_path / "out" / "i_id_mapping.csv")) == ["007", "008", "009"]
    assert list(read_id_mapping(tmp_path / "out" / "u_id_mapping.csv")) == ["1"]


def test_recbole_type_suffixes_are_stripped_from_the_header(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\n1\t10\t5\n1\t11\t4\n1\t12\t3\n"
    source = write_source(tmp_path, text, "ml.inter")
    summary = import_interactions(source, tmp_path / "out", options(user_col="user_id", item_col="item_id"))
    assert summary.rows_read == 3


def test_iso_date_timestamps_are_converted_to_unix_seconds(tmp_path):
    text = "user,item,when\nu,a,1970-01-02\nu,b,1970-01-01T00:01:00\nu,c,1970-01-01\n"
    import_interactions(write_source(tmp_path, text), tmp_path / "out", options(time_col="when"))
    assert sorted(read_output(tmp_path / "out")["timestamp"]) == [0, 60, 86400]


# --- filtering -------------------------------------------------------------------------


def test_min_rating_keeps_rows_rated_at_least_the_threshold(tmp_path):
    text = "user,item,stars\n" + "".join(f"u,i{k},{k}\n" for k in range(1, 6))
    summary = import_interactions(
        write_source(tmp_path, text), tmp_path / "out", options(rating_col="stars", min_rating=3)
    )
    assert summary.dropped_below_min_rating == 2
    assert sorted(read_output(tmp_path / "out")["rating"]) == [3, 4, 5]


def test_repeated_pairs_keep_the_earliest_by_time_and_are_counted(tmp_path):
    text = "user,item,time,stars\nu,a,50,1\nu,a,10,2\nu,a,30,3\nu,b,1,5\nu,c,2,5\n"
    summary = import_interactions(
        write_source(tmp_path, text), tmp_path / "out", options(time_col="time", rating_col="stars")
    )
    output = read_output(tmp_path / "out")
    assert summary.dropped_duplicates == 2
    assert "2 repeated (user, item) rows" in summary.warnings[0]
    assert output.loc[output["itemID"] == 0, ["timestamp", "rating"]].values.tolist() == [[10, 2]]


def test_repeated_pairs_without_time_keep_the_first_in_the_file(tmp_path):
    text = "user,item,stars\nu,a,1\nu,a,2\nu,b,5\nu,c,5\n"
    import_interactions(write_source(tmp_path, text), tmp_path / "out", options(rating_col="stars"))
    output = read_output(tmp_path / "out")
    assert output.loc[output["itemID"] == 0, "rating"].tolist() == [1]


def test_kcore_result_meets_both_thresholds():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 60, 800), rng.zipf(1.5, 800) % 90
    core = kcore_filter(users, items, min_user=5, min_item=4)
    assert core.keep.any()
    assert np.unique(users[core.keep], return_counts=True)[1].min() >= 5
    assert np.unique(items[core.keep], return_counts=True)[1].min() >= 4


def test_kcore_removal_cascades_until_stable():
    # Item 2 has one row -> dropped; then user 1 has one row left (< 2) -> dropped too.
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 2, 0, 1])
    core = kcore_filter(users, items, min_user=2, min_item=2)
    assert core.keep.tolist() == [True, True, False, False, True, True]
    assert (core.removed_rows, core.removed_users, core.removed_items) == (2, 1, 1)


def test_kcore_counts_are_reported_in_the_summary(tmp_path):
    text = "user,item\n" + "".join(f"u{u},i{k}\n" for u in range(3) for k in range(3)) + "loner,i0\n"
    summary = import_interactions(write_source(tmp_path, text), tmp_path / "out", options(min_user_interactions=2))
    assert (summary.dropped_by_kcore, summary.n_users) == (1, 3)


# --- renumbering and writing -----------------------------------------------------------


def test_ids_are_renumbered_from_zero_in_order_of_first_appearance(tmp_path):
    text = "user,item\nzed,x\namy,y\nzed,y\namy,z\nzed,z\namy,x\n"
    import_interactions(write_source(tmp_path, text), tmp_path / "out", options())
    assert list(read_id_mapping(tmp_path / "out" / "u_id_mapping.csv")) == ["zed", "amy"]
    assert list(read_id_mapping(tmp_path / "out" / "i_id_mapping.csv")) == ["x", "y", "z"]


def test_id_maps_round_trip_and_keep_leading_zeros(tmp_path):
    text = "user,item\n007,01\n007,1\n007,001\n7,01\n7,1\n7,001\n"
    import_interactions(write_source(tmp_path, text), tmp_path / "out", options())
    users = read_id_mapping(tmp_path / "out" / "u_id_mapping.csv")
    items = read_id_mapping(tmp_path / "out" / "i_id_mapping.csv")
    output = read_output(tmp_path / "out")
    pairs = sorted(zip(users[output["userID"]], items[output["itemID"]]))
    assert pairs == sorted((u, i) for u in ("007", "7") for i in ("01", "1", "001"))
    assert (tmp_path / "out" / "u_id_mapping.csv").read_text().splitlines()[0] == "raw_id\tuserID"


def test_output_is_an_mmrec_folder_that_load_dataset_reads(tmp_path):
    text = "user,item,t,r\n" + "".join(f"u{u},i{k},{k},4\n" for u in range(4) for k in range(5))
    import_interactions(write_source(tmp_path, text), tmp_path / "shop", options(time_col="t", rating_col="r"))
    inter = tmp_path / "shop" / "shop.inter"
    assert inter.read_bytes().splitlines()[0] == b"userID\titemID\trating\ttimestamp\tx_label"
    assert b"\r" not in inter.read_bytes()
    dataset = load_dataset(tmp_path / "shop")
    assert (dataset.n_users, dataset.n_items, dataset.n_train) == (4, 5, 12)


def test_temporal_loo_puts_each_users_latest_row_in_test(tmp_path):
    text = "user,item,t\nu,a,3\nu,b,1\nu,c,2\n"
    import_interactions(
        write_source(tmp_path, text), tmp_path / "out", options(time_col="t", split=SplitMethod.TEMPORAL_LOO)
    )
    output = read_output(tmp_path / "out")
    assert output.set_index("timestamp")["x_label"].to_dict() == {1: 0, 2: 1, 3: 2}


def test_split_none_keeps_the_given_labels(tmp_path):
    text = "user\titem\tx_label\nu\ta\ttrain\nu\tb\tvalid\nu\tc\ttest\nv\ta\t0\n"
    summary = import_interactions(write_source(tmp_path, text), tmp_path / "out", options(split=SplitMethod.NONE))
    assert summary.split_sizes == {"train": 2, "valid": 1, "test": 1}


def test_rerunning_the_same_import_into_the_same_folder_is_allowed(tmp_path):
    source = write_source(tmp_path, THREE_BY_THREE)
    import_interactions(source, tmp_path / "out", options(seed=1))
    assert import_interactions(source, tmp_path / "out", options(seed=1)).warnings == []


def test_force_replaces_a_different_dataset(tmp_path):
    source = write_source(tmp_path, THREE_BY_THREE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.inter").write_text("userID\titemID\tx_label\n0\t0\t0\n")
    summary = import_interactions(source, tmp_path / "out", options(), force=True)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.inter")) == ["out.inter"]
    assert "replaced" in summary.warnings[0]


# --- errors name the file, line and column ----------------------------------------------


def import_error(tmp_path: Path, text: str, **option_overrides) -> str:
    source = write_source(tmp_path, text)
    with pytest.raises(SigerecError) as error:
        import_interactions(source, tmp_path / "out", options(**option_overrides))
    return str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SigerecError, match="nope.csv: no such file"):
        import_interactions(tmp_path / "nope.csv", tmp_path / "out", options())


def test_empty_file_is_an_error(tmp_path):
    assert "ratings.csv: the file is empty" in import_error(tmp_path, "")


def test_header_without_rows_is_an_error(tmp_path):
    assert "header but no rows" in import_error(tmp_path, "user,item\n")


def test_misspelt_column_suggests_the_closest_name(tmp_path):
    message = import_error(tmp_path, "user_id,item\nu,a\n", user_col="userid")
    assert "ratings.csv, line 1: no column 'userid' (given by --user-col)" in message
    assert "Did you mean 'user_id'?" in message
    assert "The columns are: user_id, item." in message


def test_empty_id_names_its_line_and_column(tmp_path):
    message = import_error(tmp_path, "user,item\nu,a\n\nu,\n")  # the blank line 3 still counts
    assert "ratings.csv, line 4, column 'item': '' is an empty id" in message


def test_non_numeric_rating_names_its_line(tmp_path):
    message = import_error(tmp_path, "user,item,stars\nu,a,5\nu,b,five\n", rating_col="stars")
    assert "ratings.csv, line 3, column 'stars': 'five' is not a number" in message


def test_unparseable_timestamp_names_its_line(tmp_path):
    message = import_error(tmp_path, "user,item,t\nu,a,2021-01-01\nu,b,yesterday\n", time_col="t")
    assert "ratings.csv, line 3, column 't': 'yesterday' is neither a number" in message


def test_unknown_split_label_names_its_line(tmp_path):
    message = import_error(tmp_path, "user,item,x_label\nu,a,0\nu,b,holdout\n", split=SplitMethod.NONE)
    assert "ratings.csv, line 3, column 'x_label': 'holdout' is not a split label" in message


def test_min_rating_without_rating_column_is_an_error(tmp_path):
    assert "--min-rating needs --rating-col" in import_error(tmp_path, THREE_BY_THREE, min_rating=4)


def test_temporal_loo_without_time_column_is_an_error(tmp_path):
    assert "give --time-col" in import_error(tmp_path, THREE_BY_THREE, split=SplitMethod.TEMPORAL_LOO)


def test_split_that_leaves_valid_and_test_empty_is_an_error(tmp_path):
    message = import_error(tmp_path, "user,item\nu,a\nu,b\nv,a\n")
    assert "ratings.csv: the mmrec split leaves valid and test empty" in message


def test_filters_that_leave_nothing_are_an_error(tmp_path):
    text = "user,item,stars\nu,a,1\nu,b,2\n"
    message = import_error(tmp_path, text, rating_col="stars", min_rating=5, min_user_interactions=2)
    assert "no interactions are left after filtering (2 read; dropped 2 below --min-rating 5" in message


def test_output_folder_with_a_different_dataset_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.inter").write_text("userID\titemID\tx_label\n0\t0\t0\n")
    message = import_error(tmp_path, THREE_BY_THREE)
    assert "already holds a different dataset (old.inter)" in message
    assert "--force" in message
