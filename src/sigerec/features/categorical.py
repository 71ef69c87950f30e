"""Item category labels -> multi-hot vectors (e.g. MovieLens genres), a second real modality.

A column such as ML-100k's ``class`` ("Animation Children's Comedy") lists each item's
labels joined by a separator. Each item becomes a 0/1 vector over the sorted vocabulary of
the labels that occur among the dataset's items: row i, column c is 1 when item i carries
label c. Items with no label are mean-filled by the feature store, as for text.
"""

from __future__ import annotations

import numpy as np

from sigerec.data.tabular import RawTable
from sigerec.errors import SigerecError

# RecBole's ``token_seq`` fields (ML-100k's ``class``) separate their tokens by spaces.
DEFAULT_SEPARATOR = " "


def split_labels(value: str, separator: str) -> tuple[str, ...]:
    """The labels of one cell: split, stripped, empty and repeated labels dropped, order kept."""
    labels = (label.strip() for label in value.split(separator))
    return tuple(dict.fromkeys(label for label in labels if label))


def multi_hot(labels: list[tuple[str, ...]], vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectors [n, len(vocabulary)] with 1.0 at each label's column, and ok [n] (False: no label)."""
    column_of = {label: column for column, label in enumerate(vocabulary)}
    vectors = np.zeros((len(labels), len(vocabulary)), dtype=np.float32)
    for row, item_labels in enumerate(labels):
        vectors[row, [column_of[label] for label in item_labels]] = 1.0
    ok = np.array([bool(item_labels) for item_labels in labels], dtype=bool)
    return vectors, ok


class CategoryEncoder:
    """An ``ItemEncoder`` (see ``features.encode``) that writes multi-hot label vectors.

    The vocabulary is the sorted set of labels of the matched rows, fixed when
    ``payloads`` reads them (before any batch is encoded) and recorded in the provenance.
    """

    def __init__(self, category_col: str, separator: str = DEFAULT_SEPARATOR):
        if separator == "":
            raise SigerecError('--separator must not be empty; e.g. --separator "|" or --separator " ".')
        self.category_col = category_col
        self.separator = separator
        self.vocabulary: list[str] | None = None

    def prepare(self) -> None:
        if self.vocabulary is None:
            raise RuntimeError("CategoryEncoder.payloads must run before encoding (it fixes the vocabulary)")

    def identity(self) -> dict:
        return {
            "kind": "categories",
            "column": self.category_col,
            "separator": self.separator,
            "n_categories": len(self.vocabulary or []),
            "vocabulary": self.vocabulary,
        }

    def columns(self) -> list[str]:
        return [self.category_col]

    def payloads(self, table: RawTable, rows: np.ndarray) -> list[tuple[str, ...]]:
        values = table.frame[self.category_col].to_numpy()[rows]
        labels = [split_labels(str(value), self.separator) for value in values]
        self.vocabulary = sorted({label for item_labels in labels for label in item_labels})
        if not self.vocabulary:
            raise SigerecError(
                f"{table.path}: column '{self.category_col}' is empty for every matched item; "
                "check --category-col and --separator."
            )
        return labels

    def cost(self, labels: tuple[str, ...]) -> int:
        return 0  # every item costs the same: keep the file order

    def encode_batch(self, labels: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        return multi_hot(labels, self.vocabulary or [])
