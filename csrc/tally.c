/*
 * tally.c -- mlfast._core.RequestTally: the serving metrics' per-request
 * counts.
 *
 * The observing hook (mlfast/serving/ops.py) counts every request: one
 * count and three histograms (latency, rows, model compute time) under a
 * label set.  Written in Python that took ~13,000 instructions a request,
 * 2% of the cheapest request (an iris prediction), where the project allows
 * metrics and auth 5% together; prometheus-client's own objects cost more
 * (a lock and a Python loop over the buckets for each histogram).  No
 * library counts histograms for us in C, so this file does: one dict
 * lookup and three binary searches in one call, under the GIL (no lock).
 * prometheus-client still writes the exposition format and the
 * multiprocess files; mlfast hands it these counts at scrape time or in
 * batches (mlfast/serving/metrics.py).
 *
 * Layout: the label sets are the keys of a dict whose values are slot
 * numbers; a slot is `stride` int64 counts (the request count, then each
 * histogram's buckets, +Inf last, not cumulative) and MF_TALLY_HISTS sums.
 * Buckets follow Prometheus's `le` (a value goes to the first bound >= it);
 * NaN goes to +Inf.  Keys are plain tuples (tally_plain_key), so no Python
 * code runs between add() finding a key's slot and writing to it (only
 * the values' __float__ may run, before): add() is atomic under the GIL.
 * drain() hands everything over and starts afresh; if building its
 * answer fails (MemoryError), the counts drained are lost.
 */
#include "mlfast.h"

#include <math.h>

#define MF_TALLY_HISTS 3
#define MF_TALLY_MAX_BOUNDS 64

/* The buckets of the three histograms: what a tally is made with. */
typedef struct {
    Py_ssize_t n_bounds[MF_TALLY_HISTS];
    Py_ssize_t offset[MF_TALLY_HISTS];     /* first bucket of each histogram in a slot */
    Py_ssize_t stride;                     /* int64 counts a slot */
    double bounds[MF_TALLY_HISTS][MF_TALLY_MAX_BOUNDS];
} mf_tally_shape;

typedef struct {
    PyObject_HEAD
    PyObject *index;                       /* dict: key -> slot (int) */
    Py_ssize_t n_slots, cap;
    mf_tally_shape shape;
    int64_t *counts;                       /* cap * shape.stride */
    double *sums;                          /* cap * MF_TALLY_HISTS */
} mf_Tally;

/* Bounds: a sequence of 1..64 finite floats, strictly increasing.  Read
 * from a tuple copy: a float's __float__ may change the caller's list. */
static int
tally_read_bounds(mf_tally_shape *shape, int h, PyObject *arg)
{
    int rc = -1;
    Py_ssize_t i, n;
    PyObject *seq = PySequence_Check(arg) ? PySequence_Tuple(arg) : NULL;

    if (seq == NULL) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "RequestTally bounds must be a sequence of floats");
        }
        goto done;
    }
    n = PyTuple_GET_SIZE(seq);
    if (n < 1 || n > MF_TALLY_MAX_BOUNDS) {
        PyErr_Format(PyExc_ValueError, "RequestTally: histogram %d has %zd bounds, not 1..%d", h, n,
                     MF_TALLY_MAX_BOUNDS);
        goto done;
    }
    for (i = 0; i < n; i++) {
        double b = PyFloat_AsDouble(PyTuple_GET_ITEM(seq, i));
        if (b == -1.0 && PyErr_Occurred()) {
            goto done;
        }
        if (!isfinite(b) || (i > 0 && !(b > shape->bounds[h][i - 1]))) {
            PyErr_Format(PyExc_ValueError,
                         "RequestTally: histogram %d's bounds must be finite "
                         "and increasing (bound %zd)",
                         h, i);
            goto done;
        }
        shape->bounds[h][i] = b;
    }
    shape->n_bounds[h] = n;
    rc = 0;
done:
    Py_XDECREF(seq);
    return rc;
}

static int
tally_init(mf_Tally *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"latency", "rows", "compute", NULL};
    PyObject *b[MF_TALLY_HISTS], *index = NULL;
    mf_tally_shape shape;
    int h, rc = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:RequestTally", kwlist, &b[0], &b[1], &b[2])) {
        goto done;
    }
    /* everything read into locals first: reading the bounds may run Python
     * code (a __float__), which could call __init__ or add() meanwhile */
    shape.stride = 1;
    for (h = 0; h < MF_TALLY_HISTS; h++) {
        if (tally_read_bounds(&shape, h, b[h]) < 0) {
            goto done;
        }
        shape.offset[h] = shape.stride;
        shape.stride += shape.n_bounds[h] + 1;
    }
    index = PyDict_New();
    if (index == NULL) {
        goto done;
    }
    /* then checked and set with no Python code in between */
    if (self->index != NULL || self->counts != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RequestTally is already initialised");
        goto done;
    }
    self->shape = shape;
    self->index = index;
    index = NULL;
    rc = 0;
