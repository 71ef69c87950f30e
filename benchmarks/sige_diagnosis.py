"""Why SIGE does or does not train at some settings: the size of each loss term's gradient.

Example: python benchmarks/sige_diagnosis.py --datasets ml100k,baby-official --epochs 6
         python benchmarks/sige_diagnosis.py --datasets ml100k --set contrastive_rows=batch

Trains SIGE exactly as `sigerec train` does (same trainer, sampler, seed 999) for a few epochs
and, on every --every-th batch, takes the gradient of each weighted loss term separately (BPR,
regularisation, perturbation, anchor, alignment) with respect to each parameter group: the
user and item ID embeddings, the raw features, the projections W_m, the gates G_m and the
fuser. Per epoch it records the mean of each gradient's norm, its ratio to BPR's and its cosine
with BPR's (a term that points against BPR moves the ID embeddings away from the ranking
objective), the mean norms of the representations b, z^m and s over all users and items, the
share of distinct users and items in a batch, and valid Recall@20.

Results go to benchmarks/results/sige_diagnosis.json (merged by dataset and settings) and to
the "sige-diagnosis" section of docs/sige.md. The datasets come from prepare_data.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from common import (
    REPO,
    RESULTS,
    add_output_options,
    machine_description,
    markdown_table,
    provenance_list,
    write_section,
)
from multimodal import parse_settings, settings_label

from sigerec.training.run_directory import RunDirectory
from sigerec.training.runner import load_run_dataset, resolve_config
from sigerec.training.trainer import Trainer, evaluate_split

SEED = 999
SECTION = "sige-diagnosis"
TERMS = ("bpr", "reg", "perturbation", "anchor", "align")


def parameter_groups(model) -> dict[str, list[tuple[torch.nn.Parameter, slice | None]]]:
    """Named groups of (parameter, row slice) whose gradients are measured together."""
    groups: dict[str, list] = defaultdict(list)
    for name, parameter in model.named_parameters():
        if name == "embedding":
            groups["user ID"].append((parameter, slice(0, model.n_users)))
            groups["item ID"].append((parameter, slice(model.n_users, None)))
        elif name.endswith("_features"):
            groups["features"].append((parameter, None))
        else:
            groups[name.split(".")[0]].append((parameter, None))  # projections, gates, fuser
    return dict(groups)


class GradientProbe:
    """A batch observer for :class:`Trainer`: each term's gradient per parameter group."""

    def __init__(self, model, every: int):
        self.model, self.every = model, every
        self.groups = parameter_groups(model)
        self.parameters = list(dict.fromkeys(p for members in self.groups.values() for p, _ in members))
        self.sums: dict[tuple, float] = defaultdict(float)
        self.counts: dict[int, int] = defaultdict(int)

    def __call__(self, epoch: int, batch: int, terms: dict[str, torch.Tensor]) -> None:
        if batch % self.every:
            return
        gradients = {}
        for name, term in terms.items():
            grads = torch.autograd.grad(term, self.parameters, retain_graph=True, allow_unused=True)
            by_parameter = dict(zip(self.parameters, grads))
            gradients[name] = {group: self._flatten(by_parameter, members) for group, members in self.groups.items()}
        for name, by_group in gradients.items():
            for group, vector in by_group.items():
                self.sums[(epoch, name, group, "norm")] += float(vector.norm())
                if name != "bpr" and "bpr" in gradients:
                    reference = gradients["bpr"][group]
                    denominator = float(vector.norm() * reference.norm())
                    if denominator > 0:
                        self.sums[(epoch, name, group, "cos_bpr")] += float(vector @ reference) / denominator
                        self.sums[(epoch, name, group, "ratio_bpr")] += float(vector.norm() / reference.norm())
        self.counts[epoch] += 1

    @staticmethod
    def _flatten(by_parameter, members) -> torch.Tensor:
        parts = []
        for parameter, rows in members:
            grad = by_parameter[parameter]
            grad = torch.zeros_like(parameter) if grad is None else grad
            parts.append((grad if rows is None else grad[rows]).reshape(-1))
        return torch.cat(parts)

    def epoch_means(self, epoch: int) -> dict[str, dict[str, dict[str, float]]]:
        """{term: {group: {"norm"|"cos_bpr"|"ratio_bpr": mean over the probed batches}}}."""
        result: dict = defaultdict(lambda: defaultdict(dict))
        for (e, term, group, kind), total in self.sums.items():
            if e == epoch:
                result[term][group][kind] = total / self.counts[epoch]
        return {term: dict(groups) for term, groups in result.items()}


