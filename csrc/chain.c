/*
 * chain.c -- the Chain type: a model as transform steps plus a final
 * estimator, run over the caller's array in blocks of rows.
 *
 * The input array is read in place (any real dtype, any strides); each block
 * of rows is gathered into doubles, passed through the steps and the final
 * estimator, and written straight into the output array.  Batches above a
 * threshold release the GIL; larger ones are split across threads.  Input
 * checks and error messages follow scikit-learn's check_array.
 */
#include "mlfast.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t n_features;
    Py_ssize_t n_steps;
    mf_step *steps;
    PyObject *names;            /* tuple: one name per stage (steps, then final) */
    mf_final_kind final_kind;
    mf_accept final_accept;
    mf_linear linear;
    mf_forest forest;
    Py_ssize_t n_raw;           /* raw score columns of the final estimator */
    Py_ssize_t n_classes;
    mf_label_rule label_rule;
    mf_proba_rule proba_rule;
    mf_post_rule post_rule;
    double post_denominator, post_offset;
    PyArrayObject *classes;     /* or NULL */
    int raw_1d;
    int coef_f32;
    Py_ssize_t max_width;
    Py_ssize_t out_width;       /* width after the last step */
    npy_intp block_rows;        /* rows that go through the chain together */
    PyObject *owners;           /* list: arrays whose data the IR points into */
    PyObject *coerce;           /* callable turning non-arrays into arrays, or NULL */
    PyObject *packed;           /* (nodes, roots, values) of a forest, or NULL */
    int strings;                /* what the first stage does with strings (MF_STRINGS_*) */
    PyObject *string_prefix;    /* put before a failed conversion's message, or NULL */
    PyObject *names_warning;    /* warned when an array meets a model fitted on names */
} mf_Chain;

/* What the first stage does with an array of strings: refuse it as
 * dtype='numeric' does, convert it as dtype=float64 does, or refuse it as
 * SimpleImputer(strategy='most_frequent'|'constant') does. */
enum { MF_STRINGS_REFUSE = 0, MF_STRINGS_CONVERT = 1, MF_STRINGS_IMPUTER = 2 };

/* What a call computes: decision_function, regression predict,
 * score_samples, predict_proba, predict_log_proba, class predict, transform. */
enum { W_RAW = 1, W_REGRESS, W_SCORE, W_PROBA, W_LOGPROBA, W_LABEL, W_TRANSFORM };

static int mf_num_threads = 1;

int
mf_get_num_threads(void)
{
    return mf_num_threads;
}

int
mf_set_num_threads(int n)
{
    mf_num_threads = n < 1 ? 1 : n;
    return 0;
}

/* ---- construction ---------------------------------------------------------- */

/* A float64 vector of n items (or None when optional); its data stays alive
 * through c->owners. */
static int
take_vector(mf_Chain *c, PyObject *obj, int type_num, Py_ssize_t n, int optional,
            const char *what, const void **out)
{
    PyArrayObject *arr;

    *out = NULL;
    if (obj == Py_None && optional) {
        return 0;
    }
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an ndarray", what);
        return -1;
    }
    arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != type_num || PyArray_NDIM(arr) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr) ||
        !PyArray_ISNOTSWAPPED(arr) || (n >= 0 && PyArray_DIM(arr, 0) != n)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a contiguous %s vector of %zd items", what,
                     type_num == NPY_DOUBLE ? "float64" : "intp", n);
        return -1;
    }
    if (PyList_Append(c->owners, obj) < 0) {
        return -1;
    }
    *out = PyArray_DATA(arr);
    return 0;
}

static int
parse_accept(PyObject *obj, mf_accept *out)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v < MF_ACCEPT_FINITE || v > MF_ACCEPT_ANY) {
        PyErr_SetString(PyExc_ValueError, "accept must be 0, 1 or 2");
        return -1;
    }
    *out = (mf_accept)v;
    return 0;
}

/* ("affine", name, accept, n, sub, mul, div, add, cast_params, clip)
 * ("impute", name, accept, n_in, missing, fill, keep, indicator, keeps_int)
 * ("encode", name, accept, n, perm, categories, offsets) */
static int
parse_step(mf_Chain *c, PyObject *spec, mf_step *s, PyObject **name)
{
    const char *kind;
    Py_ssize_t t;

    memset(s, 0, sizeof(*s));
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 4 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0)) ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_SetString(PyExc_ValueError, "step must be (kind, name, accept, n, ...)");
        return -1;
    }
    kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    *name = PyTuple_GET_ITEM(spec, 1);
    if (kind == NULL || parse_accept(PyTuple_GET_ITEM(spec, 2), &s->accept) < 0) {
        return -1;
    }
    s->n_in = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 3));
    if (s->n_in == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (s->n_in < 1) {
        PyErr_SetString(PyExc_ValueError, "a step needs at least one input column");
        return -1;
    }
    if (strcmp(kind, "affine") == 0 && PyTuple_GET_SIZE(spec) == 10) {
        PyObject *clip = PyTuple_GET_ITEM(spec, 9);
        s->kind = MF_STEP_AFFINE;
        s->n_out = s->n_in;
        if (take_vector(c, PyTuple_GET_ITEM(spec, 4), NPY_DOUBLE, s->n_in, 1, "sub",
                        (const void **)&s->sub) < 0 ||
            take_vector(c, PyTuple_GET_ITEM(spec, 5), NPY_DOUBLE, s->n_in, 1, "mul",
                        (const void **)&s->mul) < 0 ||
            take_vector(c, PyTuple_GET_ITEM(spec, 6), NPY_DOUBLE, s->n_in, 1, "div",
                        (const void **)&s->div) < 0 ||
            take_vector(c, PyTuple_GET_ITEM(spec, 7), NPY_DOUBLE, s->n_in, 1, "add",
                        (const void **)&s->add) < 0) {
            return -1;
        }
        s->cast_params = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 8));
        if (s->cast_params < 0) {
            return -1;
        }
        if (clip != Py_None) {
            if (!PyArg_ParseTuple(clip, "dd", &s->clip_lo, &s->clip_hi)) {
                return -1;
            }
            s->clip = 1;
        }
        return 0;
    }
    if (strcmp(kind, "impute") == 0 && PyTuple_GET_SIZE(spec) == 9) {
        PyObject *keep = PyTuple_GET_ITEM(spec, 6), *ind = PyTuple_GET_ITEM(spec, 7);
        s->kind = MF_STEP_IMPUTE;
        s->keeps_int = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 8));
        if (s->keeps_int < 0) {
            return -1;
        }
        s->missing = PyFloat_AsDouble(PyTuple_GET_ITEM(spec, 4));
        if (s->missing == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        s->missing_is_nan = isnan(s->missing);
        if (!PyArray_Check(keep) || !PyArray_Check(ind)) {
            PyErr_SetString(PyExc_TypeError, "keep and indicator must be ndarrays");
            return -1;
        }
        s->n_keep = PyArray_SIZE((PyArrayObject *)keep);
        s->n_indicator = PyArray_SIZE((PyArrayObject *)ind);
        if (take_vector(c, PyTuple_GET_ITEM(spec, 5), NPY_DOUBLE, s->n_in, 0, "fill",
                        (const void **)&s->fill) < 0 ||
            take_vector(c, keep, NPY_INTP, s->n_keep, 0, "keep",
                        (const void **)&s->keep) < 0 ||
            take_vector(c, ind, NPY_INTP, s->n_indicator, 0, "indicator",
                        (const void **)&s->indicator) < 0) {
            return -1;
        }
        for (t = 0; t < s->n_keep; t++) {
            if (s->keep[t] < 0 || s->keep[t] >= s->n_in) {
                PyErr_SetString(PyExc_ValueError, "keep index out of range");
                return -1;
            }
        }
        for (t = 0; t < s->n_indicator; t++) {
            if (s->indicator[t] < 0 || s->indicator[t] >= s->n_in) {
                PyErr_SetString(PyExc_ValueError, "indicator index out of range");
                return -1;
            }
        }
        s->n_out = s->n_keep + s->n_indicator;
        if (s->n_out < 1) {
            PyErr_SetString(PyExc_ValueError, "an imputer must output a column");
            return -1;
        }
        return 0;
    }
    if (strcmp(kind, "encode") == 0 && PyTuple_GET_SIZE(spec) == 7) {
        PyObject *offsets = PyTuple_GET_ITEM(spec, 6), *values = PyTuple_GET_ITEM(spec, 5);
        s->kind = MF_STEP_ENCODE;
        s->n_out = s->n_in;
        if (!PyArray_Check(offsets) || !PyArray_Check(values) ||
            PyArray_SIZE((PyArrayObject *)offsets) < 1) {
            PyErr_SetString(PyExc_TypeError, "encode needs offsets and values arrays");
            return -1;
        }
        s->n_cat = PyArray_SIZE((PyArrayObject *)offsets) - 1;
        if (take_vector(c, PyTuple_GET_ITEM(spec, 4), NPY_INTP, s->n_in, 0, "perm",
                        (const void **)&s->perm) < 0 ||
            take_vector(c, values, NPY_DOUBLE, -1, 0, "categories",
                        (const void **)&s->cat_values) < 0 ||
            take_vector(c, offsets, NPY_INTP, s->n_cat + 1, 0, "offsets",
                        (const void **)&s->cat_offsets) < 0) {
            return -1;
        }
        if (s->n_cat > s->n_in || s->cat_offsets[0] != 0 ||
            s->cat_offsets[s->n_cat] != PyArray_SIZE((PyArrayObject *)values)) {
            PyErr_SetString(PyExc_ValueError, "encode offsets do not cover the categories");
            return -1;
        }
        for (t = 0; t < s->n_in; t++) {
            if (s->perm[t] < 0 || s->perm[t] >= s->n_in) {
                PyErr_SetString(PyExc_ValueError, "encode column out of range");
                return -1;
            }
        }
        for (t = 0; t < s->n_cat; t++) {
            npy_intp i;
            if (s->cat_offsets[t + 1] < s->cat_offsets[t]) {
                PyErr_SetString(PyExc_ValueError, "encode offsets must not decrease");
                return -1;
            }
            for (i = s->cat_offsets[t] + 1; i < s->cat_offsets[t + 1]; i++) {
                if (!(s->cat_values[i - 1] < s->cat_values[i])) {
                    PyErr_SetString(PyExc_ValueError, "categories must be sorted and unique");
                    return -1;
                }
            }
        }
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "unknown step kind '%s' or wrong arity", kind);
    return -1;
}

