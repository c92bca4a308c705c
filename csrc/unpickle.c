/*
 * unpickle.c -- a restricted pickle VM for model files.
 *
 * It runs the opcodes of pickle protocols 0-5 over one byte buffer, plus
 * joblib's extension: the raw bytes of a NumpyArrayWrapper's array inline
 * after its BUILD, and object arrays as a nested pickle.  It never imports a
 * module and never calls anything a file names:
 *
 *   - a global is looked up in a fixed table when GLOBAL/STACK_GLOBAL is
 *     read, and anything not in it is refused right there, with its name and
 *     byte offset;
 *   - numpy arrays, dtypes and scalars, _codecs.encode, copyreg and a few
 *     builtins are *interpreted*: this file builds the value itself;
 *   - instances of allowed classes (scikit-learn, numpy random states) become
 *     inert Record objects (class, args, state).
 *
 * Every length, index and count read from the file is checked against the
 * bytes left and against the caps below before anything is allocated.  The
 * layout follows CPython's Modules/_pickle.c: one handler per opcode, all
 * returning 0 or -1, a fence at the last MARK, and one bounds-checked read.
 */
#include "mlfast.h"
#include <string.h>

/* ---- caps ---------------------------------------------------------------
 * Each opcode consumes at least one byte, so stack and memo are bounded by
 * the file's size anyway; the caps make hostile files fail early and keep
 * a single index from forcing a huge allocation (CPython grows its memo to
 * twice the largest index seen, a known weakness). */
#define MF_STACK_MAX        (1 << 24)
#define MF_MEMO_MAX         (1 << 24)
#define MF_MEMO_GAP         65536     /* how far past the end PUT may write */
#define MF_MARKS_MAX        1024      /* nested MARKs; pickle's own depth is ~1000 */
#define MF_LONG_MAX_BYTES   256       /* LONG1/LONG4 payload */
#define MF_LINE_MAX         4096      /* text opcodes (GLOBAL, INT, ...) */
/* decimal digits of a protocol 0 INT/LONG: as many as MF_LONG_MAX_BYTES hold */
#define MF_LONG_MAX_DIGITS  617
#define MF_NDIM_MAX         32
#define MF_ITEMSIZE_MAX     (1 << 20)
#define MF_KEY_DEPTH_MAX    32        /* nesting of tuple keys (hashing recurses) */
/* Non-string keys hash without randomisation; crafted collisions make a
 * dict quadratic.  Bound both the total and what one container holds. */
#define MF_NONSTR_KEYS_MAX        65536
#define MF_NONSTR_KEYS_PER_OBJECT 1024
#define MF_OBJECT_COST      64        /* what a new container is charged */
/* Tuples shared through the memo make a key a DAG whose expansion -- what
 * hashing and our check both walk -- grows exponentially with depth:
 * bound the items one key may expand to, and all keys together. */
#define MF_KEY_ITEMS_MAX       4096
#define MF_KEY_ITEMS_FILE_MAX  (1 << 24)
/* numpy frees an object array holding object arrays recursively, with no
 * depth guard: bound how many such arrays a file may make (lists and
 * records between them are freed through the trashcan, without recursion). */
#define MF_NESTED_OBJARRAYS_MAX 256

typedef struct {
    size_t used, max;
    Py_ssize_t nonstr_keys;
    Py_ssize_t key_items;       /* items visited checking keys, all keys */
    Py_ssize_t nested_objarrays;/* object arrays holding object arrays */
} mf_budget;

typedef struct {
    const unsigned char *buf;
    Py_ssize_t size;
    Py_ssize_t pos;
    Py_ssize_t op_pos;        /* where the opcode being run starts */
    unsigned char op;
    PyObject **stack;
    Py_ssize_t stack_len, stack_cap;
    Py_ssize_t *marks;
    Py_ssize_t n_marks, marks_cap;
    Py_ssize_t fence;         /* stack_len at the last MARK */
    PyObject **memo;
    Py_ssize_t memo_len, memo_cap;
    Py_ssize_t memo_count;    /* stored entries: where MEMOIZE stores, as CPython */
    int proto;
    int nested;               /* inside a joblib object-array stream */
    mf_budget *budget;
} mf_vm;

/* ---- Pending: an object whose value only BUILD completes ---------------
 * pickle memoizes an object right after REDUCE/NEWOBJ and gives its state
 * with BUILD later; numpy arrays and dtypes cannot be mutated into shape the
 * way numpy's own __setstate__ does it, so the VM holds a Pending and
 * replaces it, on the stack and in the memo slots it was stored in, once
 * BUILD has made the real value. */
enum { PENDING_ARRAY = 1, PENDING_DTYPE, PENDING_WRAPPER };
#define PENDING_MEMO_SLOTS 4

typedef struct {
    PyObject_HEAD
    int kind;
    PyObject *base;         /* PENDING_DTYPE: descr parsed from the type string */
    Py_ssize_t memo_idx[PENDING_MEMO_SLOTS];
    int n_memo;
} mf_Pending;

static void
pending_dealloc(mf_Pending *self)
{
    Py_XDECREF(self->base);
    PyObject_Free(self);
}

static PyObject *
pending_repr(mf_Pending *self)
{
    static const char *names[] = {"?", "array", "dtype", "joblib array"};
    return PyUnicode_FromFormat("<unfinished %s: BUILD never completed it>", names[self->kind]);
}

static PyTypeObject PendingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Pending",
    .tp_basicsize = sizeof(mf_Pending),
    .tp_dealloc = (destructor)pending_dealloc,
    .tp_repr = (reprfunc)pending_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An array or dtype whose BUILD has not been seen.",
};

static PyObject *
pending_new(int kind, PyObject *base)
{
    mf_Pending *self = PyObject_New(mf_Pending, &PendingType);
    if (self == NULL) {
        return NULL;
    }
    self->kind = kind;
    Py_XINCREF(base);
    self->base = base;
    self->n_memo = 0;
    return (PyObject *)self;
}

#define Pending_Check(op) Py_IS_TYPE((op), &PendingType)

/* ---- opcodes ------------------------------------------------------------
 * Every opcode of protocols 0-5 by name, as pickletools and _pickle.c name
 * them: one list, from which the enum and the names in messages are made. */

#define PICKLE_OPCODES(X) \
    X(MARK, '(') \
    X(STOP, '.') \
    X(POP, '0') \
    X(POP_MARK, '1') \
    X(DUP, '2') \
    X(FLOAT, 'F') \
    X(INT, 'I') \
    X(BININT, 'J') \
    X(BININT1, 'K') \
    X(LONG, 'L') \
    X(BININT2, 'M') \
    X(NONE, 'N') \
    X(PERSID, 'P') \
    X(BINPERSID, 'Q') \
    X(REDUCE, 'R') \
    X(STRING, 'S') \
    X(BINSTRING, 'T') \
    X(SHORT_BINSTRING, 'U') \
    X(UNICODE, 'V') \
    X(BINUNICODE, 'X') \
    X(APPEND, 'a') \
    X(BUILD, 'b') \
    X(GLOBAL, 'c') \
    X(DICT, 'd') \
    X(EMPTY_DICT, '}') \
    X(APPENDS, 'e') \
    X(GET, 'g') \
    X(BINGET, 'h') \
    X(INST, 'i') \
    X(LONG_BINGET, 'j') \
    X(LIST, 'l') \
    X(EMPTY_LIST, ']') \
    X(OBJ, 'o') \
    X(PUT, 'p') \
    X(BINPUT, 'q') \
    X(LONG_BINPUT, 'r') \
    X(SETITEM, 's') \
    X(TUPLE, 't') \
    X(EMPTY_TUPLE, ')') \
    X(SETITEMS, 'u') \
    X(BINFLOAT, 'G') \
    X(BINBYTES, 'B') \
    X(SHORT_BINBYTES, 'C') \
    X(PROTO, 0x80) \
    X(NEWOBJ, 0x81) \
    X(EXT1, 0x82) \
    X(EXT2, 0x83) \
    X(EXT4, 0x84) \
    X(TUPLE1, 0x85) \
    X(TUPLE2, 0x86) \
    X(TUPLE3, 0x87) \
    X(NEWTRUE, 0x88) \
    X(NEWFALSE, 0x89) \
    X(LONG1, 0x8a) \
    X(LONG4, 0x8b) \
    X(SHORT_BINUNICODE, 0x8c) \
    X(BINUNICODE8, 0x8d) \
    X(BINBYTES8, 0x8e) \
    X(EMPTY_SET, 0x8f) \
    X(ADDITEMS, 0x90) \
    X(FROZENSET, 0x91) \
    X(NEWOBJ_EX, 0x92) \
    X(STACK_GLOBAL, 0x93) \
    X(MEMOIZE, 0x94) \
    X(FRAME, 0x95) \
    X(BYTEARRAY8, 0x96) \
    X(NEXT_BUFFER, 0x97) \
    X(READONLY_BUFFER, 0x98)

enum opcode {
#define OPCODE_ENUM(name, byte) OP_##name = (byte),
    PICKLE_OPCODES(OPCODE_ENUM)
#undef OPCODE_ENUM
};

static const char *
op_name(unsigned char op)
{
    const char *name = NULL;
    switch (op) {
#define OPCODE_NAME(n, byte) case OP_##n: name = #n; break;
    PICKLE_OPCODES(OPCODE_NAME)
#undef OPCODE_NAME
    default:
        break;
    }
    return name;
}

/* ---- errors --------------------------------------------------------------
 * Every message ends with where: the opcode and its byte offset. */

static int
vm_error(mf_vm *vm, PyObject *exc, const char *fmt, ...)
{
    va_list ap;
    PyObject *msg;
    const char *name = op_name(vm->op);

    va_start(ap, fmt);
    msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL) {
        return -1;
    }
    PyErr_Format(exc, "%U (at %s, byte %zd)", msg, name ? name : "?", vm->op_pos);
    Py_DECREF(msg);
    return -1;
}

#define FORMAT_ERROR(vm, ...) vm_error((vm), mf_ModelFormatError, __VA_ARGS__)
#define UNSAFE_ERROR(vm, ...) vm_error((vm), mf_UnsafeModelError, __VA_ARGS__)
#define UNSUPPORTED_ERROR(vm, ...) vm_error((vm), mf_UnsupportedModelError, __VA_ARGS__)

/* An error raised by a C-API call (MemoryError, a failed decode) is kept if
 * it is a MemoryError and otherwise becomes a ModelFormatError naming the
 * place, with the original text. */
static int
vm_wrap_error(mf_vm *vm, const char *what)
{
    PyObject *type, *value, *tb, *text = NULL;
    int result = -1;

    if (PyErr_ExceptionMatches(PyExc_MemoryError) || PyErr_ExceptionMatches(mf_MlfastError)) {
        return -1;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL) {
        text = PyObject_Str(value);
    }
    if (text != NULL) {
        FORMAT_ERROR(vm, "%s: %U", what, text);
    }
    else {
        PyErr_Clear();
        FORMAT_ERROR(vm, "%s", what);
    }
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return result;
}

static int
vm_charge(mf_vm *vm, size_t nbytes)
{
    mf_budget *b = vm->budget;
    if (nbytes > b->max - b->used) {
        return vm_error(vm, mf_UnsupportedModelError,
                        "loading needs more than the memory budget of %zu bytes "
                        "(pass a larger max_memory to load it)",
                        b->max);
    }
    b->used += nbytes;
    return 0;
}

/* ---- input ----------------------------------------------------------------- */

static int
vm_read(mf_vm *vm, Py_ssize_t n, const unsigned char **out)
{
    if (n < 0 || n > vm->size - vm->pos) {
        return FORMAT_ERROR(vm, "truncated: needs %zd more bytes, %zd left", n, vm->size - vm->pos);
    }
    *out = vm->buf + vm->pos;
    vm->pos += n;
    return 0;
}

/* A length field of `width` bytes, little-endian, checked against what is
 * left before anyone allocates for it. */
static int
vm_read_length(mf_vm *vm, int width, Py_ssize_t *out)
{
    const unsigned char *p = NULL;
    uint64_t n = 0;
    int i;

    if (vm_read(vm, width, &p) < 0) {
        return -1;
    }
    for (i = width - 1; i >= 0; i--) {
        n = (n << 8) | p[i];
    }
    if (n > (uint64_t)(vm->size - vm->pos)) {
        return FORMAT_ERROR(vm, "length %llu is more than the %zd bytes left",
                            (unsigned long long)n, vm->size - vm->pos);
    }
    *out = (Py_ssize_t)n;
    return 0;
}

/* A '\n'-terminated line of a text opcode, at most `max` bytes long; the
 * newline is not included. */
static int
vm_readline_max(mf_vm *vm, Py_ssize_t max, const char **line, Py_ssize_t *len)
{
    Py_ssize_t left = vm->size - vm->pos;
    Py_ssize_t limit = left < max ? left : max;
    const unsigned char *start = vm->buf + vm->pos;
    const unsigned char *nl = memchr(start, '\n', (size_t)limit);

    if (nl == NULL) {
        return FORMAT_ERROR(vm, "line not terminated within %zd bytes", limit);
    }
    *line = (const char *)start;
    *len = nl - start;
    vm->pos += *len + 1;
    return 0;
}

