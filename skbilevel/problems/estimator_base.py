"""A scikit-learn estimator's training problem as a lower level, and its validation loss.

Cross-validation is a bilevel problem (Grazzi et al. (2026), section 4.1, eqs.
(4.1)-(4.2), with one training / validation split per fold): for each fold
``k`` the lower level is the training problem of the estimator on the
training part at hyperparameters ``lambda``,

.. math::

    y_k(x) = \\arg\\min_y f_k(\\lambda(x), y),

and the upper level is the mean over folds of a smooth validation loss of
the fitted model's decision values on the held-out part. ``x`` is the
vector the outer loop moves: ``x_j = log(lambda_j)`` for a hyperparameter
searched on a log scale, ``x_j = lambda_j`` for a linear one.

Following jaxopt's implicit differentiation, a lower level here is described
by its *optimality map* ``G(x, y) = 0`` (the gradient of a smooth training
objective, or the KKT conditions of a non-smooth one restricted to its active
set: the support of a Lasso, the free support vectors of an SVC). Subclasses
provide

- ``solve``: scikit-learn's own solver (or an exact closed form), warm
  started from the previous solution where the solver allows;
- ``adjoint(x, y, g)``: ``(v, mu)`` with ``(d_y G)^T v = g`` (``mu`` empty:
  these lower levels declare no ``constraints``);
- ``cross_vjp(x, y, v)``: ``(d_x G)^T v``;
- ``decision(x, y, X)`` and ``decision_vjp``: the decision values on new
  data and their derivatives (a kernel's ``gamma`` enters here too).

:func:`skbilevel.methods.hypergradient.hypergradient` then gives
``grad h = grad_x F - (d_x G)^T v`` with ``(d_y G)^T v = grad_y F``, the
hypergradient of Grazzi et al. (2026), section 5.1, obtained by differentiating the
optimality condition ``G = 0`` as that section differentiates the
stationarity condition (5.4), for every estimator alike.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import issparse

from .base import LowerLevel
from .datafits import validation_datafit
from .losses import DatafitValidationLoss

#: Scales a hyperparameter may be searched on.
SCALES = ("log", "linear")


def _matrix(X):
    """CSR or a float array: products ``X @ W`` then never densify a sparse ``X``."""
    return X.tocsr().astype(float, copy=False) if issparse(X) else np.asarray(X, dtype=float)


class EstimatorLowerLevel(LowerLevel):
    """Training problem of one scikit-learn estimator on one training fold.

    The base class of the lower levels of
    :class:`~skbilevel.BilevelSearchCV`. It maps the vector ``x`` the outer
    loop moves to the estimator's parameters (:meth:`values`,
    :meth:`chain`, :meth:`to_x`) and checks the searched names; a subclass
    sets :attr:`hyperparameters`, :attr:`loss` and ``n_var`` and implements
    ``solve``, ``adjoint``, ``cross_vjp``, :meth:`decision` and
    :meth:`decision_vjp` for its optimality map ``G(x, y) = 0`` (see the
    module docstring). ``value`` and ``grad_y`` raise ``NotImplementedError``
    here: the hypergradient only needs the methods above.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Its parameters other than the searched ones are read once here
        (``fit_intercept``, ``kernel``, ...); unsupported settings raise
        ``ValueError``.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold.
    y : array of shape (n_samples,)
        Training targets (regressors) or labels (classifiers) of the fold.
    names : sequence of str
        The estimator parameters that ``x`` holds, in order; each must be in
        :attr:`hyperparameters`.
    scales : sequence of {'log', 'linear'}
        How each entry of ``x`` maps to its parameter: ``lambda_j = exp(x_j)``
        or ``lambda_j = x_j``; one per name.
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights, entering the training objective as in the
        estimator's own ``fit``.

    Attributes
    ----------
    hyperparameters : tuple of str
        Class attribute: the parameters that can be differentiated.
    penalises_upward : tuple of str
        Class attribute: the hyperparameters whose larger values regularise
        more (``alpha``; not ``C``). BilevelSearchCV's initial scan runs
        from the strongest penalty down, as a regularisation path does.
    loss : str
        Class attribute: the validation loss matched to the estimator
        (see :class:`ValidationLoss`).
    capabilities : frozenset of str
        ``{'solve', 'adjoint', 'cross_vjp'}`` (the linear classifiers add
        ``'hvp'`` and ``'grad_x'``).
    names, scales : tuple of str
        The searched parameters and their scales.
    params : dict
        ``estimator.get_params(deep=False)``: the fixed settings, and the
        values of parameters not in ``names``.
    n_hyper : int
        ``len(names)``, the size of ``x``.
    sample_weight : ndarray of shape (n_samples,) or None
        The per-sample weights as floats.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: hyperparameter optimisation
       as a bilevel problem, section 4.1, eqs. (4.1)-(4.2) (this class is the
       training problem (4.2) of one fold); the hypergradient by implicit
       differentiation of the stationarity condition (5.4), section 5.1.

    Examples
    --------
    A subclass declares what it can differentiate; ``x`` holds ``log(alpha)``
    and ``l1_ratio``:

    >>> import numpy as np
    >>> from sklearn.linear_model import ElasticNet
    >>> from skbilevel.problems.estimator_base import EstimatorLowerLevel
    >>> class MyLowerLevel(EstimatorLowerLevel):
    ...     hyperparameters = ("alpha", "l1_ratio")
    >>> X, y = np.arange(8.0).reshape(4, 2), np.arange(4.0)
    >>> lower = MyLowerLevel(ElasticNet(), X, y, names=["alpha", "l1_ratio"], scales=["log", "linear"])
    >>> x = np.array([np.log(2.0), 0.5])
    >>> lower.n_hyper, lower.values(x), lower.chain(x)
    (2, {'alpha': 2.0, 'l1_ratio': 0.5}, array([2., 1.]))
    >>> np.allclose(lower.to_x({"alpha": 2.0, "l1_ratio": 0.5}), x)
    True
    >>> MyLowerLevel(ElasticNet(), X, y, names=["tol"], scales=["log"])
    Traceback (most recent call last):
    ...
    ValueError: ElasticNet hyperparameters ['tol'] cannot be differentiated; supported: ['alpha', 'l1_ratio']
    """

    hyperparameters: tuple = ()
    penalises_upward: tuple = ()
    loss: str = "squared"
    capabilities = frozenset({"solve", "adjoint", "cross_vjp"})

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        names, scales = tuple(names), tuple(scales)
        unknown = [n for n in names if n not in self.hyperparameters]
        if unknown:
            raise ValueError(
                f"{type(estimator).__name__} hyperparameters {unknown} cannot be differentiated; "
                f"supported: {list(self.hyperparameters)}"
            )
        bad = [s for s in scales if s not in SCALES]
        if bad or len(scales) != len(names):
            raise ValueError(f"scales must be one of {SCALES} per name; got {scales}")
        self.names, self.scales = names, scales
        self.params = estimator.get_params(deep=False)
        self.X = X
        self.y = np.asarray(y)
        if self.y.ndim != 1:
            raise ValueError(f"{type(estimator).__name__} hypergradients need a 1-D target; "
                             f"got y of shape {self.y.shape}")
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.n_hyper = len(names)

    @classmethod
    def fold_options(cls, estimator, X, splits, sample_weight=None) -> list:
        """Keyword arguments for each fold's lower level that a search computes once for all its folds.

        Parameters
        ----------
        estimator : estimator
            The final step of the searched estimator.
        X : ndarray or sparse matrix, or None
            All the samples, checked, as the folds' lower levels receive
            them; None where a Pipeline step transforms each fold's part.
        splits : list of tuple
            The ``(train, test)`` indices of each fold.
        sample_weight : ndarray of shape (n_samples,), optional
            The weights of all the samples.

        Returns
        -------
        list of dict
            One per fold; here empty dicts (nothing shared).
        """
        return [{} for _ in splits]

    def comparison_tol(self, tol: float) -> float:
        """The relative tolerance of :meth:`solve` at points a search only compares, given its own ``tol``.

        A search ranks the points of its coarse grid and of its score refinement
        by their validation loss and score, as GridSearchCV ranks fits stopped at
        the estimator's default tolerance; ``tol`` stands for that tolerance.
        A lower level whose estimator stops by another measure may translate
        it (see :class:`~skbilevel.problems.linear_classifiers.LogisticRegressionLowerLevel`).

        Parameters
        ----------
        tol : float
            The search's relative tolerance for compared points.

        Returns
        -------
        float
            ``tol`` itself, here.
        """
        return tol

    # -- hyperparameters ----------------------------------------------------
    def values(self, x) -> dict:
        """Return the estimator parameters ``{name: lambda_j}`` at ``x``."""
        return {n: (float(np.exp(v)) if s == "log" else float(v)) for n, s, v in zip(self.names, self.scales, x)}

    def chain(self, x) -> np.ndarray:
        """Return ``d lambda_j / d x_j`` (``lambda_j`` on a log scale, 1 on a linear one)."""
        return np.array([np.exp(v) if s == "log" else 1.0 for s, v in zip(self.scales, x)])

    def to_x(self, params: dict) -> np.ndarray:
        """Return ``x`` for parameter values ``params`` (the inverse of :meth:`values`)."""
        return np.array([np.log(params[n]) if s == "log" else float(params[n])
                         for n, s in zip(self.names, self.scales)])

    def _per_x(self, x, by_name: dict) -> np.ndarray:
        """Derivatives w.r.t. the parameters (a dict) -> derivatives w.r.t. ``x``."""
        return np.array([by_name[n] for n in self.names], dtype=float) * self.chain(x)

    # -- what a subclass provides --------------------------------------------
    def encode_targets(self, y) -> np.ndarray:
        """Targets of :class:`ValidationLoss` for labels ``y`` (regressors: ``y`` itself)."""
        return np.asarray(y, dtype=float)

    def decision(self, x, y, X) -> np.ndarray:
        """Decision values of the model ``y`` on ``X``: shape (n,) or (n, n_outputs)."""
        raise NotImplementedError

    def decision_vjp(self, x, y, X, g) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(grad_x, grad_y)`` of ``sum(decision(x, y, X) * g)``."""
        raise NotImplementedError

    def value(self, x, y) -> float:
        raise NotImplementedError

    def grad_y(self, x, y) -> np.ndarray:
        raise NotImplementedError


