/*
 * nn.c -- the activations of MLPClassifier, MLPRegressor and BernoulliRBM
 * (sklearn/neural_network/_base.py ACTIVATIONS).  The layers themselves
 * are linear ops (linear.c: OpenBLAS dgemm for blocks, as numpy's matmul),
 * each followed by one of these.
 */
#include "mlfast.h"
#include <math.h>

static void
activation_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
               Py_ssize_t n_rows, mf_precision prec)
{
    const mf_activation *a = op;
    Py_ssize_t i, r, c, count = n_rows * n_in;

    switch (a->rule) {
    case MF_ACT_LOGISTIC:
        for (i = 0; i < count; i++) {
            out[i] = 1.0 / (1.0 + exp(-in[i]));   /* scipy.special.expit */
        }
        break;
    case MF_ACT_TANH:
        for (i = 0; i < count; i++) {
            out[i] = tanh(in[i]);
        }
        break;
    case MF_ACT_RELU:
        for (i = 0; i < count; i++) {
            /* np.maximum(x, 0): NaN stays NaN */
            out[i] = (in[i] >= 0.0 || isnan(in[i])) ? in[i] : 0.0;
        }
        break;
    case MF_ACT_EXP:
        for (i = 0; i < count; i++) {
            out[i] = exp(in[i]);
        }
        break;
    default:   /* MF_ACT_SOFTMAX: inplace_softmax */
        for (r = 0; r < n_rows; r++) {
            const double *x = in + r * n_in;
            double *o = out + r * n_out;
            double max = mf_row_max(x, n_in), sum;
            for (c = 0; c < n_in; c++) {
                o[c] = exp(x[c] - max);
            }
            sum = mf_pairwise_sum(o, n_in);
            for (c = 0; c < n_in; c++) {
                o[c] /= sum;
            }
        }
        break;
    }
}

static int
activation_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    const mf_activation *a = op;
    if (a->rule < MF_ACT_LOGISTIC || a->rule > MF_ACT_SOFTMAX) {
        PyErr_Format(PyExc_ValueError, "activation: unknown rule %zd", a->rule);
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static int
activation_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static const mf_field activation_fields[] = {
    MF_SCALAR_FIELD(mf_activation, rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_activation = {
    .name = "activation",
    .size = sizeof(mf_activation),
    .fields = activation_fields,
    .prepare = activation_prepare,
    .run = activation_run,
    .out_type = activation_out_type,
};
