"""A server that holds against careless and hostile clients: the API key, size limits, request
ids, metrics, and no stack trace in any answer. In-process (Starlette's TestClient)."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from http_helpers import API_KEY, N_ITEMS, hand_made_folder, user_path
from sigerec.serving.app import create_app
from sigerec.serving.service import RecommendationService
from sigerec.serving.settings import ServerSettings

KEYED = ServerSettings(api_key=API_KEY)


@pytest.fixture(scope="module")
def service() -> RecommendationService:
    return RecommendationService(hand_made_folder(), index="exact")


@pytest.fixture(scope="module")
def keyed(service):
    with TestClient(create_app(service, settings=KEYED)) as client:
        yield client


@pytest.fixture(scope="module")
def open_client(service):
    with TestClient(create_app(service)) as client:
        yield client


# --- the API key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/model", user_path("u0"), "/items/i1/similar", "/metrics", "/openapi.json", "/docs", "/nowhere"]
)
def test_every_route_but_health_needs_the_key(keyed, path):
    answer = keyed.get(path)
    assert answer.status_code == 401
    assert "API key" in answer.json()["detail"] and answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers", [{"Authorization": f"Bearer {API_KEY}"}, {"X-API-Key": API_KEY}, {"authorization": f"bearer {API_KEY}"}]
)
def test_the_key_is_accepted_as_bearer_token_or_x_api_key(keyed, headers):
    assert keyed.get(user_path("u0"), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": API_KEY[:-1]}, {"Authorization": API_KEY}],
)
def test_a_wrong_key_answers_401(keyed, headers):
    assert keyed.get("/model", headers=headers).status_code == 401


def test_health_answers_without_the_key(keyed):
    assert keyed.get("/health").json() == {"status": "ok"}


def test_post_without_the_key_is_refused_before_the_body_is_read(keyed):
    assert keyed.post("/recommendations", json={"items": ["i1"]}).status_code == 401


def test_the_schema_of_a_keyed_server_documents_the_key_and_401(keyed):
    schema = keyed.get("/openapi.json", headers={"X-API-Key": API_KEY}).json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "401" in schema["paths"]["/model"]["get"]["responses"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_reload_over_http_needs_a_server_with_a_key(open_client):
    assert open_client.post("/admin/reload").status_code == 403


@pytest.mark.parametrize("key", ["short", "has a space in it 0123456789"])
def test_weak_or_malformed_keys_are_refused_at_start(tmp_path, key):
    from sigerec.errors import SigerecError
    from sigerec.serving.settings import read_api_key

    (tmp_path / "key").write_text(key)
    with pytest.raises(SigerecError, match="at least 16 printable characters"):
        read_api_key(tmp_path / "key")


# --- limits --------------------------------------------------------------------------------


def test_k_above_the_documented_maximum_answers_422(open_client):
    schema = open_client.get("/openapi.json").json()
    (k,) = [p for p in schema["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"] if p["name"] == "k"]
    assert k["schema"]["maximum"] == 1000
    assert open_client.get(user_path("u0", k=1001)).status_code == 422
    assert open_client.post("/recommendations", json={"items": ["i1"], "k": 1001}).status_code == 422


def test_more_liked_items_than_the_limit_answer_422(service):
    settings = ServerSettings(max_items=5)
    with TestClient(create_app(service, settings=settings)) as client:
        answer = client.post("/recommendations", json={"items": [f"i{i}" for i in range(6)]})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "items"]
        assert client.post("/recommendations", json={"items": [f"i{i}" for i in range(5)]}).status_code == 200


def test_a_body_over_the_limit_answers_413_whether_its_length_is_declared_or_not(open_client):
    body = json.dumps({"items": ["i1"] * 20_000}).encode()  # about 120 KB, over the 64 KiB default
    assert (
        open_client.post("/recommendations", content=body, headers={"Content-Type": "application/json"}).status_code
        == 413
    )

    def chunks():
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    answer = open_client.post("/recommendations", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "larger than" in answer.json()["detail"]


def test_unknown_fields_answer_422(open_client):
    answer = open_client.post("/recommendations", json={"items": ["i1"], "user": "u0"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["type"] == "extra_forbidden"


# --- request ids, logs, errors -------------------------------------------------------------


def test_every_answer_carries_a_request_id_and_a_plain_client_id_is_kept(open_client):
    first, second = open_client.get("/health"), open_client.get("/nowhere")
    assert len({first.headers["x-request-id"], second.headers["x-request-id"]}) == 2
    assert open_client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert open_client.get("/health", headers={"X-Request-ID": "<script>"}).headers["x-request-id"] != "<script>"


def test_each_request_is_one_json_access_log_line(open_client, caplog):
    with caplog.at_level(logging.INFO, logger="sigerec.access"):
        answer = open_client.get(user_path("u0", k=3))
    (record,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sigerec.access"]
    assert record["request_id"] == answer.headers["x-request-id"]
    assert record["status"] == 200 and record["method"] == "GET" and record["query"] == "k=3"
    assert record["duration_ms"] >= 0


def test_an_unexpected_error_answers_500_without_any_of_the_error(service, caplog):
    class Broken(RecommendationService):
        def for_user(self, user_id, k=10):
            raise RuntimeError("secret internals /etc/passwd")

    app = create_app(Broken(service.folder))
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR, "sigerec.serving"):
        answer = client.get(user_path("u0"))
    assert answer.status_code == 500
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert answer.headers["x-request-id"] in answer.json()["detail"]
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)  # the log has it


def test_cors_is_off_unless_an_origin_is_given(service, open_client):
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in open_client.options("/model", headers=preflight).headers
    settings = ServerSettings(api_key=API_KEY, cors_origins=("https://shop.example",))
    with TestClient(create_app(service, settings=settings)) as client:
        answer = client.options("/model", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://shop.example"


# --- metrics -------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_and_status_and_name_the_model(service):
    with TestClient(create_app(service)) as client:
        client.get(user_path("u0"))
        client.get(user_path("nobody"))
        client.get(user_path("u1"))
        text = client.get("/metrics").text
    route = 'route="/users/{user_id:path}/recommendations"'
    assert f'sigerec_http_requests_total{{method="GET",{route},status="200"}} 2.0' in text
    assert f'sigerec_http_requests_total{{method="GET",{route},status="404"}} 1.0' in text
    assert "sigerec_http_request_duration_seconds_bucket" in text
    assert f"sigerec_model_items {float(N_ITEMS)}" in text
    assert 'sigerec_model_info{dataset="made",model="hand",version="' in text


def test_unmatched_paths_share_one_metrics_label(open_client):
    for n in range(3):
        open_client.get(f"/random-{n}")
    text = open_client.get("/metrics").text
    assert 'route="unmatched"' in text and "random-1" not in text
