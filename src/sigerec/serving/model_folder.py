"""Exported models: a self-contained folder that serves without the training data.

``export_run`` writes, from a trained run:

- ``user_vectors.npy`` / ``item_vectors.npy``: the model's final vectors (score = dot product);
- ``user_ids.txt`` / ``item_ids.txt``: the raw id of each row, one per line;
- ``seen.npz``: each user's training items (excluded from their recommendations);
- ``item_titles.json`` (optional): a title per item, "" where unknown;
- ``item_features_<modality>.npy`` (optional): the raw features of each modality [n_items, F],
  for models whose cold-item rule lets new items be added (``serving/cold_items.py``);
- ``config.yaml`` and ``summary.json``: the run's settings and metrics;
- ``manifest.json``: format version, model, dataset, shapes and the sha256 of every file, plus
  ``cold_items``: the model's rule for items without interactions and, where new items can be
  added (``sigerec add-items``, ``POST /items``), the encoders and item fields they need.

``ModelFolder.load`` checks all of it and refuses, naming the file and the fix, a folder that
is incomplete, corrupt (checksum) or of another format version.
"""

from __future__ import annotations

import datetime
import hashlib
import html
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError
from sigerec.safe_write import write_folder

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
USER_VECTORS, ITEM_VECTORS = "user_vectors.npy", "item_vectors.npy"
USER_IDS, ITEM_IDS = "user_ids.txt", "item_ids.txt"
SEEN, TITLES = "seen.npz", "item_titles.json"
REQUIRED_FILES = (USER_VECTORS, ITEM_VECTORS, USER_IDS, ITEM_IDS, SEEN)
# Files of the training run kept beside the model, carried into every new version of the folder.
RUN_FILES = ("config.yaml", "summary.json")


def item_features_file(modality: str) -> str:
    """``item_features_<modality>.npy``: a modality's raw features, kept to add new items."""
    return f"item_features_{modality}.npy"


@dataclass
class ModelFolder:
    """An exported model in memory. Row i of the vectors belongs to ``user_ids[i]`` / ``item_ids[i]``."""

    user_vectors: np.ndarray  # [n_users, d] float32
    item_vectors: np.ndarray  # [n_items, d] float32
    user_ids: np.ndarray  # [n_users] str
    item_ids: np.ndarray  # [n_items] str
    titles: np.ndarray | None  # [n_items] str, "" = unknown
    seen: sp.csr_matrix  # [n_users, n_items] training items
    manifest: dict
    path: Path | None = None
    # modality -> [n_items, F] raw features; only for models that can take new items
    item_features: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> ModelFolder:
        """Read and check a model folder; every problem is a SigerecError naming the file.

        A new export swapped in while the files are read (a reload racing ``export --force``)
        shows as a changed manifest; the folder is then read again, up to twice.
        """
        path = Path(path)
        for attempt in range(3):
            manifest_before = _manifest_bytes(path)
            try:
                return cls._load_once(path)
            except SigerecError:
                if attempt == 2 or manifest_before is None or _manifest_bytes(path) == manifest_before:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load_once(cls, path: Path) -> ModelFolder:
        try:
            return cls._load(path)
        except OSError as error:
            where = error.filename or path
            raise SigerecError(f"{where}: cannot be read ({error.strerror}); check the model folder's path.") from None
        except (ValueError, EOFError) as error:  # NumPy/SciPy on a file that passed its checksum yet is malformed
            raise SigerecError(f"{path}: a file cannot be read ({error}); export the model again.") from None

    @classmethod
    def _load(cls, path: Path) -> ModelFolder:
        manifest = _read_manifest(path)
        for name in (*REQUIRED_FILES, *([TITLES] if TITLES in manifest["files"] else [])):
            _check_file(path, name, manifest)
        titles = None
        if TITLES in manifest["files"]:
            titles = np.asarray(json.loads((path / TITLES).read_text(encoding="utf-8")), dtype=object)
        item_features = {}
        for modality in _feature_modalities(manifest, path):
            name = item_features_file(modality)
            _check_file(path, name, manifest)
            # Mapped, not read: only adding items needs them, and a swapped-in new version of
            # the folder leaves the mapped (old) file readable until it is dropped.
            item_features[modality] = np.load(path / name, mmap_mode="r", allow_pickle=False)
        folder = cls(
            user_vectors=np.load(path / USER_VECTORS, allow_pickle=False),
            item_vectors=np.load(path / ITEM_VECTORS, allow_pickle=False),
            user_ids=_read_ids(path / USER_IDS),
            item_ids=_read_ids(path / ITEM_IDS),
            titles=titles,
            seen=sp.load_npz(path / SEEN).tocsr(),
            manifest=manifest,
            path=path,
            item_features=item_features,
        )
        folder._check_shapes()
        return folder

    def _check_shapes(self) -> None:
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        where = self.path or "model folder"
        if self.user_vectors.shape[0] != n_users or self.item_vectors.shape[0] != n_items:
            raise SigerecError(f"{where}: vectors and id lists disagree in length; export the run again.")
        if self.user_vectors.shape[1] != self.item_vectors.shape[1]:
            raise SigerecError(f"{where}: user and item vectors differ in size; export the run again.")
        if self.seen.shape != (n_users, n_items):
            raise SigerecError(f"{where}: {SEEN} is {self.seen.shape}, expected ({n_users}, {n_items}).")
        if self.titles is not None and len(self.titles) != n_items:
            raise SigerecError(f"{where}: {TITLES} has {len(self.titles)} titles for {n_items} items.")
        for modality, features in self.item_features.items():
            if features.ndim != 2 or features.shape[0] != n_items:
                raise SigerecError(
                    f"{where}: {item_features_file(modality)} is {features.shape}, expected ({n_items}, dim); "
                    "export the run again."
                )


