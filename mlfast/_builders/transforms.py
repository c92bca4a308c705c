"""Preprocessing transformers beyond the scalers: IsotonicRegression,
QuantileTransformer, Normalizer, KBinsDiscretizer, KernelCenterer and
PowerTransformer (csrc/preprocess.c).
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from mlfast._builders import Builders, Node, register, regressor
from mlfast._builders.ir import (
    Accept,
    Bins,
    Built,
    CenterKernel,
    Cols,
    Interp,
    InterpRule,
    Out,
    Power,
    PowerRule,
    RowNorm,
    RowNormRule,
    Strings,
)
from mlfast._core import Global
from mlfast.errors import UnsupportedModelError

MAX_TABLE = 1 << 24


def _transformer(node: Node, cols: Cols, n: int, strings: int = Strings.CONVERT) -> Built:
    return Built(
        node.name,
        "transformer",
        {"transform": Out(cols)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
    )


# ---- IsotonicRegression --------------------------------------------------------------

_OUT_OF_BOUNDS = {"clip": InterpRule.CLIP, "nan": InterpRule.NAN, "raise": InterpRule.RAISE}


@register("sklearn.isotonic", "IsotonicRegression")
def build_isotonic(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    # X_thresholds_ since 0.24, _necessary_X_ before
    xkey, ykey = (
        ("X_thresholds_", "y_thresholds_")
        if "X_thresholds_" in node.state
        else ("_necessary_X_", "_necessary_y_")
    )
    x = node.array(xkey, ndim=(1,), kinds="f")
    y = node.array(ykey, ndim=(1,), kinds="fiu")
    if x.dtype != np.float64:
        # interp1d is np.interp only for float64 thresholds
        raise UnsupportedModelError(
            f"{node.where} (IsotonicRegression): {xkey} of dtype "
            f"{x.dtype} is not served (float64 only)"
        )
    if x.size < 1 or x.shape != y.shape or x.size > MAX_TABLE:
        raise node.fail(f"{xkey} and {ykey} have shapes {x.shape} and {y.shape}")
    if np.any(np.isnan(x)) or np.any(np.diff(x) < 0):
        raise node.fail(f"{xkey} is not sorted")
    rule = _OUT_OF_BOUNDS.get(node.get("out_of_bounds", "nan"))
    if rule is None:
        raise node.fail(f"out_of_bounds is {node.get('out_of_bounds')!r}")
    lo = hi = None
    if rule == InterpRule.CLIP:
        lo = np.array([float(node.array("X_min_", ndim=(0,), kinds="fiu"))])
        hi = np.array([float(node.array("X_max_", ndim=(0,), kinds="fiu"))])
    n = node.n_features(1)
    X = b.input(node, X, n)
    op = Interp(
        rule=int(rule),
        x=np.ascontiguousarray(x),
        y=y.astype(np.float64),
        offsets=np.array([0, x.size], dtype=np.int64),
        lo=lo,
        hi=hi,
    )
    cols = b.add(node, op, X, 1, accept=Accept.FINITE)
    built = regressor(node, cols, n, raw_1d=True, strings=Strings.CONVERT)
    built.outputs["transform"] = Out(cols, squeeze=True)
    return built


# ---- QuantileTransformer ---------------------------------------------------------------


@register("sklearn.preprocessing", "QuantileTransformer")
def build_quantile_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    quantiles = node.array("quantiles_", ndim=(2,), kinds="f")
    references = node.array("references_", ndim=(1,), kinds="f")
    q, d = quantiles.shape
    if q < 1 or d < 1 or references.shape != (q,) or q * d > MAX_TABLE:
        raise node.fail(
            f"quantiles_ has shape {quantiles.shape} and references_ {references.shape}"
        )
    dist = node.get("output_distribution")
    if dist not in ("uniform", "normal"):
        raise node.fail(f"output_distribution is {dist!r}")
    if node.get("ignore_implicit_zeros", False):
        # only sparse input reads it; dense rows are transformed as usual
        pass
    qs = np.ascontiguousarray(quantiles.T, dtype=np.float64)  # (d, q)
    ref = references.astype(np.float64)
    x = qs.reshape(-1)
    y = np.tile(ref, d)
    x2 = np.ascontiguousarray(-qs[:, ::-1]).reshape(-1)
    y2 = np.tile(-ref[::-1], d)
    rule = InterpRule.QUANTILE_NORMAL if dist == "normal" else InterpRule.QUANTILE_UNIFORM
    n = node.n_features(d)
    X = b.input(node, X, n)
    op = Interp(
        rule=int(rule), x=x, y=y, x2=x2, y2=y2, offsets=np.arange(0, (d + 1) * q, q, dtype=np.int64)
    )
    cols = b.add(node, op, X, d, accept=Accept.NAN)
    return _transformer(node, cols, n)


# ---- Normalizer --------------------------------------------------------------------

_NORMS = {"l1": RowNormRule.L1, "l2": RowNormRule.L2, "max": RowNormRule.MAX}


@register("sklearn.preprocessing", "Normalizer")
def build_normalizer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    norm = node.get("norm", "l2")
    if norm not in _NORMS:
        raise node.fail(f"norm is {norm!r}")
    n = node.integer("n_features_in_")
    if n < 1:
        raise node.fail(f"n_features_in_ is {n}")
    X = b.input(node, X, n)
    cols = b.add(node, RowNorm(rule=int(_NORMS[norm])), X, n, accept=Accept.FINITE)
    return _transformer(node, cols, n, strings=Strings.REFUSE)


# ---- KBinsDiscretizer ----------------------------------------------------------------


def _dtype_param(node: Node, value: Any) -> Optional[int]:
    """KBinsDiscretizer's dtype: None, np.float32 or np.float64 (a type the
    file names, or a dtype)."""
    if value is None:
        return None
    name = (
        value.name
        if isinstance(value, Global)
        else value.name
        if isinstance(value, np.dtype)
        else None
    )
    if name in ("float32", "float64"):
        return np.dtype(name).num
    raise node.fail(f"dtype is {value!r}, expected None, np.float32 or np.float64")


@register("sklearn.preprocessing", "KBinsDiscretizer")
def build_kbins(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    edges = node.get("bin_edges_")
    if not isinstance(edges, np.ndarray) or edges.ndim != 1 or edges.size < 1:
        raise node.fail("bin_edges_ is not a 1-D array of arrays")
    inner = []
    for j, e in enumerate(edges.tolist() if edges.dtype.kind == "O" else list(edges)):
        e = node.array(f"bin_edges_[{j}]", ndim=(1,), kinds="f", value=e)
        if e.size < 2 or np.any(np.isnan(e)) or np.any(np.diff(e) < 0):
            raise node.fail(f"bin_edges_[{j}] is not a sorted array of at least 2 edges")
        inner.append(np.asarray(e[1:-1], dtype=np.float64))
    d = len(inner)
    n_bins = node.array("n_bins_", ndim=(1,), kinds="iu")
    if n_bins.shape != (d,) or np.any(n_bins != [e.size + 1 for e in inner]):
        raise node.fail("n_bins_ does not match bin_edges_")
    if sum(e.size for e in inner) > MAX_TABLE:
        raise node.fail("bin_edges_ is too large")
    encode = node.get("encode")
    if encode not in ("ordinal", "onehot", "onehot-dense"):
        raise node.fail(f"encode is {encode!r}")
    out_type = _dtype_param(node, node.get("dtype", None))
    offsets = np.concatenate([[0], np.cumsum([e.size for e in inner])]).astype(np.int64)
    op = Bins(
        edges=np.concatenate(inner) if d else np.zeros(0),
        offsets=offsets,
        onehot=encode != "ordinal",
        round_f32=out_type == np.dtype(np.float32).num,
        out_type=out_type or 0,
    )
    n = node.n_features(d)
    X = b.input(node, X, n)
    width = int(n_bins.sum()) if encode != "ordinal" else d
    cols = b.add(node, op, X, width, accept=Accept.FINITE)
    return _transformer(node, cols, n)


# ---- KernelCenterer ------------------------------------------------------------------


@register("sklearn.preprocessing", "KernelCenterer")
def build_kernel_centerer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    rows = node.array("K_fit_rows_", ndim=(1,), kinds="f")
    if rows.size < 1:
        raise node.fail("K_fit_rows_ is empty")
    fit_all = float(node.array("K_fit_all_", ndim=(0,), kinds="f"))
    n = node.n_features(rows.size)
    X = b.input(node, X, n)
    op = CenterKernel(fit_rows=rows.astype(np.float64), fit_all=fit_all)
    cols = b.add(node, op, X, n, accept=Accept.FINITE)
    return _transformer(node, cols, n)


# ---- PowerTransformer ----------------------------------------------------------------


@register("sklearn.preprocessing", "PowerTransformer")
def build_power_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    method = node.get("method")
    lambdas = node.array("lambdas_", ndim=(1,), kinds="f")
    d = lambdas.size
    if d < 1:
        raise node.fail("lambdas_ is empty")
    if method == "box-cox":
        rule = PowerRule.BOX_COX
    elif method == "yeo-johnson":
        # scikit-learn's own transform up to 1.7, scipy.stats.yeojohnson from 1.8
        rule = PowerRule.YEO_JOHNSON_EXPM1 if node.version >= (1, 8) else PowerRule.YEO_JOHNSON
    else:
        raise node.fail(f"method is {method!r}")
    n = node.n_features(d)
    X = b.input(node, X, n)
    cols = b.add(
        node, Power(rule=int(rule), lambdas=lambdas.astype(np.float64)), X, d, accept=Accept.NAN
    )
    standardize = node.get("standardize", True)
    if standardize:
        scaled = b.build(node.get("_scaler"), f"{node.where}._scaler", cols)
        cols = scaled.outputs["transform"].cols
    return _transformer(node, cols, n)


# ---- SplineTransformer -----------------------------------------------------------------

_SPLINE_RULES = {
    "continue": "CONTINUE",
    "error": "ERROR",
    "periodic": "PERIODIC",
    "constant": "CONSTANT",
}


@register("sklearn.preprocessing", "SplineTransformer")
def build_spline_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """Each BSpline of bsplines_ is an inert record: its knots (_t, or t in
    older scipy), coefficients (_c, or c) and degree k are read as values;
    scipy is never called."""
    from mlfast._builders.ir import Spline, SplineRule
    from mlfast._core import Record

    extrapolation = node.get("extrapolation", "constant")
    if extrapolation == "linear":
        raise UnsupportedModelError(
            f"{node.where} (SplineTransformer): extrapolation='linear' "
            "is not served yet (it needs the splines' derivatives)"
        )
    if extrapolation not in _SPLINE_RULES:
        raise node.fail(f"extrapolation is {extrapolation!r}")
    if node.get("sparse_output", False):
        pass  # the same numbers, returned dense
    splines = node.get("bsplines_")
    if not isinstance(splines, list) or not splines:
        raise node.fail("bsplines_ is not a list of BSpline")
    degree = node.integer("degree")
    knots: List[np.ndarray] = []
    coef: Optional[np.ndarray] = None
    for i, spl in enumerate(splines):
        state = getattr(spl, "state", None)
        if (
            not isinstance(spl, Record)
            or spl.path != "scipy.interpolate._bsplines.BSpline"
            or not isinstance(state, dict)
        ):
            raise node.fail(f"bsplines_[{i}] is not a scipy BSpline")
        t = node.array(
            f"bsplines_[{i}].t", ndim=(1,), kinds="f", value=state.get("_t", state.get("t"))
        )
        c = node.array(
            f"bsplines_[{i}].c", ndim=(2,), kinds="f", value=state.get("_c", state.get("c"))
        )
        k = state.get("k")
        if k != degree:
            raise node.fail(f"bsplines_[{i}] has degree {k!r}, expected {degree}")
        if knots and t.shape != knots[0].shape:
            raise node.fail(f"bsplines_[{i}] has {t.size} knots, bsplines_[0] {knots[0].size}")
        if coef is None:
            coef = np.ascontiguousarray(c, dtype=np.float64)
        elif c.shape != coef.shape or not np.array_equal(c, coef):
            raise UnsupportedModelError(
                f"{node.where} (SplineTransformer): its splines have "
                "different coefficients, which it never makes"
            )
        knots.append(np.asarray(t, dtype=np.float64))
    d = len(splines)
    if coef is None:
        raise node.fail("bsplines_ is empty")
    include_bias = node.get("include_bias", True)
    missing = node.get("handle_missing", "error")
    n = node.n_features(d)
    X = b.input(node, X, n)
    op = Spline(
        rule=int(SplineRule[_SPLINE_RULES[extrapolation]]),
        degree=degree,
        knots=np.ascontiguousarray(np.stack(knots)),
        coef=coef,
        include_bias=bool(include_bias),
    )
    width = d * (coef.shape[1] - (0 if include_bias else 1))
    cols = b.add(node, op, X, width, accept=Accept.NAN if missing == "zeros" else Accept.FINITE)
    return _transformer(node, cols, n)
