/*
 * graph.c -- the Graph type: a model as a graph of ops, built from the
 * builders' dataclasses, checked once, then run by run.c.
 *
 * Construction reads every op's fields by name (the tables of mf_op_def),
 * lets the op check them against its input width, and lays out the slots
 * of a block of rows: node k's outputs for every row of a block sit
 * together, row-major, at block_rows * base[k].  A node whose input is the
 * whole output of one earlier node, in order, reads it there in place (a
 * chain copies nothing between its steps); any other input is gathered.
 * Everything a builder or a pickled Model hands over is checked here: slot
 * indices point backwards only (so the graph has no cycle), widths agree,
 * classes fit the labels.
 */
#include "mlfast.h"
#include <stdarg.h>
#include <string.h>
#include <structmember.h>

/* Every op kind (mlfast.h declares them). */
// clang-format off: one op a line (clang-format would lay them out in columns)
static const mf_op_def *const op_defs[] = {
    &mf_op_affine,
    &mf_op_impute,
    &mf_op_encode,
    &mf_op_linear,
    &mf_op_forest,
    &mf_op_forest_packed,
    &mf_op_proba,
    &mf_op_labels,
    &mf_op_post,
    &mf_op_average,
    &mf_op_vote,
    &mf_op_take,
    &mf_op_bag,
    &mf_op_samme,
    &mf_op_wmedian,
    &mf_op_onehot,
    &mf_op_constant,
    &mf_op_check,
    &mf_op_catmap,
    &mf_op_keyfill,
    &mf_op_keymissing,
    &mf_op_tokey,
    &mf_op_calibrate,
    &mf_op_normalize,
    &mf_op_ovr_argmax,
    &mf_op_ovo_votes,
    &mf_op_ecoc,
    &mf_op_cast,
    &mf_op_function,
    &mf_op_quadform,
    &mf_op_mixture,
    &mf_op_kernel_dual,
    &mf_op_interp,
    &mf_op_rownorm,
    &mf_op_bins,
    &mf_op_center_kernel,
    &mf_op_power,
    &mf_op_nearest,
    &mf_op_bisect,
    &mf_op_sparse,
    &mf_op_xgb_link,
    &mf_op_gaussian_nb,
    &mf_op_bernoulli_nb,
    &mf_op_categorical_nb,
    &mf_op_nb_log_proba,
    &mf_op_svm,
    &mf_op_svm_post,
    &mf_op_qda,
    &mf_op_da_post,
    &mf_op_activation,
    &mf_op_knn,
    &mf_op_knn_vote,
    &mf_op_knn_mean,
    &mf_op_spline,
    NULL,
};
// clang-format on

const char *const mf_method_names[MF_N_METHODS] = {
    "predict",   "predict_proba", "predict_log_proba",       "decision_function",
    "transform", "score_samples", "predict_joint_log_proba",
};

/* Caps on what a graph may hold, so that sizes below never overflow. */
#define MF_MAX_NODES  (1 << 20)
#define MF_MAX_SLOTS  ((Py_ssize_t)1 << 26)

/* ---- reading fields ------------------------------------------------------------- */

/* Checks that obj is an ndarray the kernels can read in place; keeps it
 * alive in owners (when owners is not NULL) and returns its data. */
int
mf_take_array(PyObject *owners, PyObject *obj, int type_num, int ndim, const char *what,
              const void **data, Py_ssize_t *dim0, Py_ssize_t *dim1)
{
    PyArrayObject *arr = (PyArrayObject *)obj;
    PyArray_Descr *want;
    int ok;

    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an ndarray, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    want = PyArray_DescrFromType(type_num);
    if (want == NULL) {
        return -1;
    }
    ok = PyArray_NDIM(arr) == ndim && PyArray_IS_C_CONTIGUOUS(arr) && PyArray_ISALIGNED(arr) &&
         PyArray_ISNOTSWAPPED(arr) && PyArray_TYPE(arr) == type_num;
    if (!ok) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a C-contiguous, aligned %d-D array of "
                     "%S",
                     what, ndim, (PyObject *)want);
        Py_DECREF(want);
        return -1;
    }
    Py_DECREF(want);
    if (owners != NULL && PyList_Append(owners, obj) < 0) {
        return -1;
    }
    *data = PyArray_DATA(arr);
    if (dim0 != NULL) {
        *dim0 = PyArray_DIM(arr, 0);
    }
    if (dim1 != NULL) {
        *dim1 = ndim > 1 ? PyArray_DIM(arr, 1) : 0;
    }
    return 0;
}

/* Reads one field of `obj` into the op struct at `op`.  Transient arrays go
 * to `transient` (alive until prepare is done), the others to owners. */
