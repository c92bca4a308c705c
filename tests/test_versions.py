"""Model files written by older scikit-learn / numpy / joblib stacks.

The golden files under tests/fixtures/versions/ were written once by
scripts/make_version_fixtures.py, each stack in its own virtualenv (from
scikit-learn 1.1.3 with numpy 1.23 and joblib 1.1 to today's), together with
the outputs that stack's scikit-learn gave on fixed float64 and float32
inputs (manifest.json lists them; <stack>/inputs.npz holds the inputs,
<stack>/<fixture>.npz the outputs).  Here mlfast, with no scikit-learn
involved, must

* read every file with its VM (``mlfast.inspect``), served estimator or not;
* for every estimator it serves (``mlfast.supported_estimators()``), load the
  file and give the recorded output of every method: labels equal with the
  same dtype, float64 outputs within 1e-12, float32 outputs within rtol 1e-6
  (and float32 transform outputs bit for bit: the float32 rules of the
  scalers changed across versions); the categorical encoders' fixtures are
  asked with object rows (inputs_obj.json: str, numbers, None, NaN) as a 2-D
  object array and as a list of lists, and refuse what that version refused
  (NaN before the encoders took missing values) with its words;
* for the others, refuse the file with UnsupportedModelError.  When a family
  gets a builder its class name joins SERVED, and the same fixtures are then
  checked for exact outputs without editing this file.
"""

from __future__ import annotations

import builtins
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

import mlfast

FIXTURES = Path(__file__).parent / "fixtures" / "versions"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SERVED = set(mlfast.supported_estimators())

STACKS = MANIFEST["stacks"]
#: every fixture, with its stack and name folded in
ENTRIES = [
    dict(entry, stack=stack, fixture=name)
    for stack, info in STACKS.items()
    for name, entry in info["fixtures"].items()
]
#: (entry, variant, path relative to FIXTURES) of every model file
FILES = [
    (entry, variant, f"{entry['stack']}/{fname}")
    for entry in ENTRIES
    for variant, fname in sorted(entry["files"].items())
]


def _classes_in_file(entry) -> list:
    return entry.get("classes_in_file", [entry["estimator"]])


def _served(entry) -> bool:
    return all(name in SERVED for name in _classes_in_file(entry))


def _npz(entry) -> str:
    return f"{entry['stack']}/{entry['fixture']}.npz"


def _file_id(item) -> str:
    entry, variant, _ = item
    return f"{entry['stack']}/{entry['fixture']}/{variant}"


def _tags(entry) -> tuple:
    """The two forms of a fixture's test input: float64 and float32, or
    object rows as an array and as a list."""
    kind = entry.get("input_kind")
    return {
        "object": ("obj", "list"),
        "dicts": ("records", "tuple"),
        "labels": ("labels", "list"),
        "labelsets": ("labelsets", "tuples"),
    }.get(kind, ("f64", "f32"))


def _methods(entry) -> list:
    """What scikit-learn answered (entry["methods"]) and what it refused
    (entry["errors"], '<method>__<tag>'): both are checked."""
    refused = {key.rsplit("__", 1)[0] for key in entry.get("errors", {})}
    return sorted(set(entry["methods"]) | refused)


def _golden_keys(entry) -> set:
    keys = set()
    for method, dtype in entry["methods"].items():
        if isinstance(dtype, dict):  # a list of arrays, one per output
            keys.update(f"{method}.{k}" for k in range(dtype["outputs"]))
        else:
            keys.add(method)
    return keys


def _outputs():
    """(entry, variant, path, method, input dtype) of every served file."""
    for entry, variant, path in FILES:
        if not _served(entry) or "refused" in entry:
            continue
        for method in _methods(entry):
            for tag in _tags(entry):
                yield entry, variant, path, method, tag


def _output_id(item) -> str:
    entry, variant, _, method, tag = item
    return f"{entry['stack']}/{entry['fixture']}/{variant}/{method}/{tag}"


