/*
 * ensemble.c -- what ensembles do with their members' answers: average them
 * (voting), count votes, look labels up, bag, boost (SAMME and SAMME.R), take
 * a weighted median, one-hot a forest's leaves, and the constant answers of
 * the Dummy estimators.
 *
 * Each kernel follows the numpy expression scikit-learn evaluates, operation
 * by operation: the same additions in the same order (numpy's pairwise sum
 * where numpy reduces a contiguous axis, one member after the other where it
 * adds whole arrays), from the same starting value, so the doubles come out
 * the same.
 */
#include "mlfast.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- numpy's arithmetic ----------------------------------------------------- */

/* numpy's pairwise summation (the inner loop of np.add.reduce over a
 * contiguous axis): below 8 values one after the other from -0.0, up to 128
 * with eight accumulators, above that split in two. */
static double
pairwise_sum(const double *a, Py_ssize_t n)
{
    if (n < 8) {
        double res = -0.0;
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        Py_ssize_t i;
        int j;
        for (j = 0; j < 8; j++) {
            r[j] = a[j];
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (j = 0; j < 8; j++) {
                r[j] += a[i + j];
            }
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    {
        Py_ssize_t n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
    }
}

/* np.add.reduce over a contiguous axis: the identity 0.0, plus the
 * pairwise sum. */
static double
reduce_sum(const double *a, Py_ssize_t n)
{
    return 0.0 + pairwise_sum(a, n);
}

/* npy_logaddexp */
static double
logaddexp(double x, double y)
{
    double tmp;
    if (x == y) {
        /* infinities of the same sign */
        return x + M_LN2;
    }
    tmp = x - y;
    if (tmp > 0) {
        return x + log1p(exp(-tmp));
    }
    if (tmp <= 0) {
        return y + log1p(exp(tmp));
    }
    return tmp;   /* NaN */
}

/* A class index read from a row: -1 unless it is an integer in [0, n). */
static inline Py_ssize_t
class_index(double v, Py_ssize_t n)
{
    if (!(v >= 0.0 && v < (double)n)) {
        return -1;
    }
    return (Py_ssize_t)v;
}

/* ---- checks shared by the prepare functions ------------------------------------ */

static int
require(int ok, const char *op, const char *what)
{
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s: %s", op, what);
        return -1;
    }
    return 0;
}

/* offsets[0] == 0, non-decreasing, ending at `total`, n + 1 of them. */
static int
offsets_fit(const char *op, const int64_t *offsets, Py_ssize_t n_offsets, Py_ssize_t n,
            Py_ssize_t total)
{
    Py_ssize_t i;
    if (offsets == NULL || n_offsets != n + 1 || offsets[0] != 0 || offsets[n] != total) {
        PyErr_Format(PyExc_ValueError, "%s: offsets must be %zd bounds from 0 to %zd", op, n + 1,
                     total);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (offsets[i + 1] < offsets[i]) {
            PyErr_Format(PyExc_ValueError, "%s: offsets must not decrease", op);
            return -1;
        }
    }
    return 0;
}

/* Every class map entry in [0, n_classes). */
static int
map_fits(const char *op, const int64_t *map, Py_ssize_t n_map, Py_ssize_t n_classes)
{
    Py_ssize_t i;
    for (i = 0; i < n_map; i++) {
        if (map[i] < 0 || map[i] >= n_classes) {
            PyErr_Format(PyExc_ValueError,
                         "%s: class map entry %zd is %lld, outside "
                         "[0, %zd)",
                         op, i, (long long)map[i], n_classes);
            return -1;
        }
    }
    return 0;
}

static int
no_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
         mf_err_kind *err)
{
    return 0;
}

static int
double_out(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

/* ---- average ------------------------------------------------------------------ */

static void
average_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t k,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_average *av = op;
    Py_ssize_t r, c, m;
    /* weighted: np.multiply(a, w, dtype=float64), so float64 throughout */
    mf_precision p = av->weighted ? MF_F64 : prec;

    for (r = 0; r < n_rows; r++) {
        const double *row = in + r * n_in;
        for (c = 0; c < k; c++) {
            double s = 0.0;
            for (m = 0; m < av->n_members; m++) {
                double v = row[m * k + c];
                if (av->weighted) {
                    v = v * av->weights[m];
                }
                s = mf_round_to(p, s + v);
            }
            out[r * k + c] = mf_round_to(p, s / av->scale);
        }
    }
}

