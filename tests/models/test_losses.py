"""Shared losses (models/losses.py) by hand; the InfoNCE kernels are tested with SIGE."""

import math

import pytest
import torch

from sigerec.models.losses import bpr_loss, embedding_norm_loss


def test_bpr_loss_is_log2_when_scores_tie_and_small_when_ranked_right():
    assert bpr_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))
    assert bpr_loss(torch.tensor([10.0]), torch.tensor([-10.0])).item() < 1e-8


def test_embedding_norm_loss_is_mmrec_emb_loss_unsquared_norm_over_batch():
    a, b = torch.tensor([[3.0, 4.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert embedding_norm_loss(a, b).item() == pytest.approx((5.0 + 1.0) / 2)
