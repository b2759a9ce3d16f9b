"""Hypergradient descent by implicit differentiation (Grazzi et al., 2026, sections 5-6).

With ``y(x)`` the lower-level solution, the upper objective ``F(x, y(x))`` has
the gradient (Grazzi et al., 2026, section 5.1: the implicit function theorem applied to
the stationarity condition (5.4), with the adjoint written out)

.. math::

    \\nabla h(x) = \\nabla_x F - (\\nabla^2_{yx} f)^T v, \\qquad \\nabla^2_{yy} f\\, v = \\nabla_y F.

For a linearly constrained lower level ``A y - b(x) >= 0`` with active set
``I`` (the constraints whose multipliers are positive) the solution map is
differentiable under strict complementarity and its derivative is formula
(6.3). We use (6.3) in its equivalent KKT form, which also holds when
``grad^2_yy f`` is singular (the SVM's Hessian is zero in the intercept): the
adjoint ``(v, mu)`` solves

.. math::

    \\begin{bmatrix} \\nabla^2_{yy} f & A_I^T \\\\ A_I & 0 \\end{bmatrix}
    \\begin{bmatrix} v \\\\ \\mu \\end{bmatrix} = \\begin{bmatrix} \\nabla_y F \\\\ 0 \\end{bmatrix},
    \\qquad
    \\nabla h(x) = \\nabla_x F - (\\nabla^2_{yx} f)^T v + (\\partial b_I / \\partial x)^T \\mu.

(Differentiate ``grad_y f - A_I^T lambda_I = 0``, ``A_I y = b_I(x)`` in ``x``
and take the transpose.) When ``A`` is empty this is the unconstrained
formula. The system is solved by the lower level's own structured solver
when it offers ``'adjoint'``, else by a dense symmetric factorisation for
small problems, else by a Krylov method on Hessian-vector products (conjugate
gradients without active constraints, MINRES on the saddle-point system with
them), warm started from the previous adjoint.

The outer loop is L-BFGS-B on the box ``problem.x_bounds`` (hyperparameters
are expected on a log scale, as the SVM's ``c = log C`` are), and each lower
level is warm started from the previous solution.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import LinAlgError, lstsq, solve as dense_solve
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg, minres
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import row_norms

from .._result import BilevelResult, Status
from .._warnings import warn
from ..problems.base import BilevelProblem, LowerLevel
from ._base import BilevelMethod
from ..problems.cross_validation import CrossValidationProblem
from ..problems.lme import PseudoInverseLME

_INEXACT_ADJOINT = ("hypergradient: the adjoint system was not solved to its tolerance (iteration cap or a "
                    "singular system): the hypergradient is inexact.")

#: Lower-level capabilities the method uses; a lower level with its own ``'adjoint'``
#: needs no ``'hvp'`` (see :func:`usable`).
REQUIRES = ("solve", "hvp", "cross_vjp")

# CG iterations per adjoint solve: warm started from the previous adjoint, a few hundred
# suffice on well-conditioned problems; the cap bounds the cost where the Hessian is
# singular or indefinite (a lower-level minimiser on a ReLU kink).
_CG_MAX_ITER = 1000

#: Largest KKT system (variables plus active constraints) solved by a dense factorisation;
#: building it takes one Hessian-vector product per variable.
DIRECT_LIMIT = 300


def active_set(lower: LowerLevel, x, y) -> np.ndarray:
    """Indices of the constraints treated as active at ``(x, y)``.

    The multipliers ``lambda`` are the lower level's default LME (Huang et al., 2025,
    section 2), else the pseudo-inverse LME (2.3). A constraint is active
    when its multiplier exceeds its slack ``g_i = (A y - b(x))_i``, both
    measured per unit row, :math:`\\lambda_i \\|a_i\\| > g_i / \\|a_i\\|` (scaling
    a row of ``(A, b)`` by ``s`` multiplies ``g_i`` by ``s`` and divides
    ``lambda_i`` by ``s``; the comparison must not depend on it): at an exact
    solution one of the two is zero, and a solver's approximate solution (an
    interior point leaves both small) is sorted to the nearer side. Where
    both vanish strict complementarity fails, ``y(x)`` has a kink and either
    choice gives a one-sided derivative.

    Parameters
    ----------
    lower : LowerLevel
        The lower level; one without the ``'constraints'`` capability has no
        active set.
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    y : ndarray of shape (n_var,)
        A (possibly approximate) lower-level solution at ``x``.

    Returns
    -------
    active : ndarray of int
        Indices into the ``n_constraints`` rows of ``A``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       the active set ``I`` of formula (6.3), section 6.1.
    .. [2] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the LMEs of section 2, (2.2)-(2.3), that give the multipliers.

    Examples
    --------
    Four samples on a line; the two inner ones lie inside the margin of the
    squared-hinge SVM at ``C = 1``, so only their constraints are active:

    >>> import numpy as np
    >>> from skbilevel.methods.hypergradient import active_set
    >>> from skbilevel.problems import WeightedSquaredHingeSVM
    >>> svm = WeightedSquaredHingeSVM(np.array([[-3.0], [-1.0], [1.0], [3.0]]), np.array([-1.0, -1.0, 1.0, 1.0]))
    >>> c = np.zeros(4)
    >>> y, converged = svm.solve(c)
    >>> active_set(svm, c, y)
    array([1, 2])
    """
    if "constraints" not in lower.capabilities:
        return np.arange(0)
    lme = lower.default_lme() or PseudoInverseLME()
    lam = lme.value(lower, x, y)
    # lam_i ||a_i|| > g_i / ||a_i||, without dividing by a zero row
    return np.flatnonzero(lam * row_norms(lower.constraint_matrix(), squared=True) > lower.slack(x, y))


def _rows(lower: LowerLevel, active: np.ndarray):
    """The matvecs of ``A_I`` and ``A_I^T`` for the active rows."""
    m = lower.n_constraints

    def matvec(v):
        return lower.A_matvec(v)[active]

    def rmatvec(mu):
        full = np.zeros(m)
        full[active] = mu
        return lower.A_rmatvec(full)

    return matvec, rmatvec


def _dense_kkt(lower, x, y, active, rhs):
    n, k = lower.n_var, active.size
    eye = np.eye(n)
    hvp = lower.hvp_operator(x, y)
    H = np.column_stack([hvp(eye[:, j]) for j in range(n)])
    K = np.zeros((n + k, n + k))
    K[:n, :n] = 0.5 * (H + H.T)
    if k:
        A = lower.constraint_matrix()
        A_I = (A.toarray() if hasattr(A, "toarray") else np.asarray(A))[active]
        K[:n, n:], K[n:, :n] = A_I.T, A_I
    b = np.concatenate([rhs, np.zeros(k)])

    def solves(sol):
        return sol is not None and np.allclose(K @ sol, b, rtol=1e-6, atol=1e-10 * max(1.0, np.abs(b).max()))

    try:
        sol = dense_solve(K, b, assume_a="sym")
    except (LinAlgError, ValueError):
        sol = None
    if not solves(sol):
        # singular KKT matrix (degenerate active set): the least-squares adjoint, which solves the
        # system when it is consistent
        sol = lstsq(K, b)[0]
    return sol[:n], sol[n:], bool(solves(sol))


def _iterative_kkt(lower, x, y, active, rhs, v0, tol, max_iter=None):
    """CG on ``H v = rhs`` when no constraint is active (``H`` is positive definite at a strict
    minimum), else MINRES on the symmetric indefinite KKT matrix."""
    n, k = lower.n_var, active.size
    start = None if v0 is None or v0.size != n else v0
    if k == 0:
        op = LinearOperator((n, n), matvec=lower.hvp_operator(x, y), dtype=float)
        # a lower level may offer an approximate inverse of its Hessian (a faster CG, the same answer)
        M = lower.preconditioner(x, y) if "preconditioner" in lower.capabilities else None
        v, info = cg(op, rhs, x0=start, rtol=tol, maxiter=min(10 * n, max_iter or _CG_MAX_ITER), M=M)
        return v, np.zeros(0), info == 0
    A_I, A_I_T = _rows(lower, active)
    hvp = lower.hvp_operator(x, y)

    def matvec(z):
        v, mu = z[:n], z[n:]
        return np.concatenate([hvp(v) + A_I_T(mu), A_I(v)])

    op = LinearOperator((n + k, n + k), matvec=matvec, dtype=float)
    start = None if start is None else np.concatenate([start, np.zeros(k)])
    sol, info = minres(op, np.concatenate([rhs, np.zeros(k)]), x0=start, rtol=tol,
                       maxiter=min(20 * (n + k), max_iter or 20 * (n + k)))
    return sol[:n], sol[n:], info == 0


def adjoint(lower: LowerLevel, x, y, grad_y, *, v0=None, tol: float = 1e-10, max_iter: int | None = None):
    """Solve the adjoint system of (6.3) at ``(x, y)``; return ``(v, mu_full)``.

    ``mu_full`` has one entry per constraint (zero off the active set). A lower
    level offering the capability ``'adjoint'`` solves the system itself
    (``lower.adjoint(x, y, grad_y)``), exploiting its structure.

    Parameters
    ----------
    lower : LowerLevel
        The lower level (``'hvp'`` or ``'adjoint'``).
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    y : ndarray of shape (n_var,)
        Lower-level solution at ``x``.
    grad_y : ndarray of shape (n_var,)
        Right-hand side ``grad_y F(x, y)``.
    v0 : ndarray of shape (n_var,), optional
        Warm start of an iterative solve (the previous adjoint).
    tol : float, default=1e-10
        Tolerance of an iterative solve: the relative residual of CG
        (unconstrained), MINRES's own stopping test (with active
        constraints: a residual relative to ``||K|| ||v|| + ||rhs||``).
    max_iter : int or None, default=None
        Iteration cap of an iterative solve (None: the built-in cap).

    Returns
    -------
    v : ndarray of shape (n_var,)
        The adjoint vector.
    mu_full : ndarray of shape (n_constraints,)
        The multipliers ``mu`` of the active constraints, zero elsewhere.

    Warns
    -----
    ConvergenceWarning
        When the iterative solve stops at its cap, or the dense system is
        singular without exact solution (the least-squares one is returned).
        (scipy's MINRES may stop on a singular system without saying so.)

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       the Jacobian (6.3) of section 6.1, used here in its KKT form.

    Examples
    --------
    For ``f = 1/2 y^T Q y - y^T x`` the adjoint solves ``Q v = grad_y``:

    >>> import numpy as np
    >>> from skbilevel.methods.hypergradient import adjoint
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> v, mu = adjoint(problem.lower, np.ones(2), np.full(2, 0.5), np.ones(2))
    >>> v, mu.shape
    (array([0.5 , 0.25]), (0,))
    """
    v, mu_full, ok = _adjoint(lower, x, y, grad_y, v0=v0, tol=tol, max_iter=max_iter)
    if not ok:
        warn(_INEXACT_ADJOINT, ConvergenceWarning)
    return v, mu_full


def _adjoint(lower, x, y, grad_y, *, v0=None, tol=1e-10, max_iter=None):
    """:func:`adjoint` and whether the solve met its tolerance: ``(v, mu_full, ok)``."""
    if "adjoint" in lower.capabilities:
        return (*lower.adjoint(x, y, grad_y), True)
    active = active_set(lower, x, y)
    if lower.n_var + active.size <= DIRECT_LIMIT:
        v, mu, ok = _dense_kkt(lower, x, y, active, grad_y)
    else:
        v, mu, ok = _iterative_kkt(lower, x, y, active, grad_y, v0, tol, max_iter)
    mu_full = np.zeros(lower.n_constraints)
    mu_full[active] = mu
    return v, mu_full, ok


def hypergradient(problem: BilevelProblem, x, y, *, v0=None, tol: float = 1e-10, max_iter: int | None = None):
    """Return ``(F(x, y), grad h(x), v)`` at a lower-level solution ``y`` of ``x``.

    ``v`` is the adjoint, to warm start the next call.

    Parameters
    ----------
    problem : BilevelProblem
        The upper and lower levels.
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    y : ndarray of shape (n_var,)
        Lower-level solution at ``x``.
    v0 : ndarray of shape (n_var,), optional
        Previous adjoint, to warm start an iterative adjoint solve.
    tol : float, default=1e-10
        Tolerance of an iterative adjoint solve (see :func:`adjoint`).
    max_iter : int or None, default=None
        Iteration cap of an iterative adjoint solve.

    Returns
    -------
    F : float
        Upper objective ``F(x, y)``.
    grad : ndarray of shape (n_hyper,)
        The hypergradient ``grad h(x) = grad_x F - (grad^2_yx f)^T v``, plus
        ``(db_I/dx)^T mu`` for active constraints.
    v : ndarray of shape (n_var,)
        The adjoint.

    Warns
    -----
    ConvergenceWarning
        When the adjoint solve does not meet its tolerance (see
        :func:`adjoint`).

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       section 5.1 (the hypergradient from the stationarity condition (5.4))
       and section 6.1, formula (6.3) (constrained lower levels).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> x = np.array([1.0, 2.0])
    >>> y = np.array([0.5, 0.5])  # y(x) = Q^{-1} x
    >>> F, grad, v = hypergradient(problem, x, y)
    >>> round(F, 4), np.round(grad, 4)
    (0.5, array([-0.15 ,  0.075]))
    """
    F, grad, v, ok = _hypergradient(problem, x, y, v0=v0, tol=tol, max_iter=max_iter)
    if not ok:
        warn(_INEXACT_ADJOINT, ConvergenceWarning)
    return F, grad, v


def _hypergradient(problem, x, y, *, v0=None, tol=1e-10, max_iter=None):
    """:func:`hypergradient` and whether its adjoint solve met its tolerance: ``(F, grad, v, ok)``."""
    lower, upper = problem.lower, problem.upper
    F = upper.value(x, y)
    gx, gy = upper.gradient(x, y)
    v, mu, ok = _adjoint(lower, x, y, gy, v0=v0, tol=tol, max_iter=max_iter)
    grad = gx - lower.cross_vjp(x, y, v)
    if mu.size and mu.any():
        grad = grad + lower.b_vjp(x, mu)
    return F, grad, v, ok


def usable(lower: LowerLevel) -> bool:
    """Whether ``lower`` offers what the method needs: ``solve``, ``cross_vjp`` and either
    ``hvp`` (generic adjoint solves) or its own ``adjoint``.

    Parameters
    ----------
    lower : LowerLevel
        The lower level to check.

    Returns
    -------
    bool
        True when :func:`solve` can run on ``lower``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       section 5.1 (the products the hypergradient needs).

    Examples
    --------
    >>> from skbilevel.methods.hypergradient import usable
    >>> from skbilevel.problems import example_2_2
    >>> usable(example_2_2().lower)
    True
    """
    return METHOD.accepts(lower)


def _solve_fold(problem: BilevelProblem, x, y0, v0, lower_tol, adjoint_options, gradient=True):
    """Lower-level solve and hypergradient of one problem: ``(F, grad, y, v, ok, adjoint_ok, seconds)``
    (``grad`` and ``v`` None without ``gradient``)."""
    start = time.perf_counter()
    y, ok = problem.lower.solve(x, y0, lower_tol)
    adjoint_ok = True
    if gradient:
        F, grad, v, adjoint_ok = _hypergradient(problem, x, y, v0=v0, **(adjoint_options or {}))
    else:
        F, grad, v = problem.upper.value(x, y), None, v0
    return F, grad, y, v, ok, adjoint_ok, time.perf_counter() - start


def _oracle(problem, parallel, lower_tol, y0, on_evaluation, adjoint_options=None, gradient=True):
    """``x -> (F, grad)`` for a single problem or the mean over cross-validation folds
    (``grad`` None without ``gradient``: no adjoint solve).

    Warm starts (the last lower solutions and adjoints) live in this closure,
    one per call of :func:`solve`, never on the problem.
    """
    folds = problem.folds if isinstance(problem, CrossValidationProblem) else (problem,)
    if y0 is None or isinstance(problem, BilevelProblem):
        y0 = [y0] * len(folds)
    state = {"y": list(y0), "v": [None] * len(folds), "ok": True, "adjoint_failures": 0, "last": None}

    def fun(x):
        key = x.tobytes()
        if state["last"] is None or state["last"][0] != key:
            tasks = (delayed(_solve_fold)(fold, x, y, v, lower_tol, adjoint_options, gradient)
                     for fold, y, v in zip(folds, state["y"], state["v"]))
            out = parallel(tasks) if len(folds) > 1 else [_solve_fold(folds[0], x, state["y"][0],
                                                                        state["v"][0], lower_tol,
                                                                        adjoint_options, gradient)]
            Fs, grads, ys, vs, oks, adjoint_oks, seconds = zip(*out)
            state["adjoint_failures"] += len(adjoint_oks) - sum(adjoint_oks)
            F, grad = float(np.mean(Fs)), np.mean(grads, axis=0) if gradient else None
            state.update(y=list(ys), v=list(vs), ok=state["ok"] and all(oks), last=(key, F, grad))
            if on_evaluation is not None:
                on_evaluation({"hyperparameters": x.copy(), "objective": F, "gradient": grad,
                               "fold_objectives": np.array(Fs), "models": list(ys),
                               "fold_times": np.array(seconds)})
        return state["last"][1], state["last"][2]

    return fun, state


def evaluate(problem: BilevelProblem | CrossValidationProblem, points, y0=None, *, lower_tol: float = 1e-10,
             n_jobs: int | None = None, on_evaluation=None, gradient: bool = True) -> list:
    """Objective and hypergradient at each of ``points`` (rows), each solve warm started from the last
    (the first from ``y0``, as in :func:`solve`).

    Returns a list of ``(F, grad, models)`` with ``models`` the lower-level
    solutions (a list, one per fold, for a cross-validation problem), to warm
    start :func:`solve` from the best point. With ``gradient=False`` no
    adjoint system is solved and ``grad`` is None: a coarse grid that only
    picks starting points needs the objective alone.

    Parameters
    ----------
    problem : BilevelProblem or CrossValidationProblem
        The problem; for a cross-validation problem the objective and
        hypergradient are the means over its folds.
    points : array-like of shape (n_points, n_hyper)
        Hyperparameters to evaluate (one row each).
    y0 : ndarray or list of ndarray, optional
        Warm start of the first lower-level solve (one per fold).
    lower_tol : float, default=1e-10
        Tolerance handed to ``lower.solve``.
    n_jobs : int, optional
        Folds solved in parallel through :class:`joblib.Parallel`.
    on_evaluation : callable, optional
        Called after each point, as in :func:`solve`.
    gradient : bool, default=True
        Whether to solve the adjoint system and return the hypergradient.

    Returns
    -------
    list of tuple
        ``(F, grad, models)`` per point.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026:
       section 5.1 (the hypergradient).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods.hypergradient import evaluate
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> values = evaluate(problem, [[0.0, 0.0], [1.0, 2.0]], gradient=False)
    >>> [round(F, 4) for F, grad, model in values]
    [1.0, 0.5]
    """
    METHOD.check_problem(problem)
    out = []
    with Parallel(n_jobs=n_jobs) as parallel:
        fun, state = _oracle(problem, parallel, lower_tol, y0, on_evaluation, gradient=gradient)
        for x in np.atleast_2d(np.asarray(points, dtype=float)):
            F, grad = fun(x)
            out.append((F, grad, list(state["y"]) if isinstance(problem, CrossValidationProblem) else state["y"][0]))
    return out


def solve(problem: BilevelProblem | CrossValidationProblem, x0, y0=None, *, tol: float = 1e-6,
          max_iter: int = 100, lower_tol: float = 1e-10, adjoint_tol: float = 1e-10,
          adjoint_max_iter: int | None = None, verbose: int = 0,
          callback=None, n_jobs: int | None = None, on_evaluation=None, ftol: float | None = None,
          max_line_search: int = 20, xtol: float | None = None,
          first_step: float | None = None) -> BilevelResult:
    """Minimise ``F(x, y(x))`` over the box ``problem.x_bounds`` by L-BFGS-B on hypergradients.

    Parameters
    ----------
    problem : BilevelProblem or CrossValidationProblem
        Each lower level must offer ``solve``, ``cross_vjp`` and either
        ``hvp`` or its own ``adjoint``; a linearly constrained one is
        differentiated through its active set. For a
        :class:`~skbilevel.problems.cross_validation.CrossValidationProblem`
        the objective and hypergradient are the means over its folds.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters.
    y0 : array of shape (n_var,) or list of them (one per fold), optional
        Warm start of the first lower-level solve.
    tol : float
        L-BFGS-B's tolerance on the projected hypergradient (``gtol``).
    ftol : float, optional
        L-BFGS-B's tolerance on the relative decrease of ``F`` per iteration
        (default ``tol * 1e-3``).
    max_line_search : int, default=20
        Evaluations per L-BFGS-B line search. Where the lower level's active
        set changes (a kink of ``h``) a line search can fail; a smaller cap
        stops there sooner.
    xtol : float, optional
        Stop as soon as a trial point lies within ``xtol`` (max-norm, in the
        scaled hyperparameters) of a point already evaluated, and return the
        evaluated point of lowest ``F``. At a kink of ``h`` L-BFGS-B's line
        search probes the same spot again and again (each probe a full set of
        lower-level solves) before it gives up; for a hyperparameter search a
        change of ``1e-3`` in ``log C`` is no change at all. None: off.
    first_step : float, optional
        Length (max-norm, in the scaled hyperparameters) of the first trial
        step. On a box L-BFGS-B's first trial point is ``x0 - grad F`` (from
        then on its own quasi-Newton scaling takes over): from a small
        hypergradient that step lowers ``F`` by about ``|grad F|^2``, less
        than ``ftol``, and ends the run at its start. With ``first_step``
        L-BFGS-B minimises ``F / c``, ``c = max|grad F(x0)| / first_step``;
        ``tol`` (scaled back by ``c``), ``history`` and the result are in
        units of ``F``, and ``ftol`` is rescaled so that its test reads as for
        ``F`` at ``x0``. None: ``c = 1``.
    max_iter : int
        Maximum number of L-BFGS-B iterations.
    lower_tol : float
        Tolerance handed to ``lower.solve``.
    adjoint_tol, adjoint_max_iter : float, int or None
        Tolerance and iteration cap of the Krylov solve of the adjoint
        system (see :func:`adjoint`; default cap: ``min(1000, 10 n_var)``
        conjugate-gradient or ``20 (n_var + k)`` MINRES iterations), warm
        started from the last adjoint.
        Where the lower level is itself solved inexactly (a network trained a
        bounded number of iterations per outer step), a tight adjoint buys
        nothing: a few iterations per outer step, each continuing from the
        last adjoint, track it as the warm-started lower level tracks
        ``y(x)`` (amortised implicit differentiation).
    verbose : int, default=0
        Print the method's line per outer iteration (through
        ``skbilevel._progress.emit``, above an active progress bar) when positive.
    callback : callable, optional
        Called with a dict (``iteration``, ``objective``, ``time``,
        ``hyperparameters``) after each iteration; returning True stops the run.
    n_jobs : int, optional
        Folds solved in parallel through :class:`joblib.Parallel`, so that a
        joblib backend (loky, dask, ray) set by the caller runs them.
    on_evaluation : callable, optional
        Called after every evaluation of the objective (iterations and line
        search trials) with a dict: ``hyperparameters``, ``objective``,
        ``gradient``, ``fold_objectives``, ``models`` (the lower-level
        solutions, one per fold) and ``fold_times``.

    Returns
    -------
    BilevelResult
        ``history['complementarity']`` holds the projected-gradient norm;
        ``model`` is a list of fold solutions for a cross-validation problem.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: gradient descent on
       ``F(x, y(x))`` with the hypergradient of section 5.1 (from the
       stationarity condition (5.4)); Algorithm 6.1 and formula (6.3) of
       section 6.1 for a linearly constrained lower level.

    Examples
    --------
    The quadratic problem of :func:`~skbilevel.problems.quadratic_bilevel`,
    whose solution is known in closed form:

    >>> import numpy as np
    >>> from skbilevel.methods import hypergradient
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = hypergradient.solve(problem, np.zeros(2))
    >>> result.converged, np.allclose(result.hyperparameters, x_star, atol=1e-5)
    (True, True)
    """
    options = dict(tol=tol, max_iter=max_iter, lower_tol=lower_tol, adjoint_tol=adjoint_tol,
                   adjoint_max_iter=adjoint_max_iter, verbose=verbose, callback=callback, n_jobs=n_jobs,
                   on_evaluation=on_evaluation, ftol=ftol, max_line_search=max_line_search, xtol=xtol,
                   first_step=first_step)
    return METHOD.run(problem, x0, y0, options)


class _Hypergradient(BilevelMethod):
    """L-BFGS-B on hypergradients on the template of :class:`BilevelMethod`; scipy drives the iterations.

    :meth:`iterate` runs :func:`scipy.optimize.minimize`, whose callback
    records each iteration through :meth:`BilevelMethod.record`. Run state:
    ``x0``, ``y0``, the box ``lo``, ``hi``, ``oracle`` (the warm starts and
    the counts of inexact solves, see :func:`_oracle`), ``res`` (scipy's
    result, None after a stall at ``xtol``) and ``ys`` (the fold solutions
    at ``x``).
    """

    name = "hypergradient"
    requires = REQUIRES

    def lower_levels(self, problem):
        folds = problem.folds if isinstance(problem, CrossValidationProblem) else (problem,)
        return tuple(fold.lower for fold in folds)

    def needs(self, lower):
        # a lower level with its own adjoint solver needs no Hessian-vector products
        return ("solve", "adjoint", "cross_vjp") if "adjoint" in lower.capabilities else REQUIRES

    def setup(self, run, x0, y0):
        run.x0, run.y0 = np.asarray(x0, dtype=float), y0
        run.lo, run.hi = run.problem.x_bounds if run.problem.x_bounds is not None else (None, None)

    def iterate(self, run):
        o, lo, hi = run.options, run.lo, run.hi
        with Parallel(n_jobs=o.n_jobs) as parallel:
            adjoint_options = {"tol": o.adjoint_tol, "max_iter": o.adjoint_max_iter}
            fun, run.oracle = _oracle(run.problem, parallel, o.lower_tol, run.y0, o.on_evaluation, adjoint_options)
            clock = [time.perf_counter()]

            def on_iteration(intermediate_result):
                x = intermediate_result.x
                F, grad = fun(x)
                now = time.perf_counter()
                row = {"objective": F, "complementarity": _projected_gradient_norm(x, grad, lo, hi),
                       "time": now - clock[0]}
                clock[0], run.x = now, x
                if self.record(run, run.n_iter + 1, row):
                    raise StopIteration

            if o.max_iter == 0:  # scipy's L-BFGS-B takes a step even with maxiter=0
                run.x = run.x0.copy() if lo is None else np.clip(run.x0, lo, hi)
                fun(run.x)
                run.ys = run.oracle["y"]
                run.stop(Status.MAX_ITER, "no iteration run (max_iter=0)")
                return
            guarded = fun if o.xtol is None else _stall_guard(fun, run.oracle, o.xtol)
            c, ftol = _objective_scale(fun, run.x0, o.first_step, 1e-3 * o.tol if o.ftol is None else o.ftol)
            try:
                run.res = minimize(lambda x: tuple(v / c for v in guarded(x)), run.x0, jac=True, method="L-BFGS-B",
                                   bounds=None if lo is None else list(zip(lo, hi)), callback=on_iteration,
                                   options={"maxiter": o.max_iter, "gtol": o.tol / c, "maxls": o.max_line_search,
                                            "ftol": ftol})
                run.x = run.res.x
                fun(run.x)  # the returned point's fold solutions (cached when it was the last evaluation)
                run.ys = run.oracle["y"]
            except _Stalled as stalled:
                run.res, (run.x, run.ys) = None, stalled.args
        if not run.done:  # not stopped by the callback
            run.stop(*self._outcome(run))

    def _outcome(self, run):
        """``(status, message)`` from scipy's result."""
        res = run.res
        if res is None:
            return Status.CONVERGED, f"trial points within xtol={run.options.xtol:g} of evaluated ones"
        if res.status == 1:
            return Status.MAX_ITER, f"no convergence in max_iter={run.options.max_iter} L-BFGS-B iterations"
        message = f"L-BFGS-B: {res.message}"
        if res.status == 2:  # line search failure
            message += (" (the hypergradient jumps where a lower-level constraint changes from active"
                        " to inactive; the point is stationary only up to such a kink)")
        return (Status.CONVERGED if res.success else Status.STALLED), message

    def progress_line(self, k, row):
        return (f"[hypergradient] iter {k:3d}  F = {row['objective']:.6g}  |proj grad| = {row['complementarity']:.3g}  "
                f"({row['time']:.2f}s)")

    def annotate(self, run):
        oracle, o = run.oracle, run.options
        if o.max_iter == 0:  # the start alone: nothing was iterated on
            return
        if not oracle["ok"] or oracle["adjoint_failures"]:
            run.status = Status.INEXACT if run.status is Status.CONVERGED else run.status
        if not oracle["ok"]:
            run.message += "; a lower-level solve did not reach its tolerance"
        if oracle["adjoint_failures"]:
            cap = "the built-in cap" if o.adjoint_max_iter is None else f"adjoint_max_iter={o.adjoint_max_iter}"
            run.message += (f"; {oracle['adjoint_failures']} adjoint solve(s) stopped before "
                            f"adjoint_tol={o.adjoint_tol:g} (at {cap}, or on a singular system): the hypergradient "
                            "was inexact")

    def solution(self, run):
        return run.x, run.ys if isinstance(run.problem, CrossValidationProblem) else run.ys[0]


