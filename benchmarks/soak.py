"""Soak test of ``mlfast serve``: a million requests, valid and not, from
several clients at once, and the server must answer every one of them.

    .venv/bin/python benchmarks/soak.py                       # 1,000,000 requests
    .venv/bin/python benchmarks/soak.py --requests 50000 --segment 10   # a quick one

What it does:

1. starts ``mlfast serve MODEL --workers 2`` on 127.0.0.1 (FastAPI under
   gunicorn; ``--framework flask`` for Flask), the bundled iris model by
   default;
2. checks every payload once with a plain HTTP client: each must get its
   expected status (200, 400, 404, 405, 406, 413, 415) -- so the rotation
   below is known to hold the mix it claims;
3. runs ``wrk`` (apt-get install wrk) in segments of --segment seconds, with
   --connections connections over --threads threads, each request the next
   of a rotation of payloads: the lesson's JSON (one row, rows, bare arrays,
   instances, rows with null, NaN, wrong feature counts, strings, bad JSON,
   empty and deeply nested bodies, wrong content types), SageMaker CSV and
   NPY with JSON and CSV answers and a refused Accept, Vertex AI instances,
   KServe V1, V2 tensors as JSON and in Triton's binary extension, health and
   metadata GETs, unknown routes and methods, and bodies past the 1.5 MB
   (Vertex) and 6 MB (SageMaker) limits;
4. samples the resident memory (RSS) of the gunicorn workers every second;
5. repeats until --requests requests were answered, then fails (exit 1) on
   any 5xx, any socket error wrk counted (connect, read, write, timeout: a
   dropped connection), a worker that died or was replaced, a traceback in
   the server's log (but for starlette's ClientDisconnect from the requests
   wrk cuts off when a run ends, counted apart: see
   tests/test_hostile_regressions.py), a payload that stops getting its
   expected status, or
   worker RSS that grew by more than --max-rss-growth MiB between the end
   of the first segment (warm) and the end.

Prints the figures (requests, req/s, status histogram, RSS over time) and
writes them as JSON with --json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

LUA = r"""
-- Rotation of prepared requests, one file per request in the directory
-- named after `--`: a request-line and headers, a blank line, the body.
-- The rotation order is listed in <dir>/rotation (one file name a line).
local requests = {}
local turn = 0
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local dir = args[1]
  local prepared = {}
  local order = assert(io.open(dir .. "/rotation", "r"))
  for name in order:lines() do
    if prepared[name] == nil then
      local f = assert(io.open(dir .. "/" .. name, "rb"))
      local raw = f:read("*a")
      f:close()
      local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
      local method, path = head:match("^(%S+) (%S+)")
      local headers = {}
      for k, v in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do headers[k] = v end
      if method == "GET" then body = nil end
      prepared[name] = wrk.format(method, path, headers, body)
    end
    requests[#requests + 1] = prepared[name]
  end
  order:close()
  -- each thread starts at another place in the rotation
  turn = (id or 0) * 7919 % #requests
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'SOAKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "non2xx3xx": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(99), latency.max,
    table.concat(parts, ", ")))
