/*
 * linear.c -- linear models: raw scores.
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
#define MF_LIN_ROWS 8

/* raw = x @ coef.T + intercept by plain loops.  Eight rows at a time: each
 * (row, output) sum still adds its terms in order j = 0..d-1, as for the
 * rows left over, but eight sums advance together instead of one waiting
 * on its previous add. */
static void
linear_loop(const mf_linear *lin, const double *x, Py_ssize_t n_rows, double *raw)
{
    Py_ssize_t d = lin->n_features, k = lin->n_outputs, r, o, j;

    for (r = 0; r + MF_LIN_ROWS <= n_rows; r += MF_LIN_ROWS) {
        const double *rows = x + r * d;
        for (o = 0; o < k; o++) {
            const double *w = lin->coef + o * d;
            double acc[MF_LIN_ROWS] = {0.0};
            int i;
            for (j = 0; j < d; j++) {
                double wj = w[j];
                for (i = 0; i < MF_LIN_ROWS; i++) {
                    acc[i] += rows[i * d + j] * wj;
                }
            }
            for (i = 0; i < MF_LIN_ROWS; i++) {
                raw[(r + i) * k + o] = acc[i] + lin->intercept[o];
            }
        }
    }
    for (; r < n_rows; r++) {
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

void
mf_linear_raw(const mf_linear *lin, const double *x, Py_ssize_t n_rows, double *raw)
{
    Py_ssize_t d = lin->n_features, k = lin->n_outputs, r, o;

    if (n_rows > 1 && n_rows * d * k >= MF_GEMM_MIN_WORK && d < INT32_MAX &&
        k < INT32_MAX && n_rows < INT32_MAX) {
        scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_rows, (int)k,
                          (int)d, 1.0, x, (int)d, lin->coef, (int)d, 0.0, raw, (int)k);
        for (r = 0; r < n_rows; r++) {
            for (o = 0; o < k; o++) {
                raw[r * k + o] += lin->intercept[o];
            }
        }
    }
    else {
        linear_loop(lin, x, n_rows, raw);
    }
}
