"""Item-item graph builders against hand-computed neighbours and values."""

import math
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.graphs import item_graphs
from sigerec.graphs.approximate_knn import N_PROBE, knn_recall, n_lists_for
from sigerec.graphs.item_graphs import (
    cap_user_degrees,
    cooccurrence_item_graph,
    knn_item_graph,
    mix_graphs,
    normalize_graph,
    resolve_knn_method,
)

R = 1 / math.sqrt(2)

# Five items on a chain of directions; cosines by hand (R = 1/sqrt(2)):
#        0    1    2    3    4
#   0    1    R    0    0    0
#   1    R    1    R   1/2   0
#   2    0    R    1    R    0
#   3    0   1/2   R    1    R
#   4    0    0    0    R    1
CHAIN = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32)

# 4 users x 5 items. Co-interaction counts by hand (who shares the pair):
#   C01 = 2 (u0, u1), C02 = 1 (u0), C04 = 1 (u3), C12 = 2 (u0, u2), C13 = 1 (u2), C23 = 1 (u2).
# Users per item: n0 = 3, n1 = 3, n2 = 2, n3 = 1, n4 = 1.
TRAIN = sp.csr_matrix(
    np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 0, 0, 0, 1],
        ],
        dtype=np.float32,
    )
)


def neighbours(graph: sp.csr_matrix) -> list[list[int]]:
    return [sorted(graph.indices[graph.indptr[i] : graph.indptr[i + 1]].tolist()) for i in range(graph.shape[0])]


def test_knn_keeps_self_and_breaks_ties_towards_the_lower_item_id():
    graph = knn_item_graph(CHAIN, k=2, weighted=True)
    # Rows 1-3 each have two neighbours at R; the lower id wins.
    assert neighbours(graph) == [[0, 1], [0, 1], [1, 2], [2, 3], [3, 4]]
    expected = np.array(
        [
            [1, R, 0, 0, 0],
            [R, 1, 0, 0, 0],
            [0, R, 1, 0, 0],
            [0, 0, R, 1, 0],
            [0, 0, 0, R, 1],
        ]
    )
    np.testing.assert_allclose(graph.toarray(), expected, rtol=1e-6)


def test_knn_with_k3_keeps_only_positive_similarities():
    graph = knn_item_graph(CHAIN, k=3, weighted=True)
    # Items 0 and 4 have only one positive neighbour besides themselves; row 1 drops item 3 (1/2 < R).
    assert neighbours(graph) == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4]]


def test_binary_knn_has_the_same_edges_with_value_one():
    weighted = knn_item_graph(CHAIN, k=2, weighted=True)
    binary = knn_item_graph(CHAIN, k=2, weighted=False)
    assert neighbours(binary) == neighbours(weighted)
    assert np.all(binary.data == 1.0)
    assert binary.dtype == np.float32 and weighted.dtype == np.float32


def test_knn_without_self_takes_the_next_neighbours():
    graph = knn_item_graph(CHAIN, k=2, weighted=True, include_self=False)
    assert neighbours(graph) == [[1], [0, 2], [1, 3], [2, 4], [3]]
    assert graph.diagonal().sum() == 0
    np.testing.assert_allclose(graph.data, R, rtol=1e-6)


def test_identical_feature_vectors_tie_and_the_lower_id_wins_even_over_self():
    # Items 1, 3 and 4 share one direction (as mean-filled missing images do).
    features = np.array([[1, 0], [0, 1], [1, 1], [0, 2], [0, 5]], dtype=np.float32)
    graph = knn_item_graph(features, k=2)
    assert neighbours(graph)[4] == [1, 3]
    assert neighbours(graph)[3] == [1, 3]
    assert neighbours(graph)[1] == [1, 3]


def test_all_zero_feature_rows_have_no_edges_and_no_nan():
    features = np.vstack([CHAIN, np.zeros((1, 3), dtype=np.float32)])
    graph = knn_item_graph(features, k=10, weighted=True)
    assert graph.shape == (6, 6)
    assert graph[5].nnz == 0 and graph[:, 5].nnz == 0
    assert np.isfinite(graph.data).all()
    assert np.isfinite(normalize_graph(graph).data).all()


def test_k_larger_than_the_catalogue_keeps_every_similar_item():
    graph = knn_item_graph(CHAIN, k=50, weighted=True)
    assert neighbours(graph)[1] == [0, 1, 2, 3]
    assert graph[1, 3] == pytest.approx(0.5)


