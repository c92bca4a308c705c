/*
 * input.c -- the caller's X: checked as scikit-learn's check_array checks
 * it, then read in place, a block of rows at a time, as doubles.
 *
 * An ndarray of any real dtype, any strides, is read where it lies; other
 * inputs (lists, DataFrames) go through the Python side's coerce first.
 * Error messages are scikit-learn's.
 */
#include "mlfast.h"
#include <math.h>
#include <string.h>

static int
supported_type(int t)
{
    switch (t) {
    case NPY_BOOL: case NPY_BYTE: case NPY_UBYTE: case NPY_SHORT: case NPY_USHORT:
    case NPY_INT: case NPY_UINT: case NPY_LONG: case NPY_ULONG: case NPY_LONGLONG:
    case NPY_ULONGLONG: case NPY_HALF: case NPY_FLOAT: case NPY_DOUBLE:
        return 1;
    default:
        return 0;
    }
}

/* Converts an object or string array to float64 the way check_array's
 * astype does (numpy parses numeric strings and names the first value it
 * cannot read); the first estimator's own prefix goes before that message. */
static PyObject *
convert_to_double(mf_Graph *g, PyObject *arr)
{
    PyObject *out = PyArray_FromAny(arr, PyArray_DescrFromType(NPY_DOUBLE), 0, 0,
                                    NPY_ARRAY_FORCECAST | NPY_ARRAY_ALIGNED |
                                    NPY_ARRAY_NOTSWAPPED, NULL);
    if (out == NULL && g->string_prefix != NULL &&
        PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyObject *type, *value, *tb, *text;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        text = value != NULL ? PyObject_Str(value) : NULL;
        if (text != NULL) {
            PyErr_Format(PyExc_ValueError, "%U%U", g->string_prefix, text);
        }
        Py_XDECREF(text);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    return out;
}

/* Refuses strings as the first estimator would. */
static void
refuse_strings(mf_Graph *g, PyArrayObject *arr)
{
    if (g->strings == MF_STRINGS_IMPUTER) {
        PyErr_Format(PyExc_ValueError,
                     "SimpleImputer does not support data with dtype %S. Please provide "
                     "either a numeric array (with a floating point or integer dtype) or "
                     "categorical data represented either as an array with integer dtype "
                     "or an array of string values with an object dtype.",
                     (PyObject *)PyArray_DESCR(arr));
    }
    else {
        PyErr_SetString(PyExc_ValueError,
                        "dtype='numeric' is not compatible with arrays of bytes/strings."
                        "Convert your data to numeric values explicitly instead.");
    }
}

/* An ndarray of a dtype the gather reads: native, aligned, real. */
static PyArrayObject *
as_readable(mf_Graph *g, PyObject *obj)
{
    PyArrayObject *arr = (PyArrayObject *)obj;
    char kind = PyArray_DESCR(arr)->kind;

    if (kind == 'c') {
        PyErr_Format(PyExc_ValueError, "Complex data not supported\n%S\n", obj);
        Py_DECREF(obj);
        return NULL;
    }
    if ((kind == 'U' || kind == 'S' || kind == 'V') && g->strings != MF_STRINGS_CONVERT) {
        refuse_strings(g, arr);
        Py_DECREF(obj);
        return NULL;
    }
    if (!supported_type(PyArray_TYPE(arr))) {
        obj = convert_to_double(g, obj);
        Py_DECREF(arr);
        return (PyArrayObject *)obj;
    }
    if (!PyArray_ISALIGNED(arr) || !PyArray_ISNOTSWAPPED(arr)) {
        PyArray_Descr *native = PyArray_DescrNewByteorder(PyArray_DESCR(arr), NPY_NATIVE);
        if (native == NULL) {
            Py_DECREF(arr);
            return NULL;
        }
        obj = PyArray_FromArray(arr, native, NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED);
        Py_DECREF(arr);
        return (PyArrayObject *)obj;
    }
    return arr;
}

/* Checks the shape of X against the graph. */
static int
check_shape(mf_Graph *g, PyArrayObject *arr, mf_input *in)
{
    switch (PyArray_NDIM(arr)) {
    case 0:
        PyErr_Format(PyExc_ValueError,
                     "Expected 2D array, got scalar array instead:\narray=%S.\n"
                     "Reshape your data either using array.reshape(-1, 1) if your data "
                     "has a single feature or array.reshape(1, -1) if it contains a "
                     "single sample.", (PyObject *)arr);
        return -1;
    case 1:
        /* mlfast reads a 1-D array as one sample (scikit-learn refuses it) */
        in->n_rows = 1;
        in->n_cols = PyArray_DIM(arr, 0);
        in->row_stride = 0;
        in->col_stride = PyArray_STRIDE(arr, 0);
        break;
    case 2:
        in->n_rows = PyArray_DIM(arr, 0);
        in->n_cols = PyArray_DIM(arr, 1);
        in->row_stride = PyArray_STRIDE(arr, 0);
        in->col_stride = PyArray_STRIDE(arr, 1);
        break;
    default:
        PyErr_Format(PyExc_ValueError,
                     "Found array with dim %d, while dim <= 2 is required by %U.",
                     PyArray_NDIM(arr), g->first_name);
        return -1;
    }
    if (in->n_rows < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 sample(s) (shape=(0, %zd)) while a minimum of "
                     "1 is required by %U.", (Py_ssize_t)in->n_cols, g->first_name);
        return -1;
    }
    if (in->n_cols < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 feature(s) (shape=(%zd, 0)) while a minimum of "
                     "1 is required by %U.", (Py_ssize_t)in->n_rows, g->first_name);
        return -1;
    }
    if (in->n_cols != g->n_features) {
        PyErr_Format(PyExc_ValueError,
                     "X has %zd features, but %U is expecting %zd features as input.",
                     (Py_ssize_t)in->n_cols, g->first_name, g->n_features);
        return -1;
    }
    return 0;
}

