"""Differential tests: kernel SVMs (SVC, NuSVC, SVR, NuSVR, OneClassSVM).

scikit-learn is the oracle.  Each check fits a real estimator on generated
data, saves it, loads it with mlfast and compares every method the
estimator has (predict, decision_function, predict_proba,
predict_log_proba, score_samples) on fresh rows (float64 and float32 input,
a batch across threads and one row): labels equal with the same dtype,
floats within 1e-12 (relative and absolute) with the same shape and dtype.
libsvm's dot products are OpenBLAS ddot calls and mlfast's add in order, so
decision values agree to a few ulps of their terms, not bit for bit.

Options: every kernel, gamma 'scale', 'auto' and a number, degree and coef0,
decision_function_shape 'ovr' and 'ovo', break_ties, probability=True
(Platt scaling and pairwise coupling), two to five classes, string labels,
sparse fits (support vectors held as a CSR matrix).  Refusals: NaN and inf
with scikit-learn's message, kernel='precomputed' and callable kernels as
UnsupportedModelError; states that lie about their shapes or support counts
are ModelFormatError.
"""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import svm
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
    "transform",
    "predict_joint_log_proba",
)
RTOL = ATOL = 1e-12
N_FEATURES = 6


def quietly(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def classification(k=3, seed=0):
    X, y = make_classification(
        n_samples=260,
        n_features=N_FEATURES,
        n_informative=4,
        n_redundant=0,
        n_classes=k,
        n_clusters_per_class=1,
        random_state=seed,
    )
    X_new = np.vstack([X[200:], 3 * X[200:203], np.zeros((1, N_FEATURES))])
    return X[:200], y[:200], X_new


def regression(seed=0):
    X, y = make_regression(
        n_samples=260, n_features=N_FEATURES, n_informative=4, noise=5.0, random_state=seed
    )
    return X[:200], y[:200] / 50, X[200:]


def assert_same(got, expected, msg):
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}: {msg}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)


def check(model, est, X_new, context):
    for method in METHODS:
        has = hasattr(est, method)
        assert hasattr(model, method) == has, f"{method}: sklearn has it: {has}: {context}"
    for dtype in (np.float64, np.float32):
        X = X_new.astype(dtype)
        for rows in (X, X[:1], np.repeat(X, 30, axis=0)):
            for method in METHODS:
                if hasattr(est, method):
                    expected = quietly(getattr(est, method), rows)
                    got = getattr(model, method)(rows)
                    assert_same(
                        got, expected, f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}"
                    )


KERNELS = [
    dict(kernel="linear"),
    dict(kernel="rbf"),
    dict(kernel="rbf", gamma="auto"),
    dict(kernel="rbf", gamma=0.37),
    dict(kernel="poly"),
    dict(kernel="poly", degree=2, coef0=1.5, gamma=0.2),
    dict(kernel="poly", degree=5, coef0=0.3),
    dict(kernel="sigmoid", gamma=0.05, coef0=-0.5),
]


def _ids(options):
    return ",".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("options", KERNELS, ids=_ids)
def test_svc(options, k, tmp_path):
    X, y, X_new = classification(k)
    for extra in (
        dict(),
        dict(decision_function_shape="ovo"),
        dict(break_ties=True),
        dict(probability=True, random_state=0),
    ):
        est = quietly(svm.SVC(C=2.0, **options, **extra).fit, X, y)
        model = load_variant(est, "joblib", tmp_path)
        assert_same(model.classes_, est.classes_, "classes_")
        check(model, est, X_new, f"SVC({_ids({**options, **extra})}) | k={k}")


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("options", KERNELS[:5], ids=_ids)
def test_nusvc(options, k, tmp_path):
    X, y, X_new = classification(k, seed=1)
    for extra in (
        dict(),
        dict(probability=True, random_state=0),
        dict(decision_function_shape="ovo"),
    ):
        est = quietly(svm.NuSVC(nu=0.4, **options, **extra).fit, X, y)
        model = load_variant(est, "pickle-p2", tmp_path)
        check(model, est, X_new, f"NuSVC({_ids({**options, **extra})}) | k={k}")


@pytest.mark.parametrize("options", KERNELS, ids=_ids)
def test_regressors_and_one_class(options, tmp_path):
    X, y, X_new = regression()
    scaled = StandardScaler().fit(X)
    X, X_new = scaled.transform(X), scaled.transform(X_new)
    for est in (
        svm.SVR(C=3.0, epsilon=0.05, **options),
        svm.NuSVR(nu=0.3, **options),
        svm.OneClassSVM(nu=0.2, **options),
    ):
        quietly(est.fit, X, y)
        for variant in ("joblib", "compile"):
            model = load_variant(est, variant, tmp_path)
            check(model, est, X_new, f"{type(est).__name__}({_ids(options)}) | {variant}")


def test_string_labels_pipeline_and_pickled_model(tmp_path):
    X, y, X_new = classification(3)
    labels = np.array(["ant", "bee", "cat"])[y]
    est = quietly(
        make_pipeline(StandardScaler(), svm.SVC(probability=True, random_state=0)).fit, X, labels
    )
    model = pickle.loads(pickle.dumps(load_variant(est, "joblib", tmp_path)))
    check(model, est, X_new, "StandardScaler -> SVC, str labels")


