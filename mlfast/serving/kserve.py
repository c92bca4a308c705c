"""KServe's V1 protocol and the Open Inference Protocol (V2).

V1: ``GET /v1/models``, ``GET /v1/models/{name}``, ``POST
/v1/models/{name}:predict`` with ``{"instances": [...]}``.

V2 (KServe, Triton, MLServer): server and model metadata, liveness and
readiness, and ``.../infer`` with one input tensor (FP16/32/64, INT8-64,
UINT8-64, BOOL; shape ``[rows, features]``, data flat or nested).  Outputs
are named after the model's methods: ``predict`` (the default) and
``predict_proba``, plus ``decision_function`` and ``transform`` where the
estimator has them; the request's ``outputs`` chooses, as in MLServer's
scikit-learn runtime.  Triton's binary tensor data extension is read and
written (``tritonclient.http`` uses it by default): the body is a JSON
header of ``Inference-Header-Content-Length`` bytes followed by raw
little-endian tensors whose sizes ``parameters.binary_data_size`` gives.
"""
from __future__ import annotations

import math
import struct
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from pydantic import BaseModel, Field

import mlfast
from mlfast.serving import codec
from mlfast.serving.core import (
    HttpError,
    ModelRegistry,
    Request,
    Response,
    Route,
    ServedModel,
    dumps,
    json_response,
)
from mlfast.serving.schemas import (
    InstancesBody,
    PredictionsBody,
    RepositoryIndex,
    RepositoryIndexRequest,
    RepositoryModel,
    RepositoryRequest,
)

TAG_V1 = "KServe V1"
TAG_V2 = "Open Inference Protocol (V2)"
HEADER_LENGTH = "inference-header-content-length"

# V2 datatypes and their little-endian numpy dtypes (the binary extension's
# byte order).
_DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_NAMES = {dt.str.lstrip("<|=>"): name for name, dt in _DTYPES.items()}
_OUTPUT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "USO":
        return "BYTES"
    name = _NAMES.get(array.dtype.str.lstrip("<|=>"))
    if name is None:
        raise HttpError(500, f"cannot send dtype {array.dtype} as a V2 tensor")
    return name


# -- schemas (OpenAPI only) ------------------------------------------------------------

Datatype = str
Data = Union[List[Any], Any]


class RequestInput(BaseModel):
    name: str = Field(examples=["input"])
    shape: List[int] = Field(description="[rows, features]")
    datatype: Datatype = Field(description="FP32, FP64, INT64, ...", examples=["FP64"])
    parameters: Optional[Dict[str, Any]] = None
    data: Optional[Data] = Field(default=None, description="row-major, flat or nested")


