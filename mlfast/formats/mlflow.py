"""MLflow model directories (``mlflow.sklearn.save_model`` / ``log_model``).

A directory holding an ``MLmodel`` file (YAML) whose ``flavors.sklearn``
names the estimator's file (``pickled_model``) and how it was written
(``serialization_format``: ``skops`` from MLflow 3, ``cloudpickle`` or
``pickle`` before).  The file is read by mlfast's own loaders: a skops zip
as ``mlfast.formats.skops`` reads it, a pickle or cloudpickle through the
restricted VM (a cloudpickle of a scikit-learn estimator is an ordinary
pickle; a class or function cloudpickle wrote by value is user code and is
refused).  MLflow is never imported.

``MLmodel`` is read with PyYAML's ``safe_load`` after its size is checked;
the model file must resolve (through links) to inside the directory.  The
signature (``signature.inputs``, a JSON string of ``{name, type,
required}`` columns or a tensor spec) is kept to check requests.

Where a model is: a directory, a ``file:`` URI, ``runs:/<run_id>/<path>``
or ``models:/<name>/<version>`` (``latest`` too) against a local file
tracking store (``MLFLOW_TRACKING_URI`` when it is local, else ``./mlruns``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlparse

from mlfast.errors import ModelFormatError, UnsafeModelError, UnsupportedModelError

MLMODEL = "MLmodel"
#: an MLmodel file is a page of YAML; a signature of 10,000 columns stays far below this
MAX_MLMODEL = 4 << 20
#: a registry's meta.yaml is a few lines
MAX_META = 64 << 10
#: MLflow's signature types of columns, and the numpy kinds each accepts
COLUMN_TYPES = {
    "boolean": "b",
    "integer": "biu",
    "long": "biu",
    "float": "biuf",
    "double": "biuf",
    "string": "OUS",
    "binary": "OS",
    "datetime": "M",
}
_OTHER_FLAVOURS = (
    "xgboost",
    "lightgbm",
    "catboost",
    "onnx",
    "pytorch",
    "tensorflow",
    "keras",
    "spark",
    "h2o",
    "statsmodels",
    "prophet",
    "transformers",
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,255}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


@dataclass
class Column:
    """One input column of an MLflow signature."""

    name: Optional[str]
    type: str
    required: bool = True


@dataclass
class MlflowModel:
    """What an MLmodel file says about the model next to it."""

    directory: str
    model_file: str
    serialization_format: str
    flavour: str = "sklearn"
    run_id: Optional[str] = None
    model_uuid: Optional[str] = None
    mlflow_version: Optional[str] = None
    sklearn_version: Optional[str] = None
    utc_time_created: Optional[str] = None
    inputs: Optional[List[Column]] = None
    tensor_input: Optional[Dict[str, Any]] = None
    outputs: Optional[Any] = None
    params: Optional[List[Dict[str, Any]]] = None
    flavours: List[str] = field(default_factory=list)
    #: the method MLflow's pyfunc calls (``pyfunc_predict_fn`` at save time)
    predict_fn: str = "predict"

    @property
    def column_names(self) -> Optional[List[str]]:
        if not self.inputs or any(c.name is None for c in self.inputs):
            return None
        return [str(c.name) for c in self.inputs]

    def summary(self) -> Dict[str, Any]:
        """Plain data for the server's ``GET /`` and the Model's display."""
        out: Dict[str, Any] = {
            "flavor": self.flavour,
            "run_id": self.run_id,
            "serialization_format": self.serialization_format,
            "predict_fn": self.predict_fn,
            "mlflow_version": self.mlflow_version,
        }
        if self.inputs is not None:
            out["signature"] = {
                "inputs": [
                    {"name": c.name, "type": c.type, "required": c.required} for c in self.inputs
                ]
            }
        elif self.tensor_input is not None:
            out["signature"] = {"inputs": [self.tensor_input]}
        if self.params:
            out.setdefault("signature", {})["params"] = self.params
        return out


def _yaml(path: Path, limit: int, what: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise UnsupportedModelError(
            f"reading {what} needs PyYAML (pip install 'mlfast[mlflow]')"
        ) from None
    try:
        with open(path, "rb") as fh:
            text = fh.read(limit + 1)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {what} ({path}): {exc.strerror}") from None
    if len(text) > limit:
        raise ModelFormatError(f"{what} ({path}) is larger than {limit} bytes: not an MLflow file")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (CSafeLoader/SafeLoader)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{what} ({path}) is not valid YAML: {first}") from None


def _show(value: Any) -> str:
    """A value from the file for a message: a string shortened, anything else
    by its type only (a YAML alias bomb formatted with str() would expand)."""
    if isinstance(value, str):
        return repr(value[:60])
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _text(value: Any, what: str, where: str, optional: bool = True) -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise ModelFormatError(f"{where}: {what} is {_show(value)}, expected a string")
    return value


def _signature(raw: Any, where: str) -> Tuple[Optional[List[Column]], Optional[dict], Any, Any]:
    """(columns, tensor spec, outputs, params) of MLmodel's ``signature``."""
    if raw is None:
        return None, None, None, None
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{where}: signature is a {type(raw).__name__}, expected a mapping")

    def parse(key: str) -> Any:
        text = raw.get(key)
        if text is None:
            return None
        if not isinstance(text, str) or len(text) > MAX_MLMODEL:
            raise ModelFormatError(f"{where}: signature.{key} is not a JSON string")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise ModelFormatError(f"{where}: signature.{key} is not valid JSON") from None

    inputs, outputs, params = parse("inputs"), parse("outputs"), parse("params")
    columns: Optional[List[Column]] = None
    tensor = None
    if inputs is not None:
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(c, dict) for c in inputs)
        ):
            raise ModelFormatError(f"{where}: signature.inputs is not a list of column specs")
        if inputs[0].get("type") == "tensor":
            if len(inputs) != 1 or not isinstance(inputs[0].get("tensor-spec"), dict):
                raise UnsupportedModelError(
                    f"{where}: a signature of several tensors; mlfast serves one table of rows"
                )
            tensor = inputs[0]
        else:
            columns = []
            for i, spec in enumerate(inputs):
                kind = spec.get("type")
                name = spec.get("name")
                if kind not in COLUMN_TYPES:
                    raise UnsupportedModelError(
                        f"{where}: signature input {i} ({_show(name)}) has type "
                        f"{_show(kind)}; mlfast reads columns of "
                        f"{', '.join(COLUMN_TYPES)}"
                    )
                if name is not None and (not isinstance(name, str) or len(name) > 1024):
                    raise ModelFormatError(
                        f"{where}: signature input {i} has a name that is not a string"
                    )
                required = spec.get("required", True)
                columns.append(Column(name, kind, bool(required)))
            names = [c.name for c in columns if c.name is not None]
            if len(set(names)) != len(names):
                raise ModelFormatError(f"{where}: signature inputs name a column twice")
    if params is not None and not (
        isinstance(params, list) and all(isinstance(p, dict) for p in params)
    ):
        raise ModelFormatError(f"{where}: signature.params is not a list of parameter specs")
    return columns, tensor, outputs, params