#: The method object behind :func:`solve`.
METHOD = _Hypergradient()


def _objective_scale(fun, x0, first_step, ftol):
    """``(c, ftol)``: the first L-BFGS-B step on ``F / c``, ``-grad F(x0) / c``, is ``first_step`` long,
    and L-BFGS-B's test ``decrease / max(|F / c|, 1) <= ftol`` reads as ``decrease / max(|F|, 1)`` at ``x0``.

    ``fun(x0)`` is evaluated here (``fun`` caches it for the solver's first call).
    """
    if first_step is None:
        return 1.0, ftol
    F0, grad0 = fun(x0)
    size = float(np.max(np.abs(grad0), initial=0.0))
    if not size > 0:
        return 1.0, ftol
    c, F0 = size / first_step, abs(F0)
    return c, ftol * max(F0, 1.0) / max(F0, c)


class _Stalled(Exception):
    """Raised by :func:`_stall_guard` with the best point and its fold solutions."""


def _stall_guard(fun, state, xtol):
    """``fun`` that raises :class:`_Stalled` (best ``x``, its solutions) at a trial point within
    ``xtol`` of an evaluated one."""
    seen, best = [], {"F": np.inf}

    def guarded(x):
        if any(np.max(np.abs(x - z)) <= xtol for z in seen):
            raise _Stalled(best["x"], best["y"])
        F, grad = fun(x)
        seen.append(np.array(x, dtype=float))
        if F < best["F"]:
            best.update(F=F, x=seen[-1].copy(), y=list(state["y"]))
        return F, grad

    return guarded


def _projected_gradient_norm(x, grad, lo, hi):
    if lo is None:
        return float(np.max(np.abs(grad), initial=0.0))
    step = np.clip(x - grad, lo, hi) - x
    return float(np.max(np.abs(step), initial=0.0))
