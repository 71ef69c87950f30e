"""Soak test of `sigerec serve`: mixed valid and invalid traffic from 16 clients for 10 minutes,
with 10 hot reloads, checking that nothing fails and that the server's memory does not grow.

Example: python benchmarks/soak.py                                  (600 s, 16 clients, 10 reloads)
         python benchmarks/soak.py --duration 60 --reloads 3 --warmup 10 --results /tmp/soak.json --doc /tmp/soak.md
         python benchmarks/soak.py --from-results                   (only rewrite the docs section)

Two model folders are made once, as a user would, from the built-in Baby data: `sigerec train
--data baby --model lightgcn --epochs 2 --seed 1` (and `--seed 2`), each `sigerec export`ed to
.bench_data/soak/model-seed-{1,2} (reused when they load). The server is `sigerec serve
model-seed-1 --no-access-log` (1 worker) on loopback, with a fresh API key in SIGEREC_API_KEY.

Each client is a coroutine of one asyncio loop with its own keep-alive connection; it sends its
next request when the answer has arrived (closed loop, so the server runs flat out) and draws it
from the mix in soak_traffic.py: about four in five are valid requests on every route, the rest
each carry one defect that must get its 4xx. A valid request fails when its answer is not 200
with a well-formed body (a ranked list of exactly k known items, best first), or on a
connection error or a timeout (--timeout). Latency runs from writing a request to reading the
whole answer.

Reloads are spread evenly: the first at --warmup seconds, then every (duration - warmup) /
reloads seconds, alternating `POST /admin/reload {"model_dir": ...}` between the two folders;
the middle one is a SIGHUP to the server process instead (re-reading the folder being served),
and right after it a reload of an empty folder must answer 409 and leave the model serving.

The server's resident memory (VmRSS of /proc/PID/status) is sampled every --sample-every
seconds. Growth compares two samples: the baseline is the first one taken after both the
warm-up and the first reload (so that start-up and the first load of a second model are behind
it), and the final one is the last sample, taken after the last reload when the load has
stopped; growth = final / baseline - 1. Both, the peak and every sample are in the results.
soak_server.py holds the reloads, their checks and the sampling.

Pass: no 5xx answer, no failed valid request, RSS growth under 5% and every reload applied;
otherwise the exit code is 1 (2 when the server lacks the API this test needs). The results
(counts per route and status, latency percentiles per route, the RSS samples, each reload,
client and server CPU, the command, machine, commit and date) go to benchmarks/results/soak.json
and a summary to the `soak` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path

from common import (
    REPO,
    RESULTS,
    add_output_options,
    markdown_table,
    provenance,
    provenance_sentence,
    run_sigerec,
    train_in_subprocess,
    write_section,
)
from serving_load import _cpu_seconds, _free_port, _percentile, start_server, stop_server
from soak_server import (
    HTTP_RELOAD,
    REJECTED_RELOAD,
    Run,
    authorised,
    missing_api,
    read_rss_kib,
    reload_plan,
    reloader,
    sample_rss,
)
from soak_traffic import MIX, RequestMaker, client, exchange, request_stream

SECTION = "soak"
RSS_GROWTH_LIMIT = 0.05
DATA, MODEL, EPOCHS, SEEDS = "baby", "lightgcn", 2, (1, 2)


# -- model folders ----------------------------------------------------------------------------
def model_folders(root: Path) -> list[Path]:
    """The two exported models the server switches between, made on first use."""
    from sigerec.errors import SigerecError
    from sigerec.serving.model_folder import ModelFolder

    folders = []
    for seed in SEEDS:
        folder = root / f"model-seed-{seed}"
        try:
            ModelFolder.load(folder)
        except (SigerecError, OSError):
            print(
                f"{folder}: missing or incomplete; training {MODEL} on {DATA} (seed {seed}) and exporting it",
                flush=True,
            )
            extra = ["--epochs", str(EPOCHS), "--seed", str(seed)]
            summary = train_in_subprocess(Path(DATA), MODEL, root / "runs" / f"seed-{seed}", extra=extra)
            run_sigerec("export", summary["run_dir"], "--out", str(folder), "--force")
        folders.append(folder.resolve())
    return folders


async def soak(host, port, key, server, maker, folders, empty_folder, args) -> Run:
    run = Run(started=time.perf_counter(), stop_at=time.perf_counter() + args.duration)
    plan = reload_plan(args.reloads, args.warmup, args.duration, folders)
    await asyncio.gather(
        sample_rss(server, args.sample_every, run),
        reloader(host, port, key, server, plan, empty_folder, args.timeout, run),
        *(
            client(host, port, request_stream(maker, args.seed + i), maker, args.timeout, run)
            for i in range(args.clients)
        ),
    )
    if (rss := read_rss_kib(server.pid)) is not None:  # the last sample: after the load has stopped
        run.rss_samples.append([round(time.perf_counter() - run.started, 2), rss])
    return run


# -- results ----------------------------------------------------------------------------------
def rss_growth(samples: list, warmup: float, reloads: list[dict]) -> dict:
    """Baseline: the first sample after the warm-up and the first reload; final: the last sample,
    if taken after the last reload. Growth = final / baseline - 1 (None when either is missing)."""
    ends = [r["at_seconds"] for r in reloads if r["how"] != REJECTED_RELOAD]  # when each reload had finished
    baseline = next((s for s in samples if s[0] >= max([warmup, *ends[:1]])), None)
    final = samples[-1] if samples and ends and samples[-1][0] >= ends[-1] else None
    growth = final[1] / baseline[1] - 1 if baseline and final and final[0] > baseline[0] else None
    return {
        "baseline": baseline,
        "final": final,
        "growth": None if growth is None else round(growth, 4),
        "peak_kib": max((s[1] for s in samples), default=None),
        "samples": samples,
    }


def latency_summary(seconds: array) -> dict:
    ordered = sorted(seconds)
    if not ordered:
        return {"requests": 0}
    return {
        "requests": len(ordered),
        "p50_ms": round(_percentile(ordered, 50) * 1e3, 2),
        "p99_ms": round(_percentile(ordered, 99) * 1e3, 2),
        "max_ms": round(ordered[-1] * 1e3, 1),
    }


def summarize(run: Run, seconds: float, warmup: float, reloads_planned: int) -> dict:
    """The run's figures and whether each pass criterion holds."""
    tally = run.tally
    requests = sum(sum(counts.values()) for counts in tally.answers.values())
    server_errors = sum(n for counts in tally.answers.values() for status, n in counts.items() if status[0] == "5")
    all_latencies = array("d")
    for route_latencies in tally.latencies.values():
        all_latencies.extend(route_latencies)
    applied = [r for r in run.reloads if r["how"] != REJECTED_RELOAD and r["applied"]]
    rejected = [r for r in run.reloads if r["how"] == REJECTED_RELOAD]
    rss = rss_growth(run.rss_samples, warmup, run.reloads)
    criteria = {
        "no 5xx answer": server_errors == 0 and run.server_exit is None,
        "no failed valid request": tally.failed_valid == 0,
        f"RSS growth under {RSS_GROWTH_LIMIT:.0%}": rss["growth"] is not None and rss["growth"] < RSS_GROWTH_LIMIT,
        "every reload applied": len(applied) == reloads_planned and all(r["applied"] for r in rejected),
    }
    return {
        "seconds": round(seconds, 1),
        "requests": requests,
        "requests_per_second": round(requests / seconds, 1),
        "valid_requests": tally.valid_requests,
        "server_errors": server_errors,
        "server_exit": run.server_exit,
        "failed_valid_requests": tally.failed_valid,
        "failed_valid_examples": tally.failed_examples,
        "invalid_answered_otherwise": tally.invalid_answered_otherwise,
        "answers_without_request_id": tally.missing_request_id,
        "answers": {route: dict(sorted(counts.items())) for route, counts in sorted(tally.answers.items())},
        "invalid_requests": {
            kind: {"expected": tally.expected[kind], "answers": dict(sorted(tally.by_kind[kind].items()))}
            for kind in MIX
            if kind in tally.expected and tally.expected[kind] != 200
        },
        "latency": {"valid requests": latency_summary(all_latencies)}
        | {route: latency_summary(tally.latencies[route]) for route in sorted(tally.latencies)},
        "rss": rss,
        "reloads": run.reloads,
        "criteria": criteria,
        "passed": all(criteria.values()),
    }


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def criteria_rows(result: dict) -> list[list]:
    """One row per pass criterion: what it requires, what was measured, pass or FAIL."""
    rss, reloads = result["rss"], result["reloads"]
    if rss["growth"] is None:
        memory = "not measured (no sample after the warm-up and the first reload, or none after the last reload)"
    else:
        (start_at, start_kib), (end_at, end_kib) = rss["baseline"], rss["final"]
        memory = f"{_mib(start_kib)} at {start_at:.0f} s -> {_mib(end_kib)} at {end_at:.0f} s ({rss['growth']:+.1%})"
        memory += f"; peak {_mib(rss['peak_kib'])}"
    applied = [r["how"] for r in reloads if r["how"] != REJECTED_RELOAD and r["applied"]]
    ways = ", ".join(f"{n} {how}" for how, n in sorted(Counter(applied).items()))
    reloaded = f"{len(applied)} of {result['settings']['reloads']}" + (f" ({ways})" if ways else "")
    for refusal in (r for r in reloads if r["how"] == REJECTED_RELOAD):
        kept = "the model kept serving" if refusal["applied"] else "NOT refused as required"
        reloaded += f"; an empty folder answered {refusal['status']}, {kept}"
    measured = {
        "no 5xx answer": f"{result['server_errors']:,} of {result['requests']:,} answers"
        + (f"; {result['server_exit']}" if result.get("server_exit") else ""),
        "no failed valid request": f"{result['failed_valid_requests']:,} of {result['valid_requests']:,}",
        f"RSS growth under {RSS_GROWTH_LIMIT:.0%}": memory,
        "every reload applied": reloaded,
    }
    return [[name, measured[name], "pass" if ok else "**FAIL**"] for name, ok in result["criteria"].items()]


