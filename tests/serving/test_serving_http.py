"""The HTTP API over a real server: uvicorn on a free loopback port, called with httpx.

Most tests run the app in a uvicorn thread inside the test process, over a small hand-made
model (30 users x 60 items); one starts the actual `sigerec serve` command in a subprocess
on an exported LightGCN run. Every answer is compared with the service's own answer.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import scipy.sparse as sp
import uvicorn
from typer.testing import CliRunner

from sigerec.cli.main import app as cli_app
from sigerec.errors import SigerecError
from sigerec.serving.app import create_app
from sigerec.serving.model_folder import FORMAT_VERSION, ModelFolder, export_run
from sigerec.serving.server import INDEX_VARIABLE, MODEL_DIR_VARIABLE, app_from_environment, listening_socket
from sigerec.serving.service import RecommendationService

N_USERS, N_ITEMS, DIM = 30, 60, 8
ODD_USER, ODD_ITEM = "team/7 b", "B0/5?x"  # ids that need URL-encoding must still work


def hand_made_folder() -> ModelFolder:
    """Random vectors, 5 training items per user, titles for the even items only."""
    rng = np.random.default_rng(0)
    user_ids = [f"u{u}" for u in range(N_USERS)]
    item_ids = [f"i{i}" for i in range(N_ITEMS)]
    user_ids[7], item_ids[5] = ODD_USER, ODD_ITEM
    seen = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
    for user in range(N_USERS):
        seen[user, rng.choice(N_ITEMS, size=5, replace=False)] = 1
    return ModelFolder(
        user_vectors=rng.standard_normal((N_USERS, DIM)).astype(np.float32),
        item_vectors=rng.standard_normal((N_ITEMS, DIM)).astype(np.float32),
        user_ids=np.array(user_ids, dtype=object),
        item_ids=np.array(item_ids, dtype=object),
        titles=np.array([f"Title {i}" if i % 2 == 0 else "" for i in range(N_ITEMS)], dtype=object),
        seen=sp.csr_matrix(seen),
        manifest={"format_version": FORMAT_VERSION, "model": "hand", "dataset": "made", "metrics": {"test": {}}},
    )


class ServerThread:
    """A real uvicorn server for ``app`` in a daemon thread, on ``sock`` or on a free loopback port."""

    def __init__(self, app, sock: socket.socket | None = None):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.sockets = None if sock is None else [sock]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": self.sockets}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = (self.sockets or self.server.servers[0].sockets)[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


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


def as_json(recommendations) -> list[dict]:
    """The service's answer as the API writes it."""
    return [{"item_id": r.item_id, "score": r.score, "title": r.title} for r in recommendations]


def user_path(user_id: str, k: int | None = None) -> str:
    return f"/users/{quote(user_id, safe='')}/recommendations" + ("" if k is None else f"?k={k}")


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
    "body",
    [b"not json", b"{}", b'{"items": []}', b'{"items": "i1"}', b'{"items": [1, 2]}', b'{"items": ["i1"], "x": 1}'],
)
def test_malformed_bodies_answer_422(client, body):
    answer = client.post("/recommendations", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"]


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
    assert set(schema["paths"]) == {
        "/health",
        "/users/{user_id}/recommendations",
        "/recommendations",
        "/items/{item_id}/similar",
        "/model",
    }
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


# --- the `sigerec serve` command ---------------------------------------------------------

cli = CliRunner()


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory) -> Path:
    """A LightGCN run of 1 epoch on 4 users x 6 items, exported with titles for two items."""
    from sigerec.training import runner

    folder = tmp_path_factory.mktemp("serve")
    data = folder / "tiny"
    data.mkdir()
    rows = [(u, (u + o) % 6, 0) for u in range(4) for o in range(4)]
    rows += [(u, (u + 4) % 6, 1) for u in range(4)] + [(u, (u + 5) % 6, 2) for u in range(4)]
    (data / "tiny.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{s}\n" for u, i, s in rows))
    config = runner.resolve_config("lightgcn", str(data), overrides={"epochs": 1, "train_batch_size": 8})
    run, _ = runner.train(config, folder / "runs")
    (folder / "items.csv").write_text("item,name\n0,Zero\n3,Three\n")
    return export_run(run.path, folder / "model", folder / "items.csv", "item", "name")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigerec_serve_answers_over_http_until_interrupted(exported_model):
    port = free_port()
    command = [sys.executable, "-m", "sigerec.cli.main", "serve", str(exported_model), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.time() < deadline, "sigerec serve did not answer within 60 s"
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        service = RecommendationService(ModelFolder.load(exported_model))
        answer = httpx.get(url + user_path("0", 2))
        assert answer.status_code == 200 and answer.json() == as_json(service.for_user("0", 2))
        assert httpx.get(url + "/model").json()["model"] == "lightgcn"
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0, output
    assert f"listening on {url} (API docs: {url}/docs)" in output


def test_keep_alive_answers_on_the_serve_socket_do_not_wait_for_delayed_acks(service):
    """With Nagle's algorithm on, each answer after the first on a connection took ~40 ms (uvicorn #3149)."""
    with (
        ServerThread(create_app(service), listening_socket("127.0.0.1", 0)) as url,
        httpx.Client(base_url=url) as client,
    ):
        client.get("/health")
        started = time.perf_counter()
        for _ in range(10):
            client.get(user_path("u0"))
        assert (time.perf_counter() - started) / 10 < 0.02


def test_worker_processes_build_the_app_from_the_environment(exported_model, monkeypatch):
    monkeypatch.setenv(MODEL_DIR_VARIABLE, str(exported_model))
    monkeypatch.setenv(INDEX_VARIABLE, "faiss")
    app = app_from_environment()
    assert app.state.service.metadata()["index"] == "faiss"
    monkeypatch.delenv(MODEL_DIR_VARIABLE)
    with pytest.raises(SigerecError, match=MODEL_DIR_VARIABLE):
        app_from_environment()


def test_serve_refuses_a_folder_that_is_not_a_model(tmp_path):
    result = cli.invoke(cli_app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "error:" in result.output and "no such model folder" in result.output


def test_serve_refuses_a_port_in_use(exported_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.invoke(cli_app, ["serve", str(exported_model), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_an_unknown_index_kind(exported_model):
    result = cli.invoke(cli_app, ["serve", str(exported_model), "--index", "annoy"])
    assert result.exit_code == 2 and "index must be one of" in result.output


def test_serve_help_gives_an_example():
    result = cli.invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Example: sigerec serve" in result.output
