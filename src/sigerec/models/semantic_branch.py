"""Behaviour + semantics models: the machinery MGCN and SIGE share, written once.

Both models have the same skeleton (Yu et al., MGCN, MM 2023; sige.md section 3):

- behaviour branch: LightGCN on the user-item graph A_hat -> b_u, b_i;
- semantic branch per modality m: projected features f^m = W_m x^m + c_m gate the item ID
  embeddings, e^m = E_item * sigmoid(G_m f^m) (MGCN's behaviour-guided purifier), are propagated
  over an item-item graph, z^m_i = S^L e^m, and users aggregate their items, z^m_u = R_hat z^m_i;
- fusion of the modalities into s (MGCN's behaviour-aware fuser), final h = b + s.

Cold items (no training interaction): their ID embedding never trained on a positive, so their
behaviour vector b_i is noise. ``cold_item_rule`` (see :class:`sigerec.config.ColdItemSettings`):
"warm_neighbours" replaces a cold item's final vector h_i by the mean over modalities of the
mean h_j of its ``cold_item_k`` most content-similar warm items (``graphs/cold_neighbours.py``,
the rule serving uses); "behaviour_neighbours" replaces only b_i by the same neighbours' mean
b_j, before the fuser, so s_i still comes from the item's own features; "none" keeps the noise.
Warm items, users and training are unchanged by any of them.

They differ in the item graph (SIGE infuses co-occurrence), and in the extra loss terms. A
subclass builds the item graphs and writes ``loss``; :meth:`batch_representations` gives it
every representation of the batch's rows.

Speed: the fuser works row by row, so a training step computes it only for the batch's users,
positives and negatives; likewise the users' semantic aggregate (rows of R_hat) and the last
LightGCN layer (on CPU). Only the item-side products (features, gates, S^m) run over all items.
Evaluation computes everything for all nodes. Both paths give the same numbers (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sigerec.data.dataset import Dataset
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.graphs.propagation import SparseOperator
from sigerec.graphs.subgraph import (
    gather_rows,
    neighbourhood,
    positions,
    propagate_over,
    renumber_columns,
    sampled_rows,
    sampling_generator,
    sparse_product,
)
from sigerec.models.base import Recommender, joint_id_embedding

Fuser = Literal["attention", "mean"]
# The cold-item rules of MGCN and SIGE: the shared ones plus the behaviour-level one (module docstring).
SemanticColdItemRule = Literal["warm_neighbours", "behaviour_neighbours", "none"]


@dataclass
class BatchRepresentations:
    """Every representation of one batch, rows in the order (users, positives, negatives).

    ``behaviour`` b [3B, d], ``semantics[m]`` z^m [3B, d], ``fused`` s [3B, d], ``final`` b + s.
    ``ego`` holds the layer-0 ID embeddings of the same rows.
    """

    behaviour: torch.Tensor
    semantics: dict[str, torch.Tensor]
    fused: torch.Tensor
    final: torch.Tensor
    ego: torch.Tensor

    def part(self, tensor: torch.Tensor, which: str) -> torch.Tensor:
        """The ``"users"``, ``"positives"`` or ``"negatives"`` rows of ``tensor``."""
        return tensor.chunk(3)[("users", "positives", "negatives").index(which)]


class SemanticFuser(nn.Module):
    """Fuses the modality representations z^m of some nodes into one vector s per node.

    ``"attention"``, MGCN's behaviour-aware fuser (eqs. 11-14), generalised from two to M
    modalities:
        a_m = softmax_m( q(z^m) ),  q = Linear-Tanh-Linear(no bias), shared by the modalities
        common = sum_m a_m z^m
        specific_m = (z^m - common) * sigmoid(P_m b)       (b: the node's behaviour vector)
        s = (sum_m specific_m + common) / (M + 1)
    With M = 2 this is MGCN's ``(sep_image + sep_text + common) / 3``.
    ``"mean"``: s = mean_m z^m (a SIGE choice, no parameters).
    """

    def __init__(self, modalities: list[str], size: int, kind: Fuser):
        super().__init__()
        self.modalities, self.kind = modalities, kind
        if kind == "attention":
            self.query = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1, bias=False))
            self.preference_gates = nn.ModuleDict(
                {m: nn.Sequential(nn.Linear(size, size), nn.Sigmoid()) for m in modalities}
            )

    def forward(self, semantics: dict[str, torch.Tensor], behaviour: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack([semantics[m] for m in self.modalities])  # [M, rows, d]
        if self.kind == "mean":
            return stacked.mean(0)
        attention = torch.softmax(self.query(stacked), dim=0)  # [M, rows, 1]
        common = (attention * stacked).sum(0)  # [rows, d]
        fused = common
        for position, modality in enumerate(self.modalities):
            fused = fused + (stacked[position] - common) * self.preference_gates[modality](behaviour)
        return fused / (len(self.modalities) + 1)


class BehaviourSemanticRecommender(Recommender):
    """Base of MGCN and SIGE: see the module docstring. Subclasses call :meth:`build` once.

    Parameters, in creation order (so that two subclasses with the same settings start from the
    same weights for a seed): the ID table [n_users + n_items, d] (users and items each
    Xavier-uniform, as MMRec's two ``nn.Embedding``s), then per modality the raw features
    (trainable when ``train_features``, as MMRec's ``from_pretrained(freeze=False)``) and the
    projection W_m, then the gates G_m, then the fuser.
    """

    supports_batch_steps = True  # see ``_batch_local_semantics``

    def build(
        self,
        dataset: Dataset,
        item_graphs: dict[str, sp.spmatrix],
        n_ui_layers: int,
        n_ii_layers: int,
        gate: bool,
        fuser: Fuser,
        train_features: bool,
    ) -> None:
        """Create the parameters and graphs; the cold-item rule comes from ``self.config``."""
        self.n_ui_layers, self.n_ii_layers, self.gated = n_ui_layers, n_ii_layers, gate
        size = self.config.embedding_size
        self.embedding = joint_id_embedding(self.n_users, self.n_items, size)
        widths = self.register_features(dataset, trainable=train_features)
        self.projections = nn.ModuleDict({m: nn.Linear(widths[m], size) for m in self.modalities})
        if gate:
            self.gates = nn.ModuleDict({m: nn.Sequential(nn.Linear(size, size), nn.Sigmoid()) for m in self.modalities})
        self.fuser = SemanticFuser(self.modalities, size, fuser)

        self.graph = interaction_graph(dataset, self.device)
        self.item_graphs = {m: SparseOperator(item_graphs[m], self.device) for m in self.modalities}
        if self.config.cold_item_rule != "none":
            self.prepare_cold_item_rule(dataset, self.config.cold_item_k)

    def item_semantics(self) -> dict[str, torch.Tensor]:
        """z^m_i for all items: the (gated) projected features propagated on the item graphs."""
        semantics = {}
        for modality in self.modalities:
            layer = self._item_inputs(modality)  # [n_items, d]
            for _ in range(self.n_ii_layers):
                layer = self.item_graphs[modality] @ layer
            semantics[modality] = layer
        return semantics

    def _item_inputs(self, modality: str, items: np.ndarray | None = None) -> torch.Tensor:
        """e^m, the item-graph input: the gated projected features of ``items`` (all if None)."""
        if items is None:
            item_embedding, features = self.embedding[self.n_users :], self.features(modality)
        else:
            item_embedding = gather_rows(self.embedding, items + self.n_users)
            features = gather_rows(self.features(modality), items)
        projected = self.projections[modality](features)
        return item_embedding * self.gates[modality](projected) if self.gated else projected

    def _batch_local_semantics(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch rows of z^m (users, then ``items``) from the items they depend on only.

        Users need z^m of their training items (rows of R_hat; with ``graph.fanout``, a sample of
        them, as the behaviour branch samples), items their own; each of those needs e^m over its
        n_ii_layers-hop item-graph neighbourhood (``subgraph.py``; item graphs are never sampled:
        their rows hold at most knn_k + cooccurrence_k entries).
        """
        fanout = self.graph.fanout
        user_rows = sampled_rows(self.graph.user_item.scipy, users.numpy(), fanout, sampling_generator(fanout))
        targets = np.union1d(user_rows.indices, items.numpy()).astype(np.int64)
        users_to_targets = renumber_columns(user_rows, targets)
        item_rows = positions(targets, items)
        semantics = {}
        for modality in self.modalities:
            sets, steps = neighbourhood(self.item_graphs[modality].scipy, targets, self.n_ii_layers)
            z_targets = propagate_over(steps, self._item_inputs(modality, sets[0]))[-1]
            semantics[modality] = torch.cat([sparse_product(users_to_targets, z_targets), z_targets[item_rows]])
        return semantics

    def batch_representations(self, users, positives, negatives) -> BatchRepresentations:
        """All representations of the batch rows (users, positives, negatives), see the class."""
        rows = torch.cat([users, self.n_users + positives, self.n_users + negatives])
        behaviour, ego = self.graph.propagate_rows(self.embedding, self.n_ui_layers, rows)
        items = torch.cat([positives, negatives])
        if self.graph.batch_local and self.embedding.device.type == "cpu":
            semantics = self._batch_local_semantics(users, items)
        else:
            semantics = {
                m: torch.cat([self.graph.user_item.rows(users, z_items), z_items[items]])
                for m, z_items in self.item_semantics().items()
            }
        fused = self.fuser(semantics, behaviour)
        return BatchRepresentations(behaviour, semantics, fused, behaviour + fused, ego)

    def embeddings(self):
        behaviour = self.graph.propagate(self.embedding, self.n_ui_layers)
        if self.config.cold_item_rule == "behaviour_neighbours":
            items = self.apply_cold_item_rule(behaviour[self.n_users :])
            behaviour = torch.cat([behaviour[: self.n_users], items])
        semantics = {m: torch.cat([self.graph.user_item @ z, z]) for m, z in self.item_semantics().items()}
        final = behaviour + self.fuser(semantics, behaviour)
        users, items = final[: self.n_users], final[self.n_users :]
        if self.config.cold_item_rule == "warm_neighbours":
            items = self.apply_cold_item_rule(items)
        return users, items
