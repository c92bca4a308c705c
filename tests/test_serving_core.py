"""The serving core without a network: layering, OpenAPI, output types, the
codec, hooks, and what the adapters do with the core's answers.

Answers that depend on the model (string labels, regressors, feature
names, NaN-accepting pipelines) go through both frameworks' in-process
test clients, which run the same adapters as the real servers.
"""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import numpy as np
import pytest
from support.serving import (
    FRAMEWORKS,
    assert_json_error,
    fit_imputing,
    fit_regressor,
    fit_string_labels,
    iris,
)

import mlfast
from mlfast.serving import build_service, codec, create_app
from mlfast.serving.errors import InvalidInput, ModelNotFound
from mlfast.serving.http import HttpError, Request, Response, Route, json_response
from mlfast.serving.service import status_of

SERVING = Path(mlfast.__file__).with_name("serving")
# starlette's TestClient asks for httpx2 now; httpx is what is installed
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class Client:
    """One interface over Flask's test client and Starlette's TestClient."""

    def __init__(self, app, framework):
        self.framework = framework
        if framework == "flask":
            self._c = app.test_client()
        else:
            from fastapi.testclient import TestClient

            self._c = TestClient(app)

    def post(self, path, *, json=None, data=None, headers=None):
        if self.framework == "flask":
            return _FlaskResult(self._c.post(path, json=json, data=data, headers=headers))
        return self._c.post(path, json=json, content=data, headers=headers)

    def get(self, path):
        if self.framework == "flask":
            return _FlaskResult(self._c.get(path))
        return self._c.get(path)


class _FlaskResult:
    def __init__(self, r):
        self.status_code = r.status_code
        self.headers = r.headers
        self.content = r.get_data()
        self.text = self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        "strings": (d / "species.pkl", fit_string_labels(d / "species.pkl")),
        "regressor": (d / "petal.joblib", fit_regressor(d / "petal.joblib")),
        "imputing": (d / "imputing.pkl", fit_imputing(d / "imputing.pkl")),
    }


def client(path, framework, **options):
    return Client(create_app(str(path), framework=framework, **options), framework)


# -- layering ---------------------------------------------------------------------------

