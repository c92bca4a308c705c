"""Model: the scikit-learn-shaped face of a compiled graph.

Thin by design.  ``predict`` and friends are the C methods of the graph
itself, bound on the instance, so a call goes straight to C; only inputs that
are not ndarrays (lists, DataFrames) come back to Python, through
``_Coerce``, to be turned into arrays and have their column names checked.
"""
from __future__ import annotations

import dataclasses
import html
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from mlfast import _core
from mlfast._builders import ir
from mlfast._core import Graph

_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
            "transform", "score_samples")


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

    def listing(names):
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

    @classmethod
    def from_built(cls, built: ir.Built, graph: ir.GraphBuilder) -> "Spec":
        outputs = {m: o.output() for m, o in built.outputs.items()}
        nodes, outputs = graph.finish(outputs)
        keys = graph.key_columns
        return cls(int(graph.n_features or built.n_features_in), nodes, outputs, built.name,
                   built.kind, built.feature_names_in, built.first_name, int(built.strings),
                   built.string_prefix, built.sklearn_version, built.warn_name,
                   built.names_required, keys if keys is not None and keys.size else None)

    def state(self) -> dict:
        meta = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("nodes", "outputs")}
        return {"format": STATE_FORMAT, "meta": meta,
                "nodes": [n.state() for n in self.nodes],
                "outputs": {m: o.state() for m, o in self.outputs.items()}}


#: the version of Spec.state(); a Model pickled with another is refused
STATE_FORMAT = 1


