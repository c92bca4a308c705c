/*
 * bayes.c -- naive Bayes: the joint log likelihoods of GaussianNB and
 * CategoricalNB, BernoulliNB's binarized product, and the normalisation
 * every naive Bayes classifier shares (predict_log_proba).  MultinomialNB,
 * ComplementNB and an unbinarized BernoulliNB are products X @ W.T + b:
 * the linear op (linear.c) serves them.
 *
 * Each computes what scikit-learn's _joint_log_likelihood and
 * _BaseNB.predict_log_proba compute, in their order of operations: sums
 * along a row are numpy's pairwise sums, sums over features or classes
 * made by `+=` in a Python loop are sequential.  What depends only on the
 * fitted state (log priors, -0.5 * sum(log(2 pi var))) is computed by the
 * builders with numpy itself.  A model fitted on float32 keeps float32
 * parameters and, for float32 input, float32 arithmetic: every operation is
 * then rounded to float32, which for +, -, * and / is float32's own
 * result.
 */
#include "mlfast.h"
#include <math.h>

static inline double
round_f32_if(int f32, double v)
{
    return f32 ? (double)(float)v : v;
}

/* numpy's pairwise sum (np.sum along a contiguous row) of the terms
 * ((x[j] - theta[j]) ** 2) / var[j], j < n, made as they are needed:
 * below 8 terms one after the other, up to 128 with eight accumulators,
 * beyond that split in two (the first part a multiple of 8). */
static double
gauss_pairwise(const double *x, const double *theta, const double *var, Py_ssize_t n, int f32)
{
#define GAUSS_TERM(j)                                                   \
    round_f32_if(f32, round_f32_if(f32, (round_f32_if(f32, x[j] - theta[j]) * \
                                         round_f32_if(f32, x[j] - theta[j]))) / var[j])
    Py_ssize_t i;
    int k;
    double res;

    if (n < 8) {
        res = -0.0;
        for (i = 0; i < n; i++) {
            res = round_f32_if(f32, res + GAUSS_TERM(i));
        }
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (k = 0; k < 8; k++) {
            r[k] = GAUSS_TERM(k);
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (k = 0; k < 8; k++) {
                r[k] = round_f32_if(f32, r[k] + GAUSS_TERM(i + k));
            }
        }
        res = round_f32_if(
            f32,
            round_f32_if(f32, round_f32_if(f32, r[0] + r[1]) + round_f32_if(f32, r[2] + r[3])) +
                round_f32_if(f32, round_f32_if(f32, r[4] + r[5]) + round_f32_if(f32, r[6] + r[7])));
        for (; i < n; i++) {
            res = round_f32_if(f32, res + GAUSS_TERM(i));
        }
        return res;
    }
    {
        Py_ssize_t n2 = n / 2;
        n2 -= n2 % 8;
        return round_f32_if(f32, gauss_pairwise(x, theta, var, n2, f32) +
                                     gauss_pairwise(x + n2, theta + n2, var + n2, n - n2, f32));
    }
#undef GAUSS_TERM
}

/* numpy's pairwise sum of n contiguous values. */
static double
pairwise_sum(const double *a, Py_ssize_t n, int f32)
{
    Py_ssize_t i;
    int k;
    double res;

    if (n < 8) {
        res = -0.0;
        for (i = 0; i < n; i++) {
            res = round_f32_if(f32, res + a[i]);
        }
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (k = 0; k < 8; k++) {
            r[k] = a[k];
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (k = 0; k < 8; k++) {
                r[k] = round_f32_if(f32, r[k] + a[i + k]);
            }
        }
        res = round_f32_if(
            f32,
            round_f32_if(f32, round_f32_if(f32, r[0] + r[1]) + round_f32_if(f32, r[2] + r[3])) +
                round_f32_if(f32, round_f32_if(f32, r[4] + r[5]) + round_f32_if(f32, r[6] + r[7])));
        for (; i < n; i++) {
            res = round_f32_if(f32, res + a[i]);
        }
        return res;
    }
    {
        Py_ssize_t n2 = n / 2;
        n2 -= n2 % 8;
        return round_f32_if(f32, pairwise_sum(a, n2, f32) + pairwise_sum(a + n2, n - n2, f32));
    }
}

static int
vector_fits(const char *what, const void *data, Py_ssize_t n, Py_ssize_t want)
{
    if (data == NULL || n != want) {
        PyErr_Format(PyExc_ValueError, "%s has %zd items, expected %zd", what,
                     data == NULL ? (Py_ssize_t)0 : n, want);
        return -1;
    }
    return 0;
}

/* numpy's type for an operation of X with float32 parameters: float32 for
 * float16 and float32 X, float64 otherwise (what the kernels compute). */
static int
f32_out_type(int f32, int in_type)
{
    return (f32 && (in_type == NPY_FLOAT || in_type == NPY_HALF)) ? NPY_FLOAT : NPY_DOUBLE;
}

/* ---- gaussian_nb ---------------------------------------------------------------- */

/* GaussianNB._joint_log_likelihood: for class i,
 * log_prior[i] + (norm[i] - 0.5 * sum(((x - theta[i]) ** 2) / var[i])). */
static void
gaussian_nb_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                Py_ssize_t n_rows, mf_precision prec)
{
    const mf_gaussian_nb *g = op;
    Py_ssize_t r, c, d = g->n_features, k = g->n_classes;
    int f32 = g->f32 && prec != MF_F64;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        for (c = 0; c < k; c++) {
            double s = gauss_pairwise(x, g->theta + c * d, g->var + c * d, d, f32);
            double n_ij = round_f32_if(f32, g->norm[c] - round_f32_if(f32, 0.5 * s));
            out[r * n_out + c] = round_f32_if(f32, g->log_prior[c] + n_ij);
        }
    }
}

static int
gaussian_nb_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_gaussian_nb *g = op;
    if (g->n_features != n_in || g->n_classes < 1 || g->n_var_rows != g->n_classes ||
        g->n_var_cols != g->n_features) {
        PyErr_Format(PyExc_ValueError,
                     "gaussian_nb: theta has shape (%zd, %zd) and var "
                     "(%zd, %zd) for %zd input columns",
                     g->n_classes, g->n_features, g->n_var_rows, g->n_var_cols, n_in);
        return -1;
    }
    if (vector_fits("gaussian_nb.log_prior", g->log_prior, g->n_log_prior, g->n_classes) < 0 ||
        vector_fits("gaussian_nb.norm", g->norm, g->n_norm, g->n_classes) < 0) {
        return -1;
    }
    *n_out = g->n_classes;
    return 0;
}

static int
gaussian_nb_out_type(const void *op, int in_type)
{
    return f32_out_type(((const mf_gaussian_nb *)op)->f32, in_type);
}

static void
gaussian_nb_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = 3.0 * (double)n_in * (double)n_out;
    *steps = 0.0;
}

static const mf_field gaussian_nb_fields[] = {
    MF_MATRIX_FIELD(mf_gaussian_nb, theta, NPY_DOUBLE, 0, n_classes, n_features),
    MF_MATRIX_FIELD(mf_gaussian_nb, var, NPY_DOUBLE, 0, n_var_rows, n_var_cols),
    MF_VECTOR_FIELD(mf_gaussian_nb, log_prior, NPY_DOUBLE, 0, n_log_prior),
    MF_VECTOR_FIELD(mf_gaussian_nb, norm, NPY_DOUBLE, 0, n_norm),
    MF_SCALAR_FIELD(mf_gaussian_nb, f32, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_gaussian_nb = {
    .name = "gaussian_nb",
    .size = sizeof(mf_gaussian_nb),
    .fields = gaussian_nb_fields,
    .prepare = gaussian_nb_prepare,
    .run = gaussian_nb_run,
    .out_type = gaussian_nb_out_type,
    .cost = gaussian_nb_cost,
};

/* ---- bernoulli_nb ---------------------------------------------------------------- */

/* BernoulliNB with binarize: x > threshold as 1 or 0, then the product with
 * coef (feature_log_prob_ - neg_prob) and the intercept
 * (class_log_prior_ + neg_prob.sum(axis=1)) added after it. */
static void
bernoulli_nb_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                 Py_ssize_t n_rows, mf_precision prec)
{
    const mf_bernoulli_nb *b = op;
    Py_ssize_t r, c, j, d = b->n_features;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        for (c = 0; c < b->n_classes; c++) {
            const double *w = b->coef + c * d;
            double acc = 0.0;
            for (j = 0; j < d; j++) {
                if (x[j] > b->threshold) {
                    acc += w[j];
                }
            }
            out[r * n_out + c] = acc + b->intercept[c];
        }
    }
}

