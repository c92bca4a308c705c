"""Every protocol through real servers and real clients, on both frameworks.

One server per framework (``python -m mlfast serve`` with the bundled iris
model: uvicorn for FastAPI, gunicorn for Flask) on a free loopback port; the
same test cases run against each.  Clients: the lesson's ``requests``,
boto3's ``invoke_endpoint``, google-cloud-aiplatform's ``Endpoint.predict``,
``tritonclient.http``.  scikit-learn is the oracle.
"""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pytest
import requests
from support.serving import FRAMEWORKS, assert_json_error, iris, mlfast_serve

import mlfast

NAME = "iris_logreg"  # the demo model file's stem
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module", params=FRAMEWORKS)
def server(request):
    with mlfast_serve(framework=request.param) as s:
        s.framework = request.param
        yield s


@pytest.fixture(scope="module")
def oracle():
    return joblib.load(mlfast.demo_model_path())


@pytest.fixture(scope="module")
def X():
    return iris()[0]


def post(server, path, **kw):
    return requests.post(server.url + path, timeout=30, **kw)


# -- the lesson ---------------------------------------------------------------------------


def test_lesson_predict_one_row(server, oracle):
    r = post(server, "/predict", json={"features": ROW})
    assert r.status_code == 200
    assert r.json() == {"prediction": int(oracle.predict(np.array(ROW).reshape(1, -1))[0])}
    assert r.json() == {"prediction": 0}
    assert isinstance(r.json()["prediction"], int)


def test_lesson_predict_batch_matches_sklearn(server, oracle, X):
    r = post(server, "/predict", json={"features": X.tolist()})
    assert r.status_code == 200
    assert r.json() == {"predictions": oracle.predict(X).tolist()}