end
"""


# ---- payloads ----------------------------------------------------------------------------


class Payload:
    def __init__(
        self,
        name: str,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Optional[Dict[str, str]] = None,
        expect: int = 200,
        weight: int = 10,
    ):
        self.name = name
        self.method = method
        self.path = path
        self.body = body
        self.headers = dict(headers or {})
        self.expect = expect
        self.weight = weight

    def raw(self) -> bytes:
        head = f"{self.method} {self.path}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in self.headers.items()
        )
        return head.encode() + b"\r\n" + self.body


def payloads(model: str, n_features: int) -> List[Payload]:
    """The mix, by weight per 10,000 requests."""
    import numpy as np

    row = [5.1, 3.5, 1.4, 0.2][:n_features] + [1.0] * max(0, n_features - 4)
    rows = [row, [6.7, 3.0, 5.2, 2.3][:n_features] + [1.0] * max(0, n_features - 4)] * 5
    JSON = {"Content-Type": "application/json"}
    js = lambda v: json.dumps(v).encode()  # noqa: E731

    def npy(a) -> bytes:
        buf = io.BytesIO()
        np.save(buf, np.asarray(a))
        return buf.getvalue()

    csv = ("\n".join(",".join(map(str, r)) for r in rows) + "\n").encode()
    v2 = {
        "inputs": [
            {"name": "input", "shape": [len(rows), n_features], "datatype": "FP64", "data": rows}
        ]
    }
    raw32 = np.asarray(rows, dtype="<f4").tobytes()
    triton_header = js(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [len(rows), n_features],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw32)},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    )
    triton = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(triton_header)),
    }
    nested = b"[" * 5000 + b"]" * 5000
    vertex = f"/v1/endpoints/e/deployedModels/{model}:predict"
    P = Payload
    return [
        # the lesson
        P("lesson-one-row", "POST", "/predict", js({"features": row}), JSON, 200, 1500),
        P("lesson-rows", "POST", "/predict", js({"features": rows}), JSON, 200, 500),
        P("lesson-bare-rows", "POST", "/predict", js(rows), JSON, 200, 300),
        P("lesson-instances", "POST", "/predict", js({"instances": rows}), JSON, 200, 300),
        P("lesson-no-content-type", "POST", "/predict", js({"features": row}), {}, 200, 200),
        P("lesson-bad-json", "POST", "/predict", b'{"features": [1, 2', JSON, 400, 300),
        P(
            "lesson-wrong-feature-count",
            "POST",
            "/predict",
            js({"features": row[:-1]}),
            JSON,
            400,
            300,
        ),
        P(
            "lesson-nan",
            "POST",
            "/predict",
            json.dumps({"features": [float("nan")] + row[1:]}).encode(),
            JSON,
            400,
            200,
        ),
        P("lesson-null", "POST", "/predict", js({"features": [None] + row[1:]}), JSON, 400, 200),
        P(
            "lesson-infinity",
            "POST",
            "/predict",
            b'{"features": [Infinity' + b", 1" * (n_features - 1) + b"]}",
            JSON,
            400,
            100,
        ),
        P(
            "lesson-strings",
            "POST",
            "/predict",
            js({"features": ["a"] * n_features}),
            JSON,
            400,
            200,
        ),
        P("lesson-ragged", "POST", "/predict", js({"features": [row, row[:-1]]}), JSON, 400, 100),
        P("lesson-missing-key", "POST", "/predict", js({"x": row}), JSON, 400, 100),
        P("lesson-empty-body", "POST", "/predict", b"", JSON, 400, 100),
        P("lesson-deeply-nested", "POST", "/predict", nested, JSON, 400, 50),
        P(
            "lesson-wrong-content-type",
            "POST",
            "/predict",
            b"\x89PNG\r\n",
            {"Content-Type": "image/png"},
            415,
            200,
        ),
        P("lesson-csv", "POST", "/predict", csv, {"Content-Type": "text/csv"}, 200, 100),
        P("lesson-get-is-405", "GET", "/predict", b"", {}, 405, 50),
        P("unknown-route-404", "POST", "/no/such/route", js({"features": row}), JSON, 404, 50),
        # SageMaker
        P("sagemaker-json", "POST", "/invocations", js({"features": row}), JSON, 200, 500),
        P("sagemaker-csv", "POST", "/invocations", csv, {"Content-Type": "text/csv"}, 200, 500),
        P(
            "sagemaker-csv-to-csv",
            "POST",
            "/invocations",
            csv,
            {"Content-Type": "text/csv", "Accept": "text/csv"},
            200,
            200,
        ),
        P(
            "sagemaker-npy",
            "POST",
            "/invocations",
            npy(rows),
            {"Content-Type": "application/x-npy"},
            200,
            300,
        ),
        P(
            "sagemaker-npy-f32-fortran",
            "POST",
            "/invocations",
            npy(np.asfortranarray(rows, dtype=np.float32)),
            {"Content-Type": "application/x-npy"},
            200,
            100,
        ),
        P(
            "sagemaker-npy-truncated",
            "POST",
            "/invocations",
            npy(rows)[:-5],
            {"Content-Type": "application/x-npy"},
            400,
            100,
        ),
        P(
            "sagemaker-bad-csv",
            "POST",
            "/invocations",
            b"1,2\n3\n",
            {"Content-Type": "text/csv"},
            400,
            100,
        ),
        P(
            "sagemaker-accept-png-406",
            "POST",
            "/invocations",
            js({"features": row}),
            {"Content-Type": "application/json", "Accept": "image/png"},
            406,
            100,
        ),
        P(
            "sagemaker-xml-415",
            "POST",
            "/invocations",
            b"<x/>",
            {"Content-Type": "application/xml"},
            415,
            100,
        ),
        P("sagemaker-ping", "GET", "/ping", b"", {}, 200, 200),
        # Vertex AI and KServe V1
        P(
            "vertex-instances",
            "POST",
            vertex,
            js({"instances": rows, "parameters": {}}),
            JSON,
            200,
            400,
        ),
        P("vertex-not-a-list", "POST", vertex, js({"instances": 3}), JSON, 400, 100),
        P(
            "kserve-v1",
            "POST",
            f"/v1/models/{model}:predict",
            js({"instances": rows}),
            JSON,
            200,
            300,
        ),
        P(
            "kserve-v1-unknown-model",
            "POST",
            "/v1/models/nope:predict",
            js({"instances": rows}),
            JSON,
            404,
            50,
        ),
        # Open Inference Protocol (V2)
        P("v2-json", "POST", f"/v2/models/{model}/infer", js(v2), JSON, 200, 400),
        P(
            "v2-json-proba",
            "POST",
            f"/v2/models/{model}/infer",
            js({**v2, "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}),
            JSON,
            200,
            200,
        ),
        P(
            "v2-triton-binary",
            "POST",
            f"/v2/models/{model}/infer",
            triton_header + raw32,
            triton,
            200,
            300,
        ),
        P(
            "v2-triton-binary-short",
            "POST",
            f"/v2/models/{model}/infer",
            triton_header + raw32[:-4],
            triton,
            400,
            100,
        ),
        P(
            "v2-wrong-shape",
            "POST",
            f"/v2/models/{model}/infer",
            js(
                {
                    "inputs": [
                        {"name": "input", "shape": [3, n_features], "datatype": "FP64", "data": row}
                    ]
                }
            ),
            JSON,
            400,
            100,
        ),
        P(
            "v2-bad-datatype",
            "POST",
            f"/v2/models/{model}/infer",
            js(
                {
                    "inputs": [
                        {"name": "input", "shape": [1, n_features], "datatype": "BF16", "data": row}
                    ]
                }
            ),
            JSON,
            400,
            50,
        ),
        P("v2-ready", "GET", "/v2/health/ready", b"", {}, 200, 100),
        P("v2-metadata", "GET", f"/v2/models/{model}", b"", {}, 200, 100),
        # bodies past the limits: the server reads them and answers 413
        P(
            "vertex-1.6MB-413",
            "POST",
            vertex,
            b'{"instances": [' + b"1.0, " * 320_000 + b"1.0]}",
            JSON,
            413,
            2,
        ),
        P(
            "sagemaker-7MB-413",
            "POST",
            "/invocations",
            b"1.0," * 1_750_000 + b"1.0\n",
            {"Content-Type": "text/csv"},
            413,
            1,
        ),
    ]


def rotation(items: List[Payload]) -> List[str]:
    """The payloads' names spread over one rotation by weight (not in runs:
    each is interleaved with the others)."""
    total = sum(p.weight for p in items)
    out: List[Tuple[float, str]] = []
    for p in items:
        for k in range(p.weight):
            out.append(((k + 0.5) / p.weight * total, p.name))
    out.sort()
    return [name for _, name in out]


# ---- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(args, port: int) -> List[str]:
    cmd = [
        sys.executable,
        "-m",
        "mlfast",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--framework",
        args.framework,
    ]
    if args.model:
        cmd.append(args.model)
    helptext = subprocess.run(cmd[:4] + ["--help"], capture_output=True, text=True).stdout
    for flag in ("--no-access-log",):
        if flag in helptext:
            cmd.append(flag)
    return cmd


def http(port: int, p: Payload, timeout: float = 30) -> Tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            p.method, p.path, body=p.body if p.method != "GET" else None, headers=p.headers
        )
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    ping = Payload("ping", "GET", "/ping")
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if http(port, ping, 2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


def workers_of(pid: int):
    import psutil

    try:
        return sorted(psutil.Process(pid).children(recursive=True), key=lambda p: p.pid)
    except psutil.NoSuchProcess:
        return []


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: List[Tuple[float, Dict[int, int]]] = []
        self.stopped = threading.Event()
        self.t0 = time.time()

    def sample(self) -> Dict[int, int]:
        out = {}
        for w in workers_of(self.pid):
            try:
                out[w.pid] = w.memory_info().rss
            except Exception:  # noqa: BLE001 - a worker gone between listing and reading
                pass
        return out

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.samples.append((time.time() - self.t0, self.sample()))


def run_wrk(port: int, args, data_dir: Path, script: Path, seconds: float) -> dict:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        str(data_dir),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("SOAKJSON ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stdout[-1000:]} {r.stderr[-1000:]}")
    out = json.loads(line[len("SOAKJSON ") :])
    out["statuses"] = {int(k): v for k, v in out["statuses"].items()}
    return out


def check_payloads(port: int, items: List[Payload]) -> List[str]:
    wrong = []
    for p in items:
        status, body = http(port, p)
        if status != p.expect:
            wrong.append(f"{p.name}: expected {p.expect}, got {status}: {body[:200]!r}")
    return wrong


def mib(n: float) -> float:
    return round(n / (1 << 20), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--requests", type=int, default=1_000_000, help="total requests (default 1,000,000)"
    )
    ap.add_argument("--segment", type=float, default=60, help="seconds per wrk run (default 60)")
    ap.add_argument(
        "--connections", type=int, default=16, help="concurrent connections (default 16)"
    )
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    ap.add_argument("--framework", default="fastapi", choices=("fastapi", "flask"))
    ap.add_argument("--model", default=None, help="model file (default: the bundled iris model)")
    ap.add_argument(
        "--max-rss-growth",
        type=float,
        default=32.0,
        help="MiB a worker may grow between warm and the end (default 32)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    import mlfast

    model_path = args.model or mlfast.demo_model_path()
    n_features = mlfast.load(model_path).n_features_in_
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="mlfast-soak-"))
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        serve_command(args, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
        env=env,
        start_new_session=True,
    )
    failures: List[str] = []
    report: dict = {
        "requests_target": args.requests,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "workers": args.workers,
        "framework": args.framework,
        "model": model_path,
    }
    try:
        wait_ready(port, proc)
        index = json.loads(http(port, Payload("index", "GET", "/"))[1])
        name = index["model"]["name"] if "model" in index else index["models"][0]["name"]
        items = payloads(name, n_features)
        by_name = {p.name: p for p in items}
        data = tmp / "requests"
        data.mkdir()
        for p in items:
            (data / p.name).write_bytes(p.raw())
        order = rotation(items)
        (data / "rotation").write_text("\n".join(order) + "\n")
        script = tmp / "soak.lua"
        script.write_text(LUA)
        mix = Counter(order)
        report["mix"] = {n: round(c / len(order), 4) for n, c in mix.items()}
        report["expected"] = {p.name: p.expect for p in items}

        wrong = check_payloads(port, items)
        if wrong:
            failures += ["before the soak: " + w for w in wrong]
        initial_workers = [w.pid for w in workers_of(proc.pid)]
        sampler = RssSampler(proc.pid)
        sampler.start()

        total, seconds, statuses = 0, 0.0, Counter()
        errors = Counter()
        segments = []
        rss_warm = None
        while total < args.requests:
            left = args.requests - total
            rate = total / seconds if seconds else None
            length = args.segment if rate is None else min(args.segment, max(5.0, left / rate + 1))
            seg = run_wrk(port, args, data, script, length)
            total += seg["requests"]
            seconds += seg["duration_us"] / 1e6
            statuses.update(seg["statuses"])
            for k in ("connect", "read", "write", "timeout"):
                errors[k] += seg[k]
            rss_now = sampler.sample()
            if rss_warm is None:
                rss_warm = rss_now
            segments.append(
                {
                    "requests": seg["requests"],
                    "seconds": round(seg["duration_us"] / 1e6, 1),
                    "req_per_s": round(seg["requests"] / (seg["duration_us"] / 1e6)),
                    "p50_ms": seg["p50_us"] / 1000,
                    "p99_ms": seg["p99_us"] / 1000,
                    "statuses": seg["statuses"],
                    "socket_errors": {k: seg[k] for k in ("connect", "read", "write", "timeout")},
                    "rss_mib": {str(k): mib(v) for k, v in rss_now.items()},
                }
            )
            print(
                f"soak: {total:>9,} requests, {segments[-1]['req_per_s']:>6} req/s, "
                f"statuses {dict(sorted(seg['statuses'].items()))}, "
                f"RSS {', '.join(f'{mib(v)} MiB' for v in rss_now.values())}",
                flush=True,
            )
            # the server still answers every payload as it should
            wrong = check_payloads(port, items)
            if wrong:
                failures += [f"after {total} requests: " + w for w in wrong]
                break
        sampler.stopped.set()
        rss_end = sampler.sample()
        final_workers = [w.pid for w in workers_of(proc.pid)]

        report.update(
            {
                "requests": total,
                "seconds": round(seconds, 1),
                "req_per_s": round(total / seconds) if seconds else None,
                "statuses": dict(sorted(statuses.items())),
                "socket_errors": dict(errors),
                "rss_warm_mib": {str(k): mib(v) for k, v in (rss_warm or {}).items()},
                "rss_end_mib": {str(k): mib(v) for k, v in rss_end.items()},
                "rss_timeline_mib": [
                    (round(t, 1), {str(k): mib(v) for k, v in s.items()})
                    for t, s in sampler.samples[:: max(1, len(sampler.samples) // 60)]
                ],
                "segments": segments,
                "workers_start": initial_workers,
                "workers_end": final_workers,
            }
        )
        five = {s: c for s, c in statuses.items() if s >= 500}
        if five:
            failures.append(f"5xx answers: {five}")
        if any(errors.values()):
            failures.append(f"socket errors (dropped connections): {dict(errors)}")
        if sorted(initial_workers) != sorted(final_workers):
            failures.append(f"workers changed: {initial_workers} -> {final_workers} (one died)")
        expected_statuses = {p.expect for p in items}
        odd = {s: c for s, c in statuses.items() if s not in expected_statuses}
        if odd:
            failures.append(f"statuses no payload expects: {odd}")
        for pid, warm in (rss_warm or {}).items():
            end = rss_end.get(pid)
            if end is not None and end - warm > args.max_rss_growth * (1 << 20):
                failures.append(f"worker {pid} grew from {mib(warm)} to {mib(end)} MiB")
        # the mix wrk sent, checked against the statuses seen
        expected_counts = Counter()
        for n, c in mix.items():
            expected_counts[by_name[n].expect] += c
        report["expected_status_share"] = {
            s: round(c / len(order), 4) for s, c in sorted(expected_counts.items())
        }
        report["status_share"] = {s: round(c / total, 4) for s, c in sorted(statuses.items())}
    except Exception as e:  # noqa: BLE001 - reported as a failure with the server's log
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
    text = log_path.read_text(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    # wrk ends a run by closing connections with requests in flight; a body
    # cut off that way raises starlette's ClientDisconnect, which the FastAPI
    # adapter lets escape (tests/test_hostile_regressions.py::
    # test_client_disconnecting_mid_body_is_not_a_server_error): counted
    # apart, and not a failure of the soak, until that is fixed
    disconnects = text.count("\nstarlette.requests.ClientDisconnect")
    report["server_log_tracebacks"] = tracebacks
    report["server_log_client_disconnects"] = disconnects
    if tracebacks > disconnects:
        failures.append(f"{tracebacks - disconnects} tracebacks in the server log ({log_path})")
        for chunk in text.split("Traceback (most recent call last)")[1:]:
            if "starlette.requests.ClientDisconnect" not in chunk[:6000]:
                print("Traceback (most recent call last)" + chunk[:3000], file=sys.stderr)
                break
    report["failures"] = failures

    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "requests",
                    "seconds",
                    "req_per_s",
                    "statuses",
                    "socket_errors",
                    "rss_warm_mib",
                    "rss_end_mib",
                    "server_log_tracebacks",
                    "server_log_client_disconnects",
                    "failures",
                )
                if k in report
            },
            indent=1,
        )
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if not failures:
        shutil.rmtree(tmp, ignore_errors=True)
        print("soak: PASS")
        return 0
    print(f"soak: FAIL ({len(failures)}): " + "; ".join(failures), file=sys.stderr)
    print(f"soak: server log and requests kept in {tmp}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