OUTPUTS = list(_outputs())


@functools.lru_cache(maxsize=None)
def _load(path: str) -> mlfast.Model:
    return mlfast.load(FIXTURES / path)


@functools.lru_cache(maxsize=None)
def _npz_arrays(path: str) -> dict:
    with np.load(FIXTURES / path) as data:  # allow_pickle=False: numeric and '<U' only
        return {key: data[key] for key in data.files}


def _golden(entry) -> dict:
    return _npz_arrays(_npz(entry))


@functools.lru_cache(maxsize=None)
def _object_rows(stack: str) -> dict:
    return json.loads((FIXTURES / stack / "inputs_obj.json").read_text())


def _input(entry) -> np.ndarray:
    """The test input of a fixture (inputs are shared within a stack): float64,
    or object rows as a 2-D object array."""
    if entry.get("input_kind") in ("dicts", "labelsets"):
        return _object_rows(entry["stack"])[entry["input"]]
    if entry.get("input_kind") == "labels":
        return np.asarray(_object_rows(entry["stack"])[entry["input"]])
    if entry.get("input_kind") == "object":
        rows = _object_rows(entry["stack"])[entry["input"]]
        X = np.empty((len(rows), len(rows[0])), dtype=object)
        for i, row in enumerate(rows):
            X[i, :] = row
        return X
    return _npz_arrays(f"{entry['stack']}/inputs.npz")[entry["input"]]


def _tagged_input(entry, tag: str):
    """The test input in the form a tag names."""
    if tag == "f32":
        return _input(entry).astype(np.float32)
    if tag == "list" and entry.get("input_kind") == "object":
        return [list(row) for row in _object_rows(entry["stack"])[entry["input"]]]
    if tag == "tuple":
        return tuple(_input(entry))
    if tag == "list" and entry.get("input_kind") == "labels":
        return _object_rows(entry["stack"])[entry["input"]]
    if tag == "tuples":
        return tuple(tuple(r) for r in _input(entry))
    return _input(entry)


def _expected(entry, method: str, tag: str):
    """The test input and what that stack's scikit-learn answered, with its dtype."""
    golden = _golden(entry)
    X = _tagged_input(entry, tag)
    index = 0 if tag in ("f64", "obj", "records", "labels", "labelsets") else 1
    dtype = entry["methods"][method]
    if isinstance(dtype, list):
        dtype = dtype[index]
    # (object rows: one row when the array and the list were answered alike)
    expected = golden[method][min(index, len(golden[method]) - 1)]
    if method not in entry.get("object_outputs", ()):
        expected = expected.astype(dtype, copy=False)  # exact: float32 was stored in float64
    return X, expected, np.dtype(dtype)


def test_manifest_is_consistent():
    assert ENTRIES, "no fixtures: run scripts/make_version_fixtures.py"
    for entry in ENTRIES:
        for fname in entry["files"].values():
            assert (FIXTURES / entry["stack"] / fname).is_file(), fname
        assert set(_golden(entry)) == _golden_keys(entry), entry["fixture"]
        X = _input(entry)
        if entry.get("input_kind") in ("dicts", "labels", "labelsets"):
            assert len(X) > 0
            continue
        assert X.ndim == 2 and X.dtype == (
            object if entry.get("input_kind") == "object" else np.float64
        )
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    # 14 stacks of 130 to 174 fixtures each, ensembles compressed (naive Bayes,
    # SVMs, discriminant analysis, MLPs and neighbours add about 1.3 MB)
    assert total < 7.5e6, f"golden files take {total} bytes; keep them small"


@pytest.mark.parametrize("item", FILES, ids=_file_id)
def test_inspect_reads_every_file(item):
    """The VM reads every file, served estimator or not, old numpy names,
    unaligned and nested-pickle arrays included."""
    entry, _, path = item
    text = mlfast.inspect(FIXTURES / path)
    version = STACKS[entry["stack"]]["versions"]["sklearn"]
    assert f".{entry['estimator']}  (sklearn {version})" in text.splitlines()[0]


