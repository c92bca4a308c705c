"""MLflow's scoring protocol on /invocations, compared with MLflow itself.

The oracle is MLflow: its own scoring server (``mlflow models serve
--env-manager local``) for the iris model, next to ``mlfast serve`` on the
same directory, and MLflow's scoring code (``scoring_server.invocations``
over the pyfunc model) in-process for the other models.  Every payload
format (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs`` as records and as columns, ``params``, CSV) must give the same
``{"predictions": ...}``; a payload MLflow refuses with a 4xx is refused by
mlfast with a 4xx too, as JSON, never a 500.  The SageMaker bodies on the
same route keep their own answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from support.serving import BIN, Server, free_port, mlfast_serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pytest.importorskip("mlflow")
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature  # noqa: E402
    from mlflow.pyfunc import scoring_server  # noqa: E402

IRIS = load_iris(as_frame=True)
COLUMNS = list(IRIS.data.columns)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def _frame(n=120, seed=0):
    rng = np.random.RandomState(seed)
    return pd.DataFrame(
        {"colour": rng.choice(["red", "green", "blue"], n), "size": rng.normal(size=n).round(3)}
    )


def _save(est, X, path, fmt="skops", **kw):
    if fmt == "skops":
        kw.setdefault("skops_trusted_types", ["sklearn.tree._tree.Tree"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            est,
            str(path),
            serialization_format=fmt,
            signature=infer_signature(X, est.predict(X)),
            pip_requirements=["scikit-learn"],
            **kw,
        )
    return path


def _iris_payloads():
    records = [dict(zip(COLUMNS, r)) for r in ROWS]
    return {
        "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
        "dataframe_split_reordered": {
            "dataframe_split": {"columns": COLUMNS[::-1], "data": [r[::-1] for r in ROWS]}
        },
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs_records": {"inputs": records},
        "inputs_columns": {"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}},
        "params": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "params": {}},
        "integers_as_doubles": {"dataframe_split": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]}},
        "extra_column": {"dataframe_records": [dict(records[0], extra=1.0)]},
        # refused by both
        "missing_column": {
            "dataframe_split": {"columns": COLUMNS[:3], "data": [r[:3] for r in ROWS]}
        },
        "text_in_a_double": {
            "dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, "x"]]}
        },
        "no_input_key": {"rows": ROWS},
        "two_input_keys": {
            "dataframe_split": {"columns": COLUMNS, "data": ROWS},
            "instances": ROWS,
        },
        "no_columns": {"dataframe_split": {"data": ROWS}},
    }


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _mlflow_answer(pyfunc_model, body: str, content_type: str):
    """MLflow's scoring code: (status, JSON) as its server answers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = scoring_server.invocations(
                body, content_type, pyfunc_model, pyfunc_model.metadata.get_input_schema()
            )
    except mlflow.exceptions.MlflowException as exc:
        return exc.get_http_status_code(), None
    return response.status, json.loads(response.response)


class _Answer:
    """A Flask test response with the face of a requests.Response."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = response.get_data(as_text=True)

    def json(self):
        return json.loads(self.text)


class _Client:
    """mlfast's service in-process, through its Flask adapter."""

    def __init__(self, path):
        from mlfast.serving import create_app

        self._client = create_app(str(path), framework="flask").test_client()

    def post(self, path, content, headers):
        return _Answer(self._client.post(path, data=content, headers=headers))


def _mlfast_client(path):
    return _Client(path)


def _same(got, want) -> bool:
    """Equal JSON, floats within 1e-12 (BLAS products differ in the last
    bit), labels and integers exactly, of the same JSON types."""
    if isinstance(want, float) and isinstance(got, float):
        return abs(got - want) <= 1e-12
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def _compare(mlfast_post, oracle, payloads, content_type="application/json"):
    compared = 0
    for label, payload in payloads.items():
        body = payload if isinstance(payload, str) else json.dumps(payload)
        want_status, want = oracle(body, content_type)
        got = mlfast_post(body, content_type)
        if want_status == 200:
            assert got.status_code == 200, (label, got.text)
            assert _same(got.json(), want), (label, got.json(), want)
        else:
            assert 400 <= want_status < 500, (label, want_status)
            assert got.status_code == 400, (label, got.status_code, got.text)
            assert got.headers["content-type"].startswith("application/json"), label
            assert got.json()["message"], label
        compared += 1
    return compared


