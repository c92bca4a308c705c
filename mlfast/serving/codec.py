"""Request bodies to ndarrays, predictions to the shapes protocols answer.

Decoding goes straight to an ndarray: orjson parses JSON into lists, one
``np.array`` call makes the matrix, and only when that array is not numeric
do we walk the lists to name the bad value.  CSV goes through
``np.loadtxt`` (C); NPY through numpy's header reader and ``np.frombuffer``
(no pickles, no allocation the body does not back).  Tensors of the Open
Inference Protocol (V2) are read from JSON or from Triton's binary tensor
data extension, and written back in either.

A malformed body is ``InvalidInput`` (``serving.errors``), whose message
says what was wrong and where; the service answers it with a 400.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import orjson

from mlfast.serving.errors import InvalidInput
from mlfast.serving.registry import ServedModel

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
NPY_TYPES = ("application/x-npy",)

_NUMERIC_KINDS = "biuf"

# JSON arrays and objects a body may hold: parsed, each costs about 100
# bytes of Python objects (a 16 MB body of "[]," would take 550 MB before
# it could be refused), so past this many rows the batch goes as NPY or
# CSV, or in parts.  Counted only in bodies long enough to hold more.
MAX_JSON_CONTAINERS = 1 << 20

# An escape of a UTF-16 surrogate (\ud800-\udfff) in JSON text: only a pair
# of them is a character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


#: a batch of rows as the model takes them: an array, or (a model that reads
#: categories) objects keyed by feature name
Rows = Union[np.ndarray, List[Dict[str, Any]]]


def parse_json(body: bytes, *, what: str = "request body") -> Any:
    """orjson first; a body it refuses gets a second chance with the standard
    library, which also reads the NaN and Infinity that Python's
    ``json.dumps`` writes (orjson, strictly, does not).  What the second
    parser reads must still be writable as JSON: a lone surrogate escape
    (``"\\ud800"``), which orjson refuses to read and to write, is refused."""
    if (
        len(body) > 2 * MAX_JSON_CONTAINERS
        and body.count(b"[") + body.count(b"{") > MAX_JSON_CONTAINERS
    ):
        raise InvalidInput(
            f"{what} holds more than {MAX_JSON_CONTAINERS:,} JSON arrays and objects "
            "(rows): split the batch, or send it as NPY or CSV"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as first:
        if not body.strip():
            raise InvalidInput(f"empty {what}: expected JSON") from None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"malformed JSON in {what}: {first}") from None
        except RecursionError:
            raise InvalidInput(f"JSON in {what} is nested too deeply") from None
        if _SURROGATE_ESCAPE.search(body) and _holds_lone_surrogate(doc):
            raise InvalidInput(
                f"malformed JSON in {what}: a string holds a lone UTF-16 surrogate "
                "(\\ud800 to \\udfff without its pair), which is not a character"
            ) from None
        return doc


def _holds_lone_surrogate(doc: Any) -> bool:
    # json.loads joins a pair of surrogate escapes into one character, so a
    # surrogate left in a string stood alone
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                return True
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
    return False


# Previews of a request's values in error messages: about this many
# characters, and lists and objects this deep.
_PREVIEW_CHARS = 60
_PREVIEW_DEPTH = 8


def show(value: Any, limit: int = _PREVIEW_CHARS) -> str:
    """A value from a request, as JSON-like text for an error message: about
    ``limit`` characters whatever the value's size or depth (``...`` marks
    what is left out), strings escaped as JSON escapes them (a control
    character or a lone surrogate reads as its escape)."""
    out: List[str] = []
    _preview(value, out, limit + 1, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _preview(value: Any, out: List[str], room: int, depth: int) -> int:
    """Appends a preview of ``value`` to ``out`` in about ``room``
    characters; returns how many it used.  The work is bounded by ``room``
    and ``_PREVIEW_DEPTH``, not by the value."""
    if isinstance(value, str):
        text = json.dumps(value[:room])
    elif value is None or isinstance(value, bool):
        text = "null" if value is None else ("true" if value else "false")
    elif isinstance(value, int):
        text = (
            str(value)
            if value.bit_length() < 4 * room
            else f"<an integer of {value.bit_length()} bits>"
        )
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple, dict)):
        if depth >= _PREVIEW_DEPTH:
            text = "[...]" if not isinstance(value, dict) else "{...}"
        else:
            return _preview_container(value, out, room, depth)
    else:
        text = f"<{type(value).__name__}>"
    out.append(text)
    return len(text)


def _preview_container(value: Any, out: List[str], room: int, depth: int) -> int:
    is_dict = isinstance(value, dict)
    used = 1
    out.append("{" if is_dict else "[")
    for i, item in enumerate(value.items() if is_dict else value):
        if used >= room:
            out.append("...")
            return used + 3
        if i:
            out.append(", ")
            used += 2
        if is_dict:
            key = json.dumps(str(item[0])[:room]) + ": "
            out.append(key)
            used += len(key)
            item = item[1]
        used += _preview(item, out, room - used, depth + 1)
    out.append("}" if is_dict else "]")
    return used + 1


def _number_text(text: str) -> bool:
    """A number written as a string ("5.1"), as float() and numpy read one."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_bad(value: Any, where: str, seen: Dict[str, bool]) -> Optional[str]:
    """The path and value of the first value that is no number (a number
    written as a string is one) in nested lists, for the error message
    (only called once ``np.array`` made a non-numeric array); ``seen``
    records whether strings and nulls were met."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None
    if value is None:
        seen["null"] = True
        return None
    if isinstance(value, str) and _number_text(value):
        seen["text"] = True
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _first_bad(item, f"{where}[{i}]", seen)
            if found:
                return found
        return None
    return f"{where} is {show(value)}"


def _ragged(value: Any, where: str) -> str:
    """Where nested lists stop being rectangular."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        n = len(value[0])
        for i, row in enumerate(value):
            if len(row) != n:
                return f"{where}[{i}] has {len(row)} values but {where}[0] has {n}"
        for i, row in enumerate(value):
            found = _ragged(row, f"{where}[{i}]")
            if found:
                return found
    elif isinstance(value, list) and any(isinstance(v, list) for v in value):
        return f"{where} mixes numbers and lists"
    return ""


