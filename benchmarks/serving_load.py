"""Load test of `sigerec serve` on loopback: requests per second and p50/p99 latency at 1, 8 and
32 concurrent clients.

Example: python benchmarks/serving_load.py --model models/lightgcn-clothing --train-data ../shared/data/clothing \
             --endpoint user --workers 1 --requests 5000 --duration 10
         python benchmarks/serving_load.py --from-results     (only rewrite the table)

--model is a folder made by `sigerec export`; with --train-data, a missing --model is made
first: LightGCN (or --train-model) trained on that dataset folder with sigerec's defaults
(seed 999; run folder under runs/serving), then exported to --model.

The server runs as a subprocess (`sigerec serve MODEL --no-access-log`, 1 worker unless
--workers), is warmed up, then each concurrency level runs until --requests requests or
--duration seconds, whichever comes first. Each client holds one keep-alive connection and
sends its next request when the previous answer has arrived (closed loop), so latency is the
time from writing a request to reading the whole answer. The clients are coroutines of one
asyncio loop writing pre-encoded requests and parsing only the status line and Content-Length,
so the generator uses a small share of the CPU it shares with the server (reported as
"client CPU"). Endpoints: user (GET /users/{random known user}/recommendations?k=10), items
(POST /recommendations with 1-5 random items), similar (GET /items/{random item}/similar?k=10)
or mix (a third of each).

Rows are merged into benchmarks/results/serving.json: a row replaces the row of the same
endpoint, workers, index and clients, and rows of another model are dropped, so that one
command per endpoint and worker count builds one table. Each row records the command that
reproduces it, the machine, the git commit and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from common import (
    REPO,
    RESULTS,
    add_output_options,
    markdown_table,
    provenance,
    provenance_list,
    run_sigerec,
    train_in_subprocess,
    write_section,
)

ENDPOINTS = ("user", "items", "similar", "mix")


def build_requests(user_ids: list[str], item_ids: list[str], endpoint: str, host: str, count: int, k: int, seed: int):
    """``count`` pre-encoded HTTP/1.1 keep-alive requests for ``endpoint``, drawn at random."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        kind = rng.choice(ENDPOINTS[:3]) if endpoint == "mix" else endpoint
        if kind == "user":
            target, body = f"/users/{quote(rng.choice(user_ids), safe='')}/recommendations?k={k}", b""
        elif kind == "similar":
            target, body = f"/items/{quote(rng.choice(item_ids), safe='')}/similar?k={k}", b""
        else:
            target = "/recommendations"
            body = json.dumps({"items": rng.sample(item_ids, rng.randint(1, 5)), "k": k}).encode()
        method = "POST" if body else "GET"
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        requests.append((head + "\r\n").encode() + body)
    return requests


async def _client(host, port, requests, offset, stop_at, budget, latencies, errors):
    """One keep-alive connection sending requests one after another until the budget or the time is spent."""
    index = offset
    writer = None
    try:
        while budget[0] > 0 and time.perf_counter() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
                writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            budget[0] -= 1
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            try:
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                errors.append(f"{type(error).__name__}: {error}")
                writer.close()
                writer = None  # the server closed the connection: open a new one
                continue
            latencies.append(time.perf_counter() - started)
            if status_line[9:12] != b"200":
                errors.append(status_line.decode(errors="replace").strip())
    finally:
        if writer is not None:
            writer.close()


