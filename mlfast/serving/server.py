"""Processes: uvicorn for one FastAPI worker, gunicorn for the rest.

The model is loaded once, in this process, before any worker exists:
gunicorn runs with ``preload_app`` and forks, so workers share the model's
arrays copy-on-write (``gc.freeze()`` first, so that the collector does not
write to every object's header in each worker and un-share its page).
FastAPI workers under gunicorn use the ``uvicorn-worker`` package's worker
class; Flask runs on gunicorn's threaded worker (a WSGI app needs a WSGI
server, and Flask's development server is not one to expose), given a
deadline for reading each request (``ReadDeadlines``) and JSON answers to
the requests gunicorn itself refuses.

Several workers share one port and one runtime directory (``prepare``):
prometheus-client's multiprocess files, and the model repository's admin
state.  Each worker starts its own repository watcher after the fork.
TLS is the servers' own (uvicorn's ``ssl_keyfile``/``ssl_certfile``,
gunicorn's ``keyfile``/``certfile``).  SIGTERM stops accepting, lets the
requests in flight finish (``graceful_timeout``, 30 s as SageMaker allows),
then exits.
"""

from __future__ import annotations

import atexit
import gc
import itertools
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from http import HTTPStatus
from typing import Any, Dict, Mapping, Optional, Tuple, overload

from mlfast.serving import FRAMEWORKS, create_app, serve_extra
from mlfast.serving.http import Response
from mlfast.serving.metrics import MULTIPROC_ENV, clear_empty_multiproc_env
from mlfast.serving.service import Service

_runtime: Dict[str, Any] = {}


def prepare(workers: int) -> Optional[str]:
    """Before the service is built: with several workers, a runtime
    directory, and prometheus-client's multiprocess mode pointed into it
    (the mode is fixed when prometheus-client is first imported).  A
    ``PROMETHEUS_MULTIPROC_DIR`` already set is used as it is."""
    clear_empty_multiproc_env()
    if workers <= 1:
        return None
    if "dir" not in _runtime:
        path = tempfile.mkdtemp(prefix="mlfast-")
        _runtime["dir"] = path
        owner = os.getpid()

        def cleanup() -> None:  # the master's exit, not a worker's
            if os.getpid() == owner:
                shutil.rmtree(path, ignore_errors=True)

        atexit.register(cleanup)
    if not os.environ.get(MULTIPROC_ENV):
        metrics_dir = os.path.join(_runtime["dir"], "metrics")
        os.makedirs(metrics_dir, exist_ok=True)
        os.environ[MULTIPROC_ENV] = metrics_dir
    return _runtime["dir"]


