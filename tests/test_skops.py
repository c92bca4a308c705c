"""skops files: differential against scikit-learn, and hostile zips.

Real files written by ``skops.io.dump`` are loaded by ``mlfast.load`` (never
by skops's loader) and must answer as the fitted estimator does (labels
equal, floats within 1e-12) and as the same estimator read from its pickle by
mlfast does (bit for bit: the same value tree reaches the same builders).
Hostile zips and lying schemas are refused with an MlfastError naming what
and where; a type outside mlfast's table is refused as skops's own
untrusted-types check flags it.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mlfast
from mlfast import ModelFormatError, UnsafeModelError, UnsupportedModelError

skops_io = pytest.importorskip("skops.io")

METHODS = ("predict", "predict_proba", "decision_function")


def _classification(n_classes=3):
    return make_classification(
        n_samples=200, n_features=6, n_informative=4, n_classes=n_classes, random_state=0
    )


def _frame(n=200, seed=0):
    rng = np.random.RandomState(seed)
    return pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.normal(size=n),
            "weight": rng.normal(size=n),
        }
    )


def _models():
    X, y = _classification()
    Xb, yb = _classification(2)
    Xr, yr = make_regression(n_samples=200, n_features=6, random_state=0)
    frame = _frame()
    y_frame = (frame["size"] + (frame["colour"] == "red") > 0.5).astype(int)
    return {
        "logreg_multi": (LogisticRegression(max_iter=1000).fit(X, y), X),
        "logreg_binary": (LogisticRegression().fit(Xb, yb), Xb),
        "ridge": (Ridge(alpha=0.5).fit(Xr, yr), Xr),
        "tree": (DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y), X),
        "forest": (RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X),
        "forest_regressor": (RandomForestRegressor(n_estimators=5, random_state=0).fit(Xr, yr), Xr),
        "gradient_boosting": (
            GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y),
            X,
        ),
        "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=10).fit(X, y), X),
        "pipeline": (make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X),
        "column_transformer": (
            make_pipeline(
                ColumnTransformer(
                    [("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"])],
                    remainder=StandardScaler(),
                ),
                LogisticRegression(),
            ).fit(frame, y_frame),
            frame,
        ),
    }


MODELS = _models()


@pytest.fixture(scope="module")
def skops_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("skops")
    paths = {}
    for name, (est, _) in MODELS.items():
        paths[name] = root / f"{name}.skops"
        skops_io.dump(est, paths[name])
    return paths


def _fresh(X):
    if isinstance(X, pd.DataFrame):
        return _frame(50, seed=1)
    rng = np.random.RandomState(1)
    return rng.normal(size=(50, X.shape[1])) * X.std(axis=0) + X.mean(axis=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_skops_answers_as_sklearn(name, skops_files):
    est, X = MODELS[name]
    model = mlfast.load(skops_files[name])
    from_pickle = mlfast.compile(est)
    rows = _fresh(X)
    inputs = [rows] if isinstance(rows, pd.DataFrame) else [rows, rows.astype(np.float32), rows[:1]]
    checked = 0
    for Xi in inputs:
        for method in METHODS:
            if not hasattr(est, method):
                continue
            want = getattr(est, method)(Xi)
            got = getattr(model, method)(Xi)
            same = getattr(from_pickle, method)(Xi)
            where = f"{name}.{method} on {type(Xi).__name__} {getattr(Xi, 'dtype', '')}"
            assert got.shape == want.shape, where
            if method == "predict" and want.dtype.kind in "iUOb":
                np.testing.assert_array_equal(got, want, err_msg=where)
            else:
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=where)
            np.testing.assert_array_equal(got, same, err_msg=f"{where}: skops vs pickle")
            checked += 1
    assert checked >= 1


def test_skops_model_describes_itself(skops_files):
    model = mlfast.load(skops_files["pipeline"])
    assert model.estimator.startswith("Pipeline")
    assert str(skops_files["pipeline"]) in repr(model) or model._source == str(
        skops_files["pipeline"]
    )


def test_inspect_shows_a_skops_file(skops_files, capsys):
    from mlfast.__main__ import main

    assert main(["inspect", str(skops_files["forest"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sklearn.ensemble._forest.RandomForestClassifier  (sklearn ")
    assert "sklearn.tree._tree.Tree" in out
    assert "nodes: ndarray" in out


# -- hostile zips ---------------------------------------------------------------------


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Duplicate name", category=UserWarning)
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _with_schema(path, edit):
    members = _members(path)
    out = []
    for name, data in members:
        if name == "schema.json":
            schema = json.loads(data)
            edit(schema)
            data = json.dumps(schema).encode()
        out.append((name, data))
    return _zip(out)


def _first_array(schema):
    """The first NdArrayNode with a .npy member."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("__loader__") == "NdArrayNode" and node.get("type") == "numpy":
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no array in the schema")


def test_path_traversal_names_are_refused(skops_files):
    members = _members(skops_files["logreg_binary"])
    members.append(("../../etc/evil.npy", b"x"))
    with pytest.raises(UnsafeModelError, match=r"member name '\.\./\.\./etc/evil\.npy'"):
        mlfast.loads(_zip(members))


