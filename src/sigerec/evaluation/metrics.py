"""Top-K ranking metrics, following MMRec's definitions (``utils/metrics.py``).

Every metric reads the same cumulative statistics of a hit matrix, so they are
computed once per chunk of users with ``cumsum`` and then indexed at each K.
``metric_sums`` returns sums over users (not means) so that chunks add up; the
evaluator divides by the number of evaluated users at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RankedHits:
    """Cumulative hit statistics of a chunk of ranked lists, shared by all metrics.

    Column ``c`` of each cumulative tensor holds the statistic over the top ``c + 1``
    ranks. A K beyond the ranked columns (a catalogue shorter than K) reads the last
    column: the missing ranks hold no items, hence no hits.
    """

    cumulative_hits: torch.Tensor  # [n, n_ranks] float64, hits within the top r + 1
    cumulative_dcg: torch.Tensor  # [n, n_ranks] float64, sum of 1/log2(r + 2) over hit ranks
    cumulative_precision_at_hits: torch.Tensor  # [n, n_ranks] float64, for MAP
    ideal_dcg_by_length: torch.Tensor  # [max_len], entry j: DCG of j + 1 hits on top
    n_ground_truth: torch.Tensor  # [n] float64

    @classmethod
    def from_hits(cls, hits: torch.Tensor, n_ground_truth: torch.Tensor) -> RankedHits:
        n_ranks = hits.shape[1]
        hit_values = hits.to(torch.float64)
        rank_discounts = _rank_discounts(n_ranks)
        cumulative_hits = hit_values.cumsum(dim=1)
        precision_at_rank = cumulative_hits / torch.arange(1, n_ranks + 1, dtype=torch.float64)
        # A user can hold more held-out items than there are ranks; the ideal list
        # is never longer than K, but K may exceed the ranked columns.
        longest_ideal_list = max(n_ranks, int(n_ground_truth.max()))
        return cls(
            cumulative_hits=cumulative_hits,
            cumulative_dcg=(hit_values * rank_discounts).cumsum(dim=1),
            cumulative_precision_at_hits=(precision_at_rank * hit_values).cumsum(dim=1),
            ideal_dcg_by_length=_rank_discounts(longest_ideal_list).cumsum(dim=0),
            n_ground_truth=n_ground_truth.to(torch.float64),
        )

    def at(self, cumulative: torch.Tensor, k: int) -> torch.Tensor:
        """Per-user value of a cumulative statistic over the top K ranks, ``[n]``."""
        return cumulative[:, min(k, cumulative.shape[1]) - 1]

    def relevant_in_top(self, k: int) -> torch.Tensor:
        """``min(|gt|, K)``: how many held-out items a perfect top-K list contains, ``[n]``."""
        return self.n_ground_truth.clamp(max=k)


def _rank_discounts(n_ranks: int) -> torch.Tensor:
    """``1 / log2(r + 2)`` for 0-based ranks ``r``: the DCG gain of a hit at rank r."""
    return 1.0 / torch.log2(torch.arange(2, n_ranks + 2, dtype=torch.float64))


def recall(ranked: RankedHits, k: int) -> torch.Tensor:
    """Recall@K = |hits in top K| / |gt|.

    The denominator stays |gt| even when |gt| > K, as in MMRec, so such users
    cannot reach 1.
    """
    return ranked.at(ranked.cumulative_hits, k) / ranked.n_ground_truth


def ndcg(ranked: RankedHits, k: int) -> torch.Tensor:
    """NDCG@K = DCG@K / IDCG@K with binary relevance.

    DCG@K = sum over hit ranks r < K (0-based) of 1 / log2(r + 2);
    IDCG@K = sum over r < min(|gt|, K) of 1 / log2(r + 2).
    """
    ideal_length = ranked.relevant_in_top(k).long()
    ideal_dcg = ranked.ideal_dcg_by_length[ideal_length - 1]
    return ranked.at(ranked.cumulative_dcg, k) / ideal_dcg


def precision(ranked: RankedHits, k: int) -> torch.Tensor:
    """Precision@K = |hits in top K| / K."""
    return ranked.at(ranked.cumulative_hits, k) / k


def mean_average_precision(ranked: RankedHits, k: int) -> torch.Tensor:
    """MAP@K = (sum over hit ranks r < K of Precision@(r + 1)) / min(|gt|, K)."""
    return ranked.at(ranked.cumulative_precision_at_hits, k) / ranked.relevant_in_top(k)


def hit(ranked: RankedHits, k: int) -> torch.Tensor:
    """Hit@K = 1 if any held-out item is in the top K, else 0."""
    return (ranked.at(ranked.cumulative_hits, k) > 0).to(torch.float64)


METRICS: dict[str, Callable[[RankedHits, int], torch.Tensor]] = {
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


def metric_sums(hits: torch.Tensor, n_ground_truth: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """Sum over a chunk's users of every metric at every K, keyed like ``"ndcg@10"``.

    ``hits[u, r]`` says whether the item ranked r-th (0-based) for user u is one of
    the user's ``n_ground_truth[u] > 0`` held-out items. Sums, not means, so that
    the evaluator can add chunks and divide once.
    """
    ranked = RankedHits.from_hits(hits, n_ground_truth)
    return {
        f"{name}@{k}": float(metric(ranked, k).sum())
        for name, metric in METRICS.items()
        for k in sorted(set(ks))
    }