def run(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    framework: str = "fastapi",
    threads: int = 4,
    timeout: int = 60,
    log_level: str = "info",
    ssl_keyfile: Optional[str] = None,
    ssl_certfile: Optional[str] = None,
    ssl_keyfile_password: Optional[str] = None,
    graceful_timeout: int = 30,
    keepalive: int = 5,
) -> None:
    """Serve ``service`` until SIGTERM or Ctrl-C."""
    from mlfast.serving.ops import configure_logging

    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if bool(ssl_keyfile) != bool(ssl_certfile):
        raise ValueError("TLS needs both --ssl-keyfile and --ssl-certfile")
    for path in (ssl_keyfile, ssl_certfile):
        if path and not os.path.isfile(path):
            raise ValueError(f"TLS file {path} does not exist")
    configure_logging(log_level)
    check_port(host, port)
    app = create_app(service, framework=framework)
    served = service.registry.default
    scheme = "https" if ssl_certfile else "http"
    models = service.registry.names()
    what = (
        f"{len(models)} models ({', '.join(models)}; default {served.name})"
        if len(models) > 1
        else f"{served.name} ({served.model.estimator})"
    )
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    print(
        f"mlfast: serving {what} with {framework} on {url} "
        f"({workers} worker{'s' if workers > 1 else ''})",
        flush=True,
    )
    if service.docs_path is not None:
        print(f"mlfast: API docs at {url}{service.docs_path}", flush=True)
    if framework == "fastapi" and workers == 1:
        with serve_extra():
            import uvicorn

        service.start_worker()
        # uvicorn re-raises the SIGTERM it handled once it has shut down
        # gracefully; with this handler in place that ends the process with
        # status 0, as gunicorn's master does, not killed by the signal
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=graceful_timeout,
            timeout_keep_alive=keepalive,
            ssl_keyfile=ssl_keyfile,
            ssl_certfile=ssl_certfile,
            ssl_keyfile_password=ssl_keyfile_password,
        )
        return
    if workers > 1 and service.repository is not None:
        service.repository.share_state(prepare(workers))
    # What was loaded so far stays put: the collector will not touch (and
    # un-share) it in the workers.
    gc.collect()
    gc.freeze()

    def post_fork(server: Any, worker: Any) -> None:
        service.start_worker()

    def child_exit(server: Any, worker: Any) -> None:
        from mlfast.serving.metrics import mark_process_dead

        mark_process_dead(worker.pid)

    options: Dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "preload_app": True,
        "timeout": timeout,
        "graceful_timeout": graceful_timeout,
        "keepalive": keepalive,
        "loglevel": log_level,
        "accesslog": None,  # mlfast.access writes JSON lines instead
        "errorlog": "-",
        "post_fork": post_fork,
        "child_exit": child_exit,
        # gunicorn 25+ opens a control socket at one fixed path per user, so
        # two servers on a machine would fight over it; mlfast does not use it
        "control_socket_disable": True,
    }
    if ssl_certfile:
        options["certfile"] = ssl_certfile
        options["keyfile"] = ssl_keyfile
        if ssl_keyfile_password:
            options["ssl_keyfile_password"] = ssl_keyfile_password  # not in every gunicorn
    if framework == "fastapi":
        with serve_extra():
            from uvicorn_worker import UvicornWorker

        class Worker(UvicornWorker):  # uvicorn's options that gunicorn's config lacks
            CONFIG_KWARGS = {
                **UvicornWorker.CONFIG_KWARGS,
                "server_header": False,
                "timeout_graceful_shutdown": graceful_timeout,
            }

        options["worker_class"] = Worker
    else:
        options["worker_class"] = _flask_worker(service, timeout)
        options["threads"] = threads
    _gunicorn(app, options).run()