@pytest.mark.parametrize("block_size", [1, 2, 3])
def test_knn_does_not_depend_on_block_size(block_size):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((40, 8)).astype(np.float32)
    features[[3, 17, 39]] = features[5]  # exact ties across block borders
    for weighted in (False, True):
        for include_self in (False, True):
            reference = knn_item_graph(features, k=4, weighted=weighted, include_self=include_self, block_size=4096)
            blocked = knn_item_graph(features, k=4, weighted=weighted, include_self=include_self, block_size=block_size)
            assert (blocked != reference).nnz == 0
            assert np.array_equal(blocked.indices, reference.indices)


def test_knn_rejects_bad_input():
    with pytest.raises(SigerecError, match="numeric"):
        knn_item_graph(np.zeros(5), k=2)
    with pytest.raises(SigerecError, match="row 1"):
        knn_item_graph(np.array([[1.0, 0.0], [np.nan, 1.0]]), k=1)
    with pytest.raises(SigerecError, match="k must be"):
        knn_item_graph(CHAIN, k=0)
    with pytest.raises(SigerecError, match="block_size"):
        knn_item_graph(CHAIN, block_size=0)


def clustered_features(n_items: int, seed: int = 0) -> np.ndarray:
    """Items around 40 random directions in 32-d, a third of the noise of the directions' spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, 32))
    return (centres[rng.integers(0, 40, n_items)] + 0.35 * rng.standard_normal((n_items, 32))).astype(np.float32)


def same_graph(left: sp.csr_matrix, right: sp.csr_matrix) -> bool:
    return (
        np.array_equal(left.indptr, right.indptr)
        and np.array_equal(left.indices, right.indices)
        and np.array_equal(left.data, right.data)
    )


def test_faiss_graph_finds_most_exact_neighbours_of_clustered_items():
    features = clustered_features(3000)
    assert N_PROBE < n_lists_for(3000)  # items really probe a few clusters only
    exact = knn_item_graph(features, k=10, weighted=True, method="exact")
    approximate = knn_item_graph(features, k=10, weighted=True, method="faiss")
    assert knn_recall(approximate, exact) >= 0.95


def test_faiss_graph_keeps_the_exact_graphs_contract():
    features = clustered_features(2000)
    features[7] = 0  # no direction: no neighbours, nobody's neighbour
    exact = knn_item_graph(features, k=5, weighted=True, method="exact")
    graph = knn_item_graph(features, k=5, weighted=True, method="faiss", n_probe=2)
    assert graph.shape == (2000, 2000) and graph.dtype == np.float32
    assert graph[7].nnz == 0 and graph[:, 7].nnz == 0
    assert np.all(np.diff(graph.indptr)[np.arange(2000) != 7] == 5)
    assert np.all(graph.diagonal()[np.arange(2000) != 7] > 0)  # self included
    assert np.all(graph.data > 0)
    # A neighbour that is found has its exact cosine.
    rows, cols = graph.nonzero()
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(graph[rows, cols].A1, (unit[rows] * unit[cols]).sum(axis=1), rtol=1e-5)
    assert knn_recall(graph, exact) < 1  # two probes of many: some neighbours are missed
    binary = knn_item_graph(features, k=5, weighted=False, method="faiss", n_probe=2)
    assert np.array_equal(binary.indices, graph.indices) and np.all(binary.data == 1)


def test_faiss_graph_of_all_zero_features_is_empty():
    graph = knn_item_graph(np.zeros((5, 3)), k=2, method="faiss")
    assert graph.shape == (5, 5) and graph.nnz == 0


def test_faiss_graph_without_self_has_k_other_neighbours():
    features = clustered_features(2000)
    graph = knn_item_graph(features, k=5, weighted=True, include_self=False, method="faiss", n_probe=2)
    assert graph.diagonal().sum() == 0
    assert np.all(np.diff(graph.indptr) == 5)


def test_faiss_graph_probing_every_cluster_is_the_exact_graph():
    features = clustered_features(1500, seed=1)
    features[[3, 17, 900, 1400]] = features[5]  # exact ties
    features[[8, 9]] = 0
    for include_self in (True, False):
        exact = knn_item_graph(features, k=4, weighted=True, include_self=include_self, method="exact")
        approximate = knn_item_graph(
            features, k=4, weighted=True, include_self=include_self, method="faiss", n_probe=10_000
        )
        assert same_graph(approximate, exact)


def test_faiss_graph_gives_every_copy_of_a_vector_its_exact_neighbours():
    # Item 1's vector is also items 0, 2, 4, ..., 1998, as mean-filled features are: its lowest
    # ids are the copies' neighbours at cosine 1. The copies are ranked once and share the result.
    features = clustered_features(2000, seed=2)
    copies = np.concatenate([[1], np.arange(0, 2000, 2)])
    features[copies] = features[1]
    graph = knn_item_graph(features, k=5, method="faiss", n_probe=2)
    assert neighbours(graph[copies]) == [[0, 1, 2, 4, 6]] * len(copies)
    without_self = knn_item_graph(features, k=5, include_self=False, method="faiss", n_probe=2)
    assert neighbours(without_self[[0, 1, 8, 1998]]) == [[1, 2, 4, 6, 8], [0, 2, 4, 6, 8], [0, 1, 2, 4, 6]] + [
        [0, 1, 2, 4, 6]
    ]


def test_faiss_graph_is_the_same_when_built_again():
    features = clustered_features(2000)
    first = knn_item_graph(features, k=5, weighted=True, method="faiss", n_probe=2, seed=3)
    again = knn_item_graph(features, k=5, weighted=True, method="faiss", n_probe=2, seed=3)
    assert same_graph(first, again)


def test_auto_is_exact_up_to_the_threshold_and_faiss_above(monkeypatch):
    features = np.random.default_rng(0).standard_normal((2000, 16))  # no clusters: faiss misses some
    exact = knn_item_graph(features, k=5, method="exact")
    approximate = knn_item_graph(features, k=5, method="faiss")
    assert not same_graph(exact, approximate)
    monkeypatch.setattr(item_graphs, "AUTO_EXACT_MAX_ITEMS", 2000)
    assert resolve_knn_method("auto", 2000) == "exact"
    assert same_graph(knn_item_graph(features, k=5, method="auto"), exact)
    monkeypatch.setattr(item_graphs, "AUTO_EXACT_MAX_ITEMS", 1999)
    assert resolve_knn_method("auto", 2000) == "faiss"
    assert same_graph(knn_item_graph(features, k=5, method="auto"), approximate)
    assert resolve_knn_method("exact", 10**9) == "exact" and resolve_knn_method("faiss", 1) == "faiss"


def test_unknown_knn_method_names_the_choices():
    with pytest.raises(SigerecError, match="knn_method must be one of auto, exact, faiss, got 'annoy'"):
        knn_item_graph(CHAIN, k=2, method="annoy")


def test_faiss_graph_without_faiss_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(SigerecError, match=r"needs faiss-cpu: pip install 'sigerec\[ann\]'.*knn_method=exact"):
        knn_item_graph(CHAIN, k=2, method="faiss")


def test_knn_recall_is_the_share_of_exact_edges_found():
    exact = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32))
    approximate = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]], dtype=np.float32))
    assert knn_recall(approximate, exact) == 0.75  # 3 of the 4 exact edges, whatever the extra ones
    assert knn_recall(approximate, sp.csr_matrix((3, 3))) == 1.0
    with pytest.raises(SigerecError, match="one shape"):
        knn_recall(approximate, sp.csr_matrix((4, 4)))


def test_cooccurrence_counts_shared_users_and_keeps_top_k_with_lower_id_ties():
    graph = cooccurrence_item_graph(TRAIN, k=2)
    # Row 0: C01 = 2, then C02 = C04 = 1 tie -> item 2. Row 2: C21 = 2, then C20 = C23 = 1 -> item 0.
    expected = np.array(
        [
            [0, 2, 1, 0, 0],
            [2, 0, 2, 0, 0],
            [1, 2, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [1, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(graph.toarray(), expected)
    assert graph.dtype == np.float32


def test_cooccurrence_with_large_k_is_r_transpose_r_without_diagonal():
    graph = cooccurrence_item_graph(TRAIN, k=10)
    dense = TRAIN.toarray()
    expected = dense.T @ dense
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(graph.toarray(), expected)


def test_cooccurrence_cosine_weighting_ranks_by_normalised_counts():
    graph = cooccurrence_item_graph(TRAIN, k=2, weighting="cosine")
    # Row 0: C01/sqrt(3*3) = 2/3 and C04/sqrt(3*1) = 1/sqrt(3) beat C02/sqrt(3*2) = 1/sqrt(6).
    assert neighbours(graph) == [[1, 4], [0, 2], [1, 3], [1, 2], [0]]
    assert graph[0, 1] == pytest.approx(2 / 3)
    assert graph[0, 4] == pytest.approx(1 / math.sqrt(3))
    assert graph[1, 2] == pytest.approx(2 / math.sqrt(6))
    assert graph[2, 3] == pytest.approx(1 / math.sqrt(2))


def test_cooccurrence_binarises_ratings_and_ignores_explicit_zeros():
    ratings = TRAIN.multiply(5).tocsr()
    indptr = ratings.indptr.copy()
    indptr[-1] += 1  # an explicit zero appended to user 3's row: item 3 stored but not an interaction
    ratings = sp.csr_matrix((np.append(ratings.data, 0.0), np.append(ratings.indices, 3), indptr), shape=TRAIN.shape)
    assert ratings.nnz == TRAIN.nnz + 1 and ratings[3, 3] == 0
    assert (cooccurrence_item_graph(ratings, k=2) != cooccurrence_item_graph(TRAIN, k=2)).nnz == 0


@pytest.mark.parametrize("max_block_pairs", [1, 40, 200])
def test_cooccurrence_does_not_depend_on_the_block_budget(max_block_pairs):
    rng = np.random.default_rng(1)
    train = sp.random(60, 30, density=0.2, format="csr", random_state=rng)
    reference = cooccurrence_item_graph(train, k=3, max_block_pairs=10**9)
    blocked = cooccurrence_item_graph(train, k=3, max_block_pairs=max_block_pairs)
    assert (blocked != reference).nnz == 0


def test_cooccurrence_rejects_bad_input():
    with pytest.raises(SigerecError, match="sparse"):
        cooccurrence_item_graph(TRAIN.toarray())
    with pytest.raises(SigerecError, match="weighting"):
        cooccurrence_item_graph(TRAIN, weighting="jaccard")
    with pytest.raises(SigerecError, match="max_user_degree must be"):
        cooccurrence_item_graph(TRAIN, max_user_degree=0)


def reference_cooccurrence(train: sp.spmatrix, k: int) -> np.ndarray:
    """R^T R of the binarised matrix without its diagonal, each row's k largest kept, ties to the lower id."""
    interacted = (sp.csr_matrix(train).toarray() != 0).astype(np.float64)
    counts = interacted.T @ interacted
    np.fill_diagonal(counts, 0)
    kept = np.zeros_like(counts)
    for row, values in enumerate(counts):
        best = np.lexsort((np.arange(len(values)), -values))[:k]
        kept[row, best] = values[best]
    return kept