@pytest.mark.parametrize("item", FILES, ids=_file_id)
def test_load(item):
    entry, _, path = item
    if not _served(entry):
        with pytest.raises(mlfast.UnsupportedModelError, match="does not serve"):
            mlfast.load(FIXTURES / path)
        return
    if "refused" in entry:
        # a state mlfast cannot answer for exactly: refused, never guessed
        kind, fragment = entry["refused"]
        with pytest.raises(getattr(mlfast, kind), match=re.escape(fragment)):
            mlfast.load(FIXTURES / path)
        return
    model = _load(path)
    version = STACKS[entry["stack"]]["versions"]["sklearn"]
    assert model.sklearn_version == version
    if entry.get("input_kind") in ("labels", "labelsets"):
        return  # y's transformers: no X, no n_features_in_
    if entry.get("input_kind") != "dicts":
        assert model.n_features_in_ == _input(entry).shape[1]
    if "feature_names_in" in entry:
        assert model.feature_names_in_.tolist() == entry["feature_names_in"]
    else:
        assert not hasattr(model, "feature_names_in_")
    if "predict" in entry["methods"] and hasattr(model, "classes_"):
        _, labels, dtype = _expected(entry, "predict", _tags(entry)[0])
        if isinstance(model.classes_, list):  # multi-output: one array per output
            assert len(model.classes_) == labels.shape[1]
            for k, classes in enumerate(model.classes_):
                # (a classifier chain answers its labels as float64)
                assert classes.dtype == dtype or dtype == np.float64
                assert set(labels[:, k].tolist()) <= set(classes.tolist())
        else:
            assert model.classes_.dtype == dtype
            assert set(labels.tolist()) <= set(model.classes_.tolist())


@pytest.mark.parametrize("item", OUTPUTS, ids=_output_id)
def test_outputs_match_recorded_sklearn(item):
    entry, _, path, method, tag = item
    if f"{method}__{tag}" in entry.get("errors", {}):
        # scikit-learn refused this input (NaN where that version's estimator
        # takes none: mlfast too, with its wording's first line), or had no
        # such method after all (an AttributeError when called)
        X = _tagged_input(entry, tag)
        kind, _, text = entry["errors"][f"{method}__{tag}"].partition(": ")
        assert kind in ("ValueError", "AttributeError"), kind
        with pytest.raises(
            getattr(builtins, kind),
            match=re.escape(text.split("\n")[0]) if kind == "ValueError" else None,
        ):
            getattr(_load(path), method)(X)
        return
    if isinstance(entry["methods"][method], dict):
        _check_list_output(entry, path, method, tag)
        return
    X, expected, dtype = _expected(entry, method, tag)
    if "feature_names_in" in entry:
        # like scikit-learn: a bare array given to a model fitted on named columns
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            got = getattr(_load(path), method)(X)
    else:
        got = getattr(_load(path), method)(X)
    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape, f"shape {got.shape}, scikit-learn gave {expected.shape}"
    if method in entry.get("object_outputs", ()):
        assert got.dtype == object
        np.testing.assert_array_equal(got.astype(str), expected)
    elif dtype == np.float32:
        # rtol 1e-6, and an absolute slack of 1e-6 x the largest magnitude:
        # scikit-learn's float32 products accumulate in float32 (BLAS sgemm),
        # so an output that cancels to near 0 carries the rounding error of
        # its larger terms.  Transforms are checked bit for bit below.
        finite = np.abs(expected[np.isfinite(expected)])
        scale = float(finite.max()) if finite.size else 0.0
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * scale)
        assert got.dtype == dtype, f"dtype {got.dtype}, scikit-learn gave {dtype}"
    elif dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        assert got.dtype == dtype, f"dtype {got.dtype}, scikit-learn gave {dtype}"
    else:
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == dtype, f"dtype {got.dtype}, scikit-learn gave {dtype}"


