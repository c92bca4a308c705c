/*
 * preprocess.c -- preprocessing kernels: interpolation tables
 * (IsotonicRegression, QuantileTransformer), row normalisation (Normalizer),
 * binning (KBinsDiscretizer), kernel centring (KernelCenterer) and power
 * transforms (PowerTransformer).
 *
 * Each follows scikit-learn's arithmetic in its order; a node working in
 * float32 rounds where scikit-learn stores an intermediate result in X's
 * own float32 column.
 */
#include "mlfast.h"
#include <float.h>
#include <math.h>
#include <string.h>

static double
to_prec(mf_precision prec, double v)
{
    return prec == MF_F64 ? v : mf_round_to(prec, v);
}

static int
table_fits(const char *op, const int64_t *offsets, Py_ssize_t n_offsets, Py_ssize_t n_in,
           Py_ssize_t n_values, Py_ssize_t min_len)
{
    Py_ssize_t c;
    if (n_offsets != n_in + 1 || offsets[0] != 0 || offsets[n_in] != n_values) {
        PyErr_Format(PyExc_ValueError, "%s: %zd offsets over %zd values for %zd columns", op,
                     n_offsets, n_values, n_in);
        return 0;
    }
    for (c = 0; c < n_in; c++) {
        if (offsets[c + 1] - offsets[c] < min_len) {
            PyErr_Format(PyExc_ValueError, "%s: column %zd has a table of %lld values", op, c,
                         (long long)(offsets[c + 1] - offsets[c]));
            return 0;
        }
    }
    return 1;
}

/* ---- interp -------------------------------------------------------------------- */

/* np.interp(v, xp, fp) for one value: the last j with xp[j] <= v, the
 * slope of that interval, numpy's fallbacks for a non-finite result. */
static double
np_interp(double v, const double *xp, const double *fp, Py_ssize_t n, double left, double right)
{
    Py_ssize_t lo = 0, hi = n, j;
    double slope, r;

    if (isnan(v)) {
        return v;
    }
    if (v < xp[0]) {
        return left;
    }
    if (v > xp[n - 1]) {
        return right;
    }
    while (hi - lo > 1) {                 /* xp[lo] <= v < xp[hi] */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (xp[mid] <= v) {
            lo = mid;
        }
        else {
            hi = mid;
        }
    }
    j = lo;
    if (j == n - 1 || xp[j] == v) {
        return fp[j];
    }
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    r = slope * (v - xp[j]) + fp[j];
    if (isnan(r)) {
        r = slope * (v - xp[j + 1]) + fp[j + 1];
        if (isnan(r) && fp[j] == fp[j + 1]) {
            r = fp[j];
        }
    }
    return r;
}

/* The standard normal quantile of p in (0, 0.5]: a rational first guess,
 * then Halley steps on erfc, accurate in the lower tail. */
