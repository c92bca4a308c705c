/*
 * neighbors.c -- k nearest neighbours (KNeighborsClassifier,
 * KNeighborsRegressor) as scikit-learn finds them, and what it makes of them.
 *
 * knn: each row's k nearest training rows, as k indices then k distances,
 * nearest first.  With a fitted KD-tree or ball tree (the file's own nodes),
 * the search is BinaryTree.query's depth-first one: from the root, a node
 * whose lower bound exceeds the heap's largest distance is skipped, a leaf
 * pushes its points in idx_array order, an inner node visits the child of
 * smaller lower bound first (the left one at equality).  The heap is
 * sklearn.utils._heap.heap_push (a value not below the largest is dropped),
 * so which of several equally distant points are kept is scikit-learn's.
 * Brute force pushes the training rows in order.  Distances are the
 * metric's reduced distances (squared for euclidean, the p-th power for
 * minkowski), added in feature order as DistanceMetric does, turned into
 * distances at the end.  Equal distances are listed in the order the heap
 * leaves them (scikit-learn's introsort may list them otherwise: only sums
 * over neighbours, and only in their last bits, can tell).
 *
 * knn_vote and knn_mean: KNeighborsClassifier.predict_proba and predict
 * (weighted_mode) and KNeighborsRegressor.predict over those columns.
 */
#include "mlfast.h"
#include <math.h>

/* Neighbours a row keeps (the heap lives in the row's output); weights a
 * vote adds up on the stack. */
#define MF_KNN_MAX_K 4096

enum { KNN_EUCLIDEAN = 1, KNN_MANHATTAN, KNN_CHEBYSHEV, KNN_MINKOWSKI };
enum { KNN_BRUTE = 0, KNN_KD_TREE = 1, KNN_BALL_TREE = 2 };

/* DistanceMetric.rdist, in feature order */
static inline double
knn_rdist(const mf_knn *kn, const double *x, const double *y)
{
    Py_ssize_t j, d = kn->n_features;
    double s = 0.0;
    switch (kn->metric) {
    case KNN_EUCLIDEAN:
        for (j = 0; j < d; j++) {
            double t = x[j] - y[j];
            s += t * t;
        }
        return s;
    case KNN_MANHATTAN:
        for (j = 0; j < d; j++) {
            s += fabs(x[j] - y[j]);
        }
        return s;
    case KNN_CHEBYSHEV:
        for (j = 0; j < d; j++) {
            s = fmax(s, fabs(x[j] - y[j]));
        }
        return s;
    default:
        for (j = 0; j < d; j++) {
            s += pow(fabs(x[j] - y[j]), kn->p);
        }
        return s;
    }
}

/* the metric's dist (not reduced) */
static inline double
knn_dist(const mf_knn *kn, const double *x, const double *y)
{
    double r = knn_rdist(kn, x, y);
    switch (kn->metric) {
    case KNN_EUCLIDEAN:
        return sqrt(r);
    case KNN_MINKOWSKI:
        return pow(r, 1.0 / kn->p);
    default:
        return r;
    }
}

static inline double
knn_dist_to_rdist(const mf_knn *kn, double dist)
{
    switch (kn->metric) {
    case KNN_EUCLIDEAN:
        return dist * dist;
    case KNN_MINKOWSKI:
        return pow(dist, kn->p);
    default:
        return dist;
    }
}

/* sklearn.utils._heap.heap_push: a max-heap of size k */
static inline void
heap_push(double *values, double *indices, Py_ssize_t size, double val, Py_ssize_t val_idx)
{
    Py_ssize_t current = 0, left, right, swap;
    if (val >= values[0]) {
        return;
    }
    for (;;) {
        left = 2 * current + 1;
        right = left + 1;
        if (left >= size) {
            break;
        }
        else if (right >= size) {
            if (values[left] > val) {
                swap = left;
            }
            else {
                break;
            }
        }
        else if (values[left] >= values[right]) {
            if (val < values[left]) {
                swap = left;
            }
            else {
                break;
            }
        }
        else {
            if (val < values[right]) {
                swap = right;
            }
            else {
                break;
            }
        }
        values[current] = values[swap];
        indices[current] = indices[swap];
        current = swap;
    }
    values[current] = val;
    indices[current] = (double)val_idx;
}

