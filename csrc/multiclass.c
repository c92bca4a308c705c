/*
 * multiclass.c -- the ops of the meta-estimators that combine other
 * estimators' answers: probability calibration (CalibratedClassifierCV),
 * one-vs-rest probabilities and one-vs-one votes, output codes, and numpy's
 * element-wise functions (FunctionTransformer, TransformedTargetRegressor);
 * averages, labels as numbers and constants are ensemble.c's.
 *
 * Each computes what scikit-learn computes, in its order of operations
 * (row sums are numpy's pairwise sums).  Where scikit-learn calls numpy's
 * exp, log and the other functions of MF_FUNCTION_NAMES, the kernels call
 * numpy's own inner loops, found at construction by those fixed names:
 * numpy picks SIMD code by CPU (SVML on AVX-512) whose values differ from
 * libm's in the last bit, so only its loops give its values on every
 * machine.  The loops run without the GIL, as numpy runs them.
 */
#define NO_IMPORT_UFUNC
#include "mlfast.h"
#include <numpy/ufuncobject.h>
#include <math.h>
#include <string.h>

/* scipy-openblas32's CBLAS (linear.c declares the same). */
typedef enum { CblasRowMajor = 101 } mf_cblas_order;
typedef enum { CblasNoTrans = 111, CblasTrans = 112 } mf_cblas_trans;
extern void scipy_cblas_dgemm(mf_cblas_order order, mf_cblas_trans ta, mf_cblas_trans tb, int m,
                              int n, int k, double alpha, const double *a, int lda, const double *b,
                              int ldb, double beta, double *c, int ldc);
extern double scipy_cblas_ddot(int n, const double *x, int incx, const double *y, int incy);

static const char *const function_names[] = {MF_FUNCTION_NAMES, NULL};
#define N_FUNCTIONS ((Py_ssize_t)(sizeof(function_names) / sizeof(function_names[0]) - 1))

/* Values a kernel converts at a time for numpy's float32 and float16 loops. */
#define MF_LOOP_CHUNK 256
/* One-vs-one with more classes would mean over half a million estimators;
 * the votes of a row are counted on the stack. */
#define MF_OVO_MAX_CLASSES 1024

/* ---- numpy's arithmetic ---------------------------------------------------------- */

static inline double
round_prec(mf_precision prec, double v)
{
    return prec == MF_F64 ? v : (double)(float)v;
}

/* numpy's pairwise summation of n contiguous values (np.sum along a row):
 * a plain loop below 8 values, eight accumulators up to 128, halves beyond.
 * Float32 and float16 rows add in float32, as numpy does. */
static double
pairwise_sum(const double *a, Py_ssize_t n, mf_precision prec)
{
    Py_ssize_t i, j;
    double res = 0.0, r[8];

    if (n < 8) {
        for (i = 0; i < n; i++) {
            res = round_prec(prec, res + a[i]);
        }
        return res;
    }
    if (n <= 128) {
        for (j = 0; j < 8; j++) {
            r[j] = a[j];
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (j = 0; j < 8; j++) {
                r[j] = round_prec(prec, r[j] + a[i + j]);
            }
        }
        res = round_prec(
            prec,
            round_prec(prec, round_prec(prec, r[0] + r[1]) + round_prec(prec, r[2] + r[3])) +
                round_prec(prec, round_prec(prec, r[4] + r[5]) + round_prec(prec, r[6] + r[7])));
        for (; i < n; i++) {
            res = round_prec(prec, res + a[i]);
        }
        return res;
    }
    i = n / 2;
    i -= i % 8;
    return round_prec(prec, pairwise_sum(a, i, prec) + pairwise_sum(a + i, n - i, prec));
}

/* numpy.interp(v, x, y) for sorted x of n >= 1 values (compiled_base.c's
 * arr_interp): the ends outside, the exact value at a knot, else the slope
 * times the distance to the left knot plus its value, and from the right
 * knot if that gives NaN. */