async def _level(host, port, requests, clients, max_requests, duration):
    latencies: list[float] = []
    errors: list[str] = []
    budget = [max_requests]
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(
        *(
            _client(host, port, requests, i * len(requests) // clients, stop_at, budget, latencies, errors)
            for i in range(clients)
        )
    )
    return latencies, errors, time.perf_counter() - started


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def measure(host, port, requests, clients, max_requests, duration, server_pid=None) -> dict:
    """One concurrency level: throughput, latency percentiles (ms) and who used the CPU."""
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = _cpu_seconds(server_pid) if server_pid else None
    latencies, errors, seconds = asyncio.run(_level(host, port, requests, clients, max_requests, duration))
    after = resource.getrusage(resource.RUSAGE_SELF)
    client_seconds = after.ru_utime + after.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
    latencies.sort()
    row = {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(_percentile(latencies, 50) * 1e3, 3),
        "p90_ms": round(_percentile(latencies, 90) * 1e3, 3),
        "p99_ms": round(_percentile(latencies, 99) * 1e3, 3),
        "max_ms": round(latencies[-1] * 1e3, 3),
        "client_cpu_seconds": round(client_seconds, 2),
    }
    if server_cpu is not None:
        row["server_cpu_seconds"] = round(_cpu_seconds(server_pid) - server_cpu, 2)
    return row


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_server(model: Path, host: str, port: int, workers: int, index: str, log: Path) -> subprocess.Popen:
    """`sigerec serve` in a subprocess; returns once /health answers."""
    command = [sys.executable, "-m", "sigerec.cli.main", "serve", str(model), "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--index", index, "--no-access-log"]
    print("$ sigerec " + " ".join(command[3:]), flush=True)
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"the server did not answer /health within 120 s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def merge_rows(previous: list[dict], new: list[dict]) -> list[dict]:
    """Earlier results of the same model, with the rows of the same endpoint, workers, index and
    clients replaced by the new ones, so that runs of several endpoints build one table."""

    def key(row):
        return (row["endpoint"], row["workers"], row["index"], row["clients"])

    models = {row["model"] for row in new}
    replaced = {key(row) for row in new}
    kept = [row for row in previous if row.get("model") in models and key(row) not in replaced]
    order = {endpoint: i for i, endpoint in enumerate(ENDPOINTS)}
    return sorted(kept + new, key=lambda r: (order[r["endpoint"]], r["workers"], r["index"], r["clients"]))


def results_table(rows: list[dict]) -> str:
    columns = ["endpoint", "workers", "clients", "requests", "requests / s", "p50 ms", "p99 ms", "max ms"]
    columns += ["server CPU ms / request", "errors"]
    return markdown_table(
        columns,
        [
            [
                r["endpoint"],
                r["workers"],
                r["clients"],
                f"{r['requests']:,}",
                f"{r['requests_per_second']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.1f}",
                f"{1e3 * r['server_cpu_seconds'] / r['requests']:.2f}" if "server_cpu_seconds" in r else "",
                r["errors"],
            ]
            for r in rows
        ],
    )


def build_model(model: Path, data: Path, model_name: str, runs: Path) -> None:
    """Train ``model_name`` on ``data`` with sigerec's defaults (seed 999) and export it to ``model``."""
    print(f"{model}: missing; training {model_name} on {data} and exporting it there", flush=True)
    summary = train_in_subprocess(data, model_name, runs)
    run_sigerec("export", summary["run_dir"], "--out", str(model))


def describe_rows(rows: list[dict]) -> str:
    clients = ", ".join(str(c) for c in sorted({r["clients"] for r in rows}))
    return f"{len(rows)} row{'s' * (len(rows) != 1)}: {clients} clients"


def section_content(results: dict) -> str:
    """The table of a results file, after how it was measured: model, commands, machines, commits, dates."""
    rows = results["rows"]
    size = rows[0].get("model_size", {})
    shape = f" ({size['n_users']:,} users, {size['n_items']:,} items, {size['dim']}-d)" if size else ""
    intro = (
        "The server (`sigerec serve --no-access-log`) and the load generator share the machine's cores and "
        f"talk over loopback. Model: {rows[0]['model']}{shape}, k={rows[0]['k']}. "
        "Each client keeps one connection open and sends its next request when the answer has arrived; "
        "latency runs from writing a request to reading the whole answer. Server CPU per request "
        "(user + system time of the server processes) depends less on other load than latency does. "
        "Target: p99 under 10 ms at 8 clients on 2 cores. Measured with (one command per endpoint and "
        "worker count; each merges its rows into `benchmarks/results/serving.json`):"
    )
    return (
        f"## Serving: HTTP latency and throughput\n\n{intro}\n\n{provenance_list(rows, describe_rows)}"
        f"\n\n{results_table(rows)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="A model folder made by `sigerec export`.")
    parser.add_argument("--train-data", type=Path, help="If --model is missing, train a model on this dataset.")
    parser.add_argument("--train-model", default="lightgcn", help="The model --train-data trains (default lightgcn).")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="user")
    parser.add_argument("--clients", default="1,8,32", help="Comma-separated concurrency levels.")
    parser.add_argument("--requests", type=int, default=20_000, help="At most this many requests per level.")
    parser.add_argument("--duration", type=float, default=20.0, help="At most this many seconds per level.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds of load (8 clients) before measuring.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--index", default="auto")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--url", help="Measure a server already running at this URL instead of starting one.")
    parser.add_argument("--seed", type=int, default=0)
    add_output_options(parser, RESULTS / "serving.json")
    args = parser.parse_args()
    if args.from_results:
        write_section(args.doc, "serving", section_content(json.loads(args.results.read_text())))
        return
    if args.model is None:
        parser.error("--model is required (unless --from-results)")
    if not args.model.exists() and args.train_data is not None:
        build_model(args.model, args.train_data, args.train_model, REPO / "runs" / "serving")

    from sigerec.serving.model_folder import ModelFolder

    record = provenance()
    folder = ModelFolder.load(args.model)
    user_ids, item_ids = [str(u) for u in folder.user_ids], [str(i) for i in folder.item_ids]
    del folder
    server = None
    if args.url:
        host, port = args.url.split("://", 1)[-1].rstrip("/").rsplit(":", 1)
        port = int(port)
    else:
        host, port = args.host, _free_port(args.host)
        log = Path(tempfile.mkdtemp(prefix="serving-load-")) / "server.log"
        server = start_server(args.model, host, port, args.workers, args.index, log)
    load_before = os.getloadavg()[0]  # other processes on the same cores change every figure
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/model", timeout=10) as answer:
            served = json.load(answer)
        model = f"{served['model']} on {served['dataset']}"
        size = {"n_users": served["n_users"], "n_items": served["n_items"], "dim": served["dim"]}
        requests = build_requests(user_ids, item_ids, args.endpoint, host, 20_000, args.k, args.seed)
        server_pid = server.pid if server else None
        warm = measure(host, port, requests, 8, 10**9, args.warmup, server_pid)
        print(f"warm-up: {warm['requests']} requests in {warm['seconds']} s", flush=True)
        rows = []
        for clients in [int(c) for c in args.clients.split(",")]:
            row = measure(host, port, requests, clients, args.requests, args.duration, server_pid)
            row.update(endpoint=args.endpoint, workers=args.workers, k=args.k, index=served["index"], model=model)
            row.update(model_size=size, load_average_before=round(load_before, 2), **record)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if server is not None:
            stop_server(server)

    previous = json.loads(args.results.read_text())["rows"] if args.results.exists() else []
    rows = merge_rows(previous, rows)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    write_section(args.doc, "serving", section_content({"rows": rows}))


if __name__ == "__main__":
    main()
