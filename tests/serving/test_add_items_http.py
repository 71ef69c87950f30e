"""POST /items: new items join a running server at once (recommendations, similar items) and
are saved in the model folder; what cannot be added is refused with a 4xx."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from http_helpers import API_KEY, ServeProcess, ServerThread, hand_made_folder, user_path
from new_item_folders import GENRES, ITEM_IDS, items_ready_folder, write_items_ready_export
from sigerec.serving.app import create_app
from sigerec.serving.model_folder import ModelFolder
from sigerec.serving.service import RecommendationService
from sigerec.serving.settings import ServerSettings

KEY = {"X-API-Key": API_KEY}
NEW = {"movie": "new1", "genres": GENRES[2], "title": "A new film"}  # m2's genres: with k=1, m2's vector


def test_items_added_to_a_running_server_are_recommended_and_similar_at_once(tmp_path):
    model = write_items_ready_export(tmp_path / "model")
    (tmp_path / "key").write_text(API_KEY)
    with (
        ServeProcess(model, "--api-key-file", str(tmp_path / "key")) as server,
        httpx.Client(base_url=server.url, headers=KEY, timeout=30) as client,
    ):
        answer = client.post("/items", json={"items": [NEW]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == 1 and answer.json()["n_items"] == len(ITEM_IDS) + 1

        assert client.get("/items/new1/similar?k=1").json()[0]["item_id"] == "m2"
        assert client.get("/items/m2/similar?k=1").json()[0] == {"item_id": "new1", "score": pytest.approx(1.0),
                                                                   "title": "A new film"}  # fmt: skip
        user = next(u for u in range(12) if "m2" not in _seen(model, u))  # new1 scores as m2 for this user
        ranked = {r["item_id"]: r["score"] for r in client.get(user_path(f"u{user}", len(ITEM_IDS) + 1)).json()}
        assert ranked["new1"] == pytest.approx(ranked["m2"])
        liked = client.post("/recommendations", json={"items": ["new1"], "k": 3})
        assert liked.status_code == 200 and "new1" not in [r["item_id"] for r in liked.json()]

        assert client.post("/items", json={"items": [NEW]}).status_code == 409
        assert client.post("/items", json={"items": [{"movie": "x"}]}).status_code == 422
        assert httpx.post(server.url + "/items", json={"items": [NEW]}).status_code == 401
    saved = ModelFolder.load(model)  # the server saved the folder's new version
    assert list(saved.item_ids) == [*ITEM_IDS, "new1"]
    np.testing.assert_array_equal(saved.item_vectors[-1], saved.item_vectors[2])


def _seen(model, user: int) -> set[str]:
    folder = ModelFolder.load(model)
    return {str(folder.item_ids[i]) for i in folder.seen[user].indices}


def serve(folder: ModelFolder, api_key: str | None = API_KEY):
    app = create_app(RecommendationService(folder), settings=ServerSettings(api_key=api_key))
    return ServerThread(app)


def test_a_model_that_cannot_take_new_items_and_a_server_without_key_answer_403():
    with serve(hand_made_folder()) as url:  # exported without a cold-item record
        answer = httpx.post(url + "/items", json={"items": [{"item_id": "x"}]}, headers=KEY)
        assert answer.status_code == 403 and "export the run again" in answer.json()["detail"]
    with serve(items_ready_folder(), api_key=None) as url:
        assert httpx.post(url + "/items", json={"items": [NEW]}).status_code == 403


def test_bad_bodies_answer_422_and_get_model_lists_the_fields(tmp_path):
    with serve(items_ready_folder()) as url, httpx.Client(base_url=url, headers=KEY) as client:
        assert client.get("/model").json()["new_item_fields"] == ["movie", "genres"]
        for body in ({"items": []}, {"items": [{"movie": "a", "genres": True}]}, {"items": [NEW] * 1001}, {}):
            assert client.post("/items", json=body).status_code in (413, 422), body
        no_content = client.post("/items", json={"items": [{"movie": "a", "genres": "western"}]})
        assert no_content.status_code == 422 and "no content" in no_content.json()["detail"]
        example = client.get("/openapi.json").json()["components"]["schemas"]["NewItemsRequest"]["examples"][0]
        assert set(example["items"][0]) == {"movie", "genres"}
        assert client.post("/items", json={"items": [{"movie": "n9", "genres": "comedy"}]}).status_code == 200
        assert client.get("/model").json()["n_items"] == len(ITEM_IDS) + 1  # served from memory, not saved


def test_post_items_has_its_own_larger_body_limit():
    items = [{"movie": f"n{i}", "genres": "comedy", "title": "t" * 100} for i in range(1000)]  # about 130 KB
    with serve(items_ready_folder()) as url, httpx.Client(base_url=url, headers=KEY, timeout=60) as client:
        assert client.post("/items", json={"items": items}).status_code == 200
        huge = [{**item, "title": "t" * 5000} for item in items]  # about 5 MB
        assert client.post("/items", json={"items": huge}).status_code == 413
        assert (
            client.post("/recommendations", json={"items": ["m1"] * 1000, "k": 1, "x": "y" * 70_000}).status_code == 413
        )
