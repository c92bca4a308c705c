"""A model repository (DIR/<name>/<version>/model.joblib) against real
servers: two models with several versions, the default and named routes,
a new version picked up while four clients keep calling (zero failures),
rollback by unload and by pin, corrupt and hostile versions refused while
the old one keeps serving, and admin changes reaching every worker."""

from __future__ import annotations

import time

import pytest
import requests
from support.ops import (
    ADMIN_KEY,
    API_KEY,
    ROW,
    Clients,
    corrupt_joblib,
    fit_iris,
    fit_ridge,
    hostile_pickle,
    scrape,
    serve,
    value,
    write_raw_version,
    write_version,
)

KEYS = {"MLFAST_API_KEYS": API_KEY, "MLFAST_ADMIN_KEYS": ADMIN_KEY}
API = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def models():
    return {
        "iris1": fit_iris(1.0),
        "iris2": fit_iris(0.05),
        "iris3": fit_iris(10.0),
        "ridge": fit_ridge(),
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory, models):
    root = tmp_path_factory.mktemp("repo")
    write_version(root, "iris", "1", models["iris1"])
    write_version(root, "iris", "2", models["iris2"], "model.pkl")
    write_version(root, "reg", "1", models["ridge"])
    write_version(root, "reg", "2", models["ridge"])
    return root


@pytest.fixture(scope="module")
def server(repo):
    with serve(repo, env=KEYS, extra=["--poll-interval", "0.3"]) as s:
        yield s


def admin(server, action, name=None, **parameters):
    path = "/v2/repository/index" if name is None else f"/v2/repository/models/{name}/{action}"
    body = {"parameters": parameters} if parameters else None
    return requests.post(server.url + path, json=body, headers=ADMIN, timeout=30)


def predict_version(server) -> str:
    r = requests.post(server.url + "/predict", json={"features": ROW}, headers=API, timeout=10)
    assert r.status_code == 200, r.text
    return r.headers["x-model-version"]


def test_default_and_named_models_and_versions(server, models):
    X = [ROW]
    r = requests.post(server.url + "/predict", json={"features": ROW}, headers=API, timeout=10)
    assert (r.headers["x-model-name"], r.headers["x-model-version"]) == ("iris", "2")
    assert r.json() == {"prediction": int(models["iris2"].predict(X)[0])}
    for name, version, expected in (
        ("iris", "1", "1"),
        ("iris", None, "2"),
        ("reg", None, "2"),
        ("reg", "1", "1"),
    ):
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
        n = 4 if name == "iris" else 3
        body = {"inputs": [{"name": "x", "shape": [1, n], "datatype": "FP64", "data": ROW[:n]}]}
        r = requests.post(server.url + path, json=body, headers=API, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["model_name"] == name and r.json()["model_version"] == expected
        assert (r.headers["x-model-name"], r.headers["x-model-version"]) == (name, expected)
    r = requests.get(server.url + "/v2/models/iris", headers=API, timeout=10)
    assert r.json()["versions"] == ["1", "2"]
    assert requests.get(server.url + "/v1/models", headers=API, timeout=10).json() == {
        "models": ["iris", "reg"]
    }
    # Vertex AI's SDK path names the version in its body
    r = requests.post(
        server.url + "/v1/projects/p/locations/l/endpoints/e:predict",
        headers=API,
        json={"instances": [ROW]},
        timeout=10,
    )
    assert r.json()["modelVersionId"] == "2" and r.headers["x-model-version"] == "2"
    # SageMaker
    r = requests.post(server.url + "/invocations", json=[ROW], headers=API, timeout=10)
    assert r.headers["x-model-version"] == "2"
    # an unknown version: 404 that lists the known ones
    r = requests.post(
        server.url + "/v2/models/iris/versions/9/infer",
        headers=API,
        timeout=10,
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    )
    assert r.status_code == 404 and "'1', '2'" in r.json()["error"]
    index = admin(server, "index").json()
    assert [(e["name"], e["version"], e["state"]) for e in index] == [
        ("iris", "1", "READY"),
        ("iris", "2", "READY"),
        ("reg", "1", "READY"),
        ("reg", "2", "READY"),
    ]


def test_new_version_under_load_then_rollback(server, repo, models):
    """Four clients call /predict without pause while version 3 appears on
    disk (the watcher loads it), is rolled back (unload), version 1 is
    pinned and unpinned: every request succeeds."""
    with Clients(server.url, 4, headers=API, max_seconds=45) as clients:
        time.sleep(0.3)
        write_version(repo, "iris", "3", models["iris3"])
        clients.wait_for_version("3")
        r = admin(server, "unload", "iris", version="3")
        assert r.status_code == 200, r.text
        assert r.json()["versions"] == ["1", "2"] and r.json()["default_version"] == "2"
        clients.wait_for_version("2")
        time.sleep(1.0)  # the watcher does not bring an unloaded version back
        assert clients.results[0][-1][1] == "2"
        r = admin(server, "load", "iris", version="1", pin=True)
        assert r.status_code == 200 and r.json()["pinned"] == "1", r.text
        clients.wait_for_version("1")
        r = admin(server, "load", "iris", version="2", pin=False)
        assert r.status_code == 200 and r.json()["pinned"] is None, r.text
        clients.wait_for_version("2")
    answers = clients.all()
    assert clients.errors == []
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:5]
    assert {version for _, version in answers} == {"1", "2", "3"}
    assert len(answers) > 100
    # version 3 is back when asked for
    assert admin(server, "load", "iris", version="3").json()["default_version"] == "3"
    assert predict_version(server) == "3"


