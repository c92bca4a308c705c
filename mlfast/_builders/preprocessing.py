"""Scalers and the numeric SimpleImputer as transform steps."""
from __future__ import annotations

import numpy as np

from mlfast._builders import (
    ACCEPT_FINITE,
    ACCEPT_NAN,
    Builders,
    Node,
    Parts,
    is_nan,
    register,
    transformer,
)


def _width(node: Node, key: str) -> int:
    v = node.get(key)
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.size < 1:
        raise node.fail(f"{key} must be a non-empty 1-D array")
    return node.n_features(v.size)


def _affine(node: Node, n: int, sub=None, mul=None, div=None, add=None,
            cast_params=False, clip=None) -> Parts:
    vec = lambda key, on: node.vector(key, n) if on else None  # noqa: E731
    spec = ("affine", node.name, ACCEPT_NAN, n, vec(sub, sub), vec(mul, mul), vec(div, div),
            vec(add, add), bool(cast_params), clip)
    return transformer(node, spec, n, n)


def _flag(node: Node, key: str, default: bool) -> bool:
    v = node.get(key, default)
    if not isinstance(v, (bool, np.bool_)):
        raise node.fail(f"{key} is {v!r}, expected True or False")
    return bool(v)


@register("sklearn.preprocessing", "StandardScaler")
def build_standard_scaler(node: Node, builders: Builders) -> Parts:
    with_mean = _flag(node, "with_mean", True)
    with_std = _flag(node, "with_std", True)
    key = "mean_" if with_mean else "scale_" if with_std else None
    if key is None:
        raise node.fail("with_mean=False and with_std=False: nothing to serve")
    n = _width(node, key)
    # Since scikit-learn 1.6 transform casts mean_ and scale_ to X's dtype
    # before the in-place operations (array API support); earlier versions
    # computed float32 input against the float64 parameters.
    cast = node.version >= (1, 6)
    return _affine(node, n, sub="mean_" if with_mean else None,
                   div="scale_" if with_std else None, cast_params=cast)


@register("sklearn.preprocessing", "MinMaxScaler")
def build_minmax_scaler(node: Node, builders: Builders) -> Parts:
    n = _width(node, "scale_")
    clip = None
    if _flag(node, "clip", False):
        lo, hi = node.get("feature_range")
        clip = (float(lo), float(hi))
    return _affine(node, n, mul="scale_", add="min_", clip=clip)


@register("sklearn.preprocessing", "MaxAbsScaler")
def build_maxabs_scaler(node: Node, builders: Builders) -> Parts:
    n = _width(node, "scale_")
    clip = (-1.0, 1.0) if _flag(node, "clip", False) else None
    return _affine(node, n, div="scale_", clip=clip)


@register("sklearn.preprocessing", "RobustScaler")
def build_robust_scaler(node: Node, builders: Builders) -> Parts:
    centering = _flag(node, "with_centering", True)
    scaling = _flag(node, "with_scaling", True)
    key = "center_" if centering else "scale_" if scaling else None
    if key is None:
        raise node.fail("with_centering=False and with_scaling=False: nothing to serve")
    n = _width(node, key)
    return _affine(node, n, sub="center_" if centering else None,
                   div="scale_" if scaling else None)


@register("sklearn.impute", "SimpleImputer")
def build_simple_imputer(node: Node, builders: Builders) -> Parts:
    stats = node.array("statistics_", ndim=(1,), kinds="fiub")
    n = node.n_features(stats.size)
    missing = node.get("missing_values")
    if is_nan(missing):
        missing_value, accept = float("nan"), ACCEPT_NAN
    elif isinstance(missing, (int, float, np.integer, np.floating)) and not isinstance(
        missing, (bool, np.bool_)
    ):
        missing_value, accept = float(missing), ACCEPT_FINITE
    else:
        raise node.fail(f"missing_values={missing!r} is not served (numeric or NaN only)")
    strategy = node.get("strategy")
    if strategy not in ("mean", "median", "most_frequent", "constant"):
        raise node.fail(f"strategy={strategy!r} is not served")
    fill = np.ascontiguousarray(stats, dtype=np.float64)
    if strategy == "constant" or _flag(node, "keep_empty_features", False):
        keep = np.arange(n, dtype=np.intp)
    else:
        keep = np.flatnonzero(~np.isnan(fill)).astype(np.intp)
    indicator = np.zeros(0, dtype=np.intp)
    if _flag(node, "add_indicator", False):
        mi = node.get("indicator_")
        state = getattr(mi, "state", None)
        if not isinstance(state, dict) or "features_" not in state:
            raise node.fail("indicator_ is not a fitted MissingIndicator")
        features = state["features_"]
        if not isinstance(features, np.ndarray) or features.ndim != 1 or (
            features.size and (features.min() < 0 or features.max() >= n)
        ):
            raise node.fail("indicator_.features_ must index the input columns")
        indicator = np.ascontiguousarray(features, dtype=np.intp)
    n_out = keep.size + indicator.size
    if n_out == 0:
        raise node.fail("every column is empty and no indicator is added: no output")
    spec = ("impute", node.name, accept, n, missing_value, fill, keep, indicator)
    return transformer(node, spec, n, n_out)
