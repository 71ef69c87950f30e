"""The traffic of benchmarks/soak.py: the request mix, the check of each answer, and the
closed-loop clients that send it over raw asyncio streams and count what comes back.

A request kind names its route (the label answers are counted under), the status it must get,
how often it is drawn and how to build it. Valid kinds must be answered 200 with a well-formed
body: a ranked list of exactly k known items, best first; the model's info; the health answer;
Prometheus text. Invalid kinds carry one defect each: an unknown id (404), a bad k, too many
items or an unknown field (422), a body over the server's 64 KiB limit, declared or streamed in
chunks (413), malformed JSON or a body that is not UTF-8 (400), a missing or wrong API key (401).

The clients write pre-built bytes and parse only the status line, the headers and, for valid
requests, the JSON body, so that one process of coroutines leaves most of the CPU to the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

MAX_BODY_BYTES = 64 * 1024  # the server answers 413 above this
MAX_ITEMS = 1000  # the most liked items a POST /recommendations may name
# k of valid requests: mostly small, now and then the largest allowed.
COMMON_K = (1, 5, 10, 10, 10, 20, 50, 100)
LARGEST_K, LARGEST_K_SHARE = 1000, 0.01
BAD_K = ("0", "100000", "abc")

USER_ROUTE = "GET /users/{id}/recommendations"
ITEMS_ROUTE = "POST /recommendations"
SIMILAR_ROUTE = "GET /items/{id}/similar"
MODEL_ROUTE, HEALTH_ROUTE, METRICS_ROUTE = "GET /model", "GET /health", "GET /metrics"


def encode_request(host: str, method: str, target: str, body: bytes | None = None, headers: str = "") -> bytes:
    """An HTTP/1.1 keep-alive request; ``headers`` are extra ``Name: value\\r\\n`` lines."""
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{headers}"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + (body or b"")


def key_header(key: str, bearer: bool = False) -> str:
    """The API key in either of the two headers the server accepts."""
    return f"Authorization: Bearer {key}\r\n" if bearer else f"X-API-Key: {key}\r\n"


@dataclass(frozen=True)
class Request:
    """One encoded request and what its answer is checked against."""

    kind: str
    route: str
    expected_status: int
    data: bytes
    k: int | None = None  # the length a valid ranked list must have


class RequestMaker:
    """Builds random requests of each kind against one model's ids, with the server's API key."""

    def __init__(self, user_ids: list[str], item_ids: list[str], api_key: str, host: str):
        self.user_ids, self.item_ids, self.known_items = user_ids, item_ids, frozenset(item_ids)
        self.api_key, self.host = api_key, host
        self.unknown_serial = 0

    def _encode(self, rng, method: str, target: str, body: bytes | None = None, key: str | None = None) -> bytes:
        """With the server's key (or ``key``), sent as Bearer or X-API-Key half the time each."""
        return encode_request(self.host, method, target, body, key_header(key or self.api_key, rng.random() < 0.5))

    def _post(self, rng, payload: dict, key: str | None = None) -> bytes:
        return self._encode(rng, "POST", "/recommendations", json.dumps(payload).encode(), key)

    def _user(self, rng) -> str:
        return quote(rng.choice(self.user_ids), safe="")

    def _item(self, rng) -> str:
        return quote(rng.choice(self.item_ids), safe="")

    def _unknown(self, kind: str) -> str:
        # A new id every time, as real traffic has: a server that kept something per id would grow.
        self.unknown_serial += 1
        return f"no-such-{kind}-{self.unknown_serial}"

    @staticmethod
    def _k(rng) -> int:
        return LARGEST_K if rng.random() < LARGEST_K_SHARE else rng.choice(COMMON_K)

    def _liked(self, rng) -> list[str]:
        return rng.sample(self.item_ids, rng.randint(1, 5))

    # -- valid kinds -------------------------------------------------------------------------
    def user(self, rng) -> Request:
        k = self._k(rng)
        return Request(
            "user", USER_ROUTE, 200, self._encode(rng, "GET", f"/users/{self._user(rng)}/recommendations?k={k}"), k
        )

    def items(self, rng) -> Request:
        k = self._k(rng)
        return Request("items", ITEMS_ROUTE, 200, self._post(rng, {"items": self._liked(rng), "k": k}), k)

    def similar(self, rng) -> Request:
        k = self._k(rng)
        return Request(
            "similar", SIMILAR_ROUTE, 200, self._encode(rng, "GET", f"/items/{self._item(rng)}/similar?k={k}"), k
        )

    def model(self, rng) -> Request:
        return Request("model", MODEL_ROUTE, 200, self._encode(rng, "GET", "/model"))

    def health(self, rng) -> Request:
        # The one route open without a key: sent both with and without.
        data = (
            self._encode(rng, "GET", "/health") if rng.random() < 0.5 else encode_request(self.host, "GET", "/health")
        )
        return Request("health", HEALTH_ROUTE, 200, data)

    def metrics(self, rng) -> Request:
        return Request("metrics", METRICS_ROUTE, 200, self._encode(rng, "GET", "/metrics"))

    # -- invalid kinds -----------------------------------------------------------------------
    def unknown_user(self, rng) -> Request:
        data = self._encode(rng, "GET", f"/users/{self._unknown('user')}/recommendations?k=10")
        return Request("unknown user", USER_ROUTE, 404, data)

    def unknown_item(self, rng) -> Request:
        if rng.random() < 0.5:
            data = self._encode(rng, "GET", f"/items/{self._unknown('item')}/similar?k=10")
            return Request("unknown item", SIMILAR_ROUTE, 404, data)
        data = self._post(rng, {"items": [*self._liked(rng), self._unknown("item")], "k": 10})
        return Request("unknown item", ITEMS_ROUTE, 404, data)

    def bad_k(self, rng) -> Request:
        k = rng.choice(BAD_K)
        route = rng.choice((USER_ROUTE, SIMILAR_ROUTE, ITEMS_ROUTE))
        if route == USER_ROUTE:
            data = self._encode(rng, "GET", f"/users/{self._user(rng)}/recommendations?k={k}")
        elif route == SIMILAR_ROUTE:
            data = self._encode(rng, "GET", f"/items/{self._item(rng)}/similar?k={k}")
        else:
            data = self._post(rng, {"items": self._liked(rng), "k": int(k) if k.isdigit() else k})
        return Request("bad k", route, 422, data)

    def too_many_items(self, rng) -> Request:
        data = self._post(rng, {"items": rng.choices(self.item_ids, k=MAX_ITEMS + 1), "k": 10})
        return Request("too many items", ITEMS_ROUTE, 422, data)

    def unknown_field(self, rng) -> Request:
        return Request("unknown field", ITEMS_ROUTE, 422, self._post(rng, {"items": self._liked(rng), "user": "u1"}))

    def oversized_body(self, rng) -> Request:
        # Valid JSON but for its size (padded with spaces), its length declared or sent in chunks.
        body = json.dumps({"items": self._liked(rng), "k": 10}).encode()
        body = body[:-1] + b" " * (MAX_BODY_BYTES + 1 - len(body)) + b"}"
        if rng.random() < 0.5:
            return Request("body over 64 KiB", ITEMS_ROUTE, 413, self._encode(rng, "POST", "/recommendations", body))
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(c), c) for c in (body[i : i + 16384] for i in range(0, len(body), 16384))
        )
        headers = key_header(self.api_key) + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        data = encode_request(self.host, "POST", "/recommendations", headers=headers) + chunks + b"0\r\n\r\n"
        return Request("body over 64 KiB", ITEMS_ROUTE, 413, data)

    def malformed_json(self, rng) -> Request:
        body = json.dumps({"items": self._liked(rng), "k": 10}).encode()[: -rng.randint(1, 5)]
        return Request("malformed JSON", ITEMS_ROUTE, 400, self._encode(rng, "POST", "/recommendations", body))

    def not_utf8(self, rng) -> Request:
        body = b'{"items": ["\xff\xfe\xfa"], "k": 10}'
        return Request("body not UTF-8", ITEMS_ROUTE, 400, self._encode(rng, "POST", "/recommendations", body))

    def missing_key(self, rng) -> Request:
        if rng.random() < 0.5:
            return Request("missing API key", MODEL_ROUTE, 401, encode_request(self.host, "GET", "/model"))
        data = encode_request(self.host, "GET", f"/users/{self._user(rng)}/recommendations?k=10")
        return Request("missing API key", USER_ROUTE, 401, data)

    def wrong_key(self, rng) -> Request:
        data = self._post(rng, {"items": self._liked(rng), "k": 10}, key="not-" + self.api_key)
        return Request("wrong API key", ITEMS_ROUTE, 401, data)

    # -- checks ------------------------------------------------------------------------------
    def well_formed(self, request: Request, body: bytes) -> bool:
        """Whether the body of a 200 answer to a valid request is what its route promises."""
        if request.k is not None:
            return self._is_ranked_list(body, request.k)
        if request.route == METRICS_ROUTE:
            return b"# TYPE " in body
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        if request.route == MODEL_ROUTE:
            return isinstance(answer, dict) and "version" in answer and answer.get("n_items") == len(self.item_ids)
        return answer == {"status": "ok"}

    def _is_ranked_list(self, body: bytes, k: int) -> bool:
        """Exactly k known items, each with a numeric score and a title key, best first."""
        try:
            items = json.loads(body)
        except ValueError:
            return False
        if not isinstance(items, list) or len(items) != k:
            return False
        scores = []
        for item in items:
            if not isinstance(item, dict) or item.get("item_id") not in self.known_items or "title" not in item:
                return False
            if not isinstance(score := item.get("score"), int | float):
                return False
            scores.append(score)
        return all(a >= b for a, b in itertools.pairwise(scores))  # False for NaN too


