"""Model: the scikit-learn-shaped face of a compiled chain.

Thin by design.  ``predict`` and friends are the C methods of the chain
itself, bound on the instance, so a call goes straight to C; only inputs that
are not ndarrays (lists, DataFrames) come back to Python, through
``_coerce``, to be turned into arrays and have their column names checked.
"""
from __future__ import annotations

import html
import warnings
from typing import Any, Optional

import numpy as np

from mlfast._builders import STRINGS_CONVERT, Parts
from mlfast._core import Chain

_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
            "transform", "score_samples")


def _column_names(X: Any) -> Optional[np.ndarray]:
    """String column names of a DataFrame-like, as scikit-learn reads them."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "dtypes"):
        return None
    names = np.asarray(columns, dtype=object)
    if names.size and all(isinstance(n, str) for n in names):
        return names
    return None


def _feature_name_error(fitted: np.ndarray, given: np.ndarray) -> ValueError:
    """scikit-learn's message for DataFrame columns that differ from fit's."""
    fitted_set, given_set = set(fitted.tolist()), set(given.tolist())
    unexpected = sorted(given_set - fitted_set)
    missing = sorted(fitted_set - given_set)

    def listing(names):
        out = ""
        for i, name in enumerate(names):
            if i >= 5:
                out += "- ...\n"
                break
            out += f"- {name}\n"
        return out

    message = "The feature names should match those that were passed during fit.\n"
    if unexpected:
        message += "Feature names unseen at fit time:\n" + listing(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    return ValueError(message)


class Model:
    """A fitted scikit-learn estimator or pipeline, compiled to mlfast's C
    engine.  Made by :func:`mlfast.load`, :func:`mlfast.loads` and
    :func:`mlfast.compile`; it answers like the estimator it came from."""

    def __init__(self, parts: Parts, source: Optional[str] = None):
        final = parts.final
        chain_kwargs = {}
        if final is not None:
            chain_kwargs = dict(
                label_rule=final.label_rule,
                proba_rule=final.proba_rule,
                classes=final.classes,
                raw_1d=final.raw_1d,
                coef_f32=final.coef_f32,
                post_rule=final.post_rule,
                post_params=final.post_params,
            )
        self._parts = parts
        self._source = source
        first = parts.steps[0] if parts.steps else final
        names_warning = None
        if parts.feature_names_in is not None:
            names_warning = (f"X does not have valid feature names, but {first.name} was "
                             "fitted with feature names")
        self._names_warning = names_warning
        self._chain = Chain(
            parts.n_features_in,
            [s.spec for s in parts.steps],
            final.spec if final is not None else None,
            coerce=self._coerce,
            strings=first.strings,
            string_prefix=first.string_prefix,
            names_warning=names_warning,
            **chain_kwargs,
        )
        methods = final.methods if final is not None else ("transform",)
        if final is not None and final.multi_classes is not None:
            for name in methods:
                setattr(self, name, getattr(self, "_multi_" + name))
        else:
            for name in methods:
                setattr(self, name, getattr(self._chain, name))
        self._methods = methods
        self.n_features_in_ = parts.n_features_in
        if parts.feature_names_in is not None:
            self.feature_names_in_ = parts.feature_names_in
        if final is not None and final.classes is not None and final.kind == "classifier":
            self.classes_ = final.classes
        if final is not None and final.multi_classes is not None:
            self.classes_ = list(final.multi_classes)
        packed = self._chain.packed
        if packed is not None and final.spec[0] == "forest":
            # keep the forest only in its packed layout: the per-node arrays
            # the builder made are dropped, so a forest costs its node data
            final.spec = ("forest_packed",) + final.spec[1:5] + packed + final.spec[12:]

    # -- input that is not an ndarray -----------------------------------------

    def _coerce(self, X: Any) -> np.ndarray:
        """Lists, DataFrames and other array-likes, as check_array reads them."""
        names = _column_names(X)
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None:
            if fitted is None:
                warnings.warn(
                    f"X has feature names, but {self._first_name} was fitted without "
                    "feature names",
                    UserWarning,
                    stacklevel=3,
                )
            elif names.shape != fitted.shape or not np.array_equal(names, fitted):
                raise _feature_name_error(fitted, names)
        elif self._names_warning is not None:
            warnings.warn(self._names_warning, UserWarning, stacklevel=3)
        if names is not None or hasattr(X, "dtypes"):
            dtypes = list(getattr(X, "dtypes", []))
            if dtypes and not all(isinstance(d, np.dtype) for d in dtypes):
                # pandas extension dtypes (nullable Int64, Float64, boolean):
                # converted early, pd.NA becoming NaN, as scikit-learn does
                try:
                    return X.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError):
                    pass
            return np.asarray(X)
        first = self._parts.steps[0] if self._parts.steps else self._parts.final
        if first.strings == STRINGS_CONVERT:
            # check_array's np.asarray(X, dtype=float64): Python's float()
            # names the value it cannot read
            try:
                return np.asarray(X, dtype=np.float64)
            except ValueError as exc:
                if first.string_prefix and "could not convert" in str(exc):
                    raise ValueError(f"{first.string_prefix}{exc}") from None
                raise
            except TypeError:
                pass
        return np.asarray(X)

    # -- multi-output classification (rare: done in Python over the C sums) ------

    def _multi_predict_proba(self, X: Any) -> list:
        raw = self._chain.decision_function(X)
        out, start = [], 0
        for classes in self._parts.final.multi_classes:
            proba = raw[:, start:start + classes.size]
            start += classes.size
            if self._parts.final.normalize_outputs:
                normalizer = proba.sum(axis=1)[:, np.newaxis]
                normalizer[normalizer == 0.0] = 1.0
                proba = proba / normalizer
            out.append(proba)
        return out

    def _multi_predict_log_proba(self, X: Any) -> list:
        return [np.log(p) for p in self._multi_predict_proba(X)]

    def _multi_predict(self, X: Any) -> np.ndarray:
        classes = self._parts.final.multi_classes
        proba = self._multi_predict_proba(X)
        out = np.empty((proba[0].shape[0], len(classes)), dtype=classes[0].dtype)
        for k, (c, p) in enumerate(zip(classes, proba)):
            out[:, k] = c.take(np.argmax(p, axis=1), axis=0)
        return out

    # -- description -------------------------------------------------------------

    @property
    def _first_name(self) -> str:
        if self._parts.steps:
            return self._parts.steps[0].name
        return self._parts.final.name

    @property
    def estimator(self) -> str:
        """The estimator chain, e.g. 'Pipeline(StandardScaler -> LogisticRegression)'."""
        return " -> ".join(self._parts.names)

    @property
    def kind(self) -> str:
        """'classifier', 'regressor' or 'transformer'."""
        return self._parts.final.kind if self._parts.final is not None else "transformer"

    @property
    def sklearn_version(self) -> Optional[str]:
        """The scikit-learn version that saved the model, if the file says."""
        return self._parts.sklearn_version

    @property
    def nbytes(self) -> int:
        """Bytes of parameter data the compiled model holds."""
        total = 0
        specs = [s.spec for s in self._parts.steps]
        if self._parts.final is not None:
            specs.append(self._parts.final.spec)
        for spec in specs:
            total += sum(v.nbytes for v in spec if isinstance(v, np.ndarray))
        return total

    def __dir__(self):
        hidden = set(_METHODS) - set(self._methods)
        return [n for n in super().__dir__() if n not in hidden]

    def __getattr__(self, name: str):
        # only reached for attributes that are not set: methods this
        # estimator does not have, like scikit-learn's AttributeError
        if name in _METHODS:
            raise AttributeError(f"This {self.estimator} model has no attribute {name!r}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _summary(self) -> dict:
        out = {
            "estimator": self.estimator,
            "kind": self.kind,
            "features": self.n_features_in_,
        }
        if isinstance(getattr(self, "classes_", None), list):
            out["classes"] = [c.tolist() for c in self.classes_]
        elif hasattr(self, "classes_"):
            out["classes"] = self.classes_.tolist()
        if self._parts.final is not None and self._parts.final.raw_1d is False and \
                self.kind == "regressor":
            out["outputs"] = int(self._chain.n_outputs)
        out["methods"] = list(self._methods)
        out["sklearn"] = self.sklearn_version
        out["size"] = _human_bytes(self.nbytes)
        if self._source:
            out["source"] = self._source
        return out

    def __repr__(self) -> str:
        s = self._summary()
        bits = [f"{s['features']} features"]
        if "classes" in s:
            classes = s["classes"]
            shown = ", ".join(map(repr, classes[:6])) + (", ..." if len(classes) > 6 else "")
            bits.append(f"classes [{shown}]")
        if s["sklearn"]:
            bits.append(f"sklearn {s['sklearn']}")
        bits.append(s["size"])
        return f"<mlfast.Model {s['estimator']} ({s['kind']}): {', '.join(bits)}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in self._summary().items()
        )
        return f"<table><caption>mlfast.Model</caption>{rows}</table>"

    # -- pickling: rebuilt from its parts, plain data ------------------------------

    def __reduce__(self):
        return (Model, (self._parts, self._source))


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
