"""Cross-validation as one bilevel problem: K lower levels sharing the hyperparameters.

Hyperparameter optimisation is the bilevel problem (4.1)-(4.2) of Grazzi
et al. (2026), section 4.1; with folds ``k = 1..K``, each a training problem
``y_k(x)`` (4.2) and a held-out loss ``F_k`` (4.1), cross-validation minimises

.. math::

    h(x) = \\frac{1}{K} \\sum_{k=1}^K F_k(x, y_k(x)),

whose gradient is the mean of the folds' hypergradients (each from Grazzi
et al. (2026), section 5.1); the folds are independent given ``x`` and can be solved
in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import BilevelProblem


@dataclass(frozen=True)
class CrossValidationProblem:
    """K bilevel problems sharing one hyperparameter vector ``x``.

    The problem :class:`~skbilevel.BilevelSearchCV` solves:
    ``h(x) = 1/K sum_k F_k(x, y_k(x))`` (module docstring).
    :func:`skbilevel.methods.hypergradient.solve` and
    :func:`~skbilevel.methods.hypergradient.evaluate` accept it in place of
    a :class:`~skbilevel.problems.BilevelProblem` and average the folds'
    values and hypergradients. It holds data only.

    Parameters
    ----------
    folds : tuple of BilevelProblem
        One per fold; their lower levels have the same ``n_hyper``
        (``ValueError`` otherwise, or when ``folds`` is empty).
    x_bounds : tuple of arrays or None, default=None
        ``(low, high)`` for ``x``.

    Attributes
    ----------
    n_hyper : int
        The size of ``x``, common to the folds' lower levels.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: hyperparameter optimisation
       as the bilevel problem (4.1)-(4.2), section 4.1, here with one
       training / validation split per fold; each fold's hypergradient by
       implicit differentiation, section 5.1.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import example_2_2
    >>> from skbilevel.problems.cross_validation import CrossValidationProblem
    >>> fold = example_2_2()
    >>> cv = CrossValidationProblem((fold, fold), x_bounds=(-np.ones(3), np.ones(3)))
    >>> len(cv.folds), cv.n_hyper
    (2, 3)
    >>> CrossValidationProblem(())
    Traceback (most recent call last):
    ...
    ValueError: folds must be a non-empty sequence of BilevelProblem
    """

    folds: tuple
    x_bounds: tuple | None = None

    def __post_init__(self):
        if not self.folds or not all(isinstance(f, BilevelProblem) for f in self.folds):
            raise ValueError("folds must be a non-empty sequence of BilevelProblem")
        sizes = {f.lower.n_hyper for f in self.folds}
        if len(sizes) != 1:
            raise ValueError(f"the folds' lower levels disagree on the number of hyperparameters: {sizes}")

    @property
    def n_hyper(self) -> int:
        return self.folds[0].lower.n_hyper
