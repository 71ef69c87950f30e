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


def squared_norm_loss(*embeddings: torch.Tensor) -> torch.Tensor:
    """Half the summed squared L2 norms of the batch embeddings, divided by the batch size.

    MGCN's (and SIGE's) regulariser on the final batch vectors: (1/2) sum ||e||^2 / batch.
    Unlike :func:`embedding_norm_loss` the norms are squared, as in MGCN's ``bpr_loss``.
    """
    total = sum(e.pow(2).sum() for e in embeddings)
    return 0.5 * total / embeddings[0].shape[0]


def info_nce(view: torch.Tensor, other_view: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives and cosine similarity (SimCLR/SGL style, as MMRec).

    -mean_n log( exp(cos(x_n, y_n)/tau) / sum_n' exp(cos(x_n, y_n')/tau) ): row n of ``view``
    must match row n of ``other_view`` against every other row. Computed with log-sum-exp,
    which equals MMRec's exp/sum/log form without its overflow at small tau.
    """
    view = torch.nn.functional.normalize(view, dim=1)
    other_view = torch.nn.functional.normalize(other_view, dim=1)
    logits = view @ other_view.t() / temperature  # [batch, batch]
    return (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()