def _inside(path: Path, root: Path, what: str) -> Path:
    real, top = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, top]) != top:
        raise UnsafeModelError(f"{what} resolves to {real}, outside the model directory {top}")
    return Path(real)


def is_model_dir(path: Any) -> bool:
    """A directory with an MLmodel file, or a URI MLflow would load from."""
    if isinstance(path, str) and path.startswith(("models:/", "runs:/", "file:")):
        return True
    try:
        return os.path.isdir(path) and os.path.isfile(os.path.join(path, MLMODEL))
    except (TypeError, ValueError):
        return False


def read(directory: Path, max_memory: int) -> Tuple[bytes, MlflowModel]:
    """The model file's bytes and what MLmodel says, for a model directory."""
    where = str(directory / MLMODEL)
    doc = _yaml(directory / MLMODEL, MAX_MLMODEL, "MLmodel")
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where}: expected a YAML mapping, found {type(doc).__name__}")
    flavours = doc.get("flavors")
    if not isinstance(flavours, dict) or not flavours:
        raise ModelFormatError(f"{where}: no 'flavors' mapping: not an MLflow model")
    names = [k if isinstance(k, str) else _show(k) for k in flavours]
    sk = flavours.get("sklearn")
    if sk is None:
        others = [n for n in names if n in _OTHER_FLAVOURS]
        if others:
            raise UnsupportedModelError(
                f"{where}: an MLflow model of flavour {others[0]!r}, which mlfast does not "
                "serve yet (it serves the sklearn flavour)"
            )
        raise UnsupportedModelError(
            f"{where}: an MLflow model without the sklearn flavour (flavours: "
            f"{', '.join(names)[:200]}): a custom python_function model is user code, "
            "which mlfast does not run"
        )
    if not isinstance(sk, dict):
        raise ModelFormatError(f"{where}: flavors.sklearn is not a mapping")
    pickled = _text(sk.get("pickled_model"), "flavors.sklearn.pickled_model", where, optional=False)
    fmt = sk.get("serialization_format", "cloudpickle")
    if fmt not in ("skops", "cloudpickle", "pickle"):
        raise UnsupportedModelError(
            f"{where}: serialization_format {_show(fmt)}; mlfast "
            "reads skops, cloudpickle and pickle"
        )
    if os.path.isabs(str(pickled)) or "\0" in str(pickled):
        raise UnsafeModelError(
            f"{where}: pickled_model {_show(pickled)} is not a path inside the model directory"
        )
    model_path = _inside(
        directory / str(pickled), directory, f"{where}: pickled_model {_show(pickled)}"
    )
    try:
        size = model_path.stat().st_size
    except OSError:
        raise ModelFormatError(f"{where}: pickled_model {pickled!r} does not exist") from None
    if not model_path.is_file():
        raise ModelFormatError(f"{where}: pickled_model {pickled!r} is not a file")
    if size > max_memory:
        raise UnsupportedModelError(
            f"{model_path} is {size} bytes, past the memory budget of "
            f"{max_memory} bytes (pass a larger max_memory to load it)"
        )
    columns, tensor, outputs, params = _signature(doc.get("signature"), where)
    pyfunc = flavours.get("python_function")
    predict_fn = pyfunc.get("predict_fn") if isinstance(pyfunc, dict) else None
    if predict_fn is None:
        predict_fn = "predict"
    if predict_fn not in ("predict", "predict_proba", "predict_log_proba"):
        raise UnsupportedModelError(
            f"{where}: predict_fn {_show(predict_fn)}; mlfast answers "
            "with predict, predict_proba or predict_log_proba"
        )
    info = MlflowModel(
        directory=str(directory),
        model_file=str(model_path),
        serialization_format=str(fmt),
        run_id=_text(doc.get("run_id"), "run_id", where),
        model_uuid=_text(doc.get("model_uuid"), "model_uuid", where),
        mlflow_version=_text(doc.get("mlflow_version"), "mlflow_version", where),
        sklearn_version=_text(sk.get("sklearn_version"), "sklearn_version", where),
        utc_time_created=_text(doc.get("utc_time_created"), "utc_time_created", where),
        inputs=columns,
        tensor_input=tensor,
        outputs=outputs,
        params=params,
        flavours=names,
        predict_fn=predict_fn,
    )
    data = model_path.read_bytes()
    starts_zip = data[:4] == b"PK\x03\x04"
    if (fmt == "skops") != starts_zip:
        raise ModelFormatError(
            f"{where}: serialization_format is {fmt} but {pickled} "
            f"{'is' if starts_zip else 'is not'} a zip"
        )
    return data, info


