"""MGCN: behaviour-guided purification of modality features and a behaviour-aware fuser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sigerec.config import (
    DEFAULT_COLD_ITEM_RULE,
    ColdItemSettings,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import modality_knn_graph
from sigerec.graphs.item_graphs import KnnMethod
from sigerec.models.losses import bpr_loss, info_nce, squared_norm_loss
from sigerec.models.registry import register_model
from sigerec.models.semantic_branch import BehaviourSemanticRecommender, SemanticColdItemRule
from sigerec.search_space import SearchSpace, choices


@dataclass
class MGCNConfig(ColdItemSettings):
    """Hyperparameters of :class:`MGCN` (defaults from MMRec's ``MGCN.yaml``).

    - ``knn_k`` (10): neighbours per item in each modality's cosine kNN graph (self included),
      edges weighted by the cosine, D^-1/2 S D^-1/2.
    - ``knn_method`` ("auto"): how the kNN graphs are found: "exact", "faiss" (approximate,
      for large catalogues) or "auto" (exact up to ``item_graphs.AUTO_EXACT_MAX_ITEMS`` items).
    - ``n_ui_layers`` (2): LightGCN layers on the user-item graph.
    - ``n_ii_layers`` (1): propagations over the item-item graphs (MMRec's ``n_layers``).
    - ``reg_weight`` (1e-4): weight of (1/2) sum of the squared final batch vectors / batch.
    - ``cl_weight`` (0.01): weight of the InfoNCE between fused semantics and behaviour
      (MMRec's ``cl_loss``, grid {0.001, 0.01, 0.1}; 0.01 is its middle, not a tuned choice).
    - ``temperature`` (0.2): InfoNCE temperature (MMRec passes 0.2).
    - ``train_features`` (True): raw features are trainable, as MMRec's
      ``from_pretrained(freeze=False)``; the kNN graphs come from the initial features either way.
    - ``cold_item_rule`` ("warm_neighbours"), "behaviour_neighbours" or "none", and ``cold_item_k``
      (10), sigerec's addition: how an item without training interactions is scored, see :class:`MGCN`.
    Training: MMRec runs MGCN with lr decay (0.96, 50) where the shared default is (1.0, 50);
    ``MGCN.training_defaults`` sets it (``--set learning_rate_scheduler=[1.0,50]`` undoes it).
    """

    knn_k: PositiveInt = 10
    knn_method: KnnMethod = "auto"
    n_ui_layers: NonNegativeInt = 2
    n_ii_layers: NonNegativeInt = 1
    reg_weight: NonNegativeFloat = 1e-4
    cl_weight: NonNegativeFloat = 0.01
    temperature: PositiveFloat = 0.2
    train_features: bool = True
    cold_item_rule: SemanticColdItemRule = DEFAULT_COLD_ITEM_RULE


@register_model
class MGCN(BehaviourSemanticRecommender):
    """MGCN: multi-view graph convolution with purified modality features.

    Paper: Yu, Li, Chen and Wang, "Multi-View Graph Convolutional Network for Multimedia
    Recommendation", ACM MM 2023. As MMRec's ``MGCN``, any number of modalities:

    - item-item view (eqs. 3-6): S^m = top-k cosine of x^m, weighted, D^-1/2 S^m D^-1/2 (frozen);
      purified item input e^m = E_item * sigmoid(G_m (W_m x^m + c_m)); z^m_i = S^m e^m;
      z^m_u = R_hat z^m_i with R_hat the user -> item block of the normalised user-item graph;
    - user-item view (eqs. 1-2): b = mean of LightGCN layers 0..2 on A_hat;
    - behaviour-aware fuser (eqs. 11-14): see :class:`SemanticFuser` ("attention");
    - prediction (eq. 15): h = b + s, score = h_u . h_i;
    - loss (eqs. 16-18): BPR(h) + reg_weight * (1/2)(|h_u|^2 + |h_i+|^2 + |h_i-|^2)/batch
      + cl_weight * (InfoNCE(s_i+, b_i+) + InfoNCE(s_u, b_u)), cosine, tau = ``temperature``,
      in-batch negatives (rows of the batch, repeats included, as MMRec).
    Differences from MMRec: items with all-zero features have no kNN neighbours instead of NaN
    rows (see ``knn_item_graph``); graphs are cached on disk keyed by their inputs.
    Cold items (not in MMRec; scoring only, training, users and warm items unchanged):
    "warm_neighbours" (default): a cold item's final h_i is mean_m mean_{j in N^m(i)} h_j over its
    ``cold_item_k`` most cosine-similar warm items N^m(i) by raw features x^m (the rule serving
    uses); "behaviour_neighbours": only b_i is so replaced, before the fuser, and s_i comes from the
    item's features; "none": its untrained ID vector.
    Search space: MMRec's MGCN grid (cl_weight, MMRec's ``cl_loss``, 3 values).
    """

    name = "mgcn"
    config_class = MGCNConfig
    needs_features = True
    can_score_cold_items = True
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate_scheduler": (0.96, 50.0)}
    search_space: ClassVar[SearchSpace] = {
        "cl_weight": choices(
            0.001, 0.01, 0.1, source="MMRec src/configs/model/MGCN.yaml (hyper_parameters; its key cl_loss)"
        ),
    }

    def __init__(self, dataset: Dataset, config: MGCNConfig, device="cpu"):
        super().__init__(dataset, config, device)
        graphs = {
            m: modality_knn_graph(dataset, m, k=config.knn_k, weighted=True, method=config.knn_method)
            for m in self.modalities
        }
        self.build(
            dataset,
            graphs,
            n_ui_layers=config.n_ui_layers,
            n_ii_layers=config.n_ii_layers,
            gate=True,
            fuser="attention",
            train_features=config.train_features,
        )

    def loss(self, users, positives, negatives):
        batch = self.batch_representations(users, positives, negatives)
        user, positive, negative = batch.final.chunk(3)
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        alignment = 0.0
        if self.config.cl_weight > 0:
            alignment = sum(
                info_nce(batch.part(batch.fused, rows), batch.part(batch.behaviour, rows), self.config.temperature)
                for rows in ("positives", "users")
            )
        return (
            ranking
            + self.config.reg_weight * squared_norm_loss(user, positive, negative)
            + (self.config.cl_weight * alignment)
        )
