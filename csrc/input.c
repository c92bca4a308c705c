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
    case NPY_BOOL:
    case NPY_BYTE:
    case NPY_UBYTE:
    case NPY_SHORT:
    case NPY_USHORT:
    case NPY_INT:
    case NPY_UINT:
    case NPY_LONG:
    case NPY_ULONG:
    case NPY_LONGLONG:
    case NPY_ULONGLONG:
    case NPY_HALF:
    case NPY_FLOAT:
    case NPY_DOUBLE:
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
    PyObject *out =
        PyArray_FromAny(arr, PyArray_DescrFromType(NPY_DOUBLE), 0, 0,
                        NPY_ARRAY_FORCECAST | NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED, NULL);
    if (out == NULL && g->string_prefix != NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
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
                     "single sample.",
                     (PyObject *)arr);
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
        PyErr_Format(PyExc_ValueError, "Found array with dim %d, while dim <= 2 is required by %U.",
                     PyArray_NDIM(arr), g->first_name);
        return -1;
    }
    if (in->n_rows < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 sample(s) (shape=(0, %zd)) while a minimum of "
                     "1 is required by %U.",
                     (Py_ssize_t)in->n_cols, g->first_name);
        return -1;
    }
    if (in->n_cols < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 feature(s) (shape=(%zd, 0)) while a minimum of "
                     "1 is required by %U.",
                     (Py_ssize_t)in->n_rows, g->first_name);
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

/* A name for column c in messages: its name when the model knows names. */
static PyObject *
column_name(mf_Graph *g, Py_ssize_t c)
{
    if (g->column_names != NULL && c < PyTuple_GET_SIZE(g->column_names)) {
        return PyUnicode_FromFormat("%R", PyTuple_GET_ITEM(g->column_names, c));
    }
    return PyUnicode_FromFormat("%zd", c);
}

/* Names column c in front of the key error just raised (a name is made
 * only for a message). */
static void
name_column_error(mf_Graph *g, Py_ssize_t c)
{
    PyObject *name = column_name(g, c), *full;
    if (name == NULL) {
        return;
    }
    full = PyUnicode_FromFormat("column %U", name);
    if (full != NULL) {
        mf_name_key_error(full);
        Py_DECREF(full);
    }
    Py_DECREF(name);
}

/* The keys of the key slots, from column c of each: data, n rows apart by
 * stride, of dtype descr. */
