"""SIGE (models/sige.py): its graphs, losses, ablation switches and its reduction to MGCN."""

import numpy as np
import pytest
import torch

from semantic_fixtures import ALL_SIGE_PARTS_OFF, BATCH, N_USERS, hand_dataset, hand_features, mgcn_model, sige_model
from sigerec.graphs.item_graphs import cooccurrence_item_graph, knn_item_graph, mix_graphs, normalize_graph
from sigerec.models.sige import first_occurrences


def test_sige_graph_infuses_the_cooccurrence_graph():
    model = sige_model(infusion_alpha=0.3)
    dataset = hand_dataset()
    collaborative = normalize_graph(cooccurrence_item_graph(dataset.train, k=3), "sym")
    for modality, features in hand_features().items():
        semantic = normalize_graph(knn_item_graph(features, k=3, weighted=True), "sym")
        expected = mix_graphs([semantic, collaborative], [0.7, 0.3]).toarray()
        np.testing.assert_allclose(model.item_graphs[modality].scipy.toarray(), expected, atol=1e-6)
    binary = sige_model(infusion_alpha=0.0, knn_weighted=False)
    expected = normalize_graph(knn_item_graph(hand_features()["text"], k=3, weighted=False), "sym").toarray()
    np.testing.assert_allclose(binary.item_graphs["text"].scipy.toarray(), expected, atol=1e-6)


@pytest.mark.parametrize("align", [0.0, 0.05])
def test_sige_with_its_parts_off_is_mgcn(align):
    sige = sige_model(align_weight=align, **ALL_SIGE_PARTS_OFF)
    mgcn = mgcn_model(cl_weight=align)
    assert [name for name, _ in sige.named_parameters()] == [name for name, _ in mgcn.named_parameters()]
    for (name, a), b in zip(sige.named_parameters(), mgcn.parameters()):
        assert torch.equal(a, b), name
    for a, b in zip(sige.embeddings(), mgcn.embeddings()):
        assert torch.equal(a, b)
    assert torch.equal(sige.scorer()(torch.arange(N_USERS)), mgcn.scorer()(torch.arange(N_USERS)))
    sige_loss, mgcn_loss = sige.loss(*BATCH), mgcn.loss(*BATCH)
    assert sige_loss.item() == pytest.approx(mgcn_loss.item(), rel=1e-6)
    sige_loss.backward()
    mgcn_loss.backward()
    for (name, a), b in zip(sige.named_parameters(), mgcn.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-7), name


def test_each_sige_part_changes_the_loss():
    reference = sige_model(**ALL_SIGE_PARTS_OFF).loss(*BATCH).item()
    for part in ({"infusion_alpha": 0.5}, {"perturbation": "modulus"}, {"modality_alignment": "anchor"}):
        torch.manual_seed(5)
        changed = sige_model(**{**ALL_SIGE_PARTS_OFF, **part}).loss(*BATCH).item()
        assert changed != pytest.approx(reference, rel=1e-6), part


@pytest.mark.parametrize(
    ("kind", "expected_norm"),
    [
        ("modulus", lambda z: 0.1 * z.norm(dim=1)),
        ("constant", lambda z: torch.full((3,), 0.1)),
        ("relative", lambda z: 0.1 * z.norm(dim=1) / z.norm(dim=1).mean()),
    ],
)
def test_perturbation_norm_follows_the_modulus_and_keeps_signs(kind, expected_norm):
    model = sige_model(perturbation=kind, noise_eps=0.1)
    z = torch.tensor([[3.0, -4.0, 0.0], [0.1, 0.0, -0.1], [-1.0, -1.0, 1.0]])
    torch.manual_seed(3)
    delta = model.perturb(z) - z
    assert torch.allclose(delta.norm(dim=1), expected_norm(z), atol=1e-6)
    assert (delta * z >= 0).all()  # the noise lies in the node's own orthant (sign(z) * u)
    torch.manual_seed(3)
    assert torch.equal(model.perturb(z), delta + z)  # the global RNG makes it reproducible


