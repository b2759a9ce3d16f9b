"""What the bilevel classifiers share: fit's input checks, the validation split, the method run, predictions.

:class:`~skbilevel.BilevelSVC` and :class:`~skbilevel.HyperCleaningClassifier`
learn hyperparameters of a lower-level model on a validation (or trusted)
set, then predict with the model fitted at them. Their ``fit`` validates the
input and splits off the validation set here, builds its own bilevel problem,
runs the method through :meth:`BilevelClassifier._run_method`, and assigns
the fitted attributes itself; prediction goes through the subclass's
decision scores.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._progress import OuterProgress
from ._result import Status
from ._validation_split import (ValidationSplit, check_magnitude, check_sample_weight, classes_from_scores,
                                split_validation, squares_limit)
from ._warnings import warn
from .methods import run_method


class BilevelClassifier(ClassifierMixin, BaseEstimator):
    """Base of the classifiers whose ``fit`` learns hyperparameters on a validation set.

    A subclass declares its parameters (``validation_fraction``,
    ``random_state``, ``max_iter``, ``tol``, ``verbose`` among them), writes
    ``fit`` from the helpers below, and implements :meth:`_decision_scores`
    on validated data.
    """

    # fit runs a bilevel method: BilevelSearchCV explains why it cannot differentiate this estimator
    _learns_own_hyperparameters = True

    #: How the error for a single class ends its first words (after the class name).
    _needs_two_classes = "needs samples of at least 2 classes"

    #: The name of the held-out set in messages ('validation', 'trusted').
    _validation_set_name = "validation"

    # -- fit helpers ------------------------------------------------------------
    def _magnitude_limit(self, n_features):
        """``(limit, why)``: features of magnitude ``>= limit`` are refused, for the reason ``why``."""
        return squares_limit(n_features), "whose squares overflow in float64"

    def _validate_training_data(self, X, y, sample_weight, dtype):
        """Return ``X, y, sample_weight, classes`` checked for a classifier's ``fit``.

        ``sample_weight`` must be non-negative (None: all 1), ``y`` must
        hold at least two classes and the features of ``X`` must not overflow
        when squared.
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=dtype)
        check_magnitude(X, "X", *self._magnitude_limit(X.shape[1]))
        check_classification_targets(y)
        sample_weight = check_sample_weight(sample_weight, X)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"{type(self).__name__} {self._needs_two_classes}; got one class, {classes[0]!r}.")
        return X, y, sample_weight, classes

    def _split(self, X, y, sample_weight, X_val, y_val) -> ValidationSplit:
        """The training and validation parts of ``(X, y)``, or ``(X, y)`` and the given validation set."""
        return split_validation(self, X, y, sample_weight, X_val, y_val, classes=self.classes_,
                                validation_fraction=self.validation_fraction, random_state=self.random_state,
                                name=self._validation_set_name)

    def _run_method(self, method, problem, x0, options, *, callback=None, label="", budget_stop=False):
        """Run the bilevel ``method`` on ``problem`` from ``x0``; warn when it stops short of its tolerance.

        ``options`` are the method's own (beyond ``tol``, ``max_iter``,
        ``verbose`` and ``callback``, which come from the estimator); a name
        the method does not take raises ``TypeError``; ``label``
        adds to the name shown by the progress bar. A stop asked for by
        ``callback`` is no failure and is not warned about; nor, with
        ``budget_stop``, a stop at ``max_iter`` (the caller judges the result
        on held-out data).
        """
        name = type(self).__name__
        with OuterProgress(f"{name} ({method}{label})", self.verbose, self.max_iter) as progress:
            settings = dict(tol=self.tol, max_iter=self.max_iter, verbose=progress.method_verbose,
                            callback=progress.wrap(callback))
            result = run_method(method, problem, x0, options={**settings, **options})
        budget_spent = budget_stop and result.status is Status.MAX_ITER
        if not result.converged and not result.stopped_by_callback and not budget_spent:
            warn(f"{name} ({method}): {result.message}", ConvergenceWarning)
        return result

    # -- prediction -------------------------------------------------------------
    def _decision_scores(self, X):
        """Decision scores of validated ``X``: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        raise NotImplementedError

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Return the decision scores of the fitted model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            Positive for ``classes_[1]`` in the binary case; otherwise one
            column per class of ``classes_``, the largest for the predicted
            class.
        """
        check_is_fitted(self)
        return self._decision_scores(validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Return the predicted class of each row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The class of largest decision value, from ``classes_``.
        """
        scores = self.decision_function(X)  # checks that the estimator is fitted
        return classes_from_scores(self.classes_, scores)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