static int
read_field(const mf_op_def *def, const mf_field *f, PyObject *obj, char *op, PyObject *owners,
           PyObject *transient)
{
    char what[128];
    PyObject *v = PyObject_GetAttrString(obj, f->name);
    int result = -1;

    PyOS_snprintf(what, sizeof(what), "%s.%s", def->name, f->name);
    if (v == NULL) {
        goto done;
    }
    switch (f->kind) {
    case MF_FIELD_INT: {
        Py_ssize_t n;
        if (!PyLong_Check(v) || PyBool_Check(v)) {
            PyErr_Format(PyExc_TypeError, "%s must be an int", what);
            goto done;
        }
        n = PyLong_AsSsize_t(v);
        if (n == -1 && PyErr_Occurred()) {
            goto done;
        }
        memcpy(op + f->offset, &n, sizeof(n));
        break;
    }
    case MF_FIELD_FLOAT: {
        double d;
        if (!PyFloat_Check(v) && !(PyLong_Check(v) && !PyBool_Check(v))) {
            PyErr_Format(PyExc_TypeError, "%s must be a float", what);
            goto done;
        }
        d = PyFloat_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        memcpy(op + f->offset, &d, sizeof(d));
        break;
    }
    case MF_FIELD_BOOL: {
        int b;
        if (!PyBool_Check(v)) {
            PyErr_Format(PyExc_TypeError, "%s must be True or False", what);
            goto done;
        }
        b = v == Py_True;
        memcpy(op + f->offset, &b, sizeof(b));
        break;
    }
    case MF_FIELD_ARRAY: {
        const void *data = NULL;
        Py_ssize_t d0 = 0, d1 = 0;
        if (v == Py_None) {
            if (!(f->flags & MF_FIELD_OPTIONAL)) {
                PyErr_Format(PyExc_TypeError, "%s must be an array, not None", what);
                goto done;
            }
        }
        else if (mf_take_array((f->flags & MF_FIELD_TRANSIENT) ? transient : owners, v, f->type_num,
                               f->ndim, what, &data, &d0, &d1) < 0) {
            goto done;
        }
        memcpy(op + f->offset, &data, sizeof(data));
        if (f->dim0 != MF_NO_DIM) {
            memcpy(op + f->dim0, &d0, sizeof(d0));
        }
        if (f->dim1 != MF_NO_DIM) {
            memcpy(op + f->dim1, &d1, sizeof(d1));
        }
        break;
    }
    default:
        PyErr_Format(PyExc_SystemError, "%s: unknown field kind", what);
        goto done;
    }
    result = 0;
done:
    Py_XDECREF(v);
    return result;
}

static const mf_op_def *
find_op(PyObject *op_obj)
{
    PyObject *name = PyObject_GetAttrString(op_obj, "op_name");
    const mf_op_def *const *d;
    const mf_op_def *found = NULL;

    if (name == NULL) {
        return NULL;
    }
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "op_name must be a str");
        Py_DECREF(name);
        return NULL;
    }
    for (d = op_defs; *d != NULL && found == NULL; d++) {
        if (PyUnicode_CompareWithASCIIString(name, (*d)->name) == 0) {
            found = *d;
        }
    }
    if (found == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "unknown op %R", name);
    }
    Py_DECREF(name);
    return found;
}

/* ---- construction --------------------------------------------------------------- */

static int
get_bool_attr(PyObject *obj, const char *name, int *out)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL) {
        return -1;
    }
    if (!PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "node.%s must be True or False", name);
        Py_DECREF(v);
        return -1;
    }
    *out = v == Py_True;
    Py_DECREF(v);
    return 0;
}

/* The node owning each slot, for laying out gathers. */
static Py_ssize_t
slot_owner(const mf_Graph *g, Py_ssize_t upto, int64_t slot)
{
    Py_ssize_t lo = 0, hi = upto;     /* the last node whose base <= slot */
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo + 1) / 2;
        if (g->nodes[mid].base <= slot) {
            lo = mid;
        }
        else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* For each slot: the first slot of the node it belongs to, its column in
 * that node and the node's width (in a block, node k's rows lie together
 * from block_rows * base[k], so these find any slot of any row);
 * *direct: the node whose whole output the slots are, in order, or -1. */
static int
layout_gather(const mf_Graph *g, Py_ssize_t upto, const int64_t *slots, Py_ssize_t n,
              npy_intp **base_out, npy_intp **col_out, npy_intp **stride_out, Py_ssize_t *direct)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(npy_intp);
    npy_intp *base = PyMem_Malloc(bytes), *col = PyMem_Malloc(bytes);
    npy_intp *stride = PyMem_Malloc(bytes);
    Py_ssize_t i, first = -1;
    int whole = n > 0;

    if (base == NULL || col == NULL || stride == NULL) {
        PyMem_Free(base);
        PyMem_Free(col);
        PyMem_Free(stride);
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++) {
        Py_ssize_t k = slot_owner(g, upto, slots[i]);
        const mf_node *src = &g->nodes[k];
        base[i] = (npy_intp)src->base;
        col[i] = (npy_intp)(slots[i] - src->base);
        stride[i] = (npy_intp)src->n_out;
        if (i == 0) {
            first = k;
        }
        whole = whole && k == first && slots[i] == src->base + i;
    }
    *direct = whole && n == g->nodes[first].n_out ? first : -1;
    *base_out = base;
    *col_out = col;
    *stride_out = stride;
    return 0;
}

/* Reads one node: its op's fields, its inputs, its flags; lets the op
 * check itself against the input width. */
