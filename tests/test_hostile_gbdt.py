"""Hostile XGBoost, LightGBM and CatBoost models: truncated and lying
documents, children out of range, cycles.  Each is a ModelFormatError (or,
for a valid model mlfast does not serve, UnsupportedModelError) -- never a
crash, a hang or another exception.  The files are real models, damaged:
the version fixtures (tests/fixtures/gbdt/), so that no library is needed
and the suite runs under ASan (the libraries' own C++ does not)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import mlfast

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gbdt"
XGB = FIXTURES / "xgboost-2.1.4"
LGB = FIXTURES / "lightgbm-4.5.0"
CB = FIXTURES / "catboost-1.2.10"


def _rows(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5))


@pytest.fixture(scope="module")
def xgb_pickle() -> bytes:
    return (XGB / "classifier.joblib").read_bytes()


@pytest.fixture(scope="module")
def xgb_json() -> dict:
    return json.loads((XGB / "model.json").read_bytes())


@pytest.fixture(scope="module")
def xgb_ubj() -> bytes:
    return (XGB / "model.ubj").read_bytes()


def _load_json(doc: dict) -> mlfast.Model:
    return mlfast.loads(json.dumps(doc).encode())


def _tree(doc: dict, i: int = 0) -> dict:
    return doc["learner"]["gradient_booster"]["model"]["trees"][i]


def test_every_truncation_of_a_ubjson_model_is_a_format_error(xgb_ubj) -> None:
    assert mlfast.loads(xgb_ubj).predict(_rows(3)).shape == (3, 4)
    cuts = sorted(set(range(1, 200)) | set(range(1, len(xgb_ubj), 97)))
    for cut in cuts:
        with pytest.raises(mlfast.ModelFormatError):
            mlfast.loads(xgb_ubj[:cut])


def test_a_truncated_booster_inside_a_pickle_is_a_format_error() -> None:
    booster = mlfast._loader.load_tree((XGB / "booster.pkl").read_bytes())
    handle = bytes(booster.state["handle"])
    data = (XGB / "booster.pkl").read_bytes()
    start = data.index(handle[:64])
    # the same pickle with the handle's bytes cut, its length prefix kept honest
    cut = handle[: len(handle) // 2]
    assert data[start - 5] == 0x42  # BINBYTES (u32 length) inside bytearray(...)
    bad = data[: start - 4] + struct.pack("<I", len(cut)) + cut + data[start + len(handle) :]
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(bad)


def test_a_ubjson_count_larger_than_the_file_is_refused_before_allocating(xgb_ubj) -> None:
    # the first typed array: '[$d#L' + 8-byte count
    at = xgb_ubj.index(b"[$d#L")
    huge = xgb_ubj[: at + 5] + struct.pack(">q", 1 << 60) + xgb_ubj[at + 13 :]
    with pytest.raises(mlfast.ModelFormatError, match="length"):
        mlfast.loads(huge)
    negative = xgb_ubj[: at + 5] + struct.pack(">q", -5) + xgb_ubj[at + 13 :]
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(negative)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(mlfast.ModelFormatError, match="nested deeper"):
        mlfast.loads(b"{i\x01a" + b"[" * 5000 + b"]" * 5000 + b"}")
    with pytest.raises(mlfast.ModelFormatError):
        mlfast.loads(b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t["left_children"].__setitem__(0, 10**6), "outside the tree"),
        (lambda t: t["left_children"].__setitem__(0, 0), "reached twice"),
        (lambda t: t["right_children"].__setitem__(0, 0), "reached twice"),
        (lambda t: t["split_indices"].__setitem__(0, 99), "feature 99"),
        (lambda t: t["left_children"].pop(), "items, expected"),
        (lambda t: t["split_conditions"].__setitem__(0, "x"), "other than numbers"),
        (lambda t: t["tree_param"].__setitem__("num_nodes", "-3"), "num_nodes"),
        (lambda t: t["tree_param"].__setitem__("num_nodes", "1000000000"), "items, expected"),
        (lambda t: t.pop("default_left"), "default_left"),
    ],
)
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
    doc["learner"]["learner_model_param"]["base_score"] = "[5E-1,5E-1]"
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
    """The first tree of a LightGBM regressor fixture, on its own (7 leaves)."""
    text = (LGB / "model.txt").read_text()
    header, rest = text.split("\nTree=0\n", 1)
    tree0, tail = rest.split("\nTree=1\n", 1)
    end = tail[tail.index("end of trees") :]
    header = (
        header.replace("num_class=4", "num_class=1")
        .replace("num_tree_per_iteration=4", "num_tree_per_iteration=1")
        .replace("objective=multiclass num_class:4", "objective=regression")
    )
    return header + "\nTree=0\n" + tree0 + "\n" + end


def _replace_line(text: str, key: str, value: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(key + "="):
            lines[i] = f"{key}={value}"
            return "\n".join(lines)
    raise AssertionError(key)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("left_child", "0 -1 -2 -4 -5 -6", "reached twice"),
        ("left_child", "1 -99 -2 -4 -5 -6", "leaf out of range"),
        ("right_child", "1 -3 -4 -5 -6 60", "outside the tree"),
        ("split_feature", "0 0 40 1 1 1", "feature 40"),
        ("threshold", "0.1 0.2", "values, expected"),
        ("decision_type", "2 2 14 2 2 2", "missing type 3"),
        ("num_leaves", "x", "expected an integer"),
        ("leaf_value", "1 2 nonsense 4 5 6 7", "other than numbers"),
    ],
)
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
    return (CB / "model.cbm").read_bytes()


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
        bad = cbm[:at] + struct.pack("<I", int(rng.integers(1 << 20, 1 << 31))) + cbm[at + 4 :]
        try:
            mlfast.loads(bad)
        except (mlfast.ModelFormatError, mlfast.UnsupportedModelError):
            refused += 1
    assert refused > 20
