"""The model repository: several models, several versions each, hot reload.

Layout, as TF Serving, Triton and KServe lay it out::

    DIR/<name>/<version>/model.joblib      (or model.pkl, model.pickle)
    DIR/<name>/<version>/model.joblib.sha256   optional: the file's SHA-256

Names and versions are what the URLs say (``/v2/models/{name}/versions/
{version}/infer``); a directory whose name starts with ``.`` or ``_`` is
skipped, so a new version can be written under ``.tmp-3`` and renamed to
``3`` when complete.  A model's default version is its highest (numbers
order as numbers) unless one is pinned.  A model file (or its ``.sha256``)
that a symbolic link takes outside the directory is refused, as a file that
fails to load is.

Changes come from the admin routes (``load``, ``unload``; the Open
Inference Protocol's repository extension, ``serving.repository_routes``) and, when watching
is on, from polling the directory: a new or changed file is loaded once its
size and mtime have stayed the same for one poll (it is not still being
copied).  A version is published only after it loaded: requests already
running finish on the version they started with, and a version that fails
to load (corrupt, truncated, refused by the loader as unsafe, wrong
SHA-256) leaves the serving one in place and is reported with the reason in
the admin answer, the index, the log and the metrics.  It is not tried again
until its file changes.

Several workers: each process holds its own registry.  What an admin asked
for (versions unloaded, pins) is kept in a small JSON state file shared by
the workers (``share_state``), and each worker's watcher applies a change
made through another worker within one poll.  Every worker reads the same
files, so they converge on the same versions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from mlfast.serving.errors import Conflict, InvalidInput, ModelLoadFailed, ModelNotFound
from mlfast.serving.loading import MODEL_ENTRIES, MODEL_FILE_NAMES, MODEL_NAME_RE, load_served
from mlfast.serving.registry import ModelRegistry, ServedModel, version_key

log = logging.getLogger("mlfast.serving.repository")

Fingerprint = Tuple[int, int, int]
STATE_FILE = "repository-state.json"


def is_repository(path: os.PathLike) -> bool:
    """True for a directory laid out as ``<name>/<version>/model.*`` (and not
    itself holding a model file, as SageMaker's /opt/ml/model does)."""
    p = Path(path)
    if not p.is_dir() or any((p / f).is_file() for f in MODEL_ENTRIES):
        return False
    return bool(scan(p))


def scan(root: Path) -> Dict[str, Dict[str, Path]]:
    """Model name -> version -> model file, for what is on disk now."""
    found: Dict[str, Dict[str, Path]] = {}
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return found
    for name in names:
        if not MODEL_NAME_RE.match(name) or not (root / name).is_dir():
            continue
        try:
            versions = os.listdir(root / name)
        except OSError:
            continue
        for version in versions:
            if not MODEL_NAME_RE.match(version):
                continue
            for file_name in MODEL_ENTRIES:
                f = root / name / version / file_name
                if f.is_file():
                    found.setdefault(name, {})[version] = f
                    break
    return found


def fingerprint(path: Path) -> Optional[Fingerprint]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, (ValueError, OSError)):
        return text
    return f"{type(error).__name__}: {text}"


