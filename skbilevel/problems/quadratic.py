"""A linearly constrained convex quadratic lower level, and the polynomial Example 2.2 of Huang et al. (2025)."""

from __future__ import annotations

import numpy as np

from .base import BilevelProblem, LowerLevel, UpperLevel


class QuadraticLowerLevel(LowerLevel):
    """``f(x, y) = 1/2 y^T Q y + y^T (P x + q) + 1/2 x^T R x`` s.t. ``A y - (B x + b0) >= 0``.

    ``Q`` must be positive semidefinite for the lower level to be convex.

    Parameters
    ----------
    Q : array (n_var, n_var)
        Quadratic term of ``f`` in ``y``; only its symmetric part
        ``(Q + Q^T) / 2``, the Hessian, enters ``f`` and is kept.
    P : array (n_var, n_hyper)
        Coupling of ``y`` and ``x`` (``grad^2_yx f = P``).
    q : array (n_var,)
        Linear term in ``y``.
    A : array (n_constraints, n_var)
        Constraint matrix (``n_constraints = 0`` for an unconstrained lower level).
    B : array (n_constraints, n_hyper)
        Dependence of the right-hand side ``b(x) = B x + b0`` on ``x``.
    b0 : array (n_constraints,)
        Constant part of the right-hand side.
    R : array (n_hyper, n_hyper), optional
        Only changes the value of ``f``, not its minimisers.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       a convex lower level with linear constraints ``A y - b(x) >= 0`` as
       in (1.1); Example 2.2 is one.

    Examples
    --------
    ``min 1/2 ||y||^2 - y^T x`` s.t. ``y_1 + y_2 <= 1`` at ``x = (1, 1)``:

    >>> import numpy as np
    >>> from skbilevel.problems import QuadraticLowerLevel
    >>> lower = QuadraticLowerLevel(Q=np.eye(2), P=-np.eye(2), q=np.zeros(2), A=[[-1.0, -1.0]],
    ...                             B=np.zeros((1, 2)), b0=[-1.0])
    >>> y, converged = lower.solve(np.ones(2))
    >>> np.round(y, 4), converged
    (array([0.5, 0.5]), True)
    """

    capabilities = frozenset({"grad_x", "hvp", "cross_vjp", "constraints", "solve"})

    def __init__(self, Q, P, q, A, B, b0, R=None):
        self.Q, self.P, self.q = (np.asarray(a, dtype=float) for a in (Q, P, q))
        self.Q = 0.5 * (self.Q + self.Q.T)  # y^T Q y sees only the symmetric part
        self.A, self.B, self.b0 = (np.atleast_2d(np.asarray(A, float)), np.atleast_2d(np.asarray(B, float)),
                                   np.atleast_1d(np.asarray(b0, float)))
        self.n_var, self.n_hyper = self.P.shape
        self.n_constraints = self.A.shape[0]
        self.R = np.zeros((self.n_hyper, self.n_hyper)) if R is None else np.asarray(R, float)

    def value(self, x, y):
        return 0.5 * y @ self.Q @ y + y @ (self.P @ x + self.q) + 0.5 * x @ self.R @ x

    def grad_y(self, x, y):
        return self.Q @ y + self.P @ x + self.q

    def grad_x(self, x, y):
        return self.P.T @ y + 0.5 * (self.R + self.R.T) @ x

    def symbolic_value(self, ca, x, y):
        """``f`` as a casadi expression of the symbols ``x`` and ``y`` (for IPOPT)."""
        Q, P, q, R = (ca.DM(a) for a in (self.Q, self.P, self.q, self.R))
        return 0.5 * ca.dot(y, ca.mtimes(Q, y)) + ca.dot(y, ca.mtimes(P, x) + q) + 0.5 * ca.dot(x, ca.mtimes(R, x))

    def symbolic_grad_y(self, ca, x, y):
        """``grad_y f = Q y + P x + q`` as a casadi expression."""
        return ca.mtimes(ca.DM(self.Q), y) + ca.mtimes(ca.DM(self.P), x) + ca.DM(self.q)

    def symbolic_b(self, ca, x):
        """``b(x) = B x + b0`` as a casadi expression."""
        return ca.mtimes(ca.DM(self.B), x) + ca.DM(self.b0)

    def hvp(self, x, y, v):
        return self.Q @ v

    def cross_vjp(self, x, y, v):
        return self.P.T @ v

    def constraint_matrix(self):
        return self.A

    def b(self, x):
        return self.B @ x + self.b0

    def b_vjp(self, x, u):
        return self.B.T @ u

    def solve(self, x, y0=None, tol=1e-10):
        """Solve the lower-level QP at ``x`` with cvxpy (Clarabel); return ``(y, converged)``.

        ``y0`` is not used: interior-point solvers gain nothing from a warm start.
        """
        import cvxpy as cp

        y = cp.Variable(self.n_var)
        objective = 0.5 * cp.quad_form(y, cp.psd_wrap(self.Q)) + y @ (self.P @ x + self.q)
        constraints = [self.A @ y >= self.b(x)] if self.n_constraints else []
        problem = cp.Problem(cp.Minimize(objective), constraints)
        eps = max(tol, 1e-12)
        try:
            problem.solve(solver=cp.CLARABEL, tol_gap_abs=eps, tol_gap_rel=eps, tol_feas=eps)
        except cp.SolverError:
            return np.zeros(self.n_var), False
        ok = problem.status == cp.OPTIMAL and y.value is not None
        return (np.asarray(y.value, dtype=float) if ok else np.zeros(self.n_var)), ok


