"""MLflow's scoring protocol (``mlflow models serve``) on ``/invocations``.

It shares the route with SageMaker's, as MLflow's own SageMaker and Azure
deployments do; a request is MLflow's when its JSON body holds one of
MLflow's keys (``dataframe_split``, ``dataframe_records``, ``inputs``,
``params``), or any object but the lesson's ``{"features": ...}`` for a
model served from an MLflow directory,
or when it is CSV with a header row for such a model.  The body is read as
MLflow's scoring server reads it: exactly one of the four input keys
(``params`` beside it, accepted), a split or records DataFrame, or TF
Serving's ``instances``/``inputs`` (rows, records, or columns); CSV with a
header.  The signature's columns (``MLmodel``'s ``signature.inputs``) are
enforced as MLflow enforces them: required columns present, extra ones
dropped, values of the column's type (an integer is a double; a number
written as text is not).  The answer is ``{"predictions": [...]}`` of the
method MLflow's pyfunc calls (``predict_fn`` in MLmodel, ``predict`` by
default).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mlfast.serving import codec
from mlfast.serving.errors import InvalidInput
from mlfast.serving.registry import ServedModel

PROTOCOL = "mlflow"
DATAFRAME_SPLIT, DATAFRAME_RECORDS = "dataframe_split", "dataframe_records"
INSTANCES, INPUTS, PARAMS = "instances", "inputs", "params"
INPUT_KEYS = (DATAFRAME_SPLIT, DATAFRAME_RECORDS, INSTANCES, INPUTS)
#: keys no other protocol of /invocations uses
_OWN_KEYS = (DATAFRAME_SPLIT, DATAFRAME_RECORDS, INPUTS, PARAMS)
REQUIRED_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
_METHODS = ("predict", "predict_proba", "predict_log_proba")


def mlflow_info(served: ServedModel) -> Any:
    return getattr(served.model, "mlflow", None)


def claims(data: Any, served: ServedModel) -> bool:
    """Whether a parsed JSON body is an MLflow scoring request."""
    if not isinstance(data, dict):
        return False
    if any(k in data for k in _OWN_KEYS):
        return True
    # a model from an MLflow directory: anything but the lesson's "features"
    # is answered (and refused) as MLflow's server answers it
    return "features" not in data and mlflow_info(served) is not None


def claims_csv(body: bytes, served: ServedModel) -> bool:
    """CSV with a header row, to a model from an MLflow directory."""
    if mlflow_info(served) is None:
        return False
    first = body.lstrip()[:4096].split(b"\n", 1)[0].decode("utf-8", "replace")
    cells = [c.strip() for c in first.split(",")]
    return bool(cells) and not all(codec._number_text(c) for c in cells if c)


# -- reading the body ------------------------------------------------------------------


def _records_from_split(value: Any) -> Tuple[Optional[List[str]], List[Any]]:
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{DATAFRAME_SPLIT} must be an object with 'columns' and 'data', got "
            f"{codec._json_type(value)}"
        )
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise InvalidInput(
            f"{DATAFRAME_SPLIT} has unexpected key(s) {unknown[:5]}: expected "
            "'columns', 'data' and optionally 'index'"
        )
    rows = value.get("data", [])
    columns = value.get("columns")
    if not isinstance(rows, list):
        raise InvalidInput(f"{DATAFRAME_SPLIT}.data must be a list of rows")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput(f"{DATAFRAME_SPLIT}.columns must be a list of column names")
        if len(set(columns)) != len(columns):
            raise InvalidInput(f"{DATAFRAME_SPLIT}.columns names a column twice")
    return columns, rows


class Split:
    """``dataframe_split``'s columns and rows, kept as rows: a table of
    numbers goes to the model as one matrix, without a dict per row."""

    def __init__(self, columns: List[str], rows: List[Any]):
        self.columns = columns
        self.rows = rows

    def records(self) -> List[Dict[str, Any]]:
        return _named_rows(self.columns, self.rows, f"{DATAFRAME_SPLIT}.data")


def _named_rows(columns: List[str], rows: List[Any], where: str) -> List[Dict[str, Any]]:
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            row = [row] if len(columns) == 1 else row
        if not isinstance(row, list) or len(row) != len(columns):
            raise InvalidInput(
                f"{where}[{i}] has {len(row) if isinstance(row, list) else 1} "
                f"values for {len(columns)} columns"
            )
        out.append(dict(zip(columns, row)))
    return out


def _columns_to_records(value: Dict[str, Any], where: str) -> List[Dict[str, Any]]:
    """TF Serving's columnar form: ``{"a": [1, 2], "b": [3, 4]}``."""
    lengths = {len(v) if isinstance(v, list) else 1 for v in value.values()}
    if len(lengths) != 1:
        raise InvalidInput(f"{where}: the columns have different lengths {sorted(lengths)[:5]}")
    n = lengths.pop()
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in value.items()} for i in range(n)]


