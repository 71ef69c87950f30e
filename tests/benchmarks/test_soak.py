"""The soak benchmark judges what it should: its request mix gets the statuses it expects from a
real server, its clients count every failure, its reloads are checked by what is then served,
and memory growth and the docs section follow their stated definitions."""

import asyncio
import random
import re
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS.parent / "benchmarks"))
sys.path.insert(0, str(TESTS / "serving"))

import soak
import soak_server
import soak_traffic

from http_helpers import API_KEY, ServerThread, hand_made_folder, write_hand_made_export
from sigerec.serving.app import create_app
from sigerec.serving.model_holder import load_model
from sigerec.serving.service import RecommendationService
from sigerec.serving.settings import ServerSettings

FOLDERS = [Path("/models/a"), Path("/models/b")]


@pytest.fixture
def small_k(monkeypatch):
    """k the hand-made model can fill (60 items, 5 seen per user): a valid list has exactly k items."""
    monkeypatch.setattr(soak_traffic, "COMMON_K", (1, 5, 10))
    monkeypatch.setattr(soak_traffic, "LARGEST_K", 50)


@pytest.fixture(scope="module")
def keyed_server():
    """The hand-made model behind the API key, as `sigerec serve --api-key-file` runs it."""
    service = RecommendationService(hand_made_folder(), index="exact")
    with ServerThread(create_app(service, settings=ServerSettings(api_key=API_KEY))) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port), service


def _maker(host, service) -> soak_traffic.RequestMaker:
    folder = service.folder
    return soak_traffic.RequestMaker(list(folder.user_ids), list(folder.item_ids), API_KEY, host)


def test_reloads_start_after_the_warmup_alternate_folders_and_one_is_a_sighup():
    plan = soak_server.reload_plan(4, warmup=30, duration=110, folders=FOLDERS)
    assert [at for at, _, _ in plan] == [30, 50, 70, 90]
    assert [(how, folder.name) for _, how, folder in plan] == [
        ("POST /admin/reload", "b"),
        ("POST /admin/reload", "a"),
        ("SIGHUP", "a"),  # re-reads the folder being served
        ("POST /admin/reload", "b"),
    ]


def test_rss_growth_compares_the_first_sample_after_warmup_and_first_reload_with_the_last():
    samples = [[0, 100], [10, 120], [20, 200], [30, 205], [40, 210]]
    reloads = [{"how": "POST /admin/reload", "at_seconds": 15}, {"how": "SIGHUP", "at_seconds": 35}]
    rss = soak.rss_growth(samples, warmup=5, reloads=reloads)
    assert (rss["baseline"], rss["final"], rss["growth"], rss["peak_kib"]) == ([20, 200], [40, 210], 0.05, 210)
    # The warm-up ends after the first reload: the baseline waits for it.
    assert soak.rss_growth(samples, warmup=25, reloads=reloads)["baseline"] == [30, 205]


def test_rss_growth_is_not_measured_without_a_sample_after_the_last_reload():
    reloads = [{"how": "POST /admin/reload", "at_seconds": 15}, {"how": "POST /admin/reload", "at_seconds": 45}]
    assert soak.rss_growth([[0, 100], [20, 200], [40, 210]], warmup=5, reloads=reloads)["growth"] is None


def test_a_valid_request_fails_on_any_wrong_answer_and_an_invalid_one_on_another_status():
    maker = soak_traffic.RequestMaker(["u1"], ["i1", "i2", "i3"], API_KEY, "localhost")
    request = soak_traffic.Request("user", soak_traffic.USER_ROUTE, 200, b"", k=2)
    good = b'[{"item_id": "i2", "score": 2.0, "title": null}, {"item_id": "i1", "score": 1.5, "title": "x"}]'
    wrong = [
        b'[{"item_id": "i2", "score": 2.0, "title": null}]',  # not k items
        b'[{"item_id": "i9", "score": 2.0, "title": null}, {"item_id": "i1", "score": 1.5, "title": "x"}]',
        b'[{"item_id": "i2", "score": 1.0, "title": null}, {"item_id": "i1", "score": 1.5, "title": "x"}]',
        b'[{"item_id": "i2", "score": NaN, "title": null}, {"item_id": "i1", "score": 1.5, "title": "x"}]',
        b'[{"item_id": "i2", "score": 2.0}, {"item_id": "i1", "score": 1.5, "title": "x"}]',
        b"not json",
    ]
    assert maker.well_formed(request, good)
    assert not any(maker.well_formed(request, body) for body in wrong)

    tally = soak_traffic.Tally()
    tally.record(request, "200", good, 0.001, ok=True)
    tally.record(request, "200", wrong[0], 0.001, ok=False)
    tally.record(request, "503", b"{}", 0.001)
    tally.record(request, "timeout")
    invalid = soak_traffic.Request("bad k", soak_traffic.USER_ROUTE, 422, b"")
    tally.record(invalid, "422")
    tally.record(invalid, "connection error")
    assert (tally.valid_requests, tally.failed_valid, tally.invalid_answered_otherwise) == (4, 3, 1)
    assert len(tally.latencies[soak_traffic.USER_ROUTE]) == 3
    assert tally.answers[soak_traffic.USER_ROUTE] == {"200": 2, "503": 1, "timeout": 1, "422": 1, "connection error": 1}


