"""Fit, save and record golden outputs with ONE scikit-learn stack.

Run by scripts/make_version_fixtures.py with the python of an old stack's
virtualenv (``python -I _fixture_generator.py OUT_DIR STACK_NAME``); it must
therefore run unchanged on every scikit-learn from 0.21 to today, on numpy
1.16 to 2.x and on Python 3.7 to today, and it imports nothing from mlfast.

For each fixture it writes
  <fixture>.joblib       joblib.dump(est, path)                (default options:
                         the running Python's default protocol, 3 on 3.7)
  <fixture>.z3.joblib    joblib.dump(est, path, compress=3)    (a few fixtures)
  <fixture>.<codec>.joblib  joblib.dump(compress=(codec, 3))   (one fixture)
  <fixture>.ext.joblib   sklearn.externals.joblib.dump(...)    (where it exists)
  <fixture>.p<N>.pkl     pickle.dump(est, f, protocol=N), N = 0, 1, 2 (a few)
  <fixture>.npz          for each method, an array of shape (2, ...): this
                         stack's scikit-learn output on the float64 test
                         input [0] and on the same input as float32 [1]
                         (see record()).  Numeric and '<U' arrays only
                         (object label arrays are stored as '<U' and flagged
                         in the manifest), so np.load needs no pickle.
and, once per stack, inputs.npz (the float64 test inputs, by name; the
float32 input is the same array .astype(np.float32)) and manifest.part.json
(the versions and one entry per fixture), which the driver merges into
tests/fixtures/versions/manifest.json.

Fixtures a version cannot make (no multi_class before/after, no
keep_empty_features before 1.2, no NaN in trees before 1.3, ...) are
skipped with a message; every other failure stops the run.  A file mlfast
must refuse (a state it cannot predict from exactly) is recorded with
"refused": the error class and a fragment of its message.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import platform
import sys
import warnings
import zipfile

import joblib
import numpy as np
import scipy
import sklearn
from sklearn.datasets import make_classification, make_regression

warnings.simplefilter("ignore")

OUT = sys.argv[1]
STACK = sys.argv[2]


def _version_tuple(text):
    out = []
    for part in text.split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


SK = _version_tuple(sklearn.__version__)
VERSIONS = {
    "sklearn": sklearn.__version__,
    "numpy": np.__version__,
    "joblib": joblib.__version__,
    "scipy": scipy.__version__,
    "python": platform.python_version(),
    "pickle_protocol": pickle.DEFAULT_PROTOCOL,
}
METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)

# ---------------------------------------------------------------------------
# data: fixed seeds, small, n_features <= 8

N_FEAT = 6
SCALE = np.array([1.0, 10.0, 0.1, 100.0, 3.0, 0.7])
OFFSET = np.array([0.0, 5.0, -2.0, 50.0, 1.0, -0.3])


def _rng(seed):
    return np.random.RandomState(seed)


def classification(n_classes, seed, n_samples=120):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=N_FEAT,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def regression(n_targets, seed, n_samples=100):
    X, y = make_regression(
        n_samples=n_samples,
        n_features=N_FEAT,
        n_informative=4,
        n_targets=n_targets,
        noise=0.5,
        random_state=seed,
    )
    return X, y


def test_matrix(seed, n_rows=10, scaled=False):
    """Fixed test rows: normal draws plus a few values with long mantissas."""
    X = _rng(seed).normal(size=(n_rows, N_FEAT)) * 1.3
    X[0] = 0.0
    X[1] = 1.0 / 3.0
    if scaled:
        X = X * SCALE + OFFSET
    return X


#: the test inputs, saved once per stack in inputs.npz (float64; the float32
#: input of every fixture is the same array .astype(np.float32))
INPUTS = {}


def test_input(name, X):
    INPUTS[name] = np.ascontiguousarray(X, dtype=np.float64)
    return INPUTS[name]


#: the object test inputs (categorical columns: str, float, None, NaN),
#: saved once per stack in inputs_obj.json as lists of rows (NaN as JSON's
#: NaN); every fixture reading one is asked with the 2-D object array [0]
#: and with the same rows as a list of lists [1]
OBJ_INPUTS = {}


def object_input(name, rows):
    OBJ_INPUTS[name] = [list(row) for row in rows]
    X = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            X[i, j] = v
    OBJ_INPUTS[name + "#array"] = X
    return X


X2, y2 = classification(2, 0)
X3, y3 = classification(3, 1, n_samples=150)
XT = test_input("XT", test_matrix(100))
Xr, yr = regression(1, 2)
Xr2, Yr2 = regression(2, 3)
XS = X3 * SCALE + OFFSET  # for scalers and the pipeline
XST = test_input("XST", test_matrix(101, scaled=True))
XSTW = test_input("XSTW", XST * 1.5)  # beyond MinMaxScaler's range: clip

# ---------------------------------------------------------------------------

entries = []
STATE_KEYS = ("multi_class", "solver", "loss", "clip", "keep_empty_features")


#: facts of the stack's files that every fixture shares (tree node layouts)
FACTS = {}


def _state_notes(est):
    """Attributes of the pickled state that vary across versions (only what
    is worth reading: the manifest stays small)."""
    d = getattr(est, "__dict__", {})
    notes = {}
    if "n_features_in_" not in d:
        notes["has_n_features_in_"] = False
    for k in STATE_KEYS:
        if k in d:
            v = d[k]
            if isinstance(v, (str, bool, int, float)) or v is None:
                notes[k] = v
            elif isinstance(v, tuple):
                notes[k] = [float(x) if isinstance(x, (int, float)) else str(x) for x in v]
    for k in ("coef_", "intercept_", "mean_", "scale_", "var_", "min_", "center_", "statistics_"):
        if k in d:
            v = d[k]
            text = str(np.asarray(v).dtype)
            if not isinstance(v, np.ndarray):
                text += f" ({type(v).__name__})"
            if text != "float64":
                notes[k + "dtype"] = text
    if "tree_" in d:
        nodes = d["tree_"].__getstate__()["nodes"]
        FACTS.setdefault(
            "tree_nodes", " ".join(f"{n}:{nodes.dtype.fields[n][0].str}" for n in nodes.dtype.names)
        )
        values = d["tree_"].__getstate__()["values"]
        root = values[0].ravel()
        notes["tree_root_value"] = [float(x) for x in root[:3]]
    for k in ("_loss", "loss_"):
        if k in d and not isinstance(d[k], str):
            notes[k] = type(d[k]).__module__ + "." + type(d[k]).__name__
    if "init_" in d and not isinstance(d["init_"], str):
        notes["init_"] = type(d["init_"]).__name__
    if "_predictors" in d:
        nodes = d["_predictors"][0][0].nodes
        FACTS.setdefault(
            "hgb_nodes", " ".join(f"{n}:{nodes.dtype.fields[n][0].str}" for n in nodes.dtype.names)
        )
    return notes


def savez(path, arrays):
    """np.savez_compressed, byte for byte reproducible: a fixed timestamp in
    the zip, so that running the script again changes no unchanged file."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _classes_in(est):
    """The estimator classes a file holds and mlfast must serve: pipeline
    steps, fitted ColumnTransformer and FeatureUnion parts, a search's
    best_estimator_."""
    names = [type(est).__name__]
    parts = [step for _, step in getattr(est, "steps", [])]
    parts += [t for _, t, _ in getattr(est, "transformers_", [])]
    parts += [t for _, t in getattr(est, "transformer_list", [])]
    if hasattr(est, "best_estimator_"):
        parts.append(est.best_estimator_)
    for part in parts:
        if part is None or isinstance(part, str):
            continue
        if type(part).__name__ == "FunctionTransformer" and getattr(part, "func", 0) is None:
            continue  # what fit puts in the place of remainder='passthrough'
        names.extend(_classes_in(part))
    return names


#: module.name of every global the top-level streams of the stack's files
#: name (read back with an unpickler that records and never runs a class)
MODULES = set()


def _globals_of(path, variant):
    """The modules of the globals a file's top-level pickle names, found by
    joblib's or pickle's own (pure Python) unpickler with find_class
    recording each name before looking it up."""
    from joblib import numpy_pickle

    seen = []

    class Recording(pickle._Unpickler):
        def find_class(self, module, name):
            seen.append(module)
            return super().find_class(module, name)

    original = numpy_pickle.NumpyUnpickler.find_class

    def recording_find_class(self, module, name):
        seen.append(module)
        return original(self, module, name)

    if variant.startswith("pickle"):
        with open(path, "rb") as fh:
            Recording(fh).load()
    else:
        numpy_pickle.NumpyUnpickler.find_class = recording_find_class
        try:
            joblib.load(path)
        finally:
            numpy_pickle.NumpyUnpickler.find_class = original
    # old joblib wrote some through the Python 2 names
    return {{"copy_reg": "copyreg", "__builtin__": "builtins"}.get(m, m) for m in seen}


