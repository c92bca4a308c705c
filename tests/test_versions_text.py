"""Text models saved by scikit-learn 0.21 to 1.9 (tests/fixtures/text/,
made by scripts/make_text_fixtures.py with each stack's own scikit-learn,
numpy and joblib): mlfast gives the answers that version gave.  Labels
equal; decision values bit for bit, except where sublinear_tf takes numpy's
log, whose last bit differs between the numpy that saved the model and
the one mlfast runs with (within 1e-12); probabilities within 1e-12.
Files up to 1.4 keep idf as a diagonal CSR matrix, multiplied so that each
row comes out last column first: the order the answers are summed in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlfast

ROOT = Path(__file__).parent / "fixtures" / "text"
CASES = sorted(
    (stack.name, f.stem)
    for stack in ROOT.iterdir()
    if stack.is_dir()
    for f in stack.glob("*.joblib")
)


def test_every_stack_is_there():
    stacks = {s for s, _ in CASES}
    assert {"sk0.21.3", "sk1.4.2", "sk1.5.2", "sk1.9.1"} <= stacks
    assert len(CASES) == 4 * len(stacks)


@pytest.mark.parametrize("stack, name", CASES)
def test_answers_of_the_version_that_saved_it(stack, name):
    docs = json.loads((ROOT / stack / "documents.json").read_text())
    model = mlfast.load(ROOT / stack / f"{name}.joblib")
    want = np.load(ROOT / stack / f"{name}.npz")
    assert want.files
    for method in want.files:
        got = getattr(model, method)(docs)
        expected = want[method]
        if method == "predict":
            assert got.tolist() == expected.tolist()
        elif method == "decision_function" and "sublinear" not in name:
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
