"""Shared checks for the estimator lower levels of BilevelSearchCV."""

import numpy as np

from conftest import fd_gradient
from skbilevel.methods.hypergradient import hypergradient
from skbilevel.problems.base import BilevelProblem
from skbilevel.problems.estimator_base import ValidationLoss


def fold_problem(lower_cls, estimator, X, y, X_val, y_val, names, scales, sample_weight=None):
    lower = lower_cls(estimator, X, y, names, scales, sample_weight=sample_weight)
    return BilevelProblem(ValidationLoss(lower, X_val, y_val), lower)


def outer_value(problem, x, tol=1e-12):
    y, ok = problem.lower.solve(np.asarray(x, float), None, tol)
    assert ok
    return problem.upper.value(np.asarray(x, float), y)


def check_hypergradient(problem, x, *, h=1e-5, rtol=1e-4, tol=1e-12):
    """The hypergradient at ``x`` agrees with central differences of the validation loss."""
    x = np.asarray(x, float)
    y, ok = problem.lower.solve(x, None, tol)
    assert ok
    _, grad, _ = hypergradient(problem, x, y)
    fd = fd_gradient(lambda s: outer_value(problem, s, tol), x, h)
    err = np.linalg.norm(grad - fd) / max(np.linalg.norm(fd), 1e-12)
    assert err <= rtol, (grad, fd, err)
    return grad, fd
