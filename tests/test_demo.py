import numpy as np
import torch

from sigerec.data.dataset import Dataset
from sigerec.demo import demo_item_titles, top_items


class _FixedScores:
    """A model stand-in whose scores are a fixed matrix."""

    def __init__(self, scores):
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def scorer(self):
        return lambda users: self.scores[users]


def test_top_items_skip_training_items_and_order_by_score_then_id():
    train = Dataset.interaction_matrix(np.array([0, 1]), np.array([2, 0]), 2, 5)
    dataset = Dataset("hand", 2, 5, train, train.copy(), train.copy())
    model = _FixedScores([[0.25, 0.5, 0.9, 0.5, -1.0], [3.0, 2.0, 1.0, 0.0, 2.0]])
    assert top_items(model, dataset, [0, 1], 3) == [[(1, 0.5), (3, 0.5), (0, 0.25)], [(1, 2.0), (4, 2.0), (2, 1.0)]]
    assert [i for i, _ in top_items(model, dataset, [0], 10)[0]] == [1, 3, 0, 4]  # k > catalogue: unseen only


def test_built_in_titles_cover_the_documented_items():
    titles = demo_item_titles()
    assert len(titles) == 3416  # 48.5% of 7,050, as the dataset README says
    assert titles[0] == "Baby Tracker\u00ae - Daily Childcare Journal, Schedule Log"  # &reg; unescaped
