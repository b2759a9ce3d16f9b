"""BilevelSearchCV's ``cv_results_`` and best point, from the rows of the evaluated points."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ._warnings import warn


def unique_points(rows):
    """One row per point: where a point was evaluated twice (an initial-grid point is where a descent
    starts, and the descent solves it again), the later evaluation, solved to the descent's tighter
    tolerance, gives the row its scores, loss and times; the row keeps the earlier one's place and
    ``start`` (an initial-grid point stays one)."""
    last = {row["x"].tobytes(): row for row in rows}
    kept, seen = [], set()
    for row in rows:
        key = row["x"].tobytes()
        if key not in seen:
            seen.add(key)
            kept.append({**last[key], "start": row["start"]})
    return kept


def cv_results(rows, dims, metric_names, n_splits, return_train_score, error_score, fixed=None):
    """GridSearchCV's ``cv_results_`` of the evaluated points, plus ``start``, ``validation_loss`` and
    ``refitted``.

    Parameters
    ----------
    rows : list of dict
        One per evaluated point, in order
        (:meth:`~skbilevel._search_scoring.FoldScoring.score_point`).
    dims : list of Dimension
        The searched hyperparameters (the ``param_*`` columns).
    metric_names : list of str
        The metrics (``['score']`` for one).
    n_splits : int
        The number of folds (the ``split{k}_*`` columns).
    return_train_score : bool
        Whether the rows hold training scores.
    error_score : 'raise' or float
        The score of a row with none for a metric.
    fixed : dict, optional
        Parameters held at one value (a one-value list of ``param_grid``):
        in every row's ``params`` and a ``param_*`` column each.

    Returns
    -------
    dict
        ``params``, ``start``, ``validation_loss``, ``refitted``, ``param_*``, the mean
        and standard deviation of ``fit_time`` and ``score_time``, and per
        metric the split scores, their mean and standard deviation, and the
        test rank.
    """
    fixed = fixed or {}
    res = {"params": [{**fixed, **r["params"]} for r in rows], "start": np.array([r["start"] for r in rows]),
           "validation_loss": np.array([r["loss"] for r in rows]),
           "refitted": np.array([r.get("refitted", False) for r in rows])}
    for name in sorted([d.name for d in dims] + list(fixed)):
        res[f"param_{name}"] = np.ma.MaskedArray([p[name] for p in res["params"]], mask=False)
    for key in ("fit_time", "score_time"):
        times = np.array([r[key] for r in rows])
        res[f"mean_{key}"], res[f"std_{key}"] = times.mean(axis=1), times.std(axis=1)
    parts = ("test", "train") if return_train_score else ("test",)
    for name in metric_names:
        for part in parts:
            # a row scored before a callable scoring showed its metrics (its scorer failed) has none
            missing = np.full(n_splits, np.nan if error_score == "raise" else error_score)
            scores = np.array([r[part].get(name, missing) for r in rows], dtype=float)
            for k in range(n_splits):
                res[f"split{k}_{part}_{name}"] = scores[:, k]
            res[f"mean_{part}_{name}"] = scores.mean(axis=1)
            res[f"std_{part}_{name}"] = scores.std(axis=1)
        res[f"rank_test_{name}"] = _rank(res[f"mean_test_{name}"], name)
    return res


def _rank(mean, name):
    """GridSearchCV's ranking: best first, ties share the lowest rank, NaN scores last (with a warning)."""
    bad = ~np.isfinite(mean)
    if bad.any():
        arbitrary = " (all of them: best_index_ is then the first point)" if bad.all() else ""
        warn(f"One or more of the test scores are non-finite: {int(bad.sum())} of the {mean.size} "
             f"evaluated points have no mean {name!r} score{arbitrary}.", UserWarning)
    filled = np.where(np.isnan(mean), -np.inf, mean)
    return rankdata(-filled, method="min").astype(np.int32)


@dataclass(frozen=True)
class BestPoint:
    """The best row of ``cv_results_``: its index, its mean test score (None for a callable ``refit``),
    its parameters and the start whose descent ``history_`` is."""

    index: int
    score: float | None
    params: dict
    start: int


def best_point(results, refit, multimetric, metric_names, refine_from):
    """GridSearchCV's choice of the best row, or None with several metrics and ``refit=False``.

    Parameters
    ----------
    results : dict
        The ``cv_results_`` (:func:`cv_results`).
    refit : bool, str or callable
        BilevelSearchCV's ``refit``: a callable returns the index itself.
    multimetric : bool
        Whether there are several metrics.
    metric_names : list of str
        The metrics; the first ranks the rows unless ``refit`` names one.
    refine_from : int
        The start whose best point the score refinement refined.

    Returns
    -------
    BestPoint or None

    Raises
    ------
    TypeError, IndexError
        For an index from a callable ``refit`` that is not an integer, or
        out of range (GridSearchCV's checks).
    """
    if refit is False and multimetric:
        return None
    score = None
    if callable(refit):
        index = refit(results)
        n_rows = len(results["params"])
        # GridSearchCV's checks: a negative or fractional index would silently pick another row
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            raise TypeError(f"best_index_ returned by the refit callable is not an integer: {index!r}")
        if not 0 <= index < n_rows:
            raise IndexError(f"best_index_ returned by the refit callable, {index}, is out of range "
                             f"[0, {n_rows})")
        index = int(index)
    else:
        name = refit if isinstance(refit, str) and multimetric else metric_names[0]
        index = int(np.argmin(results[f"rank_test_{name}"]))
        score = float(results[f"mean_test_{name}"][index])
    # a point of the initial grid (start -1) is credited to the first descent, which starts there;
    # one of the score refinement (start -2) to the descent it refined
    start = int(results["start"][index])
    start = refine_from if start == -2 else start
    return BestPoint(index, score, dict(results["params"][index]), max(start, 0))


#: How close to an edge of its range, as a fraction of the range in search coordinates, a best value counts
#: as lying on it (the descent stops within its tolerance of a bound it presses against).
EDGE_FRACTION = 1e-3


def warn_on_range_edges(best_params, dims) -> None:
    """Warn for every hyperparameter whose best value lies on an edge of its searched range.

    A best value on an edge is the best of the range, not necessarily a
    minimiser of the validation loss: the optimum may lie beyond it, and only
    a wider range can tell (a frequent request to scikit-learn's grid
    searches, scikit-learn issue #23031).
    """
    for d in dims:
        x, margin = d.to_x(best_params[d.name]), EDGE_FRACTION * (d.high - d.low)
        side = "lower" if x <= d.low + margin else "upper" if x >= d.high - margin else None
        if side is not None:
            low, high = d.to_value(d.low), d.to_value(d.high)
            warn(f"BilevelSearchCV: the best {d.name} = {d.to_value(x):.4g} lies on the {side} edge of its range "
                 f"({low:.4g}, {high:.4g}); the optimum may lie beyond it: widen the range to find out.",
                 UserWarning)
