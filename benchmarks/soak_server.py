"""The server side of benchmarks/soak.py: checking that `sigerec serve` has the API the test
needs, reloading it on a schedule (``POST /admin/reload`` or SIGHUP) and checking that each
reload took, and sampling its resident memory.

A reload is checked by what the server then serves: after a switch of folder, ``GET /model``
shows the new version; after a SIGHUP (which has no answer of its own) the server's count of
successful reloads in ``/metrics`` moves; after a reload of an empty folder the answer is 409
and the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from soak_traffic import Tally, encode_request, exchange, key_header

HTTP_RELOAD, SIGHUP, REJECTED_RELOAD = "POST /admin/reload", "SIGHUP", "POST /admin/reload (empty folder)"
RELOADS_OK_METRIC = 'sigerec_model_reloads_total{outcome="ok"}'


def authorised(host: str, key: str | None, method: str, target: str, payload: dict | None = None) -> bytes:
    """A request of the test's own (not of the mix), with the API key unless ``key`` is None."""
    body = json.dumps(payload).encode() if payload is not None else None
    return encode_request(host, method, target, body, key_header(key) if key else "")


def missing_api(host: str, port: int, key: str) -> list[str]:
    """What the server lacks of the API this test exercises (issue 16), in words; empty if nothing."""

    async def check() -> list[str]:
        problems = []
        status, _, _ = await exchange(host, port, authorised(host, None, "GET", "/model"))
        if status != 401:
            problems.append(f"GET /model without an API key answered {status}, not 401")
        status, headers, body = await exchange(host, port, authorised(host, key, "GET", "/model"))
        if status != 200 or "version" not in json.loads(body):
            problems.append(f"GET /model with the API key answered {status} without a version")
        if b"x-request-id" not in headers:
            problems.append("answers carry no X-Request-ID")
        status, _, body = await exchange(host, port, authorised(host, key, "GET", "/openapi.json"))
        if status != 200 or "/admin/reload" not in json.loads(body).get("paths", {}):
            problems.append("the OpenAPI schema has no /admin/reload")
        return problems

    return asyncio.run(check())


@dataclass
class Run:
    """The shared state of one soak run: when it stops (earlier if the server dies) and its records."""

    started: float
    stop_at: float
    tally: Tally = field(default_factory=Tally)
    rss_samples: list = field(default_factory=list)  # [seconds since start, KiB]
    reloads: list = field(default_factory=list)
    server_exit: str | None = None


def reload_plan(reloads: int, warmup: float, duration: float, folders: list[Path]) -> list[tuple[float, str, Path]]:
    """(seconds after the start, how, folder) of each reload: evenly spread from ``warmup`` on,
    alternating between the folders (the first is served at start), the middle one by SIGHUP."""
    plan, served = [], 0
    for index in range(reloads):
        at = warmup + index * (duration - warmup) / reloads
        if index == reloads // 2 and reloads > 1:
            plan.append((at, SIGHUP, folders[served]))  # re-reads the folder being served
        else:
            served = 1 - served
            plan.append((at, HTTP_RELOAD, folders[served]))
    return plan


def read_rss_kib(pid: int) -> int | None:
    """The resident memory of a process in KiB; None once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), None)


async def sample_rss(server, every: float, run: Run) -> None:
    """Sample the server's RSS until the run stops; stop the run early if the server exits."""
    while time.perf_counter() < run.stop_at:
        rss = read_rss_kib(server.pid)
        if rss is None or server.poll() is not None:
            run.server_exit = f"the server exited with code {server.wait()} during the run"
            run.stop_at = time.perf_counter()
            return
        run.rss_samples.append([round(time.perf_counter() - run.started, 2), rss])
        await asyncio.sleep(min(every, max(0.0, run.stop_at - time.perf_counter())))


async def model_version(host: str, port: int, key: str) -> str | None:
    _, _, body = await exchange(host, port, authorised(host, key, "GET", "/model"))
    return json.loads(body).get("version")


async def reloads_done(host: str, port: int, key: str) -> float:
    """The server's count of successful reloads, from /metrics (a SIGHUP has no answer of its own)."""
    _, _, body = await exchange(host, port, authorised(host, key, "GET", "/metrics"))
    for line in body.decode().splitlines():
        if line.startswith(RELOADS_OK_METRIC):
            return float(line.split()[-1])
    return 0.0


async def reload_once(host: str, port: int, key: str, server, how: str, folder: Path, timeout: float) -> dict:
    """Apply one reload and check that it took: a new version served after a switch of folder,
    one more successful reload after a SIGHUP, 409 and the old version after an empty folder."""
    before = await model_version(host, port, key)
    started = time.perf_counter()
    status, detail = None, ""
    if how == SIGHUP:
        done = await reloads_done(host, port, key)
        server.send_signal(signal.SIGHUP)
        # The server reloads in its own time: wait for its count of reloads to move.
        applied = False
        while not applied and time.perf_counter() - started < timeout:
            await asyncio.sleep(0.1)
            applied = await reloads_done(host, port, key) > done
        version = await model_version(host, port, key)
    else:
        status, _, body = await exchange(
            host, port, authorised(host, key, "POST", "/admin/reload", {"model_dir": str(folder)}), timeout
        )
        answer = json.loads(body) if body.startswith(b"{") else {}
        detail = str(answer.get("detail", ""))[:300]
        version = await model_version(host, port, key)
        if how == REJECTED_RELOAD:
            applied = status == 409 and version == before
        else:
            applied = status == 200 and answer.get("version") == version and version not in (None, before)
    return {
        "how": how,
        "model_dir": folder.name,
        "status": status,
        "version_before": before,
        "version_after": version,
        "seconds": round(time.perf_counter() - started, 3),
        "applied": applied,
        "detail": detail,
    }


async def reloader(host, port, key, server, plan, empty_folder: Path, timeout: float, run: Run) -> None:
    for at, how, folder in plan:
        await asyncio.sleep(max(0.0, run.started + at - time.perf_counter()))
        if time.perf_counter() >= run.stop_at:
            return
        steps = [(how, folder)] + ([(REJECTED_RELOAD, empty_folder)] if how == SIGHUP else [])
        for step, step_folder in steps:
            began = time.perf_counter()
            try:
                record = await reload_once(host, port, key, server, step, step_folder, timeout)
            except (OSError, EOFError, ValueError, TimeoutError) as error:  # e.g. the server died
                record = {"how": step, "model_dir": step_folder.name, "status": None, "version_before": None}
                record |= {"version_after": None, "applied": False, "detail": repr(error)}
                record["seconds"] = round(time.perf_counter() - began, 3)
            record["at_seconds"] = round(time.perf_counter() - run.started, 2)
            run.reloads.append(record)
            print(
                f"[{record['at_seconds']:6.1f} s] {step} {step_folder.name}: {record['status'] or ''} in "
                f"{record['seconds']:.2f} s, version {record['version_before']} -> {record['version_after']}"
                f"{'' if record['applied'] else ' NOT APPLIED ' + record['detail']}",
                flush=True,
            )
