"""The graphs of a dataset: its user-item graph and its item-item graphs, cached beside its files.

Every model asks here for its graphs instead of calling the builders itself, so a graph is
built the same way everywhere. The user-item graph (``interaction_graph``) is cheap and built
per run; item-item graphs are reused across runs: the cache key holds the
digests of the features / train matrix and every builder argument (see ``graph_cache.py``).
Datasets without a folder (built in memory, e.g. in tests) or in a read-only folder are
built without caching.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import scipy.sparse as sp
import torch

from sigerec.data.dataset import Dataset
from sigerec.graphs.approximate_knn import ivf_settings
from sigerec.graphs.graph_cache import array_digest, cached_graph, sparse_digest
from sigerec.graphs.interaction_graph import InteractionGraph
from sigerec.graphs.item_graphs import (
    COOCCURRENCE_MAX_USER_DEGREE,
    cooccurrence_item_graph,
    knn_item_graph,
    normalize_graph,
    resolve_knn_method,
)

GRAPH_CACHE_FOLDER = Path(".sigerec-cache") / "graphs"
# The seed of a graph's random choices (the FAISS k-means sample, heavy users' subsample): one
# fixed value, so that a dataset's graphs do not change with a run's seed and are cached once.
GRAPH_SEED = 0


def modality_knn_graph(
    dataset: Dataset,
    modality: str,
    k: int = 10,
    weighted: bool = True,
    normalization: str = "sym",
    method: str = "auto",
) -> sp.csr_matrix:
    """The normalised top-k cosine graph of one modality's features (S_hat^m).

    ``method``: "auto", "exact" or "faiss" (``item_graphs.KnnMethod``). The cache key holds the
    method it resolves to, so "auto" and "exact" share the exact graph of a small catalogue, and
    for "faiss" the IVF settings and seed as well.
    """
    features = dataset.features[modality]
    resolved = resolve_knn_method(method, len(features))
    inputs = {"features": array_digest(features), "k": k, "weighted": weighted, "normalization": normalization}
    inputs["method"] = resolved
    if resolved == "faiss":
        inputs.update(ivf_settings(), seed=GRAPH_SEED)
    return _cached(
        dataset,
        f"{modality}-knn",
        inputs,
        lambda: normalize_graph(
            knn_item_graph(features, k=k, weighted=weighted, method=resolved, seed=GRAPH_SEED), normalization
        ),
    )


def cooccurrence_graph(
    dataset: Dataset,
    k: int = 10,
    weighting: str = "count",
    normalization: str = "sym",
    max_user_degree: int = COOCCURRENCE_MAX_USER_DEGREE,
) -> sp.csr_matrix:
    """The normalised top-k co-interaction graph of the training split (SIGE's C_hat); users with
    more than ``max_user_degree`` training items count with a sample of them (see
    ``cooccurrence_item_graph``)."""
    inputs = {
        "train": sparse_digest(dataset.train),
        "k": k,
        "weighting": weighting,
        "normalization": normalization,
        "max_user_degree": max_user_degree,
        "seed": GRAPH_SEED,
    }
    return _cached(
        dataset,
        "cooccurrence",
        inputs,
        lambda: normalize_graph(
            cooccurrence_item_graph(
                dataset.train, k=k, weighting=weighting, max_user_degree=max_user_degree, seed=GRAPH_SEED
            ),
            normalization,
        ),
    )


def _cached(dataset: Dataset, name: str, inputs: dict, build) -> sp.csr_matrix:
    if dataset.path is None:
        return sp.csr_matrix(build())
    built: list[sp.csr_matrix] = []

    def build_once() -> sp.csr_matrix:
        built.append(sp.csr_matrix(build()))
        return built[0]

    try:
        return cached_graph(Path(dataset.path) / GRAPH_CACHE_FOLDER, name, inputs, build_once)
    except OSError as error:
        warnings.warn(
            f"graph cache under {dataset.path} not writable ({error}); graphs are rebuilt per run.", stacklevel=3
        )
        return built[0] if built else build_once()


def interaction_graph(dataset: Dataset, device: str | torch.device = "cpu") -> InteractionGraph:
    """The normalised user-item graph of the training split, ready to propagate over."""
    return InteractionGraph(dataset.train, device)