FRAMEWORK_MODULES = {"fastapi", "flask", "starlette", "werkzeug", "uvicorn", "gunicorn"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


# every module of the core and the protocols: all but the adapters and the
# process runner (server.py starts uvicorn and gunicorn)
CORE_MODULES = sorted(
    p.stem for p in SERVING.glob("*.py") if p.stem not in ("fastapi", "flask", "server", "__init__")
)


def test_the_core_modules_are_all_checked():
    assert {
        "http",
        "errors",
        "registry",
        "service",
        "loading",
        "codec",
        "schemas",
        "lesson",
        "sagemaker",
        "vertex",
        "kserve_v1",
        "oip",
        "repository_routes",
    } <= set(CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_protocols_never_know_the_framework(module):
    assert not set(_imports(SERVING / f"{module}.py")) & FRAMEWORK_MODULES


@pytest.mark.parametrize("module", ["fastapi", "flask"])
def test_adapters_never_know_a_body_shape(module):
    source = (SERVING / f"{module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("mlfast.serving.")
        ):
            imported.add(node.module)
    assert imported <= {
        "mlfast.serving.http",
        "mlfast.serving.service",
        "mlfast.serving.schemas",
    }, imported
    for word in ("features", "instances", "predictions", "inputs", "outputs", "codec", "orjson"):
        assert f'"{word}"' not in source and f"'{word}'" not in source, word


def test_importing_serving_imports_no_framework():
    import subprocess
    import sys

    code = (
        "import sys, mlfast.serving, mlfast.serving.service, mlfast.serving.codec; "
        "print(sorted(m for m in ('fastapi', 'flask', 'starlette', 'uvicorn', 'gunicorn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- OpenAPI: typed request and response schemas for every route --------------------------


def test_openapi_has_typed_schemas_for_every_route():
    app = create_app(mlfast.demo_model_path(), framework="fastapi")
    schema = app.openapi()
    service = app.state.mlfast_service
    components = schema["components"]["schemas"]
    text = json.dumps(schema)
    for ref in set(part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]):
        assert ref in components, ref
    for route in service.routes:
        op = schema["paths"][route.path][route.method.lower()]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (route.path, ok)
        assert "4XX" in op["responses"]
        if route.method == "POST":
            body = op["requestBody"]["content"]["application/json"]
            assert "$ref" in body["schema"], route.path
            assert body["example"], route.path
        for name in route.param_names:
            assert any(p["name"] == name and p["in"] == "path" for p in op["parameters"]), (
                route.path,
                name,
            )
    assert set(components["PredictRequest"]["properties"]) == {"features"}
    predict = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert predict["application/json"]["example"] == {"features": [5.1, 3.5, 1.4, 0.2]}
    assert set(predict) == {"application/json", "text/csv", "application/x-npy"}


def test_docs_page_is_served_from_the_package():
    from fastapi.testclient import TestClient

    c = TestClient(create_app(mlfast.demo_model_path()))
    page = c.get("/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in page
        r = c.get(f"/static-offline-docs/{asset}")
        assert r.status_code == 200 and len(r.content) > 100_000


# -- answers by model kind, on both frameworks ----------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_string_labels_answer_strings(models, framework):
    path, model = models["strings"]
    c = client(path, framework)
    X = iris()[0]
    assert c.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).json() == {
        "prediction": "setosa"
    }
    assert c.post("/predict", json={"features": X.tolist()}).json() == {
        "predictions": model.predict(X).tolist()
    }
    r = c.post(
        "/invocations",
        data="5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3",
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert r.text == "setosa\nvirginica\n"
    meta = c.get("/v2/models/species").json()
    assert {"name": "predict", "datatype": "BYTES", "shape": [-1]} in meta["outputs"]
    body = {
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP64", "data": X[[0, 100]].tolist()}
        ]
    }
    out = c.post("/v2/models/species/infer", json=body).json()["outputs"][0]
    assert out == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["setosa", "virginica"],
    }


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_v2_binary_bytes_output_reads_in_tritonclient(models, framework):
    from tritonclient.http import InferResult

    path, model = models["strings"]
    c = client(path, framework)
    X = iris()[0][[0, 60, 120]]
    body = {
        "inputs": [
            {"name": "input", "shape": [3, 4], "datatype": "FP64", "data": X.ravel().tolist()}
        ],
        "outputs": [
            {"name": "predict", "parameters": {"binary_data": True}},
            {"name": "predict_proba", "parameters": {"binary_data": True}},
        ],
    }
    r = c.post("/v2/models/species/infer", json=body)
    assert r.headers["content-type"] == "application/octet-stream"
    length = int(r.headers["Inference-Header-Content-Length"])
    result = InferResult.from_response_body(r.content, header_length=length)
    assert [s.decode() for s in result.as_numpy("predict")] == model.predict(X).tolist()
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_regressor_answers_floats(models, framework):
    path, model = models["regressor"]
    c = client(path, framework, name="petal")
    X = iris()[0][:, :3]
    r = c.post("/predict", json={"features": X[0].tolist()}).json()
    assert isinstance(r["prediction"], float)
    assert r["prediction"] == pytest.approx(float(model.predict(X[:1])[0]), rel=1e-12)
    r = c.post("/v1/models/petal:predict", json={"instances": X[:5].tolist()}).json()
    np.testing.assert_allclose(r["predictions"], model.predict(X[:5]), rtol=1e-12)
    out = c.post(
        "/v2/models/petal/infer",
        json={
            "inputs": [
                {"name": "x", "shape": [5, 3], "datatype": "FP32", "data": X[:5].ravel().tolist()}
            ]
        },
    ).json()
    assert out["outputs"][0]["datatype"] == "FP64"
    assert_json_error(
        c.post(
            "/v2/models/petal/infer",
            json={
                "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
                "outputs": [{"name": "predict_proba"}],
            },
        ),
        400,
        "unknown output 'predict_proba'",
    )
    assert c.get("/").json()["model"]["kind"] == "regressor"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_null_is_a_missing_value_for_models_that_impute(models, framework):
    path, model = models["imputing"]
    c = client(path, framework)
    row = [5.1, None, 1.4, 0.2]
    expected = int(model.predict(np.array([[5.1, np.nan, 1.4, 0.2]]))[0])
    assert c.post("/predict", json={"features": row}).json() == {"prediction": expected}
    assert c.post(
        "/invocations", data="5.1,nan,1.4,0.2", headers={"Content-Type": "text/csv"}
    ).json() == [expected]


@pytest.mark.parametrize("framework", FRAMEWORKS)
# serving silences this warning for its modules, but pytest resets warning
# filters around each test; tests/test_cli.py checks a real server
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_rows_by_feature_name(tmp_path, framework):
    pytest.importorskip("pandas")
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    joblib.dump(model, tmp_path / "named.pkl")
    c = client(tmp_path / "named.pkl", framework)
    names = list(data.data.columns)
    rows = data.data.iloc[[0, 100]]
    expected = model.predict(rows).tolist()
    instances = [dict(zip(names, r)) for r in rows.values.tolist()]
    assert c.post(
        "/v1/endpoints/1/deployedModels/2:predict", json={"instances": instances}
    ).json() == {"predictions": expected}
    assert c.post("/predict", json={"features": instances[0]}).json() == {"prediction": expected[0]}
    bad = dict(instances[0])
    del bad[names[0]]
    assert_json_error(
        c.post("/v1/models/named:predict", json={"instances": [bad]}),
        400,
        "lacks feature",
        names[0],
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_vertex_env_routes(framework):
    env = {
        "AIP_HEALTH_ROUTE": "/health",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/42/deployedModels/7:predict",
        "AIP_DEPLOYED_MODEL_ID": "7",
    }
    service = build_service(mlfast.demo_model_path(), env=env)
    c = Client(create_app(service, framework=framework), framework)
    assert c.get("/health").status_code == 200
    assert c.post(
        "/v1/endpoints/42/deployedModels/7:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
    ).json() == {"predictions": [0]}
    r = c.post(
        "/v1/projects/p/locations/l/endpoints/e:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
    )
    assert r.json()["deployedModelId"] == "7"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_vertex_sdk_paths_answer_google_errors(framework):
    c = Client(create_app(mlfast.demo_model_path(), framework=framework), framework)
    r = c.post("/v1/projects/p/locations/l/endpoints/e:predict", json={"instances": [[1, 2]]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert "X has 2 features" in error["message"]


# -- the service: errors and hooks ---------------------------------------------------------------


def _service_with(handler):
    service = build_service(mlfast.demo_model_path(), protocols=())
    route = Route("POST", "/x", handler, "x")
    service.add_routes([route])
    return service, route


def test_unexpected_errors_are_500_without_details(caplog):
    def boom(request):
        raise RuntimeError("secret path /etc/x")

    service, route = _service_with(boom)
    response = service.handle(route, Request("POST", "/x", {}, {}, b""))
    assert response.status == 500
    assert b"secret" not in response.body and b"Traceback" not in response.body
    assert json.loads(response.body) == {
        "error": "internal server error; the server log has the details"
    }
    assert "secret path" in caplog.text  # the log has it


def test_value_errors_and_http_errors_are_client_errors():
    def value_error(request):
        raise mlfast.ModelFormatError("bad thing\nsecond line")

    service, route = _service_with(value_error)
    response = service.handle(route, Request("POST", "/x", {}, {}, b""))
    assert response.status == 400 and json.loads(response.body)["error"] == "bad thing\nsecond line"

    def http_error(request):
        raise HttpError(429, "slow down", {"Retry-After": "1"})

    service, route = _service_with(http_error)
    response = service.handle(route, Request("POST", "/x", {}, {}, b""))
    assert response.status == 429 and response.headers == {"Retry-After": "1"}


def test_hooks_wrap_every_call():
    calls = []

    def hook(route, request, call_next):
        calls.append(("before", route.name))
        response = call_next()
        calls.append(("after", response.status))
        response.headers["X-Hook"] = "1"
        return response

    service, route = _service_with(lambda request: json_response({"ok": True}))
    service.hooks.append(hook)
    response = service.handle(route, Request("POST", "/x", {}, {}, b""))
    assert calls == [("before", "x"), ("after", 200)] and response.headers["X-Hook"] == "1"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_not_ready_answers_503(framework):
    service = build_service(mlfast.demo_model_path(), env={"AIP_HEALTH_ROUTE": "/health"})
    c = Client(create_app(service, framework=framework), framework)
    assert c.get("/ping").status_code == 200
    service.registry.default.ready = False
    for path in (
        "/ping",
        "/health",
        "/v2/health/ready",
        "/v2/models/iris_logreg/ready",
        "/v1/models/iris_logreg",
    ):
        assert_json_error(c.get(path), 503, "not")
    assert c.get("/v2/health/live").status_code == 200


def test_first_route_for_a_path_wins():
    env = {"AIP_HEALTH_ROUTE": "/ping"}
    service = build_service(mlfast.demo_model_path(), env=env)
    pings = [r for r in service.routes if r.path == "/ping" and r.method == "GET"]
    assert [r.name for r in pings] == ["sagemaker_ping"]


def test_registry_lookups():
    service = build_service(mlfast.demo_model_path(), name="iris", version="3")
    registry = service.registry
    assert registry.get("iris").version == "3"
    assert registry.get("iris", "3").name == "iris"
    with pytest.raises(ModelNotFound) as info:
        registry.get("iris", "1")
    assert status_of(info.value) == 404


def test_model_directory_is_resolved(tmp_path):
    import shutil

    (tmp_path / "model").mkdir()
    shutil.copy(mlfast.demo_model_path(), tmp_path / "model" / "model.joblib")
    assert build_service(tmp_path / "model").registry.default.name == "model"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model file"):
        build_service(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_service(tmp_path / "missing.pkl")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_model_names_fit_in_headers_and_urls(tmp_path, framework):
    """A name or version given explicitly must be ASCII (it goes into every
    answer's X-Model-Name and into URLs): refused with a message, not a 500
    on every request; a name taken from a file name is made to fit."""
    import shutil

    demo = mlfast.demo_model_path()
    for bad in ("模型", "a b", "", "-x", "x" * 129):
        with pytest.raises(ValueError, match="not usable"):
            build_service(demo, name=bad)
    with pytest.raises(ValueError, match="model version"):
        build_service(demo, version="v 2")
    odd = tmp_path / "modèle v2.pkl"
    shutil.copy(demo, odd)
    c = client(odd, framework)
    r = c.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Name"] == "mod_le_v2"
    assert c.get("/v2/models/mod_le_v2").status_code == 200


# -- the codec -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("application/json, text/csv", "application/json"),
        ("text/csv;q=0.9, application/json;q=0.1", "text/csv"),
        ("application/xml", None),
        ("application/xml, */*;q=0.1", "application/json"),
        ("text/csv;q=0", None),
    ],
)
def test_choose_accept(accept, expected):
    assert (
        codec.choose_accept(accept, ("application/json", "text/csv"), "application/json")
        == expected
    )


def test_decode_styles():
    served = build_service(mlfast.demo_model_path()).registry.default
    X, style = codec.decode_payload(b'{"features": [1, 2, 3, 4]}', "application/json", served)
    assert style == codec.LESSON_ONE and X.shape == (1, 4)
    X, style = codec.decode_payload(b'{"features": [[1, 2, 3, 4]]}', "application/json", served)
    assert style == codec.LESSON_MANY
    X, style = codec.decode_payload(b"[[1, 2, 3, 4], [5, 6, 7, 8]]", "application/json", served)
    assert style == codec.BARE and X.dtype == np.int64 and X.shape == (2, 4)
    buf = io.BytesIO()
    np.save(buf, np.ones((3, 4), dtype=np.float32))
    X, style = codec.decode_payload(buf.getvalue(), "application/x-npy", served)
    assert style == codec.TABULAR and X.dtype == np.float32
    with pytest.raises(InvalidInput, match="Open Inference Protocol"):
        codec.decode_payload(b'{"inputs": []}', "application/json", served)


def test_npy_with_pickles_is_refused():
    served = build_service(mlfast.demo_model_path()).registry.default
    buf = io.BytesIO()
    np.save(buf, np.array([object(), 1], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInput, match="dtype object; expected numbers"):
        codec.decode_payload(buf.getvalue(), "application/x-npy", served)


def test_csv_output_quotes_what_needs_quoting():
    assert codec.csv_bytes(np.array(["a", "b,c", 'd"e'], dtype=object)) == b'a\n"b,c"\n"d""e"\n'
    assert codec.csv_bytes(np.array([[0.5, 1.0], [2.0, 3.0]])) == b"0.5,1.0\n2.0,3.0\n"


def test_response_repr_is_short():
    assert "200" in repr(Response(200, b"x" * 1000))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_multi_output_classifier(tmp_path, framework):
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris()
    Y = np.c_[
        np.array(["setosa", "versicolor", "virginica"])[y],
        np.array(["short", "long"])[(X[:, 0] > 5.8).astype(int)],
    ]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y)
    joblib.dump(model, tmp_path / "two.pkl")
    c = client(tmp_path / "two.pkl", framework)
    expected = model.predict(X[:3]).tolist()
    assert c.post("/predict", json={"features": X[:3].tolist()}).json() == {"predictions": expected}
    info = c.get("/").json()["model"]
    assert info["classes"] == [c_.tolist() for c_ in model.classes_]
    meta = c.get("/v2/models/two").json()
    assert {"name": "predict", "datatype": "BYTES", "shape": [-1, 2]} in meta["outputs"]
    assert {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 5]} in meta["outputs"]
    body = {
        "inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": X[:3].tolist()}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    out = c.post("/v2/models/two/infer", json=body).json()["outputs"]
    assert out[0]["shape"] == [3, 2] and out[0]["data"] == [str(v) for row in expected for v in row]
    assert out[1]["shape"] == [3, 5]
    np.testing.assert_allclose(
        np.reshape(out[1]["data"], (3, 5)), np.hstack(model.predict_proba(X[:3]))
    )


def _estimators():
    from sklearn.ensemble import GradientBoostingRegressor, IsolationForest, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression, MultiTaskLasso, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    X, y = iris()
    binary = (y == 2).astype(int)
    two = np.c_[X[:, 3], X[:, 2]]
    return X, [
        ("linear", LinearRegression().fit(X, X[:, 0])),
        ("ridge2", Ridge().fit(X, two)),
        ("multitask", MultiTaskLasso(alpha=0.1).fit(X, two)),
        ("binary", make_pipeline(StandardScaler(), LogisticRegression()).fit(X, binary)),
        ("scaler", StandardScaler().fit(X)),
        ("forest", RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)),
        ("gbr", GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0])),
        ("tree2", DecisionTreeRegressor(max_depth=3).fit(X, two)),
        ("isolation", IsolationForest(n_estimators=5, random_state=0).fit(X)),
    ]