def test_duplicate_names_are_refused(skops_files):
    members = _members(skops_files["logreg_binary"])
    members.append(members[0])
    with pytest.raises(UnsafeModelError, match=f"member '{members[0][0]}' appears twice"):
        mlfast.loads(_zip(members))


def test_zip_bomb_refused_before_inflating(skops_files):
    members = _members(skops_files["logreg_binary"])
    members.append(("bomb.bin", b"\0" * (64 << 20)))
    data = _zip(members, zipfile.ZIP_DEFLATED)
    assert len(data) < (1 << 20)
    with pytest.raises(
        UnsafeModelError,
        match=r"member 'bomb\.bin' declares 67108864 bytes .*"
        "zip bomb",
    ):
        mlfast.loads(data)


def test_members_past_the_memory_budget_are_refused(skops_files):
    data = skops_files["forest"].read_bytes()
    with pytest.raises(UnsupportedModelError, match="memory budget of 1000 bytes"):
        mlfast.loads(data, max_memory=1000)


def test_truncated_zip_is_a_format_error(skops_files):
    data = skops_files["logreg_binary"].read_bytes()
    with pytest.raises(ModelFormatError, match="skops file"):
        mlfast.loads(data[: len(data) // 2])


def test_unknown_class_refused_like_skops_untrusted_types(skops_files, tmp_path):
    def rename(schema):
        schema["__module__"] = "mypackage.models"
        schema["__class__"] = "Evil"

    data = _with_schema(skops_files["logreg_binary"], rename)
    path = tmp_path / "evil.skops"
    path.write_bytes(data)
    # skops's own check flags the same type
    assert "mypackage.models.Evil" in skops_io.get_untrusted_types(file=path)
    with pytest.raises(
        UnsafeModelError,
        match=r"model is a mypackage\.models\.Evil, a type "
        "outside mlfast's table",
    ):
        mlfast.load(path)


def test_forbidden_function_is_refused(skops_files):
    def plant(schema):
        schema["content"]["content"]["C"] = {
            "__class__": "system",
            "__module__": "os",
            "__loader__": "FunctionNode",
        }

    with pytest.raises(UnsafeModelError, match=r"model\['C'\] names os\.system"):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], plant))


def test_lying_array_shape_is_refused(skops_files):
    members = _members(skops_files["logreg_binary"])
    schema = json.loads(dict(members)["schema.json"])
    member = _first_array(schema)["file"]
    out = []
    for name, data in members:
        if name == member:
            arr = np.load(io.BytesIO(data))
            buf = io.BytesIO()
            np.save(buf, np.zeros(arr.size + 1000))
            data = buf.getvalue()[: len(data)]  # the header says more than is there
        out.append((name, data))
    with pytest.raises(ModelFormatError, match=rf"\({member}\) has shape \(\d+,\) of <f8"):
        mlfast.loads(_zip(out))


def test_object_npy_is_refused(skops_files):
    members = _members(skops_files["logreg_binary"])
    member = _first_array(json.loads(dict(members)["schema.json"]))["file"]
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 8
    data = _zip([(n, npy if n == member else d) for n, d in members])
    with pytest.raises(UnsafeModelError, match="has dtype '|O'; only numbers"):
        mlfast.loads(data)


def test_missing_member_is_refused(skops_files):
    def point_away(schema):
        _first_array(schema)["file"] = "not-there.npy"

    with pytest.raises(
        ModelFormatError, match="names member 'not-there.npy', which the zip does not hold"
    ):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], point_away))


def test_dangling_reference_is_refused(skops_files):
    def dangle(schema):
        schema["content"]["content"]["coef_"] = {
            "__loader__": "CachedNode",
            "__id__": 12345,
            "__class__": "x",
            "__module__": "y",
        }

    with pytest.raises(ModelFormatError, match=r"model\['coef_'\] refers to object 12345"):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], dangle))


def test_scalar_of_another_type_is_refused(skops_files):
    def relabel(schema):
        node = _first_array(schema)
        node["__class__"] = "int64"

    with pytest.raises(ModelFormatError, match="says it is a numpy.int64 but holds float64"):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], relabel))


def test_deep_nesting_is_refused(skops_files):
    def nest(schema):
        node = {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [],
        }
        top = node
        for _ in range(300):
            child = {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [],
            }
            node["content"].append(child)
            node = child
        schema["content"]["content"]["classes_"] = top

    with pytest.raises(UnsupportedModelError, match="nested more than 200 levels"):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], nest))


def test_unread_loader_is_refused(skops_files):
    def method(schema):
        schema["content"]["content"]["C"] = {
            "__class__": "LogisticRegression",
            "__module__": "sklearn.linear_model._logistic",
            "__loader__": "MethodNode",
            "content": {},
        }

    with pytest.raises(
        UnsupportedModelError,
        match=r"model\['C'\] .* written by skops's "
        "MethodNode",
    ):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], method))


def test_deep_json_content_is_refused(skops_files):
    def deep(schema):
        schema["content"]["content"]["C"] = {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": "[" * 5000 + "]" * 5000,
        }

    with pytest.raises((ModelFormatError, UnsupportedModelError), match=r"model\['C'\] holds"):
        mlfast.loads(_with_schema(skops_files["logreg_binary"], deep))
