#!/usr/bin/env python3
"""Fuzz target: request bodies and headers through the serving core.

Each input picks a model, a route (every POST route of every protocol: the
lesson's /predict, SageMaker's invocations, Vertex AI, KServe V1 and the
Open Inference Protocol's infer, JSON or Triton's binary extension), a
Content-Type, an Accept and an ``Inference-Header-Content-Length``, and the
rest of it is the body.  The route's handler is called directly, as
``Service.handle`` calls it: whatever escapes must be what ``handle`` turns
into a 4xx (``service.status_of``: an ``HttpError`` with a 4xx status, a
domain error of ``serving.errors`` such as ``InvalidInput``, or a
``ValueError``, ``MlfastError`` included).  Anything else, or an error
answered with a 5xx, is a crash here (libFuzzer writes the input to
fuzz/artifacts/); so is an input that takes seconds, or hundreds of MB at
the peak.  A Response is checked too: a status, bytes, and a JSON body that
parses when it says JSON.

Python-level coverage (atheris instruments mlfast.serving); the C kernels
run too, in the sanitizer build of fuzz/run.sh.  ``make fuzz`` runs it.
"""

from __future__ import annotations

import os
import resource
import time
import traceback
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["mlfast.serving"]):
    import mlfast
    from mlfast.serving import (  # noqa: F401 - imported here to be instrumented
        build_service,
        codec,
        kserve_v1,
        lesson,
        oip,
        repository_routes,
        sagemaker,
        vertex,
    )
    from mlfast.serving.http import HttpError, Request
    from mlfast.serving.service import status_of

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "versions" / "sk1.9.1"

CONTENT_TYPES = [
    "application/json",
    "text/csv",
    "application/x-npy",
    "application/octet-stream",
    "",
    "text/plain",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/vnd.api+json",
    "multipart/form-data",
    "TEXT/CSV",
    "application/x-npy; q=1",
]
ACCEPTS = [
    None,
    "application/json",
    "text/csv",
    "*/*",
    "text/*",
    "image/png",
    "text/csv;q=0.5, application/json;q=0.9",
    "application/json;q=0",
    "",
    "x",
]


def _models():
    """A few models that take different paths through the decoders: the
    lesson's iris classifier (int labels), a model fitted on a DataFrame
    (rows by feature name), string labels, NaN-aware boosting, a
    transformer, and a multi-output forest."""
    out = [mlfast.load(mlfast.demo_model_path())]
    for name in (
        "logreg_named",
        "logreg_strings_obj",
        "hgbc_nan",
        "standard_scaler",
        "imputer_mean_indicator",
    ):
        for path in (FIXTURES / f"{name}.joblib", FIXTURES / f"{name}.z3.joblib"):
            if path.exists():
                out.append(mlfast.load(path))
    try:
        from sklearn.ensemble import RandomForestClassifier

        X = np.arange(40, dtype=float).reshape(20, 2)
        Y = np.stack([np.arange(20) % 2, np.arange(20) % 3], axis=1)
        out.append(
            mlfast.compile(
                RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)
            )
        )
    except ImportError:
        pass
    return out


SERVICES = []
for _model in _models():
    _service = build_service(_model, name="m", env={})
    _posts = [r for r in _service.routes if r.method == "POST"]
    _gets = [r for r in _service.routes if r.method == "GET"]
    SERVICES.append((_service, _posts, _gets))


def check_response(response, route) -> None:
    assert isinstance(response.status, int) and 200 <= response.status < 600, response
    assert isinstance(response.body, bytes), response
    if response.status >= 500:
        raise AssertionError(f"{route.name} answered {response.status}: {response.body[:300]!r}")
    if response.content_type == "application/json":
        orjson.loads(response.body)


# An input is an 8-byte prefix choosing the request's shape, then the body:
#   [0] model  [1] route  [2] Content-Type  [3] Accept
#   [4] Inference-Header-Content-Length: 0 none, 1 the number in [5:7], 2 junk
#   [5:7] that number (little endian)  [7] path parameters and headers:
#   bit 0 a wrong model name (404), bit 1 version "2", bit 2 a custom attribute
#   header, bit 3 a GET route instead of a POST route
PREFIX = 8


def request_of(data: bytes):
    head = data[:PREFIX].ljust(PREFIX, b"\0")
    body = data[PREFIX:]
    service, posts, gets = SERVICES[head[0] % len(SERVICES)]
    flags = head[7]
    routes = gets if flags & 8 else posts
    route = routes[head[1] % len(routes)]
    headers = {}
    ct = head[2] % (len(CONTENT_TYPES) + 1)
    headers["content-type"] = CONTENT_TYPES[ct] if ct < len(CONTENT_TYPES) else "x/\u00e9;;=q"
    accept = ACCEPTS[head[3] % len(ACCEPTS)]
    if accept is not None:
        headers["accept"] = accept
    mode = head[4] % 3
    if mode == 1:
        headers["inference-header-content-length"] = str(int.from_bytes(head[5:7], "little"))
    elif mode == 2:
        headers["inference-header-content-length"] = head[5:7].decode("latin-1") + "1"
    if flags & 4:
        headers["x-amzn-sagemaker-custom-attributes"] = "a=1"
    params = {}
    for key in route.param_names:
        params[key] = "no-such-model" if flags & 1 else "m"
    if "version" in params:
        params["version"] = "2" if flags & 2 else "1"
    return route, Request(route.method, route.path, params, headers, body)


# Findings already reported, each with its test in
# tests/test_hostile_regressions.py: skipped here so that fuzzing looks for
# new ones (FUZZ_STRICT=1 stops on them too).  Remove an entry with its fix.
KNOWN: set = set()
# (exception class name, function name in its traceback); F5 of the
# hardening run -- ("TokenError", "_filter_header") and ("TypeError",
# "_read_array_header") from decode_npy -- was one until it was fixed.
STRICT = os.environ.get("FUZZ_STRICT") == "1"


def known(exc: BaseException) -> bool:
    if STRICT:
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return any((type(exc).__name__, f.name) in KNOWN for f in frames)


# What one input may cost: its body is at most a fuzzer's input (a few KB),
# so anything near these is work out of proportion to the request (a shape
# of a million entries multiplied, a million rows parsed).
MAX_SECONDS = 2.0
MAX_GROWTH_KB = 512 * 1024


def TestOneInput(data: bytes) -> None:
    route, request = request_of(data)
    start, peak = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        response = route.handler(request)
    except Exception as e:  # noqa: BLE001 - sorted out below
        if status_of(e) >= 500 and known(e):
            return
        handled(e, route)
        response = None
    elapsed = time.monotonic() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    if elapsed > MAX_SECONDS or grown > MAX_GROWTH_KB:
        raise AssertionError(
            f"{route.name}: one input took {elapsed:.1f} s and {grown // 1024} MB more at the peak"
        )
    if response is not None:
        check_response(response, route)


def handled(exc: Exception, route) -> None:
    """Raises unless Service.handle would answer exc with a 4xx."""
    status = status_of(exc)
    if 400 <= status < 500:
        return
    if isinstance(exc, HttpError):
        raise AssertionError(f"{route.name}: HttpError {status}: {exc.message}") from exc
    raise exc


if __name__ == "__main__":
    from _harness import run

    run(TestOneInput)
