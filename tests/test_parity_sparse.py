"""scipy.sparse X (CSR, CSC, COO; matrices and arrays) into linear models,
against scikit-learn: never densified (each row is packed as its pairs and
multiplied as scipy's CSR or COO product adds them), decision values bit for
bit, the same refusals (NaN, inf, a wrong width) word for word."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

import mlfast

FORMATS = ["csr", "csc", "coo", "csr_array", "coo_array", "csr_unsorted", "csr_duplicates"]


def sparse_input(fmt: str, n_rows: int, seed: int, dtype=np.float64):
    X = sp.random(n_rows, 40, density=0.15, format="csr", random_state=seed, dtype=np.float64)
    X.data = X.data * 10 - 1
    X = sp.csr_matrix(X, dtype=dtype)
    if fmt in ("csr", "csc", "coo"):
        return X.asformat(fmt)
    if fmt == "csr_array":
        return sp.csr_array(X)
    if fmt == "coo_array":
        coo = X.tocoo()
        order = np.random.default_rng(seed).permutation(coo.nnz)
        return sp.coo_array((coo.data[order], (coo.row[order], coo.col[order])), shape=X.shape)
    if fmt == "csr_unsorted":
        X = X.copy()
        for i in range(X.shape[0]):
            a, b = X.indptr[i], X.indptr[i + 1]
            X.indices[a:b] = X.indices[a:b][::-1]
            X.data[a:b] = X.data[a:b][::-1]
        X.has_sorted_indices = False
        return X
    # duplicate entries, which scipy's product adds one at a time
    coo = X.tocoo()
    rows = np.concatenate([coo.row, coo.row[::3]])
    cols = np.concatenate([coo.col, coo.col[::3]])
    vals = np.concatenate([coo.data, coo.data[::3] * 0.3])
    return sp.coo_matrix((vals, (rows, cols)), shape=X.shape)


ESTIMATORS = {
    "logreg": lambda: LogisticRegression(max_iter=500),
    "logreg_binary": lambda: LogisticRegression(max_iter=500),
    "linear_svc": lambda: LinearSVC(),
    "sgd": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "ridge_classifier": lambda: RidgeClassifier(),
    "ridge": lambda: Ridge(),
    "linear_regression": lambda: LinearRegression(),
    "linear_svr": lambda: LinearSVR(),
    "sgd_regressor": lambda: SGDRegressor(random_state=0),
}


def fitted(name: str):
    X = sparse_input("csr", 300, 0)
    rng = np.random.default_rng(0)
    if name in ("ridge", "linear_regression", "linear_svr", "sgd_regressor"):
        y = X @ rng.normal(size=40) + rng.normal(size=300) * 0.1
    else:
        y = rng.integers(0, 2 if name == "logreg_binary" else 3, 300)
    return ESTIMATORS[name]().fit(X, y)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_sparse_input(name, fmt):
    est = fitted(name)
    model = mlfast.compile(est)
    X = sparse_input(fmt, 200, 1)
    for method in ("predict", "decision_function", "predict_proba"):
        if not hasattr(est, method):
            continue
        want = getattr(est, method)(X)
        got = getattr(model, method)(X)
        assert got.dtype == want.dtype and got.shape == want.shape
        if method == "predict_proba":
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_sparse_dtypes(dtype):
    est = fitted("logreg")
    model = mlfast.compile(est)
    X = sparse_input("csr", 100, 2, dtype=dtype)
    np.testing.assert_array_equal(model.decision_function(X), est.decision_function(X))


def test_sparse_refusals_match():
    est = fitted("logreg")
    model = mlfast.compile(est)
    X = sparse_input("csr", 20, 3)
    cases = []
    bad = X.copy()
    bad.data[5] = np.nan
    cases.append(bad)
    bad = X.copy()
    bad.data[7] = np.inf
    cases.append(bad)
    cases.append(sp.random(4, 39, density=0.3, format="csr", random_state=0))
    for bad in cases:
        with pytest.raises(ValueError) as theirs:
            est.predict(bad)
        with pytest.raises(ValueError) as ours:
            model.predict(bad)
        assert str(ours.value) == str(theirs.value)


def test_sparse_rows_are_not_densified():
    # 200,000 columns: a dense row of this model is 1.6 MB; 1,000 sparse
    # rows go through in far less memory than their dense form (1.6 GB)
    import tracemalloc

    rng = np.random.default_rng(4)
    n = 200_000

    def wide(rows: int) -> sp.csr_matrix:
        k = rows * 20
        return sp.csr_matrix(
            (rng.normal(size=k), (rng.integers(0, rows, k), rng.integers(0, n, k))), shape=(rows, n)
        )

    est = LogisticRegression().fit(wide(200), rng.integers(0, 2, 200))
    model = mlfast.compile(est)
    Xt = wide(1000)
    tracemalloc.start()
    got = model.decision_function(Xt)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20
    np.testing.assert_array_equal(got, est.decision_function(Xt))


def test_dense_input_unchanged_and_pickled_model():
    import pickle

    est = fitted("logreg")
    model = pickle.loads(pickle.dumps(mlfast.compile(est)))
    X = sparse_input("csr", 50, 6)
    np.testing.assert_array_equal(model.decision_function(X), est.decision_function(X))
    np.testing.assert_array_equal(
        model.decision_function(X.toarray()), est.decision_function(X.toarray())
    )
