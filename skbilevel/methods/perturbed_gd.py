"""Single-loop perturbed gradient descent with a closed-form QP direction.

The method of section 3 of "Perturbed Gradient Descent via Convex Quadratic
Approximation for Nonconvex Bilevel Optimization" (anonymous authors, under
double-blind review, 2025; "the perturbed-gradient paper" below). The
bilevel problem is replaced by its stationarity reduction (eq. (4))

.. math::

    \\min_{x, y} F(x, y) \\quad \\text{s.t.} \\quad h(x, y) := \\|\\nabla_y f(x, y)\\|^2 = 0,

(the paper writes ``f`` for our upper objective ``F`` and ``g`` for our lower
objective ``f``). With ``z = (x, y)``, Algorithm 1 moves ``z_{k+1} = z_k +
gamma Delta_k`` along the minimal perturbation of the negative upper gradient
that decreases ``h`` at the rate ``alpha rho_k``, the QP (7)

.. math::

    \\Delta_k = \\arg\\min_{\\Delta} \\tfrac12 \\|\\Delta + \\nabla F_k\\|^2 \\quad
    \\text{s.t.} \\quad \\nabla h_k^T \\Delta + \\alpha \\rho_k \\le 0,

whose solution is (8a)-(8c)

.. math::

    \\Delta_k = -\\nabla F_k - \\lambda_k \\nabla h_k, \\qquad
    \\lambda_k = \\frac{[-\\nabla h_k^T \\nabla F_k + \\alpha \\rho_k]_+}{\\|\\nabla h_k\\|^2}.

The gradient of ``h`` is the pair of second-order products of Remark 3.1,
``grad_x h = 2 (grad^2_yx f)^T grad_y f`` and ``grad_y h = 2 grad^2_yy f grad_y f``
(the paper drops the factor 2), taken from the lower level's ``cross_vjp``
and ``hvp``. The two choices of ``rho`` of section 3 are

* ``rho='adaptive'``: ``rho = ||grad h||^2`` (Theorem 4.2, Corollary 4.3),
* ``rho='fixed'``: ``rho = ||grad h|| sqrt(h(x_0, y_0))`` (Theorem 4.5, Corollary 4.6),

the second one with the scale of ``h`` fixed at the (warm) start (and floored,
see below).

Notes on the paper's text. QP (7) prints the weight ``1/2`` on the ``x`` term
only; (8a)-(8c) is the solution with ``1/2`` on both terms, which is what we
implement. Corollaries 4.3 and 4.6 write the multiplier of ``grad_y f = 0`` as
``nu = lambda grad_y f``; with ``grad h = 2 J^T grad_y f`` it is ``2 lambda
grad_y f``, recorded in ``history['nu_norm']``. Algorithm 1 requires a warm
start ``h(x_0, y_0) <= alpha^2 C_0`` but uses ``C_0`` nowhere else; after an
exact warm start (``h(x_0, y_0) = 0``) the fixed ``rho`` vanishes, the QP only
forbids first-order increases of ``h``, ``h`` drifts up by ``O(gamma^2)`` per
step and the run stops at a point where ``Delta = 0`` with ``h > 0``. We
therefore use ``rho = ||grad h|| sqrt(max(h(x_0, y_0), alpha^2 C_0))``: the
bound ``sqrt(h_0) <= alpha sqrt(C_0)`` is all that the proof of Theorem 4.5
uses, so its bounds hold unchanged; ``c0=0`` gives the paper's formula.

With a fixed step the iterates do not converge: they settle, oscillating, in
an ``O(gamma)`` neighbourhood of a KKT point of (4) (the single constraint of
the QP controls one direction of ``grad_y f`` per step). The paper's
parameters tie ``alpha`` and ``gamma`` to the budget ``K`` for this reason.
"""

from __future__ import annotations

import numpy as np

from .._result import BilevelResult, Status
from ..problems.base import BilevelProblem
from ._base import BilevelMethod, box, project, start_model

