"""Run every benchmark and write BENCHMARKS.md with its plots (`make bench`).

    python benchmarks/run_all.py                 # all three, then the report
    python benchmarks/run_all.py --skip http     # leave one out (its old results stay)
    python benchmarks/run_all.py --quick --out /tmp/b --dest /tmp/b

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which this workplace sets on some
processors for older OpenBLAS builds and which slow a current numpy, are
unset together for the benchmark processes only; what was found is passed
on and recorded in BENCHMARKS.md, with the OpenBLAS kernel each library then
runs (threadpoolctl).  Nothing else in the environment changes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common

SCRIPTS = {
    "inprocess": "bench_inprocess.py",
    "coldstart": "bench_coldstart.py",
    "http": "bench_http.py",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip", action="append", default=[], choices=list(SCRIPTS))
    p.add_argument("--out", type=Path, default=_common.RESULTS, help="results folder")
    p.add_argument("--work", type=Path, default=_common.WORK, help="scratch folder")
    p.add_argument(
        "--dest", type=Path, default=_common.HERE, help="where BENCHMARKS.md and the plots go"
    )
    args = p.parse_args(argv)

    env = dict(os.environ)
    found = {v: env.pop(v, None) for v in _common.OPENBLAS_VARS}
    env[_common.FOUND_ENV] = json.dumps(found)
    if any(found.values()):
        print(
            "unset for the benchmarks: " + ", ".join(f"{k}={v}" for k, v in found.items() if v),
            flush=True,
        )

    command = (
        "make bench"
        if not argv and len(sys.argv) == 1
        else "python benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    failed = []
    for name, script in SCRIPTS.items():
        if name in args.skip:
            continue
        argv_ = [
            sys.executable,
            str(_common.HERE / script),
            "--out",
            str(args.out),
            "--work",
            str(args.work),
        ]
        if args.quick:
            argv_.append("--quick")
        print(f"== {script}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(argv_, env=env).returncode
        print(f"== {script}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(script)
    report = subprocess.run(
        [
            sys.executable,
            str(_common.HERE / "report.py"),
            "--results",
            str(args.out),
            "--dest",
            str(args.dest),
            "--command",
            command,
        ],
        env=env,
    )
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed or report.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