static int
read_keys(mf_Graph *g, mf_hold *hold, mf_input *in, const char *const *data, const npy_intp *stride,
          PyArray_Descr *const *descr)
{
    Py_ssize_t t;
    if (g->n_keys == 0) {
        return 0;
    }
    hold->keys = PyMem_Malloc((size_t)in->n_rows * (size_t)g->n_keys * sizeof(uint64_t));
    if (hold->keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (t = 0; t < g->n_keys; t++) {
        Py_ssize_t c = (Py_ssize_t)g->key_columns[t];
        if (mf_keys_from_column(data[c], in->n_rows, stride[c], descr[c], &hold->store,
                                hold->keys + t, g->n_keys, NULL) < 0) {
            name_column_error(g, c);
            return -1;
        }
    }
    in->keys = hold->keys;
    in->n_keys = g->n_keys;
    return 0;
}

/* Keys of a 2-D array's columns. */
static int
read_array_keys(mf_Graph *g, PyArrayObject *arr, mf_hold *hold, mf_input *in)
{
    const char **data = NULL;
    npy_intp *stride = NULL;
    PyArray_Descr **descr = NULL;
    Py_ssize_t c;
    int result = -1;

    if (g->n_keys == 0) {
        return 0;
    }
    data = PyMem_Malloc((size_t)in->n_cols * sizeof(char *));
    stride = PyMem_Malloc((size_t)in->n_cols * sizeof(npy_intp));
    descr = PyMem_Malloc((size_t)in->n_cols * sizeof(PyArray_Descr *));
    if (data == NULL || stride == NULL || descr == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (c = 0; c < in->n_cols; c++) {
        data[c] = in->data + c * in->col_stride;
        stride[c] = in->row_stride;
        descr[c] = PyArray_DESCR(arr);
    }
    result = read_keys(g, hold, in, data, stride, descr);
done:
    PyMem_Free(data);
    PyMem_Free(stride);
    PyMem_Free(descr);
    return result;
}

/* A numeric column as the gather reads it, converted as check_array
 * converts what is not a real dtype. */
static PyArrayObject *
readable_column(mf_Graph *g, PyObject *col)
{
    Py_INCREF(col);
    return as_readable(g, col);
}

/* X as a list of 1-D columns (what coerce makes of a DataFrame or of
 * dicts): each column's numbers read in place where a node reads them,
 * the keys of the key columns made. */
static int
read_columns(mf_Graph *g, PyObject *list, mf_hold *hold, mf_input *in)
{
    Py_ssize_t n = PyList_GET_SIZE(list), c;
    const char **data = NULL;
    npy_intp *stride = NULL;
    PyArray_Descr **descr = NULL;
    int result = -1, type = -1;

    if (n != g->n_features) {
        PyErr_Format(PyExc_ValueError,
                     "X has %zd features, but %U is expecting %zd features as input.", n,
                     g->first_name, g->n_features);
        return -1;
    }
    for (c = 0; c < n; c++) {
        PyObject *col = PyList_GET_ITEM(list, c);
        if (!PyArray_Check(col) || PyArray_NDIM((PyArrayObject *)col) != 1) {
            PyErr_Format(PyExc_TypeError, "column %zd is not a 1-D array", c);
            return -1;
        }
        if (c == 0) {
            in->n_rows = PyArray_DIM((PyArrayObject *)col, 0);
        }
        else if (PyArray_DIM((PyArrayObject *)col, 0) != in->n_rows) {
            PyErr_Format(PyExc_ValueError, "column %zd has %zd rows, column 0 has %zd", c,
                         (Py_ssize_t)PyArray_DIM((PyArrayObject *)col, 0), (Py_ssize_t)in->n_rows);
            return -1;
        }
    }
    if (in->n_rows < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 sample(s) (shape=(0, %zd)) while a minimum of "
                     "1 is required by %U.",
                     n, g->first_name);
        return -1;
    }
    in->n_cols = n;
    hold->columns = PyMem_Calloc((size_t)n, sizeof(mf_column));
    data = PyMem_Malloc((size_t)n * sizeof(char *));
    stride = PyMem_Malloc((size_t)n * sizeof(npy_intp));
    descr = PyMem_Malloc((size_t)n * sizeof(PyArray_Descr *));
    if (hold->columns == NULL || data == NULL || stride == NULL || descr == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (c = 0; c < n; c++) {
        PyArrayObject *col = (PyArrayObject *)PyList_GET_ITEM(list, c);
        data[c] = PyArray_BYTES(col);
        stride[c] = PyArray_STRIDE(col, 0);
        descr[c] = PyArray_DESCR(col);
        if (g->num_read[c]) {
            PyArrayObject *num = readable_column(g, (PyObject *)col);
            int added;
            if (num == NULL) {
                goto done;
            }
            added = PyList_Append(hold->arrays, (PyObject *)num);
            Py_DECREF(num);      /* the list holds it */
            if (added < 0) {
                goto done;
            }
            hold->columns[c].data = PyArray_BYTES(num);
            hold->columns[c].stride = PyArray_STRIDE(num, 0);
            hold->columns[c].type_num = PyArray_TYPE(num);
            type = type < 0 ? PyArray_TYPE(num) : mf_promote_types(type, PyArray_TYPE(num));
        }
    }
    in->columns = hold->columns;
    in->type_num = type < 0 ? NPY_DOUBLE : type;
    in->data = NULL;
    in->row_stride = in->col_stride = 0;
    Py_INCREF(list);
    hold->source = list;
    result = read_keys(g, hold, in, data, stride, descr);
done:
    PyMem_Free(data);
    PyMem_Free(stride);
    PyMem_Free(descr);
    return result;
}

/* A 2-D (or one 1-D row of) str, bytes or object array read by a model
 * with key columns: column by column, each as it is read. */
static int
read_text_array(mf_Graph *g, PyArrayObject *arr, mf_hold *hold, mf_input *in)
{
    PyObject *list = NULL;
    npy_intp c, n_cols;
    int result = -1;

    if (PyArray_NDIM(arr) == 1) {
        npy_intp dims[2] = {1, PyArray_DIM(arr, 0)};
        PyArray_Dims shape = {dims, 2};
        PyObject *two = PyArray_Newshape(arr, &shape, NPY_CORDER);
        if (two == NULL) {
            return -1;
        }
        result = read_text_array(g, (PyArrayObject *)two, hold, in);
        if (result == 0 && PyList_Append(hold->arrays, two) < 0) {
            result = -1;
        }
        Py_DECREF(two);
        return result;
    }
    if (PyArray_NDIM(arr) != 2) {
        mf_input probe;
        return check_shape(g, arr, &probe);
    }
    n_cols = PyArray_DIM(arr, 1);
    list = PyList_New(n_cols);
    if (list == NULL) {
        return -1;
    }
    for (c = 0; c < n_cols; c++) {
        PyObject *index = Py_BuildValue("(Nn)", PySlice_New(NULL, NULL, NULL), (Py_ssize_t)c);
        PyObject *col = index != NULL ? PyObject_GetItem((PyObject *)arr, index) : NULL;
        Py_XDECREF(index);
        if (col == NULL) {
            goto done;
        }
        PyList_SET_ITEM(list, c, col);
    }
    result = read_columns(g, list, hold, in);
done:
    Py_XDECREF(list);
    return result;
}

/* A value of a dict read as a number, as numpy's cast of an object array
 * to float64 reads it (check_array): None is NaN, a str is parsed. */
static int
number_of(mf_Graph *g, PyObject *v, double *out)
{
    PyObject *f;
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (v == Py_None) {
        *out = NAN;
        return 0;
    }
    f = PyUnicode_Check(v) ? PyFloat_FromString(v) : PyNumber_Float(v);
    if (f == NULL) {
        if (g->string_prefix != NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
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
        return -1;
    }
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
}

/* Rows given as dicts keyed by the model's column names (one dict, or a
 * list of them), read straight into numbers and keys.  Returns 1 when a row
 * is not exactly the model's columns: the Python side then reads it and
 * says what is wrong. */
static int
read_records(mf_Graph *g, PyObject *X, mf_hold *hold, mf_input *in)
{
    Py_ssize_t n = PyDict_Check(X) ? 1 : PyList_GET_SIZE(X), nf = g->n_features, r, c;

    for (r = 0; r < n; r++) {
        PyObject *row = PyDict_Check(X) ? X : PyList_GET_ITEM(X, r);
        if (!PyDict_Check(row) || PyDict_GET_SIZE(row) != nf) {
            return 1;
        }
    }
    hold->numbers = PyMem_Malloc((size_t)n * (size_t)nf * sizeof(double));
    hold->keys =
        PyMem_Malloc((size_t)n * (size_t)(g->n_keys > 0 ? g->n_keys : 1) * sizeof(uint64_t));
    if (hold->numbers == NULL || hold->keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (r = 0; r < n; r++) {
        PyObject *row = PyDict_Check(X) ? X : PyList_GET_ITEM(X, r);
        for (c = 0; c < nf; c++) {
            PyObject *v = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(g->column_names, c));
            Py_ssize_t t = g->key_of_column[c];
            if (v == NULL) {
                return PyErr_Occurred() ? -1 : 1;
            }
            hold->numbers[r * nf + c] = NAN;
            if (g->num_read[c] && number_of(g, v, &hold->numbers[r * nf + c]) < 0) {
                return -1;
            }
            if (t >= 0 &&
                mf_key_of_object(&hold->store, v, hold->keys + r * g->n_keys + t, NULL) < 0) {
                name_column_error(g, c);
                return -1;
            }
        }
    }
    in->data = (const char *)hold->numbers;
    in->n_rows = n;
    in->n_cols = nf;
    in->row_stride = nf * (npy_intp)sizeof(double);
    in->col_stride = sizeof(double);
    in->type_num = NPY_DOUBLE;
    in->keys = hold->keys;
    in->n_keys = g->n_keys;
    return 0;
}

/* Validates X and describes it; *hold owns whatever is read, until
 * mf_input_release. */
int
mf_input_read(mf_Graph *g, PyObject *X, mf_hold *hold, mf_input *in)
{
    PyObject *obj;
    PyArrayObject *arr;
    int result = -1;

    memset(hold, 0, sizeof(*hold));
    memset(in, 0, sizeof(*in));
    hold->arrays = PyList_New(0);
    if (hold->arrays == NULL) {
        return -1;
    }
    if (g->column_names != NULL && g->n_keys > 0 &&
        (PyDict_Check(X) ||
         (PyList_Check(X) && PyList_GET_SIZE(X) > 0 && PyDict_Check(PyList_GET_ITEM(X, 0))))) {
        result = read_records(g, X, hold, in);
        if (result <= 0) {
            return result;
        }
        /* not the model's columns: the Python side says what differs */
        PyMem_Free(hold->numbers);
        PyMem_Free(hold->keys);
        hold->numbers = NULL;
        hold->keys = NULL;
        mf_keystore_free(&hold->store);
    }
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
    if (PyList_Check(obj)) {
        result = read_columns(g, obj, hold, in);
        Py_DECREF(obj);
        return result;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "expected an array, got %.100s", Py_TYPE(obj)->tp_name);
        Py_DECREF(obj);
        return -1;
    }
    if (g->n_keys > 0 && g->strings == MF_STRINGS_IMPUTER &&
        strchr("US", PyArray_DESCR((PyArrayObject *)obj)->kind) != NULL) {
        refuse_strings(g, (PyArrayObject *)obj);
        Py_DECREF(obj);
        return -1;
    }
    if (g->n_keys > 0 && strchr("USO", PyArray_DESCR((PyArrayObject *)obj)->kind) != NULL) {
        result = read_text_array(g, (PyArrayObject *)obj, hold, in);
        Py_DECREF(obj);
        return result;
    }
    arr = as_readable(g, obj);
    if (arr == NULL) {
        return -1;
    }
    if (PyList_Append(hold->arrays, (PyObject *)arr) < 0) {
        Py_DECREF(arr);
        return -1;
    }
    Py_DECREF(arr);     /* the list holds it */
    in->data = PyArray_BYTES(arr);
    in->type_num = PyArray_TYPE(arr);
    if (check_shape(g, arr, in) < 0) {
        return -1;
    }
    return read_array_keys(g, arr, hold, in);
}

void
mf_input_release(mf_hold *hold)
{
    Py_CLEAR(hold->arrays);
    Py_CLEAR(hold->source);
    PyMem_Free(hold->columns);
    PyMem_Free(hold->keys);
    PyMem_Free(hold->numbers);
    hold->columns = NULL;
    hold->keys = NULL;
    hold->numbers = NULL;
    mf_keystore_free(&hold->store);
}

/* Rows [r0, r0 + nr) of the input, row-major, each row its n_cols numbers
 * (NaN where no node reads them) then its keys. */
void
mf_input_gather(const mf_input *in, npy_intp r0, npy_intp nr, double *dst)
{
    npy_intp r, j, d = in->n_cols, w = in->n_cols + in->n_keys;

#define GATHER(T)                                                          \
    for (r = 0; r < nr; r++) {                                             \
        const char *row = in->data + (r0 + r) * in->row_stride;            \
        for (j = 0; j < d; j++) {                                          \
            dst[r * w + j] = (double)*(const T *)(row + j * in->col_stride); \
        }                                                                  \
    }                                                                      \
    break;
#define COLUMN(T)                                                          \
    for (r = 0; r < nr; r++) {                                             \
        dst[r * w + j] = (double)*(const T *)(col->data + (r0 + r) * col->stride); \
    }                                                                      \
    break;

    if (in->columns != NULL) {
        for (j = 0; j < d; j++) {
            const mf_column *col = &in->columns[j];
            if (col->data == NULL) {
                for (r = 0; r < nr; r++) {
                    dst[r * w + j] = NAN;
                }
                continue;
            }
            switch (col->type_num) {
                // clang-format off: a table, one dtype a line (the macro is its case's body)
            case NPY_DOUBLE: COLUMN(npy_double)
            case NPY_FLOAT: COLUMN(npy_float)
            case NPY_BOOL: COLUMN(npy_bool)
            case NPY_BYTE: COLUMN(npy_byte)
            case NPY_UBYTE: COLUMN(npy_ubyte)
            case NPY_SHORT: COLUMN(npy_short)
            case NPY_USHORT: COLUMN(npy_ushort)
            case NPY_INT: COLUMN(npy_int)
            case NPY_UINT: COLUMN(npy_uint)
            case NPY_LONG: COLUMN(npy_long)
            case NPY_ULONG: COLUMN(npy_ulong)
            case NPY_LONGLONG: COLUMN(npy_longlong)
            case NPY_ULONGLONG: COLUMN(npy_ulonglong)
            // clang-format on
            case NPY_HALF:
                for (r = 0; r < nr; r++) {
                    dst[r * w + j] =
                        mf_half_to_double(*(const npy_half *)(col->data + (r0 + r) * col->stride));
                }
                break;
            default:
                break;
            }
        }
    }
    else if (in->type_num == NPY_DOUBLE && in->col_stride == (npy_intp)sizeof(double)) {
        for (r = 0; r < nr; r++) {
            memcpy(dst + r * w, in->data + (r0 + r) * in->row_stride, (size_t)d * sizeof(double));
        }
    }
    else {
        switch (in->type_num) {
            // clang-format off: a table, one dtype a line (the macro is its case's body)
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
        // clang-format on
        case NPY_HALF:
            for (r = 0; r < nr; r++) {
                const char *row = in->data + (r0 + r) * in->row_stride;
                for (j = 0; j < d; j++) {
                    dst[r * w + j] =
                        mf_half_to_double(*(const npy_half *)(row + j * in->col_stride));
                }
            }
            break;
        default:
            break;
        }
    }
    if (in->n_keys > 0) {
        for (r = 0; r < nr; r++) {
            memcpy(dst + r * w + d, in->keys + (r0 + r) * in->n_keys,
                   (size_t)in->n_keys * sizeof(uint64_t));
        }
    }
#undef GATHER
#undef COLUMN
}
