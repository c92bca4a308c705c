"""Differential tests: CountVectorizer, TfidfVectorizer, HashingVectorizer
and TfidfTransformer, alone and before LogisticRegression, LinearSVC,
SGDClassifier and Ridge, against scikit-learn.

Text is generated: words of Latin, accented, Greek, Cyrillic, CJK, emoji,
digits, underscores and combining marks, empty documents, unknown words and
long documents.  The default token pattern, done in C, is checked against
``re`` over a large corpus drawn from every Unicode category; murmurhash
against scikit-learn's.  Decision values, probabilities and the vectorizers'
rows are equal bit for bit (the same operations in the same order as
scipy's CSR product), labels equal.
"""

from __future__ import annotations

import pickle
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from sklearn.utils import murmurhash3_32
from support.variants import load_variant

import mlfast
from mlfast import _core

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "ate",
    "food",
    "Café",
    "très",
    "bon",
    "naïve",
    "résumé",
    "Straße",
    "ΣΟΦΊΑ",
    "σοφία",
    "Москва",
    "привет",
    "中文",
    "文本",
    "测试",
    "日本語",
    "한국어",
    "😀",
    "🎉x",
    "x_y",
    "__init__",
    "123",
    "4.5",
    "a",
    "I",
    "İstanbul",
    "e\u0301t\u00e9",
    "ｆｕｌｌ",
    "ﬁne",
    "Ⅻ",
    "٣٤",
    "x²",
    "don't",
    "e-mail",
    "C++",
    "ǅemal",
    "ΌΣΟΣ",
]
SEPARATORS = [" ", "  ", "\t", "\n", ", ", ". ", "\u3000", "\xa0", " - ", "!"]


def corpus(n: int, seed: int, unknown: bool = False, long: bool = False):
    rng = np.random.default_rng(seed)
    words = WORDS + (["zebra", "quux", "未知", "ñandú"] if unknown else [])
    docs = []
    for i in range(n):
        k = 0 if i % 17 == 5 else int(rng.integers(1, 400 if long and i % 3 == 0 else 30))
        parts = []
        for _ in range(k):
            parts.append(words[int(rng.integers(len(words)))])
            parts.append(SEPARATORS[int(rng.integers(len(SEPARATORS)))])
        docs.append("".join(parts))
    return docs


def labels(docs, k: int = 2):
    return np.array([(len(d) + d.count("a")) % k for d in docs])


# ---- the tokenizer and the hash ------------------------------------------------------


def _unicode_sample(seed: int, n_docs: int, length: int):
    """Documents drawn from every assigned code point class: letters of all
    kinds, marks, numbers (Nd, Nl, No), connector punctuation, symbols,
    separators, controls, format characters, lone surrogates."""
    rng = np.random.default_rng(seed)
    by_cat = {}
    for cp in range(0x110000):
        by_cat.setdefault(unicodedata.category(chr(cp)), []).append(cp)
    cats = sorted(by_cat)
    docs = []
    for _ in range(n_docs):
        cps = []
        for _ in range(length):
            pool = by_cat[cats[int(rng.integers(len(cats)))]]
            cps.append(pool[int(rng.integers(len(pool)))])
        docs.append("".join(map(chr, cps)))
    return docs


def test_default_token_pattern_equals_re_on_every_unicode_category():
    pattern = re.compile(r"(?u)\b\w\w+\b")
    docs = _unicode_sample(0, 3000, 60)
    for doc in docs:
        assert _core.text_tokens(doc) == pattern.findall(doc), ascii(doc)


def test_default_token_pattern_equals_re_on_every_code_point_pair():
    # each code point between two word characters and alone: \w is decided
    # for all of Unicode, as _sre decides it
    pattern = re.compile(r"(?u)\b\w\w+\b")
    chars = [chr(cp) for cp in range(0x110000)]
    for start in range(0, len(chars), 4096):
        block = chars[start : start + 4096]
        doc = "ab".join(block) + " " + " ".join(c + c for c in block)
        assert _core.text_tokens(doc) == pattern.findall(doc), hex(start)


def test_default_token_pattern_on_generated_text():
    pattern = re.compile(r"(?u)\b\w\w+\b")
    for doc in corpus(500, 1, unknown=True, long=True):
        for text in (doc, doc.lower()):
            assert _core.text_tokens(text) == pattern.findall(text)


