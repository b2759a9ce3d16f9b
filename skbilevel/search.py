"""BilevelSearchCV: GridSearchCV's interface, hypergradient descent inside.

The K cross-validation folds are K lower-level problems sharing the
hyperparameters (the hyperparameter-optimisation problem of Grazzi et al.
(2026), section 4.1, once per fold; :mod:`skbilevel.problems.cross_validation`).
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

The estimator class only validates, wires and stores; the work is in private
modules, one per job:

- :mod:`skbilevel._search_routing`: where ``fit``'s and ``score``'s metadata go;
- :mod:`skbilevel._search_folds`: the searched hyperparameters and one lower
  level per fold;
- :mod:`skbilevel._search_scoring`: the fold scores of each evaluated point;
- :mod:`skbilevel._search_strategy`: the initial grid, the hypergradient
  descents and the score refinement, returning one row per evaluated point;
- :mod:`skbilevel._search_results`: ``cv_results_`` and the best point.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import check_random_state, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import MetadataRouter
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._search_folds import build_folds, check_targets, search_dimensions
from ._search_results import best_point, cv_results, unique_points, warn_on_range_edges
from ._search_routing import metadata_router, route_fit_params, route_score_params, split_pipeline
from ._search_scoring import FoldScoring, honest_scores
from ._search_space import resolve_param_space
from ._search_strategy import OuterSearch, grid_size, refine_budget
from ._search_vector import add_vector_column, fixed_splits, per_feature_search, split_vector_space
from ._validation_split import check_sample_weight
from ._warnings import warn
from .problems.estimator_base import ValidationLoss


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


class BilevelSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search continuous hyperparameters by hypergradient descent on the cross-validation loss.

    A drop-in replacement for :class:`~sklearn.model_selection.GridSearchCV`
    on continuous hyperparameters. With folds ``k = 1..K``, it minimises

    .. math::

        h(\\lambda) = \\frac{1}{K} \\sum_k \\frac{1}{|V_k|} \\sum_{i \\in V_k}
        \\ell(d_i(\\lambda, w_k(\\lambda)), y_i),
        \\qquad w_k(\\lambda) = \\arg\\min_w f_k(\\lambda, w),

    (the bilevel problem (4.1)-(4.2) of Grazzi et al. (2026), section 4.1,
    with one lower level per fold) where ``f_k`` is the estimator's training problem
    on the training part of fold ``k`` and ``ell`` a smooth loss matched to
    the estimator (squared error for regressors, log-loss for
    LogisticRegression, squared hinge for the SVMs). Its gradient comes from
    implicit differentiation of the lower level's optimality condition
    (Grazzi et al. (2026), section 5.1, from (5.4)); the folds are solved by
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
    param_space : dict, optional
        ``{name: (low, high)}`` searched on a log scale, ``(low, high,
        'linear')`` on a linear one, or a scipy.stats frozen distribution
        (``loguniform(1e-3, 1e3)`` is searched on a log scale between its
        bounds; its draws give the extra starting points; an unbounded tail
        is cut at its 1e-3 quantile, and so is an end of the support that
        the estimator refuses, such as ``C = 0`` of ``expon()``). The
        descent may reach the ends of the range, so they must be values the
        estimator accepts (``ValueError`` otherwise). Names may be
        Pipeline paths (``'svc__C'``) of the last step, and
        ``'<step>__scale': (low, high)`` of a
        :class:`~skbilevel.preprocessing.FeatureScaler` right before a linear
        or RBF KernelRidge last step: one scale per feature, each in ``[low, high]`` on a log
        scale (a per-feature penalty), searched after the scalar ones from
        their best point (:mod:`skbilevel._search_vector`). Give it or
        ``param_grid``, not both (``ValueError``).
    param_grid : dict, optional
        What a GridSearchCV user types, ``{name: list of values}``: a list
        of numbers spans the continuous range ``[min, max]`` (log scale when
        all are positive, else linear) and the initial grid takes its points
        among the values; a list of one value (of any type) holds the
        parameter at it, in every row's ``params``; a list of several
        non-numeric values raises ``ValueError`` (search those with
        GridSearchCV).
    scoring : str, callable, list, tuple, set, dict or None, default=None
        As in GridSearchCV; ``None`` uses the estimator's ``score``.
    cv : int, cross-validation generator or iterable, default=5
        As in GridSearchCV: an int is the number of (stratified, for a
        classifier) K-fold splits. ``LeaveOneOut()`` with a Ridge, or a KernelRidge
        searching ``alpha`` alone (not after earlier Pipeline steps), needs
        no refit: the leave-one-out predictions come in closed form from the
        fit on all samples and are scored together, as by ``RidgeCV`` (one
        split in ``cv_results_``).
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
        the grid's points also count as candidates for ``best_*``. It is
        scanned as ``LassoCV`` scans its path: from the strongest penalty
        down (large ``alpha``, small ``C``), each point warm started from
        the last, and it stops once a value of the first hyperparameter
        scores worse than the best before it (two consecutive values with
        more than one hyperparameter).
    refine : 'auto' or int, default='auto'
        Evaluations of a compass search on the CV score (the refit metric)
        after the descents, from the best-scoring point: the descent
        minimises a smooth surrogate, and the score (accuracy, say) is
        piecewise constant, so its maximum near the surrogate's minimum is
        searched without derivatives. ``'auto'`` is 1 for one hyperparameter
        (a probe a quarter of a grid cell from the best point, on the side
        whose nearest evaluated point scores higher, the upper side on a tie:
        a search of one hyperparameter takes few evaluations, so each added
        one is a sizeable share of its time) and 8 per hyperparameter
        otherwise: on SVC ``(C, gamma)``, where the squared hinge's valley
        lies far from the accuracy's, it brings the search to or near a
        900-point grid's best accuracy
        (``benchmarks/results/search_vs_grid.md``). It stops earlier after
        two rounds without a better score (the step halves after each).
        ``'auto'`` is 0 for one hyperparameter whose score is the smooth
        validation loss itself (``scoring='neg_mean_squared_error'`` with
        the squared loss): the descent has minimised it already. With more,
        it stays 8 each: a descent stopped at a kink of the loss (where a
        Lasso's active set changes) leaves gains along the other axes. 0
        skips it.
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
    max_time : float, optional
        Budget in seconds: once passed, the search stops (after the initial
        grid, a descent iteration or a refinement evaluation), keeps its
        best point so far, sets ``max_time_reached_`` and warns.

    Attributes
    ----------
    cv_results_ : dict of arrays
        One row per evaluated point (initial grid, then outer iterations and
        line-search trials, then the score refinement, in order; a point
        evaluated twice, such as a descent's starting grid point, is one row
        with the later, more accurately solved scores), with GridSearchCV's
        keys plus ``validation_loss`` (the smooth objective ``h`` at the
        point), ``start`` (the descent it belongs to; -1 for the initial
        grid, -2 for the refinement) and ``refitted`` (True where the scores
        are those of the scikit-learn estimator fitted on every fold, as
        ``cross_val_score`` gives them: always the best row; every row when
        the search's fold solutions scored differently, with a
        UserWarning; otherwise the search's fold solutions' scores). A
        per-feature ``scale`` is an object column of arrays; a per-feature
        search reports its fold solutions' scores.
    best_estimator_ : estimator
        The estimator refitted on all the data at ``best_params_`` (when
        ``refit`` is not False).
    best_params_ : dict
        The hyperparameters of the best evaluated point. As in GridSearchCV,
        ``best_params_``, ``best_score_``, ``best_index_`` and ``history_`` are
        not set with several metrics and ``refit=False``: no metric names the
        best point.
    best_score_ : float
        Mean cross-validated score of ``best_params_``: that of
        ``cross_val_score(clone(estimator).set_params(**best_params_))`` on
        the same folds (not set for a callable ``refit``).
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
        The outer loop's ``history`` of the start holding ``best_index_``
        (empty when ``max_time`` ended the search before any descent).
    max_time_reached_ : bool
        Whether ``max_time`` stopped the search.

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: hyperparameter optimisation
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
        "param_space": [dict, None],
        "param_grid": [dict, list, None],
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
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, estimator: BaseEstimator, param_space: dict | None = None, *, param_grid: dict | None = None,
                 scoring: str | Callable | list | tuple | dict | None = None, cv: int | object | None = 5,
                 n_jobs: int | None = None, refit: bool | str | Callable = True, verbose: int = 0,
                 max_iter: int = 50, tol: float = 1e-4, n_starts: int = 1, initial_grid: str | int = "auto",
                 refine: str | int = "auto", validation_loss: str = "auto", method: str = "auto",
                 random_state: int | np.random.RandomState | None = None, error_score: str | float = np.nan,
                 return_train_score: bool = False, callback: Callable | None = None,
                 max_time: float | None = None):
        self.estimator = estimator
        self.param_space = param_space
        self.param_grid = param_grid
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
        self.max_time = max_time

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        final = split_pipeline(self.estimator)[1]
        sub = final.__sklearn_tags__()
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.input_tags.sparse = self.estimator.__sklearn_tags__().input_tags.sparse
        tags.target_tags.required = True  # the validation loss needs targets
        return tags

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

        Warns
        -----
        UserWarning
            When a best value lies on an edge of its range (the optimum may
            lie beyond it), a point has no finite score, the estimator's
            cross-validated scores differ from the search's fold solutions'
            (then all are refitted), ``max_time`` stopped the search, or an
            RBF SVC's stored distances would exceed its ``cache_size``.
        ConvergenceWarning
            When a descent stops before its tolerance.
        """

        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(the validation loss needs targets)")
        X, y, groups = indexable(X, y, groups)
        y = check_targets(self.estimator, y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, np.ones(len(y)))
        space, fixed = resolve_param_space(self.param_space, self.param_grid)
        estimator = clone(self.estimator).set_params(**fixed) if fixed else self.estimator
        scalar_space, vector = split_vector_space(estimator, space)  # one scale per feature
        dims = search_dimensions(estimator, scalar_space)
        scoring = FoldScoring(estimator, type(split_pipeline(estimator)[1]).__name__, self.scoring,
                              self.refit, self.error_score, self.return_train_score)
        route = route_fit_params(self, scoring.scorer, groups, sample_weight, params)
        cv = self.cv if vector is None else fixed_splits(self.cv, estimator, X, y, route["split"])
        problem, data = build_folds(estimator, cv, self.validation_loss, X, y, route, dims)
        record = OuterSearch(problem, data, dims, scoring, n_starts=self.n_starts, max_iter=self.max_iter,
                             tol=self.tol, n_jobs=self.n_jobs, verbose=self.verbose, callback=self.callback,
                             grid_size=grid_size(self.initial_grid, len(dims)),
                             refine_budget=refine_budget(self.refine, len(dims), _loss_is_score(self.scoring, problem)),
                             rng=check_random_state(self.random_state), max_time=self.max_time).run()
        if vector is not None:
            record = per_feature_search(self, record, dims, vector, scoring, X, y, route, cv)
        rows = unique_points(record.rows)
        # a per-feature row's refit scales its fold data (not refit_point's); a closed-form leave-one-out
        # problem holds all n splits in one and scores them exactly
        if vector is None and not getattr(problem.folds[0].lower, "exact_cross_validation", False):
            honest_scores(rows, scoring, estimator, problem, data)
        results = cv_results(rows, dims, scoring.metric_names, len(problem.folds),
                             self.return_train_score, self.error_score, fixed)
        if vector is not None:
            add_vector_column(results, rows, vector)
        best = best_point(results, self.refit, scoring.multimetric, scoring.metric_names, record.refine_from)
        if record.timed_out:
            warn(f"BilevelSearchCV stopped at max_time={self.max_time:g} s after {len(rows)} evaluated points; "
                 "best_params_ is the best of them (the search may not have converged).", UserWarning)
        if best is not None:
            warn_on_range_edges(best.params, dims)
        if self.refit:
            start = time.perf_counter()
            best_estimator = clone(estimator).set_params(**best.params).fit(X, y, **route["refit"])
            refit_time = time.perf_counter() - start

        # every fitted attribute, from what the steps above returned
        self.n_splits_ = len(problem.folds)
        self.multimetric_ = scoring.multimetric
        self.scorer_ = scoring.public_scorer()
        self.cv_results_ = results
        self.n_iter_, self.max_time_reached_ = record.n_iter, record.timed_out
        self._histories = record.histories
        if best is not None:
            self.best_index_, self.best_params_ = best.index, best.params
            self.history_ = record.histories[best.start] if best.start < len(record.histories) else {}
            if best.score is not None:
                self.best_score_ = best.score
        if self.refit:
            self.best_estimator_, self.refit_time_ = best_estimator, refit_time
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(best_estimator, name):
                    setattr(self, name, getattr(best_estimator, name))
        return self

    def get_metadata_routing(self) -> MetadataRouter:
        """Metadata routing of the search, as GridSearchCV's: ``fit`` routes to the estimator's ``fit``,
        the scorer's ``score`` and the splitter's ``split``; ``score`` to the scorer.

        Returns
        -------
        MetadataRouter
            The routing (see scikit-learn's user guide on metadata routing).
        """
        return metadata_router(self)

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
        params = route_score_params(self, params)
        scorer = self.scorer_[self.refit] if isinstance(self.scorer_, dict) else self.scorer_
        score = scorer(self.best_estimator_, X, y, **params)
        return score[self.refit] if self.multimetric_ and isinstance(score, dict) else score


def _loss_is_score(scoring, problem) -> bool:
    """Whether ``scoring`` ranks points as the folds' validation loss does (mean squared error, squared loss)."""
    return scoring == "neg_mean_squared_error" and getattr(problem.folds[0].upper, "loss", None) == "squared"
