"""HTTP: the lesson's Flask and FastAPI apps (joblib + scikit-learn) against
mlfast's apps and ``mlfast serve``, under ``wrk``.

    python benchmarks/bench_http.py            # writes benchmarks/results/http.json
    python benchmarks/bench_http.py --quick    # one model, two servers, one second each

Servers, each given the same model file and the same worker count:

    lesson FastAPI          benchmarks/lesson_apps/fastapi_app.py under uvicorn
    mlfast FastAPI app      apps/fastapi_app.py under the same uvicorn command
    mlfast serve            `mlfast serve` (uvicorn for one worker; gunicorn with
                            uvicorn workers and a preloaded model for more)
    lesson Flask            benchmarks/lesson_apps/flask_app.py under gunicorn, gthread workers, 4 threads
    mlfast Flask app        apps/flask_app.py under the same gunicorn command
    mlfast serve (Flask)    `mlfast serve --framework flask` (gunicorn gthread, 4 threads, preloaded)

Only the servers whose code exists are run.  All bind 127.0.0.1 on a free
port; access logs are off where the command line allows it, and every
server's output goes to a log file in the work folder.  For one model and
worker count all servers are started, each is asked a few rows and its
answers compared with scikit-learn's, each is warmed up, and then wrk runs
take turns across the servers, round after round; req/s, p50 and p99 are
the medians over rounds, errors (connect, read, write, timeout, non-2xx) are
summed.  Beside them, the server's own CPU time per request (utime + stime
of its process group over a run, divided by the requests wrk counted): on a
shared machine it moves far less than req/s does.  Every server is stopped
at the end, on error or interrupt too.

wrk runs on the same machine and takes CPU from the servers: the figures
compare servers under the same handicap, not the machine's capacity.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import _common
import bench_models

LESSON_APPS = _common.HERE / "lesson_apps"
MLFAST_APPS = _common.ROOT / "apps"
LUA = _common.HERE / "wrk_post.lua"
THREADS = 4  # gthread threads per gunicorn worker, both sides (mlfast serve's default too)


@dataclass
class Server:
    name: str
    side: str  # "lesson" or "mlfast"
    framework: str  # "FastAPI" or "Flask"
    server: str  # the process that serves it, as shown in the report
    argv: Callable[[int, int, Path], List[str]]  # (port, workers, model) -> argv
    env: Callable[[Path], Dict[str, str]]
    missing: Optional[str] = None


def _module_missing(*names: str) -> Optional[str]:
    for name in names:
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed"
    return None


def servers(probe_serve: bool = True) -> List[Server]:
    py = sys.executable

    def uvicorn(app_dir: Path):
        return lambda port, workers, model: [
            py,
            "-m",
            "uvicorn",
            "--app-dir",
            str(app_dir),
            "fastapi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    def gunicorn(app_dir: Path):
        return lambda port, workers, model: [
            py,
            "-m",
            "gunicorn",
            "--chdir",
            str(app_dir),
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--no-control-socket",
            "flask_app:app",
        ]

    def mlfast_serve(framework: str):
        return lambda port, workers, model: [
            py,
            "-m",
            "mlfast",
            "serve",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--framework",
            framework,
            "--log-level",
            "warning",
        ]

    lesson_env = lambda model: {"MODEL_PATH": str(model)}  # noqa: E731
    mlfast_env = lambda model: {"MLFAST_MODEL": str(model)}  # noqa: E731
    fastapi_missing = _module_missing("fastapi", "uvicorn", "joblib", "sklearn")
    flask_missing = _module_missing("flask", "gunicorn", "joblib", "sklearn")

    def app_missing(path: Path, deps: Optional[str]) -> Optional[str]:
        if not path.exists():
            return f"{path.relative_to(_common.ROOT)} does not exist yet"
        return deps

    serve_missing = None
    if importlib.util.find_spec("mlfast.serving") is None:
        serve_missing = "mlfast.serving does not exist yet"
    elif probe_serve:
        probe = subprocess.run(
            [py, "-m", "mlfast", "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=_common.ROOT,
        )
        if probe.returncode != 0:
            serve_missing = "`mlfast serve` is not available: " + (
                probe.stderr.strip()[-200:] or "?"
            )
    return [
        Server(
            "lesson FastAPI",
            "lesson",
            "FastAPI",
            "uvicorn",
            uvicorn(LESSON_APPS),
            lesson_env,
            app_missing(LESSON_APPS / "fastapi_app.py", fastapi_missing),
        ),
        Server(
            "mlfast FastAPI app",
            "mlfast",
            "FastAPI",
            "uvicorn",
            uvicorn(MLFAST_APPS),
            mlfast_env,
            app_missing(MLFAST_APPS / "fastapi_app.py", _module_missing("fastapi", "uvicorn")),
        ),
        Server(
            "mlfast serve",
            "mlfast",
            "FastAPI",
            "mlfast serve (uvicorn; gunicorn + uvicorn-worker for >1 worker)",
            mlfast_serve("fastapi"),
            lambda model: {},
            serve_missing,
        ),
        Server(
            "lesson Flask",
            "lesson",
            "Flask",
            "gunicorn gthread",
            gunicorn(LESSON_APPS),
            lesson_env,
            app_missing(LESSON_APPS / "flask_app.py", flask_missing),
        ),
        Server(
            "mlfast Flask app",
            "mlfast",
            "Flask",
            "gunicorn gthread",
            gunicorn(MLFAST_APPS),
            mlfast_env,
            app_missing(MLFAST_APPS / "flask_app.py", _module_missing("flask", "gunicorn")),
        ),
        Server(
            "mlfast serve (Flask)",
            "mlfast",
            "Flask",
            "mlfast serve --framework flask (gunicorn gthread)",
            mlfast_serve("flask"),
            lambda model: {},
            serve_missing,
        ),
    ]


# -- processes -------------------------------------------------------------------

_RUNNING: Dict[int, subprocess.Popen] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(server: Server, workers: int, model: Path, log_dir: Path) -> Dict[str, object]:
    port = _free_port()
    env = dict(os.environ)
    env.update(server.env(model))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = (
        log_dir / f"{server.name.replace(' ', '_').replace('(', '').replace(')', '')}-{port}.log"
    )
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        server.argv(port, workers, model),
        env=env,
        cwd=str(log_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )  # its own process group: stopped as one
    log.close()
    _RUNNING[proc.pid] = proc
    return {"proc": proc, "port": port, "log": log_path, "started": time.perf_counter()}


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a dead master
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)
    _RUNNING.pop(proc.pid, None)


def stop_all() -> None:
    for proc in list(_RUNNING.values()):
        stop(proc)


atexit.register(stop_all)


def _on_signal(signum, frame):
    raise SystemExit(f"interrupted by signal {signum}")


def post(port: int, body: str, timeout: float = 5.0) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_ready(run: Dict[str, object], body: str, timeout: float) -> float:
    proc, port = run["proc"], run["port"]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"exited with {proc.returncode}: "
                f"{Path(run['log']).read_text(errors='replace')[-1500:]}"
            )
        try:
            post(port, body, timeout=2)
            return time.perf_counter() - run["started"]
        except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError):
            time.sleep(0.1)
    raise RuntimeError(
        f"not answering after {timeout:.0f} s: "
        f"{Path(run['log']).read_text(errors='replace')[-1500:]}"
    )


def memory(proc: subprocess.Popen) -> Optional[Dict[str, float]]:
    """RSS and PSS (MiB) summed over the server's processes (psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        root = psutil.Process(proc.pid)
        procs = [root] + root.children(recursive=True)
        rss = pss = 0
        for p in procs:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        return {"processes": len(procs), "rss_mib": rss / 2**20, "pss_mib": pss / 2**20}
    except (psutil.Error, OSError):
        return None


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(group: int) -> Optional[float]:
    """utime + stime of every live process in the server's process group
    (/proc/<pid>/stat): the server's own CPU, whatever else the machine runs."""
    total, found = 0, False
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
            found = True
    return total / _TICK if found else None


