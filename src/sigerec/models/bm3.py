"""BM3: self-supervised multimodal recommendation with dropout-bootstrapped views, no negatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from sigerec.config import ColdItemSettings, DropoutRate, NonNegativeFloat, NonNegativeInt
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.models.base import Recommender, id_embedding
from sigerec.models.losses import embedding_norm_loss
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices


@dataclass
class BM3Config(ColdItemSettings):
    """Hyperparameters of :class:`BM3` (MMRec's ``BM3.yaml`` key names).

    MMRec's yaml gives grids for three keys (n_layers {1, 2}, dropout {0.3, 0.5},
    reg_weight {0.1, 0.01}); the defaults here are the best Baby values published with the
    paper's code (enoche/BM3 README: 1 layer, dropout 0.5, reg_weight 0.1). The first values
    of the grids differ only in ``dropout`` (0.3).

    - ``embedding_size`` (d, default 64): size of the ID embeddings, of the modality
      projections and of the predictor (MMRec's ``feat_embed_dim`` is 64 too and must equal
      it, since projected features are aligned with item embeddings; not a separate key).
    - ``n_layers`` (1): LightGCN layers on the user-item graph (Baby's best; grid {1, 2}).
    - ``dropout`` (0.5): share of the entries of the target views zeroed (Baby's best; grid
      {0.3, 0.5}). 0 makes the target an exact detached copy of the online view.
    - ``reg_weight`` (0.1): weight of the embedding-norm penalty on the encoder outputs
      (Baby's best; grid {0.1, 0.01}).
    - ``cl_weight`` (2.0): weight of the modality alignment terms (MMRec's single value).
    - ``train_features`` (True): the raw features are trainable parameters, as MMRec's
      ``nn.Embedding.from_pretrained(..., freeze=False)``; False keeps them constant (and out
      of checkpoints).
    - ``cold_item_rule`` ("warm_neighbours" or "none") and ``cold_item_k`` (10): see
      :class:`~sigerec.config.ColdItemSettings` and :class:`BM3`.
    """

    n_layers: NonNegativeInt = 1
    dropout: DropoutRate = 0.5
    reg_weight: NonNegativeFloat = 0.1
    cl_weight: NonNegativeFloat = 2.0
    train_features: bool = True


def cosine_alignment_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL-style alignment: 1 - mean_n cos(online_n, sg(target_n)), gradient to ``online`` only.

    The target is detached (stop-gradient), so no negatives are needed (Grill et al. 2020).
    """
    return 1.0 - functional.cosine_similarity(online, target.detach(), dim=-1).mean()


@register_model
class BM3(Recommender):
    """BM3: LightGCN encoder trained by aligning a predictor's output with dropout-perturbed targets.

    Paper: Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation",
    WWW 2023 (arXiv 2207.05969). Implemented as MMRec's ``BM3`` does; the equations are named
    by the paper's sections.

    Multimodal latent space convertor (Section 3.1). For each modality m with raw item
    features x^m, a linear projection h^m_i = W^m x^m_i + b^m into R^d. ID embeddings
    E = [E_user; E_item] go through LightGCN on A_hat = D^-1/2 A D^-1/2 (no self-loops):

        [h_u; h'_i] = mean_{l=0..L} A_hat^l E,     h_i = h'_i + e_i     L = ``n_layers``

    (the residual + e_i on items is MMRec's ``forward``).

    Contrastive view generator (Section 3.2). The online views are the encoder outputs; the
    target views are detached copies with dropout, and a shared linear predictor f_p maps
    online views into the target space:

        h_dot = sg(dropout_p(h)),      h_tilde = f_p(h) = W_p h + b_p,      p = ``dropout``

    for h in {h_u, h_i, h^m_i}.

    Multimodal contrastive loss (Section 3.3), with C(a, b) = 1 - cos(a, b) averaged over
    the batch of observed (user, item) pairs:

        L_rec   = C(h_tilde_u, h_dot_i) + C(h_tilde_i, h_dot_u)          graph reconstruction
        L_align = sum_m C(h_tilde^m_i, h_dot_i)                          inter-modality
        L_mask  = sum_m C(h_tilde^m_i, h_dot^m_i)                        intra-modality
        L = L_rec + cl_weight * (L_align + L_mask)
              + reg_weight * (||H_user|| + ||H_item||) / n_items

    The last term is MMRec's ``EmbLoss`` on the whole online user and item tables (not only
    the batch), hence the division by the number of items. ``negatives`` are ignored: BM3
    needs no negative sampling (MMRec's ``use_neg_sampling: False``).

    Prediction (Section 3.4, MMRec's ``full_sort_predict``): score(u, i) = f_p(h_u) . f_p(h_i);
    the predictor is applied to both sides, no dropout. ``embeddings()`` returns these vectors.

    Where we differ from MMRec, and why:

    - Any number of modalities (MMRec: image and/or text), each with its own projection and
      both alignment terms, summed; the predictor is shared by all, as in the paper.
    - Predictor, projections and dropout act on the batch's rows only (MMRec projects every
      item's features and drops out whole tables, then gathers the batch). The values are
      the same; it avoids projecting all items' raw features (4096-d for images) per batch.
      Consequently the random draws differ: an item or user that appears twice in a batch
      gets two independent dropout masks instead of one. Dropout uses torch's global RNG,
      so the trainer's per-epoch seed makes resumed runs bit-identical.

    Initialisation as MMRec: ID tables Xavier-uniform; predictor and projection weights
    Xavier-normal, their biases torch's ``nn.Linear`` default. Hyperparameters and defaults:
    see :class:`BM3Config`.
    Cold items (sigerec's addition; scoring only, training, users and warm items unchanged):
    ``cold_item_rule="warm_neighbours"`` (default) gives an item without training interactions the
    mean over modalities of the mean final item vector of its ``cold_item_k`` most cosine-similar
    warm items by raw features (``graphs/cold_neighbours.py``, the rule serving uses); "none" keeps
    its untrained vector. BM3 scores only ID-based views (its projected features are
    aligned in training, never scored), so it has no content rule of its own.
    Search space: MMRec's BM3 grid (n_layers x dropout x reg_weight, 8 combinations).
    """

    name = "bm3"
    config_class = BM3Config
    needs_features = True
    can_score_cold_items = True
    search_space: ClassVar[SearchSpace] = {
        "n_layers": choices(1, 2, source="MMRec src/configs/model/BM3.yaml (hyper_parameters)"),
        "dropout": choices(0.3, 0.5, source="MMRec src/configs/model/BM3.yaml (hyper_parameters)"),
        "reg_weight": choices(0.1, 0.01, source="MMRec src/configs/model/BM3.yaml (hyper_parameters)"),
    }

    def __init__(self, dataset: Dataset, config: BM3Config, device="cpu"):
        super().__init__(dataset, config, device)
        size = config.embedding_size
        self.user_embedding = id_embedding(self.n_users, size)  # [n_users, d]
        self.item_embedding = id_embedding(self.n_items, size)  # [n_items, d]
        self.predictor = nn.Linear(size, size)
        nn.init.xavier_normal_(self.predictor.weight)
        widths = self.register_features(dataset, trainable=config.train_features)
        self.feature_projections = nn.ModuleDict()
        for modality in self.modalities:
            projection = nn.Linear(widths[modality], size)
            nn.init.xavier_normal_(projection.weight)
            self.feature_projections[modality] = projection
        self.graph = interaction_graph(dataset, device)
        if config.cold_item_rule == "warm_neighbours":
            self.prepare_cold_item_rule(dataset, config.cold_item_k)

    def encode(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Online views h_u [n_users, d] and h_i [n_items, d] (LightGCN plus item residual)."""
        ego = torch.cat([self.user_embedding, self.item_embedding])  # [n_users + n_items, d]
        final = self.graph.propagate(ego, self.config.n_layers)
        return final[: self.n_users], final[self.n_users :] + self.item_embedding

    def _target(self, online: torch.Tensor) -> torch.Tensor:
        """h_dot = sg(dropout_p(h)): the perturbed target view, always with dropout in training."""
        return functional.dropout(online.detach(), self.config.dropout, training=True)

    def embeddings(self):
        user_vectors, item_vectors = self.encode()
        return self.predictor(user_vectors), self.apply_cold_item_rule(self.predictor(item_vectors))

    def loss(self, users, positives, negatives):
        del negatives  # BM3 learns without negative samples
        user_vectors, item_vectors = self.encode()
        user, item = user_vectors[users], item_vectors[positives]  # [batch, d]
        user_target, item_target = self._target(user), self._target(item)
        reconstruction = cosine_alignment_loss(self.predictor(user), item_target) + cosine_alignment_loss(
            self.predictor(item), user_target
        )
        alignment = 0.0
        for modality in self.modalities:
            projected = self.feature_projections[modality](self.features(modality)[positives])  # [batch, d]
            online = self.predictor(projected)
            inter_modality = cosine_alignment_loss(online, item_target)
            intra_modality = cosine_alignment_loss(online, self._target(projected))
            alignment = alignment + inter_modality + intra_modality
        penalty = embedding_norm_loss(user_vectors, item_vectors)
        return reconstruction + self.config.cl_weight * alignment + self.config.reg_weight * penalty
