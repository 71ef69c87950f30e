"""Build the benchmark datasets that have REAL item content features, with the sigerec CLI.

Example: python benchmarks/prepare_data.py --datasets ml100k,ml100k-kg,baby-official,sports-official

Reads ../shared/data (see its README.md) and writes one MMRec folder per dataset into --out:
- ml100k: ML-100k ratings >= 4, imported with MMRec's per-user random 8:1:1 split (seed 999);
  `text` = all-MiniLM-L6-v2 on title, year and genres (all items), `genre` = multi-hot genres.
- ml100k-s<N> (any integer N, e.g. ml100k-s1): the same data and features as ml100k, split
  with seed N instead of 999 (other splits of the same data, for settings that must generalise).
- ml100k-kg: the same split and features as ml100k, plus `kg` = the Freebase facts of
  ml-100k.kg (one-hop, TF-IDF multi-hot, SVD to 128-d) through ml-100k.link re-keyed from
  MovieLens-1M ids to ML-100k ids with benchmarks/data/ml100k_ml1m_crosswalk.tsv (see
  benchmarks/movielens_crosswalk.py; the link as shipped attaches facts to the wrong films).
- baby: the LATTICE split of Amazon Baby; `text` = all-MiniLM-L6-v2 on the partial titles and
  descriptions of baby/content (about 48.5% of items; the rest mean-filled).
- sports: the LATTICE split of Amazon Sports; `text` = all-MiniLM-L6-v2 on the partial 2023
  titles of sports/content (about 13.7% of items), mapped to item ids through the itemID->ASIN map.
- baby-official, sports-official: MMRec's official splits (<ds>/official/, the ones MMRec papers
  report on) with the same text features as baby and sports; official Sports item ids are the
  ranks of the sorted ASINs, so the titles are keyed to them through that ranking.
- ml100k-cold, baby-cold: item cold-start splits (`--split cold-items`, 20% of the items, seed 0,
  cold items drawn among items with text) of ML-100k ratings >= 4 (text + genre as ml100k) and of
  the official Baby pairs (text as baby-official); see benchmarks/cold_start.py.
- ml100k-mixed: ml100k-cold whose users' warm interactions are also split 8:1:1 (seed 0), so
  valid and test hold warm and cold items alike.
No synthetic features are made: a modality exists only where real content does.
A dataset whose feature files are all present is skipped unless --force.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from common import BENCH_DATA, DEFAULT_DATA_ROOT, REPO, describe_features, feature_sources, run_sigerec

from sigerec.data.feature_files import feature_file, missing_items_file, provenance_file

SEED = 999
# The modalities each prepared dataset must hold to count as complete.
MODALITIES = {
    "ml100k": ("text", "genre"),
    "ml100k-kg": ("text", "genre", "kg"),
    "baby": ("text",),
    "sports": ("text",),
    "baby-official": ("text",),
    "sports-official": ("text",),
    "ml100k-cold": ("text", "genre"),
    "ml100k-mixed": ("text", "genre"),
    "baby-cold": ("text",),
}
COLD_FRACTION, COLD_SEED = 0.2, 0  # the item cold-start splits: 20% of the items, drawn with seed 0
SEEDED_ML100K = "ml100k-s"  # prefix of ml100k re-split with another seed: ml100k-s<seed>
CROSSWALK = REPO / "benchmarks" / "data" / "ml100k_ml1m_crosswalk.tsv"
REKEYED_LINK = "ml-100k.rekeyed.link"
PROVENANCE_FILE = "prepared.json"


def prepare_ml100k(source: Path, out: Path, force: bool, seed: int = SEED) -> None:
    movielens = source / "ml-100k"
    import_options = ["--user-col", "user_id", "--item-col", "item_id", "--time-col", "timestamp"]
    import_options += ["--rating-col", "rating", "--min-rating", "4", "--split", "mmrec", "--seed", str(seed)]
    run_sigerec(
        "data",
        "import",
        str(movielens / "ml-100k.inter"),
        *import_options,
        "--out",
        str(out),
        *(["--force"] if force else []),
    )
    _encode_ml100k(source, out)


def _encode_ml100k(source: Path, out: Path) -> None:
    """ML-100k's text (title, year, genres) and genre features, from its item file."""
    items = str(source / "ml-100k" / "ml-100k.item")
    run_sigerec(
        "encode",
        "text",
        items,
        "--data",
        str(out),
        "--id-col",
        "item_id",
        "--text-cols",
        "movie_title,release_year,class",
        "--quiet",
    )
    run_sigerec(
        "encode",
        "categories",
        items,
        "--data",
        str(out),
        "--id-col",
        "item_id",
        "--category-col",
        "class",
        "--modality",
        "genre",
        "--quiet",
    )


