/*
 * mlfast.h -- the one header shared by the C files of mlfast._core.
 *
 * It declares:
 *   - the exception objects and value types (Record, Global) of the
 *     restricted unpickler (unpickle.c, values.c);
 *   - the model IR: a graph of ops, each op a plain struct of arrays that
 *     the builders fill through graph.c and the kernels only read
 *     (transform.c, linear.c, trees.c, links.c, multiclass.c); input.c, pool.c and run.c
 *     take rows through it;
 *   - RequestTally (tally.c), the serving metrics' counts.
 *
 * Every symbol that is not declared here is static in its own file.
 */
#ifndef MLFAST_H
#define MLFAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pycompat.h"

#define PY_ARRAY_UNIQUE_SYMBOL MLFAST_ARRAY_API
#ifndef MLFAST_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---- exceptions (module.c) ------------------------------------------ */

extern PyObject *mf_MlfastError;          /* ValueError subclass, the root */
extern PyObject *mf_ModelFormatError;     /* corrupt, truncated, not a pickle */
extern PyObject *mf_UnsafeModelError;     /* forbidden global or opcode */
extern PyObject *mf_UnsupportedModelError;/* valid, but not served (yet) */

/* ---- value tree types (values.c) ------------------------------------ */

/* What an allowed global stands for.  The VM interprets the first group
 * itself; MF_G_RECORD globals become inert Record objects when called;
 * MF_G_TYPEREF globals may only appear as values (a dtype= parameter);
 * MF_G_UNKNOWN globals become inert Records when instantiated (NEWOBJ,
 * copyreg._reconstructor) and are refused when called (REDUCE). */
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
    MF_G_SLICE,             /* builtins.slice of ints or labels (ColumnTransformer) */
    MF_G_BYTES,             /* builtins.bytes: b'' in protocol 2 */
    MF_G_GETATTR,           /* builtins.getattr: an inert method reference on a record */
    MF_G_FUNCTION,          /* a numpy function named as a value: FunctionTransformer(np.log1p) */
    MF_G_UFUNC_RECONSTRUCT, /* numpy.core._ufunc_reconstruct: how numpy < 1.20 named one */
    MF_G_DEFAULTDICT,       /* collections.defaultdict: read as the dict it holds */
    MF_G_UNKNOWN            /* a class of a module outside the table (a user's own, another
                             * library's): instantiated as an inert record, never called */
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
int mf_unpickle_init_types(void);

/* ---- model IR: a graph of ops ------------------------------------------
 *
 * A model is a graph.  Its slots are columns of a block of rows: the input
 * X fills slots [0, n_features); every node reads n_in slots (any, in any
 * order, from the input or from nodes before it) and writes n_out new
 * slots.  Nodes are in topological order, which is also the order
 * scikit-learn runs its estimators in, so the first node to refuse a row is
 * the estimator scikit-learn would name.  A method (predict, transform, ...)
 * is a list of slots to return; a call runs only the nodes those slots need.
 *
 * The contract with the builders: each op kind is one struct below and one
 * mf_op_def (its name, its fields by name, its kernels); the builders hand
 * over one Python dataclass per op with fields of the same names, read by
 * name (graph.c), never by position.  _core.OPS lists every op's fields and
 * _core.CODES the enums below, so Python never retypes them.
 *
 * Memory: arrays handed over are kept alive by the Graph (its `owners`
 * list) and read in place; an op struct only points into them.  What a
 * prepare function allocates (a forest's packed nodes, its depths) belongs
 * to the op and is freed by its release function. */

/* The precision a node works in.  scikit-learn's transformers keep float32
 * input in float32 (every operation is done in float64 and the result
 * rounded back), so the kernels round after each operation when a node
 * works in float32. */
typedef enum { MF_F64 = 0, MF_F32 = 1, MF_F16 = 2 } mf_precision;

/* Which non-finite values a node accepts on its input. */
typedef enum {
    MF_ACCEPT_FINITE = 0,   /* NaN and inf are errors */
    MF_ACCEPT_NAN = 1,      /* NaN passes, inf is an error */
    MF_ACCEPT_ANY = 2
} mf_accept;

/* A failure found inside a kernel, reported after the GIL is retaken. */
typedef enum {
    MF_ERR_NONE = 0,
    MF_ERR_NAN,
    MF_ERR_INF,
    MF_ERR_NOMEM,
    MF_ERR_UNKNOWN,            /* a key op met a category it refuses (handle_unknown='error') */
    MF_ERR_DOMAIN,             /* a value outside what the op reads (its domain_message) */
    MF_ERR_VALUE               /* a value the op cannot read (its def's refusal says which) */
} mf_err_kind;

/* What a slot holds: a number, or a key (keys.c): a category value of any
 * Python type, 64 bits, read and written with memcpy.  Each op reads slots
 * of one kind and writes slots of one kind; graph.c checks every read, so a
 * kernel never takes an arbitrary double for a key (a key may be a
 * pointer). */
typedef enum { MF_SLOT_NUM = 0, MF_SLOT_KEY = 1 } mf_slot_kind;

/* How one field of an op struct is read from the builders' dataclass. */
typedef enum {
    MF_FIELD_INT = 1,          /* Py_ssize_t */
    MF_FIELD_FLOAT,            /* double */
    MF_FIELD_BOOL,             /* int: 0 or 1 */
    MF_FIELD_ARRAY             /* a C-contiguous, aligned, native ndarray */
} mf_field_kind;

#define MF_FIELD_OPTIONAL  1   /* None is allowed: a NULL pointer, dimensions 0 */
#define MF_FIELD_TRANSIENT 2   /* read by prepare only, not kept by the graph */

typedef struct {
    const char *name;
    mf_field_kind kind;
    int type_num;              /* arrays: NPY_DOUBLE, NPY_INT64, ... */
    int ndim;                  /* arrays: 1 or 2 */
    int flags;                 /* MF_FIELD_* */
    Py_ssize_t offset;         /* of the value, or of the array's data pointer */
    Py_ssize_t dim0, dim1;     /* arrays: offsets of the Py_ssize_t dimensions, or -1 */
} mf_field;