#: Lower-level capabilities the method uses (``grad h`` needs both products).
REQUIRES = ("hvp", "cross_vjp")

#: The two choices of ``rho`` of the perturbed-gradient paper (2025), section 3.
RHO_CHOICES = ("adaptive", "fixed")

#: Most step reductions of the curvature safeguard within one iteration.
MAX_BACKTRACKS = 30


def qp_direction(grad_F, grad_h, alpha, rho):
    """Solve the QP (7) in closed form, eqs. (8a)-(8c).

    Parameters
    ----------
    grad_F, grad_h : arrays of shape (n_hyper + n_var,)
        ``(grad_x F, grad_y F)`` and ``(grad_x h, grad_y h)`` stacked.
    alpha : float
        Rate of the constraint ``grad_h^T Delta + alpha rho <= 0``.
    rho : float
        Value of ``rho(x_k, y_k) >= 0``.

    Returns
    -------
    direction : ndarray
        ``Delta = -grad_F - lambda grad_h`` (8a)-(8b).
    lam : float
        The multiplier (8c), ``[-grad_h^T grad_F + alpha rho]_+ / ||grad_h||^2``.
        When ``grad_h = 0`` both choices of ``rho`` vanish, the constraint reads
        ``0 <= 0`` and ``lambda = 0``.

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", paper under
       double-blind review, 2025:
       the QP (7) and its solution (8a)-(8c), section 3.

    Examples
    --------
    The negative gradient ``(-1, 1)`` would increase ``h`` (``grad_h^T d = 1``);
    the direction is bent until ``grad_h^T Delta + alpha rho = 0``:

    >>> import numpy as np
    >>> from skbilevel.methods.perturbed_gd import qp_direction
    >>> direction, lam = qp_direction(np.array([1.0, -1.0]), np.array([0.0, 1.0]), alpha=1.0, rho=1.0)
    >>> direction, lam
    (array([-1., -1.]), 2.0)
    """
    norm2 = float(grad_h @ grad_h)
    lam = max(0.0, alpha * rho - float(grad_h @ grad_F)) / norm2 if norm2 > 0 else 0.0
    return -grad_F - lam * grad_h, lam


def _evaluate(problem, x, y):
    """Everything Algorithm 1 needs at ``(x, y)``: ``F``, ``grad F``, ``h``, ``grad h``."""
    lower, upper = problem.lower, problem.upper
    r = lower.grad_y(x, y)
    gx, gy = upper.gradient(x, y)
    # Remark 3.1: grad h = 2 [grad^2_yx f, grad^2_yy f]^T grad_y f, as two matrix-free products
    grad_h = 2.0 * np.concatenate([lower.cross_vjp(x, y, r), lower.hvp(x, y, r)])
    return {"x": x, "y": y, "F": float(upper.value(x, y)), "grad_F": np.concatenate([gx, gy]),
            "h": float(r @ r), "grad_h": grad_h}


def _rho(kind, grad_h, h_scale):
    """``rho(x_k, y_k)`` of section 3 ('adaptive': ``||grad h||^2``; 'fixed': ``||grad h|| sqrt(h_scale)``)."""
    norm2 = float(grad_h @ grad_h)
    return norm2 if kind == "adaptive" else np.sqrt(norm2 * h_scale)


def _defaults(rho, alpha, step, K):
    """The paper's ``alpha`` and step cap for a budget of ``K`` iterations.

    Corollary 4.3 (``rho='adaptive'``): ``alpha = K^{-1/3}``, ``gamma <= alpha``
    (with ``gamma <= 1/(L_F + alpha L_h)`` enforced by the safeguard).
    Corollary 4.6 (``rho='fixed'``): ``alpha = K^{-1/6}``, ``gamma = K^{-2/3}``
    (with ``gamma <= 1/L_F`` enforced by the safeguard).
    """
    if alpha is None:
        alpha = K ** (-1 / 3) if rho == "adaptive" else K ** (-1 / 6)
    if step is None:
        step = alpha if rho == "adaptive" else K ** (-2 / 3)
    return float(alpha), float(step)