def to_array(value: Any, where: str) -> np.ndarray:
    """Nested JSON lists of numbers to an ndarray; ``null`` is NaN (a missing
    value, for models that impute)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InvalidInput(f"{where} must be a list of numbers or a list of rows, got a number")
    if not isinstance(value, list):
        raise InvalidInput(
            f"{where} must be a list of numbers or a list of rows, got {_json_type(value)}"
        )
    try:
        array = np.array(value)
    except ValueError:
        try:
            why = _ragged(value, where) or "too many levels of nesting"
        except RecursionError:
            why = "too many levels of nesting"
        raise InvalidInput(f"{where} is not rectangular: {why}") from None
    if array.dtype.kind in _NUMERIC_KINDS:
        return array
    seen: Dict[str, bool] = {}
    try:
        bad = _first_bad(value, where, seen)
    except RecursionError:
        bad = f"{where} holds lists nested too deeply"
    if bad:
        raise InvalidInput(f"non-numeric value: {bad}")
    if seen.get("text"):
        if seen.get("null"):
            raise InvalidInput(
                f"{where} mixes null with numbers written as strings: send numbers "
                "(null for a missing value)"
            )
        # numbers written as strings ("5.1"): the model reads them as
        # model.predict reads the same list, and as scikit-learn does (a
        # tree converts them, a linear model refuses them in its words)
        return array
    # numbers mixed with null (object dtype, where float64 turns None into
    # NaN), or integers too big for int64
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise InvalidInput(f"{where} holds an integer too large for a float") from None


def to_matrix(value: Any, where: str) -> np.ndarray:
    """A 2-D batch: the lesson's ``np.array(features).reshape(1, -1)`` for one
    flat row, the rows as they are for a list of rows."""
    array = to_array(value, where)
    if array.ndim == 1:
        return array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInput(
            f"{where} must be a list of numbers or a list of rows, got {array.ndim} levels "
            f"of nesting (shape {list(array.shape)})"
        )
    return array


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def rows_from_named(records: Sequence[dict], served: ServedModel, where: str) -> Rows:
    """Rows given as objects keyed by feature name (``feature_names_in_``)."""
    if getattr(served, "dicts", False):
        return _dict_records(records, where)
    names = served.feature_names
    if names is None:
        raise InvalidInput(
            f"{where}[0] is an object, but model {served.name!r} was fitted without feature "
            f"names: send each row as a list of {served.n_features} numbers",
        )
    names = [str(n) for n in names]
    if getattr(served, "tables", False):
        return _table_records(records, names, where)
    out = np.empty((len(records), len(names)), dtype=np.float64)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where}[{i}] must be an object like {where}[0], got {_json_type(record)}"
            )
        missing = [n for n in names if n not in record]
        if missing:
            raise InvalidInput(
                f"{where}[{i}] lacks feature(s) {', '.join(map(repr, missing[:5]))}"
                + (", ..." if len(missing) > 5 else "")
                + f"; it has {show(list(record)[:10], 200)}"
            )
        unknown = [k for k in record if k not in names]
        if unknown:
            raise InvalidInput(
                f"{where}[{i}] has unknown feature(s) "
                f"{', '.join(map(repr, unknown[:5]))}; the model's features are "
                f"{', '.join(map(repr, names[:10]))}" + (", ..." if len(names) > 10 else "")
            )
        for j, n in enumerate(names):
            v = record[n]
            if v is None:
                out[i, j] = math.nan
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                try:
                    out[i, j] = v
                except OverflowError:
                    raise InvalidInput(f"{where}[{i}][{n!r}] is too large for a float") from None
            elif isinstance(v, str) and _number_text(v):
                # a DataFrame column of numbers written as strings is an
                # object column, which scikit-learn (and model.predict) convert
                out[i, j] = float(v)
            else:
                raise InvalidInput(f"non-numeric value: {where}[{i}][{n!r}] is {show(v)}")
    return out


_TABLE_VALUES = (str, int, float, bool, type(None))


def _dict_records(records: Sequence[Any], where: str) -> List[dict]:
    """Rows for a model that vectorizes dicts: any keys; values strings,
    numbers, null or lists of strings."""
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where}[{i}] must be an object like {where}[0], got {_json_type(record)}"
            )
        for k, v in record.items():
            if isinstance(v, list):
                if not all(isinstance(x, str) for x in v):
                    raise InvalidInput(
                        f"{where}[{i}][{k!r}] is {show(v)}: a list must hold strings only"
                    )
            elif not isinstance(v, _TABLE_VALUES):
                raise InvalidInput(
                    f"{where}[{i}][{k!r}] is {show(v)}: expected a string, a "
                    "number, null or a list of strings"
                )
    return list(records)


def _table_records(records: Sequence[Any], names: List[str], where: str) -> List[dict]:
    """Rows keyed by column name for a model that reads categories: the
    model takes the objects themselves (strings, numbers, null)."""
    known = set(names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where}[{i}] must be an object like {where}[0], got {_json_type(record)}"
            )
        missing = [n for n in names if n not in record]
        if missing:
            raise InvalidInput(
                f"{where}[{i}] lacks feature(s) {', '.join(map(repr, missing[:5]))}"
                + (", ..." if len(missing) > 5 else "")
                + f"; it has {show(list(record)[:10], 200)}"
            )
        unknown = [k for k in record if k not in known]
        if unknown:
            raise InvalidInput(
                f"{where}[{i}] has unknown feature(s) "
                f"{', '.join(map(repr, unknown[:5]))}; the model's features are "
                f"{', '.join(map(repr, names[:10]))}" + (", ..." if len(names) > 10 else "")
            )
        for n in names:
            if not isinstance(record[n], _TABLE_VALUES):
                raise InvalidInput(
                    f"{where}[{i}][{n!r}] is {show(record[n])}: expected a string, a number or null"
                )
    return list(records)


def _table_rows(value: Any, where: str, n_features: int) -> np.ndarray:
    """Rows of strings, numbers and nulls for a model that reads
    categories: a 2-D object array, each value as it came."""
    rows = value if value and isinstance(value[0], list) else [value]
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(f"{where}[{i}] must be a row (a list), got {_json_type(row)}")
        if len(row) != n_features:
            raise InvalidInput(f"{where}[{i}] has {len(row)} values; the model reads {n_features}")
        for j, v in enumerate(row):
            if not isinstance(v, _TABLE_VALUES):
                raise InvalidInput(
                    f"{where}[{i}][{j}] is {show(v)}: expected a string, a number or null"
                )
    out = np.empty((len(rows), n_features), dtype=object)
    for i, row in enumerate(rows):
        out[i, :] = row
    return out


def documents(value: Any, where: str) -> np.ndarray:
    """A text model's documents: a list of strings (one string: one
    document), as a 1-D object array."""
    docs = [value] if isinstance(value, str) else value
    if not isinstance(docs, list) or not docs:
        raise InvalidInput(
            f"{where} must be a document (a string) or a non-empty list of "
            f"them, got {_json_type(value)}"
        )
    for i, d in enumerate(docs):
        if not isinstance(d, str):
            raise InvalidInput(f"{where}[{i}] is {show(d)}: each document is a string")
    out = np.empty(len(docs), dtype=object)
    out[:] = docs
    return out


def instances_to_matrix(instances: Any, served: ServedModel, where: str = "instances") -> Rows:
    """Vertex AI and KServe V1 ``instances``: a list of rows (lists of
    numbers), of the lesson's ``{"features": [...]}`` objects, or of objects
    keyed by feature name."""
    if not isinstance(instances, list):
        raise InvalidInput(f"{where} must be a list of rows, got {_json_type(instances)}")
    if not instances:
        raise InvalidInput(f"{where} is empty: send at least one row")
    if getattr(served, "documents", False):
        return documents(instances, where)
    first = instances[0]
    if getattr(served, "tables", False) and isinstance(first, list):
        return _table_rows(instances, where, served.n_features)
    if isinstance(first, str) and not _number_text(first):
        raise InvalidInput(
            f"non-numeric value: {where}[0] is {show(first)}. Each instance is a row of "
            f"{served.n_features} numbers. (aiplatform's Endpoint.predict(instances) takes a list: "
            'a dict passed as instances sends only its keys, e.g. ["features"]; call '
            "endpoint.predict([payload]) or endpoint.predict([[...numbers...]]))",
        )
    if isinstance(first, dict):
        if "features" in first:
            rows = []
            for i, inst in enumerate(instances):
                if not isinstance(inst, dict) or "features" not in inst:
                    raise InvalidInput(f"{where}[{i}] lacks the key 'features' that {where}[0] has")
                rows.append(inst["features"])
            return to_matrix(rows, f"{where}[*].features")
        return rows_from_named(instances, served, where)
    # rows, or a flat list of numbers: one row, as in the lesson's reshape(1, -1)
    return to_matrix(instances, where)


def decode_csv(body: bytes) -> np.ndarray:
    """CSV rows of numbers (no header), as SageMaker's scikit-learn container
    reads them; ``nan`` for missing values."""
    if not body.strip():
        raise InvalidInput("empty request body: expected CSV rows of numbers")
    try:
        return np.loadtxt(
            io.BytesIO(body), delimiter=",", dtype=np.float64, ndmin=2, encoding="utf-8"
        )
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"malformed CSV: {_csv_problem(body) or e}") from None


def _csv_cell_value(cells: List[str]) -> List[Any]:
    """One CSV column's cells typed as pandas.read_csv types them: all
    integers, all numbers, else strings; an empty cell is missing (NaN)."""

    def parse(kind):
        out = []
        for c in cells:
            c = c.strip()
            out.append(math.nan if c == "" else kind(c))
        return out

    try:
        return parse(int)
    except ValueError:
        pass
    try:
        return parse(float)
    except ValueError:
        return [math.nan if c == "" else c for c in cells]


def decode_csv_table(body: bytes, served: ServedModel) -> Any:
    """CSV rows with strings for a model that reads categories: with a
    header row naming the model's columns (any order), rows keyed by name;
    without one, the model's columns in order (SageMaker's CSV).  Each
    column is typed as pandas.read_csv types it."""
    import csv

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("malformed CSV: the body is not UTF-8") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise InvalidInput("empty request body: expected CSV rows")
    names = [str(n) for n in served.feature_names] if served.feature_names is not None else None
    header = None
    if names is not None and sorted(c.strip() for c in rows[0]) == sorted(names):
        header = [c.strip() for c in rows[0]]
        rows = rows[1:]
        if not rows:
            raise InvalidInput("the CSV body has a header but no rows")
    width = len(header) if header else served.n_features
    for i, r in enumerate(rows):
        if len(r) != width:
            line = i + 1 + (header is not None)
            raise InvalidInput(
                f"malformed CSV: line {line} has {len(r)} values, the model reads "
                f"{width}" + ("" if header else " (a header row must name the model's columns)")
            )
    columns = [_csv_cell_value([r[j] for r in rows]) for j in range(width)]
    if header is not None:
        return [{header[j]: columns[j][i] for j in range(width)} for i in range(len(rows))]
    out = np.empty((len(rows), width), dtype=object)
    for j in range(width):
        out[:, j] = columns[j]
    return out


def _csv_problem(body: bytes) -> Optional[str]:
    """Where a CSV body stops being rows of numbers, counted as an editor
    counts (numpy says "row 0, column 1"): a header line, a line of another
    length than the first, or the first cell that is no number."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first: Optional[Tuple[int, int]] = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]  # np.loadtxt's comments
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        bad = [j for j, cell in enumerate(cells) if not _number_text(cell)]
        if number == 1 and len(bad) == len(cells):
            return (
                f"line 1 looks like a header ({show(', '.join(cells), 80)}): send rows of numbers "
                "only, as SageMaker's scikit-learn container reads them"
            )
        if bad:
            return f"line {number}, column {bad[0] + 1} is {show(cells[bad[0]])}: not a number"
        if first is None:
            first = (number, len(cells))
        elif len(cells) != first[1]:
            return f"line {number} has {len(cells)} values, line {first[0]} has {first[1]}"
    return None


