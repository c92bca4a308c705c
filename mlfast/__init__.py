"""mlfast: load scikit-learn model files safely in C and predict fast.

    >>> import mlfast
    >>> model = mlfast.load("model.pkl")      # the file joblib.dump wrote
    >>> model.predict([[5.1, 3.5, 1.4, 0.2]])

``load`` reads the file with a restricted pickle VM written in C: nothing the
file names is imported or called, so a hostile file raises
:class:`UnsafeModelError` instead of running code.  ``predict`` runs in C on
the caller's NumPy buffer and gives scikit-learn's answers.
"""

import os as _os
from pathlib import Path as _Path
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any
from typing import List as _List
from typing import Optional as _Optional
from typing import Union as _Union


def _import_core() -> _ModuleType:
    """_core links to libscipy_openblas from the scipy-openblas32 wheel and
    finds it through its rpath in a regular install.  Elsewhere (an editable
    install, an unusual layout) the library is loaded by path first; the
    package itself is not imported, which would cost ~90 ms of start-up in
    importlib.metadata."""
    try:
        from mlfast import _core
    except ImportError as first:
        import ctypes
        import importlib.util

        spec = importlib.util.find_spec("scipy_openblas32")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "mlfast needs the scipy-openblas32 package (pip install scipy-openblas32)"
            ) from first
        lib_dir = _Path(list(spec.submodule_search_locations)[0]) / "lib"
        libs = sorted(lib_dir.glob("libscipy_openblas*.so*"))
        if not libs:
            raise ImportError(f"no libscipy_openblas in {lib_dir}") from first
        ctypes.CDLL(str(libs[0]), mode=ctypes.RTLD_GLOBAL)
        from mlfast import _core
    return _core


if _TYPE_CHECKING:
    # what _import_core returns, as the type checker sees it (mlfast/_core.pyi)
    from mlfast import _core
else:
    _core = _import_core()
from mlfast import _labels
from mlfast._builders import Builders as _Builders
from mlfast._builders import ir as _ir
from mlfast._builders import supported as _supported
from mlfast._inspect import format_tree as _format_tree
from mlfast._loader import DEFAULT_MAX_MEMORY, Source, load_tree, read_source
from mlfast._model import Model
from mlfast._model import Spec as _Spec
from mlfast._model import spec_from_state as _spec_from_state
from mlfast.errors import MlfastError, ModelFormatError, UnsafeModelError, UnsupportedModelError

__version__ = "0.1.0"
__all__ = [
    "Model",
    "MlfastError",
    "ModelFormatError",
    "UnsafeModelError",
    "UnsupportedModelError",
    "load",
    "loads",
    "compile",
    "inspect",
    "demo_model_path",
    "set_num_threads",
    "get_num_threads",
    "supported_estimators",
]


# Files above this size leave enough freed memory behind to be worth giving
# back (a worker forked after loading inherits whatever the parent holds).
_TRIM_ABOVE = 8 << 20


def _refuse_key_outputs(built: _Any, builders: _Builders) -> None:
    """A method whose columns are values, not numbers (a SimpleImputer
    fitted on object data, last or alone): a valid model whose answer is an
    object array, which the engine does not return."""
    for method, out in built.outputs.items():
        kinds = builders.graph.kind_of(out.cols.slots)
        if (kinds == int(_ir.Slot.KEY)).any():
            raise UnsupportedModelError(
                f"model ({built.name}): {method} would return the input's values "
                "(strings or objects) as an object array; mlfast serves an estimator "
                "that imputes object columns when a step after it encodes them "
                "(OneHotEncoder, OrdinalEncoder)"
            )


