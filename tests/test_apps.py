"""The sample apps, copied out of the repository and run the way the
lesson runs them, and the client snippets in apps/clients/ against a
local server."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from test_serving_support import BIN, PYTHON, REPO, Server, fit_string_labels, free_port, iris, mlfast_serve

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
        r = requests.post(server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10)
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
    model.pkl there and no MLFAST_MODEL: the bundled demo model."""
    port = free_port()
    argv = [str(BIN / "uvicorn"), "--app-dir", str(copied_apps), "fastapi_app:app",
            "--host", "127.0.0.1", "--port", str(port)]
    with Server(argv, port=port, cwd=tmp_path, env={"MLFAST_MODEL": ""}) as server:
        r = requests.post(server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10)
        assert r.json() == {"prediction": 0}
        assert requests.get(server.url + "/docs", timeout=10).status_code == 200
        assert requests.get(server.url + "/openapi.json", timeout=10).json()["info"]["title"] == "mlfast: iris_logreg"


def test_apps_honour_mlfast_model(copied_apps, tmp_path):
    fit_string_labels(tmp_path / "species.joblib")
    port = free_port()
    argv = [str(BIN / "uvicorn"), "--app-dir", str(copied_apps), "fastapi_app:app",
            "--host", "127.0.0.1", "--port", str(port)]
    with Server(argv, port=port, cwd=copied_apps, env={"MLFAST_MODEL": str(tmp_path / "species.joblib")}) as server:
        r = requests.post(server.url + "/predict", json={"features": [6.7, 3.0, 5.2, 2.3]}, timeout=10)
        assert r.json() == {"prediction": "virginica"}


# -- apps/clients/ against a local server ----------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with mlfast_serve() as s:
        yield s


def run_client(name, *args):
    out = subprocess.run([PYTHON, str(APPS / "clients" / name), *args], capture_output=True, text=True,
                         timeout=120, env={"PATH": str(BIN), "HOME": "/nonexistent"})
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
