/*
 * keys.c -- categorical values as keys, and the ops that read them
 * (OneHotEncoder, OrdinalEncoder, SimpleImputer and MissingIndicator on
 * object data).
 *
 * A key is 64 bits with Python's equality (mlfast.h): numbers are their
 * double, canonical (-0.0 is 0.0, every NaN one NaN: scikit-learn's
 * is_scalar_nan and _object_dtype_isnan make every NaN one missing value);
 * everything else is a NaN pattern no number key has:
 *
 *   0x7ff8000000000000           the NaN
 *   0xfff9000000000000           None
 *   0xfffa000000000000           pandas.NA
 *   0xfffb000000000000 | ptr     an mf_keystr: str, bytes, or an int that no
 *                                double holds exactly (its decimal digits)
 *
 * str and bytes differ ('a' != b'a'); an int equals the double that holds
 * it exactly (2**60 == 2.0**60), as in Python.  One function makes keys of
 * a column of any dtype, for the caller's rows (input.c) and for a fitted
 * encoder's categories (_core.encode_keys, which the builders call), so the
 * two never disagree.
 *
 * The ops look keys up in open-addressing tables built by prepare (load at
 * most one half, so a lookup ends at an empty slot; the longest probe of
 * each table is kept, so no lookup walks further).
 */
#include "mlfast.h"
#include <math.h>
#include <string.h>

#define KEY_NAN    0x7ff8000000000000ULL
#define KEY_NONE   0xfff9000000000000ULL
#define KEY_NA     0xfffa000000000000ULL
#define KEY_PTR    0xfffb000000000000ULL
#define KEY_TOP    0xffff000000000000ULL

/* Caps: categories of one op, and their text, so that sizes never overflow
 * and a lying file cannot ask for more than this. */
#define MF_MAX_CATEGORIES ((Py_ssize_t)1 << 24)
#define MF_MAX_KEY_TEXT   ((Py_ssize_t)1 << 30)

/* ---- the keys themselves --------------------------------------------------------- */

static inline uint64_t
key_of_double(double v)
{
    uint64_t bits;
    if (v != v) {
        return KEY_NAN;
    }
    if (v == 0.0) {
        v = 0.0;
    }
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static inline int
key_is_str(uint64_t k)
{
    return (k & KEY_TOP) == KEY_PTR;
}

static inline const mf_keystr *
key_str(uint64_t k)
{
    return (const mf_keystr *)(uintptr_t)(k & ~KEY_TOP);
}

static inline uint64_t
mix64(uint64_t x)
{
    /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t
key_hash(uint64_t k)
{
    return key_is_str(k) ? key_str(k)->hash : mix64(k);
}

static inline int
key_eq(uint64_t a, uint64_t b)
{
    const mf_keystr *x, *y;
    if (a == b) {
        return 1;
    }
    if (!key_is_str(a) || !key_is_str(b)) {
        return 0;
    }
    x = key_str(a);
    y = key_str(b);
    return x->hash == y->hash && x->tag == y->tag && x->len == y->len &&
           memcmp(x->data, y->data, (size_t)x->len) == 0;
}

/* FNV-1a over the tag and the bytes, then mixed. */
static uint64_t
text_hash(int tag, const char *data, Py_ssize_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)tag;
    Py_ssize_t i;
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ (uint64_t)len);
}

const mf_keystr *
mf_key_text(uint64_t key)
{
    return key_is_str(key) ? key_str(key) : NULL;
}

/* ---- storage that never moves ----------------------------------------------------- */

struct mf_keyblock {
    mf_keyblock *next;
    size_t used, size;
    max_align_t data[];
};

#define MF_KEYBLOCK_MIN 4096