static int
build_node(mf_Graph *g, Py_ssize_t k, PyObject *spec)
{
    mf_node *node = &g->nodes[k];
    PyObject *op_obj = NULL, *inputs = NULL, *name = NULL, *accept = NULL, *width = NULL;
    PyObject *transient = NULL, *made = NULL;
    const mf_field *f;
    Py_ssize_t i, n_in = 0, n_out = 0;
    long acc;
    int result = -1;

    op_obj = PyObject_GetAttrString(spec, "op");
    inputs = PyObject_GetAttrString(spec, "inputs");
    name = PyObject_GetAttrString(spec, "name");
    accept = PyObject_GetAttrString(spec, "accept");
    width = PyObject_GetAttrString(spec, "n_out");
    if (op_obj == NULL || inputs == NULL || name == NULL || accept == NULL || width == NULL) {
        goto done;
    }
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "node %zd: name must be a str", k);
        goto done;
    }
    Py_INCREF(name);
    node->name = name;
    acc = PyLong_Check(accept) ? PyLong_AsLong(accept) : -1;
    if (acc < MF_ACCEPT_FINITE || acc > MF_ACCEPT_ANY) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "node %zd: accept must be 0, 1 or 2", k);
        }
        goto done;
    }
    node->accept = (mf_accept)acc;
    if (get_bool_attr(spec, "cast_f32", &node->cast_f32) < 0 ||
        get_bool_attr(spec, "unnamed", &node->unnamed) < 0) {
        goto done;
    }
    if (mf_take_array(g->owners, inputs, NPY_INT64, 1, "node.inputs", (const void **)&node->inputs,
                      &n_in, NULL) < 0) {
        goto done;
    }
    if (n_in < 1) {
        PyErr_Format(PyExc_ValueError, "node %zd reads no column", k);
        goto done;
    }
    for (i = 0; i < n_in; i++) {
        /* slots of earlier nodes only: the graph has no cycle */
        if (node->inputs[i] < 0 || node->inputs[i] >= node->base) {
            PyErr_Format(PyExc_ValueError,
                         "node %zd reads slot %lld, which no earlier "
                         "node writes (%zd slots so far)",
                         k, (long long)node->inputs[i], node->base);
            goto done;
        }
    }
    node->n_in = n_in;
    node->def = find_op(op_obj);
    if (node->def == NULL) {
        goto done;
    }
    for (i = 0; i < n_in; i++) {
        /* a kernel reading keys takes some for pointers: it reads keys only */
        if (g->kinds[node->inputs[i]] != node->def->in_kind) {
            PyErr_Format(PyExc_ValueError, "node %zd (%s) reads %s, but slot %lld holds %s", k,
                         node->def->name, node->def->in_kind == MF_SLOT_KEY ? "keys" : "numbers",
                         (long long)node->inputs[i],
                         g->kinds[node->inputs[i]] == MF_SLOT_KEY ? "keys" : "numbers");
            goto done;
        }
    }
    if (node->def->in_kind == MF_SLOT_KEY && (node->cast_f32 || node->def->check == NULL)) {
        PyErr_Format(PyExc_ValueError,
                     "node %zd (%s) reads keys: they are never rounded "
                     "nor checked as numbers",
                     k, node->def->name);
        goto done;
    }
    node->op = PyMem_Calloc(1, (size_t)node->def->size);
    transient = PyList_New(0);
    if (node->op == NULL || transient == NULL) {
        if (node->op == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    for (f = node->def->fields; f->name != NULL; f++) {
        if (read_field(node->def, f, op_obj, node->op, g->owners, transient) < 0) {
            goto done;
        }
    }
    if (node->def->prepare(node->op, n_in, &n_out, g->owners) < 0) {
        goto done;
    }
    if (n_out < 1 || n_out > MF_MAX_SLOTS - node->base) {
        PyErr_Format(PyExc_ValueError, "node %zd (%s) writes %zd columns", k, node->def->name,
                     n_out);
        goto done;
    }
    if (!PyLong_Check(width) || PyLong_AsSsize_t(width) != n_out) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "node %zd (%s) writes %zd columns, not %R", k,
                         node->def->name, n_out, width);
        }
        goto done;
    }
    node->n_out = n_out;
    if (node->def->cost != NULL) {
        node->def->cost(node->op, n_in, n_out, &node->work, &node->steps);
    }
    else {
        node->work = (double)(n_in + n_out);
        node->steps = 0.0;
    }
    if (node->def->made != NULL) {
        made = node->def->made(node->op);
    }
    else {
        Py_INCREF(Py_None);
        made = Py_None;
    }
    if (made == NULL) {
        goto done;
    }
    PyTuple_SET_ITEM(g->made, k, made);
    result = 0;
done:
    Py_XDECREF(op_obj);
    Py_XDECREF(inputs);
    Py_XDECREF(name);
    Py_XDECREF(accept);
    Py_XDECREF(width);
    Py_XDECREF(transient);
    return result;
}

