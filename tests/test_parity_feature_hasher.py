"""Differential tests: FeatureHasher (dicts, pairs, strings; alternate_sign
either way; dtypes; collisions summed), alone and first in a pipeline,
against scikit-learn; its MurmurHash3 against sklearn.utils.murmurhash3_32
on random Unicode; the server's JSON objects."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import murmurhash3_32
from support.serving import FRAMEWORKS
from support.variants import load_variant
from test_serving_core import Client

import mlfast
from mlfast._model import murmurhash3_32 as mlfast_murmurhash3_32
from mlfast.serving import create_app


def test_murmurhash3_equals_scikit_learns():
    rng = random.Random(0)
    planes = [(32, 126), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    for _ in range(5000):
        text = "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(0, 33)))
        data = text.encode("utf-8")
        for seed in (0, 1, 2**31 + 7):
            assert mlfast_murmurhash3_32(data, seed) == murmurhash3_32(data, seed=seed), (
                text,
                seed,
            )


def samples(n: int, seed: int, kind: str) -> list:
    rng = np.random.default_rng(seed)
    words = ["rain", "sun", "été", "雪", "🌧", "wind", "fog", "a", ""]
    out = []
    for _ in range(n):
        picked = [str(w) for w in rng.choice(words, rng.integers(0, 6))]
        if kind == "string":
            out.append(picked)
        elif kind == "pair":
            out.append([(w, float(rng.normal())) for w in picked] + [("city", "Oslo")])
        else:
            row = {w: float(rng.integers(-2, 3)) for w in picked}
            row["city"] = str(rng.choice(["Oslo", "Lima"]))
            out.append(row)
    return out


@pytest.mark.parametrize("kind", ["dict", "pair", "string"])
@pytest.mark.parametrize(
    "kw",
    [{}, {"alternate_sign": False}, {"dtype": np.float32}, {"n_features": 3}],
    ids=["default", "no-sign", "float32", "collisions"],
)
def test_transform(kind, kw):
    est = FeatureHasher(n_features=kw.pop("n_features", 64), input_type=kind, **kw)
    model = mlfast.compile(est)
    X = samples(60, 1, kind)
    want = est.transform(X).toarray()
    got = model.transform(X)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_refusals_in_scikit_learns_words():
    model = mlfast.compile(FeatureHasher(n_features=16, input_type="string"))
    with pytest.raises(ValueError, match="Samples can not be a single string"):
        model.transform(["abc", "def"])
    with pytest.raises(ValueError, match="Cannot vectorize empty sequence"):
        mlfast.compile(FeatureHasher(n_features=16)).transform([])
    with pytest.raises(TypeError, match="feature names must be strings"):
        mlfast.compile(FeatureHasher(n_features=16, input_type="pair")).transform([[(1, 2.0)]])
    est = FeatureHasher(n_features=16)
    for bad in ([{"tags": ["a"]}], [{"x": None}]):
        with pytest.raises(TypeError) as want:
            est.transform(bad)
        with pytest.raises(TypeError) as got:
            mlfast.compile(est).transform(bad)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("variant", ["joblib", "pickle-p2", "loads-bytes"])
def test_in_a_pipeline(variant, tmp_path):
    X = samples(300, 2, "dict")
    y = np.array([int(r["city"] == "Oslo") for r in X])
    est = make_pipeline(FeatureHasher(n_features=32), LogisticRegression()).fit(X, y)
    model = load_variant(est, variant, tmp_path)
    T = samples(40, 3, "dict")
    np.testing.assert_allclose(model.predict_proba(T), est.predict_proba(T), rtol=1e-12, atol=1e-12)
    again = mlfast.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(T), est.predict(T))


def test_too_many_columns_to_serve_dense():
    with pytest.raises(mlfast.UnsupportedModelError, match="n_features"):
        mlfast.compile(FeatureHasher())  # 2**20 columns


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_served_as_json_objects(framework):
    X = samples(200, 4, "dict")
    y = np.array([int(r["city"] == "Oslo") for r in X])
    est = make_pipeline(FeatureHasher(n_features=32), LogisticRegression()).fit(X, y)
    client = Client(create_app(mlfast.compile(est), framework=framework, name="fh"), framework)
    T = samples(6, 5, "dict")
    r = client.post("/v1/models/fh:predict", json={"instances": T})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == est.predict(T).tolist()
