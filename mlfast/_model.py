"""Model: the scikit-learn-shaped face of a compiled graph.

Thin by design.  ``predict`` and friends are the C methods of the graph
itself, bound on the instance, so a call goes straight to C; only inputs that
are not ndarrays (lists, DataFrames) come back to Python, through
``_Coerce``, to be turned into arrays and have their column names checked.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Number
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple, Union

import numpy as np

from mlfast import _core
from mlfast._builders import ir
from mlfast._core import Graph
from mlfast._text import Documents, check_text, is_sparse, pack_sparse, sparse_route

_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
    "predict_joint_log_proba",
)


class _Method:
    """A Model method as the class shows it: the documented signature for
    help() and inspect.signature; on an instance whose estimator lacks the
    method, AttributeError.  (An instance whose estimator has it holds the C
    method in its __dict__, which a non-data descriptor does not shadow.)"""

    def __init__(self, fn: Any):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return self.fn
        raise AttributeError(f"This {obj.estimator} model has no attribute {self.name!r}")


def _column_names(X: Any) -> Optional[np.ndarray]:
    """String column names of a DataFrame-like, as scikit-learn reads them."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "dtypes"):
        return None
    names = np.asarray(columns, dtype=object)
    if names.size and all(isinstance(n, str) for n in names):
        return names
    return None


def _feature_name_error(fitted: np.ndarray, given: np.ndarray) -> ValueError:
    """scikit-learn's message for DataFrame columns that differ from fit's."""
    fitted_set, given_set = set(fitted.tolist()), set(given.tolist())
    unexpected = sorted(given_set - fitted_set)
    missing = sorted(fitted_set - given_set)

    def listing(names: List[Any]) -> str:
        out = ""
        for i, name in enumerate(names):
            if i >= 5:
                out += "- ...\n"
                break
            out += f"- {name}\n"
        return out

    message = "The feature names should match those that were passed during fit.\n"
    if unexpected:
        message += "Feature names unseen at fit time:\n" + listing(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    return ValueError(message)


@dataclass
class Spec:
    """Everything a Model is made of: its graph and what describes it.
    Plain data: it is what a pickled Model carries."""

    n_features: int
    nodes: List[ir.Node]
    outputs: Dict[str, ir.Output]
    estimator: str
    kind: str
    feature_names_in: Optional[np.ndarray] = None
    first_name: str = ""
    strings: int = ir.Strings.CONVERT
    string_prefix: Optional[str] = None
    sklearn_version: Optional[str] = None
    warn_name: Optional[str] = None
    names_required: Optional[np.ndarray] = None
    # the input columns read as keys (categories), one key slot each
    key_columns: Optional[np.ndarray] = None
    # a text model: how its vectorizer reads the documents (mlfast/_text.py)
    text: Optional[Dict[str, Any]] = None
    # input columns of documents, each with how its vectorizer reads them:
    # [[column, text], ...] (a ColumnTransformer's text branches)
    text_columns: Optional[List[Any]] = None
    # a DictVectorizer first: {"features": [...], "separator": str,
    # "dtype": str}, dicts made into rows before the graph
    dict_input: Optional[Dict[str, Any]] = None
    # a FeatureHasher first: {"n_features": int, "input_type": str,
    # "alternate_sign": bool, "dtype": str}
    hash_input: Optional[Dict[str, Any]] = None

    @classmethod
    def from_built(cls, built: ir.Built, graph: ir.GraphBuilder) -> "Spec":
        outputs = {m: o.output() for m, o in built.outputs.items()}
        nodes, outputs = graph.finish(outputs)
        keys = graph.key_columns
        return cls(
            int(graph.n_features or built.n_features_in),
            nodes,
            outputs,
            built.name,
            built.kind,
            built.feature_names_in,
            built.first_name,
            int(built.strings),
            built.string_prefix,
            built.sklearn_version,
            built.warn_name,
            built.names_required,
            keys if keys is not None and keys.size else None,
            None if graph.text is None else check_text(graph.text),
            [[c, check_text(t)] for c, t in sorted(graph.text_columns.items())] or None,
            graph.dict_input,
            graph.hash_input,
        )

    def state(self) -> Dict[str, Any]:
        meta = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("nodes", "outputs")
        }
        return {
            "format": STATE_FORMAT,
            "meta": meta,
            "nodes": [n.state() for n in self.nodes],
            "outputs": {m: o.state() for m, o in self.outputs.items()},
        }


#: the version of Spec.state(); a Model pickled with another is refused
STATE_FORMAT = 1