/* ("linear", name, accept, coef (k, d) float64, intercept (k,) float64) */
static int
parse_linear(mf_Chain *c, PyObject *spec)
{
    PyArrayObject *coef;

    if (PyTuple_GET_SIZE(spec) != 5) {
        PyErr_SetString(PyExc_ValueError,
                        "final must be ('linear', name, accept, coef, intercept)");
        return -1;
    }
    coef = (PyArrayObject *)PyTuple_GET_ITEM(spec, 3);
    if (!PyArray_Check(coef) || PyArray_TYPE(coef) != NPY_DOUBLE ||
        PyArray_NDIM(coef) != 2 || !PyArray_IS_C_CONTIGUOUS(coef) ||
        !PyArray_ISALIGNED(coef) || !PyArray_ISNOTSWAPPED(coef) ||
        PyArray_DIM(coef, 0) < 1 || PyArray_DIM(coef, 1) < 1) {
        PyErr_SetString(PyExc_ValueError, "coef must be a contiguous 2-D float64 array");
        return -1;
    }
    if (PyList_Append(c->owners, (PyObject *)coef) < 0) {
        return -1;
    }
    c->final_kind = MF_FINAL_LINEAR;
    c->linear.n_outputs = PyArray_DIM(coef, 0);
    c->linear.n_features = PyArray_DIM(coef, 1);
    c->linear.coef = PyArray_DATA(coef);
    c->n_raw = c->linear.n_outputs;
    return take_vector(c, PyTuple_GET_ITEM(spec, 4), NPY_DOUBLE, c->n_raw, 0,
                       "intercept", (const void **)&c->linear.intercept);
}

/* A contiguous, aligned, native array of type_num and ndim whose first
 * dimension is n (any if n < 0); its data pointer, kept alive by owners. */
static int check_array(PyObject *obj, int type_num, int ndim, npy_intp n, const char *what,
                       const void **out);

static int
take_array(mf_Chain *c, PyObject *obj, int type_num, int ndim, npy_intp n,
           const char *what, const void **out)
{
    if (check_array(obj, type_num, ndim, n, what, out) < 0) {
        return -1;
    }
    return PyList_Append(c->owners, obj);
}

static int
parse_forest_common(mf_Chain *c, PyObject *spec, Py_ssize_t tail)
{
    mf_forest *f = &c->forest;
    PyObject *column = PyTuple_GET_ITEM(spec, tail);
    PyObject *cats = PyTuple_GET_ITEM(spec, tail + 1);
    PyObject *init = PyTuple_GET_ITEM(spec, tail + 2);
    Py_ssize_t t;

    f->n_features = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 3));
    f->n_raw = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 4));
    if (PyErr_Occurred()) {
        return -1;
    }
    if (f->n_features < 1 || f->n_features >= MF_TREE_MAX_FEATURES || f->n_raw < 1) {
        PyErr_SetString(PyExc_ValueError, "a forest needs features and outputs");
        return -1;
    }
    if (column != Py_None) {
        if (take_array(c, column, NPY_INT32, 1, f->n_trees, "column",
                       (const void **)&f->column) < 0) {
            return -1;
        }
        if (f->n_values != 1) {
            PyErr_SetString(PyExc_ValueError, "a tree feeding one column has one value");
            return -1;
        }
        for (t = 0; t < f->n_trees; t++) {
            if (f->column[t] < 0 || f->column[t] >= f->n_raw) {
                PyErr_SetString(PyExc_ValueError, "tree output column out of range");
                return -1;
            }
        }
    }
    else if (f->n_values != f->n_raw) {
        PyErr_SetString(PyExc_ValueError, "leaf values must fill the outputs");
        return -1;
    }
    if (cats != Py_None) {
        if (take_array(c, cats, NPY_UINT32, 2, -1, "cats", (const void **)&f->cats) < 0) {
            return -1;
        }
        if (PyArray_DIM((PyArrayObject *)cats, 1) != 16) {
            PyErr_SetString(PyExc_ValueError, "category splits must be 16 words");
            return -1;
        }
        f->n_cats = PyArray_DIM((PyArrayObject *)cats, 0);
    }
    if (init != Py_None && take_vector(c, init, NPY_DOUBLE, f->n_raw, 0, "init",
                                       (const void **)&f->init) < 0) {
        return -1;
    }
    f->average = PyObject_IsTrue(PyTuple_GET_ITEM(spec, tail + 3));
    f->cast_f32 = PyObject_IsTrue(PyTuple_GET_ITEM(spec, tail + 4));
    if (f->average < 0 || f->cast_f32 < 0) {
        return -1;
    }
    c->final_kind = MF_FINAL_FOREST;
    c->n_raw = f->n_raw;
    return 0;
}

/* take_array's check without keeping the array: for inputs read once. */
static int
check_array(PyObject *obj, int type_num, int ndim, npy_intp n, const char *what,
            const void **out)
{
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (!PyArray_Check(obj) || PyArray_TYPE(arr) != type_num || PyArray_NDIM(arr) != ndim ||
        !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr) ||
        !PyArray_ISNOTSWAPPED(arr) || (n >= 0 && PyArray_DIM(arr, 0) != n)) {
        PyErr_Format(PyExc_ValueError, "%s must be a contiguous %d-D array of type %d "
                     "with %zd rows", what, ndim, type_num, (Py_ssize_t)n);
        return -1;
    }
    *out = PyArray_DATA(arr);
    return 0;
}