static double
interp(double v, const double *x, const double *y, Py_ssize_t n)
{
    Py_ssize_t lo = 0, hi = n, j;
    double slope, res;

    if (isnan(v)) {
        return v;
    }
    if (n == 1 || v > x[n - 1]) {
        return y[n - 1];
    }
    if (v < x[0]) {
        return y[0];
    }
    while (lo < hi) {            /* the last knot at or left of v */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v >= x[mid]) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    j = lo - 1;
    if (j == n - 1 || x[j] == v) {
        return y[j];
    }
    slope = (y[j + 1] - y[j]) / (x[j + 1] - x[j]);
    res = slope * (v - x[j]) + y[j];
    if (isnan(res)) {
        res = slope * (v - x[j + 1]) + y[j + 1];
        if (isnan(res) && y[j] == y[j + 1]) {
            res = y[j];
        }
    }
    return res;
}

/* IEEE half precision, to and from the bits numpy's float16 loops read. */
static uint16_t
half_bits(double v)
{
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double a = fabs(mf_round_to(MF_F16, v));
    int e;

    if (isnan(v)) {
        return (uint16_t)(sign | 0x7e00);
    }
    if (isinf(a)) {
        return (uint16_t)(sign | 0x7c00);
    }
    if (a < 0x1p-14) {           /* zero and subnormals: multiples of 2**-24 */
        return (uint16_t)(sign | (uint16_t)(a * 0x1p24));
    }
    frexp(a, &e);                /* a = m * 2**e, m in [0.5, 1) */
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) |
                      (uint16_t)((ldexp(a, 1 - e) - 1.0) * 1024.0));
}

static double
half_value(uint16_t h)
{
    int exponent = (h >> 10) & 0x1f;
    double mantissa = (double)(h & 0x3ff), v;

    if (exponent == 0) {
        v = ldexp(mantissa, -24);
    }
    else if (exponent == 31) {
        v = mantissa != 0.0 ? NAN : INFINITY;
    }
    else {
        v = ldexp(1.0 + mantissa / 1024.0, exponent - 15);
    }
    return (h & 0x8000) ? -v : v;
}

/* ---- numpy's loops ------------------------------------------------------------ */

static void
call_loop(const mf_ufunc_loop *loop, const void *in, void *out, npy_intp count, npy_intp size)
{
    char *args[2] = {(char *)in, (char *)out};
    npy_intp dims[1] = {count};
    npy_intp steps[2] = {size, size};
    loop->fn(args, dims, steps, loop->data);
}

/* The loop over doubles, floats (float32 values) or halves (float16
 * values): converted a chunk at a time, exactly, on the stack. */
static void
run_loop(const mf_ufunc_loop *d, const mf_ufunc_loop *f, const mf_ufunc_loop *e, const double *in,
         double *out, npy_intp count, mf_precision prec)
{
    float fin[MF_LOOP_CHUNK], fout[MF_LOOP_CHUNK];
    uint16_t hin[MF_LOOP_CHUNK], hout[MF_LOOP_CHUNK];
    npy_intp start, i, n;

    if (prec == MF_F64) {
        call_loop(d, in, out, count, sizeof(double));
        return;
    }
    for (start = 0; start < count; start += n) {
        n = count - start < MF_LOOP_CHUNK ? count - start : MF_LOOP_CHUNK;
        if (prec == MF_F32) {
            for (i = 0; i < n; i++) {
                fin[i] = (float)in[start + i];
            }
            call_loop(f, fin, fout, n, sizeof(float));
            for (i = 0; i < n; i++) {
                out[start + i] = (double)fout[i];
            }
        }
        else {
            for (i = 0; i < n; i++) {
                hin[i] = half_bits(in[start + i]);
            }
            call_loop(e, hin, hout, n, sizeof(uint16_t));
            for (i = 0; i < n; i++) {
                out[start + i] = half_value(hout[i]);
            }
        }
    }
}

