#!/usr/bin/env bash
# Fuzzing mlfast.  `make fuzz FUZZ_SECONDS=600` runs this.
#
#   fuzz/run.sh [load|codec|all] [SECONDS]     fuzz (all: 3/4 of the time on load)
#   fuzz/run.sh merge                          re-minimise fuzz/corpus/ from what
#                                              fuzzing found (libFuzzer -merge=1)
#   fuzz/run.sh replay load|codec FILE...      run inputs once (a crash, a finding)
#
# Targets:
#   load   fuzz/fuzz_load.py: model file bytes -> decompression, the C pickle VM,
#          builders, C constructors, every predict-like method.  The extension is
#          built by clang with -fsanitize=address,undefined,fuzzer-no-link in a
#          copy of the work tree ($FUZZ_BUILD), so libFuzzer sees C edges; the
#          mlfast Python modules are instrumented by atheris.
#   codec  fuzz/fuzz_codec.py: request bodies and headers -> the serving core's
#          decoders and handlers (JSON, CSV, NPY, V2 tensors, Triton binary).
#
# Crashes (ASan, UBSan, a Python exception from the codec target), hangs
# (-timeout) and memory blow-ups (-rss_limit_mb, -malloc_limit_mb) go to
# fuzz/artifacts/; exceptions the load target should not let escape go to
# fuzz/findings/.  New corpus entries go to $FUZZ_BUILD/corpus-*, never to
# fuzz/corpus/ (committed, small) until `fuzz/run.sh merge`.
#
# Environment: PYTHON (default .venv/bin/python), FUZZ_BUILD (default
# /tmp/mlfast-fuzz-build), FUZZ_KEEP_GOING=1 (libFuzzer fork mode: go on after
# a crash, collect them all), FUZZ_FLAGS (more libFuzzer flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
BUILD="${FUZZ_BUILD:-/tmp/mlfast-fuzz-build}"
MODE="${1:-all}"

SAN_CFLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all \
-fsanitize-recover=signed-integer-overflow -fno-wrapv -fno-omit-frame-pointer -g"
SAN_LDFLAGS="-fsanitize=address,undefined,fuzzer-no-link"

log() { echo "fuzz: $*" >&2; }

build() {
    # A copy of the work tree (uncommitted fixes included), rebuilt when the C
    # sources, setup.py or the flags change.  /work/main's own extension is
    # never touched.
    mkdir -p "$BUILD/src"
    local stamp
    stamp="$(cat "$ROOT"/csrc/*.c "$ROOT"/csrc/*.h "$ROOT/setup.py" | cksum | cut -d' ' -f1)-$(echo "$SAN_CFLAGS" | cksum | cut -d' ' -f1)"
    (cd "$ROOT" && tar -cf - --exclude='__pycache__' --exclude='*.so' csrc mlfast setup.py pyproject.toml) |
        tar -xf - -C "$BUILD/src"
    if [ -f "$BUILD/src/.stamp" ] && [ "$(cat "$BUILD/src/.stamp")" = "$stamp" ] &&
        ls "$BUILD"/src/mlfast/_core*.so >/dev/null 2>&1; then
        return
    fi
    log "building the instrumented extension in $BUILD/src"
    rm -f "$BUILD"/src/mlfast/_core*.so
    (cd "$BUILD/src" && CC=clang LDSHARED="clang -shared" CFLAGS="$SAN_CFLAGS" LDFLAGS="$SAN_LDFLAGS" \
        nice -n 10 "$PY" setup.py -q build_ext --inplace >"$BUILD/build.log" 2>&1) ||
        { tail -30 "$BUILD/build.log" >&2; exit 1; }
    echo "$stamp" >"$BUILD/src/.stamp"
}

fuzz_env() {
    local atheris_dir
    atheris_dir="$("$PY" -c 'import atheris; print(atheris.path())')"
    export LD_PRELOAD="$atheris_dir/asan_with_fuzzer.so"
    export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/fuzz/ubsan.supp"
    export PYTHONPATH="$BUILD/src:$ROOT/fuzz"
    # libFuzzer re-runs the target as argv[0] in merge and fork modes
    export PATH="$(dirname "$PY"):$PATH"
    export FUZZ_FINDINGS="$ROOT/fuzz/findings"
    export PYTHONHASHSEED=0
}

