"""The on-disk graph cache: hits, misses on changed inputs, corrupt files, digests."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.graphs.graph_cache import array_digest, cached_graph, sparse_digest

GRAPH = sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.0, 1.0]], dtype=np.float32))


class CountingBuilder:
    """A ``build`` callable that records how often the cache had to call it."""

    def __init__(self, graph: sp.csr_matrix = GRAPH):
        self.graph = graph
        self.calls = 0

    def __call__(self) -> sp.csr_matrix:
        self.calls += 1
        return self.graph


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"))


def test_second_call_with_same_inputs_loads_the_file_without_building(tmp_path):
    build = CountingBuilder()
    inputs = {"features": "abc", "k": 10, "weighted": True}
    first = cached_graph(tmp_path, "text-knn", inputs, build)
    second = cached_graph(tmp_path, "text-knn", dict(reversed(inputs.items())), build)
    assert build.calls == 1
    assert isinstance(second, sp.csr_matrix) and second.dtype == np.float32
    assert (second != first).nnz == 0 and (second != GRAPH).nnz == 0
    assert len(cache_files(tmp_path)) == 1


@pytest.mark.parametrize("changed", [{"k": 5}, {"weighted": False}, {"features": "abd"}, {"extra": 1}])
def test_changed_inputs_build_a_new_graph(tmp_path, changed):
    build = CountingBuilder()
    inputs = {"features": "abc", "k": 10, "weighted": True}
    cached_graph(tmp_path, "text-knn", inputs, build)
    cached_graph(tmp_path, "text-knn", {**inputs, **changed}, build)
    assert build.calls == 2
    assert len(cache_files(tmp_path)) == 2


def test_another_name_with_the_same_inputs_is_another_graph(tmp_path):
    build = CountingBuilder()
    cached_graph(tmp_path, "image-knn", {"k": 10}, build)
    cached_graph(tmp_path, "text-knn", {"k": 10}, build)
    assert build.calls == 2


@pytest.mark.parametrize("damage", [b"not a zip file at all", b""])
def test_corrupt_cache_file_is_rebuilt_and_replaced(tmp_path, damage):
    build = CountingBuilder()
    cached_graph(tmp_path, "text-knn", {"k": 10}, build)
    (path,) = cache_files(tmp_path)
    path.write_bytes(damage)
    with pytest.warns(UserWarning, match="building it again"):
        graph = cached_graph(tmp_path, "text-knn", {"k": 10}, build)
    assert build.calls == 2 and (graph != GRAPH).nnz == 0
    assert (sp.load_npz(path) != GRAPH).nnz == 0


def test_truncated_cache_file_is_rebuilt(tmp_path):
    build = CountingBuilder()
    cached_graph(tmp_path, "text-knn", {"k": 10}, build)
    (path,) = cache_files(tmp_path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.warns(UserWarning):
        cached_graph(tmp_path, "text-knn", {"k": 10}, build)
    assert build.calls == 2


def test_no_temporary_file_is_left_behind_and_the_folder_is_created(tmp_path):
    folder = tmp_path / "cache" / "graphs"
    cached_graph(folder, "text-knn", {"k": 10}, CountingBuilder())
    assert [p.name for p in folder.iterdir()] == [cache_files(folder)[0].name]


def test_failed_build_writes_nothing(tmp_path):
    def failing_build():
        raise RuntimeError("features missing")

    with pytest.raises(RuntimeError):
        cached_graph(tmp_path, "text-knn", {"k": 10}, failing_build)
    assert list(tmp_path.iterdir()) == []


def test_inputs_that_are_not_json_values_are_refused(tmp_path):
    with pytest.raises(SigerecError, match="array_digest"):
        cached_graph(tmp_path, "text-knn", {"features": np.ones(3)}, CountingBuilder())


def test_numpy_scalars_are_accepted_as_inputs(tmp_path):
    build = CountingBuilder()
    cached_graph(tmp_path, "text-knn", {"k": np.int64(10), "alpha": np.float32(0.5)}, build)
    cached_graph(tmp_path, "text-knn", {"k": 10, "alpha": 0.5}, build)
    assert build.calls == 1


def test_names_that_are_not_plain_file_names_are_refused(tmp_path):
    with pytest.raises(SigerecError, match="file name"):
        cached_graph(tmp_path, "../escape", {"k": 10}, CountingBuilder())


def test_array_digest_follows_values_dtype_and_shape():
    values = np.arange(6, dtype=np.float32)
    assert array_digest(values) == array_digest(values.copy())
    assert array_digest(values) != array_digest(values + np.float32(1e-6) * (values == 5))
    assert array_digest(values) != array_digest(values.astype(np.float64))
    assert array_digest(values) != array_digest(values.reshape(2, 3))
    # A non-contiguous view digests as its values.
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert array_digest(matrix[:, ::2]) == array_digest(np.ascontiguousarray(matrix[:, ::2]))


def test_sparse_digest_ignores_representation_but_not_entries():
    coo = sp.coo_matrix(([1.0, 2.0, 0.0], ([0, 1, 1], [1, 0, 1])), shape=(2, 2))  # an explicit zero
    split = sp.coo_matrix(([0.5, 0.5, 2.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))  # duplicates summing to 1
    assert sparse_digest(coo) == sparse_digest(split) == sparse_digest(coo.tocsc())
    assert sparse_digest(coo) != sparse_digest(sp.coo_matrix(([1.0, 3.0], ([0, 1], [1, 0])), shape=(2, 2)))
    assert sparse_digest(coo) != sparse_digest(sp.coo_matrix(([1.0, 2.0], ([0, 1], [1, 0])), shape=(3, 2)))
