"""BilevelSearchCV: the GridSearchCV contract, the CV hypergradient and the search against a dense grid."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import (ElasticNet, Lasso, LogisticRegression, LogisticRegressionCV, MultiTaskElasticNet,
                                  MultiTaskLasso, Ridge)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from conftest import fd_gradient
from skbilevel import BilevelSearchCV, BilevelSVC, HyperCleaningClassifier
from skbilevel._search_folds import build_folds
from skbilevel.methods.hypergradient import _oracle
from skbilevel.problems.cross_validation import CrossValidationProblem


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[::2], y[::2]  # 285 samples keep the module fast


def _cv_problem(search, X, y):
    from skbilevel._search_space import parse_param_space
    dims = parse_param_space(search.param_space)
    route = {"split": {}, "pre": {}, "weight": None, "score": {}}
    problem, _ = build_folds(search.estimator, search.cv, search.validation_loss, X, y, route, dims)
    return problem


def _cv_loss(problem, x):
    from joblib import Parallel
    with Parallel(n_jobs=1) as parallel:
        fun, _ = _oracle(problem, parallel, 1e-12, None, None)
        return fun(np.asarray(x, float))


# -- the cross-validation hypergradient -------------------------------------------------------
@pytest.mark.parametrize("estimator, space, x", [
    (Ridge(), {"alpha": (1e-3, 1e3)}, [0.5]),
    (KernelRidge(kernel="rbf"), {"alpha": (1e-3, 1e1), "gamma": (1e-3, 1e0)}, [-2.0, -3.0]),
    (make_pipeline(StandardScaler(), Lasso()), {"lasso__alpha": (1e-3, 1e1)}, [-1.0]),
    (make_pipeline(StandardScaler(), ElasticNet()),
     {"elasticnet__alpha": (1e-3, 1e1), "elasticnet__l1_ratio": (0.1, 0.9, "linear")}, [-1.0, 0.5]),
])
def test_cv_hypergradient_matches_finite_differences_regressors(diabetes, estimator, space, x):
    X, y = diabetes
    X, y = X[:200], y[:200]
    problem = _cv_problem(BilevelSearchCV(estimator, space, cv=KFold(4, shuffle=True, random_state=0)), X, y)
    assert isinstance(problem, CrossValidationProblem) and len(problem.folds) == 4
    _, grad = _cv_loss(problem, x)
    fd = fd_gradient(lambda s: _cv_loss(problem, s)[0], x, h=1e-5)
    np.testing.assert_allclose(grad, fd, rtol=1e-4)


@pytest.mark.parametrize("estimator, space, x", [
    (make_pipeline(StandardScaler(), LogisticRegression()), {"logisticregression__C": (1e-3, 1e3)}, [0.0]),
    (make_pipeline(StandardScaler(), LinearSVC()), {"linearsvc__C": (1e-3, 1e3)}, [-2.0]),
    (make_pipeline(StandardScaler(), SVC()), {"svc__C": (1e-2, 1e3), "svc__gamma": (1e-4, 1.0)}, [1.0, -4.0]),
])
def test_cv_hypergradient_matches_finite_differences_classifiers(cancer, estimator, space, x):
    X, y = cancer
    problem = _cv_problem(BilevelSearchCV(estimator, space, cv=StratifiedKFold(3, shuffle=True, random_state=0)),
                          X, y)
    _, grad = _cv_loss(problem, x)
    fd = fd_gradient(lambda s: _cv_loss(problem, s)[0], x, h=1e-5)
    np.testing.assert_allclose(grad, fd, rtol=1e-4)


# -- the search against a dense grid ------------------------------------------------------------
def test_ridge_matches_dense_grid_with_fewer_fits(diabetes):
    X, y = diabetes
    cv = KFold(5, shuffle=True, random_state=0)
    search = BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}, cv=cv).fit(X, y)
    grid = GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 2, 200)}, cv=cv).fit(X, y)
    assert search.best_score_ >= grid.best_score_ - 1e-4
    assert len(search.cv_results_["params"]) < 40


def test_svc_two_hyperparameters_matches_grid(cancer):
    X, y = cancer
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    pipe = make_pipeline(StandardScaler(), SVC())
    space = {"svc__C": (1e-2, 1e3), "svc__gamma": (1e-4, 1.0)}
    search = BilevelSearchCV(pipe, space, cv=cv).fit(X, y)
    grid = GridSearchCV(pipe, {"svc__C": np.logspace(-2, 3, 12), "svc__gamma": np.logspace(-4, 0, 12)},
                        cv=cv).fit(X, y)
    assert search.best_score_ >= grid.best_score_ - 0.01
    assert set(search.best_params_) == set(space)


# -- the GridSearchCV contract -----------------------------------------------------------------
def test_cv_results_has_grid_search_keys(cancer):
    X, y = cancer
    space = {"C": (1e-2, 1e2)}
    search = BilevelSearchCV(LogisticRegression(), space, cv=3, return_train_score=True, max_iter=5).fit(X, y)
    grid = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3, return_train_score=True).fit(X, y)
    assert set(grid.cv_results_) <= set(search.cv_results_)
    n = len(search.cv_results_["params"])
    for key, value in search.cv_results_.items():
        assert len(value) == n, key
    assert search.cv_results_["rank_test_score"][search.best_index_] == 1
    assert search.best_score_ == search.cv_results_["mean_test_score"].max()
    assert search.n_splits_ == 3 and search.refit_time_ > 0
    assert search.best_estimator_.C == search.best_params_["C"]
    assert search.score(X, y) == search.best_estimator_.score(X, y)
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))
    np.testing.assert_array_equal(search.classes_, [0, 1])


def test_fold_scores_equal_scikit_learn_fits(cancer):
    """The score of a row is the score of the estimator fitted on each fold at the row's params."""
    X, y = cancer
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = BilevelSearchCV(pipe, {"logisticregression__C": (1e-2, 1e2)}, cv=cv, scoring="neg_log_loss",
                             max_iter=4, n_starts=2).fit(X, y)
    res = search.cv_results_
    # a row not refitted with the estimator holds its folds' solutions, solved to 1e-6 in the descent;
    # scikit-learn's default tol=1e-4 stops short at large C
    row = np.flatnonzero((res["start"] >= 0) & ~res["refitted"])[-1]
    params = res["params"][row]
    exact = clone(pipe).set_params(**params, logisticregression__tol=1e-12, logisticregression__max_iter=10000)
    ref = cross_val_score(exact, X, y, cv=cv, scoring="neg_log_loss")
    got = [res[f"split{k}_test_score"][row] for k in range(3)]
    np.testing.assert_allclose(got, ref, rtol=3e-5)  # a log-loss of folds solved to a relative 1e-6
    # the best row is refitted: its scores are those of the estimator refit returns, default tol and all
    best = search.best_index_
    assert res["refitted"][best]
    ref = cross_val_score(clone(pipe).set_params(**res["params"][best]), X, y, cv=cv, scoring="neg_log_loss")
    np.testing.assert_allclose([res[f"split{k}_test_score"][best] for k in range(3)], ref, rtol=1e-12)


