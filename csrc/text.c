/*
 * text.c -- documents as sparse rows (CountVectorizer, TfidfVectorizer,
 * HashingVectorizer, TfidfTransformer) and the op that weighs a sparse row
 * and multiplies it by a linear model's coefficients.
 *
 * Analysis runs at input, under the GIL (_core.text_rows): each document,
 * already lowercased and stripped of accents by the Python side (str.lower
 * and unicodedata, scikit-learn's own calls), is cut into features as
 * scikit-learn's analyzers cut it, each feature looked up in the
 * vocabulary (a Vocabulary: a hash table over the terms' UTF-8, built at
 * load) or hashed (murmurhash3_32, as sklearn.utils.murmurhash3_32), and
 * the row is packed as bytes: (int64 column, float64 value) pairs, columns
 * ascending, duplicates summed -- scikit-learn's CSR row after
 * sort_indices or sum_duplicates.  The keys of the input hold that bytes
 * object in place; the `sparse` op reads it (run, without the GIL).
 *
 * The default token pattern (?u)\b\w\w+\b is done here: \w is
 * Py_UNICODE_ISALNUM or '_', the test _sre itself makes, so a token is a
 * maximal run of two or more word characters (a boundary cannot fall
 * inside a run).  Any other pattern is run by the stdlib re on the Python
 * side, which hands the tokens over (TOKENS).
 */
#include "mlfast.h"
#include <string.h>

/* Caps: a vocabulary's terms and their text, and one document's features,
 * so that no size overflows and a lying file cannot ask for more. */
#define MF_MAX_TERMS     ((Py_ssize_t)1 << 26)
#define MF_MAX_TERM_TEXT ((Py_ssize_t)1 << 31)
#define MF_MAX_NGRAM     64


/* ---- growable buffers (input time: the GIL is held, errors are raised) ---- */

typedef struct {
    char *data;
    size_t len, cap;
} mf_buf;

static int
buf_reserve(mf_buf *b, size_t extra)
{
    size_t want;
    char *p;
    if (b->len + extra <= b->cap) {
        return 0;
    }
    want = b->cap ? b->cap : 256;
    while (want < b->len + extra) {
        if (want > ((size_t)1 << 40)) {
            PyErr_NoMemory();
            return -1;
        }
        want *= 2;
    }
    p = PyMem_Realloc(b->data, want);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = want;
    return 0;
}

static int
buf_append(mf_buf *b, const void *src, size_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* ---- hashing of terms ----------------------------------------------------------- */

static uint64_t
term_hash(const char *data, Py_ssize_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    Py_ssize_t i;
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 0x100000001b3ULL;
    }
    h ^= (uint64_t)len;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 29;
    return h;
}

static inline uint32_t
rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* MurmurHash3's x86 32-bit variant, seed 0, as a signed int: what
 * sklearn.utils.murmurhash3_32(key, positive=False) gives for the UTF-8 of
 * a str. */
static int32_t
murmur3_32(const unsigned char *data, Py_ssize_t len)
{
    const uint32_t c1 = 0xcc9e2d51U, c2 = 0x1b873593U;
    uint32_t h = 0, k;
    Py_ssize_t i, blocks = len / 4;
    const unsigned char *tail = data + blocks * 4;

    for (i = 0; i < blocks; i++) {
        k = (uint32_t)data[4 * i] | ((uint32_t)data[4 * i + 1] << 8) |
            ((uint32_t)data[4 * i + 2] << 16) | ((uint32_t)data[4 * i + 3] << 24);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64U;
    }
    k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= (uint32_t)tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        break;
    default:
        break;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bU;
    h ^= h >> 13;
    h *= 0xc2b2ae35U;
    h ^= h >> 16;
    return (int32_t)h;
}

/* ---- Vocabulary: terms (UTF-8) -> columns ------------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n_terms;
    char *text;              /* PyMem: every term's UTF-8, concatenated */
    int64_t *offsets;        /* PyMem: n_terms + 1 */
    int64_t *columns;        /* PyMem: n_terms */
    int32_t *slots;          /* PyMem: open addressing, -1 empty */
    uint64_t mask;
    int32_t max_probe;
} mf_Vocabulary;