/* Per-tree depths for the lockstep walk, owned by the chain. */
static int
forest_depths(mf_Chain *c)
{
    char err[256];
    mf_forest *f = &c->forest;
    Py_ssize_t t;
    f->depths = PyMem_Malloc((size_t)(f->n_trees > 0 ? 2 * f->n_trees : 1) * sizeof(int32_t));
    if (f->depths == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (mf_forest_depths(f, f->depths, err, sizeof(err)) < 0) {
        PyErr_SetString(PyExc_MemoryError, err);
        return -1;
    }
    f->steps = 0;
    for (t = 0; t < f->n_trees; t++) {
        f->steps += f->depths[2 * t];
    }
    return 0;
}

/* ("forest", name, accept, n_features, n_raw, left, right, feature,
 *  threshold, flags, values (n_nodes, n_values), offsets (n_trees + 1),
 *  column, cats, init, average, cast_f32): per-node arrays from the
 * builders, laid out again here into numpy arrays the chain keeps (the
 * inputs are not kept, so a forest costs only its packed nodes and leaf
 * values). */
static int
parse_forest(mf_Chain *c, PyObject *spec)
{
    mf_forest *f = &c->forest;
    mf_forest_input in;
    PyObject *values, *offsets;
    PyArrayObject *nodes_arr = NULL, *roots_arr = NULL, *values_arr = NULL;
    npy_intp dims[2];
    Py_ssize_t i, n_leaves = 0;
    char err[256];
    int result = -1;

    if (PyTuple_GET_SIZE(spec) != 17) {
        PyErr_SetString(PyExc_ValueError, "forest spec must have 17 items");
        return -1;
    }
    memset(&in, 0, sizeof(in));
    values = PyTuple_GET_ITEM(spec, 10);
    offsets = PyTuple_GET_ITEM(spec, 11);
    if (!PyArray_Check(offsets) || PyArray_NDIM((PyArrayObject *)offsets) != 1 ||
        PyArray_DIM((PyArrayObject *)offsets, 0) < 2 || !PyArray_Check(values) ||
        PyArray_NDIM((PyArrayObject *)values) != 2 ||
        PyArray_DIM((PyArrayObject *)values, 1) < 1) {
        PyErr_SetString(PyExc_ValueError, "forest offsets or values malformed");
        return -1;
    }
    f->n_trees = PyArray_DIM((PyArrayObject *)offsets, 0) - 1;
    f->n_values = PyArray_DIM((PyArrayObject *)values, 1);
    in.n_nodes = PyArray_DIM((PyArrayObject *)values, 0);
    /* the inputs are read here only: check them without keeping them */
    if (check_array(PyTuple_GET_ITEM(spec, 5), NPY_INT64, 1, in.n_nodes, "left",
                    (const void **)&in.left) < 0 ||
        check_array(PyTuple_GET_ITEM(spec, 6), NPY_INT64, 1, in.n_nodes, "right",
                    (const void **)&in.right) < 0 ||
        check_array(PyTuple_GET_ITEM(spec, 7), NPY_INT64, 1, in.n_nodes, "feature",
                    (const void **)&in.feature) < 0 ||
        check_array(PyTuple_GET_ITEM(spec, 8), NPY_DOUBLE, 1, in.n_nodes, "threshold",
                    (const void **)&in.threshold) < 0 ||
        check_array(PyTuple_GET_ITEM(spec, 9), NPY_UINT8, 1, in.n_nodes, "flags",
                    (const void **)&in.flags) < 0 ||
        check_array(values, NPY_DOUBLE, 2, in.n_nodes, "values",
                    (const void **)&in.values) < 0 ||
        check_array(offsets, NPY_INT64, 1, f->n_trees + 1, "offsets",
                    (const void **)&in.offsets) < 0) {
        return -1;
    }
    if (in.offsets[0] != 0 || in.offsets[f->n_trees] != in.n_nodes) {
        PyErr_SetString(PyExc_ValueError, "forest offsets must run from 0 to the node count");
        return -1;
    }
    if (parse_forest_common(c, spec, 12) < 0) {
        return -1;
    }
    for (i = 0; i < in.n_nodes; i++) {
        n_leaves += in.left[i] < 0;
    }
    dims[0] = in.n_nodes * (npy_intp)sizeof(mf_tnode);
    nodes_arr = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_UINT8);
    dims[0] = f->n_trees;
    roots_arr = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    dims[0] = n_leaves;
    dims[1] = f->n_values;
    values_arr = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE);
    if (nodes_arr == NULL || roots_arr == NULL || values_arr == NULL) {
        goto done;
    }
    if (mf_forest_build(f, &in, (mf_tnode *)PyArray_DATA(nodes_arr),
                        (int64_t *)PyArray_DATA(roots_arr),
                        (double *)PyArray_DATA(values_arr), err, sizeof(err)) < 0) {
        PyErr_Format(mf_ModelFormatError, "invalid tree: %s", err);
        goto done;
    }
    if (forest_depths(c) < 0) {
        goto done;
    }
    if (PyList_Append(c->owners, (PyObject *)nodes_arr) < 0 ||
        PyList_Append(c->owners, (PyObject *)roots_arr) < 0 ||
        PyList_Append(c->owners, (PyObject *)values_arr) < 0) {
        goto done;
    }
    {
        /* unreachable nodes (none in scikit-learn's trees) are left out */
        PyObject *nodes_used = PySequence_GetSlice((PyObject *)nodes_arr, 0,
                                                   f->n_nodes * (Py_ssize_t)sizeof(mf_tnode));
        PyObject *values_used = PySequence_GetSlice((PyObject *)values_arr, 0, f->n_leaves);
        if (nodes_used != NULL && values_used != NULL) {
            c->packed = Py_BuildValue("(OOO)", nodes_used, roots_arr, values_used);
        }
        Py_XDECREF(nodes_used);
        Py_XDECREF(values_used);
    }
    result = c->packed == NULL ? -1 : 0;
done:
    Py_XDECREF(nodes_arr);
    Py_XDECREF(roots_arr);
    Py_XDECREF(values_arr);
    return result;
}

/* ("forest_packed", name, accept, n_features, n_raw, nodes (uint8 bytes of
 *  mf_tnode), roots, values, column, cats, init, average, cast_f32): the
 * layout parse_forest makes, as a pickled Model carries it; checked, then
 * used in place. */
static int
parse_forest_packed(mf_Chain *c, PyObject *spec)
{
    mf_forest *f = &c->forest;
    PyObject *nodes = NULL, *roots, *values;
    char err[256];

    if (PyTuple_GET_SIZE(spec) != 13) {
        PyErr_SetString(PyExc_ValueError, "packed forest spec must have 13 items");
        return -1;
    }
    nodes = PyTuple_GET_ITEM(spec, 5);
    roots = PyTuple_GET_ITEM(spec, 6);
    values = PyTuple_GET_ITEM(spec, 7);
    if (!PyArray_Check(nodes) || !PyArray_Check(roots) || !PyArray_Check(values) ||
        PyArray_NDIM((PyArrayObject *)values) != 2 ||
        PyArray_NDIM((PyArrayObject *)nodes) != 1 ||
        PyArray_DIM((PyArrayObject *)nodes, 0) % (npy_intp)sizeof(mf_tnode) != 0) {
        PyErr_SetString(PyExc_ValueError, "packed forest arrays malformed");
        return -1;
    }
    f->n_trees = PyArray_SIZE((PyArrayObject *)roots);
    f->n_nodes = PyArray_DIM((PyArrayObject *)nodes, 0) / (npy_intp)sizeof(mf_tnode);
    f->n_leaves = PyArray_DIM((PyArrayObject *)values, 0);
    f->n_values = PyArray_DIM((PyArrayObject *)values, 1);
    if (f->n_trees < 1 || f->n_values < 1 ||
        take_array(c, nodes, NPY_UINT8, 1, -1, "nodes", (const void **)&f->nodes) < 0 ||
        take_array(c, roots, NPY_INT64, 1, f->n_trees, "roots",
                   (const void **)&f->roots) < 0 ||
        take_array(c, values, NPY_DOUBLE, 2, f->n_leaves, "values",
                   (const void **)&f->values) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "packed forest has no trees");
        }
        return -1;
    }
    if (((uintptr_t)f->nodes) % sizeof(double) != 0) {
        PyErr_SetString(PyExc_ValueError, "packed forest nodes are not aligned");
        return -1;
    }
    if (parse_forest_common(c, spec, 8) < 0) {
        return -1;
    }
    if (mf_forest_check(f, err, sizeof(err)) < 0) {
        PyErr_Format(mf_ModelFormatError, "invalid packed forest: %s", err);
        return -1;
    }
    if (forest_depths(c) < 0) {
        return -1;
    }
    c->packed = Py_BuildValue("(OOO)", nodes, roots, values);
    return c->packed == NULL ? -1 : 0;
}

