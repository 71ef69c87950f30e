"""MGCN and SIGE: shared semantic branch, SIGE's graphs, losses, ablations and the MGCN reduction."""

import numpy as np
import pytest
import torch

from sigerec.data.dataset import Dataset
from sigerec.graphs.item_graphs import cooccurrence_item_graph, knn_item_graph, mix_graphs, normalize_graph
from sigerec.models.losses import info_nce, multi_positive_info_nce, unit_gradient_normalize
from sigerec.models.mgcn import MGCN, MGCNConfig
from sigerec.models.semantic_branch import SemanticFuser
from sigerec.models.sige import SIGE, SIGEConfig, first_occurrences
from sigerec.training import runner

N_USERS, N_ITEMS = 12, 10


def _features(seed=0):
    # Test fixtures, not content: seeded random vectors standing in for two modalities.
    rng = np.random.default_rng(seed)
    return {"image": rng.random((N_ITEMS, 6)).astype(np.float32), "text": rng.random((N_ITEMS, 4)).astype(np.float32)}


def _dataset(features=None):
    rng = np.random.default_rng(1)
    users = np.concatenate([np.arange(N_USERS), rng.integers(0, N_USERS, 40)])
    items = np.concatenate([np.arange(N_USERS) % N_ITEMS, rng.integers(0, N_ITEMS, 40)])
    matrix = Dataset.interaction_matrix(users, items, N_USERS, N_ITEMS)
    features = _features() if features is None else features
    return Dataset("hand", N_USERS, N_ITEMS, matrix, matrix.copy(), matrix.copy(), features=features)


def _sige(features=None, **config):
    torch.manual_seed(0)
    config.setdefault("knn_k", 3)
    config.setdefault("cooccurrence_k", 3)
    return SIGE(_dataset(features), SIGEConfig(embedding_size=8, **config))


def _mgcn(features=None, **config):
    torch.manual_seed(0)
    config.setdefault("knn_k", 3)
    return MGCN(_dataset(features), MGCNConfig(embedding_size=8, **config))


BATCH = (torch.tensor([0, 3, 3, 7, 11]), torch.tensor([0, 3, 5, 7, 1]), torch.tensor([2, 9, 4, 1, 8]))
# SIGE's extras off, and its contrastive training as MGCN's (exact cosine gradients, batch rows).
ALL_SIGE_PARTS_OFF = {
    "infusion_alpha": 0.0,
    "perturbation": "none",
    "modality_alignment": "none",
    "cosine_gradient": "exact",
    "contrastive_rows": "batch",
    "contrastive_warmup": 0,
}


def test_both_use_the_authors_lr_decay_unless_overridden():
    config = runner.resolve_config("sige", "somewhere")
    assert config.training.learning_rate_scheduler == (0.96, 50.0)
    assert runner.resolve_config("mgcn", "x").training.learning_rate_scheduler == (0.96, 50.0)
    assert runner.resolve_config("lightgcn", "x").training.learning_rate_scheduler == (1.0, 50.0)
    overridden = runner.resolve_config("sige", "x", overrides={"learning_rate_scheduler": [1.0, 50]})
    assert overridden.training.learning_rate_scheduler == (1.0, 50.0)


def test_mgcn_graph_is_the_weighted_sym_normalised_knn_graph():
    model = _mgcn()
    for modality, features in _features().items():
        expected = normalize_graph(knn_item_graph(features, k=3, weighted=True), "sym").toarray()
        np.testing.assert_allclose(model.item_graphs[modality].scipy.toarray(), expected, atol=1e-6)


def test_sige_graph_infuses_the_cooccurrence_graph():
    model = _sige(infusion_alpha=0.3)
    dataset = _dataset()
    collaborative = normalize_graph(cooccurrence_item_graph(dataset.train, k=3), "sym")
    for modality, features in _features().items():
        semantic = normalize_graph(knn_item_graph(features, k=3, weighted=True), "sym")
        expected = mix_graphs([semantic, collaborative], [0.7, 0.3]).toarray()
        np.testing.assert_allclose(model.item_graphs[modality].scipy.toarray(), expected, atol=1e-6)
    binary = _sige(infusion_alpha=0.0, knn_weighted=False)
    expected = normalize_graph(knn_item_graph(_features()["text"], k=3, weighted=False), "sym").toarray()
    np.testing.assert_allclose(binary.item_graphs["text"].scipy.toarray(), expected, atol=1e-6)


@pytest.mark.parametrize("build", [_mgcn, _sige])
def test_batch_rows_equal_the_full_forward(build):
    model = build()
    users, positives, negatives = BATCH
    batch = model.batch_representations(users, positives, negatives)
    all_users, all_items = model.embeddings()
    assert torch.allclose(batch.part(batch.final, "users"), all_users[users], atol=1e-6)
    assert torch.allclose(batch.part(batch.final, "positives"), all_items[positives], atol=1e-6)
    assert torch.allclose(batch.part(batch.final, "negatives"), all_items[negatives], atol=1e-6)


