"""The linear model shared by the linear lower levels: decision values ``D = X W + beta b`` and their adjoint.

The squared-hinge SVM (:class:`~skbilevel.problems.WeightedSquaredHingeSVM`),
the softmax regression of hyper-cleaning
(:class:`~skbilevel.problems.classifiers.WeightedSoftmaxRegression`), the
linear classifiers of the search
(:mod:`~skbilevel.problems.linear_classifiers`) and the SVM's validation
loss (:class:`~skbilevel.problems.LinearValidationLoss`) all score samples
by ``K`` linear functions of the features. :class:`LinearModel` maps their
parameter vector to the decision values and back (the vector-Jacobian
product); each problem pairs it with a per-sample datafit
(:mod:`skbilevel.problems.datafits`) and its own penalty and weights.

The parameter vector is laid out in one of three ways, the ones the
problems have always used (each with its own arithmetic, so that no
problem's numbers move):

``'vector'``
    one function, ``theta = (w, b)``; ``D`` has shape ``(n,)``.
``'rows'``
    ``theta = [W | b].ravel()`` with one row ``(w_k, b_k)`` per function;
    ``D = X W^T + beta b`` has shape ``(n, K)``.
``'columns'``
    ``theta = (W.ravel(), b)`` with ``W`` of shape ``(n_features, K)``;
    ``D = X W + b`` has shape ``(n, K)``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import issparse

LAYOUTS = ("vector", "rows", "columns")


def _weighted_gram(A, w, single=False) -> np.ndarray:
    """``A^T diag(w) A`` as a dense array, for dense or sparse ``A``.

    Dense ``A`` with ``w >= 0`` goes through ``R = sqrt(w) A``: numpy runs ``R.T @ R`` as a symmetric
    rank-k update, half the flops of the general product; with ``single``, in single precision (half
    the time again; the result, returned in double precision, is then accurate to about 1e-7 of its
    norm: for Newton steps whose gradient is checked in double precision, not for exact solves).

    Parameters
    ----------
    A : array or sparse matrix of shape (n_samples, n_features)
        The rows.
    w : array of shape (n_samples,)
        A weight per row (any sign).
    single : bool, default=False
        Form a dense, non-negatively weighted product in single precision.

    Returns
    -------
    ndarray of shape (n_features, n_features)
        The weighted Gram matrix.

    Examples
    --------
    >>> import numpy as np
    >>> A, w = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 0.5])
    >>> bool(np.allclose(_weighted_gram(A, w), A.T @ np.diag(w) @ A))
    True
    """
    if not issparse(A) and np.all(w >= 0):
        R = np.multiply(A, np.sqrt(w)[:, None], dtype=np.float32 if single else np.float64)
        return (R.T @ R).astype(np.float64, copy=False)
    G = A.T @ (A.multiply(w[:, None]).tocsr() if issparse(A) else A * w[:, None])
    return G.toarray() if issparse(G) else G


class LinearModel:
    """``K`` linear decision functions ``D = X W + beta b`` of a parameter vector.

    Parameters
    ----------
    n_features : int
        Number of features ``p``.
    n_outputs : int, default=1
        Number of decision functions ``K`` (1 for the ``'vector'`` layout).
    layout : {'vector', 'rows', 'columns'}, default='vector'
        How the parameters are stored (see the module docstring).
    intercept_scaling : float, default=1.0
        ``beta``: the intercept enters ``D`` as ``beta b`` (``'rows'`` only;
        liblinear's synthetic feature, or 0 without an intercept).

    Attributes
    ----------
    n_params : int
        ``K (p + 1)``, the size of the parameter vector.

    References
    ----------
    .. [1] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
       "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
       a generalised linear model as a datafit of ``X w`` plus a penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems.linear_model import LinearModel
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> model = LinearModel(2, 2, layout="rows")
    >>> theta = np.array([1.0, 0.0, 0.5, 0.0, 1.0, -0.5])  # rows (w_k, b_k)
    >>> model.decision(theta, X)
    array([[1.5, 1.5],
           [3.5, 3.5]])
    >>> model.adjoint(np.array([[1.0, 0.0], [0.0, 1.0]]), X)
    array([1., 2., 1., 3., 4., 1.])
    """

    def __init__(self, n_features: int, n_outputs: int = 1, *, layout: str = "vector",
                 intercept_scaling: float = 1.0):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        if layout == "vector" and n_outputs != 1:
            raise ValueError("the 'vector' layout holds one decision function")
        self.n_features, self.n_outputs, self.layout = int(n_features), int(n_outputs), layout
        self.beta = float(intercept_scaling)
        self.n_params = self.n_outputs * (self.n_features + 1)

    def split(self, theta):
        """Return the views ``(W, b)`` of ``theta``: ``w`` and the scalar ``b`` for ``'vector'``."""
        p, K = self.n_features, self.n_outputs
        if self.layout == "vector":
            return theta[:p], theta[p]
        if self.layout == "rows":
            Y = theta.reshape(K, p + 1)
            return Y[:, :-1], Y[:, -1]
        return theta[: p * K].reshape(p, K), theta[p * K :]

    def decision(self, theta, X):
        """Return the decision values ``D`` of the rows of ``X``."""
        W, b = self.split(theta)
        if self.layout == "vector":
            return np.asarray(X @ W).ravel() + b
        if self.layout == "rows":
            return np.asarray(X @ W.T) + self.beta * b
        return X @ W + b

    def adjoint(self, G, X):
        """Return ``d(sum(G * decision(theta, X))) / d theta``, laid out like ``theta``."""
        if self.layout == "vector":
            return np.concatenate([np.asarray(X.T @ G).ravel(), [G.sum()]])
        if self.layout == "rows":
            return np.column_stack([np.asarray(X.T @ G).T, self.beta * G.sum(axis=0)]).ravel()
        return np.concatenate([np.asarray(X.T @ G).ravel(), G.sum(axis=0)])