class ClassifierLowerLevel(EstimatorLowerLevel):
    """An :class:`EstimatorLowerLevel` of a classifier: it knows the classes of its training fold.

    ``classes_`` are the sorted training labels. Binary targets are encoded
    as ``-1`` / ``+1`` (``classes_[1]`` is positive, scikit-learn's
    convention); multi-class targets as the index of the class in
    ``classes_``. A fold with a single class, and validation labels absent
    from the training fold, raise ``ValueError``.

    Parameters
    ----------
    estimator : scikit-learn classifier
        As in :class:`EstimatorLowerLevel`.
    X : array or sparse matrix of shape (n_samples, n_features)
        Training samples of the fold.
    y : array of shape (n_samples,)
        Training labels of the fold (any sortable labels).
    names : sequence of str
        The searched parameters, each in :attr:`hyperparameters`.
    scales : sequence of {'log', 'linear'}
        The scale of each searched parameter.
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights.

    Attributes
    ----------
    classes_ : ndarray
        The sorted distinct training labels.
    binary : bool
        Whether the fold has two classes.
    loss : str
        ``'log'`` by default (subclasses may choose ``'squared_hinge'``).
    n_hyper : int
        ``len(names)``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: section 4.1, eqs.
       (4.1)-(4.2), with the cross-entropy as the validation loss of a
       classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skbilevel.problems.estimator_base import ClassifierLowerLevel
    >>> class MyClassifierLowerLevel(ClassifierLowerLevel):
    ...     hyperparameters = ("C",)
    >>> X = np.arange(8.0).reshape(4, 2)
    >>> lower = MyClassifierLowerLevel(LogisticRegression(), X, ["a", "b", "b", "a"], ["C"], ["log"])
    >>> lower.classes_.tolist(), lower.binary, lower.encode_targets(["b", "a"])
    (['a', 'b'], True, array([ 1., -1.]))
    >>> lower = MyClassifierLowerLevel(LogisticRegression(), X, [0, 1, 2, 2], ["C"], ["log"])
    >>> lower.binary, lower.encode_targets([2, 0])
    (False, array([2, 0]))
    """

    loss = "log"

    def __init__(self, estimator, X, y, names, scales, sample_weight=None):
        super().__init__(estimator, X, y, names, scales, sample_weight)
        self.classes_ = np.unique(self.y)
        if self.classes_.size < 2:
            raise ValueError(f"a training fold holds a single class ({self.classes_[0]!r}); "
                             "use a stratified cross-validation splitter")

    @property
    def binary(self) -> bool:
        return self.classes_.size == 2

    def encode_targets(self, y) -> np.ndarray:
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, self.classes_.size - 1)
        unseen = self.classes_[idx] != y
        if unseen.any():
            raise ValueError(f"validation labels {np.unique(y[unseen]).tolist()} do not occur in the "
                             "training fold; use a stratified cross-validation splitter")
        return 2.0 * idx - 1.0 if self.binary else idx


