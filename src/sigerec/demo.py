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
from sigerec.safe_write import atomic_write

DEMO_ITEM_TEXT = "baby_item_text.jsonl.gz"
DEMO_TEXT_COLUMNS = ["title", "description"]
# Epoch caps that keep `make demo` within about 3 minutes on 2 cores (encoding included); the
# models are not converged by then (LightGCN stops early at about 75-100 epochs on this split,
# SIGE at about 35-60), so the demo says so next to its table.
DEMO_EPOCHS = {"lightgcn": 25, "sige": 10}


def prepare_demo_data(folder: Path, warn=None, quiet: bool = False) -> Path:
    """``folder/baby`` with the built-in interactions and a ``text_feat.npy`` encoded from the
    shipped item text (encoded once; an interrupted encoding resumes from its cached batches)."""
    from sigerec.features.encode import encode_item_file
    from sigerec.features.text import TextEncoder

    source = builtin_dataset_path("baby")
    target = Path(folder) / "baby"
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "baby.inter.gz").exists():
        atomic_write(target / "baby.inter.gz", lambda path: shutil.copyfile(source / "baby.inter.gz", path))
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


def demo_caption(runs: dict[str, Path]) -> str:
    """The heading of the demo's table: data, features, and how far each model trained.

    A model whose best valid epoch is its last was still improving when the cap stopped it:
    its numbers are a snapshot, not its result, and the caption says so.
    """
    from sigerec.training.run_directory import RunDirectory
    from sigerec.training.run_report import finished_summary

    lines = [
        (
            "Test metrics at the best valid epoch (Amazon Baby, LATTICE split; SIGE uses text features from "
            "real titles for 48.5% of the items, the mean vector for the rest)."
        ),
    ]
    for model, path in runs.items():
        summary = finished_summary(RunDirectory(path))
        epochs, best = summary["epochs"], summary["best_epoch"]
        if summary["stopped_early"]:
            state = f"stopped early after {epochs} epochs: converged"
        elif best == epochs - 1:
            state = f"capped at {epochs} epochs while still improving: NOT converged"
        else:
            state = f"capped at {epochs} epochs, best valid epoch before the last: may not have converged"
        lines.append(f"- {model}: {state}")
    lines.append(
        "For converged numbers train without a cap, e.g. `sigerec train --model sige --data "
        f"{Path(next(iter(runs.values()))).parent / 'demo-data' / 'baby'}` (see docs/benchmarks.md)."
    )
    return "\n".join(lines)
