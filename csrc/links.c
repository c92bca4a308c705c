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

void
mf_proba(mf_proba_rule rule, const double *raw, Py_ssize_t n_rows, Py_ssize_t n_raw,
         Py_ssize_t k, double *proba)
{
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        const double *d = raw + r * n_raw;
        double *p = proba + r * k;
        switch (rule) {
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
        case MF_PROBA_IDENTITY:
            for (j = 0; j < k; j++) {
                p[j] = d[j];
            }
            break;
        case MF_PROBA_NORMALIZE:
            for (j = 0; j < k; j++) {
                p[j] = d[j];
            }
            normalize_row(p, k, 0);
            break;
        case MF_PROBA_NONE:
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

/* `scores` is raw, or the probabilities for MF_LABEL_PROBA_ARGMAX. */
void
mf_labels(mf_label_rule rule, const double *scores, Py_ssize_t n_rows, Py_ssize_t width,
          npy_intp *index)
{
    Py_ssize_t r;
    for (r = 0; r < n_rows; r++) {
        const double *d = scores + r * width;
        switch (rule) {
        case MF_LABEL_THRESHOLD:
            index[r] = d[0] > 0.0;
            break;
        case MF_LABEL_THRESHOLD_GE:
            index[r] = d[0] >= 0.0;
            break;
        default:
            index[r] = argmax(d, width);
            break;
        }
    }
}

/* In place.  IsolationForest: score_samples = -2 ** (-depths / denominator)
 * (-0.5 when the denominator is 0), decision_function = that - offset_. */
void
mf_post(mf_post_rule rule, double *raw, Py_ssize_t count, double denominator,
        double offset, int with_offset)
{
    Py_ssize_t i;
    switch (rule) {
    case MF_POST_EXP:
        for (i = 0; i < count; i++) {
            raw[i] = exp(raw[i]);
        }
        break;
    case MF_POST_IFOREST:
        for (i = 0; i < count; i++) {
            double ratio = denominator != 0.0 ? raw[i] / denominator : 1.0;
            raw[i] = -pow(2.0, -ratio);
            if (with_offset) {
                raw[i] = raw[i] - offset;
            }
        }
        break;
    case MF_POST_NONE:
        break;
    }
}