static int
average_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_average *av = op;
    if (require(av->n_members >= 1 && n_in % av->n_members == 0, "average",
                "the input must be one block of equal width per member") < 0 ||
        require(av->scale != 0.0, "average", "the weights must not add up to 0") < 0) {
        return -1;
    }
    *n_out = n_in / av->n_members;
    return 0;
}

static int
average_out_type(const void *op, int in_type)
{
    const mf_average *av = op;
    if (av->weighted) {
        return NPY_DOUBLE;
    }
    return in_type == NPY_HALF || in_type == NPY_FLOAT ? in_type : NPY_DOUBLE;
}

static const mf_field average_fields[] = {
    MF_VECTOR_FIELD(mf_average, weights, NPY_DOUBLE, 0, n_members),
    MF_SCALAR_FIELD(mf_average, scale, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_average, weighted, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_average = {
    .name = "average",
    .size = sizeof(mf_average),
    .fields = average_fields,
    .prepare = average_prepare,
    .run = average_run,
    .out_type = average_out_type,
    .check = no_check,
};

/* ---- vote ---------------------------------------------------------------------- */

static void
vote_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t k,
         Py_ssize_t n_rows, mf_precision prec)
{
    const mf_vote *vo = op;
    Py_ssize_t r, m, c;

    for (r = 0; r < n_rows; r++) {
        const double *row = in + r * n_in;
        double *totals = out + r * k;
        Py_ssize_t highest = -1;
        for (c = 0; c < k; c++) {
            totals[c] = 0.0;
        }
        for (m = 0; m < n_in; m++) {
            Py_ssize_t lo = (Py_ssize_t)vo->map_offsets[m];
            Py_ssize_t i = class_index(row[m], (Py_ssize_t)vo->map_offsets[m + 1] - lo);
            if (i < 0) {
                continue;
            }
            c = (Py_ssize_t)vo->class_map[lo + i];
            totals[c] += vo->weights != NULL ? vo->weights[m] : 1.0;
            if (c > highest) {
                highest = c;
            }
        }
        for (c = highest + 1; c < k; c++) {
            totals[c] = -INFINITY;
        }
    }
}

static int
vote_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_vote *vo = op;
    if (require(vo->n_classes >= 1, "vote", "n_classes must be positive") < 0 ||
        require(vo->weights == NULL || vo->n_weights == n_in, "vote",
                "weights must hold one weight per member") < 0 ||
        offsets_fit("vote", vo->map_offsets, vo->n_map_offsets, n_in, vo->n_class_map) < 0 ||
        map_fits("vote", vo->class_map, vo->n_class_map, vo->n_classes) < 0) {
        return -1;
    }
    *n_out = vo->n_classes;
    return 0;
}

static const mf_field vote_fields[] = {
    MF_SCALAR_FIELD(mf_vote, n_classes, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_vote, weights, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_weights),
    MF_VECTOR_FIELD(mf_vote, class_map, NPY_INT64, 0, n_class_map),
    MF_VECTOR_FIELD(mf_vote, map_offsets, NPY_INT64, 0, n_map_offsets),
    MF_END_FIELDS,
};

const mf_op_def mf_op_vote = {
    .name = "vote",
    .size = sizeof(mf_vote),
    .fields = vote_fields,
    .prepare = vote_prepare,
    .run = vote_run,
    .out_type = double_out,
    .check = no_check,
};

/* ---- take ---------------------------------------------------------------------- */

static void
take_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
         Py_ssize_t n_rows, mf_precision prec)
{
    const mf_take *tk = op;
    Py_ssize_t r, j;
    for (r = 0; r < n_rows; r++) {
        for (j = 0; j < n_in; j++) {
            Py_ssize_t lo = (Py_ssize_t)tk->offsets[j];
            Py_ssize_t i = class_index(in[r * n_in + j], (Py_ssize_t)tk->offsets[j + 1] - lo);
            out[r * n_out + j] = i < 0 ? NAN : tk->table[lo + i];
        }
    }
}

