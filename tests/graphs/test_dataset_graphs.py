import numpy as np
import scipy.sparse as sp

from sigerec.data.dataset import Dataset
from sigerec.graphs import dataset_graphs, item_graphs
from sigerec.graphs.item_graphs import cooccurrence_item_graph, knn_item_graph, normalize_graph

FEATURES = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)


def _dataset(path):
    users = np.array([0, 0, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 0, 1, 1, 2, 3])
    matrix = Dataset.interaction_matrix(users, items, 3, 4)
    return Dataset("hand", 3, 4, matrix, matrix.copy(), matrix.copy(), features={"text": FEATURES}, path=path)


def test_graphs_equal_the_builders_and_are_cached_on_disk(tmp_path):
    dataset = _dataset(tmp_path)
    knn = dataset_graphs.modality_knn_graph(dataset, "text", k=2, weighted=True)
    expected = normalize_graph(knn_item_graph(FEATURES, k=2, weighted=True), "sym")
    np.testing.assert_allclose(knn.toarray(), expected.toarray(), atol=1e-7)
    cooccurrence = dataset_graphs.cooccurrence_graph(dataset, k=2)
    np.testing.assert_allclose(
        cooccurrence.toarray(), normalize_graph(cooccurrence_item_graph(dataset.train, k=2), "sym").toarray()
    )
    files = sorted(p.name for p in (tmp_path / dataset_graphs.GRAPH_CACHE_FOLDER).iterdir())
    assert len(files) == 2 and files[0].startswith("cooccurrence-") and files[1].startswith("text-knn-")
    # A second call reads the file (a changed file on disk proves it is not rebuilt).
    path = tmp_path / dataset_graphs.GRAPH_CACHE_FOLDER / files[1]
    sp.save_npz(path, sp.csr_matrix(np.eye(4, dtype=np.float32)))
    assert (dataset_graphs.modality_knn_graph(dataset, "text", k=2, weighted=True).toarray() == np.eye(4)).all()
    # Other arguments are another graph.
    binary = dataset_graphs.modality_knn_graph(dataset, "text", k=2, weighted=False)
    assert not (binary.toarray() == np.eye(4)).all()


def test_dataset_without_folder_builds_in_memory():
    graph = dataset_graphs.modality_knn_graph(_dataset(None), "text", k=1)
    assert graph.nnz == 4


def _cache_files(path):
    return sorted(p.name for p in (path / dataset_graphs.GRAPH_CACHE_FOLDER).iterdir())


def test_auto_and_exact_share_a_cached_graph_and_faiss_has_its_own(tmp_path):
    dataset = _dataset(tmp_path)
    auto = dataset_graphs.modality_knn_graph(dataset, "text", k=2, method="auto")
    exact = dataset_graphs.modality_knn_graph(dataset, "text", k=2, method="exact")
    assert (auto != exact).nnz == 0 and len(_cache_files(tmp_path)) == 1
    dataset_graphs.modality_knn_graph(dataset, "text", k=2, method="faiss")
    assert len(_cache_files(tmp_path)) == 2


def test_auto_above_the_threshold_is_cached_as_faiss(tmp_path, monkeypatch):
    dataset = _dataset(tmp_path)
    dataset_graphs.modality_knn_graph(dataset, "text", k=2, method="faiss")
    monkeypatch.setattr(item_graphs, "AUTO_EXACT_MAX_ITEMS", 3)  # the dataset has 4 items
    dataset_graphs.modality_knn_graph(dataset, "text", k=2, method="auto")
    assert len(_cache_files(tmp_path)) == 1


def test_cooccurrence_cap_is_part_of_the_cache_key(tmp_path):
    dataset = _dataset(tmp_path)
    # User 2 has 3 items: a cap of 2 samples them, a cap of 3 leaves the graph as it is.
    capped = dataset_graphs.cooccurrence_graph(dataset, k=2, max_user_degree=2)
    uncapped = dataset_graphs.cooccurrence_graph(dataset, k=2, max_user_degree=3)
    assert len(_cache_files(tmp_path)) == 2
    assert (uncapped != dataset_graphs.cooccurrence_graph(dataset, k=2)).nnz == 0
    assert (capped != uncapped).nnz > 0
