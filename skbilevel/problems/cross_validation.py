"""Cross-validation as one bilevel problem: K lower levels sharing the hyperparameters.

Paper 002, section 5: with folds ``k = 1..K``, each a training problem
``y_k(x)`` and a held-out loss ``F_k``, hyperparameter selection minimises

.. math::

    h(x) = \\frac{1}{K} \\sum_{k=1}^K F_k(x, y_k(x)),

whose gradient is the mean of the folds' hypergradients; the folds are
independent given ``x`` and can be solved in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import BilevelProblem


@dataclass(frozen=True)
class CrossValidationProblem:
    """K bilevel problems sharing one hyperparameter vector ``x``.

    Parameters
    ----------
    folds : tuple of BilevelProblem
        One per fold; their lower levels have the same ``n_hyper``.
    x_bounds : tuple of arrays or None
        ``(low, high)`` for ``x``.
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
