"""BilevelSearchCV as GridSearchCV users meet it: honest scores, one row per point, param_grid, max_time, and
the bounded memory of kernel searches."""

import time
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.svm import SVC, LinearSVC

from skbilevel import BilevelSearchCV
from skbilevel._search_folds import build_folds
from skbilevel._search_space import parse_param_space


@pytest.fixture(scope="module")
def classification():
    return make_classification(90, 5, n_informative=3, n_redundant=0, flip_y=0.05, random_state=0)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(90, 5, n_informative=3, noise=10.0, random_state=0)
    return X, y


ESTIMATORS = [
    (Ridge(), {"alpha": (1e-3, 1e3)}),
    (KernelRidge(kernel="rbf"), {"alpha": (1e-3, 1e1)}),
    (Lasso(), {"alpha": (1e-2, 1e2)}),
    (ElasticNet(), {"alpha": (1e-2, 1e2)}),
    (LogisticRegression(), {"C": (1e-2, 1e2)}),
    (LinearSVC(), {"C": (1e-2, 1e2)}),
    (SVC(), {"C": (1e-1, 1e2), "gamma": (1e-2, 1e1)}),
    # libsvm takes millions of iterations on a linear kernel of unscaled features (SVC.fit alone, on 60
    # samples at X * 1e3: seconds; beyond: minutes): the cap is the user's, for the search and the refit alike
    (SVC(kernel="linear", max_iter=100_000), {"C": (1e-2, 1e2)}),
]


