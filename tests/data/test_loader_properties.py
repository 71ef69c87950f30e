"""Property: any dataset folder either loads exactly as written or is refused with a clear error.

Hypothesis writes small MMRec folders (``<name>.inter`` plus ``<modality>_feat.npy``) and damages
them at random: values, fields, lines, bytes, gzip streams, header names, feature arrays and
feature files. ``expected_folder`` below is the specification of the format, written
independently of the loader. For every generated folder:

- if the specification accepts it, ``load_dataset`` returns exactly the rows it describes (no
  row lost or invented; MMRec's two drops are counted in the warnings);
- if it refuses it, ``load_dataset`` raises ``SigerecError`` whose message is one line naming the
  file and, where the problem sits on a line, that line; never any other exception.
"""

from __future__ import annotations

import gzip
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from byte_damage import apply_byte_edit, byte_edits
from sigerec.data.atomic import MAX_ID, SPARSE_ID_FACTOR, SPARSE_ID_SLACK, load_dataset
from sigerec.data.stats import dataset_stats
from sigerec.errors import SigerecError

# Deterministic (CI runs the same examples every time) and small: together well under 10 s.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

REQUIRED = ("userID", "itemID", "x_label")
# Values a damaged file may hold where an id or label belongs.
ODD_VALUES = [
    "", " ", "-1", "1.5", "abc", "True", "false", "nan", "inf", "-inf", "1e400", "99999999999999999999",
    str(MAX_ID), str(MAX_ID + 1), "3", "0", "1", "2", "0x1", "\u0661", '"1"', "1\x00", "\ufeff0", "1_0",
    "+2", "2.0", "1e3", " 2 ", "\u00a0", "\u00e9", "1 2", "\\N", "NULL", "NA", "#", "1,0",
]  # fmt: skip
ODD_HEADER_NAMES = ["userid", "user ID", "", "userID", "itemID", "x_label", "x_label ", "\ufeffuserID", "rating"]
ID_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


# --- the specification ------------------------------------------------------------------


@dataclass
class Expected:
    """What loading must give: the splits' (user, item) pairs and sizes, or an error (and its line)."""

    error: bool = False
    line: int | None = None  # the line an error must name, when the problem sits on one
    n_users: int = 0
    n_items: int = 0
    splits: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    dropped_duplicates: int = 0
    dropped_orphans: int = 0
    features: dict[str, np.ndarray] = field(default_factory=dict)


def refused(line: int | None = None) -> Expected:
    return Expected(error=True, line=line)


def parse_id(text: str, allowed: set[int] | None) -> int | None:
    """An id as the format defines it: a decimal number with an integral value in range, else None."""
    text = text.strip()
    if not ID_NUMBER.fullmatch(text):
        return None
    value = float(text)
    if not value.is_integer() or value < 0 or value > MAX_ID:
        return None
    if allowed is not None and int(value) not in allowed:
        return None
    return int(value)


