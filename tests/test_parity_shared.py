"""The runs every family shares, written once: each family's representatives
(``representatives()`` of its ``tests/test_parity_<family>.py``; see
``tests/support/representatives.py`` for how a family joins) through

* every file variant (``support.variants.FILE_VARIANTS``: joblib at every
  protocol and compressor, pickle protocols 2-5, ``mlfast.compile``,
  ``mlfast.loads`` on bytes, ``mlfast.load`` on a file object and a str path);
* pickling the Model, at every protocol, read back by ``pickle.loads`` and by
  mlfast's own safe loader, and a clone pickled again;
* ``mlfast.inspect`` of the file, and the Model's ``repr`` and HTML.

Each answer is checked against scikit-learn's with ``support.parity``: every
method scikit-learn has (the rows whole and the first row), the methods it
lacks absent, n_features_in_, feature_names_in_ and classes_.  A failure
names the family, the representative, the variant and the input.
"""

from __future__ import annotations

import pickle

import joblib
import pytest
from support.parity import check_attributes, check_methods, final_estimator, where
from support.representatives import WAITING, Representative, families, representatives
from support.variants import FILE_VARIANTS, load_variant

import mlfast

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

#: {family: {name: a function that fits the model}}, made at collection
MAKES = {family: representatives(family) for family in families()}
CASES = [
    pytest.param(family, name, id=f"{family}:{name}")
    for family, makes in MAKES.items()
    for name in makes
]
PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """get(family, name) -> (representative, its joblib file, the Model
    mlfast.load made of that file); each model fitted once for the module."""
    directory = tmp_path_factory.mktemp("representatives")
    cache = {}

    def get(family: str, name: str):
        if (family, name) not in cache:
            rep = MAKES[family][name]()
            assert isinstance(rep, Representative), f"{family}:{name} made {type(rep)}"
            path = directory / f"model{len(cache)}.joblib"
            joblib.dump(rep.estimator, path)
            cache[family, name] = (rep, path, mlfast.load(path))
        return cache[family, name]

    return get


def check(model, rep: Representative, context: str) -> None:
    """The Model answers as the representative's estimator: attributes, then
    every method on each input, whole and its first row."""
    check_attributes(model, rep.estimator, context)
    for rows in rep.inputs():
        for part in (rows, rows[:1]):
            check_methods(
                model,
                rep.estimator,
                part,
                context=f"{context} | rows={len(part)}",
                exact=rep.exact,
                float32_rtol=rep.float32_rtol,
            )


def test_every_parity_suite_has_representatives():
    """A family's suite without representatives() would silently miss every
    run here: it is listed as WAITING until it joins, and leaves the list
    when it does."""
    missing = [
        f"tests/test_parity_{family}.py"
        for family, makes in MAKES.items()
        if not makes and family not in WAITING
    ]
    assert not missing, (
        f"{missing} define no representatives(): see "
        f"tests/support/representatives.py for how a family joins"
    )
    joined = [family for family in WAITING if MAKES.get(family)]
    assert not joined, f"{joined} joined the shared runs: take them out of WAITING"


@pytest.mark.parametrize("variant", FILE_VARIANTS)
@pytest.mark.parametrize("family, name", CASES)
def test_file_variant(family, name, variant, fitted, tmp_path):
    if variant == "joblib-lz4":
        pytest.importorskip("lz4.frame")
    rep, _, _ = fitted(family, name)
    model = load_variant(rep.estimator, variant, tmp_path)
    check(model, rep, where(family=family, estimator=name, variant=variant))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("family, name", CASES)
def test_pickle_model(family, name, protocol, fitted):
    """A Model pickles as plain data: pickle.loads and mlfast.loads (which
    reads it like any model file, without running it) give a Model that
    answers the same, holds the same bytes (forests in their packed node
    layout, checked again when loaded) and describes itself the same."""
    rep, _, model = fitted(family, name)
    data = pickle.dumps(model, protocol=protocol)
    for how, clone in (("pickle.loads", pickle.loads(data)), ("mlfast.loads", mlfast.loads(data))):
        ctx = where(
            family=family,
            estimator=name,
            variant=f"joblib -> pickle.dumps(Model, {protocol}) -> {how}",
        )
        check(clone, rep, ctx)
        assert clone.nbytes == model.nbytes, f"nbytes {clone.nbytes} != {model.nbytes}: {ctx}"
        assert repr(clone) == repr(model), ctx


@pytest.mark.parametrize("family, name", CASES)
def test_pickle_model_twice(family, name, fitted):
    """A clone of a clone: an unpickled Model pickles again."""
    rep, _, model = fitted(family, name)
    clone = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(model))))
    check(clone, rep, where(family=family, estimator=name, variant="joblib -> pickle.dumps twice"))
    assert repr(clone) == repr(model)


@pytest.mark.parametrize("family, name", CASES)
def test_inspect(family, name, fitted):
    """mlfast.inspect of the file (a path or its bytes) names the estimator,
    its final step and what the representative says it shows; the Model
    names the final step too."""
    rep, path, model = fitted(family, name)
    ctx = where(family=family, estimator=name)
    text = mlfast.inspect(path)
    assert isinstance(text, str) and text, ctx
    last = type(final_estimator(rep.estimator)).__name__
    for shown in (type(rep.estimator).__name__, last, *rep.shows):
        assert shown in text, f"inspect does not show {shown}: {ctx}"
    assert mlfast.inspect(path.read_bytes()) == text, ctx
    assert last in model.estimator, (model.estimator, ctx)


@pytest.mark.parametrize("family, name", CASES)
def test_repr(family, name, fitted):
    """repr and the notebook's HTML name the estimator and its width."""
    rep, _, model = fitted(family, name)
    last = type(final_estimator(rep.estimator)).__name__
    text = repr(model)
    assert last in text and f"{rep.estimator.n_features_in_} features" in text, text
    assert last in model._repr_html_(), where(family=family, estimator=name)
