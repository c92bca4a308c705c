"""Security against real servers: API keys (accepted, refused, admin-only),
health routes open, refusing to bind a public address without keys, TLS
with a self-signed certificate, SHA-256 pins, body limits and request
timeouts."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from support.ops import ADMIN_KEY, API_KEY, ROW, run_cli, serve
from support.serving import free_port

import mlfast
from mlfast.serving.ops import Ops, check_bind, platform

KEYS = {"MLFAST_API_KEYS": f"{API_KEY},second-api-key-0123456789", "MLFAST_ADMIN_KEYS": ADMIN_KEY}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    (root / "iris" / "1").mkdir(parents=True)
    shutil.copy(mlfast.demo_model_path(), root / "iris" / "1" / "model.joblib")
    return root


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_api_keys(repo, framework):
    extra = ["--request-timeout", "1"] if framework == "fastapi" else []
    with serve(repo, framework=framework, env=KEYS, extra=extra) as server:
        url = server.url

        def post(path, headers=None, **kw):
            return requests.post(url + path, headers=headers or {}, timeout=10, **kw)

        # health checks stay open: platforms probe them without credentials
        for path in (
            "/ping",
            "/v2/health/live",
            "/v2/health/ready",
            "/v2/models/iris/ready",
            "/v1/models/iris",
            "/v1/endpoints/e/deployedModels/m",
        ):
            assert requests.get(url + path, timeout=10).status_code == 200, path
        # everything else needs a key
        r = post("/predict", json={"features": ROW})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in r.json()["error"]
        assert (
            post(
                "/predict", {"Authorization": "Bearer wrong-key-0123456789"}, json={"features": ROW}
            ).status_code
            == 401
        )
        assert (
            post(
                "/predict", {"Authorization": f"Basic {API_KEY}"}, json={"features": ROW}
            ).status_code
            == 401
        )
        assert post(
            "/predict", {"Authorization": f"Bearer {API_KEY}"}, json={"features": ROW}
        ).json() == {"prediction": 0}
        assert (
            post(
                "/predict", {"X-API-Key": "second-api-key-0123456789"}, json={"features": ROW}
            ).status_code
            == 200
        )
        assert (
            post(
                "/predict", {"authorization": f"bearer {ADMIN_KEY}"}, json={"features": ROW}
            ).status_code
            == 200
        )
        assert requests.get(url + "/metrics", timeout=10).status_code == 401
        assert (
            requests.get(url + "/metrics", headers={"X-API-Key": API_KEY}, timeout=10).status_code
            == 200
        )
        assert requests.get(url + "/", timeout=10).status_code == 401
        # SageMaker's client signs with SigV4 in Authorization; X-API-Key still works beside it
        r = post(
            "/invocations",
            {
                "Authorization": "AWS4-HMAC-SHA256 Credential=x",
                "X-API-Key": API_KEY,
                "Content-Type": "text/csv",
            },
            data="5.1,3.5,1.4,0.2",
        )
        assert r.status_code == 200
        # the repository: admin keys only
        r = post("/v2/repository/index", {"X-API-Key": API_KEY})
        assert r.status_code == 403 and "admin key" in r.json()["error"]
        assert post("/v2/repository/index").status_code == 401
        assert post("/v2/repository/index", {"X-API-Key": ADMIN_KEY}).status_code == 200
        assert post("/v2/repository/models/iris/load", {"X-API-Key": ADMIN_KEY}).status_code == 200
        for r in (post("/predict", json={"features": ROW}), post("/v2/repository/index")):
            assert "Traceback" not in r.text
        if framework == "fastapi":
            _slow_body_gets_408(server.port)
        time.sleep(0.2)
        lines = server.access_log()
    assert {e["error"] for e in lines if e["status"] == 401} == {"unauthorized"}


def _slow_body_gets_408(port):
    """A client that announces a body and stops sending: 408 after the
    request timeout, not a worker held forever."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + API_KEY.encode() + b'\r\nContent-Length: 100\r\n\r\n{"feat'
        )
        start = time.monotonic()
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 0.8 < time.monotonic() - start < 5