def route_rows(result: dict) -> list[list]:
    """Answers by status and valid-request latency for each route, then for all valid requests."""

    def latency(route: str) -> list[str]:
        figures = result["latency"].get(route, {})
        if not figures.get("requests"):
            return ["", "", ""]
        return [f"{figures['p50_ms']:.1f}", f"{figures['p99_ms']:.1f}", f"{figures['max_ms']:.0f}"]

    rows = []
    for route, counts in result["answers"].items():
        statuses = ", ".join(f"{status}: {n:,}" for status, n in counts.items())
        rows.append([route, f"{sum(counts.values()):,}", statuses, *latency(route)])
    overall = result["latency"]["valid requests"]
    rows.append(["**all valid requests**", f"{overall.get('requests', 0):,}", "", *latency("valid requests")])
    return rows


def section_content(result: dict) -> str:
    """The docs section of a soak run: how it was measured, the criteria, the figures per route."""
    settings, model = result["settings"], result["model"]
    reload_seconds = [r["seconds"] for r in result["reloads"] if r["how"] == HTTP_RELOAD]
    intro = (
        f"`sigerec serve` (1 worker, {model['model']} on {model['dataset']}: {model['n_users']:,} users, "
        f"{model['n_items']:,} items, {model['dim']}-d, index {model['index']}) answered {settings['clients']} "
        f"clients on loopback for {settings['duration']:.0f} s, each sending its next request as soon as its "
        "answer arrived. About four in five requests are valid (the three ranking routes with k from 1 to 1000, "
        "`/model`, `/health`, `/metrics`); the others each carry one defect: an unknown id (404), a bad k, "
        "too many items or an unknown field (422), a body over 64 KiB (413), malformed JSON or a body that is "
        "not UTF-8 (400), a missing or wrong API key (401). A valid request fails unless it gets 200 with a "
        f"well-formed body. {settings['reloads']} reloads were spread over the run, alternating "
        "`POST /admin/reload` between two exported models and one SIGHUP; after the SIGHUP a reload of an empty "
        "folder had to answer 409. Server memory is VmRSS: the first sample after the "
        f"{settings['warmup']:.0f}-s warm-up and the first reload against the last one, after the last reload. "
        "Latency runs from writing a request to reading the whole answer, valid requests only."
    )
    figures = (
        f"{result['requests']:,} requests, {result['requests_per_second']:,.0f} per second; "
        f"invalid requests answered with another status than their own: {result['invalid_answered_otherwise']:,}; "
        f"answers without X-Request-ID: {result['answers_without_request_id']:,}; "
        f"`POST /admin/reload` took {min(reload_seconds, default=0):.2f}-{max(reload_seconds, default=0):.2f} s; "
        f"CPU used by the server {result['server_cpu_seconds'] / result['seconds']:.2f} cores, by the load "
        f"generator {result['client_cpu_seconds'] / result['seconds']:.2f} cores. "
        f"Result: {'passed' if result['passed'] else '**failed**'}."
    )
    criteria = markdown_table(["criterion", "measured", ""], criteria_rows(result))
    routes = markdown_table(
        ["route", "requests", "answers by status", "p50 ms", "p99 ms", "max ms"], route_rows(result)
    )
    return (
        f"## Soak: mixed traffic and hot reloads\n\n{intro}\n\n{provenance_sentence(result)}\n\n"
        f"{criteria}\n\n{figures}\n\n{routes}"
    )