def test_lowercase_equals_str_lower_on_every_code_point():
    # text_rows lowercases in C: the simple mapping, and str.lower() itself
    # for a text holding U+0130 or U+03A3 (final sigma)
    chars = [chr(cp) for cp in range(0x110000)]
    for start in range(0, len(chars), 8192):
        block = "".join(chars[start : start + 8192])
        assert _core.text_lower(block) == block.lower(), hex(start)
    for doc in (
        ["ΣΑΣ ΣΑΣ. Σ", "İstanbul", "ὈΔΥΣΣΕΎΣ", "aΣ", "Σa", "aͅΣ b"]
        + _unicode_sample(4, 2000, 40)
        + corpus(300, 5)
    ):
        assert _core.text_lower(doc) == doc.lower(), ascii(doc)


def test_murmurhash_equals_scikit_learn():
    tokens = set()
    for doc in corpus(300, 2, unknown=True) + _unicode_sample(3, 200, 12):
        tokens.update(doc.split())
        tokens.update(doc[i : i + 3] for i in range(0, len(doc), 2))
    tokens.update(["", "a", "ab", "abc", "abcd", "abcde"])
    checked = 0
    for t in tokens:
        try:
            data = t.encode("utf-8")
        except UnicodeEncodeError:
            continue
        assert _core.murmurhash3_32(data) == murmurhash3_32(data), ascii(t)
        checked += 1
    assert checked > 1000


# ---- vectorizers before linear models ----------------------------------------------------

VECTORIZERS = {
    "tfidf": lambda: TfidfVectorizer(),
    "count": lambda: CountVectorizer(),
    "tfidf_bigrams_sublinear": lambda: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
    "tfidf_l1_noidf": lambda: TfidfVectorizer(norm="l1", use_idf=False),
    "tfidf_nonorm_nosmooth": lambda: TfidfVectorizer(norm=None, smooth_idf=False),
    "tfidf_binary_upper": lambda: TfidfVectorizer(binary=True, lowercase=False),
    "tfidf_stop_words": lambda: TfidfVectorizer(
        stop_words=["the", "on", "文本"], ngram_range=(1, 3)
    ),
    "tfidf_english_unigrams": lambda: TfidfVectorizer(stop_words="english"),
    "tfidf_accents_unicode": lambda: TfidfVectorizer(strip_accents="unicode"),
    "tfidf_accents_ascii": lambda: TfidfVectorizer(strip_accents="ascii", ngram_range=(2, 2)),
    "tfidf_token_pattern": lambda: TfidfVectorizer(token_pattern=r"[^\s,.!]+"),
    "tfidf_token_group": lambda: TfidfVectorizer(token_pattern=r"(?u)\b(\w)\w*\b"),
    "tfidf_vocabulary": lambda: TfidfVectorizer(
        vocabulary=["cat", "dog", "café", "中文", "the", "missing"]
    ),
    "count_binary_bigrams": lambda: CountVectorizer(binary=True, ngram_range=(2, 3)),
    "char": lambda: TfidfVectorizer(analyzer="char", ngram_range=(1, 3)),
    "char_wb": lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)),
    "char_wb_long": lambda: CountVectorizer(
        analyzer="char_wb", ngram_range=(5, 7), lowercase=False
    ),
    "hashing": lambda: HashingVectorizer(n_features=256),
    "hashing_unsigned_l1": lambda: HashingVectorizer(
        n_features=64, alternate_sign=False, norm="l1", ngram_range=(1, 2)
    ),
    "hashing_binary_nonorm": lambda: HashingVectorizer(
        n_features=1 << 12, binary=True, norm=None, analyzer="char_wb"
    ),
    "hashing_stop_words": lambda: HashingVectorizer(
        n_features=128, stop_words=["the", "on"], ngram_range=(1, 2)
    ),
    "min_max_df": lambda: TfidfVectorizer(min_df=2, max_df=0.5, max_features=40),
}