def _norm(v):
    # np.linalg.norm costs more than the products themselves on small problems
    return float(np.sqrt(v @ v))


def _secant(new, old, dz):
    """Lipschitz estimate of a gradient along one step."""
    return _norm(new - old) / dz


def _take_step(problem, state, direction, gamma, curv, lips, bounds):
    """Move along ``direction`` with the curvature safeguard; return ``(state, gamma, lips)``.

    ``lips = (L_F, L_h)`` are the largest secant estimates of the Lipschitz
    constants of ``grad F`` and ``grad h`` met so far. A step is accepted when
    ``gamma <= 1 / (L_F + curv L_h)``, the step condition of Theorem 4.2
    (``curv = alpha``) or 4.5 (``curv = 0``), holds with the estimates updated
    on that very step; otherwise it is retried with ``gamma = 1 / (L_F + curv
    L_h)``. Returns ``None`` for the state when no step is accepted.
    """
    n = state["x"].size
    z = np.concatenate([state["x"], state["y"]])
    for _ in range(MAX_BACKTRACKS):
        z_new = np.concatenate([project(state["x"] + gamma * direction[:n], bounds),
                                state["y"] + gamma * direction[n:]])
        dz = _norm(z_new - z)
        new = _evaluate(problem, z_new[:n], z_new[n:])
        if dz == 0:  # pinned at the bounds with no move in y: nothing to check
            return new, gamma, lips
        if not np.isfinite(new["F"] + new["h"]):
            gamma *= 0.5
            continue
        lips = (max(lips[0], _secant(new["grad_F"], state["grad_F"], dz)),
                max(lips[1], _secant(new["grad_h"], state["grad_h"], dz)))
        bound = lips[0] + curv * lips[1]
        if gamma * bound <= 1.0 + 1e-12:
            return new, gamma, lips
        gamma = 1.0 / bound
    return None, gamma, lips


def _kkt_residual(state, direction, gamma, bounds):
    """``||Delta_k||``, with the ``x`` part replaced by the projected step ``(P(x + gamma Delta^x) - x) / gamma``."""
    x, n = state["x"], state["x"].size
    dx = (project(x + gamma * direction[:n], bounds) - x) / gamma
    return float(np.sqrt(dx @ dx + direction[n:] @ direction[n:]))


