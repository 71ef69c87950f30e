"""LightGCN (n_layers=1) on official Amazon Baby, one thread: sigerec beside RecBole 1.2.1.

Example: python benchmarks/recbole_speed.py --rounds 3 --epochs 4
         python benchmarks/recbole_speed.py --from-results     (only rewrite the table)

RecBole runs in its own virtual environment (its pins clash with sigerec's), made once with:

    python3 -m venv .bench_venvs/recbole
    .bench_venvs/recbole/bin/pip install torch==2.13.0
    .bench_venvs/recbole/bin/pip install recbole==1.2.1 "numpy<2" "scipy<1.12" "pandas<3" "setuptools<81"

Both libraries train on the same fixed split: the official split of `.bench_data/baby-official`
(from `benchmarks/prepare_data.py`) is written as RecBole atomic files
`baby.{train,valid,test}.inter` (RecBole's `benchmark_filename`). Same settings on both sides:
embedding 64, one layer, batch 2048, Adam at 1e-3, reg_weight 1e-4 (both use MMRec's
unsquared EmbLoss on the layer-0 batch rows), one uniform negative per positive, full-sort
evaluation of the valid split with training items masked, 512 users per evaluation batch
(RecBole's eval_batch_size counts user x item scores, so it is 512 x its item count), ranking
the top 20: RecBole computes Recall and NDCG at 20, sigerec (topk [20]) its five metrics at 20.

Each round trains sigerec and then RecBole for --epochs epochs, each in a fresh process with
OMP_NUM_THREADS=MKL_NUM_THREADS=1 and one torch thread, timing the calls that each library's
own training loop makes per epoch: sigerec's `Trainer.train_epoch` and `evaluate_split`
(valid), RecBole's `Trainer._train_epoch` and `Trainer.evaluate` (`recbole_runner.py`, in
RecBole's venv); the same loop (`epoch_timing.py`) times both. Rounds alternate the two so that
other load on the machine falls on both alike. Figures are medians over every epoch but each
process's first (warm-up): seconds per training epoch and per full evaluation of the valid
split, in wall time and in the process's CPU time, which other load on a shared machine
disturbs far less. Results: benchmarks/results/recbole_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import common
from epoch_timing import TIMES, time_epochs

SECTION = "recbole-speed"
RECBOLE_VENV = common.REPO / ".bench_venvs" / "recbole"
RUNNER = Path(__file__).resolve().with_name("recbole_runner.py")
SPLIT_FILES = ("train", "valid", "test")  # sigerec's split names, also RecBole's file suffixes
USERS_PER_EVAL_BATCH = 512  # sigerec's default eval_batch_size
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
SIGEREC_SETTINGS = {"n_layers": 1, "topk": [20]}  # RecBole reports Recall and NDCG at 20 only


def write_recbole_dataset(source: Path, root: Path, name: str = "baby") -> int:
    """The splits of the sigerec dataset ``source`` as RecBole atomic files under ``root/name``;
    returns the number of items."""
    from sigerec.data.atomic import load_dataset

    dataset = load_dataset(source)
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_FILES:
        matrix = dataset.split(split).tocoo()
        lines = [f"{user}\t{item}\n" for user, item in zip(matrix.row.tolist(), matrix.col.tolist(), strict=True)]
        (folder / f"{name}.{split}.inter").write_text("user_id:token\titem_id:token\n" + "".join(lines))
    return dataset.n_items


def recbole_settings(data_root: Path, work: Path, n_items: int, name: str = "baby") -> dict:
    """RecBole's config for the same LightGCN and protocol as sigerec's defaults with n_layers=1."""
    return {
        "model": "LightGCN",
        "dataset": name,
        "data_path": str(data_root),
        "benchmark_filename": list(SPLIT_FILES),
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        "n_layers": 1,
        "embedding_size": 64,
        "reg_weight": 1e-4,
        "require_pow": False,
        "train_batch_size": 2048,
        "learning_rate": 1e-3,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        # With benchmark_filename the files are the split; "split" is required but unused.
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "Recall@20",
        # RecBole counts an evaluation batch in scores: users x (items + its padding item 0).
        "eval_batch_size": USERS_PER_EVAL_BATCH * (n_items + 1),
        "gpu_id": "",
        "seed": 999,
        "reproducibility": True,
        "show_progress": False,
        "state": "ERROR",
        "checkpoint_dir": str(work / "saved"),
        "worker": 0,
    }


def time_recbole(config_file: Path, epochs: int, work: Path, python: Path) -> dict:
    """Seconds per epoch and per evaluation from ``recbole_runner.py`` in RecBole's venv."""
    env = {**os.environ, **ONE_THREAD, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    env.pop("PYTHONPATH", None)
    command = [str(python), str(RUNNER), str(config_file), str(epochs)]
    # cwd: RecBole writes its log_tensorboard/ folder there.
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def time_sigerec(data: Path, epochs: int) -> dict:
    """Seconds per epoch and per evaluation of sigerec, from :func:`sigerec_child` in a fresh
    process on one thread."""
    env = {**os.environ, **ONE_THREAD}
    command = [sys.executable, str(Path(__file__).resolve()), "--sigerec-child", "--data", str(data)]
    command += ["--epochs", str(epochs)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def sigerec_child(data: Path, epochs: int) -> None:
    """Print the times of ``epochs`` LightGCN epochs and valid evaluations as one JSON line."""
    import torch

    from sigerec.training import runner
    from sigerec.training.trainer import evaluate_split

    torch.set_num_threads(1)
    config = runner.resolve_config("lightgcn", data, overrides={**SIGEREC_SETTINGS, "epochs": epochs})
    trainer = runner.prepare(config)
    losses, valid = [], {}

    def train_epoch(epoch: int) -> None:
        losses.append(trainer.train_epoch(epoch)[0])

    def evaluate() -> None:
        valid.update(evaluate_split(trainer.model, trainer.dataset, "valid", config))

    times = time_epochs(train_epoch, evaluate, epochs)
    print(json.dumps({**times, "losses": losses, "valid": valid, "torch_threads": torch.get_num_threads()}))


def warm_median(runs: list[dict], key: str) -> float:
    """Median of ``key`` over every epoch of every run except each run's first."""
    return statistics.median(value for run in runs for value in run[key][1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=common.REPO / ".bench_data" / "baby-official")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="Epochs per process (the first is warm-up).")
    parser.add_argument("--recbole-python", type=Path, default=RECBOLE_VENV / "bin" / "python")
    parser.add_argument("--sigerec-child", action="store_true", help=argparse.SUPPRESS)
    common.add_output_options(
        parser, common.RESULTS / "recbole_speed.json", runs=common.REPO / "runs" / "recbole-speed"
    )
    args = parser.parse_args()

    if args.sigerec_child:  # one sigerec process of time_sigerec
        sigerec_child(args.data, args.epochs)
        return
    if not args.from_results:
        if not args.recbole_python.exists():
            raise SystemExit(f"{args.recbole_python}: no RecBole venv; make it as this script's docstring says.")
        record = common.provenance()
        work = args.out.resolve()
        recbole_data = work / "recbole-data"
        n_items = write_recbole_dataset(args.data, recbole_data)
        config_file = work / "recbole_config.json"
        config_file.write_text(json.dumps(recbole_settings(recbole_data, work, n_items), indent=2))
        runs: dict[str, list[dict]] = {"sigerec": [], "recbole": []}
        for round_index in range(args.rounds):
            runs["sigerec"].append(time_sigerec(args.data, args.epochs))
            runs["recbole"].append(time_recbole(config_file, args.epochs, work, args.recbole_python))
            for library, library_runs in runs.items():
                print(round_index, library, json.dumps({key: library_runs[-1][key] for key in TIMES}), flush=True)
        rows = [
            {"library": library, **{key: warm_median(library_runs, key) for key in TIMES}, "runs": library_runs}
            for library, library_runs in runs.items()
        ]
        record["note"] = (
            f"Medians over {args.rounds} alternating rounds of {args.epochs} epochs per library, "
            "each process's first epoch left out."
        )
        common.save_results(args.results, rows, record)
    common.write_section(args.doc, SECTION, section_content(json.loads(args.results.read_text())))


def section_content(results: dict) -> str:
    """The side-by-side table of a results file, after its command, machine, commit and date."""
    rows = {row["library"]: row for row in results["rows"]}
    recbole = rows["recbole"]

    # Each cell: seconds, then how many times faster than RecBole.
    def cells(row: dict) -> list[str]:
        return [
            f"{row[key]:.2f} ({recbole[key] / row[key]:.1f}x)"
            for key in ("train_seconds", "eval_seconds", "train_cpu_seconds", "eval_cpu_seconds")
        ]

    table = common.markdown_table(
        [
            "LightGCN n_layers=1, Baby, 1 thread",
            "s / epoch (RecBole / it)",
            "s / valid evaluation",
            "CPU s / epoch",
            "CPU s / valid evaluation",
        ],
        [["sigerec", *cells(rows["sigerec"])], ["RecBole 1.2.1", *cells(recbole)]],
    )
    return f"{common.provenance_sentence(results)}\n\n{table}"


if __name__ == "__main__":
    main()
