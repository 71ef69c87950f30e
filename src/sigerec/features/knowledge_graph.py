"""Item features from a knowledge graph: a reduced multi-hot of each item's one-hop relations.

Why: multimodal recommenders need at least two item modalities, and for MovieLens-100k there
are no images (neither are there any for the Amazon sets here: no ``image_feat.npy`` could be
obtained). What *is* real for ML-100k is the Freebase graph RecBole ships with it:
``ml-100k.kg`` (91,631 ``head relation tail`` triples) and ``ml-100k.link`` (1,598
``item_id entity_id`` rows). Its facts (actors, genres, directors, writers, awards, language,
country, rating, sequels, ...) are a second real modality beside the titles and genres.

How each item gets a vector:

1. dataset item -> raw item id (``i_id_mapping.csv``; without it the dataset ids are the raw
   ids) -> the linked entity (first row of the link file wins);
2. one-hop neighbours in both directions: a triple ``(entity, r, t)`` gives the feature
   ``"r:t"``, a triple ``(h, r, entity)`` gives ``"~r:h"`` (the inverse relation);
3. a sparse multi-hot matrix [items, features]. Features held by fewer than
   ``min_entity_items`` dataset items are dropped (a feature of one item carries no
   similarity signal). RecBole's graph stores most relations twice (``film.film.genre`` and
   ``film.film_genre.films_in_this_genre``), so features that join the *same* neighbour
   entity to exactly the *same* items are merged into one column: otherwise genres would
   count twice as much as actors, whose relation has no inverse in the file;
4. optional TF-IDF weighting (on by default): ``idf = ln((1 + N) / (1 + df)) + 1`` with N the
   items that have a feature, so a rare shared actor counts more than "English language";
   rows are L2-normalised so items with many facts do not dominate the reduction;
5. a deterministic truncated SVD to ``dim`` dimensions (LAPACK's exact SVD for small
   matrices, ARPACK ``svds`` with a fixed start vector otherwise); each component's sign is
   fixed so that its largest-magnitude entry is positive; item coordinates ``U * S`` are
   L2-normalised, so the dot product of two rows is their cosine similarity.

CAVEAT (checked on the shared copy): the ``item_id`` column of RecBole's ``ml-100k.link``
follows MovieLens-1M movie ids, not ML-100k's. Every film linked to Harrison Ford's entity
(m.0c0k1) is a Harrison Ford film under its ML-1M id (260, 1196, 1210, 1198, 1291, ...) but an
unrelated ML-100k film under the same number (Star Wars, ML-100k 50, gets The Usual Suspects).
Known upstream: RUCAIBox/RecSysDatasets issue #130. The graph facts are real; their attachment
to ML-100k items through this link file is not, until the link is re-keyed by title:
``benchmarks/prepare_data.py --datasets ml100k-kg`` does that with the ML-100k -> ML-1M
crosswalk in ``benchmarks/data`` (1,485 of the 1,598 link rows re-keyed).

Items without a link, without any kept feature, or whose reduced row is zero get no vector;
``write_features`` mean-fills them and lists them in ``<modality>_feat.missing.tsv``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from sigerec.data.atomic import load_dataset
from sigerec.data.builtin import resolve_data_path
from sigerec.data.id_maps import item_raw_ids
from sigerec.data.tabular import column, read_table
from sigerec.errors import SigerecError
from sigerec.features.batches import file_digest
from sigerec.features.store import write_features

KG_COLUMNS = ("head_id", "relation_id", "tail_id")
LINK_COLUMNS = ("item_id", "entity_id")
INVERSE_PREFIX = "~"
# Below this many cells LAPACK's full SVD is cheap and exact; above it ARPACK's truncated one.
DENSE_SVD_MAX_CELLS = 4_000_000


def _read_columns(path: str | Path, names: tuple[str, ...], what: str) -> pd.DataFrame:
    """The named string columns of a RecBole atomic file (``:token`` suffixes stripped)."""
    path = Path(path)
    if not path.is_file():
        raise SigerecError(f"{path}: no such {what} file (RecBole atomic format, columns {', '.join(names)}).")
    table = read_table(path, sep="\t")
    return pd.DataFrame({name: column(table, name, f"the {what} file format").to_numpy() for name in names})


def _dataset_item_count(dataset_dir: Path, raw_ids: np.ndarray | None) -> int:
    return len(raw_ids) if raw_ids is not None else load_dataset(dataset_dir, warn=lambda _message: None).n_items


def _deterministic_svd(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Top-``k`` left singular vectors and values, largest first, with a fixed sign per component."""
    n_rows, n_cols = matrix.shape
    if k >= min(n_rows, n_cols) or n_rows * n_cols <= DENSE_SVD_MAX_CELLS:
        u, s, _ = np.linalg.svd(matrix.toarray(), full_matrices=False)
        u, s, method = u[:, :k], s[:k], "numpy.linalg.svd (exact)"
    else:
        v0 = np.full(min(n_rows, n_cols), 1.0 / np.sqrt(min(n_rows, n_cols)))
        u, s, _ = svds(matrix.astype(np.float64), k=k, v0=v0, solver="arpack")
        order = np.argsort(-s, kind="stable")
        u, s, method = u[:, order], s[order], "scipy.sparse.linalg.svds (arpack, fixed v0)"
    biggest = np.abs(u).argmax(axis=0)
    signs = np.sign(u[biggest, np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    return u * signs, s, method


def knowledge_graph_features(
    kg_file: str | Path,
    link_file: str | Path,
    dataset_dir: str | Path,
    dim: int = 128,
    min_entity_items: int = 2,
    seed: int = 0,
    tfidf: bool = True,
    n_items: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Vectors [n, dim'] for the dataset items that are linked and have kept features.

    Returns ``(items, vectors, info)``: the dataset item ids (ascending), their L2-normalised
    float32 vectors and counts for provenance. ``dim'`` is ``min(dim, items, features)``
    (the rank bound of the matrix); ``info["dim"]`` says which. ``seed`` is recorded only:
    the reduction is deterministic without randomness (fixed ARPACK start vector).
    """
    if dim < 1:
        raise SigerecError(f"dim must be at least 1, got {dim}.")
    if min_entity_items < 1:
        raise SigerecError(f"min_entity_items must be at least 1, got {min_entity_items}.")
    dataset_dir = Path(dataset_dir)
    links = _read_columns(link_file, LINK_COLUMNS, "link")
    triples = _read_columns(kg_file, KG_COLUMNS, "knowledge-graph")
    raw_ids = item_raw_ids(dataset_dir, n_items)  # with n_items given, a map of another length is refused
    if n_items is None:
        n_items = _dataset_item_count(dataset_dir, raw_ids)
    raw = raw_ids.astype(str) if raw_ids is not None else np.arange(n_items).astype(str)

    # dataset item -> raw id -> entity (first link row of each raw id wins)
    first_links = links.drop_duplicates("item_id", keep="first")
    entity_of_raw = pd.Series(first_links["entity_id"].to_numpy(), index=first_links["item_id"].to_numpy())
    entities = entity_of_raw.reindex(raw).to_numpy()
    linked = pd.notna(entities)
    if not linked.any():
        raise SigerecError(
            f"{link_file}: no item of {dataset_dir} is linked to an entity (compared the link file's item_id "
            f"with the dataset's {'raw ids in i_id_mapping.csv' if raw_ids is not None else 'item ids'}). "
            "Check that the link file belongs to this dataset."
        )
    item_entities = pd.DataFrame({"item": np.flatnonzero(linked), "entity": entities[linked].astype(str)})

    # one-hop neighbours in both directions
    out_edges = triples.merge(item_entities, left_on="head_id", right_on="entity")
    in_edges = triples.merge(item_entities, left_on="tail_id", right_on="entity")
    pairs = pd.concat(
        [
            pd.DataFrame(
                {
                    "item": out_edges["item"],
                    "neighbour": out_edges["tail_id"],
                    "feature": out_edges["relation_id"] + ":" + out_edges["tail_id"],
                }
            ),
            pd.DataFrame(
                {
                    "item": in_edges["item"],
                    "neighbour": in_edges["head_id"],
                    "feature": INVERSE_PREFIX + in_edges["relation_id"] + ":" + in_edges["head_id"],
                }
            ),
        ],
        ignore_index=True,
    ).drop_duplicates(["item", "feature"])
    features_total = int(pairs["feature"].nunique())

    # keep features shared by enough items; merge same-neighbour columns with identical item sets
    holders = pairs.groupby("feature")["item"].transform("size")
    pairs = pairs[holders >= min_entity_items]
    features_shared = int(pairs["feature"].nunique())
    if len(pairs):
        item_sets = (
            pairs.sort_values("item")
            .groupby("feature", sort=True)
            .agg(neighbour=("neighbour", "first"), items=("item", lambda s: tuple(s)))
        )
        canonical = item_sets.reset_index().groupby(["neighbour", "items"], sort=False)["feature"].transform("min")
        rename = pd.Series(canonical.to_numpy(), index=item_sets.index)
        pairs = pairs.assign(feature=rename.reindex(pairs["feature"]).to_numpy()).drop_duplicates(["item", "feature"])
    features_kept = int(pairs["feature"].nunique())

    info = {
        "kg_triples": len(triples),
        "link_rows": len(links),
        "link_rows_repeating_an_item": int(len(links) - len(first_links)),
        "link_rows_not_in_dataset": int((~first_links["item_id"].isin(set(raw))).sum()),
        "items_linked": int(linked.sum()),
        "items_not_linked": int(n_items - linked.sum()),
        "features_total": features_total,
        "features_shared": features_shared,  # held by >= min_entity_items items
        "features_kept": features_kept,  # after merging same-neighbour, same-items columns
        "min_entity_items": min_entity_items,
        "weighting": "tf-idf (ln((1+N)/(1+df))+1), rows L2-normalised" if tfidf else "binary, rows L2-normalised",
        "seed": seed,
    }
    if features_kept == 0:
        info.update(items_with_features=0, items_zero_after_reduction=0, dim=0, dim_requested=dim)
        return np.empty(0, dtype=np.int64), np.empty((0, dim), dtype=np.float32), info

    items, item_index = np.unique(pairs["item"].to_numpy(), return_inverse=True)
    feature_names, feature_index = np.unique(pairs["feature"].to_numpy().astype(str), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(pairs)), (item_index, feature_index)), shape=(len(items), len(feature_names)))
    if tfidf:
        df = np.asarray((matrix > 0).sum(axis=0)).ravel()
        idf = np.log((1.0 + len(items)) / (1.0 + df)) + 1.0
        matrix = matrix @ sp.diags(idf)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    matrix = sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)

    k = min(dim, *matrix.shape)
    started = time.perf_counter()
    u, s, method = _deterministic_svd(matrix, k)
    vectors = u * s
    lengths = np.linalg.norm(vectors, axis=1)
    nonzero = lengths > 1e-12
    vectors = (vectors[nonzero] / lengths[nonzero, None]).astype(np.float32)
    total_energy = float(matrix.multiply(matrix).sum())
    info.update(
        items_with_features=len(items),
        items_zero_after_reduction=int((~nonzero).sum()),
        dim=int(k),
        dim_requested=dim,
        reduction=method,
        explained_energy=float((s**2).sum() / total_energy) if total_energy else 0.0,
        reduction_seconds=round(time.perf_counter() - started, 3),
    )
    return items[nonzero].astype(np.int64), vectors, info


def encode_knowledge_graph(
    kg_file: str | Path,
    link_file: str | Path,
    data: str | Path,
    modality: str = "kg",
    dim: int = 128,
    min_entity_items: int = 2,
    seed: int = 0,
    tfidf: bool = True,
    warn=None,
) -> dict:
    """Write ``<data>/<modality>_feat.npy`` (+ ``.json``, ``.missing.tsv``) from a knowledge graph.

    Returns the metadata written: sources with SHA-256, dimension, features kept and the
    coverage counts (``encoded`` items have a vector, the rest are mean-filled).
    """
    dataset_dir = resolve_data_path(data)
    dataset = load_dataset(dataset_dir, warn=warn)
    items, vectors, info = knowledge_graph_features(
        kg_file, link_file, dataset_dir, dim, min_entity_items, seed, tfidf, n_items=dataset.n_items
    )
    if len(items) == 0:
        raise SigerecError(
            f"{kg_file}: no item of {dataset_dir} has a relation shared by at least {min_entity_items} items "
            f"({info['items_linked']} items are linked). Lower min_entity_items or check the files."
        )
    raw_ids = item_raw_ids(dataset_dir, dataset.n_items)
    metadata = {
        "encoder": {
            "kind": "knowledge-graph one-hop multi-hot + truncated SVD",
            "dim_requested": dim,
            "min_entity_items": min_entity_items,
            "tfidf": tfidf,
            "seed": seed,
        },
        "source": {
            "kg_file": str(Path(kg_file).resolve()),
            "kg_sha256": file_digest(Path(kg_file)),
            "link_file": str(Path(link_file).resolve()),
            "link_sha256": file_digest(Path(link_file)),
        },
        **{key: value for key, value in info.items() if key not in ("dim", "dim_requested", "seed")},
    }
    return write_features(
        dataset_dir,
        modality,
        dataset.n_items,
        items,
        vectors,
        metadata,
        raw_id=(lambda item: str(item)) if raw_ids is None else (lambda item: str(raw_ids[item])),
    )