static void *
store_alloc(mf_keystore *st, size_t size)
{
    mf_keyblock *b = st->blocks;
    size = (size + 15) & ~(size_t)15;
    if (b == NULL || b->size - b->used < size) {
        size_t want = size > MF_KEYBLOCK_MIN ? size : MF_KEYBLOCK_MIN;
        if (b != NULL && b->size * 2 > want && b->size < ((size_t)1 << 24)) {
            want = b->size * 2;
        }
        b = PyMem_RawMalloc(sizeof(mf_keyblock) + want);
        if (b == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        b->next = st->blocks;
        b->used = 0;
        b->size = want;
        st->blocks = b;
    }
    b->used += size;
    return (char *)b->data + (b->used - size);
}

void
mf_keystore_free(mf_keystore *st)
{
    mf_keyblock *b = st->blocks;
    while (b != NULL) {
        mf_keyblock *next = b->next;
        PyMem_RawFree(b);
        b = next;
    }
    st->blocks = NULL;
}

/* A key for text already where it stays (a str's UTF-8, the caller's bytes,
 * the op's arrays); copy: put it in the store first. */
static int
key_of_text(mf_keystore *st, int tag, const char *data, Py_ssize_t len, int copy, uint64_t *key)
{
    mf_keystr *ks = store_alloc(st, sizeof(mf_keystr) + (copy ? (size_t)len : 0));
    uintptr_t p;
    if (ks == NULL) {
        return -1;
    }
    if (copy) {
        char *dst = (char *)(ks + 1);
        memcpy(dst, data, (size_t)len);
        data = dst;
    }
    ks->hash = text_hash(tag, data, len);
    ks->data = data;
    ks->len = len;
    ks->tag = tag;
    p = (uintptr_t)ks;
    if (((uint64_t)p & KEY_TOP) != 0) {
        PyErr_SetString(PyExc_MemoryError, "mlfast: a key's address does not fit 48 bits");
        return -1;
    }
    *key = KEY_PTR | (uint64_t)p;
    return 0;
}

/* An int as Python compares it: the double that holds it exactly, else its
 * decimal digits. */
static int
key_of_int64(mf_keystore *st, long long v, uint64_t *key)
{
    double d = (double)v;
    char digits[32];
    int n;
    /* d is exact when it converts back (and is not 2**63, which overflows) */
    if (d < 9223372036854775808.0 && (long long)d == v) {
        *key = key_of_double(d);
        return 0;
    }
    n = PyOS_snprintf(digits, sizeof(digits), "%lld", v);
    return key_of_text(st, MF_KEY_BIGINT, digits, n, 1, key);
}

static int
key_of_uint64(mf_keystore *st, unsigned long long v, uint64_t *key)
{
    double d = (double)v;
    char digits[32];
    int n;
    if (d < 18446744073709551616.0 && (unsigned long long)d == v) {
        *key = key_of_double(d);
        return 0;
    }
    n = PyOS_snprintf(digits, sizeof(digits), "%llu", v);
    return key_of_text(st, MF_KEY_BIGINT, digits, n, 1, key);
}

static int
key_of_pylong(mf_keystore *st, PyObject *o, uint64_t *key)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    PyObject *back = NULL, *digits = NULL;
    const char *text;
    Py_ssize_t len;
    double d;
    int eq, result = -1;

    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        return key_of_int64(st, v, key);
    }
    d = PyLong_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
    }
    else {
        back = PyLong_FromDouble(d);
        if (back == NULL) {
            goto done;
        }
        eq = PyObject_RichCompareBool(back, o, Py_EQ);
        if (eq < 0) {
            goto done;
        }
        if (eq) {
            *key = key_of_double(d);
            result = 0;
            goto done;
        }
    }
    digits = PyObject_Str(o);
    if (digits == NULL) {
        goto done;
    }
    text = PyUnicode_AsUTF8AndSize(digits, &len);
    if (text == NULL) {
        goto done;
    }
    result = key_of_text(st, MF_KEY_BIGINT, text, len, 1, key);
done:
    Py_XDECREF(back);
    Py_XDECREF(digits);
    return result;
}

static int
is_pandas_na(PyObject *o)
{
    return strcmp(Py_TYPE(o)->tp_name, "NAType") == 0 ||
           strcmp(Py_TYPE(o)->tp_name, "pandas._libs.missing.NAType") == 0;
}

static int
key_of_str(mf_keystore *st, PyObject *o, uint64_t *key)
{
    Py_ssize_t len;
    const char *text = PyUnicode_AsUTF8AndSize(o, &len);
    PyObject *bytes;
    int result;
    if (text != NULL) {
        /* the str caches its UTF-8; the call holds the str */
        return key_of_text(st, MF_KEY_STR, text, len, 0, key);
    }
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
        return -1;
    }
    /* a lone surrogate: its code point's three bytes, as a numpy str array
     * holding it gives */
    PyErr_Clear();
    bytes = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
    if (bytes == NULL) {
        return -1;
    }
    result = key_of_text(st, MF_KEY_STR, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes), 1, key);
    Py_DECREF(bytes);
    return result;
}

/* The key of one Python value of an object column.  Errors read as the
 * rest of a sentence about the column ("holds a value of type ..."): the
 * caller names the column in front, only once there is an error. */
int
mf_key_of_object(mf_keystore *st, PyObject *o, uint64_t *key, PyObject *column)
{
    if (o == Py_None) {
        *key = KEY_NONE;
        return 0;
    }
    if (PyFloat_Check(o)) {
        *key = key_of_double(PyFloat_AS_DOUBLE(o));
        return 0;
    }
    if (PyUnicode_Check(o)) {
        return key_of_str(st, o, key);
    }
    if (PyBool_Check(o)) {
        *key = key_of_double(o == Py_True ? 1.0 : 0.0);
        return 0;
    }
    if (PyLong_Check(o)) {
        return key_of_pylong(st, o, key);
    }
    if (PyBytes_Check(o)) {
        return key_of_text(st, MF_KEY_BYTES, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o), 0, key);
    }
    if (PyArray_IsScalar(o, Bool)) {
        *key = key_of_double(PyObject_IsTrue(o) ? 1.0 : 0.0);
        return 0;
    }
    if (PyArray_IsScalar(o, Integer)) {
        PyObject *i = PyNumber_Index(o);
        int result;
        if (i == NULL) {
            return -1;
        }
        result = key_of_pylong(st, i, key);
        Py_DECREF(i);
        return result;
    }
    if (PyArray_IsScalar(o, Half) || PyArray_IsScalar(o, Float)) {
        double d = PyFloat_AsDouble(o);
        if (d == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        *key = key_of_double(d);
        return 0;
    }
    if (is_pandas_na(o)) {
        *key = KEY_NA;
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "holds a value of type %.100s; categories are str, bytes, "
                 "numbers, None or NaN",
                 Py_TYPE(o)->tp_name);
    return -1;
}

