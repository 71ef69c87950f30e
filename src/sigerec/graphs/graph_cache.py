"""On-disk cache of built graphs, keyed by everything that determines them.

A kNN graph over a real catalogue takes seconds (text) to minutes (4096-d image features)
on CPU, and every run of every multimodal model needs the same few graphs. MMRec caches them
under a file name made of k and the image weight only, so a changed feature file or train
split silently reuses a stale graph. Here the file name holds a hash of all the inputs
(feature and train digests, k, weighting, normalisation, ...), so a change is a new file.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.safe_write import atomic_write

# Bump when a builder's output changes for the same inputs, so that no old file is reused.
CACHE_FORMAT_VERSION = 1
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def array_digest(array: np.ndarray) -> str:
    """sha256 (hex) of an array's dtype, shape and values: equal arrays, equal digests."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def sparse_digest(matrix: sp.spmatrix) -> str:
    """sha256 (hex) of a sparse matrix's shape, dtype and entries.

    The matrix is first put in canonical CSR form (duplicates summed, explicit zeros dropped,
    sorted int64 indices), so two representations of the same matrix share a digest.
    """
    canonical = sp.csr_matrix(matrix, copy=True)
    canonical.sum_duplicates()
    canonical.eliminate_zeros()
    digest = hashlib.sha256(f"csr{canonical.shape}{canonical.dtype.str}".encode())
    for part in (canonical.indptr.astype(np.int64), canonical.indices.astype(np.int64), canonical.data):
        digest.update(array_digest(part).encode())
    return digest.hexdigest()


def cached_graph(
    cache_dir: Path,
    name: str,
    inputs: dict[str, Any],
    build: Callable[[], sp.spmatrix],
) -> sp.csr_matrix:
    """The graph stored for (``name``, ``inputs``) in ``cache_dir``, or ``build()``'s result, stored.

    ``inputs`` must hold every value that determines the graph, as JSON values: pass arrays
    and matrices as :func:`array_digest` / :func:`sparse_digest`. Example::

        cached_graph(folder, "text-knn", {"features": array_digest(text), "k": 10,
                     "weighted": True, "normalization": "sym"}, lambda: ...)

    The file is ``<cache_dir>/<name>-<hash of name and inputs>.npz``, written to a temporary
    file first and renamed, so a killed run never leaves half a file. A file that cannot be
    read is rebuilt (with a warning). Files for older inputs stay; delete the folder to
    reclaim the space.
    """
    if not _FILE_NAME.fullmatch(name):
        raise SigerecError(f"graph cache name {name!r} must be letters, digits, '.', '_' or '-' (it is a file name).")
    path = Path(cache_dir) / f"{name}-{_cache_key(name, inputs)[:32]}.npz"
    if path.exists():
        try:
            return sp.csr_matrix(sp.load_npz(path))
        except Exception as error:  # noqa: BLE001 - load_npz raises many types; an unreadable file is a miss
            warnings.warn(f"{path}: unreadable cached graph ({error!r}); building it again.", stacklevel=2)
    graph = sp.csr_matrix(build())
    atomic_write(path, lambda temporary: sp.save_npz(temporary, graph))
    return graph


def _cache_key(name: str, inputs: dict[str, Any]) -> str:
    try:
        text = json.dumps(
            {"format": CACHE_FORMAT_VERSION, "name": name, "inputs": inputs},
            sort_keys=True,
            allow_nan=False,
            default=_numpy_scalar,
        )
    except (TypeError, ValueError) as error:
        raise SigerecError(
            f"graph cache {name!r}: inputs must be JSON values (str, int, float, bool, lists, dicts) ({error}). "
            "Pass arrays and matrices as array_digest(...) / sparse_digest(...)."
        ) from None
    return hashlib.sha256(text.encode()).hexdigest()


def _numpy_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")