def _externals_joblib():
    """sklearn.externals.joblib where this scikit-learn still has it."""
    try:
        from sklearn.externals import joblib as ext
    except ImportError:
        return None
    return ext if hasattr(ext, "dump") else None


def _same(a, b):
    if a.dtype.kind == "f":
        return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return bool(np.all(a == b))


def record(
    name, est, X_test, variants=("joblib",), note=None, refused=None, file_of=None, methods=METHODS
):
    """Save est in the given variants and record its outputs on X_test
    (file_of: the name of a fixture of the same est, whose files this one
    reads instead of saving its own).

    X_test is one of INPUTS (float64; the float32 input is
    ``X_test.astype(np.float32)``).  <name>.npz holds, for each method, one
    array of shape (2, ...) stacking the output on the float64 input and the
    output on the float32 input (one zip member instead of two keeps the
    files small); a method that answers a list (multi-output predict_proba)
    has one such array per output, "<method>.<k>".  Each output's own dtype is in the manifest ("methods":
    method -> its dtype, or [dtype on float64 input, dtype on float32 input]
    when they differ); a float32 output is stored exactly in the float64
    stack.  Object arrays of labels are stored as '<U' and listed in
    "object_outputs".
    """
    names = [k for k, v in INPUTS.items() if v is X_test]
    if names:
        input_name, input_kind = names[0], None
        pairs = (("f64", X_test), ("f32", X_test.astype(np.float32)))
    elif isinstance(X_test, list):
        # dicts of features: as a list and as a tuple of the same dicts;
        # labels (y): as an array and as a list; sets of labels: as lists
        # and as tuples
        input_name = next(k for k, v in OBJ_INPUTS.items() if v is X_test)
        input_kind = (
            "dicts"
            if isinstance(X_test[0], dict)
            else "labelsets"
            if isinstance(X_test[0], list)
            else "labels"
        )
        if input_kind == "dicts":
            pairs = (("records", X_test), ("tuple", tuple(X_test)))
        elif input_kind == "labels":
            pairs = (("labels", np.asarray(X_test)), ("list", X_test))
        else:
            pairs = (("labelsets", X_test), ("tuples", tuple(tuple(r) for r in X_test)))
    else:
        input_name = next(k for k, v in OBJ_INPUTS.items() if v is X_test)[: -len("#array")]
        input_kind = "object"
        pairs = (("obj", X_test), ("list", [list(row) for row in OBJ_INPUTS[input_name]]))
    arrays = {}
    dtypes, object_outputs, errors = {}, [], {}
    for m in methods:
        if not hasattr(est, m):
            continue
        if m == "score_samples" and type(est).__name__ == "BernoulliRBM":
            continue  # it corrupts a feature chosen at random: nothing to record
        results = []
        for tag, X in pairs:
            try:
                with np.errstate(all="ignore"):
                    results.append(getattr(est, m)(X))
            except Exception as exc:  # recorded, never silently dropped
                # the first line: what scikit-learn says is wrong
                errors[f"{m}__{tag}"] = f"{type(exc).__name__}: {exc}".split("\n")[0][:200]
        if len(results) == 1 and input_kind:
            # the array answered and the list was refused, or the other way
            # round: the refusal is recorded, the answer kept in both rows
            results = results * 2
        if len(results) != 2:
            continue
        if isinstance(results[0], list):
            # multi-output predict_proba: one array per output, "<method>.<k>"
            for k, (b64, b32) in enumerate(zip(*results)):
                arrays["{}.{}".format(m, k)] = np.stack([np.asarray(b64), np.asarray(b32)])
            dtypes[m] = {"outputs": len(results[0]), "dtype": str(np.asarray(results[0][0]).dtype)}
            continue
        a64, a32 = np.asarray(results[0]), np.asarray(results[1])
        assert a64.shape == a32.shape, (name, m, a64.shape, a32.shape)
        dtypes[m] = str(a64.dtype) if a64.dtype == a32.dtype else [str(a64.dtype), str(a32.dtype)]
        if a64.dtype.kind == "O" or a32.dtype.kind == "O":
            object_outputs.append(m)
            a64, a32 = a64.astype(str), a32.astype(str)
        if a64.dtype != a32.dtype:
            common = np.promote_types(a64.dtype, a32.dtype)
            assert common.kind == a64.dtype.kind, (name, m, a64.dtype, a32.dtype)
            a64, a32 = a64.astype(common), a32.astype(common)
        if input_kind and a64.dtype == a32.dtype and _same(a64, a32):
            # the array and the list answered alike: one row holds both
            arrays[m] = a64[None]
        else:
            arrays[m] = np.stack([a64, a32])
    savez(os.path.join(OUT, name + ".npz"), arrays)
    entry = {
        "stack": STACK,
        "fixture": name,
        "estimator": type(est).__name__,
        "methods": dtypes,
        "input": input_name,
        "files": {},
    }
    if input_kind:
        entry["input_kind"] = input_kind
    if refused:
        entry["refused"] = refused
    if _classes_in(est) != [entry["estimator"]]:
        entry["classes_in_file"] = _classes_in(est)
    if object_outputs:
        entry["object_outputs"] = object_outputs
    if hasattr(est, "feature_names_in_"):
        entry["feature_names_in"] = [str(x) for x in est.feature_names_in_]
    if errors:
        entry["errors"] = errors
    if note:
        entry["note"] = note
    entry["state"] = _state_notes(est)
    if hasattr(est, "steps"):
        entry["state"] = {n: _state_notes(s) for n, s in est.steps}
    if file_of is not None:
        entry["files"] = dict(next(e for e in entries if e["fixture"] == file_of)["files"])
        variants = ()
    for variant in variants:
        if variant == "joblib":
            fname = name + ".joblib"
            joblib.dump(est, os.path.join(OUT, fname))
        elif variant == "joblib_z3":
            fname = name + ".z3.joblib"
            joblib.dump(est, os.path.join(OUT, fname), compress=3)
        elif variant in ("joblib_gzip", "joblib_bz2", "joblib_xz", "joblib_lzma"):
            codec = variant.split("_", 1)[1]
            fname = "{}.{}.joblib".format(name, codec)
            joblib.dump(est, os.path.join(OUT, fname), compress=(codec, 3))
        elif variant == "joblib_ext":
            ext = _externals_joblib()
            if ext is None:
                continue
            fname = name + ".ext.joblib"
            ext.dump(est, os.path.join(OUT, fname))
        elif variant in ("pickle_p0", "pickle_p1", "pickle_p2"):
            fname = "{}.p{}.pkl".format(name, variant[-1])
            with open(os.path.join(OUT, fname), "wb") as fh:
                pickle.dump(est, fh, protocol=int(variant[-1]))
        else:
            raise ValueError(variant)
        if variant == "joblib_gzip":
            # gzip's header holds the time of writing: zero it, so that the
            # file is the same byte for byte whenever it is made
            with open(os.path.join(OUT, fname), "r+b") as fh:
                fh.seek(4)
                fh.write(b"\0\0\0\0")
        entry["files"][variant] = fname
        MODULES.update(_globals_of(os.path.join(OUT, fname), variant))
    entries.append(entry)


def skipped(name, why):
    print(f"  skip {name}: {why}", flush=True)


ALL_VARIANTS = ("joblib", "joblib_z3", "pickle_p2")
OLD_PROTOCOLS = ("pickle_p0", "pickle_p1")
#: ensembles are saved compressed: every tree of one carries its parameters
#: and GradientBoosting's carry their random state (a few KB each); what
#: the VM reads is the same stream once decompressed
Z3 = ("joblib_z3",)
CODECS = ("joblib_gzip", "joblib_bz2", "joblib_xz", "joblib_lzma")

# ---------------------------------------------------------------------------
# linear classifiers

