"""Pop: training counts as scores, the same for every user; equal counts in a seeded random order."""

import numpy as np
import torch

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.models.pop import Pop
from sigerec.ranking import top_k

COUNTS = [3.0, 2.0, 1.0, 1.0, 0.0]


def _dataset(n_cold: int = 1) -> Dataset:
    """3 users x (4 + n_cold) items. Train: user 0 - items 0,1; user 1 - 0,2; user 2 - 0,1,3, so
    items 0-3 have 3, 2, 1 and 1 training users; items 4.. are cold (in every user's test)."""
    n_items = 4 + n_cold
    train = Dataset.interaction_matrix(np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 0, 2, 0, 1, 3]), 3, n_items)
    users, items = np.repeat([0, 1, 2], n_cold), np.tile(np.arange(4, n_items), 3)
    held_out = Dataset.interaction_matrix(users, items, 3, n_items)
    return Dataset("hand", 3, n_items, train, held_out, held_out.copy())


def _pop(dataset: Dataset, seed: int = 0) -> Pop:
    torch.manual_seed(seed)  # as build_model does with the run's seed
    return Pop(dataset, ModelConfig())


def _ranking(model: Pop, dataset: Dataset, user: int) -> list[int]:
    """The user's unseen items, best first."""
    scores = model.scorer()(torch.tensor([user]))[0].numpy().copy()
    unseen = np.setdiff1d(np.arange(dataset.n_items), dataset.train[user].indices)
    ids, _ = top_k(scores[unseen], len(unseen), ids=unseen)
    return ids.tolist()


def test_every_user_scores_each_item_by_its_number_of_training_users_plus_a_tie_order_below_half():
    scores = torch.as_tensor(_pop(_dataset()).scorer()(torch.tensor([0, 1, 2])))
    assert torch.equal(scores[0], scores[1]) and torch.equal(scores[0], scores[2])
    tie_order = scores[0] - torch.tensor(COUNTS)
    assert ((tie_order >= 0) & (tie_order < 0.5)).all()
    assert len(set(tie_order.tolist())) == 5  # a permutation: no two items tie


def test_each_user_gets_the_most_popular_unseen_items_first():
    dataset = _dataset()
    model = _pop(dataset)
    assert _ranking(model, dataset, 1) == [1, 3, 4]
    assert _ranking(model, dataset, 2) == [2, 4]
    assert _ranking(model, dataset, 0)[-1] == 4 and set(_ranking(model, dataset, 0)[:2]) == {2, 3}


def test_valid_and_test_interactions_do_not_count():
    # Item 4 is in every user's valid and test split, yet it ranks below every trained item.
    users, items = _pop(_dataset()).embeddings()
    assert torch.equal(users, torch.ones(3, 1)) and items[4, 0] < 0.5


def test_cold_items_come_in_a_seeded_random_order_not_by_id():
    dataset = _dataset(n_cold=50)
    cold = list(range(4, 54))
    first, again, other = (_ranking(_pop(dataset, seed), dataset, 2)[-50:] for seed in (0, 0, 1))
    assert sorted(first) == cold and first != cold  # last, among themselves not by id
    assert first == again and first != other
    assert Pop.can_score_cold_items is False


def test_nothing_is_trained_and_the_scores_are_saved_in_checkpoints():
    model = _pop(_dataset())
    loss = model.loss(torch.tensor([0]), torch.tensor([0]), torch.tensor([4]))
    assert not Pop.trainable and loss.item() == 0.0
    assert not any(parameter.requires_grad for parameter in model.parameters())
    assert list(model.state_dict()) == ["item_popularity"]