static int
parse_final(mf_Chain *c, PyObject *spec, PyObject **name, Py_ssize_t *n_in)
{
    const char *kind;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 3 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0)) ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_SetString(PyExc_ValueError, "final must be (kind, name, accept, ...)");
        return -1;
    }
    *name = PyTuple_GET_ITEM(spec, 1);
    if (parse_accept(PyTuple_GET_ITEM(spec, 2), &c->final_accept) < 0) {
        return -1;
    }
    kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (kind == NULL) {
        return -1;
    }
    if (strcmp(kind, "linear") == 0) {
        if (parse_linear(c, spec) < 0) {
            return -1;
        }
        *n_in = c->linear.n_features;
        return 0;
    }
    if (strcmp(kind, "forest") == 0 || strcmp(kind, "forest_packed") == 0) {
        if ((kind[6] == '\0' ? parse_forest(c, spec) : parse_forest_packed(c, spec)) < 0) {
            return -1;
        }
        *n_in = c->forest.n_features;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "unknown final kind '%s'", kind);
    return -1;
}

static int
chain_init(mf_Chain *c, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n_features", "steps", "final", "label_rule", "proba_rule",
                             "classes", "raw_1d", "coef_f32", "coerce", "post_rule",
                             "post_params", "strings", "string_prefix", "names_warning",
                             NULL};
    PyObject *steps, *final = Py_None, *classes = Py_None, *coerce = Py_None;
    PyObject *string_prefix = Py_None, *names_warning = Py_None;
    PyObject *names = NULL;
    Py_ssize_t n_features, i, width, final_in = 0;
    int label_rule = 0, proba_rule = 0, raw_1d = 0, coef_f32 = 0, post_rule = 0;
    int strings = 0;
    double post_den = 0.0, post_offset = 0.0;

    if (c->owners != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Chain is already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nO!|O$iiOppOi(dd)iOO:Chain", kwlist,
                                     &n_features, &PyList_Type, &steps, &final,
                                     &label_rule, &proba_rule, &classes, &raw_1d,
                                     &coef_f32, &coerce, &post_rule, &post_den,
                                     &post_offset, &strings, &string_prefix,
                                     &names_warning)) {
        return -1;
    }
    if ((string_prefix != Py_None && !PyUnicode_Check(string_prefix)) ||
        (names_warning != Py_None && !PyUnicode_Check(names_warning))) {
        PyErr_SetString(PyExc_TypeError, "string_prefix and names_warning must be str");
        return -1;
    }
    if (n_features < 1) {
        PyErr_SetString(PyExc_ValueError, "n_features must be positive");
        return -1;
    }
    c->owners = PyList_New(0);
    if (c->owners == NULL) {
        return -1;
    }
    c->n_features = n_features;
    c->n_steps = PyList_GET_SIZE(steps);
    if (c->n_steps > MF_MAX_STEPS) {
        PyErr_Format(PyExc_ValueError, "more than %d steps", MF_MAX_STEPS);
        return -1;
    }
    names = PyTuple_New(c->n_steps + 1);
    if (names == NULL) {
        return -1;
    }
    c->names = names;
    c->steps = PyMem_Calloc((size_t)(c->n_steps > 0 ? c->n_steps : 1), sizeof(mf_step));
    if (c->steps == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    width = n_features;
    c->max_width = width;
    for (i = 0; i < c->n_steps; i++) {
        PyObject *name;
        if (parse_step(c, PyList_GET_ITEM(steps, i), &c->steps[i], &name) < 0) {
            return -1;
        }
        if (c->steps[i].n_in != width) {
            PyErr_Format(PyExc_ValueError, "step %zd takes %zd columns but receives %zd",
                         i, c->steps[i].n_in, width);
            return -1;
        }
        Py_INCREF(name);
        PyTuple_SET_ITEM(names, i, name);
        width = c->steps[i].n_out;
        if (width > c->max_width) {
            c->max_width = width;
        }
    }
    c->out_width = width;
    c->block_rows = MF_BLOCK_ROWS;
    if (final != Py_None) {
        PyObject *name;
        if (parse_final(c, final, &name, &final_in) < 0) {
            return -1;
        }
        if (final_in != width) {
            PyErr_Format(PyExc_ValueError, "final estimator takes %zd columns but "
                         "receives %zd", final_in, width);
            return -1;
        }
        Py_INCREF(name);
        PyTuple_SET_ITEM(names, c->n_steps, name);
        if (c->final_kind == MF_FINAL_FOREST &&
            c->forest.n_nodes * (npy_intp)sizeof(mf_tnode) +
            c->forest.n_leaves * c->forest.n_values * (npy_intp)sizeof(double) >
                MF_FOREST_CACHE_BYTES) {
            /* a forest larger than the caches is read from memory once per
             * block: make blocks large enough that each tree's nodes serve
             * many rows */
            c->block_rows = MF_BIG_BLOCK_ROWS;
        }
    }
    else {
        if (c->n_steps == 0) {
            PyErr_SetString(PyExc_ValueError, "a chain needs a step or a final estimator");
            return -1;
        }
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(names, c->n_steps, Py_None);
    }
    if (label_rule < MF_LABEL_NONE || label_rule > MF_LABEL_PROBA_ARGMAX ||
        proba_rule < MF_PROBA_NONE || proba_rule > MF_PROBA_EXPIT2 ||
        post_rule < MF_POST_NONE || post_rule > MF_POST_IFOREST) {
        PyErr_SetString(PyExc_ValueError, "unknown label, proba or post rule");
        return -1;
    }
    if ((label_rule == MF_LABEL_PROBA_ARGMAX && proba_rule == MF_PROBA_NONE) ||
        (post_rule == MF_POST_IFOREST && c->n_raw != 1)) {
        PyErr_SetString(PyExc_ValueError, "inconsistent rules");
        return -1;
    }
    c->label_rule = (mf_label_rule)label_rule;
    c->proba_rule = (mf_proba_rule)proba_rule;
    c->post_rule = (mf_post_rule)post_rule;
    c->post_denominator = post_den;
    c->post_offset = post_offset;
    c->raw_1d = raw_1d;
    c->coef_f32 = coef_f32;
    if (label_rule != MF_LABEL_NONE) {
        PyArrayObject *cl = (PyArrayObject *)classes;
        if (final == Py_None || !PyArray_Check(classes) || PyArray_NDIM(cl) != 1 ||
            !PyArray_IS_C_CONTIGUOUS(cl) || !PyArray_ISNOTSWAPPED(cl)) {
            PyErr_SetString(PyExc_ValueError, "a classifier needs a final estimator and "
                            "a contiguous 1-D classes array");
            return -1;
        }
        c->n_classes = PyArray_DIM(cl, 0);
        if (((label_rule == MF_LABEL_THRESHOLD || label_rule == MF_LABEL_THRESHOLD_GE) &&
             (c->n_raw != 1 || c->n_classes != 2)) ||
            (label_rule == MF_LABEL_ARGMAX && c->n_raw != c->n_classes) ||
            (label_rule == MF_LABEL_PROBA_ARGMAX && c->n_classes < 2)) {
            PyErr_Format(PyExc_ValueError, "%zd score columns do not fit %zd classes",
                         c->n_raw, c->n_classes);
            return -1;
        }
        Py_INCREF(classes);
        c->classes = cl;
    }
    if (coerce != Py_None) {
        Py_INCREF(coerce);
        c->coerce = coerce;
    }
    if (strings < MF_STRINGS_REFUSE || strings > MF_STRINGS_IMPUTER) {
        PyErr_SetString(PyExc_ValueError, "strings must be 0, 1 or 2");
        return -1;
    }
    c->strings = strings;
    if (string_prefix != Py_None) {
        Py_INCREF(string_prefix);
        c->string_prefix = string_prefix;
    }
    if (names_warning != Py_None) {
        Py_INCREF(names_warning);
        c->names_warning = names_warning;
    }
    return 0;
}

static int
chain_traverse(mf_Chain *c, visitproc visit, void *arg)
{
    Py_VISIT(c->names);
    Py_VISIT(c->classes);
    Py_VISIT(c->owners);
    Py_VISIT(c->coerce);
    Py_VISIT(c->packed);
    Py_VISIT(c->string_prefix);
    Py_VISIT(c->names_warning);
    return 0;
}

static int
chain_clear(mf_Chain *c)
{
    Py_CLEAR(c->names);
    Py_CLEAR(c->classes);
    Py_CLEAR(c->owners);
    Py_CLEAR(c->coerce);
    Py_CLEAR(c->packed);
    Py_CLEAR(c->string_prefix);
    Py_CLEAR(c->names_warning);
    return 0;
}