from sklearn.linear_model import (  # noqa: E402
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lars,
    LarsCV,
    Lasso,
    LassoCV,
    LassoLars,
    LassoLarsCV,
    LassoLarsIC,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
    OrthogonalMatchingPursuit,
    OrthogonalMatchingPursuitCV,
    PassiveAggressiveClassifier,
    PassiveAggressiveRegressor,
    Perceptron,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TheilSenRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR  # noqa: E402

HAS_MULTI_CLASS = "multi_class" in LogisticRegression().get_params()
# before 0.22 the default solver was liblinear (one-vs-rest only): the
# multinomial fixtures name lbfgs, the default since
LBFGS = {"solver": "lbfgs"}

record(
    "logreg_binary",
    LogisticRegression(max_iter=1000).fit(X2, y2),
    XT,
    variants=ALL_VARIANTS + CODECS,
)
record("logreg_multi", LogisticRegression(max_iter=1000).fit(X3, y3), XT, variants=ALL_VARIANTS)
if HAS_MULTI_CLASS:
    record(
        "logreg_ovr_multi",
        LogisticRegression(multi_class="ovr", max_iter=1000, **LBFGS).fit(X3, y3),
        XT,
    )
    record(
        "logreg_multinomial_multi",
        LogisticRegression(multi_class="multinomial", max_iter=1000, **LBFGS).fit(X3, y3),
        XT,
    )
    record(
        "logreg_multinomial_binary",
        LogisticRegression(multi_class="multinomial", max_iter=1000, **LBFGS).fit(X2, y2),
        XT,
    )
else:
    skipped("logreg_ovr_*/logreg_multinomial_*", "LogisticRegression has no multi_class")
try:  # newton-cholesky is new in 1.2; 1.2-1.5 fit and predict it one-vs-rest
    est = LogisticRegression(solver="newton-cholesky", max_iter=1000).fit(X3, y3)
except ValueError as exc:
    skipped("logreg_newton_cholesky_multi", exc)
else:
    record("logreg_newton_cholesky_multi", est, XT)
record("logreg_liblinear_binary", LogisticRegression(solver="liblinear").fit(X2, y2), XT)
try:
    est = LogisticRegression(solver="liblinear").fit(X3, y3)
except ValueError as exc:
    skipped("logreg_liblinear_multi", exc)
else:
    record("logreg_liblinear_multi", est, XT)
labels = np.array(["cat", "dog", "emu"])
record("logreg_strings", LogisticRegression(max_iter=1000).fit(X3, labels[y3]), XT)
record(
    "logreg_strings_obj",
    LogisticRegression(max_iter=1000).fit(X2, np.array(["no", "yes"], dtype=object)[y2]),
    XT,
    variants=ALL_VARIANTS + OLD_PROTOCOLS + ("joblib_ext",),
    note="object-dtype classes_: joblib stores them as a nested pickle",
)
est = LogisticRegression(max_iter=1000).fit(X2, y2)
# what fitting on a DataFrame leaves behind (no pandas in the old stacks)
est.feature_names_in_ = np.array([f"f{i}" for i in range(N_FEAT)], dtype=object)
record("logreg_named", est, XT, note="feature_names_in_ set as a DataFrame fit would")
record("logreg_f32fit", LogisticRegression(max_iter=1000).fit(X3.astype(np.float32), y3), XT)
record("logreg_cv_binary", LogisticRegressionCV(Cs=3, cv=3, max_iter=1000).fit(X2, y2), XT)
record("logreg_cv_multi", LogisticRegressionCV(Cs=3, cv=3, max_iter=1000).fit(X3, y3), XT)

old_log = SK < (1, 3)  # 'log' was renamed 'log_loss' in 1.1 and removed in 1.3
log_loss = "log" if old_log else "log_loss"
record("sgd_log_binary", SGDClassifier(loss=log_loss, random_state=0).fit(X2, y2), XT)
record("sgd_log_multi", SGDClassifier(loss=log_loss, random_state=0).fit(X3, y3), XT)
record("sgd_mhuber_binary", SGDClassifier(loss="modified_huber", random_state=0).fit(X2, y2), XT)
record("sgd_mhuber_multi", SGDClassifier(loss="modified_huber", random_state=0).fit(X3, y3), XT)
record("sgd_hinge_multi", SGDClassifier(random_state=0).fit(X3, y3), XT)
record("perceptron_multi", Perceptron(random_state=0).fit(X3, y3), XT)
record("pa_classifier_binary", PassiveAggressiveClassifier(random_state=0).fit(X2, y2), XT)
record("ridge_classifier_binary", RidgeClassifier().fit(X2, y2), XT)
record("ridge_classifier_multi", RidgeClassifier().fit(X3, y3), XT)
record("ridge_classifier_cv_multi", RidgeClassifierCV(alphas=(0.1, 1.0, 10.0)).fit(X3, y3), XT)
record("linear_svc_multi", LinearSVC(random_state=0, max_iter=5000).fit(X3, y3), XT)

# ---------------------------------------------------------------------------
# linear regressors (the CV searches kept short: their paths are pickled too)

ALPHAS = np.array([1.0, 0.3, 0.1, 0.03])
record("linreg_1d", LinearRegression().fit(Xr, yr), XT, variants=("joblib", "pickle_p2"))
record("linreg_2d", LinearRegression().fit(Xr2, Yr2), XT)
record("ridge", Ridge(alpha=0.5).fit(Xr, yr), XT)
record("ridge_f32fit", Ridge(alpha=0.5).fit(Xr.astype(np.float32), yr.astype(np.float32)), XT)
record("ridge_cv", RidgeCV(alphas=(0.1, 1.0, 10.0)).fit(Xr, yr), XT)
record("lasso", Lasso(alpha=0.1).fit(Xr, yr), XT)
record("lasso_cv", LassoCV(alphas=ALPHAS, cv=3).fit(Xr, yr), XT)
record("elasticnet", ElasticNet(alpha=0.1, l1_ratio=0.3).fit(Xr, yr), XT)
record("elasticnet_cv", ElasticNetCV(alphas=ALPHAS, l1_ratio=[0.3, 0.7], cv=3).fit(Xr, yr), XT)
record("multitask_lasso", MultiTaskLasso(alpha=0.1).fit(Xr2, Yr2), XT)
record("multitask_lasso_cv", MultiTaskLassoCV(alphas=ALPHAS, cv=3).fit(Xr2, Yr2), XT)
record("multitask_elasticnet", MultiTaskElasticNet(alpha=0.1, l1_ratio=0.3).fit(Xr2, Yr2), XT)
record(
    "multitask_elasticnet_cv",
    MultiTaskElasticNetCV(alphas=ALPHAS, l1_ratio=[0.3, 0.7], cv=3).fit(Xr2, Yr2),
    XT,
)
# Lars and friends normalised X by default before 1.2 (coef_ and intercept_
# are then rescaled at fit; predict is the same product)
record("lars", Lars(n_nonzero_coefs=4).fit(Xr, yr), XT)
record("lars_cv", LarsCV(cv=3).fit(Xr, yr), XT)
record("lasso_lars", LassoLars(alpha=0.1).fit(Xr, yr), XT)
record("lasso_lars_cv", LassoLarsCV(cv=3).fit(Xr, yr), XT)
record("lasso_lars_ic", LassoLarsIC(criterion="bic").fit(Xr, yr), XT)
record("omp", OrthogonalMatchingPursuit(n_nonzero_coefs=3).fit(Xr, yr), XT)
record("omp_cv", OrthogonalMatchingPursuitCV(cv=3).fit(Xr, yr), XT)
record("bayesian_ridge", BayesianRidge().fit(Xr, yr), XT)
record("ard", ARDRegression().fit(Xr, yr), XT)
record("huber", HuberRegressor(max_iter=1000).fit(Xr, yr), XT)
try:  # new in 1.0; 'highs' needs scipy >= 1.6
    from sklearn.linear_model import QuantileRegressor
except ImportError as exc:
    skipped("quantile", exc)
else:
    record("quantile", QuantileRegressor(quantile=0.7, alpha=0.01, solver="highs").fit(Xr, yr), XT)
record("theil_sen", TheilSenRegressor(random_state=0, max_subpopulation=100).fit(Xr, yr), XT)
record("sgd_regressor", SGDRegressor(random_state=0).fit(Xr, yr), XT)
record("pa_regressor", PassiveAggressiveRegressor(random_state=0).fit(Xr, yr), XT)
record("linear_svr", LinearSVR(random_state=0, max_iter=10000).fit(Xr, yr), XT)

# ---------------------------------------------------------------------------
# preprocessing

from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

record("standard_scaler", StandardScaler().fit(XS), XST, variants=ALL_VARIANTS + OLD_PROTOCOLS)
record("standard_scaler_f32fit", StandardScaler().fit(XS.astype(np.float32)), XST)
record("standard_scaler_nomean", StandardScaler(with_mean=False).fit(XS), XST)
record("minmax_scaler", MinMaxScaler().fit(XS), XST)
if "clip" in MinMaxScaler().get_params():
    record("minmax_scaler_clip", MinMaxScaler(feature_range=(-1, 2), clip=True).fit(XS), XSTW)
else:
    skipped("minmax_scaler_clip", "MinMaxScaler has no clip (new in 0.24)")
record("maxabs_scaler", MaxAbsScaler().fit(XS), XST)
record("robust_scaler", RobustScaler().fit(XS), XST)

XN = XS.copy()
mask = _rng(7).uniform(size=XN.shape) < 0.15
XN[mask] = np.nan
XN[:, 2] = np.nan  # a column all-NaN at fit
XNT = XST.copy()
XNT[_rng(8).uniform(size=XNT.shape) < 0.3] = np.nan
XNT[3, 2] = 1.5
XNT = test_input("XNT", XNT)
record(
    "imputer_mean_indicator",
    SimpleImputer(strategy="mean", add_indicator=True).fit(XN),
    XNT,
    variants=("joblib", "pickle_p2"),
)
record("imputer_constant", SimpleImputer(strategy="constant", fill_value=-1.0).fit(XN), XNT)
# 1.8+ rounds the statistics to the fit dtype (_fill_dtype) before filling
record("imputer_f32fit", SimpleImputer(strategy="mean").fit(XN.astype(np.float32)), XNT)
if "keep_empty_features" in SimpleImputer().get_params():
    record(
        "imputer_keep_empty", SimpleImputer(strategy="mean", keep_empty_features=True).fit(XN), XNT
    )
else:
    skipped("imputer_keep_empty", "SimpleImputer has no keep_empty_features")

record(
    "pipeline_scaler_logreg",
    Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]).fit(
        XS, y3
    ),
    XST,
    variants=ALL_VARIANTS + ("joblib_ext",),
)