static void
vocab_dealloc(mf_Vocabulary *v)
{
    PyMem_Free(v->text);
    PyMem_Free(v->offsets);
    PyMem_Free(v->columns);
    PyMem_Free(v->slots);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static inline int64_t
vocab_find(const mf_Vocabulary *v, const char *data, Py_ssize_t len)
{
    uint64_t h = term_hash(data, len);
    int32_t probe;
    if (v->n_terms == 0) {
        return -1;
    }
    for (probe = 0; probe <= v->max_probe; probe++) {
        int32_t t = v->slots[(h + (uint64_t)probe) & v->mask];
        if (t < 0) {
            return -1;
        }
        if (v->offsets[t + 1] - v->offsets[t] == len &&
            memcmp(v->text + v->offsets[t], data, (size_t)len) == 0) {
            return v->columns[t];
        }
    }
    return -1;
}

/* Vocabulary(text, offsets, columns): term t is text[offsets[t]:offsets[t + 1]]
 * (UTF-8 bytes, a uint8 array), its column columns[t]. */
static PyObject *
vocab_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"text", "offsets", "columns", NULL};
    PyObject *text_obj, *offsets_obj, *columns_obj;
    PyArrayObject *text = NULL, *offsets = NULL, *columns = NULL;
    mf_Vocabulary *v = NULL;
    Py_ssize_t n, n_text, t, size = 2;
    const int64_t *off, *col;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:Vocabulary", kwlist, &text_obj,
                                     &offsets_obj, &columns_obj)) {
        return NULL;
    }
    text = (PyArrayObject *)PyArray_FROMANY(text_obj, NPY_UINT8, 1, 1, NPY_ARRAY_CARRAY_RO);
    offsets = text == NULL ? NULL
                           : (PyArrayObject *)PyArray_FROMANY(offsets_obj, NPY_INT64, 1, 1,
                                                              NPY_ARRAY_CARRAY_RO);
    columns = offsets == NULL ? NULL
                              : (PyArrayObject *)PyArray_FROMANY(columns_obj, NPY_INT64, 1, 1,
                                                                 NPY_ARRAY_CARRAY_RO);
    if (columns == NULL) {
        goto error;
    }
    n = PyArray_DIM(columns, 0);
    n_text = PyArray_DIM(text, 0);
    off = (const int64_t *)PyArray_DATA(offsets);
    col = (const int64_t *)PyArray_DATA(columns);
    if (n > MF_MAX_TERMS || n_text > MF_MAX_TERM_TEXT || PyArray_DIM(offsets, 0) != n + 1 ||
        off[0] != 0 || off[n] != n_text) {
        PyErr_Format(PyExc_ValueError,
                     "Vocabulary: %zd terms, %zd offsets and %zd bytes of "
                     "text do not fit (at most %zd terms)",
                     n, PyArray_DIM(offsets, 0), n_text, MF_MAX_TERMS);
        goto error;
    }
    for (t = 0; t < n; t++) {
        if (off[t + 1] < off[t] || col[t] < 0) {
            PyErr_Format(PyExc_ValueError,
                         "Vocabulary: term %zd has offsets %lld..%lld and "
                         "column %lld",
                         t, (long long)off[t], (long long)off[t + 1], (long long)col[t]);
            goto error;
        }
    }
    v = (mf_Vocabulary *)type->tp_alloc(type, 0);
    if (v == NULL) {
        goto error;
    }
    while (size < 2 * n) {
        size *= 2;
    }
    v->text = PyMem_Malloc((size_t)(n_text > 0 ? n_text : 1));
    v->offsets = PyMem_Malloc((size_t)(n + 1) * sizeof(int64_t));
    v->columns = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    v->slots = PyMem_Malloc((size_t)size * sizeof(int32_t));
    if (v->text == NULL || v->offsets == NULL || v->columns == NULL || v->slots == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    memcpy(v->text, PyArray_DATA(text), (size_t)n_text);
    memcpy(v->offsets, off, (size_t)(n + 1) * sizeof(int64_t));
    memcpy(v->columns, col, (size_t)n * sizeof(int64_t));
    memset(v->slots, 0xff, (size_t)size * sizeof(int32_t));
    v->mask = (uint64_t)(size - 1);
    v->n_terms = n;
    for (t = 0; t < n; t++) {
        const char *data = v->text + off[t];
        Py_ssize_t len = (Py_ssize_t)(off[t + 1] - off[t]);
        uint64_t h = term_hash(data, len);
        int32_t probe = 0;
        for (;;) {
            int32_t *slot = v->slots + ((h + (uint64_t)probe) & v->mask);
            if (*slot < 0) {
                *slot = (int32_t)t;
                break;
            }
            if (off[*slot + 1] - off[*slot] == len &&
                memcmp(v->text + off[*slot], data, (size_t)len) == 0) {
                PyErr_Format(PyExc_ValueError, "Vocabulary: term %zd is also term %d", t,
                             (int)*slot);
                goto error;
            }
            probe++;
        }
        if (probe > v->max_probe) {
            v->max_probe = probe;
        }
    }
    Py_DECREF(text);
    Py_DECREF(offsets);
    Py_DECREF(columns);
    return (PyObject *)v;
error:
    Py_XDECREF(text);
    Py_XDECREF(offsets);
    Py_XDECREF(columns);
    Py_XDECREF(v);
    return NULL;
}

static Py_ssize_t
vocab_len(mf_Vocabulary *v)
{
    return v->n_terms;
}

static PySequenceMethods vocab_as_sequence = {
    .sq_length = (lenfunc)vocab_len,
};

