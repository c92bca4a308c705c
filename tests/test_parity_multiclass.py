"""Differential tests: the meta-estimators of sklearn.multiclass,
sklearn.multioutput and sklearn.calibration, the decision-threshold
classifiers, SelfTrainingClassifier, TransformedTargetRegressor,
FrozenEstimator, and FunctionTransformer of numpy's functions.

scikit-learn is the oracle.  Each check fits a real estimator on small
generated data, saves it, loads it with mlfast and compares every method
scikit-learn has on fresh rows (float64 and float32 input, a batch and one
row): labels equal with the same dtype, floats within 1e-12 with the same
shape and dtype, lists of arrays (multi-output predict_proba) likewise.  With
members whose own answers are exact (trees, boosting), the meta-estimator's
answer must be scikit-learn's bit for bit: its ops follow scikit-learn's
order of operations and call numpy's own exp, log, ... loops.  Linear members
differ from scikit-learn's BLAS products in the last bit, which the 1e-12
bound covers.

A failure names the estimator, its options, the input and the method.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier, OutputCodeClassifier
from sklearn.multioutput import (
    ClassifierChain,
    MultiOutputClassifier,
    MultiOutputRegressor,
    RegressorChain,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from support.parity import (
    METHODS,
    N_FEATURES,
    assert_same_output,
    check_across_threads,
    check_attributes,
    check_methods,
    final_estimator,
    fit,
    quietly,
)
from support.representatives import Representative
from support.variants import load_variant

import mlfast
from mlfast import _core
from mlfast._builders import ir
from mlfast._builders.ir import FUNCTIONS

sklearn_version = tuple(int(p) for p in __import__("sklearn").__version__.split(".")[:2])


def needs(v):
    return pytest.mark.skipif(sklearn_version < v, reason=f"scikit-learn < {'.'.join(map(str, v))}")


# -- helpers ----------------------------------------------------------------------


def classification(k=3, seed=0, n_fit=150, n_new=40):
    X, y = make_classification(
        n_samples=n_fit + n_new,
        n_features=N_FEATURES,
        n_informative=4,
        n_redundant=0,
        n_classes=k,
        n_clusters_per_class=1,
        random_state=seed,
    )
    X_new = np.vstack([X[n_fit:], 30 * X[n_fit : n_fit + 3], np.zeros((1, N_FEATURES))])
    return X[:n_fit], y[:n_fit], X_new


def multilabel(seed=0):
    X, y, X_new = classification(3, seed)
    Y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
    return X, Y, X_new


def regression(n_targets=1, seed=0):
    X, y = make_regression(
        n_samples=190,
        n_features=N_FEATURES,
        n_informative=4,
        n_targets=n_targets,
        noise=5.0,
        bias=3.0,
        random_state=seed,
    )
    return X[:150], y[:150], X[150:]


def check(model, est, X_new, context, exact=False, dtypes=(np.float64, np.float32)):
    """Every method on float64 and float32 rows, a batch and one row."""
    for dtype in dtypes:
        X = X_new.astype(dtype)
        for rows in (X, X[:1]):
            check_methods(
                model,
                est,
                rows,
                context=f"{context} | {np.dtype(dtype)} | rows={len(rows)}",
                exact=exact,
            )


def serve(est, tmp_path, variant="joblib"):
    return load_variant(est, variant, tmp_path)


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


# members: (name, factory, exactness).  "always": its answers are
# scikit-learn's bits, so the meta-estimator's must be too; "binary": so for
# two classes (more classes go through links.c's softmax, whose exp is libm's,
# not numpy's); "never": a BLAS product's last bit differs
LR = ("LogisticRegression", lambda: LogisticRegression(max_iter=500), "never")
PIPE = (
    "Pipeline(StandardScaler, LogisticRegression)",
    lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    "never",
)
SVC = ("LinearSVC", lambda: LinearSVC(random_state=0), "never")
RF = (
    "RandomForestClassifier",
    lambda: RandomForestClassifier(8, max_depth=5, random_state=0),
    "always",
)
HGB = (
    "HistGradientBoostingClassifier",
    lambda: HistGradientBoostingClassifier(max_iter=10, max_leaf_nodes=8, random_state=0),
    "binary",
)
GB = (
    "GradientBoostingClassifier",
    lambda: GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0),
    "binary",
)
TREE = (
    "DecisionTreeClassifier",
    lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
    "always",
)


def exact(member, k=2) -> bool:
    return member[2] == "always" or (member[2] == "binary" and k == 2)


# -- CalibratedClassifierCV --------------------------------------------------------

CAL_METHODS = ["sigmoid", "isotonic"] + (["temperature"] if sklearn_version >= (1, 8) else [])


@pytest.mark.parametrize("member", [PIPE, SVC, RF, HGB], ids=lambda m: m[0])
@pytest.mark.parametrize("ensemble", [True, False], ids=["ensemble", "single"])
@pytest.mark.parametrize("method", CAL_METHODS)
@pytest.mark.parametrize("k", [2, 3])
def test_calibrated_classifier(member, ensemble, method, k, tmp_path):
    X, y, X_new = classification(k, seed=k)
    est = fit(CalibratedClassifierCV(member[1](), method=method, ensemble=ensemble, cv=3), X, y)
    model = serve(est, tmp_path)
    ctx = f"CalibratedClassifierCV({member[0]}, method={method}, ensemble={ensemble}) k={k}"
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member, k))


@needs((1, 6))
@pytest.mark.parametrize("method", CAL_METHODS)
def test_calibrated_frozen_estimator(method, tmp_path):
    from sklearn.frozen import FrozenEstimator

    X, y, X_new = classification(4, seed=7)
    base = fit(HGB[1](), X, y)
    est = fit(CalibratedClassifierCV(FrozenEstimator(base), method=method), X, y)
    model = serve(est, tmp_path)
    assert "FrozenEstimator(HistGradientBoostingClassifier)" in model.estimator
    check(model, est, X_new, f"CalibratedClassifierCV(FrozenEstimator(HGB), {method})", exact=True)
    check(
        serve(FrozenEstimator(base), tmp_path),
        FrozenEstimator(base),
        X_new,
        "FrozenEstimator(HGB)",
        exact=False,
    )


def test_calibrated_with_a_class_missing_from_a_fold(tmp_path):
    """A fold without a class: its estimator knows fewer classes, whose
    columns stay 0 before the rows are normalised."""
    X, y, X_new = classification(3, seed=11)
    y = y.copy()
    y[:4] = 3  # a rare fourth class, absent from some folds
    est = fit(
        CalibratedClassifierCV(
            RF[1](),
            cv=[(np.arange(20, 150), np.arange(20)), (np.arange(0, 130), np.arange(130, 150))],
        ),
        X,
        y,
    )
    assert any(len(c.estimator.classes_) < 4 for c in est.calibrated_classifiers_)
    check(
        serve(est, tmp_path), est, X_new, "CalibratedClassifierCV, fold without a class", exact=True
    )


# -- one-vs-rest, one-vs-one, output codes -----------------------------------------

REGRESSOR_MEMBER = ("LinearRegression", LinearRegression, "never")
MHUBER = (
    "SGDClassifier(modified_huber)",
    lambda: SGDClassifier(loss="modified_huber", random_state=0),
    "never",
)


@pytest.mark.parametrize(
    "member", [LR, PIPE, RF, HGB, REGRESSOR_MEMBER, MHUBER], ids=lambda m: m[0]
)
@pytest.mark.parametrize("k", [2, 3, 4])
def test_one_vs_rest(member, k, tmp_path):
    X, y, X_new = classification(k, seed=20 + k)
    est = fit(OneVsRestClassifier(member[1]()), X, y)
    model = serve(est, tmp_path)
    ctx = f"OneVsRestClassifier({member[0]}) k={k}"
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member, k))


@pytest.mark.parametrize("member", [LR, RF, HGB], ids=lambda m: m[0])
def test_one_vs_rest_multilabel(member, tmp_path):
    X, Y, X_new = multilabel(seed=3)
    Y = np.column_stack([Y, np.ones(len(Y), int)])  # a label always on: a constant
    est = fit(OneVsRestClassifier(member[1]()), X, Y)
    assert type(est.estimators_[-1]).__name__ == "_ConstantPredictor"
    model = serve(est, tmp_path)
    check(model, est, X_new, f"OneVsRestClassifier({member[0]}) multilabel", exact=exact(member))


@pytest.mark.parametrize("variant", ["joblib", "compile"])
def test_one_vs_rest_multilabel_classes(variant, tmp_path):
    """classes_ of a multilabel OneVsRestClassifier is scikit-learn's: the
    label indices, one array (each column of predict is 0 or 1), pickled
    Model too; inside a pipeline the same."""
    X, Y, _ = multilabel(seed=3)
    for est in (
        OneVsRestClassifier(RF[1]()),
        make_pipeline(StandardScaler(), OneVsRestClassifier(LR[1]())),
    ):
        est = fit(est, X, Y)
        model = load_variant(est, variant, tmp_path)
        for m in (model, pickle.loads(pickle.dumps(model))):
            ctx = f"{type(final_estimator(est)).__name__} multilabel ({variant})"
            check_attributes(m, est, ctx)
            assert_same_output(m.classes_, np.arange(Y.shape[1]), ctx)


def test_one_vs_rest_ties_take_the_versions_maximum(tmp_path):
    """Members that answer the same score: 1.8+ takes the first class of the
    maximum (np.argmax), before it the last."""
    X, y, X_new = classification(3, seed=1)
    est = fit(OneVsRestClassifier(TREE[1]()), X, y)
    X_tie = np.repeat(X_new, 3, axis=0)
    model = serve(est, tmp_path)
    scores = est.predict_proba(X_tie)
    assert_same_output(model.predict(X_tie), est.predict(X_tie), "OvR(tree) predict")
    assert_same_output(model.predict_proba(X_tie), scores, "OvR(tree) predict_proba", exact=True)


@pytest.mark.parametrize("member", [LR, PIPE, RF, HGB, SVC], ids=lambda m: m[0])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_one_vs_one(member, k, tmp_path):
    X, y, X_new = classification(k, seed=30 + k)
    est = fit(OneVsOneClassifier(member[1]()), X, y)
    model = serve(est, tmp_path)
    ctx = f"OneVsOneClassifier({member[0]}) k={k}"
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member, k))


@pytest.mark.parametrize("member", [LR, RF, HGB, SVC], ids=lambda m: m[0])
@pytest.mark.parametrize("k,code_size", [(2, 3.0), (3, 1.5), (4, 4.0)])
def test_output_code(member, k, code_size, tmp_path):
    X, y, X_new = classification(k, seed=40 + k)
    est = fit(OutputCodeClassifier(member[1](), code_size=code_size, random_state=k), X, y)
    model = serve(est, tmp_path)
    ctx = f"OutputCodeClassifier({member[0]}, code_size={code_size}) k={k}"
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx)


def test_output_code_with_constant_columns(tmp_path):
    """A random code book with a column of one value: a _ConstantPredictor."""
    X, y, X_new = classification(3, seed=5)
    est = fit(OutputCodeClassifier(RF[1](), code_size=6, random_state=0), X, y)
    assert any(type(e).__name__ == "_ConstantPredictor" for e in est.estimators_)
    check(serve(est, tmp_path), est, X_new, "OutputCodeClassifier with constant columns")


# -- multi-output and chains -------------------------------------------------------


@pytest.mark.parametrize("member", [LR, RF, HGB], ids=lambda m: m[0])
def test_multi_output_classifier(member, tmp_path):
    X, y, X_new = classification(3, seed=50)
    Y = np.column_stack(
        [
            np.array(["a", "b", "c"])[y],
            (X[:, 1] > 0).astype(int),
            np.where(X[:, 2] > 0.5, 2.5, -1.0),
        ]
    )
    Y = np.array(Y, dtype=object)
    est = fit(MultiOutputClassifier(member[1]()), X, Y)
    model = serve(est, tmp_path)
    ctx = f"MultiOutputClassifier({member[0]})"
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member, 3))


@pytest.mark.parametrize(
    "member",
    [
        ("Ridge", Ridge, "never"),
        ("RandomForestRegressor", lambda: RandomForestRegressor(5, random_state=0), "always"),
        (
            "HistGradientBoostingRegressor",
            lambda: HistGradientBoostingRegressor(max_iter=10),
            "always",
        ),
    ],
    ids=lambda m: m[0],
)
def test_multi_output_regressor_and_chain(member, tmp_path):
    X, Y, X_new = regression(3, seed=2)
    for est in (
        MultiOutputRegressor(member[1]()),
        RegressorChain(member[1](), order=[2, 0, 1]),
        RegressorChain(member[1](), order="random", random_state=1),
    ):
        est = fit(est, X, Y)
        ctx = f"{type(est).__name__}({member[0]})"
        model = serve(est, tmp_path)
        check_attributes(model, est, ctx)
        check(model, est, X_new, ctx, exact=exact(member))


CHAIN_METHODS = ["predict"] + (
    ["predict_proba", "decision_function", "predict_log_proba"] if sklearn_version >= (1, 5) else []
)


@pytest.mark.parametrize("chain_method", CHAIN_METHODS)
@pytest.mark.parametrize("member", [LR, GB, RF], ids=lambda m: m[0])
def test_classifier_chain(member, chain_method, tmp_path):
    if chain_method in ("decision_function", "predict_log_proba") and member is RF:
        # (a forest's probabilities of 0 make log-probabilities of -inf)
        pytest.skip(f"RandomForestClassifier: no {chain_method} to chain")
    X, Y, X_new = multilabel(seed=4)
    kw = {"chain_method": chain_method} if sklearn_version >= (1, 5) else {}
    for order in ([2, 0, 1], "random"):
        est = fit(ClassifierChain(member[1](), order=order, random_state=2, **kw), X, Y)
        ctx = f"ClassifierChain({member[0]}, order={order}, chain_method={chain_method})"
        model = serve(est, tmp_path)
        check_attributes(model, est, ctx)
        check(model, est, X_new, ctx, exact=exact(member))


# -- thresholds, self-training, frozen ---------------------------------------------


@needs((1, 5))
@pytest.mark.parametrize("member", [LR, HGB, RF], ids=lambda m: m[0])
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(threshold=0.3),
        dict(threshold=0.7, pos_label=0),
        dict(threshold=-0.2, response_method="decision_function"),
        dict(threshold=0.4, response_method="decision_function", pos_label=0),
        dict(threshold=0.25, response_method="predict_proba", pos_label=1),
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults",
)
def test_fixed_threshold(member, options, tmp_path):
    from sklearn.model_selection import FixedThresholdClassifier

    if options.get("response_method") == "decision_function" and member is RF:
        pytest.skip("RandomForestClassifier has no decision_function")
    X, y, X_new = classification(2, seed=60)
    y = np.array(["neg", "pos"])[y] if "pos_label" not in options else y
    est = fit(FixedThresholdClassifier(member[1](), **options), X, y)
    ctx = f"FixedThresholdClassifier({member[0]}, {options})"
    model = serve(est, tmp_path)
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member))


@needs((1, 5))
@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1", "precision", "neg_log_loss"])
@pytest.mark.parametrize("member", [LR, HGB], ids=lambda m: m[0])
def test_tuned_threshold(member, scoring, tmp_path):
    from sklearn.model_selection import TunedThresholdClassifierCV

    X, y, X_new = classification(2, seed=61)
    est = fit(TunedThresholdClassifierCV(member[1](), scoring=scoring, cv=3, random_state=0), X, y)
    ctx = f"TunedThresholdClassifierCV({member[0]}, scoring={scoring})"
    model = serve(est, tmp_path)
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member))


@needs((1, 5))
def test_tuned_threshold_with_a_scorer_pos_label(tmp_path):
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import TunedThresholdClassifierCV

    X, y, X_new = classification(2, seed=62)
    y = np.array([3, 7])[y]
    scorer = make_scorer(f1_score, pos_label=3)
    est = fit(TunedThresholdClassifierCV(HGB[1](), scoring=scorer, cv=3), X, y)
    check(serve(est, tmp_path), est, X_new, "TunedThresholdClassifierCV(pos_label=3)", exact=True)


@pytest.mark.parametrize("member", [LR, HGB, RF, GB], ids=lambda m: m[0])
def test_self_training(member, tmp_path):
    X, y, X_new = classification(3, seed=70)
    y = y.copy()
    y[::3] = -1
    est = fit(SelfTrainingClassifier(member[1]()), X, y)
    ctx = f"SelfTrainingClassifier({member[0]})"
    model = serve(est, tmp_path)
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member, 3))


# -- TransformedTargetRegressor -----------------------------------------------------

TARGET_TRANSFORMS = [
    ("log1p/expm1", dict(func=np.log1p, inverse_func=np.expm1)),
    ("sqrt/square", dict(func=np.sqrt, inverse_func=np.square, check_inverse=False)),
    ("log/exp", dict(func=np.log, inverse_func=np.exp)),
    ("none", dict()),
    ("StandardScaler", dict(transformer=StandardScaler())),
    ("MinMaxScaler", dict(transformer=MinMaxScaler())),
    ("MaxAbsScaler", dict(transformer=MaxAbsScaler())),
    ("RobustScaler", dict(transformer=RobustScaler())),
    (
        "FunctionTransformer",
        dict(transformer=FunctionTransformer(np.cbrt, np.exp2, check_inverse=False)),
    ),
    ("Pipeline", dict(transformer=make_pipeline(StandardScaler(), MaxAbsScaler()))),
]


@pytest.mark.parametrize("transform", TARGET_TRANSFORMS, ids=lambda t: t[0])
@pytest.mark.parametrize(
    "member",
    [
        ("Ridge", Ridge, "never"),
        ("DecisionTreeRegressor", lambda: DecisionTreeRegressor(max_depth=5), "always"),
        ("GradientBoostingRegressor", lambda: GradientBoostingRegressor(n_estimators=10), "always"),
    ],
    ids=lambda m: m[0],
)
@pytest.mark.parametrize("targets", [1, 2])
def test_transformed_target(member, transform, targets, tmp_path):
    if targets == 2 and member[0] == "GradientBoostingRegressor":
        pytest.skip("single-output regressor")
    X, y, X_new = regression(targets, seed=8)
    y = np.abs(y) + 1.0
    est = fit(TransformedTargetRegressor(member[1](), **transform[1]), X, y)
    ctx = f"TransformedTargetRegressor({member[0]}, {transform[0]}) targets={targets}"
    model = serve(est, tmp_path)
    check_attributes(model, est, ctx)
    check(model, est, X_new, ctx, exact=exact(member))


# -- FunctionTransformer -------------------------------------------------------------

INPUT_DTYPES = (
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.int32,
    np.uint16,
    np.int8,
    np.uint8,
)


@pytest.mark.parametrize("validate", [False, True], ids=["validate=False", "validate=True"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_transformer_is_numpys_function(name, validate, tmp_path):
    """Every served function, bit for bit, its output of numpy's type, for
    every input dtype (numpy computes int8 in float16, int16 in float32...)."""
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(400, 3))) * 3 + 0.01
    X[0] = [0.0, 1e-300, 1.0]
    X[1] = [0.5, 0.999, 80.0]
    est = FunctionTransformer(getattr(np, name), validate=validate).fit(X)
    model = mlfast.compile(est)
    for dtype in INPUT_DTYPES:
        Xd = X.astype(dtype) if np.dtype(dtype).kind == "f" else (10 * X).astype(dtype)
        with np.errstate(all="ignore"):
            expected = quietly(est.transform, Xd)
            got = quietly(model.transform, Xd)
        assert_same_output(
            got, expected, f"FunctionTransformer({name}) on {np.dtype(dtype)}", exact=True
        )


def test_function_transformer_identity_and_pipelines(tmp_path):
    X, y, X_new = classification(3, seed=80)
    X, X_new = np.abs(X), np.abs(X_new)
    for est in (
        FunctionTransformer(),
        FunctionTransformer(validate=True),
        make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LR[1]()),
        make_pipeline(FunctionTransformer(np.sqrt, validate=True), HGB[1]()),
    ):
        est = fit(est, X, y)
        model = serve(est, tmp_path)
        ctx = f"{model.estimator}"
        check(model, est, X_new, ctx, dtypes=(np.float64, np.float32, np.int64))


def test_function_transformer_refusals(tmp_path):
    X = np.abs(classification(3)[0])
    for func, error, text in [
        (np.clip, mlfast.UnsafeModelError, "global 'numpy.clip' is refused"),
        (
            StandardScaler,
            mlfast.UnsupportedModelError,
            "func is sklearn.preprocessing._data.StandardScaler, which mlfast does not serve",
        ),
    ]:
        est = FunctionTransformer(func).fit(X)
        with pytest.raises(error, match=text):
            mlfast.compile(est)
    est = FunctionTransformer(np.log1p, kw_args={"out": None}).fit(X)
    with pytest.raises(mlfast.UnsupportedModelError, match="kw_args is set"):
        mlfast.compile(est)


def test_ufunc_reconstruct_of_old_numpy():
    """numpy < 1.20 pickled a ufunc as _ufunc_reconstruct(module, name); only
    a served function's name is accepted, and nothing is looked up."""
    good = (
        b"\x80\x02cnumpy.core\n_ufunc_reconstruct\nq\x00X\x05\x00\x00\x00numpyq\x01"
        b"X\x05\x00\x00\x00log1pq\x02\x86q\x03Rq\x04."
    )
    value = mlfast._core.unpickle(good)
    assert value.path == "numpy.log1p" and value.kind == mlfast._core.GLOBAL_KINDS["function"]
    bad = good.replace(b"log1p", b"loadt")
    with pytest.raises(mlfast.UnsafeModelError, match="_ufunc_reconstruct is refused"):
        mlfast._core.unpickle(bad)


