"""skops files (``skops.io.dump``): a zip of ``schema.json`` and one ``.npy``
member per array, read into the value tree the pickle VM makes.

skops's own loader is never called and ``np.load`` never runs.  The zip is
checked before any member is read: member count, names (no paths, no
duplicates), compression method, sizes against the memory budget and each
deflated member's expansion ratio (a zip bomb is refused from its directory,
before inflating anything).  ``schema.json`` is a tree of nodes
``{__class__, __module__, __loader__, content, __id__}``; each node becomes
the pickle opcodes the same object would have in a joblib file (a Record for
an estimator, a numpy array for an ``.npy`` member, plain values for the
rest), and the stream goes through the restricted VM, which applies its
table and budget as for any pickle.  Classes are checked against that table
first: a type mlfast does not know is refused here, as skops's untrusted
types check would refuse it, with its name and where the schema holds it.

``.npy`` members are parsed here: the magic, a header of bounded size read
with ``ast.literal_eval`` (a literal, never code), a dtype of plain numbers,
bytes or text (structured dtypes of those, as a tree's nodes), a shape whose
size matches the bytes present exactly.
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import re
import struct
import zipfile
from typing import Any, Dict, List, Set

import numpy as np

from mlfast import _core
from mlfast.errors import ModelFormatError, UnsafeModelError, UnsupportedModelError

ZIP_MAGIC = b"PK\x03\x04"
#: members a skops file may hold (one per array; a forest of 1000 trees has ~3000)
MAX_MEMBERS = 200_000
#: schema.json is small JSON; a bigger one is not a model
MAX_SCHEMA = 256 << 20
#: a deflated member expanding more than this is a zip bomb, not arrays
MAX_RATIO = 1000
#: a .npy header is a short dict literal
MAX_NPY_HEADER = 1 << 16
#: nesting of schema nodes (a pipeline of meta-estimators is a few dozen deep)
MAX_DEPTH = 200
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# byte order, kind, size: plain numbers, booleans, bytes and text
_TYPESTR_RE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|[SU][0-9]{1,6})$")
_NPY_MAGIC = b"\x93NUMPY"
_UNKNOWN = _core.GLOBAL_KINDS["unknown"]
_RECORD = _core.GLOBAL_KINDS["record"]
_FORBIDDEN = 0
_PRIMITIVE_KEYS = {"builtins.str": str, "builtins.int": int, "builtins.float": float}

# pickle opcodes the emitter writes (Lib/pickle.py)
_MARK, _STOP, _GLOBAL, _EMPTY_TUPLE, _NEWOBJ = b"(", b".", b"c", b")", b"\x81"
_BUILD, _REDUCE, _TUPLE, _EMPTY_LIST, _APPENDS = b"b", b"R", b"t", b"]", b"e"
_EMPTY_DICT, _SETITEMS, _LONG_BINPUT, _LONG_BINGET = b"}", b"u", b"r", b"j"
_EMPTY_SET, _ADDITEMS = b"\x8f", b"\x90"


def is_skops(head: bytes) -> bool:
    """A zip's local file header: what skops.io.dump writes first."""
    return bytes(head[:4]) == ZIP_MAGIC