common_flags() {
    echo "-timeout=25 -max_len=65536 -rss_limit_mb=4096 -malloc_limit_mb=1024 \
-artifact_prefix=$ROOT/fuzz/artifacts/ -print_final_stats=1 ${FUZZ_FLAGS:-}"
}

run_target() {   # target seconds
    local target="$1" seconds="$2" work="$BUILD/corpus-$1" rc=0
    mkdir -p "$work" "$ROOT/fuzz/artifacts" "$ROOT/fuzz/corpus/$target"
    local keep=""
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        keep="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
    fi
    log "$target: ${seconds}s, corpus $ROOT/fuzz/corpus/$target (+ $work)"
    # shellcheck disable=SC2046
    (cd "$BUILD" && nice -n 10 "$PY" "$ROOT/fuzz/fuzz_$target.py" $(common_flags) $keep \
        -max_total_time="$seconds" "$work" "$ROOT/fuzz/corpus/$target") 2>&1 |
        tee "$BUILD/fuzz-$target.log" | grep -E --line-buffered \
            'pulse|DONE|ERROR|SUMMARY|finding|crash-|timeout-|oom-|stat::|Done [0-9]+ runs|^#[0-9]+: cov' || true
    rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || log "$target: libFuzzer exited $rc (see $BUILD/fuzz-$target.log and fuzz/artifacts/)"
    return "$rc"
}

merge() {   # keep what covers something new, fresh dir, few hundred files < 64 KB
    local target fresh
    for target in load codec; do
        [ -d "$ROOT/fuzz/corpus/$target" ] || continue
        fresh="$BUILD/merged-$target"
        rm -rf "$fresh" && mkdir -p "$fresh" "$BUILD/corpus-$target"
        # edges only (-use_counters=0), not hit counts: a few hundred files.
        # The loader's corpus is kept for its C coverage (with the Python
        # builders' edges too it would be twice as large); the codec's for
        # its Python coverage, which is all it has
        (cd "$BUILD" && FUZZ_PY_COVERAGE=$([ "$target" = load ] && echo 0 || echo 1) \
            nice -n 10 "$PY" "$ROOT/fuzz/fuzz_$target.py" $(common_flags) -merge=1 -use_counters=0 \
            "$fresh" "$ROOT/fuzz/corpus/$target" "$BUILD/corpus-$target" ${MERGE_EXTRA:-}) \
            >"$BUILD/merge-$target.log" 2>&1 || { tail -20 "$BUILD/merge-$target.log" >&2; return 1; }
        find "$fresh" -type f -size +65535c -delete
        rm -rf "$ROOT/fuzz/corpus/$target" && cp -r "$fresh" "$ROOT/fuzz/corpus/$target"
        log "$target: $(ls "$ROOT/fuzz/corpus/$target" | wc -l) files, $(du -sh "$ROOT/fuzz/corpus/$target" | cut -f1)"
    done
}

command -v clang >/dev/null || { log "clang is missing (make fuzz installs it)"; exit 1; }
"$PY" -c 'import atheris' 2>/dev/null || { log "atheris is missing (make fuzz installs it)"; exit 1; }
build
fuzz_env

case "$MODE" in
    load|codec)
        run_target "$MODE" "${2:-600}" ;;
    all)
        total="${2:-600}"
        status=0
        run_target load $((total * 3 / 4)) || status=$?
        run_target codec $((total - total * 3 / 4)) || status=$?
        if [ -n "$(ls -A "$ROOT/fuzz/findings" 2>/dev/null)" ]; then
            log "findings (exceptions that escaped) in fuzz/findings/:"
            ls "$ROOT/fuzz/findings" | grep -v '\.txt$' >&2
            status=1
        fi
        exit "$status" ;;
    merge)
        merge ;;
    replay)
        target="$2"; shift 2
        (cd "$BUILD" && "$PY" "$ROOT/fuzz/fuzz_$target.py" -runs=1 "$@") ;;
    *)
        echo "usage: $0 [load|codec|all] [SECONDS] | merge | replay load|codec FILE..." >&2
        exit 2 ;;
esac