/* the lower bound of the reduced distance from x to node i */
static double
knn_min_rdist(const mf_knn *kn, Py_ssize_t i, const double *x)
{
    Py_ssize_t j, d = kn->n_features;
    if (kn->mode == KNN_KD_TREE) {
        const double *lo = kn->bounds + i * d;
        const double *hi = kn->bounds + (kn->n_nodes + i) * d;
        double rdist = 0.0;
        for (j = 0; j < d; j++) {
            double d_lo = lo[j] - x[j];
            double d_hi = x[j] - hi[j];
            double dd = (d_lo + fabs(d_lo)) + (d_hi + fabs(d_hi));
            if (kn->metric == KNN_CHEBYSHEV) {
                rdist = fmax(rdist, 0.5 * dd);
            }
            else {
                rdist += pow(0.5 * dd, kn->p);
            }
        }
        return rdist;
    }
    /* ball tree: max(0, dist(x, centroid) - radius), reduced */
    return knn_dist_to_rdist(kn, fmax(0, knn_dist(kn, x, kn->bounds + i * d) - kn->radius[i]));
}

static void
knn_search(const mf_knn *kn, Py_ssize_t i, const double *x, double *dist, double *idx, double lower)
{
    const int64_t *node = kn->nodes + 3 * i;   /* idx_start, idx_end, is_leaf */
    if (lower > dist[0]) {
        return;
    }
    if (node[2]) {
        int64_t t;
        for (t = node[0]; t < node[1]; t++) {
            int64_t row = kn->idx_array[t];
            heap_push(dist, idx, kn->k, knn_rdist(kn, x, kn->data + row * kn->n_features),
                      (Py_ssize_t)row);
        }
    }
    else {
        Py_ssize_t i1 = 2 * i + 1, i2 = i1 + 1;
        double lb1 = knn_min_rdist(kn, i1, x), lb2 = knn_min_rdist(kn, i2, x);
        if (lb1 <= lb2) {
            knn_search(kn, i1, x, dist, idx, lb1);
            knn_search(kn, i2, x, dist, idx, lb2);
        }
        else {
            knn_search(kn, i2, x, dist, idx, lb2);
            knn_search(kn, i1, x, dist, idx, lb1);
        }
    }
}

static void
knn_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
        Py_ssize_t n_rows, mf_precision prec)
{
    const mf_knn *kn = op;
    Py_ssize_t r, t, u, k = kn->k;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *idx = out + r * n_out, *dist = idx + k;
        for (t = 0; t < k; t++) {
            dist[t] = INFINITY;
            idx[t] = 0.0;
        }
        if (kn->mode == KNN_BRUTE) {
            for (t = 0; t < kn->n_train; t++) {
                heap_push(dist, idx, k, knn_rdist(kn, x, kn->data + t * kn->n_features), t);
            }
        }
        else {
            knn_search(kn, 0, x, dist, idx, knn_min_rdist(kn, 0, x));
        }
        /* nearest first: an insertion sort keeps equal distances in heap order */
        for (t = 1; t < k; t++) {
            double dv = dist[t], iv = idx[t];
            for (u = t; u > 0 && dist[u - 1] > dv; u--) {
                dist[u] = dist[u - 1];
                idx[u] = idx[u - 1];
            }
            dist[u] = dv;
            idx[u] = iv;
        }
        for (t = 0; t < k; t++) {
            if (kn->metric == KNN_EUCLIDEAN) {
                dist[t] = sqrt(dist[t]);
            }
            else if (kn->metric == KNN_MINKOWSKI) {
                dist[t] = pow(dist[t], 1.0 / kn->p);
            }
        }
    }
}

