"""Property-based API testing: schemathesis reads the FastAPI app's own
OpenAPI schema (``/openapi.json``) and sends every operation requests built
from it -- valid ones and ones that break the schema -- and no answer may be
a server error (5xx).

This is the bounded version for ``make test`` (a few examples per operation,
derandomized, well under a minute).  A longer run by hand:

    MLFAST_SCHEMATHESIS_EXAMPLES=500 .venv/bin/python -m pytest -q tests/test_schemathesis.py

or against a running server with schemathesis' CLI:

    .venv/bin/schemathesis run http://127.0.0.1:8000/openapi.json --checks not_a_server_error
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

import mlfast  # noqa: E402

EXAMPLES = int(os.environ.get("MLFAST_SCHEMATHESIS_EXAMPLES", "15"))


@schemathesis.serializer("application/x-npy")
def _to_npy(ctx, value):
    """NPY bodies: the generated value as an array when numpy can make a
    numeric one of it (rows of features), else as it comes: an .npy of an
    odd shape or dtype, or bytes that are no .npy at all."""
    import io
    import json

    import numpy as np

    if isinstance(value, dict) and "features" in value:
        value = value["features"]
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        array = None
    if array is None or array.dtype.hasobject:
        return json.dumps(value, default=str).encode()
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _app():
    from mlfast.serving import create_app

    return create_app(mlfast.demo_model_path(), framework="fastapi")


# built at collection: schemathesis.pytest.from_fixture (lazy) does not work
# with pytest 9 yet ('Function' object has no attribute '_nodeid')
schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 50,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])
