"""SIGE: semantic item graphs enhanced with collaborative signals, noise and dual alignment."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar, Literal

import torch

from sigerec.config import (
    DEFAULT_COLD_ITEM_RULE,
    ColdItemSettings,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    UnitInterval,
)
from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import cooccurrence_graph, modality_knn_graph
from sigerec.graphs.item_graphs import COOCCURRENCE_MAX_USER_DEGREE, CooccurrenceWeighting, KnnMethod, mix_graphs
from sigerec.models.losses import bpr_loss, info_nce, multi_positive_info_nce, squared_norm_loss
from sigerec.models.registry import register_model
from sigerec.models.semantic_branch import BehaviourSemanticRecommender, Fuser, SemanticColdItemRule
from sigerec.search_space import SearchSpace, choices, interval


@dataclass
class SIGEConfig(ColdItemSettings):
    """Hyperparameters of :class:`SIGE`, defaults from ``sige.md``. [choice] marks a
    reconstructed design decision (the paper's text is not available; see docs/sige.md).

    Graphs (sections 1-2):
    - ``knn_k`` (10): neighbours per item in each modality's cosine kNN graph, self included.
    - ``knn_weighted`` (True) [choice]: cosine-weighted edges (MGCN); False: binary (FREEDOM).
    - ``knn_method`` ("auto"): how the kNN graphs are found: "exact", "faiss" (approximate,
      for large catalogues) or "auto" (exact up to ``item_graphs.AUTO_EXACT_MAX_ITEMS`` items).
    - ``infusion_alpha`` (0.5): S_bar^m = (1 - alpha) S_hat^m + alpha C_hat; 0 = no infusion.
    - ``cooccurrence_k`` (10): co-interacted neighbours per item in C.
    - ``cooccurrence_weighting`` ("count") [choice]: raw counts or "cosine"-normalised counts.
    - ``cooccurrence_max_user_degree`` (1000): a user with more training items counts in C with a
      random sample of this many (bounds the work of R^T R; above every benchmark user's degree).
    Encoders (section 3):
    - ``n_ui_layers`` (2), ``n_ii_layers`` (1): LightGCN and item-graph propagation depths.
    - ``modality_gate`` (True) [choice]: item input E_item * sigmoid(G f^m) (MGCN), else f^m.
    - ``fuser`` ("attention") [choice]: MGCN's behaviour-aware fuser, or "mean".
    - ``train_features`` (True): raw features trainable, as MGCN in MMRec.
    Perturbation (section 4):
    - ``perturbation`` ("modulus") [choice]: noise norm eta_n = eps ||z_n|| ("modulus"),
      eps ||z_n|| / mean_batch ||z|| ("relative"), eps ("constant", SimGCL), or "none".
    - ``noise_eps`` (0.1): eps.  ``pert_weight`` (0.01): lambda_pert.
    Alignment (section 5):
    - ``modality_alignment`` ("anchor"): the anchor-based InfoNCE with behaviour anchors;
      "pairwise": InfoNCE between every pair of modalities instead; "none".
    - ``anchor_weight`` (0.01): lambda_anchor (also weighs "pairwise").
    - ``anchor_gradient`` (True) [choice]: gradients flow into the behaviour anchors.
    - ``align_weight`` (0.01): lambda_align of InfoNCE(s, b) for items and users; 0 = off.
    - ``temperature`` (0.2): tau of every contrastive term.
    Contrastive training (sigerec's additions, docs/sige.md "Why SIGE stalled"):
    - ``cosine_gradient`` ("bounded"): "exact" differentiates each cosine exactly, so a vector
      of norm |z| gets a gradient scaled by 1/|z| (sigerec 0.1; SIGE stalls when the norms
      are small); "unit" takes the gradient as if the vectors had unit length (see
      ``losses.unit_gradient_normalize``); "bounded" does so only for vectors shorter than 1,
      i.e. scales by 1 / max(|z|, 1).
    - ``contrastive_rows`` ("unique"): the rows every InfoNCE compares; "unique" keeps the first
      of each repeated user or item, so a node is never its own negative; "batch": all rows,
      repeats included (MMRec's and sigerec 0.1's).
    - ``contrastive_warmup`` (0): epochs over which the contrastive weights rise linearly to
      their value (epoch e uses (e + 1) / warmup of them); 0 = full weight from the start.
    Loss (section 6): ``reg_weight`` (1e-4): lambda_reg of (1/2) sum |h|^2 / batch.
    Cold items (sigerec's addition, :class:`~sigerec.config.ColdItemSettings`): ``cold_item_rule``
    ("warm_neighbours"), "behaviour_neighbours" or "none", and ``cold_item_k`` (10); see :class:`SIGE`.
    """

    knn_k: PositiveInt = 10
    knn_weighted: bool = True
    knn_method: KnnMethod = "auto"
    infusion_alpha: UnitInterval = 0.5
    cooccurrence_k: PositiveInt = 10
    cooccurrence_weighting: CooccurrenceWeighting = "count"
    cooccurrence_max_user_degree: PositiveInt = COOCCURRENCE_MAX_USER_DEGREE
    n_ui_layers: NonNegativeInt = 2
    n_ii_layers: NonNegativeInt = 1
    modality_gate: bool = True
    fuser: Fuser = "attention"
    train_features: bool = True
    perturbation: Literal["modulus", "relative", "constant", "none"] = "modulus"
    noise_eps: NonNegativeFloat = 0.1
    pert_weight: NonNegativeFloat = 0.01
    modality_alignment: Literal["anchor", "pairwise", "none"] = "anchor"
    anchor_weight: NonNegativeFloat = 0.01
    anchor_gradient: bool = True
    align_weight: NonNegativeFloat = 0.01
    temperature: PositiveFloat = 0.2
    cosine_gradient: Literal["exact", "unit", "bounded"] = "bounded"
    contrastive_rows: Literal["batch", "unique"] = "unique"
    contrastive_warmup: NonNegativeInt = 0
    reg_weight: NonNegativeFloat = 1e-4
    cold_item_rule: SemanticColdItemRule = DEFAULT_COLD_ITEM_RULE


# The contrastive weights' range: 0.1 stalls SIGE, 0.001 trains but needs ~230 epochs
# (docs/sige.md, "What did not fix it" and the candidates unit-w0.1, unit-w0.001, uu-w0.003).
_SIGE_WEIGHT_SOURCE = "docs/sige.md (default 0.01; 0.1 stalls, 0.001 trains slowly: 'What did not fix it')"


@register_model
class SIGE(BehaviourSemanticRecommender):
    """SIGE, reconstructed from the abstract and ``sige.md`` (every [choice] is a config key).

    Paper: Zhang, Zhou, Zeng, Niyato and Shen, "Semantic Item Graph Enhancement for Multimodal
    Recommendation", AAAI 2026 (arXiv 2508.06154). Any number of modalities.

    1. Semantic graphs: S_hat^m = D^-1/2 topk_k(cos(x^m, x^m)) D^-1/2 (frozen, cached).
    2. Collaborative infusion: C = R^T R without its diagonal, top-k_c per row, C_hat =
       D^-1/2 C D^-1/2; S_bar^m = (1 - alpha) S_hat^m + alpha C_hat.
    3. Encoders (shared with MGCN, see ``semantic_branch``): b = LightGCN(A_hat);
       z^m_i = S_bar^m (E_item * sigmoid(G_m f^m)); z^m_u = R_hat z^m_i; s = fuser(z, b);
       h = b + s; score = h_u . h_i.
    4. Modulus-guided perturbation, for the batch users and positive items of every modality:
       z' = z + eta_n normalize(sign(z) * u'), z'' likewise with u'', u ~ U(0, 1)^d;
       L_pert = sum_m InfoNCE(z'_u, z''_u) + InfoNCE(z'_i, z''_i). eta_n is computed from a
       detached z (the noise scale is not itself trained); the noise uses torch's global RNG,
       which the trainer seeds per epoch, so resumed runs are identical.
    5. Dual alignment: anchor InfoNCE with b_n as the anchor and all z^m_n as positives,
           L_anchor = -mean_n log( sum_m e^{cos(b_n, z^m_n)/tau} / sum_m sum_n' e^{cos(b_n, z^m_n')/tau} )
       for users and positive items; then L_align = InfoNCE(s_i, b_i) + InfoNCE(s_u, b_u).
    6. L = BPR(h) + reg (1/2)|h|^2/B + l_pert L_pert + l_anchor L_anchor + l_align L_align.

    With ``infusion_alpha=0``, ``perturbation="none"``, ``modality_alignment="none"``,
    ``cosine_gradient="exact"`` and ``contrastive_rows="batch"`` (gate and attention fuser on)
    SIGE computes exactly MGCN's scores, loss and gradients (``align_weight`` is MGCN's
    ``cl_weight``); a test checks it. With one modality "pairwise" has no pair and adds 0.
    Training defaults: lr decay (0.96, 50), as sige.md section 6 (and MGCN).
    Cold items (sigerec's, not the paper's; scoring only, training, users and warm items unchanged):
    "warm_neighbours" (default): a cold item's final h_i is mean_m mean_{j in N^m(i)} h_j over its
    ``cold_item_k`` most cosine-similar warm items N^m(i) by raw features x^m (the rule serving
    uses); "behaviour_neighbours": only b_i is so replaced, before the fuser, and s_i comes from the
    item's features; "none": its untrained ID vector.
    Search space: docs/sige.md ("Search space"): the infusion, noise, contrastive weights,
    temperature and regulariser around their defaults (1 choice of 3 values and 6 ranges).
    """

    name = "sige"
    config_class = SIGEConfig
    needs_features = True
    can_score_cold_items = True
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate_scheduler": (0.96, 50.0)}
    # No published grid: docs/sige.md's measurements bound each range (see its "Search space").
    search_space: ClassVar[SearchSpace] = {
        "infusion_alpha": choices(
            0.25, 0.5, 0.75, source="docs/sige.md (row 2, default 0.5; without infusion -1.9% test R@20)"
        ),
        "noise_eps": interval(
            0.05, 0.2, log=True, source="docs/sige.md (row 4, default 0.1; without perturbation -5.8% test R@20)"
        ),
        "pert_weight": interval(0.001, 0.03, log=True, source=_SIGE_WEIGHT_SOURCE),
        "anchor_weight": interval(0.001, 0.03, log=True, source=_SIGE_WEIGHT_SOURCE),
        "align_weight": interval(0.001, 0.03, log=True, source=_SIGE_WEIGHT_SOURCE),
        "temperature": interval(
            0.1, 0.5, log=True, source="docs/sige.md (row 6, default 0.2; 0.5 mixed on two ML-100k splits)"
        ),
        "reg_weight": interval(1e-5, 1e-3, log=True, source="docs/sige.md (row 6, default 1e-4, as MGCN)"),
    }

    def __init__(self, dataset: Dataset, config: SIGEConfig, device="cpu"):
        super().__init__(dataset, config, device)
        knn_graphs = {
            m: modality_knn_graph(dataset, m, k=config.knn_k, weighted=config.knn_weighted, method=config.knn_method)
            for m in self.modalities
        }
        self.build(
            dataset,
            self._semantic_graphs(dataset, knn_graphs),
            n_ui_layers=config.n_ui_layers,
            n_ii_layers=config.n_ii_layers,
            gate=config.modality_gate,
            fuser=config.fuser,
            train_features=config.train_features,
        )
        self.contrastive_scale = 1.0  # set per epoch by the warm-up

    def pre_epoch(self, epoch: int) -> None:
        warmup = self.config.contrastive_warmup
        self.contrastive_scale = min(1.0, (epoch + 1) / warmup) if warmup > 0 else 1.0

    def _semantic_graphs(self, dataset: Dataset, knn_graphs: dict) -> dict:
        """S_bar^m for every modality (sections 1-2), from the kNN graphs S_hat^m."""
        config = self.config
        alpha = config.infusion_alpha
        collaborative = None
        if alpha > 0:
            collaborative = cooccurrence_graph(
                dataset,
                k=config.cooccurrence_k,
                weighting=config.cooccurrence_weighting,
                max_user_degree=config.cooccurrence_max_user_degree,
            )
        graphs = {}
        for modality, semantic in knn_graphs.items():
            graphs[modality] = (
                semantic if collaborative is None else mix_graphs([semantic, collaborative], [1 - alpha, alpha])
            )
        return graphs

    def loss(self, users, positives, negatives):
        return sum(self.loss_terms(users, positives, negatives).values())

    def loss_terms(self, users, positives, negatives) -> dict[str, torch.Tensor]:
        """The weighted terms of the loss (section 6), by name; ``loss`` is their sum.

        Named so that training can log each term and a diagnosis can take each one's gradient.
        """
        config = self.config
        batch = self.batch_representations(users, positives, negatives)
        user, positive, negative = batch.final.chunk(3)
        terms = {
            "bpr": bpr_loss((user * positive).sum(1), (user * negative).sum(1)),
            "reg": config.reg_weight * squared_norm_loss(user, positive, negative),
        }
        zero = torch.zeros((), device=user.device)
        scale = self.contrastive_scale
        unit = self._unit_gradient()
        for rows, ids in (("users", users), ("positives", positives)):
            keep = first_occurrences(ids) if config.contrastive_rows == "unique" else slice(None)
            semantics = {m: batch.part(z, rows)[keep] for m, z in batch.semantics.items()}
            behaviour = batch.part(batch.behaviour, rows)[keep]
            if config.perturbation != "none" and config.pert_weight > 0:
                term = scale * config.pert_weight * self._perturbation_loss(semantics)
                terms["perturbation"] = terms.get("perturbation", zero) + term
            if config.modality_alignment != "none" and config.anchor_weight > 0:
                term = scale * config.anchor_weight * self._modality_alignment_loss(semantics, behaviour)
                terms["anchor"] = terms.get("anchor", zero) + term
            if config.align_weight > 0:
                fused = batch.part(batch.fused, rows)[keep]
                term = scale * config.align_weight * info_nce(fused, behaviour, config.temperature, unit)
                terms["align"] = terms.get("align", zero) + term
        return terms

    def _perturbation_loss(self, semantics: dict[str, torch.Tensor]) -> torch.Tensor:
        """sum_m InfoNCE(z + delta', z + delta'') with modulus-guided noise (section 4)."""
        unit = self._unit_gradient()
        tau = self.config.temperature
        return sum(info_nce(self.perturb(z), self.perturb(z), tau, unit) for z in semantics.values())

    def perturb(self, z: torch.Tensor) -> torch.Tensor:
        """z + eta_n * normalize(sign(z) * u), u ~ U(0, 1)^d, eta_n per ``perturbation``."""
        noise = torch.nn.functional.normalize(torch.sign(z) * torch.rand_like(z), dim=1)
        eps = self.config.noise_eps
        if self.config.perturbation == "constant":
            return z + eps * noise
        modulus = z.detach().norm(dim=1, keepdim=True)  # [rows, 1]
        if self.config.perturbation == "relative":
            modulus = modulus / modulus.mean().clamp_min(1e-12)
        return z + eps * modulus * noise

    def _unit_gradient(self) -> bool | str:
        """How the cosines normalise (``losses.multi_positive_info_nce``'s ``unit_gradient``)."""
        return {"exact": False, "unit": True, "bounded": "bounded"}[self.config.cosine_gradient]

    def _modality_alignment_loss(self, semantics: dict[str, torch.Tensor], behaviour: torch.Tensor) -> torch.Tensor:
        tau, unit = self.config.temperature, self._unit_gradient()
        if self.config.modality_alignment == "pairwise":
            pairs = combinations(semantics.values(), 2)
            return sum((info_nce(a, b, tau, unit) for a, b in pairs), torch.zeros((), device=behaviour.device))
        anchors = behaviour if self.config.anchor_gradient else behaviour.detach()
        return multi_positive_info_nce(anchors, list(semantics.values()), tau, unit)


def first_occurrences(ids: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each distinct id in ``ids``, in ascending id order."""
    distinct, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(len(ids), device=ids.device)
    first = torch.full((len(distinct),), len(ids), dtype=torch.long, device=ids.device)
    return first.scatter_reduce_(0, inverse, positions, reduce="amin")
