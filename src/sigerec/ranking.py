"""The library's one top-k rule: the k best of each row, best first, equal scores to the lower id.

Every ranked list goes through here: the evaluator's top K (``evaluation/evaluator.py``), exact
and FAISS retrieval (``serving/retrieval.py``) and the neighbours of the kNN and co-occurrence
item graphs (``graphs/item_graphs.py``). One rule means results never depend on a sort
algorithm, a block size or a BLAS build (``torch.topk`` and ``argpartition`` break ties
arbitrarily), and the evaluator, the served lists and the graphs agree on ties.

- ``top_k_items``: dense ``[n, n_items]`` scores, torch or numpy, to ``[n, k]`` item ids;
- ``top_k``: one vector of scores (optionally of given candidate ids) to ``(ids, scores)``;
- ``top_k_entries``: sparse ``(row, col, value)`` entries to the k best entries of each row.

Dense rows are not sorted whole: on a CPU a cheap bound first narrows each row to the few items
that can reach its top k (``torch.topk`` over 7,000 items costs more than the scoring matmul
there), and only rows with ties are sorted.
"""

from __future__ import annotations

import numpy as np
import torch

# The bound is the k-th largest of this many x k block maxima: 2 leaves ~1.4 k candidates
# per row on float scores; more blocks tighten it little and cost more to rank.
_CANDIDATE_BLOCKS_PER_K = 2
_NUMPY_READABLE = (torch.float16, torch.float32, torch.float64)


def top_k_items(scores: torch.Tensor | np.ndarray, k: int) -> torch.Tensor | np.ndarray:
    """Column ids ``[n, min(k, n_items)]`` (int64) of each row's highest scores, best first.

    Equal scores rank the lower id first, also at the top-k boundary. Returns the kind it is
    given: a tensor (on the scores' device) for a tensor, an array for an array. On a CPU a
    cheap bound first narrows each row to the few items that can reach its top k, in numpy,
    whose compare, flatnonzero and partition are several times faster than torch's on one core;
    on a GPU ``torch.topk`` over the row is fast. Only rows with ties pay for a sort.
    """
    if isinstance(scores, np.ndarray):
        return top_k_items(_tensor_of(scores), k).numpy()
    scores = scores.detach().contiguous()
    k = min(k, scores.shape[1])
    numpy_can_read = scores.device.type == "cpu" and scores.dtype in _NUMPY_READABLE
    if numpy_can_read and _bound_pays_off(scores.shape[1], k):
        return _rank_candidates(*_top_k_candidates(scores, k), k)
    return _rank_candidates(scores, None, k)


def top_k(scores: np.ndarray, k: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest of ``scores`` [n] as ``(ids, scores)`` (int64, float32), best first.

    ``ids`` names each score's item (default: its position), e.g. the candidates an index
    returned; equal scores rank the lower id first. A whole catalogue's scores are first
    narrowed to the items that can reach the top k; only those are sorted.
    """
    scores = np.asarray(scores)
    if ids is None:
        ids = np.arange(len(scores))
        if _bound_pays_off(len(scores), k):
            ids = np.flatnonzero(scores >= _candidate_threshold(scores[None, :], k)[0])
            scores = scores[ids]
    ids = np.asarray(ids, dtype=np.int64)
    best = np.lexsort((ids, -scores))[: max(k, 0)]  # score descending, then lower id
    return ids[best], scores[best].astype(np.float32)


def top_k_entries(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k entries of largest value in each row, ties to the lower column id, as ``(rows, cols, values)``.

    For sparse scores given as coordinates in any order (no repeated ``(row, col)``); the result
    is ordered by row, then best first.
    """
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank_in_row = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    keep = rank_in_row < k
    return rows[keep], cols[keep], values[keep]


def _bound_pays_off(n_items: int, k: int) -> bool:
    """Whether each of the 2k blocks of ``_candidate_threshold`` holds several items."""
    return 0 < k and n_items // (_CANDIDATE_BLOCKS_PER_K * k) >= 2


def _candidate_threshold(scores: torch.Tensor | np.ndarray, k: int) -> np.ndarray:
    """``[n, 1]``: a score that no item of a row's top k lies below, found without sorting the row.

    The k-th largest of the maxima of 2k blocks is a score that k distinct items reach, so no
    row's k-th score lies below it; items at or above it (ties at the boundary included) are
    the candidates, ~1.4 k per row on float scores.
    """
    n_blocks = _CANDIDATE_BLOCKS_PER_K * k
    block_size = scores.shape[1] // n_blocks
    blocks = scores[:, : n_blocks * block_size].reshape(scores.shape[0], n_blocks, block_size)
    # torch takes the maxima of many rows several times faster than numpy; numpy is quicker for one.
    block_max = blocks.amax(dim=2).numpy() if isinstance(blocks, torch.Tensor) else blocks.max(axis=2)
    return np.partition(block_max, n_blocks - k, axis=1)[:, n_blocks - k, None]


def _top_k_candidates(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's items that can reach its top k: ``[n, width]`` scores and ids, ids ascending.

    Rows are padded with -inf to the longest row; a padded row has at least k real candidates
    above -inf. Runs in numpy, whose compare, flatnonzero and partition are several times
    faster than torch's on one core.
    """
    n_rows, n_items = scores.shape
    row_scores = scores.numpy()
    kept = np.flatnonzero(row_scores >= _candidate_threshold(scores, k))  # row-major: ids ascend within a row
    rows = kept // n_items
    kept_per_row = np.bincount(rows, minlength=n_rows)
    width = int(kept_per_row.max())
    padded_position = np.arange(len(kept)) + rows * width - (np.cumsum(kept_per_row) - kept_per_row)[rows]
    candidate_scores = np.full(n_rows * width, -np.inf, dtype=row_scores.dtype)
    candidate_scores[padded_position] = row_scores.ravel()[kept]
    candidate_items = np.zeros(n_rows * width, dtype=np.int64)
    candidate_items[padded_position] = kept - rows * n_items
    return (
        torch.from_numpy(candidate_scores).view(n_rows, width),
        torch.from_numpy(candidate_items).view(n_rows, width),
    )


def _tensor_of(array: np.ndarray) -> torch.Tensor:
    """The array as a CPU tensor sharing its memory (a copy of a read-only array, which torch refuses)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _rank_candidates(scores: torch.Tensor, items: torch.Tensor | None, k: int) -> torch.Tensor:
    """Top k of each row of candidates whose item ids ascend along the row (``None``: column = id).

    ``torch.topk`` orders ties arbitrarily, so rows with a tie inside the top k or across its
    boundary are re-ranked by a stable sort, which keeps ascending ids: the tie rule.
    """
    if k <= 0:
        return torch.empty(scores.shape[0], 0, dtype=torch.long, device=scores.device)
    top_scores, top_positions = scores.topk(k, dim=1)
    kth_score = top_scores[:, -1:]
    tie_across_boundary = (scores >= kth_score).sum(dim=1) > k
    tie_inside = (top_scores[:, 1:] == top_scores[:, :-1]).any(dim=1)
    tied_rows = (tie_across_boundary | tie_inside).nonzero().squeeze(1)
    if len(tied_rows) > 0:
        stable_order = torch.sort(scores[tied_rows], dim=1, descending=True, stable=True).indices
        top_positions[tied_rows] = stable_order[:, :k]
    return top_positions if items is None else items.gather(1, top_positions)