# ---------------------------------------------------------------------------
# composition and fitted searches (columns by index: no pandas in old stacks)

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.pipeline import FeatureUnion  # noqa: E402

record(
    "column_transformer",
    Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("scale", StandardScaler(), [0, 1, 2]), ("minmax", MinMaxScaler(), [3, 4])],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(XS, y3),
    XST,
    note="column 5 passes through",
)
record(
    "feature_union",
    FeatureUnion([("std", StandardScaler()), ("maxabs", MaxAbsScaler())]).fit(XS),
    XST,
)


def _untimed(search):
    """A fitted search with its wall-clock timings (cv_results_'s *_time
    arrays, refit_time_) set to 0, so that its file is the same byte for
    byte at every run; nothing reads them to predict."""
    for key in list(search.cv_results_):
        if key.endswith("_time"):
            search.cv_results_[key] = np.zeros_like(search.cv_results_[key])
    if hasattr(search, "refit_time_"):
        search.refit_time_ = 0.0
    return search


UNTIMED = "timings zeroed for a reproducible file"
record(
    "grid_search",
    _untimed(GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3).fit(X3, y3)),
    XT,
    variants=Z3,
    note=UNTIMED,
)
record(
    "random_search",
    _untimed(
        RandomizedSearchCV(
            Ridge(), {"alpha": [0.1, 1.0, 10.0]}, n_iter=2, cv=3, random_state=0
        ).fit(Xr, yr)
    ),
    XT,
    variants=Z3,
    note=UNTIMED,
)
if SK >= (0, 24):
    from sklearn.experimental import enable_halving_search_cv  # noqa: E402,F401
    from sklearn.model_selection import (  # noqa: E402
        HalvingGridSearchCV,
        HalvingRandomSearchCV,
    )
    from sklearn.tree import DecisionTreeClassifier  # noqa: E402

    record(
        "halving_grid_search",
        _untimed(
            HalvingGridSearchCV(
                DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, cv=3, random_state=0
            ).fit(X3, y3)
        ),
        XT,
        variants=Z3,
        note=UNTIMED,
    )
    record(
        "halving_random_search",
        _untimed(
            HalvingRandomSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3, random_state=0).fit(
                Xr, yr
            )
        ),
        XT,
        variants=Z3,
        note=UNTIMED,
    )
else:
    skipped("halving_*_search", "the successive-halving searches are new in 0.24")

# ---------------------------------------------------------------------------
# trees, forests, boosting, IsolationForest.  Few and shallow trees keep the
# files small (every tree of an ensemble is an estimator with its parameters):
# what a fixture proves is the meaning of each stored attribute, which two or
# three trees show as well as a hundred.

from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (  # noqa: E402
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

record(
    "dtc",
    DecisionTreeClassifier(max_depth=4, random_state=0).fit(X3, y3),
    XT,
    variants=("joblib", "pickle_p2"),
)
record("dtr", DecisionTreeRegressor(max_depth=4, random_state=0).fit(Xr, yr), XT)
record("dtr_2d", DecisionTreeRegressor(max_depth=3, random_state=0).fit(Xr2, Yr2), XT)
record("etc", ExtraTreeClassifier(max_depth=4, random_state=0).fit(X3, y3), XT)
record("etr", ExtraTreeRegressor(max_depth=4, random_state=0).fit(Xr, yr), XT)
# NaN in column 0, the one the trees split on most: the routing of NaN
# (missing_go_to_left) is then used at predict
XM = X2.copy()
XM[_rng(9).uniform(size=len(XM)) < 0.2, 0] = np.nan
XMT = XT.copy()
XMT[::3, 0] = np.nan
XMT = test_input("XMT", XMT)
if SK >= (1, 3):
    record(
        "dtc_nan",
        DecisionTreeClassifier(max_depth=4, random_state=0).fit(XM, y2),
        XMT,
        note="NaN in column 0 at fit and at predict (missing_go_to_left)",
    )
else:
    skipped("dtc_nan", "trees learn missing values from 1.3")
FOREST = {"max_depth": 3, "min_samples_leaf": 8, "random_state": 0}
record("rfc", RandomForestClassifier(n_estimators=3, **FOREST).fit(X3, y3), XT, variants=Z3)
record("rfr", RandomForestRegressor(n_estimators=3, **FOREST).fit(Xr, yr), XT, variants=Z3)
record("etsc", ExtraTreesClassifier(n_estimators=2, **FOREST).fit(X3, y3), XT, variants=Z3)
record("etsr", ExtraTreesRegressor(n_estimators=2, **FOREST).fit(Xr, yr), XT, variants=Z3)
record(
    "rfc_multiout",
    RandomForestClassifier(n_estimators=2, **FOREST).fit(X3, np.column_stack([y3, y3 % 2])),
    XT,
    variants=Z3,
    note="two outputs: 3 and 2 classes",
)

if SK >= (1, 3):
    # Whether a tree accepts NaN at predict depends on its splitter,
    # criterion and monotonic constraints, by rules that changed in 1.4,
    # 1.6, 1.7 and 1.9: each of these is trained without NaN and asked with
    # NaN (sklearn's answer or its ValueError is what is recorded)
    NAN_TREES = [
        (
            "dtc_random_nan",
            DecisionTreeClassifier(splitter="random", max_depth=3, random_state=0),
            X2,
            y2,
        ),
        (
            "dtr_mae_nan",
            DecisionTreeRegressor(criterion="absolute_error", max_depth=3, random_state=0),
            Xr,
            yr,
        ),
        ("etc_nan", ExtraTreeClassifier(max_depth=3, random_state=0), X2, y2),
        ("etc_best_nan", ExtraTreeClassifier(splitter="best", max_depth=3, random_state=0), X2, y2),
        ("etr_best_nan", ExtraTreeRegressor(splitter="best", max_depth=3, random_state=0), Xr, yr),
        (
            "rfr_mae_nan",
            RandomForestRegressor(criterion="absolute_error", n_estimators=2, **FOREST),
            Xr,
            yr,
        ),
        ("etsc_nan", ExtraTreesClassifier(n_estimators=2, **FOREST), X2, y2),
    ]
    if "monotonic_cst" in DecisionTreeClassifier().get_params():
        NAN_TREES.append(
            (
                "dtc_monotonic_nan",
                DecisionTreeClassifier(
                    monotonic_cst=[1, 0, 0, 0, 0, 0], max_depth=3, random_state=0
                ),
                X2,
                y2,
            )
        )
    for name, est, X, y in NAN_TREES:
        record(
            name,
            est.fit(X, y),
            XMT,
            variants=Z3 if hasattr(est, "estimators_") else ("joblib",),
            note="trained without NaN, asked with NaN in column 0",
        )
else:
    skipped("*_nan trees", "trees learn missing values from 1.3")

# GradientBoosting: the init estimator's raw prediction changed meaning with
# the losses of 1.4 (log(p) vs the symmetric multinomial logit) and its
# clipping with 1.8 (float32's eps vs float64's); classes of tiny weight
# show the clipping
record(
    "gbc",
    GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X2, y2),
    XT,
    variants=Z3,
    note="estimators_ is an object array (nested pickle in joblib files)",
)
record(
    "gbc_multi",
    GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X3, y3),
    XT,
    variants=Z3,
    note="3 classes: the init raw prediction log(p), or log(p) - mean(log(p)) from 1.4",
)
record(
    "gbc_exp",
    GradientBoostingClassifier(loss="exponential", n_estimators=3, max_depth=1, random_state=0).fit(
        X2, y2
    ),
    XT,
    variants=Z3,
)
record(
    "gbc_zero",
    GradientBoostingClassifier(init="zero", n_estimators=2, max_depth=1, random_state=0).fit(
        X2, y2
    ),
    XT,
    variants=Z3,
)
tiny = np.where(y2 == 1, 1e-9, 1.0)
record(
    "gbc_tiny_prior",
    GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(
        X2, y2, sample_weight=tiny
    ),
    XT,
    variants=Z3,
    note="class 1 weighs 1e-9: its prior is clipped by eps",
)
tiny = np.where(y3 == 2, 1e-9, 1.0)
record(
    "gbc_multi_tiny_prior",
    GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(
        X3, y3, sample_weight=tiny
    ),
    XT,
    variants=Z3,
    note="class 2 weighs 1e-9: its prior is clipped by eps",
)
record(
    "gbr",
    GradientBoostingRegressor(n_estimators=5, max_depth=1, random_state=0).fit(Xr, yr),
    XT,
    variants=Z3,
)
# the regression losses' init is the Dummy estimator's constant in every
# version (mean, median, quantile): one other than the mean stands for them
record(
    "gbr_quantile",
    GradientBoostingRegressor(
        loss="quantile", alpha=0.8, n_estimators=3, max_depth=1, random_state=0
    ).fit(Xr, yr),
    XT,
    variants=Z3,
)