def export_run(
    run_dir: str | Path,
    out: str | Path,
    items_file: str | Path | None = None,
    id_col: str | None = None,
    title_col: str | None = None,
    checkpoint: str = "best",
    force: bool = False,
    warn=None,
) -> Path:
    """Write the model folder of a trained run to ``out`` (see the module docstring)."""
    import torch  # only exporting needs the model classes; loading and serving do not

    from sigerec.data.builtin import resolve_data_path
    from sigerec.data.id_maps import ITEM_MAP_FILE, USER_MAP_FILE, item_raw_ids, read_id_mapping
    from sigerec.serving.cold_items import cold_item_record
    from sigerec.training.runner import load_trained_model

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SigerecError(f"--out {out}: is a file; give a folder path for the model.")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SigerecError(f"{out}: exists and is not empty; choose another --out or pass --force to replace it.")
        if not (out / MANIFEST).exists():  # --force replaces an earlier export, never any other folder
            raise SigerecError(f"{out}: not an exported model (no {MANIFEST}); --force only replaces those.")
    if (items_file is None) != (title_col is None) or (items_file is not None and id_col is None):
        raise SigerecError("titles need all three of --items FILE, --id-col and --title-col.")
    model, dataset, config = load_trained_model(run_dir, checkpoint, warn=warn, device="cpu")
    with torch.no_grad():
        user_vectors, item_vectors = (v.detach().float().cpu().numpy() for v in model.embeddings())
    dataset_dir = resolve_data_path(config.data)
    raw_items = item_raw_ids(dataset_dir)
    raw_users = read_id_mapping(dataset_dir / USER_MAP_FILE) if (dataset_dir / USER_MAP_FILE).exists() else None
    user_ids = _raw_ids(raw_users, dataset.n_users, dataset_dir / USER_MAP_FILE)
    item_ids = _raw_ids(raw_items, dataset.n_items, dataset_dir / ITEM_MAP_FILE)
    titles = _titles(items_file, dataset_dir, dataset.n_items, id_col, title_col, warn) if items_file else None

    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    description = {
        "model": config.model,
        "dataset": dataset.name,
        "run": str(run_dir.resolve()),
        "checkpoint": checkpoint,
        "metrics": {split: summary.get(split, {}) for split in ("valid", "test")},
    }
    description["cold_items"], item_features = cold_item_record(model, config, dataset, dataset_dir, title_col)
    run_files = [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]
    return write_model_folder(
        out,
        user_vectors,
        item_vectors,
        user_ids,
        item_ids,
        dataset.train,
        description,
        titles,
        run_files,
        item_features,
    )


