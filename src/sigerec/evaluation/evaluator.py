"""Full-ranking evaluation following MMRec's protocol.

Every user with at least one held-out item is scored against the whole catalogue;
the user's training items are masked to -inf, the top K items are ranked (ties to the
lower item id, ``sigerec.ranking``), and the metrics of ``metrics.py`` are averaged over
users. Users are processed in chunks so memory stays bounded by ``chunk_size x n_items``
whatever the number of users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from sigerec.errors import SigerecError
from sigerec.evaluation.metrics import metric_keys, metric_sums, metric_values
from sigerec.ranking import top_k_items

# Tuned on one CPU core at Amazon-Baby size (19,445 users x 7,050 items): 256 to 1024
# tie; 2048 is slower, as every chunk's fresh [chunk, n_items] score matrix leaves the
# cache and the allocator's reuse. Memory grows with chunk x n_items x ~6 bytes.
DEFAULT_CHUNK_SIZE = 512

ScoreUsers = Callable[[torch.Tensor], torch.Tensor]


def evaluate(
    score_users: ScoreUsers,
    ground_truth: sp.csr_matrix,
    mask: sp.csr_matrix | None,
    ks: Sequence[int] = (5, 10, 20, 50),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    candidates: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean of every metric at every K over users with at least one held-out item (see
    :func:`evaluate_per_user`, which also keeps each user's values)."""
    return evaluate_per_user(score_users, ground_truth, mask, ks, chunk_size, keep_users=False, candidates=candidates)[
        0
    ]


def evaluate_per_user(
    score_users: ScoreUsers,
    ground_truth: sp.csr_matrix,
    mask: sp.csr_matrix | None,
    ks: Sequence[int] = (5, 10, 20, 50),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    keep_users: bool = True,
    candidates: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray] | None]:
    """``(means, per_user)``: the mean of every metric at every K over users with at least one
    held-out item, and (``keep_users``) each such user's values, ``{"user": ids, "recall@20": ...}``.

    ``score_users(user_ids)`` returns float scores ``[len(user_ids), n_items]``; the
    evaluator writes -inf into that tensor at masked items, so return a fresh tensor
    rather than a view of a cached one. ``ground_truth`` and ``mask`` are binary
    ``[n_users, n_items]`` matrices: the held-out items (valid or test split) and the
    items to exclude from ranking (the training items). As in MMRec, |gt| counts every
    held-out item of the user, also one that is masked and so can never be a hit.

    ``candidates`` (ascending item ids, e.g. the cold items of ``evaluation/candidates.py``)
    restricts every ranking to those items and the ground truth to the held-out items among
    them; users with none are skipped. None ranks the whole catalogue.
    """
    ground_truth = ground_truth.tocsr()
    mask = None if mask is None else mask.tocsr()
    _check_arguments(ground_truth, mask, ks, chunk_size)
    n_items = ground_truth.shape[1]
    candidate_columns = None
    if candidates is not None:
        # Columns in ascending id order, so that the tie rule (lower id first) still holds.
        candidate_columns = torch.from_numpy(np.asarray(candidates, dtype=np.int64))
        ground_truth = ground_truth.tocsc()[:, candidates].tocsr()
        mask = None if mask is None else mask.tocsc()[:, candidates].tocsr()
    evaluated_users = np.flatnonzero(np.diff(ground_truth.indptr))
    if len(evaluated_users) == 0:
        among = "" if candidates is None else f" among the {len(candidates)} candidate items"
        raise SigerecError(
            f"Cannot evaluate: no user has a held-out item in the ground-truth split{among}. "
            "Check that the valid/test interactions were loaded and are not all filtered out."
        )
    # Rows of the evaluated users only, so that each chunk is a contiguous row range.
    held_out = ground_truth[evaluated_users]
    masked = None if mask is None else mask[evaluated_users]
    n_held_out = torch.from_numpy(np.diff(held_out.indptr))
    max_k = min(max(ks), ground_truth.shape[1])

    totals = dict.fromkeys(metric_keys(ks), 0.0)
    per_user_chunks: list[dict[str, np.ndarray]] = []
    marks = None  # [chunk, n_items] bool, all False between chunks (see _hits_in_top_k)
    with torch.no_grad():
        for start in range(0, len(evaluated_users), chunk_size):
            stop = min(start + chunk_size, len(evaluated_users))
            scores = score_users(torch.from_numpy(evaluated_users[start:stop]))  # [chunk, n_items]
            if scores.shape != (stop - start, n_items):
                raise SigerecError(
                    f"score_users returned scores of shape {tuple(scores.shape)} for {stop - start} "
                    f"users; expected ({stop - start}, {n_items}), one column per item."
                )
            if candidate_columns is not None:
                scores = scores.index_select(1, candidate_columns.to(scores.device))  # [chunk, n_candidates]
            if marks is None:
                marks = torch.zeros((stop - start, scores.shape[1]), dtype=torch.bool, device=scores.device)
            hits = _hits_in_top_k(scores, held_out, masked, start, stop, max_k, marks[: stop - start])
            for key, chunk_sum in metric_sums(hits, n_held_out[start:stop], ks).items():
                totals[key] += chunk_sum
            if keep_users:
                per_user_chunks.append(metric_values(hits, n_held_out[start:stop], ks))
    means = {key: total / len(evaluated_users) for key, total in totals.items()}
    if not keep_users:
        return means, None
    per_user = {"user": evaluated_users.astype(np.int64)}
    per_user.update({key: np.concatenate([chunk[key] for chunk in per_user_chunks]) for key in totals})
    return means, per_user


