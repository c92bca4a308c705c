"""mlfast: load scikit-learn model files safely in C and predict fast."""
# OpenBLAS first: importing scipy_openblas32 loads libscipy_openblas into the
# process, so _core finds it in editable installs too (its rpath covers
# regular ones).
import scipy_openblas32  # noqa: F401

from mlfast import _core
from mlfast.errors import MlfastError, ModelFormatError, UnsafeModelError, UnsupportedModelError

__version__ = "0.1.0"
__all__ = ["MlfastError", "ModelFormatError", "UnsafeModelError", "UnsupportedModelError"]
