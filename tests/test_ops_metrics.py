"""Monitoring against real servers: /metrics after known traffic (one
uvicorn worker, then two gunicorn workers in prometheus-client's
multiprocess mode), request ids, JSON access logs, security headers."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import requests
from support.ops import ROW, scrape, serve, value
from support.serving import iris

import mlfast
from mlfast.serving.metrics import FLUSH_INTERVAL


def test_metrics_after_known_traffic_one_worker():
    X = iris()[0]
    demo = mlfast.demo_model_path()
    # a small lesson limit, so that one request is refused as too large
    with serve(demo, extra=["--max-body", "lesson=4KB"]) as server:
        url = server.url
        s = requests.Session()
        for _ in range(5):
            assert s.post(url + "/predict", json={"features": ROW}, timeout=10).status_code == 200
        for _ in range(2):
            r = s.post(url + "/predict", json={"features": X[:10].tolist()}, timeout=10)
            assert r.status_code == 200 and len(r.json()["predictions"]) == 10
        for body in (b"{not json", b'{"features": [1, 2]}', b'{"rows": []}'):
            assert s.post(url + "/predict", data=body, timeout=10).status_code == 400
        r = s.post(url + "/predict", json={"features": X.tolist() * 2}, timeout=10)
        assert r.status_code == 413
        r = s.post(
            url + "/invocations",
            data="5.1,3.5,1.4,0.2\n",
            headers={"Content-Type": "text/csv"},
            timeout=10,
        )
        assert r.status_code == 200
        m = scrape(url)

        labels = dict(
            route="predict", protocol="lesson", method="POST", model="iris_logreg", version="1"
        )
        assert value(m, "mlfast_requests_total", status="200", **labels) == 7
        assert value(m, "mlfast_requests_total", status="400", **labels) == 3
        assert value(m, "mlfast_requests_total", status="413", **labels) == 1
        assert (
            value(
                m,
                "mlfast_requests_total",
                route="sagemaker_invocations",
                protocol="sagemaker",
                status="200",
            )
            == 1
        )
        # errors by kind: malformed JSON is a bad request; a wrong feature
        # count is the model refusing its input
        assert value(m, "mlfast_errors_total", route="predict", kind="too_large") == 1
        assert value(m, "mlfast_errors_total", route="predict", kind="invalid_input") == 1
        assert value(m, "mlfast_errors_total", route="predict", kind="bad_request") == 2
        # rows per request and compute time, for the requests that predicted
        rows = dict(route="predict", model="iris_logreg", version="1")
        assert value(m, "mlfast_request_rows_count", **rows) == 7
        assert value(m, "mlfast_request_rows_sum", **rows) == 5 + 2 * 10
        assert value(m, "mlfast_model_compute_seconds_count", model="iris_logreg", version="1") == 8
        compute = value(m, "mlfast_model_compute_seconds_sum", model="iris_logreg", version="1")
        latency = value(m, "mlfast_request_duration_seconds_sum", route="predict")
        assert 0 < compute < latency < 5
        assert value(m, "mlfast_request_duration_seconds_count", route="predict") == 11
        # buckets are cumulative and end with every request
        assert value(m, "mlfast_request_duration_seconds_bucket", route="predict", le="+Inf") == 11
        assert value(m, "mlfast_requests_in_flight") == 1  # the scrape itself
        # the model: loaded, its load time and size
        assert (
            value(m, "mlfast_model_loaded", model="iris_logreg", version="1", default="true") == 1
        )
        assert value(m, "mlfast_model_file_bytes", model="iris_logreg") == os.path.getsize(demo)
        assert value(m, "mlfast_model_memory_bytes", model="iris_logreg") > 0
        assert 0 < value(m, "mlfast_model_load_seconds", model="iris_logreg") < 5
        assert value(m, "mlfast_model_loads_total", model="iris_logreg", result="ok") == 1

        # the access log: one JSON line a request, with its request id
        time.sleep(0.2)
        lines = [e for e in server.access_log() if e["route"] == "predict"]
        assert len(lines) == 11
        assert {e["status"] for e in lines} == {200, 400, 413}
        assert all(len(e["request_id"]) == 32 for e in lines)
        assert sum(e["rows"] for e in lines) == 25
        assert [e.get("error") for e in lines if e["status"] == 413] == ["too_large"]


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_request_ids_and_headers(framework):
    with serve(mlfast.demo_model_path(), framework=framework) as server:
        r = requests.post(
            server.url + "/predict",
            json={"features": ROW},
            timeout=10,
            headers={"X-Request-ID": "trace-abc-123"},
        )
        assert r.headers["x-request-id"] == "trace-abc-123"
        assert r.headers["x-model-name"] == "iris_logreg" and r.headers["x-model-version"] == "1"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers  # plain HTTP
        generated = requests.post(server.url + "/predict", json={"features": ROW}, timeout=10)
        rid = generated.headers["x-request-id"]
        assert len(rid) == 32 and rid != "trace-abc-123"
        # a request id that cannot be echoed safely is replaced
        odd = requests.get(server.url + "/ping", timeout=10, headers={"X-Request-ID": "a b" * 100})
        assert odd.headers["x-request-id"] != "a b" * 100
        # errors carry them too, and no stack trace
        bad = requests.post(
            server.url + "/predict", data=b"{", timeout=10, headers={"X-Request-ID": "e-1"}
        )
        assert bad.status_code == 400 and bad.headers["x-request-id"] == "e-1"
        assert "Traceback" not in bad.text
        time.sleep(0.2)
        ids = [e["request_id"] for e in server.access_log()]
        assert "trace-abc-123" in ids and rid in ids and "e-1" in ids


def test_metrics_add_up_over_two_workers():
    """Two gunicorn workers behind one port: every scrape, whichever worker
    answers it, sums both workers' samples (prometheus-client's
    multiprocess mode)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        # a new connection each time, so that both workers get some
        return requests.post(
            server.url + "/predict", json={"features": ROW}, timeout=10
        ).status_code

    with serve(mlfast.demo_model_path(), workers=2) as server, ThreadPoolExecutor(4) as pool:
        sent, pids = 0, set()
        while len(pids) < 2 and sent < 400:  # bounded: 400 requests at most
            assert set(pool.map(one, range(20))) == {200}
            sent += 20
            time.sleep(0.1)
            pids = {e["pid"] for e in server.access_log() if e["route"] == "predict"}
        assert len(pids) == 2, f"one worker served all {sent} requests"
        # each worker hands its counts to the shared files within
        # FLUSH_INTERVAL (the one answering a scrape, before it answers)
        deadline = time.monotonic() + 10 * FLUSH_INTERVAL
        while (
            value(scrape(server.url), "mlfast_requests_total", route="predict", status="200")
            != sent
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        time.sleep(1.5 * FLUSH_INTERVAL)  # every worker's last flush came after its last request
        for _ in range(6):
            m = scrape(server.url)
            assert value(m, "mlfast_requests_total", route="predict", status="200") == sent
            assert value(m, "mlfast_request_rows_sum", route="predict") == sent
            assert value(m, "mlfast_request_duration_seconds_count", route="predict") == sent
            assert value(m, "mlfast_model_loaded", model="iris_logreg", version="1") == 1
            assert value(m, "mlfast_requests_in_flight") == 1
        time.sleep(0.1)
        pids_scraped = {e["pid"] for e in server.access_log() if e["route"] == "metrics"}
        files = os.listdir(os.path.join(_runtime_dir(server), "metrics"))
        assert {f"counter_{pid}.db" for pid in pids} <= set(files), files
        assert pids_scraped  # whichever worker answered, the sums were the same


def test_histogram_batches_fit_prometheus_client():
    """Workers add their counts to prometheus-client's histograms in
    batches, through the children's per-bucket values: the same exposition
    as one observe() an observation, or an error if prometheus-client has
    changed (never a miscount)."""
    from prometheus_client import (
        CollectorRegistry,
        Histogram,
        disable_created_metrics,
        generate_latest,
    )

    from mlfast.serving.metrics import LATENCY_BUCKETS, _add_histogram, _Histogram

    disable_created_metrics()

    values = [0.00005, 0.0003, 0.0003, 0.004, 0.7, 45.0]
    one, batch = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("t_seconds", "t", ["route"], buckets=LATENCY_BUCKETS, registry=one)
    h2 = Histogram("t_seconds", "t", ["route"], buckets=LATENCY_BUCKETS, registry=batch)
    for v in values:
        h1.labels("predict").observe(v)
    hist = _Histogram(len(LATENCY_BUCKETS))
    from bisect import bisect_left

    for v in values:
        hist.counts[bisect_left(LATENCY_BUCKETS, v)] += 1
        hist.sum += v
    _add_histogram(h2.labels("predict"), hist)
    assert generate_latest(one) == generate_latest(batch)
    with pytest.raises(RuntimeError, match="changed"):
        _add_histogram(object(), hist)


def _runtime_dir(server) -> str:
    """The server's runtime directory (mlfast-*): where the workers' mapped
    metric files live."""
    import psutil

    for child in psutil.Process(server.process.pid).children():
        for mapping in child.memory_maps():
            if mapping.path.endswith(".db") and "/metrics/" in mapping.path:
                return os.path.dirname(os.path.dirname(mapping.path))
    raise AssertionError("no worker maps a metrics file")


def test_compute_is_timed_apart_from_the_request():
    """A batch that takes the model a while: compute time is most of the
    request's time, and both histograms saw it."""
    X = np.tile(iris()[0], (100, 1))  # 15,000 rows
    with serve(mlfast.demo_model_path()) as server:
        r = requests.post(server.url + "/predict", json={"features": X.tolist()}, timeout=30)
        assert r.status_code == 200
        m = scrape(server.url)
        assert value(m, "mlfast_request_rows_sum", route="predict") == 15000
        compute = value(m, "mlfast_model_compute_seconds_sum")
        total = value(m, "mlfast_request_duration_seconds_sum", route="predict")
        assert 0 < compute < total
