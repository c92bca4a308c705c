"""The model documents of XGBoost and LightGBM, read as data.

XGBoost keeps its model as one JSON document (``Learner``/``Config``),
written as text JSON or as UBJSON (binary JSON, big-endian); its Booster
pickles the UBJSON bytes and ``save_model`` writes either.  LightGBM keeps
its model as text (``tree`` ... ``end of trees``), which its Booster
pickles as a string and ``save_model`` writes as a file.  Nothing here
imports either library: the readers take the bytes, check every marker,
length and count against what is left, and return plain Python values and
numpy arrays for the builders (``mlfast/_builders/gbdt.py``) to check and
lay out.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from mlfast.errors import ModelFormatError, UnsupportedModelError

#: nesting the readers follow (an XGBoost document is 5 deep)
MAX_DEPTH = 64

# UBJSON's fixed-size number markers: numpy dtype (big-endian), size
_UB_NUMBERS: Dict[int, Tuple[str, int]] = {
    ord("i"): (">i1", 1),
    ord("U"): ("u1", 1),
    ord("I"): (">i2", 2),
    ord("l"): (">i4", 4),
    ord("L"): (">i8", 8),
    ord("d"): (">f4", 4),
    ord("D"): (">f8", 8),
}
_UB_STRUCT = {
    ord("i"): ">b",
    ord("U"): ">B",
    ord("I"): ">h",
    ord("l"): ">i",
    ord("L"): ">q",
    ord("d"): ">f",
    ord("D"): ">d",
}


class _UbReader:
    """UBJSON (Draft 12, as XGBoost writes it): every read bounded by the
    bytes left; a count or length is checked against them before anything
    is sized by it; typed numeric arrays become numpy arrays in one step."""

    def __init__(self, data: bytes, what: str):
        self.data = data
        self.pos = 0
        self.what = what

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.what}: malformed UBJSON: {message} (byte {self.pos})")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or n > len(self.data) - self.pos:
            raise self.fail(f"{n} bytes asked, {len(self.data) - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def number(self, marker: int) -> Any:
        fmt = _UB_STRUCT.get(marker)
        if fmt is None:
            raise self.fail(f"marker {chr(marker)!r} is not a number")
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self) -> int:
        marker = self.byte()
        if marker not in (ord("i"), ord("U"), ord("I"), ord("l"), ord("L")):
            raise self.fail(f"a length has marker {chr(marker)!r}, expected an integer")
        n = self.number(marker)
        if n < 0 or n > len(self.data) - self.pos:
            raise self.fail(f"length {n} with {len(self.data) - self.pos} bytes left")
        return n

    def string(self) -> str:
        raw = self.take(self.length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string is not UTF-8") from None

    def value(self, marker: int, depth: int) -> Any:
        if marker in _UB_STRUCT:
            return self.number(marker)
        if marker == ord("S"):
            return self.string()
        if marker == ord("C"):
            return chr(self.byte())
        if marker == ord("T"):
            return True
        if marker == ord("F"):
            return False
        if marker == ord("Z"):
            return None
        if marker in (ord("["), ord("{")):
            if depth >= MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH}")
            return self.container(marker == ord("{"), depth + 1)
        if marker == ord("H"):
            raise self.fail("high-precision numbers are not part of a model")
        raise self.fail(f"unknown marker 0x{marker:02x}")

    def container(self, is_object: bool, depth: int) -> Any:
        typ = count = None
        if self.pos < len(self.data) and self.data[self.pos] == ord("$"):
            self.pos += 1
            typ = self.byte()
            if self.byte() != ord("#"):
                raise self.fail("a typed container without a count")
            count = self.length_count()
        elif self.pos < len(self.data) and self.data[self.pos] == ord("#"):
            self.pos += 1
            count = self.length_count()
        if typ is not None and typ in _UB_NUMBERS and not is_object and count is not None:
            dtype, size = _UB_NUMBERS[typ]
            raw = self.take(count * size)
            return np.frombuffer(raw, dtype=dtype).astype(np.dtype(dtype).newbyteorder("="))
        if typ is not None and typ not in _UB_STRUCT and typ not in (ord("S"), ord("C")):
            # zero-byte values (null, true, false) would let a count of
            # billions cost nothing: never part of a model
            raise self.fail(f"a container typed {chr(typ)!r}")
        out: Any = {} if is_object else []
        i = 0
        while True:
            if count is not None:
                if i == count:
                    break
            elif self.pos < len(self.data) and self.data[self.pos] == (
                ord("}") if is_object else ord("]")
            ):
                self.pos += 1
                break
            if is_object:
                key = self.string()
            marker = typ if typ is not None else self.byte()
            while typ is None and marker == ord("N"):
                marker = self.byte()
            item = self.value(marker, depth)
            if is_object:
                out[key] = item
            else:
                out.append(item)
            i += 1
        return out

    def length_count(self) -> int:
        """A container's count: each item costs at least one byte."""
        return self.length()