/* UCS4 code points (a numpy str element) to UTF-8 in the store, trailing
 * NULs dropped as numpy drops them. */
static int
key_of_ucs4(mf_keystore *st, const char *data, Py_ssize_t n_chars, uint64_t *key, PyObject *column)
{
    Py_ssize_t i, len = 0;
    Py_UCS4 cp;
    char *buf;
    int result;

    while (n_chars > 0) {
        memcpy(&cp, data + (n_chars - 1) * 4, 4);
        if (cp != 0) {
            break;
        }
        n_chars--;
    }
    buf = PyMem_Malloc((size_t)(n_chars > 0 ? n_chars : 1) * 4);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n_chars; i++) {
        memcpy(&cp, data + i * 4, 4);
        if (cp < 0x80) {
            buf[len++] = (char)cp;
        }
        else if (cp < 0x800) {
            buf[len++] = (char)(0xc0 | (cp >> 6));
            buf[len++] = (char)(0x80 | (cp & 0x3f));
        }
        else if (cp < 0x10000) {
            buf[len++] = (char)(0xe0 | (cp >> 12));
            buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[len++] = (char)(0x80 | (cp & 0x3f));
        }
        else if (cp < 0x110000) {
            buf[len++] = (char)(0xf0 | (cp >> 18));
            buf[len++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            buf[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[len++] = (char)(0x80 | (cp & 0x3f));
        }
        else {
            PyErr_Format(PyExc_ValueError, "holds code point 0x%x, which is not Unicode",
                         (unsigned int)cp);
            PyMem_Free(buf);
            return -1;
        }
    }
    result = key_of_text(st, MF_KEY_STR, buf, len, 1, key);
    PyMem_Free(buf);
    return result;
}

int
mf_keys_from_column(const char *data, npy_intp n, npy_intp stride, PyArray_Descr *descr,
                    mf_keystore *st, uint64_t *dst, npy_intp dst_stride, PyObject *column)
{
    npy_intp i;
    int swapped = !PyArray_ISNBO(descr->byteorder);
    int t = descr->type_num;
    Py_ssize_t elsize = PyDataType_ELSIZE(descr);

    if (swapped && t != NPY_OBJECT && t != NPY_STRING && t != NPY_BOOL) {
        PyErr_SetString(PyExc_TypeError, "has a non-native byte order, which is not read "
                                         "as categories");
        return -1;
    }
#define NUMBERS(T, EXPR)                                              \
    for (i = 0; i < n; i++) {                                         \
        T v;                                                          \
        memcpy(&v, data + i * stride, sizeof(T));                     \
        dst[i * dst_stride] = key_of_double((double)(EXPR));          \
    }                                                                 \
    return 0;
#define INTEGERS(T, FN)                                               \
    for (i = 0; i < n; i++) {                                         \
        T v;                                                          \
        memcpy(&v, data + i * stride, sizeof(T));                     \
        if (FN(st, v, dst + i * dst_stride) < 0) {                    \
            return -1;                                                \
        }                                                             \
    }                                                                 \
    return 0;

    switch (t) {
        // clang-format off: a table, one dtype a line (the macro is its case's body)
    case NPY_BOOL: NUMBERS(npy_bool, v != 0)
    case NPY_BYTE: NUMBERS(npy_byte, v)
    case NPY_UBYTE: NUMBERS(npy_ubyte, v)
    case NPY_SHORT: NUMBERS(npy_short, v)
    case NPY_USHORT: NUMBERS(npy_ushort, v)
    case NPY_INT: NUMBERS(npy_int, v)
    case NPY_UINT: NUMBERS(npy_uint, v)
    case NPY_LONG: INTEGERS(npy_long, key_of_int64)
    case NPY_LONGLONG: INTEGERS(npy_longlong, key_of_int64)
    case NPY_ULONG: INTEGERS(npy_ulong, key_of_uint64)
    case NPY_ULONGLONG: INTEGERS(npy_ulonglong, key_of_uint64)
    case NPY_HALF: NUMBERS(npy_half, mf_half_to_double(v))
    case NPY_FLOAT: NUMBERS(npy_float, v)
    case NPY_DOUBLE: NUMBERS(npy_double, v)
    // clang-format on
    case NPY_STRING:
        for (i = 0; i < n; i++) {
            const char *s = data + i * stride;
            Py_ssize_t len = elsize;
            while (len > 0 && s[len - 1] == '\0') {
                len--;
            }
            if (key_of_text(st, MF_KEY_BYTES, s, len, 0, dst + i * dst_stride) < 0) {
                return -1;
            }
        }
        return 0;
    case NPY_UNICODE:
        for (i = 0; i < n; i++) {
            if (key_of_ucs4(st, data + i * stride, elsize / 4, dst + i * dst_stride, column) < 0) {
                return -1;
            }
        }
        return 0;
    case NPY_OBJECT:
        for (i = 0; i < n; i++) {
            PyObject *o;
            memcpy(&o, data + i * stride, sizeof(o));
            if (mf_key_of_object(st, o != NULL ? o : Py_None, dst + i * dst_stride, column) < 0) {
                return -1;
            }
        }
        return 0;
    default:
        PyErr_Format(PyExc_TypeError,
                     "has dtype %S, which is not read as categories "
                     "(numbers, bool, str, bytes or objects)",
                     (PyObject *)descr);
        return -1;
    }
#undef NUMBERS
#undef INTEGERS
}

/* ---- keys for and from Python ----------------------------------------------------- */

static PyObject *
key_to_object(uint64_t k)
{
    const mf_keystr *ks;
    double d;
    if (k == KEY_NONE) {
        Py_RETURN_NONE;
    }
    if (k == KEY_NA) {
        /* pandas' NA is not importable here: its name stands for it */
        return PyUnicode_FromString("<NA>");
    }
    if (!key_is_str(k)) {
        memcpy(&d, &k, sizeof(d));
        return PyFloat_FromDouble(d);
    }
    ks = key_str(k);
    switch (ks->tag) {
    case MF_KEY_STR:
        return PyUnicode_DecodeUTF8(ks->data, ks->len, "surrogatepass");
    case MF_KEY_BYTES:
        return PyBytes_FromStringAndSize(ks->data, ks->len);
    default: {
        PyObject *text = PyUnicode_DecodeUTF8(ks->data, ks->len, "replace"), *v;
        if (text == NULL) {
            return NULL;
        }
        v = PyLong_FromUnicodeObject(text, 10);
        Py_DECREF(text);
        return v;
    }
    }
}

/* Puts "<column> " in front of a key error's message. */
void
mf_name_key_error(PyObject *column)
{
    PyObject *type, *value, *tb, *text;
    if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError)) {
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    text = value != NULL ? PyObject_Str(value) : NULL;
    if (text != NULL) {
        PyErr_Format(type, "%U %U", column, text);
        Py_DECREF(text);
        Py_XDECREF(type);
    }
    else {
        PyErr_Restore(type, NULL, NULL);
        type = NULL;
    }
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* The Python value of the key in a slot (messages). */
PyObject *
mf_key_to_object(const double *slot)
{
    uint64_t k;
    memcpy(&k, slot, sizeof(k));
    return key_to_object(k);
}

/* encode_keys(array) -> (tags uint8, nums float64, text uint8, text_offsets int64) */
PyObject *
mf_encode_keys(PyObject *Py_UNUSED(module), PyObject *obj)
{
    PyArrayObject *arr = NULL;
    PyArrayObject *tags = NULL, *nums = NULL, *text = NULL, *offsets = NULL;
    mf_keystore st = {NULL};
    uint64_t *keys = NULL;
    PyObject *result = NULL, *what = NULL;
    npy_intp n, i, total = 0;

    arr = (PyArrayObject *)PyArray_FROM_OF(obj, 0);
    if (arr == NULL) {
        goto done;
    }
    if (PyArray_NDIM(arr) != 1) {
        PyErr_SetString(PyExc_ValueError, "encode_keys takes a 1-D array");
        goto done;
    }
    n = PyArray_DIM(arr, 0);
    if (n > MF_MAX_CATEGORIES) {
        PyErr_Format(PyExc_ValueError, "%zd categories: at most %zd are served", (Py_ssize_t)n,
                     MF_MAX_CATEGORIES);
        goto done;
    }
    what = PyUnicode_FromString("categories");
    keys = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    if (what == NULL || keys == NULL) {
        if (keys == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    if (mf_keys_from_column(PyArray_BYTES(arr), n, PyArray_STRIDE(arr, 0), PyArray_DESCR(arr), &st,
                            keys, 1, what) < 0) {
        mf_name_key_error(what);
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (key_is_str(keys[i])) {
            total += key_str(keys[i])->len;
            if (total > MF_MAX_KEY_TEXT) {
                PyErr_SetString(PyExc_ValueError, "categories hold too much text");
                goto done;
            }
        }
    }
    {
        npy_intp dn = n, dn1 = n + 1, dt = total;
        tags = (PyArrayObject *)PyArray_SimpleNew(1, &dn, NPY_UINT8);
        nums = (PyArrayObject *)PyArray_SimpleNew(1, &dn, NPY_DOUBLE);
        text = (PyArrayObject *)PyArray_SimpleNew(1, &dt, NPY_UINT8);
        offsets = (PyArrayObject *)PyArray_SimpleNew(1, &dn1, NPY_INT64);
    }
    if (tags == NULL || nums == NULL || text == NULL || offsets == NULL) {
        goto done;
    }
    {
        uint8_t *tg = PyArray_DATA(tags);
        double *nm = PyArray_DATA(nums);
        char *tx = PyArray_DATA(text);
        int64_t *off = PyArray_DATA(offsets), pos = 0;
        for (i = 0; i < n; i++) {
            uint64_t k = keys[i];
            off[i] = pos;
            nm[i] = 0.0;
            if (k == KEY_NONE) {
                tg[i] = MF_KEY_NONE;
            }
            else if (k == KEY_NA) {
                tg[i] = MF_KEY_NA;
            }
            else if (key_is_str(k)) {
                const mf_keystr *ks = key_str(k);
                tg[i] = (uint8_t)ks->tag;
                memcpy(tx + pos, ks->data, (size_t)ks->len);
                pos += ks->len;
            }
            else {
                tg[i] = MF_KEY_NUMBER;
                memcpy(nm + i, &k, sizeof(double));
            }
        }
        off[n] = pos;
    }
    result = PyTuple_Pack(4, tags, nums, text, offsets);
done:
    mf_keystore_free(&st);
    PyMem_Free(keys);
    Py_XDECREF(arr);
    Py_XDECREF(what);
    Py_XDECREF(tags);
    Py_XDECREF(nums);
    Py_XDECREF(text);
    Py_XDECREF(offsets);
    return result;
}

/* Keys of encode_keys' four arrays, checked (they may come from a file):
 * the tags known, the offsets inside the text and not decreasing. */
static int
keys_from_arrays(const uint8_t *tags, Py_ssize_t n_tags, const double *nums, Py_ssize_t n_nums,
                 const uint8_t *text, Py_ssize_t n_text, const int64_t *offsets,
                 Py_ssize_t n_offsets, const char *what, mf_keystore *st, uint64_t *keys)
{
    Py_ssize_t i;
    if (n_tags > MF_MAX_CATEGORIES || n_nums != n_tags || n_offsets != n_tags + 1 ||
        n_text > MF_MAX_KEY_TEXT) {
        PyErr_Format(PyExc_ValueError,
                     "%s: %zd tags, %zd numbers and %zd offsets do not "
                     "describe one set of keys",
                     what, n_tags, n_nums, n_offsets);
        return -1;
    }
    if (offsets[0] != 0 || offsets[n_tags] != n_text) {
        PyErr_Format(PyExc_ValueError, "%s: the text offsets do not cover the text", what);
        return -1;
    }
    for (i = 0; i < n_tags; i++) {
        int64_t a = offsets[i], b = offsets[i + 1];
        if (a < 0 || b < a || b > n_text) {
            PyErr_Format(PyExc_ValueError, "%s: text offset %zd is out of order", what, i);
            return -1;
        }
        switch (tags[i]) {
        case MF_KEY_NUMBER:
            keys[i] = key_of_double(nums[i]);
            break;
        case MF_KEY_NONE:
            keys[i] = KEY_NONE;
            break;
        case MF_KEY_NA:
            keys[i] = KEY_NA;
            break;
        case MF_KEY_STR:
        case MF_KEY_BYTES:
        case MF_KEY_BIGINT:
            if (key_of_text(st, tags[i], (const char *)text + a, (Py_ssize_t)(b - a), 0, keys + i) <
                0) {
                return -1;
            }
            break;
        default:
            PyErr_Format(PyExc_ValueError, "%s: key %zd has the unknown tag %d", what, i,
                         (int)tags[i]);
            return -1;
        }
        if (tags[i] != MF_KEY_NUMBER && tags[i] != MF_KEY_STR && tags[i] != MF_KEY_BYTES &&
            tags[i] != MF_KEY_BIGINT && a != b) {
            PyErr_Format(PyExc_ValueError, "%s: key %zd has text but no place for it", what, i);
            return -1;
        }
        if (tags[i] == MF_KEY_NUMBER && a != b) {
            PyErr_Format(PyExc_ValueError, "%s: number %zd has text", what, i);
            return -1;
        }
    }
    return 0;
}

/* decode_keys(tags, nums, text, offsets) -> list of Python values */
PyObject *
mf_decode_keys(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *a[4], *owners = NULL, *out = NULL;
    const void *data[4];
    Py_ssize_t dims[4];
    static const int types[4] = {NPY_UINT8, NPY_DOUBLE, NPY_UINT8, NPY_INT64};
    static const char *names[4] = {"tags", "nums", "text", "text_offsets"};
    mf_keystore st = {NULL};
    uint64_t *keys = NULL;
    Py_ssize_t i;

    if (!PyArg_UnpackTuple(args, "decode_keys", 4, 4, &a[0], &a[1], &a[2], &a[3])) {
        return NULL;
    }
    for (i = 0; i < 4; i++) {
        if (mf_take_array(NULL, a[i], types[i], 1, names[i], &data[i], &dims[i], NULL) < 0) {
            return NULL;
        }
    }
    if (dims[0] > MF_MAX_CATEGORIES) {
        PyErr_SetString(PyExc_ValueError, "decode_keys: too many keys");
        return NULL;
    }
    keys = PyMem_Malloc((size_t)(dims[0] + 1) * sizeof(uint64_t));
    if (keys == NULL) {
        return PyErr_NoMemory();
    }
    if (keys_from_arrays(data[0], dims[0], data[1], dims[1], data[2], dims[2], data[3], dims[3],
                         "decode_keys", &st, keys) < 0) {
        goto done;
    }
    out = PyList_New(dims[0]);
    for (i = 0; out != NULL && i < dims[0]; i++) {
        PyObject *v = key_to_object(keys[i]);
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, v);
    }
done:
    Py_XDECREF(owners);
    PyMem_Free(keys);
    mf_keystore_free(&st);
    return out;
}

/* ---- tables ------------------------------------------------------------------------ */

static void
table_release(mf_keytable *t)
{
    PyMem_Free(t->keys);
    PyMem_Free(t->slots);
    PyMem_Free(t->starts);
    PyMem_Free(t->probes);
    mf_keystore_free(&t->store);
    t->keys = NULL;
    t->slots = NULL;
    t->starts = NULL;
    t->probes = NULL;
}

/* Builds the keys and, with columns (n_cols + 1 bounds into the keys), one
 * table per column; a key twice in one column is refused (scikit-learn's
 * categories are unique). */
static int
table_build(mf_keytable *t, const char *what, const uint8_t *tags, Py_ssize_t n_tags,
            const double *nums, Py_ssize_t n_nums, const uint8_t *text, Py_ssize_t n_text,
            const int64_t *offsets, Py_ssize_t n_offsets, const int64_t *columns, Py_ssize_t n_cols)
{
    Py_ssize_t j;
    int64_t total = 0;

    t->keys = PyMem_Malloc((size_t)(n_tags > 0 ? n_tags : 1) * sizeof(uint64_t));
    if (t->keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (keys_from_arrays(tags, n_tags, nums, n_nums, text, n_text, offsets, n_offsets, what,
                         &t->store, t->keys) < 0) {
        return -1;
    }
    if (columns == NULL) {
        return 0;
    }
    if (columns[0] != 0 || columns[n_cols] != n_tags) {
        PyErr_Format(PyExc_ValueError, "%s: the columns do not cover the categories", what);
        return -1;
    }
    t->starts = PyMem_Malloc((size_t)(n_cols + 1) * sizeof(int64_t));
    t->probes = PyMem_Calloc((size_t)(n_cols > 0 ? n_cols : 1), sizeof(int32_t));
    if (t->starts == NULL || t->probes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (j = 0; j < n_cols; j++) {
        int64_t n = columns[j + 1] - columns[j], size = 2;
        if (n < 0 || columns[j + 1] > n_tags) {
            PyErr_Format(PyExc_ValueError, "%s: the columns' bounds are out of order", what);
            return -1;
        }
        while (size < 2 * n) {
            size *= 2;
        }
        t->starts[j] = total;
        total += size;
    }
    t->starts[n_cols] = total;
    t->slots = PyMem_Malloc((size_t)total * sizeof(int32_t));
    if (t->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(t->slots, 0xff, (size_t)total * sizeof(int32_t));
    for (j = 0; j < n_cols; j++) {
        int32_t *slots = t->slots + t->starts[j];
        uint64_t mask = (uint64_t)(t->starts[j + 1] - t->starts[j] - 1);
        const uint64_t *keys = t->keys + columns[j];
        int64_t c, n = columns[j + 1] - columns[j];
        for (c = 0; c < n; c++) {
            uint64_t h = key_hash(keys[c]);
            int32_t probe = 0;
            for (;;) {
                int32_t *slot = slots + ((h + (uint64_t)probe) & mask);
                if (*slot < 0) {
                    *slot = (int32_t)c;
                    break;
                }
                if (key_eq(keys[*slot], keys[c])) {
                    PyErr_Format(PyExc_ValueError,
                                 "%s: column %zd lists category %lld "
                                 "twice",
                                 what, j, (long long)c);
                    return -1;
                }
                probe++;
            }
            if (probe > t->probes[j]) {
                t->probes[j] = probe;
            }
        }
    }
    return 0;
}

/* The index of key k among column j's categories, or -1. */
static inline int64_t
table_find(const mf_keytable *t, const int64_t *columns, Py_ssize_t j, uint64_t k)
{
    const int32_t *slots = t->slots + t->starts[j];
    uint64_t mask = (uint64_t)(t->starts[j + 1] - t->starts[j] - 1);
    const uint64_t *keys = t->keys + columns[j];
    uint64_t h = key_hash(k);
    int32_t probe;
    for (probe = 0; probe <= t->probes[j]; probe++) {
        int32_t c = slots[(h + (uint64_t)probe) & mask];
        if (c < 0) {
            return -1;
        }
        if (key_eq(keys[c], k)) {
            return c;
        }
    }
    return -1;
}

static inline uint64_t
slot_key(const double *x)
{
    uint64_t k;
    memcpy(&k, x, sizeof(k));
    return k;
}

static int
out_type_valid(Py_ssize_t t, const char *what)
{
    if (!(PyTypeNum_ISINTEGER(t) || PyTypeNum_ISBOOL(t) || t == NPY_HALF || t == NPY_FLOAT ||
          t == NPY_DOUBLE)) {
        PyErr_Format(PyExc_ValueError, "%s.out_type %zd is not a numeric numpy type", what, t);
        return -1;
    }
    return 0;
}

static PyObject *
keys_to_list(const uint64_t *keys, int64_t n)
{
    PyObject *out = PyList_New((Py_ssize_t)n);
    int64_t i;
    for (i = 0; out != NULL && i < n; i++) {
        PyObject *v = key_to_object(keys[i]);
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    return out;
}

/* ---- catmap -------------------------------------------------------------------------- */

static void
catmap_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_catmap *s = op;
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        if (s->n_outputs > 0) {
            memset(y, 0, (size_t)n_out * sizeof(double));
        }
        for (j = 0; j < n_in; j++) {
            int64_t c = table_find(&s->table, s->columns, j, slot_key(x + j));
            double v = c >= 0 ? s->values[s->columns[j] + c] : s->unknown[j];
            if (s->n_outputs == 0) {
                y[j] = v;
            }
            else if (v >= 0.0) {
                y[(Py_ssize_t)v] = 1.0;
            }
        }
    }
}

static int
catmap_refuses_nan(const void *op, const double *x, Py_ssize_t j)
{
    const mf_catmap *s = op;
    return (s->refuse[j] & MF_REFUSE_NAN) && slot_key(x + j) == KEY_NAN;
}

static Py_ssize_t
catmap_refused_column(const void *op, const double *x, Py_ssize_t n_in)
{
    const mf_catmap *s = op;
    Py_ssize_t j;
    for (j = 0; j < n_in; j++) {
        uint64_t k = slot_key(x + j);
        if (((s->refuse[j] & MF_REFUSE_NAN) && k == KEY_NAN) ||
            ((s->refuse[j] & MF_REFUSE_UNKNOWN) && table_find(&s->table, s->columns, j, k) < 0)) {
            return j;
        }
    }
    return -1;
}

static int
catmap_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
             mf_err_kind *err)
{
    Py_ssize_t r;
    for (r = 0; r < n_rows; r++) {
        if (catmap_refused_column(op, in + r * n_in, n_in) >= 0) {
            *err = MF_ERR_UNKNOWN;
            return 1;
        }
    }
    return 0;
}

static int
catmap_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_catmap *s = op;
    Py_ssize_t i;

    if (s->n_columns != n_in + 1 || s->n_values != s->n_tags || s->n_unknown != n_in ||
        s->n_refuse != n_in) {
        PyErr_Format(PyExc_ValueError,
                     "catmap: %zd columns, %zd values, %zd unknown and %zd "
                     "refuse entries for %zd inputs and %zd categories",
                     s->n_columns, s->n_values, s->n_unknown, s->n_refuse, n_in, s->n_tags);
        return -1;
    }
    if (s->n_outputs < 0 || s->n_outputs > ((Py_ssize_t)1 << 26) ||
        out_type_valid(s->out_type, "catmap") < 0) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "catmap: n_outputs %zd", s->n_outputs);
        }
        return -1;
    }
    if (s->n_outputs > 0) {
        /* each value names an output column, or none (-1) */
        for (i = 0; i < s->n_values + n_in; i++) {
            double v = i < s->n_values ? s->values[i] : s->unknown[i - s->n_values];
            if (!(v == -1.0 || (v >= 0.0 && v < (double)s->n_outputs && v == floor(v)))) {
                PyErr_Format(PyExc_ValueError, "catmap: %g is not an output column of %zd", v,
                             s->n_outputs);
                return -1;
            }
        }
    }
    for (i = 0; i < n_in; i++) {
        if (s->refuse[i] > (MF_REFUSE_UNKNOWN | MF_REFUSE_NAN)) {
            PyErr_SetString(PyExc_ValueError, "catmap.refuse must hold 0 to 3");
            return -1;
        }
    }
    if (table_build(&s->table, "catmap", s->tags, s->n_tags, s->nums, s->n_nums, s->text, s->n_text,
                    s->text_offsets, s->n_text_offsets, s->columns, n_in) < 0) {
        return -1;
    }
    *n_out = s->n_outputs > 0 ? s->n_outputs : n_in;
    return 0;
}