def test_fold_models_default_score_is_scikit_learns(cancer, diabetes):
    """The fold models compute accuracy and R^2 without scikit-learn's input checks; the values are its own."""
    from sklearn.metrics import accuracy_score, r2_score
    from skbilevel._fold_model import fold_model
    X, y = cancer
    labels = np.array(["benign", "malignant"])[y]
    search = BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=3, max_iter=1)
    problem = _cv_problem(search, X, labels)
    fold = problem.folds[0]
    x = np.zeros(1)
    model = fold_model(fold.lower, x, fold.lower.solve(x)[0])
    assert model.score(X, labels) == accuracy_score(labels, model.predict(X))
    w = np.linspace(0.5, 2.0, len(y))
    assert model.score(X, labels, sample_weight=w) == accuracy_score(labels, model.predict(X), sample_weight=w)
    X, y = diabetes
    fold = _cv_problem(BilevelSearchCV(Ridge(), {"alpha": (1e-2, 1e2)}, cv=3), X, y).folds[0]
    model = fold_model(fold.lower, x, fold.lower.solve(x)[0])
    assert model.score(X, y) == pytest.approx(r2_score(y, model.predict(X)), rel=1e-12)
    same = np.repeat(X[:1], 5, axis=0)  # r2_score's convention for a constant target: 1 if predicted exactly
    for target in (model.predict(same), np.full(5, 3.0)):
        assert model.score(same, target) == r2_score(target, model.predict(same)) in (0.0, 1.0)


