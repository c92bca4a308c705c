"""Text: CountVectorizer, TfidfVectorizer, HashingVectorizer and
TfidfTransformer, and linear models over their sparse rows.

A vectorizer is the model's first step: the documents are its input.  What
its analyzer does (lowercase, accents, tokens, stop words, n-grams, the
vocabulary or the hashing) becomes the model's text analysis
(``GraphBuilder.text``), which the Model runs on the documents at input
(``mlfast/_text.py`` and ``_core.text_rows``): each document becomes one
packed sparse row in a key slot.  The weighting (binary, sublinear tf,
idf, norms) and a linear model's product are one ``sparse`` op over that
row, so a row never becomes dense unless the vectorizer's own transform is
asked for.  Follows ``sklearn/feature_extraction/text.py``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import Analyzer, Built, Cols, Out, Sparse, Strings, TextNorm
from mlfast._text import ENCODINGS, encode_terms
from mlfast.errors import UnsupportedModelError

#: scikit-learn's default token_pattern, which _core.text_rows runs in C
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: the longest token_pattern compiled (the stdlib re runs it on each document)
MAX_PATTERN = 10_000
#: the widest dense row a vectorizer's own transform returns
MAX_DENSE = 1 << 24
DECODE_ERRORS = frozenset(("strict", "ignore", "replace"))


class SparseCols(Cols):
    """A vectorizer's output: its dense columns (for its own transform), and
    the sparse row they come from -- the key slot of the packed row and how
    each value is weighed -- for a linear model to read without them."""

    __slots__ = ("key", "weights")

    def __init__(self, slots: Any, key: Cols, weights: Dict[str, Any]):
        super().__init__(slots)
        self.key = key
        self.weights = weights


def _norm(node: Node, value: Any, key: str) -> int:
    if value is None:
        return int(TextNorm.NONE)
    if value == "l1":
        return int(TextNorm.L1)
    if value == "l2":
        return int(TextNorm.L2)
    raise node.fail(f"{key}={value!r} is not None, 'l1' or 'l2'")


def _flag(node: Node, key: str, default: bool) -> bool:
    value = node.state.get(key, default)
    if not isinstance(value, (bool, np.bool_)):
        raise node.fail(f"{key} is {value!r}, expected True or False")
    return bool(value)


def _user_code(node: Node) -> None:
    """A callable analyzer, tokenizer, preprocessor or strip_accents is the
    user's code: named, never called."""
    for key in ("analyzer", "tokenizer", "preprocessor", "strip_accents"):
        value = node.state.get(key)
        if value is None or isinstance(value, str):
            continue
        path = getattr(value, "path", None) or type(value).__name__
        raise UnsupportedModelError(
            f"{node.where}.{key} ({node.name}) is {path}, a function of the user's code: "
            "mlfast never runs code from a model file; refit with a built-in "
            f"{key}" + (" or a token_pattern" if key == "tokenizer" else "")
        )


def _stop_words(node: Node, max_n: int, fixed: bool, hashing: bool) -> Optional[List[str]]:
    stop = node.state.get("stop_words")
    if stop is None:
        return None
    if stop == "english":
        # the list lives in scikit-learn, which serving does without; it
        # changes nothing when a vocabulary was fitted without it and no
        # n-gram spans a removed word
        if max_n == 1 and not fixed and not hashing:
            return None
        why = "hashing" if hashing else "a given vocabulary" if fixed else "word n-grams"
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): stop_words='english' with {why} is not served "
            "yet; give the stop words as a list"
        )
    if isinstance(stop, str):
        raise node.fail(f"stop_words={stop!r} is not a list")
    if isinstance(stop, (set, frozenset)):
        items = list(stop)
    elif isinstance(stop, (list, tuple)):
        items = list(stop)
    else:
        raise node.fail(f"stop_words is a {type(stop).__name__}, expected a list")
    if not all(isinstance(w, str) for w in items):
        raise node.fail("stop_words holds a value that is not a str")
    return sorted(set(items))