def by_value_name(data: bytes) -> Optional[str]:
    """What cloudpickle wrote by value in a pickle (a class or function of
    the user's own code), for the refusal's message: the opcodes are listed
    by ``pickletools.genops``, which only parses.  None when it finds none."""
    import pickletools

    strings: List[str] = []
    kind = None
    try:
        for _op, arg, _pos in pickletools.genops(data):
            if not isinstance(arg, str):
                continue
            if kind is None:
                if arg == "cloudpickle.cloudpickle":
                    kind = ""
                continue
            if not kind:
                kind = arg
                continue
            strings.append(arg)
            if len(strings) > 40:
                break
    except (ValueError, EOFError, TypeError, UnicodeDecodeError):
        pass
    if kind == "_make_skeleton_class" and "type" in strings[:3]:
        after = strings.index("type") + 1
        if after < len(strings):
            return f"class {strings[after]!r}"
    if kind == "_make_function":
        for i, text in enumerate(strings[:-1]):
            if text.endswith((">", ".py")):  # the code's file name, then its name
                return f"function {strings[i + 1]!r}"
    return f"object ({kind})" if kind else None


# -- where a model is ---------------------------------------------------------------


def _file_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise UnsupportedModelError(f"{uri[:120]!r}: only local file: URIs are read")
    return Path(unquote(parsed.path))