static int
vm_readline(mf_vm *vm, const char **line, Py_ssize_t *len)
{
    return vm_readline_max(vm, MF_LINE_MAX, line, len);
}

/* ---- stack ------------------------------------------------------------------ */

/* Takes the reference to obj, also on failure. */
static int
vm_push(mf_vm *vm, PyObject *obj)
{
    if (obj == NULL) {
        return -1;
    }
    if (vm->stack_len == vm->stack_cap) {
        Py_ssize_t cap = vm->stack_cap * 2;
        PyObject **grown;
        if (vm->stack_cap >= MF_STACK_MAX) {
            Py_DECREF(obj);
            return UNSUPPORTED_ERROR(vm, "stack deeper than %d items", MF_STACK_MAX);
        }
        if (vm_charge(vm, (size_t)(cap - vm->stack_cap) * sizeof(PyObject *)) < 0) {
            Py_DECREF(obj);
            return -1;
        }
        grown = PyMem_Realloc(vm->stack, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(obj);
            PyErr_NoMemory();
            return -1;
        }
        vm->stack = grown;
        vm->stack_cap = cap;
    }
    vm->stack[vm->stack_len++] = obj;
    return 0;
}

/* Returns a new reference, or NULL with an error at the fence. */
static PyObject *
vm_pop(mf_vm *vm)
{
    if (vm->stack_len <= vm->fence) {
        FORMAT_ERROR(vm, "stack underflow (nothing above the last MARK)");
        return NULL;
    }
    return vm->stack[--vm->stack_len];
}

static PyObject *
vm_top(mf_vm *vm)
{
    if (vm->stack_len <= vm->fence) {
        FORMAT_ERROR(vm, "stack underflow (nothing above the last MARK)");
        return NULL;
    }
    return vm->stack[vm->stack_len - 1];
}

/* Pops the last MARK; *start is where the items above it begin. */
static int
vm_marker(mf_vm *vm, Py_ssize_t *start)
{
    if (vm->n_marks == 0) {
        return FORMAT_ERROR(vm, "no MARK to pop to");
    }
    *start = vm->marks[--vm->n_marks];
    vm->fence = vm->n_marks > 0 ? vm->marks[vm->n_marks - 1] : 0;
    return 0;
}

static void
vm_truncate(mf_vm *vm, Py_ssize_t start)
{
    while (vm->stack_len > start) {
        PyObject *obj = vm->stack[--vm->stack_len];
        Py_DECREF(obj);
    }
}

/* ---- memo -------------------------------------------------------------------- */