def _check_list_output(entry, path: str, method: str, tag: str) -> None:
    """A multi-output classifier's predict_proba: a list of arrays."""
    X = _tagged_input(entry, tag)
    index = 0 if tag == "f64" else 1
    spec = entry["methods"][method]
    got = getattr(_load(path), method)(X)
    assert isinstance(got, list) and len(got) == spec["outputs"]
    for k, array in enumerate(got):
        expected = _golden(entry)[f"{method}.{k}"][index]
        assert array.dtype == np.dtype(spec["dtype"])
        np.testing.assert_allclose(array, expected, rtol=1e-12, atol=1e-12, err_msg=f"output {k}")


F32_TRANSFORMS = [
    item
    for item in OUTPUTS
    if item[3] == "transform"
    and item[4] == "f32"
    and "transform__f32" not in item[0].get("errors", {})
    and _expected(item[0], "transform", "f32")[2] == np.float32
]


@pytest.mark.parametrize("item", F32_TRANSFORMS, ids=_output_id)
def test_float32_transform_is_bit_exact(item):
    """Scalers keep float32 input in float32, and whether they first cast
    their float64 parameters to float32 depends on the scikit-learn version
    that saved them.  A wrong rule is 1 ulp off: only an exact check sees it."""
    entry, _, path, method, tag = item
    X, expected, _ = _expected(entry, method, tag)
    got = _load(path).transform(X)
    assert got.dtype == np.float32
    bad = np.flatnonzero((got != expected) & ~(np.isnan(got) & np.isnan(expected)))
    assert bad.size == 0, (
        f"{bad.size} of {got.size} values differ from scikit-learn "
        f"{entry['stack']}: first at {np.unravel_index(bad[0], got.shape)}: "
        f"{got.flat[bad[0]]!r} != {expected.flat[bad[0]]!r}"
    )


def _version(stack: str) -> tuple:
    return tuple(int(x) for x in STACKS[stack]["versions"]["sklearn"].split(".")[:2])


# The text models' files from every stack are their own corpus
# (tests/fixtures/text/, tests/test_versions_text.py).
TEXT_FIXTURES = {"CountVectorizer", "TfidfVectorizer", "HashingVectorizer", "TfidfTransformer"}
# XGBoost's, LightGBM's and CatBoost's files from their releases are theirs
# (tests/fixtures/gbdt/, tests/test_gbdt_versions.py): scikit-learn's
# version says nothing about them.
GBDT_FIXTURES = {
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
    "xgboost.core.Booster",
    "LGBMClassifier",
    "LGBMRegressor",
    "LGBMRanker",
    "lightgbm.basic.Booster",
    "CatBoostClassifier",
    "CatBoostRegressor",
}
# Served, but no file from an older stack recorded yet: named here, one by
# one, so that the gap is visible and a new class cannot join it silently.
# (The newest families record the estimators whose state or float32 rules
# changed across versions, and one of each family on the oldest and newest
# stack; these are tested on today's scikit-learn only.)
AWAITING_FIXTURES = {
    "AffinityPropagation",
    "Birch",
    "BisectingKMeans",
    "CCA",
    "FastICA",
    "GammaRegressor",
    "GaussianRandomProjection",
    "GenericUnivariateSelect",
    "IncrementalPCA",
    "KMeans",
    "KernelCenterer",
    "KernelPCA",
    "MiniBatchKMeans",
    "Normalizer",
    "Nystroem",
    "PLSCanonical",
    "PLSSVD",
    "PowerTransformer",
    "RANSACRegressor",
    "RBFSampler",
    "RFE",
    "RFECV",
    "SelectFdr",
    "SelectFpr",
    "SelectFromModel",
    "SelectFwe",
    "SelectPercentile",
    "SequentialFeatureSelector",
    "SplineTransformer",
    "TruncatedSVD",
    "TweedieRegressor",
    "VarianceThreshold",
}


