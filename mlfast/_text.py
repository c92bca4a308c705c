"""Documents at input: a text model's X (a list, array or Series of
strings) read as scikit-learn's vectorizers read it, each document
preprocessed with scikit-learn's own calls (``str.lower``, unicodedata),
then cut, looked up and packed in C (``_core.text_rows``) as the sparse row
the model's ``sparse`` op reads."""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Any, Dict, List, Optional

import numpy as np

from mlfast import _core

_ANALYZERS = dict(_core.CODES["analyzers"])
#: the codecs a bytes document may be decoded with (a codec is looked up
#: by name: a file may only name these)
ENCODINGS = frozenset(
    (
        "utf-8",
        "utf8",
        "utf_8",
        "latin-1",
        "latin1",
        "latin_1",
        "iso-8859-1",
        "ascii",
        "us-ascii",
        "utf-16",
        "utf-32",
        "cp1252",
    )
)
_MAX_PATTERN = 10_000


def strip_accents_unicode(s: str) -> str:
    """scikit-learn's strip_accents_unicode (0.22 on): NFKD, combining
    marks dropped, unless the text is ASCII."""
    try:
        s.encode("ASCII", errors="strict")
        return s
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", s)
        return "".join([c for c in normalized if not unicodedata.combining(c)])


def strip_accents_unicode_021(s: str) -> str:
    """strip_accents_unicode up to scikit-learn 0.21, which left a text
    already in NFKD as it was, combining marks and all."""
    normalized = unicodedata.normalize("NFKD", s)
    if normalized == s:
        return s
    return "".join([c for c in normalized if not unicodedata.combining(c)])


def strip_accents_ascii(s: str) -> str:
    """scikit-learn's strip_accents_ascii: NFKD, then what ASCII holds."""
    return unicodedata.normalize("NFKD", s).encode("ASCII", "ignore").decode("ASCII")


def encode_terms(terms: List[str]):
    """Terms as a Vocabulary reads them: UTF-8 (lone surrogates as their
    three bytes, as text_rows encodes documents), concatenated, and the
    offsets of each."""
    encoded = [t.encode("utf-8", "surrogatepass") for t in terms]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    text = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return text, offsets


def _array(value: Any, what: str, dtype: Any) -> Optional[np.ndarray]:
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.ndim != 1:
        raise ValueError(f"text.{what} must be a 1-D array")
    return np.ascontiguousarray(value, dtype=dtype)


def check_text(text: Any) -> Dict[str, Any]:
    """A Spec's text analysis, every value checked (a pickled Model is as
    hostile as a model file)."""
    if not isinstance(text, dict):
        raise ValueError("text must be a dict")
    out: Dict[str, Any] = {}
    name = text.get("name")
    if not isinstance(name, str) or len(name) > 200:
        raise ValueError("text.name must be a str")
    out["name"] = name
    analyzer = text.get("analyzer")
    if analyzer is None or analyzer not in _ANALYZERS.values() or isinstance(analyzer, bool):
        raise ValueError(f"text.analyzer {analyzer!r} is not one of {_ANALYZERS}")
    out["analyzer"] = int(analyzer)
    for key in ("lowercase",):
        if not isinstance(text.get(key), bool):
            raise ValueError(f"text.{key} must be a bool")
        out[key] = text[key]
    if text.get("strip_accents") not in (None, "ascii", "unicode", "unicode_0.21"):
        raise ValueError("text.strip_accents must be None, 'ascii', 'unicode' or 'unicode_0.21'")
    out["strip_accents"] = text.get("strip_accents")
    if text.get("encoding") not in ENCODINGS:
        raise ValueError(f"text.encoding must be one of {sorted(ENCODINGS)}")
    out["encoding"] = text["encoding"]
    if text.get("decode_error") not in ("strict", "ignore", "replace"):
        raise ValueError("text.decode_error must be strict, ignore or replace")
    out["decode_error"] = text["decode_error"]
    ngram = text.get("ngram")
    if (
        not isinstance(ngram, list)
        or len(ngram) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in ngram)
        or not 1 <= ngram[0] <= ngram[1] <= 64
    ):
        raise ValueError("text.ngram must be [min_n, max_n] within 1..64")
    out["ngram"] = list(ngram)
    pattern = text.get("token_pattern")
    if pattern is not None and (not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN):
        raise ValueError("text.token_pattern must be a str")
    out["token_pattern"] = pattern
    stop = text.get("stop_words")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(w, str) for w in stop)
    ):
        raise ValueError("text.stop_words must be a list of str")
    out["stop_words"] = stop
    n = text.get("n_features")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n < 2**31:
        raise ValueError("text.n_features must be a positive int")
    out["n_features"] = n
    out["terms"] = _array(text.get("terms"), "terms", np.uint8)
    out["offsets"] = _array(text.get("offsets"), "offsets", np.int64)
    out["columns"] = _array(text.get("columns"), "columns", np.int64)
    if (out["terms"] is None) != (out["columns"] is None) or (out["terms"] is None) != (
        out["offsets"] is None
    ):
        raise ValueError("text: terms, offsets and columns go together")
    if out["terms"] is None and not isinstance(text.get("alternate_sign"), bool):
        raise ValueError("text.alternate_sign must be a bool")
    out["alternate_sign"] = bool(text.get("alternate_sign", False))
    return out