/* numpy.<name>, a ufunc of one argument, kept alive in owners. */
static PyUFuncObject *
get_ufunc(const char *name, PyObject *owners)
{
    PyObject *numpy = NULL, *obj = NULL;
    PyUFuncObject *result = NULL;

    numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL) {
        goto done;
    }
    obj = PyObject_GetAttrString(numpy, name);
    if (obj == NULL) {
        goto done;
    }
    if (strcmp(Py_TYPE(obj)->tp_name, "numpy.ufunc") != 0 || ((PyUFuncObject *)obj)->nin != 1 ||
        ((PyUFuncObject *)obj)->nout != 1) {
        PyErr_Format(PyExc_ValueError, "numpy.%s is not a ufunc of one argument", name);
        goto done;
    }
    if (PyList_Append(owners, obj) < 0) {
        goto done;
    }
    result = (PyUFuncObject *)obj;
done:
    Py_XDECREF(numpy);
    Py_XDECREF(obj);
    return result;
}

/* The loop of uf from type to the same type. */
static int
find_loop(PyUFuncObject *uf, int type, mf_ufunc_loop *loop)
{
    int i;
    for (i = 0; i < uf->ntypes; i++) {
        if (uf->types[2 * i] == type && uf->types[2 * i + 1] == type && uf->functions[i] != NULL) {
            loop->fn =
                (void (*)(char **, const npy_intp *, const npy_intp *, void *))uf->functions[i];
            loop->data = uf->data[i];
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "numpy.%s has no loop for type %d", uf->name, type);
    return -1;
}

int
mf_numpy_loop(const char *name, int type, mf_ufunc_loop *loop, PyObject *owners)
{
    PyUFuncObject *uf = get_ufunc(name, owners);
    return uf == NULL ? -1 : find_loop(uf, type, loop);
}

/* numpy's choice of loop for each input type from bool to float16: the
 * first whose input the type casts to safely (the legacy type resolution
 * of numpy's unary math ufuncs). */
static void
resolve_types(PyUFuncObject *uf, signed char *in_types, signed char *out_types)
{
    int t, i;
    for (t = 0; t < MF_UFUNC_TYPES; t++) {
        in_types[t] = out_types[t] = -1;
        if (t > NPY_DOUBLE && t != NPY_HALF) {
            continue;
        }
        for (i = 0; i < uf->ntypes; i++) {
            int loop_in = uf->types[2 * i], loop_out = uf->types[2 * i + 1];
            if (loop_in < MF_UFUNC_TYPES && loop_out < MF_UFUNC_TYPES &&
                PyArray_CanCastSafely(t, loop_in)) {
                in_types[t] = (signed char)loop_in;
                out_types[t] = (signed char)loop_out;
                break;
            }
        }
    }
}

static int
function_code_fits(const char *op, Py_ssize_t code)
{
    if (code < 1 || code > N_FUNCTIONS) {
        PyErr_Format(PyExc_ValueError, "%s: unknown function code %zd", op, code);
        return -1;
    }
    return 0;
}

PyObject *
mf_function_codes(void)
{
    PyObject *codes = PyDict_New();
    Py_ssize_t i;

    for (i = 0; codes != NULL && i < N_FUNCTIONS; i++) {
        PyObject *code = PyLong_FromSsize_t(i + 1);
        if (code == NULL || PyDict_SetItemString(codes, function_names[i], code) < 0) {
            Py_CLEAR(codes);
        }
        Py_XDECREF(code);
    }
    return codes;
}

/* ---- calibrate ----------------------------------------------------------------- */

/* _SigmoidCalibration.predict: expit(-(a * s + b)), scipy's expit being
 * 1 / (1 + exp(-x)) with libm's exp. */
static inline double
sigmoid(double a, double b, double s)
{
    double t = a * s + b;
    return 1.0 / (1.0 + exp(t));
}

/* IsotonicRegression.predict with out_of_bounds='clip': np.clip, then
 * interp1d, which is np.interp for float64 thresholds. */
static double
isotonic(const mf_calibrate *cal, Py_ssize_t c, double s)
{
    int64_t start = cal->offsets[c];
    double lo = cal->lo[c], hi = cal->hi[c];

    /* np.clip: max with the low bound, then min with the high, NaN kept */
    if (!isnan(s)) {
        s = s > lo ? s : lo;
        s = s < hi ? s : hi;
    }
    return interp(s, cal->x + start, cal->y + start, cal->offsets[c + 1] - start);
}

/* _TemperatureScaling.predict: softmax(beta * logits), the logits of
 * probabilities being log(p + 1e-12) (_convert_to_logits); softmax as
 * sklearn.utils.extmath's: minus the row's max, np.exp, over the row's sum. */
static void
temperature_block(const mf_calibrate *cal, const double *in, Py_ssize_t n_in, double *out,
                  Py_ssize_t n_rows)
{
    Py_ssize_t k = cal->n_classes, r, j;

    for (r = 0; r < n_rows; r++) {
        const double *s = in + r * n_in;
        double *z = out + r * k;
        if (n_in == 1) {
            z[0] = cal->from_proba ? 1.0 - s[0] : -s[0];
            z[1] = s[0];
        }
        else {
            memcpy(z, s, (size_t)k * sizeof(double));
        }
    }
    if (cal->from_proba) {
        for (j = 0; j < n_rows * k; j++) {
            out[j] = out[j] + 1e-12;
        }
        call_loop(&cal->log, out, out, n_rows * k, sizeof(double));
    }
    for (r = 0; r < n_rows; r++) {
        double *z = out + r * k, max;
        for (j = 0; j < k; j++) {
            z[j] = cal->beta * z[j];
        }
        max = z[0];
        for (j = 1; j < k && !isnan(max); j++) {
            max = (z[j] > max || isnan(z[j])) ? z[j] : max;
        }
        for (j = 0; j < k; j++) {
            z[j] = z[j] - max;
        }
    }
    call_loop(&cal->exp, out, out, n_rows * k, sizeof(double));
    for (r = 0; r < n_rows; r++) {
        double *z = out + r * k, sum = pairwise_sum(z, k, MF_F64);
        for (j = 0; j < k; j++) {
            z[j] = z[j] / sum;
        }
    }
}

static void
calibrate_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
              Py_ssize_t n_rows, mf_precision prec)
{
    const mf_calibrate *cal = op;
    Py_ssize_t k = cal->n_classes, r, c, j;

    if (cal->rule == MF_CAL_TEMPERATURE) {
        temperature_block(cal, in, n_in, out, n_rows);
    }
    else {
        for (r = 0; r < n_rows; r++) {
            const double *s = in + r * n_in;
            double *p = out + r * k;
            for (j = 0; j < k; j++) {
                p[j] = 0.0;
            }
            for (c = 0; c < n_in; c++) {
                p[cal->columns[c]] = cal->rule == MF_CAL_SIGMOID
                                         ? sigmoid(cal->a[c], cal->b[c], s[c])
                                         : isotonic(cal, c, s[c]);
            }
            if (k == 2) {
                p[0] = 1.0 - p[1];
            }
            else {
                /* np.divide(proba, sum, out=uniform, where=sum != 0) */
                double sum = pairwise_sum(p, k, MF_F64);
                for (j = 0; j < k; j++) {
                    p[j] = sum != 0.0 ? p[j] / sum : 1.0 / (double)k;
                }
            }
        }
    }
    /* probabilities that minimally exceed 1.0 */
    for (j = 0; j < n_rows * k; j++) {
        if (1.0 < out[j] && out[j] <= 1.0 + 1e-5) {
            out[j] = 1.0;
        }
    }
}

