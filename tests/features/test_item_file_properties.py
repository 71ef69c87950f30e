"""Property: the files ``sigerec encode`` reads beside a dataset (id maps, item files, a knowledge
graph) either give exactly what they hold or a one-line ``SigerecError`` naming a file.

- an id map written by ``data import``'s writer reads back exactly, and a damaged one reads as
  Python's csv module reads it or is refused;
- every row of an item file is accounted for: matched to the item its id names (first row wins),
  counted as unknown, or counted as a repeat; nothing else;
- a damaged knowledge graph or link file gives finite unit vectors for real dataset items, or
  is refused.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sigerec.data.id_maps import ITEM_MAP_FILE, item_raw_ids, read_id_mapping
from sigerec.data.importer import _id_map_tsv
from sigerec.data.tabular import read_table
from sigerec.errors import SigerecError
from sigerec.features.item_table import match_items
from sigerec.features.knowledge_graph import knowledge_graph_features

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=4)


def byte_edits():
    position = st.integers(0, 10_000)
    return st.one_of(
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("insert"), position, st.sampled_from([b"\t", b"\n", b'"', b"\xff", b"x", b"\r", b"7"])),
        st.tuples(st.just("delete"), position, st.integers(1, 4)),
    )


def apply_byte_edits(data: bytes, edits: list[tuple]) -> bytes:
    for kind, where, *args in edits:
        where %= len(data) + 1
        if kind == "truncate":
            data = data[:where]
        elif kind == "insert":
            data = data[:where] + args[0] + data[where:]
        else:
            data = data[:where] + data[where + args[0] :]
    return data


def assert_clear(error: SigerecError, *paths: Path) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert any(str(path) in message for path in paths), message


# --- id maps ----------------------------------------------------------------------------------


def map_bytes(raw_ids: list[str]) -> bytes:
    """An item map as ``sigerec data import`` writes it."""
    return _id_map_tsv(raw_ids, "itemID")


def ids_by_csv_module(data: bytes) -> list[str] | None:
    """The raw ids as Python's csv module reads the map, or None when it is not a valid map."""
    try:
        records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter="\t"))
    except (UnicodeDecodeError, csv.Error):
        return None
    rows = records[1:]
    if not records or len(records[0]) != 2 or any(len(row) != 2 for row in rows):
        return None
    if [row[1].strip() for row in rows] != [str(i) for i in range(len(rows))]:
        return None
    return [row[0] for row in rows]


@PROPERTY
@given(st.lists(TEXT, max_size=6), st.lists(byte_edits(), max_size=2))
def test_an_id_map_reads_back_exactly_or_is_refused(raw_ids, edits):
    data = apply_byte_edits(map_bytes(raw_ids), edits)
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / ITEM_MAP_FILE
        path.write_bytes(data)
        try:
            read = list(read_id_mapping(path))
        except SigerecError as error:
            assert_clear(error, path)
            assert edits, f"refused a map as data import writes it: {error}"
            event("refused")
            return
    if not edits:
        assert read == raw_ids  # what data import wrote
    assert read == ids_by_csv_module(data)
    event("read")


def test_an_item_map_of_another_length_than_the_dataset_is_refused(tmp_path):
    (tmp_path / ITEM_MAP_FILE).write_bytes(map_bytes(["a", "b"]))
    assert list(item_raw_ids(tmp_path)) == ["a", "b"]
    try:
        item_raw_ids(tmp_path, n_items=3)
    except SigerecError as error:
        assert "maps 2 item ids but the dataset has 3 items" in str(error)
    else:
        raise AssertionError("a map of 2 ids was accepted for 3 items")


# --- item files -------------------------------------------------------------------------------


@st.composite
def item_folders(draw) -> dict:
    """A dataset folder's item count and optional map, and an item file naming its items (or not)."""
    n_items = draw(st.integers(1, 5))
    raw_ids = (
        draw(st.lists(TEXT.filter(str.strip), min_size=n_items, max_size=n_items)) if draw(st.booleans()) else None
    )
    if raw_ids is not None and draw(st.booleans()):
        raw_ids = raw_ids[:-1] if len(raw_ids) > 1 else raw_ids + ["extra"]  # a map that disagrees with the dataset
    known = [str(i) for i in range(n_items)] if raw_ids is None else raw_ids
    ids = st.one_of(st.sampled_from(known), TEXT, st.sampled_from(["-1", "1.5", "nan", "1e400", "007", " 1 "]))
    rows = draw(st.lists(st.tuples(ids, TEXT), min_size=1, max_size=8))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["item", "title"], *rows])
    data = apply_byte_edits(buffer.getvalue().encode("utf-8"), draw(st.lists(byte_edits(), max_size=2)))
    return {"n_items": n_items, "raw_ids": raw_ids, "items_csv": data}