def test_pairwise_alignment_and_one_modality():
    one = {"text": hand_features()["text"]}
    model = sige_model(one, **{**ALL_SIGE_PARTS_OFF, "modality_alignment": "pairwise"})
    reference = sige_model(one, **ALL_SIGE_PARTS_OFF)
    assert model.loss(*BATCH).item() == pytest.approx(reference.loss(*BATCH).item(), rel=1e-6)
    three = {**hand_features(), "audio": hand_features(2)["text"]}
    loss = sige_model(three, modality_alignment="pairwise").loss(*BATCH)
    assert torch.isfinite(loss)


def test_anchor_gradient_switch():
    users, positives, negatives = BATCH
    for flag in (True, False):
        model = sige_model(
            anchor_gradient=flag, **{**ALL_SIGE_PARTS_OFF, "modality_alignment": "anchor"}, align_weight=0.0
        )
        batch = model.batch_representations(users, positives, negatives)
        behaviour = batch.part(batch.behaviour, "users")
        behaviour.retain_grad()
        semantics = {m: batch.part(z, "users") for m, z in batch.semantics.items()}
        model._modality_alignment_loss(semantics, behaviour).backward()
        assert (behaviour.grad is not None and behaviour.grad.abs().sum() > 0) == flag


def test_full_sige_loss_trains_every_parameter():
    model = sige_model()
    torch.manual_seed(0)
    loss = model.loss(*BATCH)
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_unit_cosine_gradient_gives_the_same_loss_with_bounded_gradients():
    exact, unit = sige_model(cosine_gradient="exact"), sige_model(cosine_gradient="unit")
    torch.manual_seed(4)
    exact_loss = exact.loss(*BATCH)
    torch.manual_seed(4)
    unit_loss = unit.loss(*BATCH)
    assert unit_loss.item() == pytest.approx(exact_loss.item(), rel=1e-6)
    exact_loss.backward()
    unit_loss.backward()
    # The semantic vectors start with norms far below 1, so the exact gradient is the larger.
    assert exact.embedding.grad.norm() > unit.embedding.grad.norm()


def test_first_occurrences_keeps_one_row_per_id():
    ids = torch.tensor([7, 3, 7, 1, 3, 3, 9])
    assert first_occurrences(ids).tolist() == [3, 1, 0, 6]  # ids 1, 3, 7, 9


def test_unique_rows_give_the_same_loss_when_the_batch_has_no_repeats():
    distinct = (torch.tensor([0, 3, 5, 7, 11]), torch.tensor([0, 3, 5, 7, 1]), torch.tensor([2, 9, 4, 1, 8]))
    settings = {"perturbation": "none"}  # no noise, so the two losses are comparable
    batch_rows = sige_model(contrastive_rows="batch", **settings)
    unique_rows = sige_model(contrastive_rows="unique", **settings)
    assert unique_rows.loss(*distinct).item() == pytest.approx(batch_rows.loss(*distinct).item(), rel=1e-6)
    # BATCH repeats user 3: the unique variant compares one row fewer, so its loss differs.
    assert unique_rows.loss(*BATCH).item() != pytest.approx(batch_rows.loss(*BATCH).item(), rel=1e-6)


def test_contrastive_warmup_scales_only_the_contrastive_terms():
    model = sige_model(contrastive_warmup=4, perturbation="none")
    full = {name: term.item() for name, term in model.loss_terms(*BATCH).items()}
    model.pre_epoch(0)
    first = {name: term.item() for name, term in model.loss_terms(*BATCH).items()}
    for name in ("bpr", "reg"):
        assert first[name] == pytest.approx(full[name])
    for name in ("anchor", "align"):
        assert first[name] == pytest.approx(full[name] / 4)
    model.pre_epoch(3)
    assert model.loss_terms(*BATCH)["align"].item() == pytest.approx(full["align"])


def test_loss_is_the_sum_of_the_named_terms():
    model = sige_model(perturbation="none")
    terms = model.loss_terms(*BATCH)
    assert set(terms) == {"bpr", "reg", "anchor", "align"}
    assert model.loss(*BATCH).item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