class _Zip:
    """A skops zip whose directory has been checked; members are read once,
    each within its declared size."""

    def __init__(self, data: Any, max_memory: int):
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
            raise ModelFormatError(f"skops file: not a readable zip ({exc})") from None
        if len(infos) > MAX_MEMBERS:
            raise UnsupportedModelError(
                f"skops file: {len(infos)} members, more than the {MAX_MEMBERS} a model holds"
            )
        self.infos: Dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if not _NAME_RE.match(name) or ".." in name:
                raise UnsafeModelError(
                    f"skops file: member name {name[:80]!r} is not a plain file name "
                    "(skops writes schema.json and <id>.npy; a path or '..' could escape "
                    "where it is extracted)"
                )
            if name in self.infos:
                raise UnsafeModelError(f"skops file: member {name!r} appears twice in the zip")
            if info.flag_bits & 0x1:
                raise UnsupportedModelError(f"skops file: member {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise UnsupportedModelError(
                    f"skops file: member {name!r} uses compression method {info.compress_type}, "
                    "expected stored (0) or deflated (8)"
                )
            if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > MAX_RATIO * max(
                info.compress_size, 1
            ) + (1 << 16):
                raise UnsafeModelError(
                    f"skops file: member {name!r} declares {info.file_size} bytes from "
                    f"{info.compress_size} compressed, a ratio above {MAX_RATIO}: a zip bomb"
                )
            total += info.file_size
            if total > max_memory:
                raise UnsupportedModelError(
                    f"skops file: its members expand past the memory budget of {max_memory} bytes "
                    "(pass a larger max_memory to load it)"
                )
            self.infos[name] = info
        self.read_names: Set[str] = set()

    def read(self, name: Any, where: str, limit: int = -1) -> bytes:
        if not isinstance(name, str) or name not in self.infos:
            raise ModelFormatError(
                f"skops file: {where} names member {str(name)[:80]!r}, which the zip does not hold"
            )
        info = self.infos[name]
        if limit >= 0 and info.file_size > limit:
            raise UnsupportedModelError(
                f"skops file: member {name!r} is {info.file_size} bytes, more than the "
                f"{limit} allowed for it"
            )
        try:
            with self.zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
            raise ModelFormatError(f"skops file: member {name!r} is corrupt ({exc})") from None
        if len(data) != info.file_size:
            raise ModelFormatError(
                f"skops file: member {name!r} holds {len(data)} bytes, its "
                f"directory entry says {info.file_size}"
            )
        return data


def read_npy(data: bytes, where: str) -> np.ndarray:
    """An ndarray from a .npy file's bytes (format 1.0, 2.0 or 3.0) with no
    object dtype, checked as described in the module docstring."""
    if data[:6] != _NPY_MAGIC or len(data) < 10:
        raise ModelFormatError(f"skops file: {where} is not a .npy array (starts {data[:8]!r})")
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3) and len(data) >= 12:
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise ModelFormatError(
            f"skops file: {where} is a .npy of format version {major}, expected 1, 2 or 3"
        )
    if hlen > MAX_NPY_HEADER or start + hlen > len(data):
        raise ModelFormatError(
            f"skops file: {where} has a .npy header of {hlen} bytes, "
            f"beyond the file or the {MAX_NPY_HEADER} allowed"
        )
    try:
        header = ast.literal_eval(
            data[start : start + hlen].decode("utf-8" if major == 3 else "latin1")
        )
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise ModelFormatError(
            f"skops file: {where} has a .npy header that is not a dict literal"
        ) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ModelFormatError(
            f"skops file: {where} has a .npy header {str(header)[:120]!r}, "
            "expected the keys descr, fortran_order, shape"
        )
    dtype = _npy_dtype(header["descr"], where)
    shape, fortran = header["shape"], header["fortran_order"]
    if (
        not isinstance(fortran, bool)
        or not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ModelFormatError(
            f"skops file: {where} has shape {str(shape)[:80]} and "
            f"fortran_order {fortran!r}, expected a tuple of sizes and a bool"
        )
    count = 1
    for n in shape:
        count *= n
    body = len(data) - start - hlen
    if count * dtype.itemsize != body:
        raise ModelFormatError(
            f"skops file: {where} has shape {shape} of {dtype.str} "
            f"({count * dtype.itemsize} bytes) but holds {body} bytes"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=start + hlen)
    return flat.reshape(shape, order="F" if fortran else "C")


def _npy_dtype(descr: Any, where: str) -> np.dtype:
    if isinstance(descr, str):
        if not _TYPESTR_RE.match(descr):
            raise UnsafeModelError(
                f"skops file: {where} has dtype {descr[:40]!r}; only numbers, "
                "booleans, bytes and text are read (never objects)"
            )
        return np.dtype(descr)
    if not isinstance(descr, list) or not descr or len(descr) > 64:
        raise ModelFormatError(
            f"skops file: {where} has a .npy descr {str(descr)[:80]!r}, "
            "expected a type string or a list of fields"
        )
    names, formats, offsets, offset = [], [], [], 0
    for item in descr:
        if not (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and len(item[0]) < 64
        ):
            raise ModelFormatError(
                f"skops file: {where} has a field {str(item)[:80]!r}, expected (name, type string)"
            )
        if item[0] == "" and re.match(r"^\|V[0-9]{1,4}$", item[1]):
            offset += int(item[1][2:])  # alignment padding, as np.save writes it
            continue
        if not item[0] or item[0] in names:
            raise ModelFormatError(f"skops file: {where} has a field named {item[0]!r}")
        names.append(item[0])
        formats.append(_npy_dtype(item[1], where))
        offsets.append(offset)
        offset += formats[-1].itemsize
    try:
        return np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": offset}
        )
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"skops file: {where} has invalid fields ({exc})") from None