class _PerturbedGD(BilevelMethod):
    """Algorithm 1 of the perturbed-gradient paper (2025) on the template of :class:`BilevelMethod`.

    Run state: ``state`` (``F``, ``h`` and their gradients at the current
    ``(x, y)``), ``new`` (the point after the step), ``alpha``, ``gamma``,
    ``h_scale``, ``curv``, ``lips`` and ``bounds``.
    """

    name = "perturbed-gd"
    requires = REQUIRES
    forbids = ("constraints",)
    forbids_reason = "h = ||grad_y f||^2 is not a stationarity measure under constraints"
    history_keys = ("objective", "complementarity", "time", "kkt_residual", "lambda", "nu_norm", "step")

    def check_options(self, options):
        if options.rho not in RHO_CHOICES:
            raise ValueError(f"rho must be one of {RHO_CHOICES}, got {options.rho!r}.")

    def setup(self, run, x0, y0):
        opts, lower = run.options, run.problem.lower
        run.bounds = box(run.problem)
        x = project(np.array(x0, dtype=float), run.bounds)
        run.state = _evaluate(run.problem, x, start_model(lower, x, y0)[0])
        run.alpha, run.gamma = _defaults(opts.rho, opts.alpha, opts.step, max(int(opts.max_iter), 1))
        run.h_scale = max(run.state["h"], run.alpha**2 * opts.c0)
        run.curv = run.alpha if opts.rho == "adaptive" else 0.0
        run.lips = (0.0, 0.0)

    def step(self, run, k):
        opts, state = run.options, run.state
        rho = _rho(opts.rho, state["grad_h"], run.h_scale)
        direction, lam = qp_direction(state["grad_F"], state["grad_h"], run.alpha, rho)
        kkt = _kkt_residual(state, direction, run.gamma, run.bounds)
        run.new = None
        if kkt > opts.tol:
            run.new, run.gamma, run.lips = _take_step(run.problem, state, direction, run.gamma, run.curv, run.lips,
                                                      run.bounds)
        return {"objective": state["F"], "complementarity": state["h"], "kkt_residual": kkt, "lambda": lam,
                "nu_norm": 2.0 * lam * np.sqrt(state["h"]), "step": run.gamma}

    def progress_line(self, k, row):
        return (f"[perturbed-gd] iter {k:4d}  F = {row['objective']:.6g}  "
                f"||grad_y f|| = {np.sqrt(row['complementarity']):.3g}  ||Delta|| = {row['kkt_residual']:.3g}  "
                f"lambda = {row['lambda']:.3g}  step = {row['step']:.3g}")

    def hyperparameters(self, run):
        return run.state["x"]

    def should_stop(self, run, k, row):
        kkt, residual = row["kkt_residual"], np.sqrt(row["complementarity"])
        if kkt <= run.options.tol:
            if residual <= run.options.tol:
                run.stop(Status.CONVERGED, f"converged: ||Delta|| = {kkt:.3g} and ||grad_y f|| = {residual:.3g} <= tol")
            else:
                run.stop(Status.STALLED,
                         f"stalled: ||Delta|| = {kkt:.3g} <= tol but ||grad_y f|| = {residual:.3g} > tol "
                         "(a stationary point of h, or rho ~ 0 after an exact warm start with rho='fixed')")
            return True
        if run.new is None:
            run.stop(Status.FAILED, f"no step accepted at iteration {k} (non-finite values or unbounded curvature)")
            return True
        return False

    def advance(self, run):
        run.state = run.new

    def budget_message(self, run):
        history, opts = run.history, run.options
        if not run.n_iter:
            return f"no iteration run (max_iter={opts.max_iter})"
        return (f"no eps-KKT point within tol={opts.tol:g} in max_iter={opts.max_iter} iterations: ||Delta|| = "
                f"{history['kkt_residual'][-1]:.3g}, ||grad_y f|| = {np.sqrt(history['complementarity'][-1]):.3g} "
                "(with a fixed step the iterates settle within O(step) of a KKT point)")

    def solution(self, run):
        return run.state["x"].copy(), run.state["y"].copy()


#: The method object behind :func:`solve`.
METHOD = _PerturbedGD()


