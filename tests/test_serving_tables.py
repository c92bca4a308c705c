"""Serving a model that reads string columns: JSON objects keyed by column
name, rows with strings, CSV with a header row (and SageMaker's CSV without
one), V2 BYTES tensors (one per column, as MLServer's pandas codec sends
them, or one for all, as tritonclient builds it), through both frameworks'
in-process clients.  scikit-learn is the oracle; a bad value is a 4xx that
names it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from support.serving import FRAMEWORKS
from test_serving_core import Client

import mlfast
from mlfast.serving import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

COLUMNS = ["pclass", "sex", "age", "fare", "embarked"]


def passengers(n, seed):
    rng = np.random.default_rng(seed)
    emb = rng.choice(np.array(["S", "C", "Q", None], dtype=object), n)
    return pd.DataFrame(
        {
            "pclass": rng.integers(1, 4, n),
            "sex": rng.choice(["male", "female"], n).astype(object),
            "age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 80, n)),
            "fare": rng.exponential(30, n),
            "embarked": emb,
        }
    )


@pytest.fixture(scope="module")
def oracle():
    df = passengers(400, 0)
    y = ((df.sex == "female") ^ (df.fare > 30)).astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "fare"]),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                ["pclass", "sex", "embarked"],
            ),
        ]
    )
    return make_pipeline(pre, LogisticRegression()).fit(df, y)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def client(request, oracle):
    app = create_app(mlfast.compile(oracle), framework=request.param, name="titanic")
    return Client(app, request.param)


@pytest.fixture(scope="module")
def rows():
    df = passengers(6, 3)
    df.loc[2, "embarked"] = "Z"  # unseen: ignored by the encoder
    return df


def records(df):
    out = df.to_dict("records")
    for r in out:
        for k, v in r.items():
            if isinstance(v, float) and v != v:
                r[k] = None
            elif isinstance(v, np.integer):
                r[k] = int(v)
    return out


def test_lesson_dict_and_instances_of_objects(client, oracle, rows):
    want = oracle.predict(rows).tolist()
    r = client.post("/predict", json={"features": records(rows)[0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"prediction": want[0]}
    r = client.post("/predict", json={"instances": records(rows)})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}
    # rows with strings, in the model's column order
    plain = [[v for v in rec.values()] for rec in records(rows)]
    r = client.post("/predict", json={"features": plain})
    assert r.json() == {"predictions": want}


def test_vertex_and_kserve_objects(client, oracle, rows):
    want = oracle.predict(rows).tolist()
    r = client.post("/v1/models/titanic:predict", json={"instances": records(rows)})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == want


def test_csv_with_header_in_any_order_and_sagemaker_csv(client, oracle, rows):
    want = oracle.predict(rows)
    shuffled = rows[["fare", "embarked", "sex", "pclass", "age"]]
    body = shuffled.to_csv(index=False).encode()
    r = client.post(
        "/invocations",
        data=body,
        headers={"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == want.tolist()
    body = rows.to_csv(index=False, header=False).encode()
    r = client.post(
        "/invocations", data=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.text.split() == [str(v) for v in want.tolist()]


def test_v2_one_bytes_tensor_per_column(client, oracle, rows):
    rows = rows.fillna({"age": 30.0})  # JSON has no NaN
    inputs = []
    for name in COLUMNS:
        col = rows[name]
        if not pd.api.types.is_numeric_dtype(col):
            inputs.append(
                {
                    "name": name,
                    "shape": [len(rows), 1],
                    "datatype": "BYTES",
                    "data": ["" if not isinstance(v, str) else v for v in col.tolist()],
                }
            )
        else:
            inputs.append(
                {
                    "name": name,
                    "shape": [len(rows)],
                    "datatype": "FP64",
                    "data": col.astype(float).tolist(),
                }
            )
    # an empty string is a category the encoder has not seen: as scikit-learn reads it
    expected_rows = rows.copy()
    expected_rows["embarked"] = [
        v if isinstance(v, str) else "" for v in expected_rows["embarked"].tolist()
    ]
    r = client.post(
        "/v2/models/titanic/infer", json={"inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    )
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["outputs"][0]["data"]).reshape(len(rows), 2)
    np.testing.assert_allclose(got, oracle.predict_proba(expected_rows), rtol=1e-12, atol=1e-12)


def test_v2_tritonclient_bytes_body(client, oracle, rows):
    httpclient = pytest.importorskip("tritonclient.http")
    data = rows.fillna({"embarked": "S"}).to_numpy(dtype=object).astype(str).astype(object)
    inputs = [httpclient.InferInput("input", list(data.shape), "BYTES")]
    inputs[0].set_data_from_numpy(data, binary_data=True)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs)
    r = client.post(
        "/v2/models/titanic/infer",
        data=body,
        headers={
            "Inference-Header-Content-Length": str(json_size),
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status_code == 200, r.text
    # every value arrives as text: numbers read from strings, as scikit-learn
    # reads an object column of numbers written as strings
    frame = pd.DataFrame(data, columns=COLUMNS)
    assert r.json()["outputs"][0]["data"] == oracle.predict(frame).tolist()


def test_bad_values_are_client_errors_that_name_them(client):
    row = {"pclass": 1, "sex": {"x": 1}, "age": 3.0, "fare": 1.0, "embarked": "S"}
    r = client.post("/predict", json={"features": row})
    assert r.status_code == 400 and "'sex'" in r.text and "expected a string" in r.text
    row = {"pclass": 1, "sex": "male", "age": 3.0, "fare": 1.0}
    r = client.post("/predict", json={"features": row})
    assert r.status_code == 400 and "embarked" in r.text
    r = client.post(
        "/predict",
        json={"features": {"pclass": 1, "sex": "male", "age": "old", "fare": 1.0, "embarked": "S"}},
    )
    assert r.status_code == 400 and "could not convert string to float: 'old'" in r.text
    r = client.post(
        "/invocations", data=b"pclass,sex\n1,male\n", headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 400 and "line 1 has 2 values" in r.text