static int
knn_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_knn *kn = op;
    Py_ssize_t i;

    if (kn->n_features != n_in || kn->n_train < 1 || kn->k < 1 || kn->k > kn->n_train ||
        kn->k > MF_KNN_MAX_K || kn->metric < KNN_EUCLIDEAN || kn->metric > KNN_MINKOWSKI ||
        kn->mode < KNN_BRUTE || kn->mode > KNN_BALL_TREE || !(kn->p >= 1.0)) {
        PyErr_Format(PyExc_ValueError,
                     "knn: %zd neighbours of %zd training rows of %zd "
                     "features (%zd input columns), metric %zd (p %g), search %zd",
                     kn->k, kn->n_train, kn->n_features, n_in, kn->metric, kn->p, kn->mode);
        return -1;
    }
    if (kn->mode != KNN_BRUTE) {
        Py_ssize_t per_node = kn->mode == KNN_KD_TREE ? 2 : 1;
        if (kn->nodes == NULL || kn->idx_array == NULL || kn->bounds == NULL ||
            kn->n_node_fields != 3 * kn->n_nodes || kn->n_nodes < 1 ||
            kn->n_bounds != per_node * kn->n_nodes * kn->n_features ||
            (kn->mode == KNN_BALL_TREE && (kn->radius == NULL || kn->n_radius != kn->n_nodes)) ||
            kn->n_idx_array != kn->n_train) {
            PyErr_Format(PyExc_ValueError,
                         "knn: a tree of %zd nodes with %zd node fields, %zd "
                         "bounds and %zd indices for %zd training rows",
                         kn->n_nodes, kn->n_node_fields, kn->n_bounds, kn->n_idx_array,
                         kn->n_train);
            return -1;
        }
        for (i = 0; i < kn->n_train; i++) {
            if (kn->idx_array[i] < 0 || kn->idx_array[i] >= kn->n_train) {
                PyErr_Format(PyExc_ValueError,
                             "knn: idx_array[%zd] = %lld points outside the "
                             "%zd training rows",
                             i, (long long)kn->idx_array[i], kn->n_train);
                return -1;
            }
        }
        for (i = 0; i < kn->n_nodes; i++) {
            const int64_t *node = kn->nodes + 3 * i;
            /* an inner node's children exist, so the walk ends at leaves
             * within log2(n_nodes) levels */
            if (node[0] < 0 || node[0] > node[1] || node[1] > kn->n_train ||
                (node[2] != 0 && node[2] != 1) || (!node[2] && 2 * i + 2 >= kn->n_nodes)) {
                PyErr_Format(PyExc_ValueError,
                             "knn: node %zd (%lld, %lld, leaf %lld) does not "
                             "fit a tree of %zd nodes over %zd rows",
                             i, (long long)node[0], (long long)node[1], (long long)node[2],
                             kn->n_nodes, kn->n_train);
                return -1;
            }
        }
    }
    *n_out = 2 * kn->k;
    return 0;
}

static int
float64_out(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static void
knn_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_knn *kn = op;
    *work = kn->mode == KNN_BRUTE ? (double)kn->n_train * (double)n_in
                                  : 64.0 * (double)n_in * log2((double)kn->n_train + 1.0);
    *steps = 0.0;
}

static const mf_field knn_fields[] = {
    MF_SCALAR_FIELD(mf_knn, mode, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_knn, metric, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_knn, p, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_knn, k, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_knn, data, NPY_DOUBLE, 0, n_train, n_features),
    MF_VECTOR_FIELD(mf_knn, idx_array, NPY_INT64, MF_FIELD_OPTIONAL, n_idx_array),
    MF_VECTOR_FIELD(mf_knn, nodes, NPY_INT64, MF_FIELD_OPTIONAL, n_node_fields),
    MF_VECTOR_FIELD(mf_knn, bounds, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_bounds),
    MF_VECTOR_FIELD(mf_knn, radius, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_radius),
    MF_SCALAR_FIELD(mf_knn, n_nodes, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_knn = {
    .name = "knn",
    .size = sizeof(mf_knn),
    .fields = knn_fields,
    .prepare = knn_prepare,
    .run = knn_run,
    .out_type = float64_out,
    .cost = knn_cost,
};

/* ---- what the neighbours say ---------------------------------------------------- */

/* A neighbour's row, read from a slot: in range, or -1 (a slot wired to
 * anything but a knn node's indices reads as no neighbour, never out of
 * bounds). */
static inline Py_ssize_t
knn_row(double idx, Py_ssize_t n_train)
{
    return (idx >= 0.0 && idx < (double)n_train) ? (Py_ssize_t)idx : -1;
}

/* _get_weights: uniform 1; distance 1 / dist, but a row with a neighbour
 * at distance 0 weighs those neighbours 1 and the others 0. */
static void
knn_weights(int distance, const double *dist, Py_ssize_t k, double *w)
{
    Py_ssize_t t;
    int zero = 0;
    for (t = 0; t < k; t++) {
        w[t] = distance ? 1.0 / dist[t] : 1.0;
        zero |= distance && isinf(w[t]);
    }
    if (zero) {
        for (t = 0; t < k; t++) {
            w[t] = isinf(w[t]) ? 1.0 : 0.0;
        }
    }
}

static void
knn_vote_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_knn_vote *v = op;
    Py_ssize_t r, t, c, k = n_in / 2, nc = v->n_classes;
    double w[MF_KNN_MAX_K], terms[MF_KNN_MAX_K];

    for (r = 0; r < n_rows; r++) {
        const double *idx = in + r * n_in, *dist = idx + k;
        double *o = out + r * n_out;
        knn_weights(v->distance, dist, k, w);
        if (v->mode_counts) {
            /* weighted_mode: each class's np.sum(template * w, axis=1) */
            for (c = 0; c < nc; c++) {
                for (t = 0; t < k; t++) {
                    Py_ssize_t row = knn_row(idx[t], v->n_train);
                    terms[t] = row >= 0 && v->labels[row] == c ? w[t] : 0.0;
                }
                o[c] = mf_pairwise_sum(terms, k);
            }
        }
        else {
            /* predict_proba: += in neighbour order, then over the row's sum */
            double total;
            for (c = 0; c < nc; c++) {
                o[c] = 0.0;
            }
            for (t = 0; t < k; t++) {
                Py_ssize_t row = knn_row(idx[t], v->n_train);
                if (row >= 0) {
                    o[v->labels[row]] += w[t];
                }
            }
            total = mf_pairwise_sum(o, nc);
            if (total == 0.0) {
                total = 1.0;
            }
            for (c = 0; c < nc; c++) {
                o[c] /= total;
            }
        }
    }
}

static int
knn_vote_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_knn_vote *v = op;
    Py_ssize_t i;
    if (n_in % 2 || n_in / 2 > MF_KNN_MAX_K || v->n_classes < 1 || v->labels == NULL) {
        PyErr_Format(PyExc_ValueError, "knn_vote: %zd columns for %zd classes", n_in, v->n_classes);
        return -1;
    }
    for (i = 0; i < v->n_labels; i++) {
        if (v->labels[i] < 0 || v->labels[i] >= v->n_classes) {
            PyErr_Format(PyExc_ValueError, "knn_vote: label %zd is %lld, not a class of %zd", i,
                         (long long)v->labels[i], v->n_classes);
            return -1;
        }
    }
    if (v->n_labels != v->n_train) {
        PyErr_Format(PyExc_ValueError, "knn_vote: %zd labels for %zd training rows", v->n_labels,
                     v->n_train);
        return -1;
    }
    *n_out = v->n_classes;
    return 0;
}

