"""Prometheus metrics of one service, served at /metrics (and /internal/metrics) in the text
format prometheus_client writes.

Two kinds. Requests are counted where they are served (`ServiceMetrics.observe`: the EC2 and
S3 front doors, and the http middleware every other route goes through), by action and
outcome, with their latency; that is the hot path, so a request costs one dict look-up, one
counter increment and one histogram observation, no await and no allocation after the first
request of each (action, outcome). Everything else (instances by state, what each node has
booked, Walrus's bytes, the SC's volumes) is read when Prometheus scrapes, by the gauges a
service adds with `ServiceMetrics.gauge`, so it costs nothing between scrapes.

Walrus serves only /internal/metrics: `/metrics` is a bucket's path in S3."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LOG = logging.getLogger(__name__)

METRICS_PATHS = ("/metrics", "/internal/metrics")
# From a cached Describe (about a millisecond) to a slow RunInstances or a large PUT.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# (label values, value) pairs a gauge reads at scrape time.
Samples = Iterable[tuple[Sequence[str], float]]


class _Gauge(Collector):
    """A gauge whose samples are read at scrape time; a failing reader is logged and leaves
    its gauge empty rather than failing the whole scrape."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str],
                 read: Callable[[], Samples]) -> None:
        self._name, self._doc, self._labels, self._read = name, documentation, list(labels), read

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self._name, self._doc, labels=self._labels)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        try:
            for values, value in self._read():
                family.add_metric([str(v) for v in values], float(value))
        except Exception:  # noqa: BLE001 -- one broken gauge must not hide the others
            LOG.exception("metric %s could not be read", self._name)
        yield family


class ServiceMetrics:
    """The metrics of one service (its own registry, so several services or test apps in one
    process never collide)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("eucasim_requests", "Requests served, by action and outcome "
                                 "(ok, or the error code or HTTP status answered).",
                                 ["service", "action", "outcome"], registry=self.registry)
        self._latency = Histogram("eucasim_request_duration_seconds",
                                  "Time to answer a request, by action.", ["service", "action"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._children: dict[tuple[str, str], tuple[Callable[[], None], Callable[[float], None]]] = {}

    def observe(self, action: str, outcome: str, seconds: float) -> None:
        """One request answered. Safe from any thread."""
        child = self._children.get((action, outcome))
        if child is None:
            # labels() takes a lock and builds a key; done once per (action, outcome).
            child = (self._requests.labels(self.service, action, outcome).inc,
                     self._latency.labels(self.service, action).observe)
            self._children[(action, outcome)] = child
        child[0]()
        child[1](seconds)

    def gauge(self, name: str, documentation: str, labels: Sequence[str],
              read: Callable[[], Samples]) -> None:
        """A gauge `name` whose samples `read` returns when scraped (from the threadpool)."""
        self.registry.register(_Gauge(name, documentation, labels, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def mount_metrics(app: FastAPI, metrics: ServiceMetrics) -> None:
    """GET /metrics and /internal/metrics, unsigned as Prometheus scrapes."""

    def scrape() -> Response:
        # Sync, so the gauges' database reads run in the threadpool.
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    for path in METRICS_PATHS:
        app.add_api_route(path, scrape, methods=["GET"], include_in_schema=False)