def test_bind_refuses_public_address_without_keys():
    out = run_cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2
    assert (
        "refusing to serve 0.0.0.0 without API keys" in out.stderr and "Traceback" not in out.stderr
    )
    out = run_cli("serve", "--host", "0.0.0.0", "--port", "1", env={"MLFAST_API_KEYS": "short"})
    assert out.returncode == 2 and "shorter than 16" in out.stderr
    # the rules, without binding anything
    check_bind("127.0.0.1", None, False, {})
    check_bind("::1", None, False, {})
    check_bind("localhost", None, False, {})
    check_bind("0.0.0.0", Ops(api_keys=(API_KEY,)), False, {})
    check_bind("0.0.0.0", None, True, {})
    check_bind("0.0.0.0", None, False, {"MLFAST_ALLOW_UNAUTHENTICATED": "1"})
    check_bind("0.0.0.0", None, False, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    check_bind("0.0.0.0", None, False, {"AIP_HTTP_PORT": "8080"})
    with pytest.raises(ValueError, match="refusing"):
        check_bind("192.0.2.1", None, False, {"HOME": "/root"})
    assert platform({"SM_MODEL_DIR": "/opt/ml/model"}) == "SageMaker"
    assert platform({"AIP_PREDICT_ROUTE": "/p"}) == "Vertex AI"
    assert platform({}) is None


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return d / "key.pem", d / "cert.pem"


@pytest.mark.parametrize("framework,workers", [("fastapi", 1), ("flask", 1), ("fastapi", 2)])
def test_tls_with_a_self_signed_certificate(certificate, framework, workers):
    key, cert = certificate
    demo = mlfast.demo_model_path()
    digest = hashlib.sha256(Path(demo).read_bytes()).hexdigest()
    # uvicorn may wait for a TLS client's close_notify that never comes
    # before it exits (up to the graceful timeout): keep that short here
    extra = [
        "--ssl-keyfile",
        str(key),
        "--ssl-certfile",
        str(cert),
        "--model-sha256",
        digest,
        "--graceful-timeout",
        "2",
    ]
    with serve(
        demo, framework=framework, workers=workers, extra=extra, scheme="https", verify=str(cert)
    ) as server:
        assert server.url.startswith("https://")
        with requests.Session() as session:  # closed before the server stops (see OpsServer)
            r = session.post(
                server.url + "/predict", json={"features": ROW}, verify=str(cert), timeout=10
            )
        assert r.json() == {"prediction": 0}
        assert r.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(requests.exceptions.SSLError):  # not trusted without the certificate
            requests.get(server.url + "/ping", timeout=10, verify=True)
        with pytest.raises(requests.RequestException):  # no plain HTTP on the TLS port
            r = requests.get(f"http://127.0.0.1:{server.port}/ping", timeout=5)
            if r.status_code >= 400:
                raise requests.RequestException(r.status_code)


def test_model_sha256_pin(tmp_path):
    demo = mlfast.demo_model_path()
    out = run_cli("serve", demo, "--port", str(free_port()), "--model-sha256", "0" * 64)
    assert out.returncode == 1
    assert (
        "SHA-256" in out.stderr and "was expected" in out.stderr and "Traceback" not in out.stderr
    )
    # in a repository, per version, and from a .sha256 file beside the model
    root = tmp_path / "repo"
    (root / "iris" / "1").mkdir(parents=True)
    shutil.copy(demo, root / "iris" / "1" / "model.joblib")
    (root / "iris" / "1" / "model.joblib.sha256").write_text("f" * 64 + "  model.joblib\n")
    out = run_cli("serve", str(root), "--port", str(free_port()))
    assert out.returncode == 1 and "was expected" in out.stderr
    out = run_cli("serve", str(root), "--port", str(free_port()), "--model-sha256", "0" * 64)
    assert out.returncode == 1 and "NAME/VERSION=HEX" in out.stderr


def test_body_limits_per_protocol(repo):
    with serve(repo, extra=["--max-body", "64KB", "--max-body", "sagemaker=2KB"]) as server:
        rows = [ROW] * 200  # about 4 KB as JSON
        r = requests.post(server.url + "/invocations", json=rows, timeout=10)
        assert r.status_code == 413 and "2000 bytes" in r.json()["error"]
        assert r.headers["x-request-id"]  # counted and logged like any other answer
        assert (
            requests.post(server.url + "/predict", json={"features": rows}, timeout=10).status_code
            == 200
        )
        big = [ROW] * 4000  # about 80 KB
        r = requests.post(server.url + "/predict", json={"features": big}, timeout=10)
        assert r.status_code == 413 and "64000 bytes" in r.json()["error"]


def test_key_check_follows_its_rules_for_every_header_combination():
    """The observing hook's key check (written out for speed) against the
    documented rules, without a server: ``Authorization: Bearer <key>``
    wins, else ``X-API-Key``; values are stripped and empty means none; an
    API route takes an API or admin key (401 otherwise), an admin route an
    admin key (403 for an API key or when no admin key is configured, 401
    otherwise), an open route anything."""
    import itertools

    from mlfast.serving.http import HttpError, Request, Route
    from mlfast.serving.ops import KeySet, authorizer

    api, api2, admin = (
        "api-key-0123456789abcdef",
        "second-api-key-0123456789",
        "admin-key-0123456789abcdef",
    )
    wrong = "wrong-key-0123456789abcdef"
    x_api = [None, "", "   ", api, f"  {api} ", admin, wrong, api2]
    authorization = [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {api}",
        f"bearer  {admin} ",
        f"Bearer {wrong}",
        f"Basic {api}",
        f"Bearer\t{api}",
        api,
    ]

    def presented(headers):
        value = headers.get("authorization")
        if value is not None:
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        key = (headers.get("x-api-key") or "").strip()
        return key or None

    def expected(access, headers, apis, admins):
        key = presented(headers)
        if access == "open":
            return None
        if access == "api":
            return None if key in apis + admins else 401
        if key in admins:
            return None
        if not admins:
            return 403
        return 403 if key in apis else 401

    checked = 0
    for apis, admins in [((api, api2), (admin,)), ((api,), ()), ((), (admin,))]:
        authorize = authorizer(KeySet(apis), KeySet(admins))
        for access, x, auth in itertools.product(("open", "api", "admin"), x_api, authorization):
            route = Route("POST", "/x", lambda r: None, "x", access=access)
            headers = {
                k: v for k, v in (("x-api-key", x), ("authorization", auth)) if v is not None
            }
            try:
                authorize(route, Request("POST", "/x", {}, headers))
                got = None
            except HttpError as e:
                got = e.status
            assert got == expected(access, headers, apis, admins), (apis, admins, access, headers)
            checked += 1
    assert checked == 3 * 3 * len(x_api) * len(authorization)
