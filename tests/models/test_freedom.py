import numpy as np
import pytest
import scipy.sparse as sp
import torch

from model_checks import HAND_IMAGE_FEATURES, HAND_TEXT_FEATURES
from model_checks import hand_dataset as _dataset
from sigerec.graphs.adjacency import normalized_interaction_adjacency
from sigerec.graphs.item_graphs import knn_item_graph, normalize_graph
from sigerec.models.freedom import FREEDOM, FREEDOMConfig

IMAGE_FEATURES = HAND_IMAGE_FEATURES
TEXT_FEATURES = HAND_TEXT_FEATURES


def _model(features=None, **config):
    torch.manual_seed(0)
    features = {"image": IMAGE_FEATURES, "text": TEXT_FEATURES} if features is None else features
    config.setdefault("knn_k", 2)
    return FREEDOM(_dataset(features), FREEDOMConfig(embedding_size=4, **config))


def _dense(adjacency):
    return adjacency.to_dense().numpy()


def test_item_graph_mixes_one_tenth_image_and_nine_tenths_text():
    model = _model()
    image = normalize_graph(knn_item_graph(IMAGE_FEATURES, k=2, weighted=False), "sym").toarray()
    text = normalize_graph(knn_item_graph(TEXT_FEATURES, k=2, weighted=False), "sym").toarray()
    # By hand: k = 2 with full rows makes every edge 1/2 after D^-1/2 A D^-1/2.
    assert np.allclose(image[image > 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(model.item_item_graph.scipy.toarray(), 0.1 * image + 0.9 * text, atol=1e-6)


def test_item_graph_of_other_modality_names_weighs_them_equally():
    model = _model({"audio": IMAGE_FEATURES, "text": TEXT_FEATURES})
    audio = normalize_graph(knn_item_graph(IMAGE_FEATURES, k=2, weighted=False), "sym").toarray()
    text = normalize_graph(knn_item_graph(TEXT_FEATURES, k=2, weighted=False), "sym").toarray()
    np.testing.assert_allclose(model.item_item_graph.scipy.toarray(), 0.5 * audio + 0.5 * text, atol=1e-6)


def test_pruning_keeps_rounded_share_of_edges_renormalised():
    model = _model(dropout=0.8)
    torch.manual_seed(1)
    model.pre_epoch(0)
    pruned = _dense(model.pruned_graph.adjacency)
    kept_edges = round(0.2 * 10)
    assert model.kept_edge_count() == kept_edges == 2
    assert (pruned != 0).sum() == 2 * kept_edges  # both directions of each kept edge
    kept = sp.csr_matrix((pruned[:3, 3:] != 0).astype(np.float32))
    np.testing.assert_allclose(pruned, normalized_interaction_adjacency(kept).toarray(), atol=1e-6)
    full = normalized_interaction_adjacency(_dataset({}).train).toarray()
    assert np.all(full[pruned != 0] != 0)  # only training edges are kept


def test_pruning_is_deterministic_for_a_seed_and_varies_across_seeds():
    model = _model(dropout=0.5)
    graphs = []
    for seed in (3, 3, 4, 5, 6):
        torch.manual_seed(seed)
        model.pre_epoch(0)
        graphs.append(_dense(model.pruned_graph.adjacency))
    assert np.array_equal(graphs[0], graphs[1])
    assert any(not np.array_equal(graphs[0], other) for other in graphs[2:])


def test_pruning_prefers_edges_of_low_degree_nodes():
    # p_ui = 1/sqrt(d_u d_i): user 1 - item 2 (degrees 3 and 2) beats user 0 - item 0 (4 and 3).
    model = _model()
    users, items = model.edge_users, model.edge_items
    weight = {(int(u), int(i)): float(w) for u, i, w in zip(users, items, model.edge_weights)}
    assert weight[(1, 2)] == pytest.approx(1 / np.sqrt(3 * 2), rel=1e-5)
    assert weight[(0, 0)] == pytest.approx(1 / np.sqrt(4 * 3), rel=1e-5)


def test_eval_mode_uses_the_full_graph_and_training_the_pruned_one():
    model = _model()
    torch.manual_seed(0)
    model.pre_epoch(0)
    model.train()
    train_users, _ = model.embeddings()
    model.eval()
    eval_users, eval_items = model.embeddings()
    full = torch.from_numpy(normalized_interaction_adjacency(_dataset({}).train).toarray())
    ego = torch.cat([model.user_embedding, model.item_embedding])
    lightgcn = (ego + full @ ego + full @ (full @ ego)) / 3
    smoothed = torch.from_numpy(model.item_item_graph.scipy.toarray()) @ model.item_embedding
    assert torch.allclose(eval_users, lightgcn[:3], atol=1e-6)
    assert torch.allclose(eval_items, lightgcn[3:] + smoothed, atol=1e-6)
    assert not torch.allclose(train_users, eval_users)


def test_loss_is_finite_and_trains_embeddings_and_both_projections():
    model = _model(reg_weight=1e-3)
    torch.manual_seed(0)
    model.pre_epoch(0)
    loss = model.loss(torch.tensor([1, 2]), torch.tensor([0, 3]), torch.tensor([3, 2]))
    assert torch.isfinite(loss)
    loss.backward()
    for name in (
        "user_embedding",
        "item_embedding",
        "feature_projections.image.weight",
        "feature_projections.text.weight",
    ):
        gradient = model.get_parameter(name).grad
        assert gradient is not None and torch.isfinite(gradient).all() and gradient.abs().sum() > 0, name


def test_loss_is_bpr_plus_weighted_modality_bprs():
    model = _model(reg_weight=0.5, dropout=0.0)
    users, items = model.embeddings()
    user = users[[0]]

    def bpr(positive, negative):
        return -torch.nn.functional.logsigmoid((user * positive).sum() - (user * negative).sum())

    expected = bpr(items[[1]], items[[2]])
    for modality in ("image", "text"):
        projected = model.feature_projections[modality](model.features(modality))
        expected = expected + 0.5 * bpr(projected[[1]], projected[[2]])
    loss = model.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_one_modality_uses_its_graph_alone():
    model = _model({"text": TEXT_FEATURES})
    text = normalize_graph(knn_item_graph(TEXT_FEATURES, k=2, weighted=False), "sym").toarray()
    np.testing.assert_allclose(model.item_item_graph.scipy.toarray(), text, atol=1e-6)
    loss = model.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert torch.isfinite(loss)
