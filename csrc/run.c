/*
 * run.c -- a call of a Graph method: rows in blocks through the nodes the
 * method needs, in C from the caller's array to the returned one.
 *
 * Each block of rows is gathered into doubles (node 0), then every node of
 * the method's plan reads its input (in place, or gathered), is checked
 * against what it accepts, and writes its own slots.  Batches above a
 * threshold release the GIL; larger ones are split across the pool's
 * threads.  When a node refuses a row, the call works out which node
 * scikit-learn would have named, and raises its message.
 */
#include "mlfast.h"
#include <math.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    const mf_Graph *g;
    const mf_output *out;
    const int *types;          /* mf_graph_types for this input */
    mf_input in;
    const mf_hold *hold;       /* what the input owns (the caller's columns) */
    npy_intp block_rows;       /* rows per block: the layout of every block */
    char *dst;                 /* returned rows (doubles or floats) or labels */
    int dst_f32;
    npy_intp *index_out;       /* label indices, for object classes */
    const char *class_data;    /* label bytes, for other classes */
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

/* ---- types ------------------------------------------------------------------- */

int
mf_promote_types(int a, int b)
{
    PyArray_Descr *da, *db, *dc;
    int t = a;
    if (a == b) {
        return a;
    }
    da = PyArray_DescrFromType(a);
    db = PyArray_DescrFromType(b);
    dc = da != NULL && db != NULL ? PyArray_PromoteTypes(da, db) : NULL;
    if (dc != NULL) {
        t = dc->type_num;
    }
    else {
        PyErr_Clear();
        t = NPY_DOUBLE;
    }
    Py_XDECREF(da);
    Py_XDECREF(db);
    Py_XDECREF(dc);
    return t;
}

static int
default_out_type(int t)
{
    return t == NPY_HALF || t == NPY_FLOAT || t == NPY_DOUBLE ? t : NPY_DOUBLE;
}

/* The node whose first slot is `base`. */
static Py_ssize_t
node_at(const mf_Graph *g, npy_intp base)
{
    Py_ssize_t lo = 0, hi = g->n_nodes - 1;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo + 1) / 2;
        if (g->nodes[mid].base <= base) {
            lo = mid;
        }
        else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* What every node reads and writes for an input of input_type (a
 * supported numpy type), computed once per type and kept. */
const int *
mf_graph_types(mf_Graph *g, int input_type)
{
    Py_ssize_t k, i, n = 2 * g->n_nodes + MF_N_METHODS;
    int m, *types;

    if (input_type < 0 || input_type >= MF_TYPE_CACHE) {
        PyErr_SetString(PyExc_SystemError, "mlfast: input type out of range");
        return NULL;
    }
    if (g->types[input_type] != NULL) {
        return g->types[input_type];
    }
    types = PyMem_Malloc((size_t)n * sizeof(int));
    if (types == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    types[0] = types[1] = input_type;
    for (k = 1; k < g->n_nodes; k++) {
        const mf_node *node = &g->nodes[k];
        int t;
        if (node->def->in_kind == MF_SLOT_KEY) {
            t = NPY_OBJECT;         /* keys: categories of any type */
        }
        else if (node->direct >= 0) {
            t = types[2 * node->direct + 1];
        }
        else {
            /* np.hstack of the columns' arrays */
            t = -1;
            for (i = 0; i < node->n_in; i++) {
                int s = types[2 * node_at(g, node->src_base[i]) + 1];
                t = t < 0 ? s : mf_promote_types(t, s);
            }
        }
        types[2 * k] = t;
        types[2 * k + 1] =
            node->def->out_type != NULL ? node->def->out_type(node->op, t) : default_out_type(t);
    }
    for (m = 0; m < MF_N_METHODS; m++) {
        const mf_output *out = &g->outputs[m];
        int t = NPY_DOUBLE;
        for (i = 0; i < out->n_owners; i++) {
            int s = types[2 * out->owners[i] + 1];
            t = i == 0 ? s : mf_promote_types(t, s);
        }
        types[2 * g->n_nodes + m] = t;
    }
    g->types[input_type] = types;
    return types;
}

static mf_precision
precision_of(int t)
{
    return t == NPY_FLOAT ? MF_F32 : t == NPY_HALF ? MF_F16 : MF_F64;
}

static const char *
type_name(int t)
{
    return t == NPY_FLOAT ? "float32" : t == NPY_HALF ? "float16" : "float64";
}

/* ---- one block ---------------------------------------------------------------- */

/* Rounds values to float32, as scikit-learn's trees read X. */
static void
round_f32(double *x, Py_ssize_t count)
{
    Py_ssize_t i;
    for (i = 0; i < count; i++) {
        x[i] = (double)(float)x[i];
    }
}

/* Gathers n columns of nr rows from a block's slots into dst, row-major. */
static void
gather_slots(const double *arena, npy_intp br, const npy_intp *base, const npy_intp *col,
             const npy_intp *stride, Py_ssize_t n, npy_intp nr, double *dst)
{
    npy_intp r;
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        const double *src = arena + base[i] * br + col[i];
        for (r = 0; r < nr; r++) {
            dst[r * n + i] = src[r * stride[i]];
        }
    }
}

