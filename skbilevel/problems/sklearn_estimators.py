"""Which lower level differentiates which scikit-learn estimator."""

from __future__ import annotations

from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
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

#: Estimator name -> hyperparameters BilevelSearchCV can differentiate.
SUPPORTED = {est.__name__: lower.hyperparameters for est, lower in _LOWER_LEVELS}


def lower_level_class(estimator):
    """Return the :class:`~skbilevel.problems.estimator_base.EstimatorLowerLevel` of ``estimator``.

    Raises ``TypeError`` naming the supported estimators otherwise.
    """
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