class ValidationLoss(DatafitValidationLoss):
    """Mean validation loss of a fitted estimator: the upper level of one fold.

    .. math::

        F(x, y) = \\frac{1}{n_{val}} \\sum_i \\ell(d_i(x, y), t_i),

    with ``d = lower.decision(x, y, X_val)`` and ``t = lower.encode_targets(y_val)``:

    ``'squared'``
        :math:`(d_i - t_i)^2` (regressors; a binary classifier has
        :math:`t_i = \\pm 1`), summed over classes against the one-vs-rest
        targets :math:`\\pm 1` for a multi-class one;
    ``'log'``
        :math:`\\log(1 + e^{-t_i d_i})` for a binary classifier (``t_i = \\pm 1``),
        the cross-entropy of ``softmax(d_i)`` for a multi-class one;
    ``'squared_hinge'``
        :math:`\\max(0, 1 - t_i d_i)^2`, summed over classes one-vs-rest for a
        multi-class one.

    Parameters
    ----------
    lower : EstimatorLowerLevel
        The training problem of the fold; it gives the decision values and
        encodes the labels.
    X_val : array or sparse matrix of shape (n_val, n_features)
        Held-out samples of the fold.
    y_val : array of shape (n_val,)
        Their targets or labels.
    loss : {'squared', 'log', 'squared_hinge'} or None, default=None
        The loss ``ell``; None takes ``lower.loss`` (squared for the
        regressors, log for :class:`LogisticRegression
        <sklearn.linear_model.LogisticRegression>`, squared hinge for the
        SVCs).
    sample_weight : array of shape (n_val,), optional
        Weights of the held-out samples: the loss is their weighted mean
        (the plain mean when None).

    Attributes
    ----------
    loss : str
        The loss in use.
    targets : ndarray of shape (n_val,)
        ``lower.encode_targets(y_val)``.
    KINDS : tuple of str
        The accepted losses.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the validation objective
       ``F`` of (4.1), section 4.1 (squared error for regression,
       cross-entropy for classification).

    Examples
    --------
    The validation loss of a ridge fold and its hypergradient in
    ``log(alpha)``, checked by central differences:

    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skbilevel.methods.hypergradient import hypergradient
    >>> from skbilevel.problems import BilevelProblem
    >>> from skbilevel.problems.estimator_base import ValidationLoss
    >>> from skbilevel.problems.ridge import RidgeLowerLevel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 3))
    >>> t = X @ [1.0, -2.0, 0.0] + 0.1 * rng.normal(size=30)
    >>> lower = RidgeLowerLevel(Ridge(), X[:20], t[:20], ["alpha"], ["log"])
    >>> upper = ValidationLoss(lower, X[20:], t[20:])
    >>> y, _ = lower.solve(np.zeros(1))
    >>> F, grad, _ = hypergradient(BilevelProblem(upper, lower), np.zeros(1), y)
    >>> upper.loss, round(F, 4)
    ('squared', 0.0329)
    >>> h = lambda x: upper.value(x, lower.solve(x)[0])
    >>> bool(np.isclose(grad[0], (h([1e-6]) - h([-1e-6])) / 2e-6, rtol=1e-5))
    True
    """

    KINDS = ("squared", "log", "squared_hinge")

    def __init__(self, lower: EstimatorLowerLevel, X_val, y_val, loss: str | None = None, sample_weight=None):
        self.loss = lower.loss if loss is None else loss
        if self.loss not in self.KINDS:
            raise ValueError(f"unknown validation loss {self.loss!r}; expected one of {self.KINDS}")
        self.lower, self.X_val = lower, X_val
        self.targets = lower.encode_targets(y_val)
        super().__init__(len(self.targets), sample_weight)

    def forward(self, x, y):
        """Return the fold model's decision values on ``X_val`` (no cache)."""
        return self.lower.decision(x, y, self.X_val), None

    def backward(self, x, y, cache, G):
        return self.lower.decision_vjp(x, y, self.X_val, G)

    def datafit(self, D):
        """Binary or multi-class by the shape of ``D``: see :func:`~skbilevel.problems.datafits.validation_datafit`."""
        return validation_datafit(self.loss, self.targets, D)