static int
vector_fits(const char *what, const void *data, Py_ssize_t n, Py_ssize_t want)
{
    if (data == NULL || n != want) {
        PyErr_Format(PyExc_ValueError, "%s must hold %zd items", what, want);
        return -1;
    }
    return 0;
}

/* offsets[0] = 0, non-decreasing, offsets[n] = total, each part at least
 * min_width long. */
static int
offsets_fit(const char *what, const int64_t *offsets, Py_ssize_t n_offsets, Py_ssize_t n,
            Py_ssize_t total, Py_ssize_t min_width)
{
    Py_ssize_t i;
    if (offsets == NULL || n_offsets != n + 1 || offsets[0] != 0 || offsets[n] != total) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd bounds from 0 to %zd", what, n + 1, total);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (offsets[i + 1] > total || offsets[i + 1] < offsets[i] + min_width) {
            PyErr_Format(PyExc_ValueError, "%s must rise by at least %zd", what, min_width);
            return -1;
        }
    }
    return 0;
}

static int
calibrate_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_calibrate *cal = op;
    Py_ssize_t c, i, k = cal->n_classes;

    if (cal->rule < MF_CAL_SIGMOID || cal->rule > MF_CAL_TEMPERATURE || k < 2) {
        PyErr_Format(PyExc_ValueError, "calibrate: rule %zd for %zd classes", cal->rule, k);
        return -1;
    }
    if (cal->rule == MF_CAL_TEMPERATURE) {
        PyUFuncObject *uf_exp, *uf_log;
        if (n_in != k && !(n_in == 1 && k == 2)) {
            PyErr_Format(PyExc_ValueError,
                         "calibrate: temperature scaling of %zd columns "
                         "into %zd classes",
                         n_in, k);
            return -1;
        }
        uf_exp = get_ufunc("exp", owners);
        uf_log = uf_exp != NULL ? get_ufunc("log", owners) : NULL;
        if (uf_log == NULL || find_loop(uf_exp, NPY_DOUBLE, &cal->exp) < 0 ||
            find_loop(uf_log, NPY_DOUBLE, &cal->log) < 0) {
            return -1;
        }
        *n_out = k;
        return 0;
    }
    if (vector_fits("calibrate.columns", cal->columns, cal->n_columns, n_in) < 0) {
        return -1;
    }
    for (c = 0; c < n_in; c++) {
        if (cal->columns[c] < 0 || cal->columns[c] >= k) {
            PyErr_Format(PyExc_ValueError, "calibrate.columns[%zd] is outside 0..%zd", c, k - 1);
            return -1;
        }
    }
    if (cal->rule == MF_CAL_SIGMOID) {
        if (vector_fits("calibrate.a", cal->a, cal->n_a, n_in) < 0 ||
            vector_fits("calibrate.b", cal->b, cal->n_b, n_in) < 0) {
            return -1;
        }
    }
    else {
        if (cal->x == NULL || cal->y == NULL || cal->n_y != cal->n_x ||
            offsets_fit("calibrate.offsets", cal->offsets, cal->n_offsets, n_in, cal->n_x, 1) < 0 ||
            vector_fits("calibrate.lo", cal->lo, cal->n_lo, n_in) < 0 ||
            vector_fits("calibrate.hi", cal->hi, cal->n_hi, n_in) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "calibrate: x and y must be as long");
            }
            return -1;
        }
        /* np.interp's search needs each calibrator's thresholds in order */
        for (c = 0; c < n_in; c++) {
            for (i = cal->offsets[c] + 1; i < cal->offsets[c + 1]; i++) {
                if (!(cal->x[i - 1] <= cal->x[i])) {
                    PyErr_Format(PyExc_ValueError,
                                 "calibrate.x of calibrator %zd is not "
                                 "sorted",
                                 c);
                    return -1;
                }
            }
        }
    }
    *n_out = k;
    return 0;
}