def _unknown_message(
    name: str, column: int, values: Any, known: List[Any], nan: Optional[Tuple[Any, ...]] = None
) -> str:
    """scikit-learn's message for unknown categories (_BaseEncoder._transform),
    the categories listed as _check_unknown lists them: sorted for a numeric
    column, in set order (Python's, as scikit-learn's own) otherwise.  With
    nan, (the first such column's dtype, every column) of a NaN refused
    before any lookup: MissingIndicator's error_on_new, or the check_array of
    an encoder whose version took no NaN."""
    if nan is not None:
        dtype, columns = nan
        if name == "MissingIndicator":
            return (
                f"The features {np.array(columns)} have missing values in transform but "
                "have no missing values in fit."
            )
        if dtype == "object":
            return "Input contains NaN"
        return f"Input contains NaN, infinity or a value too large for dtype('{dtype}')."
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        known_arr = np.array([k for k in known if isinstance(k, (int, float))], dtype=np.float64)
        unique = np.unique(values)
        diff = unique[~np.isin(unique, known_arr)]
        if np.isnan(known_arr).any() and diff.dtype.kind == "f":
            diff = diff[~np.isnan(diff)]
        listed = list(diff)
    else:

        def missing_of(items: Set[Any]) -> Tuple[Set[Any], bool, bool]:
            found = {v for v in items if v is None or _is_nan(v)}
            return items - found, any(v is None for v in found), any(_is_nan(v) for v in found)

        # set() of the array iterates its elements, as scikit-learn's does
        values_set, v_none, v_nan = missing_of(set(values))
        uniques_set, k_none, k_nan = missing_of(set(known))
        listed = list(values_set - uniques_set)
        if v_none and not k_none:
            listed.append(None)
        if v_nan and not k_nan:
            listed.append(np.nan)
    return f"Found unknown categories {listed} in column {column} during transform"


def _is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and v != v


def _column_array(values: Any) -> np.ndarray:
    """One DataFrame column's values as scikit-learn's check_array reads
    them: numpy dtypes as they are, pandas' nullable numbers and booleans as
    float64 with NaN for NA, strings and categories as numpy arrays (object
    for strings)."""
    if type(values) is np.ndarray:
        return values
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return np.asarray(values)
    kind = getattr(dtype, "kind", "O")
    if kind in "biuf" and getattr(dtype, "name", "") != "category":
        # Int64, Float64, boolean (and their pyarrow twins): NA is NaN
        converted: np.ndarray = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return converted
    return np.asarray(values)


def _dict_rows(spec: Dict[str, Any], vocab: Dict[str, int], X: Any) -> np.ndarray:
    """DictVectorizer.transform, dense: a str value sets feature
    'name<separator>value' to 1, a number (or None, NaN) feature 'name' to
    it, an iterable of str each 'name<separator>item' to 1; features not
    seen at fit are ignored, one set twice is summed (csr_matrix.toarray)."""
    sep = spec["separator"]
    dtype = np.dtype(spec["dtype"]).type
    rows = [X] if isinstance(X, Mapping) else X
    if isinstance(rows, np.ndarray) and rows.dtype.kind != "O":
        raise TypeError(
            "DictVectorizer transforms dicts (a mapping or an iterable of "
            f"mappings), not an array of {rows.dtype}"
        )
    out = np.zeros((len(rows), len(vocab)), dtype=dtype)
    for i, x in enumerate(rows):
        for f, v in x.items():
            if isinstance(v, str):
                j = vocab.get(f"{f}{sep}{v}")
                if j is not None:
                    out[i, j] += dtype(1)
            elif isinstance(v, Number) or v is None:
                j = vocab.get(f)
                if j is not None:
                    out[i, j] += dtype(v)
            elif not spec["iterables"]:
                # before 0.24 any other value was the feature's own value
                j = vocab.get(f)
                if j is not None:
                    out[i, j] += dtype(v)
            elif not isinstance(v, Mapping) and isinstance(v, Iterable):
                for vv in v:
                    if not isinstance(vv, str):
                        raise TypeError(
                            f"Unsupported type {type(vv)} in iterable value. "
                            "Only iterables of string are supported."
                        )
                    j = vocab.get(f"{f}{sep}{vv}")
                    if j is not None:
                        out[i, j] += dtype(1)
            else:
                raise TypeError(
                    f"Unsupported type {type(v)} in iterable value. "
                    "Only iterables of string are supported."
                )
    return out


def murmurhash3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 (x86, 32 bits) of bytes, as a signed int: the hash
    scikit-learn's FeatureHasher and murmurhash3_32 compute."""
    mask = 0xFFFFFFFF
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & mask
    n = len(data)
    end = n - n % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    tail = data[end:]
    if len(tail) == 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def _hashed_rows(spec: Dict[str, Any], X: Any) -> np.ndarray:
    """FeatureHasher.transform, dense (sklearn/feature_extraction/
    _hashing_fast.pyx): 'name=value' for a str value (then 1), a zero value
    skipped, the column abs(h) % n_features, the sign of h when
    alternate_sign, values of one column summed."""
    n_features, kind, alternate = spec["n_features"], spec["input_type"], spec["alternate_sign"]
    dtype = np.dtype(spec["dtype"])
    if kind == "string" and isinstance(X, (list, tuple)) and X and isinstance(X[0], str):
        raise ValueError(
            "Samples can not be a single string. The input must be an iterable "
            "over iterables of strings."
        )
    rows = list(X)
    if not rows:
        raise ValueError("Cannot vectorize empty sequence.")
    out = np.zeros((len(rows), n_features), dtype=dtype)
    for i, x in enumerate(rows):
        pairs = x.items() if kind == "dict" else ((f, 1) for f in x) if kind == "string" else x
        for f, v in pairs:
            if isinstance(v, str):
                f = f"{f}={v}"
                value = 1.0
            elif isinstance(v, (int, float, np.number)) and not isinstance(v, complex):
                value = float(v)
            else:
                # the Cython assignment to a double, in its words
                raise TypeError(f"must be real number, not {type(v).__name__}")
            if value == 0:
                continue
            if isinstance(f, str):
                f = f.encode("utf-8")
            elif not isinstance(f, bytes):
                raise TypeError("feature names must be strings")
            h = murmurhash3_32(f)
            j = (
                (2147483647 - (n_features - 1)) % n_features
                if h == -2147483648
                else abs(h) % n_features
            )
            if alternate and h < 0:
                value = -value
            out[i, j] += dtype.type(value)
    return out