/* What node k reads for rows [0, nr) of a block: its input node's slots in
 * place, or its columns gathered into scratch (and rounded, for a tree). */
static const double *
node_input(const mf_Graph *g, const mf_node *node, const double *arena, npy_intp br, npy_intp nr,
           double *scratch)
{
    if (node->direct >= 0 && !node->cast_f32) {
        return arena + g->nodes[node->direct].base * br;
    }
    gather_slots(arena, br, node->src_base, node->src_col, node->src_stride, node->n_in, nr,
                 scratch);
    if (node->cast_f32) {
        round_f32(scratch, nr * node->n_in);
    }
    return scratch;
}

static int
node_refuses(const mf_node *node, const double *in, npy_intp nr, mf_err_kind *err)
{
    if (node->def->check != NULL) {
        return node->def->check(node->op, in, node->n_in, nr, node->accept, err);
    }
    return mf_check_block(node->accept, in, nr * node->n_in, err);
}

/* Runs the plan over rows [r0, r0 + nr); returns 1 with *err set when a
 * node refuses its input. */
static int
run_block(const mf_job *job, npy_intp r0, npy_intp nr, double *arena, double *scratch,
          mf_err_kind *err)
{
    const mf_Graph *g = job->g;
    const mf_output *out = job->out;
    npy_intp br = job->block_rows;
    Py_ssize_t p;

    mf_input_gather(&job->in, r0, nr, arena);
    for (p = 0; p < out->n_plan; p++) {
        Py_ssize_t k = out->plan[p];
        const mf_node *node = &g->nodes[k];
        const double *in = node_input(g, node, arena, br, nr, scratch);
        if (node_refuses(node, in, nr, err)) {
            return 1;
        }
        node->def->run(node->op, in, node->n_in, arena + node->base * br, node->n_out, nr,
                       precision_of(job->types[2 * k]));
    }
    return 0;
}

/* Writes rows [r0, r0 + nr) of the method's columns where the call
 * returns them. */
static void
store_block(const mf_job *job, npy_intp r0, npy_intp nr, const double *arena, double *scratch)
{
    const mf_output *out = job->out;
    npy_intp br = job->block_rows, r, i, n = out->n_cols;
    const double *rows;

    if (out->direct >= 0) {
        rows = arena + job->g->nodes[out->direct].base * br;
    }
    else {
        gather_slots(arena, br, out->src_base, out->src_col, out->src_stride, n, nr, scratch);
        rows = scratch;
    }
    if (out->classes != NULL) {
        /* one column of class indices, in range (graph.c checks its source) */
        for (r = 0; r < nr; r++) {
            npy_intp idx = (npy_intp)rows[r];
            if (job->index_out != NULL) {
                job->index_out[r0 + r] = idx;
            }
            else {
                memcpy(job->dst + (r0 + r) * job->class_size,
                       job->class_data + idx * job->class_size, (size_t)job->class_size);
            }
        }
    }
    else if (job->dst_f32) {
        float *dst = (float *)job->dst + r0 * n;
        for (i = 0; i < nr * n; i++) {
            dst[i] = (float)rows[i];
        }
    }
    else {
        memcpy((double *)job->dst + r0 * n, rows, (size_t)(nr * n) * sizeof(double));
    }
}

/* A thread's blocks.  Sets task->err when a node refused its input or
 * there was no memory for the block's buffers. */
