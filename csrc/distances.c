/*
 * distances.c -- models that score a row by its distances to stored points:
 * quadratic forms (Mahalanobis distances, Gaussian log-likelihoods), Gaussian
 * mixtures, kernel ridge regression, nearest centroids (KMeans).
 *
 * Each kernel follows the formula scikit-learn writes, term by term and in
 * its order (the products summed in order rather than by BLAS, which the
 * 1e-12 bound covers).  A row needs no scratch memory: every term is
 * computed where it is summed.
 */
#include "mlfast.h"
#include <float.h>
#include <math.h>
#include <string.h>

static int
double_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

/* x rounded as numpy would store it in the input's float type (float32
 * input squared in float32 before a float64 product). */
static double
in_round(mf_precision prec, double v)
{
    return prec == MF_F64 ? v : mf_round_to(prec, v);
}

/* ---- quadform ------------------------------------------------------------------ */

static void
quadform_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_quadform *qf = op;
    Py_ssize_t d = qf->n_loc, r, i, j;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double q = 0.0;
        for (j = 0; j < d; j++) {
            double t = 0.0;
            for (i = 0; i < d; i++) {
                t += (x[i] - qf->loc[i]) * qf->prec[i * d + j];
            }
            q += (x[j] - qf->loc[j]) * t;
        }
        out[r] = qf->mul * q + qf->add;
    }
}

static int
quadform_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_quadform *qf = op;
    if (qf->n_loc != n_in || qf->n_prec_rows != n_in || qf->n_prec_cols != n_in) {
        PyErr_Format(PyExc_ValueError,
                     "quadform: location of %zd and precision (%zd, %zd) "
                     "for %zd columns",
                     qf->n_loc, qf->n_prec_rows, qf->n_prec_cols, n_in);
        return -1;
    }
    *n_out = 1;
    return 0;
}

static void
quadform_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_in * (double)n_in * 2.0;
    *steps = 0.0;
}

static const mf_field quadform_fields[] = {
    MF_VECTOR_FIELD(mf_quadform, loc, NPY_DOUBLE, 0, n_loc),
    MF_MATRIX_FIELD(mf_quadform, prec, NPY_DOUBLE, 0, n_prec_rows, n_prec_cols),
    MF_SCALAR_FIELD(mf_quadform, mul, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_quadform, add, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_quadform = {
    .name = "quadform",
    .size = sizeof(mf_quadform),
    .fields = quadform_fields,
    .prepare = quadform_prepare,
    .run = quadform_run,
    .out_type = double_out_type,
    .cost = quadform_cost,
};

/* ---- mixture ------------------------------------------------------------------- */

/* scipy.special.logsumexp of a row: the largest value (0 when it is not
 * finite) taken out, the exponentials summed in order, its log added back. */
static double
log_sum_exp(const double *v, Py_ssize_t k)
{
    double top = -INFINITY, s = 0.0;
    Py_ssize_t i;
    for (i = 0; i < k; i++) {
        if (v[i] > top || isnan(v[i])) {
            top = v[i];
        }
    }
    if (!isfinite(top)) {
        top = 0.0;
    }
    for (i = 0; i < k; i++) {
        s += exp(v[i] - top);
    }
    return log(s) + top;
}

/* The squared Mahalanobis term of sklearn.mixture._gaussian_mixture.
 * _estimate_log_gaussian_prob for component c of a row. */
static double
mixture_term(const mf_mixture *mx, const double *x, Py_ssize_t d, Py_ssize_t c, mf_precision prec)
{
    const double *shift = mx->shift + c * d;
    double lp = 0.0, dot = 0.0, sq = 0.0;
    Py_ssize_t i, j;

    switch ((mf_mixture_rule)mx->rule) {
    case MF_MIX_FULL:
    case MF_MIX_TIED: {
        /* y = X @ prec_chol - mu @ prec_chol; sum(y ** 2) */
        const double *p = mx->prec + (mx->rule == MF_MIX_FULL ? c * d * d : 0);
        for (j = 0; j < d; j++) {
            double y = 0.0;
            for (i = 0; i < d; i++) {
                y += x[i] * p[i * d + j];
            }
            y -= shift[j];
            lp += y * y;
        }
        return lp;
    }
    case MF_MIX_DIAG: {
        /* sum(mu ** 2 * p) - 2 X @ (mu * p).T + (X ** 2) @ p.T, X ** 2 in X's type */
        const double *p = mx->prec + c * d;
        for (i = 0; i < d; i++) {
            dot += x[i] * shift[i];
            sq += in_round(prec, x[i] * x[i]) * p[i];
        }
        return (mx->base[c] - 2.0 * dot) + sq;
    }
    default: {
        /* sum(mu ** 2) * p - 2 X @ (mu.T * p) + outer(row_norms(X) ** 2, p),
         * the row norms summed in X's type */
        for (i = 0; i < d; i++) {
            dot += x[i] * shift[i];
            sq = in_round(prec, sq + in_round(prec, x[i] * x[i]));
        }
        return (mx->base[c] - 2.0 * dot) + sq * mx->prec[c];
    }
    }
}

static void
mixture_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_mixture *mx = op;
    Py_ssize_t k = mx->n_components, r, c, a;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *o = out + r * n_out;
        double lse;
        for (c = 0; c < k; c++) {
            double lp = mixture_term(mx, x, n_in, c, prec), v;
            if (prec == MF_F32 && mx->f32_terms > 0 && mx->rule <= MF_MIX_TIED) {
                lp = mf_round_to(MF_F32, lp);
                v = mf_round_to(MF_F32, -0.5 * mf_round_to(MF_F32, mx->log_2pi_d_f32 + lp));
            }
            else {
                v = -0.5 * (mx->log_2pi_d + lp);
            }
            for (a = 0; a < mx->n_adds_rows; a++) {
                v += mx->adds[a * k + c];
            }
            o[c] = v;
        }
        lse = log_sum_exp(o, k);
        o[k] = lse;
        for (c = 0; c < k; c++) {
            o[k + 1 + c] = exp(o[c] - lse);
        }
    }
}