@pytest.mark.parametrize("name", ["neg_mean_squared_error", "neg_root_mean_squared_error", "neg_mean_absolute_error",
                                  "r2", "accuracy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fold_models_common_metrics_are_scikit_learns(cancer, diabetes, name, weighted):
    """The scoring strings computed from a fold model's predictions (no scorer) equal scikit-learn's scorers."""
    from sklearn.metrics import get_scorer
    from skbilevel._fold_model import fast_metric, fold_model, score_fold
    classifier = name == "accuracy"
    X, y = cancer if classifier else diabetes
    if classifier:
        y = np.array(["benign", "malignant"])[y]
    estimator = LogisticRegression() if classifier else Ridge()
    fold = _cv_problem(BilevelSearchCV(estimator, {"C" if classifier else "alpha": (1e-2, 1e2)}, cv=3), X,
                       y).folds[0]
    x = np.zeros(1)
    model = fold_model(fold.lower, x, fold.lower.solve(x)[0])
    params = {"sample_weight": np.linspace(0.5, 2.0, len(y))} if weighted else {}
    expected = get_scorer(name)(model, X, y, **params)
    assert score_fold(model, fast_metric(name), X, y, params) == pytest.approx(expected, rel=1e-12)
    assert score_fold(model, fast_metric(name), X, y, {"groups": y}) is None  # other metadata: the scorer's


def test_pipeline_nested_cv_clone_pickle(cancer):
    X, y = cancer
    search = BilevelSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": (1e-1, 1e2)}, cv=3, max_iter=5)
    scores = cross_val_score(search, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.85)
    fitted = clone(search).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert restored.best_params_ == fitted.best_params_


def test_refit_false_and_multimetric(cancer):
    X, y = cancer
    space = {"C": (1e-2, 1e2)}
    plain = BilevelSearchCV(LogisticRegression(), space, cv=3, refit=False, max_iter=5).fit(X, y)
    assert not hasattr(plain, "best_estimator_") and hasattr(plain, "best_params_")
    with pytest.raises(AttributeError, match="refit=False"):
        plain.predict(X)
    multi = BilevelSearchCV(LogisticRegression(), space, cv=3, scoring=["accuracy", "roc_auc"],
                            refit="roc_auc", max_iter=5).fit(X, y)
    assert multi.multimetric_ and set(multi.scorer_) == {"accuracy", "roc_auc"}
    assert multi.best_score_ == multi.cv_results_["mean_test_roc_auc"].max()
    assert "rank_test_accuracy" in multi.cv_results_
    assert multi.score(X, y) == multi.scorer_["roc_auc"](multi.best_estimator_, X, y)
    with pytest.raises(ValueError, match="refit must be False"):
        BilevelSearchCV(LogisticRegression(), space, scoring=["accuracy", "roc_auc"]).fit(X, y)
    pick_last = BilevelSearchCV(LogisticRegression(), space, cv=3, refit=lambda r: len(r["params"]) - 1,
                                max_iter=3).fit(X, y)
    assert pick_last.best_index_ == len(pick_last.cv_results_["params"]) - 1
    # GridSearchCV's checks of the callable's answer: no silent wrap-around or truncation
    for bad, error in ((-1, IndexError), (10**6, IndexError), (1.7, TypeError), ("1", TypeError), (None, TypeError)):
        with pytest.raises(error, match="best_index_ returned by the refit callable"):
            BilevelSearchCV(LogisticRegression(), space, cv=3, refit=lambda r, bad=bad: bad, max_iter=1).fit(X, y)


def test_scoring_forms_accepted_by_grid_search(cancer):
    """A metric name as refit of a single metric, and a callable returning a dict of metrics."""
    X, y = cancer
    space = {"C": (1e-2, 1e2)}
    named = BilevelSearchCV(LogisticRegression(), space, cv=3, scoring="accuracy", refit="accuracy",
                            max_iter=3).fit(X, y)
    assert not named.multimetric_ and named.best_score_ == named.cv_results_["mean_test_score"].max()

    def two_metrics(estimator, X, y):
        correct = estimator.predict(X) == y
        return {"acc": correct.mean(), "errors": -float((~correct).sum())}
    multi = BilevelSearchCV(LogisticRegression(), space, cv=3, scoring=two_metrics, refit="acc",
                            max_iter=3).fit(X, y)
    assert multi.multimetric_ and {"mean_test_acc", "rank_test_errors"} <= set(multi.cv_results_)
    assert multi.best_score_ == multi.cv_results_["mean_test_acc"].max()
    assert multi.score(X, y) == two_metrics(multi.best_estimator_, X, y)["acc"]
    with pytest.raises(ValueError, match="refit must be False"):
        BilevelSearchCV(LogisticRegression(), space, cv=3, scoring=two_metrics, max_iter=3).fit(X, y)
    calls = []

    def fails_first(estimator, X, y):  # the metrics show only after a failed first score
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first call")
        return two_metrics(estimator, X, y)
    with pytest.warns(UserWarning, match="Scoring failed"):
        late = BilevelSearchCV(LogisticRegression(), space, cv=3, scoring=fails_first, refit="acc",
                               max_iter=2).fit(X, y)
    # the failed fold's score is replaced where the point is scored again (by the descent, which starts at
    # that grid point, or by the estimator's refit of the best points); the metrics are known by then
    assert late.multimetric_ and late.cv_results_["split1_test_acc"][0] > 0.5 and late.best_score_ > 0.5


def test_non_finite_scores_are_warned_about(cancer):
    X, y = cancer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=3, max_iter=2,
                                 scoring=lambda e, X, y: 1 / 0).fit(X, y)
    n = len(search.cv_results_["params"])
    assert any("Scoring failed" in str(w.message) for w in caught)
    assert any(f"non-finite: {n} of the {n} evaluated points" in str(w.message)
               and "best_index_ is then the first" in str(w.message) for w in caught)


def test_feature_names_are_those_of_the_refit_estimator(cancer):
    pd = pytest.importorskip("pandas")
    X, y = cancer
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    search = BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=3, max_iter=2).fit(df, y)
    np.testing.assert_array_equal(search.feature_names_in_, df.columns)