static int
vm_memo_put(mf_vm *vm, Py_ssize_t idx, PyObject *obj)
{
    if (idx < 0 || idx >= MF_MEMO_MAX || idx > vm->memo_len + MF_MEMO_GAP) {
        return FORMAT_ERROR(vm, "memo index %zd out of range (memo holds %zd)", idx, vm->memo_len);
    }
    if (idx >= vm->memo_cap) {
        Py_ssize_t cap = vm->memo_cap;
        PyObject **grown;
        while (cap <= idx) {
            cap *= 2;
        }
        if (vm_charge(vm, (size_t)(cap - vm->memo_cap) * sizeof(PyObject *)) < 0) {
            return -1;
        }
        grown = PyMem_Realloc(vm->memo, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(grown + vm->memo_cap, 0, (size_t)(cap - vm->memo_cap) * sizeof(PyObject *));
        vm->memo = grown;
        vm->memo_cap = cap;
    }
    if (Pending_Check(obj)) {
        mf_Pending *p = (mf_Pending *)obj;
        if (p->n_memo == PENDING_MEMO_SLOTS) {
            return FORMAT_ERROR(vm, "an unfinished object was memoized more than %d times",
                                PENDING_MEMO_SLOTS);
        }
        p->memo_idx[p->n_memo++] = idx;
    }
    Py_INCREF(obj);
    if (vm->memo[idx] == NULL) {
        vm->memo_count++;
    }
    Py_XSETREF(vm->memo[idx], obj);
    if (idx >= vm->memo_len) {
        vm->memo_len = idx + 1;
    }
    return 0;
}

static int
vm_memo_get(mf_vm *vm, Py_ssize_t idx)
{
    PyObject *obj;
    if (idx < 0 || idx >= vm->memo_len || vm->memo[idx] == NULL) {
        return FORMAT_ERROR(vm, "memo key %zd was never stored", idx);
    }
    obj = vm->memo[idx];
    Py_INCREF(obj);
    return vm_push(vm, obj);
}

/* BUILD made `final` from pending `p`, which is on top of the stack. */
static void
vm_replace_pending(mf_vm *vm, mf_Pending *p, PyObject *final)
{
    int i;
    for (i = 0; i < p->n_memo; i++) {
        Py_ssize_t idx = p->memo_idx[i];
        if (idx < vm->memo_len && vm->memo[idx] == (PyObject *)p) {
            Py_INCREF(final);
            Py_SETREF(vm->memo[idx], final);
        }
    }
    Py_SETREF(vm->stack[vm->stack_len - 1], final);
}

/* ---- keys -----------------------------------------------------------------------
 * Only values whose hash and equality are plain C code may be keys, and
 * tuple keys may not nest deeply (tuple hashing recurses without a guard).
 * Returns 1 for a str or bytes key, 0 for another allowed key, -1 on error. */
static int
vm_check_key(mf_vm *vm, PyObject *key, int depth, Py_ssize_t *items)
{
    Py_ssize_t i, n;

    if (++*items > MF_KEY_ITEMS_MAX || ++vm->budget->key_items > MF_KEY_ITEMS_FILE_MAX) {
        return UNSUPPORTED_ERROR(vm,
                                 "a dictionary key or set element expands to more "
                                 "than %d items",
                                 MF_KEY_ITEMS_MAX);
    }
    if (PyUnicode_CheckExact(key) || PyBytes_CheckExact(key)) {
        return 1;
    }
    if (depth > MF_KEY_DEPTH_MAX) {
        return FORMAT_ERROR(vm, "key nested deeper than %d", MF_KEY_DEPTH_MAX);
    }
    if (PyLong_CheckExact(key) || PyFloat_CheckExact(key) || PyBool_Check(key) || key == Py_None ||
        PyComplex_CheckExact(key) || mf_Global_Check(key) || mf_Record_Check(key) ||
        (PyArray_IsScalar(key, Generic) && !PyArray_IsScalar(key, Void) &&
         !PyArray_IsScalar(key, Object))) {
        return 0;
    }
    if (PyTuple_CheckExact(key)) {
        n = PyTuple_GET_SIZE(key);
        for (i = 0; i < n; i++) {
            if (vm_check_key(vm, PyTuple_GET_ITEM(key, i), depth + 1, items) < 0) {
                return -1;
            }
        }
        return 0;
    }
    if (PyFrozenSet_CheckExact(key)) {
        /* its elements were checked when it was made */
        return 0;
    }
    return FORMAT_ERROR(vm, "a %.100s cannot be a dictionary key or set element",
                        Py_TYPE(key)->tp_name);
}

/* Checks `key` before it goes into a container that holds `count` keys. */
static int
vm_admit_key(mf_vm *vm, PyObject *key, Py_ssize_t count)
{
    Py_ssize_t items = 0;
    int r = vm_check_key(vm, key, 0, &items);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    if (count >= MF_NONSTR_KEYS_PER_OBJECT || vm->budget->nonstr_keys >= MF_NONSTR_KEYS_MAX) {
        return UNSUPPORTED_ERROR(vm,
                                 "too many non-string keys (at most %d in a "
                                 "container, %d in a file)",
                                 MF_NONSTR_KEYS_PER_OBJECT, MF_NONSTR_KEYS_MAX);
    }
    vm->budget->nonstr_keys++;
    return 0;
}

static int
vm_dict_set(mf_vm *vm, PyObject *dict, PyObject *key, PyObject *value)
{
    if (vm_admit_key(vm, key, PyDict_GET_SIZE(dict)) < 0) {
        return -1;
    }
    if (PyDict_SetItem(dict, key, value) < 0) {
        return vm_wrap_error(vm, "cannot set a dictionary item");
    }
    return 0;
}

static int
vm_set_add(mf_vm *vm, PyObject *set, PyObject *item)
{
    if (vm_admit_key(vm, item, PySet_GET_SIZE(set)) < 0) {
        return -1;
    }
    if (PySet_Add(set, item) < 0) {
        return vm_wrap_error(vm, "cannot add a set element");
    }
    return 0;
}

/* ---- the global table ----------------------------------------------------------- */

typedef struct {
    const char *module, *name;
    int kind;
} global_entry;

static const global_entry exact_globals[] = {
    {"numpy.core.multiarray", "_reconstruct", MF_G_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", MF_G_RECONSTRUCT},
    {"numpy.core.multiarray", "scalar", MF_G_SCALAR},
    {"numpy._core.multiarray", "scalar", MF_G_SCALAR},
    {"numpy.core.numeric", "_frombuffer", MF_G_FROMBUFFER},
    {"numpy._core.numeric", "_frombuffer", MF_G_FROMBUFFER},
    {"numpy", "dtype", MF_G_DTYPE},
    {"numpy", "ndarray", MF_G_NDARRAY},
    {"numpy", "memmap", MF_G_NDARRAY},
    {"numpy", "matrix", MF_G_NDARRAY},
    {"joblib.numpy_pickle", "NumpyArrayWrapper", MF_G_JOBLIB_WRAPPER},
    {"sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper", MF_G_JOBLIB_WRAPPER},
    {"_codecs", "encode", MF_G_CODECS_ENCODE},
    {"copyreg", "_reconstructor", MF_G_RECONSTRUCTOR},
    {"builtins", "set", MF_G_SET},
    {"builtins", "frozenset", MF_G_FROZENSET},
    {"builtins", "bytearray", MF_G_BYTEARRAY},
    {"builtins", "complex", MF_G_COMPLEX},
    {"builtins", "object", MF_G_OBJECT},
    {"builtins", "slice", MF_G_SLICE},
    /* protocol 2 writes b'' as bytes() (other bytes via _codecs.encode) */
    {"builtins", "bytes", MF_G_BYTES},
    {"collections", "OrderedDict", MF_G_ORDEREDDICT},
    /* HistGradientBoosting's categorical preprocessor keeps
     * FunctionTransformer(partial(check_array, ...)); see vm_call */
    {"functools", "partial", MF_G_PARTIAL},
    /* numpy random states: their constructors become inert records */
    {"numpy.random._pickle", "__randomstate_ctor", MF_G_RECORD},
    {"numpy.random", "__RandomState_ctor", MF_G_RECORD},      /* numpy < 1.17 */
    {"numpy.random._pickle", "__generator_ctor", MF_G_RECORD},
    {"numpy.random._pickle", "__bit_generator_ctor", MF_G_RECORD},
    {"numpy.random.bit_generator", "__pyx_unpickle_SeedSequence", MF_G_RECORD},
    /* a Model pickled by mlfast: its graph as plain data (mlfast._model) */
    {"mlfast._model", "_from_state", MF_G_RECORD},
    /* the search objects' cv_results_ hold masked arrays */
    {"numpy.ma.core", "_mareconstruct", MF_G_RECORD},
    {"numpy.ma.core", "MaskedArray", MF_G_TYPEREF},
    {"numpy.ma", "MaskedArray", MF_G_TYPEREF},
    /* scipy.stats' discrete distributions (RandomizedSearchCV's
     * param_distributions) keep numpy.vectorize(getattr(self, '_method')):
     * both become inert records, see vm_call */
    {"numpy", "vectorize", MF_G_RECORD},
    {"builtins", "getattr", MF_G_GETATTR},
    /* numpy < 1.20 wrote a ufunc as this call of (module, name); see vm_call */
    {"numpy.core", "_ufunc_reconstruct", MF_G_UFUNC_RECONSTRUCT},
    /* scipy.sparse matrices a fitted estimator holds (SparseRandomProjection's
     * components_, TfidfTransformer's _idf_diag up to scikit-learn 1.4, the
     * support vectors of an SVM fitted on sparse data) and SplineTransformer's
     * BSpline objects: inert records whose arrays the builders read and
     * check; never called */
    {"scipy.sparse._csr", "csr_matrix", MF_G_RECORD},
    {"scipy.sparse.csr", "csr_matrix", MF_G_RECORD},
    {"scipy.sparse._csr", "csr_array", MF_G_RECORD},
    {"scipy.sparse._csc", "csc_matrix", MF_G_RECORD},
    {"scipy.sparse.csc", "csc_matrix", MF_G_RECORD},
    {"scipy.sparse._csc", "csc_array", MF_G_RECORD},
    {"scipy.interpolate._bsplines", "BSpline", MF_G_RECORD},
    /* scipy >= 1.15 keeps the array namespace's asarray in a BSpline's state
     * (_asarray): a function named as a value, never called */
    {"scipy._lib.array_api_compat.numpy._aliases", "asarray", MF_G_TYPEREF},
    {"scipy._lib.array_api_compat.numpy", "asarray", MF_G_TYPEREF},
    {NULL, NULL, 0}
};

/* What the pickles of XGBoost's, LightGBM's and CatBoost's scikit-learn
 * wrappers name besides their own classes (which stay unknown names, inert
 * records a builder reads).  Each is data, never a callable that runs. */
static const global_entry gbdt_globals[] = {
    /* lightgbm's Booster and LGBMModel keep best_score as
     * defaultdict(OrderedDict) of metric values: read as a plain dict,
     * its factory never called */
    {"collections", "defaultdict", MF_G_DEFAULTDICT},
    {NULL, NULL, 0}
};

/* Types that may be named as values (e.g. an estimator's dtype=np.float64). */
static const char *const builtin_typerefs[] = {"int",  "float", "str",   "bool",
                                               "list", "dict",  "tuple", NULL};
static const char *const numpy_typerefs[] = {
    "bool_",  "bool",    "int8",    "int16",   "int32",    "int64",     "uint8",      "uint16",
    "uint32", "uint64",  "float16", "float32", "float64",  "complex64", "complex128", "longdouble",
    "intc",   "uintc",   "intp",    "uintp",   "int_",     "uint",      "longlong",   "ulonglong",
    "half",   "single",  "double",  "byte",    "ubyte",    "short",     "ushort",     "str_",
    "bytes_", "object_", "number",  "integer", "floating", "generic",   NULL
};

/* The numpy functions the builders serve, and where numpy's versions pickle
 * them (numpy.log1p), by name. */
static const char *const served_functions[] = {MF_FUNCTION_NAMES, NULL};
static const char *const ufunc_modules[] = {
    "numpy",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
    "numpy.core.umath",
    "numpy._core.umath",
    NULL
};

static int
in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++) {
        if (strcmp(*list, s) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
is_identifier(PyObject *s)
{
    return PyUnicode_Check(s) && PyUnicode_IsIdentifier(s) == 1;
}

/* Every dot-separated part of a module name is an identifier. */
static int
is_module_name(PyObject *module)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(module), start = 0, i;
    int ok = n > 0;
    for (i = 0; ok && i <= n; i++) {
        if (i == n || PyUnicode_READ_CHAR(module, i) == '.') {
            PyObject *part = PyUnicode_Substring(module, start, i);
            if (part == NULL) {
                PyErr_Clear();
                return 0;
            }
            ok = is_identifier(part);
            Py_DECREF(part);
            start = i + 1;
        }
    }
    return ok;
}

static int
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

#include "stdlib_names.h"

/* Modules whose names the table covers: the standard library (any Python
 * 3.7-3.13, and Python 2's spellings) and the libraries whose objects a
 * model file holds.  A name of theirs outside the table is refused when it
 * is named: they hold the functions a payload reaches for (os.system,
 * numpy.load, joblib.load, pickle.loads). */
static int
is_library(const char *m)
{
    static const char *const libraries[] = {"numpy",  "scipy", "sklearn",     "joblib", "pandas",
                                            "mlfast", "_loss", "cloudpickle", "dill",   NULL};
    char top[64];
    size_t n = strcspn(m, ".");
    if (n >= sizeof(top)) {
        return 0;
    }
    memcpy(top, m, n);
    top[n] = '\0';
    return in_list(stdlib_names, top) || in_list(libraries, top);
}

/* Classifies module.name.  Returns a kind, or 0 with reason set to why it is
 * refused (no exception is set). */
static int
classify(PyObject *module, PyObject *name, const char **reason)
{
    const char *m, *n;
    const global_entry *e;

    *reason = "it is not a scikit-learn estimator or a value mlfast can interpret";
    if (!PyUnicode_Check(module) || !PyUnicode_Check(name)) {
        *reason = "module and name must be strings";
        return 0;
    }
    m = PyUnicode_AsUTF8(module);
    n = PyUnicode_AsUTF8(name);
    if (m == NULL || n == NULL) {
        PyErr_Clear();
        *reason = "the name is not valid text";
        return 0;
    }
    if (!is_identifier(name)) {
        *reason = strchr(n, '.') != NULL
                      ? "dotted names are attribute lookups, which mlfast never performs"
                      : "the name is not an identifier";
        return 0;
    }
    if (!is_module_name(module)) {
        *reason = "the module is not a dotted identifier";
        return 0;
    }
    if ((strcmp(m, "joblib.numpy_pickle") == 0 ||
         strcmp(m, "sklearn.externals.joblib.numpy_pickle") == 0) &&
        (strcmp(n, "NDArrayWrapper") == 0 || strcmp(n, "ZNDArrayWrapper") == 0)) {
        *reason = "joblib < 0.10 wrote arrays to side files named in the pickle, "
                  "which mlfast never opens; save the model again with a current joblib";
        return 0;
    }
    for (e = exact_globals; e->module != NULL; e++) {
        if (strcmp(e->module, m) == 0 && strcmp(e->name, n) == 0) {
            return e->kind;
        }
    }
    if (strcmp(m, "builtins") == 0 && in_list(builtin_typerefs, n)) {
        return MF_G_TYPEREF;
    }
    if (strcmp(m, "numpy") == 0 && in_list(numpy_typerefs, n)) {
        return MF_G_TYPEREF;
    }
    if (in_list(ufunc_modules, m) && in_list(served_functions, n)) {
        /* a numpy function named as a value (FunctionTransformer(func=np.log1p)):
         * a name only, which vm_call refuses to call */
        return MF_G_FUNCTION;
    }
    if (strcmp(m, "numpy.random") == 0 || has_prefix(m, "numpy.random.")) {
        /* bit generator classes (MT19937, PCG64, ...) passed as values */
        if (n[0] != '_') {
            return MF_G_TYPEREF;
        }
        return 0;
    }
    if (strcmp(m, "_loss") == 0 && (has_prefix(n, "Cy") || has_prefix(n, "__pyx_unpickle_Cy"))) {
        /* scikit-learn 1.5-1.8 wheels pickle the Cython loss classes of
         * sklearn._loss._loss under the bare module name '_loss' */
        return MF_G_RECORD;
    }
    if (strcmp(m, "sklearn") == 0 || has_prefix(m, "sklearn.")) {
        /* Any scikit-learn class or Cython unpickle helper becomes an inert
         * record; dunder names (__builtins__, __loader__, ...) never do. */
        if (has_prefix(n, "__") && !has_prefix(n, "__pyx_unpickle_")) {
            *reason = "dunder names are never allowed";
            return 0;
        }
        return MF_G_RECORD;
    }
    if (has_prefix(m, "scipy.stats.") && !has_prefix(n, "_") &&
        (has_suffix(n, "_gen") || has_suffix(n, "_frozen"))) {
        /* scipy.stats distributions and frozen distributions (the
         * parameter distributions a RandomizedSearchCV keeps) as inert
         * records */
        return MF_G_RECORD;
    }
    for (e = gbdt_globals; e->module != NULL; e++) {
        if (strcmp(e->module, m) == 0 && strcmp(e->name, n) == 0) {
            return e->kind;
        }
    }
    if (is_library(m)) {
        return 0;
    }
    /* A class of any other module -- a user's own transformer, defined in
     * a script (__main__) or a package, or another library's estimator --
     * is a name mlfast does not know.  Nothing is imported: it may become
     * an inert record (so that the builders can say which class the model
     * holds and where), and vm_call refuses to call it. */
    return MF_G_UNKNOWN;
}

/* Python 2 names that pickle's fix_imports maps for protocols < 3 (the
 * ones a model file can hold: Python 3 writes them for protocols 0-2). */
static PyObject *
fix_module(int proto, PyObject *module)
{
    if (proto < 3 && PyUnicode_Check(module)) {
        if (PyUnicode_CompareWithASCIIString(module, "__builtin__") == 0) {
            return PyUnicode_FromString("builtins");
        }
        if (PyUnicode_CompareWithASCIIString(module, "copy_reg") == 0) {
            return PyUnicode_FromString("copyreg");
        }
    }
    Py_INCREF(module);
    return module;
}

static PyObject *
fix_name(int proto, PyObject *module_in, PyObject *name)
{
    if (proto < 3 && PyUnicode_Check(module_in) && PyUnicode_Check(name) &&
        PyUnicode_CompareWithASCIIString(module_in, "__builtin__") == 0) {
        if (PyUnicode_CompareWithASCIIString(name, "unicode") == 0) {
            return PyUnicode_FromString("str");
        }
        if (PyUnicode_CompareWithASCIIString(name, "long") == 0) {
            return PyUnicode_FromString("int");
        }
    }
    Py_INCREF(name);
    return name;
}

static int
vm_push_global(mf_vm *vm, PyObject *module_in, PyObject *name_in)
{
    const char *reason;
    PyObject *module = fix_module(vm->proto, module_in);
    PyObject *name = NULL;
    int kind, result = -1;

    if (module == NULL) {
        return -1;
    }
    name = fix_name(vm->proto, module_in, name_in);
    if (name == NULL) {
        goto done;
    }
    kind = classify(module, name, &reason);
    if (PyErr_Occurred()) {
        goto done;
    }
    if (kind == 0) {
        UNSAFE_ERROR(vm, "global '%S.%S' is refused: %s", module, name, reason);
        goto done;
    }
    if (kind == MF_G_JOBLIB_WRAPPER && vm->nested) {
        UNSAFE_ERROR(vm, "a joblib array wrapper inside an object array's nested "
                         "pickle; joblib never writes one there");
        goto done;
    }
    result = vm_push(vm, mf_global_new(module, name, kind));
done:
    Py_DECREF(module);
    Py_XDECREF(name);
    return result;
}

/* Python-visible: how the loader would treat module.name (for tests and the
 * inspect command).  Returns the kind, or 0 if refused. */
PyObject *
mf_classify_global(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *module, *name;
    const char *reason;
    int kind;

    if (!PyArg_ParseTuple(args, "UU:classify_global", &module, &name)) {
        return NULL;
    }
    kind = classify(module, name, &reason);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromLong(kind);
}

/* ---- numpy values ------------------------------------------------------------------ */

/* Shape tuple -> dims; *count is the element count. */
static int
vm_shape(mf_vm *vm, PyObject *shape, int *ndim, npy_intp *dims, npy_intp *count)
{
    Py_ssize_t i, n;
    npy_intp total = 1, nonzero = 1;
    int overflow = 0;

    if (!PyTuple_Check(shape)) {
        return FORMAT_ERROR(vm, "array shape is a %.100s, expected a tuple",
                            Py_TYPE(shape)->tp_name);
    }
    n = PyTuple_GET_SIZE(shape);
    if (n > MF_NDIM_MAX) {
        return UNSUPPORTED_ERROR(vm, "array with %zd dimensions (at most %d)", n, MF_NDIM_MAX);
    }
    for (i = 0; i < n; i++) {
        PyObject *d = PyTuple_GET_ITEM(shape, i);
        long long v;
        if (!PyLong_Check(d)) {
            return FORMAT_ERROR(vm, "array dimension %zd is a %.100s, expected an int", i,
                                Py_TYPE(d)->tp_name);
        }
        v = PyLong_AsLongLongAndOverflow(d, &overflow);
        if (overflow || v < 0 || v > ((long long)1 << 48)) {
            PyErr_Clear();
            return FORMAT_ERROR(vm, "array dimension %zd is out of range", i);
        }
        dims[i] = (npy_intp)v;
        /* numpy refuses a shape whose non-zero sizes overflow, even with a
         * zero among them */
        if (v != 0 && nonzero > NPY_MAX_INTP / 64 / (npy_intp)v) {
            return FORMAT_ERROR(vm, "array shape overflows");
        }
        if (v != 0) {
            nonzero *= (npy_intp)v;
        }
        total *= (npy_intp)v;
    }
    *ndim = (int)n;
    *count = total;
    return 0;
}

static int
vm_check_descr(mf_vm *vm, PyObject *descr)
{
    if (!PyArray_DescrCheck(descr)) {
        return FORMAT_ERROR(vm, "expected a numpy dtype, found a %.100s", Py_TYPE(descr)->tp_name);
    }
    if (PyDataType_ELSIZE((PyArray_Descr *)descr) <= 0) {
        return UNSUPPORTED_ERROR(vm, "dtype with an item size of 0");
    }
    return 0;
}

/* A new array of `descr` filled from `nbytes` raw bytes, converted to native
 * byte order.  `fortran`: the bytes hold the array in Fortran order. */
static PyObject *
vm_array_from_bytes(mf_vm *vm, PyArray_Descr *descr, int ndim, npy_intp *dims, npy_intp count,
                    int fortran, const char *data, Py_ssize_t nbytes)
{
    PyObject *arr = NULL, *native = NULL;
    PyArray_Descr *nd;
    npy_intp itemsize = PyDataType_ELSIZE(descr);

    if (count > 0 && itemsize > NPY_MAX_INTP / count) {
        FORMAT_ERROR(vm, "array byte size overflows");
        return NULL;
    }
    if (count * itemsize != nbytes) {
        FORMAT_ERROR(vm, "array data is %zd bytes, shape and dtype need %zd", nbytes,
                     (Py_ssize_t)(count * itemsize));
        return NULL;
    }
    if (vm_charge(vm, (size_t)nbytes + MF_OBJECT_COST) < 0) {
        return NULL;
    }
    Py_INCREF(descr);
    arr = PyArray_NewFromDescr(&PyArray_Type, descr, ndim, dims, NULL, NULL,
                               fortran ? NPY_ARRAY_F_CONTIGUOUS : 0, NULL);
    if (arr == NULL) {
        vm_wrap_error(vm, "cannot create array");
        return NULL;
    }
    if (nbytes > 0) {
        memcpy(PyArray_DATA((PyArrayObject *)arr), data, (size_t)nbytes);
    }
    /* joblib (ensure_native_byte_order) and we hand out native arrays only */
    nd = PyArray_DescrNewByteorder(descr, NPY_NATIVE);
    if (nd == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    if (PyArray_EquivTypes(nd, descr)) {
        Py_DECREF(nd);
        return arr;
    }
    /* steals nd */
    native = PyArray_FromArray((PyArrayObject *)arr, nd,
                               NPY_ARRAY_FORCECAST | NPY_ARRAY_ENSURECOPY |
                                   (fortran ? NPY_ARRAY_F_CONTIGUOUS : NPY_ARRAY_C_CONTIGUOUS));
    Py_DECREF(arr);
    return native;
}

/* An object array from a list of items (numpy pickles object arrays so). */
static PyObject *
vm_object_array(mf_vm *vm, PyArray_Descr *descr, int ndim, npy_intp *dims, npy_intp count,
                PyObject *items)
{
    PyObject *arr;
    PyObject **slots;
    npy_intp i;

    if (descr->type_num != NPY_OBJECT) {
        UNSUPPORTED_ERROR(vm, "structured dtypes holding objects are not supported");
        return NULL;
    }
    if (!PyList_Check(items) || PyList_GET_SIZE(items) != count) {
        FORMAT_ERROR(vm, "object array data must be a list of %zd items", (Py_ssize_t)count);
        return NULL;
    }
    if (vm_charge(vm, (size_t)count * sizeof(PyObject *) + MF_OBJECT_COST) < 0) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (PyArray_Check(item) && PyDataType_REFCHK(PyArray_DESCR((PyArrayObject *)item))) {
            if (++vm->budget->nested_objarrays > MF_NESTED_OBJARRAYS_MAX) {
                UNSUPPORTED_ERROR(vm, "more than %d object arrays hold object arrays",
                                  MF_NESTED_OBJARRAYS_MAX);
                return NULL;
            }
            break;
        }
    }
    Py_INCREF(descr);
    /* C order whatever the file's flag: numpy lists items in logical order */
    arr = PyArray_NewFromDescr(&PyArray_Type, descr, ndim, dims, NULL, NULL, 0, NULL);
    if (arr == NULL) {
        vm_wrap_error(vm, "cannot create object array");
        return NULL;
    }
    slots = (PyObject **)PyArray_DATA((PyArrayObject *)arr);
    for (i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        Py_INCREF(item);
        Py_XSETREF(slots[i], item);
    }
    return arr;
}

/* BUILD of ndarray._reconstruct: state (version, shape, dtype, fortran, data)
 * or the 4-tuple without the version. */
static PyObject *
vm_finish_array(mf_vm *vm, PyObject *state)
{
    PyObject *shape, *descr, *fortran, *data;
    npy_intp dims[MF_NDIM_MAX], count;
    int ndim, is_fortran;
    Py_ssize_t off;

    if (!PyTuple_Check(state) || (PyTuple_GET_SIZE(state) != 5 && PyTuple_GET_SIZE(state) != 4)) {
        FORMAT_ERROR(vm, "ndarray state must be a tuple of 4 or 5 items");
        return NULL;
    }
    off = PyTuple_GET_SIZE(state) - 4;
    if (off == 1) {
        PyObject *version = PyTuple_GET_ITEM(state, 0);
        if (!PyLong_Check(version) || PyLong_AsLong(version) != 1) {
            PyErr_Clear();
            FORMAT_ERROR(vm, "ndarray state version must be 1");
            return NULL;
        }
    }
    shape = PyTuple_GET_ITEM(state, off);
    descr = PyTuple_GET_ITEM(state, off + 1);
    fortran = PyTuple_GET_ITEM(state, off + 2);
    data = PyTuple_GET_ITEM(state, off + 3);
    if (vm_shape(vm, shape, &ndim, dims, &count) < 0 || vm_check_descr(vm, descr) < 0) {
        return NULL;
    }
    if (!PyBool_Check(fortran) && !PyLong_CheckExact(fortran)) {
        FORMAT_ERROR(vm, "ndarray fortran flag is a %.100s, expected a bool",
                     Py_TYPE(fortran)->tp_name);
        return NULL;
    }
    is_fortran = PyObject_IsTrue(fortran);
    if (is_fortran < 0) {
        return NULL;
    }
    if (PyDataType_REFCHK((PyArray_Descr *)descr)) {
        return vm_object_array(vm, (PyArray_Descr *)descr, ndim, dims, count, data);
    }
    if (!PyBytes_Check(data)) {
        FORMAT_ERROR(vm, "ndarray data is a %.100s, expected bytes", Py_TYPE(data)->tp_name);
        return NULL;
    }
    return vm_array_from_bytes(vm, (PyArray_Descr *)descr, ndim, dims, count, is_fortran,
                               PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
}

/* numpy.dtype(type_string, align, copy): parse the type string strictly. */
static PyObject *
vm_dtype_base(mf_vm *vm, PyObject *args)
{
    PyObject *spec;
    PyArray_Descr *descr = NULL;
    const char *s;
    Py_ssize_t len, i;

    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 3) {
        FORMAT_ERROR(vm, "numpy.dtype expects (type_string, align, copy)");
        return NULL;
    }
    spec = PyTuple_GET_ITEM(args, 0);
    if (!PyUnicode_Check(spec)) {
        FORMAT_ERROR(vm, "numpy.dtype argument is a %.100s, expected a type string",
                     Py_TYPE(spec)->tp_name);
        return NULL;
    }
    s = PyUnicode_AsUTF8AndSize(spec, &len);
    if (s == NULL) {
        vm_wrap_error(vm, "numpy dtype string is not valid text");
        return NULL;
    }
    /* One kind letter and a decimal size; datetimes ('M8', 'm8') and anything
     * fancier are not needed by any model and are refused. */
    if (len < 2 || len > 9 || strchr("biufcOSUV", s[0]) == NULL) {
        UNSUPPORTED_ERROR(vm, "numpy dtype '%s' is not supported", s);
        return NULL;
    }
    for (i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            UNSUPPORTED_ERROR(vm, "numpy dtype '%s' is not supported", s);
            return NULL;
        }
    }
    if (!PyArray_DescrConverter(spec, &descr)) {
        vm_wrap_error(vm, "invalid numpy dtype");
        return NULL;
    }
    return (PyObject *)descr;
}

/* A structured dtype from the BUILD state's names and fields. */
static PyArray_Descr *
vm_structured(mf_vm *vm, PyObject *names, PyObject *fields, long elsize)
{
    PyObject *spec = NULL, *lnames = NULL, *formats = NULL, *offsets = NULL;
    PyArray_Descr *result = NULL;
    Py_ssize_t i, n;

    if (!PyTuple_Check(names) || !PyDict_Check(fields)) {
        FORMAT_ERROR(vm, "structured dtype needs a names tuple and a fields dict");
        return NULL;
    }
    if (elsize <= 0 || elsize > MF_ITEMSIZE_MAX) {
        FORMAT_ERROR(vm, "structured dtype item size %ld out of range", elsize);
        return NULL;
    }
    n = PyTuple_GET_SIZE(names);
    lnames = PyList_New(n);
    formats = PyList_New(n);
    offsets = PyList_New(n);
    if (lnames == NULL || formats == NULL || offsets == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *field, *fdescr, *foff;
        long off;
        if (!PyUnicode_Check(name)) {
            FORMAT_ERROR(vm, "structured dtype field name is not a string");
            goto done;
        }
        field = PyDict_GetItemWithError(fields, name);
        if (field == NULL) {
            if (!PyErr_Occurred()) {
                FORMAT_ERROR(vm, "structured dtype field '%U' has no entry", name);
            }
            goto done;
        }
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 2) {
            UNSUPPORTED_ERROR(vm, "structured dtype field '%U' must be (dtype, offset)", name);
            goto done;
        }
        fdescr = PyTuple_GET_ITEM(field, 0);
        foff = PyTuple_GET_ITEM(field, 1);
        if (vm_check_descr(vm, fdescr) < 0) {
            goto done;
        }
        if (PyDataType_REFCHK((PyArray_Descr *)fdescr) ||
            PyDataType_HASFIELDS((PyArray_Descr *)fdescr) ||
            PyDataType_HASSUBARRAY((PyArray_Descr *)fdescr)) {
            UNSUPPORTED_ERROR(vm, "structured dtype field '%U' holds objects or nests", name);
            goto done;
        }
        off = PyLong_Check(foff) ? PyLong_AsLong(foff) : -1;
        if (off < 0 || off > elsize - (long)PyDataType_ELSIZE((PyArray_Descr *)fdescr)) {
            PyErr_Clear();
            FORMAT_ERROR(vm, "structured dtype field '%U' lies outside its %ld-byte item", name,
                         elsize);
            goto done;
        }
        Py_INCREF(name);
        PyList_SET_ITEM(lnames, i, name);
        Py_INCREF(fdescr);
        PyList_SET_ITEM(formats, i, fdescr);
        Py_INCREF(foff);
        PyList_SET_ITEM(offsets, i, foff);
    }
    spec = Py_BuildValue("{sOsOsOsl}", "names", lnames, "formats", formats, "offsets", offsets,
                         "itemsize", elsize);
    if (spec == NULL) {
        goto done;
    }
    if (!PyArray_DescrConverter(spec, &result)) {
        result = NULL;
        vm_wrap_error(vm, "invalid structured dtype");
    }
done:
    Py_XDECREF(spec);
    Py_XDECREF(lnames);
    Py_XDECREF(formats);
    Py_XDECREF(offsets);
    return result;
}

