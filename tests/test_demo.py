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


def _finished_run(folder, model, epochs, best_epoch, stopped_early):
    import json

    folder.mkdir()
    summary = {"model": model, "epochs": epochs, "best_epoch": best_epoch, "stopped_early": stopped_early}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_demo_caption_says_which_models_were_cut_short(tmp_path):
    from sigerec.demo import demo_caption

    runs = {
        "lightgcn": _finished_run(tmp_path / "a", "lightgcn", epochs=25, best_epoch=24, stopped_early=False),
        "sige": _finished_run(tmp_path / "b", "sige", epochs=40, best_epoch=18, stopped_early=True),
        "bpr": _finished_run(tmp_path / "c", "bpr", epochs=10, best_epoch=6, stopped_early=False),
    }
    caption = demo_caption(runs)
    assert "lightgcn: capped at 25 epochs while still improving: NOT converged" in caption
    assert "sige: stopped early after 40 epochs: converged" in caption
    assert "bpr: capped at 10 epochs, best valid epoch before the last" in caption