def solve(problem: BilevelProblem, x0, y0=None, *, rho: str = "adaptive", alpha=None, step=None,
          c0: float = 1.0, tol: float = 1e-6, max_iter: int = 1000,
          verbose: int = 0, callback=None) -> BilevelResult:
    """Run Algorithm 1 of the perturbed-gradient paper (2025) on ``min F s.t. ||grad_y f||^2 = 0``.

    Each iteration computes the direction (8a)-(8c) at ``z_k = (x_k, y_k)``
    (see :func:`qp_direction`) and moves ``z_{k+1} = z_k + gamma Delta_k``,
    projecting ``x`` on ``problem.x_bounds`` when given (the paper has no
    bounds; with them the ``x`` part of the KKT residual is the projected step).

    Parameters
    ----------
    problem : BilevelProblem
        Its lower level must offer ``hvp`` and ``cross_vjp``; linearly
        constrained lower levels are refused.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters (projected on ``problem.x_bounds``).
    y0 : array of shape (n_var,), optional
        Starting lower-level point. Default: ``lower.solve(x0)`` when offered
        (the warm start ``h(x_0, y_0) <= alpha^2 C_0`` of Algorithm 1, line 2),
        else zeros.
    rho : {'adaptive', 'fixed'}
        ``'adaptive'``: ``rho = ||grad h||^2`` (Theorem 4.2). ``'fixed'``:
        ``rho = ||grad h|| sqrt(max(h(x_0, y_0), alpha^2 c0))`` (Theorem 4.5;
        the floor is ours, see the module notes).
    alpha : float, optional
        Rate ``alpha`` of the QP constraint. Default, with ``K = max_iter``:
        ``K^{-1/3}`` for 'adaptive' (Corollary 4.3), ``K^{-1/6}`` for 'fixed'
        (Corollary 4.6).
    step : float, optional
        Largest step ``gamma``. Default: ``alpha`` for 'adaptive' (Theorem 4.2,
        ``gamma <= alpha``), ``K^{-2/3}`` for 'fixed' (Corollary 4.6). The
        remaining conditions ``gamma <= 1 / (L_F + alpha L_h)`` (Theorem 4.2) and
        ``gamma <= 1 / L_F`` (Theorem 4.5) involve Lipschitz constants that a
        problem does not state: the step is reduced whenever the largest secant
        estimate of them met so far, including along the step being taken,
        violates the condition (the step is then retried). ``gamma`` never
        increases. The iterates reach a neighbourhood of a KKT point of size
        ``O(gamma)``, so ``step`` sets the accuracy (and ``1 / step`` the number
        of iterations needed).
    c0 : float
        The constant ``C_0`` of Algorithm 1, the warm-start level
        ``h(x_0, y_0) <= alpha^2 C_0``; used as a floor of the fixed ``rho``.
        ``0`` gives the paper's ``rho`` exactly.
    tol : float
        The run stops when ``||Delta_k|| <= tol``: the iterates no longer move.
        It has converged when also ``||grad_y f(x_k, y_k)|| <= tol``
        (Definition 2.4 of an eps-KKT point with ``eps = tol^2``). With a
        fixed step this needs ``step`` of the order of ``tol``.
    max_iter : int
        Iteration budget, the ``K`` of Corollaries 4.3 and 4.6.
    verbose : int, default=0
        Print the method's line per outer iteration (through
        ``skbilevel._progress.emit``, above an active progress bar) when positive.
    callback : callable, optional
        Called with a dict (``iteration``, ``objective``, ``time``,
        ``hyperparameters``) after each iteration; returning True stops the run.

    Returns
    -------
    BilevelResult
        The last iterate. (The proofs of Corollaries 4.3 and 4.6 pick ``t =
        argmin_k max(||Delta_k||^2, h_k)``; that score mixes two scales and,
        as ``h`` drifts, selects early, distant iterates, so we do not return
        it.) ``history`` holds per iteration ``objective``
        (``F``), ``complementarity`` (``h = ||grad_y f||^2``), ``time``,
        ``kkt_residual`` (``||Delta_k||``), ``lambda`` (8c), ``nu_norm``
        (``||2 lambda grad_y f||``, the multiplier of ``grad_y f = 0``) and
        ``step`` (``gamma_k``).

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", paper under
       double-blind review, 2025:
       the reduction (4), Algorithm 1 with the direction (7)-(8c) and
       Remark 3.1 (section 3), the step and rate conditions of Theorems 4.2
       and 4.5 and Corollaries 4.3 and 4.6, and the eps-KKT point of
       Definition 2.4.

    Examples
    --------
    With a fixed step the iterates settle within ``O(step)`` of the solution
    (here ``x* = (1.429, 1.538)``), so the run ends at ``max_iter``:

    >>> import numpy as np
    >>> from skbilevel.methods import perturbed_gd
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = perturbed_gd.solve(problem, np.zeros(2), max_iter=3000, step=0.01)
    >>> result.n_iter, np.round(result.hyperparameters, 1)
    (3000, array([1.4, 1.5]))
    """
    options = dict(rho=rho, alpha=alpha, step=step, c0=c0, tol=tol, max_iter=max_iter, verbose=verbose,
                   callback=callback)
    return METHOD.run(problem, x0, y0, options)