# HistGradientBoosting: experimental before 1.0, missing values from 0.22,
# categorical features from 0.24
if SK < (1, 0):
    from sklearn.experimental import enable_hist_gradient_boosting  # noqa: E402,F401
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

HGB = {"max_iter": 5, "max_leaf_nodes": 4, "max_bins": 32, "random_state": 0}
if SK >= (0, 22):
    record(
        "hgbc_nan",
        HistGradientBoostingClassifier(**HGB).fit(XM, y2),
        XMT,
        variants=Z3,
        note="NaN in column 0 at fit and at predict",
    )
    record("hgbc_multi", HistGradientBoostingClassifier(**HGB).fit(X3, y3), XT, variants=Z3)
    record(
        "hgbr_lad",
        HistGradientBoostingRegressor(
            loss="least_absolute_deviation" if SK < (1, 0) else "absolute_error", **HGB
        ).fit(Xr, yr),
        XT,
        variants=Z3,
    )
else:
    # experimental, without missing values and with other node fields
    record(
        "hgbc_multi",
        HistGradientBoostingClassifier(**HGB).fit(X3, y3),
        XT,
        variants=Z3,
        refused=["UnsupportedModelError", "scikit-learn < 0.22"],
    )
if SK >= (0, 23):
    record(
        "hgbr_poisson",
        HistGradientBoostingRegressor(loss="poisson", **HGB).fit(Xr, np.exp(yr / 100.0)),
        XT,
        variants=Z3,
    )
else:
    skipped("hgbr_poisson", "HistGradientBoosting has no poisson loss before 0.23")
XC = Xr.copy()
XC[:, 5] = _rng(10).randint(0, 4, size=len(XC))
# strong enough that each of the few trees splits on the category too
yc = yr + 160.0 * (XC[:, 5] == 2) - 100.0 * (XC[:, 5] == 0)
XCT = XT.copy()
XCT[:, 5] = np.arange(len(XCT)) % 5  # 4 is a category unseen at fit
XCT[7, 5] = np.nan
XCT = test_input("XCT", XCT)
if SK >= (0, 24):
    record(
        "hgbr_cat",
        HistGradientBoostingRegressor(categorical_features=[5], **HGB).fit(XC, yc),
        XCT,
        variants=Z3,
        note="column 5 categorical (0..3 at fit; 4 unseen and NaN at predict)",
    )
else:
    skipped("hgbr_cat", "HistGradientBoosting learns categorical features from 0.24")

IFOREST = {"n_estimators": 3, "max_samples": 8, "random_state": 0}
if SK < (0, 22):
    # 'behaviour' chose between the old and the new meaning of offset_ and
    # predict until 0.22 made the new one the only one
    record(
        "iforest",
        IsolationForest(behaviour="new", contamination="auto", **IFOREST).fit(X2),
        XT,
        variants=Z3,
    )
    record(
        "iforest_old",
        IsolationForest(behaviour="old", contamination=0.1, **IFOREST).fit(X2),
        XT,
        variants=Z3,
        refused=["UnsupportedModelError", "behaviour='old'"],
        note="predict compares with threshold_, not 0",
    )
else:
    record("iforest", IsolationForest(**IFOREST).fit(X2), XT, variants=Z3)

# ---------------------------------------------------------------------------
# ensembles and baselines: few, shallow members and compressed files keep
# them small

from sklearn.dummy import DummyClassifier, DummyRegressor  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    RandomTreesEmbedding,
    VotingClassifier,
    VotingRegressor,
)


def _shallow(cls, n, depth=2):
    return [("t%d" % i, cls(max_depth=depth, random_state=i)) for i in range(n)]


record(
    "voting_hard",
    VotingClassifier(
        [("lr", LogisticRegression(max_iter=1000))] + _shallow(DecisionTreeClassifier, 2),
        weights=[2, 1, 1.5],
    ).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "voting_soft",
    VotingClassifier(
        [("lr", LogisticRegression(max_iter=1000))] + _shallow(DecisionTreeClassifier, 2),
        voting="soft",
        flatten_transform=False,
    ).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "voting_regressor",
    VotingRegressor(
        [("lin", LinearRegression())] + _shallow(DecisionTreeRegressor, 2), weights=[1, 3, 2]
    ).fit(Xr, yr),
    XT,
    variants=Z3,
)
if SK >= (0, 22):
    from sklearn.ensemble import StackingClassifier, StackingRegressor  # noqa: E402

    record(
        "stacking_classifier",
        StackingClassifier(
            _shallow(DecisionTreeClassifier, 2) + [("lr", LogisticRegression(max_iter=1000))],
            passthrough=True,
        ).fit(X2, y2),
        XT,
        variants=Z3,
        note="binary: the first probability column dropped",
    )
    record(
        "stacking_regressor",
        StackingRegressor(_shallow(DecisionTreeRegressor, 2) + [("ridge", Ridge())]).fit(Xr, yr),
        XT,
        variants=Z3,
    )
else:
    skipped("stacking_*", "Stacking is new in 0.22")
record(
    "bagging_classifier",
    BaggingClassifier(
        DecisionTreeClassifier(max_depth=3),
        n_estimators=4,
        max_features=0.7,
        max_samples=20,
        random_state=0,
    ).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "bagging_regressor",
    BaggingRegressor(
        DecisionTreeRegressor(max_depth=3), n_estimators=4, bootstrap_features=True, random_state=0
    ).fit(Xr, yr),
    XT,
    variants=Z3,
)
HAS_ALGORITHM = "algorithm" in AdaBoostClassifier().get_params()
samme = {"algorithm": "SAMME"} if HAS_ALGORITHM else {}
record(
    "adaboost_classifier",
    AdaBoostClassifier(n_estimators=8, random_state=0, **samme).fit(X3, y3),
    XT,
    variants=Z3,
)
if HAS_ALGORITHM and SK < (1, 6):
    record(
        "adaboost_samme_r",
        AdaBoostClassifier(n_estimators=8, algorithm="SAMME.R", random_state=0).fit(X3, y3),
        XT,
        variants=Z3,
    )