class ModelRepository:
    """A directory of models and versions behind a ``ModelRegistry``.

    ``default_model`` names the model of the routes without a model name
    (``/predict``, SageMaker, Vertex AI); default: the only model, else the
    first by name.  ``pins`` maps a name to the version served by default.
    ``sha256`` maps ``"name/version"`` to the SHA-256 its file must have.
    ``poll_interval`` (seconds) is how often the watcher looks; ``watch``
    whether it loads what appeared on disk (admin changes made through other
    workers are applied either way).
    """

    def __init__(
        self,
        root: os.PathLike,
        registry: Optional[ModelRegistry] = None,
        *,
        default_model: Optional[str] = None,
        pins: Optional[Mapping[str, str]] = None,
        sha256: Optional[Mapping[str, str]] = None,
        watch: bool = True,
        poll_interval: float = 2.0,
    ):
        self.root = Path(root)
        on_disk = scan(self.root)
        if not on_disk:
            raise FileNotFoundError(
                f"no models in {self.root}: expected {self.root}/<name>/<version>/"
                f"{MODEL_FILE_NAMES[0]} (or {', '.join(MODEL_FILE_NAMES[1:])})"
            )
        if default_model is None:
            default_model = next(iter(on_disk))
        elif default_model not in on_disk:
            raise FileNotFoundError(
                f"no model {default_model!r} in {self.root} (models: {', '.join(on_disk)})"
            )
        self.registry = (
            registry if registry is not None else ModelRegistry(default_name=default_model)
        )
        self.registry._default_name = default_model
        self.default_model = default_model
        self.sha256 = {k: v.lower() for k, v in (sha256 or {}).items()}
        self.watch = watch
        self.poll_interval = poll_interval
        self.listeners: List[Callable[[str, str, bool, Optional[float], str], None]] = []
        self._state: Dict[str, Any] = {
            "generation": 0,
            "touched": {},
            "unloaded_models": [],
            "unloaded_versions": {},
            "pins": dict(pins or {}),
        }
        self._state_dir: Optional[Path] = None
        self._state_mtime: Optional[int] = None
        self._seen_touches: Dict[str, int] = {}
        # None: the file could not be stat'ed (it went while being read)
        self._loaded_fp: Dict[Tuple[str, str], Optional[Fingerprint]] = {}
        self._failed: Dict[Tuple[str, str], Tuple[Optional[Fingerprint], str]] = {}
        self._pending: Dict[Tuple[str, str], Optional[Fingerprint]] = {}
        self._lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

    # -- loading -----------------------------------------------------------------

    def load_initial(self) -> None:
        """Load every version on disk; refuse to start when the default
        model has no version that loads."""
        self.sync(None, settle=False)
        if self.default_model not in self.registry.names():
            reasons = (
                "; ".join(
                    f"version {v}: {why}"
                    for (n, v), (_, why) in sorted(self._failed.items())
                    if n == self.default_model
                )
                or "no version loaded"
            )
            raise ValueError(
                f"model {self.default_model!r} in {self.root} cannot be served: {reasons}"
            )

    def _notify(
        self, name: str, version: str, ok: bool, seconds: Optional[float], reason: str
    ) -> None:
        for listener in self.listeners:
            try:
                listener(name, version, ok, seconds, reason)
            except Exception:
                log.exception("repository listener failed")

    def sync(
        self, names: Optional[Iterable[str]] = None, *, settle: bool = False
    ) -> Dict[str, Dict[str, str]]:
        """Make the registry serve what is on disk, less what an admin
        unloaded, for ``names`` (default: every model).  ``settle``: load a
        new or changed file only once it looked the same at the previous
        poll.  Returns name -> version -> outcome of what was tried."""
        outcomes: Dict[str, Dict[str, str]] = {}
        with self._lock:
            on_disk = scan(self.root)
            state = self._state
            todo = set(on_disk) | set(self.registry.names()) if names is None else set(names)
            unloaded_models = set(state["unloaded_models"])
            for name in sorted(todo):
                current = {v: self.registry.get(name, v) for v in self.registry.versions(name)}
                if name in unloaded_models:
                    if current:
                        self.registry.replace(name, {})
                    continue
                skip = set(state["unloaded_versions"].get(name, ()))
                wanted = {v: p for v, p in on_disk.get(name, {}).items() if v not in skip}
                new: Dict[str, ServedModel] = {}
                for version, path in wanted.items():
                    key = (name, version)
                    fp = fingerprint(path)
                    have = current.get(version)
                    if have is not None and self._loaded_fp.get(key) == fp:
                        new[version] = have
                        continue
                    failed = self._failed.get(key)
                    if failed is not None and failed[0] == fp:
                        if have is not None:
                            new[version] = have
                        continue
                    if settle and self._pending.get(key) != fp:
                        self._pending[key] = fp  # look again at the next poll
                        if have is not None:
                            new[version] = have
                        continue
                    self._pending.pop(key, None)
                    try:
                        served = load_served(
                            path,
                            name,
                            version,
                            sha256=self.sha256.get(f"{name}/{version}"),
                            within=self.root,
                        )
                    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
                        reason = _reason(e)
                        self._failed[key] = (fp, reason)
                        outcomes.setdefault(name, {})[version] = f"failed: {reason}"
                        keeps = "; still serving the copy loaded before" if have is not None else ""
                        log.warning(
                            "model %s version %s was not loaded from %s: %s%s",
                            name,
                            version,
                            path,
                            reason,
                            keeps,
                        )
                        self._notify(name, version, False, None, reason)
                        if have is not None:
                            new[version] = have
                        continue
                    self._failed.pop(key, None)
                    self._loaded_fp[key] = fp
                    new[version] = served
                    outcomes.setdefault(name, {})[version] = "loaded"
                    log.info(
                        "model %s version %s loaded from %s in %.3f s",
                        name,
                        version,
                        path,
                        served.load_seconds,
                    )
                    self._notify(name, version, True, served.load_seconds, "")
                for version in current:
                    if version not in new:
                        outcomes.setdefault(name, {})[version] = "unloaded"
                        self._loaded_fp.pop((name, version), None)
                if new.keys() != current.keys() or any(new[v] is not current[v] for v in new):
                    self.registry.replace(name, new)
            pins = state["pins"]
            for name in set(self.registry.pins()) | set(pins):
                if self.registry.pins().get(name) != pins.get(name):
                    self.registry.pin(name, pins.get(name))
        return outcomes

    # -- what an admin asks for, shared between workers ----------------------------

    def share_state(self, directory: os.PathLike) -> None:
        """Keep the admin state in ``directory`` (shared by the workers a
        server forks); called once, before the fork."""
        self._state_dir = Path(directory)
        with self._state_file_lock():
            self._write_state(self._state)

    @contextlib.contextmanager
    def _state_file_lock(self):
        if self._state_dir is None:
            yield
            return
        import fcntl

        with open(self._state_dir / (STATE_FILE + ".lock"), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _read_state(self) -> Dict[str, Any]:
        if self._state_dir is None:
            return self._state
        path = self._state_dir / STATE_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return self._state

    def _write_state(self, state: Dict[str, Any]) -> None:
        self._state = state
        if self._state_dir is None:
            return
        path = self._state_dir / STATE_FILE
        tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)
        self._state_mtime = os.stat(path).st_mtime_ns

    def _change(self, name: str, edit: Callable[[Dict[str, Any]], None]) -> List[str]:
        """Edit the shared state; returns the names to sync here: ``name``
        and any another worker changed that this one has not applied yet."""
        with self._state_file_lock():
            state = json.loads(json.dumps(self._read_state()))  # a copy
            edit(state)
            state["generation"] += 1
            state["touched"][name] = state["touched"].get(name, 0) + 1
            self._write_state(state)
        touched = state["touched"]
        names = [n for n, count in touched.items() if self._seen_touches.get(n) != count]
        self._seen_touches = dict(touched)
        return names

    def _poll_state(self) -> List[str]:
        """Names an admin changed through another worker since we looked."""
        if self._state_dir is None:
            return []
        try:
            mtime = os.stat(self._state_dir / STATE_FILE).st_mtime_ns
        except OSError:
            return []
        if mtime == self._state_mtime:
            return []
        with self._state_file_lock():
            state = self._read_state()
            self._state_mtime = mtime
        touched = state.get("touched", {})
        changed = [n for n, count in touched.items() if self._seen_touches.get(n) != count]
        self._state = state
        self._seen_touches = dict(touched)
        return changed

    # -- the admin operations (the V2 repository extension calls these) -------------

    def _status(self, name: str) -> Dict[str, Any]:
        return {
            "name": name,
            "versions": self.registry.versions(name),
            "default_version": self.registry.default_version(name),
            "pinned": self.registry.pins().get(name),
        }

    def load(
        self, name: str, version: Optional[str] = None, pin: Optional[bool] = None
    ) -> Dict[str, Any]:
        """Load what is on disk for ``name`` (only ``version`` when given),
        taking back earlier unloads; ``pin`` True pins ``version`` as the
        default, False unpins.  Raises ModelLoadFailed when a version that
        was tried failed to load, saying why and what is still served."""
        on_disk = scan(self.root).get(name, {})
        if not on_disk:
            raise ModelNotFound(
                f"no model {name!r} in the repository (expected "
                f"{self.root}/{name}/<version>/{MODEL_FILE_NAMES[0]})"
            )
        if version is not None and version not in on_disk:
            raise ModelNotFound(
                f"model {name!r} has no version {version!r} on disk "
                f"(versions: {', '.join(sorted(on_disk, key=version_key))})"
            )
        if pin and version is None:
            raise InvalidInput(
                'to pin a version, name it: {"parameters": {"version": "2", "pin": true}}'
            )

        def edit(state: Dict[str, Any]) -> None:
            if name in state["unloaded_models"]:
                state["unloaded_models"].remove(name)
            skipped = state["unloaded_versions"].get(name, [])
            if version is None:
                state["unloaded_versions"].pop(name, None)
            elif version in skipped:
                skipped.remove(version)
            if pin:
                state["pins"][name] = version
            elif pin is False:
                state["pins"].pop(name, None)

        with self._lock:
            for key in [k for k in self._failed if k[0] == name and version in (None, k[1])]:
                del self._failed[key]  # asked again: try again
            outcomes = self.sync(self._change(name, edit)).get(name, {})
        failed = {v: o[len("failed: ") :] for v, o in outcomes.items() if o.startswith("failed: ")}
        if (
            version is not None
            and version not in failed
            and version not in self.registry.versions(name)
        ):
            why = self._failed.get((name, version), (None, "it did not load"))[1]
            failed[version] = why
        answer = self._status(name)
        answer["loaded"] = sorted(
            (v for v, o in outcomes.items() if o == "loaded"), key=version_key
        )
        if failed:
            serving = answer["default_version"]
            still = f"; still serving version {serving}" if serving else "; no version is served"
            details = "; ".join(f"version {v}: {why}" for v, why in sorted(failed.items()))
            raise ModelLoadFailed(f"model {name!r} not loaded: {details}{still}")
        return answer

    def unload(self, name: str, version: Optional[str] = None) -> Dict[str, Any]:
        """Stop serving ``version`` of ``name`` (all of it when None) until
        it is loaded again; rolling back is unloading the newest version.
        The default model keeps at least one version: /predict and the
        health checks depend on it."""
        versions = self.registry.versions(name)
        if not versions:
            raise ModelNotFound(f"model {name!r} is not loaded")
        if version is not None and version not in versions:
            raise ModelNotFound(
                f"model {name!r} has no loaded version {version!r} "
                f"(versions: {', '.join(versions)})"
            )
        if name == self.default_model and (version is None or versions == [version]):
            raise Conflict(
                f"model {name!r} is the default model (/predict, SageMaker, "
                "Vertex AI and the health checks use it): it keeps at least one "
                "version; load another version first"
            )

        def edit(state: Dict[str, Any]) -> None:
            if version is None:
                if name not in state["unloaded_models"]:
                    state["unloaded_models"].append(name)
                state["pins"].pop(name, None)
            else:
                skipped = state["unloaded_versions"].setdefault(name, [])
                if version not in skipped:
                    skipped.append(version)
                if state["pins"].get(name) == version:
                    state["pins"].pop(name)

        with self._lock:
            self.sync(self._change(name, edit))
        answer = self._status(name)
        answer["unloaded"] = version or "all"
        return answer

    def index(self) -> List[Dict[str, Any]]:
        """Every version on disk or served: READY, UNAVAILABLE with the
        reason (failed to load, unloaded, waiting for its file to settle)."""
        on_disk = scan(self.root)
        state = self._state
        out = []
        for name in sorted(set(on_disk) | set(self.registry.names())):
            served = set(self.registry.versions(name))
            default = self.registry.default_version(name)
            for version in sorted(set(on_disk.get(name, {})) | served, key=version_key):
                entry: Dict[str, Any] = {"name": name, "version": version}
                failed = self._failed.get((name, version))
                if version in served:
                    entry["state"] = "READY"
                    entry["default"] = version == default
                    if failed is not None:
                        entry["reason"] = f"a newer file failed to load: {failed[1]}"
                else:
                    entry["state"] = "UNAVAILABLE"
                    if name in state["unloaded_models"] or version in state[
                        "unloaded_versions"
                    ].get(name, ()):
                        entry["reason"] = "unloaded"
                    elif failed is not None:
                        entry["reason"] = f"failed to load: {failed[1]}"
                    else:
                        entry["reason"] = "not loaded yet"
                out.append(entry)
        return out

    # -- watching ----------------------------------------------------------------------

    def poll(self) -> None:
        """One look: admin changes made through other workers, then (when
        watching) the directory."""
        with self._lock:
            changed = self._poll_state()
            if changed:
                self.sync(changed)
            if self.watch:
                self.sync(None, settle=True)

    def start_watching(self) -> None:
        """The watcher thread of this process (each worker runs its own)."""
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        if self._state_dir is None and not self.watch:
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._watch, name="mlfast-repository-watcher", daemon=True
        )
        self._thread.start()

    def _watch(self) -> None:
        while True:  # a daemon thread: it ends with its process
            time.sleep(self.poll_interval)
            try:
                self.poll()
            except Exception:  # the watcher must outlive a bad poll
                log.exception("watching %s failed", self.root)


__all__ = ["ModelRepository", "is_repository", "scan"]
