#!/usr/bin/env bash
# valgrind memcheck over a representative workload of mlfast's C code: loading
# every model family (and compressed files), predicting with every method,
# refusing hostile payloads, truncated and corrupt files and bad input, and
# the fuzzing corpus.  Slow for a test (valgrind runs Python ~30x slower):
# not part of `make test`; about 2 minutes on one core.
#
#   scripts/valgrind_check.sh            the whole workload
#   VALGRIND_QUICK=1 scripts/valgrind_check.sh     a third of it
#
# The extension is built -O0 -g (MLFAST_DEBUG=1) in a temporary copy, so
# reports name file:line; /work's own build is not touched.  CPython runs with
# PYTHONMALLOC=malloc, so that every object goes through malloc and valgrind
# sees it (pymalloc's arenas would hide use-after-free and give false
# "uninitialised" reports).  A suppressions file for CPython can be given in
# VALGRIND_PYTHON_SUPP (CPython's Misc/valgrind-python.supp); with
# PYTHONMALLOC=malloc it is rarely needed.
#
# Fails (exit 1) if the workload fails, on any memcheck error (invalid read or
# write, use of uninitialised values, invalid free) with a frame of mlfast's
# C code in its stack, and on memory "definitely lost" that was allocated
# under one.  CPython 3.11 itself reports uninitialised-value errors under
# valgrind at start-up (small-int caching in longobject.c) and leaks its
# interpreter state at exit; those are counted in the summary, not failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/mlfast-valgrind.XXXXXX)"
cleanup() { [ "${VALGRIND_KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

(cd "$ROOT" && tar -cf - --exclude='__pycache__' --exclude='*.so' csrc mlfast setup.py pyproject.toml \
    tests/support tests/fixtures/versions/sk1.9.1 tests/fixtures/versions/sk1.1.3 fuzz/corpus/load) |
    tar -xf - -C "$WORK"
echo "building a debug copy in $WORK" >&2
(cd "$WORK" && MLFAST_DEBUG=1 nice -n 10 "$PY" setup.py -q build_ext --inplace >"$WORK/build.log" 2>&1) ||
    { tail -30 "$WORK/build.log" >&2; exit 1; }

cat >"$WORK/workload.py" <<'EOF'
"""What valgrind watches: every C path a file or a request can reach."""
import bz2
import gzip
import io
import lzma
import os
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np

import mlfast

warnings.simplefilter("ignore")
np.seterr(all="ignore")
HERE = Path(__file__).parent
QUICK = os.environ.get("VALGRIND_QUICK") == "1"
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform",
           "score_samples")
counts = {"loaded": 0, "refused": 0, "predicted": 0, "bad input refused": 0}


def exercise(model):
    n = model.n_features_in_
    rng = np.random.RandomState(0)
    X = rng.randn(70, n) * 3                       # over one 64-row block
    with_nan = X.copy()
    with_nan[::5, 0] = np.nan                      # imputers and trees take it, others refuse
    for name in METHODS:
        fn = getattr(model, name, None)
        if fn is None:
            continue
        for arg in (X, np.asfortranarray(X, dtype=np.float32), X[::2, :], X[:1].tolist(), with_nan):
            try:
                fn(arg)
                counts["predicted"] += 1
            except ValueError:
                counts["bad input refused"] += 1
    for bad in (X[:, :-1], X[None], np.full((2, n), np.inf), [["a"] * n], X[:0]):
        try:
            model.predict(bad) if hasattr(model, "predict") else model.transform(bad)
        except (ValueError, TypeError):
            counts["bad input refused"] += 1


def load(data, **kw):
    try:
        model = mlfast.loads(data, **kw)
    except mlfast.MlfastError:
        counts["refused"] += 1
        return None
    counts["loaded"] += 1
    return model


stacks = ["sk1.9.1"] if QUICK else ["sk1.9.1", "sk1.1.3"]
files = sorted(p for s in stacks for p in (HERE / "tests/fixtures/versions" / s).glob("*")
               if p.suffix in (".joblib", ".pkl"))
if QUICK:
    files = files[::3]
for path in files:
    data = path.read_bytes()
    model = load(data)
    if model is not None:
        exercise(model)
    # truncated and bit-flipped copies of every file
    for cut in (len(data) // 3, len(data) - 7):
        load(data[:cut])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    load(bytes(flipped))

raw = (HERE / "tests/fixtures/versions/sk1.9.1/pipeline_scaler_logreg.joblib").read_bytes()
for packed in (zlib.compress(raw), gzip.compress(raw), bz2.compress(raw), lzma.compress(raw)):
    model = load(packed)
    load(packed[: len(packed) // 2])

sys.path.insert(0, str(HERE / "tests"))
from support.hostile import payloads as P  # noqa: E402

import tempfile  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    for i, build in enumerate(P.PAYLOADS.values()):
        d = Path(tmp) / str(i)
        d.mkdir()
        load(build(P.Ctx(d / "MARKER", d)).data)

corpus = sorted((HERE / "fuzz/corpus/load").glob("*"))
for path in corpus[:: 8 if QUICK else 1]:
    model = load(path.read_bytes(), max_memory=64 << 20)
    if model is not None and isinstance(model.n_features_in_, int) and model.n_features_in_ <= 512:
        exercise(model)

print("workload:", counts, "extension:", mlfast._core.__file__, flush=True)
EOF

SUPP=()
if [ -n "${VALGRIND_PYTHON_SUPP:-}" ]; then SUPP=(--suppressions="$VALGRIND_PYTHON_SUPP"); fi
LOG="$WORK/valgrind.log"
echo "running the workload under valgrind memcheck (log: $LOG)" >&2
start=$(date +%s)
status=0
(cd "$WORK" && PYTHONMALLOC=malloc PYTHONPATH="$WORK" MLFAST_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 \
    VALGRIND_QUICK="${VALGRIND_QUICK:-0}" nice -n 10 valgrind --tool=memcheck --error-exitcode=99 \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none \
    --num-callers=30 --track-origins=yes "${SUPP[@]}" --log-file="$LOG" \
    "$PY" "$WORK/workload.py" >"$WORK/workload.out" 2>&1) || status=$?
echo "valgrind finished in $(( $(date +%s) - start ))s (exit $status)" >&2

summary="$(grep -E '^==[0-9]+== ERROR SUMMARY' "$LOG" | tail -1)"
echo "$summary" >&2
# memcheck errors (invalid reads and writes, uninitialised values, bad frees)
# with a frame of mlfast's C code in their stack, and "definitely lost"
# blocks allocated under one
blocks() {   # $1: regex of the first line of the reports to keep
    awk -v start="$1" '$0 ~ start {block=$0; keep=0; next}
        block != "" && /(csrc\/[a-z_]+\.c:|_core\.cpython)/ {keep=1}
        block != "" && /^==[0-9]+== $/ {if (keep) print block; block=""; keep=0}' "$LOG"
}
mlfast_errors="$(blocks '== (Invalid|Conditional jump|Use of uninitialised|Mismatched|Syscall param|Source and destination|Argument .* of function)')"
mlfast_leaks="$(blocks 'definitely lost in loss record')"
others="$(grep -cE '== (Invalid|Conditional jump|Use of uninitialised|Mismatched|Syscall param)' "$LOG" || true)"
grep -E 'definitely lost:|indirectly lost:' "$LOG" | tail -2 >&2 || true
echo "memcheck errors in all: $others (in CPython, numpy and the like unless listed below)" >&2
[ -z "$mlfast_errors" ] || { echo "memcheck errors with an mlfast frame:" >&2; echo "$mlfast_errors" >&2; }
[ -z "$mlfast_leaks" ] || { echo "memory definitely lost under an mlfast frame:" >&2; echo "$mlfast_leaks" >&2; }
grep -E '^workload:' "$WORK/workload.out" >&2 || true
if [ "$status" != 0 ] && [ "$status" != 99 ] || [ -n "$mlfast_errors" ] || [ -n "$mlfast_leaks" ]; then
    kept="/tmp/mlfast-valgrind-$(date +%s).log"
    cp "$LOG" "$kept"
    echo "valgrind check FAILED (workload exit $status); the log is kept in $kept" >&2
    exit 1
fi
echo "valgrind check passed: no memcheck error and no leak in mlfast's C code" >&2
