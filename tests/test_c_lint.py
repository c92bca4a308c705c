"""A cheap lint of the C sources for calls that must come in pairs.

msgspec keeps a test like this (STYLE.md): it reads the C files and fails on
a GIL released and not re-acquired, a buffer acquired and not released, a
malloc that is neither freed nor handed on.  It is a text scan, not a C
parser: functions are the top-level ``{ ... }`` blocks whose header has a
parameter list, which is how every function in csrc/ is written.  The unit
tests below feed it small bad snippets so that it is known to catch what it
claims to catch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

CSRC = Path(__file__).resolve().parent.parent / "csrc"


# ---- splitting a C file into functions ------------------------------------


def strip_comments(text: str, blank_strings: bool) -> str:
    """Comments (and, if asked, string and char literals) replaced by spaces,
    newlines kept, so offsets and line numbers stay those of the file."""
    out = []
    i, n = 0, len(text)

    def blank(s: str) -> str:
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            lit = text[i:j]
            out.append(c + blank(lit[1:-1]) + c if blank_strings and len(lit) >= 2 else lit)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_preprocessor(text: str) -> str:
    """Preprocessor lines (with their continuations) blanked: macro bodies are
    not functions, and #if branches would unbalance braces."""
    lines = text.split("\n")
    out, cont = [], False
    for line in lines:
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            out.append(" " * len(line))
        else:
            out.append(line)
    return "\n".join(out)


@dataclass
class Function:
    name: str
    path: str
    line: int  # line of the opening brace
    body: str  # comments removed, strings kept
    body_nostr: str  # comments and strings removed


_HEADER_NAME = re.compile(r"([A-Za-z_]\w*)\s*\(")


def split_functions(source: str, path: str = "<snippet>") -> List[Function]:
    """The top-level brace blocks of `source` whose header looks like a
    function definition (has a '(' and no '=' since the last ';' or '}')."""
    with_strings = strip_preprocessor(strip_comments(source, blank_strings=False))
    code = strip_preprocessor(strip_comments(source, blank_strings=True))
    functions = []
    depth = 0
    header_start = 0
    start = 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                start = i
                header = code[header_start:i]
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{path}: unbalanced '}}' at line {code.count(chr(10), 0, i) + 1}")
            if depth == 0:
                names = _HEADER_NAME.findall(header)
                if (
                    names
                    and "=" not in header
                    and not header.strip().startswith(("struct", "enum", "union", "typedef"))
                ):
                    functions.append(
                        Function(
                            name=names[0],
                            path=path,
                            line=code.count("\n", 0, start) + 1,
                            body=with_strings[start : i + 1],
                            body_nostr=code[start : i + 1],
                        )
                    )
                header_start = i + 1
        elif c == ";" and depth == 0:
            header_start = i + 1
    if depth != 0:
        raise ValueError(f"{path}: unbalanced braces (depth {depth} at the end)")
    return functions


# ---- the rules --------------------------------------------------------------

_ALLOCATORS = {
    "malloc": "free",
    "calloc": "free",
    "realloc": "free",
    "strdup": "free",
    "PyMem_Malloc": "PyMem_Free",
    "PyMem_Calloc": "PyMem_Free",
    "PyMem_Realloc": "PyMem_Free",
    "PyMem_RawMalloc": "PyMem_RawFree",
    "PyMem_RawCalloc": "PyMem_RawFree",
    "PyMem_RawRealloc": "PyMem_RawFree",
    "PyObject_Malloc": "PyObject_Free",
    "PyObject_Calloc": "PyObject_Free",
    "PyObject_Realloc": "PyObject_Free",
}
_ALLOC_CALL = re.compile(r"(?<![\w.>])(" + "|".join(_ALLOCATORS) + r")\s*\(")
_LHS = re.compile(
    r"^\s*(?:[A-Za-z_][\w\s\*]*?[\s\*])?([A-Za-z_][\w]*(?:\s*(?:->|\.)\s*\w+|\[[^\]]*\])*)\s*=(?!=)"
)
_BUFFER_FORMAT = re.compile(r"PyArg_Parse(?:Tuple(?:AndKeywords)?|)\s*\([^;]*?\"([^\"]*)\"", re.S)