def _plain(value: Any) -> bytes:
    """Pickle opcodes of a value made here (plain data, a checked ndarray, a
    numpy scalar or dtype), without PROTO, STOP or memo: spliced into the
    stream."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=3)
    pickler.fast = True  # no memo: the stream's memo indices are the emitter's
    pickler.dump(value)
    return buf.getvalue()[2:-1]


class _Emitter:
    """schema.json nodes -> pickle opcodes for the VM."""

    def __init__(self, zip_: _Zip, max_memory: int):
        self.zip = zip_
        self.out: List[bytes] = []
        self.budget = max_memory
        self.memo: Dict[int, int] = {}  # skops __id__ -> memo index, once complete
        self.open_ids: Set[int] = set()

    def spend(self, n: int, where: str) -> None:
        self.budget -= n
        if self.budget < 0:
            raise UnsupportedModelError(
                f"skops file: {where} takes the model past the memory budget "
                "(arrays shared by reference count each time; pass a larger max_memory)"
            )

    def global_(self, module: Any, name: Any, where: str, record: bool = False) -> None:
        if not (
            isinstance(module, str)
            and isinstance(name, str)
            and _DOTTED_RE.match(module)
            and _DOTTED_RE.match(name)
            and len(module) + len(name) < 256
        ):
            raise ModelFormatError(
                f"skops file: {where} names the type "
                f"{str(module)[:60]!r}.{str(name)[:60]!r}, not a dotted name"
            )
        kind = _core.classify_global(module, name)
        if kind == _FORBIDDEN:
            raise UnsafeModelError(
                f"skops file: {where} names {module}.{name}, which a model "
                "file may not name (it could run code)"
            )
        if kind == _UNKNOWN or (record and kind != _RECORD):
            raise UnsafeModelError(
                f"skops file: {where} is a {module}.{name}, a type outside mlfast's table of "
                "scikit-learn and numpy types (skops's loader refuses it as untrusted too)"
            )
        self.out.append(_GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")

    def node(self, state: Any, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UnsupportedModelError(
                f"skops file: {where} is nested more than {MAX_DEPTH} levels deep"
            )
        if not isinstance(state, dict):
            # the content of a JsonNode's container, or a schema that is not skops's
            raise ModelFormatError(
                f"skops file: {where} is a {type(state).__name__}, "
                "expected a schema node (a JSON object)"
            )
        loader = state.get("__loader__")
        module, cls = state.get("__module__"), state.get("__class__")
        saved_id = state.get("__id__")
        if loader == "CachedNode":
            if not isinstance(saved_id, int) or saved_id not in self.memo:
                raise ModelFormatError(
                    f"skops file: {where} refers to object {str(saved_id)[:40]}, which is not "
                    "an earlier, complete node of the schema"
                )
            self.out.append(_LONG_BINGET + struct.pack("<I", self.memo[saved_id]))
            return
        if saved_id is not None and (not isinstance(saved_id, int) or isinstance(saved_id, bool)):
            raise ModelFormatError(
                f"skops file: {where} has __id__ {str(saved_id)[:40]!r}, expected an integer"
            )
        if saved_id is not None:
            # skops's loader takes a node whose __id__ it has seen as that
            # object again (None, True and shared arrays are written so)
            if saved_id in self.memo:
                self.out.append(_LONG_BINGET + struct.pack("<I", self.memo[saved_id]))
                return
            if saved_id in self.open_ids:
                raise ModelFormatError(
                    f"skops file: {where} is its own ancestor (__id__ {saved_id}): a cycle"
                )
            self.open_ids.add(saved_id)
        handler = _LOADERS.get(loader) if isinstance(loader, str) else None
        if handler is None:
            raise UnsupportedModelError(
                f"skops file: {where} is a {str(module)[:60]}.{str(cls)[:60]} written by skops's "
                f"{str(loader)[:40]}, which mlfast does not read"
            )
        handler(self, state, module, cls, where, depth)
        if saved_id is not None:
            self.open_ids.discard(saved_id)
            index = len(self.memo)
            self.memo[saved_id] = index
            self.out.append(_LONG_BINPUT + struct.pack("<I", index))

    def content(self, state: dict, where: str) -> Any:
        if "content" not in state:
            raise ModelFormatError(f"skops file: {where} has no content")
        return state["content"]

    def expect(self, module: Any, cls: Any, allowed: tuple, where: str, loader: str) -> None:
        if f"{module}.{cls}" not in allowed:
            raise UnsafeModelError(
                f"skops file: {where} says it is a {str(module)[:60]}."
                f"{str(cls)[:60]} read by {loader}; expected "
                f"{' or '.join(allowed)}"
            )

    # -- one function per skops loader ------------------------------------------------

    def object_node(self, state, module, cls, where, depth):
        self.global_(module, cls, where, record=True)
        self.out.append(_EMPTY_TUPLE + _NEWOBJ)
        if state.get("content") is not None:
            self.node(state["content"], where, depth + 1)
            self.out.append(_BUILD)

    def reduce_node(self, state, module, cls, where, depth):
        reduce = state.get("__reduce__")
        if not isinstance(reduce, dict) or "args" not in reduce:
            raise ModelFormatError(f"skops file: {where} has no __reduce__ arguments")
        self.global_(module, cls, where, record=True)
        self.node(reduce["args"], f"{where}.__reduce__", depth + 1)
        self.out.append(_REDUCE)
        content = self.content(state, where)
        self.node(content, where, depth + 1)
        self.out.append(_BUILD)

    def tree_node(self, state, module, cls, where, depth):
        if not (module == "sklearn.tree._tree" and cls == "Tree"):
            raise UnsafeModelError(
                f"skops file: {where} is read as a tree but names "
                f"{str(module)[:60]}.{str(cls)[:60]}"
            )
        self.reduce_node(state, module, cls, where, depth)

    def dict_node(self, state, module, cls, where, depth):
        self.expect(module, cls, ("builtins.dict", "collections.OrderedDict"), where, "DictNode")
        content = self.content(state, where)
        key_types = self.key_types(state.get("key_types"), where)
        if not isinstance(content, dict) or len(key_types) != len(content):
            raise ModelFormatError(
                f"skops file: {where} has {len(key_types)} key types for "
                f"its {len(content) if isinstance(content, dict) else 0} keys"
            )
        self.out.append(_EMPTY_DICT)
        if content:
            self.out.append(_MARK)
            for key_type, (key, value) in zip(key_types, content.items()):
                try:
                    key = key_type(key)
                except (TypeError, ValueError):
                    raise ModelFormatError(
                        f"skops file: {where} has key {key[:40]!r}, not a {key_type.__name__}"
                    ) from None
                self.out.append(_plain(key))
                self.node(value, f"{where}[{str(key)[:40]!r}]", depth + 1)
            self.out.append(_SETITEMS)

    def key_types(self, node: Any, where: str) -> list:
        if (
            not isinstance(node, dict)
            or node.get("__loader__") != "ListNode"
            or not isinstance(node.get("content"), list)
        ):
            raise ModelFormatError(f"skops file: {where} has no list of key types")
        out = []
        for item in node["content"]:
            name = (
                f"{item.get('__module__')}.{item.get('__class__')}"
                if isinstance(item, dict)
                else None
            )
            if name not in _PRIMITIVE_KEYS or item.get("__loader__") != "TypeNode":
                raise UnsafeModelError(
                    f"skops file: {where} has a key of type {str(name)[:80]}, "
                    "expected str, int or float"
                )
            out.append(_PRIMITIVE_KEYS[name])
        return out

    def sequence(self, state, where, depth) -> list:
        content = self.content(state, where)
        if not isinstance(content, list):
            raise ModelFormatError(
                f"skops file: {where} has content of type {type(content).__name__}, expected a list"
            )
        return content

    def list_node(self, state, module, cls, where, depth):
        self.expect(module, cls, ("builtins.list",), where, "ListNode")
        items = self.sequence(state, where, depth)
        self.out.append(_EMPTY_LIST)
        if items:
            self.out.append(_MARK)
            for i, item in enumerate(items):
                self.node(item, f"{where}[{i}]", depth + 1)
            self.out.append(_APPENDS)

    def tuple_node(self, state, module, cls, where, depth):
        self.expect(module, cls, ("builtins.tuple",), where, "TupleNode")
        items = self.sequence(state, where, depth)
        self.out.append(_MARK)
        for i, item in enumerate(items):
            self.node(item, f"{where}[{i}]", depth + 1)
        self.out.append(_TUPLE)

    def set_node(self, state, module, cls, where, depth):
        self.expect(module, cls, ("builtins.set",), where, "SetNode")
        items = self.sequence(state, where, depth)
        self.out.append(_EMPTY_SET)
        if items:
            self.out.append(_MARK)
            for i, item in enumerate(items):
                self.node(item, f"{where}{{{i}}}", depth + 1)
            self.out.append(_ADDITEMS)

    def json_node(self, state, module, cls, where, depth):
        content = self.content(state, where)
        if not isinstance(content, str):
            raise ModelFormatError(f"skops file: {where} holds JSON content that is not a string")
        try:
            value = json.loads(content)
        except (ValueError, RecursionError):
            raise ModelFormatError(f"skops file: {where} holds invalid JSON") from None
        self.spend(len(content), where)
        try:
            self.out.append(_plain(value))
        except RecursionError:
            raise UnsupportedModelError(
                f"skops file: {where} holds JSON nested too deeply"
            ) from None

    def ndarray_node(self, state, module, cls, where, depth):
        kind = state.get("type")
        if kind == "json":
            self.object_array(state, module, cls, where, depth)
            return
        if kind != "numpy":
            raise ModelFormatError(
                f"skops file: {where} is an array of type {str(kind)[:40]!r}, "
                "expected 'numpy' or 'json'"
            )
        array = read_npy(self.zip.read(state.get("file"), where), f"{where} ({state['file']})")
        self.spend(array.nbytes, where)
        if module == "numpy" and cls == "ndarray":
            self.out.append(
                _plain(
                    np.ascontiguousarray(array)
                    if array.flags.f_contiguous and array.ndim > 1
                    else array
                )
            )
            return
        # a numpy scalar (np.float64 attributes): its class must be the array's type
        if module != "numpy" or array.shape != () or array.dtype.type.__name__ != cls:
            raise ModelFormatError(
                f"skops file: {where} says it is a {str(module)[:40]}."
                f"{str(cls)[:40]} but holds {array.dtype} of shape "
                f"{array.shape}"
            )
        self.out.append(_plain(array[()]))

    def shape(self, node: Any, where: str) -> tuple:
        """An object array's shape: a TupleNode of JSON integers."""
        items = node.get("content") if isinstance(node, dict) else None
        dims = []
        if isinstance(items, list) and node.get("__loader__") == "TupleNode" and len(items) <= 32:
            for item in items:
                text = item.get("content") if isinstance(item, dict) else None
                try:
                    n = json.loads(text) if isinstance(text, str) and len(text) < 24 else None
                except ValueError:
                    n = None
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    break
                dims.append(n)
            else:
                return tuple(dims)
        raise ModelFormatError(f"skops file: {where} has no valid shape (a tuple of sizes)")

    def rows(self, items: list, dims: tuple, where: str) -> list:
        """(node, where) of an object array's items in C order: skops writes
        ``tolist()``, a ListNode per row."""
        if len(items) != dims[0]:
            raise ModelFormatError(
                f"skops file: {where} has {len(items)} items where its shape says {dims[0]}"
            )
        if len(dims) == 1:
            return [(item, f"{where}[{i}]") for i, item in enumerate(items)]
        out = []
        for i, row in enumerate(items):
            if (
                not isinstance(row, dict)
                or row.get("__loader__") != "ListNode"
                or not isinstance(row.get("content"), list)
            ):
                raise ModelFormatError(f"skops file: {where}[{i}] is not a row of the array")
            out.extend(self.rows(row["content"], dims[1:], f"{where}[{i}]"))
        return out

    def object_array(self, state, module, cls, where, depth):
        if not (module == "numpy" and cls == "ndarray"):
            raise ModelFormatError(
                f"skops file: {where} is an object array of class "
                f"{str(module)[:40]}.{str(cls)[:40]}"
            )
        dims = self.shape(state.get("shape"), where)
        items = self.rows(self.sequence(state, where, depth), dims, where) if dims else []
        if not dims:
            raise UnsupportedModelError(f"skops file: {where} is a 0-d object array")
        # numpy.ndarray's own pickle: _reconstruct, then BUILD (1, shape, dtype, F, items)
        self.out.append(
            _GLOBAL
            + b"numpy._core.multiarray\n_reconstruct\n"
            + _plain(np.ndarray)
            + _plain((0,))
            + _plain(b"b")
            + b"\x87"
            + _REDUCE
        )
        self.out.append(
            _MARK + _plain(1) + _plain(dims) + _plain(np.dtype("O")) + _plain(False) + _EMPTY_LIST
        )
        if items:
            self.out.append(_MARK)
            for item, item_where in items:
                self.node(item, item_where, depth + 1)
            self.out.append(_APPENDS)
        self.out.append(_TUPLE + _BUILD)

    def random_node(self, state, module, cls, where, depth):
        # a random generator's state (skops writes its bit generator's
        # numbers, not a pickle) is never read to predict: kept as None
        self.out.append(_plain(None))

    def dtype_node(self, state, module, cls, where, depth):
        content = self.content(state, where)
        if not isinstance(content, dict) or content.get("type") != "numpy":
            raise ModelFormatError(f"skops file: {where} is a dtype without its array")
        array = read_npy(self.zip.read(content.get("file"), where), where)
        self.out.append(_plain(array.dtype))

    def type_node(self, state, module, cls, where, depth):
        self.global_(module, cls, where)

    def function_node(self, state, module, cls, where, depth):
        self.global_(module, cls, where)

    def slice_node(self, state, module, cls, where, depth):
        content = self.content(state, where)
        if (
            not isinstance(content, dict)
            or set(content) != {"start", "stop", "step"}
            or not all(
                v is None or (isinstance(v, int) and not isinstance(v, bool))
                for v in content.values()
            )
        ):
            raise ModelFormatError(f"skops file: {where} is not a slice of integers")
        self.global_("builtins", "slice", where)
        self.out.append(_plain((content["start"], content["stop"], content["step"])) + _REDUCE)

    def bytes_node(self, state, module, cls, where, depth):
        data = self.zip.read(state.get("file"), where)
        self.spend(len(data), where)
        self.out.append(_plain(data if state["__loader__"] == "BytesNode" else bytearray(data)))