def prepare_ml100k_kg(source: Path, out: Path, force: bool) -> None:
    """ml100k (built first if needed) copied, plus the knowledge-graph modality."""
    base = out.parent / "ml100k"
    if not is_complete(base, "ml100k"):
        prepare_ml100k(source, base, force)
    for name in ("ml100k.inter", "u_id_mapping.csv", "i_id_mapping.csv"):
        copy_file(base / name, out, force)
    for modality in MODALITIES["ml100k"]:
        for file_of in (feature_file, provenance_file, missing_items_file):
            copy_file(file_of(base, modality), out, force)
    movielens = source / "ml-100k"
    write_rekeyed_link(movielens / "ml-100k.link", CROSSWALK, out / REKEYED_LINK)
    run_sigerec(
        "encode", "kg", str(movielens / "ml-100k.kg"), "--link", str(out / REKEYED_LINK), "--data", str(out)
    )  # fmt: skip


def write_rekeyed_link(link_file: Path, crosswalk_file: Path, target: Path) -> None:
    """RecBole's link rows moved from ML-1M movie ids to ML-100k item ids (unmatched rows dropped)."""
    from movielens_crosswalk import read_link, rekey_link

    crosswalk = pd.read_csv(crosswalk_file, sep="\t")
    rekeyed = rekey_link(read_link(link_file), crosswalk)
    target.write_text(rekeyed.to_csv(sep="\t", index=False, lineterminator="\n"))
    print(f"{target}: {len(rekeyed)} item-entity links re-keyed to ML-100k ids with {crosswalk_file.name}")


def prepare_baby(source: Path, out: Path, force: bool, official: bool = False) -> None:
    baby = source / "baby"
    copy_file(baby / ("official" if official else "") / "baby.inter", out, force)
    copy_file(baby / "i_id_mapping.csv", out, force)  # MMRec's asin -> itemID: the ids of both splits
    _encode_baby_text(source, "asin", out)


def _encode_baby_text(source: Path, id_col: str, out: Path) -> None:
    """all-MiniLM-L6-v2 on Baby's partial titles and descriptions, items matched by ``id_col``."""
    texts = str(source / "baby" / "content" / "baby_item_text_partial.jsonl")
    run_sigerec(
        "encode", "text", texts, "--data", str(out), "--id-col", id_col, "--text-cols", "title,description", "--quiet"
    )


def prepare_sports(source: Path, out: Path, force: bool, official: bool = False) -> None:
    sports = source / "sports"
    copy_file(sports / ("official" if official else "") / "sports.inter", out, force)
    titles = sports / "content" / "sports_item_title_partial_2023meta.jsonl"
    write_item_map(sports / "content" / "sports_itemid_asin.tsv", titles, out / "i_id_mapping.csv", official)
    run_sigerec(
        "encode", "text", str(titles), "--data", str(out), "--id-col", "asin", "--text-cols", "title", "--quiet"
    )


def prepare_cold(source: Path, out: Path, force: bool, dataset: str) -> None:
    """An item cold-start split (``--split cold-items``): ``COLD_FRACTION`` of the items held out,
    half to valid and half to test, drawn among the items with text (the dataset is imported,
    its features encoded, then imported again drawing cold items among the encoded ones)."""
    if dataset == "ml100k-cold":
        interactions = source / "ml-100k" / "ml-100k.inter"
        columns = ["--user-col", "user_id", "--item-col", "item_id", "--time-col", "timestamp"]
        columns += ["--rating-col", "rating", "--min-rating", "4"]
        encode = partial(_encode_ml100k, source)
    else:
        interactions = source / "baby" / "official" / "baby.inter"
        columns = ["--user-col", "userID", "--item-col", "itemID"]  # the official split's pairs, re-split
        encode = partial(_encode_baby_text, source, "itemID")
    split = ["--split", "cold-items", "--cold-fraction", str(COLD_FRACTION), "--seed", str(COLD_SEED)]
    run_sigerec("data", "import", str(interactions), *columns, *split, "--out", str(out), "--force")
    encode(out)
    with_text = ["--cold-only-with-content", "text"]
    run_sigerec("data", "import", str(interactions), *columns, *split, *with_text, "--out", str(out), "--force")


def prepare_mixed(source: Path, out: Path, force: bool) -> None:
    """ml100k-cold with warm held-out items too: its cold items keep all their interactions in
    valid and test, and each user's warm (training) interactions are split 8:1:1 (seed 0), so an
    all-item ranking shows what cold items gain and warm items lose under a cold-item rule."""
    base = out.parent / "ml100k-cold"
    if not is_complete(base, "ml100k-cold"):
        prepare_cold(source, base, force, dataset="ml100k-cold")
    for name in ("u_id_mapping.csv", "i_id_mapping.csv"):
        copy_file(base / name, out, force)
    for modality in MODALITIES["ml100k-cold"]:
        for file_of in (feature_file, provenance_file, missing_items_file):
            copy_file(file_of(base, modality), out, force)
    rows = pd.read_csv(base / "ml100k-cold.inter", sep="\t").sort_values("userID", kind="stable", ignore_index=True)
    rng = np.random.default_rng(COLD_SEED)
    warm = rows.index[rows["x_label"] == 0].to_numpy()
    for user_rows in np.split(warm, np.flatnonzero(np.diff(rows.loc[warm, "userID"].to_numpy())) + 1):
        held_out = rng.permutation(user_rows)[: int(0.2 * len(user_rows))]  # at least 80% stay in train
        half = len(held_out) // 2
        rows.loc[held_out[:half], "x_label"] = 1
        rows.loc[held_out[half:], "x_label"] = 2
    (out / "ml100k-mixed.inter").write_text(rows.to_csv(sep="\t", index=False, lineterminator="\n"))


