"""Prometheus metrics with ``prometheus-client``: ``GET /metrics``.

Per request (counted by the observing hook of ``serving.ops``, never by a
protocol): ``mlfast_requests_total`` by route, protocol, method, status,
model and version; ``mlfast_request_duration_seconds`` (the whole request,
from the adapter's call into the core to the answer) and
``mlfast_model_compute_seconds`` (the model's own predict calls) as
histograms; ``mlfast_request_rows`` (rows per request);
``mlfast_requests_in_flight``; ``mlfast_errors_total`` by kind
(``bad_request``, ``invalid_input``, ``unauthorized``, ``too_large``,
``timeout``, ``internal``, ...).  Per model version, read from the registry
at scrape time: ``mlfast_model_loaded``, ``mlfast_model_load_seconds``,
``mlfast_model_file_bytes``, ``mlfast_model_memory_bytes``; and
``mlfast_model_loads_total`` by result (a version that failed to load).

One process: the per-request samples are kept in plain counters under one
lock (about 1.5 µs a request, where prometheus-client's own objects take
5-6 µs: nine locked updates and a Python loop over the buckets of each
histogram) and handed to prometheus-client as metric families at scrape
time; prometheus-client writes the exposition format.

Several workers: prometheus-client's multiprocess mode.  The server sets
``PROMETHEUS_MULTIPROC_DIR`` before this module is imported (the mode is
chosen when prometheus-client is first imported), each worker writes its
samples to files there, and ``/metrics`` in any worker sums them all.  A
worker counts its requests in the same plain counters as one process does
and hands them to prometheus-client's file-backed metrics in batches
(``Metrics.flush``): every ``FLUSH_INTERVAL`` seconds from a thread, before
it answers a scrape, and when it exits.  Writing each request through
prometheus-client's objects took 9 µs a request (nine locked updates of
memory-mapped files); a batch costs that once per label set.  So another
worker's last second of requests may not be in a scrape yet; the next one
has it.  The per-model gauges come from the worker answering the scrape:
every worker serves the same versions once the repository's watcher has
run.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from bisect import bisect_left
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mlfast.serving.core import ModelRegistry, Request, RequestStats, Response, Route, ServedModel
from mlfast.serving.schemas import MetricsText

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latency from 100 µs (a one-row prediction) to 30 s.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COMPUTE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                   0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000)

# Multiprocess mode: how often a worker hands its counts to the shared files.
FLUSH_INTERVAL = 1.0


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# prometheus-client turns multiprocess mode on when the variable exists,
# even empty, and then writes its files into the working directory: an
# empty value means "not set".
if MULTIPROC_ENV in os.environ and not os.environ[MULTIPROC_ENV]:
    del os.environ[MULTIPROC_ENV]


class Metrics:
    """The metrics of one service.  In one process they live in their own
    ``CollectorRegistry`` (two services in one process do not collide); in
    multiprocess mode in the shared directory."""

    def __init__(self, registry: ModelRegistry):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series double the output for nothing we use
        self.model_registry = registry
        self.multiprocess = multiprocess()
        self.registry: Optional[CollectorRegistry] = None
        # multiprocess: children by label values (.labels() validates and
        # hashes on every call), looked up once per label set
        self._children: Dict[Tuple, Tuple[Any, Any, Any]] = {}
        if not self.multiprocess:
            from prometheus_client import ProcessCollector

            self.registry = CollectorRegistry()
            ProcessCollector(registry=self.registry)
            self.registry.register(_ModelCollector(registry))
            self._local = _LocalSamples()
            self.registry.register(self._local)
            self.in_flight = self._local.in_flight
            self.observe = self._local.observe  # type: ignore[method-assign]
            self.loads = Counter("mlfast_model_loads", "Model version loads, by result (ok or failed).",
                                 ["model", "version", "result"], registry=self.registry)
            return
        reg = self.registry
        self._local = _LocalSamples()
        self.observe = self._local.observe  # type: ignore[method-assign]
        self.in_flight = self._local.in_flight
        self._flush_lock = threading.Lock()
        self._flusher: Optional[threading.Thread] = None
        self.requests = Counter(
            "mlfast_requests", "Requests answered, by route, protocol, method, status, model and version.",
            ["route", "protocol", "method", "status", "model", "version"], registry=reg)
        self.duration = Histogram(
            "mlfast_request_duration_seconds",
            "Time to answer a request, from the adapter's call into the core to the response.",
            ["route", "protocol", "model", "version"], buckets=LATENCY_BUCKETS, registry=reg)
        self.compute = Histogram(
            "mlfast_model_compute_seconds", "Time in the model's predict calls for one request.",
            ["model", "version"], buckets=COMPUTE_BUCKETS, registry=reg)
        self.rows = Histogram(
            "mlfast_request_rows", "Rows predicted per request.", ["route", "model", "version"],
            buckets=ROW_BUCKETS, registry=reg)
        self.errors = Counter(
            "mlfast_errors", "Error answers by kind (bad_request, invalid_input, unauthorized, "
            "too_large, timeout, internal, ...).", ["route", "protocol", "kind", "model"], registry=reg)
        self.in_flight_gauge = Gauge(
            "mlfast_requests_in_flight", "Requests being handled now.", registry=reg,
            multiprocess_mode="livesum")
        self.loads = Counter(
            "mlfast_model_loads", "Model version loads, by result (ok or failed).",
            ["model", "version", "result"], registry=reg)

    def start(self) -> None:
        """In a worker (after the fork): flush every FLUSH_INTERVAL seconds
        and at exit."""
        if not self.multiprocess or self._flusher is not None:
            return
        self._flusher = threading.Thread(target=self._flush_loop, name="mlfast-metrics", daemon=True)
        self._flusher.start()
        atexit.register(self.flush)

    def _flush_loop(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            try:
                self.flush()
            except Exception:  # a full disk must not end the counting for good
                logging.getLogger("mlfast.serving").exception("writing the metrics files failed")

    def flush(self) -> None:
        """Multiprocess mode: add the counts taken since the last flush to
        prometheus-client's files, and set this worker's in-flight gauge."""
        if not self.multiprocess:
            return
        with self._flush_lock:
            requests, compute, errors = self._local.drain()
            for key, (n, dur, rows) in requests.items():
                children = self._children.get(key)
                if children is None:
                    route, protocol, method, status, model, version = key
                    children = self._children[key] = (
                        self.requests.labels(route, protocol, method, str(status), model, version),
                        self.duration.labels(route, protocol, model, version),
                        self.rows.labels(route, model, version),
                    )
                children[0].inc(n)
                _add_histogram(children[1], dur)
                if any(rows.counts):
                    _add_histogram(children[2], rows)
            for (model, version), hist in compute.items():
                _add_histogram(self.compute.labels(model, version), hist)
            for labels, n in errors.items():
                self.errors.labels(*labels).inc(n)
            self.in_flight_gauge.set(self.in_flight.value)

    def model_load(self, name: str, version: str, ok: bool, seconds: Optional[float], reason: str) -> None:
        self.loads.labels(name, version, "ok" if ok else "failed").inc()

    def render(self) -> Tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        self.flush()  # this worker's own counts, up to this request
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(_ModelCollector(self.model_registry))
        body = generate_latest(registry)
        # this scrape is answered: the next scrape, whichever worker answers
        # it, must not count it as still in flight
        self.in_flight_gauge.set(max(0, self.in_flight.value - 1))
        return body, CONTENT_TYPE_LATEST

    def route(self, access: str = "api") -> Route:
        def metrics(request: Request) -> Response:
            body, content_type = self.render()
            return Response(200, body, content_type)

        return Route("GET", "/metrics", metrics, "metrics", summary="Prometheus metrics",
                     tag="Operations", protocol="ops", access=access,
                     response_schema=MetricsText, response_types=("text/plain",),
                     description="Prometheus text format: requests, latency, compute time, rows, "
                                 "errors, in-flight requests, model versions.")


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self, n_buckets: int):
        self.counts = [0] * (n_buckets + 1)  # the last one is +Inf
        self.sum = 0.0

    def family_buckets(self, bounds: Tuple[float, ...]) -> List[Tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip(bounds, self.counts):
            total += count
            out.append((_le(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


def _add_histogram(child: Any, hist: "_Histogram") -> None:
    """Adds a batch of observations to a prometheus-client histogram child:
    its per-bucket values (``_buckets``, not cumulative, +Inf last) and
    ``_sum``, as ``Histogram.observe`` adds one observation.  Those
    attributes are prometheus-client's own, not its API (it has no call to
    add a batch); tests/test_ops_metrics.py checks them, so an upgrade that
    changes them fails there rather than miscounting."""
    buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
    if not isinstance(buckets, list) or len(buckets) != len(hist.counts) or total is None:
        raise RuntimeError("prometheus-client's Histogram has changed: cannot add a batch")
    for value, count in zip(buckets, hist.counts):
        if count:
            value.inc(count)
    total.inc(hist.sum)


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


class _InFlight:
    """The requests being handled, as a set: ``set.add`` and ``set.discard``
    are single C calls, atomic under the GIL, so a request enters and leaves
    without a lock (the observing hook does both on every request)."""
    __slots__ = ("_active", "inc", "dec")

    def __init__(self) -> None:
        self._active: set = set()
        self.inc = self._active.add      # inc(request)
        self.dec = self._active.discard  # dec(request)

    @property
    def value(self) -> int:
        return len(self._active)


class _LocalSamples:
    """The request metrics of one process, as plain numbers under one lock;
    a prometheus-client collector (the same names, labels and buckets as the
    multiprocess metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = _InFlight()
        # (route, protocol, method, status, model, version) -> [count, duration, rows]
        self._requests: Dict[Tuple, list] = {}
        self._compute: Dict[Tuple[str, str], _Histogram] = {}
        self._errors: Dict[Tuple[str, str, str, str], int] = {}

    def observe(self, route: Route, request: Request, status: int, elapsed: float,
                stats: RequestStats, served: Optional[ServedModel]) -> None:
        model, version = (served.name, served.version) if served is not None else ("", "")
        key = (route.name, route.protocol, route.method, status, model, version)
        with self._lock:
            series = self._requests.get(key)
            if series is None:
                series = self._requests[key] = [0, _Histogram(len(LATENCY_BUCKETS)),
                                                _Histogram(len(ROW_BUCKETS))]
            series[0] += 1
            duration = series[1]
            duration.counts[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
            duration.sum += elapsed
            if stats.rows:
                rows = series[2]
                rows.counts[bisect_left(ROW_BUCKETS, stats.rows)] += 1
                rows.sum += stats.rows
                compute = self._compute.get((model, version))
                if compute is None:
                    compute = self._compute[(model, version)] = _Histogram(len(COMPUTE_BUCKETS))
                compute.counts[bisect_left(COMPUTE_BUCKETS, stats.compute)] += 1
                compute.sum += stats.compute
            if request.error_kind is not None:
                ekey = (route.name, route.protocol, request.error_kind, model)
                self._errors[ekey] = self._errors.get(ekey, 0) + 1

    def drain(self) -> Tuple[Dict[Tuple, list], Dict[Tuple[str, str], "_Histogram"], Dict[Tuple, int]]:
        """The counts taken so far, handed over and started afresh."""
        with self._lock:
            out = (self._requests, self._compute, self._errors)
            self._requests, self._compute, self._errors = {}, {}, {}
        return out

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self._lock:  # a consistent copy; families are built outside the lock
            requests = {k: (v[0], list(v[1].counts), v[1].sum, list(v[2].counts), v[2].sum)
                        for k, v in self._requests.items()}
            compute = {k: (list(h.counts), h.sum) for k, h in self._compute.items()}
            errors = dict(self._errors)
            in_flight = self.in_flight.value
        total = CounterMetricFamily(
            "mlfast_requests", "Requests answered, by route, protocol, method, status, model and version.",
            labels=["route", "protocol", "method", "status", "model", "version"])
        duration = HistogramMetricFamily(
            "mlfast_request_duration_seconds",
            "Time to answer a request, from the adapter's call into the core to the response.",
            labels=["route", "protocol", "model", "version"])
        rows = HistogramMetricFamily("mlfast_request_rows", "Rows predicted per request.",
                                     labels=["route", "model", "version"])
        by_duration: Dict[Tuple, _Histogram] = {}
        by_rows: Dict[Tuple, _Histogram] = {}
        for (route, protocol, method, status, model, version), (n, dc, ds, rc, rs) in requests.items():
            total.add_metric([route, protocol, method, str(status), model, version], n)
            for labels, counts, s, into, size in (((route, protocol, model, version), dc, ds, by_duration,
                                                   len(LATENCY_BUCKETS)),
                                                  ((route, model, version), rc, rs, by_rows, len(ROW_BUCKETS))):
                h = into.setdefault(labels, _Histogram(size))
                h.counts = [a + b for a, b in zip(h.counts, counts)]
                h.sum += s
        for labels, h in by_duration.items():
            duration.add_metric(list(labels), h.family_buckets(LATENCY_BUCKETS), h.sum)
        for labels, h in by_rows.items():
            if h.counts[-1] or any(h.counts):
                rows.add_metric(list(labels), h.family_buckets(ROW_BUCKETS), h.sum)
        comp = HistogramMetricFamily("mlfast_model_compute_seconds",
                                     "Time in the model's predict calls for one request.",
                                     labels=["model", "version"])
        for (model, version), (counts, s) in compute.items():
            h = _Histogram(len(COMPUTE_BUCKETS))
            h.counts = counts
            comp.add_metric([model, version], h.family_buckets(COMPUTE_BUCKETS), s)
        errs = CounterMetricFamily("mlfast_errors", "Error answers by kind (bad_request, invalid_input, "
                                   "unauthorized, too_large, timeout, internal, ...).",
                                   labels=["route", "protocol", "kind", "model"])
        for labels, n in errors.items():
            errs.add_metric(list(labels), n)
        flight = GaugeMetricFamily("mlfast_requests_in_flight", "Requests being handled now.", value=in_flight)
        yield from (total, duration, comp, rows, errs, flight)

    def describe(self) -> list:
        return []


class _ModelCollector:
    """Gauges of the versions served, read from the registry at scrape time."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        loaded = GaugeMetricFamily("mlfast_model_loaded", "1 for each model version served; "
                                   "default is 'true' for the version served by default.",
                                   labels=["model", "version", "default"])
        seconds = GaugeMetricFamily("mlfast_model_load_seconds", "Time to load the version's file.",
                                    labels=["model", "version"])
        file_bytes = GaugeMetricFamily("mlfast_model_file_bytes", "Size of the version's model file.",
                                       labels=["model", "version"])
        memory = GaugeMetricFamily("mlfast_model_memory_bytes",
                                   "Memory held by the version's arrays (Model.nbytes).",
                                   labels=["model", "version"])
        for served in self.registry.models():
            default = self.registry.default_version(served.name) == served.version
            labels = [served.name, served.version]
            loaded.add_metric(labels + ["true" if default else "false"], 1)
            if served.load_seconds is not None:
                seconds.add_metric(labels, served.load_seconds)
            if served.file_size is not None:
                file_bytes.add_metric(labels, served.file_size)
            if served.nbytes is not None:
                memory.add_metric(labels, served.nbytes)
        yield loaded
        yield seconds
        yield file_bytes
        yield memory

    def describe(self) -> list:
        return []


def mark_process_dead(pid: int) -> None:
    """A worker exited: drop its live gauges (in-flight requests)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)
