"""Read delimited text or Parquet files as string columns, keeping each row's file position.

Messages about bad values name the file, the line (text, header = line 1) or row (Parquet)
and the column, so every reader of user tables (interactions, item metadata) shares this.
"""

from __future__ import annotations

import difflib
import gzip
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sigerec.errors import SigerecError

DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_LINES_SUFFIXES = {".jsonl", ".ndjson", ".json"}
# RecBole atomic headers carry the field type: ``user_id:token``, ``rating:float``.
RECBOLE_TYPE_SUFFIX = re.compile(r":(token|token_seq|float|float_seq)$")


def one_line(error: BaseException) -> str:
    """A library's error message on one line, to quote in ours (the CLI prints one line per error)."""
    return " ".join(str(error).split()) or type(error).__name__


def quoted(name: str) -> str:
    """A name from a file, in quotes, escaped when it holds line breaks or other control characters."""
    return f"'{name}'" if name.isprintable() else repr(name)


@dataclass
class RawTable:
    """The source file as string columns, with each row's place in the file for messages."""

    path: Path
    frame: pd.DataFrame  # every column str, missing values ""
    positions: np.ndarray  # [n_rows] 1-based line (text, header = line 1) or row (Parquet)
    unit: str  # "line" or "row"

    def where(self, row: int, column: str) -> str:
        return f"{self.path}, {self.unit} {self.positions[row]}, column '{column}'"


def read_table(path: Path, sep: str | None = None) -> RawTable:
    """The file as string columns: Parquet by suffix, otherwise delimited text."""
    if path.is_dir():
        raise SigerecError(f"{path}: is a folder; give the file itself (CSV, TSV, Parquet, JSON lines or .inter).")
    if not path.is_file():
        raise SigerecError(f"{path}: no such file. Give the path of a CSV, TSV, Parquet, JSON lines or .inter file.")
    if path.stat().st_size == 0:
        raise SigerecError(f"{path}: the file is empty; it needs a header line and interaction rows.")
    suffix = path.name.lower().removesuffix(".gz").rsplit(".", 1)[-1]
    if f".{suffix}" in PARQUET_SUFFIXES:
        table = _read_parquet(path)
    elif f".{suffix}" in JSON_LINES_SUFFIXES:
        table = _read_json_lines(path)
    else:
        table = _read_text(path, sep)
    table.frame.columns = [RECBOLE_TYPE_SUFFIX.sub("", str(c).strip()) for c in table.frame.columns]
    if len(table.frame) == 0:
        raise SigerecError(f"{path}: the file has a header but no rows.")
    return table


def _read_text(path: Path, sep: str | None) -> RawTable:
    """Delimited text; the header line is read as a row too, so that a line with more values than
    the header is an error (pandas would otherwise shift every column of a longer first row by one)."""
    delimiter = None
    try:
        with _open_text(path) as handle:
            delimiter = _delimiter(path, handle.readline(), sep)
            handle.seek(0)
            # A text handle: Python decodes the whole file strictly. Given bytes, pandas decodes
            # each value after removing quotes, so a stray byte between quotes can join the next.
            frame = pd.read_csv(
                handle,
                sep=delimiter if len(delimiter) == 1 else re.escape(delimiter),  # longer: a regex to pandas
                engine="c" if len(delimiter) == 1 else "python",  # only the python engine takes "::"
                header=None,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
            )
    except UnicodeDecodeError:
        raise SigerecError(_not_utf8_message(path)) from None
    except pd.errors.EmptyDataError:  # only blank lines
        raise SigerecError(f"{path}: the file holds only blank lines; it needs a header line and rows.") from None
    except pd.errors.ParserError as error:
        raise SigerecError(_parser_error_message(path, delimiter, error)) from None
    except (OSError, EOFError, zlib.error) as error:
        raise SigerecError(_unreadable_message(path, error)) from None
    frame = frame.fillna("")
    header_row, frame = frame.iloc[0], frame.iloc[1:].reset_index(drop=True)
    frame.columns = [str(name) for name in header_row]
    # Blank lines are read as empty rows (not skipped) so that row i stays on line i + 2.
    blank = (frame == "").all(axis=1).to_numpy()
    positions = np.flatnonzero(~blank) + 2
    return RawTable(path, frame[~blank].reset_index(drop=True), positions, "line")