/* Validates X and describes it; *hold owns whatever array is read. */
int
mf_input_read(mf_Graph *g, PyObject *X, PyArrayObject **hold, mf_input *in)
{
    PyObject *obj;
    PyArrayObject *arr;

    if (PyArray_Check(X)) {
        if (g->names_warning != NULL) {
            const char *text = PyUnicode_AsUTF8(g->names_warning);
            if (text == NULL || PyErr_WarnEx(PyExc_UserWarning, text, 1) < 0) {
                return -1;
            }
        }
        Py_INCREF(X);
        obj = X;
    }
    else if (g->coerce != NULL) {
        obj = PyObject_CallOneArg(g->coerce, X);
    }
    else {
        obj = PyArray_FROM_O(X);
    }
    if (obj == NULL) {
        return -1;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "expected an array, got %.100s",
                     Py_TYPE(obj)->tp_name);
        Py_DECREF(obj);
        return -1;
    }
    arr = as_readable(g, obj);
    if (arr == NULL) {
        return -1;
    }
    *hold = arr;
    in->data = PyArray_BYTES(arr);
    in->type_num = PyArray_TYPE(arr);
    return check_shape(g, arr, in);
}

/* IEEE half to double, exactly (npymath is not linked). */
static inline double
half_to_double(npy_uint16 h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    double v;
    if (exp == 0) {
        v = ldexp((double)mant, -24);
    }
    else if (exp == 31) {
        v = mant ? NAN : INFINITY;
    }
    else {
        v = ldexp((double)(mant | 0x400), exp - 25);
    }
    return (h & 0x8000) ? -v : v;
}

/* Rows [r0, r0 + nr) of the input as doubles, row-major. */
void
mf_input_gather(const mf_input *in, npy_intp r0, npy_intp nr, double *dst)
{
    npy_intp r, j, d = in->n_cols;

#define GATHER(T)                                                          \
    for (r = 0; r < nr; r++) {                                             \
        const char *row = in->data + (r0 + r) * in->row_stride;            \
        for (j = 0; j < d; j++) {                                          \
            dst[r * d + j] = (double)*(const T *)(row + j * in->col_stride); \
        }                                                                  \
    }                                                                      \
    break;

    if (in->type_num == NPY_DOUBLE && in->col_stride == (npy_intp)sizeof(double)) {
        for (r = 0; r < nr; r++) {
            memcpy(dst + r * d, in->data + (r0 + r) * in->row_stride,
                   (size_t)d * sizeof(double));
        }
        return;
    }
    switch (in->type_num) {
    case NPY_DOUBLE: GATHER(npy_double)
    case NPY_FLOAT: GATHER(npy_float)
    case NPY_BOOL: GATHER(npy_bool)
    case NPY_BYTE: GATHER(npy_byte)
    case NPY_UBYTE: GATHER(npy_ubyte)
    case NPY_SHORT: GATHER(npy_short)
    case NPY_USHORT: GATHER(npy_ushort)
    case NPY_INT: GATHER(npy_int)
    case NPY_UINT: GATHER(npy_uint)
    case NPY_LONG: GATHER(npy_long)
    case NPY_ULONG: GATHER(npy_ulong)
    case NPY_LONGLONG: GATHER(npy_longlong)
    case NPY_ULONGLONG: GATHER(npy_ulonglong)
    case NPY_HALF:
        for (r = 0; r < nr; r++) {
            const char *row = in->data + (r0 + r) * in->row_stride;
            for (j = 0; j < d; j++) {
                dst[r * d + j] = half_to_double(*(const npy_half *)(row + j * in->col_stride));
            }
        }
        break;
    default:
        break;
    }
#undef GATHER
}
