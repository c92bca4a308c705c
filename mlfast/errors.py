"""mlfast's exceptions.

They are defined by the C extension (the VM raises them) and re-exported here.
All are ValueError subclasses, so code that catches ValueError around
``joblib.load`` keeps working.
"""

from mlfast._core import (  # noqa: F401
    MlfastError,
    ModelFormatError,
    UnsafeModelError,
    UnsupportedModelError,
)

__all__ = ["MlfastError", "ModelFormatError", "UnsafeModelError", "UnsupportedModelError"]