def expected_rows(raw: bytes, gzipped: bool) -> Expected | list[tuple[int, int, int, int]]:
    """(line, user, item, label) of every row, or the refusal, read by the format's rules alone."""
    if gzipped:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return refused()
    raw = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return refused(raw.count(b"\n", 0, error.start) + 1)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip(" ")]
    if not numbered:
        return refused()
    header_line, header = numbered[0][0], [name.strip() for name in numbered[0][1].split("\t")]
    if any(header.count(name) != 1 for name in REQUIRED):
        return refused(header_line)
    rows = []
    for number, line in numbered[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            return refused(number)
        rows.append((number, fields))
    if not rows:
        return refused()
    parsed = {}
    for name in REQUIRED:
        column = header.index(name)
        allowed = {0, 1, 2} if name == "x_label" else None
        values = [parse_id(fields[column], allowed) for _, fields in rows]
        bad = [number for (number, _), value in zip(rows, values) if value is None]
        if bad:
            return refused(bad[0])
        parsed[name] = values
    for name in ("userID", "itemID"):
        values = parsed[name]
        limit = SPARSE_ID_FACTOR * len(set(values)) + SPARSE_ID_SLACK
        far = [number for (number, _), value in zip(rows, values) if value + 1 > limit]
        if far:
            return refused(far[0])
    return [(number, u, i, x) for (number, _), u, i, x in zip(rows, *parsed.values())]


def expected_folder(inter_bytes: bytes | None, gzipped: bool, features: dict[str, bytes | None]) -> Expected:
    """What ``load_dataset`` must give for a folder holding these files, by the format's rules."""
    if inter_bytes is None:
        return refused()
    rows = expected_rows(inter_bytes, gzipped)
    if isinstance(rows, Expected):
        return rows
    n_users = max(u for _, u, _, _ in rows) + 1
    n_items = max(i for _, _, i, _ in rows) + 1
    seen, kept = set(), []
    for _, user, item, label in rows:  # MMRec keeps the first of repeated pairs ...
        if (user, item) not in seen:
            seen.add((user, item))
            kept.append((user, item, label))
    with_train = {user for user, _, label in kept if label == 0}
    final = [row for row in kept if row[0] in with_train]  # ... and drops held-out rows of users without train
    splits = {
        name: {(u, i) for u, i, x in final if x == label} for label, name in enumerate(("train", "valid", "test"))
    }
    if not all(splits.values()):
        return refused()
    expected = Expected(
        n_users=n_users,
        n_items=n_items,
        splits=splits,
        dropped_duplicates=len(rows) - len(kept),
        dropped_orphans=len(kept) - len(final),
    )
    for modality, array in features.items():
        if array is None or not feature_array_is_valid(array, n_items):
            return refused()
        expected.features[modality] = array.astype(np.float32)
    return expected


def feature_array_is_valid(array: np.ndarray, n_items: int) -> bool:
    """[n_items, dim >= 1] real numbers, finite and within float32's range."""
    if array.ndim != 2 or array.shape[0] != n_items or array.shape[1] == 0 or array.dtype.kind not in "fiu":
        return False
    values = array.astype(np.float64)
    return bool(np.isfinite(values).all() and (np.abs(values) <= np.finfo(np.float32).max).all())


# --- generated folders ------------------------------------------------------------------


@st.composite
def interaction_tables(draw) -> tuple[list[str], list[list[str]]]:
    """A header and rows of a well-formed file: every split has rows, ids written in any valid style."""
    n_users, n_items = draw(st.integers(1, 4)), draw(st.integers(3, 6))
    # User 0's three rows come first, so every split keeps a row whatever MMRec's drops remove
    # from the others (repeated pairs, held-out rows of users without train rows).
    others = st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1), st.sampled_from([0, 0, 1, 2]))
    rows = [(0, 0, 0), (0, 1, 1), (0, 2, 2), *draw(st.lists(others, max_size=12))]
    extra = draw(st.lists(st.sampled_from(["rating", "timestamp", "comment"]), unique=True, max_size=2))
    header = draw(st.permutations([*REQUIRED, *extra]))
    styles = st.sampled_from(["{}", "{}", "{}", " {} ", "{}.0", "+{}", "0{}", "{}e0"])
    table = []
    for user, item, label in rows:
        values = {"userID": user, "itemID": item, "x_label": label}
        table.append(
            [
                draw(styles).format(values[name])
                if name in values
                else draw(
                    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\t\r\n"), max_size=3)
                )
                for name in header
            ]
        )
    return list(header), table


def line_edits():
    """Damage to the table before it becomes bytes (positions wrap around the table's size)."""
    position = st.integers(0, 1_000)
    return st.one_of(
        st.tuples(st.just("set"), position, position, st.sampled_from(ODD_VALUES)),
        st.tuples(st.just("rename"), position, st.sampled_from(ODD_HEADER_NAMES)),
        st.tuples(st.just("drop_field"), position, position),
        st.tuples(st.just("add_field"), position, st.sampled_from(ODD_VALUES)),
        st.tuples(st.just("delete_line"), position),
        st.tuples(st.just("duplicate_line"), position),
        st.tuples(st.just("insert_line"), position, st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)),
        st.tuples(st.just("blank_line"), position, st.sampled_from(["", " ", "  "])),
    )


def apply_line_edit(header: list[str], table: list[list[str]], edit: tuple) -> None:
    kind, *args = edit
    lines = [header, *table]
    if kind == "set" and table:
        row = table[args[0] % len(table)]
        row[args[1] % len(row)] = args[2]
    elif kind == "rename":
        header[args[0] % len(header)] = args[1]
    elif kind == "drop_field":
        line = lines[args[0] % len(lines)]
        if line:
            del line[args[1] % len(line)]
    elif kind == "add_field":
        lines[args[0] % len(lines)].append(args[1])
    elif kind == "delete_line" and table:
        del table[args[0] % len(table)]
    elif kind == "duplicate_line" and table:
        index = args[0] % len(table)
        table.insert(index, list(table[index]))
    elif kind in {"insert_line", "blank_line"}:
        table.insert(args[0] % (len(table) + 1), [args[1]])


