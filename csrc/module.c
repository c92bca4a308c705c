/*
 * module.c -- mlfast._core: exceptions, types and module functions.
 */
#define MLFAST_IMPORT_ARRAY
#include "mlfast.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

PyObject *mf_MlfastError = NULL;
PyObject *mf_ModelFormatError = NULL;
PyObject *mf_UnsafeModelError = NULL;
PyObject *mf_UnsupportedModelError = NULL;

static PyObject *
core_set_num_threads(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > 1024) {
        PyErr_Format(PyExc_ValueError, "number of threads must be 1..1024, got %ld", n);
        return NULL;
    }
    mf_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *
core_get_num_threads(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
    return PyLong_FromLong(mf_get_num_threads());
}

/* Loading a large model frees as much as it keeps (the value tree, the
 * builders' arrays); glibc holds freed memory in its arenas unless asked. */
static PyObject *
core_trim_memory(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(arg))
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    Py_RETURN_NONE;
}

static PyMethodDef core_methods[] = {
    {"unpickle", (PyCFunction)(void (*)(void))mf_unpickle, METH_VARARGS | METH_KEYWORDS,
     "unpickle(data, *, max_memory=2**31)\n--\n\n"
     "Run the restricted pickle VM over a bytes-like object and return the value "
     "tree. Nothing named in the data is imported or called."},
    {"classify_global", mf_classify_global, METH_VARARGS,
     "classify_global(module, name, /)\n--\n\n"
     "How the VM treats a global: its kind, or 0 if it is refused."},
    {"set_num_threads", core_set_num_threads, METH_O,
     "set_num_threads(n, /)\n--\n\nThreads used for large batches."},
    {"get_num_threads", core_get_num_threads, METH_NOARGS,
     "get_num_threads()\n--\n\nThreads used for large batches."},
    {"encode_keys", mf_encode_keys, METH_O,
     "encode_keys(values, /)\n--\n\n"
     "The keys of a 1-D array of categories, as (tags, nums, text, text_offsets): "
     "the same keys the input makes of the caller's values."},
    {"decode_keys", mf_decode_keys, METH_VARARGS,
     "decode_keys(tags, nums, text, text_offsets, /)\n--\n\n"
     "The values of encode_keys' arrays, as a list."},
    {"text_rows", mf_text_rows, METH_VARARGS,
     "text_rows(docs, analyzer, ngram_min, ngram_max, vocabulary, stop_words, n_features, "
     "alternate_sign, lowercase, /)\n--\n\n"
     "Each document's features, looked up in the vocabulary (or hashed), as a packed sparse "
     "row: bytes of (int64 column, float64 value) pairs."},
    {"text_tokens", mf_text_tokens, METH_O,
     "text_tokens(doc, /)\n--\n\nThe tokens of (?u)\\b\\w\\w+\\b in a str."},
    {"text_lower", mf_text_lower, METH_O,
     "text_lower(doc, /)\n--\n\nA str lowercased as text_rows lowercases documents."},
    {"murmurhash3_32", mf_murmurhash3_32, METH_O,
     "murmurhash3_32(data, /)\n--\n\nMurmurHash3 (x86, 32 bits, seed 0) of bytes, signed."},
    {"trim_memory", core_trim_memory, METH_NOARGS,
     "trim_memory()\n--\n\nReturn freed heap memory to the system (glibc)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mlfast._core",
    .m_doc = "mlfast's C engine: the restricted unpickler and the model kernels.",
    .m_size = -1,
    .m_methods = core_methods,
};

static int
add_exception(PyObject *m, PyObject **slot, const char *name, PyObject *base, const char *doc)
{
    char qualified[128];
    PyOS_snprintf(qualified, sizeof(qualified), "mlfast.%s", name);
    *slot = PyErr_NewExceptionWithDoc(qualified, doc, base, NULL);
    if (*slot == NULL) {
        return -1;
    }
    Py_INCREF(*slot);
    if (PyModule_AddObject(m, name, *slot) < 0) {
        Py_DECREF(*slot);
        return -1;
    }
    return 0;
}

static int
add_type(PyObject *m, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* Adds obj (a new reference, or NULL after an error) to the module. */
static int
add_owned(PyObject *m, const char *name, PyObject *obj)
{
    if (obj == NULL) {
        return -1;
    }
    if (PyModule_AddObject(m, name, obj) < 0) {
        Py_DECREF(obj);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__core(void)
{
    PyObject *m = NULL, *kinds = NULL;

    import_array();

    m = PyModule_Create(&core_module);
    if (m == NULL) {
        return NULL;
    }
    if (add_exception(m, &mf_MlfastError, "MlfastError", PyExc_ValueError,
                      "Base class of mlfast's errors (a ValueError).") < 0 ||
        add_exception(m, &mf_ModelFormatError, "ModelFormatError", mf_MlfastError,
                      "The file is corrupt, truncated or not a model pickle.") < 0 ||
        add_exception(m, &mf_UnsafeModelError, "UnsafeModelError", mf_MlfastError,
                      "The file names a global or uses an opcode that mlfast "
                      "refuses to run.") < 0 ||
        add_exception(m, &mf_UnsupportedModelError, "UnsupportedModelError", mf_MlfastError,
                      "A valid file holding something mlfast does not serve.") < 0) {
        goto error;
    }
    if (add_type(m, &mf_GlobalType, "Global") < 0 || add_type(m, &mf_RecordType, "Record") < 0 ||
        add_type(m, &mf_GraphType, "Graph") < 0 || add_type(m, &mf_TallyType, "RequestTally") < 0 ||
        add_type(m, &mf_VocabularyType, "Vocabulary") < 0 || mf_unpickle_init_types() < 0) {
        goto error;
    }
    kinds = Py_BuildValue(
        "{sisisisisisisisisisisisisisisisisisisisisisisisi}", "reconstruct", MF_G_RECONSTRUCT,
        "scalar", MF_G_SCALAR, "frombuffer", MF_G_FROMBUFFER, "dtype", MF_G_DTYPE, "ndarray",
        MF_G_NDARRAY, "joblib_wrapper", MF_G_JOBLIB_WRAPPER, "codecs_encode", MF_G_CODECS_ENCODE,
        "reconstructor", MF_G_RECONSTRUCTOR, "set", MF_G_SET, "frozenset", MF_G_FROZENSET,
        "bytearray", MF_G_BYTEARRAY, "complex", MF_G_COMPLEX, "ordereddict", MF_G_ORDEREDDICT,
        "object", MF_G_OBJECT, "typeref", MF_G_TYPEREF, "record", MF_G_RECORD, "partial",
        MF_G_PARTIAL, "slice", MF_G_SLICE, "bytes", MF_G_BYTES, "getattr", MF_G_GETATTR, "function",
        MF_G_FUNCTION, "ufunc_reconstruct", MF_G_UFUNC_RECONSTRUCT, "defaultdict", MF_G_DEFAULTDICT,
        "unknown", MF_G_UNKNOWN);
    if (kinds == NULL || PyModule_AddObject(m, "GLOBAL_KINDS", kinds) < 0) {
        Py_XDECREF(kinds);
        goto error;
    }
    if (add_owned(m, "OPS", mf_ops_table()) < 0 || add_owned(m, "CODES", mf_codes_table()) < 0 ||
        add_owned(m, "OP_KINDS", mf_op_kinds_table()) < 0) {
        goto error;
    }
    if (mf_blas_init() < 0) {
        goto error;
    }
    if (mf_pool_init() < 0) {
        PyErr_SetString(PyExc_RuntimeError, "mlfast: pthread_atfork failed");
        goto error;
    }
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