static void
catmap_release(void *op)
{
    table_release(&((mf_catmap *)op)->table);
}

static int
catmap_out_type(const void *op, int in_type)
{
    return (int)((const mf_catmap *)op)->out_type;
}

static PyObject *
catmap_known(const void *op, Py_ssize_t j)
{
    const mf_catmap *s = op;
    return keys_to_list(s->table.keys + s->columns[j], s->columns[j + 1] - s->columns[j]);
}

static const mf_field catmap_fields[] = {
    MF_KEY_FIELDS(mf_catmap),
    MF_VECTOR_FIELD(mf_catmap, columns, NPY_INT64, 0, n_columns),
    MF_VECTOR_FIELD(mf_catmap, values, NPY_DOUBLE, 0, n_values),
    MF_VECTOR_FIELD(mf_catmap, unknown, NPY_DOUBLE, 0, n_unknown),
    MF_VECTOR_FIELD(mf_catmap, refuse, NPY_UINT8, 0, n_refuse),
    MF_SCALAR_FIELD(mf_catmap, n_outputs, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_catmap, out_type, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_catmap = {
    .name = "catmap",
    .size = sizeof(mf_catmap),
    .fields = catmap_fields,
    .prepare = catmap_prepare,
    .release = catmap_release,
    .run = catmap_run,
    .out_type = catmap_out_type,
    .check = catmap_check,
    .in_kind = MF_SLOT_KEY,
    .out_kind = MF_SLOT_NUM,
    .refused_column = catmap_refused_column,
    .refuses_nan = catmap_refuses_nan,
    .known = catmap_known,
};

/* ---- keyfill ------------------------------------------------------------------------ */

static void
keyfill_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_keyfill *s = op;
    uint64_t missing = s->table.keys[n_in];
    Py_ssize_t r, t;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        for (t = 0; t < s->n_keep; t++) {
            int64_t c = s->keep[t];
            uint64_t k = slot_key(x + c);
            if (key_eq(k, missing)) {
                k = s->table.keys[c];
            }
            memcpy(y + t, &k, sizeof(k));
        }
    }
}

