"""Helpers for the operations tests (test_ops_*.py): servers started with
``mlfast serve`` and extra options, model repositories on disk, metrics
parsed with prometheus-client's own parser, bounded client loops.

Not a test module of its own (it has no tests).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import joblib
import requests

from support.serving import PYTHON, Server, free_port, iris

ROW = [5.1, 3.5, 1.4, 0.2]
API_KEY = "api-key-for-tests-0123456789"
ADMIN_KEY = "admin-key-for-tests-0123456789"


class OpsServer(Server):
    """``Server`` that also speaks HTTPS (``verify`` is the CA file) and
    sends a key with its readiness probe when asked."""

    def __init__(self, argv, *, port, scheme="http", verify=None, **kw):
        self.scheme = scheme
        self.verify = verify
        super().__init__(argv, port=port, **kw)
        self.url = f"{scheme}://127.0.0.1:{port}"

    def _wait(self, health: str, timeout: float) -> None:
        url = f"{self.scheme}://127.0.0.1:{self.port}{health}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                # closed at once: an idle TLS connection left open holds up
                # uvicorn's shutdown (it waits for the client's close_notify)
                with requests.Session() as session:
                    if session.get(url, timeout=1, verify=self.verify).status_code == 200:
                        return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def access_log(self) -> List[dict]:
        """The JSON access-log lines written so far."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{") and '"mlfast.access"' in line:
                out.append(json.loads(line))
        return out


def serve(
    path,
    *,
    workers: int = 1,
    framework: str = "fastapi",
    extra: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
    scheme: str = "http",
    verify=None,
    log_level: str = "info",
    health: str = "/v2/health/live",
) -> OpsServer:
    port = free_port()
    argv = [
        PYTHON,
        "-m",
        "mlfast",
        "serve",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--framework",
        framework,
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        *extra,
    ]
    base_env = {"MLFAST_API_KEYS": "", "MLFAST_ADMIN_KEYS": "", "PROMETHEUS_MULTIPROC_DIR": ""}
    base_env.update(env or {})
    return OpsServer(argv, port=port, scheme=scheme, verify=verify, env=base_env, health=health)


def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60):
    full = dict(os.environ)
    full.update({"MLFAST_API_KEYS": "", "MLFAST_ADMIN_KEYS": ""})
    full.update(env or {})
    return subprocess.run(
        [PYTHON, "-m", "mlfast", *args], capture_output=True, text=True, timeout=timeout, env=full
    )


# -- models and repositories ------------------------------------------------------------


def fit_iris(C: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    return LogisticRegression(max_iter=1000, C=C).fit(X, y)


def fit_ridge():
    from sklearn.linear_model import Ridge

    X, _ = iris()
    return Ridge().fit(X[:, :3], X[:, 3])


def write_version(
    root: Path, name: str, version: str, model, file_name: str = "model.joblib"
) -> Path:
    """Write ``model`` as a new version the way operators should: into a
    hidden directory first, renamed into place when complete."""
    tmp = root / name / f".tmp-{version}"
    tmp.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, tmp / file_name)
    final = root / name / version
    os.rename(tmp, final)
    return final / file_name


def write_raw_version(root: Path, name: str, version: str, data: bytes) -> Path:
    tmp = root / name / f".tmp-{version}"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.pkl").write_bytes(data)
    os.rename(tmp, root / name / version)
    return root / name / version / "model.pkl"


def hostile_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps(Evil(), protocol=4)


def corrupt_joblib(model) -> bytes:
    """A real model file cut in half (a copy that did not finish)."""
    import io

    buf = io.BytesIO()
    joblib.dump(model, buf)
    data = buf.getvalue()
    return data[: len(data) // 2]


# -- metrics ----------------------------------------------------------------------------


def scrape(url: str, **kw) -> Dict[str, List]:
    """``/metrics`` parsed by prometheus-client: metric family name -> samples."""
    from prometheus_client.parser import text_string_to_metric_families

    r = requests.get(url + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return {family.name: family.samples for family in text_string_to_metric_families(r.text)}


def value(families: Dict[str, List], sample_name: str, **labels) -> float:
    """The sum of the samples called ``sample_name`` whose labels include ``labels``."""
    family = sample_name
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        if sample_name.endswith(suffix):
            family = sample_name[: -len(suffix)]
            break
    total = 0.0
    for sample in [s for f in {family, sample_name} for s in families.get(f, [])]:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            total += sample.value
    return total


# -- clients ----------------------------------------------------------------------------


class Clients:
    """``n`` threads POSTing /predict in a loop until stopped, bounded in
    count and time; every answer's status and X-Model-Version recorded."""

    def __init__(
        self,
        url: str,
        n: int = 4,
        *,
        headers: Optional[dict] = None,
        max_requests: int = 20000,
        max_seconds: float = 60.0,
        path: str = "/predict",
    ):
        self.url = url
        self.headers = headers or {}
        self.path = path
        self.results: List[List[tuple]] = [[] for _ in range(n)]
        self.errors: List[str] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._max = max_requests
        self.threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(n)
        ]

    def _loop(self, i: int) -> None:
        session = requests.Session()
        out = self.results[i]
        while (
            not self._stop.is_set() and len(out) < self._max and time.monotonic() < self._deadline
        ):
            try:
                r = session.post(
                    self.url + self.path, json={"features": ROW}, timeout=10, headers=self.headers
                )
                out.append((r.status_code, r.headers.get("x-model-version")))
            except requests.RequestException as e:
                self.errors.append(repr(e))
                out.append((0, None))

    def __enter__(self) -> "Clients":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def all(self) -> List[tuple]:
        return [r for results in self.results for r in results]

    def count(self) -> int:
        return sum(len(r) for r in self.results)

    def wait_for_version(self, version: str, timeout: float = 15.0) -> None:
        """Until every client's latest answer came from ``version``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = [r[-1][1] if r else None for r in self.results]
            if all(v == version for v in latest):
                # and a few more answers after that, from every client
                marks = [len(r) for r in self.results]
                while time.monotonic() < deadline and any(
                    len(r) < m + 3 for r, m in zip(self.results, marks)
                ):
                    time.sleep(0.02)
                return
            time.sleep(0.05)
        raise AssertionError(
            f"clients did not reach version {version}: latest "
            f"{[r[-1] if r else None for r in self.results]}"
        )


def copytree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
