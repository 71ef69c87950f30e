"""Property: ``sigerec data import`` keeps every pair of a readable file, or refuses it clearly.

Hypothesis writes interaction files of raw string ids (any Unicode, with commas, quotes, tabs
and line breaks inside ids) as CSV/TSV (optionally gzipped), JSON lines or Parquet, and damages
them: extra and missing values, blank and junk lines, cut or inserted bytes, broken gzip
streams. The expected content comes from Python's own ``csv`` and ``json`` modules. For every
file, the import either writes a dataset whose (raw user, raw item) pairs are exactly the
file's (each repeated pair dropped and counted), or raises one-line ``SigerecError`` naming the
file; never another exception.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from byte_damage import apply_byte_edit, byte_edits
from sigerec.data.atomic import read_interactions
from sigerec.data.id_maps import ITEM_MAP_FILE, USER_MAP_FILE, read_id_mapping
from sigerec.data.importer import ImportOptions, import_interactions
from sigerec.errors import SigerecError

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
OPTIONS = ImportOptions(user_col="user", item_col="item")

# Raw ids: any text with a character that is not whitespace (ids are stripped; an empty id is refused).
RAW_IDS = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=4).filter(str.strip)


class Refused(Exception):
    """The file is not a table of (user, item) pairs by the format's own rules."""


# --- the expected content, read by Python's csv and json modules ------------------------------


def expected_text_pairs(data: bytes, gzipped: bool, delimiter: str) -> list[tuple[str, str]]:
    if gzipped:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise Refused from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Refused from None
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        raise Refused from None
    if not records or delimiter not in text.split("\n", 1)[0]:
        raise Refused
    header, rows = [name.strip() for name in records[0]], [r for r in records[1:] if any(r)]
    if header.count("user") != 1 or header.count("item") != 1 or not rows:
        raise Refused
    pairs = []
    for row in rows:
        if len(row) > len(header):
            raise Refused
        row = row + [""] * (len(header) - len(row))  # a short row: the values it lacks are empty
        pairs.append((row[header.index("user")].strip(), row[header.index("item")].strip()))
    return pairs


