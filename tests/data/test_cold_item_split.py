"""Item cold-start split (``--split cold-items``): whole items held out, half to valid, half to test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigerec.data.atomic import load_dataset
from sigerec.data.feature_files import write_feature_file
from sigerec.data.id_maps import read_id_mapping
from sigerec.data.importer import ImportOptions, import_interactions
from sigerec.data.splitting import TEST, TRAIN, VALID, SplitMethod, cold_item_split
from sigerec.data.stats import dataset_stats
from sigerec.errors import SigerecError

N_USERS, N_ITEMS = 60, 50


def random_interactions(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every user rates 12 distinct items; every item is used (codes 0..N_ITEMS-1)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(N_USERS), 12)
    items = np.concatenate([rng.choice(N_ITEMS, 12, replace=False) for _ in range(N_USERS)])
    items[:N_ITEMS] = np.arange(N_ITEMS)  # so that no item code is unused
    return users, items


def items_with(labels: np.ndarray, items: np.ndarray, label: int) -> set[int]:
    return set(items[labels == label].tolist())


# --- the split itself ------------------------------------------------------------------


def test_valid_and_test_items_are_disjoint_and_never_in_train():
    _, items = random_interactions()
    labels = cold_item_split(items, 0.2, seed=3).labels
    valid, test, train = (items_with(labels, items, label) for label in (VALID, TEST, TRAIN))
    assert valid and test
    assert not valid & test
    assert not (valid | test) & train


def test_every_row_of_a_warm_item_is_in_train_and_every_row_of_a_cold_item_is_held_out():
    _, items = random_interactions()
    labels = cold_item_split(items, 0.2, seed=3).labels
    cold = items_with(labels, items, VALID) | items_with(labels, items, TEST)
    is_cold_row = np.isin(items, list(cold))
    assert (labels[~is_cold_row] == TRAIN).all()
    assert (labels[is_cold_row] != TRAIN).all()


def test_the_fraction_of_items_is_held_out_in_two_halves():
    _, items = random_interactions()
    labels = cold_item_split(items, 0.2, seed=3).labels
    # int(0.2 * 50) = 10 cold items: 5 to valid, 5 to test (valid takes the smaller half when odd).
    assert len(items_with(labels, items, VALID)) == 5
    assert len(items_with(labels, items, TEST)) == 5
    odd = cold_item_split(items, 0.22, seed=3).labels  # int(11.0) = 11
    assert (len(items_with(odd, items, VALID)), len(items_with(odd, items, TEST))) == (5, 6)


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    _, items = random_interactions()
    first = cold_item_split(items, 0.2, seed=7).labels
    assert np.array_equal(first, cold_item_split(items, 0.2, seed=7).labels)
    assert not np.array_equal(first, cold_item_split(items, 0.2, seed=8).labels)


def test_cold_items_are_drawn_only_among_eligible_items():
    _, items = random_interactions()
    eligible = np.zeros(N_ITEMS, dtype=bool)
    eligible[10:25] = True
    labels = cold_item_split(items, 0.2, seed=0, eligible=eligible).labels
    cold = items_with(labels, items, VALID) | items_with(labels, items, TEST)
    assert len(cold) == 10 and cold <= set(range(10, 25))


# --- through the importer and the loader ----------------------------------------------------


def write_source(tmp_path: Path) -> Path:
    users, items = random_interactions()
    path = tmp_path / "ratings.csv"
    pd.DataFrame({"user": [f"u{u}" for u in users], "item": [f"i{i}" for i in items]}).to_csv(path, index=False)
    return path


def cold_options(**overrides) -> ImportOptions:
    return ImportOptions(**{"user_col": "user", "item_col": "item", "split": SplitMethod.COLD_ITEMS, **overrides})


def test_import_reports_cold_items_and_the_loader_keeps_them(tmp_path):
    summary = import_interactions(write_source(tmp_path), tmp_path / "shop", cold_options(seed=1))
    assert summary.cold_items == {"valid": 5, "test": 5}

    dataset = load_dataset(tmp_path / "shop", warn=pytest.fail)  # no user loses every item here
    assert dataset.n_items == N_ITEMS  # cold items count, though no train row has them
    cold_valid = set(dataset.valid.indices.tolist())
    cold_test = set(dataset.test.indices.tolist())
    assert len(cold_valid) == 5 and len(cold_test) == 5
    assert not (cold_valid | cold_test) & set(dataset.train.indices.tolist())
    # Users whose held-out items are all cold are evaluated: every user with a valid row keeps it.
    assert dataset.valid.nnz == summary.split_sizes["valid"]

    stats = dataset_stats(tmp_path / "shop")
    assert (stats["warm_items"], stats["cold_items"]) == (N_ITEMS - 10, 10)


def test_users_left_without_train_rows_are_warned_about(tmp_path):
    source = tmp_path / "ratings.csv"
    # u9 only rates i9; every other user rates items 0-8 and 9. Seeds are searched so that i9 is cold.
    rows = [(f"u{u}", f"i{i}") for u in range(9) for i in range(10)] + [("u9", "i9")]
    pd.DataFrame(rows, columns=["user", "item"]).to_csv(source, index=False)
    for seed in range(50):
        summary = import_interactions(source, tmp_path / f"s{seed}", cold_options(seed=seed, cold_fraction=0.2))
        labels = pd.read_csv(next((tmp_path / f"s{seed}").glob("*.inter")), sep="\t")
        if (labels[labels["itemID"] == 9]["x_label"] != TRAIN).all():
            break
    assert any("1 users have no training row" in message for message in summary.warnings)


def test_cold_items_with_content_are_drawn_among_items_the_features_cover(tmp_path):
    source, folder = write_source(tmp_path), tmp_path / "shop"
    import_interactions(source, folder, ImportOptions(user_col="user", item_col="item"))
    raw_ids = read_id_mapping(folder / "i_id_mapping.csv")
    no_content = {item: raw_ids[item] for item in range(15)}  # the encoder mean-filled items 0-14
    write_feature_file(folder, "text", np.ones((N_ITEMS, 4), dtype=np.float32), {}, no_content)

    summary = import_interactions(
        source, folder, cold_options(cold_fraction=0.5, cold_only_with_content="text"), force=True
    )
    assert summary.cold_items == {"valid": 12, "test": 13}
    assert not any("re-encode" in message for message in summary.warnings)  # same items, features still valid
    frame = pd.read_csv(folder / "shop.inter", sep="\t")
    cold = set(frame.loc[frame["x_label"] != TRAIN, "itemID"])
    assert len(cold) == 25 and not cold & set(range(15))


def test_too_few_items_with_content_is_an_error_naming_the_fix(tmp_path):
    source, folder = write_source(tmp_path), tmp_path / "shop"
    import_interactions(source, folder, ImportOptions(user_col="user", item_col="item"))
    raw_ids = read_id_mapping(folder / "i_id_mapping.csv")
    write_feature_file(folder, "text", np.ones((N_ITEMS, 4), dtype=np.float32), {}, dict(enumerate(raw_ids[:45])))
    with pytest.raises(SigerecError, match="only 5 items have text content; lower --cold-fraction"):
        import_interactions(source, folder, cold_options(cold_only_with_content="text"), force=True)


def test_features_encoded_for_another_item_map_are_refused(tmp_path):
    source, folder = write_source(tmp_path), tmp_path / "shop"
    import_interactions(source, folder, ImportOptions(user_col="user", item_col="item"))
    write_feature_file(folder, "text", np.ones((N_ITEMS, 4), dtype=np.float32), {"n_items": 70}, {})
    with pytest.raises(SigerecError, match="encoded for 70 items"):
        import_interactions(source, folder, cold_options(cold_only_with_content="text"), force=True)


def test_content_restriction_without_features_in_the_folder_is_an_error(tmp_path):
    with pytest.raises(SigerecError, match="encode the image features"):
        import_interactions(write_source(tmp_path), tmp_path / "new", cold_options(cold_only_with_content="image"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cold_fraction": 0.0}, "between 0 and 1"),
        ({"cold_fraction": 1.0}, "between 0 and 1"),
        ({"cold_fraction": 0.02}, "at least 2 cold items"),
        ({"split": SplitMethod.MMREC, "cold_only_with_content": "text"}, "--split cold-items"),
    ],
)
def test_impossible_cold_settings_are_errors(tmp_path, overrides, message):
    with pytest.raises(SigerecError, match=message):
        import_interactions(write_source(tmp_path), tmp_path / "shop", cold_options(**overrides))
