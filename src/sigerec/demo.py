"""The built-in demo: Amazon Baby with its real item text, SIGE beside LightGCN.

``sigerec demo`` (and ``make demo``) copies the built-in interactions into a working folder,
encodes the shipped titles and descriptions (3,416 of 7,050 items, 48.5%) into a text
modality once, trains the models and shows a few users' top items with their titles.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import torch

from sigerec.data.builtin import builtin_dataset_path
from sigerec.data.feature_files import feature_file
from sigerec.data.tabular import read_table

DEMO_ITEM_TEXT = "baby_item_text.jsonl.gz"
DEMO_TEXT_COLUMNS = ["title", "description"]


def prepare_demo_data(folder: Path, warn=None, quiet: bool = False) -> Path:
    """``folder/baby`` with the built-in interactions and a ``text_feat.npy`` encoded from the
    shipped item text (encoded once; an interrupted encoding resumes from its cached batches)."""
    from sigerec.features.encode import encode_item_file
    from sigerec.features.text import TextEncoder

    source = builtin_dataset_path("baby")
    target = Path(folder) / "baby"
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "baby.inter.gz").exists():
        shutil.copyfile(source / "baby.inter.gz", target / "baby.inter.gz")
    if not feature_file(target, "text").exists():
        encoder = TextEncoder(DEMO_TEXT_COLUMNS)
        encode_item_file(source / DEMO_ITEM_TEXT, target, "itemID", "text", encoder, warn=warn, quiet=quiet)
    return target


def demo_item_titles() -> dict[int, str]:
    """Item id -> title of the built-in Baby items that have one (HTML entities unescaped)."""
    frame = read_table(builtin_dataset_path("baby") / DEMO_ITEM_TEXT).frame  # str columns, "" if missing
    return {int(item): html.unescape(title) for item, title in zip(frame["itemID"], frame["title"]) if title}


@torch.no_grad()
def top_items(model, dataset, users: list[int], k: int) -> list[list[tuple[int, float]]]:
    """Each user's ``k`` best items, training items excluded: ``[(item, score), ...]``."""
    from sigerec.ranking import top_k

    scores = model.scorer()(torch.as_tensor(users, dtype=torch.long)).clone().numpy()
    result = []
    for row, user in enumerate(users):
        seen = dataset.train.indices[dataset.train.indptr[user] : dataset.train.indptr[user + 1]]
        scores[row, seen] = -np.inf
        items, best = top_k(scores[row], min(k, scores.shape[1] - len(seen)))
        result.append([(int(item), float(score)) for item, score in zip(items, best)])
    return result
