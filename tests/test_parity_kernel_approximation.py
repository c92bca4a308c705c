"""Differential tests: Nystroem, KernelPCA, RBFSampler.

scikit-learn is the oracle.  Nystroem's ``normalization_`` is the inverse
square root of the components' kernel: with more components than the
kernel's rank it is ill-conditioned and multiplies the last-bit differences
of two summation orders (measured: 1e-9 for poly of degree 2 on 5 features
with 30 components), so the cases here keep it well-conditioned.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.decomposition import KernelPCA
from sklearn.kernel_approximation import Nystroem, RBFSampler
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from support.families import check, fit
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError


def data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(150, 5)
    return X, rng.randn(30, 5) * 2


CASES = [
    ("Nystroem(rbf)", lambda: Nystroem(n_components=40, random_state=0)),
    ("Nystroem(poly)", lambda: Nystroem("poly", degree=2, n_components=12, random_state=0)),
    ("Nystroem(sigmoid)", lambda: Nystroem("sigmoid", gamma=0.1, n_components=4, random_state=0)),
    ("Nystroem(laplacian)", lambda: Nystroem("laplacian", n_components=20, random_state=0)),
    ("Nystroem(linear)", lambda: Nystroem("linear", n_components=5, random_state=0)),
    (
        "Nystroem(kernel_params)",
        lambda: Nystroem(kernel_params={"gamma": 0.3}, n_components=20, random_state=0),
    ),
    ("KernelPCA(linear)", lambda: KernelPCA(3)),
    ("KernelPCA(rbf)", lambda: KernelPCA(4, kernel="rbf")),
    ("KernelPCA(poly)", lambda: KernelPCA(3, kernel="poly", degree=2)),
    ("KernelPCA(cosine)", lambda: KernelPCA(3, kernel="cosine")),
    ("KernelPCA(sigmoid)", lambda: KernelPCA(5, kernel="sigmoid", gamma=0.05)),
    (
        "KernelPCA(arpack)",
        lambda: KernelPCA(3, kernel="rbf", eigen_solver="arpack", random_state=0),
    ),
    ("RBFSampler", lambda: RBFSampler(random_state=0, n_components=50)),
    ("RBFSampler(gamma)", lambda: RBFSampler(gamma=0.3, random_state=1, n_components=20)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_transform(name, make, tmp_path):
    X, X_new = data()
    est = fit(make(), X)
    check(load_variant(est, "joblib", tmp_path), est, X_new, name)


def test_in_a_pipeline(tmp_path):
    X, X_new = data(1)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    est = fit(make_pipeline(Nystroem(n_components=30, random_state=0), LogisticRegression()), X, y)
    check(load_variant(est, "compile", tmp_path), est, X_new, "Pipeline(Nystroem, LR)")


def test_refused_and_hostile():
    X, _ = data(2)
    est = fit(KernelPCA(3, kernel="precomputed"), X @ X.T)
    with pytest.raises(UnsupportedModelError, match="precomputed"):
        mlfast.loads(pickle.dumps(est))
    est = fit(Nystroem(n_components=10, random_state=0), X)
    est.normalization_ = est.normalization_[:, :4]
    with pytest.raises(ModelFormatError, match="normalization_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(KernelPCA(3), X)
    est.eigenvectors_ = est.eigenvectors_[:10]
    with pytest.raises(ModelFormatError, match="eigenvectors_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(RBFSampler(n_components=8, random_state=0), X)
    est.random_offset_ = est.random_offset_[:3]
    with pytest.raises(ModelFormatError, match="random_offset_"):
        mlfast.loads(pickle.dumps(est))
