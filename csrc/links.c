/*
 * links.c -- from raw scores to what a method returns: probabilities, label
 * indices, regression outputs and isolation-forest scores, each computed the
 * way scikit-learn computes it (same formula, same order of operations).
 */
#include "mlfast.h"
#include <math.h>

/* scipy.special.expit */
static inline double
expit(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* sklearn.utils.extmath.softmax on one row, in place */
static void
softmax_row(double *p, Py_ssize_t k)
{
    Py_ssize_t j;
    double max = p[0], sum = 0.0;
    for (j = 1; j < k; j++) {
        if (p[j] > max) {
            max = p[j];
        }
    }
    for (j = 0; j < k; j++) {
        p[j] = exp(p[j] - max);
    }
    for (j = 0; j < k; j++) {
        sum += p[j];
    }
    for (j = 0; j < k; j++) {
        p[j] /= sum;
    }
}

static inline double
clip1(double v)
{
    return v < -1.0 ? -1.0 : (v > 1.0 ? 1.0 : v);
}

/* Divides a row by its sum; a zero sum leaves 1/k (LinearClassifierMixin and
 * SGDClassifier) or the row itself (trees before 1.4: normalizer 0 -> 1). */
static void
normalize_row(double *p, Py_ssize_t k, int zero_to_uniform)
{
    Py_ssize_t j;
    double sum = 0.0;
    for (j = 0; j < k; j++) {
        sum += p[j];
    }
    if (sum == 0.0) {
        if (zero_to_uniform) {
            for (j = 0; j < k; j++) {
                p[j] = 1.0 / (double)k;
            }
        }
        return;
    }
    for (j = 0; j < k; j++) {
        p[j] /= sum;
    }
}

static void
proba_run(const void *op, const double *raw, Py_ssize_t n_raw, double *proba, Py_ssize_t k,
          Py_ssize_t n_rows, mf_precision prec)
{
    const mf_proba *pr = op;
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        const double *d = raw + r * n_raw;
        double *p = proba + r * k;
        switch ((mf_proba_rule)pr->rule) {
        case MF_PROBA_EXPIT_OVR:
            /* LinearClassifierMixin._predict_proba_lr; binary losses too */
            if (n_raw == 1) {
                p[1] = expit(d[0]);
                p[0] = 1.0 - p[1];
                break;
            }
            for (j = 0; j < k; j++) {
                p[j] = expit(d[j]);
            }
            normalize_row(p, k, 1);
            break;
        case MF_PROBA_EXPIT2:
            p[1] = expit(2.0 * d[0]);
            p[0] = 1.0 - p[1];
            break;
        case MF_PROBA_SOFTMAX_BINARY:
            /* multinomial binary LogisticRegression before 1.5: [-d, d] */
            p[0] = -d[0];
            p[1] = d[0];
            softmax_row(p, 2);
            break;
        case MF_PROBA_SOFTMAX:
            for (j = 0; j < k; j++) {
                p[j] = d[j];
            }
            softmax_row(p, k);
            break;
        case MF_PROBA_MODIFIED_HUBER:
            /* SGDClassifier.predict_proba for loss='modified_huber' */
            if (n_raw == 1) {
                p[1] = (clip1(d[0]) + 1.0) / 2.0;
                p[0] = 1.0 - p[1];
                break;
            }
            for (j = 0; j < k; j++) {
                p[j] = (clip1(d[j]) + 1.0) / 2.0;
            }
            normalize_row(p, k, 1);
            break;
        case MF_PROBA_NORMALIZE:
            for (j = 0; j < k; j++) {
                p[j] = d[j];
            }
            normalize_row(p, k, 0);
            break;
        }
    }
}

/* numpy.argmax: the first maximum */
static inline npy_intp
argmax(const double *d, Py_ssize_t k)
{
    npy_intp best = 0;
    Py_ssize_t j;
    for (j = 1; j < k; j++) {
        if (d[j] > d[best]) {
            best = j;
        }
    }
    return best;
}

/* A row's class index, as a double: the first maximum of its scores, or
 * whether its one score passes the threshold. */
