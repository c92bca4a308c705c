"""The registry of representatives: each family's few fitted models that the
shared runs of ``tests/test_parity_shared.py`` take through every file
variant, pickling a Model (every protocol, twice, and back through
``mlfast.loads``), ``mlfast.inspect`` and ``repr``.

How a family joins
------------------
A family's differential suite ``tests/test_parity_<family>.py`` defines::

    def representatives() -> Dict[str, Callable[[], Representative]]:
        '''This family's models for the shared runs.'''
        def forest():
            X, y, X_new = classification_data(3, "str", seed=140)
            return Representative(fit(RandomForestClassifier(10), X, y), X_new)
        return {"RandomForestClassifier(10)-str-labels": forest, ...}

Then take the family's name out of ``WAITING`` below, if it is there.
Nothing else: every ``test_parity_*.py`` module is a family (``families()``
finds them) and ``tests/test_parity_shared.py`` fails, naming the module, for
one without ``representatives`` that is not ``WAITING``.  Keep it cheap: the dict is made when tests
are collected, so a value is a function that fits when called (the shared
module calls it once and keeps the model for all its runs).  A few models a
family are enough -- the kinds of answer it has (labels of each dtype,
probabilities, multi-output lists, transforms, float32), a pipeline, a
DataFrame with names -- the family's own suite checks the options.  Names
are unique within a family and say what the model is: they are test ids.
Do not write the shared runs again in the family's suite.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

TESTS = Path(__file__).resolve().parent.parent
SHARED = "test_parity_shared"
#: families whose suites have not joined the shared runs yet (their own
#: suites still check what they check): a family leaves this list when its
#: suite defines representatives(), and test_parity_shared fails for one
#: that has joined and is still listed, or for a suite neither joined nor here
WAITING = (
    "bayes",
    "cluster",
    "decomposition",
    "dict_vectorizer",
    "discriminant",
    "feature_hasher",
    "feature_selection",
    "gbdt",
    "glm",
    "kernel_approximation",
    "labels",
    "mixture",
    "neighbors",
    "neural",
    "sparse",
    "spline",
    "svm",
    "target_missing",
    "text",
    "transforms",
)


class Representative(NamedTuple):
    """A fitted estimator and what the shared runs check it with."""

    #: the fitted scikit-learn estimator
    estimator: Any
    #: rows to predict on (an ndarray, a DataFrame, ...), or a tuple of such
    #: inputs; every one is checked whole and as its first row
    rows: Any
    #: floats bit for bit: False, True or "but exp" (support.parity.THROUGH_EXP)
    exact: Any = False
    #: float32 answers compared at this precision (support.parity.F32_RTOL)
    float32_rtol: Optional[float] = None
    #: text ``mlfast.inspect`` of the file must show besides the estimators'
    #: class names (e.g. the tree class a forest's state holds)
    shows: Tuple[str, ...] = ()

    def inputs(self) -> Tuple[Any, ...]:
        return self.rows if isinstance(self.rows, tuple) else (self.rows,)


Make = Callable[[], Representative]


def families() -> Tuple[str, ...]:
    """Every family with a differential suite: the ``<family>`` of each
    ``tests/test_parity_<family>.py`` (but the shared one)."""
    return tuple(
        sorted(
            p.stem[len("test_parity_") :]
            for p in TESTS.glob("test_parity_*.py")
            if p.stem != SHARED
        )
    )


def family_module(family: str) -> Any:
    """The family's suite, imported as pytest imports it (tests/ is on
    sys.path: the same module object when pytest collected it too)."""
    return importlib.import_module(f"test_parity_{family}")


def representatives(family: str) -> Dict[str, Make]:
    """{name: a function that fits the model} of ``family``; {} for a suite
    without ``representatives`` (test_parity_shared says which)."""
    make = getattr(family_module(family), "representatives", None)
    return {} if make is None else dict(make())
