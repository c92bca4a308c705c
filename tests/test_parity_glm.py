"""Differential tests: PoissonRegressor, GammaRegressor, TweedieRegressor
(every link), KernelRidge (every served kernel), RANSACRegressor.

scikit-learn is the oracle (support/families.py: float64, float32 and
integer rows; a batch, one row, a batch across threads).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    PoissonRegressor,
    RANSACRegressor,
    Ridge,
    TweedieRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from support.families import check, check_refuses_like, fit
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError

N_FEATURES = 5


def data(seed=0, n=150):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, N_FEATURES)
    y = np.exp(0.4 * X[:, 0] - 0.2 * X[:, 1]) + rng.rand(n)
    X_new = np.vstack([rng.randn(30, N_FEATURES) * 2, np.zeros((1, N_FEATURES))])
    return X, y, X_new


GLMS = [
    ("PoissonRegressor", lambda: PoissonRegressor()),
    ("PoissonRegressor(no intercept)", lambda: PoissonRegressor(fit_intercept=False)),
    ("GammaRegressor", lambda: GammaRegressor(alpha=0.1)),
    ("TweedieRegressor(power=0)", lambda: TweedieRegressor(power=0)),
    ("TweedieRegressor(power=1.5)", lambda: TweedieRegressor(power=1.5)),
    ("TweedieRegressor(power=2, identity)", lambda: TweedieRegressor(power=0, link="log")),
    (
        "TweedieRegressor(power=1, newton-cholesky)",
        lambda: TweedieRegressor(power=1, solver="newton-cholesky"),
    ),
    ("TweedieRegressor(power=3)", lambda: TweedieRegressor(power=3)),
]


@pytest.mark.parametrize("name,make", GLMS, ids=[g[0] for g in GLMS])
@pytest.mark.parametrize("variant", ["joblib", "pickle-p2", "compile"])
def test_glm(name, make, variant, tmp_path):
    X, y, X_new = data()
    est = fit(make(), X, y)
    model = load_variant(est, variant, tmp_path)
    check(model, est, X_new, f"{name} | {variant}")


KERNELS = [
    ("linear", {}),
    ("rbf", {}),
    ("rbf", {"gamma": 0.3}),
    ("poly", {}),
    ("poly", {"degree": 2, "gamma": 0.5, "coef0": 2.0}),
    ("polynomial", {"degree": 4}),
    ("sigmoid", {"gamma": 0.05}),
    ("laplacian", {}),
    ("laplacian", {"gamma": 0.2}),
    ("cosine", {}),
]


@pytest.mark.parametrize("kernel,params", KERNELS, ids=[f"{k}-{p}" for k, p in KERNELS])
@pytest.mark.parametrize("targets", [1, 2])
def test_kernel_ridge(kernel, params, targets, tmp_path):
    X, y, X_new = data(1)
    Y = y if targets == 1 else np.column_stack([y, X[:, 2] ** 2])
    est = fit(KernelRidge(alpha=0.5, kernel=kernel, **params), X, Y)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"KernelRidge({kernel}, {params}) | targets={targets}")


@pytest.mark.parametrize("kernel", ["chi2", "additive_chi2", "precomputed"])
def test_kernel_ridge_refused_kernels(kernel):
    X, y, _ = data(2)
    Xp = np.abs(X)
    est = fit(
        KernelRidge(kernel=kernel, gamma=1.0), Xp @ Xp.T if kernel == "precomputed" else Xp, y
    )
    with pytest.raises(UnsupportedModelError, match=f"kernel='{kernel}' is not served"):
        mlfast.loads(pickle.dumps(est))


def test_kernel_ridge_callable_kernel_is_refused():
    X, y, _ = data(3)
    est = fit(KernelRidge(kernel=np.dot), X, y)
    with pytest.raises((UnsupportedModelError, mlfast.UnsafeModelError)):
        mlfast.loads(pickle.dumps(est))


@pytest.mark.parametrize(
    "member",
    [
        LinearRegression,
        lambda: DecisionTreeRegressor(max_depth=3),
        lambda: make_pipeline(StandardScaler(), Ridge()),
    ],
    ids=["LinearRegression", "DecisionTree", "Pipeline"],
)
def test_ransac(member, tmp_path):
    X, y, X_new = data(4)
    y = y.copy()
    y[::10] += 30
    est = fit(RANSACRegressor(member(), min_samples=20, random_state=0), X, y)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, "RANSACRegressor", dtypes=(np.float64, np.float32))


def test_refusals_match(tmp_path):
    X, y, X_new = data(5)
    for est in (fit(PoissonRegressor(), X, y), fit(KernelRidge(kernel="rbf"), X, y)):
        model = load_variant(est, "joblib", tmp_path)
        bad = X_new.copy()
        bad[1, 1] = np.inf
        check_refuses_like(model, est, bad, "predict", type(est).__name__)
        check_refuses_like(model, est, X_new[:, :3], "predict", type(est).__name__)


def test_hostile_shapes():
    X, y, _ = data(6)
    est = fit(KernelRidge(kernel="rbf"), X, y)
    est.dual_coef_ = est.dual_coef_[:-3]
    with pytest.raises(ModelFormatError, match="dual_coef_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(PoissonRegressor(), X, y)
    est.coef_ = est.coef_.reshape(1, -1)
    with pytest.raises(ModelFormatError, match="coef_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(TweedieRegressor(power=1.5), X, y)
    est.link = "cube"
    with pytest.raises(ModelFormatError, match="link"):
        mlfast.loads(pickle.dumps(est))
