"""Validation losses of a linear classifier: the upper level ``F`` of the SVM problems.

The lower-level variable is laid out as ``y = (w, b, rest)`` where ``w`` has
``n_features`` entries; only ``w`` and ``b`` enter the validation loss. With the
validation margins :math:`m_i = y^{val}_i (w^T x^{val}_i + b)`:

``'sigmoid'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\sigma(-m_i / \\|w\\|)`, the sigmoid of the negative
    signed distance to the hyperplane (paper 000, section 4). The paper prints
    :math:`\\sigma(-(y (w^T x) + b)/\\|w\\|^2)`, which misplaces a parenthesis and squares the
    norm; the text calls the quantity "the negative signed distance", which is
    :math:`-m_i / \\|w\\|`. We implement the signed distance, as intended.
``'logistic'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\log(1 + e^{-m_i})`.
``'squared_hinge'``
    :math:`F = \\frac{1}{N_{val}} \\sum_i \\max(0, 1 - m_i)^2`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from .base import UpperLevel

VALIDATION_LOSSES = ("sigmoid", "logistic", "squared_hinge")

# Below this norm the signed distance is undefined; the sigmoid loss is then
# evaluated with the norm floored, which only matters at the degenerate w = 0.
_MIN_NORM = 1e-12


def _margin_loss(kind: str, m: np.ndarray):
    """Return (per-sample loss, derivative wrt the margin) for a margin loss."""
    if kind == "logistic":
        return -log_expit(m), -expit(-m)
    if kind == "squared_hinge":
        r = np.maximum(0.0, 1.0 - m)
        return r**2, -2.0 * r
    raise ValueError(f"unknown validation loss {kind!r}; expected one of {VALIDATION_LOSSES}")


def _mean_weights(sample_weight, n):
    """``u`` with ``u @ losses`` the (weighted) mean: ``s / sum(s)``, or ``1/n`` without weights."""
    if sample_weight is None:
        return np.full(n, 1.0 / n)
    s = np.asarray(sample_weight, dtype=float)
    if s.shape != (n,) or np.any(s < 0) or not s.sum() > 0:
        raise ValueError(f"validation sample weights must be {n} non-negative numbers with a positive sum")
    return s / s.sum()


class LinearValidationLoss(UpperLevel):
    """Validation loss ``F(x, y)`` of the linear classifier ``(w, b) = y[:p], y[p]``.

    Parameters
    ----------
    X_val : array or sparse matrix of shape (n_val, n_features)
        Validation samples.
    y_val : array of shape (n_val,) with values in {-1, +1}
        Their labels.
    loss : {'sigmoid', 'logistic', 'squared_hinge'}, default='sigmoid'
        The loss of the margins ``m_i`` (see the module docstring):
        ``'sigmoid'`` is paper 000's sigmoid of the negative signed distance.
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
       Hyperparameter Learning in Supporting Vector Machines" (paper 000 of
       ``shared/papers``):
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
        self.mean_weights = _mean_weights(sample_weight, self.y_val.shape[0])
        self.loss = loss
        self.n_hyper = n_hyper
        self.n_var = n_var
        self.n_features = X_val.shape[1]

    def _margins(self, y):
        p = self.n_features
        w, b = y[:p], y[p]
        return self.y_val * (self.X_val @ w + b), w

    def value(self, x, y) -> float:
        m, w = self._margins(y)
        if self.loss == "sigmoid":
            norm = max(np.linalg.norm(w), _MIN_NORM)
            return float(self.mean_weights @ expit(-m / norm))
        return float(self.mean_weights @ _margin_loss(self.loss, m)[0])

    def gradient(self, x, y):
        p, u = self.n_features, self.mean_weights
        m, w = self._margins(y)
        gy = np.zeros(self.n_var)
        if self.loss == "sigmoid":
            norm = max(np.linalg.norm(w), _MIN_NORM)
            s = expit(-m / norm)
            dF_dd = -s * (1.0 - s) * u  # d sigma(-d)/dd = -sigma'(-d)
            coef = dF_dd * self.y_val / norm  # through m_i / ||w||
            gy[:p] = self.X_val.T @ coef - (dF_dd @ m) * w / norm**3
            gy[p] = coef.sum()
        else:
            coef = _margin_loss(self.loss, m)[1] * self.y_val * u
            gy[:p] = self.X_val.T @ coef
            gy[p] = coef.sum()
        return np.zeros(self.n_hyper), gy