# -- refusals, messages, nesting, pickling, threads ---------------------------------


def test_unsupported_parts_are_named(tmp_path):
    X, y, _ = regression(1)
    est = fit(
        TransformedTargetRegressor(Ridge(), transformer=QuantileTransformer(n_quantiles=20)), X, y
    )
    with pytest.raises(
        mlfast.UnsupportedModelError,
        match=r"model.transformer_ \(QuantileTransformer\): mlfast serves the "
        "inverse of FunctionTransformer, the scalers",
    ):
        mlfast.compile(est)
    X, Y, _ = multilabel()
    from scipy import sparse

    est = fit(OneVsRestClassifier(LR[1]()), X, sparse.csr_matrix(Y))
    with pytest.raises(mlfast.UnsupportedModelError, match="sparse label matrix"):
        mlfast.compile(est)


def test_an_unserved_member_is_named_without_the_parts_mlfast_reads():
    """The label binarizer, the calibrators, _ConstantPredictor and the
    unfitted templates are parts the builders read: an unserved member is
    named alone."""
    from sklearn.semi_supervised import LabelSpreading

    X, y, _ = classification(3, seed=2)
    for est in (
        OneVsRestClassifier(LabelSpreading()),
        CalibratedClassifierCV(LabelSpreading(), method="isotonic", cv=2),
        OutputCodeClassifier(LabelSpreading(), code_size=6, random_state=0),
    ):
        est = fit(est, X, y)
        try:
            mlfast.compile(est)
        except mlfast.UnsupportedModelError as exc:
            message = str(exc)
        else:
            pytest.skip("LabelSpreading is served now: pick another unserved member")
        assert "LabelSpreading" in message
        for part in ("label_binarizer_", "calibrators", "_ConstantPredictor", "model.estimator "):
            assert part not in message, message


