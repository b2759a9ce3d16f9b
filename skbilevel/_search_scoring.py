"""The fold scores of BilevelSearchCV: every fold's solution scored at every evaluated point."""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import check_scoring

from ._fold_model import NoProbabilities, fold_model
from ._warnings import warn


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
        return check_scoring(self.estimator, scoring=self.scoring)

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
                for name, value in self._safe_score(model, Xp, yp, kw).items():
                    row[part].setdefault(name, np.full(len(data), np.nan))[k] = value
            row["score_time"][k] = time.perf_counter() - t
        return row

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