/* BUILD of a numpy.dtype: (version, byteorder, subarray, names, fields,
 * elsize, alignment, flags[, metadata]). */
static PyObject *
vm_finish_dtype(mf_vm *vm, PyArray_Descr *base, PyObject *state)
{
    PyObject *order, *names, *fields;
    PyArray_Descr *result = NULL;
    Py_ssize_t n = 0;
    long version, elsize;
    const char *o;

    n = PyTuple_Check(state) ? PyTuple_GET_SIZE(state) : 0;
    if (n != 8 && n != 9) {
        FORMAT_ERROR(vm, "numpy dtype state must be a tuple of 8 or 9 items");
        return NULL;
    }
    version =
        PyLong_Check(PyTuple_GET_ITEM(state, 0)) ? PyLong_AsLong(PyTuple_GET_ITEM(state, 0)) : -1;
    if (version != 3 && version != 4) {
        PyErr_Clear();
        UNSUPPORTED_ERROR(vm, "numpy dtype state version %ld (expected 3 or 4)", version);
        return NULL;
    }
    if (n == 9 && PyTuple_GET_ITEM(state, 8) != Py_None) {
        UNSUPPORTED_ERROR(vm, "numpy dtype with metadata is not supported");
        return NULL;
    }
    order = PyTuple_GET_ITEM(state, 1);
    if (PyTuple_GET_ITEM(state, 2) != Py_None) {
        UNSUPPORTED_ERROR(vm, "numpy subarray dtypes are not supported");
        return NULL;
    }
    names = PyTuple_GET_ITEM(state, 3);
    fields = PyTuple_GET_ITEM(state, 4);
    elsize =
        PyLong_Check(PyTuple_GET_ITEM(state, 5)) ? PyLong_AsLong(PyTuple_GET_ITEM(state, 5)) : -2;
    if (elsize == -2 || (elsize == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        FORMAT_ERROR(vm, "numpy dtype item size is not an int");
        return NULL;
    }
    o = PyUnicode_Check(order) ? PyUnicode_AsUTF8(order) : NULL;
    if (o == NULL || o[0] == '\0' || o[1] != '\0' || strchr("<>|=", o[0]) == NULL) {
        PyErr_Clear();
        FORMAT_ERROR(vm, "numpy dtype byte order must be one of '<', '>', '|', '='");
        return NULL;
    }
    if (names != Py_None || fields != Py_None) {
        if (base->type_num != NPY_VOID) {
            FORMAT_ERROR(vm, "fields given for a non-void dtype");
            return NULL;
        }
        if (elsize != (long)PyDataType_ELSIZE(base)) {
            FORMAT_ERROR(vm,
                         "structured dtype item size %ld differs from its type "
                         "string's %ld",
                         elsize, (long)PyDataType_ELSIZE(base));
            return NULL;
        }
        return (PyObject *)vm_structured(vm, names, fields, elsize);
    }
    if (o[0] == '|' || o[0] == '=') {
        Py_INCREF(base);
        result = base;
    }
    else {
        result = PyArray_DescrNewByteorder(base, o[0] == '<' ? NPY_LITTLE : NPY_BIG);
    }
    return (PyObject *)result;
}

/* numpy.core.multiarray.scalar(dtype, data) */
static PyObject *
vm_scalar(mf_vm *vm, PyObject *args)
{
    PyObject *descr, *data, *result = NULL;
    void *aligned;
    npy_intp itemsize;

    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 2) {
        FORMAT_ERROR(vm, "numpy scalar expects (dtype, data)");
        return NULL;
    }
    descr = PyTuple_GET_ITEM(args, 0);
    data = PyTuple_GET_ITEM(args, 1);
    if (vm_check_descr(vm, descr) < 0) {
        return NULL;
    }
    if (((PyArray_Descr *)descr)->type_num == NPY_OBJECT) {
        Py_INCREF(data);      /* numpy returns the object itself */
        return data;
    }
    if (PyDataType_REFCHK((PyArray_Descr *)descr) ||
        ((PyArray_Descr *)descr)->type_num == NPY_VOID) {
        UNSUPPORTED_ERROR(vm, "numpy void scalars are not supported");
        return NULL;
    }
    itemsize = PyDataType_ELSIZE((PyArray_Descr *)descr);
    if (!PyBytes_Check(data) || PyBytes_GET_SIZE(data) != itemsize) {
        FORMAT_ERROR(vm, "numpy scalar data must be %zd bytes", (Py_ssize_t)itemsize);
        return NULL;
    }
    /* PyArray_Scalar reads the value in place: give it aligned memory */
    aligned = PyMem_Malloc((size_t)itemsize);
    if (aligned == NULL) {
        return PyErr_NoMemory();
    }
    memcpy(aligned, PyBytes_AS_STRING(data), (size_t)itemsize);
    result = PyArray_Scalar(aligned, (PyArray_Descr *)descr, NULL);
    PyMem_Free(aligned);
    if (result == NULL) {
        vm_wrap_error(vm, "invalid numpy scalar");
    }
    return result;
}

