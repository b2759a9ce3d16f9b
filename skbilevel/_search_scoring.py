"""The fold scores of BilevelSearchCV: every fold's solution scored at every evaluated point."""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring

from ._fold_model import NoProbabilities, fast_metric, fold_model, score_fold
from ._search_routing import split_pipeline
from ._warnings import warn

#: The search's fold solutions and the scikit-learn estimator agree when their mean CV scores differ by at
#: most this, relative to ``max(1, |score|)``: one held-out sample of a small fold flipping at a near-tie of
#: the decision values stays below it; a solver stopped far from the optimum does not.
HONEST_RTOL = 1e-2

#: Points refitted with the scikit-learn estimator per round, best first, until the best row is refitted:
#: usually one round, one fit per fold (as many as the refit); a fast search of a linear model takes
#: little more than that many fits per fold in all.
N_CANDIDATES = 1


class FoldScoring:
    """Scores each fold's lower-level solution with ``scoring``, as GridSearchCV scores its fits.

    Whether the scoring is multi-metric shows at the start for a list, tuple,
    set or dict of metrics, and at the first score for a callable returning
    a dict of scores (as in GridSearchCV); :attr:`multimetric` and
    :attr:`metric_names` say what is known so far, and are final once every
    point is scored.

    Parameters
    ----------
    estimator : estimator or Pipeline
        The searched estimator (``check_scoring``'s and the messages').
    final_name : str
        The class name of its last step, for the message of a probability
        metric on a model without probabilities.
    scoring, refit, error_score, return_train_score
        BilevelSearchCV's parameters of these names.

    Raises
    ------
    ValueError
        With several metrics, when ``refit`` is neither False, a callable nor
        one of their names (at construction, or at the first score of a
        callable returning a dict).
    """

    def __init__(self, estimator, final_name, scoring, refit, error_score, return_train_score):
        self.estimator, self.final_name, self.scoring = estimator, final_name, scoring
        self.refit, self.error_score, self.return_train_score = refit, error_score, return_train_score
        self.multimetric = isinstance(scoring, (list, tuple, set, dict))
        self.metric_names = ["score"]
        if self.multimetric:
            self._set_metric_names(sorted(scoring))
        self.scorer = check_scoring(estimator, scoring=scoring)
        self._fast_metric = fast_metric(scoring)

    def _set_metric_names(self, names):
        if self.refit is not False and not callable(self.refit) and self.refit not in names:
            raise ValueError(
                f"For multi-metric scoring, refit must be False, a callable or one of the scorer names "
                f"{names}; got refit={self.refit!r}"
            )
        self.metric_names = names

    @property
    def refit_metric(self):
        """The metric reported by ``verbose`` and ``callback``: the refit one, else the first."""
        if not self.multimetric:
            return "score"
        return self.refit if isinstance(self.refit, str) else self.metric_names[0]

    def public_scorer(self):
        """BilevelSearchCV's ``scorer_``: a dict of scorers for several named metrics, else the scorer."""
        if self.multimetric and not callable(self.scoring):
            named = self.scoring if isinstance(self.scoring, dict) else {name: name for name in self.scoring}
            return {name: check_scoring(self.estimator, scoring=s) for name, s in named.items()}
        return self.scorer

    def score_point(self, info, problem, data, dims, start):
        """The row of one evaluated point: its parameters, loss, fold solutions, fit and score times, and
        the scores of every fold's solution on its test (and training) part.

        ``info`` is what :func:`skbilevel.methods.hypergradient.solve` hands
        ``on_evaluation``; ``data`` is :func:`~skbilevel._search_folds.build_folds`'s.
        """
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
                for name, value in self._fold_score(model, Xp, yp, kw).items():
                    row[part].setdefault(name, np.full(len(data), np.nan))[k] = value
            row["score_time"][k] = time.perf_counter() - t
        return row

    def refit_point(self, row, estimator, problem, data):
        """Score ``row``'s point as ``cross_val_score`` does: the scikit-learn estimator fitted at its
        parameters on every fold's training part, scored on its test (and training) part.

        Replaces ``row``'s scores in place, sets ``row['refitted']`` and returns the mean score of the
        refit metric before and after, and the ConvergenceWarnings of the fits.
        """
        _, final, prefix = split_pipeline(estimator)
        model = clone(final).set_params(**{name[len(prefix):]: v for name, v in row["params"].items()})
        before = float(np.mean(row["test"][self.refit_metric]))
        caught, row["test"], row["train"] = [], {}, {}
        for k, (fold, (X_tr, y_tr, X_te, y_te, (kw_tr, kw_te))) in enumerate(zip(problem.folds, data)):
            weight = fold.lower.sample_weight
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always", ConvergenceWarning)
                fitted = self._safe_fit(model, X_tr, y_tr, weight)
            caught += [w for w in record if issubclass(w.category, ConvergenceWarning)]
            for part, (Xp, yp, kw) in (("test", (X_te, y_te, kw_te)), ("train", (X_tr, y_tr, kw_tr))):
                if part == "train" and not self.return_train_score:
                    continue
                scores = ({name: self.error_score for name in self.metric_names} if fitted is None
                          else self._safe_score(fitted, Xp, yp, kw))
                for name, value in scores.items():
                    row[part].setdefault(name, np.full(len(data), np.nan))[k] = value
        row["refitted"] = True
        return before, float(np.mean(row["test"][self.refit_metric])), caught

    def _safe_fit(self, model, X, y, weight):
        """``model`` fitted on a fold, or None when the fit fails and ``error_score`` is a number
        (GridSearchCV's handling of a failed fit)."""
        try:
            return clone(model).fit(X, y, **({} if weight is None else {"sample_weight": weight}))
        except Exception as exc:
            if self.error_score == "raise":
                raise
            warn(f"Fitting the estimator on a fold failed; its score is set to {self.error_score}. "
                 f"Details: {exc!r}", UserWarning)
            return None

    def _fold_score(self, model, X, y, params):
        """The scores of a fold model: a common metric computed directly (:func:`score_fold`), else
        :meth:`_safe_score`."""
        if self._fast_metric is not None:
            value = score_fold(model, self._fast_metric, X, y, params)
            if value is not None:
                return {"score": value}
        return self._safe_score(model, X, y, params)

    def _safe_score(self, model, X, y, params):
        """The scores of ``model`` on ``(X, y)`` by metric name; ``params``: the scorer's routed metadata."""
        try:
            scores = self.scorer(model, X, y, **params)
        except NoProbabilities as exc:
            # every fold at every point would fail alike: not a scoring failure for error_score to absorb
            raise ValueError(
                f"{exc} BilevelSearchCV scores each fold's solution of the training problem; "
                f"{self.final_name}'s probabilities (if any) come from a "
                "separate calibration that is not part of it. Use a metric of the decision function "
                "(accuracy, roc_auc, ...) or LogisticRegression for probability metrics."
            ) from exc
        except Exception as exc:
            if self.error_score == "raise":
                raise
            warn(f"Scoring failed; the score on this split is set to {self.error_score}. "
                 f"Details: {exc!r}", UserWarning)
            return {name: self.error_score for name in self.metric_names}
        if not isinstance(scores, dict):
            return {"score": scores}
        if not self.multimetric:  # the first score of a callable returning several
            self.multimetric = True
            self._set_metric_names(sorted(scores))
        return scores


