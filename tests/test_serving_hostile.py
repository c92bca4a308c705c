"""Hostile requests, class by class, against real servers: FastAPI and Flask,
one worker and two.

Each class is generated -- many instances of one mistake or attack, not one
example: values nested past what orjson writes back or Python's repr
survives, lone UTF-16 surrogates, tensor shapes of a million entries,
bodies sent without a key, bodies of a million empty rows, clients that
send a byte at a time, paths and methods no route takes, oversized headers.
Whatever a request holds, the answer is JSON: a 4xx that says what was
wrong (a 200 where the request was valid after all), never a 500, a stack
trace or a worker that stops answering.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest
import requests
from support.ops import ADMIN_KEY, API_KEY, ROW, serve
from support.serving import FRAMEWORKS, assert_json_error

import mlfast

CONFIGS = [("fastapi", 1), ("flask", 1), ("fastapi", 2), ("flask", 2)]
NAME = "iris"
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
KEY = {"X-API-Key": API_KEY}
TIMEOUT = 2  # --request-timeout of the servers here, seconds
SECURITY = "x-content-type-options"


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    """The lesson's LogisticRegression fitted on a DataFrame: rows may come
    by feature name, on every protocol but V2."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    path = tmp_path_factory.mktemp("named") / "model.pkl"
    joblib.dump(LogisticRegression(max_iter=1000).fit(data.data, data.target), path)
    return path


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{f}-{w}" for f, w in CONFIGS])
def server(request, named_model):
    framework, workers = request.param
    with serve(
        named_model,
        framework=framework,
        workers=workers,
        env={"MLFAST_API_KEYS": API_KEY},
        log_level="warning",
        extra=["--name", NAME, "--request-timeout", str(TIMEOUT)],
    ) as s:
        s.framework, s.workers = framework, workers
        yield s
        assert_still_serving(s)


def assert_still_serving(server) -> None:
    """The server answers, and its log holds no trace of a server error."""
    assert server.process.poll() is None, server.log()[-3000:]
    r = requests.post(server.url + "/predict", json={"features": ROW}, headers=KEY, timeout=10)
    assert r.status_code == 200, r.text
    log = server.log()
    for sign in (
        "Traceback",
        "Exception in ASGI",
        "Error handling request",
        "WORKER TIMEOUT",
        "Worker exiting",
    ):
        assert sign not in log, log[-3000:]


def assert_answered(r: requests.Response, what: str) -> None:
    """A JSON answer, no server error, no trace; a message for an error."""
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), (what, r.headers)
    body = r.json()
    assert "Traceback" not in r.text, (what, r.text[:300])
    if r.status_code >= 400:
        assert isinstance(body.get("error"), (str, dict)) and body["error"], (what, body)


def post(server, path: str, body: bytes, headers=None, **kw) -> requests.Response:
    h = {"Content-Type": "application/json", **KEY, **(headers or {})}
    return requests.post(server.url + path, data=body, headers=h, timeout=30, **kw)


# -- where a request's values go: (route, body with one hole) -----------------------------

