"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis + Hypothesis).

Schemathesis generates requests for every operation, valid ones (from the schema, starting
with its examples, which are real ids of the served model) and invalid ones (wrong types,
missing or unknown fields, bad or missing API keys), and checks each answer: never a 5xx, a
status the schema documents for that route, a body that matches the documented schema, and
401 for a wrong key. Run in-process (ASGI), with a fixed seed, so CI sees the same cases.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from http_helpers import API_KEY, hand_made_folder
from sigerec.serving.app import create_app
from sigerec.serving.service import RecommendationService
from sigerec.serving.settings import ServerSettings

KEY = {"X-API-Key": API_KEY}
# An invalid request may also be refused for its size (413), besides schemathesis' usual 4xx.
REJECTIONS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}})
service = RecommendationService(hand_made_folder(), index="exact")
keyed_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(service, settings=ServerSettings(api_key=API_KEY)), headers=KEY, config=CONFIG
)
open_schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service), config=CONFIG)
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@keyed_schema.parametrize()
@FUZZ
def test_a_keyed_server_answers_every_generated_request_as_documented(case):
    case.call_and_validate(headers=KEY)


@open_schema.parametrize()
@FUZZ
def test_a_server_without_a_key_answers_every_generated_request_as_documented(case):
    case.call_and_validate()


def test_the_schemas_examples_are_real_ids_that_get_real_answers():
    from fastapi.testclient import TestClient

    with TestClient(create_app(service)) as client:
        schema = client.get("/openapi.json").json()
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                if method != "get" or path == "/metrics":
                    continue
                url = path
                for parameter in operation.get("parameters", []):
                    url = url.replace("{" + parameter["name"] + "}", str(parameter["example"]))
                assert client.get(url).status_code == 200, url
        body = schema["components"]["schemas"]["NewUserRequest"]["examples"][0]
        assert client.post("/recommendations", json=body).status_code == 200