def test_item_semantics_by_hand():
    model = _mgcn()
    modality = "text"
    projected = model.projections[modality](model.features(modality))
    gated = model.embedding[N_USERS:] * torch.sigmoid(model.gates[modality][0](projected))
    graph = torch.from_numpy(model.item_graphs[modality].scipy.toarray())
    assert torch.allclose(model.item_semantics()[modality], graph @ gated, atol=1e-6)
    ungated = _sige(modality_gate=False)
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


def test_mgcn_loss_by_hand():
    model = _mgcn(cl_weight=0.3, reg_weight=0.1)
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


@pytest.mark.parametrize("align", [0.0, 0.05])
def test_sige_with_its_parts_off_is_mgcn(align):
    sige = _sige(align_weight=align, **ALL_SIGE_PARTS_OFF)
    mgcn = _mgcn(cl_weight=align)
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
    reference = _sige(**ALL_SIGE_PARTS_OFF).loss(*BATCH).item()
    for part in ({"infusion_alpha": 0.5}, {"perturbation": "modulus"}, {"modality_alignment": "anchor"}):
        torch.manual_seed(5)
        changed = _sige(**{**ALL_SIGE_PARTS_OFF, **part}).loss(*BATCH).item()
        assert changed != pytest.approx(reference, rel=1e-6), part


def test_anchor_info_nce_by_hand():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    view_a = torch.tensor([[2.0, 0.5], [0.1, 1.0], [1.0, 0.0]])
    view_b = torch.tensor([[1.0, -1.0], [0.0, 3.0], [0.5, 0.5]])
    tau = 0.5

    def cos(x, y):
        return float(x @ y / (x.norm() * y.norm()))

    expected = 0.0
    for n in range(3):
        positive = sum(np.exp(cos(anchors[n], v[n]) / tau) for v in (view_a, view_b))
        total = sum(np.exp(cos(anchors[n], v[j]) / tau) for v in (view_a, view_b) for j in range(3))
        expected += -np.log(positive / total) / 3
    assert multi_positive_info_nce(anchors, [view_a, view_b], tau).item() == pytest.approx(expected, rel=1e-5)
    # One view: the standard InfoNCE.
    assert multi_positive_info_nce(anchors, [view_a], tau).item() == pytest.approx(
        info_nce(anchors, view_a, tau).item()
    )


@pytest.mark.parametrize(
    ("kind", "expected_norm"),
    [
        ("modulus", lambda z: 0.1 * z.norm(dim=1)),
        ("constant", lambda z: torch.full((3,), 0.1)),
        ("relative", lambda z: 0.1 * z.norm(dim=1) / z.norm(dim=1).mean()),
    ],
)
def test_perturbation_norm_follows_the_modulus_and_keeps_signs(kind, expected_norm):
    model = _sige(perturbation=kind, noise_eps=0.1)
    z = torch.tensor([[3.0, -4.0, 0.0], [0.1, 0.0, -0.1], [-1.0, -1.0, 1.0]])
    torch.manual_seed(3)
    delta = model.perturb(z) - z
    assert torch.allclose(delta.norm(dim=1), expected_norm(z), atol=1e-6)
    assert (delta * z >= 0).all()  # the noise lies in the node's own orthant (sign(z) * u)
    torch.manual_seed(3)
    assert torch.equal(model.perturb(z), delta + z)  # the global RNG makes it reproducible


def test_pairwise_alignment_and_one_modality():
    one = {"text": _features()["text"]}
    model = _sige(one, **{**ALL_SIGE_PARTS_OFF, "modality_alignment": "pairwise"})
    reference = _sige(one, **ALL_SIGE_PARTS_OFF)
    assert model.loss(*BATCH).item() == pytest.approx(reference.loss(*BATCH).item(), rel=1e-6)
    three = {**_features(), "audio": _features(2)["text"]}
    loss = _sige(three, modality_alignment="pairwise").loss(*BATCH)
    assert torch.isfinite(loss)


def test_anchor_gradient_switch():
    users, positives, negatives = BATCH
    for flag in (True, False):
        model = _sige(anchor_gradient=flag, **{**ALL_SIGE_PARTS_OFF, "modality_alignment": "anchor"}, align_weight=0.0)
        batch = model.batch_representations(users, positives, negatives)
        behaviour = batch.part(batch.behaviour, "users")
        behaviour.retain_grad()
        semantics = {m: batch.part(z, "users") for m, z in batch.semantics.items()}
        model._modality_alignment_loss(semantics, behaviour).backward()
        assert (behaviour.grad is not None and behaviour.grad.abs().sum() > 0) == flag


