"""How a bilevel problem is solved: one module per reformulation.

Each module has a function ``solve(problem, x0, y0=None, *, <options>)``
whose keyword arguments are the method's options, declared and documented
there, and a method object ``METHOD`` (a
:class:`~skbilevel.methods._base.BilevelMethod`) that states what the method
needs of a problem (``requires``) and what it refuses (``forbids``).

:data:`METHODS` maps the names accepted by the estimators' ``method``
parameter to these functions. :func:`run_method` runs one by name with a
dict of options, after checking the option names (a misspelled one raises
``TypeError`` naming it), and :func:`method_options` says which options a
method accepts, so that a caller passes each method only its own.
"""

from __future__ import annotations

import inspect

from . import hypergradient, lme_mpec, mpec, perturbed_gd, sqcqp, value_function

_MODULES = {
    "lme-mpec": lme_mpec,
    "mpec": mpec,
    "hypergradient": hypergradient,
    "value-function": value_function,
    "perturbed-gd": perturbed_gd,
    "sqcqp": sqcqp,
}

#: Method name -> solver function ``solve(problem, x0, y0=None, *, <its options>)``.
METHODS = {name: module.solve for name, module in _MODULES.items()}

#: Method name -> the method object (what it requires of and forbids in a problem).
METHOD_OBJECTS = {name: module.METHOD for name, module in _MODULES.items()}


def _declared_options(solve) -> tuple:
    """The parameters of ``solve`` after ``(problem, x0, y0)``: the method's options."""
    return tuple(inspect.signature(solve).parameters)[3:]


# read from the functions once, so that the names stay those declared even where METHODS is patched
_OPTIONS = {name: _declared_options(solve) for name, solve in METHODS.items()}


def _check_name(name: str) -> None:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")


def method_options(name: str) -> tuple:
    """Names of the options that method ``name`` accepts.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`, e.g. ``'hypergradient'``.

    Returns
    -------
    tuple of str
        The keyword arguments of the method's ``solve`` after ``problem``,
        ``x0`` and ``y0``, in their declared order.

    Raises
    ------
    ValueError
        When ``name`` is not a method.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025: the
       exit tolerance ``eps_star`` of Algorithm 1 is an option of the penalty
       methods only.

    Examples
    --------
    >>> from skbilevel.methods import method_options
    >>> "eps_star" in method_options("lme-mpec"), "eps_star" in method_options("hypergradient")
    (True, False)
    """
    _check_name(name)
    return _OPTIONS[name]


def run_method(name: str, problem, x0, y0=None, *, options: dict | None = None):
    """Run method ``name`` on ``problem`` from ``x0`` with ``options``, after checking their names.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.
    problem : BilevelProblem
        The problem (a cross-validation problem for ``'hypergradient'``).
    x0 : array of shape (n_hyper,)
        Starting hyperparameters.
    y0 : array of shape (n_var,), optional
        Starting lower-level point (each method's default when None).
    options : dict, optional
        Options of the method, by name (see :func:`method_options`).

    Returns
    -------
    BilevelResult
        The method's result.

    Raises
    ------
    TypeError
        When an option is not one of the method's, naming it and listing
        the valid ones.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the hypergradient method of section 5.1, one of the
       methods run here.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods import run_method
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = run_method("hypergradient", problem, np.zeros(2), options={"tol": 1e-8})
    >>> result.converged, np.round(result.hyperparameters, 3)
    (True, array([1.429, 1.538]))
    >>> run_method("hypergradient", problem, np.zeros(2), options={"eps_star": 1e-3})
    Traceback (most recent call last):
    ...
    TypeError: method 'hypergradient' got the unknown option(s) ['eps_star']; its options are ...
    """
    valid = method_options(name)
    given = {} if options is None else dict(options)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise TypeError(f"method {name!r} got the unknown option(s) {unknown}; its options are {sorted(valid)}")
    return METHODS[name](problem, x0, y0, **given)


__all__ = ["METHODS", "METHOD_OBJECTS", "hypergradient", "lme_mpec", "method_options", "mpec", "perturbed_gd",
           "run_method", "sqcqp", "value_function"]