def test_box_edges_are_values_the_estimator_accepts(cancer):
    """expon's support starts at C = 0, which LogisticRegression refuses: the box starts at its 1e-3 quantile;
    an invalid edge the user gave is an error naming the estimator's rule."""
    from scipy.stats import expon
    X, y = cancer
    search = BilevelSearchCV(LogisticRegression(), {"C": expon(scale=0.1)}, cv=3, max_iter=5).fit(X, y)
    C = np.asarray(search.cv_results_["param_C"], dtype=float)
    assert C.min() >= expon(scale=0.1).ppf(1e-3) * (1 - 1e-9)
    with pytest.raises(ValueError, match=r"param_space\['C'\]: the low end of the range, 0, is not a valid value"):
        BilevelSearchCV(LogisticRegression(), {"C": (0.0, 1.0, "linear")}, cv=3).fit(X, y)


def test_a_search_ending_on_an_edge_reports_the_users_number(cancer):
    """exp(log(1e-3)) is not 1e-3: a best point on the box's edge is reported as the user wrote it."""
    X, y = cancer
    search = BilevelSearchCV(LogisticRegression(), {"C": (1e-4, 1e-3)}, cv=3, max_iter=5,
                             scoring="neg_log_loss").fit(X, y)
    assert search.best_params_ == {"C": 1e-3}  # more C is better here: the descent ends on the upper edge
    from skbilevel._search_space import parse_param_space
    dim = parse_param_space({"C": (0.1, 10.0)})[0]
    assert (dim.to_value(dim.low), dim.to_value(dim.high)) == (0.1, 10.0)
    assert np.exp(dim.low) != 0.1  # what the edge would be without the kept value