static int
take_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_take *tk = op;
    if (offsets_fit("take", tk->offsets, tk->n_offsets, n_in, tk->n_table) < 0) {
        return -1;
    }
    *n_out = n_in;
    return 0;
}

static int
take_out_type(const void *op, int in_type)
{
    const mf_take *tk = op;
    return tk->int_out ? NPY_INT64 : NPY_DOUBLE;
}

static const mf_field take_fields[] = {
    MF_VECTOR_FIELD(mf_take, table, NPY_DOUBLE, 0, n_table),
    MF_VECTOR_FIELD(mf_take, offsets, NPY_INT64, 0, n_offsets),
    MF_SCALAR_FIELD(mf_take, int_out, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_take = {
    .name = "take",
    .size = sizeof(mf_take),
    .fields = take_fields,
    .prepare = take_prepare,
    .run = take_run,
    .out_type = take_out_type,
    .check = no_check,
};

/* ---- bag ----------------------------------------------------------------------- */

/* a chunk's sums sit on the stack */
#define MF_BAG_MAX_OUTPUTS 4096

/* Adds (or log-adds) member m's answer for one row into acc. */
static void
bag_member(const mf_bag *bg, Py_ssize_t m, const double *x, double *acc, mf_precision p)
{
    Py_ssize_t lo = (Py_ssize_t)bg->map_offsets[m];
    Py_ssize_t n_map = (Py_ssize_t)bg->map_offsets[m + 1] - lo, j;
    const int64_t *map = bg->class_map + lo;

    if (bg->votes[m]) {
        /* proba[i, predictions[i]] += 1 */
        Py_ssize_t i = class_index(x[0], n_map);
        if (i >= 0) {
            acc[map[i]] += 1.0;
        }
        return;
    }
    for (j = 0; j < bg->widths[m]; j++) {
        double *a = acc + map[j];
        *a = bg->log ? logaddexp(*a, x[j]) : mf_round_to(p, *a + x[j]);
    }
}

static void
bag_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t k,
        Py_ssize_t n_rows, mf_precision prec)
{
    const mf_bag *bg = op;
    mf_precision p = bg->keep_type ? prec : MF_F64;
    double start = bg->log ? -INFINITY : 0.0;
    Py_ssize_t r, c, m, ch, n_chunks = bg->n_chunk_starts - 1;
    double acc[MF_BAG_MAX_OUTPUTS];

    for (r = 0; r < n_rows; r++) {
        const double *row = in + r * n_in;
        double *o = out + r * k;
        Py_ssize_t col = 0;
        for (ch = 0; ch < n_chunks; ch++) {
            /* each chunk from np.zeros (or -inf), its members in order */
            for (c = 0; c < k; c++) {
                acc[c] = start;
            }
            for (m = (Py_ssize_t)bg->chunk_starts[ch]; m < bg->chunk_starts[ch + 1]; m++) {
                bag_member(bg, m, row + col, acc, p);
                col += bg->widths[m];
            }
            for (c = 0; c < k; c++) {
                if (bg->log) {
                    /* log_proba = all[0], then np.logaddexp with each */
                    o[c] = ch == 0 ? acc[c] : logaddexp(o[c], acc[c]);
                }
                else {
                    /* sum(all_proba): 0 + all[0] + all[1] ... */
                    o[c] = mf_round_to(p, (ch == 0 ? 0.0 : o[c]) + acc[c]);
                }
            }
        }
        for (c = 0; c < k; c++) {
            o[c] = bg->log ? o[c] - bg->log_offset : mf_round_to(p, o[c] / bg->divisor);
        }
    }
}

static int
bag_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_bag *bg = op;
    Py_ssize_t m, total = 0, n = bg->n_members;

    if (require(bg->n_outputs >= 1 && n >= 1, "bag", "no member or no output") < 0 ||
        require(bg->n_votes == n, "bag", "votes must hold one flag per member") < 0 ||
        require(bg->n_outputs <= MF_BAG_MAX_OUTPUTS, "bag", "at most 4096 outputs are served") <
            0 ||
        offsets_fit("bag", bg->map_offsets, bg->n_map_offsets, n, bg->n_class_map) < 0 ||
        offsets_fit("bag", bg->chunk_starts, bg->n_chunk_starts, bg->n_chunk_starts - 1, n) < 0 ||
        require(bg->n_chunk_starts >= 2, "bag", "at least one chunk") < 0 ||
        map_fits("bag", bg->class_map, bg->n_class_map, bg->n_outputs) < 0) {
        return -1;
    }
    for (m = 0; m < n; m++) {
        Py_ssize_t n_map = (Py_ssize_t)(bg->map_offsets[m + 1] - bg->map_offsets[m]);
        int ok = bg->votes[m] == 0 || bg->votes[m] == 1;
        ok = ok && (bg->votes[m] ? bg->widths[m] == 1 : bg->widths[m] == n_map);
        ok = ok && !(bg->votes[m] && bg->log);
        if (!ok || bg->widths[m] < 1 || bg->widths[m] > n_in - total) {
            PyErr_Format(PyExc_ValueError,
                         "bag: member %zd reads %lld columns, which do "
                         "not fit its class map or the input",
                         m, (long long)bg->widths[m]);
            return -1;
        }
        total += bg->widths[m];
    }
    if (require(total == n_in, "bag", "the members' widths must add up to the input") < 0 ||
        require(bg->divisor != 0.0, "bag", "the divisor must not be 0") < 0) {
        return -1;
    }
    *n_out = bg->n_outputs;
    return 0;
}