def _message(fn, X):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(X)
    except ValueError as exc:
        return str(exc)
    return None


def test_nan_and_inf_are_refused_as_scikit_learn_refuses_them():
    X, y, X_new = classification(3, seed=90)
    X3, Y, _ = multilabel(seed=90)
    Xr, Yr, _ = regression(3, seed=90)
    cases = [
        OneVsRestClassifier(LR[1]()).fit(X, y),
        OneVsOneClassifier(PIPE[1]()).fit(X, y),
        OutputCodeClassifier(LR[1](), random_state=0).fit(X, y),
        CalibratedClassifierCV(PIPE[1](), cv=3).fit(X, y),
        CalibratedClassifierCV(HGB[1](), cv=3).fit(X, y),
        ClassifierChain(LR[1]()).fit(X3, Y),
        RegressorChain(Ridge()).fit(Xr, Yr),
        MultiOutputClassifier(RF[1]()).fit(X3, Y),
        SelfTrainingClassifier(LR[1]()).fit(X, y),
        FunctionTransformer(np.log1p, validate=True).fit(np.abs(X)),
        FunctionTransformer(np.log1p).fit(np.abs(X)),
        TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1).fit(
            Xr, np.abs(Yr[:, 0])
        ),
    ]
    for est in cases:
        model = mlfast.compile(est)
        for bad in (np.nan, np.inf):
            X_bad = np.abs(X_new[:6]).copy()
            X_bad[3, 2] = bad
            for method in ("predict", "predict_proba", "transform"):
                if hasattr(est, method):
                    with np.errstate(all="ignore"):
                        expected = _message(getattr(est, method), X_bad)
                        got = _message(getattr(model, method), X_bad)
                    assert got == expected, f"{type(est).__name__}.{method} with {bad}"