class DocumentAttributeError(AttributeError, ValueError):
    """A document that is not a string, refused as scikit-learn refuses it
    (an AttributeError), and bad input to a server (a ValueError)."""


class DocumentTypeError(TypeError, ValueError):
    """A document that is not a string, refused as scikit-learn refuses it
    (a TypeError), and bad input to a server (a ValueError)."""


class Documents:
    """Reads a text model's X into the packed rows of its key slot."""

    __slots__ = (
        "name",
        "analyzer",
        "min_n",
        "max_n",
        "lowercase",
        "strip",
        "encoding",
        "decode_error",
        "tokenize",
        "vocabulary",
        "stop",
        "n_features",
        "alternate_sign",
    )

    def __init__(self, text: Dict[str, Any]):
        self.name = text["name"]
        self.analyzer = text["analyzer"]
        self.min_n, self.max_n = text["ngram"]
        self.lowercase = text["lowercase"]
        self.strip = {
            None: None,
            "ascii": strip_accents_ascii,
            "unicode": strip_accents_unicode,
            "unicode_0.21": strip_accents_unicode_021,
        }[text["strip_accents"]]
        self.encoding = text["encoding"]
        self.decode_error = text["decode_error"]
        pattern = text["token_pattern"]
        self.tokenize = re.compile(pattern).findall if pattern is not None else None
        self.vocabulary = None
        if text["terms"] is not None:
            self.vocabulary = _core.Vocabulary(text["terms"], text["offsets"], text["columns"])
        self.stop = None
        if text["stop_words"]:
            words = text["stop_words"]
            stop_text, stop_offsets = encode_terms(words)
            self.stop = _core.Vocabulary(
                stop_text, stop_offsets, np.arange(len(words), dtype=np.int64)
            )
        self.n_features = text["n_features"]
        self.alternate_sign = text["alternate_sign"]

    def _document(self, doc: Any) -> str:
        """scikit-learn's decode, then its preprocessor, of one document."""
        if isinstance(doc, bytes):
            doc = doc.decode(self.encoding, self.decode_error)
        elif doc is np.nan:
            raise ValueError("np.nan is an invalid document, expected byte or unicode string.")
        if not isinstance(doc, str):
            if self.lowercase:
                # str.lower of what is no str: scikit-learn's AttributeError
                raise DocumentAttributeError(
                    f"'{type(doc).__name__}' object has no attribute 'lower'"
                )
            # what the tokenizer (re) or the n-grams refuse
            raise DocumentTypeError(
                f"expected string or bytes-like object, got '{type(doc).__name__}'"
            )
        if self.lowercase:
            doc = doc.lower()
        if self.strip is not None:
            doc = self.strip(doc)
        return doc

    def __call__(self, X: Any) -> np.ndarray:
        if isinstance(X, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        if isinstance(X, np.ndarray) and X.dtype.kind in "UO" and X.ndim == 1:
            docs: List[Any] = X.tolist()
        elif isinstance(X, list):
            docs = X
        else:
            docs = list(X)
        if self.strip is None and self.tokenize is None:
            # the common case: text_rows lowercases as str.lower() does, and
            # declines (None) a document that is not a str
            rows = _core.text_rows(
                docs,
                self.analyzer,
                self.min_n,
                self.max_n,
                self.vocabulary,
                self.stop,
                self.n_features,
                self.alternate_sign,
                self.lowercase,
            )
            if rows is not None:
                return rows
        prepared: List[Any] = [self._document(d) for d in docs]
        if self.tokenize is not None:
            prepared = [self.tokenize(d) for d in prepared]
        packed = _core.text_rows(
            prepared,
            self.analyzer,
            self.min_n,
            self.max_n,
            self.vocabulary,
            self.stop,
            self.n_features,
            self.alternate_sign,
            False,
        )
        if packed is None:
            # _document made every document a str (or, for TOKENS, a list)
            raise TypeError("a document is neither a str nor a list of tokens")
        return packed


# ---- scipy.sparse input to a linear model ---------------------------------------------

_CSR_REGRESSORS = frozenset(("SGDRegressor", "PassiveAggressiveRegressor"))


def sparse_route(spec: Any) -> Optional[tuple]:
    """The nodes and outputs of a model that starts with a linear model
    reading X, with that model reading a packed sparse row instead (the
    ``sparse`` op, scipy's CSR product), and whether COO input keeps its
    order; or None when the model does not start so.  Slots: the packed row
    is the key slot 1 (after one number slot), every node's outputs follow."""
    from mlfast._builders import ir

    if spec.text is not None or spec.key_columns is not None or not spec.nodes:
        return None
    n = spec.n_features
    first = spec.nodes[0]
    if (
        not isinstance(first.op, ir.Linear)
        or first.op.f32
        or not np.array_equal(first.inputs, np.arange(n))
    ):
        return None
    if any((node.inputs < n).any() for node in spec.nodes[1:]) or any(
        (out.slots < n).any() for out in spec.outputs.values()
    ):
        return None

    def moved(slots: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(slots - n + 2, dtype=np.int64)

    op = ir.Sparse(n_features=n, coef=first.op.coef, intercept=first.op.intercept)
    nodes = [ir.Node(op, np.array([1], dtype=np.int64), first.n_out, first.name)]
    import dataclasses

    nodes += [dataclasses.replace(node, inputs=moved(node.inputs)) for node in spec.nodes[1:]]
    outputs = {m: dataclasses.replace(o, slots=moved(o.slots)) for m, o in spec.outputs.items()}
    # LinearModel's regressors multiply a COO matrix as it is; the SGD
    # regressors and every classifier convert it to CSR first
    coo = spec.kind == "regressor" and first.name not in _CSR_REGRESSORS
    return nodes, outputs, coo


def is_sparse(X: Any) -> bool:
    """A scipy.sparse matrix or array (scipy already imported by the caller)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


_PAIR = np.dtype([("column", "<i8"), ("value", "<f8")])


def pack_sparse(X: Any, n_features: int, dense_method: Any, coo: bool) -> np.ndarray:
    """A scipy.sparse X as the packed rows of the sparse route, each row's
    (column, value) pairs in the order scipy's product adds them: CSR as
    check_array(accept_sparse='csr') makes it (other formats converted,
    CSR's entries kept in their order); coo (a regressor, which accepts COO
    as it is): a COO matrix's entries in their own order, row by row.
    What scikit-learn refuses (a wrong width, NaN or inf) is refused by the
    dense model on the row that shows it, so the message is the same."""
    if X.ndim != 2:
        raise ValueError(f"Expected 2D input, got input with shape {X.shape}")
    if X.shape[1] != n_features:
        dense_method(np.zeros((1, X.shape[1])))
    if coo and X.format == "coo":
        # coo_matvec adds the entries in their stored order
        order = np.argsort(X.row, kind="stable")
        counts = np.bincount(X.row, minlength=X.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices, data = X.col[order], X.data[order]
    else:
        if X.format != "csr":
            X = X.tocsr()
        indptr, indices, data = X.indptr, X.indices, X.data
    if data.dtype.kind not in "biuf":
        raise ValueError(f"sparse X of dtype {data.dtype} is not read (real numbers only)")
    finite = np.isfinite(data) if data.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        bad = np.flatnonzero(~finite)
        nan = bad[np.isnan(data[bad])]
        entry = nan[0] if nan.size else bad[0]
        row = int(np.searchsorted(indptr, entry, side="right") - 1)
        dense_method(X.tocsr()[row : row + 1].toarray())
    pairs = np.empty(data.size, dtype=_PAIR)
    pairs["column"] = indices
    pairs["value"] = data
    raw = pairs.tobytes()
    bounds = (np.asarray(indptr, dtype=np.int64) * 16).tolist()
    rows = [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return np.array(rows, dtype=object).reshape(len(rows), 1)