static int
bag_out_type(const void *op, int in_type)
{
    const mf_bag *bg = op;
    if (bg->keep_type && (in_type == NPY_HALF || in_type == NPY_FLOAT)) {
        return in_type;
    }
    return NPY_DOUBLE;
}

static const mf_field bag_fields[] = {
    MF_SCALAR_FIELD(mf_bag, n_outputs, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_bag, widths, NPY_INT64, 0, n_members),
    MF_VECTOR_FIELD(mf_bag, votes, NPY_INT64, 0, n_votes),
    MF_VECTOR_FIELD(mf_bag, class_map, NPY_INT64, 0, n_class_map),
    MF_VECTOR_FIELD(mf_bag, map_offsets, NPY_INT64, 0, n_map_offsets),
    MF_VECTOR_FIELD(mf_bag, chunk_starts, NPY_INT64, 0, n_chunk_starts),
    MF_SCALAR_FIELD(mf_bag, divisor, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_bag, log, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_bag, log_offset, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_bag, keep_type, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_bag = {
    .name = "bag",
    .size = sizeof(mf_bag),
    .fields = bag_fields,
    .prepare = bag_prepare,
    .run = bag_run,
    .out_type = bag_out_type,
    .check = no_check,
};

/* ---- samme --------------------------------------------------------------------- */

static void
samme_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
          Py_ssize_t n_rows, mf_precision prec)
{
    const mf_samme *sa = op;
    Py_ssize_t k = sa->n_classes, r, m, c;
    double pred[256], logp[256];

    for (r = 0; r < n_rows; r++) {
        const double *row = in + r * n_in;
        for (c = 0; c < k; c++) {
            pred[c] = 0.0;     /* sum() starts from 0 */
        }
        for (m = 0; m < sa->n_members; m++) {
            if (sa->real) {
                /* _samme_proba: clip, log, centre, scale */
                const double *p = row + m * k;
                double s;
                for (c = 0; c < k; c++) {
                    double v = p[c];
                    /* np.clip(proba, eps, None): NaN stays NaN */
                    v = v < sa->eps ? sa->eps : v;
                    logp[c] = log(v);
                }
                s = sa->inv_classes * reduce_sum(logp, k);
                for (c = 0; c < k; c++) {
                    pred[c] += (double)(k - 1) * (logp[c] - s);
                }
            }
            else {
                /* np.where(predict == classes, w, -1 / (k - 1) * w) */
                Py_ssize_t lo = (Py_ssize_t)sa->map_offsets[m];
                Py_ssize_t i = class_index(row[m], (Py_ssize_t)sa->map_offsets[m + 1] - lo);
                Py_ssize_t hit = i < 0 ? -1 : (Py_ssize_t)sa->class_map[lo + i];
                for (c = 0; c < k; c++) {
                    pred[c] += c == hit ? sa->weights[m] : sa->others[m];
                }
            }
        }
        for (c = 0; c < k; c++) {
            pred[c] /= sa->total;
        }
        if (k == 2) {
            /* pred[:, 0] *= -1; pred.sum(axis=1) */
            double two[2] = {pred[0] * -1.0, pred[1]};
            out[r] = reduce_sum(two, 2);
        }
        else {
            memcpy(out + r * k, pred, (size_t)k * sizeof(double));
        }
    }
}

static int
samme_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_samme *sa = op;
    Py_ssize_t m = sa->n_members, k = sa->n_classes;
    if (require(k >= 2 && k <= 256, "samme", "n_classes must be in [2, 256]") < 0 ||
        require(m >= 1, "samme", "no member") < 0) {
        return -1;
    }
    if (sa->real) {
        if (require(n_in == m * k, "samme", "SAMME.R reads n_classes columns a member") < 0) {
            return -1;
        }
    }
    else if (require(n_in == m && sa->n_others == m, "samme",
                     "SAMME reads one label column and two weights a member") < 0 ||
             offsets_fit("samme", sa->map_offsets, sa->n_map_offsets, m, sa->n_class_map) < 0 ||
             map_fits("samme", sa->class_map, sa->n_class_map, k) < 0) {
        return -1;
    }
    *n_out = k == 2 ? 1 : k;
    return 0;
}