static double
ndtri_lower(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {
        -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
        6.680131188771972e+01, -1.328068155288572e+01
    };
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {
        7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00
    };
    double x, q, r;
    int i;

    if (p < 0.02425) {
        q = sqrt(-2.0 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    else {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    }
    for (i = 0; i < 3; i++) {
        double e = 0.5 * erfc(-x / M_SQRT2) - p;
        double u = e * sqrt(2.0 * M_PI) * exp(0.5 * x * x);
        x = x - u / (1.0 + 0.5 * x * u);
    }
    return x;
}

/* scipy.stats.norm.ppf */
static double
ndtri(double p)
{
    if (isnan(p) || p < 0.0 || p > 1.0) {
        return NAN;
    }
    if (p == 0.0) {
        return -INFINITY;
    }
    if (p == 1.0) {
        return INFINITY;
    }
    return p > 0.5 ? -ndtri_lower(1.0 - p) : ndtri_lower(p);
}

#define MF_BOUNDS_THRESHOLD 1e-7

static double
interp_value(const mf_interp *ip, double v, Py_ssize_t c, mf_precision prec)
{
    Py_ssize_t o = ip->offsets[c], n = ip->offsets[c + 1] - o;
    const double *x = ip->x + o, *y = ip->y + o;

    switch ((mf_interp_rule)ip->rule) {
    case MF_INTERP_CLIP:
    case MF_INTERP_NAN:
    case MF_INTERP_RAISE:
        /* IsotonicRegression: np.clip to [X_min_, X_max_] ('clip'), then
         * np.interp; NaN outside the thresholds ('nan'); a single threshold
         * predicts its value everywhere */
        if (n == 1) {
            return y[0];
        }
        if (ip->rule == MF_INTERP_CLIP) {
            v = v < ip->lo[c] ? ip->lo[c] : v > ip->hi[c] ? ip->hi[c] : v;
        }
        else if (v < x[0] || v > x[n - 1]) {
            return NAN;
        }
        return np_interp(v, x, y, n, y[0], y[n - 1]);
    default: {
        /* QuantileTransformer._transform_col, forward */
        const double *x2 = ip->x2 + o, *y2 = ip->y2 + o;
        int lower, upper;
        double r;
        if (isnan(v)) {
            return v;
        }
        if (ip->rule == MF_INTERP_QUANTILE_NORMAL) {
            double t = to_prec(prec, MF_BOUNDS_THRESHOLD);
            lower = to_prec(prec, v - t) < x[0];
            upper = to_prec(prec, v + t) > x[n - 1];
        }
        else {
            lower = v == x[0];
            upper = v == x[n - 1];
        }
        r = to_prec(prec, 0.5 * (np_interp(v, x, y, n, y[0], y[n - 1]) -
                                 np_interp(-v, x2, y2, n, y2[0], y2[n - 1])));
        if (upper) {
            r = 1.0;
        }
        if (lower) {
            r = 0.0;
        }
        if (ip->rule == MF_INTERP_QUANTILE_NORMAL) {
            r = ndtri(r);
            r = r < ip->clip_min ? ip->clip_min : r > ip->clip_max ? ip->clip_max : r;
        }
        return r;
    }
    }
}

static void
interp_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_interp *ip = op;
    Py_ssize_t r, c;
    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_in; c++) {
            double v = interp_value(ip, in[r * n_in + c], c, prec);
            /* IsotonicRegression computes in float64 whatever X is */
            out[r * n_in + c] = ip->rule <= MF_INTERP_RAISE ? v : to_prec(prec, v);
        }
    }
}

static int
interp_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
             mf_err_kind *err)
{
    const mf_interp *ip = op;
    Py_ssize_t r, c;
    if (mf_check_block(accept, in, n_rows * n_in, err)) {
        return 1;
    }
    if (ip->rule != MF_INTERP_RAISE) {
        return 0;
    }
    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_in; c++) {
            Py_ssize_t o = ip->offsets[c], n = ip->offsets[c + 1] - o;
            double v = in[r * n_in + c];
            if (n > 1 && (v < ip->x[o] || v > ip->x[o + n - 1])) {
                *err = MF_ERR_DOMAIN;
                return 1;
            }
        }
    }
    return 0;
}

static const char *
interp_domain(const void *op)
{
    return "A value in x_new is outside the interpolation range of "
           "IsotonicRegression(out_of_bounds='raise').";
}

static int
interp_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_interp *ip = op;
    int quantile = ip->rule == MF_INTERP_QUANTILE_UNIFORM || ip->rule == MF_INTERP_QUANTILE_NORMAL;
    if (ip->rule < MF_INTERP_CLIP || ip->rule > MF_INTERP_QUANTILE_NORMAL || ip->n_y != ip->n_x ||
        (quantile && (ip->n_x2 != ip->n_x || ip->n_y2 != ip->n_x)) ||
        (ip->rule == MF_INTERP_CLIP && (ip->n_lo != n_in || ip->n_hi != n_in))) {
        PyErr_Format(PyExc_ValueError,
                     "interp: rule %zd with tables of %zd, %zd, %zd, %zd "
                     "values and %zd, %zd bounds for %zd columns",
                     ip->rule, ip->n_x, ip->n_y, ip->n_x2, ip->n_y2, ip->n_lo, ip->n_hi, n_in);
        return -1;
    }
    if (!table_fits("interp", ip->offsets, ip->n_offsets, n_in, ip->n_x, 1)) {
        return -1;
    }
    ip->clip_min = ndtri(MF_BOUNDS_THRESHOLD - DBL_EPSILON);
    ip->clip_max = ndtri(1.0 - (MF_BOUNDS_THRESHOLD - DBL_EPSILON));
    *n_out = n_in;
    return 0;
}

