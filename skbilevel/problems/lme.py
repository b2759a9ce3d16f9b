"""Lagrange multiplier expressions (LMEs): section 2 of Huang et al. (2025).

For a lower level ``min_y f(x, y)`` s.t. ``g(x, y) = A y - b(x) >= 0`` the KKT
system (1.2) reads ``H(x, y) lambda = fhat(x, y)`` with (2.1)

.. math::

    H = \\begin{bmatrix} A^T \\\\ \\operatorname{diag}(A y - b(x)) \\end{bmatrix}, \\qquad
    \\hat f = \\begin{bmatrix} \\nabla_y f \\\\ 0 \\end{bmatrix}.

An LME is a function ``tau(x, y)`` equal to the multiplier at every KKT point
(Definition 2.1). Each class below offers

* ``value(lower, x, y)``: ``tau(x, y)``, shape ``(n_constraints,)``;
* ``vjp(lower, x, y, u)``: ``(grad_x (tau . u), grad_y (tau . u))``,

built only from the lower level's protocol (``grad_y``, ``hvp``,
``cross_vjp``, ``A``, ``b``, ``b_vjp``), so every expression works with every
lower level that offers those capabilities.
"""

from __future__ import annotations

import numpy as np

from .base import require

_NEEDS = ("hvp", "cross_vjp", "constraints")


def _grad_y_vjp(lower, x, y, v):
    """Return ``(grad_x (grad_y f . v), grad_y (grad_y f . v))``."""
    return lower.cross_vjp(x, y, v), lower.hvp(x, y, v)


def _dense(A):
    return A.toarray() if hasattr(A, "toarray") else np.asarray(A, dtype=float)


class PseudoInverseLME:
    """The general LME (2.3): ``tau = H^dagger fhat``.

    ``H^dagger`` is computed as a least-squares solve, which equals
    ``(H^T H)^{-1} H^T`` whenever ``H`` has full column rank (the general case,
    section 2 of Huang et al. (2025)) and gives the minimum-norm multiplier otherwise. The
    derivative below assumes full column rank; with ``w = (H^T H)^{-1} u`` and
    ``r = fhat - H tau``,

    .. math::

        u^T d\\tau = (r_{bot} \\odot w - (Hw)_{bot} \\odot \\tau)^T\\, d(Ay - b) + (Hw)_{top}^T\\, d\\nabla_y f.

    Dense: meant for lower levels with up to a few hundred constraints.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the system ``H lambda = fhat`` (2.1), Definition 2.1 and the
       pseudo-inverse LME (2.3), section 2.

    Examples
    --------
    Example 2.2 of Huang et al. (2025) at ``x = (-1, -1, -1)``, where the multiplier
    is 2:

    >>> import numpy as np
    >>> from skbilevel.problems import example_2_2
    >>> lower = example_2_2().lower  # min y^T y - x^T x  s.t.  sum(x) - sum(y) >= 0
    >>> x = -np.ones(3)
    >>> y, converged = lower.solve(x)  # the constraint is active: y = x
    >>> PseudoInverseLME().value(lower, x, y).round(6)
    array([2.])
    """

    def _system(self, lower, x, y):
        A = _dense(lower.constraint_matrix())
        H = np.vstack([A.T, np.diag(lower.slack(x, y))])
        fhat = np.concatenate([lower.grad_y(x, y), np.zeros(lower.n_constraints)])
        return H, fhat

    def value(self, lower, x, y):
        require("PseudoInverseLME", lower, _NEEDS)
        H, fhat = self._system(lower, x, y)
        return np.linalg.lstsq(H, fhat, rcond=None)[0]

    def symbolic_value(self, ca, lower, grad_y, slack):
        """``tau = (H^T H)^{-1} H^T fhat`` as a casadi expression, from those of ``grad_y f`` and
        ``A y - b(x)`` (for IPOPT; a dense solve, as :meth:`value`'s, assuming full column rank)."""
        H = ca.vertcat(ca.DM(_dense(lower.constraint_matrix()).T), ca.diag(slack))
        fhat = ca.vertcat(grad_y, ca.DM.zeros(lower.n_constraints))
        return ca.solve(ca.mtimes(H.T, H), ca.mtimes(H.T, fhat))

    def vjp(self, lower, x, y, u):
        H, fhat = self._system(lower, x, y)
        tau = np.linalg.lstsq(H, fhat, rcond=None)[0]
        w = np.linalg.lstsq(H.T @ H, u, rcond=None)[0]
        Hw, r = H @ w, fhat - H @ tau
        p = lower.n_var
        a = r[p:] * w - Hw[p:] * tau
        gx_s, gy_s = lower.slack_vjp(x, y, a)
        gx_f, gy_f = _grad_y_vjp(lower, x, y, Hw[:p])
        return gx_s + gx_f, gy_s + gy_f


