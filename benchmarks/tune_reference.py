"""Does `sigerec tune` reproduce a published number? LightGCN on MMRec's official Baby split.

Example: python benchmarks/tune_reference.py          (prepare the data first: python benchmarks/prepare_data.py)

Runs (or continues; a finished study is reused) `sigerec tune --model lightgcn --trials 20` on
`.bench_data/baby-official` with LightGCN's own search space, MMRec's published grid
(n_layers {1..4} x reg_weight {1e-2..1e-6}), selects on valid Recall@20 and compares the
selected trial's test Recall@20 / NDCG@20 with the numbers MMRec papers publish for LightGCN on
this split (0.0754 / 0.0328). Results: benchmarks/results/tune_reference.json and the
`tune-reference` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common

SECTION = "tune-reference"
PUBLISHED = {"recall@20": 0.0754, "ndcg@20": 0.0328}  # LightGCN, official Baby split, MMRec protocol


def study_record(out: Path) -> dict:
    """The selected trial, its test metrics and what the search cost, read from the study."""
    import optuna
    from optuna.trial import TrialState

    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    trained = [t for t in trials if t.datetime_complete and "same_as_trial" not in t.user_attrs]
    best = study.best_trial
    return {
        "trials": len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]),
        "pruned": len([t for t in trials if t.state == TrialState.PRUNED]),
        "repeated": len([t for t in trials if "same_as_trial" in t.user_attrs]),
        "search_seconds": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trained),
        "selected": {"trial": best.number, "settings": best.params, "valid_recall@20": best.value},
        "test": {k: best.user_attrs["test"][k] for k in PUBLISHED},
    }


def section_content(results: dict) -> str:
    rows = [
        [
            metric,
            f"{results['test'][metric]:.4f}",
            f"{PUBLISHED[metric]:.4f}",
            f"{100 * (results['test'][metric] / PUBLISHED[metric] - 1):+.1f}%",
        ]
        for metric in PUBLISHED
    ]
    selected = results["selected"]
    settings = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in selected["settings"].items())
    return "\n\n".join(
        [
            common.provenance_sentence(results),
            (
                f"{results['trials']} trials ({results['pruned']} pruned, {results['repeated']} drawing settings "
                f"already tried, reused), {results['search_seconds'] / 60:.0f} min of training on one CPU thread. "
                f"Selected on valid Recall@20: trial {selected['trial']} ({settings}), valid "
                f"{selected['valid_recall@20']:.4f}. Its test metrics against MMRec's published LightGCN:"
            ),
            common.markdown_table(["test metric", "sigerec tune", "published", "difference"], rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=common.REPO / ".bench_data" / "baby-official")
    parser.add_argument("--trials", type=int, default=20)
    common.add_output_options(
        parser, common.RESULTS / "tune_reference.json", runs=common.REPO / "runs" / "tuning" / "lightgcn-baby-official"
    )
    args = parser.parse_args()
    if not args.from_results:
        common.run_sigerec(
            "tune",
            "--data",
            str(args.data),
            "--model",
            "lightgcn",
            "--trials",
            str(args.trials),
            "--out",
            str(args.out),
        )
        results = {**common.provenance(), **study_record(args.out)}
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    common.write_section(args.doc, SECTION, section_content(json.loads(args.results.read_text())))
    print(f"wrote {args.results} and the '{SECTION}' section of {args.doc}")


if __name__ == "__main__":
    main()
