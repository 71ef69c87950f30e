"""FREEDOM: a frozen multimodal item-item graph plus a degree-sensitively pruned user-item graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sigerec.config import ColdItemSettings, DropoutRate, NonNegativeFloat, NonNegativeInt, PositiveInt, UnitInterval
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import interaction_graph, modality_knn_graph
from sigerec.graphs.interaction_graph import InteractionGraph
from sigerec.graphs.item_graphs import KnnMethod, mix_graphs
from sigerec.graphs.propagation import SparseOperator
from sigerec.models.base import Recommender, id_embedding
from sigerec.models.losses import bpr_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


@dataclass
class FREEDOMConfig(ColdItemSettings):
    """Hyperparameters of :class:`FREEDOM` (MMRec's ``FREEDOM.yaml`` key names).

    - ``embedding_size`` (d, default 64): size of the user/item ID embeddings and of the
      modality projections (MMRec's ``feat_embed_dim``, 64, must equal it because the
      projected features are scored against the user vector, so it is not a separate key).
    - ``knn_k`` (10): neighbours per item in each modality's cosine kNN graph, self included.
    - ``knn_method`` ("auto"): how the kNN graphs are found: "exact", "faiss" (approximate,
      for large catalogues) or "auto" (exact up to ``item_graphs.AUTO_EXACT_MAX_ITEMS`` items).
    - ``mm_image_weight`` (0.1): weight of the image graph in the mix; text gets 1 - it.
    - ``n_mm_layers`` (1): propagations of the item ID embeddings over the item graph.
    - ``n_ui_layers`` (2): LightGCN layers on the user-item graph.
    - ``dropout`` (0.8): share of the training edges pruned each epoch (MMRec grid
      {0.8, 0.9}; 0.8 is the first value of the grid). 0 disables pruning.
    - ``reg_weight`` (1e-4): weight of the modality BPR terms (MMRec grid
      {0, 1e-5, 1e-4, 1e-3}; 1e-4 is the middle of the non-zero values, not a tuned choice).
    - ``train_features`` (True): the raw features are trainable parameters, as MMRec's
      ``nn.Embedding.from_pretrained(..., freeze=False)``; False keeps them constant (and out of
      checkpoints). The item graph is built from the initial features either way.
    - ``cold_item_rule`` ("warm_neighbours" or "none") and ``cold_item_k`` (10): see
      :class:`~sigerec.config.ColdItemSettings` and :class:`FREEDOM`.
    """

    knn_k: PositiveInt = 10
    knn_method: KnnMethod = "auto"
    mm_image_weight: UnitInterval = 0.1
    n_mm_layers: NonNegativeInt = 1
    n_ui_layers: NonNegativeInt = 2
    dropout: DropoutRate = 0.8
    reg_weight: NonNegativeFloat = 1e-4
    train_features: bool = True


@register_model
class FREEDOM(Recommender):
    """FREEDOM: LightGCN on a pruned user-item graph, items also smoothed over a frozen item graph.

    Paper: Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for
    Multimodal Recommendation", ACM MM 2023. Implemented as MMRec's ``FREEDOM`` does.

    Frozen item-item graph (Section 3.1, eqs. 1-4), built once at construction: for every
    modality m, S^m = top-k cosine neighbours of each item (self included), binary edges,
    then D^-1/2 S^m D^-1/2 with row-sum degrees; the modalities are mixed as

        S = w * S^image + (1 - w) * S^text,   w = ``mm_image_weight``.

    With a single modality its graph is used alone; with any other set of modality names
    (or more than two) every modality gets the same weight 1/M (MMRec knows only image and
    text, so this is our generalisation).

    Denoised user-item graph (Section 3.2, eqs. 5-6), resampled in ``pre_epoch``: each
    training edge (u, i) has probability proportional to p_ui = 1 / sqrt(d_u d_i) (degrees of
    the full training graph); round((1 - dropout) * |E|) edges are drawn without replacement
    with ``torch.multinomial`` on the per-epoch seeded CPU generator (so a resumed run draws
    the same graph), and the kept bipartite graph is renormalised D^-1/2 A D^-1/2. MMRec
    truncates (1 - dropout) * |E| with ``int``; we round, which differs by at most one edge.
    Evaluation (``embeddings()`` in eval mode) uses the full normalised graph, as MMRec's
    ``full_sort_predict``. Before the first ``pre_epoch`` training also uses the full graph.

    Forward (eqs. 7-9):

        h_i = (S^L E_item)_i                                 L = ``n_mm_layers``
        [e_u; e_i] = mean_{l=0..K} A_hat^l [E_user; E_item]    K = ``n_ui_layers``
        user vector = e_u,  item vector = e_i + h_i,  score = user . item

    Loss (eq. 10), with f^m the item features and W^m, b^m a linear projection per modality
    (MMRec's ``image_trs``/``text_trs``):

        BPR(e_u . x_i+, e_u . x_i-) + reg_weight * sum_m BPR(e_u . (W^m f^m_i+ + b^m),
                                                            e_u . (W^m f^m_i- + b^m))

    The projected features never enter the scores: they only shape the user vectors.
    Initialisation as MMRec: ID tables Xavier-uniform, projections torch's Linear default.
    Hyperparameters and defaults: see :class:`FREEDOMConfig`.
    Cold items (sigerec's addition; scoring only, training, users and warm items unchanged):
    ``cold_item_rule="warm_neighbours"`` (default) gives an item without training interactions the
    mean over modalities of the mean final item vector of its ``cold_item_k`` most cosine-similar
    warm items by raw features (``graphs/cold_neighbours.py``, the rule serving uses); "none" keeps
    its untrained vector. FREEDOM's own content path (the projections W^m f^m + b^m) only shapes the
    users in training and is never scored, so it is not offered as a cold-item rule.
    Search space: MMRec's FREEDOM grid (dropout x reg_weight, 8 combinations).
    """

    name = "freedom"
    config_class = FREEDOMConfig
    search_space: ClassVar[SearchSpace] = {
        "dropout": choices(0.8, 0.9, source="MMRec src/configs/model/FREEDOM.yaml (hyper_parameters)"),
        "reg_weight": choices(0.0, 1e-5, 1e-4, 1e-3, source="MMRec src/configs/model/FREEDOM.yaml (hyper_parameters)"),
    }
    needs_features = True
    can_score_cold_items = True

    def __init__(self, dataset: Dataset, config: FREEDOMConfig, device="cpu"):
        super().__init__(dataset, config, device)
        size = config.embedding_size
        self.user_embedding = id_embedding(self.n_users, size)  # [n_users, d]
        self.item_embedding = id_embedding(self.n_items, size)  # [n_items, d]
        widths = self.register_features(dataset, trainable=config.train_features)
        self.feature_projections = nn.ModuleDict({m: nn.Linear(widths[m], size) for m in self.modalities})

        self.item_item_graph = SparseOperator(self._build_item_item_graph(dataset), device)  # .scipy: S

        self.full_graph = interaction_graph(dataset, device)
        train = self.full_graph.interactions
        edge_users = np.repeat(np.arange(self.n_users), np.diff(train.indptr))
        self.edge_users, self.edge_items = edge_users, train.indices.astype(np.int64)
        user_degree = np.diff(train.indptr).astype(np.float64)
        item_degree = np.bincount(train.indices, minlength=self.n_items).astype(np.float64)
        # p_ui = 1 / sqrt(d_u d_i) with MMRec's 1e-7 on the degrees; kept on CPU so that every
        # device draws the same edges from the same seed.
        self.edge_weights = torch.from_numpy(
            1.0 / np.sqrt((user_degree[edge_users] + 1e-7) * (item_degree[self.edge_items] + 1e-7))
        ).float()  # [n_edges]
        self.pruned_graph = self.full_graph
        if config.cold_item_rule == "warm_neighbours":
            self.prepare_cold_item_rule(dataset, config.cold_item_k)

    def _build_item_item_graph(self, dataset: Dataset) -> sp.csr_matrix:
        """S: the mix of the modalities' sym-normalised binary kNN graphs (eqs. 1-4)."""
        graphs = [
            modality_knn_graph(dataset, m, k=self.config.knn_k, weighted=False, method=self.config.knn_method)
            for m in self.modalities
        ]
        return mix_graphs(graphs, self._modality_weights())

    def _modality_weights(self) -> list[float]:
        if self.modalities == ["image", "text"]:
            return [self.config.mm_image_weight, 1.0 - self.config.mm_image_weight]
        return [1.0 / len(self.modalities)] * len(self.modalities)

    def kept_edge_count(self) -> int:
        return round((1.0 - self.config.dropout) * len(self.edge_weights))

    def pre_epoch(self, epoch: int) -> None:
        """Degree-sensitive edge pruning (eq. 5-6): a new denoised user-item graph per epoch."""
        if self.config.dropout <= 0.0:
            self.pruned_graph = self.full_graph
            return
        kept = torch.multinomial(self.edge_weights, self.kept_edge_count(), replacement=False).numpy()
        kept_train = sp.csr_matrix(
            (np.ones(len(kept), dtype=np.float32), (self.edge_users[kept], self.edge_items[kept])),
            shape=(self.n_users, self.n_items),
        )
        self.pruned_graph = InteractionGraph(kept_train, self.device)

    def _forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self.pruned_graph if self.training else self.full_graph
        smoothed_items = self.item_embedding  # [n_items, d]
        for _ in range(self.config.n_mm_layers):
            smoothed_items = self.item_item_graph @ smoothed_items
        ego = torch.cat([self.user_embedding, self.item_embedding])  # [n_users + n_items, d]
        final = graph.propagate(ego, self.config.n_ui_layers)
        return final[: self.n_users], final[self.n_users :] + smoothed_items

    def embeddings(self):
        users, items = self._forward()
        return users, self.apply_cold_item_rule(items)

    def loss(self, users, positives, negatives):
        user_vectors, item_vectors = self._forward()
        user = user_vectors[users]
        ranking = bpr_loss((user * item_vectors[positives]).sum(1), (user * item_vectors[negatives]).sum(1))
        modality_ranking = 0.0
        for modality in self.modalities:
            # Only the batch's items are projected (MMRec projects every item, same values).
            projection = self.feature_projections[modality]
            features = self.features(modality)
            positive, negative = projection(features[positives]), projection(features[negatives])
            modality_ranking = modality_ranking + bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        return ranking + self.config.reg_weight * modality_ranking