@torch.no_grad()
def representation_norms(model) -> dict[str, float]:
    """Mean L2 norms of b, each z^m and s over all users and all items (full forward pass)."""

    model.eval()
    behaviour = model.graph.propagate(model.embedding, model.n_ui_layers)
    semantics = {m: torch.cat([model.graph.user_item @ z, z]) for m, z in model.item_semantics().items()}
    fused = model.fuser(semantics, behaviour)
    model.train()
    norms = {}
    for side, rows in (("users", slice(0, model.n_users)), ("items", slice(model.n_users, None))):
        norms[f"b {side}"] = float(behaviour[rows].norm(dim=1).mean())
        norms[f"s {side}"] = float(fused[rows].norm(dim=1).mean())
        for modality, z in semantics.items():
            norms[f"z[{modality}] {side}"] = float(z[rows].norm(dim=1).mean())
    norms["ID items"] = float(model.embedding[model.n_users :].norm(dim=1).mean())
    return norms


def distinct_share(trainer: Trainer) -> dict[str, float]:
    """Mean share of distinct users and of distinct positive items among a batch's rows."""
    users, items = [], []
    for batch_users, positives, _ in trainer.sampler.epoch(trainer.training.seed, 0):
        users.append(len(torch.unique(batch_users)) / len(batch_users))
        items.append(len(torch.unique(positives)) / len(positives))
    return {"users": float(np.mean(users)), "positives": float(np.mean(items))}


def diagnose(folder: Path, settings: dict, epochs: int, every: int, out: Path) -> dict:
    config = resolve_config("sige", folder, overrides={**settings, "epochs": epochs}, flags={"seed": SEED})
    dataset = load_run_dataset(config)
    run = RunDirectory.create(out, "sige", dataset.name, config.to_dict())
    trainer = Trainer(config, dataset, run)
    probe = GradientProbe(trainer.model, every)
    trainer.batch_observer = probe
    started = time.time()
    rows = []
    share = distinct_share(trainer)
    for epoch in range(epochs):
        loss, loss_terms = trainer.train_epoch(epoch)
        valid = evaluate_split(trainer.model, dataset, "valid", config)
        rows.append(
            {
                "epoch": epoch,
                "loss": loss,
                "loss_terms": loss_terms,
                "valid_recall@20": valid["recall@20"],
                "gradients": probe.epoch_means(epoch),
                "norms": representation_norms(trainer.model),
            }
        )
        print(f"{folder.name} epoch {epoch}: loss {loss:.4f} valid recall@20 {valid['recall@20']:.4f}", flush=True)
    return {
        "dataset": folder.name,
        "settings": settings,
        "epochs": rows,
        "batch_size": config.training.train_batch_size,
        "n_users": dataset.n_users,
        "n_items": dataset.n_items,
        "train_interactions": int(dataset.train.nnz),
        "distinct_share": share,
        "probed_every": every,
        "seconds": round(time.time() - started, 1),
        "machine": machine_description(),
        "command": " ".join(["python", "benchmarks/sige_diagnosis.py", *sys.argv[1:]]),
    }


def key(result: dict) -> tuple:
    return result["dataset"], json.dumps(result["settings"], sort_keys=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2g}" if abs(value) < 0.01 or abs(value) >= 1000 else f"{value:.3f}"


