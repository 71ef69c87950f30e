"""Throughput of `sigerec encode` on real content, written into docs/benchmarks.md.

Example: python benchmarks/encoders.py
         python benchmarks/encoders.py --from-results     (only rewrite the table)
Text: MovieLens-100k (1,682 titles + year + genres) and Amazon Baby (3,416 titles, 978 with
descriptions) with all-MiniLM-L6-v2. Images: the colour photos scikit-image ships, written
as PNG files (repeated to 96 files) and encoded with EfficientNet-Lite0 from disk, decoding
and preprocessing included. Items per second exclude model loading. The results
(benchmarks/results/encoders.json) record the command, machine, git commit and date.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import common

from sigerec.features.encode import encode_item_file
from sigerec.features.image import ImageEncoder
from sigerec.features.text import TextEncoder


def text_runs(data_root: Path, work: Path) -> list[dict]:
    from sigerec.data.importer import ImportOptions, import_interactions

    ml = work / "ml100k"
    import_interactions(
        data_root / "ml-100k" / "ml-100k.inter",
        ml,
        ImportOptions("user_id", "item_id", rating_col="rating", min_rating=0, seed=999),
    )
    baby = work / "baby"
    baby.mkdir()
    for name in ("baby.inter", "i_id_mapping.csv"):
        shutil.copy(data_root / "baby" / name, baby / name)
    runs = [
        (
            "MovieLens-100k titles, years, genres",
            data_root / "ml-100k" / "ml-100k.item",
            ml,
            "item_id",
            ["movie_title", "release_year", "class"],
        ),
        (
            "Amazon Baby titles + descriptions",
            data_root / "baby" / "content" / "baby_item_text_partial.jsonl",
            baby,
            "asin",
            ["title", "description"],
        ),
    ]
    rows = []
    for label, items, folder, id_col, columns in runs:
        report = encode_item_file(items, folder, id_col, "text", TextEncoder(columns), 64, None, True)
        rows.append({"input": label, "model": "all-MiniLM-L6-v2", "items": report["encoded"], **report["timing"]})
    return rows


def image_run(work: Path, copies: int = 96) -> dict:
    from PIL import Image
    from skimage import data

    photos = [getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket", "cat")]
    folder = work / "photos"
    folder.mkdir()
    lines = ["item,image"]
    for index in range(copies):
        Image.fromarray(photos[index % len(photos)]).save(folder / f"{index}.png")
        lines.append(f"{index},{index}.png")
    dataset = work / "images"
    dataset.mkdir()
    inter = ["userID\titemID\tx_label"] + [
        f"{u}\t{i}\t{label}" for u in range(3) for i, label in ((u, 0), (u + 3, 1), (u + 6, 2))
    ]
    inter += [f"9\t{i}\t0" for i in range(copies)]
    (dataset / "images.inter").write_text("\n".join(inter) + "\n")
    (work / "items.csv").write_text("\n".join(lines) + "\n")
    report = encode_item_file(
        work / "items.csv", dataset, "item", "image", ImageEncoder("image", folder), 32, None, True
    )
    return {
        "input": f"{copies} scikit-image photos (PNG, 300-512 px)",
        "model": "EfficientNet-Lite0",
        "items": report["encoded"],
        **report["timing"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=common.DEFAULT_DATA_ROOT)
    common.add_output_options(parser, common.RESULTS / "encoders.json")
    args = parser.parse_args()
    if not args.from_results:
        record = common.provenance()
        with tempfile.TemporaryDirectory() as work:
            rows = text_runs(args.data_root, Path(work)) + [image_run(Path(work))]
        common.save_results(args.results, rows, record)
        for row in rows:
            print(row)
    common.write_section(args.doc, "encoders", section_content(json.loads(args.results.read_text())))


def section_content(results: dict) -> str:
    """The table of a results file, after its command, machine, commit and date."""
    table = common.markdown_table(
        ["input", "model", "items", "items / s", "seconds"],
        [
            [r["input"], r["model"], f"{r['items']:,}", f"{r['items_per_second']:.1f}", f"{r['encode_seconds']:.1f}"]
            for r in results["rows"]
        ],
    )
    return f"{common.provenance_sentence(results)}\n\n{table}"


if __name__ == "__main__":
    main()