/* Marks the nodes a list of slots needs and lists them in order. */
static int
plan_output(mf_Graph *g, mf_output *out)
{
    char *need = PyMem_Calloc((size_t)g->n_nodes, 1);
    Py_ssize_t i, k, n = 0;
    int result = -1;

    if (need == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < out->n_cols; i++) {
        need[slot_owner(g, g->n_nodes - 1, out->slots[i])] = 1;
    }
    /* backwards: a node's inputs come before it */
    for (k = g->n_nodes - 1; k > 0; k--) {
        if (!need[k]) {
            continue;
        }
        n++;
        for (i = 0; i < g->nodes[k].n_in; i++) {
            need[slot_owner(g, k - 1, g->nodes[k].inputs[i])] = 1;
        }
    }
    out->plan = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Py_ssize_t));
    if (out->plan == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    out->n_plan = 0;
    out->work = (double)g->n_features;
    out->steps = 0.0;
    for (k = 1; k < g->n_nodes; k++) {
        if (need[k]) {
            out->plan[out->n_plan++] = k;
            out->work += g->nodes[k].work;
            out->steps += g->nodes[k].steps;
        }
    }
    /* the nodes the slots come from, for the type returned */
    memset(need, 0, (size_t)g->n_nodes);
    for (i = 0; i < out->n_cols; i++) {
        need[slot_owner(g, g->n_nodes - 1, out->slots[i])] = 1;
    }
    for (k = 0, n = 0; k < g->n_nodes; k++) {
        n += need[k];
    }
    out->owners = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    if (out->owners == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (k = 0; k < g->n_nodes; k++) {
        if (need[k]) {
            out->owners[out->n_owners++] = k;
        }
    }
    result = layout_gather(g, g->n_nodes - 1, out->slots, out->n_cols, &out->src_base,
                           &out->src_col, &out->src_stride, &out->direct);
done:
    PyMem_Free(need);
    return result;
}

static int
build_output(mf_Graph *g, mf_method m, PyObject *spec)
{
    mf_output *out = &g->outputs[m];
    PyObject *slots = NULL, *classes = NULL;
    Py_ssize_t i;
    int result = -1;

    slots = PyObject_GetAttrString(spec, "slots");
    classes = PyObject_GetAttrString(spec, "classes");
    if (slots == NULL || classes == NULL || get_bool_attr(spec, "squeeze", &out->squeeze) < 0) {
        goto done;
    }
    if (mf_take_array(g->owners, slots, NPY_INT64, 1, "output.slots", (const void **)&out->slots,
                      &out->n_cols, NULL) < 0) {
        goto done;
    }
    for (i = 0; i < out->n_cols; i++) {
        if (out->slots[i] < 0 || out->slots[i] >= g->n_slots) {
            break;     /* reported below */
        }
        if (g->kinds[out->slots[i]] != MF_SLOT_NUM) {
            PyErr_Format(PyExc_ValueError,
                         "%s returns slot %lld, which holds keys: a method "
                         "returns numbers",
                         mf_method_names[m], (long long)out->slots[i]);
            goto done;
        }
    }
    if (out->n_cols < 1) {
        PyErr_Format(PyExc_ValueError, "%s returns no column", mf_method_names[m]);
        goto done;
    }
    for (i = 0; i < out->n_cols; i++) {
        if (out->slots[i] < 0 || out->slots[i] >= g->n_slots) {
            PyErr_Format(PyExc_ValueError, "%s returns slot %lld of %zd", mf_method_names[m],
                         (long long)out->slots[i], g->n_slots);
            goto done;
        }
    }
    if (classes != Py_None) {
        PyArrayObject *cl = (PyArrayObject *)classes;
        if (!PyArray_Check(classes) || PyArray_NDIM(cl) != 1 || PyArray_DIM(cl, 0) < 1 ||
            !PyArray_IS_C_CONTIGUOUS(cl) || !PyArray_ISNOTSWAPPED(cl) || !PyArray_ISALIGNED(cl)) {
            PyErr_Format(PyExc_ValueError, "%s: classes must be a contiguous 1-D array",
                         mf_method_names[m]);
            goto done;
        }
        {
            /* a class index read from a labels node is always in range:
             * below its input width, or 0/1 from a threshold */
            const mf_node *src =
                out->n_cols == 1 ? &g->nodes[slot_owner(g, g->n_nodes - 1, out->slots[0])] : NULL;
            const mf_labels *lb = src != NULL && src->def == &mf_op_labels ? src->op : NULL;
            if (lb == NULL || (lb->rule == MF_LABEL_ARGMAX ? src->n_in > PyArray_DIM(cl, 0)
                                                           : PyArray_DIM(cl, 0) != 2)) {
                PyErr_Format(PyExc_ValueError,
                             "%s: labels must come from one labels node "
                             "that fits the %zd classes",
                             mf_method_names[m], (Py_ssize_t)PyArray_DIM(cl, 0));
                goto done;
            }
        }
        Py_INCREF(classes);
        out->classes = cl;
    }
    if (plan_output(g, out) < 0) {
        goto done;
    }
    out->present = 1;
    result = 0;
done:
    Py_XDECREF(slots);
    Py_XDECREF(classes);
    return result;
}

/* Rows per block: 64, or 1024 when a node (a large forest) reads better in
 * big blocks; fewer when the slots would not fit MF_BLOCK_BYTES. */
static Py_ssize_t
choose_block_rows(const mf_Graph *g, Py_ssize_t widest)
{
    Py_ssize_t rows = MF_BLOCK_ROWS, k, per_row = g->n_slots + widest;
    for (k = 1; k < g->n_nodes; k++) {
        const mf_node *node = &g->nodes[k];
        if (node->def->block_rows != NULL) {
            Py_ssize_t want = node->def->block_rows(node->op);
            if (want > rows) {
                rows = want;
            }
        }
    }
    while (rows > 1 && rows * per_row * (Py_ssize_t)sizeof(double) > MF_BLOCK_BYTES) {
        rows /= 2;
    }
    return rows;
}

static int
optional_str(PyObject *v, PyObject **slot, const char *what)
{
    if (v == Py_None) {
        return 0;
    }
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", what);
        return -1;
    }
    Py_INCREF(v);
    *slot = v;
    return 0;
}

/* The slots' kinds, grown node by node. */
static int
append_kinds(mf_Graph *g, Py_ssize_t *cap, Py_ssize_t n, int kind)
{
    if (g->n_slots + n > *cap) {
        Py_ssize_t want = 2 * (g->n_slots + n);
        uint8_t *grown = PyMem_Realloc(g->kinds, (size_t)want);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        g->kinds = grown;
        *cap = want;
    }
    memset(g->kinds + g->n_slots, kind, (size_t)n);
    return 0;
}

/* The input's key slots: key_columns[t] is the input column of slot
 * n_features + t, each column at most once. */