def read_ubjson(data: bytes, what: str) -> Any:
    r = _UbReader(bytes(data), what)
    value = r.value(r.byte(), 0)
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} bytes after the document")
    return value


def read_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{what}: malformed JSON: {str(exc)[:200]}") from None


def xgboost_document(data: Union[bytes, bytearray], what: str) -> dict:
    """An XGBoost model's JSON document from its UBJSON or JSON bytes."""
    data = bytes(data)
    if data[:1] != b"{":
        if data[:4] == b"binf" or data[:1] in (b"\x00", b"\x01"):
            raise UnsupportedModelError(
                f"{what}: XGBoost's legacy binary model format (before 1.0, or save_raw "
                "'deprecated') is not served; save the model as JSON or UBJSON"
            )
        raise ModelFormatError(f"{what}: not an XGBoost model (it opens with {data[:8]!r})")
    doc = (
        read_json(data, what)
        if data[1:2] in (b'"', b" ", b"\n", b"\r", b"\t")
        else read_ubjson(data, what)
    )
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{what}: the XGBoost document is not an object")
    return doc


# ---- LightGBM's text model ----------------------------------------------------------


def lightgbm_document(text: str, what: str) -> Tuple[Dict[str, str], List[Dict[str, str]], str]:
    """The header's key=value lines, each tree's, and the text after the
    trees (parameters, pandas_categorical), from LightGBM's model text."""
    if not isinstance(text, str):
        raise ModelFormatError(
            f"{what}: the LightGBM model is a {type(text).__name__}, expected its text"
        )
    end = text.find("\nend of trees")
    if not text.startswith("tree\n") or end < 0:
        raise ModelFormatError(f"{what}: not a LightGBM model text (it opens with {text[:20]!r})")
    body, tail = text[:end], text[end + len("\nend of trees") :]
    blocks = body.split("\nTree=")
    header = _key_values(blocks[0], what)
    trees = []
    for i, block in enumerate(blocks[1:]):
        number, _, rest = block.partition("\n")
        if number.strip() != str(i):
            raise ModelFormatError(f"{what}: tree {i} is numbered {number.strip()[:20]!r}")
        trees.append(_key_values(rest, f"{what}: Tree={i}"))
    return header, trees, tail


