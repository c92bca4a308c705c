"""Differential tests: IsotonicRegression, QuantileTransformer, Normalizer,
KBinsDiscretizer, KernelCenterer, PowerTransformer.

scikit-learn is the oracle (support/families.py).  KBinsDiscretizer's
``encode='onehot'`` returns the numbers of scikit-learn's sparse matrix as a
dense array (as mlfast's OneHotEncoder does).  IsotonicRegression reads a
column (n, 1): a 1-D array is one row in mlfast, n samples in scikit-learn.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    KernelCenterer,
    Normalizer,
    PowerTransformer,
    QuantileTransformer,
)
from support.families import assert_same, check, fit, quietly
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError


def data(seed=0, n=200, d=4):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * np.arange(1, d + 1) + 1
    y = X[:, 0] + 0.3 * rng.randn(n)
    X_new = np.vstack([rng.randn(40, d) * 3, X[:5], np.zeros((1, d))])
    return X, y, X_new


class Dense:
    """A transformer whose sparse answer is compared densely."""

    def __init__(self, est):
        self.est = est

    def transform(self, X):
        out = self.est.transform(X)
        return out.toarray() if hasattr(out, "toarray") else out


@pytest.mark.parametrize("oob", ["clip", "nan"])
@pytest.mark.parametrize("increasing", [True, False, "auto"])
def test_isotonic(oob, increasing, tmp_path):
    X, y, X_new = data()
    est = fit(
        IsotonicRegression(out_of_bounds=oob, increasing=increasing),
        X[:, 0],
        y if increasing is not False else -y,
    )
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new[:, :1], f"IsotonicRegression({oob}, {increasing})")


def test_isotonic_raise(tmp_path):
    X, y, X_new = data(1)
    est = fit(IsotonicRegression(out_of_bounds="raise"), X[:, 0], y)
    model = load_variant(est, "joblib", tmp_path)
    inside = np.clip(X_new[:, :1], X[:, 0].min(), X[:, 0].max())
    check(model, est, inside, "IsotonicRegression(raise)", dtypes=(np.float64,), big=False)
    outside = X_new[:, :1]
    with pytest.raises(ValueError, match="in x_new is"):
        quietly(est.predict, outside)
    with pytest.raises(ValueError, match="in x_new is outside the interpolation range"):
        model.predict(outside)


def test_isotonic_one_threshold(tmp_path):
    est = fit(IsotonicRegression(), np.ones(5), np.arange(5.0))
    model = load_variant(est, "joblib", tmp_path)
    rows = np.array([[0.0], [1.0], [3.0]])
    assert_same(model.predict(rows), est.predict(rows), "one threshold")


@pytest.mark.parametrize("dist", ["uniform", "normal"])
@pytest.mark.parametrize("rounded", [False, True], ids=["continuous", "ties"])
def test_quantile_transformer(dist, rounded, tmp_path):
    X, _, X_new = data(2)
    if rounded:
        X, X_new = np.round(X), np.round(X_new)
    est = fit(QuantileTransformer(n_quantiles=60, output_distribution=dist), X)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"QuantileTransformer({dist}, rounded={rounded})")
    bad = X_new.copy()
    bad[3, 1] = np.nan
    assert_same(model.transform(bad), quietly(est.transform, bad), "NaN passes")


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer(norm, tmp_path):
    X, _, X_new = data(3)
    est = fit(Normalizer(norm), X)
    check(load_variant(est, "joblib", tmp_path), est, X_new, f"Normalizer({norm})")


@pytest.mark.parametrize("encode", ["ordinal", "onehot", "onehot-dense"])
@pytest.mark.parametrize("strategy", ["uniform", "quantile", "kmeans"])
def test_kbins(encode, strategy, tmp_path):
    X, _, X_new = data(4)
    kw = {"quantile_method": "averaged_inverted_cdf"} if strategy == "quantile" else {}
    est = fit(KBinsDiscretizer([3, 4, 5, 6], encode=encode, strategy=strategy, **kw), X)
    model = load_variant(est, "joblib", tmp_path)
    check(
        model, Dense(est), X_new, f"KBinsDiscretizer({encode}, {strategy})", methods=("transform",)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kbins_dtype(dtype, tmp_path):
    X, _, X_new = data(5)
    est = fit(KBinsDiscretizer(5, encode="ordinal", dtype=dtype), X)
    check(load_variant(est, "joblib", tmp_path), est, X_new, f"KBinsDiscretizer({dtype})")


def test_kernel_centerer(tmp_path):
    X, _, X_new = data(6)
    est = fit(KernelCenterer(), rbf_kernel(X[:60]))
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, rbf_kernel(X_new, X[:60]), "KernelCenterer", dtypes=(np.float64, np.float32))


@pytest.mark.parametrize("standardize", [True, False])
def test_power_yeo_johnson(standardize, tmp_path):
    X, _, X_new = data(7)
    est = fit(PowerTransformer(standardize=standardize), X)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"PowerTransformer(yeo-johnson, {standardize})")


def test_power_box_cox(tmp_path):
    X, _, X_new = data(8)
    X, X_new = np.abs(X) + 0.5, np.abs(X_new) + 0.5
    est = fit(PowerTransformer("box-cox"), X)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, "PowerTransformer(box-cox)", dtypes=(np.float64, np.float32))
    bad = X_new.copy()
    bad[4, 2] = -1.0
    with pytest.raises(ValueError, match="strictly positive") as sk:
        quietly(est.transform, bad)
    with pytest.raises(ValueError) as ours:
        model.transform(bad)
    assert str(ours.value) == str(sk.value)
    bad[4, 2] = np.nan
    assert_same(model.transform(bad), quietly(est.transform, bad), "NaN passes")


def test_in_a_pipeline(tmp_path):
    X, y, X_new = data(9)
    est = fit(
        make_pipeline(
            QuantileTransformer(n_quantiles=30), KBinsDiscretizer(3), LogisticRegression()
        ),
        X,
        y > 1,
    )
    check(load_variant(est, "pickle-p2", tmp_path), est, X_new, "Pipeline(QT, KBins, LR)")


def test_hostile_states():
    X, y, _ = data(10)
    est = fit(IsotonicRegression(), X[:, 0], y)
    est.y_thresholds_ = est.y_thresholds_[:-2]
    with pytest.raises(ModelFormatError, match="thresholds_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(QuantileTransformer(n_quantiles=20), X)
    est.references_ = est.references_[:5]
    with pytest.raises(ModelFormatError, match="references_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(KBinsDiscretizer(4, encode="ordinal"), X)
    est.n_bins_ = est.n_bins_ + 1
    with pytest.raises(ModelFormatError, match="n_bins_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(KBinsDiscretizer(4, encode="ordinal"), X)
    est.bin_edges_[1] = est.bin_edges_[1][::-1]
    with pytest.raises(ModelFormatError, match="bin_edges_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(PowerTransformer(), X)
    est.lambdas_ = est.lambdas_[:2]
    with pytest.raises(ModelFormatError):
        mlfast.loads(pickle.dumps(est))
