"""The sample apps, copied out of the repository and run the way the
lesson runs them, and the client snippets in apps/clients/ against a
local server."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests
from support.serving import (
    BIN,
    PYTHON,
    REPO,
    Server,
    fit_string_labels,
    free_port,
    iris,
    mlfast_serve,
)

APPS = REPO / "apps"


@pytest.fixture(scope="module")
def copied_apps(tmp_path_factory):
    """The two app files alone in a directory outside the repository."""
    d = tmp_path_factory.mktemp("myapps")
    for name in ("flask_app.py", "fastapi_app.py"):
        shutil.copy(APPS / name, d / name)
    return d


def test_flask_app_with_flask_run_and_model_pkl_in_cwd(copied_apps, tmp_path):
    """`flask --app flask_app.py run` in a directory holding the lesson's
    model.pkl (string labels here): the app serves that file."""
    shutil.copy(copied_apps / "flask_app.py", tmp_path / "flask_app.py")
    model = fit_string_labels(tmp_path / "model.pkl")
    port = free_port()
    argv = [str(BIN / "flask"), "--app", "flask_app.py", "run", "--port", str(port)]
    with Server(argv, port=port, cwd=tmp_path, env={"MLFAST_MODEL": ""}) as server:
        r = requests.post(
            server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10
        )
        assert r.json() == {"prediction": "setosa"}
        X = iris()[0]
        r = requests.post(server.url + "/predict", json={"features": X[::10].tolist()}, timeout=10)
        assert r.json() == {"predictions": model.predict(X[::10]).tolist()}
        # no debug mode: no Werkzeug debugger console, no debugger page on errors
        assert requests.get(server.url + "/console", timeout=10).status_code == 404
        assert "Debugger is active" not in server.log()


def test_flask_app_never_runs_debug_mode():
    source = (APPS / "flask_app.py").read_text()
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert "debug=True" not in code.split('"""', 2)[-1]
    assert "app.run()" in code


def test_fastapi_app_with_uvicorn_app_dir_from_elsewhere(copied_apps, tmp_path):
    """`uvicorn --app-dir DIR fastapi_app:app` from another directory, no
    model.pkl there and MLFAST_MODEL=demo: the bundled demo model."""
    port = free_port()
    argv = [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(copied_apps),
        "fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with Server(argv, port=port, cwd=tmp_path, env={"MLFAST_MODEL": "demo"}) as server:
        r = requests.post(
            server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10
        )
        assert r.json() == {"prediction": 0}
        assert requests.get(server.url + "/docs", timeout=10).status_code == 200
        assert (
            requests.get(server.url + "/openapi.json", timeout=10).json()["info"]["title"]
            == "mlfast: iris_logreg"
        )


@pytest.mark.parametrize(
    "server_argv",
    [
        ["flask", "--app", "flask_app.py", "run", "--port", "{port}"],
        ["gunicorn", "-b", "127.0.0.1:{port}", "flask_app:app"],
        ["gunicorn", "-w", "2", "--preload", "-b", "127.0.0.1:{port}", "flask_app:app"],
        # (uvicorn --workers N restarts a worker that fails to start, for ever:
        # each prints the same message)
        ["uvicorn", "--port", "{port}", "fastapi_app:app"],
    ],
    ids=lambda argv: " ".join(argv[:3]),
)
@pytest.mark.parametrize("model", ["", "elsewhere/model.pkl"])
def test_apps_without_a_model_do_not_start(copied_apps, tmp_path, server_argv, model):
    """No model.pkl in the working directory (or MLFAST_MODEL naming a file
    that is not there): the app does not start, and says where it looked
    and what to do -- it never answers with a model nobody trained."""
    for name in ("flask_app.py", "fastapi_app.py"):
        shutil.copy(copied_apps / name, tmp_path / name)
    port = free_port()
    argv = [str(BIN / server_argv[0])] + [a.format(port=port) for a in server_argv[1:]]
    env = {**os.environ, "MLFAST_MODEL": model}
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    expected = tmp_path / (model or "model.pkl")
    assert f"model file {expected} does not exist" in text, text[-2000:]
    assert "MLFAST_MODEL=demo" in text and "joblib.dump(model, 'model.pkl')" in text


def test_apps_honour_mlfast_model(copied_apps, tmp_path):
    fit_string_labels(tmp_path / "species.joblib")
    port = free_port()
    argv = [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(copied_apps),
        "fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with Server(
        argv, port=port, cwd=copied_apps, env={"MLFAST_MODEL": str(tmp_path / "species.joblib")}
    ) as server:
        r = requests.post(
            server.url + "/predict", json={"features": [6.7, 3.0, 5.2, 2.3]}, timeout=10
        )
        assert r.json() == {"prediction": "virginica"}


# -- apps/clients/ against a local server ----------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with mlfast_serve() as s:
        yield s


def run_client(name, *args):
    out = subprocess.run(
        [PYTHON, str(APPS / "clients" / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(BIN), "HOME": "/nonexistent"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_predict_client(server):
    lines = run_client("predict_client.py", server.url).splitlines()
    assert lines == ["{'prediction': 0}", "{'predictions': [0, 2]}"]


def test_sagemaker_client(server):
    import joblib

    import mlfast

    expected = int(joblib.load(mlfast.demo_model_path()).predict([[1, 2, 3, 4]])[0])
    assert run_client("sagemaker_client.py", server.url).strip() == str({"prediction": expected})


def test_vertex_client(server):
    out = run_client("vertex_client.py", server.url)
    assert out.startswith("Prediction(predictions=[")
    assert "deployed_model_id='iris_logreg'" in out


def test_triton_client(server):
    out = run_client("triton_client.py", server.url.replace("http://", ""), "iris_logreg")
    assert "[0 2]" in out


# -- several workers: /metrics counts the whole server ---------------------------------------


@pytest.mark.parametrize(
    "server_argv",
    [
        ["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "flask_app:app"],
        ["gunicorn", "-w", "2", "--preload", "-b", "127.0.0.1:{port}", "flask_app:app"],
        ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}", "fastapi_app:app"],
    ],
    ids=["gunicorn", "gunicorn-preload", "uvicorn"],
)
def test_apps_with_several_workers_count_the_whole_server(copied_apps, server_argv):
    """The lesson's apps under `gunicorn -w 2` and `uvicorn --workers 2`
    with nothing set: every scrape, whichever worker answers it, counts the
    requests both workers answered."""
    from prometheus_client.parser import text_string_to_metric_families

    from mlfast.serving.metrics import FLUSH_INTERVAL, workers_directory

    port = free_port()
    argv = [str(BIN / server_argv[0])] + [a.format(port=port) for a in server_argv[1:]]
    env = {"MLFAST_MODEL": "demo", "PROMETHEUS_MULTIPROC_DIR": "", "MLFAST_API_KEYS": ""}
    with Server(argv, port=port, cwd=copied_apps, env=env) as server:
        sent = 0
        for _ in range(60):  # a new connection each: the workers share them out
            r = requests.post(
                server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10
            )
            assert r.status_code == 200, r.text
            sent += 1
        time.sleep(2 * FLUSH_INTERVAL)  # every worker has handed over its counts

        def counted() -> float:
            text = requests.get(server.url + "/metrics", timeout=10).text
            return sum(
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "mlfast_requests_total" and s.labels["route"] == "predict"
            )

        assert [counted() for _ in range(8)] == [sent] * 8
        # both workers counted some: each has its own files in the shared directory
        files = os.listdir(workers_directory(server.process.pid))
        pids = {f.rsplit("_", 1)[1] for f in files if f.startswith("counter_")}
        assert len(pids) >= 2, files