static int
double_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

static const mf_field calibrate_fields[] = {
    MF_SCALAR_FIELD(mf_calibrate, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_calibrate, n_classes, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_calibrate, columns, NPY_INT64, MF_FIELD_OPTIONAL, n_columns),
    MF_VECTOR_FIELD(mf_calibrate, a, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_a),
    MF_VECTOR_FIELD(mf_calibrate, b, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_b),
    MF_VECTOR_FIELD(mf_calibrate, x, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_x),
    MF_VECTOR_FIELD(mf_calibrate, y, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_y),
    MF_VECTOR_FIELD(mf_calibrate, offsets, NPY_INT64, MF_FIELD_OPTIONAL, n_offsets),
    MF_VECTOR_FIELD(mf_calibrate, lo, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_lo),
    MF_VECTOR_FIELD(mf_calibrate, hi, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_hi),
    MF_SCALAR_FIELD(mf_calibrate, beta, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_calibrate, from_proba, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_calibrate = {
    .name = "calibrate",
    .size = sizeof(mf_calibrate),
    .fields = calibrate_fields,
    .prepare = calibrate_prepare,
    .run = calibrate_run,
    .out_type = double_out_type,
};

/* ---- normalize ----------------------------------------------------------------- */

/* OneVsRestClassifier.predict_proba: the positive-class probabilities of
 * the estimators ([1 - p, p] for one), each row over its sum, in the
 * precision of those probabilities. */
static void
normalize_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
              Py_ssize_t n_rows, mf_precision prec)
{
    const mf_normalize *nm = op;
    Py_ssize_t r, j;

    for (r = 0; r < n_rows; r++) {
        double *p = out + r * n_out, sum;
        if (nm->complement) {
            p[0] = mf_round_to(prec, 1.0 - in[r]);
            p[1] = in[r];
        }
        else {
            memcpy(p, in + r * n_in, (size_t)n_out * sizeof(double));
        }
        sum = mf_round_to(prec, pairwise_sum(p, n_out, prec));
        if (nm->rule == MF_NORM_ZERO_NAN || sum != 0.0) {
            for (j = 0; j < n_out; j++) {
                p[j] = mf_round_to(prec, p[j] / sum);
            }
        }
    }
}

static int
normalize_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_normalize *nm = op;
    if (nm->rule < MF_NORM_ZERO_KEEPS || nm->rule > MF_NORM_ZERO_NAN ||
        (nm->complement && n_in != 1)) {
        PyErr_Format(PyExc_ValueError, "normalize: rule %zd does not read %zd columns", nm->rule,
                     n_in);
        return -1;
    }
    *n_out = nm->complement ? 2 : n_in;
    return 0;
}