def test_corrupt_and_hostile_versions_are_refused(server, repo, models, tmp_path):
    serving = predict_version(server)
    marker = tmp_path / "pwned"
    write_raw_version(repo, "iris", "7", corrupt_joblib(models["iris1"]))
    write_raw_version(repo, "iris", "8", hostile_pickle(marker))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        index = {(e["name"], e["version"]): e for e in admin(server, "index").json()}
        if all("failed" in index.get(("iris", v), {}).get("reason", "") for v in ("7", "8")):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the watcher did not report versions 7 and 8: {index}")
    assert index[("iris", "7")]["state"] == "UNAVAILABLE"
    assert index[("iris", "8")]["state"] == "UNAVAILABLE"
    assert "system" in index[("iris", "8")]["reason"]  # the forbidden global, named
    assert predict_version(server) == serving  # still the old one
    # asked explicitly: 400, saying why and what is still served
    r = admin(server, "load", "iris", version="8")
    assert r.status_code == 400
    error = r.json()["error"]
    assert (
        "version 8" in error and "system" in error and f"still serving version {serving}" in error
    )
    r = admin(server, "load", "iris", version="7")
    assert r.status_code == 400 and "version 7" in r.json()["error"], r.text
    assert "Traceback" not in r.text
    assert not marker.exists()
    assert predict_version(server) == serving
    m = scrape(server.url, headers=API)
    assert value(m, "mlfast_model_loads_total", model="iris", version="8", result="failed") >= 2
    assert value(m, "mlfast_model_loaded", model="iris", version="8") == 0
    assert server.process.poll() is None


def test_admin_routes_need_the_admin_key(server):
    assert admin(server, "index").status_code == 200
    r = requests.post(server.url + "/v2/repository/index", headers=API, timeout=10)
    assert r.status_code == 403 and "admin key" in r.json()["error"]
    r = requests.post(server.url + "/v2/repository/models/iris/unload", timeout=10)
    assert r.status_code == 401
    # the default model keeps a version: /predict and the health checks use it
    r = admin(server, "unload", "iris")
    assert r.status_code == 409 and "default model" in r.json()["error"]
    assert admin(server, "load", "nope").status_code == 404


def test_admin_changes_reach_every_worker(tmp_path, models):
    """Two Flask workers (gunicorn gthread), no directory watching: a load
    through one worker is applied by both, and so is the rollback."""
    write_version(tmp_path, "iris", "1", models["iris1"])
    with serve(
        tmp_path, workers=2, framework="flask", extra=["--no-watch", "--poll-interval", "0.2"]
    ) as server:

        def versions(n=30):
            return {
                requests.post(server.url + "/predict", json={"features": ROW}, timeout=10).headers[
                    "x-model-version"
                ]
                for _ in range(n)
            }

        assert versions() == {"1"}
        write_version(tmp_path, "iris", "2", models["iris2"])
        time.sleep(0.6)
        assert versions() == {"1"}  # not watching: nothing changes by itself
        r = requests.post(server.url + "/v2/repository/models/iris/load", timeout=30)
        assert r.status_code == 200 and r.json()["loaded"] == ["2"], r.text
        time.sleep(0.6)
        assert versions() == {"2"}
        r = requests.post(
            server.url + "/v2/repository/models/iris/unload",
            timeout=30,
            json={"parameters": {"version": "2"}},
        )
        assert r.status_code == 200, r.text
        time.sleep(0.6)
        assert versions() == {"1"}
        pids = {e["pid"] for e in server.access_log() if e["route"] == "predict"}
    assert len(pids) == 2, "one worker answered every request: the test proves nothing"


def test_swap_is_atomic_and_old_versions_keep_answering(tmp_path, models):
    """In process: a request that resolved its model before a new version
    was published finishes on that model; numbers order as numbers."""
    from mlfast.serving.repository import ModelRepository

    write_version(tmp_path, "iris", "9", models["iris1"])
    repo = ModelRepository(tmp_path, watch=False)
    repo.load_initial()
    before = repo.registry.get("iris")
    write_version(tmp_path, "iris", "10", models["iris2"])
    assert repo.sync() == {"iris": {"10": "loaded"}}
    after = repo.registry.get("iris")
    assert (before.version, after.version) == ("9", "10")  # 10 > 9: numbers, not text
    assert before.predict([ROW]).tolist() == models["iris1"].predict([ROW]).tolist()
    assert repo.registry.versions("iris") == ["9", "10"]
    repo.unload("iris", "10")
    assert repo.registry.get("iris") is before
    assert after.predict([ROW]).tolist() == models["iris2"].predict([ROW]).tolist()
