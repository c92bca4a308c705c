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
affine_rows(const mf_step *s, const double *in, double *out, Py_ssize_t n_rows,
            mf_precision prec)
{
    Py_ssize_t n = s->n_in, r, j;
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
affine_apply(const mf_step *s, const double *in, double *out, Py_ssize_t n_rows,
             mf_precision prec)
{
    Py_ssize_t n = s->n_in;

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
        affine_rows(s, in, out, n_rows, prec);
    }
}

static inline int
is_missing(const mf_step *s, double v)
{
    return s->missing_is_nan ? isnan(v) : v == s->missing;
}

/* SimpleImputer.transform: drop the columns whose statistic is NaN, fill
 * missing values with the (rounded) statistic, append MissingIndicator
 * columns computed on the input. */
static void
impute_apply(const mf_step *s, const double *in, double *out, Py_ssize_t n_rows,
             mf_precision prec)
{
    Py_ssize_t r, t;

    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * s->n_in;
        double *y = out + r * s->n_out;
        for (t = 0; t < s->n_keep; t++) {
            npy_intp c = s->keep[t];
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
encode_apply(const mf_step *s, const double *in, double *out, Py_ssize_t n_rows)
{
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * s->n_in;
        double *y = out + r * s->n_out;
        for (j = 0; j < s->n_cat; j++) {
            npy_intp off = s->cat_offsets[j];
            y[j] = encode_one(s->cat_values + off, s->cat_offsets[j + 1] - off,
                              x[s->perm[j]]);
        }
        for (; j < s->n_out; j++) {
            y[j] = x[s->perm[j]];
        }
    }
}

void
mf_step_apply(const mf_step *step, const double *in, double *out, Py_ssize_t n_rows,
              mf_precision prec)
{
    switch (step->kind) {
    case MF_STEP_AFFINE:
        affine_apply(step, in, out, n_rows, prec);
        break;
    case MF_STEP_IMPUTE:
        impute_apply(step, in, out, n_rows, prec);
        break;
    case MF_STEP_ENCODE:
        encode_apply(step, in, out, n_rows);
        break;
    }
}
