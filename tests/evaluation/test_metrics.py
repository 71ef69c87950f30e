"""Top-K metrics against values computed by hand from MMRec's definitions."""

from math import log2

import pytest
import torch

from sigerec.evaluation.metrics import METRIC_NAMES, metric_keys, metric_sums


def _hits(*rows: str) -> torch.Tensor:
    """Hit matrix from strings such as ``"x.x.."``: ``x`` marks a held-out item at that rank."""
    return torch.tensor([[mark == "x" for mark in row] for row in rows])


def _sums(rows: list[str], n_ground_truth: list[int], ks=(1, 3, 5)) -> dict[str, float]:
    return metric_sums(_hits(*rows), torch.tensor(n_ground_truth), ks)


def test_metric_names_are_mmrecs_five_metrics():
    assert METRIC_NAMES == ("recall", "ndcg", "precision", "map", "hit")


def test_keys_name_every_metric_at_every_k_in_increasing_k():
    assert metric_keys([10, 5, 10]) == [
        "recall@5", "recall@10", "ndcg@5", "ndcg@10", "precision@5", "precision@10",
        "map@5", "map@10", "hit@5", "hit@10",
    ]  # fmt: skip
    assert list(_sums(["x...."], [1], ks=(10, 5))) == metric_keys([5, 10])


def test_recall_divides_hits_in_top_k_by_all_held_out_items():
    sums = _sums(["x.x.."], [3])
    assert sums["recall@1"] == pytest.approx(1 / 3)
    assert sums["recall@3"] == pytest.approx(2 / 3)
    assert sums["recall@5"] == pytest.approx(2 / 3)


def test_ndcg_discounts_each_hit_by_log_of_its_rank():
    sums = _sums(["x.x.."], [3])
    ideal_three = 1 / log2(2) + 1 / log2(3) + 1 / log2(4)
    assert sums["ndcg@1"] == pytest.approx(1.0)
    assert sums["ndcg@3"] == pytest.approx((1 / log2(2) + 1 / log2(4)) / ideal_three)
    assert sums["ndcg@5"] == pytest.approx((1 / log2(2) + 1 / log2(4)) / ideal_three)


def test_ndcg_of_a_late_single_hit_compares_with_a_hit_at_the_top():
    sums = _sums([".x..."], [1])
    assert sums["ndcg@1"] == 0.0
    assert sums["ndcg@3"] == pytest.approx((1 / log2(3)) / (1 / log2(2)))


def test_precision_divides_hits_in_top_k_by_k():
    sums = _sums(["x.x.."], [3])
    assert sums["precision@1"] == pytest.approx(1.0)
    assert sums["precision@3"] == pytest.approx(2 / 3)
    assert sums["precision@5"] == pytest.approx(2 / 5)


def test_map_averages_precision_at_each_hit_over_min_of_held_out_and_k():
    sums = _sums(["x.x.."], [3])
    assert sums["map@1"] == pytest.approx((1 / 1) / 1)
    assert sums["map@3"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert sums["map@5"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_hit_is_one_once_any_held_out_item_is_in_the_top_k():
    sums = _sums(["..x.."], [2])
    assert sums["hit@1"] == 0.0
    assert sums["hit@3"] == 1.0
    assert sums["hit@5"] == 1.0


def test_user_with_more_held_out_items_than_k_keeps_recall_denominator_but_caps_ndcg_and_map():
    sums = _sums([".x"], [5], ks=(2,))
    assert sums["recall@2"] == pytest.approx(1 / 5)
    assert sums["ndcg@2"] == pytest.approx((1 / log2(3)) / (1 / log2(2) + 1 / log2(3)))
    assert sums["map@2"] == pytest.approx((1 / 2) / 2)
    assert sums["precision@2"] == pytest.approx(1 / 2)


def test_user_without_hits_scores_zero_everywhere():
    assert set(_sums(["....."], [2]).values()) == {0.0}


def test_sums_add_up_over_the_users_of_a_chunk():
    together = _sums(["x.x..", ".x...", "....."], [3, 1, 2])
    one_by_one = [_sums(["x.x.."], [3]), _sums([".x..."], [1]), _sums(["....."], [2])]
    for key, total in together.items():
        assert total == pytest.approx(sum(sums[key] for sums in one_by_one))


def test_k_beyond_the_ranked_columns_treats_missing_ranks_as_misses():
    # A catalogue of 3 items ranked in full, evaluated at K = 10.
    sums = _sums(["x.x"], [2], ks=(10,))
    assert sums["recall@10"] == pytest.approx(1.0)
    assert sums["precision@10"] == pytest.approx(2 / 10)
    assert sums["ndcg@10"] == pytest.approx((1 / log2(2) + 1 / log2(4)) / (1 / log2(2) + 1 / log2(3)))
    assert sums["map@10"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert sums["hit@10"] == 1.0
