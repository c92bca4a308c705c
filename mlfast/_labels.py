"""Label transformers saved alone: LabelEncoder and MultiLabelBinarizer.

They read y (labels), not X: a 1-D array of labels, or an iterable of sets
of labels, which the graph of a model does not take.  A ``LabelModel`` is
their scikit-learn-shaped face: ``transform`` and ``inverse_transform`` in
numpy, with the operations of ``sklearn/preprocessing/_label.py`` and
``sklearn/utils/_encode.py`` (the same casts, the same searches, the same
messages), from ``classes_`` checked as any value from a file.
"""

from __future__ import annotations

import warnings
from typing import Any, List, Optional

import numpy as np

from mlfast._builders import Node
from mlfast.errors import ModelFormatError

#: class name -> the modules it may come from
LABEL_CLASSES = {
    "LabelEncoder": "sklearn.preprocessing",
    "MultiLabelBinarizer": "sklearn.preprocessing",
}


def is_label_transformer(path: str) -> bool:
    module, _, name = path.rpartition(".")
    home = LABEL_CLASSES.get(name)
    return home is not None and (module == home or module.startswith(home + "."))


def _column(y: Any, dtype: Optional[np.dtype]) -> np.ndarray:
    """column_or_1d(y, dtype=...): a 1-D array (a column (n, 1) raveled)."""
    y = np.asarray(y, dtype=dtype)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please "
            "change the shape of y to (n_samples, ), for example using ravel().",
            UserWarning,
            stacklevel=3,
        )
        return np.ravel(y)
    if y.ndim == 1:
        return y
    if y.ndim == 0:
        return np.ravel(y)
    raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")


def _unknown_numbers(values: np.ndarray, known: np.ndarray) -> list:
    """_check_unknown of a numeric y: the values not among classes_ (NaN
    is known when classes_ holds it)."""
    unique = np.unique(values)
    diff = np.setdiff1d(unique, known, assume_unique=True)
    if known.dtype.kind == "f" and np.isnan(known).any() and diff.dtype.kind == "f":
        diff = diff[~np.isnan(diff)]
    return list(diff)


class LabelModel:
    """A fitted LabelEncoder or MultiLabelBinarizer, read from its file."""

    def __init__(
        self,
        estimator: str,
        classes: np.ndarray,
        sklearn_version: Optional[str],
        source: Optional[str] = None,
    ):
        self.estimator = estimator
        self.classes_ = classes
        self.sklearn_version = sklearn_version
        self.kind = "label_transformer"
        self._source = source

    def __repr__(self) -> str:
        return f"<mlfast.LabelModel {self.estimator} with {len(self.classes_)} classes>"

    def transform(self, y: Any) -> np.ndarray:
        if self.estimator == "LabelEncoder":
            return self._encode(y)
        return self._binarize(y)

    def inverse_transform(self, y: Any) -> Any:
        if self.estimator == "LabelEncoder":
            return self._decode(y)
        return self._unbinarize(y)

    # -- LabelEncoder --------------------------------------------------------------

    def _encode(self, y: Any) -> np.ndarray:
        classes = self.classes_
        y = _column(y, classes.dtype)
        if y.shape[0] == 0:
            return np.asarray([])
        if y.dtype.kind in "OUS":
            # _map_to_integer: the arrays' own elements (np.str_ of a str
            # array), a NaN found by _nandict
            table = {v: i for i, v in enumerate(classes)}
            nan_index = next(
                (i for i, v in enumerate(classes) if isinstance(v, float) and v != v), None
            )
            out = []
            for v in y:
                if v in table:
                    out.append(table[v])
                elif nan_index is not None and isinstance(v, float) and v != v:
                    out.append(nan_index)
                else:
                    raise ValueError(f"y contains previously unseen labels: {KeyError(v)}")
            return np.asarray(out)
        diff = _unknown_numbers(y, classes)
        if diff:
            raise ValueError(f"y contains previously unseen labels: {diff}")
        return np.searchsorted(classes, y)

    def _decode(self, y: Any) -> np.ndarray:
        y = _column(y, None)
        if y.shape[0] == 0:
            return np.asarray([])
        diff = np.setdiff1d(y, np.arange(self.classes_.shape[0]))
        if diff.shape[0]:
            raise ValueError("y contains previously unseen labels: %s" % str(diff))
        return np.take(self.classes_, y, axis=0)

    # -- MultiLabelBinarizer ------------------------------------------------------

    def _binarize(self, y: Any) -> np.ndarray:
        mapping = dict(zip(self.classes_.tolist(), range(len(self.classes_))))
        rows: List[set] = []
        unknown = set()
        for labels in y:
            index = set()
            for label in labels:
                try:
                    index.add(mapping[label])
                except KeyError:
                    unknown.add(label)
            rows.append(index)
        if unknown:
            warnings.warn(
                "unknown class(es) {0} will be ignored".format(sorted(unknown, key=str)),
                UserWarning,
                stacklevel=3,
            )
        out = np.zeros((len(rows), len(mapping)), dtype=int)
        for i, index in enumerate(rows):
            out[i, list(index)] = 1
        return out

    def _unbinarize(self, yt: Any) -> list:
        yt = np.asarray(yt)
        if yt.ndim != 2 or yt.shape[1] != len(self.classes_):
            raise ValueError(
                "Expected indicator for {0} classes, but got {1}".format(
                    len(self.classes_), yt.shape[1] if yt.ndim == 2 else yt.shape
                )
            )
        unexpected = np.setdiff1d(yt, [0, 1])
        if len(unexpected) > 0:
            raise ValueError(
                "Expected only 0s and 1s in label indicator. Also got {0}".format(unexpected)
            )
        return [tuple(self.classes_.compress(indicators)) for indicators in yt]


def build_label_model(record: Any, source: Optional[str]) -> LabelModel:
    """A LabelModel of a LabelEncoder or MultiLabelBinarizer record."""
    node = Node(record, "model")
    classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1:
        raise ModelFormatError(f"model ({node.name}): classes_ must be a 1-D array")
    if classes.dtype.kind not in "biufOUS":
        raise ModelFormatError(
            f"model ({node.name}): classes_ of dtype {classes.dtype} are not labels"
        )
    if node.name == "LabelEncoder" and classes.dtype.kind in "biuf":
        # np.unique's order: distinct, sorted, one NaN last (searchsorted's)
        numbers = (
            classes[:-1]
            if classes.dtype.kind == "f" and classes.size and np.isnan(classes[-1])
            else classes
        )
        if np.isnan(numbers.astype(np.float64)).any() or not np.all(numbers[1:] > numbers[:-1]):
            raise ModelFormatError("model (LabelEncoder): classes_ must be sorted and distinct")
    if node.name == "MultiLabelBinarizer" and node.state.get("sparse_output") not in (
        False,
        None,
        True,
    ):
        raise ModelFormatError("model (MultiLabelBinarizer): sparse_output is not a bool")
    version = node.state.get("_sklearn_version")
    return LabelModel(node.name, classes, version if isinstance(version, str) else None, source)
