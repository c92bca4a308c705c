/*
 * svm.c -- kernel support vector machines (SVC, NuSVC, SVR, NuSVR,
 * OneClassSVM), as scikit-learn's copy of libsvm predicts
 * (sklearn/svm/src/libsvm/svm.cpp: predict_values, predict_probability).
 *
 * svm: the decision values.  libsvm computes every kernel value of the row
 * first, then for each pair of classes (i, j), i < j, in that order, adds
 * coef * kernel over class i's support vectors and then over class j's, from
 * 0, and subtracts rho (= -intercept).  The support vectors are grouped by
 * class in class order, so the same additions happen in the same order when
 * the support vectors are walked once, each kernel value added to the k - 1
 * pair sums of its class; those sums live in the row's output, and no
 * scratch memory is needed.  Regression and one-class: one sum over every
 * support vector.  Kernels: linear x.y, poly powi(gamma x.y + coef0,
 * degree) (libsvm's repeated squaring), rbf exp(-gamma |x - y|^2), sigmoid
 * tanh(gamma x.y + coef0).  libsvm's dot products are BLAS ddot calls; ours
 * add in order, which differs from OpenBLAS's vector kernel in the last
 * bits of a dot of 16 or more values.
 *
 * svm_post: what scikit-learn makes of the decision values: libsvm's vote
 * (predict), the one-vs-rest input of _ovr_decision_function, the binary
 * sign flip, OneClassSVM's offset, and Platt scaling with Wu, Lin and Weng's
 * pairwise coupling (predict_proba).
 */
#include "mlfast.h"
#include <math.h>

/* Classes predict_proba couples on the stack (two k x k matrices). */
#define MF_SVM_MAX_PROBA_CLASSES 64
/* Pairs of classes stay far below what a Py_ssize_t holds. */
#define MF_SVM_MAX_CLASSES 65536

/* libsvm's kernel codes */
enum { SVM_LINEAR = 0, SVM_POLY = 1, SVM_RBF = 2, SVM_SIGMOID = 3 };

/* base ** times by repeated squaring, libsvm's powi */
static inline double
svm_powi(double base, Py_ssize_t times)
{
    double tmp = base, ret = 1.0;
    Py_ssize_t t;
    for (t = times; t > 0; t /= 2) {
        if (t % 2 == 1) {
            ret *= tmp;
        }
        tmp = tmp * tmp;
    }
    return ret;
}

static inline double
svm_dot(const double *x, const double *y, Py_ssize_t d)
{
    double sum = 0.0;
    Py_ssize_t j;
    for (j = 0; j < d; j++) {
        sum += x[j] * y[j];
    }
    return sum;
}

static inline double
svm_kernel(const mf_svm *s, const double *x, const double *sv)
{
    Py_ssize_t d = s->n_features, j;
    switch (s->kernel) {
    case SVM_LINEAR:
        return svm_dot(x, sv, d);
    case SVM_POLY:
        return svm_powi(s->gamma * svm_dot(x, sv, d) + s->coef0, s->degree);
    case SVM_RBF: {
        double sum = 0.0;
        for (j = 0; j < d; j++) {
            double m = x[j] - sv[j];
            sum += m * m;
        }
        return exp(-s->gamma * sum);
    }
    default:   /* SVM_SIGMOID; prepare refuses any other code */
        return tanh(s->gamma * svm_dot(x, sv, d) + s->coef0);
    }
}

/* The kernel values of support vectors v0 .. v0 + n - 1 (n <= SVM_GROUP):
 * each is the same sum in feature order as svm_kernel's, but the sums of
 * four support vectors advance together, so that no add waits on the one
 * before it. */
#define SVM_GROUP 4
static void
svm_kernels(const mf_svm *s, const double *x, Py_ssize_t v0, Py_ssize_t n, double *kv)
{
    Py_ssize_t d = s->n_features, j, i;
    const double *sv = s->support_vectors + v0 * d;

    if (n < SVM_GROUP) {
        for (i = 0; i < n; i++) {
            kv[i] = svm_kernel(s, x, sv + i * d);
        }
        return;
    }
    {
        const double *a = sv, *b = sv + d, *c = sv + 2 * d, *e = sv + 3 * d;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        if (s->kernel == SVM_RBF) {
            for (j = 0; j < d; j++) {
                double m0 = x[j] - a[j], m1 = x[j] - b[j], m2 = x[j] - c[j], m3 = x[j] - e[j];
                s0 += m0 * m0;
                s1 += m1 * m1;
                s2 += m2 * m2;
                s3 += m3 * m3;
            }
            kv[0] = exp(-s->gamma * s0);
            kv[1] = exp(-s->gamma * s1);
            kv[2] = exp(-s->gamma * s2);
            kv[3] = exp(-s->gamma * s3);
            return;
        }
        for (j = 0; j < d; j++) {
            s0 += x[j] * a[j];
            s1 += x[j] * b[j];
            s2 += x[j] * c[j];
            s3 += x[j] * e[j];
        }
        kv[0] = s0;
        kv[1] = s1;
        kv[2] = s2;
        kv[3] = s3;
        for (i = 0; i < SVM_GROUP; i++) {
            if (s->kernel == SVM_POLY) {
                kv[i] = svm_powi(s->gamma * kv[i] + s->coef0, s->degree);
            }
            else if (s->kernel == SVM_SIGMOID) {
                kv[i] = tanh(s->gamma * kv[i] + s->coef0);
            }
        }
    }
}

static void
svm_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
        Py_ssize_t n_rows, mf_precision prec)
{
    const mf_svm *s = op;
    Py_ssize_t r, v, p, i, k = s->n_classes, l = s->n_sv;
    double kvs[SVM_GROUP];

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *dec = out + r * n_out;
        if (k == 0) {
            double sum = 0.0;
            for (v = 0; v < l; v++) {
                if (v % SVM_GROUP == 0) {
                    svm_kernels(s, x, v, l - v < SVM_GROUP ? l - v : SVM_GROUP, kvs);
                }
                sum += s->dual_coef[v] * kvs[v % SVM_GROUP];
            }
            dec[0] = sum - (-s->intercept[0]);
            continue;
        }
        for (p = 0; p < n_out; p++) {
            dec[p] = 0.0;
        }
        for (v = 0; v < l; v++) {
            double kv;
            Py_ssize_t c = s->sv_class[v];
            if (v % SVM_GROUP == 0) {
                svm_kernels(s, x, v, l - v < SVM_GROUP ? l - v : SVM_GROUP, kvs);
            }
            kv = kvs[v % SVM_GROUP];
            /* pairs (i, c), i < c: coef2 = sv_coef[i]; pairs (c, j), j > c:
             * coef1 = sv_coef[j - 1] */
            for (i = 0; i < c; i++) {
                p = i * k - i * (i + 1) / 2 + (c - i - 1);
                dec[p] += s->dual_coef[i * l + v] * kv;
            }
            p = c * k - c * (c + 1) / 2;
            for (i = c + 1; i < k; i++, p++) {
                dec[p] += s->dual_coef[(i - 1) * l + v] * kv;
            }
        }
        for (p = 0; p < n_out; p++) {
            dec[p] -= -s->intercept[p];
        }
    }
}

static int
svm_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_svm *s = op;
    Py_ssize_t k = s->n_classes, c, v, total = 0, pairs;

    if (s->kernel < SVM_LINEAR || s->kernel > SVM_SIGMOID || s->degree < 0 || s->degree > 1000000) {
        PyErr_Format(PyExc_ValueError, "svm: kernel %zd of degree %zd", s->kernel, s->degree);
        return -1;
    }
    if (s->n_features != n_in || s->n_sv < 0) {
        PyErr_Format(PyExc_ValueError,
                     "svm: support vectors of %zd features for %zd input "
                     "columns",
                     s->n_features, n_in);
        return -1;
    }
    if (k == 1 || k < 0 || k > MF_SVM_MAX_CLASSES) {
        PyErr_Format(PyExc_ValueError, "svm: %zd classes", k);
        return -1;
    }
    pairs = k == 0 ? 1 : k * (k - 1) / 2;
    if (s->n_coef_rows != (k == 0 ? 1 : k - 1) || s->n_coef_cols != s->n_sv ||
        s->n_intercept != pairs) {
        PyErr_Format(PyExc_ValueError,
                     "svm: dual_coef has shape (%zd, %zd) and intercept "
                     "%zd items for %zd support vectors of %zd classes",
                     s->n_coef_rows, s->n_coef_cols, s->n_intercept, s->n_sv, k);
        return -1;
    }
    if (k > 0) {
        if (s->n_support == NULL || s->n_n_support != k) {
            PyErr_Format(PyExc_ValueError, "svm: n_support has %zd items for %zd classes",
                         s->n_support == NULL ? (Py_ssize_t)0 : s->n_n_support, k);
            return -1;
        }
        for (c = 0; c < k; c++) {
            if (s->n_support[c] < 0 || s->n_support[c] > s->n_sv - total) {
                PyErr_Format(PyExc_ValueError,
                             "svm: n_support[%zd] = %lld does not fit %zd "
                             "support vectors",
                             c, (long long)s->n_support[c], s->n_sv);
                return -1;
            }
            total += s->n_support[c];
        }
        if (total != s->n_sv) {
            PyErr_Format(PyExc_ValueError,
                         "svm: n_support sums to %zd, not to the %zd support "
                         "vectors",
                         total, s->n_sv);
            return -1;
        }
        s->sv_class = PyMem_Malloc((size_t)(s->n_sv > 0 ? s->n_sv : 1) * sizeof(int32_t));
        if (s->sv_class == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        v = 0;
        for (c = 0; c < k; c++) {
            Py_ssize_t m;
            for (m = 0; m < s->n_support[c]; m++) {
                s->sv_class[v++] = (int32_t)c;
            }
        }
    }
    *n_out = pairs;
    return 0;
}

static void
svm_release(void *op)
{
    mf_svm *s = op;
    PyMem_Free(s->sv_class);
    s->sv_class = NULL;
}

static int
svm_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static void
svm_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_svm *s = op;
    *work = (double)s->n_sv * ((double)n_in + (double)(s->n_classes > 1 ? s->n_classes : 1));
    *steps = 0.0;
}

static const mf_field svm_fields[] = {
    MF_SCALAR_FIELD(mf_svm, kernel, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_svm, degree, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_svm, gamma, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_svm, coef0, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_svm, n_classes, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_svm, support_vectors, NPY_DOUBLE, 0, n_sv, n_features),
    MF_MATRIX_FIELD(mf_svm, dual_coef, NPY_DOUBLE, 0, n_coef_rows, n_coef_cols),
    MF_VECTOR_FIELD(mf_svm, intercept, NPY_DOUBLE, 0, n_intercept),
    MF_VECTOR_FIELD(mf_svm, n_support, NPY_INT64, MF_FIELD_OPTIONAL, n_n_support),
    MF_END_FIELDS,
};

const mf_op_def mf_op_svm = {
    .name = "svm",
    .size = sizeof(mf_svm),
    .fields = svm_fields,
    .prepare = svm_prepare,
    .release = svm_release,
    .run = svm_run,
    .out_type = svm_out_type,
    .cost = svm_cost,
};

/* ---- svm_post ------------------------------------------------------------------ */

static double
sigmoid_predict(double decision_value, double a, double b)
{
    double fApB = decision_value * a + b;
    /* libsvm's two forms, avoiding cancellation in 1 - p */
    if (fApB >= 0) {
        return exp(-fApB) / (1.0 + exp(-fApB));
    }
    return 1.0 / (1 + exp(fApB));
}

/* Wu, Lin and Weng's second method, in libsvm's order of operations:
 * p minimises p'Qp under sum(p) = 1, by coordinate steps until every
 * |(Qp)_t - p'Qp| is below 0.005 / k or after max(100, k) sweeps. */
