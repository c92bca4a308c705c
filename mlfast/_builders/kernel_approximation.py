"""Kernel approximations and KernelPCA.

Nystroem is ``kernel(X, components_) @ normalization_.T`` (the
``kernel_dual`` op); KernelPCA is the kernel to its training rows, centred
by its ``KernelCenterer``, times its scaled eigenvectors; RBFSampler is
``cos(X @ random_weights_ + random_offset_) * sqrt(2 / n_components)`` with
numpy's own cos loop.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.functions import apply
from mlfast._builders.glm import kernel_op
from mlfast._builders.ir import (
    FUNCTIONS,
    Accept,
    Affine,
    Built,
    CenterKernel,
    Cols,
    Linear,
    Out,
    Strings,
)


def _transformer(node: Node, cols: Cols, n: int) -> Built:
    return Built(
        node.name,
        "transformer",
        {"transform": Out(cols)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )


@register("sklearn.kernel_approximation", "Nystroem")
def build_nystroem(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    kernel = node.get("kernel")
    components = node.array("components_", ndim=(2,), kinds="fiub")
    normalization = node.array("normalization_", ndim=(2,), kinds="f")
    m, d = components.shape
    if normalization.shape[1] != m or normalization.shape[0] < 1:
        raise node.fail(f"normalization_ has shape {normalization.shape} for {m} components")
    params = dict(node.get("kernel_params", None) or {})
    if not isinstance(params, dict):
        raise node.fail("kernel_params is not a dict")
    for key in ("gamma", "degree", "coef0"):
        if node.get(key, None) is not None:
            params[key] = node.get(key)
    dual = np.ascontiguousarray(normalization.T, dtype=np.float64)
    op = kernel_op(node, kernel, params, components, dual)
    n = node.n_features(d)
    X = b.input(node, X, n)
    cols = b.add(node, op, X, dual.shape[1], accept=Accept.FINITE)
    return _transformer(node, cols, n)


@register("sklearn.decomposition", "KernelPCA")
def build_kernel_pca(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    kernel = node.get("kernel")
    fit = node.array("X_fit_", ndim=(2,), kinds="fiub")
    n_fit, d = fit.shape
    # eigenvalues_/eigenvectors_ since 1.0 (lambdas_/alphas_ before)
    vkey, wkey = (
        ("eigenvalues_", "eigenvectors_")
        if "eigenvalues_" in node.state
        else ("lambdas_", "alphas_")
    )
    values = node.array(vkey, ndim=(1,), kinds="f")
    vectors = node.array(wkey, ndim=(2,), kinds="f")
    if vectors.shape != (n_fit, values.size) or values.size < 1:
        raise node.fail(
            f"{wkey} has shape {vectors.shape} and {vkey} {values.shape} for {n_fit} stored rows"
        )
    centerer = node.get("_centerer")
    cstate = getattr(centerer, "state", None)
    if not isinstance(cstate, dict):
        raise node.fail("_centerer is not a fitted KernelCenterer")
    fit_rows = node.array(
        "_centerer.K_fit_rows_", ndim=(1,), kinds="f", value=cstate.get("K_fit_rows_")
    )
    fit_all = float(
        node.array("_centerer.K_fit_all_", ndim=(0,), kinds="f", value=cstate.get("K_fit_all_"))
    )
    if fit_rows.shape != (n_fit,):
        raise node.fail(f"_centerer.K_fit_rows_ has shape {fit_rows.shape}")
    gamma = node.get("gamma_", node.get("gamma", None))
    params = {"gamma": gamma, "degree": node.get("degree", 3), "coef0": node.get("coef0", 1)}
    op = kernel_op(node, kernel, params, fit, None)
    non_zeros = np.flatnonzero(values)
    scaled = np.zeros_like(vectors, dtype=np.float64)
    scaled[:, non_zeros] = vectors[:, non_zeros] / np.sqrt(values[non_zeros])
    n = node.n_features(d)
    X = b.input(node, X, n)
    K = b.add(node, op, X, n_fit, accept=Accept.FINITE)
    K = b.add(node, CenterKernel(fit_rows=fit_rows.astype(np.float64), fit_all=fit_all), K, n_fit)
    k = values.size
    cols = b.add(
        node, Linear(coef=np.ascontiguousarray(scaled.T), intercept=np.zeros(k), f32=False), K, k
    )
    return _transformer(node, cols, n)


@register("sklearn.kernel_approximation", "RBFSampler")
def build_rbf_sampler(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    weights = node.array("random_weights_", ndim=(2,), kinds="f")
    d, m = weights.shape
    if d < 1 or m < 1:
        raise node.fail(f"random_weights_ has shape {weights.shape}")
    offset = node.vector("random_offset_", m)
    n_components = node.integer("n_components")
    if n_components != m:
        raise node.fail(f"n_components is {n_components} for {m} random weights")
    n = node.n_features(d)
    X = b.input(node, X, n)
    projection = b.add(
        node,
        Linear(coef=np.ascontiguousarray(weights.T, dtype=np.float64), intercept=offset, f32=False),
        X,
        m,
        accept=Accept.FINITE,
    )
    projection = apply(node, b, projection, FUNCTIONS["cos"], Accept.ANY)
    scale = (2.0 / n_components) ** 0.5
    cols = b.add(node, Affine(mul=np.full(m, scale)), projection, m)
    return _transformer(node, cols, n)
