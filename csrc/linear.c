/*
 * linear.c -- linear models: raw scores, link functions, labels.
 *
 * raw = X @ coef.T + intercept, as scikit-learn computes it (the product
 * first, then the intercept added).  A block of a few rows against a narrow
 * model is a plain loop; wider products go to OpenBLAS (scipy-openblas32),
 * single-threaded: mlfast splits rows across its own threads instead.
 */
#include "mlfast.h"
#include <math.h>

typedef enum { CblasRowMajor = 101 } mf_cblas_order;
typedef enum { CblasNoTrans = 111, CblasTrans = 112 } mf_cblas_trans;

/* scipy-openblas32 exports its symbols with a scipy_ prefix, so it never
 * clashes with the OpenBLAS inside numpy's wheel. */
extern void scipy_cblas_dgemm(mf_cblas_order order, mf_cblas_trans ta, mf_cblas_trans tb,
                              int m, int n, int k, double alpha, const double *a,
                              int lda, const double *b, int ldb, double beta,
                              double *c, int ldc);
extern void scipy_openblas_set_num_threads(int n);

int
mf_blas_init(void)
{
    scipy_openblas_set_num_threads(1);
    return 0;
}

/* Below this many multiply-adds per block the call overhead of dgemm
 * (and its packing) costs more than a loop. */
#define MF_GEMM_MIN_WORK 4096

void
mf_linear_raw(const mf_linear *lin, const double *x, Py_ssize_t n_rows, double *raw)
{
    Py_ssize_t d = lin->n_features, k = lin->n_outputs, r, o, j;

    if (n_rows > 1 && n_rows * d * k >= MF_GEMM_MIN_WORK && d < INT32_MAX &&
        k < INT32_MAX && n_rows < INT32_MAX) {
        scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_rows, (int)k,
                          (int)d, 1.0, x, (int)d, lin->coef, (int)d, 0.0, raw, (int)k);
        for (r = 0; r < n_rows; r++) {
            for (o = 0; o < k; o++) {
                raw[r * k + o] += lin->intercept[o];
            }
        }
        return;
    }
    for (r = 0; r < n_rows; r++) {
        const double *row = x + r * d;
        for (o = 0; o < k; o++) {
            const double *w = lin->coef + o * d;
            double acc = 0.0;
            for (j = 0; j < d; j++) {
                acc += row[j] * w[j];
            }
            raw[r * k + o] = acc + lin->intercept[o];
        }
    }
}

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

void
mf_proba(mf_proba_rule rule, const double *raw, Py_ssize_t n_rows, Py_ssize_t n_raw,
         double *proba)
{
    Py_ssize_t r, j;
    Py_ssize_t k = n_raw == 1 ? 2 : n_raw;   /* classes */

    for (r = 0; r < n_rows; r++) {
        const double *d = raw + r * n_raw;
        double *p = proba + r * k;
        double sum;
        switch (rule) {
        case MF_PROBA_EXPIT_OVR:
            /* LinearClassifierMixin._predict_proba_lr */
            if (n_raw == 1) {
                p[1] = expit(d[0]);
                p[0] = 1.0 - p[1];
                break;
            }
            sum = 0.0;
            for (j = 0; j < k; j++) {
                p[j] = expit(d[j]);
            }
            for (j = 0; j < k; j++) {
                sum += p[j];
            }
            for (j = 0; j < k; j++) {
                p[j] = sum == 0.0 ? 1.0 / (double)k : p[j] / sum;
            }
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
                double v = d[0] < -1.0 ? -1.0 : (d[0] > 1.0 ? 1.0 : d[0]);
                p[1] = (v + 1.0) / 2.0;
                p[0] = 1.0 - p[1];
                break;
            }
            sum = 0.0;
            for (j = 0; j < k; j++) {
                double v = d[j] < -1.0 ? -1.0 : (d[j] > 1.0 ? 1.0 : d[j]);
                p[j] = (v + 1.0) / 2.0;
            }
            for (j = 0; j < k; j++) {
                sum += p[j];
            }
            for (j = 0; j < k; j++) {
                p[j] = sum == 0.0 ? 1.0 / (double)k : p[j] / sum;
            }
            break;
        case MF_PROBA_NONE:
            break;
        }
    }
}

void
mf_labels(mf_label_rule rule, const double *raw, Py_ssize_t n_rows, Py_ssize_t n_raw,
          npy_intp *index)
{
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        const double *d = raw + r * n_raw;
        if (rule == MF_LABEL_THRESHOLD) {
            index[r] = d[0] > 0.0;
        }
        else {
            /* numpy.argmax: the first maximum */
            npy_intp best = 0;
            for (j = 1; j < n_raw; j++) {
                if (d[j] > d[best]) {
                    best = j;
                }
            }
            index[r] = best;
        }
    }
}
