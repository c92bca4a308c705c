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

One process: each request is counted by one call into a C
``RequestTally`` (csrc/tally.c: a dict lookup and three binary searches,
no lock; 0.12 µs where the same counting in Python took 0.9 µs and
prometheus-client's own objects 5-6 µs: nine locked updates and a Python
loop over the buckets of each histogram).  At scrape time the counts are
drained into totals kept here and handed to prometheus-client as metric
families; prometheus-client writes the exposition format.

Several workers: prometheus-client's multiprocess mode.  The server sets
``PROMETHEUS_MULTIPROC_DIR`` before a Metrics is made (the mode is
chosen when prometheus-client is first imported), each worker writes its
samples to files there, and ``/metrics`` in any worker sums them all.  An
app that gunicorn or ``uvicorn --workers`` imports in each worker finds
its server's directory by itself (``share_with_workers``).  A
worker counts its requests in the same tally as one process does and
hands them to prometheus-client's file-backed metrics in batches
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
import shutil
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mlfast.serving.http import Request, Response, Route
from mlfast.serving.registry import ModelRegistry, ServedModel
from mlfast.serving.schemas import MetricsText

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latency from 100 µs (a one-row prediction) to 30 s.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
COMPUTE_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000)

# Multiprocess mode: how often a worker hands its counts to the shared files.
FLUSH_INTERVAL = 1.0


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def clear_empty_multiproc_env() -> None:
    """prometheus-client turns multiprocess mode on when the variable exists,
    even empty, and then writes its files into the working directory: an
    empty value means "not set", so it is removed before prometheus-client
    is imported."""
    if MULTIPROC_ENV in os.environ and not os.environ[MULTIPROC_ENV]:
        del os.environ[MULTIPROC_ENV]


# -- an app whose workers a server started (the lesson's apps) ------------------------
#
# `mlfast serve` builds the app once and sets PROMETHEUS_MULTIPROC_DIR before
# it forks its workers.  `gunicorn flask_app:app -w 2` and `uvicorn
# fastapi_app:app --workers 2` import the app in each worker instead, and no
# mlfast code runs in the process that starts them: each worker finds the
# directory of its server by the server's process id (and start time, which
# tells a pid used again from the one before).


def _start_time(pid: int) -> Optional[str]:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field
    22); None when the process is gone; '0' for a live process where there
    is no /proc to say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        if os.path.exists("/proc/self/stat"):
            return None
    except OSError:
        pass
    else:
        # the command name (field 2) is in parentheses and may hold anything
        return stat[stat.rindex(b")") + 2 :].split()[19].decode()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "0"


def _workers_parent() -> Optional[int]:
    """The process whose workers serve this app when this process is one of
    them, or is loading the app for them before it forks: gunicorn's
    master (the app is imported in each worker, or with ``--preload`` in
    the master) or the supervisor of ``uvicorn --workers``.  Told by who is
    importing the app: the server's own functions on the stack."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        module, function = frame.f_globals.get("__name__", ""), frame.f_code.co_name
        if module == "gunicorn.workers.base" and function == "load_wsgi":
            return os.getppid()
        if module == "gunicorn.arbiter" and function == "setup":
            return os.getpid()
        if module == "uvicorn._subprocess" and function == "subprocess_started":
            return os.getppid()
        frame = frame.f_back
    return None


def workers_directory(parent: int) -> Path:
    """The metrics directory of the workers of process ``parent``."""
    return (
        Path(tempfile.gettempdir())
        / f"mlfast-metrics-{os.getuid()}"
        / f"{parent}-{_start_time(parent)}"
    )


def share_with_workers() -> Optional[str]:
    """In a worker of a server that imports the app in each worker: point
    ``PROMETHEUS_MULTIPROC_DIR`` at a directory private to this user and
    shared by the server's workers, so that whichever answers ``/metrics``
    sums them all; directories of servers that have ended are removed.
    Nothing when the variable is set, when the app is not served so, or
    when prometheus-client was imported before (its mode is fixed then)."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    parent = _workers_parent()
    if parent is None:
        return None
    if "prometheus_client" in sys.modules:
        logging.getLogger("mlfast.serving").warning(
            "prometheus_client was imported before the app: /metrics counts this worker only "
            "(set %s to a directory the workers share)",
            MULTIPROC_ENV,
        )
        return None
    path = workers_directory(parent)
    top = path.parent
    try:
        top.mkdir(mode=0o700, exist_ok=True)
        if top.stat().st_uid != os.getuid() or top.stat().st_mode & 0o077:
            raise PermissionError(f"{top} is not private to this user")
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        logging.getLogger("mlfast.serving").warning("cannot share metrics between workers: %s", e)
        return None
    for other in top.iterdir():
        pid, _, started = other.name.partition("-")
        if other != path and pid.isdigit() and _start_time(int(pid)) != started:
            shutil.rmtree(other, ignore_errors=True)  # a server that has ended
    os.environ[MULTIPROC_ENV] = str(path)
    return str(path)


