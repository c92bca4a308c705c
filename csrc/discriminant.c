/*
 * discriminant.c -- QuadraticDiscriminantAnalysis's log posteriors, and
 * what the discriminant analyses make of their scores (the binary
 * difference, log probabilities, probabilities).
 * LinearDiscriminantAnalysis's scores and transform are products (the
 * linear op, linear.c, after affine for the svd solver's centring).
 *
 * qda: scikit-learn's _decision_function: for class i,
 * -0.5 * (sum((x - means[i]) @ W[i]) ** 2) + u[i]) + log_prior[i], where
 * W[i] = rotations_[i] * scalings_[i] ** -0.5, u[i] = sum(log(scalings_[i]))
 * and log_prior = log(priors_) are computed by the builder with numpy.  The
 * sum of squares is numpy's pairwise sum along the row; the product adds in
 * order (numpy's is a BLAS product: a few ulps apart).
 */
#include "mlfast.h"
#include <math.h>

/* Widest rank of a class's rotation a row keeps on the stack. */
#define MF_QDA_MAX_RANK 4096

static void
qda_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
        Py_ssize_t n_rows, mf_precision prec)
{
    const mf_qda *q = op;
    Py_ssize_t r, c, j, t, d = q->n_features, m = q->rank;
    double xm[MF_QDA_MAX_RANK], x2[MF_QDA_MAX_RANK];

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        for (c = 0; c < q->n_classes; c++) {
            const double *mean = q->means + c * d;
            const double *w = q->weights + c * d * m;   /* (d, m) row-major */
            for (j = 0; j < d; j++) {
                xm[j] = x[j] - mean[j];
            }
            for (t = 0; t < m; t++) {
                double acc = 0.0;
                for (j = 0; j < d; j++) {
                    acc += xm[j] * w[j * m + t];
                }
                x2[t] = acc * acc;
            }
            out[r * n_out + c] = -0.5 * (mf_pairwise_sum(x2, m) + q->u[c]) + q->log_prior[c];
        }
    }
}

static int
qda_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_qda *q = op;
    Py_ssize_t k = q->n_classes;

    if (k < 1 || q->n_features != n_in || n_in > MF_QDA_MAX_RANK || q->rank < 1 || q->rank > n_in ||
        q->n_mean_rows != k || q->n_weights != k * n_in * q->rank || q->n_u != k ||
        q->n_log_prior != k) {
        PyErr_Format(PyExc_ValueError,
                     "qda: means (%zd, %zd), %zd weights of rank %zd, %zd "
                     "and %zd class constants for %zd classes and %zd input columns (at most "
                     "%d)",
                     q->n_mean_rows, q->n_features, q->n_weights, q->rank, q->n_u, q->n_log_prior,
                     k, n_in, MF_QDA_MAX_RANK);
        return -1;
    }
    *n_out = k;
    return 0;
}

static int
float64_out(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static void
qda_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_qda *q = op;
    *work = (double)n_out * (double)n_in * (double)(q->rank + 1);
    *steps = 0.0;
}

static const mf_field qda_fields[] = {
    MF_SCALAR_FIELD(mf_qda, n_classes, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_qda, rank, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_qda, means, NPY_DOUBLE, 0, n_mean_rows, n_features),
    MF_VECTOR_FIELD(mf_qda, weights, NPY_DOUBLE, 0, n_weights),
    MF_VECTOR_FIELD(mf_qda, u, NPY_DOUBLE, 0, n_u),
    MF_VECTOR_FIELD(mf_qda, log_prior, NPY_DOUBLE, 0, n_log_prior),
    MF_END_FIELDS,
};

const mf_op_def mf_op_qda = {
    .name = "qda",
    .size = sizeof(mf_qda),
    .fields = qda_fields,
    .prepare = qda_prepare,
    .run = qda_run,
    .out_type = float64_out,
    .cost = qda_cost,
};

/* ---- da_post ------------------------------------------------------------------- */

static void
da_post_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_da_post *dp = op;
    Py_ssize_t r, c, k = n_in;

    for (r = 0; r < n_rows; r++) {
        const double *s = in + r * n_in;
        double *o = out + r * n_out;
        double smax, total;
        switch (dp->rule) {
        case MF_DA_DIFF:
            o[0] = s[1] - s[0];
            continue;
        case MF_DA_LOG_TINY:
            /* LDA.predict_log_proba: a probability of 0 raised to the
             * smallest normal float first */
            for (c = 0; c < k; c++) {
                o[c] = log(s[c] == 0.0 ? s[c] + 2.2250738585072014e-308 : s[c]);
            }
            continue;
        default:
            break;
        }
        smax = mf_row_max(s, k);
        for (c = 0; c < k; c++) {
            o[c] = exp(s[c] - smax);
        }
        total = mf_pairwise_sum(o, k);
        if (dp->rule == MF_DA_PROBA_OLD) {
            /* QDA.predict_proba before 1.6: exp(s - max) / sum */
            for (c = 0; c < k; c++) {
                o[c] = o[c] / total;
            }
        }
        else {
            /* DiscriminantAnalysisPredictionMixin (1.6): log likelihoods
             * minus log(sum(exp)); PROBA: their exp */
            double lse = log(total);
            for (c = 0; c < k; c++) {
                o[c] = (s[c] - smax) - lse;
                if (dp->rule == MF_DA_PROBA) {
                    o[c] = exp(o[c]);
                }
            }
        }
    }
}

static int
da_post_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_da_post *dp = op;
    if (dp->rule < MF_DA_DIFF || dp->rule > MF_DA_LOG_TINY ||
        (dp->rule == MF_DA_DIFF && n_in != 2)) {
        PyErr_Format(PyExc_ValueError, "da_post: rule %zd over %zd scores", dp->rule, n_in);
        return -1;
    }
    *n_out = dp->rule == MF_DA_DIFF ? 1 : n_in;
    return 0;
}

static const mf_field da_post_fields[] = {
    MF_SCALAR_FIELD(mf_da_post, rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_da_post = {
    .name = "da_post",
    .size = sizeof(mf_da_post),
    .fields = da_post_fields,
    .prepare = da_post_prepare,
    .run = da_post_run,
    .out_type = float64_out,
};
