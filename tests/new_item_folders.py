"""A hand-made model folder that can take new items (genre labels as its only modality), for the
tests of ``add_items``, ``sigerec add-items`` and ``POST /items``: no training, no text model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sigerec.serving.model_folder import FORMAT_VERSION, ModelFolder, write_model_folder

N_USERS, DIM = 12, 8
VOCABULARY = ["action", "comedy", "drama", "horror", "romance"]
# Items m0..m7 are warm (each a different pair of genres); m8 and m9 have no training interaction.
GENRES = [
    "action|comedy", "action|drama", "action|horror", "action|romance", "comedy|drama",
    "comedy|horror", "comedy|romance", "drama|horror", "drama|romance", "horror|romance",
]  # fmt: skip
ITEM_IDS = [f"m{i}" for i in range(len(GENRES))]
WARM_ITEMS = 8


def cold_item_record(k: int = 1, rule: str = "warm_neighbours", can_score: bool = True, norm: str = "mean") -> dict:
    """The manifest's ``cold_items`` as ``export_run`` writes it for a categories-only dataset."""
    encoder = {"kind": "categories", "column": "genres", "separator": "|", "n_categories": 5, "vocabulary": VOCABULARY}
    return {
        "rule": rule,
        "model_can_score_cold_items": can_score,
        "k": k,
        "norm": norm,
        "modalities": ["genre"],
        "encoders": {"genre": encoder},
        "id_col": "movie",
        "title_col": "title",
        "fields": ["movie", "genres"],
    }


def genre_features() -> np.ndarray:
    """[n_items, 5] multi-hot rows, as ``sigerec encode categories`` writes them."""
    features = np.zeros((len(GENRES), len(VOCABULARY)), dtype=np.float32)
    for item, labels in enumerate(GENRES):
        features[item, [VOCABULARY.index(label) for label in labels.split("|")]] = 1.0
    return features


def items_ready_folder(k: int = 1, **record) -> ModelFolder:
    """The folder in memory: random vectors (seed 0), each user with 3 warm training items."""
    rng = np.random.default_rng(0)
    seen = np.zeros((N_USERS, len(ITEM_IDS)), dtype=np.float32)
    for user in range(N_USERS):
        seen[user, rng.choice(WARM_ITEMS, size=3, replace=False)] = 1
    seen[0, :WARM_ITEMS] = 1  # every warm item has a training interaction
    return ModelFolder(
        user_vectors=rng.standard_normal((N_USERS, DIM)).astype(np.float32),
        item_vectors=rng.standard_normal((len(ITEM_IDS), DIM)).astype(np.float32),
        user_ids=np.array([f"u{u}" for u in range(N_USERS)], dtype=object),
        item_ids=np.array(ITEM_IDS, dtype=object),
        titles=np.array([f"Movie {i}" for i in range(len(ITEM_IDS))], dtype=object),
        seen=sp.csr_matrix(seen),
        manifest={"format_version": FORMAT_VERSION, "model": "sige", "dataset": "genres", "metrics": {},
                  "cold_items": cold_item_record(k, **record)},
        item_features={"genre": genre_features()},
    )  # fmt: skip


def write_items_ready_export(out: Path, k: int = 1) -> Path:
    """``items_ready_folder`` written as a real model folder (with a config.yaml run file)."""
    folder = items_ready_folder(k)
    run_file = out.parent / "config.yaml"
    run_file.write_text("model: sige\n")
    description = {key: folder.manifest[key] for key in ("model", "dataset", "metrics", "cold_items")}
    return write_model_folder(
        out, folder.user_vectors, folder.item_vectors, folder.user_ids, folder.item_ids, folder.seen,
        description, folder.titles, [run_file], folder.item_features,
    )  # fmt: skip