def _fit_pipeline(vec_name: str, final, n_classes: int = 2):
    docs = corpus(300, 10)
    y = labels(docs, n_classes)
    steps = [VECTORIZERS[vec_name]()]
    if vec_name.startswith("hashing") and vec_name != "hashing":
        steps.append(TfidfTransformer(sublinear_tf=vec_name == "hashing_unsigned_l1"))
    pipe = make_pipeline(*steps, final).fit(docs, y)
    return pipe


def _same(a, b, exact: bool = True):
    """Equal: bit for bit (rows, decision values), or within 1e-12 where
    the step after the product is the linear models' own (probabilities)."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind == "f" and exact:
        np.testing.assert_array_equal(a, b)
    elif a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    else:
        assert (a == b).all()


TEST_DOCS = corpus(120, 99, unknown=True, long=True) + [
    "",
    " ",
    "zebra quux",
    "CAT",
    "🎉x 🎉x 🎉x",
    "a" * 5000,
]


@pytest.mark.parametrize("vec_name", sorted(VECTORIZERS))
def test_vectorizer_logistic_regression(vec_name):
    pipe = _fit_pipeline(vec_name, LogisticRegression(max_iter=300))
    model = mlfast.compile(pipe)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        _same(
            getattr(model, method)(TEST_DOCS),
            getattr(pipe, method)(TEST_DOCS),
            exact=method == "decision_function",
        )


@pytest.mark.parametrize("final", ["linear_svc", "sgd_log", "sgd_hinge", "ridge", "logreg_multi"])
@pytest.mark.parametrize("vec_name", ["tfidf", "count", "char_wb", "hashing"])
def test_vectorizer_other_linear_models(vec_name, final):
    models = {
        "linear_svc": (lambda: LinearSVC(), 2),
        "sgd_log": (lambda: SGDClassifier(loss="log_loss", random_state=0), 3),
        "sgd_hinge": (lambda: SGDClassifier(random_state=0), 2),
        "ridge": (lambda: Ridge(), 2),
        "logreg_multi": (lambda: LogisticRegression(max_iter=300), 4),
    }
    make, k = models[final]
    pipe = _fit_pipeline(vec_name, make(), k)
    model = mlfast.compile(pipe)
    _same(model.predict(TEST_DOCS), pipe.predict(TEST_DOCS))
    for method in ("decision_function", "predict_proba"):
        if hasattr(pipe, method):
            _same(
                getattr(model, method)(TEST_DOCS),
                getattr(pipe, method)(TEST_DOCS),
                exact=method == "decision_function",
            )


@pytest.mark.parametrize("vec_name", sorted(VECTORIZERS))
def test_vectorizer_transform_equals_its_sparse_rows(vec_name):
    docs = corpus(200, 11)
    vec = VECTORIZERS[vec_name]().fit(docs)
    if isinstance(vec, HashingVectorizer) and vec.n_features > 4096:
        pytest.skip("wide dense rows")
    model = mlfast.compile(vec)
    _same(model.transform(TEST_DOCS), vec.transform(TEST_DOCS).toarray())


def test_count_then_tfidf_transformer():
    docs = corpus(200, 12)
    pipe = make_pipeline(
        CountVectorizer(ngram_range=(1, 2)),
        TfidfTransformer(sublinear_tf=True, norm="l1"),
        LogisticRegression(),
    ).fit(docs, labels(docs))
    model = mlfast.compile(pipe)
    _same(model.predict_proba(TEST_DOCS), pipe.predict_proba(TEST_DOCS), exact=False)
    _same(mlfast.compile(pipe[:2]).transform(TEST_DOCS), pipe[:2].transform(TEST_DOCS).toarray())


@pytest.mark.parametrize("kind", ["list", "U", "O", "series", "tuple", "bytes"])
def test_document_containers(kind):
    pipe = _fit_pipeline("tfidf", LogisticRegression())
    model = mlfast.compile(pipe)
    docs = TEST_DOCS[:40]
    given = {
        "list": lambda: list(docs),
        "U": lambda: np.array(docs),
        "O": lambda: np.array(docs, dtype=object),
        "series": lambda: pd.Series(docs),
        "tuple": lambda: tuple(docs),
        "bytes": lambda: [d.encode("utf-8") for d in docs],
    }[kind]()
    _same(model.predict_proba(given), pipe.predict_proba(given), exact=False)
    _same(model.predict(given), pipe.predict(given))


def test_one_document_and_batches_across_threads():
    pipe = _fit_pipeline("tfidf_bigrams_sublinear", LogisticRegression())
    model = mlfast.compile(pipe)
    many = corpus(5000, 13, unknown=True)
    _same(model.predict_proba(many), pipe.predict_proba(many), exact=False)
    for d in many[:20]:
        _same(model.predict_proba([d]), pipe.predict_proba([d]), exact=False)


def test_files_and_pickled_model(tmp_path):
    pipe = _fit_pipeline("tfidf_stop_words", LogisticRegression())
    for variant in ("joblib", "pickle-p5", "joblib-zlib3"):
        model = load_variant(pipe, variant, tmp_path)
        _same(model.predict_proba(TEST_DOCS), pipe.predict_proba(TEST_DOCS), exact=False)
        again = pickle.loads(pickle.dumps(model))
        _same(again.predict_proba(TEST_DOCS), pipe.predict_proba(TEST_DOCS), exact=False)


def test_grid_search_of_a_text_pipeline():
    from sklearn.model_selection import GridSearchCV

    docs = corpus(200, 14)
    search = GridSearchCV(
        make_pipeline(TfidfVectorizer(), LogisticRegression()),
        {"logisticregression__C": [0.1, 1.0]},
        cv=2,
    ).fit(docs, labels(docs))
    model = mlfast.compile(search)
    _same(model.predict_proba(TEST_DOCS), search.predict_proba(TEST_DOCS), exact=False)


# ---- what scikit-learn refuses, and what mlfast does not serve -------------------------


def test_documents_refused_as_scikit_learn_refuses():
    pipe = _fit_pipeline("tfidf", LogisticRegression())
    model = mlfast.compile(pipe)
    for bad in ("one string", ["ok", np.nan], ["ok", None], ["ok", 3]):
        with pytest.raises(Exception) as theirs:
            pipe.predict(bad)
        with pytest.raises(type(theirs.value)) as ours:
            model.predict(bad)
        assert str(ours.value) == str(theirs.value)


def _user_tokenizer(doc):
    return doc.split()


def _user_preprocessor(doc):
    return doc.strip()


@pytest.mark.parametrize("param", ["analyzer", "tokenizer", "preprocessor", "strip_accents"])
def test_user_functions_are_named_not_run(param):
    function = _user_tokenizer if param in ("analyzer", "tokenizer") else _user_preprocessor
    vec = TfidfVectorizer(**{param: function})
    docs = corpus(50, 15)
    pipe = make_pipeline(vec, LogisticRegression()).fit(docs, labels(docs))
    with pytest.raises(mlfast.UnsupportedModelError) as err:
        mlfast.compile(pipe)
    assert f"steps[0].{param}" in str(err.value)
    assert f"{__name__}.{function.__name__}" in str(err.value)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"input": "filename"}, "input='filename'"),
        ({"input": "file"}, "input='file'"),
        ({"encoding": "cp037"}, "encoding='cp037'"),
        ({"stop_words": "english", "ngram_range": (1, 2)}, "stop_words='english'"),
        ({"stop_words": "english", "vocabulary": ["cat", "the"]}, "a given vocabulary"),
    ],
)
def test_refused_parameters(params, fragment):
    docs = corpus(50, 16)
    vec = TfidfVectorizer(**params)
    if params.get("input") in ("filename", "file"):
        vec.set_params(input="content")
        pipe = make_pipeline(vec, LogisticRegression()).fit(docs, labels(docs))
        pipe[0].set_params(**params)
    else:
        pipe = make_pipeline(vec, LogisticRegression()).fit(docs, labels(docs))
    with pytest.raises(mlfast.UnsupportedModelError) as err:
        mlfast.compile(pipe)
    assert fragment in str(err.value)


def test_hashing_with_english_stop_words_is_refused():
    docs = corpus(50, 18)
    pipe = make_pipeline(HashingVectorizer(stop_words="english"), LogisticRegression()).fit(
        docs, labels(docs)
    )
    with pytest.raises(mlfast.UnsupportedModelError) as err:
        mlfast.compile(pipe)
    assert "stop_words='english' with hashing" in str(err.value)


def test_vectorizer_after_another_step_is_refused():
    from sklearn.preprocessing import FunctionTransformer

    docs = corpus(60, 17)
    pipe = make_pipeline(FunctionTransformer(), TfidfVectorizer(), LogisticRegression()).fit(
        docs, labels(docs)
    )
    with pytest.raises(mlfast.UnsupportedModelError) as err:
        mlfast.compile(pipe)
    assert "not after another step" in str(err.value)
    assert "steps[1]" in str(err.value)


# ---- text columns of a DataFrame (a ColumnTransformer's branches) ----------------------


def text_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "title": corpus(n, seed),
            "body": corpus(n, seed + 100, unknown=True),
            "price": rng.normal(size=n),
            "shop": rng.choice(["a", "b", "c"], n),
        }
    )


def text_columns_pipeline(final):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ct = ColumnTransformer(
        [
            ("title", TfidfVectorizer(ngram_range=(1, 2)), "title"),
            (
                "body",
                make_pipeline(
                    CountVectorizer(analyzer="char_wb", ngram_range=(2, 3)), TfidfTransformer()
                ),
                "body",
            ),
            ("price", StandardScaler(), ["price"]),
            ("shop", OneHotEncoder(handle_unknown="ignore"), ["shop"]),
        ]
    )
    train = text_frame(300, 1)
    return make_pipeline(ct, final).fit(train, labels(train["title"], 3))


@pytest.mark.parametrize("final", ["logreg", "forest"])
def test_text_columns_of_a_frame(final):
    from sklearn.ensemble import RandomForestClassifier

    est = (
        LogisticRegression(max_iter=500)
        if final == "logreg"
        else RandomForestClassifier(10, random_state=0)
    )
    pipe = text_columns_pipeline(est)
    model = mlfast.compile(pipe)
    test = text_frame(60, 7)
    want = pipe.predict_proba(test)
    # the ColumnTransformer's rows are sparse (scipy's product); mlfast's
    # linear model reads them dense: equal within 1e-12
    for given, rows in [
        (test, slice(None)),
        (test.iloc[:1], slice(0, 1)),
        (test.to_dict("records"), slice(None)),
        (test.to_dict("records")[3], slice(3, 4)),
    ]:
        _same(model.predict_proba(given), want[rows], exact=False)
        _same(model.predict(given), pipe.predict(test)[rows])
    again = pickle.loads(pickle.dumps(model))
    _same(again.predict_proba(test), want, exact=False)


def test_text_columns_refusals_match():
    pipe = text_columns_pipeline(LogisticRegression(max_iter=500))
    model = mlfast.compile(pipe)
    test = text_frame(5, 8)
    bad = test.copy()
    bad.loc[2, "title"] = np.nan
    with pytest.raises(ValueError) as theirs:
        pipe.predict(bad)
    with pytest.raises(ValueError) as ours:
        model.predict(bad)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="columns are missing"):
        model.predict(test.drop(columns=["body"]))


@pytest.mark.parametrize(
    "final", ["ovr_linear_svc", "calibrated_linear_svc", "soft_vote", "forest"]
)
def test_vectorizer_before_meta_estimators_and_a_forest(final):
    # the meta-estimators' members each read the sparse rows; a forest
    # reads the vectorizer's dense row (its trees see every column)
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.multiclass import OneVsRestClassifier

    make = {
        "ovr_linear_svc": lambda: OneVsRestClassifier(LinearSVC()),
        "calibrated_linear_svc": lambda: CalibratedClassifierCV(LinearSVC(), cv=3),
        "soft_vote": lambda: VotingClassifier(
            [("lr", LogisticRegression()), ("sgd", SGDClassifier(loss="log_loss", random_state=0))],
            voting="soft",
        ),
        "forest": lambda: RandomForestClassifier(10, random_state=0),
    }[final]
    docs = corpus(300, 3)
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), make()).fit(docs, labels(docs, 3))
    model = mlfast.compile(pipe)
    _same(model.predict(TEST_DOCS), pipe.predict(TEST_DOCS))
    for method in ("predict_proba", "decision_function"):
        if hasattr(pipe, method):
            _same(getattr(model, method)(TEST_DOCS), getattr(pipe, method)(TEST_DOCS), exact=False)