def read_json(data: Dict[str, Any]) -> Tuple[str, Any, Optional[Dict[str, Any]]]:
    """(format key, rows: records or a list of rows, params) of a body."""
    keys = [k for k in INPUT_KEYS if k in data]
    if len(keys) != 1:
        raise InvalidInput(
            f"{REQUIRED_FORMAT}. Received dictionary with input fields: "
            f"{[str(k)[:40] for k in list(data)[:10]]}"
        )
    key = keys[0]
    params = data.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(
            f"'{PARAMS}' must be an object of parameter names and values, got "
            f"{codec._json_type(params)}"
        )
    value = data[key]
    if key == DATAFRAME_SPLIT:
        columns, rows = _records_from_split(value)
        if columns is None:
            return key, rows, params
        return key, Split(columns, rows), params
    if key == DATAFRAME_RECORDS:
        if not isinstance(value, list):
            raise InvalidInput(
                f"{DATAFRAME_RECORDS} must be a list of records, got {codec._json_type(value)}"
            )
        return key, value, params
    # instances / inputs: rows, records, or columns
    if isinstance(value, dict):
        return key, _columns_to_records(value, key), params
    if not isinstance(value, list):
        raise InvalidInput(
            f"'{key}' must be a list of rows or records, or an object of "
            f"columns, got {codec._json_type(value)}"
        )
    return key, value, params


def read_csv(body: bytes, info: Any) -> List[Dict[str, Any]]:
    """CSV with a header row, as ``pandas.read_csv`` reads it (typed by the
    signature's columns when there is one, else as pandas infers)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"Ensure that input is a valid UTF-8 encoded string. Error: {exc}"
        ) from None
    lines = [r for r in csv.reader(io.StringIO(text)) if r]
    if len(lines) < 1:
        raise InvalidInput("empty CSV body: expected a header row and rows")
    header = [c.strip() for c in lines[0]]
    rows = lines[1:]
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise InvalidInput(
                f"malformed CSV: line {i + 2} has {len(r)} values, the header names {len(header)}"
            )
    types = {c.name: c.type for c in (info.inputs or [])} if info is not None else {}
    columns: List[List[Any]] = []
    for j, name in enumerate(header):
        cells = [r[j] for r in rows]
        kind = types.get(name)
        if kind in ("double", "float"):
            try:
                columns.append([math.nan if c.strip() == "" else float(c) for c in cells])
            except ValueError:
                raise InvalidInput(
                    f"CSV column {name!r} holds a value that is not a number"
                ) from None
        elif kind == "string":
            columns.append(cells)
        else:
            columns.append(codec._csv_cell_value(cells))
    return [{header[j]: columns[j][i] for j in range(len(header))} for i in range(len(rows))]


# -- the signature -----------------------------------------------------------------------


def _check_value(value: Any, kind: str, column: str, i: int) -> Any:
    """A value of a signature column of ``kind``, as MLflow's schema
    enforcement accepts it (converting only where no information is lost)."""
    if value is None:
        return None
    if kind in ("double", "float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind in ("long", "integer"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "string":
        # MLflow passes an object column to a string input unchanged
        if isinstance(value, (str, int, float)):
            return value
    elif kind == "binary":
        if isinstance(value, str):
            return value
    else:
        return value
    raise InvalidInput(
        f"Incompatible input types for column {column!r}: row {i} holds "
        f"{codec.show(value)} ({codec._json_type(value)}), the signature says "
        f"{kind}"
    )


def enforce(records: Sequence[Any], info: Any, where: str) -> List[Dict[str, Any]]:
    """Records holding the signature's columns (required ones present, extra
    ones dropped), each value of its column's type."""
    columns = info.inputs
    names = [c.name for c in columns]
    out = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where}[{i}] is {codec._json_type(record)}: the model's "
                f"signature names its columns ({', '.join(map(repr, names[:5]))}"
                f"{', ...' if len(names) > 5 else ''}); send records or "
                "dataframe_split with columns"
            )
        missing = [c.name for c in columns if c.required and c.name not in record]
        if missing:
            raise InvalidInput(
                f"Model is missing inputs {missing[:10]}"
                + (" ..." if len(missing) > 10 else "")
                + f" ({where}[{i}] has {codec.show(list(record)[:10], 200)})"
            )
        out.append({c.name: _check_value(record.get(c.name), c.type, c.name, i) for c in columns})
    return out