static void
labels_run(const void *op, const double *scores, Py_ssize_t width, double *index, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_labels *lb = op;
    Py_ssize_t r;
    for (r = 0; r < n_rows; r++) {
        const double *d = scores + r * width;
        switch ((mf_label_rule)lb->rule) {
        case MF_LABEL_THRESHOLD:
            index[r] = d[0] > lb->threshold ? 1.0 : 0.0;
            break;
        case MF_LABEL_THRESHOLD_GE:
            index[r] = d[0] >= lb->threshold ? 1.0 : 0.0;
            break;
        default:
            index[r] = (double)argmax(d, width);
            break;
        }
    }
}

/* IsolationForest: score_samples = -2 ** (-depths / denominator) (-0.5 when
 * the denominator is 0), decision_function = that - offset_ (score_samples
 * has offset 0, which changes nothing).  LOG: predict_log_proba, of the
 * probabilities as stored (float32 ones are logged as float32: 0 -> -inf). */
static void
post_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
         Py_ssize_t n_rows, mf_precision prec)
{
    const mf_post *po = op;
    Py_ssize_t i, count = n_rows * n_in;
    switch ((mf_post_rule)po->rule) {
    case MF_POST_EXP:
        for (i = 0; i < count; i++) {
            out[i] = exp(in[i]);
        }
        break;
    case MF_POST_IFOREST:
        for (i = 0; i < count; i++) {
            double ratio = po->denominator != 0.0 ? in[i] / po->denominator : 1.0;
            out[i] = -pow(2.0, -ratio) - po->offset;
        }
        break;
    case MF_POST_LOG:
        for (i = 0; i < count; i++) {
            out[i] = log(prec == MF_F64 ? in[i] : mf_round_to(prec, in[i]));
        }
        break;
    }
}

/* ---- the op definitions -------------------------------------------------------- */

static int
no_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
         mf_err_kind *err)
{
    return 0;
}

static int
proba_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_proba *pr = op;
    int binary = pr->rule == MF_PROBA_EXPIT2 || pr->rule == MF_PROBA_SOFTMAX_BINARY;
    int ok = pr->rule >= MF_PROBA_EXPIT_OVR && pr->rule <= MF_PROBA_EXPIT2 && pr->n_classes >= 1;
    if (ok && binary) {
        ok = n_in == 1 && pr->n_classes == 2;
    }
    else if (ok && (pr->rule == MF_PROBA_EXPIT_OVR || pr->rule == MF_PROBA_MODIFIED_HUBER)) {
        ok = (n_in == 1 && pr->n_classes == 2) || (n_in > 1 && n_in == pr->n_classes);
    }
    else if (ok) {
        ok = n_in == pr->n_classes;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError,
                     "proba: rule %zd does not make %zd classes of %zd "
                     "scores",
                     pr->rule, pr->n_classes, n_in);
        return -1;
    }
    *n_out = pr->n_classes;
    return 0;
}

static const mf_field proba_fields[] = {
    MF_SCALAR_FIELD(mf_proba, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_proba, n_classes, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_proba = {
    .name = "proba",
    .size = sizeof(mf_proba),
    .fields = proba_fields,
    .prepare = proba_prepare,
    .run = proba_run,
    .check = no_check,
};

static int
labels_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_labels *lb = op;
    if (lb->rule < MF_LABEL_THRESHOLD || lb->rule > MF_LABEL_ARGMAX ||
        (lb->rule != MF_LABEL_ARGMAX && n_in != 1)) {
        PyErr_Format(PyExc_ValueError, "labels: rule %zd does not read %zd scores", lb->rule, n_in);
        return -1;
    }
    *n_out = 1;
    return 0;
}

static int
labels_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static const mf_field labels_fields[] = {
    MF_SCALAR_FIELD(mf_labels, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_labels, threshold, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_labels = {
    .name = "labels",
    .size = sizeof(mf_labels),
    .fields = labels_fields,
    .prepare = labels_prepare,
    .run = labels_run,
    .out_type = labels_out_type,
    .check = no_check,
};

static int
post_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_post *po = op;
    if (po->rule < MF_POST_EXP || po->rule > MF_POST_LOG) {
        PyErr_Format(PyExc_ValueError, "post: unknown rule %zd", po->rule);
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static const mf_field post_fields[] = {
    MF_SCALAR_FIELD(mf_post, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_post, denominator, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_post, offset, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_post = {
    .name = "post",
    .size = sizeof(mf_post),
    .fields = post_fields,
    .prepare = post_prepare,
    .run = post_run,
    .check = no_check,
};