/* numpy.core.numeric._frombuffer(buf, dtype, shape, order), protocol 5 */
static PyObject *
vm_frombuffer(mf_vm *vm, PyObject *args)
{
    PyObject *buf, *descr, *shape, *order;
    npy_intp dims[MF_NDIM_MAX], count;
    int ndim, fortran;
    const char *data;
    Py_ssize_t nbytes;

    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 4) {
        FORMAT_ERROR(vm, "_frombuffer expects (buffer, dtype, shape, order)");
        return NULL;
    }
    buf = PyTuple_GET_ITEM(args, 0);
    descr = PyTuple_GET_ITEM(args, 1);
    shape = PyTuple_GET_ITEM(args, 2);
    order = PyTuple_GET_ITEM(args, 3);
    if (vm_check_descr(vm, descr) < 0 || vm_shape(vm, shape, &ndim, dims, &count) < 0) {
        return NULL;
    }
    if (PyDataType_REFCHK((PyArray_Descr *)descr)) {
        UNSAFE_ERROR(vm, "_frombuffer of an object dtype would read raw pointers");
        return NULL;
    }
    if (!PyUnicode_Check(order) || (PyUnicode_CompareWithASCIIString(order, "C") != 0 &&
                                    PyUnicode_CompareWithASCIIString(order, "F") != 0)) {
        FORMAT_ERROR(vm, "_frombuffer order must be 'C' or 'F'");
        return NULL;
    }
    fortran = PyUnicode_CompareWithASCIIString(order, "F") == 0;
    if (PyBytes_Check(buf)) {
        data = PyBytes_AS_STRING(buf);
        nbytes = PyBytes_GET_SIZE(buf);
    }
    else if (PyByteArray_Check(buf)) {
        data = PyByteArray_AS_STRING(buf);
        nbytes = PyByteArray_GET_SIZE(buf);
    }
    else {
        FORMAT_ERROR(vm, "_frombuffer buffer is a %.100s, expected bytes", Py_TYPE(buf)->tp_name);
        return NULL;
    }
    return vm_array_from_bytes(vm, (PyArray_Descr *)descr, ndim, dims, count, fortran, data,
                               nbytes);
}

/* ---- joblib ----------------------------------------------------------------------- */

static PyObject *vm_run_nested(mf_vm *outer);

static PyObject *
dict_get(PyObject *d, const char *key)
{
    PyObject *v = PyDict_GetItemString(d, key);   /* borrowed, no error */
    return v;
}

/* BUILD of a NumpyArrayWrapper: the state dict describes the array whose
 * bytes follow in the stream (joblib's NumpyArrayWrapper.read_array). */
static PyObject *
vm_finish_wrapper(mf_vm *vm, PyObject *state)
{
    PyObject *subclass, *shape, *order, *descr, *align, *arr;
    npy_intp dims[MF_NDIM_MAX], count, itemsize;
    int ndim, fortran;
    const unsigned char *data = NULL;

    if (!PyDict_Check(state)) {
        FORMAT_ERROR(vm, "joblib array wrapper state is not a dict");
        return NULL;
    }
    subclass = dict_get(state, "subclass");
    shape = dict_get(state, "shape");
    order = dict_get(state, "order");
    descr = dict_get(state, "dtype");
    align = dict_get(state, "numpy_array_alignment_bytes");
    if (subclass == NULL || shape == NULL || order == NULL || descr == NULL) {
        FORMAT_ERROR(vm, "joblib array wrapper state lacks subclass, shape, order "
                         "or dtype");
        return NULL;
    }
    if (!mf_Global_Check(subclass) || ((mf_Global *)subclass)->kind != MF_G_NDARRAY) {
        UNSUPPORTED_ERROR(vm, "joblib array of a subclass other than numpy.ndarray");
        return NULL;
    }
    if (vm_shape(vm, shape, &ndim, dims, &count) < 0 || vm_check_descr(vm, descr) < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(order) || (PyUnicode_CompareWithASCIIString(order, "C") != 0 &&
                                    PyUnicode_CompareWithASCIIString(order, "F") != 0)) {
        FORMAT_ERROR(vm, "joblib array order must be 'C' or 'F'");
        return NULL;
    }
    fortran = PyUnicode_CompareWithASCIIString(order, "F") == 0;
    if (PyDataType_REFCHK((PyArray_Descr *)descr)) {
        /* a whole pickle follows, under the same rules */
        PyArrayObject *inner = (PyArrayObject *)vm_run_nested(vm);
        if (inner == NULL) {
            return NULL;
        }
        if (!PyArray_CheckExact(inner) || PyArray_NDIM(inner) != ndim ||
            !PyArray_CompareLists(PyArray_DIMS(inner), dims, ndim) ||
            !PyDataType_REFCHK(PyArray_DESCR(inner))) {
            Py_DECREF(inner);
            FORMAT_ERROR(vm, "joblib object array: the nested pickle does not hold "
                             "the array its wrapper describes");
            return NULL;
        }
        return (PyObject *)inner;
    }
    if (align != NULL && align != Py_None) {
        /* joblib >= 1.2: one byte giving the padding length, then padding,
         * so that the data is aligned in the (decompressed) stream */
        long alignment = PyLong_Check(align) ? PyLong_AsLong(align) : -1;
        const unsigned char *pad = NULL;
        if (alignment < 1 || alignment > 4096) {
            PyErr_Clear();
            FORMAT_ERROR(vm, "joblib array alignment out of range");
            return NULL;
        }
        if (vm_read(vm, 1, &pad) < 0) {
            return NULL;
        }
        if (pad[0] > alignment) {
            FORMAT_ERROR(vm, "joblib padding of %d bytes exceeds the alignment %ld", pad[0],
                         alignment);
            return NULL;
        }
        if (vm_read(vm, pad[0], &pad) < 0) {
            return NULL;
        }
    }
    itemsize = PyDataType_ELSIZE((PyArray_Descr *)descr);
    if (count > 0 && itemsize > (vm->size - vm->pos) / count) {
        FORMAT_ERROR(vm,
                     "joblib array of %zd items of %zd bytes is larger than the "
                     "%zd bytes left",
                     (Py_ssize_t)count, (Py_ssize_t)itemsize, vm->size - vm->pos);
        return NULL;
    }
    if (vm_read(vm, count * itemsize, &data) < 0) {
        return NULL;
    }
    arr = vm_array_from_bytes(vm, (PyArray_Descr *)descr, ndim, dims, count, fortran,
                              (const char *)data, count * itemsize);
    return arr;
}

/* ---- calls: REDUCE and NEWOBJ ---------------------------------------------------------- */

static PyObject *
vm_bytes_arg(mf_vm *vm, PyObject *args, const char *what)
{
    /* (bytes,) or (str, 'latin-1') as Python 2-compatible pickles write */
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n == 1 && PyBytes_Check(PyTuple_GET_ITEM(args, 0))) {
        PyObject *b = PyTuple_GET_ITEM(args, 0);
        Py_INCREF(b);
        return b;
    }
    if (n == 2 && PyUnicode_Check(PyTuple_GET_ITEM(args, 0)) &&
        PyUnicode_Check(PyTuple_GET_ITEM(args, 1))) {
        PyObject *enc = PyTuple_GET_ITEM(args, 1);
        PyObject *b;
        if (PyUnicode_CompareWithASCIIString(enc, "latin1") != 0 &&
            PyUnicode_CompareWithASCIIString(enc, "latin-1") != 0) {
            UNSUPPORTED_ERROR(vm, "%s with encoding %R (only latin1 is read)", what, enc);
            return NULL;
        }
        b = PyUnicode_AsLatin1String(PyTuple_GET_ITEM(args, 0));
        if (b == NULL) {
            vm_wrap_error(vm, "bytes text is not latin-1");
        }
        return b;
    }
    FORMAT_ERROR(vm, "%s expects (bytes,) or (str, 'latin1')", what);
    return NULL;
}

static PyObject *
vm_make_set(mf_vm *vm, PyObject *args, int frozen)
{
    PyObject *set, *items = NULL;
    Py_ssize_t i, n = 0;

    if (PyTuple_GET_SIZE(args) > 1) {
        FORMAT_ERROR(vm, "set expects at most one argument");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) == 1) {
        items = PyTuple_GET_ITEM(args, 0);
        if (!PyList_Check(items) && !PyTuple_Check(items)) {
            FORMAT_ERROR(vm, "set argument must be a list or tuple");
            return NULL;
        }
        n = PySequence_Fast_GET_SIZE(items);
    }
    set = PySet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (vm_set_add(vm, set, PySequence_Fast_GET_ITEM(items, i)) < 0) {
            Py_DECREF(set);
            return NULL;
        }
    }
    if (frozen) {
        Py_SETREF(set, PyFrozenSet_New(set));
    }
    return set;
}

