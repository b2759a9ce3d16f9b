"""Algorithm 1 of Huang et al. (2025): the iterative penalty method for complementarity programs.

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

import importlib.util

import numpy as np

from .._result import Status
from ._augmented_lagrangian import NLP, solve_nlp, solve_nlp_sqp
from ._base import BilevelMethod
from ._ipopt import SymbolicProgram, supports_symbolic


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


#: Largest program that ``solver='auto'`` hands to the dense SLSQP solver when IPOPT is not at hand (above
#: it the augmented Lagrangian, which stalls on larger programs, takes over).
SQP_MAX_VARIABLES = 400

#: Largest program that ``solver='auto'`` hands to SLSQP when IPOPT can solve it. On the SVMs of section 4,
#: SLSQP's runs of Algorithm 1 diverged from a few hundred variables on (Ionosphere 0.5:0.2:0.3 in
#: benchmarks/results/svm_paper.md, "Table 2 by method", run with the earlier limit of 400), where IPOPT
#: reached the exit test; below this limit SLSQP, slower than IPOPT there, converged, and on a single ``C``
#: reached better points than IPOPT (tests/test_svm.py), and it is the faster on Example 2.2's programs.
SQP_MAX_VARIABLES_WITH_IPOPT = 200

SOLVERS = ("auto", "sqp", "alm", "ipopt")


def _ipopt_installed() -> bool:
    return importlib.util.find_spec("casadi") is not None


def choose_solver(solver, form, n_variables):
    """The subproblem solver that ``solver`` means for ``form`` with ``n_variables`` (slacks included).

    ``'auto'``: IPOPT when casadi is installed and the problem offers its
    casadi expressions, except SLSQP up to :data:`SQP_MAX_VARIABLES_WITH_IPOPT`
    variables; without IPOPT, SLSQP up to :data:`SQP_MAX_VARIABLES` variables
    and the augmented Lagrangian above.
    """
    if solver != "auto":
        return solver
    ipopt = _ipopt_installed() and supports_symbolic(form)
    if n_variables <= (SQP_MAX_VARIABLES_WITH_IPOPT if ipopt else SQP_MAX_VARIABLES):
        return "sqp"
    return "ipopt" if ipopt else "alm"


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
# the variables and absorb the objective's gradient (on Example 2.2 from some starts,
# with one BLAS thread: tests/test_methods.py). An SLSQP solution this many times farther
# from the origin than its start is re-solved by the augmented Lagrangian.
_RUNAWAY = 1e4


def _ran_away(z, start):
    return float(np.linalg.norm(z)) > _RUNAWAY * max(1.0, float(np.linalg.norm(start)))


class PenaltyMethod(BilevelMethod):
    """Algorithm 1 on a complementarity program, on the template of :class:`BilevelMethod`.

    A subclass builds the program in :meth:`build`: a ``form`` providing
    ``upper(z) -> (F, grad)``, ``pair(z) -> (g, t)``, ``pair_vjp(z, ug, ut)``,
    ``eq``, ``eq_vjp``, ``bounds``, ``n_pairs`` and
    ``split(z) -> (x, y)``, and its starting point ``z0``. Each subproblem is
    solved to the KKT tolerance ``min(eps_t, tol)`` and the feasibility
    tolerance ``feas_tol``.

    Run state: ``form``, ``program``, ``solver``, ``use_sqp``, the IPOPT
    program ``ipopt`` (or None) with its last multipliers ``ipopt_mult``, the
    variables ``v`` of the slacked program with the multipliers ``mult`` of
    its last augmented Lagrangian solve, the penalty ``theta``, the tolerance
    ``eps`` and the last subproblem's result ``sub``.
    """

    history_keys = ("objective", "complementarity", "time", "theta", "kkt_residual")
    callback_keys = ("complementarity",)

    def build(self, run, x0, y0):
        """Return ``(form, z0)``: the program and its starting point."""
        raise NotImplementedError

    def check_options(self, o):
        if not 0 < o.r1 < 1 < o.r2:
            raise ValueError(f"Algorithm 1 needs 0 < r1 < 1 < r2, got r1={o.r1}, r2={o.r2}")
        if o.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}; got {o.solver!r}")

    def setup(self, run, x0, y0):
        o = run.options
        run.form, z0 = self.build(run, x0, y0)
        run.program = _SlackedProgram(run.form, run.form.n_pairs)
        run.solver = choose_solver(o.solver, run.form, run.program.n)
        run.use_sqp = run.solver == "sqp"
        # IPOPT's program is built once, theta a parameter; each subproblem is solved to the final tol
        run.ipopt = SymbolicProgram(run.form, tol=o.tol, feas_tol=o.feas_tol) if run.solver == "ipopt" else None
        run.ipopt_mult = None
        run.v, run.mult, run.theta, run.eps = run.program.start(np.asarray(z0, float)), None, o.theta, o.eps

    def _subproblem(self, run):
        """An ``min(eps_t, tol)``-KKT point of (3.5) from ``v``: IPOPT, or SLSQP, else the augmented
        Lagrangian."""
        o, program, tol = run.options, run.program, min(run.eps, run.options.tol)
        sub = None
        if run.ipopt is not None:  # its status is checked by step (divergence) and should_stop (KKT)
            sub = run.ipopt.solve(program.parts(run.v)[0], run.theta, run.ipopt_mult)
            # IPOPT's own primal-dual point (the next solve starts from it); run.mult is the
            # augmented Lagrangian's
            run.ipopt_mult, sub.multipliers = sub.multipliers, None
            sub.z = program.start(sub.z)
        elif run.use_sqp:
            sub = _sqp_subproblem(run.form, program, run.v, run.theta, tol, tol, o.feas_tol)
        # a stop short of stationarity is kept (Algorithm 1 then goes on with a larger theta and
        # cannot exit on it); an infeasible or runaway one is handed to the augmented Lagrangian
        if sub is None or sub.infeasibility > o.feas_tol or _ran_away(sub.z, run.v):
            nlp = NLP(program.objective(run.theta), program.eq, program.eq_vjp, program.bounds)
            sub = solve_nlp(nlp, run.v, tol=tol, feas_tol=o.feas_tol, mult=run.mult)
        return sub

    def step(self, run, k):
        sub = run.sub = self._subproblem(run)
        if not np.isfinite(sub.z).all() or sub.infeasibility > _DIVERGED:
            run.stop(Status.FAILED, f"penalty subproblem {k} diverged (infeasibility {sub.infeasibility:.3g}); "
                     f"returning the iterate of subproblem {k - 1}")
            return None
        run.v, run.mult = sub.z, (sub.multipliers if sub.multipliers is not None else run.mult)
        z = run.program.parts(run.v)[0]
        g, t = run.form.pair(z)
        return {"objective": run.form.upper(z)[0], "complementarity": float(g @ t), "theta": run.theta,
                "kkt_residual": sub.stationarity, "infeasibility": sub.infeasibility, "sum_t": float(np.sum(t))}

    def progress_line(self, k, row):
        return (f"[{self.name}] iter {k:3d}  F = {row['objective']:.6g}  "
                f"g'tau = {row['complementarity']:.3g}  theta = {row['theta']:.3g}  kkt = {row['kkt_residual']:.2g}  "
                f"infeas = {row['infeasibility']:.2g}  ({row['time']:.2f}s)")

    def hyperparameters(self, run):
        return self.solution(run)[0]

    def should_stop(self, run, k, row):
        o, comp = run.options, row["complementarity"]
        # exit on a min(eps_t, tol)-KKT point: the paper's eps_t alone (0.1 at first) accepts
        # points visibly short of stationarity (on Example 2.2, short of its solution F = 0)
        threshold = o.eps_star * max(min(1.0, row["sum_t"]), o.feas_tol)
        if comp <= threshold and row["kkt_residual"] <= min(run.eps, o.tol) and row["infeasibility"] <= o.feas_tol:
            run.stop(Status.CONVERGED, f"complementarity {comp:.3g} <= eps_star * max(min(1, sum(tau)), feas_tol) = "
                     f"{threshold:.3g} after {k} iterations")
            return True
        return False

    def advance(self, run):
        run.theta, run.eps = run.options.r2 * run.theta, run.options.r1 * run.eps

    def budget_message(self, run):
        o = run.options
        if not run.n_iter:
            return f"no iteration run (max_iter={o.max_iter})"
        return (f"no convergence in max_iter={o.max_iter} penalty iterations: complementarity "
                f"{run.history['complementarity'][-1]:.3g} (eps_star = {o.eps_star:g}), last subproblem KKT residual "
                f"{run.sub.stationarity:.2g}, infeasibility {run.sub.infeasibility:.2g}")

    def solution(self, run):
        return run.form.split(run.program.parts(run.v)[0])