static void
run_task(void *arg)
{
    mf_task *task = arg;
    mf_job *job = task->job;
    const mf_Graph *g = job->g;
    npy_intp n = job->in.n_rows, br = job->block_rows, next = 0;
    size_t need = (size_t)(br * g->n_slots + br * g->widest);
    double stack_buf[1024];
    double *mem, *scratch;

    mem = need <= sizeof(stack_buf) / sizeof(double) ? stack_buf : malloc(need * sizeof(double));
    if (mem == NULL) {
        task->err = MF_ERR_NOMEM;
        return;
    }
    scratch = mem + br * g->n_slots;
    for (;;) {
        long long block = task->claim ? atomic_fetch_add(&job->next_block, 1) : next++;
        npy_intp r0, nr;
        if (block >= job->n_blocks) {
            break;
        }
        r0 = (npy_intp)block * br;
        nr = n - r0 < br ? n - r0 : br;
        if (run_block(job, r0, nr, mem, scratch, &task->err)) {
            break;
        }
        store_block(job, r0, nr, mem, scratch);
    }
    if (mem != stack_buf) {
        free(mem);
    }
}

/* ---- the whole job ------------------------------------------------------------ */

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

/* Runs the job over all rows; returns 0, 1 if a node refused its input, or
 * 2 if a thread could not get memory for its buffers.  With threads, every
 * thread (this one too) takes blocks of rows in turn until none is left; a
 * thread that cannot be started leaves its share to the others. */
