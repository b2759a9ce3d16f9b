"""The result every bilevel method returns, and why a run stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Status(str, Enum):
    """Why a bilevel method stopped; a string, so ``status == 'converged'`` holds.

    ``CONVERGED``
        The method's stopping test was met (the only status with ``converged=True``).
    ``MAX_ITER``
        The iteration budget ``max_iter`` ran out (also when it is 0).
    ``CALLBACK``
        The caller's ``callback`` returned True.
    ``STALLED``
        The iterates stopped moving short of the stopping test: a line or step
        search found no decrease, or a stationary point of a residual is not a
        solution.
    ``INEXACT``
        The stopping test was met, but on sub-problems (lower-level or adjoint
        solves) that did not reach their tolerance, so the point is not certified.
    ``FAILED``
        The method could not go on: an infeasible start it could not repair, a
        diverged sub-problem, non-finite values.
    """

    CONVERGED = "converged"
    MAX_ITER = "max_iter"
    CALLBACK = "callback"
    STALLED = "stalled"
    INEXACT = "inexact"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class BilevelResult:
    """Outcome of a bilevel method.

    Attributes
    ----------
    hyperparameters : ndarray
        The upper-level variable ``x`` found.
    model : ndarray
        The lower-level variable ``y`` paired with it.
    history : dict of lists
        One entry per outer iteration: ``'objective'`` (upper objective ``F``),
        ``'complementarity'`` (``g(x, y)^T tau(x, y)``, or the method's own
        optimality residual), ``'time'`` (seconds spent in that iteration), and
        method-specific entries.
    converged : bool
        Whether the method's stopping test was met (``status == 'converged'``).
    message : str
        Why the method stopped, in words, with the quantities involved.
    n_iter : int
        Number of outer iterations.
    status : Status
        Why the method stopped, as one of the values of :class:`Status`
        (``'converged'``, ``'max_iter'``, ``'callback'``, ``'stalled'``,
        ``'inexact'``, ``'failed'``): the field to test in code, rather than
        the message. Default: ``'converged'`` when ``converged``, else
        ``'failed'``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       ``complementarity`` is the quantity ``tau(x, y)^T g(x, y)`` whose fall
       below ``eps*`` ends Algorithm 1 (section 3).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods import hypergradient
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = hypergradient.solve(problem, np.zeros(2))
    >>> result.converged, result.status, np.round(result.hyperparameters, 3)
    (True, <Status.CONVERGED: 'converged'>, array([1.429, 1.538]))
    >>> sorted(result.history)
    ['complementarity', 'objective', 'time']
    """

    hyperparameters: np.ndarray
    model: np.ndarray
    history: dict = field(default_factory=dict)
    converged: bool = False
    message: str = ""
    n_iter: int = 0
    status: Status | None = None

    def __post_init__(self):
        status = Status(self.status) if self.status is not None else (
            Status.CONVERGED if self.converged else Status.FAILED)
        if bool(self.converged) != (status is Status.CONVERGED):
            raise ValueError(f"converged={self.converged!r} contradicts status={status.value!r}")
        object.__setattr__(self, "status", status)

    @property
    def stopped_by_callback(self) -> bool:
        """Whether the caller's ``callback`` stopped the run (``status == 'callback'``)."""
        return self.status is Status.CALLBACK
