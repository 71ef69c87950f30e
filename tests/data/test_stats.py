"""``dataset_stats``: the numbers ``sigerec data stats`` prints, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_inter
from sigerec.data.stats import dataset_stats

# user 0: 2 train, 1 valid, 1 test (+ one repeated row); user 1: 2 train, 1 test on item 4,
# which no train row has (cold); user 2: valid/test only, so the loader drops both rows.
ROWS = [
    (0, 0, 0), (0, 1, 0), (0, 2, 1), (0, 3, 2), (0, 0, 0),
    (1, 0, 0), (1, 1, 0), (1, 4, 2),
    (2, 1, 1), (2, 2, 2),
]  # fmt: skip


@pytest.fixture
def folder(tmp_path):
    write_inter(tmp_path / "shop", ROWS, name="shop")
    return tmp_path / "shop"


def test_counts_describe_the_data_the_loader_keeps(folder):
    stats = dataset_stats(folder)
    # Sizes are the id spaces (largest id + 1, as the loader): user 2 has only dropped rows.
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 5, 7)
    assert stats["density"] == pytest.approx(7 / (3 * 5))
    assert (stats["train"], stats["valid"], stats["test"]) == (4, 1, 2)


def test_dropped_rows_and_users_without_train_are_counted(folder):
    stats = dataset_stats(folder)
    assert stats["duplicate_rows_dropped"] == 1
    assert stats["users_without_train"] == 1


def test_items_only_in_valid_or_test_are_cold(folder):
    assert dataset_stats(folder)["cold_items"] == 3  # items 2, 3 and 4


def test_interactions_per_user(folder):
    stats = dataset_stats(folder)
    assert (stats["interactions_per_user_mean"], stats["interactions_per_user_median"]) == (3.5, 3.5)


def test_feature_coverage_is_the_share_of_rows_that_are_not_all_zero(folder):
    features = np.ones((5, 3), dtype=np.float32)
    features[[1, 3]] = 0.0
    np.save(folder / "image_feat.npy", features)
    assert dataset_stats(folder)["features"] == {"image": {"dim": 3, "coverage": pytest.approx(0.6), "source": ""}}


def test_builtin_dataset_name_is_accepted():
    stats = dataset_stats("baby")
    assert (stats["users"], stats["items"], stats["interactions"]) == (19445, 7050, 160792)