@pytest.mark.parametrize(
    "make",
    [
        lambda: svm.SVC(kernel="rbf", probability=True, random_state=0),
        lambda: svm.SVC(kernel="poly", decision_function_shape="ovo"),
        lambda: svm.NuSVC(kernel="linear", nu=0.3),
        lambda: svm.SVR(kernel="rbf"),
        lambda: svm.OneClassSVM(kernel="rbf", nu=0.3),
    ],
)
def test_sparse_fit(make, tmp_path):
    X, y, X_new = classification(3)
    X = np.where(np.abs(X) < 0.7, 0.0, X)
    X_new = np.where(np.abs(X_new) < 0.7, 0.0, X_new)
    est = quietly(make().fit, sp.csr_matrix(X), y)
    assert sp.issparse(est.support_vectors_)
    for variant in ("joblib", "pickle-p2", "compile"):
        model = load_variant(est, variant, tmp_path)
        check(model, est, X_new, f"sparse fit {est!r} | {variant}")


def test_nan_and_inf_are_refused_as_sklearn_does():
    X, y, X_new = classification(3)
    est = svm.SVC().fit(X, y)
    model = mlfast.compile(est)
    for bad in (np.nan, np.inf):
        rows = X_new[:4].copy()
        rows[2, 1] = bad
        with pytest.raises(ValueError) as expected:
            est.predict(rows)
        with pytest.raises(ValueError) as got:
            model.predict(rows)
        assert str(got.value) == str(expected.value)


def test_precomputed_and_callable_kernels_are_unsupported():
    X, y, _ = classification(2)
    est = svm.SVC(kernel="precomputed").fit(X @ X.T, y)
    with pytest.raises(UnsupportedModelError, match="precomputed"):
        mlfast.compile(est)


def test_break_ties_with_ovo_is_refused_as_sklearn_refuses_predict():
    X, y, _ = classification(3)
    est = svm.SVC(break_ties=True, decision_function_shape="ovo").fit(X, y)
    with pytest.raises(ValueError):
        est.predict(X[:1])
    with pytest.raises(UnsupportedModelError, match="break_ties"):
        mlfast.compile(est)


def _lie(est, **changes):
    for key, value in changes.items():
        setattr(est, key, value)
    return est


@pytest.mark.parametrize(
    "make,changes,text",
    [
        (
            lambda: svm.SVC(),
            lambda e: {"_n_support": e._n_support + np.array([1, -1, 1])},
            "_n_support is",
        ),
        (
            lambda: svm.SVC(),
            lambda e: {"_n_support": np.array([-1, 0, 0]) + e._n_support},
            "_n_support is",
        ),
        (
            lambda: svm.SVC(),
            lambda e: {"support_vectors_": e.support_vectors_[:-2]},
            "_n_support is",
        ),
        (lambda: svm.SVC(), lambda e: {"_dual_coef_": e._dual_coef_[:1]}, "_dual_coef_ has shape"),
        (lambda: svm.SVC(), lambda e: {"_intercept_": e._intercept_[:2]}, "_dual_coef_ has shape"),
        (
            lambda: svm.SVC(),
            lambda e: {"support_vectors_": e.support_vectors_[:, :3]},
            "n_features_in_ is 6",
        ),
        (
            lambda: svm.SVC(probability=True, random_state=0),
            lambda e: {"_probA": e._probA[:1]},
            "probA and probB",
        ),
        (lambda: svm.SVC(), lambda e: {"_gamma": "x"}, "_gamma is"),
        (lambda: svm.SVC(), lambda e: {"kernel": "cubic"}, "kernel is 'cubic'"),
        (
            lambda: svm.SVC(),
            lambda e: {"decision_function_shape": "ova"},
            "decision_function_shape",
        ),
        (
            lambda: svm.SVR(),
            lambda e: {"_dual_coef_": np.zeros((2, e.support_vectors_.shape[0]))},
            "_dual_coef_ has shape",
        ),
    ],
)
def test_lying_states_are_model_format_errors(make, changes, text):
    X, y, _ = classification(3)
    est = quietly(make().fit, X, y)
    est = _lie(est, **changes(est))
    with pytest.raises(ModelFormatError, match=re.escape(text)):
        mlfast.compile(est)


def test_lying_sparse_support_vectors_are_model_format_errors():
    X, y, _ = classification(2)
    est = svm.SVC().fit(sp.csr_matrix(np.where(np.abs(X) < 0.5, 0, X)), y)
    sv = est.support_vectors_.copy()
    sv.indices[3] = 1000  # a column past the matrix
    est.support_vectors_ = sv
    with pytest.raises(ModelFormatError, match="out of range"):
        mlfast.compile(est)


def test_supported():
    names = mlfast.supported_estimators()
    for name in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM"):
        assert name in names


def test_only_csr_matrices_of_scipy_sparse_are_records():
    """A sparse fit's support vectors are an inert record; the rest of
    scipy.sparse stays refused."""
    classify = mlfast._core.classify_global
    record = mlfast._core.GLOBAL_KINDS["record"]
    for module, name in [
        ("scipy.sparse._csr", "csr_matrix"),
        ("scipy.sparse._csr", "csr_array"),
        ("scipy.sparse.csr", "csr_matrix"),
    ]:
        assert classify(module, name) == record, (module, name)
    for module, name in [
        ("scipy.sparse", "load_npz"),
        ("scipy.sparse._csr", "_csr_base"),
        ("scipy.sparse._coo", "coo_matrix"),
        ("scipy.sparse._csr", "os"),
    ]:
        assert classify(module, name) == 0, (module, name)
