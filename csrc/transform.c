/*
 * transform.c -- kernels of the transform steps (scalers, imputer).
 *
 * They run on a block of rows held as doubles, row-major.  When a stage
 * works in float32 (scikit-learn keeps float32 input in float32), each
 * operation is done in double and rounded to float, which is what numpy's
 * in-place `X -= mean_` does for a float32 X; for +, -, *, / this equals the
 * float operation itself.  The kernels never parse, allocate or take the GIL.
 */
#include "mlfast.h"
#include <math.h>
#include <string.h>

/* The nearest IEEE half-precision value (ties to even), as numpy's
 * float16 casts give it; written out because npymath is not linked. */
static inline double
round_half(double v)
{
    double a = fabs(v), r;
    int e, q;
    if (!isfinite(v)) {
        return v;
    }
    if (a >= 65520.0) {               /* halfway to 2**16 and beyond: inf */
        return copysign(INFINITY, v);
    }
    frexp(a, &e);                     /* a = m * 2**e, m in [0.5, 1) */
    q = e - 11;                       /* exponent of the last of 11 bits */
    if (q < -24) {
        q = -24;                      /* subnormal halves: steps of 2**-24 */
    }
    r = nearbyint(ldexp(a, -q));      /* exact scaling, then ties-to-even */
    return copysign(ldexp(r, q), v);
}

static inline double
round_to(mf_precision prec, double v)
{
    switch (prec) {
    case MF_F32:
        return (double)(float)v;
    case MF_F16:
        return round_half(v);
    default:
        return v;
    }
}

/* Whether any of x[0..count) is NaN or inf: its exponent bits all set,
 * so that adding one to the exponent carries into the sign bit.  An OR of
 * integer adds, which the compiler vectorises with plain SSE2 (isfinite()
 * in a loop that stops at the first hit is not; a 64-bit compare needs
 * SSE4.1). */
static int
any_not_finite(const double *x, Py_ssize_t count)
{
    const uint64_t exponent = 0x7ff0000000000000ULL, one = 0x0010000000000000ULL;
    uint64_t found = 0;
    Py_ssize_t i;

    for (i = 0; i < count; i++) {
        uint64_t bits;
        memcpy(&bits, x + i, sizeof(bits));
        found |= (bits & exponent) + one;
    }
    return (found >> 63) != 0;
}

/* Checks values a stage is about to read; returns 1 and sets *err when the
 * stage refuses them.  NaN takes precedence over inf, as in scikit-learn's
 * message. */
int
mf_check_block(mf_accept accept, const double *x, Py_ssize_t count, mf_err_kind *err)
{
    Py_ssize_t i;
    int seen_inf = 0;

    if (accept == MF_ACCEPT_ANY || !any_not_finite(x, count)) {
        return 0;  /* the usual case: every value finite */
    }
    for (i = 0; i < count; i++) {
        double v = x[i];
        if (isfinite(v)) {
            continue;
        }
        if (isnan(v)) {
            if (accept == MF_ACCEPT_FINITE) {
                *err = MF_ERR_NAN;
                return 1;
            }
        }
        else {
            seen_inf = 1;
            if (accept == MF_ACCEPT_NAN) {
                break;
            }
        }
    }
    if (seen_inf) {
        *err = MF_ERR_INF;
        return 1;
    }
    return 0;
}

/* y = x op p[j] along each row, one operation a pass: loops the compiler
 * vectorises.  Each element still goes through sub, mul, div, add in that
 * order, each rounded to double, so the result is the element-wise one. */
static void
affine_pass(char op, const double *p, const double *in, double *out, Py_ssize_t n_rows,
            Py_ssize_t n)
{
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n;
        double *y = out + r * n;
        switch (op) {
        case '-':
            for (j = 0; j < n; j++) {
                y[j] = x[j] - p[j];
            }
            break;
        case '*':
            for (j = 0; j < n; j++) {
                y[j] = x[j] * p[j];
            }
            break;
        case '/':
            for (j = 0; j < n; j++) {
                y[j] = x[j] / p[j];
            }
            break;
        default:
            for (j = 0; j < n; j++) {
                y[j] = x[j] + p[j];
            }
            break;
        }
    }
}

/* Element by element, rounding to the stage's precision after each
 * operation (float32/float16 stages, clipping). */