def _reap_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that have exited (a server that is
    not mlfast's own has no hook to tell us)."""
    from prometheus_client import multiprocess as mp

    for name in os.listdir(directory):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name.rsplit("_", 1)[-1][:-3]
            if pid.isdigit() and _start_time(int(pid)) is None:
                mp.mark_process_dead(int(pid), directory)


class Metrics:
    """The metrics of one service.  In one process they live in their own
    ``CollectorRegistry`` (two services in one process do not collide); in
    multiprocess mode in the shared directory."""

    def __init__(self, registry: ModelRegistry):
        clear_empty_multiproc_env()
        share_with_workers()
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # the *_created series double the output for nothing we use
        self.model_registry = registry
        self.multiprocess = multiprocess()
        self.registry: Optional[CollectorRegistry] = None
        # what the observing hook calls on every request (see _Counts)
        self.counts = _Counts()
        self.in_flight = self.counts.in_flight
        # multiprocess: children by label values (.labels() validates and
        # hashes on every call), looked up once per label set
        self._children: Dict[Tuple, Tuple[Any, Any, Any]] = {}
        if not self.multiprocess:
            from prometheus_client import ProcessCollector

            self.registry = CollectorRegistry()
            ProcessCollector(registry=self.registry)
            self.registry.register(_ModelCollector(registry))
            self.registry.register(_LocalSamples(self.counts))
            self.loads = Counter(
                "mlfast_model_loads",
                "Model version loads, by result (ok or failed).",
                ["model", "version", "result"],
                registry=self.registry,
            )
            return
        reg = self.registry
        self._flush_lock = threading.Lock()
        self._flusher_pid: Optional[int] = None
        # the flushing thread does not survive a fork: a worker forked after
        # the app was made (gunicorn --preload) starts its own
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _start_if_alive(ref))
        self.requests = Counter(
            "mlfast_requests",
            "Requests answered, by route, protocol, method, status, model and version.",
            ["route", "protocol", "method", "status", "model", "version"],
            registry=reg,
        )
        self.duration = Histogram(
            "mlfast_request_duration_seconds",
            "Time to answer a request, from the adapter's call into the core to the response.",
            ["route", "protocol", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.compute = Histogram(
            "mlfast_model_compute_seconds",
            "Time in the model's predict calls for one request.",
            ["model", "version"],
            buckets=COMPUTE_BUCKETS,
            registry=reg,
        )
        self.rows = Histogram(
            "mlfast_request_rows",
            "Rows predicted per request.",
            ["route", "model", "version"],
            buckets=ROW_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "mlfast_errors",
            "Error answers by kind (bad_request, invalid_input, unauthorized, "
            "too_large, timeout, internal, ...).",
            ["route", "protocol", "kind", "model"],
            registry=reg,
        )
        self.in_flight_gauge = Gauge(
            "mlfast_requests_in_flight",
            "Requests being handled now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.loads = Counter(
            "mlfast_model_loads",
            "Model version loads, by result (ok or failed).",
            ["model", "version", "result"],
            registry=reg,
        )

    def start(self) -> None:
        """In each worker: flush every FLUSH_INTERVAL seconds and at exit."""
        if not self.multiprocess or self._flusher_pid == os.getpid():
            return
        self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_loop, name="mlfast-metrics", daemon=True).start()
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
            requests, compute, errors = self.counts.drain()
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

    def model_load(
        self, name: str, version: str, ok: bool, seconds: Optional[float], reason: str
    ) -> None:
        self.loads.labels(name, version, "ok" if ok else "failed").inc()

    def render(self) -> Tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        self.flush()  # this worker's own counts, up to this request
        _reap_dead_workers(os.environ[MULTIPROC_ENV])
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

        return Route(
            "GET",
            "/metrics",
            metrics,
            "metrics",
            summary="Prometheus metrics",
            tag="Operations",
            protocol="ops",
            access=access,
            response_schema=MetricsText,
            response_types=("text/plain",),
            description="Prometheus text format: requests, latency, compute time, rows, "
            "errors, in-flight requests, model versions.",
        )


def _start_if_alive(ref: "weakref.ref[Metrics]") -> None:
    metrics = ref()
    if metrics is not None:
        metrics.start()


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self, n_buckets: int):
        self.counts = [0] * (n_buckets + 1)  # the last one is +Inf
        self.sum = 0.0

    def add(self, counts: Sequence[int], total: float) -> None:
        self.counts = [a + b for a, b in zip(self.counts, counts)]
        self.sum += total

    def family_buckets(self, bounds: Tuple[float, ...]) -> List[Tuple[str, float]]:
        out: List[Tuple[str, float]] = []
        total = 0
        for bound, count in zip(bounds, self.counts):
            total += count
            out.append((_le(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


def _copy(hist: _Histogram) -> _Histogram:
    out = _Histogram(len(hist.counts) - 1)
    out.add(hist.counts, hist.sum)
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
        self.inc = self._active.add  # inc(request)
        self.dec = self._active.discard  # dec(request)

    @property
    def value(self) -> int:
        return len(self._active)


# Counts taken: requests by (route, protocol, method, status, model, version)
# as [count, duration histogram, rows histogram]; compute by (model, version);
# errors by (route, protocol, kind, model).
Drained = Tuple[Dict[Tuple, list], Dict[Tuple[str, str], _Histogram], Dict[Tuple, int]]


class _Counts:
    """The request metrics of one process.  ``count(key, seconds, rows,
    compute_seconds)`` counts a request under ``key = (route.labels,
    status, served.labels)`` in a C ``RequestTally`` (csrc/tally.c: one
    call, no lock); errors, which are rare, under a lock here."""

    def __init__(self) -> None:
        from mlfast._core import RequestTally

        self._tally = RequestTally(LATENCY_BUCKETS, ROW_BUCKETS, COMPUTE_BUCKETS)
        self.count = self._tally.add
        self.in_flight = _InFlight()
        self._lock = threading.Lock()
        self._errors: Dict[Tuple[str, str, str, str], int] = {}

    def error(self, route: Route, kind: str, served: Optional[ServedModel]) -> None:
        key = (route.name, route.protocol, kind, served.name if served is not None else "")
        with self._lock:
            self._errors[key] = self._errors.get(key, 0) + 1

    def drain(self) -> Drained:
        """The counts taken since the last drain, handed over."""
        with self._lock:
            items = self._tally.drain()
            errors, self._errors = self._errors, {}
        requests: Dict[Tuple, list] = {}
        compute: Dict[Tuple[str, str], _Histogram] = {}
        for ((route, protocol, method), status, (model, version)), n, dur, rows, comp in items:
            latency = _Histogram(len(LATENCY_BUCKETS))
            latency.add(*dur)
            row_counts = _Histogram(len(ROW_BUCKETS))
            row_counts.add(*rows)
            requests[(route, protocol, method, status, model, version)] = [n, latency, row_counts]
            if any(comp[0]):
                compute.setdefault((model, version), _Histogram(len(COMPUTE_BUCKETS))).add(*comp)
        return requests, compute, errors


class _LocalSamples:
    """The request metrics of one process as a prometheus-client collector
    (the same names, labels and buckets as the multiprocess metrics): the
    counts drained at each scrape and added to the totals kept here."""

    def __init__(self, counts: _Counts) -> None:
        self._counts = counts
        self._lock = threading.Lock()
        self._requests: Dict[Tuple, list] = {}
        self._compute: Dict[Tuple[str, str], _Histogram] = {}
        self._errors: Dict[Tuple[str, str, str, str], int] = {}

    def _take(self) -> None:
        requests, compute, errors = self._counts.drain()
        for key, (n, dur, rows) in requests.items():
            series = self._requests.get(key)
            if series is None:
                self._requests[key] = [n, dur, rows]
            else:
                series[0] += n
                series[1].add(dur.counts, dur.sum)
                series[2].add(rows.counts, rows.sum)
        for key, hist in compute.items():
            self._compute.setdefault(key, _Histogram(len(COMPUTE_BUCKETS))).add(
                hist.counts, hist.sum
            )
        for key, n in errors.items():
            self._errors[key] = self._errors.get(key, 0) + n

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._lock:  # one scrape at a time adds to the totals; a copy to build from
            self._take()
            requests = {k: (n, _copy(dh), _copy(rh)) for k, (n, dh, rh) in self._requests.items()}
            compute = {k: _copy(h) for k, h in self._compute.items()}
            errors = dict(self._errors)
        in_flight = self._counts.in_flight.value
        total = CounterMetricFamily(
            "mlfast_requests",
            "Requests answered, by route, protocol, method, status, model and version.",
            labels=["route", "protocol", "method", "status", "model", "version"],
        )
        duration = HistogramMetricFamily(
            "mlfast_request_duration_seconds",
            "Time to answer a request, from the adapter's call into the core to the response.",
            labels=["route", "protocol", "model", "version"],
        )
        rows = HistogramMetricFamily(
            "mlfast_request_rows",
            "Rows predicted per request.",
            labels=["route", "model", "version"],
        )
        by_duration: Dict[Tuple, _Histogram] = {}
        by_rows: Dict[Tuple, _Histogram] = {}
        for (route, protocol, method, status, model, version), (n, dh, rh) in requests.items():
            total.add_metric([route, protocol, method, str(status), model, version], n)
            by_duration.setdefault(
                (route, protocol, model, version), _Histogram(len(LATENCY_BUCKETS))
            ).add(dh.counts, dh.sum)
            by_rows.setdefault((route, model, version), _Histogram(len(ROW_BUCKETS))).add(
                rh.counts, rh.sum
            )
        for labels, h in by_duration.items():
            duration.add_metric(list(labels), h.family_buckets(LATENCY_BUCKETS), h.sum)
        for labels, h in by_rows.items():
            if any(h.counts):
                rows.add_metric(list(labels), h.family_buckets(ROW_BUCKETS), h.sum)
        comp = HistogramMetricFamily(
            "mlfast_model_compute_seconds",
            "Time in the model's predict calls for one request.",
            labels=["model", "version"],
        )
        for (model, version), h in compute.items():
            comp.add_metric([model, version], h.family_buckets(COMPUTE_BUCKETS), h.sum)
        errs = CounterMetricFamily(
            "mlfast_errors",
            "Error answers by kind (bad_request, invalid_input, "
            "unauthorized, too_large, timeout, internal, ...).",
            labels=["route", "protocol", "kind", "model"],
        )
        for labels, n in errors.items():
            errs.add_metric(list(labels), n)
        flight = GaugeMetricFamily(
            "mlfast_requests_in_flight", "Requests being handled now.", value=in_flight
        )
        yield from (total, duration, comp, rows, errs, flight)

    def describe(self) -> list:
        return []


class _ModelCollector:
    """Gauges of the versions served, read from the registry at scrape time."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        loaded = GaugeMetricFamily(
            "mlfast_model_loaded",
            "1 for each model version served; default is 'true' for the version served by default.",
            labels=["model", "version", "default"],
        )
        seconds = GaugeMetricFamily(
            "mlfast_model_load_seconds",
            "Time to load the version's file.",
            labels=["model", "version"],
        )
        file_bytes = GaugeMetricFamily(
            "mlfast_model_file_bytes",
            "Size of the version's model file.",
            labels=["model", "version"],
        )
        memory = GaugeMetricFamily(
            "mlfast_model_memory_bytes",
            "Memory held by the version's arrays (Model.nbytes).",
            labels=["model", "version"],
        )
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
