"""Loading the models a server serves: model files and directories, their
SHA-256 pins, and the names they are served under.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from pathlib import Path
from typing import Any, Optional, Union

import mlfast
from mlfast.formats import mlflow as mlflow_format
from mlfast.serving.registry import ServedModel

MODEL_FILE_NAMES = ("model.joblib", "model.pkl", "model.pickle", "model.skops")
#: what makes a directory a model: an MLflow model's MLmodel (which names its
#: own file) first, then a model file
MODEL_ENTRIES = (mlflow_format.MLMODEL,) + MODEL_FILE_NAMES


def resolve_model_path(path: Union[str, os.PathLike]) -> Path:
    """A model file, or a directory holding one of ``MODEL_FILE_NAMES`` (as
    SageMaker's /opt/ml/model and Vertex AI's artifact directory do); for an
    MLflow model (a directory with ``MLmodel``, a ``file:``, ``runs:/`` or
    ``models:/`` URI), its MLmodel file."""
    if isinstance(path, str) and path.startswith(("file:", "runs:/", "models:/")):
        path = mlflow_format.locate(path)
    p = Path(path)
    if p.is_dir():
        for name in MODEL_ENTRIES:
            if (p / name).is_file():
                return p / name
        found = sorted(
            x.name for x in p.iterdir() if x.suffix in (".joblib", ".pkl", ".pickle", ".skops")
        )
        if len(found) == 1:
            return p / found[0]
        raise FileNotFoundError(
            f"no model file in {p}: expected one of {', '.join(MODEL_FILE_NAMES)}"
            + (f" (found {', '.join(found)})" if found else "")
        )
    if not p.exists():
        raise FileNotFoundError(f"model file {p} does not exist")
    return p


class ModelIntegrityError(ValueError):
    """A model file whose SHA-256 is not the one it was pinned to."""


def _check_inside(path: Path, root: Path) -> None:
    """Refuse a file that resolves (through links) to outside ``root``: a
    repository's ``model.pkl -> /proc/self/environ`` would have its first
    bytes quoted in the load error the admin index shows."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, top]) != top:
        raise ValueError(f"{path} links to {real}, outside {root}: refused")


def _sidecar_sha256(path: Path, within: Optional[Path] = None) -> Optional[str]:
    side = path.with_name(path.name + ".sha256")
    if within is not None and os.path.lexists(side):
        _check_inside(side, within)
    try:
        text = side.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text.split()[0].lower() if text else None


def load_served(
    path: Union[str, os.PathLike],
    name: str,
    version: str = "1",
    *,
    sha256: Optional[str] = None,
    within: Optional[Union[str, os.PathLike]] = None,
) -> ServedModel:
    """Read a model file once, check its SHA-256 (``sha256``, else the
    ``sha256sum`` line of a ``<file>.sha256`` beside it) before anything
    parses it, then load those very bytes: no second read for a swapped
    file to slip into.  With ``within`` (a model repository), the file and
    its ``.sha256`` must not resolve to outside that directory."""
    path = Path(path)
    root = Path(within) if within is not None else None
    if root is not None:
        _check_inside(path, root)
    info = None
    start = time.perf_counter()
    if path.name == mlflow_format.MLMODEL:
        # an MLflow model: MLmodel names the file; the pin is that file's
        data, info = mlflow_format.read(path.parent, mlfast.DEFAULT_MAX_MEMORY)
        model_file = Path(info.model_file)
        if root is not None:
            _check_inside(model_file, root)
    else:
        data = path.read_bytes()
        model_file = path
    digest = hashlib.sha256(data).hexdigest()
    expected = (sha256 or _sidecar_sha256(model_file, root) or "").strip().lower()
    if expected and not hmac.compare_digest(digest, expected):
        raise ModelIntegrityError(
            f"{model_file} has SHA-256 {digest}, but {expected} was "
            "expected: it is not the file that was pinned"
        )
    model: Any
    if info is not None:
        model = mlfast._from_mlflow(data, info)
        path = path.parent
    else:
        model = mlfast.loads(data, source=str(path))
    served = ServedModel(model, name, version, str(path))
    served.load_seconds = time.perf_counter() - start
    served.file_size = len(data)
    served.sha256 = digest
    return served


# Model names and versions go into URLs (/v2/models/{name}) and into the
# X-Model-Name/X-Model-Version headers of every answer, which carry ASCII
# only: the repository's directory names follow the same rule.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_model_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not MODEL_NAME_RE.match(value):
        raise ValueError(
            f"model {what} {value!r} is not usable: 1 to 128 ASCII letters, digits, "
            "'_', '.' or '-', starting with a letter or digit (it goes into URLs "
            "and response headers)"
        )
    return value


def name_from_file(path: Union[str, os.PathLike]) -> str:
    """A model name from a file name: its stem, with what a name cannot
    hold replaced by '_' ('modèle v2.pkl' -> 'mod_le_v2')."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)[:128].lstrip("_.-")
    return stem or "model"


def served_model(
    model_or_path: Any,
    name: Optional[str] = None,
    version: str = "1",
    *,
    sha256: Optional[str] = None,
) -> ServedModel:
    """A ServedModel from a Model or a path (file or directory); ``sha256``
    pins the file's hash (checked before it is parsed).  An explicit name or
    version must follow ``MODEL_NAME_RE``; a name taken from the file is
    made to."""
    if name is not None:
        check_model_name("name", name)
    check_model_name("version", version)
    if isinstance(model_or_path, mlfast.Model):
        source = getattr(model_or_path, "_source", None)
        default_name = name_from_file(source) if source else "model"
        return ServedModel(model_or_path, name or default_name, version, source)
    path = resolve_model_path(model_or_path)
    if name is None and path.name == mlflow_format.MLMODEL:
        # an MLflow model is named by its registered name, else its directory
        text = str(model_or_path)
        name = name_from_file(
            text.split("/")[1]
            if text.startswith("models:/") and text.count("/") == 2
            else path.parent.name
        )
    return load_served(path, name or name_from_file(path), version, sha256=sha256)
