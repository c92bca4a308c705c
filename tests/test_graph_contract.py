"""The Python-C contract of the model IR, and the Graph's own checks.

Each op dataclass of mlfast._builders.ir must have exactly the fields of
its C struct (csrc/mlfast.h, exported as _core.OPS), in the same order and
of the same kinds; the enums are C's.  A Graph refuses what does not fit:
slots pointing forwards (a cycle), widths that disagree, labels that do not
come from a labels node.  A Model pickles as plain data that mlfast.load
reads back through the same checks.
"""

import dataclasses
import pickle
from enum import IntEnum

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlfast
from mlfast import _core
from mlfast._builders import ir

KINDS = {"int": int, "float": float, "bool": bool}


# every enum ir.py makes of C's tables
ENUMS = tuple(
    sorted(
        name
        for name, v in vars(ir).items()
        if isinstance(v, type) and issubclass(v, IntEnum) and v.__module__ == ir.__name__
    )
)


def test_every_enum_member_the_builders_name_is_one_of_cs_codes():
    """The enums are made from C's tables at import, so a type checker cannot
    see a misspelt member: this reads every `Enum.MEMBER` in the builders
    and the Model and looks it up."""
    import pathlib
    import re

    root = pathlib.Path(mlfast.__file__).parent
    pattern = re.compile(r"\b(" + "|".join(ENUMS) + r")\.([A-Z][A-Z0-9_]*)\b")
    named = set()
    for path in sorted(root.rglob("*.py")):
        for enum, member in pattern.findall(path.read_text()):
            named.add((enum, member))
            assert member in getattr(ir, enum).__members__, f"{path.name}: {enum}.{member}"
    assert len({e for e, _ in named}) >= 8, named  # the scan finds the builders' uses


@pytest.mark.parametrize("name", sorted(_core.OPS))
def test_every_c_op_has_a_dataclass_with_its_fields(name):
    cls = ir.OP_TYPES[name]
    fields = [f.name for f in dataclasses.fields(cls)]
    assert fields == [f[0] for f in _core.OPS[name]], name
    op = cls()
    for fname, kind, dtype, ndim, optional in _core.OPS[name]:
        value = getattr(op, fname)
        if kind == "array":
            assert (
                value is None
                and optional
                or (isinstance(value, np.ndarray) and value.dtype == dtype and value.ndim == ndim)
            ), (name, fname, value)
        else:
            assert type(value) is KINDS[kind], (name, fname, value)


def test_every_dataclass_is_a_c_op():
    assert set(ir.OP_TYPES) == set(_core.OPS)


def test_enums_come_from_c():
    assert ir.ProbaRule.SOFTMAX == _core.CODES["proba"]["SOFTMAX"]
    assert ir.Accept.FINITE == 0 and ir.Accept.ANY == _core.CODES["accept"]["ANY"]
    assert ir.METHODS == (
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "transform",
        "score_samples",
        "predict_joint_log_proba",
    )


def _affine_graph(inputs, n_out=2, outputs=None):
    op = ir.Affine(sub=np.zeros(2))
    node = ir.Node(op, np.asarray(inputs, dtype=np.int64), n_out, "Scaler")
    outputs = outputs or {"transform": ir.Output(np.array([2, 3]))}
    return _core.Graph(2, [node], outputs)


def test_a_graph_runs_a_node_over_its_input():
    g = _affine_graph([0, 1])
    np.testing.assert_array_equal(g.transform(np.array([[1.0, 2.0]])), [[1.0, 2.0]])
    g = _affine_graph([1, 0])
    np.testing.assert_array_equal(g.transform(np.array([[1.0, 2.0]])), [[2.0, 1.0]])


@pytest.mark.parametrize(
    "inputs,message",
    [
        ([0, 2], "reads slot 2, which no earlier node writes"),
        ([-1, 0], "reads slot -1"),
        ([0], "affine.sub has 2 items for 1 columns"),
    ],
)
def test_a_node_reads_only_earlier_slots_of_its_width(inputs, message):
    with pytest.raises(ValueError, match=message):
        _affine_graph(inputs)


def test_a_node_must_say_the_width_its_op_writes():
    with pytest.raises(ValueError, match="writes 2 columns, not 3"):
        _affine_graph([0, 1], n_out=3)


def test_outputs_name_known_methods_and_existing_slots():
    with pytest.raises(ValueError, match="returns slot 9"):
        _affine_graph([0, 1], outputs={"transform": ir.Output(np.array([9]))})
    with pytest.raises(ValueError, match="methods the graph knows"):
        _affine_graph([0, 1], outputs={"fit": ir.Output(np.array([2]))})


def test_labels_must_come_from_a_labels_node():
    classes = np.array([0, 1])
    with pytest.raises(ValueError, match="labels must come from one labels node"):
        _affine_graph([0, 1], outputs={"predict": ir.Output(np.array([2]), classes)})


