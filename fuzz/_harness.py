"""What every fuzz target does around its TestOneInput: numpy's and Python's
warnings off (a fuzzed model warns on most inputs; a warning is not a
finding), then atheris' loop over libFuzzer's arguments."""

from __future__ import annotations

import sys
import warnings

import atheris
import numpy as np


def run(test_one_input) -> None:
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
