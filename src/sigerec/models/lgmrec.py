"""LGMRec: local user-item graph embeddings plus global modality hypergraph embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Annotated, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sigerec.config import ColdItemSettings, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.graphs.propagation import SparseOperator
from sigerec.models.base import Recommender, id_embedding
from sigerec.models.losses import bpr_loss, embedding_norm_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


@dataclass
class LGMRecConfig(ColdItemSettings):
    """Hyperparameters of :class:`LGMRec` (MMRec's ``LGMRec.yaml`` key names and Baby values).

    - ``embedding_size`` (d, default 64): size of the ID embeddings and of the modality
      projections (MMRec's ``feat_embed_dim``, 64, must equal it because the two are summed,
      so it is not a separate key).
    - ``cf_model`` ("lightgcn"): the collaborative part, LightGCN over the user-item graph, or
      "mf" for the raw ID embeddings (MMRec's two options).
    - ``n_ui_layers`` (2): LightGCN layers of the ID embeddings (ignored with "mf").
    - ``n_mm_layers`` (2): propagations of the projected modality features over the same graph.
    - ``n_hyper_layer`` (1): hypergraph layers (at least 1).
    - ``hyper_num`` (4): hyperedges per modality. MMRec's Baby value; Sports uses 4, Clothing 64.
    - ``keep_rate`` (0.5): share of the hyperedge assignments kept by dropout in training
      (Sports 0.4, Clothing 0.2); 1 disables the dropout.
    - ``alpha`` (0.3): weight of the normalised global (hypergraph) embeddings
      (Sports 0.6, Clothing 0.2).
    - ``cl_weight`` (1e-4): weight of the cross-modal contrastive loss (a sum over the batch).
    - ``reg_weight`` (1e-6): weight of the embedding-norm penalty on the batch's final vectors.
    - ``tau`` (0.2): temperature of the Gumbel-softmax and of the contrastive loss. MMRec
      hard-codes 0.2 for both (``self.tau``); it is a key here so that it can be varied.
    - ``cold_item_rule`` ("warm_neighbours" or "none") and ``cold_item_k`` (10): see
      :class:`~sigerec.config.ColdItemSettings` and :class:`LGMRec`.
    """

    cf_model: Literal["lightgcn", "mf"] = "lightgcn"
    n_ui_layers: NonNegativeInt = 2
    n_mm_layers: NonNegativeInt = 2
    n_hyper_layer: PositiveInt = 1
    hyper_num: PositiveInt = 4
    keep_rate: Annotated[float, Range(0, 1, low_inclusive=False)] = 0.5  # 1 keeps every assignment
    alpha: NonNegativeFloat = 0.3
    cl_weight: NonNegativeFloat = 1e-4
    reg_weight: NonNegativeFloat = 1e-6
    tau: PositiveFloat = 0.2


# MMRec's LGMRec.yaml has no grid: one value per key for Baby, with Sports' and Clothing's
# commented out beside it; the search space takes the three datasets' values.
_LGMREC_SOURCE = "MMRec src/configs/model/LGMRec.yaml (Baby, Sports and Clothing values, their union)"


@register_model
class LGMRec(Recommender):
    """LGMRec: collaborative and modality embeddings on the user-item graph plus a hypergraph per modality.

    Paper: Guo et al., "LGMRec: Local and Global Graph Learning for Multimodal
    Recommendation", AAAI 2024. Implemented as MMRec's ``LGMRec`` (``src/models/lgmrec.py``)
    does; the differences are listed at the end. R is the binary training matrix
    [n_users, n_items], A_hat = D^-1/2 [[0, R], [R^T, 0]] D^-1/2 (degrees + 1e-7), X^m the
    frozen item features of modality m [n_items, F_m], d = ``embedding_size``, h = ``hyper_num``.

    Local graph embeddings:

        E_c = mean_{l=0..K} A_hat^l [E_user; E_item]            K = ``n_ui_layers``
              (just [E_user; E_item] when ``cf_model`` is "mf")
        F^m_item = X^m W^m  (W^m [F_m, d], no bias),  F^m_user = D_u^-1 R F^m_item
        E_m = A_hat^L [F^m_user; F^m_item]                         L = ``n_mm_layers``
        E_local = E_c + sum_m normalize(E_m)

    where D_u^-1 R averages a user's items (1 / (degree + 1e-7), so a user without training
    items gets 0) and ``normalize`` is row-wise L2 normalisation. The modality part keeps the
    last layer only (no layer mean), as MMRec.

    Global hypergraph embeddings: each modality has h
    learnable hyperedge embeddings V^m [F_m, h] (one column per hyperedge, in the feature
    space). Items are assigned to hyperedges from their features, users through their items:

        H^m_item = GumbelSoftmax(X^m V^m, tau)           [n_items, h], rows sum to 1
        H^m_user = GumbelSoftmax(R X^m V^m, tau)         [n_users, h] (sum over the user's items)
        H~ = Dropout(H, p = 1 - keep_rate)               each of the two, own mask
        Z_0 = E_c[items];  per layer:  Lat = H~^m_item^T Z,  Z = H~^m_item Lat,  U = H~^m_user Lat
        G_m = [U; Z]  after ``n_hyper_layer`` layers
        final = E_local + alpha * normalize(sum_m G_m),   score(u, i) = final_u . final_i

    Loss, on a batch of (u, i+, i-) triples:

        BPR(final_u . final_i+, final_u . final_i-)
        + cl_weight * CL + reg_weight * (||final_u|| + ||final_i+|| + ||final_i-||) / batch

    CL is MMRec's cross-modal InfoNCE between the hypergraph embeddings of two modalities a
    and b, for the batch's users and its positive items. Its negatives are *all* users
    (items), not the batch, and it is *summed* over the batch (not averaged):

        nce(a, b, nodes) = -sum_{n in batch} log( exp(cos(G_a[n], G_b[n]) / tau)
                                                  / sum_{v in all nodes} exp(cos(G_a[n], G_b[v]) / tau) )
        CL(a, b) = nce(a, b, users) + nce(a, b, positive items)

    Any number of modalities (sorted by name, so image before text as MMRec's v before t):
    with two, CL = CL(first, second), exactly MMRec's image-anchored term. With M > 2, CL
    is the mean of CL(a, b) over the M(M-1)/2 pairs a < b in that order, so ``cl_weight``
    keeps its scale. With one modality there is no pair and CL is zero (the model is then
    LightGCN + that modality's local and hypergraph embeddings, trained by BPR and reg).

    Training vs evaluation: in training mode (``model.train()``) the assignments are drawn
    with Gumbel noise (``F.gumbel_softmax``, hard=False) and dropped out, from torch's
    global generator in MMRec's order (Gumbel for every modality's items then users, then
    dropout for every modality's items then users), so the trainer's per-epoch seed makes
    every draw reproducible and a resumed run draws the same. In eval mode (``model.eval()``,
    which the evaluator sets) the forward is deterministic: no dropout, as MMRec under
    ``model.eval()``, and the assignments are the noise-free softmax(X^m V^m / tau) (the
    Gumbel-softmax with its noise set to zero). MMRec differs here: ``F.gumbel_softmax``
    ignores the module's mode, so its ``full_sort_predict`` draws fresh Gumbel noise on
    every call, i.e. for every batch of evaluated users, and its metrics are random.
    (On CUDA, torch's sparse x dense products are not bitwise reproducible, so two evaluations
    can still differ in the last bit of a score, as for every graph model here; on CPU they
    are identical.)

    Other differences from MMRec, all on purpose:
    - MMRec works only with exactly two modalities named image and text (with one, its
      ``forward`` fails on the undefined hypergraph embeddings); any set works here, as above.
    - CL is computed with log-sum-exp, equal to MMRec's exp / sum / log without its overflow.
    - The item-side products X^m W^m and X^m V^m are one product with [W^m | V^m], and all
      modalities' user sides one product with R; the same values, fewer passes over X and R.
    (A version of the authors' repository assigns the users of both modalities from the text
    logits, a typo that MMRec's copy fixed; this follows MMRec.)

    Cost: like MMRec, every training step runs the whole forward over all users and items,
    and CL compares the batch with every user and every item: O(batch x (n_users + n_items) x d)
    per step; on CPU at Amazon scale it is the largest single term of a step.

    Cold items (sigerec's addition; scoring only, training, users and warm items unchanged):
    ``cold_item_rule="warm_neighbours"`` (default) gives an item without training interactions the
    mean over modalities of the mean final item vector of its ``cold_item_k`` most cosine-similar
    warm items by raw features (``graphs/cold_neighbours.py``, the rule serving uses); "none" keeps
    its untrained vector. (With "none" a cold item's hypergraph part already comes from its
    features, but its local part is its untrained ID vector: no clean content-only path.)

    Initialisation as MMRec: ID tables, W^m and V^m Xavier-uniform, in MMRec's order (users,
    items, then per modality W^m, V^m). The features are frozen constants, not saved in
    checkpoints. Hyperparameters and defaults: see :class:`LGMRecConfig`.

    Search space: MMRec's LGMRec.yaml sets one value per key for each dataset (Baby's active,
    Sports' and Clothing's commented out), so the space is the union of those three settings
    for the keys that differ (n_hyper_layer x hyper_num x keep_rate x alpha, 36 combinations);
    cl_weight (1e-4), reg_weight (1e-6) and the layer counts are the same for all three.
    """

    name = "lgmrec"
    config_class = LGMRecConfig
    needs_features = True
    can_score_cold_items = True
    search_space: ClassVar[SearchSpace] = {
        "n_hyper_layer": choices(1, 2, source=_LGMREC_SOURCE),
        "hyper_num": choices(4, 64, source=_LGMREC_SOURCE),
        "keep_rate": choices(0.2, 0.4, 0.5, source=_LGMREC_SOURCE),
        "alpha": choices(0.2, 0.3, 0.6, source=_LGMREC_SOURCE),
    }

    def __init__(self, dataset: Dataset, config: LGMRecConfig, device="cpu"):
        super().__init__(dataset, config, device)
        size = config.embedding_size
        self.user_embedding = id_embedding(self.n_users, size)  # [n_users, d]
        self.item_embedding = id_embedding(self.n_items, size)  # [n_items, d]
        self.feature_projections = nn.ParameterDict()  # W^m [F_m, d]
        self.hyperedge_embeddings = nn.ParameterDict()  # V^m [F_m, h]
        # Frozen buffers, reloaded with the dataset (as VBPR), so checkpoints stay small.
        widths = self.register_features(dataset, trainable=False)
        for modality in self.modalities:
            width = widths[modality]
            self.feature_projections[modality] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, size)))
            self.hyperedge_embeddings[modality] = nn.Parameter(
                nn.init.xavier_uniform_(torch.empty(width, config.hyper_num))
            )

        self.graph = interaction_graph(dataset, device)  # A_hat
        train = self.graph.interactions
        self.interactions = SparseOperator(train, device)  # R [n_users, n_items], R^T kept for backward
        user_degree = np.asarray(train.sum(axis=1), dtype=np.float32).reshape(-1, 1)
        self.register_buffer(
            "inverse_user_degree", torch.from_numpy(1.0 / (user_degree + 1e-7)), persistent=False
        )  # [n_users, 1]
        if config.cold_item_rule == "warm_neighbours":
            self.prepare_cold_item_rule(dataset, config.cold_item_k)

    # -- forward ---------------------------------------------------------------------------
    def _assign(self, logits: torch.Tensor) -> torch.Tensor:
        """Soft hyperedge assignments: Gumbel-softmax in training, noise-free softmax in eval."""
        if self.training:
            return F.gumbel_softmax(logits, tau=self.config.tau, hard=False, dim=1)
        return torch.softmax(logits / self.config.tau, dim=1)

    def _dropout(self, assignments: torch.Tensor) -> torch.Tensor:
        return F.dropout(assignments, p=1.0 - self.config.keep_rate, training=self.training)

    def _propagate(self, ego: torch.Tensor, modal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean_{l<=K} A_hat^l ego, A_hat^L modal): the collaborative and the modality parts.

        Kept as separate products: one product of the concatenated [ego | modal] per layer
        saved only a few percent of a CPU training step on Baby, for an extra copy.
        """
        config = self.config
        ui_layers = config.n_ui_layers if config.cf_model == "lightgcn" else 0
        collaborative = self.graph.propagate(ego, ui_layers)
        for _ in range(config.n_mm_layers):
            modal = self.graph.layer(modal)
        return collaborative, modal

    def _forward(self) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Final user [n_users, d] and item [n_items, d] vectors, and each modality's
        hypergraph embeddings (users [n_users, d], items [n_items, d])."""
        config = self.config
        size, hyper_num = config.embedding_size, config.hyper_num
        # Item side of every modality: X^m [W^m | V^m] -> [n_items, d + h]; user side: R times it.
        item_sides = [
            self.features(m) @ torch.cat([self.feature_projections[m], self.hyperedge_embeddings[m]], dim=1)
            for m in self.modalities
        ]
        user_sides = (self.interactions @ torch.cat(item_sides, dim=1)).split(size + hyper_num, dim=1)

        projected, assignments = [], []
        for item_side, user_side in zip(item_sides, user_sides):
            item_features, item_logits = item_side.split([size, hyper_num], dim=1)
            user_features, user_logits = user_side.split([size, hyper_num], dim=1)
            projected.append(torch.cat([user_features * self.inverse_user_degree, item_features]))
            assignments.append((self._assign(item_logits), self._assign(user_logits)))

        ego = torch.cat([self.user_embedding, self.item_embedding])  # [n_nodes, d]
        collaborative, modal = self._propagate(ego, torch.cat(projected, dim=1))
        local = collaborative
        for modality_part in modal.split(size, dim=1):
            local = local + F.normalize(modality_part, dim=1)

        collaborative_items = collaborative[self.n_users :]
        hyper, global_sum = [], 0.0
        for item_assignment, user_assignment in assignments:
            item_assignment, user_assignment = self._dropout(item_assignment), self._dropout(user_assignment)
            item_hyper = collaborative_items
            for _ in range(config.n_hyper_layer):
                latent = item_assignment.t() @ item_hyper  # [h, d]
                item_hyper = item_assignment @ latent
                user_hyper = user_assignment @ latent
            hyper.append((user_hyper, item_hyper))
            global_sum = global_sum + torch.cat([user_hyper, item_hyper])
        final = local + config.alpha * F.normalize(global_sum, dim=1)
        return final[: self.n_users], final[self.n_users :], hyper

    def embeddings(self):
        users, items, _ = self._forward()
        return users, self.apply_cold_item_rule(items)

    # -- loss ------------------------------------------------------------------------------
    def contrastive_loss(
        self, hyper: list[tuple[torch.Tensor, torch.Tensor]], users: torch.Tensor, positives: torch.Tensor
    ) -> torch.Tensor:
        """CL: the mean over modality pairs a < b of MMRec's all-negatives InfoNCE; 0 with one modality."""
        pairs = list(combinations(range(len(hyper)), 2))
        if not pairs:
            return hyper[0][0].new_zeros(())
        total = 0.0
        for a, b in pairs:
            (users_a, items_a), (users_b, items_b) = hyper[a], hyper[b]
            total = total + _all_node_info_nce(users_a[users], users_b, users, self.config.tau)
            total = total + _all_node_info_nce(items_a[positives], items_b, positives, self.config.tau)
        return total / len(pairs)

    def loss(self, users, positives, negatives):
        user_vectors, item_vectors, hyper = self._forward()
        user, positive, negative = user_vectors[users], item_vectors[positives], item_vectors[negatives]
        ranking = bpr_loss((user * positive).sum(1), (user * negative).sum(1))
        contrast = self.contrastive_loss(hyper, users, positives)
        penalty = embedding_norm_loss(user, positive, negative)
        return ranking + self.config.cl_weight * contrast + self.config.reg_weight * penalty


def _all_node_info_nce(anchors: torch.Tensor, candidates: torch.Tensor, rows: torch.Tensor, tau: float) -> torch.Tensor:
    """-sum_n log softmax_v(cos(anchor_n, candidate_v) / tau)[rows_n]: MMRec's ``ssl_triple_loss``.

    ``anchors`` [batch, d] are one view of the batch's nodes, ``candidates`` [n_nodes, d] the
    other view of every node; the positive of anchor n is candidate ``rows[n]``, and every
    node (the positive included) is in the denominator. Summed over the batch, as MMRec.

    The [batch, n_nodes] logits are the cost (every user is a negative), so they are touched
    as few times as possible: 1/tau is folded into the anchors, and since cosines lie in
    [-1, 1] the log-sum-exp is shifted by the bound 1/tau instead of each row's maximum (no
    max pass): exp(logit - 1/tau) is at most 1, and the positive's term is at least
    exp(-2/tau), so the sum cannot overflow or underflow in float32 while 2/tau < 80.
    Smaller tau falls back to ``torch.logsumexp``.
    """
    anchors = F.normalize(anchors, dim=1) * (1.0 / tau)
    candidates = F.normalize(candidates, dim=1)
    positive = (anchors * candidates[rows]).sum(1)
    if 2.0 / tau < 80.0:
        shift = 1.0 / tau
        shifted = torch.addmm(anchors.new_full((1,), -shift), anchors, candidates.t())  # [batch, n_nodes]
        log_total = shifted.exp_().sum(1).log() + shift
    else:
        log_total = torch.logsumexp(anchors @ candidates.t(), dim=1)
    return (log_total - positive).sum()