static const mf_field normalize_fields[] = {
    MF_SCALAR_FIELD(mf_normalize, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_normalize, complement, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_normalize = {
    .name = "normalize",
    .size = sizeof(mf_normalize),
    .fields = normalize_fields,
    .prepare = normalize_prepare,
    .run = normalize_run,
};

/* ---- ovr_argmax ---------------------------------------------------------------- */

/* OneVsRestClassifier.predict, multiclass:
 *     maxima = -inf; for i, e in (reversed) enumerate(estimators_):
 *         np.maximum(maxima, pred_i, out=maxima); argmaxima[maxima == pred_i] = i */
static void
ovr_argmax_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
               Py_ssize_t n_rows, mf_precision prec)
{
    const mf_ovr_argmax *oa = op;
    Py_ssize_t r, t;

    for (r = 0; r < n_rows; r++) {
        const double *s = in + r * n_in;
        double *y = out + r * n_in, maxima = -INFINITY;
        Py_ssize_t arg = 0;
        for (t = 0; t < n_in; t++) {
            Py_ssize_t i = oa->reverse ? n_in - 1 - t : t;
            double pred = s[i];
            maxima = (isnan(maxima) || isnan(pred)) ? NAN : (pred > maxima ? pred : maxima);
            if (maxima == pred) {
                arg = i;
            }
        }
        for (t = 0; t < n_in; t++) {
            y[t] = 0.0;
        }
        y[arg] = 1.0;
    }
}

static int
ovr_argmax_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    *n_out = n_in;
    return 0;
}

