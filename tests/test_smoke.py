"""The lesson's workflow end to end: joblib.dump, mlfast.load, predict."""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlfast


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_lesson_workflow(tmp_path, iris):
    X, y = iris
    model = LogisticRegression(max_iter=1000).fit(X, y)
    path = tmp_path / "model.pkl"
    joblib.dump(model, path)

    fast = mlfast.load(path)
    features = np.array([5.1, 3.5, 1.4, 0.2]).reshape(1, -1)
    assert int(fast.predict(features)[0]) == int(model.predict(features)[0])
    np.testing.assert_array_equal(fast.predict(X), model.predict(X))
    np.testing.assert_allclose(
        fast.predict_proba(X), model.predict_proba(X), rtol=1e-12, atol=1e-12
    )
    assert fast.n_features_in_ == 4
    np.testing.assert_array_equal(fast.classes_, model.classes_)
    assert fast.classes_.dtype == model.classes_.dtype


def test_demo_model_matches_sklearn(iris):
    X, _ = iris
    path = mlfast.demo_model_path()
    reference = joblib.load(path)
    model = mlfast.load(path)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    assert "LogisticRegression" in repr(model)


def test_compile_equals_load(tmp_path, iris):
    X, y = iris
    est = LogisticRegression(max_iter=1000).fit(X, y)
    joblib.dump(est, tmp_path / "m.joblib")
    a = mlfast.compile(est)
    b = mlfast.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_errors_are_value_errors():
    for exc in (mlfast.ModelFormatError, mlfast.UnsafeModelError, mlfast.UnsupportedModelError):
        assert issubclass(exc, mlfast.MlfastError)
        assert issubclass(exc, ValueError)
    with pytest.raises(mlfast.ModelFormatError, match="not a pickle"):
        mlfast.loads(b"hello world")
