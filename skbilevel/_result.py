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
    """

    hyperparameters: np.ndarray
    model: np.ndarray
    history: dict = field(default_factory=dict)
    converged: bool = False
    message: str = ""
    n_iter: int = 0
