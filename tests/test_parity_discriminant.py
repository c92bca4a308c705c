"""Differential tests: LinearDiscriminantAnalysis (every solver, transform)
and QuadraticDiscriminantAnalysis.

scikit-learn is the oracle.  Each check fits a real estimator on generated
data, saves it, loads it with mlfast and compares predict,
decision_function, predict_proba, predict_log_proba and transform on fresh
rows (float64 and float32 input, a batch across threads and one row):
labels equal with the same dtype, floats within 1e-12 with the same shape and
dtype.  LDA with solver='lsqr' has a transform that raises
NotImplementedError in scikit-learn; mlfast's model has none.  States that
lie about their shapes are ModelFormatError.
"""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis as QDA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
    "predict_joint_log_proba",
)
RTOL = ATOL = 1e-12


def quietly(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def data(k, d=7, seed=0):
    rs = np.random.RandomState(seed + k)
    y = rs.randint(0, k, 300)
    X = rs.randn(300, d) * (1 + 0.3 * y[:, None]) + 0.8 * y[:, None]
    X_new = np.vstack([X[200:], 6 * X[200:203]])
    return X[:200], y[:200], X_new


def assert_same(got, expected, msg):
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}: {msg}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)


def check(model, est, X_new, context):
    lsqr = getattr(est, "solver", None) == "lsqr"
    for method in METHODS:
        has = hasattr(est, method) and not (lsqr and method == "transform")
        assert hasattr(model, method) == has, f"{method}: sklearn has it: {has}: {context}"
    for dtype in (np.float64, np.float32):
        X = X_new.astype(dtype)
        for rows in (X, X[:1], np.repeat(X, 30, axis=0)):
            for method in METHODS:
                if hasattr(model, method):
                    expected = quietly(getattr(est, method), rows)
                    got = getattr(model, method)(rows)
                    assert_same(
                        got, expected, f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}"
                    )


LDAS = [
    dict(),
    dict(solver="svd", n_components=1),
    dict(solver="svd", store_covariance=True, tol=1e-3),
    dict(solver="eigen"),
    dict(solver="eigen", shrinkage="auto"),
    dict(solver="eigen", shrinkage=0.3, n_components=1),
    dict(solver="lsqr"),
    dict(solver="lsqr", shrinkage=0.5),
]


def _ids(options):
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("options", LDAS, ids=_ids)
def test_lda(options, k, tmp_path):
    X, y, X_new = data(k)
    est = quietly(LDA(**options).fit, X, y)
    for variant in ("joblib", "pickle-p2", "compile"):
        model = load_variant(est, variant, tmp_path)
        assert_same(model.classes_, est.classes_, "classes_")
        check(model, est, X_new, f"LDA({_ids(options)}) | k={k} | {variant}")


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("options", [dict(), dict(reg_param=0.2), dict(priors="uniform")], ids=_ids)
def test_qda(options, k, tmp_path):
    X, y, X_new = data(k, d=5)
    if options.get("priors") == "uniform":
        options = dict(priors=np.full(k, 1.0 / k))
    est = quietly(QDA(**options).fit, X, y)
    for variant in ("joblib", "compile"):
        model = load_variant(est, variant, tmp_path)
        check(model, est, X_new, f"QDA({options}) | k={k} | {variant}")


def test_far_rows_log_probabilities():
    """Rows far from every class: probabilities of 0 (LDA's smallest-normal
    rule) and log probabilities of large magnitude."""
    X, y, _ = data(3)
    far = np.vstack([np.full(7, 40.0), np.full(7, -60.0), np.linspace(-80, 80, 7)])
    for est in (LDA().fit(X, y), LDA().fit(X, y % 2), QDA().fit(X, y)):
        model = mlfast.compile(est)
        check(model, est, far, f"far rows {est!r}")


def test_string_labels_in_a_pickled_pipeline(tmp_path):
    X, y, X_new = data(3)
    labels = np.array(["x", "y", "z"])[y]
    for final in (LDA(), QDA()):
        est = make_pipeline(StandardScaler(), final).fit(X, labels)
        model = pickle.loads(pickle.dumps(load_variant(est, "joblib", tmp_path)))
        check(model, est, X_new, f"StandardScaler -> {final!r}")


def test_nan_is_refused_as_sklearn_does():
    X, y, X_new = data(3)
    for est in (LDA().fit(X, y), QDA().fit(X, y)):
        model = mlfast.compile(est)
        rows = X_new[:3].copy()
        rows[1, 4] = np.nan
        for method in ("predict", "transform"):
            if not hasattr(est, method):
                continue
            with pytest.raises(ValueError) as expected:
                getattr(est, method)(rows)
            with pytest.raises(ValueError) as got:
                getattr(model, method)(rows)
            assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "make,changes,text",
    [
        (LDA, lambda e: {"scalings_": e.scalings_[:3]}, "scalings_ has shape"),
        (LDA, lambda e: {"xbar_": e.xbar_[:3]}, "xbar_ has shape"),
        (LDA, lambda e: {"coef_": e.coef_[:1]}, "intercept_ has shape (3,), expected (1,)"),
        (
            LDA,
            lambda e: {"coef_": e.coef_[:1], "intercept_": e.intercept_[:1]},
            "coef_ has 1 rows for 3 classes",
        ),
        (QDA, lambda e: {"means_": e.means_[:2]}, "means_ has shape"),
        (QDA, lambda e: {"rotations_": e.rotations_[:2]}, "rotations_ and scalings_"),
        (QDA, lambda e: {"scalings_": [s[:2] for s in e.scalings_]}, "rotations_[0] has shape"),
        (QDA, lambda e: {"priors_": e.priors_[:1]}, "priors_ has shape"),
    ],
)
def test_lying_states_are_model_format_errors(make, changes, text):
    X, y, _ = data(3)
    est = make().fit(X, y)
    for key, value in changes(est).items():
        setattr(est, key, value)
    with pytest.raises(ModelFormatError, match=re.escape(text)):
        mlfast.compile(est)