# -- honest scores ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1.0, 1e4, 1e8])
@pytest.mark.parametrize("estimator, space", ESTIMATORS, ids=lambda e: repr(e) if not isinstance(e, dict) else "")
def test_best_score_is_the_cross_validated_score_of_best_params(classification, regression, estimator, space,
                                                                scale):
    """Whatever the features' scale, best_score_ is what cross_val_score of the refit estimator gives."""
    classifier = isinstance(estimator, (LogisticRegression, LinearSVC, SVC))
    X, y = classification if classifier else regression
    cv = (StratifiedKFold if classifier else KFold)(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimators' own ConvergenceWarnings on badly scaled features
        search = BilevelSearchCV(estimator, space, cv=cv, max_iter=4).fit(X * scale, y)
        reference = cross_val_score(clone(estimator).set_params(**search.best_params_), X * scale, y, cv=cv)
    assert search.best_score_ == pytest.approx(reference.mean(), abs=0.01)
    assert search.cv_results_["refitted"][search.best_index_]
    # the search's fold solutions at the other rows agree with the estimator here, or were replaced by its
    scores = search.cv_results_["mean_test_score"]
    assert search.best_score_ == scores.max()


def test_scores_that_differ_from_the_estimators_are_replaced_and_warned_about(classification):
    """LinearSVC's liblinear (stopped at max_iter, its intercept penalised) on badly scaled features is not
    the search's solution."""
    X, y = classification
    X = X * np.array([1e4, 1.0, 1e-2, 1.0, 1e3])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    estimator = LinearSVC(max_iter=5, tol=1e-1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = BilevelSearchCV(estimator, {"C": (1e-2, 1e2)}, cv=cv, max_iter=4).fit(X, y)
    moved = [w for w in caught if "the scikit-learn estimator scores" in str(w.message)]
    assert moved and issubclass(moved[0].category, UserWarning)
    assert "StandardScaler" in str(moved[0].message) or "max_iter" in str(moved[0].message)  # what to do
    res = search.cv_results_
    assert res["refitted"].all()  # every row is the estimator's score then
    for i in range(len(res["params"])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = cross_val_score(clone(estimator).set_params(**res["params"][i]), X, y, cv=cv)
        np.testing.assert_allclose([res[f"split{k}_test_score"][i] for k in range(3)], ref)


def test_one_point_one_score(classification):
    """The descent solves its starting grid point again: cv_results_ lists that point once."""
    X, y = classification
    search = BilevelSearchCV(LogisticRegression(), {"C": (1e-3, 1e3)}, cv=3, n_starts=2, max_iter=5).fit(X, y)
    keys = [tuple(sorted(p.items())) for p in search.cv_results_["params"]]
    assert len(keys) == len(set(keys))
    # the grid's rows stay the grid's: 5 points, fewer where the scan stopped once scores got worse
    assert 3 <= np.sum(search.cv_results_["start"] == -1) <= 5


# -- param_grid -----------------------------------------------------------------------------------------------
def test_param_grid_spans_the_range_of_its_values(classification):
    X, y = classification
    grid = {"C": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 1e4], "kernel": ["rbf"], "gamma": [0.05, 0.5]}
    search = BilevelSearchCV(SVC(), param_grid=grid, cv=3, max_iter=3).fit(X, y)
    res = search.cv_results_
    C = np.asarray(res["param_C"], dtype=float)
    gamma = np.asarray(res["param_gamma"], dtype=float)
    assert C.min() >= 0.01 * (1 - 1e-12) and C.max() <= 1e4 * (1 + 1e-12)
    assert gamma.min() >= 0.05 * (1 - 1e-12) and gamma.max() <= 0.5 * (1 + 1e-12)
    # the initial grid (3 x 3 for two hyperparameters) takes its points among the listed values
    scan = res["start"] == -1
    assert set(np.round(C[scan], 10)) <= {round(v, 10) for v in grid["C"]}
    assert set(np.round(gamma[scan], 10)) == {0.05, 0.5}
    assert all(p["kernel"] == "rbf" for p in res["params"]) and search.best_params_["kernel"] == "rbf"


def test_param_grid_refusals(classification):
    X, y = classification
    with pytest.raises(ValueError, match="not numbers.*GridSearchCV"):
        BilevelSearchCV(SVC(), param_grid={"C": [1.0, 10.0], "kernel": ["rbf", "linear"]}).fit(X, y)
    with pytest.raises(ValueError, match="exactly one of param_space"):
        BilevelSearchCV(SVC(), {"C": (1.0, 10.0)}, param_grid={"C": [1.0, 10.0]}).fit(X, y)
    with pytest.raises(ValueError, match="exactly one of param_space"):
        BilevelSearchCV(SVC()).fit(X, y)
    with pytest.raises(ValueError, match="nothing to search"):
        BilevelSearchCV(SVC(), param_grid={"C": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match="separate grids"):
        BilevelSearchCV(SVC(), param_grid=[{"C": [1.0, 2.0]}, {"gamma": [1.0, 2.0]}]).fit(X, y)
    with pytest.raises(ValueError, match="pass the lists as param_grid"):
        BilevelSearchCV(SVC(), {"C": [1.0, 10.0]}).fit(X, y)


def test_param_grid_with_a_non_positive_value_is_a_linear_range():
    from skbilevel._search_space import resolve_param_space
    space, fixed = resolve_param_space(None, {"l1_ratio": [0.0, 0.5, 1.0], "alpha": [1e-3, 1e-1]})
    dims = {d.name: d for d in parse_param_space(space)}
    assert dims["l1_ratio"].scale == "linear" and dims["alpha"].scale == "log" and fixed == {}
    np.testing.assert_allclose(dims["l1_ratio"].grid(5), [0.0, 0.5, 1.0])  # at most m values: all of them


# -- max_time ------------------------------------------------------------------------------------------
def test_max_time_stops_the_search_and_says_so(classification):
    X, y = classification
    space = {"C": (1e-1, 1e2), "gamma": (1e-2, 1e1)}
    full = BilevelSearchCV(SVC(), space, cv=3, max_iter=10, n_starts=2).fit(X, y)
    assert not full.max_time_reached_
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="stopped at max_time"):
        short = BilevelSearchCV(SVC(), space, cv=3, max_iter=10, n_starts=2, max_time=1e-3).fit(X, y)
    elapsed = time.perf_counter() - start
    assert short.max_time_reached_
    assert len(short.cv_results_["params"]) < len(full.cv_results_["params"])
    assert short.best_params_ == short.cv_results_["params"][short.best_index_]
    assert hasattr(short, "best_estimator_") and elapsed < 30


# -- bounded memory for kernels --------------------------------------------------------------------------
def test_rbf_svc_stored_distances_share_cache_size():
    X, y = make_classification(600, 10, random_state=0)
    route = {"split": {}, "pre": {}, "weight": None, "score": {}}
    dims = parse_param_space({"C": (0.1, 10.0), "gamma": (0.01, 1.0)})
    problem, _ = build_folds(SVC(cache_size=200), 5, "auto", X, y, route, dims)
    stored = sum(fold.lower.D.nbytes for fold in problem.folds)
    assert 0 < stored <= 200 * 2**20  # 5 x 8 x 480^2 bytes fit
    with pytest.warns(UserWarning, match=r"more than its cache_size=1 MB.*slower"):
        problem, _ = build_folds(SVC(cache_size=1), 5, "auto", X, y, route, dims)
    assert all(fold.lower.D is None for fold in problem.folds)


def test_rbf_svc_search_memory_is_bounded_by_cache_size():
    """tracemalloc counts numpy's arrays: with the distances not stored, the search's peak is far below the
    folds' n^2 matrices, and its result is the same."""
    X, y = make_classification(500, 10, flip_y=0.05, random_state=0)
    space = {"C": (1e-1, 1e2), "gamma": (1e-3, 1e0)}

    def peak_of(cache_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracemalloc.start()
            search = BilevelSearchCV(SVC(cache_size=cache_size), space, max_iter=3, refine=0).fit(X, y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return peak, search

    matrices = 5 * 8 * 400**2  # the five folds' stored distances
    stored_peak, stored = peak_of(200)
    bounded_peak, bounded = peak_of(0.5)
    assert stored_peak >= matrices
    # what is left are blocks (n x support) that live for one solve
    assert bounded_peak < matrices and stored_peak - bounded_peak >= 0.8 * matrices
    assert bounded.best_params_ == pytest.approx(stored.best_params_, rel=1e-6)