def _foreign_frame(X: Any) -> Optional[Tuple[np.ndarray, List[np.ndarray]]]:
    """(column names, columns) of a polars DataFrame or a pyarrow Table, each
    column a 1-D array as scikit-learn reads it (numbers with nulls as
    float NaN, strings as objects with None); None for anything else."""
    module = type(X).__module__
    if module.startswith("polars") and hasattr(X, "get_columns"):
        columns = [np.asarray(s.to_numpy()) for s in X.get_columns()]
        names = list(X.columns)
    elif module.startswith("pyarrow") and hasattr(X, "column_names") and hasattr(X, "num_columns"):
        columns = [np.asarray(X.column(i).to_numpy()) for i in range(X.num_columns)]
        names = list(X.column_names)
    else:
        return None
    if not columns or not all(isinstance(n, str) for n in names):
        return None
    # a numpy string column (polars' to_numpy of a column without nulls)
    columns = [c.astype(object) if c.dtype.kind in "US" else c for c in columns]
    return np.asarray(names, dtype=object), columns


def _frame_columns(X: Any) -> List[np.ndarray]:
    """The columns of a DataFrame, each as its own array, read where pandas
    keeps them (a row of a 2-D block is a view); Series only when pandas
    lays its data out otherwise."""
    n = X.shape[1]
    try:
        out: List[Any] = [None] * n
        for block in X._mgr.blocks:
            values = block.values
            locs = block.mgr_locs.as_array.tolist()
            if type(values) is np.ndarray and values.ndim == 2:
                for i, loc in enumerate(locs):
                    out[loc] = values[i]
            else:
                out[locs[0]] = _column_array(values)
        if all(o is not None for o in out):
            return out
    except (AttributeError, TypeError, IndexError, ValueError):
        pass
    return [_column_array(X.iloc[:, j].array) for j in range(n)]


