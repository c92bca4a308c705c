"""Helpers for tests/test_hostile.py: a small pickle assembler.

Hostile pickles are written opcode by opcode so that a test knows the exact
byte offset of the opcode the VM must refuse.  Nothing here runs a pickle.
"""

from __future__ import annotations

import pickletools
import struct
from typing import Dict, Optional

OPS = {op.name: op.code.encode("latin-1") for op in pickletools.opcodes}


class Asm:
    """Builds a pickle byte by byte.  Every method appends one opcode (with
    its argument) and returns self; ``label`` records the offset of the
    opcode being appended, read back with ``pos(label)``."""

    def __init__(self, proto: Optional[int] = 4):
        self.buf = bytearray()
        self.labels: Dict[str, int] = {}
        if proto is not None:
            self.op("PROTO", bytes([proto]))

    # -- raw ------------------------------------------------------------
    def op(self, name: str, arg: bytes = b"", label: Optional[str] = None) -> "Asm":
        if label is not None:
            self.labels[label] = len(self.buf)
        self.buf += OPS[name] + arg
        return self

    def raw(self, data: bytes, label: Optional[str] = None) -> "Asm":
        if label is not None:
            self.labels[label] = len(self.buf)
        self.buf += data
        return self

    def pos(self, label: str) -> int:
        return self.labels[label]

    def here(self) -> int:
        return len(self.buf)

    def bytes(self) -> bytes:
        return bytes(self.buf)

    # -- values ---------------------------------------------------------
    def str(self, s: str, label: Optional[str] = None) -> "Asm":
        b = s.encode("utf-8", "surrogatepass")
        if len(b) < 256:
            return self.op("SHORT_BINUNICODE", bytes([len(b)]) + b, label)
        return self.op("BINUNICODE", struct.pack("<I", len(b)) + b, label)

    def bytes_(self, b: bytes, label: Optional[str] = None) -> "Asm":
        if len(b) < 256:
            return self.op("SHORT_BINBYTES", bytes([len(b)]) + b, label)
        return self.op("BINBYTES", struct.pack("<I", len(b)) + b, label)

    def int(self, v: int, label: Optional[str] = None) -> "Asm":
        if 0 <= v < 256:
            return self.op("BININT1", bytes([v]), label)
        if -(2**31) <= v < 2**31:
            return self.op("BININT", struct.pack("<i", v), label)
        n = (v.bit_length() + 8) // 8
        return self.op("LONG1", bytes([n]) + v.to_bytes(n, "little", signed=True), label)

    def none(self, label=None) -> "Asm":
        return self.op("NONE", b"", label)

    def true(self, label=None) -> "Asm":
        return self.op("NEWTRUE", b"", label)

    def false(self, label=None) -> "Asm":
        return self.op("NEWFALSE", b"", label)

    def mark(self, label=None) -> "Asm":
        return self.op("MARK", b"", label)

    def tuple(self, label=None) -> "Asm":
        return self.op("TUPLE", b"", label)

    def tuple_n(self, n: int, label=None) -> "Asm":
        return self.op({0: "EMPTY_TUPLE", 1: "TUPLE1", 2: "TUPLE2", 3: "TUPLE3"}[n], b"", label)

    def stop(self, label=None) -> "Asm":
        return self.op("STOP", b"", label)

    def memoize(self, label=None) -> "Asm":
        return self.op("MEMOIZE", b"", label)

    def binput(self, i: int, label=None) -> "Asm":
        return self.op("BINPUT", bytes([i]), label)

    def binget(self, i: int, label=None) -> "Asm":
        return self.op("BINGET", bytes([i]), label)

    # -- globals and calls ------------------------------------------------
    def stack_global(self, module: str, name: str, label=None) -> "Asm":
        """module and name strings, then STACK_GLOBAL (labelled)."""
        self.str(module).str(name)
        return self.op("STACK_GLOBAL", b"", label)

    def global_(self, module: str, name: str, label=None) -> "Asm":
        arg = module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"
        return self.op("GLOBAL", arg, label)

    def reduce(self, label=None) -> "Asm":
        return self.op("REDUCE", b"", label)

    def build(self, label=None) -> "Asm":
        return self.op("BUILD", b"", label)

    def newobj(self, label=None) -> "Asm":
        return self.op("NEWOBJ", b"", label)

    def call(self, module: str, name: str, *args, label=None) -> "Asm":
        """module.name(*args) through STACK_GLOBAL + TUPLE + REDUCE; the
        label marks the STACK_GLOBAL.  args are str, bytes or int."""
        self.stack_global(module, name, label)
        self.mark()
        for a in args:
            self.value(a)
        return self.tuple().reduce()

    def value(self, v) -> "Asm":
        if v is None:
            return self.none()
        if v is True:
            return self.true()
        if v is False:
            return self.false()
        if isinstance(v, str):
            return self.str(v)
        if isinstance(v, (bytes, bytearray)):
            return self.bytes_(bytes(v))
        if isinstance(v, int):
            return self.int(v)
        if isinstance(v, float):
            return self.op("BINFLOAT", struct.pack(">d", v))
        if isinstance(v, tuple):
            self.mark()
            for x in v:
                self.value(x)
            return self.tuple()
        if isinstance(v, list):
            self.op("EMPTY_LIST").mark()
            for x in v:
                self.value(x)
            return self.op("APPENDS") if v else self.op("POP_MARK")
        if isinstance(v, dict):
            self.op("EMPTY_DICT").mark()
            for k, x in v.items():
                self.value(k)
                self.value(x)
            return self.op("SETITEMS")
        raise TypeError(type(v))

    # -- numpy ----------------------------------------------------------
    def dtype(
        self, spec: str, order: str = "<", names=None, fields=None, elsize: int = -1
    ) -> "Asm":
        """numpy.dtype(spec, False, True) + BUILD (3, order, None, names, fields, elsize, 1, 0).
        fields: {name: (dtype spec, offset[, byte order])}."""
        self.stack_global("numpy", "dtype").str(spec).false().true().tuple_n(3).reduce()
        self.mark().int(3).str(order).none()
        if names is None:
            self.none()
        else:
            self.value(tuple(names))
        if fields is None:
            self.none()
        else:
            self.op("EMPTY_DICT").mark()
            for fname, field in fields.items():
                fspec, off = field[0], field[1]
                forder = field[2] if len(field) > 2 else "<"
                self.str(fname)
                self.mark()
                self.dtype(fspec, forder)
                self.int(off)
                self.tuple()
            self.op("SETITEMS")
        self.int(elsize).int(1).int(0).tuple()
        return self.build()

    def reconstruct_head(self, module: str = "numpy._core.multiarray") -> "Asm":
        """_reconstruct(numpy.ndarray, (0,), b'b'): leaves the unfinished array."""
        self.stack_global(module, "_reconstruct")
        self.stack_global("numpy", "ndarray").int(0).tuple_n(1).bytes_(b"b").tuple_n(3)
        return self.reduce()


def ndarray_pickle(
    shape, spec: str, data, *, fortran=False, order="<", label_build="build", proto: int = 4
) -> Asm:
    """A whole pickle: one ndarray via _reconstruct + BUILD (1, shape, dtype, fortran, data)."""
    a = Asm(proto)
    a.reconstruct_head()
    a.mark().int(1).value(tuple(shape)).dtype(spec, order).value(fortran).value(data).tuple()
    return a.build(label=label_build).stop()


def frombuffer_pickle(buf, spec: str, shape, order="C", label="call") -> Asm:
    a = Asm(5)
    a.stack_global("numpy._core.numeric", "_frombuffer")
    a.mark()
    a.op("BYTEARRAY8", struct.pack("<Q", len(buf)) + bytes(buf))
    a.dtype(spec).value(tuple(shape)).str(order).tuple()
    return a.reduce(label=label).stop()
