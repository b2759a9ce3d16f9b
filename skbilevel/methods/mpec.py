"""The classical MPEC (1.3) of Huang et al. (2025): multipliers as variables, for comparison with LME-MPEC.

.. math::

    \\min_{x, y, \\lambda} F(x, y) \\quad \\text{s.t.} \\quad
    \\nabla_y f(x, y) - A^T \\lambda = 0, \\quad 0 \\le A y - b(x) \\perp \\lambda \\ge 0.

Solved by the same penalty method (Algorithm 1), penalising ``theta g^T lambda``,
so that the two reformulations differ only in their variables: this one adds
``n_constraints`` of them.
"""

from __future__ import annotations

import numpy as np

from .._casadi import sparse_dm
from .._result import BilevelResult
from ..problems.base import BilevelProblem
from ._ipopt import Symbols, check_symbolic, symbolic_grad_y
from ._penalty import PenaltyMethod
from .lme_mpec import REQUIRES, _bounds, _start_in_box


class _MPECForm:
    """The penalised program in ``z = (x, y, lambda)``, with ``lambda >= 0`` as bounds."""

    def __init__(self, problem: BilevelProblem):
        self.upper_level, self.lower = problem.upper, problem.lower
        self.n_hyper, self.n_var = problem.lower.n_hyper, problem.lower.n_var
        m = self.n_pairs = problem.lower.n_constraints
        rest_low = np.concatenate([np.full(self.n_var, -np.inf), np.zeros(m)])
        self.bounds = _bounds(problem, self.n_var + m, rest_low)

    def split(self, z):
        return z[: self.n_hyper], z[self.n_hyper : self.n_hyper + self.n_var]

    def _mult(self, z):
        return z[self.n_hyper + self.n_var :]

    def upper(self, z):
        x, y = self.split(z)
        gx, gy = self.upper_level.gradient(x, y)
        return self.upper_level.value(x, y), np.concatenate([gx, gy, np.zeros_like(self._mult(z))])

    def pair(self, z):
        x, y = self.split(z)
        return self.lower.slack(x, y), self._mult(z)

    def pair_vjp(self, z, ug, ut):
        x, y = self.split(z)
        gx, gy = self.lower.slack_vjp(x, y, ug)
        return np.concatenate([gx, gy, ut])

    def eq(self, z):
        x, y = self.split(z)
        return self.lower.grad_y(x, y) - self.lower.A_rmatvec(self._mult(z))

    def eq_vjp(self, z, u):
        x, y = self.split(z)
        return np.concatenate([self.lower.cross_vjp(x, y, u), self.lower.hvp(x, y, u),
                               -self.lower.A_matvec(u)])

    def symbolic_parts(self):
        """The objects whose casadi expressions :meth:`symbolic` needs."""
        return (self.upper_level, self.lower)

    def symbolic(self, ca):
        """The program in casadi symbols (:class:`~skbilevel.methods._ipopt.Symbols`), for IPOPT; the
        multipliers' sign ``lambda >= 0`` is already a bound."""
        check_symbolic(self)
        lower = self.lower
        x, y = ca.MX.sym("x", self.n_hyper), ca.MX.sym("y", self.n_var)
        lam = ca.MX.sym("lambda", self.n_pairs)
        A = sparse_dm(ca, lower.constraint_matrix())
        eq = symbolic_grad_y(ca, lower, x, y) - ca.mtimes(A.T, lam)
        return Symbols(ca.vertcat(x, y, lam), self.upper_level.symbolic_value(ca, x, y), eq,
                       ca.mtimes(A, y) - lower.symbolic_b(ca, x), lam,
                       self.n_hyper + self.n_var + np.arange(self.n_pairs))



class _MPEC(PenaltyMethod):
    """The classical MPEC (1.3) solved by Algorithm 1 (see :class:`~skbilevel.methods._penalty.PenaltyMethod`)."""

    name = "mpec"
    requires = REQUIRES

    def build(self, run, x0, y0):
        lower, lambda0 = run.problem.lower, run.options.lambda0
        x0 = _start_in_box(run.problem, x0)
        y0 = lower.feasible_start(x0) if y0 is None else np.asarray(y0, dtype=float)
        lambda0 = np.zeros(lower.n_constraints) if lambda0 is None else np.asarray(lambda0, float)
        return _MPECForm(run.problem), np.concatenate([x0, y0, lambda0])


#: The method object behind :func:`solve`.
METHOD = _MPEC()


def solve(problem: BilevelProblem, x0, y0=None, lambda0=None, *, theta=0.1, eps=0.1, eps_star=0.01,
          r1=0.5, r2=2.0, tol=1e-4, feas_tol=1e-6, max_iter=30, solver="auto", verbose=0,
          callback=None) -> BilevelResult:
    """Solve ``problem`` through the classical MPEC (1.3) with Algorithm 1.

    The multipliers ``lambda`` are variables (bounded below by 0) and the
    penalty is ``theta g^T lambda``; everything else is as in
    :func:`skbilevel.methods.lme_mpec.solve`.

    Parameters
    ----------
    problem : BilevelProblem
        Its lower level must offer ``hvp``, ``cross_vjp`` and ``constraints``.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters.
    y0 : array of shape (n_var,), optional
        Starting lower-level point; default ``lower.feasible_start(x0)``.
    lambda0 : array of shape (n_constraints,), optional
        Starting multipliers; default zero.
    theta, eps, eps_star, r1, r2 : float
        Algorithm 1's initial penalty, initial KKT tolerance, exit tolerance on
        ``g^T lambda`` and the factors ``eps <- r1 eps``, ``theta <- r2 theta``.
    tol, feas_tol : float
        KKT and feasibility tolerances of each subproblem, as in
        :func:`skbilevel.methods.lme_mpec.solve`.
    max_iter : int
        Maximum number of penalty iterations.
    solver : {'auto', 'sqp', 'alm', 'ipopt'}, default='auto'
        Solver of each penalty subproblem, as in
        :func:`skbilevel.methods.lme_mpec.solve`.
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
        ``model`` is ``y`` (the multipliers are not returned); ``history``
        as for :func:`skbilevel.methods.lme_mpec.solve`, with
        ``complementarity`` ``g^T lambda``.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the classical MPEC (1.3), section 1, and the penalty method
       Algorithm 1 of section 3, applied to it.

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
    >>> from skbilevel.methods import mpec
    >>> result = mpec.solve(problem, np.zeros(1))
    >>> result.converged, np.round(np.exp(result.hyperparameters), 2)
    (True, array([100.]))
    """
    options = dict(lambda0=lambda0, theta=theta, eps=eps, eps_star=eps_star, r1=r1, r2=r2, tol=tol,
                   feas_tol=feas_tol, max_iter=max_iter, solver=solver, verbose=verbose, callback=callback)
    return METHOD.run(problem, x0, y0, options)