static int
read_key_columns(mf_Graph *g, PyObject *key_columns)
{
    Py_ssize_t c, t;
    g->key_of_column = PyMem_Malloc((size_t)g->n_features * sizeof(Py_ssize_t));
    g->num_read = PyMem_Calloc((size_t)g->n_features, 1);
    if (g->key_of_column == NULL || g->num_read == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (c = 0; c < g->n_features; c++) {
        g->key_of_column[c] = -1;
    }
    if (key_columns == Py_None) {
        return 0;
    }
    if (mf_take_array(g->owners, key_columns, NPY_INT64, 1, "key_columns",
                      (const void **)&g->key_columns, &g->n_keys, NULL) < 0) {
        return -1;
    }
    if (g->n_keys > g->n_features) {
        PyErr_SetString(PyExc_ValueError, "key_columns: more key slots than columns");
        return -1;
    }
    for (t = 0; t < g->n_keys; t++) {
        int64_t col = g->key_columns[t];
        if (col < 0 || col >= g->n_features || g->key_of_column[col] >= 0) {
            PyErr_Format(PyExc_ValueError,
                         "key_columns[%zd] = %lld is not a column of "
                         "0..%zd, or is listed twice",
                         t, (long long)col, g->n_features - 1);
            return -1;
        }
        g->key_of_column[col] = t;
    }
    return 0;
}

static int
graph_init(mf_Graph *g, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n_features",  "nodes",         "outputs",       "coerce",
                             "strings",     "string_prefix", "names_warning", "first_name",
                             "key_columns", "explain",       "column_names",  NULL};
    PyObject *nodes, *outputs, *coerce = Py_None, *string_prefix = Py_None;
    PyObject *names_warning = Py_None, *first_name = Py_None, *key_columns = Py_None;
    PyObject *explain = Py_None, *column_names = Py_None;
    Py_ssize_t n_features, k, i, widest = 0, kinds_cap = 0;
    int strings = MF_STRINGS_REFUSE, m;

    if (g->owners != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Graph is already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nO!O!|$OiOOOOOO:Graph", kwlist, &n_features,
                                     &PyList_Type, &nodes, &PyDict_Type, &outputs, &coerce,
                                     &strings, &string_prefix, &names_warning, &first_name,
                                     &key_columns, &explain, &column_names)) {
        return -1;
    }
    if (n_features < 1 || n_features > MF_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "n_features must be positive");
        return -1;
    }
    if (PyList_GET_SIZE(nodes) >= MF_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "a graph holds fewer than %d nodes", MF_MAX_NODES);
        return -1;
    }
    if (strings < MF_STRINGS_REFUSE || strings > MF_STRINGS_IMPUTER) {
        PyErr_SetString(PyExc_ValueError, "strings must be 0, 1 or 2");
        return -1;
    }
    g->owners = PyList_New(0);
    if (g->owners == NULL) {
        return -1;
    }
    if (optional_str(string_prefix, &g->string_prefix, "string_prefix") < 0 ||
        optional_str(names_warning, &g->names_warning, "names_warning") < 0 ||
        optional_str(first_name, &g->first_name, "first_name") < 0) {
        return -1;
    }
    g->strings = strings;
    if (coerce != Py_None) {
        Py_INCREF(coerce);
        g->coerce = coerce;
    }
    if (explain != Py_None) {
        if (!PyCallable_Check(explain)) {
            PyErr_SetString(PyExc_TypeError, "explain must be callable");
            return -1;
        }
        Py_INCREF(explain);
        g->explain = explain;
    }
    if (column_names != Py_None) {
        if (!PyTuple_Check(column_names)) {
            PyErr_SetString(PyExc_TypeError, "column_names must be a tuple");
            return -1;
        }
        Py_INCREF(column_names);
        g->column_names = column_names;
    }
    g->n_features = n_features;
    if (read_key_columns(g, key_columns) < 0) {
        return -1;
    }
    g->n_nodes = PyList_GET_SIZE(nodes) + 1;
    g->nodes = PyMem_Calloc((size_t)g->n_nodes, sizeof(mf_node));
    g->made = PyTuple_New(g->n_nodes);
    if (g->nodes == NULL || g->made == NULL) {
        if (g->nodes == NULL) {
            PyErr_NoMemory();
        }
        return -1;
    }
    Py_INCREF(Py_None);
    PyTuple_SET_ITEM(g->made, 0, Py_None);
    g->nodes[0].n_out = n_features + g->n_keys;
    g->nodes[0].direct = -1;
    g->n_slots = 0;
    if (append_kinds(g, &kinds_cap, n_features, MF_SLOT_NUM) < 0) {
        return -1;
    }
    g->n_slots = n_features;
    if (append_kinds(g, &kinds_cap, g->n_keys, MF_SLOT_KEY) < 0) {
        return -1;
    }
    g->n_slots = n_features + g->n_keys;
    for (k = 1; k < g->n_nodes; k++) {
        g->nodes[k].base = g->n_slots;
        g->nodes[k].direct = -1;
        if (build_node(g, k, PyList_GET_ITEM(nodes, k - 1)) < 0) {
            return -1;
        }
        if (append_kinds(g, &kinds_cap, g->nodes[k].n_out, g->nodes[k].def->out_kind) < 0) {
            return -1;
        }
        g->n_slots += g->nodes[k].n_out;
        if (g->nodes[k].n_in > widest) {
            widest = g->nodes[k].n_in;
        }
        /* the input columns whose numbers a node reads: only those are
         * converted (a column of strings read as keys never is) */
        for (i = 0; i < g->nodes[k].n_in; i++) {
            if (g->nodes[k].inputs[i] < n_features) {
                g->num_read[g->nodes[k].inputs[i]] = 1;
            }
        }
    }
    if (g->first_name == NULL) {
        g->first_name = PyUnicode_FromString(g->n_nodes > 1 ? "the model" : "the input");
        if (g->first_name == NULL) {
            return -1;
        }
    }
    g->block_rows = choose_block_rows(g, widest);
    for (k = 1; k < g->n_nodes; k++) {
        mf_node *node = &g->nodes[k];
        if (layout_gather(g, k - 1, node->inputs, node->n_in, &node->src_base, &node->src_col,
                          &node->src_stride, &node->direct) < 0) {
            return -1;
        }
    }
    {
        Py_ssize_t found = 0;
        for (m = 0; m < MF_N_METHODS; m++) {
            PyObject *spec = PyDict_GetItemString(outputs, mf_method_names[m]);
            if (spec != NULL) {
                found++;
                if (build_output(g, (mf_method)m, spec) < 0) {
                    return -1;
                }
            }
        }
        if (found == 0 || found != PyDict_GET_SIZE(outputs)) {
            PyErr_SetString(PyExc_ValueError, "outputs must name methods the graph knows");
            return -1;
        }
    }
    /* store_block gathers an output that is not one node's into scratch too */
    for (m = 0; m < MF_N_METHODS; m++) {
        const mf_output *out = &g->outputs[m];
        if (out->present && out->n_cols > widest) {
            widest = out->n_cols;
        }
        for (i = 0; out->present && i < out->n_cols; i++) {
            if (out->slots[i] < n_features) {
                g->num_read[out->slots[i]] = 1;
            }
        }
    }
    g->widest = widest;
    g->ready = 1;
    return 0;
}

