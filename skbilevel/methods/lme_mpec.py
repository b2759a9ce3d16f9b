"""The LME-MPEC reformulation (2.4) of Huang et al. (2025), solved by its penalty method (Algorithm 1).

With an LME ``tau(x, y)`` (see :mod:`skbilevel.problems.lme`) the KKT
conditions of the lower level become constraints in ``(x, y)`` alone:

.. math::

    \\min_{x, y} F(x, y) \\quad \\text{s.t.} \\quad
    \\phi(x, y) = \\nabla_y f - A^T \\tau(x, y) = 0, \\quad
    0 \\le A y - b(x) \\perp \\tau(x, y) \\ge 0.

No multiplier variables are added: the program keeps the dimension of the
bilevel problem. Algorithm 1 penalises the complementarity with
``theta g^T tau`` (3.5).
"""

from __future__ import annotations

import numpy as np

from .._casadi import sparse_dm
from .._result import BilevelResult
from ..problems.base import BilevelProblem
from ..problems.lme import IdentityBlockLME, PseudoInverseLME
from ._base import box, project
from ._ipopt import Symbols, check_symbolic, symbolic_grad_y
from ._penalty import PenaltyMethod

#: Lower-level capabilities the method uses.
REQUIRES = ("hvp", "cross_vjp", "constraints")


class _LMEMPECForm:
    """The program (3.5) in the variable ``z = (x, y)``."""

    def __init__(self, problem: BilevelProblem, lme):
        self.upper_level, self.lower, self.lme = problem.upper, problem.lower, lme
        self.n_hyper = problem.lower.n_hyper
        self.n_pairs = problem.lower.n_constraints
        self.bounds = _bounds(problem, problem.lower.n_var)
        # Rows of phi that vanish identically for this LME (for IdentityBlockLME
        # the rows of its columns: (grad_y f)[cols] - tau = 0) are left out, so
        # no solver sees constant, degenerate constraints.
        rows = np.ones(problem.lower.n_var, dtype=bool)
        rows[getattr(lme, "columns", slice(0, 0))] = False
        self.phi_rows = rows

    def split(self, z):
        return z[: self.n_hyper], z[self.n_hyper :]

    def _join(self, gx, gy):
        return np.concatenate([gx, gy])

    def upper(self, z):
        x, y = self.split(z)
        return self.upper_level.value(x, y), self._join(*self.upper_level.gradient(x, y))

    def pair(self, z):
        x, y = self.split(z)
        return self.lower.slack(x, y), self.lme.value(self.lower, x, y)

    def pair_vjp(self, z, ug, ut):
        x, y = self.split(z)
        gx, gy = self.lower.slack_vjp(x, y, ug)
        tx, ty = self.lme.vjp(self.lower, x, y, ut)
        return self._join(gx + tx, gy + ty)

    def eq(self, z):
        x, y = self.split(z)
        phi = self.lower.grad_y(x, y) - self.lower.A_rmatvec(self.lme.value(self.lower, x, y))
        return phi[self.phi_rows]

    def eq_vjp(self, z, u_rows):
        x, y = self.split(z)
        u = np.zeros(self.lower.n_var)
        u[self.phi_rows] = u_rows
        tx, ty = self.lme.vjp(self.lower, x, y, self.lower.A_matvec(u))
        return self._join(self.lower.cross_vjp(x, y, u) - tx, self.lower.hvp(x, y, u) - ty)

    def symbolic_parts(self):
        """The objects whose casadi expressions :meth:`symbolic` needs."""
        return (self.upper_level, self.lower, self.lme)

    def symbolic(self, ca):
        """The program in casadi symbols (:class:`~skbilevel.methods._ipopt.Symbols`), for IPOPT.

        ``phi`` is ``grad_y f - A^T tau`` with ``grad_y f`` derived from the lower level's
        expression; where the lower level says that ``tau = (grad_y f)[cols]`` has the sign of
        ``y[cols]`` (the SVM's ``tau = omega * xi``), ``tau >= 0`` becomes the bound ``y[cols] >= 0``.
        """
        check_symbolic(self)
        lower = self.lower
        x, y = ca.MX.sym("x", self.n_hyper), ca.MX.sym("y", lower.n_var)
        grad = symbolic_grad_y(ca, lower, x, y)
        A = sparse_dm(ca, lower.constraint_matrix())
        slack = ca.mtimes(A, y) - lower.symbolic_b(ca, x)
        tau = self.lme.symbolic_value(ca, lower, grad, slack)
        phi = grad - ca.mtimes(A.T, tau)
        t_bounds = None
        signed = getattr(lower, "gradient_sign_columns", None)
        if isinstance(self.lme, IdentityBlockLME) and signed is not None and self.lme.columns == signed:
            t_bounds = self.n_hyper + np.arange(lower.n_var)[signed]
        return Symbols(ca.vertcat(x, y), self.upper_level.symbolic_value(ca, x, y),
                       phi[np.flatnonzero(self.phi_rows).tolist()], slack, tau, t_bounds)