static int
mixture_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_mixture *mx = op;
    Py_ssize_t k = mx->n_components, want = -1;

    if (k >= 1 && k <= (PY_SSIZE_T_MAX / 4) / (n_in * n_in + 1)) {
        switch (mx->rule) {
        case MF_MIX_FULL:
            want = k * n_in * n_in;
            break;
        case MF_MIX_TIED:
            want = n_in * n_in;
            break;
        case MF_MIX_DIAG:
            want = k * n_in;
            break;
        case MF_MIX_SPHERICAL:
            want = k;
            break;
        default:
            break;
        }
    }
    if (want < 0 || mx->n_prec != want || mx->n_shift_rows != k || mx->n_shift_cols != n_in ||
        mx->n_base != k || mx->n_adds_cols != k) {
        PyErr_Format(PyExc_ValueError,
                     "mixture: rule %zd with %zd components: %zd "
                     "precision values, shift (%zd, %zd), %zd constants and adds (%zd, %zd) "
                     "for %zd columns",
                     mx->rule, k, mx->n_prec, mx->n_shift_rows, mx->n_shift_cols, mx->n_base,
                     mx->n_adds_rows, mx->n_adds_cols, n_in);
        return -1;
    }
    *n_out = 2 * k + 1;
    return 0;
}

static void
mixture_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_mixture *mx = op;
    double per = mx->rule <= MF_MIX_TIED ? (double)n_in * (double)n_in : 2.0 * (double)n_in;
    *work = per * (double)mx->n_components + (double)n_out;
    *steps = 0.0;
}

