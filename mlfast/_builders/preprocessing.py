"""Scalers and the numeric SimpleImputer as transform steps."""

from __future__ import annotations

from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, is_nan, register, transformer
from mlfast._builders.ir import Accept, Affine, Built, Cols, Impute, Strings
from mlfast.errors import UnsupportedModelError


def _width(node: Node, key: str) -> int:
    v = node.get(key)
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.size < 1:
        raise node.fail(f"{key} must be a non-empty 1-D array")
    return node.n_features(v.size)


def _affine(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    n: int,
    sub=None,
    mul=None,
    div=None,
    add=None,
    cast_params=False,
    clip=None,
) -> Built:
    vec = lambda key: node.vector(key, n) if key else None  # noqa: E731
    lo, hi = clip if clip is not None else (0.0, 0.0)
    op = Affine(
        sub=vec(sub),
        mul=vec(mul),
        div=vec(div),
        add=vec(add),
        cast_params=bool(cast_params),
        clip=clip is not None,
        clip_lo=lo,
        clip_hi=hi,
    )
    return transformer(node, b, X, op, n, n, accept=Accept.NAN)


def _flag(node: Node, key: str, default: bool) -> bool:
    v = node.get(key, default)
    if not isinstance(v, (bool, np.bool_)):
        raise node.fail(f"{key} is {v!r}, expected True or False")
    return bool(v)


@register("sklearn.preprocessing", "StandardScaler")
def build_standard_scaler(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    with_mean = _flag(node, "with_mean", True)
    with_std = _flag(node, "with_std", True)
    n = (
        _width(node, "mean_" if with_mean else "scale_")
        if (with_mean or with_std)
        else node.integer("n_features_in_")
    )
    # Since scikit-learn 1.8 transform casts mean_ and scale_ to X's dtype
    # before the in-place operations (array API support); earlier versions
    # computed float32 input against the float64 parameters.
    cast = node.version >= (1, 8)
    return _affine(
        node,
        b,
        X,
        n,
        sub="mean_" if with_mean else None,
        div="scale_" if with_std else None,
        cast_params=cast,
    )


@register("sklearn.preprocessing", "MinMaxScaler")
def build_minmax_scaler(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    n = _width(node, "scale_")
    clip = None
    if _flag(node, "clip", False):
        lo, hi = node.get("feature_range")
        clip = (float(lo), float(hi))
    return _affine(node, b, X, n, mul="scale_", add="min_", clip=clip)


@register("sklearn.preprocessing", "MaxAbsScaler")
def build_maxabs_scaler(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    n = _width(node, "scale_")
    clip = (-1.0, 1.0) if _flag(node, "clip", False) else None
    return _affine(node, b, X, n, div="scale_", clip=clip)


@register("sklearn.preprocessing", "RobustScaler")
def build_robust_scaler(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    centering = _flag(node, "with_centering", True)
    scaling = _flag(node, "with_scaling", True)
    n = (
        _width(node, "center_" if centering else "scale_")
        if (centering or scaling)
        else node.integer("n_features_in_")
    )
    return _affine(
        node, b, X, n, sub="center_" if centering else None, div="scale_" if scaling else None
    )


@register("sklearn.impute", "SimpleImputer")
def build_simple_imputer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    fit_dtype = node.state.get("_fit_dtype")
    stats = node.get("statistics_")
    if getattr(fit_dtype, "kind", "f") == "O" or (
        fit_dtype is None
        and isinstance(stats, np.ndarray)
        and stats.dtype.kind == "O"
        and node.get("strategy", None) in ("most_frequent", "constant")
        and not all(isinstance(v, (int, float)) for v in stats.tolist())
    ):
        # fitted on strings or objects: its columns are read as keys
        from mlfast._builders.encoders import build_object_imputer

        return build_object_imputer(node, b, X)
    if isinstance(stats, np.ndarray) and stats.dtype.kind == "O":
        # strategy='constant' stores its statistics with object dtype
        try:
            stats = stats.astype(np.float64)
        except (TypeError, ValueError):
            raise UnsupportedModelError(
                f"{node.where} (SimpleImputer): non-numeric fill values are not served"
            ) from None
    stats = node.array("statistics_", ndim=(1,), kinds="fiub", value=stats)
    n = node.n_features(stats.size)
    missing = node.get("missing_values")
    if is_nan(missing):
        missing_value, accept = float("nan"), Accept.NAN
    elif isinstance(missing, (int, float, np.integer, np.floating)) and not isinstance(
        missing, (bool, np.bool_)
    ):
        missing_value, accept = float(missing), Accept.FINITE
    else:
        raise node.fail(f"missing_values={missing!r} is not served (numeric or NaN only)")
    strategy = node.get("strategy")
    if strategy not in ("mean", "median", "most_frequent", "constant"):
        raise node.fail(f"strategy={strategy!r} is not served")
    fill_dtype = node.state.get("_fill_dtype")
    if isinstance(fill_dtype, np.dtype) and fill_dtype.kind in "fiub":
        # newer versions cast statistics_ to the dtype seen in fit before
        # filling (an integer fit truncates, a float32 fit rounds)
        with np.errstate(invalid="ignore"):
            filled = (
                stats.astype(fill_dtype)
                if fill_dtype.kind == "f"
                else np.where(np.isnan(stats), np.nan, np.trunc(np.nan_to_num(stats)))
            )
        fill = np.ascontiguousarray(filled, dtype=np.float64)
    else:
        fill = np.ascontiguousarray(stats, dtype=np.float64)
    # Old versions kept every column for strategy='constant'; those that
    # record _fill_dtype drop a column whose statistic is NaN unless
    # keep_empty_features.
    keep_all = strategy == "constant" and fill_dtype is None
    if keep_all or _flag(node, "keep_empty_features", False):
        keep = np.arange(n, dtype=np.int64)
    else:
        keep = np.flatnonzero(~np.isnan(fill)).astype(np.int64)
    indicator = np.zeros(0, dtype=np.int64)
    if _flag(node, "add_indicator", False):
        mi = node.get("indicator_")
        state = getattr(mi, "state", None)
        if not isinstance(state, dict) or "features_" not in state:
            raise node.fail("indicator_ is not a fitted MissingIndicator")
        features = state["features_"]
        if (
            not isinstance(features, np.ndarray)
            or features.ndim != 1
            or (features.size and (features.min() < 0 or features.max() >= n))
        ):
            raise node.fail("indicator_.features_ must index the input columns")
        indicator = np.ascontiguousarray(features, dtype=np.int64)
    n_out = keep.size + indicator.size
    if n_out == 0:
        raise node.fail("every column is empty and no indicator is added: no output")
    keeps_int = strategy in ("most_frequent", "constant")
    op = Impute(
        missing=missing_value, fill=fill, keeps_int=keeps_int, keep=keep, indicator=indicator
    )
    if keeps_int:
        # dtype=None: strings stay strings, which SimpleImputer then refuses
        return transformer(node, b, X, op, n, n_out, accept, strings=Strings.IMPUTER)
    return transformer(
        node,
        b,
        X,
        op,
        n,
        n_out,
        accept,
        strings=Strings.CONVERT,
        string_prefix=f"Cannot use {strategy} strategy with non-numeric data:\n",
    )
