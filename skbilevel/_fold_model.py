"""A fold's lower-level solution dressed as a fitted estimator, so that any scorer can score it.

BilevelSearchCV solves each fold's training problem itself (warm started
from the previous outer iteration), so refitting a scikit-learn estimator
only to score it would double the cost. The solution ``y`` at ``x`` already
gives the decision values; these objects turn them into ``predict``,
``decision_function`` and (for a log-loss model) ``predict_proba``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class NoProbabilities(AttributeError):
    """A scorer asked a fold model without a log-loss for probabilities."""


class _FoldRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, lower=None, x=None, y=None):
        self.lower, self.x, self.y = lower, x, y

    def predict(self, X):
        return self.lower.decision(self.x, self.y, X)

    def score(self, X, y, sample_weight=None):
        """R^2, as ``RegressorMixin.score`` (``r2_score``), without its input validation: the default
        ``scoring`` scores every fold at every evaluated point, and the checks cost more than the fit."""
        if sample_weight is not None:
            return super().score(X, y, sample_weight)
        y = np.asarray(y, dtype=float)
        residual = float(np.sum((y - self.predict(X)) ** 2))
        total = float(np.sum((y - y.mean()) ** 2))
        if total == 0.0:  # r2_score's force_finite convention
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total


class _FoldClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, lower=None, x=None, y=None):
        self.lower, self.x, self.y = lower, x, y
        self.classes_ = lower.classes_ if lower is not None else None

    def decision_function(self, X):
        return self.lower.decision(self.x, self.y, X)

    def predict(self, X):
        d = self.decision_function(X)
        idx = (d > 0).astype(int) if d.ndim == 1 else np.argmax(d, axis=1)
        return self.classes_[idx]

    def score(self, X, y, sample_weight=None):
        """Accuracy, as ``ClassifierMixin.score``, without ``accuracy_score``'s input validation (see
        :meth:`_FoldRegressor.score`)."""
        if sample_weight is not None:
            return super().score(X, y, sample_weight)
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def predict_proba(self, X):
        if self.lower.loss != "log":
            raise NoProbabilities(f"The scoring needs predict_proba, which {type(self.lower).__name__} has not.")
        d = self.decision_function(X)
        if d.ndim == 1:
            p = expit(d)
            return np.column_stack([1.0 - p, p])
        return softmax(d, axis=1)


def fold_model(lower, x, y):
    """Return a fitted-estimator view of the solution ``y`` of ``lower`` at ``x``."""
    cls = _FoldClassifier if hasattr(lower, "classes_") else _FoldRegressor
    return cls(lower, x, y)


def _r2(y, pred, w):
    residual = np.average((y - pred) ** 2, axis=0, weights=w)
    total = np.average((y - np.average(y, axis=0, weights=w)) ** 2, axis=0, weights=w)
    # r2_score's force_finite convention for a constant target
    r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.where(residual == 0, 1.0, 0.0))
    return float(np.mean(r2))


#: Metrics of a scoring string computed from the fold model's predictions without the scorer's input
#: validation, which costs more than a warm-started fold solve; each equals scikit-learn's metric of that
#: name (its default ``multioutput='uniform_average'``), as the tests check.
_FAST_METRICS = {
    "neg_mean_squared_error": lambda y, p, w: -float(np.mean(np.average((y - p) ** 2, axis=0, weights=w))),
    "neg_root_mean_squared_error":
        lambda y, p, w: -float(np.mean(np.sqrt(np.average((y - p) ** 2, axis=0, weights=w)))),
    "neg_mean_absolute_error": lambda y, p, w: -float(np.mean(np.average(np.abs(y - p), axis=0, weights=w))),
    "r2": _r2,
    "accuracy": lambda y, p, w: float(np.average(p == y, weights=w)),
}


def fast_metric(scoring):
    """The metric ``(y_true, y_pred, sample_weight) -> score`` of a fold model for ``scoring``, or None
    where only the scorer itself applies."""
    return _FAST_METRICS.get(scoring) if isinstance(scoring, str) else None


def score_fold(model, metric, X, y, params):
    """``metric`` of the fold model on ``(X, y)``, or None when ``params`` (the scorer's routed metadata)
    hold more than a ``sample_weight``."""
    if set(params) - {"sample_weight"}:
        return None
    pred, y = model.predict(X), np.asarray(y)
    if y.ndim == 2 and pred.ndim == 1 and y.shape[1] == 1:
        y = y.ravel()
    w = params.get("sample_weight")
    return metric(y, pred, None if w is None else np.asarray(w, dtype=float))
