"""Losses shared by the models (written once, imported everywhere)."""

from __future__ import annotations

import contextlib
import contextvars

import torch

# The dtype of the similarity products in contrastive losses: None (the inputs' own) unless
# training asks for bfloat16 (``TrainingConfig.mixed_precision``, see :func:`contrastive_precision`).
_PRODUCT_DTYPE: contextvars.ContextVar[torch.dtype | None] = contextvars.ContextVar("product_dtype", default=None)


@contextlib.contextmanager
def contrastive_precision(dtype: torch.dtype | None):
    """Run the [rows, views x rows] similarity products of InfoNCE in ``dtype`` inside the block.

    bfloat16 halves the memory traffic of those products and runs on AMX / AVX512-BF16 units
    where the CPU has them; the products accumulate in float32 and everything after them
    (exp, sums, logs, gradients of the inputs) stays float32, so only the cosines lose digits
    (about 3 significant ones). docs/scaling.md measures the speed and the accuracy effect.
    """
    token = _PRODUCT_DTYPE.set(dtype)
    try:
        yield
    finally:
        _PRODUCT_DTYPE.reset(token)


def _product(left: torch.Tensor, right: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``left @ right`` computed in ``dtype`` (None: the inputs' own), returned in the working
    dtype (the dtype of the input that is not already ``dtype``, e.g. float32)."""
    if dtype is None:
        return torch.mm(left, right)
    working = right.dtype if left.dtype == dtype else left.dtype
    return torch.mm(left.to(dtype), right.to(dtype)).to(working)


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


def info_nce(
    view: torch.Tensor, other_view: torch.Tensor, temperature: float, unit_gradient: bool = False
) -> torch.Tensor:
    """InfoNCE with in-batch negatives and cosine similarity (SimCLR/SGL style, as MMRec).

    -mean_n log( exp(cos(x_n, y_n)/tau) / sum_n' exp(cos(x_n, y_n')/tau) ): row n of ``view``
    must match row n of ``other_view`` against every other row. Equals MMRec's exp/sum/log form.
    ``unit_gradient``: see :func:`unit_gradient_normalize`.
    """
    return multi_positive_info_nce(view, [other_view], temperature, unit_gradient)


def _normalize_rows(vectors: torch.Tensor, unit_gradient: bool | str) -> torch.Tensor:
    """x / |x| with the gradient ``unit_gradient`` asks for (False: exact; True/"unit"; "bounded")."""
    if unit_gradient:
        return unit_gradient_normalize(vectors, bounded=unit_gradient == "bounded")
    return torch.nn.functional.normalize(vectors, dim=1)


def unit_gradient_normalize(vectors: torch.Tensor, bounded: bool = False) -> torch.Tensor:
    """Rows scaled to unit length, x / |x|, with the gradient they would have if |x| were 1.

    The exact gradient of x / |x| is (I - x^ x^T) g / |x|: a cosine loss pushes a row of norm
    0.01 a hundred times harder than a row of norm 1. Embeddings start tiny (Xavier rows of a
    large table, averaged over graph neighbours), so every cosine term then outweighs BPR,
    whose gradient grows with the norms instead, and Adam, normalising the sum, starves the
    ranking objective (docs/sige.md, "Why SIGE stalled"). This keeps the direction of the exact
    gradient (its tangent part) and drops the 1/|x| factor; the forward value is unchanged.
    ``bounded``: drop it only below |x| = 1, i.e. scale by 1 / max(|x|, 1), so that rows longer
    than 1 get their exact gradient.
    """
    return _UnitGradientNormalize.apply(vectors, bounded)


class _UnitGradientNormalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, vectors, bounded: bool):
        norms = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
        unit = vectors / norms.clamp_min(1e-12)  # as torch.nn.functional.normalize
        ctx.save_for_backward(unit, norms.clamp_min(1.0) if bounded else None)
        return unit

    @staticmethod
    def backward(ctx, grad_output):
        unit, scale = ctx.saved_tensors
        tangent = grad_output - unit * (unit * grad_output).sum(1, keepdim=True)
        return (tangent if scale is None else tangent / scale), None


def multi_positive_info_nce(
    anchors: torch.Tensor, views: list[torch.Tensor], temperature: float, unit_gradient: bool | str = False
) -> torch.Tensor:
    """InfoNCE of each anchor against several views of every row (cosine similarity):

        -mean_n log( sum_m exp(cos(a_n, v^m_n)/tau) / sum_m sum_n' exp(cos(a_n, v^m_n')/tau) )

    the row's own vectors in every view are the positives, all other rows' the negatives.
    One view is the standard InfoNCE; several are SIGE's anchor-based InfoNCE (sige.md s. 5).

    The [rows, views x rows] similarity matrix dominates a contrastive step, so it goes through
    a fused kernel (:class:`_MultiPositiveInfoNCE`) that makes far fewer passes over it than the
    autograd formula, same values and gradients (tested in float64). ``unit_gradient``: the
    rows are normalised by :func:`unit_gradient_normalize` (gradients free of the 1/|x| factor);
    ``"bounded"`` passes ``bounded=True`` to it.
    """
    anchors = _normalize_rows(anchors, unit_gradient)
    stacked = torch.cat([_normalize_rows(v, unit_gradient) for v in views])  # [M * rows, d]
    if 1.0 / temperature > _MAX_EXPONENT:  # exp(+-1/tau) could overflow float32 sums: log-sum-exp
        return _multi_positive_info_nce_reference(anchors, stacked, len(views), temperature)
    return _MultiPositiveInfoNCE.apply(anchors, stacked, len(views), temperature)


_MAX_EXPONENT = 40.0  # e^40 ~ 2e17: sums of millions of such terms stay far from float32's 3e38


def _multi_positive_info_nce_reference(anchors, stacked, n_views: int, temperature: float) -> torch.Tensor:
    logits = anchors @ stacked.t() / temperature  # [rows, M * rows]
    rows = anchors.shape[0]
    positives = logits.view(rows, n_views, rows).diagonal(dim1=0, dim2=2)  # [M, rows]
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(positives, dim=0)).mean()


class _MultiPositiveInfoNCE(torch.autograd.Function):
    """Forward and backward of the multi-positive InfoNCE for unit-length inputs.

    Cosines lie in [-1, 1], so exp(cos/tau) lies in [exp(-1/tau), exp(1/tau)]: for tau >= 1/40
    neither overflows nor underflows in float32, and no running maximum is needed.
    With S = exp(logits), P = S / rowsum(S) (softmax over all columns) and Q = softmax over the
    positive columns, the gradient of the logits is (P - Q) / rows. P is never formed: the
    row scaling 1/rowsum(S) moves onto the [rows, d] factors of the two products, and Q, which
    lives on the M positive diagonals only, is applied to them directly. So the backward reads
    the [rows, M * rows] buffer twice (once per product) and writes nothing of its size.
    """

    @staticmethod
    def forward(ctx, anchors, stacked, n_views: int, temperature: float):
        inverse = 1.0 / temperature
        ctx.product_dtype = _PRODUCT_DTYPE.get()  # the backward's products use the forward's dtype
        similarity = _product(anchors * inverse, stacked.t(), ctx.product_dtype).exp_()  # S: [rows, M * rows]
        rows = anchors.shape[0]
        positives = similarity.view(rows, n_views, rows).diagonal(dim1=0, dim2=2)  # [M, rows]
        positive_total, total = positives.sum(0), similarity.sum(1)
        ctx.save_for_backward(anchors, stacked, similarity, total, positives / positive_total)
        ctx.n_views, ctx.inverse = n_views, inverse
        return (total.log() - positive_total.log()).mean()

    @staticmethod
    @torch.autograd.function.once_differentiable  # the saved buffers carry no graph
    def backward(ctx, grad_output):
        anchors, stacked, similarity, total, positive_share = ctx.saved_tensors  # Q: [M, rows]
        if ctx.product_dtype is not None:  # one cast of the [rows, M * rows] buffer serves both products
            similarity = similarity.to(ctx.product_dtype)
        rows, n_views = anchors.shape[0], ctx.n_views
        scale = grad_output * ctx.inverse / rows
        inverse_total = total.reciprocal().unsqueeze(1)  # [rows, 1]
        share = positive_share.unsqueeze(2)  # [M, rows, 1]
        anchor_grad = None
        if ctx.needs_input_grad[0]:  # (P - Q) @ stacked
            views = stacked.view(n_views, rows, -1)
            anchor_grad = (
                _product(similarity, stacked, ctx.product_dtype) * inverse_total - (share * views).sum(0)
            ) * scale
        # (P - Q)^T @ anchors
        stacked_grad = _product(similarity.t(), anchors * inverse_total, ctx.product_dtype) - (share * anchors).reshape(
            n_views * rows, -1
        )
        return anchor_grad, stacked_grad * scale, None, None