PyTypeObject mf_VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Vocabulary",
    .tp_basicsize = sizeof(mf_Vocabulary),
    .tp_dealloc = (destructor)vocab_dealloc,
    .tp_as_sequence = &vocab_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Vocabulary(text, offsets, columns)\n--\n\n"
              "Terms (UTF-8, concatenated) and their columns, hashed once: "
              "a vectorizer's vocabulary_ or its stop words.",
    .tp_new = vocab_new,
};

/* ---- analysis ------------------------------------------------------------------ */

/* A document's code points and their UTF-8: cp[i] is code point i, its
 * bytes utf8[at[i] : at[i + 1]].  Lone surrogates take three bytes
 * ("surrogatepass"), as the terms do. */
typedef struct {
    Py_UCS4 *cp;
    Py_ssize_t n, cap;
    char *utf8;
    Py_ssize_t n_bytes, cap_bytes;
    Py_ssize_t *at;
} mf_doc;

static int
doc_reserve(mf_doc *d, Py_ssize_t n)
{
    if (n + 1 > d->cap) {
        Py_ssize_t cap = d->cap ? d->cap : 256;
        Py_UCS4 *cp;
        Py_ssize_t *at;
        char *utf8;
        while (cap < n + 1) {
            cap *= 2;
        }
        cp = PyMem_Realloc(d->cp, (size_t)cap * sizeof(Py_UCS4));
        if (cp == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d->cp = cp;
        at = PyMem_Realloc(d->at, (size_t)(cap + 1) * sizeof(Py_ssize_t));
        if (at == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d->at = at;
        utf8 = PyMem_Realloc(d->utf8, (size_t)cap * 4);
        if (utf8 == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d->utf8 = utf8;
        d->cap = cap;
    }
    return 0;
}

static Py_ssize_t
put_utf8(char *dst, Py_UCS4 c)
{
    if (c < 0x80) {
        dst[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        dst[0] = (char)(0xc0 | (c >> 6));
        dst[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        dst[0] = (char)(0xe0 | (c >> 12));
        dst[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (c >> 18));
    dst[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* \w of the Basic Multilingual Plane, one bit a code point, made once
 * (under the GIL) from the test _sre makes. */
static uint8_t bmp_word[0x10000 / 8];
static int bmp_word_ready;

static void
bmp_word_init(void)
{
    Py_UCS4 c;
    if (bmp_word_ready) {
        return;
    }
    for (c = 0; c < 0x10000; c++) {
        if (Py_UNICODE_ISALNUM(c) || c == '_') {
            bmp_word[c >> 3] |= (uint8_t)(1u << (c & 7));
        }
    }
    bmp_word_ready = 1;
}

static inline int
is_word(Py_UCS4 c)
{
    if (c < 0x10000) {
        return (bmp_word[c >> 3] >> (c & 7)) & 1;
    }
    return Py_UNICODE_ISALNUM(c) || c == '_';
}

/* str.lower() of one code point, for a text holding neither U+0130 (whose
 * lowercase is two code points) nor U+03A3 (whose lowercase depends on
 * its neighbours): the simple lowercase mapping.  The tests check every
 * code point against str.lower(). */
static inline Py_UCS4
lower_of(Py_UCS4 c)
{
    if (c < 0x80) {
        return c >= 'A' && c <= 'Z' ? c + 32u : c;
    }
    return Py_UNICODE_TOLOWER(c);
}

/* Fills d->utf8 and d->at from d->cp[0 .. d->n). */
static void
doc_encode(mf_doc *d)
{
    Py_ssize_t i, pos = 0;
    for (i = 0; i < d->n; i++) {
        d->at[i] = pos;
        pos += put_utf8(d->utf8 + pos, d->cp[i]);
    }
    d->at[d->n] = pos;
    d->n_bytes = pos;
}

/* Reads a str's code points, lowercased (lower: as str.lower() does);
 * normalize_space: runs of two or more whitespace characters become one
 * ' ' (the analyzers' \s\s+ -> ' '). */
static int
doc_read(mf_doc *d, PyObject *s, int lower, int normalize_space)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i, out = 0;
    int kind, result = -1;
    const void *data;
    PyObject *lowered = NULL;

    if (lower && !PyUnicode_IS_ASCII(s) &&
        (PyUnicode_FindChar(s, 0x130, 0, n, 1) != -1 ||
         PyUnicode_FindChar(s, 0x3a3, 0, n, 1) != -1)) {
        /* the two code points the simple mapping does not give: str.lower */
        lowered = PyObject_CallMethod(s, "lower", NULL);
        if (lowered == NULL) {
            return -1;
        }
        if (!PyUnicode_Check(lowered)) {
            PyErr_SetString(PyExc_TypeError, "str.lower() did not return a str");
            goto done;
        }
        s = lowered;
        lower = 0;
        n = PyUnicode_GET_LENGTH(s);
    }
    kind = PyUnicode_KIND(s);
    data = PyUnicode_DATA(s);
    if (doc_reserve(d, n) < 0) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (normalize_space && Py_UNICODE_ISSPACE(c) && i + 1 < n &&
            Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i + 1))) {
            while (i + 1 < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i + 1))) {
                i++;
            }
            c = ' ';
        }
        d->cp[out++] = lower ? lower_of(c) : c;
    }
    d->n = out;
    doc_encode(d);
    result = 0;
done:
    Py_XDECREF(lowered);
    return result;
}

/* A feature's sink: the row's (column, value) pairs as they come. */
typedef struct {
    const mf_Vocabulary *vocab;   /* or NULL: hashing */
    Py_ssize_t n_features;        /* hashing */
    int alternate_sign;           /* hashing */
    mf_buf pairs;                 /* int64 column, double value */
} mf_sink;

static int
emit(mf_sink *s, const char *data, Py_ssize_t len)
{
    int64_t column;
    double value = 1.0;
    char pair[16];
    if (s->vocab != NULL) {
        column = vocab_find(s->vocab, data, len);
        if (column < 0) {
            return 0;
        }
    }
    else {
        int32_t h = murmur3_32((const unsigned char *)data, len);
        int64_t nf = (int64_t)s->n_features;
        if (h == INT32_MIN) {
            /* _hashing_fast.transform's own case for abs(INT_MIN), with
             * Python's modulo */
            column = ((int64_t)2147483647 - (nf - 1)) % nf;
            if (column < 0) {
                column += nf;
            }
        }
        else {
            column = (int64_t)(h < 0 ? -h : h) % nf;
        }
        if (s->alternate_sign && h < 0) {
            value = -1.0;
        }
    }
    memcpy(pair, &column, 8);
    memcpy(pair + 8, &value, 8);
    return buf_append(&s->pairs, pair, 16);
}

/* Tokens: (byte offset, byte length) in a text buffer. */
typedef struct {
    Py_ssize_t start, len;
} mf_span;

/* Word n-grams of the tokens (after stop words), joined by ' ' as
 * _word_ngrams joins them. */
static int
word_ngrams(mf_sink *s, const char *text, const mf_span *tok, Py_ssize_t n_tok, int min_n,
            int max_n, mf_buf *scratch)
{
    Py_ssize_t i;
    int n;
    for (n = min_n; n <= max_n && n <= n_tok; n++) {
        for (i = 0; i + n <= n_tok; i++) {
            if (n == 1) {
                if (emit(s, text + tok[i].start, tok[i].len) < 0) {
                    return -1;
                }
                continue;
            }
            scratch->len = 0;
            {
                int m;
                for (m = 0; m < n; m++) {
                    if ((m > 0 && buf_append(scratch, " ", 1) < 0) ||
                        buf_append(scratch, text + tok[i + m].start, (size_t)tok[i + m].len) < 0) {
                        return -1;
                    }
                }
            }
            if (emit(s, scratch->data, (Py_ssize_t)scratch->len) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Character n-grams of code points cp[0 .. n) whose UTF-8 is at[] into
 * utf8 (_char_ngrams). */
static int
char_ngrams(mf_sink *s, const char *utf8, const Py_ssize_t *at, Py_ssize_t n, int min_n, int max_n)
{
    Py_ssize_t i;
    int k;
    for (k = min_n; k <= max_n && k <= n; k++) {
        for (i = 0; i + k <= n; i++) {
            if (emit(s, utf8 + at[i], at[i + k] - at[i]) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* _char_wb_ngrams: each whitespace-separated word padded with ' ' on both
 * sides; a word shorter than n gives itself once. */
static int
char_wb_ngrams(mf_sink *s, const mf_doc *d, int min_n, int max_n, mf_buf *scratch,
               Py_ssize_t **at_buf, Py_ssize_t *at_cap)
{
    Py_ssize_t i = 0, j, m;
    while (i < d->n) {
        Py_ssize_t w_len, pos;
        int k;
        if (Py_UNICODE_ISSPACE(d->cp[i])) {
            i++;
            continue;
        }
        j = i;
        while (j < d->n && !Py_UNICODE_ISSPACE(d->cp[j])) {
            j++;
        }
        w_len = j - i + 2;
        if (w_len + 1 > *at_cap) {
            Py_ssize_t *p = PyMem_Realloc(*at_buf, (size_t)(w_len + 1) * 2 * sizeof(Py_ssize_t));
            if (p == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            *at_buf = p;
            *at_cap = (w_len + 1) * 2;
        }
        scratch->len = 0;
        if (buf_append(scratch, " ", 1) < 0 ||
            buf_append(scratch, d->utf8 + d->at[i], (size_t)(d->at[j] - d->at[i])) < 0 ||
            buf_append(scratch, " ", 1) < 0) {
            return -1;
        }
        (*at_buf)[0] = 0;
        for (m = 0; m < j - i; m++) {
            (*at_buf)[m + 1] = 1 + d->at[i + m] - d->at[i];
        }
        (*at_buf)[w_len - 1] = 1 + d->at[j] - d->at[i];
        (*at_buf)[w_len] = (Py_ssize_t)scratch->len;
        for (k = min_n; k <= max_n; k++) {
            Py_ssize_t offset = 0, end = k < w_len ? k : w_len;
            const Py_ssize_t *at = *at_buf;
            if (emit(s, scratch->data + at[0], at[end] - at[0]) < 0) {
                return -1;
            }
            while (offset + k < w_len) {
                offset++;
                pos = offset + k < w_len ? offset + k : w_len;
                if (emit(s, scratch->data + at[offset], at[pos] - at[offset]) < 0) {
                    return -1;
                }
            }
            if (offset == 0) {
                break;
            }
        }
        i = j;
    }
    return 0;
}

static int
compare_pairs(const void *a, const void *b)
{
    int64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x < y ? -1 : x > y;
}

/* The row as bytes: pairs sorted by column, each column's values summed. */
static PyObject *
pack_row(mf_buf *pairs)
{
    size_t n = pairs->len / 16, i, out = 0;
    if (n > 48) {
        qsort(pairs->data, n, 16, compare_pairs);
    }
    else {
        /* a short row: insertion sort, without qsort's calls */
        for (i = 1; i < n; i++) {
            char item[16];
            int64_t c, d;
            size_t j = i;
            memcpy(item, pairs->data + 16 * i, 16);
            memcpy(&c, item, 8);
            while (j > 0) {
                memcpy(&d, pairs->data + 16 * (j - 1), 8);
                if (d <= c) {
                    break;
                }
                memcpy(pairs->data + 16 * j, pairs->data + 16 * (j - 1), 16);
                j--;
            }
            memcpy(pairs->data + 16 * j, item, 16);
        }
    }
    for (i = 0; i < n; i++) {
        int64_t c;
        double v;
        memcpy(&c, pairs->data + 16 * i, 8);
        memcpy(&v, pairs->data + 16 * i + 8, 8);
        if (out > 0) {
            int64_t last;
            memcpy(&last, pairs->data + 16 * (out - 1), 8);
            if (last == c) {
                double acc;
                memcpy(&acc, pairs->data + 16 * (out - 1) + 8, 8);
                acc += v;
                memcpy(pairs->data + 16 * (out - 1) + 8, &acc, 8);
                continue;
            }
        }
        memmove(pairs->data + 16 * out, pairs->data + 16 * i, 16);
        out++;
    }
    return PyBytes_FromStringAndSize(pairs->data, (Py_ssize_t)(16 * out));
}

/* Appends a str's UTF-8 (surrogatepass) to b. */
static int
append_str(mf_buf *b, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (buf_reserve(b, (size_t)n * 4) < 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        b->len += (size_t)put_utf8(b->data + b->len, PyUnicode_READ(kind, data, i));
    }
    return 0;
}

/* text_rows(docs, analyzer, ngram_min, ngram_max, vocabulary, stop_words,
 *           n_features, alternate_sign, lowercase) -> an (n, 1) object array
 * of bytes, the model's input; lowercase: each document is lowercased as
 * str.lower() does first.  None when a document is not a str (nor, for
 * TOKENS, a list): the Python side reads those as scikit-learn does. */
PyObject *
mf_text_rows(PyObject *module, PyObject *args)
{
    PyObject *docs, *vocab_obj, *stop_obj, *result = NULL, *list = NULL;
    int analyzer, min_n, max_n, alternate_sign, lowercase;
    Py_ssize_t n_features, n_docs, r;
    mf_sink sink;
    mf_doc doc;
    mf_buf scratch = {NULL, 0, 0}, text = {NULL, 0, 0}, spans = {NULL, 0, 0};
    Py_ssize_t *wb_at = NULL, wb_cap = 0;
    const mf_Vocabulary *stop = NULL;
    npy_intp dims[2];
    PyObject **cells;

    memset(&sink, 0, sizeof(sink));
    memset(&doc, 0, sizeof(doc));
    if (!PyArg_ParseTuple(args, "O!iiiOOnii:text_rows", &PyList_Type, &docs, &analyzer, &min_n,
                          &max_n, &vocab_obj, &stop_obj, &n_features, &alternate_sign,
                          &lowercase)) {
        return NULL;
    }
    bmp_word_init();
    if (analyzer < MF_TEXT_WORD || analyzer > MF_TEXT_CHAR_WB || min_n < 1 || max_n < min_n ||
        max_n > MF_MAX_NGRAM) {
        PyErr_Format(PyExc_ValueError, "text_rows: analyzer %d, ngram_range (%d, %d)", analyzer,
                     min_n, max_n);
        return NULL;
    }
    if (vocab_obj != Py_None) {
        if (!PyObject_TypeCheck(vocab_obj, &mf_VocabularyType)) {
            PyErr_SetString(PyExc_TypeError, "text_rows: vocabulary is not a Vocabulary");
            return NULL;
        }
        sink.vocab = (const mf_Vocabulary *)vocab_obj;
    }
    else if (n_features < 1) {
        PyErr_Format(PyExc_ValueError, "text_rows: n_features %zd", n_features);
        return NULL;
    }
    if (stop_obj != Py_None) {
        if (!PyObject_TypeCheck(stop_obj, &mf_VocabularyType)) {
            PyErr_SetString(PyExc_TypeError, "text_rows: stop_words is not a Vocabulary");
            return NULL;
        }
        stop = (const mf_Vocabulary *)stop_obj;
    }
    sink.n_features = n_features;
    sink.alternate_sign = alternate_sign != 0;
    n_docs = PyList_GET_SIZE(docs);
    dims[0] = n_docs;
    dims[1] = 1;
    list = PyArray_SimpleNew(2, dims, NPY_OBJECT);
    if (list == NULL) {
        goto done;
    }
    cells = (PyObject **)PyArray_DATA((PyArrayObject *)list);
    for (r = 0; r < n_docs; r++) {
        PyObject *item = PyList_GET_ITEM(docs, r), *row;
        const char *base = NULL;
        Py_ssize_t n_tok = 0, i;
        sink.pairs.len = 0;
        if (analyzer == MF_TEXT_TOKENS) {
            Py_ssize_t t, n_items;
            if (!PyList_Check(item)) {
                PyErr_Format(PyExc_TypeError,
                             "text_rows: document %zd's tokens are not a "
                             "list",
                             r);
                goto done;
            }
            n_items = PyList_GET_SIZE(item);
            text.len = 0;
            spans.len = 0;
            for (t = 0; t < n_items; t++) {
                PyObject *tok = PyList_GET_ITEM(item, t);
                mf_span sp;
                if (!PyUnicode_Check(tok)) {
                    PyErr_Format(PyExc_TypeError,
                                 "text_rows: a token of document %zd is "
                                 "a %.100s",
                                 r, Py_TYPE(tok)->tp_name);
                    goto done;
                }
                sp.start = (Py_ssize_t)text.len;
                if (append_str(&text, tok) < 0) {
                    goto done;
                }
                sp.len = (Py_ssize_t)text.len - sp.start;
                if (buf_append(&spans, &sp, sizeof(sp)) < 0) {
                    goto done;
                }
            }
            base = text.data;
            n_tok = (Py_ssize_t)(spans.len / sizeof(mf_span));
        }
        else {
            if (!PyUnicode_CheckExact(item)) {
                /* not a str: the Python side reads it as scikit-learn does */
                Py_INCREF(Py_None);
                result = Py_None;
                goto done;
            }
            if (doc_read(&doc, item, lowercase, analyzer != MF_TEXT_WORD) < 0) {
                goto done;
            }
            base = doc.utf8;
        }
        if (analyzer == MF_TEXT_WORD) {
            spans.len = 0;
            i = 0;
            while (i < doc.n) {
                Py_ssize_t j;
                if (!is_word(doc.cp[i])) {
                    i++;
                    continue;
                }
                j = i + 1;
                while (j < doc.n && is_word(doc.cp[j])) {
                    j++;
                }
                if (j - i >= 2) {
                    mf_span sp = {doc.at[i], doc.at[j] - doc.at[i]};
                    if (buf_append(&spans, &sp, sizeof(sp)) < 0) {
                        goto done;
                    }
                }
                i = j;
            }
            n_tok = (Py_ssize_t)(spans.len / sizeof(mf_span));
        }
        if (analyzer == MF_TEXT_WORD || analyzer == MF_TEXT_TOKENS) {
            mf_span *tok = (mf_span *)spans.data;
            if (stop != NULL) {
                Py_ssize_t kept = 0;
                for (i = 0; i < n_tok; i++) {
                    if (vocab_find(stop, base + tok[i].start, tok[i].len) < 0) {
                        tok[kept++] = tok[i];
                    }
                }
                n_tok = kept;
            }
            if (n_tok > 0 && word_ngrams(&sink, base, tok, n_tok, min_n, max_n, &scratch) < 0) {
                goto done;
            }
        }
        else if (analyzer == MF_TEXT_CHAR) {
            if (char_ngrams(&sink, doc.utf8, doc.at, doc.n, min_n, max_n) < 0) {
                goto done;
            }
        }
        else if (char_wb_ngrams(&sink, &doc, min_n, max_n, &scratch, &wb_at, &wb_cap) < 0) {
            goto done;
        }
        row = pack_row(&sink.pairs);
        if (row == NULL) {
            goto done;
        }
        Py_XSETREF(cells[r], row);
    }
    result = list;
    list = NULL;
done:
    Py_XDECREF(list);
    PyMem_Free(sink.pairs.data);
    PyMem_Free(scratch.data);
    PyMem_Free(text.data);
    PyMem_Free(spans.data);
    PyMem_Free(doc.cp);
    PyMem_Free(doc.at);
    PyMem_Free(doc.utf8);
    PyMem_Free(wb_at);
    return result;
}

/* murmurhash3_32(data) -> the signed hash of bytes (tests compare it with
 * scikit-learn's). */
PyObject *
mf_murmurhash3_32(PyObject *module, PyObject *arg)
{
    char *data;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &data, &len) < 0) {
        return NULL;
    }
    return PyLong_FromLong((long)murmur3_32((const unsigned char *)data, len));
}

/* text_tokens(doc) -> the default pattern's tokens of a str (tests compare
 * them with re's). */
PyObject *
mf_text_tokens(PyObject *module, PyObject *arg)
{
    PyObject *out = NULL, *tok = NULL;
    Py_ssize_t n, i = 0;
    int kind;
    const void *data;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "text_tokens takes a str");
        return NULL;
    }
    bmp_word_init();
    n = PyUnicode_GET_LENGTH(arg);
    kind = PyUnicode_KIND(arg);
    data = PyUnicode_DATA(arg);
    out = PyList_New(0);
    while (out != NULL && i < n) {
        Py_ssize_t j;
        if (!is_word(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        j = i + 1;
        while (j < n && is_word(PyUnicode_READ(kind, data, j))) {
            j++;
        }
        if (j - i >= 2) {
            tok = PyUnicode_Substring(arg, i, j);
            if (tok == NULL || PyList_Append(out, tok) < 0) {
                Py_CLEAR(out);
            }
            Py_CLEAR(tok);
        }
        i = j;
    }
    return out;
}

/* text_lower(doc) -> the document as text_rows lowercases it (tests
 * compare it with str.lower()). */
PyObject *
mf_text_lower(PyObject *module, PyObject *arg)
{
    mf_doc doc;
    PyObject *out = NULL;
    memset(&doc, 0, sizeof(doc));
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "text_lower takes a str");
        return NULL;
    }
    if (doc_read(&doc, arg, 1, 0) == 0) {
        out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, doc.cp, doc.n);
    }
    PyMem_Free(doc.cp);
    PyMem_Free(doc.at);
    PyMem_Free(doc.utf8);
    return out;
}

/* ---- sparse: weighing a packed row, and its product with coef ---------------- */

/* The pairs of a packed row, or none: a key that is not bytes of whole
 * pairs reads as an empty row. */
static Py_ssize_t
row_pairs(const double *slot, const char **data)
{
    uint64_t key;
    const mf_keystr *ks;
    memcpy(&key, slot, sizeof(key));
    ks = mf_key_text(key);
    if (ks == NULL || ks->tag != MF_KEY_BYTES || ks->len % 16 != 0) {
        *data = NULL;
        return 0;
    }
    *data = ks->data;
    return ks->len / 16;
}

static inline void
pair_at(const char *data, Py_ssize_t i, int64_t *column, double *value)
{
    memcpy(column, data + 16 * i, 8);
    memcpy(value, data + 16 * i + 8, 8);
}

/* The value of entry v after binary, the first norm, sublinear tf and
 * idf, in scikit-learn's order. */
static inline double
weigh(const mf_sparse *s, int64_t column, double v, double pre_scale)
{
    if (s->binary) {
        v = 1.0;
    }
    if (pre_scale != 0.0) {
        v /= pre_scale;
    }
    if (s->sublinear) {
        double l;
        char *args[2] = {(char *)&v, (char *)&l};
        npy_intp dims[1] = {1};
        npy_intp steps[2] = {sizeof(double), sizeof(double)};
        s->log.fn(args, dims, steps, s->log.data);
        v = l + 1.0;
    }
    if (s->idf != NULL) {
        v *= s->idf[column];
    }
    return v;
}

/* sklearn's normalize of a CSR row: l1 the sum of |x|, l2 the square root
 * of the sum of squares, in the row's order; a zero sum leaves the row. */
static double
row_scale(const mf_sparse *s, const char *data, Py_ssize_t nnz, Py_ssize_t norm, int stage,
          double pre_scale)
{
    double sum = 0.0;
    Py_ssize_t t;
    int reverse = stage == 1 && s->reverse;
    for (t = 0; t < nnz; t++) {
        int64_t c;
        double v;
        pair_at(data, reverse ? nnz - 1 - t : t, &c, &v);
        if (c < 0 || c >= s->n_features) {
            continue;
        }
        if (stage == 0) {
            v = s->binary ? 1.0 : v;
        }
        else {
            v = weigh(s, c, v, pre_scale);
            if (reverse && v == 0.0) {
                continue;
            }
        }
        sum += norm == MF_TEXT_NORM_L1 ? fabs(v) : v * v;
    }
    if (norm == MF_TEXT_NORM_L2) {
        sum = sqrt(sum);
    }
    return sum;
}

static void
sparse_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    const mf_sparse *s = op;
    Py_ssize_t r, t, k;
    for (r = 0; r < n_rows; r++) {
        const char *data;
        Py_ssize_t nnz = row_pairs(in + r * n_in, &data);
        double *y = out + r * n_out;
        double pre = 0.0, scale = 0.0;
        if (s->pre_norm != 0) {
            pre = row_scale(s, data, nnz, s->pre_norm, 0, 0.0);
        }
        if (s->norm != 0) {
            scale = row_scale(s, data, nnz, s->norm, 1, pre);
        }
        memset(y, 0, (size_t)n_out * sizeof(double));
        for (t = 0; t < nnz; t++) {
            int64_t c;
            double v;
            pair_at(data, s->reverse ? nnz - 1 - t : t, &c, &v);
            if (c < 0 || c >= s->n_features) {
                continue;
            }
            v = weigh(s, c, v, pre);
            if (s->reverse && v == 0.0) {
                continue;
            }
            if (scale != 0.0) {
                v /= scale;
            }
            if (s->coef == NULL) {
                y[c] = v;
            }
            else {
                const double *w = s->coef + c;
                for (k = 0; k < s->n_outputs; k++) {
                    y[k] += v * w[k * s->n_coef_features];
                }
            }
        }
        if (s->intercept != NULL) {
            for (k = 0; k < n_out; k++) {
                y[k] += s->intercept[k];
            }
        }
    }
}

static int
sparse_check(const void *op, const double *in, Py_ssize_t n_in, Py_ssize_t n_rows, mf_accept accept,
             mf_err_kind *err)
{
    return 0;
}

static int
sparse_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_sparse *s = op;
    if (n_in != 1) {
        PyErr_Format(PyExc_ValueError, "sparse reads one column (the packed rows), not %zd", n_in);
        return -1;
    }
    if (s->n_features < 1 || s->n_features > ((Py_ssize_t)1 << 31) || s->norm < 0 || s->norm > 2 ||
        s->pre_norm < 0 || s->pre_norm > 2) {
        PyErr_Format(PyExc_ValueError, "sparse: %zd features, norms %zd and %zd", s->n_features,
                     s->pre_norm, s->norm);
        return -1;
    }
    if (s->reverse && s->idf == NULL) {
        PyErr_SetString(PyExc_ValueError, "sparse: reverse without idf");
        return -1;
    }
    if (s->idf != NULL && s->n_idf != s->n_features) {
        PyErr_Format(PyExc_ValueError, "sparse: %zd idf values for %zd features", s->n_idf,
                     s->n_features);
        return -1;
    }
    if (s->coef != NULL) {
        if (s->n_coef_features != s->n_features || s->n_outputs < 1) {
            PyErr_Format(PyExc_ValueError,
                         "sparse: coef has shape (%zd, %zd) for %zd "
                         "features",
                         s->n_outputs, s->n_coef_features, s->n_features);
            return -1;
        }
        *n_out = s->n_outputs;
    }
    else {
        if (s->n_features > ((Py_ssize_t)1 << 24)) {
            PyErr_Format(PyExc_ValueError, "sparse: %zd dense columns are too many", s->n_features);
            return -1;
        }
        *n_out = s->n_features;
    }
    if (s->intercept != NULL && s->n_intercept != *n_out) {
        PyErr_Format(PyExc_ValueError, "sparse: %zd intercepts for %zd outputs", s->n_intercept,
                     *n_out);
        return -1;
    }
    if (s->sublinear && mf_numpy_loop("log", NPY_DOUBLE, &s->log, owners) < 0) {
        return -1;
    }
    return 0;
}

static int
sparse_out_type(const void *op, int in_type)
{
    const mf_sparse *s = op;
    return s->counts && s->coef == NULL ? NPY_INT64 : NPY_DOUBLE;
}

static void
sparse_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    /* a document's analysis is done; its row is tens of entries */
    *work = 64.0 * (double)(((const mf_sparse *)op)->n_outputs + 1) + (double)n_out;
    *steps = 0.0;
}

static const mf_field sparse_fields[] = {
    MF_SCALAR_FIELD(mf_sparse, n_features, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_sparse, binary, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_sparse, pre_norm, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_sparse, sublinear, MF_FIELD_BOOL),
    MF_VECTOR_FIELD(mf_sparse, idf, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_idf),
    MF_SCALAR_FIELD(mf_sparse, norm, MF_FIELD_INT),
    MF_MATRIX_FIELD(mf_sparse, coef, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_outputs, n_coef_features),
    MF_VECTOR_FIELD(mf_sparse, intercept, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_intercept),
    MF_SCALAR_FIELD(mf_sparse, counts, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_sparse, reverse, MF_FIELD_BOOL),
    MF_END_FIELDS,
};

const mf_op_def mf_op_sparse = {
    .name = "sparse",
    .size = sizeof(mf_sparse),
    .fields = sparse_fields,
    .prepare = sparse_prepare,
    .run = sparse_run,
    .out_type = sparse_out_type,
    .check = sparse_check,
    .cost = sparse_cost,
    .in_kind = MF_SLOT_KEY,
    .out_kind = MF_SLOT_NUM,
};