def test_every_kind_of_model_answers_on_every_route(tmp_path):
    """No 500 whatever the estimator: the index, V2 metadata, /predict and
    every V2 output the metadata lists, with scikit-learn as the oracle."""
    import joblib

    X, estimators = _estimators()
    for name, est in estimators:
        joblib.dump(est, tmp_path / f"{name}.pkl")
        try:
            model = mlfast.load(tmp_path / f"{name}.pkl")
        except mlfast.UnsupportedModelError:
            continue
        c = Client(create_app(model, framework="flask", name=name), "flask")
        assert c.get("/").status_code == 200, name
        meta = c.get(f"/v2/models/{name}").json()
        expected = est.transform(X[:4]) if not hasattr(est, "predict") else est.predict(X[:4])
        r = c.post("/predict", json={"features": X[:4].tolist()})
        assert r.status_code == 200, (name, r.text)
        np.testing.assert_allclose(
            np.asarray(r.json()["predictions"], dtype=float), expected, rtol=1e-9, err_msg=name
        )
        body = {
            "inputs": [{"name": "x", "shape": [4, 4], "datatype": "FP64", "data": X[:4].tolist()}],
            "outputs": [{"name": o["name"]} for o in meta["outputs"]],
        }
        r = c.post(f"/v2/models/{name}/infer", json=body)
        assert r.status_code == 200, (name, r.text)
        for declared, got in zip(meta["outputs"], r.json()["outputs"]):
            assert got["datatype"] == declared["datatype"], (name, declared, got)
            assert len(got["shape"]) == len(declared["shape"]), (name, declared, got)