_NAMED = "{%s}" % ", ".join(
    f'"{n}": %s' if i == 0 else f'"{n}": {v}' for i, (n, v) in enumerate(zip(FEATURES, ROW))
)
_TENSOR = '{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}'
_V2 = f"/v2/models/{NAME}/infer"
PLACES = {
    "v2 id": (_V2, '{"id": %s, "inputs": [' + _TENSOR + "]}"),
    "v2 shape": (
        _V2,
        '{"inputs": [{"name": "x", "shape": %s, "datatype": "FP64", "data": [1, 2, 3, 4]}]}',
    ),
    "v2 datatype": (
        _V2,
        '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": %s, "data": [1, 2, 3, 4]}]}',
    ),
    "v2 data": (
        _V2,
        '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": %s}]}',
    ),
    "v2 input name": (
        _V2,
        '{"inputs": [{"name": %s, "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}',
    ),
    "v2 output name": (_V2, '{"inputs": [' + _TENSOR + '], "outputs": [{"name": %s}]}'),
    "v2 parameters": (_V2, '{"inputs": [' + _TENSOR + '], "parameters": %s}'),
    "v2 binary size": (
        _V2,
        '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
        '"parameters": {"binary_data_size": %s}}]}',
    ),
    "lesson named value": ("/predict", '{"features": ' + _NAMED + "}"),
    "lesson features": ("/predict", '{"features": %s}'),
    "lesson row value": ("/predict", '{"features": [5.1, %s, 1.4, 0.2]}'),
    "lesson key": ("/predict", "{%s: 1}"),
    "sagemaker named value": ("/invocations", '{"features": ' + _NAMED + "}"),
    "sagemaker instances": ("/invocations", '{"instances": [%s]}'),
    "vertex named value": (
        "/v1/endpoints/1/deployedModels/2:predict",
        '{"instances": [' + _NAMED + "]}",
    ),
    "vertex parameters": (
        "/v1/endpoints/1/deployedModels/2:predict",
        '{"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": %s}',
    ),
    "kserve v1 named value": (f"/v1/models/{NAME}:predict", '{"instances": [' + _NAMED + "]}"),
    "kserve v1 instances": (f"/v1/models/{NAME}:predict", '{"instances": %s}'),
}


def fill(place: str, value: str) -> Tuple[str, bytes]:
    path, template = PLACES[place]
    return path, (template % value).encode()


def deep(depth: int, kind: str, leaf: str) -> str:
    """A value nested ``depth`` levels deep, as JSON text (too deep for
    json.dumps to write)."""
    opens, closes = [], []
    for i in range(depth):
        as_list = kind == "list" or (kind == "mixed" and i % 2)
        opens.append("[" if as_list else '{"k": ')
        closes.append("]" if as_list else "}")
    return "".join(opens) + leaf + "".join(reversed(closes))


def deep_values(rng: random.Random, n: int) -> List[str]:
    """Depths around what orjson writes back (254) and up to what it reads
    (1024), where Python's repr and json.dumps hit the recursion limit."""
    depths = [250, 254, 255, 256, 300, 500, 800, 999, 1000, 1020]
    return [
        deep(
            rng.choice(depths),
            rng.choice(["list", "dict", "mixed"]),
            rng.choice(["1", '"x"', "null"]),
        )
        for _ in range(n)
    ]


def lone_surrogates(rng: random.Random, n: int) -> List[str]:
    """JSON strings holding a UTF-16 surrogate escape without its pair
    (valid JSON text that is no Unicode string), alone or inside lists and
    objects, as values and as keys."""
    out = []
    for _ in range(n):
        lone = "\\u%04x" % rng.choice(
            [0xD800, 0xDBFF, 0xDC00, 0xDFFF, rng.randrange(0xD800, 0xE000)]
        )
        text = "".join(rng.choice("abc01 ") for _ in range(rng.randrange(0, 6)))
        at = rng.randrange(len(text) + 1)
        s = f'"{text[:at]}{lone}{text[at:]}"'
        if rng.random() < 0.2:  # a pair reversed is two lone surrogates
            s = '"\\udc00\\ud800"'
        out.append(rng.choice([s, f"[{s}]", f"{{{s}: 1}}", f'{{"k": {s}}}', f"[1, 2, {s}, 4]"]))
    return out


def _send_all(server, values, places) -> int:
    sent = 0
    for place in places:
        for value in values:
            if place == "lesson key" and not value.startswith('"'):
                continue  # keys are strings
            path, body = fill(place, value)
            assert_answered(post(server, path, body), f"{place}: {value[:80]}")
            sent += 1
    return sent