static void
affine_rows(const mf_affine *s, const double *in, double *out, Py_ssize_t n, Py_ssize_t n_rows,
            mf_precision prec)
{
    Py_ssize_t r, j;
    double lo = round_to(prec, s->clip_lo), hi = round_to(prec, s->clip_hi);
    int cast = s->cast_params;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n;
        double *y = out + r * n;
        for (j = 0; j < n; j++) {
            double v = x[j];
            if (s->sub != NULL) {
                v = round_to(prec, v - (cast ? round_to(prec, s->sub[j]) : s->sub[j]));
            }
            if (s->mul != NULL) {
                v = round_to(prec, v * (cast ? round_to(prec, s->mul[j]) : s->mul[j]));
            }
            if (s->div != NULL) {
                v = round_to(prec, v / (cast ? round_to(prec, s->div[j]) : s->div[j]));
            }
            if (s->add != NULL) {
                v = round_to(prec, v + (cast ? round_to(prec, s->add[j]) : s->add[j]));
            }
            if (s->clip) {
                /* np.clip keeps NaN: both comparisons are false */
                v = v < lo ? lo : (v > hi ? hi : v);
            }
            y[j] = v;
        }
    }
}

static void
affine_run(const void *op, const double *in, Py_ssize_t n, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_affine *s = op;

    if (prec == MF_F64 && !s->clip) {
        /* float64 throughout (the usual case): no rounding between steps */
        const char ops[4] = {'-', '*', '/', '+'};
        const double *params[4] = {s->sub, s->mul, s->div, s->add};
        const double *src = in;
        int i;
        for (i = 0; i < 4; i++) {
            if (params[i] != NULL) {
                affine_pass(ops[i], params[i], src, out, n_rows, n);
                src = out;
            }
        }
        if (src != out) {
            memcpy(out, in, (size_t)(n_rows * n) * sizeof(double));
        }
    }
    else {
        affine_rows(s, in, out, n, n_rows, prec);
    }
}

static inline int
is_missing(const mf_impute *s, double v)
{
    return s->missing_is_nan ? isnan(v) : v == s->missing;
}

/* SimpleImputer.transform: drop the columns whose statistic is NaN, fill
 * missing values with the (rounded) statistic, append MissingIndicator
 * columns computed on the input. */
static void
impute_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_impute *s = op;
    Py_ssize_t r, t;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        for (t = 0; t < s->n_keep; t++) {
            int64_t c = s->keep[t];
            double v = x[c];
            y[t] = is_missing(s, v) ? round_to(prec, s->fill[c]) : v;
        }
        for (t = 0; t < s->n_indicator; t++) {
            y[s->n_keep + t] = is_missing(s, x[s->indicator[t]]) ? 1.0 : 0.0;
        }
    }
}

/* The index of v among sorted categories, or NaN. */
static inline double
encode_one(const double *cats, npy_intp n, double v)
{
    npy_intp lo = 0, hi = n;
    if (isnan(v)) {
        return NAN;
    }
    while (lo < hi) {
        npy_intp mid = lo + (hi - lo) / 2;
        if (cats[mid] < v) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < n && cats[lo] == v ? (double)lo : NAN;
}

static void
encode_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_encode *s = op;
    Py_ssize_t r, j, n_cat = s->n_offsets - 1;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double *y = out + r * n_out;
        for (j = 0; j < n_cat; j++) {
            int64_t off = s->offsets[j];
            y[j] = encode_one(s->categories + off, s->offsets[j + 1] - off, x[s->perm[j]]);
        }
        for (; j < n_out; j++) {
            y[j] = x[s->perm[j]];
        }
    }
}

double
mf_round_to(mf_precision prec, double v)
{
    return round_to(prec, v);
}

/* ---- the op definitions -------------------------------------------------------- */

static int
vector_fits(const char *what, const void *data, Py_ssize_t n, Py_ssize_t want)
{
    if (data != NULL && n != want) {
        PyErr_Format(PyExc_ValueError, "%s has %zd items for %zd columns", what, n, want);
        return -1;
    }
    return 0;
}

static int
indices_fit(const char *what, const int64_t *idx, Py_ssize_t n, Py_ssize_t bound)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= bound) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld is outside 0..%zd", what, i,
                         (long long)idx[i], bound - 1);
            return -1;
        }
    }
    return 0;
}

static int
is_integer_type(int t)
{
    return PyTypeNum_ISINTEGER(t) || PyTypeNum_ISBOOL(t);
}