else:
    skipped("adaboost_samme_r", "SAMME.R was removed in 1.6")
record(
    "adaboost_regressor",
    AdaBoostRegressor(DecisionTreeRegressor(max_depth=2), n_estimators=8, random_state=0).fit(
        Xr, yr
    ),
    XT,
    variants=Z3,
)
est = DummyClassifier(strategy="prior").fit(X3, y3)
if est.__dict__.get("n_features_in_") is not None:
    record("dummy_classifier", est, XT, variants=Z3)
    record(
        "dummy_regressor",
        DummyRegressor(strategy="quantile", quantile=0.3).fit(Xr, yr),
        XT,
        variants=Z3,
    )
else:
    # no n_features_in_ (before 1.5, but None in 0.23 and 0.24): no width to
    # check X against, and mlfast says so
    refused = ["UnsupportedModelError", "no n_features_in_"]
    record("dummy_classifier", est, XT, variants=Z3, refused=refused)
    record(
        "dummy_regressor",
        DummyRegressor(strategy="quantile", quantile=0.3).fit(Xr, yr),
        XT,
        variants=Z3,
        refused=refused,
    )
record(
    "random_trees_embedding",
    RandomTreesEmbedding(n_estimators=3, max_depth=2, sparse_output=False, random_state=0).fit(X3),
    XT,
    variants=Z3,
    note="sparse_output=False: a sparse transform has no .npz form here",
)

# ---------------------------------------------------------------------------
# meta-estimators: what changed across versions (calibration's attributes
# and prefit/FrozenEstimator, one-vs-rest's tie rule and zero rows, output
# codes' distances, chains' responses, numpy's names of its functions);
# compressed files, as the ensembles'

from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.multiclass import OneVsRestClassifier, OutputCodeClassifier  # noqa: E402
from sklearn.multioutput import ClassifierChain  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

lr = LogisticRegression(max_iter=1000)
record("calibrated_sigmoid", CalibratedClassifierCV(lr, cv=2).fit(X3, y3), XT, variants=Z3)
tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X2[:60], y2[:60])
if SK < (1, 6):
    est = CalibratedClassifierCV(tree, method="isotonic", cv="prefit")
else:
    from sklearn.frozen import FrozenEstimator

    est = CalibratedClassifierCV(FrozenEstimator(tree), method="isotonic")
record(
    "calibrated_isotonic_prefit",
    est.fit(X2[60:], y2[60:]),
    XT,
    variants=Z3,
    note="cv='prefit' before 1.6, FrozenEstimator since",
)
if SK >= (1, 8):
    record(
        "calibrated_temperature",
        CalibratedClassifierCV(lr, method="temperature", cv=2).fit(X3, y3),
        XT,
        variants=Z3,
    )
else:
    skipped("calibrated_temperature", "temperature scaling is new in 1.8")
