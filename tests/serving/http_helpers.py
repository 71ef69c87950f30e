"""Helpers of the HTTP tests: a hand-made model folder and a real uvicorn server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self
from urllib.parse import quote

import numpy as np
import scipy.sparse as sp
import uvicorn

from sigerec.serving.model_folder import FORMAT_VERSION, ModelFolder

N_USERS, N_ITEMS, DIM = 30, 60, 8
ODD_USER, ODD_ITEM = "team/7 b", "B0/5?x"  # ids that need URL-encoding must still work
# Every path of the API, as the OpenAPI schema names them.
DOCUMENTED_PATHS = {
    "/health",
    "/users/{user_id}/recommendations",
    "/recommendations",
    "/items/{item_id}/similar",
    "/model",
    "/metrics",
    "/admin/reload",
    "/items",
}


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


def user_path(user_id: str, k: int | None = None) -> str:
    return f"/users/{quote(user_id, safe='')}/recommendations" + ("" if k is None else f"?k={k}")


def as_json(recommendations) -> list[dict]:
    """The service's answer as the API writes it."""
    return [{"item_id": r.item_id, "score": r.score, "title": r.title} for r in recommendations]


API_KEY = "test-key-0123456789abcdef"


def write_hand_made_export(out, seed: int = 0):
    """``hand_made_folder`` written as a real model folder, vectors drawn with ``seed``."""
    from sigerec.serving.model_folder import write_model_folder

    folder = hand_made_folder()
    rng = np.random.default_rng(seed)
    return write_model_folder(
        out,
        rng.standard_normal(folder.user_vectors.shape).astype(np.float32),
        rng.standard_normal(folder.item_vectors.shape).astype(np.float32),
        folder.user_ids,
        folder.item_ids,
        folder.seen,
        {"model": "hand", "dataset": f"made-{seed}"},
        folder.titles,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """``sigerec serve MODEL_DIR *options`` in a subprocess on a free port, stopped with Ctrl+C.

    Inside the ``with`` block ``url`` answers /health; ``output`` holds what it printed once
    it has stopped, and ``returncode`` its exit status.
    """

    def __init__(self, model_dir, *options: str, env: dict | None = None, start_timeout: float = 60):
        import os
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "sigerec.cli.main", "serve", str(model_dir), "--port", str(self.port)]
        self.command += list(options)
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.output = ""

    def __enter__(self) -> Self:
        import subprocess

        import httpx

        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        deadline = time.time() + self.start_timeout
        while True:
            assert self.process.poll() is None, self.process.stdout.read()
            assert time.time() < deadline, f"sigerec serve did not answer within {self.start_timeout} s"
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        import signal

        self.process.send_signal(signal.SIGINT)
        self.output, _ = self.process.communicate(timeout=30)
        self.returncode = self.process.returncode
        if exc[0] is not None:
            print(self.output)  # pytest shows it with the failure