class _Coerce:
    """Turns what is not an ndarray (lists, DataFrames) into one, as
    check_array reads it, checking DataFrame columns against the names seen
    at fit.  It holds the Spec, not the Model: the Graph keeps it, and a
    Model that the Graph referred back to would live until the garbage
    collector ran."""

    __slots__ = ("spec", "names_warning", "fitted_list", "vocab")

    def __init__(self, spec: "Spec", names_warning: Optional[str]):
        self.spec = spec
        self.names_warning = names_warning
        self.vocab: Optional[Dict[str, int]] = (
            None
            if spec.dict_input is None
            else {f: i for i, f in enumerate(spec.dict_input["features"])}
        )
        self.fitted_list = None if spec.feature_names_in is None else spec.feature_names_in.tolist()

    def __call__(self, X: Any) -> Any:
        spec = self.spec
        if type(X) is _Columns:
            return list(X)  # columns made ready (documents packed)
        if spec.dict_input is not None and self.vocab is not None:
            return _dict_rows(spec.dict_input, self.vocab, X)
        if spec.hash_input is not None:
            return _hashed_rows(spec.hash_input, X)
        foreign = _foreign_frame(X)
        if foreign is not None:
            return self._foreign(*foreign)
        if spec.key_columns is not None:
            return self._table(X)
        return self._numbers(X)

    def _foreign(self, names: np.ndarray, columns: List[np.ndarray]) -> Any:
        """A polars DataFrame or a pyarrow Table: its columns by name, as
        scikit-learn reads a DataFrame (names checked, or selected by a
        ColumnTransformer fitted on names)."""
        spec = self.spec
        fitted, required = spec.feature_names_in, spec.names_required
        by_name = dict(zip(names.tolist(), columns))
        if fitted is not None and required is not None:
            missing = set(required.tolist()) - set(by_name)
            if missing:
                raise ValueError(f"columns are missing: {missing}")
            columns = [
                by_name[n] if n in by_name else np.full(len(columns[0]), np.nan)
                for n in fitted.tolist()
            ]
        elif fitted is None:
            warnings.warn(
                f"X has feature names, but {spec.first_name} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )
        elif names.shape != fitted.shape or not np.array_equal(names, fitted):
            raise _feature_name_error(fitted, names)
        if spec.key_columns is not None:
            return columns
        if all(c.dtype.kind in "biuf" for c in columns):
            return np.column_stack(columns)
        out = np.empty((len(columns[0]), len(columns)), dtype=object)
        for j, c in enumerate(columns):
            out[:, j] = c
        return out

    def _records(self, X: Any) -> List[np.ndarray]:
        """A dict (one row) or a list of dicts, keyed by column name."""
        spec = self.spec
        rows = [X] if isinstance(X, dict) else X
        fitted = spec.feature_names_in
        if fitted is None:
            raise ValueError(
                f"{spec.first_name} was fitted without feature names: give "
                "rows as lists or arrays, not dicts keyed by name"
            )
        names = fitted.tolist()
        allowed = set(names) if spec.names_required is None else set(names)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise TypeError(f"row {i} is a {type(row).__name__}, not a dict like row 0")
            missing = [
                n
                for n in (
                    spec.names_required.tolist() if spec.names_required is not None else names
                )
                if n not in row
            ]
            extra = [k for k in row if k not in allowed]
            if missing and spec.names_required is not None:
                # a ColumnTransformer selecting by name, in its words
                raise ValueError(f"columns are missing: {set(missing)}")
            if missing or (extra and spec.names_required is None):
                raise _feature_name_error(
                    fitted, np.asarray([k for k in names if k in row] + extra, dtype=object)
                )
        columns = []
        for name in names:
            col = np.empty(len(rows), dtype=object)
            for i, row in enumerate(rows):
                col[i] = row.get(name, np.nan)
            columns.append(col)
        return columns

    def _table(self, X: Any) -> Any:
        """Columns, one 1-D array each, as scikit-learn's encoders read a
        DataFrame (column by column, never one 2-D object array)."""
        spec = self.spec
        if (
            self.fitted_list is not None
            and hasattr(X, "_mgr")
            and X.columns.tolist() == self.fitted_list
        ):
            # the usual case first: a DataFrame of fit()'s columns, in order
            return _frame_columns(X)
        if isinstance(X, dict) or (isinstance(X, list) and X and isinstance(X[0], dict)):
            return self._records(X)
        if hasattr(X, "dtypes") and hasattr(X, "columns"):
            fitted = spec.feature_names_in
            names = _column_names(X)
            if names is not None and fitted is not None and spec.names_required is not None:
                missing = set(spec.names_required.tolist()) - set(names.tolist())
                if missing:
                    raise ValueError(f"columns are missing: {missing}")
                X = X.reindex(columns=list(fitted))
                names = fitted
            if names is not None:
                if fitted is None:
                    warnings.warn(
                        f"X has feature names, but {spec.first_name} was fitted "
                        "without feature names",
                        UserWarning,
                        stacklevel=3,
                    )
                elif names.shape != fitted.shape or not np.array_equal(names, fitted):
                    raise _feature_name_error(fitted, names)
            elif self.names_warning is not None:
                warnings.warn(self.names_warning, UserWarning, stacklevel=3)
            return _frame_columns(X)
        if self.names_warning is not None:
            warnings.warn(self.names_warning, UserWarning, stacklevel=3)
        if spec.strings == ir.Strings.IMPUTER:
            # check_array(dtype=None) of an old SimpleImputer: numpy's own
            # dtype, a str array when every value is text (refused in C)
            return np.asarray(X)
        # a list of rows keeps its Python values (check_array(dtype=object))
        return np.asarray(X, dtype=object)

    def _numbers(self, X: Any) -> np.ndarray:
        spec = self.spec
        names = _column_names(X)
        fitted = spec.feature_names_in
        required = spec.names_required
        if names is not None and fitted is not None and required is not None:
            # a ColumnTransformer fitted on a DataFrame selects its columns
            # by name: any order, extra columns ignored
            missing = set(required.tolist()) - set(names.tolist())
            if missing:
                raise ValueError(f"columns are missing: {missing}")
            X = X.reindex(columns=list(fitted)) if hasattr(X, "reindex") else X[list(fitted)]
            names = fitted
        if names is not None:
            if fitted is None:
                warnings.warn(
                    f"X has feature names, but {spec.first_name} was fitted without feature names",
                    UserWarning,
                    stacklevel=3,
                )
            elif names.shape != fitted.shape or not np.array_equal(names, fitted):
                raise _feature_name_error(fitted, names)
        elif self.names_warning is not None:
            warnings.warn(self.names_warning, UserWarning, stacklevel=3)
        if names is not None or hasattr(X, "dtypes"):
            dtypes = list(getattr(X, "dtypes", []))
            if dtypes and not all(isinstance(d, np.dtype) for d in dtypes):
                # pandas extension dtypes (nullable Int64, Float64, boolean):
                # converted early, pd.NA becoming NaN, as scikit-learn does
                try:
                    converted: np.ndarray = X.to_numpy(dtype=np.float64, na_value=np.nan)
                    return converted
                except (TypeError, ValueError):
                    pass
            return np.asarray(X)
        if spec.strings == ir.Strings.CONVERT:
            # check_array's np.asarray(X, dtype=float64): Python's float()
            # names the value it cannot read
            try:
                return np.asarray(X, dtype=np.float64)
            except ValueError as exc:
                if spec.string_prefix and "could not convert" in str(exc):
                    raise ValueError(f"{spec.string_prefix}{exc}") from None
                raise
            except TypeError:
                pass
        return np.asarray(X)


class _Columns(List[np.ndarray]):
    """Columns made ready by a model whose input has columns of documents:
    the graph's coerce passes them as they are."""


class _TextColumns:
    """A model reading some input columns as documents (a ColumnTransformer
    with a vectorizer branch): X is read column by column as the model's
    coerce reads it, then each column of documents is packed."""

    __slots__ = ("coerce", "documents", "n_features")

    def __init__(self, coerce: Any, text_columns: List[Any], n_features: int):
        self.coerce = coerce
        self.documents = [(c, Documents(t)) for c, t in text_columns]
        self.n_features = n_features

    def __call__(self, X: Any) -> Any:
        """The columns made ready, or X as it is when the graph must refuse it."""
        if isinstance(X, np.ndarray):
            if X.ndim != 2:
                return X  # the graph says what is wrong with it
            if self.coerce.names_warning is not None:
                warnings.warn(self.coerce.names_warning, UserWarning, stacklevel=3)
            columns = [X[:, j] for j in range(X.shape[1])]
        else:
            columns = self.coerce(X)
            if isinstance(columns, np.ndarray):
                if columns.ndim != 2:
                    return columns
                columns = [columns[:, j] for j in range(columns.shape[1])]
        if len(columns) != self.n_features:
            return X  # the graph says how many columns it takes
        out = _Columns(columns)
        for c, documents in self.documents:
            out[c] = documents(columns[c])[:, 0]
        return out


class Model:
    """A fitted scikit-learn estimator or pipeline, compiled to mlfast's C
    engine.  Made by :func:`mlfast.load`, :func:`mlfast.loads` and
    :func:`mlfast.compile`; it answers like the estimator it came from."""

    # set in __init__ where the estimator has them, as scikit-learn's are
    n_features_in_: int
    feature_names_in_: np.ndarray
    #: one array of labels; a list of them for a multi-output classifier
    classes_: Union[np.ndarray, List[np.ndarray]]
    #: what an MLflow model directory's MLmodel says (run_id, flavour,
    #: signature), for a model loaded from one; else None
    mlflow: Any = None

    def __init__(self, spec: Spec, source: Optional[str] = None):
        self._spec = spec
        self._source = source
        names_warning = None
        if spec.feature_names_in is not None:
            names_warning = (
                f"X does not have valid feature names, but "
                f"{spec.warn_name or spec.first_name} was fitted with feature names"
            )
        self._graph = Graph(
            spec.n_features,
            spec.nodes,
            spec.outputs,
            coerce=_Coerce(spec, names_warning),
            strings=int(spec.strings),
            string_prefix=spec.string_prefix,
            names_warning=names_warning,
            first_name=spec.first_name or None,
            key_columns=spec.key_columns,
            explain=_unknown_message,
            column_names=None
            if spec.feature_names_in is None
            else tuple(spec.feature_names_in.tolist()),
        )
        route = sparse_route(spec)
        if route is not None:
            # scipy.sparse X: the same model over packed rows
            sparse_graph = Graph(
                1,
                route[0],
                route[1],
                strings=int(spec.strings),
                string_prefix=spec.string_prefix,
                names_warning=names_warning,
                first_name=spec.first_name or None,
                key_columns=np.zeros(1, np.int64),
            )
            self._graph.route = _SparseRoute(sparse_graph, spec.n_features, bool(route[2]))
        for node, made in zip(spec.nodes, self._graph.made[1:]):
            if made is not None and isinstance(node.op, ir.Forest):
                # keep a forest only in its packed layout: the per-node
                # arrays the builder made are dropped, so a forest costs its
                # node data
                op = node.op
                node.op = ir.PackedForest(
                    n_features=op.n_features,
                    n_raw=op.n_raw,
                    packed_nodes=made[0],
                    packed_roots=made[1],
                    packed_values=made[2],
                    column=op.column,
                    cats=op.cats,
                    init=op.init,
                    average=op.average,
                    sum_f32=op.sum_f32,
                    cat_words=op.cat_words,
                    cat_offsets=op.cat_offsets,
                    cat_rule=op.cat_rule,
                )
        # a list first: tuple(generator) over-allocates and shrinks, which leaves
        # one tuple per model in CPython's free list until it fills (2,000)
        methods = tuple([m for m in _METHODS if m in spec.outputs])
        documents: Any = Documents(spec.text) if spec.text is not None else None
        if spec.text_columns is not None:
            documents = _TextColumns(
                _Coerce(spec, names_warning), spec.text_columns, spec.n_features
            )
        for name in methods:
            out = spec.outputs[name]
            method = getattr(self._graph, name)
            if out.split is not None or out.column_classes is not None:
                method = _multi_output(method, out)
            if documents is not None:
                method = _reading_documents(method, documents)
            setattr(self, name, method)
        self._methods = methods
        if spec.text is None:
            # a vectorizer reads documents, not columns: it has no n_features_in_
            self.n_features_in_ = spec.n_features
        if spec.feature_names_in is not None:
            self.feature_names_in_ = spec.feature_names_in
        predict = spec.outputs.get("predict")
        if predict is not None and spec.kind == "classifier":
            if predict.estimator_classes is not None:
                self.classes_ = predict.estimator_classes
            elif predict.classes is not None:
                self.classes_ = predict.classes
            elif predict.column_classes is not None:
                self.classes_ = list(predict.column_classes)

    # -- description -------------------------------------------------------------

    @property
    def _first_name(self) -> str:
        return self._spec.first_name

    @property
    def estimator(self) -> str:
        """The estimator, e.g. 'Pipeline(StandardScaler -> LogisticRegression)'."""
        return self._spec.estimator

    @property
    def kind(self) -> str:
        """'classifier', 'regressor', 'transformer' or 'outlier_detector'."""
        return self._spec.kind

    @property
    def sklearn_version(self) -> Optional[str]:
        """The scikit-learn version that saved the model, if the file says."""
        return self._spec.sklearn_version

    @property
    def nbytes(self) -> int:
        """Bytes of parameter data the compiled model holds."""
        total = sum(a.nbytes for node in self._spec.nodes for a in node.op.arrays())
        if self._spec.text is not None:
            # the vocabulary's terms and columns
            total += sum(v.nbytes for v in self._spec.text.values() if isinstance(v, np.ndarray))
        for out in self._spec.outputs.values():
            for classes in ([out.classes] if out.classes is not None else []) + list(
                out.column_classes or []
            ):
                total += classes.nbytes
        return total

    def __dir__(self) -> List[str]:
        hidden = set(_METHODS) - set(self._methods)
        return [n for n in super().__dir__() if n not in hidden]

    # The methods.  An instance binds the graph's C method of each method its
    # estimator has in its own __dict__ (a call goes straight to C); these
    # class attributes document them (help(), inspect.signature, type
    # checkers) and, for a method the estimator lacks, raise AttributeError
    # as scikit-learn does, so hasattr() answers as for the estimator.
    if TYPE_CHECKING:

        def predict(self, X: Any) -> np.ndarray: ...
        def predict_proba(self, X: Any) -> np.ndarray: ...
        def predict_log_proba(self, X: Any) -> np.ndarray: ...
        def decision_function(self, X: Any) -> np.ndarray: ...
        def transform(self, X: Any) -> np.ndarray: ...
        def score_samples(self, X: Any) -> np.ndarray: ...
        def predict_joint_log_proba(self, X: Any) -> np.ndarray: ...
    else:

        @_Method
        def predict(self, X):
            """Labels (classifiers, outlier detectors: -1 or 1) or values
            (regressors) for the rows of X: an array of any real dtype and
            layout, a list of rows, a DataFrame; a 1-D array is one row."""

        @_Method
        def predict_proba(self, X):
            """Class probabilities, one column per class of ``classes_``."""

        @_Method
        def predict_log_proba(self, X):
            """The logarithm of predict_proba, as the estimator computes it."""

        @_Method
        def decision_function(self, X):
            """Raw scores: one column for a binary classifier (returned 1-D),
            one per class otherwise; outlier detectors' shifted scores."""

        @_Method
        def transform(self, X):
            """The transformed rows (a transformer or a pipeline of them)."""

        @_Method
        def score_samples(self, X):
            """Per-row scores (IsolationForest: the opposite of the anomaly
            score)."""

        @_Method
        def predict_joint_log_proba(self, X: Any) -> np.ndarray:
            """Naive Bayes: log P(x, y) for each class of ``classes_``."""

    def _summary(self) -> Dict[str, Any]:
        out = {
            "estimator": self.estimator,
            "kind": self.kind,
            "features": getattr(self, "n_features_in_", None),
        }
        classes = getattr(self, "classes_", None)
        if isinstance(classes, list):
            out["classes"] = [c.tolist() for c in classes]
        elif classes is not None:
            out["classes"] = classes.tolist()
        predict = self._spec.outputs.get("predict")
        if self.kind == "regressor" and predict is not None and not predict.squeeze:
            out["outputs"] = int(predict.slots.size)
        out["methods"] = list(self._methods)
        out["sklearn"] = self.sklearn_version
        out["size"] = _human_bytes(self.nbytes)
        if self._source:
            out["source"] = self._source
        if self.mlflow is not None:
            out["mlflow"] = self.mlflow.summary()
        return out

    def __repr__(self) -> str:
        s = self._summary()
        bits = ["documents" if self._spec.text is not None else f"{s['features']} features"]
        if "classes" in s:
            classes = s["classes"]
            shown = ", ".join(map(repr, classes[:6])) + (", ..." if len(classes) > 6 else "")
            bits.append(f"classes [{shown}]")
        if s["sklearn"]:
            bits.append(f"sklearn {s['sklearn']}")
        bits.append(s["size"])
        if "mlflow" in s:
            mlflow = s["mlflow"]
            run = f" run {mlflow['run_id']}" if mlflow["run_id"] else ""
            inputs = mlflow.get("signature", {}).get("inputs")
            signed = f", signature of {len(inputs)} inputs" if inputs else ""
            bits.append(f"MLflow {mlflow['flavor']} model{run}{signed}")
        return f"<mlfast.Model {s['estimator']} ({s['kind']}): {', '.join(bits)}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<table><caption>mlfast.Model</caption>{rows}</table>"

    # -- pickling: plain data, which mlfast.load reads back safely ----------------

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_from_state, (self._spec.state(), self._source))