def test_deeply_nested_values_are_client_errors(server):
    rng = random.Random(1)
    sent = _send_all(server, deep_values(rng, 12), PLACES)
    assert sent > 150
    # the shapes of a request that is right apart from its deep value
    r = post(server, *fill("v2 id", deep(300, "list", "1")))
    assert_json_error(r, 400, "'id' must be a string")
    r = post(server, *fill("v2 shape", deep(1000, "list", "1")))
    assert_json_error(r, 400, "shape must be a list of non-negative integers")
    r = post(server, *fill("kserve v1 named value", deep(1000, "dict", "1")))
    assert_json_error(r, 400, "non-numeric value", "sepal length")


def test_lone_surrogates_are_client_errors(server):
    rng = random.Random(2)
    values = lone_surrogates(rng, 10)
    sent = _send_all(server, values, PLACES)
    assert sent > 150
    r = post(server, *fill("v2 id", '"\\ud800"'))
    assert_json_error(r, 400, "lone UTF-16 surrogate")
    # a pair is a character: an id made of one is sent back as it came
    r = post(server, *fill("v2 id", '"\\ud83d\\ude00"'))
    assert r.status_code == 200 and r.json()["id"] == "\U0001f600", r.text


# -- work before limits ---------------------------------------------------------------------


def test_long_shapes_are_refused_before_they_are_walked(server):
    """math.prod over a shape of 1.5 million 2s multiplies a 1.5-million-bit
    number: the length is checked first."""
    for n in (3, 64, 10_000, 300_000, 1_500_000):
        body = (
            '{"inputs": [{"name": "x", "shape": ['
            + ", ".join(["2"] * n)
            + '], "datatype": "FP64", "data": [1, 2, 3, 4]}]}'
        ).encode()
        start = time.monotonic()
        r = post(server, _V2, body)
        elapsed = time.monotonic() - start
        assert_json_error(r, 400, "[rows, features]")
        assert elapsed < 3, (n, elapsed)


def _rss(server) -> int:
    import psutil

    root = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


class _BigBody:
    """About ``size`` bytes of rows, streamed (the client holds one chunk)
    with a Content-Length (requests reads ``len``)."""

    chunk = b"[5.1, 3.5, 1.4, 0.2]," * 3000

    def __init__(self, size: int):
        self.n = size // len(self.chunk)

    def __len__(self) -> int:
        return 1 + self.n * len(self.chunk) + 13

    def __iter__(self):
        yield b"["
        for _ in range(self.n):
            yield self.chunk
        yield b"[1, 2, 3, 4]]"


def test_bodies_without_a_key_are_not_read(server):
    """The key is checked on the headers: 16 bodies of 15 MB sent at once
    without a valid key cost the server no memory (FastAPI reads and drops
    them to answer 401; Flask answers before the body and gunicorn drops the
    rest, so a client still sending may see the connection close instead)."""
    for _ in range(2):  # warm: allocations that happen once
        post(server, "/predict", json.dumps({"features": ROW}).encode())
    before = _rss(server)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss(server))
            time.sleep(0.02)

    answers: list = []

    def send(i: int) -> None:
        headers = {"X-API-Key": "wrong-key-0123456789abcdef" if i % 2 else ""}
        try:
            r = requests.post(
                server.url + "/predict", data=_BigBody(15 * 10**6), headers=headers, timeout=60
            )
            answers.append(r.status_code)
        except requests.ConnectionError:
            answers.append("closed")

    sampler = threading.Thread(target=sample)
    sampler.start()
    clients = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=120)
    done.set()
    sampler.join()
    assert len(answers) == 16 and set(answers) <= {401, "closed"}, answers
    if server.framework == "fastapi":
        assert set(answers) == {401}, answers
    grown = peak[0] - before
    assert grown < 64 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"


