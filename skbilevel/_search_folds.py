"""BilevelSearchCV's problem: the searched hyperparameters and one lower level per cross-validation fold."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import LeaveOneOut, check_cv
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import assert_all_finite, check_array, column_or_1d

from ._search_routing import fold_params, split_pipeline
from ._search_space import parse_param_space, within_valid_values
from .problems.base import BilevelProblem
from .problems.cross_validation import CrossValidationProblem
from .problems.estimator_base import ValidationLoss
from .problems.ridge import KernelRidgeLeaveOneOut, KernelRidgeLowerLevel, RidgeLeaveOneOut, RidgeLowerLevel
from .problems.sklearn_estimators import lower_level_class


def _edge_check(estimator, name):
    """``value -> scikit-learn's message when estimator refuses name=value, else None``, on one clone."""
    trial = clone(estimator)

    def error(value):
        trial.set_params(**{name: value})
        try:
            trial._validate_params()
        except (ValueError, TypeError) as exc:  # InvalidParameterError is both
            return str(exc)
        return None

    return error


def search_dimensions(estimator, param_space):
    """The parsed ``param_space``: last-step names only, box edges the estimator accepts.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The searched estimator; an estimator without a lower level is
        refused first (``TypeError``).
    param_space : dict
        BilevelSearchCV's ``param_space``.

    Returns
    -------
    list of Dimension
        One per searched hyperparameter, in sorted name order.
    """
    _, final, prefix = split_pipeline(estimator)
    lower_cls = lower_level_class(final)  # an estimator we cannot differentiate is refused first
    dims = []
    for d in parse_param_space(param_space):
        if not d.name.startswith(prefix) or "__" in d.name[len(prefix):]:
            raise ValueError(
                f"param_space name {d.name!r}: only the last step's parameters can be searched "
                f"(names starting with {prefix!r}); earlier Pipeline steps are fitted once per fold"
            )
        if d.name[len(prefix):] not in lower_cls.hyperparameters:  # before checking its values
            raise ValueError(f"{type(final).__name__} hyperparameters [{d.name[len(prefix):]!r}] cannot be "
                             f"differentiated; supported: {list(lower_cls.hyperparameters)}")
        dims.append(within_valid_values(d, _edge_check(final, d.name[len(prefix):])))
    return dims


def check_targets(estimator, y):
    """1-D finite targets (a column vector is raveled with a warning, as by the estimators); 2 classes or more."""
    y = column_or_1d(y, warn=True)
    if is_classifier(split_pipeline(estimator)[1]):
        check_classification_targets(y)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        classes = np.unique(y)
        if classes.size == 1:  # said here, before any fold: no splitter can help
            raise ValueError(f"y holds one class only ({classes[0]!r}); a classifier needs samples of at least "
                             "2 classes.")
    else:
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    return y


