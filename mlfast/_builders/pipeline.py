"""Pipeline: its steps' parts joined into one chain, run in C end to end."""
from __future__ import annotations

from mlfast._builders import Builders, Node, Parts, register


def _is_passthrough(est) -> bool:
    return est is None or est == "passthrough"


@register("sklearn.pipeline", "Pipeline")
def build_pipeline(node: Node, builders: Builders) -> Parts:
    steps = node.get("steps")
    if not isinstance(steps, list) or not steps:
        raise node.fail("steps must be a non-empty list of (name, estimator)")
    joined = Parts(names=[])
    for i, item in enumerate(steps):
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise node.fail(f"steps[{i}] is not a (name, estimator) pair")
        if _is_passthrough(item[1]):
            continue
        where = f"{node.where}.steps[{i}]"
        if joined.final is not None:
            raise node.fail(
                f"steps[{i}] follows a final estimator ({joined.final.name}); only the "
                "last step may be one"
            )
        part = builders.build(item[1], where)
        if joined.n_features_in is None:
            joined.n_features_in = part.n_features_in
            joined.feature_names_in = part.feature_names_in
        joined.steps.extend(part.steps)
        joined.final = part.final
        joined.names.extend(part.names)
    if joined.n_features_in is None:
        raise node.fail("every step is 'passthrough': nothing to serve")
    joined.names = [f"Pipeline({' -> '.join(joined.names)})"]
    return joined