def test_lesson_predict_curl_style_content_type(server):
    # curl -d sends application/x-www-form-urlencoded; the lesson's
    # get_json(force=True) reads it as JSON, and so do we
    r = post(
        server,
        "/predict",
        data=json.dumps({"features": ROW}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json() == {"prediction": 0}


def test_index_describes_the_model(server):
    r = requests.get(server.url + "/", timeout=10)
    body = r.json()
    assert body["model"]["name"] == NAME
    assert body["model"]["kind"] == "classifier"
    assert body["model"]["classes"] == [0, 1, 2]


# -- SageMaker ------------------------------------------------------------------------------


def test_sagemaker_ping(server):
    r = requests.get(server.url + "/ping", timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/invocations", "/endpoints/your-endpoint-name/invocations"])
def test_sagemaker_invocations_mirror_the_request(server, path, oracle, X):
    expected = oracle.predict(X[:5]).tolist()
    assert post(server, path, json={"features": ROW}).json() == {"prediction": 0}
    assert post(server, path, json={"features": X[:5].tolist()}).json() == {"predictions": expected}
    assert post(server, path, json=X[:5].tolist()).json() == expected
    assert post(server, path, json=ROW).json() == [0]
    assert post(server, path, json={"instances": X[:5].tolist()}).json() == {
        "predictions": expected
    }


def test_sagemaker_csv_and_npy(server, oracle, X):
    expected = oracle.predict(X[:5]).tolist()
    csv = "\n".join(",".join(repr(v) for v in row) for row in X[:5].tolist())
    r = post(server, "/invocations", data=csv, headers={"Content-Type": "text/csv"})
    assert r.json() == expected
    r = post(
        server, "/invocations", data=csv, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines() == [str(v) for v in expected]
    buf = io.BytesIO()
    np.save(buf, X[:5].astype(np.float32))
    r = post(
        server,
        "/invocations",
        data=buf.getvalue(),
        headers={"Content-Type": "application/x-npy", "Accept": "application/json"},
    )
    assert r.json() == oracle.predict(X[:5].astype(np.float32)).tolist()


def test_sagemaker_accept_negotiation(server):
    headers = {"Content-Type": "application/json"}
    r = post(
        server,
        "/invocations",
        json=ROW,
        headers={**headers, "Accept": "text/csv;q=0.5, application/json"},
    )
    assert r.headers["content-type"].startswith("application/json")
    r = post(server, "/invocations", json=ROW, headers={**headers, "Accept": "*/*"})
    assert r.json() == [0]
    r = post(server, "/invocations", json=ROW, headers={**headers, "Accept": "application/xml"})
    assert_json_error(r, 406, "application/xml")
    r = post(server, "/invocations", data=b"<x/>", headers={"Content-Type": "application/xml"})
    assert_json_error(r, 415, "application/xml")


def test_sagemaker_custom_attributes_echoed(server):
    r = post(
        server,
        "/invocations",
        json=ROW,
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc,c000b4f9"},
    )
    assert r.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=abc,c000b4f9"


@pytest.fixture
def sagemaker_runtime(server, monkeypatch):
    boto3 = pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return boto3.client("sagemaker-runtime", region_name="us-west-2", endpoint_url=server.url)


def test_boto3_lesson_client(sagemaker_runtime):
    """The lesson's SageMaker snippet, verbatim but for endpoint_url."""
    client = sagemaker_runtime
    endpoint_name = "your-endpoint-name"
    payload = json.dumps({"features": [1, 2, 3, 4]})
    response = client.invoke_endpoint(
        EndpointName=endpoint_name,
        ContentType="application/json",
        Body=payload,
    )
    result = json.loads(response["Body"].read().decode())
    model = joblib.load(mlfast.demo_model_path())
    assert result == {"prediction": int(model.predict([[1, 2, 3, 4]])[0])}
    assert response["ContentType"] == "application/json"


def test_boto3_csv_accept_and_custom_attributes(sagemaker_runtime, oracle, X):
    csv = "\n".join(",".join(map(str, row)) for row in X[:3].tolist())
    response = sagemaker_runtime.invoke_endpoint(
        EndpointName="iris",
        ContentType="text/csv",
        Accept="text/csv",
        Body=csv,
        CustomAttributes="request-id=42",
    )
    assert response["Body"].read().decode().split() == [str(v) for v in oracle.predict(X[:3])]
    assert response["ContentType"] == "text/csv"
    assert response["CustomAttributes"] == "request-id=42"


def test_boto3_sees_our_error_message(sagemaker_runtime):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        sagemaker_runtime.invoke_endpoint(
            EndpointName="iris",
            ContentType="application/json",
            Body=json.dumps({"features": [1, 2, 3]}),
        )
    error = info.value.response["Error"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationError"
    assert "X has 3 features, but LogisticRegression is expecting 4 features" in error["Message"]


# -- Vertex AI --------------------------------------------------------------------------------


def test_vertex_container_routes(server, oracle, X):
    r = requests.get(server.url + "/v1/endpoints/123/deployedModels/456", timeout=10)
    assert r.status_code == 200
    r = post(
        server,
        "/v1/endpoints/123/deployedModels/456:predict",
        json={"instances": X[:4].tolist(), "parameters": {"confidence": 0.5}},
    )
    assert r.json() == {"predictions": oracle.predict(X[:4]).tolist()}
    r = post(
        server,
        "/v1/endpoints/123/deployedModels/456:predict",
        json={"instances": [{"features": ROW}, {"features": X[100].tolist()}]},
    )
    assert r.json() == {"predictions": oracle.predict([ROW, X[100]]).tolist()}


def test_vertex_request_limit_is_1_5_mb(server):
    body = b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0], " * 80_000 + b"[1, 2, 3, 4]]}"
    assert len(body) > 1_500_000
    r = post(
        server,
        "/v1/endpoints/1/deployedModels/2:predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(r, 413, "1500000")
    # the same body is fine where the limit is larger
    r = post(server, "/predict", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 80_001


@pytest.fixture
def vertex_endpoint(server):
    aiplatform = pytest.importorskip("google.cloud.aiplatform")
    from google.auth.credentials import AnonymousCredentials

    aiplatform.init(
        project="your-project-id",
        location="us-central1",
        api_endpoint=server.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    return aiplatform.Endpoint("your-endpoint-id")


def test_aiplatform_sdk_predict(vertex_endpoint, oracle, X):
    endpoint = vertex_endpoint
    assert (
        endpoint.resource_name
        == "projects/your-project-id/locations/us-central1/endpoints/your-endpoint-id"
    )
    payload = {"features": [1, 2, 3, 4]}
    response = endpoint.predict([payload])  # the lesson's call, with its payload in a list
    assert response.predictions == [float(oracle.predict([[1, 2, 3, 4]])[0])]
    assert response.deployed_model_id == NAME
    assert response.model_version_id == "1"
    assert response.model_resource_name.endswith(f"/models/{NAME}")
    response = endpoint.predict(instances=X[:6].tolist(), parameters={"a": 1})
    assert response.predictions == [float(v) for v in oracle.predict(X[:6])]


def test_aiplatform_sdk_lesson_dict_payload_gets_a_clear_error(vertex_endpoint):
    """The lesson passes the dict itself; the SDK then sends only its keys
    ({"instances": ["features"]}).  No server can answer that, so we say why."""
    from google.api_core import exceptions

    with pytest.raises(exceptions.BadRequest) as info:
        vertex_endpoint.predict({"features": [1, 2, 3, 4]})
    assert "endpoint.predict([payload])" in str(info.value)


# -- KServe V1 ----------------------------------------------------------------------------------


def test_kserve_v1(server, oracle, X):
    assert requests.get(server.url + "/v1/models", timeout=10).json() == {"models": [NAME]}
    assert requests.get(server.url + f"/v1/models/{NAME}", timeout=10).json() == {
        "name": NAME,
        "ready": True,
    }
    r = post(server, f"/v1/models/{NAME}:predict", json={"instances": X[:7].tolist()})
    assert r.json() == {"predictions": oracle.predict(X[:7]).tolist()}
    assert_json_error(
        post(server, "/v1/models/nope:predict", json={"instances": [ROW]}), 404, "nope"
    )
    assert_json_error(requests.get(server.url + "/v1/models/nope", timeout=10), 404, "nope")


# -- Open Inference Protocol (V2) --------------------------------------------------------------


def test_v2_health_and_metadata(server):
    get = lambda p: requests.get(server.url + p, timeout=10)  # noqa: E731
    assert get("/v2").json()["name"] == "mlfast"
    assert "binary_tensor_data" in get("/v2").json()["extensions"]
    assert get("/v2/health/live").status_code == 200
    assert get("/v2/health/ready").status_code == 200
    meta = get(f"/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert {"name": "predict", "datatype": "INT64", "shape": [-1]} in meta["outputs"]
    assert {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]} in meta["outputs"]
    assert get(f"/v2/models/{NAME}/versions/1").json() == meta
    assert get(f"/v2/models/{NAME}/ready").status_code == 200
    assert get(f"/v2/models/{NAME}/versions/1/ready").status_code == 200
    assert_json_error(get(f"/v2/models/{NAME}/versions/7"), 404, "version '7'")
    assert_json_error(get("/v2/models/other/ready"), 404, "other")


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32", "INT64"])
def test_v2_infer_json(server, oracle, X, datatype):
    Xt = X[:10].astype(
        {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}[datatype]
    )
    body = {
        "id": "req-1",
        "inputs": [
            {
                "name": "input",
                "shape": list(Xt.shape),
                "datatype": datatype,
                "data": Xt.ravel().tolist(),
            }
        ],
    }
    r = post(server, f"/v2/models/{NAME}/infer", json=body)
    out = r.json()
    assert out["model_name"] == NAME and out["id"] == "req-1"
    assert out["outputs"] == [
        {"name": "predict", "shape": [10], "datatype": "INT64", "data": oracle.predict(Xt).tolist()}
    ]
    body["outputs"] = [{"name": "predict_proba"}, {"name": "predict"}]
    body["inputs"][0]["data"] = Xt.tolist()  # nested data is read too
    out = post(server, f"/v2/models/{NAME}/versions/1/infer", json=body).json()
    proba = out["outputs"][0]
    assert (
        proba["name"] == "predict_proba"
        and proba["shape"] == [10, 3]
        and proba["datatype"] == "FP64"
    )
    np.testing.assert_allclose(
        np.reshape(proba["data"], (10, 3)), oracle.predict_proba(Xt), rtol=1e-12, atol=1e-12
    )
    assert out["outputs"][1]["data"] == oracle.predict(Xt).tolist()


@pytest.fixture
def triton(server):
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=server.url.replace("http://", ""))
    yield httpclient, client
    client.close()


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_tritonclient(triton, oracle, X, binary_in, binary_out):
    httpclient, client = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(NAME)
    assert client.get_model_metadata(NAME)["name"] == NAME
    assert client.get_server_metadata()["name"] == "mlfast"
    Xt = X.astype(np.float32)
    inputs = [httpclient.InferInput("input", list(Xt.shape), "FP32")]
    inputs[0].set_data_from_numpy(Xt, binary_data=binary_in)
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary_out),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary_out),
    ]
    result = client.infer(NAME, inputs, outputs=outputs, request_id="7")
    np.testing.assert_array_equal(result.as_numpy("predict"), oracle.predict(Xt))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), oracle.predict_proba(Xt), rtol=1e-12, atol=1e-12
    )
    assert result.get_response()["id"] == "7"