static void
chain_dealloc(mf_Chain *c)
{
    PyObject_GC_UnTrack(c);
    chain_clear(c);
    PyMem_Free(c->steps);
    PyMem_Free(c->forest.depths);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* ---- input ------------------------------------------------------------------ */

typedef struct {
    const char *data;
    npy_intp n_rows, n_cols;
    npy_intp row_stride, col_stride;
    int type_num;
} mf_input;

/* The dtype of the data a stage reads, as scikit-learn's check_array leaves
 * it: transformers keep float16/float32 and turn integers into float64
 * (except an imputer filling integers with integers). */
enum { DT_INT = 0, DT_F16, DT_F32, DT_F64 };

static int
type_of_input(int type_num)
{
    switch (type_num) {
    case NPY_HALF:
        return DT_F16;
    case NPY_FLOAT:
        return DT_F32;
    case NPY_DOUBLE:
        return DT_F64;
    default:
        return DT_INT;
    }
}

static int
step_out_type(const mf_step *s, int t)
{
    switch (s->kind) {
    case MF_STEP_AFFINE:
        return t == DT_INT ? DT_F64 : t;
    case MF_STEP_IMPUTE:
        return t == DT_INT && !s->keeps_int ? DT_F64 : t;
    default:
        return DT_F64;
    }
}

static mf_precision
precision_of(int t)
{
    return t == DT_F32 ? MF_F32 : t == DT_F16 ? MF_F16 : MF_F64;
}

static const char *
type_name(int t)
{
    return t == DT_F32 ? "float32" : t == DT_F16 ? "float16" : "float64";
}

static PyObject *
stage_name(mf_Chain *c, Py_ssize_t stage)
{
    return PyTuple_GET_ITEM(c->names, stage);
}

/* The name scikit-learn's first check_array would use. */
static PyObject *
first_name(mf_Chain *c)
{
    return stage_name(c, 0) != Py_None ? stage_name(c, 0) : stage_name(c, c->n_steps);
}

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
 * cannot read); the first stage's own prefix goes before that message. */
static PyObject *
convert_to_double(mf_Chain *c, PyObject *arr)
{
    PyObject *out = PyArray_FromAny(arr, PyArray_DescrFromType(NPY_DOUBLE), 0, 0,
                                    NPY_ARRAY_FORCECAST | NPY_ARRAY_ALIGNED |
                                    NPY_ARRAY_NOTSWAPPED, NULL);
    if (out == NULL && c->string_prefix != NULL &&
        PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyObject *type, *value, *tb, *text;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        text = value != NULL ? PyObject_Str(value) : NULL;
        if (text != NULL) {
            PyErr_Format(PyExc_ValueError, "%U%U", c->string_prefix, text);
        }
        Py_XDECREF(text);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    return out;
}

/* Validates X and describes it; *hold owns whatever array is read. */
static int
chain_input(mf_Chain *c, PyObject *X, PyArrayObject **hold, mf_input *in)
{
    PyObject *obj;
    PyArrayObject *arr;
    char kind;

    if (PyArray_Check(X)) {
        if (c->names_warning != NULL) {
            const char *text = PyUnicode_AsUTF8(c->names_warning);
            if (text == NULL || PyErr_WarnEx(PyExc_UserWarning, text, 1) < 0) {
                return -1;
            }
        }
        Py_INCREF(X);
        obj = X;
    }
    else if (c->coerce != NULL) {
        obj = PyObject_CallOneArg(c->coerce, X);
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
    arr = (PyArrayObject *)obj;
    kind = PyArray_DESCR(arr)->kind;
    if (kind == 'c') {
        PyErr_Format(PyExc_ValueError, "Complex data not supported\n%S\n", obj);
        Py_DECREF(obj);
        return -1;
    }
    if ((kind == 'U' || kind == 'S' || kind == 'V') && c->strings != MF_STRINGS_CONVERT) {
        if (c->strings == MF_STRINGS_IMPUTER) {
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
        Py_DECREF(obj);
        return -1;
    }
    if (!supported_type(PyArray_TYPE(arr))) {
        obj = convert_to_double(c, obj);
        Py_DECREF(arr);
        if (obj == NULL) {
            return -1;
        }
        arr = (PyArrayObject *)obj;
    }
    else if (!PyArray_ISALIGNED(arr) || !PyArray_ISNOTSWAPPED(arr)) {
        PyArray_Descr *native = PyArray_DescrNewByteorder(PyArray_DESCR(arr), NPY_NATIVE);
        if (native == NULL) {
            Py_DECREF(arr);
            return -1;
        }
        obj = PyArray_FromArray(arr, native, NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED);
        Py_DECREF(arr);
        if (obj == NULL) {
            return -1;
        }
        arr = (PyArrayObject *)obj;
    }
    *hold = arr;
    in->data = PyArray_BYTES(arr);
    in->type_num = PyArray_TYPE(arr);
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
                     PyArray_NDIM(arr), first_name(c));
        return -1;
    }
    if (in->n_rows < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 sample(s) (shape=(0, %zd)) while a minimum of "
                     "1 is required by %U.", (Py_ssize_t)in->n_cols, first_name(c));
        return -1;
    }
    if (in->n_cols < 1) {
        PyErr_Format(PyExc_ValueError,
                     "Found array with 0 feature(s) (shape=(%zd, 0)) while a minimum of "
                     "1 is required by %U.", (Py_ssize_t)in->n_rows, first_name(c));
        return -1;
    }
    if (in->n_cols != c->n_features) {
        PyErr_Format(PyExc_ValueError,
                     "X has %zd features, but %U is expecting %zd features as input.",
                     (Py_ssize_t)in->n_cols, first_name(c), c->n_features);
        return -1;
    }
    return 0;
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
static void
gather(const mf_input *in, npy_intp r0, npy_intp nr, double *dst)
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

/* ---- running ------------------------------------------------------------------- */

typedef struct {
    const mf_Chain *c;
    mf_input in;
    unsigned char stage_type[MF_MAX_STEPS + 1];   /* T_* read by each stage */
    int what;
    char *out;               /* output rows (doubles or floats) or labels */
    int out_f32;
    npy_intp out_width;      /* items per output row */
    npy_intp *index_out;     /* label indices, for object classes */
    const char *class_data;  /* label bytes, for other classes */
    npy_intp class_size;
    /* threads take blocks of rows in turn, so a thread the scheduler starts
     * late (a busy machine) takes fewer instead of holding up the call */
    atomic_llong next_block;
    npy_intp n_blocks;
} mf_job;

/* A thread's part of a job: every block in order, or (claim) blocks taken
 * from job->next_block in turn with the other threads. */
typedef struct {
    mf_job *job;
    int claim;
    mf_err_kind err;
} mf_task;

static void
store(const mf_job *job, npy_intp row, const double *values, npy_intp n)
{
    npy_intp j;
    if (job->out_f32) {
        float *dst = (float *)job->out + row * job->out_width;
        for (j = 0; j < n; j++) {
            dst[j] = (float)values[j];
        }
    }
    else {
        memcpy((double *)job->out + row * job->out_width, values, (size_t)n * sizeof(double));
    }
}

/* Rounds a block to float32, as scikit-learn's trees read X. */
static void
round_f32(double *x, Py_ssize_t count)
{
    Py_ssize_t i;
    for (i = 0; i < count; i++) {
        x[i] = (double)(float)x[i];
    }
}

static void
final_raw(const mf_Chain *c, const double *x, Py_ssize_t n_rows, double *raw)
{
    if (c->final_kind == MF_FINAL_LINEAR) {
        mf_linear_raw(&c->linear, x, n_rows, raw);
    }
    else {
        mf_forest_raw(&c->forest, x, n_rows, raw);
    }
}

static int
final_casts(const mf_Chain *c)
{
    return c->final_kind == MF_FINAL_FOREST && c->forest.cast_f32;
}

/* Checks what step s is about to read.  The encoder of HistGradientBoosting
 * lets anything through but infinity in a categorical column, which its
 * OrdinalEncoder refuses. */
static int
check_step(const mf_step *s, const double *x, npy_intp n_rows, Py_ssize_t width,
           mf_err_kind *err)
{
    npy_intp r;
    Py_ssize_t j;
    if (s->kind != MF_STEP_ENCODE) {
        return mf_check_block(s->accept, x, n_rows * width, err);
    }
    for (r = 0; r < n_rows; r++) {
        for (j = 0; j < s->n_cat; j++) {
            if (isinf(x[r * width + s->perm[j]])) {
                *err = MF_ERR_INF;
                return 1;
            }
        }
    }
    return 0;
}

/* Runs rows [start, stop).  Returns 0, or 1 with task->err set when a stage
 * refused its input (the caller then works out which stage, exactly). */
static int
run_range(mf_task *task)
{
    mf_job *job = task->job;
    const mf_Chain *c = job->c;
    npy_intp n = job->in.n_rows, br = c->block_rows, r0, nr, i, next = 0;
    Py_ssize_t k = c->n_classes > 0 ? c->n_classes : 1;
    size_t need;
    double stack_buf[1024];
    double *mem, *a, *b, *raw, *proba;
    npy_intp *idx;
    int result = 0;

    if (n < br) {
        br = n;
    }
    need = (size_t)(2 * br * c->max_width + br * c->n_raw + br * k + br);
    mem = need <= sizeof(stack_buf) / sizeof(double) ? stack_buf
                                                      : malloc(need * sizeof(double));
    if (mem == NULL) {
        task->err = MF_ERR_NOMEM;
        return 1;
    }
    a = mem;
    b = a + br * c->max_width;
    raw = b + br * c->max_width;
    proba = raw + br * c->n_raw;
    idx = (npy_intp *)(proba + br * k);

    for (;;) {
        Py_ssize_t s, width = c->n_features;
        long long block = task->claim ? atomic_fetch_add(&job->next_block, 1) : next++;
        if (block >= job->n_blocks) {
            break;
        }
        r0 = (npy_intp)block * c->block_rows;
        nr = n - r0 < br ? n - r0 : br;
        gather(&job->in, r0, nr, a);
        for (s = 0; s < c->n_steps; s++) {
            double *t;
            if (check_step(&c->steps[s], a, nr, width, &task->err)) {
                result = 1;
                break;
            }
            mf_step_apply(&c->steps[s], a, b, nr, precision_of(job->stage_type[s]));
            width = c->steps[s].n_out;
            t = a;
            a = b;
            b = t;
        }
        if (result) {
            break;
        }
        if (job->what == W_TRANSFORM) {
            for (i = 0; i < nr; i++) {
                store(job, r0 + i, a + i * width, width);
            }
            continue;
        }
        if (final_casts(c)) {
            round_f32(a, nr * width);
        }
        if (mf_check_block(c->final_accept, a, nr * width, &task->err)) {
            result = 1;
            break;
        }
        final_raw(c, a, nr, raw);
        switch (job->what) {
        case W_RAW:
        case W_SCORE:
        case W_REGRESS:
            if (c->post_rule == MF_POST_IFOREST) {
                mf_post(c->post_rule, raw, nr * c->n_raw, c->post_denominator,
                        c->post_offset, job->what == W_RAW);
            }
            else if (job->what == W_REGRESS) {
                mf_post(c->post_rule, raw, nr * c->n_raw, 0.0, 0.0, 0);
            }
            for (i = 0; i < nr; i++) {
                store(job, r0 + i, raw + i * c->n_raw, c->n_raw);
            }
            break;
        case W_PROBA:
        case W_LOGPROBA:
            mf_proba(c->proba_rule, raw, nr, c->n_raw, k, proba);
            if (job->what == W_LOGPROBA) {
                /* float32 probabilities are logged as float32 (0 -> -inf) */
                for (i = 0; i < nr * k; i++) {
                    proba[i] = log(job->out_f32 ? (double)(float)proba[i] : proba[i]);
                }
            }
            for (i = 0; i < nr; i++) {
                store(job, r0 + i, proba + i * k, k);
            }
            break;
        default:
            if (c->label_rule == MF_LABEL_PROBA_ARGMAX) {
                mf_proba(c->proba_rule, raw, nr, c->n_raw, k, proba);
                mf_labels(c->label_rule, proba, nr, k, idx);
            }
            else {
                if (c->post_rule == MF_POST_IFOREST) {
                    mf_post(c->post_rule, raw, nr, c->post_denominator, c->post_offset, 1);
                }
                mf_labels(c->label_rule, raw, nr, c->n_raw, idx);
            }
            for (i = 0; i < nr; i++) {
                if (job->index_out != NULL) {
                    job->index_out[r0 + i] = idx[i];
                }
                else {
                    memcpy(job->out + (r0 + i) * job->class_size,
                           job->class_data + idx[i] * job->class_size,
                           (size_t)job->class_size);
                }
            }
            break;
        }
    }
    if (mem != stack_buf) {
        free(mem);
    }
    return result;
}

/* ---- the helper threads ----------------------------------------------------------
 *
 * Starting a thread and joining it costs 40-50 us on a virtual machine, as
 * much as a 100-row forest batch takes: helpers are started once per
 * process, on the first call that splits, and kept.  After a job a helper
 * spins for a while (about a tenth of a millisecond) before it sleeps, so
 * that back-to-back calls find it awake, as ONNX Runtime's and OpenMP's
 * pools do.  One call at a time uses the pool; a concurrent call (another
 * Python thread, the GIL being released) runs on its own thread instead.
 * A forked child (gunicorn's workers) has no helpers: the fork handler
 * resets the pool, and the child starts its own when it needs them. */

#if defined(__x86_64__) || defined(__i386__)
#define MF_CPU_RELAX() __builtin_ia32_pause()
#else
#define MF_CPU_RELAX() ((void)0)
#endif
#define MF_SPIN_ROUNDS 20000

typedef struct {
    pthread_mutex_t job_lock;    /* held by the call using the pool */
    pthread_mutex_t lock;        /* guards the waits below */
    pthread_cond_t wake;         /* helpers wait here for a job */
    pthread_cond_t done;         /* the caller waits here for the helpers */
    int n_helpers;
    mf_task *tasks;              /* helper i runs tasks[i + 1] when i + 1 < n_tasks */
    int n_tasks;
    atomic_ulong generation;     /* one more for each job */
    atomic_int busy;             /* helpers not done with the current job */
} mf_pool;

static mf_pool pool = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, 0, 0, 0,
};