# Kind -> (builder, share of the traffic in percent). About four in five requests are valid.
MIX: dict[str, tuple[Callable[[RequestMaker, random.Random], Request], int]] = {
    "user": (RequestMaker.user, 30),
    "items": (RequestMaker.items, 25),
    "similar": (RequestMaker.similar, 20),
    "model": (RequestMaker.model, 3),
    "health": (RequestMaker.health, 2),
    "metrics": (RequestMaker.metrics, 2),
    "unknown user": (RequestMaker.unknown_user, 2),
    "unknown item": (RequestMaker.unknown_item, 2),
    "bad k": (RequestMaker.bad_k, 4),
    "too many items": (RequestMaker.too_many_items, 1),
    "unknown field": (RequestMaker.unknown_field, 1),
    "body over 64 KiB": (RequestMaker.oversized_body, 1),
    "malformed JSON": (RequestMaker.malformed_json, 2),
    "body not UTF-8": (RequestMaker.not_utf8, 1),
    "missing API key": (RequestMaker.missing_key, 2),
    "wrong API key": (RequestMaker.wrong_key, 2),
}


def request_stream(maker: RequestMaker, seed: int) -> Iterator[Request]:
    """An endless, reproducible sequence of requests drawn from :data:`MIX`."""
    rng = random.Random(seed)
    builders = [builder for builder, _ in MIX.values()]
    weights = [weight for _, weight in MIX.values()]
    while True:
        yield rng.choices(builders, weights)[0](maker, rng)