static int
no_refusal(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
           mf_err_kind *err)
{
    return 0;
}

static int
keyfill_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_keyfill *s = op;
    Py_ssize_t t;
    if (s->n_tags != n_in + 1) {
        PyErr_Format(PyExc_ValueError,
                     "keyfill: %zd keys for %zd inputs (a fill value each "
                     "and the missing value)",
                     s->n_tags, n_in);
        return -1;
    }
    for (t = 0; t < s->n_keep; t++) {
        if (s->keep[t] < 0 || s->keep[t] >= n_in) {
            PyErr_Format(PyExc_ValueError, "keyfill.keep[%zd] = %lld is outside 0..%zd", t,
                         (long long)s->keep[t], n_in - 1);
            return -1;
        }
    }
    if (s->n_keep < 1) {
        PyErr_SetString(PyExc_ValueError, "keyfill keeps no column");
        return -1;
    }
    if (table_build(&s->table, "keyfill", s->tags, s->n_tags, s->nums, s->n_nums, s->text,
                    s->n_text, s->text_offsets, s->n_text_offsets, NULL, 0) < 0) {
        return -1;
    }
    *n_out = s->n_keep;
    return 0;
}

static void
keyfill_release(void *op)
{
    table_release(&((mf_keyfill *)op)->table);
}