def write_model_folder(
    out: Path,
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    seen: sp.spmatrix,
    description: dict,
    titles: np.ndarray | None = None,
    copied_files: list[Path] = (),
    item_features: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a model folder in one step: vectors, ids, seen items, optional titles and item
    features, ``copied_files`` and a manifest with ``description`` and every file's digest.
    ``out`` is replaced if it exists (the caller checks it may be); a kill at any moment leaves
    the old folder or the new one (``safe_write.write_folder``), so a server reloading it never
    sees half an export."""

    def build(staging: Path) -> None:
        np.save(staging / USER_VECTORS, np.ascontiguousarray(user_vectors, dtype=np.float32))
        np.save(staging / ITEM_VECTORS, np.ascontiguousarray(item_vectors, dtype=np.float32))
        _write_ids(staging / USER_IDS, user_ids)
        _write_ids(staging / ITEM_IDS, item_ids)
        sp.save_npz(staging / SEEN, sp.csr_matrix(seen, dtype=np.float32))
        if titles is not None:
            (staging / TITLES).write_text(json.dumps(list(titles), ensure_ascii=False), encoding="utf-8")
        for modality, features in (item_features or {}).items():
            np.save(staging / item_features_file(modality), np.ascontiguousarray(features, dtype=np.float32))
        for path in copied_files:
            shutil.copyfile(path, staging / path.name)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "model": description["model"],
            "dataset": description["dataset"],
            "run": description.get("run"),
            "checkpoint": description.get("checkpoint"),
            "score": "dot product of user and item vectors",
            "n_users": int(user_vectors.shape[0]),
            "n_items": int(item_vectors.shape[0]),
            "dim": int(item_vectors.shape[1]),
            "metrics": description.get("metrics", {}),
            **{key: description[key] for key in ("cold_items", "items_added") if description.get(key) is not None},
            "files": {p.name: _file_entry(p) for p in sorted(staging.iterdir())},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    write_folder(out, build)
    return out


def save_model_folder(folder: ModelFolder, out: Path) -> ModelFolder:
    """Write ``folder`` (e.g. with items added) as a new version of the model folder ``out``,
    atomically as ``write_model_folder``; the run's files are carried over from ``folder.path``.
    Returns the folder as written (its new manifest, ``path=out``)."""
    manifest = folder.manifest
    description = {key: manifest.get(key) for key in ("model", "dataset", "run", "checkpoint", "metrics")}
    description.update({key: manifest[key] for key in ("cold_items", "items_added") if key in manifest})
    carried = [folder.path / name for name in RUN_FILES if folder.path and name in manifest.get("files", {})]
    out = write_model_folder(
        Path(out), folder.user_vectors, folder.item_vectors, folder.user_ids, folder.item_ids, folder.seen,
        description, folder.titles, carried, folder.item_features,
    )  # fmt: skip
    return replace(folder, manifest=_read_manifest(out), path=out)


def _feature_modalities(manifest: dict, path: Path) -> list[str]:
    """The modalities whose ``item_features_<modality>.npy`` the manifest's ``cold_items`` names."""
    cold_items = manifest.get("cold_items")
    modalities = cold_items.get("modalities", []) if isinstance(cold_items, dict) else []
    if not isinstance(modalities, list) or not all(isinstance(m, str) and m for m in modalities):
        raise SigerecError(
            f"{path / MANIFEST}: 'cold_items.modalities' is not a list of names; export the model again."
        )
    return modalities


def _raw_ids(raw: np.ndarray | None, count: int, map_path: Path) -> np.ndarray:
    if raw is not None and len(raw) != count:
        raise SigerecError(
            f"{map_path}: maps {len(raw)} ids but the dataset has {count}; rebuild the folder with `sigerec data import`."
        )
    ids = np.arange(count).astype(str) if raw is None else np.asarray(raw, dtype=str)
    bad = [i for i in ids if "\n" in i or "\r" in i]
    if bad:
        raise SigerecError(f"raw id {bad[0]!r} contains a line break; ids must be single-line strings.")
    return ids


def _titles(items_file, dataset_dir: Path, n_items: int, id_col: str, title_col: str, warn) -> np.ndarray:
    from sigerec.features.item_table import match_items

    matched = match_items(items_file, dataset_dir, n_items, id_col, [title_col])
    for note in matched.notes():
        if warn is not None:
            warn(note)
    titles = np.full(n_items, "", dtype=object)
    values = matched.table.frame[title_col].to_numpy()
    titles[matched.items] = [html.unescape(str(values[row])) for row in matched.rows]
    return titles


def _write_ids(path: Path, ids: np.ndarray) -> None:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


def _read_ids(path: Path) -> np.ndarray:
    return np.asarray(path.read_text(encoding="utf-8").split("\n")[:-1], dtype=object)


def _file_entry(path: Path) -> dict:
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_bytes(path: Path) -> bytes | None:
    try:
        return (path / MANIFEST).read_bytes()
    except OSError:
        return None


def _read_manifest(path: Path) -> dict:
    if not path.is_dir():
        raise SigerecError(f"{path}: no such model folder. Create one with `sigerec export RUN_DIR --out {path}`.")
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise SigerecError(
            f"{manifest_path}: missing, so {path} is not an exported model (or the export did not finish). "
            "Run `sigerec export` again."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SigerecError(f"{manifest_path}: not valid JSON ({error}); export the model again.") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise SigerecError(
            f"{manifest_path}: format version {version!r}, but this sigerec reads version {FORMAT_VERSION}. "
            "Export the run again with this sigerec, or use the sigerec version that wrote it."
        )
    if not isinstance(manifest.get("files"), dict):
        raise SigerecError(f"{manifest_path}: no 'files' list; export the model again.")
    for name in manifest["files"]:
        # Names, not paths: a manifest can never make the loader read outside its folder.
        if not isinstance(name, str) or name != Path(name).name or name in ("", ".", ".."):
            raise SigerecError(f"{manifest_path}: lists {name!r}, which is not a file name in the folder; refused.")
    return manifest


def _check_file(folder: Path, name: str, manifest: dict) -> None:
    path = folder / name
    entry = manifest["files"].get(name)
    if not isinstance(entry, dict):
        raise SigerecError(f"{folder / MANIFEST}: does not list {name}; export the model again.")
    if not path.exists():
        raise SigerecError(f"{path}: missing from the model folder; export the model again.")
    if path.is_symlink() or not path.is_file():
        raise SigerecError(f"{path}: not a regular file (a link or folder); refused. Export the model again.")
    if path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
        raise SigerecError(f"{path}: checksum mismatch (the file is corrupt or was changed); export the model again.")
