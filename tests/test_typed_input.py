"""Typed input: the rows a model with categorical columns reads, in every
form, as scikit-learn reads them -- and the graph's guard between numbers
and keys, against hostile graphs and lying key tables.

Forms: pandas columns of every dtype (float, int, bool, nullable Int64,
Float64 and boolean with pd.NA, object, str, string, category), numpy U/S/O
arrays, a dict, a list of dicts, lists of rows.  The keys of values and of
categories come from one C function (``_core.encode_keys``): Python's
equality, str apart from bytes, every NaN one missing value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import mlfast
from mlfast import _core
from mlfast._builders import ir


def frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice(["a", "b", "c"], n).astype(object)
    na = rng.random(n) < 0.2
    s_none, s_nan = s.copy(), s.copy()
    s_none[na] = None
    s_nan[na] = np.nan
    return pd.DataFrame(
        {
            "f64": rng.normal(size=n),
            "i64": rng.integers(0, 3, n),
            "boo": rng.random(n) < 0.5,
            "Int64": pd.array(np.where(na, None, rng.integers(0, 3, n)), dtype="Int64"),
            "Float64": pd.array(np.where(na, None, rng.integers(0, 3, n) / 2), dtype="Float64"),
            "boolean": pd.array(np.where(na, None, rng.random(n) < 0.5), dtype="boolean"),
            "obj": pd.Series(s_none, dtype=object),
            "str": pd.Series(s_nan).astype("str"),
            "cat": pd.Categorical(s_none),
            "catint": pd.Categorical(np.where(na, np.nan, rng.integers(1, 4, n))),
        }
    )


DTYPE_COLUMNS = ["f64", "i64", "boo", "Int64", "Float64", "boolean", "obj", "str", "cat", "catint"]


@pytest.mark.parametrize("column", DTYPE_COLUMNS)
def test_every_pandas_dtype_as_scikit_learn_reads_it(column):
    train = frame()
    est = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
    ).fit(train[[column]])
    model = mlfast.compile(est)
    test = frame(40, 1)[[column]]
    np.testing.assert_array_equal(model.transform(test), est.transform(test), strict=True)
    ohe = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train[[column]])
    np.testing.assert_array_equal(
        mlfast.compile(ohe).transform(test), ohe.transform(test), strict=True
    )


def test_string_dtype_with_pd_na_is_unknown_as_in_scikit_learn():
    """pd.NA in a 'string' column: scikit-learn reads it as an object it
    has never seen (ignored, or refused in its words)."""
    train = pd.DataFrame({"s": ["a", "b", "a"]})
    test = pd.DataFrame({"s": pd.array(["a", None, "b"], dtype="string")})
    est = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train)
    np.testing.assert_array_equal(mlfast.compile(est).transform(test), est.transform(test))


@pytest.mark.parametrize("form", ["U", "S", "O", "list-of-rows"])
def test_numpy_text_arrays_and_lists(form):
    train = np.array([["a", "x"], ["b", "y"], ["c", "x"]], dtype=object)
    if form == "S":
        train = train.astype("S")
    est = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train)
    model = mlfast.compile(est)
    test = np.array([["a", "y"], ["q", "x"], ["c", "z"]], dtype=object)
    if form == "U":
        test = test.astype("U")
    elif form == "S":
        test = test.astype("S")
    elif form == "list-of-rows":
        test = test.tolist()
    np.testing.assert_array_equal(model.transform(test), est.transform(test), strict=True)
    np.testing.assert_array_equal(
        model.transform(np.asarray(test)[0]), est.transform(np.asarray(test)[:1]), strict=True
    )


def test_str_and_bytes_differ():
    est = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(
        np.array([["a"], ["b"]], dtype=object)
    )
    model = mlfast.compile(est)
    test = np.array([["a"], [b"a"]], dtype=object)
    np.testing.assert_array_equal(model.transform(test), est.transform(test))
    assert model.transform(test)[1].sum() == 0


def test_keys_follow_python_equality():
    values = np.array(
        [
            1,
            1.0,
            True,
            np.float64(1),
            np.int8(1),
            -0.0,
            0,
            False,
            None,
            float("nan"),
            np.float32("nan"),
            "1",
            b"1",
            2**64,
            2**53 + 1,
            float(2**53),
        ],
        dtype=object,
    )
    tags, nums, text, offsets = _core.encode_keys(values)
    keys = list(
        zip(
            tags.tolist(),
            nums.view(np.uint64).tolist(),
            [bytes(text[a:b]) for a, b in zip(offsets[:-1], offsets[1:])],
        )
    )
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            python = (
                a == b
                or (a is None and b is None)
                or (
                    isinstance(a, float)
                    and isinstance(b, (float, np.floating))
                    and a != a
                    and b != b
                )
            )
            if (
                isinstance(a, (float, np.floating))
                and isinstance(b, (float, np.floating))
                and a != a
                and b != b
            ):
                python = True
            assert (keys[i] == keys[j]) == bool(python), (a, b)
    assert _core.decode_keys(tags, nums, text, offsets)[13] == 2**64


def test_dicts_and_records_checked_by_name():
    df = frame()
    y = (df.f64 > 0).astype(int)
    est = make_pipeline(
        ColumnTransformer(
            [
                ("n", StandardScaler(), ["f64", "i64"]),
                ("c", OneHotEncoder(handle_unknown="ignore"), ["obj", "cat"]),
            ]
        ),
        LogisticRegression(),
    ).fit(df[["f64", "i64", "obj", "cat"]], y)
    model = mlfast.compile(est)
    row = {"f64": 0.5, "i64": 2, "obj": "b", "cat": "c"}
    want = est.predict_proba(pd.DataFrame([row]))
    np.testing.assert_allclose(model.predict_proba(row), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba([row, row]), np.vstack([want, want]), rtol=1e-12, atol=1e-12
    )
    # order does not matter in a dict; a missing column does
    np.testing.assert_allclose(
        model.predict_proba(dict(reversed(list(row.items())))), want, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match="columns are missing"):
        model.predict_proba({"f64": 0.5, "i64": 2, "obj": "b"})
    # a DataFrame in another order: the ColumnTransformer selects by name
    shuffled = df[["cat", "obj", "i64", "f64"]]
    np.testing.assert_allclose(
        model.predict_proba(shuffled), est.predict_proba(shuffled), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(TypeError, match="column 'obj' holds a value of type"):
        model.predict_proba({"f64": 0.5, "i64": 2, "obj": {"x": 1}, "cat": "c"})


def test_a_string_column_read_as_numbers_is_refused_in_scikit_learn_words():
    df = pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]})
    est = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["a", "b"])]))
    est.fit(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0]}))
    model = mlfast.compile(est)
    with pytest.raises(ValueError) as want:
        est.transform(df)
    with pytest.raises(ValueError) as got:
        model.transform(df)
    assert "could not convert string to float: 'x'" in str(want.value)
    assert "could not convert string to float: 'x'" in str(got.value)


# ---- the guard between numbers and keys -------------------------------------------------


def catmap(n_in=1, cats=("a", "b"), **kw):
    tags, nums, text, offsets = _core.encode_keys(np.array(cats, dtype=object))
    fields = dict(
        tags=tags,
        nums=nums,
        text=text,
        text_offsets=offsets,
        columns=np.array([0, len(cats)] if n_in == 1 else [0] + [len(cats)] * n_in, dtype=np.int64),
        values=np.arange(len(cats), dtype=np.float64),
        unknown=np.full(n_in, -1.0),
        refuse=np.zeros(n_in, np.uint8),
        n_outputs=0,
    )
    fields.update(kw)
    return ir.CatMap(**fields)


def test_a_key_op_never_reads_numbers():
    node = ir.Node(catmap(), np.array([0]), 1, "Encoder")
    with pytest.raises(ValueError, match="reads keys, but slot 0 holds numbers"):
        _core.Graph(1, [node], {"transform": ir.Output(np.array([1]))})


def test_a_numeric_op_never_reads_keys():
    node = ir.Node(ir.Affine(sub=np.zeros(1)), np.array([1]), 1, "Scaler")
    with pytest.raises(ValueError, match="reads numbers, but slot 1 holds keys"):
        _core.Graph(1, [node], {"transform": ir.Output(np.array([2]))}, key_columns=np.array([0]))


def test_keys_are_never_returned():
    fill = _core.encode_keys(np.array(["z", np.nan], dtype=object))
    node = ir.Node(ir.KeyFill(*fill, keep=np.array([0])), np.array([1]), 1, "Imputer")
    with pytest.raises(ValueError, match="holds keys: a method returns numbers"):
        _core.Graph(1, [node], {"transform": ir.Output(np.array([2]))}, key_columns=np.array([0]))


def test_a_graph_wired_right_runs():
    node = ir.Node(catmap(), np.array([1]), 1, "Encoder")
    g = _core.Graph(1, [node], {"transform": ir.Output(np.array([2]))}, key_columns=np.array([0]))
    got = g.transform(np.array([["b"], ["a"], ["q"]], dtype=object))
    np.testing.assert_array_equal(got, [[1.0], [0.0], [-1.0]])


@pytest.mark.parametrize(
    "lie",
    [
        "columns-past-end",
        "columns-decrease",
        "values-short",
        "onehot-out-of-range",
        "duplicate",
        "offsets-past-text",
        "bad-tag",
        "key-columns-twice",
        "key-column-out-of-range",
        "refuse-4",
    ],
)
def test_key_tables_that_lie_are_refused(lie):
    kw = {}
    key_columns = np.array([0])
    op = catmap()
    if lie == "columns-past-end":
        op = catmap(columns=np.array([0, 5], np.int64))
    elif lie == "columns-decrease":
        op = catmap(
            n_in=2,
            columns=np.array([0, 2, 1], np.int64),
            unknown=np.zeros(2),
            refuse=np.zeros(2, np.uint8),
        )
        key_columns = np.array([0, 1])
    elif lie == "values-short":
        op = catmap(values=np.zeros(1))
    elif lie == "onehot-out-of-range":
        op = catmap(n_outputs=2, values=np.array([0.0, 7.0]))
    elif lie == "duplicate":
        op = catmap(cats=("a", "a"))
    elif lie == "offsets-past-text":
        op = catmap()
        op.text_offsets = np.array([0, 1, 9], np.int64)
    elif lie == "bad-tag":
        op = catmap()
        op.tags = np.array([0, 77], np.uint8)
    elif lie == "key-columns-twice":
        key_columns = np.array([0, 0])
    elif lie == "key-column-out-of-range":
        key_columns = np.array([3])
    elif lie == "refuse-4":
        op = catmap(refuse=np.array([4], np.uint8))
    n_in = 2 if lie == "columns-decrease" else 1
    inputs = np.arange(n_in, 2 * n_in) if lie != "key-columns-twice" else np.array([1])
    node = ir.Node(op, inputs, n_in if op.n_outputs == 0 else op.n_outputs, "Encoder")
    out = ir.Output(np.array([n_in + len(key_columns) + 0]))
    with pytest.raises(ValueError):
        _core.Graph(
            max(n_in, 1) if lie != "key-columns-twice" else 2,
            [node],
            {"transform": out},
            key_columns=key_columns,
            **kw,
        )


def test_huge_category_counts_are_refused():
    huge = np.zeros(1 << 24 + 1, dtype=np.uint8)
    with pytest.raises(ValueError):
        _core.encode_keys(np.zeros((1 << 24) + 1))
    node = ir.Node(catmap(), np.array([1]), 1, "Encoder")
    node.op.tags = huge
    with pytest.raises(ValueError):
        _core.Graph(1, [node], {"transform": ir.Output(np.array([2]))}, key_columns=np.array([0]))


def test_unserved_object_types_are_named():
    est = OneHotEncoder(handle_unknown="ignore").fit(pd.DataFrame({"c": ["a", "b"]}))
    model = mlfast.compile(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="column 'c' holds a value of type complex"):
            model.transform(pd.DataFrame({"c": np.array([1j], dtype=object)}))