def test_distributions_starts_and_random_state(diabetes, monkeypatch):
    X, y = diabetes
    # the raw rows: the descents' first rows repeat their starting grid points (merged in cv_results_)
    monkeypatch.setattr("skbilevel.search.unique_points", list)
    space = {"alpha": loguniform(1e-3, 1e3)}
    a = BilevelSearchCV(Ridge(), space, n_starts=3, random_state=0).fit(X, y)
    b = BilevelSearchCV(Ridge(), space, n_starts=3, random_state=0).fit(X, y)
    assert set(a.cv_results_["start"]) == {-1, 0, 1, 2, -2}  # grid, three descents, refinement
    np.testing.assert_array_equal(a.cv_results_["param_alpha"], b.cv_results_["param_alpha"])
    assert np.all((a.cv_results_["param_alpha"] >= 1e-3) & (a.cv_results_["param_alpha"] <= 1e3))
    # the initial grid: 5 quantiles of the distribution, scanned from the strongest penalty down, and the
    # descents start from its best points
    grid = a.cv_results_["param_alpha"][a.cv_results_["start"] == -1]
    np.testing.assert_allclose(grid, loguniform(1e-3, 1e3).ppf([0.9, 0.7, 0.5, 0.3, 0.1]))
    first = [a.cv_results_["param_alpha"][a.cv_results_["start"] == s][0] for s in (0, 1, 2)]
    loss = a.cv_results_["validation_loss"][a.cv_results_["start"] == -1]
    np.testing.assert_allclose(sorted(first), sorted(grid[np.argsort(loss)[:3]]))
    # without the grid: the middle of the box, then random draws
    c = BilevelSearchCV(Ridge(), space, n_starts=2, initial_grid=0, random_state=0).fit(X, y)
    assert set(c.cv_results_["start"]) == {0, 1, -2}
    np.testing.assert_allclose(c.cv_results_["param_alpha"][0], 1.0)


def test_descent_does_not_stop_after_a_step_as_short_as_the_hypergradient():
    """On a box L-BFGS-B's first step is x0 - grad; for a log-loss of 0.5 with |grad| ~ 1e-2 that lowered F
    by less than ftol and ended the descent at once, 0.014 below a fine grid's neg_log_loss."""
    X, y = make_classification(300, 30, n_informative=4, flip_y=0.05, class_sep=0.8, random_state=5)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    estimator = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-8, max_iter=10000))
    search = BilevelSearchCV(estimator, {"logisticregression__C": (1e-4, 1e4)}, cv=cv, scoring="neg_log_loss",
                             refine=0).fit(X, y)
    grid = GridSearchCV(estimator, {"logisticregression__C": np.logspace(-4, 4, 81)}, cv=cv,
                        scoring="neg_log_loss").fit(X, y)
    assert search.best_score_ >= grid.best_score_ - 2e-4
    descent = search.cv_results_["start"] == 0
    assert descent.sum() >= 4 and search.history_["complementarity"][-1] <= search.tol


