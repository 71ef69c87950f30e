"""ContentKNN: the sum over modalities of each item's cosine to the centroid of the user's items."""

import math

import numpy as np
import pytest
import torch

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.models.contentknn import ContentKNN, content_item_vectors
from sigerec.ranking import top_k

# Test fixtures, not content: 5 items in two modalities with simple values. Unit rows of text:
# item 0 [1, 0], item 1 [0, 1], item 2 [0.6, 0.8], item 3 [-1, 0], item 4 [1, 1] / sqrt 2.
TEXT = np.array([[1, 0], [0, 2], [3, 4], [-1, 0], [1, 1]], dtype=np.float32)
GENRE = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
ROOT_HALF = 1 / math.sqrt(2)


def _dataset(features: dict) -> Dataset:
    """3 users x 5 items. Train: user 0 - items 0,1; user 1 - item 3; user 2 - none.
    Item 4 is cold (no training interaction; in user 0's test split)."""
    train = Dataset.interaction_matrix(np.array([0, 0, 1]), np.array([0, 1, 3]), 3, 5)
    held_out = Dataset.interaction_matrix(np.array([0]), np.array([4]), 3, 5)
    return Dataset("hand", 3, 5, train, held_out, held_out.copy(), features=features)


def _scores(model: ContentKNN, user: int) -> np.ndarray:
    return model.scorer()(torch.tensor([user]))[0].numpy().copy()  # the scorer reuses its buffer


def _ranking(model: ContentKNN, dataset: Dataset, user: int) -> list[int]:
    """The user's unseen items, best first."""
    unseen = np.setdiff1d(np.arange(dataset.n_items), dataset.train[user].indices)
    ids, _ = top_k(_scores(model, user)[unseen], len(unseen), ids=unseen)
    return ids.tolist()


def test_one_modality_scores_the_cosine_to_the_centroid_of_the_users_unit_vectors():
    # User 0's centroid of [1, 0] and [0, 1] (item 1's [0, 2] scaled to unit length first).
    model = ContentKNN(_dataset({"text": TEXT}), ModelConfig())
    expected = [ROOT_HALF, ROOT_HALF, 1.4 * ROOT_HALF, -ROOT_HALF, 1.0]
    assert _scores(model, 0) == pytest.approx(expected, abs=1e-6)
    assert _scores(model, 1) == pytest.approx([-1.0, 0.0, -0.6, 1.0, -ROOT_HALF], abs=1e-6)


def test_the_cold_item_is_ranked_from_its_content_like_any_other():
    dataset = _dataset({"text": TEXT})
    model = ContentKNN(dataset, ModelConfig())
    assert ContentKNN.can_score_cold_items
    assert _ranking(model, dataset, 0) == [4, 2, 3]
    assert _ranking(model, dataset, 1) == [1, 2, 4, 0]


def test_modalities_add_one_cosine_each_whatever_their_scale():
    # Genre: user 0's centroid is [1, 0, 0]; item 2 matches it (1), item 4 half (1/sqrt 2), item 3 not (0).
    dataset = _dataset({"text": TEXT, "genre": 100 * GENRE})
    model = ContentKNN(dataset, ModelConfig())
    expected_unseen = {2: 1.4 * ROOT_HALF + 1.0, 3: -ROOT_HALF + 0.0, 4: 1.0 + ROOT_HALF}
    scores = _scores(model, 0)
    assert {item: scores[item] for item in expected_unseen} == pytest.approx(expected_unseen, abs=1e-6)
    assert _ranking(model, dataset, 0) == [2, 4, 3]  # genre lifts item 2 above the cold item 4


def test_vectors_are_unit_parts_in_sorted_modality_order():
    model = ContentKNN(_dataset({"text": TEXT, "genre": GENRE}), ModelConfig())
    users, items = model.embeddings()
    assert model.modalities == ["genre", "text"] and users.shape == (3, 5) and items.shape == (5, 5)
    assert torch.allclose(items[2], torch.tensor([1.0, 0.0, 0.0, 0.6, 0.8]))
    assert torch.allclose(users[0], torch.tensor([1.0, 0.0, 0.0, ROOT_HALF, ROOT_HALF]))


def test_a_user_without_training_items_and_an_item_without_content_score_zero_not_nan():
    text = TEXT.copy()
    text[2] = 0.0
    model = ContentKNN(_dataset({"text": text}), ModelConfig())
    assert np.all(_scores(model, 2) == 0.0)
    assert _scores(model, 0)[2] == 0.0 and np.isfinite(_scores(model, 0)).all()


def test_new_items_get_the_vectors_trained_items_get_from_the_same_features():
    model = ContentKNN(_dataset({"text": TEXT, "genre": GENRE}), ModelConfig())
    new_items = content_item_vectors({"text": TEXT[[4]], "genre": GENRE[[4]]}, ["genre", "text"])
    np.testing.assert_allclose(new_items, model.item_vectors[[4]].numpy(), atol=1e-7)


def test_only_the_user_profiles_are_saved_and_nothing_is_trained():
    model = ContentKNN(_dataset({"text": TEXT}), ModelConfig())
    assert not ContentKNN.trainable and list(model.state_dict()) == ["user_profiles"]
    assert not any(parameter.requires_grad for parameter in model.parameters())
    assert model.loss(torch.tensor([0]), torch.tensor([2]), torch.tensor([3])).item() == 0.0
