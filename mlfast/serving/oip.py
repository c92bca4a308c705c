"""The Open Inference Protocol (V2) of KServe, Triton and MLServer.

Server and model metadata, liveness and readiness, and ``.../infer`` with
one input tensor (FP16/32/64, INT8-64, UINT8-64, BOOL; shape ``[rows,
features]``, data flat or nested).  Outputs are named after the model's
methods: ``predict`` (the default) and ``predict_proba``, plus
``decision_function`` and ``transform`` where the estimator has them; the
request's ``outputs`` chooses, as in MLServer's scikit-learn runtime.
Triton's binary tensor data extension is read and written
(``tritonclient.http`` uses it by default): tensors are read and written by
the codec (``codec.decode_tensor``, ``codec.encode_tensor``).  The model
repository extension's routes are ``serving.repository_routes``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import mlfast
from mlfast.serving import codec
from mlfast.serving.errors import InvalidInput, NotReady
from mlfast.serving.http import Request, Response, Route, dumps, json_response
from mlfast.serving.kserve_v1 import model_ready
from mlfast.serving.registry import ServedModel
from mlfast.serving.schemas import (
    InferenceRequest,
    InferenceResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)
from mlfast.serving.service import Service

PROTOCOL = "kserve"
TAG = "Open Inference Protocol (V2)"
_OUTPUT_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
)


def _wants_binary(spec: Optional[dict], default: bool) -> bool:
    if spec is None:
        return default
    params = spec.get("parameters") or {}
    value = params.get("binary_data") if isinstance(params, dict) else None
    return default if value is None else bool(value)


def infer(served: ServedModel, request: Request) -> Response:
    doc, binary = codec.split_inference_body(request.body, request.header(codec.HEADER_LENGTH))
    if not isinstance(doc, dict):
        raise InvalidInput('expected an inference request object {"inputs": [...]}')
    # the id is sent back as it came: it must be what the protocol says it
    # is, a string (a list nested 300 deep is more than orjson writes)
    if "id" in doc and not isinstance(doc["id"], str):
        raise InvalidInput(f"'id' must be a string, got {codec.show(doc['id'])}")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(
            'missing key \'inputs\': expected {"inputs": [{"name", "shape", "datatype", "data"}]}'
        )
    if getattr(served, "documents", False):
        # a text model: one BYTES tensor of documents, [rows] or [rows, 1]
        X = codec.documents_from_tensors(inputs, binary)
    elif getattr(served, "tables", False):
        # strings: BYTES tensors, one per column or one for all of them
        X = codec.table_from_tensors(inputs, binary, served)
    else:
        if len(inputs) != 1:
            raise InvalidInput(
                f"expected 1 input tensor of shape [rows, {served.n_features}], got {len(inputs)}"
            )
        X, _ = codec.decode_tensor(inputs[0], binary, 0, "inputs[0]")

    request_params = doc.get("parameters") or {}
    binary_default = bool(
        isinstance(request_params, dict) and request_params.get("binary_data_output")
    )
    requested = doc.get("outputs")
    if requested is None:
        requested = [{"name": "predict"}]
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")

    outputs, chunks = [], []
    for spec in requested:
        name = spec["name"]
        if name not in _OUTPUT_METHODS or (name != "predict" and name not in served.methods):
            raise InvalidInput(
                f"unknown output {name!r}: model {served.name!r} has outputs "
                f"{', '.join(output_names(served))}"
            )
        result = served.predict(X) if name == "predict" else served.method(name)(X)
        tensor, raw = codec.encode_tensor(name, result, _wants_binary(spec, binary_default))
        if raw is not None:
            chunks.append(raw)
        outputs.append(tensor)

    answer = {"model_name": served.name, "model_version": served.version, "outputs": outputs}
    if "id" in doc:
        answer["id"] = doc["id"]
    header = dumps(answer)
    if not chunks:
        return Response(200, header, "application/json")
    return Response(
        200,
        header + b"".join(chunks),
        "application/octet-stream",
        {"Inference-Header-Content-Length": str(len(header))},
    )


def output_names(served: ServedModel) -> List[str]:
    return ["predict"] + [
        m
        for m in _OUTPUT_METHODS[1:]
        if m in served.methods and not (m == "transform" and served.kind == "transformer")
    ]


def model_metadata(served: ServedModel, versions: Optional[List[str]] = None) -> dict:
    n = served.n_features if served.n_features is not None else -1
    outputs = []
    for name in output_names(served):
        spec = served.output_spec(name)
        if spec is None:
            outputs.append({"name": name, "datatype": "FP64", "shape": [-1, -1]})
            continue
        dtype, row_shape = spec
        outputs.append(
            {"name": name, "datatype": codec.datatype_of(dtype), "shape": [-1, *row_shape]}
        )
    return {
        "name": served.name,
        "versions": versions or [served.version],
        "platform": "mlfast",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, n]}],
        "outputs": outputs,
    }


def routes(service: Service) -> List[Route]:
    registry = service.registry
    served = registry.default
    extensions = ["binary_tensor_data"] + (
        ["model_repository"] if service.repository is not None else []
    )

    def model_of(request: Request) -> ServedModel:
        return registry.for_request(request, request.params["name"], request.params.get("version"))

    def server(request: Request) -> Response:
        return json_response(
            {"name": "mlfast", "version": mlfast.__version__, "extensions": extensions}
        )

    def live(request: Request) -> Response:
        return json_response({"live": True})

    def ready(request: Request) -> Response:
        if not registry.ready:
            raise NotReady("not ready: the model is not loaded yet")
        return json_response({"ready": True})

    def metadata(request: Request) -> Response:
        model = model_of(request)
        return json_response(model_metadata(model, registry.versions(model.name)))

    def infer_route(request: Request) -> Response:
        return infer(model_of(request), request)

    names = {"name": served.name, "version": served.version}
    example = {
        "inputs": [
            {
                "name": "input",
                "shape": [1, served.n_features or 1],
                "datatype": "FP64",
                "data": [served.example_row()],
            }
        ],
        "outputs": [{"name": n} for n in output_names(served)[:2]],
    }
    # the Route fields the inference routes share
    infer_doc: Dict[str, Any] = dict(
        tag=TAG,
        request_schema=InferenceRequest,
        response_schema=InferenceResponse,
        examples={"application/json": example},
        param_examples=names,
        request_types=("application/json", "application/octet-stream"),
        description="JSON tensors, or Triton's binary tensor data extension "
        "(`Inference-Header-Content-Length`).",
    )
    out = [
        Route(
            "GET",
            "/v2",
            server,
            "v2_server_metadata",
            summary="Server metadata",
            tag=TAG,
            response_schema=ServerMetadata,
        ),
        Route(
            "GET",
            "/v2/health/live",
            live,
            "v2_live",
            summary="Server liveness",
            tag=TAG,
            response_schema=Live,
            access="open",
        ),
        Route(
            "GET",
            "/v2/health/ready",
            ready,
            "v2_ready",
            summary="Server readiness",
            tag=TAG,
            response_schema=Ready,
            access="open",
        ),
    ]
    model_ready_handler = model_ready(registry)
    for prefix, suffix in (
        ("/v2/models/{name}", ""),
        ("/v2/models/{name}/versions/{version}", "_version"),
    ):
        out += [
            Route(
                "GET",
                prefix,
                metadata,
                "v2_model_metadata" + suffix,
                summary="Model metadata",
                tag=TAG,
                response_schema=ModelMetadata,
                param_examples=names,
            ),
            Route(
                "GET",
                prefix + "/ready",
                model_ready_handler,
                "v2_model_ready" + suffix,
                summary="Model readiness",
                tag=TAG,
                response_schema=ModelReady,
                param_examples=names,
                access="open",
            ),
            Route(
                "POST",
                prefix + "/infer",
                infer_route,
                "v2_infer" + suffix,
                summary="Inference",
                **infer_doc,
            ),
        ]
    return out


__all__ = ["PROTOCOL", "routes", "infer", "model_metadata", "output_names"]