class ReadDeadlines:
    """Connections whose request is being read, each with the time by which
    it must have arrived.

    gunicorn's threaded worker reads a request (headers and body) on a
    blocking socket with no timeout, and its worker timeout never fires
    while the main loop runs: a client sending a byte every few seconds
    holds a thread for as long as it likes, and as many clients as threads
    hold the worker.  A thread here looks at the armed connections a few
    times per timeout and shuts the reading side of a late one: the worker
    thread blocked on it reads the end of the stream, and the request ends
    (408 when its headers had come, the connection closed when not).
    Arming and disarming are a dict store and a pop: no lock, no wakeup.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._active: Dict[int, Tuple[float, Any]] = {}
        self._keys = itertools.count()
        self._pid: Optional[int] = None

    def arm(self, sock: Any) -> int:
        if self._pid != os.getpid():  # the first request of this worker process
            self._pid = os.getpid()
            threading.Thread(target=self._watch, name="mlfast-read-deadlines", daemon=True).start()
        key = next(self._keys)
        self._active[key] = (time.monotonic() + self.seconds, sock)
        return key

    def disarm(self, key: int) -> None:
        self._active.pop(key, None)

    def expire(self, now: float) -> int:
        """Shut the reading side of every connection late at ``now``."""
        late = 0
        for key, (deadline, sock) in list(self._active.items()):
            if deadline <= now and self._active.pop(key, None) is not None:
                late += 1
                try:
                    # socket.socket's own shutdown: an SSLSocket's would drop
                    # its TLS state under the thread still reading it
                    socket.socket.shutdown(sock, socket.SHUT_RD)
                except OSError:
                    pass
        return late

    def _watch(self) -> None:
        interval = min(1.0, self.seconds / 4)
        while True:  # a daemon thread: it ends with its process
            time.sleep(interval)
            self.expire(time.monotonic())


def _flask_worker(service: Service, read_timeout: Optional[float]) -> type:
    """gunicorn's threaded worker (the WSGI worker for Flask) with what
    facing clients needs and it lacks: a request must arrive within
    ``read_timeout`` seconds (``ReadDeadlines``), and a request gunicorn
    cannot parse (oversized headers, a malformed request line) is answered
    in JSON with the headers of every answer, not an HTML page."""
    with serve_extra():
        from gunicorn.http import errors as gunicorn_errors
        from gunicorn.http.errors import (
            ExpectationFailed,
            ForbiddenProxyRequest,
            LimitRequestHeaders,
            LimitRequestLine,
            ParseException,
            UnsupportedTransferCoding,
        )
        from gunicorn.util import write_nonblock
        from gunicorn.workers.gthread import ThreadWorker
    # gunicorn 27 names the server's own bad response headers (a fault of the
    # server, a 500); gunicorn 26, which MLflow pins, has no such classes
    server_faults = tuple(
        getattr(gunicorn_errors, name)
        for name in ("InvalidResponseHeader", "InvalidResponseHeaderName")
        if hasattr(gunicorn_errors, name)
    )

    statuses = {
        LimitRequestHeaders: 431,
        LimitRequestLine: 414,
        ExpectationFailed: 417,
        ForbiddenProxyRequest: 403,
        UnsupportedTransferCoding: 501,
    }
    deadlines = ReadDeadlines(read_timeout) if read_timeout else None

    class FlaskWorker(ThreadWorker):
        def handle(self, conn: Any) -> Any:
            if deadlines is None:
                return super().handle(conn)
            key = deadlines.arm(conn.sock)
            try:
                return super().handle(conn)
            finally:
                deadlines.disarm(key)

        def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
            if not isinstance(exc, ParseException) or isinstance(exc, server_faults):
                super().handle_error(req, client, addr, exc)  # a fault of the server: a 500
                return
            status = next((s for cls, s in statuses.items() if isinstance(exc, cls)), 400)
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
            try:
                write_nonblock(
                    client, _raw_response(service.answer(status, f"malformed request: {exc}"))
                )
            except Exception:  # noqa: BLE001 - the client may be gone
                self.log.debug("Failed to send error message.")

    return FlaskWorker


def _raw_response(response: Response) -> bytes:
    """An answer as HTTP/1.1 bytes, closing the connection (for what gunicorn
    writes itself)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Error"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        "Connection: close",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


def check_port(host: str, port: int) -> None:
    """Refuse (ValueError) a port another server listens on, before saying
    that this one serves there; the servers bind it again, as they do,
    with SO_REUSEADDR."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise ValueError(
                f"cannot listen on {host}:{port}: {e.strerror or e} (another server "
                "there? choose another port with --port)"
            ) from None


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _gunicorn(app: Any, options: Dict[str, Any]):
    """gunicorn's documented "custom application": an app object already
    built (and its model already loaded) instead of an import string.
    Imported here: gunicorn is Unix-only, one uvicorn worker is not."""
    with serve_extra():
        from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # older gunicorns lack newer settings
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    return Application()


@overload
def env_int(env: Mapping[str, str], name: str, default: int) -> int: ...
@overload
def env_int(env: Mapping[str, str], name: str, default: None) -> Optional[int]: ...
def env_int(env: Mapping[str, str], name: str, default: Optional[int]) -> Optional[int]:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"mlfast: {name} must be an integer, got {value!r}") from None


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


WORKER_ENV = ("MLFAST_WORKERS", "SAGEMAKER_MODEL_SERVER_WORKERS", "WEB_CONCURRENCY")


def workers_from_env(env, default: int) -> int:
    """The worker count the platform asks for: ``MLFAST_WORKERS``, then
    SageMaker's ``SAGEMAKER_MODEL_SERVER_WORKERS``, then ``WEB_CONCURRENCY``
    (gunicorn's and uvicorn's own variable; Vertex AI defines none of its
    own, so set one of these in the container's env)."""
    for name in WORKER_ENV:
        value = env_int(env, name, None)
        if value is not None:
            return value
    return default