#define MF_NO_DIM ((Py_ssize_t)-1)
#define MF_SCALAR_FIELD(st, name, kind) \
    {#name, kind, 0, 0, 0, offsetof(st, name), MF_NO_DIM, MF_NO_DIM}
#define MF_VECTOR_FIELD(st, name, type_num, flags, len) \
    {#name, MF_FIELD_ARRAY, type_num, 1, flags, offsetof(st, name), offsetof(st, len), MF_NO_DIM}
#define MF_MATRIX_FIELD(st, name, type_num, flags, rows, cols) \
    {#name, MF_FIELD_ARRAY, type_num, 2, flags, offsetof(st, name), offsetof(st, rows), \
     offsetof(st, cols)}
#define MF_END_FIELDS {NULL, 0, 0, 0, 0, 0, 0, 0}

/* An op kind.  prepare checks the fields just read (every length and index
 * against n_in and against each other), may derive or allocate what the
 * kernel needs, and sets *n_out; it runs with the GIL and raises on error.
 * run reads n_rows rows of n_in values and writes n_rows rows of n_out
 * values, row-major; it runs without the GIL, never allocates through
 * Python and never fails. */
typedef struct mf_op_def {
    const char *name;
    Py_ssize_t size;                       /* of the op struct */
    const mf_field *fields;
    int (*prepare)(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners);
    void (*release)(void *op);             /* or NULL */
    void (*run)(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
                Py_ssize_t n_rows, mf_precision prec);
    /* the numpy type of the output for an input of in_type (NULL: floats
     * keep their type, integers become float64) */
    int (*out_type)(const void *op, int in_type);
    /* refuses what the op cannot read (NULL: every value against the
     * node's accept rule); returns 1 and sets *err to refuse */
    int (*check)(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows,
                 mf_accept accept, mf_err_kind *err);
    /* a row's cost: values touched, and tree walk steps (NULL: n_in + n_out) */
    void (*cost)(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps);
    /* what prepare made that the Python side keeps instead of the fields it
     * came from (a forest's packed layout), or NULL */
    PyObject *(*made)(const void *op);
    /* rows a block should hold for this op to run well (0: no wish) */
    Py_ssize_t (*block_rows)(const void *op);
    /* the kinds of slot it reads and writes (mf_slot_kind); an op reading
     * keys has a check function */
    int in_kind, out_kind;
    /* an op that refuses unknown keys: the first input column of a row it
     * refuses (-1: none), and a column's categories as a list of Python
     * values, for the message made after the run */
    Py_ssize_t (*refused_column)(const void *op, const double *in_row, Py_ssize_t n_in);
    /* of those, whether input column j of a row is refused for a NaN
     * (NULL: the op takes NaN as a key like any other) */
    int (*refuses_nan)(const void *op, const double *in_row, Py_ssize_t j);
    PyObject *(*known)(const void *op, Py_ssize_t column);
    /* scikit-learn's message for a row its check refused with MF_ERR_DOMAIN
     * (a value outside what the estimator reads: Box-Cox of a negative
     * value, ...), or NULL */
    const char *(*domain_message)(const void *op);
    /* an op whose check refuses with MF_ERR_VALUE: sets the Python error
     * scikit-learn raises for that row (with the GIL) */
    void (*refusal)(const void *op, const double *in_row, Py_ssize_t n_in);
} mf_op_def;

/* ---- the ops ---------------------------------------------------------- */

/* affine: the scalers.  x = clip(((x - sub[j]) * mul[j] / div[j]) + add[j]),
 * each operation rounded to the node's precision, each array optional.
 * cast_params: the parameters are first rounded to that precision
 * (StandardScaler since 1.8 casts mean_ and scale_ to X's dtype). */
typedef struct {
    const double *sub, *mul, *div, *add;
    Py_ssize_t n_sub, n_mul, n_div, n_add;
    int cast_params;
    int clip;
    double clip_lo, clip_hi;
} mf_affine;

/* impute: SimpleImputer.  Fill missing values, keep the columns `keep`,
 * then add missing indicators of the input columns `indicator`. */
typedef struct {
    double missing;            /* NaN: missing means NaN */
    const double *fill;        /* n_in fill values */
    Py_ssize_t n_fill;
    int keeps_int;             /* integer input stays integer (most_frequent, constant) */
    const int64_t *keep;
    Py_ssize_t n_keep;
    const int64_t *indicator;
    Py_ssize_t n_indicator;
    int missing_is_nan;        /* derived */
} mf_impute;

/* encode: output column j reads input column perm[j]; the first n_cat
 * output columns are replaced by their index among the sorted categories
 * categories[offsets[j] : offsets[j + 1]], NaN when missing or unknown
 * (HistGradientBoosting's OrdinalEncoder). */
typedef struct {
    const int64_t *perm;
    Py_ssize_t n_perm;
    const double *categories;
    Py_ssize_t n_categories;
    const int64_t *offsets;    /* n_cat + 1 */
    Py_ssize_t n_offsets;
} mf_encode;

/* linear: raw = X @ coef.T + intercept.  f32: scikit-learn's product
 * stays float32 for float32 (and small integer) input. */
typedef struct {
    const double *coef;        /* (n_outputs, n_features), row-major */
    Py_ssize_t n_outputs, n_features;
    const double *intercept;   /* n_outputs */
    Py_ssize_t n_intercept;
    int f32;
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

/* Whose category sets a forest's categorical splits hold. */
typedef enum {
    MF_CATS_XGBOOST = 1,       /* the set goes right; negative values are in no set */
    MF_CATS_LIGHTGBM = 2       /* the set goes left; values truncating below 0 in none */
} mf_cat_rule;

/* A categorical split of HistGradientBoosting: 256-bit sets of the raw
 * categories that go left and of those known at fit time. */
typedef struct {
    uint32_t left[8];
    uint32_t known[8];
} mf_catsplit;

/* forest / forest_packed: any tree ensemble.  raw[c] = init[c] + sum over
 * trees of leaf values, in tree order; a tree feeds one column (`column`,
 * boosting) or all of them (forests); average divides by the number of
 * trees.  (scikit-learn's own trees read X as float32: their node casts
 * its input, see mf_node.cast_f32.)
 *
 * sum_f32: XGBoost keeps a row's margin in a float: init and every leaf
 * are float32 values and each sum is rounded to float32 (a double sum of
 * two floats rounded once is the float sum, exactly).
 *
 * `forest` takes per-node arrays of all trees concatenated (children as
 * indices within their tree, -1 for a leaf; flags bit 0: missing values go
 * left, bit 1: categorical split) and lays them out again (prepare);
 * `forest_packed` takes that layout back (a pickled Model) and checks it. */
typedef struct {
    /* fields, forest */
    Py_ssize_t n_features;
    Py_ssize_t n_raw;          /* output columns */
    const int64_t *left, *right, *feature;
    const double *threshold;
    const uint8_t *flags;
    const double *node_values; /* (n_nodes, n_values) */
    const int64_t *offsets;    /* n_trees + 1 */
    Py_ssize_t n_left, n_right, n_feature, n_threshold, n_flags, n_node_rows, n_offsets;
    /* fields, forest_packed */
    const uint8_t *packed_nodes;
    Py_ssize_t n_packed_bytes;
    const int64_t *packed_roots;
    Py_ssize_t n_packed_roots;
    const double *packed_values;
    Py_ssize_t n_packed_leaves, n_packed_width;
    /* fields, both */
    const int32_t *column;     /* n_trees output columns, or NULL */
    Py_ssize_t n_column;
    const uint32_t *cats;      /* (n_cats, 16) words: mf_catsplit rows, or NULL */
    Py_ssize_t n_cats, n_cat_words;
    const double *init;        /* n_raw initial values, or NULL for zeros */
    Py_ssize_t n_init;
    int average;
    int sum_f32;               /* each addition rounded to float32 (XGBoost's float sums) */
    /* category sets of XGBoost's and LightGBM's splits (cat_rule != 0;
     * then `cats` is NULL): a categorical node's threshold is a set's
     * index, its words cat_words[cat_offsets[i] : cat_offsets[i + 1]] */
    const uint32_t *cat_words;
    Py_ssize_t n_cat_set_words;
    const int64_t *cat_offsets;
    Py_ssize_t n_cat_offsets;
    Py_ssize_t cat_rule;       /* mf_cat_rule */
    /* the walk's layout, made or checked by prepare */
    Py_ssize_t n_trees, n_nodes, n_leaves;
    Py_ssize_t n_values;       /* values per leaf */
    const mf_tnode *nodes;     /* preorder, all trees */
    const mf_catsplit *splits; /* cats, as the walk reads them */
    const int64_t *roots;      /* first node of each tree */
    const double *values;      /* (n_leaves, n_values) */
    int32_t *depths;           /* owned (PyMem): each tree's deepest and shallowest leaf */
    int64_t steps;             /* sum of the deepest leaves: a row's walk, in steps */
    PyObject *packed;          /* (nodes, roots, values) arrays, owned */
} mf_forest;

/* proba: from raw scores to predict_proba. */
typedef enum {
    MF_PROBA_EXPIT_OVR = 1,    /* sklearn's _predict_proba_lr */
    MF_PROBA_SOFTMAX,          /* softmax of the score rows */
    MF_PROBA_SOFTMAX_BINARY,   /* softmax of [-d, d] (old multinomial binary LR) */
    MF_PROBA_MODIFIED_HUBER,   /* SGDClassifier(loss='modified_huber') */
    MF_PROBA_NORMALIZE,        /* raw / row sum, a zero sum read as 1 (trees before 1.4) */
    MF_PROBA_EXPIT2            /* binary, expit(2 raw): the exponential loss */
} mf_proba_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_proba_rule */
    Py_ssize_t n_classes;
} mf_proba;

/* labels: one column holding the index of each row's class. */
typedef enum {
    MF_LABEL_THRESHOLD = 1,    /* one score column: index = score > threshold */
    MF_LABEL_THRESHOLD_GE,     /* one column: index = score >= threshold */
    MF_LABEL_ARGMAX            /* first maximum */
} mf_label_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_label_rule */
    double threshold;
} mf_labels;

/* post: element-wise, what regression predict and score_samples apply. */
typedef enum {
    MF_POST_EXP = 1,           /* a log link: Poisson, Gamma, Tweedie */
    MF_POST_IFOREST,           /* summed path lengths -> -2 ** (-depth / denominator) - offset */
    MF_POST_LOG                /* predict_log_proba */
} mf_post_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_post_rule */
    double denominator, offset;
} mf_post;

/* xgb_link: XGBoost's transforms of its float32 margins (gbdt.c), in
 * float32 and in XGBoost's order of operations, so that the bits are
 * XGBoost's.  The output is float32, as XGBoost returns it. */
typedef enum {
    MF_XGB_IDENTITY = 1,       /* reg:squarederror, binary:logitraw, rank:*: the margin */
    MF_XGB_SIGMOID,            /* binary:logistic, reg:logistic: common::Sigmoid */
    MF_XGB_SOFTMAX,            /* multi:softprob: common::Softmax over the row */
    MF_XGB_EXP,                /* count:poisson, reg:gamma, reg:tweedie: expf */
    MF_XGB_COMPLEMENT          /* one column p -> [1 - p, p] (the wrapper's predict_proba) */
} mf_xgb_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_xgb_rule */
} mf_xgb_link;

/* ---- ensembles (ensemble.c) ------------------------------------------
 *
 * A member block is the columns one member estimator returns for the
 * method the ensemble calls; a label column holds a member's class index
 * (its labels node) and a class map turns it into the ensemble's class
 * index.  Every index read from a row is checked against its map before it
 * is used: a slot wired to the wrong column reads as no vote, never out of
 * bounds. */

/* average: np.average over member blocks of equal width (VotingClassifier's
 * soft predict_proba, VotingRegressor's predict).  out[c] = (sum over
 * members of in[m][c] * weights[m]) / scale, the members added one after
 * the other from 0: numpy reduces the members' axis with the rows as its
 * inner loop (the (m, n, k) probabilities, the transposed (n, m)
 * predictions), never pairwise.  weighted: the products are taken (weights
 * given), and the result is float64 whatever the input. */
typedef struct {
    const double *weights;     /* n_members */
    Py_ssize_t n_members;
    double scale;
    int weighted;
} mf_average;

/* vote: hard voting (VotingClassifier).  Each input is a member's label
 * column; out[c] = the weights of the members that voted c, added in
 * member order, as np.bincount(votes, weights) does; classes above the
 * highest vote of the row are -inf (bincount's length ends there), so that
 * a labels node's argmax is bincount's argmax. */
typedef struct {
    Py_ssize_t n_classes;
    const double *weights;     /* n_in, or NULL: each vote counts 1 */
    Py_ssize_t n_weights;
    const int64_t *class_map;  /* member m's class i -> class_map[map_offsets[m] + i] */
    Py_ssize_t n_class_map;
    const int64_t *map_offsets;/* n_in + 1 */
    Py_ssize_t n_map_offsets;
} mf_vote;

/* take: each input column is a class index; out = the class's value in
 * table[offsets[j] : offsets[j + 1]] (NaN out of range).  int_out: the
 * values are labels numpy returns as int64 (a member's predict stacked or
 * voted). */
typedef struct {
    const double *table;
    Py_ssize_t n_table;
    const int64_t *offsets;    /* n_in + 1 */
    Py_ssize_t n_offsets;
    int int_out;
} mf_take;

/* bag: BaggingClassifier and BaggingRegressor.  Member m reads widths[m]
 * columns; a vote member (votes[m] = 1) reads its label column and adds 1
 * to the class its map names, any other adds column j to output
 * class_map[map_offsets[m] + j].  Members are summed chunk by chunk
 * (chunk_starts: scikit-learn's _partition_estimators over n_jobs), each
 * chunk from 0, the chunks then added in order from 0 (Python's sum); then
 * divided by divisor.  log: predict_log_proba, chunks and members combined
 * by np.logaddexp from -inf, then log_offset subtracted.  keep_type: the
 * sum keeps the members' float type (decision_function, regression);
 * otherwise it is float64 (predict_proba's np.zeros). */
typedef struct {
    Py_ssize_t n_outputs;
    const int64_t *widths;     /* n_members */
    Py_ssize_t n_members;
    const int64_t *votes;      /* n_members: 0 or 1 */
    Py_ssize_t n_votes;
    const int64_t *class_map;
    Py_ssize_t n_class_map;
    const int64_t *map_offsets;/* n_members + 1 */
    Py_ssize_t n_map_offsets;
    const int64_t *chunk_starts;
    Py_ssize_t n_chunk_starts;
    double divisor;
    int log;
    double log_offset;
    int keep_type;
} mf_bag;

/* samme: AdaBoostClassifier.decision_function.  SAMME: member m reads its
 * label column; a row gets weights[m] for the class it names (class_map)
 * and others[m] for every other class.  SAMME.R (real): member m reads its
 * n_classes probabilities p, clipped below at eps, and adds
 * (n_classes - 1) * (log p - inv_classes * sum(log p)).  The sum over
 * members starts from 0 and is divided by total; two classes give one
 * column, -col0 + col1. */
typedef struct {
    Py_ssize_t n_classes;
    int real;
    const double *weights;     /* n_members */
    Py_ssize_t n_members;
    const double *others;      /* n_members (SAMME) */
    Py_ssize_t n_others;
    const int64_t *class_map;  /* SAMME */
    Py_ssize_t n_class_map;
    const int64_t *map_offsets;/* n_members + 1 (SAMME) */
    Py_ssize_t n_map_offsets;
    double total, inv_classes, eps;
} mf_samme;

/* wmedian: AdaBoostRegressor.predict, the weighted median of the members'
 * predictions: sorted (ties in member order), weights summed along that
 * order, the first prediction whose running sum reaches half the total. */
#define MF_WMEDIAN_MAX_MEMBERS 4096
typedef struct {
    const double *weights;     /* n_in */
    Py_ssize_t n_weights;
} mf_wmedian;

/* onehot: each input column holds a column index in [0, n_outputs) (a
 * tree's leaf, RandomTreesEmbedding); out is 1 there and 0 elsewhere. */
typedef struct {
    Py_ssize_t n_outputs;
} mf_onehot;

/* constant: every row is `values` (DummyClassifier, DummyRegressor), read
 * from none of its inputs, returned as numpy returns the fitted constant:
 * out_kind 0 float64, 1 int64, 2 float32. */
typedef struct {
    const double *values;
    Py_ssize_t n_values;
    Py_ssize_t out_kind;
} mf_constant;

/* check: the input unchanged, after the node's accept rule (an ensemble
 * that validates X itself before its members see it: AdaBoost). */
typedef struct {
    int unused;
} mf_check;

/* ---- keys (keys.c) ----------------------------------------------------
 *
 * A key is one value of a categorical column in 64 bits, with Python's
 * equality: a number is the double itself (1 == 1.0 == True; -0.0 made 0.0;
 * every NaN made one NaN, the one missing value scikit-learn's
 * _object_dtype_isnan sees); None, pandas' NA and a pointer to an
 * mf_keystr (str, bytes, an int no double holds exactly) are NaN patterns
 * that no number key has.  Keys of the caller's values are made at input
 * under the GIL (mf_keys_from_column) and live as long as the call;
 * categories' keys come from _core.encode_keys, the same function, so the
 * two can never disagree. */
enum {
    MF_KEY_NUMBER = 0,
    MF_KEY_NONE,
    MF_KEY_STR,
    MF_KEY_BYTES,
    MF_KEY_BIGINT,
    MF_KEY_NA,
    MF_KEY_N_TAGS
};

typedef struct {
    uint64_t hash;
    const char *data;          /* UTF-8 (str), the bytes, or decimal digits */
    Py_ssize_t len;
    int tag;
} mf_keystr;

/* Storage of a call's or an op's mf_keystr and text: blocks that never
 * move, freed together. */
typedef struct mf_keyblock mf_keyblock;
typedef struct {
    mf_keyblock *blocks;
} mf_keystore;

void mf_keystore_free(mf_keystore *st);
/* Keys of n values of a column (any dtype), one every dst_stride keys;
 * `column` names it in errors.  With the GIL. */
int mf_keys_from_column(const char *data, npy_intp n, npy_intp stride, PyArray_Descr *descr,
                        mf_keystore *st, uint64_t *dst, npy_intp dst_stride, PyObject *column);
int mf_key_of_object(mf_keystore *st, PyObject *o, uint64_t *key, PyObject *column);
PyObject *mf_key_to_object(const double *slot);
void mf_name_key_error(PyObject *column);
PyObject *mf_encode_keys(PyObject *module, PyObject *array);   /* _core.encode_keys */
PyObject *mf_decode_keys(PyObject *module, PyObject *args);    /* _core.decode_keys */
/* The text of a str, bytes or big-int key, or NULL for any other key. */
const mf_keystr *mf_key_text(uint64_t key);

/* Categories as keys, every column's in one array (encode_keys' four
 * arrays), with one open-addressing table per column, made by prepare. */
typedef struct {
    uint64_t *keys;            /* n_keys, owned */
    int32_t *slots;            /* every column's table: a category's index or -1 */
    int64_t *starts;           /* n_cols + 1: each table's first slot */
    int32_t *probes;           /* n_cols: the longest probe a lookup needs */
    mf_keystore store;
} mf_keytable;

#define MF_KEY_FIELDS(st) \
    MF_VECTOR_FIELD(st, tags, NPY_UINT8, 0, n_tags), \
    MF_VECTOR_FIELD(st, nums, NPY_DOUBLE, 0, n_nums), \
    MF_VECTOR_FIELD(st, text, NPY_UINT8, 0, n_text), \
    MF_VECTOR_FIELD(st, text_offsets, NPY_INT64, 0, n_text_offsets)
#define MF_KEY_ARRAYS \
    const uint8_t *tags; Py_ssize_t n_tags; \
    const double *nums; Py_ssize_t n_nums; \
    const uint8_t *text; Py_ssize_t n_text; \
    const int64_t *text_offsets; Py_ssize_t n_text_offsets

enum { MF_REFUSE_UNKNOWN = 1, MF_REFUSE_NAN = 2 };

/* catmap: OneHotEncoder and OrdinalEncoder (keys -> numbers).  Input
 * column j's categories are keys [columns[j], columns[j + 1]); a key found
 * at category c writes values[c], one not found writes unknown[j], unless
 * refuse[j] has MF_REFUSE_UNKNOWN (handle_unknown='error'), when the row
 * is refused; with MF_REFUSE_NAN a NaN is refused before any lookup (the
 * check_array of scikit-learn versions whose encoder took no NaN).  n_outputs
 * 0: one output per input (ordinal codes; NaN allowed); n_outputs > 0:
 * one-hot, every output 0 but the column each input's value names (-1:
 * none).  The builders fold drop, infrequent categories and the missing
 * category into values and unknown.  out_type: the numpy type returned. */
typedef struct {
    MF_KEY_ARRAYS;
    const int64_t *columns;    /* n_in + 1 */
    Py_ssize_t n_columns;
    const double *values;      /* n_categories */
    Py_ssize_t n_values;
    const double *unknown;     /* n_in */
    Py_ssize_t n_unknown;
    const uint8_t *refuse;     /* n_in: MF_REFUSE_* bits */
    Py_ssize_t n_refuse;
    Py_ssize_t n_outputs;
    Py_ssize_t out_type;
    mf_keytable table;         /* made by prepare */
} mf_catmap;

/* keyfill: SimpleImputer on object data (keys -> keys).  Keys 0..n_in-1
 * are each column's fill value, key n_in the missing value; out[t] is
 * input keep[t], its fill when it equals the missing value. */
typedef struct {
    MF_KEY_ARRAYS;
    const int64_t *keep;
    Py_ssize_t n_keep;
    mf_keytable table;         /* made by prepare */
} mf_keyfill;

/* keymissing: MissingIndicator over keys (keys -> numbers): out[t] is 1
 * where input features[t] equals the one key (the missing value).
 * out_type: the numpy type returned (bool). */
typedef struct {
    MF_KEY_ARRAYS;
    const int64_t *features;
    Py_ssize_t n_features;
    Py_ssize_t out_type;
    mf_keytable table;         /* made by prepare */
} mf_keymissing;

/* tokey: numbers read as keys (an encoder after a numeric step): -0.0
 * made 0.0, every NaN the one NaN. */
typedef struct {
    int unused;
} mf_tokey;

/* ---- the meta-estimators' ops (multiclass.c) ---- */

/* A numpy ufunc's inner loop for one type, as numpy itself calls it. */
typedef struct {
    void (*fn)(char **args, const npy_intp *dims, const npy_intp *steps, void *data);
    void *data;
} mf_ufunc_loop;

/* calibrate: _CalibratedClassifier.predict_proba (CalibratedClassifierCV).
 * sigmoid and isotonic: score column c goes through its own calibrator
 * into class columns[c], the others stay 0; two classes: p0 = 1 - p1,
 * more: each row divided by its sum (numpy's pairwise sum), a zero sum
 * giving 1 / n_classes.  temperature: softmax(beta * logits) of all the
 * columns at once, the logits being log(p + 1e-12) of probabilities
 * (from_proba) or the scores themselves; one column stands for two
 * ([1 - p, p] or [-d, d]).  Last, values in (1, 1 + 1e-5] become 1. */
typedef enum {
    MF_CAL_SIGMOID = 1,        /* expit(-(a * s + b)): _SigmoidCalibration */
    MF_CAL_ISOTONIC,           /* np.interp(clip(s, lo, hi), x, y): IsotonicRegression */
    MF_CAL_TEMPERATURE         /* _TemperatureScaling */
} mf_calibrate_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_calibrate_rule */
    Py_ssize_t n_classes;
    const int64_t *columns;    /* sigmoid, isotonic: the class of each score column */
    Py_ssize_t n_columns;
    const double *a, *b;       /* sigmoid: each calibrator's a_ and b_ */
    Py_ssize_t n_a, n_b;
    const double *x, *y;       /* isotonic: every calibrator's thresholds, concatenated */
    Py_ssize_t n_x, n_y;
    const int64_t *offsets;    /* isotonic: n_in + 1 bounds into x and y */
    Py_ssize_t n_offsets;
    const double *lo, *hi;     /* isotonic: each calibrator's X_min_ and X_max_ */
    Py_ssize_t n_lo, n_hi;
    double beta;               /* temperature: beta_ */
    int from_proba;            /* temperature: the scores are probabilities */
    mf_ufunc_loop exp, log;    /* temperature: numpy's own (prepare finds them) */
} mf_calibrate;

/* normalize: OneVsRestClassifier.predict_proba.  complement: one column p
 * becomes [1 - p, p]; then each row is divided by its sum (numpy's pairwise
 * sum).  A zero sum keeps the row (ZERO_KEEPS, since 1.7) or divides by it
 * (ZERO_NAN: 0 / 0). */
typedef enum { MF_NORM_ZERO_KEEPS = 1, MF_NORM_ZERO_NAN } mf_normalize_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_normalize_rule */
    int complement;
} mf_normalize;

/* ovr_argmax: OneVsRestClassifier.predict's running maximum over its
 * estimators' scores (np.maximum, NaN spreading), which keeps the last
 * estimator whose score equals it, in estimator order (before 1.8) or in
 * reverse (since), as a row of 0 with a 1 there for labels' argmax. */
typedef struct {
    int reverse;
} mf_ovr_argmax;

/* ovo_votes: OneVsOneClassifier.decision_function (_ovr_decision_function).
 * The input is each pair's predicted class index (0 or 1), then each pair's
 * confidence, pairs in the order (0, 1), (0, 2), ..., (k - 2, k - 1). */
typedef struct {
    Py_ssize_t n_classes;
} mf_ovo_votes;

/* ecoc: OutputCodeClassifier: minus the Euclidean distance of the row of
 * estimator outputs to each class's code word, so that the first maximum
 * is scikit-learn's first minimum.  SQUARED: ||x||^2 - 2 x.c + ||c||^2 as
 * ArgKmin ranks them (1.3+); SQRT: that, clipped at 0, square-rooted
 * (euclidean_distances, before 1.3).  The products are OpenBLAS's. */
typedef enum { MF_ECOC_SQUARED = 1, MF_ECOC_SQRT } mf_ecoc_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_ecoc_rule */
    const double *code_book;   /* (n_codes, n_bits) */
    Py_ssize_t n_codes, n_bits;
    const double *code_norms;  /* n_codes: ||c||^2 */
    Py_ssize_t n_code_norms;
} mf_ecoc;

/* The numpy functions a FunctionTransformer may name (func, inverse_func),
 * by numpy's own names: the values of MF_FUNCTION_NAMES, in order, are the
 * codes 1, 2, ... (_core.CODES["functions"]). */
#define MF_FUNCTION_NAMES                                                                 \
    "log1p", "expm1", "log", "exp", "sqrt", "absolute", "fabs", "square", "log2", "log10", \
    "exp2", "cbrt", "reciprocal", "negative", "positive", "sign", "sin", "cos", "tan",    \
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",           \
    "arctanh", "rint", "floor", "ceil", "trunc", "deg2rad", "rad2deg", "degrees", "radians"

/* The numpy types a function's loop is chosen for: bool to float16. */
#define MF_UFUNC_TYPES (NPY_HALF + 1)

/* cast: the input as is, of another type.  FLOAT64: returned as float64
 * (np.hstack with float64 columns, a dtype=np.float64 array); UFUNC: as
 * the type of the loop numpy picks for function `code` (float16 for int8,
 * ...), which holds every value exactly. */
typedef enum { MF_CAST_FLOAT64 = 1, MF_CAST_UFUNC } mf_cast_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_cast_rule */
    Py_ssize_t code;           /* UFUNC: the function (MF_FUNCTION_NAMES) */
    signed char in_types[MF_UFUNC_TYPES];   /* UFUNC: made by prepare */
} mf_cast;

/* function: a numpy ufunc of MF_FUNCTION_NAMES, element by element, through
 * numpy's own loops (the float64, float32 or float16 one, as the node's
 * precision says), so that the values are numpy's bit for bit. */
typedef struct {
    Py_ssize_t code;
    mf_ufunc_loop loop_d, loop_f, loop_e;   /* made by prepare */
    signed char out_types[MF_UFUNC_TYPES];  /* numpy's result type per input type */
} mf_function;

/* ---- distances to stored points (distances.c) ---- */

/* quadform: out = mul * q + add, q = sum_j z_j (z @ prec)_j with z = x - loc
 * (squared Mahalanobis distances: EllipticEnvelope, the Gaussian
 * log-likelihoods of PCA and FactorAnalysis' score_samples). */
typedef struct {
    const double *loc;
    Py_ssize_t n_loc;
    const double *prec;        /* (d, d) */
    Py_ssize_t n_prec_rows, n_prec_cols;
    double mul, add;
} mf_quadform;

/* mixture: GaussianMixture and BayesianGaussianMixture.  For component c,
 * wlp[c] = -0.5 * (log_2pi_d + lp[c]) + adds[0][c] + adds[1][c] + ...,
 * lp the squared distance of _estimate_log_gaussian_prob for the
 * covariance type; out = wlp (n_components), logsumexp(wlp), then
 * exp(wlp - logsumexp) (n_components). */
typedef enum { MF_MIX_FULL = 1, MF_MIX_TIED, MF_MIX_DIAG, MF_MIX_SPHERICAL } mf_mixture_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_mixture_rule */
    Py_ssize_t n_components;
    const double *prec;        /* full: (K, d, d) Cholesky factors; tied: (d, d);
                                * diag: (K, d) precisions; spherical: K precisions */
    Py_ssize_t n_prec;
    const double *shift;       /* (K, d): mu @ prec_chol (full, tied), mu * prec (diag,
                                * spherical) */
    Py_ssize_t n_shift_rows, n_shift_cols;
    const double *base;        /* K: the constant term (diag, spherical) */
    Py_ssize_t n_base;
    const double *adds;        /* (n_adds, K): log det, log weights, ... added in order */
    Py_ssize_t n_adds_rows, n_adds_cols;
    double log_2pi_d;          /* n_features * log(2 pi) */
    /* float32 input (full, tied), from scikit-learn 1.7: lp is stored in
     * X's float32 and -0.5 * (log_2pi_d_f32 + lp) computed in float32 (the
     * constant is 1.7's n_features * float32(log(2 pi)), 1.8's float32 of
     * the Python float) */
    Py_ssize_t f32_terms;
    double log_2pi_d_f32;
} mf_mixture;

/* kernel_dual: KernelRidge.predict, kernel(x, fit[i]) @ dual, the kernels of
 * sklearn.metrics.pairwise (no dual: the kernel values themselves);
 * fit_norms: the stored rows' squared norms (rbf); cosine's stored rows come
 * normalised. */
typedef enum {
    MF_KER_LINEAR = 1,
    MF_KER_POLY,
    MF_KER_RBF,
    MF_KER_SIGMOID,
    MF_KER_LAPLACIAN,
    MF_KER_COSINE,
    MF_KER_CHI2,
    MF_KER_ADDITIVE_CHI2
} mf_kernel_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_kernel_rule */
    const double *fit;         /* (n_fit, d) */
    Py_ssize_t n_fit, n_fit_features;
    const double *dual;        /* (n_fit, n_outputs), or NULL */
    Py_ssize_t n_dual_rows, n_dual_cols;
    const double *fit_norms;   /* n_fit, or NULL */
    Py_ssize_t n_fit_norms;
    double gamma, coef0, degree;
} mf_kernel_dual;

/* nearest: the stored centres (KMeans, MeanShift, Birch, ...).  SCORES:
 * -(||c||^2 - 2 x.c) for each centre, so that the first maximum is
 * scikit-learn's first nearest centre; DISTANCES: euclidean_distances. */
typedef enum { MF_NEAREST_SCORES = 1, MF_NEAREST_DISTANCES } mf_nearest_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_nearest_rule */
    const double *centers;     /* (k, d) */
    Py_ssize_t n_centers, n_center_features;
    const double *norms;       /* k: ||c||^2 */
    Py_ssize_t n_norms;
} mf_nearest;

/* bisect: BisectingKMeans.predict, a walk down its tree of centres in
 * preorder (left[i], right[i] after i; -1 at a leaf), to the nearer child
 * each time (the left one at a tie); out: n_clusters columns, 1 at the
 * leaf's label (for a labels node's argmax). */
typedef struct {
    Py_ssize_t n_clusters;
    const int64_t *left, *right, *label;
    Py_ssize_t n_left, n_right, n_label;
    const double *centers;     /* (n_nodes, d) */
    Py_ssize_t n_centers, n_center_features;
    const double *norms;       /* n_nodes: ||c||^2 */
    Py_ssize_t n_norms;
} mf_bisect;

/* spline: SplineTransformer, each column's B-spline basis at x (scipy's
 * BSpline with coefficients coef, de Boor's recursion): CONTINUE
 * extrapolates the end polynomials, ERROR refuses x outside the base knots,
 * PERIODIC maps x into them, CONSTANT keeps the end values of the first and
 * last `degree` splines; NaN gives zeros (handle_missing='zeros').  Without
 * include_bias the last spline of each column is dropped. */
#define MF_SPLINE_MAX_DEGREE 32
#define MF_SPLINE_MAX_SPLINES 4096
typedef enum {
    MF_SPLINE_CONTINUE = 1,
    MF_SPLINE_ERROR,
    MF_SPLINE_PERIODIC,
    MF_SPLINE_CONSTANT
} mf_spline_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_spline_rule */
    Py_ssize_t degree;
    const double *knots;       /* (n_in, n_knots) */
    Py_ssize_t n_knot_rows, n_knot_cols;
    const double *coef;        /* (n_knots - degree - 1, n_splines) */
    Py_ssize_t n_coef_rows, n_coef_cols;
    int include_bias;
    double *f_min, *f_max;     /* made by prepare (CONSTANT): the basis at the ends */
} mf_spline;

/* distances.c: the codes of its rules and preprocess.c's, added to _core.CODES */
int mf_family_codes(PyObject *table);
int mf_preprocess_codes(PyObject *table);

/* ---- preprocessing (preprocess.c) ---- */

/* interp: a table per input column, xp = x[offsets[c] : offsets[c + 1]] and
 * fp = y[...] (np.interp).  CLIP, NAN, RAISE: IsotonicRegression's
 * out_of_bounds (clip to [lo, hi]; NaN outside the thresholds; refuse);
 * QUANTILE_*: QuantileTransformer's forward transform, the mean of the
 * interpolation up (x, y) and down (x2 = -x reversed, y2 = -y reversed),
 * the bounds set to 0 and 1, then for NORMAL the normal quantile, clipped. */
typedef enum {
    MF_INTERP_CLIP = 1,
    MF_INTERP_NAN,
    MF_INTERP_RAISE,
    MF_INTERP_QUANTILE_UNIFORM,
    MF_INTERP_QUANTILE_NORMAL
} mf_interp_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_interp_rule */
    const double *x, *y, *x2, *y2;
    Py_ssize_t n_x, n_y, n_x2, n_y2;
    const int64_t *offsets;    /* n_in + 1 */
    Py_ssize_t n_offsets;
    const double *lo, *hi;     /* CLIP: n_in bounds */
    Py_ssize_t n_lo, n_hi;
    double clip_min, clip_max; /* made by prepare: norm.ppf(1e-7 - eps), its mirror */
} mf_interp;

/* rownorm: Normalizer, x / its row's l1, l2 or max norm (a norm below
 * 10 eps divides by 1). */
typedef enum { MF_ROWNORM_L1 = 1, MF_ROWNORM_L2, MF_ROWNORM_MAX } mf_rownorm_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_rownorm_rule */
} mf_rownorm;

/* bins: KBinsDiscretizer, each column's bin np.searchsorted(inner edges, x,
 * side='right'): the bin number (ordinal) or one-hot columns, every
 * column's n_edges + 1 in turn.  round_f32: x is first cast to float32
 * (dtype=np.float32); out_type: a fixed numpy type, or 0 for X's float. */
typedef struct {
    const double *edges;       /* every column's inner edges, concatenated */
    Py_ssize_t n_edges;
    const int64_t *offsets;    /* n_in + 1 */
    Py_ssize_t n_offsets;
    int onehot;
    int round_f32;
    Py_ssize_t out_type;
} mf_bins;

/* center_kernel: KernelCenterer, ((k - fit_rows) - mean(row)) + fit_all. */
typedef struct {
    const double *fit_rows;    /* K_fit_rows_ */
    Py_ssize_t n_fit_rows;
    double fit_all;            /* K_fit_all_ */
} mf_center_kernel;

/* power: PowerTransformer's Box-Cox (strictly positive input) or
 * Yeo-Johnson transform of each column with its lambda: with pow (its own
 * up to scikit-learn 1.7) or with expm1 and log1p (scipy's, from 1.8). */
typedef enum {
    MF_POWER_BOX_COX = 1,
    MF_POWER_YEO_JOHNSON,
    MF_POWER_YEO_JOHNSON_EXPM1
} mf_power_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_power_rule */
    const double *lambdas;
    Py_ssize_t n_lambdas;
} mf_power;
/* ---- text (text.c) ---- */

/* How _core.text_rows cuts a document into features: the default token
 * pattern, tokens the Python side found with re, characters, characters
 * within words. */
enum { MF_TEXT_WORD = 1, MF_TEXT_TOKENS, MF_TEXT_CHAR, MF_TEXT_CHAR_WB };
/* A row's norm (sparse.norm, sparse.pre_norm). */
enum { MF_TEXT_NORM_NONE = 0, MF_TEXT_NORM_L1 = 1, MF_TEXT_NORM_L2 = 2 };

/* sparse: a document's row, packed by _core.text_rows as bytes of (int64
 * column, float64 value) pairs, columns ascending (a CSR row), read from
 * a key slot.  Each value goes through scikit-learn's steps in order:
 * binary (1), the hashing vectorizer's norm (pre_norm), sublinear tf
 * (numpy's log, + 1), idf; then the row's norm (0 none, 1 l1, 2 l2: the
 * sum in the row's order, a zero sum leaving the row).  With coef the
 * output is the row times coef.T plus intercept, each output summed in
 * the row's order from 0 (scipy's CSR product, as safe_sparse_dot
 * makes it); without, the dense row (n_features columns, int64 when
 * counts).  reverse: after idf the row's order is last column first,
 * zeros left out (scikit-learn up to 1.4 multiplied by idf as a diagonal
 * sparse matrix, and scipy's product lists a row so and drops zeros). */
typedef struct {
    Py_ssize_t n_features;
    int binary;
    Py_ssize_t pre_norm;
    int sublinear;
    const double *idf;         /* n_features, or NULL */
    Py_ssize_t n_idf;
    Py_ssize_t norm;
    const double *coef;        /* (n_outputs, n_features), or NULL */
    Py_ssize_t n_outputs, n_coef_features;
    const double *intercept;   /* n_outputs, or NULL */
    Py_ssize_t n_intercept;
    int counts;                /* the dense row is CountVectorizer's int64 counts */
    int reverse;
    mf_ufunc_loop log;         /* made by prepare (sublinear) */
} mf_sparse;

extern PyTypeObject mf_VocabularyType;
PyObject *mf_text_rows(PyObject *module, PyObject *args);       /* _core.text_rows */
PyObject *mf_text_tokens(PyObject *module, PyObject *arg);      /* _core.text_tokens */
PyObject *mf_text_lower(PyObject *module, PyObject *arg);       /* _core.text_lower */
PyObject *mf_murmurhash3_32(PyObject *module, PyObject *arg);   /* _core.murmurhash3_32 */
/* ---- naive Bayes (bayes.c) ---- */

/* gaussian_nb: GaussianNB's joint log likelihood, class c:
 * log_prior[c] + (norm[c] - 0.5 * sum_j ((x_j - theta[c, j]) ** 2) / var[c, j]),
 * the sum numpy's pairwise one.  log_prior = log(class_prior_) and
 * norm = -0.5 * sum(log(2 pi var_[c])) come from the builder (numpy).  f32:
 * the parameters are float32 (a float32 fit), and float32 input is then
 * computed in float32. */
typedef struct {
    const double *theta;       /* (n_classes, n_features) */
    Py_ssize_t n_classes, n_features;
    const double *var;         /* (n_classes, n_features) */
    Py_ssize_t n_var_rows, n_var_cols;
    const double *log_prior;   /* n_classes */
    Py_ssize_t n_log_prior;
    const double *norm;        /* n_classes */
    Py_ssize_t n_norm;
    int f32;
} mf_gaussian_nb;

/* bernoulli_nb: BernoulliNB with binarize: b = (x > threshold), then
 * b @ coef.T + intercept. */
typedef struct {
    const double *coef;        /* (n_classes, n_features) */
    Py_ssize_t n_classes, n_features;
    const double *intercept;   /* n_classes */
    Py_ssize_t n_intercept;
    double threshold;
} mf_bernoulli_nb;

/* categorical_nb: CategoricalNB: x_j truncated to an integer category
 * (refused when negative or not below n_categories[j]); the row's
 * n_classes values are the sum over features, in order from 0.0, of
 * tables[offsets[j] + category * n_classes + c], then + log_prior[c]. */
typedef struct {
    Py_ssize_t n_classes;
    const double *tables;
    Py_ssize_t n_tables;
    const int64_t *offsets;    /* n_features + 1 */
    Py_ssize_t n_offsets;
    const int64_t *n_categories;   /* n_features */
    Py_ssize_t n_n_categories;
    const double *log_prior;   /* n_classes */
    Py_ssize_t n_log_prior;
} mf_categorical_nb;

/* nb_log_proba: _BaseNB.predict_log_proba: each row minus its
 * scikit-learn _logsumexp. */
typedef struct {
    int unused;
} mf_nb_log_proba;

/* ---- support vector machines (svm.c) ---- */

/* svm: libsvm's decision values.  kernel: libsvm's code (0 linear, 1 poly,
 * 2 rbf, 3 sigmoid).  n_classes 0: regression or one class, one value
 * sum(dual_coef[0] * K) + intercept[0]; n_classes k >= 2: one value per pair
 * (i, j), i < j, support vectors grouped by class (n_support), dual_coef
 * (k - 1, n_sv) as libsvm's sv_coef, intercept = -rho per pair. */
typedef struct {
    Py_ssize_t kernel, degree;
    double gamma, coef0;
    Py_ssize_t n_classes;
    const double *support_vectors; /* (n_sv, n_features) */
    Py_ssize_t n_sv, n_features;
    const double *dual_coef;   /* (n_coef_rows, n_coef_cols) */
    Py_ssize_t n_coef_rows, n_coef_cols;
    const double *intercept;
    Py_ssize_t n_intercept;
    const int64_t *n_support;  /* n_classes, or NULL */
    Py_ssize_t n_n_support;
    int32_t *sv_class;         /* made by prepare: each support vector's class */
} mf_svm;

/* svm_post: from decision values: VOTE libsvm's votes (each class's count
 * of pairs it wins, whose first maximum is libsvm's predict); OVR the input of
 * _ovr_decision_function ([dec < 0, -dec]); NEGATE -dec (binary SVC's
 * decision_function); ADD dec + offset (OneClassSVM.score_samples); PROBA
 * Platt's sigmoids (prob_a, prob_b) coupled pairwise (predict_proba). */
typedef enum {
    MF_SVM_VOTE = 1,
    MF_SVM_OVR,
    MF_SVM_NEGATE,
    MF_SVM_ADD,
    MF_SVM_PROBA
} mf_svm_post_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_svm_post_rule */
    Py_ssize_t n_classes;
    double offset;
    const double *prob_a, *prob_b;
    Py_ssize_t n_prob_a, n_prob_b;
} mf_svm_post;

/* ---- discriminant analysis (discriminant.c) ---- */

/* qda: QuadraticDiscriminantAnalysis._decision_function: class c's score
 * -0.5 * (sum(((x - means[c]) @ W_c) ** 2) + u[c]) + log_prior[c], W_c the
 * (n_features, rank) matrix at weights[c * n_features * rank]. */
typedef struct {
    Py_ssize_t n_classes, rank;
    const double *means;       /* (n_classes, n_features) */
    Py_ssize_t n_mean_rows, n_features;
    const double *weights;
    Py_ssize_t n_weights;
    const double *u;
    Py_ssize_t n_u;
    const double *log_prior;
    Py_ssize_t n_log_prior;
} mf_qda;

/* da_post: DIFF s1 - s0 (binary decision_function); LOG_PROBA and PROBA
 * the log probabilities of DiscriminantAnalysisPredictionMixin (1.6) and
 * their exp; PROBA_OLD exp(s - max) / sum (QDA before 1.6); LOG_TINY
 * log(p), p = 0 raised to the smallest normal (LDA.predict_log_proba). */
typedef enum {
    MF_DA_DIFF = 1,
    MF_DA_LOG_PROBA,
    MF_DA_PROBA,
    MF_DA_PROBA_OLD,
    MF_DA_LOG_TINY
} mf_da_post_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_da_post_rule */
} mf_da_post;

/* ---- neural networks (nn.c) ---- */

/* activation: MLP's activations, element by element (LOGISTIC scipy's
 * expit, TANH, RELU max(x, 0), EXP) or by row (SOFTMAX: x - max, exp,
 * divided by numpy's pairwise sum). */
typedef enum {
    MF_ACT_LOGISTIC = 1,
    MF_ACT_TANH,
    MF_ACT_RELU,
    MF_ACT_EXP,
    MF_ACT_SOFTMAX
} mf_activation_rule;

typedef struct {
    Py_ssize_t rule;           /* mf_activation_rule */
} mf_activation;

/* ---- nearest neighbours (neighbors.c) ---- */

/* knn: each row's k nearest training rows (data), k indices then k
 * distances, nearest first.  mode 0 brute force, 1 a KD-tree, 2 a ball
 * tree: nodes (n_nodes x 3: idx_start, idx_end, is_leaf) over idx_array,
 * bounds the KD-tree's lower then upper corners (2 x n_nodes x n_features)
 * or the ball tree's centroids (n_nodes x n_features) with radius.  metric
 * 1 euclidean, 2 manhattan, 3 chebyshev, 4 minkowski of power p (p is also
 * what a KD-tree's bound raises to: 2, 1, inf, p). */
typedef struct {
    Py_ssize_t mode, metric;
    double p;
    Py_ssize_t k;
    const double *data;        /* (n_train, n_features) */
    Py_ssize_t n_train, n_features;
    const int64_t *idx_array;
    Py_ssize_t n_idx_array;
    const int64_t *nodes;
    Py_ssize_t n_node_fields;
    const double *bounds;
    Py_ssize_t n_bounds;
    const double *radius;
    Py_ssize_t n_radius;
    Py_ssize_t n_nodes;
} mf_knn;

/* knn_vote: KNeighborsClassifier over a knn node's columns: each class's
 * weight (uniform or 1 / distance) as predict_proba normalises it, or
 * (mode_counts) as weighted_mode sums it for predict.  labels: each
 * training row's class index. */
typedef struct {
    Py_ssize_t n_classes, n_train;
    const int64_t *labels;
    Py_ssize_t n_labels;
    int distance, mode_counts;
} mf_knn_vote;

/* knn_mean: KNeighborsRegressor.predict over a knn node's columns. */
typedef struct {
    const double *targets;     /* (n_train, n_targets) */
    Py_ssize_t n_train, n_targets;
    int distance;
} mf_knn_mean;

/* Every op kind (graph.c lists them for the Graph and _core.OPS), by the
 * file that defines it. */
extern const mf_op_def mf_op_affine;        /* transform.c */
extern const mf_op_def mf_op_impute;        /* transform.c */
extern const mf_op_def mf_op_encode;        /* transform.c */
extern const mf_op_def mf_op_linear;        /* linear.c */
extern const mf_op_def mf_op_forest;        /* trees.c */
extern const mf_op_def mf_op_forest_packed; /* trees.c */
extern const mf_op_def mf_op_proba;         /* links.c */
extern const mf_op_def mf_op_labels;        /* links.c */
extern const mf_op_def mf_op_post;          /* links.c */
extern const mf_op_def mf_op_average;       /* ensemble.c */
extern const mf_op_def mf_op_vote;          /* ensemble.c */
extern const mf_op_def mf_op_take;          /* ensemble.c */
extern const mf_op_def mf_op_bag;           /* ensemble.c */
extern const mf_op_def mf_op_samme;         /* ensemble.c */
extern const mf_op_def mf_op_wmedian;       /* ensemble.c */
extern const mf_op_def mf_op_onehot;        /* ensemble.c */
extern const mf_op_def mf_op_constant;      /* ensemble.c */
extern const mf_op_def mf_op_check;         /* ensemble.c */
extern const mf_op_def mf_op_catmap;        /* keys.c */
extern const mf_op_def mf_op_keyfill;       /* keys.c */
extern const mf_op_def mf_op_keymissing;    /* keys.c */
extern const mf_op_def mf_op_tokey;         /* keys.c */
extern const mf_op_def mf_op_calibrate;     /* multiclass.c */
extern const mf_op_def mf_op_normalize;     /* multiclass.c */
extern const mf_op_def mf_op_ovr_argmax;    /* multiclass.c */
extern const mf_op_def mf_op_ovo_votes;     /* multiclass.c */
extern const mf_op_def mf_op_ecoc;          /* multiclass.c */
extern const mf_op_def mf_op_cast;          /* multiclass.c */
extern const mf_op_def mf_op_function;      /* multiclass.c */
extern const mf_op_def mf_op_quadform;      /* distances.c */
extern const mf_op_def mf_op_mixture;       /* distances.c */
extern const mf_op_def mf_op_kernel_dual;   /* distances.c */
extern const mf_op_def mf_op_interp;        /* preprocess.c */
extern const mf_op_def mf_op_rownorm;       /* preprocess.c */
extern const mf_op_def mf_op_bins;          /* preprocess.c */
extern const mf_op_def mf_op_center_kernel; /* preprocess.c */
extern const mf_op_def mf_op_power;         /* preprocess.c */
extern const mf_op_def mf_op_nearest;       /* distances.c */
extern const mf_op_def mf_op_bisect;        /* distances.c */
extern const mf_op_def mf_op_sparse;        /* text.c */
extern const mf_op_def mf_op_xgb_link;      /* gbdt.c */
extern const mf_op_def mf_op_gaussian_nb;   /* bayes.c */
extern const mf_op_def mf_op_bernoulli_nb;  /* bayes.c */
extern const mf_op_def mf_op_categorical_nb;/* bayes.c */
extern const mf_op_def mf_op_nb_log_proba;  /* bayes.c */
extern const mf_op_def mf_op_svm;           /* svm.c */
extern const mf_op_def mf_op_svm_post;      /* svm.c */
extern const mf_op_def mf_op_qda;           /* discriminant.c */
extern const mf_op_def mf_op_da_post;       /* discriminant.c */
extern const mf_op_def mf_op_activation;    /* nn.c */
extern const mf_op_def mf_op_knn;           /* neighbors.c */
extern const mf_op_def mf_op_knn_vote;      /* neighbors.c */
extern const mf_op_def mf_op_knn_mean;      /* neighbors.c */
extern const mf_op_def mf_op_spline;        /* preprocess.c */

/* Blocks of rows go through a graph together, so that each node's loop and
 * a matrix product run over a small matrix that stays in cache. */
#define MF_BLOCK_ROWS 64
#define MF_BIG_BLOCK_ROWS 1024
#define MF_FOREST_CACHE_BYTES (2 << 20)
/* A block's slots for all its rows stay below this many bytes. */
#define MF_BLOCK_BYTES (8 << 20)

/* transform.c */
int mf_check_block(mf_accept accept, const double *x, Py_ssize_t count, mf_err_kind *err);
double mf_round_to(mf_precision prec, double v);

/* linear.c */
int mf_blas_init(void);

/* multiclass.c: {numpy name: code} of MF_FUNCTION_NAMES (_core.CODES) */
PyObject *mf_function_codes(void);
/* multiclass.c: numpy's own loop of ufunc `name` for `type` (kept alive by owners) */
int mf_numpy_loop(const char *name, int type, mf_ufunc_loop *loop, PyObject *owners);

/* trees.c */
void mf_forest_raw(const mf_forest *f, const double *x, Py_ssize_t n_rows, double *raw);

/* ---- the graph and its calls (graph.c, input.c, run.c) ------------------ */

