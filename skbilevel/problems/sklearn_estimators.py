"""Which lower level differentiates which scikit-learn estimator."""

from __future__ import annotations

from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (ElasticNet, Lasso, LogisticRegression, LogisticRegressionCV, MultiTaskElasticNet,
                                  MultiTaskLasso, Ridge)
from sklearn.svm import SVC, LinearSVC

from .kernel_svc import SVCLowerLevel
from .linear_classifiers import LinearSVCLowerLevel, LogisticRegressionLowerLevel
from .ridge import KernelRidgeLowerLevel, RidgeLowerLevel
from .sparse_regression import ElasticNetLowerLevel, LassoLowerLevel

# Most specific first: Lasso is a subclass of ElasticNet.
_LOWER_LEVELS = (
    (Lasso, LassoLowerLevel),
    (ElasticNet, ElasticNetLowerLevel),
    (Ridge, RidgeLowerLevel),
    (KernelRidge, KernelRidgeLowerLevel),
    (LogisticRegression, LogisticRegressionLowerLevel),
    (LinearSVC, LinearSVCLowerLevel),
    (SVC, SVCLowerLevel),
)

# scikit-learn subclasses of supported estimators whose training problem is not their base class's
_DIFFERENT_PROBLEMS = {
    LogisticRegressionCV: "it picks C by its own internal cross-validation; search LogisticRegression's C",
    MultiTaskElasticNet: "its penalty couples the tasks (an L2,1 norm), which ElasticNet's lower level "
                         "does not solve",
    MultiTaskLasso: "its penalty couples the tasks (an L2,1 norm), which Lasso's lower level does not solve",
}

#: Estimator name -> hyperparameters BilevelSearchCV can differentiate.
SUPPORTED = {est.__name__: lower.hyperparameters for est, lower in _LOWER_LEVELS}


def lower_level_class(estimator):
    """Return the :class:`~skbilevel.problems.estimator_base.EstimatorLowerLevel` of ``estimator``.

    Raises ``TypeError`` naming the supported estimators otherwise.

    The match is by ``isinstance``, most specific class first (``Lasso``
    before its base class ``ElasticNet``): :class:`~sklearn.linear_model.Lasso`,
    :class:`~sklearn.linear_model.ElasticNet`,
    :class:`~sklearn.linear_model.Ridge`,
    :class:`~sklearn.kernel_ridge.KernelRidge`,
    :class:`~sklearn.linear_model.LogisticRegression`,
    :class:`~sklearn.svm.LinearSVC` and :class:`~sklearn.svm.SVC` (and
    their subclasses, except scikit-learn's own whose training problem
    differs: ``LogisticRegressionCV``, ``MultiTaskLasso``,
    ``MultiTaskElasticNet``). ``SUPPORTED`` in this module maps each estimator's
    name to the hyperparameters its lower level differentiates.

    Parameters
    ----------
    estimator : scikit-learn estimator
        The estimator whose hyperparameters are to be searched (an instance,
        not a class).

    Returns
    -------
    type
        The :class:`~skbilevel.problems.estimator_base.EstimatorLowerLevel`
        subclass to build one fold's lower level with, called as
        ``cls(estimator, X, y, names, scales, sample_weight)``.

    Raises
    ------
    TypeError
        For an unsupported estimator, and for an estimator that learns its
        own hyperparameters by a bilevel method inside ``fit`` (such as
        :class:`~skbilevel.BilevelSVC`): its fitted model is not a
        differentiable function of its parameters.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: each class returned here is
       the training problem (4.2) of section 4.1 of one estimator,
       differentiated as in section 5.1 (section 6.1, formula (6.3), for the
       active set of the constrained or non-smooth ones).

    Examples
    --------
    >>> from sklearn.linear_model import Lasso, LinearRegression
    >>> from skbilevel.problems.sklearn_estimators import lower_level_class
    >>> cls = lower_level_class(Lasso())
    >>> cls.__name__, cls.hyperparameters
    ('LassoLowerLevel', ('alpha',))
    >>> lower_level_class(LinearRegression())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: BilevelSearchCV cannot differentiate LinearRegression: its training problem has no hypergradient here. ...
    """
    for est_type, reason in _DIFFERENT_PROBLEMS.items():
        if isinstance(estimator, est_type):
            raise TypeError(f"BilevelSearchCV cannot differentiate {type(estimator).__name__}: {reason}.")
    for est_type, lower in _LOWER_LEVELS:
        if isinstance(estimator, est_type):
            return lower
    if getattr(estimator, "_learns_own_hyperparameters", False):
        # the fitted model is the output of a local bilevel method stopped by max_iter / tol: it moves
        # in jumps with the constructor's parameters, so the CV loss has no derivative in them to follow
        raise TypeError(
            f"BilevelSearchCV cannot differentiate {type(estimator).__name__}: it learns its own "
            "hyperparameters by a bilevel method inside fit, and the model that method returns (a local "
            "solution, stopped by max_iter / tol) is not a differentiable function of the estimator's "
            "parameters. Tune its discrete settings with GridSearchCV, or tune the plain model (LinearSVC "
            "or LogisticRegression C) with BilevelSearchCV."
        )
    supported = ", ".join(f"{name} ({', '.join(params)})" for name, params in SUPPORTED.items())
    raise TypeError(
        f"BilevelSearchCV cannot differentiate {type(estimator).__name__}: its training problem has no "
        f"hypergradient here. Supported estimators (hyperparameters): {supported}. "
        "Use GridSearchCV or RandomizedSearchCV for other estimators."
    )
