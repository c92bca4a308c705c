"""Hostile XGBoost and LightGBM models: truncated and lying documents,
children out of range, cycles.  Each is a ModelFormatError (or, for a valid
model mlfast does not serve, UnsupportedModelError) -- never a crash, a hang
or another exception.  The files are real models, damaged."""
from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest

import mlfast

xgb = pytest.importorskip("xgboost")


def _rows(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4))


@pytest.fixture(scope="module")
def xgb_model():
    X = _rows()
    return xgb.XGBClassifier(n_estimators=3, max_depth=3).fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture(scope="module")
def xgb_json(xgb_model) -> dict:
    return json.loads(bytes(xgb_model.get_booster().save_raw("json")))


@pytest.fixture(scope="module")
def xgb_ubj(xgb_model) -> bytes:
    return bytes(xgb_model.get_booster().save_raw("ubj"))


def _load_json(doc: dict) -> mlfast.Model:
    return mlfast.loads(json.dumps(doc).encode())


def _tree(doc: dict, i: int = 0) -> dict:
    return doc["learner"]["gradient_booster"]["model"]["trees"][i]


def test_every_truncation_of_a_ubjson_model_is_a_format_error(xgb_ubj) -> None:
    assert mlfast.loads(xgb_ubj).predict(_rows(3)).shape == (3,)
    cuts = sorted(set(range(1, 200)) | set(range(1, len(xgb_ubj), 97)))
    for cut in cuts:
        with pytest.raises(mlfast.ModelFormatError):
            mlfast.loads(xgb_ubj[:cut])


def test_a_truncated_booster_inside_a_pickle_is_a_format_error(xgb_model) -> None:
    booster = xgb_model.get_booster()
    handle = bytes(booster.__getstate__()["handle"])
    data = pickle.dumps(xgb_model, protocol=4)
    start = data.index(handle[:64])
    # the same pickle with the handle's bytes cut, its length prefix kept honest
    cut = handle[: len(handle) // 2]
    assert data[start - 5] == 0x42       # BINBYTES (u32 length) inside bytearray(...)
    bad = data[:start - 4] + struct.pack("<I", len(cut)) + cut + data[start + len(handle):]
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(bad)


def test_a_ubjson_count_larger_than_the_file_is_refused_before_allocating(xgb_ubj) -> None:
    # the first typed array: '[$d#L' + 8-byte count
    at = xgb_ubj.index(b"[$d#L")
    huge = xgb_ubj[:at + 5] + struct.pack(">q", 1 << 60) + xgb_ubj[at + 13:]
    with pytest.raises(mlfast.ModelFormatError, match="length"):
        mlfast.loads(huge)
    negative = xgb_ubj[:at + 5] + struct.pack(">q", -5) + xgb_ubj[at + 13:]
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(negative)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(mlfast.ModelFormatError, match="nested deeper"):
        mlfast.loads(b"{i\x01a" + b"[" * 5000 + b"]" * 5000 + b"}")
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}")


@pytest.mark.parametrize("damage, message", [
    (lambda t: t["left_children"].__setitem__(0, 10 ** 6), "outside the tree"),
    (lambda t: t["left_children"].__setitem__(0, 0), "reached twice"),
    (lambda t: t["right_children"].__setitem__(0, 0), "reached twice"),
    (lambda t: t["split_indices"].__setitem__(0, 99), "feature 99"),
    (lambda t: t["left_children"].pop(), "items, expected"),
    (lambda t: t["split_conditions"].__setitem__(0, "x"), "other than numbers"),
    (lambda t: t["tree_param"].__setitem__("num_nodes", "-3"), "num_nodes"),
    (lambda t: t["tree_param"].__setitem__("num_nodes", "1000000000"), "items, expected"),
    (lambda t: t.pop("default_left"), "default_left"),
])
def test_lying_trees_are_format_errors(xgb_json, damage, message) -> None:
    doc = json.loads(json.dumps(xgb_json))
    damage(_tree(doc))
    with pytest.raises(mlfast.ModelFormatError, match=message):
        _load_json(doc)


