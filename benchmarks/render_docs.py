"""Rewrite every measured table of docs/benchmarks.md, docs/sige.md and docs/scaling.md from the results files, without measuring.

Example: python benchmarks/render_docs.py            (rewrite the tables)
         python benchmarks/render_docs.py --check    (exit 1 if the docs differ from the results)

Each section between `<!-- name:start -->` and `<!-- name:end -->` is rendered by the script
that measures it, from its file in benchmarks/results/, exactly as that script writes it after
a run; so a table always shows the rows of its results file with the command that reproduces
each row, the machine, the git commit and the date it was measured on. The plot of the
multimodal section is kept as it is unless --plot is given (it needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import baselines
import encoders
import epoch_speed
import fair
import knn_recall
import model_speed
import multimodal
import recbole_speed
import same_numbers
import scaling
import serving_load
import sige_defaults
import sige_diagnosis
import soak
import speed
import tune_reference
from common import REPO, RESULTS, load_results, replace_section

DOC = REPO / "docs" / "benchmarks.md"
SIGE_DOC = REPO / "docs" / "sige.md"
SCALING_DOC = REPO / "docs" / "scaling.md"
PLOT = DOC.parent / "img" / "multimodal.png"


def sige_sections(results: Path = RESULTS) -> dict[str, Callable[[], str]]:
    """Marker name -> renderer of the measured sections of docs/sige.md."""
    return {
        sige_diagnosis.SECTION: lambda: sige_diagnosis.section_content(
            json.loads((results / "sige_diagnosis.json").read_text())
        ),
        sige_defaults.SECTION: lambda: sige_defaults.section_content(
            load_results(results / "sige_defaults.json"), results / "multimodal.json"
        ),
    }


def sections(results: Path = RESULTS, doc: Path = DOC, plot: Path = PLOT) -> dict[str, Callable[[], str]]:
    """Marker name -> the function that renders that section from ``results``."""

    def read(name: str) -> dict:
        return json.loads((results / name).read_text())

    def multimodal_section() -> str:
        rows = load_results(results / "multimodal.json")
        reference = os.path.relpath(plot.resolve(), doc.resolve().parent) if plot.exists() else None
        return multimodal.section_content(rows, multimodal.DEFAULT_MODELS, reference)

    return {
        "baselines": lambda: baselines.section_content(load_results(results / "baselines.json")),
        "baselines-cpu": lambda: baselines.section_content(load_results(results / "baselines_cpu.json")),
        "speed": lambda: speed.section_content(read("speed.json")),
        "encoders": lambda: encoders.section_content(read("encoders.json")),
        multimodal.DOC_SECTION: multimodal_section,
        multimodal.ABLATION_SECTION: lambda: multimodal.ablation_content(load_results(results / "sige_ablation.json")),
        "model-speed": lambda: model_speed.section_content(read("model_speed.json")),
        "serving": lambda: serving_load.section_content(read("serving.json")),
        same_numbers.SECTION: lambda: same_numbers.section_content(read("same_numbers.json")),
        tune_reference.SECTION: lambda: tune_reference.section_content(read("tune_reference.json")),
    } | {
        name: render
        for name, file, render in (
            *(
                (table.section, table.results.name, lambda name=table.results.name: fair.section_content(read(name)))
                for table in fair.TABLES.values()
            ),
            (
                recbole_speed.SECTION,
                "recbole_speed.json",
                lambda: recbole_speed.section_content(read("recbole_speed.json")),
            ),
            (soak.SECTION, "soak.json", lambda: soak.section_content(read("soak.json"))),
        )
        if (results / file).exists()
    }


def scaling_sections(results: Path = RESULTS) -> dict[str, Callable[[], str]]:
    """The measured sections of docs/scaling.md, each from its results file."""
    return {
        "scaling": lambda: scaling.section_content(load_results(results / "scaling.json")),
        "epoch-speed": lambda: epoch_speed.section_content(load_results(results / "epoch_speed.json")),
        knn_recall.SECTION: lambda: knn_recall.section_content(json.loads((results / "knn_recall.json").read_text())),
    }


def render_sections(doc: Path, renderers: dict[str, Callable[[], str]]) -> str:
    """The text of ``doc`` with each marked section replaced by its renderer's output."""
    text = doc.read_text()
    for name, content in renderers.items():
        text = replace_section(text, name, content())
    return text


def render(doc: Path, results: Path = RESULTS, plot: Path = PLOT) -> str:
    """The text of ``doc`` with every benchmark section rewritten from ``results``."""
    return render_sections(doc, sections(results, doc, plot))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--sige-doc", type=Path, default=SIGE_DOC, help="The page of SIGE's measured sections.")
    parser.add_argument("--scaling-doc", type=Path, default=SCALING_DOC, help="The page of the scaling sections.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="The folder of the results files.")
    parser.add_argument("--plot", action="store_true", help="Also redraw the multimodal plot (needs matplotlib).")
    parser.add_argument("--check", action="store_true", help="Only check that the doc shows the results.")
    args = parser.parse_args()
    plot = args.doc.parent / "img" / "multimodal.png"
    if args.plot:
        rows = load_results(args.results / "multimodal.json")
        multimodal.plot_results(rows, multimodal.DEFAULT_MODELS, multimodal.TABLE_ORDER, plot)
    pages = {
        args.doc: render(args.doc, args.results, plot),
        args.sige_doc: render_sections(args.sige_doc, sige_sections(args.results)),
        args.scaling_doc: render_sections(args.scaling_doc, scaling_sections(args.results)),
    }
    for doc, text in pages.items():
        if args.check:
            if text != doc.read_text():
                sys.exit(f"{doc} differs from the tables rendered from {args.results}; run benchmarks/render_docs.py.")
            print(f"{doc} shows the results of {args.results}.")
        else:
            doc.write_text(text)
            print(f"rewrote the measured tables of {doc} from {args.results}")


if __name__ == "__main__":
    main()
