"""Seconds per epoch and peak memory of SIGE beside MGCN and LightGCN, and SIGE's memory at
Clothing size.

Example: python benchmarks/prepare_data.py --datasets baby     (once: .bench_data/baby)
         python benchmarks/model_speed.py --epochs 3
         python benchmarks/model_speed.py --from-results     (only rewrite the table)
Each run trains a few epochs in a fresh process (so its peak resident memory is its own) with
every core of this machine, default settings, seed 999, and reports the mean seconds per
training epoch, the mean seconds per full evaluation of the valid split, and the process's
peak memory (graph building included).

- Baby: `.bench_data/baby` from `benchmarks/prepare_data.py`, real title text features
  (48.5% of items; all-MiniLM-L6-v2, 384-d).
- Clothing: no real features exist for it, so this memory check uses **random** 384-d
  vectors (seeded Gaussian), written to `.bench_data/clothing-random384/`. They are a
  stand-in of the right size for time and memory only; no accuracy is reported from them.

The results (benchmarks/results/model_speed.json) record the command, machine, git commit and date.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from common import (
    REPO,
    RESULTS,
    add_output_options,
    markdown_table,
    provenance,
    provenance_sentence,
    save_results,
    train_in_subprocess,
    write_section,
)

from sigerec.data.feature_files import feature_file, write_feature_file

RANDOM_FEATURES_NOTE = "RANDOM 384-d Gaussian vectors (seed 0): a size stand-in for time/memory only, not content"


def clothing_with_random_features(data_root: Path, shared_root: Path) -> Path:
    """``<data_root>/clothing-random384`` with the real interactions and labelled random features."""
    folder = data_root / "clothing-random384"
    if not feature_file(folder, "text").exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_root / "clothing" / "clothing.inter", folder / "clothing.inter")
        features = np.random.default_rng(0).standard_normal((23033, 384)).astype(np.float32)
        provenance = {"modality": "text", "source": RANDOM_FEATURES_NOTE, "coverage": 0.0}
        write_feature_file(folder, "text", features, provenance, missing_items={})
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=REPO / ".bench_data")
    parser.add_argument("--shared-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--clothing-epochs", type=int, default=2)
    add_output_options(parser, RESULTS / "model_speed.json", runs=REPO / "runs" / "model-speed")
    args = parser.parse_args()

    if not args.from_results:
        record = provenance()
        jobs = [("baby", model, args.data_root / "baby", args.epochs) for model in ("lightgcn", "mgcn", "sige")]
        clothing = clothing_with_random_features(args.data_root, args.shared_root)
        jobs += [("clothing (random features)", "sige", clothing, args.clothing_epochs)]
        rows = []
        for label, model, folder, epochs in jobs:
            settings = {"epochs": epochs, "stopping_step": 1000}
            summary = train_in_subprocess(folder, model, args.out, settings)
            rows.append(
                {
                    "dataset": label,
                    "model": model,
                    "epochs": summary["epochs"],
                    "train_seconds_per_epoch": summary["train_seconds_per_epoch"],
                    "eval_seconds": summary["eval_seconds"],
                    "peak_memory_mb": summary["peak_memory_mb"],
                    "machine": record["machine"],
                }
            )
            print(rows[-1], flush=True)
        save_results(args.results, rows, record)
    write_section(args.doc, "model-speed", section_content(json.loads(args.results.read_text())))


def section_content(results: dict) -> str:
    """The table of a results file, after its command, machine, commit and date."""
    rows = results["rows"]
    baby_mgcn = next(r for r in rows if r["dataset"] == "baby" and r["model"] == "mgcn")["train_seconds_per_epoch"]
    table = markdown_table(
        ["dataset", "model", "epochs", "s/epoch", "x MGCN", "eval s", "peak MB"],
        [
            [
                r["dataset"],
                r["model"],
                r["epochs"],
                f"{r['train_seconds_per_epoch']:.2f}",
                f"{r['train_seconds_per_epoch'] / baby_mgcn:.2f}" if r["dataset"] == "baby" else "",
                f"{r['eval_seconds']:.2f}",
                f"{r['peak_memory_mb']:.0f}",
            ]
            for r in rows
        ],
    )
    return (
        "## SIGE speed and memory beside MGCN and LightGCN\n\n"
        f"{provenance_sentence(results)} Data: `python benchmarks/prepare_data.py --datasets baby`. "
        "Default settings, seed 999, all cores, means over the epochs run. Baby uses its real "
        f"title text features (48.5% coverage); Clothing uses {RANDOM_FEATURES_NOTE}.\n\n" + table
    )


if __name__ == "__main__":
    main()
