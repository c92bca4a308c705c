"""XGBoost and LightGBM files written by older versions of those libraries,
against the answers those versions gave (tests/fixtures/gbdt/, written by
scripts/make_gbdt_fixtures.py in a virtualenv per version).

XGBoost's answers are float32 and checked bit for bit; LightGBM's within
1e-12; labels equal.  No library is needed: the answers are in the
fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlfast

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "gbdt"
FOLDERS = sorted(p for p in FIXTURES.iterdir() if p.is_dir()) if FIXTURES.is_dir() else []


def _cases():
    for folder in FOLDERS:
        with np.load(folder / "answers.npz") as answers:
            keys = sorted(answers.files)
        for key in keys:
            yield pytest.param(folder, key, id=f"{folder.name}/{key}")


@pytest.mark.parametrize("folder, key", list(_cases()))
def test_files_of_older_versions_give_their_answers(folder: Path, key: str) -> None:
    name, method = key.rsplit(":", 1)
    X = np.load(folder / "X.npy")
    with np.load(folder / "answers.npz", allow_pickle=False) as answers:
        expected = answers[key]
    model = mlfast.load(folder / name)
    got = getattr(model, method)(X)
    assert got.shape == expected.shape
    if method == "predict" and expected.dtype.kind in "iuUO":
        np.testing.assert_array_equal(got, expected)
    elif folder.name.startswith("xgboost"):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_every_supported_version_has_fixtures() -> None:
    names = {
        p.name.split("-")[0] + "-" + ".".join(p.name.split("-")[1].split(".")[:2]) for p in FOLDERS
    }
    for wanted in ("xgboost-1.7", "xgboost-2.0", "xgboost-2.1", "lightgbm-3.3"):
        assert wanted in names, f"no fixtures from {wanted}: {sorted(names)}"
