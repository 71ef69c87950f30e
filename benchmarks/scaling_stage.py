"""One stage of the scaling benchmark, in its own process (so its peak memory is its own).

    python benchmarks/scaling_stage.py STAGE DATA_DIR [--steps N] [--eval-users N]

Prints one JSON line: ``seconds`` (the stage's work), ``peak_mb`` (this process's peak
resident memory) and stage-specific figures. It runs with whichever ``sigerec`` is on the
path, so ``benchmarks/scaling.py --code REV`` can time an older ``src/`` with it: features
added later (kNN methods, batch-local steps) are used only when present.

Stages: import, knn-<modality>, cooccurrence, epoch-<model>, evaluate, export.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(data: Path):
    from sigerec.data.atomic import load_dataset

    return load_dataset(data)


def stage_import(data: Path, args) -> dict:
    from sigerec.data.importer import ImportOptions, import_interactions

    out = data.parent / f".{data.name}-import"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = import_interactions(data / "interactions.parquet", out, ImportOptions("user_id", "item_id"))
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "rows": summary.rows_read}


def stage_knn(data: Path, modality: str, args) -> dict:
    from sigerec.graphs import dataset_graphs

    dataset = load(data)
    started = time.perf_counter()
    graph = dataset_graphs.modality_knn_graph(dataset, modality, k=10, weighted=True)
    return {"seconds": time.perf_counter() - started, "edges": int(graph.nnz)}


def stage_cooccurrence(data: Path, args) -> dict:
    from sigerec.graphs import dataset_graphs

    dataset = load(data)
    started = time.perf_counter()
    graph = dataset_graphs.cooccurrence_graph(dataset, k=10)
    return {"seconds": time.perf_counter() - started, "edges": int(graph.nnz)}


def _optimizer(model, training, dataset):
    """The optimiser the trainer would use (batch-local steps where this sigerec has them)."""
    try:
        from sigerec.training.step_scope import make_optimizer, resolve_step_scope
    except ImportError:  # sigerec before batch-local steps: the trainer's Adam
        return torch.optim.Adam(model.parameters(), lr=training.learning_rate, fused=True), "full"
    scope = resolve_step_scope(training, model, dataset)
    return make_optimizer(model, training, scope), scope


def stage_epoch(data: Path, model_name: str, args) -> dict:
    """Build the model, then time ``--steps`` training steps; the epoch time is projected from them."""
    from sigerec.config import TrainingConfig
    from sigerec.models import get_model_class
    from sigerec.training.sampler import TripletSampler

    dataset = load(data)
    settings = {"step_scope": args.step_scope} if args.step_scope else {}
    settings |= {"neighbour_fanout": args.fanout} if args.fanout else {}
    training = TrainingConfig(**settings)
    started = time.perf_counter()
    torch.manual_seed(0)
    model_class = get_model_class(model_name)
    model = model_class(dataset, model_class.config_class())
    optimizer, scope = _optimizer(model, training, dataset)
    sampler = TripletSampler(dataset.train, training.train_batch_size)
    batches = sampler.epoch(0, 0)
    setup = time.perf_counter() - started
    step_times = []
    for index, (users, positives, negatives) in enumerate(batches):
        if index >= args.steps + 2:
            break
        step_started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.loss(users, positives, negatives).backward()
        optimizer.step()
        if index >= 2:  # the first steps allocate buffers
            step_times.append(time.perf_counter() - step_started)
    per_step = float(np.median(step_times))
    steps_per_epoch = math.ceil(dataset.train.nnz / training.train_batch_size)
    return {
        "seconds": per_step * steps_per_epoch,
        "projected_from_steps": len(step_times),
        "seconds_per_step": per_step,
        "steps_per_epoch": steps_per_epoch,
        "setup_seconds": setup,
        "step_scope": scope,
    }


def stage_evaluate(data: Path, args) -> dict:
    """Full-ranking test evaluation of LightGCN: all vectors once, then a sample of users, projected."""
    from sigerec.evaluation.evaluator import evaluate_per_user
    from sigerec.models import get_model_class

    dataset = load(data)
    torch.manual_seed(0)
    model_class = get_model_class("lightgcn")
    model = model_class(dataset, model_class.config_class())
    test = dataset.test.tocsr()
    users = np.flatnonzero(np.diff(test.indptr))
    sample = np.random.default_rng(0).choice(users, min(args.eval_users, len(users)), replace=False)
    keep = np.zeros(test.shape[0], dtype=bool)
    keep[sample] = True
    sampled_test = test.multiply(keep[:, None]).tocsr()
    started = time.perf_counter()
    with torch.no_grad():
        score_users = model.scorer()
    vectors_seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluate_per_user(score_users, sampled_test, dataset.train, keep_users=False)
    ranking_seconds = (time.perf_counter() - started) * len(users) / len(sample)
    return {
        "seconds": vectors_seconds + ranking_seconds,
        "vectors_seconds": vectors_seconds,
        "ranking_projected_from_users": len(sample),
        "evaluated_users": len(users),
    }


def stage_export(data: Path, args) -> dict:
    """LightGCN's vectors of all users and items, written as a model folder (as `sigerec export`)."""
    from sigerec.models import get_model_class
    from sigerec.serving.model_folder import write_model_folder

    dataset = load(data)
    torch.manual_seed(0)
    model_class = get_model_class("lightgcn")
    model = model_class(dataset, model_class.config_class())
    out = data.parent / f"{data.name}-model"
    started = time.perf_counter()
    with torch.no_grad():
        user_vectors, item_vectors = (v.numpy() for v in model.embeddings())
    ids = np.arange(max(dataset.n_users, dataset.n_items)).astype(str)
    description = {"model": "lightgcn", "dataset": dataset.name, "note": "untrained (scaling benchmark)"}
    write_model_folder(
        out, user_vectors, item_vectors, ids[: dataset.n_users], ids[: dataset.n_items], dataset.train, description
    )
    return {"seconds": time.perf_counter() - started, "model_folder": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage")
    parser.add_argument("data", type=Path)
    parser.add_argument("--steps", type=int, default=10, help="Training steps timed per epoch stage.")
    parser.add_argument("--step-scope", help="auto, full or batch (default: the setting's default).")
    parser.add_argument("--fanout", type=int, default=0, help="neighbour_fanout (batch-local steps).")
    parser.add_argument("--eval-users", type=int, default=20000, help="Users ranked by the evaluate stage.")
    args = parser.parse_args()
    kind, _, detail = args.stage.partition("-")
    runners = {
        "import": lambda: stage_import(args.data, args),
        "knn": lambda: stage_knn(args.data, detail, args),
        "cooccurrence": lambda: stage_cooccurrence(args.data, args),
        "epoch": lambda: stage_epoch(args.data, detail, args),
        "evaluate": lambda: stage_evaluate(args.data, args),
        "export": lambda: stage_export(args.data, args),
    }
    if kind not in runners:
        sys.exit(f"unknown stage {args.stage!r}; one of {', '.join(runners)}")
    result = runners[kind]()
    print(json.dumps({**result, "peak_mb": peak_mb()}))


if __name__ == "__main__":
    main()