static void
pool_after_fork_child(void)
{
    pthread_mutex_init(&pool.job_lock, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.n_helpers = 0;
    pool.tasks = NULL;
    pool.n_tasks = 0;
    atomic_store(&pool.generation, 0);
    atomic_store(&pool.busy, 0);
}

int
mf_pool_init(void)
{
    return pthread_atfork(NULL, NULL, pool_after_fork_child) == 0 ? 0 : -1;
}

static void *
pool_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned long seen = 0, g;

    for (;;) {
        int spins = 0;
        while ((g = atomic_load(&pool.generation)) == seen && spins < MF_SPIN_ROUNDS) {
            MF_CPU_RELAX();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((g = atomic_load(&pool.generation)) == seen) {
                pthread_cond_wait(&pool.wake, &pool.lock);
            }
            pthread_mutex_unlock(&pool.lock);
        }
        seen = g;
        if (me + 1 < pool.n_tasks) {
            run_range(&pool.tasks[me + 1]);
        }
        if (atomic_fetch_sub(&pool.busy, 1) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Runs tasks[0] here and the others on helpers; with no pool to be had
 * (another call has it, or no helper could start), tasks[0] claims every
 * block itself.  Called without the GIL. */
static void
pool_run(mf_task *tasks, int n_tasks)
{
    int spins = 0;
    if (pthread_mutex_trylock(&pool.job_lock) != 0) {
        run_range(&tasks[0]);       /* another call has the pool */
    }
    else {
        while (pool.n_helpers < n_tasks - 1) {
            pthread_t thread;
            pthread_attr_t attr;
            int ok = pthread_attr_init(&attr) == 0;
            ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
            ok = ok && pthread_create(&thread, &attr, pool_main,
                                      (void *)(intptr_t)pool.n_helpers) == 0;
            pthread_attr_destroy(&attr);
            if (!ok) {
                break;
            }
            pool.n_helpers++;
        }
        if (pool.n_helpers > 0) {
            pool.tasks = tasks;
            pool.n_tasks = n_tasks;
            atomic_store(&pool.busy, pool.n_helpers);
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.generation, 1);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
        }
        run_range(&tasks[0]);
        while (atomic_load(&pool.busy) > 0 && spins < MF_SPIN_ROUNDS) {
            MF_CPU_RELAX();
            spins++;
        }
        if (atomic_load(&pool.busy) > 0) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.busy) > 0) {
                pthread_cond_wait(&pool.done, &pool.lock);
            }
            pthread_mutex_unlock(&pool.lock);
        }
        pool.tasks = NULL;
        pool.n_tasks = 0;
        pthread_mutex_unlock(&pool.job_lock);
    }
}

