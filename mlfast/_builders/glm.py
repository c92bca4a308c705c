"""Generalised linear models, kernel ridge regression and RANSAC.

PoissonRegressor, GammaRegressor and TweedieRegressor are ``X @ coef_ +
intercept_`` through their link's inverse (exp for the log link).
KernelRidge is ``kernel(X, X_fit_) @ dual_coef_`` with the kernels of
sklearn.metrics.pairwise (the ``kernel_dual`` op).  RANSACRegressor predicts
with its fitted ``estimator_``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from mlfast._builders import Builders, Node, register, regressor
from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    KernelDual,
    KernelRule,
    Linear,
    Post,
    PostRule,
)
from mlfast.errors import UnsupportedModelError

MAX_FIT_ROWS = 1 << 22


def _link(node: Node) -> str:
    """'log' or 'identity': the inverse link predict applies."""
    if node.name in ("PoissonRegressor", "GammaRegressor"):
        return "log"
    link = node.get("link", "auto")
    power = node.get("power", 0.0)
    if isinstance(power, bool) or not isinstance(power, (int, float, np.integer, np.floating)):
        raise node.fail(f"power is {power!r}, expected a number")
    if link == "auto":
        return "identity" if power <= 0 else "log"
    if link in ("identity", "log"):
        return link
    raise node.fail(f"link is {link!r}, expected 'auto', 'identity' or 'log'")


@register("sklearn.linear_model", "PoissonRegressor", "GammaRegressor", "TweedieRegressor")
def build_glm(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    coef = node.array("coef_", ndim=(1,), kinds="f")
    if coef.size < 1:
        raise node.fail("coef_ is empty")
    d = coef.size
    intercept = node.vector("intercept_", 1)
    n = node.n_features(d)
    X = b.input(node, X, n)
    # X @ coef_ + intercept_, float64 whatever X's float type
    raw = b.add(
        node,
        Linear(
            coef=np.ascontiguousarray(coef, dtype=np.float64).reshape(1, d),
            intercept=intercept,
            f32=False,
        ),
        X,
        1,
        accept=Accept.FINITE,
    )
    if _link(node) == "log":
        raw = b.add(node, Post(rule=PostRule.EXP), raw, 1)
    return regressor(node, raw, n, raw_1d=True)


_KERNELS = {
    "linear": KernelRule.LINEAR,
    "poly": KernelRule.POLY,
    "polynomial": KernelRule.POLY,
    "rbf": KernelRule.RBF,
    "sigmoid": KernelRule.SIGMOID,
    "laplacian": KernelRule.LAPLACIAN,
    "cosine": KernelRule.COSINE,
}
# chi2 and additive_chi2 refuse negative X at predict time, which the kernel
# cannot report: not served
_REFUSED_KERNELS = {
    "chi2": "it refuses negative values at predict time",
    "additive_chi2": "it refuses negative values at predict time",
    "precomputed": "it needs the training rows' kernel at predict time",
}


def _number(node: Node, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise node.fail(f"{key} is {value!r}, expected a number")
    return float(value)


#: the parameters each kernel of sklearn.metrics.pairwise reads (KERNEL_PARAMS)
_KERNEL_PARAMS = {
    "linear": (),
    "poly": ("gamma", "degree", "coef0"),
    "polynomial": ("gamma", "degree", "coef0"),
    "rbf": ("gamma",),
    "sigmoid": ("gamma", "coef0"),
    "laplacian": ("gamma",),
    "cosine": (),
}


def kernel_op(
    node: Node, kernel: Any, params: dict, fit: np.ndarray, dual: Optional[np.ndarray]
) -> KernelDual:
    """pairwise_kernels(X, fit, metric=kernel, filter_params=True, **params)
    (@ dual): the op, its parameters resolved as the kernel functions'
    defaults do (gamma None: 1 / n_features; degree 3; coef0 1)."""
    if not isinstance(kernel, str):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): a callable kernel is code, which mlfast never runs; "
            f"it serves {', '.join(sorted(_KERNELS))}"
        )
    if kernel not in _KERNELS:
        why = _REFUSED_KERNELS.get(kernel, "it is not a kernel of sklearn.metrics.pairwise")
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): kernel={kernel!r} is not served: {why}"
        )
    if fit.shape[0] < 1 or fit.shape[1] < 1 or fit.shape[0] > MAX_FIT_ROWS:
        raise node.fail(f"the stored rows have shape {fit.shape}")
    d = fit.shape[1]
    fit64 = np.ascontiguousarray(fit, dtype=np.float64)
    rule = _KERNELS[kernel]
    used = {k: v for k, v in params.items() if k in _KERNEL_PARAMS[kernel] and v is not None}
    gamma = _number(node, "gamma", used.get("gamma", 1.0 / d))
    degree = _number(node, "degree", used.get("degree", 3))
    coef0 = _number(node, "coef0", used.get("coef0", 1))
    norms = None
    if rule == KernelRule.RBF:
        norms = np.einsum("ij,ij->i", fit64, fit64)
    elif rule == KernelRule.COSINE:
        lengths = np.sqrt(np.einsum("ij,ij->i", fit64, fit64))
        lengths[lengths < 10 * np.finfo(lengths.dtype).eps] = 1.0
        fit64 = fit64 / lengths[:, None]
    return KernelDual(
        rule=int(rule),
        fit=fit64,
        dual=dual,
        fit_norms=norms,
        gamma=gamma,
        coef0=coef0,
        degree=degree,
    )


@register("sklearn.kernel_ridge", "KernelRidge")
def build_kernel_ridge(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    kernel = node.get("kernel")
    fit = (
        node.array("X_fit_", ndim=(2,), kinds="fiub")
        if isinstance(kernel, str) and kernel in _KERNELS
        else np.zeros((1, 1))
    )
    dual = node.array("dual_coef_", ndim=(1, 2), kinds="f")
    if (
        (dual.shape[0] != fit.shape[0] or dual.size < 1)
        and isinstance(kernel, str)
        and kernel in _KERNELS
    ):
        raise node.fail(f"dual_coef_ has shape {dual.shape} for {fit.shape[0]} stored rows")
    t = 1 if dual.ndim == 1 else dual.shape[1]
    params = {
        "gamma": node.get("gamma", None),
        "degree": node.get("degree", 3),
        "coef0": node.get("coef0", 1),
    }
    op = kernel_op(node, kernel, params, fit, None)
    op.dual = np.ascontiguousarray(dual, dtype=np.float64).reshape(fit.shape[0], t)
    n = node.n_features(fit.shape[1])
    X = b.input(node, X, n)
    raw = b.add(node, op, X, t, accept=Accept.FINITE)
    return regressor(node, raw, n, raw_1d=dual.ndim == 1)


@register("sklearn.linear_model", "RANSACRegressor")
def build_ransac(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    est = node.get("estimator_")
    built = b.build(est, f"{node.where}.estimator_", X)
    if "predict" not in built.outputs:
        raise node.fail("estimator_ has no predict")
    n = node.state.get("n_features_in_", built.n_features_in)
    if n != built.n_features_in:
        raise node.fail(f"n_features_in_ is {n} but estimator_ reads {built.n_features_in}")
    out = built.outputs["predict"]
    return Built(
        f"RANSACRegressor({built.name})",
        "regressor",
        {"predict": out},
        built.n_features_in,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=built.strings,
    )