def _mean(row, metric):
    value = float(np.mean(row["test"][metric]))
    return -np.inf if np.isnan(value) else value


def honest_scores(rows, scoring, estimator, problem, data):
    """Make the best row's scores those of the estimator that ``refit`` returns.

    The search scores its own fold solutions (solved to a tight tolerance,
    SVC's polished in double precision); the scikit-learn estimator stops at
    its own ``tol`` / ``max_iter`` and libsvm keeps its kernel in single
    precision, which on badly scaled features can make a different model.
    The best rows by the refit metric are refitted with the estimator on
    every fold (:meth:`FoldScoring.refit_point`, ``N_CANDIDATES`` a round)
    until the best row is one of them. When a refitted point's score moves
    by more than ``HONEST_RTOL``, the search's scores are not the
    estimator's: every row is refitted, and a UserWarning says why.

    Returns the number of rows refitted.
    """
    metric = scoring.refit_metric
    for row in rows:
        row.setdefault("refitted", False)
    moved, caught = [], []
    while rows:
        best = max(rows, key=lambda row: _mean(row, metric))
        todo = [row for row in rows if not row["refitted"]]
        if (best["refitted"] and not moved) or not todo:
            break
        todo = todo if moved else sorted(todo, key=lambda row: -_mean(row, metric))[:N_CANDIDATES]
        for row in todo:
            before, after, warned = scoring.refit_point(row, estimator, problem, data)
            caught += warned
            if not np.isclose(before, after, rtol=0, atol=HONEST_RTOL * max(1.0, abs(before)), equal_nan=True):
                moved.append((row["params"], before, after))
    if moved:
        _warn_moved(moved, caught, len(rows))
    return sum(row["refitted"] for row in rows)


def _warn_moved(moved, caught, n_rows):
    params, before, after = moved[0]
    point = ", ".join(f"{name}={value:.4g}" for name, value in params.items())
    why = ("the estimator stopped before its tolerance on some folds (ConvergenceWarning: "
           f"{str(caught[0].message).splitlines()[0]}); raise its max_iter or scale the features" if caught else
           "its solver stops at its own tol, fits its intercept or keeps its kernel (libsvm: single precision) "
           "otherwise; on badly scaled features that makes a different model: scale them (StandardScaler in "
           "a Pipeline) or tighten its tol")
    warn(f"BilevelSearchCV: at {point} the scikit-learn estimator scores {after:.4g} in cross-validation where "
         f"the search's fold solutions score {before:.4g} ({len(moved)} point(s) differ by more than "
         f"{HONEST_RTOL:g}): {why}. cv_results_ and best_score_ report the estimator's scores, refitted on "
         f"every fold at all {n_rows} evaluated points.", UserWarning)