def test_cooccurrence_without_heavy_users_is_the_plain_top_k_of_r_transpose_r():
    rng = np.random.default_rng(4)
    train = sp.random(80, 50, density=0.15, format="csr", random_state=rng)
    max_degree = int(np.diff(train.indptr).max())
    for cap in (max_degree, 1000):  # nobody above the cap: nobody is sampled
        graph = cooccurrence_item_graph(train, k=4, max_user_degree=cap, max_block_pairs=30)
        np.testing.assert_array_equal(graph.toarray(), reference_cooccurrence(train, 4))


def test_heavy_users_count_with_a_seeded_sample_of_max_user_degree_items():
    rng = np.random.default_rng(5)
    train = sp.random(30, 40, density=0.1, format="csr", random_state=rng).tolil()
    train[0, :] = 1.0  # a user with all 40 items, the others far fewer
    train = train.tocsr()
    assert np.diff(train.indptr)[1:].max() <= 12
    capped = cap_user_degrees(sp.csr_matrix((train != 0).astype(np.float64)), max_user_degree=12, seed=0)
    degrees = np.diff(capped.indptr)
    assert degrees[0] == 12 and np.array_equal(degrees[1:], np.diff(train.indptr)[1:])
    assert (capped - capped.multiply(train != 0)).nnz == 0  # a subset of the user's own items
    graph = cooccurrence_item_graph(train, k=40, max_user_degree=12, seed=0)
    np.testing.assert_array_equal(graph.toarray(), reference_cooccurrence(capped, 40))
    assert graph.toarray().sum() < reference_cooccurrence(train, 40).sum()
    again = cooccurrence_item_graph(train, k=40, max_user_degree=12, seed=0)
    other_seed = cap_user_degrees(sp.csr_matrix((train != 0).astype(np.float64)), max_user_degree=12, seed=1)
    assert (graph != again).nnz == 0
    assert not np.array_equal(other_seed[0].indices, capped[0].indices)


