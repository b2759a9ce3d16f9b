"""Validation losses: the upper levels ``F`` of the SVM, the hyper-cleaning and the search problems.

Every validation loss here is the weighted mean of a per-sample datafit
(:mod:`skbilevel.problems.datafits`) of a model's decision values ``d_i`` on
held-out samples,

.. math::

    F(x, y) = \\sum_i u_i\\, \\ell(d_i(x, y), t_i), \\qquad u_i = \\frac{s_i}{\\sum_j s_j}

(``u_i = 1/N_{val}`` without validation weights ``s``), and its gradient is
the decision values' vector-Jacobian product with ``u_i d ell / d d_i``.
:class:`DatafitValidationLoss` holds this; a subclass says how the decision
values are computed and which datafit applies:

* :class:`LinearValidationLoss` here: the linear classifier of the SVM
  problems (:class:`~skbilevel.problems.WeightedSquaredHingeSVM`);
* :class:`~skbilevel.problems.classifiers.CrossEntropyValidationLoss`: the
  logits of the hyper-cleaning models;
* :class:`~skbilevel.problems.estimator_base.ValidationLoss`: the decision
  values of a scikit-learn estimator's fold.

For :class:`LinearValidationLoss` the lower-level variable is laid out as
``y = (w, b, rest)`` where ``w`` has ``n_features`` entries; only ``w`` and
``b`` enter the loss. With the validation margins
:math:`m_i = y^{val}_i (w^T x^{val}_i + b)`:

``'sigmoid'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\sigma(-m_i / \\|w\\|)`, the sigmoid of the negative
    signed distance to the hyperplane (Huang et al. (2025), section 4). The paper prints
    :math:`\\sigma(-(y (w^T x) + b)/\\|w\\|^2)`, which misplaces a parenthesis and squares the
    norm; the text calls the quantity "the negative signed distance", which is
    :math:`-m_i / \\|w\\|`. We implement the signed distance, as intended. It depends
    on ``||w||`` as well as on the margins, so it is not a per-sample datafit.
``'logistic'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\log(1 + e^{-m_i})` (:class:`~skbilevel.problems.datafits.Logistic`).
``'squared_hinge'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\max(0, 1 - m_i)^2` (:class:`~skbilevel.problems.datafits.SquaredHinge`).

References
----------
.. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
   Hyperparameter Learning in Supporting Vector Machines", 2025: the
   upper-level objective of section 4.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._casadi import sparse_dm
from .base import UpperLevel
from .datafits import Logistic, SquaredHinge
from .linear_model import LinearModel

VALIDATION_LOSSES = ("sigmoid", "logistic", "squared_hinge")
_MARGIN_DATAFITS = {"logistic": Logistic, "squared_hinge": SquaredHinge}

# Below this norm the signed distance is undefined; the sigmoid loss is then
# evaluated with the norm floored, which only matters at the degenerate w = 0.
_MIN_NORM = 1e-12


def _mean_weights(sample_weight, n):
    """``u`` with ``u @ losses`` the (weighted) mean: ``s / sum(s)``, or ``1/n`` without weights."""
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    s = np.asarray(sample_weight, dtype=float)
    if s.shape != (n,) or np.any(s < 0) or not s.sum() > 0:
        raise ValueError(f"validation sample weights must be {n} non-negative numbers with a positive sum")
    return s / s.sum()


class DatafitValidationLoss(UpperLevel):
    """Weighted mean of a datafit of a model's decision values on held-out samples.

    ``F(x, y) = sum_i u_i ell(d_i, t_i)`` with ``u`` the normalised validation
    weights (see the module docstring). A subclass supplies :meth:`forward`
    (the decision values and what their derivative needs), :meth:`backward`
    (their vector-Jacobian product) and :meth:`datafit`.

    Parameters
    ----------
    n_val : int
        Number of held-out samples.
    sample_weight : array of shape (n_val,), optional
        Weights of the held-out samples: the loss is their weighted mean
        (the plain mean when None).

    Attributes
    ----------
    mean_weights : ndarray of shape (n_val,)
        ``u``: ``s / sum(s)``, or ``1 / n_val`` without weights.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the validation objective ``F`` of (4.1), section 4.1.

    Examples
    --------
    The mean squared error of the predictions ``d = y`` of a model whose
    parameters are its predictions:

    >>> import numpy as np
    >>> from skbilevel.problems.datafits import Squared
    >>> from skbilevel.problems.losses import DatafitValidationLoss
    >>> class Identity(DatafitValidationLoss):
    ...     def forward(self, x, y):
    ...         return y, None
    ...     def backward(self, x, y, cache, G):
    ...         return np.zeros_like(x), G
    ...     def datafit(self, D):
    ...         return Squared(np.array([1.0, 3.0]))
    >>> loss = Identity(2)
    >>> loss.value(np.zeros(1), np.array([2.0, 3.0])), loss.gradient(np.zeros(1), np.array([2.0, 3.0]))[1]
    (0.5, array([1., 0.]))
    """

    def __init__(self, n_val, sample_weight=None):
        self.mean_weights = _mean_weights(sample_weight, n_val)

    def forward(self, x, y):
        """Return ``(D, cache)``: the decision values on the held-out samples and what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, x, y, cache, G):
        """Return ``(grad_x, grad_y)`` of ``sum(G * D)``."""
        raise NotImplementedError

    def datafit(self, D):
        """Return the :class:`~skbilevel.problems.datafits.Datafit` of the decision values ``D``."""
        raise NotImplementedError

    def value(self, x, y) -> float:
        D, _ = self.forward(x, y)
        return float(self.mean_weights @ self.datafit(D).sample_loss(D))

    def gradient(self, x, y):
        D, cache = self.forward(x, y)
        G = self.datafit(D).raw_grad(D)
        u = self.mean_weights if G.ndim == 1 else self.mean_weights[:, None]
        return self.backward(x, y, cache, G * u)


class LinearValidationLoss(DatafitValidationLoss):
    """Validation loss ``F(x, y)`` of the linear classifier ``(w, b) = y[:p], y[p]``.

    Parameters
    ----------
    X_val : array or sparse matrix of shape (n_val, n_features)
        Validation samples.
    y_val : array of shape (n_val,) with values in {-1, +1}
        Their labels.
    loss : {'sigmoid', 'logistic', 'squared_hinge'}, default='sigmoid'
        The loss of the margins ``m_i`` (see the module docstring):
        ``'sigmoid'`` is the sigmoid of the negative signed distance of Huang et al. (2025).
    n_hyper : int
        Size of the hyperparameter vector ``x`` (the loss does not depend on it).
    n_var : int
        Size of the lower-level variable ``y``.
    sample_weight : array of shape (n_val,), optional
        Weights of the validation samples: the loss is their weighted mean
        (the plain mean when None).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025:
       the upper-level objective of section 4 (``'sigmoid'``, with the
       signed distance as the text defines it).

    Examples
    --------
    Two validation samples at margin ``0.5`` from ``w = 1, b = 0``:

    >>> import numpy as np
    >>> from skbilevel.problems import LinearValidationLoss
    >>> loss = LinearValidationLoss(np.array([[-0.5], [0.5]]), np.array([-1.0, 1.0]), "squared_hinge",
    ...                             n_hyper=1, n_var=2)
    >>> y = np.array([1.0, 0.0])  # (w, b)
    >>> loss.value(np.zeros(1), y)
    0.25
    >>> loss.gradient(np.zeros(1), y)[1]
    array([-0.5,  0. ])
    """

    def __init__(self, X_val, y_val, loss: str = "sigmoid", *, n_hyper: int, n_var: int, sample_weight=None):
        if loss not in VALIDATION_LOSSES:
            raise ValueError(f"unknown validation loss {loss!r}; expected one of {VALIDATION_LOSSES}")
        self.X_val = X_val
        self.y_val = np.asarray(y_val, dtype=float)
        super().__init__(self.y_val.shape[0], sample_weight)
        self.loss = loss
        self.n_hyper = n_hyper
        self.n_var = n_var
        self.n_features = X_val.shape[1]
        self.linear = LinearModel(self.n_features)
        # the margin losses are datafits of D = X_val w + b; the sigmoid also depends on ||w||
        self._datafit = _MARGIN_DATAFITS[loss](self.y_val) if loss in _MARGIN_DATAFITS else None

    def forward(self, x, y):
        """Return ``(X_val w + b, w)``."""
        return self.linear.decision(y, self.X_val), self.linear.split(y)[0]

    def backward(self, x, y, w, coef):
        gy = np.zeros(self.n_var)
        gy[: self.n_features + 1] = self.linear.adjoint(coef, self.X_val)
        return np.zeros(self.n_hyper), gy

    def datafit(self, D):
        return self._datafit

    def value(self, x, y) -> float:
        if self.loss != "sigmoid":
            return super().value(x, y)
        D, w = self.forward(x, y)
        norm = max(np.linalg.norm(w), _MIN_NORM)
        return float(self.mean_weights @ expit(-(self.y_val * D) / norm))

    def symbolic_value(self, ca, x, y):
        """``F`` as a casadi expression of the symbols ``x`` and ``y`` (for IPOPT; see
        ``skbilevel.methods._ipopt``), the same loss as :meth:`value`."""
        p = self.n_features
        w = y[:p]
        m = ca.DM(self.y_val) * (ca.mtimes(sparse_dm(ca, self.X_val), w) + y[p])
        if self.loss == "sigmoid":
            per_sample = 1.0 / (1.0 + ca.exp(m / ca.sqrt(ca.dot(w, w))))
        elif self.loss == "logistic":  # log(1 + e^-m) without overflow
            per_sample = ca.fmax(-m, 0.0) + ca.log(1.0 + ca.exp(-ca.fabs(m)))
        else:
            per_sample = ca.fmax(1.0 - m, 0.0) ** 2
        return ca.dot(ca.DM(self.mean_weights), per_sample)

    def gradient(self, x, y):
        if self.loss != "sigmoid":
            return super().gradient(x, y)
        p, u = self.n_features, self.mean_weights
        D, w = self.forward(x, y)
        m = self.y_val * D
        norm = max(np.linalg.norm(w), _MIN_NORM)
        s = expit(-m / norm)
        dF_dd = -s * (1.0 - s) * u  # d sigma(-d)/dd = -sigma'(-d)
        coef = dF_dd * self.y_val / norm  # through m_i / ||w||
        gy = np.zeros(self.n_var)
        gy[:p] = self.X_val.T @ coef - (dF_dd @ m) * w / norm**3
        gy[p] = coef.sum()
        return np.zeros(self.n_hyper), gy