def _bounds(problem: BilevelProblem, n_rest: int, rest_low=None):
    """Box on ``z = (x, rest)``: ``problem.x_bounds`` on ``x``, ``rest_low`` below the rest."""
    n_hyper = problem.lower.n_hyper
    lo = np.full(n_hyper + n_rest, -np.inf)
    hi = np.full(n_hyper + n_rest, np.inf)
    if problem.x_bounds is not None:
        lo[:n_hyper], hi[:n_hyper] = problem.x_bounds
    if rest_low is not None:
        lo[n_hyper:] = rest_low
    return lo, hi


def _start_in_box(problem, x0):
    """``x0`` as floats, clipped to ``problem.x_bounds``: the feasible ``y0`` is built from a point of the box."""
    return project(np.asarray(x0, dtype=float), box(problem))


class _LMEMPEC(PenaltyMethod):
    """The LME-MPEC (2.4) solved by Algorithm 1 (see :class:`~skbilevel.methods._penalty.PenaltyMethod`)."""

    name = "lme-mpec"
    requires = REQUIRES

    def build(self, run, x0, y0):
        problem, lower = run.problem, run.problem.lower
        lme = run.options.lme or lower.default_lme() or PseudoInverseLME()
        x0 = _start_in_box(problem, x0)
        y0 = lower.feasible_start(x0) if y0 is None else np.asarray(y0, dtype=float)
        n_tau = np.size(lme.value(lower, x0, y0))
        if n_tau != lower.n_constraints:
            raise ValueError(
                f"{type(lme).__name__} gives {n_tau} multiplier(s) but the lower level has {lower.n_constraints} "
                "constraints A y - b(x) >= 0, one multiplier each (EqualityLME gives one per equality, which the "
                "lower level writes as two inequalities): use method 'mpec' for equality constraints.")
        return _LMEMPECForm(problem, lme), np.concatenate([x0, y0])


#: The method object behind :func:`solve`.
METHOD = _LMEMPEC()


