"""Serving a text model: documents as JSON strings -- the lesson's
``{"features": "a document"}`` and lists of them, ``{"instances": [...]}``
for Vertex AI and KServe V1, a bare list, V2 BYTES -- through both
frameworks' in-process clients.  scikit-learn is the oracle; a document
that is not a string is a 4xx that names it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from support.serving import FRAMEWORKS
from test_parity_text import TEST_DOCS, corpus, labels
from test_serving_core import Client

import mlfast
from mlfast.serving import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

DOCS = TEST_DOCS[:12] + ["Le café est très bon 😀", "中文 文本", ""]


@pytest.fixture(scope="module")
def oracle():
    docs = corpus(300, 20)
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression()).fit(
        docs, np.where(labels(docs), "spam", "ham")
    )


@pytest.fixture(scope="module", params=FRAMEWORKS)
def client(request, oracle):
    app = create_app(mlfast.compile(oracle), framework=request.param, name="spam")
    return Client(app, request.param)


def test_lesson_one_document_and_many(client, oracle):
    want = oracle.predict(DOCS).tolist()
    r = client.post("/predict", json={"features": DOCS[0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"prediction": want[0]}
    r = client.post("/predict", json={"features": DOCS})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}
    r = client.post("/predict", json=DOCS)
    assert r.status_code == 200, r.text
    assert r.json() == want


def test_instances_vertex_and_kserve(client, oracle):
    want = oracle.predict(DOCS).tolist()
    for path in ("/predict", "/v1/models/spam:predict"):
        r = client.post(path, json={"instances": DOCS})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want


def test_v2_probabilities(client, oracle):
    body = {
        "inputs": [{"name": "text", "shape": [len(DOCS), 1], "datatype": "BYTES", "data": DOCS}],
        "outputs": [{"name": "predict_proba"}],
    }
    r = client.post("/v2/models/spam/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [len(DOCS), 2]
    np.testing.assert_allclose(
        np.reshape(out["data"], out["shape"]), oracle.predict_proba(DOCS), rtol=1e-12, atol=1e-12
    )


def test_v2_bytes(client, oracle):
    want = oracle.predict(DOCS).tolist()
    body = {"inputs": [{"name": "text", "shape": [len(DOCS)], "datatype": "BYTES", "data": DOCS}]}
    r = client.post("/v2/models/spam/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == want


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"features": [1, 2]}, "features[0] is 1"),
        ({"instances": ["ok", None]}, "instances[1] is null"),
        ({"features": {"a": 1}}, "features must be a document"),
    ],
)
def test_bad_documents_are_named(client, body, fragment):
    r = client.post("/predict", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert fragment in r.text


def test_text_columns_as_json_objects_and_csv():
    from test_parity_text import text_columns_pipeline, text_frame

    oracle = text_columns_pipeline(LogisticRegression(max_iter=500))
    frame = text_frame(6, 9)
    want = oracle.predict(frame).tolist()
    records = frame.to_dict("records")
    for framework in FRAMEWORKS:
        client = Client(
            create_app(mlfast.compile(oracle), framework=framework, name="shop"), framework
        )
        r = client.post("/predict", json={"features": records[0]})
        assert r.status_code == 200, r.text
        assert r.json() == {"prediction": want[0]}
        r = client.post("/v1/models/shop:predict", json={"instances": records})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want
        # CSV: an empty cell is missing (NaN), as pandas.read_csv reads it,
        # and scikit-learn refuses a missing document: a 400 that says so
        full = frame[frame["title"] != ""]
        body = full.to_csv(index=False).encode()
        r = client.post(
            "/invocations",
            data=body,
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == oracle.predict(full).tolist()
        empty = frame.copy()
        empty.loc[0, "title"] = ""
        r = client.post(
            "/invocations",
            data=empty.to_csv(index=False).encode(),
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
        )
        assert r.status_code == 400, r.text
        assert "'float' object has no attribute 'lower'" in r.text
