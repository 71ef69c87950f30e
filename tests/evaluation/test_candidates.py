"""Evaluation over candidate sets: every item, the cold items only, the warm items only."""

from math import log2

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.evaluation.candidates import ItemTemperature, users_with_relevant_items
from sigerec.evaluation.evaluator import evaluate, evaluate_per_user


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    return Dataset.interaction_matrix(
        np.array([u for u, items in enumerate(rows) for _ in items], dtype=np.int64),
        np.array([i for items in rows for i in items], dtype=np.int64),
        len(rows),
        n_items,
    )


# Seven items: 0-3 trained on (warm), 4 and 5 held out only (cold), 6 nowhere (neither).
TRAIN = _csr([[0, 1], [2], [3]], 7)
VALID = _csr([[4], [], []], 7)
TEST = _csr([[2, 5], [3], [5]], 7)
DATASET = Dataset("hand", 3, 7, TRAIN, VALID, TEST)
SCORES = torch.tensor(
    [
        [0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.95],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0],
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.9, 0.0],
    ]
)


def _scorer(users: torch.Tensor) -> torch.Tensor:
    return SCORES[users].clone()


def _evaluate(candidate_set: str) -> dict[str, float]:
    candidates = ItemTemperature.of(DATASET).candidates(candidate_set)
    return evaluate(_scorer, TEST, TRAIN, ks=(1, 3), candidates=candidates)


def test_cold_items_have_no_training_interaction_and_appear_in_valid_or_test():
    items = ItemTemperature.of(DATASET)
    assert items.cold.tolist() == [4, 5]
    assert items.warm.tolist() == [0, 1, 2, 3]  # item 6 is neither
    assert items.candidates("all") is None


def test_all_items_rank_the_whole_catalogue():
    # User 0 ranks 6, 3, 4, 5, 2 (0, 1 masked): no hit in the top 3 of {2, 5}.
    # User 1 ranks 5, 4, 3: hit at rank 2. User 2 ranks 5 first: hit at rank 0.
    metrics = _evaluate("all")
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@3"] == pytest.approx(2 / 3)


def test_cold_candidates_rank_only_cold_items_and_skip_users_without_one():
    # User 0 ranks 4, 5 and only 5 is relevant (2 is warm); user 1 has no cold test item
    # and is skipped; user 2 ranks 5, 4.
    metrics = _evaluate("cold")
    assert metrics["recall@1"] == pytest.approx((0 + 1) / 2)
    assert metrics["recall@3"] == pytest.approx((1 + 1) / 2)
    assert metrics["ndcg@3"] == pytest.approx((1 / log2(3) + 1) / 2)


def test_warm_candidates_rank_only_warm_items_with_training_items_still_masked():
    # User 0 ranks 3, 2 (0, 1 masked; 6 is not warm) and only 2 is relevant; user 1 ranks 3
    # first; user 2 has no warm test item and is skipped.
    metrics = _evaluate("warm")
    assert metrics["recall@1"] == pytest.approx((0 + 1) / 2)
    assert metrics["recall@3"] == pytest.approx((1 + 1) / 2)
    assert metrics["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)


def test_users_without_a_relevant_candidate_are_counted_as_skipped():
    items = ItemTemperature.of(DATASET)
    assert users_with_relevant_items(TEST, None) == (3, 0)
    assert users_with_relevant_items(TEST, items.cold) == (2, 1)
    assert users_with_relevant_items(TEST, items.warm) == (2, 1)
    assert users_with_relevant_items(VALID, items.warm) == (0, 1)


def test_per_user_values_keep_the_ids_of_the_evaluated_users():
    _, per_user = evaluate_per_user(_scorer, TEST, TRAIN, ks=(1,), candidates=ItemTemperature.of(DATASET).cold)
    assert per_user["user"].tolist() == [0, 2]
    assert per_user["recall@1"].tolist() == [0.0, 1.0]


def test_every_item_as_candidates_gives_exactly_the_unrestricted_metrics():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(40, 30, generator=generator)
    rng = np.random.default_rng(0)
    train = sp.random(40, 30, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    test = sp.random(40, 30, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    scorer = lambda users: scores[users].clone()
    assert evaluate(scorer, test, train, chunk_size=7, candidates=np.arange(30)) == evaluate(
        scorer, test, train, chunk_size=7
    )


def test_a_candidate_set_without_held_out_items_is_refused_with_the_set_size():
    with pytest.raises(SigerecError, match="among the 4 candidate items"):
        evaluate(_scorer, VALID, TRAIN, candidates=ItemTemperature.of(DATASET).warm)


def test_an_unknown_candidate_set_names_the_choices():
    with pytest.raises(SigerecError, match="all, cold, warm"):
        ItemTemperature.of(DATASET).candidates("hot")
