"""Hostile text models: a vectorizer's state that lies (a vocabulary whose
columns repeat or run past its size, terms that are not strings, an idf_
of the wrong length, an n-gram range that is not one, a pattern that is not
a regular expression) is a ModelFormatError naming the attribute; a pickled
Model whose text analysis lies is refused before anything runs; a packed
row that is not one reads as an empty row, never outside its bytes."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlfast
from mlfast import _core

DOCS = ["the cat sat", "a dog ran", "the dog sat on the cat", "café au lait", "中文 文本"]
Y = [0, 1, 0, 1, 1]


@pytest.fixture
def pipe():
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression()).fit(DOCS, Y)


def _tamper(pipe, **attrs):
    bad = copy.deepcopy(pipe)
    for key, value in attrs.items():
        target = bad[0]
        if key.startswith("_tfidf."):
            target, key = target._tfidf, key.split(".", 1)[1]
        setattr(target, key, value)
    return bad


@pytest.mark.parametrize(
    "attrs, fragment",
    [
        ({"vocabulary_": {"cat": 0, "dog": 0}}, "vocabulary_'s columns"),
        ({"vocabulary_": {"cat": 0, "dog": 7}}, "vocabulary_'s columns"),
        ({"vocabulary_": {"cat": 0, 3: 1}}, "not a str"),
        ({"vocabulary_": {"cat": "0"}}, "expected a column"),
        ({"vocabulary_": {}}, "non-empty dict"),
        ({"vocabulary_": ["cat"]}, "non-empty dict"),
        ({"ngram_range": (2, 1)}, "ngram_range"),
        ({"ngram_range": (1, "2")}, "ngram_range"),
        ({"token_pattern": "(unclosed"}, "not a regular expression"),
        ({"token_pattern": r"(a)(b)"}, "more than one group"),
        ({"norm": "l3", "_tfidf.norm": "l3"}, "norm='l3'"),
        ({"_tfidf.idf_": np.ones(3)}, "idf_ has shape"),
        ({"_tfidf": "not a transformer"}, "_tfidf"),
        ({"binary": "yes"}, "binary"),
        ({"analyzer": "sentence"}, "analyzer='sentence'"),
        ({"stop_words": 42}, "stop_words"),
    ],
)
def test_lying_state_is_a_format_error(pipe, attrs, fragment):
    bad = _tamper(pipe, **attrs)
    with pytest.raises((mlfast.ModelFormatError, mlfast.UnsupportedModelError)) as err:
        mlfast.compile(bad)
    assert fragment in str(err.value)
    assert "steps[0]" in str(err.value)


def test_hashing_n_features_lies():
    pipe = make_pipeline(HashingVectorizer(n_features=16), LogisticRegression()).fit(DOCS, Y)
    for n in (0, -3, 2**40):
        bad = copy.deepcopy(pipe)
        bad[0].n_features = n
        with pytest.raises(mlfast.ModelFormatError) as err:
            mlfast.compile(bad)
        assert "n_features" in str(err.value)
    bad = copy.deepcopy(pipe)
    bad[0].n_features = 32  # the model after it reads 16
    with pytest.raises(mlfast.ModelFormatError) as err:
        mlfast.compile(bad)
    assert "coef_ has 16 features" in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        {"analyzer": 9},
        {"ngram": [0, 2]},
        {"ngram": [3, 2]},
        {"n_features": -1},
        {"encoding": "rot13"},
        {"terms": "abc"},
        {"offsets": np.array([0, 99])},
        {"columns": None},
        {"stop_words": [1, 2]},
        {"lowercase": "yes"},
    ],
)
def test_pickled_model_with_lying_text_is_refused(pipe, change):
    model = mlfast.compile(pipe)
    state = model._spec.state()
    state["meta"]["text"] = dict(state["meta"]["text"], **change)
    with pytest.raises((ValueError, TypeError)):
        mlfast._model.Model(mlfast._model.spec_from_state(state))


def test_vocabulary_checks_its_arrays():
    text = np.frombuffer(b"catdog", dtype=np.uint8)
    for offsets, columns in [
        ([0, 3, 7], [0, 1]),
        ([0, 4, 3, 6][:3], [0, 1]),
        ([0, 3, 6], [0, -1]),
        ([0, 3], [0, 1]),
        ([1, 3, 6], [0, 1]),
    ]:
        with pytest.raises(ValueError):
            _core.Vocabulary(
                text, np.array(offsets, dtype=np.int64), np.array(columns, dtype=np.int64)
            )
    with pytest.raises(ValueError, match="also term"):
        _core.Vocabulary(
            np.frombuffer(b"catcat", dtype=np.uint8),
            np.array([0, 3, 6], dtype=np.int64),
            np.array([0, 1], dtype=np.int64),
        )


def test_rows_that_are_not_packed_rows_read_as_empty(pipe):
    # the graph of a text model reads whatever key it is given: a str, a
    # number, bytes of a length that is no whole number of pairs, pairs
    # naming columns outside the vocabulary -- each is an empty row
    model = mlfast.compile(pipe)
    empty = model._graph.decision_function(np.array([[b""]], dtype=object))
    weird = np.empty((5, 1), dtype=object)
    weird[:, 0] = [
        "a str",
        3.5,
        b"\x01" * 15,
        np.array([(10**9, 1.0)], dtype=[("c", "<i8"), ("v", "<f8")]).tobytes(),
        np.array([(-4, 1.0)], dtype=[("c", "<i8"), ("v", "<f8")]).tobytes(),
    ]
    got = model._graph.decision_function(weird)
    np.testing.assert_array_equal(got, np.repeat(empty, 5))


def test_text_rows_refuses_what_is_not_a_document():
    # a document that is not a str is declined: the Python side reads it
    # as scikit-learn does (decodes bytes, refuses NaN...)
    assert _core.text_rows([b"bytes"], 1, 1, 1, None, None, 16, 1, 1) is None
    assert _core.text_rows(["ok", None], 3, 1, 1, None, None, 16, 1, 1) is None
    with pytest.raises(TypeError):
        _core.text_rows(["ok"], 2, 1, 1, None, None, 16, 1, 0)  # tokens: lists
    with pytest.raises(ValueError):
        _core.text_rows(["ok"], 1, 2, 1, None, None, 16, 1, 0)
    with pytest.raises(ValueError):
        _core.text_rows(["ok"], 1, 1, 1, None, None, 0, 1, 0)
    with pytest.raises(TypeError):
        _core.text_rows(["ok"], 1, 1, 1, "vocab", None, 16, 1, 0)


def test_model_pickles_and_loads_safely(pipe):
    model = mlfast.compile(pipe)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(DOCS), pipe.predict(DOCS))


@pytest.mark.parametrize("value", ["x", [], [[0]], [[9, None]], [["0", None]], [[-1, None]]])
def test_pickled_model_with_lying_text_columns_is_refused(value):
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    frame = pd.DataFrame({"text": DOCS, "n": np.arange(5.0)})
    pipe = make_pipeline(
        ColumnTransformer([("t", TfidfVectorizer(), "text")], remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, Y)
    model = mlfast.compile(pipe)
    state = model._spec.state()
    good = state["meta"]["text_columns"][0][1]
    state["meta"]["text_columns"] = (
        [[c, good if t is None else t] for c, t in value]
        if isinstance(value, list) and value and len(value[0]) == 2
        else value
    )
    with pytest.raises((ValueError, TypeError)):
        mlfast._model.Model(mlfast._model.spec_from_state(state))
