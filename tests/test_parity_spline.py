"""Differential tests: SplineTransformer (its scipy BSpline objects read as
inert data: knots, coefficients, degree; scipy is never called).

scikit-learn is the oracle; the basis values follow scipy's de Boor
recursion term by term, so they are checked bit for bit.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer
from support.families import assert_same, check, fit, quietly
from support.variants import load_variant

import mlfast
from mlfast._core import classify_global
from mlfast.errors import ModelFormatError, UnsupportedModelError

sklearn_version = tuple(int(p) for p in __import__("sklearn").__version__.split(".")[:2])


def data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(100, 3)
    X_new = np.vstack([rng.randn(40, 3) * 3, X[:3], np.zeros((1, 3))])
    return X, X_new


CASES = [
    {},
    {"extrapolation": "continue"},
    {"extrapolation": "periodic"},
    {"extrapolation": "constant", "degree": 2, "n_knots": 7},
    {"include_bias": False},
    {"knots": "quantile"},
    {"degree": 1},
    {"degree": 5, "n_knots": 8, "extrapolation": "continue"},
    {"extrapolation": "periodic", "include_bias": False, "degree": 2},
]


def exact(model, est, X, context):
    for dtype in (np.float64, np.float32):
        rows = X.astype(dtype)
        got, expected = model.transform(rows), quietly(est.transform, rows)
        assert got.dtype == expected.dtype and got.shape == expected.shape, context
        np.testing.assert_array_equal(got, expected, err_msg=f"{context} | {dtype}")


@pytest.mark.parametrize("kw", CASES, ids=[str(c) for c in CASES])
def test_spline(kw, tmp_path):
    X, X_new = data()
    est = fit(SplineTransformer(**kw), X)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"SplineTransformer({kw})")
    exact(model, est, X_new, f"SplineTransformer({kw})")


def test_extrapolation_error(tmp_path):
    X, X_new = data(1)
    est = fit(SplineTransformer(extrapolation="error"), X)
    model = load_variant(est, "joblib", tmp_path)
    inside = np.clip(X_new, X.min(0) + 1e-3, X.max(0) - 1e-3)
    exact(model, est, inside[:, :], "extrapolation='error', inside")
    with pytest.raises(ValueError) as sk:
        quietly(est.transform, X_new)
    with pytest.raises(ValueError) as ours:
        model.transform(X_new)
    assert str(ours.value) == str(sk.value)


@pytest.mark.skipif(sklearn_version < (1, 8), reason="handle_missing is new in 1.8")
def test_handle_missing_zeros(tmp_path):
    X, X_new = data(2)
    est = fit(SplineTransformer(handle_missing="zeros"), X)
    model = load_variant(est, "joblib", tmp_path)
    bad = X_new.copy()
    bad[3, 1] = np.nan
    assert_same(model.transform(bad), quietly(est.transform, bad), "NaN as zeros")


def test_in_a_pipeline_and_variants(tmp_path):
    X, X_new = data(3)
    est = fit(make_pipeline(SplineTransformer(), Ridge()), X, X[:, 0] ** 2)
    for variant in ("pickle-p2", "compile", "joblib-zlib3"):
        check(load_variant(est, variant, tmp_path), est, X_new, f"Pipeline | {variant}")


def test_refusals():
    X, _ = data(4)
    est = fit(SplineTransformer(extrapolation="linear"), X)
    with pytest.raises(UnsupportedModelError, match="linear"):
        mlfast.loads(pickle.dumps(est))
    est = fit(SplineTransformer(), X)
    est.bsplines_[1].k = 2
    with pytest.raises(ModelFormatError, match="degree"):
        mlfast.loads(pickle.dumps(est))
    est = fit(SplineTransformer(), X)
    est.bsplines_[0]._t = est.bsplines_[0]._t[::-1].copy()
    with pytest.raises(ModelFormatError):
        mlfast.loads(pickle.dumps(est))


def test_bspline_is_a_record_and_asarray_a_name():
    """A BSpline is an inert record; the asarray its state names is a value
    the VM never calls."""
    from mlfast._core import GLOBAL_KINDS

    assert classify_global("scipy.interpolate._bsplines", "BSpline") == GLOBAL_KINDS["record"]
    assert (
        classify_global("scipy._lib.array_api_compat.numpy._aliases", "asarray")
        == GLOBAL_KINDS["typeref"]
    )
    assert classify_global("scipy.interpolate._bsplines", "make_interp_spline") == 0