def _build(tree: _Any, source: _Optional[str] = None) -> _Union[Model, _labels.LabelModel]:
    try:
        if isinstance(tree, _core.Record) and tree.path == "mlfast._model._from_state":
            # a Model pickled by mlfast itself: its graph, read as data
            if not isinstance(tree.args, tuple) or not tree.args:
                raise ModelFormatError("model: a pickled mlfast Model without its state")
            return Model(_spec_from_state(tree.args[0]), source)
        if isinstance(tree, _core.Record) and _labels.is_label_transformer(tree.path):
            # y's transformers, saved alone: a face of their own
            return _labels.build_label_model(tree, source)
        builders = _Builders()
        built = builders.build(tree, "model")
        _refuse_key_outputs(built, builders)
        return Model(_Spec.from_built(built, builders.graph), source)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, MlfastError):
            raise
        # the C constructors check what the builders hand over (sorted
        # categories, indices in range...): from a file, a failure there is
        # a malformed file
        raise ModelFormatError(f"model: invalid parameters: {exc}") from None


def _native(raw: _Any, source: _Optional[str], max_memory: int) -> _Any:
    """A model file XGBoost or LightGBM wrote itself, built as its Booster;
    None for anything else (pickles and joblib files)."""
    from mlfast._builders.gbdt import build_file, native_kind

    kind = native_kind(bytes(raw[:16]))
    if kind is None:
        return None
    if len(raw) > max_memory // 4:
        # the document read as Python values costs a few times its bytes
        raise ModelFormatError(
            f"model: the file's {len(raw)} bytes exceed a quarter of max_memory={max_memory}"
        )
    try:
        builders = _Builders()
        built = build_file(kind, bytes(raw), builders)
        return Model(_Spec.from_built(built, builders.graph), source)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, MlfastError):
            raise
        raise ModelFormatError(f"model: invalid parameters: {exc}") from None


def load(
    source: Source, *, max_memory: int = DEFAULT_MAX_MEMORY
) -> _Union[Model, _labels.LabelModel]:
    """Load a model saved by ``joblib.dump``, ``pickle.dump``, ``skops.io.dump``
    or ``mlflow.sklearn.save_model``/``log_model``, or a model file XGBoost
    (JSON, UBJSON), LightGBM (text) or CatBoost (.cbm) saved itself.

    ``source`` is a path, a binary file object or bytes.  Compressed joblib
    files (zlib, gzip, bz2, xz, lzma, lz4) and skops zips are recognised by
    their first bytes.  An MLflow model is a directory holding ``MLmodel``,
    a ``file:`` URI, or ``runs:/<run_id>/<path>`` / ``models:/<name>/<version>``
    resolved against a local file tracking store (``MLFLOW_TRACKING_URI``,
    else ``./mlruns``); its ``run_id``, flavour and signature are the
    Model's ``mlflow`` attribute.  ``max_memory`` caps both the decompressed size and what the
    loader allocates.

    Raises :class:`ModelFormatError` for a corrupt or truncated file,
    :class:`UnsafeModelError` for one that names anything but scikit-learn
    and numpy data, :class:`UnsupportedModelError` for an estimator mlfast
    does not serve yet.
    """
    if isinstance(source, (str, _os.PathLike)):
        from mlfast.formats import mlflow as _mlflow

        if _mlflow.is_model_dir(source):
            return _load_mlflow(source, max_memory)
    name = str(source) if isinstance(source, (str, _os.PathLike)) else None
    raw = read_source(source)
    model: _Union[Model, _labels.LabelModel, None] = _native(raw, name, max_memory)
    if model is None:
        model = _build(load_tree(raw, max_memory), name)
    if len(raw) > _TRIM_ABOVE:
        _core.trim_memory()
    return model


def _load_mlflow(source: _Any, max_memory: int) -> Model:
    from mlfast.formats import mlflow as _mlflow

    directory = _mlflow.locate(source)
    if not (directory / _mlflow.MLMODEL).is_file():
        raise ModelFormatError(
            f"{source}: no MLmodel file in {directory}: not an MLflow model directory"
        )
    data, info = _mlflow.read(directory, max_memory)
    return _from_mlflow(data, info, max_memory)