static void
couple(Py_ssize_t k, const double *r, double *p)
{
    double Q[MF_SVM_MAX_PROBA_CLASSES * MF_SVM_MAX_PROBA_CLASSES];
    double Qp[MF_SVM_MAX_PROBA_CLASSES];
    double pQp, eps = 0.005 / (double)k;
    Py_ssize_t t, j, iter, max_iter = k > 100 ? k : 100;

    for (t = 0; t < k; t++) {
        p[t] = 1.0 / (double)k;
        Q[t * k + t] = 0;
        for (j = 0; j < t; j++) {
            Q[t * k + t] += r[j * k + t] * r[j * k + t];
            Q[t * k + j] = Q[j * k + t];
        }
        for (j = t + 1; j < k; j++) {
            Q[t * k + t] += r[j * k + t] * r[j * k + t];
            Q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    for (iter = 0; iter < max_iter; iter++) {
        double max_error = 0;
        pQp = 0;
        for (t = 0; t < k; t++) {
            Qp[t] = 0;
            for (j = 0; j < k; j++) {
                Qp[t] += Q[t * k + j] * p[j];
            }
            pQp += p[t] * Qp[t];
        }
        for (t = 0; t < k; t++) {
            double error = fabs(Qp[t] - pQp);
            if (error > max_error) {
                max_error = error;
            }
        }
        if (max_error < eps) {
            break;
        }
        for (t = 0; t < k; t++) {
            double diff = (-Qp[t] + pQp) / Q[t * k + t];
            p[t] += diff;
            pQp = (pQp + diff * (diff * Q[t * k + t] + 2 * Qp[t])) / (1 + diff) / (1 + diff);
            for (j = 0; j < k; j++) {
                Qp[j] = (Qp[j] + diff * Q[t * k + j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
}

static void
svm_post_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_svm_post *sp = op;
    Py_ssize_t r, i, j, p, k = sp->n_classes;

    for (r = 0; r < n_rows; r++) {
        const double *dec = in + r * n_in;
        double *o = out + r * n_out;
        switch (sp->rule) {
        case MF_SVM_VOTE:
            /* libsvm: dec > 0 votes for i, else for j; a labels node's
             * argmax then takes the first class with the most votes */
            for (i = 0; i < k; i++) {
                o[i] = 0.0;
            }
            p = 0;
            for (i = 0; i < k; i++) {
                for (j = i + 1; j < k; j++, p++) {
                    o[dec[p] > 0 ? i : j] += 1.0;
                }
            }
            break;
        case MF_SVM_OVR:
            /* _ovr_decision_function(dec < 0, -dec, k)'s input */
            for (p = 0; p < n_in; p++) {
                o[p] = dec[p] < 0 ? 1.0 : 0.0;
                o[n_in + p] = -dec[p];
            }
            break;
        case MF_SVM_NEGATE:
            o[0] = -dec[0];
            break;
        case MF_SVM_ADD:
            o[0] = dec[0] + sp->offset;
            break;
        default: {   /* MF_SVM_PROBA */
            double pairwise[MF_SVM_MAX_PROBA_CLASSES * MF_SVM_MAX_PROBA_CLASSES];
            const double min_prob = 1e-7;
            p = 0;
            for (i = 0; i < k; i++) {
                for (j = i + 1; j < k; j++, p++) {
                    double q = sigmoid_predict(dec[p], sp->prob_a[p], sp->prob_b[p]);
                    q = q > min_prob ? q : min_prob;
                    q = q < 1 - min_prob ? q : 1 - min_prob;
                    pairwise[i * k + j] = q;
                    pairwise[j * k + i] = 1 - q;
                }
            }
            couple(k, pairwise, o);
            break;
        }
        }
    }
}

static int
svm_post_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_svm_post *sp = op;
    Py_ssize_t k = sp->n_classes, pairs = k * (k - 1) / 2;

    switch (sp->rule) {
    case MF_SVM_VOTE:
    case MF_SVM_OVR:
    case MF_SVM_PROBA:
        if (k < 2 || k > MF_SVM_MAX_CLASSES || n_in != pairs) {
            PyErr_Format(PyExc_ValueError,
                         "svm_post: %zd decision values for %zd classes "
                         "(2 to %d)",
                         n_in, k, MF_SVM_MAX_CLASSES);
            return -1;
        }
        if (sp->rule == MF_SVM_PROBA) {
            if (k > MF_SVM_MAX_PROBA_CLASSES || sp->prob_a == NULL || sp->prob_b == NULL ||
                sp->n_prob_a != pairs || sp->n_prob_b != pairs) {
                PyErr_Format(PyExc_ValueError,
                             "svm_post: probA and probB must hold %zd "
                             "values (%zd classes, at most %d)",
                             pairs, k, MF_SVM_MAX_PROBA_CLASSES);
                return -1;
            }
            *n_out = k;
        }
        else {
            *n_out = sp->rule == MF_SVM_VOTE ? k : 2 * pairs;
        }
        return 0;
    case MF_SVM_NEGATE:
    case MF_SVM_ADD:
        if (n_in != 1) {
            PyErr_Format(PyExc_ValueError, "svm_post: %zd decision values, expected 1", n_in);
            return -1;
        }
        *n_out = 1;
        return 0;
    default:
        PyErr_Format(PyExc_ValueError, "svm_post: unknown rule %zd", sp->rule);
        return -1;
    }
}

static const mf_field svm_post_fields[] = {
    MF_SCALAR_FIELD(mf_svm_post, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_svm_post, n_classes, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_svm_post, offset, MF_FIELD_FLOAT),
    MF_VECTOR_FIELD(mf_svm_post, prob_a, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_prob_a),
    MF_VECTOR_FIELD(mf_svm_post, prob_b, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_prob_b),
    MF_END_FIELDS,
};

const mf_op_def mf_op_svm_post = {
    .name = "svm_post",
    .size = sizeof(mf_svm_post),
    .fields = svm_post_fields,
    .prepare = svm_post_prepare,
    .run = svm_post_run,
    .out_type = svm_out_type,
};
