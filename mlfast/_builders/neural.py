"""Neural networks: MLPClassifier and MLPRegressor (_forward_pass_fast: each
layer ``activation @ coefs_[i]``, then ``+= intercepts_[i]``, then the
activation), and BernoulliRBM.transform (``expit(X @ components_.T +
intercept_hidden_)``).  The products are linear ops (OpenBLAS dgemm for
blocks, as numpy's matmul), the activations csrc/nn.c's.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from mlfast._builders import Builders, Node, register, regressor
from mlfast._builders.ir import (
    Accept,
    Activation,
    ActivationRule,
    Built,
    Cols,
    LabelRule,
    Labels,
    Linear,
    Out,
    Post,
    PostRule,
)
from mlfast.errors import UnsupportedModelError

#: ACTIVATIONS names -> rule (None: identity)
ACTIVATIONS = {
    "identity": None,
    "logistic": ActivationRule.LOGISTIC,
    "tanh": ActivationRule.TANH,
    "relu": ActivationRule.RELU,
    "exp": ActivationRule.EXP,
    "softmax": ActivationRule.SOFTMAX,
}


def _layers(node: Node):
    coefs, intercepts = node.get("coefs_"), node.get("intercepts_")
    if (
        not isinstance(coefs, list)
        or not isinstance(intercepts, list)
        or not coefs
        or len(coefs) != len(intercepts)
    ):
        raise node.fail("coefs_ and intercepts_ must be lists of as many arrays")
    layers = []
    width = None
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        w = node.array(f"coefs_[{i}]", ndim=(2,), kinds="f", value=w)
        if w.dtype != np.float64:
            raise UnsupportedModelError(
                f"{node.where} ({node.name}) was fitted on {w.dtype} data: its layers "
                "compute in that type, which mlfast does not serve yet"
            )
        if w.shape[0] < 1 or w.shape[1] < 1 or (width is not None and w.shape[0] != width):
            raise node.fail(f"coefs_[{i}] has shape {w.shape}, expected ({width}, n)")
        b = node.vector(f"intercepts_[{i}]", w.shape[1], value=b)
        layers.append((np.ascontiguousarray(w.T), b))
        width = w.shape[1]
    n_layers = node.get("n_layers_", len(layers) + 1)
    if n_layers != len(layers) + 1:
        raise node.fail(f"n_layers_ is {n_layers!r} for {len(layers)} weight matrices")
    return layers


def _activation(node: Node, key: str) -> Optional[int]:
    name = node.get(key)
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise node.fail(f"{key} is {name!r}, expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _forward(node: Node, b: Builders, X: Optional[Cols]):
    layers = _layers(node)
    hidden = _activation(node, "activation")
    out_act = _activation(node, "out_activation_")
    n = node.n_features(layers[0][0].shape[1])
    cols = b.input(node, X, n)
    for i, (w, bias) in enumerate(layers):
        cols = b.add(
            node,
            Linear(coef=w, intercept=bias, f32=False),
            cols,
            w.shape[0],
            accept=Accept.FINITE if i == 0 else Accept.ANY,
        )
        rule = hidden if i < len(layers) - 1 else out_act
        if rule is not None:
            cols = b.add(node, Activation(rule=rule), cols, w.shape[0])
    return cols, n, out_act


@register("sklearn.neural_network", "MLPRegressor")
def build_mlp_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    out, n, _ = _forward(node, b, X)
    return regressor(node, out, n, raw_1d=len(out) == 1)


@register("sklearn.neural_network", "MLPClassifier")
def build_mlp_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
        raise node.fail("classes_ must be a 1-D array of at least two labels")
    binarizer = node.get("_label_binarizer", None)
    y_type = getattr(binarizer, "state", {}).get("y_type_") if binarizer is not None else None
    if isinstance(y_type, str) and y_type.startswith("multilabel"):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): multilabel MLPClassifier is not served yet"
        )
    out, n, out_act = _forward(node, b, X)
    k = int(classes.size)
    outputs: Dict[str, Out] = {}
    if k == 2 and len(out) == 1 and out_act == ActivationRule.LOGISTIC:
        # LabelBinarizer.inverse_transform: y > 0.5; predict_proba [1 - p, p]
        labels = b.add(node, Labels(rule=LabelRule.THRESHOLD, threshold=0.5), out, 1)
        proba = _complement(node, b, out)
    elif k > 2 and len(out) == k and out_act == ActivationRule.SOFTMAX:
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), out, 1)
        proba = out
    else:
        raise node.fail(
            f"{len(out)} outputs with out_activation_ {node.get('out_activation_')!r}"
            f" for {k} classes"
        )
    outputs["predict"] = Out(labels, classes=np.ascontiguousarray(classes), squeeze=True)
    outputs["predict_proba"] = Out(proba)
    outputs["predict_log_proba"] = Out(b.add(node, Post(rule=PostRule.LOG), proba, k))
    return Built(
        node.name,
        "classifier",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )


def _complement(node: Node, b: Builders, p: Cols) -> Cols:
    """[1 - p, p] of one column, as np.vstack([1 - y_pred, y_pred]).T."""
    one_minus = b.add(node, Linear(coef=np.array([[-1.0]]), intercept=np.array([1.0])), p, 1)
    return Cols.concat([one_minus, p])


@register("sklearn.neural_network", "BernoulliRBM")
def build_rbm(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    components = node.array("components_", ndim=(2,), kinds="f")
    if components.shape[0] < 1 or components.shape[1] < 1:
        raise node.fail(f"components_ has shape {components.shape}")
    h, d = components.shape
    bias = node.vector("intercept_hidden_", h)
    n = node.n_features(d)
    X = b.input(node, X, n)
    p = b.add(
        node,
        Linear(coef=np.ascontiguousarray(components, np.float64), intercept=bias, f32=False),
        X,
        h,
        accept=Accept.FINITE,
    )
    out = b.add(node, Activation(rule=ActivationRule.LOGISTIC), p, h)
    return Built(
        node.name,
        "transformer",
        {"transform": Out(out)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )
