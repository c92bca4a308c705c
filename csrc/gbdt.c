/*
 * gbdt.c -- what XGBoost does to its margins, in its own precision.
 *
 * XGBoost's trees run on the forest kernel of trees.c (float32 input,
 * float32 sums: mf_forest.sum_f32); its objectives then transform each
 * row's float32 margins with float arithmetic (src/common/math.h:
 * Sigmoid, Softmax; expf for the log links).  The same operations in the
 * same order give XGBoost's bits; a double computation would round
 * differently in about one row in ten.  LightGBM computes in double and
 * needs nothing here: its transforms are links.c's.
 */
#include "mlfast.h"
#include <math.h>

/* common::Sigmoid(float): the argument of expf capped at 88.7 so that it
 * stays finite, and 1e-16 added (which no float sum above 1 can hold). */
static inline float
xgb_sigmoid(float x)
{
    const float eps = 1e-16f;
    float e = -x < 88.7f ? -x : 88.7f;
    float denom = expf(e) + 1.0f + eps;
    return 1.0f / denom;
}

/* common::Softmax: the maximum by fmaxf, the exponentials in float summed
 * in a double, each divided by that sum rounded to float. */
static void
xgb_softmax(const double *in, double *out, Py_ssize_t k)
{
    Py_ssize_t j;
    float wmax = (float)in[0];
    double wsum = 0.0;
    for (j = 1; j < k; j++) {
        wmax = fmaxf((float)in[j], wmax);
    }
    for (j = 0; j < k; j++) {
        float e = expf((float)in[j] - wmax);
        out[j] = e;
        wsum += e;
    }
    for (j = 0; j < k; j++) {
        out[j] = (double)((float)out[j] / (float)wsum);
    }
}

static void
xgb_link_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_xgb_link *lk = op;
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        switch ((mf_xgb_rule)lk->rule) {
        case MF_XGB_IDENTITY:
            for (j = 0; j < n_in; j++) {
                y[j] = (float)x[j];
            }
            break;
        case MF_XGB_SIGMOID:
            for (j = 0; j < n_in; j++) {
                y[j] = xgb_sigmoid((float)x[j]);
            }
            break;
        case MF_XGB_SOFTMAX:
            xgb_softmax(x, y, n_in);
            break;
        case MF_XGB_EXP:
            for (j = 0; j < n_in; j++) {
                y[j] = expf((float)x[j]);
            }
            break;
        case MF_XGB_COMPLEMENT:
            /* the wrapper's 1.0 - prob, on a float32 array */
            y[0] = 1.0f - (float)x[0];
            y[1] = (float)x[0];
            break;
        }
    }
}

static int
xgb_link_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_xgb_link *lk = op;
    if (lk->rule < MF_XGB_IDENTITY || lk->rule > MF_XGB_COMPLEMENT) {
        PyErr_Format(PyExc_ValueError, "xgb_link: unknown rule %zd", lk->rule);
        return -1;
    }
    if (lk->rule == MF_XGB_COMPLEMENT && n_in != 1) {
        PyErr_Format(PyExc_ValueError, "xgb_link: a complement reads one column, not %zd", n_in);
        return -1;
    }
    *n_out = lk->rule == MF_XGB_COMPLEMENT ? 2 : n_in;
    return 0;
}

/* XGBoost returns float32 */
static int
xgb_link_out_type(const void *op, int in_type)
{
    return NPY_FLOAT;
}

static int
xgb_link_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows,
               mf_accept accept, mf_err_kind *err)
{
    return 0;
}

static const mf_field xgb_link_fields[] = {
    MF_SCALAR_FIELD(mf_xgb_link, rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_xgb_link = {
    .name = "xgb_link",
    .size = sizeof(mf_xgb_link),
    .fields = xgb_link_fields,
    .prepare = xgb_link_prepare,
    .run = xgb_link_run,
    .out_type = xgb_link_out_type,
    .check = xgb_link_check,
};
