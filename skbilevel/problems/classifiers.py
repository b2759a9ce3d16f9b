"""Sample-weighted softmax classifiers: the lower levels of data hyper-cleaning.

Data hyper-cleaning as in the perturbed-gradient paper (2025), section 5.1,
and Liu et al. (2021), section 6.2 (see the classes' References).

Each training sample ``i`` has a hyperparameter ``x_i`` and the weight
``sigma(x_i)`` in (0, 1); the lower level is the weighted, L2-penalised
cross-entropy

.. math::

    f(x, \\theta) = \\frac1n \\sum_{i=1}^n s_i\\, \\sigma(x_i)\\, \\ell_i(\\theta)
        + \\frac{\\alpha}{2} \\|W\\|^2, \\qquad
    \\ell_i(\\theta) = \\operatorname{logsumexp}(z_i) - z_{i, y_i},

with logits ``z_i = phi(theta, a_i)`` of a linear model
(:class:`WeightedSoftmaxRegression`, the multinomial logistic regression) or
of a one-hidden-layer ReLU network (:class:`WeightedMLP`); ``s`` are fixed
sample weights and ``W`` are all weight matrices (the intercepts get only
a ridge of ``1e-8``, which fixes the softmax's invariance to a common
shift). Every derivative is analytic: gradients by back-propagation,
Hessian-vector products by the forward-over-reverse R-operator (Pearlmutter),
exact where the ReLU is differentiable (everywhere but on a null set).

Both classes share :class:`_WeightedSoftmaxModel`; a model only supplies its
logits, their vector-Jacobian and Jacobian-vector products and, if it is
not linear in ``theta``, the curvature term of its Hessian. The
cross-entropy, its gradient and Hessian in the logits are the
:class:`~skbilevel.problems.datafits.Multinomial` datafit; the linear
model's logits are a :class:`~skbilevel.problems.linear_model.LinearModel`
(``'columns'`` layout), and :class:`CrossEntropyValidationLoss` is one of
the validation losses of :mod:`skbilevel.problems.losses`.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.sparse as sp
from scipy.linalg import LinAlgError, lstsq, solve as dense_solve
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import expit
from threadpoolctl import ThreadpoolController

from .base import LowerLevel
from .datafits import Multinomial
from .linear_model import LinearModel, _weighted_gram
from .losses import DatafitValidationLoss

# The softmax is invariant to adding one constant to all intercepts; this tiny
# ridge on the intercepts makes the lower-level solution unique (and its
# Hessian invertible) without changing predictions measurably.
_INTERCEPT_RIDGE = 1e-8


# Gradient norms: the smallest asked of the lower-level solver, the one at which L-BFGS
# hands over to plain Newton steps, and the number of those (see ``solve``).
_GTOL_FLOOR = 1e-14
_QUASI_NEWTON_GTOL = 1e-8
_POLISH_STEPS = 5
_POLISH_CG_ITER = 200

# Up to this many parameters the linear model forms its Hessian (K (K + 1) / 2 products of the data
# with itself) and takes dense Newton steps; above, Hessian-vector products in a Krylov solver cost
# less. On small models each of those products costs more in interpreter overhead than in arithmetic.
_DENSE_NEWTON_LIMIT = 300
# Armijo's sufficient decrease for the Newton steps
_ARMIJO = 1e-4
# Above _DENSE_NEWTON_LIMIT, CG is preconditioned by a Kronecker factorisation of the Hessian (see
# WeightedSoftmaxRegression.preconditioner) up to this many features plus one: its factor is a dense
# (p + 1) x (p + 1) matrix with its eigendecomposition, 5 MB and a tenth of a second at MNIST's 785.
_PRECONDITIONER_FEATURES = 2000
# CG iterations per preconditioned Newton step at most
_NEWTON_CG_ITER = 500

# Relative change of the objective below which two values are taken to differ by rounding alone
_ROUNDING = 1e3 * np.finfo(float).eps


@cache
def _blas_controller():
    """The BLAS libraries loaded in this process, found once: a lookup reads the process's memory map,
    which on small data costs more than the solve it limits."""
    return ThreadpoolController()


def _data_product(X, M):
    """``X @ M`` in the precision of the data ``X`` (float32 or float64), returned in float64.

    The products with the data are nearly all of a network's cost; float32 data
    (kept as given, as scikit-learn's ``MLPClassifier`` keeps it) runs them at
    twice the speed, rounded to float32 (relative error about 1e-7), while the
    parameters, the solver and the rest of the network stay in float64. For
    float64 data nothing is converted: the result is ``X @ M`` to the bit.
    """
    dtype = np.float32 if X.dtype == np.float32 else np.float64  # integer data is not a precision
    return np.asarray(X @ M.astype(dtype, copy=False), dtype=np.float64)


class _WeightedSoftmaxModel(LowerLevel):
    """Weighted cross-entropy of a softmax classifier; subclasses define the logits."""

    capabilities = frozenset({"grad_x", "hvp", "cross_vjp", "solve"})

    def __init__(self, X, Y, *, alpha: float = 1e-3, sample_weight=None, max_iter: int = 2000):
        self.X = X
        self.max_iter = int(max_iter)
        self.Y = np.asarray(Y, dtype=float)  # one-hot, (n, K)
        self.datafit = Multinomial(self.Y)
        n, self.n_classes = self.Y.shape
        self.n_samples, self.n_features = X.shape
        self.alpha = float(alpha)
        self.sample_weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        self.n_hyper = n

    # -- what a model supplies ---------------------------------------------------
    def forward(self, theta, X):
        """Return ``(logits, cache)`` of the rows of ``X``."""
        raise NotImplementedError

    def backward(self, theta, cache, G):
        """Return ``d(sum(G * logits)) / d theta``."""
        raise NotImplementedError

    def jvp(self, theta, cache, V):
        """Return the directional derivative of the logits along ``V``."""
        raise NotImplementedError

    def curvature(self, theta, cache, G, V):
        """Second-order term ``d/dt [backward(theta + t V, cache, G)]`` (zero for a linear model)."""
        return np.zeros_like(theta)

    def penalty_diag(self):
        """Per-parameter ridge: ``alpha`` on weights, ``_INTERCEPT_RIDGE`` on intercepts."""
        raise NotImplementedError

    # -- the weighted loss -------------------------------------------------------
    def weights(self, x):
        """Sample weights ``s_i sigma(x_i)`` (before the ``1/n``)."""
        return self.sample_weight * expit(x)

    def sample_logits(self, x):
        """The per-sample ``x_i`` whose sigmoid weights sample ``i`` (here ``x`` itself)."""
        return x

    def _weight_derivative(self, x):
        sig = expit(x)
        return self.sample_weight * sig * (1.0 - sig)

    def logits(self, theta, X):
        """Logits of the rows of ``X`` under the parameters ``theta``."""
        return self.forward(theta, X)[0]

    def per_sample_loss(self, theta):
        """Cross-entropy ``l_i(theta)`` of every training sample."""
        Z, _ = self.forward(theta, self.X)
        return self.datafit.loss(Z)

    def value(self, x, theta):
        ridge = self.penalty_diag()
        return float(self.weights(x) @ self.per_sample_loss(theta)) / self.n_samples + 0.5 * ridge @ theta**2

    def grad_y(self, x, theta):
        return self.value_and_grad_y(x, theta)[1]

    def value_and_grad_y(self, x, theta):
        """``(f(x, theta), grad_y f(x, theta))`` from one forward pass (what L-BFGS asks for)."""
        Z, cache = self.forward(theta, self.X)
        loss, dZ = self.datafit.loss_and_raw_grad(Z)
        w = self.weights(x) / self.n_samples
        ridge = self.penalty_diag()
        value = float(w @ loss) + 0.5 * ridge @ theta**2
        return value, self.backward(theta, cache, w[:, None] * dZ) + ridge * theta

    def grad_x(self, x, theta):
        return self._weight_derivative(x) * self.per_sample_loss(theta) / self.n_samples

    def hvp(self, x, theta, v):
        return self.hvp_operator(x, theta)(v)

    def hvp_operator(self, x, theta):
        """``v -> grad^2_yy f(x, theta) v`` with the forward pass at ``theta`` done once.

        A Krylov solve applies the Hessian at one point hundreds of times; the
        logits, softmax and activations do not change between products, so
        each product costs one ``jvp`` and one ``backward`` (2 passes over the
        data instead of 3).
        """
        Z, cache = self.forward(theta, self.X)
        P = self.datafit.probabilities(Z)
        w = (self.weights(x) / self.n_samples)[:, None]
        G = w * (P - self.Y)
        ridge = self.penalty_diag()
        linear = type(self).curvature is _WeightedSoftmaxModel.curvature

        def apply(v):
            RG = w * self.datafit.hessian_product(P, self.jvp(theta, cache, v))
            Hv = self.backward(theta, cache, RG) + ridge * v
            return Hv if linear else Hv + self.curvature(theta, cache, G, v)

        return apply

    def cross_vjp(self, x, theta, v):
        Z, cache = self.forward(theta, self.X)
        RZ = self.jvp(theta, cache, v)
        return self._weight_derivative(x) * np.sum(self.datafit.raw_grad(Z) * RZ, axis=1) / self.n_samples

    def solve(self, x, y0=None, tol: float = 1e-10, max_iter: int | None = None):
        """Minimise ``f(x, .)`` from ``y0``: a first solver, then Newton steps on the analytic Hessian.

        The first solver is trust-region Newton-CG for a convex model (a few
        steps from a warm start) and L-BFGS otherwise (robust across the ReLU's
        kinks, where a second-order model is poor); it runs until the gradient
        norm is ``1e-8`` (or the target, if larger), where comparisons of
        objective values reach rounding level. Plain Newton steps (CG on Hessian-vector
        products) then polish the point, each accepted while the gradient norm
        falls; for a non-convex model only when L-BFGS met its tolerance (where
        it stops short, on the ReLU network's kinks, the Newton steps fail
        too). The target is ``tol`` times the gradient norm at the start (times 1
        when that norm is below 1), at least ``1e-14``. ``y0`` defaults to :meth:`initial_parameters`;
        ``max_iter`` (default: the model's ``max_iter``) bounds the first
        solver's iterations. Returns ``(theta, converged)``.
        """
        max_iter = self.max_iter if max_iter is None else int(max_iter)
        # the products here are small (n_samples x n_hidden); BLAS threads cost more than they
        # bring (their start-up dominates products this small), as in scikit-learn's KMeans
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._solve(x, y0, tol, max_iter)

    def _solve(self, x, y0, tol, max_iter):
        theta = self.initial_parameters() if y0 is None else np.asarray(y0, dtype=float)
        gtol = max(tol * max(np.linalg.norm(self.grad_y(x, theta)), 1.0), _GTOL_FLOOR)
        first_gtol = max(gtol, _QUASI_NEWTON_GTOL)
        if self.convex:  # smooth and convex: trust-region Newton-CG takes a few steps from a warm start
            last = {}

            def hessp(t, v):  # trust-ncg asks for many products at one point
                if last.get("key") != t.tobytes():
                    last.update(key=t.tobytes(), op=self.hvp_operator(x, t))
                return last["op"](v)

            res = minimize(lambda t: self.value(x, t), theta, jac=lambda t: self.grad_y(x, t),
                           hessp=hessp, method="trust-ncg",
                           options={"maxiter": max_iter, "gtol": first_gtol})
        else:
            res = minimize(lambda t: self.value_and_grad_y(x, t), theta, jac=True, method="L-BFGS-B",
                           options={"maxiter": max_iter, "gtol": first_gtol / np.sqrt(self.n_var),
                                    "ftol": 0.0, "maxcor": 20})
        theta, grad = res.x, self.grad_y(x, res.x)
        # Where L-BFGS stopped short of its tolerance on the network (its budget, or a line search
        # failing on a ReLU kink), Newton steps are rejected as well: each attempt would cost up to
        # _POLISH_CG_ITER Hessian products, most of a solve, and return the same point.
        polish = self.convex or res.success
        for _ in range(_POLISH_STEPS if polish else 0):
            if np.linalg.norm(grad) <= gtol:
                break
            op = LinearOperator((self.n_var, self.n_var), matvec=self.hvp_operator(x, theta))
            step, _ = cg(op, -grad, rtol=min(0.1, 1e-3 * gtol / np.linalg.norm(grad)),
                         maxiter=min(self.n_var, _POLISH_CG_ITER))
            new_grad = self.grad_y(x, theta + step)
            if np.linalg.norm(new_grad) >= np.linalg.norm(grad):
                break
            theta, grad = theta + step, new_grad
        return theta, bool(np.linalg.norm(grad) <= gtol)

    def initial_parameters(self):
        """Zeros (the linear model); a model with hidden units overrides this."""
        return np.zeros(self.n_var)


class WeightedSoftmaxRegression(_WeightedSoftmaxModel):
    """Multinomial logistic regression with per-sample weights ``sigma(x_i)``.

    ``theta = (W, b)`` with ``W`` of shape ``(n_features, n_classes)``, flattened row-major.

    The lower level ``f(x, theta)`` of the module docstring with the logits
    ``z_i = a_i^T W + b``: convex in ``theta`` (strictly, through the tiny
    ridge ``1e-8`` on the intercepts that fixes the softmax's shift
    invariance). :meth:`solve` takes Newton steps from zeros (or the warm
    start): on the dense Hessian up to 300 parameters; above, by conjugate
    gradients preconditioned with a Kronecker factorisation of the Hessian
    (:meth:`preconditioner`, which the adjoint solves of the hypergradient
    use too) up to 2,000 features, and by trust-region Newton-CG beyond.
    The lower level of :class:`~skbilevel.HyperCleaningClassifier` with
    ``model='logistic'``.

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples ``a_i``.
    Y : array of shape (n_samples, n_classes)
        One-hot training labels (possibly corrupted).
    alpha : float, default=1e-3
        L2 penalty on ``W``: the term ``alpha/2 ||W||^2``.
    sample_weight : array of shape (n_samples,), optional
        Fixed weights ``s_i`` (all 1 when None).
    max_iter : int, default=2000
        Iterations of the first solver per :meth:`solve` call.

    Attributes
    ----------
    n_hyper : int
        ``n_samples``: one hyperparameter ``x_i`` per training sample.
    n_var : int
        ``(n_features + 1) n_classes``.
    capabilities : frozenset of str
        ``{'grad_x', 'hvp', 'cross_vjp', 'solve'}``, with ``'adjoint'`` (a
        dense solve) up to 300 parameters and ``'preconditioner'`` above,
        up to 2,000 features.
    n_samples, n_features, n_classes : int
        The shape of the training data.

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", paper under
       double-blind review, 2025: data
       hyper-cleaning, section 5.1 (the linear classifier ``a_i^T y``), lower level
       ``1/N_tr sum_i sigma(x_i) L(.) + lambda ||y||^2`` with ``lambda = 0.001``
       (here ``lambda ||y||^2`` is ``alpha/2 ||W||^2``, intercepts excluded).
    .. [2] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", ICML 2021,
       PMLR 139: data hyper-cleaning, section 6.2, the lower
       level (31), ``sum_i sigma(x_i) CE`` (there of a network).
    .. [3] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: data reweighting ``sigma(x_i) ell`` in section
       4.1, (4.2).

    Examples
    --------
    Solve the lower level at ``x = 0`` (all weights ``sigma(0) = 1/2``),
    check ``grad_x f`` by central differences, and the hypergradient of the
    validation cross-entropy likewise:

    >>> import numpy as np
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.classifiers import CrossEntropyValidationLoss, WeightedSoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(12, 4)), np.eye(3)[rng.integers(0, 3, size=12)]
    >>> lower = WeightedSoftmaxRegression(X[:8], Y[:8], alpha=0.1)
    >>> x = np.zeros(8)
    >>> theta, converged = lower.solve(x)
    >>> lower.n_hyper, lower.n_var, converged
    (8, 15, True)
    >>> e = 1e-6 * np.eye(8)[0]
    >>> bool(np.isclose((lower.value(x + e, theta) - lower.value(x - e, theta)) / 2e-6,
    ...                 lower.grad_x(x, theta)[0]))
    True
    >>> problem = BilevelProblem(CrossEntropyValidationLoss(lower, X[8:], Y[8:]), lower)
    >>> F, grad, _ = hypergradient(problem, x, theta)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x, theta, tol=1e-14)[0])
    >>> bool(np.isclose(grad[0], (h(x + e) - h(x - e)) / 2e-6, rtol=1e-5))
    True
    """

    def __init__(self, X, Y, *, alpha: float = 1e-3, sample_weight=None, max_iter: int = 2000):
        super().__init__(X, Y, alpha=alpha, sample_weight=sample_weight, max_iter=max_iter)
        self.linear = LinearModel(self.n_features, self.n_classes, layout="columns")
        self.n_var = self.linear.n_params
        if self.n_var <= _DENSE_NEWTON_LIMIT:  # the adjoint system is solved on the dense Hessian too
            self.capabilities = type(self).capabilities | {"adjoint"}
        elif self.n_features < _PRECONDITIONER_FEATURES:  # Krylov solves, with a preconditioner
            self.capabilities = type(self).capabilities | {"preconditioner"}

    def preconditioner(self, x, theta):
        """``v -> (G kron Q + alpha I)^{-1} v``, an approximate inverse of the Hessian at ``(x, theta)``, or None.

        The Hessian ``sum_i w_i (a_i a_i^T) kron S_i`` plus the ridge (see :meth:`hessian`) is
        approximated by one Kronecker product: ``G = sum_i c_i a_i a_i^T`` with ``c_i = w_i tr S_i``
        (each sample counted by its curvature: a confidently fitted sample by nearly none) and
        ``Q = sum_i w_i S_i / sum_i c_i``, exact when all ``S_i`` are proportional (the Kronecker-factored
        curvature of a linear layer, as in J. Martens and R. Grosse, "Optimizing Neural Networks with
        Kronecker-factored Approximate Curvature", ICML 2015). With ``G = V diag(g)
        V^T`` and ``Q = U diag(q) U^T`` the inverse of ``G kron Q + alpha I`` is ``V``, ``U`` and a
        division by ``g_j q_k + alpha``: two products with the ``(p + 1) x K`` parameter matrix per
        application, against the data's ``n x (p + 1)`` of a Hessian-vector product. ``G`` is formed in
        single precision (CG's answer does not depend on its preconditioner, only its speed). On MNIST
        5k (785 x 10 parameters) it cut CG's iterations for an adjoint about 4.5-fold.

        Returns None for a model with more than ``_PRECONDITIONER_FEATURES`` features or without
        curvature (every weight zero). The last one formed is kept with the ``x`` it was formed at and
        returned again for the same ``x`` (the adjoint solve at a solve's point): forming it (an
        eigendecomposition of ``G``) costs about as much as fifteen of its applications.
        """
        if self.n_features >= _PRECONDITIONER_FEATURES:
            return None
        key = np.asarray(x, dtype=float).tobytes()
        kept = getattr(self, "_kept_preconditioner", None)
        if kept is not None and kept[0] == key:
            return kept[1]
        A, K = self._design(), self.n_classes
        P = self.datafit.probabilities(self.forward(theta, self.X)[0])
        w = self.weights(x) / self.n_samples
        c = w * (1.0 - np.einsum("ik,ik->i", P, P))
        total = float(c.sum())
        if not total > 0:
            return None
        G = _weighted_gram(A, c, single=not sp.issparse(A))
        wP = w[:, None] * P
        Q = (np.diag(wP.sum(axis=0)) - wP.T @ P) / total
        g, V = np.linalg.eigh(G)
        q, U = np.linalg.eigh(Q)
        # clipped: rounding can leave the smallest eigenvalues of these semidefinite matrices just below 0
        denominator = np.maximum(g, 0.0)[:, None] * np.maximum(q, 0.0)[None, :] + self.alpha
        shape, V = (A.shape[1], K), V.astype(np.float32)  # its products read V twice: half the memory traffic

        def apply(v):
            R = (V.T @ (v.reshape(shape) @ U).astype(np.float32)) / denominator
            return ((V @ R.astype(np.float32)) @ U.T).ravel()

        M = LinearOperator((self.n_var, self.n_var), matvec=apply, dtype=float)
        self._kept_preconditioner = (key, M)
        return M

    def __getstate__(self):
        # what is kept to speed solves up (a preconditioner, a single-precision copy of the data) is not
        # shipped with the model: a copy forms its own
        return {**self.__dict__, "_kept_preconditioner": None, "_single_X": None}

    def hessian(self, x, theta):
        """The dense ``grad^2_yy f(x, theta)``: ``sum_i w_i / n (a_i a_i^T) kron S_i`` plus the ridge.

        ``a_i`` is sample ``i`` with a trailing 1 (the intercept), ``S_i = diag(p_i) - p_i p_i^T``
        the Hessian of the cross-entropy in the logits and ``w_i = s_i sigma(x_i)``; parameter
        ``(j, k)`` (feature ``j``, class ``k``) is entry ``j K + k`` of ``theta``.
        """
        P = self.datafit.probabilities(self.forward(theta, self.X)[0])
        w = self.weights(x) / self.n_samples
        A = self._design()
        p1, K = self.n_features + 1, self.n_classes
        H = np.empty((p1, K, p1, K))
        if K == 2:  # S_i = p_i0 p_i1 [[1, -1], [-1, 1]]: one product of the data with itself
            block = _weighted_gram(A, w * P[:, 0] * P[:, 1])
            H[:, 0, :, 0] = H[:, 1, :, 1] = block
            H[:, 0, :, 1] = H[:, 1, :, 0] = -block
        for k in range(K if K > 2 else 0):
            for m in range(k, K):
                c = w * ((P[:, k] if k == m else 0.0) - P[:, k] * P[:, m])
                H[:, k, :, m] = H[:, m, :, k] = _weighted_gram(A, c)
        return H.reshape(p1 * K, p1 * K) + np.diag(self.penalty_diag())

    def _design(self):
        """The samples with a trailing column of ones, built once."""
        if getattr(self, "_with_ones", None) is None:
            ones = np.ones((self.n_samples, 1))
            self._with_ones = (sp.hstack([self.X, ones], format="csr") if sp.issparse(self.X)
                               else np.hstack([self.X, ones]))
        return self._with_ones

    def adjoint(self, x, theta, grad_y):
        """``(v, mu)`` with ``grad^2_yy f v = grad_y`` solved on the dense Hessian (``mu`` empty)."""
        return _symmetric_solve(self.hessian(x, theta), grad_y), np.zeros(0)

    def _solve(self, x, y0, tol, max_iter):
        """Newton steps with an Armijo search: on the dense Hessian for a small model, by CG preconditioned
        with :meth:`preconditioner` (formed once, at the start) when it has one, else the Krylov solvers
        of the base class."""
        if self.n_var > _DENSE_NEWTON_LIMIT and "preconditioner" not in self.capabilities:
            return super()._solve(x, y0, tol, max_iter)
        theta = self.initial_parameters() if y0 is None else np.asarray(y0, dtype=float)
        value, grad = self.value_and_grad_y(x, theta)
        g0 = max(np.linalg.norm(grad), np.finfo(float).tiny)
        gtol = max(tol * max(g0, 1.0), _GTOL_FLOOR)
        if self.n_var <= _DENSE_NEWTON_LIMIT:
            def direction(theta, grad):
                return -_symmetric_solve(self.hessian(x, theta), grad)
        else:
            M = self.preconditioner(x, theta)

            def direction(theta, grad):
                # inexact Newton: a CG residual of sqrt(|grad| / |grad_0|) relative keeps the
                # convergence superlinear (Nocedal and Wright, Numerical Optimization, theorem 7.2), and
                # lets the products with the data run in single precision (their rounding, about 1e-7
                # relative, stays below that residual; the gradient is checked in double precision)
                op = LinearOperator((self.n_var, self.n_var), matvec=self._step_hvp(x, theta), dtype=float)
                rtol = min(0.5, np.sqrt(np.linalg.norm(grad) / g0))
                return cg(op, -grad, rtol=rtol, maxiter=_NEWTON_CG_ITER, M=M)[0]
        for _ in range(max_iter):
            if np.linalg.norm(grad) <= gtol:
                break
            step = direction(theta, grad)
            t = 1.0
            while t > 1e-10:
                new_value, new_grad = self.value_and_grad_y(x, theta + t * step)
                # near the minimiser values differ at rounding level: a falling gradient norm decides
                # there (only there: elsewhere it accepted steps up the objective, and the iterates
                # cycled through the whole budget)
                rounding = abs(new_value - value) <= _ROUNDING * max(abs(value), np.finfo(float).tiny)
                if (new_value <= value + _ARMIJO * t * (grad @ step)
                        or (rounding and np.linalg.norm(new_grad) < np.linalg.norm(grad))):
                    break
                t *= 0.5
            else:
                break
            theta, value, grad = theta + t * step, new_value, new_grad
        return theta, bool(np.linalg.norm(grad) <= gtol)

    def _step_hvp(self, x, theta):
        """``v -> grad^2_yy f v`` for Newton's CG steps: :meth:`hvp_operator` with the products with dense
        data in single precision (a float32 copy of the data, made once), two to three times faster on
        data too large for the cache."""
        if sp.issparse(self.X):
            return self.hvp_operator(x, theta)
        if getattr(self, "_single_X", None) is None:
            self._single_X = self.X.astype(np.float32)
        X32 = self._single_X
        P = self.datafit.probabilities(self.forward(theta, self.X)[0])
        w = (self.weights(x) / self.n_samples)[:, None]
        ridge = self.penalty_diag()

        def apply(v):
            W, b = self.linear.split(v)
            RG = w * self.datafit.hessian_product(P, X32 @ W.astype(np.float32) + b)
            return np.concatenate([(X32.T @ RG.astype(np.float32)).ravel(), RG.sum(axis=0)]) + ridge * v

        return apply

    def unpack(self, theta):
        return self.linear.split(theta)

    def forward(self, theta, X):
        return self.linear.decision(theta, X), X

    def backward(self, theta, X, G):
        return self.linear.adjoint(G, X)

    def jvp(self, theta, X, V):
        return self.linear.decision(V, X)

    def penalty_diag(self):
        p, K = self.n_features, self.n_classes
        return np.concatenate([np.full(p * K, self.alpha), np.full(K, _INTERCEPT_RIDGE)])


def _symmetric_solve(H, b):
    """``H^{-1} b`` for a symmetric positive (semi)definite ``H``; least squares if it is singular."""
    try:
        return dense_solve(H, b, assume_a="pos")
    except (LinAlgError, ValueError):
        return lstsq(H, b)[0]


class FeatureWeightedSoftmaxRegression(WeightedSoftmaxRegression):
    """Multinomial logistic regression whose sample weights are a logistic function of per-sample features.

    Sample ``i`` has the weight ``s_i sigma(u_i^T x)``, with ``u_i`` the
    ``i``-th row of ``features`` (one column per feature, a column of ones
    for an offset): the hyperparameters are the ``d`` coefficients ``x``
    instead of one value per sample, so that a trusted set of a few hundred
    samples fits a few numbers rather than thousands of free weights (the
    low-dimensional parametrisation of the weights in Grazzi et al. (2026),
    section 4.1). With ``features`` the identity matrix this is
    :class:`WeightedSoftmaxRegression`. The lower level is
    :math:`f(x, \\theta) = \\frac1n \\sum_i s_i \\sigma(u_i^\\top x)\\, \\ell_i(\\theta)
    + \\frac{\\alpha}{2}\\|W\\|^2`; its derivatives in ``x`` are those of
    :class:`WeightedSoftmaxRegression` at ``U x``, multiplied by ``U^T``.

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples ``a_i``.
    Y : array of shape (n_samples, n_classes)
        One-hot training labels (possibly corrupted).
    features : array of shape (n_samples, d)
        The per-sample features ``u_i`` of the weights.
    alpha : float, default=1e-3
        L2 penalty on ``W``: the term ``alpha/2 ||W||^2``.
    sample_weight : array of shape (n_samples,), optional
        Fixed weights ``s_i`` (all 1 when None).
    max_iter : int, default=2000
        Iterations of the first solver per :meth:`solve` call.
    start : array of shape (n_var,), optional
        The parameters :meth:`solve` starts from without a warm start
        (zeros when None): a model of nearby weights saves the first solve
        most of its iterations.

    Attributes
    ----------
    n_hyper : int
        ``d``, the number of feature columns.
    n_var : int
        ``(n_features + 1) n_classes``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: data reweighting ``sigma(x_i) ell`` in section
       4.1, (4.2), here with ``x_i = u_i^T x``.

    Examples
    --------
    The derivative in ``x`` agrees with central differences:

    >>> import numpy as np
    >>> from skbilevel.problems.classifiers import FeatureWeightedSoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(8, 4)), np.eye(3)[rng.integers(0, 3, size=8)]
    >>> U = np.column_stack([rng.normal(size=8), np.ones(8)])
    >>> lower = FeatureWeightedSoftmaxRegression(X, Y, features=U, alpha=0.1)
    >>> x = np.array([0.5, -0.2])
    >>> theta, _ = lower.solve(x)
    >>> e = 1e-6 * np.eye(2)[0]
    >>> lower.n_hyper, bool(np.isclose((lower.value(x + e, theta) - lower.value(x - e, theta)) / 2e-6,
    ...                                lower.grad_x(x, theta)[0]))
    (2, True)
    """

    def __init__(self, X, Y, *, features, alpha: float = 1e-3, sample_weight=None, max_iter: int = 2000,
                 start=None):
        super().__init__(X, Y, alpha=alpha, sample_weight=sample_weight, max_iter=max_iter)
        self.features = np.asarray(features, dtype=float)
        self.n_hyper = self.features.shape[1]
        self.start = None if start is None else np.asarray(start, dtype=float)

    def initial_parameters(self):
        return super().initial_parameters() if self.start is None else self.start.copy()

    def sample_logits(self, x):
        """The per-sample ``u_i^T x``, whose sigmoid is the weight of sample ``i``."""
        return self.features @ x

    def weights(self, x):
        return super().weights(self.sample_logits(x))

    def grad_x(self, x, theta):
        return self.features.T @ super().grad_x(self.sample_logits(x), theta)

    def cross_vjp(self, x, theta, v):
        return self.features.T @ super().cross_vjp(self.sample_logits(x), theta, v)


class WeightedMLP(_WeightedSoftmaxModel):
    """One-hidden-layer ReLU network with per-sample weights ``sigma(x_i)``.

    Logits ``z = relu(a W1 + b1) W2 + b2``; ``theta = (W1, b1, W2, b2)`` flattened.
    The lower level is not convex: :meth:`solve` returns a local minimiser,
    found from a fixed random initialisation (``random_state``) or the warm start.

    The lower level of :class:`~skbilevel.HyperCleaningClassifier` with
    ``model='mlp'``. :meth:`solve` runs L-BFGS, then Newton steps on the
    analytic Hessian-vector products.

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples ``a_i``. float32 data is used as it is: the
        products with it, nearly all of the cost, then run in float32
        (the parameters and the solver stay float64; see
        ``benchmarks/results/hyper_cleaning.md`` for the speed-up).
    Y : array of shape (n_samples, n_classes)
        One-hot training labels (possibly corrupted).
    n_hidden : int, default=64
        Number of hidden ReLU units.
    alpha : float, default=1e-3
        L2 penalty ``alpha/2 (||W1||^2 + ||W2||^2)`` (intercepts not
        penalised).
    sample_weight : array of shape (n_samples,), optional
        Fixed weights ``s_i`` (all 1 when None).
    random_state : int, default=0
        Seed of the initial weights (He initialisation:
        :meth:`initial_parameters`, the start of :meth:`solve` without a
        warm start).
    max_iter : int, default=2000
        Iterations of L-BFGS per :meth:`solve` call.
        L-BFGS crosses the ReLU's kinks slowly (a training from the random
        start seldom reaches a small gradient norm within this budget), so a
        bilevel method warm-starting each solve from the
        last is usually given a small ``max_iter``: the training then
        continues across outer iterations, as in approximate implicit
        differentiation with warm starts.

    Attributes
    ----------
    n_hyper : int
        ``n_samples``: one hyperparameter ``x_i`` per training sample.
    n_var : int
        ``n_features n_hidden + n_hidden + n_hidden n_classes + n_classes``.
    capabilities : frozenset of str
        ``{'grad_x', 'hvp', 'cross_vjp', 'solve'}``.
    n_samples, n_features, n_classes, n_hidden : int
        The shape of the data and of the network.

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", paper under
       double-blind review, 2025: data
       hyper-cleaning, section 5.1.1 (a network with one hidden ReLU layer), lower level
       ``1/N_tr sum_i sigma(x_i) L(.) + lambda ||y||^2`` with ``lambda = 0.001``
       (here ``lambda ||y||^2`` is ``alpha/2 ||W||^2``, intercepts excluded).
    .. [2] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", ICML 2021,
       PMLR 139: data hyper-cleaning, section 6.2, the lower
       level (31), ``sum_i sigma(x_i) CE`` (there of a two-layer linear network).
    .. [3] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: data reweighting ``sigma(x_i) ell`` in section
       4.1, (4.2).

    Examples
    --------
    The Hessian-vector product (forward-over-reverse) agrees with central
    differences of the gradient, and training lowers the objective:

    >>> import numpy as np
    >>> from skbilevel.problems.classifiers import WeightedMLP
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(8, 4)), np.eye(3)[rng.integers(0, 3, size=8)]
    >>> lower = WeightedMLP(X, Y, n_hidden=5, alpha=0.1)
    >>> lower.n_hyper, lower.n_var
    (8, 43)
    >>> x, theta0 = np.zeros(8), lower.initial_parameters()
    >>> v = rng.normal(size=lower.n_var)
    >>> fd = (lower.grad_y(x, theta0 + 1e-6 * v) - lower.grad_y(x, theta0 - 1e-6 * v)) / 2e-6
    >>> np.allclose(lower.hvp(x, theta0, v), fd, rtol=1e-5, atol=1e-8)
    True
    >>> theta, _ = lower.solve(x, max_iter=200)
    >>> bool(lower.value(x, theta) < lower.value(x, theta0))
    True
    """

    convex = False

    def __init__(self, X, Y, *, n_hidden: int = 64, alpha: float = 1e-3, sample_weight=None,
                 random_state: int = 0, max_iter: int = 2000):
        super().__init__(X, Y, alpha=alpha, sample_weight=sample_weight, max_iter=max_iter)
        self.n_hidden, self.random_state = int(n_hidden), random_state
        p, H, K = self.n_features, self.n_hidden, self.n_classes
        self._sizes = (p * H, H, H * K, K)
        self.n_var = sum(self._sizes)

    def unpack(self, theta):
        p, H, K = self.n_features, self.n_hidden, self.n_classes
        W1, b1, W2, b2 = np.split(theta, np.cumsum(self._sizes)[:-1])
        return W1.reshape(p, H), b1, W2.reshape(H, K), b2

    def initial_parameters(self):
        rng = np.random.default_rng(self.random_state)
        p, H, K = self.n_features, self.n_hidden, self.n_classes
        W1 = rng.normal(scale=np.sqrt(2.0 / p), size=(p, H))
        W2 = rng.normal(scale=np.sqrt(2.0 / H), size=(H, K))
        return np.concatenate([W1.ravel(), np.zeros(H), W2.ravel(), np.zeros(K)])

    def forward(self, theta, X):
        W1, b1, W2, b2 = self.unpack(theta)
        Z1 = _data_product(X, W1) + b1
        active = Z1 > 0
        A = np.where(active, Z1, 0.0)
        return A @ W2 + b2, (X, active, A)

    def backward(self, theta, cache, G):
        X, active, A = cache
        _, _, W2, _ = self.unpack(theta)
        G1 = (G @ W2.T) * active
        return np.concatenate([_data_product(X.T, G1).ravel(), G1.sum(axis=0), (A.T @ G).ravel(), G.sum(axis=0)])

    def jvp(self, theta, cache, V):
        X, active, A = cache
        _, _, W2, _ = self.unpack(theta)
        V1, c1, V2, c2 = self.unpack(V)
        RA = (_data_product(X, V1) + c1) * active
        return RA @ W2 + A @ V2 + c2

    def curvature(self, theta, cache, G, V):
        # backward depends on theta through W2 (in G W2^T) and A (in A^T G); relu'' = 0 a.e.
        X, active, _ = cache
        V1, c1, V2, _ = self.unpack(V)
        RA = (_data_product(X, V1) + c1) * active
        RG1 = (G @ V2.T) * active
        return np.concatenate([_data_product(X.T, RG1).ravel(), RG1.sum(axis=0), (RA.T @ G).ravel(),
                               np.zeros(self.n_classes)])

    def penalty_diag(self):
        pH, H, HK, K = self._sizes
        return np.concatenate([np.full(pH, self.alpha), np.full(H, _INTERCEPT_RIDGE),
                               np.full(HK, self.alpha), np.full(K, _INTERCEPT_RIDGE)])


class CrossEntropyValidationLoss(DatafitValidationLoss):
    """Mean cross-entropy of ``model``'s logits on a validation (trusted) set.

    ``F(x, theta) = 1/m sum_j (logsumexp(z_j) - z_{j, y_j})`` with ``z_j = phi(theta, a_j)``;
    it does not depend on ``x``.

    Parameters
    ----------
    model : WeightedSoftmaxRegression or WeightedMLP
        The lower level whose logits ``phi(theta, .)`` are evaluated.
    X_val : array or sparse matrix of shape (m, n_features)
        Validation samples ``a_j``.
    Y_val : array of shape (m, n_classes)
        Their one-hot (clean) labels.
    sample_weight : array of shape (m,), optional
        Weights of the validation samples: the loss is their weighted mean
        (the plain mean when None).

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", paper under
       double-blind review, 2025: the upper
       level of data hyper-cleaning, section 5.1, the mean cross-entropy
       over ``D_val``.
    .. [2] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", ICML 2021,
       PMLR 139: section 6.2, the upper level (32) (there a sum,
       here a mean).

    Examples
    --------
    At ``theta = 0`` every logit is 0 and the loss is ``log(n_classes)``:

    >>> import numpy as np
    >>> from skbilevel.problems.classifiers import CrossEntropyValidationLoss, WeightedSoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(12, 4)), np.eye(3)[rng.integers(0, 3, size=12)]
    >>> lower = WeightedSoftmaxRegression(X[:8], Y[:8])
    >>> upper = CrossEntropyValidationLoss(lower, X[8:], Y[8:])
    >>> theta = np.zeros(lower.n_var)
    >>> bool(np.isclose(upper.value(np.zeros(8), theta), np.log(3)))
    True
    >>> grad_x, grad_theta = upper.gradient(np.zeros(8), theta)
    >>> grad_x.shape, grad_theta.shape, bool(np.all(grad_x == 0))
    ((8,), (15,), True)
    """

    def __init__(self, model: _WeightedSoftmaxModel, X_val, Y_val, sample_weight=None):
        self.model, self.X_val, self.Y_val = model, X_val, np.asarray(Y_val, dtype=float)
        self._datafit = Multinomial(self.Y_val)
        super().__init__(self.Y_val.shape[0], sample_weight)

    def forward(self, x, theta):
        """Return the model's logits on ``X_val`` and its forward cache."""
        return self.model.forward(theta, self.X_val)

    def backward(self, x, theta, cache, G):
        return np.zeros(self.model.n_hyper), self.model.backward(theta, cache, G)

    def datafit(self, Z):
        return self._datafit
