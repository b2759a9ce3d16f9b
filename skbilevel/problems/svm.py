"""The squared-slack L2-SVM with per-sample weights: the lower level of Huang et al. (2025), section 4.

.. math::

    \\min_{w, b, \\xi} \\; f(c, w, b, \\xi) = \\tfrac12 \\|w\\|^2 + \\tfrac12 \\sum_{i=1}^{N} \\omega_i(c) \\xi_i^2
    \\quad \\text{s.t.} \\quad y_i (w^T x_i + b) \\ge 1 - \\xi_i,

with ``omega_i(c) = s_i exp(c_i)`` (one hyperparameter per sample, the paper's
model) or ``omega_i(c) = s_i exp(c)`` (a single hyperparameter, i.e. ``C = e^c``);
``s`` are fixed sample weights. The variable is ``y = (w, b, xi)`` and the
constraint matrix is (4.1), ``A = [diag(y) X, y, I_N]`` with ``b(c) = 1``.
Because ``A`` has an identity block on ``xi``, the multipliers are
``lambda = omega * xi`` (section 4), see :class:`skbilevel.problems.lme.IdentityBlockLME`.

Eliminating ``xi`` gives the weighted squared hinge ``1/2 sum_i omega_i
max(0, 1 - y_i (w^T x_i + b))^2`` of the decision function ``w^T x + b``:
:meth:`WeightedSquaredHingeSVM.solve` minimises it with the
:class:`~skbilevel.problems.datafits.SquaredHinge` datafit and the
:class:`~skbilevel.problems.linear_model.LinearModel` shared with the other
linear lower levels.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, cg
from sklearn.exceptions import ConvergenceWarning

from .._warnings import warn
from .base import LowerLevel
from .datafits import SquaredHinge
from .linear_model import LinearModel
from .lme import IdentityBlockLME

# Above this many features the lower-level Newton steps and the start (4.2)
# use conjugate gradients instead of a dense (n_features + 1)^2 factorisation.
_DENSE_FEATURE_LIMIT = 2000


class WeightedSquaredHingeSVM(LowerLevel):
    """Lower level of the bilevel SVM (Huang et al. (2025), section 4).

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples.
    y : array of shape (n_samples,) with values in {-1, +1}
        Their labels.
    per_sample : bool, default=True
        One hyperparameter ``c_i`` per sample (True) or a single ``c`` (False).
    sample_weight : array of shape (n_samples,) or None
        Fixed weights ``s_i`` multiplying ``exp(c)``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the SVM lower level of section 4 with its constraint matrix (4.1),
       the multiplier expression ``tau = [0, I] grad f`` and the starting
       point (4.2) (:meth:`feasible_start`).

    Examples
    --------
    The variable is ``y = (w, b, xi)``; at ``C = 1`` the two inner samples
    lie inside the margin (``xi > 0``):

    >>> import numpy as np
    >>> from skbilevel.problems import WeightedSquaredHingeSVM
    >>> svm = WeightedSquaredHingeSVM(np.array([[-3.0], [-1.0], [1.0], [3.0]]),
    ...                               np.array([-1.0, -1.0, 1.0, 1.0]), per_sample=False)
    >>> svm.n_hyper, svm.n_var, svm.n_constraints
    (1, 6, 4)
    >>> y, converged = svm.solve(np.zeros(1))
    >>> w, b, xi = svm.split(y)
    >>> np.round(w, 4), bool(abs(b) < 1e-8), np.round(xi, 4)
    (array([0.6667]), True, array([0.    , 0.3333, 0.3333, 0.    ]))
    """

    capabilities = frozenset({"grad_x", "hvp", "cross_vjp", "constraints", "solve", "adjoint"})

    def __init__(self, X, y, *, per_sample: bool = True, sample_weight=None):
        self.X = X
        self.y = np.asarray(y, dtype=float)
        self.per_sample = per_sample
        n, p = X.shape
        self.sample_weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        self.n_features, self.n_samples = p, n
        self.n_hyper = n if per_sample else 1
        self.n_var = p + 1 + n
        self.n_constraints = n
        self.linear = LinearModel(p)  # the decision function x -> w^T x + b of theta = (w, b)
        self.datafit = SquaredHinge(self.y)  # its residual max(0, 1 - y_i d_i) is the slack xi_i at a solution

    # -- layout ---------------------------------------------------------------
    def split(self, y):
        """Return the views ``(w, b, xi)`` of ``y``."""
        p = self.n_features
        return y[:p], y[p], y[p + 1 :]

    def weights(self, x):
        """Return ``omega(x) = s * exp(x)``."""
        return self.sample_weight * np.exp(x if self.per_sample else x[0])

    def _reduce_x(self, per_sample_grad):
        """Map a gradient wrt ``log omega_i`` to a gradient wrt ``x``."""
        return per_sample_grad if self.per_sample else np.array([per_sample_grad.sum()])

    # -- objective ------------------------------------------------------------
    def value(self, x, y):
        w, _, xi = self.split(y)
        return 0.5 * w @ w + 0.5 * self.weights(x) @ xi**2

    def grad_y(self, x, y):
        w, _, xi = self.split(y)
        return np.concatenate([w, [0.0], self.weights(x) * xi])

    def grad_x(self, x, y):
        _, _, xi = self.split(y)
        return self._reduce_x(0.5 * self.weights(x) * xi**2)

    def symbolic_value(self, ca, x, y):
        """``f`` as a casadi expression of the symbols ``x`` and ``y`` (for IPOPT, which derives from it
        the exact sparse derivatives of the penalty programs; see ``skbilevel.methods._ipopt``)."""
        p = self.n_features
        w, xi = y[:p], y[p + 1 :]
        omega = ca.DM(self.sample_weight) * ca.exp(x if self.per_sample else x[0])
        return 0.5 * ca.dot(w, w) + 0.5 * ca.dot(omega, xi**2)

    def symbolic_grad_y(self, ca, x, y):
        """``grad_y f = (w, 0, omega * xi)`` as a casadi expression: written out, its derivatives cost
        casadi far less than those of the gradient it would derive from :meth:`symbolic_value`."""
        p = self.n_features
        omega = ca.DM(self.sample_weight) * ca.exp(x if self.per_sample else x[0])
        return ca.vertcat(y[:p], 0.0, omega * y[p + 1 :])

    def symbolic_b(self, ca, x):
        """``b(x)`` as a casadi expression: the constant 1 of (4.1)."""
        return ca.DM.ones(self.n_samples)

    @property
    def gradient_sign_columns(self):
        """The columns ``xi`` of ``y``, where ``(grad_y f)_j = omega_j xi_j`` has the sign of ``y_j``.

        The multiplier expression ``tau = (grad_y f)[xi]`` is then nonnegative
        exactly when ``xi`` is (``omega > 0``; with a zero sample weight the
        entry is 0, and ``xi_j >= 0`` only leaves out slack values that no
        solution needs), which lets LME-MPEC impose ``tau >= 0`` as bounds.
        """
        return slice(self.n_features + 1, self.n_var)

    def hvp(self, x, y, v):
        vw, _, vxi = self.split(v)
        return np.concatenate([vw, [0.0], self.weights(x) * vxi])

    def cross_vjp(self, x, y, v):
        _, _, xi = self.split(y)
        _, _, vxi = self.split(v)
        return self._reduce_x(self.weights(x) * xi * vxi)

    # -- constraints (4.1) ----------------------------------------------------
    def constraint_matrix(self):
        Xs = sp.csr_matrix(self.X)
        return sp.hstack(
            [sp.diags(self.y) @ Xs, sp.csr_matrix(self.y[:, None]), sp.identity(self.n_samples)],
            format="csr",
        )

    def A_matvec(self, y):
        w, b, xi = self.split(y)
        return self.y * (self.X @ w + b) + xi

    def A_rmatvec(self, u):
        yu = self.y * u
        return np.concatenate([self.X.T @ yu, [yu.sum()], u])

    def b(self, x):
        return np.ones(self.n_samples)

    def b_vjp(self, x, u):
        return np.zeros(self.n_hyper)

    def default_lme(self):
        return IdentityBlockLME(slice(self.n_features + 1, self.n_var))

    # -- solvers --------------------------------------------------------------
    def adjoint(self, x, y, grad_y):
        """Solve the active-set adjoint system by eliminating ``xi`` and the multipliers.

        At a solution the active constraints are ``I = {xi_i > 0}`` (squared
        slacks: ``lambda = omega * xi``). With ``Z = diag(y) [X, 1]`` the system
        ``H v + A_I^T mu = g``, ``A_I v = 0`` reduces to the generalised Newton
        system of :meth:`solve`,
        ``(diag(1, .., 1, 0) + Z_I^T diag(omega_I) Z_I) v_wb = g_wb - Z^T g_xi'``,
        then ``v_xi = -Z_I v_wb`` on ``I`` and ``mu_I = g_xi,I - omega_I v_xi,I``;
        off ``I``, ``v_xi = g_xi / omega`` and ``mu = 0``.
        """
        omega = self.weights(x)
        _, _, xi = self.split(y)
        p = self.n_features
        active = xi > 0
        g_wb, g_xi = grad_y[: p + 1], grad_y[p + 1 :]
        # the xi rows: omega_i v_xi_i + mu_i = g_xi_i, and on I: v_xi_i = -(Z v_wb)_i
        rhs = g_wb - self._Zt(np.where(active, g_xi, 0.0))
        ridge = np.ones(p + 1)
        ridge[-1] = 1e-12  # as in solve: guards a degenerate active set
        v_wb = self._solve_normal(omega * active, rhs, ridge)
        Zv = self._Z(v_wb)
        # off I: omega_i v_xi_i = g_xi_i (a zero-weight sample has g_xi_i = 0 and v_xi_i = 0)
        off = np.divide(g_xi, omega, out=np.zeros_like(g_xi), where=omega > 0)
        v_xi = np.where(active, -Zv, off)
        mu = np.where(active, g_xi - omega * v_xi, 0.0)
        return np.concatenate([v_wb, v_xi]), mu

    def feasible_start(self, x):
        """Least-norm solution of ``A y = 1``: the start (4.2) of Huang et al. (2025).

        ``y = A^T u`` with ``(Z Z^T + I) u = 1`` and ``Z = diag(y) [X, 1]``; by the
        Woodbury identity ``u = 1 - Z (I + Z^T Z)^{-1} Z^T 1``, so only a system of
        size ``n_features + 1`` is solved.
        """
        ones = np.ones(self.n_samples)
        rhs = self._Zt(ones)
        t = self._solve_normal(np.ones(self.n_samples), rhs, ridge=np.ones(self.n_features + 1))
        u = ones - self._Z(t)
        return self.A_rmatvec(u)

    def _Z(self, t):
        """Margins ``Z t = y * (X w + b)`` of ``t = (w, b)``."""
        return self.y * self.linear.decision(t, self.X)

    def _Zt(self, u):
        return self.linear.adjoint(self.y * u, self.X)

    def _solve_normal(self, d, rhs, ridge):
        """Solve ``(diag(ridge) + Z^T diag(d) Z) t = rhs``."""
        p = self.n_features
        if sp.issparse(self.X) or p > _DENSE_FEATURE_LIMIT:
            op = LinearOperator((p + 1, p + 1), matvec=lambda t: ridge * t + self._Zt(d * self._Z(t)))
            # Jacobi preconditioner: features of very different scales leave plain CG far from the
            # solution at its cap, where the preconditioned iteration reaches 1e-12
            # the diagonal of Z^T diag(d) Z: sum_i d_i x_ij^2 (no dense n x p square of X)
            col = np.asarray(self.X.multiply(self.X).T @ d).ravel() if sp.issparse(self.X) \
                else np.einsum("ij,ij,i->j", self.X, self.X, d)
            diag = ridge + np.append(col, d.sum())
            precond = LinearOperator((p + 1, p + 1), matvec=lambda t: t / diag, dtype=float)
            t, info = cg(op, rhs, rtol=1e-12, maxiter=10 * (p + 1), M=precond)
            if info != 0:
                warn(f"{type(self).__name__}: conjugate gradients stopped at {10 * (p + 1)} iterations "
                     "before solving a Newton or adjoint system to 1e-12.", ConvergenceWarning)
            return t
        rows = np.flatnonzero(d)  # only the support enters: few rows when the data is nearly separable
        Z = self.y[rows, None] * np.hstack([np.asarray(self.X)[rows], np.ones((rows.size, 1))])
        if rows.size < p and np.all(ridge[:-1] == 1.0):
            return self._solve_normal_woodbury(Z, d[rows], ridge[-1], rhs)
        H = (Z * d[rows, None]).T @ Z
        H[np.diag_indices_from(H)] += ridge
        return np.linalg.solve(H, rhs)

    @staticmethod
    def _solve_normal_woodbury(Z, d, ridge_b, rhs):
        """Solve ``(diag(1, .., 1, ridge_b) + Z^T diag(d) Z) t = rhs`` with ``k < p`` rows in ``Z``.

        The ``w`` block ``M = I + Zw^T D Zw`` is inverted by the Woodbury identity
        ``M^{-1} v = v - Zw^T (D^{-1} + Zw Zw^T)^{-1} Zw v`` (a k x k system), and
        the intercept by the Schur complement of ``M`` in the bordered system,
        which keeps the unregularised intercept exact.
        """
        Zw, zb = Z[:, :-1], Z[:, -1]
        K = np.diag(1.0 / d) + Zw @ Zw.T
        u = Zw.T @ (d * zb)

        def M_inv(V):
            return V - Zw.T @ np.linalg.solve(K, Zw @ V)

        sol = M_inv(np.column_stack([rhs[:-1], u]))
        Mr, Mu = sol[:, 0], sol[:, 1]
        b = (rhs[-1] - u @ Mr) / (ridge_b + (d * zb) @ zb - u @ Mu)
        return np.concatenate([Mr - Mu * b, [b]])

    def solve(self, x, y0=None, tol=1e-10, max_iter=100):
        """Solve the lower level at ``x`` by a semismooth Newton method.

        The problem is ``min_{w,b} 1/2 ||w||^2 + 1/2 sum omega_i max(0, 1 - m_i)^2``
        with ``xi = max(0, 1 - m)``; its generalised Hessian is
        ``diag(1, .., 1, 0) + Z_S^T diag(omega_S) Z_S`` on the support ``S = {m < 1}``,
        and the iteration stops when the gradient norm is below ``tol``
        (relative to its value at zero). Returns ``(y, converged)``.
        """
        omega = self.weights(x)
        p = self.n_features
        theta = np.zeros(p + 1) if y0 is None else np.array(y0[: p + 1], dtype=float)
        ridge = np.ones(p + 1)
        ridge[-1] = 1e-12  # the intercept is not regularised

        def objective(t):
            r = self.datafit.residual(self.linear.decision(t, self.X))
            grad = np.concatenate([t[:-1], [0.0]]) - self._Zt(omega * r)
            return 0.5 * t[:-1] @ t[:-1] + 0.5 * omega @ r**2, grad, r

        val, grad, r = objective(theta)
        scale = max(1.0, np.linalg.norm(self._Zt(omega)))
        converged = False
        for _ in range(max_iter):
            if np.linalg.norm(grad) <= tol * scale:
                converged = True
                break
            step = self._solve_normal(omega * (r > 0), -grad, ridge)
            alpha, slope = 1.0, grad @ step
            while True:
                new_val, new_grad, new_r = objective(theta + alpha * step)
                if new_val <= val + 1e-4 * alpha * slope or alpha < 1e-10:
                    break
                alpha *= 0.5
            theta = theta + alpha * step
            val, grad, r = new_val, new_grad, new_r
        return np.concatenate([theta, r]), converged
