"""The contract every model offers to the trainer, the evaluator and (later) serving."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sigerec.config import ModelConfig
from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.search_space import SearchSpace


class Recommender(nn.Module):
    """Base class of all models; registering a subclass (``@register_model``) is all a new model needs.

    A model is built as ``Model(dataset, config, device)`` from the Dataset and its typed config
    (``config_class``) and implements:

    - ``loss(users, positives, negatives)``: the training loss of a batch of triples (a scalar);
    - ``embeddings()``: the final user vectors [n_users, d] and item vectors [n_items, d], whose
      inner products are the model's scores (evaluation and export use them).

    It may override ``scorer()`` (users -> scores over all items, for full ranking; the default
    is the inner product of ``embeddings()``), ``pre_epoch(epoch)`` (resample per-epoch
    structure, e.g. FREEDOM's graph pruning, before that epoch's batches) and provide
    ``loss_terms(users, positives, negatives)`` (the loss as named terms that sum to it, logged
    per epoch). Multimodal models set ``needs_features`` (then ``self.modalities`` lists the
    dataset's modalities, or the constructor refuses a dataset without any) and use
    ``register_features`` and ``features`` for their content. ``tests/models/test_contract.py``
    checks every registered model against this contract.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    # Training settings the model's authors use where they differ from the shared protocol
    # (e.g. MGCN's lr decay); applied before config files and --set, so users can override them.
    training_defaults: ClassVar[dict[str, Any]] = {}
    # True when the model cannot be built without item content (``<modality>_feat.npy`` files).
    needs_features: ClassVar[bool] = False
    # What `sigerec tune` searches by default: setting -> values, each with its source
    # (see sigerec/search_space.py); empty = the model has nothing to tune.
    search_space: ClassVar[SearchSpace] = {}
    # True when the training step can run over the batch's graph neighbourhood only, with
    # sparse gradients (``use_batch_steps``; ``TrainingConfig.step_scope``).
    supports_batch_steps: ClassVar[bool] = False
    # False for models computed from the training data by a formula (pop, contentknn): no
    # gradient changes them, so the trainer's epochs only evaluate.
    trainable: ClassVar[bool] = True
    # True when the model can represent an item without training interactions from its content
    # (its docstring states the rule); ID-only models rank such items by untrained embeddings.
    can_score_cold_items: ClassVar[bool] = False

    def __init__(self, dataset: Dataset, config: ModelConfig, device: torch.device | str = "cpu"):
        super().__init__()
        self.n_users = dataset.n_users
        self.n_items = dataset.n_items
        self.config = config
        self.device = torch.device(device)
        if self.needs_features:  # the same error for every model, before anything is built
            self.modalities = self.require_features(dataset, type(self).__name__)

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user vectors [n_users, dim] and item vectors [n_items, dim]."""
        raise NotImplementedError

    @staticmethod
    def require_features(dataset: Dataset, model_label: str) -> list[str]:
        """The dataset's modalities in sorted order, or an error saying how to add some.

        Every multimodal model calls this first, so the message is the same everywhere.
        """
        if not dataset.features:
            raise SigerecError(
                f"{model_label} needs item content features, but dataset '{dataset.name}' has none. "
                "Add a `<modality>_feat.npy` file ([n_items, dim], row i = item i) to the dataset "
                "folder, e.g. with `sigerec encode text` or `sigerec encode image`."
            )
        return sorted(dataset.features)

    def register_features(self, dataset: Dataset, trainable: bool) -> dict[str, int]:
        """Each modality's raw features as ``<modality>_features``; returns their widths.

        Trainable features are parameters (MMRec's ``from_pretrained(freeze=False)``) and are
        saved in checkpoints; frozen ones are buffers left out of them (they come back with
        the dataset).
        """
        widths = {}
        for modality in self.modalities:
            features = torch.as_tensor(np.asarray(dataset.features[modality]), dtype=torch.float32)
            if trainable:
                self.register_parameter(f"{modality}_features", nn.Parameter(features.clone()))
            else:
                self.register_buffer(f"{modality}_features", features, persistent=False)
            widths[modality] = features.shape[1]
        return widths

    def features(self, modality: str) -> torch.Tensor:
        """The raw features of ``modality``: [n_items, F_m] (see :meth:`register_features`)."""
        return getattr(self, f"{modality}_features")

    def use_batch_steps(self, fanout: int = 0) -> None:
        """Compute training steps from the batch's neighbourhood only (``graphs/subgraph.py``),
        sampling at most ``fanout`` user-item neighbours per node and layer (0 = all).

        Models that support it propagate through ``self.graph`` (an ``InteractionGraph``) and
        gather their trained tables with sparse gradients there; others are refused.
        """
        if not self.supports_batch_steps:
            raise SigerecError(
                f"{type(self).__name__} cannot train with step_scope='batch'; use step_scope=full (or auto)."
            )
        self.graph.batch_local = True
        self.graph.fanout = fanout

    def prepare_cold_item_rule(self, dataset: Dataset, k: int) -> None:
        """Find each cold item's k nearest warm items by content (``graphs/cold_neighbours.py``,
        on the dataset's raw features) for :meth:`apply_cold_item_rule`; the same rule serving
        applies to items added later, so evaluation and ``sigerec add-items`` agree."""
        from sigerec.graphs.cold_neighbours import cold_item_weights
        from sigerec.graphs.propagation import SparseOperator

        warm = np.diff(sp.csc_matrix(dataset.train).indptr) > 0
        features = [np.asarray(dataset.features[m], dtype=np.float32) for m in self.modalities]
        cold, weights = cold_item_weights(features, warm, k)
        self.cold_item_rows = torch.as_tensor(cold, device=self.device) if len(cold) else None
        self.cold_item_weights = SparseOperator(weights, self.device) if len(cold) else None

    def apply_cold_item_rule(self, item_vectors: torch.Tensor) -> torch.Tensor:
        """``item_vectors`` [n_items, d] with each cold item's row replaced by the mean of its
        warm neighbours' rows, scaled per ``config.cold_item_norm`` (unchanged without
        :meth:`prepare_cold_item_rule` or cold items)."""
        from sigerec.graphs.cold_neighbours import neighbour_vectors

        if getattr(self, "cold_item_rows", None) is None:
            return item_vectors
        norm = self.config.cold_item_norm  # every model that calls this has ColdItemSettings
        return item_vectors.index_copy(
            0, self.cold_item_rows, neighbour_vectors(self.cold_item_weights, item_vectors, norm)
        )

    def pre_epoch(self, epoch: int) -> None:
        """Hook before each training epoch; default: nothing."""

    @torch.no_grad()
    def scorer(self):
        """A function users -> scores [len(users), n_items], with embeddings computed once."""
        user_vectors, item_vectors = self.embeddings()
        return dot_product_scorer(user_vectors, item_vectors)


def id_embedding(rows: int, size: int, init=nn.init.xavier_uniform_) -> nn.Parameter:
    """A trainable ID table [rows, size], initialised at once, so a seed's draws follow creation order."""
    table = nn.Parameter(torch.empty(rows, size))
    init(table)
    return table


def joint_id_embedding(n_users: int, n_items: int, size: int) -> nn.Parameter:
    """Users' and items' ID tables as one parameter [n_users + n_items, size], users first.

    One table lets a batch gather all its rows at once (one gradient buffer, not two); each
    part is Xavier-uniform with its own fan, exactly as MMRec's two ``nn.Embedding`` tables.
    """
    table = nn.Parameter(torch.empty(n_users + n_items, size))
    with torch.no_grad():
        nn.init.xavier_uniform_(table[:n_users])
        nn.init.xavier_uniform_(table[n_users:])
    return table


def dot_product_scorer(user_vectors: torch.Tensor, item_vectors: torch.Tensor):
    """Score chunks of users against all items by inner product.

    On CPU the product runs through NumPy's OpenBLAS into one reused buffer: torch's MKL
    kernels ran this [users, 64] x [64, items] shape about 1.8x slower on AMD cores, and a
    fresh output per chunk adds page faults. The returned tensor is a view of that buffer,
    valid until the next call (the evaluator consumes each chunk before asking for the next).
    """
    if user_vectors.device.type != "cpu":
        item_vectors_t = item_vectors.t().contiguous()
        return lambda users: user_vectors[users.to(user_vectors.device)] @ item_vectors_t
    user_array = user_vectors.detach().contiguous().numpy()
    item_array_t = np.ascontiguousarray(item_vectors.detach().numpy().T)
    buffer = np.empty((0, item_array_t.shape[1]), dtype=user_array.dtype)

    def score_users(users: torch.Tensor) -> torch.Tensor:
        nonlocal buffer
        if buffer.shape[0] < len(users):
            buffer = np.empty((len(users), item_array_t.shape[1]), dtype=user_array.dtype)
        scores = buffer[: len(users)]
        np.matmul(user_array[users.numpy()], item_array_t, out=scores)
        return torch.from_numpy(scores)

    return score_users