def decode_npy(body: bytes) -> np.ndarray:
    """An .npy file (``np.save``), without pickles.

    The header is read with numpy's own functions, but the data is taken by
    hand: ``np.load`` allocates what the header claims before reading, so a
    40-byte body claiming a terabyte would be a MemoryError.  Here the claim
    is checked against the bytes that came, and the array is a view of them.
    """
    if not body:
        raise InvalidInput("empty request body: expected an .npy array")
    fp = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(
                f"format version {version[0]}.{version[1]} is not read here (np.save writes 1.0)"
            )
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy's parser of untrusted header text
        # raises ValueError, SyntaxError, tokenize.TokenError, TypeError...
        raise InvalidInput(f"malformed NPY: {e}") from None
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise InvalidInput(f"NPY array has dtype {dtype}; expected numbers")
    data = memoryview(body)[fp.tell() :]
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise InvalidInput(
            f"malformed NPY: the header says shape {list(shape)} of {dtype} "
            f"({expected} bytes), the body has {len(data)} bytes of data"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    if array.ndim == 1:
        return array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInput(f"NPY array has shape {list(shape)}; expected rows of features")
    return array


# -- payload styles: the answer mirrors the question ------------------------------

LESSON_ONE, LESSON_MANY, BARE, INSTANCES, TABULAR = (
    "lesson-one",
    "lesson-many",
    "bare",
    "instances",
    "tabular",
)


_UNPARSED = object()


def decode_payload(
    request_body: bytes, media: str, served: ServedModel, parsed: Any = _UNPARSED
) -> Tuple[Rows, str]:
    """A prediction request in any style the lesson and SageMaker use.

    JSON ``{"features": row}`` (the lesson; one row answers ``prediction``)
    or ``{"features": rows}``, ``{"instances": rows}``, a bare array of rows
    or one bare row; CSV rows; an NPY array.  Returns the batch and its
    style, which ``encode_predictions`` mirrors.  ``parsed``: the JSON body
    already parsed by the caller.
    """
    if media in CSV_TYPES:
        if getattr(served, "tables", False):
            return decode_csv_table(request_body, served), TABULAR
        return decode_csv(request_body), TABULAR
    if media in NPY_TYPES:
        return decode_npy(request_body), TABULAR
    data = parse_json(request_body) if parsed is _UNPARSED else parsed
    if getattr(served, "documents", False):
        if isinstance(data, dict) and "features" in data:
            one = isinstance(data["features"], str)
            return documents(data["features"], "features"), LESSON_ONE if one else LESSON_MANY
        if isinstance(data, list):
            return documents(data, "body"), BARE
    if isinstance(data, dict):
        if "features" in data:
            features = data["features"]
            if isinstance(features, dict):
                return rows_from_named([features], served, "features"), LESSON_ONE
            if getattr(served, "tables", False) and isinstance(features, list) and features:
                X = _table_rows(features, "features", served.n_features)
                one = not isinstance(features[0], list)
                return X, LESSON_ONE if one else LESSON_MANY
            X = to_matrix(features, "features")
            one = isinstance(features, list) and not (features and isinstance(features[0], list))
            return X, LESSON_ONE if one else LESSON_MANY
        if "instances" in data:
            return instances_to_matrix(data["instances"], served), INSTANCES
        if "inputs" in data:
            raise InvalidInput(
                "this looks like an Open Inference Protocol (V2) request: "
                f"POST it to /v2/models/{served.name}/infer"
            )
        keys = ", ".join(repr(k) for k in list(data)[:5]) or "none"
        example = ", ".join(map(str, served.example_row()[:4]))
        raise InvalidInput(
            f"missing key 'features': expected {{\"features\": [{example}"
            f'{", ..." if served.n_features > 4 else ""}]}} (or "instances", or a bare array); '
            f"got keys {keys}",
        )
    if isinstance(data, list):
        if data and isinstance(data[0], dict):
            raise InvalidInput(
                'the body is a list of objects: send it as {"instances": [...]} '
                '(objects keyed by feature name, or {"features": [...]} each), or '
                "send rows of numbers"
            )
        return to_matrix(data, "body"), BARE
    raise InvalidInput(
        f'expected a JSON object like {{"features": [...]}} or an array, got {_json_type(data)}'
    )


def encode_predictions(predictions: np.ndarray, style: str) -> Any:
    """The JSON value answering a request of ``style``."""
    if style == LESSON_ONE:
        return {"prediction": predictions[0]}
    if style == LESSON_MANY:
        return {"predictions": predictions}
    if style == INSTANCES:
        return {"predictions": predictions}
    return predictions


def csv_bytes(predictions: np.ndarray) -> bytes:
    """One line per row, as SageMaker's containers answer ``text/csv``."""
    if predictions.ndim == 1:
        lines = [_csv_cell(v) for v in predictions.tolist()]
    else:
        lines = [",".join(_csv_cell(v) for v in row) for row in predictions.tolist()]
    return ("\n".join(lines) + "\n").encode()


def _csv_cell(value: Any) -> str:
    if isinstance(value, str):
        if any(c in value for c in ',"\n\r'):
            return '"' + value.replace('"', '""') + '"'
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- content negotiation ------------------------------------------------------------


def choose_accept(accept: Optional[str], offered: Sequence[str], default: str) -> Optional[str]:
    """The first of ``offered`` that an Accept header allows, by quality;
    ``default`` when the header is absent or ``*/*``; None when nothing
    matches (the caller answers 406).

    Written by hand: the frameworks' parsers (werkzeug's MIMEAccept,
    starlette has none) would tie the core to one framework, and this is
    the whole of RFC 9110's rule that matters here.
    """
    if not accept or not accept.strip():
        return default
    ranges: List[Tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        fields = part.split(";")
        mtype = fields[0].strip().lower()
        if not mtype:
            continue
        q = 1.0
        for p in fields[1:]:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        ranges.append((q, i, mtype))
    ranges.sort(key=lambda r: (-r[0], r[1]))
    for q, _, mtype in ranges:
        if q <= 0:
            continue
        if mtype == "*/*":
            return default
        if mtype.endswith("/*"):
            prefix = mtype[:-1]
            for o in [default] + list(offered):
                if o.startswith(prefix):
                    return o
            continue
        if mtype in offered:
            return mtype
    return None


# -- tensors of the Open Inference Protocol (V2) ------------------------------------

# V2 datatypes and their little-endian numpy dtypes (the binary extension's
# byte order).
TENSOR_DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPE_NAMES = {dt.str.lstrip("<|=>"): name for name, dt in TENSOR_DTYPES.items()}
# Triton's binary tensor data extension: the length of the JSON header that
# comes before the raw tensors.
HEADER_LENGTH = "inference-header-content-length"


def datatype_of(dtype: np.dtype) -> str:
    """The V2 datatype of an output's dtype (strings and objects: BYTES)."""
    if dtype.kind in "USO":
        return "BYTES"
    name = _DATATYPE_NAMES.get(dtype.str.lstrip("<|=>"))
    if name is None:
        raise TypeError(f"cannot send dtype {dtype} as a V2 tensor")
    return name


def split_inference_body(body: bytes, header_length: Optional[str]) -> Tuple[Any, memoryview]:
    """The inference request's JSON and the binary data after it: with
    ``Inference-Header-Content-Length``, the JSON is that many bytes at the
    start of the body and raw tensors follow."""
    if header_length is None:
        return parse_json(body), memoryview(b"")
    try:
        n = int(header_length)
    except ValueError:
        raise InvalidInput(
            f"Inference-Header-Content-Length {show(header_length)} is not an integer"
        ) from None
    if not 0 <= n <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {n} is outside the body's {len(body)} bytes"
        )
    return parse_json(body[:n], what="inference header"), memoryview(body)[n:]


def _tensor_shape(value: Any, where: str) -> Tuple[int, ...]:
    # the length first: a shape of a million entries is refused before
    # anything walks it (math.prod over it holds the GIL for seconds)
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise InvalidInput(
            f"{where}.shape must be a list of non-negative integers, [rows, features] "
            f"(or [features] for one row), got {show(value)}"
        )
    return tuple(value)


def decode_tensor(
    tensor: Any, binary: memoryview, offset: int, where: str
) -> Tuple[np.ndarray, int]:
    """One input tensor to a 2-D batch, from its JSON ``data`` or from
    ``binary`` at ``offset`` (its ``parameters.binary_data_size``); returns
    the batch and the next binary offset."""
    if not isinstance(tensor, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise InvalidInput(f"{where} lacks {key!r}")
    shape = _tensor_shape(tensor["shape"], where)
    datatype = tensor["datatype"]
    dtype = TENSOR_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InvalidInput(
            f"{where}.datatype {show(datatype)} is not supported: send one of "
            f"{', '.join(TENSOR_DTYPES)}"
        )
    count = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}.parameters must be an object")
    size = parameters.get("binary_data_size")
    array: np.ndarray
    if size is not None:
        if not isinstance(size, int) or size < 0:
            raise InvalidInput(
                f"{where}.parameters.binary_data_size must be a non-negative integer"
            )
        if offset + size > len(binary):
            raise InvalidInput(
                f"{where} has binary_data_size {size} but only "
                f"{len(binary) - offset} bytes of binary data are left"
            )
        if size != count * dtype.itemsize:
            raise InvalidInput(
                f"{where} has binary_data_size {size}, but shape {list(shape)} of "
                f"{datatype} takes {count * dtype.itemsize} bytes"
            )
        array = np.frombuffer(binary[offset : offset + size], dtype=dtype).reshape(shape)
        offset += size
    else:
        if "data" not in tensor:
            raise InvalidInput(f"{where} lacks 'data' (and has no binary_data_size)")
        array = to_array(tensor["data"], f"{where}.data")
        if array.size != count:
            raise InvalidInput(
                f"{where}.data has {array.size} values but shape {list(shape)} needs {count}"
            )
        array = array.reshape(shape).astype(dtype, copy=False)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    elif array.ndim != 2:
        raise InvalidInput(f"{where}.shape {list(shape)} must be [rows, features]")
    return array, offset


def _bytes_elements(raw: memoryview, count: int, where: str) -> List[str]:
    """Triton's BYTES serialisation read back: each element a uint32 length
    (little endian) and that many bytes, taken as UTF-8 text."""
    out: List[str] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(raw):
            raise InvalidInput(f"{where}: the binary BYTES data ends inside an element's length")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise InvalidInput(f"{where}: a BYTES element of {n} bytes runs past the data")
        try:
            out.append(bytes(raw[pos : pos + n]).decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{where}: a BYTES element is not UTF-8 text") from None
        pos += n
    if pos != len(raw):
        raise InvalidInput(f"{where}: {len(raw) - pos} bytes are left after {count} BYTES elements")
    return out


def decode_table_tensor(
    tensor: Any, binary: memoryview, offset: int, where: str
) -> Tuple[List[Any], Tuple[int, ...], int]:
    """A tensor of a model that reads categories: its values as a flat list
    (BYTES as text, numbers as numbers), its shape, the next binary offset."""
    if not isinstance(tensor, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise InvalidInput(f"{where} lacks {key!r}")
    shape = _tensor_shape(tensor["shape"], where)
    count = math.prod(shape)
    if tensor["datatype"] != "BYTES":
        array, offset = decode_tensor(tensor, binary, offset, where)
        return array.ravel().tolist(), shape, offset
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}.parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidInput(f"{where}.parameters.binary_data_size does not fit the binary data")
        values: List[Any] = _bytes_elements(binary[offset : offset + size], count, where)
        offset += size
    else:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise InvalidInput(f"{where} lacks 'data' (and has no binary_data_size)")
        values = []
        stack = [data]
        while stack:  # flatten nested lists, in order
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, _TABLE_VALUES):
                values.append(item)
            else:
                raise InvalidInput(f"{where}.data holds {show(item)}: expected strings")
            if len(values) > count:
                break
        if len(values) != count:
            raise InvalidInput(
                f"{where}.data has {len(values)} values but shape {list(shape)} needs {count}"
            )
    return values, shape, offset


def documents_from_tensors(inputs: List[Any], binary: memoryview) -> np.ndarray:
    """V2 inputs of a text model: one BYTES tensor of documents, shape
    [rows] or [rows, 1]."""
    if len(inputs) != 1:
        raise InvalidInput(f"expected 1 input tensor of documents, got {len(inputs)}")
    values, shape, _ = decode_table_tensor(inputs[0], binary, 0, "inputs[0]")
    if len(shape) == 2 and shape[1] != 1:
        raise InvalidInput(f"inputs[0] has shape {list(shape)}: documents are [rows] or [rows, 1]")
    return documents(values, "inputs[0].data")


def table_from_tensors(inputs: List[Any], binary: memoryview, served: ServedModel) -> Any:
    """V2 inputs of a model that reads categories: one tensor per column,
    named after it (MLServer's pandas codec), or one [rows, features]
    tensor of BYTES or numbers."""
    names = [str(n) for n in served.feature_names] if served.feature_names is not None else None
    offset = 0
    if len(inputs) == 1 and not (names and inputs[0].get("name") in names and len(names) > 1):
        values, shape, _ = decode_table_tensor(inputs[0], binary, 0, "inputs[0]")
        rows = shape[0] if len(shape) == 2 else 1
        width = shape[-1]
        if width != served.n_features:
            raise InvalidInput(
                f"inputs[0] has {width} columns; the model reads {served.n_features}"
            )
        out = np.empty((rows, width), dtype=object)
        out.ravel()[:] = values
        return out
    if names is None:
        raise InvalidInput(
            f"expected 1 input tensor of shape [rows, {served.n_features}], got {len(inputs)}"
        )
    columns: Dict[str, List[Any]] = {}
    for i, tensor in enumerate(inputs):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if name not in names:
            raise InvalidInput(
                f"inputs[{i}] is named {show(name)}, which is not a column of the "
                f"model: {', '.join(map(repr, names[:10]))}"
            )
        values, shape, offset = decode_table_tensor(tensor, binary, offset, f"inputs[{i}]")
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInput(
                f"inputs[{i}] ({name}) has shape {list(shape)}: a column is [rows] or [rows, 1]"
            )
        columns[name] = values
    missing = [n for n in names if n not in columns]
    if missing:
        raise InvalidInput(f"the inputs lack column(s) {', '.join(map(repr, missing[:5]))}")
    n_rows = {len(v) for v in columns.values()}
    if len(n_rows) != 1:
        raise InvalidInput(f"the input columns have different lengths: {sorted(n_rows)}")
    return [{n: columns[n][i] for n in names} for i in range(n_rows.pop())]


def _bytes_tensor(array: np.ndarray) -> bytes:
    """Triton's BYTES serialisation: each element's length (uint32, little
    endian) then its UTF-8 bytes."""
    parts = []
    for item in array.ravel().tolist():
        b = item.encode() if isinstance(item, str) else str(item).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def encode_tensor(name: str, result: Any, binary: bool) -> Tuple[dict, Optional[bytes]]:
    """An output tensor: its JSON description (with ``data``, or with
    ``parameters.binary_data_size`` when ``binary``) and its raw bytes for
    the binary extension (None when in the JSON)."""
    if isinstance(result, list):
        # a multi-output classifier's probabilities: one array per output,
        # sent side by side as one [rows, sum of classes] tensor
        result = np.hstack(result)
    result = np.ascontiguousarray(result)
    tensor: dict = {
        "name": name,
        "shape": list(result.shape),
        "datatype": datatype_of(result.dtype),
    }
    if not binary:
        tensor["data"] = result.ravel()
        return tensor, None
    raw = (
        _bytes_tensor(result)
        if tensor["datatype"] == "BYTES"
        else result.astype(result.dtype.newbyteorder("<"), copy=False).tobytes()
    )
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw
