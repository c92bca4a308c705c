/*
 * mlfast.h -- the one header shared by the C files of mlfast._core.
 *
 * It declares:
 *   - the exception objects and value types (Record, Global) of the
 *     restricted unpickler (unpickle.c, values.c);
 *   - the model IR: plain structs of arrays that the builders fill through
 *     the constructors in chain.c and that the kernels (transform.c,
 *     linear.c) only read;
 *   - RequestTally (tally.c), the serving metrics' counts.
 *
 * Every symbol that is not declared here is static in its own file.
 */
#ifndef MLFAST_H
#define MLFAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define PY_ARRAY_UNIQUE_SYMBOL MLFAST_ARRAY_API
#ifndef MLFAST_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <stdint.h>

/* ---- exceptions (module.c) ------------------------------------------ */

extern PyObject *mf_MlfastError;          /* ValueError subclass, the root */
extern PyObject *mf_ModelFormatError;     /* corrupt, truncated, not a pickle */
extern PyObject *mf_UnsafeModelError;     /* forbidden global or opcode */
extern PyObject *mf_UnsupportedModelError;/* valid, but not served (yet) */

/* ---- value tree types (values.c) ------------------------------------ */

/* What an allowed global stands for.  The VM interprets the first group
 * itself; MF_G_RECORD globals become inert Record objects when called;
 * MF_G_TYPEREF globals may only appear as values (a dtype= parameter). */
typedef enum {
    MF_G_RECONSTRUCT = 1,   /* numpy.(_)core.multiarray._reconstruct */
    MF_G_SCALAR,            /* numpy.(_)core.multiarray.scalar */
    MF_G_FROMBUFFER,        /* numpy.(_)core.numeric._frombuffer */
    MF_G_DTYPE,             /* numpy.dtype */
    MF_G_NDARRAY,           /* numpy.ndarray / memmap / matrix (argument only) */
    MF_G_JOBLIB_WRAPPER,    /* joblib.numpy_pickle.NumpyArrayWrapper */
    MF_G_CODECS_ENCODE,     /* _codecs.encode */
    MF_G_RECONSTRUCTOR,     /* copyreg._reconstructor */
    MF_G_SET,
    MF_G_FROZENSET,
    MF_G_BYTEARRAY,
    MF_G_COMPLEX,
    MF_G_ORDEREDDICT,
    MF_G_OBJECT,            /* builtins.object: base of _reconstructor */
    MF_G_TYPEREF,           /* a type named as a value: numpy.float64, int, ... */
    MF_G_RECORD,            /* scikit-learn classes, numpy random states */
    MF_G_PARTIAL,           /* functools.partial, around a scikit-learn function only */
    MF_G_SLICE,             /* builtins.slice of ints (ColumnTransformer.output_indices_) */
    MF_G_BYTES              /* builtins.bytes: b'' in protocol 2 */
} mf_global_kind;

typedef struct {
    PyObject_HEAD
    PyObject *module;   /* str */
    PyObject *name;     /* str */
    int kind;           /* mf_global_kind */
} mf_Global;

typedef struct {
    PyObject_HEAD
    PyObject *cls;        /* mf_Global */
    PyObject *args;       /* tuple */
    PyObject *state;      /* NULL until BUILD */
    PyObject *items;      /* dict of SETITEMS on a dict subclass, or NULL */
    PyObject *listitems;  /* list of APPENDS on a list subclass, or NULL */
    int via_reduce;       /* created by REDUCE (1) or NEWOBJ (0) */
} mf_Record;

extern PyTypeObject mf_GlobalType;
extern PyTypeObject mf_RecordType;

#define mf_Global_Check(op) Py_IS_TYPE((op), &mf_GlobalType)
#define mf_Record_Check(op) Py_IS_TYPE((op), &mf_RecordType)

PyObject *mf_global_new(PyObject *module, PyObject *name, int kind);
PyObject *mf_record_new(PyObject *cls, PyObject *args, int via_reduce);

/* ---- the unpickler (unpickle.c) -------------------------------------- */

PyObject *mf_unpickle(PyObject *module, PyObject *args, PyObject *kwargs);
PyObject *mf_classify_global(PyObject *module, PyObject *args);

/* ---- model IR --------------------------------------------------------- */

/* The precision a chain stage works in.  scikit-learn's transformers keep
 * float32 input in float32 (every operation is done in float64 and the
 * result rounded back), so the kernels round after each operation when a
 * stage works in float32. */
typedef enum { MF_F64 = 0, MF_F32 = 1, MF_F16 = 2 } mf_precision;

/* Which non-finite values a stage accepts on its input. */
typedef enum {
    MF_ACCEPT_FINITE = 0,   /* NaN and inf are errors */
    MF_ACCEPT_NAN = 1,      /* NaN passes, inf is an error */
    MF_ACCEPT_ANY = 2
} mf_accept;

typedef enum {
    MF_STEP_AFFINE = 1,     /* the scalers: sub, mul, div, add, clip in that order */
    MF_STEP_IMPUTE,         /* fill missing, drop empty columns, add indicators */
    MF_STEP_ENCODE          /* ordinal-encode some columns, reorder all */
} mf_step_kind;

typedef struct {
    mf_step_kind kind;
    mf_accept accept;
    Py_ssize_t n_in, n_out;
    /* AFFINE: x = clip(((x - sub[j]) * mul[j] / div[j]) + add[j]), each
     * operation rounded to the stage precision, each array optional.
     * cast_params: the parameters are first rounded to the stage precision
     * (StandardScaler casts mean_ and scale_ to X's dtype, MinMaxScaler does
     * not). */
    const double *sub, *mul, *div, *add;
    int cast_params;
    int clip;
    double clip_lo, clip_hi;
    /* IMPUTE */
    int missing_is_nan;
    double missing;
    const double *fill;                 /* n_in fill values */
    int keeps_int;                      /* integer input stays integer (most_frequent,
                                           constant) */
    const npy_intp *keep;               /* n_keep input columns kept, in order */
    Py_ssize_t n_keep;
    const npy_intp *indicator;          /* input columns of the missing indicator */
    Py_ssize_t n_indicator;
    /* ENCODE: output column j reads input column perm[j]; the first n_cat
     * output columns are replaced by their index among the sorted
     * categories cat_values[cat_offsets[j] : cat_offsets[j + 1]], NaN when
     * missing or unknown (HistGradientBoosting's OrdinalEncoder). */
    const npy_intp *perm;
    const double *cat_values;
    const npy_intp *cat_offsets;
    Py_ssize_t n_cat;
} mf_step;

/* A linear final estimator: raw = X @ coef.T + intercept. */
typedef struct {
    Py_ssize_t n_features, n_outputs;
    const double *coef;        /* (n_outputs, n_features), row-major */
    const double *intercept;   /* n_outputs */
} mf_linear;

/* A tree node as the kernel reads it: 16 bytes, laid out in preorder so the
 * left child is the next node.  info: feature index (low 28 bits) and the
 * flags of trees.c; right: the right child's index within its tree (a leaf
 * is its own child); a leaf's threshold holds the row of its values. */
#define MF_TREE_MAX_FEATURES 0x0fffffff

typedef struct {
    double threshold;      /* a categorical split keeps its mf_catsplit index here */
    uint32_t info;
    int32_t right;
} mf_tnode;

/* A categorical split of HistGradientBoosting: 256-bit sets of the raw
 * categories that go left and of those known at fit time. */
typedef struct {
    uint32_t left[8];
    uint32_t known[8];
} mf_catsplit;

/* Any tree ensemble: raw[c] = init[c] + sum over trees of leaf values, in
 * tree order; a tree feeds one column (boosting) or all of them (forests);
 * forests then divide by the number of trees. */
typedef struct {
    Py_ssize_t n_features, n_trees, n_nodes, n_leaves;
    Py_ssize_t n_values;       /* values per leaf */
    Py_ssize_t n_raw;          /* output columns */
    const mf_tnode *nodes;     /* preorder, all trees */
    const int64_t *roots;      /* first node of each tree */
    const double *values;      /* (n_leaves, n_values) */
    const int32_t *column;     /* n_trees output columns, or NULL */
    const mf_catsplit *cats;
    Py_ssize_t n_cats;
    const double *init;        /* n_raw initial values, or NULL for zeros */
    int32_t *depths;           /* owned (PyMem): each tree's deepest and shallowest leaf */
    int64_t steps;             /* sum of the deepest leaves: a row's walk, in steps */
    int average;
    int cast_f32;              /* scikit-learn's trees read X as float32 */
} mf_forest;

/* What the builders hand over: per-node arrays of all trees concatenated,
 * children as indices within their tree (-1 for a leaf). */
typedef struct {
    Py_ssize_t n_nodes;
    const int64_t *left, *right, *feature;
    const double *threshold;
    const uint8_t *flags;      /* bit 0: missing values go left; bit 1: categorical */
    const double *values;      /* (n_nodes, n_values) */
    const int64_t *offsets;    /* n_trees + 1 */
} mf_forest_input;

typedef enum { MF_FINAL_NONE = 0, MF_FINAL_LINEAR = 1, MF_FINAL_FOREST = 2 } mf_final_kind;

/* How a classifier turns raw scores into a label index. */
typedef enum {
    MF_LABEL_NONE = 0,         /* a regressor: raw is the prediction */
    MF_LABEL_THRESHOLD,        /* one score column: index = score > 0 */
    MF_LABEL_ARGMAX,           /* first maximum of the raw scores */
    MF_LABEL_THRESHOLD_GE,     /* one column: index = score >= 0 (gradient boosting) */
    MF_LABEL_PROBA_ARGMAX      /* first maximum of predict_proba (histogram boosting) */
} mf_label_rule;

/* How predict_proba is computed from raw scores. */
typedef enum {
    MF_PROBA_NONE = 0,
    MF_PROBA_EXPIT_OVR,        /* sklearn's _predict_proba_lr */
    MF_PROBA_SOFTMAX,          /* softmax of the score rows */
    MF_PROBA_SOFTMAX_BINARY,   /* softmax of [-d, d] (old multinomial binary LR) */
    MF_PROBA_MODIFIED_HUBER,   /* SGDClassifier(loss='modified_huber') */
    MF_PROBA_IDENTITY,         /* raw is the probability (trees, forests) */
    MF_PROBA_NORMALIZE,        /* raw / row sum, a zero sum read as 1 (trees before 1.4) */
    MF_PROBA_EXPIT2            /* binary, expit(2 raw): the exponential loss */
} mf_proba_rule;

/* What regression predict and score_samples apply to raw. */
typedef enum {
    MF_POST_NONE = 0,
    MF_POST_EXP,               /* a log link: Poisson, Gamma, Tweedie */
    MF_POST_IFOREST            /* raw holds summed path lengths */
} mf_post_rule;

/* Blocks of rows go through a chain together, so that each step's loop and
 * the final matrix product run over a small matrix that stays in cache. */
#define MF_BLOCK_ROWS 64
#define MF_BIG_BLOCK_ROWS 1024
#define MF_FOREST_CACHE_BYTES (2 << 20)

/* Pipelines are short; a cap lets per-call stage data live on the stack. */
#define MF_MAX_STEPS 64

/* A failure found inside a kernel, reported after the GIL is retaken. */
typedef enum { MF_ERR_NONE = 0, MF_ERR_NAN, MF_ERR_INF, MF_ERR_NOMEM } mf_err_kind;

/* transform.c */
void mf_step_apply(const mf_step *step, const double *in, double *out,
                   Py_ssize_t n_rows, mf_precision prec);
int mf_check_block(mf_accept accept, const double *x, Py_ssize_t count,
                   mf_err_kind *err);

/* linear.c */
void mf_linear_raw(const mf_linear *lin, const double *x, Py_ssize_t n_rows,
                   double *raw);
int mf_blas_init(void);

/* links.c */
void mf_proba(mf_proba_rule rule, const double *raw, Py_ssize_t n_rows,
              Py_ssize_t n_raw, Py_ssize_t n_classes, double *proba);
void mf_labels(mf_label_rule rule, const double *scores, Py_ssize_t n_rows,
               Py_ssize_t width, npy_intp *index);
void mf_post(mf_post_rule rule, double *raw, Py_ssize_t count, double denominator,
             double offset, int with_offset);

/* trees.c */
int mf_forest_build(mf_forest *f, const mf_forest_input *in, mf_tnode *nodes,
                    int64_t *roots, double *values, char *err, size_t err_size);
int mf_forest_check(const mf_forest *f, char *err, size_t err_size);
int mf_forest_depths(const mf_forest *f, int32_t *depths, char *err, size_t err_size);
void mf_forest_raw(const mf_forest *f, const double *x, Py_ssize_t n_rows, double *raw);

/* chain.c */
extern PyTypeObject mf_ChainType;
int mf_get_num_threads(void);
int mf_set_num_threads(int n);
int mf_pool_init(void);      /* once, at import: the pool's fork handler */

/* tally.c: the serving metrics' per-request counts */
extern PyTypeObject mf_TallyType;

#endif /* MLFAST_H */
