"""Differential tests: DictVectorizer (a dict or a list of dicts: str
values one-hot as 'name=value', numbers, None, iterables of str, features
unseen at fit ignored), alone and first in a pipeline, against
scikit-learn; file variants, a pickled Model, and the server's JSON
objects.  The rows are made in Python, the rest of the model runs in C."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from support.serving import FRAMEWORKS
from support.variants import load_variant
from test_serving_core import Client

import mlfast
from mlfast.serving import create_app


def records(n: int, seed: int, unseen: bool = False) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        row = {
            "city": str(rng.choice(["Oslo", "Lima", "Pune"])),
            "temp": float(rng.normal(10, 5)),
            "n": int(rng.integers(0, 5)),
        }
        if rng.random() < 0.5:
            row["tags"] = [str(t) for t in rng.choice(["a", "b", "c"], rng.integers(1, 3))]
        if unseen and i % 4 == 0:
            row["city"] = "Rome"
            row["extra"] = 1.5
            row["tags"] = ["a", "z", "a"]
        out.append(row)
    return out


def labels(rows: list) -> np.ndarray:
    return np.array([int(r["city"] == "Oslo") ^ int(r["temp"] > 12) for r in rows])


@pytest.mark.parametrize(
    "kw",
    [{}, {"sparse": False}, {"separator": "::"}, {"dtype": np.float32}, {"sort": False}],
    ids=["default", "dense", "separator", "float32", "unsorted"],
)
def test_transform(kw):
    train = records(200, 0)
    est = DictVectorizer(**kw).fit(train)
    model = mlfast.compile(est)
    test = records(40, 1, unseen=True)
    want = est.transform(test)
    want = want.toarray() if hasattr(want, "toarray") else want
    got = model.transform(test)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.transform(test[0]), want[:1])
    # None is NaN, as scikit-learn's dtype(None)
    odd = [{"temp": None, "city": "Lima"}]
    np.testing.assert_array_equal(
        model.transform(odd),
        np.asarray(
            est.transform(odd).todense()
            if hasattr(est.transform(odd), "todense")
            else est.transform(odd)
        ),
    )


@pytest.mark.parametrize("variant", ["joblib", "joblib-zlib3", "pickle-p2", "loads-bytes"])
def test_in_a_pipeline(variant, tmp_path):
    train = records(300, 2)
    est = make_pipeline(DictVectorizer(), MaxAbsScaler(), LogisticRegression()).fit(
        train, labels(train)
    )
    model = load_variant(est, variant, tmp_path)
    test = records(50, 3, unseen=True)
    np.testing.assert_allclose(
        model.predict_proba(test), est.predict_proba(test), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(model.predict(test), est.predict(test))
    for again in (pickle.loads(pickle.dumps(model)), mlfast.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(again.predict(test), est.predict(test))


def test_refusals_in_scikit_learns_words():
    est = DictVectorizer().fit(records(20, 4))
    model = mlfast.compile(est)
    bad = [{"tags": ["a", 3]}]
    with pytest.raises(TypeError) as want:
        est.transform(bad)
    with pytest.raises(TypeError) as got:
        model.transform(bad)
    assert str(got.value) == str(want.value)


def test_not_first_is_unsupported():
    from sklearn.compose import ColumnTransformer

    est = DictVectorizer().fit(records(20, 5))
    state = est.__getstate__()
    assert "vocabulary_" in state
    with pytest.raises(mlfast.ModelFormatError, match="vocabulary_"):
        est.vocabulary_ = {"nope": 0}
        mlfast.compile(est)
    assert ColumnTransformer  # (a ColumnTransformer cannot hold one: it reads arrays)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_served_as_json_objects(framework):
    train = records(200, 6)
    est = make_pipeline(DictVectorizer(), LogisticRegression()).fit(train, labels(train))
    client = Client(create_app(mlfast.compile(est), framework=framework, name="dv"), framework)
    test = records(8, 7, unseen=True)
    r = client.post("/v1/models/dv:predict", json={"instances": test})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == est.predict(test).tolist()
    r = client.post("/predict", json={"features": test[0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"prediction": int(est.predict(test[:1])[0])}