static int
affine_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_affine *s = op;
    if (vector_fits("affine.sub", s->sub, s->n_sub, n_in) < 0 ||
        vector_fits("affine.mul", s->mul, s->n_mul, n_in) < 0 ||
        vector_fits("affine.div", s->div, s->n_div, n_in) < 0 ||
        vector_fits("affine.add", s->add, s->n_add, n_in) < 0) {
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static const mf_field affine_fields[] = {
    MF_VECTOR_FIELD(mf_affine, sub, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_sub),
    MF_VECTOR_FIELD(mf_affine, mul, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_mul),
    MF_VECTOR_FIELD(mf_affine, div, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_div),
    MF_VECTOR_FIELD(mf_affine, add, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_add),
    MF_SCALAR_FIELD(mf_affine, cast_params, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_affine, clip, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_affine, clip_lo, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_affine, clip_hi, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_affine = {
    .name = "affine",
    .size = sizeof(mf_affine),
    .fields = affine_fields,
    .prepare = affine_prepare,
    .run = affine_run,
};

static int
impute_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_impute *s = op;
    if (vector_fits("impute.fill", s->fill, s->n_fill, n_in) < 0 ||
        indices_fit("impute.keep", s->keep, s->n_keep, n_in) < 0 ||
        indices_fit("impute.indicator", s->indicator, s->n_indicator, n_in) < 0) {
        return -1;
    }
    s->missing_is_nan = isnan(s->missing);
    *n_out = s->n_keep + s->n_indicator;
    return 0;
}

/* SimpleImputer(strategy='most_frequent'|'constant') keeps integer input
 * integer; the other strategies, like the scalers, make float64 of it. */
static int
impute_out_type(const void *op, int in_type)
{
    const mf_impute *s = op;
    if (is_integer_type(in_type)) {
        return s->keeps_int ? in_type : NPY_DOUBLE;
    }
    return in_type;
}

static const mf_field impute_fields[] = {
    MF_SCALAR_FIELD(mf_impute, missing, MF_FIELD_FLOAT),
    MF_VECTOR_FIELD(mf_impute, fill, NPY_DOUBLE, 0, n_fill),
    MF_SCALAR_FIELD(mf_impute, keeps_int, MF_FIELD_BOOL),
    MF_VECTOR_FIELD(mf_impute, keep, NPY_INT64, 0, n_keep),
    MF_VECTOR_FIELD(mf_impute, indicator, NPY_INT64, 0, n_indicator),
    MF_END_FIELDS,
};

const mf_op_def mf_op_impute = {
    .name = "impute",
    .size = sizeof(mf_impute),
    .fields = impute_fields,
    .prepare = impute_prepare,
    .run = impute_run,
    .out_type = impute_out_type,
};

static int
encode_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_encode *s = op;
    Py_ssize_t n_cat = s->n_offsets - 1, t;
    int64_t i;

    if (vector_fits("encode.perm", s->perm, s->n_perm, n_in) < 0 ||
        indices_fit("encode.perm", s->perm, s->n_perm, n_in) < 0) {
        return -1;
    }
    if (n_cat < 0 || n_cat > n_in || s->offsets[0] != 0 || s->offsets[n_cat] != s->n_categories) {
        PyErr_SetString(PyExc_ValueError, "encode.offsets do not cover the categories");
        return -1;
    }
    for (t = 0; t < n_cat; t++) {
        if (s->offsets[t + 1] < s->offsets[t] || s->offsets[t + 1] > s->n_categories) {
            PyErr_SetString(PyExc_ValueError, "encode.offsets must not decrease");
            return -1;
        }
        for (i = s->offsets[t] + 1; i < s->offsets[t + 1]; i++) {
            if (!(s->categories[i - 1] < s->categories[i])) {
                PyErr_SetString(PyExc_ValueError, "encode.categories must be sorted and unique");
                return -1;
            }
        }
    }
    *n_out = n_in;
    return 0;
}

static int
encode_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

/* HistGradientBoosting's encoder lets anything through but infinity in a
 * categorical column, which its OrdinalEncoder refuses. */
static int
encode_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
             mf_err_kind *err)
{
    const mf_encode *s = op;
    Py_ssize_t r, j, n_cat = s->n_offsets - 1;
    for (r = 0; r < n_rows; r++) {
        for (j = 0; j < n_cat; j++) {
            if (isinf(in[r * n_in + s->perm[j]])) {
                *err = MF_ERR_INF;
                return 1;
            }
        }
    }
    return 0;
}

static const mf_field encode_fields[] = {
    MF_VECTOR_FIELD(mf_encode, perm, NPY_INT64, 0, n_perm),
    MF_VECTOR_FIELD(mf_encode, categories, NPY_DOUBLE, 0, n_categories),
    MF_VECTOR_FIELD(mf_encode, offsets, NPY_INT64, 0, n_offsets),
    MF_END_FIELDS,
};

const mf_op_def mf_op_encode = {
    .name = "encode",
    .size = sizeof(mf_encode),
    .fields = encode_fields,
    .prepare = encode_prepare,
    .run = encode_run,
    .out_type = encode_out_type,
    .check = encode_check,
};