def test_every_kind_of_the_mix_gets_its_expected_status_from_the_server(keyed_server, small_k):
    host, port, service = keyed_server
    maker = _maker(host, service)
    rng = random.Random(0)

    async def send_each_kind_a_few_times():
        answers = []
        for kind, (build, _) in soak_traffic.MIX.items():
            for _ in range(6):  # each kind's variants (route, key header, chunked body) are drawn at random
                request = build(maker, rng)
                status, headers, body = await soak_traffic.exchange(host, port, request.data, timeout=10)
                answers.append((kind, request.expected_status, status, b"x-request-id" in headers))
                if status == 200:
                    assert maker.well_formed(request, body), (kind, body[:200])
        return answers

    answers = asyncio.run(send_each_kind_a_few_times())
    assert [(kind, got) for kind, want, got, _ in answers if got != want] == []
    assert all(has_request_id for *_, has_request_id in answers)
    oversized = soak_traffic.MIX["body over 64 KiB"][0]
    assert all(len(oversized(maker, rng).data) > soak_traffic.MAX_BODY_BYTES for _ in range(4))


def test_clients_against_a_healthy_server_count_no_failure(keyed_server, small_k):
    host, port, service = keyed_server
    maker = _maker(host, service)
    run = soak_server.Run(started=time.perf_counter(), stop_at=time.perf_counter() + 1.0)

    async def four_clients():
        streams = [soak_traffic.request_stream(maker, seed) for seed in range(4)]
        await asyncio.gather(*(soak_traffic.client(host, port, s, maker, 10, run) for s in streams))

    asyncio.run(four_clients())
    tally = run.tally
    assert tally.valid_requests > 20
    assert (tally.failed_valid, tally.invalid_answered_otherwise, tally.missing_request_id) == (0, 0, 0), (
        tally.failed_examples
    )


def test_reloads_are_checked_by_what_the_server_then_serves(tmp_path):
    folders = [write_hand_made_export(tmp_path / name, seed) for name, seed in (("a", 0), ("b", 1))]
    (empty := tmp_path / "empty").mkdir()
    app = create_app(load_model(folders[0], index="exact"), settings=ServerSettings(api_key=API_KEY))
    with ServerThread(app) as url:
        host, port = url.removeprefix("http://").split(":")

        async def switch_then_refuse():
            switched = await soak_server.reload_once(
                host, int(port), API_KEY, None, soak_server.HTTP_RELOAD, folders[1], 10
            )
            refused = await soak_server.reload_once(
                host, int(port), API_KEY, None, soak_server.REJECTED_RELOAD, empty, 10
            )
            return switched, refused

        switched, refused = asyncio.run(switch_then_refuse())
    assert switched["applied"] and switched["status"] == 200
    assert switched["version_after"] != switched["version_before"]
    assert refused["applied"] and refused["status"] == 409
    assert refused["version_after"] == refused["version_before"] == switched["version_after"]


def _result(**changes) -> dict:
    latency = {"requests": 90, "p50_ms": 9.0, "p99_ms": 30.0, "max_ms": 60.0}
    reloads = [
        {"how": "POST /admin/reload", "status": 200, "seconds": 0.2, "applied": True},
        {"how": "SIGHUP", "status": None, "seconds": 0.3, "applied": True},
        {"how": "POST /admin/reload (empty folder)", "status": 409, "seconds": 0.1, "applied": True},
    ]
    result = {
        "command": "python benchmarks/x.py",
        "machine": "Test CPU, 2 cores visible, Python 3.11.7",
        "commit": "abc1234",
        "measured": "2026-12-02",
        "settings": {"duration": 60.0, "clients": 16, "reloads": 2, "warmup": 10.0},
        "model": {"model": "lightgcn", "dataset": "baby", "n_users": 10, "n_items": 20, "dim": 64, "index": "exact"},
        "seconds": 60.0,
        "requests": 110,
        "requests_per_second": 1.8,
        "valid_requests": 90,
        "server_errors": 0,
        "failed_valid_requests": 0,
        "invalid_answered_otherwise": 0,
        "answers_without_request_id": 0,
        "answers": {"GET /users/{id}/recommendations": {"200": 90, "404": 20}},
        "latency": {"valid requests": latency, "GET /users/{id}/recommendations": latency},
        "rss": {"baseline": [12.0, 102400], "final": [60.0, 104448], "growth": 0.02, "peak_kib": 104448},
        "reloads": reloads,
        "client_cpu_seconds": 6.0,
        "server_cpu_seconds": 48.0,
        "criteria": {
            "no 5xx answer": True,
            "no failed valid request": True,
            "RSS growth under 5%": True,
            "every reload applied": True,
        },
        "passed": True,
    }
    return result | changes


def test_the_docs_section_names_how_it_was_measured_and_each_criterion():
    text = soak.section_content(_result())
    assert "`python benchmarks/x.py`" in text and "Test CPU, 2 cores visible" in text
    assert re.search(r"commit:? abc1234", text, re.IGNORECASE) and "2026-12-02" in text
    assert "| RSS growth under 5% | 100.0 MiB at 12 s -> 102.0 MiB at 60 s (+2.0%); peak 102.0 MiB | pass |" in text
    assert "2 of 2 (1 POST /admin/reload, 1 SIGHUP); an empty folder answered 409, the model kept serving" in text
    assert "| GET /users/{id}/recommendations | 110 | 200: 90, 404: 20 | 9.0 | 30.0 | 60 |" in text
    assert "Result: passed." in text


def test_the_docs_section_marks_a_failed_criterion():
    criteria = _result()["criteria"] | {"no failed valid request": False}
    text = soak.section_content(_result(failed_valid_requests=3, criteria=criteria, passed=False))
    assert "| no failed valid request | 3 of 90 | **FAIL** |" in text
    assert "Result: **failed**." in text