static const mf_field samme_fields[] = {
    MF_SCALAR_FIELD(mf_samme, n_classes, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_samme, real, MF_FIELD_BOOL),
    MF_VECTOR_FIELD(mf_samme, weights, NPY_DOUBLE, 0, n_members),
    MF_VECTOR_FIELD(mf_samme, others, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_others),
    MF_VECTOR_FIELD(mf_samme, class_map, NPY_INT64, MF_FIELD_OPTIONAL, n_class_map),
    MF_VECTOR_FIELD(mf_samme, map_offsets, NPY_INT64, MF_FIELD_OPTIONAL, n_map_offsets),
    MF_SCALAR_FIELD(mf_samme, total, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_samme, inv_classes, MF_FIELD_FLOAT),
    MF_SCALAR_FIELD(mf_samme, eps, MF_FIELD_FLOAT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_samme = {
    .name = "samme",
    .size = sizeof(mf_samme),
    .fields = samme_fields,
    .prepare = samme_prepare,
    .run = samme_run,
    .out_type = double_out,
    .check = no_check,
};

/* ---- wmedian ------------------------------------------------------------------- */

typedef struct {
    double value;
    Py_ssize_t member;
} mf_ranked;

/* numpy's sort order (NaN last), ties in member order */
static int
ranked_cmp(const void *pa, const void *pb)
{
    const mf_ranked *a = pa, *b = pb;
    int a_nan = a->value != a->value, b_nan = b->value != b->value;
    if (a_nan != b_nan) {
        return a_nan - b_nan;
    }
    if (!a_nan && a->value != b->value) {
        return a->value < b->value ? -1 : 1;
    }
    return (a->member > b->member) - (a->member < b->member);
}

static void
wmedian_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
            Py_ssize_t n_rows, mf_precision prec)
{
    const mf_wmedian *wm = op;
    mf_ranked ranked[MF_WMEDIAN_MAX_MEMBERS];
    double cdf[MF_WMEDIAN_MAX_MEMBERS];
    Py_ssize_t r, m;

    for (r = 0; r < n_rows; r++) {
        const double *row = in + r * n_in;
        Py_ssize_t chosen = 0;
        double half;
        for (m = 0; m < n_in; m++) {
            ranked[m].value = row[m];
            ranked[m].member = m;
        }
        qsort(ranked, (size_t)n_in, sizeof(mf_ranked), ranked_cmp);
        /* stable_cumsum: np.cumsum, one after the other */
        for (m = 0; m < n_in; m++) {
            cdf[m] = (m == 0 ? 0.0 : cdf[m - 1]) + wm->weights[ranked[m].member];
        }
        half = 0.5 * cdf[n_in - 1];
        /* (cdf >= half).argmax(): the first, or 0 when none */
        for (m = 0; m < n_in; m++) {
            if (cdf[m] >= half) {
                chosen = m;
                break;
            }
        }
        out[r] = row[ranked[chosen].member];
    }
}

static int
wmedian_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_wmedian *wm = op;
    if (require(wm->n_weights == n_in, "wmedian", "weights must hold one weight per member") < 0 ||
        require(n_in <= MF_WMEDIAN_MAX_MEMBERS, "wmedian", "at most 4096 members are served") < 0) {
        return -1;
    }
    *n_out = 1;
    return 0;
}

