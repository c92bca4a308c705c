"""The mlfast command: `mlfast serve`, `mlfast inspect`, and `make serve`."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import requests

import mlfast
from test_serving_support import BIN, PYTHON, REPO, mlfast_serve


def run(*args, timeout=60):
    return subprocess.run([PYTHON, "-m", "mlfast", *args], capture_output=True, text=True, timeout=timeout)


def test_inspect_prints_the_tree():
    out = run("inspect", mlfast.demo_model_path())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == mlfast.inspect(mlfast.demo_model_path()).strip()
    assert "LogisticRegression" in out.stdout


def test_inspect_refuses_a_hostile_file(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    out = run("inspect", str(tmp_path / "evil.pkl"))
    assert out.returncode == 1
    assert "pwned" not in out.stdout
    assert "print" in out.stderr and "Traceback" not in out.stderr


def test_console_script_and_help():
    out = subprocess.run([str(BIN / "mlfast"), "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for option in ("--host", "--port", "--workers", "--framework", "--name"):
        assert option in out.stdout
    assert run().returncode == 2  # a command is required


def test_serve_missing_file_fails_cleanly(tmp_path):
    out = run("serve", str(tmp_path / "nope.pkl"), "--port", "1")
    assert out.returncode == 1
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_serve_unsafe_file_fails_cleanly(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil(), protocol=4))
    out = run("serve", str(tmp_path / "evil.pkl"), "--port", "1")
    assert out.returncode == 1
    assert "system" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "pwned").exists()


def test_serve_demo_model_by_default():
    with mlfast_serve() as server:
        assert requests.get(server.url + "/v1/models", timeout=10).json() == {"models": ["iris_logreg"]}
        assert requests.post(server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]},
                             timeout=10).json() == {"prediction": 0}


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_serve_path_name_workers(tmp_path, framework):
    """A regressor fitted on a DataFrame, served under --name by two
    workers forked after the model was loaded."""
    pd = pytest.importorskip("pandas")
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression

    data = load_iris(as_frame=True)
    X = data.data.iloc[:, :3]
    model = LinearRegression().fit(X, data.data.iloc[:, 3])
    joblib.dump(model, tmp_path / "petal_width.pkl")
    with mlfast_serve(tmp_path / "petal_width.pkl", framework=framework, workers=2, name="petal") as server:
        rows = X.values[:20]
        got = [requests.post(server.url + "/predict", json={"features": row.tolist()}, timeout=10).json()["prediction"]
               for row in rows]
        np.testing.assert_allclose(got, model.predict(pd.DataFrame(rows, columns=X.columns)), rtol=1e-12)
        r = requests.post(server.url + "/v1/models/petal:predict", timeout=10,
                          json={"instances": [dict(zip(X.columns, row)) for row in rows.tolist()]})
        np.testing.assert_allclose(r.json()["predictions"], got, rtol=1e-12)
        assert requests.get(server.url + "/v1/models/petal_width", timeout=10).status_code == 404
        log = server.log()
    assert "feature names" not in log, log
    assert "Traceback" not in log, log


def test_make_serve_runs_mlfast_serve_on_8000():
    makefile = (REPO / "Makefile").read_text()
    target = re.search(r"^serve:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert target, "no serve target"
    recipe = target.group(1)
    assert "mlfast serve" in recipe and "127.0.0.1" in recipe and "8000" in recipe
    out = subprocess.run(["make", "-n", "serve"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "mlfast serve --host 127.0.0.1 --port 8000" in out.stdout