def server_log_errors(log: Path) -> int:
    """Lines of the server's log that report an error or a traceback."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return sum(line.startswith(("ERROR", "Traceback")) for line in lines)


def measure(args, folders: list[Path]) -> dict:
    """Start the server on the first folder, soak it, stop it: the run's figures and criteria."""
    from sigerec.serving.model_folder import ModelFolder
    from sigerec.serving.settings import API_KEY_VARIABLE

    served = ModelFolder.load(folders[0])
    maker_ids = [str(u) for u in served.user_ids], [str(i) for i in served.item_ids]
    del served
    key = secrets.token_urlsafe(24)
    os.environ[API_KEY_VARIABLE] = key  # the server started next reads its key from here
    host = "127.0.0.1"
    port = _free_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    (empty_folder := workdir / "empty-model").mkdir()
    log = workdir / "server.log"
    server = start_server(folders[0], host, port, 1, "auto", log)
    try:
        if problems := missing_api(host, port, key):
            print("this server lacks the API the soak test needs (issue 16):\n- " + "\n- ".join(problems))
            sys.exit(2)
        _, _, body = asyncio.run(exchange(host, port, authorised(host, key, "GET", "/model")))
        model = {
            name: json.loads(body).get(name) for name in ("model", "dataset", "n_users", "n_items", "dim", "index")
        }
        maker = RequestMaker(*maker_ids, api_key=key, host=host)
        client_before, server_before = resource.getrusage(resource.RUSAGE_SELF), _cpu_seconds(server.pid)
        print(f"soak: {args.clients} clients for {args.duration:.0f} s, {args.reloads} reloads", flush=True)
        run = asyncio.run(soak(host, port, key, server, maker, folders, empty_folder, args))
        seconds = time.perf_counter() - run.started
        client_after, server_cpu = resource.getrusage(resource.RUSAGE_SELF), _cpu_seconds(server.pid) - server_before
    finally:
        stop_server(server)
    client_cpu = sum(getattr(client_after, f) - getattr(client_before, f) for f in ("ru_utime", "ru_stime"))
    settings = {name: getattr(args, name) for name in ("duration", "clients", "reloads", "warmup", "sample_every")}
    settings |= {"timeout": args.timeout, "seed": args.seed, "models": [folder.name for folder in folders]}
    settings["server"] = (
        f"sigerec serve {folders[0].name} --workers 1 --no-access-log, the API key in {API_KEY_VARIABLE}"
    )
    print(f"server log: {log} ({server_log_errors(log)} error lines)")
    return {
        "settings": settings,
        "model": model,
        "client_cpu_seconds": round(client_cpu, 1),
        "server_cpu_seconds": round(server_cpu, 1),
        "server_log_errors": server_log_errors(log),
        **summarize(run, seconds, args.warmup, args.reloads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="Seconds of load.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients, one connection each.")
    parser.add_argument("--reloads", type=int, default=10, help="Reloads spread over the run (at least 2).")
    parser.add_argument("--warmup", type=float, default=30.0, help="Seconds before the first reload.")
    parser.add_argument("--sample-every", type=float, default=2.0, help="Seconds between RSS samples.")
    parser.add_argument("--timeout", type=float, default=10.0, help="A request or reload unanswered after this fails.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the request mix (client i uses seed + i).")
    parser.add_argument(
        "--models-dir", type=Path, default=REPO / ".bench_data" / "soak", help="Where the two model folders are made."
    )
    add_output_options(parser, RESULTS / "soak.json")
    args = parser.parse_args()
    if args.from_results:
        write_section(args.doc, SECTION, section_content(json.loads(args.results.read_text())))
        return
    if args.reloads < 2 or not 0 < args.warmup < args.duration:
        parser.error("--reloads must be at least 2 (one of them a SIGHUP) and --warmup between 0 and --duration")
    record = provenance()
    result = {**record, **measure(args, model_folders(args.models_dir))}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    write_section(args.doc, SECTION, section_content(result))
    print(section_content(result) + f"\n\nresults: {args.results}")
    for example in result["failed_valid_examples"]:
        print("failed:", example)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