def wrk(
    port: int, connections: int, seconds: float, bodies: Path, group: Optional[int] = None
) -> Dict[str, float]:
    threads = max(1, min(2, connections))
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}/predict",
        "--",
        str(bodies),
    ]
    cpu0 = cpu_seconds(group) if group else None
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu1 = cpu_seconds(group) if group else None
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(
            f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}"
        )
    out = json.loads(line[-1][len("WRKJSON ") :])
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    out["errors"] = sum(out[k] for k in ("connect", "read", "write", "status", "timeout"))
    if cpu0 is not None and cpu1 is not None and out["requests"]:
        out["server_cpu_us_per_request"] = (cpu1 - cpu0) / out["requests"] * 1e6
    return out


# -- the benchmark ----------------------------------------------------------------


def med_cpu(summary: dict) -> float:
    s = summary.get("server_cpu_us_per_request")
    return s["median"] if s else float("nan")


def run(args) -> dict:
    import joblib
    import numpy as np

    quick = args.quick
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk; `make bench` does it)")
    signal.signal(signal.SIGTERM, _on_signal)
    keys = ["iris_lr"] if quick else ["iris_lr", "rf100"]
    plan = [(1, [1] if quick else [1, 8, 64])] + ([] if quick else [(4, [64])])
    rounds = 1 if quick else args.rounds
    seconds = 1 if quick else args.seconds
    warmup = 0 if quick else 2
    models = bench_models.build(args.work, quick, keys=keys, n_test=256, log=_common.log)
    all_servers = servers(probe_serve=not quick)
    if quick:
        all_servers = [s for s in all_servers if s.name in ("lesson FastAPI", "mlfast FastAPI app")]
    for s in all_servers:
        if s.missing:
            _common.log(f"skipping {s.name}: {s.missing}")
    live = [s for s in all_servers if not s.missing]
    result = {
        "machine": _common.machine(),
        "config": {
            "quick": quick,
            "plan": plan,
            "rounds": rounds,
            "seconds": seconds,
            "warmup_seconds": warmup,
            "gthread_threads": THREADS,
            "wrk_threads": "min(2, connections)",
            "wrk_timeout_s": 5,
        },
        "servers": [
            {
                "name": s.name,
                "side": s.side,
                "framework": s.framework,
                "server": s.server,
                "missing": s.missing,
            }
            for s in all_servers
        ],
        "runs": [],
    }
    log_dir = args.work / "http-logs"
    for m in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = joblib.load(m.path)
        rows = m.X_test[:256]
        expected = est.predict(rows)
        bodies_path = args.work / f"bodies-{m.key}.txt"
        bodies_path.parent.mkdir(parents=True, exist_ok=True)
        bodies = [json.dumps({"features": [float(v) for v in row]}) for row in rows]
        bodies_path.write_text("\n".join(bodies) + "\n")
        for workers, concurrencies in plan:
            runs = {}
            try:
                for s in live:
                    runs[s.name] = start(s, workers, m.path, log_dir)
                entries = {}
                for s in live:
                    entry = {
                        "model": m.key,
                        "workers": workers,
                        "server": s.name,
                        "side": s.side,
                        "framework": s.framework,
                        "port": runs[s.name]["port"],
                        "by_concurrency": {},
                    }
                    entries[s.name] = entry
                    try:
                        entry["ready_seconds"] = wait_ready(
                            runs[s.name], bodies[0], 60 if quick else 180
                        )
                        answers = [post(runs[s.name]["port"], b)["prediction"] for b in bodies[:8]]
                        entry["answer_mismatches"] = int(
                            np.sum(np.asarray(answers) != expected[:8])
                        )
                        if warmup:
                            wrk(runs[s.name]["port"], 8, warmup, bodies_path)
                    except Exception as exc:  # noqa: BLE001 - report the server, go on with the rest
                        entry["failed"] = str(exc)[-1500:]
                        _common.log(f"  {m.key} {s.name}: {entry['failed'][:300]}")
                ok = [s for s in live if "failed" not in entries[s.name]]
                samples: Dict[str, Dict[int, List[dict]]] = {
                    s.name: {c: [] for c in concurrencies} for s in ok
                }
                for r in range(rounds):
                    for c in concurrencies:
                        order = ok[r % len(ok) :] + ok[: r % len(ok)] if ok else []
                        for s in order:
                            try:
                                samples[s.name][c].append(
                                    wrk(
                                        runs[s.name]["port"],
                                        c,
                                        seconds,
                                        bodies_path,
                                        runs[s.name]["proc"].pid,
                                    )
                                )
                            except Exception as exc:  # noqa: BLE001
                                entries[s.name].setdefault("wrk_failures", []).append(
                                    str(exc)[-500:]
                                )
                for s in ok:
                    entry = entries[s.name]
                    for c, got in samples[s.name].items():
                        if not got:
                            continue
                        keys_ = ["rps", "p50_us", "p90_us", "p99_us", "mean_us"]
                        if all("server_cpu_us_per_request" in g for g in got):
                            keys_.append("server_cpu_us_per_request")
                        summary = {k: _common.stats([g[k] for g in got]) for k in keys_}
                        summary["errors"] = int(sum(g["errors"] for g in got))
                        summary["requests"] = int(sum(g["requests"] for g in got))
                        summary["error_kinds"] = {
                            k: int(sum(g[k] for g in got))
                            for k in ("connect", "read", "write", "status", "timeout")
                        }
                        entry["by_concurrency"][str(c)] = summary
                        _common.log(
                            f"  {m.key:7s} {workers}w c={c:<3d} {s.name:22s} "
                            f"{summary['rps']['median']:9.0f} req/s  p50 "
                            f"{summary['p50_us']['median'] / 1e3:7.2f} ms  p99 "
                            f"{summary['p99_us']['median'] / 1e3:7.2f} ms  server CPU "
                            f"{med_cpu(summary):7.0f} µs/req  errors {summary['errors']}"
                        )
                    entry["memory"] = memory(runs[s.name]["proc"])
                result["runs"].extend(entries.values())
            finally:
                for r_ in runs.values():
                    stop(r_["proc"])
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    return result


def main(argv=None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5, help="seconds per wrk run (default 5)")
    p.add_argument(
        "--rounds", type=int, default=3, help="wrk runs per server and concurrency (default 3)"
    )
    args = p.parse_args(argv)
    try:
        result = run(args)
    finally:
        stop_all()
    path = args.out / "http.json"
    _common.write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