static const mf_field mixture_fields[] = {
    MF_SCALAR_FIELD(mf_mixture, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_mixture, n_components, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_mixture, prec, NPY_DOUBLE, 0, n_prec),
    MF_MATRIX_FIELD(mf_mixture, shift, NPY_DOUBLE, 0, n_shift_rows, n_shift_cols),
    MF_VECTOR_FIELD(mf_mixture, base, NPY_DOUBLE, 0, n_base),
    MF_MATRIX_FIELD(mf_mixture, adds, NPY_DOUBLE, 0, n_adds_rows, n_adds_cols),
    MF_SCALAR_FIELD(mf_mixture, log_2pi_d, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_mixture, f32_terms, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_mixture, log_2pi_d_f32, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_mixture = {
    .name = "mixture",
    .size = sizeof(mf_mixture),
    .fields = mixture_fields,
    .prepare = mixture_prepare,
    .run = mixture_run,
    .out_type = double_out_type,
    .cost = mixture_cost,
};

/* ---- kernel_dual --------------------------------------------------------------- */

/* The kernel of row x and stored row y (sklearn.metrics.pairwise). */
static double
kernel_value(const mf_kernel_dual *kd, const double *x, double x_norm, Py_ssize_t i, Py_ssize_t d)
{
    const double *y = kd->fit + i * d;
    double s = 0.0, t;
    Py_ssize_t j;

    switch ((mf_kernel_rule)kd->rule) {
    case MF_KER_LINEAR:
    case MF_KER_POLY:
    case MF_KER_SIGMOID:
        for (j = 0; j < d; j++) {
            s += x[j] * y[j];
        }
        if (kd->rule == MF_KER_LINEAR) {
            return s;
        }
        t = s * kd->gamma + kd->coef0;
        return kd->rule == MF_KER_POLY ? pow(t, kd->degree) : tanh(t);
    case MF_KER_RBF:
        /* euclidean_distances(squared=True): -2 x.y + ||x||^2 + ||y||^2, at least 0 */
        for (j = 0; j < d; j++) {
            s += x[j] * y[j];
        }
        t = (-2.0 * s + x_norm) + kd->fit_norms[i];
        t = t < 0.0 ? 0.0 : t;
        return exp(t * -kd->gamma);
    case MF_KER_LAPLACIAN:
        for (j = 0; j < d; j++) {
            s += fabs(x[j] - y[j]);
        }
        return exp(-kd->gamma * s);
    case MF_KER_COSINE:
        /* the stored rows are normalised already; x / ||x|| */
        for (j = 0; j < d; j++) {
            s += (x[j] / x_norm) * y[j];
        }
        return s;
    default:
        /* chi2 and additive_chi2: -sum((x - y)^2 / (x + y)) over x + y != 0 */
        for (j = 0; j < d; j++) {
            double den = x[j] + y[j];
            if (den != 0.0) {
                double num = x[j] - y[j];
                s += num * num / den;
            }
        }
        return kd->rule == MF_KER_CHI2 ? exp(-s * kd->gamma) : -s;
    }
}

static void
kernel_dual_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                Py_ssize_t n_rows, mf_precision prec)
{
    const mf_kernel_dual *kd = op;
    Py_ssize_t r, i, t, j, n_fit = kd->n_fit;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *o = out + r * n_out;
        double x_norm = 0.0;
        if (kd->rule == MF_KER_RBF || kd->rule == MF_KER_COSINE) {
            for (j = 0; j < n_in; j++) {
                x_norm += x[j] * x[j];
            }
            if (kd->rule == MF_KER_COSINE) {
                /* normalize(): norms below 10 eps count as 1 (_handle_zeros_in_scale) */
                x_norm = sqrt(x_norm);
                x_norm = x_norm < 10.0 * DBL_EPSILON ? 1.0 : x_norm;
            }
        }
        if (kd->dual == NULL) {
            /* the kernel itself (KernelPCA) */
            for (i = 0; i < n_fit; i++) {
                o[i] = kernel_value(kd, x, x_norm, i, n_in);
            }
            continue;
        }
        for (t = 0; t < n_out; t++) {
            o[t] = 0.0;
        }
        for (i = 0; i < n_fit; i++) {
            double k = kernel_value(kd, x, x_norm, i, n_in);
            for (t = 0; t < n_out; t++) {
                o[t] += k * kd->dual[i * n_out + t];
            }
        }
    }
}