static int
run_job(mf_job *job)
{
    npy_intp n = job->in.n_rows, br = job->block_rows;
    npy_intp blocks = (n + br - 1) / br;
    double work = (double)n * job->out->work;
    double steps = (double)n * job->out->steps;
    int threads = mf_get_num_threads(), nthreads = 1, t, failed = 0;
    mf_task tasks[MF_MAX_THREADS];

    if (threads > 1 && blocks > 1 && work >= MF_NOGIL_MIN_WORK &&
        (steps >= MF_PARALLEL_MIN_TREE_STEPS || work >= MF_PARALLEL_MIN_WORK)) {
        nthreads = threads < MF_MAX_THREADS ? threads : MF_MAX_THREADS;
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
        run_task(&tasks[0]);
    }
    else {
        Py_BEGIN_ALLOW_THREADS
        if (nthreads > 1) {
            mf_pool_run(run_task, tasks, sizeof(mf_task), nthreads);
        }
        else {
            run_task(&tasks[0]);
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

/* ---- refusals ----------------------------------------------------------------- */

/* After a refusal: which node of the plan refuses first over all rows, and
 * with which message (NaN before inf), as scikit-learn checks a whole
 * estimator at a time, in the order the plan follows.  Each row runs until
 * its first refusal; every row reaches the earliest refusing node, so what
 * it saw there is complete. */
static int
diagnose(const mf_job *job, Py_ssize_t *pos_out, mf_err_kind *kind_out)
{
    const mf_Graph *g = job->g;
    const mf_output *out = job->out;
    Py_ssize_t first = out->n_plan, p, value_p = out->n_plan;
    double *arena = NULL, *scratch, *value_in = NULL;
    char *nan_seen = NULL, *other_seen = NULL;
    npy_intp r;
    int found = 0;

    arena = PyMem_Malloc((size_t)(g->n_slots + g->widest) * sizeof(double));
    nan_seen = PyMem_Calloc((size_t)out->n_plan + 1, 1);
    other_seen = PyMem_Calloc((size_t)out->n_plan + 1, 1);
    /* the input row of the earliest refusal of a value an op cannot read
     * (MF_ERR_VALUE), for its message */
    value_in = PyMem_Malloc((size_t)(g->widest + 1) * sizeof(double));
    if (arena == NULL || nan_seen == NULL || other_seen == NULL || value_in == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    scratch = arena + g->n_slots;
    for (r = 0; r < job->in.n_rows; r++) {
        mf_input_gather(&job->in, r, 1, arena);
        for (p = 0; p < out->n_plan && p <= first; p++) {
            const mf_node *node = &g->nodes[out->plan[p]];
            const double *in = node_input(g, node, arena, 1, 1, scratch);
            mf_err_kind e = MF_ERR_NONE;
            /* the message prefers NaN: note it apart from the refusal */
            if (node->def->in_kind == MF_SLOT_NUM &&
                mf_check_block(MF_ACCEPT_FINITE, in, node->n_in, &e) && e == MF_ERR_NAN) {
                nan_seen[p] |= 1;
            }
            if (node_refuses(node, in, 1, &e)) {
                /* bit 1: refused for a value out of the op's domain; bit 2: for
                 * a non-finite value (which scikit-learn checks first) */
                nan_seen[p] |= e == MF_ERR_DOMAIN ? 2 : 4;
                if (p < first) {
                    first = p;
                }
                if (e != MF_ERR_VALUE) {
                    other_seen[p] = 1;
                }
                else if (p < value_p) {
                    value_p = p;
                    memcpy(value_in, in, (size_t)node->n_in * sizeof(double));
                }
                break;
            }
            node->def->run(node->op, in, node->n_in, arena + node->base, node->n_out, 1,
                           precision_of(job->types[2 * out->plan[p]]));
        }
    }
    if (first < out->n_plan) {
        const mf_node *node = &g->nodes[out->plan[first]];
        *pos_out = first;
        *kind_out = node->def->in_kind == MF_SLOT_KEY                             ? MF_ERR_UNKNOWN
                    : (nan_seen[first] & 6) == 2                                  ? MF_ERR_DOMAIN
                    : (node->accept == MF_ACCEPT_FINITE && (nan_seen[first] & 1)) ? MF_ERR_NAN
                                                                                  : MF_ERR_INF;
        if (!other_seen[first] && value_p == first && node->def->refusal != NULL) {
            /* scikit-learn's own error for the value (set now, raised as is) */
            *kind_out = MF_ERR_VALUE;
            node->def->refusal(node->op, value_in, node->n_in);
        }
        found = 1;
    }
    else {
        PyErr_SetString(PyExc_RuntimeError, "mlfast: a refused value could not be "
                                            "found again (please report this)");
    }
done:
    PyMem_Free(arena);
    PyMem_Free(nan_seen);
    PyMem_Free(other_seen);
    PyMem_Free(value_in);
    return found;
}

/* The values a key node read in its column j, over every row: the
 * caller's column when the node reads an input column (so the message
 * shows them as the caller gave them), else the keys as Python values. */
static PyObject *
column_values(const mf_job *job, const mf_node *node, Py_ssize_t j, const double *rows)
{
    const mf_Graph *g = job->g;
    int64_t slot = node->inputs[j];
    npy_intp r, n = job->in.n_rows;
    PyObject *list;

    if (slot >= g->n_features && slot < g->n_features + g->n_keys && job->hold->source != NULL) {
        PyObject *col = PyList_GET_ITEM(job->hold->source, g->key_columns[slot - g->n_features]);
        Py_INCREF(col);
        return col;
    }
    list = PyList_New(n);
    for (r = 0; list != NULL && r < n; r++) {
        PyObject *v = mf_key_to_object(rows + r * node->n_in + j);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, r, v);
    }
    return list;
}

/* The dtype check_array saw in a key node's column j, as numpy names it:
 * the caller's column, the caller's 2-D array of numbers, or object (rows
 * of Python values); a column a node computed is float64. */
static PyObject *
dtype_of_column(const mf_job *job, const mf_node *node, Py_ssize_t j)
{
    const mf_Graph *g = job->g;
    int64_t slot = node->inputs[j];
    PyArray_Descr *descr;
    PyObject *name;

    if (slot >= g->n_features && slot < g->n_features + g->n_keys && job->hold->source != NULL) {
        PyObject *col = PyList_GET_ITEM(job->hold->source, g->key_columns[slot - g->n_features]);
        return PyObject_Str((PyObject *)PyArray_DESCR((PyArrayObject *)col));
    }
    if (slot >= g->n_features && slot < g->n_features + g->n_keys) {
        descr = PyArray_DescrFromType(
            job->in.data != NULL && job->hold->numbers == NULL ? job->in.type_num : NPY_OBJECT);
    }
    else {
        descr = PyArray_DescrFromType(NPY_DOUBLE);
    }
    if (descr == NULL) {
        return NULL;
    }
    name = PyObject_Str((PyObject *)descr);
    Py_DECREF(descr);
    return name;
}

/* scikit-learn's "Found unknown categories [...] in column j during
 * transform": the first column (of the encoder) where any row holds an
 * unknown category, its values over every row; the Python side (explain)
 * lists them as _check_unknown does. */
static void
raise_unknown(const mf_job *job, Py_ssize_t pos)
{
    const mf_Graph *g = job->g;
    const mf_output *out = job->out;
    const mf_node *node = &g->nodes[out->plan[pos]];
    double *arena = NULL, *scratch, *rows = NULL;
    char *nan_seen = NULL;
    PyObject *values = NULL, *known = NULL, *msg = NULL, *nan_dtype = NULL;
    Py_ssize_t p, column = -1, nan_column = -1;
    npy_intp r;

    arena = PyMem_Malloc((size_t)(g->n_slots + g->widest) * sizeof(double));
    rows = PyMem_Malloc((size_t)job->in.n_rows * (size_t)node->n_in * sizeof(double));
    nan_seen = PyMem_Calloc((size_t)node->n_in, 1);
    if (arena == NULL || rows == NULL || nan_seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    scratch = arena + g->n_slots;
    for (r = 0; r < job->in.n_rows; r++) {
        const double *in = NULL;
        mf_input_gather(&job->in, r, 1, arena);
        /* every row reaches the first refusing node */
        for (p = 0; p <= pos; p++) {
            const mf_node *nd = &g->nodes[out->plan[p]];
            in = node_input(g, nd, arena, 1, 1, scratch);
            if (p < pos) {
                nd->def->run(nd->op, in, nd->n_in, arena + nd->base, nd->n_out, 1,
                             precision_of(job->types[2 * out->plan[p]]));
            }
        }
        memcpy(rows + r * node->n_in, in, (size_t)node->n_in * sizeof(double));
        {
            Py_ssize_t j = node->def->refused_column(node->op, in, node->n_in);
            if (j >= 0 && (column < 0 || j < column)) {
                column = j;
            }
            for (j = 0; node->def->refuses_nan != NULL && j < node->n_in; j++) {
                if (!nan_seen[j] && node->def->refuses_nan(node->op, in, j)) {
                    nan_seen[j] = 1;
                    nan_column = nan_column < 0 || j < nan_column ? j : nan_column;
                }
            }
        }
    }
    if (nan_column >= 0) {
        /* a NaN refused before any lookup (check_array): the message names
         * the first such column's dtype, or every such column */
        PyObject *dtype = dtype_of_column(job, node, nan_column), *columns = PyList_New(0);
        Py_ssize_t j;
        for (j = 0; columns != NULL && j < node->n_in; j++) {
            PyObject *index = nan_seen[j] ? PyLong_FromSsize_t(j) : NULL;
            if (nan_seen[j] && (index == NULL || PyList_Append(columns, index) < 0)) {
                Py_CLEAR(columns);
            }
            Py_XDECREF(index);
        }
        if (dtype != NULL && columns != NULL) {
            nan_dtype = PyTuple_Pack(2, dtype, columns);
        }
        Py_XDECREF(dtype);
        Py_XDECREF(columns);
        if (nan_dtype == NULL) {
            goto done;
        }
        column = nan_column;
    }
    if (column < 0) {
        PyErr_SetString(PyExc_RuntimeError, "mlfast: an unknown category could not be "
                                            "found again (please report this)");
        goto done;
    }
    values = column_values(job, node, column, rows);
    known = node->def->known(node->op, column);
    if (values == NULL || known == NULL) {
        goto done;
    }
    if (g->explain != NULL) {
        msg = PyObject_CallFunction(g->explain, "OnOOO", node->name, column, values, known,
                                    nan_dtype != NULL ? nan_dtype : Py_None);
        if (msg != NULL && !PyUnicode_Check(msg)) {
            Py_CLEAR(msg);
            PyErr_SetString(PyExc_TypeError, "explain must return a str");
        }
    }
    else {
        msg =
            PyUnicode_FromFormat("Found unknown categories in column %zd during transform", column);
    }
    if (msg != NULL) {
        PyErr_SetObject(PyExc_ValueError, msg);
    }
done:
    PyMem_Free(arena);
    PyMem_Free(rows);
    PyMem_Free(nan_seen);
    Py_XDECREF(values);
    Py_XDECREF(known);
    Py_XDECREF(msg);
    Py_XDECREF(nan_dtype);
}

static void
raise_refusal(const mf_job *job)
{
    Py_ssize_t pos;
    mf_err_kind kind;
    const mf_node *node;

    if (!diagnose(job, &pos, &kind)) {
        return;
    }
    node = &job->g->nodes[job->out->plan[pos]];
    if (kind == MF_ERR_VALUE) {
        /* set by diagnose */
    }
    else if (kind == MF_ERR_UNKNOWN) {
        raise_unknown(job, pos);
    }
    else if (kind == MF_ERR_DOMAIN) {
        PyErr_SetString(PyExc_ValueError, node->def->domain_message != NULL
                                              ? node->def->domain_message(node->op)
                                              : "Input X contains a value out of range.");
    }
    else if (kind == MF_ERR_NAN) {
        PyErr_Format(PyExc_ValueError,
                     "Input X contains NaN.\n%U does not accept missing values encoded as NaN "
                     "natively. For supervised learning, you might want to consider "
                     "sklearn.ensemble.HistGradientBoostingClassifier and Regressor which accept "
                     "missing values encoded as NaNs natively. Alternatively, it is possible to "
                     "preprocess the data, for instance by using an imputer transformer in a "
                     "pipeline or drop samples with missing values. See "
                     "https://scikit-learn.org/stable/modules/impute.html You can find a list of "
                     "all estimators that handle NaN values at the following page: "
                     "https://scikit-learn.org/stable/modules/impute.html"
                     "#estimators-that-handle-nan-values",
                     node->name);
    }
    else {
        /* check_array converts to float first, keeping float16/32; trees
         * convert to float32; an encoder's own check names no input */
        const char *dt =
            node->cast_f32 ? "float32" : type_name(job->types[2 * job->out->plan[pos]]);
        PyErr_Format(PyExc_ValueError,
                     "Input %scontains infinity or a value too large for dtype('%s').",
                     node->unnamed ? "" : "X ", dt);
    }
}

/* ---- the call ------------------------------------------------------------------ */

PyObject *
mf_graph_call(mf_Graph *g, PyObject *X, mf_method method)
{
    PyArrayObject *out = NULL, *result = NULL;
    mf_hold hold;
    const mf_output *o = &g->outputs[method];
    npy_intp *index = NULL;
    mf_job job;
    npy_intp dims[2];
    int ndim, out_type, cast_to = -1;

    if (!g->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Graph is not initialized");
        return NULL;
    }
    if (!o->present) {
        PyErr_Format(PyExc_AttributeError, "this model has no %s", mf_method_names[method]);
        return NULL;
    }
    if (g->route != NULL && !PyArray_Check(X)) {
        /* an input another graph reads (scipy.sparse rows): its answer.  The
         * graph is passed, not kept by the route, so that no cycle holds it. */
        PyObject *routed =
            PyObject_CallFunction(g->route, "OsO", (PyObject *)g, mf_method_names[method], X);
        if (routed != Py_NotImplemented) {
            return routed;      /* the answer, or NULL with its error */
        }
        Py_DECREF(routed);
    }
    memset(&job, 0, sizeof(job));
    job.g = g;
    job.out = o;
    job.hold = &hold;
    if (mf_input_read(g, X, &hold, &job.in) < 0) {
        goto done;
    }
    job.types = mf_graph_types(g, job.in.type_num);
    if (job.types == NULL) {
        goto done;
    }
    job.block_rows = job.in.n_rows < g->block_rows ? job.in.n_rows : g->block_rows;
    out_type = job.types[2 * g->n_nodes + method];
    dims[0] = job.in.n_rows;
    dims[1] = o->n_cols;
    ndim = o->squeeze && o->n_cols == 1 ? 1 : 2;
    if (o->classes != NULL) {
        PyArray_Descr *descr = PyArray_DESCR(o->classes);
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
            out = (PyArrayObject *)PyArray_NewFromDescr(&PyArray_Type, descr, 1, dims, NULL, NULL,
                                                        0, NULL);
            if (out == NULL) {
                goto done;
            }
            job.dst = PyArray_BYTES(out);
            job.class_data = PyArray_BYTES(o->classes);
            job.class_size = PyArray_ITEMSIZE(o->classes);
        }
    }
    else {
        /* float16 and the integers an imputer kept are numpy's cast of values
         * that are already what scikit-learn computes */
        job.dst_f32 = out_type == NPY_FLOAT;
        if (out_type != NPY_FLOAT && out_type != NPY_DOUBLE) {
            cast_to = out_type;
        }
        out = (PyArrayObject *)PyArray_SimpleNew(ndim, dims, job.dst_f32 ? NPY_FLOAT : NPY_DOUBLE);
        if (out == NULL) {
            goto done;
        }
        job.dst = PyArray_BYTES(out);
    }
    switch (run_job(&job)) {
    case 0:
        break;
    case 1:
        raise_refusal(&job);
        goto done;
    default:
        PyErr_NoMemory();
        goto done;
    }
    if (index != NULL) {
        npy_intp i;
        PyObject **src = (PyObject **)PyArray_DATA(o->classes), **dst;
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
        result = (PyArrayObject *)PyArray_CastToType(out, PyArray_DescrFromType(cast_to), 0);
        goto done;
    }
    result = out;
    out = NULL;
done:
    PyMem_Free(index);
    Py_XDECREF(out);
    mf_input_release(&hold);
    return (PyObject *)result;
}