def test_deep_nesting(tmp_path):
    """Meta-estimators inside meta-estimators inside pipelines."""
    X, y, X_new = classification(3, seed=100)
    X, X_new = np.abs(X), np.abs(X_new)
    inner = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LR[1]())
    for est in (
        CalibratedClassifierCV(OneVsRestClassifier(inner), cv=3),
        OneVsOneClassifier(CalibratedClassifierCV(HGB[1](), method="isotonic", cv=3)),
        make_pipeline(
            FunctionTransformer(np.sqrt),
            OutputCodeClassifier(SelfTrainingClassifier(RF[1]()), random_state=0),
        ),
        MultiOutputClassifier(CalibratedClassifierCV(RF[1](), cv=2)),
    ):
        target = (
            np.column_stack([y, X[:, 0] > 1]).astype(int)
            if isinstance(est, MultiOutputClassifier)
            else y
        )
        est = fit(est, X, target)
        model = serve(est, tmp_path)
        check(model, est, X_new, model.estimator)


def representatives():
    """Meta-estimators around exact members (so their answers must be
    scikit-learn's bit for bit) for every file variant, pickling, inspect and
    repr (test_parity_shared.py): multi-output lists, a chain, a target
    transform and a numpy function."""

    def on(make, data, rows=lambda X_new: (X_new, X_new.astype(np.float32))):
        def make_model():
            X, y, X_new = data()
            return Representative(fit(make(), X, y), rows(X_new), exact=True)

        return make_model

    def clf():
        return classification(3, seed=120)

    def multi():
        X, Y, _ = multilabel(seed=120)
        return X, Y, clf()[2]

    def positive_targets():
        Xr, Yr, _ = regression(2, seed=120)
        return Xr, np.abs(Yr), clf()[2]

    return {
        "CalibratedClassifierCV(OneVsOneClassifier(HGB), isotonic)": on(
            lambda: CalibratedClassifierCV(OneVsOneClassifier(HGB[1]()), method="isotonic", cv=2),
            lambda: classification(3, seed=110),
        ),
        "CalibratedClassifierCV(RF, isotonic)": on(
            lambda: CalibratedClassifierCV(RF[1](), method="isotonic", cv=2), clf
        ),
        "OneVsOneClassifier(HGB)": on(lambda: OneVsOneClassifier(HGB[1]()), clf),
        "OutputCodeClassifier(RF)": on(lambda: OutputCodeClassifier(RF[1](), random_state=0), clf),
        "ClassifierChain(GB)-multilabel": on(
            lambda: ClassifierChain(GB[1](), order="random", random_state=0), multi
        ),
        "OneVsRestClassifier(RF)-multilabel": on(lambda: OneVsRestClassifier(RF[1]()), multi),
        "MultiOutputClassifier(RF)": on(lambda: MultiOutputClassifier(RF[1]()), multi),
        "TransformedTargetRegressor(RF, log1p)": on(
            lambda: TransformedTargetRegressor(
                RandomForestRegressor(4, random_state=0), func=np.log1p, inverse_func=np.expm1
            ),
            positive_targets,
        ),
        "FunctionTransformer(cbrt)-float32": on(
            lambda: FunctionTransformer(np.cbrt),
            lambda: (clf()[0], None, clf()[2]),
            rows=lambda X_new: X_new.astype(np.float32),
        ),
    }


