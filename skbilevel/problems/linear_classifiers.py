"""Logistic regression and the linear SVC as lower levels of a cross-validation problem.

Both train ``K`` linear decision functions (``K = 1`` for two classes) and are
stored alike: ``y = Y.ravel()`` with ``Y = [W | b]`` of shape ``(K, p + 1)``.
The decision values are ``D = X W^T + beta b`` where ``beta`` is 1 for an
unpenalised intercept, ``intercept_scaling`` for liblinear's penalised
synthetic feature and 0 without an intercept (``b`` is then pinned at 0 by a
unit penalty that nothing else touches). The training objective is

.. math::

    f(C, y) = C\\, L(D) + \\tfrac12 \\|W\\|^2 + \\tfrac{\\rho}{2} \\|b\\|^2,

``rho`` in {0, 1}, so the optimality map ``G = grad_y f`` has the Jacobian
``H = C Xa^T Q Xa + diag(1, .., 1, rho)`` (``Xa = [X, beta 1]``, ``Q`` the
per-sample curvature of the loss) and ``d_C G = grad_y L``. ``H`` is formed
densely when ``K (p + 1) <= DENSE_LIMIT`` and otherwise applied matrix-free
inside conjugate gradients, preconditioned on dense ``X`` by the factorised
``H`` of an earlier point (see ``_preconditioner``). Sparse ``X`` stays
sparse throughout.

``D`` is a :class:`~skbilevel.problems.linear_model.LinearModel` (``'rows'``
layout) and ``L`` a per-sample datafit of :mod:`skbilevel.problems.datafits`
(:class:`~skbilevel.problems.datafits.Logistic` or
:class:`~skbilevel.problems.datafits.Multinomial` for logistic regression,
:class:`~skbilevel.problems.datafits.SquaredHinge` for the linear SVC), with
the per-sample weights of the estimator's ``fit``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve as dense_solve
from scipy.optimize import minimize
from scipy.sparse import issparse
from scipy.sparse.linalg import LinearOperator, cg
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_class_weight

from .datafits import Logistic, Multinomial, SquaredHinge
from .estimator_base import ClassifierLowerLevel, _matrix
from .linear_model import LinearModel, _weighted_gram

#: Largest number of variables ``K (p + 1)`` for which the Hessian is formed and factorised;
#: above it, CG on Hessian-vector products. Forming the Hessian costs ``n (p + 1)^2`` per
#: Newton step, CG a few dozen products of ``n (p + 1)`` each: CG is cheaper once ``p + 1``
#: is well above a few dozen.
DENSE_LIMIT = 200

#: At or below this tolerance a warm-started ``solve`` tries Newton from ``y0`` first (see ``solve``).
NEWTON_FIRST_TOL = 1e-6

#: With a dense Hessian (two classes, at most ``DENSE_LIMIT`` variables) L-BFGS stops at this relative
#: tolerance (or ``tol`` if looser) and Newton polishes to ``tol``, and at least to ``_POLISH_TOL``.
_LBFGS_TOL, _POLISH_TOL = 1e-4, 1e-8

#: Up to this many variables (dense ``X``), CG on ``H`` is preconditioned by ``H`` formed and factorised at an
#: earlier point of the fold, kept while ``C`` stays within ``_PRECONDITIONER_RANGE`` of the ``C`` it was
#: formed at: the curvature changes little between nearby points, and an adjoint of digits' multinomial
#: (650 variables) took 11-19 CG products with it against 135-191 without. Forming it costs about
#: ``n_var / 4`` products (one rank-k update), repaid within the first few solves of a fold.
_PRECONDITIONER_LIMIT = 1000
_PRECONDITIONER_RANGE = 10.0

#: Rows per chunk of ``[u_1 Xa, .., u_K Xa]`` in the multinomial Hessian (bounds its memory).
_CHUNK_ROWS = 2048

#: Relative residual of a CG adjoint solve: the default ``adjoint_tol`` of the hypergradient method's own
#: Krylov solves, far below what an outer tolerance of 1e-4 can tell apart.
_ADJOINT_RTOL = 1e-10

# Below this relative gradient norm double precision cannot resolve the objective further.
_ROUNDOFF = 1e3 * np.finfo(float).eps


class _LinearClassifierLowerLevel(ClassifierLowerLevel):
    """Shared algebra of the linear classifiers; subclasses give the pointwise loss."""

    hyperparameters = ("C",)
    capabilities = ClassifierLowerLevel.capabilities | {"hvp", "grad_x"}
    #: Newton's dense steps with the Hessian in single precision: the logistic loss's Newton converges
    #: on in double precision from steps accurate to about 1e-7, while the squared hinge's finite
    #: Newton method ends only on exact steps
    _single_precision_steps = False

    def _setup(self, K, beta, rho):
        self.X = _matrix(self.X)
        self.K, self.p = K, self.X.shape[1]
        self.beta, self.rho = float(beta), float(rho)
        self.linear = LinearModel(self.p, K, layout="rows", intercept_scaling=beta)
        self.n_var = self.linear.n_params
        self.pen = np.tile(np.append(np.ones(self.p), rho), K)  # diagonal of the penalty's Hessian
        self.idx = np.searchsorted(self.classes_, self.y)
        self.t = self.encode_targets(self.y)
        self.gauge = None  # unit null vector of H, if any (the multinomial's shared intercept shift)
        self._zero_gradient = None  # max |Xa^T dL(0)|, made at the first solve (a constant of the data)
        self._kept_factor = None  # (C, Cholesky factor) of the CG preconditioner, see _preconditioner
        C = self.params["C"]
        if "C" not in self.names and not np.isfinite(C):
            raise ValueError(f"{self._name} with C=inf is unregularised; the lower level needs a finite C")

    def _class_weights(self):
        """``class_weight`` resolved per class exactly as scikit-learn's ``fit`` does."""
        sw = np.ones(len(self.y)) if self.sample_weight is None else self.sample_weight
        cw = compute_class_weight(self.params["class_weight"], classes=self.classes_, y=self.y, sample_weight=sw)
        return sw, cw

    def _C(self, x):
        return self.values(x).get("C", self.params["C"])

    def _split(self, y):
        return self.linear.split(y)

    def coef_intercept(self, y):
        """Return ``(coef_, intercept_)`` as the fitted scikit-learn estimator holds them."""
        W, b = self._split(y)
        return W.copy(), self.beta * b

    def _raw(self, y, X):
        return self.linear.decision(y, X)

    def _back(self, M, X=None):
        """``Xa^T M`` laid out like ``y``: the adjoint of ``y -> D``."""
        return self.linear.adjoint(M, self.X if X is None else X)

    # -- objective, optimality map and its derivatives --------------------------
    def _value_grad(self, x, y):
        C = self._C(x)
        loss, dL = self._pointwise(self._raw(y, self.X))
        return C * loss + 0.5 * (self.pen * y) @ y, C * self._back(dL) + self.pen * y

    def value(self, x, y):
        return float(self._value_grad(x, y)[0])

    def grad_y(self, x, y):
        return self._value_grad(x, y)[1]

    def grad_x(self, x, y):
        return self._per_x(x, {"C": self._pointwise(self._raw(y, self.X))[0]})

    def cross_vjp(self, x, y, v):
        return self._per_x(x, {"C": v @ self._back(self._pointwise(self._raw(y, self.X))[1])})

    def _hess_matvec(self, x, y):
        """``v -> H v``; the curvature ``Q = diag(d) - u u^T`` (per sample) is computed once."""
        C = self._C(x)
        d, u = self._curvature(self._raw(y, self.X))

        def matvec(v):
            dD = self._raw(v, self.X)
            M = d * dD if u is None else d * dD - u * np.sum(u * dD, axis=1, keepdims=True)
            return C * self._back(M) + self.pen * v

        return matvec

    def hvp(self, x, y, v):
        return self._hess_matvec(x, y)(v)

    def _gram(self, w, single=False):
        """``Xa^T diag(w) Xa`` as a dense array (its ``X^T X`` part in single precision with ``single``)."""
        A, c = _weighted_gram(self.X, w, single), self.beta * np.asarray(self.X.T @ w).ravel()
        return np.block([[A, c[:, None]], [c[None, :], np.array([[self.beta**2 * w.sum()]])]])

    def _hessian(self, x, y, single=False):
        C, q = self._C(x), self.p + 1
        d, u = self._curvature(self._raw(y, self.X))
        if u is not None and not issparse(self.X):
            return self._multinomial_hessian(C, d, u, single)
        H = np.diag(self.pen)
        for k in range(self.K):  # a loop over classes: the blocks of Xa^T Q Xa
            for j in range(k, self.K) if u is not None else (k,):
                w = (d[:, k] if j == k else 0.0) - (0.0 if u is None else u[:, k] * u[:, j])
                block = C * self._gram(w, single)
                H[k * q:(k + 1) * q, j * q:(j + 1) * q] += block
                if j != k:
                    H[j * q:(j + 1) * q, k * q:(k + 1) * q] += block.T
        return H

    def _multinomial_hessian(self, C, d, u, single=False):
        """``C Xa^T Q Xa + diag(pen)`` for ``Q_i = diag(d_i) - u_i u_i^T`` on dense ``X``: the rank-one
        parts of all ``K^2`` blocks are ``M^T M`` with ``M = [u_1 Xa, .., u_K Xa]``, one symmetric
        rank-k update (by chunks of rows) in place of ``K (K + 1) / 2`` weighted Grams. With ``single``
        the products run in single precision (half the time; accurate to about 1e-7 of their norm:
        for a preconditioner or a Newton step whose gradient is checked in double precision)."""
        q, K, n = self.p + 1, self.K, self.X.shape[0]
        dtype = np.float32 if single else np.float64
        Xa = np.hstack([self.X, np.full((n, 1), self.beta)]).astype(dtype, copy=False)
        u = u.astype(dtype, copy=False)
        H = np.zeros((K * q, K * q), dtype=dtype)
        for start in range(0, n, _CHUNK_ROWS):
            rows = slice(start, start + _CHUNK_ROWS)
            M = (u[rows, :, None] * Xa[rows, None, :]).reshape(-1, K * q)
            H -= M.T @ M
        for k in range(K):
            block = slice(k * q, (k + 1) * q)
            H[block, block] += Xa.T @ (d[:, k, None].astype(dtype, copy=False) * Xa)
        H = H.astype(np.float64, copy=False)
        H *= C
        H[np.diag_indices_from(H)] += self.pen
        return H

    def _solve_hessian(self, x, y, rhs, rtol=1e-12, single=False):
        """Solve ``H v = rhs`` (orthogonally to the gauge direction, where ``H`` is singular); with
        ``single``, a dense ``H`` may be formed in single precision (a Newton step's)."""
        e = self.gauge
        if e is not None:
            # H e = 0 and the solution set is invariant along e, so y(x) is taken orthogonal to
            # e; then only the projected right-hand side matters, and H + e e^T (positive
            # definite) maps the e-orthogonal solution of H v = P rhs to P rhs: v = H^+ P rhs.
            rhs = rhs - e * (e @ rhs)
        if self.n_var <= DENSE_LIMIT:
            # single-precision steps for two classes only, as measured (tests cover C up to 1e4 there)
            H = self._hessian(x, y, single and self.K == 1)
            if e is not None:
                H += np.outer(e, e)
            try:
                return dense_solve(H, rhs, assume_a="pos", check_finite=False)
            except LinAlgError:
                if not single:
                    raise
                # rounding made the single-precision Hessian indefinite (a large C): form it exactly
                return self._solve_hessian(x, y, rhs, rtol)
        matvec = self._hess_matvec(x, y)
        op = LinearOperator((self.n_var, self.n_var), dtype=float,
                            matvec=matvec if e is None else (lambda v: matvec(v) + e * (e @ v)))
        v, _ = cg(op, rhs, rtol=rtol, atol=0.0, maxiter=10 * self.n_var, M=self._preconditioner(x, y))
        # exact arithmetic keeps CG's iterates orthogonal to e; a stopped CG run, or a preconditioner
        # factorised from a rounded H, leaves a component along it, which no gradient would ever remove
        return v if e is None else v - e * (e @ v)

    def _preconditioner(self, x, y):
        """``v -> (H_0 + e e^T)^{-1} v`` with ``H_0`` the Hessian at an earlier point of this fold whose ``C``
        lies within ``_PRECONDITIONER_RANGE`` of ``x``'s (formed here, at ``(x, y)``, when none does), or
        None: sparse ``X``, more than ``_PRECONDITIONER_LIMIT`` variables, or a factorisation that failed.

        The factor is kept on the fold's lower level (its data's, like ``_zero_gradient``): it only
        speeds CG up, whose answer is the same to its tolerance whichever factor it ran with.
        """
        if issparse(self.X) or self.n_var > _PRECONDITIONER_LIMIT:
            return None
        C, kept = self._C(x), self._kept_factor
        if kept is None or not 1 / _PRECONDITIONER_RANGE <= C / kept[0] <= _PRECONDITIONER_RANGE:
            kept = self._factor(x, y, single=True) or self._factor(x, y)
            if kept is None:
                return None
            self._kept_factor = kept
        factor = kept[1]
        return LinearOperator((self.n_var, self.n_var), dtype=float,
                              matvec=lambda v: cho_solve(factor, v, check_finite=False))

    def _factor(self, x, y, single=False):
        """``(C, Cholesky factor of H + e e^T)`` at ``(x, y)``, or None where it fails. With ``single``, of
        ``H`` formed in single precision: CG's answer does not depend on its preconditioner, only its speed,
        and rounding that leaves ``H`` indefinite (a large ``C``) shows as the failure."""
        H = self._hessian(x, y, single)
        if self.gauge is not None:
            H += np.outer(self.gauge, self.gauge)
        try:
            return self._C(x), cho_factor(H, check_finite=False)
        except LinAlgError:
            return None

    def __getstate__(self):
        # the kept factor (up to 8 MB) is not shipped to joblib workers with the fold: each forms its own
        return {**self.__dict__, "_kept_factor": None}

    def adjoint(self, x, y, g):
        return self._solve_hessian(x, y, g, rtol=_ADJOINT_RTOL), np.zeros(0)

    # -- solving -----------------------------------------------------------------
    def _fix_gauge(self, y):
        return y if self.gauge is None else y - self.gauge * (self.gauge @ y)

    def _gradient_scale(self, x):
        """``max |G(x, 0)| = C max |Xa^T dL(0)|`` (the penalty's gradient vanishes at 0): the yardstick of
        the relative tolerance. ``max |Xa^T dL(0)|`` is a constant of the data, computed once."""
        return self._C(x) * self._loss_gradient_at_zero()

    def _loss_gradient_at_zero(self):
        """``max |Xa^T dL(0)|``, the loss's part of the gradient at ``W = 0``, ``b = 0`` (computed once)."""
        if self._zero_gradient is None:
            dL = self._pointwise(self._raw(np.zeros(self.n_var), self.X))[1]
            self._zero_gradient = float(np.max(np.abs(self._back(dL)), initial=0.0))
        return self._zero_gradient

    def _newton(self, x, y, tol, max_iter=50):
        """Damped (generalised) Newton on ``f``: polishes a solver's output to ``tol`` relative.

        Converged when ``max |G| <= tol * max |G(0)|`` (``tol`` floored at round-off). For the
        piecewise quadratic squared hinge it stops after finitely many steps once the set of
        margin violators settles (Mangasarian's finite Newton method).
        """
        g0 = self._gradient_scale(x)
        target = max(tol, _ROUNDOFF) * g0
        y = self._fix_gauge(np.array(y, dtype=float))
        f, G = self._value_grad(x, y)
        for _ in range(max_iter):
            gmax = np.max(np.abs(G), initial=0.0)
            if gmax <= target:
                return y, True
            d = -self._solve_hessian(x, y, G, rtol=min(0.1, gmax / max(g0, 1e-300)),
                                     single=self._single_precision_steps)
            slope, step = G @ d, 1.0
            while step > 1e-12:
                f_new, G_new = self._value_grad(x, y + step * d)
                # Armijo, with slack for the round-off of f near the minimum
                if f_new <= f + 1e-4 * step * slope + 10 * np.finfo(float).eps * abs(f):
                    break
                step *= 0.5
            else:
                return y, False
            y, f, G = y + step * d, f_new, G_new
        return y, bool(np.max(np.abs(G), initial=0.0) <= target)

    def decision(self, x, y, X):
        D = self._raw(y, _matrix(X))
        return D[:, 0] if self.K == 1 else D

    def decision_vjp(self, x, y, X, g):
        return np.zeros(self.n_hyper), self._back(np.reshape(g, (g.shape[0], self.K)), _matrix(X))