def test_a_million_empty_rows_cost_no_more_than_rows(server):
    """15.7 MB of ``[],`` parsed is 5 million lists (550 MB); past 2^20
    arrays and objects a JSON body is refused before it is parsed."""
    size = 15_700_000
    wraps = [
        ("/predict", b'{"features": %s}'),
        ("/invocations", b"%s"),
        (_V2, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": %s}]}'),
        (f"/v1/models/{NAME}:predict", b'{"instances": %s}'),
        ("/v1/endpoints/1/deployedModels/2:predict", b'{"instances": %s}'),
    ]
    patterns = [b"[],", b"{},", b"[[]],", b"[1],", b"[{}],"]
    before = _rss(server)
    for pattern, (path, wrap) in zip(patterns, wraps):
        body = wrap % (b"[" + pattern * (size // len(pattern)) + b"[]]")
        start = time.monotonic()
        r = post(server, path, body)
        if r.status_code == 413:  # Vertex AI's 1.5 MB limit comes first
            continue
        assert_json_error(r, 400, "JSON arrays and objects")
        assert time.monotonic() - start < 10
    grown = _rss(server) - before
    assert grown < 150 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"


# -- slow clients ---------------------------------------------------------------------------


def _trickle(port: int, head: bytes, rest: bytes, every: float, until: float, out: dict) -> None:
    """Sends ``head``, then ``rest`` a byte every ``every`` seconds (until
    ``until`` seconds have passed); records what came back, when it came
    (``first``) and when the connection ended (``after``)."""

    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=until + 10)
    answer = b""
    out["first"] = None
    try:
        s.sendall(head)
        for b in rest:
            # stop as a client would once the server has answered or closed
            if time.monotonic() - start > until or select.select([s], [], [], 0)[0]:
                break
            s.sendall(bytes([b]))
            time.sleep(every)
        s.settimeout(max(1.0, until + 5 - (time.monotonic() - start)))
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            if not answer:
                out["first"] = time.monotonic() - start
            answer += chunk
    except OSError:
        pass  # the server closed the connection while we were sending
    finally:
        s.close()
    out["answer"], out["after"] = answer, time.monotonic() - start


def test_slow_clients_do_not_hold_the_server(server):
    """Six clients (more than a Flask worker's four threads) send their
    headers or body a byte every 0.4 s for up to 8 s.  Every other request
    is answered meanwhile, within the request timeout and a little; a body
    that has not arrived within the timeout gets 408 (on Flask, timed from
    when a thread starts reading it: two of the six wait for one of the
    four threads the first four hold until their deadline)."""
    port = server.port
    slow_headers = b"POST /predict HTTP/1.1\r\nHost: x\r\n"
    rest_headers = b"X-API-Key: " + API_KEY.encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
    body = json.dumps({"features": ROW}).encode()
    slow_body_head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-API-Key: "
        + API_KEY.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    results = [dict() for _ in range(6)]
    threads = [
        threading.Thread(
            target=_trickle,
            args=(
                port,
                *((slow_headers, rest_headers) if i % 2 else (slow_body_head, body)),
                0.4,
                8.0,
                results[i],
            ),
        )
        for i in range(6)
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)
    waits = []
    session = requests.Session()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        start = time.monotonic()
        r = session.post(server.url + "/predict", json={"features": ROW}, headers=KEY, timeout=30)
        waits.append(time.monotonic() - start)
        assert r.status_code == 200, r.text
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=30)
    assert max(waits) < TIMEOUT + 2, [round(w, 2) for w in waits]
    bound = TIMEOUT + 2 if server.framework == "fastapi" else 2 * TIMEOUT + 2
    for i, result in enumerate(results):
        if i % 2 == 0:  # a slow body: 408 once the timeout has passed
            assert result["answer"].startswith(b"HTTP/1.1 408"), result
            assert result["first"] < bound, result
        elif server.framework == "flask":  # slow headers: gunicorn's threads are let go
            assert result["after"] < bound, result


# -- smaller classes ------------------------------------------------------------------------


def _unknown_names(rng: random.Random, n: int) -> List[str]:
    alphabet = "abcdefghjklmnopqrstuvwxyz0123456789-_."
    names = ["nope", "IRIS", "iri", "model", "a" * 128, "x.y-z_1", "%C3%A9t%C3%A9", "..%2f..%2fetc"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) for _ in range(n)]
    return [name for name in names if NAME not in name]