def test_the_corpus_spans_what_readme_claims():
    """scikit-learn 0.21 to today, with the numpy, joblib and Python of their
    time: every pickle protocol a Python 3 writes, the module paths of each
    era, the files of sklearn.externals.joblib, every supported estimator."""
    versions = sorted(_version(stack) for stack in STACKS)
    assert versions[0] <= (0, 21) and versions[-1] >= (1, 9), versions
    assert {(0, 22), (0, 23), (0, 24), (1, 0), (1, 1), (1, 4)} <= set(versions)
    protocols = {STACKS[s]["versions"]["pickle_protocol"] for s in STACKS}
    assert {3, 4} <= protocols  # joblib's default on Python 3.7 and 3.8+
    variants = {variant for _, variant, _ in FILES}
    assert {
        "pickle_p0",
        "pickle_p1",
        "pickle_p2",
        "joblib_z3",
        "joblib_gzip",
        "joblib_bz2",
        "joblib_xz",
        "joblib_lzma",
        "joblib_ext",
    } <= variants
    ext = {e["stack"] for e, variant, _ in FILES if variant == "joblib_ext"}
    assert {s for s in STACKS if _version(s) <= (0, 22)} == ext  # removed in 0.23
    modules = {s: set(STACKS[s]["modules"]) for s in STACKS}
    old = [s for s in STACKS if _version(s) < (0, 22)]
    assert old and all(
        {
            "sklearn.ensemble.forest",
            "sklearn.tree.tree",
            "sklearn.linear_model.logistic",
            "sklearn.preprocessing.data",
            "sklearn.ensemble.gradient_boosting",
        }
        <= modules[s]
        for s in old
    )
    assert all(
        ("sklearn.ensemble._gb_losses" in modules[s]) == (_version(s) < (1, 4)) for s in STACKS
    )
    assert all(("numpy._core.multiarray" in modules[s]) == (_version(s) >= (1, 5)) for s in STACKS)
    in_files = {name for e in ENTRIES for name in _classes_in_file(e)}
    missing = SERVED - TEXT_FIXTURES - GBDT_FIXTURES - AWAITING_FIXTURES
    assert missing <= in_files, f"no fixture of {sorted(missing - in_files)}"
    assert not (AWAITING_FIXTURES & in_files), "recorded now: take them off AWAITING_FIXTURES"
    # object rows in every stack, the encoders' fixtures in each
    encoders = {"OneHotEncoder", "OrdinalEncoder"}
    for stack in STACKS:
        mine = [e for e in ENTRIES if e["stack"] == stack]
        assert any(e.get("input_kind") == "object" for e in mine), stack
        assert encoders <= {n for e in mine for n in _classes_in_file(e)}, stack


GB_INIT = [
    e
    for e in ENTRIES
    if e["fixture"] in ("gbc_multi", "gbc_tiny_prior", "gbc_multi_tiny_prior", "gbc_exp")
]


@pytest.mark.parametrize("entry", GB_INIT, ids=lambda e: f"{e['stack']}/{e['fixture']}")
def test_gradient_boosting_init_follows_the_files_version(entry):
    """GradientBoostingClassifier starts every row from init_'s raw
    prediction, whose meaning changed twice: up to 1.3 (the _gb_losses, kept
    as _loss from 1.1) it was log(p) for several classes, from 1.4 the
    symmetric multinomial logit log(p) - mean(log p), the same in every row
    (so predict and predict_proba do not show it; decision_function does);
    probabilities were clipped with float32's eps up to 1.7 and with
    float64's from 1.8 (a class of tiny weight shows it).  mlfast must give
    what the version that saved the file gave."""
    path = f"{entry['stack']}/{entry['files']['joblib_z3']}"
    for tag in ("f64", "f32"):
        X, expected, _ = _expected(entry, "decision_function", tag)
        got = _load(path).decision_function(X)
        np.testing.assert_allclose(
            got,
            expected,
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"{entry['stack']} {entry['fixture']} ({tag})",
        )