def solve(problem: BilevelProblem, x0, y0=None, *, lme=None, theta=0.1, eps=0.1, eps_star=0.01,
          r1=0.5, r2=2.0, tol=1e-4, feas_tol=1e-6, max_iter=30, solver="auto", verbose=0,
          callback=None) -> BilevelResult:
    """Solve ``problem`` through the LME-MPEC (2.4) with Algorithm 1 of Huang et al. (2025).

    Parameters
    ----------
    problem : BilevelProblem
        Its lower level must offer ``hvp``, ``cross_vjp`` and ``constraints``.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters.
    y0 : array of shape (n_var,), optional
        Starting lower-level point; default ``lower.feasible_start(x0)``
        (the least-norm solution of ``A y = b(x0)``, eq. (4.2) for the SVM).
    lme : LME object, optional
        Default: ``lower.default_lme()``, else :class:`~skbilevel.problems.lme.PseudoInverseLME` (2.3).
        At an active lower-level constraint the Jacobian of (2.3) loses rank,
        so the constraint qualification of Theorem 3.5 fails there and a run
        may end without convergence (a KKT point is certified only with
        multipliers below ``MULTIPLIER_CAP`` of ``_augmented_lagrangian``);
        a structured LME (:class:`~skbilevel.problems.lme.BoxLME`,
        :class:`~skbilevel.problems.lme.SimplexLME`) avoids it.
    theta, eps, eps_star, r1, r2 : float
        Algorithm 1's initial penalty, initial KKT tolerance, exit tolerance on
        ``g^T tau`` and the factors ``eps <- r1 eps``, ``theta <- r2 theta``.
    tol, feas_tol : float
        Each subproblem (3.5) is solved to the KKT tolerance ``min(eps_t, tol)``
        and to ``feas_tol`` on its constraints, and Algorithm 1 exits only at
        such a point. The paper's ``eps_t`` alone (``0.1`` at first) accepts
        points visibly short of stationarity; ``tol`` is the final KKT tolerance.
    max_iter : int
        Maximum number of penalty iterations.
    solver : {'auto', 'sqp', 'alm', 'ipopt'}, default='auto'
        Solver of each penalty subproblem (3.5): SLSQP (``'sqp'``), an
        augmented Lagrangian method (``'alm'``, also the fallback when SLSQP
        ends infeasible), or IPOPT with exact sparse first and second
        derivatives (``'ipopt'``: needs casadi, the ``ipopt`` extra, and a
        problem that writes its values as casadi expressions, as the SVM of
        section 4 does; each subproblem is solved to ``tol``). ``'auto'``
        uses IPOPT where it can, except SLSQP up to 200 variables (slacks of
        the complementarity pair included); without IPOPT, SLSQP up to 400
        variables and the augmented Lagrangian above.
    verbose : int, default=0
        Print the method's line per outer iteration (through
        ``skbilevel._progress.emit``, above an active progress bar) when positive.
    callback : callable, optional
        Called with a dict (``iteration``, ``objective``,
        ``complementarity``, ``time``, ``hyperparameters``) after each penalty iteration;
        returning True stops the run.

    Returns
    -------
    BilevelResult
        ``history`` holds per penalty iteration ``objective``,
        ``complementarity`` (``g^T tau``), ``time``, ``theta`` and
        ``kkt_residual`` (of the subproblem).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the LME-MPEC (2.4), the penalty program (3.5) and Algorithm 1
       (section 3) with its parameters ``theta_1 = eps_1 = 0.1``,
       ``eps* = 0.01``, ``r1 = 0.5``, ``r2 = 2``.

    Examples
    --------
    A linear SVM on four samples whose ``C = e^c`` is learned on two
    validation samples inside its margin (a larger ``C`` widens ``w`` and
    lowers their squared hinge, so ``C`` ends on its upper bound):

    >>> import numpy as np
    >>> from skbilevel.problems import BilevelProblem, LinearValidationLoss, WeightedSquaredHingeSVM
    >>> lower = WeightedSquaredHingeSVM(np.array([[-3.0], [-1.0], [1.0], [3.0]]),
    ...                                 np.array([-1.0, -1.0, 1.0, 1.0]), per_sample=False)
    >>> upper = LinearValidationLoss(np.array([[-0.5], [0.5]]), np.array([-1.0, 1.0]), "squared_hinge",
    ...                              n_hyper=1, n_var=lower.n_var)
    >>> problem = BilevelProblem(upper, lower, x_bounds=(np.log([1e-2]), np.log([1e2])))
    >>> from skbilevel.methods import lme_mpec
    >>> result = lme_mpec.solve(problem, np.zeros(1))
    >>> result.converged, np.round(np.exp(result.hyperparameters), 2)
    (True, array([100.]))
    """
    options = dict(lme=lme, theta=theta, eps=eps, eps_star=eps_star, r1=r1, r2=r2, tol=tol, feas_tol=feas_tol,
                   max_iter=max_iter, solver=solver, verbose=verbose, callback=callback)
    return METHOD.run(problem, x0, y0, options)
