"""Differential tests: TargetEncoder (binary, multiclass, continuous
targets) and MissingIndicator, against scikit-learn.

Data: object, str, category and float columns with None and NaN, categories
unseen at fit; input as a DataFrame, a 2-D object array, a list of rows, one
row, a dict and through the server's JSON objects; file variants; inside a
pipeline.  TargetEncoder's encodings are read, not recomputed, so its output
is bit-equal; MissingIndicator's booleans are equal, and a NaN in a column
without missing values at fit is scikit-learn's ValueError word for word.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder
from support.serving import FRAMEWORKS
from support.variants import load_variant
from test_serving_core import Client

import mlfast
from mlfast.serving import create_app

VARIANTS = ["joblib", "joblib-zlib3", "pickle-p2", "pickle-p5", "loads-bytes", "compile"]


def frame(n: int, seed: int, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(
        np.array(["Oslo", "Lima", "Pune", None, np.nan], dtype=object),
        n,
        p=[0.4, 0.3, 0.2, 0.05, 0.05],
    )
    grade = rng.choice([1.0, 2.0, 3.0, np.nan], n, p=[0.3, 0.3, 0.3, 0.1])
    kind = rng.choice(["a", "b", "c", "d"], n)
    if unseen:
        city[::5] = "Rome"
        grade[::7] = 9.0
        kind[::6] = "z"
    return pd.DataFrame(
        {
            "city": city,
            "grade": grade,
            "kind": pd.Categorical(kind, categories=["a", "b", "c", "d", "z"]),
            "tag": pd.array(rng.choice(["x", "y", "é"], n), dtype="string"),
        }
    )


def targets(df: pd.DataFrame, kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    base = (df["kind"].astype(str) == "a").to_numpy() ^ (rng.random(len(df)) < 0.3)
    if kind == "binary":
        return base.astype(int)
    if kind == "multiclass":
        return np.array(["lo", "mid", "hi"], dtype=object)[
            base.astype(int) + (rng.random(len(df)) < 0.4)
        ]
    return rng.normal(size=len(df)) + 3.0 * base


def assert_same(got, want, what):
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, scikit-learn {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, scikit-learn {want.shape}"
    np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("target", ["binary", "multiclass", "continuous"])
@pytest.mark.parametrize("smooth", ["auto", 3.0])
def test_target_encoder_transform(target, smooth):
    train = frame(400, 0)
    est = TargetEncoder(smooth=smooth, random_state=0).fit(train, targets(train, target))
    model = mlfast.compile(est)
    test = frame(60, 1, unseen=True)
    want = est.transform(test)
    assert_same(model.transform(test), want, f"{target} DataFrame")
    assert_same(model.transform(test.iloc[:1]), want[:1], f"{target} one row")
    assert_same(model.transform(test.to_dict("records")), want, f"{target} list of dicts")
    rows = test.astype(object).to_numpy()
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        assert_same(
            model.transform(rows),
            est.transform(pd.DataFrame(rows, columns=test.columns)),
            f"{target} object array",
        )


@pytest.mark.parametrize("variant", VARIANTS)
def test_target_encoder_file_variants(variant, tmp_path):
    train = frame(300, 2)
    y = targets(train, "multiclass")
    est = TargetEncoder(random_state=0).fit(train, y)
    model = load_variant(est, variant, tmp_path)
    test = frame(40, 3, unseen=True)
    assert_same(model.transform(test), est.transform(test), variant)


@pytest.mark.parametrize("target", ["binary", "multiclass", "continuous"])
def test_target_encoder_in_a_pipeline(target):
    train = frame(500, 4)
    y = targets(train, target)
    final = Ridge() if target == "continuous" else LogisticRegression(max_iter=500)
    est = make_pipeline(
        ColumnTransformer(
            [
                ("te", TargetEncoder(random_state=0), ["city", "kind", "tag"]),
                ("num", SimpleImputer(), ["grade"]),
            ]
        ),
        final,
    ).fit(train, y)
    model = mlfast.compile(est)
    test = frame(80, 5, unseen=True)
    methods = ["predict"] if target == "continuous" else ["predict", "predict_proba"]
    for m in methods:
        got, want = getattr(model, m)(test), getattr(est, m)(test)
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=m)
        else:
            np.testing.assert_array_equal(got, want, err_msg=m)


def test_target_encoder_files_that_lie_are_format_errors():
    train = frame(100, 6)
    est = TargetEncoder(random_state=0).fit(train, targets(train, "multiclass"))
    for attr, value in [
        ("encodings_", est.encodings_[:-1]),
        ("target_mean_", est.target_mean_[:2]),
        ("target_type_", "ranking"),
        ("encodings_", [e[:-1] for e in est.encodings_]),
    ]:
        saved = getattr(est, attr)
        setattr(est, attr, value)
        try:
            with pytest.raises(mlfast.ModelFormatError, match=attr):
                mlfast.compile(est)
        finally:
            setattr(est, attr, saved)


def numbers(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random((n, 5)) < 0.15] = np.nan
    X[:, 3] = rng.normal(size=n)  # no missing value at fit
    return X


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"features": "all"},
        {"error_on_new": False},
        {"sparse": True},
        {"missing_values": -1.0, "error_on_new": False},
    ],
    ids=["missing-only", "all", "no-error-on-new", "sparse", "minus-one"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_missing_indicator(kw, dtype):
    X = numbers(200, 0)
    if kw.get("missing_values") == -1.0:
        X = np.where(np.isnan(X), -1.0, X)
        X[:, 3] = np.abs(X[:, 3])
        X[::4, :3] = -1.0
    est = MissingIndicator(**kw).fit(X)
    model = mlfast.compile(est)
    T = numbers(30, 1).astype(dtype)
    if kw.get("missing_values") == -1.0:
        T = np.where(np.isnan(T), -1.0, T).astype(dtype)
        T[:, 3] = np.abs(T[:, 3])
    want = est.transform(T)
    want = want.toarray() if hasattr(want, "toarray") else want
    assert_same(model.transform(T), want, f"{kw} {dtype.__name__}")
    assert_same(model.transform(T[:1]), want[:1], "one row")


def test_missing_indicator_objects_and_in_a_pipeline():
    train = frame(300, 8)
    est = MissingIndicator(features="all").fit(train[["city", "grade"]])
    model = mlfast.compile(est)
    test = frame(40, 9, unseen=True)[["city", "grade"]]
    assert_same(model.transform(test), est.transform(test), "DataFrame")
    X = numbers(200, 2)
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    pipe = make_pipeline(
        ColumnTransformer(
            [("imp", SimpleImputer(), [0, 1, 2, 3, 4]), ("ind", MissingIndicator(), [0, 1, 2, 4])]
        ),
        LogisticRegression(),
    ).fit(X, y)
    T = numbers(50, 3)
    np.testing.assert_allclose(
        mlfast.compile(pipe).predict_proba(T), pipe.predict_proba(T), rtol=1e-12, atol=1e-12
    )


def test_missing_indicator_new_missing_columns_are_refused_in_sklearns_words():
    est = MissingIndicator().fit(numbers(100, 4))
    model = mlfast.compile(est)
    T = numbers(20, 5)
    T[3, 3] = np.nan
    T[7, 3] = np.nan
    with pytest.raises(ValueError) as want:
        est.transform(T)
    with pytest.raises(ValueError) as got:
        model.transform(T)
    assert str(got.value) == str(want.value)
    model.transform(np.nan_to_num(T))  # the same rows without it are answered


def test_missing_indicator_states_not_served_are_unsupported():
    est = MissingIndicator().fit(np.ones((10, 3)))
    with pytest.raises(mlfast.UnsupportedModelError, match="no column had missing values"):
        mlfast.compile(est)
    X = np.ones((10, 3))
    X[0, 0] = -1.0
    est = MissingIndicator(missing_values=-1.0).fit(X)
    with pytest.raises(mlfast.UnsupportedModelError, match="error_on_new"):
        mlfast.compile(est)


@pytest.fixture(scope="module")
def served():
    train = frame(300, 10)
    y = targets(train, "binary")
    est = make_pipeline(
        ColumnTransformer(
            [
                ("te", TargetEncoder(random_state=0), ["city", "kind", "tag"]),
                ("imp", SimpleImputer(), ["grade"]),
                ("ind", MissingIndicator(), ["grade"]),
            ]
        ),
        LogisticRegression(),
    ).fit(train, y)
    return est


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_served_as_json_objects(served, framework):
    client = Client(create_app(mlfast.compile(served), framework=framework, name="te"), framework)
    test = frame(8, 11, unseen=True)
    want = served.predict_proba(test)
    body = []
    for rec in test.astype(object).to_dict("records"):
        body.append({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()})
    r = client.post("/v1/models/te:predict", json={"instances": body})
    assert r.status_code == 200, r.text
    # JSON null is None: the city column's None and NaN are one missing
    # value to the encoder, and NaN to the numbers
    np.testing.assert_allclose(np.array(r.json()["predictions"]), served.predict(test))
    r = client.post("/predict", json={"features": body[0]})
    assert r.status_code == 200, r.text
    assert want.shape[0] == len(body)