def _open_text(path: Path):
    return (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8-sig", newline="")


def _parser_error_message(path: Path, delimiter: str | None, error: Exception) -> str:
    shown = DELIMITER_NAMES.get(delimiter, repr(delimiter))
    counts = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if counts:
        expected, line, saw = counts.groups()
        return (
            f"{path}, line {line}: {saw} values separated by {shown}, but the header has {expected}. "
            "Check that line's quoting and field count, or force the delimiter with --sep."
        )
    return (
        f"{path}: cannot be parsed with delimiter {shown} ({one_line(error)}). "
        "Check that line's quoting and field count, or force the delimiter with --sep."
    )


def _unreadable_message(path: Path, error: BaseException) -> str:
    if path.suffix == ".gz" and not isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        return f"{path}: cannot be read as gzip ({one_line(error)}); a .gz name needs complete gzip content."
    return f"{path}: cannot be read ({getattr(error, 'strerror', None) or one_line(error)})."


def _not_utf8_message(path: Path) -> str:
    """Where the first byte that is not UTF-8 sits (line numbers count the header as 1)."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            data = handle.read()
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return (
            f"{path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8 text. Save it as UTF-8, "
            "or name a Parquet file '.parquet'."
        )
    except (OSError, EOFError, zlib.error):
        pass
    return f"{path}: not UTF-8 text. Save it as UTF-8, or name a Parquet file '.parquet'."


def _delimiter(path: Path, header: str, sep: str | None) -> str:
    """``--sep`` if given (``\\t`` or ``tab`` mean a tab), else the most frequent of tab, comma, semicolon in the header."""
    if sep is not None:
        delimiter = "\t" if sep in {"\\t", "tab", "\t"} else sep
        if not delimiter or any(character in delimiter for character in '\r\n"'):
            raise SigerecError(
                f"--sep {sep!r}: give the character(s) between two values, e.g. ';' or tab "
                "(not empty, a line break or a quote)."
            )
        return delimiter
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITER_NAMES}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        raise SigerecError(
            f"{path}, line 1: the header {header.strip()!r} has a single column; user and item columns "
            "must be separated by tabs, commas or semicolons (force another delimiter with --sep)."
        )
    return best


def _read_json_lines(path: Path) -> RawTable:
    """One JSON object per line; lists (e.g. Amazon's nested categories) become joined text."""
    records, positions = [], []
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError) as error:  # also numbers too long for Python, deep nesting
                    detail = error.msg if isinstance(error, json.JSONDecodeError) else one_line(error)
                    raise SigerecError(
                        f"{path}, line {number}: not valid JSON ({detail}). Each line must hold one JSON object."
                    ) from None
                if not isinstance(record, dict):
                    raise SigerecError(f"{path}, line {number}: expected a JSON object {{...}} per line.")
                records.append({key: _json_text(value) for key, value in record.items()})
                positions.append(number)
    except UnicodeDecodeError:
        raise SigerecError(_not_utf8_message(path)) from None
    except (OSError, EOFError, zlib.error) as error:
        raise SigerecError(_unreadable_message(path, error)) from None
    try:
        frame = pd.DataFrame.from_records(records).fillna("").astype(str)
        "".join(frame.columns).encode("utf-8")
    except UnicodeEncodeError:  # an escape such as "\ud800" (half a surrogate pair) is no character
        number = next(n for n, record in zip(positions, records) if not _is_unicode(record))
        raise SigerecError(
            f"{path}, line {number}: a \\u escape that is half of a surrogate pair, not a character. "
            "Write the character itself, or both halves of the pair."
        ) from None
    return RawTable(path, frame, np.array(positions, dtype=np.int64), "line")


def _is_unicode(record: dict[str, str]) -> bool:
    try:
        ("".join(record) + "".join(record.values())).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(text for text in (_json_text(v) for v in value) if text)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_parquet(path: Path) -> RawTable:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()  # not read_table: it refuses two columns of one name, unexplained
    except (OSError, pa.ArrowException) as error:
        raise SigerecError(f"{path}: cannot be read as Parquet ({one_line(error)}).") from None
    columns = []
    for name, column_values in zip(table.column_names, table.columns):
        try:
            # Arrow's cast keeps integer ids integral even with nulls ("7", not "7.0").
            columns.append(pc.cast(column_values, pa.string()).to_pandas())
        except pa.ArrowNotImplementedError:  # nested values (lists, structs): their Python text
            columns.append(column_values.to_pandas().astype(str))
        except pa.ArrowInvalid as error:  # e.g. binary values that are not UTF-8
            raise SigerecError(f"{path}, column {quoted(name)}: cannot be read as text ({one_line(error)}).") from None
    # Positional, so that two columns of one name both stay (``column`` refuses to guess between them).
    frame = pd.DataFrame(dict(enumerate(columns)), index=pd.RangeIndex(table.num_rows)).fillna("").astype(str)
    frame.columns = table.column_names
    return RawTable(path, frame, np.arange(1, len(frame) + 1), "row")


def column(table: RawTable, name: str, option: str) -> pd.Series:
    """A column by name, or an error suggesting the closest existing name."""
    columns = [str(c) for c in table.frame.columns]
    where = f"{table.path}, line 1" if table.unit == "line" else str(table.path)
    if columns.count(name) > 1:
        raise SigerecError(
            f"{where}: {columns.count(name)} columns are named '{name}' (given by {option}); rename all but one."
        )
    if name in columns:
        return table.frame[name].astype(str).str.strip()
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    hint = f" Did you mean {quoted(close[0])}?" if close else ""
    shown = ", ".join(c if c.isprintable() else repr(c) for c in columns)
    raise SigerecError(f"{where}: no column {quoted(name)} (given by {option}).{hint} The columns are: {shown}.")


def first_bad_row(table: RawTable, bad: np.ndarray, column: str, values: pd.Series, problem: str) -> SigerecError:
    """An error naming the first bad row, its value and how many rows share the problem."""
    row = int(np.flatnonzero(bad)[0])
    return SigerecError(
        f"{table.where(row, column)}: {values.iloc[row]!r} {problem}. "
        f"{int(bad.sum())} row(s) have this problem; fix or remove them."
    )


def id_column(table: RawTable, name: str, option: str) -> pd.Series:
    """Raw ids kept as strings, so '007' stays '007'."""
    values = column(table, name, option)
    empty = (values == "").to_numpy()
    if empty.any():
        raise first_bad_row(table, empty, name, values, "is an empty id; every row needs a user and an item")
    return values


def number_column(table: RawTable, name: str, option: str) -> np.ndarray:
    values = column(table, name, option)
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numeric)
    if bad.any():
        raise first_bad_row(table, bad, name, values, "is not a number")
    return numeric


NOT_A_TIME = (
    "is neither a number (Unix time) nor an ISO date such as 2021-03-04 or 2021-03-04T10:00:00 "
    "(the column must hold one kind throughout)"
)


def timestamp_column(table: RawTable, name: str) -> np.ndarray:
    """Seconds since 1970: numbers as given, or ISO dates ('2021-03-04T10:00:00') converted."""
    values = column(table, name, "--time-col")
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if np.isfinite(numeric).all():
        return numeric
    dates = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    bad = dates.isna().to_numpy()
    if bad.any():
        raise first_bad_row(table, bad, name, values, NOT_A_TIME)
    return ((dates - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
