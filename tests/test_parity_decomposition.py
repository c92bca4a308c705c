"""Differential tests: linear projections (PCA, IncrementalPCA, TruncatedSVD,
FastICA, FactorAnalysis, the random projections, the PLS family).

scikit-learn is the oracle: each estimator is fitted on generated data,
saved in several file variants, loaded with mlfast and compared on fresh
rows of several types, one row, a batch and a batch split across threads
(support/families.py).  Hostile states (lying shapes, a sparse matrix whose
indices point outside it) are ModelFormatError.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cross_decomposition import CCA, PLSSVD, PLSCanonical, PLSRegression
from sklearn.decomposition import (
    PCA,
    FactorAnalysis,
    FastICA,
    IncrementalPCA,
    TruncatedSVD,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection
from support.families import check, check_refuses_like, fit
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError

N_FEATURES = 7


def data(seed=0, n=120):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, N_FEATURES) @ rng.randn(N_FEATURES, N_FEATURES) + 3.0
    Y = X[:, :2] @ rng.randn(2, 2) + 0.3 * rng.randn(n, 2)
    X_new = np.vstack([rng.randn(30, N_FEATURES) * 4 + 3.0, np.zeros((1, N_FEATURES))])
    return X, Y, X_new


PROJECTIONS = [
    ("PCA(3)", lambda: PCA(3)),
    ("PCA(whiten)", lambda: PCA(4, whiten=True)),
    ("PCA(full, whiten)", lambda: PCA(7, whiten=True, svd_solver="full")),
    ("PCA(randomized)", lambda: PCA(3, svd_solver="randomized", random_state=0)),
    ("PCA(arpack)", lambda: PCA(3, svd_solver="arpack", random_state=0)),
    ("IncrementalPCA", lambda: IncrementalPCA(3, batch_size=40)),
    ("IncrementalPCA(whiten)", lambda: IncrementalPCA(3, whiten=True)),
    ("TruncatedSVD", lambda: TruncatedSVD(3, random_state=0)),
    ("TruncatedSVD(arpack)", lambda: TruncatedSVD(2, algorithm="arpack", random_state=0)),
    ("FastICA(unit-variance)", lambda: FastICA(3, whiten="unit-variance", random_state=0)),
    (
        "FastICA(arbitrary-variance)",
        lambda: FastICA(3, whiten="arbitrary-variance", random_state=0),
    ),
    ("FastICA(no whiten)", lambda: FastICA(whiten=False, random_state=0)),
    ("FactorAnalysis", lambda: FactorAnalysis(2, random_state=0)),
    ("FactorAnalysis(varimax)", lambda: FactorAnalysis(3, rotation="varimax", random_state=0)),
    ("GaussianRandomProjection", lambda: GaussianRandomProjection(4, random_state=0)),
    ("SparseRandomProjection", lambda: SparseRandomProjection(4, random_state=0)),
    (
        "SparseRandomProjection(dense)",
        lambda: SparseRandomProjection(5, dense_output=True, density=0.5, random_state=1),
    ),
]
CROSS = [
    ("PLSRegression", lambda: PLSRegression(2)),
    ("PLSRegression(no scale)", lambda: PLSRegression(2, scale=False)),
    ("PLSCanonical", lambda: PLSCanonical(2)),
    ("CCA", lambda: CCA(2)),
    ("PLSSVD", lambda: PLSSVD(2)),
]


@pytest.mark.parametrize("name,make", PROJECTIONS, ids=[p[0] for p in PROJECTIONS])
@pytest.mark.parametrize("variant", ["joblib", "pickle-p2", "compile"])
def test_projection(name, make, variant, tmp_path):
    X, _, X_new = data()
    est = fit(make(), X)
    model = load_variant(est, variant, tmp_path)
    assert model.n_features_in_ == N_FEATURES
    check(model, est, X_new, f"{name} | {variant}")


@pytest.mark.parametrize(
    "name,make",
    PROJECTIONS[:3] + PROJECTIONS[7:8],
    ids=[p[0] for p in PROJECTIONS[:3] + PROJECTIONS[7:8]],
)
def test_projection_fitted_on_float32(name, make, tmp_path):
    """A float32 fit keeps float32 components_: float32 rows give float32."""
    X, _, X_new = data(1)
    est = fit(make(), X.astype(np.float32))
    check(
        load_variant(est, "joblib", tmp_path),
        est,
        X_new,
        f"{name} fitted on float32",
        methods=("transform",),
    )


CROSS_CASES = [(name, make, False) for name, make in CROSS] + [
    (name, make, True) for name, make in CROSS if name.startswith("PLSRegression")
]


@pytest.mark.parametrize(
    "name,make,one_target",
    CROSS_CASES,
    ids=[f"{c[0]}-{'1' if c[2] else '2'}target" for c in CROSS_CASES],
)
def test_cross_decomposition(name, make, one_target, tmp_path):
    X, Y, X_new = data(2)
    est = fit(make(), X, Y[:, 0] if one_target else Y)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"{name} | one target: {one_target}", methods=("transform", "predict"))


def test_pca_in_a_pipeline(tmp_path):
    X, Y, X_new = data(3)
    y = (Y[:, 0] > np.median(Y[:, 0])).astype(int)
    est = fit(make_pipeline(PCA(3, whiten=True), LogisticRegression()), X, y)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, "Pipeline(PCA, LogisticRegression)")


@pytest.mark.parametrize(
    "name,make",
    [PROJECTIONS[0], PROJECTIONS[12], CROSS[0]],
    ids=["PCA", "FactorAnalysis", "PLSRegression"],
)
def test_refuses_nan_and_wrong_width(name, make, tmp_path):
    X, Y, X_new = data(4)
    est = fit(make(), X, Y) if name.startswith("PLS") else fit(make(), X)
    model = load_variant(est, "joblib", tmp_path)
    bad = X_new.copy()
    bad[2, 3] = np.nan
    check_refuses_like(model, est, bad, "transform", name)
    check_refuses_like(model, est, X_new[:, :5], "transform", name)


# -- hostile states ---------------------------------------------------------------


def _loads(est):
    return mlfast.loads(pickle.dumps(est))


def test_hostile_shapes():
    X, Y, _ = data(5)
    cases = []
    est = fit(PCA(3), X)
    est.mean_ = est.mean_[:4]
    cases.append(("PCA mean_ short", est, "mean_"))
    est = fit(PCA(3, whiten=True), X)
    est.explained_variance_ = est.explained_variance_[:2]
    cases.append(("PCA explained_variance_ short", est, "explained_variance_"))
    est = fit(PCA(3), X)
    est.components_ = est.components_[0]
    cases.append(("PCA components_ 1-D", est, "components_"))
    est = fit(FactorAnalysis(2), X)
    est.noise_variance_ = est.noise_variance_[:3]
    cases.append(("FactorAnalysis noise_variance_ short", est, "noise_variance_"))
    est = fit(PLSRegression(2), X, Y)
    est.coef_ = est.coef_[:, :3]
    cases.append(("PLSRegression coef_ narrow", est, "coef_"))
    est = fit(TruncatedSVD(2), X)
    est.components_ = est.components_.astype(object)
    cases.append(("TruncatedSVD components_ of objects", est, "components_"))
    for _name, est, key in cases:
        with pytest.raises(ModelFormatError, match=key):
            _loads(est)


@pytest.mark.parametrize("flaw", ["index", "indptr", "shape", "decreasing"])
def test_hostile_sparse_components(flaw):
    X, _, _ = data(6)
    est = fit(SparseRandomProjection(4, density=0.5, random_state=0), X)
    m = est.components_.tocsr()
    data_, indices, indptr = m.data.copy(), m.indices.copy(), m.indptr.copy()
    shape = m.shape
    if flaw == "index":
        indices[-1] = 10_000
    elif flaw == "indptr":
        indptr[-1] += 5
    elif flaw == "shape":
        shape = (shape[0], shape[1] + 3)
    else:
        indptr[1], indptr[2] = indptr[2], indptr[1] - 1
    bad = sp.csr_matrix((4, N_FEATURES))
    bad.data, bad.indices, bad.indptr = data_, indices, indptr
    bad._shape = shape
    est.components_ = bad
    with pytest.raises(ModelFormatError):
        _loads(est)
