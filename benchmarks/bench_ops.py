"""Operations: what metrics, auth and access logs cost, and how much memory
workers share.

    python benchmarks/bench_ops.py            # writes benchmarks/results/ops.json, prints tables
    python benchmarks/bench_ops.py --quick    # one short round of everything: checks the script

1. Overhead.  ``wrk`` POSTs the lesson's ``{"features": [...]}`` to
   ``/predict`` (the bundled iris LogisticRegression: the smallest model, so
   that the per-request cost of the hooks weighs the most) on servers that
   differ only in their operations:

       bare         no hooks at all (``build_service(ops=None)`` through ``server.run``)
       off          ``mlfast serve --no-metrics --no-access-log``: request ids and headers only
       metrics+auth ``mlfast serve`` with ``MLFAST_API_KEYS`` and metrics, access log off
       all on       the same plus the JSON access log (to a file)

   for one worker (uvicorn) and two (gunicorn + uvicorn workers,
   prometheus-client's multiprocess mode).

   Side by side: each configuration runs at the same time as an "off"
   server, two wrk processes loading the two servers together, one worker
   each pinned to the same CPU (wrk on the other), or two workers each on
   both CPUs.  Whatever slows the machine during a round (other tenants,
   clock changes) slows both servers alike, so each round's ratio of the
   two is steady where a server's own req/s moves by 10-20% from one round
   to the next; taking turns instead left 5-8% swings in the ratio of two
   servers that run the same code.  The servers are started afresh every
   round: two processes of one server differ by a percent or two (hash
   seeds, addresses), which should average out over the rounds rather
   than tilt all of them.  A second "off" server against the first
   ("off (A/A)") shows what is left of the noise.  Per configuration
   and round: req/s, p50/p99 and the server's own CPU time per request
   (utime + stime of its processes from /proc/<pid>/stat over the run,
   divided by the requests wrk counted); "vs off" figures are medians over
   the rounds of each round's ratio.  The absolute req/s are those of a
   server sharing its CPUs with another: about half of what it serves
   alone.

1b. Instructions.  The same four servers (one worker) under valgrind's
   callgrind: user-space instructions per request over 400 requests on a
   keep-alive connection, three times, in each of three server processes
   per configuration (the median).  A count, not a time: a process's
   count repeats to within 0.1% whatever else the machine does (two
   processes differ by up to ~0.3%), where req/s moves by 10-20% between
   rounds, so it is the figure that resolves a cost of a few percent.
   Needs valgrind (``make bench-ops`` installs it).

2. Memory.  ``mlfast serve`` of a 500-tree RandomForest (the file
   benchmarks/forest_memory.py builds, about 1.1 million nodes) with 1, 2
   and 4 workers: RSS, PSS and USS (Private_Clean + Private_Dirty) of every
   process from ``/proc/<pid>/smaps_rollup``, after every worker has
   answered predictions.  PSS splits a shared page between the processes
   that map it, so the sum of PSS is the real total; RSS counts shared
   pages once per process.

3. Threads.  The same forest predicting 2,000-row batches in one thread,
   then in two threads at once (``mlfast.set_num_threads(1)``: no splitting
   inside a call): the GIL is released while the model computes, so two
   threads of one worker overlap.

Every server binds 127.0.0.1 on a free port and is stopped at the end.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
API_KEY = "bench-api-key-0123456789abcdef"

LUA = r"""
local body = '{"features": [5.1, 3.5, 1.4, 0.2]}'
function init(args)
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  if args[1] ~= nil and args[1] ~= "" then wrk.headers["X-API-Key"] = args[1] end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""

BARE = r"""
import sys
from mlfast.serving import build_service
from mlfast.serving.server import prepare, run
workers = int(sys.argv[3])
prepare(workers)
service = build_service(sys.argv[1], ops=None)
run(service, host="127.0.0.1", port=int(sys.argv[2]), workers=workers, log_level="warning")
"""

_RUNNING: List[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    argv: List[str], env: Dict[str, str], log: Path, cpus: Optional[set] = None
) -> subprocess.Popen:
    full = dict(os.environ)
    full.update(env)
    out = open(log, "wb")
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(
        argv,
        env=full,
        stdout=out,
        stderr=out,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=str(ROOT),
        preexec_fn=pin,
    )
    out.close()
    _RUNNING.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)
    if proc in _RUNNING:
        _RUNNING.remove(proc)


