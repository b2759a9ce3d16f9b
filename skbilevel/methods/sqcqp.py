"""Sequential QCQP with a barrier line search (Sharifi et al., 2025, section II and appendix V).

The bilevel problem is relaxed to the single-level problem (2) of Sharifi et al. (2025),

.. math::

    \\min_{z = (x, y)} F(x, y) \\quad \\text{s.t.} \\quad h(z) - \\varepsilon^2 \\le 0,
    \\qquad h(z) = \\|\\nabla_y f(x, y)\\|^2,

(the paper's upper objective ``f`` is our ``F``, its lower objective ``g`` our
``f``), whose constraint gradient is

.. math::

    \\nabla h(z) = 2 \\begin{bmatrix} (\\nabla^2_{yx} f)^T \\nabla_y f \\\\
    \\nabla^2_{yy} f \\, \\nabla_y f \\end{bmatrix}

(one ``cross_vjp`` and one ``hvp`` with ``v = grad_y f``; the paper writes
``H^T grad_y g`` without the factor 2, which only rescales ``w``; we use the
exact gradient). Algorithm 1 iterates, from a point with ``h(z) <= eps^2``,

1. the search direction of (QCQP),

   .. math::

       \\Delta z = \\arg\\min_d \\tfrac12 \\|d + \\nabla F(z)\\|^2 \\quad \\text{s.t.} \\quad
       \\nabla h(z)^T d + \\alpha_b (h(z) - \\varepsilon^2) \\le -w \\|d\\|^2,

   which (Remark 3) is the projection of ``-grad F`` on the ball of centre
   ``c = -grad h / (2 w)`` and radius
   ``r = sqrt(||grad h / (2 w)||^2 - alpha_b (h - eps^2) / w)``:
   ``Delta z = -grad F`` if ``||-grad F - c|| <= r``, else
   ``c + r (-grad F - c) / ||-grad F - c||``;
2. a backtracking step ``t = t_max, beta t_max, ...`` until both the Armijo
   condition (7) on the upper objective,
   ``F(z + t dz) <= F(z) + alpha_ls t grad F^T dz``, and the discrete barrier
   condition (8), ``h(z + t dz) - eps^2 <= (1 - gamma) (h(z) - eps^2)``, hold;
3. ``z <- z + t dz``.

By Theorem 1 ``dz`` is a descent direction of ``F`` (5) while (8) keeps every
iterate feasible (anytime feasibility, Theorem 2); ``dz = 0`` exactly at a KKT
point of (2) (Theorem 1-iv) and ``||dz|| -> 0`` (Theorem 2), so the run stops
when ``||dz|| <= tol``. ``history['complementarity']`` holds ``||dz||``,
``history['lower_residual']`` ``||grad_y f|| = sqrt(h)`` and
``history['step']`` the step ``t``.

Notes on the paper's text:

* (QCQP) is printed with a strict inequality and ``alpha_h``; the appendix
  (Remark 3, the KKT system (9)) uses ``<=`` and ``alpha_b``, which we follow.
* Algorithm 1 assumes a feasible start (step 1, "ensure ``h(z^0) <= eps^2``")
  without saying how. When the start is infeasible we first take Newton steps
  on ``grad_y f(x0, .) = 0`` in ``y`` (``x`` fixed; the Newton direction
  ``-(grad^2_yy f)^{-1} grad_y f`` is a descent direction of ``h``), solved by
  MINRES on Hessian-vector products, with backtracking on ``h``, until
  ``h <= (eps / 2)^2`` (a margin, so that the first steps are not pinned to
  the boundary of the feasible set).
* The solution of (2) is only an ``eps``-relaxation of the bilevel problem:
  the returned ``y`` satisfies ``||grad_y f(x, y)|| <= eps``, not more, and
  ``x`` is off the bilevel solution by ``O(eps)`` (the constraint is active
  at the solution of (2): leaving the lower-level solution by ``eps`` lowers
  ``F`` to first order). The defaults ``eps = 1e-3``, ``w = 1e-2`` (the
  paper used ``eps = 0.1`` or ``0.5`` and ``w`` in ``{1e-1, 1e-2, 1e-3}``)
  aim at the bilevel solution rather than at a coarse relaxation.
* The price of a small ``eps``: the direction's length is at most
  ``2 r = O(||grad^2 f|| eps / w)`` and the barrier (8) caps ``t`` near
  ``2 beta w / L_h`` (Lemma 1), so ``z`` moves ``O(eps)`` per iteration
  while ``||grad F|| >> r``, and the final linear rate is ``1 - O(eps)``.
  Iterations are cheap (one ``hvp``, one ``cross_vjp`` and a few function
  values) but many, at least of order ``1 / eps`` (a linear rate
  ``1 - O(eps)``), hence the large default ``max_iter``.

Bounds on ``x`` (``problem.x_bounds``), which the paper does not have, are
handled by a constraint on the direction and a projection. (QCQP) gets the
constraints that ``dx`` stays in the tangent cone of the box (``dx_i >= 0``
where ``x_i`` is on its lower bound, ``<= 0`` on its upper one); its exact
solution is a clipped point of the segment from ``-grad F`` to the ball's
centre (see :func:`cone_qcqp_direction`), and still satisfies (5) and (6),
since ``d = 0`` is feasible for the added constraints. Trial points are
projected on the box, ``x(t) = clip(x + t dx)``, and the Armijo test (7) is
taken along the projected arc, ``F(z(t)) <= F(z) + alpha_ls grad F^T (z(t) - z)``
(Bertsekas' projected Armijo rule), with (8) evaluated at ``z(t)``. For small
``t`` the projection is inactive (no free component leaves the box at once),
``z(t) - z = t dz``, and the step-size bound of Lemma 1 still applies.
``dz = 0`` is then a KKT point of (2) on the box, bound multipliers of the
right sign included: if ``-(grad F + lambda grad h)`` pointed into the box
along a bound, the direction would move along it.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, minres

from .._result import BilevelResult, Status
from ..problems.base import BilevelProblem
from ._base import BilevelMethod, box, project, start_model

#: Lower-level capabilities the method uses (for ``grad h``).
REQUIRES = ("hvp", "cross_vjp")

#: Backtracking halvings before the line search is declared failed.
MAX_BACKTRACKS = 60


def barrier(lower, x, y):
    """Return ``(h, grad_x h, grad_y h)`` with ``h = ||grad_y f(x, y)||^2``.

    ``grad h = 2 [grad^2_yx f, grad^2_yy f]^T grad_y f`` (Sharifi et al., 2025, Remark 1,
    with the factor 2 of the derivative of a square, which the paper omits).

    Parameters
    ----------
    lower : LowerLevel
        The lower level (``'hvp'`` and ``'cross_vjp'``).
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    y : ndarray of shape (n_var,)
        Lower-level variable.

    Returns
    -------
    h : float
        ``||grad_y f(x, y)||^2``.
    grad_x_h : ndarray of shape (n_hyper,)
        ``2 (grad^2_yx f)^T grad_y f``.
    grad_y_h : ndarray of shape (n_var,)
        ``2 grad^2_yy f grad_y f``.

    References
    ----------
    .. [1] S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab, "Sequential QCQP for
       Bilevel Optimization with Line Search", 2025:
       the constraint function ``h`` of problem (2), section I, and its
       gradient after Remark 1, section II.

    Examples
    --------
    For ``f = 1/2 y^T Q y - y^T x`` with ``Q = diag(2, 4)``:

    >>> import numpy as np
    >>> from skbilevel.methods.sqcqp import barrier
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> barrier(problem.lower, np.ones(2), np.zeros(2))
    (2.0, array([2., 2.]), array([-4., -8.]))
    """
    g = lower.grad_y(x, y)
    return float(g @ g), 2.0 * lower.cross_vjp(x, y, g), 2.0 * lower.hvp(x, y, g)


def qcqp_direction(grad_F, grad_h, h, epsilon, w, alpha_b):
    """Closed-form solution of (QCQP) (Sharifi et al., 2025, Remark 3 of appendix V).

    .. math::

        \\Delta z = \\arg\\min_d \\tfrac12 \\|d + \\nabla F\\|^2 \\ \\text{s.t.} \\
        \\nabla h^T d + \\alpha_b (h - \\varepsilon^2) + w \\|d\\|^2 \\le 0

    Completing the square, the constraint is the ball
    ``||d - c||^2 <= r^2`` with ``c = -grad h / (2 w)`` and
    ``r^2 = ||c||^2 - alpha_b (h - eps^2) / w``, so ``Delta z`` is the
    projection of ``-grad F`` on that ball.

    Parameters
    ----------
    grad_F, grad_h : ndarray
        ``grad F(z)`` and ``grad h(z)``, with ``z = (x, y)`` concatenated.
    h : float
        ``h(z) = ||grad_y f||^2``.
    epsilon, w, alpha_b : float
        Tolerance ``eps``, tilting parameter ``w > 0``, barrier parameter.

    Returns
    -------
    ndarray
        ``Delta z``. When the QCQP is infeasible (``r^2 < 0``, only possible
        for ``h > eps^2``) the ball shrinks to its centre ``c``, the minimiser
        of the constraint function, i.e. the least infeasible direction.

    References
    ----------
    .. [1] S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab, "Sequential QCQP for
       Bilevel Optimization with Line Search", 2025:
       the direction problem (QCQP), section II-B, and its closed form,
       Remark 3 of the appendix (section V-A).

    Examples
    --------
    At a point with ``h = 0`` the steepest descent direction ``(-1, 0)`` lies
    outside the ball (centre ``(0, -1)``, radius about 1), so it is projected:

    >>> import numpy as np
    >>> from skbilevel.methods.sqcqp import qcqp_direction
    >>> d = qcqp_direction(np.array([1.0, 0.0]), np.array([0.0, 1.0]), h=0.0, epsilon=0.1, w=0.5, alpha_b=0.1)
    >>> np.round(d, 4)
    array([-0.7078, -0.2922])
    """
    c, r2 = _ball(grad_h, h, epsilon, w, alpha_b)
    r = np.sqrt(r2)
    p = -grad_F
    dist = float(np.linalg.norm(p - c))
    if dist <= r:  # the steepest descent step is admissible: the constraint is inactive
        return p
    return c + (r / dist) * (p - c)


def _ball(grad_h, h, epsilon, w, alpha_b):
    """Centre ``c`` and squared radius of the ball that the constraint of (QCQP) describes (Remark 3)."""
    c = -grad_h / (2.0 * w)
    return c, max(float(c @ c) - alpha_b * (h - epsilon**2) / w, 0.0)


def _direction(grad_F, grad_h, h, x, bounds, opts):
    """(QCQP) with ``dx`` kept in the tangent cone of the box at ``x``; return ``dz``."""
    if bounds is None:
        return qcqp_direction(grad_F, grad_h, h, opts["epsilon"], opts["w"], opts["alpha_b"])
    n = x.size
    lo, hi = np.full(grad_F.size, -np.inf), np.full(grad_F.size, np.inf)
    lo[:n][x <= bounds[0]] = 0.0  # on a lower bound dx_i >= 0, on an upper one dx_i <= 0
    hi[:n][x >= bounds[1]] = 0.0
    return cone_qcqp_direction(grad_F, grad_h, h, opts["epsilon"], opts["w"], opts["alpha_b"], lo, hi)


def cone_qcqp_direction(grad_F, grad_h, h, epsilon, w, alpha_b, lo, hi):
    """(QCQP) with the box constraints ``lo <= dz <= hi`` added (entries 0 or infinite).

    The ball constraint of :func:`qcqp_direction` (centre ``c``, radius ``r``)
    is dualised: for its multiplier ``lambda >= 0`` the Lagrangian
    ``1/2 ||d + grad F||^2 + lambda/2 (||d - c||^2 - r^2)`` separates over the
    components, and its minimiser on the box is
    ``d(t) = clip((1 - t) (-grad F) + t c, lo, hi)`` with ``t = lambda / (1 +
    lambda)`` in ``[0, 1)``. ``||d(t) - c||`` does not increase with ``t``
    (each component moves monotonically towards ``clip(c_i)``), so the
    smallest ``t`` with ``||d(t) - c|| <= r``, found by bisection, gives the
    exact solution (KKT of the convex problem). Where the box and the ball do
    not meet (an infeasible ``z``, ``h > eps^2``), ``d(1) = clip(c)`` is the
    least infeasible direction, as in :func:`qcqp_direction`.

    Parameters
    ----------
    grad_F, grad_h : ndarray of shape (n,)
        Gradients of the upper objective and of ``h`` at ``z``.
    h, epsilon, w, alpha_b : float
        As in :func:`qcqp_direction`.
    lo, hi : ndarray of shape (n,)
        Bounds on the direction: ``0`` for a component of ``x`` on its lower
        (``lo``) or upper (``hi``) bound, ``-inf`` / ``inf`` otherwise.

    Returns
    -------
    ndarray of shape (n,)
        The direction ``dz``.

    References
    ----------
    .. [1] S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab, "Sequential QCQP for
       Bilevel Optimization with Line Search", 2025:
       (QCQP) of section II-B, whose ball form (Remark 3, appendix V-A) is
       kept here with the bounds added (the paper has none).

    Examples
    --------
    Without bounds this is :func:`qcqp_direction`; with the first component
    on a lower bound (``dz_0 >= 0``) the projected direction ``(-0.71, -0.29)``
    of its example is cut to 0:

    >>> import numpy as np
    >>> from skbilevel.methods.sqcqp import cone_qcqp_direction
    >>> args = np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.0, 0.1, 0.5, 0.1
    >>> free = np.full(2, np.inf)
    >>> np.round(cone_qcqp_direction(*args, -free, free), 4)
    array([-0.7078, -0.2922])
    >>> np.round(cone_qcqp_direction(*args, np.array([0.0, -np.inf]), free), 4) + 0.0
    array([0., 0.])
    """
    c, r2 = _ball(grad_h, h, epsilon, w, alpha_b)
    p = -grad_F

    def direction(t):
        return np.clip((1.0 - t) * p + t * c, lo, hi)

    def inside(d):
        return float((d - c) @ (d - c)) <= r2

    if inside(direction(0.0)):
        return direction(0.0)
    low, high = 0.0, 1.0
    for _ in range(60):  # to machine precision in t
        mid = 0.5 * (low + high)
        low, high = (low, mid) if inside(direction(mid)) else (mid, high)
    return direction(high)


def _line_search(problem, x, y, dx, dy, F, grad_F, h, bounds, opts):
    """Backtrack on the Armijo (7) and barrier (8) conditions.

    Return ``(t, x_new, y_new, F_new)``, or ``None`` when no step of at least
    ``t_max * beta**MAX_BACKTRACKS`` satisfies both.
    """
    upper, lower = problem.upper, problem.lower
    eps2, t = opts["epsilon"] ** 2, opts["t_max"]
    for _ in range(MAX_BACKTRACKS + 1):
        x_t, y_t = project(x + t * dx, bounds), y + t * dy
        # the projected arc: the displacement actually taken, tdz when no bound is hit
        decrease = grad_F[:x.size] @ (x_t - x) + grad_F[x.size:] @ (y_t - y)
        F_t = upper.value(x_t, y_t)
        if F_t <= F + opts["alpha_ls"] * decrease:
            g_t = lower.grad_y(x_t, y_t)
            if g_t @ g_t - eps2 <= (1.0 - opts["gamma"]) * (h - eps2):
                return t, x_t, y_t, F_t
        t *= opts["beta"]
    return None


def _newton_y(lower, x, y, g, max_iter=None):
    """Newton direction ``-(grad^2_yy f)^{-1} grad_y f`` by MINRES on ``hvp`` (least squares if singular),
    truncated after ``max_iter`` MINRES iterations (default ``10 n``)."""
    op = LinearOperator((y.size, y.size), matvec=lower.hvp_operator(x, y), dtype=float)
    d, _ = minres(op, -g, rtol=1e-10, maxiter=10 * y.size if max_iter is None else max_iter)
    return d


def _restore(lower, x, y, epsilon, max_steps, newton_max_iter=None):
    """Reduce ``h(x, .)`` below ``eps^2`` in ``y`` (step 1 of Algorithm 1); return ``(y, h)``."""
    g = lower.grad_y(x, y)
    h = float(g @ g)
    target = (0.5 * epsilon) ** 2  # a margin inside the set, so the first steps are not pinned
    for _ in range(max_steps):
        if h <= target:
            break
        d, grad_h_y = _newton_y(lower, x, y, g, newton_max_iter), 2.0 * lower.hvp(x, y, g)
        if not np.all(np.isfinite(d)) or grad_h_y @ d >= 0:
            d = -grad_h_y  # steepest descent on h when Newton fails
        t = 1.0
        for _ in range(MAX_BACKTRACKS):
            g_t = lower.grad_y(x, y + t * d)
            if g_t @ g_t < h:
                break
            t *= 0.5
        else:
            break
        y = y + t * d
        g = g_t
        h = float(g @ g)
    return y, h


def solve(problem: BilevelProblem, x0, y0=None, *, tol: float = 1e-6, max_iter: int = 50000,
          epsilon: float = 1e-3, w: float = 1e-2, alpha_b: float = 0.1, alpha_ls: float = 0.1,
          gamma: float = 0.1, beta: float = 0.5, t_max: float = 1.0, lower_tol: float = 1e-10,
          restore_steps: int | None = None, newton_max_iter: int | None = None,
          verbose: int = 0, callback=None) -> BilevelResult:
    """Solve the relaxation (2) of ``problem`` by Algorithm 1 of Sharifi et al. (2025).

    Parameters
    ----------
    problem : BilevelProblem
        Its lower level must offer ``hvp`` and ``cross_vjp``; a linearly
        constrained one (``n_constraints > 0``) is refused, since
        ``grad_y f = 0`` is then not its optimality condition.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters, projected on ``problem.x_bounds`` first.
    y0 : array of shape (n_var,), optional
        Starting ``y``; default ``lower.solve(x0)`` when offered, else zeros.
        If ``||grad_y f(x0, y0)|| > eps`` Newton steps in ``y`` restore
        feasibility first.
    tol : float
        Stop when the QCQP direction has ``||dz|| <= tol`` (Theorem 1-iv).
    max_iter : int
        Maximum number of iterations ``K``.
    epsilon : float
        Lower-level tolerance ``eps`` of (2): iterates keep ``||grad_y f|| <= eps``;
        the solution of (2) is ``O(eps)`` away from the bilevel solution and the
        number of iterations grows like ``1 / eps``.
    w : float
        Tilting parameter ``w > 0`` of (QCQP).
    alpha_b, alpha_ls, gamma, beta, t_max : float
        Barrier parameter of (QCQP), Armijo parameter of (7), barrier decay
        of (8), backtracking factor and initial step (the paper's defaults).
    lower_tol : float
        Tolerance of the starting ``lower.solve``.
    restore_steps : int, optional
        Newton steps allowed to make the start feasible (default ``max_iter``).
    newton_max_iter : int, optional
        MINRES iterations per restoring Newton step (default ``10 n_var``,
        the exact Newton direction). A cap gives a truncated Newton step, still
        a descent direction of ``h`` when MINRES starts from zero (else the
        step falls back to ``-grad_y h``); on a network, whose Hessian is
        indefinite and ill conditioned, the exact direction costs up to
        ``10 n_var`` Hessian-vector products per step.
    verbose : int, default=0
        Print the method's line per outer iteration (through
        ``skbilevel._progress.emit``, above an active progress bar) when positive.
    callback : callable, optional
        Called with a dict (``iteration``, ``objective``, ``time``,
        ``hyperparameters``, ``lower_residual``, ``step``) after each
        iteration; returning True stops the run.

    Returns
    -------
    BilevelResult
        ``model`` is the last ``y`` (with ``||grad_y f|| <= eps``);
        ``history['complementarity']`` holds ``||dz||`` at each new iterate.

    References
    ----------
    .. [1] S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab, "Sequential QCQP for
       Bilevel Optimization with Line Search", 2025:
       the relaxation (2), the direction (QCQP) with Theorem 1, the
       Armijo (7) and barrier (8) conditions of the line search, Lemma 1,
       Theorem 2 and Algorithm 1 (section II), Remark 3 (appendix V-A).

    Examples
    --------
    With ``epsilon = 0.01`` the solution of the relaxation is within
    ``O(epsilon)`` of the bilevel solution ``x* = (1.429, 1.538)``:

    >>> import numpy as np
    >>> from skbilevel.methods import sqcqp
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> result = sqcqp.solve(problem, np.zeros(2), epsilon=1e-2, tol=1e-4)
    >>> result.converged, np.round(result.hyperparameters, 1)
    (True, array([1.4, 1.5]))
    >>> bool(result.history["lower_residual"][-1] <= 1e-2)
    True
    """
    options = dict(tol=tol, max_iter=max_iter, epsilon=epsilon, w=w, alpha_b=alpha_b, alpha_ls=alpha_ls,
                   gamma=gamma, beta=beta, t_max=t_max, lower_tol=lower_tol, restore_steps=restore_steps,
                   newton_max_iter=newton_max_iter, verbose=verbose, callback=callback)
    return METHOD.run(problem, x0, y0, options)


def _evaluate(problem, x, y, bounds, opts):
    """``F``, ``grad F``, ``h`` and the QCQP direction at ``(x, y)``."""
    F = problem.upper.value(x, y)
    grad_F = np.concatenate(problem.upper.gradient(x, y))
    h, hx, hy = barrier(problem.lower, x, y)
    return F, grad_F, h, _direction(grad_F, np.concatenate([hx, hy]), h, x, bounds, opts)


class _SQCQP(BilevelMethod):
    """Algorithm 1 of Sharifi et al. (2025) on the template of :class:`BilevelMethod`.

    Run state: ``x``, ``y``, the values ``F``, ``grad_F``, ``h`` and the
    direction ``dz`` at them, ``bounds``, ``solved`` (the starting
    lower-level solve met its tolerance) and ``feasible`` (the start was
    made feasible).
    """

    name = "sqcqp"
    requires = REQUIRES
    forbids = ("constraints",)
    forbids_reason = "grad_y f = 0 is then not its optimality condition"
    history_keys = ("objective", "complementarity", "time", "lower_residual", "step")
    callback_keys = ("lower_residual", "step")

    def check_options(self, o):
        if o.epsilon <= 0 or o.w <= 0:
            raise ValueError(f"method 'sqcqp' needs epsilon > 0 and w > 0, got {o.epsilon} and {o.w}.")
        if not (0 < o.beta < 1 and 0 < o.alpha_ls < 1 and 0 < o.gamma <= 1 and o.alpha_b > 0 and o.t_max > 0):
            raise ValueError("method 'sqcqp' needs 0 < beta < 1, 0 < alpha_ls < 1, 0 < gamma <= 1, alpha_b > 0 and "
                             f"t_max > 0; got beta={o.beta}, alpha_ls={o.alpha_ls}, gamma={o.gamma}, "
                             f"alpha_b={o.alpha_b}, t_max={o.t_max}.")

    def setup(self, run, x0, y0):
        o, lower = run.options, run.problem.lower
        run.bounds = box(run.problem)
        run.x = project(np.array(x0, dtype=float), run.bounds)
        y, run.solved = start_model(lower, run.x, y0, o.lower_tol)
        restore_steps = o.max_iter if o.restore_steps is None else o.restore_steps
        run.y, h = _restore(lower, run.x, y, o.epsilon, restore_steps, o.newton_max_iter)
        run.feasible = h <= o.epsilon**2
        if not run.feasible:
            run.stop(Status.FAILED, "could not make the start feasible: "
                     f"||grad_y f(x0, y)|| = {np.sqrt(h):.3g} > epsilon = {o.epsilon:g} after "
                     f"{restore_steps} restoration steps (restore_steps, default max_iter)")
            return
        run.F, run.grad_F, run.h, run.dz = _evaluate(run.problem, run.x, run.y, run.bounds, vars(o))
        if np.linalg.norm(run.dz) <= o.tol:
            run.stop(Status.CONVERGED, f"||dz|| <= tol = {o.tol:g} at the start")

    def step(self, run, k):
        x, dz = run.x, run.dz
        found = _line_search(run.problem, x, run.y, dz[:x.size], dz[x.size:], run.F, run.grad_F, run.h, run.bounds,
                             vars(run.options))
        if found is None:
            run.stop(Status.FAILED, f"line search failed at iteration {k} (no step >= t_max * beta^{MAX_BACKTRACKS} "
                     f"satisfies (7) and (8)); ||dz|| = {np.linalg.norm(dz):.3g}")
            return None
        t, run.x, run.y = found[:3]
        run.F, run.grad_F, run.h, run.dz = _evaluate(run.problem, run.x, run.y, run.bounds, vars(run.options))
        return {"objective": float(run.F), "complementarity": float(np.linalg.norm(run.dz)),
                "lower_residual": float(np.sqrt(run.h)), "step": float(t)}

    def progress_line(self, k, row):
        return (f"[sqcqp] iter {k:4d}  F = {row['objective']:.6g}  ||dz|| = {row['complementarity']:.3g}  "
                f"||grad_y f|| = {row['lower_residual']:.3g}  t = {row['step']:.3g}  ({row['time']:.3f}s)")

    def should_stop(self, run, k, row):
        if row["complementarity"] <= run.options.tol:
            run.stop(Status.CONVERGED, f"||dz|| = {row['complementarity']:.3g} <= tol = {run.options.tol:g} "
                     f"after {k} iterations")
            return True
        return False

    def annotate(self, run):
        if run.feasible and not run.solved:
            run.message += "; the starting lower-level solve did not reach its tolerance"


#: The method object behind :func:`solve`.
METHOD = _SQCQP()