static int
kernel_dual_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_kernel_dual *kd = op;
    if (kd->rule < MF_KER_LINEAR || kd->rule > MF_KER_ADDITIVE_CHI2 || kd->n_fit < 1 ||
        kd->n_fit_features != n_in ||
        (kd->dual != NULL && (kd->n_dual_rows != kd->n_fit || kd->n_dual_cols < 1)) ||
        (kd->rule == MF_KER_RBF && kd->n_fit_norms != kd->n_fit)) {
        PyErr_Format(PyExc_ValueError,
                     "kernel_dual: rule %zd, stored rows (%zd, %zd), dual "
                     "coefficients (%zd, %zd), %zd norms for %zd columns",
                     kd->rule, kd->n_fit, kd->n_fit_features, kd->n_dual_rows, kd->n_dual_cols,
                     kd->n_fit_norms, n_in);
        return -1;
    }
    *n_out = kd->dual != NULL ? kd->n_dual_cols : kd->n_fit;
    return 0;
}

static void
kernel_dual_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_kernel_dual *kd = op;
    *work = (double)kd->n_fit * (double)(n_in + (kd->dual != NULL ? n_out : 1));
    *steps = 0.0;
}

static const mf_field kernel_dual_fields[] = {
    MF_SCALAR_FIELD(mf_kernel_dual, rule, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_kernel_dual, fit, NPY_DOUBLE, 0, n_fit, n_fit_features),
    MF_MATRIX_FIELD(mf_kernel_dual, dual, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_dual_rows, n_dual_cols),
    MF_VECTOR_FIELD(mf_kernel_dual, fit_norms, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_fit_norms),
    MF_SCALAR_FIELD(mf_kernel_dual, gamma, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_kernel_dual, coef0, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_kernel_dual, degree, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_kernel_dual = {
    .name = "kernel_dual",
    .size = sizeof(mf_kernel_dual),
    .fields = kernel_dual_fields,
    .prepare = kernel_dual_prepare,
    .run = kernel_dual_run,
    .out_type = double_out_type,
    .cost = kernel_dual_cost,
};

/* ---- nearest ------------------------------------------------------------------- */

static double
dot_row(const double *x, const double *c, Py_ssize_t d)
{
    double s = 0.0;
    Py_ssize_t j;
    for (j = 0; j < d; j++) {
        s += x[j] * c[j];
    }
    return s;
}

static void
nearest_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_nearest *nr = op;
    Py_ssize_t r, k;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double xx = nr->rule == MF_NEAREST_DISTANCES ? dot_row(x, x, n_in) : 0.0;
        for (k = 0; k < nr->n_centers; k++) {
            /* ||c||^2 - 2 x.c (the gemm with beta 1 of _k_means_lloyd) */
            double v = -2.0 * dot_row(x, nr->centers + k * n_in, n_in);
            if (nr->rule == MF_NEAREST_SCORES) {
                out[r * n_out + k] = -(v + nr->norms[k]);
            }
            else {
                /* euclidean_distances: -2 x.c + ||x||^2 + ||c||^2, at least 0 */
                v = (v + xx) + nr->norms[k];
                out[r * n_out + k] = sqrt(v < 0.0 ? 0.0 : v);
            }
        }
    }
}

static int
nearest_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_nearest *nr = op;
    if ((nr->rule != MF_NEAREST_SCORES && nr->rule != MF_NEAREST_DISTANCES) || nr->n_centers < 1 ||
        nr->n_center_features != n_in || nr->n_norms != nr->n_centers) {
        PyErr_Format(PyExc_ValueError,
                     "nearest: rule %zd, centers (%zd, %zd), %zd norms for "
                     "%zd columns",
                     nr->rule, nr->n_centers, nr->n_center_features, nr->n_norms, n_in);
        return -1;
    }
    *n_out = nr->n_centers;
    return 0;
}

static void
nearest_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_in * (double)(n_out + 1);
    *steps = 0.0;
}

static const mf_field nearest_fields[] = {
    MF_SCALAR_FIELD(mf_nearest, rule, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_nearest, centers, NPY_DOUBLE, 0, n_centers, n_center_features),
    MF_VECTOR_FIELD(mf_nearest, norms, NPY_DOUBLE, 0, n_norms),
    MF_END_FIELDS,
};

const mf_op_def mf_op_nearest = {
    .name = "nearest",
    .size = sizeof(mf_nearest),
    .fields = nearest_fields,
    .prepare = nearest_prepare,
    .run = nearest_run,
    .out_type = double_out_type,
    .cost = nearest_cost,
};

