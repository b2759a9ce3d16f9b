"""BVFIM: the bilevel value-function-based interior-point method (Liu et al., 2021, section 3).

The bilevel problem (1) is read optimistically, ``min_x phi(x)`` with
``phi(x) = inf {F(x, y) : y in S(x)}`` (eqs. (2)-(3)). The lower-level
solution set is written through the value function, ``f(x, y) <= f*(x)``
(eq. (11)), and ``f*`` is replaced by the value of the regularised lower level

.. math::

    f^*_\\mu(x) = \\min_z f(x, z) + \\frac{\\mu_1}{2}\\|z\\|^2 + \\mu_2 \\qquad (12),\\,(15)

whose minimiser is ``z*_mu(x)``. Penalising the relaxed constraint
``f(x, y) < f*_mu(x)`` by a log barrier gives the smooth approximation

.. math::

    \\varphi_{\\mu,\\theta,\\tau}(x) = \\min_y F(x, y) + \\frac{\\theta}{2}\\|y\\|^2
    - \\tau \\ln\\big(f^*_\\mu(x) - f(x, y)\\big) \\qquad (13),\\,(14)

with minimiser ``y*_{mu,theta,tau}(x)`` and (Proposition 1) the gradient

.. math::

    \\nabla\\varphi(x) = \\nabla_x F(x, y^*) + \\tau\\,
    \\frac{\\nabla_x f(x, y^*) - \\nabla_x f(x, z^*)}{f^*_\\mu(x) - f(x, y^*)}
    \\qquad (16),\\,(17),\\,(20),\\,(21).

Only gradients of ``F`` and ``f`` appear: no Hessian- or Jacobian-vector
product. Algorithm 1 runs projected gradient steps on ``varphi_k`` for a fixed
``(mu_k, theta_k, tau_k)``, and the outer loop lets the parameters decrease
to zero (section 3, Theorem 1), each round warm started from the last.

Implementation choices (the paper leaves them open, or defers them to its
supplementary material, which we do not have):

* Schedule (:func:`_schedule`): ``(mu1, mu2, theta)_k = (mu1, mu2, theta)_0 m_k``
  and ``tau_k = tau_0 sqrt(m_k)`` with ``m_k = max(decay**k, floor)``;
  defaults ``(1, 1, 1, 1)``, ``decay = 0.1``, ``floor = 1e-10``. Theorem 1
  needs ``(mu, theta, tau) -> 0`` and ``tau_k ln mu_{k,2} -> 0``, which this
  satisfies. ``tau`` decays as a square root because ``x`` is biased by
  ``O(sqrt(mu))`` but only by ``O(tau)``, while the curvature of (13) in
  ``y`` grows like ``|grad_y F|^2 / tau``: with ``tau ~ mu`` the slack
  ``f*_mu - f`` at ``y*`` falls to ``O(mu^{3/2})`` and cancels all digits of
  ``f`` before ``x`` is accurate.
* The sub-problems for ``z`` (eq. (18)) and ``y`` (eq. (19)) are solved by a
  small L-BFGS (gradients only) with a backtracking Armijo search instead of
  ``T_z``, ``T_y`` fixed-step gradient steps: the barrier problem is ill
  conditioned for small ``tau`` and fixed steps would need ``O(1/tau)``
  iterations. The line search also keeps ``y`` strictly inside
  ``f(x, y) < f*_mu(x)``, which plain gradient steps (19) do not guarantee.
  ``y`` is warm started from the last ``y`` when that is still strictly
  feasible, else from ``z`` (always strictly feasible, its slack being
  ``mu1/2 ||z||^2 + mu2 > 0``).
* Algorithm 1's step ``x_{l+1} = x_l - alpha g_l`` (line 5) is projected on
  ``problem.x_bounds``. With ``step=None`` (default) ``alpha`` is the
  spectral (Barzilai-Borwein) step safeguarded by an Armijo search on
  ``varphi_k``, whose value the ``y`` solve provides, each round starting
  at 1 (or, ``warm_step=True``, at the step the previous round ended with,
  as the paper's fixed step carries over); with ``step=alpha`` the paper's
  fixed step is used. Algorithm 1's ``L`` steps become a limit
  (``inner_iter``) with an early exit once ``varphi_k`` is stationary.
* For a non-convex lower level the ``z`` solve returns a local minimiser; its
  value still bounds ``f*`` from above, so the barrier problem stays well posed.

Lower levels with linear constraints are refused: the paper's scheme is for
the unconstrained lower level (1).

References
----------
R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A value-function-based
interior-point method for non-convex bi-level optimization", ICML 2021.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._result import BilevelResult, Status
from ..problems.base import BilevelProblem
from ._base import BilevelMethod, box, project, start_model

#: Lower-level capabilities the method uses (``grad_y`` is always available).
REQUIRES = ("grad_x",)

#: Default starting ``(mu1, mu2, theta, tau)``.
SCHEDULE = (1.0, 1.0, 1.0, 1.0)

ARMIJO = 1e-4

#: Most halvings of the step in one Armijo search of Algorithm 1 (a factor of about 1e6).
MAX_HALVINGS = 20

#: A slack ``f*_mu - f(x, y)`` below this many rounding units of ``f`` is not resolved.
_SLACK_ULPS = 1e3


def _two_loop(g, S, Y):
    """L-BFGS two-loop recursion: an approximation of ``H^{-1} g``."""
    q, alphas = g.copy(), []
    for s, y in zip(reversed(S), reversed(Y)):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q -= a * y
    if S:
        q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
    for (s, y), a in zip(zip(S, Y), reversed(alphas)):
        q += (a - (y @ q) / (s @ y)) * s
    return q


def lbfgs(fun, w, *, tol, max_iter, memory=10):
    """Minimise ``fun`` (returning ``(value, gradient)``, ``inf`` outside its domain).

    Backtracking Armijo search from the unit quasi-Newton step; a trial point
    outside the domain is treated as a failed decrease, so iterates stay in
    it. Returns ``(w, value, converged)``; ``converged`` when
    ``max |gradient| <= tol * max(1, max |gradient at the start|)``, or when
    the search cannot decrease the value any more in floating point (near
    ``f(x, y) = f*_mu(x)`` the slack cancels digits and the gradient stalls
    above a tight ``tol``); not converged when ``max_iter`` is reached.

    Parameters
    ----------
    fun : callable
        ``fun(w) -> (value, gradient)``; ``value`` is ``inf`` outside the
        domain (the gradient is then not used).
    w : ndarray
        Starting point, inside the domain.
    tol : float
        Relative tolerance on the largest gradient component.
    max_iter : int
        Maximum number of iterations.
    memory : int, default=10
        Number of correction pairs kept.

    Returns
    -------
    w : ndarray
        The last iterate.
    value : float
        ``fun(w)[0]``.
    converged : bool
        Whether the gradient test (or the floating-point stall) was met.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       this solver replaces the fixed-step gradient descents (18) and (19)
       of Algorithm 1 (section 3).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.methods.value_function import lbfgs
    >>> w, value, converged = lbfgs(lambda w: (w @ w, 2 * w), np.ones(3), tol=1e-10, max_iter=50)
    >>> np.allclose(w, 0.0), converged
    (True, True)
    """
    f, g = fun(w)
    gtol = tol * max(1.0, np.max(np.abs(g), initial=0.0))
    S, Y = [], []
    for _ in range(max_iter):
        if np.max(np.abs(g), initial=0.0) <= gtol:
            return w, f, True
        d = -_two_loop(g, S, Y)
        slope = g @ d
        if slope >= 0:  # not a descent direction: restart from steepest descent
            S, Y, d = [], [], -g
            slope = -(g @ g)
        step = 1.0 if S else min(1.0, 1.0 / np.max(np.abs(g)))
        while True:
            w_new = w + step * d
            f_new, g_new = fun(w_new)
            if np.isfinite(f_new) and f_new <= f + ARMIJO * step * slope:
                break
            step *= 0.5
            if step * np.max(np.abs(d)) <= 1e-16 * (1.0 + np.max(np.abs(w))):
                # no decrease measurable in floating point: w is stationary to working precision
                return w, f, True
        s, y = w_new - w, g_new - g
        if s @ y > 1e-12 * np.sqrt((s @ s) * (y @ y)):  # keep the inverse Hessian positive definite
            S.append(s), Y.append(y)
            if len(S) > memory:
                S.pop(0), Y.pop(0)
        w, f, g = w_new, f_new, g_new
    return w, f, bool(np.max(np.abs(g), initial=0.0) <= gtol)


class _Point(NamedTuple):
    """``varphi_k`` evaluated at ``x``, with the sub-problem solutions that define it."""

    x: np.ndarray
    z: np.ndarray      # z*_mu(x), eq. (15)
    y: np.ndarray      # y*_{mu,theta,tau}(x), eq. (14)
    phi: float         # varphi_k(x), eq. (13)
    grad: np.ndarray   # eqs. (16)-(17)
    slack: float       # f*_mu(x) - f(x, y) > 0
    ok: bool           # both sub-problems reached their tolerance


def regularised_lower(lower, x, z0, mu1, mu2, *, tol, max_iter):
    """Return ``(z*_mu(x), f*_mu(x), converged)`` of eqs. (12) and (15).

    L-BFGS on ``f(x, z) + mu1/2 ||z||^2`` replaces the gradient steps (18).

    Parameters
    ----------
    lower : LowerLevel
        The lower level ``f``.
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    z0 : ndarray of shape (n_var,)
        Warm start.
    mu1, mu2 : float
        The regularisation ``mu1/2 ||z||^2`` and the shift ``mu2`` of (12).
    tol : float
        Relative gradient tolerance of :func:`lbfgs`.
    max_iter : int
        Iteration limit of :func:`lbfgs`.

    Returns
    -------
    z : ndarray of shape (n_var,)
        ``z*_mu(x)``, eq. (15).
    f_mu : float
        ``f*_mu(x)``, eq. (12).
    converged : bool
        Whether :func:`lbfgs` reached ``tol``.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       the regularised value function (12), its minimiser (15) and the
       gradient steps (18) it replaces, section 3.

    Examples
    --------
    For ``f = 1/2 y^T Q y - y^T x``, ``z = (Q + mu1 I)^{-1} x``:

    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> from skbilevel.methods.value_function import regularised_lower
    >>> z, f_mu, converged = regularised_lower(problem.lower, np.ones(2), np.zeros(2), 1.0, 1.0,
    ...                                        tol=1e-10, max_iter=100)
    >>> np.round(z, 4), round(float(f_mu), 4), converged
    (array([0.3333, 0.2   ]), 0.7333, True)
    """
    def fun(z):
        return lower.value(x, z) + 0.5 * mu1 * (z @ z), lower.grad_y(x, z) + mu1 * z

    z, value, ok = lbfgs(fun, z0, tol=tol, max_iter=max_iter)
    return z, value + mu2, ok


def barrier_upper(problem, x, y0, f_mu, theta, tau, *, tol, max_iter):
    """Return ``(y*_{mu,theta,tau}(x), converged)``, the minimiser (14) of the barrier problem (13).

    L-BFGS on ``F + theta/2 ||y||^2 - tau ln(f*_mu - f)`` replaces the gradient
    steps (19); its value is ``+inf`` where ``f(x, y) >= f*_mu(x)``. ``y0``
    must be strictly feasible.

    Parameters
    ----------
    problem : BilevelProblem
        The upper level ``F`` and the lower level ``f``.
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    y0 : ndarray of shape (n_var,)
        Start with ``f(x, y0) < f_mu``.
    f_mu : float
        ``f*_mu(x)`` from :func:`regularised_lower`.
    theta, tau : float
        The regularisation ``theta/2 ||y||^2`` and the barrier weight ``tau``
        of (13).
    tol : float
        Relative gradient tolerance of :func:`lbfgs`.
    max_iter : int
        Iteration limit of :func:`lbfgs`.

    Returns
    -------
    y : ndarray of shape (n_var,)
        ``y*_{mu,theta,tau}(x)``, strictly feasible.
    converged : bool
        Whether :func:`lbfgs` reached ``tol``.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       the barrier problem (13), its minimiser (14) and the gradient steps
       (19) it replaces, section 3.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> from skbilevel.methods.value_function import barrier_upper, regularised_lower
    >>> x = np.ones(2)
    >>> z, f_mu, _ = regularised_lower(problem.lower, x, np.zeros(2), 1.0, 1.0, tol=1e-10, max_iter=100)
    >>> y, converged = barrier_upper(problem, x, z, f_mu, 1.0, 1.0, tol=1e-10, max_iter=100)
    >>> np.round(y, 4), bool(problem.lower.value(x, y) < f_mu)
    (array([0.5   , 0.3383]), True)
    """
    upper, lower = problem.upper, problem.lower

    def fun(y):
        slack = f_mu - lower.value(x, y)
        if not slack > 0:
            return np.inf, None
        value = upper.value(x, y) + 0.5 * theta * (y @ y) - tau * np.log(slack)
        return value, upper.gradient(x, y)[1] + theta * y + (tau / slack) * lower.grad_y(x, y)

    y, _, ok = lbfgs(fun, y0, tol=tol, max_iter=max_iter)
    return y, ok


def evaluate(problem, x, z0, y0, params, *, tol, max_iter) -> _Point:
    """Evaluate ``varphi_k`` (13) and its gradient (16)-(17) at ``x`` (steps 2-4 of Algorithm 1).

    ``z0`` and ``y0`` warm start the two sub-problems; ``y0`` is replaced by
    the new ``z`` when it is not strictly feasible at ``x``.

    Parameters
    ----------
    problem : BilevelProblem
        The upper and lower levels; the lower level offers ``grad_x``.
    x : ndarray of shape (n_hyper,)
        Hyperparameters.
    z0 : ndarray of shape (n_var,)
        Warm start of the ``z`` solve (12).
    y0 : ndarray of shape (n_var,) or None
        Warm start of the ``y`` solve (14); None starts from the new ``z``.
    params : tuple of 4 floats
        ``(mu1, mu2, theta, tau)``.
    tol : float
        Relative gradient tolerance of both sub-problem solves.
    max_iter : int
        Iteration limit of both sub-problem solves.

    Returns
    -------
    point : NamedTuple
        Fields ``x``, ``z`` (``z*_mu(x)``), ``y`` (``y*_{mu,theta,tau}(x)``),
        ``phi`` (``varphi_k(x)``), ``grad`` (eqs. (16)-(17)), ``slack``
        (``f*_mu(x) - f(x, y) > 0``) and ``ok`` (both sub-problems reached
        ``tol``, and the slack is resolved: above a thousand rounding units
        of ``f``, where ``phi`` and ``grad`` are no longer noise). Where the
        relaxation is below the rounding of ``f`` altogether (no ``y`` is
        strictly feasible), ``y = z``, ``phi = inf``, ``grad = 0`` and
        ``slack = 0``.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       the approximation (13), Proposition 1 (its gradient (16)-(17)) and
       steps 2-4 of Algorithm 1 (section 3).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> from skbilevel.methods.value_function import evaluate
    >>> point = evaluate(problem, np.ones(2), np.zeros(2), None, (1.0, 1.0, 1.0, 1.0), tol=1e-10, max_iter=100)
    >>> round(point.phi, 4), np.round(point.grad, 4), point.ok
    (0.5375, array([-0.0525, -0.0266]), True)
    """
    upper, lower = problem.upper, problem.lower
    mu1, mu2, theta, tau = params
    z, f_mu, ok_z = regularised_lower(lower, x, z0, mu1, mu2, tol=tol, max_iter=max_iter)
    if not lower.value(x, z) < f_mu:
        # the relaxation mu1/2 ||z||^2 + mu2 vanished in the rounding of f: no y is strictly
        # feasible in floating point and varphi_k is undefined; no step is taken from here
        return _Point(x, z, z, np.inf, np.zeros_like(x, dtype=float), 0.0, False)
    if y0 is None or not lower.value(x, y0) < f_mu:
        y0 = z
    y, ok_y = barrier_upper(problem, x, y0, f_mu, theta, tau, tol=tol, max_iter=max_iter)
    f_y = lower.value(x, y)
    slack = f_mu - f_y
    phi = upper.value(x, y) + 0.5 * theta * (y @ y) - tau * np.log(slack)
    # eq. (17): Danskin's theorem on both minimisations; no second derivatives
    grad = upper.gradient(x, y)[0] + (tau / slack) * (lower.grad_x(x, y) - lower.grad_x(x, z))
    # a slack within a thousand rounding units of f is a difference of two rounded values: phi and
    # tau / slack are then noise (rescale f, or raise the schedule's floor)
    resolved = slack > _SLACK_ULPS * np.finfo(float).eps * max(1.0, abs(f_y), abs(f_mu))
    return _Point(x, z, y, float(phi), grad, float(slack), bool(ok_z and ok_y and resolved))


def _stationarity(point, bounds):
    """``max |P(x - grad) - x|``: the projected gradient of ``varphi_k``, zero at a stationary point."""
    return float(np.max(np.abs(project(point.x - point.grad, bounds) - point.x), initial=0.0))


def algorithm_1(problem, point, params, *, step, inner_iter, tol, bounds, sub, alpha0=1.0):
    """Run Algorithm 1 on ``varphi_k`` from ``point``; return ``(point, n_steps, stationary, alpha)``.

    Line 5 is the projected step ``x <- P_X(x - alpha g)``: with a float
    ``step`` the paper's fixed ``alpha``; with ``step=None`` the spectral
    (Barzilai-Borwein) step ``alpha = s.s / s.r`` (``s``, ``r`` the last
    changes of ``x`` and ``g``), halved until the Armijo decrease of
    ``varphi_k`` holds. A fixed or doubling start makes gradient steps
    oscillate across a curved valley of ``varphi_k``; the spectral step
    adapts to its curvature from gradients alone.
    The loop ends early, ``stationary``, once the projected gradient is below
    ``tol`` or no step decreases ``varphi_k`` measurably (the step shrinks
    to nothing, or ``MAX_HALVINGS`` halvings fail); it is not
    ``stationary`` when the ``inner_iter`` steps run out.

    Parameters
    ----------
    problem : BilevelProblem
        The upper and lower levels.
    point : NamedTuple
        ``varphi_k`` evaluated at the starting ``x`` (see :func:`evaluate`).
    params : tuple of 4 floats
        ``(mu1, mu2, theta, tau)`` of this round.
    step : float or None
        Fixed step ``alpha``, or None for the spectral step with an Armijo
        search.
    inner_iter : int
        Most steps ``L``.
    tol : float
        Tolerance on the projected gradient of ``varphi_k``.
    bounds : tuple of 2 ndarrays or None
        Box on ``x`` (the projection ``P_X``).
    sub : dict
        ``tol`` and ``max_iter`` of the sub-problem solves.
    alpha0 : float, default=1.0
        First trial step when ``step`` is None.

    Returns
    -------
    point : NamedTuple
        ``varphi_k`` at the last ``x`` (fields as returned by :func:`evaluate`).
    n_steps : int
        Steps taken.
    status : {'stationary', 'stalled', 'budget'}
        How the loop ended: on the stationarity test (or with a step too
        short to change ``x`` in floating point), on a step search that found
        no decrease of ``varphi_k`` in ``MAX_HALVINGS`` halvings (``x`` may be
        far from stationary: ``varphi_k`` may be too curved for the first
        trial step, or known only to the sub-problems' accuracy), or after
        ``inner_iter`` steps.
    alpha : float
        The spectral step proposed after the last accepted step (``alpha0``
        when none was accepted): the start a following round may reuse.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       Algorithm 1 (section 3), line 5 projected on the box.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> from skbilevel.methods.value_function import algorithm_1, evaluate
    >>> params, sub = (1.0, 1.0, 1.0, 1.0), {"tol": 1e-10, "max_iter": 100}
    >>> point = evaluate(problem, np.ones(2), np.zeros(2), None, params, **sub)
    >>> point, n_steps, status, _ = algorithm_1(problem, point, params, step=None, inner_iter=100,
    ...                                         tol=1e-8, bounds=None, sub=sub)
    >>> np.round(point.x, 2), status
    (array([1.24, 1.17]), 'stationary')
    """
    alpha = alpha0 if step is None else step
    spectral = alpha
    for n in range(inner_iter):
        if _stationarity(point, bounds) <= tol:
            return point, n, "stationary", spectral
        for _ in range(MAX_HALVINGS + 1):
            x_new = project(point.x - alpha * point.grad, bounds)
            trial = evaluate(problem, x_new, point.z, point.y, params, **sub)
            if step is not None or trial.phi <= point.phi + ARMIJO * point.grad @ (x_new - point.x):
                break
            alpha *= 0.5
            if np.max(np.abs(x_new - point.x)) <= 1e-15 * (1.0 + np.max(np.abs(point.x))):
                return point, n, "stationary", spectral  # stationary to working precision
        else:
            # no measurable decrease over MAX_HALVINGS halvings: with sub-problems solved to a
            # budget (a network) varphi_k is known only to their accuracy
            return point, n, "stalled", spectral
        if step is None:
            s, r = trial.x - point.x, trial.grad - point.grad
            alpha = float(np.clip((s @ s) / (s @ r), 1e-10, 1e10)) if s @ r > 0 else 2.0 * alpha
            spectral = alpha
        point = trial
    return point, inner_iter, "stationary" if _stationarity(point, bounds) <= tol else "budget", spectral


def _schedule(k, start, decay, floor):
    """``(mu1, mu2, theta, tau)`` of round ``k``: ``start * m_k`` with ``tau`` scaled by ``sqrt(m_k)``.

    ``m_k = max(decay**k, floor)``. ``tau`` decays as the square root of the
    others: ``x`` moves ``O(sqrt(mu))`` with ``mu`` but only ``O(tau)`` with
    ``tau``, and the barrier problem's curvature grows like ``1/tau``, so a
    slower ``tau`` costs no accuracy and keeps (14) well conditioned and its
    slack (of order ``mu``) resolvable in floating point. ``tau_k ln mu_{k,2}
    -> 0`` as Theorem 1 asks (until the floor, where the schedule stops).
    """
    m = max(decay ** k, floor)
    mu1, mu2, theta, tau = start
    return mu1 * m, mu2 * m, theta * m, tau * np.sqrt(m)


def solve(problem: BilevelProblem, x0, y0=None, *, tol: float = 1e-4, max_iter: int = 50,
          schedule=SCHEDULE, decay: float = 0.1, floor: float = 1e-10, inner_iter: int = 100,
          step=None, warm_step: bool = False, sub_tol: float = 1e-10, sub_iter: int = 1000,
          verbose: int = 0, callback=None) -> BilevelResult:
    """Solve ``problem`` by BVFIM: Algorithm 1 on ``varphi_k`` for a decreasing ``(mu, theta, tau)``.

    Outer iteration ``k`` (a "round") sets ``(mu1, mu2, theta, tau)_k`` (see
    :func:`_schedule`), re-evaluates ``varphi_k`` (13) at the current ``x``
    and runs Algorithm 1 on it, warm started from the previous round's
    ``x``, ``z`` and ``y``.

    Parameters
    ----------
    problem : BilevelProblem
        Its lower level must offer ``grad_x`` and have no linear constraints.
        ``problem.x_bounds`` is kept by projecting every step of ``x``.
    x0 : array of shape (n_hyper,)
        Starting hyperparameters.
    y0 : array of shape (n_var,), optional
        Start of the first ``z`` (and so ``y``) solve; default ``lower.solve(x0)``
        when the lower level offers ``'solve'``, else zero. (Zero is a poor
        start for a non-convex lower level: for a ReLU network it is a
        stationary point with every unit inactive, which gradient steps never leave.)
    tol : float
        The run has converged after a round (not the first) whose Algorithm 1
        ended stationary (projected gradient of ``varphi_k`` at most ``tol``,
        or no measurable decrease left), that moved ``x`` by at most
        ``tol * max(1, |x|)`` (max norms), and whose relaxation
        ``f*_mu(x) - f(x, z) = mu1/2 ||z||^2 + mu2`` of the value-function
        constraint is at most ``tol * max(1, |f(x, z)|)``; the relaxation
        bounds ``f(x, y) - f*(x)`` up to ``f(x, z) - f*(x) = O(mu1)``. Near a
        solution the rounds move ``x`` by ``O(sqrt(mu_k))``; once the schedule
        sits at its floor, ``x`` stops moving. Default 1e-4.
    max_iter : int
        Maximum number of rounds.
    schedule : tuple of 4 floats
        ``(mu1, mu2, theta, tau)`` of round 0, default ``(1, 1, 1, 1)``: a
        strong start smooths ``varphi`` enough for the iterates to forget a
        poor start on a non-convex lower level (section 6.1, Figure 1). Scale
        them with the size of ``f`` and ``F``.
    decay : float
        The factor ``mu`` and ``theta`` shrink by each round (``tau`` by its
        square root). Default 0.1.
    floor : float
        Smallest factor ``m_k``; it bounds the parameters at
        ``schedule * (floor, floor, floor, sqrt(floor))``, which leaves
        ``x`` a bias of order ``sqrt(floor)``. Default 1e-10.
    inner_iter : int
        Most steps ``L`` of Algorithm 1 per round (default 100).
    step : float or None
        Fixed step ``alpha`` of Algorithm 1; ``None`` (default) for the
        spectral step with an Armijo search on ``varphi_k`` (see :func:`algorithm_1`).
    warm_step : bool, default=False
        With ``step=None``, start each round's spectral step from the one the
        previous round ended with instead of 1. Where the gradient of
        ``varphi_k`` is small (hyper-cleaning: each entry is ``O(1/n)``) a
        unit start moves ``x`` little, and with sub-problems solved to a
        budget the Armijo search may then find no measurable decrease and end
        the round; a warm step moves ``x`` much further per round.
        :class:`~skbilevel.HyperCleaningClassifier` sets it with
        ``model='mlp'``, whose sub-problems are solved to a budget
        (``benchmarks/results/hyper_cleaning.md`` measures both on MNIST 5k).
        The default keeps each round's search independent of the last, as
        for the exactly solved sub-problems of a convex lower level.
    sub_tol, sub_iter : float, int
        Relative gradient tolerance and iteration limit of the ``z`` and ``y``
        sub-problem solves (``T_z``, ``T_y`` of the paper are upper bounds here).
    verbose : int, default=0
        Print the method's line per outer iteration (through
        ``skbilevel._progress.emit``, above an active progress bar) when positive.
    callback : callable, optional
        Called with a dict (``iteration``, ``objective``, ``time``,
        ``hyperparameters``) after each round; returning True stops the run.

    Returns
    -------
    BilevelResult
        ``model`` is ``y*_{mu,theta,tau}(x)`` of the last round.
        ``history['complementarity']`` is the value-function residual
        ``max(0, f(x, y) - f(x, z))`` of (11), with ``f*(x)`` estimated by
        ``f(x, z*_mu(x))``; the history also holds ``'relaxation'``
        (``mu1/2 ||z||^2 + mu2``), ``'lower_value'`` (``f(x, z)``), ``'stationarity'``
        (projected gradient of ``varphi_k``), ``'step'`` (max change of ``x``
        over the round), ``'inner_iterations'`` and the parameters ``'mu1'``,
        ``'mu2'``, ``'theta'``, ``'tau'``.

    References
    ----------
    .. [1] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", Proceedings
       of the 38th International Conference on Machine Learning (ICML), PMLR
       139, 2021:
       the value-function reformulation (11), the approximations (12)-(15),
       the gradient (16)-(17) of Proposition 1, Algorithm 1 (section 3) and
       the vanishing parameters of Theorem 1 (section 4).

    Examples
    --------
    The rounds drive ``(mu, theta, tau)`` to zero and ``x`` to the bilevel
    solution ``x* = (1.429, 1.538)``:

    >>> import numpy as np
    >>> from skbilevel.problems import quadratic_bilevel
    >>> problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    >>> from skbilevel.methods import value_function
    >>> result = value_function.solve(problem, np.zeros(2))
    >>> result.converged, np.round(result.hyperparameters, 2)
    (True, array([1.43, 1.54]))
    """
    options = dict(tol=tol, max_iter=max_iter, schedule=schedule, decay=decay, floor=floor, inner_iter=inner_iter,
                   step=step, warm_step=warm_step, sub_tol=sub_tol, sub_iter=sub_iter, verbose=verbose,
                   callback=callback)
    return METHOD.run(problem, x0, y0, options)


def _stop_message(k, status, moved, row, ok, tol):
    """``(status, message)`` where the stopping test of round ``k`` (from 0) is met.

    A round whose step search stalled moved ``x`` no more than a stationary
    one, but says nothing of stationarity; nor does a round whose
    sub-problems stopped at ``sub_iter``: neither is convergence.
    """
    what = (f"after {k + 1} rounds: x moved {moved:.3g} over the last round, "
            f"value-function gap {row['complementarity']:.3g}, relaxation {row['relaxation']:.3g}")
    if status == "stalled":
        return Status.STALLED, (f"stopped {what}, but the step search on varphi_k found no decrease in "
                       f"{MAX_HALVINGS} halvings with the projected gradient at {row['stationarity']:.3g} "
                       f"> tol = {tol:g}: not converged")
    if not ok:
        return Status.INEXACT, (f"stopping test met {what}, but a z or y sub-problem did not reach its tolerance in "
                       "sub_iter iterations: not converged")
    return Status.CONVERGED, f"converged {what}"


def _row(problem, point, params, n_steps, moved, bounds):
    """The history entries of one round (all but its time)."""
    lower = problem.lower
    mu1, mu2 = params[:2]
    f_z = float(lower.value(point.x, point.z))
    return {
        "objective": float(problem.upper.value(point.x, point.y)),
        "complementarity": max(0.0, float(lower.value(point.x, point.y)) - f_z),
        "relaxation": 0.5 * mu1 * float(point.z @ point.z) + mu2,
        "lower_value": f_z,
        "stationarity": _stationarity(point, bounds),
        "step": moved,
        "inner_iterations": n_steps,
        **dict(zip(("mu1", "mu2", "theta", "tau"), (float(p) for p in params))),
    }


class _ValueFunction(BilevelMethod):
    """BVFIM (Liu et al., 2021) on the template of :class:`BilevelMethod`: one round per iteration.

    Run state: ``x``, ``z``, ``point`` (``varphi_k`` at ``x``, None before
    the first round), ``alpha`` (the first trial step of the next round),
    ``inner_status`` of the last round's Algorithm 1, ``bounds`` and ``sub`` (the
    sub-problems' tolerance and iteration limit).
    """

    name = "value-function"
    requires = REQUIRES
    forbids = ("constraints",)
    forbids_reason = ("its reformulation (11) is that of an unconstrained lower level; use 'hypergradient', "
                      "'lme-mpec' or 'mpec'")
    history_keys = ("objective", "complementarity", "relaxation", "lower_value", "time", "stationarity", "step",
                    "inner_iterations", "mu1", "mu2", "theta", "tau")
    unit = "rounds"

    def check_options(self, o):
        if len(o.schedule) != 4 or not all(p > 0 for p in o.schedule):
            raise ValueError(f"schedule must be four positive numbers (mu1, mu2, theta, tau), got {o.schedule!r}")
        if not (0 < o.decay < 1 and 0 < o.floor <= 1):
            raise ValueError(f"need 0 < decay < 1 and 0 < floor <= 1, got decay={o.decay!r}, floor={o.floor!r}")
        if o.step is not None and not o.step > 0:
            raise ValueError(f"step must be None (spectral steps) or a positive number, got {o.step!r}")

    def setup(self, run, x0, y0):
        o = run.options
        run.bounds = box(run.problem)
        run.x = project(np.array(x0, dtype=float), run.bounds)  # a copy: the result must not alias the caller's x0
        # y0, else the lower level's own solution at x0, else zero
        run.z = start_model(run.problem.lower, run.x, y0)[0]
        run.sub = {"tol": o.sub_tol, "max_iter": o.sub_iter}
        run.point, run.alpha = None, 1.0

    def step(self, run, k):
        o, x = run.options, run.x
        params = _schedule(k - 1, o.schedule, o.decay, o.floor)
        # varphi_k differs from varphi_{k-1}: re-evaluate it at x before stepping
        point = evaluate(run.problem, x, run.z, None if run.point is None else run.point.y, params, **run.sub)
        point, n_steps, run.inner_status, last = algorithm_1(run.problem, point, params, step=o.step,
                                                         inner_iter=o.inner_iter, tol=o.tol, bounds=run.bounds,
                                                         sub=run.sub, alpha0=run.alpha)
        if o.warm_step:
            run.alpha = last
        moved = float(np.max(np.abs(point.x - x), initial=0.0))
        run.point, run.x, run.z = point, point.x, point.z
        return _row(run.problem, point, params, n_steps, moved, run.bounds)

    def progress_line(self, k, row):
        return (f"[value-function] round {k:3d}  F = {row['objective']:.6g}  "
                f"gap = {row['complementarity']:.3g}  relax = {row['relaxation']:.3g}  "
                f"|proj grad| = {row['stationarity']:.3g}  |dx| = {row['step']:.3g}  tau = {row['tau']:.3g}  "
                f"({row['time']:.2f}s)")

    def should_stop(self, run, k, row):
        tol, x = run.options.tol, run.x
        if run.point.slack <= 0:
            run.stop(Status.FAILED,
                     f"stopped after {k} rounds: the relaxation {row['relaxation']:.3g} is below the "
                     f"rounding of f (|f(x, z)| = {abs(row['lower_value']):.3g}), where varphi_k is undefined; "
                     "rescale the lower-level objective or raise floor: not converged")
            return True
        # round 1 never converges: its x minimises the coarsest approximation varphi_0
        small_step = row["step"] <= tol * max(1.0, float(np.max(np.abs(x), initial=0.0)))
        if k > 1 and run.inner_status != "budget" and small_step \
                and row["relaxation"] <= tol * max(1.0, abs(row["lower_value"])):
            run.stop(*_stop_message(k - 1, run.inner_status, row["step"], row, run.point.ok, tol))
            return True
        return False

    def budget_message(self, run):
        message = super().budget_message(run)
        if run.point is not None and not run.point.ok:
            message += "; a z or y sub-problem did not reach its tolerance in sub_iter iterations"
        return message

    def solution(self, run):
        return run.x, run.z.copy() if run.point is None else run.point.y


#: The method object behind :func:`solve`.
METHOD = _ValueFunction()
