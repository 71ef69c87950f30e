"""Losses shared by the models (written once, imported everywhere)."""

from __future__ import annotations

import torch


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: -mean log sigmoid(s_pos - s_neg) (Rendle et al. 2009).

    Written with logsigmoid (stable); equals MMRec's -log(1e-10 + sigmoid(.)) up to that 1e-10.
    """
    return -torch.nn.functional.logsigmoid(positive_scores - negative_scores).mean()


def embedding_norm_loss(*embeddings: torch.Tensor) -> torch.Tensor:
    """Sum of the L2 (Frobenius) norms of the batch embeddings, divided by the batch size.

    This is MMRec's ``EmbLoss``: the norm is not squared, so ``reg_weight`` values carry
    over from MMRec configs unchanged.
    """
    total = sum(torch.linalg.vector_norm(e, ord=2) for e in embeddings)
    return total / embeddings[-1].shape[0]