def test_cooccurrence_blocks_stay_within_the_pair_budget():
    rng = np.random.default_rng(6)
    interacted = sp.csr_matrix((sp.random(50, 30, density=0.3, format="csr", random_state=rng) != 0).astype(float))
    item_users = interacted.T.tocsr()
    user_degree = np.diff(interacted.indptr)
    row_bound = np.minimum(item_users @ user_degree, 30)  # entries a row of R^T R can hold
    blocks = list(item_graphs._item_blocks(item_users, user_degree, max_pairs=60))
    assert [start for start, _ in blocks] == [0] + [stop for _, stop in blocks[:-1]] and blocks[-1][1] == 30
    for start, stop in blocks:
        assert stop - start == 1 or row_bound[start:stop].sum() <= 60
        assert (item_users[start:stop] @ interacted).nnz <= max(60, row_bound[start:stop].sum())


# A non-symmetric graph whose row sums are squares: d = 4, 4, 9.
ASYMMETRIC = sp.csr_matrix(np.array([[1, 3, 0], [0, 4, 0], [2, 0, 7]], dtype=np.float32))


def test_sym_normalisation_divides_by_the_row_sum_degrees_of_both_ends():
    expected = np.array([[1 / 4, 3 / 4, 0], [0, 4 / 4, 0], [2 / math.sqrt(9 * 4), 0, 7 / 9]])
    np.testing.assert_allclose(normalize_graph(ASYMMETRIC, "sym").toarray(), expected, rtol=1e-6)


