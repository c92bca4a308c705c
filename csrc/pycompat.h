/*
 * pycompat.h -- the C-API names mlfast uses that older Pythons spell
 * differently.  requires-python is >=3.9; everything else mlfast calls
 * exists under the same name from 3.9 on (setup.py builds with
 * -Werror=implicit-function-declaration, so a name missing on some
 * Python fails the build there instead of failing the import).
 */
#ifndef MLFAST_PYCOMPAT_H
#define MLFAST_PYCOMPAT_H

#include <Python.h>

/* public from 3.10 */
#if PY_VERSION_HEX < 0x030A0000 && !defined(PySet_CheckExact)
#define PySet_CheckExact(op) Py_IS_TYPE((op), &PySet_Type)
#endif

/* public from 3.11; the same function was private before */
#if PY_VERSION_HEX < 0x030B0000
#define PyFloat_Unpack8(p, le) _PyFloat_Unpack8((const unsigned char *)(p), (le))
#endif

#endif /* MLFAST_PYCOMPAT_H */
