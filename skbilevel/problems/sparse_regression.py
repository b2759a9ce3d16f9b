"""Lasso and elastic net as lower levels of a cross-validation problem.

The training problem of :class:`sklearn.linear_model.ElasticNet` is not
smooth, but on a neighbourhood of hyperparameters where its support
``S = {j : w_j != 0}`` does not change, ``w_S`` is the solution of a smooth
problem and ``w_j = 0`` off ``S``. Implicit differentiation of the Lasso
(Bertrand et al., "Implicit differentiation of Lasso-type models for
hyperparameter optimization", ICML 2020; the ``sparse-ho`` package) hence only
needs the Hessian restricted to the support,

.. math::

    H_S = X_{c,S}^T U X_{c,S} + \\alpha (1 - \\rho) I_{|S|},

with ``X_c`` the (weighted) centred data, ``U`` the diagonal of normalised
sample weights and ``rho = l1_ratio``. Both ``solve`` (polishing the
coordinate-descent answer) and ``adjoint`` solve ``|S| x |S|`` systems with
``H_S``; ``X`` itself is never densified nor centred in memory when sparse.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, lstsq
from scipy.sparse import issparse
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, enet_path

from .estimator_base import EstimatorLowerLevel
from .linear_model import LinearModel

# Slack of the optimality conditions, relative to ``||X_c^T U t_c||_inf`` (alpha_max of the
# Lasso): larger violations mean coordinate descent found the wrong support.
_KKT_RTOL = 1e-8

# Coordinate-descent sweeps allowed at least: the hypergradient needs a tight solution, far
# tighter than scikit-learn's default ``tol=1e-4`` for which ``max_iter=1000`` is meant.
_MIN_MAX_ITER = 10_000

# Lower-level tolerance from which a solve is taken as one whose point is only compared (by
# validation loss or score: BilevelSearchCV's scan and refinement use 1e-4), not differentiated.
_COMPARE_ONLY_TOL = 1e-5

# Coordinate descent's first tolerance in a solve to be differentiated: often enough to find the support,
# on which the polish solves the optimality conditions exactly (see ``solve``).
_SUPPORT_TOL = 1e-4

# Factor on the duality-gap tolerance of a warm-started solve that stopped before its first sweep
# (see ``_path``).
_NO_SWEEP_TOL_FACTOR, _NO_SWEEP_MAX_ITER = 1e-2, 100

# Largest ratio of consecutive alphas that solve_path takes in one step (LassoCV's default path of
# 100 alphas over three decades steps by 1.07; a coarser step costs more sweeps per alpha but fewer fits).
_PATH_RATIO = 1.25

# Reciprocal condition below which the restricted Hessian counts as singular (w is then not unique).
_SINGULAR_RCOND = 1e2 * np.finfo(float).eps


def _support_solve(H, rhs, least_squares=True):
    """``H^{-1} rhs`` for the restricted Hessian ``H``.

    A singular or numerically singular ``H`` (a support larger than the
    centred training samples: ``w`` is not unique) gives the least-squares
    solution of least norm, or raises ``LinAlgError`` when ``least_squares``
    is False. Numerically singular: a Cholesky factor whose diagonal spans
    more than ``1 / sqrt(_SINGULAR_RCOND)`` (the condition number is at least
    its square); no warning filters are touched, which would act on every
    thread of a threading backend.
    """
    try:
        factor = cho_factor(H)
        d = np.abs(np.diag(factor[0]))
        if not d.min() ** 2 > _SINGULAR_RCOND * d.max() ** 2:
            raise LinAlgError("numerically singular restricted Hessian")
        return cho_solve(factor, rhs)
    except LinAlgError:
        if not least_squares:
            raise LinAlgError("singular restricted Hessian") from None
        return lstsq(H, rhs)[0]


def fold_moments(X, test_parts, sample_weight=None, fit_intercept=True):
    """Each fold's weighted second moments, from one product with all the samples.

    ``M_k = sum_{i in train_k} s_i (x_i - c)(x_i - c)^T`` is the moment
    matrix of all samples less that of fold ``k``'s held-out ones: one
    ``n x p`` product and ``K`` products of the held-out parts in place of
    ``K`` products of ``(K - 1) / K`` of the samples each, about half the
    work from five folds on. ``c`` is the weighted mean of all samples (0
    without intercept, whose Gram matrix is not centred), near every fold's
    mean, so that :meth:`ElasticNetLowerLevel._gram_from_moments` centres
    without cancellation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        All the samples (dense).
    test_parts : list of ndarray of int
        The held-out indices of each fold.
    sample_weight : ndarray of shape (n_samples,), optional
        The weights ``s_i`` (all 1 when None).
    fit_intercept : bool, default=True
        Whether the folds' problems centre their data.

    Returns
    -------
    list of tuple
        ``(M_k, c)`` per fold, the ``moments`` argument of
        :class:`ElasticNetLowerLevel`.

    References
    ----------
    .. [1] scikit-learn, :class:`sklearn.linear_model.LassoCV`
       (``precompute='auto'``): coordinate descent on each fold's Gram
       matrix when it has more samples than features.

    Examples
    --------
    A fold's Gram matrix equals the one computed from its training part:

    >>> import numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from skbilevel.problems.sparse_regression import LassoLowerLevel, fold_moments
    >>> rng = np.random.default_rng(0)
    >>> X, t = rng.normal(size=(50, 4)) + 3.0, rng.normal(size=50)
    >>> test = np.arange(10)
    >>> moments = fold_moments(X, [test])[0]
    >>> shared = LassoLowerLevel(Lasso(), X[10:], t[10:], ["alpha"], ["log"], moments=moments)
    >>> own = LassoLowerLevel(Lasso(), X[10:], t[10:], ["alpha"], ["log"])
    >>> bool(np.allclose(shared._centred()["precompute"], own._centred()["precompute"]))
    True
    """
    s = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    c = (s @ X) / s.sum() if fit_intercept else np.zeros(X.shape[1])
    Xs = X - c
    Xw = Xs if sample_weight is None else Xs * np.sqrt(s)[:, None]
    total = Xw.T @ Xw
    out = []
    for test in test_parts:
        held = Xw[test]
        out.append((total - held.T @ held, c))
    return out


class ElasticNetLowerLevel(EstimatorLowerLevel):
    """Training problem of :class:`sklearn.linear_model.ElasticNet` (``alpha``, ``l1_ratio``).

    ``ElasticNet.fit`` minimises, with sample weights ``s`` normalised to
    ``u = s / sum(s)`` (``u_i = 1/n`` without weights; scikit-learn rescales
    ``s`` to sum to ``n``, which gives the same problem),

    .. math::

        f(\\alpha, \\rho, w, b) = \\frac12 \\sum_i u_i (t_i - x_i^T w - b)^2
            + \\alpha \\rho \\|w\\|_1 + \\frac{\\alpha (1 - \\rho)}{2} \\|w\\|_2^2 .

    ``y = (w, b)``; with ``fit_intercept=False``, ``b = 0``. The optimality
    map, with ``r = X w + b - t``, ``S`` the support of ``w`` and ``N`` its
    complement, is

    .. math::

        G_S = X_S^T U r + \\alpha \\rho\\, \\mathrm{sign}(w_S) + \\alpha (1 - \\rho) w_S, \\quad
        G_N = w_N, \\quad G_b = u^T r \\;(\\text{or } b \\text{ without intercept}).

    Eliminating ``b = \\bar t - \\bar x^T w`` (``\\bar x = X^T u``,
    ``\\bar t = u^T t``) from ``G_S`` leaves the restricted Hessian
    :math:`H_S` of the module docstring; ``solve`` polishes coordinate descent
    on ``S`` by :math:`H_S w_S = X_{c,S}^T U t_c - \\alpha \\rho\\, \\mathrm{sign}(w_S)`
    and accepts the result where the conditions
    :math:`|X_j^T U r| \\le \\alpha \\rho` hold off ``S``.

    Settings: ``positive=True`` is supported exactly (``sign(w_S) = 1``
    and the one-sided condition :math:`X_j^T U r \\ge -\\alpha \\rho` off
    ``S``). ``precompute`` is ignored: it changes only the speed of
    coordinate descent, and a Gram matrix given by the user belongs to the
    full data, not to a training fold. ``selection='random'`` and
    ``random_state`` are passed on; the polished solution does not depend on
    them. ``max_iter`` is raised to at least 10000. Multi-output ``y`` is
    refused. Coordinate descent is warm started from ``y0`` (``ElasticNet``
    with ``warm_start=True`` and ``coef_`` preset), a new ``ElasticNet`` for
    each solve: the problem holds data only. The user's settings are
    validated when the problem is built.

    Parameters
    ----------
    estimator : :class:`~sklearn.linear_model.ElasticNet`
        The estimator; ``fit_intercept``, ``positive``, ``max_iter``,
        ``selection``, ``random_state`` and the values of the parameters
        not in ``names`` are read from it.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (kept sparse, as CSC, when sparse).
    y : array of shape (n_samples,)
        Training targets ``t`` (1-D; ``ValueError`` otherwise).
    names : sequence of str
        The searched parameters, a subset of ``('alpha', 'l1_ratio')``.
    scales : sequence of {'log', 'linear'}
        The scale of each searched parameter (``l1_ratio`` lives in
        ``[0, 1]``: ``'linear'`` suits it).
    sample_weight : array of shape (n_samples,), optional
        The weights ``s_i`` (all 1 when None).
    moments : tuple, optional
        ``(M, c)`` from :func:`fold_moments`: the fold's weighted second
        moments about ``c``, from which its Gram matrix is formed without a
        product with ``X`` (BilevelSearchCV shares one product among its
        folds). None: the Gram matrix is computed from ``X``.

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('alpha', 'l1_ratio')``.
    loss : str
        ``'squared'``.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``n_features + 1``: the variable is ``y = (w, b)``.
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp'}``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2)
       of section 4.1 with a non-smooth regulariser ``R``; implicit
       differentiation (section 5.1) through the active set, as for a
       constrained lower level in section 6.1, formula (6.3), under the
       strict complementarity (A4) that keeps the support fixed nearby.
    .. [2] Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort,
       J. Salmon, "Implicit differentiation of Lasso-type models for
       hyperparameter optimization", ICML 2020: the restricted system on
       the support.
    .. [3] scikit-learn, :class:`sklearn.linear_model.ElasticNet`: the
       objective ``1/(2 n) ||t - X w - b||^2 + alpha rho ||w||_1 +
       alpha (1 - rho)/2 ||w||^2`` above, solved by coordinate descent.

    Examples
    --------
    The polished solution has the support of ``ElasticNet.fit`` (run to a
    tight tolerance), and the hypergradient in ``(log alpha, l1_ratio)``
    passes a central-difference check:

    >>> import numpy as np
    >>> from sklearn.linear_model import ElasticNet
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.sparse_regression import ElasticNetLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> t = X @ [1.0, -2.0, 0.0, 0.0, 0.5] + 0.1 * rng.normal(size=40)
    >>> lower = ElasticNetLowerLevel(ElasticNet(alpha=0.1, l1_ratio=0.5), X[:30], t[:30],
    ...                              names=["alpha", "l1_ratio"], scales=["log", "linear"])
    >>> x = np.array([np.log(0.1), 0.5])
    >>> y, ok = lower.solve(x)
    >>> fitted = ElasticNet(alpha=0.1, l1_ratio=0.5, tol=1e-12, max_iter=100_000).fit(X[:30], t[:30])
    >>> lower.n_hyper, lower.n_var, ok, np.flatnonzero(y[:-1]), np.allclose(y[:-1], fitted.coef_)
    (2, 6, True, array([0, 1, 3, 4]), True)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], t[30:]), lower)
    >>> F, grad, _ = hypergradient(problem, x, y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x, tol=1e-12)[0])
    >>> fd = [(h(x + 1e-6 * e) - h(x - 1e-6 * e)) / 2e-6 for e in np.eye(2)]
    >>> np.allclose(grad, fd, rtol=1e-5)
    True
    """

    hyperparameters = ("alpha", "l1_ratio")
    penalises_upward = ("alpha",)
    loss = "squared"

    @classmethod
    def fold_options(cls, estimator, X, splits, sample_weight=None):
        """Per fold ``{'moments': ...}`` (:func:`fold_moments`) on dense data with more training samples than
        features (coordinate descent then works on the Gram matrix) and four folds or more (from four
        folds on, one product with all the samples and one with each held-out part cost less than one
        per training part); else empty dicts."""
        if (X is None or issparse(X) or len(splits) < 4 or min(len(train) for train, _ in splits) <= X.shape[1]
                or (sample_weight is not None and np.any(sample_weight < 0))):
            return super().fold_options(estimator, X, splits, sample_weight)
        moments = fold_moments(X, [test for _, test in splits], sample_weight,
                               bool(estimator.get_params()["fit_intercept"]))
        return [{"moments": m} for m in moments]

    def __init__(self, estimator, X, y, names, scales, sample_weight=None, moments=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        self._moments = moments  # (M, c) of fold_moments, or None: _centred then multiplies X itself
        self.t = self.y.astype(float)
        self.sparse = issparse(X)
        # sparse: CSC, what coordinate descent works on, so that fit(check_input=False) skips
        # scikit-learn's validation (a third of a solve's time on small data). Dense data are
        # solved on their centred Fortran-ordered copy (see _centred): no second copy here.
        self.X = X.tocsc().astype(np.float64) if self.sparse else np.asarray(X, dtype=float)
        n, p = self.X.shape
        s = np.ones(n) if self.sample_weight is None else self.sample_weight
        self.u = s / s.sum()
        self.fit_intercept = bool(self.params["fit_intercept"])
        if self.fit_intercept:
            self.x_mean = np.asarray(self.X.T @ self.u).ravel()
            self.t_mean = float(self.u @ self.t)
        else:
            self.x_mean, self.t_mean = np.zeros(p), 0.0
        self.positive = bool(self.params.get("positive", False))
        # X_c^T U t_c, computed without centring X: sum_i u_i (t_i - t_mean) = 0.
        self.Xty = np.asarray(self.X.T @ (self.u * (self.t - self.t_mean))).ravel()
        self.kkt_atol = _KKT_RTOL * max(np.abs(self.Xty).max(initial=0.0), np.finfo(float).tiny)
        # the user's settings are checked once, here; each solve builds its own ElasticNet (no run
        # state on the problem) and skips scikit-learn's validation, a third of a solve on small data
        self._cd_settings = dict(
            fit_intercept=self.fit_intercept, precompute=False, copy_X=True, warm_start=True,
            max_iter=max(int(self.params.get("max_iter", 1000)), _MIN_MAX_ITER),
            positive=self.positive, random_state=self.params.get("random_state"),
            selection=self.params.get("selection", "cyclic"),
        )
        ElasticNet(alpha=self.params["alpha"], l1_ratio=self.params.get("l1_ratio", 1.0),
                   **self._cd_settings)._validate_params()
        self.linear = LinearModel(p)  # y = (w, b), decision values X w + b
        self.n_var = p + 1
        self._path_data = None  # solve_path's centred data, made at its first call

    # -- hyperparameters -------------------------------------------------------
    def _hyper(self, x):
        """``(alpha, rho)`` at ``x`` (``rho = 1`` for the Lasso)."""
        vals = self.values(x)
        return (vals.get("alpha", self.params["alpha"]),
                vals.get("l1_ratio", self.params.get("l1_ratio", 1.0)))

    def alpha_max(self, l1_ratio=None) -> float:
        """Smallest ``alpha`` with ``w = 0``: :math:`\\|X_c^T U t_c\\|_\\infty / \\rho`."""
        rho = self.params.get("l1_ratio", 1.0) if l1_ratio is None else l1_ratio
        top = self.Xty.max(initial=0.0) if self.positive else np.abs(self.Xty).max(initial=0.0)
        return float(top / rho)

    # -- linear algebra on the support -----------------------------------------
    def _hessian(self, S, alpha, rho) -> np.ndarray:
        """:math:`H_S = X_{c,S}^T U X_{c,S} + \\alpha (1 - \\rho) I`."""
        gram_n = self._cached_gram()
        if gram_n is not None:  # the Gram matrix of the path, n X_c^T U X_c: no product with X
            return gram_n[np.ix_(S, S)] / self.u.size + alpha * (1.0 - rho) * np.eye(S.size)
        XS = self.X[:, S]
        if self.sparse:
            # X_c^T U X_c = X^T U X - xbar xbar^T (as u sums to 1), keeping X_S sparse.
            gram = XS.T @ XS.multiply(self.u[:, None]).tocsc()
            gram = gram.toarray() - np.outer(self.x_mean[S], self.x_mean[S])
        else:
            XS = XS - self.x_mean[S]  # explicit centring: no cancellation in the dense case
            gram = XS.T @ (self.u[:, None] * XS)
        return gram + alpha * (1.0 - rho) * np.eye(S.size)

    def _cached_gram(self):
        """``n X_c^T U X_c`` where :meth:`_centred` made it (dense data, more samples than features), else None."""
        data = self._path_data
        return None if data is None or data["precompute"] is False else data["precompute"]

    def _intercept(self, w) -> float:
        return self.t_mean - float(self.x_mean @ w) if self.fit_intercept else 0.0

    def _residual(self, w, b) -> np.ndarray:
        return np.asarray(self.X @ w).ravel() + b - self.t

    def _kkt_ok(self, alpha, rho, w) -> bool:
        """Whether ``w`` is optimal: the subgradient conditions hold within ``kkt_atol``."""
        gram_n = self._cached_gram()
        if gram_n is not None:  # X^T U r = X_c^T U (X_c w - t_c) = (G w - X_c^T t_c) / n, from the Gram matrix
            on = np.flatnonzero(w)
            data_grad = (gram_n[:, on] @ w[on] - self._path_data["Xy"]) / self.u.size
        else:
            r = self._residual(w, self._intercept(w))
            data_grad = np.asarray(self.X.T @ (self.u * r)).ravel()
        grad = data_grad + alpha * (1.0 - rho) * w
        on = w != 0
        err_on = np.abs(grad[on] + alpha * rho * np.sign(w[on]))
        off = grad[~on]
        # off the support the subgradient alpha*rho*[-1, 1] (positive: [-1, inf)) must absorb grad
        err_off = np.maximum(-off - alpha * rho, 0.0) if self.positive else np.abs(off) - alpha * rho
        return bool(max(err_on.max(initial=0.0), err_off.max(initial=0.0)) <= self.kkt_atol)

    def _polish(self, alpha, rho, w_cd):
        """Solve the restricted optimality equations on the support of ``w_cd`` exactly.

        A coefficient whose sign flips was still converging to zero: it leaves
        the support and the system is solved again (each round drops one or
        more indices). Return ``(w, ok)``, ``ok`` from :meth:`_kkt_ok`.
        """
        S = np.flatnonzero(w_cd)
        while True:
            sign = np.sign(w_cd[S])
            rhs = self.Xty[S] - alpha * rho * sign
            try:
                w_S = _support_solve(self._hessian(S, alpha, rho), rhs, least_squares=False) if S.size else rhs
            except (LinAlgError, ValueError):  # singular H_S: |S| too large, w not unique
                return w_cd, False
            flipped = np.sign(w_S) != sign
            if not flipped.any():
                break
            S = S[~flipped]
        w = np.zeros_like(w_cd)
        w[S] = w_S
        return w, self._kkt_ok(alpha, rho, w)

    # -- LowerLevel --------------------------------------------------------------
    def solve(self, x, y0=None, tol=1e-10):
        """Coordinate descent (scikit-learn), warm started from ``y0``, then polished on its support.

        Returns ``(y, ok)``; ``ok`` is False (and ``y`` is coordinate descent's
        answer) when the polished point fails the optimality conditions even
        after a second, tighter descent. At a loose ``tol`` (1e-5 or more: a
        point that is only compared, not differentiated) there is no second
        descent, coordinate descent runs at most the estimator's own
        ``max_iter`` sweeps, and an unpolished answer is accepted (``ok``
        when coordinate descent converged), as the estimator's ``fit`` would.
        """
        alpha, rho = self._hyper(x)
        p = self.n_var - 1
        w = np.zeros(p) if y0 is None or np.size(y0) != p + 1 else np.asarray(y0[:-1], dtype=float)
        compare_only = tol >= _COMPARE_ONLY_TOL
        # the estimator's own sweep budget where the point is only compared (as LassoCV's path)
        max_iter = self.params.get("max_iter", 1000) if compare_only else self._cd_settings["max_iter"]
        # the polish makes the answer exact once coordinate descent has found the support, which a loose
        # tolerance often does: first at the compared points' tolerance, then at tol and tighter when the
        # support was wrong
        attempts = (tol, tol * 1e-4) if compare_only else (_SUPPORT_TOL, tol, tol * 1e-4)
        for attempt_tol in attempts:
            # dense data: enet_path on the fold's centred data (and Gram matrix), kept from the first
            # solve, where ElasticNet.fit would centre and copy X at every solve
            w_cd, converged = self._path([alpha], rho, w, attempt_tol, max_iter,
                                         None if self.sparse else self._centred())
            w, ok = self._polish(alpha, rho, w_cd)
            if ok:
                return np.append(w, self._intercept(w)), True
            if compare_only:
                # coordinate descent's answer at its duality-gap tolerance is what the estimator
                # itself (and LassoCV's path) gives; a tighter descent that settles the support
                # for the polish costs thousands of sweeps where the support exceeds the samples
                return np.append(w_cd, self._intercept(w_cd)), converged
            w = w_cd
        return np.append(w_cd, self._intercept(w_cd)), False

    def solve_path(self, xs, y0=None, x0=None, tol=1e-4):
        """Solutions at the points ``xs`` (rows), in order, along a regularisation path.

        For points that are only compared (BilevelSearchCV's initial scan), as
        ``LassoCV`` computes its path: each point is warm started from the one
        before (the first from ``y0``, the solution at ``x0``; from ``w = 0``
        at ``alpha_max`` without them), and where ``alpha`` falls by more than
        a factor ``_PATH_RATIO`` between two points with the same
        ``l1_ratio``, coordinate descent first visits geometrically spaced
        ``alpha`` in between: from a nearby solution each costs a few sweeps
        (scikit-learn's gap-safe screening discards most features early),
        whereas one jump lands far from the answer at a weak penalty, where
        coordinate descent converges slowly. Coordinate descent runs at most
        the estimator's ``max_iter`` sweeps per ``alpha`` to the duality-gap
        tolerance ``tol``, and its answer is not polished (a point to be
        differentiated goes through :meth:`solve`).

        Returns a list of ``(y, ok, seconds)``, one per row of ``xs``; ``ok``:
        coordinate descent converged.
        """
        out = []
        if y0 is None or x0 is None or np.size(y0) != self.n_var:
            alpha_prev, rho_prev, w = None, None, np.zeros(self.n_var - 1)
        else:
            (alpha_prev, rho_prev), w = self._hyper(x0), np.asarray(y0[:-1], dtype=float)
        max_iter = int(self.params.get("max_iter", 1000))
        centred = None if self.sparse else self._centred()
        for x in np.atleast_2d(xs):
            start = time.perf_counter()
            alpha, rho = self._hyper(x)
            if alpha_prev is None and rho > 0:
                alpha_prev, rho_prev = self.alpha_max(rho), rho
            alphas = [alpha]
            if rho == rho_prev and alpha_prev > _PATH_RATIO * alpha:
                steps = int(np.ceil(np.log(alpha_prev / alpha) / np.log(_PATH_RATIO)))
                alphas = np.geomspace(alpha_prev, alpha, steps + 1)[1:]
            w, ok = self._path(alphas, rho, w, tol, max_iter, centred)
            out.append((np.append(w, self._intercept(w)), ok, time.perf_counter() - start))
            alpha_prev, rho_prev = alpha, rho
        return out

    def _centred(self):
        """``enet_path``'s data for ``fit_intercept``: ``X_c``, ``t_c`` (centred, scaled by the square
        roots of ``ElasticNet.fit``'s weights rescaled to sum to ``n``; Fortran-ordered), and with more
        samples than features the Gram matrix ``X_c^T X_c`` and ``X_c^T t_c``, as ``LassoCV``'s
        ``precompute='auto'``: a sweep then costs ``p^2`` in place of ``n p``."""
        if self._path_data is not None:
            return self._path_data
        n, p = self.X.shape
        root = np.sqrt(self.u * n)
        tc = root * (self.t - self.t_mean)
        if n > p and self._moments is not None:
            # coordinate descent on the Gram matrix reads X only for its shape: no centred copy
            data = {"X": self.X, "y": tc, "precompute": self._gram_from_moments(), "Xy": n * self.Xty}
        else:
            Xc = np.subtract(self.X, self.x_mean, order="F")  # one Fortran-ordered copy, scaled in place
            Xc *= root[:, None]
            data = {"X": Xc, "y": tc, "precompute": False}
            if n > p:
                data.update(precompute=np.ascontiguousarray(Xc.T @ Xc), Xy=Xc.T @ tc)
        # kept: data of the fold, not run state (the same for every call; a concurrent first call
        # computes it twice at worst); the scan calls solve_path once per block of points
        self._path_data = data
        return data

    def _gram_from_moments(self):
        """``n X_c^T U X_c`` from the fold's second moments ``M = sum_i s_i (x_i - c)(x_i - c)^T`` about
        a point ``c`` near its mean (:func:`fold_moments`): the spread about the mean does not depend
        on ``c``, ``X_c^T U X_c = M / sum(s) - (xbar - c)(xbar - c)^T``, and a ``c`` near ``xbar``
        keeps the difference free of cancellation."""
        M, c = self._moments
        s_sum = self.u.size if self.sample_weight is None else float(self.sample_weight.sum())
        d = self.x_mean - c  # c = 0 = x_mean without intercept
        gram = M / s_sum - np.outer(d, d)
        gram *= self.u.size
        return gram

    def _path(self, alphas, rho, w, tol, max_iter, centred):
        """``(w, converged)`` at the last of ``alphas`` (decreasing), each warm started from the one before.

        scikit-learn stops once the duality gap is below ``tol * ||t_c||^2``. A fit from zero checks
        the gap only once a sweep barely moves ``w`` and ends well inside that bound; a start from the
        solution at a neighbouring ``alpha`` can meet it before its first sweep, and its scores were
        then 1% off those of the estimator's own fit. Such a solve goes on at ``tol *
        _NO_SWEEP_TOL_FACTOR`` for at most ``_NO_SWEEP_MAX_ITER`` sweeps: enough where it is cheap (a
        few dozen sweeps on well-determined problems); where the features outnumber the samples and
        ``alpha`` is small it would take thousands, for a point on the overfitting side of the scan.
        """
        w_new, n_iter = self._cd_path(alphas, rho, w, tol, max_iter, centred)
        if n_iter == 0 and np.any(w_new):
            w_new, _ = self._cd_path(alphas[-1:], rho, w_new, tol * _NO_SWEEP_TOL_FACTOR,
                                     min(max_iter, _NO_SWEEP_MAX_ITER), centred)
        return w_new, n_iter < max_iter

    def _cd_path(self, alphas, rho, w, tol, max_iter, centred):
        """``(w, sweeps)`` at the last of ``alphas`` by coordinate descent along them.

        Dense data go through scikit-learn's ``enet_path`` on ``centred`` (LassoCV's own solver, one
        call for the whole path, where each ``ElasticNet.fit`` would centre and copy ``X`` again);
        sparse data through :meth:`_descend`.
        """
        if centred is None:
            n_iter = 0
            for a in alphas:
                w, _, n_iter = self._descend(a, rho, w, tol, max_iter)
            return w, n_iter
        # every argument is ours: scikit-learn's parameter validation (a tenth of a small fold's solve) is skipped
        with warnings.catch_warnings(), config_context(skip_parameter_validation=True):
            warnings.simplefilter("ignore", ConvergenceWarning)  # said by the returned flag
            _, coefs, _, n_iters = enet_path(**centred, l1_ratio=rho, alphas=np.asarray(alphas, dtype=float),
                                             coef_init=np.array(w, dtype=float), tol=tol, max_iter=max_iter,
                                             positive=self.positive, check_input=False, return_n_iter=True)
        return coefs[:, -1], int(n_iters[-1])

    def _descend(self, alpha, rho, w0, tol, max_iter=None):
        """Coordinate descent (scikit-learn's ``ElasticNet``) from ``w0``: ``(w, b, n_iter)``; at most
        ``max_iter`` sweeps (None: the solve's own, at least 10000)."""
        settings = {**self._cd_settings, "max_iter": max_iter or self._cd_settings["max_iter"]}
        model = ElasticNet(alpha=alpha, l1_ratio=rho, tol=tol, **settings)
        model.coef_ = np.array(w0, dtype=float)  # a copy: coordinate descent works in place
        with warnings.catch_warnings(), config_context(skip_parameter_validation=True):
            # convergence is judged by the caller, by the optimality conditions
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(self.X, self.t, sample_weight=self.sample_weight, check_input=False)
        return model.coef_.copy(), float(model.intercept_), int(model.n_iter_)

    def adjoint(self, x, y, g):
        """Solve ``(d_y G)^T v = g``: with ``S`` the support of ``w``,

        .. math::

            H_S v_S = g_S - \\bar x_S g_b, \\quad v_b = g_b - \\bar x_S^T v_S, \\quad
            v_N = g_N - X_N^T U X_S v_S - \\bar x_N v_b

        (``\\bar x = 0`` without intercept). Only ``v_S`` enters
        :meth:`cross_vjp`; ``v_N`` costs one product with ``X`` and makes
        ``v`` the exact adjoint.
        """
        alpha, rho = self._hyper(x)
        w = y[:-1]
        S = np.flatnonzero(w)
        gw, gb = g[:-1], float(g[-1])
        xS = self.x_mean[S]
        v_S = _support_solve(self._hessian(S, alpha, rho), gw[S] - xS * gb) if S.size else np.zeros(0)
        v_b = gb - xS @ v_S
        gram_n = self._cached_gram()
        if gram_n is not None:
            # X^T U X_S = X_c^T U X_{c,S} + xbar xbar_S^T: the xbar terms cancel against xbar v_b but
            # for xbar g_b, and the Gram matrix replaces the products with X
            v = gw - gram_n[:, S] @ v_S / self.u.size - self.x_mean * gb
        else:
            XSv = np.asarray(self.X[:, S] @ v_S).ravel() if S.size else np.zeros(self.t.size)
            v = gw - np.asarray(self.X.T @ (self.u * XSv)).ravel() - self.x_mean * v_b
        v[S] = v_S
        return np.append(v, v_b), np.zeros(0)

    def cross_vjp(self, x, y, v):
        """``(d_x G)^T v``: only ``G_S`` depends on the hyperparameters,

        :math:`\\partial G_S / \\partial \\alpha = \\rho\\,\\mathrm{sign}(w_S) + (1 - \\rho) w_S`,
        :math:`\\partial G_S / \\partial \\rho = \\alpha (\\mathrm{sign}(w_S) - w_S)`.
        """
        alpha, rho = self._hyper(x)
        w = y[:-1]
        S = np.flatnonzero(w)
        w_S, v_S, sign = w[S], v[:-1][S], np.sign(w[S])
        return self._per_x(x, {"alpha": v_S @ (rho * sign + (1.0 - rho) * w_S),
                               "l1_ratio": alpha * v_S @ (sign - w_S)})

    def decision(self, x, y, X):
        return self.linear.decision(y, X)

    def decision_vjp(self, x, y, X, g):
        gy = self.linear.adjoint(g, X)
        if not self.fit_intercept:
            gy[-1] = 0.0  # b is pinned at 0
        return np.zeros(self.n_hyper), gy

    def value(self, x, y):
        alpha, rho = self._hyper(x)
        w = y[:-1]
        r = self._residual(w, y[-1])
        return float(0.5 * self.u @ r**2 + alpha * rho * np.abs(w).sum()
                     + 0.5 * alpha * (1.0 - rho) * w @ w)


class LassoLowerLevel(ElasticNetLowerLevel):
    """Training problem of :class:`sklearn.linear_model.Lasso` (hyperparameter ``alpha``).

    :class:`ElasticNetLowerLevel` with ``l1_ratio`` fixed at 1 (``Lasso`` is
    ``ElasticNet(l1_ratio=1)`` in scikit-learn too): the restricted Hessian is
    :math:`X_{c,S}^T U X_{c,S}`, singular when ``|S|`` exceeds the number of
    (centred) samples, where ``solve`` reports ``ok=False``.

    Parameters
    ----------
    estimator : :class:`~sklearn.linear_model.Lasso`
        The estimator; its settings are read as in
        :class:`ElasticNetLowerLevel`.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold.
    y : array of shape (n_samples,)
        Training targets (1-D).
    names : sequence of str
        ``['alpha']`` (or empty).
    scales : sequence of {'log', 'linear'}
        The scale of ``alpha`` (``'log'`` usually).
    sample_weight : array of shape (n_samples,), optional
        The weights ``s_i``.
    moments : tuple, optional
        The fold's second moments, as in :class:`ElasticNetLowerLevel`.

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('alpha',)``.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``n_features + 1``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2)
       of section 4.1 with an L1 regulariser; implicit differentiation
       through the active set (section 5.1; section 6.1, formula (6.3)).
    .. [2] Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort,
       J. Salmon, "Implicit differentiation of Lasso-type models for
       hyperparameter optimization", ICML 2020.
    .. [3] scikit-learn, :class:`sklearn.linear_model.Lasso`: the objective
       ``1/(2 n) ||t - X w - b||^2 + alpha ||w||_1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.sparse_regression import LassoLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> t = X @ [1.0, -2.0, 0.0, 0.0, 0.5] + 0.1 * rng.normal(size=40)
    >>> lower = LassoLowerLevel(Lasso(alpha=0.1), X[:30], t[:30], names=["alpha"], scales=["log"])
    >>> y, ok = lower.solve(np.log([0.1]))
    >>> fitted = Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(X[:30], t[:30])
    >>> ok, np.flatnonzero(y[:-1]), np.allclose(y[:-1], fitted.coef_), round(lower.alpha_max(), 4)
    (True, array([0, 1, 4]), True, 1.8125)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], t[30:]), lower)
    >>> F, grad, _ = hypergradient(problem, np.log([0.1]), y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x, tol=1e-12)[0])
    >>> x = np.log([0.1])
    >>> bool(np.isclose(grad[0], (h(x + 1e-6) - h(x - 1e-6)) / 2e-6, rtol=1e-5))
    True
    """

    hyperparameters = ("alpha",)