def _analysis(node: Node, hashing: bool) -> Dict[str, Any]:
    """The vectorizer's analyzer, as plain data (``Spec.text``)."""
    _user_code(node)
    source = node.state.get("input", "content")
    if source != "content":
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): input={source!r} reads files named by the "
            "documents; a served model reads the documents themselves (input='content')"
        )
    encoding = node.state.get("encoding", "utf-8")
    decode_error = node.state.get("decode_error", "strict")
    if not isinstance(encoding, str) or encoding.lower() not in ENCODINGS:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): encoding={encoding!r} is not served (bytes "
            f"documents are decoded with one of {', '.join(sorted(ENCODINGS))})"
        )
    if decode_error not in DECODE_ERRORS:
        raise node.fail(f"decode_error={decode_error!r} is not strict, ignore or replace")
    analyzer = node.get("analyzer", "word")
    ngram = node.get("ngram_range", (1, 1))
    if (
        not isinstance(ngram, (tuple, list))
        or len(ngram) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ngram)
    ):
        raise node.fail(f"ngram_range is {ngram!r}, expected two integers")
    min_n, max_n = int(ngram[0]), int(ngram[1])
    if not 1 <= min_n <= max_n <= 64:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): ngram_range={ngram!r} "
            "is not served (1 <= min_n <= max_n <= 64)"
        )
    strip = node.state.get("strip_accents")
    if strip not in (None, "ascii", "unicode"):
        raise node.fail(f"strip_accents={strip!r} is not None, 'ascii' or 'unicode'")
    if strip == "unicode" and node.version < (0, 22):
        # 0.22 stopped leaving text already in NFKD unstripped
        strip = "unicode_0.21"
    fixed = bool(node.state.get("fixed_vocabulary_", False))
    text: Dict[str, Any] = {
        "name": node.name,
        "lowercase": _flag(node, "lowercase", True),
        "strip_accents": strip,
        "encoding": encoding.lower(),
        "decode_error": decode_error,
        "ngram": [min_n, max_n],
        "token_pattern": None,
        "stop_words": None,
    }
    if analyzer == "word":
        pattern = node.state.get("token_pattern", DEFAULT_TOKEN_PATTERN)
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
            raise node.fail(
                f"token_pattern is {str(pattern)[:80]!r}, expected a str of at "
                f"most {MAX_PATTERN} characters"
            )
        if pattern != DEFAULT_TOKEN_PATTERN:
            import re

            try:
                groups = re.compile(pattern).groups
            except re.error as exc:
                raise node.fail(
                    f"token_pattern {pattern!r} is not a regular expression: {exc}"
                ) from None
            if groups > 1:
                raise node.fail(f"token_pattern {pattern!r} has more than one group")
            text["token_pattern"] = pattern
        text["analyzer"] = int(Analyzer.TOKENS if text["token_pattern"] else Analyzer.WORD)
        text["stop_words"] = _stop_words(node, max_n, fixed, hashing)
    elif analyzer == "char":
        text["analyzer"] = int(Analyzer.CHAR)
    elif analyzer == "char_wb":
        text["analyzer"] = int(Analyzer.CHAR_WB)
    else:
        raise node.fail(f"analyzer={analyzer!r} is not word, char or char_wb")
    return text


