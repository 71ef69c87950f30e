"""The normalised user-item adjacency (graphs/adjacency.py), by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from sigerec.graphs.adjacency import normalized_interaction_adjacency


def test_normalised_adjacency_matches_hand_computed_values():
    # user 0 - items 0,1; user 1 - item 1. Degrees: u0=2, u1=1, i0=1, i1=2.
    adjacency = normalized_interaction_adjacency(sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32)))
    dense = adjacency.toarray()
    assert dense[0, 2] == pytest.approx(1 / math.sqrt(2 * 1))  # u0-i0
    assert dense[0, 3] == pytest.approx(1 / math.sqrt(2 * 2))  # u0-i1
    assert dense[1, 3] == pytest.approx(1 / math.sqrt(1 * 2))  # u1-i1
    assert dense[1, 2] == 0 and np.allclose(dense, dense.T) and np.all(np.diag(dense) == 0)