def test_health_routes_name_no_model_on_a_miss(server):
    """Health routes are open: a miss says the name is unknown, and not which
    models and versions are served (routes that need a key list them)."""
    rng = random.Random(3)
    for name in _unknown_names(rng, 20):
        for path in (
            f"/v1/models/{name}",
            f"/v2/models/{name}/ready",
            f"/v2/models/{name}/versions/1/ready",
            f"/v2/models/{NAME}/versions/{name}/ready",
        ):
            r = requests.get(server.url + path, timeout=10)
            assert r.status_code == 404, (path, r.status_code)
            error = assert_json_error(r, 404)
            assert "versions:" not in error and "models:" not in error and "'1'" not in error, (
                path,
                error,
            )
            if f"/{NAME}/" not in path:  # the served model is named only by a caller who named it
                assert f"'{NAME}'" not in error, (path, error)
    r = requests.get(server.url + "/v2/models/nope", headers=KEY, timeout=10)
    assert_json_error(r, 404, f"'{NAME}'")  # with a key, the known ones are listed


def test_refusals_name_no_model(server):
    """A request without a valid key learns nothing about the model: no
    X-Model-Name or X-Model-Version on a 401."""
    rng = random.Random(4)
    routes = (
        requests.get(server.url + "/openapi.json", timeout=10)
        if server.framework == "fastapi"
        else None
    )
    paths = [
        "/predict",
        "/invocations",
        "/endpoints/e/invocations",
        "/v1/endpoints/1/deployedModels/2:predict",
        f"/v1/models/{NAME}:predict",
        _V2,
        f"/v2/models/{NAME}/versions/1/infer",
        "/v1/projects/p/locations/l/endpoints/e:predict",
    ]
    gets = [
        "/",
        "/v1/models",
        "/v2",
        f"/v2/models/{NAME}",
        "/metrics",
        "/v1/projects/p/locations/l/endpoints/e",
    ]
    if routes is not None:  # every route FastAPI lists is covered
        listed = set(routes.json()["paths"])
        assert len(listed) >= 20
    keys = [
        None,
        "",
        "wrong-key-0123456789abcdef",
        API_KEY[:-1],
        API_KEY + "x",
        "Bearer",
        "x" * 4000,
    ]
    for _ in range(40):
        key = rng.choice(keys)
        headers = (
            {}
            if key is None
            else rng.choice([{"X-API-Key": key}, {"Authorization": f"Bearer {key}"}])
        )
        if rng.random() < 0.5:
            r = requests.post(
                server.url + rng.choice(paths), json={"features": ROW}, headers=headers, timeout=10
            )
        else:
            r = requests.get(server.url + rng.choice(gets), headers=headers, timeout=10)
        assert r.status_code == 401, (r.url, r.text)
        assert_answered(r, r.url)
        assert "x-model-name" not in r.headers and "x-model-version" not in r.headers, dict(
            r.headers
        )
        assert r.headers[SECURITY] == "nosniff"


