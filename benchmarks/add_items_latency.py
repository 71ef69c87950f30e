"""Latency of adding items to a running server (POST /items), and of recommendations meanwhile.

Example: python benchmarks/add_items_latency.py --data .bench_data/ml100k-s1 \
             --items ../shared/data/ml-100k/ml-100k.item

Trains --model (default sige, --epochs 2, cold_item_rule=warm_neighbours) on --data, a dataset
whose features were made by `sigerec encode` (ML-100k: text of title, year and genres with the
local all-MiniLM-L6-v2, and genre labels), exports it, and serves it (`sigerec serve`, 1 worker,
an API key). New items are rows of --items (the catalogue the features were encoded from)
under fresh ids, so every request adds real, never-seen items. Measured:

- the first POST /items (1 item), which also loads the text encoder, on its own;
- POST /items with 1 item and with 100 items: median and p95 over --repeats requests each;
- GET /users/{id}/recommendations?k=10 from --clients closed-loop clients for --duration seconds
  (serving_load.py's client), without additions, then while one client adds items back to back
  (1 per request, then 100 per request): p50 and p99.

Each addition also writes the model folder's new version to disk (atomically), so its latency
includes that write. Results go to benchmarks/results/add_items.json; a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import RESULTS, markdown_table, provenance, run_sigerec, train_in_subprocess
from serving_load import _free_port, build_requests, measure, start_server, stop_server


class Adder:
    """POST /items with fresh ids and real catalogue rows; times each request."""

    def __init__(self, url: str, key: str, rows: list[dict], id_col: str):
        self.url, self.key, self.rows, self.id_col = url, key, rows, id_col
        self.sequence = 0

    def post(self, count: int) -> float:
        items = []
        for _ in range(count):
            row = dict(self.rows[self.sequence % len(self.rows)])
            row[self.id_col] = f"bench-{self.sequence}"
            self.sequence += 1
            items.append(row)
        request = urllib.request.Request(
            self.url + "/items",
            data=json.dumps({"items": items}).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": self.key},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            answer.read()
            assert answer.status == 200, answer.status
        return time.perf_counter() - started


def catalogue_rows(items_file: Path, fields: list[str]) -> list[dict]:
    """Every row of the item file, as the fields a new item carries (strings)."""
    from sigerec.data.tabular import read_table

    frame = read_table(items_file).frame
    return frame[fields].to_dict("records")


def keyed(requests: list[bytes], key: str) -> list[bytes]:
    return [r.replace(b"Host: ", f"X-API-Key: {key}\r\nHost: ".encode(), 1) for r in requests]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def recommendations_while(adder: Adder | None, batch: int, host, port, requests, clients, duration, pid) -> dict:
    """p50/p99 of recommendations, while ``adder`` posts ``batch`` items per request back to back."""
    stop, added = threading.Event(), []

    def add_continuously():
        while not stop.is_set():
            added.append(adder.post(batch))

    thread = threading.Thread(target=add_continuously, daemon=True) if adder else None
    if thread:
        thread.start()
    row = measure(host, port, requests, clients, 10**9, duration, pid)
    stop.set()
    if thread:
        thread.join()
    row["adding"] = f"{batch} item(s) per POST /items, back to back" if adder else "nothing"
    if adder:
        row["add_requests"] = len(added)
        row["items_added"] = len(added) * batch
        row["add_p50_ms"] = round(statistics.median(added) * 1e3, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="Dataset folder with features from `sigerec encode`.")
    parser.add_argument("--items", type=Path, required=True, help="The item file the features were encoded from.")
    parser.add_argument("--model", default="sige")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20, help="POST /items requests per size.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds of recommendations per phase.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--out", type=Path, help="Work folder (default: a new temporary folder).")
    parser.add_argument("--results", type=Path, default=RESULTS / "add_items.json")
    args = parser.parse_args()

    from sigerec.serving.model_folder import ModelFolder

    record = provenance()
    work = args.out or Path(tempfile.mkdtemp(prefix="add-items-"))
    work.mkdir(parents=True, exist_ok=True)
    summary = train_in_subprocess(
        args.data,
        args.model,
        work / "runs",
        {"cold_item_rule": "warm_neighbours"},
        extra=["--epochs", str(args.epochs)],
    )
    model = work / "model"
    run_sigerec("export", summary["run_dir"], "--out", str(model), "--force")
    folder = ModelFolder.load(model)
    spec = folder.manifest["cold_items"]
    user_ids = [str(u) for u in folder.user_ids]
    size = {"n_users": len(folder.user_ids), "n_items": len(folder.item_ids), "dim": int(folder.item_vectors.shape[1])}
    modalities = {m: (e or {}).get("kind") for m, e in spec["encoders"].items()}
    del folder

    load_before = os.getloadavg()[0]  # other processes on the same cores change every figure
    key = secrets.token_urlsafe(24)
    os.environ["SIGEREC_API_KEY"] = key
    host, port = args.host, _free_port(args.host)
    server = start_server(model, host, port, 1, "auto", work / "server.log")
    adder = Adder(f"http://{host}:{port}", key, catalogue_rows(args.items, spec["fields"]), spec["id_col"])
    try:
        first_ms = adder.post(1) * 1e3
        print(f"first POST /items (1 item, loads the encoder): {first_ms:.0f} ms", flush=True)
        posts = {}
        for batch in (1, 100):
            times = [adder.post(batch) for _ in range(args.repeats)]
            posts[batch] = {
                "items_per_request": batch,
                "requests": len(times),
                "median_ms": round(statistics.median(times) * 1e3, 1),
                "p95_ms": round(percentile(times, 95) * 1e3, 1),
                "max_ms": round(max(times) * 1e3, 1),
            }
            print(json.dumps(posts[batch]), flush=True)
        requests = keyed(build_requests(user_ids, [], "user", host, 20_000, 10, 0), key)
        measure(host, port, requests, args.clients, 10**9, 2.0, server.pid)  # warm-up
        phases = []
        for adding, batch in ((None, 0), (adder, 1), (adder, 100)):
            row = recommendations_while(adding, batch, host, port, requests, args.clients, args.duration, server.pid)
            phases.append(row)
            print(json.dumps(row), flush=True)
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=10) as answer:
            assert answer.status == 200
        final_items = adder.sequence
    finally:
        stop_server(server)

    result = {
        **record,
        "model": f"{args.model} ({args.epochs} epochs) on {args.data.name}",
        "model_size_before": size,
        "modalities": modalities,
        "items_added_in_total": final_items,
        "first_post_ms": round(first_ms, 1),
        "post_items": list(posts.values()),
        "recommendations": phases,
        "clients": args.clients,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


def markdown(result: dict) -> str:
    posts = markdown_table(
        ["POST /items", "requests", "median ms", "p95 ms", "max ms"],
        [[f"{p['items_per_request']} item(s)", p["requests"], p["median_ms"], p["p95_ms"], p["max_ms"]]
         for p in result["post_items"]]
        + [["first request (1 item, loads the text encoder)", 1, result["first_post_ms"], "", ""]],
    )  # fmt: skip
    recommendations = markdown_table(
        [f"GET recommendations, {result['clients']} clients, while adding", "requests / s", "p50 ms", "p99 ms",
         "items added", "POST /items median ms"],
        [[r["adding"], f"{r['requests_per_second']:,.0f}", r["p50_ms"], r["p99_ms"], r.get("items_added", 0),
          r.get("add_p50_ms", "")] for r in result["recommendations"]],
    )  # fmt: skip
    return f"{result['model']}, {result['model_size_before']}\n\n{posts}\n\n{recommendations}\n"


if __name__ == "__main__":
    main()
