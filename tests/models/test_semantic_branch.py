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
