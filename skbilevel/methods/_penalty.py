"""Algorithm 1 of paper 000: the iterative penalty method for complementarity programs.

Both reformulations solved here share one shape: variables ``z``, an upper
objective ``F(z)``, equality constraints ``e(z) = 0``, inequality constraints
``q(z) >= 0``, bounds, and a complementarity pair ``(g(z), t(z))`` with
``g, t >= 0`` whose products should vanish. For the LME-MPEC (2.4) the pair
is ``(A y - b(x), tau(x, y))``; for the classical MPEC (1.3) it is
``(A y - b(x), lambda)``. Each step finds an ``eps_t``-KKT point of the penalty
program (3.5)

.. math::

    \\min_z F(z) + \\theta_t\\, g(z)^T t(z) \\quad \\text{s.t.} \\quad e(z) = 0,\\; q(z) \\ge 0,

The inequalities are written with bounded slacks, ``g(z) = s``, ``t(z) = r``,
``s, r >= 0``, and the penalty is ``theta s^T r``: on the slacks' box the
penalty is bounded below, which the bilinear ``g^T t`` is not away from
feasibility (an augmented Lagrangian would run off to ``g, t -> -inf``).

Each step then sets ``theta_{t+1} = r2 theta_t`` and ``eps_{t+1} = r1 eps_t``, until
``g^T t <= eps_star``.

The exit test is ``g^T t <= eps_star * max(min(1, sum(t)), feas_tol)``. The paper's
``g^T t <= eps_star`` is not invariant to the scale of the multipliers: when
the hyperparameters make ``t`` tiny (an SVM with ``C -> 0`` has ``lambda = C xi -> 0``)
it holds at points far from lower-level optimality, and Algorithm 1 stops
there with a wrong model. Relative to ``sum(t)`` it measures the average
slack of the active constraints, and it equals the paper's test when
``sum(t) >= 1``.

The paper writes the loop as "while g^T t <= eps_star", a typo for ``>``;
we also always solve at least one subproblem, since the paper's start (4.2)
has ``g = 0`` and would otherwise be returned unchanged although it is not a
KKT point.
"""

from __future__ import annotations

import time

import numpy as np

from .._progress import emit
from .._result import BilevelResult
from ._augmented_lagrangian import NLP, solve_nlp, solve_nlp_sqp


class _SlackedProgram:
    """The penalty program (3.5) of ``form`` in ``(z, s, r)`` with ``g(z) = s``, ``t(z) = r``."""

    def __init__(self, form, m):
        self.form, self.m = form, m
        lo, hi = form.bounds
        self.n = lo.size
        self.bounds = (np.concatenate([lo, np.zeros(2 * m)]), np.concatenate([hi, np.full(2 * m, np.inf)]))

    def parts(self, v):
        n, m = self.n, self.m
        return v[:n], v[n : n + m], v[n + m :]

    def start(self, z):
        g, t = self.form.pair(z)
        return np.concatenate([z, np.maximum(g, 0.0), np.maximum(t, 0.0)])

    def objective(self, theta):
        def fun(v):
            z, s, r = self.parts(v)
            F, gF = self.form.upper(z)
            return F + theta * s @ r, np.concatenate([gF, theta * r, theta * s])

        return fun

    def eq(self, v):
        z, s, r = self.parts(v)
        g, t = self.form.pair(z)
        return np.concatenate([self.form.eq(z), g - s, t - r])

    def eq_vjp(self, v, u):
        z, _, _ = self.parts(v)
        k, m = u.size - 2 * self.m, self.m
        ue, ug, ut = u[:k], u[k : k + m], u[k + m :]
        gz = self.form.eq_vjp(z, ue) + self.form.pair_vjp(z, ug, ut)
        return np.concatenate([gz, -ug, -ut])


#: Largest program that ``solver='auto'`` hands to the dense SLSQP solver.
SQP_MAX_VARIABLES = 400


def _sqp_subproblem(form, program, v, theta, tol, kkt_tol, feas_tol):
    """Solve (3.5) with the inequalities kept as inequalities (no slacks) by SLSQP.

    ``tol`` sets SLSQP's stopping test and ``kkt_tol`` the KKT residual at
    which its result counts as converged.
    """
    z = program.parts(v)[0]

    def fun(z):
        F, gF = form.upper(z)
        g, t = form.pair(z)
        return F + theta * g @ t, gF + theta * form.pair_vjp(z, t, g)

    m = form.n_pairs
    sub = solve_nlp_sqp(fun, form.eq, form.eq_vjp, lambda z: np.concatenate(form.pair(z)),
                        lambda z, u: form.pair_vjp(z, u[:m], u[m:]), z, form.bounds, tol=tol,
                        kkt_tol=kkt_tol, feas_tol=feas_tol)
    sub.z = program.start(sub.z)
    return sub


# A subproblem whose constraints are violated by more than this has left the
# region where the penalty program is meaningful; its iterate is discarded.
_DIVERGED = 1e-3

