"""The mlfast command: `mlfast serve`, `mlfast inspect`, and `make serve`."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import requests
from support.serving import BIN, PYTHON, REPO, mlfast_serve

import mlfast


def run(*args, timeout=60):
    return subprocess.run(
        [PYTHON, "-m", "mlfast", *args], capture_output=True, text=True, timeout=timeout
    )


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
    out = subprocess.run(
        [str(BIN / "mlfast"), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
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
        assert requests.get(server.url + "/v1/models", timeout=10).json() == {
            "models": ["iris_logreg"]
        }
        assert requests.post(
            server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=10
        ).json() == {"prediction": 0}


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
    with mlfast_serve(
        tmp_path / "petal_width.pkl", framework=framework, workers=2, name="petal"
    ) as server:
        rows = X.values[:20]
        got = [
            requests.post(
                server.url + "/predict", json={"features": row.tolist()}, timeout=10
            ).json()["prediction"]
            for row in rows
        ]
        np.testing.assert_allclose(
            got, model.predict(pd.DataFrame(rows, columns=X.columns)), rtol=1e-12
        )
        r = requests.post(
            server.url + "/v1/models/petal:predict",
            timeout=10,
            json={"instances": [dict(zip(X.columns, row)) for row in rows.tolist()]},
        )
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
    assert "mlfast serve" in recipe and "127.0.0.1" in recipe and "$(PORT)" in recipe
    out = subprocess.run(
        ["make", "-n", "serve"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "mlfast serve --host 127.0.0.1 --port 8000" in out.stdout
    out = subprocess.run(
        ["make", "-n", "serve", "PORT=9001", "MODEL=models/churn.pkl"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "mlfast serve --host 127.0.0.1 --port 9001 models/churn.pkl" in out.stdout, out.stdout


def test_make_serve_installs_the_serve_extra_only():
    """What `make serve` and `make test` would install on a fresh checkout
    (-W: as if pyproject.toml had changed): the web stack for serve, the
    test extra (a gigabyte more) for test only."""

    def would_run(target):
        out = subprocess.run(
            ["make", "-n", "-W", "pyproject.toml", target],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return [line for line in out.stdout.splitlines() if "pip install" in line and "-e" in line]

    serve = would_run("serve")
    assert serve and all('".[serve]"' in line for line in serve), serve
    assert any('".[test,serve]"' in line for line in would_run("test"))


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"mlfast {mlfast.__version__}", out


def test_every_argument_says_what_it_is():
    from mlfast.__main__ import _parser

    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    checked = 0
    for command, sub in [("", parser), *subparsers.items()]:
        for action in sub._actions:
            if action.dest in ("help", "command"):
                continue
            assert action.help, (command, action.option_strings or action.dest)
            checked += 1
        assert sub.description or command == "", command
    assert checked >= 25


def test_a_port_in_use_is_refused_before_serving():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for framework in ("fastapi", "flask"):
            out = run("serve", "--port", str(port), "--framework", framework)
            assert out.returncode == 2, out
            assert (
                f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr
            )
            assert "serving" not in out.stdout.replace("serving the bundled demo", ""), out.stdout


def test_a_missing_file_has_one_wording(tmp_path):
    missing = tmp_path / "nope.pkl"
    for args in (("serve", str(missing), "--port", "1"), ("inspect", str(missing))):
        out = run(*args)
        assert out.returncode == 1 and f"model file {missing} does not exist" in out.stderr, out


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_serve_says_what_it_serves_and_where_the_docs_are(framework):
    with mlfast_serve(framework=framework) as server:
        log = server.log()
        index = requests.get(server.url + "/", timeout=10).json()
    assert "serving the bundled demo model" in log, log
    if framework == "fastapi":
        assert f"API docs at {server.url}/docs" in log, log
        assert index["docs"] == "/docs"
    else:  # Flask serves no /docs, and does not say it does
        assert "/docs" not in log and "docs" not in index, (log, index)


@pytest.mark.parametrize(
    "blocked,call",
    [
        ("orjson", "import mlfast.serving"),
        (
            "pydantic",
            "from mlfast.serving import build_service; build_service(mlfast.demo_model_path())",
        ),
        ("fastapi", "from mlfast.serving import create_app; create_app(mlfast.demo_model_path())"),
        (
            "flask",
            "from mlfast.serving import create_app; create_app(mlfast.demo_model_path(), framework='flask')",
        ),
    ],
)
def test_without_the_serve_extra_the_error_says_how_to_install_it(blocked, call):
    """A module of the serve extra that is not installed (here: blocked in
    sys.modules) gives the CLI's message, not a bare ModuleNotFoundError."""
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\nimport mlfast\n"
        f"try:\n    {call}\nexcept ModuleNotFoundError as e:\n    print(e.name, '|', e)"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, _, message = out.stdout.strip().partition(" | ")
    assert name == blocked and "pip install 'mlfast[serve]'" in message and blocked in message, (
        out.stdout
    )


@pytest.mark.parametrize("blocked", ["orjson", "uvicorn", "gunicorn"])
def test_mlfast_serve_without_the_serve_extra(blocked):
    framework = "flask" if blocked == "gunicorn" else "fastapi"
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\nfrom mlfast.__main__ import main\n"
        f"sys.exit(main(['serve', '--port', '0', '--framework', {framework!r}]))"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert f"{blocked} is not installed: pip install 'mlfast[serve]'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
