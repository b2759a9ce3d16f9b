"""A matrix-free augmented Lagrangian solver for smooth nonlinear programs.

Solves ``min h(z)`` s.t. ``e(z) = 0``, ``lo <= z <= hi`` to an epsilon-KKT point
(Huang et al., 2025, Definition 3.4) with the augmented Lagrangian

.. math::

    L_\\rho(z) = h + \\mu^T e + \\tfrac{\\rho}{2} \\|e\\|^2,

minimised over the box by L-BFGS-B (general inequalities are turned into
equalities with bounded slacks by the caller). Only the values of ``h, e``,
the gradient of ``h`` and the product ``J_e^T u`` are used, so the cost of one
evaluation is a few matrix-vector products with the data: this is what lets the
penalty subproblems (3.5) run at thousands of variables without dense algebra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear, minimize


@dataclass
class NLP:
    """``min fun(z)`` s.t. ``eq(z) = 0`` and ``lo <= z <= hi``.

    ``fun(z) -> (h, grad h)``; ``eq(z) -> e``; ``eq_vjp(z, u) -> J_e^T u``;
    ``bounds = (lo, hi)``, arrays with +-inf allowed.
    """

    fun: callable
    eq: callable
    eq_vjp: callable
    bounds: tuple


@dataclass
class NLPResult:
    z: np.ndarray
    multipliers: np.ndarray
    stationarity: float
    infeasibility: float
    n_inner: int
    converged: bool
    message: str = ""


_RHO_MAX = 1e8
# Safeguarded multipliers (as in ALGENCAN): the estimate used in the next
# augmented Lagrangian is clipped to this box, which keeps one bad inner solve
# from driving the multipliers, and then every later subproblem, to overflow.
_MU_MAX = 1e6


def solve_nlp(nlp: NLP, z0, *, tol, feas_tol, mult=None, rho=10.0, max_outer=5, max_inner=500):
    """Return an :class:`NLPResult` with stationarity <= tol and infeasibility <= feas_tol.

    Stationarity is the norm of the projected gradient of the Lagrangian
    ``h + mu^T e`` on the box; infeasibility is ``max |e|``. ``mult`` warm-starts
    ``mu`` (e.g. from the previous penalty subproblem); ``rho`` grows tenfold,
    up to ``1e8``, whenever the infeasibility is above ``feas_tol`` and has not
    dropped to a quarter of its last value. The loop also ends when neither the
    stationarity nor the infeasibility improves any more (a point the inner
    solver cannot refine), and reports ``converged=False`` then.
    """
    lo, hi = nlp.bounds
    z = np.clip(np.asarray(z0, dtype=float), lo, hi)
    mu = np.zeros_like(nlp.eq(z)) if mult is None else mult.copy()
    box = list(zip(lo, hi))
    prev_infeas, prev_stat, n_inner = np.inf, np.inf, 0
    for _ in range(max_outer):

        def lagrangian(z, mu=mu, rho=rho):
            h, gh = nlp.fun(z)
            e = nlp.eq(z)
            return h + mu @ e + 0.5 * rho * e @ e, gh + nlp.eq_vjp(z, mu + rho * e)

        res = minimize(lagrangian, z, jac=True, method="L-BFGS-B", bounds=box,
                       options={"maxiter": max_inner, "gtol": 0.1 * tol, "ftol": 1e-15, "maxcor": 20})
        z, n_inner = res.x, n_inner + res.nit
        e = nlp.eq(z)
        mu = np.clip(mu + rho * e, -_MU_MAX, _MU_MAX)
        infeas = float(np.max(np.abs(e), initial=0.0))
        grad = nlp.fun(z)[1] + nlp.eq_vjp(z, mu)
        stat = float(np.linalg.norm(z - np.clip(z - grad, lo, hi)))
        if stat <= tol and infeas <= feas_tol:
            return NLPResult(z, mu, stat, infeas, n_inner, True)
        if infeas <= feas_tol and stat >= 0.9 * prev_stat:
            break
        if infeas > feas_tol and infeas > 0.25 * prev_infeas:
            rho = min(10.0 * rho, _RHO_MAX)
        prev_infeas, prev_stat = infeas, stat
    return NLPResult(z, mu, stat, infeas, n_inner, False)


def _jacobian(vjp, z, n_rows):
    """Dense Jacobian from vector-Jacobian products with the unit vectors."""
    unit = np.eye(n_rows)
    return np.array([vjp(z, unit[i]) for i in range(n_rows)]).reshape(n_rows, z.size)


def solve_nlp_sqp(fun, eq, eq_vjp, ineq, ineq_vjp, z0, bounds, *, tol, feas_tol, kkt_tol=None, max_iter=500):
    """Solve ``min fun`` s.t. ``eq = 0``, ``ineq >= 0``, bounds, by SciPy's SLSQP.

    The dense sequential quadratic programming counterpart of :func:`solve_nlp`
    (the paper ran MATLAB's ``fmincon``): robust on degenerate complementarity
    programs, but its cost grows with the cube of the number of variables, so it
    serves small programs. Jacobians are assembled from the products. ``tol``
    sets SLSQP's own stopping test; the result counts as converged when its KKT
    residual is at most ``kkt_tol`` (default ``tol``).
    """
    kkt_tol = tol if kkt_tol is None else kkt_tol
    n_eq, n_in = eq(z0).size, ineq(z0).size
    constraints = [{"type": "ineq", "fun": ineq, "jac": lambda z: _jacobian(ineq_vjp, z, n_in)}]
    if n_eq:
        constraints.append({"type": "eq", "fun": eq, "jac": lambda z: _jacobian(eq_vjp, z, n_eq)})
    res = minimize(fun, z0, jac=True, method="SLSQP", bounds=list(zip(*bounds)), constraints=constraints,
                   options={"maxiter": max_iter, "ftol": tol**2})
    z = res.x
    infeas = max(float(np.max(np.abs(eq(z)), initial=0.0)), float(np.max(-ineq(z), initial=0.0)))
    # SLSQP's own test is on the change of the objective and can stop at
    # non-stationary points, and its multipliers are unreliable at degenerate
    # points; the KKT residual (Definition 3.4) is therefore recomputed with the
    # best multipliers for the active constraints, by bounded least squares.
    stat = _kkt_residual(fun(z)[1], _jacobian(eq_vjp, z, n_eq), _jacobian(ineq_vjp, z, n_in), ineq(z),
                         z, bounds, active_tol=max(feas_tol, 1e-9))
    converged = stat <= kkt_tol and infeas <= feas_tol
    return NLPResult(z, None, stat, infeas, res.nit, converged)


#: Largest multiplier, relative to ``max(1, max|grad|)``, that certifies a KKT point. Where the
#: constraint qualification fails (the pseudo-inverse LME (2.3) at an active lower-level constraint:
#: its Jacobian loses rank), rounding-level Jacobian entries times huge multipliers can drive the
#: residual under the tolerance at points that are not stationary.
MULTIPLIER_CAP = 1e6


def _kkt_residual(grad, J_eq, J_in, q, z, bounds, active_tol):
    """``min || grad - J_eq^T mu - J_A^T nu - (bound terms) ||`` over ``nu >= 0`` on the active set,
    the multipliers at most ``MULTIPLIER_CAP * max(1, max|grad|)`` in size."""
    lo, hi = bounds
    active = q <= active_tol
    at_lo, at_hi = z <= lo + active_tol, z >= hi - active_tol
    unit = np.eye(z.size)
    columns = [J_eq, J_in[active], unit[at_lo], -unit[at_hi]]
    M = np.vstack([c.reshape(-1, z.size) for c in columns]).T
    if M.shape[1] == 0:
        return float(np.linalg.norm(grad))
    n_free = J_eq.shape[0]
    cap = MULTIPLIER_CAP * max(1.0, float(np.max(np.abs(grad), initial=0.0)))
    low = np.concatenate([np.full(n_free, -cap), np.zeros(M.shape[1] - n_free)])
    sol = lsq_linear(M, grad, bounds=(low, np.full(M.shape[1], cap)), method="bvls")
    return float(np.linalg.norm(M @ sol.x - grad))
