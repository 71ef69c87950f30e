"""Prometheus metrics of one server process (``GET /metrics``, official ``prometheus-client``).

Each app has its own registry, so several apps in one process (tests) do not collide. Routes
are labelled by their template (``/users/{user_id}/recommendations``), never by the raw path,
so that the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# From 0.5 ms (a ranking over a small catalogue) to 10 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sigerec_http_requests", "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "sigerec_http_request_duration_seconds", "Time from request to the end of the answer, by route.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.model_info = Gauge(
            "sigerec_model_info", "The model being served (value 1), labelled with its version.",
            ["version", "model", "dataset"], registry=self.registry,
        )  # fmt: skip
        self.model_items = Gauge("sigerec_model_items", "Items in the model being served.", registry=self.registry)
        self.model_users = Gauge("sigerec_model_users", "Users in the model being served.", registry=self.registry)
        self._children: dict[tuple, tuple] = {}
        self.reloads = Counter(
            "sigerec_model_reloads", "Model reloads, by outcome (ok or refused).", ["outcome"], registry=self.registry
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per series, not per request
            children = self.requests.labels(route, method, str(status)), self.latency.labels(route, method)
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def set_model(self, metadata: dict) -> None:
        self.model_info.clear()
        self.model_info.labels(metadata["version"], str(metadata["model"]), str(metadata["dataset"])).set(1)
        self.model_items.set(metadata["n_items"])
        self.model_users.set(metadata["n_users"])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
