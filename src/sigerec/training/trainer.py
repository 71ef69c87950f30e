"""The training loop: MMRec's protocol with early stopping, checkpoints and exact resume."""

from __future__ import annotations

import math
import resource
import time
from typing import Any

import numpy as np
import torch

from sigerec.config import RunConfig
from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.evaluation.candidates import ItemTemperature, users_with_relevant_items
from sigerec.evaluation.evaluator import evaluate_per_user
from sigerec.models import Recommender, get_model_class
from sigerec.models.losses import contrastive_precision
from sigerec.training.progress import SilentProgress
from sigerec.training.run_directory import BEST_CHECKPOINT, LAST_CHECKPOINT, RunDirectory
from sigerec.training.sampler import TripletSampler
from sigerec.training.step_scope import make_optimizer, resolve_step_scope


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_model(config: RunConfig, dataset: Dataset) -> Recommender:
    """The model of ``config``, initialised deterministically from the run's seed."""
    torch.manual_seed(config.training.seed)
    np.random.seed(config.training.seed)
    model_class = get_model_class(config.model)
    model = model_class(dataset, config.model_params, device=config.training.device)
    return model.to(config.training.device)


def evaluate_split(
    model: Recommender, dataset: Dataset, split: str, config: RunConfig, candidates: np.ndarray | None = None
) -> dict[str, float]:
    """Full-ranking metrics on ``split``, training items masked (and valid items at test
    time when ``mask_valid_in_test`` is set); ``candidates`` restricts the ranking to those
    items (``evaluation/candidates.py``)."""
    return evaluate_split_per_user(model, dataset, split, config, keep_users=False, candidates=candidates)[0]


def evaluate_split_per_user(
    model: Recommender,
    dataset: Dataset,
    split: str,
    config: RunConfig,
    keep_users: bool = True,
    candidates: np.ndarray | None = None,
) -> tuple[dict[str, float], dict | None]:
    """:func:`evaluate_split` and, with ``keep_users``, each evaluated user's metrics."""
    mask = dataset.train
    if split == "test" and config.training.mask_valid_in_test:
        mask = (dataset.train + dataset.valid).tocsr()
    model.eval()
    with torch.no_grad():
        score_users = model.scorer()
        return evaluate_per_user(
            score_users,
            dataset.split(split),
            mask,
            ks=config.training.topk,
            chunk_size=config.training.eval_batch_size,
            keep_users=keep_users,
            candidates=candidates,
        )


def _valid_candidates(dataset: Dataset, candidate_set: str):
    """The item ids the valid ranking is restricted to, or None for every item."""
    if candidate_set == "all":
        return None
    candidates = ItemTemperature.of(dataset).candidates(candidate_set)
    if len(candidates) == 0:
        raise SigerecError(
            f"valid_candidates={candidate_set}: the dataset has no {candidate_set} items "
            "(make a cold-items split with `sigerec data import --split cold-items`)."
        )
    return candidates