class RequestOutput(BaseModel):
    name: str = Field(description="'predict' or 'predict_proba' (or another method of the model)")
    parameters: Optional[Dict[str, Any]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    inputs: List[RequestInput]
    outputs: Optional[List[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: List[int]
    datatype: Datatype
    parameters: Optional[Dict[str, Any]] = None
    data: Optional[List[Any]] = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    outputs: List[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: List[int]


class ModelMetadata(BaseModel):
    name: str
    versions: List[str]
    platform: str
    inputs: List[TensorMetadata]
    outputs: List[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: List[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ModelList(BaseModel):
    models: List[str]


# -- V2 tensors ------------------------------------------------------------------------


def _shape(value: Any, where: str) -> Tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise HttpError(400, f"{where}.shape must be a list of non-negative integers, got {value!r}")
    return tuple(value)


def decode_input(tensor: Any, binary: memoryview, offset: int, where: str) -> Tuple[np.ndarray, int]:
    """One input tensor to a 2-D batch; returns it and the next binary offset."""
    if not isinstance(tensor, dict):
        raise HttpError(400, f"{where} must be an object with name, shape, datatype and data")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise HttpError(400, f"{where} lacks {key!r}")
    shape = _shape(tensor["shape"], where)
    datatype = tensor["datatype"]
    dtype = _DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise HttpError(400, f"{where}.datatype {datatype!r} is not supported: send one of "
                             f"{', '.join(_DTYPES)}")
    count = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HttpError(400, f"{where}.parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0:
            raise HttpError(400, f"{where}.parameters.binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise HttpError(400, f"{where} has binary_data_size {size} but only "
                                 f"{len(binary) - offset} bytes of binary data are left")
        if size != count * dtype.itemsize:
            raise HttpError(400, f"{where} has binary_data_size {size}, but shape {list(shape)} of "
                                 f"{datatype} takes {count * dtype.itemsize} bytes")
        array = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape)
        offset += size
    else:
        if "data" not in tensor:
            raise HttpError(400, f"{where} lacks 'data' (and has no binary_data_size)")
        array = codec.to_array(tensor["data"], f"{where}.data")
        if array.size != count:
            raise HttpError(400, f"{where}.data has {array.size} values but shape {list(shape)} "
                                 f"needs {count}")
        array = array.reshape(shape).astype(dtype, copy=False)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    elif array.ndim != 2:
        raise HttpError(400, f"{where}.shape {list(shape)} must be [rows, features]")
    return array, offset


def _bytes_tensor(array: np.ndarray) -> bytes:
    """Triton's BYTES serialisation: each element's length (uint32, little
    endian) then its UTF-8 bytes."""
    parts = []
    for item in array.ravel().tolist():
        b = item.encode() if isinstance(item, str) else str(item).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def _wants_binary(spec: Optional[dict], default: bool) -> bool:
    if spec is None:
        return default
    params = spec.get("parameters") or {}
    value = params.get("binary_data") if isinstance(params, dict) else None
    return default if value is None else bool(value)


def infer(served: ServedModel, request: Request) -> Response:
    body = request.body
    header_length = request.header(HEADER_LENGTH)
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise HttpError(400, f"Inference-Header-Content-Length {header_length!r} is not an integer") from None
        if not 0 <= n <= len(body):
            raise HttpError(400, f"Inference-Header-Content-Length {n} is outside the body's "
                                 f"{len(body)} bytes")
        doc = codec.parse_json(body[:n], what="inference header")
        binary = memoryview(body)[n:]
    else:
        doc = codec.parse_json(body)
        binary = memoryview(b"")
    if not isinstance(doc, dict):
        raise HttpError(400, "expected an inference request object {\"inputs\": [...]}")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(400, "missing key 'inputs': expected {\"inputs\": [{\"name\", \"shape\", "
                             "\"datatype\", \"data\"}]}")
    if len(inputs) != 1:
        raise HttpError(400, f"expected 1 input tensor of shape [rows, {served.n_features}], "
                             f"got {len(inputs)}")
    X, _ = decode_input(inputs[0], binary, 0, "inputs[0]")

    request_params = doc.get("parameters") or {}
    binary_default = bool(isinstance(request_params, dict) and request_params.get("binary_data_output"))
    requested = doc.get("outputs")
    if requested is None:
        requested = [{"name": "predict"}]
    if not isinstance(requested, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                    for o in requested):
        raise HttpError(400, "'outputs' must be a list of objects with a 'name'")

    outputs, chunks = [], []
    for spec in requested:
        name = spec["name"]
        if name not in _OUTPUT_METHODS or (name != "predict" and name not in served.methods):
            raise HttpError(400, f"unknown output {name!r}: model {served.name!r} has outputs "
                                 f"{', '.join(output_names(served))}")
        result = served.predict(X) if name == "predict" else served.method(name)(X)
        if isinstance(result, list):
            # a multi-output classifier's probabilities: one array per
            # output, sent side by side as one [rows, sum of classes] tensor
            result = np.hstack(result)
        result = np.ascontiguousarray(result)
        tensor = {"name": name, "shape": list(result.shape), "datatype": datatype_of(result)}
        if _wants_binary(spec, binary_default):
            raw = _bytes_tensor(result) if tensor["datatype"] == "BYTES" else \
                result.astype(result.dtype.newbyteorder("<"), copy=False).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = result.ravel()
        outputs.append(tensor)

    answer = {"model_name": served.name, "model_version": served.version, "outputs": outputs}
    if "id" in doc:
        answer["id"] = doc["id"]
    header = dumps(answer)
    if not chunks:
        return Response(200, header, "application/json")
    return Response(200, header + b"".join(chunks), "application/octet-stream",
                    {"Inference-Header-Content-Length": str(len(header))})


def output_names(served: ServedModel) -> List[str]:
    return ["predict"] + [m for m in _OUTPUT_METHODS[1:] if m in served.methods and
                          not (m == "transform" and served.kind == "transformer")]


def model_metadata(served: ServedModel, versions: Optional[List[str]] = None) -> dict:
    n = served.n_features if served.n_features is not None else -1
    outputs = []
    for name in output_names(served):
        spec = served.output_spec(name)
        if spec is None:
            outputs.append({"name": name, "datatype": "FP64", "shape": [-1, -1]})
            continue
        dtype, row_shape = spec
        datatype = "BYTES" if dtype.kind in "USO" else datatype_of(np.empty(0, dtype))
        outputs.append({"name": name, "datatype": datatype, "shape": [-1, *row_shape]})
    return {
        "name": served.name,
        "versions": versions or [served.version],
        "platform": "mlfast",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, n]}],
        "outputs": outputs,
    }


def _repository_parameters(request: Request) -> Dict[str, Any]:
    """The optional body of the repository routes: ``{"parameters": {...}}``."""
    if not request.body.strip():
        return {}
    doc = codec.parse_json(request.body)
    if not isinstance(doc, dict):
        raise HttpError(400, "expected an object {\"parameters\": {...}}")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise HttpError(400, "'parameters' must be an object")
    return {**{k: v for k, v in doc.items() if k != "parameters"}, **params}


def repository_routes(registry: ModelRegistry, repository: Any) -> List[Route]:
    """The Open Inference Protocol's model repository extension, over a
    ``serving.repository.ModelRepository``; admin routes.

    ``POST /v2/repository/index`` (``{"ready": true}`` for the served ones
    only) lists every version with its state and the reason it is not
    served; ``POST /v2/repository/models/{name}/load`` loads what is on disk
    (``{"parameters": {"version": "3"}}`` for one version; ``"pin": true``
    serves it by default, ``"pin": false`` unpins); ``.../unload`` unloads
    a version (``{"parameters": {"version": "3"}}``: a rollback) or the
    whole model.
    """

    def version_of(params: Dict[str, Any]) -> Optional[str]:
        version = params.get("version")
        if version is None:
            return None
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise HttpError(400, f"'version' must be a string, got {version!r}")
        return str(version)

    def index(request: Request) -> Response:
        params = _repository_parameters(request)
        entries = repository.index()
        if params.get("ready"):
            entries = [e for e in entries if e["state"] == "READY"]
        return json_response(entries)

    def load(request: Request) -> Response:
        params = _repository_parameters(request)
        pin = params.get("pin")
        if pin is not None and not isinstance(pin, bool):
            raise HttpError(400, f"'pin' must be true or false, got {pin!r}")
        answer = repository.load(request.params["name"], version_of(params), pin)
        registry.for_request(request, request.params["name"])
        return json_response(answer)

    def unload(request: Request) -> Response:
        params = _repository_parameters(request)
        answer = repository.unload(request.params["name"], version_of(params))
        if answer["versions"]:
            registry.for_request(request, request.params["name"])
        return json_response(answer)

    names = {"name": registry.default_name or "model"}
    tag = "Model repository (V2 extension)"
    return [
        Route("POST", "/v2/repository/index", index, "v2_repository_index", tag=tag,
              summary="List the repository's models and versions", access="admin",
              request_schema=RepositoryIndexRequest, response_schema=RepositoryIndex,
              examples={"application/json": {"ready": False}}),
        Route("POST", "/v2/repository/models/{name}/load", load, "v2_repository_load", tag=tag,
              summary="Load (or pin) a model's versions from disk", access="admin",
              request_schema=RepositoryRequest, response_schema=RepositoryModel,
              param_examples=names,
              examples={"application/json": {"parameters": {"version": "2", "pin": True}}}),
        Route("POST", "/v2/repository/models/{name}/unload", unload, "v2_repository_unload",
              tag=tag, summary="Unload a version (roll back) or the whole model", access="admin",
              request_schema=RepositoryRequest, response_schema=RepositoryModel,
              param_examples=names, examples={"application/json": {"parameters": {"version": "2"}}}),
    ]


def routes(registry: ModelRegistry, repository: Any = None) -> List[Route]:
    served = registry.default

    def model_of(request: Request) -> ServedModel:
        return registry.for_request(request, request.params["name"], request.params.get("version"))

    # V1
    def v1_list(request: Request) -> Response:
        return json_response({"models": registry.names()})

    def v1_model(request: Request) -> Response:
        model = model_of(request)
        if not model.ready:
            raise HttpError(503, f"model {model.name!r} is not ready")
        return json_response({"name": model.name, "ready": True})

    def v1_predict(request: Request) -> Response:
        model = model_of(request)
        media = request.media_type
        if media not in ("", "application/json") and not media.endswith("+json"):
            raise HttpError(415, f"unsupported Content-Type {media!r}: send application/json")
        data = codec.parse_json(request.body)
        if not isinstance(data, dict) or "instances" not in data:
            raise HttpError(400, "missing key 'instances': expected {\"instances\": [[...], ...]}")
        X = codec.instances_to_matrix(data["instances"], model)
        return json_response({"predictions": model.predict(X)})

    # V2
    extensions = ["binary_tensor_data"] + (["model_repository"] if repository is not None else [])

    def v2_server(request: Request) -> Response:
        return json_response({"name": "mlfast", "version": mlfast.__version__,
                              "extensions": extensions})

    def v2_live(request: Request) -> Response:
        return json_response({"live": True})

    def v2_ready(request: Request) -> Response:
        if not registry.ready:
            raise HttpError(503, "not ready: the model is not loaded yet")
        return json_response({"ready": True})

    def v2_metadata(request: Request) -> Response:
        model = model_of(request)
        return json_response(model_metadata(model, registry.versions(model.name)))

    def v2_model_ready(request: Request) -> Response:
        model = model_of(request)
        if not model.ready:
            raise HttpError(503, f"model {model.name!r} is not ready")
        return json_response({"name": model.name, "ready": True})

    def v2_infer(request: Request) -> Response:
        return infer(model_of(request), request)

    names = {"name": served.name, "version": served.version}
    v2_example = {
        "inputs": [{"name": "input", "shape": [1, served.n_features or 1], "datatype": "FP64",
                    "data": [served.example_row()]}],
        "outputs": [{"name": n} for n in output_names(served)[:2]],
    }
    infer_doc = dict(tag=TAG_V2, request_schema=InferenceRequest, response_schema=InferenceResponse,
                     examples={"application/json": v2_example}, param_examples=names,
                     request_types=("application/json", "application/octet-stream"),
                     description="JSON tensors, or Triton's binary tensor data extension "
                                 "(`Inference-Header-Content-Length`).")
    out = [
        Route("GET", "/v1/models", v1_list, "v1_models", summary="List models", tag=TAG_V1,
              response_schema=ModelList),
        Route("GET", "/v1/models/{name}", v1_model, "v1_model", summary="Model readiness",
              tag=TAG_V1, response_schema=ModelReady, param_examples=names, access="open"),
        Route("POST", "/v1/models/{name}:predict", v1_predict, "v1_predict", summary="Predict",
              tag=TAG_V1, request_schema=InstancesBody, response_schema=PredictionsBody,
              examples={"application/json": {"instances": [served.example_row()]}},
              param_examples=names),
        Route("GET", "/v2", v2_server, "v2_server_metadata", summary="Server metadata", tag=TAG_V2,
              response_schema=ServerMetadata),
        Route("GET", "/v2/health/live", v2_live, "v2_live", summary="Server liveness", tag=TAG_V2,
              response_schema=Live, access="open"),
        Route("GET", "/v2/health/ready", v2_ready, "v2_ready", summary="Server readiness",
              tag=TAG_V2, response_schema=Ready, access="open"),
    ]
    for prefix, suffix in (("/v2/models/{name}", ""), ("/v2/models/{name}/versions/{version}", "_version")):
        out += [
            Route("GET", prefix, v2_metadata, "v2_model_metadata" + suffix, summary="Model metadata",
                  tag=TAG_V2, response_schema=ModelMetadata, param_examples=names),
            Route("GET", prefix + "/ready", v2_model_ready, "v2_model_ready" + suffix,
                  summary="Model readiness", tag=TAG_V2, response_schema=ModelReady,
                  param_examples=names, access="open"),
            Route("POST", prefix + "/infer", v2_infer, "v2_infer" + suffix, summary="Inference",
                  **infer_doc),
        ]
    if repository is not None:
        out += repository_routes(registry, repository)
    return out