def _unknown_message(name: str, column: int, values: Any, known: list) -> str:
    """scikit-learn's message for unknown categories (_BaseEncoder._transform),
    the categories listed as _check_unknown lists them: sorted for a numeric
    column, in set order (Python's, as scikit-learn's own) otherwise."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        known_arr = np.array([k for k in known if isinstance(k, (int, float))], dtype=np.float64)
        unique = np.unique(values)
        diff = unique[~np.isin(unique, known_arr)]
        if np.isnan(known_arr).any() and diff.dtype.kind == "f":
            diff = diff[~np.isnan(diff)]
        listed = list(diff)
    else:
        def missing_of(items: set):
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
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values)


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

    __slots__ = ("spec", "names_warning", "fitted_list")

    def __init__(self, spec: "Spec", names_warning: Optional[str]):
        self.spec = spec
        self.names_warning = names_warning
        self.fitted_list = None if spec.feature_names_in is None else \
            spec.feature_names_in.tolist()

    def __call__(self, X: Any) -> Any:
        spec = self.spec
        if spec.key_columns is not None:
            return self._table(X)
        return self._numbers(X)

    def _records(self, X: Any) -> List[np.ndarray]:
        """A dict (one row) or a list of dicts, keyed by column name."""
        spec = self.spec
        rows = [X] if isinstance(X, dict) else X
        fitted = spec.feature_names_in
        if fitted is None:
            raise ValueError(f"{spec.first_name} was fitted without feature names: give "
                             "rows as lists or arrays, not dicts keyed by name")
        names = fitted.tolist()
        allowed = set(names) if spec.names_required is None else set(names)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise TypeError(f"row {i} is a {type(row).__name__}, not a dict like row 0")
            missing = [n for n in (spec.names_required.tolist()
                                   if spec.names_required is not None else names)
                       if n not in row]
            extra = [k for k in row if k not in allowed]
            if missing and spec.names_required is not None:
                # a ColumnTransformer selecting by name, in its words
                raise ValueError(f"columns are missing: {set(missing)}")
            if missing or (extra and spec.names_required is None):
                raise _feature_name_error(fitted, np.asarray(
                    [k for k in names if k in row] + extra, dtype=object))
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
        if self.fitted_list is not None and hasattr(X, "_mgr") and \
                X.columns.tolist() == self.fitted_list:
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
                    warnings.warn(f"X has feature names, but {spec.first_name} was fitted "
                                  "without feature names", UserWarning, stacklevel=3)
                elif names.shape != fitted.shape or not np.array_equal(names, fitted):
                    raise _feature_name_error(fitted, names)
            elif self.names_warning is not None:
                warnings.warn(self.names_warning, UserWarning, stacklevel=3)
            return _frame_columns(X)
        if self.names_warning is not None:
            warnings.warn(self.names_warning, UserWarning, stacklevel=3)
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
                    f"X has feature names, but {spec.first_name} was fitted without "
                    "feature names",
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
                    return X.to_numpy(dtype=np.float64, na_value=np.nan)
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


class Model:
    """A fitted scikit-learn estimator or pipeline, compiled to mlfast's C
    engine.  Made by :func:`mlfast.load`, :func:`mlfast.loads` and
    :func:`mlfast.compile`; it answers like the estimator it came from."""

    #: what an MLflow model directory's MLmodel says (run_id, flavour,
    #: signature), for a model loaded from one; else None
    mlflow: Any = None

    def __init__(self, spec: Spec, source: Optional[str] = None):
        self._spec = spec
        self._source = source
        names_warning = None
        if spec.feature_names_in is not None:
            names_warning = (f"X does not have valid feature names, but "
                             f"{spec.warn_name or spec.first_name} was fitted with feature names")
        self._graph = Graph(
            spec.n_features, spec.nodes, spec.outputs, coerce=_Coerce(spec, names_warning),
            strings=int(spec.strings), string_prefix=spec.string_prefix,
            names_warning=names_warning, first_name=spec.first_name or None,
            key_columns=spec.key_columns, explain=_unknown_message,
            column_names=None if spec.feature_names_in is None else
            tuple(spec.feature_names_in.tolist()))
        for node, made in zip(spec.nodes, self._graph.made[1:]):
            if made is not None and isinstance(node.op, ir.Forest):
                # keep a forest only in its packed layout: the per-node
                # arrays the builder made are dropped, so a forest costs its
                # node data
                op = node.op
                node.op = ir.PackedForest(
                    n_features=op.n_features, n_raw=op.n_raw, packed_nodes=made[0],
                    packed_roots=made[1], packed_values=made[2], column=op.column,
                    cats=op.cats, init=op.init, average=op.average)
        # a list first: tuple(generator) over-allocates and shrinks, which leaves
        # one tuple per model in CPython's free list until it fills (2,000)
        methods = tuple([m for m in _METHODS if m in spec.outputs])
        for name in methods:
            out = spec.outputs[name]
            method = getattr(self._graph, name)
            if out.split is not None or out.column_classes is not None:
                method = _multi_output(method, out)
            setattr(self, name, method)
        self._methods = methods
        self.n_features_in_ = spec.n_features
        if spec.feature_names_in is not None:
            self.feature_names_in_ = spec.feature_names_in
        predict = spec.outputs.get("predict")
        if predict is not None and spec.kind == "classifier":
            if predict.classes is not None:
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
        for out in self._spec.outputs.values():
            for classes in ([out.classes] if out.classes is not None else []) + \
                    list(out.column_classes or []):
                total += classes.nbytes
        return total

    def __dir__(self):
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

    def _summary(self) -> dict:
        out = {
            "estimator": self.estimator,
            "kind": self.kind,
            "features": self.n_features_in_,
        }
        if isinstance(getattr(self, "classes_", None), list):
            out["classes"] = [c.tolist() for c in self.classes_]
        elif hasattr(self, "classes_"):
            out["classes"] = self.classes_.tolist()
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
        bits = [f"{s['features']} features"]
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

    def __reduce__(self):
        return (_from_state, (self._spec.state(), self._source))


def _multi_output(method, out: ir.Output):
    """A multi-output answer from what C returns: a list of arrays (each
    output's probabilities), or each column's indices as its own labels."""
    if out.split is not None:
        bounds = np.cumsum(out.split)[:-1]

        def split(X):
            parts = np.split(method(X), bounds, axis=1)
            return np.asarray(parts) if out.stacked else parts

        return split
    classes = out.column_classes

    def labels(X):
        index = method(X).astype(np.intp)
        columns = [c.take(index[:, k], axis=0) for k, c in enumerate(classes)]
        if out.column_dtype is not None:
            result = np.empty(index.shape, dtype=out.column_dtype)
            for k, column in enumerate(columns):
                result[:, k] = column
            return result
        return np.asarray(columns).T

    return labels


def _human_bytes(n: int) -> str:
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
    if not isinstance(meta, dict) or not isinstance(nodes, list) or \
            not isinstance(outputs, dict):
        raise ValueError("a pickled Model needs meta, nodes and outputs")
    return Spec(
        n_features=_typed(meta.get("n_features"), int, "n_features"),
        nodes=[_node_from_state(n, i) for i, n in enumerate(nodes)],
        outputs={_typed(m, str, "output name"): _output_from_state(o)
                 for m, o in outputs.items()},
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
    )


def _key_columns(value: Any) -> Optional[np.ndarray]:
    columns = _array(value, "key_columns", True)
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
    if kind is str and len(value) > 10000:
        raise ValueError(f"{what} is too long")
    return value


def _array(value: Any, what: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{what} is a {type(value).__name__}, expected an array")
    return value


def _names(value: Any) -> Optional[np.ndarray]:
    names = _array(value, "feature_names_in", True)
    if names is not None and (names.ndim != 1 or names.dtype.kind != "O" or
                              not all(isinstance(x, str) for x in names.tolist())):
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
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
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
    classes = _array(value, "classes")
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
    values = {name: _field(op_state.get(name), fkind, bool(optional), f"nodes[{i}].{name}")
              for name, fkind, _dtype, _ndim, optional in fields}
    return ir.Node(
        op=ir.op_from_state({"op": kind, **values}),
        inputs=np.require(_array(state.get("inputs"), f"nodes[{i}].inputs"), np.int64, "CA"),
        n_out=_typed(state.get("n_out"), int, f"nodes[{i}].n_out"),
        name=_typed(state.get("name"), str, f"nodes[{i}].name"),
        accept=_typed(state.get("accept"), int, f"nodes[{i}].accept"),
        cast_f32=_typed(state.get("cast_f32"), bool, f"nodes[{i}].cast_f32"),
        unnamed=_typed(state.get("unnamed"), bool, f"nodes[{i}].unnamed"))


def _output_from_state(state: Any) -> ir.Output:
    if not isinstance(state, dict):
        raise ValueError("an output is not a dict")
    classes = state.get("classes")
    return ir.Output(
        slots=np.require(_array(state.get("slots"), "output slots"), np.int64, "CA"),
        classes=None if classes is None else np.ascontiguousarray(_classes(classes)),
        squeeze=_typed(state.get("squeeze"), bool, "squeeze"),
        split=_split(state.get("split")),
        column_classes=_column_classes(state.get("column_classes")),
        column_dtype=_dtype(state.get("column_dtype")),
        stacked=_typed(state.get("stacked", False), bool, "stacked"))