def _start(node: Node, b: Builders, X: Optional[Cols], text: Dict[str, Any]) -> Cols:
    """Where the documents are: the model's input (a vectorizer first), or
    one input column (a ColumnTransformer's branch); either way one key
    slot, which holds each document's packed row."""
    graph = b.graph
    if X is None and graph.n_features is None:
        graph.text = text
        return b.keys(node, b.input(node, None, 1))
    column = int(X.slots[0]) if X is not None and len(X) == 1 else -1
    # a ColumnTransformer's branch (or the first step of one) reads its
    # column as a 1-D array of documents
    in_branch = ".transformers_[" in node.where
    if (
        X is None
        or not in_branch
        or not 0 <= column < (graph.n_features or 0)
        or graph.text is not None
    ):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): a vectorizer is served as the model's first step "
            "or on one input column of a ColumnTransformer, reading the documents (not "
            "after another step)"
        )
    if graph.text_columns.get(column, text) != text:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): input column {column} is read by two vectorizers "
            "that analyse it differently"
        )
    graph.text_columns[column] = text
    return b.keys(node, X)


def _built(node: Node, b: Builders, key: Cols, weights: Dict[str, Any]) -> Built:
    n = int(weights["n_features"])
    if n > MAX_DENSE:
        raise UnsupportedModelError(f"{node.where} ({node.name}): {n} features")
    dense = b.add(node, Sparse(**weights), key, n)
    return Built(
        node.name,
        "transformer",
        {"transform": Out(SparseCols(dense.slots, key, weights))},
        1,
        first_name=node.name,
        strings=Strings.CONVERT,
    )


def _dtype_counts(node: Node, default: Any) -> bool:
    """Whether the vectorizer's dense output is int64 counts (True) or
    float64 (False); other dtypes are not served."""
    from mlfast._builders.encoders import numpy_dtype

    dtype = numpy_dtype(node, "dtype", default)
    if dtype == np.int64:
        return True
    if dtype == np.float64:
        return False
    raise UnsupportedModelError(
        f"{node.where} ({node.name}): dtype={dtype} is not served (int64 or float64)"
    )


def _idf_diag(tfidf: Node, n: int) -> np.ndarray:
    """idf_ of scikit-learn up to 1.4: the diagonal of _idf_diag, a CSR
    matrix (scipy.sparse.diags(idf, format='csr')), read as data."""
    diag = tfidf.get("_idf_diag")
    state = getattr(diag, "state", None)
    if getattr(diag, "path", "").rsplit(".", 1)[-1] != "csr_matrix" or not isinstance(state, dict):
        raise tfidf.fail("_idf_diag is not a CSR matrix")
    shape = state.get("_shape")
    indices, indptr = state.get("indices"), state.get("indptr")
    data = tfidf.array("_idf_diag.data", ndim=(1,), kinds="f", value=state.get("data"))
    if (
        tuple(shape or ()) != (n, n)
        or not isinstance(indices, np.ndarray)
        or not isinstance(indptr, np.ndarray)
        or data.shape != (n,)
        or not np.array_equal(indices, np.arange(n))
        or not np.array_equal(indptr, np.arange(n + 1))
    ):
        raise tfidf.fail(f"_idf_diag is not the ({n}, {n}) diagonal of the idf")
    return np.ascontiguousarray(data, dtype=np.float64)


def _tfidf_weights(node: Node, tfidf: Node, n: int) -> Dict[str, Any]:
    idf = None
    reverse = False
    if "idf_" in tfidf.state:
        idf = tfidf.vector("idf_", n)
    elif "_idf_diag" in tfidf.state:
        # up to 1.4 X @ _idf_diag: scipy's product lists each row last
        # column first and drops zeros, and what follows sums in that order
        idf = _idf_diag(tfidf, n)
        reverse = True
    return {
        "sublinear": _flag(tfidf, "sublinear_tf", False),
        "idf": idf,
        "norm": _norm(tfidf, tfidf.state.get("norm", "l2"), "norm"),
        "reverse": reverse,
    }


