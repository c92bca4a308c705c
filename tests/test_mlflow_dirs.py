"""MLflow model directories: real directories written by ``mlflow.sklearn``,
loaded by ``mlfast.load`` (MLflow is never imported by mlfast), answering as
the fitted estimator does; the ways MLflow names a model (a path, ``file:``,
``runs:/``, ``models:/name/version`` against a local file store); and
hostile directories refused with an MlfastError that names what and where.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlfast
from mlfast import ModelFormatError, UnsafeModelError, UnsupportedModelError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # mlflow's own import-time deprecations
    pytest.importorskip("mlflow")
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature  # noqa: E402

FORMATS = ("skops", "cloudpickle", "pickle")


def _iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _frame(n=150, seed=0):
    rng = np.random.RandomState(seed)
    return pd.DataFrame(
        {"colour": rng.choice(["red", "green", "blue"], n), "size": rng.normal(size=n)}
    )


def _models():
    X, y = _iris()
    frame = _frame()
    y_frame = ((frame["size"] > 0) ^ (frame["colour"] == "red")).astype(int)
    return {
        "logreg": (LogisticRegression(max_iter=1000).fit(X, y), X),
        "forest": (RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), X),
        "pipeline": (make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X),
        "column_transformer": (
            make_pipeline(
                ColumnTransformer(
                    [("onehot", OneHotEncoder(), ["colour"])], remainder="passthrough"
                ),
                LogisticRegression(),
            ).fit(frame, y_frame),
            frame,
        ),
    }


MODELS = _models()


def _save(est, X, path, fmt, **kw):
    if fmt == "skops":
        # skops 0.16 leaves Tree out of its trusted types (its loader does not
        # check node indices; mlfast's trees do, in C, before predicting)
        kw["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow warns about pickle formats and pip
        mlflow.sklearn.save_model(
            est,
            str(path),
            serialization_format=fmt,
            signature=infer_signature(X, est.predict(X)),
            pip_requirements=["scikit-learn"],
            **kw,
        )
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return {
        (name, fmt): _save(est, X, root / f"{name}-{fmt}", fmt)
        for name, (est, X) in MODELS.items()
        for fmt in FORMATS
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_mlflow_directory_answers_as_sklearn(name, fmt, dirs):
    est, X = MODELS[name]
    model = mlfast.load(dirs[name, fmt])
    rows = X.sample(40, random_state=1)
    np.testing.assert_array_equal(model.predict(rows), est.predict(rows))
    np.testing.assert_allclose(
        model.predict_proba(rows), est.predict_proba(rows), rtol=0, atol=1e-12
    )
    assert model.mlflow.serialization_format == fmt
    assert model.mlflow.flavour == "sklearn"


def test_signature_and_source_are_shown(dirs):
    path = dirs["logreg", "skops"]
    model = mlfast.load(path)
    assert model.mlflow.column_names == list(MODELS["logreg"][1].columns)
    assert [c.type for c in model.mlflow.inputs] == ["double"] * 4
    assert repr(model).endswith("MLflow sklearn model, signature of 4 inputs>")
    summary = model._summary()
    assert summary["source"] == str(path)
    assert summary["mlflow"]["signature"]["inputs"][0] == {
        "name": "sepal length (cm)",
        "type": "double",
        "required": True,
    }


def test_file_uri(dirs):
    path = dirs["forest", "skops"]
    model = mlfast.load(path.as_uri())
    X = MODELS["forest"][1]
    np.testing.assert_array_equal(model.predict(X), MODELS["forest"][0].predict(X))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A local file tracking store with a run whose model is registered as
    'iris' (versions 1 and 2), as MLflow writes it."""
    root = tmp_path_factory.mktemp("store") / "mlruns"
    est, X = MODELS["logreg"]
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.set_tracking_uri(root.as_uri())
            run_ids = []
            for C in (1.0, 0.1):
                with mlflow.start_run() as run:
                    mlflow.sklearn.log_model(
                        LogisticRegression(C=C, max_iter=1000).fit(
                            X, MODELS["logreg"][0].predict(X)
                        ),
                        name="model",
                        registered_model_name="iris",
                        pip_requirements=["scikit-learn"],
                        signature=infer_signature(X, est.predict(X)),
                    )
                run_ids.append(run.info.run_id)
            mlflow.set_tracking_uri(None)
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old
    return root, run_ids


def test_models_uri_against_a_local_store(store, monkeypatch):
    root, run_ids = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", root.as_uri())
    first = mlfast.load("models:/iris/1")
    latest = mlfast.load("models:/iris/latest")
    assert first.mlflow.run_id == run_ids[0]
    assert latest.mlflow.run_id == run_ids[1]
    assert f"run {run_ids[0]}" in repr(first)
    X = MODELS["logreg"][1]
    with pytest.raises(ModelFormatError, match="no version 9 of 'iris'"):
        mlfast.load("models:/iris/9")
    with pytest.raises(ModelFormatError, match="not a registered model name"):
        mlfast.load("models:/..%2F..%2Fetc/1")
    assert (first.predict_proba(X) != latest.predict_proba(X)).any()


