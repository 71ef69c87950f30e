"""AlphaRec: items and users as mapped language representations, no ID embeddings at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from sigerec.config import DEFAULT_COLD_ITEM_RULE, ColdItemSettings, NonNegativeInt, PositiveFloat, PositiveInt
from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.graphs.dataset_graphs import interaction_graph
from sigerec.graphs.propagation import SparseOperator
from sigerec.models.base import Recommender
from sigerec.models.registry import register_model
from sigerec.search_space import SearchSpace, choices

AUTO_MODALITY = "auto"


@dataclass
class AlphaRecConfig(ColdItemSettings):
    """Hyperparameters of :class:`AlphaRec` (defaults of the official code's README runs).

    - ``embedding_size`` (d, 64): output size of the MLP, the size every score is computed in
      (the official ``--hidden_size`` default).
    - ``mlp_hidden_size`` (1536): width of the MLP's hidden layer. The official code sets it to
      ``multiplier * F`` so that F x width stays about 3072 x 1536 whatever the language model
      (1536 for its main 3072-d text-embedding-3-large features). With 384-d MiniLM features
      that rule gives 12288; we keep the 1536 of the reported configuration instead, which
      costs an eighth of the compute on CPU. Set ``mlp_hidden_size=12288`` to follow the rule.
    - ``n_layers`` (2): LightGCN layers on the user-item graph (README runs ``--n_layers 2``).
    - ``temperature`` (0.15): tau of the InfoNCE loss. The README runs use 0.15 (Books,
      Movies & TV) and 0.2 (Games); the argparse default of 0.1 is not used by any of them.
    - ``n_negatives`` (256): sampled negatives per positive (README ``--neg_sample 256``); the
      trainer's own negative is one of them, the other ``n_negatives - 1`` are drawn here.
    - ``language_modality`` ("auto"): which ``<modality>_feat.npy`` holds the language
      representations; "auto" takes ``text``, or the only modality when there is one.
    - ``cold_item_rule`` ("warm_neighbours", "content_branch" or "none") and ``cold_item_k``
      (10): how an item without training interactions is scored, see :class:`AlphaRec`.
    """

    mlp_hidden_size: PositiveInt = 1536
    n_layers: NonNegativeInt = 2
    temperature: PositiveFloat = 0.15
    n_negatives: PositiveInt = 256
    language_modality: str = AUTO_MODALITY
    cold_item_rule: Literal["warm_neighbours", "content_branch", "none"] = DEFAULT_COLD_ITEM_RULE


def sampled_info_nce(positive_scores: torch.Tensor, negative_scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE against sampled negatives: -mean log( e^{s+/tau} / (e^{s+/tau} + sum_j e^{s_j/tau}) ).

    ``positive_scores`` [batch] and ``negative_scores`` [batch, K] are similarities (cosines
    for AlphaRec). Computed with log-sum-exp: the same value as the official exp/sum/log
    form, finite for any temperature. (``losses.info_nce`` is the in-batch variant.)
    """
    logits = torch.cat([positive_scores.unsqueeze(1), negative_scores], dim=1) / temperature  # [batch, 1 + K]
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


@register_model
class AlphaRec(Recommender):
    """AlphaRec: a language-representation collaborative filter, with no ID embeddings.

    Paper: Sheng et al., "Language Representations Can be What Recommenders Need: Findings
    and Potentials", ICLR 2025 (arXiv 2407.05441); official code github.com/LehengTHU/AlphaRec
    (``models/General/AlphaRec.py``). The three components of the paper's method section,
    named rather than numbered (we could not check the equation numbers of the ICLR version):

    Language representations: z_i is item i's frozen text vector (``<modality>_feat.npy``),
    and a user is the mean of the items it trained on, z_u = (1/|N_u|) sum_{i in N_u} z_i
    (a user without training items gets the zero vector).

    Nonlinear projection: e^(0) = W_2 LeakyReLU(W_1 z + b_1) + b_2, one MLP shared by users
    and items (torch's Linear initialisation, LeakyReLU slope 0.01, as the official code).

    Graph convolution: LightGCN on the training graph, e^(k+1) = D^-1/2 A D^-1/2 e^(k) and
    e = mean_{k=0..K} e^(k), K = ``n_layers``.

    Contrastive objective: with s(u, i) = cos(e_u, e_i),

        L = -mean_(u, i) log( exp(s(u,i)/tau) / (exp(s(u,i)/tau) + sum_{j in S_u} exp(s(u,j)/tau)) )

    where S_u holds ``n_negatives`` items the user did not train on, drawn uniformly with
    replacement (the official ``randint_choice(n_items, exclusion=train items)``). Ranking
    uses the same cosine: :meth:`embeddings` returns unit vectors (official ``--pred_norm``).

    Where we differ from the official code, and why:

    - Pairs: our trainer iterates over training edges (each edge once per epoch, MMRec's
      protocol); the official loader cycles over users and picks a random positive of each.
    - Negatives: the trainer's negative (uniform over the items seen in training, never one
      of the user's) is the first of the ``n_negatives``; the other ``n_negatives - 1`` are
      drawn here, uniformly over all items minus the user's training items, from torch's
      global RNG on the CPU (the trainer reseeds it every epoch, so a resumed run draws the
      same negatives, and every device draws the same ones).
    - The hidden width of the MLP (see :class:`AlphaRecConfig`).
    - Training: the official code trains with Adam, lr 5e-4, batch 4096, no weight decay;
      ``AlphaRec.training_defaults`` sets the first two in place of the shared 1e-3 and 2048
      (``--set learning_rate=...`` / ``--set train_batch_size=...`` override them). Early
      stopping follows our protocol (valid Recall@20 every epoch, patience 20); the official
      runs evaluate every 5 epochs (``--verbose 5``) with ``--patience 20``.

    Nothing learned depends on the catalogue: the only parameters are the MLP's, and the text
    vectors and user means are rebuilt from the dataset (they stay out of checkpoints). So
    trained weights load into a model built on a dataset with new users and items, and
    :meth:`item_vectors_from_text` / :meth:`user_vector_from_liked_items` score items and
    users that were never trained on.

    Cold items (sigerec's addition; scoring only, training, users and warm items unchanged). The
    scored vectors are the unit vectors of :meth:`embeddings` (scores are cosines), so the rules
    act on them. "warm_neighbours" (default): a cold item's vector is the mean over modalities of
    the mean unit vector of its ``cold_item_k`` most cosine-similar warm items by the raw features
    of every modality the model was built on, not only the language one (``graphs/cold_neighbours.py``,
    the rule serving uses; not renormalised, so its score is the mean of those items' cosines); "content_branch": normalize(MLP(z_i)), its own language vector
    mapped (:meth:`item_vectors_from_text`); "none": the plain forward pass, which for an item
    without graph edges is that same normalize(MLP(z_i)) (up to float rounding).

    Search space: AlphaRec is not in MMRec; the official README runs differ only in the
    temperature (0.15 and 0.2, 2 values; every run has n_layers 2 and 256 negatives).
    """

    name = "alpharec"
    config_class = AlphaRecConfig
    needs_features = True
    can_score_cold_items = True
    training_defaults: ClassVar[dict[str, Any]] = {"learning_rate": 5e-4, "train_batch_size": 4096}
    search_space: ClassVar[SearchSpace] = {
        "temperature": choices(
            0.15,
            0.2,
            source="official AlphaRec README runs (github.com/LehengTHU/AlphaRec: --tau 0.15 Books, Movies & TV; "
            "0.2 Games); not in MMRec",
        ),
    }

    def __init__(self, dataset: Dataset, config: AlphaRecConfig, device="cpu"):
        super().__init__(dataset, config, device)
        self.modality = self.language_modality(dataset, config.language_modality)
        item_text = np.asarray(dataset.features[self.modality], dtype=np.float32)  # [n_items, F]
        self.graph = interaction_graph(dataset, device)
        train = self.graph.interactions
        degree = np.diff(train.indptr)
        # z_u = (row-normalised R) z_items: row u averages the user's training items.
        self.user_mean = SparseOperator(sp.diags(1.0 / np.maximum(degree, 1)) @ train, device)  # [n_users, n_items]
        # A constant rebuilt from the dataset: out of state_dict, so weights move across datasets.
        self.register_buffer("item_text", torch.from_numpy(item_text), persistent=False)  # [n_items, F]

        self.mlp = nn.Sequential(
            nn.Linear(item_text.shape[1], config.mlp_hidden_size),
            nn.LeakyReLU(),
            nn.Linear(config.mlp_hidden_size, config.embedding_size),
        )
        self._prepare_negative_sampling(train)
        if config.cold_item_rule == "warm_neighbours":
            self.prepare_cold_item_rule(dataset, config.cold_item_k)
        cold = np.flatnonzero(np.bincount(train.indices, minlength=self.n_items) == 0)  # no training interaction
        self.register_buffer("cold_items", torch.as_tensor(cold, dtype=torch.long), persistent=False)

    @staticmethod
    def language_modality(dataset: Dataset, requested: str) -> str:
        """The modality holding the language representations: ``requested``, else ``text``,
        else the dataset's only modality; an error that names the choices otherwise."""
        modalities = Recommender.require_features(dataset, "AlphaRec")
        if requested != AUTO_MODALITY:
            if requested not in modalities:
                raise SigerecError(
                    f"AlphaRec: language_modality '{requested}' is not a feature of dataset "
                    f"'{dataset.name}'; it has: {', '.join(modalities)}."
                )
            return requested
        if "text" in modalities:
            return "text"
        if len(modalities) == 1:
            return modalities[0]
        raise SigerecError(
            f"AlphaRec needs one modality of language representations, and dataset '{dataset.name}' "
            f"has no 'text' but several: {', '.join(modalities)}. Choose one with "
            f"--set language_modality=<name> (e.g. language_modality={modalities[0]})."
        )

    # -- negatives ---------------------------------------------------------------------
    def _prepare_negative_sampling(self, train: sp.csr_matrix) -> None:
        """Index for drawing the r-th item a user has not trained on, without rejection.

        With the user's training items s_0 < s_1 < ... , the r-th free item is r plus the
        number of k with s_k - k <= r. The keys u * n_items + (s_k - k) are sorted over all
        users, so one ``searchsorted`` counts them for a whole batch.
        """
        row_start = train.indptr[:-1].astype(np.int64)
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(train.indptr))
        rank_in_row = np.arange(train.nnz, dtype=np.int64) - row_start[users]
        keys = users * self.n_items + (train.indices.astype(np.int64) - rank_in_row)
        free_items = self.n_items - np.diff(train.indptr).astype(np.int64)
        for name, values in (("free_rank_keys", keys), ("row_start", row_start), ("free_item_count", free_items)):
            self.register_buffer(name, torch.from_numpy(values), persistent=False)

    def sample_negatives(self, users: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` items per user [len(users), count], uniform over the items the user did not
        train on, with replacement; drawn from torch's global CPU RNG."""
        uniform = torch.rand(len(users), count, dtype=torch.float64).to(self.free_rank_keys.device)
        users = users.to(self.free_rank_keys.device)
        free = self.free_item_count[users].unsqueeze(1)  # [batch, 1]
        # The clamps only guard float rounding at u -> 1 (and users with no free item).
        rank = torch.minimum((uniform * free).long(), free - 1).clamp_min(0)  # [batch, count]
        keys = users.unsqueeze(1) * self.n_items + rank
        taken_below = torch.searchsorted(self.free_rank_keys, keys, right=True) - self.row_start[users].unsqueeze(1)
        return rank + taken_below

    # -- forward -----------------------------------------------------------------------
    def user_text(self) -> torch.Tensor:
        """z_u for every user: the mean of its training items' text vectors [n_users, F]."""
        return self.user_mean @ self.item_text

    def _mapped(self) -> torch.Tensor:
        """e^(0) = MLP(z) for users then items [n_users + n_items, d].

        The first layer is affine and z_u is a mean (weights summing to 1, or all 0 for a user
        without training items, whose z_u = 0), so W_1 z_u + b_1 = mean_i (W_1 z_i) + b_1: the
        wide first layer runs on the items only and users average its output, the same values
        at a fraction of the cost (users usually outnumber items several times).
        """
        first, activation, second = self.mlp
        item_hidden = F.linear(self.item_text, first.weight)  # [n_items, hidden]
        user_hidden = self.user_mean @ item_hidden  # [n_users, hidden]
        users, items = (second(activation(hidden + first.bias)) for hidden in (user_hidden, item_hidden))
        return torch.cat([users, items])

    def _propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """LightGCN output over the MLP-mapped language vectors (not normalised)."""
        final = self.graph.propagate(self._mapped(), self.config.n_layers)
        return final[: self.n_users], final[self.n_users :]

    def _unit_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length user and item vectors, so the dot product is the cosine (official
        ``predict`` with ``pred_norm``)."""
        users, items = self._propagate()
        return F.normalize(users, dim=1), F.normalize(items, dim=1)

    def embeddings(self):
        """The unit vectors of :meth:`_unit_vectors`, cold items' rows by ``cold_item_rule``."""
        users, items = self._unit_vectors()
        if self.config.cold_item_rule == "content_branch" and len(self.cold_items):
            items = items.index_copy(0, self.cold_items, self.item_vectors_from_text(self.item_text[self.cold_items]))
        return users, self.apply_cold_item_rule(items)

    def loss(self, users, positives, negatives):
        user_vectors, item_vectors = self._unit_vectors()
        extra = self.sample_negatives(users, self.config.n_negatives - 1).to(negatives.device)
        all_negatives = torch.cat([negatives.unsqueeze(1), extra], dim=1)  # [batch, K]
        user = user_vectors[users]  # [batch, d]
        positive_scores = (user * item_vectors[positives]).sum(1)  # [batch]
        negative_scores = self._scores(user, item_vectors, all_negatives)  # [batch, K]
        return sampled_info_nce(positive_scores, negative_scores, self.config.temperature)

    def _scores(self, user: torch.Tensor, item_vectors: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """user . item for ``items`` [batch, K]: through the full [batch, n_items] score matrix
        when the catalogue is smaller than K x d (less memory and faster than gathering
        [batch, K, d] vectors), else by gathering."""
        if self.n_items <= items.shape[1] * item_vectors.shape[1]:
            return (user @ item_vectors.t()).gather(1, items)
        return torch.einsum("bd,bkd->bk", user, item_vectors[items])

    # -- users and items that were never trained on ------------------------------------
    def _as_text_vectors(self, text_vectors, label: str) -> torch.Tensor:
        if not isinstance(text_vectors, torch.Tensor):
            text_vectors = torch.from_numpy(np.asarray(text_vectors, dtype=np.float32))
        vectors = text_vectors.to(device=self.item_text.device, dtype=torch.float32)
        if vectors.ndim == 1:
            vectors = vectors.unsqueeze(0)
        if vectors.ndim != 2 or vectors.shape[1] != self.item_text.shape[1]:
            raise SigerecError(
                f"AlphaRec.{label}: expected text vectors of size {self.item_text.shape[1]} "
                f"(the '{self.modality}' features the model was built on), got shape {tuple(vectors.shape)}."
            )
        return vectors

    @torch.no_grad()
    def item_vectors_from_text(self, text_vectors) -> torch.Tensor:
        """Unit vectors [m, d] for items known only by their text vectors [m, F] (or [F]).

        An item without interactions has no graph neighbours, so its LightGCN output is its
        layer-0 vector scaled by 1/(K+1); normalised, that is normalize(MLP(z)). Score them
        against users with ``user_vectors @ item_vectors.T`` (cosines, as every score here).
        """
        return F.normalize(self.mlp(self._as_text_vectors(text_vectors, "item_vectors_from_text")), dim=1)

    @torch.no_grad()
    def user_vector_from_liked_items(self, liked_text_vectors) -> torch.Tensor:
        """The unit vector [d] of a new user who liked items with text vectors [m, F].

        As for training users, z_u is the mean of the liked items' text vectors; without
        graph edges the user's vector is normalize(MLP(z_u)). For liked catalogue items pass
        ``model.item_text[item_ids]``. Score with ``model.embeddings()[1] @ vector``.
        """
        vectors = self._as_text_vectors(liked_text_vectors, "user_vector_from_liked_items")
        if vectors.shape[0] == 0:
            raise SigerecError("user_vector_from_liked_items needs at least one liked item.")
        return F.normalize(self.mlp(vectors.mean(0, keepdim=True)), dim=1)[0]