# -- the server answers as the library does --------------------------------------------------


def _agreement_models(tmp_path):
    """A model that refuses numbers written as strings (LogisticRegression:
    dtype='numeric') and one that converts them (a tree), as files."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris()
    out = {}
    for name, est in (
        ("logreg", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=3)),
    ):
        joblib.dump(est.fit(X, y), tmp_path / f"{name}.pkl")
        out[name] = tmp_path / f"{name}.pkl"
    return out


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_numbers_written_as_strings_are_read_as_the_library_reads_them(tmp_path, framework):
    """``{"features": ["5.1", ...]}``: the server answers what
    ``model.predict`` answers for the same list -- predictions, or the
    model's own refusal -- on every JSON protocol, for rows made at random."""
    import random

    rng = random.Random(7)
    X = iris()[0]
    for name, path in _agreement_models(tmp_path).items():
        model = mlfast.load(path)
        c = client(path, framework, name=name)
        for _ in range(12):
            rows = [
                [
                    rng.choice([v, repr(v), f" {v} ", f"{v:.3e}"])
                    for v in X[rng.randrange(150)].tolist()
                ]
                for _ in range(rng.randrange(1, 4))
            ]
            try:
                expected, refusal = model.predict(rows).tolist(), None
            except ValueError as e:
                expected, refusal = None, str(e)
            for path_, body, key in (
                ("/predict", {"features": rows}, "predictions"),
                ("/invocations", rows, None),
                (f"/v1/models/{name}:predict", {"instances": rows}, "predictions"),
                ("/v1/endpoints/1/deployedModels/2:predict", {"instances": rows}, "predictions"),
            ):
                r = c.post(path_, json=body)
                if refusal is not None:
                    assert_json_error(r, 400, refusal)
                else:
                    assert r.status_code == 200, (name, path_, r.text)
                    assert (r.json()[key] if key else r.json()) == expected, (name, path_, rows)
        # a value that is no number at all is named, whatever the model
        bad = [[5.1, "three", 1.4, 0.2]]
        assert_json_error(
            c.post("/predict", json={"features": bad}),
            400,
            "non-numeric value",
            "features[0][1]",
            "three",
        )


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_rows_by_name_and_the_keys_they_lack(tmp_path, framework):
    pd = pytest.importorskip("pandas")
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    est = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    joblib.dump(est, tmp_path / "named.pkl")
    model = mlfast.load(tmp_path / "named.pkl")
    c = client(tmp_path / "named.pkl", framework)
    names = list(data.data.columns)
    row = {n: str(v) for n, v in zip(names, data.data.iloc[100])}  # a DataFrame of text columns
    expected = model.predict(pd.DataFrame([row], dtype=object)).tolist()
    assert c.post("/predict", json={"features": row}).json() == {"prediction": expected[0]}
    # keys that are not the model's: the answer lists the ones that were sent
    sent = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    error = assert_json_error(
        c.post("/v1/models/named:predict", json={"instances": [sent]}),
        400,
        "lacks feature(s)",
        names[0],
    )
    assert all(k in error for k in sent), error


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_bare_list_of_objects_is_pointed_to_instances(framework):
    c = Client(create_app(mlfast.demo_model_path(), framework=framework), framework)
    for body in ([{"features": [5.1, 3.5, 1.4, 0.2]}], [{"a": 1}, {"b": 2}]):
        for path in ("/predict", "/invocations"):
            assert_json_error(c.post(path, json=body), 400, '{"instances": [...]}')


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_csv_mistakes_are_placed_as_an_editor_counts(framework):
    """A header line, a cell that is no number, a line of another length:
    line and column counted from 1, over randomly made bodies."""
    import random

    rng = random.Random(8)
    c = Client(create_app(mlfast.demo_model_path(), framework=framework), framework)
    rows = iris()[0][:20].tolist()

    def csv(lines):
        return "\n".join(",".join(str(v) for v in line) for line in lines) + "\n"

    def post(text):
        return c.post("/invocations", data=text, headers={"Content-Type": "text/csv"})

    for _ in range(8):
        header = rng.sample(
            ["sepal_length", "sepal width", "petal.length", "petal_w", "a", "b", "c", "d"], 4
        )
        assert_json_error(
            post(csv([header] + rows[:3])), 400, "line 1 looks like a header", header[0]
        )
        lines = [list(r) for r in rows[: rng.randrange(2, 8)]]
        at, col = rng.randrange(len(lines)), rng.randrange(4)
        lines[at][col] = rng.choice(["x", "5,1".replace(",", ";"), "--", "1.2.3"])
        assert_json_error(post(csv(lines)), 400, f"line {at + 1}, column {col + 1} is")
        lines = [list(r) for r in rows[: rng.randrange(2, 8)]]
        at = rng.randrange(1, len(lines))
        lines[at] = lines[at][:3]
        assert_json_error(post(csv(lines)), 400, f"line {at + 1} has 3 values, line 1 has 4")