@st.composite
def interaction_files(draw, damaged: bool) -> tuple[bytes, bool]:
    """The bytes of an ``.inter`` file (and whether it is gzipped), damaged or not."""
    header, table = draw(interaction_tables())
    if damaged:
        for edit in draw(st.lists(line_edits(), max_size=3)):
            apply_line_edit(header, table, edit)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join("\t".join(fields) for fields in [header, *table])
    text += draw(st.sampled_from(["", newline, newline * 2]))
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode("utf-8")
    if damaged:
        for edit in draw(st.lists(byte_edits(), max_size=2)):
            data = apply_byte_edit(data, edit)
    gzipped = draw(st.booleans())
    if gzipped:
        data = gzip.compress(data, mtime=0)
        if damaged and draw(st.booleans()):
            data = apply_byte_edit(data, draw(byte_edits()))
    return data, gzipped


FEATURE_DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool", "complex64", "<U1", "object"]


@st.composite
def feature_arrays(draw, n_items: int, damaged: bool) -> np.ndarray:
    """A feature array for ``n_items`` items; damaged ones have another shape, dtype or values."""
    if not damaged:
        dim = draw(st.integers(1, 3))
        values = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=n_items * dim, max_size=n_items * dim))
        return np.array(values, dtype=draw(st.sampled_from(["float32", "float64"]))).reshape(n_items, dim)
    rows = draw(st.sampled_from([n_items] * 4 + [n_items - 1, n_items + 1, 0]))
    shape = draw(st.sampled_from([(rows, 2)] * 4 + [(rows, 0), (rows,), (rows, 1, 2), ()]))
    dtype = draw(st.sampled_from(["float32", "float64"] * 3 + FEATURE_DTYPES))
    size = int(np.prod(shape))
    if dtype == "object":
        return np.array([{"item": i} for i in range(size)] or [], dtype=object).reshape(shape)
    if dtype == "<U1":
        return np.full(shape, "a", dtype=dtype)
    special = st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, 0.0, 1.0])
    value = st.one_of(st.floats(-10, 10), special) if draw(st.booleans()) else st.floats(-10, 10)
    values = draw(st.lists(value, min_size=size, max_size=size))
    with np.errstate(all="ignore"):
        return np.array(values, dtype=np.float64).reshape(shape).astype(dtype)


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@st.composite
def feature_files(draw, n_items: int, damaged: bool) -> tuple[bytes, np.ndarray | None]:
    """The bytes of a ``_feat.npy`` file and the array it holds (None: not a readable .npy array)."""
    array = draw(feature_arrays(n_items, damaged))
    data = npy_bytes(array)
    if not damaged:
        return data, array
    damage = draw(st.sampled_from(["none", "none", "truncate", "append", "empty", "text", "npz", "garbage"]))
    if damage == "none":
        return data, array
    if damage == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))], None
    if damage == "append":
        return data + draw(st.binary(min_size=1, max_size=16)), None
    if damage == "npz":
        import io

        buffer = io.BytesIO()
        np.savez(buffer, features=np.ones((n_items, 2)))
        return buffer.getvalue(), None
    return {"empty": b"", "text": b"item,f1\n0,0.5\n"}.get(damage, draw(st.binary(max_size=64))), None


@st.composite
def dataset_folders(draw, damaged: bool) -> dict:
    """The files of a dataset folder: an .inter file and up to two feature files."""
    data, gzipped = draw(interaction_files(damaged))
    plain = expected_rows(data, gzipped)
    n_items = 3 if isinstance(plain, Expected) else max(i for _, _, i, _ in plain) + 1
    n_features = draw(st.integers(0, 2))
    features = {}
    for modality in ("image", "text")[:n_features]:
        features[modality] = draw(feature_files(n_items, damaged and draw(st.booleans())))
    return {"inter": data, "gzipped": gzipped, "features": features}


def write_folder(root: Path, files: dict) -> Path:
    folder = root / "shop"
    folder.mkdir()
    name = "shop.inter.gz" if files["gzipped"] else "shop.inter"
    (folder / name).write_bytes(files["inter"])
    for modality, (data, _) in files["features"].items():
        (folder / f"{modality}_feat.npy").write_bytes(data)
    return folder


def check_load(files: dict) -> None:
    """``load_dataset`` agrees with the specification: the same data, or a clear error."""
    expected = expected_folder(
        files["inter"], files["gzipped"], {modality: array for modality, (_, array) in files["features"].items()}
    )
    with tempfile.TemporaryDirectory() as root:
        folder = write_folder(Path(root), files)
        warnings: list[str] = []
        try:
            dataset = load_dataset(folder, warn=warnings.append)
        except SigerecError as error:
            assert expected.error, f"refused a folder the format accepts: {error}"
            assert_clear(str(error), folder, expected.line)
            event("refused" + (" (names the line)" if expected.line else ""))
            return
        assert not expected.error, "loaded a folder the format refuses"
        event(f"loaded ({len(expected.features)} feature files)")
    assert (dataset.n_users, dataset.n_items) == (expected.n_users, expected.n_items)
    for name, pairs in expected.splits.items():
        matrix = dataset.split(name).tocoo()
        assert set(zip(matrix.row.tolist(), matrix.col.tolist())) == pairs, name
        assert matrix.nnz == len(pairs) and set(matrix.data.tolist()) <= {1.0}
    assert sorted(dataset.features) == sorted(expected.features)
    for modality, array in expected.features.items():
        assert dataset.features[modality].dtype == np.float32
        np.testing.assert_array_equal(dataset.features[modality], array)
    assert_drops_reported(warnings, expected)