def _key_values(block: str, what: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in block.split("\n"):
        line = line.strip()
        if not line:
            continue
        # a bare word is a flag (average_output)
        key, _, value = line.partition("=")
        out[key] = value
    return out


def lightgbm_array(fields: Dict[str, str], key: str, dtype, n: int, what: str) -> np.ndarray:
    """A space-separated array of n numbers, checked."""
    text = fields.get(key)
    if text is None:
        raise ModelFormatError(f"{what}: no {key}")
    parts = text.split()
    if len(parts) != n:
        raise ModelFormatError(f"{what}: {key} has {len(parts)} values, expected {n}")
    try:
        if np.dtype(dtype).kind == "f":
            return np.array([float(p) for p in parts], dtype=dtype)
        return np.array([int(p) for p in parts], dtype=dtype)
    except (ValueError, OverflowError):
        raise ModelFormatError(f"{what}: {key} holds something other than numbers") from None


def lightgbm_int(fields: Dict[str, str], key: str, what: str, default: Any = None) -> int:
    text = fields.get(key)
    if text is None:
        if default is not None:
            return int(default)
        raise ModelFormatError(f"{what}: no {key}")
    try:
        return int(text)
    except ValueError:
        raise ModelFormatError(f"{what}: {key} is {text[:40]!r}, expected an integer") from None


# ---- CatBoost's model (.cbm): a flatbuffer ---------------------------------------


class Flat:
    """A flatbuffers table read with every offset checked against the
    buffer: fields by slot number, as the schema (CatBoost's model.fbs)
    orders them."""

    def __init__(self, buf: bytes, pos: int, what: str):
        self.buf = buf
        self.what = what
        self.pos = pos
        vt = pos - self._i32(pos)
        self.vt = vt
        self.vt_size = self._u16(vt)
        if self.vt_size < 4 or self.vt_size % 2:
            raise self.fail(f"a vtable of {self.vt_size} bytes")
        self._check(vt, self.vt_size)

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.what}: malformed CatBoost model: {message}")

    def _check(self, pos: int, size: int) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.buf):
            raise self.fail(
                f"{size} bytes at offset {pos} outside the {len(self.buf)} of the model"
            )

    def _u16(self, pos: int) -> int:
        self._check(pos, 2)
        return struct.unpack_from("<H", self.buf, pos)[0]

    def _i32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<i", self.buf, pos)[0]

    def _u32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<I", self.buf, pos)[0]

    def field(self, slot: int) -> int:
        """The absolute position of a field, or 0 when absent."""
        at = 4 + 2 * slot
        if at + 2 > self.vt_size:
            return 0
        off = self._u16(self.vt + at)
        return self.pos + off if off else 0

    def scalar(self, slot: int, fmt: str, default: Any) -> Any:
        pos = self.field(slot)
        if not pos:
            return default
        self._check(pos, struct.calcsize(fmt))
        return struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def _target(self, slot: int) -> int:
        pos = self.field(slot)
        if not pos:
            return 0
        return pos + self._u32(pos)

    def table(self, slot: int) -> "Flat | None":
        pos = self._target(slot)
        return Flat(self.buf, pos, self.what) if pos else None

    def vector(self, slot: int, fmt: str) -> np.ndarray:
        """A vector of scalars ('i' int32, 'f' float32, 'd' float64, 'I' uint32)."""
        pos = self._target(slot)
        if not pos:
            return np.zeros(0, dtype="<" + fmt)
        n = self._u32(pos)
        size = struct.calcsize(fmt)
        self._check(pos + 4, n * size)
        return np.frombuffer(self.buf, dtype="<" + fmt, count=n, offset=pos + 4).copy()

    def length(self, slot: int) -> int:
        pos = self._target(slot)
        return self._u32(pos) if pos else 0

    def tables(self, slot: int) -> List["Flat"]:
        pos = self._target(slot)
        if not pos:
            return []
        n = self._u32(pos)
        self._check(pos + 4, 4 * n)
        return [
            Flat(self.buf, pos + 4 + 4 * i + self._u32(pos + 4 + 4 * i), self.what)
            for i in range(n)
        ]

    def string(self, slot: int) -> str:
        pos = self._target(slot)
        if not pos:
            return ""
        n = self._u32(pos)
        self._check(pos + 4, n)
        try:
            return self.buf[pos + 4 : pos + 4 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string is not UTF-8") from None


def catboost_core(data: bytes, what: str) -> Flat:
    """The TModelCore table of a CatBoost model ('CBM1', its size, the
    flatbuffer)."""
    data = bytes(data)
    if data[:4] != b"CBM1" or len(data) < 12:
        raise ModelFormatError(f"{what}: not a CatBoost model (it opens with {data[:8]!r})")
    size = struct.unpack_from("<I", data, 4)[0]
    if size > len(data) - 8 or size < 8:
        raise ModelFormatError(
            f"{what}: malformed CatBoost model: a core of {size} bytes in {len(data) - 8}"
        )
    buf = data[8 : 8 + size]
    root = struct.unpack_from("<I", buf, 0)[0]
    return Flat(buf, root, what)
