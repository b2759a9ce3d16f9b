"""The penalty subproblems (3.5) of Huang et al. (2025) by IPOPT, with exact sparse derivatives.

IPOPT (Wächter and Biegler, 2006) is a large-scale primal-dual interior-point
solver for nonlinear programs: each iteration factorises the sparse KKT matrix
(MUMPS), so its cost follows the non-zeros of the constraint Jacobian and of
the Hessian of the Lagrangian, O(N p) for the SVM of section 4, where the
dense SLSQP of ``_augmented_lagrangian`` grows with the cube of the number of
variables. It needs both matrices exactly: here the problems write their
values as casadi expressions (``symbolic_value``), and casadi, whose wheel
ships IPOPT with its binaries, derives the sparse first and second
derivatives from them (the Hessian of the Lagrangian holds the second
derivatives of ``grad_y f - A^T tau``, third derivatives of ``f``, which the
lower levels' products do not offer). The program is built once per run, with the penalty ``theta`` as a
parameter, and every subproblem reuses it.

A form offers ``symbolic(ca)`` (a :class:`Symbols`); :class:`SymbolicProgram`
lifts its complementarity pair into nonnegative slack variables, so that the
penalty is bilinear in them and every sign constraint is a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._casadi import import_casadi
from ._augmented_lagrangian import NLPResult

#: IPOPT statuses (casadi's ``return_status``) of a solution to its tolerances.
_SOLVED = ("Solve_Succeeded", "Solved_To_Acceptable_Level")


def check_symbolic(form):
    """Raise ``ValueError`` unless every part of ``form`` has the casadi expression IPOPT needs."""
    missing = [type(part).__name__ for part in form.symbolic_parts() if not hasattr(part, "symbolic_value")]
    if missing:
        raise ValueError(f"solver='ipopt' needs the casadi expressions (symbolic_value) of the problem, which "
                         f"{', '.join(missing)} does not offer; use solver='sqp' or solver='alm'.")


def supports_symbolic(form) -> bool:
    """Whether ``form`` can be handed to IPOPT (see :func:`check_symbolic`)."""
    return all(hasattr(part, "symbolic_value") for part in form.symbolic_parts())


def symbolic_grad_y(ca, lower, x, y):
    """``grad_y f`` as a casadi expression: the lower level's own (``symbolic_grad_y``) where it writes
    one, else derived from ``symbolic_value``."""
    if hasattr(lower, "symbolic_grad_y"):
        return lower.symbolic_grad_y(ca, x, y)
    return ca.gradient(lower.symbolic_value(ca, x, y), y)


@dataclass
class Symbols:
    """A form's program in casadi symbols: the variable ``z`` and the expressions of (3.5).

    ``F`` the upper objective, ``eq`` the equalities (``= 0``), ``(g, t)`` the
    complementarity pair (both ``>= 0``); ``t_bounds`` the indices of ``z``
    whose nonnegativity is equivalent to ``t >= 0`` (then imposed as bounds,
    not as constraints), or None.
    """

    z: object
    F: object
    eq: object
    g: object
    t: object
    t_bounds: np.ndarray | None = None


class SymbolicProgram:
    """The penalty program (3.5) for IPOPT, with the complementarity pair lifted into slack variables.

    In the variables ``(z, s, r)``:

    .. math::

        \\min F(z) + \\theta\\, s^T r \\quad \\text{s.t.} \\quad e(z) = 0,\\;
        g(z) - s = 0,\\; t(z) - r = 0,\\; s, r \\ge 0,\\; \\text{bounds on } z,

    the same program as ``min F + theta g^T t`` s.t. ``g, t >= 0``. Written
    directly, ``g(z)^T t(z)`` couples every sample with the hyperplane ``w``
    in its Hessian (a dense ``p x N`` block, slow for casadi to
    differentiate: the build grew quadratically in ``N``); lifted, the penalty is bilinear in
    ``(s, r)`` and the coupling sits in the constraints' Jacobian, which is
    sparse and cheap to derive. The slacks' signs are bounds, which an
    interior-point method follows far better than nonlinear inequalities.
    Where ``t`` is a sign-bounded part of ``z`` (the MPEC's multipliers,
    ``Symbols.t_bounds``), ``r`` is not added: ``t`` itself is bounded.

    Parameters
    ----------
    form : object
        A penalty method's form with ``symbolic(ca) -> Symbols``, ``bounds``,
        ``pair`` and ``eq`` (the numeric values, used for the residuals).
    tol : float
        IPOPT's tolerance of every subproblem, on its scaled KKT error and on
        the unscaled dual infeasibility.
    feas_tol : float
        IPOPT's tolerance on the (unscaled) constraint violation.
    max_iter : int
        IPOPT's iteration budget per subproblem.
    """

    def __init__(self, form, *, tol, feas_tol, max_iter=3000):
        ca = import_casadi()
        self.form = form
        sym = form.symbolic(ca)
        theta = ca.MX.sym("theta")
        self.n_z = sym.z.numel()
        s = ca.MX.sym("s", sym.g.numel())
        lo, hi = (np.array(b, dtype=float) for b in form.bounds)
        self.lift_t = sym.t_bounds is None
        if self.lift_t:
            r = ca.MX.sym("r", sym.t.numel())
            variables, penalty = ca.vertcat(sym.z, s, r), ca.dot(s, r)
            constraints = ca.vertcat(sym.eq, sym.g - s, sym.t - r)
        else:
            lo[sym.t_bounds] = np.maximum(lo[sym.t_bounds], 0.0)
            variables, penalty = ca.vertcat(sym.z, s), ca.dot(s, sym.t)
            constraints = ca.vertcat(sym.eq, sym.g - s)
        n_slacks = variables.numel() - self.n_z  # nonnegative
        self.lbx, self.ubx = np.concatenate([lo, np.zeros(n_slacks)]), np.concatenate([hi, np.full(n_slacks, np.inf)])
        self.n_con = constraints.numel()
        objective = sym.F + theta * penalty
        options = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.tol": tol,
                   "ipopt.dual_inf_tol": tol, "ipopt.constr_viol_tol": feas_tol,
                   "ipopt.max_iter": int(max_iter), "ipopt.linear_solver": "mumps",
                   # MUMPS's ordering: the quasi-dense rows of the hyperplane (w, b and its equations
                   # span every sample) are what approximate minimum degree with their detection
                   # (QAMD) is for; on Spambase-sized SVMs it factorised faster than AMD or MUMPS's pick
                   "ipopt.mumps_pivot_order": 6,
                   # each subproblem starts from the last one's primal-dual point, near its solution
                   # (theta doubles): a small barrier and small pushes off the bounds keep it there
                   "ipopt.warm_start_init_point": "yes", "ipopt.warm_start_bound_push": 1e-6,
                   "ipopt.warm_start_mult_bound_push": 1e-6, "ipopt.mu_init": 1e-4}
        self.solver = ca.nlpsol("penalty_subproblem", "ipopt",
                                {"x": variables, "p": theta, "f": objective, "g": constraints}, options)
        lam = ca.MX.sym("lam", self.n_con)
        self._lagrangian_gradient = ca.Function("grad_L", [variables, theta, lam],
                                                [ca.gradient(objective + ca.dot(lam, constraints), variables)])

    def _lifted(self, z):
        """``(z, s, r)`` at ``z``: the slacks at their constraints' values, clipped to their bounds."""
        g, t = self.form.pair(z)
        parts = [z, np.maximum(g, 0.0)] + ([np.maximum(t, 0.0)] if self.lift_t else [])
        return np.clip(np.concatenate(parts), self.lbx, self.ubx)

    def solve(self, z0, theta, multipliers=None) -> NLPResult:
        """A KKT point of the program at penalty ``theta`` from ``z0``.

        Returns an :class:`NLPResult` in ``z``, whose ``stationarity`` is the
        infinity norm of the gradient of the Lagrangian plus the bound
        multipliers (in all variables), ``infeasibility`` the largest
        violation of ``e(z) = 0``, ``g(z), t(z) >= 0`` or a bound of ``z``,
        and ``converged`` whether IPOPT reported a solution (its status is in
        ``message``); ``multipliers`` are ``(lam_x, lam_g)``, which the next
        call may start from.
        """
        kwargs = dict(x0=self._lifted(np.asarray(z0, dtype=float)), p=theta, lbx=self.lbx, ubx=self.ubx,
                      lbg=np.zeros(self.n_con), ubg=np.zeros(self.n_con))
        if multipliers is not None:
            kwargs.update(lam_x0=multipliers[0], lam_g0=multipliers[1])
        out = self.solver(**kwargs)
        stats = self.solver.stats()
        v = np.asarray(out["x"], dtype=float).ravel()
        lam_x, lam_g = (np.asarray(out[k], dtype=float).ravel() for k in ("lam_x", "lam_g"))
        grad = np.asarray(self._lagrangian_gradient(v, theta, lam_g), dtype=float).ravel() + lam_x
        status = stats.get("return_status")
        z = v[: self.n_z]
        return NLPResult(z, (lam_x, lam_g), float(np.max(np.abs(grad), initial=0.0)), self._infeasibility(z),
                         int(stats.get("iter_count", 0)), status in _SOLVED, f"IPOPT: {status}")

    def _infeasibility(self, z):
        g, t = self.form.pair(z)
        lo, hi = self.lbx[: self.n_z], self.ubx[: self.n_z]
        violations = [np.abs(self.form.eq(z)), -g, -t, lo - z, z - hi]
        return float(max(np.max(v, initial=0.0) for v in violations))
