"""What an exported model records about items without interactions, and who may add new ones.

A model folder can take new items (``sigerec add-items``, ``POST /items``) only when the model
scored its own cold items with the rule serving reproduces, ``cold_item_rule="warm_neighbours"``
(``graphs/cold_neighbours.py``): then a new item gets the very vector evaluation would have
given it. For that the export keeps each modality's raw features and, from the dataset's
``<modality>_feat.json``, the encoder that made them, so new items are encoded the same way.
Any other rule, or a model without a content path (BPR, LightGCN, pop), is refused with what
to do instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sigerec.errors import SigerecError

SERVED_RULE = "warm_neighbours"
# Encoder kinds (the "kind" of ``<modality>_feat.json``) that can be rebuilt to encode a new item.
REBUILDABLE_KINDS = ("text", "categories", "image")
RETRAIN_HINT = f"retrain with --set cold_item_rule={SERVED_RULE} and export the run again"


class CannotAddItemsError(SigerecError):
    """The model folder cannot take new items (HTTP 403): its model, rule or encoders do not allow it."""


def cold_item_record(model, config, dataset, dataset_dir: Path, title_col: str | None) -> tuple[dict, dict]:
    """The manifest's ``cold_items`` entry and the features to keep (modality -> [n_items, F]).

    Every export states the rule; only a ``warm_neighbours`` model also records the modalities,
    their encoders (None where one cannot be rebuilt, e.g. a knowledge graph or features saved
    by hand: new items then get no neighbours there) and the item fields a new item carries.
    """
    rule = getattr(config.model_params, "cold_item_rule", None)
    record = {"rule": rule, "model_can_score_cold_items": bool(type(model).can_score_cold_items)}
    if rule != SERVED_RULE or not type(model).can_score_cold_items:
        return record, {}
    from sigerec.data.feature_files import provenance_file

    modalities = list(getattr(model, "modalities", sorted(dataset.features)))
    encoders, id_cols = {}, []
    for modality in modalities:
        provenance = _read_provenance(provenance_file(dataset_dir, modality))
        encoder = provenance.get("encoder")
        usable = isinstance(encoder, dict) and encoder.get("kind") in REBUILDABLE_KINDS
        encoders[modality] = encoder if usable else None
        if usable and provenance.get("id_col"):
            id_cols.append(str(provenance["id_col"]))
    id_col = id_cols[0] if id_cols else None
    record.update(
        k=int(getattr(config.model_params, "cold_item_k", 10)),
        norm=getattr(config.model_params, "cold_item_norm", "mean"),
        modalities=modalities,
        encoders=encoders,
        id_col=id_col,
        title_col=title_col,
        fields=([id_col] if id_col else []) + encoder_fields(encoders),
    )
    features = {m: np.asarray(dataset.features[m], dtype=np.float32) for m in modalities}
    return record, features


def encoder_fields(encoders: dict[str, dict | None]) -> list[str]:
    """The item-file columns the encoders read, in order, each once."""
    fields: dict[str, None] = {}
    for encoder in encoders.values():
        if encoder is None:
            continue
        kind = encoder["kind"]
        columns = encoder["columns"] if kind == "text" else [encoder["column" if kind == "categories" else "image_col"]]
        fields.update(dict.fromkeys(columns))
    return list(fields)


def new_item_spec(folder) -> dict:
    """The folder's ``cold_items`` entry when it can take new items, else CannotAddItemsError saying why."""
    where = folder.path or "the model folder"
    record = folder.manifest.get("cold_items")
    model = folder.manifest.get("model")
    if not isinstance(record, dict):
        raise CannotAddItemsError(
            f"{where}: the export does not say how the model scores items without interactions (exported by an "
            f"older sigerec); export the run again, or {RETRAIN_HINT}."
        )
    if not record.get("model_can_score_cold_items"):
        raise CannotAddItemsError(
            f"{where}: model '{model}' cannot represent an item without interactions (it has no content path); "
            "new items need retraining. Train a content model (e.g. sige) to add items without retraining."
        )
    if record.get("rule") is None:
        raise CannotAddItemsError(
            f"{where}: model '{model}' scores items without interactions its own way (it has no cold_item_rule), "
            f"which serving does not reproduce; train a content model such as sige (cold_item_rule={SERVED_RULE}, "
            "the default) to add items without retraining."
        )
    if record.get("rule") != SERVED_RULE:
        raise CannotAddItemsError(
            f"{where}: model '{model}' scores items without interactions with cold_item_rule={record.get('rule')!r}, "
            f"which serving does not reproduce; {RETRAIN_HINT}."
        )
    encoders = record.get("encoders") or {}
    if not any(encoder is not None for encoder in encoders.values()) or not record.get("id_col"):
        raise CannotAddItemsError(
            f"{where}: none of the model's modalities ({', '.join(record.get('modalities', []))}) records an encoder "
            "that can encode a new item (`sigerec encode text|categories|image` writes one); encode the features "
            "with sigerec, train and export again."
        )
    return record


def _read_provenance(path: Path) -> dict:
    """The ``<modality>_feat.json`` beside the features, or {} (features saved by hand have none)."""
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise SigerecError(
            f"{path}: cannot be read ({error}); encode the features again with `sigerec encode`."
        ) from None
    return provenance if isinstance(provenance, dict) else {}
