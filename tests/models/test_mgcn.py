"""MGCN (models/mgcn.py): its graph, its loss by hand and its training defaults."""

import numpy as np
import pytest
import torch

from semantic_fixtures import BATCH, hand_features, mgcn_model
from sigerec.graphs.item_graphs import knn_item_graph, normalize_graph
from sigerec.models.losses import info_nce
from sigerec.training import runner


def test_both_use_the_authors_lr_decay_unless_overridden():
    config = runner.resolve_config("sige", "somewhere")
    assert config.training.learning_rate_scheduler == (0.96, 50.0)
    assert runner.resolve_config("mgcn", "x").training.learning_rate_scheduler == (0.96, 50.0)
    assert runner.resolve_config("lightgcn", "x").training.learning_rate_scheduler == (1.0, 50.0)
    overridden = runner.resolve_config("sige", "x", overrides={"learning_rate_scheduler": [1.0, 50]})
    assert overridden.training.learning_rate_scheduler == (1.0, 50.0)


def test_mgcn_graph_is_the_weighted_sym_normalised_knn_graph():
    model = mgcn_model()
    for modality, features in hand_features().items():
        expected = normalize_graph(knn_item_graph(features, k=3, weighted=True), "sym").toarray()
        np.testing.assert_allclose(model.item_graphs[modality].scipy.toarray(), expected, atol=1e-6)


def test_mgcn_loss_by_hand():
    model = mgcn_model(cl_weight=0.3, reg_weight=0.1)
    users, positives, negatives = BATCH
    all_users, all_items = model.embeddings()
    behaviour = model.batch_representations(users, positives, negatives)
    u, p, n = all_users[users], all_items[positives], all_items[negatives]
    expected = -torch.nn.functional.logsigmoid((u * p).sum(1) - (u * n).sum(1)).mean()
    expected = expected + 0.1 * 0.5 * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / len(users)
    fused, b = behaviour.fused, behaviour.behaviour
    expected = expected + 0.3 * (
        info_nce(behaviour.part(fused, "positives"), behaviour.part(b, "positives"), 0.2)
        + info_nce(behaviour.part(fused, "users"), behaviour.part(b, "users"), 0.2)
    )
    assert model.loss(users, positives, negatives).item() == pytest.approx(expected.item(), rel=1e-5)