static int
keyfill_out_type(const void *op, int in_type)
{
    return NPY_OBJECT;
}

static const mf_field keyfill_fields[] = {
    MF_KEY_FIELDS(mf_keyfill),
    MF_VECTOR_FIELD(mf_keyfill, keep, NPY_INT64, 0, n_keep),
    MF_END_FIELDS,
};

const mf_op_def mf_op_keyfill = {
    .name = "keyfill",
    .size = sizeof(mf_keyfill),
    .fields = keyfill_fields,
    .prepare = keyfill_prepare,
    .release = keyfill_release,
    .run = keyfill_run,
    .out_type = keyfill_out_type,
    .check = no_refusal,
    .in_kind = MF_SLOT_KEY,
    .out_kind = MF_SLOT_KEY,
};

/* ---- keymissing ---------------------------------------------------------------------- */

static void
keymissing_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
               Py_ssize_t n_rows, mf_precision prec)
{
    const mf_keymissing *s = op;
    uint64_t missing = s->table.keys[0];
    Py_ssize_t r, t;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        for (t = 0; t < s->n_features; t++) {
            y[t] = key_eq(slot_key(x + s->features[t]), missing) ? 1.0 : 0.0;
        }
    }
}

static int
keymissing_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_keymissing *s = op;
    Py_ssize_t t;
    if (s->n_tags != 1) {
        PyErr_SetString(PyExc_ValueError, "keymissing takes one key, the missing value");
        return -1;
    }
    if (s->n_features < 1 || out_type_valid(s->out_type, "keymissing") < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "keymissing reads no feature");
        }
        return -1;
    }
    for (t = 0; t < s->n_features; t++) {
        if (s->features[t] < 0 || s->features[t] >= n_in) {
            PyErr_Format(PyExc_ValueError, "keymissing.features[%zd] = %lld is outside 0..%zd", t,
                         (long long)s->features[t], n_in - 1);
            return -1;
        }
    }
    if (table_build(&s->table, "keymissing", s->tags, s->n_tags, s->nums, s->n_nums, s->text,
                    s->n_text, s->text_offsets, s->n_text_offsets, NULL, 0) < 0) {
        return -1;
    }
    *n_out = s->n_features;
    return 0;
}

