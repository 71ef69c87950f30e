"""Multi-hot category features (`sigerec encode categories`): vectors, vocabulary, coverage, CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.errors import SigerecError
from sigerec.features.categorical import CategoryEncoder, multi_hot, split_labels
from sigerec.features.encode import encode_item_file

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _encode(items_file, dataset_dir, separator=" ", id_col="id"):
    encoder = CategoryEncoder("genres", separator)
    return encode_item_file(items_file, dataset_dir, id_col, "genre", encoder, quiet=True)


def test_split_labels_drops_empty_and_repeated_labels():
    assert split_labels(" Drama|Comedy||Drama ", "|") == ("Drama", "Comedy")
    assert split_labels("Action  Sci-Fi", " ") == ("Action", "Sci-Fi")
    assert split_labels("", " ") == ()


def test_multi_hot_sets_one_column_per_label():
    vectors, ok = multi_hot([("b", "a"), (), ("c",)], ["a", "b", "c"])
    np.testing.assert_array_equal(vectors, [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(ok, [True, False, True])


def test_features_are_multi_hot_over_the_sorted_vocabulary(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.tsv"
    items.write_text("id\tgenres\n0\tDrama Comedy\n1\tAction\n2\tComedy\n3\tAction Drama\n4\tComedy\n5\tDrama\n")
    report = _encode(items, tiny_dataset_dir)
    features = np.load(tiny_dataset_dir / "genre_feat.npy")
    # vocabulary: Action, Comedy, Drama
    expected = [[0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]]
    np.testing.assert_array_equal(features, np.array(expected, dtype=np.float32))
    assert features.dtype == np.float32
    assert report["encoder"]["vocabulary"] == ["Action", "Comedy", "Drama"]
    assert report["dim"] == 3 and report["coverage"] == 1.0


def test_items_without_labels_get_the_mean_vector_and_lower_the_coverage(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.csv"
    # item 2 has no label, items 4 and 5 are not in the file
    items.write_text("id,genres\n0,Drama|Comedy\n1,Action\n2,\n3,Drama\n")
    report = _encode(items, tiny_dataset_dir, separator="|")
    features = np.load(tiny_dataset_dir / "genre_feat.npy")
    mean = np.array([1, 1, 2], dtype=np.float32) / 3  # of items 0, 1, 3 over Action, Comedy, Drama
    for item in (2, 4, 5):
        np.testing.assert_allclose(features[item], mean)
    assert report["encoded"] == 3 and report["mean_filled"] == 3 and report["coverage"] == 0.5
    assert report["empty_or_unreadable"] == 1 and report["items_not_in_file"] == 2
    missing = (tiny_dataset_dir / "genre_feat.missing.tsv").read_text().split("\n")[1:-1]
    assert [line.split("\t")[0] for line in missing] == ["2", "4", "5"]


def test_vocabulary_holds_only_labels_of_the_datasets_items(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,genres\n0,Drama\n1,Comedy\n99,Western\n")
    report = _encode(items, tiny_dataset_dir)
    assert report["encoder"]["vocabulary"] == ["Comedy", "Drama"] and report["rows_unknown_id"] == 1


def test_raw_ids_are_mapped_through_the_item_map(tiny_dataset_dir, tmp_path):
    # With i_id_mapping.csv the file's ids are raw ids: 'm2' is dataset item 1.
    raw_ids = ["m1", "m2", "m3", "m4", "m5", "m6"]
    lines = ["raw_id\titemID"] + [f"{raw}\t{item}" for item, raw in enumerate(raw_ids)]
    (tiny_dataset_dir / "i_id_mapping.csv").write_text("\n".join(lines) + "\n")
    items = tmp_path / "items.jsonl"
    items.write_text('{"sku": "m2", "genres": "Drama"}\n{"sku": "m1", "genres": "Comedy"}\n')
    _encode(items, tiny_dataset_dir, id_col="sku")
    features = np.load(tiny_dataset_dir / "genre_feat.npy")
    np.testing.assert_array_equal(features[:2], [[1, 0], [0, 1]])  # Comedy, Drama


def test_a_column_without_any_label_is_an_error(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,genres,title\n0,,a\n1,,b\n")
    with pytest.raises(SigerecError, match="empty for every matched item"):
        _encode(items, tiny_dataset_dir)
    assert not (tiny_dataset_dir / "genre_feat.npy").exists()


def test_cli_writes_features_and_records_the_vocabulary(tiny_dataset_dir, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,class\n0,Drama|Comedy\n1,Action\n")
    code, output = _run(
        "encode", "categories", str(items), "--data", str(tiny_dataset_dir), "--id-col", "id",
        "--category-col", "class", "--separator", "|", "--modality", "genre", "-q",
    )  # fmt: skip
    assert code == 0, output
    assert "encoded 2 (33.3% coverage)" in output and "Action, Comedy, Drama" in output
    metadata = json.loads((tiny_dataset_dir / "genre_feat.json").read_text())
    assert metadata["encoder"]["vocabulary"] == ["Action", "Comedy", "Drama"]
    assert metadata["encoder"]["column"] == "class" and metadata["dim"] == 3
    assert np.load(tiny_dataset_dir / "genre_feat.npy").shape == (6, 3)


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--id-col", "id", "--category-col", "clas"], "Did you mean 'class'"),
        (["--id-col", "sku", "--category-col", "class"], "no column 'sku'"),
        (["--id-col", "id", "--category-col", "class", "--separator", ""], "--separator must not be empty"),
    ],
)
def test_cli_explains_bad_options_with_exit_code_2(tiny_dataset_dir, tmp_path, options, expected):
    items = tmp_path / "items.csv"
    items.write_text("id,class\n0,Drama\n")
    code, output = _run("encode", "categories", str(items), "--data", str(tiny_dataset_dir), *options, "-q")
    assert code == 2 and expected in output and "Traceback" not in output


def test_cli_help_shows_an_example():
    code, output = _run("encode", "categories", "--help")
    assert code == 0 and "Example" in output