class TargetUpper(UpperLevel):
    """``F(x, y) = 1/2 ||y - t||^2 + rho/2 ||x||^2``: fit a target with a ridge on ``x``.

    Parameters
    ----------
    t : array-like of shape (n_var,)
        The target of ``y``.
    rho : float, default=0.0
        Weight of the ridge on ``x``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       a smooth upper level ``F`` of the implicit-function model (5.1).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import TargetUpper
    >>> upper = TargetUpper([1.0, 1.0], rho=0.1)
    >>> upper.value(np.ones(2), np.zeros(2))
    1.1
    >>> upper.gradient(np.ones(2), np.zeros(2))
    (array([0.1, 0.1]), array([-1., -1.]))
    """

    def __init__(self, t, rho: float = 0.0):
        self.t, self.rho = np.asarray(t, dtype=float), float(rho)

    def symbolic_value(self, ca, x, y):
        """``F`` as a casadi expression of the symbols ``x`` and ``y`` (for IPOPT)."""
        r = y - ca.DM(self.t)
        return 0.5 * ca.dot(r, r) + 0.5 * self.rho * ca.dot(x, x)

    def value(self, x, y):
        return 0.5 * float(np.sum((y - self.t) ** 2)) + 0.5 * self.rho * float(x @ x)

    def gradient(self, x, y):
        return self.rho * x, y - self.t


def quadratic_bilevel(Q, M, t, rho, x_bounds=None):
    """Unconstrained quadratic bilevel problem and its solution.

    Lower level ``min_y 1/2 y^T Q y - y^T M x`` (so ``y(x) = Q^{-1} M x``),
    upper level :class:`TargetUpper`. With ``G = Q^{-1} M`` the solution is
    ``x* = (G^T G + rho I)^{-1} G^T t`` (when inside ``x_bounds``).
    Returns ``(problem, x_star)``.

    Parameters
    ----------
    Q : array-like of shape (n_var, n_var)
        Positive definite Hessian of the lower level.
    M : array-like of shape (n_var, n_hyper)
        Coupling: ``y(x) = Q^{-1} M x``.
    t : array-like of shape (n_var,)
        Target of the upper level.
    rho : float
        Ridge weight on ``x`` in the upper level (``rho > 0``, or ``G`` of
        full column rank).
    x_bounds : tuple of 2 arrays, optional
        Box on ``x``; ``x_star`` ignores it.

    Returns
    -------
    problem : BilevelProblem
        The problem, with a :class:`QuadraticLowerLevel` and a
        :class:`TargetUpper`.
    x_star : ndarray of shape (n_hyper,)
        Its solution when unconstrained.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       the implicit-function model (5.1); here ``y(x)`` and the
       hypergradient of section 5.1 are linear, so the solution is in
       closed form.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> np.round(x_star, 4)
    array([1.4286, 1.5385])
    """
    Q, M = np.asarray(Q, float), np.asarray(M, float)
    n_var, n_hyper = M.shape
    lower = QuadraticLowerLevel(Q=Q, P=-M, q=np.zeros(n_var), A=np.zeros((0, n_var)),
                                B=np.zeros((0, n_hyper)), b0=np.zeros(0))
    G = np.linalg.solve(Q, M)
    x_star = np.linalg.solve(G.T @ G + rho * np.eye(n_hyper), G.T @ np.asarray(t, float))
    return BilevelProblem(TargetUpper(t, rho), lower, x_bounds), x_star


