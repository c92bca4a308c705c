"""Shared configuration of the test suite.

Every test module is marked by what it exercises, from its name, so that a
subset can be run by marker (``make test-fast`` runs ``-m "engine and not
slow"``):

engine   the library in-process: the loader, the builders, the graph, kernels
serving  real servers, HTTP clients and the platforms' SDKs
slow     an engine module that takes more than about half a minute

A module that fits or predicts with scikit-learn's histogram boosting asks
for one OpenMP thread with ``pytestmark =
pytest.mark.usefixtures("one_openmp_thread")``.
"""

from __future__ import annotations

import pytest

SERVING = (
    "test_serving",
    "test_ops_",
    "test_apps",
    "test_cli",
    "test_docs_browser",
    "test_schemathesis",
    "test_tally",
)
SLOW = (
    "test_versions",
    "test_leaks",
    "test_parity_trees",
    "test_parity_ensembles",
    "test_parity_shared",
    "test_hostile_regressions",
    "test_benchmarks_smoke",
    "test_parity_neighbors",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module.startswith(SERVING):
            item.add_marker(pytest.mark.serving)
        else:
            item.add_marker(pytest.mark.engine)
            if module.startswith(SLOW):
                item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def one_openmp_thread():
    """scikit-learn's histogram boosting fits and predicts with OpenMP; on a
    shared 2-core machine its threads spin against everything else.  One
    thread gives the same answers (mlfast's own threads are not OpenMP)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield
