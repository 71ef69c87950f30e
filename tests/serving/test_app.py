"""The HTTP API over a real server: uvicorn on a free loopback port, called with httpx.

The tests run the app in a uvicorn thread inside the test process, over a small hand-made
model (30 users x 60 items), and compare every answer with the service's own answer. The
server process and the `sigerec serve` command are tested in test_server.py.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from http_helpers import (
    DIM,
    DOCUMENTED_PATHS,
    N_ITEMS,
    N_USERS,
    ODD_ITEM,
    ServerThread,
    as_json,
    hand_made_folder,
    user_path,
)
from sigerec.serving.app import create_app
from sigerec.serving.model_folder import FORMAT_VERSION
from sigerec.serving.service import RecommendationService


@pytest.fixture(scope="module")
def service() -> RecommendationService:
    return RecommendationService(hand_made_folder(), index="exact")


@pytest.fixture(scope="module")
def server_url(service):
    """The app as `sigerec serve` builds it for a small catalogue: rankings on the event loop."""
    with ServerThread(create_app(service)) as url:
        yield url


@pytest.fixture(scope="module")
def thread_pool_server_url(service):
    """The app as built for a large catalogue: rankings in the thread pool."""
    with ServerThread(create_app(service, in_threadpool=True)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server_url):
    with httpx.Client(base_url=server_url, timeout=10) as client:
        yield client


def similar_path(item_id: str, k: int | None = None) -> str:
    return f"/items/{quote(item_id, safe='')}/similar" + ("" if k is None else f"?k={k}")


# --- answers -----------------------------------------------------------------------------


def test_health_answers_ok(client):
    answer = client.get("/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_known_users_get_the_services_ranking_with_k_10_by_default(client, service):
    for user in service.folder.user_ids:
        answer = client.get(user_path(user))
        assert answer.status_code == 200, answer.text
        assert answer.json() == as_json(service.for_user(user, 10))
    assert len(client.get(user_path("u0", 3)).json()) == 3


def test_training_items_are_never_recommended(client, service):
    folder = service.folder
    for row, user in enumerate(folder.user_ids):
        seen = {folder.item_ids[i] for i in folder.seen[row].indices}
        returned = [entry["item_id"] for entry in client.get(user_path(user, N_ITEMS)).json()]
        assert len(returned) == N_ITEMS - len(seen) and not seen & set(returned)


def test_a_new_user_is_folded_in_from_liked_items_which_are_excluded(client, service):
    liked = ["i1", ODD_ITEM, "i30"]
    answer = client.post("/recommendations", json={"items": liked, "k": 7})
    assert answer.status_code == 200, answer.text
    assert answer.json() == as_json(service.for_items(liked, 7))
    assert len(answer.json()) == 7 and not set(liked) & {entry["item_id"] for entry in answer.json()}
    assert len(client.post("/recommendations", json={"items": ["i2"]}).json()) == 10


def test_similar_items_exclude_the_item_itself(client, service):
    for item in ("i0", ODD_ITEM, "i59"):
        answer = client.get(similar_path(item, N_ITEMS))
        assert answer.json() == as_json(service.similar_items(item, N_ITEMS))
        assert item not in {entry["item_id"] for entry in answer.json()} and len(answer.json()) == N_ITEMS - 1


def test_titles_are_given_where_known_and_null_otherwise(client, service):
    row = {item: i for i, item in enumerate(service.folder.item_ids)}  # the hand-made titles: even rows only
    for entry in client.get(user_path("u1", N_ITEMS)).json():
        i = row[entry["item_id"]]
        assert entry["title"] == (f"Title {i}" if i % 2 == 0 else None)


def test_model_metadata_describes_what_is_served(client):
    info = client.get("/model").json()
    assert info["model"] == "hand" and info["dataset"] == "made"
    assert (info["n_users"], info["n_items"], info["dim"]) == (N_USERS, N_ITEMS, DIM)
    assert info["format_version"] == FORMAT_VERSION and info["index"] == "exact" and info["max_k"] >= N_ITEMS


# --- errors ------------------------------------------------------------------------------


def test_unknown_ids_answer_404_naming_the_id(client):
    for answer in (
        client.get(user_path("nobody")),
        client.get(similar_path("no-such-item")),
        client.post("/recommendations", json={"items": ["i1", "no-such-item"]}),
    ):
        assert answer.status_code == 404
        assert "nobody" in answer.json()["detail"] or "no-such-item" in answer.json()["detail"]


@pytest.mark.parametrize("k", ["0", "-1", "1001", "ten", "2.5"])
def test_k_outside_1_to_max_k_answers_422(client, service, k):
    assert service.max_k == 1000
    for path in (user_path("u0"), similar_path("i0")):
        answer = client.get(f"{path}?k={k}")
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "k"]
    answer = client.post("/recommendations", json={"items": ["i1"], "k": k})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "k"]


@pytest.mark.parametrize(
    "body", [b"{}", b'{"items": []}', b'{"items": "i1"}', b'{"items": [1, 2]}', b'{"items": ["i1"], "x": 1}']
)
def test_invalid_bodies_answer_422(client, body):
    answer = client.post("/recommendations", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"]


@pytest.mark.parametrize("body", [b"not json", b'{"items": ["i1"', b'{"items": ["\xff\xfe"]}', b"\xff\xfe{}"])
def test_bodies_that_are_not_utf8_json_answer_400(client, body):
    answer = client.post("/recommendations", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["detail"]


def test_a_body_without_a_json_content_type_is_refused_with_the_fix(client):
    answer = client.post("/recommendations", content=b'{"items": ["i1"]}', headers={"Content-Type": ""})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "content-type"]
    assert "Content-Type: application/json" in answer.json()["detail"][0]["msg"]


def test_unexpected_errors_answer_a_json_500(service):
    class Broken(RecommendationService):
        def for_user(self, user_id, k=10):
            raise RuntimeError("a bug")

    with ServerThread(create_app(Broken(service.folder))) as url:
        answer = httpx.get(url + user_path("u0"))
    assert answer.status_code == 500 and "server log" in answer.json()["detail"]


# --- documentation -----------------------------------------------------------------------


def test_openapi_lists_every_route_and_documents_null_titles(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == DOCUMENTED_PATHS
    title = schema["components"]["schemas"]["ScoredItem"]["properties"]["title"]
    assert {"type": "null"} in title["anyOf"]
    k = next(p for p in schema["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"] if p["name"] == "k")
    assert k["schema"]["minimum"] == 1 and k["schema"]["maximum"] == 1000
    assert client.get("/docs").status_code == 200


# --- concurrency -------------------------------------------------------------------------


@pytest.mark.parametrize("url_fixture", ["server_url", "thread_pool_server_url"])
def test_concurrent_requests_get_the_single_threaded_answers(request, url_fixture, service):
    """8 threads x 50 requests mixing users and endpoints, each answer checked against the service."""
    server_url = request.getfixturevalue(url_fixture)
    rng = np.random.default_rng(1)
    users, items = list(service.folder.user_ids), list(service.folder.item_ids)
    plans = []
    for _ in range(8):
        plan = []
        for _ in range(50):
            kind, k = rng.integers(3), int(rng.integers(1, 25))
            if kind == 0:
                user = users[rng.integers(N_USERS)]
                plan.append((("GET", user_path(user, k), None), as_json(service.for_user(user, k))))
            elif kind == 1:
                liked = [items[i] for i in rng.choice(N_ITEMS, size=3, replace=False)]
                plan.append(
                    (("POST", "/recommendations", {"items": liked, "k": k}), as_json(service.for_items(liked, k)))
                )
            else:
                item = items[rng.integers(N_ITEMS)]
                plan.append((("GET", similar_path(item, k), None), as_json(service.similar_items(item, k))))
        plans.append(plan)
    mismatches = []
    start = threading.Barrier(len(plans))

    def run(plan):
        with httpx.Client(base_url=server_url, timeout=10) as client:
            start.wait()
            for (method, path, body), expected in plan:
                answer = client.request(method, path, json=body)
                if answer.status_code != 200 or answer.json() != expected:
                    mismatches.append((method, path, answer.status_code))

    threads = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not mismatches


def test_the_load_benchmark_sends_requests_that_are_all_answered(server_url, service):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import serving_load

    users, items = list(service.folder.user_ids), list(service.folder.item_ids)
    host, port = server_url.removeprefix("http://").split(":")
    for endpoint in serving_load.ENDPOINTS:
        requests = serving_load.build_requests(users, items, endpoint, host, 50, 10, seed=0)
        row = serving_load.measure(host, int(port), requests, clients=4, max_requests=60, duration=10)
        assert (row["requests"], row["errors"]) == (60, 0), row["first_error"]
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
