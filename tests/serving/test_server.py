"""The server process (``sigerec/serving/server.py``) and the ``sigerec serve`` command: a real
server in a subprocess, the socket, worker start-up and the errors before anything listens."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from http_helpers import ServeProcess, ServerThread, as_json, hand_made_folder, user_path
from sigerec.cli.main import app as cli_app
from sigerec.errors import SigerecError
from sigerec.serving.app import create_app
from sigerec.serving.model_folder import ModelFolder, export_run
from sigerec.serving.server import INDEX_VARIABLE, MODEL_DIR_VARIABLE, app_from_environment, listening_socket
from sigerec.serving.service import RecommendationService


@pytest.fixture(scope="module")
def service() -> RecommendationService:
    return RecommendationService(hand_made_folder(), index="exact")


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


def test_sigerec_serve_answers_over_http_until_interrupted(exported_model):
    with ServeProcess(exported_model) as server:
        service = RecommendationService(ModelFolder.load(exported_model))
        answer = httpx.get(server.url + user_path("0", 2))
        assert answer.status_code == 200 and answer.json() == as_json(service.for_user("0", 2))
        assert httpx.get(server.url + "/model").json()["model"] == "lightgcn"
    assert server.returncode == 0, server.output
    assert f"listening on {server.url} (API docs: {server.url}/docs)" in server.output
    assert "WARNING" not in server.output  # loopback without a key is fine


def test_serve_warns_when_it_listens_beyond_loopback_without_a_key(exported_model):
    with ServeProcess(exported_model, "--host", "0.0.0.0") as server:
        assert httpx.get(server.url + "/health").status_code == 200
    assert "WARNING: listening on 0.0.0.0 without an API key" in server.output


@pytest.mark.parametrize("key", [None, "short"])
def test_serve_refuses_a_missing_or_weak_key_file_before_listening(exported_model, tmp_path, key):
    if key is not None:
        (tmp_path / "key").write_text(key)
    result = cli.invoke(cli_app, ["serve", str(exported_model), "--api-key-file", str(tmp_path / "key")])
    assert result.exit_code == 2 and "--api-key-file" in result.output and "Traceback" not in result.output


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
    assert app.state.holder.current.metadata()["index"] == "faiss"
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


def test_serve_refuses_a_missing_encoder_copy_and_passes_a_given_one_to_its_workers(
    exported_model, tmp_path, monkeypatch
):
    from sigerec.serving import server
    from sigerec.serving.new_items import TEXT_MODEL_VARIABLE

    missing = cli.invoke(cli_app, ["serve", str(exported_model), "--text-model", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "--text-model" in missing.output and "no such file" in missing.output
    started = []
    monkeypatch.setattr(server, "run_server", lambda *args, **kwargs: started.append(kwargs))
    monkeypatch.delenv(TEXT_MODEL_VARIABLE, raising=False)
    (tmp_path / "minilm").mkdir()
    result = cli.invoke(cli_app, ["serve", str(exported_model), "--text-model", str(tmp_path / "minilm")])
    assert result.exit_code == 0 and started
    assert os.environ[TEXT_MODEL_VARIABLE] == str((tmp_path / "minilm").resolve())
    monkeypatch.delenv(TEXT_MODEL_VARIABLE)
