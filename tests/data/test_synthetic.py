"""``sigerec data synth``'s generator: valid folders, exact reproducibility, informative content."""

from __future__ import annotations

import numpy as np
import pytest

from sigerec.data.atomic import load_dataset
from sigerec.data.importer import ImportOptions, import_interactions
from sigerec.data.stats import dataset_stats
from sigerec.data.synthetic import SynthConfig, item_model, parse_modalities, user_activity, validate
from sigerec.data.synthetic_folder import MARKER_FILE, PARQUET_FILE, read_marker, write_synthetic_dataset
from sigerec.errors import SigerecError

SMALL = SynthConfig(users=600, items=400, interactions=9000, modalities=(("text", 64), ("image", 32)), seed=7)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The SMALL dataset, written once, with its summary."""
    folder = tmp_path_factory.mktemp("synth") / "shop"
    summary = write_synthetic_dataset(SMALL, folder, parquet=True)
    return folder, summary


@pytest.fixture(scope="module")
def dataset(written):
    return load_dataset(written[0], warn=pytest.fail)


def all_rows(dataset):
    return (dataset.train + dataset.valid + dataset.test).tocsr()


# --- the folder ---------------------------------------------------------------------------------


def test_the_folder_loads_with_contiguous_ids_and_nothing_dropped(written, dataset):
    _, summary = written
    assert (dataset.n_users, dataset.n_items) == (SMALL.users, SMALL.items)
    assert dataset.name == "synthetic-shop"
    assert all_rows(dataset).nnz == summary.interactions  # warn=pytest.fail: no repeated pair was dropped
    assert {m: f.shape for m, f in dataset.features.items()} == {"text": (400, 64), "image": (400, 32)}
    assert all(f.dtype == np.float32 for f in dataset.features.values())


def test_the_total_is_close_to_what_was_asked_and_the_summary_counts_exactly(written, dataset):
    _, summary = written
    assert 0.97 * SMALL.interactions <= summary.interactions <= SMALL.interactions
    sizes = {"train": dataset.train.nnz, "valid": dataset.valid.nnz, "test": dataset.test.nnz}
    assert summary.split_sizes == sizes


def test_every_user_has_the_minimum_and_train_valid_and_test_items(dataset):
    assert np.diff(all_rows(dataset).indptr).min() >= SMALL.min_user_interactions
    for split in (dataset.train, dataset.valid, dataset.test):
        assert np.diff(split.indptr).min() >= 1


def test_the_marker_says_synthetic_and_records_every_parameter(written):
    folder, summary = written
    marker = read_marker(folder)
    assert "SYNTHETIC" in marker["notice"]
    assert marker["parameters"]["seed"] == 7
    assert marker["parameters"]["clusters"] == 20  # round(sqrt(400))
    assert marker["parameters"]["modalities"] == {"text": 64, "image": 32}
    assert marker["written"]["interactions"] == summary.interactions
    assert set(marker["parameters"]) == set(SynthConfig.__dataclass_fields__)


def test_stats_show_the_marker_and_feature_source(written):
    stats = dataset_stats(written[0])
    assert stats["synthetic"]["parameters"]["seed"] == 7
    assert stats["features"]["text"]["source"].startswith("synthetic")


def test_stats_of_real_data_have_no_marker(tiny_dataset_dir):
    assert dataset_stats(tiny_dataset_dir)["synthetic"] is None


def test_the_parquet_file_imports_to_the_same_counts(written, tmp_path):
    folder, summary = written
    imported = import_interactions(
        folder / PARQUET_FILE, tmp_path / "imported", ImportOptions(user_col="user_id", item_col="item_id")
    )
    assert (imported.n_users, imported.n_items, imported.interactions) == (600, 400, summary.interactions)
    assert imported.dropped_duplicates == 0


def test_the_same_seed_writes_byte_identical_files(tmp_path):
    config = SynthConfig(users=150, items=90, interactions=1500, modalities=(("text", 8), ("image", 4)), seed=3)
    first = write_synthetic_dataset(config, tmp_path / "a", name="same", parquet=True)
    write_synthetic_dataset(config, tmp_path / "b", name="same", parquet=True)
    for name in (*first.files, "text_feat.json", "text_feat.missing.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = write_synthetic_dataset(SynthConfig(**{**vars(config), "seed": 4}), tmp_path / "c", name="same")
    assert (tmp_path / "c" / other.files[1]).read_bytes() != (tmp_path / "a" / first.files[1]).read_bytes()


def test_a_modalitys_features_do_not_depend_on_the_other_modalities(tmp_path):
    both = SynthConfig(users=50, items=60, interactions=500, modalities=(("text", 8), ("image", 4)))
    write_synthetic_dataset(both, tmp_path / "both")
    write_synthetic_dataset(SynthConfig(**{**vars(both), "modalities": (("text", 8),)}), tmp_path / "text")
    assert (tmp_path / "both" / "text_feat.npy").read_bytes() == (tmp_path / "text" / "text_feat.npy").read_bytes()


def test_a_folder_that_is_not_empty_needs_force_which_removes_stale_dataset_files(written, tmp_path):
    folder = tmp_path / "reused"
    folder.mkdir()
    (folder / "old.inter").write_text("userID\titemID\tx_label\n0\t0\t0\n")
    (folder / "audio_feat.npy").write_bytes(b"stale")
    (folder / "notes.txt").write_text("mine")
    config = SynthConfig(users=40, items=30, interactions=400, modalities=(("text", 4),))
    with pytest.raises(SigerecError, match="is not empty.*--force"):
        write_synthetic_dataset(config, folder)
    write_synthetic_dataset(config, folder, force=True)
    names = {path.name for path in folder.iterdir()}
    assert "old.inter" not in names and "audio_feat.npy" not in names and "notes.txt" in names
    assert MARKER_FILE in names and load_dataset(folder).n_items == 30


# --- the model -----------------------------------------------------------------------------------


def test_user_activity_sums_to_the_asked_total_with_the_minimum_and_a_heavy_tail():
    config = SynthConfig(users=20000, items=100000, interactions=300000)
    activity = user_activity(config, np.random.default_rng(0))
    assert activity.sum() == 300000 and activity.min() == 5
    assert activity.max() > 20 * np.median(activity)


def test_item_popularity_is_heavy_tailed(dataset):
    degree = np.sort(np.asarray(all_rows(dataset).sum(axis=0)).ravel())[::-1]
    assert degree[: len(degree) // 10].sum() > 0.4 * degree.sum()  # the top 10% of items hold over 40%


def test_feature_neighbours_share_their_cluster_far_more_than_chance(dataset):
    cluster = item_model(SMALL).cluster
    for features in dataset.features.values():
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        neighbours = np.argpartition(-similarity, 10, axis=1)[:, :10]
        same_cluster = (cluster[neighbours] == cluster[:, None]).mean()
        assert same_cluster > 5 / SMALL.n_clusters, same_cluster  # chance: 1 in 20


def test_modalities_agree_on_neighbours_without_being_copies(dataset):
    neighbours = {}
    for modality, features in dataset.features.items():
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        neighbours[modality] = np.argsort(-similarity, axis=1)[:, :10]
    overlap = np.mean([len(set(t) & set(i)) / 10 for t, i in zip(neighbours["text"], neighbours["image"])])
    assert 5 * 10 / (SMALL.items - 1) < overlap < 0.9, overlap  # chance: 10 / 399


def test_users_test_items_fall_in_their_train_clusters_more_than_chance(dataset):
    cluster = item_model(SMALL).cluster
    train, test = dataset.train, dataset.test
    users = np.repeat(np.arange(dataset.n_users), np.diff(test.indptr))
    shared = np.zeros(len(users), dtype=bool)
    shuffled = np.zeros(len(users), dtype=bool)
    random_items = np.random.default_rng(0).integers(dataset.n_items, size=len(users))
    for row, (user, item) in enumerate(zip(users, test.indices)):
        train_clusters = cluster[train.indices[train.indptr[user] : train.indptr[user + 1]]]
        shared[row] = cluster[item] in train_clusters
        shuffled[row] = cluster[random_items[row]] in train_clusters
    # Chance is high here (heavy users' train items cover most of the 20 clusters), the lift is clear.
    assert shared.mean() > 0.6, shared.mean()
    assert shared.mean() > 1.5 * shuffled.mean(), shuffled.mean()


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"users": -1}, "--users must be at least 1"),
        ({"items": 0}, "--items must be at least 1"),
        ({"interactions": 100}, r"--interactions \(100\) must be at least --users x --min-user-interactions"),
        ({"interactions": 10**9}, "exceeds --users x --items"),
        ({"clusters": 500}, "--clusters must be between 1 and --items"),
        ({"items": 4}, "--items .* must be at least --min-user-interactions"),
        ({"min_user_interactions": 2}, "at least 3"),
        ({"focus": 1.5}, "--focus"),
        ({"popularity_exponent": 0.0}, "--popularity-exponent must be positive"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_impossible_settings_are_refused_naming_the_option(changes, message):
    with pytest.raises(SigerecError, match=message):
        validate(SynthConfig(**{**vars(SynthConfig(users=100, items=200, interactions=2000)), **changes}))


def test_modalities_are_parsed_and_bad_ones_refused():
    assert parse_modalities("text:384, image:512") == (("text", 384), ("image", 512))
    assert parse_modalities("") == ()
    for bad in ("text:abc", "text", "text:0", "te xt:3", "text:3,text:4"):
        with pytest.raises(SigerecError, match="--modalities"):
            parse_modalities(bad)