class MatrixLME:
    """The LME (2.2) for a constant matrix ``L`` with ``L H(x, y) = I``: ``tau = L fhat``.

    Only the first ``n_var`` columns of ``L`` meet a nonzero part of ``fhat``.
    Example 2.2 of Huang et al. (2025) uses ``L = [-1/3, -1/3, -1/3, 0]``.

    Parameters
    ----------
    L : array-like of shape (n_constraints, n_var + n_constraints)
        The constant left inverse of ``H(x, y)``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the LME (2.2), section 2, and Example 2.2.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import example_2_2
    >>> lower = example_2_2().lower  # min y^T y - x^T x  s.t.  sum(x) - sum(y) >= 0
    >>> x = -np.ones(3)
    >>> y, converged = lower.solve(x)  # the constraint is active: y = x
    >>> MatrixLME([[-1 / 3, -1 / 3, -1 / 3, 0.0]]).value(lower, x, y).round(6)
    array([2.])
    """

    def __init__(self, L):
        self.L = np.atleast_2d(np.asarray(L, dtype=float))

    def symbolic_value(self, ca, lower, grad_y, slack):
        """``tau`` as a casadi expression, from those of ``grad_y f`` and ``A y - b(x)`` (for IPOPT)."""
        return ca.mtimes(ca.DM(self.L[:, : lower.n_var]), grad_y)

    def value(self, lower, x, y):
        return self.L[:, : lower.n_var] @ lower.grad_y(x, y)

    def vjp(self, lower, x, y, u):
        return _grad_y_vjp(lower, x, y, self.L[:, : lower.n_var].T @ u)


class IdentityBlockLME:
    """``tau = (grad_y f)[columns]``, valid when ``A[:, columns] = I``.

    Then the rows ``columns`` of ``A^T lambda = grad_y f`` read ``lambda = (grad_y f)[columns]``.
    This is the SVM expression of Huang et al. (2025), section 4, where ``columns`` are
    the slack variables ``xi``: ``tau = [0, I] grad f = omega * xi``.

    Parameters
    ----------
    columns : slice
        The columns of ``A`` that form an identity block (one per constraint).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the LME of the SVM, section 4 (after the constraint matrix (4.1)).

    Examples
    --------
    The squared-hinge SVM on four samples, ``y = (w, b, xi)``; the two
    samples inside the margin have positive multipliers:

    >>> import numpy as np
    >>> from skbilevel.problems import WeightedSquaredHingeSVM
    >>> svm = WeightedSquaredHingeSVM(np.array([[-3.0], [-1.0], [1.0], [3.0]]), np.array([-1.0, -1.0, 1.0, 1.0]))
    >>> c = np.zeros(4)
    >>> y, converged = svm.solve(c)
    >>> IdentityBlockLME(slice(2, 6)).value(svm, c, y).round(4)
    array([0.    , 0.3333, 0.3333, 0.    ])
    """

    def __init__(self, columns: slice):
        self.columns = columns

    def value(self, lower, x, y):
        return lower.grad_y(x, y)[self.columns]

    def symbolic_value(self, ca, lower, grad_y, slack):
        """``tau`` as a casadi expression, from those of ``grad_y f`` and ``A y - b(x)`` (for IPOPT)."""
        return grad_y[self.columns]

    def vjp(self, lower, x, y, u):
        v = np.zeros(lower.n_var)
        v[self.columns] = u
        return _grad_y_vjp(lower, x, y, v)


class BoxLME:
    """Closed-form LME for ``l(x) <= y <= u(x)`` (Huang et al. (2025), section 2).

    The constraints must be written ``A = [I; -I]``, ``b(x) = [l(x); -u(x)]``. With
    ``G = grad_y f`` and ``r = u - l > 0``:
    ``tau_i = (u_i - y_i) G_i / r_i`` and ``tau_{p+i} = (l_i - y_i) G_i / r_i``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       "Box constraints", section 2.

    Examples
    --------
    ``min 1/2 y^2 + 2 y`` over ``0 <= y <= 1``: the solution ``y = 0`` sits on
    the lower bound, whose multiplier is ``f'(0) = 2``:

    >>> import numpy as np
    >>> from skbilevel.problems import QuadraticLowerLevel
    >>> lower = QuadraticLowerLevel(Q=[[1.0]], P=[[0.0]], q=[2.0], A=[[1.0], [-1.0]],
    ...                             B=[[0.0], [0.0]], b0=[0.0, -1.0])
    >>> BoxLME().value(lower, np.zeros(1), np.zeros(1))
    array([2., 0.])
    """

    def _parts(self, lower, x, y):
        p = lower.n_var
        bx = lower.b(x)
        lo, hi = bx[:p], -bx[p:]
        if not np.all(np.isfinite(hi - lo) & (hi - lo > 0)):
            raise ValueError("BoxLME needs finite bounds l(x) < u(x) in every coordinate; got widths "
                             f"{np.round(hi - lo, 6).tolist()}")
        return lo, hi, lower.grad_y(x, y)

    def value(self, lower, x, y):
        lo, hi, G = self._parts(lower, x, y)
        r = hi - lo
        return np.concatenate([(hi - y) * G / r, (lo - y) * G / r])

    def vjp(self, lower, x, y, u):
        lo, hi, G = self._parts(lower, x, y)
        p = lower.n_var
        u1, u2 = u[:p], u[p:]
        r = hi - lo
        coef_G = (u1 * (hi - y) + u2 * (lo - y)) / r
        gx, gy = _grad_y_vjp(lower, x, y, coef_G)
        gy = gy - (u1 + u2) * G / r
        dr = coef_G * G / r  # d tau . u / d r, with a minus sign applied below
        coef_hi = u1 * G / r - dr
        coef_lo = u2 * G / r + dr
        gx = gx + lower.b_vjp(x, np.concatenate([coef_lo, -coef_hi]))
        return gx, gy