# -- the answer --------------------------------------------------------------------------


def method_name(served: ServedModel) -> str:
    info = mlflow_info(served)
    name = getattr(info, "predict_fn", None) or "predict"
    return name if name in _METHODS else "predict"


def predict(data: Any, served: ServedModel) -> Dict[str, Any]:
    """``{"predictions": ...}`` for a parsed JSON body MLflow's way."""
    key, rows, _params = read_json(data)
    return {"predictions": _run(rows, served, key)}


def predict_csv(body: bytes, served: ServedModel) -> Dict[str, Any]:
    return {"predictions": _run(read_csv(body, mlflow_info(served)), served, "CSV")}


def _matrix_of_split(split: Split, served: ServedModel, info: Any) -> Optional[np.ndarray]:
    """The fast way for ``dataframe_split`` of numbers: the rows as one
    matrix, columns picked in the signature's order.  None when the
    signature has columns of other types (integers must stay integers to be
    checked as MLflow checks them), a column is missing, or the model reads
    categories or names its features in another order: then records."""
    names = info.column_names if info is not None and info.inputs is not None else None
    if (
        names is None
        or served.tables
        or any(c.type not in ("double", "float") for c in info.inputs)
    ):
        return None
    if served.feature_names is not None and [str(n) for n in served.feature_names] != names:
        return None
    if any(n not in split.columns for n in names) or any(
        not isinstance(r, list) or len(r) != len(split.columns) for r in split.rows
    ):
        return None
    X = codec.to_matrix(split.rows, f"{DATAFRAME_SPLIT}.data")
    if X.ndim != 2 or X.shape[1] != len(split.columns):
        return None
    if split.columns == names:
        return X
    return np.ascontiguousarray(X[:, [split.columns.index(n) for n in names]])


def _run(rows: Any, served: ServedModel, where: str) -> Any:
    info = mlflow_info(served)
    if isinstance(rows, Split):
        if not rows.rows:
            raise InvalidInput(f"{where} holds no rows")
        split = _matrix_of_split(rows, served, info)
        if split is not None:
            return _answer(split, served)
        rows = rows.records()
    if not rows:
        raise InvalidInput(f"{where} holds no rows")
    records = isinstance(rows[0], dict)
    if info is not None and info.inputs is not None and info.column_names is not None:
        rows = enforce(rows, info, where) if records else rows
        if not records:
            raise InvalidInput(
                f"{where} holds rows without column names; the model's signature "
                f"names its columns ({', '.join(map(repr, info.column_names[:5]))}"
                f"{', ...' if len(info.column_names) > 5 else ''})"
            )
        names = info.column_names
        if served.feature_names is None and not served.tables:
            X: Any = codec.to_matrix(
                [[np.nan if r[n] is None else r[n] for n in names] for r in rows], where
            )
        else:
            X = codec.rows_from_named(rows, served, where)
    elif records:
        if served.feature_names is None and not served.tables:
            raise InvalidInput(
                f"{where} holds records, but the model was fitted without "
                "feature names and its MLflow signature names no columns: send "
                "rows of numbers"
            )
        X = codec.rows_from_named(rows, served, where)
    else:
        X = codec.to_matrix(rows, where)
    return _answer(X, served)


def _answer(X: Any, served: ServedModel) -> Any:
    method = method_name(served)
    if method == "predict":
        return served.predict(X)
    return served.method(method)(X)
