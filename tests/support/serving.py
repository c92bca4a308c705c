"""Helpers for the serving tests: real servers on free loopback ports.

Not a test module of its own (it has no tests); the serving, apps, CLI,
container and browser tests import it.  A server is a subprocess in its own
process group, started by the test and stopped by it (SIGTERM, then SIGKILL
after a grace period), with its output in a log file the failure shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import joblib
import numpy as np
import requests

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(sys.executable).parent
FRAMEWORKS = ("fastapi", "flask")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess; ``url`` once ``health`` answers 200."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[Path] = None,
        health: str = "/ping",
        timeout: float = 60.0,
    ):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.argv = list(argv)
        self._log = tempfile.NamedTemporaryFile(
            prefix="mlfast-server-", suffix=".log", delete=False
        )
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            self.argv,
            cwd=str(cwd) if cwd else None,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait(health, timeout)

    def _wait(self, health: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + health, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass


def mlfast_serve(
    path: Optional[str] = None,
    *,
    framework: str = "fastapi",
    workers: int = 1,
    name: Optional[str] = None,
    extra: Sequence[str] = (),
    **kw,
) -> Server:
    """``python -m mlfast serve`` on a free loopback port."""
    port = free_port()
    argv: List[str] = [PYTHON, "-m", "mlfast", "serve"]
    if path is not None:
        argv.append(str(path))
    argv += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--framework",
        framework,
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    if name:
        argv += ["--name", name]
    argv += list(extra)
    return Server(argv, port=port, **kw)


# -- models --------------------------------------------------------------------------


def iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def fit_string_labels(path: Path):
    """The lesson's LogisticRegression with species names for labels."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    y = np.asarray(data.target_names)[data.target]
    model = LogisticRegression(max_iter=1000).fit(data.data, y)
    joblib.dump(model, path)
    return model


def fit_regressor(path: Path):
    from sklearn.linear_model import Ridge

    X, _ = iris()
    model = Ridge().fit(X[:, :3], X[:, 3])
    joblib.dump(model, path)
    return model


def fit_imputing(path: Path):
    """A pipeline that accepts NaN (SimpleImputer first)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = iris()
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)).fit(X, y)
    joblib.dump(model, path)
    return model


def assert_json_error(response, status: int, *fragments: str) -> str:
    """A 4xx answer: the status, JSON ``{"error": ...}`` that says what was
    wrong, and no stack trace."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])
    return body["error"]
