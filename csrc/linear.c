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
extern void scipy_cblas_dgemm(mf_cblas_order order, mf_cblas_trans ta, mf_cblas_trans tb, int m,
                              int n, int k, double alpha, const double *a, int lda, const double *b,
                              int ldb, double beta, double *c, int ldc);
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
        /* four outputs at a time: four sums in flight, each in order */
        for (o = 0; o + 4 <= k; o += 4) {
            const double *w0 = lin->coef + o * d, *w1 = w0 + d, *w2 = w1 + d, *w3 = w2 + d;
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            for (j = 0; j < d; j++) {
                double xj = row[j];
                a0 += xj * w0[j];
                a1 += xj * w1[j];
                a2 += xj * w2[j];
                a3 += xj * w3[j];
            }
            raw[r * k + o] = a0 + lin->intercept[o];
            raw[r * k + o + 1] = a1 + lin->intercept[o + 1];
            raw[r * k + o + 2] = a2 + lin->intercept[o + 2];
            raw[r * k + o + 3] = a3 + lin->intercept[o + 3];
        }
        for (; o < k; o++) {
            const double *w = lin->coef + o * d;
            double acc = 0.0;
            for (j = 0; j < d; j++) {
                acc += row[j] * w[j];
            }
            raw[r * k + o] = acc + lin->intercept[o];
        }
    }
}

static void
linear_raw(const mf_linear *lin, const double *x, Py_ssize_t n_rows, double *raw)
{
    Py_ssize_t d = lin->n_features, k = lin->n_outputs, r, o;

    if (n_rows > 1 && n_rows * d * k >= MF_GEMM_MIN_WORK && d < INT32_MAX && k < INT32_MAX &&
        n_rows < INT32_MAX) {
        scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_rows, (int)k, (int)d, 1.0,
                          x, (int)d, lin->coef, (int)d, 0.0, raw, (int)k);
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

static void
linear_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    linear_raw(op, in, n_rows, out);
}

static int
linear_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_linear *lin = op;
    if (lin->n_features != n_in || lin->n_outputs < 1 || lin->n_intercept != lin->n_outputs) {
        PyErr_Format(PyExc_ValueError,
                     "linear: coef has shape (%zd, %zd) and intercept %zd "
                     "items for %zd input columns",
                     lin->n_outputs, lin->n_features, lin->n_intercept, n_in);
        return -1;
    }
    *n_out = lin->n_outputs;
    return 0;
}

/* numpy's promotion of X @ coef_ with a float32 coef_: float32 for
 * float16/32 and for integers of at most 16 bits. */
static int
linear_out_type(const void *op, int in_type)
{
    const mf_linear *lin = op;
    switch (in_type) {
    case NPY_HALF:
    case NPY_FLOAT:
    case NPY_BOOL:
    case NPY_BYTE:
    case NPY_UBYTE:
    case NPY_SHORT:
    case NPY_USHORT:
        return lin->f32 ? NPY_FLOAT : NPY_DOUBLE;
    default:
        return NPY_DOUBLE;
    }
}

static void
linear_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_in * (double)n_out + (double)n_out;
    *steps = 0.0;
}

static const mf_field linear_fields[] = {
    MF_MATRIX_FIELD(mf_linear, coef, NPY_DOUBLE, 0, n_outputs, n_features),
    MF_VECTOR_FIELD(mf_linear, intercept, NPY_DOUBLE, 0, n_intercept),
    MF_SCALAR_FIELD(mf_linear, f32, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_linear = {
    .name = "linear",
    .size = sizeof(mf_linear),
    .fields = linear_fields,
    .prepare = linear_prepare,
    .run = linear_run,
    .out_type = linear_out_type,
    .cost = linear_cost,
};
