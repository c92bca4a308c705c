"""FunctionTransformer of a numpy function: numpy's own loop, by name.

The function is a name in the file (``numpy.log1p``), which the VM keeps as
an inert Global when it is one of the functions mlfast serves (ir.FUNCTIONS);
it is never imported from the file nor called.  C finds numpy's loop for it
by that fixed name and runs it, so the values are numpy's bit for bit.

A function runs as two nodes: a cast, which gives the input the type of the
loop numpy would choose for it (integers of 8 bits become float16, of 16 bits
float32, ... exactly), then the function over the loop of that precision.
"""

from __future__ import annotations

from typing import Any, Optional

from mlfast._builders import MAX_NESTING, Builders, Node, register
from mlfast._builders.ir import (
    FUNCTIONS,
    Accept,
    Built,
    Cast,
    CastRule,
    Check,
    Cols,
    Function,
    Out,
)
from mlfast._core import Global, Record
from mlfast.errors import ModelFormatError, UnsupportedModelError

#: where numpy's versions pickle their functions (numpy.log1p)
NUMPY_MODULES = (
    "numpy",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
    "numpy.core.umath",
    "numpy._core.umath",
)


def _describe(value: Any) -> str:
    if isinstance(value, (Global, Record)):
        return value.path
    return type(value).__name__


def function_code(node: Node, key: str) -> Optional[int]:
    """The code of the numpy function `key` names; None for None (the
    identity).  Anything else is not served: UnsupportedModelError naming it."""
    value = node.get(key, None)
    if value is None:
        return None
    if isinstance(value, Global) and value.module in NUMPY_MODULES and value.name in FUNCTIONS:
        return FUNCTIONS[value.name]
    raise UnsupportedModelError(
        f"{node.where} ({node.name}): {key} is {_describe(value)}, which mlfast does not "
        f"serve; it serves None and numpy's {', '.join(sorted(FUNCTIONS))}"
    )


def no_kwargs(node: Node, key: str) -> None:
    value = node.get(key, None)
    if value is not None and value != {}:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): {key} is set; mlfast serves the numpy functions "
            "without arguments"
        )


def validates(node: Node) -> bool:
    value = node.get("validate", False)
    if not isinstance(value, bool):
        raise node.fail(f"validate is {value!r}, expected True or False")
    return value


def apply(
    node: Node, b: Builders, X: Cols, code: Optional[int], accept: int, unnamed: bool = False
) -> Cols:
    """func(X) as numpy computes it (code None: the identity), behind a
    check of what the transformer accepts."""
    if code is None:
        if accept == Accept.ANY:
            return X
        return b.add(node, Check(), X, len(X), accept=accept, unnamed=unnamed)
    X = b.add(node, Cast(rule=CastRule.UFUNC, code=code), X, len(X), accept=accept, unnamed=unnamed)
    return b.add(node, Function(code=code), X, len(X))


@register("sklearn.preprocessing", "FunctionTransformer")
def build_function_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    code = function_code(node, "func")
    no_kwargs(node, "kw_args")
    # validate=True is check_array: numbers, NaN and inf refused; without it
    # the function meets X as it is
    accept = Accept.FINITE if validates(node) else Accept.ANY
    after = _next_step(node, b)
    if "n_features_in_" in node.state:
        n = node.integer("n_features_in_")
    elif X is not None:
        n = len(X)
    elif after is not None:
        # an element-wise function keeps its width: the step after it reads it
        n = _width_of(after, node)
    else:
        # before 0.23, and before 1.2 with validate=False, no width is recorded
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) records no n_features_in_ (scikit-learn "
            f"{node.state.get('_sklearn_version', '< 1.2')}) and no step after it says how "
            "many columns it reads"
        )
    X = b.input(node, X, n)
    cols = apply(node, b, X, code, accept)
    name = node.get("func", None)
    # without validate it checks nothing: the step after it warns of an
    # array where it was fitted on names
    warn_name = _checker_of(after) if accept == Accept.ANY and after is not None else None
    return Built(
        f"{node.name}({'None' if name is None else name.name})",
        "transformer",
        {"transform": Out(cols)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        warn_name=warn_name,
    )


def _width_of(step: Record, node: Node) -> int:
    """The columns a step reads: its n_features_in_, or its own build's."""
    state = step.state if isinstance(step.state, dict) else {}
    n = state.get("n_features_in_")
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        return n
    try:
        return Builders().build(step, f"{node.where}'s next step").n_features_in
    except (ModelFormatError, UnsupportedModelError):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) records no n_features_in_ and the step after it "
            "does not say how many columns it reads"
        ) from None


def _checker_of(step: Record) -> str:
    """The estimator that checks a step's input first: a pipeline's first step's."""
    for _ in range(MAX_NESTING):
        state = step.state if isinstance(step.state, dict) else {}
        steps = state.get("steps") if step.path == "sklearn.pipeline.Pipeline" else None
        first = (
            next(
                (
                    s[1]
                    for s in steps
                    if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], Record)
                ),
                None,
            )
            if isinstance(steps, list)
            else None
        )
        if first is None:
            break
        step = first
    return step.path.rsplit(".", 1)[-1]


def _next_step(node: Node, b: Builders) -> Optional[Record]:
    """The estimator after this one in a pipeline of the model, or None."""
    seen = 0

    def find(obj: Any, depth: int) -> Optional[Record]:
        nonlocal seen
        seen += 1
        if depth > MAX_NESTING or seen > 1000 or not isinstance(obj, Record):
            return None
        state = obj.state if isinstance(obj.state, dict) else {}
        steps = state.get("steps") if obj.path == "sklearn.pipeline.Pipeline" else None
        if not isinstance(steps, list):
            return None
        for i, step in enumerate(steps):
            est = step[1] if isinstance(step, tuple) and len(step) == 2 else None
            if est is node.record:
                return next(
                    (
                        s[1]
                        for s in steps[i + 1 :]
                        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], Record)
                    ),
                    None,
                )
            found = find(est, depth + 1)
            if found is not None:
                return found
        return None

    root = b.root[0] if b.root is not None else None
    return None if root is node.record else find(root, 0)
