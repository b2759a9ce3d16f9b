"""One hyperparameter per feature: a linear model's training problem on features scaled by ``s``.

Scaling feature ``j`` by ``s_j > 0`` before a linear model, ``z_i = s * x_i``
(:class:`skbilevel.FeatureScaler`), gives the model ``x_i^T (s * w) + b``. In
the coefficients of the original features, ``u = s * w``, only the penalty
depends on ``s``: the training problem becomes

.. math::

    \\min_{u, b}\\; L(X u + b) + a_1 \\sum_j \\frac{|u_j|}{s_j}
        + \\frac{a_2}{2} \\sum_j \\frac{u_j^2}{s_j^2},

a per-feature penalty: the weighted Lasso of ``sparse-ho`` for the Lasso
(``a_1 = alpha``, one penalty ``alpha / s_j`` per feature), a per-feature
ridge ``alpha / s_j^2`` for Ridge, and one inverse regularisation strength
``C s_j^2`` per feature for L2 logistic regression. The hyperparameters are
``x = (x_base, log s)``; the hypergradient in ``log s_j`` is analytic (no
automatic differentiation): with ``G_u`` the optimality map in ``u``
(:math:`G_u = \\nabla_u f` on the free variables),

.. math::

    \\frac{\\partial G_{u_j}}{\\partial \\log s_j}
        = -\\frac{a_1\\, \\mathrm{sign}(u_j)}{s_j} - \\frac{2 a_2 u_j}{s_j^2},

and zero on the other rows (a coefficient off a Lasso's support has
``u_j = 0``). Solves and adjoints are the base lower level's on the scaled
data ``X diag(s)``: with ``D = diag(s)`` on the coefficients (1 on the
intercepts), ``y_u = D y_w`` and ``v_u = D v_w`` where ``v_w`` solves the base
adjoint system for the right-hand side ``D g``, since ``G_u = D^{-1} G_w``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.sparse import issparse

from .base import LowerLevel
from .estimator_base import _matrix
from .linear_classifiers import _LinearClassifierLowerLevel
from .ridge import KernelRidgeLowerLevel, RidgeLowerLevel
from .sparse_regression import ElasticNetLowerLevel

#: The base lower levels whose coefficients a per-feature scale can reweight (their penalty
#: ``a_1 ||w||_1 + a_2/2 ||w||^2`` on the coefficients only is what the formula above needs).
SCALABLE = (RidgeLowerLevel, ElasticNetLowerLevel, _LinearClassifierLowerLevel)


def _penalty_coefficients(base, x_base):
    """``(a_1, a_2)`` of the base problem's penalty ``a_1 ||w||_1 + a_2 / 2 ||w||^2`` at ``x_base``."""
    if isinstance(base, ElasticNetLowerLevel):
        alpha, rho = base._hyper(x_base)
        return alpha * rho, alpha * (1.0 - rho)
    if isinstance(base, RidgeLowerLevel):
        return 0.0, 2.0 * base._alpha(x_base)  # Ridge's objective is ||r||^2 + alpha ||w||^2
    return 0.0, 1.0  # LogisticRegression and LinearSVC: 1/2 ||W||^2 + C * loss


def _scale_features(X, scale):
    """``X diag(scale)``, sparse kept sparse (CSR)."""
    return X.multiply(scale).tocsr() if issparse(X) else np.asarray(X, dtype=float) * scale