def _reading_documents(method: Callable[[Any], Any], documents: Any) -> Callable[[Any], Any]:
    """A text model's method: the documents packed, then the graph."""

    @functools.wraps(method)
    def call(X: Any) -> Any:
        return method(documents(X))

    return call


class _SparseRoute:
    """A model that starts with a linear model reads scipy.sparse X through
    its sparse graph, never densified.  The Graph calls this (in C) for any
    X that is not an ndarray, so an array pays nothing; it is handed the
    dense graph rather than keeping it, so that no cycle holds the graph."""

    __slots__ = ("sparse", "n_features", "coo")

    def __init__(self, sparse: Graph, n_features: int, coo: bool):
        self.sparse = sparse
        self.n_features = n_features
        self.coo = coo

    def __call__(self, dense: Graph, method: str, X: Any) -> Any:
        if not is_sparse(X):
            return NotImplemented
        rows = pack_sparse(X, self.n_features, getattr(dense, method), self.coo)
        return getattr(self.sparse, method)(rows)


def _multi_output(method: Callable[[Any], np.ndarray], out: ir.Output) -> Callable[[Any], Any]:
    """A multi-output answer from what C returns: a list of arrays (each
    output's probabilities), or each column's indices as its own labels."""
    if out.split is not None:
        bounds = np.cumsum(out.split)[:-1]

        def split(X: Any) -> Any:
            parts = np.split(method(X), bounds, axis=1)
            return np.asarray(parts) if out.stacked else parts

        return split
    classes = out.column_classes
    if classes is None:
        raise TypeError("a multi-output answer needs split widths or column classes")

    def labels(X: Any) -> np.ndarray:
        index = method(X).astype(np.intp)
        columns = [c.take(index[:, k], axis=0) for k, c in enumerate(classes)]
        if out.column_dtype is not None:
            result = np.empty(index.shape, dtype=out.column_dtype)
            for k, column in enumerate(columns):
                result[:, k] = column
            return result
        stacked: np.ndarray = np.asarray(columns)
        return np.transpose(stacked)

    return labels


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _from_state(state: Any, source: Any = None) -> Model:
    """A Model from what it pickled (``Model.__reduce__``)."""
    return Model(spec_from_state(state), source if isinstance(source, str) else None)


