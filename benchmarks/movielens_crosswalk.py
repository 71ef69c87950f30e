"""Match MovieLens-100k items to MovieLens-1M movie ids by title and year, so that RecBole's
Freebase link file (keyed by ML-1M ids) can be re-keyed to ML-100k items.

Why: `../shared/data/ml-100k/ml-100k.link` gives ML-1M movie ids in its `item_id` column, not
ML-100k ones (see `sigerec.features.knowledge_graph`, RUCAIBox/RecSysDatasets issue #130).
Used as it is, it attaches real Freebase facts to the wrong films. Both MovieLens releases
come from GroupLens and write titles the same way ("Usual Suspects, The (1995)"), so a
title-and-year match recovers the right film for most items.

Example: python benchmarks/movielens_crosswalk.py --ml1m-movies ml-1m/movies.dat

Input: ML-1M's `movies.dat` (`MovieID::Title (Year)::Genres`, latin-1), from
https://grouplens.org/datasets/movielens/1m/ (not in ../shared/data; any path works, and
only its lines with MovieID <= 1682 matter, as the link file has no other ids).
Output: `benchmarks/data/ml100k_ml1m_crosswalk.tsv` (`ml100k_item_id`, `ml1m_movie_id`,
`match`): ids only, one row per matched ML-100k item, every id on each side at most once.
`match` says which rule matched: `exact` (normalised title and year), `main-title` (the
title without its parenthesised alternative title, same year) or `year+-1` (same
normalised title, release years one apart). Ambiguous candidates are left unmatched.

It then checks the result on the knowledge graph itself, and prints the check: two films
that share a Freebase genre entity should share a MovieLens genre far more often under the
right keying than under the wrong one.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pandas as pd
from common import DEFAULT_DATA_ROOT, REPO

CROSSWALK = REPO / "benchmarks" / "data" / "ml100k_ml1m_crosswalk.tsv"
MAX_LINKED_ID = 1682  # the largest item_id in ml-100k.link
_ALTERNATIVE_TITLE = re.compile(r"\s*\([^()]*\)")


def normalise(title: str) -> str:
    """Lower-case ASCII letters and digits only: 'Seven (Se7en)' -> 'sevense7en'."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


def main_title(title: str) -> str:
    """The title without parenthesised alternatives: 'Seven (Se7en)' -> 'Seven'."""
    return _ALTERNATIVE_TITLE.sub("", title).strip()


def read_ml1m_movies(path: Path) -> pd.DataFrame:
    """``movie_id, title, year`` of the ML-1M movies with id <= MAX_LINKED_ID."""
    rows = []
    raw = path.read_bytes()
    try:  # GroupLens ships latin-1; mirrors are often re-encoded as UTF-8
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        found = re.fullmatch(r"(.*?)\s*\((\d{4})\)", parts[1].strip()) if len(parts) == 3 else None
        if found is None or not parts[0].isdigit():
            sys.exit(f"{path}, line {number}: expected 'MovieID::Title (Year)::Genres', got {line!r}.")
        if int(parts[0]) <= MAX_LINKED_ID:
            rows.append((int(parts[0]), found.group(1), int(found.group(2))))
    return pd.DataFrame(rows, columns=["movie_id", "title", "year"])