/* IsotonicRegression returns the thresholds' float64 whatever X is */
static int
interp_out_type(const void *op, int in_type)
{
    const mf_interp *ip = op;
    if (ip->rule <= MF_INTERP_RAISE) {
        return NPY_DOUBLE;
    }
    return in_type == NPY_FLOAT ? NPY_FLOAT : NPY_DOUBLE;
}

static const mf_field interp_fields[] = {
    MF_SCALAR_FIELD(mf_interp, rule, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_interp, x, NPY_DOUBLE, 0, n_x),
    MF_VECTOR_FIELD(mf_interp, y, NPY_DOUBLE, 0, n_y),
    MF_VECTOR_FIELD(mf_interp, x2, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_x2),
    MF_VECTOR_FIELD(mf_interp, y2, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_y2),
    MF_VECTOR_FIELD(mf_interp, offsets, NPY_INT64, 0, n_offsets),
    MF_VECTOR_FIELD(mf_interp, lo, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_lo),
    MF_VECTOR_FIELD(mf_interp, hi, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_hi),
    MF_END_FIELDS,
};

const mf_op_def mf_op_interp = {
    .name = "interp",
    .size = sizeof(mf_interp),
    .fields = interp_fields,
    .prepare = interp_prepare,
    .run = interp_run,
    .out_type = interp_out_type,
    .check = interp_check,
    .domain_message = interp_domain,
};

/* ---- rownorm ------------------------------------------------------------------- */

static void
rownorm_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_rownorm *rn = op;
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double norm = 0.0;
        for (j = 0; j < n_in; j++) {
            double a = fabs(x[j]);
            if (rn->rule == MF_ROWNORM_L1) {
                norm += a;
            }
            else if (rn->rule == MF_ROWNORM_L2) {
                norm += x[j] * x[j];
            }
            else if (a > norm || isnan(a)) {
                norm = a;
            }
        }
        if (rn->rule == MF_ROWNORM_L2) {
            norm = sqrt(to_prec(prec, norm));
        }
        norm = to_prec(prec, norm);
        /* _handle_zeros_in_scale: norms below 10 eps (of X's type) divide by 1 */
        if (norm < 10.0 * (prec == MF_F64 ? DBL_EPSILON : (double)FLT_EPSILON)) {
            norm = 1.0;
        }
        for (j = 0; j < n_in; j++) {
            out[r * n_in + j] = to_prec(prec, x[j] / norm);
        }
    }
}