def test_run_artifacts_path_and_runs_uri(store, dirs, monkeypatch):
    """MLflow 2 kept a run's model under mlruns/<exp>/<run>/artifacts/model."""
    root, run_ids = store
    artifacts = root / "0" / run_ids[0] / "artifacts" / "model"
    shutil.copytree(dirs["pipeline", "cloudpickle"], artifacts)
    est, X = MODELS["pipeline"]
    np.testing.assert_array_equal(mlfast.load(artifacts).predict(X), est.predict(X))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(root))
    np.testing.assert_array_equal(
        mlfast.load(f"runs:/{run_ids[0]}/model").predict(X), est.predict(X)
    )
    with pytest.raises(ModelFormatError, match="not a run id and path"):
        mlfast.load(f"runs:/{run_ids[0]}/../../x")


def test_remote_tracking_store_is_refused(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    with pytest.raises(UnsupportedModelError, match="local file store only"):
        mlfast.load("models:/iris/1")


# -- hostile directories -------------------------------------------------------------


def _copy(src, tmp_path, name="model"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _edit_mlmodel(path, old, new):
    text = (path / "MLmodel").read_text()
    assert old in text
    (path / "MLmodel").write_text(text.replace(old, new))


def test_mlmodel_pointing_outside_is_refused(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    (tmp_path / "secret.pkl").write_bytes(b"\x80\x04N.")
    _edit_mlmodel(path, "pickled_model: model.pkl", "pickled_model: ../secret.pkl")
    with pytest.raises(
        UnsafeModelError,
        match=r"pickled_model '\.\./secret\.pkl' resolves to "
        ".*secret.pkl, outside the model directory",
    ):
        mlfast.load(path)


def test_absolute_pickled_model_is_refused(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    _edit_mlmodel(path, "pickled_model: model.pkl", "pickled_model: /etc/passwd")
    with pytest.raises(UnsafeModelError, match="'/etc/passwd' is not a path inside"):
        mlfast.load(path)


def test_model_file_linking_outside_is_refused(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    outside = tmp_path / "elsewhere.pkl"
    shutil.move(path / "model.pkl", outside)
    os.symlink(outside, path / "model.pkl")
    with pytest.raises(UnsafeModelError, match="outside the model directory"):
        mlfast.load(path)


def test_yaml_bomb_is_refused_without_expanding(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    lines.append("flavors:\n  sklearn:\n    pickled_model: *j\n    serialization_format: pickle")
    (path / "MLmodel").write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelFormatError, match="pickled_model is a list, expected a string"):
        mlfast.load(path)


def test_oversized_mlmodel_is_refused(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    with open(path / "MLmodel", "a") as fh:
        fh.write("# " + "x" * (5 << 20) + "\n")
    with pytest.raises(ModelFormatError, match="MLmodel .* is larger than 4194304 bytes"):
        mlfast.load(path)


def test_invalid_yaml_is_a_format_error(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    (path / "MLmodel").write_text("flavors: [unclosed\n")
    with pytest.raises(ModelFormatError, match="is not valid YAML"):
        mlfast.load(path)


def test_python_object_tags_are_not_constructed(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    (path / "MLmodel").write_text("flavors: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ModelFormatError, match="is not valid YAML"):
        mlfast.load(path)


def test_a_pickle_that_is_not_sklearn_is_refused(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)

    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    (path / "model.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UnsafeModelError, match="posix.system|os.system"):
        mlfast.load(path)


def test_serialization_format_must_match_the_file(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    _edit_mlmodel(path, "serialization_format: pickle", "serialization_format: skops")
    with pytest.raises(
        ModelFormatError, match="serialization_format is skops but model.pkl is not a zip"
    ):
        mlfast.load(path)


def test_other_flavours_are_unsupported(dirs, tmp_path):
    path = _copy(dirs["logreg", "pickle"], tmp_path)
    (path / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: my.code\n")
    with pytest.raises(
        UnsupportedModelError,
        match="without the sklearn flavour .*custom python_function model is user code",
    ):
        mlfast.load(path)
    (path / "MLmodel").write_text("flavors:\n  xgboost:\n    data: model.xgb\n")
    with pytest.raises(UnsupportedModelError, match="flavour 'xgboost', which mlfast does not"):
        mlfast.load(path)


def test_cloudpickled_user_code_is_named(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    X, y = _iris()
    est = make_pipeline(
        FunctionTransformer(lambda x: x * 2), LogisticRegression(max_iter=1000)
    ).fit(X.values, y)
    path = _save(est, X.values, tmp_path / "lambda", "cloudpickle")
    with pytest.raises(
        UnsupportedModelError,
        match="cloudpickle wrote the function '<lambda>' by value: it is user code",
    ):
        mlfast.load(path)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="no MLmodel file"):
        mlfast.load(tmp_path.as_uri())


def test_inspect_shows_mlmodel_then_the_tree(dirs, capsys):
    from mlfast.__main__ import main

    path = dirs["pipeline", "skops"]
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"MLflow model {path}: flavour sklearn, skops file model.skops, run None"
    assert out[1].startswith("signature inputs: sepal length (cm) (double), ")
    assert out[2].startswith("sklearn.pipeline.Pipeline  (sklearn ")