def test_batches_split_across_threads(tmp_path):
    X, y, _ = classification(4, seed=130)
    X_big = np.random.default_rng(0).normal(size=(3000, N_FEATURES))
    X3, Y, _ = multilabel(seed=130)
    ests = [
        CalibratedClassifierCV(
            RandomForestClassifier(30, max_depth=6, random_state=0), method="isotonic", cv=2
        ).fit(X, y),
        OneVsRestClassifier(HGB[1]()).fit(X, y),
        OneVsOneClassifier(RandomForestClassifier(10, max_depth=5, random_state=0)).fit(X, y),
        ClassifierChain(HGB[1](), order="random", random_state=0).fit(X3, Y),
        make_pipeline(FunctionTransformer(np.arcsinh), HGB[1]()).fit(X, y),
    ]
    for est in ests:
        model = mlfast.compile(est)
        check_across_threads(
            model,
            est,
            X_big,
            [m for m in METHODS if hasattr(est, m)],
            model.estimator,
            threads=(2, 1),
        )


def test_input_layouts(tmp_path):
    import pandas as pd

    X, y, X_new = classification(3, seed=140)
    est = fit(OneVsRestClassifier(make_pipeline(FunctionTransformer(np.tanh), HGB[1]())), X, y)
    model = serve(est, tmp_path)
    for rows in (
        X_new.tolist(),
        np.asfortranarray(X_new),
        X_new[::2],
        pd.DataFrame(X_new),
        X_new.astype(">f8"),
    ):
        for method in ("predict", "predict_proba", "decision_function"):
            assert_same_output(
                quietly(getattr(model, method), rows),
                quietly(getattr(est, method), rows),
                f"{method} {type(rows)}",
                exact=True,
            )