class FeatureScaledLowerLevel(LowerLevel):
    """A linear model's training problem with one searched scale ``s_j`` per feature (module docstring).

    Parameters
    ----------
    base_cls : type
        The estimator's lower level (:data:`SCALABLE`: Ridge, Lasso,
        ElasticNet, LogisticRegression, LinearSVC).
    estimator : scikit-learn estimator
        The final step, as for ``base_cls``.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold, before scaling.
    y : array of shape (n_samples,)
        Training targets or labels.
    names, scales : sequence of str
        The base problem's searched parameters and their scales.
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights.

    Attributes
    ----------
    n_hyper : int
        ``len(names) + n_features``: ``x = (x_base, log s)``.
    n_var : int
        The base problem's (``y = (u, b)``, one block per class).
    n_features : int
        The number of scales.
    feature : ndarray of int
        For each entry of ``y``, its feature, or -1 for an intercept.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: many hyperparameters (one regularisation weight per
       feature) tuned by the hypergradient of section 5.1, which costs one
       adjoint solve whatever their number.
    .. [2] Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort,
       J. Salmon, "Implicit differentiation of Lasso-type models for
       hyperparameter optimization", ICML 2020: the weighted Lasso, one
       penalty per feature.

    Examples
    --------
    A weighted Lasso; the hypergradient in ``(log alpha, log s)`` passes a
    central-difference check:

    >>> import numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.feature_scaling import FeatureScaledLowerLevel
    >>> from skbilevel.problems.sparse_regression import LassoLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 4))
    >>> t = X @ [1.0, -2.0, 0.0, 0.5] + 0.1 * rng.normal(size=40)
    >>> lower = FeatureScaledLowerLevel(LassoLowerLevel, Lasso(), X[:30], t[:30], ["alpha"], ["log"])
    >>> x = np.log([0.05, 1.0, 2.0, 0.5, 1.5])
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], t[30:]), lower)
    >>> y, ok = lower.solve(x)
    >>> F, grad, _ = hypergradient(problem, x, y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x, tol=1e-12)[0])
    >>> fd = [(h(x + 1e-6 * e) - h(x - 1e-6 * e)) / 2e-6 for e in np.eye(5)]
    >>> lower.n_hyper, np.allclose(grad, fd, rtol=1e-4, atol=1e-8)
    (5, True)
    """

    capabilities = frozenset({"solve", "adjoint", "cross_vjp"})

    def __init__(self, base_cls, estimator, X, y, names, scales, sample_weight=None):
        if not issubclass(base_cls, SCALABLE):
            raise ValueError(f"one scale per feature needs a linear model (Ridge, Lasso, ElasticNet, "
                             f"LogisticRegression, LinearSVC); got {type(estimator).__name__}")
        self.base_cls, self.estimator = base_cls, estimator
        self.X = _matrix(X)
        self.y, self.names, self.scales, self.sample_weight = y, tuple(names), tuple(scales), sample_weight
        self.n_features = self.X.shape[1]
        self.n_base = len(self.names)
        self.n_hyper = self.n_base + self.n_features
        self._cache = (None, None)
        first = self._base(np.ones(self.n_features))
        self.loss, self.n_var = first.loss, first.n_var
        if hasattr(first, "classes_"):
            self.classes_ = first.classes_
        self.feature = np.tile(np.append(np.arange(self.n_features), -1), getattr(first, "K", 1))

    def _base(self, s):
        """The base lower level on ``X diag(s)``.

        The last one is kept (a memo, not run state: any base gives the same
        answers at its ``s``), since a descent solves, differentiates and
        scores at one ``s`` in turn; the pair is read and replaced whole, so
        threads sharing the problem see a consistent one.
        """
        key, base = self._cache
        if key != s.tobytes():
            base = self.base_cls(self.estimator, _scale_features(self.X, s), self.y, self.names, self.scales,
                                 sample_weight=self.sample_weight)
            self._cache = (s.tobytes(), base)
        return base

    def split(self, x):
        """``(x_base, s)``: the base hyperparameters and the scales ``s = exp(x[n_base:])``."""
        x = np.asarray(x, dtype=float)
        return x[: self.n_base], np.exp(x[self.n_base:])

    def coefficient_scale(self, s):
        """``D``: ``s_j`` on the entries of ``y`` that are coefficients of feature ``j``, 1 on intercepts."""
        return np.where(self.feature >= 0, s[np.maximum(self.feature, 0)], 1.0)

    def encode_targets(self, y):
        return self._cache[1].encode_targets(y)

    def solve(self, x, y0=None, tol=1e-10):
        x_base, s = self.split(x)
        d = self.coefficient_scale(s)
        y_w, ok = self._base(s).solve(x_base, None if y0 is None else np.asarray(y0) / d, tol)
        return y_w * d, ok

    def adjoint(self, x, y, g):
        x_base, s = self.split(x)
        d = self.coefficient_scale(s)
        v_w, mu = self._base(s).adjoint(x_base, y / d, d * g)
        return d * v_w, mu

    def cross_vjp(self, x, y, v):
        x_base, s = self.split(x)
        d = self.coefficient_scale(s)
        base = self._base(s)
        grad_base = base.cross_vjp(x_base, y / d, v / d)
        a1, a2 = _penalty_coefficients(base, x_base)
        on = self.feature >= 0
        j, u = self.feature[on], y[on]
        term = v[on] * (-a1 * np.sign(u) / s[j] - 2.0 * a2 * u / s[j] ** 2)
        return np.concatenate([grad_base, np.bincount(j, weights=term, minlength=self.n_features)])

    def decision(self, x, y, X):
        # X diag(s) w + b = X u + b: the base model's decision on the unscaled data
        return self._cache[1].decision(self.split(x)[0], y, X)

    def decision_vjp(self, x, y, X, g):
        grad_base, grad_y = self._cache[1].decision_vjp(self.split(x)[0], y, X, g)
        return np.concatenate([grad_base, np.zeros(self.n_features)]), grad_y

    def value(self, x, y):
        x_base, s = self.split(x)
        return self._base(s).value(x_base, y / self.coefficient_scale(s))

    def grad_y(self, x, y):
        raise NotImplementedError


