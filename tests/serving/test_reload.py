"""Model updates without downtime: POST /admin/reload and SIGHUP load the new folder beside the
old one and swap it in; requests in flight finish on the old model; a folder that fails its
checks is refused and the old model keeps serving."""

from __future__ import annotations

import shutil
import signal
import threading
import time

import httpx
import pytest

from http_helpers import API_KEY, ServeProcess, ServerThread, as_json, user_path, write_hand_made_export
from sigerec.serving.app import create_app
from sigerec.serving.model_folder import ModelFolder
from sigerec.serving.model_holder import LoadedModel, load_model
from sigerec.serving.service import RecommendationService
from sigerec.serving.settings import ServerSettings

KEY = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two exports of different vectors (seeds 1 and 2) of the same hand-made catalogue."""
    root = tmp_path_factory.mktemp("exports")
    return write_hand_made_export(root / "a", seed=1), write_hand_made_export(root / "b", seed=2)


def answers_of(model_dir, user="u0", k=5):
    return as_json(RecommendationService(ModelFolder.load(model_dir)).for_user(user, k))


@pytest.fixture
def server(exports):
    app = create_app(load_model(exports[0]), settings=ServerSettings(api_key=API_KEY))
    with ServerThread(app) as url, httpx.Client(base_url=url, headers=KEY, timeout=30) as client:
        yield client


def test_reload_switches_to_the_new_folder_and_get_model_names_its_version(server, exports):
    first = server.get("/model").json()
    answer = server.post("/admin/reload", json={"model_dir": str(exports[1])})
    assert answer.status_code == 200
    assert answer.json()["version"] != first["version"] and answer.json()["dataset"] == "made-2"
    assert server.get("/model").json()["version"] == answer.json()["version"]
    assert server.get(user_path("u0", 5)).json() == answers_of(exports[1])
    assert 'sigerec_model_reloads_total{outcome="ok"} 1.0' in server.get("/metrics").text


def test_reload_without_a_folder_reads_the_served_one_again(tmp_path, exports):
    served = shutil.copytree(exports[0], tmp_path / "served")
    app = create_app(load_model(served), settings=ServerSettings(api_key=API_KEY))
    with ServerThread(app) as url, httpx.Client(base_url=url, headers=KEY, timeout=30) as client:
        before = client.get("/model").json()["version"]
        write_hand_made_export(served, seed=2)  # a new export over the served folder
        after = client.post("/admin/reload").json()["version"]
        assert after != before and client.get(user_path("u0", 5)).json() == answers_of(exports[1])


@pytest.mark.parametrize("damage", ["not a model", "corrupt vectors", "missing ids"])
def test_a_folder_that_fails_its_checks_is_refused_and_the_old_model_keeps_serving(server, exports, tmp_path, damage):
    bad = shutil.copytree(exports[1], tmp_path / "bad")
    if damage == "not a model":
        (bad / "manifest.json").unlink()
    elif damage == "corrupt vectors":
        with open(bad / "item_vectors.npy", "r+b") as handle:
            handle.seek(200)
            handle.write(b"\x00" * 16)
    else:
        (bad / "item_ids.txt").unlink()
    version = server.get("/model").json()["version"]

    answer = server.post("/admin/reload", json={"model_dir": str(bad)})

    assert answer.status_code == 409 and "old model keeps serving" in answer.json()["detail"]
    assert server.get("/model").json()["version"] == version
    assert server.get(user_path("u0", 5)).json() == answers_of(exports[0])


def test_requests_in_flight_finish_on_the_model_they_started_with(exports):
    started, release = threading.Event(), threading.Event()

    class Slow(RecommendationService):
        def for_user(self, user_id, k=10):
            started.set()
            release.wait(10)
            return super().for_user(user_id, k)

    old = LoadedModel.of_service(Slow(ModelFolder.load(exports[0])))
    app = create_app(old, in_threadpool=True, settings=ServerSettings(api_key=API_KEY))
    with ServerThread(app) as url, httpx.Client(base_url=url, headers=KEY, timeout=30) as client:
        in_flight: dict = {}
        thread = threading.Thread(target=lambda: in_flight.update(answer=client.get(user_path("u0", 5))))
        thread.start()
        assert started.wait(10)
        assert client.post("/admin/reload", json={"model_dir": str(exports[1])}).status_code == 200
        assert client.get(user_path("u1", 5)).json() == answers_of(exports[1], "u1")  # new requests: new model
        release.set()
        thread.join(10)
    assert in_flight["answer"].status_code == 200
    assert in_flight["answer"].json() == answers_of(exports[0])  # the old model answered it


def wait_for_version(url: str, old_version: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = httpx.get(url + "/model", headers=KEY).json()
        if info["version"] != old_version:
            return info
        time.sleep(0.2)
    raise AssertionError(f"the served version stayed {old_version} for {timeout} s")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_reloads_a_new_export_of_the_served_folder(exports, tmp_path, workers):
    served = shutil.copytree(exports[0], tmp_path / "served")
    (tmp_path / "key").write_text(API_KEY)
    with ServeProcess(served, "--workers", workers, "--api-key-file", str(tmp_path / "key")) as server:
        before = httpx.get(server.url + "/model", headers=KEY).json()["version"]
        write_hand_made_export(served, seed=2)
        if workers == "1":
            server.process.send_signal(signal.SIGHUP)
        else:  # over HTTP: the worker checks the folder, then uvicorn replaces each worker
            assert httpx.post(server.url + "/admin/reload", headers=KEY, timeout=60).status_code == 200
        wait_for_version(server.url, before)
        # With two workers the old one may answer until it is replaced; wait for both.
        deadline = time.time() + 60
        while httpx.get(server.url + user_path("u0", 5), headers=KEY).json() != answers_of(exports[1]):
            assert time.time() < deadline
            time.sleep(0.2)
    assert server.returncode == 0, server.output


def test_a_folder_swapped_while_it_is_read_is_read_again(exports, tmp_path, monkeypatch):
    from sigerec.errors import SigerecError

    served = shutil.copytree(exports[0], tmp_path / "served")
    read_once = ModelFolder._load.__func__
    torn = []

    def export_lands_midway(cls, path):
        if not torn:  # the first read is torn: a new export is swapped in while it runs
            torn.append(path)
            write_hand_made_export(served, seed=2)
            raise SigerecError(f"{path}/item_vectors.npy: checksum mismatch")
        return read_once(cls, path)

    monkeypatch.setattr(ModelFolder, "_load", classmethod(export_lands_midway))
    assert ModelFolder.load(served).manifest["dataset"] == "made-2"
    assert torn == [served]