def _vocabulary(node: Node) -> Dict[str, Any]:
    vocab = node.get("vocabulary_")
    if not isinstance(vocab, dict) or not vocab:
        raise node.fail("vocabulary_ must be a non-empty dict of terms")
    terms = list(vocab.keys())
    if not all(isinstance(t, str) for t in terms):
        raise node.fail("vocabulary_ holds a term that is not a str")
    columns = []
    for t in terms:
        c = vocab[t]
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
            raise node.fail(f"vocabulary_[{t[:40]!r}] is {c!r}, expected a column")
        columns.append(int(c))
    cols = np.asarray(columns, dtype=np.int64)
    n = len(terms)
    if cols.min() < 0 or cols.max() >= n or np.unique(cols).size != n:
        raise node.fail(f"vocabulary_'s columns are not 0..{n - 1}, each once")
    text, offsets = encode_terms(terms)
    return {"terms": text, "offsets": offsets, "columns": cols, "n_features": n}


@register("sklearn.feature_extraction.text", "CountVectorizer", "TfidfVectorizer")
def build_vectorizer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    text = _analysis(node, hashing=False)
    text.update(_vocabulary(node))
    n = text["n_features"]
    weights: Dict[str, Any] = {"n_features": n, "binary": _flag(node, "binary", False)}
    if node.name == "TfidfVectorizer":
        tfidf = node.get("_tfidf")
        if getattr(tfidf, "path", "").rsplit(".", 1)[-1] != "TfidfTransformer":
            raise node.fail("_tfidf is not a fitted TfidfTransformer")
        if _dtype_counts(node, np.float64):
            raise UnsupportedModelError(f"{node.where} ({node.name}): dtype=int64")
        weights.update(_tfidf_weights(node, Node(tfidf, f"{node.where}._tfidf"), n))
    else:
        weights["counts"] = _dtype_counts(node, np.int64)
    key = _start(node, b, X, text)
    return _built(node, b, key, weights)


@register("sklearn.feature_extraction.text", "HashingVectorizer")
def build_hashing_vectorizer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    text = _analysis(node, hashing=True)
    n = node.integer("n_features", 1 << 20)
    if not 1 <= n <= (1 << 31) - 1:
        raise node.fail(f"n_features={n} is outside 1..2**31-1")
    text.update(
        {
            "terms": None,
            "offsets": None,
            "columns": None,
            "n_features": n,
            "alternate_sign": _flag(node, "alternate_sign", True),
        }
    )
    if _dtype_counts(node, np.float64):
        raise UnsupportedModelError(f"{node.where} ({node.name}): dtype=int64")
    weights = {
        "n_features": n,
        "binary": _flag(node, "binary", False),
        "pre_norm": _norm(node, node.state.get("norm", "l2"), "norm"),
    }
    key = _start(node, b, X, text)
    return _built(node, b, key, weights)


@register("sklearn.feature_extraction.text", "TfidfTransformer")
def build_tfidf_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    if not isinstance(X, SparseCols):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): served after a CountVectorizer or "
            "HashingVectorizer only (its sparse rows)"
        )
    weights = dict(X.weights)
    if (
        weights.get("sublinear")
        or weights.get("idf") is not None
        or weights.get("norm")
        or weights.get("reverse")
    ):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): a second tf-idf weighting of the same rows is not served"
        )
    n = int(weights["n_features"])
    weights.update(_tfidf_weights(node, node, n))
    weights["counts"] = False
    return _built(node, b, X.key, weights)


def sparse_product(
    node: Node, b: Builders, X: SparseCols, coef: np.ndarray, intercept: np.ndarray
) -> Cols:
    """X @ coef.T + intercept over the sparse rows, as scipy multiplies a
    CSR matrix (safe_sparse_dot), never densified."""
    n = int(X.weights["n_features"])
    if coef.shape[1] != n:
        raise node.fail(
            f"coef_ has {coef.shape[1]} features but the vectorizer before it makes {n}"
        )
    weights = dict(X.weights)
    weights["counts"] = False
    op = Sparse(
        **weights,
        coef=np.ascontiguousarray(coef, dtype=np.float64),
        intercept=np.ascontiguousarray(intercept, dtype=np.float64),
    )
    return b.add(node, op, X.key, coef.shape[0])
