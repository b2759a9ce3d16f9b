"""FeatureScaler: multiply each feature by its own scale, a vector hyperparameter for BilevelSearchCV."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Hidden
from sklearn.utils.validation import check_is_fitted, validate_data


class FeatureScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale feature ``j`` by ``scale[j]``: ``transform(X) = X * scale``.

    Fixed, it is a plain transformer. Searched, it gives a linear model or a
    kernel one hyperparameter per feature: placed right before the final
    step of a :class:`~sklearn.pipeline.Pipeline` searched by
    :class:`~skbilevel.BilevelSearchCV` with ``param_space`` holding
    ``{'<step>__scale': (low, high)}``, every entry of ``scale`` is searched
    on a log scale in ``[low, high]``. For a linear model, scaling feature
    ``j`` by ``s_j`` is a per-feature penalty in the original coordinates:

    .. math::

        \\alpha \\sum_j |w_j| / s_j \\;(\\text{Lasso: the weighted Lasso}), \\qquad
        \\alpha \\sum_j w_j^2 / s_j^2 \\;(\\text{Ridge}), \\qquad
        \\tfrac12 \\sum_j w_j^2 / s_j^2 \\;(\\text{L2 LogisticRegression}),

    so a feature whose scale goes to 0 is switched off, and one whose scale
    grows is penalised less. Before an RBF
    :class:`~sklearn.kernel_ridge.KernelRidge` it is one length scale
    ``1 / s_j`` per feature (automatic relevance determination).

    Parameters
    ----------
    scale : array-like of shape (n_features,) or None, default=None
        Positive scales; None means all ones (the identity).

    Attributes
    ----------
    scale_ : ndarray of shape (n_features,)
        The scales in use.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit``, when ``X`` had them.

    Notes
    -----
    One hyperparameter per feature can fit the validation folds' noise: it
    pays where the signal is strong and sparse (few relevant features among
    many, little noise) and can lose held-out accuracy against the scalar
    search on small or noisy data; compare both on held-out data. Scales far
    from 1 make the refit harder for iterative solvers (give
    LogisticRegression a larger ``max_iter``), although the search's own
    solves are exact.

    References
    ----------
    .. [1] Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort,
       J. Salmon, "Implicit differentiation of Lasso-type models for
       hyperparameter optimization", ICML 2020: the weighted Lasso, one
       penalty per feature, tuned by its hypergradient.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Lasso
    >>> from sklearn.pipeline import Pipeline
    >>> from skbilevel import BilevelSearchCV
    >>> from skbilevel.preprocessing import FeatureScaler
    >>> FeatureScaler(scale=[2.0, 0.5]).fit_transform(np.ones((1, 2)))
    array([[2. , 0.5]])
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 6))
    >>> y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=60)
    >>> pipe = Pipeline([("scale", FeatureScaler()), ("lasso", Lasso())])
    >>> search = BilevelSearchCV(pipe, {"lasso__alpha": (1e-3, 1e1), "scale__scale": (1e-2, 1e2)},
    ...                          max_iter=5).fit(X, y)
    >>> search.best_params_["scale__scale"].shape
    (6,)
    """

    _parameter_constraints = {"scale": ["array-like", None, Hidden(np.ndarray)]}

    def __init__(self, scale: ArrayLike | None = None):
        self.scale = scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.requires_fit = True
        return tags

    def _check_scale(self, n_features):
        if self.scale is None:
            return np.ones(n_features)
        scale = np.asarray(self.scale, dtype=float)
        if scale.ndim != 1 or scale.size != n_features:
            raise ValueError(f"scale must be a 1-D array of one value per feature ({n_features}); got shape "
                             f"{scale.shape}")
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError("scale must hold positive finite values")
        return scale

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> FeatureScaler:
        """Check ``X`` and ``scale``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : FeatureScaler
            The fitted transformer.
        """
        self._validate_params()
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32))
        self.scale_ = self._check_scale(X.shape[1])
        return self

    def transform(self, X: ArrayLike):
        """Return ``X * scale_``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Data to scale.

        Returns
        -------
        ndarray or sparse matrix of shape (n_samples, n_features)
            The scaled data (sparse stays sparse, in CSR or CSC as given).
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32), reset=False)
        scale = self.scale_.astype(X.dtype)
        if issparse(X):
            return X.multiply(scale).asformat(X.format)
        return X * scale

    def inverse_transform(self, X: ArrayLike):
        """Return ``X / scale_``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Scaled data.

        Returns
        -------
        ndarray or sparse matrix of shape (n_samples, n_features)
            The data before scaling.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32), reset=False)
        inverse = (1.0 / self.scale_).astype(X.dtype)
        return X.multiply(inverse).asformat(X.format) if issparse(X) else X * inverse