/* ---- the Python type ------------------------------------------------------------ */

static int
graph_traverse(mf_Graph *g, visitproc visit, void *arg)
{
    Py_ssize_t m;
    for (m = 0; m < MF_N_METHODS; m++) {
        Py_VISIT(g->outputs[m].classes);
    }
    Py_VISIT(g->owners);
    Py_VISIT(g->made);
    Py_VISIT(g->coerce);
    Py_VISIT(g->route);
    Py_VISIT(g->string_prefix);
    Py_VISIT(g->names_warning);
    Py_VISIT(g->first_name);
    Py_VISIT(g->explain);
    Py_VISIT(g->column_names);
    return 0;
}

static int
graph_clear(mf_Graph *g)
{
    Py_ssize_t m;
    for (m = 0; m < MF_N_METHODS; m++) {
        Py_CLEAR(g->outputs[m].classes);
    }
    Py_CLEAR(g->owners);
    Py_CLEAR(g->made);
    Py_CLEAR(g->coerce);
    Py_CLEAR(g->route);
    Py_CLEAR(g->string_prefix);
    Py_CLEAR(g->names_warning);
    Py_CLEAR(g->first_name);
    Py_CLEAR(g->explain);
    Py_CLEAR(g->column_names);
    return 0;
}

static void
graph_dealloc(mf_Graph *g)
{
    Py_ssize_t k, m;
    PyObject_GC_UnTrack(g);
    for (k = 0; g->nodes != NULL && k < g->n_nodes; k++) {
        mf_node *node = &g->nodes[k];
        if (node->op != NULL && node->def != NULL && node->def->release != NULL) {
            node->def->release(node->op);
        }
        PyMem_Free(node->op);
        PyMem_Free(node->src_base);
        PyMem_Free(node->src_col);
        PyMem_Free(node->src_stride);
        Py_XDECREF(node->name);
    }
    PyMem_Free(g->nodes);
    for (m = 0; m < MF_N_METHODS; m++) {
        PyMem_Free(g->outputs[m].plan);
        PyMem_Free(g->outputs[m].src_base);
        PyMem_Free(g->outputs[m].src_col);
        PyMem_Free(g->outputs[m].src_stride);
        PyMem_Free(g->outputs[m].owners);
    }
    for (m = 0; m < MF_TYPE_CACHE; m++) {
        PyMem_Free(g->types[m]);
    }
    PyMem_Free(g->key_of_column);
    PyMem_Free(g->num_read);
    PyMem_Free(g->kinds);
    graph_clear(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static PyObject *
graph_predict(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_PREDICT);
}

static PyObject *
graph_predict_proba(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_PREDICT_PROBA);
}

static PyObject *
graph_predict_log_proba(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_PREDICT_LOG_PROBA);
}

static PyObject *
graph_decision_function(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_DECISION_FUNCTION);
}

static PyObject *
graph_transform(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_TRANSFORM);
}

static PyObject *
graph_score_samples(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_SCORE_SAMPLES);
}

static PyObject *
graph_predict_joint_log_proba(mf_Graph *g, PyObject *X)
{
    return mf_graph_call(g, X, MF_M_PREDICT_JOINT_LOG_PROBA);
}

static PyObject *
graph_get_made(mf_Graph *g, void *closure)
{
    PyObject *v = g->ready ? g->made : Py_None;
    Py_INCREF(v);
    return v;
}