class Example22Upper(UpperLevel):
    """The quartic upper level (2.5) of Example 2.2 of Huang et al. (2025) (in ``x, y`` of size 3).

    ``F = sum_i u_i^2 + 2 (x1^2 y2^2 + x2^2 y3^2 + x3^2 y1^2) - 2 (u1 u2 + u1 u3 + u2 u3)``
    with ``u = x * y``; its minimum value is 0.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       Example 2.2, the upper objective of (2.5).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import Example22Upper
    >>> Example22Upper().value(np.ones(3), np.ones(3))
    3.0
    """

    _SHIFT = np.array([1, 2, 0])  # pairs (x1, y2), (x2, y3), (x3, y1)

    def value(self, x, y):
        u, ys = x * y, y[self._SHIFT]
        return float(u @ u + 2 * (x**2) @ (ys**2) - 2 * (u[0] * u[1] + u[0] * u[2] + u[1] * u[2]))

    def symbolic_value(self, ca, x, y):
        """``F`` as a casadi expression of the symbols ``x`` and ``y`` (for IPOPT)."""
        u, ys = x * y, y[self._SHIFT.tolist()]
        return (ca.dot(u, u) + 2 * ca.dot(x**2, ys**2)
                - 2 * (u[0] * u[1] + u[0] * u[2] + u[1] * u[2]))

    def gradient(self, x, y):
        u, ys = x * y, y[self._SHIFT]
        dF_du = 2 * u - 2 * (u.sum() - u)
        gx = dF_du * y + 4 * x * ys**2
        gy = dF_du * x
        gy[self._SHIFT] += 4 * x**2 * ys
        return gx, gy


def example_2_2() -> BilevelProblem:
    """Return Example 2.2 of Huang et al. (2025).

    Lower level ``min_y -x^T x + y^T y`` s.t. ``sum(x) - sum(y) >= 0``, i.e. ``Q = 2 I``,
    ``A = -e^T``, ``b(x) = -e^T x``; upper level :class:`Example22Upper`. ``F_min = 0``.

    Returns
    -------
    BilevelProblem
        The problem, without bounds on ``x``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       Example 2.2, problem (2.5) and its lower level, section 2; the paper
       reports ``F_min = 0`` at ``x = (0.1125, 0.1125, 0.1125)``,
       ``y = (-0.0014, -0.0014, -0.0014)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import example_2_2
    >>> problem = example_2_2()
    >>> x = np.full(3, 0.1125)
    >>> y, converged = problem.lower.solve(x)  # the constraint is inactive: y(x) = 0
    >>> converged, bool(np.abs(y).max() < 1e-6), round(problem.upper.value(x, y), 6)
    (True, True, 0.0)
    """
    e = np.ones((1, 3))
    lower = QuadraticLowerLevel(Q=2 * np.eye(3), P=np.zeros((3, 3)), q=np.zeros(3), A=-e, B=-e,
                                b0=np.zeros(1), R=-2 * np.eye(3))
    return BilevelProblem(Example22Upper(), lower)
