#!/usr/bin/env bash
# Builds mlfast with every supported Python other than .venv's and runs a fast
# part of the suite on each (`make test-pythons`; CI runs it after `make test`,
# which covers .venv's Python with the whole suite).
#
#   scripts/test_pythons.sh                  Pythons 3.9, 3.10, 3.12 and 3.13
#   scripts/test_pythons.sh 3.9 3.13         some of them
#   scripts/test_pythons.sh -- -k smoke      any pytest arguments after --
#
# Environment: MLFAST_PYTHON_VENVS (default /tmp/mlfast-pythons) keeps one
# virtualenv per Python, remade only when its requirements change.  An
# interpreter is looked for in pyenv ($PYENV_ROOT/versions/X.Y.*, default
# ~/.pyenv) and then on PATH (pythonX.Y); a missing one fails the run.
#
# Each virtualenv gets only wheels: numpy, scipy-openblas32 (the engine's
# dependencies), setuptools and wheel (to build), pytest, scikit-learn (the
# oracle of test_smoke.py; joblib comes with it) and lz4 (a codec
# test_hostile.py reads).  The extension is built in place in a copy of the
# sources under a temporary directory, with setup.py's flags (among them
# -Werror=implicit-function-declaration: a C-API function an older Python
# lacks fails the build instead of the import), so the work tree's own build
# is never touched.  The tests: the lesson's workflow against that Python's
# scikit-learn (test_smoke.py), every version fixture against the answers
# its scikit-learn recorded (test_versions.py: 14 scikit-learn versions,
# numpy 1.16 to 2.x, pickle protocols 0 to 5) and the hostile-file suite
# (test_hostile.py: the VM, where the C-API differences between Pythons are).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="${MLFAST_PYTHON_VENVS:-/tmp/mlfast-pythons}"
PYENV_VERSIONS="${PYENV_ROOT:-$HOME/.pyenv}/versions"
# setuptools as pyproject.toml's build-system asks (a venv of Python <= 3.11
# comes with an older one, which cannot read its license field)
REQUIREMENTS=(numpy "scipy-openblas32>=0.3.27" "setuptools>=77" wheel pytest scikit-learn lz4)
TESTS=(tests/test_smoke.py tests/test_versions.py tests/test_hostile.py)

versions=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do versions+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#versions[@]} -gt 0 ] || versions=(3.9 3.10 3.12 3.13)
[ $# -gt 0 ] && TESTS=("$@")

find_python() {
    local v="$1" found
    found="$(ls -d "$PYENV_VERSIONS/$v".*/bin/"python$v" 2>/dev/null | sort -V | tail -1)"
    [ -n "$found" ] || found="$(command -v "python$v" || true)"
    [ -n "$found" ] && echo "$found"
}

WORK="$(mktemp -d /tmp/mlfast-pythons-run.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$VENVS"

summary=()
status=0
for v in "${versions[@]}"; do
    t0=$(date +%s)
    if ! py="$(find_python "$v")"; then
        echo "Python $v: no interpreter in $PYENV_VERSIONS or on PATH" >&2
        summary+=("$(printf '%-6s %s' "$v" "FAILED: no interpreter")")
        status=1
        continue
    fi
    venv="$VENVS/$v"
    wanted="$(printf '%s\n' "$py" "${REQUIREMENTS[@]}")"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.mlfast-requirements" 2>/dev/null)" != "$wanted" ]; then
        echo "== Python $v ($py): making $venv" >&2
        rm -rf "$venv"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
            "${REQUIREMENTS[@]}"
        echo "$wanted" >"$venv/.mlfast-requirements"
    fi
    t1=$(date +%s)
    src="$WORK/$v"
    mkdir -p "$src"
    (cd "$ROOT" && tar -cf - --exclude='__pycache__' --exclude='*.so' csrc mlfast setup.py \
        pyproject.toml tests) | tar -xf - -C "$src"
    echo "== Python $v: building" >&2
    if ! (cd "$src" && "$venv/bin/python" setup.py -q build_ext --inplace >"$src/build.log" 2>&1); then
        tail -40 "$src/build.log" >&2
        summary+=("$(printf '%-6s %s' "$v" "FAILED: build (see above)")")
        status=1
        continue
    fi
    t2=$(date +%s)
    # the copy's build, and nothing else, is what the tests import
    got="$(cd "$src" && PYTHONPATH="$src" "$venv/bin/python" -c 'import mlfast; print(mlfast._core.__file__)')"
    case "$got" in
        "$src"/mlfast/_core*.so) ;;
        *) echo "Python $v would test $got, not the build in $src" >&2; exit 1 ;;
    esac
    stack="$("$venv/bin/python" -c 'import platform, numpy, sklearn; print(platform.python_version(), "numpy", numpy.__version__, "scikit-learn", sklearn.__version__)')"
    echo "== Python $v: pytest ${TESTS[*]} ($stack)" >&2
    result=passed
    (cd "$src" && PYTHONPATH="$src" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        "${TESTS[@]}") || result=FAILED
    t3=$(date +%s)
    [ "$result" = passed ] || status=1
    summary+=("$(printf '%-6s %-7s venv %3ss  build %3ss  tests %3ss  (%s)' "$v" "$result" \
        $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) "$stack")")
done

echo >&2
printf '%s\n' "${summary[@]}" >&2
exit "$status"
