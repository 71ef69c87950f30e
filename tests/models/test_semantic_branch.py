"""The behaviour + semantics machinery MGCN and SIGE share (models/semantic_branch.py), by hand."""

import pytest
import torch

from semantic_fixtures import BATCH, N_USERS, mgcn_model, sige_model
from sigerec.models.semantic_branch import SemanticFuser


@pytest.mark.parametrize("build", [mgcn_model, sige_model])
def test_batch_rows_equal_the_full_forward(build):
    model = build()
    users, positives, negatives = BATCH
    batch = model.batch_representations(users, positives, negatives)
    all_users, all_items = model.embeddings()
    assert torch.allclose(batch.part(batch.final, "users"), all_users[users], atol=1e-6)
    assert torch.allclose(batch.part(batch.final, "positives"), all_items[positives], atol=1e-6)
    assert torch.allclose(batch.part(batch.final, "negatives"), all_items[negatives], atol=1e-6)


def test_item_semantics_by_hand():
    model = mgcn_model()
    modality = "text"
    projected = model.projections[modality](model.features(modality))
    gated = model.embedding[N_USERS:] * torch.sigmoid(model.gates[modality][0](projected))
    graph = torch.from_numpy(model.item_graphs[modality].scipy.toarray())
    assert torch.allclose(model.item_semantics()[modality], graph @ gated, atol=1e-6)
    ungated = sige_model(modality_gate=False)
    graph = torch.from_numpy(ungated.item_graphs[modality].scipy.toarray())
    projected = ungated.projections[modality](ungated.features(modality))
    assert torch.allclose(ungated.item_semantics()[modality], graph @ projected, atol=1e-6)


def test_attention_fuser_with_neutral_weights_by_hand():
    fuser = SemanticFuser(["a", "b"], 3, "attention")
    with torch.no_grad():
        for parameter in fuser.parameters():
            parameter.zero_()  # attention 1/2 each; preference gates sigmoid(0) = 1/2
    z_a, z_b = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 0.0, -3.0]])
    # common c = (z_a + z_b)/2; s = (0.5 (z_a - c) + 0.5 (z_b - c) + c) / 3 = (z_a + z_b) / 6
    fused = fuser({"a": z_a, "b": z_b}, torch.ones(1, 3))
    assert torch.allclose(fused, (z_a + z_b) / 6)
    single = SemanticFuser(["a"], 3, "attention")({"a": z_a}, torch.ones(1, 3))
    assert torch.allclose(single, z_a / 2)  # one modality: the common part, no specific part
    mean = SemanticFuser(["a", "b"], 3, "mean")({"a": z_a, "b": z_b}, torch.ones(1, 3))
    assert torch.allclose(mean, (z_a + z_b) / 2)


def _loss_and_gradients(model, batch):
    torch.manual_seed(5)  # SIGE's noise: the same draws on both paths
    model.zero_grad(set_to_none=True)
    loss = model.loss(*batch)
    loss.backward()
    grads = {name: p.grad.to_dense() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize(
    "build",
    [mgcn_model, sige_model, lambda: sige_model(n_ii_layers=2, n_ui_layers=3), lambda: sige_model(modality_gate=False)],
)
def test_batch_local_steps_give_the_full_steps_loss_and_gradients(build):
    model = build()
    full_loss, full_grads = _loss_and_gradients(model, BATCH)
    model.use_batch_steps()
    local_loss, local_grads = _loss_and_gradients(model, BATCH)
    torch.testing.assert_close(local_loss, full_loss, rtol=1e-5, atol=1e-6)
    assert local_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(local_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert model.embedding.grad.is_sparse  # the ID table gets a sparse gradient


def test_batch_local_steps_on_a_graph_larger_than_the_batch_neighbourhood():
    import numpy as np

    from sigerec.data.dataset import Dataset
    from sigerec.models.sige import SIGE, SIGEConfig

    rng = np.random.default_rng(3)
    n_users, n_items = 400, 300
    users = np.repeat(np.arange(n_users), 3)
    matrix = Dataset.interaction_matrix(users, rng.integers(0, n_items, len(users)), n_users, n_items)
    # Test fixture, not content: seeded random vectors standing in for a modality.
    features = {"text": rng.random((n_items, 5)).astype(np.float32)}
    torch.manual_seed(0)
    model = SIGE(Dataset("random", n_users, n_items, matrix, matrix, matrix, features=features), SIGEConfig(knn_k=3))
    batch = (torch.tensor([1, 2, 50]), torch.tensor([4, 8, 9]), torch.tensor([100, 200, 299]))
    full_loss, full_grads = _loss_and_gradients(model, batch)
    model.use_batch_steps()
    local_loss, local_grads = _loss_and_gradients(model, batch)
    torch.testing.assert_close(local_loss, full_loss, rtol=1e-5, atol=1e-6)
    for name, grad in full_grads.items():
        torch.testing.assert_close(local_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    touched = model.text_features.grad.coalesce().indices()[0]
    assert len(touched) < n_items / 2  # features of items outside the neighbourhood are never read