def test_full_sige_loss_trains_every_parameter():
    model = _sige()
    torch.manual_seed(0)
    loss = model.loss(*BATCH)
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("n_views", "tau"), [(1, 0.2), (2, 0.2), (3, 0.5), (2, 0.03), (2, 0.01)])
def test_fused_info_nce_matches_the_autograd_formula(n_views, tau):
    torch.manual_seed(n_views)
    anchors = torch.randn(37, 5, dtype=torch.float64, requires_grad=True)
    views = [torch.randn(37, 5, dtype=torch.float64, requires_grad=True) for _ in range(n_views)]

    def formula():
        a = torch.nn.functional.normalize(anchors, dim=1)
        logits = torch.stack([a @ torch.nn.functional.normalize(v, dim=1).t() for v in views]) / tau  # [M, n, n]
        positives = torch.logsumexp(logits.diagonal(dim1=1, dim2=2), dim=0)
        return (torch.logsumexp(logits.permute(1, 0, 2).flatten(1), dim=1) - positives).mean()

    expected = formula()
    expected_grads = torch.autograd.grad(expected, [anchors, *views])
    fused = multi_positive_info_nce(anchors, views, tau)
    fused_grads = torch.autograd.grad(fused, [anchors, *views])
    assert fused.item() == pytest.approx(expected.item(), rel=1e-9)
    for a, b in zip(fused_grads, expected_grads):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-12)


def test_fused_info_nce_backward_can_run_twice_with_retain_graph():
    torch.manual_seed(0)
    anchors = torch.randn(9, 4, requires_grad=True)
    views = [torch.randn(9, 4, requires_grad=True) for _ in range(2)]
    loss = multi_positive_info_nce(anchors, views, 0.2)
    first = torch.autograd.grad(loss, [anchors, *views], retain_graph=True)
    second = torch.autograd.grad(loss, [anchors, *views])
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_unit_gradient_normalize_keeps_the_value_and_drops_the_inverse_norm():
    torch.manual_seed(0)
    vectors = torch.randn(6, 4, dtype=torch.float64)
    weights = torch.randn(6, 4, dtype=torch.float64)
    for scale in (1e-3, 1.0, 50.0):
        exact = (scale * vectors).requires_grad_()
        unit = (scale * vectors).requires_grad_()
        exact_out = torch.nn.functional.normalize(exact, dim=1)
        unit_out = unit_gradient_normalize(unit)
        assert torch.allclose(exact_out, unit_out)
        (exact_out * weights).sum().backward()
        (unit_out * weights).sum().backward()
        norms = (scale * vectors).norm(dim=1, keepdim=True)
        # Same direction as the exact gradient, |x| times its length: independent of the scale.
        assert torch.allclose(unit.grad, exact.grad * norms)
        direction = torch.nn.functional.normalize(vectors, dim=1)
        assert torch.allclose(unit.grad, weights - direction * (direction * weights).sum(1, keepdim=True))


def test_unit_cosine_gradient_gives_the_same_loss_with_bounded_gradients():
    exact, unit = _sige(cosine_gradient="exact"), _sige(cosine_gradient="unit")
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
    batch_rows = _sige(contrastive_rows="batch", **settings)
    unique_rows = _sige(contrastive_rows="unique", **settings)
    assert unique_rows.loss(*distinct).item() == pytest.approx(batch_rows.loss(*distinct).item(), rel=1e-6)
    # BATCH repeats user 3: the unique variant compares one row fewer, so its loss differs.
    assert unique_rows.loss(*BATCH).item() != pytest.approx(batch_rows.loss(*BATCH).item(), rel=1e-6)


def test_contrastive_warmup_scales_only_the_contrastive_terms():
    model = _sige(contrastive_warmup=4, perturbation="none")
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
    model = _sige(perturbation="none")
    terms = model.loss_terms(*BATCH)
    assert set(terms) == {"bpr", "reg", "anchor", "align"}
    assert model.loss(*BATCH).item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)


def test_bounded_gradient_is_unit_below_norm_one_and_exact_above():
    torch.manual_seed(1)
    direction = torch.nn.functional.normalize(torch.randn(1, 5, dtype=torch.float64), dim=1)
    weights = torch.randn(1, 5, dtype=torch.float64)
    for length, reference in ((0.01, "unit"), (0.5, "unit"), (3.0, "exact")):
        bounded = (length * direction).requires_grad_()
        compared = (length * direction).requires_grad_()
        (unit_gradient_normalize(bounded, bounded=True) * weights).sum().backward()
        if reference == "unit":
            (unit_gradient_normalize(compared) * weights).sum().backward()
        else:
            (torch.nn.functional.normalize(compared, dim=1) * weights).sum().backward()
        assert torch.allclose(bounded.grad, compared.grad), length