static int
rownorm_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_rownorm *rn = op;
    if (rn->rule < MF_ROWNORM_L1 || rn->rule > MF_ROWNORM_MAX) {
        PyErr_Format(PyExc_ValueError, "rownorm: unknown rule %zd", rn->rule);
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static const mf_field rownorm_fields[] = {
    MF_SCALAR_FIELD(mf_rownorm, rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_rownorm = {
    .name = "rownorm",
    .size = sizeof(mf_rownorm),
    .fields = rownorm_fields,
    .prepare = rownorm_prepare,
    .run = rownorm_run,
};

/* ---- bins ---------------------------------------------------------------------- */

static void
bins_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
         Py_ssize_t n_rows, mf_precision prec)
{
    const mf_bins *bn = op;
    Py_ssize_t r, c;
    for (r = 0; r < n_rows; r++) {
        double *o = out + r * n_out;
        Py_ssize_t base = 0;
        if (bn->onehot) {
            memset(o, 0, (size_t)n_out * sizeof(double));
        }
        for (c = 0; c < n_in; c++) {
            const double *edges = bn->edges + bn->offsets[c];
            Py_ssize_t n = bn->offsets[c + 1] - bn->offsets[c], lo = 0, hi = n;
            double v = in[r * n_in + c];
            if (bn->round_f32) {
                v = mf_round_to(MF_F32, v);
            }
            /* np.searchsorted(edges, v, side='right'): edges <= v */
            while (lo < hi) {
                Py_ssize_t mid = lo + (hi - lo) / 2;
                if (edges[mid] <= v) {
                    lo = mid + 1;
                }
                else {
                    hi = mid;
                }
            }
            if (bn->onehot) {
                o[base + lo] = 1.0;
                base += n + 1;
            }
            else {
                o[c] = (double)lo;
            }
        }
    }
}

static int
bins_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_bins *bn = op;
    if (!table_fits("bins", bn->offsets, bn->n_offsets, n_in, bn->n_edges, 0)) {
        return -1;
    }
    *n_out = bn->onehot ? bn->n_edges + n_in : n_in;
    return 0;
}

static int
bins_out_type(const void *op, int in_type)
{
    const mf_bins *bn = op;
    if (bn->out_type > 0) {
        return (int)bn->out_type;
    }
    return in_type == NPY_FLOAT ? NPY_FLOAT : NPY_DOUBLE;
}

static const mf_field bins_fields[] = {
    MF_VECTOR_FIELD(mf_bins, edges, NPY_DOUBLE, 0, n_edges),
    MF_VECTOR_FIELD(mf_bins, offsets, NPY_INT64, 0, n_offsets),
    MF_SCALAR_FIELD(mf_bins, onehot, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_bins, round_f32, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_bins, out_type, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_bins = {
    .name = "bins",
    .size = sizeof(mf_bins),
    .fields = bins_fields,
    .prepare = bins_prepare,
    .run = bins_run,
    .out_type = bins_out_type,
};

/* ---- center_kernel ------------------------------------------------------------- */

static void
center_kernel_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                  Py_ssize_t n_rows, mf_precision prec)
{
    const mf_center_kernel *ck = op;
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        const double *x = in + r * n_in;
        double s = 0.0, mean;
        for (j = 0; j < n_in; j++) {
            s += x[j];
        }
        mean = to_prec(prec, to_prec(prec, s) / (double)n_in);
        for (j = 0; j < n_in; j++) {
            double v = to_prec(prec, x[j] - ck->fit_rows[j]);
            v = to_prec(prec, v - mean);
            out[r * n_in + j] = to_prec(prec, v + ck->fit_all);
        }
    }
}

static int
center_kernel_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_center_kernel *ck = op;
    if (ck->n_fit_rows != n_in) {
        PyErr_Format(PyExc_ValueError, "center_kernel: %zd column means for %zd columns",
                     ck->n_fit_rows, n_in);
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static const mf_field center_kernel_fields[] = {
    MF_VECTOR_FIELD(mf_center_kernel, fit_rows, NPY_DOUBLE, 0, n_fit_rows),
    MF_SCALAR_FIELD(mf_center_kernel, fit_all, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_center_kernel = {
    .name = "center_kernel",
    .size = sizeof(mf_center_kernel),
    .fields = center_kernel_fields,
    .prepare = center_kernel_prepare,
    .run = center_kernel_run,
};

/* ---- power --------------------------------------------------------------------- */

/* scipy.special.boxcox */
static double
box_cox(double x, double lmbda)
{
    if (fabs(lmbda) < 1e-19) {
        return log(x);
    }
    return expm1(lmbda * log(x)) / lmbda;
}

/* PowerTransformer._yeo_johnson_transform */
static double
yeo_johnson(double x, double lmbda)
{
    if (x >= 0.0) {
        if (fabs(lmbda) < DBL_EPSILON) {
            return log1p(x);
        }
        return (pow(x + 1.0, lmbda) - 1.0) / lmbda;
    }
    if (fabs(lmbda - 2.0) > DBL_EPSILON) {
        return -(pow(-x + 1.0, 2.0 - lmbda) - 1.0) / (2.0 - lmbda);
    }
    return -log1p(-x);
}

/* scipy.stats.yeojohnson with a given lambda */
static double
yeo_johnson_expm1(double x, double lmbda)
{
    if (x >= 0.0) {
        if (fabs(lmbda) < DBL_EPSILON) {
            return log1p(x);
        }
        return expm1(lmbda * log1p(x)) / lmbda;
    }
    if (fabs(lmbda - 2.0) > DBL_EPSILON) {
        return -expm1((2.0 - lmbda) * log1p(-x)) / (2.0 - lmbda);
    }
    return -log1p(-x);
}

static void
power_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
          Py_ssize_t n_rows, mf_precision prec)
{
    const mf_power *pw = op;
    Py_ssize_t r, c;
    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_in; c++) {
            double x = in[r * n_in + c];
            double v = pw->rule == MF_POWER_BOX_COX       ? box_cox(x, pw->lambdas[c])
                       : pw->rule == MF_POWER_YEO_JOHNSON ? yeo_johnson(x, pw->lambdas[c])
                                                          : yeo_johnson_expm1(x, pw->lambdas[c]);
            out[r * n_in + c] = to_prec(prec, v);
        }
    }
}

static int
power_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
            mf_err_kind *err)
{
    const mf_power *pw = op;
    Py_ssize_t i;
    if (mf_check_block(accept, in, n_rows * n_in, err)) {
        return 1;
    }
    if (pw->rule == MF_POWER_BOX_COX) {
        for (i = 0; i < n_rows * n_in; i++) {
            if (in[i] <= 0.0) {
                *err = MF_ERR_DOMAIN;
                return 1;
            }
        }
    }
    return 0;
}