static int
bernoulli_nb_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_bernoulli_nb *b = op;
    if (b->n_features != n_in || b->n_classes < 1) {
        PyErr_Format(PyExc_ValueError,
                     "bernoulli_nb: coef has shape (%zd, %zd) for %zd "
                     "input columns",
                     b->n_classes, b->n_features, n_in);
        return -1;
    }
    if (vector_fits("bernoulli_nb.intercept", b->intercept, b->n_intercept, b->n_classes) < 0) {
        return -1;
    }
    *n_out = b->n_classes;
    return 0;
}

static int
float64_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static const mf_field bernoulli_nb_fields[] = {
    MF_MATRIX_FIELD(mf_bernoulli_nb, coef, NPY_DOUBLE, 0, n_classes, n_features),
    MF_VECTOR_FIELD(mf_bernoulli_nb, intercept, NPY_DOUBLE, 0, n_intercept),
    MF_SCALAR_FIELD(mf_bernoulli_nb, threshold, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_bernoulli_nb = {
    .name = "bernoulli_nb",
    .size = sizeof(mf_bernoulli_nb),
    .fields = bernoulli_nb_fields,
    .prepare = bernoulli_nb_prepare,
    .run = bernoulli_nb_run,
    .out_type = float64_out_type,
    .cost = gaussian_nb_cost,
};

/* ---- categorical_nb -------------------------------------------------------------- */

/* CategoricalNB reads X as integers (check_array's astype: truncation
 * toward zero) and refuses negative values and categories past those of
 * its feature_log_prob_ (scikit-learn's IndexError).  The category is
 * looked up while it is a double: anything at or past n_categories, or not
 * above -1, is refused before a cast could overflow. */
static int
categorical_nb_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows,
                     mf_accept accept, mf_err_kind *err)
{
    const mf_categorical_nb *cat = op;
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        for (j = 0; j < n_in; j++) {
            double v = in[r * n_in + j];
            if (isnan(v)) {
                *err = MF_ERR_NAN;
                return 1;
            }
            /* inf is refused as check_array(dtype='int') names it: its own message */
            if (!(v > -1.0) || !(trunc(v) < (double)cat->n_categories[j])) {
                *err = MF_ERR_VALUE;
                return 1;
            }
        }
    }
    return 0;
}

static void
categorical_nb_refusal(const void *op, const double *in_row, Py_ssize_t n_in)
{
    const mf_categorical_nb *cat = op;
    Py_ssize_t j;
    for (j = 0; j < n_in; j++) {
        if (isinf(in_row[j])) {
            PyErr_SetString(PyExc_ValueError, "Input X contains infinity or a value too "
                                              "large for dtype('int64').");
            return;
        }
    }
    for (j = 0; j < n_in; j++) {
        if (!(in_row[j] > -1.0)) {
            PyErr_SetString(PyExc_ValueError,
                            "Negative values in data passed to CategoricalNB (input X).");
            return;
        }
    }
    for (j = 0; j < n_in; j++) {
        if (!(trunc(in_row[j]) < (double)cat->n_categories[j])) {
            PyObject *index = PyLong_FromDouble(trunc(in_row[j]));
            if (index != NULL) {
                PyErr_Format(PyExc_IndexError,
                             "index %S is out of bounds for axis 1 with "
                             "size %zd",
                             index, (Py_ssize_t)cat->n_categories[j]);
                Py_DECREF(index);
            }
            return;
        }
    }
    PyErr_SetString(PyExc_ValueError, "CategoricalNB refused a row");
}

/* jll = zeros; jll += feature_log_prob_[i][:, x_i] feature after feature;
 * then + class_log_prior_. */
static void
categorical_nb_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                   Py_ssize_t n_rows, mf_precision prec)
{
    const mf_categorical_nb *cat = op;
    Py_ssize_t r, c, j, k = cat->n_classes;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *o = out + r * n_out;
        for (c = 0; c < k; c++) {
            o[c] = 0.0;
        }
        for (j = 0; j < n_in; j++) {
            const double *t = cat->tables + cat->offsets[j] + (int64_t)trunc(x[j]) * k;
            for (c = 0; c < k; c++) {
                o[c] += t[c];
            }
        }
        for (c = 0; c < k; c++) {
            o[c] = o[c] + cat->log_prior[c];
        }
    }
}