def _raw(port: int, request: bytes) -> Tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(request)
        except OSError:
            pass  # answered and closed before the whole request was sent
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def test_answers_outside_the_routes_are_json_with_security_headers(server):
    """Methods no route takes (OPTIONS included), paths with doubled or
    trailing slashes, and (Flask, where gunicorn limits them) oversized
    request lines and headers: JSON with the headers of every answer."""
    rng = random.Random(5)
    paths = [
        "/predict",
        "/ping",
        "/invocations",
        "/v2/health/live",
        f"/v2/models/{NAME}/infer",
        f"/v1/models/{NAME}",
        "/metrics",
        "/",
    ]
    for path in paths:
        for method in ("OPTIONS", "PUT", "DELETE", "PATCH", "TRACE"):
            status, headers, body = _raw(
                server.port,
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
            )
            assert status == 405, (method, path, status, body[:200])
            assert headers["content-type"].startswith("application/json"), (method, path, headers)
            assert headers[SECURITY] == "nosniff" and json.loads(body)["error"], (method, path)
    for path in paths:
        parts = path.split("/")
        for _ in range(3):
            at = rng.randrange(1, len(parts))
            odd = (
                "/".join(parts[:at]) + "//" + "/".join(parts[at:]) if len(parts) > 2 else path + "/"
            )
            for candidate in (odd, path + "/", path + "//"):
                status, headers, body = _raw(
                    server.port,
                    f"GET {candidate} HTTP/1.1\r\nHost: x\r\n"
                    f"{'X-API-Key: ' + API_KEY}\r\nConnection: close\r\n\r\n".encode(),
                )
                assert status < 500 and status not in (301, 302, 307, 308), (
                    candidate,
                    status,
                    body[:200],
                )
                assert headers["content-type"].startswith("application/json"), (candidate, headers)
                assert headers[SECURITY] == "nosniff", (candidate, headers)
    if server.framework != "flask":
        return
    for size in (9_000, 20_000, 65_000):
        for request in (
            f"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * size}\r\n\r\n",
            "GET /ping HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"X-{i}: a\r\n" for i in range(size // 90))
            + "\r\n",
            f"GET /{'p' * size} HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            status, headers, body = _raw(server.port, request.encode())
            assert status in (400, 414, 431), (size, status, body[:200])
            assert headers["content-type"].startswith("application/json"), headers
            assert headers[SECURITY] == "nosniff" and json.loads(body)["error"], body[:200]


def test_no_100_continue_for_a_body_that_will_not_be_read(server):
    """A client that asks before sending (``Expect: 100-continue``) a body
    over the limit, or without a key, is answered at once and never told to
    send it (FastAPI; gunicorn answers Expect itself before Flask runs)."""
    if server.framework != "fastapi":
        pytest.skip("gunicorn, not the app, answers Expect: 100-continue")
    for length in (16 * 2**20 + 1, 10**9, 10**15):
        for key, status in ((API_KEY, 413), ("", 401), ("wrong-key-0123456789abcdef", 401)):
            request = (
                f"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nX-API-Key: {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            ).encode()
            got, headers, body = _raw(server.port, request)
            assert got == status, (length, key, got, body[:200])
            assert b"100 Continue" not in body and headers.get("connection") == "close", (
                headers,
                body[:200],
            )
    # a request within the limit, with its key, is told to go on
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 34\r\n\r\n".encode()
        )
        assert s.recv(1024).startswith(b"HTTP/1.1 100 Continue")


# -- without a server -----------------------------------------------------------------------


def test_platform_needs_variables_sagemaker_or_vertex_sets():
    """Only what SageMaker or Vertex AI set in their containers turns off
    the refusal to serve 0.0.0.0 without keys: other packages' SM_* names
    (SM_FRAMEWORK) and look-alikes do not."""
    from mlfast.serving.ops import SAGEMAKER_VARIABLES, VERTEX_VARIABLES, check_bind, platform

    rng = random.Random(6)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
    others = {
        "SM_FRAMEWORK",
        "SM_VLLM_MODEL",
        "SM_HOSTS",
        "SAGEMAKER",
        "SAGEMAKER_",
        "AIP",
        "AIP_X",
        "MY_SAGEMAKER_BIND_TO_PORT",
        "sagemaker_bind_to_port",
    }
    others |= {
        rng.choice(["SM_", "SAGEMAKER_", "AIP_"]) + "".join(rng.choice(letters) for _ in range(8))
        for _ in range(50)
    }
    others -= set(SAGEMAKER_VARIABLES) | set(VERTEX_VARIABLES)
    for name in others:
        assert platform({name: "1"}) is None, name
        with pytest.raises(ValueError, match="refusing"):
            check_bind("0.0.0.0", None, False, {name: "1"})
    for name in SAGEMAKER_VARIABLES:
        assert platform({name: "x"}) == "SageMaker", name
        assert platform({name: ""}) is None, name
        check_bind("0.0.0.0", None, False, {name: "8080"})
    for name in VERTEX_VARIABLES:
        assert platform({name: "x"}) == "Vertex AI", name


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_repository_refuses_links_outside_it(tmp_path, framework):
    """A model file, a version or model directory, or a .sha256 that a
    symbolic link takes outside the repository is refused, and nothing of
    the file it points to shows (a link to /proc/self/environ had its first
    bytes quoted in the index); links inside the repository still load."""
    from test_serving_core import Client

    from mlfast.serving import create_app

    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("SECRET-TOKEN=" + "s3cr3t" * 10)
    outside_model = tmp_path / "outside" / "model.pkl"
    shutil.copy(mlfast.demo_model_path(), outside_model)
    outside_dir = tmp_path / "outside" / "version"
    outside_dir.mkdir()
    shutil.copy(mlfast.demo_model_path(), outside_dir / "model.joblib")
    root = tmp_path / "repo"
    (root / "iris" / "1").mkdir(parents=True)
    shutil.copy(mlfast.demo_model_path(), root / "iris" / "1" / "model.joblib")
    refused = []

    def version(name: str, number: str) -> Path:
        d = root / name / number
        d.mkdir(parents=True)
        refused.append((name, number))
        return d

    os.symlink(secret, version("iris", "2") / "model.pkl")
    os.symlink(outside_model, version("iris", "3") / "model.pkl")
    os.symlink(os.path.relpath(secret, root / "iris" / "4"), version("iris", "4") / "model.joblib")
    os.symlink(outside_dir, root / "iris" / "5")
    refused.append(("iris", "5"))
    d = version("iris", "6")
    shutil.copy(mlfast.demo_model_path(), d / "model.joblib")
    os.symlink(secret, d / "model.joblib.sha256")
    os.symlink(root / "iris" / "1" / "model.joblib", version("iris", "7") / "model.joblib")
    refused.remove(("iris", "7"))  # inside: served
    (root / "other").mkdir()
    os.symlink(outside_dir, root / "other" / "1")
    refused.append(("other", "1"))
    os.symlink(root / "iris", root / "alias")  # a model directory linked inside: served

    env = {"MLFAST_API_KEYS": "", "MLFAST_ADMIN_KEYS": ADMIN_KEY}
    c = Client(
        create_app(str(root), framework=framework, env=env, watch=False, default_model="iris"),
        framework,
    )
    admin = {"X-API-Key": ADMIN_KEY}
    r = c.post("/v2/repository/index", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert "s3cr3t" not in r.text and "SECRET" not in r.text
    index = {(e["name"], e["version"]): e for e in r.json()}
    for key in refused:
        assert index[key]["state"] == "UNAVAILABLE", index[key]
        assert "outside" in index[key]["reason"], index[key]
    assert index[("iris", "1")]["state"] == index[("iris", "7")]["state"] == "READY"
    assert index[("alias", "1")]["state"] == "READY"
    for name, number in refused:
        r = c.post(
            f"/v2/repository/models/{name}/load",
            json={"parameters": {"version": number}},
            headers=admin,
        )
        assert r.status_code in (400, 404), r.text
        assert "s3cr3t" not in r.text and "SECRET" not in r.text
    # the repository's routes, like every other, answer OPTIONS with a JSON 405
    for path in (
        "/v2/repository/index",
        "/v2/repository/models/iris/load",
        "/v2/repository/models/iris/unload",
    ):
        r = c._c.options(path)
        assert r.status_code == 405 and r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Content-Type"].startswith("application/json"), path
