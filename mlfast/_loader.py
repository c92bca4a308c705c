"""Reading model files: bytes from a path or file object, decompression by
magic bytes, then the C VM.

joblib writes compressed files as one plain compressed stream of the pickle
(no header of its own since joblib 0.10), so the first bytes name the codec.
The standard library's decompressors do the work; each is driven with a
``max_length`` so that a small file cannot expand past the memory budget (a
decompression bomb fails early instead of filling the machine).
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import zlib
from typing import BinaryIO, Union

from mlfast import _core
from mlfast.errors import ModelFormatError, UnsupportedModelError

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

#: Default cap on decompressed size and on what the VM may allocate.
DEFAULT_MAX_MEMORY = 2 << 30

_CHUNK = 1 << 20
_FEED = 1 << 16


def read_source(source: Source) -> bytes | bytearray | memoryview:
    """The raw bytes of a model given as a path, a file object or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return fh.read()
    read = getattr(source, "read", None)
    if read is None:
        raise TypeError(
            f"expected a path, a binary file object or bytes, got {type(source).__name__}"
        )
    data = read()
    if isinstance(data, str):
        raise TypeError("the file object was opened in text mode; open it with 'rb'")
    return data


#: How a pickle of protocol 0 or 1 (no PROTO opcode) of a model starts: an
#: object's class as a GLOBAL line (``ccopy_reg\n_reconstructor``, ...), or a
#: MARK or an empty list/dict/tuple opening a container of models.
_PROTOCOL_0_1_START = re.compile(rb"c[A-Za-z_][A-Za-z0-9_.]*\n|[(\]})]")
#: bytes of a file's start that codec_of looks at (a GLOBAL line fits)
_HEAD = 256


def codec_of(head: bytes) -> str:
    """Names the container of a model file from its first bytes."""
    if head[:1] == b"\x80":
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        return "skops"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"\x5d\x00\x00":
        return "lzma"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if head[:2] == b"ZF":
        return "joblib-zfile"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    # after the magic numbers: lzma's 5d 00 00 opens like EMPTY_LIST
    if _PROTOCOL_0_1_START.match(head):
        return "pickle"
    return "unknown"


def _drain(make, data, max_size: int, codec: str) -> bytes:
    """Runs a fresh decompressor from ``make()`` over data in bounded steps,
    never producing more than max_size bytes; follows concatenated gzip
    members as gzip itself does.  Input goes in _FEED-sized slices, so that
    zlib's unconsumed tail (copied on every call) stays small."""
    view = memoryview(data)
    out = []
    total = 0
    pos = 0
    pending: bytes | memoryview = b""
    dec = make()
    while True:
        if not pending and pos < len(view) and getattr(dec, "needs_input", True):
            pending = view[pos : pos + _FEED]
            pos += len(pending)
        chunk = dec.decompress(pending, _CHUNK)
        # zlib hands back what it did not read; bz2, lzma and lz4 keep it
        pending = getattr(dec, "unconsumed_tail", b"")
        total += len(chunk)
        if total > max_size:
            raise UnsupportedModelError(
                f"the {codec} stream expands past the memory budget of {max_size} bytes "
                "(pass a larger max_memory to load it)"
            )
        out.append(chunk)
        if dec.eof:
            # where this stream ended: in the last slice fed, before its unused tail
            pos -= len(dec.unused_data or b"")
            if codec == "gzip" and bytes(view[pos : pos + 2]) == b"\x1f\x8b":
                pending, dec = b"", make()
                continue
            break
        if not chunk and not pending and pos >= len(view) and getattr(dec, "needs_input", True):
            raise ModelFormatError(f"truncated {codec} stream: it ends before its end marker")
    return b"".join(out)


def decompress(data, max_size: int = DEFAULT_MAX_MEMORY):
    """Decompressed pickle bytes of a (possibly compressed) joblib file."""
    head = bytes(data[:_HEAD])
    codec = codec_of(head)
    if codec == "pickle":
        return data
    try:
        if codec == "zlib":
            return _drain(zlib.decompressobj, data, max_size, codec)
        if codec == "gzip":
            return _drain(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), data, max_size, codec)
        if codec == "bz2":
            return _drain(bz2.BZ2Decompressor, data, max_size, codec)
        # liblzma allocates the dictionary a header asks for: memlimit caps it
        if codec == "xz":
            return _drain(
                lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=max_size),
                data,
                max_size,
                codec,
            )
        if codec == "lzma":
            return _drain(
                lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=max_size),
                data,
                max_size,
                codec,
            )
        if codec == "lz4":
            try:
                import lz4.frame
            except ImportError:
                raise UnsupportedModelError(
                    "this file is lz4-compressed; install the 'lz4' package to read it "
                    "(pip install lz4)"
                ) from None
            return _drain(lz4.frame.LZ4FrameDecompressor, data, max_size, codec)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, RuntimeError, ValueError) as exc:
        if isinstance(exc, (ModelFormatError, UnsupportedModelError)):
            raise
        if isinstance(exc, lzma.LZMAError) and "memory usage limit" in str(exc).lower():
            raise UnsupportedModelError(
                f"the {codec} stream needs more than the memory budget of {max_size} bytes to "
                "decompress (pass a larger max_memory to load it)"
            ) from None
        raise ModelFormatError(f"corrupt {codec} stream: {exc}") from None
    if codec == "joblib-zfile":
        raise UnsupportedModelError(
            "this is a joblib < 0.10 compressed file ('ZF' header), which mlfast does not "
            "read; load it with that joblib in a trusted environment and save it again"
        )
    raise ModelFormatError(
        f"not a pickle or joblib file: it starts with {head[:8]!r}, expected a pickle "
        "(PROTO byte 0x80, or the opening of a protocol 0 or 1 pickle), a skops zip or a "
        "zlib, gzip, bz2, xz, lzma or lz4 header"
    )


def load_tree(source: Source, max_memory: int = DEFAULT_MAX_MEMORY):
    """The value tree of a model file: plain values, ndarrays and inert Records."""
    raw = read_source(source)
    codec = codec_of(bytes(raw[:_HEAD]))
    if codec == "skops":
        from mlfast.formats import skops

        return skops.load_tree(raw, max_memory)
    data = decompress(raw, max_memory)
    try:
        return _core.unpickle(data, max_memory=max_memory)
    except ModelFormatError as exc:
        if codec != "pickle":
            raise type(exc)(f"{exc} of the {codec}-decompressed stream") from None
        raise