static const mf_field ovr_argmax_fields[] = {
    MF_SCALAR_FIELD(mf_ovr_argmax, reverse, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_ovr_argmax = {
    .name = "ovr_argmax",
    .size = sizeof(mf_ovr_argmax),
    .fields = ovr_argmax_fields,
    .prepare = ovr_argmax_prepare,
    .run = ovr_argmax_run,
    .out_type = double_out_type,
};

/* ---- ovo_votes ----------------------------------------------------------------- */

/* sklearn.utils.multiclass._ovr_decision_function: votes plus the summed
 * confidences mapped into (-1/3, 1/3), each class's sum taken in pair
 * order. */
static void
ovo_votes_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
              Py_ssize_t n_rows, mf_precision prec)
{
    const mf_ovo_votes *ov = op;
    Py_ssize_t k = ov->n_classes, n_pairs = n_in / 2, r, i, j, p;

    for (r = 0; r < n_rows; r++) {
        const double *pred = in + r * n_in, *conf = pred + n_pairs;
        double *y = out + r * k;
        double *sums = y;        /* the sums first, the votes added at the end */
        double votes[MF_OVO_MAX_CLASSES];
        for (i = 0; i < k; i++) {
            sums[i] = 0.0;
            votes[i] = 0.0;
        }
        p = 0;
        for (i = 0; i < k; i++) {
            for (j = i + 1; j < k; j++, p++) {
                sums[i] -= conf[p];
                sums[j] += conf[p];
                if (pred[p] == 0.0) {
                    votes[i] += 1.0;
                }
                else if (pred[p] == 1.0) {
                    votes[j] += 1.0;
                }
            }
        }
        for (i = 0; i < k; i++) {
            y[i] = votes[i] + sums[i] / (3.0 * (fabs(sums[i]) + 1.0));
        }
    }
}

static int
ovo_votes_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_ovo_votes *ov = op;
    Py_ssize_t k = ov->n_classes;
    if (k < 2 || k > MF_OVO_MAX_CLASSES || n_in != k * (k - 1)) {
        PyErr_Format(PyExc_ValueError, "ovo_votes: %zd columns for %zd classes (2 to %d)", n_in, k,
                     MF_OVO_MAX_CLASSES);
        return -1;
    }
    *n_out = k;
    return 0;
}

static const mf_field ovo_votes_fields[] = {
    MF_SCALAR_FIELD(mf_ovo_votes, n_classes, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_ovo_votes = {
    .name = "ovo_votes",
    .size = sizeof(mf_ovo_votes),
    .fields = ovo_votes_fields,
    .prepare = ovo_votes_prepare,
    .run = ovo_votes_run,
    .out_type = double_out_type,
};

/* ---- ecoc ---------------------------------------------------------------------- */

/* OutputCodeClassifier.predict's distances: ||x||^2 + (-2 x.c) + ||c||^2
 * with the product from dgemm and ||x||^2 from ddot, as ArgKmin computes
 * them (euclidean_distances before 1.3: the same sum, clipped at 0 and
 * square-rooted); negated, so that labels' first maximum is the first
 * minimum. */
static void
ecoc_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
         Py_ssize_t n_rows, mf_precision prec)
{
    const mf_ecoc *ec = op;
    Py_ssize_t r, j;

    scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_rows, (int)n_out, (int)n_in,
                      -2.0, in, (int)n_in, ec->code_book, (int)n_in, 0.0, out, (int)n_out);
    for (r = 0; r < n_rows; r++) {
        double xx = scipy_cblas_ddot((int)n_in, in + r * n_in, 1, in + r * n_in, 1);
        for (j = 0; j < n_out; j++) {
            double d = (xx + out[r * n_out + j]) + ec->code_norms[j];
            if (ec->rule == MF_ECOC_SQRT) {
                d = sqrt(d < 0.0 ? 0.0 : d);      /* np.maximum(d, 0) keeps NaN */
            }
            out[r * n_out + j] = -d;
        }
    }
}

static int
ecoc_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_ecoc *ec = op;
    if (ec->rule < MF_ECOC_SQUARED || ec->rule > MF_ECOC_SQRT || ec->n_codes < 1 ||
        ec->n_bits != n_in || ec->n_codes >= INT32_MAX || n_in >= INT32_MAX ||
        ec->n_code_norms != ec->n_codes) {
        PyErr_Format(PyExc_ValueError,
                     "ecoc: rule %zd, code book (%zd, %zd) and %zd norms "
                     "for %zd columns",
                     ec->rule, ec->n_codes, ec->n_bits, ec->n_code_norms, n_in);
        return -1;
    }
    *n_out = ec->n_codes;
    return 0;
}

static void
ecoc_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_in * (double)(n_out + 1);
    *steps = 0.0;
}

