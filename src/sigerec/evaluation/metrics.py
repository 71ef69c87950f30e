"""Top-K ranking metrics, following MMRec's definitions (``utils/metrics.py``).

Every metric reads the same cumulative statistics of a hit matrix, so they are
computed once per chunk of users with ``cumsum`` and then read at every K at once.
``metric_sums`` returns sums over users (not means) so that chunks add up; the
evaluator divides by the number of evaluated users at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class RankedHits:
    """Cumulative hit statistics of a chunk of ranked lists, read at the cut-offs ``ks``.

    Column ``c`` of each cumulative tensor holds the statistic over the top ``c + 1``
    ranks. A K beyond the ranked columns (a catalogue shorter than K) reads the last
    column: the missing ranks hold no items, hence no hits.
    """

    ks: torch.Tensor  # [n_ks] float64, the cut-offs K
    cumulative_hits: torch.Tensor  # [n, n_ranks] float64, hits within the top r + 1
    cumulative_dcg: torch.Tensor  # [n, n_ranks] float64, sum of 1/log2(r + 2) over hit ranks
    cumulative_precision_at_hits: torch.Tensor  # [n, n_ranks] float64, for MAP
    ideal_dcg_by_length: torch.Tensor  # [max_len] float64, entry j: DCG of j + 1 hits on top
    n_ground_truth: torch.Tensor  # [n, 1] float64

    @classmethod
    def from_hits(cls, hits: torch.Tensor, n_ground_truth: torch.Tensor, ks: Sequence[int]) -> RankedHits:
        n_ranks, device = hits.shape[1], hits.device
        hit_values = hits.to(torch.float64)
        cumulative_hits = hit_values.cumsum(dim=1)
        precision_at_rank = cumulative_hits / torch.arange(1, n_ranks + 1, dtype=torch.float64, device=device)
        # A user can hold more held-out items than there are ranks; the ideal list
        # is never longer than K, but K may exceed the ranked columns.
        longest_ideal_list = max(n_ranks, int(n_ground_truth.max()))
        return cls(
            ks=torch.tensor(ks, dtype=torch.float64, device=device),
            cumulative_hits=cumulative_hits,
            cumulative_dcg=(hit_values * _rank_discounts(n_ranks, device)).cumsum(dim=1),
            cumulative_precision_at_hits=(precision_at_rank * hit_values).cumsum(dim=1),
            ideal_dcg_by_length=_rank_discounts(longest_ideal_list, device).cumsum(dim=0),
            n_ground_truth=n_ground_truth.to(device, torch.float64).unsqueeze(1),
        )

    def at_each_k(self, cumulative: torch.Tensor) -> torch.Tensor:
        """Per-user value of a cumulative statistic over the top K ranks, ``[n, n_ks]``."""
        last_rank = self.ks.clamp(max=cumulative.shape[1]).long() - 1
        return cumulative[:, last_rank]

    def relevant_in_top_k(self) -> torch.Tensor:
        """``min(|gt|, K)``: how many held-out items a perfect top-K list holds, ``[n, n_ks]``."""
        return torch.minimum(self.n_ground_truth, self.ks)


def _rank_discounts(n_ranks: int, device: torch.device) -> torch.Tensor:
    """``1 / log2(r + 2)`` for 0-based ranks ``r``: the DCG gain of a hit at rank r."""
    return 1.0 / torch.log2(torch.arange(2, n_ranks + 2, dtype=torch.float64, device=device))


def recall(ranked: RankedHits) -> torch.Tensor:
    """Recall@K = |hits in top K| / |gt|.

    The denominator stays |gt| even when |gt| > K, as in MMRec, so such users
    cannot reach 1.
    """
    return ranked.at_each_k(ranked.cumulative_hits) / ranked.n_ground_truth


def ndcg(ranked: RankedHits) -> torch.Tensor:
    """NDCG@K = DCG@K / IDCG@K with binary relevance.

    DCG@K = sum over hit ranks r < K (0-based) of 1 / log2(r + 2);
    IDCG@K = sum over r < min(|gt|, K) of 1 / log2(r + 2).
    """
    ideal_dcg = ranked.ideal_dcg_by_length[ranked.relevant_in_top_k().long() - 1]
    return ranked.at_each_k(ranked.cumulative_dcg) / ideal_dcg


def precision(ranked: RankedHits) -> torch.Tensor:
    """Precision@K = |hits in top K| / K."""
    return ranked.at_each_k(ranked.cumulative_hits) / ranked.ks


def mean_average_precision(ranked: RankedHits) -> torch.Tensor:
    """MAP@K = (sum over hit ranks r < K of Precision@(r + 1)) / min(|gt|, K)."""
    return ranked.at_each_k(ranked.cumulative_precision_at_hits) / ranked.relevant_in_top_k()


def hit(ranked: RankedHits) -> torch.Tensor:
    """Hit@K = 1 if any held-out item is in the top K, else 0."""
    return (ranked.at_each_k(ranked.cumulative_hits) > 0).to(torch.float64)


# Each metric maps a chunk's RankedHits to per-user values at every K, [n, n_ks].
METRICS: dict[str, Callable[[RankedHits], torch.Tensor]] = {
    "recall": recall,
    "ndcg": ndcg,
    "precision": precision,
    "map": mean_average_precision,
    "hit": hit,
}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def metric_keys(ks: Sequence[int]) -> list[str]:
    """Result keys such as ``"recall@20"``, grouped by metric and ordered by K."""
    return [f"{name}@{k}" for name in METRIC_NAMES for k in sorted(set(ks))]


def metric_values(hits: torch.Tensor, n_ground_truth: torch.Tensor, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Every metric at every K for each user of a chunk (float64 arrays [n]), keyed like ``"ndcg@10"``.

    The same values :func:`metric_sums` adds up; kept per user for paired significance tests.
    """
    cutoffs = sorted(set(ks))
    ranked = RankedHits.from_hits(hits, n_ground_truth, cutoffs)
    columns = [column.numpy() for metric in METRICS.values() for column in metric(ranked).cpu().unbind(dim=1)]
    return dict(zip(metric_keys(cutoffs), columns, strict=True))


def metric_sums(hits: torch.Tensor, n_ground_truth: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """Sum over a chunk's users of every metric at every K, keyed like ``"ndcg@10"``.

    ``hits[u, r]`` says whether the item ranked r-th (0-based) for user u is one of
    the user's ``n_ground_truth[u] > 0`` held-out items. Sums, not means, so that
    the evaluator can add chunks and divide once.
    """
    cutoffs = sorted(set(ks))
    ranked = RankedHits.from_hits(hits, n_ground_truth, cutoffs)
    sums = [value for metric in METRICS.values() for value in metric(ranked).sum(dim=0).tolist()]
    return dict(zip(metric_keys(cutoffs), sums, strict=True))