static const mf_field knn_vote_fields[] = {
    MF_SCALAR_FIELD(mf_knn_vote, n_classes, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_knn_vote, n_train, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_knn_vote, labels, NPY_INT64, 0, n_labels),
    MF_SCALAR_FIELD(mf_knn_vote, distance, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_knn_vote, mode_counts, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_knn_vote = {
    .name = "knn_vote",
    .size = sizeof(mf_knn_vote),
    .fields = knn_vote_fields,
    .prepare = knn_vote_prepare,
    .run = knn_vote_run,
    .out_type = float64_out,
};

/* KNeighborsRegressor.predict: uniform, np.mean over the neighbours (added
 * in order, then / k); distance, np.sum(y * w) / np.sum(w), pairwise. */
static void
knn_mean_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_knn_mean *m = op;
    Py_ssize_t r, t, j, k = n_in / 2;
    double w[MF_KNN_MAX_K], terms[MF_KNN_MAX_K];

    for (r = 0; r < n_rows; r++) {
        const double *idx = in + r * n_in, *dist = idx + k;
        double *o = out + r * n_out;
        if (!m->distance) {
            for (j = 0; j < n_out; j++) {
                double s = 0.0;
                for (t = 0; t < k; t++) {
                    Py_ssize_t row = knn_row(idx[t], m->n_train);
                    s += row >= 0 ? m->targets[row * n_out + j] : 0.0;
                }
                o[j] = s / (double)k;
            }
            continue;
        }
        knn_weights(1, dist, k, w);
        {
            double denom = mf_pairwise_sum(w, k);
            for (j = 0; j < n_out; j++) {
                for (t = 0; t < k; t++) {
                    Py_ssize_t row = knn_row(idx[t], m->n_train);
                    terms[t] = row >= 0 ? m->targets[row * n_out + j] * w[t] : 0.0;
                }
                o[j] = mf_pairwise_sum(terms, k) / denom;
            }
        }
    }
}

static int
knn_mean_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_knn_mean *m = op;
    if (n_in % 2 || n_in / 2 > MF_KNN_MAX_K || m->n_targets < 1 || m->n_train < 1) {
        PyErr_Format(PyExc_ValueError, "knn_mean: %zd columns, targets (%zd, %zd)", n_in,
                     m->n_train, m->n_targets);
        return -1;
    }
    *n_out = m->n_targets;
    return 0;
}

static const mf_field knn_mean_fields[] = {
    MF_MATRIX_FIELD(mf_knn_mean, targets, NPY_DOUBLE, 0, n_train, n_targets),
    MF_SCALAR_FIELD(mf_knn_mean, distance, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_knn_mean = {
    .name = "knn_mean",
    .size = sizeof(mf_knn_mean),
    .fields = knn_mean_fields,
    .prepare = knn_mean_prepare,
    .run = knn_mean_run,
    .out_type = float64_out,
};
