"""Differential tests: GaussianMixture and BayesianGaussianMixture (every
covariance type, both weight priors: predict, predict_proba,
score_samples), EllipticEnvelope, and the Gaussian score_samples of PCA and
FactorAnalysis (in test_parity_decomposition.py).

Known differences, measured and listed in README: float32 rows of a
spherical mixture (scikit-learn sums the squared norms in float32 with
numpy's einsum, whose order is not followed: ~1e-7 relative), integer rows
of a full or tied mixture from scikit-learn 1.7 on (its log_prob array takes
X's integer dtype and truncates).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.covariance import EllipticEnvelope
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from support.families import check, check_refuses_like, fit
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError

N_FEATURES = 4
COVARIANCES = ["full", "tied", "diag", "spherical"]


def data(seed=0, n=240):
    rng = np.random.RandomState(seed)
    centres = rng.randn(3, N_FEATURES) * 4
    X = np.vstack(
        [
            c + rng.randn(n // 3, N_FEATURES) @ rng.randn(N_FEATURES, N_FEATURES) * 0.5
            for c in centres
        ]
    )
    X_new = np.vstack(
        [
            centres[rng.randint(0, 3, 40)] + rng.randn(40, N_FEATURES),
            rng.randn(5, N_FEATURES) * 10,
            np.zeros((1, N_FEATURES)),
        ]
    )
    return X, X_new


def dtypes_for(cov):
    if cov == "spherical":
        return (np.float64, np.int64)
    if cov in ("full", "tied"):
        return (np.float64, np.float32)
    return (np.float64, np.float32, np.int64)


@pytest.mark.parametrize("cov", COVARIANCES)
@pytest.mark.parametrize("variant", ["joblib", "pickle-p2", "compile"])
def test_gaussian_mixture(cov, variant, tmp_path):
    X, X_new = data()
    est = fit(GaussianMixture(3, covariance_type=cov, random_state=0), X)
    model = load_variant(est, variant, tmp_path)
    check(model, est, X_new, f"GaussianMixture({cov}) | {variant}", dtypes=dtypes_for(cov))


@pytest.mark.parametrize("cov", COVARIANCES)
@pytest.mark.parametrize("prior", ["dirichlet_process", "dirichlet_distribution"])
def test_bayesian_gaussian_mixture(cov, prior, tmp_path):
    X, X_new = data(1)
    est = fit(
        BayesianGaussianMixture(
            n_components=4,
            covariance_type=cov,
            weight_concentration_prior_type=prior,
            random_state=0,
        ),
        X,
    )
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, f"BayesianGaussianMixture({cov}, {prior})", dtypes=dtypes_for(cov))


def test_one_component(tmp_path):
    X, X_new = data(2)
    est = fit(GaussianMixture(1), X)
    check(
        load_variant(est, "joblib", tmp_path),
        est,
        X_new,
        "GaussianMixture(1)",
        dtypes=(np.float64,),
    )


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"contamination": 0.25},
        {"store_precision": False},
        {"support_fraction": 0.8, "assume_centered": True},
    ],
    ids=["default", "contamination", "no-precision", "centered"],
)
def test_elliptic_envelope(kw, tmp_path):
    X, X_new = data(3)
    est = fit(EllipticEnvelope(random_state=0, **kw), X)
    model = load_variant(est, "joblib", tmp_path)
    assert model.kind == "outlier_detector"
    check(model, est, X_new, f"EllipticEnvelope({kw})")


def test_refusals_match(tmp_path):
    X, X_new = data(4)
    for est in (fit(GaussianMixture(2), X), fit(EllipticEnvelope(random_state=0), X)):
        model = load_variant(est, "joblib", tmp_path)
        bad = X_new.copy()
        bad[0, 0] = np.nan
        check_refuses_like(model, est, bad, "predict", type(est).__name__)
        check_refuses_like(model, est, X_new[:, :2], "predict", type(est).__name__)


def test_hostile_shapes():
    X, _ = data(5)
    est = fit(GaussianMixture(3, covariance_type="full"), X)
    est.precisions_cholesky_ = est.precisions_cholesky_[:2]
    with pytest.raises(ModelFormatError, match="precisions_cholesky_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(GaussianMixture(3, covariance_type="diag"), X)
    est.covariance_type = "banana"
    with pytest.raises(ModelFormatError, match="covariance_type"):
        mlfast.loads(pickle.dumps(est))
    est = fit(GaussianMixture(3), X)
    est.weights_ = est.weights_[:2]
    with pytest.raises(ModelFormatError, match="weights_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(BayesianGaussianMixture(n_components=3), X)
    est.degrees_of_freedom_ = -est.degrees_of_freedom_
    with pytest.raises(ModelFormatError, match="degrees_of_freedom_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(EllipticEnvelope(random_state=0), X)
    est.precision_ = est.precision_[:, :2]
    with pytest.raises(ModelFormatError, match="precision_"):
        mlfast.loads(pickle.dumps(est))