record(
    "one_vs_rest_trees",
    OneVsRestClassifier(DecisionTreeClassifier(max_depth=4, random_state=0)).fit(X3, y3),
    XT,
    variants=Z3,
    note="ties (the last maximum before 1.8) and rows of zeros (NaN before 1.7)",
)
record(
    "output_code",
    OutputCodeClassifier(lr, code_size=2, random_state=0).fit(X3, y3),
    XT,
    variants=Z3,
    note="distances by euclidean_distances before 1.3, ArgKmin since",
)
Y3 = np.column_stack([y3 == 0, y3 == 1, X3[:, 0] > 0]).astype(int)
record("classifier_chain", ClassifierChain(lr, order=[2, 0, 1]).fit(X3, Y3), XT, variants=Z3)
record(
    "transformed_target_log1p",
    TransformedTargetRegressor(LinearRegression(), func=np.log1p, inverse_func=np.expm1).fit(
        Xr, np.abs(yr)
    ),
    XT,
    variants=Z3,
    note="numpy's functions under the name each numpy pickles them by",
)
# (np.square: IEEE-exact in every numpy; a float32 transcendental function
# follows each numpy's own SIMD code, which changed over the years)
record(
    "function_transformer_pipeline",
    Pipeline(
        [
            ("square", FunctionTransformer(np.square, validate=True)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(X3, y3),
    XT,
    variants=Z3,
    note="numpy < 1.20 pickles its function as _ufunc_reconstruct(module, name)",
)

# the other meta-estimators, whose prediction did not change: the newest stacks
if SK >= (1, 5):
    from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
    from sklearn.multiclass import OneVsOneClassifier
    from sklearn.multioutput import (
        MultiOutputClassifier,
        MultiOutputRegressor,
        RegressorChain,
    )
    from sklearn.semi_supervised import SelfTrainingClassifier

    record("one_vs_one", OneVsOneClassifier(lr).fit(X3, y3), XT, variants=Z3)
    record("multi_output_classifier", MultiOutputClassifier(lr).fit(X3, Y3), XT, variants=Z3)
    record("multi_output_regressor", MultiOutputRegressor(Ridge()).fit(Xr2, Yr2), XT, variants=Z3)
    record("regressor_chain", RegressorChain(Ridge(), order=[1, 0]).fit(Xr2, Yr2), XT, variants=Z3)
    y3u = y3.copy()
    y3u[::3] = -1
    record("self_training", SelfTrainingClassifier(lr).fit(X3, y3u), XT, variants=Z3)
    record(
        "fixed_threshold",
        FixedThresholdClassifier(lr, threshold=0.3, pos_label=0).fit(X2, y2),
        XT,
        variants=Z3,
    )
    record(
        "tuned_threshold",
        TunedThresholdClassifierCV(lr, scoring="f1", cv=2).fit(X2, y2),
        XT,
        variants=Z3,
    )
else:
    skipped("one_vs_one, multi-output, chains, thresholds", "kept to the newest stacks")
if SK >= (1, 6):
    from sklearn.frozen import FrozenEstimator

    record(
        "frozen_estimator",
        FrozenEstimator(LogisticRegression(max_iter=1000).fit(X3, y3)),
        XT,
        variants=Z3,
    )
else:
    skipped("frozen_estimator", "FrozenEstimator is new in 1.6")

# ---------------------------------------------------------------------------
# categorical encoders on object columns (str, None, NaN) and on numbers:
# before 0.24 check_array refused NaN in the columns of either encoder
# ("Input contains NaN"), OrdinalEncoder's until 1.0; missing values are
# categories from then on.  Each test input has at most one unknown value
# in a column, so that scikit-learn's message (which lists a set) is the
# same at every run.

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder  # noqa: E402

DENSE = (
    {"sparse_output": False}
    if "sparse_output" in OneHotEncoder().get_params()
    else {"sparse": False}
)
rng = _rng(20)
XO = np.empty((60, 3), dtype=object)
XO[:, 0] = rng.choice(["S", "C", "Q"], 60)
XO[:, 1] = rng.choice(["a", "b", "c", "d"], 60)
XO[:, 2] = rng.choice(["x", "y"], 60)
XO = XO.astype(object)
for j in range(3):  # Python str, as a DataFrame's object column holds
    XO[:, j] = [str(v) for v in XO[:, j]]
XOC = object_input(
    "XOC",
    [
        ["S", "a", "x"],
        ["C", "b", "y"],
        ["Q", "d", "x"],
        ["S", "c", "y"],
        ["C", "a", "x"],
        ["Q", "b", "y"],
    ],
)
XOT = object_input(
    "XOT",
    [
        ["S", "a", "x"],
        ["C", float("nan"), "y"],
        ["X", "d", "x"],
        ["S", "c", "y"],
        ["C", None, "x"],
        ["Q", "b", "Z"],
    ],
)
XOK = object_input(
    "XOK",
    [
        ["S", "a", "x"],
        ["C", float("nan"), "y"],
        ["Q", "d", "x"],
        ["S", "c", "y"],
        ["C", "a", "x"],
        ["Q", "b", "y"],
    ],
)
XOM = XO.copy()
XOM[::7, 1] = np.nan
XOM[::9, 2] = None

# (compressed, and a fixture asked with a second input reads the first's
# file: the fixtures stay small)
# None, NaN and categories unseen at fit: NaN refused by check_array before
# 0.24, an unknown category since
record("onehot_str", OneHotEncoder(handle_unknown="ignore", **DENSE).fit(XO), XOT, variants=Z3)
# OrdinalEncoder and a one-hot encoding that drops each first category,
# side by side (one file)
ordinal_drop = ColumnTransformer(
    [
        ("ordinal", OrdinalEncoder(), [0, 1, 2]),
        ("onehot", OneHotEncoder(drop="first", **DENSE), [0, 1, 2]),
    ]
)
record("ordinal_drop_first", ordinal_drop.fit(XO), XOC, variants=Z3)
# NaN at transform: refused by check_array before 1.0, an unknown category
# since (and OrdinalEncoder's handle_unknown='error' then names it)
record("ordinal_drop_first_nan", ordinal_drop, XOK, file_of="ordinal_drop_first")
# NaN and None categories seen at fit (one-hot from 0.24, ordinal from 1.0),
# unknown_value (0.24 on) and TargetEncoder (binary 1.3, several classes
# 1.4 on): one ColumnTransformer, one file
ENCODED = {"handle_unknown": "use_encoded_value", "unknown_value": -1}
yo = _rng(24).randint(0, 3 if SK >= (1, 4) else 2, len(XOM))
if SK >= (1, 0):
    parts = [
        ("onehot", OneHotEncoder(handle_unknown="ignore", **DENSE), [0, 1, 2]),
        ("ordinal", OrdinalEncoder(**ENCODED), [0, 1, 2]),
    ]
    if SK >= (1, 3):
        from sklearn.preprocessing import TargetEncoder

        parts.append(("target", TargetEncoder(random_state=0), [0, 1, 2]))
    record("encoders_fit_missing", ColumnTransformer(parts).fit(XOM, yo), XOT, variants=Z3)
elif SK >= (0, 24):
    record(
        "encoders_fit_missing",
        ColumnTransformer(
            [
                ("onehot", OneHotEncoder(handle_unknown="ignore", **DENSE), [0, 1, 2]),
                ("ordinal", OrdinalEncoder(**ENCODED), [0]),
            ]
        ).fit(XOM),
        XOT,
        variants=Z3,
    )
else:
    skipped("encoders_fit_missing", "missing values are categories from 0.24")

XK = np.column_stack([_rng(21).randint(0, 4, 60), _rng(22).randint(0, 3, 60) + 0.5])
XKT = np.array(
    [
        [0, 0.5],
        [1, 1.5],
        [2, 2.5],
        [3, 0.5],
        [4, 1.5],
        [1, 7.5],
        [2, 0.5],
        [3, 2.5],
        [0, 1.5],
        [1, 0.5],
    ],
    dtype=np.float64,
)
XKT[6, 0] = np.nan
XKT = test_input("XKT", XKT)
# float categories; NaN in row 6: refused before 0.24 (naming the input's
# dtype), an unknown category since
record("onehot_num", OneHotEncoder(handle_unknown="ignore", **DENSE).fit(XK), XKT, variants=Z3)

# SimpleImputer on object data, alone and in a titanic-style pipeline
# (alone, its answer is an object array, which mlfast does not return: the
# pipeline's next step encodes it).  Before 0.24 a list of str rows was a
# '<U1' array, which SimpleImputer refused
XOQ = XO.copy()
XOQ[::5, 0] = "?"
XOQ[::6, 1] = "?"
record(
    "imputer_obj_ordinal",
    Pipeline(
        [
            ("impute", SimpleImputer(missing_values="?", strategy="most_frequent")),
            ("encode", OrdinalEncoder()),
        ]
    ).fit(XOQ),
    object_input("XOQ", [["S", "a", "x"], ["?", "b", "y"], ["Q", "?", "x"], ["C", "c", "y"]]),
    variants=Z3,
)

rng = _rng(23)
n = 120
XTI = np.empty((n, 5), dtype=object)
age = np.round(rng.uniform(1, 80, n), 1)
age[rng.uniform(size=n) < 0.2] = np.nan
XTI[:, 0] = age.tolist()
XTI[:, 1] = np.round(rng.exponential(30, n), 2).tolist()
XTI[:, 2] = [str(v) for v in rng.choice(["male", "female"], n)]
embarked = [str(v) for v in rng.choice(["S", "C", "Q"], n)]
XTI[:, 3] = [float("nan") if i % 11 == 0 else v for i, v in enumerate(embarked)]
XTI[:, 4] = [str(v) for v in rng.choice(list("ABCDEFG"), n)]
yti = ((XTI[:, 2] == "female") ^ (rng.uniform(size=n) < 0.2)).astype(int)
# numbers with NaN, strings with NaN and unseen values
XTIT = object_input(
    "XTIT",
    [
        [22.0, 7.25, "male", "S", "C"],
        [38.0, 71.28, "female", "C", "B"],
        [float("nan"), 8.05, "female", "Q", "E"],
        [35.0, 53.1, "male", float("nan"), "A"],
        [2.0, 21.07, "female", "X", "G"],
        [54.0, 51.86, "male", "S", "T"],
    ],
)
from sklearn.impute import MissingIndicator  # noqa: E402

num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
cat = Pipeline(
    [
        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", **DENSE)),
    ]
)
record(
    "titanic_pipeline",
    Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", num, [0, 1]),
                        ("cat", cat, [2, 3, 4]),
                        ("missing", MissingIndicator(), [0, 1]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(XTI, yti),
    XTIT,
    variants=Z3,
    methods=("predict", "predict_proba"),
)

# DictVectorizer and FeatureHasher (nothing of them changed meaning but
# DictVectorizer's list values: the oldest stack and the newest)
if SK < (0, 22) or SK >= (1, 9):
    from sklearn.feature_extraction import DictVectorizer

    # (a list of str values is one feature a value from 0.24; before, the
    # list itself was the value of the feature named by its key)
    XD = [
        {"city": str(c), "t": float(t), "tags": ["a", "b"][: int(k)]}
        for c, t, k in zip(
            _rng(25).choice(["Oslo", "Lima", "Pune"], 40),
            _rng(26).normal(size=40),
            _rng(27).randint(0, 3, 40),
        )
    ]
    if SK < (0, 24):
        for row in XD:
            del row["tags"]
    OBJ_INPUTS["XDT"] = [
        {"city": "Rome", "t": 0.5, "tags": ["a", "z", "a"]},
        {"city": "Oslo", "t": -1.25, "extra": 2.0},
        {"t": 3.0},
    ]
    record(
        "dict_vectorizer",
        Pipeline([("vec", DictVectorizer()), ("clf", LogisticRegression(max_iter=1000))]).fit(
            XD, (_rng(28).uniform(size=40) < 0.5).astype(int)
        ),
        OBJ_INPUTS["XDT"],
        variants=Z3,
        methods=("predict_proba",),
    )
else:
    skipped("dict_vectorizer", "kept to the oldest and the newest stack")
if SK >= (1, 9):
    from sklearn.feature_extraction import FeatureHasher

    # (values are numbers or str only; the newest stack: the corpus's size)
    OBJ_INPUTS["XHT"] = [{k: v for k, v in row.items() if k != "tags"} for row in OBJ_INPUTS["XDT"]]
    record(
        "feature_hasher",
        Pipeline(
            [("hash", FeatureHasher(n_features=8)), ("clf", LogisticRegression(max_iter=1000))]
        ).fit(
            [{k: v for k, v in row.items() if k != "tags"} for row in XD],
            (_rng(28).uniform(size=40) < 0.5).astype(int),
        ),
        OBJ_INPUTS["XHT"],
        variants=Z3,
        methods=("predict_proba",),
    )
else:
    skipped("feature_hasher", "kept to the newest stack")
# decompositions, GLMs, preprocessing, selection, clustering, mixtures (1.1 on)

if SK >= (1, 1):
    from sklearn.cluster import MeanShift  # noqa: E402
    from sklearn.covariance import EllipticEnvelope  # noqa: E402
    from sklearn.cross_decomposition import PLSRegression  # noqa: E402
    from sklearn.decomposition import PCA, FactorAnalysis  # noqa: E402
    from sklearn.feature_selection import SelectKBest  # noqa: E402
    from sklearn.isotonic import IsotonicRegression  # noqa: E402
    from sklearn.kernel_ridge import KernelRidge  # noqa: E402
    from sklearn.linear_model import PoissonRegressor  # noqa: E402
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture  # noqa: E402
    from sklearn.preprocessing import KBinsDiscretizer, QuantileTransformer  # noqa: E402
    from sklearn.random_projection import SparseRandomProjection  # noqa: E402

    XT1 = test_input("XT1", XT[:, :1])
    ypos = np.exp(0.3 * Xr[:, 0]) + 0.1
    # every stack: the estimators whose state or float32 rules changed
    # across versions; the others on the oldest and newest stack only, to
    # keep the corpus small
    record(
        "pls_regression",
        PLSRegression(2).fit(Xr2[:40], Yr2[:40]),
        XT,
        variants=Z3,
        note="_coef_ (1.1-1.2), coef_ (n_targets, n_features) from 1.3, scaled by _x_std from 1.5",
    )
    for cov in ("full", "tied"):
        record(
            "gaussian_mixture_" + cov,
            GaussianMixture(3, covariance_type=cov, random_state=0).fit(X3),
            XT,
            variants=Z3,
            note="float32 rows: log_prob in X's dtype from 1.7",
        )
    if STACK in ("sk1.1.3", "sk1.9.1"):
        X40, y40 = X3[:40], y3[:40]
        record("pca_whiten", PCA(3, whiten=True).fit(XS), XST, variants=Z3)
        record(
            "sparse_random_projection",
            SparseRandomProjection(4, density=0.5, random_state=0).fit(X3),
            XT,
            variants=Z3,
            note="components_ is a scipy.sparse matrix",
        )
        record("factor_analysis", FactorAnalysis(2, random_state=0).fit(X3), XT, variants=Z3)
        record("poisson", PoissonRegressor().fit(Xr, ypos), XT, variants=Z3)
        record(
            "kernel_ridge_rbf",
            KernelRidge(kernel="rbf", gamma=0.1).fit(Xr[:30], yr[:30]),
            XT,
            variants=Z3,
        )
        record("elliptic_envelope", EllipticEnvelope(random_state=0).fit(X40), XT, variants=Z3)
        record(
            "bayesian_gaussian_mixture",
            BayesianGaussianMixture(n_components=3, random_state=0).fit(X3),
            XT,
            variants=Z3,
        )
        record(
            "isotonic",
            IsotonicRegression(out_of_bounds="clip").fit(Xr[:40, 0], yr[:40]),
            XT1,
            variants=Z3,
        )
        record(
            "quantile_normal",
            QuantileTransformer(n_quantiles=20, output_distribution="normal").fit(X3),
            XT,
            variants=Z3,
        )
        record(
            "kbins_onehot",
            KBinsDiscretizer(3, encode="onehot-dense", strategy="uniform").fit(X3),
            XT,
            variants=Z3,
        )
        record("select_kbest", SelectKBest(k=3).fit(X3, y3), XT, variants=Z3)
        record("mean_shift", MeanShift(bandwidth=2.0).fit(X40), XT, variants=Z3)
    else:
        skipped("the other new families", "kept to the oldest and newest stacks")
else:
    skipped("decompositions, GLMs, preprocessing, clustering, mixtures", "kept to 1.1 on")

# LabelEncoder and MultiLabelBinarizer saved alone (they read y; nothing
# of them changed meaning: the newest stack)
if SK >= (1, 9):
    from sklearn.preprocessing import LabelEncoder, MultiLabelBinarizer

    OBJ_INPUTS["YL"] = ["dog", "cat", "emu", "cat"]
    record(
        "label_encoder",
        LabelEncoder().fit(["emu", "cat", "dog", "cat"]),
        OBJ_INPUTS["YL"],
        variants=Z3,
    )
    OBJ_INPUTS["YLS"] = [["dog", "cat"], [], ["emu"]]
    record(
        "multilabel_binarizer",
        MultiLabelBinarizer().fit([["emu", "cat"], ["dog"]]),
        OBJ_INPUTS["YLS"],
        variants=Z3,
    )
else:
    skipped("label_encoder, multilabel_binarizer", "kept to the newest stack")
# naive Bayes, kernel SVMs, discriminant analysis, neural networks, neighbours
from sklearn import naive_bayes  # noqa: E402
from sklearn.discriminant_analysis import (  # noqa: E402
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402
from sklearn.neural_network import BernoulliRBM, MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM  # noqa: E402

XNB = np.abs(np.round(X3 * 2))  # counts
XNBT = test_input("XNBT", np.abs(np.round(test_matrix(102) * 2)))
XCAT = np.clip(np.abs(np.round(X3)), 0, 2)  # categories 0..2
XCATT = test_input("XCATT", np.clip(np.abs(np.round(test_matrix(103))), 0, 2))
record(
    "gaussian_nb",
    naive_bayes.GaussianNB().fit(X3, y3),
    XT,
    variants=Z3,
    note="sigma_ before 1.0, var_ since",
)
record("multinomial_nb", naive_bayes.MultinomialNB().fit(XNB, y3), XNBT, variants=Z3)
record("complement_nb", naive_bayes.ComplementNB().fit(XNB, y3), XNBT, variants=Z3)
record("bernoulli_nb", naive_bayes.BernoulliNB(binarize=0.2).fit(X3, y3), XT, variants=Z3)
if SK >= (0, 22):
    record("categorical_nb", naive_bayes.CategoricalNB().fit(XCAT, y3), XCATT, variants=Z3)
else:
    skipped("categorical_nb", "CategoricalNB is new in 0.22")
record(
    "svc_rbf_proba",
    SVC(probability=True, random_state=0).fit(X3, y3),
    XT,
    variants=Z3,
    note="_probA/_n_support since 0.23, probA_/n_support_ before",
)
record(
    "svc_linear_ovo",
    SVC(kernel="linear", decision_function_shape="ovo").fit(X3, y3),
    XT,
    variants=Z3,
)
record("nusvc_poly", NuSVC(kernel="poly", degree=2, nu=0.4).fit(X2, y2), XT, variants=Z3)
record("svr_rbf", SVR(C=10.0).fit(Xr, yr / 50), XT, variants=Z3)
record(
    "nusvr_sigmoid", NuSVR(kernel="sigmoid", gamma=0.05, nu=0.3).fit(Xr, yr / 50), XT, variants=Z3
)
record("one_class_svm", OneClassSVM(nu=0.3, gamma=0.2).fit(X3), XT, variants=Z3)
record("lda_svd", LinearDiscriminantAnalysis().fit(X3, y3), XT, variants=Z3)
record(
    "lda_eigen",
    LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.2).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "qda",
    QuadraticDiscriminantAnalysis(reg_param=0.1).fit(X3, y3),
    XT,
    variants=Z3,
    note="predict_proba and predict_log_proba by the log-sum-exp mixin since 1.6",
)
record(
    "mlp_classifier",
    MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=50, random_state=0).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "mlp_regressor",
    MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=50, random_state=0).fit(
        Xr, yr / 50
    ),
    XT,
    variants=Z3,
)
record(
    "bernoulli_rbm",
    BernoulliRBM(n_components=4, n_iter=5, random_state=0).fit(np.clip(np.abs(X3) / 3, 0, 1)),
    XT,
    variants=Z3,
)
record("knn_kd_tree", KNeighborsClassifier(n_neighbors=4, leaf_size=5).fit(X3, y3), XT, variants=Z3)
record(
    "knn_ball_tree_distance",
    KNeighborsClassifier(
        n_neighbors=6, weights="distance", algorithm="ball_tree", leaf_size=5, p=1
    ).fit(X3, y3),
    XT,
    variants=Z3,
)
record(
    "knn_regressor_brute",
    KNeighborsRegressor(n_neighbors=3, algorithm="brute").fit(Xr, yr),
    XT,
    variants=Z3,
)

savez(os.path.join(OUT, "inputs.npz"), INPUTS)
with open(os.path.join(OUT, "inputs_obj.json"), "w") as fh:
    json.dump(
        {k: v for k, v in OBJ_INPUTS.items() if not k.endswith("#array")},
        fh,
        sort_keys=True,
        separators=(",", ":"),
    )
    fh.write("\n")
with open(os.path.join(OUT, "manifest.part.json"), "w") as fh:
    json.dump(
        {"versions": VERSIONS, "modules": sorted(MODULES), "facts": FACTS, "fixtures": entries},
        fh,
        indent=1,
    )
n_files = sum(len(e["files"]) for e in entries)
print(
    f"  {STACK}: {len(entries)} fixtures, {n_files} files, sklearn {sklearn.__version__}, "
    f"numpy {np.__version__}, joblib {joblib.__version__}",
    flush=True,
)