def assert_clear(message: str, folder: Path, line: int | None) -> None:
    """One line, naming a file of the folder (and the line, when the problem sits on one)."""
    assert "\n" not in message, message
    assert str(folder) in message, message
    if line is not None:
        assert f", line {line}" in message, message


def assert_drops_reported(warnings: list[str], expected: Expected) -> None:
    """Nothing is dropped silently: each kind of dropped row is counted in a warning."""
    text = " ".join(warnings)
    if expected.dropped_duplicates:
        assert f"dropped {expected.dropped_duplicates} duplicate" in text
    if expected.dropped_orphans:
        assert f"dropped {expected.dropped_orphans} valid/test rows" in text
    assert len(warnings) == bool(expected.dropped_duplicates) + bool(expected.dropped_orphans)


# --- the properties ---------------------------------------------------------------------


@PROPERTY
@given(dataset_folders(damaged=False))
def test_every_well_formed_folder_loads_exactly_as_written(files):
    check_load(files)


@PROPERTY
@given(dataset_folders(damaged=True))
def test_a_damaged_folder_loads_exactly_or_is_refused_with_a_message_naming_the_file(files):
    check_load(files)


THREE_ITEMS = b"userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n0\t2\t2\n"


@PROPERTY
@given(st.lists(feature_files(n_items=3, damaged=True), min_size=1, max_size=2))
def test_a_damaged_feature_file_loads_exactly_or_is_refused_with_a_message_naming_it(features):
    check_load({"inter": THREE_ITEMS, "gzipped": False, "features": dict(zip(("image", "text"), features))})


@settings(PROPERTY, max_examples=60)
@given(dataset_folders(damaged=True))
def test_stats_agree_with_the_loader_or_refuse_with_the_same_kind_of_message(files):
    """``sigerec data stats`` reads the same files: its counts are the loaded data's, or it refuses clearly."""
    with tempfile.TemporaryDirectory() as root:
        folder = write_folder(Path(root), files)
        try:
            stats = dataset_stats(folder)
        except SigerecError as error:
            assert_clear(str(error), folder, None)
            return
        try:
            dataset = load_dataset(folder, warn=lambda message: None)
        except SigerecError:
            return  # stats describe folders with an empty split too; the loader refuses those
    assert (stats["users"], stats["items"]) == (dataset.n_users, dataset.n_items)
    assert [stats[name] for name in ("train", "valid", "test")] == [
        dataset.split(n).nnz for n in ("train", "valid", "test")
    ]
    assert {modality: value["dim"] for modality, value in stats["features"].items()} == {
        modality: array.shape[1] for modality, array in dataset.features.items()
    }


# --- folder-level damage that the generators above do not reach -----------------------


@pytest.mark.parametrize(
    "damage",
    ["no_inter", "two_inters", "inter_is_a_folder", "feature_is_a_folder", "unnamed_modality", "provenance_garbage"],
)
def test_folder_level_damage_is_refused_or_ignored_with_no_traceback(tmp_path, damage):
    folder = tmp_path / "shop"
    folder.mkdir()
    inter = folder / "shop.inter"
    inter.write_text("userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n0\t2\t2\n")
    if damage == "no_inter":
        inter.unlink()
    elif damage == "two_inters":
        (folder / "other.inter.gz").write_bytes(gzip.compress(inter.read_bytes()))
    elif damage == "inter_is_a_folder":
        inter.unlink()
        inter.mkdir()
    elif damage == "feature_is_a_folder":
        (folder / "image_feat.npy").mkdir()
    elif damage == "unnamed_modality":
        np.save(folder / "_feat.npy", np.ones((3, 2), dtype=np.float32))
    elif damage == "provenance_garbage":
        np.save(folder / "image_feat.npy", np.ones((3, 2), dtype=np.float32))
        (folder / "image_feat.json").write_bytes(b"[1, 2, \xff")
    for read in (lambda: load_dataset(folder, warn=lambda message: None), lambda: dataset_stats(folder)):
        try:
            read()
        except SigerecError as error:
            assert_clear(str(error), folder, None)
        else:
            assert damage == "provenance_garbage", "loaded a damaged folder"