/* The methods a graph may answer; each is a list of slots. */
typedef enum {
    MF_M_PREDICT = 0,
    MF_M_PREDICT_PROBA,
    MF_M_PREDICT_LOG_PROBA,
    MF_M_DECISION_FUNCTION,
    MF_M_TRANSFORM,
    MF_M_SCORE_SAMPLES,
    MF_M_PREDICT_JOINT_LOG_PROBA,
    MF_N_METHODS
} mf_method;

typedef struct {
    const mf_op_def *def;      /* NULL for node 0, the input X */
    void *op;                  /* PyMem: def->size bytes */
    PyObject *name;            /* str: the estimator, in messages */
    mf_accept accept;
    int cast_f32;              /* input rounded to float32 before its check (trees) */
    int unnamed;               /* an inf message names no input (an encoder's own check) */
    Py_ssize_t n_in, n_out;    /* n_out: what the builders say, and prepare agrees */
    const int64_t *inputs;     /* n_in slots, each before `base` */
    Py_ssize_t base;           /* its outputs are slots [base, base + n_out) */
    Py_ssize_t direct;         /* node whose whole output is the input in order, or -1 */
    npy_intp *src_base;        /* PyMem, n_in: the first slot of input i's node */
    npy_intp *src_col;         /* PyMem, n_in: input i's column in that node */
    npy_intp *src_stride;      /* PyMem, n_in: that node's width, from a row to the next */
    double work, steps;        /* a row's cost (mf_op_def.cost) */
} mf_node;

typedef struct {
    int present;
    Py_ssize_t n_cols;
    const int64_t *slots;
    PyArrayObject *classes;    /* or NULL; with it the slots hold class indices */
    int squeeze;               /* a single column is returned 1-D */
    Py_ssize_t n_plan;
    Py_ssize_t *plan;          /* PyMem: the nodes to run, in order */
    Py_ssize_t direct;         /* node whose whole output this is, or -1 */
    npy_intp *src_base, *src_col, *src_stride;   /* PyMem, n_cols (as in mf_node) */
    Py_ssize_t n_owners;
    Py_ssize_t *owners;        /* PyMem: the nodes the slots come from */
    double work, steps;        /* a row's cost over the plan */
} mf_output;

/* What the input dtype makes of each node: types[2 k] is the numpy type
 * node k reads, types[2 k + 1] the one it writes, types[2 n_nodes + m] the
 * one method m returns. */
#define MF_TYPE_CACHE 32

typedef struct {
    PyObject_HEAD
    int ready;                 /* construction finished */
    Py_ssize_t n_features;
    Py_ssize_t n_nodes;        /* nodes[0] is the input */
    mf_node *nodes;
    Py_ssize_t n_slots;
    Py_ssize_t block_rows;     /* rows a block holds (at most) */
    Py_ssize_t widest;         /* the widest input a node gathers, or output */
    mf_output outputs[MF_N_METHODS];
    int *types[MF_TYPE_CACHE]; /* PyMem, per input type_num, filled on first use */
    PyObject *owners;          /* list: arrays whose data the IR points into */
    PyObject *made;            /* tuple: what each node's prepare made, or None */
    PyObject *coerce;          /* callable turning non-arrays into arrays, or NULL */
    PyObject *route;           /* route(graph, method, X): the answer for an input another
                                * graph reads (scipy.sparse), NotImplemented otherwise;
                                * called for what is not an ndarray; or NULL */
    int strings;               /* what the input does with strings (MF_STRINGS_*) */
    PyObject *string_prefix;   /* put before a failed conversion's message, or NULL */
    PyObject *names_warning;   /* warned when an array meets a model fitted on names */
    PyObject *first_name;      /* the estimator that checks X first, in messages */
    /* keys: slots [n_features, n_features + n_keys) of the input hold the
     * keys of input columns key_columns[t]; uint8 per slot: its kind */
    Py_ssize_t n_keys;
    const int64_t *key_columns;
    Py_ssize_t *key_of_column; /* PyMem, n_features: its key slot - n_features, or -1 */
    uint8_t *num_read;         /* PyMem, n_features: some node reads the number */
    uint8_t *kinds;            /* PyMem, n_slots: mf_slot_kind */
    PyObject *explain;         /* callable making an unknown category's message, or NULL */
    PyObject *column_names;    /* tuple: the input columns' names, in messages, or NULL */
} mf_Graph;

/* What the input does with an array of strings: refuse it as
 * dtype='numeric' does, convert it as dtype=float64 does, or refuse it as
 * SimpleImputer(strategy='most_frequent'|'constant') does. */
enum { MF_STRINGS_REFUSE = 0, MF_STRINGS_CONVERT = 1, MF_STRINGS_IMPUTER = 2 };

/* One column of the caller's rows, read in place (data NULL: no node
 * reads its numbers). */
typedef struct {
    const char *data;
    npy_intp stride;
    int type_num;
} mf_column;

/* The caller's rows, read in place: a 2-D array, or (columns not NULL)
 * one 1-D array a column; and the keys of the key slots, n_rows x n_keys,
 * made before the run. */
typedef struct {
    const char *data;
    npy_intp n_rows, n_cols;
    npy_intp row_stride, col_stride;
    int type_num;              /* of the numbers (columns: their promotion) */
    const mf_column *columns;
    const uint64_t *keys;
    Py_ssize_t n_keys;
} mf_input;

/* What a call's input owns until the call returns. */
typedef struct {
    PyObject *arrays;          /* list: the arrays read (converted, or the caller's) */
    PyObject *source;          /* list: each column as the caller gave it, or NULL */
    mf_column *columns;        /* PyMem */
    uint64_t *keys;            /* PyMem */
    double *numbers;           /* PyMem: rows read from dicts */
    mf_keystore store;
} mf_hold;

/* input.c */
int mf_input_read(mf_Graph *g, PyObject *X, mf_hold *hold, mf_input *in);
void mf_input_release(mf_hold *hold);
void mf_input_gather(const mf_input *in, npy_intp r0, npy_intp nr, double *dst);

/* IEEE half to double, exactly (npymath is not linked). */
static inline double
mf_half_to_double(npy_uint16 h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    double v;
    if (exp == 0) {
        v = ldexp((double)mant, -24);
    }
    else if (exp == 31) {
        v = mant ? NAN : INFINITY;
    }
    else {
        v = ldexp((double)(mant | 0x400), exp - 25);
    }
    return (h & 0x8000) ? -v : v;
}

/* numpy's pairwise summation of n contiguous doubles (np.sum along a row):
 * one after the other from -0.0 below 8 values, eight accumulators up to
 * 128, beyond that split in two, the first part a multiple of 8. */
static inline double
mf_pairwise_sum(const double *a, Py_ssize_t n)
{
    Py_ssize_t i;
    int k;
    double res;

    if (n < 8) {
        res = -0.0;
        for (i = 0; i < n; i++) {
            res += a[i];
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
                r[k] += a[i + k];
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
        return mf_pairwise_sum(a, n2) + mf_pairwise_sum(a + n2, n - n2);
    }
}

/* np.max of n >= 1 values: NaN if any is NaN. */
static inline double
mf_row_max(const double *a, Py_ssize_t n)
{
    double m = a[0];
    Py_ssize_t i;
    for (i = 0; i < n && !isnan(m); i++) {
        if (isnan(a[i]) || a[i] > m) {
            m = a[i];
        }
    }
    return m;
}

/* run.c */
PyObject *mf_graph_call(mf_Graph *g, PyObject *X, mf_method method);
const int *mf_graph_types(mf_Graph *g, int input_type);
int mf_promote_types(int a, int b);

/* graph.c: the Graph type (construction, methods) */
extern PyTypeObject mf_GraphType;
extern const char *const mf_method_names[MF_N_METHODS];
PyObject *mf_ops_table(void);     /* _core.OPS */
PyObject *mf_codes_table(void);   /* _core.CODES */
PyObject *mf_op_kinds_table(void);   /* _core.OP_KINDS */
int mf_take_array(PyObject *owners, PyObject *obj, int type_num, int ndim, const char *what,
                  const void **data, Py_ssize_t *dim0, Py_ssize_t *dim1);

/* pool.c: the helper threads */
int mf_get_num_threads(void);
int mf_set_num_threads(int n);
int mf_pool_init(void);      /* once, at import: the pool's fork handler */
typedef void (*mf_task_fn)(void *task);
void mf_pool_run(mf_task_fn fn, void *tasks, size_t task_size, int n_tasks);

/* tally.c: the serving metrics' per-request counts */
extern PyTypeObject mf_TallyType;

#endif /* MLFAST_H */