/* ---- bisect -------------------------------------------------------------------- */

static void
bisect_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_bisect *bs = op;
    Py_ssize_t r;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        int64_t node = 0;
        while (bs->left[node] >= 0) {
            int64_t l = bs->left[node], rt = bs->right[node];
            double dl = -2.0 * dot_row(x, bs->centers + l * n_in, n_in) + bs->norms[l];
            double dr = -2.0 * dot_row(x, bs->centers + rt * n_in, n_in) + bs->norms[rt];
            node = dr < dl ? rt : l;
        }
        memset(out + r * n_out, 0, (size_t)n_out * sizeof(double));
        out[r * n_out + bs->label[node]] = 1.0;
    }
}

static int
bisect_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_bisect *bs = op;
    Py_ssize_t n = bs->n_left, i;
    if (n < 1 || bs->n_right != n || bs->n_label != n || bs->n_centers != n ||
        bs->n_center_features != n_in || bs->n_norms != n) {
        PyErr_Format(PyExc_ValueError,
                     "bisect: %zd nodes with %zd, %zd, %zd, (%zd, %zd), %zd "
                     "values for %zd columns",
                     n, bs->n_right, bs->n_label, bs->n_centers, bs->n_center_features, bs->n_norms,
                     n_in);
        return -1;
    }
    for (i = 0; i < n; i++) {
        /* children come after their parent (preorder): the walk ends; a
         * leaf's label is one of the n_clusters output columns */
        int leaf = bs->left[i] < 0;
        if ((leaf && (bs->right[i] >= 0 || bs->label[i] < 0 || bs->label[i] >= bs->n_clusters)) ||
            (!leaf &&
             (bs->left[i] <= i || bs->left[i] >= n || bs->right[i] <= i || bs->right[i] >= n))) {
            PyErr_Format(PyExc_ValueError,
                         "bisect: node %zd has children %lld and %lld of "
                         "%zd nodes",
                         i, (long long)bs->left[i], (long long)bs->right[i], n);
            return -1;
        }
    }
    *n_out = bs->n_clusters;
    return 0;
}

static const mf_field bisect_fields[] = {
    MF_SCALAR_FIELD(mf_bisect, n_clusters, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_bisect, left, NPY_INT64, 0, n_left),
    MF_VECTOR_FIELD(mf_bisect, right, NPY_INT64, 0, n_right),
    MF_VECTOR_FIELD(mf_bisect, label, NPY_INT64, 0, n_label),
    MF_MATRIX_FIELD(mf_bisect, centers, NPY_DOUBLE, 0, n_centers, n_center_features),
    MF_VECTOR_FIELD(mf_bisect, norms, NPY_DOUBLE, 0, n_norms),
    MF_END_FIELDS,
};

const mf_op_def mf_op_bisect = {
    .name = "bisect",
    .size = sizeof(mf_bisect),
    .fields = bisect_fields,
    .prepare = bisect_prepare,
    .run = bisect_run,
    .out_type = double_out_type,
};

/* ---- codes --------------------------------------------------------------------- */

int
mf_family_codes(PyObject *table)
{
    PyObject *codes =
        Py_BuildValue("{s{sisisisi}s{sisisisisisisisi}s{sisi}}", "mixture", "FULL", MF_MIX_FULL,
                      "TIED", MF_MIX_TIED, "DIAG", MF_MIX_DIAG, "SPHERICAL", MF_MIX_SPHERICAL,
                      "kernel", "LINEAR", MF_KER_LINEAR, "POLY", MF_KER_POLY, "RBF", MF_KER_RBF,
                      "SIGMOID", MF_KER_SIGMOID, "LAPLACIAN", MF_KER_LAPLACIAN, "COSINE",
                      MF_KER_COSINE, "CHI2", MF_KER_CHI2, "ADDITIVE_CHI2", MF_KER_ADDITIVE_CHI2,
                      "nearest", "SCORES", MF_NEAREST_SCORES, "DISTANCES", MF_NEAREST_DISTANCES);
    int rc = -1;
    if (codes == NULL) {
        goto done;
    }
    if (PyDict_Update(table, codes) < 0 || mf_preprocess_codes(table) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(codes);
    return rc;
}
