#!/usr/bin/env bash
# Runs the test suite against a copy of mlfast built with AddressSanitizer and
# UndefinedBehaviorSanitizer (setup.py's MLFAST_SANITIZE=1), in a temporary
# directory: the work tree's own extension (mlfast/_core*.so), which other
# tests and servers use, is never rebuilt.
#
#   scripts/test_sanitized.sh                 the loader and kernel tests (~3 min)
#   scripts/test_sanitized.sh --all          the whole suite
#   scripts/test_sanitized.sh tests/test_x.py -k name    any pytest arguments
#
# Environment: PYTHON (default .venv/bin/python), CC (default gcc; clang works
# too, its runtime is preloaded instead), SANITIZE_KEEP=1 keeps the temp dir.
#
# How it runs: the copy is built in place (setup.py build_ext --inplace) with
# MLFAST_SANITIZE=1: -O0 -g3, -fsanitize=address,undefined,
# -fno-sanitize-recover=undefined.  CPython's CFLAGS carry -fwrapv, so signed
# overflow is defined here and not reported; fuzz/run.sh's clang build drops
# -fwrapv to find those.  Python itself is not instrumented, so the ASan
# runtime is preloaded (LD_PRELOAD) and leak detection is off (CPython frees
# little at exit; tests/test_leaks.py and scripts/valgrind_check.sh look for
# leaks).  PYTHONPATH puts the copy first, so tests and the subprocesses they
# start import the sanitized build.  pytest captures at the sys level only
# (--capture=sys), so a sanitizer's report, written to fd 2 just before it
# aborts the process, reaches the terminal.  Any report fails the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CC="${CC:-gcc}"

if [ "${1:-}" = "--all" ]; then
    shift
    set -- tests "$@"
elif [ $# = 0 ]; then
    # the loader (VM, decompression, hostile files), the kernels and the metrics tally
    set -- tests/test_hostile.py tests/test_hostile_regressions.py tests/test_versions.py \
        tests/test_parity_linear.py tests/test_parity_trees.py tests/test_smoke.py \
        tests/test_leaks.py tests/test_c_lint.py tests/test_tally.py tests/test_graph_contract.py tests/test_parity_compose.py \
        tests/test_parity_ensembles.py tests/test_parity_encoders.py tests/test_typed_input.py \
        tests/test_serving_tables.py tests/test_parity_multiclass.py \
        tests/test_hostile_gbdt.py tests/test_gbdt_versions.py
    # not test_parity_gbdt.py: xgboost's own C++ throws (its CUDA probe)
    # through the preloaded ASan runtime's __cxa_throw, which aborts; the
    # XGBoost, LightGBM and CatBoost files and answers of the fixtures need
    # no library
fi

WORK="$(mktemp -d /tmp/mlfast-sanitized.XXXXXX)"
cleanup() { [ "${SANITIZE_KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

(cd "$ROOT" && tar -cf - --exclude='__pycache__' --exclude='*.so' csrc mlfast setup.py pyproject.toml \
    tests fuzz/corpus) | tar -xf - -C "$WORK"

echo "building a sanitized copy in $WORK ($CC)" >&2
start=$(date +%s)
(cd "$WORK" && MLFAST_SANITIZE=1 CC="$CC" LDSHARED="$CC -shared" \
    nice -n 10 "$PY" setup.py -q build_ext --inplace >"$WORK/build.log" 2>&1) ||
    { tail -40 "$WORK/build.log" >&2; exit 1; }
SO="$(ls "$WORK"/mlfast/_core*.so)"
# (into a file: with pipefail, grep -q quitting early would fail nm with SIGPIPE)
nm -D "$SO" >"$WORK/symbols"
grep -q __asan_report "$WORK/symbols" || { echo "not an ASan build: $SO" >&2; exit 1; }
grep -q __ubsan_handle "$WORK/symbols" || { echo "not a UBSan build: $SO" >&2; exit 1; }

if [ "$CC" = clang ] || "$CC" --version 2>/dev/null | grep -q clang; then
    ASAN_LIB="$("$CC" -print-file-name=libclang_rt.asan-x86_64.so)"
else
    ASAN_LIB="$("$CC" -print-file-name=libasan.so)"
fi
[ -f "$ASAN_LIB" ] || { echo "no ASan runtime found ($ASAN_LIB)" >&2; exit 1; }

export LD_PRELOAD="$ASAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:print_summary=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export MLFAST_SANITIZED=1

got="$(cd "$WORK" && "$PY" -c 'import mlfast; print(mlfast._core.__file__)')"
[ "$got" = "$SO" ] || { echo "tests would import $got, not the sanitized $SO" >&2; exit 1; }
echo "built in $(( $(date +%s) - start ))s; running pytest $* under ASan+UBSan" >&2

cd "$WORK"
status=0
nice -n 10 "$PY" -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1 | tee "$WORK/pytest.log" ||
    status=${PIPESTATUS[0]}
REPORT='^==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|^[^ ]+\.(c|h):[0-9]+:[0-9]+: runtime error:'
if grep -qE "$REPORT" "$WORK/pytest.log"; then
    echo "sanitizer reports:" >&2
    grep -E -A12 "$REPORT" "$WORK/pytest.log" | head -100 >&2
    [ "$status" != 0 ] || status=1
fi
echo "sanitized run: pytest exited $status after $(( $(date +%s) - start ))s" >&2
exit "$status"