def test_tritonclient_default_outputs_and_errors(triton, oracle, X):
    httpclient, client = triton
    from tritonclient.utils import InferenceServerException

    inputs = [httpclient.InferInput("input", [3, 4], "FP64")]
    inputs[0].set_data_from_numpy(X[:3])
    result = client.infer(NAME, inputs)  # no outputs: predict, binary
    np.testing.assert_array_equal(result.as_numpy("predict"), oracle.predict(X[:3]))
    with pytest.raises(InferenceServerException, match="unknown output 'nope'"):
        client.infer(NAME, inputs, outputs=[httpclient.InferRequestedOutput("nope")])
    bad = [httpclient.InferInput("input", [3, 3], "FP64")]
    bad[0].set_data_from_numpy(X[:3, :3])
    with pytest.raises(InferenceServerException, match="X has 3 features"):
        client.infer(NAME, bad)


# -- bad requests: 4xx with {"error": ...}, never a 500, never a trace ------------------------


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npy_header(shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


_NPY_HUGE = _npy_header((10**11, 4)) + b"\0" * 32
_V2_HEADER = (
    b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", '
    b'"parameters": {"binary_data_size": 12}}]}'
)
BAD = [
    # (name, path, kwargs, status, fragments)
    (
        "malformed JSON",
        "/predict",
        dict(data=b'{"features": [1, 2,', headers={"Content-Type": "application/json"}),
        400,
        ["malformed JSON"],
    ),
    (
        "not JSON at all",
        "/predict",
        dict(data=b"hello", headers={"Content-Type": "application/json"}),
        400,
        ["malformed JSON"],
    ),
    (
        "missing key",
        "/predict",
        dict(json={"feature": ROW}),
        400,
        ["missing key 'features'", "'feature'"],
    ),
    (
        "wrong feature count",
        "/predict",
        dict(json={"features": [1, 2, 3]}),
        400,
        ["X has 3 features, but LogisticRegression is expecting 4 features"],
    ),
    (
        "non-numeric value",
        "/predict",
        dict(json={"features": [1, 2, "three", 4]}),
        400,
        ["non-numeric value", "features[2]", "three"],
    ),
    (
        "non-numeric in a row",
        "/predict",
        dict(json={"features": [ROW, [1, 2, {"a": 1}, 4]]}),
        400,
        ["features[1][2]"],
    ),
    (
        "features not a list",
        "/predict",
        dict(json={"features": "5.1,3.5"}),
        400,
        ["features must be a list"],
    ),
    (
        "ragged rows",
        "/predict",
        dict(json={"features": [ROW, [1, 2]]}),
        400,
        ["not rectangular", "features[1] has 2 values"],
    ),
    ("3-D features", "/predict", dict(json={"features": [[ROW]]}), 400, ["3 levels"]),
    (
        "null is NaN, rejected",
        "/predict",
        dict(json={"features": [5.1, None, 1.4, 0.2]}),
        400,
        ["Input X contains NaN", "LogisticRegression"],
    ),
    (
        "NaN literal, rejected",
        "/predict",
        dict(
            data=b'{"features": [5.1, NaN, 1.4, 0.2]}', headers={"Content-Type": "application/json"}
        ),
        400,
        ["Input X contains NaN"],
    ),
    (
        "infinity, rejected",
        "/predict",
        dict(
            data=b'{"features": [5.1, Infinity, 1.4, 0.2]}',
            headers={"Content-Type": "application/json"},
        ),
        400,
        ["infinity"],
    ),
    (
        "empty body",
        "/predict",
        dict(data=b"", headers={"Content-Type": "application/json"}),
        400,
        ["empty request body"],
    ),
    ("zero rows", "/predict", dict(json={"features": []}), 400, ["0 feature"]),
    ("JSON scalar", "/predict", dict(json=42), 400, ["expected a JSON object"]),
    (
        "JSON nested too deeply",
        "/predict",
        dict(
            data=b'{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            headers={"Content-Type": "application/json"},
        ),
        400,
        ["nested too deeply"],
    ),
    (
        "lists nested too deeply",
        "/predict",
        dict(
            data=b'{"features": [[1], ' + b"[" * 900 + b"1" + b"]" * 900 + b"]}",
            headers={"Content-Type": "application/json"},
        ),
        400,
        ["too many levels of nesting"],
    ),
    (
        "integer too large",
        "/predict",
        dict(
            data=b'{"features": [1, 2, 3, ' + b"9" * 400 + b"]}",
            headers={"Content-Type": "application/json"},
        ),
        400,
        ["too large"],
    ),
    (
        "wrong content type",
        "/predict",
        dict(data=b"\x89PNG", headers={"Content-Type": "image/png"}),
        415,
        ["image/png"],
    ),
    (
        "malformed CSV",
        "/invocations",
        dict(data=b"1,2,x,4\n", headers={"Content-Type": "text/csv"}),
        400,
        ["malformed CSV"],
    ),
    (
        "CSV with NaN",
        "/invocations",
        dict(data=b"1,2,nan,4\n", headers={"Content-Type": "text/csv"}),
        400,
        ["Input X contains NaN"],
    ),
    (
        "malformed NPY",
        "/invocations",
        dict(data=b"\x93NUMPY garbage", headers={"Content-Type": "application/x-npy"}),
        400,
        ["malformed NPY"],
    ),
    (
        "NPY header claims a terabyte",
        "/invocations",
        dict(data=_NPY_HUGE, headers={"Content-Type": "application/x-npy"}),
        400,
        ["malformed NPY", "the body has 32 bytes"],
    ),
    (
        "NPY of strings",
        "/invocations",
        dict(data=_npy(np.array(["a", "b"])), headers={"Content-Type": "application/x-npy"}),
        400,
        ["expected numbers"],
    ),
    (
        "empty CSV",
        "/invocations",
        dict(data=b"", headers={"Content-Type": "text/csv"}),
        400,
        ["empty request body"],
    ),
    (
        "SageMaker content type",
        "/invocations",
        dict(data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        ["application/x-www-form-urlencoded"],
    ),
    (
        "Vertex without instances",
        "/v1/endpoints/1/deployedModels/2:predict",
        dict(json={"features": ROW}),
        400,
        ["missing key 'instances'"],
    ),
    (
        "Vertex instances not a list",
        "/v1/endpoints/1/deployedModels/2:predict",
        dict(json={"instances": 3}),
        400,
        ["instances must be a list"],
    ),
    (
        "Vertex empty instances",
        "/v1/endpoints/1/deployedModels/2:predict",
        dict(json={"instances": []}),
        400,
        ["instances is empty"],
    ),
    (
        "Vertex named features without names",
        "/v1/endpoints/1/deployedModels/2:predict",
        dict(json={"instances": [{"a": 1}]}),
        400,
        ["fitted without feature names"],
    ),
    (
        "Vertex content type",
        "/v1/endpoints/1/deployedModels/2:predict",
        dict(data=b"1,2,3,4", headers={"Content-Type": "text/csv"}),
        415,
        ["text/csv"],
    ),
    (
        "V1 unknown model",
        "/v1/models/nope:predict",
        dict(json={"instances": [ROW]}),
        404,
        ["'nope'"],
    ),
    (
        "V2 no inputs",
        f"/v2/models/{NAME}/infer",
        dict(json={"outputs": []}),
        400,
        ["missing key 'inputs'"],
    ),
    (
        "V2 bad datatype",
        f"/v2/models/{NAME}/infer",
        dict(
            json={
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "BYTES",
                        "data": ["a", "b", "c", "d"],
                    }
                ]
            }
        ),
        400,
        ["BYTES", "not supported"],
    ),
    (
        "V2 shape mismatch",
        f"/v2/models/{NAME}/infer",
        dict(json={"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": ROW}]}),
        400,
        ["has 4 values but shape [2, 4] needs 8"],
    ),
    (
        "V2 bad shape",
        f"/v2/models/{NAME}/infer",
        dict(json={"inputs": [{"name": "x", "shape": [1, -4], "datatype": "FP32", "data": ROW}]}),
        400,
        ["shape must be a list of non-negative integers"],
    ),
    (
        "V2 two inputs",
        f"/v2/models/{NAME}/infer",
        dict(
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW}] * 2}
        ),
        400,
        ["expected 1 input tensor"],
    ),
    (
        "V2 unknown output",
        f"/v2/models/{NAME}/infer",
        dict(
            json={
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW}],
                "outputs": [{"name": "proba"}],
            }
        ),
        400,
        ["unknown output 'proba'", "predict_proba"],
    ),
    (
        "V2 binary size wrong",
        f"/v2/models/{NAME}/infer",
        dict(
            data=_V2_HEADER + b"\0" * 12,
            headers={"Inference-Header-Content-Length": str(len(_V2_HEADER))},
        ),
        400,
        ["binary_data_size 12", "takes 16 bytes"],
    ),
    (
        "V2 binary data short",
        f"/v2/models/{NAME}/infer",
        dict(
            data=_V2_HEADER + b"\0" * 5,
            headers={"Inference-Header-Content-Length": str(len(_V2_HEADER))},
        ),
        400,
        ["only 5 bytes of binary data"],
    ),
    (
        "V2 header length too big",
        f"/v2/models/{NAME}/infer",
        dict(data=b"{}", headers={"Inference-Header-Content-Length": "99"}),
        400,
        ["outside the body"],
    ),
    ("V2 unknown model", "/v2/models/nope/infer", dict(json={"inputs": []}), 404, ["'nope'"]),
    (
        "V2 unknown version",
        f"/v2/models/{NAME}/versions/9/infer",
        dict(json={"inputs": []}),
        404,
        ["version '9'"],
    ),
]