static int
categorical_nb_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_categorical_nb *cat = op;
    Py_ssize_t j, k = cat->n_classes;

    if (k < 1 || vector_fits("categorical_nb.log_prior", cat->log_prior, cat->n_log_prior, k) < 0 ||
        vector_fits("categorical_nb.n_categories", cat->n_categories, cat->n_n_categories, n_in) <
            0 ||
        vector_fits("categorical_nb.offsets", cat->offsets, cat->n_offsets, n_in + 1) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "categorical_nb: %zd classes", k);
        }
        return -1;
    }
    if (cat->offsets[0] != 0) {
        PyErr_SetString(PyExc_ValueError, "categorical_nb.offsets must start at 0");
        return -1;
    }
    for (j = 0; j < n_in; j++) {
        int64_t n_cat = cat->n_categories[j];
        if (n_cat < 1 || n_cat > cat->n_tables / k || cat->offsets[j] > cat->n_tables ||
            cat->offsets[j + 1] - cat->offsets[j] != n_cat * k) {
            PyErr_Format(PyExc_ValueError,
                         "categorical_nb: feature %zd has %lld categories "
                         "between offsets %lld and %lld of %zd values",
                         j, (long long)n_cat, (long long)cat->offsets[j],
                         (long long)cat->offsets[j + 1], cat->n_tables);
            return -1;
        }
    }
    if (cat->offsets[n_in] != cat->n_tables) {
        PyErr_Format(PyExc_ValueError, "categorical_nb: offsets end at %lld, tables hold %zd",
                     (long long)cat->offsets[n_in], cat->n_tables);
        return -1;
    }
    *n_out = k;
    return 0;
}

static const mf_field categorical_nb_fields[] = {
    MF_SCALAR_FIELD(mf_categorical_nb, n_classes, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_categorical_nb, tables, NPY_DOUBLE, 0, n_tables),
    MF_VECTOR_FIELD(mf_categorical_nb, offsets, NPY_INT64, 0, n_offsets),
    MF_VECTOR_FIELD(mf_categorical_nb, n_categories, NPY_INT64, 0, n_n_categories),
    MF_VECTOR_FIELD(mf_categorical_nb, log_prior, NPY_DOUBLE, 0, n_log_prior),
    MF_END_FIELDS,
};

const mf_op_def mf_op_categorical_nb = {
    .name = "categorical_nb",
    .size = sizeof(mf_categorical_nb),
    .fields = categorical_nb_fields,
    .prepare = categorical_nb_prepare,
    .run = categorical_nb_run,
    .out_type = float64_out_type,
    .check = categorical_nb_check,
    .refusal = categorical_nb_refusal,
};

/* ---- nb_log_proba ------------------------------------------------------------- */

/* _BaseNB.predict_log_proba: jll - logsumexp(jll) along each row, by
 * scikit-learn's _logsumexp: the maximum m_x, the number m of entries equal
 * to it (set to -inf), s = sum(exp(jll - m_x)) (pairwise), s / m unless 0,
 * then log1p(s) + log(m) + m_x. */
static void
nb_log_proba_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                 Py_ssize_t n_rows, mf_precision prec)
{
    Py_ssize_t r, c, k = n_in;
    int f32 = prec != MF_F64;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *o = out + r * n_out;
        double amax = mf_row_max(x, k), shift, s, m = 0.0, total;
        shift = isfinite(amax) ? amax : 0.0;
        /* the exps, in o, with the maxima's set to exp(-inf) = 0 */
        for (c = 0; c < k; c++) {
            if (x[c] == amax) {
                m += 1.0;
                o[c] = 0.0;
            }
            else {
                o[c] = round_f32_if(f32, exp(round_f32_if(f32, x[c] - shift)));
            }
        }
        s = pairwise_sum(o, k, f32);
        if (s != 0.0) {
            s = round_f32_if(f32, s / m);
        }
        total = round_f32_if(
            f32, round_f32_if(f32, round_f32_if(f32, log1p(s)) + round_f32_if(f32, log(m))) + amax);
        for (c = 0; c < k; c++) {
            o[c] = round_f32_if(f32, x[c] - total);
        }
    }
}

static int
nb_log_proba_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    *n_out = n_in;
    return 0;
}

static const mf_field nb_log_proba_fields[] = {
    MF_END_FIELDS,
};

const mf_op_def mf_op_nb_log_proba = {
    .name = "nb_log_proba",
    .size = sizeof(mf_nb_log_proba),
    .fields = nb_log_proba_fields,
    .prepare = nb_log_proba_prepare,
    .run = nb_log_proba_run,
};