def test_initial_grid_then_descent(cancer, monkeypatch):
    """A 3 x 3 grid is scanned first; the descent starts at its best point and improves on it."""
    X, y = cancer
    # the raw rows: the descent's first row repeats its starting grid point (merged in cv_results_)
    monkeypatch.setattr("skbilevel.search.unique_points", list)
    pipe = make_pipeline(StandardScaler(), SVC())
    space = {"svc__C": (1e-2, 1e3), "svc__gamma": (1e-5, 1e1)}
    search = BilevelSearchCV(pipe, space, cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(X, y)
    res = search.cv_results_
    grid = res["start"] == -1
    assert grid.sum() == 9 and np.all(np.flatnonzero(grid) == np.arange(9))
    best = np.argmin(res["validation_loss"][grid])
    assert res["params"][9] == res["params"][best]  # the descent's first point
    assert res["validation_loss"][~grid].min() < 0.95 * res["validation_loss"][grid].min()


def test_no_refinement_where_the_score_is_the_validation_loss(diabetes):
    """The descent minimises the squared validation loss: scored by the mean squared error there is nothing
    left for the score refinement to find ('auto' skips it); scored by R^2 it probes once."""
    X, y = diabetes
    space = {"alpha": (1e-2, 1e2)}
    mse = BilevelSearchCV(Lasso(), space, cv=3, scoring="neg_mean_squared_error").fit(X, y)
    r2 = BilevelSearchCV(Lasso(), space, cv=3).fit(X, y)
    assert -2 not in mse.cv_results_["start"] and list(r2.cv_results_["start"]).count(-2) == 1
    forced = BilevelSearchCV(Lasso(), space, cv=3, scoring="neg_mean_squared_error", refine=1).fit(X, y)
    assert list(forced.cv_results_["start"]).count(-2) == 1


def test_score_refinement_is_a_compass_search_that_never_lowers_the_score(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), SVC())
    space = {"svc__C": (1e-2, 1e3), "svc__gamma": (1e-5, 1e1)}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    plain = BilevelSearchCV(pipe, space, cv=cv, refine=0).fit(X, y)
    refined = BilevelSearchCV(pipe, space, cv=cv, refine=6).fit(X, y)
    res, n = refined.cv_results_, len(plain.cv_results_["params"])
    assert res["params"][:n] == plain.cv_results_["params"]  # the same search, then the refinement
    assert np.all(res["start"][n:] == -2) and 1 <= len(res["params"]) - n <= 6
    assert refined.best_score_ >= plain.best_score_
    assert refined.n_iter_ == plain.n_iter_ + 1
    # each trial moves one hyperparameter (in log scale) from a point evaluated before it
    logs = np.log([[p[k] for k in sorted(space)] for p in res["params"]])
    for i in range(n, len(logs)):
        moved = np.abs(logs[:i] - logs[i]) > 1e-9
        assert np.any(moved.sum(axis=1) == 1)
    # with refine='auto' and one hyperparameter: a single probe, on the side whose evaluated point
    # nearest to the probe (or to its mirror image) scores higher; a side whose trial point was
    # evaluated already (by the descent, say) is not probed again
    one = BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=cv).fit(X, y)
    res = one.cv_results_
    probe = np.flatnonzero(res["start"] == -2)
    assert probe.size == 1
    logC, scores = np.log10(res["param_C"].astype(float)), res["mean_test_score"]
    before = np.arange(probe[0])
    centre = before[np.argmax(scores[before])]
    side = np.sign(logC[probe[0]] - logC[centre])
    below, above = before[logC[before] < logC[centre] - 1e-9], before[logC[before] > logC[centre] + 1e-9]
    trial = {side: logC[probe[0]], -side: 2 * logC[centre] - logC[probe[0]]}  # the probe and its mirror
    nearest = {s: idx[np.argmin(np.abs(logC[idx] - trial[s]))] for s, idx in ((-1, below), (1, above))
               if idx.size}
    open_sides = [s for s in nearest if s == side or abs(logC[nearest[s]] - trial[s]) > 1e-9]
    assert scores[nearest[side]] >= max(scores[nearest[s]] for s in open_sides)


def test_refine_auto_skips_a_one_dimensional_search_of_the_descended_loss(diabetes):
    """The score is the validation loss (MSE): 'auto' refines no single hyperparameter (the descent minimised
    it), but still refines two, where a descent can stop at a kink of the loss."""
    X, y = diabetes
    cv = KFold(3, shuffle=True, random_state=0)
    lasso = BilevelSearchCV(Lasso(), {"alpha": (1e-2, 1e1)}, cv=cv, scoring="neg_mean_squared_error").fit(X, y)
    assert not np.any(lasso.cv_results_["start"] == -2)
    enet = BilevelSearchCV(ElasticNet(), {"alpha": (1e-2, 1e1), "l1_ratio": (0.1, 1.0, "linear")}, cv=cv,
                           scoring="neg_mean_squared_error", max_iter=5).fit(X, y)
    assert np.any(enet.cv_results_["start"] == -2)


def test_callback_stops_and_verbose_prints(diabetes, capsys):
    X, y = diabetes
    seen = []
    search = BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}, verbose=2,
                             callback=lambda info: seen.append(info) or True).fit(X, y)
    assert len(seen) == 1 and search.n_iter_ == 3  # the initial grid, one descent step, the refinement
    assert {"iteration", "params", "objective", "score", "time"} <= set(seen[0])
    assert "[BilevelSearchCV] start 0 iter   1" in capsys.readouterr().out


def test_sample_weight_reaches_folds_and_refit(diabetes):
    X, y = diabetes
    sw = np.where(np.arange(len(y)) % 2, 3.0, 1.0)
    search = BilevelSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": (1e-3, 1e3)}, cv=3)
    search.fit(X, y, sample_weight=sw)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=search.best_params_["ridge__alpha"]))
    ref.fit(X, y, ridge__sample_weight=sw)
    np.testing.assert_allclose(search.predict(X), ref.predict(X))