static PyObject *
vm_call(mf_vm *vm, PyObject *callable, PyObject *args, int newobj)
{
    mf_Global *g;

    if (!mf_Global_Check(callable)) {
        FORMAT_ERROR(vm, "%s of a %.100s; only named globals are callable",
                     newobj ? "NEWOBJ" : "REDUCE", Py_TYPE(callable)->tp_name);
        return NULL;
    }
    if (!PyTuple_Check(args)) {
        FORMAT_ERROR(vm, "call arguments are a %.100s, expected a tuple", Py_TYPE(args)->tp_name);
        return NULL;
    }
    if (vm_charge(vm, MF_OBJECT_COST) < 0) {
        return NULL;
    }
    g = (mf_Global *)callable;
    if (newobj) {
        switch (g->kind) {
        case MF_G_RECORD:
        case MF_G_UNKNOWN:
            return mf_record_new(callable, args, 0);
        case MF_G_JOBLIB_WRAPPER:
            return pending_new(PENDING_WRAPPER, NULL);
        case MF_G_ORDEREDDICT:
            return PyDict_New();
        default:
            UNSAFE_ERROR(vm, "'%U.%U' may not be instantiated with NEWOBJ", g->module, g->name);
            return NULL;
        }
    }
    switch (g->kind) {
    case MF_G_RECORD:
        return mf_record_new(callable, args, 1);
    case MF_G_PARTIAL:
        /* Never called, like every record; still, only a scikit-learn
         * function may be wrapped, so that the tree holds nothing else. */
        if (PyTuple_GET_SIZE(args) != 1 || !mf_Global_Check(PyTuple_GET_ITEM(args, 0)) ||
            ((mf_Global *)PyTuple_GET_ITEM(args, 0))->kind != MF_G_RECORD) {
            UNSAFE_ERROR(vm, "functools.partial is refused around anything but a "
                             "scikit-learn function");
            return NULL;
        }
        return mf_record_new(callable, args, 1);
    case MF_G_RECONSTRUCT:
        if (PyTuple_GET_SIZE(args) != 3 || !mf_Global_Check(PyTuple_GET_ITEM(args, 0)) ||
            ((mf_Global *)PyTuple_GET_ITEM(args, 0))->kind != MF_G_NDARRAY) {
            FORMAT_ERROR(vm, "_reconstruct expects (numpy.ndarray, shape, typecode)");
            return NULL;
        }
        return pending_new(PENDING_ARRAY, NULL);
    case MF_G_DTYPE: {
        PyObject *base = vm_dtype_base(vm, args), *p;
        if (base == NULL) {
            return NULL;
        }
        p = pending_new(PENDING_DTYPE, base);
        Py_DECREF(base);
        return p;
    }
    case MF_G_SCALAR:
        return vm_scalar(vm, args);
    case MF_G_FROMBUFFER:
        return vm_frombuffer(vm, args);
    case MF_G_CODECS_ENCODE: {
        PyObject *b = vm_bytes_arg(vm, args, "_codecs.encode");
        if (b != NULL && vm_charge(vm, (size_t)PyBytes_GET_SIZE(b)) < 0) {
            Py_CLEAR(b);
        }
        return b;
    }
    case MF_G_RECONSTRUCTOR: {
        PyObject *cls, *base;
        if (PyTuple_GET_SIZE(args) != 3) {
            FORMAT_ERROR(vm, "copyreg._reconstructor expects (class, base, state)");
            return NULL;
        }
        cls = PyTuple_GET_ITEM(args, 0);
        base = PyTuple_GET_ITEM(args, 1);
        /* protocols 0 and 1 make every object so, joblib's wrappers too */
        if (!mf_Global_Check(cls) ||
            (((mf_Global *)cls)->kind != MF_G_RECORD && ((mf_Global *)cls)->kind != MF_G_UNKNOWN &&
             ((mf_Global *)cls)->kind != MF_G_JOBLIB_WRAPPER)) {
            UNSAFE_ERROR(vm, "copyreg._reconstructor of something other than an "
                             "allowed class");
            return NULL;
        }
        if (!mf_Global_Check(base) || ((mf_Global *)base)->kind != MF_G_OBJECT ||
            PyTuple_GET_ITEM(args, 2) != Py_None) {
            UNSUPPORTED_ERROR(vm, "copyreg._reconstructor with a base other than object");
            return NULL;
        }
        if (((mf_Global *)cls)->kind == MF_G_JOBLIB_WRAPPER) {
            return pending_new(PENDING_WRAPPER, NULL);
        }
        {
            PyObject *empty = PyTuple_New(0), *rec;
            if (empty == NULL) {
                return NULL;
            }
            rec = mf_record_new(cls, empty, 0);   /* object.__new__(cls) */
            Py_DECREF(empty);
            return rec;
        }
    }
    case MF_G_SET:
        return vm_make_set(vm, args, 0);
    case MF_G_FROZENSET:
        return vm_make_set(vm, args, 1);
    case MF_G_BYTES:
        if (PyTuple_GET_SIZE(args) == 0) {
            return PyBytes_FromStringAndSize("", 0);
        }
        return vm_bytes_arg(vm, args, "bytes");
    case MF_G_BYTEARRAY: {
        PyObject *b, *ba;
        if (PyTuple_GET_SIZE(args) == 0) {
            return PyByteArray_FromStringAndSize("", 0);
        }
        b = vm_bytes_arg(vm, args, "bytearray");
        if (b == NULL) {
            return NULL;
        }
        ba = PyByteArray_FromObject(b);
        Py_DECREF(b);
        return ba;
    }
    case MF_G_COMPLEX: {
        double re = 0.0, im = 0.0;
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        if (n > 2 || (n >= 1 && !PyFloat_CheckExact(PyTuple_GET_ITEM(args, 0))) ||
            (n == 2 && !PyFloat_CheckExact(PyTuple_GET_ITEM(args, 1)))) {
            FORMAT_ERROR(vm, "complex expects (real, imag) floats");
            return NULL;
        }
        if (n >= 1) {
            re = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(args, 0));
        }
        if (n == 2) {
            im = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(args, 1));
        }
        return PyComplex_FromDoubles(re, im);
    }
    case MF_G_SLICE: {
        Py_ssize_t i, n = PyTuple_GET_SIZE(args);
        PyObject *parts[3] = {Py_None, Py_None, Py_None};
        if (n < 1 || n > 3) {
            FORMAT_ERROR(vm, "slice expects 1 to 3 arguments");
            return NULL;
        }
        for (i = 0; i < n; i++) {
            PyObject *v = PyTuple_GET_ITEM(args, i);
            /* a ColumnTransformer may slice columns by label */
            if (v != Py_None && !PyLong_CheckExact(v) && !PyUnicode_CheckExact(v)) {
                FORMAT_ERROR(vm, "slice bounds must be ints, str or None");
                return NULL;
            }
            parts[i] = v;
        }
        /* slice(stop) puts its one argument in stop */
        if (n == 1) {
            return PySlice_New(Py_None, parts[0], Py_None);
        }
        return PySlice_New(parts[0], parts[1], parts[2]);
    }
    case MF_G_UFUNC_RECONSTRUCT: {
        /* _ufunc_reconstruct(module, name) stands for numpy's function of
         * that name: it becomes that name, never looked up */
        PyObject *module = PyTuple_GET_SIZE(args) == 2 ? PyTuple_GET_ITEM(args, 0) : NULL;
        PyObject *name = module != NULL ? PyTuple_GET_ITEM(args, 1) : NULL;
        const char *reason;
        if (module == NULL || !PyUnicode_CheckExact(module) || !PyUnicode_CheckExact(name) ||
            classify(module, name, &reason) != MF_G_FUNCTION) {
            if (!PyErr_Occurred()) {
                UNSAFE_ERROR(vm, "numpy.core._ufunc_reconstruct is refused for anything "
                                 "but the name of a numpy function mlfast serves");
            }
            return NULL;
        }
        return mf_global_new(module, name, MF_G_FUNCTION);
    }
    case MF_G_ORDEREDDICT:
        if (PyTuple_GET_SIZE(args) != 0) {
            UNSUPPORTED_ERROR(vm, "OrderedDict with constructor arguments");
            return NULL;
        }
        return PyDict_New();
    case MF_G_DEFAULTDICT: {
        /* defaultdict(factory) then SETITEMS: the dict of its items; the
         * factory only fills missing keys, which nothing here looks up, and
         * may only be a type (OrderedDict, dict, list, ...) or None */
        PyObject *factory = PyTuple_GET_SIZE(args) == 1 ? PyTuple_GET_ITEM(args, 0) : NULL;
        int kind = factory != NULL && mf_Global_Check(factory) ? ((mf_Global *)factory)->kind : 0;
        if (PyTuple_GET_SIZE(args) > 1 ||
            (factory != NULL && factory != Py_None && kind != MF_G_ORDEREDDICT &&
             kind != MF_G_TYPEREF && kind != MF_G_DEFAULTDICT)) {
            UNSAFE_ERROR(vm, "collections.defaultdict is refused with a factory other "
                             "than a type");
            return NULL;
        }
        return PyDict_New();
    }
    case MF_G_GETATTR: {
        /* getattr(record, 'name') is how pickle writes a bound method; on
         * an inert record it names a method of a class mlfast never
         * instantiates, so it stays a name: a record of the call, never
         * made.  On anything else (a module, a global) it is refused. */
        PyObject *name = PyTuple_GET_SIZE(args) == 2 ? PyTuple_GET_ITEM(args, 1) : NULL;
        if (name == NULL || !mf_Record_Check(PyTuple_GET_ITEM(args, 0)) || !is_identifier(name) ||
            (PyUnicode_GET_LENGTH(name) >= 2 && PyUnicode_READ_CHAR(name, 0) == '_' &&
             PyUnicode_READ_CHAR(name, 1) == '_')) {
            UNSAFE_ERROR(vm, "builtins.getattr is refused on anything but an inert "
                             "instance and a plain method name");
            return NULL;
        }
        return mf_record_new(callable, args, 1);
    }
    case MF_G_UNKNOWN:
        /* a class instantiated by NEWOBJ is data; a call of a name mlfast
         * does not know is code it will not run */
        UNSAFE_ERROR(vm,
                     "'%U.%U' is called; mlfast never calls what a file names "
                     "outside its table",
                     g->module, g->name);
        return NULL;
    default:
        UNSAFE_ERROR(vm, "'%U.%U' may not be called", g->module, g->name);
        return NULL;
    }
}

/* ---- opcode handlers --------------------------------------------------------------- */

static int
load_proto(mf_vm *vm)
{
    const unsigned char *p = NULL;
    if (vm_read(vm, 1, &p) < 0) {
        return -1;
    }
    if (p[0] > 5) {
        return UNSUPPORTED_ERROR(vm, "pickle protocol %d (at most 5)", p[0]);
    }
    vm->proto = p[0];
    return 0;
}

static int
load_frame(mf_vm *vm)
{
    Py_ssize_t n = 0;
    /* advisory: the whole stream is in memory; only check its claim */
    return vm_read_length(vm, 8, &n);
}