class LogisticRegressionLowerLevel(_LinearClassifierLowerLevel):
    """Training problem of :class:`sklearn.linear_model.LogisticRegression` (L2 penalty; ``C``).

    .. math::

        f(C, W, b) = C \\sum_i s_i\\, \\ell(x_i^T W^T + b, t_i) + \\tfrac12 \\|W\\|^2,

    ``ell`` the logistic loss of ``t_i = +-1`` (two classes, one vector ``w``) or
    the softmax cross-entropy (``K`` classes, multinomial), ``s_i`` the sample
    weights times the class weights (``class_weight`` None, 'balanced' or a
    dict, resolved as ``fit`` does). The intercept is not penalised, except
    with ``solver='liblinear'``, which penalises it as the coefficient of a
    synthetic feature of value ``intercept_scaling`` (binary only).

    ``solve`` runs the L-BFGS-B iterations of scikit-learn's 'lbfgs' solver,
    warm started from ``y0``, whatever the estimator's ``solver`` (the problem
    is the same; liblinear's penalised intercept included), called directly
    on the same objective (see ``_lbfgs``). Newton steps of our own then bring
    the gradient to ``tol`` relative: on the dense Hessian for two classes and
    at most ``DENSE_LIMIT`` variables, where L-BFGS stops at 1e-4 and Newton
    goes on to at least 1e-8, else with conjugate-gradient steps after an
    L-BFGS run to ``tol``.

    The multinomial loss is invariant to a shift of all intercepts by one
    constant, so with unpenalised intercepts ``H`` is singular along it; the
    solution is taken with intercepts summing to zero (scikit-learn's own
    convention) and the adjoint is ``H^+ P g`` (see ``_solve_hessian``).

    Parameters
    ----------
    estimator : :class:`~sklearn.linear_model.LogisticRegression`
        The estimator; it needs the L2 penalty (``ValueError``
        otherwise); ``fit_intercept``, ``solver`` (liblinear or not),
        ``intercept_scaling``, ``class_weight`` and, when not searched, ``C``
        are read from it.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (kept sparse, as CSR, when sparse).
    y : array of shape (n_samples,)
        Training labels of the fold: two classes or more.
    names : sequence of str
        ``['C']`` (or empty).
    scales : sequence of {'log', 'linear'}
        The scale of ``C`` (``'log'`` usually).
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights, as in ``fit``.

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('C',)``.
    loss : str
        ``'log'``: the validation loss of the decision values.
    classes_ : ndarray
        The sorted training labels.
    K : int
        Number of decision functions: 1 for two classes, else the number
        of classes.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``K (n_features + 1)``: the variable is ``y = [W | b].ravel()``.
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp', 'hvp', 'grad_x'}``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2)
       of section 4.1 with the cross-entropy loss; the hypergradient by
       implicit differentiation of the stationarity condition (5.4),
       section 5.1 (regularised logistic regression is that section's
       example of a strongly convex, twice differentiable lower level).
    .. [2] scikit-learn, :class:`sklearn.linear_model.LogisticRegression`
       with ``penalty='l2'``: the objective ``1/2 ||W||^2 + C sum_i s_i
       ell_i`` above.

    Examples
    --------
    The solution matches ``LogisticRegression.fit`` (run to a tight tolerance), and
    the hypergradient of the validation loss in ``log(C)`` passes a
    central-difference check:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.linear_classifiers import LogisticRegressionLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> labels = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    >>> lower = LogisticRegressionLowerLevel(LogisticRegression(C=1.0), X[:30], labels[:30], names=["C"], scales=["log"])
    >>> y, ok = lower.solve(np.zeros(1))
    >>> fitted = LogisticRegression(C=1.0, tol=1e-10).fit(X[:30], labels[:30])
    >>> coef, intercept = lower.coef_intercept(y)
    >>> lower.n_hyper, lower.n_var, ok, np.allclose(coef, fitted.coef_, atol=1e-6)
    (1, 4, True, True)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], labels[30:]), lower)
    >>> F, grad, _ = hypergradient(problem, np.zeros(1), y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> bool(np.isclose(grad[0], (h([1e-6]) - h([-1e-6])) / 2e-6, rtol=1e-5))
    True
    """

    loss = "log"
    _single_precision_steps = True
    _name = "LogisticRegression"

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        self._check_params()
        fit_intercept = bool(self.params["fit_intercept"])
        self.liblinear = self.params["solver"] == "liblinear"
        K = 1 if self.binary else self.classes_.size
        if not fit_intercept:
            self._setup(K, 0.0, 1.0)
        elif self.liblinear:
            self._setup(K, self.params["intercept_scaling"], 1.0)
        else:
            self._setup(K, 1.0, 0.0)
            if K > 1:
                self.gauge = np.tile(np.append(np.zeros(self.p), 1.0), K) / np.sqrt(K)
        sw, cw = self._class_weights()
        self.s = sw * cw[self.idx]
        self.datafit = Logistic(self.t) if K == 1 else Multinomial.from_indices(self.t, K)

    def _check_params(self):
        P = self.params
        penalty, l1_ratio = P.get("penalty", "deprecated"), P.get("l1_ratio")
        l2 = l1_ratio in (None, 0) if penalty == "deprecated" else penalty == "l2" or (
            penalty == "elasticnet" and l1_ratio == 0)
        if not l2:
            raise ValueError(f"LogisticRegression hypergradients need the L2 penalty (l1_ratio=0); got "
                             f"penalty={penalty!r}, l1_ratio={l1_ratio!r} (L1, elastic-net and no penalty "
                             "are not differentiable in C this way)")
        if P.get("dual"):
            raise ValueError("LogisticRegression(dual=True) is not supported; use dual=False (same problem)")
        if P["solver"] == "liblinear" and not self.binary:
            raise ValueError("LogisticRegression(solver='liblinear') does not support multi-class targets")
        if P.get("multi_class", "auto") == "ovr" and not self.binary:
            raise ValueError("LogisticRegression(multi_class='ovr') is not supported; use the multinomial loss")

    def _pointwise(self, D):
        """Weighted loss sum and its derivative in ``D``."""
        if self.K == 1:
            loss, dD = self.datafit.loss_and_raw_grad(D[:, 0])
            return self.s @ loss, (self.s * dD)[:, None]
        loss, dD = self.datafit.loss_and_raw_grad(D)
        return self.s @ loss, self.s[:, None] * dD

    def _curvature(self, D):
        """Per-sample Hessian in ``D`` as ``diag(d) - u u^T``."""
        if self.K == 1:
            d, u = self.datafit.curvature(D[:, 0], self.s)
            return d[:, None], u
        return self.datafit.curvature(D, self.s)

    def _lbfgs(self, x, y0=None, tol=1e-10):
        """scikit-learn's 'lbfgs' solver, ``(y, n_iter)``: its L-BFGS-B call on its objective ``f / (C sum s)``.

        Called directly rather than through ``LogisticRegression.fit``, whose
        per-fit validation and set-up cost a large share of a warm solve,
        for the same iterates.
        """
        scale = 1.0 / (self._C(x) * self.s.sum())

        def fun(y):
            f, g = self._value_grad(x, y)
            return f * scale, g * scale

        start = np.zeros(self.n_var) if y0 is None else np.asarray(y0, dtype=float)
        res = minimize(fun, start, jac=True, method="L-BFGS-B",
                       options={"maxiter": 1000, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
        return res.x, int(res.nit)

    def solve(self, x, y0=None, tol=1e-10):
        if y0 is not None and tol <= NEWTON_FIRST_TOL:
            # A tight tolerance with a warm start is a re-solve at or next to a solved point
            # (a descent's first point re-solves a grid point; line-search trials lie next to
            # the last one): Newton from it takes a few steps, where L-BFGS restarts without
            # curvature memory.
            y0, ok = self._newton(x, y0, tol, max_iter=10)
            if ok:
                return y0, ok
            # else L-BFGS goes on from Newton's last (better) iterate
        if self.K == 1 and self.n_var <= DENSE_LIMIT:
            # L-BFGS to the compared points' tolerance, then Newton on the dense Hessian: quadratic
            # convergence makes the last digits cheap, and a point solved to _POLISH_TOL is the same
            # whatever the BLAS's summation order (L-BFGS stopped at a loose tolerance is not: a Dask
            # worker's scores then differed from the sequential run's)
            y, _ = self._lbfgs(x, y0, tol=self._lbfgs_tol(x, max(tol, _LBFGS_TOL)))
            return self._newton(x, y, min(tol, _POLISH_TOL))
        # the multinomial, or many features: Newton's steps are CG solves, and L-BFGS goes to ``tol``
        y, _ = self._lbfgs(x, y0, tol=self._lbfgs_tol(x, tol))
        return self._newton(x, y, tol)

    def comparison_tol(self, tol):
        """``tol``, or the relative tolerance at which scikit-learn's 'lbfgs' solver stops where it is looser
        (up to ``10 tol``).

        scikit-learn stops when ``max |grad|`` of ``f / (C sum s)`` is at most the estimator's ``tol``
        (absolute); the relative tolerance of :meth:`solve` measures ``max |grad f|`` against its value at
        ``W = 0``, so that one reads ``tol / g0`` with ``g0 = max |Xa^T dL(0)| / sum s``, which does not
        depend on ``C``. On standardised features ``g0`` is below 1 (scikit-learn's test is the looser:
        points compared no more precisely than GridSearchCV's fits are); on large unscaled features it is
        above, and ``tol`` keeps the comparison scale-free. Two classes with a dense Hessian keep ``tol``:
        there Newton polishes every point to ``_POLISH_TOL`` anyway, and from a looser L-BFGS start it
        forms more Hessians than the L-BFGS iterations saved.
        """
        g0 = self._loss_gradient_at_zero() / self.s.sum()
        if not g0 > 0 or (self.K == 1 and self.n_var <= DENSE_LIMIT):
            return tol
        return float(np.clip(self.params["tol"] / g0, tol, 10 * tol))

    def _lbfgs_tol(self, x, tol):
        """The relative tolerance ``tol`` in the scaling of :meth:`_lbfgs` (the gradient of ``f / (C sum s)``)."""
        return max(tol * self._gradient_scale(x) / (self._C(x) * self.s.sum()), 1e-14)


class LinearSVCLowerLevel(_LinearClassifierLowerLevel):
    """Training problem of :class:`sklearn.svm.LinearSVC` (squared hinge, L2 penalty; ``C``).

    liblinear's primal, for each of the ``K`` one-vs-rest problems (one for two classes),

    .. math::

        f(C, w, b) = \\tfrac12 \\|[w, b]\\|^2 + C \\sum_i s_i \\max(0, 1 - t_i (x_i^T w + \\beta b))^2,

    ``beta = intercept_scaling`` (``intercept_ = beta b``; the intercept is
    penalised), ``t_i = +-1``, and ``s_i`` the sample weight times the class
    weight of the positive class for its members, 1 for the rest (liblinear's
    one-vs-rest weighting; with two classes each sample gets its class's weight).
    ``dual`` True, False or 'auto' all solve this problem. ``G = grad f`` is
    piecewise linear; its generalised Jacobian ``I + 2C Xa_A^T S_A Xa_A`` over the
    margin violators ``A`` is used (the map has a kink where a margin is exactly 1).

    ``solve``: liblinear cannot be warm started and stops at a loose
    tolerance, so without ``y0`` it runs liblinear and polishes the result by
    generalised Newton steps; with ``y0`` it runs Newton from ``y0`` directly
    (finitely many steps once the violator set settles), and falls back to
    liblinear if that fails.

    Parameters
    ----------
    estimator : :class:`~sklearn.svm.LinearSVC`
        The estimator; it needs ``penalty='l2'``,
        ``loss='squared_hinge'`` and ``multi_class='ovr'`` (``ValueError``
        otherwise); ``fit_intercept``, ``intercept_scaling``, ``dual``,
        ``class_weight`` and, when not searched, ``C`` are read from it.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (kept sparse, as CSR, when sparse).
    y : array of shape (n_samples,)
        Training labels of the fold: two classes or more.
    names : sequence of str
        ``['C']`` (or empty).
    scales : sequence of {'log', 'linear'}
        The scale of ``C`` (``'log'`` usually).
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights, as in ``fit``.

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('C',)``.
    loss : str
        ``'squared_hinge'``: the validation loss of the decision values.
    classes_ : ndarray
        The sorted training labels.
    K : int
        Number of decision functions: 1 for two classes, else the number
        of classes.
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``K (n_features + 1)``: the variable is ``y = [W | b].ravel()``.
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp', 'hvp', 'grad_x'}``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the training problem (4.2)
       of section 4.1 (a support vector problem with linear kernel); the
       hypergradient by implicit differentiation, section 5.1, here with
       the generalised Jacobian of the piecewise linear ``G``.
    .. [2] scikit-learn, :class:`sklearn.svm.LinearSVC` (liblinear's
       L2-regularised L2-loss SVC): the objective ``1/2 ||[w, b]||^2 +
       C sum_i s_i max(0, 1 - t_i (x_i^T w + beta b))^2`` above.

    Examples
    --------
    The solution matches ``LinearSVC.fit`` (run to a tight tolerance), and
    the hypergradient of the validation loss in ``log(C)`` passes a
    central-difference check:

    >>> import numpy as np
    >>> from sklearn.svm import LinearSVC
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.linear_classifiers import LinearSVCLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> labels = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    >>> lower = LinearSVCLowerLevel(LinearSVC(C=1.0), X[:30], labels[:30], names=["C"], scales=["log"])
    >>> y, ok = lower.solve(np.zeros(1))
    >>> fitted = LinearSVC(C=1.0, tol=1e-10, max_iter=100_000).fit(X[:30], labels[:30])
    >>> coef, intercept = lower.coef_intercept(y)
    >>> lower.n_hyper, lower.n_var, ok, np.allclose(coef, fitted.coef_, atol=1e-5)
    (1, 4, True, True)
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], labels[30:]), lower)
    >>> F, grad, _ = hypergradient(problem, np.zeros(1), y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> bool(np.isclose(grad[0], (h([1e-6]) - h([-1e-6])) / 2e-6, rtol=1e-5))
    True
    """

    loss = "squared_hinge"
    _name = "LinearSVC"

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        P = self.params
        for key, allowed in (("penalty", "l2"), ("loss", "squared_hinge"), ("multi_class", "ovr")):
            if P[key] != allowed:
                raise ValueError(f"LinearSVC hypergradients need {key}={allowed!r}; got {P[key]!r}")
        if P["fit_intercept"] and P["intercept_scaling"] <= 0:
            raise ValueError("LinearSVC needs intercept_scaling > 0 to fit an intercept")
        K = 1 if self.binary else self.classes_.size
        self._setup(K, P["intercept_scaling"] if P["fit_intercept"] else 0.0, 1.0)
        sw, cw = self._class_weights()
        if self.binary:
            self.S, self.T = (sw * cw[self.idx])[:, None], self.t[:, None]
        else:
            member = self.idx[:, None] == np.arange(K)
            self.S = sw[:, None] * np.where(member, cw[None, :], 1.0)
            self.T = np.where(member, 1.0, -1.0)
        self.datafit = SquaredHinge(self.T)

    def _pointwise(self, D):
        return np.sum(self.S * self.datafit.loss(D)), self.S * self.datafit.raw_grad(D)

    def _curvature(self, D):
        return self.datafit.curvature(D, self.S)

    def _fit_liblinear(self, C, tol=1e-8):
        P = self.params
        est = LinearSVC(C=C, loss="squared_hinge", dual=P["dual"], tol=tol, max_iter=100_000,
                        fit_intercept=P["fit_intercept"], intercept_scaling=P["intercept_scaling"],
                        class_weight=P["class_weight"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(self.X, self.y, sample_weight=self.sample_weight)
        b = np.broadcast_to(est.intercept_, (self.K,)) / (self.beta or 1.0)
        return np.column_stack([est.coef_, b]).ravel()

    def solve(self, x, y0=None, tol=1e-10):
        if y0 is not None:
            y, ok = self._newton(x, y0, tol)
            if ok:
                return y, ok
        return self._newton(x, self._fit_liblinear(self._C(x)), tol)
