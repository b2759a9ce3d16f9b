"""The binary kernel SVC (libsvm's C-SVC) as a lower level of a cross-validation problem.

:class:`sklearn.svm.SVC` solves the dual

.. math::

    \\min_a \\tfrac12 a^T Q a - 1^T a \\quad \\text{s.t.} \\quad
    0 \\le a_i \\le C_i, \\quad t^T a = 0, \\qquad Q_{ij} = t_i t_j K_{ij},

with targets ``t_i = +-1`` (``classes_[1]`` positive) and ``C_i = C s_i``
(``s`` the sample weights times the class weights). Its decision function is
:math:`f(z) = \\sum_i \\beta_i K(x_i, z) + b` with :math:`\\beta = t \\circ a`
(``dual_coef_``) and ``b = intercept_``.

The lower-level variable is ``y = (beta, b)`` over *all* ``n`` training
samples (``beta_i = 0`` off the support). Following jaxopt, ``y(x)`` is the
zero of the KKT conditions restricted to the active set: with ``F`` the free
support vectors (``0 < a_i < C_i``), ``U`` those at ``a_i = C_i`` and ``Z``
the rest,

.. math::

    G_i = (K\\beta)_i + b - t_i \\; (i \\in F), \\qquad
    G_i = \\beta_i - t_i C_i \\; (i \\in U), \\qquad
    G_i = \\beta_i \\; (i \\in Z), \\qquad G_n = 1^T \\beta,

which defines ``y(x)`` smoothly wherever strict complementarity holds (no
support vector changes state). When ``F`` is empty the equality ``1^T beta = 0``
holds for every ``C`` and ``b`` is not fixed by the KKT conditions; libsvm then
takes the midpoint of the feasible interval, ``-b = (u + l) / 2`` with
``u = min yG_i``, ``l = max yG_i`` over the bounded samples of each kind and
``yG_i = (K\\beta)_i - t_i``. Its derivative is that of the two samples
attaining ``u`` and ``l``, so ``G_n`` becomes
``b + ((K\\beta)_{i_u} + (K\\beta)_{i_l} - t_{i_u} - t_{i_l}) / 2``.

With the RBF kernel :math:`K_{ij} = e^{-\\gamma D_{ij}}` (``D`` the squared
distances), :math:`\\partial K / \\partial \\gamma = -D \\circ K`.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import issparse
from sklearn import config_context
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import row_norms

from .._warnings import warn
from .estimator_base import ClassifierLowerLevel, _matrix

#: ``a_i`` within this fraction of ``C_i`` of a bound is at the bound. libsvm clips the
#: multipliers exactly onto the bounds and :meth:`SVCLowerLevel.solve` keeps them there, so
#: only a free multiplier closer than this to a bound (a near-kink) is affected.
BOUND_RTOL = 1e-9

#: libsvm's tolerance (its maximal KKT violation ``m(a) - M(a)``; the estimator's own ``tol``
#: is ignored) is ``tol`` clipped to this range: tighter than 1e-12 gains nothing over libsvm's
#: float32 kernel (see :class:`SVCLowerLevel`) and libsvm has no iteration cap by default;
#: looser than 1e-8 would leave its active set, which the polish and the derivatives take as
#: given, wrong for support vectors close to a change of state.
LIBSVM_TOL = (1e-12, 1e-8)

#: A margin ``t_i f(x_i)`` off 1 by less than this (relative to the size of the terms of
#: ``f(x_i)``) is on the margin: ``solve``'s polish does not move such a sample.
KKT_RTOL = 1e-9

#: Active-set steps of the polish (usually one: libsvm's set is right).
POLISH_STEPS = 10


#: The RBF kernel's squared distances between training samples are stored (8 n^2 bytes a fold)
#: up to this size, n <= 5792, when the lower level is built alone; beyond it each kernel block
#: computes its own. A search shares SVC's ``cache_size`` among its folds instead
#: (:func:`distance_cache_share`).
DISTANCE_CACHE_BYTES = 2**28


def distance_cache_share(estimator, train_sizes):
    """The bytes of stored distances each fold of a search may keep: SVC's ``cache_size`` (MB) shared.

    libsvm's own kernel cache is bounded by ``cache_size``; the folds'
    stored squared distances (8 n^2 bytes each, kept for the whole search)
    are bounded by it too, all folds together. When they do not fit, every
    kernel block is computed from ``X`` when needed (slower: a product with
    the features per block), and a UserWarning says so.

    Parameters
    ----------
    estimator : SVC
        The searched SVC (its ``kernel`` and ``cache_size``).
    train_sizes : list of int
        The number of training samples of each fold.

    Returns
    -------
    dict
        ``{'distance_cache_bytes': share}`` for :class:`SVCLowerLevel`
        (``{}`` for a kernel without distances).

    References
    ----------
    .. [1] scikit-learn, :class:`sklearn.svm.SVC`: ``cache_size``, the
       memory (MB) libsvm may keep kernel values in; a grid search's fits
       use no more.

    Examples
    --------
    >>> from sklearn.svm import SVC
    >>> from skbilevel.problems.kernel_svc import distance_cache_share
    >>> distance_cache_share(SVC(cache_size=200), [400] * 5)  # 5 folds of 1.2 MB share 200 MB
    {'distance_cache_bytes': 41943040.0}
    >>> distance_cache_share(SVC(kernel="linear"), [400] * 5)
    {}
    """
    if estimator.get_params()["kernel"] != "rbf":
        return {}
    budget = float(estimator.get_params()["cache_size"]) * 2**20
    need = sum(8.0 * n * n for n in train_sizes)
    if need > budget:
        warn(f"SVC(kernel='rbf'): the squared distances of the {len(train_sizes)} training folds would take "
             f"{need / 2**20:.0f} MB, more than its cache_size={estimator.get_params()['cache_size']:g} MB; "
             "BilevelSearchCV computes each kernel block from X when needed instead (slower). Raise SVC's "
             "cache_size above that to keep them.", UserWarning)
    return {"distance_cache_bytes": budget / max(len(train_sizes), 1)}


def _gram(A, B):
    """``A @ B.T`` as a dense array, for dense or sparse rows (the kernel blocks are dense)."""
    P = A @ B.T
    return P.toarray() if issparse(P) else np.asarray(P)


class SVCLowerLevel(ClassifierLowerLevel):
    """Training problem of a binary :class:`sklearn.svm.SVC` (``C``; ``gamma`` for 'rbf').

    Kernels 'rbf' and 'linear'. ``gamma='scale'`` / ``'auto'`` are resolved on
    the training fold as ``SVC.fit`` does. Samples with a non-positive weight
    are left out of the fit, as libsvm does (their ``beta_i`` stays 0).

    ``solve`` runs libsvm with a tight tolerance, then *polishes* its solution:
    libsvm stores the kernel in single precision, so its ``beta`` solves the
    KKT system only to about ``1e-7`` (far worse for an ill-conditioned kernel),
    a noise that is not smooth in ``x`` and would swamp finite differences.
    Given the active set the free block
    ``[K_FF 1; 1^T 0] (beta_F, b) = (t_F - K_FU beta_U, -1^T beta_U)`` is solved
    in double precision, so that ``G(x, y) = 0`` to rounding, and the active set
    is corrected where the result violates the KKT conditions (see ``_polish``).

    Parameters
    ----------
    estimator : :class:`~sklearn.svm.SVC`
        The estimator; ``kernel`` ('rbf' or 'linear', ``ValueError``
        otherwise), ``class_weight``, ``shrinking``, ``cache_size``,
        ``max_iter`` and the values of the parameters not in ``names`` are
        read from it (its ``tol`` is not: see ``LIBSVM_TOL``).
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold (a sparse matrix is kept sparse: libsvm fits it as such).
    y : array of shape (n_samples,)
        Training labels of the fold, two classes (``ValueError`` otherwise).
    names : sequence of str
        The searched parameters, a subset of ``('C', 'gamma')``; ``'gamma'``
        only with the RBF kernel.
    scales : sequence of {'log', 'linear'}
        The scale of each searched parameter (``'log'`` usually).
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights, multiplying ``C`` as in ``SVC.fit``.
    distance_cache_bytes : float, optional
        The squared distances between the training samples (8 n^2 bytes)
        are stored when they fit in this; default ``DISTANCE_CACHE_BYTES``.

    Attributes
    ----------
    hyperparameters : tuple of str
        ``('C', 'gamma')``.
    loss : str
        ``'squared_hinge'``: the validation loss of the decision values.
    classes_ : ndarray of shape (2,)
        The training labels; ``classes_[1]`` is the positive class.
    gamma : float
        The kernel's ``gamma`` as resolved on the fold (used when
        ``'gamma'`` is not searched).
    n_hyper : int
        ``len(names)``.
    n_var : int
        ``n_samples + 1``: the variable is ``y = (beta, b)``.
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp'}``.
    polish : bool
        Class attribute, True: polish libsvm's solution in double precision.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: a lower level with
       constraints (the box ``0 <= a_i <= C_i`` and ``t^T a = 0`` of the
       dual) differentiated through its active set under strict
       complementarity, section 6.1, assumptions (A1)-(A4) and formula
       (6.3); hyperparameter optimisation as (4.1)-(4.2), section 4.1.
    .. [2] scikit-learn, :class:`sklearn.svm.SVC` (libsvm's C-SVC): the
       primal ``1/2 ||w||^2 + sum_i C_i max(0, 1 - t_i (w^T phi(x_i) + b))``
       and its dual above.

    Examples
    --------
    The optimality map vanishes at the polished solution, which has the
    support vectors of ``SVC.fit``, and the hypergradient of the squared
    hinge validation loss in ``(log C, log gamma)`` passes a
    central-difference check:

    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.kernel_svc import SVCLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> labels = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    >>> estimator = SVC(C=1.0, gamma=0.5)
    >>> lower = SVCLowerLevel(estimator, X[:30], labels[:30], ["C", "gamma"], ["log", "log"])
    >>> x = np.log([1.0, 0.5])
    >>> y, ok = lower.solve(x)
    >>> lower.n_hyper, lower.n_var, ok, bool(np.abs(lower.grad_y(x, y)).max() < 1e-10)
    (2, 31, True, True)
    >>> support = np.flatnonzero(y[:-1])
    >>> np.array_equal(support, np.sort(estimator.fit(X[:30], labels[:30]).support_))
    True
    >>> problem = BilevelProblem(ValidationLoss(lower, X[30:], labels[30:]), lower)
    >>> F, grad, _ = hypergradient(problem, x, y)
    >>> h = lambda x: problem.upper.value(x, lower.solve(x)[0])
    >>> fd = [(h(x + 1e-6 * e) - h(x - 1e-6 * e)) / 2e-6 for e in np.eye(2)]
    >>> np.allclose(grad, fd, rtol=1e-5)
    True
    """

    hyperparameters = ("C", "gamma")
    loss = "squared_hinge"
    #: Polish libsvm's solution in double precision (set False to get libsvm's own, for checks).
    polish = True

    @classmethod
    def fold_options(cls, estimator, X, splits, sample_weight=None):
        """The folds' share of the stored distances (:func:`distance_cache_share`), the same for each."""
        share = distance_cache_share(estimator, [len(train) for train, _ in splits])
        return [share] * len(splits)

    def __init__(self, estimator, X, y, names, scales, sample_weight=None, *, distance_cache_bytes=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        if not self.binary:
            raise ValueError(
                f"SVC hypergradients are binary-only; this training fold has {self.classes_.size} classes. "
                "Use LinearSVC or LogisticRegression for a multi-class problem.")
        kernel = self.params["kernel"]
        if kernel not in ("rbf", "linear"):
            raise ValueError(f"SVC hypergradients support kernel='rbf' or 'linear', not {kernel!r}")
        if kernel == "linear" and "gamma" in self.names:
            raise ValueError("SVC(kernel='linear') has no gamma to search")
        self.kernel = kernel
        gamma = self.params["gamma"]
        if isinstance(gamma, str):  # resolved exactly as BaseLibSVM.fit does, on the raw fold
            if gamma == "scale":
                var = (X.multiply(X)).mean() - X.mean() ** 2 if issparse(X) else np.asarray(X, float).var()
                gamma = 1.0 / (X.shape[1] * var) if var != 0 else 1.0
            elif gamma == "auto":
                gamma = 1.0 / X.shape[1]
            else:
                raise ValueError(f"unknown gamma {gamma!r}")
        self.gamma = float(gamma)
        # the user's solver settings are checked once, here; each solve's SVC skips the validation
        SVC(shrinking=self.params["shrinking"], cache_size=self.params["cache_size"],
            max_iter=self.params["max_iter"])._validate_params()
        # sparse rows stay sparse: libsvm fits them as such, and only the kernel blocks are dense
        self.X = _matrix(X)
        n = self.X.shape[0]
        self.t = self.encode_targets(self.y)
        # C_i = C * r_i: sample weight times class weight, as libsvm's weighted C.
        cw = compute_class_weight(self.params["class_weight"], classes=self.classes_, y=self.y)
        s = np.ones(n) if self.sample_weight is None else self.sample_weight
        self.r = np.where(s > 0, s, 0.0) * cw[(self.t > 0).astype(int)]
        self.kept = s > 0
        self.D = None
        if kernel == "rbf":
            self.sq_norms = row_norms(self.X, squared=True)
            if 8 * n * n <= (DISTANCE_CACHE_BYTES if distance_cache_bytes is None else distance_cache_bytes):
                self.D = euclidean_distances(self.X, squared=True, X_norm_squared=self.sq_norms[:, None])
        self.n_var = n + 1

    # -- kernels --------------------------------------------------------------
    def _hyper(self, x):
        vals = self.values(x)
        return vals.get("C", self.params["C"]), vals.get("gamma", self.gamma)

    def _K(self, gamma, rows, cols, derivative=False):
        """Training-kernel block ``K[rows][:, cols]`` (and ``dK/dgamma`` on it)."""
        if self.kernel == "linear":
            K = _gram(self.X[rows], self.X[cols])
            return (K, np.zeros_like(K)) if derivative else K
        D = self._distances(rows, cols)
        K = np.exp(-gamma * D)
        return (K, -D * K) if derivative else K

    def _distances(self, rows, cols):
        """Squared distances between training samples ``rows`` and ``cols`` (from the stored
        matrix, else computed as ``euclidean_distances`` does, with a zero between a sample and itself)."""
        if self.D is not None:
            return self.D[np.ix_(rows, cols)]
        rows, cols = np.asarray(rows), np.asarray(cols)
        D = self.sq_norms[rows][:, None] + self.sq_norms[cols][None, :] - 2.0 * _gram(self.X[rows], self.X[cols])
        np.maximum(D, 0.0, out=D)
        D[rows[:, None] == cols[None, :]] = 0.0
        return D

    def _cross(self, gamma, X, cols):
        """Kernel ``K(X, x_cols)`` between new data and training samples, and ``D`` (rbf)."""
        X = _matrix(X)
        if self.kernel == "linear":
            return _gram(X, self.X[cols]), None
        # euclidean_distances' float64 formula, without its input validation (a fold's test part is
        # scored at every evaluated point, and the checks cost more than the product)
        D = row_norms(X, squared=True)[:, None] + self.sq_norms[cols][None, :] - 2.0 * _gram(X, self.X[cols])
        np.maximum(D, 0.0, out=D)
        return np.exp(-gamma * D), D

    # -- active set -----------------------------------------------------------
    def _state(self, x, beta):
        """``(C, gamma, F, U, pair)``: free and upper-bounded indices, and, when ``F`` is
        empty, ``(i_u, i_l, yG)``: the samples fixing libsvm's intercept (module docstring)."""
        return self._state_at(*self._hyper(x), beta)

    def _state_at(self, C, gamma, beta):
        Ci, a = C * self.r, self.t * beta
        upper = self.kept & (a >= Ci * (1.0 - BOUND_RTOL))
        zero = ~self.kept | (a <= Ci * BOUND_RTOL)
        F, U = np.flatnonzero(~upper & ~zero), np.flatnonzero(upper)
        pair = None
        if F.size == 0:
            pair = self._midpoint_pair(gamma, beta, U, zero & self.kept)
        return C, gamma, F, U, pair

    def _midpoint_pair(self, gamma, beta, U, Z):
        """The samples attaining libsvm's ``u`` and ``l`` (``calculate_rho`` with no free SV)."""
        S = np.flatnonzero(beta)
        idx = np.flatnonzero(self.kept)
        yG = np.zeros(self.t.size)
        yG[idx] = self._K(gamma, idx, S) @ beta[S] - self.t[idx]
        up = np.zeros(self.t.size, bool)
        up[U] = True
        t = self.t
        u_set = np.flatnonzero((up & (t < 0)) | (Z & (t > 0)))
        l_set = np.flatnonzero((up & (t > 0)) | (Z & (t < 0)))
        if u_set.size == 0 or l_set.size == 0:  # beta = 0: cannot happen for C > 0; b frozen
            return None
        return u_set[np.argmin(yG[u_set])], l_set[np.argmax(yG[l_set])], yG

    # -- solver ---------------------------------------------------------------
    def solve(self, x, y0=None, tol=1e-10):
        """Fit libsvm on the fold (no warm start: libsvm has none), then polish; return ``(y, ok)``."""
        C, gamma = self._hyper(x)
        n = self.t.size
        idx = np.flatnonzero(self.kept)  # libsvm drops non-positive weights itself, but then
        # reports support_ in the reduced numbering: drop them here and map back.
        # Room for the whole float32 kernel matrix (libsvm fills its cache lazily), capped at 1 GB.
        cache = float(max(self.params["cache_size"], min(1000, 4 * idx.size**2 / 2**20 + 1)))
        # The class weights (computed on the whole fold, as SVC.fit does) ride in the sample
        # weights r: libsvm's C_i = C * w_class * s_i either way. On the +-1 targets the
        # signs of dual_coef_ and intercept_ are those of decision_function (classes_[1] > 0).
        svc = SVC(kernel=self.kernel, C=C, gamma=gamma, tol=float(np.clip(tol, *LIBSVM_TOL)),
                  shrinking=self.params["shrinking"], cache_size=cache, max_iter=self.params["max_iter"])
        with config_context(skip_parameter_validation=True):
            svc.fit(self.X[idx], self.t[idx], sample_weight=self.r[idx])
        beta = np.zeros(n)
        dual = svc.dual_coef_  # a sparse matrix after a sparse fit
        beta[idx[svc.support_]] = (dual.toarray() if issparse(dual) else dual)[0]
        y = np.append(beta, svc.intercept_[0])
        if self.polish:
            y = self._polish(C, gamma, y)
        return y, bool(svc.fit_status_ == 0)

    def _polish(self, C, gamma, y):
        """Solve ``G = 0`` in double precision, starting from libsvm's active set.

        A few primal-dual active-set steps repair the set where libsvm's float32
        kernel got it wrong (ill-conditioned kernels: tiny ``gamma``, huge ``C``):
        a free ``a_i`` leaving ``(0, C_i)`` goes to its bound, a bounded sample
        violating its margin condition (``t_i f(x_i) <= 1`` at ``C_i``, ``>= 1`` at
        0, up to ``KKT_RTOL``) becomes free. libsvm's own solution is returned if
        this does not settle within ``POLISH_STEPS``.
        """
        _, _, F, U, _ = self._state_at(C, gamma, y[:-1])
        n, t, Ci = self.t.size, self.t, C * self.r
        kept = np.flatnonzero(self.kept)
        state = np.zeros(n, dtype=np.int8)  # 0: a_i = 0, 1: free, 2: a_i = C_i
        state[F], state[U] = 1, 2
        for _ in range(POLISH_STEPS):
            F, U = np.flatnonzero(state == 1), np.flatnonzero(state == 2)
            beta = np.zeros(n)
            beta[U] = t[U] * Ci[U]
            if F.size == 0:  # beta is fixed by the bounds; b by libsvm's midpoint rule
                pair = self._state_at(C, gamma, beta)[-1]
                if pair is None or pair[2][pair[1]] > pair[2][pair[0]] + KKT_RTOL:
                    return y  # the interval [l, u] of feasible -b is empty
                return np.append(beta, -0.5 * (pair[2][pair[0]] + pair[2][pair[1]]))
            rhs = np.append(t[F] - self._K(gamma, F, U) @ beta[U], -beta[U].sum())
            try:
                sol = np.linalg.solve(self._saddle(gamma, F), rhs)
            except np.linalg.LinAlgError:
                return y
            beta[F], b = sol[:-1], sol[-1]
            S = np.flatnonzero(beta)
            KS = self._K(gamma, kept, S)
            slack = t[kept] * (KS @ beta[S] + b) - 1.0
            tol = KKT_RTOL * (1.0 + np.abs(KS) @ np.abs(beta[S]))  # rounding of K beta
            a_F = t[F] * beta[F]
            new = state.copy()
            new[F[a_F <= 0]], new[F[a_F >= Ci[F]]] = 0, 2
            new[kept[((state[kept] == 2) & (slack > tol)) | ((state[kept] == 0) & (slack < -tol))]] = 1
            if np.array_equal(new, state):
                return np.append(beta, b)
            state = new
        return y

    def _saddle(self, gamma, F):
        """``[[K_FF, 1], [1^T, 0]]``, the Jacobian of the free rows and of ``1^T beta``."""
        M = np.zeros((F.size + 1, F.size + 1))
        M[:-1, :-1] = self._K(gamma, F, F)
        M[:-1, -1] = M[-1, :-1] = 1.0
        return M

    # -- implicit differentiation ---------------------------------------------
    def adjoint(self, x, y, g):
        """Solve ``(d_y G)^T v = g``; ``v`` is indexed by the rows of ``G`` (``v_n``: last row).

        With ``F`` non-empty the free block is ``[K_FF 1; 1^T 0] (v_F, v_n) = (g_F, g_b)``
        and every other row follows, ``v_j = g_j - K_{Fj}^T v_F - v_n``. With ``F``
        empty ``v_n = g_b`` and ``v_j = g_j - v_n (K c)_j``, ``c = (e_{i_u} + e_{i_l}) / 2``.
        """
        n = self.t.size
        _, gamma, F, U, pair = self._state(x, y[:-1])
        v = np.empty(n + 1)
        everyone = np.arange(n)
        if F.size:
            M, rhs = self._saddle(gamma, F), np.append(g[F], g[-1])
            try:
                sol = np.linalg.solve(M, rhs)
            except np.linalg.LinAlgError:  # degenerate free set (e.g. linear kernel, |F| > p + 1)
                sol = np.linalg.lstsq(M, rhs, rcond=None)[0]
            v[:n] = g[:n] - self._K(gamma, F, everyone).T @ sol[:-1] - sol[-1]
            v[F], v[n] = sol[:-1], sol[-1]
        else:
            v[n] = g[-1]
            v[:n] = g[:n]
            if pair is not None:
                i_u, i_l, _ = pair
                v[:n] -= 0.5 * g[-1] * self._K(gamma, [i_u, i_l], everyone).sum(axis=0)
        return v, np.zeros(0)

    def cross_vjp(self, x, y, v):
        """``(d_x G)^T v``: ``d G_i / dC = -t_i r_i`` on ``U``, ``d G_i / dgamma = (K' beta)_i``
        on ``F`` (on the midpoint row when ``F`` is empty), ``K' = -D o K``."""
        beta = y[:-1]
        _, gamma, F, U, pair = self._state(x, beta)
        d = {"C": -v[U] @ (self.t[U] * self.r[U]), "gamma": 0.0}
        if self.kernel == "rbf":
            S = np.flatnonzero(beta)
            if F.size:
                d["gamma"] = v[F] @ (self._K(gamma, F, S, derivative=True)[1] @ beta[S])
            elif pair is not None:
                dK = self._K(gamma, list(pair[:2]), S, derivative=True)[1]
                d["gamma"] = 0.5 * v[-1] * (dK @ beta[S]).sum()
        return self._per_x(x, d)

    # -- decision values -------------------------------------------------------
    def decision(self, x, y, X):
        """``f(X) = K(X, X_S) beta_S + b``, kernel rows on the support ``S`` only."""
        S = np.flatnonzero(y[:-1])
        return self._cross(self._hyper(x)[1], X, S)[0] @ y[S] + y[-1]

    def decision_vjp(self, x, y, X, g):
        """``(grad_x, grad_y)`` of ``g^T f(X)``: ``grad_beta = K(X, X_train)^T g``,
        ``grad_b = 1^T g`` and ``d/dgamma = -g^T (D_X o K_X) beta``."""
        gamma = self._hyper(x)[1]
        beta = y[:-1]
        K, D = self._cross(gamma, X, np.arange(beta.size))
        d = {"C": 0.0, "gamma": 0.0 if D is None else -g @ ((D * K) @ beta)}
        return self._per_x(x, d), np.append(K.T @ g, g.sum())

    # -- objective (not used by the hypergradient) -----------------------------
    def value(self, x, y):
        """The dual objective ``1/2 beta^T K beta - t^T beta`` (``= 1/2 a^T Q a - 1^T a``)."""
        S = np.flatnonzero(y[:-1])
        beta = y[S]
        return float(0.5 * beta @ self._K(self._hyper(x)[1], S, S) @ beta - self.t[S] @ beta)

    def grad_y(self, x, y):
        """The optimality map ``G(x, y)`` (zero at a solution)."""
        beta = y[:-1]
        C, gamma, F, U, pair = self._state(x, beta)
        G = beta.copy()
        G[U] -= self.t[U] * C * self.r[U]
        S = np.flatnonzero(beta)
        G[F] = self._K(gamma, F, S) @ beta[S] + y[-1] - self.t[F]
        if F.size or pair is None:
            return np.append(G, beta.sum())
        i_u, i_l, yG = pair
        return np.append(G, y[-1] + 0.5 * (yG[i_u] + yG[i_l]))
