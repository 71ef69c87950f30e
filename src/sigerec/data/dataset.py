"""The in-memory dataset every model, trainer and evaluator works on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sigerec.errors import SigerecError


@dataclass
class Dataset:
    """Interactions split into train/valid/test, plus item features by modality.

    All three splits are binary CSR matrices of shape ``[n_users, n_items]``; the
    train matrix drives sampling and graphs, valid/test are the ground truth of the
    evaluator. ``features[modality]`` is a float32 array ``[n_items, dim]``.
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    features: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    def split(self, name: str) -> sp.csr_matrix:
        """The ground-truth matrix of ``"train"``, ``"valid"`` or ``"test"``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]

    def with_modalities(self, modalities: tuple[str, ...] | list[str]) -> Dataset:
        """The same dataset keeping only ``modalities`` (all of them when empty).

        Why: one folder can hold several content modalities (text, image, a knowledge graph);
        comparing models on a subset, or a modality ablation, must not need a second copy.
        """
        if not modalities:
            return self
        missing = [m for m in modalities if m not in self.features]
        if missing:
            where = f" in {self.path}" if self.path is not None else ""
            available = ", ".join(sorted(self.features)) or "none"
            raise SigerecError(
                f"setting 'modalities' asks for {', '.join(missing)}, but dataset '{self.name}'{where} has no "
                f"such <modality>_feat.npy (it has: {available}). Encode it first (sigerec encode ...) "
                "or drop it from 'modalities'."
            )
        return replace(self, features={m: self.features[m] for m in modalities})

    @property
    def n_train(self) -> int:
        return int(self.train.nnz)

    @staticmethod
    def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
        """Binary CSR matrix from (user, item) pairs; repeated pairs count once."""
        matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        matrix.sort_indices()
        return matrix