# SLSQP's quasi-Newton steps can run along a flat valley of the penalty objective
# to a spurious KKT point at a huge scale, where the constraint Jacobians grow with
# the variables and absorb the objective's gradient (Example 2.2 from one start:
# x ~ 6e8, F = 1.3, reported stationary). An SLSQP solution this many times farther
# from the origin than its start is re-solved by the augmented Lagrangian.
_RUNAWAY = 1e4


def _ran_away(z, start):
    return float(np.linalg.norm(z)) > _RUNAWAY * max(1.0, float(np.linalg.norm(start)))


def run_penalty_method(form, z0, *, theta=0.1, eps=0.1, eps_star=0.01, r1=0.5, r2=2.0,
                       tol=1e-4, feas_tol=1e-6, max_iter=30, solver="auto", verbose=0,
                       callback=None) -> BilevelResult:
    """Run Algorithm 1 on the complementarity program ``form`` from ``z0``.

    ``form`` provides ``upper(z) -> (F, grad)``, ``pair(z) -> (g, t)``,
    ``pair_vjp(z, ug, ut)``, ``eq``, ``eq_vjp``, ``bounds``, ``n_pairs``,
    ``name`` and ``split(z) -> (x, y)``. Each subproblem is solved to the KKT
    tolerance ``min(eps_t, tol)`` and the feasibility tolerance ``feas_tol``.
    """
    if not 0 < r1 < 1 < r2:
        raise ValueError(f"Algorithm 1 needs 0 < r1 < 1 < r2, got r1={r1}, r2={r2}")
    program = _SlackedProgram(form, form.n_pairs)
    if solver not in ("auto", "sqp", "alm"):
        raise ValueError(f"solver must be 'auto', 'sqp' or 'alm'; got {solver!r}")
    use_sqp = solver == "sqp" or (solver == "auto" and program.n <= SQP_MAX_VARIABLES)
    history = {"objective": [], "complementarity": [], "time": [], "theta": [], "kkt_residual": []}
    v, mult, converged, message = program.start(np.asarray(z0, float)), None, False, ""
    for it in range(1, max_iter + 1):
        start = time.perf_counter()
        sub = _sqp_subproblem(form, program, v, theta, min(eps, tol), min(eps, tol), feas_tol) if use_sqp else None
        # an SLSQP stop short of stationarity is kept (Algorithm 1 then goes on with a larger
        # theta and cannot exit on it); an infeasible or runaway one is handed to the augmented
        # Lagrangian
        if sub is None or sub.infeasibility > feas_tol or _ran_away(sub.z, v):
            nlp = NLP(program.objective(theta), program.eq, program.eq_vjp, program.bounds)
            sub = solve_nlp(nlp, v, tol=min(eps, tol), feas_tol=feas_tol, mult=mult)
        if not np.isfinite(sub.z).all() or sub.infeasibility > _DIVERGED:
            message = (f"penalty subproblem {it} diverged (infeasibility {sub.infeasibility:.3g}); "
                       f"returning the iterate of subproblem {it - 1}")
            break
        v, mult = sub.z, (sub.multipliers if sub.multipliers is not None else mult)
        z = program.parts(v)[0]
        g, t = form.pair(z)
        comp = float(g @ t)
        history["objective"].append(form.upper(z)[0])
        history["complementarity"].append(comp)
        history["time"].append(time.perf_counter() - start)
        history["theta"].append(theta)
        history["kkt_residual"].append(sub.stationarity)
        if verbose:
            emit(f"[{form.name}] iter {it:3d}  F = {history['objective'][-1]:.6g}  "
                  f"g'tau = {comp:.3g}  theta = {theta:.3g}  kkt = {sub.stationarity:.2g}  "
                  f"infeas = {sub.infeasibility:.2g}  ({history['time'][-1]:.2f}s)")
        if callback is not None and callback({"iteration": it, "objective": history["objective"][-1],
                                               "complementarity": comp, "time": history["time"][-1]}):
            message = f"stopped by the callback after {it} iterations"
            break
        # exit on a min(eps_t, tol)-KKT point: the paper's eps_t alone (0.1 at first) accepts
        # points visibly short of stationarity (Example 2.2 stopped at F = 5e-3)
        threshold = eps_star * max(min(1.0, float(np.sum(t))), feas_tol)
        done = comp <= threshold
        if done and sub.stationarity <= min(eps, tol) and sub.infeasibility <= feas_tol:
            converged = True
            message = (f"complementarity {comp:.3g} <= eps_star * max(min(1, sum(tau)), feas_tol) = "
                       f"{threshold:.3g} after {it} iterations")
            break
        theta, eps = r2 * theta, r1 * eps
    else:  # no break: max_iter reached (possibly 0)
        message = f"no iteration run (max_iter={max_iter})" if not history["objective"] else (
                   f"no convergence in max_iter={max_iter} penalty iterations: complementarity "
                   f"{comp:.3g} (eps_star = {eps_star:g}), last subproblem KKT residual "
                   f"{sub.stationarity:.2g}, infeasibility {sub.infeasibility:.2g}")
    x, y = form.split(program.parts(v)[0])
    return BilevelResult(x, y, history, converged, message, len(history["objective"]))
