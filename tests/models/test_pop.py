"""Pop: training counts as scores, the same for every user; cold items score 0."""

import numpy as np
import torch

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.models.pop import Pop
from sigerec.ranking import top_k


def _dataset() -> Dataset:
    """3 users x 5 items. Train: user 0 - items 0,1; user 1 - 0,2; user 2 - 0,1,3, so the items
    have 3, 2, 1, 1 and 0 training users; item 4 is cold (in test only, for all three users)."""
    train = Dataset.interaction_matrix(np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 0, 2, 0, 1, 3]), 3, 5)
    held_out = Dataset.interaction_matrix(np.array([0, 1, 2]), np.array([4, 4, 4]), 3, 5)
    return Dataset("hand", 3, 5, train, held_out, held_out.copy())


def _ranking(model: Pop, dataset: Dataset, user: int) -> list[int]:
    """The user's unseen items, best first (equal scores: lower id first, as everywhere)."""
    scores = model.scorer()(torch.tensor([user]))[0].numpy()
    unseen = np.setdiff1d(np.arange(dataset.n_items), dataset.train[user].indices)
    ids, _ = top_k(scores[unseen], len(unseen), ids=unseen)
    return ids.tolist()


def test_every_user_scores_each_item_by_its_number_of_training_users():
    scores = Pop(_dataset(), ModelConfig()).scorer()(torch.tensor([0, 1, 2]))
    assert torch.equal(torch.as_tensor(scores), torch.tensor([[3.0, 2.0, 1.0, 1.0, 0.0]] * 3))


def test_each_user_gets_the_most_popular_unseen_items_first():
    dataset = _dataset()
    model = Pop(dataset, ModelConfig())
    assert _ranking(model, dataset, 0) == [2, 3, 4]  # items 2 and 3 tie at 1: lower id first
    assert _ranking(model, dataset, 1) == [1, 3, 4]
    assert _ranking(model, dataset, 2) == [2, 4]


def test_valid_and_test_interactions_do_not_count():
    # Item 4 is in every user's valid and test split, yet its popularity is 0.
    users, items = Pop(_dataset(), ModelConfig()).embeddings()
    assert torch.equal(users, torch.ones(3, 1)) and items[4, 0] == 0.0


def test_a_cold_item_scores_zero_and_pop_says_it_cannot_represent_one():
    assert Pop.can_score_cold_items is False
    assert Pop(_dataset(), ModelConfig()).item_popularity[4] == 0.0


def test_nothing_is_trained_and_the_counts_are_saved_in_checkpoints():
    model = Pop(_dataset(), ModelConfig())
    loss = model.loss(torch.tensor([0]), torch.tensor([0]), torch.tensor([4]))
    assert not Pop.trainable and loss.item() == 0.0
    assert not any(parameter.requires_grad for parameter in model.parameters())
    assert torch.equal(model.state_dict()["item_popularity"], torch.tensor([3.0, 2.0, 1.0, 1.0, 0.0]))