def tracking_root(env: Optional[Mapping[str, str]] = None) -> Path:
    """The local file tracking store: MLFLOW_TRACKING_URI when it is a path
    or a file: URI, else ./mlruns (MLflow's default)."""
    uri = (env if env is not None else os.environ).get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return Path("mlruns")
    if uri.startswith("file:"):
        return _file_uri(uri)
    if "://" in uri or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        raise UnsupportedModelError(
            f"MLFLOW_TRACKING_URI is {uri[:80]!r}: mlfast resolves models:/ and runs:/ against "
            "a local file store only (give the model directory instead)"
        )
    return Path(uri)


def _registered(root: Path, name: str, version: str) -> Path:
    if not _NAME_RE.match(name) or ".." in name:
        raise ModelFormatError(f"models:/{name[:80]}/{version[:20]}: not a registered model name")
    model_dir = root / "models" / name
    if not model_dir.is_dir():
        raise ModelFormatError(
            f"models:/{name}/{version}: no registered model {name!r} in the tracking store {root}"
        )
    if version == "latest":
        found = [
            int(p.name[8:])
            for p in model_dir.iterdir()
            if re.fullmatch(r"version-[0-9]{1,9}", p.name)
        ]
        if not found:
            raise ModelFormatError(f"models:/{name}/latest: {name!r} has no versions")
        version = str(max(found))
    if not re.fullmatch(r"[0-9]{1,9}", version):
        raise ModelFormatError(f"models:/{name}/{version[:20]}: a version is a number or 'latest'")
    meta_path = model_dir / f"version-{version}" / "meta.yaml"
    if not meta_path.is_file():
        raise ModelFormatError(
            f"models:/{name}/{version}: no version {version} of {name!r} in "
            f"the tracking store {root}"
        )
    meta = _yaml(meta_path, MAX_META, "the registry's meta.yaml")
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{meta_path}: expected a YAML mapping")
    location = meta.get("storage_location") or meta.get("source")
    if not isinstance(location, str):
        raise ModelFormatError(f"{meta_path}: no storage_location")
    return locate(location, root)


def _run_artifacts(root: Path, run_id: str, rest: str) -> Path:
    if not _ID_RE.match(run_id) or ".." in rest.split("/"):
        raise ModelFormatError(f"runs:/{run_id[:40]}/{rest[:80]}: not a run id and path")
    for experiment in sorted(root.iterdir()) if root.is_dir() else []:
        run = experiment / run_id
        if run.is_dir():
            return _inside(run / "artifacts" / rest, run, f"runs:/{run_id}/{rest}")
    raise ModelFormatError(f"runs:/{run_id}/{rest}: no run {run_id} in the tracking store {root}")


def _logged_model(root: Path, model_id: str) -> Path:
    if not _ID_RE.match(model_id):
        raise ModelFormatError(f"models:/{model_id[:60]}: not a model id")
    for experiment in sorted(root.iterdir()) if root.is_dir() else []:
        artifacts = experiment / "models" / model_id / "artifacts"
        if artifacts.is_dir():
            return artifacts
    raise ModelFormatError(
        f"models:/{model_id}: no logged model {model_id} in the tracking store {root}"
    )


def locate(
    source: Any, root: Optional[Path] = None, env: Optional[Mapping[str, str]] = None
) -> Path:
    """The model directory that a path or URI names."""
    text = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(text, str):
        raise TypeError(f"expected a path or URI, got {type(source).__name__}")
    if text.startswith("file:"):
        return _file_uri(text)
    if text.startswith(("models:/", "runs:/")):
        root = root if root is not None else tracking_root(env)
        scheme, _, rest = text.partition(":/")
        parts = rest.strip("/").split("/")
        if scheme == "runs":
            if len(parts) < 2:
                raise ModelFormatError(f"{text[:120]}: expected runs:/<run_id>/<path>")
            return _run_artifacts(root, parts[0], "/".join(parts[1:]))
        if len(parts) == 1:
            return _logged_model(root, parts[0])  # MLflow 3: models:/<model_id>
        if len(parts) != 2:
            raise ModelFormatError(f"{text[:120]}: expected models:/<name>/<version>")
        return _registered(root, parts[0], parts[1])
    return Path(text)