def expected_json_pairs(data: bytes, gzipped: bool) -> list[tuple[str, str]]:
    try:
        text = (gzip.decompress(data) if gzipped else data).decode("utf-8-sig")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        raise Refused from None
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise Refused from None
        # Ids are text, or JSON numbers (and true/false) read as their text: {"user": 7} is user "7".
        if not isinstance(record, dict) or not all(
            isinstance(record.get(k), str | int | float) for k in ("user", "item")
        ):
            raise Refused
        if any(not is_text(str(value)) for value in [*record, *record.values()]):
            raise Refused  # "\ud800": an escape of half a surrogate pair, no character
        pairs.append((str(record["user"]).strip(), str(record["item"]).strip()))
    if not pairs:
        raise Refused
    return pairs


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def expected_dataset(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs the dataset holds: each once; refused when MMRec's split could not fill valid and test."""
    if any(not user or not item for user, item in pairs):
        raise Refused
    unique = set(pairs)
    items_per_user: dict[str, int] = {}
    for user, _ in unique:
        items_per_user[user] = items_per_user.get(user, 0) + 1
    if max(items_per_user.values()) < 3:
        raise Refused
    return unique


# --- generated files --------------------------------------------------------------------------


@st.composite
def pair_lists(draw) -> list[tuple[str, str]]:
    """Pairs in which one user has three items, so MMRec's split can fill valid and test."""
    user, items = draw(RAW_IDS), draw(st.lists(RAW_IDS, min_size=3, max_size=3, unique_by=str.strip))
    others = draw(st.lists(st.tuples(RAW_IDS, RAW_IDS), max_size=8))
    return draw(st.permutations([(user, item) for item in items] + others))


@st.composite
def text_files(draw, damaged: bool) -> tuple[str, bytes, bool, str]:
    """(suffix, bytes, gzipped, delimiter) of a CSV/TSV/semicolon file."""
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    header = draw(st.permutations(["user", "item", *draw(st.sampled_from([[], ["rating"], ["note", "time"]]))]))
    records = [list(header)]
    for user, item in draw(pair_lists()):
        values = {"user": user, "item": item}
        records.append(
            [
                values.get(name) or draw(st.text(st.characters(blacklist_categories=["Cs"]), max_size=3))
                for name in header
            ]
        )
    if damaged:
        for kind, where, value in draw(
            st.lists(st.tuples(st.sampled_from(["add", "drop", "blank", "junk"]), st.integers(0, 99), RAW_IDS))
        ):
            record = records[where % len(records)]
            if kind == "add":
                record.append(value)
            elif kind == "drop" and record:
                record.pop()
            else:
                records.insert(1 + where % len(records), [] if kind == "blank" else [value])
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(records)
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + buffer.getvalue().encode("utf-8")
    if damaged:
        for edit in draw(st.lists(byte_edits(100_000, 3, 6), max_size=2)):
            data = apply_byte_edit(data, edit)
    gzipped = draw(st.booleans())
    if gzipped:
        data = gzip.compress(data, mtime=0)
        if damaged and draw(st.booleans()):
            data = apply_byte_edit(data, draw(byte_edits(100_000, 3, 6)))
    suffix = {",": ".csv", "\t": ".tsv", ";": ".csv"}[delimiter]
    return suffix, data, gzipped, delimiter


@st.composite
def json_lines_files(draw, damaged: bool) -> tuple[str, bytes, bool, None]:
    lines = [json.dumps({"user": user, "item": item}) for user, item in draw(pair_lists())]
    if damaged:
        junk = st.sampled_from(["", "  ", "[1, 2]", '"text"', "{", '{"user": 1, "item": "a"}', "[" * 5000, "1" * 5000])
        for where, line in draw(st.lists(st.tuples(st.integers(0, 99), junk), max_size=2)):
            lines.insert(where % (len(lines) + 1), line)
    data = "\n".join(lines).encode("utf-8")
    if damaged:
        for edit in draw(st.lists(byte_edits(100_000, 3, 6), max_size=2)):
            data = apply_byte_edit(data, edit)
    gzipped = draw(st.booleans())
    return ".jsonl", gzip.compress(data, mtime=0) if gzipped else data, gzipped, None


@st.composite
def parquet_files(draw, damaged: bool) -> tuple[str, bytes, bool, None]:
    pairs = draw(pair_lists())
    buffer = io.BytesIO()
    table = pa.table({"user": [u for u, _ in pairs], "item": [i for _, i in pairs]})
    pq.write_table(table, buffer)
    data = buffer.getvalue()
    if damaged and draw(st.booleans()):
        # Only damage a reader can see: Parquet pages carry no checksum, so a changed byte inside
        # a page may be a different, valid value; a cut or appended tail breaks the footer.
        data = (
            data[: draw(st.integers(0, len(data) - 1))]
            if draw(st.booleans())
            else data + draw(st.binary(min_size=1, max_size=8))
        )
        return ".parquet", data, False, "damaged"
    return ".parquet", data, False, None


def source_files(damaged: bool):
    return st.one_of(text_files(damaged), json_lines_files(damaged), parquet_files(damaged))


def expected_pairs(suffix: str, data: bytes, gzipped: bool, delimiter: str | None) -> set[tuple[str, str]]:
    if suffix == ".parquet":
        if delimiter == "damaged":
            raise Refused
        table = pq.read_table(io.BytesIO(data))
        pairs = list(zip(table["user"].to_pylist(), table["item"].to_pylist()))
        return expected_dataset([(u.strip(), i.strip()) for u, i in pairs])
    if suffix == ".jsonl":
        return expected_dataset(expected_json_pairs(data, gzipped))
    return expected_dataset(expected_text_pairs(data, gzipped, delimiter))


def check_import(source: tuple) -> None:
    suffix, data, gzipped, delimiter = source
    try:
        expected = expected_pairs(suffix, data, gzipped, delimiter)
    except Refused:
        expected = None
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / ("ratings" + suffix + (".gz" if gzipped else ""))
        path.write_bytes(data)
        out = Path(root) / "out"
        try:
            summary = import_interactions(path, out, OPTIONS)
        except SigerecError as error:
            message = str(error)
            assert expected is None, f"refused a file the format accepts: {message}"
            assert "\n" not in message and str(path) in message, message
            event("refused")
            return
        assert expected is not None, "imported a file the format refuses"
        users, items, _ = read_interactions(summary.interaction_file)
        raw_users, raw_items = read_id_mapping(out / USER_MAP_FILE), read_id_mapping(out / ITEM_MAP_FILE)
    written = [(raw_users[u], raw_items[i]) for u, i in zip(users, items)]
    assert len(written) == len(set(written)) == len(expected)
    assert set(written) == expected
    assert summary.dropped_duplicates == summary.rows_read - len(expected)
    event(f"imported {suffix}")


@PROPERTY
@given(source_files(damaged=False))
def test_every_well_formed_file_imports_every_pair_exactly(source):
    check_import(source)


@PROPERTY
@given(source_files(damaged=True))
def test_a_damaged_file_imports_exactly_or_is_refused_with_a_message_naming_it(source):
    check_import(source)


@pytest.mark.parametrize(
    ("name", "content", "sep", "expected"),
    [
        ("extra_value_first_row.csv", b"user,item\nu1,i1,x\nu1,i2\nu1,i3\n", None, "line 2: 3 values"),
        ("two_user_columns.csv", b"user,item,user\nu1,i1,u9\n", None, "2 columns are named 'user'"),
        ("empty_sep.csv", b"user,item\nu1,i1\n", "", "--sep ''"),
        ("newline_sep.csv", b"user,item\nu1,i1\n", "\n", "--sep '\\n'"),
        ("deep.jsonl", b'{"user": ' + b"[" * 100_000 + b"]" * 100_000 + b', "item": "i"}\n', None, "line 1"),
        ("long_number.jsonl", b'{"user": ' + b"1" * 5000 + b', "item": "i"}\n', None, "line 1"),
        ("late_byte.csv", b"user,item\nu1,i1\n\xff,i2\n", None, "line 3: byte 0xff"),
        ("blank_lines.tsv", b"\n\n", "\t", "only blank lines"),
        ("half_surrogate.jsonl", b'{"user": "u", "item": "i"}\n{"user": "a\\ud800", "item": "i"}\n', None, "line 2"),
    ],
)
def test_inputs_that_once_gave_a_traceback_or_wrong_columns_get_a_clear_error(tmp_path, name, content, sep, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SigerecError) as caught:
        import_interactions(path, tmp_path / "out", ImportOptions(user_col="user", item_col="item", sep=sep))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_multi_character_sep_is_literal_not_a_regular_expression(tmp_path):
    path = tmp_path / "ratings.txt"
    path.write_text("user||item\nu1||i1\nu1||i2\nu1||i3\n")
    summary = import_interactions(path, tmp_path / "out", ImportOptions(user_col="user", item_col="item", sep="||"))
    assert (summary.n_users, summary.n_items) == (1, 3)


def test_parquet_binary_ids_that_are_not_utf8_name_the_column(tmp_path):
    path = tmp_path / "ratings.parquet"
    pq.write_table(pa.table({"user": pa.array([b"\xff\xfe"] * 3), "item": ["a", "b", "c"]}), path)
    with pytest.raises(SigerecError, match="column 'user': cannot be read as text"):
        import_interactions(path, tmp_path / "out", OPTIONS)


def test_raw_ids_with_a_carriage_return_survive_the_id_map(tmp_path):
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps({"user": "u\rv", "item": item}) + "\n" for item in "abc"))
    import_interactions(path, tmp_path / "out", OPTIONS)
    assert list(read_id_mapping(tmp_path / "out" / USER_MAP_FILE)) == ["u\rv"]