done:
    Py_XDECREF(index);
    return rc;
}

static int
tally_traverse(mf_Tally *self, visitproc visit, void *arg)
{
    Py_VISIT(self->index);
    return 0;
}

static int
tally_clear(mf_Tally *self)
{
    Py_CLEAR(self->index);
    return 0;
}

static void
tally_dealloc(mf_Tally *self)
{
    PyObject_GC_UnTrack(self);
    tally_clear(self);
    PyMem_Free(self->counts);
    PyMem_Free(self->sums);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The first bucket whose bound is >= x (Prometheus's `le`); n for +Inf and NaN. */
static inline Py_ssize_t
tally_bucket(const double *bounds, Py_ssize_t n, double x)
{
    Py_ssize_t lo = 0, hi = n;

    if (!(x <= bounds[n - 1])) {
        lo = n;  /* above every bound, or NaN */
    }
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < x) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

/* Room for one more slot; 0 or -1 with MemoryError. */
static int
tally_grow(mf_Tally *self)
{
    int rc = -1;
    Py_ssize_t cap;
    int64_t *counts;
    double *sums;

    if (self->n_slots < self->cap) {
        rc = 0;
        goto done;
    }
    cap = self->cap ? self->cap * 2 : 16;
    if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(int64_t) / self->shape.stride) {
        PyErr_NoMemory();
        goto done;
    }
    counts = PyMem_Realloc(self->counts, (size_t)(cap * self->shape.stride) * sizeof(int64_t));
    if (counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    self->counts = counts;
    sums = PyMem_Realloc(self->sums, (size_t)(cap * MF_TALLY_HISTS) * sizeof(double));
    if (sums == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    self->sums = sums;
    self->cap = cap;
    rc = 0;
done:
    return rc;
}

/* A key of exact tuples, str, int and None only: hashing and comparing
 * those runs no Python code, so no other thread can run (and drain) while
 * add() finds or makes the key's slot. */
static int
tally_plain_key(PyObject *key, int depth)
{
    Py_ssize_t i;
    int ok = PyTuple_CheckExact(key) && depth < 4;

    for (i = 0; ok && i < PyTuple_GET_SIZE(key); i++) {
        PyObject *item = PyTuple_GET_ITEM(key, i);
        ok = PyUnicode_CheckExact(item) || PyLong_CheckExact(item) || item == Py_None ||
             tally_plain_key(item, depth + 1);
    }
    return ok;
}

/* The slot of `key`, made if new; -1 with an exception. */
static Py_ssize_t
tally_slot(mf_Tally *self, PyObject *key)
{
    Py_ssize_t slot = -1;
    PyObject *number = NULL;
    PyObject *found = PyDict_GetItemWithError(self->index, key);

    if (found != NULL) {
        slot = PyLong_AsSsize_t(found);
        goto done;
    }
    if (PyErr_Occurred() || tally_grow(self) < 0) {
        goto done;
    }
    slot = self->n_slots;
    memset(self->counts + slot * self->shape.stride, 0,
           (size_t)self->shape.stride * sizeof(int64_t));
    memset(self->sums + slot * MF_TALLY_HISTS, 0, MF_TALLY_HISTS * sizeof(double));
    number = PyLong_FromSsize_t(slot);
    if (number == NULL || PyDict_SetItem(self->index, key, number) < 0) {
        slot = -1;
        goto done;
    }
    self->n_slots = slot + 1;
done:
    Py_XDECREF(number);
    return slot;
}

static PyObject *
tally_add(mf_Tally *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *result = NULL;
    double value[MF_TALLY_HISTS];
    Py_ssize_t slot;
    int h;

    if (nargs != 1 + MF_TALLY_HISTS) {
        PyErr_Format(PyExc_TypeError,
                     "add(key, seconds, rows, compute_seconds) takes 4 "
                     "arguments (%zd given)",
                     nargs);
        goto done;
    }
    if (self->index == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RequestTally is not initialised");
        goto done;
    }
    for (h = 0; h < MF_TALLY_HISTS; h++) {
        value[h] = PyFloat_AsDouble(args[1 + h]);
        if (value[h] == -1.0 && PyErr_Occurred()) {
            goto done;
        }
    }
    if (!tally_plain_key(args[0], 0)) {
        PyErr_SetString(PyExc_TypeError, "RequestTally keys are tuples of str, int, None and "
                                         "such tuples");
        goto done;
    }
    slot = tally_slot(self, args[0]);
    if (slot < 0 || slot >= self->n_slots) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "RequestTally: slot out of range");
        }
        goto done;
    }
    {
        const mf_tally_shape *shape = &self->shape;
        int64_t *counts = self->counts + slot * shape->stride;
        double *sums = self->sums + slot * MF_TALLY_HISTS;
        /* a request that predicted no rows has no rows or compute to count */
        int n_hists = value[1] != 0.0 ? MF_TALLY_HISTS : 1;

        counts[0] += 1;
        for (h = 0; h < n_hists; h++) {
            Py_ssize_t b = tally_bucket(shape->bounds[h], shape->n_bounds[h], value[h]);
            counts[shape->offset[h] + b] += 1;
            sums[h] += value[h];
        }
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    return result;
}

/* (counts tuple, sum) of histogram h of a slot. */
static PyObject *
tally_histogram(const mf_tally_shape *shape, const int64_t *counts, const double *sums, int h)
{
    PyObject *result = NULL, *buckets = NULL;
    Py_ssize_t i, n = shape->n_bounds[h] + 1;

    buckets = PyTuple_New(n);
    if (buckets == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *c = PyLong_FromLongLong(counts[shape->offset[h] + i]);
        if (c == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(buckets, i, c);
    }
    result = Py_BuildValue("(Od)", buckets, sums[h]);
done:
    Py_XDECREF(buckets);
    return result;
}

static PyObject *
tally_drain(mf_Tally *self, PyObject *Py_UNUSED(arg))
{
    PyObject *result = NULL, *fresh = NULL, *index = NULL, *key, *number;
    int64_t *counts = NULL;
    double *sums = NULL;
    Py_ssize_t n_slots, pos = 0;

    if (self->index == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RequestTally is not initialised");
        goto done;
    }
    fresh = PyDict_New();
    if (fresh == NULL) {
        goto done;
    }
    /* Swap first, with no Python code in between: an add() from another
     * thread while the lists below are built goes to the fresh tally. */
    index = self->index;
    counts = self->counts;
    sums = self->sums;
    n_slots = self->n_slots;
    self->index = fresh;
    fresh = NULL;
    self->counts = NULL;
    self->sums = NULL;
    self->n_slots = self->cap = 0;

    result = PyList_New(0);
    if (result == NULL) {
        goto done;
    }
    while (PyDict_Next(index, &pos, &key, &number)) {
        PyObject *item, *hist[MF_TALLY_HISTS] = {NULL};
        Py_ssize_t slot = PyLong_AsSsize_t(number);
        int h, ok = 1;

        if (slot < 0 || slot >= n_slots) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_SystemError, "RequestTally: slot out of range");
            }
            Py_CLEAR(result);
            goto done;
        }
        for (h = 0; h < MF_TALLY_HISTS && ok; h++) {
            hist[h] = tally_histogram(&self->shape, counts + slot * self->shape.stride,
                                      sums + slot * MF_TALLY_HISTS, h);
            ok = hist[h] != NULL;
        }
        item = ok ? Py_BuildValue("(OLOOO)", key, (long long)counts[slot * self->shape.stride],
                                  hist[0], hist[1], hist[2])
                  : NULL;
        for (h = 0; h < MF_TALLY_HISTS; h++) {
            Py_XDECREF(hist[h]);
        }
        if (item == NULL || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(item);
    }
done:
    Py_XDECREF(fresh);
    Py_XDECREF(index);
    PyMem_Free(counts);
    PyMem_Free(sums);
    return result;
}

