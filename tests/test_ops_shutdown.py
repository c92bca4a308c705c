"""Graceful shutdown: SIGTERM (what SageMaker, Vertex AI, Kubernetes and
docker stop send) stops accepting, lets the requests in flight finish, then
exits 0.  The requests are in flight for real: each client has sent its
headers and half its body when the signal arrives, and sends the rest
after."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests
from support.ops import ROW, serve
from support.serving import iris

import mlfast

IN_FLIGHT = 6


def _start_request(port: int, body: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    s.sendall(body[: len(body) // 2])
    return s


def _finish_request(s: socket.socket, body: bytes) -> bytes:
    s.sendall(body[len(body) // 2 :])
    chunks = []
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    s.close()
    return b"".join(chunks)


@pytest.mark.parametrize("framework,workers", [("fastapi", 1), ("fastapi", 2), ("flask", 2)])
def test_sigterm_finishes_requests_in_flight(framework, workers):
    X = iris()[0]
    bodies = [
        json.dumps({"features": X[i * 10 : (i + 1) * 10].tolist()}).encode()
        for i in range(IN_FLIGHT)
    ]
    with serve(mlfast.demo_model_path(), framework=framework, workers=workers) as server:
        # warm: every worker has answered once
        for _ in range(4):
            assert (
                requests.post(
                    server.url + "/predict", json={"features": ROW}, timeout=10
                ).status_code
                == 200
            )
        sockets = [_start_request(server.port, b) for b in bodies]
        time.sleep(0.3)  # the server has read the headers and half of each body
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(0.5)
        # no new connections are taken once it is shutting down
        refused = False
        try:
            r = requests.post(server.url + "/predict", json={"features": ROW}, timeout=3)
        except requests.RequestException:
            refused = True
        else:
            refused = r.status_code >= 500
        answers = [None] * IN_FLIGHT

        def finish(i):
            answers[i] = _finish_request(sockets[i], bodies[i])

        threads = [threading.Thread(target=finish, args=(i,)) for i in range(IN_FLIGHT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        code = server.process.wait(timeout=20)
        log = server.log()
    for i, raw in enumerate(answers):
        assert raw is not None and raw.startswith(b"HTTP/1.1 200"), (i, raw, log[-2000:])
        payload = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        assert len(payload["predictions"]) == 10
    assert refused, "a new request was served after SIGTERM"
    assert code == 0, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