static const char *
power_domain(const void *op)
{
    return "The Box-Cox transformation can only be applied to strictly positive data";
}

static int
power_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_power *pw = op;
    if (pw->rule < MF_POWER_BOX_COX || pw->rule > MF_POWER_YEO_JOHNSON_EXPM1 ||
        pw->n_lambdas != n_in) {
        PyErr_Format(PyExc_ValueError, "power: rule %zd with %zd lambdas for %zd columns", pw->rule,
                     pw->n_lambdas, n_in);
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static const mf_field power_fields[] = {
    MF_SCALAR_FIELD(mf_power, rule, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_power, lambdas, NPY_DOUBLE, 0, n_lambdas),
    MF_END_FIELDS,
};

const mf_op_def mf_op_power = {
    .name = "power",
    .size = sizeof(mf_power),
    .fields = power_fields,
    .prepare = power_prepare,
    .run = power_run,
    .check = power_check,
    .domain_message = power_domain,
};

/* ---- codes --------------------------------------------------------------------- */

int
mf_preprocess_codes(PyObject *table)
{
    PyObject *codes = Py_BuildValue(
        "{s{sisisisisi}s{sisisi}s{sisisi}s{sisisisi}}", "interp", "CLIP", MF_INTERP_CLIP, "NAN",
        MF_INTERP_NAN, "RAISE", MF_INTERP_RAISE, "QUANTILE_UNIFORM", MF_INTERP_QUANTILE_UNIFORM,
        "QUANTILE_NORMAL", MF_INTERP_QUANTILE_NORMAL, "rownorm", "L1", MF_ROWNORM_L1, "L2",
        MF_ROWNORM_L2, "MAX", MF_ROWNORM_MAX, "power", "BOX_COX", MF_POWER_BOX_COX, "YEO_JOHNSON",
        MF_POWER_YEO_JOHNSON, "YEO_JOHNSON_EXPM1", MF_POWER_YEO_JOHNSON_EXPM1, "spline", "CONTINUE",
        MF_SPLINE_CONTINUE, "ERROR", MF_SPLINE_ERROR, "PERIODIC", MF_SPLINE_PERIODIC, "CONSTANT",
        MF_SPLINE_CONSTANT);
    int rc = -1;
    if (codes == NULL) {
        goto done;
    }
    if (PyDict_Update(table, codes) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(codes);
    return rc;
}

/* ---- spline -------------------------------------------------------------------- */

/* scipy's find_interval: the largest l in [k, n - 1] with t[l] <= x (from
 * l = k up), or -1 for NaN and, without extrapolation, outside [t[k], t[n]]. */
static Py_ssize_t
spline_interval(const double *t, Py_ssize_t n_t, Py_ssize_t k, double x, int extrapolate)
{
    Py_ssize_t n = n_t - k - 1, l = k;
    if (isnan(x) || (!extrapolate && (x < t[k] || x > t[n]))) {
        return -1;
    }
    l += 1;
    while (l != n && x >= t[l]) {
        l += 1;
    }
    return l - 1;
}

/* The basis values of one column at x: out[jp] = sum over a of
 * c[l - k + a, jp] * h[a], h the non-zero B-splines at x (de Boor's
 * recursion as scipy computes it); NaN everywhere for interval -1. */
static void
spline_basis(const mf_spline *sp, const double *t, double x, int extrapolate, double *out)
{
    Py_ssize_t k = sp->degree, ns = sp->n_coef_cols, l, j, n, a, jp;
    double h[MF_SPLINE_MAX_DEGREE + 1], hh[MF_SPLINE_MAX_DEGREE + 1];

    l = spline_interval(t, sp->n_knot_cols, k, x, extrapolate);
    if (l < 0) {
        for (jp = 0; jp < ns; jp++) {
            out[jp] = NAN;
        }
        return;
    }
    h[0] = 1.0;
    for (j = 1; j <= k; j++) {
        memcpy(hh, h, (size_t)j * sizeof(double));
        h[0] = 0.0;
        for (n = 1; n <= j; n++) {
            double xb = t[l + n], xa = t[l + n - j], w;
            if (xb == xa) {
                h[n] = 0.0;
                continue;
            }
            w = hh[n - 1] / (xb - xa);
            h[n - 1] += w * (xb - x);
            h[n] = w * (x - xa);
        }
    }
    for (jp = 0; jp < ns; jp++) {
        out[jp] = 0.0;
    }
    for (a = 0; a <= k; a++) {
        const double *row = sp->coef + (l - k + a) * ns;
        for (jp = 0; jp < ns; jp++) {
            out[jp] += row[jp] * h[a];
        }
    }
}

static void
spline_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_spline *sp = op;
    Py_ssize_t ns = sp->n_coef_cols, keep = ns - !sp->include_bias, k = sp->degree;
    Py_ssize_t nk = sp->n_knot_cols, r, c, jp;
    double basis[MF_SPLINE_MAX_SPLINES];

    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_in; c++) {
            const double *t = sp->knots + c * nk;
            double x = in[r * n_in + c], lo = t[k], hi = t[nk - k - 1];
            double *o = out + r * n_out + c * keep;
            if (isnan(x)) {
                /* handle_missing='zeros' */
                for (jp = 0; jp < ns; jp++) {
                    basis[jp] = 0.0;
                }
            }
            else if (sp->rule == MF_SPLINE_CONSTANT) {
                if (x >= lo && x <= hi) {
                    spline_basis(sp, t, x, 0, basis);
                }
                else {
                    for (jp = 0; jp < ns; jp++) {
                        basis[jp] = 0.0;
                    }
                    if (x < lo) {
                        memcpy(basis, sp->f_min + c * ns, (size_t)k * sizeof(double));
                    }
                    else {
                        memcpy(basis + ns - k, sp->f_max + c * ns + ns - k,
                               (size_t)k * sizeof(double));
                    }
                }
            }
            else {
                if (sp->rule == MF_SPLINE_PERIODIC) {
                    double period = hi - lo;
                    if (period > 0.0) {
                        /* lo + (x - lo) % period, Python's remainder */
                        double m = fmod(x - lo, period);
                        if (m != 0.0 && (m < 0.0) != (period < 0.0)) {
                            m += period;
                        }
                        x = lo + m;
                    }
                    else {
                        x = 0.0;
                    }
                }
                spline_basis(sp, t, x, sp->rule != MF_SPLINE_ERROR, basis);
            }
            for (jp = 0; jp < keep; jp++) {
                o[jp] = to_prec(prec, basis[jp]);
            }
        }
    }
}

