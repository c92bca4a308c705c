"""Gaussian models: GaussianMixture, BayesianGaussianMixture, EllipticEnvelope,
and the Gaussian log-likelihoods of PCA and FactorAnalysis (score_samples).

The per-component constants (log determinants, log weights, the Bayesian
mixture's expected log weights and precisions) are computed here from the
stored arrays with numpy, as scikit-learn computes them at predict time;
the rows' terms are computed in C (the ``mixture`` and ``quadform`` ops).
scipy is never imported: ``digamma`` below is the asymptotic series.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    LabelRule,
    Labels,
    Mixture,
    MixtureRule,
    Out,
    QuadForm,
    Strings,
)

MAX_COMPONENTS = 1 << 16


def digamma(x: np.ndarray) -> np.ndarray:
    """The digamma function of positive x: the recurrence up to 10, then
    the asymptotic series (its next term is below 1e-16 there)."""
    x = np.array(x, dtype=np.float64)
    if np.any(~(x > 0)):
        raise ValueError("digamma of a value that is not positive")
    out = np.zeros_like(x)
    small = x < 10.0
    while np.any(small):
        out[small] -= 1.0 / x[small]
        x[small] += 1.0
        small = x < 10.0
    f = 1.0 / (x * x)
    series = f * (
        -1 / 12
        + f
        * (
            1 / 120
            + f * (-1 / 252 + f * (1 / 240 + f * (-1 / 132 + f * (691 / 32760 + f * (-1 / 12)))))
        )
    )
    return out + (np.log(x) - 0.5 / x + series)


def _logdet(a: np.ndarray) -> float:
    """sklearn.utils.extmath.fast_logdet."""
    sign, ld = np.linalg.slogdet(a)
    return float(ld) if sign > 0 else -math.inf


def gaussian_log_likelihood(
    node: Node, b: Builders, X: Cols, mean: np.ndarray, precision: np.ndarray
) -> Cols:
    """score_samples of PCA and FactorAnalysis: -0.5 * sum(Xr * (Xr @ P)),
    minus 0.5 * (d log(2 pi) - logdet(P))."""
    d = mean.size
    if not np.all(np.isfinite(precision)):
        raise node.fail("its parameters give a precision matrix that is not finite")
    const = 0.5 * (d * math.log(2.0 * math.pi) - _logdet(precision))
    op = QuadForm(
        loc=np.ascontiguousarray(mean, dtype=np.float64),
        prec=np.ascontiguousarray(precision, dtype=np.float64),
        mul=-0.5,
        add=-const,
    )
    return b.add(node, op, X, 1, accept=Accept.FINITE)


def _add_to_diagonal(a: np.ndarray, v) -> None:
    a.flat[:: len(a) + 1] += v


def pca_precision(node: Node, components: np.ndarray, n_features: int) -> np.ndarray:
    """_BasePCA.get_precision."""
    noise = node.get("noise_variance_")
    noise = float(node.array("noise_variance_", ndim=(0,), kinds="f", value=noise))
    variance = node.array("explained_variance_", ndim=(1,), kinds="f")
    if variance.shape != (components.shape[0],):
        raise node.fail(f"explained_variance_ has shape {variance.shape}")
    comps = components.astype(np.float64)
    if node.get("whiten", False):
        comps = comps * np.sqrt(variance[:, np.newaxis])
    diff = variance - noise
    diff = np.where(variance > noise, diff, 0.0)
    with np.errstate(all="ignore"):
        if noise == 0.0:
            cov = (comps.T * diff) @ comps
            _add_to_diagonal(cov, noise)
            return np.linalg.inv(cov)
        precision = comps @ comps.T / noise
        _add_to_diagonal(precision, 1.0 / diff)
        precision = comps.T @ np.linalg.inv(precision) @ comps
        precision /= -(noise**2)
        _add_to_diagonal(precision, 1.0 / noise)
    return precision


def factor_analysis_precision(node: Node, components: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """FactorAnalysis.get_precision."""
    k, d = components.shape
    with np.errstate(all="ignore"):
        if k == d:
            cov = components.T @ components
            _add_to_diagonal(cov, noise)
            return np.linalg.inv(cov)
        precision = np.dot(components / noise, components.T)
        _add_to_diagonal(precision, 1.0)
        precision = np.dot(components.T, np.dot(np.linalg.inv(precision), components))
        precision /= noise[:, np.newaxis]
        precision /= -noise[np.newaxis, :]
        _add_to_diagonal(precision, 1.0 / noise)
    return precision


# ---- EllipticEnvelope ----------------------------------------------------------------


def _square(node: Node, key: str, d: int) -> np.ndarray:
    m = node.array(key, ndim=(2,), kinds="f")
    if m.shape != (d, d):
        raise node.fail(f"{key} has shape {m.shape}, expected ({d}, {d})")
    return np.ascontiguousarray(m, dtype=np.float64)


def _pinvh(a: np.ndarray) -> np.ndarray:
    """scipy.linalg.pinvh: eigenvalues below a cutoff dropped."""
    w, v = np.linalg.eigh(a)
    cutoff = w.max(initial=0.0) * len(a) * np.finfo(np.float64).eps
    keep = np.abs(w) > cutoff
    return (v[:, keep] / w[keep]) @ v[:, keep].T


@register("sklearn.covariance", "EllipticEnvelope")
def build_elliptic_envelope(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    loc = node.array("location_", ndim=(1,), kinds="f")
    d = loc.size
    if d < 1:
        raise node.fail("location_ is empty")
    precision = node.get("precision_", None)
    if precision is not None:
        precision = _square(node, "precision_", d)
    else:
        precision = _pinvh(_square(node, "covariance_", d))
    offset = float(node.array("offset_", ndim=(0,), kinds="f"))
    n = node.n_features(d)
    X = b.input(node, X, n)
    loc = np.ascontiguousarray(loc, dtype=np.float64)
    # score_samples = -mahalanobis; decision_function = score_samples - offset_
    score = b.add(
        node, QuadForm(loc=loc, prec=precision, mul=-1.0, add=0.0), X, 1, accept=Accept.FINITE
    )
    decision = b.add(
        node, QuadForm(loc=loc, prec=precision, mul=-1.0, add=-offset), X, 1, accept=Accept.FINITE
    )
    labels = b.add(node, Labels(rule=LabelRule.THRESHOLD_GE), decision, 1)
    outputs = {
        "predict": Out(labels, classes=np.array([-1, 1], dtype=np.int64), squeeze=True),
        "decision_function": Out(decision, squeeze=True),
        "score_samples": Out(score, squeeze=True),
    }
    return Built(
        node.name,
        "outlier_detector",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.REFUSE,
    )


# ---- Gaussian mixtures -------------------------------------------------------------

_COVARIANCE = {
    "full": MixtureRule.FULL,
    "tied": MixtureRule.TIED,
    "diag": MixtureRule.DIAG,
    "spherical": MixtureRule.SPHERICAL,
}


@register("sklearn.mixture", "GaussianMixture", "BayesianGaussianMixture")
def build_gaussian_mixture(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    cov_type = node.get("covariance_type")
    if cov_type not in _COVARIANCE:
        raise node.fail(f"covariance_type is {cov_type!r}")
    means = node.array("means_", ndim=(2,), kinds="f").astype(np.float64)
    k, d = means.shape
    if not 1 <= k <= MAX_COMPONENTS or d < 1:
        raise node.fail(f"means_ has shape {means.shape}")
    shapes = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}
    chol = node.array("precisions_cholesky_", ndim=(1, 2, 3), kinds="f").astype(np.float64)
    if chol.shape != shapes[cov_type]:
        raise node.fail(
            f"precisions_cholesky_ has shape {chol.shape}, expected "
            f"{shapes[cov_type]} for covariance_type={cov_type!r}"
        )
    with np.errstate(all="ignore"):
        # _compute_log_det_cholesky
        if cov_type == "full":
            log_det = np.sum(np.log(chol.reshape(k, -1)[:, :: d + 1]), 1)
        elif cov_type == "tied":
            log_det = np.full(k, np.sum(np.log(np.diag(chol))))
        elif cov_type == "diag":
            log_det = np.sum(np.log(chol), axis=1)
        else:
            log_det = d * np.log(chol)
        base = np.zeros(k)
        if cov_type == "full":
            shift = np.stack([means[c] @ chol[c] for c in range(k)])
            prec = chol
        elif cov_type == "tied":
            shift = means @ chol
            prec = chol
        elif cov_type == "diag":
            prec = chol**2
            base = np.sum(means**2 * prec, axis=1)
            shift = means * prec
        else:
            prec = chol**2
            base = np.sum(means**2, axis=1) * prec
            shift = np.ascontiguousarray((means.T * prec).T)
        adds = [log_det]
        if node.name == "BayesianGaussianMixture":
            dof = node.vector("degrees_of_freedom_", k)
            mean_precision = node.vector("mean_precision_", k)
            if not (np.all(dof > d - 1) and np.all(mean_precision > 0)):
                raise node.fail("degrees_of_freedom_ or mean_precision_ out of range")
            adds.append(-(0.5 * d * np.log(dof)))
            log_lambda = d * np.log(2.0) + np.sum(
                digamma(0.5 * (dof - np.arange(0, d)[:, np.newaxis])), 0
            )
            adds.append(0.5 * (log_lambda - d / mean_precision))
            concentration = node.get("weight_concentration_")
            prior_type = node.get("weight_concentration_prior_type")
            if prior_type == "dirichlet_process":
                if not (isinstance(concentration, tuple) and len(concentration) == 2):
                    raise node.fail("weight_concentration_ is not a pair of arrays")
                a = node.vector("weight_concentration_[0]", k, value=concentration[0])
                bb = node.vector("weight_concentration_[1]", k, value=concentration[1])
                digamma_sum = digamma(a + bb)
                log_weights = (
                    digamma(a)
                    - digamma_sum
                    + np.hstack((0, np.cumsum(digamma(bb) - digamma_sum)[:-1]))
                )
            elif prior_type == "dirichlet_distribution":
                c = node.vector("weight_concentration_", k, value=concentration)
                log_weights = digamma(c) - digamma(np.sum(c))
            else:
                raise node.fail(f"weight_concentration_prior_type is {prior_type!r}")
            adds.append(log_weights)
        else:
            adds.append(np.log(node.vector("weights_", k)))
    for a in adds:
        if not np.all(np.isfinite(a)):
            raise node.fail("its parameters give log weights or determinants that are not finite")
    # From 1.7 full and tied log_prob is stored in X's dtype and, for float32
    # X, -0.5 * (constant + log_prob) computed in float32: the constant is
    # n_features * np.log(2 pi).astype(X.dtype) in 1.7 (a float32 product),
    # n_features * math.log(2 pi) from 1.8 (a Python float, cast to float32)
    f32_terms = 1 if node.version >= (1, 7) else 0
    if node.version >= (1, 8):
        const_f32 = float(np.float32(d * math.log(2 * math.pi)))
    else:
        const_f32 = float(np.float32(d) * np.float32(np.log(2 * np.pi)))
    n = node.n_features(d)
    X = b.input(node, X, n)
    op = Mixture(
        rule=int(_COVARIANCE[cov_type]),
        n_components=k,
        prec=np.ascontiguousarray(prec, dtype=np.float64).reshape(-1),
        shift=np.ascontiguousarray(shift, dtype=np.float64),
        base=np.ascontiguousarray(base, dtype=np.float64),
        adds=np.ascontiguousarray(np.stack(adds), dtype=np.float64),
        log_2pi_d=d
        * (math.log(2 * math.pi) if node.version >= (1, 8) else float(np.log(2 * np.pi))),
        f32_terms=f32_terms,
        log_2pi_d_f32=const_f32,
    )
    cols = b.add(node, op, X, 2 * k + 1, accept=Accept.FINITE)
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), cols[:k], 1)
    outputs = {
        "predict": Out(labels, classes=np.arange(k, dtype=np.int64), squeeze=True),
        "predict_proba": Out(cols[k + 1 :]),
        "score_samples": Out(cols[k : k + 1], squeeze=True),
    }
    return Built(
        node.name,
        "clusterer",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.REFUSE,
    )