def _ard_contraction(M, Z_rows, Z_cols):
    """``c_j = sum_ik M_ik (Z_rows[i, j] - Z_cols[k, j])^2`` for every feature ``j``, in O(n m p)."""
    return (M.sum(axis=1) @ Z_rows**2 + M.sum(axis=0) @ Z_cols**2
            - 2.0 * np.einsum("ij,ij->j", Z_rows, M @ Z_cols))


class ARDKernelRidgeLowerLevel(LowerLevel):
    """KernelRidge (RBF) on features scaled by ``s``: one length scale ``1 / s_j`` per feature (ARD).

    With ``z = s * x`` the kernel is
    :math:`K_{ik} = \\exp(-\\gamma \\sum_j s_j^2 (x_{ij} - x_{kj})^2)`, so
    :math:`\\partial K_{ik} / \\partial \\log s_j = -2 \\gamma (z_{ij} - z_{kj})^2 K_{ik}`.
    The dual coefficients ``a`` solve :math:`(K + \\alpha S^{-1}) a = t` (the
    base problem on ``z``); the optimality map ``G = (K + \\alpha S^{-1}) a - t``
    gives :math:`v^T \\partial G / \\partial \\log s_j = -2\\gamma \\sum_{ik} v_i K_{ik} a_k (z_{ij} - z_{kj})^2`,
    and the decision values :math:`K(Z_{val}, Z) a` the same form with the
    validation rows.

    Parameters
    ----------
    base_cls : type
        :class:`~skbilevel.problems.ridge.KernelRidgeLowerLevel`.
    estimator : :class:`~sklearn.kernel_ridge.KernelRidge`
        With ``kernel='rbf'``.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold, before scaling (densified).
    y : array of shape (n_samples,)
        Training targets.
    names, scales : sequence of str
        The base problem's searched parameters (``alpha``, ``gamma``) and their scales.
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights.

    Attributes
    ----------
    n_hyper : int
        ``len(names) + n_features``.
    n_var : int
        The base problem's: the dual coefficients.
    n_features : int
        The number of scales.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: kernel hyperparameters by the hypergradient of
       section 5.1.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.feature_scaling import ARDKernelRidgeLowerLevel
    >>> from skbilevel.problems.ridge import KernelRidgeLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> t = np.sin(X[:, 0]) + 0.1 * rng.normal(size=40)
    >>> estimator = KernelRidge(kernel="rbf", alpha=0.1, gamma=0.5)
    >>> lower = ARDKernelRidgeLowerLevel(KernelRidgeLowerLevel, estimator, X[:30], t[:30], ["alpha"], ["log"])
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], t[30:]), lower)
    >>> x = np.log([0.1, 1.0, 0.5, 2.0])
    >>> a, _ = lower.solve(x)
    >>> F, grad, _ = hypergradient(problem, x, a)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> fd = [(h(x + 1e-6 * e) - h(x - 1e-6 * e)) / 2e-6 for e in np.eye(4)]
    >>> np.allclose(grad, fd, rtol=1e-5)
    True
    """

    capabilities = frozenset({"solve", "adjoint", "cross_vjp"})
    loss = "squared"

    def __init__(self, base_cls, estimator, X, y, names, scales, sample_weight=None):
        if estimator.get_params()["kernel"] != "rbf":
            raise ValueError("one length scale per feature needs KernelRidge(kernel='rbf')")
        self.base_cls, self.estimator = base_cls, estimator
        self.X = X.toarray() if issparse(X) else np.asarray(X, dtype=float)
        self.y, self.names, self.scales, self.sample_weight = y, tuple(names), tuple(scales), sample_weight
        self.n_features = self.X.shape[1]
        self.n_base = len(self.names)
        self.n_hyper = self.n_base + self.n_features
        self._cache = (None, None)
        self.n_var = self._base(np.ones(self.n_features)).n_var

    _base = FeatureScaledLowerLevel._base
    split = FeatureScaledLowerLevel.split

    def coefficient_scale(self, s):
        """Ones: the dual coefficients do not change coordinates with ``s``."""
        return np.ones(self.n_var)

    def encode_targets(self, y):
        return np.asarray(y, dtype=float)

    def solve(self, x, y0=None, tol=1e-10):
        x_base, s = self.split(x)
        return self._base(s).solve(x_base, y0, tol)

    def adjoint(self, x, y, g):
        x_base, s = self.split(x)
        return self._base(s).adjoint(x_base, y, g)

    def cross_vjp(self, x, y, v):
        x_base, s = self.split(x)
        base = self._base(s)
        gamma = base._hyper(x_base)[1]
        K = base._kernel(gamma, base.D)
        grad_s = -2.0 * gamma * _ard_contraction(np.outer(v, y) * K, base.X, base.X)
        return np.concatenate([base.cross_vjp(x_base, y, v), grad_s])

    def decision(self, x, y, X):
        x_base, s = self.split(x)
        return self._base(s).decision(x_base, y, _scale_features(X, s))

    def decision_vjp(self, x, y, X, g):
        x_base, s = self.split(x)
        base = self._base(s)
        Z = _scale_features(X, s)
        Z = Z.toarray() if issparse(Z) else Z
        grad_base, grad_y = base.decision_vjp(x_base, y, Z, g)
        gamma = base._hyper(x_base)[1]
        K = base._cross_kernel(gamma, Z)[0]
        grad_s = -2.0 * gamma * _ard_contraction(np.outer(g, y) * K, Z, base.X)
        return np.concatenate([grad_base, grad_s]), grad_y

    def value(self, x, y):
        x_base, s = self.split(x)
        return self._base(s).value(x_base, y)

    def grad_y(self, x, y):
        raise NotImplementedError


def per_feature_lower_level(base_cls):
    """The lower-level factory of a per-feature search: ``cls(estimator, X, y, names, scales, sample_weight)``.

    Parameters
    ----------
    base_cls : type
        The final step's lower level (linear models, or KernelRidge for ARD).

    Returns
    -------
    callable
        Builds :class:`FeatureScaledLowerLevel` or :class:`ARDKernelRidgeLowerLevel` on ``base_cls``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2) of section 4.1, here with
       one hyperparameter per feature.

    Examples
    --------
    >>> from skbilevel.problems.feature_scaling import per_feature_lower_level
    >>> from skbilevel.problems.ridge import KernelRidgeLowerLevel
    >>> per_feature_lower_level(KernelRidgeLowerLevel).func.__name__
    'ARDKernelRidgeLowerLevel'
    """
    cls = ARDKernelRidgeLowerLevel if issubclass(base_cls, KernelRidgeLowerLevel) else FeatureScaledLowerLevel
    return partial(cls, base_cls)
