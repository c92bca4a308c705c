"""Differential tests: naive Bayes (GaussianNB, MultinomialNB, ComplementNB,
BernoulliNB, CategoricalNB).

scikit-learn is the oracle.  Each check fits a real estimator on generated
data, saves it, loads it with mlfast and compares predict, predict_proba,
predict_log_proba and predict_joint_log_proba on fresh rows (float64 and
float32 input, a batch across threads and one row): labels equal with the
same dtype, floats within 1e-12 with the same shape and dtype (float32
answers of a float32 fit within float32's precision).  Where scikit-learn's
joint log likelihood is a BLAS product (MultinomialNB, ComplementNB,
BernoulliNB without binarize), OpenBLAS picks its kernel by the matrix's
size, and scikit-learn's own answers for one row and for a batch differ by a
few ulps of the likelihood (4.5e-12 at |jll| = 3400, measured); the
log-probabilities subtract two such numbers, so they are compared within 16
ulps of the row's largest |jll| instead of 1e-12.  Widths of 3, 20 and
150 features take numpy's pairwise sum through its three cases.  Refusals
(NaN, CategoricalNB's negative and unseen categories) carry scikit-learn's
message; states that lie about their shapes are ModelFormatError.
"""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn import naive_bayes as nb
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "decision_function",
    "transform",
)
RTOL = ATOL = 1e-12
F32_RTOL = 1e-5


def quietly(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def data(kind, d, k=3, seed=0, n=300):
    rs = np.random.RandomState(seed)
    y = rs.randint(0, k, n)
    if kind == "gauss":
        X = rs.randn(n, d) + y[:, None] * 0.3
    elif kind == "counts":
        X = rs.poisson(2 + y[:, None], (n, d)).astype(float)
    elif kind == "binary":
        X = (rs.rand(n, d) < 0.3 + 0.2 * (y[:, None] == 1)).astype(float)
    else:  # categories
        X = rs.randint(0, 4, (n, d)) + (y[:, None] == 2)
    return X[:200], y[:200], X[200:]


def assert_same(got, expected, msg, rtol=RTOL):
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}: {msg}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)


def _blas_product(est) -> bool:
    return isinstance(est, (nb.MultinomialNB, nb.ComplementNB)) or (
        isinstance(est, nb.BernoulliNB) and est.binarize is None
    )


def check(model, est, X_new, context, dtypes=(np.float64, np.float32), rtol=RTOL):
    for method in METHODS:
        has = hasattr(est, method)
        assert hasattr(model, method) == has, f"{method}: sklearn has it: {has}: {context}"
    for dtype in dtypes:
        X = X_new.astype(dtype)
        for rows in (X, X[:1], np.repeat(X, 40, axis=0)):
            for method in METHODS:
                if hasattr(est, method):
                    expected = quietly(getattr(est, method), rows)
                    got = getattr(model, method)(rows)
                    tol = rtol if expected.dtype != np.float32 else F32_RTOL
                    msg = f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}"
                    if _blas_product(est) and method in ("predict_proba", "predict_log_proba"):
                        jll = est.predict_joint_log_proba(rows)
                        ulps = 16 * np.spacing(np.abs(jll).max(axis=1, keepdims=True))
                        assert got.dtype == expected.dtype, msg
                        assert np.all(np.abs(got - expected) <= np.maximum(ulps, tol)), msg
                    else:
                        assert_same(got, expected, msg, tol)


CASES = [
    ("GaussianNB", lambda: nb.GaussianNB(), "gauss"),
    ("GaussianNB-priors", lambda: nb.GaussianNB(priors=[0.2, 0.3, 0.5]), "gauss"),
    ("GaussianNB-smoothing", lambda: nb.GaussianNB(var_smoothing=1e-3), "gauss"),
    ("MultinomialNB", lambda: nb.MultinomialNB(), "counts"),
    ("MultinomialNB-alpha", lambda: nb.MultinomialNB(alpha=0.01, fit_prior=False), "counts"),
    ("MultinomialNB-prior", lambda: nb.MultinomialNB(class_prior=[0.5, 0.25, 0.25]), "counts"),
    ("ComplementNB", lambda: nb.ComplementNB(), "counts"),
    ("ComplementNB-norm", lambda: nb.ComplementNB(norm=True, alpha=0.5), "counts"),
    ("BernoulliNB", lambda: nb.BernoulliNB(), "gauss"),
    ("BernoulliNB-threshold", lambda: nb.BernoulliNB(binarize=0.4, alpha=0.3), "gauss"),
    ("BernoulliNB-none", lambda: nb.BernoulliNB(binarize=None), "binary"),
    ("CategoricalNB", lambda: nb.CategoricalNB(), "categories"),
    ("CategoricalNB-min", lambda: nb.CategoricalNB(min_categories=8, alpha=0.2), "categories"),
]


@pytest.mark.parametrize("d", [3, 20, 150])
@pytest.mark.parametrize("name,make,kind", CASES, ids=[c[0] for c in CASES])
def test_naive_bayes(name, make, kind, d, tmp_path):
    X, y, X_new = data(kind, d)
    est = quietly(make().fit, X, y)
    for variant in ("joblib", "pickle-p2", "compile"):
        model = load_variant(est, variant, tmp_path)
        assert_same(model.classes_, est.classes_, f"classes_: {name}")
        assert model.n_features_in_ == d
        check(model, est, X_new, f"{name} | d={d} | {variant}")


