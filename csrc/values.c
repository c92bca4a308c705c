/*
 * values.c -- the inert objects of the value tree.
 *
 * Global: an allowed global named by a pickle (module, name, kind).  It is a
 *         name, never the object it names: nothing is imported.
 * Record: what calling an allowed class or function "would" have produced:
 *         the global, its arguments and the state later given by BUILD.
 *         No code of the named class runs, ever; builders read the fields.
 */
#include "mlfast.h"
#include <structmember.h>

/* ---- Global ------------------------------------------------------------ */

PyObject *
mf_global_new(PyObject *module, PyObject *name, int kind)
{
    mf_Global *self = PyObject_New(mf_Global, &mf_GlobalType);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(module);
    Py_INCREF(name);
    self->module = module;
    self->name = name;
    self->kind = kind;
    return (PyObject *)self;
}

static void
global_dealloc(mf_Global *self)
{
    Py_XDECREF(self->module);
    Py_XDECREF(self->name);
    PyObject_Free(self);
}

static PyObject *
global_repr(mf_Global *self)
{
    return PyUnicode_FromFormat("Global('%U.%U')", self->module, self->name);
}

static PyObject *
global_path(mf_Global *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromFormat("%U.%U", self->module, self->name);
}

static PyMemberDef global_members[] = {
    {"module", T_OBJECT_EX, offsetof(mf_Global, module), READONLY,
     "module part of the global's name"},
    {"name", T_OBJECT_EX, offsetof(mf_Global, name), READONLY,
     "attribute part of the global's name"},
    {"kind", T_INT, offsetof(mf_Global, kind), READONLY,
     "how the unpickler treats it (see mlfast._core.GLOBAL_KINDS)"},
    {NULL}
};

// clang-format off: one entry a line, as the other tables (this one would fit on one)
static PyGetSetDef global_getset[] = {
    {"path", (getter)global_path, NULL, "'module.name'", NULL},
    {NULL}
};
// clang-format on

/* Globals compare by name so that builders and tests can use ==. */
static PyObject *
global_richcompare(PyObject *a, PyObject *b, int op)
{
    mf_Global *x, *y;
    int eq;

    if ((op != Py_EQ && op != Py_NE) || !mf_Global_Check(a) || !mf_Global_Check(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    x = (mf_Global *)a;
    y = (mf_Global *)b;
    eq = PyUnicode_Compare(x->module, y->module) == 0 && PyUnicode_Compare(x->name, y->name) == 0;
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (op == Py_NE) {
        eq = !eq;
    }
    return PyBool_FromLong(eq);
}

static Py_hash_t
global_hash(mf_Global *self)
{
    Py_hash_t h1 = PyObject_Hash(self->module);
    Py_hash_t h2;
    Py_uhash_t h;

    if (h1 == -1) {
        return -1;
    }
    h2 = PyObject_Hash(self->name);
    if (h2 == -1) {
        return -1;
    }
    /* unsigned, as CPython's tuplehash: signed overflow is undefined */
    h = (Py_uhash_t)h1 * 1000003U ^ (Py_uhash_t)h2;
    return (Py_hash_t)h == -1 ? -2 : (Py_hash_t)h;
}

PyTypeObject mf_GlobalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Global",
    .tp_basicsize = sizeof(mf_Global),
    .tp_dealloc = (destructor)global_dealloc,
    .tp_repr = (reprfunc)global_repr,
    .tp_hash = (hashfunc)global_hash,
    .tp_richcompare = global_richcompare,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A global named by a pickle: a name, never the object it names.",
    .tp_members = global_members,
    .tp_getset = global_getset,
};

/* ---- Record ------------------------------------------------------------ */

PyObject *
mf_record_new(PyObject *cls, PyObject *args, int via_reduce)
{
    mf_Record *self = PyObject_GC_New(mf_Record, &mf_RecordType);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(cls);
    Py_INCREF(args);
    self->cls = cls;
    self->args = args;
    self->state = NULL;
    self->items = NULL;
    self->listitems = NULL;
    self->via_reduce = via_reduce;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
record_traverse(mf_Record *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cls);
    Py_VISIT(self->args);
    Py_VISIT(self->state);
    Py_VISIT(self->items);
    Py_VISIT(self->listitems);
    return 0;
}

static int
record_clear(mf_Record *self)
{
    Py_CLEAR(self->cls);
    Py_CLEAR(self->args);
    Py_CLEAR(self->state);
    Py_CLEAR(self->items);
    Py_CLEAR(self->listitems);
    return 0;
}

static void
record_dealloc(mf_Record *self)
{
    PyObject_GC_UnTrack(self);
    /* A hostile file can chain records a million deep; the trashcan turns
     * the recursive deallocation into a loop. */
    Py_TRASHCAN_BEGIN(self, record_dealloc)
    record_clear(self);
    PyObject_GC_Del(self);
    Py_TRASHCAN_END
}

static PyObject *
record_repr(mf_Record *self)
{
    mf_Global *g = (mf_Global *)self->cls;
    return PyUnicode_FromFormat("<Record %U.%U>", g->module, g->name);
}

static PyObject *
record_get_path(mf_Record *self, void *Py_UNUSED(closure))
{
    mf_Global *g = (mf_Global *)self->cls;
    return PyUnicode_FromFormat("%U.%U", g->module, g->name);
}

#define RECORD_FIELD_GETTER(field)                                          \
    static PyObject *record_get_##field(mf_Record *self, void *c)           \
    {                                                                       \
        (void)c;                                                            \
        PyObject *v = self->field != NULL ? self->field : Py_None;          \
        Py_INCREF(v);                                                       \
        return v;                                                           \
    }
RECORD_FIELD_GETTER(state)
RECORD_FIELD_GETTER(items)
RECORD_FIELD_GETTER(listitems)
#undef RECORD_FIELD_GETTER

static PyMemberDef record_members[] = {
    {"cls", T_OBJECT_EX, offsetof(mf_Record, cls), READONLY, "the Global that was called"},
    {"args", T_OBJECT_EX, offsetof(mf_Record, args), READONLY,
     "the arguments it was called with (a tuple)"},
    {"via_reduce", T_INT, offsetof(mf_Record, via_reduce), READONLY,
     "1 if made by REDUCE, 0 if by NEWOBJ"},
    {NULL}
};

static PyGetSetDef record_getset[] = {
    {"path", (getter)record_get_path, NULL, "'module.name' of the class", NULL},
    {"state", (getter)record_get_state, NULL, "state given by BUILD, or None", NULL},
    {"items", (getter)record_get_items, NULL, "SETITEMS on a dict subclass, or None", NULL},
    {"listitems", (getter)record_get_listitems, NULL, "APPENDS on a list subclass, or None", NULL},
    {NULL}
};

PyTypeObject mf_RecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlfast._core.Record",
    .tp_basicsize = sizeof(mf_Record),
    .tp_dealloc = (destructor)record_dealloc,
    .tp_repr = (reprfunc)record_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An inert instance from a pickle: class, arguments and state. "
              "Nothing of the named class ever runs.",
    .tp_traverse = (traverseproc)record_traverse,
    .tp_clear = (inquiry)record_clear,
    .tp_members = record_members,
    .tp_getset = record_getset,
};
