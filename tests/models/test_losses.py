"""Shared losses (models/losses.py): BPR and norms by hand, the InfoNCE kernels against autograd."""

import math

import numpy as np
import pytest
import torch

from sigerec.models.losses import (
    bpr_loss,
    embedding_norm_loss,
    info_nce,
    multi_positive_info_nce,
    unit_gradient_normalize,
)


def test_bpr_loss_is_log2_when_scores_tie_and_small_when_ranked_right():
    assert bpr_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))
    assert bpr_loss(torch.tensor([10.0]), torch.tensor([-10.0])).item() < 1e-8


def test_embedding_norm_loss_is_mmrec_emb_loss_unsquared_norm_over_batch():
    a, b = torch.tensor([[3.0, 4.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert embedding_norm_loss(a, b).item() == pytest.approx((5.0 + 1.0) / 2)


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


def test_bfloat16_products_keep_infonce_and_its_gradients_close_and_are_scoped():
    from sigerec.models.losses import contrastive_precision, info_nce

    torch.manual_seed(0)
    view = torch.randn(256, 32, requires_grad=True)
    other = torch.randn(256, 32, requires_grad=True)

    def loss_and_gradients():
        view.grad = other.grad = None
        loss = info_nce(view, other, 0.2)
        loss.backward()
        return loss.detach(), view.grad.clone(), other.grad.clone()

    exact = loss_and_gradients()
    with contrastive_precision(torch.bfloat16):
        low = loss_and_gradients()
    assert not torch.equal(low[0], exact[0])  # the products did run in bfloat16
    for got, expected in zip(low, exact):
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-4)
    torch.testing.assert_close(loss_and_gradients()[0], exact[0], rtol=0, atol=0)  # float32 again outside