def test_lying_model_parameters_are_format_errors(xgb_json) -> None:
    doc = json.loads(json.dumps(xgb_json))
    doc["learner"]["gradient_booster"]["model"]["tree_info"][0] = 7
    with pytest.raises(mlfast.ModelFormatError, match="groups"):
        _load_json(doc)
    doc = json.loads(json.dumps(xgb_json))
    doc["learner"]["learner_model_param"]["base_score"] = "[2.5E0]"
    with pytest.raises(mlfast.ModelFormatError, match="base_score"):
        _load_json(doc)
    doc = json.loads(json.dumps(xgb_json))
    doc["learner"]["objective"]["name"] = "survival:aft"
    with pytest.raises(mlfast.UnsupportedModelError, match="survival:aft"):
        _load_json(doc)
    with pytest.raises(mlfast.ModelFormatError, match="malformed JSON"):
        mlfast.loads(b'{"learner": [1, 2')


# ---- LightGBM --------------------------------------------------------------------

@pytest.fixture(scope="module")
def lgb_text() -> str:
    lgb = pytest.importorskip("lightgbm")
    X = _rows(300, 1)
    est = lgb.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1).fit(X, X[:, 0])
    return est.booster_.model_to_string()


def _replace_line(text: str, key: str, value: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(key + "="):
            lines[i] = f"{key}={value}"
            return "\n".join(lines)
    raise AssertionError(key)


@pytest.mark.parametrize("key, value, message", [
    ("left_child", "0 -1 -2", "reached twice"),
    ("left_child", "1 -9 -2", "leaf out of range"),
    ("right_child", "2 -3 7", "outside the tree"),
    ("split_feature", "0 0 40", "feature 40"),
    ("threshold", "0.1 0.2", "values, expected"),
    ("decision_type", "2 2 14", "missing type 3"),
    ("num_leaves", "x", "expected an integer"),
    ("leaf_value", "1 2 nonsense 4", "other than numbers"),
])
def test_lying_lightgbm_trees_are_format_errors(lgb_text, key, value, message) -> None:
    assert mlfast.loads(lgb_text.encode()).predict(_rows(2)).shape == (2,)
    bad = _replace_line(lgb_text, key, value)
    with pytest.raises(mlfast.ModelFormatError, match=message):
        mlfast.loads(bad.encode())


def test_a_lightgbm_text_without_its_end_is_a_format_error(lgb_text) -> None:
    cut = lgb_text[: lgb_text.index("end of trees")]
    with pytest.raises(mlfast.ModelFormatError, match="not a LightGBM model"):
        mlfast.loads(cut.encode())


# ---- CatBoost --------------------------------------------------------------------

@pytest.fixture(scope="module")
def cbm() -> bytes:
    cb = pytest.importorskip("catboost")
    X = _rows(300, 2)
    est = cb.CatBoostRegressor(iterations=3, depth=3, verbose=0, allow_writing_files=False)
    est.fit(X, X[:, 0])
    return bytes(est.__getstate__()["__model"])


def test_every_truncation_of_a_catboost_model_is_a_format_error(cbm) -> None:
    assert mlfast.loads(cbm).predict(_rows(2)).shape == (2,)
    size = struct.unpack_from("<I", cbm, 4)[0]
    for cut in sorted(set(range(4, 120)) | set(range(120, 8 + size, 61))):
        with pytest.raises(mlfast.ModelFormatError):
            mlfast.loads(cbm[:cut])


def test_catboost_offsets_out_of_range_are_format_errors(cbm) -> None:
    # a lying core size, then random words of the flatbuffer set to huge offsets
    with pytest.raises(mlfast.ModelFormatError, match="core of"):
        mlfast.loads(cbm[:4] + struct.pack("<I", 1 << 30) + cbm[8:])
    rng = np.random.default_rng(0)
    size = struct.unpack_from("<I", cbm, 4)[0]
    refused = 0
    for _ in range(200):
        at = 8 + 4 * int(rng.integers(0, size // 4))
        bad = cbm[:at] + struct.pack("<I", int(rng.integers(1 << 20, 1 << 31))) + cbm[at + 4:]
        try:
            mlfast.loads(bad)
        except (mlfast.ModelFormatError, mlfast.UnsupportedModelError):
            refused += 1
    assert refused > 20