static int
spline_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
             mf_err_kind *err)
{
    const mf_spline *sp = op;
    Py_ssize_t r, c, k = sp->degree, nk = sp->n_knot_cols;
    if (mf_check_block(accept, in, n_rows * n_in, err)) {
        return 1;
    }
    if (sp->rule != MF_SPLINE_ERROR) {
        return 0;
    }
    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_in; c++) {
            const double *t = sp->knots + c * nk;
            double x = in[r * n_in + c];
            if (x < t[k] || x > t[nk - k - 1]) {
                *err = MF_ERR_DOMAIN;
                return 1;
            }
        }
    }
    return 0;
}

static const char *
spline_domain(const void *op)
{
    return "`X` contains values beyond the limits of the knots.";
}

static int
spline_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_spline *sp = op;
    Py_ssize_t k = sp->degree, nk = sp->n_knot_cols, ns = sp->n_coef_cols, c, i;

    if (sp->rule < MF_SPLINE_CONTINUE || sp->rule > MF_SPLINE_CONSTANT || k < 0 ||
        k > MF_SPLINE_MAX_DEGREE || sp->n_knot_rows != n_in || nk < 2 * k + 2 || ns < 1 ||
        ns > MF_SPLINE_MAX_SPLINES || ns - !sp->include_bias < 1 || sp->n_coef_rows != nk - k - 1 ||
        (sp->rule == MF_SPLINE_CONSTANT && ns < k)) {
        PyErr_Format(PyExc_ValueError,
                     "spline: rule %zd, degree %zd, knots (%zd, %zd), "
                     "coefficients (%zd, %zd) for %zd columns",
                     sp->rule, k, sp->n_knot_rows, nk, sp->n_coef_rows, ns, n_in);
        return -1;
    }
    for (c = 0; c < n_in; c++) {
        for (i = 0; i + 1 < nk; i++) {
            double a = sp->knots[c * nk + i], b = sp->knots[c * nk + i + 1];
            if (!(a <= b) || !isfinite(a) || !isfinite(b)) {
                PyErr_Format(PyExc_ValueError,
                             "spline: the knots of column %zd are not "
                             "finite and sorted",
                             c);
                return -1;
            }
        }
    }
    if (sp->rule == MF_SPLINE_CONSTANT) {
        sp->f_min = PyMem_Calloc((size_t)(n_in * ns), sizeof(double));
        sp->f_max = PyMem_Calloc((size_t)(n_in * ns), sizeof(double));
        if (sp->f_min == NULL || sp->f_max == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (c = 0; c < n_in; c++) {
            const double *t = sp->knots + c * nk;
            spline_basis(sp, t, t[k], 0, sp->f_min + c * ns);
            spline_basis(sp, t, t[nk - k - 1], 0, sp->f_max + c * ns);
        }
    }
    *n_out = n_in * (ns - !sp->include_bias);
    return 0;
}

static void
spline_release(void *op)
{
    mf_spline *sp = op;
    PyMem_Free(sp->f_min);
    PyMem_Free(sp->f_max);
    sp->f_min = sp->f_max = NULL;
}

static const mf_field spline_fields[] = {
    MF_SCALAR_FIELD(mf_spline, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_spline, degree, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_spline, knots, NPY_DOUBLE, 0, n_knot_rows, n_knot_cols),
    MF_MATRIX_FIELD(mf_spline, coef, NPY_DOUBLE, 0, n_coef_rows, n_coef_cols),
    MF_SCALAR_FIELD(mf_spline, include_bias, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_spline = {
    .name = "spline",
    .size = sizeof(mf_spline),
    .fields = spline_fields,
    .prepare = spline_prepare,
    .release = spline_release,
    .run = spline_run,
    .check = spline_check,
    .domain_message = spline_domain,
};