static PyObject *
graph_get_methods(mf_Graph *g, void *closure)
{
    PyObject *out = PyList_New(0);
    int m;
    for (m = 0; out != NULL && m < MF_N_METHODS; m++) {
        if (g->outputs[m].present) {
            PyObject *name = PyUnicode_FromString(mf_method_names[m]);
            if (name == NULL || PyList_Append(out, name) < 0) {
                Py_XDECREF(name);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(name);
        }
    }
    return out;
}

static PyObject *
graph_get_route(mf_Graph *g, void *closure)
{
    PyObject *v = g->route != NULL ? g->route : Py_None;
    Py_INCREF(v);
    return v;
}

/* Set once the graph is built (the other graph a route calls is built from
 * the same spec after this one has checked it). */
static int
graph_set_route(mf_Graph *g, PyObject *v, void *closure)
{
    if (v == NULL || (v != Py_None && !PyCallable_Check(v))) {
        PyErr_SetString(PyExc_TypeError, "route must be a callable or None");
        return -1;
    }
    if (v == Py_None) {
        v = NULL;
    }
    Py_XINCREF(v);
    Py_XSETREF(g->route, v);
    return 0;
}

static PyGetSetDef graph_getset[] = {
    {"route", (getter)graph_get_route, (setter)graph_set_route,
     "route(graph, method, X): the answer for an X another graph reads (scipy.sparse), "
     "or NotImplemented; called in C for what is not an ndarray",
     NULL},
    {"made", (getter)graph_get_made, NULL,
     "what each node's construction made (a forest's packed layout), or None", NULL},
    {"methods", (getter)graph_get_methods, NULL, "the methods the graph answers", NULL},
    {NULL}
};

/* The text signatures let inspect.signature read a Model's bound methods. */
static PyMethodDef graph_methods[] = {
    {"predict", (PyCFunction)graph_predict, METH_O,
     "predict($self, X, /)\n--\n\nLabels or regression values."},
    {"predict_proba", (PyCFunction)graph_predict_proba, METH_O,
     "predict_proba($self, X, /)\n--\n\nClass probabilities."},
    {"predict_log_proba", (PyCFunction)graph_predict_log_proba, METH_O,
     "predict_log_proba($self, X, /)\n--\n\nLogarithm of the class probabilities."},
    {"decision_function", (PyCFunction)graph_decision_function, METH_O,
     "decision_function($self, X, /)\n--\n\nRaw scores."},
    {"transform", (PyCFunction)graph_transform, METH_O,
     "transform($self, X, /)\n--\n\nTransformed rows."},
    {"score_samples", (PyCFunction)graph_score_samples, METH_O,
     "score_samples($self, X, /)\n--\n\nPer-sample scores."},
    {"predict_joint_log_proba", (PyCFunction)graph_predict_joint_log_proba, METH_O,
     "predict_joint_log_proba($self, X, /)\n--\n\nJoint log probabilities."},
    {NULL, NULL, 0, NULL}
};

static PyMemberDef graph_members[] = {
    {"n_features", T_PYSSIZET, offsetof(mf_Graph, n_features), READONLY, "columns the graph reads"},
    {"n_slots", T_PYSSIZET, offsetof(mf_Graph, n_slots), READONLY,
     "columns of a row across every node"},
    {"block_rows", T_PYSSIZET, offsetof(mf_Graph, block_rows), READONLY,
     "rows that go through the graph together"},
    {"n_keys", T_PYSSIZET, offsetof(mf_Graph, n_keys), READONLY,
     "input columns read as keys (categories)"},
    {NULL}
};

PyTypeObject mf_GraphType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Graph",
    .tp_basicsize = sizeof(mf_Graph),
    .tp_dealloc = (destructor)graph_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Graph(n_features, nodes, outputs, *, coerce=None, strings=0, "
              "string_prefix=None, names_warning=None, first_name=None, key_columns=None, "
              "explain=None, column_names=None)\n\n"
              "A model as a graph of ops, run in C. Built by mlfast's builders "
              "(mlfast._builders.ir); not meant to be made by hand.",
    .tp_traverse = (traverseproc)graph_traverse,
    .tp_clear = (inquiry)graph_clear,
    .tp_methods = graph_methods,
    .tp_members = graph_members,
    .tp_getset = graph_getset,
    .tp_init = (initproc)graph_init,
    .tp_new = PyType_GenericNew,
};

/* ---- the contract, for Python ------------------------------------------------- */

static const char *
field_kind_name(const mf_field *f)
{
    switch (f->kind) {
    case MF_FIELD_INT:
        return "int";
    case MF_FIELD_FLOAT:
        return "float";
    case MF_FIELD_BOOL:
        return "bool";
    default:
        return "array";
    }
}

/* {op name: ((field, kind, dtype or None, ndim, optional), ...)} */
PyObject *
mf_ops_table(void)
{
    PyObject *table = PyDict_New();
    const mf_op_def *const *d;

    for (d = op_defs; table != NULL && *d != NULL; d++) {
        const mf_field *f;
        Py_ssize_t n = 0, i = 0;
        PyObject *fields;
        for (f = (*d)->fields; f->name != NULL; f++) {
            n++;
        }
        fields = PyTuple_New(n);
        for (f = (*d)->fields; fields != NULL && f->name != NULL; f++, i++) {
            PyObject *dtype = Py_None, *item;
            if (f->kind == MF_FIELD_ARRAY) {
                dtype = (PyObject *)PyArray_DescrFromType(f->type_num);
                if (dtype == NULL) {
                    Py_CLEAR(fields);
                    break;
                }
            }
            else {
                Py_INCREF(dtype);
            }
            item = Py_BuildValue("(ssNii)", f->name, field_kind_name(f), dtype, f->ndim,
                                 (f->flags & MF_FIELD_OPTIONAL) != 0);
            if (item == NULL) {
                Py_CLEAR(fields);
                break;
            }
            PyTuple_SET_ITEM(fields, i, item);
        }
        if (fields == NULL || PyDict_SetItemString(table, (*d)->name, fields) < 0) {
            Py_XDECREF(fields);
            Py_CLEAR(table);
            break;
        }
        Py_DECREF(fields);
    }
    return table;
}

/* {op name: (kind of slot read, kind of slot written)} */
PyObject *
mf_op_kinds_table(void)
{
    PyObject *table = PyDict_New();
    const mf_op_def *const *d;
    for (d = op_defs; table != NULL && *d != NULL; d++) {
        PyObject *item = Py_BuildValue("(ii)", (*d)->in_kind, (*d)->out_kind);
        if (item == NULL || PyDict_SetItemString(table, (*d)->name, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(table);
            break;
        }
        Py_DECREF(item);
    }
    return table;
}

/* {"accept": {...}, "proba": {...}, "labels": {...}, "post": {...},
 *  "strings": {...}, "methods": (...), "calibrate", "normalize", "ecoc",
 *  "cast": {...}, "functions": {numpy name: code}} */
/* codes[key] = Py_BuildValue(format, ...): a family's enum, by name. */
static int
add_codes(PyObject *codes, const char *key, const char *format, ...)
{
    va_list va;
    PyObject *table;
    int rc;
    va_start(va, format);
    table = Py_VaBuildValue(format, va);
    va_end(va);
    if (table == NULL) {
        return -1;
    }
    rc = PyDict_SetItemString(codes, key, table);
    Py_DECREF(table);
    return rc;
}

PyObject *
mf_codes_table(void)
{
    PyObject *table, *text = NULL, *norms = NULL;
    PyObject *methods = PyTuple_New(MF_N_METHODS);
    int m;
    if (methods == NULL) {
        return NULL;
    }
    for (m = 0; m < MF_N_METHODS; m++) {
        PyObject *name = PyUnicode_FromString(mf_method_names[m]);
        if (name == NULL) {
            Py_DECREF(methods);
            return NULL;
        }
        PyTuple_SET_ITEM(methods, m, name);
    }
    table = Py_BuildValue(
        "{s{sisisi}s{sisisisisisi}s{sisisi}s{sisisi}s{sisisi}s{sisi}sN"
        "s{sisisi}s{sisi}s{sisi}s{sisi}sNs{sisisisisi}s{sisi}}",
        "accept", "FINITE", MF_ACCEPT_FINITE, "NAN", MF_ACCEPT_NAN, "ANY", MF_ACCEPT_ANY, "proba",
        "EXPIT_OVR", MF_PROBA_EXPIT_OVR, "SOFTMAX", MF_PROBA_SOFTMAX, "SOFTMAX_BINARY",
        MF_PROBA_SOFTMAX_BINARY, "MODIFIED_HUBER", MF_PROBA_MODIFIED_HUBER, "NORMALIZE",
        MF_PROBA_NORMALIZE, "EXPIT2", MF_PROBA_EXPIT2, "labels", "THRESHOLD", MF_LABEL_THRESHOLD,
        "THRESHOLD_GE", MF_LABEL_THRESHOLD_GE, "ARGMAX", MF_LABEL_ARGMAX, "post", "EXP",
        MF_POST_EXP, "IFOREST", MF_POST_IFOREST, "LOG", MF_POST_LOG, "strings", "REFUSE",
        MF_STRINGS_REFUSE, "CONVERT", MF_STRINGS_CONVERT, "IMPUTER", MF_STRINGS_IMPUTER, "slots",
        "NUM", MF_SLOT_NUM, "KEY", MF_SLOT_KEY, "methods", methods, "calibrate", "SIGMOID",
        MF_CAL_SIGMOID, "ISOTONIC", MF_CAL_ISOTONIC, "TEMPERATURE", MF_CAL_TEMPERATURE, "normalize",
        "ZERO_KEEPS", MF_NORM_ZERO_KEEPS, "ZERO_NAN", MF_NORM_ZERO_NAN, "ecoc", "SQUARED",
        MF_ECOC_SQUARED, "SQRT", MF_ECOC_SQRT, "cast", "FLOAT64", MF_CAST_FLOAT64, "UFUNC",
        MF_CAST_UFUNC, "functions", mf_function_codes(), "xgb_link", "IDENTITY", MF_XGB_IDENTITY,
        "SIGMOID", MF_XGB_SIGMOID, "SOFTMAX", MF_XGB_SOFTMAX, "EXP", MF_XGB_EXP, "COMPLEMENT",
        MF_XGB_COMPLEMENT, "cat_rule", "XGBOOST", MF_CATS_XGBOOST, "LIGHTGBM", MF_CATS_LIGHTGBM);
    text = Py_BuildValue("{sisisisi}", "WORD", MF_TEXT_WORD, "TOKENS", MF_TEXT_TOKENS, "CHAR",
                         MF_TEXT_CHAR, "CHAR_WB", MF_TEXT_CHAR_WB);
    norms = Py_BuildValue("{sisisi}", "NONE", MF_TEXT_NORM_NONE, "L1", MF_TEXT_NORM_L1, "L2",
                          MF_TEXT_NORM_L2);
    if (table == NULL || text == NULL || norms == NULL ||
        PyDict_SetItemString(table, "analyzers", text) < 0 ||
        PyDict_SetItemString(table, "text_norms", norms) < 0 || mf_family_codes(table) < 0) {
        Py_CLEAR(table);
    }
    Py_XDECREF(text);
    Py_XDECREF(norms);
    /* the families' own enums, one entry a family */
    if (table != NULL &&
        add_codes(table, "svm_post", "{sisisisisi}", "VOTE", MF_SVM_VOTE, "OVR", MF_SVM_OVR,
                  "NEGATE", MF_SVM_NEGATE, "ADD", MF_SVM_ADD, "PROBA", MF_SVM_PROBA) < 0) {
        Py_CLEAR(table);
    }
    if (table != NULL && add_codes(table, "da_post", "{sisisisisi}", "DIFF", MF_DA_DIFF,
                                   "LOG_PROBA", MF_DA_LOG_PROBA, "PROBA", MF_DA_PROBA, "PROBA_OLD",
                                   MF_DA_PROBA_OLD, "LOG_TINY", MF_DA_LOG_TINY) < 0) {
        Py_CLEAR(table);
    }
    if (table != NULL && add_codes(table, "activation", "{sisisisisi}", "LOGISTIC", MF_ACT_LOGISTIC,
                                   "TANH", MF_ACT_TANH, "RELU", MF_ACT_RELU, "EXP", MF_ACT_EXP,
                                   "SOFTMAX", MF_ACT_SOFTMAX) < 0) {
        Py_CLEAR(table);
    }
    return table;
}