def test_a_field_of_the_wrong_type_is_named():
    node = ir.Node(ir.Affine(), np.array([0, 1]), 2, "Scaler")
    node.op.sub = np.zeros(2, dtype=np.float32)
    with pytest.raises(ValueError, match="affine.sub must be a C-contiguous, aligned 1-D"):
        _core.Graph(2, [node], {"transform": ir.Output(np.array([2, 3]))})


def test_columns_gathered_from_several_nodes():
    """A node may read any earlier slots: the input and two nodes' outputs."""
    a = ir.Node(ir.Affine(add=np.array([10.0, 20.0])), np.array([0, 1]), 2, "A")
    b = ir.Node(ir.Affine(mul=np.array([2.0, 3.0])), np.array([1, 0]), 2, "B")
    c = ir.Node(ir.Affine(sub=np.ones(3)), np.array([5, 2, 0]), 3, "C")
    g = _core.Graph(2, [a, b, c], {"transform": ir.Output(np.array([6, 7, 8, 3]))})
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    a_out = X + [10, 20]
    b_out = X[:, ::-1] * [2, 3]
    c_out = np.column_stack([b_out[:, 1], a_out[:, 0], X[:, 0]]) - 1
    np.testing.assert_array_equal(g.transform(X), np.column_stack([c_out, a_out[:, 1]]))


def test_an_output_wider_than_every_node_input():
    """An output gathered from several nodes may be wider than any node's
    input; a block's rows of it are gathered in the same scratch (ASan checks
    its size)."""
    a = ir.Node(ir.Affine(add=np.arange(8.0)), np.arange(8), 8, "A")
    slots = np.concatenate([np.arange(8, 16), np.arange(8)[::-1]])
    g = _core.Graph(8, [a], {"transform": ir.Output(slots)})
    X = np.arange(8000, dtype=np.float64).reshape(1000, 8)
    np.testing.assert_array_equal(g.transform(X), np.hstack([X + np.arange(8.0), X[:, ::-1]]))


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=500),
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        lambda: RandomForestClassifier(10, random_state=0),
    ],
)
def test_a_pickled_model_loads_back_through_the_safe_loader(iris, make, tmp_path):
    X, y = iris
    model = mlfast.compile(make().fit(X, y))
    data = pickle.dumps(model, protocol=5)
    again = mlfast.loads(data)
    for method in ("predict", "predict_proba"):
        np.testing.assert_array_equal(getattr(again, method)(X), getattr(model, method)(X))
    assert again.estimator == model.estimator and again.nbytes == model.nbytes
    # and with joblib, as the lesson saves models
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    np.testing.assert_array_equal(mlfast.load(path).predict(X), model.predict(X))


def _state_of(model):
    return pickle.loads(pickle.dumps(model)).__reduce__()[1][0]


@pytest.mark.parametrize(
    "spoil,error",
    [
        (lambda s: s.update(format=2), "not a pickled mlfast Model"),
        (lambda s: s["nodes"][0].update(inputs=np.array([0, 1, 2, 99])), "reads slot 99"),
        (lambda s: s["nodes"][0]["op"].update(op="system"), "unknown op"),
        (lambda s: s["nodes"][0]["op"].update(coef="rm -rf"), "expected an array"),
        (lambda s: s["nodes"][0].update(n_out=7), "writes 3 columns, not 7"),
        (lambda s: s["meta"].update(n_features="4"), "expected int"),
        (lambda s: s["outputs"]["predict"].update(slots=np.array([1000])), "returns slot 1000"),
    ],
)
def test_a_spoiled_model_pickle_is_a_model_format_error(iris, spoil, error):
    X, y = iris
    model = mlfast.compile(LogisticRegression(max_iter=500).fit(X, y))
    state = _state_of(model)
    spoil(state)
    from mlfast._model import _from_state

    class Carrier:
        def __reduce__(self):
            return (_from_state, (state,))

    with pytest.raises(mlfast.ModelFormatError, match=error):
        mlfast.loads(pickle.dumps(Carrier()))


def test_model_methods_are_documented_and_absent_ones_raise(iris):
    """help() and inspect.signature see the methods; a method the estimator
    lacks is an AttributeError (hasattr False), as in scikit-learn."""
    import inspect as pyinspect

    X, y = iris
    model = mlfast.compile(LogisticRegression(max_iter=500).fit(X, y))
    assert str(pyinspect.signature(model.predict)) == "(X, /)"
    assert str(pyinspect.signature(mlfast.Model.predict_proba)) == "(self, X)"
    assert "probabilities" in mlfast.Model.predict_proba.__doc__
    assert not hasattr(model, "transform") and not hasattr(model, "score_samples")
    with pytest.raises(
        AttributeError, match="This LogisticRegression model has no attribute 'transform'"
    ):
        model.transform(X)
    assert "transform" not in dir(model) and "predict_proba" in dir(model)
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        _ = model.nonsense