atexit.register(lambda: [stop(p) for p in list(_RUNNING)])


def post(port: int, body: bytes, key: Optional[str] = None, timeout: float = 10) -> int:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()
        return r.status


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not ready: {log.read_text(errors='replace')[-2000:]}")


def wrk(
    port: int, seconds: int, connections: int, lua: Path, key: str = "", cpus: Optional[set] = None
) -> dict:
    threads = len(cpus) if cpus else 2
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}/predict",
        "--",
        key,
    ]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=pin)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    result = json.loads(line[-1][len("WRKJSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


# -- 1. overhead -----------------------------------------------------------------------

CONFIGS = ["bare", "off", "metrics+auth", "all on"]
# each runs beside an "off" server; "off (A/A)" is a second "off" server
SIDE_BY_SIDE = ["off (A/A)", "bare", "metrics+auth", "all on"]


def server_argv(config: str, model: str, port: int, workers: int):
    serve = [
        PY,
        "-m",
        "mlfast",
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if config == "bare":
        return [PY, "-c", BARE, model, str(port), str(workers)], {}, ""
    if config in ("off", "off (A/A)"):
        return serve + ["--no-metrics", "--no-access-log", "--log-level", "warning"], {}, ""
    keys = {"MLFAST_API_KEYS": API_KEY}
    if config == "metrics+auth":
        return serve + ["--no-access-log", "--log-level", "warning"], keys, API_KEY
    return serve + ["--log-level", "info"], keys, API_KEY


def overhead(args, work: Path) -> List[dict]:
    import mlfast

    model = mlfast.demo_model_path()
    lua = work / "ops.lua"
    lua.write_text(LUA)
    rounds, seconds = (1, 1) if args.quick else (args.rounds, args.seconds)
    connections = max(1, args.connections // 2)  # per server: two servers share the load
    out = []
    for workers in [1] if args.quick else [1, 2]:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus = {cpus[-1]} if workers == 1 and len(cpus) >= 2 else None
        wrk_cpus = set(cpus[:-1]) if server_cpus else None
        pairs: Dict[str, List[tuple]] = {c: [] for c in SIDE_BY_SIDE}
        for r in range(rounds):
            # new server processes every round: two processes of one server
            # differ by a percent or two (hash seeds, addresses), and that
            # must average out over the rounds, not bias every round alike
            servers = {}
            try:
                for config in ["off"] + SIDE_BY_SIDE:
                    port = free_port()
                    argv, env, key = server_argv(config, model, port, workers)
                    env = {**env, "PROMETHEUS_MULTIPROC_DIR": ""}
                    log = work / f"server-{file_tag(config)}-{workers}.log"
                    servers[config] = (start(argv, env, log, server_cpus), port, key, log)
                for proc, port, key, log in servers.values():
                    wait_ready(proc, port, log)
                    for _ in range(200):  # warm up, every worker
                        assert post(port, b'{"features": [5.1, 3.5, 1.4, 0.2]}', key) == 200
                    if not args.quick:
                        wrk(port, 1, connections, lua, key, wrk_cpus)
                for config in SIDE_BY_SIDE:
                    pairs[config].append(
                        side_by_side(
                            servers["off"], servers[config], seconds, connections, lua, wrk_cpus
                        )
                    )
            finally:
                for proc, *_ in servers.values():
                    stop(proc)
            print(
                f"  {workers} worker(s), round {r + 1}/{rounds}: "
                + ", ".join(
                    f"{c} {pairs[c][-1][1]['rps']:.0f}/s beside off {pairs[c][-1][0]['rps']:.0f}/s"
                    for c in SIDE_BY_SIDE
                ),
                flush=True,
            )
        for config in SIDE_BY_SIDE:
            ps = pairs[config]
            runs = [x for _, x in ps]

            def vs_off(field: str) -> List[float]:  # each round's ratio to the off server beside it
                return [x[field] / o[field] - 1 for o, x in ps]

            cpu = vs_off("cpu_us")
            out.append(
                {
                    "vs_off_rps": statistics.median(vs_off("rps")),
                    "vs_off_p99": statistics.median(vs_off("p99_us")),
                    "vs_off_p50": statistics.median(vs_off("p50_us")),
                    "vs_off_cpu": statistics.median(cpu),
                    "vs_off_cpu_range": [min(cpu), max(cpu)],
                    "workers": workers,
                    "config": config,
                    "rps": statistics.median(x["rps"] for x in runs),
                    "off_rps": statistics.median(o["rps"] for o, _ in ps),
                    "p50_us": statistics.median(x["p50_us"] for x in runs),
                    "p99_us": statistics.median(x["p99_us"] for x in runs),
                    "cpu_us_per_request": statistics.median(x["cpu_us"] for x in runs),
                    "errors": sum(
                        x["errors"] + x["non2xx"] + o["errors"] + o["non2xx"] for o, x in ps
                    ),
                    "rounds": [round(x["rps"]) for x in runs],
                }
            )
    return out


def file_tag(config: str) -> str:
    """A configuration's name as a file name part ('off (A/A)' -> 'off__A_A_')."""
    return "".join(ch if ch.isalnum() else "_" for ch in config)


def side_by_side(
    off: tuple, other: tuple, seconds: int, connections: int, lua: Path, cpus: Optional[set]
) -> tuple:
    """Two servers loaded at the same time by two wrk processes: (off's run,
    the other's run), each with the server's CPU time per request."""
    runs: Dict[int, dict] = {}
    failures: List[BaseException] = []

    def load(i: int, server: tuple) -> None:
        proc, port, key, _ = server
        try:
            pids = processes(proc.pid)
            before = cpu_seconds(pids)
            run = wrk(port, seconds, connections, lua, key, cpus)
            run["cpu_us"] = (cpu_seconds(pids) - before) / max(1, run["requests"]) * 1e6
            runs[i] = run
        except BaseException as e:  # re-raised below, in the caller's thread
            failures.append(e)

    threads = [
        threading.Thread(target=load, args=(i, server)) for i, server in enumerate((off, other))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return runs[0], runs[1]


def cpu_seconds(pids: List[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


# -- 1b. instructions per request ------------------------------------------------------
#
# wrk's req/s move by 10-20% from one five-second round to the next on a shared
# machine, more than the few microseconds a request the hooks cost.  Counting
# the server's instructions does not depend on what else runs: each server
# (one worker) runs under valgrind's callgrind with instrumentation off while
# it starts, then on for a warm-up and CG_REQUESTS requests on one keep-alive
# connection, between a zeroing and a dump of the counters.  User-space
# instructions only: the kernel's socket and file work is not counted (the
# same for every configuration but the access log's write).

CG_WARMUP = 50
CG_REQUESTS = 400
# Server processes per configuration: a process's count repeats to 0.1%, but
# two processes of the same server differ by up to ~2,000 instructions a
# request (hash seeds, addresses), so each figure is the median of several.
CG_PROCESSES = 3


def callgrind_control(pid: int, *args: str) -> None:
    subprocess.run(
        ["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120
    )


def callgrind_totals(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def keepalive_posts(port: int, n: int, key: str) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    try:
        for _ in range(n):
            conn.request("POST", "/predict", b'{"features": [5.1, 3.5, 1.4, 0.2]}', headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
    finally:
        conn.close()


def count_instructions(config: str, model: str, work: Path, n: int, repeats: int) -> float:
    """One server process under callgrind: the median over ``repeats`` runs
    of ``n`` requests of its instructions a request."""
    port = free_port()
    argv, env, key = server_argv(config, model, port, 1)
    tag = file_tag(config)
    prefix = work / f"cg-{tag}"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={prefix}.%p",
    ] + argv
    log = work / f"cg-server-{tag}.log"
    proc = start(argv, {**env, "PROMETHEUS_MULTIPROC_DIR": ""}, log)
    counts = []
    try:
        wait_ready(proc, port, log, timeout=300)
        pid = proc.pid  # valgrind runs the program in its own process
        callgrind_control(pid, "-i", "on")
        keepalive_posts(port, CG_WARMUP, key)
        for _ in range(repeats):
            callgrind_control(pid, "-z")
            keepalive_posts(port, n, key)
            before = set(work.glob(f"cg-{tag}.*"))
            callgrind_control(pid, "-d")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                new = [p for p in work.glob(f"cg-{tag}.*") if p not in before and p.stat().st_size]
                if new:
                    break
                time.sleep(0.2)
            counts.append(callgrind_totals(new[0]) / n)
            for p in new:
                p.unlink()
    finally:
        stop(proc)
        for p in work.glob(f"cg-{tag}.*"):
            p.unlink()
    return statistics.median(counts)


def instructions(args, work: Path) -> List[dict]:
    import mlfast

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("  valgrind is not installed: instructions per request skipped", flush=True)
        return []
    model = mlfast.demo_model_path()
    n = 20 if args.quick else CG_REQUESTS
    processes = 1 if args.quick else CG_PROCESSES
    per_process: Dict[str, List[float]] = {c: [] for c in CONFIGS}
    for _ in range(processes):  # interleaved: one process of each configuration in turn
        for config in CONFIGS:
            per_process[config].append(
                count_instructions(config, model, work, n, 1 if args.quick else 3)
            )
    out = []
    for config in CONFIGS:
        counts = per_process[config]
        out.append(
            {
                "config": config,
                "instructions_per_request": statistics.median(counts),
                "processes": [round(c) for c in counts],
                "requests": n,
            }
        )
        print(
            f"  {config}: {statistics.median(counts):,.0f} instructions a request "
            f"(processes: {', '.join(f'{c:,.0f}' for c in counts)})",
            flush=True,
        )
    return out


# -- 2. memory -------------------------------------------------------------------------


def smaps(pid: int) -> Dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def processes(pid: int) -> List[int]:
    kids = []
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        kids = [int(k) for k in text]
    except OSError:
        pass
    return [pid] + [p for k in kids for p in processes(k)]


def forest_model(args, work: Path) -> Path:
    sys.path.insert(0, str(HERE))
    import forest_memory

    params = forest_memory.QUICK if args.quick else forest_memory.FULL
    path = HERE / "_work" / "forest_memory" / ("rf-quick.joblib" if args.quick else "rf500.joblib")
    forest_memory.build(path, params)
    return path


def memory(args, work: Path, model: Path) -> List[dict]:
    import numpy as np

    body = json.dumps({"features": np.linspace(-1, 1, 20).tolist()}).encode()
    out = []
    for workers in [1, 2, 4]:
        port = free_port()
        log = work / f"memory-{workers}.log"
        argv = [
            PY,
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
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        proc = start(argv, {"PROMETHEUS_MULTIPROC_DIR": ""}, log)
        try:
            wait_ready(proc, port, log, timeout=300)
            for _ in range(50 * workers):  # fresh connections: every worker predicts
                assert post(port, body, timeout=60) == 200
            time.sleep(0.5)
            pids = processes(proc.pid)
            per = []
            for pid in pids:
                m = smaps(pid)
                per.append(
                    {
                        "pid": pid,
                        "role": "master" if pid == proc.pid and workers > 1 else "worker",
                        "rss_mib": m["Rss"] / 1024,
                        "pss_mib": m["Pss"] / 1024,
                        "uss_mib": (m["Private_Clean"] + m["Private_Dirty"]) / 1024,
                        "shared_mib": (m["Shared_Clean"] + m["Shared_Dirty"]) / 1024,
                    }
                )
            out.append(
                {
                    "workers": workers,
                    "processes": per,
                    "total_rss_mib": sum(p["rss_mib"] for p in per),
                    "total_pss_mib": sum(p["pss_mib"] for p in per),
                    "total_uss_mib": sum(p["uss_mib"] for p in per),
                }
            )
            print(
                f"  {workers} worker(s): PSS total {out[-1]['total_pss_mib']:.0f} MiB, RSS total "
                f"{out[-1]['total_rss_mib']:.0f} MiB over {len(per)} processes",
                flush=True,
            )
        finally:
            stop(proc)
    return out


# -- 3. threads ------------------------------------------------------------------------


def threads(args, model: Path) -> dict:
    import numpy as np

    import mlfast

    m = mlfast.load(model)
    mlfast.set_num_threads(1)  # one thread per call: what overlaps is the callers
    X = np.random.default_rng(0).standard_normal((500 if args.quick else 2000, m.n_features_in_))
    m.predict(X)
    batches = 4 if args.quick else 16

    def work(n):
        for _ in range(n):
            m.predict(X)

    t = time.perf_counter()
    work(batches)
    one = time.perf_counter() - t
    t = time.perf_counter()
    ts = [threading.Thread(target=work, args=(batches // 2,)) for _ in range(2)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    two = time.perf_counter() - t
    return {
        "batch_rows": len(X),
        "batches": batches,
        "one_thread_s": one,
        "two_threads_s": two,
        "speedup": one / two,
        "cpus": len(os.sched_getaffinity(0)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--out", type=Path, default=HERE / "results" / "ops.json")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["overhead", "instructions", "memory", "threads"],
    )
    args = p.parse_args()
    if shutil.which("wrk") is None and "overhead" not in args.skip:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    result: dict = {"quick": args.quick, "cpus": len(os.sched_getaffinity(0))}
    try:
        if "overhead" not in args.skip:
            print(
                "overhead of metrics, auth and access logs (wrk, iris LogisticRegression):",
                flush=True,
            )
            result["overhead"] = overhead(args, work)
        if "instructions" not in args.skip:
            print(
                "instructions a request (callgrind, one worker, iris LogisticRegression):",
                flush=True,
            )
            result["instructions"] = instructions(args, work)
        if "memory" not in args.skip or "threads" not in args.skip:
            model = forest_model(args, work)
            result["forest_file_mib"] = model.stat().st_size / 2**20
        if "memory" not in args.skip:
            print(f"memory of 1, 2, 4 workers serving {model.name}:", flush=True)
            result["memory"] = memory(args, work, model)
        if "threads" not in args.skip:
            result["threads"] = threads(args, model)
    finally:
        for proc in list(_RUNNING):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    report(result)


def report(result: dict) -> None:
    if "overhead" in result:
        print(
            "\n| workers | config (beside off) | req/s | off req/s | p50 µs | p99 µs | server CPU µs/request "
            "| vs off: req/s | p50 | p99 | CPU (min..max) | errors |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in result["overhead"]:
            lo, hi = r["vs_off_cpu_range"]
            print(
                f"| {r['workers']} | {r['config']} | {r['rps']:.0f} | {r['off_rps']:.0f} | "
                f"{r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['cpu_us_per_request']:.0f} | "
                f"{r['vs_off_rps'] * 100:+.1f}% | {r['vs_off_p50'] * 100:+.1f}% | "
                f"{r['vs_off_p99'] * 100:+.1f}% | {r['vs_off_cpu'] * 100:+.1f}% "
                f"({lo * 100:+.1f}..{hi * 100:+.1f}) | {r['errors']} |"
            )
        print(
            "(each configuration ran at the same time as an 'off' server on the same CPUs; medians over "
            "rounds of each round's ratio)"
        )
    if result.get("instructions"):
        print("\n| config | instructions a request | vs off |")
        print("|---|---|---|")
        base = next(r for r in result["instructions"] if r["config"] == "off")
        for r in result["instructions"]:
            print(
                f"| {r['config']} | {r['instructions_per_request']:,.0f} | "
                f"{(r['instructions_per_request'] / base['instructions_per_request'] - 1) * 100:+.1f}% |"
            )
    if "memory" in result:
        print(f"\nmemory (forest file {result['forest_file_mib']:.0f} MiB), MiB:")
        print("| workers | process | RSS | PSS | USS | shared |")
        print("|---|---|---|---|---|---|")
        for m in result["memory"]:
            for p in m["processes"]:
                print(
                    f"| {m['workers']} | {p['role']} {p['pid']} | {p['rss_mib']:.0f} | {p['pss_mib']:.0f} | "
                    f"{p['uss_mib']:.0f} | {p['shared_mib']:.0f} |"
                )
            print(
                f"| {m['workers']} | **total** | {m['total_rss_mib']:.0f} | {m['total_pss_mib']:.0f} | "
                f"{m['total_uss_mib']:.0f} | |"
            )
    if "threads" in result:
        t = result["threads"]
        print(
            f"\nthreads: {t['batches']} batches of {t['batch_rows']} rows: "
            f"one thread {t['one_thread_s']:.2f} s, "
            f"two threads {t['two_threads_s']:.2f} s (x{t['speedup']:.2f} on {t['cpus']} CPUs)"
        )


if __name__ == "__main__":
    main()
