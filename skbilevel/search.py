"""BilevelSearchCV: GridSearchCV's interface, hypergradient descent inside.

The K cross-validation folds are K lower-level problems sharing the
hyperparameters (the hyperparameter-optimisation problem of paper 002, section 4.1,
once per fold; :mod:`skbilevel.problems.cross_validation`).
The outer loop is :func:`skbilevel.methods.hypergradient.solve`: L-BFGS-B on
the mean smooth validation loss of the folds, each fold solved by the
estimator's own solver warm started from the previous point, and
differentiated through its optimality conditions
(:mod:`skbilevel.problems.sklearn_estimators` lists the estimators).

We do not build on scikit-learn's private ``BaseSearchCV``: its
``evaluate_candidates`` fits every candidate from scratch, whereas our
candidates come out of the outer loop with their fold solutions already
computed. The public attributes of ``GridSearchCV`` are reproduced here and
tested against its behaviour (``tests/test_search.py``).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from functools import partial
from inspect import signature

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter, MethodMapping, _routing_enabled, get_routing_for_object, process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    assert_all_finite, check_array, check_is_fitted, column_or_1d,
)

from ._fold_model import NoProbabilities as _NoProbabilities, fold_model
from ._progress import OuterProgress, emit
from ._search_space import initial_grid, parse_param_space, within_valid_values
from ._validation_split import check_sample_weight
from ._warnings import warn
from .methods import hypergradient
from .problems.base import BilevelProblem
from .problems.cross_validation import CrossValidationProblem
from .problems.estimator_base import ValidationLoss
from .problems.sklearn_estimators import lower_level_class

# L-BFGS-B evaluations per line search: a failing line search is usually at a kink of the CV
# loss (an active set changes), where more trials only add rows at the same point.
_MAX_LINE_SEARCH = 5

# A descent stops when L-BFGS-B probes a point within this distance (in log C, log gamma, ...:
# 0.1%) of one it has evaluated: at a kink it re-probes the same spot, a full set of fold solves
# each time (4 of the 9 descent points on the SVC / Spambase row of the benchmark).
_XTOL = 1e-3

# Lower-level tolerances (relative). Where points are only compared, by validation loss or score
# (the coarse grid, the score refinement), 1e-4: the tolerance at which scikit-learn's estimators,
# and so GridSearchCV's fits, stop by default. In the descent the hypergradient's error is of the
# order of the lower level's residual, so 1e-6 is ample against the outer tol (1e-4). On
# LogisticRegression / MNIST 1-vs-2 this took the search from 3.4 s to ~0.8 s (the library
# default of 1e-10 everywhere); 1e-8 instead of 1e-6 gave the same points on every row of the
# benchmark and cost 0.15 s more there (Newton's last step from the grid's solution). At 1e-6 a
# warm-started LogisticRegression re-solve still tries Newton first (its NEWTON_FIRST_TOL): a looser
# descent tolerance would drop that path.
_COMPARE_TOL = 1e-4
_DESCENT_TOL = 1e-6


def _estimator_has(attr):
    """Delegate ``attr`` to the refitted estimator (or, before fit, to the estimator)."""

    def check(self):
        est = self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator
        getattr(est, attr)
        return True

    return check


def _delegate(name, summary, returns):
    """A method ``name`` that calls ``best_estimator_.name`` (GridSearchCV's delegation)."""

    def method(self, X: ArrayLike):
        self._check_refit(name)
        return getattr(self.best_estimator_, name)(X)

    method.__name__, method.__qualname__ = name, f"BilevelSearchCV.{name}"
    method.__doc__ = (f"{summary}\n\n    Available when the estimator has ``{name}``; raises AttributeError "
                      "after a search with ``refit=False``.\n\n"
                      "    Parameters\n    ----------\n"
                      "    X : array-like or sparse matrix of shape (n_samples, n_features)\n\n"
                      f"    Returns\n    -------\n    {returns}\n")
    return available_if(_estimator_has(name))(method)


def _parameter_error(estimator, name, value):
    """scikit-learn's message when ``estimator`` refuses ``name=value``, else None."""
    trial = clone(estimator).set_params(**{name: value})
    try:
        trial._validate_params()
    except (ValueError, TypeError) as exc:  # InvalidParameterError is both
        return str(exc)
    return None


def _accepts_sample_weight(scorer):
    """Whether GridSearchCV (scikit-learn 1.9, metadata routing off) hands ``sample_weight`` to ``scorer``:
    a scikit-learn scorer that says so, or a callable with a ``sample_weight`` parameter."""
    if hasattr(scorer, "_accept_sample_weight"):
        return bool(scorer._accept_sample_weight())
    return "sample_weight" in signature(scorer).parameters


def _scorers_refusing_sample_weight(scorer):
    """The names of the scorers that take no ``sample_weight`` (each of a multi-metric scorer's)."""
    named = getattr(scorer, "_scorers", None)
    if isinstance(named, dict):
        return [f"{name}={s}" for name, s in named.items() if not _accepts_sample_weight(s)]
    return [] if _accepts_sample_weight(scorer) else [str(scorer)]


def _fold_params(params, n_samples, indices):
    """``params`` restricted to the rows ``indices`` where they are per-sample arrays."""
    return {key: _safe_indexing(value, indices) if hasattr(value, "__len__") and len(value) == n_samples
            else value for key, value in params.items() if value is not None}


def _split_pipeline(estimator):
    """Return ``(preprocessing, final, prefix)``: a Pipeline's earlier steps, its last step and
    the parameter prefix of the last step (``'svc__'``)."""
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        pre = Pipeline(estimator.steps[:-1]) if len(estimator.steps) > 1 else None
        return pre, final, f"{name}__"
    return None, estimator, ""


class BilevelSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search continuous hyperparameters by hypergradient descent on the cross-validation loss.

    A drop-in replacement for :class:`~sklearn.model_selection.GridSearchCV`
    on continuous hyperparameters. With folds ``k = 1..K``, it minimises

    .. math::

        h(\\lambda) = \\frac{1}{K} \\sum_k \\frac{1}{|V_k|} \\sum_{i \\in V_k}
        \\ell(d_i(\\lambda, w_k(\\lambda)), y_i),
        \\qquad w_k(\\lambda) = \\arg\\min_w f_k(\\lambda, w),

    (the bilevel problem (4.1)-(4.2) of paper 002, section 4.1, with one
    lower level per fold) where ``f_k`` is the estimator's training problem
    on the training part of fold ``k`` and ``ell`` a smooth loss matched to
    the estimator (squared error for regressors, log-loss for
    LogisticRegression, squared hinge for the SVMs). Its gradient comes from
    implicit differentiation of the lower level's optimality condition
    (paper 002, section 5.1, from (5.4)); the folds are solved by
    the estimator's own solver, warm started, in parallel through joblib.
    ``scoring`` is what ``cv_results_`` reports and what picks ``best_*``
    among the points the descent evaluated.

    Parameters
    ----------
    estimator : estimator or Pipeline
        One of Ridge (``positive=False``), KernelRidge (rbf or linear),
        LogisticRegression (l2, primal, multinomial), LinearSVC (squared
        hinge), SVC (binary; rbf or linear), Lasso, ElasticNet, or a Pipeline
        ending in one; earlier steps are fitted once per fold. Other settings
        that change the training problem raise a ``ValueError`` naming them.
    param_space : dict
        ``{name: (low, high)}`` searched on a log scale, ``(low, high,
        'linear')`` on a linear one, or a scipy.stats frozen distribution
        (``loguniform(1e-3, 1e3)`` is searched on a log scale between its
        bounds; its draws give the extra starting points; an unbounded tail
        is cut at its 1e-3 quantile, and so is an end of the support that
        the estimator refuses, such as ``C = 0`` of ``expon()``). The
        descent may reach the ends of the range, so they must be values the
        estimator accepts (``ValueError`` otherwise). Names may be
        Pipeline paths (``'svc__C'``) of the last step.
    scoring : str, callable, list, tuple, set, dict or None, default=None
        As in GridSearchCV; ``None`` uses the estimator's ``score``.
    cv : int, cross-validation generator or iterable, default=5
        As in GridSearchCV: an int is the number of (stratified, for a
        classifier) K-fold splits.
    n_jobs : int, default=None
        Folds solved in parallel by :class:`joblib.Parallel`; a joblib
        backend context (loky, dask, ray) decides where.
    refit : bool, str or callable, default=True
        As in GridSearchCV.
    verbose : int, default=0
        0: silent. 1: a progress bar over the outer iterations (the initial
        grid, each descent step, the refinement) showing the hyperparameters
        and CV score (tqdm, the ``progress`` extra; without it one log line
        per outer iteration). 2: also one line per descent step (start,
        iteration, hyperparameters, CV score, validation loss, elapsed time)
        and a summary of the refinement.
    max_iter : int, default=50
        L-BFGS-B iterations per start.
    tol : float, default=1e-4
        Stopping tolerance of each descent: on the projected hypergradient
        (in search coordinates) and on the relative decrease of the loss per
        iteration. A descent also stops when its line search probes a point
        within 1e-3 (in search coordinates: 0.1% of ``C``) of one it has
        evaluated, as it does at a kink of the loss. Points that are only
        compared (the initial grid, the refinement) are fitted to a relative
        tolerance of 1e-4, those of the descents to 1e-6.
    n_starts : int, default=1
        Number of descents. They start from the best points of the initial
        grid by validation loss; without a grid the first starts in the
        middle of the box (the median of a distribution) and the others are
        drawn with ``random_state``.
    initial_grid : 'auto' or int, default='auto'
        Points per hyperparameter of a coarse grid evaluated before the
        descent (cell centres of the box; quantiles of a distribution):
        ``'auto'`` is 5 for one hyperparameter, 3 (a 3 x 3 grid) for two and
        2 for more; 0 skips it. The validation loss is rarely convex in the
        hyperparameters (an SVC's ``(C, gamma)`` has separate valleys), and
        the grid's points also count as candidates for ``best_*``.
    refine : 'auto' or int, default='auto'
        Evaluations of a compass search on the CV score (the refit metric)
        after the descents, from the best-scoring point: the descent
        minimises a smooth surrogate, and the score (accuracy, say) is
        piecewise constant, so its maximum near the surrogate's minimum is
        searched without derivatives. ``'auto'`` is 1 for one hyperparameter
        (a probe a quarter of a grid cell from the best point, on the side
        whose nearest evaluated point scores higher, the upper side on a tie:
        a search there takes about 7 evaluations,
        so that each added one costs some 15% more time, against a 30-point
        grid) and 8 per hyperparameter otherwise: on SVC ``(C, gamma)`` it
        closed the gap to a 900-point grid's best accuracy on Ionosphere,
        breast cancer and Spambase, where the squared hinge's valley lies far
        from the accuracy's (with 6, Spambase ended 0.001 or 0.003 short
        depending on which trial of the last round the budget left;
        ``benchmarks/results/search_vs_grid.md``). 0 skips it.
    validation_loss : {'auto', 'squared', 'log', 'squared_hinge'}, default='auto'
        The smooth loss descended (see
        :class:`~skbilevel.problems.estimator_base.ValidationLoss`); 'auto' is
        the one matched to the estimator: 'squared' for regressors, 'log' for
        LogisticRegression, 'squared_hinge' for LinearSVC and SVC.
    method : {'auto', 'hypergradient'}, default='auto'
        ``'auto'`` is ``'hypergradient'``, the one method here that handles
        several lower levels sharing hyperparameters.
    random_state : int, RandomState or None, default=None
        Draws the extra starting points when ``n_starts`` exceeds the
        initial grid.
    error_score : 'raise' or float, default=np.nan
        Score recorded when a scorer fails on a fold.
    return_train_score : bool, default=False
        Also score every fold's model on its training part
        (``split{k}_train_*`` keys of ``cv_results_``).
    callback : callable, optional
        Called once per outer iteration with a dict (``iteration``,
        ``params``, ``objective``, ``score``, ``time``); returning True stops
        the current start.

    Attributes
    ----------
    cv_results_ : dict of arrays
        One row per evaluated point (initial grid, then outer iterations and
        line-search trials, then the score refinement, in order), with
        GridSearchCV's keys plus ``validation_loss`` (the smooth objective
        ``h``) and ``start`` (the descent it belongs to; -1 for the initial
        grid, -2 for the refinement).
    best_estimator_ : estimator
        The estimator refitted on all the data at ``best_params_`` (when
        ``refit`` is not False).
    best_params_ : dict
        The hyperparameters of the best evaluated point. As in GridSearchCV,
        ``best_params_``, ``best_score_``, ``best_index_`` and ``history_`` are
        not set with several metrics and ``refit=False``: no metric names the
        best point.
    best_score_ : float
        Mean cross-validated score of ``best_params_`` (not set for a
        callable ``refit``).
    best_index_ : int
        Row of ``cv_results_`` of the best point.
    scorer_ : callable or dict
        The scorer (a dict of them when ``scoring`` names several metrics;
        a callable ``scoring`` returning a dict is kept as it is).
    n_splits_ : int
        Number of cross-validation folds.
    refit_time_ : float
        Seconds spent refitting ``best_estimator_``.
    multimetric_ : bool
        Whether ``scoring`` names several metrics (or is a callable returning
        a dict of them).
    n_features_in_ : int
        Number of features seen by ``best_estimator_`` (when it has the
        attribute).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen by ``best_estimator_``, when ``X`` had
        them (a DataFrame).
    n_iter_ : int
        Outer iterations over all starts, plus one for the initial grid and one for the score
        refinement when they run.
    history_ : dict of lists
        The outer loop's ``history`` of the start holding ``best_index_``.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey, paper 002 of ``shared/papers``): hyperparameter optimisation
       as a bilevel problem, section 4.1, eqs. (4.1)-(4.2); the hypergradient
       by implicit differentiation of the stationarity condition (5.4),
       section 5.1; a constrained lower level (SVC's box-constrained dual)
       differentiated through its active set under strict complementarity,
       section 6.1, formula (6.3).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> from skbilevel import BilevelSearchCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> search = BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}).fit(X, y)
    >>> 1e-4 <= search.best_params_["alpha"] <= 1e2
    True
    >>> search.n_splits_, search.predict(X[:3]).shape
    (5, (3,))
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "param_space": [dict],
        "scoring": [str, callable, list, tuple, set, dict, None],
        "cv": ["cv_object"],
        "n_jobs": [numbers.Integral, None],
        "refit": ["boolean", str, callable],
        "verbose": ["verbose"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_starts": [Interval(numbers.Integral, 1, None, closed="left")],
        "initial_grid": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "refine": [StrOptions({"auto"}), Interval(numbers.Integral, 0, None, closed="left")],
        "validation_loss": [StrOptions({"auto", *ValidationLoss.KINDS})],
        "method": [StrOptions({"auto", "hypergradient"})],
        "random_state": ["random_state"],
        "error_score": [StrOptions({"raise"}), numbers.Real],
        "return_train_score": ["boolean"],
        "callback": [callable, None],
    }

    def __init__(self, estimator: BaseEstimator, param_space: dict, *,
                 scoring: str | Callable | list | tuple | dict | None = None, cv: int | object | None = 5,
                 n_jobs: int | None = None, refit: bool | str | Callable = True, verbose: int = 0,
                 max_iter: int = 50, tol: float = 1e-4, n_starts: int = 1, initial_grid: str | int = "auto",
                 refine: str | int = "auto", validation_loss: str = "auto", method: str = "auto",
                 random_state: int | np.random.RandomState | None = None, error_score: str | float = np.nan,
                 return_train_score: bool = False,
                 callback: Callable | None = None):
        self.estimator = estimator
        self.param_space = param_space
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.refit = refit
        self.verbose = verbose
        self.max_iter = max_iter
        self.tol = tol
        self.n_starts = n_starts
        self.initial_grid = initial_grid
        self.refine = refine
        self.validation_loss = validation_loss
        self.method = method
        self.random_state = random_state
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        final = _split_pipeline(self.estimator)[1]
        sub = final.__sklearn_tags__()
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.input_tags.sparse = self.estimator.__sklearn_tags__().input_tags.sparse
        tags.target_tags.required = True  # the validation loss needs targets
        return tags

    # -- set-up ---------------------------------------------------------------
    def _scorers(self):
        """Set ``multimetric_`` and ``_metric_names``; return the scorer.

        A callable ``scoring`` may return a dict of scores, as in GridSearchCV:
        the search is then multi-metric, which shows at its first score
        (see :meth:`_safe_score`).
        """
        self.multimetric_ = isinstance(self.scoring, (list, tuple, set, dict))
        if self.multimetric_:
            self._set_metric_names(sorted(self.scoring))
        else:
            self._metric_names = ["score"]
        return check_scoring(self.estimator, scoring=self.scoring)

    def _set_metric_names(self, names):
        if self.refit is not False and not callable(self.refit) and self.refit not in names:
            raise ValueError(
                f"For multi-metric scoring, refit must be False, a callable or one of the scorer names "
                f"{names}; got refit={self.refit!r}"
            )
        self._metric_names = names

    def _dimensions(self):
        """The parsed ``param_space``: last-step names only, box edges the estimator accepts."""
        _, final, prefix = _split_pipeline(self.estimator)
        lower_cls = lower_level_class(final)  # an estimator we cannot differentiate is refused first
        dims = []
        for d in parse_param_space(self.param_space):
            if not d.name.startswith(prefix) or "__" in d.name[len(prefix):]:
                raise ValueError(
                    f"param_space name {d.name!r}: only the last step's parameters can be searched "
                    f"(names starting with {prefix!r}); earlier Pipeline steps are fitted once per fold"
                )
            if d.name[len(prefix):] not in lower_cls.hyperparameters:  # before checking its values
                raise ValueError(f"{type(final).__name__} hyperparameters [{d.name[len(prefix):]!r}] cannot be "
                                 f"differentiated; supported: {list(lower_cls.hyperparameters)}")
            dims.append(within_valid_values(d, partial(_parameter_error, final, d.name[len(prefix):])))
        return dims

    def _build_folds(self, X, y, route, dims):
        pre, final, prefix = _split_pipeline(self.estimator)
        names = [d.name[len(prefix):] for d in dims]
        lower_cls = lower_level_class(final)
        cv = check_cv(self.cv, y, classifier=is_classifier(final))
        folds, data, n = [], [], len(y)
        for train, test in cv.split(X, y, **route["split"]):
            X_tr, X_te = _safe_indexing(X, train), _safe_indexing(X, test)
            if pre is not None:
                fitted = clone(pre)
                X_tr = fitted.fit_transform(X_tr, _safe_indexing(y, train), **_fold_params(route["pre"], n, train))
                X_te = fitted.transform(X_te)
            X_tr = check_array(X_tr, accept_sparse="csr", dtype=np.float64)
            X_te = check_array(X_te, accept_sparse="csr", dtype=np.float64)
            y_tr, y_te = _safe_indexing(y, train), _safe_indexing(y, test)
            sw = None if route["weight"] is None else route["weight"][train]
            lower = lower_cls(final, X_tr, y_tr, names, [d.scale for d in dims], sample_weight=sw)
            loss = None if self.validation_loss == "auto" else self.validation_loss
            score_params = (_fold_params(route["score"], n, train), _fold_params(route["score"], n, test))
            # the smooth loss the descent follows weighs the held-out samples as the scores do
            upper = ValidationLoss(lower, X_te, y_te, loss, sample_weight=score_params[1].get("sample_weight"))
            folds.append(BilevelProblem(upper, lower))
            data.append((X_tr, y_tr, X_te, y_te, score_params))
        lo = np.array([d.low for d in dims])
        hi = np.array([d.high for d in dims])
        return CrossValidationProblem(tuple(folds), (lo, hi)), data

    # -- fit ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, *, groups: ArrayLike | None = None,
            sample_weight: ArrayLike | None = None, **params) -> BilevelSearchCV:
        """Search the hyperparameters, then refit the estimator on all of ``(X, y)``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Training data, split into folds by ``cv``.
        y : array-like of shape (n_samples,)
            Targets (required: the validation loss needs them).
        groups : array-like of shape (n_samples,), optional
            Group labels for a group-aware ``cv`` splitter.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples: in every fold's training problem and in
            the refit, and, as in GridSearchCV (scikit-learn 1.9), in the fold
            scores when the scorer takes them (then also in the validation
            loss the descent follows). With metadata routing enabled
            (``sklearn.set_config(enable_metadata_routing=True)``) it goes,
            like ``groups`` and any other ``**params``, where the estimator,
            the scorer and the splitter request it, as in GridSearchCV.
        **params : dict
            With metadata routing enabled: further metadata routed as above
            (the final step's training problem takes ``sample_weight`` only;
            earlier Pipeline steps take what they request). Without it: none
            is accepted.

        Returns
        -------
        self : BilevelSearchCV
            The fitted search.
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(the validation loss needs targets)")
        X, y, groups = indexable(X, y, groups)
        y = self._check_targets(y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, np.ones(len(y)))
        dims = self._dimensions()
        scorer = self._scorers()
        route = self._route(scorer, groups, sample_weight, params)
        problem, data = self._build_folds(X, y, route, dims)
        self.n_splits_ = len(problem.folds)
        rows = self._search(problem, data, dims, scorer)
        self.cv_results_ = self._results(rows, dims, self._metric_names)
        self._set_best(self._metric_names)
        self.scorer_ = self._public_scorer()
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y, **route["refit"])
            self.refit_time_ = time.perf_counter() - start
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(self.best_estimator_, name):
                    setattr(self, name, getattr(self.best_estimator_, name))
        return self

    def _check_targets(self, y):
        """1-D finite targets (a column vector is raveled with a warning, as by the estimators)."""
        y = column_or_1d(y, warn=True)
        if is_classifier(_split_pipeline(self.estimator)[1]):
            check_classification_targets(y)
            if y.dtype.kind in "fc":
                assert_all_finite(y, input_name="y")
        else:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        return y

    def _route(self, scorer, groups, sample_weight, params):
        """Where the metadata go: ``split`` (the splitter's), ``pre`` (earlier Pipeline steps'), ``weight``
        (the training problem's sample weights), ``score`` (the scorer's) and ``refit`` (``fit``'s)."""
        if not _routing_enabled():
            if params:
                raise TypeError(f"{type(self).__name__}.fit got unexpected arguments {sorted(params)}: without "
                                "metadata routing it takes sample_weight and groups only (see "
                                "sklearn.set_config(enable_metadata_routing=True)).")
            score = {}
            if sample_weight is not None:
                for name in _scorers_refusing_sample_weight(scorer):  # GridSearchCV's warning
                    warn(f"The scoring {name} does not support sample_weight, which may lead to statistically "
                         f"incorrect results when fitting {type(self).__name__} with sample_weight.", UserWarning)
                if _accepts_sample_weight(scorer):  # GridSearchCV weights the fold scores too
                    score = {"sample_weight": sample_weight}
            refit = {} if sample_weight is None else {f"{_split_pipeline(self.estimator)[2]}sample_weight":
                                                      sample_weight}
            return {"split": {"groups": groups}, "pre": {}, "weight": sample_weight, "score": score,
                    "refit": refit}
        metadata = {k: v for k, v in {"groups": groups, "sample_weight": sample_weight, **params}.items()
                    if v is not None}
        routed = process_routing(self, "fit", **metadata)
        fit_params = dict(routed.estimator.fit)
        pre, final, _ = _split_pipeline(self.estimator)
        if pre is None:  # the estimator's own parameter names (aliases resolved)
            final_params = fit_params
        else:  # what the Pipeline hands its last step, under the step's own names
            last = self.estimator.steps[-1][0]
            final_params = dict(get_routing_for_object(self.estimator).route_params(params=fit_params,
                                                                                      caller="fit")[last].fit)
        if set(final_params) - {"sample_weight"}:
            raise ValueError(f"{type(final).__name__} requests {sorted(set(final_params) - {'sample_weight'})} in "
                             f"fit, but {type(self).__name__} solves its training problem itself and takes "
                             "sample_weight only.")
        pre_params = {} if pre is None else {
            k: fit_params[k] for k in get_routing_for_object(pre).consumes("fit", set(fit_params))}
        weight = final_params.get("sample_weight")
        if weight is not None:
            weight = check_sample_weight(weight, np.ones(len(weight)))
        return {"split": dict(routed.splitter.split), "pre": pre_params, "weight": weight,
                "score": dict(routed.scorer.score), "refit": fit_params}

    def get_metadata_routing(self) -> MetadataRouter:
        """Metadata routing of the search, as GridSearchCV's: ``fit`` routes to the estimator's ``fit``,
        the scorer's ``score`` and the splitter's ``split``; ``score`` to the scorer.

        Returns
        -------
        MetadataRouter
            The routing (see scikit-learn's user guide on metadata routing).
        """
        router = MetadataRouter(owner=self)
        router.add(estimator=self.estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit"))
        router.add(scorer=check_scoring(self.estimator, scoring=self.scoring),
                   method_mapping=MethodMapping().add(caller="score", callee="score")
                   .add(caller="fit", callee="score"))
        # self.cv as it is (GridSearchCV's way): check_cv would consume a generator of splits
        router.add(splitter=self.cv, method_mapping=MethodMapping().add(caller="fit", callee="split"))
        return router

    def _public_scorer(self):
        if self.multimetric_ and not callable(self.scoring):
            named = self.scoring if isinstance(self.scoring, dict) else {name: name for name in self.scoring}
            return {name: check_scoring(self.estimator, scoring=s) for name, s in named.items()}
        return check_scoring(self.estimator, scoring=self.scoring)

    def _search(self, problem, data, dims, scorer):
        """Run the outer loop from each start; return one row per evaluated point."""
        rng = check_random_state(self.random_state)
        rows, state = [], {"start": 0, "t0": time.perf_counter()}
        self.n_iter_, histories = 0, []
        n_passes = int(self._grid_size(len(dims)) > 0) + int(self._refine_budget(len(dims)) > 0)
        with OuterProgress("BilevelSearchCV", self.verbose, n_passes + self.n_starts * self.max_iter) as progress:
            state["progress"] = progress
            self._run_starts(problem, data, dims, scorer, rng, rows, state, histories)
        return rows

    def _run_starts(self, problem, data, dims, scorer, rng, rows, state, histories):
        """The initial grid, one descent per start, then the refinement; rows are appended to ``rows``."""
        progress = state["progress"]

        def on_evaluation(info):
            rows.append(self._score_point(info, problem, data, dims, scorer, state["start"]))

        def mean_score(row):
            return float(np.mean(row["test"][self._refit_metric()]))

        def per_iteration(info):
            row = rows[-1]
            cv_score = mean_score(row)
            progress.update(info["objective"], **{**row["params"], "score": cv_score})
            if self.verbose >= 2:
                params = ", ".join(f"{k}={v:.4g}" for k, v in row["params"].items())
                emit(f"[BilevelSearchCV] start {state['start']} iter {info['iteration']:3d}  {params}  "
                     f"CV score {cv_score:.5g}  loss {info['objective']:.5g}  "
                     f"({time.perf_counter() - state['t0']:.2f}s)")
            if self.callback is not None:
                return self.callback({"iteration": info["iteration"], "params": dict(row["params"]),
                                      "objective": info["objective"], "score": cv_score,
                                      "time": time.perf_counter() - state["t0"]})
            return False

        starts = self._starting_points(problem, dims, rng, on_evaluation, state)
        grid = [row for row in rows if row["start"] == -1]
        if grid:  # the initial grid is one outer pass: its best loss and CV score
            progress.update(min(row["loss"] for row in grid),
                            score=max((v for v in map(mean_score, grid) if not np.isnan(v)), default=np.nan))
        self.n_iter_ = int(self._grid_size(len(dims)) > 0)  # the initial grid is one pass
        for s, (x0, y0) in enumerate(starts):
            state["start"] = s
            result = hypergradient.solve(problem, x0, y0, tol=self.tol, ftol=self.tol, max_iter=self.max_iter,
                                         lower_tol=_DESCENT_TOL, max_line_search=_MAX_LINE_SEARCH, xtol=_XTOL,
                                         first_step=self._first_step(problem, dims), n_jobs=self.n_jobs,
                                         on_evaluation=on_evaluation, callback=per_iteration)
            self.n_iter_ += result.n_iter
            histories.append(result.history)
            if not result.converged and not result.stopped_by_callback:
                warn(f"BilevelSearchCV start {s}: {result.message}", ConvergenceWarning)
        self._histories = histories
        n_rows = len(rows)
        self._refine(problem, dims, rows, on_evaluation, state)
        self._refine_from = state.get("refine_from", 0)
        self.n_iter_ += int(len(rows) > n_rows)  # the refinement is one pass, like the grid

    def _starting_points(self, problem, dims, rng, on_evaluation, state):
        """``n_starts`` pairs ``(x0, fold solutions or None)``: the best points of the initial grid by
        validation loss, then random draws."""
        per_dim = self._grid_size(len(dims))
        starts = []
        if per_dim:
            state["start"] = -1
            points = initial_grid(dims, per_dim)
            values = hypergradient.evaluate(problem, points, n_jobs=self.n_jobs, on_evaluation=on_evaluation,
                                            gradient=False, lower_tol=_COMPARE_TOL)
            order = np.argsort([F for F, _, _ in values], kind="stable")
            starts = [(points[i], values[i][2]) for i in order[: self.n_starts]]
        elif self.n_starts:
            starts = [(np.array([d.start() for d in dims]), None)]
        while len(starts) < self.n_starts:
            starts.append((np.array([d.sample(rng) for d in dims]), None))
        return starts

    def _refine(self, problem, dims, rows, on_evaluation, state):
        """Compass search on the CV score around the best point found (rows with ``start = -2``).

        The descent minimises a smooth surrogate of the score; the score itself
        (accuracy, say) is piecewise constant, so it is searched without
        derivatives: from the best-scoring point, try ``x +- step e_j`` for each
        hyperparameter, move to the best trial that improves the score, else
        halve ``step``; at most ``refine`` evaluations, each warm started from
        the current point's fold solutions. When the budget ends within a
        round, its trials are taken in order of promise (the score of the
        evaluated point nearest to each on its side of the current one; ties
        keep the order upper side, then lower, axis by axis): the single
        evaluation of one hyperparameter probes the side whose nearest
        evaluated point scores higher. The first step is a quarter of
        an initial-grid cell (an eighth of the box without a grid).
        """
        budget = self._refine_budget(len(dims))
        if not budget or not rows:
            return
        metric = self._refit_metric()

        def score(row):
            value = np.mean(row["test"][metric])
            return -np.inf if np.isnan(value) else value

        best = max(rows, key=score)
        state["refine_from"], state["start"], before = best["start"], -2, score(best)
        lo, hi = (np.asarray(b, dtype=float) for b in problem.x_bounds)
        width = np.where(hi > lo, hi - lo, 1.0)
        step = (hi - lo) / (4 * max(self._grid_size(len(dims)), 2))
        seen = {r["x"].tobytes() for r in rows}
        while budget > 0 and np.all(step > 1e-3 * (hi - lo)):
            trials = [(np.clip(best["x"] + sign * step[j] * np.eye(len(dims))[j], lo, hi), j, sign)
                      for j in range(len(dims)) for sign in (1.0, -1.0)]
            trials = [trial for trial in trials if trial[0].tobytes() not in seen]
            if len(trials) > budget:  # the budget ends in this round: the most promising trials first
                trials.sort(key=lambda trial: -self._promise(*trial, best, rows, width, score))
            trials = [t for t, _, _ in trials]
            new = []
            for t in trials[:budget]:
                seen.add(t.tobytes())
                hypergradient.evaluate(problem, t[None, :], y0=best["models"], n_jobs=self.n_jobs,
                                       on_evaluation=on_evaluation, gradient=False,
                                       lower_tol=_COMPARE_TOL)
                new.append(rows[-1])
            budget -= len(new)
            winner = max(new, key=score, default=None)
            if winner is not None and score(winner) > score(best):
                best = winner
            else:
                step = step / 2
        state["progress"].update(score=score(best))
        if self.verbose >= 2:
            emit(f"[BilevelSearchCV] score refinement: {self._refine_budget(len(dims)) - budget} evaluations, "
                  f"CV score {before:.5g} -> {score(best):.5g} ({time.perf_counter() - state['t0']:.2f}s)")

    def _first_step(self, problem, dims):
        """The descent's first step: a quarter of an initial-grid cell (an eighth of the box without a grid),
        along the narrowest dimension. L-BFGS-B's own first step on a box is the hypergradient itself, which
        for a validation loss below 1 moves ``log C`` by 1e-3 or so and stops the descent on ``ftol``."""
        lo, hi = (np.asarray(b, dtype=float) for b in problem.x_bounds)
        return float(np.min(hi - lo)) / (4 * max(self._grid_size(len(dims)), 2))

    @staticmethod
    def _promise(trial, axis, sign, best, rows, width, score):
        """Score of the evaluated point nearest to ``trial`` among those on its side of ``best``
        along ``axis`` (distances in box units); ``best``'s own score where none is."""
        offset = sign * np.array([r["x"][axis] - best["x"][axis] for r in rows])
        side = [r for r, o in zip(rows, offset) if o > 1e-12 * width[axis]]
        if not side:
            return score(best)
        dist = [np.max(np.abs(r["x"] - trial) / width) for r in side]
        return score(side[int(np.argmin(dist))])

    def _refine_budget(self, n_dims):
        if self.refine != "auto":
            return int(self.refine)
        return 1 if n_dims == 1 else 8 * n_dims

    def _grid_size(self, n_dims):
        if self.initial_grid != "auto":
            return int(self.initial_grid)
        return {1: 5, 2: 3}.get(n_dims, 2)

    def _refit_metric(self):
        """The metric reported by ``verbose`` and ``callback``: the refit one, else the first."""
        if not self.multimetric_:
            return "score"
        return self.refit if isinstance(self.refit, str) else self._metric_names[0]

    def _score_point(self, info, problem, data, dims, scorer, start):
        """Score every fold's solution at one evaluated point."""
        x = info["hyperparameters"]
        row = {"params": {d.name: d.to_value(v) for d, v in zip(dims, x)}, "x": x.copy(), "start": start,
               "models": info["models"],
               "loss": info["objective"], "fit_time": info["fold_times"], "test": {}, "train": {},
               "score_time": np.zeros(len(data))}
        for k, (fold, y_k, (X_tr, y_tr, X_te, y_te, (kw_tr, kw_te))) in enumerate(
                zip(problem.folds, info["models"], data)):
            model = fold_model(fold.lower, x, y_k)
            t = time.perf_counter()
            for part, (Xp, yp, kw) in (("test", (X_te, y_te, kw_te)), ("train", (X_tr, y_tr, kw_tr))):
                if part == "train" and not self.return_train_score:
                    continue
                for name, value in self._safe_score(scorer, model, Xp, yp, **kw).items():
                    row[part].setdefault(name, np.full(len(data), np.nan))[k] = value
            row["score_time"][k] = time.perf_counter() - t
        return row

    def _safe_score(self, scorer, model, X, y, **params):
        """The scores of ``model`` on ``(X, y)`` as a dict by metric name (``'score'`` for one metric)."""
        try:
            scores = scorer(model, X, y, **params)
        except _NoProbabilities as exc:
            # every fold at every point would fail alike: not a scoring failure for error_score to absorb
            raise ValueError(
                f"{exc} BilevelSearchCV scores each fold's solution of the training problem; "
                f"{type(_split_pipeline(self.estimator)[1]).__name__}'s probabilities (if any) come from a "
                "separate calibration that is not part of it. Use a metric of the decision function "
                "(accuracy, roc_auc, ...) or LogisticRegression for probability metrics."
            ) from exc
        except Exception as exc:
            if self.error_score == "raise":
                raise
            warn(f"Scoring failed; the score on this split is set to {self.error_score}. "
                 f"Details: {exc!r}", UserWarning)
            return {name: self.error_score for name in self._metric_names}
        if not isinstance(scores, dict):
            return {"score": scores}
        if not self.multimetric_:  # the first score of a callable returning several
            self.multimetric_ = True
            self._set_metric_names(sorted(scores))
        return scores

    def _results(self, rows, dims, metric_names):
        res = {"params": [r["params"] for r in rows], "start": np.array([r["start"] for r in rows]),
               "validation_loss": np.array([r["loss"] for r in rows])}
        for d in dims:
            res[f"param_{d.name}"] = np.ma.MaskedArray([r["params"][d.name] for r in rows], mask=False)
        for key in ("fit_time", "score_time"):
            times = np.array([r[key] for r in rows])
            res[f"mean_{key}"], res[f"std_{key}"] = times.mean(axis=1), times.std(axis=1)
        parts = ("test", "train") if self.return_train_score else ("test",)
        for name in metric_names:
            for part in parts:
                # a row scored before a callable scoring showed its metrics (its scorer failed) has none
                missing = np.full(self.n_splits_, np.nan if self.error_score == "raise" else self.error_score)
                scores = np.array([r[part].get(name, missing) for r in rows], dtype=float)
                for k in range(self.n_splits_):
                    res[f"split{k}_{part}_{name}"] = scores[:, k]
                res[f"mean_{part}_{name}"] = scores.mean(axis=1)
                res[f"std_{part}_{name}"] = scores.std(axis=1)
            mean = res[f"mean_test_{name}"]
            bad = ~np.isfinite(mean)
            if bad.any():
                arbitrary = " (all of them: best_index_ is then the first point)" if bad.all() else ""
                warn(f"One or more of the test scores are non-finite: {int(bad.sum())} of the {mean.size} "
                     f"evaluated points have no mean {name!r} score{arbitrary}.", UserWarning)
            # GridSearchCV's ranking: best first, ties share the lowest rank, NaN scores last
            filled = np.where(np.isnan(mean), -np.inf, mean)
            res[f"rank_test_{name}"] = rankdata(-filled, method="min").astype(np.int32)
        return res

    def _set_best(self, metric_names):
        if self.refit is False and self.multimetric_:
            return
        if callable(self.refit):
            index = self.refit(self.cv_results_)
            n_rows = len(self.cv_results_["params"])
            # GridSearchCV's checks: a negative or fractional index would silently pick another row
            if not isinstance(index, numbers.Integral) or isinstance(index, bool):
                raise TypeError(f"best_index_ returned by the refit callable is not an integer: {index!r}")
            if not 0 <= index < n_rows:
                raise IndexError(f"best_index_ returned by the refit callable, {index}, is out of range "
                                 f"[0, {n_rows})")
            self.best_index_ = int(index)
        else:
            name = self.refit if isinstance(self.refit, str) and self.multimetric_ else metric_names[0]
            self.best_index_ = int(np.argmin(self.cv_results_[f"rank_test_{name}"]))
            self.best_score_ = float(self.cv_results_[f"mean_test_{name}"][self.best_index_])
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        # a point of the initial grid (start -1) is credited to the first descent, which starts there;
        # one of the score refinement (start -2) to the descent it refined
        start = int(self.cv_results_["start"][self.best_index_])
        start = self._refine_from if start == -2 else start
        self.history_ = self._histories[max(start, 0)]

    # -- delegation -------------------------------------------------------------
    def _check_refit(self, method):
        if not self.refit:
            raise AttributeError(f"This {type(self).__name__} was initialised with refit=False; {method} is "
                                 "available only after refitting on the best parameters.")
        check_is_fitted(self)

    @property
    def classes_(self):
        self._check_refit("classes_")
        return self.best_estimator_.classes_

    predict = _delegate("predict", "Predict with ``best_estimator_``.", "ndarray of shape (n_samples,)")
    predict_proba = _delegate("predict_proba", "Class probabilities of ``best_estimator_``.",
                              "ndarray of shape (n_samples, n_classes)")
    predict_log_proba = _delegate("predict_log_proba", "Log class probabilities of ``best_estimator_``.",
                                  "ndarray of shape (n_samples, n_classes)")
    decision_function = _delegate("decision_function", "Decision values of ``best_estimator_``.",
                                  "ndarray of shape (n_samples,) or (n_samples, n_classes)")
    transform = _delegate("transform", "Transform ``X`` with ``best_estimator_``.", "ndarray or sparse matrix")
    inverse_transform = _delegate("inverse_transform", "Inverse transform of ``X`` with ``best_estimator_``.",
                                  "ndarray or sparse matrix")

    def score(self, X: ArrayLike, y: ArrayLike | None = None, **params) -> float:
        """Score of the refitted estimator with ``scorer_`` (the ``refit`` metric when multi-metric).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Samples to score.
        y : array-like of shape (n_samples,), optional
            Their targets.
        **params : dict
            With metadata routing enabled, metadata for the scorer (such as
            ``sample_weight``), as in GridSearchCV; without it, none.

        Returns
        -------
        score : float
            The score of ``best_estimator_`` on ``(X, y)``.
        """
        self._check_refit("score")
        if _routing_enabled():
            params = dict(process_routing(self, "score", **params).scorer.score)
        elif params:
            raise ValueError(f"{type(self).__name__}.score takes {sorted(params)} only with metadata routing "
                             "enabled (sklearn.set_config(enable_metadata_routing=True)).")
        scorer = self.scorer_[self.refit] if isinstance(self.scorer_, dict) else self.scorer_
        score = scorer(self.best_estimator_, X, y, **params)
        return score[self.refit] if self.multimetric_ and isinstance(score, dict) else score