# -- the ops refuse what does not fit --------------------------------------------------


def _graph(op, n_in, n_out, n_features=None):
    node = ir.Node(op, np.arange(n_in, dtype=np.int64), n_out, "Op")
    n = n_features or n_in
    return _core.Graph(n, [node], {"transform": ir.Output(np.arange(n, n + n_out))})


@pytest.mark.parametrize(
    "op,n_in,n_out,message",
    [
        (ir.Calibrate(rule=9, n_classes=3), 3, 3, "calibrate: rule 9"),
        (
            ir.Calibrate(
                rule=ir.CalibrateRule.SIGMOID,
                n_classes=3,
                columns=np.array([0, 3]),
                a=np.ones(2),
                b=np.ones(2),
            ),
            2,
            3,
            r"calibrate.columns\[1\] is outside",
        ),
        (
            ir.Calibrate(
                rule=ir.CalibrateRule.SIGMOID,
                n_classes=3,
                columns=np.array([0, 1]),
                a=np.ones(1),
                b=np.ones(2),
            ),
            2,
            3,
            "calibrate.a must hold 2 items",
        ),
        (
            ir.Calibrate(
                rule=ir.CalibrateRule.ISOTONIC,
                n_classes=2,
                columns=np.array([1]),
                x=np.array([0.0, 2.0, 1.0]),
                y=np.zeros(3),
                offsets=np.array([0, 3]),
                lo=np.zeros(1),
                hi=np.ones(1),
            ),
            1,
            2,
            "calibrate.x of calibrator 0 is not",
        ),
        (
            ir.Calibrate(
                rule=ir.CalibrateRule.ISOTONIC,
                n_classes=2,
                columns=np.array([1]),
                x=np.zeros(3),
                y=np.zeros(3),
                offsets=np.array([0, 4]),
                lo=np.zeros(1),
                hi=np.ones(1),
            ),
            1,
            2,
            "calibrate.offsets must be 2 bounds from 0 to 3",
        ),
        (
            ir.Calibrate(rule=ir.CalibrateRule.TEMPERATURE, n_classes=3),
            2,
            3,
            "temperature scaling of 2 columns into 3 classes",
        ),
        (
            ir.Normalize(rule=ir.NormalizeRule.ZERO_NAN, complement=True),
            2,
            2,
            "normalize: rule 2 does not read 2 columns",
        ),
        (ir.OvoVotes(n_classes=3), 4, 3, "ovo_votes: 4 columns for 3 classes"),
        (ir.OvoVotes(n_classes=5000), 2, 3, "ovo_votes: 2 columns for 5000 classes"),
        (
            ir.Ecoc(rule=ir.EcocRule.SQUARED, code_book=np.ones((3, 2)), code_norms=np.ones(3)),
            3,
            3,
            r"ecoc: rule 1, code book \(3, 2\)",
        ),
        (
            ir.Ecoc(rule=ir.EcocRule.SQUARED, code_book=np.ones((3, 2)), code_norms=np.ones(2)),
            2,
            3,
            "and 2 norms",
        ),
        (ir.Cast(rule=ir.CastRule.UFUNC, code=0), 1, 1, "cast: unknown function code 0"),
        (ir.Function(code=len(FUNCTIONS) + 1), 1, 1, "function: unknown function code"),
    ],
)
def test_ops_refuse_fields_that_do_not_fit(op, n_in, n_out, message):
    with pytest.raises(ValueError, match=message):
        _graph(op, n_in, n_out)


@pytest.mark.parametrize("stack", ["sk1.1.3", "sk1.6.1", "sk1.7.2", "sk1.9.1"])
def test_one_vs_rest_of_older_versions_keeps_its_classes(stack):
    """Before 1.8 ties go to the last estimator (the version fixtures check
    the labels); the classes keep their order all the same."""
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "versions" / stack / "one_vs_rest_trees.z3.joblib"
    model = mlfast.load(path)
    assert model.classes_.tolist() == [0, 1, 2]