def _hits_in_top_k(
    scores: torch.Tensor,
    held_out: sp.csr_matrix,
    masked: sp.csr_matrix | None,
    start: int,
    stop: int,
    max_k: int,
    marks: torch.Tensor,
) -> torch.Tensor:
    """``[chunk, max_k]``: whether each ranked item of rows ``start:stop`` is held out.

    ``marks`` is an all-False ``[chunk, n_items]`` bool buffer, left all False again: marking
    and unmarking the few held-out entries costs far less than a fresh buffer per chunk.
    """
    held_out_rows, held_out_items = _row_coordinates(held_out, start, stop, scores.device)
    marks[held_out_rows, held_out_items] = True
    if masked is not None:
        # MMRec ranks only items the user has not trained on; a masked item must never
        # count as a hit, even when -inf ties pull it into the top K.
        masked_rows, masked_items = _row_coordinates(masked, start, stop, scores.device)
        scores[masked_rows, masked_items] = -torch.inf
        marks[masked_rows, masked_items] = False
    hits = marks.gather(1, top_k_items(scores, max_k))
    marks[held_out_rows, held_out_items] = False
    return hits


def _row_coordinates(
    matrix: sp.csr_matrix, start: int, stop: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row - start, item) of every stored entry of rows ``start:stop``."""
    row_pointers = matrix.indptr[start : stop + 1]
    rows = np.repeat(np.arange(stop - start), np.diff(row_pointers))
    items = matrix.indices[row_pointers[0] : row_pointers[-1]].astype(np.int64)
    return torch.from_numpy(rows).to(device), torch.from_numpy(items).to(device)


def _check_arguments(
    ground_truth: sp.csr_matrix, mask: sp.csr_matrix | None, ks: Sequence[int], chunk_size: int
) -> None:
    if len(ks) == 0 or any(int(k) != k or k < 1 for k in ks):
        raise SigerecError(f"Evaluation cut-offs ks={list(ks)} must be a non-empty list of positive integers.")
    if chunk_size < 1:
        raise SigerecError(f"Evaluation chunk_size={chunk_size} must be a positive integer.")
    if mask is not None and mask.shape != ground_truth.shape:
        raise SigerecError(
            f"The evaluation mask has shape {mask.shape} but the ground truth has shape "
            f"{ground_truth.shape}; both must be [n_users, n_items] of the same dataset."
        )
