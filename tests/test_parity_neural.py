"""Differential tests: MLPClassifier, MLPRegressor and BernoulliRBM.

scikit-learn is the oracle.  Each check fits a real network on generated
data, saves it, loads it with mlfast and compares predict, predict_proba,
predict_log_proba and transform on fresh rows (float64 and float32 input,
one row, a batch that goes through OpenBLAS's dgemm across threads): labels
equal with the same dtype, floats within 1e-12 with the same shape and
dtype.  Every activation, one to three hidden layers, binary and
multiclass, one and several targets, MLPRegressor's Poisson loss (an exp
output).  A network fitted on float32 data is refused (UnsupportedModelError);
states that lie about their shapes are ModelFormatError.
"""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.neural_network import BernoulliRBM, MLPClassifier, MLPRegressor
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
    "transform",
    "score_samples",
    "predict_joint_log_proba",
)
RTOL = ATOL = 1e-12
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def quietly(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def data(seed=0, d=8):
    rs = np.random.RandomState(seed)
    X = rs.randn(300, d)
    return X[:200], X[200:]


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
        # BernoulliRBM.score_samples flips a feature chosen at random: not served
        has = hasattr(est, method) and not (method == "score_samples" and "RBM" in repr(est))
        assert hasattr(model, method) == has, f"{method}: sklearn has it: {has}: {context}"
    for dtype in (np.float64, np.float32):
        X = X_new.astype(dtype)
        for rows in (X, X[:1], np.repeat(X, 50, axis=0)):
            for method in METHODS:
                if hasattr(model, method):
                    expected = quietly(getattr(est, method), rows)
                    got = getattr(model, method)(rows)
                    assert_same(
                        got, expected, f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}"
                    )


@pytest.mark.parametrize("layers", [(16,), (40, 20), (12, 12, 12)], ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_classifier(activation, layers, tmp_path):
    X, X_new = data()
    for target in (
        (X[:, 0] > 0).astype(int),
        np.array(["lo", "mid", "hi"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)],
        (X[:, 0] > 0).astype(int) + 2 * (X[:, 2] > 0) + (X[:, 3] > 1),
    ):
        est = quietly(
            MLPClassifier(
                hidden_layer_sizes=layers, activation=activation, max_iter=60, random_state=0
            ).fit,
            X,
            target,
        )
        for variant in ("joblib", "compile"):
            model = load_variant(est, variant, tmp_path)
            assert_same(model.classes_, est.classes_, "classes_")
            check(
                model,
                est,
                X_new,
                f"MLPClassifier({activation}, {layers}) | {est.classes_.size} classes | {variant}",
            )


@pytest.mark.parametrize("layers", [(16,), (40, 20)], ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_regressor(activation, layers, tmp_path):
    X, X_new = data(1)
    for y in (X[:, 0] * 3 + X[:, 1], X[:, :3]):
        est = quietly(
            MLPRegressor(
                hidden_layer_sizes=layers, activation=activation, max_iter=60, random_state=0
            ).fit,
            X,
            y,
        )
        model = load_variant(est, "pickle-p2", tmp_path)
        check(model, est, X_new, f"MLPRegressor({activation}, {layers}) | y {y.shape}")


def test_mlp_regressor_poisson(tmp_path):
    X, X_new = data(2)
    try:
        est = MLPRegressor(loss="poisson", hidden_layer_sizes=(10,), max_iter=50, random_state=0)
    except TypeError:
        pytest.skip("MLPRegressor has no loss parameter in this scikit-learn")
    y = np.exp(0.3 * X[:, 0])
    quietly(est.fit, X, y)
    check(load_variant(est, "joblib", tmp_path), est, X_new, "MLPRegressor(loss='poisson')")


def test_bernoulli_rbm_in_a_pickled_pipeline(tmp_path):
    X, X_new = data(3)
    for est in (
        BernoulliRBM(n_components=12, random_state=0).fit(np.abs(X) / 3),
        make_pipeline(StandardScaler(), BernoulliRBM(n_components=5, random_state=0)).fit(X),
    ):
        model = pickle.loads(pickle.dumps(load_variant(est, "joblib", tmp_path)))
        check(model, est, X_new, f"{est!r}")


def test_nan_is_refused_as_sklearn_does():
    X, X_new = data()
    est = quietly(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit, X, X[:, 0] > 0
    )
    model = mlfast.compile(est)
    rows = X_new[:3].copy()
    rows[1, 2] = np.nan
    with pytest.raises(ValueError) as expected:
        est.predict(rows)
    with pytest.raises(ValueError) as got:
        model.predict(rows)
    assert str(got.value) == str(expected.value)


def test_float32_fit_is_unsupported():
    X, _ = data()
    est = quietly(
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit,
        X.astype(np.float32),
        X[:, 0],
    )
    assert est.coefs_[0].dtype == np.float32
    with pytest.raises(UnsupportedModelError, match="float32"):
        mlfast.compile(est)


@pytest.mark.parametrize(
    "changes,text",
    [
        (lambda e: {"coefs_": e.coefs_[:1]}, "coefs_ and intercepts_"),
        (lambda e: {"coefs_": [e.coefs_[0], e.coefs_[1][:3]]}, "coefs_[1] has shape"),
        (
            lambda e: {"intercepts_": [e.intercepts_[0][:2], e.intercepts_[1]]},
            "intercepts_[0] has shape",
        ),
        (lambda e: {"activation": "swish"}, "activation is 'swish'"),
        (lambda e: {"n_layers_": 5}, "n_layers_ is 5"),
        (lambda e: {"classes_": np.array([0, 1, 2, 3])}, "outputs with out_activation_"),
    ],
)
def test_lying_states_are_model_format_errors(changes, text):
    X, _ = data()
    est = quietly(
        MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit,
        X,
        (X[:, 0] > 0).astype(int) + (X[:, 1] > 0),
    )
    for key, value in changes(est).items():
        setattr(est, key, value)
    with pytest.raises(ModelFormatError, match=re.escape(text)):
        mlfast.compile(est)