def build_folds(estimator, cv, validation_loss, X, y, route, dims, lower_factory=None):
    """One bilevel problem per fold of ``cv``, and the data that scores each fold's solution.

    Earlier Pipeline steps are fitted on the fold's training part and
    transform both parts; the final step's training problem on the training
    part is the fold's lower level, the smooth ``validation_loss`` on the
    held-out part its upper level.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The searched estimator.
    cv : int, cross-validation generator or iterable
        BilevelSearchCV's ``cv``.
    validation_loss : str
        BilevelSearchCV's ``validation_loss`` (``'auto'``: the estimator's).
    X, y : array-like
        The data (``y`` checked).
    route : dict
        The routed metadata (:func:`~skbilevel._search_routing.route_fit_params`).
    dims : list of Dimension
        The searched hyperparameters.
    lower_factory : callable, optional
        Builds a fold's lower level in place of the final step's own class,
        with the same arguments (the per-feature search's
        :class:`~skbilevel.problems.feature_scaling.FeatureScaledLowerLevel`).

    Returns
    -------
    problem : CrossValidationProblem
        The folds' problems, on the box of ``dims``.
    data : list of tuple
        Per fold ``(X_train, y_train, X_test, y_test, (score params of the
        training part, of the test part))``.
    """
    pre, final, prefix = split_pipeline(estimator)
    names = [d.name[len(prefix):] for d in dims]
    lower_cls = lower_level_class(final) if lower_factory is None else lower_factory
    loo_cls = _CLOSED_FORM_LOO.get(lower_cls)
    if (isinstance(cv, LeaveOneOut) and pre is None and lower_factory is None and loo_cls is not None
            and loo_cls.applies(names, route["weight"])):
        return _leave_one_out(loo_cls, final, validation_loss, X, y, route, dims, names)
    folds, data, n = [], [], len(y)
    splits = list(check_cv(cv, y, classifier=is_classifier(final)).split(X, y, **route["split"]))
    if pre is None:  # checked once: the folds' parts are slices of it
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
    # what the folds share (the RBF SVC's share of cache_size, the Lasso's moments of all samples)
    shared = getattr(lower_cls, "fold_options", None)
    shared = ([{}] * len(splits) if shared is None
              else shared(final, None if pre is not None else X, splits, route["weight"]))
    for (train, test), fold_options in zip(splits, shared):
        X_tr, X_te = _safe_indexing(X, train), _safe_indexing(X, test)
        if pre is not None:
            fitted = clone(pre)
            X_tr = fitted.fit_transform(X_tr, _safe_indexing(y, train), **fold_params(route["pre"], n, train))
            X_te = fitted.transform(X_te)
            X_tr = check_array(X_tr, accept_sparse="csr", dtype=np.float64)
            X_te = check_array(X_te, accept_sparse="csr", dtype=np.float64)
        y_tr, y_te = _safe_indexing(y, train), _safe_indexing(y, test)
        sw = None if route["weight"] is None else route["weight"][train]
        lower = lower_cls(final, X_tr, y_tr, names, [d.scale for d in dims], sample_weight=sw, **fold_options)
        loss = None if validation_loss == "auto" else validation_loss
        score_params = (fold_params(route["score"], n, train), fold_params(route["score"], n, test))
        # the smooth loss the descent follows weighs the held-out samples as the scores do
        upper = ValidationLoss(lower, X_te, y_te, loss, sample_weight=score_params[1].get("sample_weight"))
        folds.append(BilevelProblem(upper, lower))
        data.append((X_tr, y_tr, X_te, y_te, score_params))
    lo = np.array([d.low for d in dims])
    hi = np.array([d.high for d in dims])
    return CrossValidationProblem(tuple(folds), (lo, hi)), data


# The lower levels whose leave-one-out error has a closed form, and their leave-one-out variants.
_CLOSED_FORM_LOO = {RidgeLowerLevel: RidgeLeaveOneOut, KernelRidgeLowerLevel: KernelRidgeLeaveOneOut}


def _leave_one_out(loo_cls, final, validation_loss, X, y, route, dims, names):
    """``build_folds`` for Ridge or KernelRidge with ``cv=LeaveOneOut()``: one problem on all the
    samples whose validation part is the ``n`` leave-one-out predictions, in closed form
    (:class:`~skbilevel.problems.ridge.RidgeLeaveOneOut`,
    :class:`~skbilevel.problems.ridge.KernelRidgeLeaveOneOut`), as ``RidgeCV`` computes them; the
    ``n`` refits are never run."""
    X = check_array(X, accept_sparse="csr", dtype=np.float64)
    lower = loo_cls(final, X, y, names, [d.scale for d in dims], sample_weight=route["weight"])
    everything = np.arange(len(y))
    score_params = (fold_params(route["score"], len(y), everything),) * 2
    # the training array itself stands for its leave-one-out predictions (RidgeLeaveOneOut.decision)
    upper = ValidationLoss(lower, lower.X, y, None if validation_loss == "auto" else validation_loss,
                           sample_weight=score_params[1].get("sample_weight"))
    bounds = (np.array([d.low for d in dims]), np.array([d.high for d in dims]))
    return (CrossValidationProblem((BilevelProblem(upper, lower),), bounds),
            [(lower.X, y, lower.X, y, score_params)])
