"""SageMaker's bring-your-own-container contract.

``GET /ping`` (200 once the model is loaded, else 503) and
``POST /invocations``; ``POST /endpoints/{endpoint_name}/invocations`` too,
which is the path boto3's ``sagemaker-runtime.invoke_endpoint`` POSTs to, so
the lesson's client works unchanged with ``endpoint_url`` pointed here (any
endpoint name: this server is the endpoint).

MLflow's scoring protocol (``dataframe_split``, ``dataframe_records``,
``inputs``, ``params``; ``instances`` and CSV with a header for a model from
an MLflow directory) shares ``/invocations``: ``serving.mlflow``.

Content types in: ``application/json`` (the lesson's ``{"features": ...}``,
``{"instances": ...}``, a bare array), ``text/csv``, ``application/x-npy``;
out (``Accept``): ``application/json`` or ``text/csv``.  Others: 415 and
406, as SageMaker's scikit-learn container answers.  The answer mirrors the
request's style.  ``X-Amzn-SageMaker-Custom-Attributes`` is echoed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from mlfast.serving import codec, mlflow
from mlfast.serving.http import (
    HttpError,
    Request,
    Response,
    Route,
    dumps,
    json_error,
    json_response,
)
from mlfast.serving.lesson import examples
from mlfast.serving.schemas import Health, PredictRequest, PredictResponse
from mlfast.serving.service import Service

PROTOCOL = "sagemaker"
TAG = "SageMaker"
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
# SageMaker real-time endpoints take payloads up to 6 MB.
MAX_BODY = 6 * 1024 * 1024

_CONTENT_TYPES = codec.JSON_TYPES + codec.CSV_TYPES + codec.NPY_TYPES
_ACCEPT_TYPES = ("application/json", "text/csv")


def sagemaker_error(
    status: int, message: str, headers: Optional[Dict[str, str]] = None
) -> Response:
    """``{"error": ...}``, plus what botocore reads from a SageMaker error:
    the ``x-amzn-ErrorType`` header and a ``message`` key, so a boto3 client
    sees our message in ``ClientError``."""
    error_type = "ValidationError" if status < 500 else "ModelError"
    if status == 503:
        error_type = "ServiceUnavailable"
    out = dict(headers or {})
    out["x-amzn-ErrorType"] = error_type
    # error_code and message are also what MLflow's scoring server answers
    code = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    return Response(
        status,
        dumps({"error": message, "message": message, "error_code": code}),
        "application/json",
        out,
    )


def routes(service: Service) -> List[Route]:
    registry = service.registry
    default_accept = (
        codec.choose_accept(
            service.env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
            _ACCEPT_TYPES,
            "application/json",
        )
        or "application/json"
    )
    served = registry.default

    def ping(request: Request) -> Response:
        if not registry.ready:
            return json_error(503, "the model is not loaded yet")
        return json_response({"status": "ok"})

    def invocations(request: Request) -> Response:
        model = registry.for_request(request)
        media = request.media_type or "application/json"
        if media not in _CONTENT_TYPES:
            raise HttpError(
                415, f"unsupported Content-Type {media!r}: send one of {', '.join(_CONTENT_TYPES)}"
            )
        accept = codec.choose_accept(request.header("accept"), _ACCEPT_TYPES, default_accept)
        if accept is None:
            raise HttpError(
                406,
                f"cannot answer Accept {request.header('accept')!r}: "
                f"this endpoint answers {' or '.join(_ACCEPT_TYPES)}",
            )
        headers = {}
        attributes = request.header(CUSTOM_ATTRIBUTES)
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
        # MLflow's scoring protocol shares the route: told apart by the body
        if media in codec.JSON_TYPES:
            data = codec.parse_json(request.body)
            if mlflow.claims(data, model):
                return json_response(mlflow.predict(data, model), headers=headers)
            X, style = codec.decode_payload(request.body, media, model, data)
        elif media in codec.CSV_TYPES and mlflow.claims_csv(request.body, model):
            return json_response(mlflow.predict_csv(request.body, model), headers=headers)
        else:
            X, style = codec.decode_payload(request.body, media, model)
        predictions = model.predict(X)
        if accept == "text/csv":
            return Response(200, codec.csv_bytes(predictions), "text/csv", headers)
        return json_response(codec.encode_predictions(predictions, style), headers=headers)

    # the Route fields the invocation routes share
    common: Dict[str, Any] = dict(
        tag=TAG,
        request_schema=PredictRequest,
        response_schema=PredictResponse,
        request_types=_CONTENT_TYPES,
        response_types=_ACCEPT_TYPES,
        examples=examples(served),
        max_body=MAX_BODY,
        on_error=sagemaker_error,
        description='JSON (`{"features": ...}`, `{"instances": ...}` or a bare array), CSV rows '
        "or an NPY array in; JSON or CSV out (`Accept`). The answer mirrors the request: "
        '`{"features": row}` → `{"prediction": ...}`, a bare array → a bare array.',
    )
    return [
        Route(
            "GET",
            "/ping",
            ping,
            "sagemaker_ping",
            summary="SageMaker health check",
            tag=TAG,
            response_schema=Health,
            access="open",
        ),
        Route(
            "POST",
            "/invocations",
            invocations,
            "sagemaker_invocations",
            summary="SageMaker invocations (container contract)",
            **common,
        ),
        Route(
            "POST",
            "/endpoints/{endpoint_name}/invocations",
            invocations,
            "sagemaker_invoke_endpoint",
            summary="SageMaker InvokeEndpoint (what boto3 POSTs)",
            param_examples={"endpoint_name": "your-endpoint-name"},
            **common,
        ),
    ]
