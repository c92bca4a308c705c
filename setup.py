"""Build of mlfast._core, the C engine.

Built against numpy>=2 with NPY_TARGET_VERSION set to 1.23, so one build runs
on numpy 1.23 and later.  OpenBLAS comes from the scipy-openblas32 wheel: the
extension links to it, finds it next to itself in site-packages through its
rpath, and mlfast imports scipy_openblas32 first, which loads the library
for editable installs too.

MLFAST_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer;
MLFAST_DEBUG=1 builds with -O0 -g.
"""

import os

import numpy
import scipy_openblas32
from setuptools import Extension, setup

SOURCES = [
    "csrc/module.c",
    "csrc/values.c",
    "csrc/unpickle.c",
    "csrc/graph.c",
    "csrc/input.c",
    "csrc/pool.c",
    "csrc/run.c",
    "csrc/transform.c",
    "csrc/keys.c",
    "csrc/linear.c",
    "csrc/links.c",
    "csrc/trees.c",
    "csrc/gbdt.c",
    "csrc/ensemble.c",
    "csrc/multiclass.c",
    "csrc/bayes.c",
    "csrc/svm.c",
    "csrc/discriminant.c",
    "csrc/nn.c",
    "csrc/neighbors.c",
    "csrc/tally.c",
    "csrc/distances.c",
    "csrc/preprocess.c",
    "csrc/text.c",
]

compile_args = [
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    "-Wno-cast-function-type",
    # scikit-learn's answers are reproduced operation by operation: no fused
    # multiply-add may change a rounding.
    "-ffp-contract=off",
    "-fno-strict-aliasing",
    # a C-API function missing from an older Python must fail the build,
    # not the import (an implicit declaration links to nothing)
    "-Werror=implicit-function-declaration",
]
link_args = ["-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"]

if os.environ.get("MLFAST_DEBUG") == "1" or os.environ.get("MLFAST_SANITIZE") == "1":
    compile_args += ["-O0", "-g3", "-fno-omit-frame-pointer"]
else:
    compile_args += ["-O3"]
if os.environ.get("MLFAST_SANITIZE") == "1":
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += sanitizers
    link_args += sanitizers

core = Extension(
    "mlfast._core",
    sources=SOURCES,
    depends=["csrc/mlfast.h", "csrc/pycompat.h", "csrc/stdlib_names.h"],
    include_dirs=[numpy.get_include(), scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library(), "pthread", "m"],
    define_macros=[
        ("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION"),
        ("NPY_TARGET_VERSION", "NPY_1_23_API_VERSION"),
    ],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(ext_modules=[core])
