"""BilevelSearchCV's metadata: sample_weight and groups as GridSearchCV passes them, with and without routing."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import make_scorer, r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbilevel import BilevelSearchCV


@pytest.fixture
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y, np.random.default_rng(0).uniform(0.1, 3.0, len(y))


@pytest.fixture
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[::3], y[::3]
    return X, y, np.random.default_rng(1).uniform(0.1, 3.0, len(y))


def _row(search, **params):
    """The first row of ``cv_results_`` at ``params``."""
    for k, p in enumerate(search.cv_results_["params"]):
        if all(np.isclose(p[name], value) for name, value in params.items()):
            return k
    raise AssertionError(f"{params} not evaluated")


def test_without_routing_fold_scores_are_weighted_as_by_grid_search(diabetes):
    """GridSearchCV hands sample_weight to a scorer that accepts it (scikit-learn >= 1.7): the same fold
    scores at the same point, so that both searches rank points alike."""
    X, y, sw = diabetes
    cv = KFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(Ridge(), {"alpha": [1.0]}, cv=cv).fit(X, y, sample_weight=sw)
    search = BilevelSearchCV(Ridge(), {"alpha": (0.5, 2.0)}, cv=cv, initial_grid=3, max_iter=1).fit(
        X, y, sample_weight=sw)
    k = _row(search, alpha=1.0)
    for split in range(3):
        np.testing.assert_allclose(search.cv_results_[f"split{split}_test_score"][k],
                                   grid.cv_results_[f"split{split}_test_score"][0], rtol=1e-6)
    with pytest.raises(TypeError, match="without metadata routing it takes sample_weight and groups only"):
        BilevelSearchCV(Ridge(), {"alpha": (0.5, 2.0)}).fit(X, y, ridge__sample_weight=sw)


def test_routed_sample_weight_reaches_the_final_step_of_a_pipeline(cancer):
    """With routing on, a Pipeline refuses the old step__sample_weight name: the refit crashed after the
    whole search. The weights go where the steps request them, as in GridSearchCV."""
    X, y, sw = cancer
    space = {"logisticregression__C": (0.1, 10.0)}
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                             LogisticRegression().set_fit_request(sample_weight=True))
        search = BilevelSearchCV(pipe, space, cv=3, max_iter=3).fit(X, y, sample_weight=sw)
        reference = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                                  LogisticRegression(C=search.best_params_["logisticregression__C"])
                                  .set_fit_request(sample_weight=True)).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(search.best_estimator_[-1].coef_, reference[-1].coef_, rtol=1e-6)
    unweighted = BilevelSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), space, cv=3,
                                 max_iter=3).fit(X, y)
    k = _row(unweighted, **search.cv_results_["params"][0])
    assert not np.isclose(search.cv_results_["validation_loss"][0], unweighted.cv_results_["validation_loss"][k])


def test_routed_metadata_nobody_requests_is_refused_as_by_grid_search(cancer):
    X, y, sw = cancer
    with config_context(enable_metadata_routing=True):
        with pytest.raises(Exception) as grid_error:
            GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=3).fit(X, y, sample_weight=sw)
        with pytest.raises(type(grid_error.value)):
            BilevelSearchCV(LogisticRegression(), {"C": (0.1, 10.0)}, cv=3).fit(X, y, sample_weight=sw)


def test_routed_scorer_weights_and_groups(cancer):
    """The scorer's request weights the fold scores; groups reach a group splitter inside cross_val_score
    without a request on the search itself."""
    X, y, sw = cancer
    groups = np.arange(len(y)) % 6
    with config_context(enable_metadata_routing=True):
        scorer = make_scorer(r2_score).set_score_request(sample_weight=True)
        estimator = LogisticRegression().set_fit_request(sample_weight=False)
        grid = GridSearchCV(estimator, {"C": [1.0]}, cv=3, scoring=scorer).fit(X, y, sample_weight=sw)
        search = BilevelSearchCV(estimator, {"C": (0.5, 2.0)}, cv=3, scoring=scorer, initial_grid=3,
                                 max_iter=1).fit(X, y, sample_weight=sw)
        k = _row(search, C=1.0)
        np.testing.assert_allclose(search.cv_results_["split0_test_score"][k], grid.cv_results_["split0_test_score"][0],
                                   rtol=1e-5)
        inner = BilevelSearchCV(LogisticRegression(), {"C": (0.1, 10.0)}, cv=GroupKFold(3), max_iter=2)
        scores = cross_val_score(inner, X, y, cv=GroupKFold(2), params={"groups": groups})
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_a_generator_of_splits_survives_the_routing_query(cancer):
    """get_metadata_routing must not consume cv (check_cv turns a generator into a list)."""
    X, y, sw = cancer
    search = BilevelSearchCV(LogisticRegression(), {"C": (0.1, 10.0)}, cv=KFold(3).split(X), max_iter=2)
    search.get_metadata_routing()
    assert search.fit(X, y).n_splits_ == 3
    with config_context(enable_metadata_routing=True):
        estimator = LogisticRegression().set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        search = BilevelSearchCV(estimator, {"C": (0.1, 10.0)}, cv=KFold(3).split(X), max_iter=2)
        assert search.fit(X, y, sample_weight=sw).n_splits_ == 3


def test_an_aliased_sample_weight_reaches_the_folds(cancer):
    """set_fit_request(sample_weight='w'): the folds train on w as the refit does, bare or in a Pipeline."""
    X, y, sw = cancer
    space = {"C": (0.1, 10.0)}
    with config_context(enable_metadata_routing=True):
        plain = BilevelSearchCV(LogisticRegression().set_fit_request(sample_weight=True)
                                .set_score_request(sample_weight=False), space, cv=3, max_iter=2).fit(
            X, y, sample_weight=sw)
        aliased = BilevelSearchCV(LogisticRegression().set_fit_request(sample_weight="w"), space, cv=3,
                                  max_iter=2).fit(X, y, w=sw)
        pipe = make_pipeline(StandardScaler(), LogisticRegression().set_fit_request(sample_weight="w"))
        piped = BilevelSearchCV(pipe, {"logisticregression__C": (0.1, 10.0)}, cv=3, max_iter=2).fit(X, y, w=sw)
    np.testing.assert_allclose(aliased.cv_results_["validation_loss"], plain.cv_results_["validation_loss"])
    unweighted = BilevelSearchCV(LogisticRegression(), space, cv=3, max_iter=2).fit(X, y)
    assert not np.allclose(aliased.cv_results_["validation_loss"][0], unweighted.cv_results_["validation_loss"][0])
    assert np.isfinite(piped.best_score_)


def test_a_callable_scorer_with_sample_weight_is_weighted_as_by_grid_search(diabetes):
    X, y, sw = diabetes

    def weighted_r2(estimator, X, y, sample_weight=None):
        return r2_score(y, estimator.predict(X), sample_weight=sample_weight)

    cv = KFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(Ridge(), {"alpha": [1.0]}, cv=cv, scoring=weighted_r2).fit(X, y, sample_weight=sw)
    search = BilevelSearchCV(Ridge(), {"alpha": (0.5, 2.0)}, cv=cv, scoring=weighted_r2, initial_grid=3,
                             max_iter=1).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(search.cv_results_["split0_test_score"][_row(search, alpha=1.0)],
                               grid.cv_results_["split0_test_score"][0], rtol=1e-6)


def test_the_descended_loss_weighs_the_held_out_samples_as_the_scores():
    """ValidationLoss with the held-out weights: a weighted mean, with its hypergradient."""
    from _search_helpers import check_hypergradient
    from skbilevel.problems import BilevelProblem
    from skbilevel.problems.estimator_base import ValidationLoss
    from skbilevel.problems.ridge import RidgeLowerLevel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    t = X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=40)
    lower = RidgeLowerLevel(Ridge(), X[:30], t[:30], ["alpha"], ["log"])
    w = rng.uniform(0.0, 2.0, 10)
    upper = ValidationLoss(lower, X[30:], t[30:], sample_weight=w)
    y, _ = lower.solve(np.zeros(1))
    residual = lower.decision(np.zeros(1), y, X[30:]) - t[30:]
    assert upper.value(np.zeros(1), y) == pytest.approx(np.average(residual ** 2, weights=w))
    check_hypergradient(BilevelProblem(upper, lower), np.log([3.0]))
