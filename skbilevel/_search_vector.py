"""BilevelSearchCV with one hyperparameter per feature: a FeatureScaler's ``scale`` searched as a vector.

``param_space = {'lasso__alpha': (1e-4, 1e1), 'scale__scale': (1e-3, 1e3)}``
on ``Pipeline([..., ('scale', FeatureScaler()), ('lasso', Lasso())])``
searches one scale per feature (a per-feature penalty of the linear model,
:mod:`skbilevel.problems.feature_scaling`) in two phases:

1. the scalar search: the usual initial grid, descent and refinement of the
   scalar hyperparameters, the scaler fixed at its own ``scale`` (ones by
   default): the search a user without vectors would run;
2. one descent in ``log s`` from the best point of phase 1 (by validation
   loss, which it descends), each fold warm started from that point's
   solutions: L-BFGS-B on the hypergradient, whose cost does not grow with
   the number of scales (one adjoint solve per fold). The scalar
   hyperparameters stay at that point: the scales subsume a common factor of
   the penalty (``(alpha, s)`` and ``(c alpha, c s)`` give the same Lasso,
   ``(c^2 alpha, c s)`` the same Ridge, ``(c^2 C, s / c)`` the same logistic
   regression), so descending both would drift along that valley, towards
   tiny penalties on huge scales where scikit-learn's refit converges slowly.

Its rows follow phase 1's with ``start`` one past the last descent;
``params`` and ``cv_results_['param_<step>__scale']`` hold the scales as
arrays (an object column), phase 1's rows the scaler's fixed scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline

from ._progress import emit
from ._search_folds import build_folds
from ._search_strategy import SearchRecord
from ._warnings import warn
from .methods import hypergradient
from .preprocessing import FeatureScaler
from .problems.cross_validation import CrossValidationProblem
from .problems.feature_scaling import SCALABLE, per_feature_lower_level
from .problems.ridge import KernelRidgeLowerLevel
from .problems.sklearn_estimators import lower_level_class

# As in the scalar descents (skbilevel._search_strategy): lower levels solved to 1e-6 relative, line
# searches cut at 5 evaluations (a failing one sits at a kink), a probe within 1e-3 of an evaluated
# point stops the descent.
_DESCENT_TOL, _MAX_LINE_SEARCH, _XTOL = 1e-6, 5, 1e-3

# The joint descent's tolerances are the search's tol times this: the loss falls by many small steps,
# one scale after another, each below the scalar descent's ftol (relative to max(|h|, 1) in L-BFGS-B).
_JOINT_TOL_FACTOR = 1e-2

# The joint descent's first step (max-norm, in log s): this fraction of the width of the range of s.
_FIRST_STEP_FRACTION = 0.05


@dataclass(frozen=True)
class VectorDimension:
    """The searched ``scale`` of a FeatureScaler: every entry in ``[low_value, high_value]`` on a log scale.

    ``low`` and ``high`` are the log edges; ``start`` the scaler's own
    ``scale`` (None: ones); ``step`` the scaler's name in the Pipeline.
    """

    name: str
    step: str
    low: float
    high: float
    low_value: float
    high_value: float
    start: object = None

    def to_values(self, x) -> np.ndarray:
        """The scales at log coordinates ``x`` (the user's edge values exactly at the edges)."""
        x = np.asarray(x, dtype=float)
        return np.where(x <= self.low, self.low_value, np.where(x >= self.high, self.high_value, np.exp(x)))

    def start_x(self, n_features) -> np.ndarray:
        """The log scales phase 1 runs at (the scaler's ``scale``), inside the box."""
        start = np.ones(n_features) if self.start is None else np.asarray(self.start, dtype=float)
        return np.clip(np.log(start), self.low, self.high)


def _parse_range(key, spec):
    if not (isinstance(spec, tuple) and len(spec) in (2, 3) and (len(spec) == 2 or spec[2] == "log")):
        raise ValueError(f"param_space[{key!r}] searches one scale per feature on a log scale: give "
                         f"(low, high) with 0 < low < high; got {spec!r}")
    low, high = float(spec[0]), float(spec[1])
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        raise ValueError(f"param_space[{key!r}]: need finite 0 < low < high, got ({low}, {high})")
    return low, high


def split_vector_space(estimator, param_space):
    """``(scalar param_space, VectorDimension or None)``: the per-feature entry taken out of ``param_space``.

    The entry is ``'<step>__scale'`` of a :class:`~skbilevel.preprocessing.FeatureScaler` step, which must
    come right before a final linear model (Ridge, Lasso, ElasticNet, LogisticRegression, LinearSVC) or
    an RBF KernelRidge (one length scale per feature), next to at least one scalar hyperparameter of that
    model (``ValueError`` otherwise).
    """
    if not isinstance(estimator, Pipeline) or not isinstance(param_space, dict):
        return param_space, None
    scalers = {name for name, step in estimator.steps[:-1] if isinstance(step, FeatureScaler)}
    keys = [k for k in param_space if k.count("__") == 1 and k.endswith("__scale") and k.split("__")[0] in scalers]
    if not keys:
        return param_space, None
    if len(keys) > 1:
        raise ValueError(f"one FeatureScaler scale can be searched; got {sorted(keys)}")
    key, (step, scaler) = keys[0], estimator.steps[-2]
    if key != f"{step}__scale":
        raise ValueError(f"param_space[{key!r}]: the searched FeatureScaler must be the step right before the "
                         f"final one ({estimator.steps[-1][0]!r}), where its scales are per-feature penalties")
    final = estimator.steps[-1][1]
    lower_cls = lower_level_class(final)
    ard = issubclass(lower_cls, KernelRidgeLowerLevel) and final.get_params()["kernel"] == "rbf"
    if not (issubclass(lower_cls, SCALABLE) or ard):
        raise ValueError(f"param_space[{key!r}]: one scale per feature is searched for a linear final step "
                         f"(Ridge, Lasso, ElasticNet, LogisticRegression, LinearSVC) or an RBF KernelRidge; "
                         f"got {type(final).__name__}")
    scalar = {k: v for k, v in param_space.items() if k != key}
    if not scalar:
        raise ValueError(f"param_space[{key!r}] needs a scalar hyperparameter of the final step next to it "
                         f"(such as '{estimator.steps[-1][0]}__alpha'): the search scans it first")
    low, high = _parse_range(key, param_space[key])
    return scalar, VectorDimension(key, step, float(np.log(low)), float(np.log(high)), low, high, scaler.scale)


def fixed_splits(cv, estimator, X, y, split_params):
    """The folds of ``cv`` as a list, so that both phases use the same ones (a generator runs once)."""
    final = estimator.steps[-1][1]
    return list(check_cv(cv, y, classifier=is_classifier(final)).split(X, y, **split_params))


def _lowest_loss_row(rows):
    """The row of lowest validation loss: the descent minimises it (the best score may lie on a plateau of
    it, a range edge where a penalty too small for the scales to matter leaves their gradient near 0)."""
    losses = np.array([r["loss"] for r in rows], dtype=float)
    return rows[int(np.argmin(np.where(np.isnan(losses), np.inf, losses)))]


def add_vector_column(results, rows, vector):
    """``cv_results_['param_<step>__scale']``: the scales of each row, an object column of arrays."""
    column = np.ma.MaskedArray(np.empty(len(rows), dtype=object), mask=False)
    for i, row in enumerate(rows):
        column[i] = row["params"][vector.name]
    results[f"param_{vector.name}"] = column


class PerFeatureDescent:
    """Phase 2 (module docstring): one descent in ``log s`` from phase 1's best point.

    Parameters
    ----------
    search : BilevelSearchCV
        The search being fitted (its settings).
    dims : list of Dimension
        The scalar hyperparameters.
    vector : VectorDimension
        The searched scales.
    scoring : FoldScoring
        Scores each evaluated point.
    """

    def __init__(self, search, dims, vector, scoring):
        self.search, self.dims, self.vector, self.scoring = search, dims, vector, scoring
        self.rows, self.start, self.t0 = [], 0, time.perf_counter()

    def folds(self, X, y, route, splits):
        """The folds without the scaler step, each lower level a per-feature one
        (:func:`~skbilevel.problems.feature_scaling.per_feature_lower_level`)."""
        steps = self.search.estimator.steps
        reduced = Pipeline(steps[:-2] + steps[-1:])
        factory = per_feature_lower_level(lower_level_class(steps[-1][1]))
        problem, data = build_folds(reduced, splits, self.search.validation_loss, X, y, route, self.dims,
                                    lower_factory=factory)
        p = problem.folds[0].lower.n_features
        lo = np.append([d.low for d in self.dims], np.full(p, self.vector.low))
        hi = np.append([d.high for d in self.dims], np.full(p, self.vector.high))
        return CrossValidationProblem(problem.folds, (lo, hi)), data

    def run(self, record, problem, data) -> SearchRecord:
        """Descend from the best row of ``record`` (phase 1); return ``record`` with the descent's rows."""
        n_scalar, p = len(self.dims), problem.folds[0].lower.n_features
        x_s0 = self.vector.start_x(p)
        for row in record.rows:  # phase 1 ran at the scaler's own scale
            row["params"][self.vector.name] = self.vector.to_values(x_s0)
        best = _lowest_loss_row(record.rows)
        lo, hi = (np.array(b, dtype=float) for b in problem.x_bounds)
        lo[:n_scalar] = hi[:n_scalar] = best["x"][:n_scalar]  # fixed (module docstring)
        problem = CrossValidationProblem(problem.folds, (lo, hi))
        d0 = [fold.lower.coefficient_scale(np.exp(x_s0)) for fold in problem.folds]
        y0 = [d * np.asarray(y_k) for d, y_k in zip(d0, best["models"])]  # w on scaled data -> u = s * w
        self.problem, self.data, self.rows, self.start = problem, data, list(record.rows), len(record.histories)
        result = hypergradient.solve(
            problem, np.append(best["x"][:n_scalar], x_s0), y0, tol=self.search.tol * _JOINT_TOL_FACTOR,
            ftol=self.search.tol * _JOINT_TOL_FACTOR,
            max_iter=self.search.max_iter, lower_tol=_DESCENT_TOL, max_line_search=_MAX_LINE_SEARCH, xtol=_XTOL,
            first_step=_FIRST_STEP_FRACTION * (self.vector.high - self.vector.low), n_jobs=self.search.n_jobs,
            on_evaluation=self._on_evaluation, callback=self._per_iteration)
        if not result.converged and not result.stopped_by_callback:
            warn(f"BilevelSearchCV per-feature descent: {result.message}", ConvergenceWarning)
        return SearchRecord(self.rows, [*record.histories, result.history], record.n_iter + result.n_iter,
                            record.refine_from)

    def _on_evaluation(self, info):
        row = self.scoring.score_point(info, self.problem, self.data, self.dims, self.start)
        row["params"][self.vector.name] = self.vector.to_values(info["hyperparameters"][len(self.dims):])
        self.rows.append(row)

    def _per_iteration(self, info):
        row = self.rows[-1]
        cv_score = float(np.mean(row["test"][self.scoring.refit_metric]))
        if self.search.verbose >= 2:
            scalars = ", ".join(f"{d.name}={row['params'][d.name]:.4g}" for d in self.dims)
            emit(f"[BilevelSearchCV] per-feature iter {info['iteration']:3d}  {scalars}  CV score {cv_score:.5g}  "
                 f"loss {info['objective']:.5g}  ({time.perf_counter() - self.t0:.2f}s)")
        if self.search.callback is not None:
            return self.search.callback({"iteration": info["iteration"], "params": dict(row["params"]),
                                         "objective": info["objective"], "score": cv_score,
                                         "time": time.perf_counter() - self.t0})
        return False


def per_feature_search(search, record, dims, vector, scoring, X, y, route, splits) -> SearchRecord:
    """Phase 2 after the scalar search's ``record``: the rows of both, the histories of every descent."""
    descent = PerFeatureDescent(search, dims, vector, scoring)
    problem, data = descent.folds(X, y, route, splits)
    return descent.run(record, problem, data)