static void
keymissing_release(void *op)
{
    table_release(&((mf_keymissing *)op)->table);
}

static int
keymissing_out_type(const void *op, int in_type)
{
    return (int)((const mf_keymissing *)op)->out_type;
}

static const mf_field keymissing_fields[] = {
    MF_KEY_FIELDS(mf_keymissing),
    MF_VECTOR_FIELD(mf_keymissing, features, NPY_INT64, 0, n_features),
    MF_SCALAR_FIELD(mf_keymissing, out_type, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_keymissing = {
    .name = "keymissing",
    .size = sizeof(mf_keymissing),
    .fields = keymissing_fields,
    .prepare = keymissing_prepare,
    .release = keymissing_release,
    .run = keymissing_run,
    .out_type = keymissing_out_type,
    .check = no_refusal,
    .in_kind = MF_SLOT_KEY,
    .out_kind = MF_SLOT_NUM,
};

/* ---- tokey ---------------------------------------------------------------------------- */

static void
tokey_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
          Py_ssize_t n_rows, mf_precision prec)
{
    Py_ssize_t i;
    for (i = 0; i < n_rows * n_in; i++) {
        uint64_t k = key_of_double(in[i]);
        memcpy(out + i, &k, sizeof(k));
    }
}

static int
tokey_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    *n_out = n_in;
    return 0;
}

static int
tokey_out_type(const void *op, int in_type)
{
    return NPY_OBJECT;
}

static const mf_field tokey_fields[] = {
    MF_END_FIELDS,
};

const mf_op_def mf_op_tokey = {
    .name = "tokey",
    .size = sizeof(mf_tokey),
    .fields = tokey_fields,
    .prepare = tokey_prepare,
    .run = tokey_run,
    .out_type = tokey_out_type,
    .in_kind = MF_SLOT_NUM,
    .out_kind = MF_SLOT_KEY,
};