@pytest.mark.parametrize("labels", ["str", "two", "one"])
def test_labels(labels, tmp_path):
    X, y, X_new = data("gauss", 5)
    if labels == "str":
        y = np.array(["cat", "dog", "emu"])[y]
    elif labels == "two":
        y = y % 2
    else:
        y = np.zeros_like(y)
    for make in (nb.GaussianNB, nb.MultinomialNB, nb.ComplementNB, nb.BernoulliNB):
        Xf = np.abs(X) if make in (nb.MultinomialNB, nb.ComplementNB) else X
        est = quietly(make().fit, Xf, y)
        model = load_variant(est, "joblib", tmp_path)
        check(model, est, np.abs(X_new), f"{make.__name__} | labels={labels}")


def test_float32_fit_keeps_float32(tmp_path):
    X, y, X_new = data("gauss", 7)
    est = nb.GaussianNB().fit(X.astype(np.float32), y)
    assert est.theta_.dtype == np.float32
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, "GaussianNB float32 fit")


def test_inside_a_pipeline_and_pickled(tmp_path):
    X, y, X_new = data("gauss", 6)
    est = make_pipeline(StandardScaler(), nb.GaussianNB()).fit(X, y)
    model = pickle.loads(pickle.dumps(load_variant(est, "joblib", tmp_path)))
    check(model, est, X_new, "StandardScaler -> GaussianNB")


@pytest.mark.parametrize(
    "make", [nb.GaussianNB, nb.MultinomialNB, nb.BernoulliNB, nb.CategoricalNB]
)
def test_nan_and_inf_are_refused_as_sklearn_does(make):
    X, y, X_new = data("categories", 4)
    est = make().fit(X, y)
    model = mlfast.compile(est)
    for bad in (np.nan, np.inf):
        rows = X_new[:5].astype(float)
        rows[3, 2] = bad
        with pytest.raises(ValueError) as expected:
            est.predict(rows)
        with pytest.raises(ValueError) as got:
            model.predict(rows)
        assert str(got.value) == str(expected.value)


def test_categorical_refusals():
    X, y, X_new = data("categories", 4)
    est = nb.CategoricalNB().fit(X, y)
    model = mlfast.compile(est)
    n_cat = est.n_categories_
    negative = X_new[:4].copy()
    negative[2, 1] = -3
    unseen = X_new[:4].copy()
    unseen[1, 3] = n_cat[3]
    for rows in (negative, unseen):
        with pytest.raises((ValueError, IndexError)) as expected:
            est.predict(rows)
        with pytest.raises(expected.type) as got:
            model.predict(rows)
        assert str(got.value) == str(expected.value)
    # check_array's float -> int cast truncates toward zero, as the model does
    rows = X_new[:6] + 0.75
    rows[0, 0] = -0.5
    rows = np.where(rows >= n_cat, n_cat - 0.25, rows)
    assert_same(model.predict_proba(rows), est.predict_proba(rows), "truncated categories")


def _tampered(est, **changes):
    for key, value in changes.items():
        setattr(est, key, value)
    return est


@pytest.mark.parametrize(
    "make,kind,changes,text",
    [
        (nb.GaussianNB, "gauss", lambda e: {"theta_": e.theta_[:, :2]}, "var_ has shape"),
        (nb.GaussianNB, "gauss", lambda e: {"var_": e.var_[:2]}, "var_ has shape"),
        (
            nb.GaussianNB,
            "gauss",
            lambda e: {"class_prior_": e.class_prior_[:2]},
            "class_prior_ has shape",
        ),
        (nb.GaussianNB, "gauss", lambda e: {"theta_": "x"}, "theta_ is a str"),
        (
            nb.MultinomialNB,
            "counts",
            lambda e: {"feature_log_prob_": e.feature_log_prob_[:2]},
            "feature_log_prob_ has shape",
        ),
        (
            nb.MultinomialNB,
            "counts",
            lambda e: {"class_log_prior_": e.class_log_prior_[:1]},
            "class_log_prior_ has shape",
        ),
        (nb.BernoulliNB, "gauss", lambda e: {"binarize": "yes"}, "binarize is"),
        (
            nb.CategoricalNB,
            "categories",
            lambda e: {"feature_log_prob_": e.feature_log_prob_[:3]},
            "n_features_in_ is 4",
        ),
        (
            nb.CategoricalNB,
            "categories",
            lambda e: {"feature_log_prob_": [e.feature_log_prob_[0][:2]] + e.feature_log_prob_[1:]},
            "feature_log_prob_[0] has shape",
        ),
        (
            nb.CategoricalNB,
            "categories",
            lambda e: {"feature_log_prob_": e.feature_log_prob_[0]},
            "must be a list",
        ),
    ],
)
def test_lying_states_are_model_format_errors(make, kind, changes, text):
    X, y, _ = data(kind, 4)
    est = make().fit(X, y)
    est = _tampered(est, **changes(est))
    with pytest.raises(ModelFormatError, match=re.escape(text)):
        mlfast.compile(est)


def test_supported():
    names = mlfast.supported_estimators()
    for name in ("GaussianNB", "MultinomialNB", "ComplementNB", "BernoulliNB", "CategoricalNB"):
        assert name in names
