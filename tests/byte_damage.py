"""Hypothesis strategies that damage a file's bytes, shared by the loaders' property tests."""

from __future__ import annotations

from hypothesis import strategies as st


def byte_edits(max_position: int = 10_000, max_inserted: int = 4, max_deleted: int = 8):
    """One edit: cut the file at a position, insert a few bytes there, or delete a few."""
    position = st.integers(0, max_position)
    return st.one_of(
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=max_inserted)),
        st.tuples(st.just("delete"), position, st.integers(1, max_deleted)),
    )


def apply_byte_edit(data: bytes, edit: tuple) -> bytes:
    kind, where, *args = edit
    where %= len(data) + 1
    if kind == "truncate":
        return data[:where]
    if kind == "insert":
        return data[:where] + args[0] + data[where:]
    return data[:where] + data[where + args[0] :]
