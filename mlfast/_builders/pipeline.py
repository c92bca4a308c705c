"""Pipeline: each step reads what the step before it returns; the last
step's methods are the pipeline's."""

from __future__ import annotations

from typing import List, Optional

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import Built, Cols


def _is_passthrough(est) -> bool:
    return est is None or est == "passthrough"


@register("sklearn.pipeline", "Pipeline")
def build_pipeline(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    steps = node.get("steps")
    if not isinstance(steps, list) or not steps:
        raise node.fail("steps must be a non-empty list of (name, estimator)")
    first: Optional[Built] = None
    last: Optional[Built] = None
    names: List[str] = []
    for i, item in enumerate(steps):
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise node.fail(f"steps[{i}] is not a (name, estimator) pair")
        if _is_passthrough(item[1]):
            continue
        if last is not None:
            transform = last.outputs.get("transform")
            if transform is None:
                raise node.fail(
                    f"steps[{i}] follows a final estimator ({last.name}); only "
                    "the last step may be one"
                )
            X = transform.cols
        last = b.build(item[1], f"{node.where}.steps[{i}]", X)
        if first is None:
            first = last
        names.append(last.name)
    if first is None or last is None:
        raise node.fail("every step is 'passthrough': nothing to serve")
    # Pipeline exposes only the methods it names (not predict_joint_log_proba)
    outputs = {m: o for m, o in last.outputs.items() if m != "predict_joint_log_proba"}
    return Built(
        f"Pipeline({' -> '.join(names)})",
        last.kind,
        outputs,
        first.n_features_in,
        feature_names_in=first.feature_names_in,
        first_name=first.first_name,
        strings=first.strings,
        string_prefix=first.string_prefix,
        warn_name=first.warn_name,
        names_required=first.names_required,
    )
