"""File variants and input layouts for differential tests.

Two families of helpers that any parity test can reuse:

* **file variants** -- the ways a user hands mlfast a fitted estimator: every
  ``joblib.dump`` protocol and compressor, plain ``pickle.dump`` protocols 2-5,
  ``mlfast.compile`` on the live object, ``mlfast.loads`` on bytes and
  ``mlfast.load`` on an open file object.  ``load_variant`` turns
  (estimator, variant) into an ``mlfast.Model``.

* **input layouts** -- the same rows as different arrays: memory orders,
  strided views, dtypes, byte orders, a misaligned buffer, a 1-D row, nested
  lists, a DataFrame.  ``make_layout`` returns what to give mlfast and what to
  give scikit-learn (the oracle), which differ only where mlfast deliberately
  differs (a 1-D array is one sample for mlfast; scikit-learn wants
  ``x.reshape(1, -1)``).

Every name here is meant to appear in a failure message, so it says what the
variant or layout is.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence, Tuple

import numpy as np

import mlfast

# -- file variants ----------------------------------------------------------------

#: joblib.dump(compress=...) arguments, by variant name
JOBLIB_COMPRESS = {
    "joblib-zlib3": 3,  # an int means zlib
    "joblib-zlib-tuple": ("zlib", 3),
    "joblib-gzip": ("gzip", 3),
    "joblib-bz2": ("bz2", 3),
    "joblib-xz": ("xz", 3),
    "joblib-lzma": ("lzma", 3),
    "joblib-lz4": ("lz4", 3),
}

FILE_VARIANTS: Tuple[str, ...] = (
    "joblib",  # the lesson's joblib.dump(model, path)
    "joblib-p2",
    "joblib-p3",
    "joblib-p4",
    "joblib-p5",
    *JOBLIB_COMPRESS,
    "pickle-p2",
    "pickle-p3",
    "pickle-p4",
    "pickle-p5",
    "compile",  # mlfast.compile(estimator), in memory
    "loads-bytes",  # mlfast.loads(open(path).read())
    "load-fileobj",  # mlfast.load(open(path, 'rb'))
    "load-str-path",  # mlfast.load(str(path))
)


def _lz4_available() -> bool:
    try:
        import lz4.frame  # noqa: F401
    except ImportError:
        return False
    return True


def dump_variant(estimator: Any, variant: str, directory: Path) -> Optional[Path]:
    """Writes ``estimator`` as ``variant`` says into ``directory`` and returns
    the file's path (None for ``compile``, which needs no file)."""
    import joblib

    directory = Path(directory)
    path = directory / f"model-{variant}.pkl"
    if variant in ("joblib", "loads-bytes", "load-fileobj", "load-str-path"):
        joblib.dump(estimator, path)
    elif variant.startswith("joblib-p"):
        joblib.dump(estimator, path, protocol=int(variant[len("joblib-p") :]))
    elif variant in JOBLIB_COMPRESS:
        joblib.dump(estimator, path, compress=JOBLIB_COMPRESS[variant])
    elif variant.startswith("pickle-p"):
        with open(path, "wb") as fh:
            pickle.dump(estimator, fh, protocol=int(variant[len("pickle-p") :]))
    elif variant == "compile":
        return None
    else:
        raise ValueError(f"unknown file variant {variant!r}; known: {FILE_VARIANTS}")
    return path


def variant_bytes(estimator: Any, variant: str, directory: Path) -> Optional[bytes]:
    """The bytes of the file ``variant`` writes (None for ``compile``)."""
    path = dump_variant(estimator, variant, directory)
    return None if path is None else path.read_bytes()


def load_variant(estimator: Any, variant: str, directory: Path) -> mlfast.Model:
    """An ``mlfast.Model`` of ``estimator`` obtained the way ``variant`` says."""
    if variant == "compile":
        return mlfast.compile(estimator)
    path = dump_variant(estimator, variant, directory)
    if variant == "loads-bytes":
        return mlfast.loads(path.read_bytes())
    if variant == "load-fileobj":
        with open(path, "rb") as fh:
            return mlfast.load(fh)
    if variant == "load-str-path":
        return mlfast.load(str(path))
    return mlfast.load(path)


def iter_file_variants(
    estimator: Any, directory: Path, variants: Sequence[str] = FILE_VARIANTS
) -> Iterator[Tuple[str, Any]]:
    """Yields (variant_name, path_or_bytes_or_estimator) for each variant:
    a Path for files, bytes for ``loads-bytes``, the estimator itself for
    ``compile``."""
    for variant in variants:
        if variant == "joblib-lz4" and not _lz4_available():
            continue
        if variant == "compile":
            yield variant, estimator
        elif variant == "loads-bytes":
            yield variant, dump_variant(estimator, variant, directory).read_bytes()
        else:
            yield variant, dump_variant(estimator, variant, directory)


# -- input layouts ----------------------------------------------------------------