/* Below this much work (values touched) a call keeps the GIL; above the
 * second, rows are split across threads. */
#define MF_NOGIL_MIN_WORK    (1 << 14)
/* about a millisecond of work: below it a busy machine's scheduling of a
 * second thread costs more than the thread gives */
#define MF_PARALLEL_MIN_WORK (1 << 20)
/* Forests: a walk step costs about a nanosecond and a half, and waking a
 * helper pays for itself from about 60 us of walks: a 100-tree forest of
 * depth 10 splits 100-row batches. */
#define MF_PARALLEL_MIN_TREE_STEPS 40000
#define MF_MAX_THREADS 64

static npy_intp
work_per_row(const mf_Chain *c)
{
    npy_intp w = c->n_features;
    Py_ssize_t s;
    for (s = 0; s < c->n_steps; s++) {
        w += c->steps[s].n_out;
    }
    if (c->final_kind == MF_FINAL_LINEAR) {
        w += c->linear.n_features * c->linear.n_outputs;
    }
    else if (c->final_kind == MF_FINAL_FOREST) {
        /* a walk is a handful of dependent loads per level */
        w += c->forest.n_trees * (8 + c->forest.n_values);
    }
    return w;
}

static int
worth_threads(const mf_Chain *c, npy_intp n, double work)
{
    if (c->final_kind == MF_FINAL_FOREST &&
        (double)n * (double)c->forest.steps >= MF_PARALLEL_MIN_TREE_STEPS) {
        return 1;
    }
    return work >= MF_PARALLEL_MIN_WORK;
}

/* Runs the job over all rows; returns 0, 1 if a stage refused its input, or
 * 2 if a thread could not get memory for its buffers.  With threads, every
 * thread (this one too) takes blocks of rows in turn until none is left; a
 * thread that cannot be started leaves its share to the others. */
static int
run_job(mf_job *job)
{
    npy_intp n = job->in.n_rows, br = job->c->block_rows;
    npy_intp blocks = (n + br - 1) / br;
    double work = (double)n * (double)work_per_row(job->c);
    int nthreads = 1, t, failed = 0;
    mf_task tasks[MF_MAX_THREADS];

    if (mf_num_threads > 1 && blocks > 1 && work >= MF_NOGIL_MIN_WORK &&
        worth_threads(job->c, n, work)) {
        nthreads = mf_num_threads < MF_MAX_THREADS ? mf_num_threads : MF_MAX_THREADS;
        if (blocks < nthreads) {
            nthreads = (int)blocks;
        }
    }
    atomic_init(&job->next_block, 0);
    job->n_blocks = blocks;
    for (t = 0; t < nthreads; t++) {
        tasks[t].job = job;
        tasks[t].claim = nthreads > 1;
        tasks[t].err = MF_ERR_NONE;
    }
    if (work < MF_NOGIL_MIN_WORK) {
        run_range(&tasks[0]);
    }
    else {
        Py_BEGIN_ALLOW_THREADS
        if (nthreads > 1) {
            pool_run(tasks, nthreads);
        }
        else {
            run_range(&tasks[0]);
        }
        Py_END_ALLOW_THREADS
    }
    for (t = 0; t < nthreads; t++) {
        if (tasks[t].err == MF_ERR_NOMEM) {
            failed = 2;
        }
        else if (tasks[t].err != MF_ERR_NONE && failed == 0) {
            failed = 1;
        }
    }
    return failed;
}

/* After a refusal: which stage refuses first over all rows, and with which
 * message (NaN before inf), as scikit-learn checks a whole stage at a time. */
