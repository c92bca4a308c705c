"""Linear projections: decompositions, random projections, cross decomposition.

Each is an affine step (centring, scaling) and one or two matrix products,
in the order scikit-learn writes them, over the existing ``affine`` and
``linear`` ops (the product goes to OpenBLAS's dgemm for batches, as numpy's
matmul does).  Nothing is called: the matrices a transform derives at
predict time (FactorAnalysis' ``cov_z``) are derived here from the stored
arrays with numpy.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import (
    Accept,
    Affine,
    Built,
    Cast,
    CastRule,
    Cols,
    Linear,
    Out,
    Strings,
)
from mlfast._builders.mixture import (
    factor_analysis_precision,
    gaussian_log_likelihood,
    pca_precision,
)
from mlfast.errors import UnsupportedModelError

#: the most columns or components a projection may have (a hostile shape
#: must not size a matrix the builder then fills)
MAX_WIDTH = 1 << 20


def _matrix(
    node: Node, key: str, value: Any = None, rows: Optional[int] = None, cols: Optional[int] = None
) -> np.ndarray:
    """A 2-D float attribute as float64, checked against the shape it must have."""
    m = node.array(key, ndim=(2,), kinds="f", value=node.get(key) if value is None else value)
    if m.shape[0] < 1 or m.shape[1] < 1 or max(m.shape) > MAX_WIDTH:
        raise node.fail(f"{key} has shape {m.shape}")
    if rows is not None and m.shape[0] != rows:
        raise node.fail(f"{key} has {m.shape[0]} rows, expected {rows}")
    if cols is not None and m.shape[1] != cols:
        raise node.fail(f"{key} has {m.shape[1]} columns, expected {cols}")
    return m


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _product(
    node: Node,
    b: Builders,
    X: Cols,
    coef: np.ndarray,
    intercept: Optional[np.ndarray] = None,
    f32: bool = False,
    accept: int = Accept.ANY,
) -> Cols:
    """X @ coef.T (+ intercept): coef is (n_out, n_in)."""
    k = coef.shape[0]
    icpt = np.zeros(k) if intercept is None else _f64(intercept)
    return b.add(node, Linear(coef=_f64(coef), intercept=icpt, f32=f32), X, k, accept=accept)


def _transformer(
    node: Node, cols: Cols, n: int, extra: Optional[dict] = None, strings: int = Strings.CONVERT
) -> Built:
    outputs = {"transform": Out(cols)}
    if extra:
        outputs.update(extra)
    return Built(
        node.name,
        "transformer",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
    )


def _flag(node: Node, key: str, default: Any) -> Any:
    v = node.get(key, default)
    if isinstance(v, np.bool_):
        v = bool(v)
    return v


# ---- PCA, IncrementalPCA ---------------------------------------------------------


@register("sklearn.decomposition", "PCA", "IncrementalPCA")
def build_pca(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    components = node.array("components_", ndim=(2,), kinds="f")
    k, d = components.shape
    comps = _matrix(node, "components_")
    mean = node.array("mean_", ndim=(1,), kinds="f")
    if mean.shape != (d,):
        raise node.fail(f"mean_ has shape {mean.shape}, expected ({d},)")
    n = node.n_features(d)
    X = b.input(node, X, n)
    f32 = components.dtype == np.float32
    # X @ components_.T, then the centring after the product:
    # - (mean_ @ components_.T), computed as numpy does (in components_' dtype)
    shift = np.asarray(mean.reshape(1, -1) @ components.T).reshape(-1)
    cols = _product(node, b, X, comps, intercept=-_f64(shift), f32=f32, accept=Accept.FINITE)
    whiten = _flag(node, "whiten", False)
    if not isinstance(whiten, bool):
        raise node.fail(f"whiten is {whiten!r}, expected True or False")
    if whiten:
        variance = node.array("explained_variance_", ndim=(1,), kinds="f")
        if variance.shape != (k,):
            raise node.fail(f"explained_variance_ has shape {variance.shape}, expected ({k},)")
        scale = np.sqrt(variance)
        # scale is clipped below at its dtype's eps (near-zero variances of
        # rank-deficient fits would give non-finite components)
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        cols = b.add(node, Affine(div=_f64(scale)), cols, k)
    if node.name != "PCA":
        return _transformer(node, cols, n)
    # PCA (not IncrementalPCA) has score_samples
    precision = pca_precision(node, components, d)
    score = gaussian_log_likelihood(node, b, X, mean, precision)
    return _transformer(node, cols, n, {"score_samples": Out(score, squeeze=True)})


# ---- TruncatedSVD, random projections --------------------------------------------


def _sparse_dense(node: Node, key: str) -> np.ndarray:
    """A scipy.sparse CSR/CSC matrix (or a dense array) as a dense float64
    matrix; the record's arrays are read, never its class."""
    value = node.get(key)
    if isinstance(value, np.ndarray):
        return _matrix(node, key)
    state = getattr(value, "state", None)
    path = getattr(value, "path", "")
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if not path.startswith("scipy.sparse.") or not isinstance(state, dict):
        raise node.fail(f"{key} is a {type(value).__name__}, expected an array or a sparse matrix")
    fmt = path.rsplit(".", 1)[-1][:3]
    if fmt not in ("csr", "csc"):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): {key} is a {path}; mlfast reads CSR and CSC matrices"
        )
    shape = state.get("_shape")
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(isinstance(s, int) and 0 < s <= MAX_WIDTH for s in shape)
    ):
        raise node.fail(f"{key}._shape is {shape!r}")
    data = node.array(f"{key}.data", ndim=(1,), kinds="f", value=state.get("data"))
    indices = node.array(f"{key}.indices", ndim=(1,), kinds="iu", value=state.get("indices"))
    indptr = node.array(f"{key}.indptr", ndim=(1,), kinds="iu", value=state.get("indptr"))
    major, minor = shape if fmt == "csr" else shape[::-1]
    if shape[0] * shape[1] > (1 << 28):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): {key} of shape {shape} is too large to serve"
        )
    indptr = indptr.astype(np.int64)
    if (
        indptr.shape != (major + 1,)
        or indptr[0] != 0
        or np.any(np.diff(indptr) < 0)
        or indptr[-1] != data.size
        or indices.shape != data.shape
        or (indices.size and (indices.min() < 0 or indices.max() >= minor))
    ):
        raise node.fail(f"{key} is not a well-formed {fmt.upper()} matrix of shape {shape}")
    dense = np.zeros((major, minor))
    rows = np.repeat(np.arange(major), np.diff(indptr))
    np.add.at(dense, (rows, indices.astype(np.int64)), data.astype(np.float64))
    return dense if fmt == "csr" else np.ascontiguousarray(dense.T)


