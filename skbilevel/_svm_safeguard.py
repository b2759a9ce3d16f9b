"""What BilevelSVC checks its learned weights against: the cross-validated uniform SVM.

Learning one weight per training sample on a validation set of a few hundred
rows can fit that set rather than the data: thousands of free weights, a
few hundred equations. ``BilevelSVC`` therefore measures, by K-fold
cross-validation on the validation rows, whether the learned weighting
predicts held-out validation labels better than the SVM that users run
today: uniform weights with ``C`` chosen by cross-validation on all the rows
(``GridSearchCV(LinearSVC(), {'C': ...})``). This module holds the two
pieces: :func:`cross_validated_log_C` (the uniform SVM's ``C``) and
:func:`validation_folds` (the folds the comparison is made on).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from .problems import WeightedSquaredHingeSVM

#: The ``C`` grid users search with ``GridSearchCV(LinearSVC(), ...)``: 17 values from 1e-4 to 1e4
_LOG_C_GRID = np.log(np.logspace(-4, 4, 17))


def stack_rows(A, B):
    """Rows of ``A`` then of ``B`` (both dense or both sparse)."""
    return sp.vstack([A, B], format="csr") if sp.issparse(A) else np.vstack([A, B])


def fit_weighted_svm(X, y, omega, y0=None):
    """Solve the weighted L2-SVM ``min 1/2 ||w||^2 + 1/2 sum omega_i max(0, 1 - y_i (w^T x_i + b))^2``.

    Returns ``(w, b, theta, converged)``; ``theta = (w, b, xi)`` warm-starts a
    neighbouring solve. Rows of weight 0 do not count.
    """
    svm = WeightedSquaredHingeSVM(X, y, per_sample=True, sample_weight=omega)
    theta, converged = svm.solve(np.zeros(y.size), y0=y0)
    w, b, _ = svm.split(theta)
    return w, b, theta, converged


def uniform_svm(X, y, sample_weight, C):
    """``LinearSVC(C=C)`` fitted with ``sample_weight``: ``(w, b)``.

    The uniformly weighted SVM is scikit-learn's own, so that the baseline
    the learned weights must beat is the model users fit today, to the bit.
    """
    svc = LinearSVC(C=C).fit(X, y, sample_weight=sample_weight)
    return svc.coef_.ravel(), float(svc.intercept_[0])


def cross_validated_log_C(X, y, sample_weight, log_bounds, n_splits):
    """``log C`` of :func:`uniform_svm` chosen by stratified K-fold cross-validation.

    What ``GridSearchCV(LinearSVC(), {'C': np.logspace(-4, 4, 17)}, cv=n_splits)``
    picks on the same rows in the same order: the 17 values of ``C`` from
    1e-4 to 1e4 kept inside ``log_bounds`` (both ends added when the grid
    misses them), unshuffled stratified folds, mean held-out accuracy, the
    first best on ties. liblinear's ConvergenceWarnings at the grid's largest
    ``C`` are not repeated: those points are candidates, not the model.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) with values in {-1, +1}
    sample_weight : ndarray of shape (n_samples,)
        Fixed weights ``s_i``: in the SVM and in the accuracy.
    log_bounds : tuple of two floats
        Bounds on ``log C``.
    n_splits : int
        Number of folds; fewer when the smaller class has fewer samples.
    """
    low, high = log_bounds
    grid = np.unique(np.clip(np.concatenate([_LOG_C_GRID, [low, high]]), low, high))
    scores = np.zeros(grid.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in _stratified_folds(y, n_splits, None):
            for j, log_C in enumerate(grid):
                w, b = uniform_svm(X[train], y[train], sample_weight[train], np.exp(log_C))
                s = sample_weight[test]
                scores[j] += s @ held_out_correct(w, b, X[test], y[test]) / s.sum()
    return float(grid[int(np.argmax(scores))])


def validation_folds(y_val, n_splits, random_state):
    """Stratified folds ``(fit_rows, held_out_rows)`` of the validation rows; ``[]`` when too few.

    ``n_splits`` is lowered to the size of the smaller class; a class with
    a single validation sample leaves nothing to cross-validate on.
    """
    return _stratified_folds(y_val, n_splits, random_state)


def _stratified_folds(y, n_splits, random_state):
    smallest = np.unique(y, return_counts=True)[1].min()
    k = min(n_splits, int(smallest))
    if k < 2:
        return []
    splitter = StratifiedKFold(k, shuffle=random_state is not None, random_state=random_state)
    return list(splitter.split(np.zeros(y.size), y))


def held_out_correct(w, b, X, y):
    """1.0 for each row that ``sign(w^T x + b)`` classifies right, else 0.0."""
    return ((np.asarray(X @ w).ravel() + b) * y > 0).astype(float)
