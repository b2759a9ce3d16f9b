"""BilevelSearchCV's strategy: a coarse scan, hypergradient descents, then a compass search on the score.

1. The initial grid (``start = -1``): a coarse grid of the box, compared by
   validation loss, scanned as a regularisation path (from the strongest
   penalty down, warm started, stopped once the loss rises; see
   :meth:`OuterSearch._scan`); its best points are the descents' starts.
2. The descents (``start = 0, 1, ...``):
   :func:`skbilevel.methods.hypergradient.solve`, L-BFGS-B on the mean
   validation loss of the folds, each fold warm started.
3. The score refinement (``start = -2``): a compass search on the CV score
   (the refit metric) from the best-scoring point, without derivatives.

:class:`OuterSearch` runs the three and returns a :class:`SearchRecord`:
one row per evaluated point, in order, and the descents' histories.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning

from ._progress import OuterProgress, emit
from ._search_space import initial_grid
from ._warnings import warn
from .methods import hypergradient

# L-BFGS-B evaluations per line search: a failing line search is usually at a kink of the CV
# loss (an active set changes), where more trials only add rows at the same point.
_MAX_LINE_SEARCH = 5

# A descent stops when L-BFGS-B probes a point within this distance (in log C, log gamma, ...:
# 0.1%) of one it has evaluated: at a kink it re-probes the same spot, a full set of fold solves
# each time, for a change of the hyperparameters that means nothing to the search.
_XTOL = 1e-3

# Lower-level tolerances (relative). Where points are only compared, by validation loss or score
# (the coarse grid, the score refinement), 1e-4: the tolerance at which scikit-learn's estimators,
# and so GridSearchCV's fits, stop by default. In the descent the hypergradient's error is of the
# order of the lower level's residual, so 1e-6 is ample against the outer tol (1e-4); the library
# default of 1e-10 only costs lower-level iterations, and 1e-8 gave the same points on every row
# of benchmarks/search_vs_grid.py at a higher cost. At 1e-6 a warm-started LogisticRegression
# re-solve still tries Newton first (its NEWTON_FIRST_TOL): a looser descent tolerance would drop
# that path. A lower level whose estimator stops by another measure translates the compare tolerance into
# it (EstimatorLowerLevel.comparison_tol: LogisticRegression's multinomial reads scikit-learn's own test).
_COMPARE_TOL = 1e-4
_DESCENT_TOL = 1e-6

# Rounds of the score refinement in a row that find no better score, after which it stops.
_REFINE_PATIENCE = 2

# Distance, relative to the box's width, below which two points in search coordinates are one (the
# refinement's trials are computed by other arithmetic than the grid's and the descents' points).
_SAME_POINT = 1e-9


def grid_size(initial_grid, n_dims):
    """Points per hyperparameter of the initial grid: ``initial_grid``, 'auto' being 5, 3 or 2."""
    if initial_grid != "auto":
        return int(initial_grid)
    return {1: 5, 2: 3}.get(n_dims, 2)


def refine_budget(refine, n_dims, loss_is_score=False):
    """Evaluations of the score refinement: ``refine``, 'auto' being 1 for one hyperparameter, else 8 each,
    and 0 for one hyperparameter whose score is the validation loss the descent minimised (``loss_is_score``).

    With more hyperparameters the compass search stays even then: a descent that stops at a kink of the loss
    (an active set that changes, as a Lasso's does) leaves gains along the other axes that it finds.
    """
    if refine != "auto":
        return int(refine)
    if n_dims == 1:
        return 0 if loss_is_score else 1
    return 8 * n_dims


@dataclass(frozen=True)
class SearchRecord:
    """What a search returns.

    Attributes
    ----------
    rows : list of dict
        One per evaluated point, in order (grid, descents, refinement).
    histories : list of dict
        The ``history`` of each descent.
    n_iter : int
        Outer iterations over all descents, plus one for the initial grid
        and one for the score refinement when they ran.
    refine_from : int
        The descent whose point the refinement started from (0 without one).
    timed_out : bool
        Whether ``max_time`` stopped the search.
    """

    rows: list
    histories: list
    n_iter: int
    refine_from: int
    timed_out: bool = False


class OuterSearch:
    """One run of the search: the initial grid, ``n_starts`` descents, then the score refinement.

    Parameters
    ----------
    problem : CrossValidationProblem
        The folds, on the box of the searched hyperparameters.
    data : list of tuple
        The folds' data, to score their solutions.
    dims : list of Dimension
        The searched hyperparameters.
    scoring : FoldScoring
        Turns an evaluated point into a row; names the refit metric.
    n_starts, max_iter, tol, n_jobs, verbose, callback
        BilevelSearchCV's parameters of these names.
    grid_size, refine_budget : int
        Points per hyperparameter of the initial grid; evaluations of the
        refinement (0 skips either).
    rng : RandomState
        Draws the starts beyond the grid's.
    max_time : float or None
        Seconds after which the search stops (checked after the initial grid,
        each descent iteration and each refinement evaluation).
    """

    def __init__(self, problem, data, dims, scoring, *, n_starts, max_iter, tol, n_jobs, verbose, callback,
                 grid_size, refine_budget, rng, max_time=None):
        self.problem, self.data, self.dims, self.scoring = problem, data, dims, scoring
        self.n_starts, self.max_iter, self.tol, self.n_jobs = n_starts, max_iter, tol, n_jobs
        self.verbose, self.callback, self.rng = verbose, callback, rng
        self.grid_size, self.refine_budget = grid_size, refine_budget
        self.rows, self.start, self.t0, self.progress = [], 0, time.perf_counter(), None
        self.max_time, self.timed_out = max_time, False
        # compared points are solved as the strictest fold asks (see EstimatorLowerLevel.comparison_tol)
        self.compare_tol = min((getattr(fold.lower, "comparison_tol", lambda tol: tol)(_COMPARE_TOL)
                                for fold in problem.folds), default=_COMPARE_TOL)

    def run(self) -> SearchRecord:
        """Run the grid, the descents and the refinement; return their rows and histories."""
        n_passes = int(self.grid_size > 0) + int(self.refine_budget > 0)
        with OuterProgress("BilevelSearchCV", self.verbose, n_passes + self.n_starts * self.max_iter) as progress:
            self.progress = progress
            starts = self._starting_points()
            grid = [row for row in self.rows if row["start"] == -1]
            if grid:  # the initial grid is one outer pass: its best loss and CV score
                progress.update(min(row["loss"] for row in grid),
                                {"score": max((v for v in map(self._mean_score, grid) if not np.isnan(v)),
                                              default=np.nan)})
            results = [self._descend(s, x0, y0) for s, (x0, y0) in enumerate(starts) if not self._out_of_time()]
            n_rows = len(self.rows)
            refine_from = self._refine()
        # the initial grid is one pass, and so is the refinement
        n_iter = int(self.grid_size > 0) + sum(r.n_iter for r in results) + int(len(self.rows) > n_rows)
        return SearchRecord(self.rows, [r.history for r in results], n_iter, refine_from, self.timed_out)

    def _out_of_time(self):
        """Whether ``max_time`` has passed (and the search stops)."""
        if self.max_time is not None and time.perf_counter() - self.t0 >= self.max_time:
            self.timed_out = True
        return self.timed_out

    def _on_evaluation(self, info):
        self.rows.append(self.scoring.score_point(info, self.problem, self.data, self.dims, self.start))

    def _mean_score(self, row):
        return float(np.mean(row["test"][self.scoring.refit_metric]))

    def _starting_points(self):
        """``n_starts`` pairs ``(x0, fold solutions or None)``: the best points of the initial grid by
        validation loss, then random draws."""
        starts = []
        if self.grid_size:
            self.start = -1
            points, values = self._scan(initial_grid(self.dims, self.grid_size))
            order = np.argsort([F for F, _, _ in values], kind="stable")
            starts = [(points[i], values[i][2]) for i in order[: self.n_starts]]
        elif self.n_starts:
            starts = [(np.array([d.start() for d in self.dims]), None)]
        while len(starts) < self.n_starts:
            starts.append((np.array([d.sample(self.rng) for d in self.dims]), None))
        return starts

    def _scan(self, points):
        """Evaluate the initial grid as a regularisation path: ``(points evaluated, their values)``.

        The grid (snake order) runs from the strongest penalty of its first
        hyperparameter down (``penalises_upward`` of the lower level: large
        ``alpha``, small ``C``), each point warm started from its neighbour's
        fold solutions, as ``LassoCV``'s path is: near the strong end the
        solutions are sparse or small and cheap, and each solve starts close
        to its answer, where a cold solve at a weak penalty (a Lasso with more
        active features than samples) costs thousands of coordinate-descent
        sweeps. Once the validation loss of a block of the first
        hyperparameter (the points that share its value) is above the best of
        the blocks before it (with more than one hyperparameter: the losses of
        two consecutive blocks), the weaker penalties left are taken to
        overfit further and are not evaluated: they are the most expensive
        ones. With one hyperparameter a block is one point, and the descent
        from the best point searches the grid cells on both sides of it; with
        more, a block's best point is the best of a coarse grid over the
        others, a rougher estimate, so one more block is scanned.
        """
        lower = self.problem.folds[0].lower
        if self.dims and lower.names[0] in getattr(lower, "penalises_upward", ()):
            points = points[::-1]
        outer = points[:, 0] if len(points) else points
        blocks = np.split(np.arange(len(points)), np.flatnonzero(np.diff(outer)) + 1)
        paths = all(hasattr(fold.lower, "solve_path") for fold in self.problem.folds)
        values, block_losses, y0, x0 = [], [], None, None
        patience = 1 if len(self.dims) == 1 else 2  # worse blocks in a row that end the scan
        for block in blocks:
            if paths:
                out = self._path_block(points[block], y0, x0)
            else:
                out = hypergradient.evaluate(self.problem, points[block], y0=y0, n_jobs=self.n_jobs,
                                             on_evaluation=self._on_evaluation, gradient=False,
                                             lower_tol=self.compare_tol)
            values += out
            y0, x0 = out[-1][2], points[block[-1]]
            block_losses.append(min(F for F, _, _ in out))
            if len(block_losses) > patience and min(block_losses[:-patience]) < min(block_losses[-patience:]):
                break
        return points[: len(values)], values

    def _path_block(self, points, y0, x0):
        """The scan's ``points`` through each fold's ``solve_path`` (a lower level that follows a
        regularisation path through points it does not report), from the fold solutions ``y0`` at
        ``x0``: a list of ``(F, None, fold solutions)``, each point recorded as by ``evaluate``."""
        y0 = [None] * len(self.problem.folds) if y0 is None else y0
        with Parallel(n_jobs=self.n_jobs) as parallel:
            per_fold = parallel(delayed(_fold_path)(fold, points, y, x0, self.compare_tol)
                                for fold, y in zip(self.problem.folds, y0))
        values = []
        for i, x in enumerate(points):
            Fs, ys, seconds = (np.array([path[i][0] for path in per_fold]), [path[i][1] for path in per_fold],
                               np.array([path[i][2] for path in per_fold]))
            self._on_evaluation({"hyperparameters": x.copy(), "objective": float(Fs.mean()), "gradient": None,
                                 "fold_objectives": Fs, "models": ys, "fold_times": seconds})
            values.append((float(Fs.mean()), None, ys))
        return values

    def _descend(self, s, x0, y0):
        """Descent ``s`` from ``x0`` (fold solutions ``y0``); warns when it did not converge."""
        self.start = s
        result = hypergradient.solve(self.problem, x0, y0, tol=self.tol, ftol=self.tol, max_iter=self.max_iter,
                                     lower_tol=_DESCENT_TOL, max_line_search=_MAX_LINE_SEARCH, xtol=_XTOL,
                                     first_step=self._first_step(), n_jobs=self.n_jobs,
                                     on_evaluation=self._on_evaluation, callback=self._per_iteration)
        if not result.converged and not result.stopped_by_callback:
            warn(f"BilevelSearchCV start {s}: {result.message}", ConvergenceWarning)
        return result

    def _per_iteration(self, info):
        """After each descent iteration: the progress bar, the ``verbose=2`` line and ``callback``."""
        row = self.rows[-1]
        cv_score = self._mean_score(row)
        self.progress.update(info["objective"], {**row["params"], "score": cv_score})
        if self.verbose >= 2:
            params = ", ".join(f"{k}={v:.4g}" for k, v in row["params"].items())
            emit(f"[BilevelSearchCV] start {self.start} iter {info['iteration']:3d}  {params}  "
                 f"CV score {cv_score:.5g}  loss {info['objective']:.5g}  "
                 f"({time.perf_counter() - self.t0:.2f}s)")
        if self._out_of_time():
            return True
        if self.callback is not None:
            return self.callback({"iteration": info["iteration"], "params": dict(row["params"]),
                                  "objective": info["objective"], "score": cv_score,
                                  "time": time.perf_counter() - self.t0})
        return False

    def _first_step(self):
        """The descent's first step: a quarter of an initial-grid cell (an eighth of the box without a grid),
        along the narrowest dimension. L-BFGS-B's own first step on a box is the hypergradient itself, which
        for a validation loss below 1 is a tiny move of ``log C`` that stops the descent on ``ftol``."""
        lo, hi = (np.asarray(b, dtype=float) for b in self.problem.x_bounds)
        return float(np.min(hi - lo)) / (4 * max(self.grid_size, 2))

    def _refine(self):
        """Compass search on the CV score around the best point found (rows with ``start = -2``).

        The descent minimises a smooth surrogate of the score; the score itself
        (accuracy, say) is piecewise constant, so it is searched without
        derivatives: from the best-scoring point, try ``x +- step e_j`` for each
        hyperparameter, move to the best trial that improves the score, else
        halve ``step``; stop after ``_REFINE_PATIENCE`` rounds in a row without
        a better score (the score is flat around the point at a quarter of
        the first step), or at ``refine_budget`` evaluations, each warm
        started from the current point's fold solutions. When the budget ends
        within a round, its trials are taken in order of promise
        (:func:`_promise`): the single evaluation of one hyperparameter probes
        the side whose nearest evaluated point scores higher. The first step
        is a quarter of an initial-grid cell (an eighth of the box without a
        grid).

        Returns
        -------
        int
            The descent whose point it started from (0 when it did not run).
        """
        budget = self.refine_budget
        if not budget or not self.rows:
            return 0
        score = partial(_row_score, metric=self.scoring.refit_metric)
        best = max(self.rows, key=score)
        refine_from, self.start, before = best["start"], -2, score(best)
        lo, hi = (np.asarray(b, dtype=float) for b in self.problem.x_bounds)
        width, n_dims = np.where(hi > lo, hi - lo, 1.0), len(self.dims)
        step = (hi - lo) / (4 * max(self.grid_size, 2))
        seen, stale = [r["x"] for r in self.rows], 0
        while (budget > 0 and stale < _REFINE_PATIENCE and np.all(step > 1e-3 * (hi - lo))
               and not self._out_of_time()):
            trials = [(np.clip(best["x"] + sign * step[j] * np.eye(n_dims)[j], lo, hi), j, sign)
                      for j in range(n_dims) for sign in (1.0, -1.0)]
            # a trial within rounding of an evaluated point (a descent's start one grid step away, say)
            # is that point: not solved, nor listed, twice
            trials = [trial for trial in trials
                      if not any(np.all(np.abs(trial[0] - z) <= _SAME_POINT * width) for z in seen)]
            if len(trials) > budget:  # the budget ends in this round: the most promising trials first
                trials.sort(key=lambda trial: -_promise(*trial, best, self.rows, width, score))
            new = []
            for t, _, _ in trials[:budget]:
                seen.append(t)
                hypergradient.evaluate(self.problem, t[None, :], y0=best["models"], n_jobs=self.n_jobs,
                                       on_evaluation=self._on_evaluation, gradient=False, lower_tol=self.compare_tol)
                new.append(self.rows[-1])
            budget -= len(new)
            winner = max(new, key=score, default=None)
            if winner is not None and score(winner) > score(best):
                best, stale = winner, 0
            else:
                step, stale = step / 2, stale + 1
        self.progress.update(fields={"score": score(best)})
        if self.verbose >= 2:
            emit(f"[BilevelSearchCV] score refinement: {self.refine_budget - budget} evaluations, "
                 f"CV score {before:.5g} -> {score(best):.5g} ({time.perf_counter() - self.t0:.2f}s)")
        return refine_from


def _fold_path(fold, points, y0, x0, tol):
    """``(F, y, seconds)`` of one fold at each of ``points``, along its lower level's ``solve_path``."""
    path = fold.lower.solve_path(points, y0, x0, tol=tol)
    return [(fold.upper.value(x, y), y, seconds) for x, (y, _, seconds) in zip(points, path)]


def _row_score(row, metric):
    """The row's mean CV score of ``metric``, NaN as minus infinity (the refinement's objective)."""
    value = np.mean(row["test"][metric])
    return -np.inf if np.isnan(value) else value


def _promise(trial, axis, sign, best, rows, width, score):
    """Score of the evaluated point nearest to ``trial`` among those on its side of ``best`` along
    ``axis`` (distances in box units); ``best``'s own score where none is.

    Ties keep the order of the trials: upper side, then lower, axis by axis.
    """
    offset = sign * np.array([r["x"][axis] - best["x"][axis] for r in rows])
    side = [r for r, o in zip(rows, offset) if o > 1e-12 * width[axis]]
    if not side:
        return score(best)
    dist = [np.max(np.abs(r["x"] - trial) / width) for r in side]
    return score(side[int(np.argmin(dist))])