static const mf_field ecoc_fields[] = {
    MF_SCALAR_FIELD(mf_ecoc, rule, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_ecoc, code_book, NPY_DOUBLE, 0, n_codes, n_bits),
    MF_VECTOR_FIELD(mf_ecoc, code_norms, NPY_DOUBLE, 0, n_code_norms),
    MF_END_FIELDS,
};

const mf_op_def mf_op_ecoc = {
    .name = "ecoc",
    .size = sizeof(mf_ecoc),
    .fields = ecoc_fields,
    .prepare = ecoc_prepare,
    .run = ecoc_run,
    .out_type = double_out_type,
    .cost = ecoc_cost,
};

/* ---- cast ---------------------------------------------------------------------- */

static void
cast_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
         Py_ssize_t n_rows, mf_precision prec)
{
    memcpy(out, in, (size_t)(n_rows * n_in) * sizeof(double));
}

static int
cast_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_cast *ca = op;
    signed char out_types[MF_UFUNC_TYPES];
    PyUFuncObject *uf;

    memset(ca->in_types, -1, sizeof(ca->in_types));
    if (ca->rule < MF_CAST_FLOAT64 || ca->rule > MF_CAST_UFUNC) {
        PyErr_Format(PyExc_ValueError, "cast: unknown rule %zd", ca->rule);
        return -1;
    }
    if (ca->rule == MF_CAST_UFUNC) {
        if (function_code_fits("cast", ca->code) < 0) {
            return -1;
        }
        uf = get_ufunc(function_names[ca->code - 1], owners);
        if (uf == NULL) {
            return -1;
        }
        resolve_types(uf, ca->in_types, out_types);
    }
    *n_out = n_in;
    return 0;
}

static int
cast_out_type(const void *op, int in_type)
{
    const mf_cast *ca = op;
    if (ca->rule == MF_CAST_FLOAT64) {
        return NPY_DOUBLE;
    }
    if (in_type >= 0 && in_type < MF_UFUNC_TYPES && ca->in_types[in_type] >= 0) {
        return ca->in_types[in_type];
    }
    return in_type;
}

static const mf_field cast_fields[] = {
    MF_SCALAR_FIELD(mf_cast, rule, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_cast, code, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_cast = {
    .name = "cast",
    .size = sizeof(mf_cast),
    .fields = cast_fields,
    .prepare = cast_prepare,
    .run = cast_run,
    .out_type = cast_out_type,
};

/* ---- function ------------------------------------------------------------------ */

/* Integer input reaches a function only where numpy has an integer loop
 * (absolute, sign, ...): the float64 loop gives the same integers, which
 * the returned type keeps. */
static void
function_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_function *fn = op;
    run_loop(&fn->loop_d, &fn->loop_f, &fn->loop_e, in, out, n_rows * n_in, prec);
}

static int
function_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_function *fn = op;
    signed char in_types[MF_UFUNC_TYPES];
    PyUFuncObject *uf;

    if (function_code_fits("function", fn->code) < 0) {
        return -1;
    }
    uf = get_ufunc(function_names[fn->code - 1], owners);
    if (uf == NULL || find_loop(uf, NPY_DOUBLE, &fn->loop_d) < 0 ||
        find_loop(uf, NPY_FLOAT, &fn->loop_f) < 0 || find_loop(uf, NPY_HALF, &fn->loop_e) < 0) {
        return -1;
    }
    resolve_types(uf, in_types, fn->out_types);
    *n_out = n_in;
    return 0;
}

static int
function_out_type(const void *op, int in_type)
{
    const mf_function *fn = op;
    if (in_type >= 0 && in_type < MF_UFUNC_TYPES && fn->out_types[in_type] >= 0) {
        return fn->out_types[in_type];
    }
    return NPY_DOUBLE;
}

static const mf_field function_fields[] = {
    MF_SCALAR_FIELD(mf_function, code, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_function = {
    .name = "function",
    .size = sizeof(mf_function),
    .fields = function_fields,
    .prepare = function_prepare,
    .run = function_run,
    .out_type = function_out_type,
};
