"""``verbose``: 0 silent, 1 a progress bar (log lines without tqdm), 2 also the method's own lines;
warnings point at the user's line."""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge

from skbilevel import BilevelSearchCV, BilevelSVC, HyperCleaningClassifier
from skbilevel import _progress

pytest.importorskip("tqdm")

X, y = make_classification(n_samples=80, n_features=5, n_informative=3, random_state=0)
X_val, y_val = X[60:], y[60:]
X, y = X[:60], y[:60]


def _estimators(verbose):
    return {
        # without the safeguard, max_iter is a tolerance not reached (a warning), not a budget
        "BilevelSVC (hypergradient)": BilevelSVC(verbose=verbose, max_iter=5, safeguard_cv=None),
        "HyperCleaningClassifier (hypergradient)": HyperCleaningClassifier(verbose=verbose, max_iter=5),
        "BilevelSearchCV": BilevelSearchCV(Ridge(), {"alpha": (1e-3, 1e3)}, cv=3, max_iter=5, verbose=verbose),
    }


def _fit(estimator):
    with warnings.catch_warnings():  # max_iter=5 stops before convergence: expected here
        warnings.simplefilter("ignore", ConvergenceWarning)
        if isinstance(estimator, BilevelSearchCV):
            return estimator.fit(X, y.astype(float))
        return estimator.fit(X, y, X_val=X_val, y_val=y_val)


@pytest.mark.parametrize("name", list(_estimators(0)))
def test_verbose_0_is_silent(name, capsys):
    _fit(_estimators(0)[name])
    out, err = capsys.readouterr()
    assert out == "" and name not in err


@pytest.mark.parametrize("name", list(_estimators(0)))
def test_verbose_1_draws_a_bar_closed_at_the_iterations_run(name, capsys):
    est = _fit(_estimators(1)[name])
    out, err = capsys.readouterr()
    assert out == ""  # the method's own lines wait for verbose=2
    last = err.strip().split("\r")[-1]
    assert last.startswith(name)
    done, total = map(int, re.search(r"(\d+)/(\d+)", last).groups())
    assert done == total >= 1
    if not isinstance(est, BilevelSearchCV):
        assert done == est.n_iter_


@pytest.mark.parametrize("name", list(_estimators(0)))
def test_verbose_1_without_tqdm_logs_one_line_per_outer_iteration(name, capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_tqdm", lambda: None)
    est = _fit(_estimators(1)[name])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert all(line.startswith(f"[{name}] iteration ") for line in lines)
    assert [int(re.search(r"iteration (\d+)", line).group(1)) for line in lines] == list(range(1, len(lines) + 1))
    if isinstance(est, BilevelSearchCV):
        assert "score" in lines[-1]
    else:
        assert len(lines) == est.n_iter_ and "objective" in lines[-1]
    assert name not in err


@pytest.mark.parametrize("name", list(_estimators(0)))
def test_verbose_2_adds_the_methods_lines(name, capsys):
    est = _fit(_estimators(2)[name])
    out, err = capsys.readouterr()
    detail = "[BilevelSearchCV] start" if isinstance(est, BilevelSearchCV) else "[hypergradient] iter"
    n_detail = sum(line.startswith(detail) for line in out.splitlines())
    if isinstance(est, BilevelSearchCV):
        assert n_detail == sum(len(h["objective"]) for h in est._histories)
    else:
        assert n_detail == est.n_iter_
    assert err.strip().split("\r")[-1].startswith(name)


def test_one_vs_rest_bars_name_the_class(capsys):
    X3 = np.vstack([X, X[:20] + 3.0])
    y3 = np.concatenate([y, np.full(20, 2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BilevelSVC(verbose=1, max_iter=3, random_state=0).fit(X3, y3)
    err = capsys.readouterr().err
    for k in range(3):
        assert f"BilevelSVC (hypergradient, class {k} vs rest)" in err


def test_user_callback_still_stops_the_run():
    seen = []
    # per-sample weights: a run of many iterations, which only the callback cuts to two
    est = HyperCleaningClassifier(verbose=1, max_iter=20, weight_model="per-sample",
                                  callback=lambda info: seen.append(info) or len(seen) == 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop asked for is not a failure to converge
        est.fit(X, y, X_val=X_val, y_val=y_val)
    assert len(seen) == 2 and est.n_iter_ == 2


@pytest.mark.parametrize("name", list(_estimators(0)))
def test_convergence_warning_points_at_the_users_line(name):
    est = _estimators(0)[name]
    with pytest.warns(ConvergenceWarning) as record:
        if isinstance(est, BilevelSearchCV):
            est.set_params(max_iter=1).fit(X, y.astype(float))
        else:
            est.set_params(max_iter=1).fit(X, y, X_val=X_val, y_val=y_val)
    assert {w.filename for w in record if w.category is ConvergenceWarning} == {__file__}


def test_warnings_inside_cross_validation_point_at_the_users_line():
    """scikit-learn's cross_val_score runs the fits through joblib, whose frames are skipped too."""
    from sklearn.model_selection import cross_val_score
    with pytest.warns(ConvergenceWarning) as record:
        cross_val_score(BilevelSVC(max_iter=1, safeguard_cv=None), X, y, cv=2)
    assert {w.filename for w in record if w.category is ConvergenceWarning} == {__file__}