static int
load_mark(mf_vm *vm)
{
    if (vm->n_marks == vm->marks_cap) {
        Py_ssize_t cap = vm->marks_cap * 2;
        Py_ssize_t *grown;
        if (vm->marks_cap >= MF_MARKS_MAX) {
            return UNSUPPORTED_ERROR(vm, "more than %d nested MARKs", MF_MARKS_MAX);
        }
        grown = PyMem_Realloc(vm->marks, (size_t)cap * sizeof(Py_ssize_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        vm->marks = grown;
        vm->marks_cap = cap;
    }
    vm->marks[vm->n_marks++] = vm->stack_len;
    vm->fence = vm->stack_len;
    return 0;
}

static int
load_pop(mf_vm *vm)
{
    if (vm->stack_len > vm->fence) {
        PyObject *obj = vm->stack[--vm->stack_len];
        Py_DECREF(obj);
        return 0;
    }
    if (vm->n_marks > 0) {
        Py_ssize_t start = 0;
        return vm_marker(vm, &start);
    }
    return FORMAT_ERROR(vm, "stack underflow");
}

static int
load_pop_mark(mf_vm *vm)
{
    Py_ssize_t start = 0;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    vm_truncate(vm, start);
    return 0;
}

static int
load_dup(mf_vm *vm)
{
    PyObject *top = vm_top(vm);
    if (top == NULL) {
        return -1;
    }
    Py_INCREF(top);
    return vm_push(vm, top);
}

static int
load_binint(mf_vm *vm, int width)
{
    const unsigned char *p = NULL;
    long v;
    if (vm_read(vm, width, &p) < 0) {
        return -1;
    }
    if (width == 1) {
        v = p[0];
    }
    else if (width == 2) {
        v = p[0] | ((long)p[1] << 8);
    }
    else {
        uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                     ((uint32_t)p[3] << 24);
        v = (long)(int32_t)u;
    }
    return vm_push(vm, PyLong_FromLong(v));
}

static int
load_long_binary(mf_vm *vm, int width)
{
    Py_ssize_t n = 0;
    const unsigned char *p = NULL;
    if (width == 1) {
        if (vm_read(vm, 1, &p) < 0) {
            return -1;
        }
        n = p[0];
    }
    else {
        uint32_t u;
        if (vm_read(vm, 4, &p) < 0) {
            return -1;
        }
        u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
            ((uint32_t)p[3] << 24);
        if ((int32_t)u < 0) {
            return FORMAT_ERROR(vm, "negative LONG4 byte count");
        }
        n = (Py_ssize_t)u;
    }
    if (n > vm->size - vm->pos) {
        return FORMAT_ERROR(vm, "integer of %zd bytes, %zd left", n, vm->size - vm->pos);
    }
    if (n > MF_LONG_MAX_BYTES) {
        return UNSUPPORTED_ERROR(vm, "integer of %zd bytes (at most %d)", n, MF_LONG_MAX_BYTES);
    }
    if (vm_read(vm, n, &p) < 0) {
        return -1;
    }
    if (n == 0) {
        return vm_push(vm, PyLong_FromLong(0));
    }
    return vm_push(vm, _PyLong_FromByteArray(p, (size_t)n, 1, 1));
}

/* INT / LONG of protocol 0 (and of protocol 1 for ints beyond 32 bits):
 * decimal text as Python writes it; INT also spells True and False as 01
 * and 00.  CPython reads more spellings (strtol and int() with base 0, so
 * INT "010" is 8 and "0x1f" 31); no pickler writes them, and rather than
 * guess which meaning a file intends they are refused. */
static int
load_text_int(mf_vm *vm, int is_long)
{
    const char *line = NULL;
    Py_ssize_t len = 0, digits, i;
    char buf[MF_LONG_MAX_DIGITS + 2];
    PyObject *value;

    if (vm_readline(vm, &line, &len) < 0) {
        return -1;
    }
    if (is_long && len > 0 && line[len - 1] == 'L') {
        len--;
    }
    if (!is_long && len == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1')) {
        value = line[1] == '1' ? Py_True : Py_False;
        Py_INCREF(value);
        return vm_push(vm, value);
    }
    digits = len > 0 && line[0] == '-' ? len - 1 : len;
    if (digits < 1 || (digits > 1 && line[len - digits] == '0')) {
        return FORMAT_ERROR(vm, "invalid integer text");
    }
    for (i = len - digits; i < len; i++) {
        if (line[i] < '0' || line[i] > '9') {
            return FORMAT_ERROR(vm, "invalid integer text");
        }
    }
    if (digits > MF_LONG_MAX_DIGITS) {
        return UNSUPPORTED_ERROR(vm, "integer of %zd digits (at most %d)", digits,
                                 MF_LONG_MAX_DIGITS);
    }
    memcpy(buf, line, (size_t)len);
    buf[len] = '\0';
    value = PyLong_FromString(buf, NULL, 10);
    if (value == NULL) {
        return vm_wrap_error(vm, "invalid integer text");
    }
    return vm_push(vm, value);
}

static int
load_text_float(mf_vm *vm)
{
    const char *line = NULL;
    Py_ssize_t len = 0;
    char buf[64];
    char *end;
    double d;

    if (vm_readline(vm, &line, &len) < 0) {
        return -1;
    }
    if (len <= 0 || len >= (Py_ssize_t)sizeof(buf)) {
        return FORMAT_ERROR(vm, "float text of %zd characters", len);
    }
    memcpy(buf, line, (size_t)len);
    buf[len] = '\0';
    d = PyOS_string_to_double(buf, &end, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        return vm_wrap_error(vm, "invalid float text");
    }
    if (*end != '\0') {
        return FORMAT_ERROR(vm, "invalid float text");
    }
    return vm_push(vm, PyFloat_FromDouble(d));
}

static int
load_binfloat(mf_vm *vm)
{
    const unsigned char *p = NULL;
    double d;
    if (vm_read(vm, 8, &p) < 0) {
        return -1;
    }
    d = PyFloat_Unpack8((const char *)p, 0);   /* big-endian */
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    return vm_push(vm, PyFloat_FromDouble(d));
}

/* UNICODE of protocol 0: a str as raw-unicode-escape text up to a newline
 * (Python escapes backslash and newline in it).  bytes arrive so too, as
 * _codecs.encode(str, 'latin1'): a numpy array's data is one such line, so
 * the line may run to the end of the input rather than MF_LINE_MAX. */
static int
load_unicode_line(mf_vm *vm)
{
    const char *line = NULL;
    Py_ssize_t len = 0;
    PyObject *obj;

    if (vm_readline_max(vm, vm->size - vm->pos, &line, &len) < 0) {
        return -1;
    }
    /* each input byte makes at most one character of 4 bytes */
    if ((size_t)len > (SIZE_MAX - MF_OBJECT_COST) / 4) {
        return UNSUPPORTED_ERROR(vm, "string of %zd bytes is too long", len);
    }
    if (vm_charge(vm, 4 * (size_t)len + MF_OBJECT_COST) < 0) {
        return -1;
    }
    obj = PyUnicode_DecodeRawUnicodeEscape(line, len, "strict");
    if (obj == NULL) {
        return vm_wrap_error(vm, "invalid string data");
    }
    return vm_push(vm, obj);
}

enum { STR_UNICODE, STR_BYTES, STR_BYTEARRAY, STR_ASCII };

static int
load_counted(mf_vm *vm, int width, int what)
{
    Py_ssize_t n = 0;
    const unsigned char *p = NULL;
    PyObject *obj;

    if (vm_read_length(vm, width, &n) < 0 || vm_read(vm, n, &p) < 0) {
        return -1;
    }
    if (vm_charge(vm, (size_t)n + MF_OBJECT_COST) < 0) {
        return -1;
    }
    switch (what) {
    case STR_UNICODE:
        obj = PyUnicode_DecodeUTF8((const char *)p, n, "surrogatepass");
        break;
    case STR_BYTES:
        obj = PyBytes_FromStringAndSize((const char *)p, n);
        break;
    case STR_BYTEARRAY:
        obj = PyByteArray_FromStringAndSize((const char *)p, n);
        break;
    default:
        /* Python 2 str: pickle's default encoding is ASCII */
        obj = PyUnicode_DecodeASCII((const char *)p, n, "strict");
        break;
    }
    if (obj == NULL) {
        return vm_wrap_error(vm, "invalid string data");
    }
    return vm_push(vm, obj);
}

static int
load_tuple_n(mf_vm *vm, Py_ssize_t n)
{
    PyObject *tuple;
    Py_ssize_t i;

    if (vm->stack_len - vm->fence < n) {
        return FORMAT_ERROR(vm, "stack underflow: TUPLE%zd needs %zd items", n, n);
    }
    if (vm_charge(vm, MF_OBJECT_COST + (size_t)n * sizeof(PyObject *)) < 0) {
        return -1;
    }
    tuple = PyTuple_New(n);
    if (tuple == NULL) {
        return -1;
    }
    for (i = n - 1; i >= 0; i--) {
        PyTuple_SET_ITEM(tuple, i, vm->stack[--vm->stack_len]);
    }
    return vm_push(vm, tuple);
}

static int
load_tuple_mark(mf_vm *vm)
{
    Py_ssize_t start = 0, n, i;
    PyObject *tuple;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    n = vm->stack_len - start;
    if (vm_charge(vm, MF_OBJECT_COST + (size_t)n * sizeof(PyObject *)) < 0) {
        return -1;
    }
    tuple = PyTuple_New(n);
    if (tuple == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        PyTuple_SET_ITEM(tuple, i, vm->stack[start + i]);
    }
    vm->stack_len = start;
    return vm_push(vm, tuple);
}

static int
load_list_mark(mf_vm *vm)
{
    Py_ssize_t start = 0, n, i;
    PyObject *list;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    n = vm->stack_len - start;
    if (vm_charge(vm, MF_OBJECT_COST + (size_t)n * sizeof(PyObject *)) < 0) {
        return -1;
    }
    list = PyList_New(n);
    if (list == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        PyList_SET_ITEM(list, i, vm->stack[start + i]);
    }
    vm->stack_len = start;
    return vm_push(vm, list);
}

static int
load_empty(mf_vm *vm, int what)
{
    if (vm_charge(vm, MF_OBJECT_COST) < 0) {
        return -1;
    }
    switch (what) {
    case OP_EMPTY_TUPLE:
        return vm_push(vm, PyTuple_New(0));
    case OP_EMPTY_LIST:
        return vm_push(vm, PyList_New(0));
    case OP_EMPTY_DICT:
        return vm_push(vm, PyDict_New());
    default:
        return vm_push(vm, PySet_New(NULL));
    }
}

/* APPEND / APPENDS: items stack[start:] go into the list below them. */
static int
do_append(mf_vm *vm, Py_ssize_t start)
{
    PyObject *target, *list;
    Py_ssize_t i;
    int result = 0;

    if (start - 1 < vm->fence) {
        return FORMAT_ERROR(vm, "no list to append to");
    }
    target = vm->stack[start - 1];
    if (PyList_CheckExact(target)) {
        list = target;
    }
    else if (mf_Record_Check(target)) {
        mf_Record *r = (mf_Record *)target;
        if (r->listitems == NULL && (r->listitems = PyList_New(0)) == NULL) {
            return -1;
        }
        list = r->listitems;
    }
    else {
        return FORMAT_ERROR(vm, "cannot append to a %.100s", Py_TYPE(target)->tp_name);
    }
    if (vm_charge(vm, (size_t)(vm->stack_len - start) * sizeof(PyObject *)) < 0) {
        return -1;
    }
    for (i = start; i < vm->stack_len && result == 0; i++) {
        result = PyList_Append(list, vm->stack[i]);
    }
    vm_truncate(vm, start);
    return result;
}

static int
load_append(mf_vm *vm)
{
    if (vm->stack_len - vm->fence < 2) {
        return FORMAT_ERROR(vm, "stack underflow");
    }
    return do_append(vm, vm->stack_len - 1);
}

static int
load_appends(mf_vm *vm)
{
    Py_ssize_t start = 0;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    return do_append(vm, start);
}

/* SETITEM / SETITEMS: key, value pairs stack[start:] into the dict below. */
static int
do_setitems(mf_vm *vm, Py_ssize_t start)
{
    PyObject *target, *dict;
    Py_ssize_t i;
    int result = 0;

    if ((vm->stack_len - start) % 2 != 0) {
        return FORMAT_ERROR(vm, "odd number of items for SETITEMS");
    }
    if (start - 1 < vm->fence) {
        return FORMAT_ERROR(vm, "no dict to set items in");
    }
    target = vm->stack[start - 1];
    if (PyDict_CheckExact(target)) {
        dict = target;
    }
    else if (mf_Record_Check(target)) {
        mf_Record *r = (mf_Record *)target;
        if (r->items == NULL && (r->items = PyDict_New()) == NULL) {
            return -1;
        }
        dict = r->items;
    }
    else {
        return FORMAT_ERROR(vm, "cannot set items in a %.100s", Py_TYPE(target)->tp_name);
    }
    if (vm_charge(vm, (size_t)(vm->stack_len - start) * 16) < 0) {
        return -1;
    }
    for (i = start; i + 1 < vm->stack_len && result == 0; i += 2) {
        result = vm_dict_set(vm, dict, vm->stack[i], vm->stack[i + 1]);
    }
    vm_truncate(vm, start);
    return result;
}

static int
load_setitem(mf_vm *vm)
{
    if (vm->stack_len - vm->fence < 3) {
        return FORMAT_ERROR(vm, "stack underflow");
    }
    return do_setitems(vm, vm->stack_len - 2);
}

static int
load_setitems(mf_vm *vm)
{
    Py_ssize_t start = 0;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    return do_setitems(vm, start);
}

static int
load_dict_mark(mf_vm *vm)
{
    Py_ssize_t start = 0;
    PyObject *dict;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    dict = PyDict_New();
    if (dict == NULL) {
        return -1;
    }
    /* put the dict under the items and reuse SETITEMS */
    if (vm_push(vm, dict) < 0) {
        return -1;
    }
    memmove(vm->stack + start + 1, vm->stack + start,
            (size_t)(vm->stack_len - 1 - start) * sizeof(PyObject *));
    vm->stack[start] = dict;
    return do_setitems(vm, start + 1);
}

static int
load_additems(mf_vm *vm)
{
    Py_ssize_t start = 0, i;
    PyObject *set;
    int result = 0;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    if (start - 1 < vm->fence) {
        return FORMAT_ERROR(vm, "no set to add to");
    }
    set = vm->stack[start - 1];
    if (!PySet_CheckExact(set)) {
        return FORMAT_ERROR(vm, "cannot add items to a %.100s", Py_TYPE(set)->tp_name);
    }
    for (i = start; i < vm->stack_len && result == 0; i++) {
        result = vm_set_add(vm, set, vm->stack[i]);
    }
    vm_truncate(vm, start);
    return result;
}

static int
load_frozenset(mf_vm *vm)
{
    Py_ssize_t start = 0, i;
    PyObject *set;
    int result = 0;
    if (vm_marker(vm, &start) < 0) {
        return -1;
    }
    set = PySet_New(NULL);
    if (set == NULL) {
        return -1;
    }
    for (i = start; i < vm->stack_len && result == 0; i++) {
        result = vm_set_add(vm, set, vm->stack[i]);
    }
    vm_truncate(vm, start);
    if (result < 0) {
        Py_DECREF(set);
        return -1;
    }
    Py_SETREF(set, PyFrozenSet_New(set));
    return vm_push(vm, set);
}

static int
load_global(mf_vm *vm)
{
    const char *line = NULL;
    Py_ssize_t len = 0;
    PyObject *module = NULL, *name = NULL;
    int result = -1;

    if (vm_readline(vm, &line, &len) < 0) {
        return -1;
    }
    module = PyUnicode_DecodeUTF8(line, len, "strict");
    if (module == NULL) {
        return vm_wrap_error(vm, "invalid global module text");
    }
    if (vm_readline(vm, &line, &len) < 0) {
        goto done;
    }
    name = PyUnicode_DecodeUTF8(line, len, "strict");
    if (name == NULL) {
        vm_wrap_error(vm, "invalid global name text");
        goto done;
    }
    result = vm_push_global(vm, module, name);
done:
    Py_XDECREF(module);
    Py_XDECREF(name);
    return result;
}

static int
load_stack_global(mf_vm *vm)
{
    PyObject *name, *module;
    int result = -1;

    name = vm_pop(vm);
    if (name == NULL) {
        return -1;
    }
    module = vm_pop(vm);
    if (module == NULL) {
        Py_DECREF(name);
        return -1;
    }
    if (!PyUnicode_CheckExact(module) || !PyUnicode_CheckExact(name)) {
        FORMAT_ERROR(vm, "STACK_GLOBAL needs two strings");
    }
    else {
        result = vm_push_global(vm, module, name);
    }
    Py_DECREF(name);
    Py_DECREF(module);
    return result;
}

static int
load_reduce(mf_vm *vm)
{
    PyObject *args, *callable, *result;
    args = vm_pop(vm);
    if (args == NULL) {
        return -1;
    }
    callable = vm_pop(vm);
    if (callable == NULL) {
        Py_DECREF(args);
        return -1;
    }
    result = vm_call(vm, callable, args, 0);
    Py_DECREF(args);
    Py_DECREF(callable);
    return vm_push(vm, result);
}

static int
load_newobj(mf_vm *vm, int ex)
{
    PyObject *kwargs = NULL, *args = NULL, *cls = NULL, *result = NULL;
    int rc = -1;

    if (ex) {
        kwargs = vm_pop(vm);
        if (kwargs == NULL) {
            return -1;
        }
        if (!PyDict_Check(kwargs) || PyDict_GET_SIZE(kwargs) != 0) {
            UNSUPPORTED_ERROR(vm, "NEWOBJ_EX with keyword arguments");
            goto done;
        }
    }
    args = vm_pop(vm);
    if (args == NULL) {
        goto done;
    }
    cls = vm_pop(vm);
    if (cls == NULL) {
        goto done;
    }
    result = vm_call(vm, cls, args, 1);
    rc = vm_push(vm, result);
done:
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(cls);
    return rc;
}

static int
load_build(mf_vm *vm)
{
    PyObject *state, *target, *final = NULL;
    int rc = -1;

    state = vm_pop(vm);
    if (state == NULL) {
        return -1;
    }
    target = vm_top(vm);
    if (target == NULL) {
        goto done;
    }
    if (mf_Record_Check(target)) {
        mf_Record *r = (mf_Record *)target;
        if (r->state != NULL) {
            UNSAFE_ERROR(vm, "a second BUILD on the same object");
            goto done;
        }
        Py_INCREF(state);
        r->state = state;
        rc = 0;
        goto done;
    }
    if (mf_Global_Check(target)) {
        /* pickle would set attributes on the shared class or function */
        UNSAFE_ERROR(vm, "BUILD on '%U.%U' would change a class or function",
                     ((mf_Global *)target)->module, ((mf_Global *)target)->name);
        goto done;
    }
    if (!Pending_Check(target)) {
        FORMAT_ERROR(vm, "BUILD on a %.100s", Py_TYPE(target)->tp_name);
        goto done;
    }
    switch (((mf_Pending *)target)->kind) {
    case PENDING_ARRAY:
        final = vm_finish_array(vm, state);
        break;
    case PENDING_DTYPE:
        final = vm_finish_dtype(vm, (PyArray_Descr *)((mf_Pending *)target)->base, state);
        break;
    default:
        final = vm_finish_wrapper(vm, state);
        break;
    }
    if (final != NULL) {
        vm_replace_pending(vm, (mf_Pending *)target, final);
        rc = 0;
    }
done:
    Py_DECREF(state);
    return rc;
}

static int
load_put_binary(mf_vm *vm, int width)
{
    const unsigned char *p = NULL;
    Py_ssize_t idx = 0;
    PyObject *top;
    int i;
    if (vm_read(vm, width, &p) < 0) {
        return -1;
    }
    for (i = width - 1; i >= 0; i--) {
        idx = (idx << 8) | p[i];
    }
    top = vm_top(vm);
    return top == NULL ? -1 : vm_memo_put(vm, idx, top);
}

static int
load_get_binary(mf_vm *vm, int width)
{
    const unsigned char *p = NULL;
    Py_ssize_t idx = 0;
    int i;
    if (vm_read(vm, width, &p) < 0) {
        return -1;
    }
    for (i = width - 1; i >= 0; i--) {
        idx = (idx << 8) | p[i];
    }
    return vm_memo_get(vm, idx);
}

static int
read_text_index(mf_vm *vm, Py_ssize_t *idx)
{
    const char *line = NULL;
    Py_ssize_t len = 0, i, v = 0;
    if (vm_readline(vm, &line, &len) < 0) {
        return -1;
    }
    if (len < 1 || len > 9) {
        return FORMAT_ERROR(vm, "memo index text of %zd characters", len);
    }
    for (i = 0; i < len; i++) {
        if (line[i] < '0' || line[i] > '9') {
            return FORMAT_ERROR(vm, "invalid memo index text");
        }
        v = v * 10 + (line[i] - '0');
    }
    *idx = v;
    return 0;
}

static int
load_memoize(mf_vm *vm)
{
    PyObject *top = vm_top(vm);
    /* CPython stores at the number of entries, which a PUT past the end
     * makes differ from the highest index + 1 */
    return top == NULL ? -1 : vm_memo_put(vm, vm->memo_count, top);
}

/* ---- the loop ------------------------------------------------------------------------ */

static int
vm_step(mf_vm *vm, unsigned char op)
{
    Py_ssize_t idx;
    PyObject *top;

    // clang-format off: the dispatch table, one opcode a line
    switch (op) {
    case OP_PROTO: return load_proto(vm);
    case OP_FRAME: return load_frame(vm);
    case OP_MARK: return load_mark(vm);
    case OP_POP: return load_pop(vm);
    case OP_POP_MARK: return load_pop_mark(vm);
    case OP_DUP: return load_dup(vm);
    case OP_BININT: return load_binint(vm, 4);
    case OP_BININT1: return load_binint(vm, 1);
    case OP_BININT2: return load_binint(vm, 2);
    case OP_INT: return load_text_int(vm, 0);
    case OP_LONG: return load_text_int(vm, 1);
    case OP_LONG1: return load_long_binary(vm, 1);
    case OP_LONG4: return load_long_binary(vm, 4);
    case OP_FLOAT: return load_text_float(vm);
    case OP_BINFLOAT: return load_binfloat(vm);
    case OP_NONE: Py_INCREF(Py_None); return vm_push(vm, Py_None);
    case OP_NEWTRUE: Py_INCREF(Py_True); return vm_push(vm, Py_True);
    case OP_NEWFALSE: Py_INCREF(Py_False); return vm_push(vm, Py_False);
    case OP_BINUNICODE: return load_counted(vm, 4, STR_UNICODE);
    case OP_SHORT_BINUNICODE: return load_counted(vm, 1, STR_UNICODE);
    case OP_BINUNICODE8: return load_counted(vm, 8, STR_UNICODE);
    case OP_BINBYTES: return load_counted(vm, 4, STR_BYTES);
    case OP_SHORT_BINBYTES: return load_counted(vm, 1, STR_BYTES);
    case OP_BINBYTES8: return load_counted(vm, 8, STR_BYTES);
    case OP_BYTEARRAY8: return load_counted(vm, 8, STR_BYTEARRAY);
    case OP_BINSTRING: return load_counted(vm, 4, STR_ASCII);
    case OP_SHORT_BINSTRING: return load_counted(vm, 1, STR_ASCII);
    case OP_EMPTY_TUPLE: case OP_EMPTY_LIST: case OP_EMPTY_DICT: case OP_EMPTY_SET: return load_empty(vm, op);
    case OP_TUPLE1: return load_tuple_n(vm, 1);
    case OP_TUPLE2: return load_tuple_n(vm, 2);
    case OP_TUPLE3: return load_tuple_n(vm, 3);
    case OP_TUPLE: return load_tuple_mark(vm);
    case OP_LIST: return load_list_mark(vm);
    case OP_DICT: return load_dict_mark(vm);
    case OP_APPEND: return load_append(vm);
    case OP_APPENDS: return load_appends(vm);
    case OP_SETITEM: return load_setitem(vm);
    case OP_SETITEMS: return load_setitems(vm);
    case OP_ADDITEMS: return load_additems(vm);
    case OP_FROZENSET: return load_frozenset(vm);
    case OP_GLOBAL: return load_global(vm);
    case OP_STACK_GLOBAL: return load_stack_global(vm);
    case OP_REDUCE: return load_reduce(vm);
    case OP_NEWOBJ: return load_newobj(vm, 0);
    case OP_NEWOBJ_EX: return load_newobj(vm, 1);
    case OP_BUILD: return load_build(vm);
    case OP_BINPUT: return load_put_binary(vm, 1);
    case OP_LONG_BINPUT: return load_put_binary(vm, 4);
    case OP_MEMOIZE: return load_memoize(vm);
    case OP_PUT:
        if (read_text_index(vm, &idx) < 0 || (top = vm_top(vm)) == NULL) {
            return -1;
        }
        return vm_memo_put(vm, idx, top);
    case OP_BINGET: return load_get_binary(vm, 1);
    case OP_LONG_BINGET: return load_get_binary(vm, 4);
    case OP_GET:
        if (read_text_index(vm, &idx) < 0) {
            return -1;
        }
        return vm_memo_get(vm, idx);
    case OP_PERSID: case OP_BINPERSID:
        return UNSAFE_ERROR(vm, "persistent ids are refused: they ask the loader to "
                            "fetch objects from outside the file");
    case OP_EXT1: case OP_EXT2: case OP_EXT4:
        return UNSAFE_ERROR(vm, "extension-registry opcodes are refused: they name "
                            "globals indirectly");
    case OP_INST: case OP_OBJ:
        return UNSAFE_ERROR(vm, "INST/OBJ are refused: they call a class directly");
    case OP_NEXT_BUFFER: case OP_READONLY_BUFFER:
        return UNSAFE_ERROR(vm, "out-of-band buffers are refused: their data is not "
                            "in the file");
    case OP_UNICODE: return load_unicode_line(vm);
    case OP_STRING:
        /* Python 3 never writes STRING (its protocol 0 writes str as
         * UNICODE, bytes through _codecs.encode) */
        return UNSUPPORTED_ERROR(vm, "STRING (a Python 2 str) is not supported: "
                                 "mlfast reads files written by Python 3");
    default:
        return FORMAT_ERROR(vm, "invalid opcode 0x%02x", op);
    }
    // clang-format on
}

static void
vm_clear(mf_vm *vm)
{
    Py_ssize_t i;
    vm_truncate(vm, 0);
    for (i = 0; i < vm->memo_len; i++) {
        Py_XDECREF(vm->memo[i]);
    }
    PyMem_Free(vm->stack);
    PyMem_Free(vm->memo);
    PyMem_Free(vm->marks);
    vm->stack = NULL;
    vm->memo = NULL;
    vm->marks = NULL;
}

static int
vm_init(mf_vm *vm, const unsigned char *buf, Py_ssize_t size, Py_ssize_t pos, int nested,
        mf_budget *budget)
{
    memset(vm, 0, sizeof(*vm));
    vm->buf = buf;
    vm->size = size;
    vm->pos = pos;
    vm->nested = nested;
    vm->budget = budget;
    vm->stack_cap = 64;
    vm->memo_cap = 64;
    vm->marks_cap = 16;
    vm->stack = PyMem_Malloc((size_t)vm->stack_cap * sizeof(PyObject *));
    vm->memo = PyMem_Calloc((size_t)vm->memo_cap, sizeof(PyObject *));
    vm->marks = PyMem_Malloc((size_t)vm->marks_cap * sizeof(Py_ssize_t));
    if (vm->stack == NULL || vm->memo == NULL || vm->marks == NULL) {
        vm_clear(vm);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Runs from vm->pos to STOP; returns the value (a new reference). */
static PyObject *
vm_run(mf_vm *vm)
{
    PyObject *result = NULL;
    const unsigned char *p = NULL;

    vm->op_pos = vm->pos;
    vm->op = OP_PROTO;
    if (vm->pos >= vm->size) {
        FORMAT_ERROR(vm, "empty input: expected a pickle");
        return NULL;
    }
    /* Protocols 0 and 1 have no PROTO opcode; joblib writes the pickles
     * nested in a file at protocol 2 or later. */
    if (vm->buf[vm->pos] != OP_PROTO && (vm->nested || op_name(vm->buf[vm->pos]) == NULL)) {
        FORMAT_ERROR(vm, "not a pickle%s: first byte is 0x%02x, expected PROTO (0x80)%s",
                     vm->nested ? " of protocol 2 or later" : "", vm->buf[vm->pos],
                     vm->nested ? "" : " or an opcode of protocol 0 or 1");
        return NULL;
    }
    for (;;) {
        vm->op_pos = vm->pos;
        if (vm_read(vm, 1, &p) < 0) {
            vm->op = 0;
            PyErr_Clear();
            FORMAT_ERROR(vm, "truncated: the pickle ends before STOP");
            break;
        }
        vm->op = p[0];
        if (vm->op == OP_STOP) {
            if (vm->stack_len != 1 || vm->n_marks != 0) {
                FORMAT_ERROR(vm,
                             "STOP with %zd items and %zd marks on the stack "
                             "(expected one value)",
                             vm->stack_len, vm->n_marks);
                break;
            }
            result = vm->stack[--vm->stack_len];
            break;
        }
        if (vm_step(vm, vm->op) < 0) {
            break;
        }
    }
    return result;
}

static PyObject *
vm_run_nested(mf_vm *outer)
{
    mf_vm inner;
    PyObject *result;

    if (vm_init(&inner, outer->buf, outer->size, outer->pos, 1, outer->budget) < 0) {
        return NULL;
    }
    result = vm_run(&inner);
    outer->pos = inner.pos;
    vm_clear(&inner);
    return result;
}

/* unpickle(data, *, max_memory=2**31) -> value tree */
PyObject *
mf_unpickle(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "max_memory", NULL};
    Py_buffer view;
    long long max_memory = (long long)1 << 31;
    mf_budget budget;
    mf_vm vm;
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$L:unpickle", kwlist, &view, &max_memory)) {
        return NULL;
    }
    if (max_memory <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_memory must be positive");
        goto done;
    }
    budget.used = 0;
    budget.max = (size_t)max_memory;
    budget.nonstr_keys = 0;
    budget.key_items = 0;
    budget.nested_objarrays = 0;
    if (vm_init(&vm, view.buf, view.len, 0, 0, &budget) < 0) {
        goto done;
    }
    result = vm_run(&vm);
    vm_clear(&vm);
done:
    PyBuffer_Release(&view);
    return result;
}

int
mf_unpickle_init_types(void)
{
    return PyType_Ready(&PendingType);
}