static PyObject *
tally_series(mf_Tally *self, PyObject *Py_UNUSED(arg))
{
    return PyLong_FromSsize_t(self->n_slots);
}

static PyMethodDef tally_methods[] = {
    {"add", (PyCFunction)(void (*)(void))tally_add, METH_FASTCALL,
     "add($self, key, seconds, rows, compute_seconds, /)\n--\n\n"
     "Count one request under the label set `key` (a tuple of str, int, None and such "
     "tuples): its latency, rows and compute time each go to their histogram's bucket "
     "(the first bound >= the value, else +Inf) and sum. A request of 0 rows counts its "
     "latency only."},
    {"drain", (PyCFunction)tally_drain, METH_NOARGS,
     "drain($self, /)\n--\n\n"
     "The counts so far as a list of (key, requests, latency, rows, compute), each "
     "histogram a (bucket counts, sum) pair with +Inf last and counts not cumulative; "
     "the tally starts afresh."},
    {"series", (PyCFunction)tally_series, METH_NOARGS,
     "series($self, /)\n--\n\nHow many label sets have counts now."},
    {NULL, NULL, 0, NULL}
};

PyTypeObject mf_TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.RequestTally",
    .tp_basicsize = sizeof(mf_Tally),
    .tp_dealloc = (destructor)tally_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RequestTally(latency, rows, compute)\n\n"
              "Per-request counts for the serving metrics: a request count and three "
              "histograms (each given by its bucket bounds) for every label set.",
    .tp_traverse = (traverseproc)tally_traverse,
    .tp_clear = (inquiry)tally_clear,
    .tp_methods = tally_methods,
    .tp_init = (initproc)tally_init,
    .tp_new = PyType_GenericNew,
};