# -- MLflow's own scoring server -----------------------------------------------------


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory):
    est = LogisticRegression(max_iter=1000).fit(IRIS.data, IRIS.target)
    return _save(est, IRIS.data, tmp_path_factory.mktemp("mlflow") / "iris")


@pytest.fixture(scope="module")
def mlflow_server(iris_dir):
    port = free_port()
    mlflow_cli = BIN / "mlflow"
    argv = [
        str(mlflow_cli) if mlflow_cli.exists() else sys.executable,
        *([] if mlflow_cli.exists() else ["-m", "mlflow"]),
        "models",
        "serve",
        "-m",
        str(iris_dir),
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # MLflow starts `uvicorn` from PATH: this environment's
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with Server(argv, port=port, env=env, health="/ping", timeout=180) as server:
        yield server


def test_answers_equal_mlflow_models_serve(iris_dir, mlflow_server):
    def oracle(body, content_type):
        r = requests.post(
            f"{mlflow_server.url}/invocations",
            data=body,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        return r.status_code, (r.json() if r.status_code == 200 else None)

    with mlfast_serve(str(iris_dir)) as server:

        def post(body, content_type):
            return requests.post(
                f"{server.url}/invocations",
                data=body,
                headers={"Content-Type": content_type},
                timeout=30,
            )

        n = _compare(post, oracle, _iris_payloads())
        csv = _csv(pd.DataFrame(ROWS, columns=COLUMNS))
        n += _compare(post, oracle, {"csv": csv}, "text/csv")
        # the SageMaker bodies on the same route keep their answers
        r = post(json.dumps({"features": ROWS[0]}), "application/json")
        assert r.status_code == 200 and r.json() == {"prediction": 0}
        r = requests.post(
            f"{server.url}/invocations",
            data="5.1,3.5,1.4,0.2\n",
            timeout=30,
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
        assert r.status_code == 200 and r.text == "0\n"
        index = requests.get(server.url + "/", timeout=10).json()
    assert n == len(_iris_payloads()) + 1
    assert index["model"]["mlflow"]["flavor"] == "sklearn"
    assert index["model"]["mlflow"]["signature"]["inputs"][0]["name"] == COLUMNS[0]


# -- MLflow's scoring code in-process, more models ----------------------------------------


def _models(tmp):
    X, y = IRIS.data, IRIS.target
    frame = _frame()
    y_frame = ((frame["size"] > 0) ^ (frame["colour"] == "red")).astype(int)
    ct = make_pipeline(
        ColumnTransformer(
            [("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"])],
            remainder="passthrough",
        ),
        LogisticRegression(),
    ).fit(frame, y_frame)
    fresh = _frame(6, seed=3)
    records = fresh.to_dict(orient="records")
    out = {
        "forest": (
            _save(
                RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X, tmp / "forest"
            ),
            _iris_payloads(),
        ),
        "pipeline_cloudpickle": (
            _save(
                make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
                X,
                tmp / "pipeline",
                "cloudpickle",
            ),
            _iris_payloads(),
        ),
        "proba": (
            _save(
                LogisticRegression(max_iter=1000).fit(X, y),
                X,
                tmp / "proba",
                pyfunc_predict_fn="predict_proba",
            ),
            _iris_payloads(),
        ),
        "ridge": (
            _save(Ridge().fit(X, IRIS.data.iloc[:, 0] * 2.0), X, tmp / "ridge"),
            _iris_payloads(),
        ),
        "column_transformer": (
            _save(ct, frame, tmp / "ct"),
            {
                "dataframe_split": {
                    "dataframe_split": fresh.to_dict(orient="split") | {"index": None}
                },
                "dataframe_records": {"dataframe_records": records},
                "instances": {"instances": records},
                "unknown_category": {"dataframe_records": [{"colour": "purple", "size": 0.5}]},
                "number_in_a_string_column": {"dataframe_records": [{"colour": 3, "size": 0.5}]},
            },
        ),
    }
    for payloads in out.values():
        payloads[1].pop("no_columns", None)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return _models(tmp_path_factory.mktemp("mlflow-models"))


@pytest.mark.parametrize(
    "name", ["forest", "pipeline_cloudpickle", "proba", "ridge", "column_transformer"]
)
def test_answers_equal_mlflow_scoring_code(name, models):
    path, payloads = models[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyfunc_model = mlflow.pyfunc.load_model(str(path))
    client = _mlfast_client(path)

    def post(body, content_type):
        return client.post("/invocations", content=body, headers={"Content-Type": content_type})

    n = _compare(post, lambda b, t: _mlflow_answer(pyfunc_model, b, t), payloads)
    if name == "column_transformer":
        n += _compare(
            post,
            lambda b, t: _mlflow_answer(pyfunc_model, b, t),
            {"csv": _csv(_frame(5, seed=4))},
            "text/csv",
        )
    assert n >= len(payloads)


def test_bad_bodies_are_4xx_json(iris_dir):
    client = _mlfast_client(iris_dir)
    for body in (
        b"[1, 2",
        b'{"dataframe_split": 3}',
        b'{"dataframe_records": {"a": 1}}',
        b'{"inputs": "text"}',
        b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}',
        b'{"instances": [], "params": 3}',
        b'{"dataframe_split": {"data": [[1e400]]}}',
    ):
        r = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == "BAD_REQUEST"
    r = client.post(
        "/invocations", content=b"\xff\xfe,\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 400, r.text


def test_cli_serves_models_uri(tmp_path, iris_dir):
    """``mlfast serve models:/iris/1`` against a local file store."""
    root = tmp_path / "mlruns"
    version = root / "models" / "iris" / "version-1"
    version.mkdir(parents=True)
    (version / "meta.yaml").write_text(
        f"name: iris\nversion: 1\nstorage_location: {iris_dir.as_uri()}\n"
    )
    with mlfast_serve("models:/iris/1", env={"MLFLOW_TRACKING_URI": root.as_uri()}) as server:
        r = requests.post(
            f"{server.url}/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
            timeout=30,
        )
        index = requests.get(server.url + "/", timeout=10).json()
    assert r.json() == {"predictions": [0, 2, 1]}
    assert index["model"]["name"] == "iris"


def test_inspect_cli_on_an_mlflow_skops_file(iris_dir):
    out = subprocess.run(
        [sys.executable, "-m", "mlfast", "inspect", str(iris_dir / "model.skops")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sklearn.linear_model._logistic.LogisticRegression")


def test_repository_takes_mlflow_directories_and_skops_files(tmp_path, iris_dir):
    import shutil

    import skops.io

    from mlfast.serving import build_service

    root = tmp_path / "repo"
    shutil.copytree(iris_dir, root / "iris" / "1")
    ridge = Ridge().fit(IRIS.data.to_numpy(), IRIS.target)
    (root / "iris" / "2").mkdir(parents=True)
    skops.io.dump(ridge, root / "iris" / "2" / "model.skops")
    service = build_service(root, watch=False)
    registry = service.registry
    assert registry.versions("iris") == ["1", "2"]
    first = registry.get("iris", "1")
    second = registry.get("iris", "2")
    assert first.model.mlflow.serialization_format == "skops"
    assert first.source == str(root / "iris" / "1")
    X = IRIS.data.to_numpy()[:5]
    np.testing.assert_allclose(second.predict(X), ridge.predict(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        first.predict(IRIS.data[:5]),
        LogisticRegression(max_iter=1000).fit(IRIS.data, IRIS.target).predict(IRIS.data[:5]),
    )