# -- HTTP over raw asyncio streams --------------------------------------------------------------
async def connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """Status, headers (names lower-cased) and body of one HTTP/1.1 answer."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
        return int(status_line[9:12]), headers, await reader.readexactly(int(headers.get(b"content-length", 0)))
    body = b""
    while size := int((await reader.readline()).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readline()  # the empty line after the last chunk
    return int(status_line[9:12]), headers, body


async def exchange(host: str, port: int, data: bytes, timeout: float = 60.0) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a connection of its own: (status, headers, body)."""
    reader, writer = await connect(host, port)
    try:
        async with asyncio.timeout(timeout):
            writer.write(data)
            return await read_answer(reader)
    finally:
        writer.close()


# -- the clients and what they count ------------------------------------------------------------
@dataclass
class Tally:
    """Every answer of a run, counted by route and status and by request kind."""

    answers: dict = field(default_factory=lambda: defaultdict(Counter))  # route -> status -> count
    by_kind: dict = field(default_factory=lambda: defaultdict(Counter))  # kind -> status -> count
    expected: dict = field(default_factory=dict)  # kind -> the status it must get
    latencies: dict = field(default_factory=lambda: defaultdict(lambda: array("d")))  # route -> seconds
    valid_requests: int = 0
    failed_valid: int = 0
    failed_examples: list = field(default_factory=list)
    invalid_answered_otherwise: int = 0
    missing_request_id: int = 0

    def record(self, request: Request, outcome: str, body: bytes = b"", seconds: float | None = None, ok=True):
        """Count one answer. ``outcome``: the status, or ``connection error`` / ``timeout``; ``ok``:
        whether the body of a 200 is well formed; ``seconds``: its latency, if it came."""
        self.answers[request.route][outcome] += 1
        self.by_kind[request.kind][outcome] += 1
        self.expected[request.kind] = request.expected_status
        if request.expected_status != 200:
            self.invalid_answered_otherwise += outcome != str(request.expected_status)
            return
        self.valid_requests += 1
        if seconds is not None:
            self.latencies[request.route].append(seconds)
        if outcome != "200" or not ok:
            self.failed_valid += 1
            if len(self.failed_examples) < 10:
                self.failed_examples.append(f"{request.route} ({request.kind}): {outcome} {body[:300]!r}")


async def client(host: str, port: int, requests: Iterator[Request], maker: RequestMaker, timeout: float, run) -> None:
    """One keep-alive connection sending ``requests`` one after another until ``run.stop_at``
    (``time.perf_counter()`` seconds), counting every answer in ``run.tally``."""
    connection = None
    for request in requests:
        if time.perf_counter() >= run.stop_at:
            break
        try:
            if connection is None:
                connection = await connect(host, port)
            reader, writer = connection
            started = time.perf_counter()
            async with asyncio.timeout(timeout):
                writer.write(request.data)
                await writer.drain()
                status, headers, body = await read_answer(reader)
            seconds = time.perf_counter() - started
        except (OSError, EOFError, ValueError, TimeoutError) as error:
            # A closed or reset connection, a garbled answer or none in time: count it, reconnect.
            run.tally.record(request, "timeout" if isinstance(error, TimeoutError) else "connection error")
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        ok = status != 200 or maker.well_formed(request, body)
        run.tally.record(request, str(status), body, seconds, ok)
        run.tally.missing_request_id += b"x-request-id" not in headers
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()
