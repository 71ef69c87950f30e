"""Does a change keep every number? Train each model with two versions of sigerec and compare.

Example: python benchmarks/same_numbers.py --base c955886 --data .bench_data/ml100k --epochs 2

The base version is the ``src/`` of a git revision (extracted with ``git archive`` under
runs/same-numbers/); the other is this working tree. Each model trains in its own process per
version (PYTHONPATH set to that version's src/, one torch thread), on a fresh copy of the
dataset without cached graphs, so every graph is rebuilt by the version under test. A row is
"same" when the per-epoch losses, every valid and test metric, and every saved weight are
bit-identical. Results: benchmarks/results/same_numbers.json and the ``same-numbers`` section of
docs/benchmarks.md (``python benchmarks/render_docs.py`` re-renders it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from common import REPO, RESULTS, add_output_options, markdown_table, provenance, provenance_sentence, write_section

SECTION = "same-numbers"
HERE = Path(__file__).resolve()


def extract_revision(revision: str, folder: Path) -> Path:
    """``src/`` of ``revision`` under ``folder`` (reused when already extracted); returns that src/."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    target = folder / f"base-{commit}"
    if not (target / "src").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=REPO, check=True, capture_output=True).stdout
        archive_path = target / "src.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(target, filter="data")
        archive_path.unlink()
    return target / "src"


def fingerprint_one(model: str, data: Path, epochs: int, out: Path) -> dict:
    """Train ``model`` (with whatever sigerec is importable) and digest what it produced."""
    import torch

    from sigerec.training import runner
    from sigerec.training.run_directory import LAST_CHECKPOINT

    torch.set_num_threads(1)
    config = runner.resolve_config(model, str(data), overrides={"epochs": epochs})
    run, summary = runner.train(config, out)
    weights = run.load_checkpoint(LAST_CHECKPOINT)["model"]
    digest = hashlib.sha256(b"".join(weights[name].cpu().numpy().tobytes() for name in sorted(weights)))
    return {
        "losses": [record["loss"] for record in run.read_metrics()],
        "valid": summary["valid"],
        "test": summary["test"],
        "weights_sha256": digest.hexdigest(),
    }


def run_version(src: Path, model: str, data: Path, epochs: int, work: Path) -> dict:
    """:func:`fingerprint_one` in a fresh process that imports sigerec from ``src``."""
    copy = work / "data" / data.name
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns(".sigerec-cache"))
    answer = work / "fingerprint.json"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(HERE), "--child", model, "--data", str(copy), "--epochs", str(epochs)]
    subprocess.run([*command, "--out", str(work / "runs"), "--answer", str(answer)], env=env, check=True)
    return json.loads(answer.read_text())


def compare(base: dict, new: dict) -> dict:
    return {
        "same_losses": base["losses"] == new["losses"],
        "same_metrics": base["valid"] == new["valid"] and base["test"] == new["test"],
        "same_weights": base["weights_sha256"] == new["weights_sha256"],
        "base_test_recall@20": base["test"]["recall@20"],
        "new_test_recall@20": new["test"]["recall@20"],
    }


def section_content(results: dict) -> str:
    def mark(same: bool) -> str:
        return "same" if same else "**differs**"

    table = markdown_table(
        ["model", "dataset", "epochs", "losses", "metrics", "weights", "test R@20 (base / new)"],
        [
            [
                row["model"],
                row["dataset"],
                row["epochs"],
                mark(row["same_losses"]),
                mark(row["same_metrics"]),
                mark(row["same_weights"]),
                f"{row['base_test_recall@20']:.4f} / {row['new_test_recall@20']:.4f}",
            ]
            for row in results["rows"]
        ],
    )
    base = f"Base: `{results['base']}`; new: the commit named here."
    return f"{provenance_sentence(results)} {base}\n\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="The git revision to compare the working tree with.")
    parser.add_argument("--data", type=Path, default=REPO / ".bench_data" / "ml100k")
    parser.add_argument("--models", default=None, help="Comma list (default: every registered model).")
    parser.add_argument("--epochs", type=int, default=2)
    add_output_options(parser, RESULTS / "same_numbers.json", runs=REPO / "runs" / "same-numbers")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one training run inside run_version's subprocess
        args.answer.write_text(json.dumps(fingerprint_one(args.child, args.data, args.epochs, args.out)))
        return
    if not args.from_results:
        if not args.data.is_dir():
            sys.exit(f"{args.data}: no such dataset folder; run `python benchmarks/prepare_data.py` first.")
        from sigerec.models import model_names

        models = args.models.split(",") if args.models else model_names()
        base_src = extract_revision(args.base, args.out)
        record = provenance()
        rows = []
        for model in models:
            fingerprints = {
                side: run_version(src, model, args.data.resolve(), args.epochs, args.out / side / model)
                for side, src in (("base", base_src), ("new", REPO / "src"))
            }
            row = {"model": model, "dataset": args.data.name, "epochs": args.epochs}
            row.update(compare(fingerprints["base"], fingerprints["new"]))
            print(json.dumps(row), flush=True)
            rows.append(row)
        args.results.write_text(json.dumps({**record, "base": args.base, "rows": rows}, indent=2) + "\n")
    write_section(args.doc, SECTION, section_content(json.loads(args.results.read_text())))


if __name__ == "__main__":
    main()
