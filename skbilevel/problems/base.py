"""The problem protocol: what a bilevel method may ask of an upper and a lower level.

A bilevel problem (eq. (1.1) of Huang et al. (2025)) is

.. math::

    \\min_{x, y} F(x, y) \\quad \\text{s.t.} \\quad y \\in S(x) = \\arg\\min_y
    \\{ f(x, y) : A y - b(x) \\ge 0 \\}.

:class:`UpperLevel` describes ``F``, :class:`LowerLevel` describes ``f`` and,
when it is linearly constrained, ``A`` and ``b(x)``. Every quantity is given
as a value, a gradient or a product with a vector, never as a dense Hessian,
so that methods stay matrix-free and a problem may use sparse data.

A method states which capabilities it needs (see :func:`require`); a lower
level lists what it offers in :attr:`LowerLevel.capabilities`. Problems hold
data only: no run state is ever written on them, so one problem object can
be shared between runs and threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

#: Capabilities a lower level may offer.
#:
#: ``"grad_x"``      gradient :math:`\nabla_x f(x, y)` of the lower objective in the hyperparameters.
#: ``"hvp"``         Hessian-vector product  :math:`\nabla^2_{yy} f(x, y) v`.
#: ``"cross_vjp"``   cross-derivative product :math:`\nabla_x (\nabla_y f(x, y)^T v)`.
#: ``"constraints"`` linear constraints ``A y - b(x) >= 0`` with ``A``, ``b``, ``db/dx``.
#: ``"solve"``       a solver returning a point of ``S(x)`` to a tolerance.
#: ``"adjoint"``     a structured solver of the implicit-differentiation adjoint system
#:                   (see :meth:`LowerLevel.adjoint`), used instead of a generic one.
#: ``"preconditioner"`` an approximate inverse of ``\nabla^2_{yy} f`` for the generic Krylov
#:                   solves of that system (see :meth:`LowerLevel.preconditioner`).
CAPABILITIES = frozenset({"grad_x", "hvp", "cross_vjp", "constraints", "solve", "adjoint", "preconditioner"})


class UpperLevel(ABC):
    """Upper-level objective ``F(x, y)``, with its gradient.

    Subclasses implement :meth:`value` and :meth:`gradient`.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the upper objective ``F`` of the bilevel problem (1.1).

    Examples
    --------
    A validation-style objective ``F(x, y) = 1/2 ||y - 1||^2``:

    >>> import numpy as np
    >>> from skbilevel.problems import UpperLevel
    >>> class DistanceToOnes(UpperLevel):
    ...     def value(self, x, y):
    ...         return 0.5 * float((y - 1.0) @ (y - 1.0))
    ...     def gradient(self, x, y):
    ...         return np.zeros_like(x), y - 1.0
    >>> DistanceToOnes().value(np.zeros(1), np.zeros(2))
    1.0
    """

    @abstractmethod
    def value(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return ``F(x, y)``."""

    @abstractmethod
    def gradient(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(grad_x F, grad_y F)``."""


class LowerLevel(ABC):
    """Lower-level objective ``f(x, y)``, convex in ``y`` unless :attr:`convex` says otherwise.

    Subclasses set :attr:`n_hyper` (size of ``x``), :attr:`n_var` (size of
    ``y``) and :attr:`capabilities`, and implement the methods matching the
    capabilities they declare. A constrained lower level additionally sets
    :attr:`n_constraints`; a non-convex one (a neural network) sets
    :attr:`convex` to False, which ``method='auto'`` takes into account.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the lower-level problem of (1.1), with linear constraints
       ``A y - b(x) >= 0``, and its KKT system (1.2).
    .. [2] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the products ``grad^2_yy f v`` and
       ``grad^2_xy f`` that implicit differentiation needs, section 5.1.

    Examples
    --------
    ``f(x, y) = 1/2 ||y - x||^2``, offering the products the single-loop
    methods need:

    >>> import numpy as np
    >>> from skbilevel.problems import LowerLevel
    >>> class Shift(LowerLevel):
    ...     n_hyper = n_var = 2
    ...     capabilities = frozenset({"hvp", "cross_vjp"})
    ...     def value(self, x, y):
    ...         return 0.5 * float((y - x) @ (y - x))
    ...     def grad_y(self, x, y):
    ...         return y - x
    ...     def hvp(self, x, y, v):
    ...         return v
    ...     def cross_vjp(self, x, y, v):
    ...         return -v
    >>> Shift().grad_y(np.ones(2), np.zeros(2))
    array([-1., -1.])
    """

    n_hyper: int
    n_var: int
    n_constraints: int = 0
    capabilities: frozenset = frozenset()
    #: Whether ``f(x, .)`` is convex for every ``x``. If not, ``solve`` returns a
    #: local minimiser and the implicit-function formula of the hypergradient
    #: holds only where one is reached exactly (see :func:`skbilevel._selection.select_method`).
    convex: bool = True

    @abstractmethod
    def value(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return ``f(x, y)``."""

    @abstractmethod
    def grad_y(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return ``grad_y f(x, y)``, shape ``(n_var,)``."""

    def grad_x(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return ``grad_x f(x, y)``, shape ``(n_hyper,)``."""
        raise NotImplementedError

    def hvp(self, x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Return ``grad^2_yy f(x, y) @ v``, shape ``(n_var,)``."""
        raise NotImplementedError

    def cross_vjp(self, x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Return ``grad_x (grad_y f(x, y) . v)``, shape ``(n_hyper,)``."""
        raise NotImplementedError

    def hvp_operator(self, x: np.ndarray, y: np.ndarray):
        """Return ``v -> grad^2_yy f(x, y) @ v`` at a fixed point, for repeated products.

        The default calls :meth:`hvp`; a lower level whose products share work
        at a fixed point (a forward pass) overrides it to do that work once.
        """
        return lambda v: self.hvp(x, y, v)

    # -- linear constraints A y - b(x) >= 0 ---------------------------------
    def constraint_matrix(self):
        """Return ``A`` as a dense array or a scipy sparse matrix."""
        raise NotImplementedError

    def A_matvec(self, y: np.ndarray) -> np.ndarray:
        """Return ``A @ y``."""
        return self.constraint_matrix() @ y

    def A_rmatvec(self, u: np.ndarray) -> np.ndarray:
        """Return ``A.T @ u``."""
        return self.constraint_matrix().T @ u

    def b(self, x: np.ndarray) -> np.ndarray:
        """Return the right-hand side ``b(x)``, shape ``(n_constraints,)``."""
        raise NotImplementedError

    def b_vjp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Return ``(db/dx).T @ u``, shape ``(n_hyper,)``."""
        raise NotImplementedError

    def slack(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return ``g(x, y) = A y - b(x)``."""
        return self.A_matvec(y) - self.b(x)

    def slack_vjp(self, x: np.ndarray, y: np.ndarray, u: np.ndarray):
        """Return ``(grad_x (g . u), grad_y (g . u))``."""
        return -self.b_vjp(x, u), self.A_rmatvec(u)

    # -- optional helpers -----------------------------------------------------
    def solve(self, x: np.ndarray, y0: np.ndarray | None = None, tol: float = 1e-10):
        """Return a minimiser of the lower-level problem at ``x``."""
        raise NotImplementedError

    def adjoint(self, x: np.ndarray, y: np.ndarray, grad_y: np.ndarray):
        """Solve the adjoint system of implicit differentiation at a solution ``y`` of ``x``.

        Return ``(v, mu)`` with ``grad^2_yy f v + A_I^T mu_I = grad_y``,
        ``A_I v = 0`` and ``mu`` zero off the active set ``I`` (``mu`` of size
        ``n_constraints``, empty when unconstrained); see
        :mod:`skbilevel.methods.hypergradient`.
        """
        raise NotImplementedError

    def preconditioner(self, x: np.ndarray, y: np.ndarray):
        """Return a ``LinearOperator`` approximating ``(grad^2_yy f(x, y))^{-1}``, or None.

        The conjugate-gradient solves of the adjoint system apply it to their
        residuals: it changes how many Hessian-vector products they take,
        not their answer.
        """
        raise NotImplementedError

    def feasible_start(self, x: np.ndarray) -> np.ndarray:
        """Return a point ``y`` with ``A y - b(x) >= 0`` (default: least norm on ``A y = b``)."""
        A = self.constraint_matrix()
        A = A.toarray() if hasattr(A, "toarray") else np.asarray(A)
        return np.linalg.lstsq(A, self.b(x), rcond=None)[0]

    def default_lme(self):
        """Return the Lagrange multiplier expression suited to this problem, or None."""
        return None


@dataclass(frozen=True)
class BilevelProblem:
    """An upper level, a lower level and the box ``x_bounds`` on ``x``.

    Parameters
    ----------
    upper : UpperLevel
        The upper objective ``F(x, y)``.
    lower : LowerLevel
        The lower-level problem ``min_y f(x, y)`` (s.t. ``A y - b(x) >= 0``).
    x_bounds : tuple of arrays or None
        ``(low, high)`` for the hyperparameters (the set ``X`` of eq. (1.1)).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the bilevel problem (1.1).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import BilevelProblem, TargetUpper, example_2_2
    >>> lower = example_2_2().lower
    >>> problem = BilevelProblem(TargetUpper(np.zeros(3)), lower, x_bounds=(-np.ones(3), np.ones(3)))
    >>> problem.lower.n_hyper, problem.lower.n_var, problem.lower.n_constraints
    (3, 3, 1)
    """

    upper: UpperLevel
    lower: LowerLevel
    x_bounds: tuple | None = None


def require(method: str, lower: LowerLevel, needed) -> None:
    """Raise ``ValueError`` naming what ``lower`` lacks for ``method``.

    Parameters
    ----------
    method : str
        Name of the method, for the message.
    lower : LowerLevel
        The lower level to check.
    needed : iterable of str
        Capabilities the method uses (from :data:`CAPABILITIES`).

    Returns
    -------
    None
        Nothing: the check passes silently.

    Raises
    ------
    ValueError
        When ``lower.capabilities`` lacks one of ``needed``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the LME-MPEC (2.4) needs the lower level's constraints and second
       derivatives, which is what such a check guards.

    Examples
    --------
    >>> from skbilevel.problems import WeightedSquaredHingeSVM, require
    >>> import numpy as np
    >>> svm = WeightedSquaredHingeSVM(np.eye(2), np.array([-1.0, 1.0]))
    >>> require("lme-mpec", svm, ("hvp", "cross_vjp", "constraints"))
    >>> require("my-method", svm, ("hessian",))
    Traceback (most recent call last):
    ...
    ValueError: method 'my-method' needs the lower-level capabilities ['hessian']; WeightedSquaredHingeSVM does not provide ['hessian'].
    """
    missing = sorted(set(needed) - set(lower.capabilities))
    if missing:
        raise ValueError(
            f"method {method!r} needs the lower-level capabilities {sorted(needed)}; "
            f"{type(lower).__name__} does not provide {missing}."
        )