@register("sklearn.decomposition", "TruncatedSVD")
def build_truncated_svd(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    components = node.array("components_", ndim=(2,), kinds="f")
    comps = _matrix(node, "components_")
    n = node.n_features(comps.shape[1])
    X = b.input(node, X, n)
    cols = _product(node, b, X, comps, f32=components.dtype == np.float32, accept=Accept.FINITE)
    return _transformer(node, cols, n, strings=Strings.REFUSE)


@register("sklearn.random_projection", "GaussianRandomProjection", "SparseRandomProjection")
def build_random_projection(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    raw = node.get("components_")
    comps = _sparse_dense(node, "components_")
    dtype = (
        raw.dtype
        if isinstance(raw, np.ndarray)
        else getattr(raw, "state", {}).get("data", np.zeros(0)).dtype
    )
    n = node.n_features(comps.shape[1])
    X = b.input(node, X, n)
    cols = _product(node, b, X, comps, f32=dtype == np.float32, accept=Accept.FINITE)
    return _transformer(node, cols, n)


# ---- FastICA, FactorAnalysis -------------------------------------------------------


@register("sklearn.decomposition", "FastICA")
def build_fast_ica(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    comps = _matrix(node, "components_")
    d = comps.shape[1]
    n = node.n_features(d)
    X = b.input(node, X, n)
    whiten = node.get("whiten", True)
    if whiten not in (False, True, "unit-variance", "arbitrary-variance", "warn"):
        raise node.fail(f"whiten is {whiten!r}")
    if whiten is not False:
        # X -= mean_, in X's own dtype (validate_data copied it)
        X = b.add(node, Affine(sub=node.vector("mean_", d)), X, d, accept=Accept.FINITE)
        cols = _product(node, b, X, comps)
    else:
        cols = _product(node, b, X, comps, accept=Accept.FINITE)
    return _transformer(node, cols, n)


@register("sklearn.decomposition", "FactorAnalysis")
def build_factor_analysis(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    comps = _matrix(node, "components_")
    k, d = comps.shape
    n = node.n_features(d)
    noise = node.vector("noise_variance_", d)
    X = b.input(node, X, n)
    # X - mean_ is a new float64 array whatever X's float type
    X = b.add(node, Cast(rule=CastRule.FLOAT64), X, d, accept=Accept.FINITE)
    centred = b.add(node, Affine(sub=node.vector("mean_", d)), X, d)
    wpsi = comps / noise
    with np.errstate(all="ignore"):
        cov_z = np.linalg.inv(np.eye(k) + wpsi @ comps.T)
    if not np.all(np.isfinite(cov_z)):
        raise node.fail("components_ and noise_variance_ give a singular latent covariance")
    tmp = _product(node, b, centred, wpsi)
    cols = _product(node, b, tmp, np.ascontiguousarray(cov_z.T))
    precision = factor_analysis_precision(node, comps, noise)
    score = gaussian_log_likelihood(node, b, X, node.vector("mean_", d), precision)
    return _transformer(
        node, cols, n, {"score_samples": Out(score, squeeze=True)}, strings=Strings.REFUSE
    )


# ---- cross decomposition ------------------------------------------------------------


def _pls_center(node: Node, b: Builders, X: Cols, d: int, scale: bool) -> Cols:
    """X -= _x_mean; X /= _x_std, in place in X's float dtype."""
    mean = node.vector("_x_mean", d)
    std = node.vector("_x_std", d) if scale else None
    return b.add(node, Affine(sub=mean, div=std), X, d, accept=Accept.FINITE)


@register("sklearn.cross_decomposition", "PLSRegression", "PLSCanonical", "CCA", "PLSSVD")
def build_pls(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    svd = node.name == "PLSSVD"
    rotations = _matrix(node, "x_weights_" if svd else "x_rotations_")
    d = rotations.shape[0]
    n = node.n_features(d)
    X = b.input(node, X, n)
    if svd:
        # PLSSVD validates X as float64 and computes (X - _x_mean) / _x_std
        X = b.add(node, Cast(rule=CastRule.FLOAT64), X, d, accept=Accept.FINITE)
    scaled = _pls_center(node, b, X, d, scale=True)
    cols = _product(node, b, scaled, np.ascontiguousarray(rotations.T))
    extra = {}
    if not svd:
        # coef_ is (n_targets, n_features) (1.1-1.2 named it _coef_).  From
        # 1.5 it includes the division by _x_std and predict only centres X:
        # (X - _x_mean) @ coef_.T + intercept_; before, predict scaled X too.
        key = "_coef_" if "_coef_" in node.state else "coef_"
        coef = _matrix(node, key, cols=d)
        t = coef.shape[0]
        if node.version >= (1, 5):
            base = b.add(node, Affine(sub=node.vector("_x_mean", d)), X, d, accept=Accept.FINITE)
        else:
            base = scaled
        pred = _product(node, b, base, coef, intercept=node.vector("intercept_", t))
        one_d = _flag(node, "_predict_1d", False)
        extra["predict"] = Out(pred, squeeze=bool(one_d) and t == 1)
    built = _transformer(node, cols, n, strings=Strings.CONVERT)
    built.outputs.update(extra)
    if not svd:
        built.kind = "regressor"
    return built
