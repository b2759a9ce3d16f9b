"""The result every bilevel method returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
        Whether the method's stopping test was met.
    message : str
        Why the method stopped.
    n_iter : int
        Number of outer iterations.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines" (paper 000 of
       ``shared/papers``): ``complementarity`` is the quantity
       ``tau(x, y)^T g(x, y)`` whose fall below ``eps*`` ends Algorithm 1
       (section 3).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods import hypergradient
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = hypergradient.solve(problem, np.zeros(2))
    >>> result.converged, np.round(result.hyperparameters, 3)
    (True, array([1.429, 1.538]))
    >>> sorted(result.history)
    ['complementarity', 'objective', 'time']
    """

    hyperparameters: np.ndarray
    model: np.ndarray
    history: dict = field(default_factory=dict)
    converged: bool = False
    message: str = ""
    n_iter: int = 0

    @property
    def stopped_by_callback(self) -> bool:
        """Whether the caller's ``callback`` stopped the run (every method's message says so)."""
        return self.message.startswith("stopped by the callback")