@pytest.mark.parametrize("name,path,kwargs,status,fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_request(server, name, path, kwargs, status, fragments):
    r = post(server, path, **kwargs)
    assert_json_error(r, status, *fragments)


def test_unknown_route_and_method(server):
    assert_json_error(requests.get(server.url + "/nope", timeout=10), 404, "/nope")
    assert_json_error(requests.get(server.url + "/predict", timeout=10), 405, "GET")


def test_oversized_bodies(server):
    big = b"[" + b"1.0," * (4 * 1024 * 1024) + b"1.0]"  # 16 MiB + a little
    assert_json_error(
        post(server, "/predict", data=big, headers={"Content-Type": "application/json"}),
        413,
        "limit",
    )
    assert_json_error(
        post(
            server,
            "/invocations",
            data=big[: 7 * 1024 * 1024],
            headers={"Content-Type": "application/json"},
        ),
        413,
        "limit",
    )

    def chunks():  # no Content-Length: chunked transfer, read up to the limit
        for _ in range(20):
            yield b"1.0," * 100_000

    r = post(
        server,
        "/v1/endpoints/1/deployedModels/2:predict",
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_json_error(r, 413, "limit")


def test_server_keeps_serving_after_bad_requests(server):
    for _name, path, kwargs, status, _ in BAD[:10]:
        assert post(server, path, **kwargs).status_code == status
    r = post(server, "/predict", json={"features": ROW})
    assert r.json() == {"prediction": 0}
    assert server.process.poll() is None
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Worker exiting" not in log and "WORKER TIMEOUT" not in log, log[-3000:]