def test_convergence_warning_names_the_reason(diabetes):
    X, y = diabetes
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        BilevelSearchCV(KernelRidge(kernel="rbf"), {"alpha": (1e-3, 1e1), "gamma": (1e-3, 1e1)},
                        max_iter=1, cv=3).fit(X[:150], y[:150])


# -- bad input ---------------------------------------------------------------------------------
def test_clear_errors(cancer):
    X, y = cancer
    with pytest.raises(TypeError, match="Supported estimators.*Ridge"):
        BilevelSearchCV(DecisionTreeClassifier(), {"max_depth": (1, 10)}).fit(X, y)
    for bilevel, space in ((BilevelSVC(), {"validation_fraction": (0.05, 0.3)}),
                           (HyperCleaningClassifier(), {"alpha": (1e-3, 1.0)})):
        with pytest.raises(TypeError, match="learns its own hyperparameters by a bilevel method"):
            BilevelSearchCV(bilevel, space, cv=3).fit(X, y)
    with pytest.raises(ValueError, match="cannot be differentiated"):
        BilevelSearchCV(LogisticRegression(), {"tol": (1e-4, 1e-2)}).fit(X, y)
    # a probability metric on a model without a log-loss: one clear error, not a search over NaN scores
    with pytest.raises(ValueError, match="needs predict_proba, which SVCLowerLevel has not"):
        BilevelSearchCV(SVC(), {"C": (0.1, 10)}, scoring="neg_log_loss", cv=3, max_iter=2).fit(X, y)
    # an integer parameter: the message says it cannot be searched, not that 10.000000000000002 is no int
    with pytest.raises(ValueError, match=r"\['max_iter'\] cannot be differentiated"):
        BilevelSearchCV(LogisticRegression(), {"max_iter": (10, 100)}).fit(X, y)
    # scikit-learn subclasses of supported estimators that solve another training problem
    for estimator, space, match in ((LogisticRegressionCV(), {"tol": (1e-4, 1e-2)}, "internal cross-validation"),
                                    (MultiTaskLasso(), {"alpha": (1e-3, 1.0)}, "couples the tasks"),
                                    (MultiTaskElasticNet(), {"alpha": (1e-3, 1.0)}, "couples the tasks")):
        with pytest.raises(TypeError, match=f"cannot differentiate {type(estimator).__name__}: .*{match}"):
            BilevelSearchCV(estimator, space, cv=3).fit(X, y)
    with pytest.raises(ValueError, match="only the last step"):
        BilevelSearchCV(make_pipeline(StandardScaler(), SVC()), {"standardscaler__with_mean": (0.5, 1.0)}).fit(X, y)
    with pytest.raises(ValueError, match="low > 0"):
        BilevelSearchCV(LogisticRegression(), {"C": (0.0, 1.0)}).fit(X, y)
    with pytest.raises(ValueError, match="low < high"):
        BilevelSearchCV(LogisticRegression(), {"C": (10.0, 1.0)}).fit(X, y)
    with pytest.raises(ValueError, match="a list of values"):
        BilevelSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0]}).fit(X, y)
    with pytest.raises(ValueError, match="frozen distribution"):
        BilevelSearchCV(LogisticRegression(), {"C": "wide"}).fit(X, y)
    with pytest.raises(ValueError, match="binary-only"):
        Xm, ym = make_classification(90, 5, n_informative=3, n_classes=3, random_state=0)
        BilevelSearchCV(SVC(), {"C": (0.1, 10)}).fit(Xm, ym)
    with pytest.raises(ValueError, match=r"Ridge\(positive=True\) is not supported"):
        BilevelSearchCV(Ridge(positive=True), {"alpha": (0.1, 10)}).fit(X, y)
    with pytest.raises(ValueError, match="Negative values in data passed to sample_weight"):
        BilevelSearchCV(Ridge(), {"alpha": (0.1, 10)}).fit(X, y, sample_weight=np.r_[-1.0, np.ones(len(y) - 1)])
    with pytest.raises(ValueError, match="requires y"):
        BilevelSearchCV(Ridge(), {"alpha": (0.1, 10)}).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        BilevelSearchCV(Ridge(), {"alpha": (0.1, 10)}).fit(X, np.where(y > 0, np.nan, 1.0))