class SimplexLME:
    """Closed-form LME for ``y >= l(x)``, ``sum(y) <= u0(x)``.

    The constraints must be written ``A = [I; -e^T]``, ``b(x) = [l(x); -u0(x)]``.
    With ``G = grad_y f`` and ``s = u0 - sum(l) > 0``:

    .. math::

        \\tau_{p+1} = (l - y)^T G / s, \\qquad \\tau_i = G_i + \\tau_{p+1}.

    Huang et al. (2025) print ``tau_i = (u0 - y_i) G_i / s`` for ``i <= p``; that agrees with the
    above only for ``p = 1``. Since ``G = lambda_{1:p} - lambda_{p+1} e`` at a KKT
    point, ``lambda_i = G_i + lambda_{p+1}``, which is what we implement (and test
    against solver multipliers).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       "Simplex constraints", section 2 (corrected for ``p > 1`` as above).

    Examples
    --------
    ``min 1/2 ||y||^2 - 2 y_1`` over ``y >= 0``, ``y_1 + y_2 <= 1``: at the
    solution ``y = (1, 0)`` the constraints ``y_2 >= 0`` and the sum are active:

    >>> import numpy as np
    >>> from skbilevel.problems import QuadraticLowerLevel
    >>> lower = QuadraticLowerLevel(Q=np.eye(2), P=np.zeros((2, 1)), q=[-2.0, 0.0],
    ...                             A=[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], B=np.zeros((3, 1)),
    ...                             b0=[0.0, 0.0, -1.0])
    >>> SimplexLME().value(lower, np.zeros(1), np.array([1.0, 0.0]))
    array([0., 1., 1.])
    """

    def _parts(self, lower, x, y):
        p = lower.n_var
        bx = lower.b(x)
        lo, u0 = bx[:p], -bx[p]
        s = u0 - lo.sum()
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"SimplexLME needs finite bounds with u0(x) - sum(l(x)) > 0; got {s}")
        return lo, u0, lower.grad_y(x, y), s

    def value(self, lower, x, y):
        lo, _, G, s = self._parts(lower, x, y)
        last = (lo - y) @ G / s
        return np.concatenate([G + last, [last]])

    def vjp(self, lower, x, y, u):
        lo, _, G, s = self._parts(lower, x, y)
        p = lower.n_var
        k = u[:p].sum() + u[p]  # weight of tau_{p+1} in tau . u
        last = (lo - y) @ G / s
        gx, gy = _grad_y_vjp(lower, x, y, u[:p] + k * (lo - y) / s)
        gy = gy - k * G / s
        # d last / d lo_j = G_j / s + last / s ;  d last / d u0 = -last / s
        coef_lo = k * (G + last) / s
        coef_u0 = -k * last / s
        gx = gx + lower.b_vjp(x, np.concatenate([coef_lo, [-coef_u0]]))
        return gx, gy


class EqualityLME:
    """Multiplier of equality constraints ``A_eq y = b(x)``: ``nu = (A A^T)^{-1} A grad_y f``.

    Valid when ``A_eq^T`` has full column rank (Huang et al. (2025), section 2). Written as
    the pair of inequalities ``[A; -A] y - [b; -b] >= 0``, the multipliers are any
    ``(lambda+, lambda-)`` with ``lambda+ - lambda- = nu``.

    Parameters
    ----------
    A_eq : array-like or sparse matrix of shape (n_eq, n_var)
        The equality constraint matrix.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       "Equality constraints", section 2.

    Examples
    --------
    ``min 1/2 ||y||^2`` s.t. ``y_1 + y_2 = 1``, solved by ``y = (1/2, 1/2)``:

    >>> import numpy as np
    >>> from skbilevel.problems import QuadraticLowerLevel
    >>> lower = QuadraticLowerLevel(Q=np.eye(2), P=np.zeros((2, 1)), q=np.zeros(2),
    ...                             A=[[1.0, 1.0], [-1.0, -1.0]], B=np.zeros((2, 1)), b0=[1.0, -1.0])
    >>> EqualityLME([[1.0, 1.0]]).value(lower, np.zeros(1), np.array([0.5, 0.5]))
    array([0.5])
    """

    def __init__(self, A_eq):
        self.A_eq = _dense(A_eq)
        self._gram = self.A_eq @ self.A_eq.T

    def value(self, lower, x, y):
        return np.linalg.solve(self._gram, self.A_eq @ lower.grad_y(x, y))

    def vjp(self, lower, x, y, u):
        return _grad_y_vjp(lower, x, y, self.A_eq.T @ np.linalg.solve(self._gram, u))
