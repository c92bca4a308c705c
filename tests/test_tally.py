"""mlfast._core.RequestTally, the C counts behind the serving metrics
(csrc/tally.c), against a Python reference: bucket by ``bisect_left`` (a
value goes to the first bound >= it, Prometheus's ``le``), sums in the same
order; then the metrics built on it, scraped more than once."""

from __future__ import annotations

import math
import threading
from bisect import bisect_left

import numpy as np
import pytest

import mlfast
from mlfast._core import RequestTally
from mlfast.serving.metrics import COMPUTE_BUCKETS, LATENCY_BUCKETS, ROW_BUCKETS

KEY = (("predict", "lesson", "POST"), 200, ("iris", "1"))


def reference(values, bounds):
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[len(bounds) if math.isnan(v) else bisect_left(bounds, v)] += 1
    return counts


def test_buckets_and_sums_match_the_reference():
    rng = np.random.default_rng(5)
    tally = RequestTally(LATENCY_BUCKETS, ROW_BUCKETS, COMPUTE_BUCKETS)
    # every bound itself, just above and below it, far outside, and random
    edges = [b * f for b in LATENCY_BUCKETS for f in (1.0, 1 - 1e-12, 1 + 1e-12)]
    seconds = edges + [0.0, -1.0, 1e9, math.inf, math.nan] + list(10 ** rng.uniform(-6, 2, 3000))
    rows = list(rng.integers(1, 2_000_000, len(seconds)))
    rows[: len(ROW_BUCKETS)] = ROW_BUCKETS  # each bound exactly
    compute = [s / 3 for s in seconds]
    for s, r, c in zip(seconds, rows, compute):
        tally.add(KEY, s, int(r), c)
    [(key, n, (dc, ds), (rc, rs), (cc, cs))] = tally.drain()
    assert key == KEY and n == len(seconds)
    assert list(dc) == reference(seconds, LATENCY_BUCKETS)
    assert list(rc) == reference([float(r) for r in rows], ROW_BUCKETS)
    assert list(cc) == reference(compute, COMPUTE_BUCKETS)
    assert math.isnan(ds) and math.isnan(cs)  # a NaN went in: the sum says so
    assert rs == float(sum(float(r) for r in rows))
    assert tally.drain() == []  # drained: starts afresh


def test_a_request_of_no_rows_counts_its_latency_only():
    tally = RequestTally((1.0,), (1,), (1.0,))
    tally.add(KEY, 0.5, 0, 0.0)
    tally.add(KEY, 2.0, 3, 0.25)
    [(_, n, (dc, ds), (rc, rs), (cc, cs))] = tally.drain()
    assert n == 2 and dc == (1, 1) and ds == 2.5
    assert rc == (0, 1) and rs == 3.0 and cc == (1, 0) and cs == 0.25


def test_label_sets_are_kept_apart_and_many_fit():
    tally = RequestTally((1.0,), (1,), (1.0,))
    keys = [
        (("r", "p", "POST"), status, (f"m{i}", "1")) for i in range(300) for status in (200, 400)
    ]
    for i, key in enumerate(keys):
        for _ in range(i % 3 + 1):
            tally.add(key, 0.5, 1, 0.1)
    assert tally.series() == len(keys)
    got = {key: n for key, n, *_ in tally.drain()}
    assert got == {key: i % 3 + 1 for i, key in enumerate(keys)}
    assert tally.series() == 0


@pytest.mark.parametrize(
    "key", [[1], {"a": 1}, (1.5,), (object(),), ((1, [2]),), "predict", ((((("deep",),),),),)]
)
def test_keys_that_could_run_python_code_are_refused(key):
    tally = RequestTally((1.0,), (1,), (1.0,))
    with pytest.raises(TypeError, match="keys are tuples"):
        tally.add(key, 0.5, 1, 0.1)
    assert tally.drain() == []