def spec_from_state(state: Any) -> Spec:
    """The Spec of a pickled Model, every value checked: a file saying it is
    one is as hostile as any other."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a pickled mlfast Model of format {STATE_FORMAT}")
    meta, nodes, outputs = state.get("meta"), state.get("nodes"), state.get("outputs")
    if not isinstance(meta, dict) or not isinstance(nodes, list) or not isinstance(outputs, dict):
        raise ValueError("a pickled Model needs meta, nodes and outputs")
    return Spec(
        n_features=_typed(meta.get("n_features"), int, "n_features"),
        nodes=[_node_from_state(n, i) for i, n in enumerate(nodes)],
        outputs={_typed(m, str, "output name"): _output_from_state(o) for m, o in outputs.items()},
        estimator=_typed(meta.get("estimator"), str, "estimator"),
        kind=_typed(meta.get("kind"), str, "kind"),
        feature_names_in=_names(meta.get("feature_names_in")),
        first_name=_typed(meta.get("first_name"), str, "first_name"),
        strings=_typed(meta.get("strings"), int, "strings"),
        string_prefix=_typed(meta.get("string_prefix"), str, "string_prefix", True),
        sklearn_version=_typed(meta.get("sklearn_version"), str, "sklearn_version", True),
        warn_name=_typed(meta.get("warn_name"), str, "warn_name", True),
        names_required=_names(meta.get("names_required")),
        key_columns=_key_columns(meta.get("key_columns")),
        text=None if meta.get("text") is None else check_text(meta.get("text")),
        text_columns=_text_columns(meta.get("text_columns"), meta.get("n_features")),
        dict_input=_dict_input(meta.get("dict_input")),
        hash_input=_hash_input(meta.get("hash_input")),
    )


def _text_columns(value: Any, n_features: Any) -> Optional[List[Any]]:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > 10_000:
        raise ValueError("text_columns must be a non-empty list of [column, text]")
    out = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError("text_columns holds an item that is not [column, text]")
        column = _typed(item[0], int, "text_columns' column")
        if not 0 <= column < n_features:
            raise ValueError(f"text_columns' column {column} is not an input column")
        out.append([column, check_text(item[1])])
    return out


def _hash_input(value: Any) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"n_features", "input_type", "alternate_sign", "dtype"}
        or not isinstance(value["n_features"], int)
        or not 1 <= value["n_features"] <= 2**31 - 1
        or value["input_type"] not in ("dict", "pair", "string")
        or not isinstance(value["alternate_sign"], bool)
        or value["dtype"] not in ("float64", "float32", "float16", "int64", "int32", "bool")
    ):
        raise ValueError("hash_input must hold n_features, input_type, alternate_sign, dtype")
    return value


def _dict_input(value: Any) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"features", "separator", "dtype", "iterables"}
        or not isinstance(value["iterables"], bool)
        or not isinstance(value["features"], list)
        or not all(isinstance(f, str) for f in value["features"])
        or not isinstance(value["separator"], str)
        or value["dtype"] not in ("float64", "float32", "float16", "int64", "int32", "bool")
    ):
        raise ValueError("dict_input must hold features (str), a separator and a dtype")
    return value


def _key_columns(value: Any) -> Optional[np.ndarray]:
    columns: Optional[np.ndarray] = _array(value, "key_columns", True)
    if columns is not None:
        if columns.ndim != 1 or columns.dtype.kind not in "iu":
            raise ValueError("key_columns must be a 1-D array of column indices")
        columns = np.ascontiguousarray(columns, dtype=np.int64)
    return columns


def _typed(value: Any, kind: type, what: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what} is a {type(value).__name__}, expected {kind.__name__}")
    if isinstance(value, str) and len(value) > 10000:
        raise ValueError(f"{what} is too long")
    return value


def _array(value: Any, what: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{what} is a {type(value).__name__}, expected an array")
    return value


def _names(value: Any) -> Optional[np.ndarray]:
    names: Optional[np.ndarray] = _array(value, "feature_names_in", True)
    if names is not None and (
        names.ndim != 1
        or names.dtype.kind != "O"
        or not all(isinstance(x, str) for x in names.tolist())
    ):
        raise ValueError("feature_names_in must be a 1-D array of str")
    return names


def _column_classes(value: Any) -> Optional[List[np.ndarray]]:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError("column_classes must be a list of arrays")
    return [_classes(c) for c in value]


def _split(value: Any) -> Optional[List[int]]:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError("split must be a list of positive widths")
    return value


def _dtype(value: Any) -> Optional[np.dtype]:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 16:
        raise ValueError("column_dtype must be a dtype string")
    dtype = np.dtype(value)
    if dtype.kind not in "biufUS" and value != "|O":
        raise ValueError(f"column_dtype {value!r} is not a label dtype")
    return dtype


def _classes(value: Any) -> np.ndarray:
    classes: np.ndarray = _array(value, "classes")
    if classes.ndim != 1 or classes.size < 1 or classes.dtype.kind not in "biufUSO":
        raise ValueError("classes must be a non-empty 1-D array of labels")
    return classes


def _field(value: Any, kind: str, optional: bool, what: str) -> Any:
    if kind == "array":
        return _array(value, what, optional)
    if kind == "float":
        return _float(value, what)
    return _typed(value, int if kind == "int" else bool, what)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} is a {type(value).__name__}, expected float")
    return float(value)


def _node_from_state(state: Any, i: int) -> ir.Node:
    if not isinstance(state, dict) or not isinstance(state.get("op"), dict):
        raise ValueError(f"nodes[{i}] is not a node")
    op_state = state["op"]
    kind = op_state.get("op")
    fields = _core.OPS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ValueError(f"nodes[{i}]: unknown op {str(kind)[:40]!r}")
    values = {
        name: _field(op_state.get(name), fkind, bool(optional), f"nodes[{i}].{name}")
        for name, fkind, _dtype, _ndim, optional in fields
    }
    return ir.Node(
        op=ir.op_from_state({"op": kind, **values}),
        inputs=np.require(_array(state.get("inputs"), f"nodes[{i}].inputs"), np.int64, ["C", "A"]),
        n_out=_typed(state.get("n_out"), int, f"nodes[{i}].n_out"),
        name=_typed(state.get("name"), str, f"nodes[{i}].name"),
        accept=_typed(state.get("accept"), int, f"nodes[{i}].accept"),
        cast_f32=_typed(state.get("cast_f32"), bool, f"nodes[{i}].cast_f32"),
        unnamed=_typed(state.get("unnamed"), bool, f"nodes[{i}].unnamed"),
    )


def _output_from_state(state: Any) -> ir.Output:
    if not isinstance(state, dict):
        raise ValueError("an output is not a dict")
    classes = state.get("classes")
    estimator_classes = state.get("estimator_classes")
    return ir.Output(
        slots=np.require(_array(state.get("slots"), "output slots"), np.int64, ["C", "A"]),
        classes=None if classes is None else np.ascontiguousarray(_classes(classes)),
        squeeze=_typed(state.get("squeeze"), bool, "squeeze"),
        split=_split(state.get("split")),
        column_classes=_column_classes(state.get("column_classes")),
        column_dtype=_dtype(state.get("column_dtype")),
        stacked=_typed(state.get("stacked", False), bool, "stacked"),
        estimator_classes=None
        if estimator_classes is None
        else np.ascontiguousarray(_classes(estimator_classes)),
    )