static int
diagnose(const mf_job *job, Py_ssize_t *stage_out, mf_err_kind *kind_out)
{
    const mf_Chain *c = job->c;
    Py_ssize_t n_stages = c->n_steps + (job->what != W_TRANSFORM ? 1 : 0);
    Py_ssize_t first = n_stages, s;
    double *a = NULL, *b = NULL;
    char *nan_seen = NULL, *inf_seen = NULL;
    npy_intp r;
    int found = 0;

    a = PyMem_Malloc((size_t)c->max_width * sizeof(double));
    b = PyMem_Malloc((size_t)c->max_width * sizeof(double));
    nan_seen = PyMem_Calloc((size_t)n_stages + 1, 1);
    inf_seen = PyMem_Calloc((size_t)n_stages + 1, 1);
    if (a == NULL || b == NULL || nan_seen == NULL || inf_seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (r = 0; r < job->in.n_rows; r++) {
        Py_ssize_t width = c->n_features;
        gather(&job->in, r, 1, a);
        for (s = 0; s < n_stages && s <= first; s++) {
            mf_accept accept = s < c->n_steps ? c->steps[s].accept : c->final_accept;
            mf_err_kind e1 = MF_ERR_NONE, e2 = MF_ERR_NONE;
            double *t;
            /* record NaN and inf separately: the message prefers NaN */
            if (s == c->n_steps && final_casts(c)) {
                round_f32(a, width);
            }
            if (mf_check_block(MF_ACCEPT_NAN, a, width, &e1)) {
                inf_seen[s] = 1;
            }
            if (mf_check_block(MF_ACCEPT_FINITE, a, width, &e2) && e2 == MF_ERR_NAN) {
                nan_seen[s] = 1;
            }
            if (s < c->n_steps ? check_step(&c->steps[s], a, 1, width, &e1)
                               : mf_check_block(accept, a, width, &e1)) {
                if (s < first) {
                    first = s;
                }
                break;
            }
            if (s == c->n_steps) {
                break;
            }
            mf_step_apply(&c->steps[s], a, b, 1, precision_of(job->stage_type[s]));
            width = c->steps[s].n_out;
            t = a;
            a = b;
            b = t;
        }
    }
    if (first < n_stages) {
        mf_accept accept = first < c->n_steps ? c->steps[first].accept : c->final_accept;
        *stage_out = first;
        *kind_out = (accept == MF_ACCEPT_FINITE && nan_seen[first]) ? MF_ERR_NAN
                                                                   : MF_ERR_INF;
        found = 1;
    }
    else {
        PyErr_SetString(PyExc_RuntimeError, "mlfast: a refused value could not be "
                        "found again (please report this)");
    }
done:
    PyMem_Free(a);
    PyMem_Free(b);
    PyMem_Free(nan_seen);
    PyMem_Free(inf_seen);
    return found;
}

static void
raise_refusal(mf_job *job, PyArrayObject *X)
{
    Py_ssize_t stage;
    mf_err_kind kind;
    PyObject *name;

    if (!diagnose(job, &stage, &kind)) {
        return;
    }
    name = stage_name((mf_Chain *)job->c, stage);
    if (kind == MF_ERR_NAN) {
        PyErr_Format(
            PyExc_ValueError,
            "Input X contains NaN.\n%U does not accept missing values encoded as NaN "
            "natively. For supervised learning, you might want to consider "
            "sklearn.ensemble.HistGradientBoostingClassifier and Regressor which accept "
            "missing values encoded as NaNs natively. Alternatively, it is possible to "
            "preprocess the data, for instance by using an imputer transformer in a "
            "pipeline or drop samples with missing values. See "
            "https://scikit-learn.org/stable/modules/impute.html You can find a list of "
            "all estimators that handle NaN values at the following page: "
            "https://scikit-learn.org/stable/modules/impute.html"
            "#estimators-that-handle-nan-values", name);
    }
    else {
        /* check_array converts to float first, keeping float16/32; trees
         * convert to float32 */
        const char *dt = type_name(job->stage_type[stage]);
        if (stage == job->c->n_steps && final_casts(job->c)) {
            dt = "float32";
        }
        /* the encoder's own check_array names no input */
        int unnamed = stage < job->c->n_steps &&
                      job->c->steps[stage].kind == MF_STEP_ENCODE;
        PyErr_Format(PyExc_ValueError,
                     "Input %scontains infinity or a value too large for dtype('%s').",
                     unnamed ? "" : "X ", dt);
    }
}

static PyObject *
chain_call(mf_Chain *c, PyObject *X, int what)
{
    PyArrayObject *hold = NULL, *out = NULL, *result = NULL;
    npy_intp *index = NULL;
    mf_job job;
    npy_intp dims[2];
    int ndim = 2, final_type, small, cast_to = -1;
    Py_ssize_t s;

    if (c->owners == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Chain is not initialized");
        return NULL;
    }
    memset(&job, 0, sizeof(job));
    job.c = c;
    job.what = what;
    if (chain_input(c, X, &hold, &job.in) < 0) {
        goto done;
    }
    job.stage_type[0] = (unsigned char)type_of_input(job.in.type_num);
    for (s = 0; s < c->n_steps; s++) {
        job.stage_type[s + 1] = (unsigned char)step_out_type(&c->steps[s], job.stage_type[s]);
    }
    final_type = job.stage_type[c->n_steps];
    /* numpy's promotion of X @ coef_ with a float32 coef_: float32 for
     * float16/32 and for integers of at most 16 bits */
    small = final_type == DT_F32 || final_type == DT_F16 ||
            (final_type == DT_INT && (job.in.type_num == NPY_BOOL ||
                                     job.in.type_num == NPY_BYTE ||
                                     job.in.type_num == NPY_UBYTE ||
                                     job.in.type_num == NPY_SHORT ||
                                     job.in.type_num == NPY_USHORT));
    dims[0] = job.in.n_rows;
    switch (what) {
    case W_TRANSFORM:
        dims[1] = c->out_width;
        job.out_f32 = final_type == DT_F32;
        if (final_type == DT_F16) {
            cast_to = NPY_HALF;
        }
        else if (final_type == DT_INT) {
            cast_to = job.in.type_num;
        }
        break;
    case W_RAW:
    case W_REGRESS:
    case W_SCORE:
        dims[1] = c->n_raw;
        job.out_f32 = c->coef_f32 && small;
        if (c->raw_1d && c->n_raw == 1) {
            ndim = 1;
        }
        break;
    case W_PROBA:
    case W_LOGPROBA:
        dims[1] = c->n_classes;
        job.out_f32 = c->coef_f32 && small;
        break;
    default:
        ndim = 1;
        break;
    }
    if (what == W_LABEL) {
        PyArray_Descr *descr = PyArray_DESCR(c->classes);
        if (PyDataType_REFCHK(descr)) {
            index = PyMem_Malloc((size_t)dims[0] * sizeof(npy_intp));
            if (index == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            job.index_out = index;
        }
        else {
            Py_INCREF(descr);
            out = (PyArrayObject *)PyArray_NewFromDescr(&PyArray_Type, descr, 1, dims,
                                                        NULL, NULL, 0, NULL);
            if (out == NULL) {
                goto done;
            }
            job.out = PyArray_BYTES(out);
            job.class_data = PyArray_BYTES(c->classes);
            job.class_size = PyArray_ITEMSIZE(c->classes);
        }
    }
    else {
        out = (PyArrayObject *)PyArray_SimpleNew(ndim, dims,
                                                 job.out_f32 ? NPY_FLOAT : NPY_DOUBLE);
        if (out == NULL) {
            goto done;
        }
        job.out = PyArray_BYTES(out);
        job.out_width = dims[1];
    }
    switch (run_job(&job)) {
    case 0:
        break;
    case 1:
        raise_refusal(&job, hold);
        goto done;
    default:
        PyErr_NoMemory();
        goto done;
    }
    if (index != NULL) {
        npy_intp i;
        PyObject **src = (PyObject **)PyArray_DATA(c->classes), **dst;
        out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_OBJECT);
        if (out == NULL) {
            goto done;
        }
        dst = (PyObject **)PyArray_DATA(out);
        for (i = 0; i < dims[0]; i++) {
            PyObject *label = src[index[i]] != NULL ? src[index[i]] : Py_None;
            Py_INCREF(label);
            Py_XSETREF(dst[i], label);
        }
    }
    if (cast_to >= 0) {
        /* float16, or integers an imputer kept: numpy's cast of values that
         * are already what scikit-learn computes */
        result = (PyArrayObject *)PyArray_CastToType(out, PyArray_DescrFromType(cast_to), 0);
        goto done;
    }
    result = out;
    out = NULL;
done:
    PyMem_Free(index);
    Py_XDECREF(out);
    Py_XDECREF(hold);
    return (PyObject *)result;
}

static PyObject *
chain_predict(mf_Chain *c, PyObject *X)
{
    return chain_call(c, X, c->label_rule != MF_LABEL_NONE ? W_LABEL : W_REGRESS);
}

/* The builders decide which of these an estimator has (Model binds only
 * those); the Chain itself refuses only what it cannot compute. */
static PyObject *
chain_decision_function(mf_Chain *c, PyObject *X)
{
    if (c->final_kind == MF_FINAL_NONE) {
        PyErr_SetString(PyExc_AttributeError, "this model has no decision_function");
        return NULL;
    }
    return chain_call(c, X, W_RAW);
}

static PyObject *
chain_score_samples(mf_Chain *c, PyObject *X)
{
    if (c->post_rule != MF_POST_IFOREST) {
        PyErr_SetString(PyExc_AttributeError, "this model has no score_samples");
        return NULL;
    }
    return chain_call(c, X, W_SCORE);
}

static PyObject *
chain_predict_proba(mf_Chain *c, PyObject *X)
{
    if (c->proba_rule == MF_PROBA_NONE) {
        PyErr_SetString(PyExc_AttributeError, "this model has no predict_proba");
        return NULL;
    }
    return chain_call(c, X, W_PROBA);
}

static PyObject *
chain_predict_log_proba(mf_Chain *c, PyObject *X)
{
    if (c->proba_rule == MF_PROBA_NONE) {
        PyErr_SetString(PyExc_AttributeError, "this model has no predict_log_proba");
        return NULL;
    }
    return chain_call(c, X, W_LOGPROBA);
}

static PyObject *
chain_transform(mf_Chain *c, PyObject *X)
{
    if (c->final_kind != MF_FINAL_NONE) {
        PyErr_SetString(PyExc_AttributeError, "this model has no transform");
        return NULL;
    }
    return chain_call(c, X, W_TRANSFORM);
}

static PyObject *
chain_get_packed(mf_Chain *c, void *closure)
{
    PyObject *v = c->packed != NULL ? c->packed : Py_None;
    Py_INCREF(v);
    return v;
}

static PyGetSetDef chain_getset[] = {
    {"packed", (getter)chain_get_packed, NULL,
     "(nodes, roots, values) of a forest's packed layout, or None", NULL},
    {NULL}
};

static PyMethodDef chain_methods[] = {
    {"predict", (PyCFunction)chain_predict, METH_O, "Labels or regression values."},
    {"decision_function", (PyCFunction)chain_decision_function, METH_O, "Raw scores."},
    {"predict_proba", (PyCFunction)chain_predict_proba, METH_O, "Class probabilities."},
    {"predict_log_proba", (PyCFunction)chain_predict_log_proba, METH_O,
     "Logarithm of the class probabilities."},
    {"transform", (PyCFunction)chain_transform, METH_O, "Output of the steps."},
    {"score_samples", (PyCFunction)chain_score_samples, METH_O,
     "Isolation forest scores (the opposite of the anomaly score)."},
    {NULL, NULL, 0, NULL}
};

static PyMemberDef chain_members[] = {
    {"n_features", T_PYSSIZET, offsetof(mf_Chain, n_features), READONLY,
     "columns the chain reads"},
    {"n_outputs", T_PYSSIZET, offsetof(mf_Chain, n_raw), READONLY,
     "raw score columns of the final estimator"},
    {NULL}
};

PyTypeObject mf_ChainType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Chain",
    .tp_basicsize = sizeof(mf_Chain),
    .tp_dealloc = (destructor)chain_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Chain(n_features, steps, final=None, *, label_rule=0, proba_rule=0, "
              "classes=None, raw_1d=False, coef_f32=False, coerce=None, post_rule=0, "
              "post_params=(0.0, 0.0))\n\n"
              "A model as transform steps and a final estimator, run in C. "
              "Built by mlfast's builders; not meant to be made by hand.",
    .tp_traverse = (traverseproc)chain_traverse,
    .tp_clear = (inquiry)chain_clear,
    .tp_methods = chain_methods,
    .tp_members = chain_members,
    .tp_getset = chain_getset,
    .tp_init = (initproc)chain_init,
    .tp_new = PyType_GenericNew,
};