@pytest.mark.parametrize(
    "bounds, message",
    [
        ((), "0 bounds"),
        (tuple(range(1, 66)), "65 bounds"),
        ((1.0, 1.0), "increasing"),
        ((2.0, 1.0), "increasing"),
        ((1.0, math.inf), "finite"),
        ((math.nan,), "finite"),
        (("a",), "real number"),
        (5, "sequence"),
    ],
)
def test_bad_bounds_are_refused(bounds, message):
    with pytest.raises((ValueError, TypeError), match=message):
        RequestTally(bounds, (1,), (1.0,))


def test_bad_calls_are_refused():
    tally = RequestTally((1.0,), (1,), (1.0,))
    with pytest.raises(TypeError, match="takes 4 arguments"):
        tally.add(KEY, 1.0)
    with pytest.raises(TypeError):
        tally.add(KEY, "1.0", 1, 1.0)
    with pytest.raises(RuntimeError, match="already initialised"):
        tally.__init__((1.0,), (1,), (1.0,))
    bare = RequestTally.__new__(RequestTally)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.add(KEY, 1.0, 1, 1.0)
    with pytest.raises(RuntimeError, match="not initialised"):
        bare.drain()


def test_bounds_are_read_from_a_copy():
    """A bound's __float__ that empties the caller's list must not make the
    constructor read freed memory: the bounds are copied first."""

    class Shrinks:
        def __float__(self):
            bounds.clear()
            return 1.0

    bounds = [Shrinks(), 2.0, 3.0]
    tally = RequestTally(bounds, (1,), (1.0,))
    tally.add(KEY, 2.5, 1, 0.5)
    [(_, n, (dc, _), _, _)] = tally.drain()
    assert n == 1 and dc == (0, 0, 1, 0)


def test_init_run_again_from_a_bound_is_refused():
    """__init__ re-entered from a bound's __float__ (with other bounds) must
    not leave a tally whose buffers have another shape than its bounds."""

    class Reenters:
        def __float__(self):
            tally.__init__((1.0,), (1,), (1.0,))
            tally.add(KEY, 0.5, 1, 0.5)
            return 1.0

    tally = RequestTally.__new__(RequestTally)
    with pytest.raises(RuntimeError, match="already initialised"):
        tally.__init__([Reenters()] + [float(i) for i in range(2, 60)], (1,), (1.0,))
    for _ in range(100):  # the inner shape, consistently: no write past the buffers
        tally.add((("r", "p", "POST"), 200, ("m", str(_))), 0.5, 1, 0.5)
    got = tally.drain()
    assert len(got) == 101 and all(len(lat[0]) == 2 for _, _, lat, _, _ in got)