def test_rw_normalisation_makes_rows_sum_to_one():
    expected = np.array([[1 / 4, 3 / 4, 0], [0, 1, 0], [2 / 9, 0, 7 / 9]])
    np.testing.assert_allclose(normalize_graph(ASYMMETRIC, "rw").toarray(), expected, rtol=1e-6)


def test_binary_knn_graph_normalises_to_one_over_k_as_in_freedom():
    graph = normalize_graph(knn_item_graph(CHAIN, k=2, weighted=False))
    np.testing.assert_allclose(graph.data, 0.5, rtol=1e-6)


def test_normalize_graph_rejects_unknown_kind():
    with pytest.raises(SigerecError, match="sym, rw"):
        normalize_graph(ASYMMETRIC, "laplacian")


def test_mix_graphs_weights_each_graph():
    image = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0]]))
    text = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 1.0]]))
    mixed = mix_graphs([image, text], [0.1, 0.9])  # FREEDOM's image/text weights
    np.testing.assert_allclose(mixed.toarray(), [[0.1, 0.9], [0.9, 1.0]], rtol=1e-6)
    assert mixed.dtype == np.float32


def test_mix_graphs_with_zero_weight_leaves_the_other_graph_exactly():
    semantic = normalize_graph(knn_item_graph(CHAIN, k=2, weighted=True))
    cooccurrence = normalize_graph(cooccurrence_item_graph(TRAIN, k=2))
    mixed = mix_graphs([semantic, cooccurrence], [1.0, 0.0])  # SIGE with alpha = 0
    assert neighbours(mixed) == neighbours(semantic)
    np.testing.assert_array_equal(mixed.toarray(), semantic.toarray())


def test_mix_graphs_rejects_bad_input():
    graph = sp.identity(3, format="csr")
    with pytest.raises(SigerecError, match="one shape"):
        mix_graphs([graph, sp.identity(4, format="csr")], [0.5, 0.5])
    with pytest.raises(SigerecError, match="2 graphs but 1 weights"):
        mix_graphs([graph, graph], [1.0])
    with pytest.raises(SigerecError, match=">= 0"):
        mix_graphs([graph, graph], [1.5, -0.5])
    with pytest.raises(SigerecError, match=">= 0"):
        mix_graphs([graph], [float("nan")])
    with pytest.raises(SigerecError, match="at least one"):
        mix_graphs([], [])
