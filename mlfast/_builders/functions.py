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

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import FUNCTIONS, Accept, Built, Cast, CastRule, Cols, Function, Out
from mlfast._core import Global, Record
from mlfast.errors import UnsupportedModelError

#: where numpy's versions pickle their functions (numpy.log1p)
NUMPY_MODULES = ("numpy", "numpy.core._multiarray_umath", "numpy._core._multiarray_umath",
                 "numpy.core.umath", "numpy._core.umath")


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
        f"serve; it serves None and numpy's {', '.join(sorted(FUNCTIONS))}")


def no_kwargs(node: Node, key: str) -> None:
    value = node.get(key, None)
    if value is not None and value != {}:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): {key} is set; mlfast serves the numpy functions "
            "without arguments")


def validates(node: Node) -> bool:
    value = node.get("validate", False)
    if not isinstance(value, bool):
        raise node.fail(f"validate is {value!r}, expected True or False")
    return value


def apply(node: Node, b: Builders, X: Cols, code: Optional[int], accept: int,
          unnamed: bool = False) -> Cols:
    """func(X) as numpy computes it (code None: the identity), behind a
    check of what the transformer accepts."""
    if code is None:
        if accept == Accept.ANY:
            return X
        return b.add(node, Cast(rule=CastRule.KEEP), X, len(X), accept=accept,
                     unnamed=unnamed)
    X = b.add(node, Cast(rule=CastRule.UFUNC, code=code), X, len(X), accept=accept,
              unnamed=unnamed)
    return b.add(node, Function(code=code), X, len(X))


@register("sklearn.preprocessing", "FunctionTransformer")
def build_function_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    code = function_code(node, "func")
    no_kwargs(node, "kw_args")
    # validate=True is check_array: numbers, NaN and inf refused; without it
    # the function meets X as it is
    accept = Accept.FINITE if validates(node) else Accept.ANY
    if "n_features_in_" in node.state:
        n = node.integer("n_features_in_")
    elif X is not None:
        n = len(X)
    else:
        # scikit-learn before 1.2 records no width when validate is False
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) records no n_features_in_ (scikit-learn "
            f"{node.state.get('_sklearn_version', '< 1.2')} with validate=False): mlfast "
            "cannot tell how many columns it reads")
    X = b.input(node, X, n)
    cols = apply(node, b, X, code, accept)
    name = node.get("func", None)
    return Built(f"{node.name}({'None' if name is None else name.name})", "transformer",
                 {"transform": Out(cols)}, n,
                 feature_names_in=node.feature_names(), first_name=node.name)