def test_threads_adding_while_another_drains_lose_nothing():
    tally = RequestTally(LATENCY_BUCKETS, ROW_BUCKETS, COMPUTE_BUCKETS)
    keys = [(("r", "p", "POST"), s, ("m", str(v))) for s in (200, 400) for v in range(20)]
    per_thread, n_threads = 20_000, 4
    totals: dict = {}
    done = threading.Event()

    def add(t):
        for i in range(per_thread):
            tally.add(keys[(i * 7 + t) % len(keys)], 0.001, 1, 0.0001)

    def drain():
        while True:
            finished = done.is_set()
            for key, n, *_ in tally.drain():
                totals[key] = totals.get(key, 0) + n
            if finished:
                return

    drainer = threading.Thread(target=drain)
    drainer.start()
    workers = [threading.Thread(target=add, args=(t,)) for t in range(n_threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    drainer.join()
    assert sum(totals.values()) == per_thread * n_threads
    assert set(totals) == set(keys)


def test_metrics_keep_their_totals_across_scrapes():
    """One process: a scrape drains the tally into totals, so counters keep
    growing from scrape to scrape (a scrape must never reset them)."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlfast.serving import build_service
    from mlfast.serving.http import Request
    from mlfast.serving.ops import Ops

    service = build_service(mlfast.demo_model_path(), ops=Ops(access_log=False))
    predict = next(r for r in service.routes if r.name == "predict")
    v2_infer = next(r for r in service.routes if r.name == "v2_infer")

    def call(body):
        return service.handle(
            predict, Request("POST", "/predict", {}, {"content-type": "application/json"}, body)
        ).status

    def scrape(route="predict"):
        body, _ = service.metrics.render()
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                if s.name.startswith("mlfast_") and s.labels.get("route", route) == route:
                    out[
                        (s.name, s.labels.get("status"), s.labels.get("le"), s.labels.get("kind"))
                    ] = s.value
        return out

    for _ in range(3):
        assert call(b'{"features": [5.1, 3.5, 1.4, 0.2]}') == 200
    assert call(b'{"features": [1, 2]}') == 400
    first = scrape()
    assert first[("mlfast_requests_total", "200", None, None)] == 3
    assert first[("mlfast_requests_total", "400", None, None)] == 1
    assert first[("mlfast_errors_total", None, None, "invalid_input")] == 1
    assert first[("mlfast_model_compute_seconds_count", None, None, None)] == 3
    assert (
        first[("mlfast_request_rows_count", None, None, None)] == 3
    )  # the refused request: no rows
    assert first[("mlfast_request_duration_seconds_count", None, None, None)] == 4
    assert scrape() == first  # nothing new: the same figures, not zeros
    for _ in range(2):
        assert call(b'{"features": [[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 4.8, 1.8]]}') == 200
    assert call(b'{"features": [1, 2]}') == 400
    third = scrape()
    assert third[("mlfast_requests_total", "200", None, None)] == 5
    assert third[("mlfast_request_rows_sum", None, None, None)] == 3 + 2 * 2
    assert third[("mlfast_request_duration_seconds_bucket", None, "+Inf", None)] == 7
    assert third[("mlfast_errors_total", None, None, "invalid_input")] == 2
    assert third[("mlfast_model_compute_seconds_count", None, None, None)] == 5

    # a model that does not exist: counted under empty model labels
    unknown = Request(
        "POST",
        "/v2/models/nope/infer",
        {"name": "nope"},
        {"content-type": "application/json"},
        b'{"inputs": []}',
    )
    assert service.handle(v2_infer, unknown).status == 404
    samples = [
        s
        for f in text_string_to_metric_families(service.metrics.render()[0].decode())
        for s in f.samples
        if s.name == "mlfast_requests_total" and s.labels["route"] == "v2_infer"
    ]
    assert [
        (s.labels["status"], s.labels["model"], s.labels["version"], s.value) for s in samples
    ] == [("404", "", "", 1.0)]


def test_a_status_that_is_not_a_plain_int_is_counted():
    """A handler answering with an HTTPStatus (an IntEnum, whose hash is
    Python code) is counted under its number, not turned into a 500."""
    from http import HTTPStatus

    from prometheus_client.parser import text_string_to_metric_families

    from mlfast.serving import build_service
    from mlfast.serving.http import Request, Response, Route
    from mlfast.serving.ops import Ops

    service = build_service(mlfast.demo_model_path(), ops=Ops(access_log=False))
    service.add_routes(
        [
            Route(
                "GET",
                "/custom",
                lambda r: Response(HTTPStatus.ACCEPTED, b"{}"),
                "custom",
                protocol="mine",
            )
        ]
    )
    custom = service.routes[-1]
    for _ in range(2):
        assert (
            service.handle(custom, Request("GET", "/custom", {}, {})).status == HTTPStatus.ACCEPTED
        )
    samples = [
        s
        for f in text_string_to_metric_families(service.metrics.render()[0].decode())
        for s in f.samples
        if s.name == "mlfast_requests_total" and s.labels["route"] == "custom"
    ]
    assert [(s.labels["status"], s.value) for s in samples] == [("202", 2.0)]