static void
wmedian_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_in * (4.0 + log2((double)n_in + 1.0));
    *steps = 0.0;
}

static const mf_field wmedian_fields[] = {
    MF_VECTOR_FIELD(mf_wmedian, weights, NPY_DOUBLE, 0, n_weights),
    MF_END_FIELDS,
};

const mf_op_def mf_op_wmedian = {
    .name = "wmedian",
    .size = sizeof(mf_wmedian),
    .fields = wmedian_fields,
    .prepare = wmedian_prepare,
    .run = wmedian_run,
    .out_type = double_out,
    .check = no_check,
    .cost = wmedian_cost,
};

/* ---- onehot -------------------------------------------------------------------- */

static void
onehot_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    Py_ssize_t r, j;
    memset(out, 0, (size_t)(n_rows * n_out) * sizeof(double));
    for (r = 0; r < n_rows; r++) {
        for (j = 0; j < n_in; j++) {
            Py_ssize_t c = class_index(in[r * n_in + j], n_out);
            if (c >= 0) {
                out[r * n_out + c] = 1.0;
            }
        }
    }
}

static int
onehot_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_onehot *oh = op;
    if (require(oh->n_outputs >= 1, "onehot", "n_outputs must be positive") < 0) {
        return -1;
    }
    *n_out = oh->n_outputs;
    return 0;
}

static const mf_field onehot_fields[] = {
    MF_SCALAR_FIELD(mf_onehot, n_outputs, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_onehot = {
    .name = "onehot",
    .size = sizeof(mf_onehot),
    .fields = onehot_fields,
    .prepare = onehot_prepare,
    .run = onehot_run,
    .out_type = double_out,
    .check = no_check,
};

/* ---- constant ------------------------------------------------------------------ */

static void
constant_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
             Py_ssize_t n_rows, mf_precision prec)
{
    const mf_constant *co = op;
    Py_ssize_t r;
    for (r = 0; r < n_rows; r++) {
        memcpy(out + r * n_out, co->values, (size_t)n_out * sizeof(double));
    }
}

static int
constant_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_constant *co = op;
    if (require(co->n_values >= 1, "constant", "no value") < 0 ||
        require(co->out_kind >= 0 && co->out_kind <= 2, "constant",
                "out_kind must be 0 (float64), 1 (int64) or 2 (float32)") < 0) {
        return -1;
    }
    *n_out = co->n_values;
    return 0;
}

static int
constant_out_type(const void *op, int in_type)
{
    const mf_constant *co = op;
    return co->out_kind == 1 ? NPY_INT64 : co->out_kind == 2 ? NPY_FLOAT : NPY_DOUBLE;
}

static void
constant_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    *work = (double)n_out;
    *steps = 0.0;
}

static const mf_field constant_fields[] = {
    MF_VECTOR_FIELD(mf_constant, values, NPY_DOUBLE, 0, n_values),
    MF_SCALAR_FIELD(mf_constant, out_kind, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_constant = {
    .name = "constant",
    .size = sizeof(mf_constant),
    .fields = constant_fields,
    .prepare = constant_prepare,
    .run = constant_run,
    .out_type = constant_out_type,
    .check = no_check,
    .cost = constant_cost,
};

/* ---- check --------------------------------------------------------------------- */

static void
check_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
          Py_ssize_t n_rows, mf_precision prec)
{
    memcpy(out, in, (size_t)(n_rows * n_in) * sizeof(double));
}

static int
check_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    *n_out = n_in;
    return 0;
}

/* validate_data(dtype=None) keeps the input's type, integers included */
static int
check_out_type(const void *op, int in_type)
{
    return in_type;
}

static const mf_field check_fields[] = {
    MF_END_FIELDS,
};

const mf_op_def mf_op_check = {
    .name = "check",
    .size = sizeof(mf_check),
    .fields = check_fields,
    .prepare = check_prepare,
    .run = check_run,
    .out_type = check_out_type,
};