def _word(body: str, word: str) -> List[int]:
    return [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", body)]


def _statement_around(body: str, pos: int) -> str:
    start = max(body.rfind(";", 0, pos), body.rfind("{", 0, pos), body.rfind("}", 0, pos)) + 1
    return body[start:pos]


def lint_function(fn: Function) -> List[str]:
    problems = []
    body = fn.body_nostr

    def report(msg: str) -> None:
        problems.append(f"{fn.path}:{fn.line}: {fn.name}(): {msg}")

    # the GIL: BEGIN/END paired, nothing leaves the function in between
    begins = _word(body, "Py_BEGIN_ALLOW_THREADS")
    ends = _word(body, "Py_END_ALLOW_THREADS")
    if len(begins) != len(ends):
        report(f"{len(begins)} Py_BEGIN_ALLOW_THREADS but {len(ends)} Py_END_ALLOW_THREADS")
    for b in begins:
        e = next((x for x in ends if x > b), len(body))
        for word in ("return", "goto"):
            if _word(body[b:e], word):
                report(
                    f"'{word}' between Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS "
                    "(the GIL would stay released)"
                )

    # buffers
    if _word(body, "PyObject_GetBuffer") and not _word(body, "PyBuffer_Release"):
        report("PyObject_GetBuffer without PyBuffer_Release")
    for m in _BUFFER_FORMAT.finditer(fn.body):
        fmt = m.group(1)
        if re.search(r"[ysz]\*|w\*", fmt) and not _word(body, "PyBuffer_Release"):
            report(
                f'PyArg_Parse* format "{fmt}" takes a buffer (y*/s*/z*/w*) '
                "but the function never calls PyBuffer_Release"
            )

    # the trashcan opens and closes a block: counts must match exactly
    for begin, end in (
        ("Py_TRASHCAN_BEGIN", "Py_TRASHCAN_END"),
        ("Py_TRASHCAN_SAFE_BEGIN", "Py_TRASHCAN_SAFE_END"),
    ):
        nb, ne = len(_word(body, begin)), len(_word(body, end))
        if nb != ne:
            report(f"{nb} {begin} but {ne} {end}")
    # GIL state and recursion guards may be released on several paths:
    # one side without the other is the bug
    for begin, end in (
        ("PyGILState_Ensure", "PyGILState_Release"),
        ("Py_EnterRecursiveCall", "Py_LeaveRecursiveCall"),
    ):
        nb, ne = len(_word(body, begin)), len(_word(body, end))
        if bool(nb) != bool(ne):
            report(f"{nb} {begin} but {ne} {end}")

    # memory: freed here, returned, or handed to a struct field / out-parameter
    for m in _ALLOC_CALL.finditer(body):
        alloc = m.group(1)
        free = _ALLOCATORS[alloc]
        lhs_m = _LHS.match(_statement_around(body, m.start()))
        if lhs_m is None:
            if re.match(r"\s*return\b", _statement_around(body, m.start())):
                continue
            report(f"result of {alloc}() is neither assigned nor returned")
            continue
        target = re.sub(r"\s+", "", lhs_m.group(1))
        if "->" in target or "[" in target:
            continue  # stored through a pointer: freed with its owner
        # a store into a local struct (job.index = p) hands nothing on
        var = re.escape(target)
        cast = r"(?:\([^()]*\)\s*)?"
        if (
            re.search(r"(?<![\w.>])" + re.escape(free) + r"\s*\(\s*" + cast + var + r"\s*\)", body)
            or re.search(r"\breturn\s*" + cast + var + r"\s*;", body)
            or re.search(r"(?:->\s*\w+|(?<![\w)\]])\*\s*\w+)\s*=\s*" + cast + var + r"\s*;", body)
        ):
            continue
        report(
            f"{alloc}() into '{target}' without {free}({target}), a return of it, "
            "or a store through a pointer"
        )
    return problems


def lint_source(source: str, path: str = "<snippet>") -> List[str]:
    problems = []
    for fn in split_functions(source, path):
        problems.extend(lint_function(fn))
    return problems


# ---- the real sources -----------------------------------------------------------


def c_files():
    files = sorted(CSRC.glob("*.c"))
    assert files, f"no C sources found in {CSRC}"
    return files


@pytest.mark.parametrize("path", c_files(), ids=lambda p: p.name)
def test_csrc_has_no_unpaired_calls(path):
    problems = lint_source(path.read_text(), path.name)
    assert not problems, "unpaired C-API calls:\n" + "\n".join(problems)


def test_splitter_sees_the_functions_it_should():
    """Guard against a lint that passes because it sees nothing."""
    names = {}
    for path in c_files():
        for fn in split_functions(path.read_text(), path.name):
            names[fn.name] = fn
    for expected in (
        "mf_unpickle",
        "vm_run",
        "vm_step",
        "load_build",
        "vm_memo_put",
        "record_dealloc",
        "PyInit__core",
    ):
        assert expected in names, f"the splitter did not find {expected}()"
    assert len(names) > 100
    # the lint really looked at the pairs the sources use
    assert "Py_TRASHCAN_BEGIN" in names["record_dealloc"].body_nostr
    assert "PyBuffer_Release" in names["mf_unpickle"].body_nostr
    gil = [fn for fn in names.values() if "Py_BEGIN_ALLOW_THREADS" in fn.body_nostr]
    assert gil, "expected at least one function that releases the GIL"


# ---- the lint catches what it claims to catch --------------------------------------

GOOD = r"""
#define MACRO_WITH_BRACES(x) { if (x) { return; } }
static PyTypeObject T = {
    .tp_name = "x { not a brace",
};
static int
ok_gil(Job *job)
{
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = run(job);   /* a comment saying return goto */
    Py_END_ALLOW_THREADS
    if (r < 0) {
        return -1;
    }
    return 0;
}

static PyObject *
ok_buffer(PyObject *self, PyObject *args)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*:f", &view)) {
        return NULL;
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static int
ok_getbuffer(PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    PyBuffer_Release(&view);
    return 0;
}

static double *
ok_returned(size_t n)
{
    double *p = malloc(n * sizeof(double));
    return p;
}

static int
ok_freed(size_t n, char *stack_buf)
{
    char *mem = n <= 64 ? stack_buf : malloc(n);
    if (mem != stack_buf) {
        free(mem);
    }
    return 0;
}

static int
ok_member(Vm *vm)
{
    PyObject **grown;
    vm->stack = PyMem_Malloc(64);
    grown = PyMem_Realloc(vm->memo, 128);
    if (grown == NULL) {
        return -1;
    }
    vm->memo = grown;
    return 0;
}

static void
ok_trash(PyObject *self)
{
    Py_TRASHCAN_BEGIN(self, ok_trash)
    clear(self);
    Py_TRASHCAN_END
}
"""


def test_lint_accepts_correct_code():
    assert lint_source(GOOD) == []
    assert [f.name for f in split_functions(GOOD)] == [
        "ok_gil",
        "ok_buffer",
        "ok_getbuffer",
        "ok_returned",
        "ok_freed",
        "ok_member",
        "ok_trash",
    ]


BAD = {
    "begin without end": (
        r"""
static void
f(void)
{
    Py_BEGIN_ALLOW_THREADS
    work();
}
""",
        "1 Py_BEGIN_ALLOW_THREADS but 0 Py_END_ALLOW_THREADS",
    ),
    "end without begin": (
        r"""
static void
f(void)
{
    work();
    Py_END_ALLOW_THREADS
}
""",
        "0 Py_BEGIN_ALLOW_THREADS but 1 Py_END_ALLOW_THREADS",
    ),
    "return with the GIL released": (
        r"""
static int
f(int x)
{
    Py_BEGIN_ALLOW_THREADS
    if (x < 0) {
        return -1;
    }
    work();
    Py_END_ALLOW_THREADS
    return 0;
}
""",
        "'return' between Py_BEGIN_ALLOW_THREADS",
    ),
    "goto with the GIL released": (
        r"""
static int
f(int x)
{
    Py_BEGIN_ALLOW_THREADS
    if (x < 0) goto error;
    Py_END_ALLOW_THREADS
    return 0;
error:
    return -1;
}
""",
        "'goto' between Py_BEGIN_ALLOW_THREADS",
    ),
    "GetBuffer without release": (
        r"""
static int
f(PyObject *o)
{
    Py_buffer v;
    if (PyObject_GetBuffer(o, &v, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    return use(v.buf);
}
""",
        "PyObject_GetBuffer without PyBuffer_Release",
    ),
    "y* without release": (
        r"""
static PyObject *
f(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", NULL};
    Py_buffer v;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*:f", kwlist, &v)) {
        return NULL;
    }
    return PyLong_FromSsize_t(v.len);
}
""",
        'format "y*:f" takes a buffer',
    ),
    "s* without release": (
        r"""
static PyObject *
f(PyObject *self, PyObject *args)
{
    Py_buffer v;
    int n;
    if (!PyArg_ParseTuple(args, "is*", &n, &v)) {
        return NULL;
    }
    Py_RETURN_NONE;
}
""",
        'format "is*" takes a buffer',
    ),
    "malloc without free": (
        r"""
static int
f(size_t n)
{
    double *p = malloc(n * sizeof(double));
    if (p == NULL) {
        return -1;
    }
    fill(p, n);
    return 0;
}
""",
        "malloc() into 'p' without free(p)",
    ),
    "freed with the wrong family": (
        r"""
static int
f(size_t n)
{
    char *p;
    p = PyMem_Malloc(n);
    fill(p, n);
    free(p);
    return 0;
}
""",
        "PyMem_Malloc() into 'p' without PyMem_Free(p)",
    ),
    "stored in a local struct only": (
        r"""
static int
f(size_t n)
{
    Job job;
    npy_intp *index = PyMem_Malloc(n);
    job.index_out = index;
    return run(&job);
}
""",
        "PyMem_Malloc() into 'index' without PyMem_Free(index)",
    ),
    "recursion guard never left": (
        r"""
static int
f(PyObject *o)
{
    if (Py_EnterRecursiveCall(" in f")) {
        return -1;
    }
    return walk(o);
}
""",
        "1 Py_EnterRecursiveCall but 0 Py_LeaveRecursiveCall",
    ),
    "trashcan without end": (
        r"""
static void
f(PyObject *self)
{
    Py_TRASHCAN_BEGIN(self, f)
    clear(self);
}
""",
        "1 Py_TRASHCAN_BEGIN but 0 Py_TRASHCAN_END",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_lint_catches(name):
    source, expected = BAD[name]
    problems = lint_source(source)
    assert len(problems) == 1, problems
    assert expected in problems[0], problems[0]
    assert "f()" in problems[0]


def test_lint_reports_file_line_and_function():
    source = "static int x = 1;\n\nstatic void\nleaky(void)\n{\n    char *p = malloc(8);\n    use(p);\n}\n"
    assert lint_source(source, "demo.c") == [
        "demo.c:5: leaky(): malloc() into 'p' without free(p), a return of it, "
        "or a store through a pointer"
    ]


def test_lint_is_per_function():
    """A release in another function does not pair with an acquire here."""
    source = r"""
static int
acquire(PyObject *o, Py_buffer *v)
{
    Py_buffer local;
    return PyObject_GetBuffer(o, &local, PyBUF_SIMPLE);
}

static void
release(Py_buffer *v)
{
    PyBuffer_Release(v);
}
"""
    problems = lint_source(source)
    assert len(problems) == 1 and "acquire()" in problems[0]


def test_splitter_rejects_unbalanced_source():
    with pytest.raises(ValueError, match="unbalanced"):
        split_functions("static void f(void)\n{\n    if (x) {\n}\n")


MUTATIONS = [
    # (file, text removed, expected report)
    (
        "run.c",
        "Py_END_ALLOW_THREADS",
        "run_job(): 1 Py_BEGIN_ALLOW_THREADS but 0 Py_END_ALLOW_THREADS",
    ),
    ("run.c", "free(mem);", "run_task(): malloc() into 'mem' without free(mem)"),
    ("run.c", "PyMem_Free(index);", "PyMem_Free(index)"),
    ("unpickle.c", "PyBuffer_Release(&view);", "mf_unpickle(): PyArg_Parse* format"),
    ("unpickle.c", "PyMem_Free(aligned);", "vm_scalar(): PyMem_Malloc() into 'aligned'"),
    ("values.c", "Py_TRASHCAN_END", "record_dealloc(): 1 Py_TRASHCAN_BEGIN but 0 Py_TRASHCAN_END"),
]


@pytest.mark.parametrize(
    "path,removed,expected", MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS]
)
def test_lint_catches_mutations_of_the_real_sources(path, removed, expected):
    """Deleting one half of a real pair from csrc/ trips the lint."""
    source = (CSRC / path).read_text()
    if removed not in source:
        pytest.skip(f"{path} no longer contains {removed!r}")
    problems = lint_source(source.replace(removed, "", 1), path)
    assert any(expected in p for p in problems), problems