#: layouts whose values equal the float64 rows exactly (only memory differs)
SAME_VALUE_LAYOUTS: Tuple[str, ...] = (
    "c-f64",
    "fortran",
    "strided-cols",  # X2[:, ::2] of an array twice as wide
    "strided-rows",  # X3[::3] of an array three times as tall
    "negative-stride",  # X[::-1][::-1]-like view with negative strides
    "big-endian",  # '>f8'
    "unaligned",  # float64 at an odd byte offset
    "row-1d",  # one sample as a 1-D array (mlfast only)
    "list",  # nested Python lists
    "dataframe",  # pandas DataFrame (column names when the model has them)
    "dataframe-Float64",  # pandas nullable Float64 columns (np.asarray gives object)
    "object",  # object-dtype ndarray of Python floats
)

#: layouts that change the values' dtype; both sides get the same array
DTYPE_LAYOUTS: Tuple[str, ...] = (
    "f32",
    "f32-fortran",
    "f16",
    "int64",
    "int32",
    "uint8",
    "bool",
)

LAYOUTS: Tuple[str, ...] = SAME_VALUE_LAYOUTS + DTYPE_LAYOUTS


class Layout(NamedTuple):
    name: str
    fast: Any  # what mlfast receives
    reference: Any  # what scikit-learn receives


def _unaligned(X: np.ndarray) -> np.ndarray:
    buf = np.zeros(X.nbytes + 1, dtype=np.uint8)
    out = np.ndarray(X.shape, dtype=X.dtype, buffer=buf.data, offset=1)
    out[...] = X
    return out


def _strided_cols(X: np.ndarray) -> np.ndarray:
    wide = np.full((X.shape[0], 2 * X.shape[1]), -7.5, dtype=X.dtype)
    wide[:, ::2] = X
    return wide[:, ::2]


def _strided_rows(X: np.ndarray) -> np.ndarray:
    tall = np.full((3 * X.shape[0], X.shape[1]), -7.5, dtype=X.dtype)
    tall[::3] = X
    return tall[::3]


def _negative_stride(X: np.ndarray) -> np.ndarray:
    flipped = np.ascontiguousarray(X[::-1, ::-1])
    return flipped[::-1, ::-1]


def make_layout(X: np.ndarray, layout: str, columns: Optional[Sequence[str]] = None) -> Layout:
    """The rows of float64 ``X`` presented as ``layout``.

    ``columns``: the DataFrame's column names for ``dataframe`` (use the
    model's ``feature_names_in_`` when it has them).  Integer and bool
    layouts round or threshold the data first, and both sides get that same
    array.  ``row-1d`` uses the first row only: mlfast gets ``X[0]`` and
    scikit-learn ``X[0].reshape(1, -1)``.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if layout == "c-f64":
        a = X.copy()
    elif layout == "fortran":
        a = np.asfortranarray(X)
        assert not a.flags.c_contiguous or X.shape[0] == 1 or X.shape[1] == 1
    elif layout == "strided-cols":
        a = _strided_cols(X)
    elif layout == "strided-rows":
        a = _strided_rows(X)
    elif layout == "negative-stride":
        a = _negative_stride(X)
    elif layout == "big-endian":
        a = X.astype(">f8")
    elif layout == "unaligned":
        a = _unaligned(X)
        assert not a.flags.aligned, "could not make a misaligned array"
    elif layout == "row-1d":
        return Layout(layout, X[0].copy(), X[0].reshape(1, -1).copy())
    elif layout == "list":
        return Layout(layout, X.tolist(), X.tolist())
    elif layout == "dataframe":
        import pandas as pd

        names = list(columns) if columns is not None else None
        df = pd.DataFrame(X, columns=names)
        return Layout(layout, df, df)
    elif layout == "dataframe-Float64":
        import pandas as pd

        names = list(columns) if columns is not None else None
        df = pd.DataFrame(X, columns=names).astype("Float64")
        return Layout(layout, df, df)
    elif layout == "object":
        a = X.astype(object)
    elif layout == "f32":
        a = X.astype(np.float32)
    elif layout == "f32-fortran":
        a = np.asfortranarray(X.astype(np.float32))
    elif layout == "f16":
        a = X.astype(np.float16)
    elif layout == "int64":
        a = np.rint(X).astype(np.int64)
    elif layout == "int32":
        a = np.rint(X).astype(np.int32)
    elif layout == "uint8":
        a = np.clip(np.rint(np.abs(X)), 0, 255).astype(np.uint8)
    elif layout == "bool":
        a = X > 0
    else:
        raise ValueError(f"unknown layout {layout!r}; known: {LAYOUTS}")
    return Layout(layout, a, a)


def iter_layouts(
    X: np.ndarray, layouts: Sequence[str] = LAYOUTS, columns: Optional[Sequence[str]] = None
) -> Iterator[Layout]:
    for name in layouts:
        yield make_layout(X, name, columns)


def describe_input(x: Any) -> str:
    """A short description of an input for failure messages."""
    if isinstance(x, np.ndarray):
        order = "C" if x.flags.c_contiguous else "F" if x.flags.f_contiguous else "strided"
        return (
            f"ndarray shape={x.shape} dtype={x.dtype.str} order={order} "
            f"strides={x.strides} aligned={x.flags.aligned}"
        )
    if isinstance(x, list):
        return f"list of {len(x)} rows"
    if hasattr(x, "columns"):
        return f"{type(x).__name__} shape={x.shape} columns={list(x.columns)[:8]}"
    return type(x).__name__
