"""Every method against every lower level: declared capabilities are implemented, and a method
refuses, naming the capability, a problem that lacks what it requires or has what it forbids.

Also: every method checks its option names (a misspelled option raises ``TypeError``) and
reports why it stopped in ``BilevelResult.status``.
"""

import importlib
import inspect
import pkgutil
import types

import numpy as np
import pytest

import skbilevel.problems
from skbilevel.methods import METHOD_OBJECTS, METHODS, method_options, run_method
from skbilevel.problems import BilevelProblem, LowerLevel, UpperLevel, quadratic_bilevel
from skbilevel.problems.base import CAPABILITIES

#: The methods of a lower level that each capability promises (beyond value and grad_y).
IMPLEMENTS = {
    "grad_x": ("grad_x",),
    "hvp": ("hvp",),
    "cross_vjp": ("cross_vjp",),
    "constraints": ("constraint_matrix", "b", "b_vjp"),
    "solve": ("solve",),
    "adjoint": ("adjoint",),
    "preconditioner": ("preconditioner",),
}


def _lower_level_classes() -> dict:
    """The lower levels users instantiate: every leaf subclass of LowerLevel in skbilevel.problems."""
    found = {}
    for info in pkgutil.walk_packages(skbilevel.problems.__path__, "skbilevel.problems."):
        for obj in vars(importlib.import_module(info.name)).values():
            if inspect.isclass(obj) and issubclass(obj, LowerLevel) and obj.__module__.startswith("skbilevel."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    classes = set(found.values())
    # a base class (EstimatorLowerLevel) declares what its subclasses implement: check the leaves
    return {name: cls for name, cls in found.items() if not any(c is not cls and issubclass(c, cls) for c in classes)}


LOWER_LEVELS = _lower_level_classes()


def test_the_lower_levels_are_enumerated():
    names = {cls.__name__ for cls in LOWER_LEVELS.values()}
    # RidgeLowerLevel is checked through its leaf RidgeLeaveOneOut (it overrides only the decision values)
    assert {"WeightedSquaredHingeSVM", "QuadraticLowerLevel", "WeightedMLP", "RidgeLeaveOneOut"} <= names
    assert set(IMPLEMENTS) == CAPABILITIES  # a new capability needs its entry here


@pytest.mark.parametrize("name", sorted(LOWER_LEVELS))
def test_declared_capabilities_are_implemented(name):
    cls = LOWER_LEVELS[name]
    assert not inspect.isabstract(cls), f"{name} leaves abstract methods: {sorted(cls.__abstractmethods__)}"
    assert set(cls.capabilities) <= CAPABILITIES, f"{name} declares unknown capabilities"
    for capability in cls.capabilities:
        for method in IMPLEMENTS[capability]:
            implementation = getattr(cls, method, None)
            assert callable(implementation), f"{name} declares {capability!r} but has no {method}"
            assert implementation is not getattr(LowerLevel, method, None), (
                f"{name} declares {capability!r} but keeps LowerLevel.{method}, which raises NotImplementedError")


class _Target(UpperLevel):
    def value(self, x, y):
        return 0.5 * float(y @ y)

    def gradient(self, x, y):
        return np.zeros_like(x), y


def _stand_in(capabilities, n_constraints=0):
    """A problem whose lower level declares ``capabilities`` (nothing is computed before the check)."""
    lower_cls = type("StandIn", (LowerLevel,), {
        "n_hyper": 1, "n_var": 1, "n_constraints": n_constraints, "capabilities": frozenset(capabilities),
        "value": lambda self, x, y: 0.0, "grad_y": lambda self, x, y: np.zeros(1)})
    return BilevelProblem(_Target(), lower_cls())


def _expected_refusal(method, capabilities, n_constraints):
    """The capabilities the check must name: required ones missing, forbidden ones present."""
    lower = types.SimpleNamespace(capabilities=frozenset(capabilities), n_constraints=n_constraints)
    missing = sorted(set(method.needs(lower)) - lower.capabilities)
    present = [c for c in method.forbids if c in lower.capabilities and (c != "constraints" or n_constraints)]
    return missing + present


@pytest.mark.parametrize("lower_name", sorted(LOWER_LEVELS))
@pytest.mark.parametrize("method_name", sorted(METHOD_OBJECTS))
def test_every_method_accepts_or_refuses_every_lower_level(method_name, lower_name):
    """The check on the capabilities each lower level declares (with one constraint when it declares them)."""
    method, capabilities = METHOD_OBJECTS[method_name], LOWER_LEVELS[lower_name].capabilities
    n_constraints = int("constraints" in capabilities)
    problem = _stand_in(capabilities, n_constraints)
    named = _expected_refusal(method, capabilities, n_constraints)
    if not named:
        method.check_problem(problem)
        return
    with pytest.raises(ValueError) as refusal:
        method.check_problem(problem)
    assert all(repr(c) in str(refusal.value) for c in named), (named, str(refusal.value))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_missing_required_capability_is_named_by_solve(name):
    """Through the public solve: every required capability, left out in turn, is named in the refusal."""
    method = METHOD_OBJECTS[name]
    full = set(CAPABILITIES) - set(method.forbids)
    for capability in method.requires:
        if name == "hypergradient" and capability == "hvp":
            problem = _stand_in(full - {"hvp", "adjoint"})  # either one is enough
        else:
            problem = _stand_in(full - {capability}, n_constraints=int("constraints" in full - {capability}))
        with pytest.raises(ValueError, match=rf"does not provide \[.*'{capability}'"):
            METHODS[name](problem, np.zeros(1))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_forbidden_capability_is_named_by_solve(name):
    method = METHOD_OBJECTS[name]
    if not method.forbids:
        pytest.skip(f"{name} forbids nothing")
    for capability in method.forbids:
        problem = _stand_in(set(method.requires) | {capability}, n_constraints=1)
        with pytest.raises(ValueError, match=f"'{capability}'"):
            METHODS[name](problem, np.zeros(1))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_misspelled_option_raises_a_type_error_naming_it(name):
    problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['max_iters'\]; its options are \[.*'max_iter'"):
        run_method(name, problem, np.zeros(2), options={"max_iters": 3})
    with pytest.raises(TypeError, match="max_iters"):
        METHODS[name](problem, np.zeros(2), max_iters=3)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_takes_the_options_the_estimators_pass(name):
    options = method_options(name)
    assert {"tol", "max_iter", "verbose", "callback"} <= set(options)
    assert ("eps_star" in options) == (name in ("lme-mpec", "mpec"))
    parameters = inspect.signature(METHODS[name]).parameters.values()
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method 'newton'"):
        method_options("newton")


def _problem_for(name):
    if name in ("lme-mpec", "mpec"):
        return skbilevel.problems.example_2_2(), np.array([1.0, -0.5, 2.0])
    problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    return problem, np.zeros(2)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_status_says_why_the_run_stopped(name):
    problem, x0 = _problem_for(name)
    stopped = run_method(name, problem, x0, options={"callback": lambda info: True})
    assert stopped.status == "callback" and stopped.stopped_by_callback and not stopped.converged
    assert stopped.n_iter == 1
    none = run_method(name, problem, x0, options={"max_iter": 0})
    assert none.status == "max_iter" and not none.stopped_by_callback and none.n_iter == 0


@pytest.mark.parametrize("name, options", [("hypergradient", {}), ("value-function", {}), ("lme-mpec", {}),
                                           ("mpec", {}), ("sqcqp", {"epsilon": 1e-2, "tol": 1e-4})])
def test_a_converged_run_has_status_converged(name, options):
    problem, x0 = _problem_for(name)
    result = run_method(name, problem, x0, options=options)
    assert result.converged and result.status == "converged", result.message