def test_string_labels(cancer):
    X, y = cancer
    labels = np.array(["benign", "malignant"])[y]
    search = BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=3, max_iter=5).fit(X, labels)
    assert set(search.predict(X)) <= set(labels)
    np.testing.assert_array_equal(search.classes_, ["benign", "malignant"])


def test_validation_loss_option(cancer):
    X, y = cancer
    space = {"svc__C": (1e-1, 1e2)}
    pipe = make_pipeline(StandardScaler(), SVC())
    default = _cv_problem(BilevelSearchCV(pipe, space, cv=3), X, y)
    log = _cv_problem(BilevelSearchCV(pipe, space, cv=3, validation_loss="log"), X, y)
    assert {f.upper.loss for f in default.folds} == {"squared_hinge"}
    assert {f.upper.loss for f in log.folds} == {"log"}
    with pytest.raises(ValueError, match="validation_loss"):
        BilevelSearchCV(pipe, space, validation_loss="hinge").fit(X, y)


# -- the helpers behind fit: they return what they compute ---------------------------------------
def test_cv_results_ranks_as_grid_search_and_the_best_point_credits_its_descent():
    """Ties share the lowest rank and NaN scores rank last; a refinement point (start -2) is credited to the
    descent it refined, a grid point (start -1) to the first descent."""
    from skbilevel._search_results import best_point, cv_results
    from skbilevel._search_space import parse_param_space
    dims = parse_param_space({"C": (0.1, 10.0)})
    scores = [0.5, np.nan, 0.9, 0.9]
    rows = [{"params": {"C": c}, "start": s, "loss": 1.0 - v if v == v else 1.0, "fit_time": np.zeros(2),
             "score_time": np.zeros(2), "test": {"score": np.full(2, v)}, "train": {}}
            for c, s, v in zip([0.1, 1.0, 3.0, 10.0], [-1, 0, -2, 1], scores)]
    with pytest.warns(UserWarning, match="1 of the 4 evaluated points have no mean 'score' score"):
        results = cv_results(rows, dims, ["score"], 2, False, np.nan)
    np.testing.assert_array_equal(results["rank_test_score"], [3, 4, 1, 1])
    best = best_point(results, True, False, ["score"], refine_from=1)
    assert (best.index, best.score, best.params, best.start) == (2, 0.9, {"C": 3.0}, 1)
    assert best_point(results, lambda r: 0, False, ["score"], refine_from=1).start == 0
    assert best_point(results, False, True, ["score"], refine_from=1) is None


def test_single_class_is_refused_before_the_folds():
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match="y holds one class only"):
        BilevelSearchCV(LogisticRegression(), {"C": (1e-2, 1e2)}, cv=3).fit(X, np.ones(30))


def test_best_value_on_a_range_edge_is_warned_about():
    """Pure-noise targets: the more Ridge shrinks the better, so the best alpha is the range's upper edge."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), rng.normal(size=60)
    with pytest.warns(UserWarning, match=r"best alpha = 0?\.1 lies on the upper edge of its range \(0\.001, 0\.1\)"):
        search = BilevelSearchCV(Ridge(), {"alpha": (1e-3, 1e-1)}, cv=3).fit(X, y)
    assert search.best_params_["alpha"] == 0.1


def test_best_value_inside_the_range_is_not_warned_about():
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*edge of its range")
        search = BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}, cv=3).fit(X, y)
    assert 1e-4 < search.best_params_["alpha"] < 1e2


def test_refinement_does_not_solve_a_descents_point_again():
    """A refinement trial one grid step from the best point can be a descent's start, computed by other
    arithmetic (here C = 10**0.4, one ulp apart): it is not evaluated, nor listed, a second time."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X = StandardScaler().fit_transform(X)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):  # the rounding of one BLAS thread leads the refinement to that point
        search = BilevelSearchCV(LogisticRegression(), {"C": (1e-4, 1e4)},
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0)).fit(X, y)
    log_c = np.sort(np.log(search.cv_results_["param_C"].astype(float)))
    assert np.all(np.diff(log_c) > 1e-8 * np.log(1e8)), search.cv_results_["param_C"]
