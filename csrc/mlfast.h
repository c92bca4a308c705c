/*
 * mlfast.h -- the one header shared by the C files of mlfast._core.
 *
 * It declares:
 *   - the exception objects and value types (Record, Global) of the
 *     restricted unpickler (unpickle.c, values.c);
 *   - the model IR: plain structs of arrays that the builders fill through
 *     the constructors in chain.c and that the kernels (transform.c,
 *     linear.c) only read.
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
    MF_G_RECORD             /* scikit-learn classes, numpy random states */
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
typedef enum { MF_F64 = 0, MF_F32 = 1 } mf_precision;

/* Which non-finite values a stage accepts on its input. */
typedef enum {
    MF_ACCEPT_FINITE = 0,   /* NaN and inf are errors */
    MF_ACCEPT_NAN = 1,      /* NaN passes, inf is an error */
    MF_ACCEPT_ANY = 2
} mf_accept;

typedef enum {
    MF_STEP_AFFINE = 1,     /* the scalers: sub, mul, div, add, clip in that order */
    MF_STEP_IMPUTE          /* fill missing, drop empty columns, add indicators */
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
    const npy_intp *keep;               /* n_keep input columns kept, in order */
    Py_ssize_t n_keep;
    const npy_intp *indicator;          /* input columns of the missing indicator */
    Py_ssize_t n_indicator;
} mf_step;

/* A linear final estimator: raw = X @ coef.T + intercept. */
typedef struct {
    Py_ssize_t n_features, n_outputs;
    const double *coef;        /* (n_outputs, n_features), row-major */
    const double *intercept;   /* n_outputs */
} mf_linear;

typedef enum { MF_FINAL_NONE = 0, MF_FINAL_LINEAR = 1 } mf_final_kind;

/* How a classifier turns raw scores into a label index. */
typedef enum {
    MF_LABEL_NONE = 0,         /* a regressor: raw is the prediction */
    MF_LABEL_THRESHOLD,        /* one score column: index = score > 0 */
    MF_LABEL_ARGMAX            /* first maximum */
} mf_label_rule;

/* How predict_proba is computed from raw scores. */
typedef enum {
    MF_PROBA_NONE = 0,
    MF_PROBA_EXPIT_OVR,        /* sklearn's _predict_proba_lr */
    MF_PROBA_SOFTMAX,          /* softmax of the score rows */
    MF_PROBA_SOFTMAX_BINARY,   /* softmax of [-d, d] (old multinomial binary LR) */
    MF_PROBA_MODIFIED_HUBER    /* SGDClassifier(loss='modified_huber') */
} mf_proba_rule;

/* Blocks of rows go through a chain together, so that each step's loop and
 * the final matrix product run over a small matrix that stays in cache. */
#define MF_BLOCK_ROWS 64

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
void mf_proba(mf_proba_rule rule, const double *raw, Py_ssize_t n_rows,
              Py_ssize_t n_raw, double *proba);
void mf_labels(mf_label_rule rule, const double *raw, Py_ssize_t n_rows,
               Py_ssize_t n_raw, npy_intp *index);
int mf_blas_init(void);

/* chain.c */
extern PyTypeObject mf_ChainType;
int mf_get_num_threads(void);
int mf_set_num_threads(int n);

#endif /* MLFAST_H */
