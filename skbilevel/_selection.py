"""The ``method='auto'`` rule: pick a reformulation from the structure of the problem."""

from __future__ import annotations

from .methods import METHODS
from .problems.base import BilevelProblem


def select_method(problem: BilevelProblem, method: str = "auto") -> str:
    """Return the name of the method to run on ``problem``.

    ``'auto'`` picks ``'lme-mpec'`` for a linearly constrained convex lower
    level (it offers ``'constraints'``): paper 000 shows that eliminating the
    multipliers through an LME solves the same program as the classical MPEC
    with fewer variables. A named method is returned unchanged after checking
    that it exists.
    """
    if method != "auto":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected 'auto' or one of {sorted(METHODS)}")
        return method
    if "constraints" in problem.lower.capabilities:
        return "lme-mpec"
    raise ValueError(
        f"no method available for the lower level {type(problem.lower).__name__} with "
        f"capabilities {sorted(problem.lower.capabilities)}; available: {sorted(METHODS)}"
    )
