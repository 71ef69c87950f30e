"""The ML-100k <-> ML-1M crosswalk that re-keys RecBole's Freebase link file to ML-100k items.

The committed crosswalk is checked against the real files in ../shared/data: as shipped, the
link attaches Harrison Ford's films to unrelated ML-100k items; re-keyed, to his films.
"""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import movielens_crosswalk as crosswalk_script
import prepare_data

HARRISON_FORD = "m.0c0k1"  # his Freebase entity


@pytest.fixture(scope="module")
def movielens(shared_data) -> dict:
    folder = shared_data / "ml-100k"
    items = crosswalk_script.read_ml100k_items(folder / "ml-100k.item")
    triples = pd.read_csv(folder / "ml-100k.kg", sep="\t", dtype=str)
    triples.columns = ["head", "relation", "tail"]
    return {
        "folder": folder,
        "items": items,
        "titles": dict(zip(items["item_id"], items["title"], strict=True)),
        "link": crosswalk_script.read_link(folder / "ml-100k.link"),
        "crosswalk": pd.read_csv(prepare_data.CROSSWALK, sep="\t"),
        "triples": triples,
    }


def _films_with(movielens: dict, link: pd.DataFrame, actor: str) -> set[str]:
    triples = movielens["triples"]
    films = set(triples.loc[triples["tail"] == actor, "head"]) | set(triples.loc[triples["head"] == actor, "tail"])
    linked = link[link["entity_id"].isin(films)]["item_id"].astype(int)
    return {movielens["titles"].get(item, "?") for item in linked}


def test_crosswalk_is_one_to_one_and_covers_most_films(movielens):
    crosswalk = movielens["crosswalk"]
    assert crosswalk["ml100k_item_id"].is_unique and crosswalk["ml1m_movie_id"].is_unique
    assert set(crosswalk["match"]) <= {"exact", "main-title", "year+-1"}
    assert len(crosswalk) > 0.85 * len(movielens["items"])


def test_link_as_shipped_attaches_facts_to_the_wrong_films(movielens):
    titles = _films_with(movielens, movielens["link"], HARRISON_FORD)
    assert "Raiders of the Lost Ark" not in titles and "Twelve Monkeys" in titles


def test_rekeyed_link_attaches_an_actor_to_his_own_films(movielens):
    rekeyed = crosswalk_script.rekey_link(movielens["link"], movielens["crosswalk"])
    titles = _films_with(movielens, rekeyed, HARRISON_FORD)
    assert {"Raiders of the Lost Ark", "Blade Runner", "Fugitive, The", "Air Force One", "Witness"} <= titles
    assert "Twelve Monkeys" not in titles


def test_rekeyed_films_share_movielens_genres_far_more_often(movielens):
    kg_file = movielens["folder"] / "ml-100k.kg"
    shipped, _ = crosswalk_script.genre_agreement(movielens["link"], kg_file, movielens["items"])
    rekeyed_link = crosswalk_script.rekey_link(movielens["link"], movielens["crosswalk"])
    rekeyed, pairs = crosswalk_script.genre_agreement(rekeyed_link, kg_file, movielens["items"])
    assert pairs > 100_000
    assert rekeyed > shipped + 0.1


def test_title_matching_rules():
    ml100k = pd.DataFrame(
        {"item_id": [1, 2, 3, 4], "title": ["Seven (Se7en)", "Usual Suspects, The", "Howling, The", "Twin"],
         "year": [1995, 1995, 1981, 1990], "genres": [[]] * 4}
    )  # fmt: skip
    ml1m = pd.DataFrame(
        {"movie_id": [47, 50, 1130, 7, 8], "title": ["Seven (Se7en)", "Usual Suspects, The", "Howling, The", "Twin", "Twin"],
         "year": [1995, 1995, 1980, 1990, 1990]}
    )  # fmt: skip
    matched = crosswalk_script.build_crosswalk(ml100k, ml1m)
    assert matched.values.tolist() == [[1, 47, "exact"], [2, 50, "exact"], [3, 1130, "year+-1"]]  # "Twin" is ambiguous