def result_tables(result: dict) -> str:
    """Per epoch: valid Recall@20, each term's value, its gradient on the item ID embeddings
    (norm, ratio to BPR's, cosine with BPR's), and the representation norms."""
    label = f"`{settings_label(result['settings'])}`" if result["settings"] else "defaults"
    share = result["distinct_share"]
    header = (
        f"**{result['dataset']}** ({result['n_users']:,} users, {result['n_items']:,} items, "
        f"{result['train_interactions']:,} train interactions; SIGE at {label}). A batch of "
        f"{result['batch_size']:,} triples holds {share['users']:.0%} distinct users and "
        f"{share['positives']:.0%} distinct positive items."
    )
    present = [t for t in TERMS if any(t in row["loss_terms"] for row in result["epochs"])]
    rows = []
    for row in result["epochs"]:
        item = {t: row["gradients"].get(t, {}).get("item ID", {}) for t in present}
        cells = [row["epoch"], f"{row['valid_recall@20']:.4f}"]
        cells += [_fmt(row["loss_terms"].get(t)) for t in present]
        cells += [_fmt(item[t].get("norm")) for t in present]
        cells += [f"{_fmt(item[t].get('ratio_bpr'))} / {_fmt(item[t].get('cos_bpr'))}" for t in present if t != "bpr"]
        rows.append(cells)
    columns = ["epoch", "valid R@20"] + [f"{t} loss" for t in present]
    columns += [f"‖∇{t}‖ item ID" for t in present]
    columns += [f"{t}: ratio / cos to BPR" for t in present if t != "bpr"]
    gradient_table = markdown_table(columns, rows)

    norm_names = list(result["epochs"][0]["norms"])
    norm_rows = [[row["epoch"]] + [_fmt(row["norms"][n]) for n in norm_names] for row in result["epochs"]]
    norm_table = markdown_table(["epoch"] + [f"‖{n}‖" for n in norm_names], norm_rows)

    groups = [g for g in result["epochs"][0]["gradients"].get("bpr", {}) if g != "item ID"]
    first = result["epochs"][0]["gradients"]
    group_rows = [[t] + [_fmt(first.get(t, {}).get(g, {}).get("norm")) for g in groups] for t in present]
    group_table = markdown_table(["term (epoch 0)"] + [f"‖∇‖ {g}" for g in groups], group_rows)
    return f"{header}\n\n{gradient_table}\n\nOther parameter groups, epoch 0:\n\n{group_table}\n\n{norm_table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=REPO / ".bench_data", help="From prepare_data.py.")
    parser.add_argument("--datasets", default="ml100k,baby-official")
    parser.add_argument("--set", dest="settings", action="append", default=[], help="key=value for SIGE.")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--every", type=int, default=1, help="Probe every n-th batch (1: all).")
    add_output_options(
        parser, RESULTS / "sige_diagnosis.json", doc=REPO / "docs" / "sige.md", runs=REPO / "runs" / "diagnosis"
    )
    args = parser.parse_args()

    results = json.loads(args.results.read_text()) if args.results.exists() else []
    if not args.from_results:
        settings = parse_settings(args.settings)
        for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            folder = args.data_root / dataset
            if not folder.is_dir():
                sys.exit(f"{folder}: missing; run benchmarks/prepare_data.py --datasets {dataset} first.")
            result = diagnose(folder, settings, args.epochs, args.every, args.out)
            results = [r for r in results if key(r) != key(result)] + [result]
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
    if not results:
        sys.exit(f"{args.results}: no results.")
    write_section(args.doc, SECTION, section_content(results))
    print(f"wrote {args.results} and the '{SECTION}' section of {args.doc}")


def section_content(results: list[dict]) -> str:
    """The ``sige-diagnosis`` section of docs/sige.md from the results of sige_diagnosis.json."""
    intro = (
        f"Seed {SEED}. Gradients are means over the probed batches of an epoch; loss columns are the "
        "weighted terms. Measured with:\n\n"
        + provenance_list(results, lambda group: f"{len(group)} run{'s' * (len(group) != 1)}")
    )
    return "\n\n".join([intro, *(result_tables(r) for r in results)])


if __name__ == "__main__":
    main()