_LOADERS = {
    "ObjectNode": _Emitter.object_node,
    "TreeNode": _Emitter.tree_node,
    "LossNode": _Emitter.reduce_node,
    "DictNode": _Emitter.dict_node,
    "ListNode": _Emitter.list_node,
    "TupleNode": _Emitter.tuple_node,
    "SetNode": _Emitter.set_node,
    "JsonNode": _Emitter.json_node,
    "NdArrayNode": _Emitter.ndarray_node,
    "DTypeNode": _Emitter.dtype_node,
    "TypeNode": _Emitter.type_node,
    "FunctionNode": _Emitter.function_node,
    "SliceNode": _Emitter.slice_node,
    "BytesNode": _Emitter.bytes_node,
    "BytearrayNode": _Emitter.bytes_node,
    "RandomStateNode": _Emitter.random_node,
    "RandomGeneratorNode": _Emitter.random_node,
}


def to_pickle(data: Any, max_memory: int) -> bytes:
    """The pickle stream that holds what a skops file holds."""
    zip_ = _Zip(data, max_memory)
    raw = zip_.read("schema.json", "the zip's schema.json", MAX_SCHEMA)
    try:
        schema = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"skops file: schema.json is not JSON ({str(exc)[:80]})") from None
    if not isinstance(schema, dict):
        raise ModelFormatError("skops file: schema.json is not a JSON object")
    protocol = schema.get("protocol")
    if not isinstance(protocol, int) or isinstance(protocol, bool) or not 0 < protocol < 100:
        raise ModelFormatError(
            f"skops file: schema.json has protocol {str(protocol)[:20]!r}, "
            "expected skops's protocol number"
        )
    emitter = _Emitter(zip_, max_memory)
    emitter.out.append(b"\x80\x04")
    emitter.node(schema, "model", 0)
    emitter.out.append(_STOP)
    return b"".join(emitter.out)


def load_tree(data: Any, max_memory: int) -> Any:
    """The value tree of a skops file."""
    stream = to_pickle(data, max_memory)
    return _core.unpickle(stream, max_memory=max_memory)
