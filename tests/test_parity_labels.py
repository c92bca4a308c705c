"""Differential tests: LabelEncoder and MultiLabelBinarizer saved alone
(they read y: labels, or sets of labels), against scikit-learn: transform
and inverse_transform over str, object, int and float labels (NaN among
them), unseen labels refused in scikit-learn's words, file variants."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.preprocessing import LabelBinarizer, LabelEncoder, MultiLabelBinarizer
from support.variants import load_variant

import mlfast

LABELS = {
    "str": (["dog", "cat", "emu", "cat", "yak"], ["emu", "dog", "dog"], ["cow"]),
    "object": (
        np.array(["b", "a", "c"], dtype=object),
        np.array(["c", "a"], dtype=object),
        np.array(["zz"], dtype=object),
    ),
    "int": ([3, 1, 2, 3, -7], [2, -7, 1], [4]),
    "float-nan": ([1.5, np.nan, 2.0, 1.5], [np.nan, 2.0], [9.0]),
    "bool": ([True, False, True], [False], [2]),
}


def outcome(fn, *args):
    try:
        return fn(*args), None
    except (ValueError, TypeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("kind", sorted(LABELS))
@pytest.mark.parametrize("variant", ["compile", "joblib", "pickle-p2", "loads-bytes"])
def test_label_encoder(kind, variant, tmp_path):
    fit, seen, unseen = LABELS[kind]
    est = LabelEncoder().fit(fit)
    model = load_variant(est, variant, tmp_path)
    assert model.classes_.dtype == est.classes_.dtype
    np.testing.assert_array_equal(model.classes_, est.classes_)
    for y in (seen, list(seen), np.asarray(seen), unseen, [seen[0]]):
        want, want_error = outcome(est.transform, y)
        got, got_error = outcome(model.transform, y)
        assert got_error == want_error
        if want is not None:
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    codes = np.arange(len(est.classes_))[::-1]
    for y in (codes, list(codes), [len(codes)], [-1, 0]):
        want, want_error = outcome(est.inverse_transform, y)
        got, got_error = outcome(model.inverse_transform, y)
        assert got_error == want_error
        if want is not None:
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_label_encoder_empty_and_column_input():
    est = LabelEncoder().fit(["a", "b"])
    model = mlfast.compile(est)
    np.testing.assert_array_equal(model.transform([]), est.transform([]))
    with pytest.raises(ValueError, match="y should be a 1d array"):
        model.transform([["a", "b"], ["b", "a"]])
    with pytest.warns(UserWarning, match="column-vector y"):
        got = model.transform([["a"], ["b"]])
    np.testing.assert_array_equal(got, [0, 1])


@pytest.mark.parametrize("variant", ["compile", "joblib", "pickle-p2"])
def test_multilabel_binarizer(variant, tmp_path):
    est = MultiLabelBinarizer().fit([{"sci-fi", "drama"}, {"comedy"}, {"drama", "noir"}])
    model = load_variant(est, variant, tmp_path)
    y = [("drama",), (), ("noir", "comedy", "drama")]
    want = est.transform(y)
    got = model.transform(y)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert model.inverse_transform(want) == est.inverse_transform(want)
    with pytest.warns(UserWarning, match=r"unknown class\(es\) \['horror', 'western'\] will be"):
        got = model.transform([("western", "drama", "horror")])
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(got, est.transform([("western", "drama", "horror")]))
    for bad in (np.ones((1, 3), int), np.full((1, 4), 2)):
        _, want_error = outcome(est.inverse_transform, bad)
        _, got_error = outcome(model.inverse_transform, bad)
        assert got_error == want_error


def test_a_pickled_label_model_is_the_same():
    model = mlfast.compile(LabelEncoder().fit(["x", "y"]))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(["y"]), [1])


def test_files_that_lie_are_format_errors():
    est = LabelEncoder().fit([1, 2, 3])
    est.classes_ = np.array([3, 1, 2])
    with pytest.raises(mlfast.ModelFormatError, match="sorted and distinct"):
        mlfast.compile(est)
    est.classes_ = np.array([[1, 2]])
    with pytest.raises(mlfast.ModelFormatError, match="1-D"):
        mlfast.compile(est)


def test_label_binarizer_is_named_as_not_served():
    with pytest.raises(mlfast.UnsupportedModelError, match="LabelBinarizer"):
        mlfast.compile(LabelBinarizer().fit(["a", "b", "c"]))