class Trainer:
    """Trains one model on one dataset into one run directory.

    Every epoch ends with a checkpoint holding the model, optimiser, scheduler, early
    stopping state and the metric history. Each epoch's randomness depends only on
    (seed, epoch), so a run resumed from its last checkpoint ends with exactly the
    metrics of an uninterrupted run.
    """

    def __init__(
        self, config: RunConfig, dataset: Dataset, run: RunDirectory | None, progress=None, batch_observer=None
    ):
        # ``run`` may be attached later (``runner.train`` builds the model before it makes the run
        # folder, so a model that cannot be built leaves nothing behind).
        self.config = config
        self.training = config.training
        self.dataset = dataset
        self.run = run
        self.progress = progress or SilentProgress()
        # Called as observer(epoch, batch_index, loss_terms) before each backward pass, with the
        # graph alive (e.g. to take each term's gradient); None in ordinary training.
        self.batch_observer = batch_observer
        # Called as on_evaluation(epoch, valid_metrics) after each evaluation; True stops training
        # there ("pruned", e.g. by a search's pruner) and the run finishes as usual.
        self.on_evaluation = None
        self.pruned = False
        self.valid_candidates = _valid_candidates(dataset, config.training.valid_candidates)
        self.model = build_model(config, dataset)
        self.step_scope = resolve_step_scope(self.training, self.model, dataset)
        self.optimizer = make_optimizer(self.model, self.training, self.step_scope)
        decay, period = self.training.learning_rate_scheduler
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda=lambda epoch: decay ** (epoch / period)
        )
        self.sampler = TripletSampler(dataset.train, self.training.train_batch_size)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.best_epoch = -1
        self.best_value = -math.inf
        self.best_valid: dict[str, float] = {}
        self.evaluations_without_improvement = 0

    # -- checkpoints -------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "best_valid": self.best_valid,
            "evaluations_without_improvement": self.evaluations_without_improvement,
            "history": self.history,
        }

    def resume(self) -> bool:
        """Continue from the last checkpoint if there is one; True when resumed."""
        state = self.run.load_checkpoint(LAST_CHECKPOINT, self.training.device)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best_epoch = state["best_epoch"]
        self.best_value = state["best_value"]
        self.best_valid = state["best_valid"]
        self.evaluations_without_improvement = state["evaluations_without_improvement"]
        self.history = state["history"]
        self.start_epoch = state["epoch"] + 1
        self.run.write_metrics(self.history)
        return True

    def _should_stop(self) -> bool:
        return self.evaluations_without_improvement > self.training.stopping_step

    # -- the loop ------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> tuple[float, dict[str, float]]:
        """One pass over the training triples; returns the mean loss and the mean of each
        named loss term (for models with ``loss_terms``, else an empty dict)."""
        self.model.train()
        # Per-epoch torch seed: dropout/noise in models is reproducible across resumes.
        torch.manual_seed(self.training.seed * 100_003 + epoch)
        self.model.pre_epoch(epoch)
        self.progress.start_epoch(epoch, len(self.sampler))
        device = self.training.device
        precision = torch.bfloat16 if self.training.mixed_precision == "bf16" else None
        with contrastive_precision(precision):
            total, batches, term_totals = self._train_batches(epoch, device)
        self.scheduler.step()
        means = {name: value / max(batches, 1) for name, value in term_totals.items()} if len(term_totals) > 1 else {}
        return total / max(batches, 1), means

    def _train_batches(self, epoch: int, device) -> tuple[float, int, dict[str, float]]:
        """The epoch's steps: its summed loss, its number of batches and each term's sum."""
        total, batches = 0.0, 0
        term_totals: dict[str, float] = {}
        for users, positives, negatives in self.sampler.epoch(self.training.seed, epoch):
            terms = self._loss_terms(users.to(device), positives.to(device), negatives.to(device))
            loss = sum(terms.values())
            value = float(loss.detach())
            if not math.isfinite(value):
                raise SigerecError(
                    f"the training loss became {value} at epoch {epoch} (batch {batches}). "
                    "Lower 'learning_rate' or raise 'reg_weight' and train again."
                )
            if self.batch_observer is not None:
                self.batch_observer(epoch, batches, terms)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += value
            batches += 1
            for name, term in terms.items():
                term_totals[name] = term_totals.get(name, 0.0) + float(term.detach())
            self.progress.batch_done(value)
        return total, batches, term_totals

    def _loss_terms(self, users, positives, negatives) -> dict[str, torch.Tensor]:
        """The model's named loss terms, or its whole loss as the one term ``loss``."""
        if hasattr(self.model, "loss_terms"):
            return self.model.loss_terms(users, positives, negatives)
        return {"loss": self.model.loss(users, positives, negatives)}

    def fit(self) -> dict[str, Any]:
        """Train until early stopping or ``epochs``, then test the best-valid checkpoint."""
        if self.run is None:
            raise RuntimeError("Trainer.fit needs a run folder: attach one (runner.train does) before fitting.")
        epoch = self.start_epoch
        while epoch < self.training.epochs and not self._should_stop():
            started = time.perf_counter()
            loss, loss_terms = self.train_epoch(epoch)
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": loss,
                **({"loss_terms": loss_terms} if loss_terms else {}),
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "train_seconds": time.perf_counter() - started,
            }
            if (epoch + 1) % self.training.eval_step == 0:
                started = time.perf_counter()
                valid = evaluate_split(self.model, self.dataset, "valid", self.config, self.valid_candidates)
                record["eval_seconds"] = time.perf_counter() - started
                record["valid"] = valid
                value = valid[self.training.valid_metric]
                if value > self.best_value:  # strictly better, as MMRec
                    self.best_value, self.best_epoch, self.best_valid = value, epoch, valid
                    self.evaluations_without_improvement = 0
                    self.run.save_checkpoint(BEST_CHECKPOINT, {"epoch": epoch, "model": self.model.state_dict()})
                else:
                    self.evaluations_without_improvement += 1
            self.history.append(record)
            self.run.save_checkpoint(LAST_CHECKPOINT, self._state(epoch))
            self.run.write_metrics(self.history)
            self.progress.epoch_done(record)
            epoch += 1
            if "valid" in record and self.on_evaluation is not None and self.on_evaluation(epoch - 1, record["valid"]):
                self.pruned = True
                break
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Evaluate test once, with the best-valid weights, and write ``summary.json``."""
        best = self.run.load_checkpoint(BEST_CHECKPOINT, self.training.device)
        if best is None:
            raise SigerecError(
                f"{self.run.path}: no epoch was evaluated, so there is no best checkpoint. "
                "Train for at least 'eval_step' epochs."
            )
        self.model.load_state_dict(best["model"])
        started = time.perf_counter()
        test, per_user = evaluate_split_per_user(self.model, self.dataset, "test", self.config)
        test_seconds = time.perf_counter() - started
        self.run.write_per_user_test(per_user)
        train_times = [r["train_seconds"] for r in self.history]
        eval_times = [r["eval_seconds"] for r in self.history if "eval_seconds" in r]
        summary = {
            "model": self.config.model,
            "dataset": self.dataset.name,
            "seed": self.training.seed,
            "modalities": sorted(self.dataset.features),
            "best_epoch": self.best_epoch,
            "epochs": len(self.history),
            "stopped_early": self._should_stop(),
            "train_seconds_per_epoch": float(np.mean(train_times)) if train_times else 0.0,
            "eval_seconds": float(np.mean(eval_times)) if eval_times else 0.0,
            "test_eval_seconds": test_seconds,
            "peak_memory_mb": peak_memory_mb(),
            "torch_threads": torch.get_num_threads(),
            "device": self.training.device,
            "step_scope": self.step_scope,
            **({"valid_candidates": self.training.valid_candidates} if self.valid_candidates is not None else {}),
            "valid": self.best_valid,
            "test": test,
            **self._cold_and_warm_results(),
            **({"pruned": True} if self.pruned else {}),
        }
        self.run.write_summary(summary)
        return summary

    def _cold_and_warm_results(self) -> dict[str, Any]:
        """For a dataset with cold items: ``valid_cold``, ``test_cold``, ``valid_warm``, ``test_warm``
        and the users each set evaluated and skipped (``candidate_users``, also for ``valid`` and
        ``test``); a split without held-out cold (or warm) items has no entry. Nothing for a dataset
        without cold items, whose summary stays what it always was."""
        items = ItemTemperature.of(self.dataset)
        if len(items.cold) == 0:
            return {}
        results: dict[str, Any] = {}
        users: dict[str, dict[str, int]] = {}
        for candidate_set in ("all", "cold", "warm"):
            candidates = items.candidates(candidate_set)
            for split in ("valid", "test"):
                evaluated, skipped = users_with_relevant_items(self.dataset.split(split), candidates)
                if evaluated == 0:
                    continue
                key = split if candidate_set == "all" else f"{split}_{candidate_set}"
                users[key] = {"evaluated": evaluated, "skipped": skipped}
                if candidate_set != "all":  # the all-item metrics are the summary's valid and test
                    results[key] = evaluate_split(self.model, self.dataset, split, self.config, candidates)
        return {**results, "candidate_users": users}
