"""Every public class and function has a complete numpydoc docstring (issue 5).

The public objects are enumerated, not listed: ``skbilevel.__all__``,
``skbilevel.problems.__all__``, the public functions and classes defined in
each module of ``skbilevel.methods.__all__``, in every non-underscore module
of ``skbilevel.problems`` and ``skbilevel.methods`` (the lower-level models
users build on, such as ``skbilevel.problems.ridge.RidgeLowerLevel``, which
are not re-exported) and ``skbilevel.plotting.__all__`` (when that module
exists). Each docstring is parsed by numpydoc and must have
non-empty Parameters (when the signature has any), Returns (functions) or
Attributes (estimators), Examples and References sections, and must document
every parameter of the signature. The estimators' user-facing methods (``fit``,
``predict``, ...) need Parameters and Returns only. The examples themselves run
as doctests (``--doctest-modules`` in ``pyproject.toml``).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

docscrape = pytest.importorskip("numpydoc.docscrape")

import skbilevel  # noqa: E402
import skbilevel.methods  # noqa: E402
import skbilevel.problems  # noqa: E402

#: Methods of the estimators that users call; checked where a class defines them.
ESTIMATOR_METHODS = ("fit", "predict", "predict_proba", "predict_log_proba", "decision_function", "score",
                     "transform", "inverse_transform")


def _documentable(obj) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj)


def _from_all(module) -> dict:
    return {f"{module.__name__}.{name}": getattr(module, name) for name in module.__all__
            if _documentable(getattr(module, name))}


def _defined_in(module) -> dict:
    """Public functions and classes defined in ``module`` itself (not imported into it)."""
    return {f"{module.__name__}.{name}": obj for name, obj in vars(module).items()
            if not name.startswith("_") and _documentable(obj) and obj.__module__ == module.__name__}


def _public_submodules(package) -> list:
    """Every non-underscore module of ``package``, imported."""
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")]


def _public_objects() -> dict:
    objects = {**_from_all(skbilevel), **_from_all(skbilevel.problems)}
    for name in skbilevel.methods.__all__:
        module = getattr(skbilevel.methods, name)
        if inspect.ismodule(module):
            objects.update(_defined_in(module))
    for package in (skbilevel.problems, skbilevel.methods):
        for module in _public_submodules(package):
            objects.update(_defined_in(module))
    try:  # written separately; imported lazily so that its absence skips nothing else
        plotting = importlib.import_module("skbilevel.plotting")
    except ModuleNotFoundError:
        plotting = None
    if plotting is not None:
        objects.update(_from_all(plotting) if hasattr(plotting, "__all__") else _defined_in(plotting))
    return objects


PUBLIC = _public_objects()


def _is_estimator(obj) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "fit", None))


ESTIMATOR_METHOD_OBJECTS = {
    f"{path}.{method}": getattr(obj, method)
    for path, obj in PUBLIC.items() if _is_estimator(obj)
    for method in ESTIMATOR_METHODS if method in vars(obj)
}


def _signature_parameters(obj) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    return [p for name, p in signature.parameters.items() if name not in ("self", "cls")]


def _documented_names(entries) -> set[str]:
    """Names of numpydoc Parameters entries, ``'X_val, y_val'`` counting as two."""
    names = set()
    for entry in entries:
        for name in entry.name.split(","):
            names.add(name.strip().lstrip("*"))
    return names


def _parse(obj):
    # show_class_members=False: numpydoc would otherwise fill an empty Attributes section itself
    if inspect.isclass(obj):
        return docscrape.ClassDoc(obj, config={"show_class_members": False})
    return docscrape.FunctionDoc(obj)


def test_public_objects_are_enumerated():
    # a guard against an enumeration that silently finds nothing
    for path in ("skbilevel.BilevelSVC", "skbilevel.HyperCleaningClassifier", "skbilevel.BilevelSearchCV",
                 "skbilevel.BilevelResult", "skbilevel.methods.lme_mpec.solve", "skbilevel.problems.lme.BoxLME",
                 "skbilevel.methods.hypergradient.adjoint", "skbilevel.problems.example_2_2",
                 "skbilevel.problems.WeightedSquaredHingeSVM",
                 "skbilevel.problems.ridge.RidgeLowerLevel", "skbilevel.problems.classifiers.WeightedMLP",
                 "skbilevel.problems.cross_validation.CrossValidationProblem",
                 "skbilevel.problems.sklearn_estimators.lower_level_class",
                 "skbilevel.methods.sqcqp.qcqp_direction"):
        assert path in PUBLIC
    assert "skbilevel.BilevelSVC.fit" in ESTIMATOR_METHOD_OBJECTS
    assert "skbilevel.BilevelSearchCV.predict" in ESTIMATOR_METHOD_OBJECTS


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_docstring_is_complete(path):
    obj = PUBLIC[path]
    assert inspect.getdoc(obj), f"{path} has no docstring"
    doc = _parse(obj)
    assert doc["Summary"], f"{path}: no summary line"
    params = _signature_parameters(obj)
    is_record = dataclasses.is_dataclass(obj)  # its fields may be documented as Parameters or Attributes
    documented = _documented_names(doc["Parameters"]) | (_documented_names(doc["Attributes"]) if is_record else set())
    if params:
        assert doc["Parameters"] or is_record, f"{path}: no Parameters section"
    missing = [p.name for p in params if p.name not in documented]
    assert not missing, f"{path}: parameters not documented: {missing}"
    for entry in doc["Parameters"]:
        if not entry.name.startswith("*"):  # numpydoc gives *args and **kwargs no type
            assert entry.type, f"{path}: parameter {entry.name!r} has no type"
        assert "".join(entry.desc).strip(), f"{path}: parameter {entry.name!r} has no description"
    if _is_estimator(obj):
        assert doc["Attributes"], f"{path}: no Attributes section"
        for entry in doc["Attributes"]:
            assert "".join(entry.desc).strip(), f"{path}: attribute {entry.name!r} has no description"
    elif not inspect.isclass(obj):
        assert doc["Returns"], f"{path}: no Returns section"
    assert "".join(doc["Examples"]).strip(), f"{path}: no Examples section"
    assert ">>>" in "\n".join(doc["Examples"]), f"{path}: Examples without a doctest"
    assert "".join(doc["References"]).strip(), f"{path}: no References section"


@pytest.mark.parametrize("path", sorted(ESTIMATOR_METHOD_OBJECTS))
def test_estimator_method_docstring_is_complete(path):
    method = ESTIMATOR_METHOD_OBJECTS[path]
    assert inspect.getdoc(method), f"{path} has no docstring"
    doc = docscrape.FunctionDoc(method)
    params = _signature_parameters(method)
    if params:
        assert doc["Parameters"], f"{path}: no Parameters section"
    missing = [p.name for p in params if p.name not in _documented_names(doc["Parameters"])]
    assert not missing, f"{path}: parameters not documented: {missing}"
    assert doc["Returns"], f"{path}: no Returns section"