@PROPERTY
@given(item_folders())
def test_every_row_of_an_item_file_is_matched_counted_or_refused(folder):
    with tempfile.TemporaryDirectory() as root:
        dataset_dir, items_file = Path(root), Path(root) / "items.csv"
        items_file.write_bytes(folder["items_csv"])
        if folder["raw_ids"] is not None:
            (dataset_dir / ITEM_MAP_FILE).write_bytes(map_bytes(folder["raw_ids"]))
        try:
            matched = match_items(items_file, dataset_dir, folder["n_items"], "item", ["title"])
        except SigerecError as error:
            assert_clear(error, items_file, dataset_dir / ITEM_MAP_FILE)
            event("refused")
            return
        ids = read_table(items_file).frame["item"].str.strip().tolist()
    raw_ids = folder["raw_ids"]
    assert raw_ids is None or len(raw_ids) == folder["n_items"], "used a map of another length"

    def names(text: str, item: int) -> bool:
        """Whether an item file's id names ``item``: its raw id, or (without a map) its number."""
        if raw_ids is not None:
            return text == raw_ids[item]
        try:
            return float(text) == item
        except ValueError:
            return False

    assert len(matched.rows) + matched.unknown_rows + matched.duplicate_rows == len(ids)
    assert len(set(matched.items.tolist())) == len(matched.items)  # each item once
    for row, item in zip(matched.rows.tolist(), matched.items.tolist()):
        assert names(ids[row], item)
        assert row == next(r for r, text in enumerate(ids) if names(text, item))  # the first row wins
        assert matched.raw_id(item) == (str(item) if raw_ids is None else raw_ids[item])
    event("matched")


# --- knowledge graphs -------------------------------------------------------------------------

ENTITIES = st.sampled_from(["e0", "e1", "e2", "a", "b", "", " ", "é"])
RELATIONS = st.sampled_from(["actor", "genre", "r:x", ""])


@st.composite
def knowledge_graphs(draw) -> dict:
    n_items = draw(st.integers(1, 4))
    links = draw(
        st.lists(st.tuples(st.sampled_from([str(i) for i in range(n_items + 1)] + ["x"]), ENTITIES), max_size=6)
    )
    triples = draw(st.lists(st.tuples(ENTITIES, RELATIONS, ENTITIES), max_size=10))
    link_text = "item_id:token\tentity_id:token\n" + "".join(f"{a}\t{b}\n" for a, b in links)
    kg_text = "head_id:token\trelation_id:token\ttail_id:token\n" + "".join("\t".join(t) + "\n" for t in triples)
    return {
        "n_items": n_items,
        "link": apply_byte_edits(link_text.encode(), draw(st.lists(byte_edits(), max_size=2))),
        "kg": apply_byte_edits(kg_text.encode(), draw(st.lists(byte_edits(), max_size=2))),
        "min_entity_items": draw(st.integers(1, 2)),
    }


@settings(PROPERTY, max_examples=60)
@given(knowledge_graphs())
def test_a_damaged_knowledge_graph_gives_unit_vectors_of_real_items_or_is_refused(graph):
    with tempfile.TemporaryDirectory() as root:
        kg_file, link_file = Path(root) / "g.kg", Path(root) / "g.link"
        kg_file.write_bytes(graph["kg"])
        link_file.write_bytes(graph["link"])
        try:
            items, vectors, info = knowledge_graph_features(
                kg_file,
                link_file,
                Path(root),
                dim=3,
                min_entity_items=graph["min_entity_items"],
                n_items=graph["n_items"],
            )
        except SigerecError as error:
            assert_clear(error, kg_file, link_file, Path(root))
            event("refused")
            return
    assert items.tolist() == sorted(set(items.tolist())) and all(0 <= i < graph["n_items"] for i in items)
    assert vectors.shape[0] == len(items) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
    if len(items):
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert info["items_linked"] + info["items_not_linked"] == graph["n_items"]
    event("encoded" if len(items) else "no shared features")