def _from_mlflow(data: bytes, info: _Any, max_memory: int = DEFAULT_MAX_MEMORY) -> Model:
    """The Model of an MLflow model's file (``data``) and its MLmodel (``info``)."""
    from mlfast.formats import mlflow as _mlflow

    try:
        tree = load_tree(data, max_memory)
    except UnsafeModelError:
        what = _mlflow.by_value_name(data) if info.serialization_format == "cloudpickle" else None
        if what is None:
            raise
        raise UnsupportedModelError(
            f"{info.model_file}: cloudpickle wrote the {what} by value: it is user code, which "
            "mlfast does not run (a model of scikit-learn's own classes, or one saved with "
            "serialization_format='skops', loads)"
        ) from None
    model = _build(tree, info.directory)
    if not isinstance(model, Model):
        raise UnsupportedModelError(
            f"{info.model_file}: a {type(model).__name__} saved alone is not an MLflow model"
        )
    model.mlflow = info
    return model


def loads(
    data: _Union[bytes, bytearray, memoryview],
    *,
    max_memory: int = DEFAULT_MAX_MEMORY,
    source: _Any = None,
) -> _Union[Model, _labels.LabelModel]:
    """Like :func:`load`, from bytes; ``source`` names where they came from
    (shown by the model, as ``load`` shows its path)."""
    name = None if source is None else str(source)
    raw = read_source(data)
    model = _native(raw, name, max_memory)
    return model if model is not None else _build(load_tree(raw, max_memory), name)


def compile(estimator: _Any) -> _Union[Model, _labels.LabelModel]:  # noqa: A001
    """Compile a fitted, in-memory scikit-learn estimator (as in a notebook).

    The estimator is pickled in memory and read back by the same restricted
    VM and builders as a file, so a notebook and a file give the same model.
    """
    import pickle

    return _build(_core.unpickle(pickle.dumps(estimator, protocol=5)), None)


def inspect(source: Source, *, max_memory: int = DEFAULT_MAX_MEMORY) -> str:
    """The object tree of a model file (classes, array shapes and dtypes,
    scikit-learn version), read without building anything; for an MLflow
    model, what its MLmodel says first, then its file's tree."""
    if isinstance(source, (str, _os.PathLike)):
        from mlfast.formats import mlflow as _mlflow

        if _mlflow.is_model_dir(source):
            directory = _mlflow.locate(source)
            data, info = _mlflow.read(directory, max_memory)
            head = [
                f"MLflow model {info.directory}: flavour {info.flavour}, "
                f"{info.serialization_format} file {_os.path.basename(info.model_file)}, "
                f"run {info.run_id}"
            ]
            if info.inputs is not None:
                head.append(
                    "signature inputs: " + ", ".join(f"{c.name} ({c.type})" for c in info.inputs)
                )
            return "\n".join(head + [_format_tree(load_tree(data, max_memory))])
    return _format_tree(load_tree(source, max_memory))


def demo_model_path() -> str:
    """Path of the bundled demo model: a LogisticRegression fitted on iris,
    saved by ``joblib.dump`` (see ``mlfast/data/make_demo_model.py``)."""
    return str(_Path(__file__).with_name("data") / "iris_logreg.joblib")


def set_num_threads(n: int) -> None:
    """Threads used for large batches (default: the CPUs available, or the
    ``MLFAST_NUM_THREADS`` environment variable)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return _core.get_num_threads()


def supported_estimators() -> _List[str]:
    """Names of the scikit-learn classes mlfast serves (the label
    transformers, which read y, included)."""
    return sorted(set(_supported()) | set(_labels.LABEL_CLASSES))


def _default_threads() -> int:
    env = _os.environ.get("MLFAST_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"MLFAST_NUM_THREADS must be an integer, got {env!r}") from None
    try:
        return max(1, len(_os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, _os.cpu_count() or 1)


_core.set_num_threads(_default_threads())
