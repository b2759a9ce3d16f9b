"""Ridge and kernel ridge regression as lower levels of a cross-validation problem.

Both have a closed-form solution, so ``solve`` is exact; the adjoint solves
the same linear system.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse import issparse
from sklearn.metrics.pairwise import euclidean_distances, linear_kernel

from .datafits import Squared
from .estimator_base import EstimatorLowerLevel, _matrix
from .linear_model import LinearModel


def _dense(X):
    return X.toarray() if issparse(X) else np.asarray(X, dtype=float)


def _gram_eigen(Xs):
    """``(s^2, V^T)`` of ``X_s = U diag(s) V^T``, nonzero ``s`` only, from the smaller Gram matrix.

    ``eigh`` of ``X_s^T X_s`` (``p x p``) when ``n >= p``, else of ``X_s X_s^T``
    (``n x n``, and ``V = X_s^T U / s``): one product and one symmetric
    eigendecomposition cost several times less than the SVD of ``X_s`` (as
    ``RidgeCV``'s ``gcv_mode='eigen'``). Directions with ``s^2`` below
    ``max(n, p) eps max(s^2)`` are dropped: ``w`` has no component there.
    """
    n, p = Xs.shape
    ev, vec = np.linalg.eigh(Xs.T @ Xs if n >= p else Xs @ Xs.T)
    keep = ev > max(n, p) * np.finfo(float).eps * ev.max(initial=0.0)
    ev, vec = ev[keep], vec[:, keep]
    V = vec if n >= p else Xs.T @ (vec / np.sqrt(ev))
    return ev, np.ascontiguousarray(V.T)


class RidgeLowerLevel(EstimatorLowerLevel):
    """Training problem of :class:`sklearn.linear_model.Ridge` (hyperparameter ``alpha``).

    .. math::

        f(\\alpha, w, b) = \\sum_i s_i (t_i - x_i^T w - b)^2 + \\alpha \\|w\\|^2,

    the objective of ``Ridge.fit`` (the intercept is not penalised). With the
    weighted centred data :math:`X_s = S^{1/2}(X - 1\\bar x^T) = U \\Sigma V^T`
    (one eigendecomposition of the smaller Gram matrix per fold, computed
    here), :math:`w = V (\\Sigma^2 + \\alpha)^{-1} V^T X_s^T t_s`
    for every ``alpha`` at the cost of two products, and the optimality map
    ``G = grad f`` has the Jacobian :math:`2 (X_1^T S X_1 + \\alpha\\, \\mathrm{diag}(1, .., 1, 0))`.
    A sparse training ``X`` is densified (the decomposition needs it; validation rows
    stay sparse). ``y = (w, b)``.

    Parameters
    ----------
    estimator : :class:`~sklearn.linear_model.Ridge`
        The estimator; its parameters not in ``names`` are held fixed (``fit_intercept``; a
        per-target array ``alpha`` raises ``ValueError``).
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (densified).
    y : array of shape (n_samples,)
        Training targets ``t`` (one target: 1-D).
    names : sequence of str
        The searched parameters, a subset of ``('alpha',)``.
    scales : sequence of {'log', 'linear'}
        The scale of each searched parameter (``'log'``: ``x_j = log lambda_j``).
    sample_weight : array of shape (n_samples,), optional
        The weights ``s_i`` (all 1 when None).

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('alpha',)``.
    loss : str
        ``'squared'``: the validation loss :class:`~skbilevel.problems.estimator_base.ValidationLoss` uses.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``n_features + 1``: the variable is ``y = (w, b)`` (``b = 0``
        without an intercept).
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp'}``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2)
       of section 4.1 with an L2 regulariser ``R``; its hypergradient by
       implicit differentiation of the stationarity condition (5.4),
       section 5.1.
    .. [2] scikit-learn, :class:`sklearn.linear_model.Ridge`: the objective
       ``||t - X w - b||^2_S + alpha ||w||^2`` above.

    Examples
    --------
    The exact solution equals ``Ridge.fit``'s, and the hypergradient of the
    validation loss in ``log(alpha)`` passes a central-difference check:

    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.ridge import RidgeLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 3))
    >>> t = X @ [1.0, -2.0, 0.0] + 0.1 * rng.normal(size=30)
    >>> lower = RidgeLowerLevel(Ridge(alpha=1.0), X[:20], t[:20], names=["alpha"], scales=["log"])
    >>> lower.n_hyper, lower.n_var
    (1, 4)
    >>> y, exact = lower.solve(np.log([1.0]))
    >>> fitted = Ridge(alpha=1.0).fit(X[:20], t[:20])
    >>> exact, np.allclose(y, np.append(fitted.coef_, fitted.intercept_))
    (True, True)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[20:], t[20:]), lower)
    >>> F, grad, _ = hypergradient(problem, np.zeros(1), y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> bool(np.isclose(grad[0], (h([1e-6]) - h([-1e-6])) / 2e-6, rtol=1e-5))
    True
    """

    hyperparameters = ("alpha",)
    penalises_upward = ("alpha",)
    loss = "squared"

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        if np.ndim(self.params["alpha"]) != 0:
            raise ValueError("Ridge with one alpha per target is not supported; use a single alpha.")
        if self.params.get("positive", False):
            # the solution map below is the unconstrained one: it would tune a different model
            raise ValueError("Ridge(positive=True) is not supported (its coefficients solve a bound-constrained "
                             "problem); use positive=False, or ElasticNet(positive=True).")
        X = _dense(X)
        n, p = X.shape
        s = np.ones(n) if self.sample_weight is None else self.sample_weight
        self.X, self.s = X, s
        self.fit_intercept = bool(self.params["fit_intercept"])
        if self.fit_intercept:
            self.x_mean = s @ X / s.sum()
            self.t_mean = float(s @ self.y / s.sum())
        else:
            self.x_mean, self.t_mean = np.zeros(p), 0.0
        root = np.sqrt(s)
        Xs = root[:, None] * (X - self.x_mean)
        self.ev, self.Vt = _gram_eigen(Xs)
        self.Vt_Xt_t = self.Vt @ (Xs.T @ (root * (self.y - self.t_mean)))
        self.linear = LinearModel(p)  # y = (w, b), decision values X w + b
        self.datafit = Squared(self.y)
        self.n_var = p + 1

    def _alpha(self, x):
        return self.values(x).get("alpha", self.params["alpha"])

    def _inverse(self, alpha, r):
        """``(X_s^T X_s + alpha I)^{-1} r`` through the eigendecomposition."""
        Vr = self.Vt @ r
        return self.Vt.T @ (Vr / (self.ev + alpha)) + (r - self.Vt.T @ Vr) / alpha

    def solve(self, x, y0=None, tol=1e-10):
        alpha = self._alpha(x)
        w = self.Vt.T @ (self.Vt_Xt_t / (self.ev + alpha))
        b = self.t_mean - self.x_mean @ w
        return np.append(w, b), True

    def adjoint(self, x, y, g):
        alpha = self._alpha(x)
        gw, gb = g[:-1], g[-1]
        if not self.fit_intercept:
            # b is fixed at 0: its row of G is the identity, and nothing depends on it.
            return np.append(self._inverse(alpha, 0.5 * gw), gb), np.zeros(0)
        vw = self._inverse(alpha, 0.5 * (gw - self.x_mean * gb))
        vb = 0.5 * gb / self.s.sum() - self.x_mean @ vw
        return np.append(vw, vb), np.zeros(0)

    def cross_vjp(self, x, y, v):
        return self._per_x(x, {"alpha": 2.0 * y[:-1] @ v[:-1]})

    def decision(self, x, y, X):
        return self.linear.decision(y, _matrix(X))  # sparse validation rows stay sparse

    def decision_vjp(self, x, y, X, g):
        gy = self.linear.adjoint(g, _matrix(X))
        if not self.fit_intercept:
            gy[-1] = 0.0  # b is pinned at 0
        return np.zeros(self.n_hyper), gy

    def value(self, x, y):
        loss = self.datafit.loss(self.decision(x, y, self.X))
        return float(self.s @ loss + self._alpha(x) * y[:-1] @ y[:-1])


class RidgeLeaveOneOut(RidgeLowerLevel):
    """:class:`RidgeLowerLevel` on all the samples, whose decision values on them are leave-one-out ones.

    Leave-one-out cross-validation of Ridge needs no refit: with the hat
    matrix :math:`H_\\alpha` of the fit on all samples (intercept included,
    unpenalised), the prediction for sample ``i`` of the fit without it is

    .. math::

        \\hat t_{-i} = t_i - \\frac{t_i - x_i^T w - b}{1 - h_i(\\alpha)}, \\qquad
        h_i(\\alpha) = \\sum_j \\frac{a_{ij}^2}{\\sigma_j^2 + \\alpha} + \\frac{s_i}{\\sum_k s_k},

    with :math:`A = X_s V` (``X_s = U \\Sigma V^T`` the weighted centred data
    of :class:`RidgeLowerLevel`, whose decomposition is reused; the last term
    only with an intercept) -- the identity behind ``RidgeCV``'s efficient
    leave-one-out. :meth:`decision` returns :math:`\\hat t_{-i}` when handed
    the training array itself (``self.X``, by identity): the upper level and
    the scorer of BilevelSearchCV's one leave-one-out "fold" pass it, so
    that the mean validation loss is the leave-one-out mean squared error
    and the scorer scores the ``n`` leave-one-out predictions together, as
    ``RidgeCV`` does. Its derivative in ``alpha`` adds
    :math:`-e_i (1 - h_i)^{-2} \\partial h_i / \\partial \\alpha` (the leverage
    changes with ``alpha``) to the implicit part through ``(w, b)``. Other
    arrays get the plain decision values ``X w + b``.

    Parameters
    ----------
    estimator : :class:`~sklearn.linear_model.Ridge`
        As in :class:`RidgeLowerLevel`.
    X : array or sparse matrix of shape (n_samples, n_features)
        All the samples (densified; ``self.X`` is the array that stands for
        their leave-one-out predictions).
    y : array of shape (n_samples,)
        All the targets.
    names : sequence of str
        ``['alpha']`` (or empty).
    scales : sequence of {'log', 'linear'}
        The scale of ``alpha``.
    sample_weight : array of shape (n_samples,), optional
        The weights ``s_i`` (all 1 when None).

    Attributes
    ----------
    A2 : ndarray of shape (n_samples, rank)
        :math:`a_{ij}^2`, the squared coordinates of the samples in the
        eigenbasis (the leverages' ingredients).
    h0 : ndarray of shape (n_samples,)
        The intercept's share of the leverages, :math:`s_i / \\sum_k s_k`
        (0 without an intercept).

    References
    ----------
    .. [1] G. H. Golub, M. Heath, G. Wahba, "Generalized cross-validation as
       a method for choosing a good ridge parameter", Technometrics, 1979:
       the leave-one-out residual of a linear smoother.
    .. [2] scikit-learn, :class:`sklearn.linear_model.RidgeCV` (``cv=None``):
       the same leave-one-out predictions.

    Examples
    --------
    The leave-one-out predictions equal those of ``n`` refits:

    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skbilevel.problems.ridge import RidgeLeaveOneOut
    >>> rng = np.random.default_rng(0)
    >>> X, t = rng.normal(size=(12, 3)), rng.normal(size=12)
    >>> lower = RidgeLeaveOneOut(Ridge(), X, t, ["alpha"], ["log"])
    >>> y, _ = lower.solve(np.log([0.5]))
    >>> keep = np.arange(12) != 4
    >>> refit = Ridge(alpha=0.5).fit(X[keep], t[keep]).predict(X[4:5])[0]
    >>> bool(np.isclose(lower.decision(np.log([0.5]), y, lower.X)[4], refit))
    True
    """

    #: its scores are the estimator's own leave-one-out scores, in closed form: nothing to refit
    exact_cross_validation = True

    @staticmethod
    def applies(names, sample_weight):
        """Whether the closed form serves these searched ``names`` and weights: always."""
        return True

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        root = np.sqrt(self.s)
        self.A2 = ((root[:, None] * (self.X - self.x_mean)) @ self.Vt.T) ** 2
        self.h0 = self.s / self.s.sum() if self.fit_intercept else np.zeros(len(self.s))

    def _leverage(self, alpha):
        """``(h, dh/dalpha)`` of every sample."""
        inv = 1.0 / (self.ev + alpha)
        return self.A2 @ inv + self.h0, -(self.A2 @ inv**2)

    def decision(self, x, y, X):
        if X is not self.X:
            return super().decision(x, y, X)
        h, _ = self._leverage(self._alpha(x))
        residual = self.y - super().decision(x, y, X)
        return self.y - residual / (1.0 - h)

    def decision_vjp(self, x, y, X, g):
        if X is not self.X:
            return super().decision_vjp(x, y, X, g)
        h, dh = self._leverage(self._alpha(x))
        residual = self.y - super().decision(x, y, X)
        # d = t - e / (1 - h), e = t - X w - b: through (w, b) as X w + b scaled by 1 / (1 - h), and
        # through alpha by the leverage
        gx, gy = super().decision_vjp(x, y, X, g / (1.0 - h))
        return gx + self._per_x(x, {"alpha": -float(g @ (residual * dh / (1.0 - h) ** 2))}), gy


class KernelRidgeLowerLevel(EstimatorLowerLevel):
    """Training problem of :class:`sklearn.kernel_ridge.KernelRidge` (``alpha``; ``gamma`` for 'rbf').

    The dual coefficients ``a`` solve :math:`(K_\\gamma + \\alpha S^{-1}) a = t`
    (``KernelRidge.fit`` with sample weights ``S``), the zero of the optimality
    map ``G(x, a) = (K_\\gamma + \\alpha S^{-1}) a - t``, whose Jacobian in ``a``
    is symmetric positive definite. With the RBF kernel
    :math:`K_{ij} = e^{-\\gamma \\|x_i - x_j\\|^2}`,
    :math:`\\partial K / \\partial \\gamma = -D \\circ K` (``D`` the squared
    distances). Predictions are :math:`K_\\gamma(X, X_{train})\\, a` (no
    intercept). Kernels: 'rbf' and 'linear'. When ``gamma`` is not searched
    the kernel is fixed, and one eigendecomposition of
    :math:`S^{1/2} K S^{1/2}` per fold solves the system for every ``alpha``
    in two products; otherwise each point factorises it (Cholesky).

    Parameters
    ----------
    estimator : :class:`~sklearn.kernel_ridge.KernelRidge`
        The estimator; its parameters not in ``names`` are held fixed (``kernel`` must be
        ``'rbf'`` or ``'linear'``; ``gamma=None`` means ``1 / n_features``).
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (densified).
    y : array of shape (n_samples,)
        Training targets ``t`` (one target: 1-D).
    names : sequence of str
        The searched parameters, a subset of ``('alpha', 'gamma')``;
        ``'gamma'`` only with the RBF kernel.
    scales : sequence of {'log', 'linear'}
        The scale of each searched parameter (``'log'``: ``x_j = log lambda_j``).
    sample_weight : array of shape (n_samples,), optional
        The weights ``s_i`` (all 1 when None).

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('alpha', 'gamma')``.
    loss : str
        ``'squared'``.
    kernel : str
        ``'rbf'`` or ``'linear'``.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``n_samples`` with a nonzero weight: the variable is the dual
        coefficient vector ``a`` (``dual_coef_``, which is 0 at the samples
        of weight 0, so they are dropped).
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp'}``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: kernel methods as the
       training problem (4.2) of section 4.1; the hypergradient by implicit
       differentiation, section 5.1, here of the optimality map ``G`` in
       place of the stationarity condition (5.4).
    .. [2] scikit-learn, :class:`sklearn.kernel_ridge.KernelRidge`: the
       linear system ``(K + alpha S^{-1}) a = t`` of its ``fit``, i.e. the
       minimiser of ``1/2 ||t - K a||^2_S + alpha/2 a^T K a`` (the
       ``value`` here is the objective ``1/2 a^T K a + alpha/2 a^T S^{-1} a
       - t^T a`` whose gradient is ``G``).

    Examples
    --------
    The dual coefficients equal ``KernelRidge.fit``'s, and the hypergradient
    in ``(log alpha, log gamma)`` passes a central-difference check:

    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.ridge import KernelRidgeLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 3))
    >>> t = X @ [1.0, -2.0, 0.0] + 0.1 * rng.normal(size=30)
    >>> estimator = KernelRidge(kernel="rbf", alpha=0.1, gamma=0.5)
    >>> lower = KernelRidgeLowerLevel(estimator, X[:20], t[:20], ["alpha", "gamma"], ["log", "log"])
    >>> x = np.log([0.1, 0.5])
    >>> a, _ = lower.solve(x)
    >>> lower.n_hyper, lower.n_var, np.allclose(a, estimator.fit(X[:20], t[:20]).dual_coef_)
    (2, 20, True)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[20:], t[20:]), lower)
    >>> F, grad, _ = hypergradient(problem, x, a)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> fd = [(h(x + 1e-6 * e) - h(x - 1e-6 * e)) / 2e-6 for e in np.eye(2)]
    >>> np.allclose(grad, fd, rtol=1e-5)
    True
    """

    hyperparameters = ("alpha", "gamma")
    penalises_upward = ("alpha",)
    loss = "squared"

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        kernel = self.params["kernel"]
        if kernel not in ("rbf", "linear"):
            raise ValueError(f"KernelRidge hypergradients support kernel='rbf' or 'linear', not {kernel!r}")
        if kernel == "linear" and "gamma" in self.names:
            raise ValueError("KernelRidge(kernel='linear') has no gamma to search")
        self.kernel = kernel
        self.X = _dense(X)
        if self.sample_weight is not None and np.any(self.sample_weight == 0):
            # the term alpha / (2 s_i) a_i^2 pins a_i = 0 (KernelRidge.fit's dual_coef_ is 0 there): drop the rows
            keep = self.sample_weight > 0
            self.X, self.y, self.sample_weight = self.X[keep], self.y[keep], self.sample_weight[keep]
        self.D = euclidean_distances(self.X, squared=True) if kernel == "rbf" else None
        self.inv_s = np.ones(len(self.y)) if self.sample_weight is None else 1.0 / self.sample_weight
        self.n_var = self.X.shape[0]
        self.eigen = None
        if "gamma" not in self.names:
            # the kernel is fixed: with K_s = S^{1/2} K S^{1/2} = Q diag(ev) Q^T (one eigendecomposition
            # per fold), (K + alpha S^{-1})^{-1} = S^{1/2} Q (ev + alpha)^{-1} Q^T S^{1/2} for every alpha
            root = 1.0 / np.sqrt(self.inv_s)
            ev, Q = np.linalg.eigh(root[:, None] * self._kernel(self._hyper(np.zeros(self.n_hyper))[1], self.D)
                                   * root)
            self.eigen = (ev, Q, root)

    def _hyper(self, x):
        vals = self.values(x)
        alpha = vals.get("alpha", self.params["alpha"])
        gamma = vals.get("gamma", self.params["gamma"])
        if gamma is None:  # scikit-learn's default for the RBF kernel
            gamma = 1.0 / self.X.shape[1]
        return alpha, gamma

    def _kernel(self, gamma, D=None, X=None):
        if self.kernel == "linear":
            return linear_kernel(self.X if X is None else X, self.X)
        return np.exp(-gamma * D)

    def _factor(self, x):
        alpha, gamma = self._hyper(x)
        A = self._kernel(gamma, self.D)  # a new array: the diagonal is added in place
        A[np.diag_indices_from(A)] += alpha * self.inv_s
        return cho_factor(A, overwrite_a=True)

    def _system_solve(self, x, r):
        """``(K + alpha S^{-1})^{-1} r``: through the eigendecomposition when the kernel is fixed, else
        a Cholesky factorisation at ``x``."""
        if self.eigen is None:
            return cho_solve(self._factor(x), r)
        ev, Q, root = self.eigen
        return root * (Q @ ((Q.T @ (root * r)) / (ev + self._hyper(x)[0])))

    def solve(self, x, y0=None, tol=1e-10):
        return self._system_solve(x, self.y.astype(float)), True

    def adjoint(self, x, y, g):
        return self._system_solve(x, g), np.zeros(0)

    def cross_vjp(self, x, y, v):
        alpha, gamma = self._hyper(x)
        d = {"alpha": v @ (self.inv_s * y)}
        if "gamma" in self.names:
            K = self._kernel(gamma, self.D)
            # -v^T (D o K) y, without the n x n temporary D o K
            d["gamma"] = -v @ np.einsum("ij,ij,j->i", self.D, K, y, optimize=False)
        return self._per_x(x, d)

    def _cross_kernel(self, gamma, X):
        X = _dense(X)
        if self.kernel == "linear":
            return linear_kernel(X, self.X), None
        D = euclidean_distances(X, self.X, squared=True)
        return np.exp(-gamma * D), D

    def decision(self, x, y, X):
        return self._cross_kernel(self._hyper(x)[1], X)[0] @ y

    def decision_vjp(self, x, y, X, g):
        K, D = self._cross_kernel(self._hyper(x)[1], X)
        d = {"alpha": 0.0, "gamma": 0.0 if D is None else -g @ ((D * K) @ y)}
        return self._per_x(x, d), K.T @ g

    def value(self, x, y):
        alpha, gamma = self._hyper(x)
        K = self._kernel(gamma, self.D)
        return float(0.5 * y @ (K @ y) + 0.5 * alpha * y @ (self.inv_s * y) - self.y @ y)


class KernelRidgeLeaveOneOut(KernelRidgeLowerLevel):
    """:class:`KernelRidgeLowerLevel` on all the samples, ``alpha`` alone searched, whose decision values
    on them are leave-one-out ones.

    As :class:`RidgeLeaveOneOut`, with the hat matrix
    :math:`K (K + \\alpha S^{-1})^{-1}`, similar to
    :math:`K_s (K_s + \\alpha)^{-1}` (``K_s = S^{1/2} K S^{1/2} = Q \\mathrm{diag}(\\lambda) Q^T``,
    the eigendecomposition the lower level already holds): the leverages are
    :math:`h_i(\\alpha) = \\sum_j q_{ij}^2 \\lambda_j / (\\lambda_j + \\alpha)`
    and the leave-one-out prediction
    :math:`\\hat t_{-i} = t_i - (t_i - (K a)_i) / (1 - h_i)`, returned by
    :meth:`decision` when handed ``self.X`` itself (by identity).

    Parameters
    ----------
    estimator : :class:`~sklearn.kernel_ridge.KernelRidge`
        As in :class:`KernelRidgeLowerLevel`.
    X : array or sparse matrix of shape (n_samples, n_features)
        All the samples (densified; ``self.X`` stands for their
        leave-one-out predictions).
    y : array of shape (n_samples,)
        All the targets.
    names : sequence of str
        ``['alpha']``: the kernel must be fixed (``ValueError`` otherwise).
    scales : sequence of {'log', 'linear'}
        The scale of ``alpha``.
    sample_weight : array of shape (n_samples,), optional
        Positive weights ``s_i`` (all 1 when None).

    Attributes
    ----------
    Q2 : ndarray of shape (n_samples, n_samples)
        The squared eigenvectors :math:`q_{ij}^2`.

    References
    ----------
    .. [1] G. H. Golub, M. Heath, G. Wahba, "Generalized cross-validation as
       a method for choosing a good ridge parameter", Technometrics, 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skbilevel.problems.ridge import KernelRidgeLeaveOneOut
    >>> rng = np.random.default_rng(0)
    >>> X, t = rng.normal(size=(12, 3)), rng.normal(size=12)
    >>> lower = KernelRidgeLeaveOneOut(KernelRidge(kernel="rbf", gamma=0.3), X, t, ["alpha"], ["log"])
    >>> a, _ = lower.solve(np.log([0.5]))
    >>> keep = np.arange(12) != 4
    >>> refit = KernelRidge(kernel="rbf", gamma=0.3, alpha=0.5).fit(X[keep], t[keep]).predict(X[4:5])[0]
    >>> bool(np.isclose(lower.decision(np.log([0.5]), a, lower.X)[4], refit))
    True
    """

    #: its scores are the estimator's own leave-one-out scores, in closed form: nothing to refit
    exact_cross_validation = True

    @staticmethod
    def applies(names, sample_weight):
        """Whether the closed form serves these searched ``names`` and weights: ``alpha`` alone (a
        fixed kernel), no weight 0 (such samples leave the problem)."""
        return "gamma" not in names and (sample_weight is None or bool(np.all(sample_weight > 0)))

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        if self.eigen is None:
            raise ValueError("KernelRidge leave-one-out in closed form needs a fixed kernel: search alpha alone")
        self.Q2 = self.eigen[1] ** 2

    def _leverage(self, alpha):
        """``(h, dh/dalpha)`` of every sample."""
        ev = self.eigen[0]
        return self.Q2 @ (ev / (ev + alpha)), -(self.Q2 @ (ev / (ev + alpha) ** 2))

    def _kernel_times(self, a):
        """``K a`` through the eigendecomposition: ``K = S^{-1/2} Q diag(ev) Q^T S^{-1/2}``."""
        ev, Q, root = self.eigen
        return (Q @ (ev * (Q.T @ (a / root)))) / root

    def decision(self, x, y, X):
        if X is not self.X:
            return super().decision(x, y, X)
        h, _ = self._leverage(self._hyper(x)[0])
        return self.y - (self.y - self._kernel_times(y)) / (1.0 - h)

    def decision_vjp(self, x, y, X, g):
        if X is not self.X:
            return super().decision_vjp(x, y, X, g)
        h, dh = self._leverage(self._hyper(x)[0])
        residual = self.y - self._kernel_times(y)
        gx = self._per_x(x, {"alpha": -float(g @ (residual * dh / (1.0 - h) ** 2))})
        return gx, self._kernel_times(g / (1.0 - h))  # K is symmetric
