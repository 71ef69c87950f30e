"""What every HTTP request passes through before and after its route (a plain ASGI middleware).

In this order: a request id (the client's ``X-Request-ID`` when it is short and plain, else a
new one; returned in the answer's header and in the log), the API key, the body size limit,
then the route; afterwards the Prometheus metrics and one JSON access-log line. An error that
escapes a route is logged here with its traceback and answered as a JSON 500 that carries the
request id and nothing of the error, so no stack trace ever reaches a client.
"""

from __future__ import annotations

import datetime
import hmac
import json
import logging
import os
import re
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigerec.serving.metrics import ServerMetrics

logger = logging.getLogger("sigerec.serving")
access_logger = logging.getLogger("sigerec.access")

REQUEST_ID_HEADER = "x-request-id"
PUBLIC_PATHS = frozenset({"/health"})  # answer without the API key (load balancers probe it)
_PLAIN_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        metrics: ServerMetrics,
        body_limits: dict[str, int] | None = None,
    ):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        # Larger limits of routes whose bodies are larger by nature (POST /items), keyed by path.
        self.body_limits = body_limits or {}
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = _request_id(headers.get(REQUEST_ID_HEADER))
        answer = {"status": 500, "started": False, "too_large": False}
        limit = self.body_limits.get(scope["path"], self.max_body_bytes)

        async def reply(status: int, detail: str, extra_headers: dict | None = None) -> None:
            answer["status"], answer["started"] = status, True
            await _reply(send, status, detail, {REQUEST_ID_HEADER: request_id, **(extra_headers or {})})

        async def send_with_request_id(message: Message) -> None:
            if answer["too_large"]:  # the route answered a body cut short; the answer is 413
                if message["type"] == "http.response.start":
                    await reply(413, _too_large(limit))
                return
            if message["type"] == "http.response.start":
                answer["status"], answer["started"] = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        received = 0

        async def receive_within_limit() -> Message:
            # A body sent without Content-Length (chunked) is counted as it arrives; past the
            # limit the route sees an empty end of body, and its answer is replaced by a 413.
            nonlocal received
            if answer["too_large"]:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                answer["too_large"] = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        try:
            if self.api_key is not None and scope["path"] not in PUBLIC_PATHS and not self._authorised(headers):
                await reply(401, _MISSING_KEY, {"www-authenticate": "Bearer"})
            elif _declared_length(headers) > limit:
                await reply(413, _too_large(limit))
            else:
                await self.app(scope, receive_within_limit, send_with_request_id)
        except Exception:
            logger.exception("request %s: %s %s failed", request_id, scope["method"], scope["path"])
            if not answer["started"]:
                await reply(500, f"internal server error (request id {request_id}); the server log has the details")
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(route, scope["method"], answer["status"], seconds)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(_access_line(scope, request_id, answer["status"], seconds))

    def _authorised(self, headers: Headers) -> bool:
        """A key in at least one of the two headers, and no wrong key in either."""
        supplied = [key.encode() for key in (headers.get("x-api-key"), _bearer_token(headers)) if key is not None]
        return bool(supplied) and all(hmac.compare_digest(key, self.api_key) for key in supplied)


_MISSING_KEY = "missing or wrong API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes."


def _bearer_token(headers: Headers) -> str | None:
    if "authorization" not in headers:
        return None
    scheme, _, token = headers["authorization"].partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""  # another scheme counts as a wrong key


def _request_id(supplied: str | None) -> str:
    if supplied is not None and _PLAIN_REQUEST_ID.fullmatch(supplied):
        return supplied
    return os.urandom(16).hex()  # as random as uuid4, without building a UUID object


def _declared_length(headers: Headers) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


async def _reply(send: Send, status: int, detail: str, extra_headers: dict) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.encode(), value.encode()) for name, value in extra_headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _access_line(scope: Scope, request_id: str, status: int, seconds: float) -> str:
    client = scope.get("client")
    record = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        "client": f"{client[0]}:{client[1]}" if client else None,
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    return json.dumps(record, ensure_ascii=False)