def read_ml100k_items(path: Path) -> pd.DataFrame:
    """``item_id, title, year, genres`` of RecBole's ml-100k.item (items without a year dropped)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.columns = [c.split(":")[0] for c in table.columns]
    table = table[table["release_year"].str.isdigit()]
    return pd.DataFrame(
        {
            "item_id": table["item_id"].astype(int),
            "title": table["movie_title"],
            "year": table["release_year"].astype(int),
            "genres": table["class"].str.split(),
        }
    )


def _unique_pairs(left: pd.DataFrame, right: pd.DataFrame, left_key, right_key) -> dict[int, int]:
    """ML-100k id -> ML-1M id where the keys pick exactly one film on each side."""
    left_ids, right_ids = defaultdict(list), defaultdict(list)
    for row in left.itertuples():
        left_ids[left_key(row.title, row.year)].append(row.item_id)
    for row in right.itertuples():
        right_ids[right_key(row.title, row.year)].append(row.movie_id)
    return {ids[0]: right_ids[k][0] for k, ids in left_ids.items() if len(ids) == 1 and len(right_ids.get(k, ())) == 1}


# (rule name, key of an ML-100k film, key of an ML-1M film), strictest first.
RULES = [
    ("exact", lambda t, y: (normalise(t), y), lambda t, y: (normalise(t), y)),
    ("main-title", lambda t, y: (normalise(main_title(t)), y), lambda t, y: (normalise(main_title(t)), y)),
    ("year+-1", lambda t, y: (normalise(t), y + 1), lambda t, y: (normalise(t), y)),
    ("year+-1", lambda t, y: (normalise(t), y - 1), lambda t, y: (normalise(t), y)),
]


def build_crosswalk(ml100k: pd.DataFrame, ml1m: pd.DataFrame) -> pd.DataFrame:
    """One-to-one matches; each rule sees only the films earlier rules left unmatched."""
    matched: list[tuple[int, int, str]] = []
    for name, left_key, right_key in RULES:
        left = ml100k[~ml100k["item_id"].isin({m[0] for m in matched})]
        right = ml1m[~ml1m["movie_id"].isin({m[1] for m in matched})]
        matched += [(a, b, name) for a, b in _unique_pairs(left, right, left_key, right_key).items()]
    crosswalk = pd.DataFrame(matched, columns=["ml100k_item_id", "ml1m_movie_id", "match"])
    return crosswalk.sort_values("ml100k_item_id", ignore_index=True)


def rekey_link(link: pd.DataFrame, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """The link rows moved from ML-1M ids to the matched ML-100k ids (unmatched rows dropped)."""
    to_ml100k = dict(zip(crosswalk["ml1m_movie_id"], crosswalk["ml100k_item_id"], strict=True))
    ml1m_ids = link["item_id"].astype(int)
    kept = ml1m_ids.isin(to_ml100k)
    return pd.DataFrame({"item_id": ml1m_ids[kept].map(to_ml100k), "entity_id": link["entity_id"][kept]})


def read_link(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype=str)
    table.columns = [c.split(":")[0] for c in table.columns]
    return table


def genre_agreement(link: pd.DataFrame, kg_path: Path, items: pd.DataFrame) -> tuple[float, int]:
    """Of the item pairs that share a Freebase genre entity, the share that also share a
    MovieLens genre, and the number of such pairs: high when items are keyed right."""
    triples = pd.read_csv(kg_path, sep="\t", dtype=str)
    triples.columns = [c.split(":")[0] for c in triples.columns]
    genre_of = triples[triples["relation_id"] == "film.film.genre"].groupby("head_id")["tail_id"].apply(set)
    movielens_genres = dict(zip(items["item_id"], items["genres"].map(set), strict=True))
    by_genre = defaultdict(list)
    for item, entity in zip(link["item_id"].astype(int), link["entity_id"], strict=True):
        if item in movielens_genres:
            for genre in genre_of.get(entity, ()):
                by_genre[genre].append(item)
    pairs = {tuple(sorted(p)) for members in by_genre.values() for p in combinations(sorted(set(members)), 2)}
    agreeing = sum(bool(movielens_genres[a] & movielens_genres[b]) for a, b in pairs)
    return agreeing / max(len(pairs), 1), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml1m-movies", type=Path, required=True, help="ML-1M movies.dat (GroupLens).")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="The shared data folder.")
    parser.add_argument("--out", type=Path, default=CROSSWALK)
    args = parser.parse_args()
    movielens = args.data_root / "ml-100k"
    items = read_ml100k_items(movielens / "ml-100k.item")
    crosswalk = build_crosswalk(items, read_ml1m_movies(args.ml1m_movies))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    crosswalk.to_csv(args.out, sep="\t", index=False)

    link = read_link(movielens / "ml-100k.link")
    rekeyed = rekey_link(link, crosswalk)
    print(f"wrote {args.out}: {len(crosswalk)} of {len(items)} ML-100k films matched")
    print("  by rule: " + ", ".join(f"{k} {v}" for k, v in crosswalk["match"].value_counts().items()))
    print(f"  link rows re-keyed: {len(rekeyed)} of {len(link)}")
    for label, table in (("as shipped (ML-1M ids read as ML-100k ids)", link), ("re-keyed", rekeyed)):
        share, pairs = genre_agreement(table, movielens / "ml-100k.kg", items)
        print(f"  genre agreement {label}: {share:.1%} of {pairs:,} pairs sharing a Freebase genre")


if __name__ == "__main__":
    main()