PREPARERS = {
    "ml100k": prepare_ml100k,
    "ml100k-kg": prepare_ml100k_kg,
    "baby": prepare_baby,
    "sports": prepare_sports,
    "baby-official": partial(prepare_baby, official=True),
    "sports-official": partial(prepare_sports, official=True),
    "ml100k-cold": partial(prepare_cold, dataset="ml100k-cold"),
    "baby-cold": partial(prepare_cold, dataset="baby-cold"),
    "ml100k-mixed": prepare_mixed,
}


def preparer(dataset: str):
    """The function that builds ``dataset``, or None for an unknown name."""
    if dataset.startswith(SEEDED_ML100K) and dataset.removeprefix(SEEDED_ML100K).isdigit():
        return partial(prepare_ml100k, seed=int(dataset.removeprefix(SEEDED_ML100K)))
    return PREPARERS.get(dataset)


def modalities_of(dataset: str) -> tuple[str, ...]:
    return MODALITIES["ml100k" if dataset.startswith(SEEDED_ML100K) else dataset]


def copy_file(path: Path, out: Path, force: bool) -> None:
    """Copy ``path`` into ``out``; an identical copy is kept, a different one only replaced with --force."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / path.name
    if target.exists():
        if filecmp.cmp(path, target, shallow=False):
            return
        if not force:
            sys.exit(f"{target} differs from {path}; pass --force to replace it.")
        target.unlink()
    shutil.copyfile(path, target)


def write_item_map(asin_map: Path, titles: Path, target: Path, official: bool = False) -> None:
    """MMRec's ``i_id_mapping.csv`` (``asin<TAB>itemID``) from the Sports itemID -> ASIN table,
    checked to number the items 0..n-1 and to agree with the itemIDs stored beside the titles.
    ``official``: the official split's ids instead, each ASIN's rank in sorted order."""
    mapping = pd.read_csv(asin_map, sep="\t", dtype=str, keep_default_na=False)
    item_ids = mapping["itemID"].astype(int).to_numpy()
    if not np.array_equal(item_ids, np.arange(len(mapping))):
        sys.exit(f"{asin_map}: itemIDs are not 0..n-1 in order; cannot write {target.name}.")
    asin_to_item = dict(zip(mapping["asin"], item_ids))
    with open(titles) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    disagreeing = [r for r in records if asin_to_item.get(r["asin"]) != r["itemID"]]
    if disagreeing:
        sys.exit(f"{titles}: {len(disagreeing)} titles name an itemID that {asin_map.name} gives another ASIN.")
    if official:
        mapping = mapping.sort_values("asin", kind="stable").assign(itemID=np.arange(len(mapping)))
    target.write_text(mapping[["asin", "itemID"]].to_csv(sep="\t", index=False, lineterminator="\n"))


def is_complete(folder: Path, dataset: str) -> bool:
    return all(
        feature_file(folder, modality).exists() and provenance_file(folder, modality).exists()
        for modality in modalities_of(dataset)
    )


def print_coverage(dataset: str, folder: Path) -> None:
    print(f"{dataset} ({folder}):")
    for metadata in feature_sources(folder):
        print(f"  {describe_features(metadata)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="The shared data folder.")
    parser.add_argument("--out", type=Path, default=BENCH_DATA, help="Where the dataset folders go.")
    parser.add_argument(
        "--datasets",
        default="ml100k,ml100k-kg,baby-official,sports-official",
        help=f"Any of {','.join(PREPARERS)} or ml100k-s<seed>.",
    )
    parser.add_argument("--force", action="store_true", help="Rebuild datasets whose features already exist.")
    args = parser.parse_args()

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if preparer(d) is None]
    if unknown:
        sys.exit(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(PREPARERS)} or ml100k-s<seed>.")
    for dataset in datasets:
        folder = args.out / dataset
        if is_complete(folder, dataset) and not args.force:
            print(f"{dataset}: {folder} is complete; skipped (--force rebuilds it).")
        else:
            started = time.time()
            preparer(dataset)(args.data_root, folder, args.force)
            provenance = {
                "dataset": dataset,
                "data_root": str(args.data_root.resolve()),
                "script": "benchmarks/prepare_data.py",
                "seconds": round(time.time() - started, 1),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        print_coverage(dataset, folder)


if __name__ == "__main__":
    main()
